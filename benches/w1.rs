//! W1, the seed network `4 => relu 5 => relu 2 => sigmoid 1` in f32, one sample: a training step
//! (forward, MSE, backward, SGD with lr 0.1) and the forward pass alone, generated code beside the
//! hand-written nalgebra code a careful person writes for the same math.
//!
//! Two hand-written forms of the step: `baseline`, expressions over static matrices with borrowed
//! operands (temporaries in registers), the faster here; and `baseline_blas`, nalgebra's in-place
//! BLAS-style API into preallocated buffers (`gemv`, `gemv_tr`, `ger`), the faster form for W2.
//!
//! Two fused forms, `baseline_fused` (`ger` with −lr) and `baseline_fused_expr` (expressions),
//! update each layer in place right after propagating through its old weights, with no gradient
//! buffer: issue 20's reference.
//!
//! Adam (`w1_adam`) has its hand-written forms too, torch's arithmetic as the generated code has
//! it: `baseline` (backward, then Adam tensor by tensor) and `baseline_fused` (each layer's
//! gradient made by value and applied right after propagating). `w1_step/baseline_fused_expr_two_networks`
//! is a probe, not a baseline: two independent networks stepped per iteration, which shows how much
//! of one step is waiting on its own chain of dependent arithmetic.
//!
//! Run with `cargo bench --bench w1`; read `w1_step/generated` against `w1_step/baseline` and the
//! fused forms.

// Borrowed operands on purpose (`&self.w * x`): a careful person does not copy a weight matrix
// into a product, even where clippy sees a `Copy` type.
#![allow(clippy::op_ref)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use backprop::optim::OptimizerState;
use backprop::prelude::*;
use criterion::{criterion_group, Criterion};

network! {
    /// The seed network.
    pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 >
}

/// The learning rate of every step.
const LR: f32 = 0.1;

/// The seed network written by hand: static nalgebra matrices, `[out][in]` weights.
#[derive(Clone)]
struct Baseline {
    w1: SMatrix<f32, 5, 4>,
    b1: SVector<f32, 5>,
    w2: SMatrix<f32, 2, 5>,
    b2: SVector<f32, 2>,
    w3: SMatrix<f32, 1, 2>,
    b3: SVector<f32, 1>,
}

/// The hand-written pass's buffers: pre-activations, activations and error terms per layer.
#[derive(Default)]
struct Buffers {
    z1: SVector<f32, 5>,
    a1: SVector<f32, 5>,
    d1: SVector<f32, 5>,
    z2: SVector<f32, 2>,
    a2: SVector<f32, 2>,
    d2: SVector<f32, 2>,
    z3: SVector<f32, 1>,
    a3: SVector<f32, 1>,
    d3: SVector<f32, 1>,
}

/// The logistic function as a careful person writes it.
#[inline]
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl Baseline {
    /// The same weights as a generated network.
    fn from_generated(net: &Seed<f32>) -> Self {
        Baseline {
            w1: net.fc1.weight,
            b1: net.fc1.bias,
            w2: net.fc2.weight,
            b2: net.fc2.bias,
            w3: net.fc3.weight,
            b3: net.fc3.bias,
        }
    }

    /// A zeroed network, used as the gradient.
    fn zeros() -> Self {
        Baseline {
            w1: SMatrix::zeros(),
            b1: SVector::zeros(),
            w2: SMatrix::zeros(),
            b2: SVector::zeros(),
            w3: SMatrix::zeros(),
            b3: SVector::zeros(),
        }
    }

    /// The forward pass into `ws`: `z = W x + b` (bias copied, then `gemv` with β = 1), `a = f(z)`.
    #[inline]
    fn forward(&self, x: &SVector<f32, 4>, ws: &mut Buffers) {
        ws.z1.copy_from(&self.b1);
        ws.z1.gemv(1.0, &self.w1, x, 1.0);
        ws.a1.zip_apply(&ws.z1, |a, z| *a = z.max(0.0));
        ws.z2.copy_from(&self.b2);
        ws.z2.gemv(1.0, &self.w2, &ws.a1, 1.0);
        ws.a2.zip_apply(&ws.z2, |a, z| *a = z.max(0.0));
        ws.z3.copy_from(&self.b3);
        ws.z3.gemv(1.0, &self.w3, &ws.a2, 1.0);
        ws.a3.zip_apply(&ws.z3, |a, z| *a = sigmoid(z));
    }

    /// The forward pass as an expression, returning the output by value (no buffers).
    #[inline]
    fn forward_value(&self, x: &SVector<f32, 4>) -> SVector<f32, 1> {
        let a1 = (self.w1 * x + self.b1).map(|z| z.max(0.0));
        let a2 = (self.w2 * a1 + self.b2).map(|z| z.max(0.0));
        (self.w3 * a2 + self.b3).map(sigmoid)
    }

    /// Forward, MSE (mean over the one output) and backward into `grad`, returning the loss, as
    /// expressions over static matrices with borrowed operands: every temporary lives in
    /// registers or on the stack. The fastest of the hand-written forms tried (see BENCHMARKS.md).
    #[inline]
    fn backward(
        &self,
        x: &SVector<f32, 4>,
        y: &SVector<f32, 1>,
        ws: &mut Buffers,
        grad: &mut Self,
    ) -> f32 {
        ws.z1 = &self.w1 * x + &self.b1;
        ws.a1 = ws.z1.map(|z| z.max(0.0));
        ws.z2 = &self.w2 * &ws.a1 + &self.b2;
        ws.a2 = ws.z2.map(|z| z.max(0.0));
        ws.z3 = &self.w3 * &ws.a2 + &self.b3;
        ws.a3 = ws.z3.map(sigmoid);
        let r = ws.a3 - y;
        let loss = r.norm_squared();
        ws.d3 = (2.0 * r).component_mul(&ws.a3.map(|a| a * (1.0 - a)));
        grad.w3 = &ws.d3 * ws.a2.transpose();
        grad.b3 = ws.d3;
        ws.d2 = self
            .w3
            .tr_mul(&ws.d3)
            .zip_map(&ws.z2, |d, z| if z > 0.0 { d } else { 0.0 });
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

    /// The same pass written against nalgebra's in-place BLAS-style API: `gemv` with the bias
    /// preloaded, `gemv_tr` for δ, `ger` for the weight gradients.
    #[inline]
    fn backward_blas(
        &self,
        x: &SVector<f32, 4>,
        y: &SVector<f32, 1>,
        ws: &mut Buffers,
        grad: &mut Self,
    ) -> f32 {
        self.forward(x, ws);
        let mut loss = 0.0;
        ws.d3.zip_zip_apply(&ws.a3, y, |d, a, t| {
            let r = a - t;
            loss += r * r;
            *d = 2.0 * r * a * (1.0 - a);
        });
        grad.w3.ger(1.0, &ws.d3, &ws.a2, 0.0);
        grad.b3.copy_from(&ws.d3);
        ws.d2.gemv_tr(1.0, &self.w3, &ws.d3, 0.0);
        ws.d2
            .zip_apply(&ws.z2, |d, z| *d = if z > 0.0 { *d } else { 0.0 });
        grad.w2.ger(1.0, &ws.d2, &ws.a1, 0.0);
        grad.b2.copy_from(&ws.d2);
        ws.d1.gemv_tr(1.0, &self.w2, &ws.d2, 0.0);
        ws.d1
            .zip_apply(&ws.z1, |d, z| *d = if z > 0.0 { *d } else { 0.0 });
        grad.w1.ger(1.0, &ws.d1, x, 0.0);
        grad.b1.copy_from(&ws.d1);
        loss
    }

    /// A whole SGD step as a careful person fuses it (issue 20's reference): each layer updated in
    /// place right after propagating through its old weights (`w.ger(−lr, δ, a, 1)`), no
    /// gradient buffer; returns the loss.
    #[inline]
    fn step_fused(&mut self, x: &SVector<f32, 4>, y: &SVector<f32, 1>, ws: &mut Buffers) -> f32 {
        self.forward(x, ws);
        let mut loss = 0.0;
        ws.d3.zip_zip_apply(&ws.a3, y, |d, a, t| {
            let r = a - t;
            loss += r * r;
            *d = 2.0 * r * a * (1.0 - a);
        });
        ws.d2.gemv_tr(1.0, &self.w3, &ws.d3, 0.0);
        self.w3.ger(-LR, &ws.d3, &ws.a2, 1.0);
        self.b3.axpy(-LR, &ws.d3, 1.0);
        ws.d2
            .zip_apply(&ws.z2, |d, z| *d = if z > 0.0 { *d } else { 0.0 });
        ws.d1.gemv_tr(1.0, &self.w2, &ws.d2, 0.0);
        self.w2.ger(-LR, &ws.d2, &ws.a1, 1.0);
        self.b2.axpy(-LR, &ws.d2, 1.0);
        ws.d1
            .zip_apply(&ws.z1, |d, z| *d = if z > 0.0 { *d } else { 0.0 });
        self.w1.ger(-LR, &ws.d1, x, 1.0);
        self.b1.axpy(-LR, &ws.d1, 1.0);
        loss
    }

    /// The fused step as expressions over static matrices (the faster form for W1's unfused
    /// step): `w −= (δ·aᵀ)·lr` right after `δ_prev = wᵀ·δ`.
    #[inline]
    fn step_fused_expr(&mut self, x: &SVector<f32, 4>, y: &SVector<f32, 1>) -> f32 {
        self.step_fused_with(x, y, |_, params, grads| {
            for (p, g) in params.iter_mut().zip(grads) {
                *p -= g * LR;
            }
        })
    }

    /// Forward, loss and backward as expressions, each layer's gradient made by value (in
    /// registers) and handed to `update` with the layer's parameters (their index in
    /// [`Baseline::slices`]'s order) right after propagating through its old weights; returns the
    /// loss.
    #[inline(always)]
    fn step_fused_with(
        &mut self,
        x: &SVector<f32, 4>,
        y: &SVector<f32, 1>,
        mut update: impl FnMut(usize, &mut [f32], &[f32]),
    ) -> f32 {
        let z1 = &self.w1 * x + &self.b1;
        let a1 = z1.map(|z| z.max(0.0));
        let z2 = &self.w2 * &a1 + &self.b2;
        let a2 = z2.map(|z| z.max(0.0));
        let a3 = (&self.w3 * &a2 + &self.b3).map(sigmoid);
        let r = a3 - y;
        let d3 = (2.0 * r).component_mul(&a3.map(|a| a * (1.0 - a)));
        let d2 = self
            .w3
            .tr_mul(&d3)
            .zip_map(&z2, |d, z| if z > 0.0 { d } else { 0.0 });
        update(4, self.w3.as_mut_slice(), (&d3 * a2.transpose()).as_slice());
        update(5, self.b3.as_mut_slice(), d3.as_slice());
        let d1 = self
            .w2
            .tr_mul(&d2)
            .zip_map(&z1, |d, z| if z > 0.0 { d } else { 0.0 });
        update(2, self.w2.as_mut_slice(), (&d2 * a1.transpose()).as_slice());
        update(3, self.b2.as_mut_slice(), d2.as_slice());
        update(0, self.w1.as_mut_slice(), (&d1 * x.transpose()).as_slice());
        update(1, self.b1.as_mut_slice(), d1.as_slice());
        r.norm_squared()
    }

    /// SGD: `p ← p − lr·g` for every parameter.
    #[inline]
    fn sgd(&mut self, grad: &Self, lr: f32) {
        self.w1.zip_apply(&grad.w1, |p, g| *p -= lr * g);
        self.b1.zip_apply(&grad.b1, |p, g| *p -= lr * g);
        self.w2.zip_apply(&grad.w2, |p, g| *p -= lr * g);
        self.b2.zip_apply(&grad.b2, |p, g| *p -= lr * g);
        self.w3.zip_apply(&grad.w3, |p, g| *p -= lr * g);
        self.b3.zip_apply(&grad.b3, |p, g| *p -= lr * g);
    }

    /// Adam's step on every parameter from `grad`, tensor by tensor (torch's single-tensor rule).
    #[inline]
    fn adam(&mut self, grad: &Self, adam: &mut HandAdam) {
        let k = adam.begin();
        let HandAdam { mean, square, .. } = adam;
        let tensors = (self.slices_mut().into_iter().zip(grad.slices()))
            .zip(mean.slices_mut().into_iter().zip(square.slices_mut()));
        for ((params, grads), (means, squares)) in tensors {
            adam_update(&k, params, grads, means, squares);
        }
    }

    /// The fused Adam step as expressions: each layer's gradient made by value (in registers)
    /// right after propagating through its old weights, and applied at once; returns the loss.
    #[inline]
    fn step_fused_adam(
        &mut self,
        x: &SVector<f32, 4>,
        y: &SVector<f32, 1>,
        adam: &mut HandAdam,
    ) -> f32 {
        let k = adam.begin();
        let HandAdam { mean, square, .. } = adam;
        self.step_fused_with(x, y, |tensor, params, grads| {
            let means = mean
                .slices_mut()
                .into_iter()
                .nth(tensor)
                .expect("6 tensors");
            let squares = square
                .slices_mut()
                .into_iter()
                .nth(tensor)
                .expect("6 tensors");
            adam_update(&k, params, grads, means, squares);
        })
    }

    /// Every parameter, column-major, in the generated network's order, writable.
    #[inline]
    fn slices_mut(&mut self) -> [&mut [f32]; 6] {
        [
            self.w1.as_mut_slice(),
            self.b1.as_mut_slice(),
            self.w2.as_mut_slice(),
            self.b2.as_mut_slice(),
            self.w3.as_mut_slice(),
            self.b3.as_mut_slice(),
        ]
    }

    /// Every parameter, column-major, in the generated network's order.
    fn slices(&self) -> [&[f32]; 6] {
        [
            self.w1.as_slice(),
            self.b1.as_slice(),
            self.w2.as_slice(),
            self.b2.as_slice(),
            self.w3.as_slice(),
            self.b3.as_slice(),
        ]
    }
}

/// Adam's learning rate in the benches.
const ADAM_LR: f64 = 1e-3;

/// Adam's state written by hand: the moments in two more copies of the network, and the step.
#[derive(Clone)]
struct HandAdam {
    mean: Baseline,
    square: Baseline,
    steps: u64,
}

/// One Adam step's constants in f32, as torch's single-tensor Adam makes them in f64.
struct HandAdamStep {
    /// `lr / (1 − β1ᵗ)`.
    step_size: f32,
    /// `√(1 − β2ᵗ)`.
    correction2: f32,
    /// The lerp weight `1 − β1`.
    weight: f32,
    /// `β2`.
    beta2: f32,
    /// `1 − β2`.
    rest2: f32,
    /// Added to the denominator.
    eps: f32,
}

impl HandAdam {
    /// Zero moments, no step taken (β = (0.9, 0.999), eps 1e-8).
    fn new() -> Self {
        HandAdam {
            mean: Baseline::zeros(),
            square: Baseline::zeros(),
            steps: 0,
        }
    }

    /// Counts a step and returns its constants (the bias corrections through `powf`, as Python).
    #[inline]
    fn begin(&mut self) -> HandAdamStep {
        self.steps += 1;
        let t = self.steps as f64;
        HandAdamStep {
            step_size: (ADAM_LR / (1.0 - 0.9f64.powf(t))) as f32,
            correction2: (1.0 - 0.999f64.powf(t)).sqrt() as f32,
            weight: (1.0f64 - 0.9) as f32,
            beta2: 0.999,
            rest2: (1.0f64 - 0.999) as f32,
            eps: 1e-8,
        }
    }
}

/// torch's Adam on one tensor: `m.lerp_(g, 1 − β1)`, `v·β2 + (1 − β2)·g·g`, then
/// `p.addcdiv_(m, √v / √(1 − β2ᵗ) + eps, −step_size)`.
#[inline(always)]
fn adam_update(
    k: &HandAdamStep,
    params: &mut [f32],
    grads: &[f32],
    means: &mut [f32],
    squares: &mut [f32],
) {
    for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(means).zip(squares) {
        *m += k.weight * (g - *m);
        *v = *v * k.beta2 + k.rest2 * g * g;
        let denominator = v.sqrt() / k.correction2 + k.eps;
        *p -= k.step_size * *m / denominator;
    }
}

/// Two samples whose targets pull apart, used alternately so the loss never reaches zero (and the
/// gradients never become denormal) however long criterion runs.
fn samples() -> [(SVector<f32, 4>, SVector<f32, 1>); 2] {
    [
        (SVector::from([0.1, -0.7, 1.0, 0.9]), SVector::from([1.0])),
        (SVector::from([0.5, 0.3, -0.2, 0.8]), SVector::from([0.0])),
    ]
}

/// Checks once, outside the timed loops, that both sides compute the same gradients and steps.
fn check_agreement() {
    let mut net = Seed::<f32>::init(13);
    let mut hand = Baseline::from_generated(&net);
    let (mut ws, mut grad) = (net.workspace::<1>(), Seed::zeros());
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
        let out = net.forward(x);
        assert!((out - hand.forward_value(x)).abs().max() <= 1e-6);
        // The fused forms take the same step (the next one, from the weights reached).
        let (mut fused, mut expr) = (
            Baseline::from_generated(&net),
            Baseline::from_generated(&net),
        );
        let fused_loss = fused.step_fused(x, y, &mut buffers);
        let expr_loss = expr.step_fused_expr(x, y);
        let mut unfused = Baseline::from_generated(&net);
        let loss = unfused.backward_blas(x, y, &mut buffers, &mut hand_grad);
        unfused.sgd(&hand_grad, LR);
        assert!((fused_loss - loss).abs() <= 1e-6 && (expr_loss - loss).abs() <= 1e-6);
        for form in [&fused, &expr] {
            for (f, u) in form.slices().iter().zip(unfused.slices()) {
                assert!(
                    f.iter().zip(u).all(|(f, u)| (f - u).abs() <= 1e-6),
                    "fused step"
                );
            }
        }
    }
}

fn step(c: &mut Criterion) {
    common::isa_from_env();
    check_agreement();
    let pairs = samples();
    let mut group = c.benchmark_group("w1_step");

    let mut net = Seed::<f32>::init(13);
    let mut hand = Baseline::from_generated(&net);

    let (mut ws, mut grad) = (net.workspace::<1>(), Seed::zeros());
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
    let mut net = Seed::<f32>::init(13);
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
    let mut net = Seed::<f32>::init(13);
    let mut sgd = Sgd::new(LR.into());
    let mut turn = 0;
    group.bench_function("generated_fused_checked", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            net.try_train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut sgd)
        })
    });

    let (mut buffers, mut hand_grad) = (Buffers::default(), Baseline::zeros());
    let mut turn = 0;
    group.bench_function("baseline", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            let loss = hand.backward(black_box(x), black_box(y), &mut buffers, &mut hand_grad);
            hand.sgd(&hand_grad, LR);
            loss
        })
    });

    let mut hand = Baseline::from_generated(&Seed::<f32>::init(13));
    let (mut buffers, mut hand_grad) = (Buffers::default(), Baseline::zeros());
    let mut turn = 0;
    group.bench_function("baseline_blas", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            let loss = hand.backward_blas(black_box(x), black_box(y), &mut buffers, &mut hand_grad);
            hand.sgd(&hand_grad, LR);
            loss
        })
    });

    let mut hand = Baseline::from_generated(&Seed::<f32>::init(13));
    let mut turn = 0;
    group.bench_function("baseline_fused", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            hand.step_fused(black_box(x), black_box(y), &mut buffers)
        })
    });

    let mut hand = Baseline::from_generated(&Seed::<f32>::init(13));
    let mut turn = 0;
    group.bench_function("baseline_fused_expr", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            hand.step_fused_expr(black_box(x), black_box(y))
        })
    });

    // Not a baseline but a probe of what bounds the step: two independent networks stepped in one
    // iteration (the time is for both). If two take little more than one, one step is not short of
    // execution units but waits on its own chain of dependent arithmetic (forward, `expf`, the
    // division, backward, each layer's update read by the next step's forward), which any code
    // computing these bits runs, in whatever order it schedules the rest.
    let mut first = Baseline::from_generated(&Seed::<f32>::init(13));
    let mut second = Baseline::from_generated(&Seed::<f32>::init(14));
    let mut turn = 0;
    group.bench_function("baseline_fused_expr_two_networks", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            let (u, v) = &pairs[(turn + 1) & 1];
            turn += 1;
            first.step_fused_expr(black_box(x), black_box(y))
                + second.step_fused_expr(black_box(u), black_box(v))
        })
    });
    group.finish();
}

fn forward(c: &mut Criterion) {
    let x = samples()[0].0;
    let net = Seed::<f32>::init(13);
    let hand = Baseline::from_generated(&net);
    let mut group = c.benchmark_group("w1_forward");

    let mut ws = net.workspace::<1>();
    group.bench_function("generated", |b| {
        b.iter(|| net.forward_into(black_box(&x), &mut ws)[0])
    });
    let mut buffers = Buffers::default();
    group.bench_function("baseline", |b| {
        b.iter(|| {
            hand.forward(black_box(&x), &mut buffers);
            buffers.a3[0]
        })
    });
    // The by-value forms: `net.forward(&x)` and an expression returning the output.
    group.bench_function("generated_value", |b| b.iter(|| net.forward(black_box(&x))));
    group.bench_function("baseline_value", |b| {
        b.iter(|| hand.forward_value(black_box(&x)))
    });
    group.finish();
}

/// The parts of a step, timed alone: the backward pass without the update, and the SGD update.
fn parts(c: &mut Criterion) {
    let (x, y) = samples()[0];
    let net = Seed::<f32>::init(13);
    let hand = Baseline::from_generated(&net);
    let mut group = c.benchmark_group("w1_parts");
    group.measurement_time(Duration::from_secs(2));

    let (mut ws, mut grad) = (net.workspace::<1>(), Seed::zeros());
    group.bench_function("backward_generated", |b| {
        b.iter(|| net.backward(black_box(&x), black_box(&y), &Mse, &mut ws, &mut grad))
    });
    let (mut buffers, mut hand_grad) = (Buffers::default(), Baseline::zeros());
    group.bench_function("backward_baseline", |b| {
        b.iter(|| hand.backward(black_box(&x), black_box(&y), &mut buffers, &mut hand_grad))
    });
    group.bench_function("backward_baseline_blas", |b| {
        b.iter(|| hand.backward_blas(black_box(&x), black_box(&y), &mut buffers, &mut hand_grad))
    });

    let mut moving = Seed::<f32>::init(13);
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

/// Adam (lr [`ADAM_LR`]): `backward` then `Adam::step`, against the fused step (the same bits),
/// and the same two written by hand. Each restarts from the same network and zero moments every
/// [`ADAM_RUN`] steps, in place.
fn adam(c: &mut Criterion) {
    check_adam_agreement();
    let pairs = samples();
    let mut group = c.benchmark_group("w1_adam");
    let start = Seed::<f32>::init(13);
    let mut net = start.clone();
    let (mut ws, mut grad) = (net.workspace::<1>(), Seed::zeros());
    let mut adam = Adam::new(ADAM_LR);
    Optimizer::<Seed<f32>>::prepare(&mut adam);
    let mut turn = 0;
    group.bench_function("generated", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            if turn % ADAM_RUN == 0 {
                restart(&mut net, &mut adam, &start);
            }
            let loss = net.backward(black_box(x), black_box(y), &Mse, &mut ws, &mut grad);
            adam.step(&mut net, &grad);
            loss
        })
    });
    let mut net = start.clone();
    let mut adam = Adam::new(ADAM_LR);
    Optimizer::<Seed<f32>>::prepare(&mut adam);
    let mut turn = 0;
    group.bench_function("generated_fused", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            if turn % ADAM_RUN == 0 {
                restart(&mut net, &mut adam, &start);
            }
            net.train_step(black_box(x), black_box(y), &Mse, &mut ws, &mut adam)
        })
    });

    // Written by hand, the same arithmetic: backward then Adam, and the fused Adam step.
    let hand_start = Baseline::from_generated(&start);
    let mut hand = hand_start.clone();
    let mut hand_adam = HandAdam::new();
    let (mut buffers, mut hand_grad) = (Buffers::default(), Baseline::zeros());
    let mut turn = 0;
    group.bench_function("baseline", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            if turn % ADAM_RUN == 0 {
                hand.clone_from(&hand_start);
                hand_adam = HandAdam::new();
            }
            let loss = hand.backward(black_box(x), black_box(y), &mut buffers, &mut hand_grad);
            hand.adam(&hand_grad, &mut hand_adam);
            loss
        })
    });
    let mut hand = hand_start.clone();
    let mut hand_adam = HandAdam::new();
    let mut turn = 0;
    group.bench_function("baseline_fused", |b| {
        b.iter(|| {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            if turn % ADAM_RUN == 0 {
                hand.clone_from(&hand_start);
                hand_adam = HandAdam::new();
            }
            hand.step_fused_adam(black_box(x), black_box(y), &mut hand_adam)
        })
    });
    group.finish();
}

/// The generated side's restart, in place: the starting weights, zero moments, no step taken.
fn restart(net: &mut Seed<f32>, adam: &mut Adam<Seed<f32>>, start: &Seed<f32>) {
    net.clone_from(start);
    adam.set_steps(0);
    for (_, buffer) in OptimizerState::buffers_mut(adam) {
        *buffer = Seed::zeros();
    }
}

/// The bits of every parameter, in the generated network's order.
fn bits_of(slices: &[&[f32]]) -> Vec<u32> {
    slices
        .iter()
        .flat_map(|s| s.iter().map(|v| v.to_bits()))
        .collect()
}

/// The bits of a generated network's parameters.
fn network_bits(net: &Seed<f32>) -> Vec<u32> {
    net.params()
        .flat_map(|p| p.values.iter().map(|v| v.to_bits()))
        .collect()
}

/// Checks once, bit for bit, that the hand-written Adam steps, fused and not, take the generated
/// ones: the losses, the weights and both moments over a run, and the update rule alone on zero
/// weights (where no weight's rounding can absorb a difference in the update).
fn check_adam_agreement() {
    let mut net = Seed::<f32>::init(13);
    let mut adam = Adam::new(ADAM_LR);
    let mut ws = net.workspace::<1>();
    let (mut unfused, mut fused) = (
        Baseline::from_generated(&net),
        Baseline::from_generated(&net),
    );
    let (mut unfused_adam, mut fused_adam) = (HandAdam::new(), HandAdam::new());
    let (mut buffers, mut grad) = (Buffers::default(), Baseline::zeros());
    for (x, y) in samples().iter().cycle().take(2 * ADAM_RUN) {
        let loss = net.train_step(x, y, &Mse, &mut ws, &mut adam);
        let unfused_loss = unfused.backward(x, y, &mut buffers, &mut grad);
        unfused.adam(&grad, &mut unfused_adam);
        let fused_loss = fused.step_fused_adam(x, y, &mut fused_adam);
        assert_eq!(loss.to_bits(), unfused_loss.to_bits(), "loss, unfused");
        assert_eq!(loss.to_bits(), fused_loss.to_bits(), "loss, fused");
        let want = network_bits(&net);
        assert_eq!(want, bits_of(&unfused.slices()), "weights, unfused");
        assert_eq!(want, bits_of(&fused.slices()), "weights, fused");
        let moments = OptimizerState::buffers(&adam);
        for (name, hand) in [
            ("exp_avg", &fused_adam.mean),
            ("exp_avg_sq", &fused_adam.square),
        ] {
            let (_, generated) = moments.iter().find(|(n, _)| *n == name).expect(name);
            assert_eq!(network_bits(generated), bits_of(&hand.slices()), "{name}");
        }
        assert_eq!(
            bits_of(&unfused_adam.mean.slices()),
            bits_of(&fused_adam.mean.slices())
        );
    }
    // The rule alone: one gradient, applied to zero weights by both sides, three steps.
    let (x, y) = samples()[0];
    let (mut ws, mut gradient) = (net.workspace::<1>(), Seed::zeros());
    net.backward(&x, &y, &Mse, &mut ws, &mut gradient);
    let hand_gradient = Baseline::from_generated(&gradient);
    let (mut generated, mut hand) = (Seed::<f32>::zeros(), Baseline::zeros());
    let (mut adam, mut hand_adam) = (Adam::new(ADAM_LR), HandAdam::new());
    for _ in 0..3 {
        adam.step(&mut generated, &gradient);
        hand.adam(&hand_gradient, &mut hand_adam);
        assert_eq!(
            network_bits(&generated),
            bits_of(&hand.slices()),
            "the rule alone"
        );
    }
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

/// One contender of [`paired`]: blocks of steps over the two samples in turn, each handed to
/// `step` (through `black_box`) with whether it starts a new Adam run, every [`ADAM_RUN`]
/// steps as in `w1_adam`.
fn contender<'a>(
    pairs: &'a [(SVector<f32, 4>, SVector<f32, 1>); 2],
    mut step: impl FnMut(&SVector<f32, 4>, &SVector<f32, 1>, bool) + 'a,
) -> impl FnMut(usize) + 'a {
    let mut turn = 0usize;
    move |steps| {
        for _ in 0..steps {
            let (x, y) = &pairs[turn & 1];
            turn += 1;
            step(black_box(x), black_box(y), turn.is_multiple_of(ADAM_RUN));
        }
    }
}

/// The paired comparison (`BACKPROP_BENCH_PAIRED=1 cargo bench --bench w1`): the Adam steps of
/// `w1_adam` (generated and hand-written, unfused and fused) and the fused SGD steps of `w1_step`,
/// in alternating blocks of [`PAIRED_STEPS`] steps for 330 rounds, the first 30 warm-up
/// ([`common::paired`]). Prints the medians and the medians of the per-round ratios.
fn paired() {
    common::isa_from_env();
    check_agreement();
    check_adam_agreement();
    let pairs = samples();
    let start = Seed::<f32>::init(13);
    let hand_start = Baseline::from_generated(&start);
    let new_adam = || {
        let mut adam = Adam::new(ADAM_LR);
        Optimizer::<Seed<f32>>::prepare(&mut adam);
        adam
    };
    let (mut net, mut adam) = (start.clone(), new_adam());
    let (mut ws, mut grad) = (net.workspace::<1>(), Seed::zeros());
    let mut unfused = contender(&pairs, |x, y, fresh| {
        if fresh {
            restart(&mut net, &mut adam, &start);
        }
        black_box(net.backward(x, y, &Mse, &mut ws, &mut grad));
        adam.step(&mut net, &grad);
    });
    let (mut fused_net, mut fused_adam) = (start.clone(), new_adam());
    let mut fused_ws = fused_net.workspace::<1>();
    let mut fused = contender(&pairs, |x, y, fresh| {
        if fresh {
            restart(&mut fused_net, &mut fused_adam, &start);
        }
        black_box(fused_net.train_step(x, y, &Mse, &mut fused_ws, &mut fused_adam));
    });
    let (mut hand, mut hand_adam) = (hand_start.clone(), HandAdam::new());
    let (mut buffers, mut hand_grad) = (Buffers::default(), Baseline::zeros());
    let mut hand_unfused = contender(&pairs, |x, y, fresh| {
        if fresh {
            hand.clone_from(&hand_start);
            hand_adam = HandAdam::new();
        }
        black_box(hand.backward(x, y, &mut buffers, &mut hand_grad));
        hand.adam(&hand_grad, &mut hand_adam);
    });
    let (mut fused_hand, mut fused_hand_adam) = (hand_start.clone(), HandAdam::new());
    let mut hand_fused = contender(&pairs, |x, y, fresh| {
        if fresh {
            fused_hand.clone_from(&hand_start);
            fused_hand_adam = HandAdam::new();
        }
        black_box(fused_hand.step_fused_adam(x, y, &mut fused_hand_adam));
    });
    let (mut sgd_net, mut sgd) = (start.clone(), Sgd::new(LR.into()));
    let mut sgd_ws = sgd_net.workspace::<1>();
    let mut sgd_step = contender(&pairs, |x, y, _| {
        black_box(sgd_net.train_step(x, y, &Mse, &mut sgd_ws, &mut sgd));
    });
    let mut sgd_hand = hand_start.clone();
    let mut sgd_hand_step = contender(&pairs, |x, y, _| {
        black_box(sgd_hand.step_fused_expr(x, y));
    });
    let times = common::paired::paired(
        330,
        30,
        PAIRED_STEPS,
        &mut [
            &mut unfused,
            &mut fused,
            &mut hand_unfused,
            &mut hand_fused,
            &mut sgd_step,
            &mut sgd_hand_step,
        ],
    );
    let (unfused, fused) = (&times[0], &times[1]);
    let (hand_unfused, hand_fused) = (&times[2], &times[3]);
    let (sgd_step, sgd_hand_step) = (&times[4], &times[5]);
    let median = |times: &[f64]| common::paired::median(times);
    println!(
        "paired W1 Adam: generated {:.1} ns, fused {:.1} ns, median ratio {:.3}",
        median(unfused),
        median(fused),
        common::paired::median_ratio(fused, unfused)
    );
    println!(
        "paired W1 Adam by hand: unfused {:.1} ns, fused {:.1} ns, median ratio {:.3}",
        median(hand_unfused),
        median(hand_fused),
        common::paired::median_ratio(hand_fused, hand_unfused)
    );
    println!(
        "paired W1 fused Adam, generated against hand-written: median ratio {:.3}",
        common::paired::median_ratio(fused, hand_fused)
    );
    println!(
        "paired W1 SGD step: generated fused {:.1} ns, hand-written fused (expressions) {:.1} ns, median ratio {:.3}",
        median(sgd_step),
        median(sgd_hand_step),
        common::paired::median_ratio(sgd_step, sgd_hand_step)
    );
}

fn main() {
    common::paired::main(paired, benches);
}
