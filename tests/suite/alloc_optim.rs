//! Optimizer steps and training-loop epochs allocate nothing after setup, for the seed network (W1)
//! and `784 => relu 128 => sigmoid 10` (W3), counted by a per-thread counting allocator.

use std::ops::ControlFlow;

use backprop::prelude::*;
use backprop::train::{train, TrainOptions};

use crate::common::counting::allocations;

network! { struct W1 < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct W3 < 784 => relu 128 => sigmoid 10 > }

/// Once `prepare` has made the optimizer's state, no step allocates, the first included.
fn assert_steps_allocate_nothing<N: Network>(
    net: &mut N,
    grad: &N,
    optimizer: &mut dyn Optimizer<N>,
) {
    optimizer.prepare();
    let count = allocations(|| {
        for _ in 0..3 {
            optimizer.step(net, grad);
        }
    });
    assert_eq!(count, 0);
}

/// The allocations of one `train` call on `$net` with Adam over `$epochs` epochs, its setup
/// included.
macro_rules! training_allocations {
    ($net:ty, $batch:literal, $inputs:expr, $targets:expr, $epochs:expr) => {{
        let mut net = <$net>::init(1);
        let mut adam = Adam::new(1e-3);
        allocations(|| {
            train(
                &mut net,
                &mut adam,
                &Mse,
                $inputs,
                $targets,
                TrainOptions::new($epochs, 0).batch::<$batch>(),
                |_| ControlFlow::Continue(()),
            )
            .unwrap();
        })
    }};
}

#[test]
fn optimizer_steps_allocate_nothing_for_w1() {
    let mut net = W1::<f32>::init(0);
    let mut grad = W1::zeros();
    net.backward(
        &SVector::<f32, 4>::repeat(0.5),
        &SVector::<f32, 1>::new(1.0),
        &Mse,
        &mut net.workspace(),
        &mut grad,
    );
    assert_steps_allocate_nothing(
        &mut net,
        &grad,
        &mut Sgd::new(0.1).momentum(0.9).nesterov(true),
    );
    assert_steps_allocate_nothing(&mut net, &grad, &mut Adam::new(1e-3).amsgrad(true));
    assert_steps_allocate_nothing(&mut net, &grad, &mut AdamW::new(1e-3));

    // The loop's buffers are made once per call: more epochs, no more allocations.
    let inputs: Vec<SVector<f32, 4>> = (0..10)
        .map(|i| SVector::from_fn(|r, _| ((r + i) % 5) as f32 / 5.0))
        .collect();
    let targets: Vec<SVector<f32, 1>> = (0..10).map(|i| SVector::repeat((i % 2) as f32)).collect();
    assert_eq!(
        training_allocations!(W1<f32>, 4, &inputs, &targets, 1),
        training_allocations!(W1<f32>, 4, &inputs, &targets, 5),
        "allocations per call do not grow with the epochs (10 samples: a partial batch)"
    );
}

#[test]
fn optimizer_steps_and_epochs_allocate_nothing_for_w3() {
    // On a 2 MiB thread, as a default test thread, in whatever profile the tests run.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut net = W3::<f32>::init(0);
            let mut grad = W3::zeros();
            let mut ws = net.workspace::<32>();
            let x = SMatrix::<f32, 784, 32>::from_fn(|r, c| ((r + c) % 7) as f32 / 7.0);
            let y = SMatrix::<f32, 10, 32>::from_fn(|r, c| f32::from(r == c % 10));
            let steps = allocations(|| {
                net.backward(&x, &y, &Mse, &mut ws, &mut grad);
            });
            assert_eq!(steps, 0, "forward, loss and backward");
            assert_steps_allocate_nothing(&mut net, &grad, &mut Sgd::new(0.01));
            assert_steps_allocate_nothing(&mut net, &grad, &mut Adam::new(1e-3));

            // The loop's buffers are made once per call: more epochs, no more allocations.
            let inputs: Vec<SVector<f32, 784>> = (0..70)
                .map(|i| SVector::from_fn(|r, _| ((r * i) % 11) as f32 / 11.0))
                .collect();
            let targets: Vec<SVector<f32, 10>> = (0..70)
                .map(|i| SVector::from_fn(|r, _| f32::from(r == i % 10)))
                .collect();
            assert_eq!(
                training_allocations!(W3<f32>, 32, &inputs, &targets, 1),
                training_allocations!(W3<f32>, 32, &inputs, &targets, 3),
                "allocations per call do not grow with the epochs (70 samples: a partial batch)"
            );
        })
        .unwrap()
        .join()
        .unwrap();
}
