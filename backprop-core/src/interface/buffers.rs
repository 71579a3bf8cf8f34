//! The per-layer scratch values a forward and backward pass keep: the caller-owned workspace.

use nalgebra::SMatrix;

use crate::heap::InPlace;
use crate::scalar::Scalar;

/// One layer's values for a batch of `B` samples of width `W`: what the backward pass needs from
/// the forward pass, and room for the layer's error term.
///
/// A generated workspace holds each layer's buffers as an [`Owned`](crate::heap::Owned) value: on
/// the heap when the `alloc` feature is on (so a workspace for a batch of 4096 never touches the
/// stack), inline without it.
#[derive(Clone, Debug, PartialEq)]
#[repr(C)]
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
    /// The three buffers at once, writable: `(z, a, delta)`. Generated passes reach a layer's
    /// buffers through this one borrow, which works the same for inline and heap buffers.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    pub fn split_mut(
        &mut self,
    ) -> (
        &mut SMatrix<T, W, B>,
        &mut SMatrix<T, W, B>,
        &mut SMatrix<T, W, B>,
    ) {
        (&mut self.z, &mut self.a, &mut self.delta)
    }

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

// SAFETY: `LayerBuffers` is `#[repr(C)]` with three static matrices, each zeroed in place.
unsafe impl<T: Scalar, const W: usize, const B: usize> InPlace for LayerBuffers<T, W, B> {
    #[inline]
    unsafe fn write_zeros(slot: *mut Self) {
        // SAFETY: the caller gives a valid slot; the fields are inside it.
        unsafe {
            InPlace::write_zeros(core::ptr::addr_of_mut!((*slot).z));
            InPlace::write_zeros(core::ptr::addr_of_mut!((*slot).a));
            InPlace::write_zeros(core::ptr::addr_of_mut!((*slot).delta));
        }
    }

    #[inline]
    fn copy_from(&mut self, other: &Self) {
        self.z.copy_from(&other.z);
        self.a.copy_from(&other.a);
        self.delta.copy_from(&other.delta);
    }
}
