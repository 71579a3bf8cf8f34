//! A training loop: epochs of seeded, shuffled mini-batches, one optimizer step per batch.
//!
//! The data set is two slices, one input and one target per sample. Every epoch visits the
//! samples in a fresh order drawn from a seeded ChaCha8 stream (the same seed gives the same run
//! on every machine), in batches of the const size `B`; the last, partial batch is used, not
//! dropped: its gradient is the per-sample gradients combined as the loss reduces a batch (their
//! mean, or their sum for [`Sse`](crate::loss::Sse)), which is the gradient PyTorch computes for a
//! smaller last batch. Buffers are made once per call, so a step allocates nothing. The batch
//! size must be at least 1: `B = 0` is a compile error.
//!
//! Before the first step everything that can be checked is: the data set's lengths, the
//! optimizer's hyper-parameters ([`Optimizer::validate`]), the network's weights (all finite) and
//! every target (a class index out of range is reported at its row in the data set), so a bad
//! input never stops training half-way with some steps already taken.
//!
//! Every step is checked, and one that would make anything non-finite is not taken: a NaN or
//! infinite loss stops the loop before the step ([`TrainError::NonFinite`]); the step itself is
//! [`Optimizer::try_step`], which computes every value the update would write (weights and
//! optimizer state) before writing any, so a NaN or infinite gradient entry
//! ([`TrainError::NonFinite`] naming the parameter) or an update that overflows
//! ([`TrainError::NonFiniteUpdate`]) stops the loop with the network, and the optimizer's state,
//! exactly as the last good step left them. So `train` never returns `Ok` with a non-finite weight.

use core::fmt;
use core::ops::ControlFlow;
use std::vec::Vec;

use rand::Rng;

use crate::batched::Batched;
use crate::heap::{boxed, zeroed};
use crate::init::seeded_rng;
use crate::loss::{write_classes, ClassIndexError, Reduction};
use crate::network::Network;
use crate::objective::Objective;
use crate::optim::{NonFiniteUpdate, Optimizer, OptimizerError};
use crate::scalar::{constant, to_f64};
use crate::target::Target;

/// How to train: the number of epochs and the seed of the shuffling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainOptions {
    /// Passes over the data set.
    pub epochs: usize,
    /// The seed of each epoch's sample order; `None` keeps the data set's order.
    pub shuffle_seed: Option<u64>,
}

impl TrainOptions {
    /// `epochs` passes with the samples shuffled from `seed`.
    pub const fn new(epochs: usize, seed: u64) -> Self {
        TrainOptions {
            epochs,
            shuffle_seed: Some(seed),
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
            TrainError::NonFiniteWeight { parameter } => write!(
                f,
                "the network to train has a NaN or infinite weight in `{parameter}`; no step was taken"
            ),
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
}

/// Trains `net` on `inputs` and `targets` in batches of `B`, calling `on_epoch` after each epoch
/// (return `ControlFlow::Break(())` to stop early). Returns the loss history.
///
/// Targets are `SVector<T, OUTPUTS>`s, or class indices (`usize`) for
/// [`CrossEntropy`](crate::loss::CrossEntropy); call it as `train::<_, _, _, _, B>(...)` with
/// `B ≥ 1` (0 does not compile).
///
/// Any number of epochs is accepted: the loss history grows as epochs complete (the first 1024
/// are reserved up front, so that shorter runs allocate only during setup).
pub fn train<N, O, L, S, const B: usize>(
    net: &mut N,
    optimizer: &mut O,
    loss: &L,
    inputs: &[<N as Batched<B>>::Sample],
    targets: &[S],
    options: TrainOptions,
    mut on_epoch: impl FnMut(&Epoch<'_, N>) -> ControlFlow<()>,
) -> Result<History, TrainError>
where
    N: Batched<B> + Batched<1, Sample = <N as Batched<B>>::Sample>,
    O: Optimizer<N>,
    S: Target<<N as Batched<B>>::Output> + Target<<N as Batched<1>>::Output>,
    L: Objective<
            N::Scalar,
            <N as Batched<B>>::Output,
            <S as Target<<N as Batched<B>>::Output>>::Batch,
        > + Objective<
            N::Scalar,
            <N as Batched<1>>::Output,
            <S as Target<<N as Batched<1>>::Output>>::Batch,
        >,
{
    const {
        assert!(
            B > 0,
            "train: the batch size B must be at least 1 (`train::<_, _, _, _, B>` with B = 0)"
        )
    };
    let reduction = <L as Objective<
        N::Scalar,
        <N as Batched<1>>::Output,
        <S as Target<<N as Batched<1>>::Output>>::Batch,
    >>::REDUCTION;
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
    <S as Target<<N as Batched<B>>::Output>>::check(targets).map_err(TrainError::InvalidTarget)?;
    if let Some(param) = net
        .params()
        .find(|p| p.values.iter().any(|v| !to_f64(*v).is_finite()))
    {
        return Err(TrainError::NonFiniteWeight {
            parameter: param.name,
        });
    }
    optimizer.prepare();
    // Everything a step needs, made once.
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    let mut batch_ws = <N as Batched<B>>::workspace(net);
    let mut sample_ws = <N as Batched<1>>::workspace(net);
    let mut x = zeroed::<<N as Batched<B>>::Input>();
    let mut x1 = zeroed::<<N as Batched<1>>::Input>();
    let mut grad = boxed(N::zeros);
    let mut sample_grad = boxed(N::zeros);
    let mut target = zeroed::<<S as Target<<N as Batched<B>>::Output>>::Batch>();
    let mut target1 = zeroed::<<S as Target<<N as Batched<1>>::Output>>::Batch>();
    let mut history = History {
        losses: Vec::with_capacity(options.epochs.min(HISTORY_RESERVED)),
    };

    for epoch in 0..options.epochs {
        if let Some(seed) = options.shuffle_seed {
            shuffle(&mut order, seed, epoch);
        }
        let mut total = 0.0;
        for (batch, indices) in order.chunks(B).enumerate() {
            let batch_loss = if indices.len() == B {
                for (column, &index) in indices.iter().enumerate() {
                    <N as Batched<B>>::set_sample(&mut x, column, &inputs[index]);
                }
                <S as Target<<N as Batched<B>>::Output>>::gather_into(
                    &mut target,
                    targets,
                    indices,
                )
                .map_err(|error| invalid_target(error, indices))?;
                to_f64(<N as Batched<B>>::backward(
                    net,
                    &*x,
                    &*target,
                    loss,
                    &mut batch_ws,
                    &mut *grad,
                ))
            } else {
                partial_batch::<N, L, S>(
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
            // A mean-reduced batch loss weighs its samples; a summed one already is their sum.
            total += match reduction {
                Reduction::Mean => batch_loss * indices.len() as f64,
                Reduction::Sum => batch_loss,
            };
        }
        let mean = total / inputs.len() as f64;
        if history.losses.try_reserve(1).is_err() {
            return Err(TrainError::HistoryTooLong { epochs: epoch + 1 });
        }
        history.losses.push(mean);
        if on_epoch(&Epoch {
            index: epoch,
            loss: mean,
            net,
        })
        .is_break()
        {
            break;
        }
    }
    Ok(history)
}

/// The gradient of a batch of fewer than `B` samples, from one-sample passes: their gradients
/// averaged (or summed, for a summing loss) into `grad`; returns the batch's loss.
#[allow(clippy::too_many_arguments)]
fn partial_batch<N, L, S>(
    net: &N,
    loss: &L,
    inputs: &[<N as Batched<1>>::Sample],
    targets: &[S],
    indices: &[usize],
    (x1, target, ws): (
        &mut <N as Batched<1>>::Input,
        &mut <S as Target<<N as Batched<1>>::Output>>::Batch,
        &mut <N as Batched<1>>::Workspace,
    ),
    grad: &mut N,
    sample_grad: &mut N,
) -> Result<f64, TrainError>
where
    N: Batched<1>,
    S: Target<<N as Batched<1>>::Output>,
    L: Objective<
        N::Scalar,
        <N as Batched<1>>::Output,
        <S as Target<<N as Batched<1>>::Output>>::Batch,
    >,
{
    for param in grad.params_mut() {
        param.values.fill(constant(0.0));
    }
    let mut total = 0.0;
    for &index in indices {
        N::set_sample(x1, 0, &inputs[index]);
        S::gather_into(target, targets, &[index])
            .map_err(|error| invalid_target(error, &[index]))?;
        total += to_f64(N::backward(net, x1, target, loss, ws, sample_grad));
        for (sum, sample) in grad.params_mut().zip(sample_grad.params()) {
            for (sum, &value) in sum.values.iter_mut().zip(sample.values) {
                *sum += value;
            }
        }
    }
    if L::REDUCTION == Reduction::Mean {
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
