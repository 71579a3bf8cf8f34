//! What each layer expands to: its type and storage, its path, its buffers, its activation.

use proc_macro2::{Literal, TokenStream};
use quote::quote;
use syn::Ident;

use super::private;
use crate::activation::Activation;
use crate::valid::{CheckedLayer, Network};
use syn::ext::IdentExt;

/// Layers with more weights than this live on the heap: core's `sizes::HEAP_WEIGHTS`, mirrored
/// here because the macro picks a layer's type; every expansion asserts the two agree.
pub const HEAP_WEIGHTS: usize = 16_384;

/// The field type of a layer: `Linear<T, IN, OUT>`, boxed when large (the facade's
/// `large::Layer`, a `Box` with the `alloc` feature).
pub(crate) fn layer_type(bp: &TokenStream, t: &Ident, layer: &CheckedLayer) -> TokenStream {
    let (inputs, outputs) = (layer.inputs, layer.outputs);
    let linear = quote!(#bp::Linear<#t, #inputs, #outputs>);
    if layer.on_heap() {
        quote!(#bp::large::Layer<#linear>)
    } else {
        linear
    }
}

/// For each boxed layer, `const _: () = large::check::<Linear<f32, IN, OUT>>();` spanned on the
/// layer's width: without the `alloc` feature, the one error saying to enable it or make the
/// layer smaller, on the layer that is too large (once: a chain leaves it to its parts).
pub(crate) fn storage_checks(network: &Network) -> TokenStream {
    if !network.parts.is_empty() {
        // A chain's layers are its parts', which check their own.
        return TokenStream::new();
    }
    let bp = private(network);
    let cfgs = &network.cfgs;
    let checks = network.layers.iter().filter(|layer| layer.on_heap()).map(|layer| {
        let (inputs, outputs) = (layer.inputs, layer.outputs);
        let check = respan(
            quote!(#bp::large::check::<#bp::Linear<::core::primitive::f32, #inputs, #outputs>>()),
            layer.span,
        );
        quote!(#(#cfgs)* const _: () = #check;)
    });
    // The storage rule above is core's: a mismatched pair of crates does not build.
    quote! {
        #(#cfgs)*
        const _: () = ::core::assert!(
            #bp::sizes::HEAP_WEIGHTS == #HEAP_WEIGHTS,
            "backprop-macros and backprop-core disagree on the size of a heap-stored layer: use matching versions",
        );
        #(#checks)*
    }
}

/// `tokens` with every span set to `span`, groups included.
pub(crate) fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// The path to a layer from the network (or its workspace or gradient): `fc1`, or `encoder.fc1`
/// in a chained network.
pub(crate) fn path(layer: &CheckedLayer) -> TokenStream {
    let field = &layer.field;
    match &layer.part {
        Some(part) => quote!(#part.#field),
        None => quote!(#field),
    }
}

/// A layer's name as parameter names use it: `fc1`, or `encoder.fc1` (raw identifiers
/// unraw: a layer `r#type` is `type`, as in PyTorch).
pub(crate) fn layer_name(layer: &CheckedLayer) -> String {
    match &layer.part {
        Some(part) => format!("{}.{}", part.unraw(), layer.field.unraw()),
        None => layer.field.unraw().to_string(),
    }
}

/// A fresh workspace value: zeroed buffers per layer, or each part's own workspace.
pub(crate) fn workspace_value(network: &Network, workspace: &Ident, b: &Ident) -> TokenStream {
    let bp = private(network);
    if network.parts.is_empty() {
        let fields = network.layers.iter().map(|layer| &layer.field);
        quote!(#workspace { #(#fields: #bp::heap::zeroed(),)* })
    } else {
        let parts = network.parts.iter().map(|part| &part.name);
        quote!(#workspace { #(#parts: self.#parts.workspace::<{ #b }>(),)* })
    }
}

/// What feeds layer `index`: the network input `x`, or the previous layer's output.
pub(crate) fn layer_input(network: &Network, index: usize) -> TokenStream {
    if index == 0 {
        quote!(x)
    } else {
        let previous = path(&network.layers[index - 1]);
        quote!(&ws.#previous.a)
    }
}

/// The core value implementing the activation, such as `LeakyRelu::<#t>::new(0.2)`.
pub(crate) fn activation_value(bp: &TokenStream, t: &Ident, activation: Activation) -> TokenStream {
    let module = quote!(#bp::activation);
    match activation {
        Activation::Identity => quote!(#module::Identity),
        Activation::Relu => quote!(#module::Relu),
        Activation::LeakyRelu(slope) => {
            let slope = Literal::f64_suffixed(slope);
            quote!(#module::LeakyRelu::<#t>::new(#slope))
        }
        Activation::Sigmoid => quote!(#module::Sigmoid),
        Activation::Tanh => quote!(#module::Tanh),
        Activation::Softplus => quote!(#module::Softplus),
        Activation::Elu(alpha) => {
            let alpha = Literal::f64_suffixed(alpha);
            quote!(#module::Elu::<#t>::new(#alpha))
        }
        Activation::Gelu => quote!(#module::Gelu),
        Activation::Silu => quote!(#module::Silu),
        Activation::Softmax => quote!(#module::Softmax),
    }
}

/// The typed description of the activation, such as `ActivationKind::LeakyRelu(0.2)`.
pub(crate) fn activation_kind(bp: &TokenStream, activation: Activation) -> TokenStream {
    let kind = quote!(#bp::ActivationKind);
    match activation {
        Activation::Identity => quote!(#kind::Identity),
        Activation::Relu => quote!(#kind::Relu),
        Activation::LeakyRelu(slope) => {
            let slope = Literal::f64_suffixed(slope);
            quote!(#kind::LeakyRelu(#slope))
        }
        Activation::Sigmoid => quote!(#kind::Sigmoid),
        Activation::Tanh => quote!(#kind::Tanh),
        Activation::Softplus => quote!(#kind::Softplus),
        Activation::Elu(alpha) => {
            let alpha = Literal::f64_suffixed(alpha);
            quote!(#kind::Elu(#alpha))
        }
        Activation::Gelu => quote!(#kind::Gelu),
        Activation::Silu => quote!(#kind::Silu),
        Activation::Softmax => quote!(#kind::Softmax),
    }
}
