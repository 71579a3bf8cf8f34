//! Stochastic gradient descent as `torch.optim.SGD` computes it.

use crate::heap::{boxed, Boxed};
use crate::network::Network;
use crate::optim::{require, Optimizer, OptimizerError};
use crate::scalar::constant;

/// `torch.optim.SGD`: learning rate, momentum, dampening, Nesterov momentum and weight decay.
///
/// Per parameter `p` with gradient `g`: `g ← g + weight_decay · p`; with momentum, the buffer is
/// `b ← g` on the first step and `b ← momentum · b + (1 − dampening) · g` after, and the step
/// direction is `g + momentum · b` (Nesterov) or `b`; then `p ← p − lr · direction`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd<N> {
    /// The learning rate.
    pub lr: f64,
    /// The momentum factor (0: none).
    pub momentum: f64,
    /// The dampening of the momentum.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// The momentum buffer, shaped like the network; made by `prepare` or the first step with
    /// momentum.
    buffer: Option<Boxed<N>>,
    /// Whether the buffer holds a momentum yet (torch starts it from the first gradient).
    started: bool,
}

impl<N> Sgd<N> {
    /// SGD with learning rate `lr` and PyTorch's other defaults (no momentum, no weight decay).
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            buffer: None,
            started: false,
        }
    }

    /// With momentum.
    pub fn momentum(self, momentum: f64) -> Self {
        Sgd { momentum, ..self }
    }

    /// With dampening of the momentum.
    pub fn dampening(self, dampening: f64) -> Self {
        Sgd { dampening, ..self }
    }

    /// With Nesterov momentum.
    pub fn nesterov(self, nesterov: bool) -> Self {
        Sgd { nesterov, ..self }
    }

    /// With weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        Sgd {
            weight_decay,
            ..self
        }
    }
}

impl<N: Network> Optimizer<N> for Sgd<N> {
    fn step(&mut self, net: &mut N, grad: &N) {
        if self.momentum == 0.0 && self.weight_decay == 0.0 {
            // p ← p + (−lr) · g, as torch's `param.add_(grad, alpha=-lr)`.
            net.axpy(constant(-self.lr), grad);
            return;
        }
        let lr: N::Scalar = constant(self.lr);
        let decay: N::Scalar = constant(self.weight_decay);
        let momentum: N::Scalar = constant(self.momentum);
        let keep: N::Scalar = constant(1.0 - self.dampening);
        if self.momentum == 0.0 {
            net.zip_params_mut(grad, |params, grads| {
                for (p, &g) in params.iter_mut().zip(grads) {
                    *p -= lr * (g + decay * *p);
                }
            });
            return;
        }
        let first = !self.started;
        self.started = true;
        let buffer: &mut N = self.buffer.get_or_insert_with(|| boxed(N::zeros));
        for ((param, grad), buffer) in net.params_mut().zip(grad.params()).zip(buffer.params_mut())
        {
            for ((p, &g), b) in param
                .values
                .iter_mut()
                .zip(grad.values)
                .zip(buffer.values.iter_mut())
            {
                let g = if self.weight_decay != 0.0 {
                    g + decay * *p
                } else {
                    g
                };
                *b = if first { g } else { *b * momentum + keep * g };
                let direction = if self.nesterov { g + momentum * *b } else { *b };
                *p -= lr * direction;
            }
        }
    }

    fn prepare(&mut self) {
        if self.momentum != 0.0 {
            self.buffer.get_or_insert_with(|| boxed(N::zeros));
        }
    }

    fn validate(&self) -> Result<(), OptimizerError> {
        let name = "SGD";
        require(
            self.lr >= 0.0,
            name,
            "learning rate",
            self.lr,
            "a number ≥ 0",
        )?;
        require(
            self.momentum >= 0.0,
            name,
            "momentum",
            self.momentum,
            "a number ≥ 0",
        )?;
        require(
            self.weight_decay >= 0.0,
            name,
            "weight_decay",
            self.weight_decay,
            "a number ≥ 0",
        )?;
        require(
            !self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0),
            name,
            "Nesterov momentum",
            self.momentum,
            "momentum > 0 and dampening 0",
        )
    }
}
