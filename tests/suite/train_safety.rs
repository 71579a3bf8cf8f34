//! Training never corrupts weights and says it kept them (issue 13, class 3).
//!
//! Every float hyper-parameter of every optimizer, set to NaN, ±∞, out-of-range and extreme finite
//! values, either fails `validate` (and `train` changes nothing) or trains; if a step would make a
//! loss, a gradient, an update or a weight non-finite, `train` stops with the network and the
//! optimizer exactly, bit for bit, as the last good step left them; and `train` never returns
//! `Ok` with a non-finite weight. The expected weights are computed separately, by hand: the same
//! batches through `backward` and the optimizer's unchecked `step`, as many steps as were good.

use std::fmt::Debug;
use std::ops::ControlFlow;

use backprop::optim::NonFiniteUpdate;
use backprop::prelude::*;
use backprop::scalar::{constant, to_f64, Scalar};
use backprop::train::{train, TrainError, TrainOptions};

network! { struct Net < 3 => tanh 4 => 2 > }

/// The batch size: it divides the data set, so every batch is full.
const B: usize = 4;

/// Twelve samples (three batches) from fixed formulas.
fn data<T: Scalar>() -> (Vec<SVector<T, 3>>, Vec<SVector<T, 2>>) {
    let inputs = (0..12)
        .map(|i| {
            let i = i as f64;
            SVector::from_fn(|r, _| constant([(i * 0.7).sin(), (i * 0.3).cos(), i / 10.0][r]))
        })
        .collect();
    let targets = (0..12)
        .map(|i| {
            let i = i as f64;
            SVector::from_fn(|r, _| constant([i / 10.0, 1.0 - i / 20.0][r]))
        })
        .collect();
    (inputs, targets)
}

/// Whether every weight is finite.
fn finite<T: Scalar>(net: &Net<T>) -> bool {
    net.params()
        .all(|p| p.values.iter().all(|v| to_f64(*v).is_finite()))
}

/// Whether a value's `Debug` text shows a NaN or an infinity (how the optimizer's private state
/// is inspected).
fn shows_non_finite(value: &impl Debug) -> bool {
    let text = format!("{value:?}");
    text.contains("NaN") || text.contains("inf")
}

/// `steps` in-order steps by hand: batch `s mod 3`, `backward`, then the unchecked `step`.
fn by_hand<T: Scalar, O: Optimizer<Net<T>>>(
    net: &mut Net<T>,
    optimizer: &mut O,
    inputs: &[SVector<T, 3>],
    targets: &[SVector<T, 2>],
    steps: usize,
) {
    let batches = inputs.len() / B;
    // As `train` does: the state made (zero) before the first step.
    optimizer.prepare();
    let mut grad = Net::zeros();
    let mut ws = net.workspace::<B>();
    for s in 0..steps {
        let start = (s % batches) * B;
        let x = SMatrix::<T, 3, B>::from_fn(|r, c| inputs[start + c][r]);
        let y = SMatrix::<T, 2, B>::from_fn(|r, c| targets[start + c][r]);
        net.backward(&x, &y, &Mse, &mut ws, &mut grad);
        optimizer.step(net, &grad);
    }
}

/// Whether step number `step` (from 0) taken by hand after the good ones makes something
/// non-finite: the loss, the gradient, a weight or the optimizer's state.
fn step_is_bad<T: Scalar, O: Optimizer<Net<T>> + Clone + Debug>(
    net: &Net<T>,
    optimizer: &O,
    inputs: &[SVector<T, 3>],
    targets: &[SVector<T, 2>],
    step: usize,
) -> bool {
    let (mut net, mut optimizer) = (net.clone(), optimizer.clone());
    let start = (step % (inputs.len() / B)) * B;
    let x = SMatrix::<T, 3, B>::from_fn(|r, c| inputs[start + c][r]);
    let y = SMatrix::<T, 2, B>::from_fn(|r, c| targets[start + c][r]);
    let mut grad = Net::zeros();
    let loss = net.backward(&x, &y, &Mse, &mut net.workspace(), &mut grad);
    if !to_f64(loss).is_finite() || !finite(&grad) {
        return true;
    }
    optimizer.step(&mut net, &grad);
    !finite(&net) || shows_non_finite(&optimizer)
}

/// Two values equal bit for bit, as their `Debug` texts show every float (the shortest text
/// that reads back as the same float, so `-0.0` and `0.0` differ, and NaN equals NaN).
fn assert_same(a: &impl Debug, b: &impl Debug, what: &str) {
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{what}");
}

/// How one training run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// `validate` refused the optimizer and nothing changed.
    Rejected,
    /// Every step was good.
    Trained,
    /// A bad step was refused after this many good ones.
    Stopped(usize),
}

/// Trains `epochs` in order from `net` with `optimizer` and checks the promise, whatever happens.
fn run<T, O>(
    net: &Net<T>,
    optimizer: O,
    inputs: &[SVector<T, 3>],
    targets: &[SVector<T, 2>],
    epochs: usize,
) -> Outcome
where
    T: Scalar,
    O: backprop::FusedStep<Net<T>> + Clone + PartialEq + Debug,
{
    let fresh = optimizer.clone();
    let (mut trained, mut optimizer) = (net.clone(), optimizer);
    let result = train(
        &mut trained,
        &mut optimizer,
        &Mse,
        inputs,
        targets,
        TrainOptions::new(epochs, 0).in_order().batch::<B>(),
        |_| ControlFlow::Continue(()),
    );
    let batches = inputs.len() / B;
    let (good, outcome) = match &result {
        Err(TrainError::Optimizer(error)) => {
            let again = Optimizer::<Net<T>>::validate(&fresh).unwrap_err();
            assert_eq!(again.to_string(), error.to_string());
            assert_same(&trained, net, "a rejected optimizer changes nothing");
            assert_same(&optimizer, &fresh, "a rejected optimizer keeps its state");
            return Outcome::Rejected;
        }
        Ok(history) => {
            assert!(finite(&trained), "Ok with non-finite weights: {fresh:?}");
            assert_eq!(history.losses.len(), epochs);
            (epochs * batches, Outcome::Trained)
        }
        Err(TrainError::NonFinite { epoch, batch, .. })
        | Err(TrainError::NonFiniteUpdate { epoch, batch, .. }) => {
            let good = epoch * batches + batch;
            (good, Outcome::Stopped(good))
        }
        Err(other) => panic!("unexpected error {other:?} for {fresh:?}"),
    };
    assert!(
        Optimizer::<Net<T>>::validate(&fresh).is_ok(),
        "{fresh:?} trained"
    );
    let (mut expected, mut expected_optimizer) = (net.clone(), fresh.clone());
    by_hand(
        &mut expected,
        &mut expected_optimizer,
        inputs,
        targets,
        good,
    );
    assert_same(
        &trained,
        &expected,
        &format!("{fresh:?}: the weights after {good} good steps ({result:?})"),
    );
    assert_same(
        &optimizer,
        &expected_optimizer,
        &format!("{fresh:?}: the state after {good} good steps"),
    );
    if let Outcome::Stopped(_) = outcome {
        assert!(finite(&trained));
        assert!(
            step_is_bad(&expected, &expected_optimizer, inputs, targets, good),
            "{fresh:?}: step {good} was refused but is fine ({result:?})"
        );
    }
    outcome
}

/// The values every float hyper-parameter is tried with: NaN, ±∞, out of range, extreme.
const VALUES: [f64; 16] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
    -1e-300,
    -0.0,
    0.0,
    1.0,
    1.5,
    1e10,
    1e38,
    1e300,
    f64::MAX,
    f64::MIN_POSITIVE,
    5e-324,
    0.5,
];

/// Sets one hyper-parameter of an optimizer.
type Setter<O> = fn(&mut O, f64);

/// Every SGD configuration torch's fixtures use, with each float hyper-parameter set to each value.
fn sgd_cases<T: Scalar>() -> Vec<(String, Sgd<Net<T>>)> {
    let bases = [
        Sgd::new(0.1),
        Sgd::new(0.1).momentum(0.9),
        Sgd::new(0.1).momentum(0.9).dampening(0.3),
        Sgd::new(0.1).momentum(0.9).nesterov(true),
        Sgd::new(0.1).weight_decay(0.01),
        Sgd::new(0.1).momentum(0.8).weight_decay(0.05),
    ];
    let mut cases = Vec::new();
    for (b, base) in bases.iter().enumerate() {
        for value in VALUES {
            let set: [(&str, Setter<Sgd<Net<T>>>); 4] = [
                ("lr", |o, v| o.lr = v),
                ("momentum", |o, v| o.momentum = v),
                ("dampening", |o, v| o.dampening = v),
                ("weight_decay", |o, v| o.weight_decay = v),
            ];
            for (name, set) in set {
                let mut sgd = base.clone();
                set(&mut sgd, value);
                cases.push((format!("sgd #{b} {name} = {value:e}"), sgd));
            }
        }
    }
    cases
}

/// Every Adam configuration, with each float hyper-parameter set to each value.
fn adam_cases<T: Scalar>() -> Vec<(String, Adam<Net<T>>)> {
    let bases = [
        Adam::new(0.01),
        Adam::new(0.01).amsgrad(true),
        Adam::new(0.01).weight_decay(0.01),
        Adam::new(0.02).betas(0.8, 0.99).eps(1e-6),
        Adam::new(0.01).betas(0.3, 0.9),
    ];
    let mut cases = Vec::new();
    for (b, base) in bases.iter().enumerate() {
        for value in VALUES {
            let set: [(&str, Setter<Adam<Net<T>>>); 5] = [
                ("lr", |o, v| o.lr = v),
                ("beta1", |o, v| o.betas.0 = v),
                ("beta2", |o, v| o.betas.1 = v),
                ("eps", |o, v| o.eps = v),
                ("weight_decay", |o, v| o.weight_decay = v),
            ];
            for (name, set) in set {
                let mut adam = base.clone();
                set(&mut adam, value);
                cases.push((format!("adam #{b} {name} = {value:e}"), adam));
            }
        }
    }
    cases
}

/// Every AdamW configuration (hyper-parameters through the builders; `lr` through `new`).
fn adamw_cases<T: Scalar>() -> Vec<(String, AdamW<Net<T>>)> {
    let mut cases = Vec::new();
    for amsgrad in [false, true] {
        for value in VALUES {
            let base = || AdamW::new(0.01).weight_decay(0.1).amsgrad(amsgrad);
            for (name, adamw) in [
                ("lr", AdamW::new(value).amsgrad(amsgrad)),
                ("beta1", base().betas(value, 0.999)),
                ("beta2", base().betas(0.9, value)),
                ("eps", base().eps(value)),
                ("weight_decay", base().weight_decay(value)),
            ] {
                cases.push((format!("adamw amsgrad {amsgrad} {name} = {value:e}"), adamw));
            }
        }
    }
    cases
}

/// Whether a value must be rejected for this hyper-parameter, by torch's rules or ours.
fn must_reject<T: Scalar>(name: &str, value: f64) -> bool {
    let in_scalar = to_f64(constant::<T>(value));
    !value.is_finite()
        || !in_scalar.is_finite()
        || match name {
            "lr" | "momentum" | "weight_decay" => value < 0.0,
            "dampening" => !(0.0..=1.0).contains(&value),
            "beta1" | "beta2" => !(0.0..1.0).contains(&value),
            "eps" => value <= 0.0 || in_scalar <= 0.0,
            other => panic!("no hyper-parameter {other}"),
        }
}

/// All cases for one scalar type; returns how many ended each way.
fn sweep<T: Scalar>() -> [usize; 3] {
    let (inputs, targets) = data::<T>();
    let net = Net::<T>::init(3);
    let mut counts = [0; 3];
    let mut tally = |name: &str, outcome: Outcome| {
        let rejected = outcome == Outcome::Rejected;
        // The hyper-parameter's name is the word before "= value".
        let parameter = name.split(" = ").next().unwrap();
        let parameter = parameter.rsplit(' ').next().unwrap();
        let value: f64 = name.split(" = ").nth(1).unwrap().parse().unwrap();
        assert_eq!(
            rejected,
            must_reject::<T>(parameter, value) || nesterov_breaks(name, parameter, value),
            "{name}: {outcome:?}"
        );
        counts[match outcome {
            Outcome::Rejected => 0,
            Outcome::Trained => 1,
            Outcome::Stopped(_) => 2,
        }] += 1;
    };
    for (name, sgd) in sgd_cases::<T>() {
        tally(&name, run(&net, sgd, &inputs, &targets, 3));
    }
    for (name, adam) in adam_cases::<T>() {
        tally(&name, run(&net, adam, &inputs, &targets, 3));
    }
    for (name, adamw) in adamw_cases::<T>() {
        tally(&name, run(&net, adamw, &inputs, &targets, 3));
    }
    counts
}

/// Nesterov (SGD base #3) needs momentum above 0 and dampening 0: torch's rule.
fn nesterov_breaks(name: &str, parameter: &str, value: f64) -> bool {
    name.starts_with("sgd #3 ")
        && ((parameter == "momentum" && (value.is_nan() || value <= 0.0))
            || (parameter == "dampening" && value != 0.0))
}

#[test]
fn every_hyper_parameter_value_is_rejected_or_trains_safely_in_f64() {
    let [rejected, trained, stopped] = sweep::<f64>();
    eprintln!("f64: {rejected} rejected, {trained} trained, {stopped} stopped");
    // The sweep has teeth: each outcome happens.
    assert!(rejected > 100 && trained > 100 && stopped > 10);
}

#[test]
fn every_hyper_parameter_value_is_rejected_or_trains_safely_in_f32() {
    let [rejected, trained, stopped] = sweep::<f32>();
    eprintln!("f32: {rejected} rejected, {trained} trained, {stopped} stopped");
    assert!(rejected > 100 && trained > 100 && stopped > 10);
}

/// The reported examples of issue 13, one by one, with the error each must give.
#[test]
fn the_reported_hyper_parameters_are_rejected() {
    let reject = |error: Result<(), backprop::optim::OptimizerError>, parameter: &str| {
        let error = error.expect_err(parameter);
        assert_eq!(error.parameter, parameter, "{error}");
        assert!(error.to_string().contains(parameter), "{error}");
    };
    fn v<O: Optimizer<Net<f64>>>(optimizer: &O) -> Result<(), backprop::optim::OptimizerError> {
        optimizer.validate()
    }
    reject(v(&Sgd::new(f64::INFINITY)), "learning rate");
    reject(
        v(&Sgd::new(0.1).momentum(0.9).dampening(f64::NAN)),
        "dampening",
    );
    reject(v(&Sgd::new(0.1).momentum(f64::INFINITY)), "momentum");
    reject(
        v(&Sgd::new(0.1).weight_decay(f64::INFINITY)),
        "weight_decay",
    );
    reject(v(&Adam::new(1e-3).eps(0.0)), "eps");
    reject(v(&Adam::new(f64::INFINITY)), "learning rate");
    reject(
        v(&Adam::new(1e-3).weight_decay(f64::INFINITY)),
        "weight_decay",
    );
    reject(v(&AdamW::new(1e-3).weight_decay(f64::NAN)), "weight_decay");
    // Finite in f64, not in f32: 1e300 overflows, 1e-50 underflows to an eps of 0.
    type S = Net<f32>;
    reject(Optimizer::<S>::validate(&Sgd::new(1e300)), "learning rate");
    reject(Optimizer::<S>::validate(&Adam::new(1e-3).eps(1e-50)), "eps");
    assert!(
        v(&Adam::new(1e-3).eps(1e-50)).is_ok(),
        "1e-50 is fine in f64"
    );
    let message = v(&Sgd::new(f64::NAN)).unwrap_err().to_string();
    assert_eq!(
        message,
        "invalid learning rate for SGD: expected a finite number, found NaN"
    );
}

/// A data set whose row `row` has a huge third input (the network weighs it by its inverse, so
/// the output stays moderate) and a target far away (-1e7): the loss is finite (about 1e14), the
/// gradient of `fc1.weight`'s third column huge (about 1e6 · `scale`).
fn poisoned<T: Scalar>(row: usize, scale: f64) -> (Net<T>, Vec<SVector<T, 3>>, Vec<SVector<T, 2>>) {
    let (mut inputs, mut targets) = data::<T>();
    // The other rows' third input is 0, so that the steps before leave the weights on it alone
    // (a change of theirs, times `scale`, would saturate tanh and hide the huge gradient).
    for input in inputs.iter_mut() {
        input[2] = constant(0.0);
    }
    inputs[row][2] = constant(scale);
    targets[row] = SVector::repeat(constant(-1e7));
    let mut net = Net::<T>::init(5);
    let weight = net.param_mut("fc1.weight").unwrap();
    for r in 0..4 {
        weight.values[r + 2 * 4] = constant(1.0 / scale);
    }
    (net, inputs, targets)
}

#[test]
fn an_overflowing_update_is_refused_and_named() {
    // SGD with a large but valid learning rate: the gradient of batch 0 is finite, the update
    // overflows: the weights are those given. (With good steps before, such a learning rate
    // would already have made the loss infinite; the Adam case below has good steps first.)
    let (net, inputs, targets) = poisoned::<f64>(2, 1e150);
    let mut trained = net.clone();
    let error = train(
        &mut trained,
        &mut Sgd::new(1e200),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(2, 0).in_order().batch::<B>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    let TrainError::NonFiniteUpdate {
        epoch: 0,
        batch: 0,
        update,
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (update.optimizer, update.value),
        ("SGD", "weight"),
        "{update}"
    );
    assert_eq!(update.parameter, "fc1.weight", "{update}");
    assert!(error.to_string().contains("last good step"), "{error}");
    assert_eq!(trained, net);
    assert_eq!(
        run(&net, Sgd::new(1e200), &inputs, &targets, 2),
        Outcome::Stopped(0)
    );

    // Adam: the gradient squared overflows the second moment (the weight itself would barely
    // move): refused, named, and the moments are those of the last good step.
    let (net, inputs, targets) = poisoned::<f64>(6, 1e160);
    let mut trained = net.clone();
    let mut adam = Adam::new(1e-3);
    let error = train(
        &mut trained,
        &mut adam,
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(1, 0).in_order().batch::<B>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    let TrainError::NonFiniteUpdate {
        batch: 1, update, ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        update,
        NonFiniteUpdate {
            optimizer: "Adam",
            parameter: "fc1.weight",
            row: update.row,
            col: 2,
            value: "second moment",
        }
    );
    assert_eq!(adam.steps(), 1, "the refused step is not counted");
    assert_eq!(
        run(&net, Adam::new(1e-3), &inputs, &targets, 1),
        Outcome::Stopped(1)
    );
    assert_eq!(
        run(&net, Adam::new(1e-3).amsgrad(true), &inputs, &targets, 1),
        Outcome::Stopped(1)
    );
    assert_eq!(
        run(&net, AdamW::new(1e-3), &inputs, &targets, 1),
        Outcome::Stopped(1)
    );
}

#[test]
fn a_bad_last_step_is_refused_too() {
    // The huge sample is in the last batch of the only epoch: before, `train` returned Ok with a
    // non-finite weight or state.
    let (net, inputs, targets) = poisoned::<f64>(11, 1e160);
    assert_eq!(
        run(&net, Adam::new(1e-3), &inputs, &targets, 1),
        Outcome::Stopped(2)
    );
    let (net, inputs, targets) = poisoned::<f32>(11, 1e20);
    assert_eq!(
        run(&net, Adam::new(1e-3), &inputs, &targets, 1),
        Outcome::Stopped(2)
    );
    assert_eq!(
        run(&net, AdamW::new(1e-3).amsgrad(true), &inputs, &targets, 1),
        Outcome::Stopped(2)
    );
    // SGD's momentum buffer overflows at the second and last step of two batches: a weight decay
    // of 1e300 makes the first buffer about 1e299 (a learning rate of 1e-300 keeps the weights
    // moderate), and a momentum of 1e10 times that overflows at the second step.
    let (inputs, targets) = data::<f64>();
    let sgd = Sgd::new(1e-300).momentum(1e10).weight_decay(1e300);
    let net = Net::<f64>::init(4);
    assert_eq!(
        run(&net, sgd.clone(), &inputs[..8], &targets[..8], 1),
        Outcome::Stopped(1)
    );
    let result = train(
        &mut net.clone(),
        &mut sgd.clone(),
        &Mse,
        &inputs[..8],
        &targets[..8],
        TrainOptions::new(1, 0).in_order().batch::<B>(),
        |_| ControlFlow::Continue(()),
    );
    let Err(TrainError::NonFiniteUpdate {
        batch: 1, update, ..
    }) = result
    else {
        panic!("{result:?}")
    };
    assert_eq!(update.value, "momentum buffer", "{update}");
}

#[test]
fn every_non_finite_intermediate_stops_training() {
    // The loss: a NaN input in the last batch.
    let (mut inputs, targets) = data::<f64>();
    inputs[10][0] = f64::NAN;
    let net = Net::<f64>::init(2);
    assert_eq!(
        run(&net, Sgd::new(0.1), &inputs, &targets, 2),
        Outcome::Stopped(2)
    );
    assert_eq!(
        run(&net, Adam::new(0.1), &inputs, &targets, 2),
        Outcome::Stopped(2)
    );

    // The gradient with a finite loss: in f32 the input 1e34 times a delta near 1e6 overflows
    // the weight's gradient while the loss (about 1e14) is finite.
    let (net, inputs, targets) = poisoned::<f32>(5, 1e34);
    let mut trained = net.clone();
    let error = train(
        &mut trained,
        &mut Sgd::new(1e-3),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(1, 0).in_order().batch::<B>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            TrainError::NonFinite {
                epoch: 0,
                batch: 1,
                parameter: Some("fc1.weight"),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("gradient of `fc1.weight`"),
        "{error}"
    );
    for outcome in [
        run(&net, Sgd::new(1e-3), &inputs, &targets, 1),
        run(&net, Sgd::new(1e-3).momentum(0.9), &inputs, &targets, 1),
        run(&net, Adam::new(1e-3), &inputs, &targets, 1),
        run(&net, AdamW::new(1e-3).amsgrad(true), &inputs, &targets, 1),
    ] {
        assert_eq!(outcome, Outcome::Stopped(1));
    }

    // The momentum buffer, mid-run: as in `a_bad_last_step_is_refused_too`, overflowing at
    // the second step.
    let (inputs, targets) = data::<f64>();
    let net = Net::<f64>::init(4);
    let sgd = Sgd::new(1e-300).momentum(1e10).weight_decay(1e300);
    assert_eq!(
        run(&net, sgd.clone(), &inputs, &targets, 2),
        Outcome::Stopped(1)
    );
    let error = train(
        &mut net.clone(),
        &mut sgd.clone(),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(2, 0).in_order().batch::<B>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            TrainError::NonFiniteUpdate {
                update: NonFiniteUpdate {
                    value: "momentum buffer",
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );

    // A weight: AdamW's shrink factor 1 − lr·weight_decay overflows.
    let outcome = run(
        &net,
        AdamW::new(1e200).weight_decay(1e200),
        &inputs,
        &targets,
        2,
    );
    assert_eq!(outcome, Outcome::Stopped(0));

    // A non-finite weight given to train: refused before any step.
    let mut bad = net.clone();
    bad.fc2.bias[1] = f64::INFINITY;
    let before = bad.clone();
    let error = train(
        &mut bad,
        &mut Sgd::new(0.1),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(1, 0).batch::<B>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert_eq!(
        error,
        TrainError::NonFiniteWeight {
            parameter: "fc2.bias"
        }
    );
    assert_eq!(bad.fc2.bias[1], before.fc2.bias[1]);
}

#[test]
fn a_refused_step_leaves_the_optimizer_as_it_was() {
    // By hand: try_step refuses, and the network and the state equal their copies; a good
    // try_step equals step bit for bit.
    let (inputs, targets) = data::<f64>();
    let mut net = Net::<f64>::init(7);
    let x = SMatrix::<f64, 3, B>::from_fn(|r, c| inputs[c][r]);
    let y = SMatrix::<f64, 2, B>::from_fn(|r, c| targets[c][r]);
    let mut grad = Net::zeros();
    net.backward(&x, &y, &Mse, &mut net.workspace(), &mut grad);
    let mut adam = Adam::new(1e-2).amsgrad(true);
    let mut stepped = (net.clone(), adam.clone());
    adam.try_step(&mut net, &grad).unwrap();
    stepped.1.step(&mut stepped.0, &grad);
    assert_eq!((&net, &adam), (&stepped.0, &stepped.1));

    let mut bad = grad.clone();
    bad.fc1.weight[(3, 1)] = f64::NAN;
    let before = (net.clone(), adam.clone());
    let error = adam.try_step(&mut net, &bad).unwrap_err();
    assert_eq!(
        (error.parameter, error.row, error.col),
        ("fc1.weight", 3, 1)
    );
    assert_eq!(error.value, "first moment");
    assert_eq!((&net, &adam), (&before.0, &before.1));
    adam.try_step(&mut net, &grad).unwrap();
    assert_eq!(adam.steps(), 2);

    let mut sgd = Sgd::new(0.1).momentum(0.9);
    let before = (net.clone(), sgd.clone());
    let error = sgd.try_step(&mut net, &bad).unwrap_err();
    assert_eq!(
        error.to_string(),
        "SGD's update of `fc1.weight[3][1]` would make its momentum buffer non-finite"
    );
    assert_eq!((&net, &sgd), (&before.0, &before.1));
}

#[test]
fn a_finite_step_beyond_the_quick_bound_is_still_taken() {
    // Adam's check first tries a cheap bound, |p'|·eps + |step_size|·|m'| ≤ eps·MAX/4; with an eps
    // of 5e-324 (f64) or 1e-45 (f32) the bound fails for every ordinary entry, and the exact check
    // must take the step anyway, bit for bit as `step` takes it.
    fn case<T: Scalar>(eps: f64) {
        let (inputs, targets) = data::<T>();
        let net = Net::<T>::init(11);
        let x = SMatrix::<T, 3, B>::from_fn(|r, c| inputs[c][r]);
        let y = SMatrix::<T, 2, B>::from_fn(|r, c| targets[c][r]);
        let mut grad = Net::zeros();
        net.backward(&x, &y, &Mse, &mut net.workspace(), &mut grad);
        for amsgrad in [false, true] {
            let adam: Adam<Net<T>> = Adam::new(1e-2).eps(eps).amsgrad(amsgrad);
            Optimizer::<Net<T>>::validate(&adam).unwrap();
            let (mut checked, mut checked_adam) = (net.clone(), adam.clone());
            let (mut plain, mut plain_adam) = (net.clone(), adam.clone());
            checked_adam.prepare();
            plain_adam.prepare();
            for _ in 0..3 {
                checked_adam.try_step(&mut checked, &grad).unwrap();
                plain_adam.step(&mut plain, &grad);
            }
            assert_same(&checked, &plain, "the weights");
            assert_same(&checked_adam, &plain_adam, "the state");
            assert!(finite(&checked));
        }
        // And the run as a whole.
        assert_eq!(
            run(&net, Adam::new(1e-2).eps(eps), &inputs, &targets, 2),
            Outcome::Trained
        );
    }
    case::<f64>(5e-324);
    case::<f32>(1e-45);
}
