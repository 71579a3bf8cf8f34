//! Shared helpers for the PyTorch-parity tests: reading fixture tensors and comparing numbers.
#![allow(dead_code)]

pub mod counting;

use backprop::nalgebra::SVector;
use backprop::scalar::{constant, to_f64};
use backprop::Network;
use serde_json::Value;

/// Reads a JSON fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The case called `name` of the fixture `file` (a JSON object with a `cases` list), read once
/// per file and test binary.
pub fn fixture_case(file: &'static str, name: &str) -> &'static Value {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static FILES: OnceLock<Mutex<HashMap<&'static str, &'static Value>>> = OnceLock::new();
    let all = *FILES
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(file)
        .or_insert_with(|| Box::leak(Box::new(fixture(file))));
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {file}"))
}

/// The parity tolerance of a fixture dtype: `(relative, absolute)`, 1e-12 in f64 and 1e-5 in
/// f32, with an absolute floor for values near zero.
pub fn tolerance(dtype: &str) -> (f64, f64) {
    match dtype {
        "float64" => (1e-12, 1e-14),
        "float32" => (1e-5, 1e-7),
        other => panic!("unknown dtype {other}"),
    }
}

/// A JSON number or a (nested) list of numbers, flattened row by row.
pub fn numbers(value: &Value) -> Vec<f64> {
    match value {
        Value::Number(n) => vec![n.as_f64().expect("a finite number")],
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        other => panic!("expected numbers, found {other}"),
    }
}

/// Row `r` of a `[rows][cols]` JSON list (or entry `r` of a flat one), as numbers.
pub fn row(value: &Value, r: usize) -> Vec<f64> {
    numbers(&value[r])
}

/// Sets every parameter of `net` from a state_dict-like JSON object (`"fc1.weight": [[...]]`).
pub fn load_params<N: Network>(net: &mut N, params: &Value) {
    set_params_row_major(net, |name| {
        numbers(&params[name]).into_iter().map(constant).collect()
    });
}

/// Sets every parameter of `net` from `values(name)`, its entries row-major as PyTorch stores them.
pub fn set_params_row_major<N: Network>(
    net: &mut N,
    mut values: impl FnMut(&str) -> Vec<N::Scalar>,
) {
    for mut param in net.params_mut() {
        let values = values(param.name);
        assert_eq!(
            values.len(),
            param.rows * param.cols,
            "size of {}",
            param.name
        );
        for row in 0..param.rows {
            for col in 0..param.cols {
                param.set(row, col, values[row * param.cols + col]);
            }
        }
    }
}

/// Asserts `|found − expected| ≤ atol + rtol·|expected|`, naming what is compared.
pub fn assert_close(what: &str, found: f64, expected: f64, rtol: f64, atol: f64) {
    let error = (found - expected).abs();
    assert!(
        error <= atol + rtol * expected.abs(),
        "{what}: found {found:e}, PyTorch has {expected:e} (difference {error:e}, allowed {atol:e} + {rtol:e}·|expected|)"
    );
}

/// Compares every parameter of `net` with a state_dict-like JSON object.
pub fn assert_params_close<N: Network>(
    net: &N,
    expected: &Value,
    what: &str,
    rtol: f64,
    atol: f64,
) {
    for param in net.params() {
        let values = numbers(&expected[param.name]);
        assert_eq!(
            values.len(),
            param.rows * param.cols,
            "size of {}",
            param.name
        );
        for row in 0..param.rows {
            for col in 0..param.cols {
                assert_close(
                    &format!("{what} {}[{row}][{col}]", param.name),
                    to_f64(param.get(row, col)),
                    values[row * param.cols + col],
                    rtol,
                    atol,
                );
            }
        }
    }
}

/// The seed post's network, input and target with PyTorch's parameters
/// (`tests/fixtures/seed_torch.json`), and the fixture itself.
pub fn seed<N: Network<Scalar = f32>>() -> (N, SVector<f32, 4>, SVector<f32, 1>, Value) {
    let fixture = fixture("seed_torch.json");
    let mut net = N::zeros();
    load_params(&mut net, &fixture["params"]);
    let as_f32 = |json: &Value| {
        numbers(json)
            .into_iter()
            .map(|v| v as f32)
            .collect::<Vec<_>>()
    };
    let x = SVector::<f32, 4>::from_vec(as_f32(&fixture["input"]));
    let y = SVector::<f32, 1>::from_vec(as_f32(&fixture["target"]));
    (net, x, y, fixture)
}

/// A matrix shaped like `_shape` from a `[batch][units]` JSON list: one column per sample.
pub fn columns<T: backprop::Scalar, const R: usize, const C: usize>(
    _shape: &backprop::nalgebra::SMatrix<T, R, C>,
    json: &Value,
) -> backprop::nalgebra::SMatrix<T, R, C> {
    backprop::nalgebra::SMatrix::from_fn(|r, c| constant(row(json, c)[r]))
}

/// Calls `$each!(name, scalar, batch, loss, target kind, [declaration])` once for every case of
/// `tests/fixtures/parity.json` (written by `scripts/gen_parity_fixtures.py`): the one list of the
/// parity architectures, shared by the parity test and the gradient check.
#[allow(unused_macros)]
macro_rules! for_each_parity_case {
    ($each:ident) => {
        $each!(seed_f64_b1, f64, 1, Mse, matrix, [4 => relu 5 => relu 2 => sigmoid 1]);
        $each!(seed_f32_b8, f32, 8, Mse, matrix, [4 => relu 5 => relu 2 => sigmoid 1]);
        $each!(d1_identity_mse_f64_b3, f64, 3, Mse, matrix, [3 => 2]);
        $each!(d1_sigmoid_bce_f32_b4, f32, 4, Bce, matrix, [5 => sigmoid 1]);
        $each!(d2_tanh_l1_f64_b5, f64, 5, L1, matrix, [3 => tanh 6 => 2]);
        $each!(d2_leaky_huber_f32_b6, f32, 6, Huber::default(), matrix, [4 => leaky_relu 7 => 3]);
        $each!(d2_leaky_arg_huber_f64_b2, f64, 2, Huber::default(), matrix, [4 => leaky_relu(0.2) 5 => tanh 2]);
        $each!(d3_softplus_sse_f64_b1, f64, 1, Sse, matrix, [2 => softplus 4 => softplus 3 => 1]);
        $each!(d3_elu_half_sse_f32_b3, f32, 3, HalfSse, matrix, [3 => elu 4 => elu(0.5) 4 => 2]);
        $each!(d2_gelu_ce_index_f64_b4, f64, 4, CrossEntropy, classes, [6 => gelu 8 => 4]);
        $each!(d2_silu_ce_prob_f32_b5, f32, 5, CrossEntropy, matrix, [5 => silu 6 => 3]);
        $each!(d2_softmax_mse_f64_b3, f64, 3, Mse, matrix, [4 => tanh 5 => softmax 3]);
        $each!(d4_mixed_bce_logits_f64_b7, f64, 7, BceWithLogits, matrix, [5 => relu 8 => tanh 6 => silu 4 => 2]);
        $each!(d4_mixed_ce_index_f32_b1, f32, 1, CrossEntropy, classes, [3 => gelu 5 => elu 5 => leaky_relu 4 => 3]);
        $each!(d2_softmax_hidden_bce_f64_b4, f64, 4, Bce, matrix, [3 => softmax 4 => sigmoid 2]);
        $each!(d3_sigmoid_l1_f32_b2, f32, 2, L1, matrix, [4 => sigmoid 3 => sigmoid 3 => 2]);
        $each!(d2_relu_bce_logits_f32_b1, f32, 1, BceWithLogits, matrix, [6 => relu 4 => 1]);
        $each!(d3_softplus_gelu_huber_f64_b8, f64, 8, Huber::default(), matrix, [3 => softplus 5 => gelu 3 => 1]);
        $each!(d2_identity_sse_f32_b4, f32, 4, Sse, matrix, [2 => identity 3 => identity 2]);
        $each!(d4_tanh_half_sse_f64_b2, f64, 2, HalfSse, matrix, [4 => tanh 4 => tanh 4 => tanh 4 => 2]);
        $each!(d1_ce_index_f32_b6, f32, 6, CrossEntropy, classes, [5 => 4]);
        $each!(d3_silu_mse_f64_b16, f64, 16, Mse, matrix, [8 => silu 10 => relu 6 => sigmoid 2]);
        $each!(d2_elu_arg_bce_f32_b3, f32, 3, Bce, matrix, [3 => elu(2.0) 4 => sigmoid 2]);
        $each!(d3_gelu_ce_prob_f64_b1, f64, 1, CrossEntropy, matrix, [4 => gelu 6 => silu 5 => 3]);
        $each!(d2_leaky_arg_mse_f32_b5, f32, 5, Mse, matrix, [3 => leaky_relu(0.2) 4 => elu 3 => 2]);
    };
}
