//! A training loop: epochs of seeded, shuffled mini-batches, one optimizer step per batch.
//!
//! The data set is two slices, one input and one target per sample. Every epoch visits the
//! samples in a fresh order drawn from a seeded ChaCha8 stream (the same seed gives the same run
//! on every machine), in batches of the const size `B` ([`TrainOptions::batch`]); the last, partial batch is used, not
//! dropped: its gradient is the per-sample gradients combined as the loss reduces a batch (their
//! mean, or their sum for [`Sse`](crate::loss::Sse)), which is the gradient PyTorch computes for a
//! smaller last batch. Buffers are made once per call, so a step allocates nothing. The batch
//! size must be at least 1: `B = 0` is a compile error.
//!
//! Before the first step everything that can be checked is: the data set's lengths, the
//! optimizer's hyper-parameters ([`Optimizer::validate`](crate::optim::Optimizer::validate)), the network's weights (all finite) and
//! every target (a class index out of range is reported at its row in the data set), so a bad
//! input never stops training half-way with some steps already taken.
//!
//! Every step is checked, and one that would make anything non-finite is not taken: a NaN or
//! infinite loss stops the loop before the step ([`TrainError::NonFinite`]); the step itself is
//! the fused [`Model::try_train_step`](crate::model::Model::try_train_step) (or, with clipping and
//! for a partial last batch, `backward` then
//! [`Optimizer::try_step`](crate::optim::Optimizer::try_step)), which computes every value the
//! update would write (weights and optimizer state) before writing any, so a NaN or infinite gradient entry
//! ([`TrainError::NonFinite`] naming the parameter) or an update that overflows
//! ([`TrainError::NonFiniteUpdate`]) stops the loop with the network, and the optimizer's state,
//! exactly as the last good step left them. So `train` never returns `Ok` with a non-finite weight.
//!
//! [`train_with`] takes the same arguments and a [`Fit`]: a learning-rate [`Schedule`] stepped
//! per epoch or per batch (torch's order: after the optimizer's step; per epoch, after the
//! validation), gradient [`Clip`]ping before each step, a validation set scored after every
//! epoch (mean loss per sample, and accuracy for classifiers), early stopping with patience that
//! restores the best weights, and a first epoch other than 0 (to resume from a
//! [`checkpoint`](crate::checkpoint)). [`train`] is `train_with` and `Fit::new()`.
//!
//! ```text
//! let mut schedule = Schedule::cosine_annealing_lr(30, 0.0);
//! let fit = Fit::new()
//!     .schedule(&mut schedule, Every::Epoch)
//!     .clip(Clip::Norm { max_norm: 1.0, error_if_nonfinite: true })
//!     .validation(&val_x, &val_y)
//!     .patience(5);
//! let history = train_with(&mut net, &mut adam, &CrossEntropy, &x, &y,
//!     TrainOptions::new(30, 0).batch::<32>(), fit, |epoch| ControlFlow::Continue(()))?;
//! ```
//! (run as `train_with_runs_as_documented` in `tests/suite/training_loop.rs`)

use core::fmt;
use core::ops::ControlFlow;
use std::vec::Vec;

use nalgebra::SMatrix;
use rand::Rng;

use crate::clip::{Clip, ClipError};
use crate::health::{HealthError, HealthMonitor, HealthOptions, HealthReport};
use crate::heap::{boxed, zeroed};
use crate::init::seeded_rng;
use crate::loss::{write_classes, ClassIndexError, Loss, Reduction};
use crate::model::Model;
use crate::network::Network;
use crate::optim::{FusedStep, NonFiniteUpdate, OptimizerError, Schedule, ScheduleError};
use crate::sample::SampleFor;
use crate::scalar::{constant, to_f64, Scalar};
use crate::step::StepError;
use crate::target::Target;

/// How to train: the number of epochs, the seed of the shuffling and the batch size `B` (a
/// const, since it sizes the batch buffers): `TrainOptions::new(epochs, seed)` trains in batches
/// of 1, `.batch::<32>()` in batches of 32.
///
/// ```
/// use backprop::train::TrainOptions;
///
/// let options = TrainOptions::new(30, 7).batch::<32>();
/// assert_eq!((options.epochs, options.shuffle_seed), (30, Some(7)));
/// assert_eq!(options.in_order().shuffle_seed, None); // the data set's order every epoch
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainOptions<const B: usize = 1> {
    /// Passes over the data set.
    pub epochs: usize,
    /// The seed of each epoch's sample order; `None` keeps the data set's order.
    pub shuffle_seed: Option<u64>,
}

impl TrainOptions<1> {
    /// `epochs` passes with the samples shuffled from `seed`, one sample per batch (choose
    /// another batch size with [`TrainOptions::batch`]).
    pub const fn new(epochs: usize, seed: u64) -> Self {
        TrainOptions {
            epochs,
            shuffle_seed: Some(seed),
        }
    }
}

impl<const B: usize> TrainOptions<B> {
    /// The same options in batches of `C` samples (`C ≥ 1`: `batch::<0>()` does not compile).
    pub const fn batch<const C: usize>(self) -> TrainOptions<C> {
        const {
            assert!(
                C > 0,
                "TrainOptions::batch: the batch size must be at least 1"
            )
        };
        TrainOptions {
            epochs: self.epochs,
            shuffle_seed: self.shuffle_seed,
        }
    }

    /// The same options without shuffling.
    pub const fn in_order(self) -> Self {
        TrainOptions {
            shuffle_seed: None,
            ..self
        }
    }
}

/// What the per-epoch callback sees.
#[derive(Debug)]
pub struct Epoch<'a, N> {
    /// The epoch, from 0.
    pub index: usize,
    /// The mean loss per sample over the epoch (as each batch's loss weighs its samples).
    pub loss: f64,
    /// The network after the epoch.
    pub net: &'a N,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    /// The validation set's score after the epoch, if [`Fit::validation`] gave one.
    pub validation: Option<Score>,
    /// The epoch with the best validation loss so far (this one, if it improved on them).
    pub best_epoch: Option<usize>,
    /// Early stopping ends training after this epoch (the best weights are restored after the
    /// callback).
    pub stopping: bool,
    /// The training set's health after the epoch, if [`Fit::health`] asked for it: dead and
    /// saturated units, gradient norms across depth, the update ratio of the epoch's last step.
    pub health: Option<&'a HealthReport>,
}

/// A data set's score: the mean loss per sample, and the accuracy for a classifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// The mean loss per sample (as the training loss is reported).
    pub loss: f64,
    /// The fraction of samples whose largest output is the target class (class-index targets,
    /// or vector targets of more than one entry, scored by their largest entry); `None` for one
    /// output.
    pub accuracy: Option<f64>,
}

/// When a [`Fit`]'s schedule steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// After every epoch (after its validation).
    Epoch,
    /// After every optimizer step.
    Batch,
}

/// The extras of [`train_with`]: a schedule, clipping, validation, early stopping, a first epoch.
#[derive(Debug)]
pub struct Fit<'a, X, S> {
    /// The learning-rate schedule and when it steps; started on the optimizer (torch's
    /// construction) unless it already was, as one from a checkpoint is.
    pub schedule: Option<(&'a mut Schedule, Every)>,
    /// Clipping of every batch's gradient before the step.
    pub clip: Option<Clip>,
    /// Validation inputs and targets, scored after every epoch.
    pub validation: Option<(&'a [X], &'a [S])>,
    /// Stop after this many epochs without a better validation loss, and restore the weights of
    /// the best epoch.
    pub patience: Option<usize>,
    /// The first epoch (0; a checkpoint's epoch to resume). The sample order of epoch `e`
    /// depends only on the seed and `e` (the earlier epochs' shuffles are replayed), so a resumed
    /// run visits the samples as an unbroken one does.
    pub start_epoch: usize,
    /// A health report of the training set after every epoch, under these thresholds (off by
    /// default: then nothing is made and nothing is computed).
    pub health: Option<HealthOptions>,
}

impl<X, S> Default for Fit<'_, X, S> {
    fn default() -> Self {
        Fit {
            schedule: None,
            clip: None,
            validation: None,
            patience: None,
            start_epoch: 0,
            health: None,
        }
    }
}

impl<'a, X, S> Fit<'a, X, S> {
    /// No schedule, clipping or validation, from epoch 0: what [`train`] does.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this schedule, stepped every epoch or every batch.
    pub fn schedule(self, schedule: &'a mut Schedule, every: Every) -> Self {
        Fit {
            schedule: Some((schedule, every)),
            ..self
        }
    }

    /// With gradient clipping.
    pub fn clip(self, clip: Clip) -> Self {
        Fit {
            clip: Some(clip),
            ..self
        }
    }

    /// With a validation set.
    pub fn validation(self, inputs: &'a [X], targets: &'a [S]) -> Self {
        Fit {
            validation: Some((inputs, targets)),
            ..self
        }
    }

    /// With early stopping after `patience` epochs without improvement (needs a validation set).
    pub fn patience(self, patience: usize) -> Self {
        Fit {
            patience: Some(patience),
            ..self
        }
    }

    /// With a health report of the training set after every epoch, handed to the callback
    /// ([`Epoch::health`]); its buffers are made once, before the first epoch.
    pub fn health(self, options: HealthOptions) -> Self {
        Fit {
            health: Some(options),
            ..self
        }
    }

    /// Starting at epoch `epoch` (resuming).
    pub fn start_epoch(self, epoch: usize) -> Self {
        Fit {
            start_epoch: epoch,
            ..self
        }
    }
}

pub use crate::target::Classify;

/// A loss `train` can use with targets `S` at batch size `B`: one that scores batches of `B` and
/// single samples (the partial last batch and the validation set run one sample at a time).
/// Implemented by every loss for the targets it accepts; it exists so that `train` says this in
/// one bound.
pub trait TrainingLoss<T: Scalar, const O: usize, S: Target<T, O>, const B: usize>:
    Loss<T, O, B, S::Batch<B>> + Loss<T, O, 1, S::Batch<1>>
{
}

impl<T: Scalar, const O: usize, S: Target<T, O>, const B: usize, L> TrainingLoss<T, O, S, B> for L where
    L: Loss<T, O, B, S::Batch<B>> + Loss<T, O, 1, S::Batch<1>>
{
}

/// Why training stopped early.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainError {
    /// The inputs and targets are not the same length.
    LengthMismatch {
        /// Number of inputs.
        inputs: usize,
        /// Number of targets.
        targets: usize,
    },
    /// There are no samples.
    EmptyDataSet,
    /// A target is not valid for the loss (a class index out of range); its `sample` is the
    /// target's row in the data set. Found before any step.
    InvalidTarget(ClassIndexError),
    /// A hyper-parameter of the optimizer is invalid. Found before any step.
    Optimizer(OptimizerError),
    /// The schedule is invalid, or too short for the steps asked (OneCycleLR's `total_steps`).
    /// Found before any step.
    Schedule(ScheduleError),
    /// The clipping threshold is invalid. Found before any step.
    Clip(ClipError),
    /// The validation set is empty or its lengths differ, or patience was asked without one.
    /// Found before any step.
    Validation {
        /// Validation inputs.
        inputs: usize,
        /// Validation targets.
        targets: usize,
    },
    /// A weight of the network given to `train` is NaN or infinite. Found before any step.
    NonFiniteWeight {
        /// The parameter tensor holding it.
        parameter: &'static str,
    },
    /// The loss of the epochs so far cannot be kept: memory for the history ran out.
    HistoryTooLong {
        /// The epochs completed (the network has the weights after them).
        epochs: usize,
    },
    /// The loss or a gradient became NaN or infinite; the step was not taken, and the network has
    /// the weights of the last good step.
    NonFinite {
        /// The epoch, from 0.
        epoch: usize,
        /// The batch within the epoch, from 0.
        batch: usize,
        /// The batch's loss.
        loss: f64,
        /// The first non-finite gradient entry's parameter, if the loss itself was finite.
        parameter: Option<&'static str>,
    },
    /// The loss and gradient were finite but the optimizer's update would have made a weight or
    /// its state non-finite (an overflow); the step was not taken, and the network and the
    /// optimizer have the weights and state of the last good step.
    NonFiniteUpdate {
        /// The epoch, from 0.
        epoch: usize,
        /// The batch within the epoch, from 0.
        batch: usize,
        /// The entry, and what would have become non-finite.
        update: NonFiniteUpdate,
    },
    /// The per-epoch health report could not run (the data set was checked before the first
    /// step, so this does not happen with the loop's own data).
    Health(HealthError),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::LengthMismatch { inputs, targets } => {
                write!(f, "the data set has {inputs} inputs but {targets} targets; give one target per input")
            }
            TrainError::EmptyDataSet => write!(f, "the data set is empty: there is nothing to train on"),
            TrainError::InvalidTarget(error) => {
                write!(
                    f,
                    "target class {} in row {} of the data set is out of range: ",
                    error.index, error.sample
                )?;
                write_classes(f, error.classes)?;
                write!(f, "; no step was taken")
            }
            TrainError::Optimizer(error) => write!(f, "{error}; no step was taken"),
            TrainError::Schedule(error) => write!(f, "{error}; no step was taken"),
            TrainError::Clip(error) => write!(f, "{error}; no step was taken"),
            TrainError::Validation { inputs, targets } => write!(
                f,
                "the validation set has {inputs} inputs and {targets} targets; give at least one \
                 sample and one target per input (patience needs a validation set); no step was taken"
            ),
            TrainError::NonFiniteWeight { parameter } => write!(
                f,
                "the network to train has a NaN or infinite weight in `{parameter}`; no step was taken"
            ),
            TrainError::Health(error) => write!(f, "the health report failed: {error}"),
            TrainError::HistoryTooLong { epochs } => write!(
                f,
                "out of memory for the loss history after {epochs} epochs; training stopped with \
                 the weights after them (train fewer epochs per call)"
            ),
            TrainError::NonFinite { epoch, batch, loss, parameter: None } => write!(
                f,
                "the loss became {loss} in epoch {epoch}, batch {batch}; training stopped and the \
                 network keeps the weights of the last good step (try a smaller learning rate)"
            ),
            TrainError::NonFinite { epoch, batch, parameter: Some(name), .. } => write!(
                f,
                "the gradient of `{name}` became non-finite in epoch {epoch}, batch {batch}; training \
                 stopped and the network keeps the weights of the last good step"
            ),
            TrainError::NonFiniteUpdate { epoch, batch, update } => write!(
                f,
                "{update} in epoch {epoch}, batch {batch}; the step was not taken: training \
                 stopped and the network keeps the weights of the last good step (try a smaller \
                 learning rate)"
            ),
        }
    }
}

impl std::error::Error for TrainError {}

/// The loss of every epoch, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The mean loss per sample of each epoch.
    pub losses: Vec<f64>,
    /// The validation score after each epoch (empty without a validation set).
    pub validation: Vec<Score>,
    /// The epoch of the best validation loss, whose weights early stopping restored.
    pub best_epoch: Option<usize>,
}

/// Trains `net` on `inputs` and `targets` in batches of `B`, calling `on_epoch` after each epoch
/// (return `ControlFlow::Break(())` to stop early). Returns the loss history.
///
/// Inputs are `[T; INPUTS]`s or `SVector<T, INPUTS>`s; targets are `SVector<T, OUTPUTS>`s, or
/// class indices (`usize`) for [`CrossEntropy`](crate::loss::CrossEntropy). The batch size is
/// the options': `TrainOptions::new(epochs, seed)` trains one sample at a time,
/// `TrainOptions::new(epochs, seed).batch::<32>()` in batches of 32.
///
/// Any number of epochs is accepted: the loss history grows as epochs complete (the first 1024
/// are reserved up front, so that shorter runs allocate only during setup).
///
/// ```
/// use backprop::prelude::*;
/// use backprop::train::{train, TrainOptions};
/// use std::ops::ControlFlow;
///
/// network! { struct Xor < 2 => tanh 8 => sigmoid 1 > }
///
/// let inputs = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
/// let targets = [0.0, 1.0, 1.0, 0.0].map(SVector::<f32, 1>::new);
/// let mut net = Xor::<f32>::init(1);
/// let history = train(
///     &mut net,
///     &mut Adam::new(0.05),
///     &Bce,
///     &inputs,
///     &targets,
///     TrainOptions::new(400, 0).batch::<4>(), // 400 epochs, shuffled from seed 0, batches of 4
///     |_| ControlFlow::Continue(()),
/// )
/// .unwrap();
/// assert_eq!(history.losses.len(), 400);
/// assert!(history.losses[399] < 0.05);
/// for (x, y) in inputs.iter().zip(&targets) {
///     assert!((net.forward(x)[0] - y[0]).abs() < 0.2);
/// }
/// ```
pub fn train<N, X, S, L, P, const I: usize, const O: usize, const B: usize>(
    net: &mut N,
    optimizer: &mut P,
    loss: &L,
    inputs: &[X],
    targets: &[S],
    options: TrainOptions<B>,
    on_epoch: impl FnMut(&Epoch<'_, N>) -> ControlFlow<()>,
) -> Result<History, TrainError>
where
    N: Model<I, O>,
    X: SampleFor<N, N::Scalar, I>,
    S: Target<N::Scalar, O>,
    L: TrainingLoss<N::Scalar, O, S, B>,
    P: FusedStep<N>,
{
    train_with(
        net,
        optimizer,
        loss,
        inputs,
        targets,
        options,
        Fit::new(),
        on_epoch,
    )
}

/// [`train`] with a [`Fit`]'s schedule, clipping, validation, early stopping and first epoch.
///
/// Everything is checked before the first step, the schedule, the clipping threshold and the
/// validation set too. Epochs run from `fit.start_epoch` to `options.epochs`. With patience,
/// training stops after `patience` epochs in a row without a validation loss below the best
/// one, and the network gets the weights of the best epoch back (also when the epochs run out);
/// the history's `best_epoch` names it. Validation allocates nothing per epoch; keeping the best
/// weights is one network-shaped buffer made during setup.
#[allow(clippy::too_many_arguments)]
pub fn train_with<N, X, S, L, P, const I: usize, const O: usize, const B: usize>(
    net: &mut N,
    optimizer: &mut P,
    loss: &L,
    inputs: &[X],
    targets: &[S],
    options: TrainOptions<B>,
    fit: Fit<'_, X, S>,
    mut on_epoch: impl FnMut(&Epoch<'_, N>) -> ControlFlow<()>,
) -> Result<History, TrainError>
where
    N: Model<I, O>,
    X: SampleFor<N, N::Scalar, I>,
    S: Target<N::Scalar, O>,
    L: TrainingLoss<N::Scalar, O, S, B>,
    P: FusedStep<N>,
{
    const {
        assert!(
            B > 0,
            "train: the batch size must be at least 1 (`TrainOptions::batch::<B>()` with B = 0)"
        )
    };
    let Fit {
        mut schedule,
        clip,
        validation,
        patience,
        start_epoch,
        health,
    } = fit;
    let reduction = <L as Loss<N::Scalar, O, 1, S::Batch<1>>>::REDUCTION;
    if inputs.len() != targets.len() {
        return Err(TrainError::LengthMismatch {
            inputs: inputs.len(),
            targets: targets.len(),
        });
    }
    if inputs.is_empty() {
        return Err(TrainError::EmptyDataSet);
    }
    optimizer.validate().map_err(TrainError::Optimizer)?;
    S::check(targets).map_err(TrainError::InvalidTarget)?;
    if let Some(clip) = clip {
        clip.validate().map_err(TrainError::Clip)?;
    }
    match validation {
        Some((x, y)) if x.len() != y.len() || x.is_empty() => {
            return Err(TrainError::Validation {
                inputs: x.len(),
                targets: y.len(),
            })
        }
        Some((_, y)) => S::check(y).map_err(TrainError::InvalidTarget)?,
        None if patience.is_some() => {
            return Err(TrainError::Validation {
                inputs: 0,
                targets: 0,
            })
        }
        None => {}
    }
    let epochs = options.epochs.saturating_sub(start_epoch);
    if let Some((schedule, every)) = schedule.as_ref().map(|(s, e)| (&**s, *e)) {
        schedule.validate().map_err(TrainError::Schedule)?;
        if let Some(total) = schedule.total_steps() {
            let steps = match every {
                Every::Epoch => epochs as u64,
                Every::Batch => (epochs as u64).saturating_mul(inputs.len().div_ceil(B) as u64),
            };
            let done = schedule.last_epoch().max(0) as u64;
            if done.saturating_add(steps) > total {
                return Err(TrainError::Schedule(ScheduleError {
                    schedule: "OneCycleLR",
                    problem: "total_steps is fewer than the steps training takes",
                    value: total as f64,
                }));
            }
        }
    }
    if let Some(param) = net
        .params()
        .find(|p| p.values.iter().any(|v| !to_f64(*v).is_finite()))
    {
        return Err(TrainError::NonFiniteWeight {
            parameter: param.name,
        });
    }
    if let Some((schedule, _)) = schedule.as_mut() {
        if schedule.last_epoch() < 0 {
            // Validated above: starting cannot fail.
            schedule.start(optimizer).map_err(TrainError::Schedule)?;
        }
    }
    optimizer.prepare();
    // Everything a step needs, made once.
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    let mut batch_ws = net.workspace::<B>();
    let mut sample_ws = net.workspace::<1>();
    let mut x = zeroed::<SMatrix<N::Scalar, I, B>>();
    let mut x1 = zeroed::<SMatrix<N::Scalar, I, 1>>();
    let mut grad = boxed(N::zeros);
    let mut sample_grad = boxed(N::zeros);
    let mut target = zeroed::<S::Batch<B>>();
    let mut target1 = zeroed::<S::Batch<1>>();
    let mut best = patience.map(|_| boxed(|| net.clone()));
    let mut monitor = health.map(|_| HealthMonitor::<N, S, I, O>::new(net));
    let mut best_loss = f64::INFINITY;
    let mut since_best = 0usize;
    let reserved = epochs.min(HISTORY_RESERVED);
    let mut history = History {
        losses: Vec::with_capacity(reserved),
        validation: Vec::with_capacity(if validation.is_some() { reserved } else { 0 }),
        best_epoch: None,
    };

    // Each epoch shuffles the previous epoch's order: a resumed run replays the shuffles of the
    // epochs before its first (the order is the only state of the shuffling).
    if let Some(seed) = options.shuffle_seed {
        for epoch in 0..start_epoch.min(options.epochs) {
            shuffle(&mut order, seed, epoch);
        }
    }
    for epoch in start_epoch..options.epochs {
        if let Some(seed) = options.shuffle_seed {
            shuffle(&mut order, seed, epoch);
        }
        let mut total = 0.0;
        let mut lr = optimizer.learning_rate();
        let batches = inputs.len().div_ceil(B);
        for (batch, indices) in order.chunks(B).enumerate() {
            let last_batch = batch + 1 == batches;
            let fused = indices.len() == B && clip.is_none();
            if indices.len() == B {
                for (column, &index) in indices.iter().enumerate() {
                    x.set_column(column, inputs[index].as_vector());
                }
                S::gather_into(&mut *target, targets, indices)
                    .map_err(|error| invalid_target(error, indices))?;
            }
            let batch_loss = if fused {
                // A full batch without clipping: the fused step, checked before it writes.
                lr = optimizer.learning_rate();
                if let (Some(monitor), true) = (monitor.as_mut(), last_batch) {
                    monitor.before_step(net);
                }
                match net.try_train_step(&*x, &*target, loss, &mut batch_ws, optimizer) {
                    Ok(value) => to_f64(value),
                    Err(error) => {
                        return Err(match error {
                            StepError::Loss(loss) => TrainError::NonFinite {
                                epoch,
                                batch,
                                loss,
                                parameter: None,
                            },
                            StepError::Gradient { parameter, loss } => TrainError::NonFinite {
                                epoch,
                                batch,
                                loss,
                                parameter: Some(parameter),
                            },
                            StepError::Update(update) => TrainError::NonFiniteUpdate {
                                epoch,
                                batch,
                                update,
                            },
                        })
                    }
                }
            } else {
                let batch_loss = if indices.len() == B {
                    to_f64(net.backward(&*x, &*target, loss, &mut batch_ws, &mut *grad))
                } else {
                    partial_batch(
                        net,
                        loss,
                        inputs,
                        targets,
                        indices,
                        (&mut x1, &mut target1, &mut sample_ws),
                        &mut *grad,
                        &mut *sample_grad,
                    )?
                };
                if !batch_loss.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch,
                        batch,
                        loss: batch_loss,
                        parameter: None,
                    });
                }
                if let Some(clip) = clip {
                    if clip.apply(&mut *grad).is_err() {
                        // Only a non-finite norm is refused here (the threshold was checked).
                        return Err(TrainError::NonFinite {
                            epoch,
                            batch,
                            loss: batch_loss,
                            parameter: first_non_finite(&*grad),
                        });
                    }
                }
                lr = optimizer.learning_rate();
                if let (Some(monitor), true) = (monitor.as_mut(), last_batch) {
                    monitor.before_step(net);
                }
                if let Err(update) = optimizer.try_step(net, &*grad) {
                    // Nothing was written. Name the cause: a non-finite gradient, or the update.
                    return Err(match first_non_finite(&*grad) {
                        Some(name) => TrainError::NonFinite {
                            epoch,
                            batch,
                            loss: batch_loss,
                            parameter: Some(name),
                        },
                        None => TrainError::NonFiniteUpdate {
                            epoch,
                            batch,
                            update,
                        },
                    });
                }
                batch_loss
            };
            if let (Some(monitor), true) = (monitor.as_mut(), last_batch) {
                monitor.after_step(net);
            }
            if let Some((schedule, Every::Batch)) = schedule.as_mut() {
                // The length was checked against OneCycleLR's total_steps.
                schedule.step(optimizer).map_err(TrainError::Schedule)?;
            }
            // A mean-reduced batch loss weighs its samples; a summed one already is their sum.
            total += match reduction {
                Reduction::Mean => batch_loss * indices.len() as f64,
                Reduction::Sum => batch_loss,
            };
        }
        let mean = total / inputs.len() as f64;
        if history.losses.try_reserve(1).is_err()
            || (validation.is_some() && history.validation.try_reserve(1).is_err())
        {
            return Err(TrainError::HistoryTooLong { epochs: epoch + 1 });
        }
        history.losses.push(mean);
        let score = validation
            .map(|(x, y)| score(net, loss, x, y, (&mut x1, &mut target1, &mut sample_ws)));
        let mut stopping = false;
        if let Some(score) = score {
            history.validation.push(score);
            if score.loss < best_loss {
                best_loss = score.loss;
                since_best = 0;
                history.best_epoch = Some(epoch);
                if let Some(best) = best.as_mut() {
                    copy_params(net, &mut **best);
                }
            } else {
                since_best += 1;
                stopping = patience.is_some_and(|p| since_best >= p);
            }
        }
        if let Some((schedule, Every::Epoch)) = schedule.as_mut() {
            schedule.step(optimizer).map_err(TrainError::Schedule)?;
        }
        let report = match (monitor.as_mut(), health.as_ref()) {
            (Some(monitor), Some(options)) => Some(
                monitor
                    .observe(net, loss, inputs, targets, options)
                    .map_err(TrainError::Health)?,
            ),
            _ => None,
        };
        let flow = on_epoch(&Epoch {
            index: epoch,
            loss: mean,
            net,
            lr,
            validation: score,
            best_epoch: history.best_epoch,
            stopping,
            health: report,
        });
        if stopping || flow.is_break() {
            break;
        }
    }
    if let (Some(best), Some(_)) = (best.as_ref(), history.best_epoch) {
        copy_params(&**best, net);
    }
    Ok(history)
}

/// Copies every parameter of `from` into `to` (no allocation).
fn copy_params<N: Network>(from: &N, to: &mut N) {
    for (to, from) in to.params_mut().zip(from.params()) {
        to.values.copy_from_slice(from.values);
    }
}

/// The score of `net` on a validation set, one sample at a time: the mean loss per sample and
/// the accuracy.
fn score<N, X, S, L, const I: usize, const O: usize>(
    net: &N,
    loss: &L,
    inputs: &[X],
    targets: &[S],
    (x1, target, ws): (
        &mut SMatrix<N::Scalar, I, 1>,
        &mut S::Batch<1>,
        &mut N::Workspace<1>,
    ),
) -> Score
where
    N: Model<I, O>,
    X: SampleFor<N, N::Scalar, I>,
    S: Target<N::Scalar, O>,
    L: Loss<N::Scalar, O, 1, S::Batch<1>>,
{
    let (mut total, mut correct, mut classified) = (0.0, 0usize, true);
    for (index, (sample, y)) in inputs.iter().zip(targets).enumerate() {
        x1.set_column(0, sample.as_vector());
        // Checked before the first step: the gather cannot fail.
        if S::gather_into(target, targets, &[index]).is_err() {
            continue;
        }
        let output = net.forward_into(x1, ws);
        total += to_f64(loss.value(output, target));
        match y.matches(output.as_slice()) {
            Some(hit) => correct += usize::from(hit),
            None => classified = false,
        }
    }
    let n = inputs.len() as f64;
    Score {
        loss: total / n,
        accuracy: classified.then(|| correct as f64 / n),
    }
}

/// The gradient of a batch of fewer than `B` samples, from one-sample passes: their gradients
/// averaged (or summed, for a summing loss) into `grad`; returns the batch's loss.
#[allow(clippy::too_many_arguments)]
fn partial_batch<N, X, S, L, const I: usize, const O: usize>(
    net: &N,
    loss: &L,
    inputs: &[X],
    targets: &[S],
    indices: &[usize],
    (x1, target, ws): (
        &mut SMatrix<N::Scalar, I, 1>,
        &mut S::Batch<1>,
        &mut N::Workspace<1>,
    ),
    grad: &mut N,
    sample_grad: &mut N,
) -> Result<f64, TrainError>
where
    N: Model<I, O>,
    X: SampleFor<N, N::Scalar, I>,
    S: Target<N::Scalar, O>,
    L: Loss<N::Scalar, O, 1, S::Batch<1>>,
{
    for param in grad.params_mut() {
        param.values.fill(constant(0.0));
    }
    let mut total = 0.0;
    for &index in indices {
        x1.set_column(0, inputs[index].as_vector());
        S::gather_into(target, targets, &[index])
            .map_err(|error| invalid_target(error, &[index]))?;
        total += to_f64(net.backward(x1, target, loss, ws, sample_grad));
        for (sum, sample) in grad.params_mut().zip(sample_grad.params()) {
            for (sum, &value) in sum.values.iter_mut().zip(sample.values) {
                *sum += value;
            }
        }
    }
    if <L as Loss<N::Scalar, O, 1, S::Batch<1>>>::REDUCTION == Reduction::Mean {
        let scale: N::Scalar = constant(1.0 / indices.len() as f64);
        for param in grad.params_mut() {
            for value in param.values.iter_mut() {
                *value *= scale;
            }
        }
        total /= indices.len() as f64;
    }
    Ok(total)
}

/// Epochs of loss history reserved up front: a run of at most this many epochs allocates only
/// during its setup; a longer one grows the history as it goes (amortised, once per doubling).
const HISTORY_RESERVED: usize = 1024;

/// A gathered batch's class-index error, with the sample's position in the batch replaced by
/// its row in the data set.
fn invalid_target(error: ClassIndexError, indices: &[usize]) -> TrainError {
    TrainError::InvalidTarget(ClassIndexError {
        sample: indices.get(error.sample).copied().unwrap_or(error.sample),
        ..error
    })
}

/// The first parameter whose gradient has a NaN or infinite entry.
fn first_non_finite<N: Network>(grad: &N) -> Option<&'static str> {
    grad.params()
        .find(|param| param.values.iter().any(|v| !to_f64(*v).is_finite()))
        .map(|param| param.name)
}

/// Fisher–Yates shuffle of `order` from a stream seeded by `seed` and the epoch.
fn shuffle(order: &mut [usize], seed: u64, epoch: usize) {
    let mut rng = seeded_rng(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
}
