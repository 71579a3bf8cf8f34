//! The inherent impl: constants, constructors, and the passes that accept every input form.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::{activation_value, derivation_text, path, private};
use crate::activation::Activation;
use crate::names::part_type;
use crate::names::Generics;
use crate::valid::Network;

/// Constants, constructors, forward, loss, backward and cast.
pub(crate) fn inherent_impl(
    network: &Network,
    name: &Ident,
    workspace: &Ident,
    g: &Generics,
) -> TokenStream {
    let bp = private(network);
    let Generics {
        scalar: t,
        batch: b,
        cast: u,
        loss: l,
        target: y,
        sample: x_,
    } = g;
    let inputs = network.inputs;
    // valid.rs guarantees at least one layer.
    let outputs = network.outputs();
    let parameters = network.parameters();
    let derivation = derivation_text(network, name);
    let costs = crate::costs::constants(network, name, t, b);
    let usize_ = quote!(::core::primitive::usize);
    let smatrix = quote!(#bp::nalgebra::SMatrix);
    let svector = quote!(#bp::nalgebra::SVector);
    let model = quote!(#bp::Model<#inputs, #outputs>);

    let (zero_fields, seeded_fields, cast_fields) = constructors(network, name);
    // let a1 = { let mut a = self.fc1.affine_value(x); Activation::apply(&Relu, &mut a); a };
    let value_steps = network.layers.iter().enumerate().map(|(index, layer)| {
        let (field, value) = (path(layer), format_ident!("a{}", index + 1));
        let input = if index == 0 {
            quote!(x)
        } else {
            let previous = format_ident!("a{}", index);
            quote!(&#previous)
        };
        let activate = if layer.activation == Activation::Identity {
            quote!()
        } else {
            let activation = activation_value(&bp, t, layer.activation);
            quote!(#bp::Activation::<#t>::apply(&#activation, &mut a);)
        };
        quote! {
            let #value = {
                let mut a = self.#field.affine_value(#input);
                #activate
                a
            };
        }
    });
    let last_value = format_ident!("a{}", network.layers.len());

    quote! {
        #[allow(dead_code)]
        impl<#t: #bp::Scalar> #name<#t> {
            /// The input width.
            pub const INPUTS: #usize_ = #inputs;
            /// The output width.
            pub const OUTPUTS: #usize_ = #outputs;
            /// The number of parameters: every weight and bias.
            pub const PARAMETERS: #usize_ = #parameters;
            /// The backward pass of this architecture in delta-rule form, layer by layer.
            pub const DERIVATION: &'static ::core::primitive::str = #derivation;

            #costs

            /// A network whose weights and biases are all zero; also a fresh gradient.
            pub fn zeros() -> Self {
                Self { #(#zero_fields,)* }
            }

            /// PyTorch's default `nn.Linear` initialisation (weight, then bias, of each layer in
            /// order, uniform in ±1/√fan_in) from a ChaCha8 generator seeded with `seed`: the same
            /// seed gives the same network on every machine.
            pub fn init(seed: ::core::primitive::u64) -> Self {
                Self::init_from(&mut #bp::init::seeded_rng(seed))
            }

            /// [`Self::init`] drawing from a generator the caller owns, layer after layer.
            pub fn init_from(rng: &mut #bp::init::InitRng) -> Self {
                Self { #(#seeded_fields,)* }
            }

            /// A zeroed workspace for batches of `B` samples (`B = 1` for one sample).
            pub fn workspace<const #b: #usize_>(&self) -> #workspace<#t, { #b }> {
                <Self as #model>::workspace::<{ #b }>(self)
            }

            /// The output for one sample, given as an `SVector<T, INPUTS>` or a `[T; INPUTS]`.
            pub fn forward<#x_: #bp::SampleFor<Self, #t, #inputs>>(&self, x: &#x_) -> #svector<#t, #outputs> {
                <Self as #model>::forward_batch(self, &#bp::SampleFor::<Self, #t, #inputs>::to_vector(x))
            }

            /// The class predicted for one sample: the index of its largest output (the first on
            /// ties, as `torch.argmax`).
            pub fn predict<#x_: #bp::SampleFor<Self, #t, #inputs>>(&self, x: &#x_) -> #usize_ {
                <Self as #model>::predict(self, x)
            }

            /// The outputs for a batch, one column per sample: an `SMatrix<T, INPUTS, B>` or
            /// `[[T; INPUTS]; B]`. Layer values of up to 16 KiB a layer are kept as local values;
            /// larger batches run through a heap workspace made for the call (with the `alloc`
            /// feature), so that no batch size overflows the stack. [`Self::forward_into`] reuses
            /// a workspace and allocates nothing.
            #[inline]
            pub fn forward_batch<const #b: #usize_>(&self, x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>) -> #smatrix<#t, #outputs, { #b }> {
                <Self as #model>::forward_batch(self, x)
            }

            /// [`Self::forward_batch`] through local values, for batches whose layers fit.
            fn forward_values<const #b: #usize_>(&self, x: &#smatrix<#t, #inputs, { #b }>) -> #smatrix<#t, #outputs, { #b }> {
                #(#value_steps)*
                #last_value
            }

            /// The forward pass, keeping every layer's values in `ws` (as the backward pass needs);
            /// returns the output, one column per sample.
            #[inline]
            pub fn forward_into<'w, const #b: #usize_>(
                &self,
                x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>,
                ws: &'w mut #workspace<#t, { #b }>,
            ) -> &'w #smatrix<#t, #outputs, { #b }> {
                <Self as #model>::forward_into(self, x, ws)
            }

            /// The loss of the network's output for `x` (a batch, or one sample) against `target`,
            /// reduced as PyTorch does.
            #[inline]
            pub fn loss<#l, #y, const #b: #usize_>(&self, x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>, target: &#y, loss: &#l) -> #t
            where
                #l: #bp::Loss<#t, #outputs, { #b }, #y>,
            {
                <Self as #model>::loss(self, x, target, loss)
            }

            /// Forward pass, loss and backward pass for a batch, one column per sample (an
            /// `SMatrix<T, INPUTS, B>` or `[[T; INPUTS]; B]`; one sample is an `SVector` or a
            /// `[T; INPUTS]`): writes ∂loss/∂parameter for every parameter into `grad`
            /// (overwriting it) and returns the loss. Allocates nothing.
            #[inline]
            pub fn backward<#l, #y, const #b: #usize_>(
                &self,
                x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>,
                target: &#y,
                loss: &#l,
                ws: &mut #workspace<#t, { #b }>,
                grad: &mut Self,
            ) -> #t
            where
                #l: #bp::Loss<#t, #outputs, { #b }, #y>,
            {
                <Self as #model>::backward(self, x, target, loss, ws, grad)
            }

            /// The same network in another scalar type, such as `f64` for a gradient check.
            pub fn cast<#u: #bp::Scalar + #bp::SupersetOf<#t>>(&self) -> #name<#u> {
                #name { #(#cast_fields,)* }
            }
        }
    }
}

/// The fields of `zeros()`, `init_from(rng)` and `cast()`: one per layer (boxed when large), or
/// one per part of a chain.
pub(crate) fn constructors(
    network: &Network,
    name: &Ident,
) -> (Vec<TokenStream>, Vec<TokenStream>, Vec<TokenStream>) {
    let bp = private(network);
    if !network.parts.is_empty() {
        let parts = network
            .parts
            .iter()
            .map(|part| (&part.name, part_type(name, &part.name)));
        return (
            parts
                .clone()
                .map(|(field, ty)| quote!(#field: #ty::zeros()))
                .collect(),
            parts
                .clone()
                .map(|(field, ty)| quote!(#field: #ty::init_from(rng)))
                .collect(),
            parts
                .map(|(field, _)| quote!(#field: self.#field.cast()))
                .collect(),
        );
    }
    // A large layer goes through `large`, which builds it on the heap (`Linear::boxed_zeros`).
    let each = |make: &dyn Fn(&Ident, bool) -> TokenStream| {
        network
            .layers
            .iter()
            .map(|layer| {
                let (field, value) = (&layer.field, make(&layer.field, layer.on_heap()));
                quote!(#field: #value)
            })
            .collect::<Vec<_>>()
    };
    (
        each(&|_, boxed| {
            if boxed {
                quote!(#bp::large::zeros())
            } else {
                quote!(#bp::Linear::zeros())
            }
        }),
        each(&|_, boxed| {
            if boxed {
                quote!(#bp::large::torch_default(rng))
            } else {
                quote!(#bp::Linear::torch_default(rng))
            }
        }),
        each(&|field, boxed| {
            if boxed {
                quote!(#bp::large::cast(&self.#field))
            } else {
                quote!(self.#field.cast())
            }
        }),
    )
}
