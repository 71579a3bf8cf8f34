//! The fused training step (`Model::train_step`, `try_train_step`) against `backward` followed
//! by the optimizer's `step` (`try_step`): the same bits, for every optimizer configuration of
//! the optimizer fixtures (`tests/suite/optim.rs`, `tests/suite/training_optim.rs`), on networks
//! whose layers take every kernel (tiny, mid-size, tiled, on the heap, a chain), in f32 and f64,
//! at batches of 1 and 3. A refused step changes nothing and is refused as the unfused one is.
//! Neither allocates once the optimizer's state is made.

use backprop::optim::{FusedStep, NonFiniteUpdate, OptimizerState};
use backprop::prelude::*;
use backprop::scalar::{constant, to_f64};
use backprop::step::StepError;

use crate::common::counting::allocations;

network! { struct Tiny < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct Mid < 64 => relu 32 => sigmoid 10 > }
network! { struct Odd < 33 => relu 9 => 3 > }
network! { struct Tiled < 80 => tanh 64 => 3 > }
network! { struct OnHeap < 200 => gelu 100 => leaky_relu(0.1) 2 > }
network! {
    struct Chain {
        encoder: < 6 => tanh 20 => relu 16 >,
        decoder: < 16 => silu 24 => 3 >,
    }
}

/// Every parameter's bits, in `state_dict` order.
fn bits<N: Network>(net: &N) -> Vec<u64> {
    net.params()
        .flat_map(|p| p.values.iter().map(|v| to_f64(*v).to_bits()))
        .collect()
}

/// A deterministic batch in (−1, 1), different for each `step`.
fn batch<T: Scalar, const R: usize, const B: usize>(step: u64, salt: u64) -> SMatrix<T, R, B> {
    let mut state = step.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    SMatrix::from_fn(|_, _| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        constant(((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0)
    })
}

/// Five steps fused and unfused (and five checked steps of each) from `start` with `optimizer`;
/// `between` changes the optimizers between steps as a schedule would. Every step's loss and
/// every parameter's bits must agree.
fn agree<N, P, const I: usize, const O: usize, const B: usize>(
    name: &str,
    start: &N,
    optimizer: P,
    between: fn(&mut P, usize),
) where
    N: Model<I, O> + Clone,
    P: FusedStep<N> + Clone + PartialEq + core::fmt::Debug,
{
    let (mut fused, mut unfused) = (start.clone(), start.clone());
    let (mut checked, mut checked_unfused) = (start.clone(), start.clone());
    let mut optimizers = [
        optimizer.clone(),
        optimizer.clone(),
        optimizer.clone(),
        optimizer,
    ];
    let mut ws = start.workspace::<B>();
    let mut grad = N::zeros();
    for step in 0..5 {
        for optimizer in optimizers.iter_mut() {
            between(optimizer, step);
        }
        let x = batch::<N::Scalar, I, B>(step as u64, 1);
        let y = batch::<N::Scalar, O, B>(step as u64, 2);
        let [a, b, c, d] = &mut optimizers;
        let loss = fused.train_step(&x, &y, &Mse, &mut ws, a);
        let expected = unfused.backward(&x, &y, &Mse, &mut ws, &mut grad);
        b.step(&mut unfused, &grad);
        assert_eq!(
            to_f64(loss).to_bits(),
            to_f64(expected).to_bits(),
            "{name} step {step}: loss"
        );
        assert!(
            bits(&fused) == bits(&unfused),
            "{name} step {step}: fused ≠ backward + step"
        );

        let loss = checked.try_train_step(&x, &y, &Mse, &mut ws, c).unwrap();
        let expected = checked_unfused.backward(&x, &y, &Mse, &mut ws, &mut grad);
        d.try_step(&mut checked_unfused, &grad).unwrap();
        assert_eq!(
            to_f64(loss).to_bits(),
            to_f64(expected).to_bits(),
            "{name} step {step}"
        );
        assert!(
            bits(&checked) == bits(&checked_unfused),
            "{name} step {step}: checked fused ≠ backward + try_step"
        );
        assert!(
            bits(&checked) == bits(&fused),
            "{name} step {step}: checked ≠ unchecked"
        );
    }
    assert_eq!(optimizers[0], optimizers[1], "{name}: optimizer state");
    assert_eq!(
        optimizers[2], optimizers[3],
        "{name}: checked optimizer state"
    );
}

/// No schedule.
fn fixed<P>(_: &mut P, _: usize) {}

/// [`agree`] for every optimizer configuration of the fixtures.
fn every_optimizer<N, const I: usize, const O: usize, const B: usize>(start: &N)
where
    N: Model<I, O> + Clone + PartialEq + core::fmt::Debug + 'static,
{
    agree::<N, _, I, O, B>("sgd", start, Sgd::new(0.1), fixed);
    agree::<N, _, I, O, B>("sgd_momentum", start, Sgd::new(0.1).momentum(0.9), fixed);
    let damped = Sgd::new(0.1).momentum(0.9).dampening(0.3);
    agree::<N, _, I, O, B>("sgd_momentum_dampening", start, damped.clone(), fixed);
    let nesterov = Sgd::new(0.1).momentum(0.9).nesterov(true);
    agree::<N, _, I, O, B>("sgd_nesterov", start, nesterov, fixed);
    agree::<N, _, I, O, B>(
        "sgd_weight_decay",
        start,
        Sgd::new(0.1).weight_decay(0.01),
        fixed,
    );
    let both = Sgd::new(0.1).momentum(0.8).weight_decay(0.05);
    agree::<N, _, I, O, B>("sgd_momentum_weight_decay", start, both, fixed);
    agree::<N, _, I, O, B>("sgd_momentum_toggled", start, damped, |sgd, step| {
        sgd.momentum = if step % 2 == 0 { 0.9 } else { 0.0 };
    });
    agree::<N, _, I, O, B>("adam", start, Adam::new(0.01), fixed);
    agree::<N, _, I, O, B>("adam_amsgrad", start, Adam::new(0.01).amsgrad(true), fixed);
    let decayed = Adam::new(0.01).weight_decay(0.01);
    agree::<N, _, I, O, B>("adam_weight_decay", start, decayed, fixed);
    let betas = Adam::new(0.02).betas(0.8, 0.99).eps(1e-6);
    agree::<N, _, I, O, B>("adam_betas", start, betas, fixed);
    let low = Adam::new(0.01).betas(0.3, 0.9);
    agree::<N, _, I, O, B>("adam_low_beta1", start, low, fixed);
    agree::<N, _, I, O, B>(
        "adam_amsgrad_toggled",
        start,
        Adam::new(0.01),
        |adam, step| {
            adam.amsgrad = step % 2 == 1;
        },
    );
    agree::<N, _, I, O, B>("adamw", start, AdamW::new(0.01), fixed);
    let amsgrad = AdamW::new(0.01).weight_decay(0.1).amsgrad(true);
    agree::<N, _, I, O, B>("adamw_amsgrad", start, amsgrad, fixed);
    agree::<N, _, I, O, B>("rmsprop", start, RmsProp::new(0.01), fixed);
    let centered = RmsProp::new(0.01).centered(true);
    agree::<N, _, I, O, B>("rmsprop_centered", start, centered, fixed);
    let momentum = RmsProp::new(0.01).momentum(0.9);
    agree::<N, _, I, O, B>("rmsprop_momentum", start, momentum, fixed);
    let decayed = RmsProp::new(0.01).weight_decay(0.1);
    agree::<N, _, I, O, B>("rmsprop_weight_decay", start, decayed, fixed);
    let low = RmsProp::new(0.01).alpha(0.3).centered(true);
    agree::<N, _, I, O, B>("rmsprop_low_alpha_centered", start, low, fixed);
    let all = RmsProp::new(0.02)
        .alpha(0.9)
        .eps(1e-6)
        .weight_decay(0.05)
        .momentum(0.5)
        .centered(true);
    agree::<N, _, I, O, B>("rmsprop_all", start, all, fixed);
    agree::<N, _, I, O, B>("adagrad", start, Adagrad::new(0.1), fixed);
    let decay = Adagrad::new(0.1).lr_decay(0.05);
    agree::<N, _, I, O, B>("adagrad_lr_decay", start, decay, fixed);
    let initial = Adagrad::new(0.1).initial_accumulator_value(0.3);
    agree::<N, _, I, O, B>("adagrad_initial_accumulator", start, initial, fixed);
    let all = Adagrad::new(0.1)
        .lr_decay(0.05)
        .weight_decay(0.02)
        .initial_accumulator_value(0.3)
        .eps(1e-6);
    agree::<N, _, I, O, B>("adagrad_all", start, all, fixed);
}

#[test]
fn tiny_layers_step_the_same_fused() {
    every_optimizer::<_, 4, 1, 1>(&Tiny::<f32>::init(1));
    every_optimizer::<_, 4, 1, 3>(&Tiny::<f64>::init(2));
}

#[test]
fn mid_size_layers_step_the_same_fused() {
    every_optimizer::<_, 64, 10, 1>(&Mid::<f32>::init(3));
    every_optimizer::<_, 64, 10, 3>(&Mid::<f64>::init(4));
    every_optimizer::<_, 64, 10, 1>(&Mid::<f64>::init(10));
    // SGD updates short columns two at a time: an odd count leaves the last one alone.
    every_optimizer::<_, 33, 3, 1>(&Odd::<f32>::init(5));
}

/// SGD seen through [`FusedStep`]'s provided `update_columns` (column by column through
/// `update_scaled`), as an optimizer that asks for columns without overriding it would be.
#[derive(Clone, Debug, PartialEq)]
struct ProvidedColumns<N: Network>(Sgd<N>);

impl<N: Network> Optimizer<N> for ProvidedColumns<N> {
    fn step(&mut self, net: &mut N, grad: &N) {
        backprop::optim::fused::step_by_tensors(self, net, grad);
    }
    fn try_step(&mut self, net: &mut N, grad: &N) -> Result<(), NonFiniteUpdate> {
        backprop::optim::fused::try_step_by_tensors(self, net, grad)
    }
    fn learning_rate(&self) -> f64 {
        self.0.learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.0.set_learning_rate(lr);
    }
}

impl<N: Network> FusedStep<N> for ProvidedColumns<N> {
    type Rule = <Sgd<N> as FusedStep<N>>::Rule;
    const SCALED_COLUMNS: bool = true;
    fn begin_step(&mut self) -> Self::Rule {
        self.0.begin_step()
    }
    fn update(
        &mut self,
        rule: &Self::Rule,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        grads: &[N::Scalar],
    ) {
        self.0.update(rule, tensor, offset, params, grads);
    }
    fn update_scaled(
        &mut self,
        rule: &Self::Rule,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        delta: &[N::Scalar],
        x: N::Scalar,
    ) {
        self.0.update_scaled(rule, tensor, offset, params, delta, x);
    }
    fn check(
        &self,
        rule: &Self::Rule,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        grads: &[N::Scalar],
    ) -> Option<(usize, &'static str)> {
        self.0.check(rule, tensor, offset, params, grads)
    }
    fn end_step(&mut self) {
        self.0.end_step();
    }
    fn optimizer_name(&self) -> &'static str {
        "SGD"
    }
}

#[test]
fn the_provided_column_update_steps_the_same_fused() {
    let start = Mid::<f32>::init(12);
    let sgd = |sgd: Sgd<_>| ProvidedColumns(sgd);
    agree::<_, _, 64, 10, 1>("plain", &start, sgd(Sgd::new(0.1)), fixed);
    let nesterov = Sgd::new(0.1)
        .momentum(0.9)
        .nesterov(true)
        .weight_decay(0.01);
    agree::<_, _, 64, 10, 1>("nesterov", &start, sgd(nesterov), fixed);
    agree::<_, _, 64, 10, 1>("decay", &start, sgd(Sgd::new(0.1).weight_decay(0.1)), fixed);
}

#[test]
fn tiled_layers_step_the_same_fused() {
    every_optimizer::<_, 80, 3, 1>(&Tiled::<f64>::init(5));
    every_optimizer::<_, 80, 3, 3>(&Tiled::<f32>::init(6));
}

#[test]
fn heap_layers_and_chains_step_the_same_fused() {
    every_optimizer::<_, 200, 2, 3>(&OnHeap::<f32>::init(7));
    every_optimizer::<_, 6, 3, 1>(&Chain::<f64>::init(8));
    every_optimizer::<_, 6, 3, 3>(&Chain::<f32>::init(9));
}

/// A refused checked step changes nothing (network, optimizer) and gives the unfused step's error.
fn refused_like_unfused<N, P, const I: usize, const O: usize>(
    net: &N,
    optimizer: P,
    x: &SVector<N::Scalar, I>,
    y: &SVector<N::Scalar, O>,
) -> StepError
where
    N: Model<I, O> + Clone,
    P: FusedStep<N> + Clone + PartialEq + core::fmt::Debug,
{
    let (mut fused, mut unfused) = (net.clone(), net.clone());
    let (mut a, mut b) = (optimizer.clone(), optimizer);
    let mut ws = net.workspace::<1>();
    let mut grad = N::zeros();
    let error = fused
        .try_train_step(x, y, &Mse, &mut ws, &mut a)
        .unwrap_err();
    let loss = unfused.backward(x, y, &Mse, &mut ws, &mut grad);
    let expected: Option<NonFiniteUpdate> = b.try_step(&mut unfused, &grad).err();
    assert!(
        bits(&fused) == bits(net),
        "a refused step wrote the network"
    );
    assert_eq!(a, b, "a refused step changed the optimizer");
    match error {
        StepError::Loss(value) => assert!(!value.is_finite() && !to_f64(loss).is_finite()),
        StepError::Gradient { parameter, .. } => {
            assert!(expected.is_some());
            let first = grad
                .params()
                .find(|p| p.values.iter().any(|v| !to_f64(*v).is_finite()));
            assert_eq!(first.map(|p| p.name), Some(parameter));
        }
        StepError::Update(update) => assert_eq!(Some(update), expected),
    }
    error
}

#[test]
fn a_refused_fused_step_changes_nothing_and_names_the_cause() {
    let net = Mid::<f32>::init(10);
    let (x, y) = (SVector::<f32, 64>::repeat(0.5), SVector::<f32, 10>::zeros());
    let mut nan = x;
    nan[3] = f32::NAN;
    let error = refused_like_unfused(&net, Adam::new(0.01), &nan, &y);
    assert!(matches!(error, StepError::Loss(_)), "{error:?}");
    // A far target and a learning rate that push the weights past f32's range (the loss, about
    // 1e36, and the gradient are finite): the update is refused.
    let far = SVector::<f32, 10>::repeat(1e18);
    let error = refused_like_unfused(&net, Sgd::new(1e30), &x, &far);
    assert!(
        matches!(error, StepError::Update(u) if u.value == "weight"),
        "{error:?}"
    );
    let error = refused_like_unfused(&net, Sgd::new(1e30).momentum(0.5), &x, &far);
    assert!(matches!(error, StepError::Update(_)), "{error:?}");
    let error = refused_like_unfused(&net, Sgd::new(1e30).weight_decay(0.1), &x, &far);
    assert!(matches!(error, StepError::Update(_)), "{error:?}");
    // One sample's column check finds a non-finite gradient as the unfused step does.
    let mut huge = x;
    huge[5] = f32::INFINITY;
    refused_like_unfused(&net, Sgd::new(0.1), &huge, &y);
    // A NaN gradient with a finite loss: an infinite input saturates every tanh unit, so the
    // output is finite, and its weight's gradient is 0 · ∞.
    let wide = Tiled::<f32>::init(11);
    let (mut infinite, y3) = (SVector::<f32, 80>::repeat(0.1), SVector::<f32, 3>::zeros());
    infinite[0] = f32::INFINITY;
    let error = refused_like_unfused(&wide, Adam::new(0.01), &infinite, &y3);
    assert!(
        matches!(error, StepError::Gradient { parameter: "fc1.weight", loss } if loss.is_finite()),
        "{error:?}"
    );
}

#[test]
fn fused_steps_allocate_nothing_once_prepared() {
    fn check<N: Model<I, O> + Clone, const I: usize, const O: usize, const B: usize>(net: &N) {
        let mut net = net.clone();
        let (x, y) = (
            batch::<N::Scalar, I, B>(0, 3),
            batch::<N::Scalar, O, B>(0, 4),
        );
        let mut ws = net.workspace::<B>();
        let mut adam = Adam::new(0.001);
        let mut sgd = Sgd::new(0.01).momentum(0.9);
        Optimizer::<N>::prepare(&mut adam);
        Optimizer::<N>::prepare(&mut sgd);
        let count = allocations(|| {
            for _ in 0..3 {
                net.train_step(&x, &y, &Mse, &mut ws, &mut adam);
                net.try_train_step(&x, &y, &Mse, &mut ws, &mut sgd).unwrap();
            }
        });
        assert_eq!(count, 0, "{}", core::any::type_name::<N>());
    }
    check::<_, 4, 1, 1>(&Tiny::<f32>::init(1));
    check::<_, 64, 10, 1>(&Mid::<f32>::init(1));
    check::<_, 64, 10, 4>(&Mid::<f64>::init(1));
    check::<_, 80, 3, 8>(&Tiled::<f32>::init(1));
    check::<_, 200, 2, 2>(&OnHeap::<f32>::init(1));
    check::<_, 6, 3, 2>(&Chain::<f32>::init(1));
}

network! { struct Wide < 40 => 1 > }

/// torch's single-tensor Adam on one f32 entry, written out as `torch/optim/adam.py` orders it
/// and ATen's scalar kernels compute it (ATen's vectorised lerp fuses a multiply-add instead):
/// the constants made in f64 and rounded once, then weight decay, `exp_avg.lerp_`,
/// `exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2)` and `param.addcdiv_(exp_avg, denom, −step_size)`
/// with `denom = √exp_avg_sq / √(1 − β2ᵗ) + eps`.
struct TorchAdam {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
}

impl TorchAdam {
    /// Step `t` (from 1) of one entry: weight `p`, gradient `g`, moments `m` and `v`, in `T`
    /// (in `f32` each constant is made in f64 and rounded once, as torch hands ATen a Python
    /// float; in `f64` nothing is rounded).
    fn step<T: Scalar>(&self, t: u64, p: &mut T, g: T, m: &mut T, v: &mut T) {
        let (beta1, beta2) = self.betas;
        let t = t as f64;
        let step_size: T = constant(self.lr / (1.0 - beta1.powf(t)));
        let correction2: T = constant((1.0 - beta2.powf(t)).sqrt());
        // ATen's lerp rounds the weight to T and takes `1 − w` in T.
        let weight: T = constant(1.0 - beta1);
        let mut g = g;
        if self.decoupled {
            *p *= constant::<T>(1.0 - self.lr * self.weight_decay);
        } else if self.weight_decay != 0.0 {
            g += constant::<T>(self.weight_decay) * *p;
        }
        // ATen's lerp: `m + w (g − m)` for a weight below ½, `g − (g − m)(1 − w)` otherwise.
        *m = if weight < constant(0.5) {
            *m + weight * (g - *m)
        } else {
            g - (g - *m) * (T::one() - weight)
        };
        *v = *v * constant(beta2) + constant::<T>(1.0 - beta2) * g * g;
        let denominator = v.sqrt() / correction2 + constant(self.eps);
        *p -= step_size * *m / denominator;
    }
}

/// Adam's and AdamW's update of a run of any length at any offset gives, entry by entry,
/// torch's arithmetic: a 40-entry tensor updated as two runs split at every point, three steps,
/// for every kernel (no, L2 and decoupled weight decay; both lerp forms), weights and moments
/// compared bit for bit; in `f32` and in `f64`.
#[test]
fn adam_updates_runs_of_every_length_as_torch_does_each_entry() {
    adam_runs_as_torch_does::<f32>();
    adam_runs_as_torch_does::<f64>();
}

/// [`adam_updates_runs_of_every_length_as_torch_does_each_entry`] in `T`.
fn adam_runs_as_torch_does<T: Scalar>() {
    let configs = [
        (0.9, 0.0, false),
        (0.9, 0.05, false),
        (0.9, 0.05, true),
        (0.3, 0.0, false),
        (0.3, 0.05, false),
        (0.3, 0.05, true),
        // 1 − 0.9 rounds differently in f32 from 1 − f32(0.9): ATen takes the second.
        (0.1, 0.0, false),
        (0.1, 0.05, true),
    ];
    for (beta1, weight_decay, decoupled) in configs {
        let torch = TorchAdam {
            lr: 0.01,
            betas: (beta1, 0.999),
            eps: 1e-8,
            weight_decay,
            decoupled,
        };
        for split in 0..=40 {
            let start = Wide::<T>::init(3);
            let mut net = start.clone();
            let mut adam = Adam::new(torch.lr)
                .betas(beta1, 0.999)
                .weight_decay(weight_decay);
            let mut adamw = AdamW::new(torch.lr)
                .betas(beta1, 0.999)
                .weight_decay(weight_decay);
            let mut expected: Vec<T> = start.fc1.weight.as_slice().to_vec();
            let (mut means, mut squares) = (vec![T::zero(); 40], vec![T::zero(); 40]);
            for t in 1..=3u64 {
                // Gradients of both signs and many sizes, one exactly zero.
                let grads: Vec<T> = (0..40)
                    .map(|i| match (i * 7 + t as usize) % 11 {
                        0 => T::zero(),
                        k => constant((k as f64 - 5.5) * 10f64.powi((i % 5) as i32 - 2)),
                    })
                    .collect();
                let weight = net.fc1.weight.as_mut_slice();
                let (head, tail) = weight.split_at_mut(split);
                if decoupled {
                    let rule = FusedStep::<Wide<T>>::begin_step(&mut adamw);
                    adamw.update(&rule, 0, 0, head, &grads[..split]);
                    adamw.update(&rule, 0, split, tail, &grads[split..]);
                    FusedStep::<Wide<T>>::end_step(&mut adamw);
                } else {
                    let rule = FusedStep::<Wide<T>>::begin_step(&mut adam);
                    adam.update(&rule, 0, 0, head, &grads[..split]);
                    adam.update(&rule, 0, split, tail, &grads[split..]);
                    FusedStep::<Wide<T>>::end_step(&mut adam);
                }
                for i in 0..40 {
                    torch.step(
                        t,
                        &mut expected[i],
                        grads[i],
                        &mut means[i],
                        &mut squares[i],
                    );
                }
            }
            let what = format!(
                "{}: β1 {beta1}, decay {weight_decay} (decoupled {decoupled}), split {split}",
                core::any::type_name::<T>()
            );
            let bits = |values: &[T]| {
                values
                    .iter()
                    .map(|&v| to_f64(v).to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                bits(net.fc1.weight.as_slice()),
                bits(&expected),
                "weights: {what}"
            );
            let buffers = if decoupled {
                OptimizerState::buffers(&adamw)
            } else {
                OptimizerState::buffers(&adam)
            };
            let moment = |name: &str| {
                let (_, buffer) = buffers.iter().find(|(n, _)| *n == name).expect("buffer");
                bits(buffer.fc1.weight.as_slice())
            };
            assert_eq!(moment("exp_avg"), bits(&means), "first moment: {what}");
            assert_eq!(
                moment("exp_avg_sq"),
                bits(&squares),
                "second moment: {what}"
            );
        }
    }
}
