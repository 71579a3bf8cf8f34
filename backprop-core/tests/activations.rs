//! Tests of the activation functions: hand-derived values, central finite differences of the
//! derivatives (and of softmax's vector-Jacobian product), PyTorch's conventions at the kinks,
//! numerical stability in `f32` at large |z|, and the matrix forms against the scalar ones.
//!
//! No expected number here is computed by the code under test: each comes from a hand
//! derivation, a published constant, or the formula written out with `f64` functions.

use std::f64::consts::{LN_2, PI};

use backprop_core::activation::*;
use nalgebra::{SMatrix, SVector};

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// A tiny deterministic generator (Knuth's MMIX LCG), so the tests need no extra dependency.
struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// Asserts `|found − expected| ≤ tol · max(1, |expected|)`.
#[track_caller]
fn assert_close(found: f64, expected: f64, tol: f64, what: &str) {
    assert!(
        (found - expected).abs() <= tol * expected.abs().max(1.0),
        "{what}: expected {expected:e}, found {found:e}"
    );
}

/// `f(z)` in f64 through [`Elementwise`].
fn val<A: Elementwise<f64>>(act: &A, z: f64) -> f64 {
    act.value(z)
}

/// `f'(z)` in f64 through [`Elementwise`], given `a = f(z)` as the trait asks.
fn der<A: Elementwise<f64>>(act: &A, z: f64) -> f64 {
    act.derivative(z, act.value(z))
}

/// `f(z)` and ∂loss/∂z for ∂loss/∂a = 1 through [`Activation`] on a 1×1 matrix.
fn via_matrix<T: backprop_core::scalar::Scalar, A: Activation<T>>(act: &A, z: T) -> (T, T) {
    let z = SMatrix::<T, 1, 1>::new(z);
    let mut a = SMatrix::<T, 1, 1>::zeros();
    act.forward(&z, &mut a);
    let mut g = SMatrix::<T, 1, 1>::new(T::one());
    act.backward(&z, &a, &mut g);
    (a[0], g[0])
}

/// Softmax of one column through [`Activation`].
fn softmax<const N: usize>(z: [f64; N]) -> [f64; N] {
    let z = SVector::<f64, N>::from(z);
    let mut a = SVector::<f64, N>::zeros();
    Softmax.forward(&z, &mut a);
    a.into()
}

/// The standard normal CDF Φ(1), a published constant (e.g. any table of the normal CDF).
const PHI_1: f64 = 0.841_344_746_068_542_9;

// ---------------------------------------------------------------------------------------------
// 1. Hand-derived values.
// ---------------------------------------------------------------------------------------------

const EXACT: f64 = 1e-15;

#[test]
fn identity_values() {
    assert_eq!(val(&Identity, -2.5), -2.5);
    assert_eq!(val(&Identity, 7.0), 7.0);
    assert_eq!(der(&Identity, -2.5), 1.0);
    assert_eq!(der(&Identity, 0.0), 1.0);
}

#[test]
fn relu_values() {
    assert_eq!(val(&Relu, -2.0), 0.0);
    assert_eq!(val(&Relu, 3.0), 3.0);
    assert_eq!(val(&Relu, 0.0), 0.0);
    assert_eq!(der(&Relu, -2.0), 0.0);
    assert_eq!(der(&Relu, 3.0), 1.0);
}

#[test]
fn leaky_relu_values() {
    let l = LeakyRelu::<f64>::new(0.2);
    assert_close(val(&l, -2.0), -0.4, EXACT, "leaky_relu(0.2)(-2)");
    assert_eq!(val(&l, 3.0), 3.0);
    assert_eq!(der(&l, -2.0), 0.2);
    assert_eq!(der(&l, 3.0), 1.0);
    // PyTorch's default negative_slope is 0.01.
    let d = LeakyRelu::<f64>::default();
    assert_eq!(d.slope, 0.01);
    assert_close(val(&d, -5.0), -0.05, EXACT, "leaky_relu(-5)");
}

#[test]
fn sigmoid_values() {
    // σ(0) = 1/(1+1) = 1/2; σ(ln 3) = 1/(1 + 1/3) = 3/4; σ(−ln 3) = 1/(1 + 3) = 1/4.
    let ln3 = 3f64.ln();
    assert_eq!(val(&Sigmoid, 0.0), 0.5);
    assert_close(val(&Sigmoid, ln3), 0.75, EXACT, "sigmoid(ln 3)");
    assert_close(val(&Sigmoid, -ln3), 0.25, EXACT, "sigmoid(-ln 3)");
    assert_close(sigmoid(ln3), 0.75, EXACT, "fn sigmoid(ln 3)");
    assert_close(sigmoid(-ln3), 0.25, EXACT, "fn sigmoid(-ln 3)");
    // σ' = σ(1−σ): 1/4 at 0, 3/16 at ±ln 3.
    assert_eq!(der(&Sigmoid, 0.0), 0.25);
    assert_close(der(&Sigmoid, ln3), 3.0 / 16.0, EXACT, "sigmoid'(ln 3)");
    assert_close(der(&Sigmoid, -ln3), 3.0 / 16.0, EXACT, "sigmoid'(-ln 3)");
}

#[test]
fn tanh_values() {
    // tanh(ln 2) = (2 − 1/2)/(2 + 1/2) = 3/5; tanh' = 1 − tanh² = 16/25.
    assert_eq!(val(&Tanh, 0.0), 0.0);
    assert_eq!(der(&Tanh, 0.0), 1.0);
    assert_close(val(&Tanh, LN_2), 0.6, EXACT, "tanh(ln 2)");
    assert_close(val(&Tanh, -LN_2), -0.6, EXACT, "tanh(-ln 2)");
    assert_close(der(&Tanh, LN_2), 0.64, EXACT, "tanh'(ln 2)");
}

#[test]
fn softplus_values() {
    // softplus(0) = ln(1 + 1) = ln 2; softplus(ln 3) = ln(1 + 3) = 2 ln 2;
    // softplus(−ln 3) = ln(4/3).
    let ln3 = 3f64.ln();
    assert_close(val(&Softplus, 0.0), LN_2, EXACT, "softplus(0)");
    assert_close(val(&Softplus, ln3), 2.0 * LN_2, EXACT, "softplus(ln 3)");
    assert_close(
        val(&Softplus, -ln3),
        (4.0f64 / 3.0).ln(),
        EXACT,
        "softplus(-ln 3)",
    );
    // Above PyTorch's threshold of 20 softplus returns its input exactly.
    assert_eq!(val(&Softplus, 25.0), 25.0);
    assert_eq!(val(&Softplus, 20.5), 20.5);
    // At the threshold itself (not above it) it is still ln(1 + e^z) = z + ln(1 + e^−z).
    assert_close(
        val(&Softplus, 20.0),
        20.0 + (-20f64).exp().ln_1p(),
        EXACT,
        "softplus(20)",
    );
    // softplus' = σ: 1/2 at 0, 3/4 at ln 3, 1 above the threshold.
    assert_eq!(der(&Softplus, 0.0), 0.5);
    assert_close(der(&Softplus, ln3), 0.75, EXACT, "softplus'(ln 3)");
    assert_eq!(der(&Softplus, 25.0), 1.0);
}

#[test]
fn elu_values() {
    let e1 = Elu::<f64>::new(1.0);
    assert_close(val(&e1, -1.0), (-1f64).exp() - 1.0, EXACT, "elu(1)(-1)");
    assert_eq!(val(&e1, 3.0), 3.0);
    assert_eq!(val(&e1, 0.0), 0.0);
    assert_close(der(&e1, -1.0), (-1f64).exp(), EXACT, "elu(1)'(-1)");
    assert_eq!(der(&e1, 3.0), 1.0);
    // α = 2 at −ln 2: 2 · (1/2 − 1) = −1; derivative α e^z = 1.
    let e2 = Elu::<f64>::new(2.0);
    assert_close(val(&e2, -LN_2), -1.0, EXACT, "elu(2)(-ln 2)");
    assert_close(der(&e2, -LN_2), 1.0, EXACT, "elu(2)'(-ln 2)");
    assert_eq!(Elu::<f64>::default().alpha, 1.0);
}

#[test]
fn gelu_values() {
    // gelu(z) = z Φ(z): gelu(0) = 0; gelu(1) = Φ(1); gelu(−1) = −Φ(−1) = −(1 − Φ(1)).
    assert_eq!(val(&Gelu, 0.0), 0.0);
    assert_close(val(&Gelu, 1.0), PHI_1, EXACT, "gelu(1)");
    assert_close(val(&Gelu, -1.0), -(1.0 - PHI_1), 1e-14, "gelu(-1)");
    // gelu' = Φ(z) + z φ(z), φ(z) = e^(−z²/2)/√(2π): 1/2 at 0; Φ(1) + φ(1) at 1.
    let phi1 = (-0.5f64).exp() / (2.0 * PI).sqrt();
    assert_close(der(&Gelu, 0.0), 0.5, EXACT, "gelu'(0)");
    assert_close(der(&Gelu, 1.0), PHI_1 + phi1, EXACT, "gelu'(1)");
    assert_close(der(&Gelu, -1.0), (1.0 - PHI_1) - phi1, 1e-14, "gelu'(-1)");
}

#[test]
fn silu_values() {
    // silu(z) = z σ(z): silu(1) = 1/(1 + e^−1); silu(ln 3) = (3/4) ln 3.
    let ln3 = 3f64.ln();
    assert_eq!(val(&Silu, 0.0), 0.0);
    assert_close(
        val(&Silu, 1.0),
        1.0 / (1.0 + (-1f64).exp()),
        EXACT,
        "silu(1)",
    );
    assert_close(val(&Silu, ln3), 0.75 * ln3, EXACT, "silu(ln 3)");
    assert_close(val(&Silu, -ln3), -0.25 * ln3, EXACT, "silu(-ln 3)");
    // silu' = σ(1 + z(1 − σ)): 1/2 at 0; (3/4)(1 + ln 3 / 4) at ln 3.
    assert_eq!(der(&Silu, 0.0), 0.5);
    assert_close(
        der(&Silu, ln3),
        0.75 * (1.0 + ln3 / 4.0),
        EXACT,
        "silu'(ln 3)",
    );
}

#[test]
fn softmax_values() {
    assert_eq!(softmax([0.0, 0.0]), [0.5, 0.5]);
    // softmax([0, ln 3]) = [1, 3]/4.
    let s = softmax([0.0, 3f64.ln()]);
    assert_close(s[0], 0.25, EXACT, "softmax([0, ln 3])[0]");
    assert_close(s[1], 0.75, EXACT, "softmax([0, ln 3])[1]");
    // softmax([1, 2, 3])_i = e^i / (e + e² + e³).
    let sum = 1f64.exp() + 2f64.exp() + 3f64.exp();
    let s = softmax([1.0, 2.0, 3.0]);
    for (i, &si) in s.iter().enumerate() {
        let expected = ((i + 1) as f64).exp() / sum;
        assert_close(si, expected, EXACT, &format!("softmax([1,2,3])[{i}]"));
    }
    // Shift invariance: softmax([1001, 1002, 1003]) is the same.
    let t = softmax([1001.0, 1002.0, 1003.0]);
    for i in 0..3 {
        assert_close(t[i], s[i], EXACT, "softmax shift");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Derivatives against central finite differences.
// ---------------------------------------------------------------------------------------------

const H: f64 = 1e-6;

/// Checks `derivative` and `Activation::backward` against `(f(z+h) − f(z−h)) / 2h` at 400 seeded
/// points in [−30, 30], skipping points within 1e-3 of any of `kinks`.
fn check_fd<A: Elementwise<f64> + Activation<f64>>(name: &str, act: &A, kinks: &[f64], seed: u64) {
    let mut rng = Lcg::new(seed);
    let mut points: Vec<f64> = (0..400).map(|_| rng.range(-30.0, 30.0)).collect();
    points.extend([-30.0, -5.0, -1.0, -0.5, 0.5, 1.0, 5.0, 30.0]);
    let mut checked = 0;
    for z in points {
        if kinks.iter().any(|k| (z - k).abs() < 1e-3) {
            continue;
        }
        let fd = (act.value(z + H) - act.value(z - H)) / (2.0 * H);
        let d = der(act, z);
        let tol = 1e-6 * d.abs().max(fd.abs()) + 1e-8;
        assert!(
            (d - fd).abs() <= tol,
            "{name}'({z}): derivative {d:e}, finite difference {fd:e}"
        );
        let (a, g) = via_matrix(act, z);
        assert_eq!(a, act.value(z), "{name}: forward({z}) vs value");
        assert!(
            (g - fd).abs() <= tol,
            "{name}'({z}): backward {g:e}, finite difference {fd:e}"
        );
        checked += 1;
    }
    assert!(checked > 350, "{name}: only {checked} points checked");
}

#[test]
fn finite_differences_elementwise() {
    check_fd("identity", &Identity, &[], 1);
    check_fd("relu", &Relu, &[0.0], 2);
    check_fd("leaky_relu(0.01)", &LeakyRelu::<f64>::default(), &[0.0], 3);
    check_fd("leaky_relu(0.2)", &LeakyRelu::<f64>::new(0.2), &[0.0], 4);
    check_fd("sigmoid", &Sigmoid, &[], 5);
    check_fd("tanh", &Tanh, &[], 6);
    // Softplus jumps by ln(1 + e^−20) ≈ 2e-9 at PyTorch's threshold 20 (a tiny step in the
    // value, by design), so the finite difference is skipped near 20 as at a kink.
    check_fd("softplus", &Softplus, &[20.0], 7);
    check_fd("elu(1)", &Elu::<f64>::default(), &[0.0], 8);
    check_fd("elu(1.5)", &Elu::<f64>::new(1.5), &[0.0], 9);
    check_fd("gelu", &Gelu, &[], 10);
    check_fd("silu", &Silu, &[], 11);
}

/// Compares softmax's backward (a vector-Jacobian product) with the central finite differences of
/// `φ(z) = s(z) · g` for a random `g`.
fn check_softmax_vjp<const N: usize>(rng: &mut Lcg, spread: f64) {
    let z = SVector::<f64, N>::from_fn(|_, _| rng.range(-spread, spread));
    let g = SVector::<f64, N>::from_fn(|_, _| rng.range(-1.0, 1.0));
    let phi = |z: &SVector<f64, N>| {
        let mut a = SVector::<f64, N>::zeros();
        Softmax.forward(z, &mut a);
        a.dot(&g)
    };
    let mut a = SVector::<f64, N>::zeros();
    Softmax.forward(&z, &mut a);
    let mut vjp = g;
    Softmax.backward(&z, &a, &mut vjp);
    for i in 0..N {
        let mut zp = z;
        zp[i] += H;
        let mut zm = z;
        zm[i] -= H;
        let fd = (phi(&zp) - phi(&zm)) / (2.0 * H);
        let tol = 1e-6 * vjp[i].abs().max(fd.abs()) + 1e-8;
        assert!(
            (vjp[i] - fd).abs() <= tol,
            "softmax vjp at z = {z:?}, g = {g:?}, entry {i}: backward {:e}, finite difference {fd:e}",
            vjp[i]
        );
    }
}

#[test]
fn finite_differences_softmax() {
    let mut rng = Lcg::new(42);
    for _ in 0..100 {
        check_softmax_vjp::<2>(&mut rng, 3.0);
        check_softmax_vjp::<3>(&mut rng, 3.0);
        check_softmax_vjp::<5>(&mut rng, 3.0);
        check_softmax_vjp::<4>(&mut rng, 30.0);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. PyTorch's conventions at the kinks.
// ---------------------------------------------------------------------------------------------

#[test]
fn pytorch_kink_conventions() {
    // relu'(0) = 0 (threshold_backward passes the gradient only where z > 0).
    assert_eq!(der(&Relu, 0.0), 0.0);
    assert_eq!(via_matrix(&Relu, 0.0f64).1, 0.0);
    assert_eq!(via_matrix(&Relu, 0.0f32).1, 0.0);
    // leaky_relu'(0) = negative_slope.
    let l = LeakyRelu::<f64>::new(0.2);
    assert_eq!(der(&l, 0.0), 0.2);
    assert_eq!(via_matrix(&l, 0.0).1, 0.2);
    assert_eq!(der(&LeakyRelu::<f64>::default(), 0.0), 0.01);
    // elu'(0) = α: PyTorch's elu_backward uses the negative branch α e^z for z <= 0.
    let e = Elu::<f64>::new(1.5);
    assert_eq!(der(&e, 0.0), 1.5);
    assert_eq!(via_matrix(&e, 0.0).1, 1.5);
    assert_eq!(der(&Elu::<f64>::default(), 0.0), 1.0);
    // -0.0 is the kink too.
    assert_eq!(der(&Relu, -0.0), 0.0);
    assert_eq!(der(&l, -0.0), 0.2);
    assert_eq!(der(&e, -0.0), 1.5);
}

#[test]
fn relu_backward_gives_positive_zero_where_inactive() {
    // threshold_backward writes an exact +0, not grad · 0 (which is −0 for a negative grad).
    let z = SMatrix::<f64, 1, 3>::new(-2.0, 0.0, 3.0);
    let mut a = SMatrix::<f64, 1, 3>::zeros();
    Relu.forward(&z, &mut a);
    let mut g = SMatrix::<f64, 1, 3>::new(-1.0, -1.0, -1.0);
    Relu.backward(&z, &a, &mut g);
    assert_eq!(g[0].to_bits(), 0.0f64.to_bits());
    assert_eq!(g[1].to_bits(), 0.0f64.to_bits());
    assert_eq!(g[2], -1.0);
}

#[test]
fn relu_keeps_nan_and_negative_zero_as_pytorch_does() {
    // torch.relu([nan, -0.]) is [nan, -0.] (clamp_min keeps both); backward with grad −1 gives
    // [−1, 0] (threshold_backward zeroes only where the output is ≤ 0); leaky_relu keeps NaN too.
    assert!(val(&Relu, f64::NAN).is_nan());
    assert_eq!(val(&Relu, -0.0).to_bits(), (-0.0f64).to_bits());
    let z = SMatrix::<f64, 1, 2>::new(f64::NAN, -0.0);
    let mut a = SMatrix::<f64, 1, 2>::zeros();
    Relu.forward(&z, &mut a);
    assert!(a[0].is_nan());
    let mut g = SMatrix::<f64, 1, 2>::new(-1.0, -1.0);
    Relu.backward(&z, &a, &mut g);
    assert_eq!(g[0], -1.0);
    assert_eq!(g[1].to_bits(), 0.0f64.to_bits());
    assert!(val(&LeakyRelu::<f64>::new(0.2), f64::NAN).is_nan());
    assert_eq!(der(&LeakyRelu::<f64>::new(0.2), f64::NAN), 0.2);
}

// ---------------------------------------------------------------------------------------------
// 4. Stability in f32 at large |z|.
// ---------------------------------------------------------------------------------------------

const BIG: [f32; 4] = [-1e4, -100.0, 100.0, 1e4];

/// Forward and backward (with ∂loss/∂a = 1) of `act` at [−1e4, −100, 100, 1e4] in f32, all
/// asserted finite.
fn f32_big<A: Activation<f32>>(name: &str, act: &A) -> ([f32; 4], [f32; 4]) {
    let z = SMatrix::<f32, 1, 4>::from_row_slice(&BIG);
    let mut a = SMatrix::<f32, 1, 4>::zeros();
    act.forward(&z, &mut a);
    let mut g = SMatrix::<f32, 1, 4>::repeat(1.0);
    act.backward(&z, &a, &mut g);
    for i in 0..4 {
        assert!(a[i].is_finite(), "{name}({}) = {}", BIG[i], a[i]);
        assert!(g[i].is_finite(), "{name}'({}) = {}", BIG[i], g[i]);
    }
    let a: [f32; 4] = std::array::from_fn(|i| a[i]);
    let g: [f32; 4] = std::array::from_fn(|i| g[i]);
    (a, g)
}

#[track_caller]
fn assert_f32(found: [f32; 4], expected: [f32; 4], what: &str) {
    for i in 0..4 {
        let tol = 1e-6 * expected[i].abs().max(1.0);
        assert!(
            (found[i] - expected[i]).abs() <= tol,
            "{what} at z = {}: expected {}, found {}",
            BIG[i],
            expected[i],
            found[i]
        );
    }
}

#[test]
fn stability_f32() {
    let (a, g) = f32_big("identity", &Identity);
    assert_f32(a, BIG, "identity");
    assert_f32(g, [1.0; 4], "identity'");

    let (a, g) = f32_big("relu", &Relu);
    assert_f32(a, [0.0, 0.0, 100.0, 1e4], "relu");
    assert_f32(g, [0.0, 0.0, 1.0, 1.0], "relu'");

    let (a, g) = f32_big("leaky_relu", &LeakyRelu::<f32>::default());
    assert_f32(a, [-100.0, -1.0, 100.0, 1e4], "leaky_relu");
    assert_f32(g, [0.01, 0.01, 1.0, 1.0], "leaky_relu'");

    let (a, g) = f32_big("sigmoid", &Sigmoid);
    assert_f32(a, [0.0, 0.0, 1.0, 1.0], "sigmoid");
    assert_eq!(a[0], 0.0, "sigmoid(-1e4)");
    assert_eq!(a[3], 1.0, "sigmoid(1e4)");
    assert_f32(g, [0.0; 4], "sigmoid'");
    assert_eq!(sigmoid(1e4f32), 1.0);
    assert_eq!(sigmoid(-1e4f32), 0.0);

    let (a, g) = f32_big("tanh", &Tanh);
    assert_f32(a, [-1.0, -1.0, 1.0, 1.0], "tanh");
    assert_f32(g, [0.0; 4], "tanh'");

    let (a, g) = f32_big("softplus", &Softplus);
    assert_f32(a, [0.0, 0.0, 100.0, 1e4], "softplus");
    assert_eq!(a[0], 0.0, "softplus(-1e4)");
    assert_eq!(a[3], 1e4, "softplus(1e4)");
    assert_f32(g, [0.0, 0.0, 1.0, 1.0], "softplus'");

    let (a, g) = f32_big("elu", &Elu::<f32>::new(1.5));
    assert_f32(a, [-1.5, -1.5, 100.0, 1e4], "elu");
    assert_f32(g, [0.0, 0.0, 1.0, 1.0], "elu'");

    let (a, g) = f32_big("gelu", &Gelu);
    assert_f32(a, [0.0, 0.0, 100.0, 1e4], "gelu");
    assert_eq!(a[3], 1e4, "gelu(1e4)");
    assert_f32(g, [0.0, 0.0, 1.0, 1.0], "gelu'");

    let (a, g) = f32_big("silu", &Silu);
    assert_f32(a, [0.0, 0.0, 100.0, 1e4], "silu");
    assert_eq!(a[0], 0.0, "silu(-1e4) is ±0"); // −0 == 0
    assert_f32(g, [0.0, 0.0, 1.0, 1.0], "silu'");
}

#[test]
fn stability_f32_softmax() {
    let z = SVector::<f32, 3>::new(1e4, -1e4, 0.0);
    let mut a = SVector::<f32, 3>::zeros();
    Softmax.forward(&z, &mut a);
    assert_eq!(a, SVector::<f32, 3>::new(1.0, 0.0, 0.0));
    let mut g = SVector::<f32, 3>::new(1.0, 2.0, 3.0);
    Softmax.backward(&z, &a, &mut g);
    assert!(g.iter().all(|x| x.is_finite()), "softmax backward {g:?}");
    // a = e₁ exactly, so ∂/∂z = a ⊙ (g − g·a) = [1 · (1 − 1), 0, 0] = 0.
    assert!(g.iter().all(|&x| x == 0.0), "softmax backward {g:?}");

    // Columns of ±100 and ±1e4 in one matrix.
    let z = SMatrix::<f32, 2, 2>::new(100.0, 1e4, -100.0, -1e4);
    let mut a = SMatrix::<f32, 2, 2>::zeros();
    Softmax.forward(&z, &mut a);
    assert!(a.iter().all(|x| x.is_finite()), "softmax {a:?}");
    // Column 0 is [100, −100]: [1/(1 + e^−200), e^−200/(…)] = [1, 0] in f32.
    assert_eq!(a, SMatrix::<f32, 2, 2>::new(1.0, 1.0, 0.0, 0.0));
}

// ---------------------------------------------------------------------------------------------
// 5. Matrix forms against the scalar ones.
// ---------------------------------------------------------------------------------------------

/// `forward` and `backward` on a 3×2 matrix equal `value` and `chain` entry by entry.
fn check_matrix_elementwise<A: Elementwise<f64> + Activation<f64>>(name: &str, act: &A) {
    let z = SMatrix::<f64, 3, 2>::new(-2.0, 0.5, -0.25, 3.0, 0.0, -7.5);
    let g0 = SMatrix::<f64, 3, 2>::new(0.3, -1.2, 2.0, -0.7, 1.1, 0.4);
    let mut a = SMatrix::<f64, 3, 2>::zeros();
    act.forward(&z, &mut a);
    let mut g = g0;
    act.backward(&z, &a, &mut g);
    for c in 0..2 {
        for r in 0..3 {
            let zi = z[(r, c)];
            let ai = act.value(zi);
            assert_eq!(a[(r, c)], ai, "{name}: forward at ({r}, {c})");
            let expected = g0[(r, c)] * act.derivative(zi, ai);
            assert_eq!(g[(r, c)], expected, "{name}: backward at ({r}, {c})");
        }
    }
}

#[test]
fn matrix_elementwise_matches_scalar() {
    check_matrix_elementwise("identity", &Identity);
    check_matrix_elementwise("relu", &Relu);
    check_matrix_elementwise("leaky_relu", &LeakyRelu::<f64>::new(0.2));
    check_matrix_elementwise("sigmoid", &Sigmoid);
    check_matrix_elementwise("tanh", &Tanh);
    check_matrix_elementwise("softplus", &Softplus);
    check_matrix_elementwise("elu", &Elu::<f64>::new(1.5));
    check_matrix_elementwise("gelu", &Gelu);
    check_matrix_elementwise("silu", &Silu);
}

#[test]
fn matrix_softmax_is_per_column() {
    let z = SMatrix::<f64, 3, 2>::new(1.0, -0.5, 2.0, 4.0, 3.0, 0.0);
    let g0 = SMatrix::<f64, 3, 2>::new(0.3, -1.2, 2.0, -0.7, 1.1, 0.4);
    let mut a = SMatrix::<f64, 3, 2>::zeros();
    Softmax.forward(&z, &mut a);
    let mut g = g0;
    Softmax.backward(&z, &a, &mut g);
    for c in 0..2 {
        // Each column through the 3-vector form.
        let zc: SVector<f64, 3> = z.column(c).into_owned();
        let mut ac = SVector::<f64, 3>::zeros();
        Softmax.forward(&zc, &mut ac);
        let mut gc: SVector<f64, 3> = g0.column(c).into_owned();
        Softmax.backward(&zc, &ac, &mut gc);
        assert_eq!(a.column(c), ac, "softmax forward, column {c}");
        assert_eq!(g.column(c), gc, "softmax backward, column {c}");
        // And against the formulas: s_i = e^(z_i) / Σ_j e^(z_j); ∂/∂z_i = s_i (g_i − Σ_j g_j s_j).
        let sum: f64 = (0..3).map(|j| z[(j, c)].exp()).sum();
        let s: Vec<f64> = (0..3).map(|i| z[(i, c)].exp() / sum).collect();
        let dot: f64 = (0..3).map(|j| g0[(j, c)] * s[j]).sum();
        for i in 0..3 {
            assert_close(a[(i, c)], s[i], 1e-15, "softmax formula");
            assert_close(
                g[(i, c)],
                s[i] * (g0[(i, c)] - dot),
                1e-14,
                "softmax vjp formula",
            );
        }
        let total: f64 = a.column(c).sum();
        assert_close(total, 1.0, 1e-15, "softmax column sum");
    }
}
