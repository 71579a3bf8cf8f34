//! Derivatives with respect to the input against PyTorch (`tests/fixtures/jacobian.json`, written
//! by `scripts/gen_jacobian_fixtures.py`): per-sample Jacobians from
//! `torch.autograd.functional.jacobian` (both modes checked), JVPs and VJPs over a batch, and the
//! loss's input gradient from `torch.autograd.grad` (directly, and from `backward`'s workspace),
//! for 11 architectures covering every activation, softmax hidden and at the output, f32 and f64:
//! to 1e-12 relative in f64 and 1e-5 in f32.

use crate::common;

use crate::common::{
    assert_close, columns, fixture, fixture_case, load_params, numbers, tolerance,
};
use backprop::prelude::*;
use backprop::scalar::to_f64;
use serde_json::Value;

/// The fixture case called `name`.
fn case(name: &str) -> &'static Value {
    fixture_case("jacobian.json", name)
}

/// Compares a matrix with a row-major JSON list of lists (`[R][C]`).
fn assert_rows<T: Scalar, const R: usize, const C: usize>(
    what: &str,
    found: &SMatrix<T, R, C>,
    json: &Value,
    dtype: &str,
) {
    let (rtol, atol) = tolerance(dtype);
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), R, "{what}: rows");
    for (r, row) in rows.iter().enumerate() {
        let row = numbers(row);
        assert_eq!(row.len(), C, "{what}: columns");
        for (c, expected) in row.into_iter().enumerate() {
            let found = to_f64(found[(r, c)]);
            assert_close(&format!("{what}[{r}][{c}]"), found, expected, rtol, atol);
        }
    }
}

/// One fixture case: declare the network, load PyTorch's parameters, compare every derivative.
macro_rules! jacobian_case {
    ($name:ident, $scalar:ty, $batch:literal, $loss:expr, [$($declaration:tt)*]) => {
        #[test]
        fn $name() {
            network! { struct Net < $($declaration)* > }
            const IN: usize = Net::<f32>::INPUTS;
            const OUT: usize = Net::<f32>::OUTPUTS;
            let case = case(stringify!($name));
            let dtype = case["dtype"].as_str().unwrap();
            assert_eq!(dtype, if stringify!($scalar) == "f64" { "float64" } else { "float32" });
            assert_eq!(case["batch"].as_u64().unwrap(), $batch);
            let mut net = Net::<$scalar>::zeros();
            load_params(&mut net, &case["params"]);
            let x: SMatrix<$scalar, IN, $batch> = columns(&SMatrix::zeros(), &case["input"]);

            for k in 0..$batch {
                let sample = x.column(k).into_owned();
                let expected = &case["jacobian"][k];
                assert_rows(&format!("jacobian (sample {k})"), &net.jacobian(&sample), expected, dtype);
                let forward = net.jacobian_forward_mode(&sample);
                assert_rows(&format!("forward mode (sample {k})"), &forward, expected, dtype);
                let reverse = net.jacobian_reverse_mode(&sample);
                assert_rows(&format!("reverse mode (sample {k})"), &reverse, expected, dtype);
            }

            let v: SMatrix<$scalar, IN, $batch> = columns(&SMatrix::zeros(), &case["v"]);
            let u: SMatrix<$scalar, OUT, $batch> = columns(&SMatrix::zeros(), &case["u"]);
            let (output, jvp) = net.jvp(&x, &v);
            assert_rows("jvp output", &output.transpose(), &case["output"], dtype);
            assert_rows("jvp", &jvp.transpose(), &case["jvp"], dtype);
            let (output, vjp) = net.vjp(&x, &u);
            assert_rows("vjp output", &output.transpose(), &case["output"], dtype);
            assert_rows("vjp", &vjp.transpose(), &case["vjp"], dtype);

            let target: SMatrix<$scalar, OUT, $batch> = columns(&SMatrix::zeros(), &case["target"]);
            let (rtol, atol) = tolerance(dtype);
            let (loss, gradient) = net.input_gradient(&x, &target, &$loss);
            let expected_loss = case["loss_value"].as_f64().unwrap();
            assert_close("loss", to_f64(loss), expected_loss, rtol, atol);
            assert_rows("input gradient", &gradient.transpose(), &case["input_gradient"], dtype);
            // The same gradient from the workspace `backward` leaves: one product, no new pass.
            let (mut ws, mut grad) = (net.workspace::<$batch>(), Net::zeros());
            let loss = net.backward(&x, &target, &$loss, &mut ws, &mut grad);
            assert_close("backward loss", to_f64(loss), expected_loss, rtol, atol);
            let from_backward = net.input_gradient_of(&ws);
            assert_rows("input gradient of backward", &from_backward.transpose(), &case["input_gradient"], dtype);
        }
    };
}

jacobian_case!(seed_f64, f64, 3, Mse, [4 => relu 5 => relu 2 => sigmoid 1]);
jacobian_case!(seed_f32, f32, 2, Mse, [4 => relu 5 => relu 2 => sigmoid 1]);
jacobian_case!(tanh_wide_out_f64, f64, 2, Mse, [2 => tanh 6 => 5]);
jacobian_case!(dynamics_f32, f32, 2, Mse, [6 => tanh 32 => 4]);
jacobian_case!(leaky_elu_f64, f64, 3, Huber::default(), [3 => leaky_relu(0.2) 5 => elu 4 => 3]);
jacobian_case!(softplus_gelu_f32, f32, 2, L1, [5 => softplus 6 => gelu 4 => 2]);
jacobian_case!(silu_softmax_out_f64, f64, 2, Mse, [3 => silu 5 => softmax 4]);
jacobian_case!(softmax_hidden_f32, f32, 2, Bce, [4 => softmax 3 => sigmoid 6]);
jacobian_case!(leaky_default_elu_arg_f32, f32, 1, Sse, [2 => leaky_relu 4 => elu(0.5) 7]);
jacobian_case!(identity_deep_f64, f64, 2, HalfSse, [3 => identity 4 => tanh 4 => sigmoid 4 => 2]);
jacobian_case!(mid_f64, f64, 2, Mse, [64 => relu 32 => sigmoid 10]);

/// Every fixture case has a test above.
#[test]
fn every_fixture_case_is_tested() {
    let source = include_str!("jacobian.rs");
    let all = fixture("jacobian.json");
    let cases = all["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        assert!(
            source.contains(&format!("jacobian_case!({name},")),
            "fixture case {name} has no test"
        );
    }
    assert!(cases.len() >= 8);
}

network! { struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct Smooth < 3 => tanh 6 => softmax 4 > }

/// The seed post's network (PyTorch's parameters) and input, in f64.
fn seed_post() -> (Seed<f64>, SVector<f64, 4>) {
    let (net, x, _, _) = common::seed::<Seed<f32>>();
    (net.cast(), x.cast())
}

#[test]
fn gradcheck_passes_the_input_jacobian_of_correct_networks() {
    use backprop::gradcheck::{check_jacobian, Options};
    let (seed, x) = seed_post();
    let report = check_jacobian(&seed, &x, &seed.jacobian(&x), &Options::default()).unwrap();
    assert_eq!(report.checked(), 4);
    let smooth = Smooth::<f64>::init(5);
    let x = SVector::<f64, 3>::new(0.4, -1.2, 0.7);
    let report = check_jacobian(&smooth, &x, &smooth.jacobian(&x), &Options::default()).unwrap();
    assert_eq!(report.checked(), 12);
    assert_eq!(report.flagged(), 0);
}

#[test]
fn gradcheck_fails_a_jacobian_that_forgets_the_output_activation_and_names_the_entry() {
    use backprop::gradcheck::{check_jacobian, GradcheckError, Options};
    let (net, x) = seed_post();
    // The mistake of the seed post: the output's sigmoid' left out. By the chain rule the
    // correct Jacobian is sigmoid'(z3) times the one without it, so dividing by it gives the
    // wrong one.
    let relu = |v: SVector<f64, 5>| v.map(|z| z.max(0.0));
    let a2 = net
        .fc2
        .affine_value(&relu(net.fc1.affine_value(&x)))
        .map(|z| z.max(0.0));
    let z3 = net.fc3.affine_value(&a2)[0];
    let sigmoid = 1.0 / (1.0 + (-z3).exp());
    let wrong = net.jacobian(&x) / (sigmoid * (1.0 - sigmoid));
    let Err(GradcheckError::Failed(report)) = check_jacobian(&net, &x, &wrong, &Options::default())
    else {
        panic!("a wrong Jacobian passed");
    };
    let worst = report.worst().unwrap();
    assert!(worst.failed);
    assert_eq!(worst.tensor, "jacobian");
    assert!(worst.name().starts_with("jacobian[0]["), "{}", worst.name());
    assert!(report.to_string().contains("jacobian[0]["));
}

#[test]
fn gradcheck_flags_a_relu_kink_in_the_input_jacobian_instead_of_failing() {
    use backprop::gradcheck::{check_jacobian, Options};
    network! { struct Kinked < 2 => relu 2 => 1 > }
    let mut net = Kinked::<f64>::zeros();
    // z1[0] = x0 − x1 is exactly 0 at x = (0.5, 0.5); z1[1] = x0 + 1 is live.
    net.fc1.weight = SMatrix::<f64, 2, 2>::new(1.0, -1.0, 1.0, 0.0);
    net.fc1.bias = SVector::<f64, 2>::new(0.0, 1.0);
    net.fc2.weight = SMatrix::<f64, 1, 2>::new(2.0, 3.0);
    let x = SVector::<f64, 2>::new(0.5, 0.5);
    let jacobian = net.jacobian(&x);
    // By hand: relu'(0) = 0 (PyTorch's choice), so J = [3·1, 0] through the live unit only.
    assert_eq!(jacobian, SMatrix::<f64, 1, 2>::new(3.0, 0.0));
    let report = check_jacobian(&net, &x, &jacobian, &Options::default()).unwrap();
    assert_eq!(report.flagged(), 2, "{report}");
}

/// The example in `check_jacobian`'s documentation.
#[test]
fn the_check_jacobian_doc_example_runs() {
    use backprop::gradcheck;
    network! { struct Net < 4 => tanh 5 => sigmoid 2 > }
    let net = Net::<f64>::init(3);
    let x = SVector::<f64, 4>::new(0.3, -0.2, 0.8, 0.1);
    let report =
        gradcheck::check_jacobian(&net, &x, &net.jacobian(&x), &Default::default()).unwrap();
    assert_eq!(report.checked(), 8);
}

/// Every entry's chain-rule explanation equals the generated Jacobian's entry (the explanation is
/// a scalar backward pass by hand, so this is a naive control), for the seed post's network, a
/// softmax output and a one-unit first layer; and its terms add up to the δ sum they explain.
#[test]
fn every_jacobian_entry_is_explained_as_chain_rule_factors() {
    use backprop::explain::explain_jacobian;
    network! { struct Narrow < 3 => elu 1 => tanh 2 > }
    fn check<N, const I: usize, const O: usize>(
        net: &N,
        x: &SVector<f64, I>,
        jacobian: &SMatrix<f64, O, I>,
    ) where
        N: Model<I, O, Scalar = f64>,
    {
        for o in 0..O {
            for i in 0..I {
                let explanation = explain_jacobian(net, x, o, i).unwrap();
                assert_eq!(explanation.entry, format!("jacobian[{o}][{i}]"));
                let what = format!("explanation of jacobian[{o}][{i}]");
                assert_close(&what, explanation.value, jacobian[(o, i)], 1e-12, 1e-14);
                let chain = &explanation.samples[0];
                let product: f64 = chain.factors.iter().map(|f| f.value).product();
                assert_close(&what, product, explanation.value, 1e-12, 1e-14);
                for factor in chain.factors.iter().filter(|f| !f.terms.is_empty()) {
                    let sum: f64 = factor.terms.iter().map(|t| t.value).sum();
                    assert_close(&factor.label, sum, factor.value, 1e-12, 1e-14);
                }
            }
        }
    }
    let (seed, x) = seed_post();
    check(&seed, &x, &seed.jacobian(&x));
    // The seed post's first layer has five units: the input's paths split five ways.
    let explanation = explain_jacobian(&seed, &x, 0, 2).unwrap();
    assert_eq!(explanation.samples[0].factors[0].terms.len(), 5);
    assert!(explanation
        .to_string()
        .starts_with("jacobian[0][2] = ∂output/∂input = "));
    let smooth = Smooth::<f64>::init(5);
    let x3 = SVector::<f64, 3>::new(0.4, -1.2, 0.7);
    check(&smooth, &x3, &smooth.jacobian(&x3));
    let narrow = Narrow::<f64>::init(2);
    check(&narrow, &x3, &narrow.jacobian(&x3));
    assert!(explain_jacobian(&narrow, &x3, 2, 0).is_err());
}

/// The example in `explain_jacobian`'s documentation.
#[test]
fn the_explain_jacobian_doc_example_runs() {
    use backprop::explain::explain_jacobian;
    network! { struct Net < 2 => tanh 3 => sigmoid 1 > }
    let net = Net::<f64>::init(4);
    let x = SVector::<f64, 2>::new(0.5, -1.0);
    let explanation = explain_jacobian(&net, &x, 0, 1).unwrap();
    assert!((explanation.value - net.jacobian(&x)[(0, 1)]).abs() < 1e-12);
}
