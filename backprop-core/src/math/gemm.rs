//! Register-tiled matrix products for large layers, allocation-free.
//!
//! nalgebra multiplies statically sized matrices with column loops, which is right for small
//! layers and slow for large ones. These kernels compute a tile of the result in registers while
//! streaming the shared dimension: on x86-64 a 32-row × 8-column tile compiled for AVX-512 where
//! the processor has it, else a 16 × 4 tile compiled for AVX2 and FMA (checked at run time), else
//! the portable 16 × 4 tile. They need no packing buffers and allocate nothing. All matrices are
//! column-major slices, as nalgebra stores them.

use crate::scalar::Scalar;

/// How a kernel reads the right-hand operand: element `(p, j)` of the `k × n` product operand is
/// at `p * p_stride + j * j_stride`.
#[derive(Clone, Copy)]
struct Operand {
    /// Distance between consecutive `p` (the shared dimension).
    p_stride: usize,
    /// Distance between consecutive columns `j`.
    j_stride: usize,
}

/// `c = a · b`: `a` is `m × k`, `b` is `k × n`, `c` is `m × n`, all column-major.
pub fn multiply<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
    run(
        m,
        n,
        k,
        a,
        b,
        Operand {
            p_stride: 1,
            j_stride: k,
        },
        c,
    );
}

/// `c = a · bᵀ`: `a` is `m × k`, `b` is `n × k`, `c` is `m × n`, all column-major.
pub fn multiply_transposed<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
    run(
        m,
        n,
        k,
        a,
        b,
        Operand {
            p_stride: n,
            j_stride: 1,
        },
        c,
    );
}

/// The entries of `a · bᵀ` (`a` is `m × k`, `b` is `n × k`), bit for bit as
/// [`multiply_transposed`] writes them, handed to `f(offset, values)` a run of consecutive
/// column-major entries at a time (`offset` is the first one's index) instead of written: the
/// fused training step applies the optimizer to a layer's gradient as it is made. Every entry
/// is passed exactly once, in no particular order of runs.
pub fn multiply_transposed_chunks<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    mut f: impl crate::kernels::Runs<T>,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n,
        "gemm: slices too short"
    );
    const RUN: usize = 64;
    let fused = crate::arithmetic::level().fused;
    let mut values = [T::zero(); RUN];
    for j in 0..n {
        for i0 in (0..m).step_by(RUN) {
            let rows = RUN.min(m - i0);
            for (r, value) in values[..rows].iter_mut().enumerate() {
                let mut sum = T::zero();
                for p in 0..k {
                    let (x, y) = (a[i0 + r + p * m], b[p * n + j]);
                    sum = if fused {
                        x.mul_add(y, sum)
                    } else {
                        x * y + sum
                    };
                }
                *value = sum;
            }
            f.run(i0 + j * m, &values[..rows]);
        }
    }
}

/// Checks the slice sizes, then runs the fastest kernel this processor has.
fn run<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], b: &[T], operand: Operand, c: &mut [T]) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "gemm: slices too short"
    );
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor supports the features the function is compiled for.
            unsafe { kernel_avx512(m, n, k, a, b, operand, c) };
            return;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the processor supports the features the function is compiled for.
            unsafe { kernel_avx2_fma(m, n, k, a, b, operand, c) };
            return;
        }
    }
    // Fused multiply-add is an instruction on aarch64; elsewhere, without the run-time check above,
    // it may be a slow library call, so the portable kernel multiplies and adds.
    kernel::<T, { cfg!(target_arch = "aarch64") }, 16, 4>(m, n, k, a, b, operand, c);
}

/// [`kernel`] compiled for AVX2 and FMA.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2_fma<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    operand: Operand,
    c: &mut [T],
) {
    kernel::<T, true, 16, 4>(m, n, k, a, b, operand, c);
}

/// [`kernel`] compiled for AVX-512 (which includes FMA).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,fma")]
unsafe fn kernel_avx512<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    operand: Operand,
    c: &mut [T],
) {
    // 32 registers of 16 lanes: a 32 × 8 tile keeps 16 accumulators and amortises each load.
    kernel::<T, true, 32, 8>(m, n, k, a, b, operand, c);
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

/// The tiled product: full `MR × NR` tiles in registers, the edges entry by entry.
#[inline(always)]
fn kernel<T: Scalar, const FUSED: bool, const MR: usize, const NR: usize>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    operand: Operand,
    c: &mut [T],
) {
    let full_rows = m - m % MR;
    let full_cols = n - n % NR;
    for j0 in (0..full_cols).step_by(NR) {
        for i0 in (0..full_rows).step_by(MR) {
            let mut acc = [[T::zero(); MR]; NR];
            for p in 0..k {
                let column: &[T; MR] = a[i0 + p * m..i0 + p * m + MR]
                    .try_into()
                    .expect("a full tile");
                for (j, acc) in acc.iter_mut().enumerate() {
                    let scale = b[p * operand.p_stride + (j0 + j) * operand.j_stride];
                    for (acc, &value) in acc.iter_mut().zip(column) {
                        *acc = multiply_add::<T, FUSED>(value, scale, *acc);
                    }
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                c[i0 + (j0 + j) * m..i0 + (j0 + j) * m + MR].copy_from_slice(acc);
            }
        }
        edge::<T, FUSED>(full_rows..m, j0..j0 + NR, m, k, a, b, operand, c);
    }
    edge::<T, FUSED>(0..m, full_cols..n, m, k, a, b, operand, c);
}

/// The entries of `c` in `rows × cols` that do not fill a whole tile, one dot product each.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn edge<T: Scalar, const FUSED: bool>(
    rows: core::ops::Range<usize>,
    cols: core::ops::Range<usize>,
    m: usize,
    k: usize,
    a: &[T],
    b: &[T],
    operand: Operand,
    c: &mut [T],
) {
    for j in cols {
        for i in rows.clone() {
            let mut sum = T::zero();
            for p in 0..k {
                sum = multiply_add::<T, FUSED>(
                    a[i + p * m],
                    b[p * operand.p_stride + j * operand.j_stride],
                    sum,
                );
            }
            c[i + j * m] = sum;
        }
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
            let mut c16 = vec![f64::NAN; m * n];
            let nn = Operand {
                p_stride: 1,
                j_stride: k,
            };
            kernel::<f64, false, 16, 4>(m, n, k, a.as_slice(), b.as_slice(), nn, &mut c16);
            let mut c32 = vec![f64::NAN; m * n];
            kernel::<f64, true, 32, 8>(m, n, k, a.as_slice(), b.as_slice(), nn, &mut c32);
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
