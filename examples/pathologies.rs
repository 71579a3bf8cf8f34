//! The failures Karpathy's "Yes you should understand backprop" warns about, provoked on purpose,
//! found by the health report, then fixed:
//!
//! 1. sigmoids saturated by large initial weights (fix: Xavier initialisation);
//! 2. ReLUs killed by a learning rate far too large (fix: a sane rate and He initialisation);
//! 3. a deep tanh stack whose gradients vanish from small initial weights (fix: Xavier);
//! 4. a clipped error, whose gradient is zero outside its range (fix: Huber).
//!
//! Each case prints the report that names the failure, then the report after the fix.
//! Run with `cargo run --release --example pathologies`.

use std::ops::ControlFlow;

use backprop::health::{health, Finding, HealthReport};
use backprop::init::{kaiming_normal, xavier_uniform};
use backprop::prelude::*;
use backprop::train::{train, TrainOptions};

network! {
    /// Four inputs into sixteen sigmoids.
    pub struct Sigmoids < 4 => sigmoid 16 => 1 >
}
network! {
    /// A ReLU layer of 32.
    pub struct Relus < 4 => relu 32 => 1 >
}
network! {
    /// Six tanh layers deep.
    pub struct Deep < 4 => tanh 16 => tanh 16 => tanh 16 => tanh 16 => tanh 16 => tanh 16 => 1 >
}
network! {
    /// A small regression network for the loss case.
    pub struct Small < 4 => tanh 8 => 1 >
}

/// A clipped error, as in the DQN example of the essay: the squared error inside ±1 and a
/// constant outside, so the gradient there is exactly zero.
struct ClippedError;

impl<const B: usize> Loss<f32, 1, B> for ClippedError {
    fn value(&self, output: &SMatrix<f32, 1, B>, target: &SMatrix<f32, 1, B>) -> f32 {
        let total: f32 = (output - target)
            .iter()
            .map(|e| e.clamp(-1.0, 1.0).powi(2))
            .sum();
        total / B as f32
    }

    fn gradient(
        &self,
        output: &SMatrix<f32, 1, B>,
        target: &SMatrix<f32, 1, B>,
        grad: &mut SMatrix<f32, 1, B>,
    ) -> f32 {
        for ((g, o), t) in grad.iter_mut().zip(output.iter()).zip(target.iter()) {
            let e = o - t;
            *g = if e.abs() < 1.0 {
                2.0 * e / B as f32
            } else {
                0.0
            };
        }
        Loss::<f32, 1, B>::value(self, output, target)
    }
}

/// 256 samples of four inputs in [−1, 1] and a target `3·sin(x0) + x1·x2 − x3`.
fn data() -> (Vec<SVector<f32, 4>>, Vec<SVector<f32, 1>>) {
    let inputs: Vec<SVector<f32, 4>> = (0..256)
        .map(|k| {
            SVector::<f32, 4>::from_fn(|r, _| ((k * (2 * r + 3) + r * 17) % 41) as f32 / 20.0 - 1.0)
        })
        .collect();
    let targets = inputs
        .iter()
        .map(|x| SVector::<f32, 1>::new(3.0 * x[0].sin() + x[1] * x[2] - x[3]))
        .collect();
    (inputs, targets)
}

/// Prints a report under a heading and returns whether it has a finding that `pick` selects.
fn show(heading: &str, report: &HealthReport, pick: impl Fn(&Finding) -> bool) -> bool {
    println!("{heading}\n{report}");
    report.findings.iter().any(pick)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (inputs, targets) = data();
    let options = Default::default();
    let mut named = Vec::new();

    // 1. Saturated sigmoids.
    let mut net = Sigmoids::<f32>::init(1);
    net.fc1.weight *= 40.0;
    let before = health(&net, &Mse, &inputs, &targets, &options)?;
    let saturated = |f: &Finding| matches!(f, Finding::Saturated { layer: "fc1", .. });
    let found = show("1. sigmoid weights 40× too large", &before, saturated);
    xavier_uniform(&mut net, 1);
    let after = health(&net, &Mse, &inputs, &targets, &options)?;
    let fixed = !show("   after Xavier initialisation", &after, saturated);
    named.push(("saturated sigmoids", found, fixed));

    // 2. ReLUs killed by a learning rate far too large.
    let mut net = Relus::<f32>::init(2);
    train(
        &mut net,
        &mut Sgd::new(0.6),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(3, 0).batch::<16>(),
        |_| ControlFlow::Continue(()),
    )
    .ok();
    let before = health(&net, &Mse, &inputs, &targets, &options)?;
    let dead = |f: &Finding| matches!(f, Finding::Dead { layer: "fc1", .. });
    let found = show("2. relu after 3 epochs of SGD at lr 0.6", &before, dead);
    let mut net = Relus::<f32>::init(2);
    kaiming_normal(&mut net, 2);
    train(
        &mut net,
        &mut Sgd::new(0.01),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(3, 0).batch::<16>(),
        |_| ControlFlow::Continue(()),
    )?;
    let after = health(&net, &Mse, &inputs, &targets, &options)?;
    let fixed = !show("   after He initialisation and lr 0.01", &after, dead);
    named.push(("dead ReLUs", found, fixed));

    // 3. Vanishing gradients in a deep tanh stack.
    let mut net = Deep::<f32>::init(3);
    for param in net.params_mut() {
        for value in param.values.iter_mut() {
            *value *= 0.05;
        }
    }
    let before = health(&net, &Mse, &inputs, &targets, &options)?;
    let vanishing = |f: &Finding| matches!(f, Finding::Vanishing { .. });
    let found = show(
        "3. six tanh layers, weights 20× too small",
        &before,
        vanishing,
    );
    xavier_uniform(&mut net, 3);
    let after = health(&net, &Mse, &inputs, &targets, &options)?;
    let fixed = !show("   after Xavier initialisation", &after, vanishing);
    named.push(("vanishing gradients", found, fixed));

    // 4. A clipped error.
    let mut net = Small::<f32>::init(4);
    net.fc2.bias[0] = 4.0;
    let before = health(&net, &ClippedError, &inputs, &targets, &options)?;
    let zero = |f: &Finding| matches!(f, Finding::ZeroLossGradient { .. });
    let found = show(
        "4. a clipped error, outputs far from the targets",
        &before,
        zero,
    );
    let after = health(&net, &Huber::default(), &inputs, &targets, &options)?;
    let fixed = !show("   with Huber instead", &after, zero);
    named.push(("clipped error", found, fixed));

    println!("summary:");
    for (what, found, fixed) in &named {
        println!(
            "  {what:<20} found: {}  gone after the fix: {}",
            if *found { "yes" } else { "NO" },
            if *fixed { "yes" } else { "NO" }
        );
    }
    if named.iter().all(|(_, found, fixed)| *found && *fixed) {
        Ok(())
    } else {
        Err("a failure was not found, or not fixed".into())
    }
}
