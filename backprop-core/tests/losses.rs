//! Tests of the loss functions: hand-derived values, central finite differences of the gradients,
//! numerical stability in `f32`, NaN behaviour and the class-index targets.

use backprop_core::loss::*;
use backprop_core::scalar::*;
use nalgebra::SMatrix;

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

    fn matrix<const N: usize, const B: usize>(&mut self, lo: f64, hi: f64) -> SMatrix<f64, N, B> {
        SMatrix::from_fn(|_, _| self.range(lo, hi))
    }

    fn index(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n - 1)
    }
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance * expected.abs().max(1.0),
        "{what}: got {actual}, expected {expected}"
    );
}

fn assert_matrix_close<const N: usize, const B: usize>(
    actual: &SMatrix<f64, N, B>,
    expected: &SMatrix<f64, N, B>,
    what: &str,
) {
    for (i, (&a, &e)) in actual.iter().zip(expected.iter()).enumerate() {
        assert_close(a, e, 1e-12, &format!("{what}, entry {i}"));
    }
}

/// Checks `value == gradient`'s return, and each gradient entry against a central finite
/// difference `(L(o + h e_i) - L(o - h e_i)) / 2h` with `h = 1e-6`.
fn check_gradient<const N: usize, const B: usize, Y, L: Loss<f64, N, B, Y>>(
    loss: &L,
    output: &SMatrix<f64, N, B>,
    target: &Y,
    what: &str,
) {
    let h = 1e-6;
    let mut grad = SMatrix::<f64, N, B>::from_element(f64::NAN);
    let returned = loss.gradient(output, target, &mut grad);
    let value = loss.value(output, target);
    assert_close(
        returned,
        value,
        1e-14,
        &format!("{what}: gradient's returned loss"),
    );
    for i in 0..N * B {
        let mut plus = *output;
        plus[i] += h;
        let mut minus = *output;
        minus[i] -= h;
        let numeric = (loss.value(&plus, target) - loss.value(&minus, target)) / (2.0 * h);
        let analytic = grad[i];
        assert!(
            (analytic - numeric).abs() <= 1e-6 * analytic.abs().max(numeric.abs()) + 1e-9,
            "{what}: entry {i} of the gradient is {analytic}, finite difference gives {numeric} \
             (output {output:?})"
        );
    }
}

const POINTS: u64 = 6;

/// Finite-difference checks of an element-wise loss at `POINTS` random points, for one shape.
/// Residuals within `margin` of a kink (`kinks`, in absolute value) are moved away from it.
fn check_elementwise<const N: usize, const B: usize, L: Loss<f64, N, B>>(
    loss: &L,
    seed: u64,
    output_range: (f64, f64),
    target_range: (f64, f64),
    kinks: &[f64],
) {
    let mut rng = Lcg::new(seed);
    for point in 0..POINTS {
        let target: SMatrix<f64, N, B> = rng.matrix(target_range.0, target_range.1);
        let mut output: SMatrix<f64, N, B> = rng.matrix(output_range.0, output_range.1);
        for (o, &t) in output.iter_mut().zip(target.iter()) {
            for &kink in kinks {
                let r = *o - t;
                if (r.abs() - kink).abs() < 1e-3 {
                    *o += 0.01;
                }
            }
        }
        check_gradient(
            loss,
            &output,
            &target,
            &format!("{}, {N}x{B}, point {point}", core::any::type_name::<L>()),
        );
    }
}

macro_rules! elementwise_gradient_tests {
    ($($name:ident: $loss:expr, $output:expr, $target:expr, $kinks:expr;)*) => {$(
        #[test]
        fn $name() {
            let loss = $loss;
            check_elementwise::<3, 1, _>(&loss, 1, $output, $target, $kinks);
            check_elementwise::<3, 4, _>(&loss, 2, $output, $target, $kinks);
            check_elementwise::<1, 5, _>(&loss, 3, $output, $target, $kinks);
        }
    )*};
}

elementwise_gradient_tests! {
    mse_gradient_matches_finite_differences: Mse, (-3.0, 3.0), (-3.0, 3.0), &[];
    l1_gradient_matches_finite_differences: L1, (-3.0, 3.0), (-3.0, 3.0), &[0.0];
    huber_gradient_matches_finite_differences: Huber::default(), (-3.0, 3.0), (-3.0, 3.0), &[0.0, 1.0];
    huber_small_delta_gradient_matches_finite_differences: Huber::new(0.3), (-1.0, 1.0), (-1.0, 1.0), &[0.0, 0.3];
    bce_gradient_matches_finite_differences: Bce, (0.05, 0.95), (0.0, 1.0), &[];
    bce_with_logits_gradient_matches_finite_differences: BceWithLogits, (-6.0, 6.0), (0.0, 1.0), &[];
    sse_gradient_matches_finite_differences: Sse, (-3.0, 3.0), (-3.0, 3.0), &[];
    half_sse_gradient_matches_finite_differences: HalfSse, (-3.0, 3.0), (-3.0, 3.0), &[];
}

fn check_cross_entropy_probabilities<const N: usize, const B: usize>(seed: u64, normalized: bool) {
    let mut rng = Lcg::new(seed);
    for point in 0..POINTS {
        let logits: SMatrix<f64, N, B> = rng.matrix(-5.0, 5.0);
        let mut target: SMatrix<f64, N, B> = rng.matrix(0.0, 1.0);
        if normalized {
            for mut column in target.column_iter_mut() {
                let sum = column.sum();
                column /= sum;
            }
        }
        check_gradient(
            &CrossEntropy,
            &logits,
            &target,
            &format!("cross entropy, probabilities, {N}x{B}, point {point}"),
        );
    }
}

fn check_cross_entropy_classes<const N: usize, const B: usize>(seed: u64) {
    let mut rng = Lcg::new(seed);
    for point in 0..POINTS {
        let logits: SMatrix<f64, N, B> = rng.matrix(-5.0, 5.0);
        let target = ClassTargets::<N, B>::new(core::array::from_fn(|_| rng.index(N))).unwrap();
        check_gradient(
            &CrossEntropy,
            &logits,
            &target,
            &format!(
                "cross entropy, classes {:?}, {N}x{B}, point {point}",
                target.indices()
            ),
        );
    }
}

#[test]
fn cross_entropy_probability_gradient_matches_finite_differences() {
    check_cross_entropy_probabilities::<3, 1>(10, true);
    check_cross_entropy_probabilities::<3, 4>(11, true);
    check_cross_entropy_probabilities::<5, 2>(12, false);
    check_cross_entropy_probabilities::<2, 1>(13, false);
}

#[test]
fn cross_entropy_class_gradient_matches_finite_differences() {
    check_cross_entropy_classes::<3, 1>(20);
    check_cross_entropy_classes::<3, 4>(21);
    check_cross_entropy_classes::<5, 2>(22);
    check_cross_entropy_classes::<1, 3>(23);
}

/// The value and the gradient of a loss at one point, in `f64`.
fn evaluate<const N: usize, const B: usize, Y, L: Loss<f64, N, B, Y>>(
    loss: &L,
    output: &SMatrix<f64, N, B>,
    target: &Y,
) -> (f64, SMatrix<f64, N, B>) {
    let mut grad = SMatrix::zeros();
    let value = loss.gradient(output, target, &mut grad);
    assert_eq!(value.to_bits(), loss.value(output, target).to_bits());
    (value, grad)
}

// ---------------------------------------------------------------------------------------------
// Hand-derived values.
// ---------------------------------------------------------------------------------------------

#[test]
fn mse_hand_values() {
    // o = [1, 2], t = [0, 0]: (1² + 2²) / 2 = 2.5; gradient 2 (o - t) / 2 = [1, 2].
    let (value, grad) = evaluate(
        &Mse,
        &SMatrix::<f64, 2, 1>::new(1.0, 2.0),
        &SMatrix::zeros(),
    );
    assert_close(value, 2.5, 1e-15, "mse");
    assert_matrix_close(&grad, &SMatrix::<f64, 2, 1>::new(1.0, 2.0), "mse gradient");

    // The same residuals as two samples of width 1: still divided by N B = 2.
    let (value, grad) = evaluate(
        &Mse,
        &SMatrix::<f64, 1, 2>::new(1.0, 2.0),
        &SMatrix::zeros(),
    );
    assert_close(value, 2.5, 1e-15, "mse, batch");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 1, 2>::new(1.0, 2.0),
        "mse gradient, batch",
    );

    // 2x2 with residuals [1, -1, 3, 0]: (1 + 1 + 9 + 0) / 4 = 2.75; gradient r / 2.
    let (value, grad) = evaluate(
        &Mse,
        &SMatrix::<f64, 2, 2>::new(2.0, 5.0, 0.0, 1.0),
        &SMatrix::<f64, 2, 2>::new(1.0, 2.0, 1.0, 1.0),
    );
    assert_close(value, 2.75, 1e-15, "mse, 2x2");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 2, 2>::new(0.5, 1.5, -0.5, 0.0),
        "mse gradient, 2x2",
    );
}

#[test]
fn l1_hand_values() {
    // r = [1, -2, 0]: (1 + 2 + 0) / 3 = 1; gradient sign(r) / 3 = [1/3, -1/3, 0] (sign(0) = 0).
    let (value, grad) = evaluate(
        &L1,
        &SMatrix::<f64, 3, 1>::new(1.0, -2.0, 5.0),
        &SMatrix::<f64, 3, 1>::new(0.0, 0.0, 5.0),
    );
    assert_close(value, 1.0, 1e-15, "l1");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 3, 1>::new(1.0 / 3.0, -1.0 / 3.0, 0.0),
        "l1 gradient",
    );
}

#[test]
fn huber_hand_values() {
    assert_eq!(Huber::default(), Huber::new(1.0));
    assert_eq!(Huber::default().delta, 1.0);

    // delta 1, r = [0.5, 2, -3]: 0.5·0.25 = 0.125, 1·(2 - 0.5) = 1.5, 1·(3 - 0.5) = 2.5;
    // mean (0.125 + 1.5 + 2.5) / 3 = 1.375; gradient clamp(r, -1, 1) / 3 = [1/6, 1/3, -1/3].
    let (value, grad) = evaluate(
        &Huber::default(),
        &SMatrix::<f64, 3, 1>::new(0.5, 2.0, -3.0),
        &SMatrix::zeros(),
    );
    assert_close(value, 1.375, 1e-15, "huber");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 3, 1>::new(0.5 / 3.0, 1.0 / 3.0, -1.0 / 3.0),
        "huber gradient",
    );

    // delta 2, two samples with r = 1 and r = 3: 0.5·1 = 0.5, 2·(3 - 1) = 4; mean 2.25;
    // gradient [1, 2] / 2.
    let (value, grad) = evaluate(
        &Huber::new(2.0),
        &SMatrix::<f64, 1, 2>::new(1.0, 4.0),
        &SMatrix::<f64, 1, 2>::new(0.0, 1.0),
    );
    assert_close(value, 2.25, 1e-15, "huber, delta 2");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 1, 2>::new(0.5, 1.0),
        "huber gradient, delta 2",
    );

    // At |r| = delta both pieces agree: 1·(1 - 0.5) = 0.5 = 0.5·1²; the slope is delta.
    let (value, grad) = evaluate(
        &Huber::default(),
        &SMatrix::<f64, 1, 1>::new(-1.0),
        &SMatrix::zeros(),
    );
    assert_close(value, 0.5, 1e-15, "huber at delta");
    assert_close(grad[0], -1.0, 1e-15, "huber gradient at delta");
}

#[test]
fn sse_and_half_sse_hand_values() {
    // r = [1, 2]: Σ r² = 5, gradient 2r = [2, 4]; half: 2.5, gradient r = [1, 2].
    let output = SMatrix::<f64, 2, 1>::new(1.0, 2.0);
    let target = SMatrix::zeros();
    let (value, grad) = evaluate(&Sse, &output, &target);
    assert_close(value, 5.0, 1e-15, "sse");
    assert_matrix_close(&grad, &SMatrix::<f64, 2, 1>::new(2.0, 4.0), "sse gradient");
    let (value, grad) = evaluate(&HalfSse, &output, &target);
    assert_close(value, 2.5, 1e-15, "half sse");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 2, 1>::new(1.0, 2.0),
        "half sse gradient",
    );

    // No averaging over the batch: r = [1, -2, 3] as 3 samples: Σ r² = 14, half 7.
    let output = SMatrix::<f64, 1, 3>::new(1.0, -2.0, 3.0);
    assert_close(
        Sse.value(&output, &SMatrix::zeros()),
        14.0,
        1e-15,
        "sse, batch",
    );
    assert_close(
        HalfSse.value(&output, &SMatrix::zeros()),
        7.0,
        1e-15,
        "half sse, batch",
    );
}

#[test]
fn bce_hand_values() {
    // o = 0.5, t = 1: -ln 0.5 = ln 2; gradient (0.5 - 1) / (0.5·0.5) = -2.
    let (value, grad) = evaluate(
        &Bce,
        &SMatrix::<f64, 1, 1>::new(0.5),
        &SMatrix::<f64, 1, 1>::new(1.0),
    );
    assert_close(value, core::f64::consts::LN_2, 1e-15, "bce");
    assert_close(grad[0], -2.0, 1e-15, "bce gradient");

    // o = [0.25, 0.8], t = [0, 0.5]: -ln 0.75 and -(0.5 ln 0.8 + 0.5 ln 0.2) = -0.5 ln 0.16;
    // gradient 0.25 / (0.75·0.25) = 4/3 and 0.3 / (0.2·0.8) = 1.875, all divided by 2.
    let (value, grad) = evaluate(
        &Bce,
        &SMatrix::<f64, 2, 1>::new(0.25, 0.8),
        &SMatrix::<f64, 2, 1>::new(0.0, 0.5),
    );
    let expected = (-(0.75f64.ln()) - 0.5 * 0.16f64.ln()) / 2.0;
    assert_close(value, expected, 1e-14, "bce, two elements");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 2, 1>::new(4.0 / 3.0 / 2.0, 1.875 / 2.0),
        "bce gradient, two elements",
    );

    // The -100 clamp: o = 0, t = 1 and o = 1, t = 0 each cost -(-100) = 100; o = t ∈ {0, 1} cost
    // 0 (0·(-100) for the other term). Mean over 4: 50. Gradient: (o - t) / max(0, 1e-12) / 4.
    let (value, grad) = evaluate(
        &Bce,
        &SMatrix::<f64, 2, 2>::new(0.0, 1.0, 0.0, 1.0),
        &SMatrix::<f64, 2, 2>::new(1.0, 0.0, 0.0, 1.0),
    );
    assert_close(value, 50.0, 1e-15, "bce, clamped");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 2, 2>::new(-0.25e12, 0.25e12, 0.0, 0.0),
        "bce gradient, clamped",
    );
}

#[test]
fn bce_with_logits_hand_values() {
    let ln_2 = core::f64::consts::LN_2;
    let ln_3 = 3f64.ln();
    let ln_4 = 4f64.ln();
    // z = 0, t = 0.5: max(0, 0) - 0 + ln(1 + e⁰) = ln 2; gradient σ(0) - 0.5 = 0.
    let (value, grad) = evaluate(
        &BceWithLogits,
        &SMatrix::<f64, 1, 1>::new(0.0),
        &SMatrix::<f64, 1, 1>::new(0.5),
    );
    assert_close(value, ln_2, 1e-15, "bce with logits, z = 0");
    assert_close(grad[0], 0.0, 1e-15, "bce with logits gradient, z = 0");

    // Two samples: z = ln 3, t = 0: -ln(1 - σ(ln 3)) = -ln(1/4) = ln 4, gradient σ(ln 3) = 3/4;
    // z = -ln 3, t = 1: -ln σ(-ln 3) = -ln(1/4) = ln 4, gradient 1/4 - 1 = -3/4. Mean over 2.
    let (value, grad) = evaluate(
        &BceWithLogits,
        &SMatrix::<f64, 1, 2>::new(ln_3, -ln_3),
        &SMatrix::<f64, 1, 2>::new(0.0, 1.0),
    );
    assert_close(value, ln_4, 1e-15, "bce with logits, ±ln 3");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 1, 2>::new(0.375, -0.375),
        "bce with logits gradient, ±ln 3",
    );

    // It equals Bce on σ(z): z = 0.3, t = 0.7.
    let z = 0.3f64;
    let p = 1.0 / (1.0 + (-z).exp());
    let expected = -(0.7 * p.ln() + 0.3 * (1.0 - p).ln());
    let value = BceWithLogits.value(
        &SMatrix::<f64, 1, 1>::new(z),
        &SMatrix::<f64, 1, 1>::new(0.7),
    );
    assert_close(
        value,
        expected,
        1e-14,
        "bce with logits against the definition",
    );
}

#[test]
fn cross_entropy_class_hand_values() {
    let ln_2 = core::f64::consts::LN_2;
    // Logits [0, 0], class 1: softmax [1/2, 1/2], -ln(1/2) = ln 2; gradient [1/2, -1/2].
    let (value, grad) = evaluate(
        &CrossEntropy,
        &SMatrix::<f64, 2, 1>::new(0.0, 0.0),
        &ClassTargets::new([1]).unwrap(),
    );
    assert_close(value, ln_2, 1e-15, "cross entropy [0, 0], class 1");
    assert_matrix_close(&grad, &SMatrix::<f64, 2, 1>::new(0.5, -0.5), "its gradient");

    // Logits [0, ln 2, ln 3] = ln [1, 2, 3]: softmax [1/6, 2/6, 3/6]; class 2: -ln(1/2) = ln 2;
    // gradient [1/6, 1/3, 1/2 - 1].
    let (value, grad) = evaluate(
        &CrossEntropy,
        &SMatrix::<f64, 3, 1>::new(0.0, ln_2, 3f64.ln()),
        &ClassTargets::new([2]).unwrap(),
    );
    assert_close(value, ln_2, 1e-15, "cross entropy ln [1, 2, 3], class 2");
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 3, 1>::new(1.0 / 6.0, 1.0 / 3.0, -0.5),
        "its gradient",
    );

    // Two samples, mean over B = 2 (not N B = 4): [0, 0] class 1 costs ln 2; [ln 3, 0] has softmax
    // [3/4, 1/4] and class 0 costs ln(4/3). Mean (ln 2 + ln(4/3)) / 2; gradient columns
    // [1/2, -1/2] / 2 and [3/4 - 1, 1/4] / 2.
    let (value, grad) = evaluate(
        &CrossEntropy,
        &SMatrix::<f64, 2, 2>::new(0.0, 3f64.ln(), 0.0, 0.0),
        &ClassTargets::new([1, 0]).unwrap(),
    );
    assert_close(
        value,
        (ln_2 + (4.0f64 / 3.0).ln()) / 2.0,
        1e-15,
        "cross entropy, batch",
    );
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 2, 2>::new(0.25, -0.125, -0.25, 0.125),
        "cross entropy gradient, batch",
    );

    // A shift of all logits of a sample changes nothing: [100, 100] class 0 costs ln 2.
    let value = CrossEntropy.value(
        &SMatrix::<f64, 2, 1>::new(100.0, 100.0),
        &ClassTargets::new([0]).unwrap(),
    );
    assert_close(value, ln_2, 1e-15, "cross entropy, shifted");
}

#[test]
fn cross_entropy_probability_hand_values() {
    let ln_2 = core::f64::consts::LN_2;
    // Logits [0, 0], targets [1/2, 1/2]: -(½ ln ½ + ½ ln ½) = ln 2; gradient softmax - t = 0.
    let (value, grad) = evaluate(
        &CrossEntropy,
        &SMatrix::<f64, 2, 1>::new(0.0, 0.0),
        &SMatrix::<f64, 2, 1>::new(0.5, 0.5),
    );
    assert_close(value, ln_2, 1e-15, "cross entropy, uniform targets");
    assert_matrix_close(&grad, &SMatrix::zeros(), "its gradient");

    // Logits [0, ln 3]: softmax [1/4, 3/4]; targets [1/2, 1/2]: -(½ ln ¼ + ½ ln ¾) = ln 4 - ½ ln 3;
    // gradient [1/4 - 1/2, 3/4 - 1/2].
    let (value, grad) = evaluate(
        &CrossEntropy,
        &SMatrix::<f64, 2, 1>::new(0.0, 3f64.ln()),
        &SMatrix::<f64, 2, 1>::new(0.5, 0.5),
    );
    assert_close(
        value,
        4f64.ln() - 0.5 * 3f64.ln(),
        1e-15,
        "cross entropy [0, ln 3]",
    );
    assert_matrix_close(
        &grad,
        &SMatrix::<f64, 2, 1>::new(-0.25, 0.25),
        "its gradient",
    );

    // Unnormalized targets [2, 0] on logits [0, 0]: -2 ln ½ = 2 ln 2; gradient
    // softmax·Σt - t = [½·2 - 2, ½·2 - 0] = [-1, 1].
    let (value, grad) = evaluate(
        &CrossEntropy,
        &SMatrix::<f64, 2, 1>::new(0.0, 0.0),
        &SMatrix::<f64, 2, 1>::new(2.0, 0.0),
    );
    assert_close(
        value,
        2.0 * ln_2,
        1e-15,
        "cross entropy, unnormalized targets",
    );
    assert_matrix_close(&grad, &SMatrix::<f64, 2, 1>::new(-1.0, 1.0), "its gradient");
}

#[test]
fn cross_entropy_one_hot_probabilities_equal_class_indices() {
    let mut rng = Lcg::new(30);
    for _ in 0..POINTS {
        let logits: SMatrix<f64, 4, 3> = rng.matrix(-4.0, 4.0);
        let classes: [usize; 3] = core::array::from_fn(|_| rng.index(4));
        let one_hot = SMatrix::<f64, 4, 3>::from_fn(|c, b| if classes[b] == c { 1.0 } else { 0.0 });
        let (by_index, grad_by_index) =
            evaluate(&CrossEntropy, &logits, &ClassTargets::new(classes).unwrap());
        let (by_probability, grad_by_probability) = evaluate(&CrossEntropy, &logits, &one_hot);
        assert_close(by_index, by_probability, 1e-14, "one-hot against indices");
        assert_matrix_close(&grad_by_index, &grad_by_probability, "their gradients");
    }
}

// ---------------------------------------------------------------------------------------------
// Stability in f32.
// ---------------------------------------------------------------------------------------------

/// The value and the gradient of a loss at one point, in `f32`, both checked finite.
fn finite_f32<const N: usize, const B: usize, Y, L: Loss<f32, N, B, Y>>(
    loss: &L,
    output: &SMatrix<f32, N, B>,
    target: &Y,
) -> (f32, SMatrix<f32, N, B>) {
    let mut grad = SMatrix::zeros();
    let value = loss.gradient(output, target, &mut grad);
    assert!(value.is_finite(), "loss {value} is not finite");
    assert!(
        grad.iter().all(|g| g.is_finite()),
        "gradient {grad:?} is not finite"
    );
    assert_eq!(value.to_bits(), loss.value(output, target).to_bits());
    (value, grad)
}

fn assert_close_f32(actual: f32, expected: f32, tolerance: f32, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance * expected.abs().max(1.0),
        "{what}: got {actual}, expected {expected}"
    );
}

#[test]
fn bce_with_logits_is_stable_in_f32() {
    // Limits: t = 1 costs -ln σ(z) → 0 as z → +∞ and ≈ -z as z → -∞; t = 0 costs ln(1 + e^z) ≈ z
    // as z → +∞ and → 0 as z → -∞. Gradient σ(z) - t ∈ {0, -1, 1, 0}.
    for (z, t, expected, slope) in [
        (1e4f32, 1.0f32, 0.0f32, 0.0f32),
        (-1e4, 1.0, 1e4, -1.0),
        (1e4, 0.0, 1e4, 1.0),
        (-1e4, 0.0, 0.0, 0.0),
    ] {
        let (value, grad) = finite_f32(
            &BceWithLogits,
            &SMatrix::<f32, 1, 1>::new(z),
            &SMatrix::<f32, 1, 1>::new(t),
        );
        assert_close_f32(
            value,
            expected,
            1e-6,
            &format!("bce with logits at z = {z}, t = {t}"),
        );
        assert_close_f32(
            grad[0],
            slope,
            1e-6,
            &format!("its gradient at z = {z}, t = {t}"),
        );
    }
    // All four at once, averaged over 4.
    let (value, grad) = finite_f32(
        &BceWithLogits,
        &SMatrix::<f32, 2, 2>::new(1e4, 1e4, -1e4, -1e4),
        &SMatrix::<f32, 2, 2>::new(1.0, 0.0, 1.0, 0.0),
    );
    assert_close_f32(value, 0.5e4, 1e-6, "bce with logits, batch at ±1e4");
    assert_close_f32(grad[(0, 1)], 0.25, 1e-6, "its gradient");
}

#[test]
fn cross_entropy_is_stable_in_f32() {
    let logits = SMatrix::<f32, 2, 1>::new(1e4, -1e4);
    // Class 0 has softmax ≈ 1: loss ≈ 0, gradient ≈ [0, 0]. Class 1: loss ≈ 2e4, gradient [1, -1].
    let (value, grad) = finite_f32(&CrossEntropy, &logits, &ClassTargets::new([0]).unwrap());
    assert_close_f32(value, 0.0, 1e-6, "cross entropy [1e4, -1e4], class 0");
    assert_close_f32(grad[0], 0.0, 1e-6, "its gradient");
    assert_close_f32(grad[1], 0.0, 1e-6, "its gradient");
    let (value, grad) = finite_f32(&CrossEntropy, &logits, &ClassTargets::new([1]).unwrap());
    assert_close_f32(value, 2e4, 1e-6, "cross entropy [1e4, -1e4], class 1");
    assert_close_f32(grad[0], 1.0, 1e-6, "its gradient");
    assert_close_f32(grad[1], -1.0, 1e-6, "its gradient");

    // Probability targets [1/2, 1/2]: ½·0 + ½·2e4 = 1e4; gradient [1 - 1/2, 0 - 1/2].
    let (value, grad) = finite_f32(&CrossEntropy, &logits, &SMatrix::<f32, 2, 1>::new(0.5, 0.5));
    assert_close_f32(
        value,
        1e4,
        1e-6,
        "cross entropy [1e4, -1e4], uniform targets",
    );
    assert_close_f32(grad[0], 0.5, 1e-6, "its gradient");
    assert_close_f32(grad[1], -0.5, 1e-6, "its gradient");

    // Equal huge logits (where a naive e^z overflows): [1e4, 1e4] costs ln 2 for either class;
    // [-1e4, -1e4] (where a naive e^z underflows to 0) too. Two samples, mean over 2.
    let (value, grad) = finite_f32(
        &CrossEntropy,
        &SMatrix::<f32, 2, 2>::new(1e4, -1e4, 1e4, -1e4),
        &ClassTargets::new([0, 1]).unwrap(),
    );
    assert_close_f32(
        value,
        core::f32::consts::LN_2,
        1e-6,
        "cross entropy, equal ±1e4 logits",
    );
    assert_close_f32(grad[(0, 0)], -0.25, 1e-6, "its gradient");
    assert_close_f32(grad[(1, 1)], -0.25, 1e-6, "its gradient");
}

#[test]
fn bce_is_finite_at_zero_and_one_in_f32() {
    // As in f64: mismatched certainties cost 100 each (the -100 clamp), matched ones 0.
    let (value, grad) = finite_f32(
        &Bce,
        &SMatrix::<f32, 4, 1>::new(0.0, 1.0, 0.0, 1.0),
        &SMatrix::<f32, 4, 1>::new(1.0, 0.0, 0.0, 1.0),
    );
    assert_close_f32(value, 50.0, 1e-6, "bce at 0 and 1");
    assert_close_f32(grad[0], -0.25e12, 1e-6, "its gradient at o = 0, t = 1");
    assert_close_f32(grad[1], 0.25e12, 1e-6, "its gradient at o = 1, t = 0");
    assert_eq!(grad[2], 0.0);
    assert_eq!(grad[3], 0.0);
}

#[test]
fn regression_losses_work_in_f32() {
    // Mse of [1, 2] against 0 is 2.5 in f32 too, and the gradient writes every entry.
    let (value, grad) = finite_f32(
        &Mse,
        &SMatrix::<f32, 2, 1>::new(1.0, 2.0),
        &SMatrix::zeros(),
    );
    assert_close_f32(value, 2.5, 1e-7, "mse in f32");
    assert_eq!(grad, SMatrix::<f32, 2, 1>::new(1.0, 2.0));
}

// ---------------------------------------------------------------------------------------------
// NaN, infinities and degenerate shapes: no panics.
// ---------------------------------------------------------------------------------------------

#[test]
fn nan_propagates_without_panicking() {
    let nan = f64::NAN;
    let output = SMatrix::<f64, 2, 1>::new(nan, 0.5);
    let target = SMatrix::<f64, 2, 1>::new(0.5, 0.5);
    let mut grad = SMatrix::zeros();
    assert!(Mse.gradient(&output, &target, &mut grad).is_nan());
    assert!(grad[0].is_nan());
    assert!(L1.gradient(&output, &target, &mut grad).is_nan());
    assert!(grad[0].is_nan());
    assert!(Huber::default()
        .gradient(&output, &target, &mut grad)
        .is_nan());
    assert!(grad[0].is_nan());
    assert!(Bce.gradient(&output, &target, &mut grad).is_nan());
    assert!(grad[0].is_nan());
    assert!(BceWithLogits.gradient(&output, &target, &mut grad).is_nan());
    assert!(grad[0].is_nan());
    assert!(Sse.gradient(&output, &target, &mut grad).is_nan());
    assert!(HalfSse.gradient(&output, &target, &mut grad).is_nan());
    assert!(CrossEntropy.gradient(&output, &target, &mut grad).is_nan());
    let classes = ClassTargets::new([1]).unwrap();
    assert!(CrossEntropy.gradient(&output, &classes, &mut grad).is_nan());
    // A NaN in the second place (not the first a maximum search sees) too.
    let output = SMatrix::<f64, 2, 1>::new(0.5, nan);
    assert!(CrossEntropy.value(&output, &classes).is_nan());
    assert!(CrossEntropy.value(&output, &target).is_nan());
    // A NaN target.
    assert!(Bce
        .value(&SMatrix::<f64, 2, 1>::new(0.5, 0.5), &output)
        .is_nan());
    // A NaN delta.
    assert!(Huber::new(nan).value(&target, &SMatrix::zeros()).is_nan());
}

#[test]
fn non_finite_and_out_of_range_inputs_do_not_panic() {
    let inf = f64::INFINITY;
    let output = SMatrix::<f64, 3, 2>::new(inf, -inf, 2.0, -inf, inf, 0.0);
    let target = SMatrix::<f64, 3, 2>::new(0.0, 1.0, 0.5, inf, 0.0, -inf);
    let mut grad = SMatrix::zeros();
    let classes = ClassTargets::new([0, 2]).unwrap();
    let _ = Mse.gradient(&output, &target, &mut grad);
    let _ = L1.gradient(&output, &target, &mut grad);
    let _ = Huber::new(-1.0).gradient(&output, &target, &mut grad);
    let _ = Huber::new(inf).gradient(&output, &target, &mut grad);
    let _ = Bce.gradient(&output, &target, &mut grad);
    let _ = BceWithLogits.gradient(&output, &target, &mut grad);
    let _ = CrossEntropy.gradient(&output, &target, &mut grad);
    let _ = CrossEntropy.gradient(&output, &classes, &mut grad);
    let _ = Sse.gradient(&output, &target, &mut grad);
    let _ = HalfSse.gradient(&output, &target, &mut grad);
    // Probabilities outside [0, 1] give NaN rather than PyTorch's error.
    assert!(Bce
        .value(
            &SMatrix::<f64, 1, 1>::new(1.5),
            &SMatrix::<f64, 1, 1>::new(1.0)
        )
        .is_nan());
}

#[test]
fn empty_shapes_do_not_panic() {
    let mut grad = SMatrix::<f64, 0, 3>::zeros();
    let _ = Mse.gradient(&SMatrix::zeros(), &SMatrix::zeros(), &mut grad);
    let _ = CrossEntropy.gradient(&SMatrix::zeros(), &SMatrix::zeros(), &mut grad);
    let mut grad = SMatrix::<f64, 3, 0>::zeros();
    let _ = Mse.gradient(&SMatrix::zeros(), &SMatrix::zeros(), &mut grad);
    let empty = ClassTargets::<3, 0>::new([]).unwrap();
    let _ = CrossEntropy.gradient(&SMatrix::zeros(), &empty, &mut grad);
    assert_eq!(Sse.value(&grad, &grad), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Class targets.
// ---------------------------------------------------------------------------------------------

#[test]
fn class_targets_accept_indices_in_range() {
    let targets = ClassTargets::<5, 3>::new([0, 4, 2]).unwrap();
    assert_eq!(targets.indices(), &[0, 4, 2]);
    // Usable in constants.
    const TARGETS: Result<ClassTargets<2, 2>, ClassIndexError> = ClassTargets::new([1, 0]);
    assert_eq!(TARGETS.unwrap().indices(), &[1, 0]);
}

#[test]
fn class_targets_reject_out_of_range_indices() {
    let error = ClassTargets::<5, 4>::new([0, 1, 7, 9]).unwrap_err();
    assert_eq!(
        error,
        ClassIndexError {
            sample: 2,
            index: 7,
            classes: 5
        }
    );
    assert_eq!(
        error.to_string(),
        "target class 7 of sample 2 is out of range: the network has 5 classes (0..=4)"
    );
    // N itself is already out of range.
    let error = ClassTargets::<5, 1>::new([5]).unwrap_err();
    assert_eq!((error.sample, error.index, error.classes), (0, 5, 5));
    // Degenerate class counts.
    assert_eq!(
        ClassTargets::<1, 2>::new([0, 1]).unwrap_err().to_string(),
        "target class 1 of sample 1 is out of range: the network has 1 class (0..=0)"
    );
    assert_eq!(
        ClassTargets::<0, 1>::new([0]).unwrap_err().to_string(),
        "target class 0 of sample 0 is out of range: the network has no classes"
    );
    assert_eq!(
        ClassTargets::<3, 1>::new([usize::MAX]).unwrap_err().index,
        usize::MAX
    );
    // A standard error.
    let boxed: Box<dyn core::error::Error> = Box::new(error);
    assert!(boxed.source().is_none());
}

#[test]
fn losses_are_usable_through_the_trait_and_as_constants() {
    fn total<L: Loss<f32, 2, 2>>(loss: &L) -> f32 {
        loss.value(&SMatrix::identity(), &SMatrix::zeros())
    }
    // Identity against 0: squared residuals [1, 0, 0, 1].
    assert_eq!(total(&Mse), 0.5);
    assert_eq!(total(&Sse), 2.0);
    assert_eq!(total(&HalfSse), 1.0);
    assert_eq!(total(&L1), 0.5);
    const HUBER: Huber = Huber::new(0.5);
    // |r| = 1 ≥ 0.5: 0.5·(1 - 0.25) = 0.375 twice, mean 0.1875.
    assert_eq!(total(&HUBER), 0.1875);
}

/// Cross entropy of logits [0, 0] with class 1 and Mse of [1, 2] against 0, written once for any scalar.
fn generic_values<T: Scalar>() -> (f64, f64) {
    let zero = constant::<T>(0.0);
    let logits = SMatrix::<T, 2, 1>::new(zero, zero);
    let cross_entropy = CrossEntropy.value(&logits, &ClassTargets::new([1]).unwrap());
    let output = SMatrix::<T, 2, 1>::new(constant(1.0), constant(2.0));
    let mse = Mse.value(&output, &SMatrix::zeros());
    (to_f64(cross_entropy), to_f64(mse))
}

#[test]
fn losses_are_generic_over_the_scalar() {
    // ln 2 and (1 + 4) / 2 = 2.5 in both precisions.
    for (cross_entropy, mse) in [generic_values::<f32>(), generic_values::<f64>()] {
        assert!((cross_entropy - core::f64::consts::LN_2).abs() < 1e-6);
        assert!((mse - 2.5).abs() < 1e-6);
    }
}
