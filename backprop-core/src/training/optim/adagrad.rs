//! Adagrad as `torch.optim.Adagrad` computes it (the single-tensor, dense implementation).

use crate::heap::{boxed, Boxed};
use crate::network::Network;
use crate::optim::fused::{run_of, run_of_ref, step_by_tensors, try_step_by_tensors, FusedStep};
use crate::optim::{
    finite_test, require, require_finite, NonFiniteUpdate, Optimizer, OptimizerError,
};
use crate::scalar::{constant, to_f64, Scalar};

/// `torch.optim.Adagrad`: learning rate, learning-rate decay, weight decay, initial accumulator
/// value and eps.
///
/// Per parameter at step `t`: `g ← g + weight_decay · p`; `clr = lr / (1 + (t − 1) · lr_decay)`;
/// `s ← s + g²` (`s` starts at `initial_accumulator_value`); `p ← p − clr · g / (√s + eps)`.
///
/// ```text
/// let mut adagrad = Adagrad::new(0.1).lr_decay(0.01).initial_accumulator_value(0.1);
/// Optimizer::<Net<f64>>::validate(&adagrad)?;
/// adagrad.step(&mut net, &grad);
/// ```
/// (run as `adagrad_runs_as_documented` in `tests/suite/training_optim.rs`)
///
/// Two steps with PyTorch's defaults, the same gradient each time:
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
/// let mut adagrad = Adagrad::new(0.1);
/// adagrad.step(&mut net, &grad); // s = 6² = 36:  w ← 2 − 0.1·6 / √36 = 1.9
/// assert!((net.fc1.weight[(0, 0)] - 1.9).abs() < 1e-9);
/// adagrad.step(&mut net, &grad); // s = 72: w ← 1.9 − 0.1·6 / √72 = 1.9 − 0.1 / √2
/// assert!((net.fc1.weight[(0, 0)] - (1.9 - 0.1 / 2f64.sqrt())).abs() < 1e-9);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Adagrad<N> {
    /// The learning rate.
    pub lr: f64,
    /// The learning rate's decay per step.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// The value every accumulator starts from.
    pub initial_accumulator_value: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Steps taken.
    steps: u64,
    /// The sums of squared gradients, shaped like the network.
    sum: Option<Boxed<N>>,
}

impl<N> Adagrad<N> {
    /// Adagrad with learning rate `lr` and PyTorch's defaults: no decays, accumulators from 0,
    /// eps 1e-10.
    pub fn new(lr: f64) -> Self {
        Adagrad {
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            steps: 0,
            sum: None,
        }
    }

    /// With this learning-rate decay.
    pub fn lr_decay(self, lr_decay: f64) -> Self {
        Adagrad { lr_decay, ..self }
    }

    /// With this weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        Adagrad {
            weight_decay,
            ..self
        }
    }

    /// With accumulators starting from this value.
    pub fn initial_accumulator_value(self, initial_accumulator_value: f64) -> Self {
        Adagrad {
            initial_accumulator_value,
            ..self
        }
    }

    /// With this eps.
    pub fn eps(self, eps: f64) -> Self {
        Adagrad { eps, ..self }
    }

    /// The number of steps taken, `t` of the last step's learning-rate decay.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the number of steps taken (to resume from a checkpoint): the next step is `steps + 1`.
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
}

/// One step's constants, converted to the scalar once.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    /// `−clr`, the decayed learning rate negated.
    neg_clr: T,
    /// eps.
    eps: T,
    /// The L2 penalty, if any.
    decay: Option<T>,
}

impl<T: Scalar> Coefficients<T> {
    /// The constants of `a`'s step number `step`.
    fn of<N>(a: &Adagrad<N>, step: u64) -> Self {
        // clr = lr / (1 + (step − 1) · lr_decay), in Python floats.
        let clr = a.lr / (1.0 + (step - 1) as f64 * a.lr_decay);
        Coefficients {
            neg_clr: constant(-clr),
            eps: constant(a.eps),
            decay: (a.weight_decay != 0.0).then(|| constant(a.weight_decay)),
        }
    }
}

/// The new weight and sum of one entry, in torch's order.
#[inline(always)]
fn entry<T: Scalar>(k: &Coefficients<T>, p: T, g: T, s: T) -> (T, T) {
    let g = match k.decay {
        Some(decay) => g + decay * p,
        None => g,
    };
    // state_sum.addcmul_(grad, grad, value=1); std = state_sum.sqrt().add_(eps)
    let s = s + g * g;
    let std = s.sqrt() + k.eps;
    // param.addcdiv_(grad, std, value=−clr)
    (p + k.neg_clr * g / std, s)
}

impl<N: Network> Adagrad<N> {
    /// The accumulators, made the first time they are needed.
    fn made(&mut self) -> &mut N {
        let start: N::Scalar = constant(self.initial_accumulator_value);
        self.sum.get_or_insert_with(|| {
            boxed(|| {
                let mut sum = N::zeros();
                for param in sum.params_mut() {
                    param.values.fill(start);
                }
                sum
            })
        })
    }
}

/// One Adagrad step's constants: [`FusedStep::Rule`] for [`Adagrad`].
#[derive(Clone, Copy)]
pub struct AdagradRule<T>(Coefficients<T>);

impl<N: Network> FusedStep<N> for Adagrad<N> {
    type Rule = AdagradRule<N::Scalar>;

    fn begin_step(&mut self) -> AdagradRule<N::Scalar> {
        // The sums are made by the first update, not here: a refused step leaves the
        // optimizer exactly as it was (a missing sum reads as its initial value).
        AdagradRule(Coefficients::of(self, self.steps.saturating_add(1)))
    }

    #[inline(always)]
    fn update(
        &mut self,
        rule: &AdagradRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        grads: &[N::Scalar],
    ) {
        let sums = run_of(self.made().tensor_mut(tensor), offset, params.len());
        for ((p, &g), s) in params.iter_mut().zip(grads).zip(sums) {
            (*p, *s) = entry(&rule.0, *p, g, *s);
        }
    }

    fn check(
        &self,
        rule: &AdagradRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        grads: &[N::Scalar],
    ) -> Option<(usize, &'static str)> {
        let finite = finite_test::<N::Scalar>();
        let start: N::Scalar = constant(self.initial_accumulator_value);
        let sums = self
            .sum
            .as_ref()
            .map(|s| run_of_ref(s.tensor(tensor), offset, params.len()));
        for (i, (&p, &g)) in params.iter().zip(grads).enumerate() {
            let sum = sums.and_then(|s| s.get(i).copied()).unwrap_or(start);
            let (p, s) = entry(&rule.0, p, g, sum);
            if !finite(s) {
                return Some((i, "sum of squares"));
            }
            if !finite(p) {
                return Some((i, "weight"));
            }
        }
        None
    }

    fn end_step(&mut self) {
        self.steps = self.steps.saturating_add(1);
    }

    fn optimizer_name(&self) -> &'static str {
        "Adagrad"
    }
}

impl<N: Network> Optimizer<N> for Adagrad<N> {
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
        let name = "Adagrad";
        for (parameter, value) in [
            ("learning rate", self.lr),
            ("lr_decay", self.lr_decay),
            ("weight_decay", self.weight_decay),
            ("initial_accumulator_value", self.initial_accumulator_value),
            ("eps", self.eps),
        ] {
            require_finite::<N::Scalar>(name, parameter, value)?;
        }
        for (parameter, value) in [
            ("learning rate", self.lr),
            ("lr_decay", self.lr_decay),
            ("weight_decay", self.weight_decay),
            ("initial_accumulator_value", self.initial_accumulator_value),
        ] {
            require(value >= 0.0, name, parameter, value, "a number ≥ 0")?;
        }
        // torch asks eps ≥ 0; it divides a zero sum, so it must be above 0 in the scalar.
        require(
            to_f64(constant::<N::Scalar>(self.eps)) > 0.0,
            name,
            "eps",
            self.eps,
            "a number > 0 in the network's scalar type",
        )
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }
}

#[cfg(feature = "std")]
impl<N: Network> crate::optim::OptimizerState<N> for Adagrad<N> {
    fn name(&self) -> &'static str {
        "Adagrad"
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
        self.sum
            .as_deref()
            .map(|s| ("sum", s))
            .into_iter()
            .collect()
    }

    fn buffers_mut(&mut self) -> std::vec::Vec<(&'static str, &mut N)> {
        std::vec![("sum", self.made())]
    }
}
