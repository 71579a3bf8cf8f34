//! A chained network: an encoder and a decoder declared as parts of one network, trained three
//! SGD steps against PyTorch's numbers for the same composition (`tests/fixtures/chain.json`,
//! from `scripts/gen_chain_fixtures.py`), to 1e-12 in f64.

use crate::common::{assert_close, assert_params_close, fixture, load_params, row};
use backprop::prelude::*;

network! {
    /// An autoencoder: six values squeezed through two and back.
    pub struct AutoEncoder {
        encoder: < 6 => tanh 4 => relu 2 >,
        decoder: < 2 => relu 4 => sigmoid 6 >,
    }
}

/// A `[rows × 5]` batch from a `[5][rows]` JSON list.
fn batch(json: &serde_json::Value) -> SMatrix<f64, 6, 5> {
    SMatrix::from_fn(|r, c| row(json, c)[r])
}

#[test]
fn the_chain_trains_like_pytorch() {
    let fixture = fixture("chain.json");
    let mut net = AutoEncoder::<f64>::zeros();
    load_params(&mut net, &fixture["initial_params"]);
    let (x, y) = (batch(&fixture["input"]), batch(&fixture["target"]));
    let mut ws = net.workspace();
    let mut grad = AutoEncoder::zeros();
    let mut sgd = Sgd::new(fixture["lr"].as_f64().unwrap());
    for (step, expected) in fixture["steps"].as_array().unwrap().iter().enumerate() {
        let loss = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
        assert_close(
            &format!("loss at step {step}"),
            loss,
            expected["loss"].as_f64().unwrap(),
            1e-12,
            1e-15,
        );
        assert_params_close(
            &grad,
            &expected["grads"],
            &format!("gradient at step {step}"),
            1e-12,
            1e-15,
        );
        sgd.step(&mut net, &grad);
        assert_params_close(
            &net,
            &expected["params_after"],
            &format!("after step {step}"),
            1e-12,
            1e-15,
        );
    }
}

#[test]
fn the_parts_are_networks_of_their_own() {
    let net = AutoEncoder::<f64>::init(3);
    let x = [0.1, -0.4, 0.9, 0.0, 1.5, -2.0];
    let code: SVector<f64, 2> = net.encoder.forward(&x);
    assert_eq!(net.decoder.forward(&code), net.forward(&x));
    assert_eq!(AutoEncoder::<f64>::INPUTS, 6);
    assert_eq!(AutoEncoder::<f64>::OUTPUTS, 6);
    assert_eq!(
        AutoEncoder::<f64>::PARAMETERS,
        AutoEncoderEncoder::<f64>::PARAMETERS + AutoEncoderDecoder::<f64>::PARAMETERS
    );
}

#[test]
fn names_carry_the_part() {
    let net = AutoEncoder::<f32>::zeros();
    let names: Vec<&str> = net.params().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "encoder.fc1.weight",
            "encoder.fc1.bias",
            "encoder.fc2.weight",
            "encoder.fc2.bias",
            "decoder.fc1.weight",
            "decoder.fc1.bias",
            "decoder.fc2.weight",
            "decoder.fc2.bias"
        ]
    );
    assert_eq!(net.param("decoder.fc2.weight").unwrap().rows, 6);
    let layers: Vec<&str> = <AutoEncoder as Network>::LAYERS
        .iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(
        layers,
        ["encoder.fc1", "encoder.fc2", "decoder.fc1", "decoder.fc2"]
    );
    assert!(AutoEncoder::<f32>::DERIVATION.contains("δ3 = (decoder.fc2.weightᵀ · δ4) ⊙ relu'(z3)"));
}

#[test]
fn one_seed_draws_the_parts_in_order() {
    // init(seed) draws the encoder's layers, then the decoder's, from one stream, as
    // nn.Sequential(encoder, decoder) would: the encoder alone from the same seed agrees.
    let net = AutoEncoder::<f64>::init(11);
    assert_eq!(net.encoder, AutoEncoderEncoder::<f64>::init(11));
    assert_ne!(net.decoder, AutoEncoderDecoder::<f64>::init(11));
}
