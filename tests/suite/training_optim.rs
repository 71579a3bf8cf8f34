//! Issue 16's training tools against PyTorch (`tests/fixtures/training.json`, from
//! `scripts/gen_training_fixtures.py`): RMSprop and Adagrad with every option over 10 steps (f64
//! and f32), every learning-rate schedule over 14 steps with SGD and with Adam (the rates, the
//! momentum or beta1 OneCycleLR cycles, and the parameters after every step), and clipping by norm and by value over 5 steps; f64 to 1e-12
//! relative, f32 to 1e-5. Also their hyper-parameter checks, their checked steps, and the doc
//! examples run.

use crate::common::{fixture, set_params_row_major};
use backprop::clip::ClipError;
use backprop::optim::schedule::ScheduleError;
use backprop::prelude::*;
use backprop::scalar::to_f64;
use serde_json::Value;

network! { struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }

/// A float read from its hexadecimal bit pattern.
trait FromHex: Scalar + std::fmt::LowerExp {
    /// The float whose bit pattern is `hex`.
    fn from_hex(hex: &str) -> Self;
    /// The tolerance, relative: 1e-12 in f64, 1e-5 in f32.
    const RTOL: f64;
}

impl FromHex for f64 {
    fn from_hex(hex: &str) -> Self {
        f64::from_bits(u64::from_str_radix(hex, 16).unwrap())
    }
    const RTOL: f64 = 1e-12;
}

impl FromHex for f32 {
    fn from_hex(hex: &str) -> Self {
        f32::from_bits(u32::from_str_radix(hex, 16).unwrap())
    }
    const RTOL: f64 = 1e-5;
}

/// A network holding a JSON object's parameters (hexadecimal bit patterns or numbers, row-major).
fn seed_from<T: FromHex>(params: &Value) -> Seed<T> {
    let mut net = Seed::<T>::zeros();
    set_params_row_major(&mut net, |name| {
        params[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| match v {
                Value::String(hex) => T::from_hex(hex),
                other => backprop::scalar::constant(other.as_f64().unwrap()),
            })
            .collect()
    });
    net
}

/// Asserts every parameter of `found` within `rtol` relative of `want` (absolute `rtol · 1e-3`
/// near zero); returns the largest relative difference.
fn assert_close<T: FromHex>(found: &Seed<T>, want: &Seed<T>, what: &str) -> f64 {
    let mut largest = 0.0_f64;
    for (f, w) in found.params().zip(want.params()) {
        for (i, (&a, &b)) in f.values.iter().zip(w.values).enumerate() {
            let (a, b) = (to_f64(a), to_f64(b));
            let error = (a - b).abs();
            assert!(
                error <= T::RTOL * b.abs() + T::RTOL * 1e-3,
                "{what}: {}[{i}] is {a:e}, PyTorch has {b:e}",
                f.name
            );
            if b != 0.0 {
                largest = largest.max(error / b.abs());
            }
        }
    }
    largest
}

/// The optimizer a fixture case names, built as the generator builds it.
fn optimizer<N: Network + 'static>(name: &str) -> Box<dyn Optimizer<N>> {
    match name {
        "rmsprop" => Box::new(RmsProp::new(0.01)),
        "rmsprop_centered" => Box::new(RmsProp::new(0.01).centered(true)),
        "rmsprop_momentum" => Box::new(RmsProp::new(0.01).momentum(0.9)),
        "rmsprop_weight_decay" => Box::new(RmsProp::new(0.01).weight_decay(0.1)),
        "rmsprop_low_alpha_centered" => Box::new(RmsProp::new(0.01).alpha(0.3).centered(true)),
        "rmsprop_all" => Box::new(
            RmsProp::new(0.02)
                .alpha(0.9)
                .eps(1e-6)
                .weight_decay(0.05)
                .momentum(0.5)
                .centered(true),
        ),
        "adagrad" => Box::new(Adagrad::new(0.1)),
        "adagrad_lr_decay" => Box::new(Adagrad::new(0.1).lr_decay(0.05)),
        "adagrad_initial_accumulator" => Box::new(Adagrad::new(0.1).initial_accumulator_value(0.3)),
        "adagrad_all" => Box::new(
            Adagrad::new(0.1)
                .lr_decay(0.05)
                .weight_decay(0.02)
                .initial_accumulator_value(0.3)
                .eps(1e-6),
        ),
        "sgd" => Box::new(Sgd::new(0.1).momentum(0.9)),
        "adam" => Box::new(Adam::new(0.01)),
        other => panic!("no optimizer {other}"),
    }
}

/// One optimizer case, stepping with `step` or `try_step`, prepared first or not.
fn optimizer_case<T: FromHex>(case: &Value, checked: bool, prepared: bool) -> f64 {
    let name = case["name"].as_str().unwrap();
    let mut net = seed_from::<T>(&case["initial"]);
    let mut optimizer = optimizer::<Seed<T>>(case["optimizer"].as_str().unwrap());
    optimizer.validate().unwrap();
    if prepared {
        optimizer.prepare();
    }
    let mut largest = 0.0_f64;
    let steps = case["gradients"].as_array().unwrap();
    assert_eq!(steps.len(), 10);
    for (step, (gradient, after)) in steps
        .iter()
        .zip(case["after"].as_array().unwrap())
        .enumerate()
    {
        let grad = seed_from::<T>(gradient);
        if checked {
            optimizer.try_step(&mut net, &grad).unwrap();
        } else {
            optimizer.step(&mut net, &grad);
        }
        let what = format!("{name} step {}", step + 1);
        largest = largest.max(assert_close(&net, &seed_from::<T>(after), &what));
    }
    largest
}

#[test]
fn rmsprop_and_adagrad_equal_torch_optim() {
    let all = fixture("training.json");
    let cases = all["optimizers"].as_array().unwrap();
    assert_eq!(cases.len(), 20);
    for case in cases {
        for (checked, prepared) in [(false, false), (true, false), (false, true), (true, true)] {
            let largest = match case["scalar"].as_str().unwrap() {
                "f64" => optimizer_case::<f64>(case, checked, prepared),
                _ => optimizer_case::<f32>(case, checked, prepared),
            };
            // Within the tolerance, and in fact bit for bit (the generator's ATen kernels and
            // square root are the plain, correctly rounded ones).
            assert_eq!(largest, 0.0, "{}", case["name"]);
        }
    }
}

/// The schedule a fixture case names, as the generator builds it for base rate `lr`.
fn schedule(name: &str, lr: f64) -> Schedule {
    match name {
        "step" => Schedule::step_lr(3, 0.5),
        "multi_step" => Schedule::multi_step_lr(&[2, 5, 5, 9], 0.3),
        "exponential" => Schedule::exponential_lr(0.8),
        "cosine" => Schedule::cosine_annealing_lr(5, lr / 100.0),
        "linear" => Schedule::linear_lr(0.25, 1.0, 4),
        "one_cycle" => Schedule::one_cycle_lr(5.0 * lr, 14),
        "one_cycle_linear_three_phase" => {
            Schedule::one_cycle_lr(5.0 * lr, 14).one_cycle_options(0.4, false, 10.0, 100.0, true)
        }
        "one_cycle_momentum" => Schedule::one_cycle_lr(5.0 * lr, 14).cycle_momentum(0.85, 0.95),
        "one_cycle_momentum_three_phase" => Schedule::one_cycle_lr(5.0 * lr, 14)
            .one_cycle_options(0.3, true, 25.0, 1e4, true)
            .cycle_momentum(0.8, 0.9),
        "sequential_warmup_cosine" => Schedule::sequential(
            vec![
                Schedule::linear_lr(0.1, 1.0, 3),
                Schedule::cosine_annealing_lr(8, 0.0),
            ],
            &[3],
        ),
        "sequential_three" => Schedule::sequential(
            vec![
                Schedule::exponential_lr(0.9),
                Schedule::step_lr(2, 0.5),
                Schedule::multi_step_lr(&[1, 3], 0.1),
            ],
            &[4, 8],
        ),
        other => panic!("no schedule {other}"),
    }
}

/// Asserts two rates equal to 1e-12 relative, and in fact bit for bit.
fn assert_rate(found: f64, want: f64, what: &str) {
    assert!(
        (found - want).abs() <= 1e-12 * want.abs(),
        "{what}: the rate is {found:e}, PyTorch has {want:e}"
    );
    assert_eq!(
        found.to_bits(),
        want.to_bits(),
        "{what}: {found:e} vs {want:e}"
    );
}

#[test]
fn schedules_equal_torch_lr_scheduler_step_for_step() {
    let all = fixture("training.json");
    let cases = all["schedules"].as_array().unwrap();
    assert_eq!(cases.len(), 22);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut net = seed_from::<f64>(&case["initial"]);
        let mut optimizer = optimizer::<Seed<f64>>(case["optimizer"].as_str().unwrap());
        let base = optimizer.learning_rate();
        let mut schedule = schedule(case["schedule"].as_str().unwrap(), base);
        let rates: Vec<f64> = case["lrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| f64::from_hex(v.as_str().unwrap()))
            .collect();
        assert_eq!(rates.len(), 15);
        let momenta: Vec<f64> = case["momenta"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| f64::from_hex(v.as_str().unwrap()))
            .collect();
        schedule.start::<Seed<f64>, _>(&mut *optimizer).unwrap();
        let what = format!("{name} after start (momentum)");
        assert_rate(optimizer.momentum().unwrap(), momenta[0], &what);
        assert_rate(
            optimizer.learning_rate(),
            rates[0],
            &format!("{name} after start"),
        );
        optimizer.prepare();
        for (step, (gradient, after)) in case["gradients"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["after"].as_array().unwrap())
            .enumerate()
        {
            optimizer
                .try_step(&mut net, &seed_from::<f64>(gradient))
                .unwrap();
            assert_close(
                &net,
                &seed_from::<f64>(after),
                &format!("{name} step {}", step + 1),
            );
            schedule.step::<Seed<f64>, _>(&mut *optimizer).unwrap();
            let lr = optimizer.learning_rate();
            assert_rate(
                lr,
                rates[step + 1],
                &format!("{name} after step {}", step + 1),
            );
            assert_rate(
                optimizer.momentum().unwrap(),
                momenta[step + 1],
                &format!("{name} after step {} (momentum)", step + 1),
            );
            assert_eq!(schedule.last_lr(), lr);
        }
        assert_eq!(schedule.last_epoch(), 14);
    }
}

/// One clipping case: clip each step's gradient, then step SGD with momentum.
fn clipping_case<T: FromHex>(case: &Value) {
    let name = case["name"].as_str().unwrap();
    let mut net = seed_from::<T>(&case["initial"]);
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    for (step, gradient) in case["gradients"].as_array().unwrap().iter().enumerate() {
        let mut grad = seed_from::<T>(gradient);
        let what = format!("{name} step {}", step + 1);
        if case["kind"] == "norm" {
            let norm = clip_grad_norm(&mut grad, 1.0, true).unwrap();
            let want = case["norms"][step].as_f64().unwrap();
            assert!(
                (norm - want).abs() <= T::RTOL * want,
                "{what}: total norm {norm:e}, PyTorch has {want:e}"
            );
        } else {
            clip_grad_value(&mut grad, 0.3).unwrap();
        }
        assert_close(
            &grad,
            &seed_from::<T>(&case["clipped"][step]),
            &format!("{what} gradient"),
        );
        sgd.try_step(&mut net, &grad).unwrap();
        assert_close(&net, &seed_from::<T>(&case["after"][step]), &what);
    }
}

#[test]
fn clipping_equals_torch_nn_utils() {
    let all = fixture("training.json");
    let cases = all["clipping"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    let mut clipped_by_norm = 0;
    for case in cases {
        if case["kind"] == "norm" {
            clipped_by_norm += case["norms"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n.as_f64().unwrap() > 1.0)
                .count();
        }
        match case["scalar"].as_str().unwrap() {
            "f64" => clipping_case::<f64>(case),
            _ => clipping_case::<f32>(case),
        }
    }
    // The fixture clips some steps and leaves others: both branches of the coefficient are used.
    assert!(
        clipped_by_norm > 0 && clipped_by_norm < 10,
        "{clipped_by_norm}"
    );
}

/// A gradient whose every entry is `value`.
fn filled(value: f64) -> Seed<f64> {
    let mut grad = Seed::<f64>::zeros();
    for param in grad.params_mut() {
        param.values.fill(value);
    }
    grad
}

#[test]
fn clipping_by_hand_and_its_errors() {
    // 40 parameters, every gradient entry 0.5: the total norm is √(40 · 0.25) = √10 (to the
    // rounding of the per-tensor norms, which torch also takes first).
    let mut grad = filled(0.5);
    let norm = clip_grad_norm(&mut grad, 1.5, true).unwrap();
    assert!((norm - 10f64.sqrt()).abs() <= 1e-15, "{norm}");
    // Each entry times 1.5 / (norm + 1e-6).
    let want = 0.5 * (1.5 / (norm + 1e-6));
    assert!(grad.params().all(|p| p.values.iter().all(|&g| g == want)));
    // A norm under the threshold: multiplied by 1, unchanged.
    let mut small = filled(0.01);
    clip_grad_norm(&mut small, 1.0, true).unwrap();
    assert_eq!(small, filled(0.01));
    // Non-finite: refused with error_if_nonfinite, nothing changed; NaN everywhere without it.
    let mut bad = filled(0.5);
    bad.fc2.weight[(1, 3)] = f64::INFINITY;
    let before = bad.clone();
    assert!(matches!(
        clip_grad_norm(&mut bad, 1.0, true),
        Err(ClipError::NonFiniteNorm { norm }) if norm == f64::INFINITY
    ));
    assert_eq!(bad, before);
    assert_eq!(clip_grad_norm(&mut bad, 1.0, false).unwrap(), f64::INFINITY);
    assert!(bad.fc1.weight[(0, 0)] == 0.0 && bad.fc2.weight[(1, 3)].is_nan());
    for max in [f64::NAN, -1.0, f64::INFINITY] {
        let mut grad = filled(0.5);
        assert!(matches!(
            clip_grad_norm(&mut grad, max, false),
            Err(ClipError::InvalidThreshold {
                parameter: "max_norm",
                ..
            })
        ));
        assert!(clip_grad_value(&mut grad, max).is_err());
        assert_eq!(grad, filled(0.5));
    }
    let mut grad = filled(-0.5);
    grad.fc3.bias[0] = 0.1;
    clip_grad_value(&mut grad, 0.2).unwrap();
    assert_eq!(grad.fc1.weight[(2, 1)], -0.2);
    assert_eq!(grad.fc3.bias[0], 0.1);
}

/// The optimizer's validation error's parameter, if any.
fn refused(optimizer: &dyn Optimizer<Seed<f64>>) -> Option<&'static str> {
    optimizer.validate().err().map(|e| e.parameter)
}

#[test]
fn new_hyper_parameters_are_checked() {
    assert_eq!(
        refused(&RmsProp::new(0.01).momentum(0.9).centered(true)),
        None
    );
    assert_eq!(refused(&RmsProp::new(-0.01)), Some("learning rate"));
    assert_eq!(refused(&RmsProp::new(f64::NAN)), Some("learning rate"));
    assert_eq!(refused(&RmsProp::new(0.01).alpha(-0.1)), Some("alpha"));
    assert_eq!(refused(&RmsProp::new(0.01).alpha(1.5)), Some("alpha"));
    assert_eq!(refused(&RmsProp::new(0.01).eps(0.0)), Some("eps"));
    assert_eq!(refused(&RmsProp::new(0.01).eps(f64::INFINITY)), Some("eps"));
    assert_eq!(
        refused(&RmsProp::new(0.01).momentum(-1.0)),
        Some("momentum")
    );
    assert_eq!(
        refused(&RmsProp::new(0.01).weight_decay(-1.0)),
        Some("weight_decay")
    );
    assert_eq!(
        refused(
            &Adagrad::new(0.1)
                .lr_decay(0.1)
                .initial_accumulator_value(1.0)
        ),
        None
    );
    assert_eq!(refused(&Adagrad::new(-0.1)), Some("learning rate"));
    assert_eq!(refused(&Adagrad::new(0.1).lr_decay(-1.0)), Some("lr_decay"));
    assert_eq!(
        refused(&Adagrad::new(0.1).lr_decay(f64::NAN)),
        Some("lr_decay")
    );
    assert_eq!(
        refused(&Adagrad::new(0.1).weight_decay(-1.0)),
        Some("weight_decay")
    );
    assert_eq!(
        refused(&Adagrad::new(0.1).initial_accumulator_value(-1.0)),
        Some("initial_accumulator_value")
    );
    assert_eq!(refused(&Adagrad::new(0.1).eps(-1e-10)), Some("eps"));
    // eps of 1e-60 is 0 in f32.
    let tiny: Adagrad<Seed<f32>> = Adagrad::new(0.1).eps(1e-60);
    assert_eq!(
        Optimizer::<Seed<f32>>::validate(&tiny)
            .unwrap_err()
            .parameter,
        "eps"
    );
    let message = RmsProp::new(0.01).alpha(2.0);
    let message = Optimizer::<Seed<f64>>::validate(&message)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("RMSprop") && message.contains("alpha"),
        "{message}"
    );
}

/// The schedule's validation problem, if any.
fn schedule_problem(schedule: Schedule) -> Option<&'static str> {
    schedule.validate().err().map(|e| e.problem)
}

#[test]
fn schedule_hyper_parameters_are_checked() {
    assert!(schedule_problem(Schedule::step_lr(0, 0.5))
        .unwrap()
        .contains("step_size"));
    assert!(schedule_problem(Schedule::step_lr(2, f64::NAN))
        .unwrap()
        .contains("gamma"));
    assert!(schedule_problem(Schedule::exponential_lr(f64::INFINITY)).is_some());
    assert!(schedule_problem(Schedule::cosine_annealing_lr(0, 0.0))
        .unwrap()
        .contains("T_max"));
    assert!(schedule_problem(Schedule::linear_lr(0.0, 1.0, 3))
        .unwrap()
        .contains("start_factor"));
    assert!(schedule_problem(Schedule::linear_lr(0.5, 1.5, 3))
        .unwrap()
        .contains("end_factor"));
    assert!(schedule_problem(Schedule::one_cycle_lr(0.1, 0))
        .unwrap()
        .contains("total_steps"));
    assert!(schedule_problem(
        Schedule::one_cycle_lr(0.1, 10).one_cycle_options(1.5, true, 25.0, 1e4, false)
    )
    .unwrap()
    .contains("pct_start"));
    assert!(schedule_problem(Schedule::sequential(
        vec![Schedule::exponential_lr(0.9)],
        &[2]
    ))
    .unwrap()
    .contains("milestone"));
    assert!(schedule_problem(Schedule::sequential(
        vec![
            Schedule::exponential_lr(0.9),
            Schedule::one_cycle_lr(0.1, 10)
        ],
        &[2]
    ))
    .is_some());
    assert!(schedule_problem(Schedule::sequential(
        vec![
            Schedule::exponential_lr(0.9),
            Schedule::exponential_lr(0.9),
            Schedule::exponential_lr(0.9)
        ],
        &[4, 4]
    ))
    .unwrap()
    .contains("increase"));
    // Momentum cycling needs an optimizer with a momentum.
    let mut adagrad: Adagrad<Seed<f64>> = Adagrad::new(0.1);
    let error = Schedule::one_cycle_lr(0.1, 10)
        .cycle_momentum(0.85, 0.95)
        .start(&mut adagrad)
        .unwrap_err();
    assert!(error.problem.contains("momentum"), "{error}");
    assert!(
        schedule_problem(Schedule::one_cycle_lr(0.1, 10).cycle_momentum(f64::NAN, 0.9)).is_some()
    );
    // A refused schedule does not touch the optimizer's rate.
    let mut sgd: Sgd<Seed<f64>> = Sgd::new(0.1);
    assert!(Schedule::linear_lr(0.0, 1.0, 3).start(&mut sgd).is_err());
    assert_eq!(Optimizer::<Seed<f64>>::learning_rate(&sgd), 0.1);
    // OneCycleLR refuses a step past total_steps, as torch raises, and keeps the rate.
    let mut one = Schedule::one_cycle_lr(0.1, 2);
    one.start(&mut sgd).unwrap();
    one.step(&mut sgd).unwrap();
    one.step(&mut sgd).unwrap();
    let lr = Optimizer::<Seed<f64>>::learning_rate(&sgd);
    let error: ScheduleError = one.step(&mut sgd).unwrap_err();
    assert!(error.to_string().contains("total_steps"), "{error}");
    assert_eq!(Optimizer::<Seed<f64>>::learning_rate(&sgd), lr);
}

#[test]
fn new_optimizers_refuse_non_finite_steps_and_change_nothing() {
    for mut optimizer in [
        Box::new(RmsProp::new(0.01).momentum(0.9).centered(true)) as Box<dyn Optimizer<Seed<f64>>>,
        Box::new(Adagrad::new(0.1).initial_accumulator_value(0.1)),
    ] {
        let mut net = Seed::<f64>::init(4);
        optimizer.try_step(&mut net, &filled(0.1)).unwrap();
        let mut grad = filled(0.2);
        grad.fc2.bias[1] = f64::NAN;
        let before = net.clone();
        let error = optimizer.try_step(&mut net, &grad).unwrap_err();
        assert_eq!((error.parameter, error.row, error.col), ("fc2.bias", 1, 0));
        assert_eq!(net, before);
        // The state is unchanged too: the next good step is the one a fresh twin takes.
        let mut twin = optimizer_twin(error.optimizer);
        let mut twin_net = Seed::<f64>::init(4);
        twin.try_step(&mut twin_net, &filled(0.1)).unwrap();
        twin.try_step(&mut twin_net, &filled(0.3)).unwrap();
        optimizer.try_step(&mut net, &filled(0.3)).unwrap();
        assert_eq!(net, twin_net);
        // An overflowing weight is refused as well.
        let huge = filled(1e300);
        let mut far = Seed::<f64>::zeros();
        for param in far.params_mut() {
            param.values.fill(f64::MAX);
        }
        assert!(
            optimizer.try_step(&mut far, &huge).is_err()
                || far.params().all(|p| p.values.iter().all(|v| v.is_finite()))
        );
    }
}

/// A fresh optimizer like the ones `new_optimizers_refuse_non_finite_steps_and_change_nothing` uses.
fn optimizer_twin(name: &str) -> Box<dyn Optimizer<Seed<f64>>> {
    match name {
        "RMSprop" => Box::new(RmsProp::new(0.01).momentum(0.9).centered(true)),
        _ => Box::new(Adagrad::new(0.1).initial_accumulator_value(0.1)),
    }
}

#[test]
fn rmsprop_runs_as_documented() {
    let mut net = Seed::<f64>::init(1);
    let grad = filled(0.1);
    let mut rmsprop = RmsProp::new(0.01).alpha(0.9).momentum(0.5).centered(true);
    Optimizer::<Seed<f64>>::validate(&rmsprop).unwrap();
    rmsprop.step(&mut net, &grad);
    // First step by hand: v = 0.1 · 0.01, ḡ = 0.1 · 0.1, d = √(v − ḡ²) + eps, b = g / d.
    let v: f64 = 0.1 * 0.1 * 0.1;
    let m: f64 = 0.1 * 0.1;
    let d = (v - m * m).sqrt() + 1e-8;
    let want = Seed::<f64>::init(1).fc1.weight[(0, 0)] - 0.01 * (0.1 / d);
    assert!((net.fc1.weight[(0, 0)] - want).abs() < 1e-15);
    assert_eq!(rmsprop.steps(), 1);
}

#[test]
fn adagrad_runs_as_documented() {
    let mut net = Seed::<f64>::init(1);
    let grad = filled(0.1);
    let mut adagrad = Adagrad::new(0.1)
        .lr_decay(0.01)
        .initial_accumulator_value(0.1);
    Optimizer::<Seed<f64>>::validate(&adagrad).unwrap();
    adagrad.step(&mut net, &grad);
    adagrad.step(&mut net, &grad);
    // By hand: s₁ = 0.11, s₂ = 0.12; clr₁ = 0.1, clr₂ = 0.1 / 1.01.
    let p0 = Seed::<f64>::init(1).fc3.bias[0];
    let want =
        p0 - 0.1 * 0.1 / (0.11f64.sqrt() + 1e-10) - (0.1 / 1.01) * 0.1 / (0.12f64.sqrt() + 1e-10);
    assert!((net.fc3.bias[0] - want).abs() < 1e-15);
}

#[test]
fn schedule_runs_as_documented() {
    let mut net = Seed::<f64>::init(2);
    let grad = filled(0.01);
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    let mut schedule = Schedule::sequential(
        vec![
            Schedule::linear_lr(0.1, 1.0, 3),
            Schedule::cosine_annealing_lr(10, 0.0),
        ],
        &[3],
    );
    schedule.start::<Seed<f64>, _>(&mut sgd).unwrap();
    assert!((sgd.lr - 0.01).abs() < 1e-17);
    let mut rates = vec![sgd.lr];
    for _ in 0..12 {
        sgd.step(&mut net, &grad);
        schedule.step::<Seed<f64>, _>(&mut sgd).unwrap();
        rates.push(sgd.lr);
    }
    // Warm-up 0.01, 0.04, 0.07, then the cosine from 0.1 at epoch 3 (its epoch 0), to 0 at 13.
    let closed = |k: f64| 0.05 * (1.0 + (std::f64::consts::PI * k / 10.0).cos());
    for (i, want) in [0.01, 0.04, 0.07, closed(0.0), closed(1.0), closed(5.0)]
        .iter()
        .enumerate()
    {
        let at = [0, 1, 2, 3, 4, 8][i];
        assert!(
            (rates[at] - want).abs() < 1e-15,
            "epoch {at}: {} vs {want}",
            rates[at]
        );
    }
}

#[test]
fn clipping_runs_as_documented() {
    let mut grad = filled(0.5);
    let norm = clip_grad_norm(&mut grad, 1.0, true).unwrap();
    assert!((norm - 10f64.sqrt()).abs() <= 1e-15, "{norm}");
    // Every entry is now 0.5 / (√10 + 1e-6) ≈ 0.158, then clamped to 0.1.
    clip_grad_value(&mut grad, 0.1).unwrap();
    assert!(grad.params().all(|p| p.values.iter().all(|&g| g == 0.1)));
}
