//! Optimizers with `torch.optim`'s exact update rules, over a network's named parameters.
//!
//! An optimizer's state (momentum, Adam's moments) is made of values of the network's own type,
//! made by [`Optimizer::prepare`] (or else by the first step) and reused after: once it exists, no
//! step allocates (the training loop prepares during its setup). Hyper-parameters
//! are `f64` with PyTorch's defaults and builder methods; [`Optimizer::validate`] (the training
//! loop calls it before the first step) returns an [`OptimizerError`] that names the optimizer,
//! the hyper-parameter, the value found and the range expected. Constructors and builders never
//! fail and `step` never checks or panics: a caller stepping by hand calls `validate` once first.
//! `validate` applies PyTorch's range checks (learning rate, momentum, weight decay ≥ 0; betas in
//! `[0, 1)`; Nesterov needs momentum and no dampening) and goes further: every float
//! hyper-parameter must be finite (NaN and ±∞ are rejected, even where PyTorch accepts them) and
//! finite again once converted to the network's scalar type (`1e300` is `inf` in `f32`); SGD's
//! dampening must be in `[0, 1]`; Adam's `eps`, which divides, must be above 0 in that type.
//!
//! Valid hyper-parameters and a finite gradient can still make a non-finite update (a weight
//! pushed past the scalar's range, a squared gradient that overflows). [`Optimizer::try_step`] is
//! the checked step: it first computes every value the step would write (weights and state) without
//! writing any, and applies the step only if all are finite; otherwise it changes nothing (weights,
//! state, step count) and returns a [`NonFiniteUpdate`] naming the parameter entry. The training
//! loop steps this way.

mod adagrad;
mod adam;
pub mod fused;
mod rmsprop;
#[cfg(feature = "std")]
pub mod schedule;
mod sgd;

use core::fmt;

pub use adagrad::{Adagrad, AdagradRule};
pub use adam::{Adam, AdamRule, AdamW};

pub use fused::FusedStep;
pub use rmsprop::{RmsProp, RmsPropRule};
#[cfg(feature = "std")]
pub use schedule::{Schedule, ScheduleError};
pub use sgd::{Sgd, SgdRule};

use crate::network::Network;

/// Updates a network's parameters from their gradients.
pub trait Optimizer<N: Network> {
    /// One update of `net` from `grad`, the gradient of the loss at `net`. Unchecked: a
    /// non-finite gradient or an overflow writes non-finite values (see [`Optimizer::try_step`]).
    fn step(&mut self, net: &mut N, grad: &N);

    /// The same update as [`Optimizer::step`], bit for bit, applied only if every value it would
    /// write (each weight, each entry of the optimizer's state) is finite. Otherwise nothing
    /// changes, neither `net` nor the optimizer's state nor its step count, and the error names
    /// the first entry that would not be finite. A NaN or infinite gradient entry must be refused
    /// this way too (the training loop relies on it; every update rule here turns one into a
    /// non-finite value, even at a learning rate of 0). The check is one more pass over what
    /// the update reads, writing nothing (Adam's first tries a bound with no square root or
    /// division, and computes the update exactly only if the bound fails); nothing is allocated
    /// once [`Optimizer::prepare`] has made the state.
    fn try_step(&mut self, net: &mut N, grad: &N) -> Result<(), NonFiniteUpdate>;

    /// Makes the state the steps keep (momentum buffers, moments: values shaped like the network)
    /// now, so that not even the first step allocates. Without it the first step makes it;
    /// [`train`](crate::train::train) calls it while setting up.
    fn prepare(&mut self) {}

    /// PyTorch's checks on the hyper-parameters, and more: every float hyper-parameter finite,
    /// also in the network's scalar type.
    fn validate(&self) -> Result<(), OptimizerError> {
        Ok(())
    }

    /// The learning rate the next step uses (torch's `param_groups[0]["lr"]`).
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate the next steps use; a schedule steps through this.
    fn set_learning_rate(&mut self, lr: f64);

    /// The momentum OneCycleLR cycles: SGD's and RMSprop's `momentum`, Adam's and AdamW's `beta1`;
    /// `None` for an optimizer without one (Adagrad).
    fn momentum(&self) -> Option<f64> {
        None
    }

    /// Sets the momentum [`Optimizer::momentum`] reads (nothing without one).
    fn set_momentum(&mut self, _momentum: f64) {}
}

/// An optimizer's state as named values, for a [`checkpoint`](crate::checkpoint): its counters
/// (steps taken) and its state buffers, under torch's state keys (`exp_avg`, `momentum_buffer`).
#[cfg(feature = "std")]
pub trait OptimizerState<N: Network>: Optimizer<N> + Clone {
    /// torch's name for the optimizer (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`).
    fn name(&self) -> &'static str;

    /// The counters, by name (`step`; SGD's `started`).
    fn counters(&self) -> std::vec::Vec<(&'static str, u64)>;

    /// Sets the counter `name`; false if there is none of that name.
    fn set_counter(&mut self, name: &str, value: u64) -> bool;

    /// The state buffers that exist now, by name.
    fn buffers(&self) -> std::vec::Vec<(&'static str, &N)>;

    /// Every state buffer the current hyper-parameters use, made first if missing
    /// ([`Optimizer::prepare`]), writable.
    fn buffers_mut(&mut self) -> std::vec::Vec<(&'static str, &mut N)>;
}

/// A hyper-parameter [`Optimizer::validate`] rejects (PyTorch's checks, and non-finite values).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerError {
    /// The optimizer (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`).
    pub optimizer: &'static str,
    /// The hyper-parameter.
    pub parameter: &'static str,
    /// The value found.
    pub value: f64,
    /// What it must be.
    pub expected: &'static str,
}

impl fmt::Display for OptimizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} for {}: expected {}, found {}",
            self.parameter, self.optimizer, self.expected, self.value
        )
    }
}

impl core::error::Error for OptimizerError {}

/// A step [`Optimizer::try_step`] refused: it would have written a NaN or an infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonFiniteUpdate {
    /// The optimizer (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`).
    pub optimizer: &'static str,
    /// The parameter tensor, such as `fc2.weight`.
    pub parameter: &'static str,
    /// The entry's row (PyTorch's first index).
    pub row: usize,
    /// The entry's column (0 for a bias).
    pub col: usize,
    /// What would have become non-finite: `weight`, `momentum buffer`, `first moment`,
    /// `second moment`, `largest second moment`, `square average`, `gradient average` or
    /// `sum of squares`.
    pub value: &'static str,
}

impl fmt::Display for NonFiniteUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}'s update of `{}[{}][{}]` would make its {} non-finite",
            self.optimizer, self.parameter, self.row, self.col, self.value
        )
    }
}

impl core::error::Error for NonFiniteUpdate {}

/// A finiteness test that vectorises where the scalar's `is_finite` does not: `|x|` at most the
/// largest finite value, false for NaN and ±∞ (the scalar's own test for a type without one).
#[inline(always)]
fn finite_test<T: crate::scalar::Scalar>() -> impl Fn(T) -> bool + Copy {
    let zero: T = crate::scalar::constant(0.0);
    let max = T::max_value();
    move |x: T| match max {
        Some(max) => (if x < zero { -x } else { x }) <= max,
        None => nalgebra::ComplexField::is_finite(&x),
    }
}

/// The `[row][col]` of entry `index` of a column-major tensor with `rows` rows.
#[inline]
fn position(index: usize, rows: usize) -> (usize, usize) {
    let rows = rows.max(1);
    (index % rows, index / rows)
}

/// A float hyper-parameter checked for finiteness, in `f64` and in the network's scalar `T`.
fn require_finite<T: crate::scalar::Scalar>(
    optimizer: &'static str,
    parameter: &'static str,
    value: f64,
) -> Result<(), OptimizerError> {
    require(
        value.is_finite(),
        optimizer,
        parameter,
        value,
        "a finite number",
    )?;
    require(
        crate::scalar::to_f64(crate::scalar::constant::<T>(value)).is_finite(),
        optimizer,
        parameter,
        value,
        "a number finite in the network's scalar type",
    )
}

/// An error unless `ok`.
fn require(
    ok: bool,
    optimizer: &'static str,
    parameter: &'static str,
    value: f64,
    expected: &'static str,
) -> Result<(), OptimizerError> {
    if ok {
        Ok(())
    } else {
        Err(OptimizerError {
            optimizer,
            parameter,
            value,
            expected,
        })
    }
}
