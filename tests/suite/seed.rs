//! The seed post's network against PyTorch's exact numbers (`tests/fixtures/seed_torch.json`):
//! output, loss, every gradient, and the parameters after one SGD step.

use crate::common;

use crate::common::{assert_close, assert_params_close, numbers};
use backprop::prelude::*;

network! {
    /// The 4-5-2-1 network of the seed post.
    pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >
}

const RTOL: f64 = 1e-6;
const ATOL: f64 = 1e-9;

fn seed_network() -> (
    Net<f32>,
    SVector<f32, 4>,
    SVector<f32, 1>,
    serde_json::Value,
) {
    common::seed()
}

#[test]
fn output_and_every_layer_match_pytorch() {
    let (net, x, _, fixture) = seed_network();
    let mut ws = net.workspace();
    let output = net.forward_into(&x, &mut ws)[0];
    assert_close(
        "output",
        output as f64,
        numbers(&fixture["output"])[0],
        RTOL,
        ATOL,
    );
    for (name, layer) in [
        ("fc1", ws.fc1.a.as_slice()),
        ("fc2", ws.fc2.a.as_slice()),
        ("fc3", ws.fc3.a.as_slice()),
    ] {
        for (i, (&found, expected)) in layer
            .iter()
            .zip(numbers(&fixture["activations"][name]))
            .enumerate()
        {
            assert_close(
                &format!("{name} output[{i}]"),
                found as f64,
                expected,
                RTOL,
                ATOL,
            );
        }
    }
    assert_eq!(net.forward(&x)[0], output, "forward and forward_into agree");
}

#[test]
fn loss_and_every_gradient_match_pytorch() {
    let (net, x, y, fixture) = seed_network();
    let mut ws = net.workspace();
    let mut grad = Net::zeros();
    let loss = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
    assert_close(
        "loss",
        loss as f64,
        fixture["loss_value"].as_f64().unwrap(),
        RTOL,
        ATOL,
    );
    assert_close(
        "loss()",
        net.loss(&x, &y, &Mse) as f64,
        fixture["loss_value"].as_f64().unwrap(),
        RTOL,
        ATOL,
    );
    assert_params_close(&grad, &fixture["grads"], "gradient", RTOL, ATOL);
}

#[test]
fn one_sgd_step_matches_pytorch() {
    let (mut net, x, y, fixture) = seed_network();
    let mut ws = net.workspace();
    let mut grad = Net::zeros();
    net.backward(&x, &y, &Mse, &mut ws, &mut grad);
    Sgd::new(fixture["sgd_lr"].as_f64().unwrap()).step(&mut net, &grad);
    assert_params_close(&net, &fixture["params_after_sgd"], "after SGD", RTOL, ATOL);
}

#[test]
fn named_access_reaches_every_parameter() {
    let (net, _, _, fixture) = seed_network();
    let names: Vec<&str> = net.params().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
    let w = net.param("fc2.weight").unwrap();
    assert_eq!((w.rows, w.cols), (2, 5));
    // PyTorch's fc2.weight[1][3] is the same number, read by name.
    assert_eq!(
        w.get(1, 3) as f64,
        numbers(&fixture["params"]["fc2.weight"][1])[3]
    );
    assert_eq!(net.fc2.weight[(1, 3)], w.get(1, 3));
    assert!(net.param("fc4.weight").is_none());
    assert_eq!(Net::<f32>::PARAMETERS, 4 * 5 + 5 + 5 * 2 + 2 + 2 + 1);
    assert_eq!((Net::<f32>::INPUTS, Net::<f32>::OUTPUTS), (4, 1));
}
