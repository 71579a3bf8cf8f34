//! Vector kernels for mid-size layers (a few hundred to a few thousand weights), allocation-free
//! and chosen at run time.
//!
//! nalgebra's static products run column loops in the target's baseline (SSE2 on x86-64). These
//! kernels are one portable body each, written so that LLVM vectorises it (with a few steps in
//! intrinsics where it did not: `propagate`'s column reductions), compiled three times:
//! for AVX-512, for AVX2 with FMA (both behind `#[target_feature]`, picked by
//! [`arithmetic::level`]) and for the baseline. All matrices are column-major slices, as nalgebra
//! stores them.
//!
//! **The bit-identity rule.** Each output entry's arithmetic (the order of its sum and which
//! steps fuse a multiply with an add) depends only on the shapes and on
//! [`Level::fused`](crate::arithmetic::Level), never on the vector width: the AVX-512, AVX2 and
//! baseline kernels give the same bits (tested), fused or not.
//!
//! - [`affine`] vectorises across output rows; each row's dot product is split into four
//!   interleaved partial sums (inputs `j ≡ 0, 1, 2, 3 mod 4`), each summed from zero in input order,
//!   combined as `(s0 + s1) + (s2 + s3)`, then the bias added.
//! - [`propagate`] sums down each weight column in 16 virtual lanes (row `i` in lane `i mod 16`,
//!   each from zero in row order), reduced by halving: lane `l` plus lane `l + 8`, then `+ 4`, `+ 2`,
//!   `+ 1`. Every width emulates those 16 lanes.
//! - [`outer`] and [`outer_chunks`] start each entry from the first sample's product (not from
//!   zero, so a dead ReLU under a negative δ gives PyTorch's `-0`) and add the others in sample
//!   order.
//! - [`affine_shaped`] and [`propagate_shaped`] are `affine` and `propagate` compiled for one
//!   shape (const generics), what `Linear` calls: constant loop bounds and no index checks, the
//!   same bits.

use crate::arithmetic::{self, Isa, Level};
use crate::scalar::Scalar;

/// What receives a gradient's entries a run at a time ([`outer_chunks`],
/// `gemm::multiply_transposed_chunks`, `Linear::weight_gradient_chunks`): any
/// `FnMut(offset, values)` closure, or a type whose `run` is `#[inline(always)]`, which is then
/// compiled into the vector kernel that makes the runs (a closure may not be inlined there).
pub trait Runs<T> {
    /// Receives `values`, the entries `offset ..` of the result, in column-major order.
    fn run(&mut self, offset: usize, values: &[T]);
}

impl<T, F: FnMut(usize, &[T])> Runs<T> for F {
    #[inline(always)]
    fn run(&mut self, offset: usize, values: &[T]) {
        self(offset, values);
    }
}

/// A value aligned to a cache line.
#[repr(C, align(64))]
struct Aligned<X>(X);

/// The longest run [`outer_chunks`] hands over at once (a buffer of this many entries on the
/// stack, 4 KiB in `f32`, like `gemm`'s column block). Each run costs the optimizer's update its
/// own set-up, LLVM's run-time checks that the slices do not overlap included: with 256, those
/// checks were an eighth of W2's fused Adam step (Zen 2, 2026-12-03; 1024 measured 3 % faster).
pub const RUN: usize = 1024;

/// The virtual lanes of [`propagate`]'s column sums.
const LANES: usize = 16;

/// The interleaved partial sums of [`affine`]'s dot products.
const PARTIALS: usize = 4;

/// `z[:, s] = w · x[:, s] + bias` for every sample `s`: `w` is `out × inp`, `x` is `inp × batch`,
/// `z` is `out × batch`, `bias` has `out` entries.
///
/// ```
/// use backprop::kernels;
///
/// // w = [[1, 2], [3, 4]] (column-major), x = (1, 1), bias = (0.5, -0.5).
/// let mut z = [0.0f32; 2];
/// kernels::affine(2, 2, 1, &[1.0, 3.0, 2.0, 4.0], &[0.5, -0.5], &[1.0, 1.0], &mut z);
/// assert_eq!(z, [3.5, 6.5]);
/// ```
pub fn affine<T: Scalar>(
    out: usize,
    inp: usize,
    batch: usize,
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
) {
    affine_at(arithmetic::level(), out, inp, batch, w, bias, x, z);
}

/// `delta_in = wᵀ · delta`: `w` is `out × inp`, `delta` is `out × batch`, `delta_in` is
/// `inp × batch`.
///
/// ```
/// use backprop::kernels;
///
/// let mut back = [0.0f64; 2];
/// kernels::propagate(2, 2, 1, &[1.0, 3.0, 2.0, 4.0], &[1.0, -1.0], &mut back);
/// assert_eq!(back, [-2.0, -2.0]);
/// ```
pub fn propagate<T: Scalar>(
    out: usize,
    inp: usize,
    batch: usize,
    w: &[T],
    delta: &[T],
    delta_in: &mut [T],
) {
    propagate_at(arithmetic::level(), out, inp, batch, w, delta, delta_in);
}

/// Writes `grad = delta · inputᵀ` (`out × inp`): `delta` is `out × batch`, `input` is
/// `inp × batch`. Each entry starts from the first sample's product and adds the others in
/// sample order; with `batch = 0` the gradient is zero.
///
/// ```
/// use backprop::kernels;
///
/// let mut grad = [1.0f32; 4];
/// kernels::outer(2, 2, 1, &[1.0, -1.0], &[0.0, 2.0], &mut grad);
/// assert_eq!(grad, [0.0, -0.0, 2.0, -2.0]);
/// assert!(grad[1].is_sign_negative());
/// ```
pub fn outer<T: Scalar>(
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    grad: &mut [T],
) {
    outer_at(arithmetic::level(), out, inp, batch, delta, input, grad);
}

/// The entries [`outer`] would write, bit for bit, handed to `f(offset, values)` a run of
/// consecutive column-major entries at a time (as many whole columns as fit in [`RUN`] entries,
/// or a long column split into runs of at most [`RUN`]), `offset` being the flat index of the run's first entry; nothing is written. Every
/// entry is handed over exactly once, columns in order.
///
/// `f` is called from the vector kernel; [`outer_runs`] takes a [`Runs`] whose `run` is
/// `#[inline(always)]`, so that what it does (an optimizer's elementwise update) is compiled into
/// the kernel and vectorised at its width.
///
/// ```
/// use backprop::kernels;
///
/// // A fused SGD step on a 2 × 2 weight: w ← w − 0.5 · δ xᵀ.
/// let mut w = [1.0f64; 4];
/// kernels::outer_chunks(2, 2, 1, &[1.0, -1.0], &[0.0, 2.0], |offset, grad| {
///     for (w, g) in w[offset..offset + grad.len()].iter_mut().zip(grad) {
///         *w -= 0.5 * g;
///     }
/// });
/// assert_eq!(w, [1.0, 1.0, 0.0, 2.0]);
/// ```
pub fn outer_chunks<T: Scalar>(
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    f: impl FnMut(usize, &[T]),
) {
    outer_runs(out, inp, batch, delta, input, f);
}

/// [`outer_chunks`] handing the runs to `runs`.
#[inline]
pub fn outer_runs<T: Scalar, F: Runs<T>>(
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    runs: F,
) {
    outer_chunks_at(arithmetic::level(), out, inp, batch, delta, input, runs);
}

/// Whether this processor runs the kernels compiled for `isa` (the baseline always runs).
#[inline]
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(dead_code))]
pub(crate) fn supported(isa: Isa) -> bool {
    match isa {
        Isa::Baseline => true,
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Isa::Avx512 => {
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma")
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Isa::Avx2 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Runs `$body::<T, FUSED, ...>($args)` compiled for `$level`'s instruction set (the baseline if
/// this processor lacks it): `$avx512` and `$avx2` are the body's `#[target_feature]` wrappers.
macro_rules! dispatch {
    ($level:expr, $body:ident, $avx512:ident, $avx2:ident, [$($generic:ty),*], ($($arg:expr),*)) => {{
        let level: Level = $level;
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            if level.isa == Isa::Avx512 && supported(Isa::Avx512) {
                if level.fused {
                    // SAFETY: `supported` detected AVX-512F and FMA on this processor.
                    unsafe { x86::$avx512::<T, true $(, $generic)*>($($arg),*) };
                } else {
                    // SAFETY: `supported` detected AVX-512F and FMA on this processor.
                    unsafe { x86::$avx512::<T, false $(, $generic)*>($($arg),*) };
                }
                return;
            }
            if level.isa != Isa::Baseline && supported(Isa::Avx2) {
                if level.fused {
                    // SAFETY: `supported` detected AVX2 and FMA on this processor.
                    unsafe { x86::$avx2::<T, true $(, $generic)*>($($arg),*) };
                } else {
                    // SAFETY: `supported` detected AVX2 and FMA on this processor.
                    unsafe { x86::$avx2::<T, false $(, $generic)*>($($arg),*) };
                }
                return;
            }
        }
        // The baseline's register file: 16 (SSE2) or 32 (NEON) 16-byte registers.
        if level.fused {
            $body::<T, true, 16 $(, $generic)*>($($arg),*);
        } else {
            $body::<T, false, 16 $(, $generic)*>($($arg),*);
        }
    }};
}

/// [`affine`] at a given level.
#[allow(clippy::too_many_arguments)]
fn affine_at<T: Scalar>(
    level: Level,
    out: usize,
    inp: usize,
    batch: usize,
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
) {
    assert!(
        w.len() >= out * inp
            && bias.len() >= out
            && x.len() >= inp * batch
            && z.len() >= out * batch,
        "kernels::affine: slices too short"
    );
    dispatch!(
        level,
        affine_body,
        affine_avx512,
        affine_avx2,
        [],
        (out, inp, batch, w, bias, x, z)
    );
}

/// [`affine`] for a shape known at compile time (`OUT × IN` weights, `BATCH` samples): the same
/// bits, compiled for that shape, so that the loops have constant bounds and no index checks.
/// What [`Linear`](crate::linear::Linear)'s forward pass calls.
///
/// ```
/// use backprop::kernels;
///
/// let mut z = [0.0f32; 2];
/// kernels::affine_shaped::<f32, 2, 2, 1>(&[1.0, 3.0, 2.0, 4.0], &[0.5, -0.5], &[1.0, 1.0], &mut z);
/// assert_eq!(z, [3.5, 6.5]);
/// ```
pub fn affine_shaped<T: Scalar, const OUT: usize, const IN: usize, const BATCH: usize>(
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
) {
    affine_shaped_at::<T, OUT, IN, BATCH>(arithmetic::level(), w, bias, x, z);
}

/// [`affine_shaped`] at a given level.
fn affine_shaped_at<T: Scalar, const OUT: usize, const IN: usize, const BATCH: usize>(
    level: Level,
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
) {
    assert!(
        w.len() >= OUT * IN && bias.len() >= OUT && x.len() >= IN * BATCH && z.len() >= OUT * BATCH,
        "kernels::affine_shaped: slices too short"
    );
    dispatch!(
        level,
        affine_shaped_body,
        affine_shaped_avx512,
        affine_shaped_avx2,
        [OUT, IN, BATCH],
        (w, bias, x, z)
    );
}

/// [`propagate`] for a shape known at compile time (`OUT × IN` weights, `BATCH` samples): the
/// same bits, compiled for that shape.
///
/// ```
/// use backprop::kernels;
///
/// let mut back = [0.0f64; 2];
/// kernels::propagate_shaped::<f64, 2, 2, 1>(&[1.0, 3.0, 2.0, 4.0], &[1.0, -1.0], &mut back);
/// assert_eq!(back, [-2.0, -2.0]);
/// ```
pub fn propagate_shaped<T: Scalar, const OUT: usize, const IN: usize, const BATCH: usize>(
    w: &[T],
    delta: &[T],
    delta_in: &mut [T],
) {
    propagate_shaped_at::<T, OUT, IN, BATCH>(arithmetic::level(), w, delta, delta_in);
}

/// [`propagate_shaped`] at a given level.
fn propagate_shaped_at<T: Scalar, const OUT: usize, const IN: usize, const BATCH: usize>(
    level: Level,
    w: &[T],
    delta: &[T],
    delta_in: &mut [T],
) {
    assert!(
        w.len() >= OUT * IN && delta.len() >= OUT * BATCH && delta_in.len() >= IN * BATCH,
        "kernels::propagate_shaped: slices too short"
    );
    dispatch!(
        level,
        propagate_shaped_body,
        propagate_shaped_avx512,
        propagate_shaped_avx2,
        [OUT, IN, BATCH],
        (w, delta, delta_in)
    );
}

/// [`propagate`] at a given level.
fn propagate_at<T: Scalar>(
    level: Level,
    out: usize,
    inp: usize,
    batch: usize,
    w: &[T],
    delta: &[T],
    delta_in: &mut [T],
) {
    assert!(
        w.len() >= out * inp && delta.len() >= out * batch && delta_in.len() >= inp * batch,
        "kernels::propagate: slices too short"
    );
    dispatch!(
        level,
        propagate_body,
        propagate_avx512,
        propagate_avx2,
        [],
        (out, inp, batch, w, delta, delta_in)
    );
}

/// [`outer`] at a given level.
fn outer_at<T: Scalar>(
    level: Level,
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    grad: &mut [T],
) {
    assert!(
        delta.len() >= out * batch && input.len() >= inp * batch && grad.len() >= out * inp,
        "kernels::outer: slices too short"
    );
    dispatch!(
        level,
        outer_body,
        outer_avx512,
        outer_avx2,
        [],
        (out, inp, batch, delta, input, grad)
    );
}

/// [`outer_chunks`] at a given level.
fn outer_chunks_at<T: Scalar, F: Runs<T>>(
    level: Level,
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    f: F,
) {
    assert!(
        delta.len() >= out * batch && input.len() >= inp * batch,
        "kernels::outer_chunks: slices too short"
    );
    dispatch!(
        level,
        outer_chunks_body,
        outer_chunks_avx512,
        outer_chunks_avx2,
        [F],
        (out, inp, batch, delta, input, f)
    );
}

/// The bodies compiled for AVX-512 and for AVX2/FMA. `BYTES` is the row block's size in bytes
/// ([`affine`]'s only width-dependent choice, which changes no entry's arithmetic).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
    use super::*;

    /// Declares `$name`, `$body` compiled with `$features` and a `$bytes`-byte row block.
    macro_rules! wrapper {
        ($name:ident, $features:literal, $bytes:literal, $body:ident,
         ($($arg:ident: $ty:ty),*)) => {
            #[doc = concat!("`", stringify!($body), "` compiled for ", $features, ".")]
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<T: Scalar, const FUSED: bool>($($arg: $ty),*) {
                $body::<T, FUSED, $bytes>($($arg),*);
            }
        };
    }

    // AVX-512: 32 registers of 64 bytes; AVX2: 16 of 32 bytes. A 128-byte (AVX-512) or 64-byte
    // (AVX2) block of rows times four partial sums keeps eight accumulators in flight.
    wrapper!(affine_avx512, "avx512f,fma", 128, affine_body,
        (out: usize, inp: usize, batch: usize, w: &[T], bias: &[T], x: &[T], z: &mut [T]));
    wrapper!(affine_avx2, "avx2,fma", 64, affine_body,
        (out: usize, inp: usize, batch: usize, w: &[T], bias: &[T], x: &[T], z: &mut [T]));
    wrapper!(propagate_avx512, "avx512f,fma", 128, propagate_body,
        (out: usize, inp: usize, batch: usize, w: &[T], delta: &[T], delta_in: &mut [T]));
    wrapper!(propagate_avx2, "avx2,fma", 64, propagate_body,
        (out: usize, inp: usize, batch: usize, w: &[T], delta: &[T], delta_in: &mut [T]));
    wrapper!(outer_avx512, "avx512f,fma", 128, outer_body,
        (out: usize, inp: usize, batch: usize, delta: &[T], input: &[T], grad: &mut [T]));
    wrapper!(outer_avx2, "avx2,fma", 64, outer_body,
        (out: usize, inp: usize, batch: usize, delta: &[T], input: &[T], grad: &mut [T]));

    /// `reduce_columns` for `f32` in AVX-512 shuffles, of lanes in registers: each halving step
    /// is two shuffles of two vectors and one add, the pairs added as `reduce` adds them (so the
    /// same bits; LLVM makes gathers of the portable form, which cost more than the sums).
    /// Returns the sixteen column sums, in order.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn reduce_vectors_f32_avx512(
        v: &[core::arch::x86_64::__m512; LANES],
    ) -> core::arch::x86_64::__m512 {
        use core::arch::x86_64::*;
        // Two columns per vector, 8 lanes each: 128-bit quarters 0, 1 plus 2, 3.
        let halves: [__m512; 8] = core::array::from_fn(|p| {
            let (a, b) = (v[2 * p], v[2 * p + 1]);
            let lo = _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b);
            let hi = _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b);
            _mm512_add_ps(lo, hi)
        });
        // Four columns per vector, 4 lanes each, one per 128-bit quarter.
        let quarters: [__m512; 4] = core::array::from_fn(|p| {
            let (a, b) = (halves[2 * p], halves[2 * p + 1]);
            let lo = _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b);
            let hi = _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b);
            _mm512_add_ps(lo, hi)
        });
        // Quarter i: column i of `a`'s four, then of `b`'s, 2 lanes each.
        let pairs: [__m512; 2] = core::array::from_fn(|p| {
            let (a, b) = (quarters[2 * p], quarters[2 * p + 1]);
            let lo = _mm512_shuffle_ps::<0b01_00_01_00>(a, b);
            let hi = _mm512_shuffle_ps::<0b11_10_11_10>(a, b);
            _mm512_add_ps(lo, hi)
        });
        // Entry 4i + m holds column 4m + i: transposed back into column order.
        let lo = _mm512_shuffle_ps::<0b10_00_10_00>(pairs[0], pairs[1]);
        let hi = _mm512_shuffle_ps::<0b11_01_11_01>(pairs[0], pairs[1]);
        let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        _mm512_permutexvar_ps(order, _mm512_add_ps(lo, hi))
    }

    /// Sixteen columns of `propagate` for `f32` in AVX-512: each column's lanes as
    /// `column_lanes` makes them (its rows in chunks of 16 from zero, in order, then the rows
    /// past the last chunk, masked, against `last`), kept in registers and reduced by
    /// [`reduce_vectors_f32_avx512`], so the same bits. Left to LLVM, a 10-row column became a
    /// 256-bit and a 64-bit load, inserts and an expand on its way to one vector.
    ///
    /// # Safety
    /// `block` holds 16 columns of `out` rows, `delta` at least `out` entries.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    pub(super) unsafe fn propagate_block_f32_avx512<const FUSED: bool>(
        block: &[f32],
        out: usize,
        delta: &[f32],
        last: &[f32; LANES],
        sums: &mut [f32; LANES],
    ) {
        use core::arch::x86_64::*;
        let (full, tail) = (out / LANES, out % LANES);
        let mask = ((1u32 << tail) - 1) as __mmask16;
        let step = |value: __m512, scale: __m512, acc: __m512| {
            if FUSED {
                _mm512_fmadd_ps(value, scale, acc)
            } else {
                _mm512_add_ps(_mm512_mul_ps(value, scale), acc)
            }
        };
        // SAFETY (every load): inside `block`'s 16 columns of `out` rows, `delta` and `last`
        // (the tail masked to its rows).
        let v: [__m512; LANES] = core::array::from_fn(|c| unsafe {
            let column = block.as_ptr().add(c * out);
            let mut acc = _mm512_setzero_ps();
            for t in 0..full {
                let value = _mm512_loadu_ps(column.add(t * LANES));
                acc = step(value, _mm512_loadu_ps(delta.as_ptr().add(t * LANES)), acc);
            }
            let value = _mm512_maskz_loadu_ps(mask, column.add(full * LANES));
            step(value, _mm512_loadu_ps(last.as_ptr()), acc)
        });
        // SAFETY: AVX-512F, as this function.
        unsafe { _mm512_storeu_ps(sums.as_mut_ptr(), reduce_vectors_f32_avx512(&v)) };
    }

    /// `reduce_columns` for `f32` in AVX2 shuffles, eight columns at a time: the first halving
    /// is one add of a column's two 256-bit halves, each later one two shuffles and one add.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn reduce_columns_f32_avx2(
        lanes: &[[f32; LANES]; LANES],
        sums: &mut [f32; LANES],
    ) {
        use core::arch::x86_64::*;
        for (lanes, out) in lanes.chunks_exact(8).zip(sums.chunks_exact_mut(8)) {
            // One column per vector, 8 lanes.
            let halves: [__m256; 8] = core::array::from_fn(|c| {
                let lo = _mm256_loadu_ps(lanes[c].as_ptr());
                let hi = _mm256_loadu_ps(lanes[c][8..].as_ptr());
                _mm256_add_ps(lo, hi)
            });
            // Two columns per vector, one per 128-bit half, 4 lanes each.
            let quarters: [__m256; 4] = core::array::from_fn(|p| {
                let (a, b) = (halves[2 * p], halves[2 * p + 1]);
                let lo = _mm256_permute2f128_ps::<0x20>(a, b);
                let hi = _mm256_permute2f128_ps::<0x31>(a, b);
                _mm256_add_ps(lo, hi)
            });
            // Columns 4p, 4p + 2 in the low half, 4p + 1, 4p + 3 in the high one, 2 lanes each.
            let pairs: [__m256; 2] = core::array::from_fn(|p| {
                let (a, b) = (quarters[2 * p], quarters[2 * p + 1]);
                let lo = _mm256_shuffle_ps::<0b01_00_01_00>(a, b);
                let hi = _mm256_shuffle_ps::<0b11_10_11_10>(a, b);
                _mm256_add_ps(lo, hi)
            });
            // Columns 0, 2, 4, 6, 1, 3, 5, 7: put back in order.
            let lo = _mm256_shuffle_ps::<0b10_00_10_00>(pairs[0], pairs[1]);
            let hi = _mm256_shuffle_ps::<0b11_01_11_01>(pairs[0], pairs[1]);
            let sums = _mm256_add_ps(lo, hi);
            let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_permutevar8x32_ps(sums, order));
        }
    }

    /// Declares `$name`, `$body` compiled with `$features` and a `$bytes`-byte row block for
    /// one shape (`OUT × IN` weights, `BATCH` samples).
    macro_rules! shaped_wrapper {
        ($name:ident, $features:literal, $bytes:literal, $body:ident,
         ($($arg:ident: $ty:ty),*)) => {
            #[doc = concat!("`", stringify!($body), "` compiled for ", $features, ".")]
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<
                T: Scalar,
                const FUSED: bool,
                const OUT: usize,
                const IN: usize,
                const BATCH: usize,
            >($($arg: $ty),*) {
                $body::<T, FUSED, $bytes, OUT, IN, BATCH>($($arg),*);
            }
        };
    }

    shaped_wrapper!(affine_shaped_avx512, "avx512f,fma", 128, affine_shaped_body,
        (w: &[T], bias: &[T], x: &[T], z: &mut [T]));
    shaped_wrapper!(affine_shaped_avx2, "avx2,fma", 64, affine_shaped_body,
        (w: &[T], bias: &[T], x: &[T], z: &mut [T]));
    shaped_wrapper!(propagate_shaped_avx512, "avx512f,fma", 128, propagate_shaped_body,
        (w: &[T], delta: &[T], delta_in: &mut [T]));
    shaped_wrapper!(propagate_shaped_avx2, "avx2,fma", 64, propagate_shaped_body,
        (w: &[T], delta: &[T], delta_in: &mut [T]));

    /// `outer_chunks_body` compiled for AVX-512F and FMA, `f` inlined into it.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn outer_chunks_avx512<T: Scalar, const FUSED: bool, F: Runs<T>>(
        out: usize,
        inp: usize,
        batch: usize,
        delta: &[T],
        input: &[T],
        f: F,
    ) {
        outer_chunks_body::<T, FUSED, 128, F>(out, inp, batch, delta, input, f);
    }

    /// `outer_chunks_body` compiled for AVX2 and FMA, `f` inlined into it.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn outer_chunks_avx2<T: Scalar, const FUSED: bool, F: Runs<T>>(
        out: usize,
        inp: usize,
        batch: usize,
        delta: &[T],
        input: &[T],
        f: F,
    ) {
        outer_chunks_body::<T, FUSED, 64, F>(out, inp, batch, delta, input, f);
    }
}

/// `value · scale + acc`, rounded once when `FUSED`.
#[inline(always)]
fn multiply_add<T: Scalar, const FUSED: bool>(value: T, scale: T, acc: T) -> T {
    if FUSED {
        value.mul_add(scale, acc)
    } else {
        value * scale + acc
    }
}

/// [`affine`]'s body: blocks of `BYTES` bytes of rows (the last block shifted back to end at
/// `out`, recomputing a few rows to the same bits), blocks of 8 rows for a shorter layer, single
/// rows below 8.
#[inline(always)]
fn affine_body<T: Scalar, const FUSED: bool, const BYTES: usize>(
    out: usize,
    inp: usize,
    batch: usize,
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
) {
    // Two blocks of 8 rows (8 accumulators of 8 entries) fit in a quarter of the registers.
    let pair = 2 * PARTIALS * 8 * core::mem::size_of::<T>() <= BYTES * 4;
    let halves = BYTES == 64;
    if core::mem::size_of::<T>() <= 4 {
        affine_rows::<T, FUSED, 8>(out, inp, batch, w, bias, x, z, BYTES / 4, pair, halves);
    } else {
        affine_rows::<T, FUSED, 8>(out, inp, batch, w, bias, x, z, BYTES / 8, pair, halves);
    }
}

/// [`affine_body`] for one shape, its slices cut to their constant lengths first.
#[inline(always)]
fn affine_shaped_body<
    T: Scalar,
    const FUSED: bool,
    const BYTES: usize,
    const OUT: usize,
    const IN: usize,
    const BATCH: usize,
>(
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
) {
    let (w, bias, x) = (&w[..OUT * IN], &bias[..OUT], &x[..IN * BATCH]);
    affine_body::<T, FUSED, BYTES>(OUT, IN, BATCH, w, bias, x, &mut z[..OUT * BATCH]);
}

/// [`affine_body`] with `block` rows at a time (32, 16, or 8 = `SMALL`); `pair` says two blocks
/// of 8 rows fit in registers at once; `halves` says the register file is AVX2's 16 vectors,
/// where 16-row blocks become 32-row blocks summed in two passes ([`affine_block_halves`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn affine_rows<T: Scalar, const FUSED: bool, const SMALL: usize>(
    out: usize,
    inp: usize,
    batch: usize,
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
    block: usize,
    pair: bool,
    halves: bool,
) {
    for s in 0..batch {
        let x = &x[s * inp..(s + 1) * inp];
        let z = &mut z[s * out..(s + 1) * out];
        match block {
            32 => blocks::<T, FUSED, 32>(out, inp, w, bias, x, z, pair),
            16 if halves && out >= 32 => {
                let covered = out - out % 32;
                for i0 in (0..covered).step_by(32) {
                    affine_block_halves::<T, FUSED, 32>(i0, out, inp, w, bias, x, z);
                }
                let mut i = covered;
                while i + 16 <= out {
                    affine_block::<T, FUSED, 16, 1>([i], out, inp, w, bias, x, z);
                    i += 16;
                }
                if i < out {
                    affine_block::<T, FUSED, 16, 1>([out - 16], out, inp, w, bias, x, z);
                }
            }
            16 => blocks::<T, FUSED, 16>(out, inp, w, bias, x, z, pair),
            _ => blocks::<T, FUSED, SMALL>(out, inp, w, bias, x, z, pair),
        }
    }
}

/// One sample's rows of [`affine`], `R` rows at a time where the layer has that many; from 8 to
/// 15 rows, the first and the last 8 together when `pair`.
#[inline(always)]
fn blocks<T: Scalar, const FUSED: bool, const R: usize>(
    out: usize,
    inp: usize,
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
    pair: bool,
) {
    if out >= R {
        let mut i = 0;
        while i + R <= out {
            affine_block::<T, FUSED, R, 1>([i], out, inp, w, bias, x, z);
            i += R;
        }
        if i < out {
            affine_block::<T, FUSED, R, 1>([out - R], out, inp, w, bias, x, z);
        }
    } else if out >= 8 {
        if pair && out < 16 {
            affine_block::<T, FUSED, 8, 2>([0, out - 8], out, inp, w, bias, x, z);
        } else {
            blocks::<T, FUSED, 8>(out, inp, w, bias, x, z, pair);
        }
    } else {
        for i in 0..out {
            affine_block::<T, FUSED, 1, 1>([i], out, inp, w, bias, x, z);
        }
    }
}

/// Rows `start..start + R` of one sample of [`affine`] for each of the `N` starts, in
/// registers: four interleaved partial sums over the inputs, each from zero, then
/// `(s0 + s1) + (s2 + s3) + bias`.
#[inline(always)]
fn affine_block<T: Scalar, const FUSED: bool, const R: usize, const N: usize>(
    starts: [usize; N],
    out: usize,
    inp: usize,
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
) {
    for &i0 in &starts {
        assert!(i0 + R <= out);
    }
    let (mut w, x) = (&w[..inp * out], &x[..inp]);
    let mut acc = [[[T::zero(); R]; PARTIALS]; N];
    let full = inp - inp % PARTIALS;
    for j0 in (0..full).step_by(PARTIALS) {
        let (c0, rest) = w.split_at(out);
        let (c1, rest) = rest.split_at(out);
        let (c2, rest) = rest.split_at(out);
        let (c3, rest) = rest.split_at(out);
        w = rest;
        let scales: &[T; PARTIALS] = rows(x, j0);
        for (acc, &i0) in acc.iter_mut().zip(&starts) {
            let [acc0, acc1, acc2, acc3] = acc;
            accumulate::<T, FUSED, R>(acc0, rows(c0, i0), scales[0]);
            accumulate::<T, FUSED, R>(acc1, rows(c1, i0), scales[1]);
            accumulate::<T, FUSED, R>(acc2, rows(c2, i0), scales[2]);
            accumulate::<T, FUSED, R>(acc3, rows(c3, i0), scales[3]);
        }
    }
    for (p, &scale) in x[full..].iter().enumerate() {
        let (column, rest) = w.split_at(out);
        w = rest;
        for (acc, &i0) in acc.iter_mut().zip(&starts) {
            accumulate::<T, FUSED, R>(&mut acc[p], rows(column, i0), scale);
        }
    }
    for (acc, &i0) in acc.iter().zip(&starts) {
        combine::<T, R>(acc, i0, bias, z);
    }
}

/// Rows `i0..i0 + R` of `z` from a block's four partial sums: `(s0 + s1) + (s2 + s3) + bias`,
/// the one order every [`affine`] kernel ends with.
#[inline(always)]
fn combine<T: Scalar, const R: usize>(
    sums: &[[T; R]; PARTIALS],
    i0: usize,
    bias: &[T],
    z: &mut [T],
) {
    let [s0, s1, s2, s3] = sums;
    let bias: &[T; R] = rows(bias, i0);
    let z: &mut [T; R] = (&mut z[i0..i0 + R]).try_into().expect("a block of rows");
    for r in 0..R {
        z[r] = ((s0[r] + s1[r]) + (s2[r] + s3[r])) + bias[r];
    }
}

/// Rows `i0..i0 + R` of one sample of [`affine`], the same sums as [`affine_block`] (four
/// interleaved partial sums over the inputs, each from zero, then `(s0 + s1) + (s2 + s3) + bias`)
/// in two passes over the inputs: `s0` and `s1` first, then `s2` and `s3`. With AVX2's 16
/// registers, 32 rows × 4 partial sums do not fit but 32 × 2 do, and each input broadcast then
/// feeds 32 rows rather than 16: fewer loads for the same multiply-adds.
#[inline(always)]
fn affine_block_halves<T: Scalar, const FUSED: bool, const R: usize>(
    i0: usize,
    out: usize,
    inp: usize,
    w: &[T],
    bias: &[T],
    x: &[T],
    z: &mut [T],
) {
    assert!(i0 + R <= out);
    let (w, x) = (&w[..inp * out], &x[..inp]);
    let full = inp - inp % PARTIALS;
    let mut sums = [[T::zero(); R]; PARTIALS];
    for (half, sums) in sums.chunks_exact_mut(2).enumerate() {
        let mut acc = [[T::zero(); R]; 2];
        for j0 in (0..full).step_by(PARTIALS) {
            for (k, acc) in acc.iter_mut().enumerate() {
                let j = j0 + 2 * half + k;
                accumulate::<T, FUSED, R>(acc, rows(w, j * out + i0), x[j]);
            }
        }
        for (k, acc) in acc.iter_mut().enumerate() {
            let j = full + 2 * half + k;
            if j < inp {
                accumulate::<T, FUSED, R>(acc, rows(w, j * out + i0), x[j]);
            }
        }
        sums.copy_from_slice(&acc);
    }
    combine::<T, R>(&sums, i0, bias, z);
}

/// `acc += values · scale`, entry by entry.
#[inline(always)]
fn accumulate<T: Scalar, const FUSED: bool, const R: usize>(
    acc: &mut [T; R],
    values: &[T; R],
    scale: T,
) {
    for r in 0..R {
        acc[r] = multiply_add::<T, FUSED>(values[r], scale, acc[r]);
    }
}

/// The `R` entries of `w` from `start`, as an array.
#[inline(always)]
fn rows<T: Scalar, const R: usize>(w: &[T], start: usize) -> &[T; R] {
    w[start..start + R].try_into().expect("a block of rows")
}

/// [`propagate`]'s body: one column sum in 16 virtual lanes per input and sample.
#[inline(always)]
fn propagate_body<T: Scalar, const FUSED: bool, const BYTES: usize>(
    out: usize,
    inp: usize,
    batch: usize,
    w: &[T],
    delta: &[T],
    delta_in: &mut [T],
) {
    if out == 0 || inp == 0 {
        delta_in[..inp * batch].fill(T::zero());
        return;
    }
    let w = &w[..inp * out];
    for (delta, delta_in) in delta[..out * batch]
        .chunks_exact(out)
        .zip(delta_in[..inp * batch].chunks_exact_mut(inp))
    {
        let tail = out % LANES;
        let rest = &delta[out - tail..];
        let mut last = [T::zero(); LANES];
        last[..tail].copy_from_slice(rest);
        // With vector shuffles for the scalar, sixteen columns' lanes at a time, reduced
        // together (the same tree per column, its steps shared across columns; for `f32` with
        // AVX-512 the whole block in intrinsics, its lanes never leaving registers); else, and
        // for the columns left over, one column at a time (which LLVM vectorises across
        // columns, with gathers).
        let mut columns = w.chunks_exact(if shuffled::<T, BYTES>() {
            out * LANES
        } else {
            usize::MAX
        });
        let mut entries = delta_in.chunks_exact_mut(LANES);
        for (block, entries) in (&mut columns).zip(&mut entries) {
            let entries: &mut [T; LANES] = entries.try_into().expect("16 entries");
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            if BYTES == 128 && core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>() {
                // SAFETY: `T` is `f32` (its `TypeId`), so each cast is to the value's own type;
                // a 128-byte block is compiled only into the AVX-512 kernels, which run only
                // where `supported` detected AVX-512F; `block` holds 16 columns of `out` rows.
                unsafe {
                    let cast = |v: &[T]| core::slice::from_raw_parts(v.as_ptr().cast(), v.len());
                    x86::propagate_block_f32_avx512::<FUSED>(
                        cast(block),
                        out,
                        cast(delta),
                        &*(&last as *const [T; LANES]).cast(),
                        &mut *(entries as *mut [T; LANES]).cast(),
                    );
                }
                continue;
            }
            let mut lanes = [[T::zero(); LANES]; LANES];
            for (lanes, column) in lanes.iter_mut().zip(block.chunks_exact(out)) {
                *lanes = column_lanes::<T, FUSED>(column, delta, &last);
            }
            reduce_columns::<T, BYTES>(&lanes, entries);
        }
        let rest = columns.remainder();
        let entries = &mut delta_in[inp - rest.len() / out..];
        for (column, entry) in rest.chunks_exact(out).zip(entries) {
            *entry = reduce(&column_lanes::<T, FUSED>(column, delta, &last));
        }
    }
}

/// One weight column's 16 virtual lanes of `Σ_i column[i] · delta[i]` (row `i` in lane
/// `i mod 16`, each lane from zero in row order), `last` holding the rows past the last full 16
/// padded with zeros.
#[inline(always)]
fn column_lanes<T: Scalar, const FUSED: bool>(
    column: &[T],
    delta: &[T],
    last: &[T; LANES],
) -> [T; LANES] {
    let mut acc = [T::zero(); LANES];
    let mut columns = column.chunks_exact(LANES);
    let mut deltas = delta.chunks_exact(LANES);
    for (values, scales) in (&mut columns).zip(&mut deltas) {
        let values: &[T; LANES] = values.try_into().expect("16 lanes");
        let scales: &[T; LANES] = scales.try_into().expect("16 lanes");
        for l in 0..LANES {
            acc[l] = multiply_add::<T, FUSED>(values[l], scales[l], acc[l]);
        }
    }
    // The last rows in lanes 0.., the others padded with 0 · 0 (acc, summed from +0, is never
    // −0, so adding +0 leaves it exact), in registers.
    let mut values = [T::zero(); LANES];
    let tail = columns.remainder();
    values[..tail.len()].copy_from_slice(tail);
    for l in 0..LANES {
        acc[l] = multiply_add::<T, FUSED>(values[l], last[l], acc[l]);
    }
    acc
}

/// Whether [`reduce_columns`] has vector shuffles for `T` in a `BYTES`-byte block's kernels
/// (`f32` in the AVX-512 and AVX2 kernels).
#[inline(always)]
fn shuffled<T: Scalar, const BYTES: usize>() -> bool {
    cfg!(all(feature = "std", target_arch = "x86_64"))
        && (BYTES == 128 || BYTES == 64)
        && core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>()
}

/// [`reduce`] of sixteen columns' lanes at once, `sums[c]` from `lanes[c]`, where
/// [`shuffled`] (each halving step adds the pairs `reduce` adds, gathered from several columns'
/// partial sums into one vector by shuffles: the same bits).
#[inline(always)]
fn reduce_columns<T: Scalar, const BYTES: usize>(
    lanes: &[[T; LANES]; LANES],
    sums: &mut [T; LANES],
) {
    use core::any::Any;
    // (With AVX-512, `f32` blocks never come here: `x86::propagate_block_f32_avx512` reduces
    // them in registers.)
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let (64, Some(lanes), Some(sums)) = (
        BYTES,
        (lanes as &dyn Any).downcast_ref::<[[f32; LANES]; LANES]>(),
        (sums as &mut dyn Any).downcast_mut::<[f32; LANES]>(),
    ) {
        // SAFETY: a 64-byte block is compiled only into the AVX2 kernels, which run only where
        // `supported` detected AVX2.
        unsafe { x86::reduce_columns_f32_avx2(lanes, sums) };
        return;
    }
    for (lanes, sum) in lanes.iter().zip(sums) {
        *sum = reduce(lanes);
    }
}

/// [`propagate_body`] for one shape, its slices cut to their constant lengths first.
#[inline(always)]
fn propagate_shaped_body<
    T: Scalar,
    const FUSED: bool,
    const BYTES: usize,
    const OUT: usize,
    const IN: usize,
    const BATCH: usize,
>(
    w: &[T],
    delta: &[T],
    delta_in: &mut [T],
) {
    let (w, delta) = (&w[..OUT * IN], &delta[..OUT * BATCH]);
    propagate_body::<T, FUSED, BYTES>(OUT, IN, BATCH, w, delta, &mut delta_in[..IN * BATCH]);
}

/// The 16 lanes summed by halving: lane `l` plus lane `l + 8`, then `+ 4`, `+ 2`, `+ 1`.
#[inline(always)]
fn reduce<T: Scalar>(acc: &[T; LANES]) -> T {
    let a: [T; 8] = core::array::from_fn(|l| acc[l] + acc[l + 8]);
    let b: [T; 4] = core::array::from_fn(|l| a[l] + a[l + 4]);
    let c: [T; 2] = core::array::from_fn(|l| b[l] + b[l + 2]);
    c[0] + c[1]
}

/// Rows `lo..lo + dst.len()` of [`outer`]'s column `j` into `dst`: `R` rows at a time where
/// there are that many (the last block shifted back to end at the range's end, recomputing a
/// few entries to the same bits), 8 at a time for a shorter range, one at a time below 8.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn outer_rows<T: Scalar, const FUSED: bool, const R: usize>(
    lo: usize,
    j: usize,
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    dst: &mut [T],
) {
    let n = dst.len();
    if n >= R {
        let mut i = 0;
        while i + R <= n {
            outer_block::<T, FUSED, R>(lo, i, j, out, inp, batch, delta, input, dst);
            i += R;
        }
        if i < n {
            outer_block::<T, FUSED, R>(lo, n - R, j, out, inp, batch, delta, input, dst);
        }
    } else if n >= 8 {
        outer_rows::<T, FUSED, 8>(lo, j, out, inp, batch, delta, input, dst);
    } else {
        for i in 0..n {
            outer_block::<T, FUSED, 1>(lo, i, j, out, inp, batch, delta, input, dst);
        }
    }
}

/// `dst[i..i + R]`, rows `lo + i..` of [`outer`]'s column `j`: the first sample's product, then
/// the others added in sample order.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn outer_block<T: Scalar, const FUSED: bool, const R: usize>(
    lo: usize,
    i: usize,
    j: usize,
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    dst: &mut [T],
) {
    let first: &[T; R] = rows(delta, lo + i);
    let scale = input[j];
    let mut values: [T; R] = core::array::from_fn(|r| first[r] * scale);
    for s in 1..batch {
        let deltas: &[T; R] = rows(delta, s * out + lo + i);
        let scale = input[j + s * inp];
        for r in 0..R {
            values[r] = multiply_add::<T, FUSED>(deltas[r], scale, values[r]);
        }
    }
    let dst: &mut [T; R] = (&mut dst[i..i + R]).try_into().expect("a block of rows");
    *dst = values;
}

/// [`outer`]'s rows `lo..lo + dst.len()` of column `j`, with the row block for `BYTES`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn outer_column<T: Scalar, const FUSED: bool, const BYTES: usize>(
    lo: usize,
    j: usize,
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    dst: &mut [T],
) {
    if batch == 0 {
        dst.fill(T::zero());
    } else if core::mem::size_of::<T>() <= 4 && BYTES >= 128 {
        outer_rows::<T, FUSED, 32>(lo, j, out, inp, batch, delta, input, dst);
    } else if core::mem::size_of::<T>() <= 4 || BYTES >= 128 {
        outer_rows::<T, FUSED, 16>(lo, j, out, inp, batch, delta, input, dst);
    } else {
        outer_rows::<T, FUSED, 8>(lo, j, out, inp, batch, delta, input, dst);
    }
}

/// [`outer`]'s body: a block of `R` rows at a time (the row block for `BYTES`), through every
/// column, so that the block's δ stays in registers.
#[inline(always)]
fn outer_body<T: Scalar, const FUSED: bool, const BYTES: usize>(
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    grad: &mut [T],
) {
    if out == 0 {
        return;
    }
    let grad = &mut grad[..out * inp];
    if batch == 0 {
        grad.fill(T::zero());
    } else if core::mem::size_of::<T>() <= 4 && BYTES >= 128 {
        outer_blocks::<T, FUSED, 32>(out, inp, batch, delta, input, grad);
    } else if core::mem::size_of::<T>() <= 4 || BYTES >= 128 {
        outer_blocks::<T, FUSED, 16>(out, inp, batch, delta, input, grad);
    } else {
        outer_blocks::<T, FUSED, 8>(out, inp, batch, delta, input, grad);
    }
}

/// [`outer`]'s rows `R` at a time where the layer has that many (the last block shifted back to
/// end at `out`, recomputing a few entries to the same bits), 8 at a time for a shorter layer,
/// one at a time below 8.
#[inline(always)]
fn outer_blocks<T: Scalar, const FUSED: bool, const R: usize>(
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    grad: &mut [T],
) {
    if out >= R {
        let mut i = 0;
        while i + R <= out {
            outer_across::<T, FUSED, R>(i, out, inp, batch, delta, input, grad);
            i += R;
        }
        if i < out {
            outer_across::<T, FUSED, R>(out - R, out, inp, batch, delta, input, grad);
        }
    } else if out >= 8 {
        outer_blocks::<T, FUSED, 8>(out, inp, batch, delta, input, grad);
    } else {
        for i in 0..out {
            outer_across::<T, FUSED, 1>(i, out, inp, batch, delta, input, grad);
        }
    }
}

/// Rows `i0..i0 + R` of every column of [`outer`].
#[inline(always)]
fn outer_across<T: Scalar, const FUSED: bool, const R: usize>(
    i0: usize,
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    grad: &mut [T],
) {
    assert!(i0 + R <= out);
    let first: [T; R] = *rows(delta, i0);
    // Offsets, not `chunks_exact_mut(out)`, whose division by `out` costs more than a small
    // layer's whole block.
    for j in 0..inp {
        let scale = input[j];
        let mut values: [T; R] = core::array::from_fn(|r| first[r] * scale);
        for s in 1..batch {
            let deltas: &[T; R] = rows(delta, s * out + i0);
            let scale = input[j + s * inp];
            for r in 0..R {
                values[r] = multiply_add::<T, FUSED>(deltas[r], scale, values[r]);
            }
        }
        let start = j * out + i0;
        let dst: &mut [T; R] = (&mut grad[start..start + R])
            .try_into()
            .expect("a block of rows");
        *dst = values;
    }
}

/// [`outer_chunks`]'s body: each run built in a local buffer, then handed to `f`.
#[inline(always)]
fn outer_chunks_body<T: Scalar, const FUSED: bool, const BYTES: usize, F: Runs<T>>(
    out: usize,
    inp: usize,
    batch: usize,
    delta: &[T],
    input: &[T],
    mut f: F,
) {
    // Aligned to a cache line: a wide access that straddles two lines costs twice.
    let mut buffer = Aligned([T::zero(); RUN]);
    let buffer = &mut buffer.0;
    if out == 0 {
        return;
    }
    if out <= RUN {
        // Whole columns, as many as fit in one run: fewer, longer runs for the caller.
        let columns = RUN / out;
        let mut j = 0;
        while j < inp {
            let k = columns.min(inp - j);
            for c in 0..k {
                let values = &mut buffer[c * out..(c + 1) * out];
                if batch == 1 {
                    // One sample: each entry is one product, δ_i · x_j (what `outer` writes).
                    // Written 64 bytes at a time, so that the caller's wide loads of the run
                    // are forwarded from these stores rather than stalling on narrower ones.
                    let x = input[j + c];
                    let mut blocks = values.chunks_exact_mut(16);
                    let mut deltas = delta[..out].chunks_exact(16);
                    for (block, d) in (&mut blocks).zip(&mut deltas) {
                        let block: &mut [T; 16] = block.try_into().expect("16 entries");
                        let d: &[T; 16] = d.try_into().expect("16 entries");
                        for i in 0..16 {
                            block[i] = d[i] * x;
                        }
                    }
                    for (value, &d) in blocks.into_remainder().iter_mut().zip(deltas.remainder()) {
                        *value = d * x;
                    }
                } else {
                    outer_column::<T, FUSED, BYTES>(
                        0,
                        j + c,
                        out,
                        inp,
                        batch,
                        delta,
                        input,
                        values,
                    );
                }
            }
            f.run(j * out, &buffer[..k * out]);
            j += k;
        }
        return;
    }
    for j in 0..inp {
        let mut lo = 0;
        while lo < out {
            let n = RUN.min(out - lo);
            let values = &mut buffer[..n];
            outer_column::<T, FUSED, BYTES>(lo, j, out, inp, batch, delta, input, values);
            f.run(lo + j * out, values);
            lo += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;
    use std::vec;
    use std::vec::Vec;

    /// Deterministic entries in (−1, 1), a few of them exact zeros.
    fn values<T: Scalar>(count: usize, seed: u64) -> Vec<T> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let v = ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
                crate::scalar::constant::<T>(if (state >> 7).is_multiple_of(13) {
                    0.0
                } else {
                    v
                })
            })
            .collect()
    }

    /// The levels this processor runs, with the given fusion.
    fn levels(fused: bool) -> Vec<Level> {
        [Isa::Avx512, Isa::Avx2, Isa::Baseline]
            .into_iter()
            .filter(|&isa| supported(isa))
            .map(|isa| Level { isa, fused })
            .collect()
    }

    /// The shapes tested: around the 8-, 16- and 32-row blocks, the 16 lanes, the 4 partial sums.
    const SHAPES: [(usize, usize); 17] = [
        (1, 1),
        (1, 7),
        (3, 1),
        (7, 5),
        (8, 4),
        (9, 3),
        (10, 32),
        (15, 9),
        (16, 16),
        (17, 2),
        (31, 6),
        (32, 64),
        (33, 13),
        (47, 11),
        (64, 8),
        (65, 4),
        (100, 30),
    ];

    /// The bit patterns of a slice, for exact comparison.
    fn bits<T: Scalar>(values: &[T]) -> Vec<u64> {
        values
            .iter()
            .map(|&v| crate::scalar::to_f64(v).to_bits())
            .collect()
    }

    /// Each kernel at each level this processor has: the same bits across instruction sets, for
    /// fused and for unfused arithmetic, and close to an f64 reference.
    fn identical_bits_across_isas<T: Scalar>(tolerance: f64) {
        for &(out, inp) in &SHAPES {
            for batch in 1..=5 {
                let w = values::<T>(out * inp, 1 + out as u64);
                let bias = values::<T>(out, 2 + inp as u64);
                let x = values::<T>(inp * batch, 3 + batch as u64);
                let delta = values::<T>(out * batch, 4);
                let f =
                    |v: &[T]| -> Vec<f64> { v.iter().map(|&v| crate::scalar::to_f64(v)).collect() };
                let (w64, b64, x64, d64) = (f(&w), f(&bias), f(&x), f(&delta));
                for fused in [true, false] {
                    let mut seen: Option<[Vec<u64>; 4]> = None;
                    for level in levels(fused) {
                        let what = std::format!("{out}×{inp} batch {batch} {level:?}");
                        let mut z = vec![T::zero(); out * batch];
                        affine_at(level, out, inp, batch, &w, &bias, &x, &mut z);
                        let mut back = vec![T::zero(); inp * batch];
                        propagate_at(level, out, inp, batch, &w, &delta, &mut back);
                        let mut grad = vec![T::zero(); out * inp];
                        outer_at(level, out, inp, batch, &delta, &x, &mut grad);
                        let mut chunks = vec![T::zero(); out * inp];
                        let mut handed = vec![0usize; out * inp];
                        outer_chunks_at(
                            level,
                            out,
                            inp,
                            batch,
                            &delta,
                            &x,
                            |offset: usize, run: &[T]| {
                                assert!(!run.is_empty() && run.len() <= RUN);
                                chunks[offset..offset + run.len()].copy_from_slice(run);
                                for h in &mut handed[offset..offset + run.len()] {
                                    *h += 1;
                                }
                            },
                        );
                        assert!(handed.iter().all(|&h| h == 1), "{what}: runs");
                        assert_eq!(bits(&grad), bits(&chunks), "{what}: chunks vs outer");
                        // Against an f64 reference.
                        for s in 0..batch {
                            for i in 0..out {
                                let want: f64 = b64[i]
                                    + (0..inp)
                                        .map(|j| w64[i + j * out] * x64[j + s * inp])
                                        .sum::<f64>();
                                let got = crate::scalar::to_f64(z[i + s * out]);
                                assert!(
                                    (got - want).abs() <= tolerance * (inp as f64 + 1.0),
                                    "{what}: z {got} vs {want}"
                                );
                            }
                            for j in 0..inp {
                                let want: f64 =
                                    (0..out).map(|i| w64[i + j * out] * d64[i + s * out]).sum();
                                let got = crate::scalar::to_f64(back[j + s * inp]);
                                assert!(
                                    (got - want).abs() <= tolerance * (out as f64 + 1.0),
                                    "{what}: δ {got} vs {want}"
                                );
                            }
                        }
                        for j in 0..inp {
                            for i in 0..out {
                                let want: f64 = (0..batch)
                                    .map(|s| d64[i + s * out] * x64[j + s * inp])
                                    .sum();
                                let got = crate::scalar::to_f64(grad[i + j * out]);
                                assert!(
                                    (got - want).abs() <= tolerance * (batch as f64 + 1.0),
                                    "{what}: grad {got} vs {want}"
                                );
                            }
                        }
                        let now = [bits(&z), bits(&back), bits(&grad), bits(&chunks)];
                        match &seen {
                            None => seen = Some(now),
                            Some(first) => {
                                assert!(*first == now, "{what}: bits differ across ISAs")
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn kernels_identical_bits_across_isas_f32() {
        identical_bits_across_isas::<f32>(1e-6);
    }

    #[test]
    fn kernels_identical_bits_across_isas_f64() {
        identical_bits_across_isas::<f64>(1e-14);
    }

    /// `affine_shaped` and `propagate_shaped` for `OUT × IN` and batch `B` give the bits of
    /// `affine_at` and `propagate_at` at every level this processor runs, fused or not.
    fn shaped_matches<T: Scalar, const OUT: usize, const IN: usize, const B: usize>() {
        let w = values::<T>(OUT * IN, 5 + OUT as u64);
        let bias = values::<T>(OUT, 6);
        let x = values::<T>(IN * B, 7 + B as u64);
        let delta = values::<T>(OUT * B, 8);
        let bits = |v: &[T]| -> Vec<u64> {
            v.iter()
                .map(|&v| crate::scalar::to_f64(v).to_bits())
                .collect()
        };
        for level in levels(true).into_iter().chain(levels(false)) {
            let (mut shaped, mut general) = (vec![T::zero(); OUT * B], vec![T::zero(); OUT * B]);
            affine_shaped_at::<T, OUT, IN, B>(level, &w, &bias, &x, &mut shaped);
            affine_at(level, OUT, IN, B, &w, &bias, &x, &mut general);
            assert_eq!(
                bits(&shaped),
                bits(&general),
                "affine {OUT}×{IN} batch {B} {level:?}"
            );
            let (mut shaped, mut general) = (vec![T::one(); IN * B], vec![T::zero(); IN * B]);
            propagate_shaped_at::<T, OUT, IN, B>(level, &w, &delta, &mut shaped);
            propagate_at(level, OUT, IN, B, &w, &delta, &mut general);
            assert_eq!(
                bits(&shaped),
                bits(&general),
                "propagate {OUT}×{IN} batch {B} {level:?}"
            );
        }
    }

    #[test]
    fn kernels_shaped_give_the_general_kernels_bits() {
        shaped_matches::<f32, 10, 32, 1>();
        shaped_matches::<f32, 32, 64, 1>();
        shaped_matches::<f32, 24, 128, 3>();
        shaped_matches::<f32, 33, 17, 2>();
        shaped_matches::<f32, 8, 40, 1>();
        shaped_matches::<f64, 10, 32, 1>();
        shaped_matches::<f64, 17, 31, 4>();
        shaped_matches::<f64, 1, 3, 1>();
        // Empty shapes: nothing to read, zeros written, no panic.
        shaped_matches::<f32, 3, 0, 2>();
        shaped_matches::<f32, 0, 3, 2>();
        shaped_matches::<f32, 3, 3, 0>();
    }

    /// `propagate`'s documented order, written out one scalar at a time: row `i` into virtual
    /// lane `i mod 16`, each lane from zero in row order, the lanes summed by halving.
    fn propagate_reference<T: Scalar>(fused: bool, out: usize, column: &[T], delta: &[T]) -> T {
        let mut lanes = [T::zero(); LANES];
        for i in 0..out.div_ceil(LANES) * LANES {
            let (value, scale) = match (column.get(i).filter(|_| i < out), delta.get(i)) {
                (Some(&v), Some(&d)) if i < out => (v, d),
                _ => (T::zero(), T::zero()),
            };
            let lane = &mut lanes[i % LANES];
            *lane = if fused {
                value.mul_add(scale, *lane)
            } else {
                value * scale + *lane
            };
        }
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for l in 0..width {
                lanes[l] += lanes[l + width];
            }
        }
        lanes[0]
    }

    /// `propagate` at every level gives the bits of its documented order (which no kernel's
    /// vector width, blocking of columns or shape may change), fused and not.
    fn propagate_follows_its_documented_order<T: Scalar>() {
        let shapes = SHAPES.iter().copied().chain([
            (3, 17),
            (20, 48),
            (10, 33),
            (16, 1),
            (25, 20),
            (8, 16),
            (24, 18),
        ]);
        for (out, inp) in shapes {
            for batch in [1, 2] {
                let w = values::<T>(out * inp, 21 + out as u64);
                let delta = values::<T>(out * batch, 22 + inp as u64);
                for fused in [true, false] {
                    let want: Vec<T> = (0..batch)
                        .flat_map(|s| {
                            let (w, delta) = (&w, &delta[s * out..(s + 1) * out]);
                            (0..inp).map(move |j| {
                                propagate_reference(fused, out, &w[j * out..(j + 1) * out], delta)
                            })
                        })
                        .collect();
                    for level in levels(fused) {
                        let mut back = vec![T::one(); inp * batch];
                        propagate_at(level, out, inp, batch, &w, &delta, &mut back);
                        assert_eq!(
                            bits(&back),
                            bits(&want),
                            "{out}×{inp} batch {batch} {level:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn kernels_propagate_follows_its_documented_order() {
        propagate_follows_its_documented_order::<f32>();
        propagate_follows_its_documented_order::<f64>();
    }

    #[test]
    fn kernels_outer_starts_from_the_first_product() {
        // A dead unit's zero input under a negative δ: −0, as PyTorch's gradient has it.
        for level in levels(true).into_iter().chain(levels(false)) {
            let mut grad = [1.0f32; 2];
            outer_at(level, 1, 2, 1, &[-1.0], &[0.0, 1.0], &mut grad);
            assert!(grad[0] == 0.0 && grad[0].is_sign_negative(), "{level:?}");
            let mut grad = [1.0f32; 2];
            outer_at(level, 2, 1, 0, &[], &[], &mut grad);
            assert_eq!(grad, [0.0, 0.0]);
        }
    }

    #[test]
    fn kernels_fused_and_unfused_differ_somewhere() {
        // The two arithmetics are really different code (else the bit test proves nothing).
        let (out, inp) = (32, 64);
        let w = values::<f32>(out * inp, 9);
        let x = values::<f32>(inp, 10);
        let bias = values::<f32>(out, 11);
        let mut fused = vec![0.0f32; out];
        let mut unfused = vec![0.0f32; out];
        affine_at(
            Level {
                isa: Isa::Baseline,
                fused: true,
            },
            out,
            inp,
            1,
            &w,
            &bias,
            &x,
            &mut fused,
        );
        affine_at(
            Level {
                isa: Isa::Baseline,
                fused: false,
            },
            out,
            inp,
            1,
            &w,
            &bias,
            &x,
            &mut unfused,
        );
        assert_ne!(bits(&fused), bits(&unfused));
    }
}
