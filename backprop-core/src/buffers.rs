//! The per-layer scratch values a forward and backward pass keep: the caller-owned workspace.

use nalgebra::SMatrix;

use crate::scalar::Scalar;

/// One layer's values for a batch of `B` samples of width `W`: what the backward pass needs from
/// the forward pass, and room for the layer's error term.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerBuffers<T: Scalar, const W: usize, const B: usize> {
    /// The pre-activation `z = W·x + b`.
    pub z: SMatrix<T, W, B>,
    /// The layer's output `a = f(z)`.
    pub a: SMatrix<T, W, B>,
    /// During the backward pass, first ∂E/∂a, then ∂E/∂z (the δ of the delta rule).
    pub delta: SMatrix<T, W, B>,
}

impl<T: Scalar, const W: usize, const B: usize> LayerBuffers<T, W, B> {
    /// Buffers filled with zeros.
    #[inline]
    pub fn zeros() -> Self {
        LayerBuffers {
            z: SMatrix::zeros(),
            a: SMatrix::zeros(),
            delta: SMatrix::zeros(),
        }
    }
}

/// One layer's values read by name from a workspace, column-major (`[units × batch]`).
#[derive(Clone, Copy, Debug)]
pub struct LayerView<'a, T> {
    /// The layer's width.
    pub units: usize,
    /// The pre-activation `z`.
    pub z: &'a [T],
    /// The output `a`.
    pub a: &'a [T],
    /// ∂E/∂z after a backward pass.
    pub delta: &'a [T],
}

impl<T: Scalar, const W: usize, const B: usize> LayerBuffers<T, W, B> {
    /// These buffers as slices.
    #[inline]
    pub fn view(&self) -> LayerView<'_, T> {
        LayerView {
            units: W,
            z: self.z.as_slice(),
            a: self.a.as_slice(),
            delta: self.delta.as_slice(),
        }
    }
}
