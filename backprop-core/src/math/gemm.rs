//! Register-tiled matrix products for large layers, allocation-free.
//!
//! nalgebra multiplies statically sized matrices with column loops, which is right for small
//! layers and slow for large ones. These kernels compute a tile of the result in registers while
//! streaming the shared dimension, each entry of the right-hand operand broadcast straight from
//! memory: on x86-64 a tile of two 512-bit vectors' rows × 8 columns (32 × 8 in `f32`, 16 × 8 in
//! `f64`) compiled for AVX-512 where the processor has it, else two 256-bit vectors' rows × 6
//! columns compiled for AVX2 and FMA (checked at run time), else the portable 16 × 4 tile. The
//! AVX-512 and AVX2 tiles of `f32` and `f64` are written in intrinsics (`x86`), so that their
//! accumulators stay in registers whatever the product is handed to; the portable tile is a
//! plain loop. The columns left over at the right edge are computed in narrower tiles (4, 2,
//! then 1 column), the rows left over at the bottom one partial column at a time, still
//! vectorised along the rows.
//! Inside a tile the operands are read through raw pointers after one bounds check per tile.
//! Nothing is allocated and nothing is packed: the stack holds one tile, and the transposed
//! product one block of whole columns (1024 entries).
//! All matrices are column-major slices, as nalgebra stores them.
//!
//! **Summation order.** Every entry of a product is one sequential chain over the shared
//! dimension, starting from zero: `acc = a[i, 0]·b[0, j] + 0`, then `acc = a[i, p]·b[p, j] + acc`
//! for `p = 1, 2, …` in order. Only whether each multiply-add rounds once (fused) or twice
//! changes the bits ([`arithmetic::level`](crate::arithmetic::level) decides, and
//! [`Arithmetic::Pinned`](crate::arithmetic::Arithmetic::Pinned) rounds twice on every
//! instruction set); the vector width and the tile shape never do (tested).

use crate::arithmetic;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
use crate::arithmetic::Isa;
use crate::kernels::Runs;
use crate::scalar::Scalar;

/// `c = a · b`: `a` is `m × k`, `b` is `k × n`, `c` is `m × n`, all column-major.
pub fn multiply<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
    check(m, n, k, a, b);
    assert!(c.len() >= m * n, "gemm: slices too short");
    dispatch(Plain { m, n, k, a, b, c });
}

/// `c = a · bᵀ`: `a` is `m × k`, `b` is `n × k`, `c` is `m × n`, all column-major.
pub fn multiply_transposed<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
    assert!(c.len() >= m * n, "gemm: slices too short");
    multiply_transposed_chunks(m, n, k, a, b, |offset, values: &[T]| {
        c[offset..offset + values.len()].copy_from_slice(values)
    });
}

/// The entries of `a · bᵀ` (`a` is `m × k`, `b` is `n × k`), bit for bit as
/// [`multiply_transposed`] writes them, handed to `f(offset, values)` a run of consecutive
/// column-major entries at a time (`offset` is the first one's index; a run is a column block's
/// whole columns when they fit in 1024 entries, else one column of a finished register tile) instead of written: the fused training step
/// applies the optimizer to a layer's gradient as it is made. Every entry is passed exactly
/// once, in no particular order of runs. `f` is compiled into each instruction set's kernel.
pub fn multiply_transposed_chunks<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    f: impl FnMut(usize, &[T]),
) {
    multiply_transposed_runs(m, n, k, a, b, f);
}

/// [`multiply_transposed_chunks`] handing the runs to `f`, a [`Runs`] (whose
/// `#[inline(always)]` `run` is compiled into the kernels).
#[inline]
pub fn multiply_transposed_runs<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    f: impl Runs<T>,
) {
    check(m, n, k, a, b);
    dispatch(Transposed { m, n, k, a, b, f });
}

/// Panics unless `a` holds `m × k` entries and `b` holds `k × n`.
fn check<T>(m: usize, n: usize, k: usize, a: &[T], b: &[T]) {
    assert!(
        a.len() >= m * k && b.len() >= k * n,
        "gemm: slices too short"
    );
}

/// The longest run [`multiply_transposed_runs`] gathers (whole columns of a column block).
const BLOCK: usize = 1024;

/// A value aligned to a cache line.
#[repr(C, align(64))]
struct Aligned<X>(X);

/// A product for the kernels to compute, with the tile chosen by the instruction set.
trait Job<T: Scalar> {
    /// Computes the product with `MR × NR` register tiles, fused or not, compiled for vector
    /// unit `UNIT`. A safety invariant, not only a choice: `UNIT` is [`AVX2`] or [`AVX512`]
    /// only in the bodies of [`avx2`] and [`avx512`] (which run only where `arithmetic::level`
    /// detected that unit), because [`tile`] then runs that unit's intrinsics.
    fn run<const FUSED: bool, const UNIT: u8, const MR: usize, const NR: usize>(self);
}

/// The vector unit a kernel is compiled for ([`Job::run`]'s `UNIT`): the portable loops, which
/// LLVM vectorises for the baseline.
const PORTABLE: u8 = 0;
/// AVX2 and FMA: [`tile`] in 256-bit intrinsics for `f32` and `f64`.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AVX2: u8 = 1;
/// AVX-512: [`tile`] in 512-bit intrinsics for `f32` and `f64`.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AVX512: u8 = 2;

/// `c = a · b` (see [`multiply`]).
struct Plain<'a, T> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [T],
    b: &'a [T],
    c: &'a mut [T],
}

/// `a · bᵀ` handed to `f` (see [`multiply_transposed_chunks`]).
struct Transposed<'a, T, F> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [T],
    b: &'a [T],
    f: F,
}

/// Runs `job` with the kernel of [`arithmetic::level`]: its instruction set, fused or not.
#[inline(always)]
fn dispatch<T: Scalar, J: Job<T>>(job: J) {
    let level = arithmetic::level();
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    match (level.isa, level.fused) {
        // SAFETY (all four): `level` reports an instruction set only where the processor has
        // it (detected at run time), and each function is compiled for exactly that set.
        (Isa::Avx512, true) => return unsafe { avx512::<T, true, J>(job) },
        (Isa::Avx512, false) => return unsafe { avx512::<T, false, J>(job) },
        (Isa::Avx2, true) => return unsafe { avx2::<T, true, J>(job) },
        (Isa::Avx2, false) => return unsafe { avx2::<T, false, J>(job) },
        (Isa::Baseline, _) => {}
    }
    // Without a detected instruction set, `level` fuses only where multiply-add is an
    // instruction (aarch64); elsewhere it would be a slow library call.
    if level.fused {
        portable::<T, true, J>(job);
    } else {
        portable::<T, false, J>(job);
    }
}

/// `job` with the portable 16 × 4 tile, compiled for the target's baseline.
#[inline(always)]
fn portable<T: Scalar, const FUSED: bool, J: Job<T>>(job: J) {
    job.run::<FUSED, PORTABLE, 16, 4>();
}

/// `job` compiled for AVX2 and FMA: two 256-bit vectors of rows × 6 columns, 12 of the 16
/// registers accumulating (with FMA's latency of 4–5 cycles and two FMA units, 8 accumulators
/// left the units idle a fifth of the time: W3's step 1.12 times as long with 16 × 4, measured).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<T: Scalar, const FUSED: bool, J: Job<T>>(job: J) {
    if core::mem::size_of::<T>() == 4 {
        job.run::<FUSED, AVX2, 16, 6>();
    } else {
        job.run::<FUSED, AVX2, 8, 6>();
    }
}

/// `job` compiled for AVX-512 (which includes FMA): two 512-bit vectors of rows × 8 columns,
/// 16 of the 32 registers accumulating while each loaded column feeds 8 multiply-adds.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,fma")]
unsafe fn avx512<T: Scalar, const FUSED: bool, J: Job<T>>(job: J) {
    if core::mem::size_of::<T>() == 4 {
        job.run::<FUSED, AVX512, 32, 8>();
    } else {
        job.run::<FUSED, AVX512, 16, 8>();
    }
}

/// `value · scale + acc`, fused into one rounding when `FUSED`.
#[inline(always)]
fn multiply_add<T: Scalar, const FUSED: bool>(value: T, scale: T, acc: T) -> T {
    if FUSED {
        value.mul_add(scale, acc)
    } else {
        value * scale + acc
    }
}

/// One full `MR × NR` tile: `acc[j][i] = Σ_p a[i0 + i + p·m] · b[first + j·col + p·step]`, in
/// order of `p`, kept in registers. A column of `b` is `col = k, step = 1` ([`Plain`]), a row of
/// `bᵀ` is `col = 1, step = n` ([`Transposed`]).
///
/// With `UNIT` [`AVX2`] or [`AVX512`] and `f32` or `f64`, the loop runs as that unit's
/// intrinsics (`x86::tile`), the same operations in the same order.
///
/// The reads go through raw pointers after one bounds check for the whole tile: with a checked
/// index per read, the loop spent more instructions on checks than on multiply-adds (W3's
/// products ran at half the FMA peak, front-end bound).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<T: Scalar, const FUSED: bool, const UNIT: u8, const MR: usize, const NR: usize>(
    a: &[T],
    i0: usize,
    m: usize,
    k: usize,
    b: &[T],
    first: usize,
    col: usize,
    step: usize,
) -> [[T; MR]; NR] {
    let mut acc = [[T::zero(); MR]; NR];
    if k == 0 {
        return acc;
    }
    let last = |first: usize, stride: usize, count: usize| {
        (k - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(first))
            .and_then(|x| x.checked_add(count))
    };
    let a_end = last(i0, m, MR);
    let b_end = (NR - 1)
        .checked_mul(col)
        .and_then(|x| last(x, step, first + 1));
    assert!(
        a_end.is_some_and(|end| end <= a.len()) && b_end.is_some_and(|end| end <= b.len()),
        "gemm: a tile outside its operands"
    );
    let (a, b) = (a.as_ptr(), b.as_ptr());
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if UNIT != PORTABLE {
        // SAFETY: the reads are inside the slices (asserted above); `UNIT` is AVX2 or AVX-512
        // only in the kernels compiled for that unit, which run only where it was detected.
        if unsafe {
            x86::tile::<T, FUSED, UNIT, MR, NR>(&mut acc, a.add(i0), m, k, b.add(first), col, step)
        } {
            return acc;
        }
    }
    for p in 0..k {
        // SAFETY: for p < k, rows `i0 + p·m .. i0 + p·m + MR` of `a` and entries
        // `first + j·col + p·step` (j < NR) of `b` are inside the slices (asserted above).
        let column = unsafe { &*a.add(i0 + p * m).cast::<[T; MR]>() };
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let scale = unsafe { *b.add(first + j * col + p * step) };
            for (acc, &value) in acc.iter_mut().zip(column) {
                *acc = multiply_add::<T, FUSED>(value, scale, *acc);
            }
        }
    }
    acc
}

/// A product computed one block of whole columns at a time.
trait ColumnBlocks<T: Scalar> {
    /// The number of columns of the product.
    fn columns(&self) -> usize;

    /// Computes columns `j0 .. j0 + W` with `MR × W` register tiles.
    fn block<const FUSED: bool, const UNIT: u8, const MR: usize, const W: usize>(
        &mut self,
        j0: usize,
    );

    /// Every column: blocks of `NR` columns, then the remainder in blocks of 4, 2 and 1
    /// (narrower tiles, still whole multiply-add chains in registers, rather than one column at
    /// a time).
    #[inline(always)]
    fn all_blocks<const FUSED: bool, const UNIT: u8, const MR: usize, const NR: usize>(&mut self) {
        let n = self.columns();
        let mut j0 = 0;
        while j0 + NR <= n {
            self.block::<FUSED, UNIT, MR, NR>(j0);
            j0 += NR;
        }
        if NR > 4 && j0 + 4 <= n {
            self.block::<FUSED, UNIT, MR, 4>(j0);
            j0 += 4;
        }
        if NR > 2 && j0 + 2 <= n {
            self.block::<FUSED, UNIT, MR, 2>(j0);
            j0 += 2;
        }
        if j0 < n {
            self.block::<FUSED, UNIT, MR, 1>(j0);
        }
    }
}

impl<T: Scalar> ColumnBlocks<T> for Plain<'_, T> {
    fn columns(&self) -> usize {
        self.n
    }

    /// Columns `j0 .. j0 + W` of `c`: the full row tiles, then the rows left over one partial
    /// column at a time.
    #[inline(always)]
    fn block<const FUSED: bool, const UNIT: u8, const MR: usize, const W: usize>(
        &mut self,
        j0: usize,
    ) {
        let (m, n, k) = (self.m, self.n, self.k);
        let full_rows = m - m % MR;
        for i0 in (0..full_rows).step_by(MR) {
            let acc = tile::<T, FUSED, UNIT, MR, W>(self.a, i0, m, k, self.b, j0 * k, k, 1);
            for (j, acc) in acc.iter().enumerate() {
                let at = i0 + (j0 + j) * m;
                self.c[at..at + MR].copy_from_slice(acc);
            }
        }
        let c = &mut *self.c;
        let mut write = |o: usize, v: &[T]| c[o..o + v.len()].copy_from_slice(v);
        for j in j0..j0 + W {
            partial_column::<T, FUSED, false, MR, _>(
                full_rows, j, m, n, k, self.a, self.b, &mut write,
            );
        }
    }
}

impl<T: Scalar> Job<T> for Plain<'_, T> {
    /// Column block by column block (the block's columns of `b` stay in the first-level cache
    /// while the row tiles stream `a`), each tile accumulated over the whole shared dimension
    /// in registers, then stored.
    #[inline(always)]
    fn run<const FUSED: bool, const UNIT: u8, const MR: usize, const NR: usize>(self) {
        let Plain { m, n, k, a, b, c } = self;
        Plain {
            m,
            n,
            k,
            a: &a[..m * k],
            b: &b[..k * n],
            c: &mut c[..m * n],
        }
        .all_blocks::<FUSED, UNIT, MR, NR>();
    }
}

/// A [`Transposed`] product with the buffer its column blocks are gathered in.
struct Gathered<'a, T, F> {
    /// The product.
    job: Transposed<'a, T, F>,
    /// A column block's whole columns, when they fit.
    block: Aligned<[T; BLOCK]>,
}

impl<T: Scalar, F: Runs<T>> ColumnBlocks<T> for Gathered<'_, T, F> {
    fn columns(&self) -> usize {
        self.job.n
    }

    /// Columns `j0 .. j0 + W` of the product handed to `f`: as one run of whole columns when
    /// they fit in `block` (fewer, longer runs for an optimizer's update), else a tile's column
    /// at a time.
    #[inline(always)]
    fn block<const FUSED: bool, const UNIT: u8, const MR: usize, const W: usize>(
        &mut self,
        j0: usize,
    ) {
        let Transposed { m, n, k, a, b, .. } = self.job;
        if m == 0 {
            return;
        }
        let (f, block) = (&mut self.job.f, &mut self.block.0);
        let full_rows = m - m % MR;
        let whole = m * W <= BLOCK;
        for i0 in (0..full_rows).step_by(MR) {
            let acc = tile::<T, FUSED, UNIT, MR, W>(a, i0, m, k, b, j0, 1, n);
            // Handed over from a copy: a run borrowing `acc` itself would keep the tile in
            // memory through the loop (measured 8 times slower with an optimizer's update in
            // `f`).
            let tile = acc;
            for (j, column) in tile.iter().enumerate() {
                if whole {
                    block[j * m + i0..j * m + i0 + MR].copy_from_slice(column);
                } else {
                    f.run(i0 + (j0 + j) * m, column);
                }
            }
        }
        if whole {
            let mut gather = |o: usize, v: &[T]| {
                let at = o - j0 * m;
                block[at..at + v.len()].copy_from_slice(v);
            };
            for j in j0..j0 + W {
                partial_column::<T, FUSED, true, MR, _>(full_rows, j, m, n, k, a, b, &mut gather);
            }
            f.run(j0 * m, &block[..W * m]);
        } else {
            for j in j0..j0 + W {
                partial_column::<T, FUSED, true, MR, F>(full_rows, j, m, n, k, a, b, f);
            }
        }
    }
}

impl<T: Scalar, F: Runs<T>> Job<T> for Transposed<'_, T, F> {
    /// Column block by column block, as [`Plain`], each block handed to `f` (see
    /// [`Gathered`]). The entries of `b` for one `p` are consecutive, each broadcast from
    /// memory where it is multiplied.
    #[inline(always)]
    fn run<const FUSED: bool, const UNIT: u8, const MR: usize, const NR: usize>(self) {
        let Transposed { m, n, k, a, b, f } = self;
        Gathered {
            job: Transposed {
                m,
                n,
                k,
                a: &a[..m * k],
                b: &b[..k * n],
                f,
            },
            block: Aligned([T::zero(); BLOCK]),
        }
        .all_blocks::<FUSED, UNIT, MR, NR>();
    }
}

/// Entries `i0..min(i0 + MR, m)` of column `j` (fewer than a full tile), vectorised along the
/// rows, handed to `f` as one run. `TRANSPOSED` reads `b` as `n × k`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn partial_column<
    T: Scalar,
    const FUSED: bool,
    const TRANSPOSED: bool,
    const MR: usize,
    F: Runs<T>,
>(
    i0: usize,
    j: usize,
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    f: &mut F,
) {
    let rows = MR.min(m - i0);
    if rows == 0 {
        return;
    }
    let mut acc = [T::zero(); MR];
    let acc = &mut acc[..rows];
    for p in 0..k {
        let scale = if TRANSPOSED {
            b[p * n + j]
        } else {
            b[j * k + p]
        };
        let column = &a[i0 + p * m..i0 + p * m + rows];
        for (acc, &value) in acc.iter_mut().zip(column) {
            *acc = multiply_add::<T, FUSED>(value, scale, *acc);
        }
    }
    f.run(i0 + j * m, acc);
}

/// [`tile`] in intrinsics. Left to LLVM, the same loop kept its accumulators in registers in
/// some instantiations and not in others: the product handed to a copy (`backward`'s large
/// weight gradient) ran in 128-bit pieces with the tile spilled to the stack, 2.4 times as
/// long as the same product handed to an optimizer (W3 on a Zen 5, `perf annotate`).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
    use super::{Scalar, AVX2, AVX512};
    use core::any::TypeId;
    use core::arch::x86_64::*;

    /// Declares `$name`: an `NR`-column tile of two `$lanes`-lane vectors of rows, each entry
    /// `acc = a·b + acc` in order of `p` from zero (one rounding with `FUSED`, else two), as
    /// [`tile`](super::tile) computes it, stored to `out` (`NR × 2·$lanes` entries).
    macro_rules! tile_kernel {
        ($name:ident, $features:literal, $t:ty, $lanes:literal, $zero:ident, $load:ident,
         $set1:ident, $fmadd:ident, $mul:ident, $add:ident, $store:ident) => {
            #[doc = concat!("A tile of `", stringify!($t), "` compiled for ", $features, ".")]
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn $name<const FUSED: bool, const NR: usize>(
                out: *mut $t,
                a: *const $t,
                m: usize,
                k: usize,
                b: *const $t,
                col: usize,
                step: usize,
            ) {
                let mut acc = [[$zero(); 2]; NR];
                for p in 0..k {
                    // SAFETY (all reads): the caller's bounds, as in `tile`.
                    let (low, high) = unsafe {
                        let column = a.add(p * m);
                        ($load(column), $load(column.add($lanes)))
                    };
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let scale = $set1(unsafe { *b.add(j * col + p * step) });
                        if FUSED {
                            acc[0] = $fmadd(low, scale, acc[0]);
                            acc[1] = $fmadd(high, scale, acc[1]);
                        } else {
                            acc[0] = $add($mul(low, scale), acc[0]);
                            acc[1] = $add($mul(high, scale), acc[1]);
                        }
                    }
                }
                for (j, acc) in acc.iter().enumerate() {
                    // SAFETY: `out` holds `NR` columns of `2 · $lanes` entries.
                    unsafe {
                        $store(out.add(j * 2 * $lanes), acc[0]);
                        $store(out.add(j * 2 * $lanes + $lanes), acc[1]);
                    }
                }
            }
        };
    }

    tile_kernel!(
        f32_avx512,
        "avx512f",
        f32,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_mul_ps,
        _mm512_add_ps,
        _mm512_storeu_ps
    );
    tile_kernel!(
        f64_avx512,
        "avx512f",
        f64,
        8,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_mul_pd,
        _mm512_add_pd,
        _mm512_storeu_pd
    );
    tile_kernel!(
        f32_avx2,
        "avx2,fma",
        f32,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_mul_ps,
        _mm256_add_ps,
        _mm256_storeu_ps
    );
    tile_kernel!(
        f64_avx2,
        "avx2,fma",
        f64,
        4,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_mul_pd,
        _mm256_add_pd,
        _mm256_storeu_pd
    );

    /// Computes [`tile`](super::tile)'s `acc` with the intrinsic kernel for `UNIT` when `T` is
    /// `f32` or `f64` and `MR` is two of the unit's vectors; returns whether it did.
    ///
    /// # Safety
    /// For `p < k` and `j < NR`, `a[p·m .. p·m + MR]` and `b[j·col + p·step]` are readable, and
    /// the processor has `UNIT` (AVX2 with FMA, or AVX-512F).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile<
        T: Scalar,
        const FUSED: bool,
        const UNIT: u8,
        const MR: usize,
        const NR: usize,
    >(
        acc: &mut [[T; MR]; NR],
        a: *const T,
        m: usize,
        k: usize,
        b: *const T,
        col: usize,
        step: usize,
    ) -> bool {
        let is = |id: TypeId| TypeId::of::<T>() == id;
        let out = acc.as_mut_ptr().cast::<T>();
        // SAFETY (each arm): `T` is the kernel's scalar (checked by `TypeId`), `acc` holds
        // `NR × MR` of them with `MR` two of the unit's vectors, the reads are the caller's,
        // and the unit is the caller's.
        unsafe {
            match UNIT {
                AVX512 if is(TypeId::of::<f32>()) && MR == 32 => {
                    f32_avx512::<FUSED, NR>(out.cast(), a.cast(), m, k, b.cast(), col, step)
                }
                AVX512 if is(TypeId::of::<f64>()) && MR == 16 => {
                    f64_avx512::<FUSED, NR>(out.cast(), a.cast(), m, k, b.cast(), col, step)
                }
                AVX2 if is(TypeId::of::<f32>()) && MR == 16 => {
                    f32_avx2::<FUSED, NR>(out.cast(), a.cast(), m, k, b.cast(), col, step)
                }
                AVX2 if is(TypeId::of::<f64>()) && MR == 8 => {
                    f64_avx2::<FUSED, NR>(out.cast(), a.cast(), m, k, b.cast(), col, step)
                }
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    /// A deterministic matrix with entries in (−1, 1).
    fn matrix(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
        let mut state = seed;
        DMatrix::from_fn(rows, cols, |_, _| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
    }

    #[test]
    fn products_equal_nalgebras_for_every_edge_shape() {
        // Sizes around the 16 × 4 and 32 × 8 tiles: full tiles, edges in rows, columns and both.
        for (m, n, k) in [
            (16, 4, 8),
            (32, 8, 6),
            (65, 9, 3),
            (31, 15, 4),
            (33, 7, 5),
            (1, 1, 1),
            (128, 32, 784),
            (17, 5, 0),
            (15, 3, 9),
        ] {
            let a = matrix(m, k, 1);
            let b = matrix(k, n, 2);
            let bt = b.transpose();
            let expected = &a * &b;
            let mut c = vec![f64::NAN; m * n];
            multiply(m, n, k, a.as_slice(), b.as_slice(), &mut c);
            let mut ct = vec![f64::NAN; m * n];
            multiply_transposed(m, n, k, a.as_slice(), bt.as_slice(), &mut ct);
            // Both tile shapes, whichever one this processor picks above.
            let (a_, b_) = (a.as_slice(), b.as_slice());
            let mut c16 = vec![f64::NAN; m * n];
            let job = Plain {
                m,
                n,
                k,
                a: a_,
                b: b_,
                c: &mut c16,
            };
            job.run::<false, PORTABLE, 16, 4>();
            let mut c6 = vec![f64::NAN; m * n];
            let job = Plain {
                m,
                n,
                k,
                a: a_,
                b: b_,
                c: &mut c6,
            };
            job.run::<true, PORTABLE, 8, 6>();
            let mut c32 = vec![f64::NAN; m * n];
            let job = Plain {
                m,
                n,
                k,
                a: a_,
                b: b_,
                c: &mut c32,
            };
            job.run::<true, PORTABLE, 32, 8>();
            let tolerance = 1e-13 * (k as f64 + 1.0);
            for (form, got) in [
                ("a·b", &c),
                ("a·(bᵀ)ᵀ", &ct),
                ("16×4 tile", &c16),
                ("8×6 tile", &c6),
                ("32×8 tile", &c32),
            ] {
                for (index, &want) in expected.as_slice().iter().enumerate() {
                    assert!(
                        (got[index] - want).abs() <= tolerance,
                        "{form} {m}×{n}×{k} [{index}]: {} vs {want}",
                        got[index]
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod bits {
    //! The instruction sets' kernels against each other, bit for bit.

    use super::*;

    /// Shapes around every tile (32 × 8, 16 × 8, 16 × 4, 8 × 4), with and without edges, and W3's.
    const SHAPES: [(usize, usize, usize); 18] = [
        (1, 1, 1),
        (3, 2, 5),
        (8, 4, 7),
        (16, 4, 8),
        (16, 8, 3),
        (17, 9, 11),
        (31, 15, 4),
        (32, 8, 6),
        (33, 7, 5),
        (40, 12, 1),
        (65, 9, 3),
        (64, 17, 13),
        (33, 9, 70),
        (40, 16, 0),
        (17, 5, 0),
        (0, 3, 4),
        (128, 32, 784),
        (128, 784, 32),
    ];

    /// Deterministic entries in (−1, 1), of varied magnitudes so roundings differ.
    fn values<T: Scalar>(len: usize, seed: u64) -> Vec<T> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
                nalgebra::convert((unit * 2.0 - 1.0) * (1.0 + (state >> 60) as f64))
            })
            .collect()
    }

    /// Which compiled kernel to run.
    #[derive(Clone, Copy, Debug)]
    enum Kernel {
        /// The portable 16 × 4 tile.
        Portable,
        /// An 8 × 4 tile, portable.
        Small,
        /// AVX2/FMA.
        Avx2,
        /// AVX-512.
        Avx512,
    }

    /// Runs `job` with `kernel`.
    fn run_with<T: Scalar, const FUSED: bool, J: Job<T>>(kernel: Kernel, job: J) {
        match kernel {
            Kernel::Portable => portable::<T, FUSED, J>(job),
            Kernel::Small => job.run::<FUSED, PORTABLE, 8, 4>(),
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: only asked for where the processor has AVX2 and FMA (see `kernels`).
            Kernel::Avx2 => unsafe { avx2::<T, FUSED, J>(job) },
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: only asked for where the processor has AVX-512F (see `kernels`).
            Kernel::Avx512 => unsafe { avx512::<T, FUSED, J>(job) },
            #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
            _ => unreachable!(),
        }
    }

    /// The kernels this processor can run.
    fn kernels() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Portable, Kernel::Small];
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                kernels.push(Kernel::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                kernels.push(Kernel::Avx512);
            }
        }
        kernels
    }

    /// `a · b` (or `a · bᵀ`) with `kernel`; the transposed form collected from its runs, each
    /// entry checked to come exactly once.
    #[allow(clippy::too_many_arguments)]
    fn product<T: Scalar, const FUSED: bool, const TRANSPOSED: bool>(
        kernel: Kernel,
        m: usize,
        n: usize,
        k: usize,
        a: &[T],
        b: &[T],
    ) -> Vec<T> {
        let mut c = vec![T::zero(); m * n];
        if !TRANSPOSED {
            c.fill(T::one());
            run_with::<T, FUSED, _>(
                kernel,
                Plain {
                    m,
                    n,
                    k,
                    a,
                    b,
                    c: &mut c,
                },
            );
            return c;
        }
        let mut seen = vec![false; m * n];
        let f = |offset: usize, values: &[T]| {
            assert!(
                !values.is_empty() && values.len() <= BLOCK.max(32),
                "a run of {}",
                values.len()
            );
            for (index, &value) in values.iter().enumerate() {
                assert!(
                    !seen[offset + index],
                    "entry {} handed out twice",
                    offset + index
                );
                seen[offset + index] = true;
                c[offset + index] = value;
            }
        };
        run_with::<T, FUSED, _>(kernel, Transposed { m, n, k, a, b, f });
        assert!(seen.iter().all(|&s| s), "an entry was never handed out");
        c
    }

    /// Every kernel this processor can run, for every shape, fused or not, plain or transposed
    /// operand: all give the bits of the portable kernel, and so do the public functions when
    /// the process's level matches `FUSED`.
    fn check<T: Scalar, const FUSED: bool, const TRANSPOSED: bool>(to_bits: fn(T) -> u64) {
        for (m, n, k) in SHAPES {
            let a = values::<T>(m * k, 3);
            let b = values::<T>(k * n, 4);
            let (a, b) = (a.as_slice(), b.as_slice());
            let expected = product::<T, FUSED, TRANSPOSED>(Kernel::Portable, m, n, k, a, b);
            let mut got = Vec::new();
            for kernel in kernels() {
                let c = product::<T, FUSED, TRANSPOSED>(kernel, m, n, k, a, b);
                got.push((format!("{kernel:?}"), c));
            }
            if arithmetic::level().fused == FUSED {
                let mut c = vec![T::one(); m * n];
                if TRANSPOSED {
                    multiply_transposed(m, n, k, a, b, &mut c);
                    let mut chunks = vec![T::one(); m * n];
                    multiply_transposed_chunks(m, n, k, a, b, |offset, values| {
                        chunks[offset..offset + values.len()].copy_from_slice(values)
                    });
                    got.push(("multiply_transposed_chunks".into(), chunks));
                } else {
                    multiply(m, n, k, a, b, &mut c);
                }
                got.push(("public".into(), c));
            }
            for (name, c) in got {
                for (index, (&got, &want)) in c.iter().zip(&expected).enumerate() {
                    assert_eq!(
                        to_bits(got),
                        to_bits(want),
                        "{name}, fused {FUSED}, transposed {TRANSPOSED}, {m}×{n}×{k} [{index}]"
                    );
                }
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_portable_bits() {
        let f32_bits: fn(f32) -> u64 = |x| x.to_bits().into();
        let f64_bits: fn(f64) -> u64 = f64::to_bits;
        check::<f32, true, false>(f32_bits);
        check::<f32, true, true>(f32_bits);
        check::<f32, false, false>(f32_bits);
        check::<f32, false, true>(f32_bits);
        check::<f64, true, false>(f64_bits);
        check::<f64, true, true>(f64_bits);
        check::<f64, false, false>(f64_bits);
        check::<f64, false, true>(f64_bits);
    }

    #[test]
    fn fused_and_pinned_differ_somewhere() {
        // Otherwise the test above could not tell the two orders apart.
        let (m, n, k) = (33, 9, 40);
        let a = values::<f32>(m * k, 5);
        let b = values::<f32>(k * n, 6);
        let fused = product::<f32, true, true>(Kernel::Portable, m, n, k, &a, &b);
        let pinned = product::<f32, false, true>(Kernel::Portable, m, n, k, &a, &b);
        assert!(fused
            .iter()
            .zip(&pinned)
            .any(|(x, y)| x.to_bits() != y.to_bits()));
    }
}
