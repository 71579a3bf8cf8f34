//! RMSprop and Adagrad steps (checked and unchecked), schedule steps and gradient clipping
//! allocate nothing once prepared, for the seed network and `784 => relu 128 => sigmoid 10`,
//! counted by a per-thread counting allocator.

use backprop::prelude::*;

use crate::common::counting::allocations;

network! { struct W1 < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct W3 < 784 => relu 128 => sigmoid 10 > }

/// A gradient with every entry `value`.
fn filled<N: Network>(value: f32) -> Box<N> {
    let mut grad = Box::new(N::zeros());
    for param in grad.params_mut() {
        param
            .values
            .fill(backprop::scalar::constant(f64::from(value)));
    }
    grad
}

/// Once prepared, three steps of each kind, clipping and a schedule step between them, allocate
/// nothing.
fn assert_nothing_allocated<N: Network>(net: &mut N) {
    let mut grad = filled::<N>(0.01);
    let mut optimizers: Vec<Box<dyn Optimizer<N>>> = vec![
        Box::new(RmsProp::new(0.01)),
        Box::new(
            RmsProp::new(0.01)
                .momentum(0.9)
                .centered(true)
                .weight_decay(0.1),
        ),
        Box::new(Adagrad::new(0.1).lr_decay(0.01).weight_decay(0.1)),
    ];
    let mut schedules = [
        Schedule::step_lr(2, 0.5),
        Schedule::multi_step_lr(&[1, 2], 0.5),
        Schedule::exponential_lr(0.9),
        Schedule::cosine_annealing_lr(3, 0.0),
        Schedule::linear_lr(0.5, 1.0, 2),
        Schedule::one_cycle_lr(0.1, 100),
        Schedule::sequential(
            vec![
                Schedule::linear_lr(0.5, 1.0, 2),
                Schedule::exponential_lr(0.9),
            ],
            &[2],
        ),
    ];
    for optimizer in optimizers.iter_mut() {
        for schedule in schedules.iter_mut() {
            let mut lr = optimizer.learning_rate();
            schedule.start_rate(&mut lr).unwrap();
            optimizer.set_learning_rate(lr);
            optimizer.prepare();
            let count = allocations(|| {
                for _ in 0..3 {
                    clip_grad_norm(&mut *grad, 1.0, true).unwrap();
                    clip_grad_value(&mut *grad, 0.5).unwrap();
                    optimizer.step(net, &grad);
                    optimizer.try_step(net, &grad).unwrap();
                    let mut lr = optimizer.learning_rate();
                    schedule.step_rate(&mut lr).unwrap();
                    optimizer.set_learning_rate(lr);
                }
            });
            assert_eq!(count, 0, "{}", schedule.name());
        }
    }
}

#[test]
fn new_optimizers_schedules_and_clipping_allocate_nothing_for_w1() {
    assert_nothing_allocated(&mut W1::<f32>::init(0));
}

#[test]
fn new_optimizers_schedules_and_clipping_allocate_nothing_for_w3() {
    assert_nothing_allocated(&mut *Box::new(W3::<f32>::init(0)));
}

/// The allocations of one `train_with` call over `epochs` epochs with every extra, setup included.
fn loop_allocations(epochs: usize) -> usize {
    use backprop::train::{train_with, Every, Fit, TrainOptions};
    let inputs: Vec<SVector<f32, 4>> = (0..21)
        .map(|i| SVector::from_fn(|r, _| ((r + i) % 5) as f32 / 5.0))
        .collect();
    let targets: Vec<SVector<f32, 1>> = (0..21).map(|i| SVector::repeat((i % 2) as f32)).collect();
    let mut net = W1::<f32>::init(1);
    let mut rmsprop = RmsProp::new(1e-3).momentum(0.5);
    let mut schedule = Schedule::sequential(
        vec![
            Schedule::linear_lr(0.5, 1.0, 3),
            Schedule::cosine_annealing_lr(10, 0.0),
        ],
        &[3],
    );
    allocations(|| {
        let fit = Fit::new()
            .schedule(&mut schedule, Every::Batch)
            .clip(Clip::Norm {
                max_norm: 1.0,
                error_if_nonfinite: true,
            })
            .validation(&inputs[..7], &targets[..7])
            .patience(100);
        train_with(
            &mut net,
            &mut rmsprop,
            &Mse,
            &inputs,
            &targets,
            TrainOptions::new(epochs, 0).batch::<4>(),
            fit,
            |_| std::ops::ControlFlow::Continue(()),
        )
        .unwrap();
    })
}

#[test]
fn training_epochs_with_every_extra_allocate_nothing_after_setup() {
    let one = loop_allocations(1);
    assert!(one > 0);
    assert_eq!(loop_allocations(6), one);
}
