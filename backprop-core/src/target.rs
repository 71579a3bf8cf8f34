//! [`Target`]: a data set's per-sample target, and the batch of them a loss scores.

use nalgebra::{SMatrix, SVector};

use crate::loss::{ClassIndexError, ClassTargets};
use crate::scalar::Scalar;

/// A per-sample target for a network whose batch output is `O`, and how to gather a batch of
/// them: an `SVector<T, N>` gathers into an `SMatrix<T, N, B>`, a class index (`usize`) into
/// [`ClassTargets<N, B>`].
pub trait Target<O>: Sized {
    /// The batch type the loss scores against `O`.
    type Batch;

    /// The batch whose column `i` is `targets[indices[i]]`; `indices` has one entry per column.
    fn gather(targets: &[Self], indices: &[usize]) -> Result<Self::Batch, ClassIndexError>;

    /// Checks a whole data set's targets at once, so that training can refuse a bad one before
    /// its first step: the first invalid target, its `sample` being its row in `targets`.
    fn check(targets: &[Self]) -> Result<(), ClassIndexError>;
}

impl<T: Scalar, const N: usize, const B: usize> Target<SMatrix<T, N, B>> for SVector<T, N> {
    type Batch = SMatrix<T, N, B>;

    #[inline]
    fn gather(targets: &[Self], indices: &[usize]) -> Result<Self::Batch, ClassIndexError> {
        let mut batch = SMatrix::<T, N, B>::zeros();
        for (column, &index) in indices.iter().enumerate().take(B) {
            batch.set_column(column, &targets[index]);
        }
        Ok(batch)
    }

    /// Any vector is a valid target (a non-finite one shows as a non-finite loss).
    #[inline]
    fn check(_: &[Self]) -> Result<(), ClassIndexError> {
        Ok(())
    }
}

impl<T: Scalar, const N: usize, const B: usize> Target<SMatrix<T, N, B>> for usize {
    type Batch = ClassTargets<N, B>;

    #[inline]
    fn gather(targets: &[Self], indices: &[usize]) -> Result<Self::Batch, ClassIndexError> {
        let mut classes = [0; B];
        for (column, &index) in indices.iter().enumerate().take(B) {
            classes[column] = targets[index];
        }
        ClassTargets::new(classes)
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
