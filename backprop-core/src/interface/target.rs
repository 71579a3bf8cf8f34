//! [`Target`]: a data set's per-sample target, and the batch of them a loss scores.

use nalgebra::{SMatrix, SVector};

use crate::classify::argmax;
use crate::heap::InPlace;
use crate::loss::{ClassIndexError, ClassTargets};
use crate::scalar::Scalar;

/// Whether a network's output matches a target's class, for accuracy (the largest output, as
/// `torch.argmax` picks it).
pub trait Classify {
    /// `Some(true)` if the largest of `outputs` is the target's class; `None` where a target has
    /// no class (a vector of one entry).
    fn matches<T: Scalar>(&self, outputs: &[T]) -> Option<bool>;
}

impl Classify for usize {
    fn matches<T: Scalar>(&self, outputs: &[T]) -> Option<bool> {
        Some(argmax(outputs) == Some(*self))
    }
}

impl<U: Scalar, const K: usize> Classify for SVector<U, K> {
    fn matches<T: Scalar>(&self, outputs: &[T]) -> Option<bool> {
        (K > 1).then(|| argmax(outputs) == argmax(self.as_slice()))
    }
}

/// A per-sample target for a network with `N` outputs in `T`, and how to gather a batch of
/// them: an `SVector<T, N>` gathers into an `SMatrix<T, N, B>`, a class index (`usize`) into
/// [`ClassTargets<N, B>`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a per-sample target for a network with {N} outputs in `{T}`",
    note = "a target is an `SVector<{T}, {N}>` (what the output should be), or a class index `usize` for `CrossEntropy`"
)]
pub trait Target<T, const N: usize>: Sized + Classify {
    /// The batch of `B` targets the loss scores against a batch of outputs.
    type Batch<const B: usize>: InPlace;

    /// Overwrites `batch` so that its column `i` is `targets[indices[i]]`; `indices` has one
    /// entry per column. The batch is the caller's (made once, on the heap by the training loop),
    /// so gathering moves nothing large through the stack.
    fn gather_into<const B: usize>(
        batch: &mut Self::Batch<B>,
        targets: &[Self],
        indices: &[usize],
    ) -> Result<(), ClassIndexError>;

    /// Checks a whole data set's targets at once, so that training can refuse a bad one before
    /// its first step: the first invalid target, its `sample` being its row in `targets`.
    fn check(targets: &[Self]) -> Result<(), ClassIndexError>;
}

impl<T: Scalar, const N: usize> Target<T, N> for SVector<T, N> {
    type Batch<const B: usize> = SMatrix<T, N, B>;

    #[inline]
    fn gather_into<const B: usize>(
        batch: &mut Self::Batch<B>,
        targets: &[Self],
        indices: &[usize],
    ) -> Result<(), ClassIndexError> {
        for (column, &index) in indices.iter().enumerate().take(B) {
            batch.set_column(column, &targets[index]);
        }
        Ok(())
    }

    /// Any vector is a valid target (a non-finite one shows as a non-finite loss).
    #[inline]
    fn check(_: &[Self]) -> Result<(), ClassIndexError> {
        Ok(())
    }
}

impl<T: Scalar, const N: usize> Target<T, N> for usize {
    type Batch<const B: usize> = ClassTargets<N, B>;

    #[inline]
    fn gather_into<const B: usize>(
        batch: &mut Self::Batch<B>,
        targets: &[Self],
        indices: &[usize],
    ) -> Result<(), ClassIndexError> {
        for (column, &index) in indices.iter().enumerate().take(B) {
            batch.set(column, targets[index])?;
        }
        Ok(())
    }

    #[inline]
    fn check(targets: &[Self]) -> Result<(), ClassIndexError> {
        match targets.iter().position(|&class| class >= N) {
            Some(row) => Err(ClassIndexError {
                sample: row,
                index: targets[row],
                classes: N,
            }),
            None => Ok(()),
        }
    }
}
