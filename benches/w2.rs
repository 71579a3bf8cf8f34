//! W2, `64 => relu 32 => sigmoid 10` in f32, one sample: a training step (forward, MSE, backward,
//! SGD with lr 0.1) and the forward pass alone, generated code beside the hand-written nalgebra code
//! a careful person writes for the same math.
//!
//! Two hand-written forms: `baseline`, nalgebra's in-place BLAS-style API into preallocated
//! buffers (`gemv`, `gemv_tr`, `ger`), the faster here; and `baseline_expr`, expressions over
//! static matrices with borrowed operands (the faster form for W1).
//!
//! A third, `baseline_fused`, is a whole SGD step as a careful person fuses it: each layer updated
//! in place (`ger` with −lr) right after propagating through its old weights, no gradient buffer
//! (issue 20's reference).
//!
//! Run with `cargo bench --bench w2`; read `w2_step/generated` against `w2_step/baseline` and
//! `w2_step/baseline_fused`. `BACKPROP_BENCH_PAIRED=1 cargo bench --bench w2` runs the paired
//! comparison of the fused steps instead (see `paired`).

// Borrowed operands on purpose (`&self.w * x`): a careful person does not copy a weight matrix
// into a product, even where clippy sees a `Copy` type.
#![allow(clippy::op_ref)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use backprop::prelude::*;
use criterion::{criterion_group, Criterion};

network! {
    /// W2.
    pub struct Small < 64 => relu 32 => sigmoid 10 >
}

/// The learning rate of every step.
const LR: f32 = 0.1;
/// MSE's mean is over the 10 outputs of the one sample.
const COUNT: f32 = 10.0;

/// W2 written by hand: static nalgebra matrices, `[out][in]` weights.
#[derive(Clone)]
struct Baseline {
    w1: SMatrix<f32, 32, 64>,
    b1: SVector<f32, 32>,
    w2: SMatrix<f32, 10, 32>,
    b2: SVector<f32, 10>,
}

/// The hand-written pass's buffers: pre-activations, activations and error terms per layer.
#[derive(Default)]
struct Buffers {
    z1: SVector<f32, 32>,
    a1: SVector<f32, 32>,
    d1: SVector<f32, 32>,
    z2: SVector<f32, 10>,
    a2: SVector<f32, 10>,
    d2: SVector<f32, 10>,
}

/// The logistic function as a careful person writes it.
#[inline]
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl Baseline {
    /// The same weights as a generated network.
    fn from_generated(net: &Small<f32>) -> Self {
        Baseline {
            w1: net.fc1.weight,
            b1: net.fc1.bias,
            w2: net.fc2.weight,
            b2: net.fc2.bias,
        }
    }

    /// A zeroed network, used as the gradient.
    fn zeros() -> Self {
        Baseline {
            w1: SMatrix::zeros(),
            b1: SVector::zeros(),
            w2: SMatrix::zeros(),
            b2: SVector::zeros(),
        }
    }

    /// The forward pass into `ws`: bias copied, then `gemv` with β = 1, then `a = f(z)`.
    #[inline]
    fn forward(&self, x: &SVector<f32, 64>, ws: &mut Buffers) {
        ws.z1.copy_from(&self.b1);
        ws.z1.gemv(1.0, &self.w1, x, 1.0);
        ws.a1.zip_apply(&ws.z1, |a, z| *a = z.max(0.0));
        ws.z2.copy_from(&self.b2);
        ws.z2.gemv(1.0, &self.w2, &ws.a1, 1.0);
        ws.a2.zip_apply(&ws.z2, |a, z| *a = sigmoid(z));
    }

    /// The forward pass as an expression, returning the output by value.
    #[inline]
    fn forward_value(&self, x: &SVector<f32, 64>) -> SVector<f32, 10> {
        let a1 = (&self.w1 * x + &self.b1).map(|z| z.max(0.0));
        (&self.w2 * a1 + &self.b2).map(sigmoid)
    }

    /// Forward, MSE and backward into `grad` as expressions over static matrices with borrowed
    /// operands; returns the loss.
    #[inline]
    fn backward(
        &self,
        x: &SVector<f32, 64>,
        y: &SVector<f32, 10>,
        ws: &mut Buffers,
        grad: &mut Self,
    ) -> f32 {
        ws.z1 = &self.w1 * x + &self.b1;
        ws.a1 = ws.z1.map(|z| z.max(0.0));
        ws.z2 = &self.w2 * &ws.a1 + &self.b2;
        ws.a2 = ws.z2.map(sigmoid);
        let r = ws.a2 - y;
        let loss = r.norm_squared() / COUNT;
        ws.d2 = (r * (2.0 / COUNT)).component_mul(&ws.a2.map(|a| a * (1.0 - a)));
        grad.w2 = &ws.d2 * ws.a1.transpose();
        grad.b2 = ws.d2;
        ws.d1 = self
            .w2
            .tr_mul(&ws.d2)
            .zip_map(&ws.z1, |d, z| if z > 0.0 { d } else { 0.0 });
        grad.w1 = &ws.d1 * x.transpose();
        grad.b1 = ws.d1;
        loss
    }

    /// The same pass against nalgebra's in-place BLAS-style API: `gemv`, `gemv_tr`, `ger`.
    #[inline]
    fn backward_blas(
        &self,
        x: &SVector<f32, 64>,
        y: &SVector<f32, 10>,
        ws: &mut Buffers,
        grad: &mut Self,
    ) -> f32 {
        self.forward(x, ws);
        let mut loss = 0.0;
        ws.d2.zip_zip_apply(&ws.a2, y, |d, a, t| {
            let r = a - t;
            loss += r * r;
            *d = (2.0 / COUNT) * r * a * (1.0 - a);
        });
        grad.w2.ger(1.0, &ws.d2, &ws.a1, 0.0);
        grad.b2.copy_from(&ws.d2);
        ws.d1.gemv_tr(1.0, &self.w2, &ws.d2, 0.0);
        ws.d1
            .zip_apply(&ws.z1, |d, z| *d = if z > 0.0 { *d } else { 0.0 });
        grad.w1.ger(1.0, &ws.d1, x, 0.0);
        grad.b1.copy_from(&ws.d1);
        loss / COUNT
    }

    /// A whole SGD step as a careful person fuses it (issue 20's reference): forward, MSE, and a
    /// backward pass that updates each layer in place right after propagating through its old
    /// weights (`w.ger(−lr, δ, a, 1)`), with no gradient buffer; returns the loss.
    #[inline]
    fn step_fused(&mut self, x: &SVector<f32, 64>, y: &SVector<f32, 10>, ws: &mut Buffers) -> f32 {
        self.forward(x, ws);
        let mut loss = 0.0;
        ws.d2.zip_zip_apply(&ws.a2, y, |d, a, t| {
            let r = a - t;
            loss += r * r;
            *d = (2.0 / COUNT) * r * a * (1.0 - a);
        });
        ws.d1.gemv_tr(1.0, &self.w2, &ws.d2, 0.0);
        self.w2.ger(-LR, &ws.d2, &ws.a1, 1.0);
        self.b2.axpy(-LR, &ws.d2, 1.0);
        ws.d1
            .zip_apply(&ws.z1, |d, z| *d = if z > 0.0 { *d } else { 0.0 });
        self.w1.ger(-LR, &ws.d1, x, 1.0);
        self.b1.axpy(-LR, &ws.d1, 1.0);
        loss / COUNT
    }

    /// SGD: `p ← p − lr·g` for every parameter.
    #[inline]
    fn sgd(&mut self, grad: &Self, lr: f32) {
        self.w1.zip_apply(&grad.w1, |p, g| *p -= lr * g);
        self.b1.zip_apply(&grad.b1, |p, g| *p -= lr * g);
        self.w2.zip_apply(&grad.w2, |p, g| *p -= lr * g);
        self.b2.zip_apply(&grad.b2, |p, g| *p -= lr * g);
    }

    /// Every parameter, column-major, in the generated network's order.
    fn slices(&self) -> [&[f32]; 4] {
        [
            self.w1.as_slice(),
            self.b1.as_slice(),
            self.w2.as_slice(),
            self.b2.as_slice(),
        ]
    }
}

/// Two samples with different classes, used alternately so the loss never reaches zero (and the
/// gradients never become denormal) however long criterion runs.
fn samples() -> [(SVector<f32, 64>, SVector<f32, 10>); 2] {
    let x = |seed: usize| SVector::from_fn(|i, _| ((i * 37 + seed * 11) % 23) as f32 / 11.0 - 1.0);
    let y = |class: usize| SVector::from_fn(|i, _| if i == class { 1.0 } else { 0.0 });
    [(x(1), y(3)), (x(2), y(7))]
}

/// Checks once, outside the timed loops, that both sides compute the same gradients and steps.
fn check_agreement() {
    let mut net = Small::<f32>::init(7);
    let mut hand = Baseline::from_generated(&net);
    let (mut ws, mut grad) = (net.workspace::<1>(), Small::zeros());
    let (mut buffers, mut hand_grad) = (Buffers::default(), Baseline::zeros());
    for (x, y) in samples().iter().cycle().take(6) {
        let loss = net.backward(x, y, &Mse, &mut ws, &mut grad);
        let hand_loss = hand.backward_blas(x, y, &mut buffers, &mut hand_grad);
        assert!(
            (loss - hand_loss).abs() <= 1e-6,
            "loss {loss} vs {hand_loss}"
        );
        common::assert_agree("gradient (blas form)", &grad, &hand_grad.slices());
        let hand_loss = hand.backward(x, y, &mut buffers, &mut hand_grad);
        assert!(
            (loss - hand_loss).abs() <= 1e-6,
            "loss {loss} vs {hand_loss}"
        );
        common::assert_agree("gradient", &grad, &hand_grad.slices());
        Sgd::new(LR.into()).step(&mut net, &grad);
        hand.sgd(&hand_grad, LR);
        common::assert_agree("after a step", &net, &hand.slices());
        let mut fused = Baseline::from_generated(&net);
        let mut unfused = Baseline::from_generated(&net);
        let fused_loss = fused.step_fused(x, y, &mut buffers);
        let loss = unfused.backward_blas(x, y, &mut buffers, &mut hand_grad);
        unfused.sgd(&hand_grad, LR);
        assert!(
            (fused_loss - loss).abs() <= 1e-6,
            "fused loss {fused_loss} vs {loss}"
        );
        for (f, u) in fused.slices().iter().zip(unfused.slices()) {
            assert!(
                f.iter().zip(u).all(|(f, u)| (f - u).abs() <= 1e-6),
                "fused step"
            );
        }
        assert!((net.forward(x) - hand.forward_value(x)).abs().max() <= 1e-6);
    }
}

fn step(c: &mut Criterion) {
    common::isa_from_env();
    check_agreement();
    let pairs = samples();
    let mut group = c.benchmark_group("w2_step");

    let mut net = Small::<f32>::init(7);
    let (mut ws, mut grad) = (net.workspace::<1>(), Small::zeros());
    let mut sgd = Sgd::new(LR.into());
    let mut turn = 0;
    group.bench_function("generated", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            let loss = net.backward(black_box(x), black_box(y), &Mse, &mut ws, &mut grad);
            sgd.step(&mut net, &grad);
            loss
        })
    });

    // The fused step: forward, loss and a backward pass that updates each layer as soon as its
    // gradient is known (bit for bit the step above), and the checked form `train` takes.
    let mut net = Small::<f32>::init(7);
    let mut ws = net.workspace::<1>();
    let mut sgd = Sgd::new(LR.into());
    let mut turn = 0;
    group.bench_function("generated_fused", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            net.train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut sgd)
        })
    });
    let mut net = Small::<f32>::init(7);
    let mut sgd = Sgd::new(LR.into());
    let mut turn = 0;
    group.bench_function("generated_fused_checked", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            net.try_train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut sgd)
        })
    });

    let mut hand = Baseline::from_generated(&Small::<f32>::init(7));
    let (mut buffers, mut hand_grad) = (Buffers::default(), Baseline::zeros());
    let mut turn = 0;
    group.bench_function("baseline_expr", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            let loss = hand.backward(black_box(x), black_box(y), &mut buffers, &mut hand_grad);
            hand.sgd(&hand_grad, LR);
            loss
        })
    });

    let mut hand = Baseline::from_generated(&Small::<f32>::init(7));
    let mut turn = 0;
    group.bench_function("baseline", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            let loss = hand.backward_blas(black_box(x), black_box(y), &mut buffers, &mut hand_grad);
            hand.sgd(&hand_grad, LR);
            loss
        })
    });

    let mut hand = Baseline::from_generated(&Small::<f32>::init(7));
    let mut turn = 0;
    group.bench_function("baseline_fused", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            hand.step_fused(black_box(x), black_box(y), &mut buffers)
        })
    });
    group.finish();
}

fn forward(c: &mut Criterion) {
    let x = samples()[0].0;
    let net = Small::<f32>::init(7);
    let hand = Baseline::from_generated(&net);
    let mut group = c.benchmark_group("w2_forward");

    let mut ws = net.workspace::<1>();
    group.bench_function("generated", |b| {
        b.iter(|| net.forward_into(black_box(&x), &mut ws)[0])
    });
    let mut buffers = Buffers::default();
    group.bench_function("baseline", |b| {
        b.iter(|| {
            hand.forward(black_box(&x), &mut buffers);
            buffers.a2[0]
        })
    });
    group.bench_function("generated_value", |b| b.iter(|| net.forward(black_box(&x))));
    group.bench_function("baseline_value", |b| {
        b.iter(|| hand.forward_value(black_box(&x)))
    });
    group.finish();
}

/// The parts of a step, timed alone: the backward pass without the update, and the SGD update.
fn parts(c: &mut Criterion) {
    let (x, y) = samples()[0];
    let net = Small::<f32>::init(7);
    let hand = Baseline::from_generated(&net);
    let mut group = c.benchmark_group("w2_parts");
    group.measurement_time(Duration::from_secs(2));

    let (mut ws, mut grad) = (net.workspace::<1>(), Small::zeros());
    group.bench_function("backward_generated", |b| {
        b.iter(|| net.backward(black_box(&x), black_box(&y), &Mse, &mut ws, &mut grad))
    });
    let (mut buffers, mut hand_grad) = (Buffers::default(), Baseline::zeros());
    group.bench_function("backward_baseline_expr", |b| {
        b.iter(|| hand.backward(black_box(&x), black_box(&y), &mut buffers, &mut hand_grad))
    });
    group.bench_function("backward_baseline", |b| {
        b.iter(|| hand.backward_blas(black_box(&x), black_box(&y), &mut buffers, &mut hand_grad))
    });

    let mut moving = Small::<f32>::init(7);
    let mut sgd = Sgd::new(1e-9);
    group.bench_function("sgd_generated", |b| {
        b.iter(|| sgd.step(&mut moving, black_box(&grad)))
    });
    let mut moving = Baseline::from_generated(&net);
    group.bench_function("sgd_baseline", |b| {
        b.iter(|| moving.sgd(black_box(&hand_grad), 1e-9))
    });
    group.finish();
}

/// Steps of one Adam run in the benches: past a few hundred steps the moments of dead units'
/// weights (whose gradient is exactly 0) decay into subnormal floats, which x86 processors compute
/// some 100 times slower (W2's step measured 50 µs), whichever way the step is taken.
const ADAM_RUN: usize = 100;

/// Adam (lr 1e-3): `backward` then `Adam::step`, against the fused step (the same bits). Both
/// restart from the same network and a fresh state every [`ADAM_RUN`] steps.
fn adam(c: &mut Criterion) {
    let pairs = samples();
    let mut group = c.benchmark_group("w2_adam");
    let start = Small::<f32>::init(7);
    let fresh = Adam::new(1e-3);
    let mut net = start.clone();
    let (mut ws, mut grad) = (net.workspace::<1>(), Small::zeros());
    let mut adam = Adam::new(1e-3);
    Optimizer::<Small<f32>>::prepare(&mut adam);
    let mut turn = 0;
    group.bench_function("generated", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            if turn % ADAM_RUN == 0 {
                (net, adam) = (start.clone(), fresh.clone());
                Optimizer::<Small<f32>>::prepare(&mut adam);
            }
            let loss = net.backward(black_box(x), black_box(y), &Mse, &mut ws, &mut grad);
            adam.step(&mut net, &grad);
            loss
        })
    });
    let mut net = start.clone();
    let mut adam = Adam::new(1e-3);
    Optimizer::<Small<f32>>::prepare(&mut adam);
    let mut turn = 0;
    group.bench_function("generated_fused", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            if turn % ADAM_RUN == 0 {
                (net, adam) = (start.clone(), fresh.clone());
                Optimizer::<Small<f32>>::prepare(&mut adam);
            }
            net.train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut adam)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(60);
    targets = step, adam, forward, parts
}

/// Steps per timed block of the paired comparison.
const PAIRED_STEPS: usize = 2000;

/// The paired comparison (`BACKPROP_BENCH_PAIRED=1 cargo bench --bench w2`): blocks of
/// [`PAIRED_STEPS`] generated fused steps and as many hand-written fused steps, alternated for
/// 330 rounds; the first 30 are warm-up ([`common::paired`]). Prints the medians and the median
/// of the per-round ratios.
fn paired() {
    common::isa_from_env();
    check_agreement();
    let pairs = samples();
    let mut net = Small::<f32>::init(7);
    let mut ws = net.workspace::<1>();
    let mut sgd = Sgd::new(LR.into());
    let mut hand = Baseline::from_generated(&Small::<f32>::init(7));
    let mut buffers = Buffers::default();
    let mut turn = 0usize;
    let mut generated = |steps: usize| {
        for _ in 0..steps {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            black_box(net.train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut sgd));
        }
    };
    let mut hand_turn = 0usize;
    let mut written = |steps: usize| {
        for _ in 0..steps {
            let (x, y) = &pairs[hand_turn & 1];
            hand_turn += 1;
            black_box(hand.step_fused(black_box(x), black_box(y), &mut buffers));
        }
    };
    let times = common::paired::paired(330, 30, PAIRED_STEPS, &mut [&mut generated, &mut written]);
    println!(
        "paired W2 step: generated fused {:.1} ns, hand-written fused {:.1} ns, median ratio {:.3}",
        common::paired::median(&times[0]),
        common::paired::median(&times[1]),
        common::paired::median_ratio(&times[0], &times[1])
    );
}

fn main() {
    common::paired::main(paired, benches);
}
