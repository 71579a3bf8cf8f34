//! Register-tiled matrix products for large layers, allocation-free.
//!
//! nalgebra multiplies statically sized matrices with column loops, which is right for small
//! layers and slow for large ones. These kernels compute a tile of the result in registers while
//! streaming the shared dimension, the right-hand operand's entries broadcast straight from
//! memory: on x86-64 a tile of two 512-bit vectors' rows × 8 columns (32 × 8 in `f32`) compiled
//! for AVX-512 where the processor has it, else two 256-bit vectors' rows × 4 columns compiled for
//! AVX2 and FMA (checked at run time), else the portable 16 × 4 tile. Rows left over at the edges
//! are computed as one partial column at a time, still vectorised along the rows. The kernels need
//! no packing buffers and allocate nothing: a tile (1 KiB in `f32` or `f64`) is their only
//! storage. All matrices are column-major slices, as nalgebra stores them.
//!
//! **Summation order.** Every entry of a product is one sequential chain over the shared
//! dimension, starting from zero: `acc = a[i, 0]·b[0, j] + 0`, then `acc = a[i, p]·b[p, j] + acc`
//! for `p = 1, 2, …` in order. Only whether each multiply-add rounds once (fused) or twice
//! changes the bits ([`arithmetic::level`](crate::arithmetic::level) decides, and
//! [`Arithmetic::Pinned`](crate::arithmetic::Arithmetic::Pinned) rounds twice on every
//! instruction set); the vector width and the tile shape never do (tested).

use crate::arithmetic::{self, Isa};
use crate::scalar::Scalar;

/// `c = a · b`: `a` is `m × k`, `b` is `k × n`, `c` is `m × n`, all column-major.
pub fn multiply<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
    assert!(c.len() >= m * n, "gemm: slices too short");
    run::<T, false, _>(m, n, k, a, b, |offset, values: &[T]| {
        c[offset..offset + values.len()].copy_from_slice(values)
    });
}

/// `c = a · bᵀ`: `a` is `m × k`, `b` is `n × k`, `c` is `m × n`, all column-major.
pub fn multiply_transposed<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
    assert!(c.len() >= m * n, "gemm: slices too short");
    run::<T, true, _>(m, n, k, a, b, |offset, values: &[T]| {
        c[offset..offset + values.len()].copy_from_slice(values)
    });
}

/// The entries of `a · bᵀ` (`a` is `m × k`, `b` is `n × k`), bit for bit as
/// [`multiply_transposed`] writes them, handed to `f(offset, values)` a run of consecutive
/// column-major entries at a time (`offset` is the first one's index; a run is one column of a
/// finished register tile, at most 32 entries) instead of written: the fused training step
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
    run::<T, true, _>(m, n, k, a, b, f);
}

/// Checks the slice sizes, then runs the kernel of [`arithmetic::level`]: its instruction set,
/// fused or not. `TRANSPOSED` reads `b` as the `n × k` matrix whose transpose is multiplied.
#[inline(always)]
fn run<T: Scalar, const TRANSPOSED: bool, F: FnMut(usize, &[T])>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    f: F,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n,
        "gemm: slices too short"
    );
    let level = arithmetic::level();
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    match (level.isa, level.fused) {
        // SAFETY (all four): `level` reports the instruction set only where the processor has
        // it (detected at run time), and each function is compiled for exactly that set.
        (Isa::Avx512, true) => {
            return unsafe { avx512::<T, true, TRANSPOSED, F>(m, n, k, a, b, f) }
        }
        (Isa::Avx512, false) => {
            return unsafe { avx512::<T, false, TRANSPOSED, F>(m, n, k, a, b, f) }
        }
        (Isa::Avx2, true) => return unsafe { avx2::<T, true, TRANSPOSED, F>(m, n, k, a, b, f) },
        (Isa::Avx2, false) => return unsafe { avx2::<T, false, TRANSPOSED, F>(m, n, k, a, b, f) },
        (Isa::Baseline, _) => {}
    }
    // Without a detected instruction set, `level` fuses only where multiply-add is an
    // instruction (aarch64); elsewhere it would be a slow library call.
    if level.fused {
        portable::<T, true, TRANSPOSED, F>(m, n, k, a, b, f);
    } else {
        portable::<T, false, TRANSPOSED, F>(m, n, k, a, b, f);
    }
}

/// [`kernel`] with the portable 16 × 4 tile, compiled for the target's baseline.
#[inline(always)]
fn portable<T: Scalar, const FUSED: bool, const TRANSPOSED: bool, F: FnMut(usize, &[T])>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    f: F,
) {
    kernel::<T, FUSED, TRANSPOSED, 16, 4, F>(m, n, k, a, b, f);
}

/// [`kernel`] compiled for AVX2 and FMA: two 256-bit vectors of rows × 4 columns, 8 of the 16
/// registers accumulating.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<T: Scalar, const FUSED: bool, const TRANSPOSED: bool, F: FnMut(usize, &[T])>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    f: F,
) {
    if core::mem::size_of::<T>() == 4 {
        kernel::<T, FUSED, TRANSPOSED, 16, 4, F>(m, n, k, a, b, f);
    } else {
        kernel::<T, FUSED, TRANSPOSED, 8, 4, F>(m, n, k, a, b, f);
    }
}

/// [`kernel`] compiled for AVX-512 (which includes FMA): two 512-bit vectors of rows × 8
/// columns, 16 of the 32 registers accumulating while each loaded column feeds 8 multiply-adds.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,fma")]
unsafe fn avx512<T: Scalar, const FUSED: bool, const TRANSPOSED: bool, F: FnMut(usize, &[T])>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    f: F,
) {
    if core::mem::size_of::<T>() == 4 {
        kernel::<T, FUSED, TRANSPOSED, 32, 8, F>(m, n, k, a, b, f);
    } else {
        kernel::<T, FUSED, TRANSPOSED, 16, 8, F>(m, n, k, a, b, f);
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

/// The tiled product, each finished tile's columns handed to `f(offset, values)`: full
/// `MR × NR` tiles in registers, column block by column block (so the block of `b` stays in the
/// first-level cache while the row tiles stream `a`), then the leftover rows and columns.
#[inline(always)]
fn kernel<
    T: Scalar,
    const FUSED: bool,
    const TRANSPOSED: bool,
    const MR: usize,
    const NR: usize,
    F: FnMut(usize, &[T]),
>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    mut f: F,
) {
    let a = &a[..m * k];
    let b = &b[..k * n];
    let full_rows = m - m % MR;
    let full_cols = n - n % NR;
    for j0 in (0..full_cols).step_by(NR) {
        for i0 in (0..full_rows).step_by(MR) {
            let tile = tile::<T, FUSED, TRANSPOSED, MR, NR>(i0, j0, m, n, k, a, b);
            for (j, column) in tile.iter().enumerate() {
                f(i0 + (j0 + j) * m, column);
            }
        }
        for j in j0..j0 + NR {
            partial_column::<T, FUSED, TRANSPOSED, MR, F>(full_rows, j, m, n, k, a, b, &mut f);
        }
    }
    for j in full_cols..n {
        for i0 in (0..m).step_by(MR) {
            partial_column::<T, FUSED, TRANSPOSED, MR, F>(i0, j, m, n, k, a, b, &mut f);
        }
    }
}

/// One full `MR × NR` tile of the product, rows from `i0` and columns from `j0`: for each `p`, a
/// column segment of `a` is loaded and multiplied by `NR` entries of `b`.
#[inline(always)]
fn tile<T: Scalar, const FUSED: bool, const TRANSPOSED: bool, const MR: usize, const NR: usize>(
    i0: usize,
    j0: usize,
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
) -> [[T; MR]; NR] {
    let mut acc = [[T::zero(); MR]; NR];
    // Each `b` entry is read where it is multiplied, so it is broadcast straight from memory.
    let (p_stride, j_stride) = if TRANSPOSED { (n, 1) } else { (1, k) };
    for p in 0..k {
        let column: &[T; MR] = a[i0 + p * m..i0 + p * m + MR]
            .try_into()
            .expect("a full tile");
        let base = p * p_stride + j0 * j_stride;
        for (j, acc) in acc.iter_mut().enumerate() {
            let scale = b[base + j * j_stride];
            for (acc, &value) in acc.iter_mut().zip(column) {
                *acc = multiply_add::<T, FUSED>(value, scale, *acc);
            }
        }
    }
    acc
}

/// Entries `i0..min(i0 + MR, m)` of column `j` (fewer than a full tile), vectorised along the
/// rows, handed to `f` as one run.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn partial_column<
    T: Scalar,
    const FUSED: bool,
    const TRANSPOSED: bool,
    const MR: usize,
    F: FnMut(usize, &[T]),
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
    f(i0 + j * m, acc);
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
            let mut c16 = vec![f64::NAN; m * n];
            kernel::<f64, false, false, 16, 4, _>(m, n, k, a.as_slice(), b.as_slice(), |o, v| {
                c16[o..o + v.len()].copy_from_slice(v)
            });
            let mut c32 = vec![f64::NAN; m * n];
            kernel::<f64, true, false, 32, 8, _>(m, n, k, a.as_slice(), b.as_slice(), |o, v| {
                c32[o..o + v.len()].copy_from_slice(v)
            });
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
    const SHAPES: [(usize, usize, usize); 16] = [
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

    /// Runs `product` into a NaN-filled `m × n` result, checking each entry is handed out once.
    fn collect<T: Scalar>(
        m: usize,
        n: usize,
        product: impl FnOnce(&mut dyn FnMut(usize, &[T])),
    ) -> Vec<T> {
        let mut c = vec![T::zero(); m * n];
        let mut seen = vec![false; m * n];
        product(&mut |offset, values: &[T]| {
            assert!(
                !values.is_empty() && values.len() <= 32,
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
        });
        assert!(seen.iter().all(|&s| s), "an entry was never handed out");
        c
    }

    /// Every instantiation this processor can run, for one shape, fused or not, plain or
    /// transposed operand: all give the bits of the portable kernel.
    fn check<T: Scalar, const FUSED: bool, const TRANSPOSED: bool>(to_bits: fn(T) -> u64) {
        for (m, n, k) in SHAPES {
            let a = values::<T>(m * k, 3);
            let b = values::<T>(k * n, 4);
            let (a, b) = (a.as_slice(), b.as_slice());
            let expected = collect(m, n, |f| {
                portable::<T, FUSED, TRANSPOSED, _>(m, n, k, a, b, f)
            });
            let mut got = vec![(
                "8 × 4 tile",
                collect(m, n, |f| {
                    kernel::<T, FUSED, TRANSPOSED, 8, 4, _>(m, n, k, a, b, f)
                }),
            )];
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            {
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the processor has AVX2 and FMA (checked above).
                    let c = collect(m, n, |f| unsafe {
                        avx2::<T, FUSED, TRANSPOSED, _>(m, n, k, a, b, f)
                    });
                    got.push(("AVX2/FMA", c));
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the processor has AVX-512F (checked above).
                    let c = collect(m, n, |f| unsafe {
                        avx512::<T, FUSED, TRANSPOSED, _>(m, n, k, a, b, f)
                    });
                    got.push(("AVX-512", c));
                }
            }
            // The public entry points, at this processor's level, when it matches `FUSED`.
            if arithmetic::level().fused == FUSED {
                let mut c = vec![T::zero(); m * n];
                if TRANSPOSED {
                    multiply_transposed(m, n, k, a, b, &mut c);
                    got.push((
                        "multiply_transposed_chunks",
                        collect(m, n, |f| multiply_transposed_chunks(m, n, k, a, b, f)),
                    ));
                } else {
                    multiply(m, n, k, a, b, &mut c);
                }
                got.push(("public", c));
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
        let fused = collect(m, n, |f| {
            portable::<f32, true, false, _>(m, n, k, &a, &b, f)
        });
        let pinned = collect(m, n, |f| {
            portable::<f32, false, false, _>(m, n, k, &a, &b, f)
        });
        assert!(fused
            .iter()
            .zip(&pinned)
            .any(|(x, y)| x.to_bits() != y.to_bits()));
    }
}
