//! Values kept off the stack: [`Heap`], a box built and cloned where it lies, and [`Owned`], what
//! the library and the generated code use for anything that may be large (big layers, a
//! workspace's per-layer buffers, input batches).
//!
//! `Box::new(value)` and `Box::clone` both pass the value through the stack in a debug build, so a
//! 400 KB layer overflows a small thread on its way to the heap. A [`Heap`] is allocated first and
//! then written in place: zeroed by [`InPlace::write_zeros`], copied by [`InPlace::copy_from`].
//! Without the `alloc` feature there is no heap, and [`Owned<X>`] is `X` itself.

#[cfg(feature = "alloc")]
use alloc::boxed::Box;
use core::mem::MaybeUninit;

use nalgebra::SMatrix;

use crate::scalar::Scalar;

/// A value that can be zeroed and copied where it lies, never passing through the stack whole.
///
/// # Safety
///
/// [`InPlace::write_zeros`] must initialise every byte of the value behind the pointer.
pub unsafe trait InPlace {
    /// Initialises the value at `slot` as zeros.
    ///
    /// # Safety
    ///
    /// `slot` must be valid for writes and aligned; its previous contents are not dropped.
    unsafe fn write_zeros(slot: *mut Self);

    /// Overwrites `self` with `other`, entry by entry.
    fn copy_from(&mut self, other: &Self);
}

// SAFETY: a static nalgebra matrix is `#[repr(C)]` over `ArrayStorage`, a `#[repr(transparent)]`
// `[[T; R]; C]`: `R * C` consecutive `T`s with no padding, each written here.
unsafe impl<T: Scalar, const R: usize, const C: usize> InPlace for SMatrix<T, R, C> {
    #[inline]
    unsafe fn write_zeros(slot: *mut Self) {
        let start = slot.cast::<T>();
        for index in 0..R * C {
            // SAFETY: `index < R * C`, inside the matrix (see above).
            unsafe { start.add(index).write(T::zero()) };
        }
    }

    #[inline]
    fn copy_from(&mut self, other: &Self) {
        self.as_mut_slice().copy_from_slice(other.as_slice());
    }
}

/// The largest value, in bytes, that generated passes keep as a local: [`sizes::INLINE_BYTES`].
///
/// [`sizes::INLINE_BYTES`]: crate::sizes::INLINE_BYTES
pub const INLINE_BYTES: usize = crate::sizes::INLINE_BYTES;

/// Whether `entries` values of `T` are kept as a local value: at most [`INLINE_BYTES`], or any
/// size without the `alloc` feature (where there is no heap to use instead).
#[inline(always)]
pub const fn fits_inline<T>(entries: usize) -> bool {
    !cfg!(feature = "alloc") || entries.saturating_mul(core::mem::size_of::<T>()) <= INLINE_BYTES
}

/// A zeroed value of `X`, built without a whole `X` on the stack where a heap exists: a [`Heap`]
/// with the `alloc` feature, the value itself without it.
#[inline]
pub fn zeroed<X: InPlace>() -> Owned<X> {
    #[cfg(feature = "alloc")]
    {
        Heap::zeros()
    }
    #[cfg(not(feature = "alloc"))]
    {
        inline_zeros()
    }
}

/// A value of a type the library cannot build in place (a generated network, optimizer state):
/// boxed with the `alloc` feature, inline without it.
#[cfg(feature = "alloc")]
pub type Boxed<X> = Box<X>;

/// A value of a type the library cannot build in place (a generated network, optimizer state):
/// boxed with the `alloc` feature, inline without it.
#[cfg(not(feature = "alloc"))]
pub type Boxed<X> = X;

/// `make()`'s value, boxed where a heap exists. Only the value's inline part (a network's small
/// layers: its large ones are [`Heap`] boxes already) passes through this function's frame.
#[inline(never)]
pub fn boxed<X>(make: impl FnOnce() -> X) -> Boxed<X> {
    #[cfg(feature = "alloc")]
    {
        Box::new(make())
    }
    #[cfg(not(feature = "alloc"))]
    {
        make()
    }
}

/// A zeroed `X` built on the stack (where a heap is not available or not wanted).
#[inline]
pub fn inline_zeros<X: InPlace>() -> X {
    let mut slot = MaybeUninit::<X>::uninit();
    // SAFETY: `write_zeros` initialises every byte of the slot (the trait's contract).
    unsafe {
        X::write_zeros(slot.as_mut_ptr());
        slot.assume_init()
    }
}

/// A value that may be large: a [`Heap`] box with the `alloc` feature, inline without it.
#[cfg(feature = "alloc")]
pub type Owned<X> = Heap<X>;

/// A value that may be large: a [`Heap`] box with the `alloc` feature, inline without it.
#[cfg(not(feature = "alloc"))]
pub type Owned<X> = X;

/// A boxed value built, cloned and compared in place on the heap. It reads as the value it holds
/// (`Deref`), so `net.fc1.weight` is the same expression for a boxed and an inline layer.
#[cfg(feature = "alloc")]
#[repr(transparent)]
pub struct Heap<X>(Box<X>);

#[cfg(feature = "alloc")]
impl<X: InPlace> Heap<X> {
    /// A zeroed value, allocated on the heap and written there.
    pub fn zeros() -> Self {
        let mut slot = Box::<X>::new_uninit();
        // SAFETY: `write_zeros` initialises every byte of the slot (the trait's contract).
        unsafe {
            X::write_zeros(slot.as_mut_ptr());
            Heap(slot.assume_init())
        }
    }

    /// The box itself.
    pub fn into_box(self) -> Box<X> {
        self.0
    }
}

#[cfg(feature = "alloc")]
impl<X> core::ops::Deref for Heap<X> {
    type Target = X;

    #[inline(always)]
    fn deref(&self) -> &X {
        &self.0
    }
}

#[cfg(feature = "alloc")]
impl<X> core::ops::DerefMut for Heap<X> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut X {
        &mut self.0
    }
}

#[cfg(feature = "alloc")]
impl<X: InPlace> Clone for Heap<X> {
    /// A new heap value, zeroed then copied from this one: nothing passes through the stack.
    fn clone(&self) -> Self {
        let mut copy = Heap::<X>::zeros();
        copy.copy_from(self);
        copy
    }

    fn clone_from(&mut self, source: &Self) {
        self.0.copy_from(&source.0);
    }
}

#[cfg(feature = "alloc")]
impl<X: core::fmt::Debug> core::fmt::Debug for Heap<X> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "alloc")]
impl<X: PartialEq> PartialEq for Heap<X> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        *self.0 == *other.0
    }
}

// SAFETY: a `Heap` is one pointer, written here with a fresh, fully initialised allocation.
#[cfg(feature = "alloc")]
unsafe impl<X: InPlace> InPlace for Heap<X> {
    #[inline]
    unsafe fn write_zeros(slot: *mut Self) {
        // SAFETY: the caller gives a slot valid for writes.
        unsafe { slot.write(Heap::zeros()) };
    }

    #[inline]
    fn copy_from(&mut self, other: &Self) {
        self.0.copy_from(&other.0);
    }
}
