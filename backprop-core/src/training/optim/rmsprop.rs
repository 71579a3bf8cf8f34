//! RMSprop as `torch.optim.RMSprop` computes it (the single-tensor implementation).

use crate::heap::{boxed, Boxed};
use crate::network::Network;
use crate::optim::fused::{run_of, run_of_ref, step_by_tensors, try_step_by_tensors, FusedStep};
use crate::optim::{
    finite_test, require, require_finite, NonFiniteUpdate, Optimizer, OptimizerError,
};
use crate::scalar::{constant, to_f64, Scalar};

/// `torch.optim.RMSprop`: learning rate, alpha, eps, weight decay, momentum and the centered form.
///
/// Per parameter: `g ← g + weight_decay · p`; `v ← α v + (1 − α) g²`; centered, `ḡ ← lerp(ḡ, g,
/// 1 − α)` and `d = √(v − ḡ²) + eps`, else `d = √v + eps`; with momentum `b ← μ b + g / d` and
/// `p ← p − lr · b`, else `p ← p − lr · g / d`.
///
/// ```text
/// let mut rmsprop = RmsProp::new(0.01).alpha(0.9).momentum(0.5).centered(true);
/// Optimizer::<Net<f64>>::validate(&rmsprop)?;
/// rmsprop.step(&mut net, &grad);
/// ```
/// (run as `rmsprop_runs_as_documented` in `tests/suite/training_optim.rs`)
///
/// One step with PyTorch's defaults (`alpha` 0.99, `eps` 1e-8):
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > }
///
/// let mut net = Net::<f64>::zeros();
/// net.fc1.weight[(0, 0)] = 2.0;
/// let mut grad = Net::zeros();
/// grad.fc1.weight[(0, 0)] = 6.0;
///
/// let mut rmsprop = RmsProp::new(0.01);
/// rmsprop.step(&mut net, &grad);
/// // v = (1 − 0.99)·6² = 0.36, √v = 0.6: w ← 2 − 0.01·6 / (0.6 + 1e-8) = 1.9 + 1.7e-9.
/// assert!((net.fc1.weight[(0, 0)] - 1.9).abs() < 1e-8);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RmsProp<N> {
    /// The learning rate.
    pub lr: f64,
    /// The smoothing constant of the squared-gradient average.
    pub alpha: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// The momentum factor (0: none).
    pub momentum: f64,
    /// Normalise by the gradient's estimated variance instead of its second moment.
    pub centered: bool,
    /// Steps taken.
    steps: u64,
    /// The averages, shaped like the network.
    state: Option<Boxed<RmsState<N>>>,
}

/// RMSprop's per-parameter state.
#[derive(Clone, Debug, PartialEq)]
struct RmsState<N> {
    /// The average of the squared gradient.
    square: N,
    /// The average of the gradient (centered only).
    mean: Option<N>,
    /// The momentum buffer (momentum only).
    buffer: Option<N>,
}

impl<N> RmsProp<N> {
    /// RMSprop with learning rate `lr` and PyTorch's defaults: alpha 0.99, eps 1e-8, no weight
    /// decay, no momentum, not centered.
    pub fn new(lr: f64) -> Self {
        RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            steps: 0,
            state: None,
        }
    }

    /// With this smoothing constant.
    pub fn alpha(self, alpha: f64) -> Self {
        RmsProp { alpha, ..self }
    }

    /// With this eps.
    pub fn eps(self, eps: f64) -> Self {
        RmsProp { eps, ..self }
    }

    /// With this weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        RmsProp {
            weight_decay,
            ..self
        }
    }

    /// With this momentum.
    pub fn momentum(self, momentum: f64) -> Self {
        RmsProp { momentum, ..self }
    }

    /// Centered (normalised by the estimated variance).
    pub fn centered(self, centered: bool) -> Self {
        RmsProp { centered, ..self }
    }

    /// The number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

/// One step's constants, converted to the scalar once.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    /// `−lr`.
    neg_lr: T,
    /// `α`.
    alpha: T,
    /// `1 − α`.
    one_minus_alpha: T,
    /// The lerp weight `1 − α` and `1 − (1 − α)`, and which form ATen takes.
    lerp: (T, T, bool),
    /// eps.
    eps: T,
    /// The L2 penalty, if any.
    decay: Option<T>,
    /// The momentum factor, if any.
    momentum: Option<T>,
}

impl<T: Scalar> Coefficients<T> {
    /// The constants of `r`'s step.
    fn of<N>(r: &RmsProp<N>) -> Self {
        let weight = 1.0 - r.alpha;
        Coefficients {
            neg_lr: constant(-r.lr),
            alpha: constant(r.alpha),
            one_minus_alpha: constant(weight),
            lerp: (constant(weight), constant(1.0 - weight), weight.abs() < 0.5),
            eps: constant(r.eps),
            decay: (r.weight_decay != 0.0).then(|| constant(r.weight_decay)),
            momentum: (r.momentum > 0.0).then(|| constant(r.momentum)),
        }
    }
}

/// The new weight, square average, gradient average and buffer of one entry, in torch's order.
#[inline(always)]
fn entry<T: Scalar>(k: &Coefficients<T>, p: T, g: T, v: T, m: Option<T>, b: T) -> (T, T, T, T) {
    let g = match k.decay {
        Some(decay) => g + decay * p,
        None => g,
    };
    // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 − alpha)
    let v = v * k.alpha + k.one_minus_alpha * g * g;
    let (avg, m) = match m {
        Some(m) => {
            // grad_avg.lerp_(grad, 1 − alpha); square_avg.addcmul(grad_avg, grad_avg, value=−1)
            let m = if k.lerp.2 {
                m + k.lerp.0 * (g - m)
            } else {
                g - (g - m) * k.lerp.1
            };
            ((v - m * m).sqrt(), m)
        }
        None => (v.sqrt(), constant(0.0)),
    };
    let avg = avg + k.eps;
    match k.momentum {
        // buf.mul_(momentum).addcdiv_(grad, avg); param.add_(buf, alpha=−lr)
        Some(momentum) => {
            let b = b * momentum + g / avg;
            (p + k.neg_lr * b, v, m, b)
        }
        // param.addcdiv_(grad, avg, value=−lr)
        None => (p + k.neg_lr * g / avg, v, m, b),
    }
}

impl<N: Network> RmsProp<N> {
    /// The state, made (zero) the first time it is needed, with the parts the options need.
    fn made(&mut self) -> &mut RmsState<N> {
        let state: &mut RmsState<N> = self.state.get_or_insert_with(|| {
            boxed(|| RmsState {
                square: N::zeros(),
                mean: None,
                buffer: None,
            })
        });
        if self.centered && state.mean.is_none() {
            state.mean = Some(N::zeros());
        }
        if self.momentum > 0.0 && state.buffer.is_none() {
            state.buffer = Some(N::zeros());
        }
        state
    }
}

/// One RMSprop step's constants: [`FusedStep::Rule`] for [`RmsProp`].
#[derive(Clone, Copy)]
pub struct RmsPropRule<T>(Coefficients<T>);

impl<N: Network> FusedStep<N> for RmsProp<N> {
    type Rule = RmsPropRule<N::Scalar>;

    fn begin_step(&mut self) -> RmsPropRule<N::Scalar> {
        // The state is made by the first update, not here: a refused step leaves the
        // optimizer exactly as it was (a missing state reads as its zeros).
        RmsPropRule(Coefficients::of(self))
    }

    #[inline(always)]
    fn update(
        &mut self,
        rule: &RmsPropRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        grads: &[N::Scalar],
    ) {
        let (centered, with_momentum) = (self.centered, self.momentum > 0.0);
        let len = params.len();
        let state = self.made();
        let squares = run_of(state.square.tensor_mut(tensor), offset, len);
        let mut means = state
            .mean
            .as_mut()
            .filter(|_| centered)
            .map(|m| run_of(m.tensor_mut(tensor), offset, len));
        let mut buffers = state
            .buffer
            .as_mut()
            .filter(|_| with_momentum)
            .map(|b| run_of(b.tensor_mut(tensor), offset, len));
        for (i, ((p, &g), v)) in params.iter_mut().zip(grads).zip(squares).enumerate() {
            let m = means.as_ref().and_then(|m| m.get(i).copied());
            let b = buffers
                .as_ref()
                .and_then(|b| b.get(i).copied())
                .unwrap_or(constant(0.0));
            let (new_p, new_v, new_m, new_b) = entry(&rule.0, *p, g, *v, m, b);
            (*p, *v) = (new_p, new_v);
            if let Some(mean) = means.as_mut().and_then(|m| m.get_mut(i)) {
                *mean = new_m;
            }
            if let Some(buffer) = buffers.as_mut().and_then(|b| b.get_mut(i)) {
                *buffer = new_b;
            }
        }
    }

    fn check(
        &self,
        rule: &RmsPropRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        grads: &[N::Scalar],
    ) -> Option<(usize, &'static str)> {
        let finite = finite_test::<N::Scalar>();
        let zero: N::Scalar = constant(0.0);
        let len = params.len();
        // `Boxed` is a `Box` with `alloc` and the value itself without: deref either way.
        let state: Option<&RmsState<N>> = self.state.as_ref().map(|s| {
            let s: &RmsState<N> = s;
            s
        });
        let squares = state.map(|s| run_of_ref(s.square.tensor(tensor), offset, len));
        let means = state
            .and_then(|s| s.mean.as_ref())
            .filter(|_| self.centered)
            .map(|m| run_of_ref(m.tensor(tensor), offset, len));
        let buffers = state
            .and_then(|s| s.buffer.as_ref())
            .filter(|_| self.momentum > 0.0)
            .map(|b| run_of_ref(b.tensor(tensor), offset, len));
        let at = |values: Option<&[N::Scalar]>, i: usize| {
            values.and_then(|v| v.get(i).copied()).unwrap_or(zero)
        };
        for (i, (&p, &g)) in params.iter().zip(grads).enumerate() {
            let m = self.centered.then(|| at(means, i));
            let (p, v, m, b) = entry(&rule.0, p, g, at(squares, i), m, at(buffers, i));
            let what = if !finite(v) {
                "square average"
            } else if !finite(m) {
                "gradient average"
            } else if !finite(b) {
                "momentum buffer"
            } else if !finite(p) {
                "weight"
            } else {
                continue;
            };
            return Some((i, what));
        }
        None
    }

    fn end_step(&mut self) {
        self.steps = self.steps.saturating_add(1);
    }

    fn optimizer_name(&self) -> &'static str {
        "RMSprop"
    }
}

impl<N: Network> Optimizer<N> for RmsProp<N> {
    fn step(&mut self, net: &mut N, grad: &N) {
        step_by_tensors(self, net, grad);
    }

    fn try_step(&mut self, net: &mut N, grad: &N) -> Result<(), NonFiniteUpdate> {
        try_step_by_tensors(self, net, grad)
    }

    fn prepare(&mut self) {
        self.made();
    }

    fn validate(&self) -> Result<(), OptimizerError> {
        let name = "RMSprop";
        for (parameter, value) in [
            ("learning rate", self.lr),
            ("alpha", self.alpha),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("momentum", self.momentum),
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
        // torch asks alpha ≥ 0; above 1 the average's weight 1 − alpha is negative.
        require(
            (0.0..=1.0).contains(&self.alpha),
            name,
            "alpha",
            self.alpha,
            "a number in [0, 1]",
        )?;
        // torch asks eps ≥ 0; it divides a zero average, so it must be above 0 in the scalar.
        require(
            to_f64(constant::<N::Scalar>(self.eps)) > 0.0,
            name,
            "eps",
            self.eps,
            "a number > 0 in the network's scalar type",
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
impl<N: Network> crate::optim::OptimizerState<N> for RmsProp<N> {
    fn name(&self) -> &'static str {
        "RMSprop"
    }

    fn counters(&self) -> std::vec::Vec<(&'static str, u64)> {
        std::vec![("step", self.steps)]
    }

    fn set_counter(&mut self, name: &str, value: u64) -> bool {
        match name {
            "step" => self.steps = value,
            _ => return false,
        }
        true
    }

    fn buffers(&self) -> std::vec::Vec<(&'static str, &N)> {
        let mut out = std::vec::Vec::new();
        if let Some(state) = self.state.as_deref() {
            out.push(("square_avg", &state.square));
            if let Some(mean) = state.mean.as_ref().filter(|_| self.centered) {
                out.push(("grad_avg", mean));
            }
            if let Some(buffer) = state.buffer.as_ref().filter(|_| self.momentum > 0.0) {
                out.push(("momentum_buffer", buffer));
            }
        }
        out
    }

    fn buffers_mut(&mut self) -> std::vec::Vec<(&'static str, &mut N)> {
        let (centered, momentum) = (self.centered, self.momentum > 0.0);
        let state = self.made();
        let mut out = std::vec![("square_avg", &mut state.square)];
        if let Some(mean) = state.mean.as_mut().filter(|_| centered) {
            out.push(("grad_avg", mean));
        }
        if let Some(buffer) = state.buffer.as_mut().filter(|_| momentum) {
            out.push(("momentum_buffer", buffer));
        }
        out
    }
}
