//! [`TargetBatch`]: a batch of targets gathered from per-sample targets, for training loops.

use nalgebra::{SMatrix, SVector};

use crate::loss::{ClassIndexError, ClassTargets};
use crate::scalar::Scalar;

/// A batch of `B` targets built from a data set's per-sample targets of type `S`: an
/// `SMatrix<T, N, B>` from `SVector<T, N>`s, or [`ClassTargets<N, B>`] from class indices.
pub trait TargetBatch<S>: Sized {
    /// The batch whose column `i` is `targets[indices[i]]`; `indices` has one entry per column.
    fn gather(targets: &[S], indices: &[usize]) -> Result<Self, ClassIndexError>;
}

impl<T: Scalar, const N: usize, const B: usize> TargetBatch<SVector<T, N>> for SMatrix<T, N, B> {
    #[inline]
    fn gather(targets: &[SVector<T, N>], indices: &[usize]) -> Result<Self, ClassIndexError> {
        let mut batch = SMatrix::<T, N, B>::zeros();
        for (column, &index) in indices.iter().enumerate().take(B) {
            batch.set_column(column, &targets[index]);
        }
        Ok(batch)
    }
}

impl<const N: usize, const B: usize> TargetBatch<usize> for ClassTargets<N, B> {
    #[inline]
    fn gather(targets: &[usize], indices: &[usize]) -> Result<Self, ClassIndexError> {
        let mut classes = [0; B];
        for (column, &index) in indices.iter().enumerate().take(B) {
            classes[column] = targets[index];
        }
        ClassTargets::new(classes)
    }
}
