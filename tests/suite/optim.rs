//! Optimizers step for step against torch.optim (`tests/fixtures/optim.json`, from
//! `scripts/gen_optim_fixtures.py`): SGD (plain, momentum, dampening, Nesterov, weight decay),
//! Adam (plain, AMSGrad, weight decay, other betas, β1 below ½) and AdamW, three steps each on two
//! networks, parameters after every step to 1e-12 relative in f64. `--nocapture` prints the
//! largest differences per case.
//!
//! And the update rules alone, bit for bit (`tests/fixtures/optim_exact.json`, from
//! `scripts/gen_optim_exact_fixtures.py`): fixed gradients handed to torch.optim, six steps in f64
//! and f32, with hyper-parameters changed between steps in two cases.

use crate::common::{
    assert_params_close, fixture, load_params, numbers, row, set_params_row_major,
};
use backprop::optim::OptimizerError;
use backprop::prelude::*;
use backprop::scalar::to_f64;
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
        "adam_low_beta1" => Box::new(Adam::new(0.01).betas(0.3, 0.9)),
        "adamw" => Box::new(AdamW::new(0.01)),
        "adamw_amsgrad" => Box::new(AdamW::new(0.01).weight_decay(0.1).amsgrad(true)),
        other => panic!("no optimizer {other}"),
    }
}

/// The largest relative (over entries PyTorch has non-zero) and absolute differences between
/// `net`'s parameters and a state_dict-like JSON object.
fn largest_errors<N: Network<Scalar = f64>>(net: &N, expected: &Value) -> (f64, f64) {
    let (mut relative, mut absolute) = (0.0_f64, 0.0_f64);
    for param in net.params() {
        let values = numbers(&expected[param.name]);
        for row in 0..param.rows {
            for col in 0..param.cols {
                let want = values[row * param.cols + col];
                let error = (to_f64(param.get(row, col)) - want).abs();
                absolute = absolute.max(error);
                if want != 0.0 {
                    relative = relative.max(error / want.abs());
                }
            }
        }
    }
    (relative, absolute)
}

/// Runs one case: three steps of backward and the optimizer, compared after each; returns the
/// largest relative and absolute differences over the three steps. `prepared`: the optimizer's
/// state is made before the first step (`prepare`) rather than by it.
fn run<N, L, Y, const I: usize, const O: usize, const B: usize>(
    case: &Value,
    net: &mut N,
    x: &SMatrix<f64, I, B>,
    target: &Y,
    loss: &L,
    prepared: bool,
) -> (f64, f64)
where
    N: Model<I, O, Scalar = f64> + 'static,
    L: Loss<f64, O, B, Y>,
{
    let mut optimizer = optimizer::<N>(case["optimizer"].as_str().unwrap());
    optimizer.validate().unwrap();
    if prepared {
        optimizer.prepare();
    }
    let mut ws = net.workspace();
    let mut grad = N::zeros();
    let mut largest = (0.0_f64, 0.0_f64);
    for (step, expected) in case["after"].as_array().unwrap().iter().enumerate() {
        net.backward(x, target, loss, &mut ws, &mut grad);
        optimizer.step(net, &grad);
        let what = format!(
            "{} after step {} (prepared: {prepared})",
            case["name"],
            step + 1
        );
        assert_params_close(net, expected, &what, 1e-12, 1e-14);
        let (relative, absolute) = largest_errors(net, expected);
        largest = (largest.0.max(relative), largest.1.max(absolute));
    }
    largest
}

#[test]
fn every_optimizer_matches_torch_optim_step_for_step() {
    let all = fixture("optim.json");
    let cases = all["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 26);
    let mut overall = (0.0_f64, 0.0_f64);
    for (case, prepared) in cases.iter().flat_map(|case| [(case, false), (case, true)]) {
        let (relative, absolute) = match case["architecture"].as_str().unwrap() {
            "seed" => {
                let mut net = Seed::<f64>::zeros();
                load_params(&mut net, &case["initial"]);
                let x = SMatrix::<f64, 4, 3>::from_fn(|r, c| row(&case["input"], c)[r]);
                let y = SMatrix::<f64, 1, 3>::from_fn(|r, c| row(&case["target"], c)[r]);
                run(case, &mut net, &x, &y, &Mse, prepared)
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
                run(case, &mut net, &x, &y, &CrossEntropy, prepared)
            }
            other => panic!("unknown architecture {other}"),
        };
        eprintln!(
            "{:<32} prepared: {prepared:<5} largest relative error {relative:.2e}, absolute {absolute:.2e}",
            case["name"].as_str().unwrap()
        );
        overall = (overall.0.max(relative), overall.1.max(absolute));
    }
    eprintln!(
        "all cases: largest relative error {:.2e}, absolute {:.2e}",
        overall.0, overall.1
    );
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
    let damped: Sgd<Seed<f64>> = Sgd::new(0.1).momentum(0.9).dampening(0.1).nesterov(true);
    assert!(Optimizer::<Seed<f64>>::validate(&damped).is_err());
    let negative: Sgd<Seed<f64>> = Sgd::new(-0.1);
    assert_eq!(
        Optimizer::<Seed<f64>>::validate(&negative)
            .unwrap_err()
            .to_string(),
        "invalid learning rate for SGD: expected a number ≥ 0, found -0.1"
    );
    let fine: Sgd<Seed<f64>> = Sgd::new(0.1)
        .momentum(0.9)
        .nesterov(true)
        .weight_decay(1e-4);
    assert!(Optimizer::<Seed<f64>>::validate(&fine).is_ok());
    let beta2: Adam<Seed<f64>> = Adam::new(1e-3).betas(0.9, -0.1);
    assert_eq!(
        Optimizer::<Seed<f64>>::validate(&beta2)
            .unwrap_err()
            .parameter,
        "beta2"
    );
    assert!(Optimizer::<Seed<f64>>::validate(&Adam::<Seed<f64>>::new(1e-3).amsgrad(true)).is_ok());
    let adamw: AdamW<Seed<f64>> = AdamW::new(-1.0);
    assert!(Optimizer::<Seed<f64>>::validate(&adamw)
        .unwrap_err()
        .to_string()
        .contains("AdamW"));
}

/// A float read from and compared as its bit pattern.
trait Bits: Scalar + std::fmt::LowerExp {
    /// The float whose bit pattern is the hexadecimal `hex`.
    fn from_hex(hex: &str) -> Self;
    /// The bit pattern, widened.
    fn bits(self) -> u64;
    /// The sign bit of the pattern.
    fn sign_bit() -> u64;
}

/// How many representable values lie between `a` and `b` (0: the same bits; 1: neighbours).
fn units_apart<T: Bits>(a: T, b: T) -> u64 {
    // Map sign-magnitude patterns onto one ordered line: negatives below zero, positives above.
    let line = |x: T| {
        let bits = x.bits();
        if bits & T::sign_bit() != 0 {
            -((bits & !T::sign_bit()) as i128)
        } else {
            bits as i128
        }
    };
    (line(a) - line(b)).unsigned_abs() as u64
}

impl Bits for f64 {
    fn from_hex(hex: &str) -> Self {
        f64::from_bits(u64::from_str_radix(hex, 16).unwrap())
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn sign_bit() -> u64 {
        1 << 63
    }
}

impl Bits for f32 {
    fn from_hex(hex: &str) -> Self {
        f32::from_bits(u32::from_str_radix(hex, 16).unwrap())
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn sign_bit() -> u64 {
        1 << 31
    }
}

/// A network holding the parameters of a bit-pattern object (hexadecimal strings, row-major).
fn seed_from_bits<T: Bits>(params: &Value) -> Seed<T> {
    let mut net = Seed::<T>::zeros();
    set_params_row_major(&mut net, |name| {
        params[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|hex| T::from_hex(hex.as_str().unwrap()))
            .collect()
    });
    net
}

/// A fixture's optimizer, with the hyper-parameter its schedule changes between steps, if any.
enum Scheduled<N: Network> {
    /// `sgd_momentum_toggled`: SGD whose momentum the schedule sets.
    Momentum(Sgd<N>),
    /// `adam_amsgrad_toggled`: Adam whose AMSGrad the schedule sets.
    Amsgrad(Adam<N>),
    /// Any other case: fixed hyper-parameters.
    Fixed(Box<dyn Optimizer<N>>),
}

impl<N: Network + 'static> Scheduled<N> {
    /// The optimizer the generator builds for `name`.
    fn new(name: &str) -> Self {
        match name {
            "sgd_momentum_toggled" => {
                Scheduled::Momentum(Sgd::new(0.1).momentum(0.9).dampening(0.3))
            }
            "adam_amsgrad_toggled" => Scheduled::Amsgrad(Adam::new(0.01).amsgrad(true)),
            other => Scheduled::Fixed(optimizer(other)),
        }
    }

    /// Sets the scheduled hyper-parameter to `value`, as the generator sets the param_group's.
    fn schedule(&mut self, value: &Value) {
        match self {
            Scheduled::Momentum(sgd) => sgd.momentum = value.as_f64().unwrap(),
            Scheduled::Amsgrad(adam) => adam.amsgrad = value.as_bool().unwrap(),
            Scheduled::Fixed(_) => {}
        }
    }

    fn optimizer(&mut self) -> &mut dyn Optimizer<N> {
        match self {
            Scheduled::Momentum(sgd) => sgd,
            Scheduled::Amsgrad(adam) => adam,
            Scheduled::Fixed(optimizer) => &mut **optimizer,
        }
    }
}

/// Runs one exact case: each step sets the schedule's hyper-parameter (if any), then steps with
/// the fixture's gradient; after every step every parameter must have PyTorch's bits.
fn exact_case<T: Bits>(case: &Value, prepared: bool) {
    let name = case["name"].as_str().unwrap();
    let mut net = seed_from_bits::<T>(&case["initial"]);
    let mut scheduled = Scheduled::<Seed<T>>::new(case["optimizer"].as_str().unwrap());
    scheduled.optimizer().validate().unwrap();
    if prepared {
        scheduled.optimizer().prepare();
    }
    let steps = case["gradients"].as_array().unwrap();
    let after = case["after"].as_array().unwrap();
    for (step, (gradient, expected)) in steps.iter().zip(after).enumerate() {
        scheduled.schedule(&case["schedule"]["values"][step]);
        scheduled
            .optimizer()
            .step(&mut net, &seed_from_bits::<T>(gradient));
        let want = seed_from_bits::<T>(expected);
        for (found, want) in net.params().zip(want.params()) {
            for (index, (&f, &w)) in found.values.iter().zip(want.values).enumerate() {
                assert!(
                    f.bits() == w.bits(),
                    "{name} (prepared: {prepared}) step {}: {}[{index}] is {f:e}, PyTorch has {w:e} \
                     ({} units in the last place apart)",
                    step + 1,
                    found.name,
                    units_apart(f, w)
                );
            }
        }
    }
}

/// The update rules against torch.optim given the same gradients, bit for bit in f64 and f32.
/// (The generator gives torch the IEEE square root: PyTorch's own `sqrt` on its MKL build is one
/// unit off for some inputs; every other operation is torch.optim's.)
#[test]
fn update_rules_equal_torch_optim_bit_for_bit() {
    let all = fixture("optim_exact.json");
    let cases = all["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 30);
    for case in cases {
        for prepared in [false, true] {
            match case["scalar"].as_str().unwrap() {
                "f64" => exact_case::<f64>(case, prepared),
                "f32" => exact_case::<f32>(case, prepared),
                other => panic!("unknown scalar {other}"),
            }
        }
    }
}

/// One Adam step from a zero state at step number `t` (the counter set to `t − 1`), the weights
/// and gradient fixed; returns the change of every weight, and the count after the step.
fn adam_step_at(t: u64, beta1: f64, beta2: f64) -> (Vec<f64>, Vec<f64>, u64) {
    let net = Seed::<f64>::init(3);
    let mut grad = Seed::<f64>::zeros();
    for (k, param) in grad.params_mut().enumerate() {
        for (i, g) in param.values.iter_mut().enumerate() {
            *g = ((k * 7 + i) as f64 * 0.37).sin() * 0.1;
        }
    }
    let mut adam = Adam::new(1e-2).betas(beta1, beta2);
    Optimizer::<Seed<f64>>::validate(&adam).unwrap();
    adam.set_steps(t - 1);
    assert_eq!(adam.steps(), t - 1);
    let mut stepped = net.clone();
    adam.step(&mut stepped, &grad);
    let deltas = stepped
        .params()
        .zip(net.params())
        .flat_map(|(a, b)| {
            a.values
                .iter()
                .zip(b.values)
                .map(|(x, y)| x - y)
                .collect::<Vec<_>>()
        })
        .collect();
    let grads = grad.params().flat_map(|p| p.values.to_vec()).collect();
    (deltas, grads, adam.steps())
}

/// The first step's change from zero moments, by hand, with the bias corrections `c1 = 1 − β1ᵗ`
/// and `c2 = 1 − β2ᵗ` given: `m = (1 − β1) g`, `v = (1 − β2) g²`,
/// `Δp = −(lr / c1) · m / (√v / √c2 + eps)`.
fn hand_delta(g: f64, beta1: f64, beta2: f64, c1: f64, c2: f64) -> f64 {
    let m = (1.0 - beta1) * g;
    let v = (1.0 - beta2) * g * g;
    -(1e-2 / c1) * m / (v.sqrt() / c2.sqrt() + 1e-8)
}

#[test]
fn adam_counts_steps_past_u32_and_corrects_bias_at_huge_counts() {
    // At t = 2^32 (where a u32 counter wrapped to 0 and made the weights NaN) and beyond, the
    // default betas' powers have underflowed to 0: both corrections are exactly 1.
    for t in [1u64 << 32, (1 << 32) + 1, 1 << 40, 1 << 53, u64::MAX] {
        let (deltas, grads, steps) = adam_step_at(t, 0.9, 0.999);
        assert_eq!(steps, t);
        for (d, g) in deltas.iter().zip(&grads) {
            let want = hand_delta(*g, 0.9, 0.999, 1.0, 1.0);
            assert!(
                (d - want).abs() <= 1e-15 * want.abs() + 1e-18,
                "t = {t}: {d} vs {want}"
            );
            assert!(d.is_finite());
        }
    }
    // Betas so close to 1 that the powers are still far from 0 at t = 2^40:
    // (1 − 2^-40)^(2^40) = exp(2^40 · ln(1 − 2^-40)) = exp(−1 − 2^-41 − …) = e^-1 (1 − 2^-41), and
    // (1 − 2^-42)^(2^40) = exp(−1/4 − 2^-45 − …) = e^-1/4 (1 − 2^-45), to well under 1e-20.
    let (beta1, beta2) = (1.0 - 2f64.powi(-40), 1.0 - 2f64.powi(-42));
    let c1 = 1.0 - (-1.0f64).exp() * (1.0 - 2f64.powi(-41));
    let c2 = 1.0 - (-0.25f64).exp() * (1.0 - 2f64.powi(-45));
    let (deltas, grads, steps) = adam_step_at(1 << 40, beta1, beta2);
    assert_eq!(steps, 1 << 40);
    for (d, g) in deltas.iter().zip(&grads) {
        let want = hand_delta(*g, beta1, beta2, c1, c2);
        // The weights' own rounding (about 1e-16 of a weight near 1) bounds the agreement.
        assert!(
            (d - want).abs() <= 1e-9 * want.abs() + 1e-15,
            "{d} vs {want}"
        );
    }
    // Saturating, never wrapping: the count stays at u64::MAX.
    let mut adamw: AdamW<Seed<f64>> = AdamW::new(1e-3);
    adamw.set_steps(u64::MAX);
    let mut net = Seed::<f64>::init(1);
    let grad = Seed::<f64>::init(2);
    adamw.step(&mut net, &grad);
    adamw.try_step(&mut net, &grad).unwrap();
    assert_eq!(adamw.steps(), u64::MAX);
    assert!(net.params().all(|p| p.values.iter().all(|v| v.is_finite())));
}
