//! A training step allocates nothing: forward, loss and backward, and an SGD step, counted by a
//! global allocator that tallies this thread's allocations.

use backprop::prelude::*;

use crate::common::counting::allocations;

network! { struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct Mixed < 6 => gelu 8 => softmax 4 => elu(0.5) 3 > }

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn a_seed_training_step_allocates_nothing() {
    let mut net = Seed::<f32>::init(1);
    let mut ws = net.workspace::<8>();
    let mut grad = Seed::zeros();
    let mut sgd = Sgd::new(0.1);
    let x = SMatrix::<f32, 4, 8>::from_fn(|r, c| (r + c) as f32 * 0.1);
    let y = SMatrix::<f32, 1, 8>::repeat(1.0);
    let count = allocations(|| {
        for _ in 0..10 {
            net.backward(&x, &y, &Mse, &mut ws, &mut grad);
            sgd.step(&mut net, &grad);
        }
        std::hint::black_box(net.forward(&x.column(0).into_owned()));
        std::hint::black_box(net.forward_batch(&x));
    });
    assert_eq!(count, 0, "allocations in 10 steps");
}

#[test]
fn every_activation_and_loss_step_allocates_nothing() {
    let net = Mixed::<f64>::init(2);
    let mut ws = net.workspace::<4>();
    let mut grad = Mixed::zeros();
    let x = SMatrix::<f64, 6, 4>::from_fn(|r, c| (r as f64 - c as f64) * 0.3);
    let y = SMatrix::<f64, 3, 4>::from_fn(|r, _| if r == 0 { 1.0 } else { 0.0 });
    let classes = ClassTargets::<3, 4>::new([0, 1, 2, 1]).unwrap();
    let count = allocations(|| {
        net.backward(&x, &classes, &CrossEntropy, &mut ws, &mut grad);
        net.backward(&x, &y, &CrossEntropy, &mut ws, &mut grad);
        net.backward(&x, &y, &Huber::default(), &mut ws, &mut grad);
        net.backward(&x, &y, &BceWithLogits, &mut ws, &mut grad);
        net.backward(&x, &y, &L1, &mut ws, &mut grad);
        std::hint::black_box(net.loss(&x, &y, &HalfSse));
    });
    assert_eq!(count, 0);
}

network! { struct Mid < 64 => relu 32 => sigmoid 10 > }

/// W2's shape runs its mid-size layers through the vector kernels (`kernels`, chosen at run
/// time): forward, backward, a step, and the gradient handed out in runs, all without the heap.
#[test]
fn a_mid_size_training_step_allocates_nothing() {
    use backprop::Linear;
    let mut net = Mid::<f32>::init(3);
    let mut ws1 = net.workspace::<1>();
    let mut ws3 = net.workspace::<3>();
    let mut grad = Mid::zeros();
    let mut sgd = Sgd::new(0.1);
    let x1 = SMatrix::<f32, 64, 1>::from_fn(|r, _| (r % 9) as f32 * 0.1 - 0.4);
    let y1 = SMatrix::<f32, 10, 1>::from_fn(|r, _| if r == 3 { 1.0 } else { 0.0 });
    let x3 = SMatrix::<f32, 64, 3>::from_fn(|r, c| ((r + c) % 7) as f32 * 0.1 - 0.3);
    let y3 = SMatrix::<f32, 10, 3>::from_fn(|r, c| if r == c { 1.0 } else { 0.0 });
    let count = allocations(|| {
        for _ in 0..3 {
            net.backward(&x1, &y1, &Mse, &mut ws1, &mut grad);
            sgd.step(&mut net, &grad);
            net.backward(&x3, &y3, &Mse, &mut ws3, &mut grad);
            sgd.step(&mut net, &grad);
        }
        std::hint::black_box(net.forward(&x1.column(0).into_owned()));
        std::hint::black_box(net.forward_into(&x1, &mut ws1));
        std::hint::black_box(net.forward_batch(&x3));
        let mut sum = 0.0f32;
        Linear::<f32, 64, 32>::weight_gradient_chunks(&ws3.fc1.delta, &x3, |_, run| {
            sum += run.iter().sum::<f32>()
        });
        std::hint::black_box(Linear::<f32, 64, 32>::bias_gradient(&ws3.fc1.delta));
        std::hint::black_box(sum);
    });
    assert_eq!(count, 0, "allocations in mid-size steps");
}

#[test]
fn jacobians_and_input_derivatives_allocate_nothing() {
    let seed = Seed::<f64>::init(2);
    let mid = Mid::<f32>::init(2);
    let x4 = SMatrix::<f64, 4, 3>::from_fn(|r, c| (r + 2 * c) as f64 * 0.1 - 0.2);
    let y4 = SMatrix::<f64, 1, 3>::repeat(1.0);
    let x64 = SMatrix::<f32, 64, 2>::from_fn(|r, c| ((r * 5 + c) % 7) as f32 * 0.1);
    let count = allocations(|| {
        for k in 0..3 {
            let sample = x4.column(k).into_owned();
            std::hint::black_box(seed.jacobian(&sample));
            std::hint::black_box(seed.jacobian_forward_mode(&sample));
            std::hint::black_box(seed.jacobian_reverse_mode(&sample));
        }
        std::hint::black_box(seed.jvp(&x4, &x4));
        std::hint::black_box(seed.vjp(&x4, &y4));
        std::hint::black_box(seed.input_gradient(&x4, &y4, &Mse));
        let sample = x64.column(0).into_owned();
        std::hint::black_box(mid.jacobian(&sample));
        std::hint::black_box(mid.jacobian_forward_mode(&sample));
        std::hint::black_box(mid.jvp(&x64, &x64));
        std::hint::black_box(mid.vjp(&x64, &SMatrix::<f32, 10, 2>::repeat(0.5)));
    });
    assert_eq!(
        count, 0,
        "allocations in Jacobians, JVPs, VJPs and input gradients"
    );
}

#[test]
fn a_health_check_allocates_nothing_after_setup() {
    use backprop::health::{HealthMonitor, HealthOptions};
    let mut net = Mid::<f32>::init(4);
    let inputs: Vec<SVector<f32, 64>> = (0..16)
        .map(|k| SVector::<f32, 64>::from_fn(|r, _| ((r * 3 + k) % 7) as f32 * 0.1))
        .collect();
    let targets = vec![SVector::<f32, 10>::repeat(0.5); 16];
    let options = HealthOptions::default();
    let mut monitor = HealthMonitor::new(&net);
    let (mut ws, mut grad) = (net.workspace::<1>(), Mid::zeros());
    net.backward(&inputs[0], &targets[0], &Mse, &mut ws, &mut grad);
    let mut sgd = Sgd::new(0.1);
    let count = allocations(|| {
        for _ in 0..2 {
            monitor.before_step(&net);
            sgd.step(&mut net, &grad);
            monitor.after_step(&net);
            let report = monitor
                .observe(&net, &Mse, &inputs, &targets, &options)
                .unwrap();
            std::hint::black_box(report.findings.len());
        }
    });
    assert_eq!(count, 0, "allocations in a health check");
}

/// With the health report on, the training loop allocates only during setup: one epoch and four
/// epochs make the same allocations; with it off, as many as before this option existed (the
/// report's buffers are not made).
#[test]
fn training_with_health_allocates_per_call_not_per_epoch() {
    use backprop::health::HealthOptions;
    use backprop::train::{train_with, Fit, TrainOptions};
    use std::ops::ControlFlow;
    let inputs: Vec<SVector<f32, 4>> = (0..40)
        .map(|k| SVector::<f32, 4>::from_fn(|r, _| ((k + r) % 5) as f32 * 0.2))
        .collect();
    let targets = vec![SVector::<f32, 1>::new(0.5); inputs.len()];
    let run = |epochs: usize, health: bool| {
        let mut net = Seed::<f32>::init(2);
        let mut sgd = Sgd::new(0.05);
        allocations(|| {
            let fit = if health {
                Fit::new().health(HealthOptions::default())
            } else {
                Fit::new()
            };
            train_with(
                &mut net,
                &mut sgd,
                &Mse,
                &inputs,
                &targets,
                TrainOptions::new(epochs, 0).batch::<8>(),
                fit,
                |_| ControlFlow::Continue(()),
            )
            .unwrap();
        })
    };
    assert_eq!(
        run(1, true),
        run(4, true),
        "allocations per epoch with the report on"
    );
    assert_eq!(
        run(1, false),
        run(4, false),
        "allocations per epoch with it off"
    );
    assert!(
        run(1, false) < run(1, true),
        "the report's buffers are made only when asked"
    );
}

/// `classify::accuracy` makes one workspace, however many samples: a layer too wide for local
/// values (5000 units) allocates per call, never per sample.
#[test]
fn accuracy_allocates_per_call_not_per_sample() {
    network! { struct Wide < 2 => relu 5000 => 3 > }
    let net = Wide::<f32>::zeros();
    let one = [[0.5_f32, -1.0]];
    let many = [[0.5_f32, -1.0]; 6];
    let a = allocations(|| {
        std::hint::black_box(backprop::classify::accuracy(&net, &one, &[0]));
    });
    let b = allocations(|| {
        std::hint::black_box(backprop::classify::accuracy(&net, &many, &[0; 6]));
    });
    assert_eq!(a, b);
}
