//! The gradient checker (issue 3): every activation and every loss through the function check at
//! many seeded points; every PyTorch-parity architecture through the network check in f64; the
//! seed post's mistakes (a forgotten sigmoid derivative, a transposed weight gradient) caught by
//! name; the seed network in f32 through its f64 cast; kinks flagged rather than failed.
//!
//! Expected values here come from the finite differences themselves, from hand-written nalgebra
//! backward passes, and from hand derivations; none from the generated backward pass.

use crate::common;

use crate::common::{columns, fixture, load_params, numbers};
use backprop::activation::{
    Activation, Elementwise, Elu, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Silu, Softmax,
    Softplus, Tanh,
};
use backprop::gradcheck::{self, Band, Difference, GradcheckError, Options, Report, Rule};
use backprop::prelude::*;
use backprop::scalar::constant;
use serde_json::Value;

network! {
    /// The 4-5-2-1 network of the seed post.
    pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 >
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// SplitMix64: a tiny seeded generator, so the points are the same on every run.
struct Points(u64);

impl Points {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The seed network's parameters, input and target from `tests/fixtures/seed_torch.json`.
fn seed<T: Scalar>() -> (Seed<T>, SVector<T, 4>, SVector<T, 1>) {
    let fixture = fixture("seed_torch.json");
    let mut net = Seed::<T>::zeros();
    load_params(&mut net, &fixture["params"]);
    let x = SVector::from_iterator(numbers(&fixture["input"]).into_iter().map(constant));
    let y = SVector::from_iterator(numbers(&fixture["target"]).into_iter().map(constant));
    (net, x, y)
}

/// Unwraps a failed check's report, or panics saying the check passed.
fn failed_report(result: Result<Report, GradcheckError>) -> Report {
    match result {
        Ok(report) => panic!("the check passed, but it should have failed:\n{report}"),
        Err(GradcheckError::Failed(report)) => *report,
        Err(other) => panic!("the check could not run: {other}"),
    }
}

/// What a series of function checks found.
#[derive(Default)]
struct Summary {
    checks: usize,
    flagged: usize,
    /// The largest relative error away from kinks over every entry.
    max_relative: f64,
    /// The largest relative error away from kinks over entries the numeric derivative resolves:
    /// over the first step the function changes by at least 1e-6 of its scale (max(|f|, 1)), so
    /// rounding (a few 1e-16 of that scale) stays below 1e-8 of the change.
    max_resolved: f64,
    /// Where that largest relative error was.
    worst: String,
}

impl Summary {
    fn add(&mut self, report: &Report) {
        self.checks += 1;
        self.flagged += report.flagged();
        let scale = report.value().abs().max(1.0);
        let h = report.options().difference.h();
        for entry in report.away_from_kinks() {
            self.max_relative = self.max_relative.max(entry.relative_error);
            if entry.analytic.abs() * h >= 1e-6 * scale && entry.relative_error > self.max_resolved
            {
                self.max_resolved = entry.relative_error;
                self.worst = format!("{report}");
            }
        }
    }

    fn print(&self, what: &str) {
        println!(
            "{what:<28} {:>4} checks, {:>3} flagged near a kink, max relative error {:.1e} \
             (resolved entries {:.1e})",
            self.checks, self.flagged, self.max_relative, self.max_resolved
        );
    }

    /// Every check passed (the callers assert that); resolved entries are in the good band.
    fn assert_good(&self, what: &str) {
        self.print(what);
        assert!(
            self.max_resolved < 1e-7,
            "{what}: max relative error {:e} on resolved entries:\n{}",
            self.max_resolved,
            self.worst
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Must be true 1: every activation passes the function check, |z| up to 30.
// ---------------------------------------------------------------------------------------------

/// Seeded points in [-30, 30] and [-3, 3], and fixed ones at the ends and near the kinks.
fn activation_points(seed: u64) -> Vec<f64> {
    let mut points = Points(seed);
    let mut z = vec![
        -30.0, 30.0, -29.99, 29.99, -20.0, 19.5, 20.5, -1e-3, 1e-3, 0.25, -0.25, 5e-3,
    ];
    z.extend((0..150).map(|_| points.uniform(-30.0, 30.0)));
    z.extend((0..150).map(|_| points.uniform(-3.0, 3.0)));
    z
}

/// Checks `f'(z)` of `activation` at every point, the kinks at `kinks` (from the definitions).
fn check_activation<A: Elementwise<f64>>(what: &str, activation: &A, kinks: &[f64]) {
    let mut summary = Summary::default();
    for z in activation_points(what.len() as u64) {
        let analytic = [activation.derivative(z, activation.value(z))];
        let crosses =
            |p: &[f64], q: &[f64]| kinks.iter().any(|&kink| (p[0] > kink) != (q[0] > kink));
        let report = gradcheck::assert_passes(gradcheck::check_function_with_kinks(
            |v: &[f64]| activation.value(v[0]),
            crosses,
            &[z],
            &analytic,
            &Options::default(),
        ));
        summary.add(&report);
    }
    summary.assert_good(what);
}

#[test]
fn every_elementwise_activation_passes_the_function_check() {
    check_activation("identity", &Identity, &[]);
    check_activation("relu", &Relu, &[0.0]);
    check_activation("leaky_relu", &LeakyRelu::<f64>::default(), &[0.0]);
    check_activation("leaky_relu(0.2)", &LeakyRelu::<f64>::new(0.2), &[0.0]);
    check_activation("sigmoid", &Sigmoid, &[]);
    check_activation("tanh", &Tanh, &[]);
    // PyTorch's softplus returns z above 20: a jump of ln(1 + e^-20) ≈ 2e-9 there.
    check_activation("softplus", &Softplus, &[20.0]);
    check_activation("elu", &Elu::<f64>::default(), &[0.0]);
    check_activation("elu(0.5)", &Elu::<f64>::new(0.5), &[0.0]);
    check_activation("elu(2.0)", &Elu::<f64>::new(2.0), &[0.0]);
    check_activation("gelu", &Gelu, &[]);
    check_activation("silu", &Silu, &[]);
}

#[test]
fn softmax_passes_through_a_scalar_function_of_its_output() {
    // f(Z) = Σ W ∘ softmax(Z), two samples of five logits; ∂f/∂Z is softmax's backward of W.
    let mut points = Points(5);
    let mut summary = Summary::default();
    for trial in 0..200usize {
        let range = if trial.is_multiple_of(2) { 30.0 } else { 3.0 };
        let mut z = SMatrix::<f64, 5, 2>::from_fn(|_, _| points.uniform(-range, range));
        if trial == 0 {
            z[(0, 0)] = 30.0;
            z[(1, 1)] = -30.0;
        }
        let w = SMatrix::<f64, 5, 2>::from_fn(|_, _| points.uniform(-2.0, 2.0));
        let f = |v: &[f64]| {
            let mut a = SMatrix::<f64, 5, 2>::zeros();
            Softmax.forward(&SMatrix::from_column_slice(v), &mut a);
            a.component_mul(&w).sum()
        };
        let mut a = SMatrix::zeros();
        Softmax.forward(&z, &mut a);
        let mut grad = w;
        Softmax.backward(&z, &a, &mut grad);
        let report = gradcheck::assert_passes(gradcheck::check_function(
            f,
            z.as_slice(),
            grad.as_slice(),
            &Options::default(),
        ));
        summary.add(&report);
    }
    summary.assert_good("softmax");
}

// ---------------------------------------------------------------------------------------------
// Must be true 1: every loss passes the function check, logits up to |z| = 30.
// ---------------------------------------------------------------------------------------------

/// Checks `loss` at `output` against `target` (outputs `N × B`, flattened column-major).
fn check_loss<L, Y, const N: usize, const B: usize>(
    loss: &L,
    output: &SMatrix<f64, N, B>,
    target: &Y,
    crosses: impl Fn(&[f64], &[f64]) -> bool,
    options: &Options,
) -> Result<Report, GradcheckError>
where
    L: Loss<f64, N, B, Y>,
{
    let mut grad = SMatrix::zeros();
    loss.gradient(output, target, &mut grad);
    gradcheck::check_function_with_kinks(
        |v: &[f64]| loss.value(&SMatrix::from_column_slice(v), target),
        crosses,
        output.as_slice(),
        grad.as_slice(),
        options,
    )
}

/// Outputs for a regression loss: half the trials in [-30, 30], half in [-3, 3].
fn outputs<const N: usize, const B: usize>(
    points: &mut Points,
    trial: usize,
) -> SMatrix<f64, N, B> {
    let range = if trial.is_multiple_of(2) { 30.0 } else { 3.0 };
    SMatrix::from_fn(|_, _| points.uniform(-range, range))
}

/// No kinks.
fn smooth(_: &[f64], _: &[f64]) -> bool {
    false
}

/// Runs `trials` checks of a loss over `[3 × 4]` outputs and targets from `make`.
fn check_matrix_loss<L: Loss<f64, 3, 4>>(
    what: &str,
    loss: &L,
    make: impl Fn(&mut Points, usize) -> (SMatrix<f64, 3, 4>, SMatrix<f64, 3, 4>),
    crosses: impl Fn(&[f64], &[f64], &SMatrix<f64, 3, 4>) -> bool,
) {
    let mut points = Points(what.len() as u64 * 101);
    let mut summary = Summary::default();
    for trial in 0..100 {
        let (output, target) = make(&mut points, trial);
        let report = gradcheck::assert_passes(check_loss(
            loss,
            &output,
            &target,
            |p, q| crosses(p, q, &target),
            &Options::default(),
        ));
        summary.add(&report);
    }
    summary.assert_good(what);
}

/// Regression outputs and targets.
fn regression(points: &mut Points, trial: usize) -> (SMatrix<f64, 3, 4>, SMatrix<f64, 3, 4>) {
    let output = outputs(points, trial);
    let target = outputs(points, trial + 1);
    (output, target)
}

/// Logits and targets in [0, 1] (probabilities, for the logit losses).
fn logits(points: &mut Points, trial: usize) -> (SMatrix<f64, 3, 4>, SMatrix<f64, 3, 4>) {
    let output = outputs(points, trial);
    let target = SMatrix::from_fn(|_, _| points.uniform(0.0, 1.0));
    (output, target)
}

#[test]
fn every_regression_loss_passes_the_function_check() {
    check_matrix_loss("mse", &Mse, regression, |_, _, _| false);
    check_matrix_loss("sse", &Sse, regression, |_, _, _| false);
    check_matrix_loss("half_sse", &HalfSse, regression, |_, _, _| false);
    // |o − t| has its kink where the residual is 0.
    check_matrix_loss("l1", &L1, regression, |p, q, t| {
        p.iter()
            .zip(q)
            .zip(t.iter())
            .any(|((a, b), t)| (a - t).signum() != (b - t).signum() || a == t || b == t)
    });
    // Huber turns from ½r² to δ(|r| − ½δ) at |r| = δ: its second derivative jumps there.
    for delta in [1.0, 0.5, 5.0] {
        check_matrix_loss(
            &format!("huber({delta})"),
            &Huber::new(delta),
            regression,
            |p, q, t| {
                p.iter()
                    .zip(q)
                    .zip(t.iter())
                    .any(|((a, b), t)| ((a - t).abs() < delta) != ((b - t).abs() < delta))
            },
        );
    }
}

#[test]
fn every_classification_loss_passes_the_function_check() {
    check_matrix_loss("bce_with_logits", &BceWithLogits, logits, |_, _, _| false);
    check_matrix_loss("cross_entropy(probs)", &CrossEntropy, logits, |_, _, _| {
        false
    });

    // Class-index targets.
    let mut points = Points(77);
    let mut summary = Summary::default();
    for trial in 0..100 {
        let output: SMatrix<f64, 3, 4> = outputs(&mut points, trial);
        let classes = [0; 4].map(|_| points.below(3));
        let target = ClassTargets::<3, 4>::new(classes).unwrap();
        let report = gradcheck::assert_passes(check_loss(
            &CrossEntropy,
            &output,
            &target,
            smooth,
            &Options::default(),
        ));
        summary.add(&report);
    }
    summary.assert_good("cross_entropy(classes)");
}

#[test]
fn bce_passes_on_probabilities_from_logits_up_to_27() {
    // Bce takes probabilities o = sigmoid(z). Its domain is (0, 1), so the step is kept inside
    // it: a tenth of the distance to the nearer end. Beyond |z| ≈ 27.6, o(1 − o) < 1e-12, where
    // PyTorch's backward clamps the denominator (the next test).
    let mut points = Points(11);
    let mut summary = Summary::default();
    for trial in 0..300usize {
        let z = match trial {
            0 => 27.0,
            1 => -27.0,
            _ if trial.is_multiple_of(2) => points.uniform(-27.0, 27.0),
            _ => points.uniform(-3.0, 3.0),
        };
        let o = 1.0 / (1.0 + (-z).exp());
        let t = points.uniform(0.0, 1.0);
        let output = SMatrix::<f64, 1, 1>::new(o);
        let target = SMatrix::<f64, 1, 1>::new(t);
        let h = (0.1 * o.min(1.0 - o)).min(1e-2);
        let report = gradcheck::assert_passes(check_loss(
            &Bce,
            &output,
            &target,
            smooth,
            &Options::default().step(h),
        ));
        summary.add(&report);
    }
    // And a whole batch in the ordinary range, for the mean over N × B.
    for trial in 0..100 {
        let z: SMatrix<f64, 3, 4> = outputs(&mut points, 2 * trial + 1);
        let output = z.map(|z| 1.0 / (1.0 + (-z).exp()));
        let target = SMatrix::from_fn(|_, _| points.uniform(0.0, 1.0));
        let h = 0.1 * output.iter().map(|&o| o.min(1.0 - o)).fold(1e-1, f64::min);
        let report = gradcheck::assert_passes(check_loss(
            &Bce,
            &output,
            &target,
            smooth,
            &Options::default().step(h),
        ));
        summary.add(&report);
    }
    summary.assert_good("bce");
}

#[test]
fn bce_clamp_beyond_27_is_pytorch_not_the_derivative_and_the_check_sees_it() {
    // At z = 30, o(1 − o) ≈ 9.4e-14: PyTorch's binary_cross_entropy_backward divides by
    // max(o(1 − o), 1e-12) instead, deliberately. The checker reports the difference.
    let o = 1.0 / (1.0 + (-30.0f64).exp());
    let output = SMatrix::<f64, 1, 1>::new(o);
    let target = SMatrix::<f64, 1, 1>::new(0.0);
    let h = 0.1 * (1.0 - o);
    let report = failed_report(check_loss(
        &Bce,
        &output,
        &target,
        smooth,
        &Options::default().step(h),
    ));
    let entry = report.entry("x[0]").unwrap();
    // True derivative 1/(1 − o) ≈ 1.07e13; PyTorch's 1/1e-12.
    assert_eq!(entry.band, Band::Wrong);
    assert!((entry.numeric * (1.0 - o) - 1.0).abs() < 1e-6, "{report}");
}

// ---------------------------------------------------------------------------------------------
// Must be true 2: every parity architecture passes the network check in f64.
// ---------------------------------------------------------------------------------------------

/// The parity fixture case called `name`.
fn case(name: &str) -> &'static Value {
    common::fixture_case("parity.json", name)
}

/// One parity architecture (declared as in `tests/suite/parity.rs`) in f64 with the fixture's
/// parameters, input, loss and target (an f32 case's numbers are loaded as f64): the default
/// check passes and, away from flagged kinks, every relative error is below 1e-7.
macro_rules! case {
    ($name:ident, $scalar:ty, $batch:literal, $loss:expr, $target:ident, [$($declaration:tt)*]) => {
        #[test]
        fn $name() {
            network! { struct Net < $($declaration)* > }
            let case = case(stringify!($name));
            assert_eq!(case["batch"].as_u64().unwrap(), $batch);
            let mut net = Net::<f64>::zeros();
            load_params(&mut net, &case["params"]);
            let mut ws = net.workspace::<$batch>();
            let x = columns(&SMatrix::zeros(), &case["input"]);
            let output = *net.forward_into(&x, &mut ws);
            let target = case!(@target $target, &output, &case["target"]);
            let _ = output;

            let report = gradcheck::assert_gradients(&net, &x, &target, &$loss, &Options::default());
            println!(
                "{:<30} {:>4} entries, {:>3} flagged, max relative error {:.1e} (near kinks {:.1e})",
                stringify!($name),
                report.checked(),
                report.flagged(),
                report.max_relative_error(),
                report.max_relative_error_near_kinks(),
            );
            assert_eq!(report.checked(), <Net<f64> as Network>::PARAMETERS);
            assert!(report.max_relative_error() < 1e-7, "{report}");
            // Kinks are rare: flagging must not hide most of a network.
            assert!(4 * report.flagged() <= report.checked(), "{report}");
        }
    };
    (@target matrix, $output:expr, $json:expr) => { columns($output, $json) };
    (@target classes, $output:expr, $json:expr) => {{
        let indices: Vec<usize> = numbers($json).into_iter().map(|i| i as usize).collect();
        ClassTargets::new(indices.try_into().unwrap()).unwrap()
    }};
}

for_each_parity_case!(case);

// ---------------------------------------------------------------------------------------------
// Must be true 3: the seed post's mistakes are caught, by name.
// ---------------------------------------------------------------------------------------------

/// The seed network's gradients by hand in nalgebra, as the seed post derives them; with
/// `forget_sigmoid`, the output's δ is ∂E/∂a3 instead of ∂E/∂a3 · sigmoid'(z3).
fn seed_backward_by_hand(
    net: &Seed<f64>,
    x: &SVector<f64, 4>,
    y: &SVector<f64, 1>,
    forget_sigmoid: bool,
) -> Seed<f64> {
    let relu = |z: f64| z.max(0.0);
    let relu_prime = |z: f64| if z > 0.0 { 1.0 } else { 0.0 };
    let z1 = net.fc1.weight * x + net.fc1.bias;
    let a1 = z1.map(relu);
    let z2 = net.fc2.weight * a1 + net.fc2.bias;
    let a2 = z2.map(relu);
    let z3 = net.fc3.weight * a2 + net.fc3.bias;
    let a3 = z3.map(|z| 1.0 / (1.0 + (-z).exp()));
    // E = mean((a3 − y)²) over one element: ∂E/∂a3 = 2 (a3 − y).
    let de_da3 = (a3 - y) * 2.0;
    let delta3 = if forget_sigmoid {
        de_da3
    } else {
        de_da3.component_mul(&a3.map(|a| a * (1.0 - a)))
    };
    let delta2 = (net.fc3.weight.transpose() * delta3).component_mul(&z2.map(relu_prime));
    let delta1 = (net.fc2.weight.transpose() * delta2).component_mul(&z1.map(relu_prime));
    let mut grad = Seed::<f64>::zeros();
    grad.fc3.weight = delta3 * a2.transpose();
    grad.fc3.bias = delta3;
    grad.fc2.weight = delta2 * a1.transpose();
    grad.fc2.bias = delta2;
    grad.fc1.weight = delta1 * x.transpose();
    grad.fc1.bias = delta1;
    grad
}

#[test]
fn the_hand_written_backward_with_the_sigmoid_derivative_passes() {
    let (net, x, y) = seed::<f64>();
    let grad = seed_backward_by_hand(&net, &x, &y, false);
    let report = gradcheck::assert_passes(gradcheck::check_gradient(
        &net,
        &x,
        &y,
        &Mse,
        &grad,
        &Options::default(),
    ));
    assert!(report.max_relative_error() < 1e-7, "{report}");
}

#[test]
fn a_forgotten_output_sigmoid_derivative_fails_naming_fc3() {
    let (net, x, y) = seed::<f64>();
    let grad = seed_backward_by_hand(&net, &x, &y, true);
    let report = failed_report(gradcheck::check_gradient(
        &net,
        &x,
        &y,
        &Mse,
        &grad,
        &Options::default(),
    ));
    println!("{report}");
    // Every nonzero gradient is too large by 1/sigmoid'(z3) ≈ 4.2: fc3.weight[0][1] is the
    // seed post's example entry (fc3.weight[0][0] is an exact zero, a dead fc2 unit).
    let entry = report.entry("fc3.weight[0][1]").unwrap();
    assert!(entry.failed && entry.band == Band::Wrong, "{report}");
    assert!(report.entry("fc3.bias[0]").unwrap().failed);
    assert!(report.failures().any(|e| e.tensor == "fc3.weight"));
    let text = report.to_string();
    assert!(text.contains("gradcheck FAILED"), "{text}");
    assert!(text.contains("fc3.weight[0][1]"), "{text}");
    // The same mistake passes nothing it should not: the error carries the report.
    let error =
        gradcheck::check_gradient(&net, &x, &y, &Mse, &grad, &Options::default()).unwrap_err();
    assert!(error.to_string().contains("fc3.weight"));
    assert_eq!(error.report().unwrap().failed(), report.failed());
}

#[test]
#[should_panic(expected = "fc3.weight[0][1]")]
fn the_assert_helper_panics_with_the_report() {
    let (net, x, y) = seed::<f64>();
    let grad = seed_backward_by_hand(&net, &x, &y, true);
    gradcheck::assert_passes(gradcheck::check_gradient(
        &net,
        &x,
        &y,
        &Mse,
        &grad,
        &Options::default(),
    ));
}

network! {
    /// The seed network with a square hidden layer, so a transposed weight gradient still fits.
    pub struct Square < 4 => relu 5 => tanh 5 => sigmoid 1 >
}

#[test]
fn a_transposed_weight_gradient_fails_naming_its_off_diagonal_entries() {
    let (_, x, y) = seed::<f64>();
    let net = Square::<f64>::init(13);
    let z1 = net.fc1.weight * x + net.fc1.bias;
    let a1 = z1.map(|z| z.max(0.0));
    let z2 = net.fc2.weight * a1 + net.fc2.bias;
    let a2 = z2.map(f64::tanh);
    let z3 = net.fc3.weight * a2 + net.fc3.bias;
    let a3 = z3.map(|z| 1.0 / (1.0 + (-z).exp()));
    let delta3 = ((a3 - y) * 2.0).component_mul(&a3.map(|a| a * (1.0 - a)));
    let delta2 = (net.fc3.weight.transpose() * delta3).component_mul(&a2.map(|a| 1.0 - a * a));
    let delta1 = (net.fc2.weight.transpose() * delta2).component_mul(&z1.map(|z| {
        if z > 0.0 {
            1.0
        } else {
            0.0
        }
    }));
    let mut grad = Square::<f64>::zeros();
    grad.fc3.weight = delta3 * a2.transpose();
    grad.fc3.bias = delta3;
    // The mistake: a1 · δ2ᵀ, the transpose of δ2 · a1ᵀ; a 5 × 5 matrix either way.
    grad.fc2.weight = a1 * delta2.transpose();
    grad.fc2.bias = delta2;
    grad.fc1.weight = delta1 * x.transpose();
    grad.fc1.bias = delta1;

    let result = gradcheck::check_gradient(&net, &x, &y, &Mse, &grad, &Options::default());
    let report = failed_report(result);
    println!("{report}");
    assert!(report.failed() > 0);
    for entry in report.failures() {
        assert_eq!(entry.tensor, "fc2.weight", "{report}");
        assert_ne!(
            Some(entry.row),
            entry.col,
            "diagonal entries are right: {report}"
        );
    }
    assert!(report.to_string().contains("fc2.weight["));
    // Every entry outside fc2.weight is right.
    for entry in report.entries().iter().filter(|e| e.tensor != "fc2.weight") {
        assert!(!entry.failed && entry.relative_error < 1e-7, "{report}");
    }
}

// ---------------------------------------------------------------------------------------------
// Must be true 4: the seed network in f32 passes through its f64 cast.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_seed_network_in_f32_passes_through_its_f64_cast() {
    let (net, x, y) = seed::<f32>();
    let report = gradcheck::assert_gradients(
        &net.cast::<f64>(),
        &x.cast::<f64>(),
        &y.cast::<f64>(),
        &Mse,
        &Options::default(),
    );
    println!("{report}");
    assert_eq!(report.checked(), 40);
    assert!(report.max_relative_error() < 1e-7, "{report}");
    assert_eq!(report.band_counts()[0] + report.flagged(), 40);
}

/// The module documentation's network example.
#[test]
fn the_documented_network_example_runs() {
    let net = Seed::<f32>::init(13);
    let x = SVector::<f32, 4>::new(0.1, -0.7, 1.0, 0.9);
    let y = SVector::<f32, 1>::new(1.0);
    let report = gradcheck::check(
        &net.cast::<f64>(),
        &x.cast::<f64>(),
        &y.cast::<f64>(),
        &Mse,
        &Options::default(),
    )
    .unwrap();
    println!("{report}");
    assert!(report.passed());
}

// ---------------------------------------------------------------------------------------------
// Kinks, steps, rules, sampling, errors.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_relu_exactly_at_its_kink_is_flagged_not_failed() {
    let (mut net, x, y) = seed::<f64>();
    // Put fc1 unit 0's pre-activation exactly at 0: relu'(0) = 0 in the backward pass, while
    // any finite difference sees half of the right-hand slope.
    let z0 = (net.fc1.weight * x)[0];
    net.fc1.bias[0] = -z0;
    let report = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::default());
    println!("{report}");
    let bias = report.entry("fc1.bias[0]").unwrap();
    assert!(bias.near_kink && !bias.failed);
    assert!(report
        .near_kinks()
        .all(|e| e.tensor.starts_with("fc1.") && e.row == 0));
    assert!(report.max_relative_error() < 1e-7);
    // Unflagged, the same entry would be wrong: the kink is what the flag is for.
    if bias.analytic == 0.0 {
        assert_eq!(bias.band, Band::Wrong);
    }
}

#[test]
fn a_relu_just_off_its_kink_is_flagged_but_still_checked_from_the_steps_that_do_not_cross() {
    let (mut net, x, y) = seed::<f64>();
    // fc1 unit 2's pre-activation at 1e-4: the first steps (h = 1e-2 times an input near 1)
    // cross the kink, the later ones do not.
    let z2 = (net.fc1.weight * x)[2];
    net.fc1.bias[2] = 1e-4 - z2;
    let report = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::default());
    let bias = report.entry("fc1.bias[2]").unwrap();
    assert!(bias.near_kink, "{report}");
    assert!(bias.relative_error < 1e-6, "{report}");
    // The plain central difference at h = 1e-6 does not reach the kink at all.
    let central = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::central(1e-6));
    assert!(
        !central.entry("fc1.bias[2]").unwrap().near_kink,
        "{central}"
    );
}

network! {
    /// One linear layer: outputs are affine in the parameters, so residual kinks are easy to place.
    pub struct Affine < 3 => 2 >
}

#[test]
fn l1_and_huber_kinks_are_flagged() {
    let net = Affine::<f64>::init(3);
    let x = SMatrix::<f64, 3, 2>::new(0.5, -1.0, 0.25, 2.0, 0.75, -0.5);
    let output = net.forward_batch(&x);
    // L1: output (0, 1) sits exactly on its target.
    let mut target = output.add_scalar(0.3);
    target[(0, 1)] = output[(0, 1)];
    let report = gradcheck::assert_gradients(&net, &x, &target, &L1, &Options::default());
    println!("{report}");
    assert!(report.entry("fc1.bias[0]").unwrap().near_kink);
    assert!(!report.entry("fc1.bias[1]").unwrap().near_kink);
    assert!(report.max_relative_error() < 1e-7);
    // Huber: output (1, 0) is δ = 1 from its target.
    let mut target = output.add_scalar(0.3);
    target[(1, 0)] = output[(1, 0)] - 1.0;
    let report =
        gradcheck::assert_gradients(&net, &x, &target, &Huber::default(), &Options::default());
    assert!(report.entry("fc1.bias[1]").unwrap().near_kink);
    assert!(!report.entry("fc1.bias[0]").unwrap().near_kink);
    assert!(report.max_relative_error() < 1e-7);
}

#[test]
fn loss_kink_predicates_match_their_definitions() {
    let t = SMatrix::<f64, 2, 1>::new(0.0, 1.0);
    let m = |a: f64, b: f64| SMatrix::<f64, 2, 1>::new(a, b);
    assert!(Loss::crosses_kink(&L1, &m(-0.1, 1.5), &m(0.1, 1.5), &t));
    assert!(Loss::crosses_kink(&L1, &m(0.0, 1.5), &m(0.1, 1.5), &t));
    assert!(!Loss::crosses_kink(&L1, &m(0.1, 1.5), &m(0.2, 1.7), &t));
    assert!(Loss::crosses_kink(
        &Huber::default(),
        &m(0.5, 1.5),
        &m(1.5, 1.5),
        &t
    ));
    assert!(Loss::crosses_kink(
        &Huber::default(),
        &m(0.5, 1.9),
        &m(0.5, 2.1),
        &t
    ));
    assert!(!Loss::crosses_kink(
        &Huber::default(),
        &m(0.1, 1.0),
        &m(-0.1, 1.5),
        &t
    ));
    assert!(!Loss::crosses_kink(&Mse, &m(-1.0, 0.0), &m(1.0, 2.0), &t));
    use backprop::ActivationKind;
    assert_eq!(
        gradcheck::activation_kinks(ActivationKind::LeakyRelu(0.2)),
        &[0.0]
    );
    assert_eq!(
        gradcheck::activation_kinks(ActivationKind::Softplus),
        &[20.0]
    );
    assert!(gradcheck::activation_kinks(ActivationKind::Gelu).is_empty());
}

#[test]
fn the_plain_central_difference_passes_too_but_is_less_precise() {
    let (net, x, y) = seed::<f64>();
    let central = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::central(1e-6));
    let extrapolated = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::default());
    println!(
        "seed network: central h = 1e-6 max relative error {:.1e}, extrapolated {:.1e}",
        central.max_relative_error(),
        extrapolated.max_relative_error()
    );
    assert!(central.max_relative_error() < 1e-4);
    assert!(extrapolated.max_relative_error() <= central.max_relative_error());
    assert_eq!(
        central.options().difference,
        Difference::Central { h: 1e-6 }
    );
}

#[test]
fn the_standard_rule_catches_a_wrong_gradient_too_small_for_pytorchs_rule() {
    // f(x) = 1e-7 · x², gradient 2e-7 · x; the "wrong" gradient forgets the 2.
    let f = |v: &[f64]| 1e-7 * v[0] * v[0];
    let x = [0.8];
    let wrong = [1e-7 * x[0]];
    let torch = Options::default().rule(Rule::Torch);
    assert!(gradcheck::check_function(f, &x, &wrong, &torch).is_ok());
    let report = failed_report(gradcheck::check_function(
        f,
        &x,
        &wrong,
        &Options::default(),
    ));
    assert_eq!(report.entry("x[0]").unwrap().band, Band::Wrong);
    let relative = Options::default().rule(Rule::Relative(1e-7));
    assert!(gradcheck::check_function(f, &x, &wrong, &relative).is_err());
    let right = [2e-7 * x[0]];
    assert!(gradcheck::check_function(f, &x, &right, &Options::default()).is_ok());
}

#[test]
fn noise_level_entries_do_not_fail_the_standard_rule() {
    // sigmoid at 30: the slope 9.4e-14 is below the resolution of a value near 1.
    let f = |v: &[f64]| 1.0 / (1.0 + (-v[0]).exp());
    let z = 30.0f64;
    let s = f(&[z]);
    let report = gradcheck::check_function(f, &[z], &[s * (1.0 - s)], &Options::default());
    let report = gradcheck::assert_passes(report);
    println!("{report}");
}

#[test]
fn a_seeded_sample_checks_that_many_entries_the_same_way_every_time() {
    let (net, x, y) = seed::<f64>();
    let options = Options::default().sample(7, 42);
    let a = gradcheck::assert_gradients(&net, &x, &y, &Mse, &options);
    let b = gradcheck::assert_gradients(&net, &x, &y, &Mse, &options);
    let c = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::default().sample(7, 43));
    assert_eq!((a.checked(), a.total()), (7, 40));
    assert_eq!(a, b);
    assert_ne!(a.entries(), c.entries());
    // Each entry is restored exactly after its probes: the sampled entries' numbers equal the
    // full run's, bit for bit.
    let full = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::default());
    for entry in a.entries() {
        assert_eq!(full.entry(&entry.name()), Some(entry));
    }
    assert!(a.to_string().contains("a seeded sample of 40 entries"));
    let all = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::default().sample(99, 1));
    assert_eq!(all.checked(), 40);
}

#[test]
fn the_report_names_entries_as_pytorch_indexes_them() {
    let (net, x, y) = seed::<f64>();
    let report = gradcheck::assert_gradients(&net, &x, &y, &Mse, &Options::default().show(40));
    let text = report.to_string();
    println!("{text}");
    assert!(text.starts_with("gradcheck passed: 40 entries checked (every entry), "));
    for name in [
        "fc2.weight[1][0]",
        "fc1.bias[4]",
        "fc3.weight[0][1]",
        "fc3.bias[0]",
    ] {
        assert!(text.contains(name), "{name} in\n{text}");
    }
    let names: Vec<String> = report.entries().iter().map(|e| e.name()).collect();
    assert_eq!(names[0], "fc1.weight[0][0]");
    assert_eq!(names[1], "fc1.weight[0][1]");
    assert_eq!(names[20], "fc1.bias[0]");
    // fc2.weight[1][0] is the seed post's hand-computed entry; PyTorch's gradient is -0.03687.
    let entry = report.entry("fc2.weight[1][0]").unwrap();
    assert!((entry.numeric + 0.03687).abs() < 5e-6);
}

#[test]
fn errors_name_what_is_wrong() {
    let f = |v: &[f64]| v[0];
    let error = gradcheck::check_function(f, &[1.0, 2.0], &[1.0], &Options::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the analytic gradient of `x` has 1 entries; expected 2, one per input"
    );
    assert!(error.report().is_none());
    let error =
        gradcheck::check_function(|_| f64::NAN, &[1.0], &[1.0], &Options::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the loss is NaN at the point to check; expected a finite value"
    );
    let error = gradcheck::check_function(f, &[1.0], &[1.0], &Options::central(0.0)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "gradcheck option `h` is 0; expected a finite step above 0"
    );
    let error =
        gradcheck::check_function(f, &[1.0], &[1.0], &Options::default().sample(0, 1)).unwrap_err();
    assert!(error.to_string().contains("`sample`"));
    // A NaN analytic entry always fails.
    let report = failed_report(gradcheck::check_function(
        f,
        &[1.0],
        &[f64::NAN],
        &Options::default(),
    ));
    assert_eq!(report.entry("x[0]").unwrap().band, Band::Wrong);
}

#[test]
fn tolerances_that_would_pass_anything_are_rejected() {
    // A wrong gradient (the cosine forgotten) that every finite tolerance fails: a NaN, infinite
    // or negative tolerance is an error at the API, on every entry point, never a pass.
    let f = |v: &[f64]| v[0].sin();
    let x = [0.3];
    let wrong = [0.0];
    let (net, input, target) = seed::<f64>();
    let invalid = |options: Options, option: &str| {
        for result in [
            gradcheck::check_function(f, &x, &wrong, &options),
            gradcheck::check_function_with_kinks(f, |_, _| false, &x, &wrong, &options),
            gradcheck::check(&net, &input, &target, &Mse, &options),
        ] {
            match result {
                Err(GradcheckError::InvalidOption { option: found, .. }) => {
                    assert_eq!(found, option, "{options:?}")
                }
                other => panic!("{options:?}: {other:?}"),
            }
        }
    };
    for bad in [f64::INFINITY, f64::NAN, -1e-3, f64::NEG_INFINITY] {
        invalid(Options::default().rule(Rule::Relative(bad)), "rule");
        invalid(Options::default().tolerances(bad, 1e-3), "atol");
        invalid(Options::default().tolerances(1e-5, bad), "rtol");
        invalid(
            Options::default().rule(Rule::Torch).tolerances(bad, 1e-3),
            "atol",
        );
    }
    invalid(Options::default().rule(Rule::Relative(0.0)), "rule");
    let message = gradcheck::check_function(
        f,
        &x,
        &wrong,
        &Options::default().rule(Rule::Relative(f64::INFINITY)),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        message,
        "gradcheck option `rule` is inf; expected a finite relative-error bound above 0"
    );
    // Large finite tolerances are allowed (a user's choice) and zero ones too.
    let huge = Options::default().rule(Rule::Relative(1e300));
    assert!(gradcheck::check_function(f, &x, &wrong, &huge).is_ok());
    let exact = Options::default().rule(Rule::Torch).tolerances(0.0, 0.0);
    assert!(gradcheck::check_function(f, &x, &wrong, &exact).is_err());
}
