//! W3, `784 => relu 128 => sigmoid 10` in f32 at batch 32: a training step (forward, MSE, backward,
//! SGD with lr 0.1), generated code beside the best hand-written code found for the same math.
//!
//! Hand-written forms, all on the same statically sized nalgebra storage:
//! - `baseline_nalgebra`: nalgebra's static products (`gemm`, `gemm_tr`, `ger`), which for fixed
//!   sizes are column loops, not a blocked GEMM;
//! - `baseline` (`matrixmultiply::sgemm`): the two large products (`W1·X` and `δ1·Xᵀ`) through
//!   `matrixmultiply`'s packed, blocked kernels (run-time dispatch to AVX2/AVX-512), the small
//!   layer through nalgebra. Its packing cost is counted: `sgemm` allocates and fills its packing
//!   buffers on every call (two calls, so two heap allocations per step), which an allocation-free
//!   library cannot do, so this is a speed reference, not a model for the generated code's memory.
//!
//! Run with `cargo bench --bench w3`; read `w3_step/generated` against `w3_step/baseline`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use backprop::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};

network! {
    /// W3.
    pub struct Mnist < 784 => relu 128 => sigmoid 10 >
}

/// Samples per batch.
const B: usize = 32;
/// The learning rate of every step.
const LR: f32 = 0.1;
/// MSE's mean is over the 10 outputs of the 32 samples.
const COUNT: f32 = (10 * B) as f32;

/// A batch of inputs, one column per sample.
type Inputs = SMatrix<f32, 784, B>;
/// A batch of targets, one column per sample.
type Targets = SMatrix<f32, 10, B>;

/// W3 written by hand: static nalgebra matrices, `[out][in]` weights, the large one on the heap.
#[derive(Clone)]
struct Baseline {
    w1: Box<SMatrix<f32, 128, 784>>,
    b1: SVector<f32, 128>,
    w2: SMatrix<f32, 10, 128>,
    b2: SVector<f32, 10>,
}

/// The hand-written pass's buffers: pre-activations, activations and error terms per layer.
struct Buffers {
    z1: SMatrix<f32, 128, B>,
    a1: SMatrix<f32, 128, B>,
    d1: SMatrix<f32, 128, B>,
    z2: SMatrix<f32, 10, B>,
    a2: SMatrix<f32, 10, B>,
    d2: SMatrix<f32, 10, B>,
}

impl Buffers {
    /// Zeroed buffers.
    fn new() -> Box<Self> {
        Box::new(Buffers {
            z1: SMatrix::zeros(),
            a1: SMatrix::zeros(),
            d1: SMatrix::zeros(),
            z2: SMatrix::zeros(),
            a2: SMatrix::zeros(),
            d2: SMatrix::zeros(),
        })
    }
}

/// The logistic function as a careful person writes it.
#[inline]
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// `c ← a·b + β·c` for column-major slices through `matrixmultiply::sgemm`, where `a` is `m × k`
/// and `b` is `k × n` read with strides (`b_rows`, `b_cols`): a transposed operand is only a swap
/// of strides, never a copy.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    b_rows: isize,
    b_cols: isize,
    beta: f32,
    c: &mut [f32],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the slices hold the `m × k`, `k × n` and `m × n` matrices at the given strides
    // (checked above for the contiguous layouts used here), and `c` does not alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            1,
            m as isize,
            b.as_ptr(),
            b_rows,
            b_cols,
            beta,
            c.as_mut_ptr(),
            1,
            m as isize,
        );
    }
}

impl Baseline {
    /// The same weights as a generated network.
    fn from_generated(net: &Mnist<f32>) -> Self {
        Baseline {
            w1: Box::new(net.fc1.weight),
            b1: net.fc1.bias,
            w2: net.fc2.weight,
            b2: net.fc2.bias,
        }
    }

    /// A zeroed network, used as the gradient.
    fn zeros() -> Self {
        Baseline {
            w1: Box::new(SMatrix::zeros()),
            b1: SVector::zeros(),
            w2: SMatrix::zeros(),
            b2: SVector::zeros(),
        }
    }

    /// MSE and the output layer's δ from `ws.a2`, then the output layer's gradient and δ1,
    /// written with nalgebra (the small layer, shared by both forms); returns the loss.
    #[inline]
    fn output_layer(&self, y: &Targets, ws: &mut Buffers, grad: &mut Self) -> f32 {
        let mut loss = 0.0;
        ws.d2.zip_zip_apply(&ws.a2, y, |d, a, t| {
            let r = a - t;
            loss += r * r;
            *d = (2.0 / COUNT) * r * a * (1.0 - a);
        });
        grad.w2.gemm(1.0, &ws.d2, &ws.a1.transpose(), 0.0);
        grad.b2 = ws.d2.column_sum();
        ws.d1.gemm_tr(1.0, &self.w2, &ws.d2, 0.0);
        ws.d1
            .zip_apply(&ws.z1, |d, z| *d = if z > 0.0 { *d } else { 0.0 });
        loss / COUNT
    }

    /// The hidden layer's activation and the output layer's forward pass, from `ws.z1`.
    #[inline]
    fn after_first_product(&self, ws: &mut Buffers) {
        ws.a1.zip_apply(&ws.z1, |a, z| *a = z.max(0.0));
        for mut column in ws.z2.column_iter_mut() {
            column.copy_from(&self.b2);
        }
        ws.z2.gemm(1.0, &self.w2, &ws.a1, 1.0);
        ws.a2.zip_apply(&ws.z2, |a, z| *a = sigmoid(z));
    }

    /// Forward, MSE and backward with nalgebra's static products only; returns the loss.
    #[inline]
    fn backward_nalgebra(&self, x: &Inputs, y: &Targets, ws: &mut Buffers, grad: &mut Self) -> f32 {
        for mut column in ws.z1.column_iter_mut() {
            column.copy_from(&self.b1);
        }
        ws.z1.gemm(1.0, &*self.w1, x, 1.0);
        self.after_first_product(ws);
        let loss = self.output_layer(y, ws, grad);
        let (first_delta, first_x) = (ws.d1.column(0), x.column(0));
        grad.w1.ger(1.0, &first_delta, &first_x, 0.0);
        for (delta, input) in ws.d1.column_iter().zip(x.column_iter()).skip(1) {
            grad.w1.ger(1.0, &delta, &input, 1.0);
        }
        grad.b1 = ws.d1.column_sum();
        loss
    }

    /// Forward, MSE and backward with the two large products through `matrixmultiply::sgemm`
    /// (two heap allocations per step, for its packing buffers); returns the loss.
    #[inline]
    fn backward_sgemm(&self, x: &Inputs, y: &Targets, ws: &mut Buffers, grad: &mut Self) -> f32 {
        for mut column in ws.z1.column_iter_mut() {
            column.copy_from(&self.b1);
        }
        // z1 ← W1·X + z1 (the bias): 128 × 784 by 784 × 32.
        sgemm(
            128,
            784,
            B,
            self.w1.as_slice(),
            x.as_slice(),
            1,
            784,
            1.0,
            ws.z1.as_mut_slice(),
        );
        self.after_first_product(ws);
        let loss = self.output_layer(y, ws, grad);
        // ∂E/∂W1 ← δ1·Xᵀ: 128 × 32 by 32 × 784, Xᵀ read through swapped strides.
        sgemm(
            128,
            B,
            784,
            ws.d1.as_slice(),
            x.as_slice(),
            784,
            1,
            0.0,
            grad.w1.as_mut_slice(),
        );
        grad.b1 = ws.d1.column_sum();
        loss
    }

    /// SGD: `p ← p − lr·g` for every parameter.
    #[inline]
    fn sgd(&mut self, grad: &Self, lr: f32) {
        self.w1.zip_apply(&*grad.w1, |p, g| *p -= lr * g);
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

/// Two batches with different inputs and classes, used alternately so the loss never reaches
/// zero (and the gradients never become denormal) however long criterion runs.
fn batches() -> Box<[(Inputs, Targets); 2]> {
    let x = |seed: usize| Inputs::from_fn(|r, c| ((r * 7 + c * 13 + seed * 5) % 17) as f32 / 17.0);
    let y = |shift: usize| Targets::from_fn(|r, c| if r == (c + shift) % 10 { 1.0 } else { 0.0 });
    Box::new([(x(0), y(0)), (x(1), y(3))])
}

/// One hand-written form of the step.
type Form = fn(&Baseline, &Inputs, &Targets, &mut Buffers, &mut Baseline) -> f32;

/// The hand-written forms, by bench name.
const FORMS: [(&str, Form); 2] = [
    ("baseline", Baseline::backward_sgemm),
    ("baseline_nalgebra", Baseline::backward_nalgebra),
];

/// Checks once, outside the timed loops, that every form computes the generated gradients and steps.
fn check_agreement(data: &[(Inputs, Targets); 2]) {
    for (name, form) in FORMS {
        let mut net = Mnist::<f32>::init(5);
        let mut hand = Baseline::from_generated(&net);
        let (mut ws, mut grad) = (Box::new(net.workspace::<B>()), Mnist::zeros());
        let (mut buffers, mut hand_grad) = (Buffers::new(), Baseline::zeros());
        for (x, y) in data.iter().cycle().take(4) {
            let loss = net.backward(x, y, &Mse, &mut ws, &mut grad);
            let hand_loss = form(&hand, x, y, &mut buffers, &mut hand_grad);
            assert!(
                (loss - hand_loss).abs() <= 1e-6,
                "{name}: loss {loss} vs {hand_loss}"
            );
            common::assert_agree(name, &grad, &hand_grad.slices());
            Sgd::new(LR.into()).step(&mut net, &grad);
            hand.sgd(&hand_grad, LR);
            common::assert_agree(name, &net, &hand.slices());
        }
    }
}

fn step(c: &mut Criterion) {
    common::isa_from_env();
    let data = batches();
    check_agreement(&data);
    let mut group = c.benchmark_group("w3_step");

    let mut net = Mnist::<f32>::init(5);
    let (mut ws, mut grad) = (Box::new(net.workspace::<B>()), Mnist::zeros());
    let mut sgd = Sgd::new(LR.into());
    let mut turn = 0;
    group.bench_function("generated", |b| {
        b.iter(|| {
            let (x, y) = &data[turn & 1];
            turn += 1;
            let loss = net.backward(black_box(x), black_box(y), &Mse, &mut ws, &mut grad);
            sgd.step(&mut net, &grad);
            loss
        })
    });

    // The fused step: forward, loss and a backward pass that updates each layer as soon as its
    // gradient is known (bit for bit the step above), and the checked form `train` takes.
    let mut net = Mnist::<f32>::init(5);
    let mut ws = Box::new(net.workspace::<B>());
    let mut sgd = Sgd::new(LR.into());
    let mut turn = 0;
    group.bench_function("generated_fused", |b| {
        b.iter(|| {
            let (x, y) = &data[turn & 1];
            turn += 1;
            net.train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut sgd)
        })
    });
    let mut net = Mnist::<f32>::init(5);
    let mut sgd = Sgd::new(LR.into());
    let mut turn = 0;
    group.bench_function("generated_fused_checked", |b| {
        b.iter(|| {
            let (x, y) = &data[turn & 1];
            turn += 1;
            net.try_train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut sgd)
        })
    });

    // The same fused step with the arithmetic pinned (multiply, then add: the same bits on
    // every x86-64): the price of replaying anywhere.
    let mut net = Mnist::<f32>::init(5);
    let mut sgd = Sgd::new(LR.into());
    let mut turn = 0;
    backprop::arithmetic::set(backprop::arithmetic::Arithmetic::Pinned);
    group.bench_function("generated_fused_pinned", |b| {
        b.iter(|| {
            let (x, y) = &data[turn & 1];
            turn += 1;
            net.train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut sgd)
        })
    });
    backprop::arithmetic::set(backprop::arithmetic::Arithmetic::Fastest);

    for (name, form) in FORMS {
        let mut hand = Baseline::from_generated(&Mnist::<f32>::init(5));
        let (mut buffers, mut hand_grad) = (Buffers::new(), Baseline::zeros());
        let mut turn = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let (x, y) = &data[turn & 1];
                turn += 1;
                let loss = form(
                    &hand,
                    black_box(x),
                    black_box(y),
                    &mut buffers,
                    &mut hand_grad,
                );
                hand.sgd(&hand_grad, LR);
                loss
            })
        });
    }
    group.finish();
}

/// The parts of a step, timed alone, to show where the generated step spends its time: the two
/// large products (`w3_parts/forward_product_*`, `w3_parts/gradient_product_*`, where `_baseline`
/// is `matrixmultiply::sgemm`), the backward pass without the update (`backward_*`) and the SGD
/// update alone (`sgd_*`).
fn parts(c: &mut Criterion) {
    let data = batches();
    let (x, y) = &data[0];
    let mut group = c.benchmark_group("w3_parts");
    group.measurement_time(Duration::from_secs(2));

    let net = Mnist::<f32>::init(5);
    let hand = Baseline::from_generated(&net);
    let mut z = Box::new(SMatrix::<f32, 128, B>::zeros());
    let mut weights = Box::new(SMatrix::<f32, 128, 784>::zeros());
    let delta = Box::new(SMatrix::<f32, 128, B>::from_fn(|r, c| {
        ((r + 3 * c) % 7) as f32 - 3.0
    }));

    group.bench_function("forward_product_generated", |b| {
        b.iter(|| {
            backprop::gemm::multiply(
                128,
                B,
                784,
                net.fc1.weight.as_slice(),
                black_box(x).as_slice(),
                z.as_mut_slice(),
            )
        })
    });
    group.bench_function("forward_product_baseline", |b| {
        b.iter(|| {
            sgemm(
                128,
                784,
                B,
                hand.w1.as_slice(),
                black_box(x).as_slice(),
                1,
                784,
                0.0,
                z.as_mut_slice(),
            )
        })
    });
    group.bench_function("forward_product_baseline_nalgebra", |b| {
        b.iter(|| z.gemm(1.0, &*hand.w1, black_box(x), 0.0))
    });
    group.bench_function("gradient_product_generated", |b| {
        b.iter(|| {
            backprop::gemm::multiply_transposed(
                128,
                784,
                B,
                delta.as_slice(),
                black_box(x).as_slice(),
                weights.as_mut_slice(),
            )
        })
    });
    group.bench_function("gradient_product_baseline", |b| {
        b.iter(|| {
            sgemm(
                128,
                B,
                784,
                delta.as_slice(),
                black_box(x).as_slice(),
                784,
                1,
                0.0,
                weights.as_mut_slice(),
            )
        })
    });

    let (mut ws, mut grad) = (Box::new(net.workspace::<B>()), Mnist::zeros());
    group.bench_function("backward_generated", |b| {
        b.iter(|| net.backward(black_box(x), black_box(y), &Mse, &mut ws, &mut grad))
    });
    let (mut buffers, mut hand_grad) = (Buffers::new(), Baseline::zeros());
    group.bench_function("backward_baseline", |b| {
        b.iter(|| hand.backward_sgemm(black_box(x), black_box(y), &mut buffers, &mut hand_grad))
    });

    let mut moving = Mnist::<f32>::init(5);
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
    let data = batches();
    let mut group = c.benchmark_group("w3_adam");
    let start = Mnist::<f32>::init(5);
    let fresh = Adam::new(1e-3);
    let mut net = start.clone();
    let (mut ws, mut grad) = (Box::new(net.workspace::<B>()), Mnist::zeros());
    let mut adam = Adam::new(1e-3);
    Optimizer::<Mnist<f32>>::prepare(&mut adam);
    let mut turn = 0;
    group.bench_function("generated", |b| {
        b.iter(|| {
            let (x, y) = &data[turn & 1];
            turn += 1;
            if turn % ADAM_RUN == 0 {
                (net, adam) = (start.clone(), fresh.clone());
                Optimizer::<Mnist<f32>>::prepare(&mut adam);
            }
            let loss = net.backward(black_box(x), black_box(y), &Mse, &mut ws, &mut grad);
            adam.step(&mut net, &grad);
            loss
        })
    });
    let mut net = start.clone();
    let mut adam = Adam::new(1e-3);
    Optimizer::<Mnist<f32>>::prepare(&mut adam);
    let mut turn = 0;
    group.bench_function("generated_fused", |b| {
        b.iter(|| {
            let (x, y) = &data[turn & 1];
            turn += 1;
            if turn % ADAM_RUN == 0 {
                (net, adam) = (start.clone(), fresh.clone());
                Optimizer::<Mnist<f32>>::prepare(&mut adam);
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
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    targets = step, adam, parts
}
criterion_main!(benches);
