//! Initialisation: PyTorch's default (uniform ±1/√fan_in), Xavier uniform and He normal — bounds,
//! determinism per seed, and the mean and variance over many draws against the distributions'
//! formulas.

use backprop::init::{kaiming_normal, torch_default, xavier_uniform};
use backprop::prelude::*;

network! { struct Wide < 400 => relu 300 => 10 > }
network! { struct Small < 4 => relu 5 => 2 > }

/// Mean and variance of a tensor's entries.
fn moments(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let variance = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, variance)
}

#[test]
fn pytorch_default_is_uniform_within_one_over_root_fan_in() {
    let net = Wide::<f32>::init(0);
    let weight = net.param("fc1.weight").unwrap();
    let k = 1.0 / 400f64.sqrt();
    assert!(weight.values.iter().all(|&w| (w as f64).abs() <= k));
    assert!(net
        .param("fc1.bias")
        .unwrap()
        .values
        .iter()
        .all(|&b| (b as f64).abs() <= k));
    // Uniform(−k, k): mean 0, variance k²/3. Over 120 000 draws the standard error of the mean is
    // k/√(3·120000) ≈ 8e-5 and of the variance about 0.3% of it; allow about five of each.
    let (mean, variance) = moments(weight.values);
    assert!(
        mean.abs() < 5.0 * k / (3.0 * 120_000f64).sqrt(),
        "mean {mean}"
    );
    assert!(
        (variance / (k * k / 3.0) - 1.0).abs() < 0.015,
        "variance {variance} vs {}",
        k * k / 3.0
    );
}

#[test]
fn initialisation_is_deterministic_per_seed() {
    assert_eq!(Small::<f64>::init(7), Small::<f64>::init(7));
    assert_ne!(Small::<f64>::init(7), Small::<f64>::init(8));
    let (mut a, mut b, mut c) = (
        Small::<f64>::zeros(),
        Small::<f64>::zeros(),
        Small::<f64>::zeros(),
    );
    xavier_uniform(&mut a, 3);
    xavier_uniform(&mut b, 3);
    xavier_uniform(&mut c, 4);
    assert_eq!(a, b);
    assert_ne!(a, c);
    kaiming_normal(&mut a, 3);
    kaiming_normal(&mut b, 3);
    kaiming_normal(&mut c, 4);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // f32 is the f64 draw rounded, so both scalar types hold the same network.
    assert_eq!(Small::<f64>::init(7).cast::<f32>(), Small::<f32>::init(7));
}

#[test]
fn generic_torch_default_draws_what_the_generated_init_draws() {
    for seed in [0, 1, 42] {
        let mut net = Small::<f64>::zeros();
        torch_default(&mut net, seed);
        assert_eq!(net, Small::<f64>::init(seed));
        let mut wide = Wide::<f32>::zeros();
        torch_default(&mut wide, seed);
        assert_eq!(wide, Wide::<f32>::init(seed));
    }
}

#[test]
fn xavier_is_uniform_within_its_bound_with_zero_biases() {
    let mut net = Wide::<f32>::zeros();
    net.fc1.bias.fill(1.0);
    xavier_uniform(&mut net, 1);
    let bound = (6.0_f64 / (400.0 + 300.0)).sqrt();
    let weight = net.param("fc1.weight").unwrap();
    assert!(weight.values.iter().all(|&w| (w as f64).abs() <= bound));
    assert!(net.fc1.bias.iter().all(|&b| b == 0.0));
    let (mean, variance) = moments(weight.values);
    assert!(mean.abs() < 5.0 * bound / (3.0 * 120_000f64).sqrt());
    assert!(
        (variance / (bound * bound / 3.0) - 1.0).abs() < 0.015,
        "variance {variance}"
    );
}

#[test]
fn he_normal_has_variance_two_over_fan_in() {
    let mut net = Wide::<f32>::zeros();
    kaiming_normal(&mut net, 2);
    let weight = net.param("fc1.weight").unwrap();
    let expected: f64 = 2.0 / 400.0;
    let (mean, variance) = moments(weight.values);
    // Normal with variance σ²: over n = 120 000 draws, the mean's standard error is σ/√n and the
    // variance's is σ²·√(2/n) ≈ 0.4%; allow about five of each.
    assert!(
        mean.abs() < 5.0 * expected.sqrt() / 120_000f64.sqrt(),
        "mean {mean}"
    );
    assert!(
        (variance / expected - 1.0).abs() < 0.02,
        "variance {variance} vs {expected}"
    );
    // A normal puts about 4.6% of its draws beyond 2σ.
    let beyond = weight
        .values
        .iter()
        .filter(|&&w| (w as f64).abs() > 2.0 * expected.sqrt())
        .count() as f64;
    assert!(
        (beyond / 120_000.0 - 0.0455).abs() < 0.003,
        "share beyond 2σ: {}",
        beyond / 120_000.0
    );
}
