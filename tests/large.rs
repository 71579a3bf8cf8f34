//! A `784 => relu 128 => sigmoid 10` network (issue 5's W3) with its gradient, optimizer state and
//! a batch-32 workspace fits a default 2 MiB thread in a debug build: its large layer lives on the
//! heap, built there directly.

use backprop::prelude::*;

network! { pub struct Mnist < 784 => relu 128 => sigmoid 10 > }

/// Runs `f` on a thread with the default test stack of 2 MiB.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn the_large_layer_is_boxed_and_the_small_one_inline() {
    let net = Mnist::<f32>::zeros();
    let boxed: Box<backprop::Linear<f32, 784, 128>> = net.fc1.clone();
    assert_eq!(boxed.weight.len(), 784 * 128);
    let _: &backprop::Linear<f32, 128, 10> = &net.fc2;
    // The struct itself holds a pointer and the small layer, not the 400 KB matrix.
    assert!(std::mem::size_of::<Mnist<f32>>() < 8 * 1024);
}

#[test]
fn w3_trains_on_a_2_mib_thread_in_debug() {
    on_small_stack(|| {
        let mut net = Mnist::<f32>::init(0);
        let mut grad = Mnist::zeros();
        let mut ws = net.workspace::<32>();
        let x = SMatrix::<f32, 784, 32>::from_fn(|r, c| ((r * 7 + c * 13) % 17) as f32 / 17.0);
        let y = SMatrix::<f32, 10, 32>::from_fn(|r, c| if r == c % 10 { 1.0 } else { 0.0 });
        let first = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
        // Adam keeps two network-shaped moments, made on its first step, on this thread.
        let mut adam = Adam::new(1e-3);
        let mut last = first;
        for _ in 0..5 {
            adam.step(&mut net, &grad);
            last = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
        }
        assert!(last < first, "the loss falls: {first} → {last}");
        let copy = net.clone();
        assert_eq!(copy.cast::<f64>().cast::<f32>(), copy);
    });
}
