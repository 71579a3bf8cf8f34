//! Shared helpers for the PyTorch-parity tests: reading fixture tensors and comparing numbers.
#![allow(dead_code)]

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
    for mut param in net.params_mut() {
        let values = numbers(&params[param.name]);
        assert_eq!(
            values.len(),
            param.rows * param.cols,
            "size of {}",
            param.name
        );
        for row in 0..param.rows {
            for col in 0..param.cols {
                param.set(row, col, constant(values[row * param.cols + col]));
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
