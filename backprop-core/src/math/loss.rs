//! Loss functions with PyTorch's definitions and default reductions.
//!
//! A loss compares a network's output, one column per sample (`SMatrix<T, N, B>`), with a target and
//! returns one number; `gradient` also writes ∂loss/∂output, the seed of the backward pass.
//!
//! | loss | PyTorch | reduction |
//! |------|---------|-----------|
//! | [`Mse`] | `nn.MSELoss` | mean over the `N * B` elements |
//! | [`L1`] | `nn.L1Loss` | mean over the `N * B` elements |
//! | [`Huber`] | `nn.HuberLoss` | mean over the `N * B` elements |
//! | [`Bce`] | `nn.BCELoss` | mean over the `N * B` elements |
//! | [`BceWithLogits`] | `nn.BCEWithLogitsLoss` | mean over the `N * B` elements |
//! | [`CrossEntropy`] | `nn.CrossEntropyLoss` | mean over the `B` samples |
//! | [`Sse`] | — | sum |
//! | [`HalfSse`] | — | half the sum |
//!
//! Every loss is allocation-free and never panics: a NaN anywhere in the output or the target gives
//! a NaN loss (as in PyTorch) instead of an error, and inputs PyTorch would reject (a [`Bce`]
//! probability outside `[0, 1]`) give NaN as well. Class-index targets are checked once, when the
//! [`ClassTargets`] are built.

use core::fmt;

use nalgebra::{ComplexField, SMatrix};

use crate::scalar::{constant, Scalar};

/// A loss over a batch of `B` outputs of width `N` (one column per sample), against targets of type `Y`.
///
/// `Y` defaults to a matrix of the output's shape; [`CrossEntropy`] also accepts [`ClassTargets`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot score outputs {N} wide (a batch of {B}) against a target of type `{Y}`",
    label = "the target must be {N} wide with {B} sample(s)",
    note = "for this network the target is an `SMatrix<{T}, {N}, {B}>` (an `SVector<{T}, {N}>` for one \
            sample), or `ClassTargets<{N}, {B}>` for `CrossEntropy`"
)]
pub trait Loss<T: Scalar, const N: usize, const B: usize, Y = SMatrix<T, N, B>> {
    /// How the loss combines the samples of a batch: the mean of the per-sample losses (PyTorch's
    /// `reduction='mean'`), or their sum.
    const REDUCTION: Reduction = Reduction::Mean;

    /// For a loss that takes logits (raw scores, such as [`CrossEntropy`] and [`BceWithLogits`]):
    /// the message that says how to fix a network whose last layer outputs probabilities
    /// (softmax, sigmoid), which then compiles to an error; `None` for a loss that takes any
    /// output.
    const TAKES_LOGITS: Option<&'static str> = None;

    /// The loss of `output` against `target`, reduced as PyTorch reduces it by default.
    fn value(&self, output: &SMatrix<T, N, B>, target: &Y) -> T;

    /// Writes ∂loss/∂output into `grad` (overwriting it) and returns the loss, equal to [`Loss::value`].
    fn gradient(&self, output: &SMatrix<T, N, B>, target: &Y, grad: &mut SMatrix<T, N, B>) -> T;

    /// Whether the straight segment between outputs `from` and `to` crosses a kink of this loss
    /// (a point where it is not twice differentiable), which makes a finite difference across it
    /// unreliable: [`L1`] at a zero residual, [`Huber`] at `|o - t| = delta`; smooth losses never do.
    #[inline]
    fn crosses_kink(&self, from: &SMatrix<T, N, B>, to: &SMatrix<T, N, B>, target: &Y) -> bool {
        let _ = (from, to, target);
        false
    }
}

/// How a loss combines the samples of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The batch's loss is the mean of the samples' losses.
    Mean,
    /// The batch's loss is the sum of the samples' losses.
    Sum,
}

// ---------------------------------------------------------------------------------------------
// Private helpers.
// ---------------------------------------------------------------------------------------------

/// `N * B` as a scalar: what a "mean" reduction over every element divides by (no `usize` overflow).
#[inline]
fn element_count<T: Scalar>(n: usize, b: usize) -> T {
    constant::<T>(n as f64 * b as f64)
}

/// `value` if it is at least `floor`, else `floor`; a NaN `value` stays NaN (C++ `std::max(value, floor)`).
#[inline]
fn at_least<T: Scalar>(value: T, floor: T) -> T {
    if value < floor {
        floor
    } else {
        value
    }
}

/// The sign of `x`: 1, -1, 0 for ±0, NaN for NaN.
#[inline]
fn sign<T: Scalar>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        // ±0 gives 0, NaN gives NaN.
        x
    }
}

/// Σ f(o, t) over the elements of `output` and `target`, in column-major order.
#[inline]
fn sum_elementwise<T: Scalar, const N: usize, const B: usize>(
    output: &SMatrix<T, N, B>,
    target: &SMatrix<T, N, B>,
    f: impl Fn(T, T) -> T,
) -> T {
    output
        .iter()
        .zip(target.iter())
        .fold(T::zero(), |total, (&o, &t)| total + f(o, t))
}

/// Σ of the first component of f(o, t), writing its second component into `grad`, in the same
/// order as [`sum_elementwise`] (so the two sums are bit-identical).
#[inline]
fn sum_elementwise_with_gradient<T: Scalar, const N: usize, const B: usize>(
    output: &SMatrix<T, N, B>,
    target: &SMatrix<T, N, B>,
    grad: &mut SMatrix<T, N, B>,
    f: impl Fn(T, T) -> (T, T),
) -> T {
    let mut total = T::zero();
    for ((g, &o), &t) in grad.iter_mut().zip(output.iter()).zip(target.iter()) {
        let (term, derivative) = f(o, t);
        total += term;
        *g = derivative;
    }
    total
}

/// The largest logit of column `b` (the log-sum-exp shift); NaN if the first entry is NaN, 0 if `N == 0`.
#[inline]
fn column_max<T: Scalar, const N: usize, const B: usize>(z: &SMatrix<T, N, B>, b: usize) -> T {
    let column = z.column(b);
    let mut entries = column.iter();
    match entries.next() {
        Some(&first) => entries.fold(first, |max, &x| if x > max { x } else { max }),
        None => T::zero(),
    }
}

/// Σ_c exp(z_c - shift) over column `b`.
#[inline]
fn column_exp_sum<T: Scalar, const N: usize, const B: usize>(
    z: &SMatrix<T, N, B>,
    b: usize,
    shift: T,
) -> T {
    z.column(b)
        .iter()
        .fold(T::zero(), |sum, &x| sum + (x - shift).exp())
}

/// Writes exp(z_c - shift) of column `b` into the same column of `grad` and returns their sum,
/// summed in the same order as [`column_exp_sum`].
#[inline]
fn column_exp_sum_into<T: Scalar, const N: usize, const B: usize>(
    z: &SMatrix<T, N, B>,
    b: usize,
    shift: T,
    grad: &mut SMatrix<T, N, B>,
) -> T {
    let mut sum = T::zero();
    for (g, &x) in grad.column_mut(b).iter_mut().zip(z.column(b).iter()) {
        let e = (x - shift).exp();
        *g = e;
        sum += e;
    }
    sum
}

// ---------------------------------------------------------------------------------------------
// Regression losses.
// ---------------------------------------------------------------------------------------------

/// Mean squared error (`nn.MSELoss`): `mean((o - t)²)`, gradient `2 (o - t) / (N B)`.
///
/// ```
/// use backprop::prelude::*;
///
/// // Two samples of one output each (one column per sample).
/// let output = SMatrix::<f64, 1, 2>::new(1.0, 3.0);
/// let target = SMatrix::<f64, 1, 2>::new(0.0, 0.0);
/// assert_eq!(Loss::value(&Mse, &output, &target), 5.0); // (1² + 3²) / 2
/// let mut grad = SMatrix::zeros();
/// Loss::gradient(&Mse, &output, &target, &mut grad);
/// assert_eq!(grad, SMatrix::<f64, 1, 2>::new(1.0, 3.0)); // 2·(o − t) / 2
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Mse;

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B> for Mse {
    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &SMatrix<T, N, B>) -> T {
        sum_elementwise(output, target, |o, t| {
            let r = o - t;
            r * r
        }) / element_count::<T>(N, B)
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let count = element_count::<T>(N, B);
        let scale = constant::<T>(2.0) / count;
        sum_elementwise_with_gradient(output, target, grad, |o, t| {
            let r = o - t;
            (r * r, scale * r)
        }) / count
    }
}

/// Mean absolute error (`nn.L1Loss`): `mean|o - t|`, gradient `sign(o - t) / (N B)` with `sign(0) = 0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct L1;

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B> for L1 {
    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &SMatrix<T, N, B>) -> T {
        sum_elementwise(output, target, |o, t| ComplexField::abs(o - t)) / element_count::<T>(N, B)
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let count = element_count::<T>(N, B);
        let scale = T::one() / count;
        sum_elementwise_with_gradient(output, target, grad, |o, t| {
            let r = o - t;
            (ComplexField::abs(r), scale * sign(r))
        }) / count
    }

    /// A residual `o - t` changes sign (or is zero at one end): `|r|` has its kink at 0.
    #[inline]
    fn crosses_kink(
        &self,
        from: &SMatrix<T, N, B>,
        to: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
    ) -> bool {
        from.iter()
            .zip(to.iter())
            .zip(target.iter())
            .any(|((&a, &b), &t)| sign(a - t) != sign(b - t))
    }
}

/// Huber loss (`nn.HuberLoss`): with `r = o - t`, `½ r²` if `|r| < delta`, else
/// `delta (|r| - ½ delta)`, averaged; gradient `clamp(r, -delta, delta) / (N B)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Huber {
    /// Where the loss turns from quadratic to linear (PyTorch's `delta`, default 1); should be positive.
    pub delta: f64,
}

impl Huber {
    /// A Huber loss that turns linear at `|o - t| = delta`.
    #[inline]
    pub const fn new(delta: f64) -> Self {
        Self { delta }
    }

    /// The loss of one residual `r`, given `delta` as a scalar.
    #[inline]
    fn term<T: Scalar>(r: T, delta: T) -> T {
        let a = ComplexField::abs(r);
        if a < delta {
            constant::<T>(0.5) * r * r
        } else {
            // Also the NaN branch: NaN propagates.
            delta * (a - constant::<T>(0.5) * delta)
        }
    }

    /// ∂term/∂r: `r` clamped to `[-delta, delta]` (NaN stays NaN, as in PyTorch's backward).
    #[inline]
    fn slope<T: Scalar>(r: T, delta: T) -> T {
        if r < -delta {
            -delta
        } else if r > delta {
            delta
        } else {
            r
        }
    }
}

impl Default for Huber {
    /// PyTorch's default, `delta = 1`.
    #[inline]
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B> for Huber {
    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &SMatrix<T, N, B>) -> T {
        let delta = constant::<T>(self.delta);
        sum_elementwise(output, target, |o, t| Self::term(o - t, delta)) / element_count::<T>(N, B)
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let delta = constant::<T>(self.delta);
        let count = element_count::<T>(N, B);
        let scale = T::one() / count;
        sum_elementwise_with_gradient(output, target, grad, |o, t| {
            let r = o - t;
            (Self::term(r, delta), scale * Self::slope(r, delta))
        }) / count
    }

    /// A residual's magnitude crosses `delta`, where the loss turns from quadratic to linear.
    #[inline]
    fn crosses_kink(
        &self,
        from: &SMatrix<T, N, B>,
        to: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
    ) -> bool {
        let delta = constant::<T>(self.delta);
        from.iter()
            .zip(to.iter())
            .zip(target.iter())
            .any(|((&a, &b), &t)| {
                (ComplexField::abs(a - t) < delta) != (ComplexField::abs(b - t) < delta)
            })
    }
}

/// Sum of squared errors `Σ (o - t)²`, not averaged; gradient `2 (o - t)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sse;

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B> for Sse {
    const REDUCTION: Reduction = Reduction::Sum;

    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &SMatrix<T, N, B>) -> T {
        sum_elementwise(output, target, |o, t| {
            let r = o - t;
            r * r
        })
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let two = constant::<T>(2.0);
        sum_elementwise_with_gradient(output, target, grad, |o, t| {
            let r = o - t;
            (r * r, two * r)
        })
    }
}

/// Half the sum of squared errors, `E = ½ Σ (t - o)²`, not averaged; gradient `o - t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HalfSse;

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B> for HalfSse {
    const REDUCTION: Reduction = Reduction::Sum;

    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &SMatrix<T, N, B>) -> T {
        constant::<T>(0.5)
            * sum_elementwise(output, target, |o, t| {
                let r = o - t;
                r * r
            })
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        constant::<T>(0.5)
            * sum_elementwise_with_gradient(output, target, grad, |o, t| {
                let r = o - t;
                (r * r, r)
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Binary cross entropy.
// ---------------------------------------------------------------------------------------------

/// Binary cross entropy on probabilities (`nn.BCELoss`): `-(t ln o + (1 - t) ln(1 - o))`, each log
/// clamped to `>= -100` as PyTorch does, averaged; the output must lie in `[0, 1]` (else NaN).
///
/// The gradient is PyTorch's: `(o - t) / max((1 - o) o, 1e-12) / (N B)`, finite even at `o = 0` or `1`.
/// Prefer [`BceWithLogits`] on the logits, which is more accurate.
///
/// ```
/// use backprop::prelude::*;
///
/// let output = SMatrix::<f64, 1, 2>::new(0.8, 0.5); // probabilities, as after a sigmoid
/// let target = SMatrix::<f64, 1, 2>::new(1.0, 0.0);
/// // (−ln 0.8 − ln 0.5) / 2 = ln(1 / 0.4) / 2
/// assert!((Loss::value(&Bce, &output, &target) - 2.5f64.ln() / 2.0).abs() < 1e-12);
/// let mut grad = SMatrix::zeros();
/// Loss::gradient(&Bce, &output, &target, &mut grad);
/// // (o − t) / ((1 − o)·o) / 2: −0.2 / 0.16 / 2 and 0.5 / 0.25 / 2
/// assert!((grad - SMatrix::<f64, 1, 2>::new(-0.625, 1.0)).norm() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bce;

impl Bce {
    /// The loss of one probability `o` against target `t`, with PyTorch's `-100` floor on both logs.
    #[inline]
    fn term<T: Scalar>(o: T, t: T) -> T {
        let floor = constant::<T>(-100.0);
        let log_o = at_least(o.ln(), floor);
        let log_1_minus_o = at_least((-o).ln_1p(), floor);
        (t - T::one()) * log_1_minus_o - t * log_o
    }

    /// ∂term/∂o as PyTorch's `binary_cross_entropy_backward` computes it.
    #[inline]
    fn slope<T: Scalar>(o: T, t: T) -> T {
        (o - t) / at_least((T::one() - o) * o, constant::<T>(1e-12))
    }
}

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B> for Bce {
    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &SMatrix<T, N, B>) -> T {
        sum_elementwise(output, target, Self::term) / element_count::<T>(N, B)
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let count = element_count::<T>(N, B);
        let scale = T::one() / count;
        sum_elementwise_with_gradient(output, target, grad, |o, t| {
            (Self::term(o, t), scale * Self::slope(o, t))
        }) / count
    }
}

/// Binary cross entropy on logits (`nn.BCEWithLogitsLoss`): `-(t ln σ(z) + (1 - t) ln(1 - σ(z)))`,
/// computed stably as `max(z, 0) - z t + ln(1 + e^-|z|)`, averaged; gradient `(σ(z) - t) / (N B)`.
///
/// ```
/// use backprop::prelude::*;
///
/// // Logits 0 and ln 4, that is probabilities σ(0) = 0.5 and σ(ln 4) = 0.8.
/// let logits = SMatrix::<f64, 1, 2>::new(0.0, 4f64.ln());
/// let target = SMatrix::<f64, 1, 2>::new(0.3, 1.0);
/// // At σ = 0.5 the loss is ln 2 for any target; at 0.8 against 1 it is −ln 0.8.
/// let expected = (2f64.ln() - 0.8f64.ln()) / 2.0;
/// assert!((Loss::value(&BceWithLogits, &logits, &target) - expected).abs() < 1e-12);
/// let mut grad = SMatrix::zeros();
/// Loss::gradient(&BceWithLogits, &logits, &target, &mut grad);
/// // (σ(z) − t) / 2: (0.5 − 0.3) / 2 and (0.8 − 1) / 2
/// assert!((grad - SMatrix::<f64, 1, 2>::new(0.1, -0.1)).norm() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BceWithLogits;

impl BceWithLogits {
    /// The loss of one logit `z` against target `t`, without overflow for any finite `z`.
    #[inline]
    fn term<T: Scalar>(z: T, t: T) -> T {
        let positive_part = if z > T::zero() { z } else { T::zero() };
        positive_part - z * t + (-ComplexField::abs(z)).exp().ln_1p()
    }

    /// The logistic sigmoid, never exponentiating a positive number.
    #[inline]
    fn sigmoid<T: Scalar>(z: T) -> T {
        if z >= T::zero() {
            T::one() / (T::one() + (-z).exp())
        } else {
            // Also the NaN branch: NaN propagates.
            let e = z.exp();
            e / (T::one() + e)
        }
    }
}

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B> for BceWithLogits {
    const TAKES_LOGITS: Option<&'static str> = Some(
        "`BceWithLogits` takes logits, but the network's last layer applies sigmoid or softmax: \
         BceWithLogits applies the sigmoid itself, so declare the last layer without an \
         activation, or keep the sigmoid and use `Bce`",
    );

    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &SMatrix<T, N, B>) -> T {
        sum_elementwise(output, target, Self::term) / element_count::<T>(N, B)
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let count = element_count::<T>(N, B);
        let scale = T::one() / count;
        sum_elementwise_with_gradient(output, target, grad, |z, t| {
            (Self::term(z, t), scale * (Self::sigmoid(z) - t))
        }) / count
    }
}

// ---------------------------------------------------------------------------------------------
// Cross entropy.
// ---------------------------------------------------------------------------------------------

/// Cross entropy from logits (`nn.CrossEntropyLoss`), each column one sample's `N` logits, averaged
/// over the `B` samples; log-softmax is computed stably (shifted by the column's maximum).
///
/// Two target kinds:
/// - class probabilities, `SMatrix<T, N, B>`: `loss_b = -Σ_c t_c log_softmax(z)_c`, gradient
///   `(softmax(z) Σ_c t_c - t) / B` (the targets need not sum to 1);
/// - class indices, [`ClassTargets<N, B>`]: `loss_b = -log_softmax(z)_{t_b}`, gradient
///   `(softmax(z) - onehot(t_b)) / B`.
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 2 => 3 > } // three logits
///
/// // Zero weights and biases (0, ln 2, ln 5): the logits for any x, softmax (1, 2, 5) / 8.
/// let mut net = Net::<f64>::zeros();
/// net.fc1.bias = SVector::<f64, 3>::new(0.0, 2f64.ln(), 5f64.ln());
/// let x = SVector::<f64, 2>::new(0.3, -0.7);
/// let class = ClassTargets::<3, 1>::new([2]).unwrap();
/// // −log_softmax(z)[2] = −ln(5/8) = ln 1.6
/// assert!((net.loss(&x, &class, &CrossEntropy) - 1.6f64.ln()).abs() < 1e-12);
/// // ∂loss/∂bias = softmax(z) − onehot(2) = (1/8, 2/8, 5/8 − 1)
/// let mut grad = Net::zeros();
/// net.backward(&x, &class, &CrossEntropy, &mut net.workspace(), &mut grad);
/// assert!((grad.fc1.bias - SVector::<f64, 3>::new(0.125, 0.25, -0.375)).norm() < 1e-12);
/// // The same class as probabilities, one-hot: the same loss.
/// let probabilities = SVector::<f64, 3>::new(0.0, 0.0, 1.0);
/// assert!((net.loss(&x, &probabilities, &CrossEntropy) - 1.6f64.ln()).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CrossEntropy;

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B> for CrossEntropy {
    const TAKES_LOGITS: Option<&'static str> = CROSS_ENTROPY_TAKES_LOGITS;

    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &SMatrix<T, N, B>) -> T {
        let mut total = T::zero();
        for b in 0..B {
            let max = column_max(output, b);
            let ln_sum = column_exp_sum(output, b, max).ln();
            for (&z, &t) in output.column(b).iter().zip(target.column(b).iter()) {
                // -t * log_softmax(z) with log_softmax(z) = (z - max) - ln Σ exp(z - max).
                total -= t * ((z - max) - ln_sum);
            }
        }
        total / constant::<T>(B as f64)
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &SMatrix<T, N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let batch = constant::<T>(B as f64);
        let scale = T::one() / batch;
        let mut total = T::zero();
        for b in 0..B {
            let max = column_max(output, b);
            let sum = column_exp_sum_into(output, b, max, grad);
            let ln_sum = sum.ln();
            let mut target_sum = T::zero();
            for (&z, &t) in output.column(b).iter().zip(target.column(b).iter()) {
                total -= t * ((z - max) - ln_sum);
                target_sum += t;
            }
            for (g, &t) in grad.column_mut(b).iter_mut().zip(target.column(b).iter()) {
                // `g` holds exp(z - max); softmax(z) = exp(z - max) / sum.
                *g = scale * (*g / sum * target_sum - t);
            }
        }
        total / batch
    }
}

impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B, ClassTargets<N, B>> for CrossEntropy {
    const TAKES_LOGITS: Option<&'static str> = CROSS_ENTROPY_TAKES_LOGITS;

    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &ClassTargets<N, B>) -> T {
        class_value(output, target.indices())
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &ClassTargets<N, B>,
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        class_gradient(output, target.indices(), grad)
    }
}

/// Class indices as a plain array, one per sample, as [`ClassTargets`] holds them; an index
/// outside `0..N` gives that sample a NaN loss and NaN gradients (never a panic).
/// [`ClassTargets::new`] checks indices up front.
impl<T: Scalar, const N: usize, const B: usize> Loss<T, N, B, [usize; B]> for CrossEntropy {
    const TAKES_LOGITS: Option<&'static str> = CROSS_ENTROPY_TAKES_LOGITS;

    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &[usize; B]) -> T {
        class_value(output, target)
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, B>,
        target: &[usize; B],
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        class_gradient(output, target, grad)
    }
}

/// One sample's class index; outside `0..N` it gives a NaN loss and NaN gradients.
impl<T: Scalar, const N: usize> Loss<T, N, 1, usize> for CrossEntropy {
    const TAKES_LOGITS: Option<&'static str> = CROSS_ENTROPY_TAKES_LOGITS;

    #[inline]
    fn value(&self, output: &SMatrix<T, N, 1>, target: &usize) -> T {
        class_value(output, &[*target])
    }

    #[inline]
    fn gradient(
        &self,
        output: &SMatrix<T, N, 1>,
        target: &usize,
        grad: &mut SMatrix<T, N, 1>,
    ) -> T {
        class_gradient(output, &[*target], grad)
    }
}

/// Why [`CrossEntropy`] refuses a network whose last layer outputs probabilities.
const CROSS_ENTROPY_TAKES_LOGITS: Option<&str> = Some(
    "`CrossEntropy` takes logits, but the network's last layer applies softmax or sigmoid: \
     CrossEntropy applies log-softmax itself, so drop the activation of the last layer (write \
     only its width) and apply softmax to the outputs where you need probabilities",
);

/// Cross entropy of logits against class indices: `-log_softmax(z)_{t_b}`, averaged.
#[inline]
fn class_value<T: Scalar, const N: usize, const B: usize>(
    output: &SMatrix<T, N, B>,
    classes: &[usize; B],
) -> T {
    let mut total = T::zero();
    for (b, &class) in classes.iter().enumerate() {
        let max = column_max(output, b);
        let ln_sum = column_exp_sum(output, b, max).ln();
        total -= (logit(output, class, b) - max) - ln_sum;
    }
    total / constant::<T>(B as f64)
}

/// Writes `(softmax(z) - onehot(t_b)) / B` into `grad` and returns [`class_value`]; a class
/// outside `0..N` makes its sample's column NaN.
#[inline]
fn class_gradient<T: Scalar, const N: usize, const B: usize>(
    output: &SMatrix<T, N, B>,
    classes: &[usize; B],
    grad: &mut SMatrix<T, N, B>,
) -> T {
    let batch = constant::<T>(B as f64);
    let scale = T::one() / batch;
    let mut total = T::zero();
    for (b, &class) in classes.iter().enumerate() {
        let max = column_max(output, b);
        let sum = column_exp_sum_into(output, b, max, grad);
        total -= (logit(output, class, b) - max) - sum.ln();
        let valid = class < N;
        for (c, g) in grad.column_mut(b).iter_mut().enumerate() {
            // `g` holds exp(z - max); softmax(z) = exp(z - max) / sum.
            let softmax = *g / sum;
            *g = if !valid {
                constant::<T>(f64::NAN)
            } else if c == class {
                scale * (softmax - T::one())
            } else {
                scale * softmax
            };
        }
    }
    total / batch
}

/// The logit of class `class` in sample `b` (always in range: [`ClassTargets`] checks its indices;
/// NaN rather than a panic if it ever were not).
#[inline]
fn logit<T: Scalar, const N: usize, const B: usize>(
    output: &SMatrix<T, N, B>,
    class: usize,
    b: usize,
) -> T {
    output
        .get((class, b))
        .copied()
        .unwrap_or_else(|| constant::<T>(f64::NAN))
}

/// One class index per sample, each checked to be below the number of classes `N`: the
/// class-index targets of [`CrossEntropy`].
///
/// ```
/// use backprop::prelude::*;
///
/// // A batch of three samples of a 4-class problem; the indices are checked once, here.
/// let mut targets = ClassTargets::<4, 3>::new([0, 3, 1]).unwrap();
/// assert_eq!(targets.indices(), &[0, 3, 1]);
/// let error = ClassTargets::<4, 3>::new([0, 4, 1]).unwrap_err();
/// assert_eq!((error.sample, error.index, error.classes), (1, 4, 4));
/// assert!(targets.set(2, 4).is_err()); // refused, and the old class kept
/// targets.set(2, 2).unwrap();
/// assert_eq!(targets.indices(), &[0, 3, 2]);
///
/// // Uniform logits: each sample's loss is ln 4, and so is the mean.
/// let logits = SMatrix::<f64, 4, 3>::zeros();
/// assert!((Loss::value(&CrossEntropy, &logits, &targets) - 4f64.ln()).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct ClassTargets<const N: usize, const B: usize> {
    indices: [usize; B],
}

impl<const N: usize, const B: usize> ClassTargets<N, B> {
    /// Wraps one class index per sample, or reports the first index that is not in `0..N`.
    #[inline]
    pub const fn new(indices: [usize; B]) -> Result<Self, ClassIndexError> {
        let mut sample = 0;
        while sample < B {
            if indices[sample] >= N {
                return Err(ClassIndexError {
                    sample,
                    index: indices[sample],
                    classes: N,
                });
            }
            sample += 1;
        }
        Ok(Self { indices })
    }

    /// The class index of each sample, all in `0..N`.
    #[inline]
    pub const fn indices(&self) -> &[usize; B] {
        &self.indices
    }
}

impl<const N: usize, const B: usize> ClassTargets<N, B> {
    /// Sets sample `sample`'s class, or reports an index that is not in `0..N` (and keeps the old).
    #[inline]
    pub fn set(&mut self, sample: usize, index: usize) -> Result<(), ClassIndexError> {
        if index >= N {
            return Err(ClassIndexError {
                sample,
                index,
                classes: N,
            });
        }
        self.indices[sample] = index;
        Ok(())
    }
}

// SAFETY: the value is one `[usize; B]`, every entry written; class 0 is valid for any network
// (the macro rejects a zero-width output layer).
unsafe impl<const N: usize, const B: usize> crate::heap::InPlace for ClassTargets<N, B> {
    #[inline]
    unsafe fn write_zeros(slot: *mut Self) {
        let start = slot.cast::<usize>();
        for index in 0..B {
            // SAFETY: `index < B`, inside the array that is the whole value.
            unsafe { start.add(index).write(0) };
        }
    }

    #[inline]
    fn copy_from(&mut self, other: &Self) {
        self.indices = other.indices;
    }
}

/// A class index given to [`ClassTargets::new`] that is not below the number of classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassIndexError {
    /// The position of the offending sample: in the batch for [`ClassTargets::new`], its row in
    /// the data set for [`Target::check`](crate::target::Target::check) and training.
    pub sample: usize,
    /// The out-of-range class index found there.
    pub index: usize,
    /// The number of classes `N` (valid indices are `0..N`).
    pub classes: usize,
}

impl fmt::Display for ClassIndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "target class {} of sample {} is out of range: ",
            self.index, self.sample
        )?;
        write_classes(f, self.classes)
    }
}

/// How many classes a network has, and their range, as an error message says it.
pub(crate) fn write_classes(f: &mut fmt::Formatter<'_>, classes: usize) -> fmt::Result {
    match classes {
        0 => f.write_str("the network has no classes"),
        1 => f.write_str("the network has 1 class (0..=0)"),
        n => write!(f, "the network has {n} classes (0..={})", n - 1),
    }
}

impl core::error::Error for ClassIndexError {}
