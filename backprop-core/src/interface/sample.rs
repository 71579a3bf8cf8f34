//! What a network accepts as one sample ([`SampleFor`]) and as a batch ([`BatchFor`]), and the
//! sentence the compiler says when it is given something else: the wrong width, the wrong
//! orientation (a batch is one column per sample), or the wrong scalar type ([`AcceptsScalar`]).

use nalgebra::{SMatrix, SVector};

use crate::scalar::Scalar;

/// One sample of `N` features for the network `Net`: an `SVector<T, N>` or a `[T; N]`.
///
/// The generated `forward` takes any `SampleFor<Self, T, INPUTS>`, so passing the wrong number of
/// features is a compile error whose first line names the network and the width it needs, and
/// passing the right width in the wrong scalar type is one that names the scalars
/// ([`AcceptsScalar`]).
#[diagnostic::on_unimplemented(
    message = "`{Net}` takes {N} features per sample, but was given `{Self}`",
    label = "not {N} features",
    note = "one sample for `{Net}` is an `SVector<{T}, {N}>` or a `[{T}; {N}]`"
)]
pub trait SampleFor<Net, T, const N: usize> {
    /// The sample borrowed as the column vector it is in memory (nothing is copied).
    fn as_vector(&self) -> &SVector<T, N>;

    /// The sample as a column vector of its own.
    #[inline]
    fn to_vector(&self) -> SVector<T, N>
    where
        T: Scalar,
    {
        *self.as_vector()
    }
}

impl<Net, T: Scalar + AcceptsScalar<Net, U>, U, const N: usize> SampleFor<Net, T, N>
    for SVector<U, N>
{
    #[inline]
    fn as_vector(&self) -> &SVector<T, N> {
        T::matrix(self)
    }
}

impl<Net, T: Scalar + AcceptsScalar<Net, U>, U, const N: usize> SampleFor<Net, T, N> for [U; N] {
    #[inline]
    fn as_vector(&self) -> &SVector<T, N> {
        T::matrix(as_matrix(core::array::from_ref(self)))
    }
}

/// A batch of `B` samples of `N` features for the network `Net`, one column per sample: an
/// `SMatrix<T, N, B>`, or `[[T; N]; B]` (an array of samples), or for `B = 1` one `[T; N]`.
///
/// The generated `backward`, `loss` and `forward_batch` take any `BatchFor`, borrowing it as the
/// matrix it already is in memory (nothing is copied). A matrix with one row per sample is a
/// compile error that says a batch is one column per sample.
#[diagnostic::on_unimplemented(
    message = "`{Net}` takes a batch as one column of {N} features per sample, but was given `{Self}`",
    label = "not {N} rows (one column per sample)",
    note = "a batch for `{Net}` is an `SMatrix<{T}, {N}, B>` (one column per sample), or a `[[{T}; {N}]; B]`; a matrix with one row per sample becomes one with `.transpose()`"
)]
pub trait BatchFor<Net, T, const N: usize, const B: usize> {
    /// The batch as the column-major matrix it is in memory.
    fn as_batch(&self) -> &SMatrix<T, N, B>;
}

impl<Net, T: Scalar + AcceptsScalar<Net, U>, U, const N: usize, const B: usize>
    BatchFor<Net, T, N, B> for SMatrix<U, N, B>
{
    #[inline]
    fn as_batch(&self) -> &SMatrix<T, N, B> {
        T::matrix(self)
    }
}

impl<Net, T: Scalar + AcceptsScalar<Net, U>, U, const N: usize, const B: usize>
    BatchFor<Net, T, N, B> for [[U; N]; B]
{
    #[inline]
    fn as_batch(&self) -> &SMatrix<T, N, B> {
        T::matrix(as_matrix(self))
    }
}

/// A batch kept on the heap (as large batches are) is the batch it holds.
#[cfg(feature = "alloc")]
impl<Net, T, X, const N: usize, const B: usize> BatchFor<Net, T, N, B> for crate::heap::Heap<X>
where
    X: BatchFor<Net, T, N, B> + crate::heap::InPlace,
{
    #[inline]
    fn as_batch(&self) -> &SMatrix<T, N, B> {
        (**self).as_batch()
    }
}

/// A boxed batch is the batch it holds.
#[cfg(feature = "alloc")]
impl<Net, T, X, const N: usize, const B: usize> BatchFor<Net, T, N, B> for alloc::boxed::Box<X>
where
    X: BatchFor<Net, T, N, B>,
{
    #[inline]
    fn as_batch(&self) -> &SMatrix<T, N, B> {
        (**self).as_batch()
    }
}

/// One sample as an array is a batch of one. (Written per scalar type: an impl for every `[U; N]`
/// would overlap the array-of-samples one.)
macro_rules! one_sample_batch {
    ($($scalar:ty),*) => {$(
        impl<Net, T: Scalar, const N: usize> BatchFor<Net, T, N, 1> for [$scalar; N]
        where
            T: AcceptsScalar<Net, $scalar>,
        {
            #[inline]
            fn as_batch(&self) -> &SMatrix<T, N, 1> {
                T::matrix(as_matrix(core::array::from_ref(self)))
            }
        }
    )*};
}

one_sample_batch!(f32, f64);

/// `Net` computes in `Self` and accepts values of type `U`: implemented only for `U = Self`, so
/// that data in another scalar type is a compile error naming both types. (The network's scalar
/// is `Self` so that the data's scalar is inferred from it, as for a float literal.)
#[diagnostic::on_unimplemented(
    message = "`{Net}` computes in `{Self}`, but was given `{U}` values",
    label = "`{U}` values, not `{Self}`",
    note = "convert the data (`x.map(|v| v as {Self})`, or `x.cast::<{Self}>()` for an nalgebra matrix), or use the network in `{U}`: `{Net}<{U}>` (and `net.cast::<{U}>()` for an existing one)"
)]
pub trait AcceptsScalar<Net, U> {
    /// A matrix of `U` seen as the matrix of `Self` it is (the identity: `U` is `Self`).
    fn matrix<const R: usize, const C: usize>(m: &SMatrix<U, R, C>) -> &SMatrix<Self, R, C>
    where
        Self: Sized;
}

impl<Net, T> AcceptsScalar<Net, T> for T {
    #[inline]
    fn matrix<const R: usize, const C: usize>(m: &SMatrix<T, R, C>) -> &SMatrix<T, R, C> {
        m
    }
}

/// `B` samples of `N` values, laid out as `[[U; N]; B]` is (sample after sample), seen as the
/// column-major `N × B` matrix they already are.
#[inline]
fn as_matrix<U, const N: usize, const B: usize>(samples: &[[U; N]; B]) -> &SMatrix<U, N, B> {
    // SAFETY: `SMatrix<U, N, B>` is `Matrix<U, Const<N>, Const<B>, ArrayStorage<U, N, B>>`:
    // `Matrix` is `#[repr(C)]` with its storage as the only field that is not zero-sized, and
    // `ArrayStorage` is `#[repr(transparent)]` over `[[U; N]; B]`, column after column. So the
    // `B` consecutive `[U; N]`s of `samples` are exactly that matrix's bytes, with its
    // alignment (that of `U`). The borrow keeps `samples`' lifetime.
    unsafe { &*(samples as *const [[U; N]; B] as *const SMatrix<U, N, B>) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_of_samples_is_the_matrix_with_one_column_per_sample() {
        let samples = [[1.0_f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let batch: &SMatrix<f32, 3, 2> = BatchFor::<(), f32, 3, 2>::as_batch(&samples);
        // Column 1 is the second sample; entry (row 2, column 0) is the first sample's last.
        assert_eq!(batch.column(1).as_slice(), &[4.0, 5.0, 6.0]);
        assert_eq!(batch[(2, 0)], 3.0);
        assert_eq!(
            core::mem::size_of::<SMatrix<f32, 3, 2>>(),
            core::mem::size_of_val(&samples)
        );
    }

    #[test]
    fn one_array_is_a_batch_of_one_and_a_vector() {
        let sample = [0.5_f64, -1.0];
        let batch: &SMatrix<f64, 2, 1> = BatchFor::<(), f64, 2, 1>::as_batch(&sample);
        assert_eq!(batch[(1, 0)], -1.0);
        let vector: SVector<f64, 2> = SampleFor::<(), f64, 2>::to_vector(&sample);
        assert_eq!(vector[0], 0.5);
    }
}
