//! Code generation: a checked [`Network`] in, the struct, its workspace and their impls out,
//! split by what is generated: `inherent.rs` (constants, constructors, the passes users call),
//! `model.rs` (`impl Model`, the straight-line passes), `network.rs` (`impl Network`),
//! `layers.rs` (what each layer expands to) and `text.rs` (architecture and derivation texts);
//! this file emits the items and the fallback.
//!
//! Every path in the output is absolute (`::backprop::__private::...`, `::core::...`), so the code
//! works under `#![no_implicit_prelude]` and beside a user type called `f32`. The forward and
//! backward passes are straight-line: one statement group per layer, no loop over layers, no trait
//! object, no allocation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::Ident;

use crate::ast::Header;
use crate::names::{self, part_type, Generics};
use crate::valid::{is_cfg, CheckedLayer, Network};

mod inherent;
mod layers;
mod model;
mod network;
mod text;

use inherent::inherent_impl;
pub(crate) use layers::{
    activation_kind, activation_value, layer_input, layer_name, layer_type, path, respan,
    storage_checks, workspace_value, HEAP_WEIGHTS,
};
use model::model_impl;
use network::network_impl;
pub(crate) use text::{architecture_text, derivation_text};

/// The generated code for a checked declaration: items for the item form, a block expression
/// evaluating to a ready-to-use network for the expression form.
pub fn expand(network: &Network) -> TokenStream {
    match &network.name {
        Some(name) => items(network, name),
        None => {
            let name = format_ident!("__BackpropNetwork");
            let items = items(network, &name);
            // {
            //     pub struct __BackpropNetwork<T = f32> { ... }  (and its impls)
            //     __BackpropNetwork::<f32>::init(0)
            // }
            quote! {
                {
                    #items
                    __BackpropNetwork::<::core::primitive::f32>::init(0)
                }
            }
        }
    }
}

/// The hidden re-export every generated path goes through: `::backprop::__private`, or under
/// the path `#[backprop(crate = path)]` gives.
pub(crate) fn private(network: &Network) -> TokenStream {
    let krate = &network.krate;
    quote!(#krate::__private)
}

/// What a declaration with errors expands to besides the errors: the bare struct and its
/// workspace under the right names (so uses of them add no "cannot find type" errors), or, for
/// the expression form, errors only, the last in expression position (its value has the error
/// type, on which rustc reports nothing more).
pub fn fallback(error: syn::Error, header: Option<Header>) -> TokenStream {
    let mut errors: Vec<TokenStream> = error.into_iter().map(|e| e.to_compile_error()).collect();
    let Some(header) = header else {
        return quote!(#(#errors)*);
    };
    let Some(name) = &header.name else {
        // { compile_error! { "first" } compile_error!("last") }
        let last = errors.pop();
        return quote!({ #(#errors)* #last });
    };
    // Docs and cfgs only: another attribute (a derive, `#[backprop]`) could add errors of its own.
    let attrs = header
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc") || is_cfg(attr));
    let cfgs = header.attrs.iter().filter(|attr| is_cfg(attr));
    let vis = &header.vis;
    let workspace = names::workspace(name);
    // compile_error! { "..." }
    // #[allow(dead_code)] pub struct Net<T = f32> { #[doc(hidden)] __backprop_fallback: PhantomData<T> }
    // #[allow(dead_code)] pub struct NetWorkspace<T = f32, const B: usize = 1> { ... }
    quote! {
        #(#errors)*
        #(#attrs)*
        #[allow(dead_code)]
        #vis struct #name<T = ::core::primitive::f32> {
            #[doc(hidden)]
            __backprop_fallback: ::core::marker::PhantomData<T>,
        }
        #(#cfgs)*
        #[allow(dead_code)]
        #vis struct #workspace<T = ::core::primitive::f32, const B: ::core::primitive::usize = 1> {
            #[doc(hidden)]
            __backprop_fallback: ::core::marker::PhantomData<T>,
        }
    }
}

/// Every type the expansion of `network` under `name` defines: generic parameters avoid these.
fn defined_types(network: &Network, name: &Ident) -> Vec<Ident> {
    let mut types = vec![name.clone(), names::workspace(name)];
    for part in &network.parts {
        let ty = part_type(name, &part.name);
        types.push(names::workspace(&ty));
        types.push(ty);
    }
    types
}

/// The struct, its workspace, the inherent impl and the `Network` impl.
///
/// The batch size is passed as `{ B }`, never `B`: rustc reads a bare generic argument as a type
/// first, so a user type called `B` anywhere in scope would otherwise be taken for it.
fn items(network: &Network, name: &Ident) -> TokenStream {
    let bp = private(network);
    let g = Generics::avoiding(&defined_types(network, name));
    let (t, b) = (&g.scalar, &g.batch);
    let inputs = network.inputs;
    let outputs = network.outputs();
    let workspace = names::workspace(name);
    let vis = &network.vis;
    let attrs = &network.attrs;
    let cfgs = &network.cfgs;
    let summary = architecture_text(network);
    let shown = name.unraw();
    let shown_name = shown.to_string();
    let default_doc = if attrs.iter().any(|attr| attr.path().is_ident("doc")) {
        quote!()
    } else {
        let doc = format!("A network generated by `network!`: `{summary}`.");
        quote!(#[doc = #doc])
    };

    let layer_fields = network.layers.iter().enumerate().map(|(index, layer)| {
        let CheckedLayer {
            field,
            inputs,
            outputs,
            activation,
            ..
        } = layer;
        let doc = format!(
            "Layer {}: {inputs} → {outputs}, then `{}`.",
            index + 1,
            crate::activation::spelling(*activation)
        );
        let ty = layer_type(&bp, t, layer);
        quote! {
            #[doc = #doc]
            pub #field: #ty
        }
    });
    let layer_fields: Vec<TokenStream> = if network.parts.is_empty() {
        layer_fields.collect()
    } else {
        network
            .parts
            .iter()
            .map(|part| {
                let (field, ty) = (&part.name, part_type(name, &part.name));
                let doc = format!(
                    "Part `{}` of the chain, a network of its own: [`{ty}`].",
                    field.unraw()
                );
                quote! {
                    #[doc = #doc]
                    pub #field: #ty<#t>
                }
            })
            .collect()
    };
    let buffer_fields = network.layers.iter().map(|layer| {
        let CheckedLayer { field, outputs, .. } = layer;
        let doc = format!("Values of layer `{}` for the batch.", field.unraw());
        quote! {
            #[doc = #doc]
            pub #field: #bp::Owned<#bp::LayerBuffers<#t, #outputs, { #b }>>
        }
    });
    let buffer_fields: Vec<TokenStream> = if network.parts.is_empty() {
        buffer_fields.collect()
    } else {
        network
            .parts
            .iter()
            .map(|part| {
                let field = &part.name;
                let ty = names::workspace(&part_type(name, field));
                let doc = format!("Buffers of part `{}`.", field.unraw());
                quote! {
                    #[doc = #doc]
                    pub #field: #ty<#t, { #b }>
                }
            })
            .collect()
    };
    let part_items = network.parts.iter().map(|part| {
        let ty = part_type(name, &part.name);
        let doc = format!(
            "Part `{}` of [`{shown}`], usable on its own.",
            part.name.unraw()
        );
        let part_network = Network {
            attrs: vec![syn::parse_quote!(#[doc = #doc])],
            cfgs: network.cfgs.clone(),
            krate: network.krate.clone(),
            vis: network.vis.clone(),
            name: Some(ty.clone()),
            inputs: part.inputs,
            layers: part.layers.clone(),
            parts: Vec::new(),
            budget: None,
            weights: None,
        };
        items(&part_network, &ty)
    });
    let workspace_doc = format!(
        "Caller-owned buffers for [`{shown}`]'s forward and backward passes over a batch of `B` samples \
         (`B = 1` for one sample). Make one with `{shown}::workspace` and reuse it: a training step then \
         allocates nothing."
    );
    let inherent = inherent_impl(network, name, &workspace, &g);
    let derivatives = crate::derivatives::inherent_impl(network, name, &workspace, &g);
    let model = model_impl(network, name, &workspace, &g);
    let network_impl = network_impl(network, name, &g);
    let storage_checks = storage_checks(network);
    let workspace_costs = crate::costs::workspace_constants(network, name, t, b);
    let budget_checks = crate::costs::budget_checks(network, name);
    let weights = match &network.weights {
        Some((attr, file)) => crate::weights::expand(network, name, file, attr),
        None => TokenStream::new(),
    };

    // #[doc = "..."] pub struct Net<T = f32> { pub fc1: Linear<T, 4, 5>, ... }
    // pub struct NetWorkspace<T = f32, const B: usize = 1> { pub fc1: LayerBuffers<T, 5, B>, ... }
    // (every item under the user's #[cfg]s)
    quote! {
        #(#part_items)*

        #(#cfgs)*
        #(#attrs)*
        #default_doc
        #[derive(::core::clone::Clone, ::core::cmp::PartialEq)]
        #vis struct #name<#t: #bp::Scalar = ::core::primitive::f32> {
            #(#layer_fields,)*
        }

        // impl Debug for Net<T>: "Net<4 => relu 5 => 1> { 31 parameters; fc1.weight 5×4 ... }"
        // impl Default for Net<T>: Net::zeros()
        #(#cfgs)*
        #[allow(deprecated)]
        impl<#t: #bp::Scalar> ::core::fmt::Debug for #name<#t> {
            /// The architecture and a line per tensor (shape, range, norm); `{:#?}` prints every value.
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                #bp::summary::debug_network(self, f, #shown_name, #summary)
            }
        }

        #(#cfgs)*
        #[allow(deprecated)]
        impl<#t: #bp::Scalar> ::core::default::Default for #name<#t> {
            /// A network whose weights and biases are all zero, as `zeros()`.
            fn default() -> Self {
                Self::zeros()
            }
        }

        // impl Serialize, Deserialize for Net<T> (nothing without backprop's `serde` feature)
        #(#cfgs)*
        #bp::serde_impls! { #name, #t }

        #(#cfgs)*
        #[doc = #workspace_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #[allow(dead_code, deprecated)]
        #vis struct #workspace<#t: #bp::Scalar = ::core::primitive::f32, const #b: ::core::primitive::usize = 1> {
            #(#buffer_fields,)*
        }

        #(#cfgs)*
        #[allow(dead_code, deprecated)]
        impl<#t: #bp::Scalar, const #b: ::core::primitive::usize> #workspace<#t, { #b }> {
            /// The values of the layer called `name` (`"fc1"`), as slices, if there is one.
            pub fn layer(&self, name: &::core::primitive::str) -> ::core::option::Option<#bp::LayerView<'_, #t>> {
                <#name<#t> as #bp::Model<#inputs, #outputs>>::layer_values::<{ #b }>(self, name)
            }

            #workspace_costs
        }

        // A user's #[deprecated] on the struct is for the user's code, not for these impls.
        #(#cfgs)*
        #[allow(deprecated)]
        #inherent
        #(#cfgs)*
        #[allow(deprecated)]
        #derivatives
        #(#cfgs)*
        #[allow(deprecated)]
        #model
        #(#cfgs)*
        #[allow(deprecated)]
        #network_impl
        #storage_checks
        #budget_checks
        #weights
    }
}
