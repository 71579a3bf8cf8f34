//! [`ActivationKind`]: a typed description of a layer's activation (the table is the
//! `backprop-activations` crate's, which the `network!` macro parses declarations against), so
//! that generic tools (explanations, gradient checks, health reports, pictures) read a layer's
//! derivative, kinks and failure modes from data rather than from its spelling.

pub use backprop_activations::{ActivationKind, Argument};

use crate::activation::{
    Elementwise, Elu, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Silu, Softplus, Tanh,
};

/// The local derivative of an activation, computed by the activation's own backward formulas.
pub trait Derivative {
    /// The local derivative `f'(z)` of an entry-by-entry activation at `z` (with `a = f(z)`), in
    /// `f64`, by the same formulas as the activation's backward pass; `None` for softmax, whose
    /// derivative is a matrix.
    ///
    /// ```
    /// use backprop::activation_kind::{ActivationKind, Derivative};
    /// assert_eq!(ActivationKind::Relu.derivative(-1.0, 0.0), Some(0.0));
    /// assert_eq!(ActivationKind::Sigmoid.derivative(0.0, 0.5), Some(0.25));
    /// assert_eq!(ActivationKind::Softmax.derivative(0.0, 0.5), None);
    /// ```
    fn derivative(self, z: f64, a: f64) -> Option<f64>;
}

impl Derivative for ActivationKind {
    fn derivative(self, z: f64, a: f64) -> Option<f64> {
        Some(match self {
            ActivationKind::Identity => Identity.derivative(z, a),
            ActivationKind::Relu => Relu.derivative(z, a),
            ActivationKind::LeakyRelu(slope) => LeakyRelu::<f64> { slope }.derivative(z, a),
            ActivationKind::Sigmoid => Sigmoid.derivative(z, a),
            ActivationKind::Tanh => Tanh.derivative(z, a),
            ActivationKind::Softplus => Softplus.derivative(z, a),
            ActivationKind::Elu(alpha) => Elu::<f64> { alpha }.derivative(z, a),
            ActivationKind::Gelu => Gelu.derivative(z, a),
            ActivationKind::Silu => Silu.derivative(z, a),
            ActivationKind::Softmax => return None,
        })
    }
}
