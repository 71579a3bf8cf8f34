//! The scalar type every network, layer and loss is generic over.

use nalgebra::RealField;

/// `U: SupersetOf<T>` says a `T` converts to a `U` (as `f32` does to `f64`); used by `cast`.
pub use simba::scalar::SupersetOf;

/// A real number a network can compute with: `f32` and `f64` (anything `RealField + Copy`).
pub trait Scalar: RealField + Copy {}

impl<T: RealField + Copy> Scalar for T {}

/// Converts an `f64` constant (a slope, a threshold, a learning rate) to the scalar type.
#[inline]
pub fn constant<T: Scalar>(value: f64) -> T {
    nalgebra::convert(value)
}

/// Converts a scalar to `f64`, for the few functions (`erf`) that only exist there.
#[inline]
pub fn to_f64<T: Scalar>(value: T) -> f64 {
    nalgebra::try_convert(value).unwrap_or(f64::NAN)
}

/// `value` as a `B` when `A` is `B` (the same bits), else `None`; free once inlined. How code
/// generic over [`Scalar`] takes an `f32`-only path (the sigmoid, Adam's bias correction).
#[inline(always)]
pub(crate) fn same<A: 'static + Copy, B: 'static + Copy>(value: A) -> Option<B> {
    (&value as &dyn core::any::Any).downcast_ref::<B>().copied()
}
