//! The tiny layers' products ([`sizes::TINY_BYTES`](crate::sizes::TINY_BYTES): weights in 512
//! bytes, like the seed network's), summed in a shallow tree rather than in one chain.
//!
//! A one-sample step of a tiny network is a chain of dependent arithmetic, each layer's sums
//! waiting on the last (`benches/w1.rs` probes it: two networks stepped at once take little more
//! than one). nalgebra's products add a sum's terms one after another, so each term costs the
//! chain an addition's latency; here the products are made at once and added pairwise, so a sum
//! of `n` terms waits on one multiply and ⌈log₂ n⌉ additions.
//!
//! **The order**, which fixes the bits (the same on every processor: a multiply, then adds, with
//! no fused multiply-add): a sum's terms `t₀, t₁, …, tₙ₋₁` are added pairwise with a doubling
//! stride: first `t₀ + t₁`, `t₂ + t₃`, …, then those pairs pairwise, and so on, an odd term out
//! carried to the next level unchanged ([`pairwise`]). For the forward product the terms are the
//! bias, then `weight[(i, 0)] · x₀`, `weight[(i, 1)] · x₁`, …; for the propagation into the
//! previous layer they are `weight[(0, j)] · δ₀`, `weight[(1, j)] · δ₁`, …, and the sum then has
//! `+0` added, so that a sum of negative zeros is `+0` as nalgebra's product (which starts from
//! zero) and PyTorch's give it.

use nalgebra::{SMatrix, SVector};

use crate::scalar::Scalar;

/// Adds terms pairwise with a doubling stride (this module's order) and returns the sum: `first`
/// is term 0 and `rest[k]` term `k + 1`, for the first `count` rows of `rest` (the others are
/// ignored: the propagation's terms number `OUT`, one fewer than the rows it can name without a
/// generic constant expression). Each term is a row of `R` independent lanes, summed lane by
/// lane, so the same tree runs over a layer's outputs (or inputs) at once.
#[inline(always)]
fn pairwise<T: Scalar, const R: usize, const N: usize>(
    mut first: [T; R],
    mut rest: [[T; R]; N],
    count: usize,
) -> [T; R] {
    let last = count.min(N);
    // At stride s, term k += term k + s for k = 0, 2s, 4s, …; term 0 is `first`, term m ≥ 1 is
    // `rest[m − 1]`.
    let mut stride = 1;
    while stride <= last {
        add_into(&mut first, &rest[stride - 1]);
        let mut k = 2 * stride;
        while k + stride <= last {
            let addend = rest[k + stride - 1];
            add_into(&mut rest[k - 1], &addend);
            k += 2 * stride;
        }
        stride *= 2;
    }
    first
}

/// `sum += addend`, lane by lane.
#[inline(always)]
fn add_into<T: Scalar, const R: usize>(sum: &mut [T; R], addend: &[T; R]) {
    for i in 0..R {
        sum[i] += addend[i];
    }
}

/// `z = weight · x + bias` for every column of `x`, each output's sum the tree over the bias and
/// the products in input order. Plain loops over constant bounds, not `core::array::from_fn`,
/// whose closure LLVM left as a call.
#[inline(always)]
pub(crate) fn affine<T: Scalar, const IN: usize, const OUT: usize, const B: usize>(
    weight: &SMatrix<T, OUT, IN>,
    bias: &SVector<T, OUT>,
    x: &SMatrix<T, IN, B>,
) -> SMatrix<T, OUT, B> {
    let columns: &[[T; OUT]; IN] = &weight.data.0;
    let mut z = SMatrix::<T, OUT, B>::zeros();
    for (input, out) in x.data.0.iter().zip(z.data.0.iter_mut()) {
        let mut products = [[T::zero(); OUT]; IN];
        for j in 0..IN {
            for i in 0..OUT {
                products[j][i] = columns[j][i] * input[j];
            }
        }
        *out = pairwise(bias.data.0[0], products, IN);
    }
    z
}

/// `weightᵀ · delta` for every column of `delta`, each entry's sum the tree over the products in
/// output order, plus `+0`.
#[inline(always)]
pub(crate) fn propagate<T: Scalar, const IN: usize, const OUT: usize, const B: usize>(
    weight: &SMatrix<T, OUT, IN>,
    delta: &SMatrix<T, OUT, B>,
) -> SMatrix<T, IN, B> {
    let columns: &[[T; OUT]; IN] = &weight.data.0;
    let mut out = SMatrix::<T, IN, B>::zeros();
    for (delta, sums) in delta.data.0.iter().zip(out.data.0.iter_mut()) {
        if OUT == 0 {
            continue;
        }
        // Row i of the products, across the inputs: weight[(i, j)] · δᵢ for every j; row 0 is
        // the tree's first term, rows 1… the rest (the last slot unused).
        let mut first = [T::zero(); IN];
        let mut rest = [[T::zero(); IN]; OUT];
        for j in 0..IN {
            first[j] = columns[j][0] * delta[0];
            for i in 1..OUT {
                rest[i - 1][j] = columns[j][i] * delta[i];
            }
        }
        *sums = pairwise(first, rest, OUT - 1);
        for s in sums.iter_mut() {
            *s += T::zero();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A fixed spread of values with both signs and many magnitudes, so that a different order
    /// of the same additions gives different bits.
    fn value(seed: usize) -> f64 {
        let x = (seed as f64 * 0.618_033_988_749_895).fract();
        (x - 0.5) * (1.0 + (seed % 7) as f64 * 1e3)
    }

    /// The documented order written out independently: level after level, each level adding
    /// neighbours in pairs and carrying an odd last term up unchanged.
    fn tree_sum<T: Scalar>(mut terms: Vec<T>) -> T {
        if terms.is_empty() {
            return T::zero();
        }
        while terms.len() > 1 {
            terms = terms
                .chunks(2)
                .map(|pair| {
                    if pair.len() == 2 {
                        pair[0] + pair[1]
                    } else {
                        pair[0]
                    }
                })
                .collect();
        }
        terms[0]
    }

    fn check_shape<T: Scalar, const IN: usize, const OUT: usize, const B: usize>() {
        let w = SMatrix::<T, OUT, IN>::from_fn(|i, j| crate::scalar::constant(value(i * 31 + j)));
        let b = SVector::<T, OUT>::from_fn(|i, _| crate::scalar::constant(value(i + 500)));
        let x =
            SMatrix::<T, IN, B>::from_fn(|j, k| crate::scalar::constant(value(j * 7 + k + 900)));
        let d =
            SMatrix::<T, OUT, B>::from_fn(|i, k| crate::scalar::constant(value(i * 3 + k + 1300)));
        let z = affine(&w, &b, &x);
        let back = propagate(&w, &d);
        for k in 0..B {
            for i in 0..OUT {
                let terms = core::iter::once(b[i]).chain((0..IN).map(|j| w[(i, j)] * x[(j, k)]));
                let expected = tree_sum(terms.collect());
                assert_eq!(
                    z[(i, k)].to_bits_f64(),
                    expected.to_bits_f64(),
                    "affine {IN}×{OUT} ({i}, {k})"
                );
            }
            for j in 0..IN {
                let terms = (0..OUT).map(|i| w[(i, j)] * d[(i, k)]).collect();
                let expected = tree_sum(terms) + T::zero();
                assert_eq!(
                    back[(j, k)].to_bits_f64(),
                    expected.to_bits_f64(),
                    "propagate {IN}×{OUT} ({j}, {k})"
                );
            }
        }
    }

    /// A scalar's bits, widened, for exact comparisons in either precision.
    trait Bits {
        fn to_bits_f64(self) -> u64;
    }
    impl<T: Scalar> Bits for T {
        fn to_bits_f64(self) -> u64 {
            let wide = crate::scalar::to_f64(self);
            // f32 → f64 is exact, so equal f64 bits mean equal bits.
            wide.to_bits()
        }
    }

    #[test]
    fn tiny_products_follow_the_documented_tree() {
        check_shape::<f32, 1, 1, 1>();
        check_shape::<f32, 4, 5, 1>();
        check_shape::<f32, 5, 2, 1>();
        check_shape::<f32, 2, 1, 1>();
        check_shape::<f32, 7, 3, 2>();
        check_shape::<f32, 8, 8, 3>();
        check_shape::<f32, 3, 11, 1>();
        check_shape::<f64, 6, 6, 2>();
        check_shape::<f64, 1, 9, 1>();
        check_shape::<f64, 9, 1, 4>();
        check_shape::<f32, 4, 0, 1>();
        check_shape::<f32, 0, 4, 1>();
    }

    #[test]
    fn tiny_sums_stay_close_to_the_exact_ones() {
        // Pairwise sums err by at most about ⌈log₂ n⌉ roundings: compared with f64 sums.
        let w = SMatrix::<f32, 5, 4>::from_fn(|i, j| value(i * 4 + j) as f32);
        let b = SVector::<f32, 5>::from_fn(|i, _| value(i + 40) as f32);
        let x = SVector::<f32, 4>::from_fn(|j, _| value(j + 80) as f32);
        let z = affine(&w, &b, &x);
        let exact = w.cast::<f64>() * x.cast::<f64>() + b.cast::<f64>();
        for i in 0..5 {
            let scale: f64 = (0..4)
                .map(|j| (w[(i, j)] as f64 * x[j] as f64).abs())
                .sum::<f64>()
                + (b[i] as f64).abs();
            assert!((z[i] as f64 - exact[i]).abs() <= 4.0 * f32::EPSILON as f64 * scale);
        }
    }

    #[test]
    fn a_propagated_sum_of_negative_zeros_is_positive_zero() {
        // δ = +0 through negative weights: every product is −0; nalgebra's product and
        // PyTorch's matrix product both give +0.
        let w = SMatrix::<f32, 2, 3>::from_element(-1.5);
        let d = SVector::<f32, 2>::zeros();
        for entry in propagate(&w, &d).iter() {
            assert!(*entry == 0.0 && entry.is_sign_positive());
        }
        // The forward sum keeps the bias's sign when every term is a zero of the same sign.
        let z = affine(
            &w,
            &SVector::<f32, 2>::from_element(-0.0),
            &SVector::<f32, 3>::from_element(0.0),
        );
        assert!(z.iter().all(|z| *z == 0.0 && z.is_sign_negative()));
    }
}
