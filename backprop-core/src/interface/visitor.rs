//! [`LayerVisitor`]: what the fused backward pass does with each layer once its δ is known.
//!
//! A generated network's [`Model::backward_visit`](crate::model::Model::backward_visit) runs the
//! forward pass, the loss and the backward pass, and hands each layer, last to first, to the
//! visitor right after propagating δ through the layer's weights to the layer before: the
//! visitor may then change the layer (the fused training step applies the optimizer's update to
//! it) without changing the gradient of any layer below. The layer's gradient is never stored:
//! the visitor makes it from δ and the layer's input ([`Linear::weight_gradient_chunks`],
//! [`Linear::bias_gradient`]).

use nalgebra::SMatrix;

use crate::linear::Linear;
use crate::scalar::Scalar;

/// Receives each layer of a backward pass, with what its gradient is made of.
pub trait LayerVisitor<T: Scalar> {
    /// Layer `layer` (whose weight is parameter tensor `2 · layer` and bias `2 · layer + 1` in
    /// [`Network::params`](crate::network::Network::params) order), with `delta`, ∂loss/∂z for
    /// the batch, and `input`, the values the layer read; δ of the layer before has already been
    /// computed from this layer's weights.
    fn visit<const I: usize, const O: usize, const B: usize>(
        &mut self,
        layer: usize,
        linear: &mut Linear<T, I, O>,
        delta: &SMatrix<T, O, B>,
        input: &SMatrix<T, I, B>,
    );
}
