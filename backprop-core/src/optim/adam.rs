//! Adam and AdamW as `torch.optim` computes them (the single-tensor implementation).

use nalgebra::ComplexField;

use crate::network::Network;
use crate::optim::{require, Optimizer, OptimizerError};
use crate::scalar::constant;

/// `torch.optim.Adam`: learning rate, betas, eps, weight decay (added to the gradient) and AMSGrad.
///
/// Per parameter, at step `t`: `g ← g + weight_decay · p`; `m ← m + (1 − β1)(g − m)` (a lerp);
/// `v ← β2 v + (1 − β2) g²` (AMSGrad keeps `v̂ = max(v̂, v)` and uses it for `v`);
/// `p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<N> {
    /// The learning rate.
    pub lr: f64,
    /// The decay rates of the first and second moments.
    pub betas: (f64, f64),
    /// Added to the denominator for stability.
    pub eps: f64,
    /// L2 penalty added to the gradient (Adam), or the rate at which AdamW shrinks the weights.
    pub weight_decay: f64,
    /// Keep the largest second moment seen (AMSGrad).
    pub amsgrad: bool,
    /// Shrink the weights directly (AdamW) instead of adding to the gradient.
    decoupled: bool,
    /// Steps taken.
    steps: u32,
    /// First moment, second moment and AMSGrad's maximum, shaped like the network.
    state: Option<Moments<N>>,
}

/// Adam's per-parameter state.
#[derive(Clone, Debug, PartialEq)]
struct Moments<N> {
    /// The first moment.
    mean: N,
    /// The second moment.
    square: N,
    /// The largest second moment (AMSGrad only).
    max_square: Option<N>,
}

/// `torch.optim.AdamW`: Adam whose weight decay shrinks the weights, `p ← p · (1 − lr · weight_decay)`,
/// before the Adam step (PyTorch's default weight decay 0.01).
#[derive(Clone, Debug, PartialEq)]
pub struct AdamW<N>(Adam<N>);

impl<N> AdamW<N> {
    /// AdamW with learning rate `lr` and PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight
    /// decay 0.01, no AMSGrad.
    pub fn new(lr: f64) -> Self {
        AdamW(Adam {
            weight_decay: 0.01,
            decoupled: true,
            ..Adam::new(lr)
        })
    }

    /// With these betas.
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        AdamW(self.0.betas(beta1, beta2))
    }

    /// With this eps.
    pub fn eps(self, eps: f64) -> Self {
        AdamW(self.0.eps(eps))
    }

    /// With this weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        AdamW(self.0.weight_decay(weight_decay))
    }

    /// With AMSGrad.
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        AdamW(self.0.amsgrad(amsgrad))
    }
}

impl<N: Network> Optimizer<N> for AdamW<N> {
    fn step(&mut self, net: &mut N, grad: &N) {
        self.0.step(net, grad);
    }

    fn prepare(&mut self) {
        self.0.prepare();
    }

    fn validate(&self) -> Result<(), OptimizerError> {
        self.0.validate()
    }
}

impl<N> Adam<N> {
    /// Adam with learning rate `lr` and PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight
    /// decay, no AMSGrad.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            steps: 0,
            state: None,
        }
    }

    /// With these betas.
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        Adam {
            betas: (beta1, beta2),
            ..self
        }
    }

    /// With this eps.
    pub fn eps(self, eps: f64) -> Self {
        Adam { eps, ..self }
    }

    /// With this weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        Adam {
            weight_decay,
            ..self
        }
    }

    /// With AMSGrad.
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        Adam { amsgrad, ..self }
    }
}

impl<N: Network> Moments<N> {
    /// The moments in `state`, made (zero) the first time they are needed.
    fn made(state: &mut Option<Self>, amsgrad: bool) -> &mut Self {
        let moments = state.get_or_insert_with(|| Moments {
            mean: N::zeros(),
            square: N::zeros(),
            max_square: None,
        });
        if amsgrad && moments.max_square.is_none() {
            moments.max_square = Some(N::zeros());
        }
        moments
    }
}

impl<N: Network> Optimizer<N> for Adam<N> {
    fn prepare(&mut self) {
        Moments::made(&mut self.state, self.amsgrad);
    }

    fn step(&mut self, net: &mut N, grad: &N) {
        self.steps += 1;
        let step = f64::from(self.steps);
        let (beta1, beta2) = self.betas;
        let step_size: N::Scalar = constant(self.lr / (1.0 - libm::pow(beta1, step)));
        let correction2: N::Scalar = constant(libm::sqrt(1.0 - libm::pow(beta2, step)));
        // `exp_avg.lerp_(grad, 1 − β1)`: ATen's lerp takes `m + w (g − m)` for a weight below ½ and
        // `g − (g − m)(1 − w)` otherwise.
        let weight = 1.0 - beta1;
        let small_weight = weight.abs() < 0.5;
        let (lerp, lerp_complement): (N::Scalar, N::Scalar) =
            (constant(weight), constant(1.0 - weight));
        let square_weight: N::Scalar = constant(1.0 - beta2);
        let beta2: N::Scalar = constant(beta2);
        let eps: N::Scalar = constant(self.eps);
        let decay: N::Scalar = constant(self.weight_decay);
        let shrink: N::Scalar = constant(1.0 - self.lr * self.weight_decay);
        let state = Moments::made(&mut self.state, self.amsgrad);
        let mut max_squares = state
            .max_square
            .as_mut()
            .filter(|_| self.amsgrad)
            .map(|m| m.params_mut());
        for ((param, grad), (mean, square)) in net
            .params_mut()
            .zip(grad.params())
            .zip(state.mean.params_mut().zip(state.square.params_mut()))
        {
            let mut max_square = max_squares.as_mut().and_then(|params| params.next());
            for (index, (p, &g)) in param.values.iter_mut().zip(grad.values).enumerate() {
                let g = if self.weight_decay == 0.0 {
                    g
                } else if self.decoupled {
                    *p *= shrink;
                    g
                } else {
                    g + decay * *p
                };
                let m = &mut mean.values[index];
                *m = if small_weight {
                    *m + lerp * (g - *m)
                } else {
                    g - (g - *m) * lerp_complement
                };
                let v = &mut square.values[index];
                *v = *v * beta2 + square_weight * g * g;
                let second = match max_square.as_mut() {
                    Some(max) => {
                        // `torch.maximum`, which propagates a NaN from either side.
                        let entry = &mut max.values[index];
                        #[allow(clippy::eq_op)]
                        if *v > *entry || *v != *v {
                            *entry = *v;
                        }
                        *entry
                    }
                    None => *v,
                };
                let denominator = ComplexField::sqrt(second) / correction2 + eps;
                *p -= step_size * (*m / denominator);
            }
        }
    }

    fn validate(&self) -> Result<(), OptimizerError> {
        let name = if self.decoupled { "AdamW" } else { "Adam" };
        require(
            self.lr >= 0.0,
            name,
            "learning rate",
            self.lr,
            "a number ≥ 0",
        )?;
        require(self.eps >= 0.0, name, "eps", self.eps, "a number ≥ 0")?;
        require(
            (0.0..1.0).contains(&self.betas.0),
            name,
            "beta1",
            self.betas.0,
            "a number in [0, 1)",
        )?;
        require(
            (0.0..1.0).contains(&self.betas.1),
            name,
            "beta2",
            self.betas.1,
            "a number in [0, 1)",
        )?;
        require(
            self.weight_decay >= 0.0,
            name,
            "weight_decay",
            self.weight_decay,
            "a number ≥ 0",
        )
    }
}
