//! The health report on networks built so that the answer is known by hand: exactly k of n ReLU
//! units dead, a known share of sigmoid units saturated, a two-layer tanh chain whose gradient
//! norms and their ratio are a formula, gradient norms against PyTorch's gradients, a clipped
//! error whose zero-gradient samples are counted by hand, and an SGD step's update ratio.

use crate::common::{assert_close, columns, fixture, load_params, numbers};
use backprop::health::{health, Finding, HealthMonitor, HealthOptions};
use backprop::prelude::*;

network! { struct Relu6 < 2 => relu 6 => 1 > }

#[test]
fn exactly_k_of_n_relu_units_are_dead() {
    let inputs: Vec<SVector<f64, 2>> = (0..20)
        .map(|k| SVector::<f64, 2>::new((k as f64 * 0.37).sin(), (k as f64 * 0.11).cos()))
        .collect();
    let targets = vec![SVector::<f64, 1>::new(0.5); inputs.len()];
    for k in 0..=6 {
        let mut net = Relu6::<f64>::init(k as u64);
        // |w·x| ≤ √2 · 0.5 < 1 on this data: a bias of −1 keeps z < 0, of +1 keeps z > 0.
        net.fc1.weight *= 0.5 / net.fc1.weight.abs().max();
        for unit in 0..6 {
            net.fc1.bias[unit] = if unit < k { -1.0 } else { 1.0 };
        }
        let report = health(&net, &Mse, &inputs, &targets, &HealthOptions::default()).unwrap();
        let fc1 = report.layer("fc1").unwrap();
        assert_eq!(fc1.dead, k, "{report}");
        let dead_finding = report
            .findings
            .iter()
            .any(|f| matches!(f, Finding::Dead { layer: "fc1", dead, units: 6 } if *dead == k));
        // One dead unit of six is 17 %, above the default 10 % share.
        assert_eq!(dead_finding, k > 0, "{report}");
        if k > 0 {
            assert!(report.to_string().contains("He initialisation"), "{report}");
        }
    }
}

#[test]
fn a_unit_exactly_at_zero_counts_as_dead() {
    let mut net = Relu6::<f64>::zeros();
    net.fc1.bias = SVector::<f64, 6>::new(0.0, 1.0, 1.0, 1.0, 1.0, 1.0);
    let inputs = vec![SVector::<f64, 2>::new(0.3, 0.4)];
    let targets = vec![SVector::<f64, 1>::new(1.0)];
    let report = health(&net, &Mse, &inputs, &targets, &HealthOptions::default()).unwrap();
    assert_eq!(report.layer("fc1").unwrap().dead, 1);
}

network! { struct Sigmoid10 < 1 => sigmoid 10 => 1 > }

#[test]
fn a_known_share_of_sigmoid_units_saturates() {
    // Inputs in [0.5, 1]: a unit with weight 100 has z ≥ 50 and σ'(z) < 2e-22; one with weight
    // 0.1 has z ≤ 0.1 and σ'(z) > 0.249. Unit 9 has weight 10 and bias −7.5: z = 10x − 7.5 is
    // saturated (|z| > 4.6) only for x > 0.96, 2 samples of 11: not "most samples".
    let inputs: Vec<SVector<f64, 1>> = (0..=10)
        .map(|k| SVector::<f64, 1>::new(0.5 + 0.05 * k as f64))
        .collect();
    let targets = vec![SVector::<f64, 1>::new(0.5); inputs.len()];
    for saturating in [0, 3, 7, 9] {
        let mut net = Sigmoid10::<f64>::zeros();
        for unit in 0..9 {
            net.fc1.weight[(unit, 0)] = if unit < saturating { 100.0 } else { 0.1 };
        }
        net.fc1.weight[(9, 0)] = 10.0;
        net.fc1.bias[9] = -7.5;
        net.fc2.weight.fill(0.1);
        let report = health(&net, &Mse, &inputs, &targets, &HealthOptions::default()).unwrap();
        let fc1 = report.layer("fc1").unwrap();
        assert_eq!(fc1.saturated, saturating, "{report}");
        assert_eq!(
            report
                .findings
                .iter()
                .any(|f| matches!(f, Finding::Saturated { layer: "fc1", .. })),
            saturating > 0
        );
    }
}

network! { struct Chain < 1 => tanh 1 => 1 > }

#[test]
fn gradient_norms_and_their_ratio_equal_the_hand_formula() {
    // o = w2·tanh(w1·x), E = (o − t)² (MSE of one output): ∂E/∂w2 = 2(o − t)·tanh(w1 x) and
    // ∂E/∂w1 = 2(o − t)·w2·(1 − tanh²(w1 x))·x.
    let (w1, w2, x, t) = (5.0f64, 1.0f64, 1.0f64, 0.0f64);
    let mut net = Chain::<f64>::zeros();
    net.fc1.weight[(0, 0)] = w1;
    net.fc2.weight[(0, 0)] = w2;
    let report = health(
        &net,
        &Mse,
        &[SVector::<f64, 1>::new(x)],
        &[SVector::<f64, 1>::new(t)],
        &HealthOptions::default(),
    )
    .unwrap();
    let o = w2 * (w1 * x).tanh();
    let g2 = (2.0 * (o - t) * (w1 * x).tanh()).abs();
    let g1 = (2.0 * (o - t) * w2 * (1.0 - (w1 * x).tanh().powi(2)) * x).abs();
    let (fc1, fc2) = (report.layer("fc1").unwrap(), report.layer("fc2").unwrap());
    assert_close("‖∇W1‖", fc1.gradient_norm, g1, 1e-12, 0.0);
    assert_close("‖∇W2‖", fc2.gradient_norm, g2, 1e-12, 0.0);
    assert_close("ratio", fc1.ratio_to_next.unwrap(), g1 / g2, 1e-12, 0.0);
    assert_eq!(fc2.ratio_to_next, None);
    // 1.8e-4: vanishing, and the tanh unit is saturated (tanh' = 1.8e-4 < 0.01).
    assert!(
        report.findings.iter().any(|f| matches!(
            f,
            Finding::Vanishing {
                layer: "fc1",
                last: "fc2",
                ..
            }
        )),
        "{report}"
    );
    assert_eq!(fc1.saturated, 1);
}

network! { struct Silu < 8 => silu 10 => relu 6 => sigmoid 2 > }

#[test]
fn gradient_norms_equal_pytorchs_over_a_batch() {
    // The parity fixture's gradient is the mean over its 16 samples, as the report's is.
    let all = fixture("parity.json");
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "d3_silu_mse_f64_b16")
        .unwrap();
    let mut net = Silu::<f64>::zeros();
    load_params(&mut net, &case["params"]);
    let x: SMatrix<f64, 8, 16> = columns(&SMatrix::zeros(), &case["input"]);
    let y: SMatrix<f64, 2, 16> = columns(&SMatrix::zeros(), &case["target"]);
    let inputs: Vec<SVector<f64, 8>> = x.column_iter().map(|c| c.into_owned()).collect();
    let targets: Vec<SVector<f64, 2>> = y.column_iter().map(|c| c.into_owned()).collect();
    let report = health(&net, &Mse, &inputs, &targets, &HealthOptions::default()).unwrap();
    for layer in ["fc1", "fc2", "fc3"] {
        let grads = &case["grads"][format!("{layer}.weight")];
        let rows = grads.as_array().unwrap();
        let norm = rows
            .iter()
            .flat_map(numbers)
            .map(|g| g * g)
            .sum::<f64>()
            .sqrt();
        let found = report.layer(layer).unwrap().gradient_norm;
        assert_close(&format!("‖∇{layer}.weight‖"), found, norm, 1e-12, 1e-15);
    }
}

/// A clipped error, as in Karpathy's DQN example: the squared error inside ±1, a constant
/// outside, so its gradient there is exactly zero.
struct ClippedError;

impl<const B: usize> Loss<f64, 1, B> for ClippedError {
    fn value(&self, output: &SMatrix<f64, 1, B>, target: &SMatrix<f64, 1, B>) -> f64 {
        let total: f64 = output
            .iter()
            .zip(target.iter())
            .map(|(o, t)| (o - t).clamp(-1.0, 1.0).powi(2))
            .sum();
        total / B as f64
    }

    fn gradient(
        &self,
        output: &SMatrix<f64, 1, B>,
        target: &SMatrix<f64, 1, B>,
        grad: &mut SMatrix<f64, 1, B>,
    ) -> f64 {
        for ((g, o), t) in grad.iter_mut().zip(output.iter()).zip(target.iter()) {
            let e = o - t;
            *g = if e.abs() < 1.0 {
                2.0 * e / B as f64
            } else {
                0.0
            };
        }
        Loss::<f64, 1, B>::value(self, output, target)
    }
}

network! { struct Line < 1 => 1 > }

#[test]
fn samples_with_a_zero_loss_gradient_are_counted() {
    // o = x (weight 1, bias 0); targets 0: the error is x, clipped where |x| ≥ 1.
    let mut net = Line::<f64>::zeros();
    net.fc1.weight[(0, 0)] = 1.0;
    let xs = [-3.0, -1.5, -0.5, 0.0, 0.25, 0.9, 1.0, 2.0, 5.0, 0.1];
    let inputs: Vec<SVector<f64, 1>> = xs.iter().map(|&x| SVector::<f64, 1>::new(x)).collect();
    let targets = vec![SVector::<f64, 1>::new(0.0); xs.len()];
    let clipped = health(
        &net,
        &ClippedError,
        &inputs,
        &targets,
        &HealthOptions::default(),
    )
    .unwrap();
    // |x| ≥ 1 for −3, −1.5, 1, 2, 5; and x = 0 has a zero error, so a zero gradient too.
    assert_eq!(clipped.zero_loss_gradient, 6, "{clipped}");
    assert!(clipped
        .to_string()
        .contains("use Huber instead of clipping the error"));
    let huber = health(
        &net,
        &Huber::default(),
        &inputs,
        &targets,
        &HealthOptions::default(),
    )
    .unwrap();
    assert_eq!(huber.zero_loss_gradient, 1, "only x = 0: {huber}");
    assert!(!huber
        .findings
        .iter()
        .any(|f| matches!(f, Finding::ZeroLossGradient { .. })));
}

#[test]
fn the_update_ratio_of_an_sgd_step_is_the_hand_value() {
    let net0 = Chain::<f64>::init(4);
    let mut net = net0.clone();
    let (x, y) = (SVector::<f64, 1>::new(0.7), SVector::<f64, 1>::new(-0.3));
    let (mut ws, mut grad) = (net.workspace(), Chain::zeros());
    net.backward(&x, &y, &Mse, &mut ws, &mut grad);
    let mut monitor = HealthMonitor::new(&net);
    monitor.before_step(&net);
    let lr = 0.05;
    Sgd::new(lr).step(&mut net, &grad);
    monitor.after_step(&net);
    let report = monitor
        .observe(&net, &Mse, &[x], &[y], &HealthOptions::default())
        .unwrap();
    // Plain SGD: Δw = −lr·g, so the ratio is lr·|g| / |w| for these one-entry weights.
    for (layer, g, w) in [
        ("fc1", grad.fc1.weight[(0, 0)], net0.fc1.weight[(0, 0)]),
        ("fc2", grad.fc2.weight[(0, 0)], net0.fc2.weight[(0, 0)]),
    ] {
        let expected = lr * g.abs() / w.abs();
        let found = report.layer(layer).unwrap().update_ratio.unwrap();
        assert_close(
            &format!("{layer} update ratio"),
            found,
            expected,
            1e-12,
            0.0,
        );
    }
}

#[test]
fn bad_data_is_an_error() {
    use backprop::health::HealthError;
    let net = Line::<f64>::zeros();
    let one = [SVector::<f64, 1>::new(1.0)];
    assert_eq!(
        health(
            &net,
            &Mse,
            &one,
            &[] as &[SVector<f64, 1>],
            &HealthOptions::default()
        ),
        Err(HealthError::LengthMismatch {
            inputs: 1,
            targets: 0
        })
    );
    let none: [SVector<f64, 1>; 0] = [];
    assert_eq!(
        health(&net, &Mse, &none, &none, &HealthOptions::default()),
        Err(HealthError::EmptyDataSet)
    );
}

/// The example in the `health` module's documentation.
#[test]
fn the_module_example_runs() {
    network! { struct Net < 2 => relu 8 => sigmoid 1 > }
    let net = Net::<f64>::init(3);
    let inputs = vec![
        SVector::<f64, 2>::new(0.5, -1.0),
        SVector::<f64, 2>::new(1.0, 0.25),
    ];
    let targets = vec![SVector::<f64, 1>::new(1.0), SVector::<f64, 1>::new(0.0)];
    let mut monitor = HealthMonitor::new(&net);
    let report = monitor
        .observe(&net, &Mse, &inputs, &targets, &HealthOptions::default())
        .unwrap();
    assert_eq!(report.layers.len(), 2);
    assert!(report.to_string().starts_with("health over 2 samples"));
}

/// The drawing and the page mark saturated units by the report's rule, sample by sample.
#[test]
fn pictures_mark_the_units_the_report_counts_as_saturated() {
    use backprop::dot::to_dot;
    use backprop::page::to_html;
    let mut net = Sigmoid10::<f64>::zeros();
    for unit in 0..10 {
        net.fc1.weight[(unit, 0)] = if unit < 4 { 100.0 } else { 0.1 };
    }
    let (x, y) = (SVector::<f64, 1>::new(0.75), SVector::<f64, 1>::new(0.5));
    let report = health(&net, &Mse, &[x], &[y], &HealthOptions::default()).unwrap();
    assert_eq!(report.layer("fc1").unwrap().saturated, 4);
    let dot = to_dot(&net, &x, &y, &Mse);
    assert_eq!(dot.matches("saturated: f′ ≈ 0").count(), 4, "{dot}");
    let page = to_html(&net, &x, &y, &Mse, "saturation").unwrap();
    assert_eq!(page.matches("class=\"unit saturated\"").count(), 4);
}

/// The training loop hands the callback a report per epoch when asked: the same report a
/// standalone check gives for the network after the epoch, with the epoch's last step's update
/// ratio; none when not asked.
#[test]
fn the_training_loop_reports_health_per_epoch_when_asked() {
    use backprop::train::{train_with, Fit, TrainOptions};
    use std::ops::ControlFlow;
    let inputs: Vec<SVector<f64, 2>> = (0..24)
        .map(|k| SVector::<f64, 2>::new((k as f64 * 0.37).sin(), (k as f64 * 0.11).cos()))
        .collect();
    let targets: Vec<SVector<f64, 1>> = inputs
        .iter()
        .map(|x| SVector::<f64, 1>::new(x[0] * x[1]))
        .collect();
    let options = HealthOptions::default();
    let mut net = Relu6::<f64>::init(5);
    let mut reports = Vec::new();
    let mut nets = Vec::new();
    train_with(
        &mut net,
        &mut Sgd::new(0.1),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(3, 1).batch::<8>(),
        Fit::new().health(options),
        |epoch| {
            reports.push(epoch.health.expect("a report each epoch").clone());
            nets.push(epoch.net.clone());
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(reports.len(), 3);
    for (report, net) in reports.iter().zip(&nets) {
        let standalone = health(net, &Mse, &inputs, &targets, &options).unwrap();
        for (a, b) in report.layers.iter().zip(&standalone.layers) {
            assert_eq!((a.dead, a.saturated), (b.dead, b.saturated));
            assert_eq!(a.gradient_norm, b.gradient_norm);
        }
        for layer in &report.layers {
            let ratio = layer.update_ratio.expect("the epoch's last step was seen");
            assert!(ratio > 0.0 && ratio.is_finite(), "{report}");
        }
    }
    let mut seen = false;
    train_with(
        &mut net,
        &mut Sgd::new(0.1),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(1, 1).batch::<8>(),
        Fit::new(),
        |epoch| {
            seen = true;
            assert!(epoch.health.is_none());
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert!(seen);
}
