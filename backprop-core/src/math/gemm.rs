//! Register-tiled matrix products for large layers, allocation-free.
//!
//! nalgebra multiplies statically sized matrices with column loops, which is right for small
//! layers and slow for large ones. These kernels compute a tile of the result in registers while
//! streaming the shared dimension, each entry of the right-hand operand broadcast straight from
//! memory: on x86-64 a tile of two 512-bit vectors' rows × 8 columns (32 × 8 in `f32`, 16 × 8 in
//! `f64`) compiled for AVX-512 where the processor has it, else two 256-bit vectors' rows × 4
//! columns compiled for AVX2 and FMA (checked at run time), else the portable 16 × 4 tile. Rows
//! and columns left over at the edges are computed one partial column at a time, still vectorised
//! along the rows. Nothing is allocated and nothing is packed: the stack holds one tile (1 KiB).
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
    /// Computes the product with `MR × NR` register tiles, fused or not.
    fn run<const FUSED: bool, const MR: usize, const NR: usize>(self);
}

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
    job.run::<FUSED, 16, 4>();
}

/// `job` compiled for AVX2 and FMA: two 256-bit vectors of rows × 4 columns, 8 of the 16
/// registers accumulating.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<T: Scalar, const FUSED: bool, J: Job<T>>(job: J) {
    if core::mem::size_of::<T>() == 4 {
        job.run::<FUSED, 16, 4>();
    } else {
        job.run::<FUSED, 8, 4>();
    }
}

/// `job` compiled for AVX-512 (which includes FMA): two 512-bit vectors of rows × 8 columns,
/// 16 of the 32 registers accumulating while each loaded column feeds 8 multiply-adds.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,fma")]
unsafe fn avx512<T: Scalar, const FUSED: bool, J: Job<T>>(job: J) {
    if core::mem::size_of::<T>() == 4 {
        job.run::<FUSED, 32, 8>();
    } else {
        job.run::<FUSED, 16, 8>();
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

/// One full `MR × NR` tile from `i0`: `acc[j][i] = Σ_p a[i0 + i, p] · columns[j][p]`, in order of
/// `p`. Each column of `b` is its own slice at a run-time distance from the others, so the
/// compiler keeps the tile in registers and broadcasts each entry of `b` from memory (reading
/// the `NR` entries of one `p` at constant distances, it gathers them into a vector instead and
/// spills the tile).
#[inline(always)]
fn tile<T: Scalar, const FUSED: bool, const MR: usize, const NR: usize>(
    i0: usize,
    m: usize,
    k: usize,
    a: &[T],
    columns: &[&[T]; NR],
) -> [[T; MR]; NR] {
    let mut acc = [[T::zero(); MR]; NR];
    for p in 0..k {
        let at = i0 + p * m;
        let column: &[T; MR] = a[at..at + MR].try_into().expect("a full tile");
        for (acc, scales) in acc.iter_mut().zip(columns) {
            let scale = scales[p];
            for (acc, &value) in acc.iter_mut().zip(column) {
                *acc = multiply_add::<T, FUSED>(value, scale, *acc);
            }
        }
    }
    acc
}

impl<T: Scalar> Job<T> for Plain<'_, T> {
    /// Column block by column block (the block's `NR` columns of `b` stay in the first-level
    /// cache while the row tiles stream `a`), each tile accumulated over the whole shared
    /// dimension in registers, then stored.
    #[inline(always)]
    fn run<const FUSED: bool, const MR: usize, const NR: usize>(self) {
        let Plain { m, n, k, a, b, c } = self;
        let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
        let full_rows = m - m % MR;
        let full_cols = n - n % NR;
        for j0 in (0..full_cols).step_by(NR) {
            let columns: [&[T]; NR] = core::array::from_fn(|j| &b[(j0 + j) * k..][..k]);
            for i0 in (0..full_rows).step_by(MR) {
                let acc = tile::<T, FUSED, MR, NR>(i0, m, k, a, &columns);
                for (j, acc) in acc.iter().enumerate() {
                    let at = i0 + (j0 + j) * m;
                    c[at..at + MR].copy_from_slice(acc);
                }
            }
            let mut write = |o: usize, v: &[T]| c[o..o + v.len()].copy_from_slice(v);
            for j in j0..j0 + NR {
                partial_column::<T, FUSED, false, MR, _>(full_rows, j, m, n, k, a, b, &mut write);
            }
        }
        let mut write = |o: usize, v: &[T]| c[o..o + v.len()].copy_from_slice(v);
        for j in full_cols..n {
            for i0 in (0..m).step_by(MR) {
                partial_column::<T, FUSED, false, MR, _>(i0, j, m, n, k, a, b, &mut write);
            }
        }
    }
}

impl<T: Scalar, F: Runs<T>> Job<T> for Transposed<'_, T, F> {
    /// Column block by column block, as [`Plain`], each tile handed to `f` column by column. The
    /// `NR` entries of `b` for one `p` are consecutive, each read where it is multiplied (its
    /// bounds check keeps the compiler from gathering them into one vector; copying the block
    /// to the stack as [`Plain`] reads it measured slower on W3).
    #[inline(always)]
    fn run<const FUSED: bool, const MR: usize, const NR: usize>(self) {
        let Transposed {
            m,
            n,
            k,
            a,
            b,
            mut f,
        } = self;
        let (a, b) = (&a[..m * k], &b[..k * n]);
        let full_rows = m - m % MR;
        let full_cols = n - n % NR;
        // The NR whole columns of a column block, gathered here when they fit, are handed over
        // as one run: fewer, longer runs for an optimizer's update.
        let mut block = Aligned([T::zero(); BLOCK]);
        let whole = m * NR <= BLOCK;
        for j0 in (0..full_cols).step_by(NR) {
            for i0 in (0..full_rows).step_by(MR) {
                let mut acc = [[T::zero(); MR]; NR];
                for p in 0..k {
                    let at = i0 + p * m;
                    let column: &[T; MR] = a[at..at + MR].try_into().expect("a full tile");
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let scale = b[p * n + j0 + j];
                        for (acc, &value) in acc.iter_mut().zip(column) {
                            *acc = multiply_add::<T, FUSED>(value, scale, *acc);
                        }
                    }
                }
                // Handed over from a copy: a run borrowing `acc` itself would keep the tile in
                // memory through the loop above (measured 8 times slower with an optimizer's
                // update in `f`).
                let tile = acc;
                for (j, column) in tile.iter().enumerate() {
                    if whole {
                        block.0[j * m + i0..j * m + i0 + MR].copy_from_slice(column);
                    } else {
                        f.run(i0 + (j0 + j) * m, column);
                    }
                }
            }
            if whole {
                let block = &mut block.0;
                let mut gather = |o: usize, v: &[T]| {
                    let at = o - j0 * m;
                    block[at..at + v.len()].copy_from_slice(v);
                };
                for j in j0..j0 + NR {
                    partial_column::<T, FUSED, true, MR, _>(
                        full_rows,
                        j,
                        m,
                        n,
                        k,
                        a,
                        b,
                        &mut gather,
                    );
                }
                f.run(j0 * m, &block[..NR * m]);
            } else {
                for j in j0..j0 + NR {
                    partial_column::<T, FUSED, true, MR, F>(full_rows, j, m, n, k, a, b, &mut f);
                }
            }
        }
        for j in full_cols..n {
            for i0 in (0..m).step_by(MR) {
                partial_column::<T, FUSED, true, MR, F>(i0, j, m, n, k, a, b, &mut f);
            }
        }
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
            job.run::<false, 16, 4>();
            let mut c32 = vec![f64::NAN; m * n];
            let job = Plain {
                m,
                n,
                k,
                a: a_,
                b: b_,
                c: &mut c32,
            };
            job.run::<true, 32, 8>();
            let tolerance = 1e-13 * (k as f64 + 1.0);
            for (form, got) in [
                ("a·b", &c),
                ("a·(bᵀ)ᵀ", &ct),
                ("16×4 tile", &c16),
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
            Kernel::Small => job.run::<FUSED, 8, 4>(),
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
