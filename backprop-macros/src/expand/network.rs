//! `impl Network`: sizes, layer descriptions and named parameters.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::{activation_kind, layer_name, path, private};
use crate::names::Generics;
use crate::valid::Network;

/// Whether generated parameter access reads (`Param`, `tensors()`) or writes (`ParamMut`,
/// `tensors_mut()`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// `impl Network for Net<T>`: sizes, layers and named parameters for generic code.
pub(crate) fn network_impl(network: &Network, name: &Ident, g: &Generics) -> TokenStream {
    let bp = private(network);
    let t = &g.scalar;
    let inputs = network.inputs;
    let outputs = network.outputs();
    let parameters = network.parameters();
    let usize_ = quote!(::core::primitive::usize);

    let layer_infos = network.layers.iter().map(|layer| {
        let name = layer_name(layer);
        let (inputs, outputs) = (layer.inputs, layer.outputs);
        let activation = crate::activation::spelling(layer.activation);
        let kind = activation_kind(&bp, layer.activation);
        quote!(#bp::LayerInfo { name: #name, inputs: #inputs, outputs: #outputs, activation: #activation, kind: #kind })
    });
    // let (w1, b1) = self.fc1.tensors_mut(); (one borrow per layer, inline or on the heap)
    let params = |access: Access| {
        let mutable = access == Access::Write;
        network
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let field = path(layer);
                let (rows, cols) = (layer.outputs, layer.inputs);
                let weight = format!("{}.weight", layer_name(layer));
                let bias = format!("{}.bias", layer_name(layer));
                let (w, b) = (
                    format_ident!("w{}", index + 1),
                    format_ident!("b{}", index + 1),
                );
                let (ty, split) = if mutable {
                    (
                        quote!(#bp::ParamMut),
                        quote!(let (#w, #b) = self.#field.tensors_mut();),
                    )
                } else {
                    (
                        quote!(#bp::Param),
                        quote!(let (#w, #b) = self.#field.tensors();),
                    )
                };
                (
                    split,
                    [
                        quote!(#ty { name: #weight, rows: #rows, cols: #cols, values: #w }),
                        quote!(#ty { name: #bias, rows: #rows, cols: 1, values: #b }),
                    ],
                )
            })
            .unzip::<_, _, Vec<_>, Vec<_>>()
    };
    // f(self.fc1.weight.as_mut_slice(), other.fc1.weight.as_slice()); ... one call per tensor
    let zipped = network.layers.iter().flat_map(|layer| {
        let field = path(layer);
        [quote!(weight), quote!(bias)].map(|tensor| {
            quote!(f(self.#field.#tensor.as_mut_slice(), other.#field.#tensor.as_slice());)
        })
    });
    // self.fc1.axpy(alpha, &other.fc1); ... one call per layer, sizes static
    let axpys = network.layers.iter().map(|layer| {
        let field = path(layer);
        quote!(self.#field.axpy(alpha, &other.#field);)
    });
    // 0 => self.fc1.weight.as_slice(), 1 => self.fc1.bias.as_slice(), ...
    let tensors = |method: TokenStream| {
        network
            .layers
            .iter()
            .flat_map(|layer| {
                let field = path(layer);
                [quote!(weight), quote!(bias)].map(|tensor| quote!(self.#field.#tensor.#method()))
            })
            .enumerate()
            .map(|(index, tensor)| quote!(#index => #tensor,))
            .collect::<Vec<_>>()
    };
    let (tensors_ref, tensors_mut) = (tensors(quote!(as_slice)), tensors(quote!(as_mut_slice)));
    let (read_splits, read) = params(Access::Read);
    let (write_splits, write) = params(Access::Write);
    let (read, write) = (read.iter().flatten(), write.iter().flatten());

    // impl<T> Network for Net<T> {
    //     fn params(&self) -> impl Iterator<Item = Param<'_, #t>> {
    //         [Param { name: "fc1.weight", rows: 5, cols: 4, values: self.fc1.weight.as_slice() }, ...].into_iter()
    //     }
    //     ...
    // }
    quote! {
        impl<#t: #bp::Scalar> #bp::Network for #name<#t> {
            type Scalar = #t;
            const INPUTS: #usize_ = #inputs;
            const OUTPUTS: #usize_ = #outputs;
            const PARAMETERS: #usize_ = #parameters;
            const LAYERS: &'static [#bp::LayerInfo] = &[#(#layer_infos),*];

            fn zeros() -> Self {
                #name::zeros()
            }

            fn params(&self) -> impl ::core::iter::Iterator<Item = #bp::Param<'_, #t>> {
                #(#read_splits)*
                ::core::iter::IntoIterator::into_iter([#(#read),*])
            }

            #[inline]
            fn tensor(&self, index: #usize_) -> &[#t] {
                match index {
                    #(#tensors_ref)*
                    _ => &[],
                }
            }

            #[inline]
            fn tensor_mut(&mut self, index: #usize_) -> &mut [#t] {
                match index {
                    #(#tensors_mut)*
                    _ => &mut [],
                }
            }

            fn zip_params_mut(&mut self, other: &Self, mut f: impl ::core::ops::FnMut(&mut [#t], &[#t])) {
                #(#zipped)*
            }

            fn axpy(&mut self, alpha: #t, other: &Self) {
                #(#axpys)*
            }

            fn params_mut(&mut self) -> impl ::core::iter::Iterator<Item = #bp::ParamMut<'_, #t>> {
                #(#write_splits)*
                ::core::iter::IntoIterator::into_iter([#(#write),*])
            }
        }
    }
}
