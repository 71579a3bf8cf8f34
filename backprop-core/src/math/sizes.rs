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
/// `ger` per sample (`benches/w2.rs`), except a narrow one's batch ([`NARROW_OUTPUTS`]).
pub const TINY_BYTES: usize = 512;

/// Layers of at least this many weights (below [`GEMM_WEIGHTS`], above [`TINY_BYTES`]) with at
/// least 8 outputs run their forward pass and their propagation through the vector kernels
/// compiled for their shape ([`kernels::affine_shaped`](crate::kernels::affine_shaped),
/// [`kernels::propagate_shaped`](crate::kernels::propagate_shaped)), chosen at run time (AVX-512,
/// AVX2/FMA or the baseline, the same bits on each): both of W2's layers. Measured
/// (`benches/w2.rs`, 2026-12-02): with the shape constant, W2's `32 => 10` layer (320 weights)
/// runs faster than nalgebra's product, which sums each output in one chain; with the shape a
/// run-time value the kernel's index checks made it slower.
pub const MID_WEIGHTS: usize = 320;

/// Layers of at least this many weights (below [`GEMM_WEIGHTS`]) write their weight gradient
/// through [`kernels::outer`](crate::kernels::outer). Measured: 32 × 64 (2048, W2's first layer)
/// in about 0.6× the time of nalgebra's `ger`, 32 × 32 (1024) no faster.
pub const MID_GRADIENT_WEIGHTS: usize = 2048;

/// Small layers (above [`TINY_BYTES`], below [`MID_GRADIENT_WEIGHTS`]) with fewer outputs than
/// this make a batch's weight gradient a block of inputs at a time, sums in registers along
/// the inputs ([`Linear`](crate::Linear)'s `narrow_gradient`), rather than one `ger` per
/// sample, which LLVM vectorises across the columns with gathers when a column is shorter than
/// a vector (W3's `128 => 10` layer: a fifth of the step, measured on a Zen 5).
pub const NARROW_OUTPUTS: usize = 16;

/// Layers of at least this many weights use the register-tiled kernels of
/// [`gemm`](crate::gemm); smaller ones use [`kernels`](crate::kernels) (from [`MID_WEIGHTS`] and
/// [`MID_GRADIENT_WEIGHTS`]) or nalgebra's products.
pub const GEMM_WEIGHTS: usize = 4096;

/// Layers with more weights than this live on the heap (`Heap<Linear>`), built there directly,
/// so that a large network, its gradient and optimizer state never pass through the stack:
/// 16 384 weights is 64 KiB in `f32`; `784 => 128` (100 352 weights) is on the heap while every
/// layer of the seed network or of `64 => 32 => 10` is inline.
pub const HEAP_WEIGHTS: usize = 16_384;

/// The largest value, in bytes, that generated passes keep as a local (a layer's values for a
/// batch in `forward_batch`): 16 KiB, so that even a debug build's copies of it stay small.
pub const INLINE_BYTES: usize = 16 << 10;
