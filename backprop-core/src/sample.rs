//! [`SampleFor`]: what a network accepts as one sample, and the sentence it says when it does not.

use nalgebra::SVector;

use crate::scalar::Scalar;

/// One sample of `N` features for the network `Net`: an `SVector<T, N>` or a `[T; N]`.
///
/// The generated `forward` takes any `SampleFor<Self, T, INPUTS>`, so passing the wrong number of
/// features is a compile error whose first line names the network and the width it needs.
#[diagnostic::on_unimplemented(
    message = "`{Net}` takes {N} features per sample, but was given `{Self}`",
    label = "not {N} features",
    note = "one sample for `{Net}` is an `SVector<{T}, {N}>` or a `[{T}; {N}]`"
)]
pub trait SampleFor<Net, T, const N: usize> {
    /// The sample as a column vector.
    fn to_vector(&self) -> SVector<T, N>;
}

impl<Net, T: Scalar, const N: usize> SampleFor<Net, T, N> for SVector<T, N> {
    #[inline]
    fn to_vector(&self) -> SVector<T, N> {
        *self
    }
}

impl<Net, T: Scalar, const N: usize> SampleFor<Net, T, N> for [T; N] {
    #[inline]
    fn to_vector(&self) -> SVector<T, N> {
        SVector::from(*self)
    }
}
