//! Optimizers with `torch.optim`'s exact update rules, over a network's named parameters.
//!
//! An optimizer's state (momentum, Adam's moments) is made of values of the network's own type,
//! made by [`Optimizer::prepare`] (or else by the first step) and reused after: once it exists, no
//! step allocates (the training loop prepares during its setup). Hyper-parameters
//! are `f64` with PyTorch's defaults and builder methods; [`Optimizer::validate`] applies
//! PyTorch's checks (the training loop calls it before the first step), returning an
//! [`OptimizerError`] that names the optimizer, the hyper-parameter, the value found and the range
//! expected. Constructors and builders never fail and `step` never checks or panics: a caller
//! stepping by hand calls `validate` once first. Unlike PyTorch, a NaN hyper-parameter is rejected.

mod adam;
mod sgd;

use core::fmt;

pub use adam::{Adam, AdamW};
pub use sgd::Sgd;

use crate::network::Network;

/// Updates a network's parameters from their gradients.
pub trait Optimizer<N: Network> {
    /// One update of `net` from `grad`, the gradient of the loss at `net`.
    fn step(&mut self, net: &mut N, grad: &N);

    /// Makes the state the steps keep (momentum buffers, moments: values shaped like the network)
    /// now, so that not even the first step allocates. Without it the first step makes it;
    /// [`train`](crate::train::train) calls it while setting up.
    fn prepare(&mut self) {}

    /// PyTorch's checks on the hyper-parameters.
    fn validate(&self) -> Result<(), OptimizerError> {
        Ok(())
    }
}

/// A hyper-parameter PyTorch would reject.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerError {
    /// The optimizer (`SGD`, `Adam`, `AdamW`).
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
