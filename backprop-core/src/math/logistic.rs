//! The logistic function in `f32`, computed by this crate rather than by the C library, and in
//! vector registers for a whole layer.
//!
//! PyTorch's formula, `1 / (1 + e^-z)` rounded in `f32` at each step, with our own `e^-z`: the
//! same bits on every processor, operating system and C library (a replay no longer depends on
//! the system's `expf`), and a body that LLVM vectorises, so a layer of sigmoids costs a few
//! vector instructions instead of one library call per unit.
//!
//! **How `e^x` is computed** (in `f64`, then rounded once to `f32`):
//! 1. `z = x · 32/ln 2` is rounded to an integer `k` by the shift trick (`z + 1.5·2⁵²`).
//! 2. `r = z − k` is in `[-½, ½]`; `2^(r/32) ≈ 1 + c₁r + c₂r² + c₃r³`, evaluated as
//!    `(1 + c₁r) + r²(c₂ + c₃r)`, with coefficients fitted for a relative error below 1e-10.
//! 3. `2^(k/32) = 2^⌊k/32⌋ · 2^((k mod 32)/32)`: the first is added to the exponent bits of the
//!    second, which is a product of five constants chosen by the bits of `k mod 32` (a table of
//!    those products in scalar code, the products themselves in vector code: no gather).
//! 4. Below `x = −150` the result is `0`, above `100` it is `∞` (in `f32` it is both beyond
//!    −103.98 and 88.73 anyway), comparisons at the end, off the value's chain; a NaN is returned
//!    as it came (sign and payload), by every path alike.
//!
//! Each multiply-add fuses where [`arithmetic::level`] says so (as every kernel's does) and rounds
//! twice otherwise; the vector code at every width gives the scalar code's bits (tested). Measured
//! over all 2³² `f32` inputs (`cargo test --release -p backprop-core logistic -- --ignored`):
//! `e^x` is the correctly rounded value (`f64`'s `exp` rounded to `f32`) for all but 170 645 of
//! them unfused and 170 647 fused, one unit in the last place off for those; and the sigmoid is
//! the same fused and not, and bit for bit `1 / (1 + (-z).exp())` with glibc's `expf` (2.36,
//! x86-64), for every input but the NaNs: this module changed no number there, and the
//! sigmoid's bits do not depend on FMA.

use nalgebra::SMatrix;

use crate::arithmetic::{self, Level};
#[cfg(all(feature = "std", target_arch = "x86_64"))]
use crate::{arithmetic::Isa, kernels::supported};

/// `32 / ln 2`: `x` in units of `ln 2 / 32`.
const SCALE: f64 = 46.166_241_308_446_83;
/// `1.5 · 2⁵²`: adding it rounds a value below 2⁵¹ in magnitude to an integer, kept in the low
/// bits of the sum.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// The polynomial `2^(r/32) ≈ 1 + C1·r + C2·r² + C3·r³` on `[-½, ½]`, fitted for relative error
/// (9.8e-11 at most; Taylor's coefficients give 5.8e-10).
const C1: f64 = 0.021_660_849_396_613_203;
/// See [`C1`].
const C2: f64 = 0.000_234_598_097_895_210_4;
/// See [`C1`].
const C3: f64 = 1.693_835_924_676_882_3e-6;
/// `2^(2^b / 32)` for the bits `b = 0 ..= 4` of `k mod 32`.
const FACTORS: [f64; 5] = [
    1.021_897_148_654_116_6,
    1.044_273_782_427_413_8,
    1.090_507_732_665_257_7,
    1.189_207_115_002_721,
    core::f64::consts::SQRT_2,
];

/// `FACTORS[bit]` if `j` has that bit, else 1.
const fn factor(j: u64, bit: usize) -> f64 {
    if j & (1 << bit) != 0 {
        FACTORS[bit]
    } else {
        1.0
    }
}

/// `2^(j/32) = ((f₀ · f₁) · (f₂ · f₃)) · f₄` with `fᵦ` the factor of bit `b` of `j`, each product
/// rounded: the value [`fraction`] computes, in the same order.
const fn product(j: u64) -> f64 {
    (factor(j, 0) * factor(j, 1)) * (factor(j, 2) * factor(j, 3)) * factor(j, 4)
}

/// [`product`] for `j = 0 .. 32`, computed at compile time (IEEE arithmetic, the bits of run
/// time): scalar code looks the fraction up, vector code multiplies its factors (no gather),
/// and both get the same value.
const PRODUCTS: [f64; 32] = {
    let mut table = [0.0; 32];
    let mut j = 0;
    while j < 32 {
        table[j] = product(j as u64);
        j += 1;
    }
    table
};

/// `2^((k mod 32)/32)`: from [`PRODUCTS`] or multiplied out, the same value either way.
#[inline(always)]
fn fraction<const LOOKUP: bool>(k: u64) -> f64 {
    if LOOKUP {
        PRODUCTS[(k & 31) as usize]
    } else {
        product(k)
    }
}

/// Below this `e^x` is `0` in `f32` (it rounds to `0` below −103.98).
const LOWEST: f64 = -150.0;
/// Above this `e^x` is `∞` in `f32` (it is above 88.73).
const HIGHEST: f64 = 100.0;
/// The exponent bias of `f64`, counted in units of `k` (32 per power of two), so that the
/// biased `k` is positive for every input in `[LOWEST, HIGHEST]`.
const BIAS: u64 = 1023 << 5;

/// `a · b + c`, rounded once when `FUSED` (a fused multiply-add), twice otherwise.
#[inline(always)]
fn multiply_add<const FUSED: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FUSED {
        nalgebra::ComplexField::mul_add(a, b, c)
    } else {
        a * b + c
    }
}

/// `e^x` before its final rounding to `f32`: within 1e-10 relative of the exact value. Where
/// `FUSED`, the reduction and the polynomial fuse their multiply-adds (fewer steps one after
/// another; a third of all inputs sampled, one came out with other bits than unfused).
#[inline(always)]
fn exp_wide<const FUSED: bool, const LOOKUP: bool>(x: f32) -> f64 {
    let x = f64::from(x);
    // Rounds to an integer k in the low bits, for |x| below 4.8·10¹³ (larger x are replaced below).
    let shifted = multiply_add::<FUSED>(x, SCALE, SHIFT);
    // k + 1023·32 (SHIFT's own low bits are zero); positive for every x the result keeps.
    let k = shifted
        .to_bits()
        .wrapping_sub(SHIFT.to_bits())
        .wrapping_add(BIAS);
    // x·32/ln 2 − k, in [−½, ½]: exact unfused (the product rounded, then Sterbenz's lemma),
    // rounded once fused.
    let r = multiply_add::<FUSED>(x, SCALE, -(shifted - SHIFT));
    // 2^(k/32) = 2^⌊k/32⌋ · 2^((k mod 32)/32): the fraction, in [1, 2), with ⌊k/32⌋ added to
    // its exponent bits (exact, as multiplying by the power of two would be, and shorter).
    let exponent = (k >> 5).wrapping_sub(1023) << 52;
    let power = f64::from_bits(fraction::<LOOKUP>(k).to_bits().wrapping_add(exponent));
    let r2 = r * r;
    let low = multiply_add::<FUSED>(C1, r, 1.0);
    let high = multiply_add::<FUSED>(C3, r, C2);
    let e = multiply_add::<FUSED>(r2, high, low) * power;
    // Comparisons at the end, off the chain of the value: 0 and ∞ where f32 has nothing else
    // (these also replace what the bits above made of a huge |x| or an infinite one); a NaN
    // fails both and stays NaN.
    if x < LOWEST {
        0.0
    } else if x > HIGHEST {
        f64::INFINITY
    } else {
        e
    }
}

/// `e^x` in `f32`, as every entry point computes it with `FUSED` multiply-adds or without.
#[inline(always)]
fn exp_with<const FUSED: bool, const LOOKUP: bool>(x: f32) -> f32 {
    nan_kept(x, exp_wide::<FUSED, LOOKUP>(x) as f32)
}

/// `value`, or `x` itself if it is a NaN: arithmetic on a NaN gives a NaN whose sign and payload
/// depend on how the compiler ordered the operands, which may differ between the scalar and the
/// vector code, so every entry point hands the input's NaN back unchanged.
#[inline(always)]
fn nan_kept(x: f32, value: f32) -> f32 {
    if x.is_nan() {
        x
    } else {
        value
    }
}

/// `1 / (1 + e^-z)` in `f32`, as every entry point computes it.
#[inline(always)]
fn sigmoid_with<const FUSED: bool, const LOOKUP: bool>(z: f32) -> f32 {
    nan_kept(z, 1.0 / (1.0 + exp_with::<FUSED, LOOKUP>(-z)))
}

/// `e^x` in `f32`: correctly rounded for all but about 4 in 100 000 inputs, one unit in the
/// last place off for those; `0` below −103.98, `∞` above 88.73, NaN for NaN. Its multiply-adds
/// fuse where [`arithmetic::level`] says so.
///
/// ```
/// use backprop::logistic;
///
/// assert_eq!(logistic::exp(0.0), 1.0);
/// assert_eq!(logistic::exp(1.0), core::f32::consts::E);
/// assert_eq!(logistic::exp(-200.0), 0.0);
/// assert_eq!(logistic::exp(100.0), f32::INFINITY);
/// ```
#[inline]
pub fn exp(x: f32) -> f32 {
    exp_at(arithmetic::level(), x)
}

/// [`exp`] at `level`.
#[inline]
pub(crate) fn exp_at(level: Level, x: f32) -> f32 {
    scalar_at(level, x, exp_with::<false, true>, exp_with::<true, true>)
}

/// `plain(x)`, or `fused(x)` where `level` fuses multiply-adds: on x86-64 compiled with FMA
/// behind one call (the caller, generated code for the baseline, cannot inline FMA).
#[inline(always)]
fn scalar_at(level: Level, x: f32, plain: impl Fn(f32) -> f32, fused: impl Fn(f32) -> f32) -> f32 {
    if !level.fused {
        return plain(x);
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if supported(Isa::Avx2) {
        // SAFETY: `supported` detected AVX2 and FMA on this processor.
        return unsafe { x86::with_fma(fused, x) };
    }
    fused(x)
}

/// `sigmoid(z) = 1 / (1 + e^-z)` in `f32`, PyTorch's formula with [`exp`]: `0` below
/// z ≈ −88.7 (where `e^-z` overflows), `1` above z ≈ 16.6, NaN for NaN.
///
/// ```
/// use backprop::logistic;
///
/// assert_eq!(logistic::sigmoid(0.0), 0.5);
/// assert_eq!(logistic::sigmoid(-100.0), 0.0);
/// assert_eq!(logistic::sigmoid(f32::INFINITY), 1.0);
/// ```
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    sigmoid_at(arithmetic::level(), z)
}

/// [`sigmoid`] at `level`.
#[inline]
pub(crate) fn sigmoid_at(level: Level, z: f32) -> f32 {
    scalar_at(
        level,
        z,
        sigmoid_with::<false, true>,
        sigmoid_with::<true, true>,
    )
}

/// Layers with fewer entries than this call [`sigmoid`] on each, not the vector code.
const VECTOR_FROM: usize = 8;

/// Entries computed together: 16 `f32` (one AVX-512 register), as 16 `f64` lanes inside.
const LANES: usize = 16;

/// `a[i] = sigmoid(z[i])` in the widest vector instructions this processor has; the same bits
/// as [`sigmoid`] on each entry. `a` is written up to the shorter slice's length.
///
/// ```
/// use backprop::logistic;
///
/// let z = [-1.0f32, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
/// let mut a = [0.0f32; 9];
/// logistic::sigmoid_into(&z, &mut a);
/// assert!(a.iter().zip(&z).all(|(a, &z)| *a == logistic::sigmoid(z)));
/// ```
pub fn sigmoid_into(z: &[f32], a: &mut [f32]) {
    let n = z.len().min(a.len());
    a[..n].copy_from_slice(&z[..n]);
    sigmoid_in_place(&mut a[..n]);
}

/// Replaces each entry `v` of `values` by `sigmoid(v)`, as [`sigmoid_into`] does.
///
/// ```
/// use backprop::logistic;
///
/// let mut values = [0.0f32; 20];
/// logistic::sigmoid_in_place(&mut values);
/// assert_eq!(values, [0.5; 20]);
/// ```
pub fn sigmoid_in_place(values: &mut [f32]) {
    sigmoid_in_place_at(arithmetic::level(), values);
}

/// [`sigmoid_in_place`] at `level`.
pub(crate) fn sigmoid_in_place_at(level: Level, values: &mut [f32]) {
    blocks_at(level, values);
}

/// [`sigmoid_in_place`] on a layer's outputs (one column per sample), compiled for its shape:
/// every block of vector code, the padded last one included, has a constant size, so a small
/// layer runs no loop and calls no copy. Fewer than eight entries go through [`sigmoid`].
#[inline]
pub fn sigmoid_matrix<const R: usize, const C: usize>(values: &mut SMatrix<f32, R, C>) {
    sigmoid_matrix_at(arithmetic::level(), values);
}

/// [`sigmoid_matrix`] at `level`.
#[inline]
pub(crate) fn sigmoid_matrix_at<const R: usize, const C: usize>(
    level: Level,
    values: &mut SMatrix<f32, R, C>,
) {
    if R * C < VECTOR_FROM {
        for value in values.iter_mut() {
            *value = sigmoid_at(level, *value);
        }
        return;
    }
    blocks_at(level, values);
}

/// What the block loop runs over: a slice, or a matrix, whose length is then a constant of its
/// type (in each instruction set's copy of the loop too).
trait Entries {
    /// The entries, in memory order.
    fn entries(&mut self) -> &mut [f32];
}

impl Entries for [f32] {
    #[inline(always)]
    fn entries(&mut self) -> &mut [f32] {
        self
    }
}

impl<const R: usize, const C: usize> Entries for SMatrix<f32, R, C> {
    #[inline(always)]
    fn entries(&mut self) -> &mut [f32] {
        self.as_mut_slice()
    }
}

/// [`blocks`] in the widest instruction set `level` allows and this processor has (as the
/// kernels dispatch: AVX-512, else AVX2, else the baseline), fused as `level` says.
#[inline(always)]
fn blocks_at<V: Entries + ?Sized>(level: Level, values: &mut V) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if level.isa == Isa::Avx512 && supported(Isa::Avx512) {
            // SAFETY: `supported` detected AVX-512F and FMA on this processor.
            return unsafe { x86::blocks_avx512(values, level.fused) };
        }
        if level.isa != Isa::Baseline && supported(Isa::Avx2) {
            // SAFETY: `supported` detected AVX2 and FMA on this processor.
            return unsafe { x86::blocks_avx2(values, level.fused) };
        }
    }
    blocks_fused_or_not(values.entries(), level.fused);
}

/// [`blocks`] fused or not.
#[inline(always)]
fn blocks_fused_or_not(values: &mut [f32], fused: bool) {
    if fused {
        blocks::<true>(values);
    } else {
        blocks::<false>(values);
    }
}

/// The portable loop every instruction set compiles: blocks of [`LANES`] entries, the last one
/// padded with zeros, so that it too is one block of vector code.
#[inline(always)]
fn blocks<const FUSED: bool>(values: &mut [f32]) {
    let mut blocks = values.chunks_exact_mut(LANES);
    for block in &mut blocks {
        for value in block {
            *value = sigmoid_with::<FUSED, false>(*value);
        }
    }
    let rest = blocks.into_remainder();
    if !rest.is_empty() {
        let mut block = [0.0f32; LANES];
        block[..rest.len()].copy_from_slice(rest);
        for value in &mut block {
            *value = sigmoid_with::<FUSED, false>(*value);
        }
        rest.copy_from_slice(&block[..rest.len()]);
    }
}

/// The functions compiled for AVX-512 and for AVX2, each with FMA.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
    use super::Entries;

    /// `f(x)` compiled with FMA: `f` is one of the module's `#[inline(always)]` functions, a
    /// function item (its own type, so the call is direct and inlined here, with FMA).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn with_fma(f: impl Fn(f32) -> f32, x: f32) -> f32 {
        f(x)
    }

    /// [`super::blocks`] in AVX-512, fused or not.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn blocks_avx512<V: Entries + ?Sized>(values: &mut V, fused: bool) {
        super::blocks_fused_or_not(values.entries(), fused);
    }

    /// [`super::blocks`] in AVX2, fused or not.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn blocks_avx2<V: Entries + ?Sized>(values: &mut V, fused: bool) {
        super::blocks_fused_or_not(values.entries(), fused);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arithmetic::Isa;

    extern crate std;
    use std::vec::Vec;

    /// Every arithmetic this processor runs: each instruction set, fused and not.
    fn levels() -> Vec<Level> {
        let isas = [Isa::Avx512, Isa::Avx2, Isa::Baseline];
        let mut levels = Vec::new();
        for isa in isas
            .into_iter()
            .filter(|&isa| crate::kernels::supported(isa))
        {
            levels.push(Level { isa, fused: false });
            levels.push(Level { isa, fused: true });
        }
        levels
    }

    /// The distance between two finite or infinite floats in units in the last place.
    fn ulps(a: f32, b: f32) -> u64 {
        let ordered = |x: f32| {
            let bits = i64::from(x.to_bits() as i32);
            if bits < 0 {
                i64::from(i32::MIN) - bits
            } else {
                bits
            }
        };
        ordered(a).abs_diff(ordered(b))
    }

    /// `e^x` correctly rounded to `f32`, up to the (much smaller) error of `f64`'s own `exp`.
    fn exact_exp(x: f32) -> f32 {
        f64::from(x).exp() as f32
    }

    /// Every `stride`-th bit pattern, NaNs left out.
    fn sample(stride: u32) -> impl Iterator<Item = f32> {
        (0..=u32::MAX / stride)
            .map(move |i| f32::from_bits(i * stride))
            .filter(|x| !x.is_nan())
    }

    /// What the comparison of `exp` (and the sigmoid from it) against the exact values found.
    #[derive(Debug, Default)]
    struct Agreement {
        inputs: u64,
        /// `exp` not the correctly rounded value (and then one unit off).
        exp_off: u64,
        /// The sigmoid not PyTorch's formula on the correctly rounded `e^-z`.
        sigmoid_off: u64,
    }

    /// Compares `exp_at` and `sigmoid_at` with the exact values over `inputs`, asserting that
    /// every `exp` is within one unit in the last place, and every sigmoid is the formula on
    /// the exact `e^-z` wherever our `e^-z` is that value (within 3·2⁻²³ relative elsewhere).
    fn agreement(level: Level, inputs: impl Iterator<Item = f32>) -> Agreement {
        let mut found = Agreement::default();
        for x in inputs {
            found.inputs += 1;
            let (ours, exact) = (exp_at(level, x), exact_exp(x));
            let off = ulps(ours, exact);
            assert!(
                off <= 1,
                "{level:?}: exp({x:e}) = {ours:e}, exact {exact:e}"
            );
            found.exp_off += u64::from(off > 0);
            let formula = 1.0 / (1.0 + exact_exp(-x));
            let sigmoid = sigmoid_at(level, x);
            if exp_at(level, -x) == exact_exp(-x) {
                assert_eq!(
                    sigmoid.to_bits(),
                    formula.to_bits(),
                    "{level:?}: sigmoid({x:e})"
                );
            } else {
                // e^-z one unit off (2⁻²³ relative at most), then 1 + e^-z and the quotient
                // each rounded (2⁻²⁴ at most, in both): 3·2⁻²³ relative at most.
                found.sigmoid_off += 1;
                let bound = formula * 3.0 / 8_388_608.0;
                assert!(
                    (sigmoid - formula).abs() <= bound,
                    "{level:?}: sigmoid({x:e})"
                );
            }
        }
        found
    }

    #[test]
    fn exp_and_sigmoid_agree_with_the_exact_values_on_a_sample_of_every_float() {
        for level in levels() {
            let found = agreement(level, sample(1999));
            assert!(found.inputs > 2_000_000, "{found:?}");
            // Over all 2³² inputs 170 645 are one unit off, 4 in 100 000.
            assert!(found.exp_off * 5_000 < found.inputs, "{level:?}: {found:?}");
        }
    }

    #[test]
    fn exp_and_sigmoid_agree_with_the_exact_values_near_every_boundary() {
        let around = |centre: f32| {
            let bits = centre.to_bits();
            (bits.saturating_sub(20_000)..bits.saturating_add(20_000)).map(f32::from_bits)
        };
        // exp's overflow and underflow to subnormals and to 0 (the sigmoid's 0 at z = −88.72),
        // the sigmoid's 1 near 16.6, and 0.
        let centres = [
            88.72f32, -88.72, -87.33, -103.97, 16.6, -16.6, 0.0, 1e-30, -1e-30,
        ];
        for level in levels() {
            for centre in centres {
                agreement(level, around(centre).filter(|x| x.is_finite()));
            }
        }
    }

    #[test]
    fn special_values_are_the_exact_ones() {
        for level in levels() {
            assert!(exp_at(level, f32::NAN).is_nan() && sigmoid_at(level, f32::NAN).is_nan());
            for (x, e, s) in [
                (0.0f32, 1.0f32, 0.5f32),
                (-0.0, 1.0, 0.5),
                (f32::INFINITY, f32::INFINITY, 1.0),
                (f32::NEG_INFINITY, 0.0, 0.0),
                (f32::MAX, f32::INFINITY, 1.0),
                (f32::MIN, 0.0, 0.0),
                (1e13, f32::INFINITY, 1.0),
                (-1e13, 0.0, 0.0),
                (1e30, f32::INFINITY, 1.0),
                (-1e30, 0.0, 0.0),
                (100.0, f32::INFINITY, 1.0),
                (-150.0, 0.0, 0.0),
                (-104.0, 0.0, 0.0),
                (f32::MIN_POSITIVE, 1.0, 0.5),
            ] {
                assert_eq!(
                    exp_at(level, x).to_bits(),
                    e.to_bits(),
                    "{level:?}: exp({x:e})"
                );
                assert_eq!(
                    sigmoid_at(level, x).to_bits(),
                    s.to_bits(),
                    "{level:?}: sigmoid({x:e})"
                );
            }
            // The smallest subnormal: e^x for x just above ln(2^-150).
            assert_eq!(exp_at(level, -103.9), exact_exp(-103.9));
            assert!(exp_at(level, -103.9) > 0.0 && exp_at(level, -103.9) < f32::MIN_POSITIVE);
        }
    }

    #[test]
    fn a_nan_comes_back_unchanged_from_every_path() {
        let nans = [
            0x7fc0_0000u32,
            0xffc0_0000,
            0x7f80_0001,
            0xff80_0001,
            0x7fff_ffff,
            0xffa5_5a5a,
        ]
        .map(f32::from_bits);
        for level in levels() {
            for nan in nans {
                assert_eq!(exp_at(level, nan).to_bits(), nan.to_bits(), "{level:?}");
                assert_eq!(sigmoid_at(level, nan).to_bits(), nan.to_bits(), "{level:?}");
                let mut block = [nan; 19];
                sigmoid_in_place_at(level, &mut block);
                assert!(
                    block.iter().all(|v| v.to_bits() == nan.to_bits()),
                    "{level:?}"
                );
                let mut matrix = SMatrix::<f32, 10, 2>::repeat(nan);
                sigmoid_matrix_at(level, &mut matrix);
                assert!(
                    matrix.iter().all(|v| v.to_bits() == nan.to_bits()),
                    "{level:?}"
                );
            }
        }
    }

    #[test]
    fn sigmoid_into_writes_the_common_length_and_nothing_else() {
        let z = [1.0f32, -2.0, 3.0];
        let mut a = [9.0f32; 5];
        sigmoid_into(&z, &mut a);
        assert_eq!(a[..3], z.map(sigmoid));
        assert_eq!(a[3..], [9.0, 9.0]);
        let mut short = [9.0f32; 2];
        sigmoid_into(&z, &mut short);
        assert_eq!(short, [sigmoid(1.0), sigmoid(-2.0)]);
        sigmoid_into(&[], &mut short);
        sigmoid_in_place(&mut []);
        assert_eq!(short, [sigmoid(1.0), sigmoid(-2.0)]);
    }

    #[test]
    fn the_sigmoid_activation_in_f32_gives_the_scalar_bits() {
        use crate::activation::{Activation, Elementwise, Sigmoid};
        let z = SMatrix::<f32, 10, 3>::from_column_slice(&inputs(30));
        let mut a = SMatrix::<f32, 10, 3>::zeros();
        Activation::forward(&Sigmoid, &z, &mut a);
        let mut applied = z;
        Activation::apply(&Sigmoid, &mut applied);
        for ((&z, &a), &applied) in z.iter().zip(a.iter()).zip(applied.iter()) {
            let value: f32 = Elementwise::value(&Sigmoid, z);
            assert_eq!(a.to_bits(), value.to_bits(), "sigmoid({z:e})");
            assert_eq!(applied.to_bits(), value.to_bits(), "sigmoid({z:e})");
            assert_eq!(value.to_bits(), sigmoid(z).to_bits(), "sigmoid({z:e})");
        }
    }

    /// Inputs for the vector code: a spread over the sigmoid's whole range and the specials.
    fn inputs(count: usize) -> Vec<f32> {
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            1e30,
            -1e30,
        ];
        (0..count)
            .map(|i| match i % 11 {
                3 => specials[i % specials.len()],
                _ => (i as f32 * 0.618_034).fract() * 240.0 - 120.0,
            })
            .collect()
    }

    #[test]
    fn vector_code_gives_the_bits_of_the_scalar_function_at_every_level() {
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for level in levels() {
            for count in 0..70 {
                let z = inputs(count);
                let expected: Vec<f32> = z.iter().map(|&z| sigmoid_at(level, z)).collect();
                let mut found = z.clone();
                sigmoid_in_place_at(level, &mut found);
                assert_eq!(bits(&found), bits(&expected), "{level:?}, {count} entries");
            }
            macro_rules! shapes {
                ($(($r:literal, $c:literal)),*) => {$({
                    let z = inputs($r * $c);
                    let mut matrix = SMatrix::<f32, $r, $c>::from_column_slice(&z);
                    sigmoid_matrix_at(level, &mut matrix);
                    let expected: Vec<f32> = z.iter().map(|&z| sigmoid_at(level, z)).collect();
                    assert_eq!(bits(matrix.as_slice()), bits(&expected), "{level:?}, {}×{}", $r, $c);
                })*};
            }
            shapes!(
                (1, 1),
                (7, 1),
                (8, 1),
                (10, 1),
                (16, 1),
                (17, 1),
                (10, 3),
                (1, 33),
                (32, 4)
            );
        }
    }

    #[test]
    fn the_table_holds_the_products_vector_code_multiplies_out() {
        for k in 0..64u64 {
            let k = core::hint::black_box(k);
            assert_eq!(
                fraction::<true>(k).to_bits(),
                fraction::<false>(k).to_bits(),
                "{k}"
            );
            let exact = power_of_two(k % 32);
            assert!(
                (fraction::<true>(k) - exact).abs() <= 4.0 * f64::EPSILON,
                "{k}"
            );
        }
    }

    /// `2^(j/32)` by the standard library's `powf`, to check the factors.
    fn power_of_two(j: u64) -> f64 {
        2f64.powf(j as f64 / 32.0)
    }

    #[test]
    fn fused_and_unfused_give_the_same_sigmoid_and_rarely_another_exp() {
        let levels = levels();
        let (plain, fused) = (levels[0], levels[1]);
        let mut exp_differs = 0;
        for x in sample(7919) {
            exp_differs += usize::from(exp_at(plain, x) != exp_at(fused, x));
            let (a, b) = (sigmoid_at(plain, x), sigmoid_at(fused, x));
            assert_eq!(a.to_bits(), b.to_bits(), "sigmoid({x:e})");
        }
        // Measured over every third float: one exp differed. The sigmoid never does (all 2³²).
        assert!(
            exp_differs * 10_000 < u32::MAX as usize / 7919,
            "{exp_differs}"
        );
    }

    /// All 2³² inputs, fused and not (a scalar's bits depend on nothing else): `cargo test
    /// --release -p backprop-core logistic -- --ignored` (five minutes). Also checks that the
    /// sigmoid's bits are the same fused and not, and, on glibc, PyTorch's formula with the
    /// system's `expf` (measured with glibc 2.36: every input).
    #[test]
    #[ignore = "all 2^32 inputs: five minutes in release"]
    fn exp_and_sigmoid_on_every_float() {
        let every = || (0..=u32::MAX).map(f32::from_bits).filter(|x| !x.is_nan());
        let levels = levels();
        let (plain, fused) = (levels[0], levels[1]);
        for level in [plain, fused] {
            let found = agreement(level, every());
            std::eprintln!("{level:?}: {found:?}");
            assert!(
                found.exp_off * 20_000 < found.inputs,
                "{level:?}: {found:?}"
            );
        }
        let differ = every()
            .filter(|&z| sigmoid_at(plain, z).to_bits() != sigmoid_at(fused, z).to_bits())
            .count();
        assert_eq!(differ, 0, "sigmoids that differ fused and not");
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let differ = every()
                .filter(|&z| sigmoid_at(plain, z).to_bits() != (1.0 / (1.0 + (-z).exp())).to_bits())
                .count();
            assert_eq!(
                differ, 0,
                "sigmoids that differ from the formula with glibc's expf"
            );
        }
    }
}
