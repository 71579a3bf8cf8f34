//! The size rules, in one place: which kernel a layer uses, how its gradient is built, where it
//! is stored, and what a pass keeps as a local value. Each was chosen by measurement
//! (BENCHMARKS.md) or by the stack promise (`tests/suite/stack.rs`).
//!
//! The macro decides a layer's storage when it expands a declaration, so `backprop-macros`
//! mirrors [`HEAP_WEIGHTS`]; every expansion asserts at compile time that the mirror equals this
//! constant.

/// A weight matrix of at most this many bytes fits in a few vector registers: its gradient is
/// built as a value, `delta · inputᵀ`, kept in registers until one store (the seed network's
/// layers, `benches/w1.rs`). Larger small layers update the gradient in place, one rank-one
/// `ger` per sample (`benches/w2.rs`).
pub const TINY_BYTES: usize = 512;

/// Layers of at least this many weights (and below [`GEMM_WEIGHTS`], and not tiny) use the
/// vector kernels of [`kernels`](crate::kernels), chosen at run time (AVX-512, AVX2/FMA or the
/// baseline, the same bits on each): W2's `64 => 32 => 10` layers (2048 and 320 weights) among
/// them. Smaller layers keep nalgebra's products, whose column loops win there.
pub const MID_WEIGHTS: usize = 256;

/// Layers of at least this many weights use the register-tiled kernels of
/// [`gemm`](crate::gemm); smaller ones use [`kernels`](crate::kernels) (from [`MID_WEIGHTS`]) or
/// nalgebra's products.
pub const GEMM_WEIGHTS: usize = 4096;

/// Layers with more weights than this live on the heap (`Heap<Linear>`), built there directly,
/// so that a large network, its gradient and optimizer state never pass through the stack:
/// 16 384 weights is 64 KiB in `f32`; `784 => 128` (100 352 weights) is on the heap while every
/// layer of the seed network or of `64 => 32 => 10` is inline.
pub const HEAP_WEIGHTS: usize = 16_384;

/// The largest value, in bytes, that generated passes keep as a local (a layer's values for a
/// batch in `forward_batch`): 16 KiB, so that even a debug build's copies of it stay small.
pub const INLINE_BYTES: usize = 16 << 10;
