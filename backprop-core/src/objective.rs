//! [`Objective`]: a loss seen through the type of the output it scores, for generic code.

use nalgebra::SMatrix;

use crate::loss::{Loss, Reduction};
use crate::scalar::Scalar;

/// A loss on outputs of type `O` against targets of type `Y`, returning a `T`.
///
/// Every [`Loss<T, N, B, Y>`](Loss) is an `Objective<T, SMatrix<T, N, B>, Y>`. Generic code over
/// [`Batched`](crate::Batched) networks names its loss this way, since it knows the output as a type
/// (`N::Output`) rather than as widths.
pub trait Objective<T, O, Y> {
    /// How the loss combines the samples of a batch (see [`Loss::REDUCTION`]).
    const REDUCTION: Reduction;

    /// The loss of `output` against `target`.
    fn value(&self, output: &O, target: &Y) -> T;

    /// Writes ∂loss/∂output into `grad` and returns the loss.
    fn gradient(&self, output: &O, target: &Y, grad: &mut O) -> T;

    /// Whether the segment between outputs `from` and `to` crosses a kink of the loss (see
    /// [`Loss::crosses_kink`]); `false` unless the loss says otherwise.
    #[inline]
    fn crosses_kink(&self, from: &O, to: &O, target: &Y) -> bool {
        let _ = (from, to, target);
        false
    }
}

impl<T: Scalar, const N: usize, const B: usize, Y, L: Loss<T, N, B, Y>>
    Objective<T, SMatrix<T, N, B>, Y> for L
{
    const REDUCTION: Reduction = <L as Loss<T, N, B, Y>>::REDUCTION;

    #[inline]
    fn value(&self, output: &SMatrix<T, N, B>, target: &Y) -> T {
        Loss::value(self, output, target)
    }

    #[inline]
    fn gradient(&self, output: &SMatrix<T, N, B>, target: &Y, grad: &mut SMatrix<T, N, B>) -> T {
        Loss::gradient(self, output, target, grad)
    }

    #[inline]
    fn crosses_kink(&self, from: &SMatrix<T, N, B>, to: &SMatrix<T, N, B>, target: &Y) -> bool {
        Loss::crosses_kink(self, from, to, target)
    }
}
