//! The benchmark workloads allocate nothing after setup: W3 (`784 => relu 128 => sigmoid 10` at
//! batch 32, whose large layer is a `Box` built once at construction) and W1 (the seed network),
//! through forward, loss, backward and an SGD step, counted by a global allocator that tallies this
//! thread's allocations; and Adam's steps, the first included, once `prepare` has made its moments.

use backprop::prelude::*;

use crate::common::counting::allocations;

network! { struct Mnist < 784 => relu 128 => sigmoid 10 > }
network! { struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }

/// Samples per W3 batch.
const B: usize = 32;

#[test]
fn the_counter_sees_allocations_and_the_box() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
    // Building W3 allocates (its large layer), so the counter would see a per-step rebuild.
    assert!(allocations(|| drop(std::hint::black_box(Mnist::<f32>::zeros()))) >= 1);
}

#[test]
fn w3_forward_loss_backward_sgd_and_adam_allocate_nothing() {
    // Setup: the network, its gradient, a batch-32 workspace and the data (may allocate).
    let mut net = Mnist::<f32>::init(3);
    let mut grad = Mnist::zeros();
    let mut ws = Box::new(net.workspace::<B>());
    let x = Box::new(SMatrix::<f32, 784, B>::from_fn(|r, c| {
        ((r * 7 + c * 13) % 17) as f32 / 17.0
    }));
    let y = Box::new(SMatrix::<f32, 10, B>::from_fn(|r, c| {
        if r == c % 10 {
            1.0
        } else {
            0.0
        }
    }));
    let mut sgd = Sgd::new(0.1);

    let forward = allocations(|| {
        std::hint::black_box(net.forward_into(&x, &mut ws));
    });
    assert_eq!(forward, 0, "allocations in forward_into");
    let loss = allocations(|| {
        std::hint::black_box(net.loss(&x, &*y, &Mse));
    });
    assert_eq!(loss, 0, "allocations in loss");
    let mut first = 0.0;
    let backward = allocations(|| {
        first = net.backward(&x, &*y, &Mse, &mut ws, &mut grad);
    });
    assert_eq!(backward, 0, "allocations in backward");
    let step = allocations(|| sgd.step(&mut net, &grad));
    assert_eq!(step, 0, "allocations in an SGD step");

    let mut last = first;
    let steps = allocations(|| {
        for _ in 0..5 {
            last = net.backward(&x, &*y, &Mse, &mut ws, &mut grad);
            sgd.step(&mut net, &grad);
        }
    });
    assert_eq!(steps, 0, "allocations in 5 training steps");
    assert!(last < first, "the steps train: {first} → {last}");

    // `prepare` makes Adam's moments (two networks' worth, the large layer boxed): setup.
    let mut adam = Adam::new(1e-3);
    adam.prepare();
    let adam_steps = allocations(|| {
        for _ in 0..3 {
            net.backward(&x, &*y, &Mse, &mut ws, &mut grad);
            adam.step(&mut net, &grad);
        }
    });
    assert_eq!(adam_steps, 0, "allocations in the first 3 Adam steps");
}

#[test]
fn w1_forward_loss_backward_sgd_and_adam_allocate_nothing() {
    let mut net = Seed::<f32>::init(13);
    let mut grad = Seed::zeros();
    let mut ws = net.workspace::<1>();
    let x = SVector::<f32, 4>::new(0.1, -0.7, 1.0, 0.9);
    let y = SVector::<f32, 1>::new(1.0);
    let mut sgd = Sgd::new(0.1);
    let count = allocations(|| {
        std::hint::black_box(net.forward(&x));
        std::hint::black_box(net.forward_into(&x, &mut ws));
        std::hint::black_box(net.loss(&x, &y, &Mse));
        for _ in 0..10 {
            net.backward(&x, &y, &Mse, &mut ws, &mut grad);
            sgd.step(&mut net, &grad);
        }
    });
    assert_eq!(count, 0, "allocations in W1's forward, loss and 10 steps");

    let mut adam = Adam::new(1e-3);
    adam.prepare();
    let adam_steps = allocations(|| {
        for _ in 0..10 {
            net.backward(&x, &y, &Mse, &mut ws, &mut grad);
            adam.step(&mut net, &grad);
        }
    });
    assert_eq!(adam_steps, 0, "allocations in the first 10 Adam steps");
}
