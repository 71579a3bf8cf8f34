//! Nothing the library does puts a large network's data on the stack: every operation (building,
//! clone, cast, forward, backward, optimizer steps, training, gradcheck, explanations, save and
//! load) runs for `784 => relu 128 => 10` in `f32` and `f64` at batch 1, 32, 128 and 1024, and for
//! `2048 => relu 1024 => 1`, on a 512 KiB thread in a debug build (where every value a function
//! names takes a stack slot). Large values are the caller's only through `backprop::heap::zeroed`.

use std::ops::ControlFlow;

use backprop::heap::{zeroed, Owned};
use backprop::prelude::*;
use backprop::{explain, gradcheck, io, train};

network! { pub struct Mnist < 784 => relu 128 => 10 > }
network! { pub struct Tall < 2048 => relu 1024 => 1 > }

/// The stack of the threads below: a quarter of a default test thread.
const STACK: usize = 512 << 10;

/// Runs `f` on a thread with a 512 KiB stack; an overflow aborts the test binary.
fn on_512_kib(name: &str, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|_| panic!("{name} panicked"));
}

/// A deterministic input batch of `I × B` values in [0, 1), built on the heap.
fn batch<T: Scalar, const I: usize, const B: usize>() -> Owned<SMatrix<T, I, B>> {
    let mut x = zeroed::<SMatrix<T, I, B>>();
    for (k, v) in x.iter_mut().enumerate() {
        *v = T::from_subset(&(((k * 7) % 17) as f64 / 17.0));
    }
    x
}

/// Runs one operation as its own function, so that the test's frame holds only references.
#[inline(never)]
fn step<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Every operation of the library on one network type, scalar and batch size.
macro_rules! every_operation {
    ($net:ident, $t:ty, $b:literal, $outputs:literal) => {{
        let label = format!("{}<{}> at batch {}", stringify!($net), stringify!($t), $b);
        on_512_kib(&label, move || {
            const IN: usize = $net::<$t>::INPUTS;
            // Building and copying.
            let mut net = step(|| $net::<$t>::init(7));
            step(|| assert_eq!($net::<$t>::zeros().params().count(), 4));
            step(|| assert_eq!(net.clone(), net));
            step(|| assert_eq!(net.cast::<f64>().cast::<$t>(), net));

            // Forward, for one sample and for the batch.
            let x = step(batch::<$t, IN, $b>);
            let mut ws = step(|| net.workspace::<$b>());
            step(|| {
                let one = net.forward(&x.column(0).into_owned());
                let all = net.forward_batch(&x);
                assert_eq!(one, all.column(0).into_owned());
                assert_eq!(net.forward_into(&x, &mut ws), &all);
            });

            // Backward and optimizer steps.
            let y = step(zeroed::<SMatrix<$t, $outputs, $b>>);
            let mut grad = step(|| Box::new($net::<$t>::zeros()));
            step(|| assert!(net.backward(&x, &*y, &Mse, &mut ws, &mut grad).is_finite()));
            step(|| Sgd::new(1e-3).momentum(0.9).step(&mut net, &grad));
            step(|| Adam::new(1e-4).step(&mut net, &grad));
            step(|| AdamW::new(1e-4).step(&mut net, &grad));

            // Training: one full batch and a partial one.
            step(|| {
                let inputs: Vec<SVector<$t, IN>> = (0..$b)
                    .chain(0..1)
                    .map(|k| x.column(k).into_owned())
                    .collect();
                let targets: Vec<SVector<$t, $outputs>> = vec![SVector::zeros(); $b + 1];
                let history = train::train(
                    &mut net,
                    &mut Adam::new(1e-4),
                    &Mse,
                    &inputs,
                    &targets,
                    train::TrainOptions::new(1, 3).batch::<$b>(),
                    |_| ControlFlow::Continue(()),
                )
                .unwrap();
                assert_eq!(history.losses.len(), 1);
            });

            // Gradcheck (a sample of entries, in f64) and an explanation.
            step(|| {
                let net64 = net.cast::<f64>();
                let x64 = batch::<f64, IN, $b>();
                let y64 = zeroed::<SMatrix<f64, $outputs, $b>>();
                let options = gradcheck::Options::central(1e-6).sample(3, 1);
                let report = gradcheck::check(&net64, &x64, &*y64, &Mse, &options).unwrap();
                assert_eq!(report.checked(), 3);
            });
            step(|| {
                let explanation =
                    explain::explain(&net, &x, &*y, &Mse, "fc2.weight", 0, 0).unwrap();
                assert!(explanation.value.is_finite());
            });

            // Save and load.
            step(|| {
                let dir =
                    std::env::temp_dir().join(format!("backprop-stack-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let name = format!("{}-{}-{}.safetensors", stringify!($net), stringify!($t), $b);
                let path = dir.join(name);
                io::save(&net, &path).unwrap();
                let mut loaded = $net::<$t>::zeros();
                io::load(&mut loaded, &path).unwrap();
                assert_eq!(loaded, net);
                std::fs::remove_file(&path).unwrap();
            });
        });
    }};
}

#[test]
fn mnist_f32_every_operation_on_512_kib() {
    every_operation!(Mnist, f32, 1, 10);
    every_operation!(Mnist, f32, 32, 10);
    every_operation!(Mnist, f32, 128, 10);
    every_operation!(Mnist, f32, 1024, 10);
}

#[test]
fn mnist_f64_every_operation_on_512_kib() {
    every_operation!(Mnist, f64, 1, 10);
    every_operation!(Mnist, f64, 32, 10);
    every_operation!(Mnist, f64, 128, 10);
    every_operation!(Mnist, f64, 1024, 10);
}

#[test]
fn tall_every_operation_on_512_kib() {
    every_operation!(Tall, f32, 1, 1);
    every_operation!(Tall, f64, 1, 1);
    every_operation!(Tall, f32, 32, 1);
}
