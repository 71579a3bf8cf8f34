//! Element conversions of weight files, without `std`: `F32`, `F64`, `F16` and `BF16` values to a
//! network's scalar, rounding to nearest as torch's `.to()` does (the 16-bit formats widen to
//! `f32` exactly; `F64` into `f32` rounds once).

use core::any::Any;

use crate::scalar::Scalar;

/// An IEEE half (`F16`, `torch.float16`) as `f32`: exact.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    match exponent {
        // Zero and subnormals: mantissa · 2⁻²⁴, exact in f32.
        0 => {
            let magnitude = mantissa as f32 * (1.0 / 16_777_216.0);
            if sign != 0 {
                -magnitude
            } else {
                magnitude
            }
        }
        // Infinities and NaNs (the payload kept in the top mantissa bits).
        31 => f32::from_bits(sign | 0x7f80_0000 | (mantissa << 13)),
        _ => f32::from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13)),
    }
}

/// A bfloat16 (`BF16`, `torch.bfloat16`) as `f32`: exact (the top half of an `f32`).
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// `f32` to IEEE half, rounding to nearest, ties to even (as `tensor.half()`).
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exponent == 0xff {
        // Infinity, or a quiet NaN.
        return sign | 0x7c00 | if mantissa != 0 { 0x200 } else { 0 };
    }
    let unbiased = exponent - 127;
    if unbiased > 15 {
        return sign | 0x7c00;
    }
    if unbiased >= -14 {
        // Normal: 10 mantissa bits, round the 13 dropped ones to nearest even.
        let half = (((unbiased + 15) as u32) << 10) | (mantissa >> 13);
        let rest = mantissa & 0x1fff;
        let round = rest > 0x1000 || (rest == 0x1000 && half & 1 == 1);
        // A carry into the exponent is the correct next value (up to infinity).
        return sign | (half + u32::from(round)) as u16;
    }
    if unbiased < -25 {
        return sign;
    }
    // Subnormal: the value in units of 2⁻²⁴, rounded to nearest even.
    let full = mantissa | 0x80_0000;
    let shift = (-unbiased - 14 + 13) as u32;
    let half = full >> shift;
    let rest = full & ((1 << shift) - 1);
    let midpoint = 1 << (shift - 1);
    let round = rest > midpoint || (rest == midpoint && half & 1 == 1);
    sign | (half + u32::from(round)) as u16
}

/// `f32` to bfloat16, rounding to nearest, ties to even (as `tensor.bfloat16()`).
pub fn f32_to_bf16(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        return ((bits >> 16) as u16) | 0x40;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// `x` as `T`: the same bits when `T` is `f32`, otherwise through `f64` (exact).
pub fn from_f32<T: Scalar>(x: f32) -> T {
    match (&x as &dyn Any).downcast_ref::<T>() {
        Some(&same) => same,
        None => nalgebra::convert(f64::from(x)),
    }
}

/// `x` as `T`: the same bits when `T` is `f64`, otherwise rounded to nearest.
pub fn from_f64<T: Scalar>(x: f64) -> T {
    match (&x as &dyn Any).downcast_ref::<T>() {
        Some(&same) => same,
        None => nalgebra::convert(x),
    }
}

/// One little-endian element of `dtype` (`F32`, `F64`, `F16` or `BF16`) as `T`.
pub fn element<T: Scalar>(dtype: &str, chunk: &[u8]) -> T {
    match (dtype, chunk) {
        ("F32", &[a, b, c, d]) => from_f32(f32::from_le_bytes([a, b, c, d])),
        ("F16", &[a, b]) => from_f32(f16_to_f32(u16::from_le_bytes([a, b]))),
        ("BF16", &[a, b]) => from_f32(bf16_to_f32(u16::from_le_bytes([a, b]))),
        (_, &[a, b, c, d, e, f, g, h]) => from_f64(f64::from_le_bytes([a, b, c, d, e, f, g, h])),
        _ => T::zero(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_widen_exactly_and_narrow_to_nearest_even() {
        // Hand values: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff (largest), 2⁻²⁴ = 0x0001.
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        // Every finite half round-trips through f32.
        for bits in 0..=u16::MAX {
            let wide = f16_to_f32(bits);
            if wide.is_finite() {
                assert_eq!(f32_to_f16(wide), bits, "{bits:#06x}");
            }
        }
        // 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰: ties to even, 1.0.
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
    }

    #[test]
    fn bfloats_are_the_top_half_of_an_f32() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
        for bits in 0..=u16::MAX {
            let wide = bf16_to_f32(bits);
            if !wide.is_nan() {
                assert_eq!(f32_to_bf16(wide), bits);
            }
        }
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties to even.
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
        assert_eq!(f32_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
    }
}
