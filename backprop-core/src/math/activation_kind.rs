//! [`ActivationKind`]: a typed description of a layer's activation, which the macro writes into
//! every network's [`LayerInfo`](crate::LayerInfo), so that generic tools (explanations, gradient
//! checks, health reports, pictures) read a layer's derivative, kinks and failure modes from data
//! rather than from its spelling.

use crate::activation::{
    Elementwise, Elu, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Silu, Softplus, Tanh,
};

/// One of the ten activations, with its argument where it takes one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationKind {
    /// `identity`.
    Identity,
    /// `relu`.
    Relu,
    /// `leaky_relu(slope)`.
    LeakyRelu(f64),
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `softplus` (β 1, threshold 20).
    Softplus,
    /// `elu(alpha)`.
    Elu(f64),
    /// `gelu` (erf form).
    Gelu,
    /// `silu`.
    Silu,
    /// `softmax` over a sample's units.
    Softmax,
}

impl ActivationKind {
    /// The activation's name as a declaration spells it, without arguments (`leaky_relu`).
    pub fn name(self) -> &'static str {
        match self {
            ActivationKind::Identity => "identity",
            ActivationKind::Relu => "relu",
            ActivationKind::LeakyRelu(_) => "leaky_relu",
            ActivationKind::Sigmoid => "sigmoid",
            ActivationKind::Tanh => "tanh",
            ActivationKind::Softplus => "softplus",
            ActivationKind::Elu(_) => "elu",
            ActivationKind::Gelu => "gelu",
            ActivationKind::Silu => "silu",
            ActivationKind::Softmax => "softmax",
        }
    }

    /// The local derivative `f'(z)` of an entry-by-entry activation at `z` (with `a = f(z)`), in
    /// `f64`, by the same formulas as the activation's backward pass; `None` for softmax, whose
    /// derivative is a matrix.
    ///
    /// ```
    /// use backprop::ActivationKind;
    /// assert_eq!(ActivationKind::Relu.derivative(-1.0, 0.0), Some(0.0));
    /// assert_eq!(ActivationKind::Sigmoid.derivative(0.0, 0.5), Some(0.25));
    /// assert_eq!(ActivationKind::Softmax.derivative(0.0, 0.5), None);
    /// ```
    pub fn derivative(self, z: f64, a: f64) -> Option<f64> {
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

    /// Pre-activation values where the activation is not twice differentiable: 0 for `relu`,
    /// `leaky_relu` and `elu`, PyTorch's threshold 20 for `softplus`; none for smooth ones.
    pub fn kinks(self) -> &'static [f64] {
        match self {
            ActivationKind::Relu | ActivationKind::LeakyRelu(_) | ActivationKind::Elu(_) => &[0.0],
            ActivationKind::Softplus => &[20.0],
            _ => &[],
        }
    }

    /// Whether a unit can die: `relu` and `leaky_relu` pass no (or only a small slope of)
    /// gradient back wherever `z ≤ 0`.
    pub fn can_die(self) -> bool {
        matches!(self, ActivationKind::Relu | ActivationKind::LeakyRelu(_))
    }

    /// Whether a unit can saturate: `sigmoid`, `tanh`, `softplus` and `elu` have a local
    /// derivative that vanishes for large |z| (or large negative z).
    pub fn can_saturate(self) -> bool {
        matches!(
            self,
            ActivationKind::Sigmoid
                | ActivationKind::Tanh
                | ActivationKind::Softplus
                | ActivationKind::Elu(_)
        )
    }

    /// Whether the activation turns logits into probabilities (`sigmoid`, `softmax`).
    pub const fn gives_probabilities(self) -> bool {
        matches!(self, ActivationKind::Sigmoid | ActivationKind::Softmax)
    }
}
