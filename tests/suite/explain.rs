//! The seed post's two hand computations, reproduced as explanations with every factor (the
//! seed network's picture is pinned in `tests/suite/pictures.rs`).

use crate::common;

use crate::common::{assert_close, numbers};
use backprop::explain::explain;
use backprop::prelude::*;

network! { pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 > }

fn seed() -> (
    Net<f32>,
    SVector<f32, 4>,
    SVector<f32, 1>,
    serde_json::Value,
) {
    common::seed()
}

#[test]
fn fc3_weight_grad_0_1_is_the_seed_posts_product() {
    let (net, x, y, fixture) = seed();
    let e = explain(&net, &x, &y, &Mse, "fc3.weight", 0, 1).unwrap();
    let labels: Vec<&str> = e.samples[0]
        .factors
        .iter()
        .map(|f| f.label.as_str())
        .collect();
    // ∂E/∂fc3.weight[0][1] = loss' · sigmoid' · fc3's input a2[1], as the post writes it.
    assert_eq!(labels, ["∂E/∂a3[0]", "sigmoid'(z3[0])", "fc3.input[1]"]);
    let expected = numbers(&fixture["grads"]["fc3.weight"])[1];
    assert_close(
        "fc3.weight.grad[0][1]",
        e.value as f64,
        expected,
        1e-6,
        1e-9,
    );
    assert_eq!(format!("{:.5}", e.value), "-0.02224");
    // Each factor by hand: MSE' = 2(a − t), sigmoid' = a(1 − a), input = fc2's output.
    let a3 = 0.387_541_17_f64;
    let factors: Vec<f64> = e.samples[0]
        .factors
        .iter()
        .map(|f| f.value as f64)
        .collect();
    assert_close("loss'", factors[0], 2.0 * (a3 - 1.0), 1e-6, 0.0);
    assert_close("sigmoid'", factors[1], a3 * (1.0 - a3), 1e-6, 0.0);
    assert_close(
        "input",
        factors[2],
        numbers(&fixture["activations"]["fc2"])[1],
        1e-6,
        0.0,
    );
}

#[test]
fn fc2_weight_grad_1_0_is_the_seed_posts_product() {
    let (net, x, y, fixture) = seed();
    let e = explain(&net, &x, &y, &Mse, "fc2.weight", 1, 0).unwrap();
    let labels: Vec<&str> = e.samples[0]
        .factors
        .iter()
        .map(|f| f.label.as_str())
        .collect();
    // loss' · sigmoid' · fc3.weight[0][1] · relu' · fc2.input[0]
    assert_eq!(
        labels,
        [
            "∂E/∂a3[0]",
            "sigmoid'(z3[0])",
            "fc3.weight[0][1]",
            "relu'(z2[1])",
            "fc2.input[0]"
        ]
    );
    let expected = numbers(&fixture["grads"]["fc2.weight"][1])[0];
    assert_close(
        "fc2.weight.grad[1][0]",
        e.value as f64,
        expected,
        1e-6,
        1e-9,
    );
    assert_eq!(format!("{:.5}", e.value), "-0.03687");
    let text = e.to_string();
    assert!(
        text.starts_with("fc2.weight.grad[1][0] = -0.03687"),
        "{text}"
    );
    assert!(
        text.contains(
            "∂E/∂a3[0] · sigmoid'(z3[0]) · fc3.weight[0][1] · relu'(z2[1]) · fc2.input[0]"
        ),
        "{text}"
    );
}

#[test]
fn several_paths_are_shown_as_a_delta_sum() {
    let (net, x, y, fixture) = seed();
    // fc1.weight[0][1] reaches the loss through both units of fc2: a sum of two δ terms.
    let e = explain(&net, &x, &y, &Mse, "fc1.weight", 0, 1).unwrap();
    let sum = e.samples[0]
        .factors
        .iter()
        .find(|f| !f.terms.is_empty())
        .expect("a δ sum");
    assert_eq!(sum.terms.len(), 2);
    assert_close(
        "Σ terms",
        sum.terms.iter().map(|t| t.value as f64).sum(),
        sum.value as f64,
        1e-6,
        1e-9,
    );
    let expected = numbers(&fixture["grads"]["fc1.weight"][0])[1];
    assert_close(
        "fc1.weight.grad[0][1]",
        e.value as f64,
        expected,
        1e-6,
        1e-9,
    );
}

#[test]
fn bad_entries_are_errors_that_say_why() {
    let (net, x, y, _) = seed();
    let unknown = explain(&net, &x, &y, &Mse, "fc4.weight", 0, 0).unwrap_err();
    assert!(
        unknown.to_string().contains("no parameter `fc4.weight`"),
        "{unknown}"
    );
    let outside = explain(&net, &x, &y, &Mse, "fc3.weight", 0, 2).unwrap_err();
    assert_eq!(
        outside.to_string(),
        "`fc3.weight` has shape 1×2: entry [0][2] is outside it"
    );
}
