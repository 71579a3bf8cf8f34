//! The training loop with the health report off and on: one epoch of `64 => relu 32 => sigmoid
//! 10` over 512 samples in batches of 32 with SGD, f32. Off must cost what the loop cost before
//! the option existed (nothing is made, one `Option` test per batch); on adds one health pass over
//! the data set per epoch.
//!
//! Run with `cargo bench --bench train`.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use backprop::health::HealthOptions;
use backprop::prelude::*;
use backprop::train::{train, train_with, Fit, TrainOptions};
use criterion::{criterion_group, criterion_main, Criterion};

network! { pub struct Mid < 64 => relu 32 => sigmoid 10 > }

/// 512 samples with one-hot targets.
fn data() -> (Vec<SVector<f32, 64>>, Vec<SVector<f32, 10>>) {
    let inputs: Vec<SVector<f32, 64>> = (0..512)
        .map(|k| SVector::<f32, 64>::from_fn(|r, _| ((k * 7 + r * 3) % 17) as f32 / 17.0))
        .collect();
    let targets = (0..512)
        .map(|k| SVector::<f32, 10>::from_fn(|r, _| if r == k % 10 { 1.0 } else { 0.0 }))
        .collect();
    (inputs, targets)
}

fn epoch(c: &mut Criterion) {
    let (inputs, targets) = data();
    let mut group = c.benchmark_group("train_epoch");
    let mut net = Mid::<f32>::init(1);
    group.bench_function("train", |b| {
        b.iter(|| {
            train(
                &mut net,
                &mut Sgd::new(1e-3),
                &Mse,
                black_box(&inputs),
                &targets,
                TrainOptions::new(1, 0).batch::<32>(),
                |_| ControlFlow::Continue(()),
            )
            .unwrap()
        })
    });
    group.bench_function("health_off", |b| {
        b.iter(|| {
            train_with(
                &mut net,
                &mut Sgd::new(1e-3),
                &Mse,
                black_box(&inputs),
                &targets,
                TrainOptions::new(1, 0).batch::<32>(),
                Fit::new(),
                |_| ControlFlow::Continue(()),
            )
            .unwrap()
        })
    });
    group.bench_function("health_on", |b| {
        b.iter(|| {
            train_with(
                &mut net,
                &mut Sgd::new(1e-3),
                &Mse,
                black_box(&inputs),
                &targets,
                TrainOptions::new(1, 0).batch::<32>(),
                Fit::new().health(HealthOptions::default()),
                |epoch| {
                    black_box(epoch.health.map(|h| h.findings.len()));
                    ControlFlow::Continue(())
                },
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    targets = epoch
}
criterion_main!(benches);
