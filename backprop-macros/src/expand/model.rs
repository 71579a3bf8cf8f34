//! `impl Model<IN, OUT>`: the straight-line forward and backward passes.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::{activation_value, layer_input, layer_name, path, private, respan, workspace_value};
use crate::activation::Activation;
use crate::names::Generics;
use crate::valid::Network;

/// `impl Model<IN, OUT> for Net<T>`: the straight-line forward and backward passes.
pub(crate) fn model_impl(
    network: &Network,
    name: &Ident,
    workspace: &Ident,
    g: &Generics,
) -> TokenStream {
    let bp = private(network);
    let Generics {
        scalar: t,
        batch: b,
        loss: l,
        target: y,
        ..
    } = g;
    let inputs = network.inputs;
    let Some(last) = network.layers.last() else {
        return TokenStream::new();
    };
    let (outputs, last_field) = (last.outputs, path(last));
    let paths: Vec<TokenStream> = network.layers.iter().map(path).collect();
    let layer_names = network.layers.iter().map(layer_name);
    let new_workspace = workspace_value(network, workspace, b);
    let smatrix = quote!(#bp::nalgebra::SMatrix);

    let forward_steps = network.layers.iter().enumerate().map(|(index, layer)| {
        let field = path(layer);
        let input = layer_input(network, index);
        let activation = activation_value(&bp, t, layer.activation);
        // self.fc1.affine(x, &mut ws.fc1.z);
        // Activation::forward(&Relu, &ws.fc1.z, &mut ws.fc1.a);
        quote! {
            self.#field.affine(#input, &mut ws.#field.z);
            {
                let (z, a, _) = ws.#field.split_mut();
                #bp::Activation::<#t>::forward(&#activation, z, a);
            }
        }
    });

    let backward_steps = network
        .layers
        .iter()
        .enumerate()
        .rev()
        .map(|(index, layer)| {
            let field = path(layer);
            let input = layer_input(network, index);
            let through_activation = through_activation(network, index, t);
            let to_previous = to_previous(network, index);
            // Activation::backward(&Sigmoid, &ws.fc3.z, &ws.fc3.a, &mut ws.fc3.delta);
            // grad.fc3.set_gradient(&ws.fc3.delta, &ws.fc2.a);
            // self.fc3.propagate(&ws.fc3.delta, &mut ws.fc2.delta);
            quote! {
                #through_activation
                grad.#field.set_gradient(&ws.#field.delta, #input);
                #to_previous
            }
        });

    // The fused backward pass: δ through the activation, then to the layer before through the
    // old weights, then the layer to the visitor (which may change it).
    // visitor.visit(2, &mut self.fc3, &ws.fc3.delta, &ws.fc2.a);
    let visit = |index: usize, input: TokenStream| {
        let layer = &network.layers[index];
        let field = path(layer);
        let linear = if layer.on_heap() {
            quote!(#bp::large::linear_mut(&mut self.#field))
        } else {
            quote!(&mut self.#field)
        };
        quote!(#bp::visitor::LayerVisitor::<#t>::visit(visitor, #index, #linear, &ws.#field.delta, #input);)
    };
    let visit_steps = network.layers.iter().enumerate().rev().map(|(index, _)| {
        let input = layer_input(network, index);
        let through_activation = through_activation(network, index, t);
        let to_previous = to_previous(network, index);
        let visit = visit(index, input);
        quote! {
            #through_activation
            #to_previous
            #visit
        }
    });
    let revisit_steps = (0..network.layers.len())
        .rev()
        .map(|index| visit(index, layer_input(network, index)));

    let widest = network.widest();
    let model = quote!(#bp::Model<#inputs, #outputs>);
    // A loss that takes logits after a softmax or sigmoid: a build error on the last layer.
    let output_check = respan(
        quote! {
            const { #bp::model::check_output::<Self>(<#l as #bp::Loss<#t, #outputs, { #b }, #y>>::TAKES_LOGITS) };
        },
        last.span,
    );

    // impl<T> Model<4, 1> for Net<T> {
    //     fn forward_into(..) { self.fc1.affine(x, &mut ws.fc1.z); ...; &ws.fc3.a }
    //     fn backward(..) { self.forward_into(x, ws); loss.gradient(..); ...; value }
    // }
    quote! {
        impl<#t: #bp::Scalar> #model for #name<#t> {
            type Workspace<const #b: ::core::primitive::usize> = #workspace<#t, { #b }>;

            fn workspace<const #b: ::core::primitive::usize>(&self) -> #workspace<#t, { #b }> {
                #new_workspace
            }

            #[inline]
            fn forward_batch<const #b: ::core::primitive::usize>(&self, x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>) -> #smatrix<#t, #outputs, { #b }> {
                let x = #bp::BatchFor::<Self, #t, #inputs, { #b }>::as_batch(x);
                if #bp::heap::fits_inline::<#t>(#widest * #b) {
                    self.forward_values(x)
                } else {
                    let mut ws = <Self as #model>::workspace::<{ #b }>(self);
                    <Self as #model>::forward_into(self, x, &mut ws).clone_owned()
                }
            }

            #[inline]
            fn forward_into<'w, const #b: ::core::primitive::usize>(
                &self,
                x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>,
                ws: &'w mut #workspace<#t, { #b }>,
            ) -> &'w #smatrix<#t, #outputs, { #b }> {
                let x = #bp::BatchFor::<Self, #t, #inputs, { #b }>::as_batch(x);
                #(#forward_steps)*
                &ws.#last_field.a
            }

            #[inline]
            fn backward<const #b: ::core::primitive::usize, #l, #y>(
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
                #output_check
                let x = #bp::BatchFor::<Self, #t, #inputs, { #b }>::as_batch(x);
                <Self as #model>::forward_into(self, x, ws);
                let value = {
                    let (_, a, delta) = ws.#last_field.split_mut();
                    #bp::Loss::<#t, #outputs, { #b }, #y>::gradient(loss, a, target, delta)
                };
                #(#backward_steps)*
                value
            }

            #[inline]
            fn backward_visit<const #b: ::core::primitive::usize, #l, #y, V>(
                &mut self,
                x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>,
                target: &#y,
                loss: &#l,
                ws: &mut #workspace<#t, { #b }>,
                visitor: &mut V,
            ) -> #t
            where
                #l: #bp::Loss<#t, #outputs, { #b }, #y>,
                V: #bp::visitor::LayerVisitor<#t>,
            {
                #output_check
                let x = #bp::BatchFor::<Self, #t, #inputs, { #b }>::as_batch(x);
                <Self as #model>::forward_into(self, x, ws);
                let value = {
                    let (_, a, delta) = ws.#last_field.split_mut();
                    #bp::Loss::<#t, #outputs, { #b }, #y>::gradient(loss, a, target, delta)
                };
                #(#visit_steps)*
                value
            }

            #[inline]
            fn visit_layers<const #b: ::core::primitive::usize, V>(
                &mut self,
                x: &impl #bp::BatchFor<Self, #t, #inputs, { #b }>,
                ws: &#workspace<#t, { #b }>,
                visitor: &mut V,
            ) where
                V: #bp::visitor::LayerVisitor<#t>,
            {
                let x = #bp::BatchFor::<Self, #t, #inputs, { #b }>::as_batch(x);
                #(#revisit_steps)*
            }

            fn layer_values<'w, const #b: ::core::primitive::usize>(
                ws: &'w #workspace<#t, { #b }>,
                name: &::core::primitive::str,
            ) -> ::core::option::Option<#bp::LayerView<'w, #t>> {
                match name {
                    #(#layer_names => ::core::option::Option::Some(ws.#paths.view()),)*
                    _ => ::core::option::Option::None,
                }
            }
        }
    }
}

/// ∂E/∂a → ∂E/∂z through layer `index`'s activation, in place in its δ (nothing for identity).
fn through_activation(network: &Network, index: usize, t: &Ident) -> TokenStream {
    let layer = &network.layers[index];
    if layer.activation == Activation::Identity {
        return quote!();
    }
    let (bp, field) = (private(network), path(layer));
    let activation = activation_value(&bp, t, layer.activation);
    quote! {
        {
            let (z, a, delta) = ws.#field.split_mut();
            #bp::Activation::<#t>::backward(&#activation, z, a, delta);
        }
    }
}

/// δ of the layer before, `Wᵀ · δ` through layer `index`'s weights (nothing for the first).
fn to_previous(network: &Network, index: usize) -> TokenStream {
    if index == 0 {
        return quote!();
    }
    let field = path(&network.layers[index]);
    let previous = path(&network.layers[index - 1]);
    quote!(self.#field.propagate(&ws.#field.delta, &mut ws.#previous.delta);)
}
