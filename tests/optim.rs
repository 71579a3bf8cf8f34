//! Optimizers step for step against torch.optim (`tests/fixtures/optim.json`, from
//! `scripts/gen_optim_fixtures.py`): SGD (plain, momentum, dampening, Nesterov, weight decay),
//! Adam (plain, AMSGrad, weight decay, other betas) and AdamW, three steps each on two networks,
//! parameters after every step to 1e-12 relative in f64.

mod common;

use backprop::optim::OptimizerError;
use backprop::prelude::*;
use common::{assert_params_close, fixture, load_params, numbers, row};
use serde_json::Value;

network! { struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct Deep < 6 => tanh 8 => relu 7 => gelu 5 => 3 > }

/// The optimizer a fixture case names, built as the generator builds it.
fn optimizer<N: Network + 'static>(name: &str) -> Box<dyn Optimizer<N>> {
    match name {
        "sgd" => Box::new(Sgd::new(0.1)),
        "sgd_momentum" => Box::new(Sgd::new(0.1).momentum(0.9)),
        "sgd_momentum_dampening" => Box::new(Sgd::new(0.1).momentum(0.9).dampening(0.3)),
        "sgd_nesterov" => Box::new(Sgd::new(0.1).momentum(0.9).nesterov(true)),
        "sgd_weight_decay" => Box::new(Sgd::new(0.1).weight_decay(0.01)),
        "sgd_momentum_weight_decay" => Box::new(Sgd::new(0.1).momentum(0.8).weight_decay(0.05)),
        "adam" => Box::new(Adam::new(0.01)),
        "adam_amsgrad" => Box::new(Adam::new(0.01).amsgrad(true)),
        "adam_weight_decay" => Box::new(Adam::new(0.01).weight_decay(0.01)),
        "adam_betas" => Box::new(Adam::new(0.02).betas(0.8, 0.99).eps(1e-6)),
        "adamw" => Box::new(AdamW::new(0.01)),
        "adamw_amsgrad" => Box::new(AdamW::new(0.01).weight_decay(0.1).amsgrad(true)),
        other => panic!("no optimizer {other}"),
    }
}

/// Runs one case: three steps of backward and the optimizer, compared after each.
fn run<N, L, Y, const B: usize>(case: &Value, net: &mut N, x: &N::Input, target: &Y, loss: &L)
where
    N: Batched<B, Scalar = f64> + 'static,
    L: Objective<f64, N::Output, Y>,
{
    let mut optimizer = optimizer::<N>(case["optimizer"].as_str().unwrap());
    optimizer.validate().unwrap();
    let mut ws = net.workspace();
    let mut grad = N::zeros();
    for (step, expected) in case["after"].as_array().unwrap().iter().enumerate() {
        net.backward(x, target, loss, &mut ws, &mut grad);
        optimizer.step(net, &grad);
        let what = format!("{} after step {}", case["name"], step + 1);
        assert_params_close(net, expected, &what, 1e-12, 1e-14);
    }
}

#[test]
fn every_optimizer_matches_torch_optim_step_for_step() {
    let all = fixture("optim.json");
    let cases = all["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    for case in cases {
        match case["architecture"].as_str().unwrap() {
            "seed" => {
                let mut net = Seed::<f64>::zeros();
                load_params(&mut net, &case["initial"]);
                let x = SMatrix::<f64, 4, 3>::from_fn(|r, c| row(&case["input"], c)[r]);
                let y = SMatrix::<f64, 1, 3>::from_fn(|r, c| row(&case["target"], c)[r]);
                run::<_, _, _, 3>(case, &mut net, &x, &y, &Mse);
            }
            "deep" => {
                let mut net = Deep::<f64>::zeros();
                load_params(&mut net, &case["initial"]);
                let x = SMatrix::<f64, 6, 4>::from_fn(|r, c| row(&case["input"], c)[r]);
                let classes: Vec<usize> = numbers(&case["target"])
                    .into_iter()
                    .map(|c| c as usize)
                    .collect();
                let y = ClassTargets::<3, 4>::new(classes.try_into().unwrap()).unwrap();
                run::<_, _, _, 4>(case, &mut net, &x, &y, &CrossEntropy);
            }
            other => panic!("unknown architecture {other}"),
        }
    }
}

#[test]
fn hyper_parameters_are_checked_like_torch() {
    let nesterov: Sgd<Seed<f64>> = Sgd::new(0.1).nesterov(true);
    let error = Optimizer::<Seed<f64>>::validate(&nesterov).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid Nesterov momentum for SGD: expected momentum > 0 and dampening 0, found 0"
    );
    let adam: Adam<Seed<f64>> = Adam::new(1e-3).betas(1.0, 0.999);
    assert_eq!(
        Optimizer::<Seed<f64>>::validate(&adam).unwrap_err(),
        OptimizerError {
            optimizer: "Adam",
            parameter: "beta1",
            value: 1.0,
            expected: "a number in [0, 1)"
        }
    );
    let adamw: AdamW<Seed<f64>> = AdamW::new(-1.0);
    assert!(Optimizer::<Seed<f64>>::validate(&adamw)
        .unwrap_err()
        .to_string()
        .contains("AdamW"));
}
