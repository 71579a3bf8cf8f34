//! Gradient clipping with `torch.nn.utils`' exact semantics: [`clip_grad_norm`] and
//! [`clip_grad_value`], on a gradient value shaped like the network.
//!
//! ```text
//! let norm = clip_grad_norm(&mut grad, 1.0, true)?;   // the total 2-norm before clipping
//! clip_grad_value(&mut grad, 0.5)?;
//! ```
//! (run as `clipping_runs_as_documented` in `tests/suite/training_optim.rs`)

use core::fmt;

use nalgebra::ComplexField;

use crate::network::Network;
use crate::scalar::{constant, to_f64};

/// A clipping that was refused: a bad threshold, or a non-finite norm with `error_if_nonfinite`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClipError {
    /// The threshold is NaN, infinite or negative.
    InvalidThreshold {
        /// `max_norm` or `clip_value`.
        parameter: &'static str,
        /// The value found.
        value: f64,
    },
    /// The total norm is NaN or infinite (torch's `error_if_nonfinite=True`); the gradient is
    /// unchanged.
    NonFiniteNorm {
        /// The total norm.
        norm: f64,
    },
}

impl fmt::Display for ClipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClipError::InvalidThreshold { parameter, value } => write!(
                f,
                "invalid {parameter} for gradient clipping: expected a finite number ≥ 0, found {value}"
            ),
            ClipError::NonFiniteNorm { norm } => write!(
                f,
                "the total norm of the gradients is {norm}, so they cannot be clipped; the gradient \
                 is unchanged"
            ),
        }
    }
}

impl core::error::Error for ClipError {}

/// A threshold checked: finite and ≥ 0.
fn threshold(parameter: &'static str, value: f64) -> Result<(), ClipError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ClipError::InvalidThreshold { parameter, value })
    }
}

/// How the training loop clips each batch's gradient before the step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    /// [`clip_grad_norm`] with this `max_norm` and `error_if_nonfinite`.
    Norm {
        /// The largest total 2-norm kept.
        max_norm: f64,
        /// Refuse a non-finite total norm.
        error_if_nonfinite: bool,
    },
    /// [`clip_grad_value`] with this `clip_value`.
    Value(f64),
}

impl Clip {
    /// Checks the threshold.
    pub fn validate(&self) -> Result<(), ClipError> {
        match *self {
            Clip::Norm { max_norm, .. } => threshold("max_norm", max_norm),
            Clip::Value(value) => threshold("clip_value", value),
        }
    }

    /// Clips `grad`; returns the total norm for [`Clip::Norm`], `None` for [`Clip::Value`].
    pub fn apply<N: Network>(&self, grad: &mut N) -> Result<Option<f64>, ClipError> {
        match *self {
            Clip::Norm {
                max_norm,
                error_if_nonfinite,
            } => clip_grad_norm(grad, max_norm, error_if_nonfinite).map(Some),
            Clip::Value(value) => clip_grad_value(grad, value).map(|()| None),
        }
    }
}

/// `torch.nn.utils.clip_grad_norm_(parameters, max_norm)`: the total 2-norm of all gradient
/// entries (the 2-norm of the per-tensor 2-norms), and every entry multiplied by
/// `min(max_norm / (total + 1e-6), 1)`, computed in the network's scalar type. Returns the total
/// norm before clipping. With `error_if_nonfinite`, a NaN or infinite total is an error and
/// nothing changes (without it, torch's behaviour: the entries become NaN). Allocates nothing.
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > }
///
/// let mut grad = Net::<f64>::zeros();
/// grad.fc1.weight[(0, 0)] = 3.0;
/// grad.fc1.bias[0] = 4.0;
/// // Total norm √(3² + 4²) = 5; to 1: every entry times 1 / (5 + 1e-6).
/// assert_eq!(clip_grad_norm(&mut grad, 1.0, true).unwrap(), 5.0);
/// assert!((grad.fc1.weight[(0, 0)] - 0.6).abs() < 1e-6);
/// assert!((grad.fc1.bias[0] - 0.8).abs() < 1e-6);
/// // Already within the bound: unchanged.
/// let before = grad.clone();
/// clip_grad_norm(&mut grad, 10.0, true).unwrap();
/// assert_eq!(grad, before);
/// ```
pub fn clip_grad_norm<N: Network>(
    grad: &mut N,
    max_norm: f64,
    error_if_nonfinite: bool,
) -> Result<f64, ClipError> {
    threshold("max_norm", max_norm)?;
    let zero: N::Scalar = constant(0.0);
    let total = grad
        .params()
        .map(|param| {
            let norm = param.values.iter().fold(zero, |sum, &g| sum + g * g).sqrt();
            norm * norm
        })
        .fold(zero, |sum, square| sum + square)
        .sqrt();
    let norm = to_f64(total);
    if error_if_nonfinite && !norm.is_finite() {
        return Err(ClipError::NonFiniteNorm { norm });
    }
    // clip_coef = max_norm / (total_norm + 1e-6); torch.clamp(clip_coef, max=1.0)
    let coefficient = constant::<N::Scalar>(max_norm) / (total + constant(1e-6));
    let one: N::Scalar = constant(1.0);
    // clamp(max=1) keeps a NaN coefficient NaN.
    let clamped = if coefficient > one { one } else { coefficient };
    for param in grad.params_mut() {
        for g in param.values.iter_mut() {
            *g *= clamped;
        }
    }
    Ok(norm)
}

/// `torch.nn.utils.clip_grad_value_(parameters, clip_value)`: every gradient entry clamped to
/// `[−clip_value, clip_value]` (a NaN stays NaN). Allocates nothing.
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 2 => 1 > }
///
/// let mut grad = Net::<f32>::zeros();
/// grad.fc1.weight = SMatrix::<f32, 1, 2>::new(3.0, -0.25);
/// grad.fc1.bias[0] = -4.0;
/// clip_grad_value(&mut grad, 0.5).unwrap();
/// assert_eq!(grad.fc1.weight, SMatrix::<f32, 1, 2>::new(0.5, -0.25));
/// assert_eq!(grad.fc1.bias[0], -0.5);
/// assert!(clip_grad_value(&mut grad, -1.0).is_err()); // a negative threshold is refused
/// ```
pub fn clip_grad_value<N: Network>(grad: &mut N, clip_value: f64) -> Result<(), ClipError> {
    threshold("clip_value", clip_value)?;
    let high: N::Scalar = constant(clip_value);
    let low = -high;
    for param in grad.params_mut() {
        for g in param.values.iter_mut() {
            if *g < low {
                *g = low;
            } else if *g > high {
                *g = high;
            }
        }
    }
    Ok(())
}
