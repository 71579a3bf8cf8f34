//! [`FusedStep`]: an optimizer whose update is entry by entry, so that it can be applied to a
//! layer's gradient as the backward pass makes it, with no gradient buffer.
//!
//! Every optimizer here implements it, and its own [`Optimizer::step`] and
//! [`Optimizer::try_step`] are [`step_by_tensors`] and [`try_step_by_tensors`]: the unfused step
//! walks whole gradient tensors through the same [`FusedStep::update`] that the fused step
//! ([`Model::train_step`](crate::model::Model::train_step)) calls on runs of entries. An entry's
//! new value depends on that entry alone, so the two give the same bits by construction; SGD's
//! one-sample [`FusedStep::update_columns`] applies the same per-entry rules as its `update`
//! (`tests/suite/fused.rs` checks both for every configuration of the optimizer fixtures).

use crate::network::Network;
use crate::optim::{position, NonFiniteUpdate, Optimizer};

/// An elementwise optimizer: one step is [`FusedStep::begin_step`], then
/// [`FusedStep::update`] on every entry of every parameter tensor exactly once, in any order of
/// runs, then [`FusedStep::end_step`].
///
/// A new optimizer implements this (and [`Optimizer`], whose `step` and `try_step` can be
/// [`step_by_tensors`] and [`try_step_by_tensors`]) to train with the fused step.
pub trait FusedStep<N: Network>: Optimizer<N> {
    /// One step's constants (learning rate, bias corrections), computed once per step.
    type Rule: Copy;

    /// Whether the fused step should hand a one-sample gradient, as δ and the layer's input,
    /// to [`FusedStep::update_columns`] (best for an update as cheap as SGD's) rather than in runs of
    /// several columns through [`FusedStep::update`] (best where each call finds more state).
    const SCALED_COLUMNS: bool = false;

    /// The constants of the next step. Makes the optimizer's state if it does not exist yet
    /// (as [`Optimizer::prepare`] does) and changes nothing else: the step counts only once
    /// [`FusedStep::end_step`] is called.
    fn begin_step(&mut self) -> Self::Rule;

    /// Updates entries `offset .. offset + params.len()` of parameter tensor `tensor` (its index in
    /// [`Network::params`] order), and the optimizer's state for them, from their gradient
    /// `grads`, as one step of `rule`.
    fn update(
        &mut self,
        rule: &Self::Rule,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        grads: &[N::Scalar],
    );

    /// [`FusedStep::update`] with the gradient `grads[i] = delta[i] · x` (one sample's rank-one
    /// gradient, a weight column at a time), bit for bit: an optimizer makes each product where
    /// it reads it, so the gradient never goes through memory. The provided method makes the
    /// products into a small buffer and calls `update`.
    #[inline(always)]
    fn update_scaled(
        &mut self,
        rule: &Self::Rule,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        delta: &[N::Scalar],
        x: N::Scalar,
    ) {
        const RUN: usize = 64;
        let mut grads = [x; RUN];
        for (start, (params, delta)) in params.chunks_mut(RUN).zip(delta.chunks(RUN)).enumerate() {
            let grads = &mut grads[..delta.len()];
            for (g, &d) in grads.iter_mut().zip(delta) {
                *g = d * x;
            }
            self.update(
                rule,
                tensor,
                offset.saturating_add(start * RUN),
                params,
                grads,
            );
        }
    }

    /// [`FusedStep::update`] of a whole weight tensor from one sample's gradient, bit for bit:
    /// `weight` is all of tensor `tensor` (column-major, `O` rows), and its column `j` takes the
    /// gradient `delta · input[j]`. The provided method calls `update_scaled` column by column;
    /// an optimizer overrides it to choose its rule once for the whole tensor and keep `delta`
    /// in registers, each entry through the same rule as `update`.
    #[inline(always)]
    fn update_columns<const O: usize>(
        &mut self,
        rule: &Self::Rule,
        tensor: usize,
        weight: &mut [N::Scalar],
        delta: &[N::Scalar; O],
        input: &[N::Scalar],
    ) {
        for (j, (column, &x)) in weight.chunks_exact_mut(O.max(1)).zip(input).enumerate() {
            self.update_scaled(rule, tensor, j * O, column, delta, x);
        }
    }

    /// The first of these entries that [`FusedStep::update`] would make non-finite, as its
    /// index in `params` and what would become non-finite (`weight`, `first moment`, ...);
    /// writes nothing.
    fn check(
        &self,
        rule: &Self::Rule,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        grads: &[N::Scalar],
    ) -> Option<(usize, &'static str)>;

    /// [`FusedStep::check`] of the gradient `grads[i] = delta[i] · x`, as
    /// [`FusedStep::update_scaled`] would apply it (the index is in `params`). The provided
    /// method makes the products into a small buffer and calls `check`.
    #[inline(always)]
    fn check_scaled(
        &self,
        rule: &Self::Rule,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        delta: &[N::Scalar],
        x: N::Scalar,
    ) -> Option<(usize, &'static str)> {
        const RUN: usize = 64;
        let mut grads = [x; RUN];
        for (start, (params, delta)) in params.chunks(RUN).zip(delta.chunks(RUN)).enumerate() {
            let grads = &mut grads[..delta.len()];
            for (g, &d) in grads.iter_mut().zip(delta) {
                *g = d * x;
            }
            if let Some((i, what)) = self.check(
                rule,
                tensor,
                offset.saturating_add(start * RUN),
                params,
                grads,
            ) {
                return Some((start * RUN + i, what));
            }
        }
        None
    }

    /// [`FusedStep::check`] of what [`FusedStep::update_columns`] would write (one sample's
    /// rank-one gradient `δ · inputᵀ` over the whole tensor): the first failing entry in
    /// column-major order. The provided method checks a column at a time through
    /// [`FusedStep::check_scaled`].
    #[inline(always)]
    fn check_columns<const O: usize>(
        &self,
        rule: &Self::Rule,
        tensor: usize,
        weight: &[N::Scalar],
        delta: &[N::Scalar; O],
        input: &[N::Scalar],
    ) -> Option<(usize, &'static str)> {
        for (j, (column, &x)) in weight.chunks_exact(O.max(1)).zip(input).enumerate() {
            if let Some((i, what)) = self.check_scaled(rule, tensor, j * O, column, delta, x) {
                return Some((j * O + i, what));
            }
        }
        None
    }

    /// Counts the step that was applied (Adam's step number, SGD's started momentum).
    fn end_step(&mut self);

    /// torch's name for the optimizer, for errors (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`).
    fn optimizer_name(&self) -> &'static str;
}

/// [`Optimizer::step`] through [`FusedStep`]: each whole tensor of `grad` handed to `update`
/// (compiled for the processor's widest vectors, as the fused step's updates are).
pub fn step_by_tensors<N: Network, P: FusedStep<N>>(optimizer: &mut P, net: &mut N, grad: &N) {
    let rule = optimizer.begin_step();
    for (tensor, (param, grad)) in net.params_mut().zip(grad.params()).enumerate() {
        update_at_vector_width(optimizer, &rule, tensor, param.values, grad.values);
    }
    optimizer.end_step();
}

/// `optimizer.update` of a whole tensor at the widest vectors the processor has, as the fused
/// step runs its updates: an elementwise update fuses no multiply-add (Rust never contracts
/// one), so every width gives the same bits. A tiny tensor's update stays where it is: the
/// call into another instruction set would cost more than it saves. The fused step's own
/// dispatch (`at_vector_width` in `training/step.rs`) is the same choice over a layer; one
/// helper taking a closure for both measured W2's fused SGD step 293 → 446 ns, so each keeps
/// its own wrappers.
#[inline(always)]
fn update_at_vector_width<N: Network, P: FusedStep<N>>(
    optimizer: &mut P,
    rule: &P::Rule,
    tensor: usize,
    params: &mut [N::Scalar],
    grads: &[N::Scalar],
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if core::mem::size_of_val(params) > crate::sizes::TINY_BYTES {
        match crate::arithmetic::level().isa {
            crate::arithmetic::Isa::Avx512 => {
                // SAFETY: `level` reports AVX-512 only where the processor has AVX-512F.
                unsafe { x86::update_avx512(optimizer, rule, tensor, params, grads) };
                return;
            }
            crate::arithmetic::Isa::Avx2 => {
                // SAFETY: `level` reports AVX2 only where the processor has AVX2.
                unsafe { x86::update_avx2(optimizer, rule, tensor, params, grads) };
                return;
            }
            crate::arithmetic::Isa::Baseline => {}
        }
    }
    optimizer.update(rule, tensor, 0, params, grads);
}

/// [`FusedStep::update`] of a whole tensor compiled for AVX-512 and for AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
    use super::FusedStep;
    use crate::network::Network;

    /// Declares `$name`: `optimizer.update` of tensor `tensor`, from offset 0, compiled with
    /// `$features`.
    macro_rules! update_with {
        ($name:ident, $features:literal) => {
            #[doc = concat!("`optimizer.update` of a whole tensor, compiled with `", $features, "`.")]
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<N: Network, P: FusedStep<N>>(
                optimizer: &mut P,
                rule: &P::Rule,
                tensor: usize,
                params: &mut [N::Scalar],
                grads: &[N::Scalar],
            ) {
                optimizer.update(rule, tensor, 0, params, grads);
            }
        };
    }

    update_with!(update_avx512, "avx512f");
    update_with!(update_avx2, "avx2");
}

/// [`Optimizer::try_step`] through [`FusedStep`]: every tensor checked first, then updated.
pub fn try_step_by_tensors<N: Network, P: FusedStep<N>>(
    optimizer: &mut P,
    net: &mut N,
    grad: &N,
) -> Result<(), NonFiniteUpdate> {
    let rule = optimizer.begin_step();
    for (tensor, (param, grad)) in net.params().zip(grad.params()).enumerate() {
        if let Some((index, value)) = optimizer.check(&rule, tensor, 0, param.values, grad.values) {
            let (row, col) = position(index, param.rows);
            return Err(NonFiniteUpdate {
                optimizer: optimizer.optimizer_name(),
                parameter: param.name,
                row,
                col,
                value,
            });
        }
    }
    for (tensor, (param, grad)) in net.params_mut().zip(grad.params()).enumerate() {
        update_at_vector_width(optimizer, &rule, tensor, param.values, grad.values);
    }
    optimizer.end_step();
    Ok(())
}

/// Entries `offset .. offset + len` of `tensor`, or an empty slice when out of range (a caller
/// breaking [`FusedStep`]'s contract gets nothing updated, never a panic).
#[inline(always)]
pub(crate) fn run_of<T>(tensor: &mut [T], offset: usize, len: usize) -> &mut [T] {
    let end = offset.saturating_add(len).min(tensor.len());
    tensor.get_mut(offset.min(end)..end).unwrap_or_default()
}

/// [`run_of`] for reading.
#[inline(always)]
pub(crate) fn run_of_ref<T>(tensor: &[T], offset: usize, len: usize) -> &[T] {
    let end = offset.saturating_add(len).min(tensor.len());
    tensor.get(offset.min(end)..end).unwrap_or_default()
}
