//! Stochastic gradient descent as `torch.optim.SGD` computes it.

use crate::heap::{boxed, Boxed};
use crate::network::Network;
use crate::optim::{
    finite_test, position, require, require_finite, NonFiniteUpdate, Optimizer, OptimizerError,
};
use crate::scalar::{constant, Scalar};

/// `torch.optim.SGD`: learning rate, momentum, dampening, Nesterov momentum and weight decay.
///
/// Per parameter `p` with gradient `g`: `g ← g + weight_decay · p`; with momentum, the buffer is
/// `b ← g` on the first step and `b ← momentum · b + (1 − dampening) · g` after, and the step
/// direction is `g + momentum · b` (Nesterov) or `b`; then `p ← p − lr · direction`.
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > } // y = w·x + b
///
/// let mut net = Net::<f64>::zeros();
/// net.fc1.weight[(0, 0)] = 2.0;
/// let (x, y) = (SVector::<f64, 1>::new(3.0), SVector::<f64, 1>::new(5.0));
/// let mut grad = Net::zeros();
/// // Output 2·3 + 0 = 6, MSE (6 − 5)² = 1; ∂/∂w = 2·(6 − 5)·3 = 6, ∂/∂b = 2·(6 − 5) = 2.
/// let loss = net.backward(&x, &y, &Mse, &mut net.workspace(), &mut grad);
/// assert_eq!(loss, 1.0);
///
/// let mut sgd = Sgd::new(0.1);
/// sgd.step(&mut net, &grad);
/// // w ← 2 − 0.1·6 = 1.4, b ← 0 − 0.1·2 = −0.2
/// assert!((net.fc1.weight[(0, 0)] - 1.4).abs() < 1e-12);
/// assert!((net.fc1.bias[0] + 0.2).abs() < 1e-12);
/// ```
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

    /// With momentum: the buffer starts as the first gradient, then `b ← momentum · b + g`.
    ///
    /// ```
    /// use backprop::prelude::*;
    ///
    /// backprop::network! { struct Net < 1 => 1 > }
    ///
    /// let mut net = Net::<f64>::zeros();
    /// let mut grad = Net::zeros();
    /// grad.fc1.weight[(0, 0)] = 1.0; // the same gradient at every step
    /// let mut sgd = Sgd::new(0.5).momentum(0.5);
    /// sgd.step(&mut net, &grad); // b = 1:             w = 0 − 0.5·1    = −0.5
    /// sgd.step(&mut net, &grad); // b = 0.5·1 + 1 = 1.5: w = −0.5 − 0.5·1.5 = −1.25
    /// assert_eq!(net.fc1.weight[(0, 0)], -1.25);
    /// ```
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

/// One step's constants, converted to the scalar once.
struct Coefficients<T> {
    /// The learning rate.
    lr: T,
    /// The L2 penalty.
    decay: T,
    /// The momentum factor.
    momentum: T,
    /// `1 − dampening`.
    keep: T,
}

impl<T: Scalar> Coefficients<T> {
    /// The constants of `sgd`'s step.
    fn of<N>(sgd: &Sgd<N>) -> Self {
        Coefficients {
            lr: constant(sgd.lr),
            decay: constant(sgd.weight_decay),
            momentum: constant(sgd.momentum),
            keep: constant(1.0 - sgd.dampening),
        }
    }
}

/// The new weight and momentum buffer of one entry with momentum, as torch orders the arithmetic.
#[inline(always)]
fn momentum_entry<T: Scalar>(
    k: &Coefficients<T>,
    decayed: bool,
    nesterov: bool,
    first: bool,
    p: T,
    g: T,
    b: T,
) -> (T, T) {
    let g = if decayed { g + k.decay * p } else { g };
    let b = if first {
        g
    } else {
        b * k.momentum + k.keep * g
    };
    let direction = if nesterov { g + k.momentum * b } else { b };
    (p - k.lr * direction, b)
}

impl<N: Network> Sgd<N> {
    /// The first entry `step` would make non-finite, checked without writing.
    fn first_non_finite(&self, net: &N, grad: &N) -> Option<NonFiniteUpdate> {
        let k = Coefficients::<N::Scalar>::of(self);
        let finite = finite_test::<N::Scalar>();
        let bad = |parameter, rows, index, value| {
            let (row, col) = position(index, rows);
            Some(NonFiniteUpdate {
                optimizer: "SGD",
                parameter,
                row,
                col,
                value,
            })
        };
        let alpha: N::Scalar = constant(-self.lr);
        let plain = self.momentum == 0.0 && self.weight_decay == 0.0;
        let decayed = self.weight_decay != 0.0;
        let first = !self.started;
        let mut buffers = self
            .buffer
            .as_ref()
            .filter(|_| self.momentum != 0.0)
            .map(|b| b.params());
        for (param, grad) in net.params().zip(grad.params()) {
            let buffer = buffers.as_mut().and_then(|b| b.next());
            let entries = param.values.iter().zip(grad.values);
            if plain {
                // `axpy`: p + (−lr) · g.
                if !entries
                    .clone()
                    .fold(true, |ok, (&p, &g)| ok & finite(p + alpha * g))
                {
                    let index = entries.clone().position(|(&p, &g)| !finite(p + alpha * g));
                    return bad(param.name, param.rows, index.unwrap_or(0), "weight");
                }
            } else if self.momentum == 0.0 {
                let new = |(&p, &g): (&N::Scalar, &N::Scalar)| p - k.lr * (g + k.decay * p);
                if !entries.clone().fold(true, |ok, e| ok & finite(new(e))) {
                    let index = entries.clone().position(|e| !finite(new(e)));
                    return bad(param.name, param.rows, index.unwrap_or(0), "weight");
                }
            } else {
                // Before the first step with momentum the buffer may not exist yet; the first
                // step does not read it, so the gradient stands in for it.
                let buffer = buffer.map_or(grad.values, |b| b.values);
                let new = |((&p, &g), &b): ((&N::Scalar, &N::Scalar), &N::Scalar)| {
                    momentum_entry(&k, decayed, self.nesterov, first, p, g, b)
                };
                let both = |(p, b): (N::Scalar, N::Scalar)| finite(p) & finite(b);
                let entries = entries.zip(buffer);
                if !entries.clone().fold(true, |ok, e| ok & both(new(e))) {
                    for (i, e) in entries.enumerate() {
                        let (p, b) = new(e);
                        if !finite(b) {
                            return bad(param.name, param.rows, i, "momentum buffer");
                        }
                        if !finite(p) {
                            return bad(param.name, param.rows, i, "weight");
                        }
                    }
                }
            }
        }
        None
    }
}

impl<N: Network> Optimizer<N> for Sgd<N> {
    fn step(&mut self, net: &mut N, grad: &N) {
        if self.momentum == 0.0 && self.weight_decay == 0.0 {
            // p ← p + (−lr) · g, as torch's `param.add_(grad, alpha=-lr)`.
            net.axpy(constant(-self.lr), grad);
            return;
        }
        let k = Coefficients::<N::Scalar>::of(self);
        if self.momentum == 0.0 {
            net.zip_params_mut(grad, |params, grads| {
                for (p, &g) in params.iter_mut().zip(grads) {
                    *p -= k.lr * (g + k.decay * *p);
                }
            });
            return;
        }
        let first = !self.started;
        self.started = true;
        let decayed = self.weight_decay != 0.0;
        let buffer: &mut N = self.buffer.get_or_insert_with(|| boxed(N::zeros));
        for ((param, grad), buffer) in net.params_mut().zip(grad.params()).zip(buffer.params_mut())
        {
            for ((p, &g), b) in param
                .values
                .iter_mut()
                .zip(grad.values)
                .zip(buffer.values.iter_mut())
            {
                (*p, *b) = momentum_entry(&k, decayed, self.nesterov, first, *p, g, *b);
            }
        }
    }

    fn try_step(&mut self, net: &mut N, grad: &N) -> Result<(), NonFiniteUpdate> {
        match self.first_non_finite(net, grad) {
            Some(error) => Err(error),
            None => {
                self.step(net, grad);
                Ok(())
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
        // Finite first, in f64 and in the scalar; then torch's ranges (and dampening in [0, 1],
        // which torch does not check: `1 − dampening` weighs the gradient).
        for (parameter, value) in [
            ("learning rate", self.lr),
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("weight_decay", self.weight_decay),
        ] {
            require_finite::<N::Scalar>(name, parameter, value)?;
        }
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
            (0.0..=1.0).contains(&self.dampening),
            name,
            "dampening",
            self.dampening,
            "a number in [0, 1]",
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
    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn momentum(&self) -> Option<f64> {
        Some(self.momentum)
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.momentum = momentum;
    }
}

#[cfg(feature = "std")]
impl<N: Network> crate::optim::OptimizerState<N> for Sgd<N> {
    fn name(&self) -> &'static str {
        "SGD"
    }

    fn counters(&self) -> std::vec::Vec<(&'static str, u64)> {
        std::vec![("started", u64::from(self.started))]
    }

    fn set_counter(&mut self, name: &str, value: u64) -> bool {
        match name {
            "started" => self.started = value != 0,
            _ => return false,
        }
        true
    }

    fn buffers(&self) -> std::vec::Vec<(&'static str, &N)> {
        self.buffer
            .as_deref()
            .filter(|_| self.momentum != 0.0)
            .map(|b| ("momentum_buffer", b))
            .into_iter()
            .collect()
    }

    fn buffers_mut(&mut self) -> std::vec::Vec<(&'static str, &mut N)> {
        self.prepare();
        let momentum = self.momentum;
        self.buffer
            .as_deref_mut()
            .filter(|_| momentum != 0.0)
            .map(|b| ("momentum_buffer", b))
            .into_iter()
            .collect()
    }
}
