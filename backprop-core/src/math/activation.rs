//! Activation functions with PyTorch's exact definitions.
//!
//! Each activation maps a layer's pre-activation `z` to its output `a`, one column per sample, and
//! turns ∂loss/∂a into ∂loss/∂z in the backward pass. All but [`Softmax`] act on each entry alone;
//! they implement [`Elementwise`] (the scalar function and its derivative), which [`Activation`]
//! applies entry by entry. Every function is stable for large |z|: no NaN or infinity at |z| = 1e4 in `f32`.

use core::any::Any;

use nalgebra::SMatrix;

use crate::logistic;

use crate::scalar::{constant, same, to_f64, Scalar};

/// An activation applied to a whole layer, one column per sample.
pub trait Activation<T: Scalar> {
    /// Writes `a = f(z)`.
    fn forward<const R: usize, const C: usize>(
        &self,
        z: &SMatrix<T, R, C>,
        a: &mut SMatrix<T, R, C>,
    );

    /// Replaces `z` by `f(z)` in place (a forward pass that keeps nothing for a backward pass).
    fn apply<const R: usize, const C: usize>(&self, z: &mut SMatrix<T, R, C>);

    /// Turns `grad` from ∂loss/∂a into ∂loss/∂z in place, given the `z` and `a` of the forward pass.
    fn backward<const R: usize, const C: usize>(
        &self,
        z: &SMatrix<T, R, C>,
        a: &SMatrix<T, R, C>,
        grad: &mut SMatrix<T, R, C>,
    );

    /// Applies the activation's Jacobian at one sample (`z`, `a`: that sample's columns) to
    /// every column of `t`: `t ← J_f(z) · t`. Every activation here has a symmetric Jacobian
    /// (diagonal, or softmax's `diag(a) − a aᵀ`), so this one map serves forward mode (a tangent
    /// through the layer) and reverse mode (a cotangent back through it), each column exactly
    /// as [`Activation::backward`] treats one sample.
    #[inline]
    fn jacobian_columns<const R: usize, const K: usize>(
        &self,
        z: &SMatrix<T, R, 1>,
        a: &SMatrix<T, R, 1>,
        t: &mut SMatrix<T, R, K>,
    ) {
        for k in 0..K {
            let mut column: SMatrix<T, R, 1> = t.column(k).into_owned();
            self.backward(z, a, &mut column);
            t.set_column(k, &column);
        }
    }
}

/// An activation that acts on each entry alone: a scalar function and its derivative.
pub trait Elementwise<T: Scalar> {
    /// `f(z)`.
    fn value(&self, z: T) -> T;

    /// `f'(z)`, given `a = f(z)` too, so that each function can use the form PyTorch uses.
    fn derivative(&self, z: T, a: T) -> T;

    /// ∂E/∂z from ∂E/∂a = `grad`: `grad · f'(z)` unless the function says otherwise.
    #[inline]
    fn chain(&self, grad: T, z: T, a: T) -> T {
        grad * self.derivative(z, a)
    }
}

/// Implements [`Activation`] for elementwise activations: `a = f(z)` and `g ← g · f'(z)` entry by entry.
macro_rules! elementwise_activation {
    ($($ty:ty),* $(,)?) => {$(
        impl<T: Scalar> Activation<T> for $ty {
            #[inline]
            fn forward<const R: usize, const C: usize>(&self, z: &SMatrix<T, R, C>, a: &mut SMatrix<T, R, C>) {
                a.zip_apply(z, |a, z| *a = self.value(z));
            }

            #[inline]
            fn apply<const R: usize, const C: usize>(&self, z: &mut SMatrix<T, R, C>) {
                z.apply(|z| *z = self.value(*z));
            }

            #[inline]
            fn backward<const R: usize, const C: usize>(
                &self,
                z: &SMatrix<T, R, C>,
                a: &SMatrix<T, R, C>,
                grad: &mut SMatrix<T, R, C>,
            ) {
                grad.zip_zip_apply(z, a, |g, z, a| *g = self.chain(*g, z, a));
            }
        }
    )*};
}

elementwise_activation!(
    Identity,
    Relu,
    LeakyRelu<T>,
    Tanh,
    Softplus,
    Elu<T>,
    Gelu,
    Silu
);

/// `f(z) = z`; what a layer without an activation does.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Identity;

impl<T: Scalar> Elementwise<T> for Identity {
    #[inline]
    fn value(&self, z: T) -> T {
        z
    }

    #[inline]
    fn derivative(&self, _z: T, _a: T) -> T {
        T::one()
    }
}

/// `relu(z) = max(z, 0)`; its derivative at the kink z = 0 is 0, as in PyTorch.
///
/// Like PyTorch's `clamp_min(z, 0)`, only a negative `z` becomes `0`: a NaN stays NaN (so a bad
/// input shows in the output) and `-0` stays `-0`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Relu;

impl<T: Scalar> Elementwise<T> for Relu {
    #[inline]
    fn value(&self, z: T) -> T {
        if z < T::zero() {
            T::zero()
        } else {
            z
        }
    }

    #[inline]
    fn derivative(&self, _z: T, a: T) -> T {
        if a <= T::zero() {
            T::zero()
        } else {
            T::one()
        }
    }

    /// Passes `grad` where the unit is active and an exact `+0` where it is not, as PyTorch's
    /// `threshold_backward` does (a product would give `-0` under a negative gradient); like it,
    /// a NaN unit counts as active, so the NaN's gradient flows on.
    #[inline]
    fn chain(&self, grad: T, _z: T, a: T) -> T {
        if a <= T::zero() {
            T::zero()
        } else {
            grad
        }
    }
}

/// `leaky_relu(z) = z` for z > 0, `slope · z` otherwise (PyTorch's default slope is 0.01).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu<T> {
    /// The slope for negative inputs (`negative_slope` in PyTorch).
    pub slope: T,
}

impl<T: Scalar> LeakyRelu<T> {
    /// A leaky ReLU with the given negative slope.
    #[inline]
    pub fn new(slope: f64) -> Self {
        LeakyRelu {
            slope: constant(slope),
        }
    }
}

impl<T: Scalar> Default for LeakyRelu<T> {
    fn default() -> Self {
        Self::new(0.01)
    }
}

impl<T: Scalar> Elementwise<T> for LeakyRelu<T> {
    #[inline]
    fn value(&self, z: T) -> T {
        if z > T::zero() {
            z
        } else {
            z * self.slope
        }
    }

    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        if z > T::zero() {
            T::one()
        } else {
            self.slope
        }
    }
}

/// The logistic function `1 / (1 + e^-z)`, finite for every finite or infinite z. In `f32` it
/// is [`logistic::sigmoid`], with this crate's own `e^-z` (the same bits on every machine and C
/// library); in `f64`, the formula with the platform's `exp`.
#[inline]
pub fn sigmoid<T: Scalar>(z: T) -> T {
    if let Some(z) = same::<T, f32>(z) {
        if let Some(a) = same::<f32, T>(logistic::sigmoid(z)) {
            return a;
        }
    }
    // PyTorch's form. It never overflows into NaN: for z → −∞, e^-z → ∞ and the quotient → 0
    // (exactly 0 below z ≈ −88 in f32, where the true value is a subnormal); for z → ∞, → 1.
    T::one() / (T::one() + (-z).exp())
}

/// `sigmoid(z) = 1 / (1 + e^-z)`; derivative `a · (1 − a)`. In `f32` a layer's sigmoids are
/// computed together in vector registers ([`logistic::sigmoid_matrix`]), with the bits of
/// [`sigmoid`] on each.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sigmoid;

impl<T: Scalar> Elementwise<T> for Sigmoid {
    #[inline]
    fn value(&self, z: T) -> T {
        sigmoid(z)
    }

    #[inline]
    fn derivative(&self, _z: T, a: T) -> T {
        (T::one() - a) * a
    }
}

impl<T: Scalar> Activation<T> for Sigmoid {
    #[inline]
    fn forward<const R: usize, const C: usize>(
        &self,
        z: &SMatrix<T, R, C>,
        a: &mut SMatrix<T, R, C>,
    ) {
        // In f32 a layer's sigmoids at once, in vector registers (the bits of `sigmoid`).
        let a_any: &mut dyn Any = a;
        if let (Some(z), Some(a)) = (
            (z as &dyn Any).downcast_ref::<SMatrix<f32, R, C>>(),
            a_any.downcast_mut::<SMatrix<f32, R, C>>(),
        ) {
            a.copy_from(z);
            logistic::sigmoid_matrix(a);
            return;
        }
        a.zip_apply(z, |a, z| *a = sigmoid(z));
    }

    #[inline]
    fn apply<const R: usize, const C: usize>(&self, z: &mut SMatrix<T, R, C>) {
        let z_any: &mut dyn Any = z;
        if let Some(z) = z_any.downcast_mut::<SMatrix<f32, R, C>>() {
            logistic::sigmoid_matrix(z);
            return;
        }
        z.apply(|z| *z = sigmoid(*z));
    }

    #[inline]
    fn backward<const R: usize, const C: usize>(
        &self,
        z: &SMatrix<T, R, C>,
        a: &SMatrix<T, R, C>,
        grad: &mut SMatrix<T, R, C>,
    ) {
        grad.zip_zip_apply(z, a, |g, z, a| *g = self.chain(*g, z, a));
    }
}

/// `tanh(z)`; derivative `1 − a²`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tanh;

impl<T: Scalar> Elementwise<T> for Tanh {
    #[inline]
    fn value(&self, z: T) -> T {
        z.tanh()
    }

    #[inline]
    fn derivative(&self, _z: T, a: T) -> T {
        T::one() - a * a
    }
}

/// `softplus(z) = ln(1 + e^z)`, and `z` itself above PyTorch's threshold of 20.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Softplus;

/// PyTorch's `threshold` for softplus: above it softplus returns its input.
const SOFTPLUS_THRESHOLD: f64 = 20.0;

impl<T: Scalar> Elementwise<T> for Softplus {
    #[inline]
    fn value(&self, z: T) -> T {
        if z > constant(SOFTPLUS_THRESHOLD) {
            z
        } else {
            z.exp().ln_1p()
        }
    }

    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        if z > constant(SOFTPLUS_THRESHOLD) {
            T::one()
        } else {
            let e = z.exp();
            e / (e + T::one())
        }
    }
}

/// `elu(z) = z` for z > 0, `α · (e^z − 1)` otherwise (PyTorch's default α is 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Elu<T> {
    /// The scale α of the negative part.
    pub alpha: T,
}

impl<T: Scalar> Elu<T> {
    /// An ELU with the given α.
    #[inline]
    pub fn new(alpha: f64) -> Self {
        Elu {
            alpha: constant(alpha),
        }
    }
}

impl<T: Scalar> Default for Elu<T> {
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl<T: Scalar> Elementwise<T> for Elu<T> {
    #[inline]
    fn value(&self, z: T) -> T {
        if z > T::zero() {
            z
        } else {
            self.alpha * z.exp_m1()
        }
    }

    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        if z > T::zero() {
            T::one()
        } else {
            self.alpha * z.exp()
        }
    }
}

/// `gelu(z) = z · Φ(z)` with the exact normal CDF `Φ(z) = ½ (1 + erf(z / √2))` (PyTorch's default).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gelu;

/// The standard normal CDF Φ(z), through `libm::erf` in f64.
#[inline]
fn normal_cdf<T: Scalar>(z: T) -> T {
    constant(0.5 * (1.0 + libm::erf(to_f64(z) * core::f64::consts::FRAC_1_SQRT_2)))
}

impl<T: Scalar> Elementwise<T> for Gelu {
    #[inline]
    fn value(&self, z: T) -> T {
        z * normal_cdf(z)
    }

    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        // Φ(z) + z · φ(z), with the normal density φ(z) = e^(−z²/2) / √(2π).
        let density = (-(z * z) * constant(0.5)).exp() * constant(0.398_942_280_401_432_7);
        normal_cdf(z) + z * density
    }
}

/// `silu(z) = z · sigmoid(z)` (also called swish).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Silu;

impl<T: Scalar> Elementwise<T> for Silu {
    #[inline]
    fn value(&self, z: T) -> T {
        z * sigmoid(z)
    }

    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        let s = sigmoid(z);
        s * (T::one() + z * (T::one() - s))
    }
}

/// `softmax(z)_i = e^(z_i) / Σ_j e^(z_j)` over each sample's column, shifted by its maximum so it
/// never overflows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Softmax;

impl<T: Scalar> Activation<T> for Softmax {
    fn apply<const R: usize, const C: usize>(&self, z: &mut SMatrix<T, R, C>) {
        for mut column in z.column_iter_mut() {
            let max = column.max();
            let mut sum = T::zero();
            for entry in column.iter_mut() {
                *entry = (*entry - max).exp();
                sum += *entry;
            }
            column /= sum;
        }
    }

    fn forward<const R: usize, const C: usize>(
        &self,
        z: &SMatrix<T, R, C>,
        a: &mut SMatrix<T, R, C>,
    ) {
        for (z, mut a) in z.column_iter().zip(a.column_iter_mut()) {
            let max = z.max();
            let mut sum = T::zero();
            for (a, &z) in a.iter_mut().zip(z.iter()) {
                *a = (z - max).exp();
                sum += *a;
            }
            a /= sum;
        }
    }

    fn backward<const R: usize, const C: usize>(
        &self,
        _z: &SMatrix<T, R, C>,
        a: &SMatrix<T, R, C>,
        grad: &mut SMatrix<T, R, C>,
    ) {
        // ∂loss/∂z_i = a_i · (g_i − Σ_j g_j a_j), PyTorch's softmax_backward.
        for (a, mut g) in a.column_iter().zip(grad.column_iter_mut()) {
            let dot = g.dot(&a);
            g.zip_apply(&a, |g, a| *g = a * (*g - dot));
        }
    }
}
