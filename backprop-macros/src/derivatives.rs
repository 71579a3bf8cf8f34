//! Code generation for derivatives with respect to the input: the Jacobian (forward and reverse
//! mode), Jacobian-vector and vector-Jacobian products, and the loss's input gradient. Every
//! method is straight-line, one statement group per layer, over local static matrices: nothing
//! allocates.
//!
//! Both modes rest on one fact: every activation's Jacobian is symmetric (diagonal, or softmax's
//! `diag(a) − a aᵀ`), so the activation's backward map also carries tangents forward.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use crate::activation::Activation;
use crate::expand::{activation_value, path, private};
use crate::names::Generics;
use crate::valid::Network;

/// `impl Net<T> { jacobian, jacobian_forward_mode, jacobian_reverse_mode, jvp, vjp,
/// input_gradient, input_gradient_of }`.
pub fn inherent_impl(
    network: &Network,
    name: &Ident,
    workspace: &Ident,
    generics: &Generics,
) -> TokenStream {
    let bp = private(network);
    let Generics {
        scalar: t,
        batch: b,
        loss: l,
        target: y,
        sample: x_,
        ..
    } = generics;
    let Some(last) = network.layers.last() else {
        return TokenStream::new();
    };
    let (inputs, outputs) = (network.inputs, last.outputs);
    let smatrix = quote!(#bp::nalgebra::SMatrix);
    let usize_ = quote!(::core::primitive::usize);
    let count = network.layers.len();
    let z = |index: usize| format_ident!("z{}", index + 1);
    let a = |index: usize| format_ident!("a{}", index + 1);
    let tangent = |index: usize| format_ident!("t{}", index + 1);
    let first = path(&network.layers[0]);

    // let z1 = self.fc1.affine_value(x);
    // let a1 = { let mut a = z1.clone_owned(); Activation::apply(&Relu, &mut a); a };
    let values = |from: TokenStream| {
        network
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let (field, zi, ai) = (path(layer), z(index), a(index));
                let input = if index == 0 {
                    from.clone()
                } else {
                    let previous = a(index - 1);
                    quote!(&#previous)
                };
                let activation = activation_value(&bp, t, layer.activation);
                quote! {
                    let #zi = self.#field.affine_value(#input);
                    let #ai = {
                        let mut a = #zi.clone_owned();
                        #bp::Activation::<#t>::apply(&#activation, &mut a);
                        a
                    };
                }
            })
            .collect::<Vec<_>>()
    };
    // Activation::jacobian_columns(&Relu, &z1, &a1, &mut t1);  (nothing for the identity)
    let through = |index: usize, columns: &Ident, batch: bool| {
        let layer = &network.layers[index];
        if layer.activation == Activation::Identity {
            return quote!();
        }
        let activation = activation_value(&bp, t, layer.activation);
        let (zi, ai) = (z(index), a(index));
        if batch {
            quote!(#bp::Activation::<#t>::backward(&#activation, &#zi, &#ai, &mut #columns);)
        } else {
            quote!(#bp::Activation::<#t>::jacobian_columns(&#activation, &#zi, &#ai, &mut #columns);)
        }
    };
    let last_t = tangent(count - 1);
    let last_a = a(count - 1);

    // Forward mode: t1 = J_f1 · W1, t2 = J_f2 · W2 · t1, ...; the Jacobian is the last t.
    let forward_mode = (0..count).map(|index| {
        let (field, ti) = (path(&network.layers[index]), tangent(index));
        let start = if index == 0 {
            quote!(let mut #ti = self.#field.weight.clone_owned();)
        } else {
            let previous = tangent(index - 1);
            quote!(let mut #ti = &self.#field.weight * &#previous;)
        };
        let activate = through(index, &ti, false);
        quote!(#start #activate)
    });
    // Reverse mode: t_L = J_fL, t_{l-1} = J_f(l-1) · W_lᵀ · t_l; the Jacobian is (W1ᵀ t1)ᵀ.
    let reverse_mode = (0..count).rev().map(|index| {
        let ti = tangent(index);
        let start = if index == count - 1 {
            quote!(let mut #ti = #smatrix::<#t, #outputs, #outputs>::identity();)
        } else {
            let (next_field, next) = (path(&network.layers[index + 1]), tangent(index + 1));
            quote!(let mut #ti = self.#next_field.weight.tr_mul(&#next);)
        };
        let activate = through(index, &ti, false);
        quote!(#start #activate)
    });
    // JVP: tangents interleaved with the values, one column per sample.
    let jvp_steps = (0..count).map(|index| {
        let (field, ti) = (path(&network.layers[index]), tangent(index));
        let start = if index == 0 {
            quote!(let mut #ti = &self.#field.weight * v;)
        } else {
            let previous = tangent(index - 1);
            quote!(let mut #ti = &self.#field.weight * &#previous;)
        };
        let activate = through(index, &ti, true);
        quote!(#start #activate)
    });
    // VJP: cotangents from the output back to the input.
    let vjp_steps = |seed: TokenStream| {
        (0..count)
            .rev()
            .map(|index| {
                let ti = tangent(index);
                let start = if index == count - 1 {
                    seed.clone()
                } else {
                    let (next_field, next) = (path(&network.layers[index + 1]), tangent(index + 1));
                    quote!(let mut #ti = self.#next_field.weight.tr_mul(&#next);)
                };
                let activate = through(index, &ti, true);
                quote!(#start #activate)
            })
            .collect::<Vec<_>>()
    };
    let one_sample_values = values(quote!(&x));
    let batch_values = values(quote!(x));
    let vjp_from_u = vjp_steps(quote!(let mut #last_t = u.clone_owned();));
    let vjp_from_loss = vjp_steps(quote! {
        let mut #last_t = #smatrix::<#t, #outputs, { #b }>::zeros();
        let value = #bp::Loss::<#t, #outputs, { #b }, #y>::gradient(loss, &#last_a, target, &mut #last_t);
    });
    let first_t = tangent(0);
    let (forward_cost, reverse_cost) = mode_costs(network);
    let default_mode = if forward_cost < reverse_cost {
        quote!(jacobian_forward_mode)
    } else {
        quote!(jacobian_reverse_mode)
    };
    let mode_doc = if forward_cost < reverse_cost {
        format!(
            "forward mode here: about {forward_cost} multiply-adds and activation entries, \
             against {reverse_cost} in reverse mode"
        )
    } else {
        format!(
            "reverse mode here: about {reverse_cost} multiply-adds and activation entries, \
             against {forward_cost} in forward mode"
        )
    };
    let jacobian_doc = format!(
        "The Jacobian of the outputs with respect to the inputs at one sample, \
         `J[(i, j)] = ∂output[i]/∂input[j]`, computed in the cheaper mode for this shape \
         ({mode_doc}). Allocates nothing."
    );
    let sample = quote!(#bp::SampleFor<Self, #t, #inputs>);

    // impl<T> Net<T> {
    //     pub fn jacobian_reverse_mode(&self, x) -> SMatrix<T, 1, 4> {
    //         let z1 = self.fc1.affine_value(&x); let a1 = relu(z1); ...
    //         let mut t3 = SMatrix::identity(); jacobian_columns(&Sigmoid, &z3, &a3, &mut t3);
    //         let mut t2 = self.fc3.weight.tr_mul(&t3); jacobian_columns(&Relu, &z2, &a2, &mut t2);
    //         ...
    //         self.fc1.weight.tr_mul(&t1).transpose()
    //     }
    //     pub fn jvp(&self, x, v) -> (output, tangent)   // t1 = W1 v, f1'(z1) ⊙ t1, ...
    //     pub fn vjp(&self, x, u) -> (output, cotangent) // t3 = u, ..., W1ᵀ t1
    // }
    quote! {
        #[allow(dead_code, clippy::let_and_return)]
        impl<#t: #bp::Scalar> #name<#t> {
            #[doc = #jacobian_doc]
            pub fn jacobian<#x_: #sample>(&self, x: &#x_) -> #smatrix<#t, #outputs, #inputs> {
                self.#default_mode(x)
            }

            /// The Jacobian at one sample by forward mode: a tangent per input pushed through
            /// the layers (`J = J_fL · W_L · … · J_f1 · W_1`, first factor first). Its tangents
            /// are local values of `width × INPUTS` per layer (the first is a copy of `W_1`):
            /// for a wide first layer call [`Self::jacobian`], which then picks reverse mode.
            pub fn jacobian_forward_mode<#x_: #sample>(&self, x: &#x_) -> #smatrix<#t, #outputs, #inputs> {
                let x = <#x_ as #sample>::to_vector(x);
                #(#one_sample_values)*
                #(#forward_mode)*
                #last_t
            }

            /// The Jacobian at one sample by reverse mode: a cotangent per output pulled back
            /// through the layers (`Jᵀ = W_1ᵀ · J_f1 · … · W_Lᵀ · J_fL`, last factor first).
            /// Its cotangents are local values of `width × OUTPUTS` per layer.
            pub fn jacobian_reverse_mode<#x_: #sample>(&self, x: &#x_) -> #smatrix<#t, #outputs, #inputs> {
                let x = <#x_ as #sample>::to_vector(x);
                #(#one_sample_values)*
                #(#reverse_mode)*
                self.#first.weight.tr_mul(&#first_t).transpose()
            }

            /// The Jacobian-vector product for a batch: the outputs and, per sample (column),
            /// `J(x) · v`, the outputs' change along the input direction `v`.
            pub fn jvp<const #b: #usize_>(
                &self,
                x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>,
                v: &#smatrix<#t, #inputs, { #b }>,
            ) -> (#smatrix<#t, #outputs, { #b }>, #smatrix<#t, #outputs, { #b }>) {
                let x = #bp::BatchFor::<Self, #t, #inputs, { #b }>::as_batch(x);
                #(#batch_values)*
                #(#jvp_steps)*
                (#last_a, #last_t)
            }

            /// The vector-Jacobian product for a batch: the outputs and, per sample (column),
            /// `J(x)ᵀ · u`, the input gradient of `uᵀ · output`.
            pub fn vjp<const #b: #usize_>(
                &self,
                x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>,
                u: &#smatrix<#t, #outputs, { #b }>,
            ) -> (#smatrix<#t, #outputs, { #b }>, #smatrix<#t, #inputs, { #b }>) {
                let x = #bp::BatchFor::<Self, #t, #inputs, { #b }>::as_batch(x);
                #(#batch_values)*
                #(#vjp_from_u)*
                (#last_a, self.#first.weight.tr_mul(&#first_t))
            }

            /// The loss and its gradient with respect to the inputs, one column per sample (the
            /// weights are left alone).
            pub fn input_gradient<#l, #y, const #b: #usize_>(
                &self,
                x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>,
                target: &#y,
                loss: &#l,
            ) -> (#t, #smatrix<#t, #inputs, { #b }>)
            where
                #l: #bp::Loss<#t, #outputs, { #b }, #y>,
            {
                let x = #bp::BatchFor::<Self, #t, #inputs, { #b }>::as_batch(x);
                #(#batch_values)*
                #(#vjp_from_loss)*
                (value, self.#first.weight.tr_mul(&#first_t))
            }

            /// After [`Self::backward`] with `ws`: the loss's gradient with respect to the
            /// inputs, `W1ᵀ · δ1`, from the δ the backward pass left (one product, no new pass).
            pub fn input_gradient_of<const #b: #usize_>(&self, ws: &#workspace<#t, { #b }>) -> #smatrix<#t, #inputs, { #b }> {
                self.#first.weight.tr_mul(&ws.#first.delta)
            }
        }
    }
}

/// The work of each mode's Jacobian, in multiply-adds plus activation entries (each layer's
/// activation applied to every column it carries). Forward mode starts from the first weight
/// matrix itself (`W1 · I`) and carries `IN` columns; reverse mode carries `OUT` columns and ends
/// with the product by `W1ᵀ`. Measured in `benches/jacobian.rs`: the cheaper count is the faster
/// mode for the seed network (reverse, 10% faster) and `64 => relu 32 => sigmoid 10` (forward,
/// 1.5× faster, though `IN > OUT`); for `6 => tanh 32 => 4` the two modes are within 3%.
fn mode_costs(network: &Network) -> (usize, usize) {
    let (inputs, layers) = (network.inputs, &network.layers);
    let outputs = layers.last().map_or(0, |layer| layer.outputs);
    let activations = |columns: usize| -> usize {
        layers
            .iter()
            .filter(|layer| layer.activation != Activation::Identity)
            .map(|layer| layer.outputs * columns)
            .sum()
    };
    let products: usize = layers
        .iter()
        .skip(1)
        .map(|layer| layer.inputs * layer.outputs)
        .sum();
    let forward = products * inputs + activations(inputs);
    let first = layers
        .first()
        .map_or(0, |layer| layer.inputs * layer.outputs);
    let reverse = (products + first) * outputs + activations(outputs);
    (forward, reverse)
}

#[cfg(test)]
mod tests {
    /// The text of the generated method `name`, from its `fn` to the next item's doc or `fn`.
    fn method_body<'a>(code: &'a str, name: &str) -> &'a str {
        let start = code
            .find(&format!("fn {name} "))
            .unwrap_or_else(|| panic!("no fn {name}"));
        let rest = &code[start + 3..];
        let end = [rest.find(" fn "), rest.find("# [doc")]
            .into_iter()
            .flatten()
            .min();
        &rest[..end.unwrap_or(rest.len())]
    }

    #[test]
    fn jacobians_and_products_are_straight_line() {
        for declaration in [
            "pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >",
            "pub struct Mid < 64 => relu 32 => sigmoid 10 >",
        ] {
            let code = crate::generate(declaration.parse().unwrap()).to_string();
            for name in [
                "jacobian_forward_mode",
                "jacobian_reverse_mode",
                "jvp",
                "vjp",
                "input_gradient",
            ] {
                let body = method_body(&code, name);
                for word in [
                    "for ",
                    "while ",
                    "loop ",
                    "dyn ",
                    "Vec",
                    "Box",
                    "alloc",
                    "workspace (",
                ] {
                    assert!(
                        !body.contains(word),
                        "`{word}` in the generated {name}: {body}"
                    );
                }
                let layers = if declaration.contains("Mid") { 2 } else { 3 };
                assert_eq!(
                    body.matches(". affine_value (").count(),
                    layers,
                    "one affine map per layer in {name}: {body}"
                );
            }
            let reverse = method_body(&code, "jacobian_reverse_mode");
            assert_eq!(
                reverse.matches(". tr_mul (").count(),
                if declaration.contains("Mid") { 2 } else { 3 }
            );
        }
    }

    /// The mode the generated `jacobian` picks for `declaration`.
    fn mode(declaration: &str) -> &'static str {
        let code = crate::generate(declaration.parse().unwrap()).to_string();
        let body = method_body(&code, "jacobian");
        if body.contains("jacobian_forward_mode") {
            "forward"
        } else {
            assert!(body.contains("jacobian_reverse_mode"), "{body}");
            "reverse"
        }
    }

    #[test]
    fn the_mode_follows_the_work() {
        // Counted by hand (multiply-adds + activation entries): 2·6·5 + (6 + 0)·2 = 72 forward
        // against (30 + 12)·5 + 6·5 = 240 reverse.
        assert_eq!(mode("struct W < 2 => tanh 6 => 5 >"), "forward");
        // The seed network: 12·4 + 8·4 = 80 forward against (12 + 20)·1 + 8 = 40 reverse.
        assert_eq!(
            mode("struct S < 4 => relu 5 => relu 2 => sigmoid 1 >"),
            "reverse"
        );
        // 320·64 + 42·64 = 23 168 forward against (320 + 2048)·10 + 420 = 24 100 reverse.
        assert_eq!(mode("struct M < 64 => relu 32 => sigmoid 10 >"), "forward");
        // One output of a wide input: reverse by far.
        assert_eq!(mode("struct R < 16 => tanh 16 => 1 >"), "reverse");
    }
}
