//! Parity with PyTorch over 25 random architectures (`tests/fixtures/parity.json`, written by
//! `scripts/gen_parity_fixtures.py`): every activation, every loss, depths 1 to 4, batches of 1 to
//! 16, f32 and f64. Each case checks every layer's pre-activation and output, the loss and every
//! gradient: to 1e-12 relative in f64 and 1e-5 in f32, with an absolute floor for values near zero.

use crate::common::{
    assert_close, assert_params_close, columns, fixture, fixture_case, load_params, numbers, row,
    tolerance,
};
use backprop::explain::explain;
use backprop::prelude::*;
use backprop::scalar::to_f64;
use serde_json::Value;

/// The fixture case called `name`.
fn case(name: &str) -> &'static Value {
    fixture_case("parity.json", name)
}

/// Compares a `[units × batch]` matrix with a `[batch][units]` JSON list.
fn assert_columns<T: Scalar, const R: usize, const C: usize>(
    what: &str,
    found: &SMatrix<T, R, C>,
    json: &Value,
    dtype: &str,
) {
    let (rtol, atol) = tolerance(dtype);
    assert_eq!(json.as_array().unwrap().len(), C, "{what}: batch size");
    for c in 0..C {
        let expected = row(json, c);
        assert_eq!(expected.len(), R, "{what}: width");
        for r in 0..R {
            assert_close(
                &format!("{what}[sample {c}][{r}]"),
                to_f64(found[(r, c)]),
                expected[r],
                rtol,
                atol,
            );
        }
    }
}

/// The declared layers agree with the fixture's: names, widths, activations and their arguments.
fn assert_same_architecture(layers: &[backprop::LayerInfo], case: &Value) {
    let expected = case["layers"].as_array().unwrap();
    assert_eq!(layers.len(), expected.len(), "depth");
    for (layer, json) in layers.iter().zip(expected) {
        assert_eq!(layer.name, json["name"]);
        assert_eq!(
            layer.inputs as u64,
            json["in"].as_u64().unwrap(),
            "{} inputs",
            layer.name
        );
        assert_eq!(
            layer.outputs as u64,
            json["out"].as_u64().unwrap(),
            "{} outputs",
            layer.name
        );
        let activation = json["activation"].as_str().unwrap();
        let spelled = match json["alpha"].as_f64() {
            Some(alpha) => format!("{activation}({alpha:?})"),
            None => activation.to_owned(),
        };
        assert_eq!(layer.activation, spelled, "{} activation", layer.name);
    }
}

/// Compares a layer's column-major `[units × batch]` values with a `[batch][units]` JSON list.
fn assert_layer<T: Scalar>(name: &str, found: &[T], json: &Value, dtype: &str) {
    let (rtol, atol) = tolerance(dtype);
    let samples = json.as_array().unwrap();
    let units = found.len() / samples.len();
    for (c, sample) in samples.iter().enumerate() {
        for (r, expected) in numbers(sample).into_iter().enumerate() {
            assert_close(
                &format!("{name}[sample {c}][{r}]"),
                to_f64(found[r + c * units]),
                expected,
                rtol,
                atol,
            );
        }
    }
}

/// For seeded random entries, the chain-rule explanation's value equals the backward pass's
/// gradient: the explanation recomputes every δ by hand in f64, so this is a naive control.
fn assert_explanations_match<N, L, Y, const I: usize, const O: usize, const B: usize>(
    net: &N,
    x: &SMatrix<N::Scalar, I, B>,
    target: &Y,
    loss: &L,
    grad: &N,
    dtype: &str,
) where
    N: Model<I, O>,
    L: Loss<N::Scalar, O, B, Y>,
{
    let (rtol, atol) = tolerance(dtype);
    let names: Vec<&str> = net.params().map(|p| p.name).collect();
    // A fixed linear congruential stream per network size: reproducible, no extra dependency.
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ N::PARAMETERS as u64;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % bound as u64) as usize
    };
    for _ in 0..8 {
        let name = names[next(names.len())];
        let param = grad.param(name).unwrap();
        let (row, col) = (next(param.rows), next(param.cols));
        let explanation = explain(net, x, target, loss, name, row, col).unwrap();
        let product: f64 = explanation.samples.iter().map(|s| to_f64(s.value)).sum();
        assert_close(
            &format!("explanation of {}", explanation.entry),
            product,
            to_f64(param.get(row, col)),
            rtol,
            atol,
        );
        for chain in &explanation.samples {
            let factors: f64 = chain.factors.iter().map(|f| to_f64(f.value)).product();
            assert_close(
                &format!("factors of {} sample {}", explanation.entry, chain.sample),
                factors,
                to_f64(chain.value),
                rtol,
                atol,
            );
        }
    }
}

/// One parity test: declare the network, load PyTorch's parameters, run forward, loss and backward.
macro_rules! parity {
    ($name:ident, $scalar:ty, $batch:literal, $loss:expr, $target:ident, [$($declaration:tt)*]) => {
        #[test]
        fn $name() {
            network! { struct Net < $($declaration)* > }
            let case = case(stringify!($name));
            let dtype = case["dtype"].as_str().unwrap();
            assert_eq!(dtype, if stringify!($scalar) == "f64" { "float64" } else { "float32" });
            assert_eq!(case["batch"].as_u64().unwrap(), $batch);
            assert_same_architecture(<Net<$scalar> as Network>::LAYERS, case);

            let mut net = Net::<$scalar>::zeros();
            load_params(&mut net, &case["params"]);
            let mut ws = net.workspace::<$batch>();
            let x = columns(&SMatrix::zeros(), &case["input"]);
            let output = *net.forward_into(&x, &mut ws);
            let target = parity!(@target $target, &output, &case["target"]);
            let mut grad = Net::zeros();
            let loss = net.backward(&x, &target, &$loss, &mut ws, &mut grad);

            assert_columns("output", &output, &case["output"], dtype);
            for info in <Net<$scalar> as Network>::LAYERS {
                let values = ws.layer(info.name).unwrap();
                assert_layer(info.name, values.z, &case["pre_activations"][info.name], dtype);
                assert_layer(info.name, values.a, &case["activations"][info.name], dtype);
            }
            let (rtol, atol) = tolerance(dtype);
            assert_close("loss", to_f64(loss), case["loss_value"].as_f64().unwrap(), rtol, atol);
            assert_params_close(&grad, &case["grads"], "gradient", rtol, atol);
            assert_explanations_match(&net, &x, &target, &$loss, &grad, dtype);
        }
    };
    (@target matrix, $output:expr, $json:expr) => { columns($output, $json) };
    (@target classes, $output:expr, $json:expr) => {{
        let indices: Vec<usize> = numbers($json).into_iter().map(|i| i as usize).collect();
        ClassTargets::new(indices.try_into().unwrap()).unwrap()
    }};
}

for_each_parity_case!(parity);

/// Every fixture case has a test: a case added to the generator cannot be silently skipped.
#[test]
fn every_fixture_case_is_tested() {
    let source = include_str!("common/mod.rs");
    let all = fixture("parity.json");
    for case in all["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        assert!(
            source.contains(&format!("$each!({name},")),
            "fixture case {name} has no test"
        );
    }
    assert!(all["cases"].as_array().unwrap().len() >= 20);
}
