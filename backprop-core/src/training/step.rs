//! The fused training step: forward, loss, and a backward pass that applies the optimizer's
//! update to each layer as soon as its gradient is known, with no gradient buffer.
//!
//! [`Model::train_step`](crate::model::Model::train_step) and
//! [`Model::try_train_step`](crate::model::Model::try_train_step) (the checked step the training loop takes)
//! are built from the two visitors here. Their result is bit for bit `backward` followed by
//! [`Optimizer::step`](crate::optim::Optimizer::step) (or `try_step`): the gradient entries are
//! made by the kernels `set_gradient` uses ([`Linear::weight_gradient_chunks`]), and the
//! optimizer's [`FusedStep::update`] is the one its own step calls (for one sample, SGD's
//! [`FusedStep::update_columns`], which applies the same per-entry rules).
//!
//! ```
//! use backprop::prelude::*;
//!
//! backprop::network! { struct Net < 2 => tanh 8 => 1 > }
//!
//! let (x, y) = ([[0.0, 1.0], [1.0, 0.0]], SMatrix::<f64, 1, 2>::new(1.0, -1.0));
//! let mut fused = Net::<f64>::init(3);
//! let mut unfused = fused.clone();
//! let (mut adam, mut adam2) = (Adam::new(0.01), Adam::new(0.01));
//! let (mut ws, mut grad) = (fused.workspace::<2>(), Net::zeros());
//! for _ in 0..10 {
//!     let loss = fused.train_step(&x, &y, &Mse, &mut ws, &mut adam);
//!     assert_eq!(loss, unfused.backward(&x, &y, &Mse, &mut ws, &mut grad));
//!     adam2.step(&mut unfused, &grad);
//! }
//! assert_eq!(fused, unfused); // the same bits
//! ```

use core::fmt;
use core::marker::PhantomData;

use nalgebra::SMatrix;

use crate::kernels::Runs;
use crate::linear::Linear;
use crate::network::Network;
use crate::optim::fused::{run_of, run_of_ref};
use crate::optim::{FusedStep, NonFiniteUpdate};
use crate::scalar::{to_f64, Scalar};
use crate::visitor::LayerVisitor;

/// Why [`Model::try_train_step`](crate::model::Model::try_train_step) changed nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepError {
    /// The loss is NaN or infinite.
    Loss(f64),
    /// A gradient entry of `parameter` (the first tensor in `state_dict` order with one) is NaN
    /// or infinite; the loss was `loss`.
    Gradient {
        /// The parameter tensor, such as `fc2.weight`.
        parameter: &'static str,
        /// The batch's loss (finite).
        loss: f64,
    },
    /// The gradient is finite but the update would write a NaN or an infinity.
    Update(NonFiniteUpdate),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Loss(loss) => write!(f, "the loss is {loss}"),
            StepError::Gradient { parameter, .. } => {
                write!(
                    f,
                    "the gradient of `{parameter}` has a NaN or infinite entry"
                )
            }
            StepError::Update(update) => update.fmt(f),
        }
    }
}

impl core::error::Error for StepError {}

/// Applies the optimizer's update to each layer it visits.
pub(crate) struct Apply<'o, N: Network, P: FusedStep<N>> {
    /// The optimizer.
    optimizer: &'o mut P,
    /// This step's constants.
    rule: P::Rule,
    /// The network type the optimizer steps.
    net: PhantomData<fn(&N)>,
}

impl<'o, N: Network, P: FusedStep<N>> Apply<'o, N, P> {
    /// Applies `optimizer`'s step with constants `rule`.
    pub(crate) fn new(optimizer: &'o mut P, rule: P::Rule) -> Self {
        Apply {
            optimizer,
            rule,
            net: PhantomData,
        }
    }
}

impl<N: Network, P: FusedStep<N>> LayerVisitor<N::Scalar> for Apply<'_, N, P> {
    /// Always inlined: left to LLVM, the seed network's three updates stayed calls, a tenth of
    /// its fused step (53.7 → 48.4 ns on a Zen 5).
    #[inline(always)]
    fn visit<const I: usize, const O: usize, const B: usize>(
        &mut self,
        layer: usize,
        linear: &mut Linear<N::Scalar, I, O>,
        delta: &SMatrix<N::Scalar, O, B>,
        input: &SMatrix<N::Scalar, I, B>,
    ) {
        at_vector_width(self, layer, linear, delta, input);
    }
}

impl<N: Network, P: FusedStep<N>> LayerWork<N::Scalar> for Apply<'_, N, P> {
    #[inline(always)]
    fn work<const I: usize, const O: usize, const B: usize>(
        &mut self,
        layer: usize,
        linear: &mut Linear<N::Scalar, I, O>,
        delta: &SMatrix<N::Scalar, O, B>,
        input: &SMatrix<N::Scalar, I, B>,
    ) {
        apply_layer(self, layer, linear, delta, input);
    }
}

/// What a visitor does to one layer, compiled at whichever vector width [`at_vector_width`]
/// picks: its `work` must be `#[inline(always)]`.
trait LayerWork<T: Scalar> {
    /// The visitor's work on one layer.
    fn work<const I: usize, const O: usize, const B: usize>(
        &mut self,
        layer: usize,
        linear: &mut Linear<T, I, O>,
        delta: &SMatrix<T, O, B>,
        input: &SMatrix<T, I, B>,
    );
}

/// Runs `visitor`'s work on a layer at the widest vectors the processor has. The work (an
/// optimizer's update or its check) has no multiply-add to fuse (Rust never contracts one), so
/// every instruction set gives the same bits. A tiny layer's work is a few vectors: the call
/// into another instruction set would cost more than it saves.
#[inline(always)]
fn at_vector_width<T: Scalar, W: LayerWork<T>, const I: usize, const O: usize, const B: usize>(
    visitor: &mut W,
    layer: usize,
    linear: &mut Linear<T, I, O>,
    delta: &SMatrix<T, O, B>,
    input: &SMatrix<T, I, B>,
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if I * O * core::mem::size_of::<T>() > crate::sizes::TINY_BYTES {
        match crate::arithmetic::level().isa {
            crate::arithmetic::Isa::Avx512 => {
                // SAFETY: `level` reports AVX-512 only where the processor has AVX-512F.
                unsafe { work_avx512(visitor, layer, linear, delta, input) };
                return;
            }
            crate::arithmetic::Isa::Avx2 => {
                // SAFETY: `level` reports AVX2 only where the processor has AVX2.
                unsafe { work_avx2(visitor, layer, linear, delta, input) };
                return;
            }
            crate::arithmetic::Isa::Baseline => {}
        }
    }
    visitor.work(layer, linear, delta, input);
}

/// [`LayerWork::work`] compiled for AVX-512.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
unsafe fn work_avx512<
    T: Scalar,
    W: LayerWork<T>,
    const I: usize,
    const O: usize,
    const B: usize,
>(
    visitor: &mut W,
    layer: usize,
    linear: &mut Linear<T, I, O>,
    delta: &SMatrix<T, O, B>,
    input: &SMatrix<T, I, B>,
) {
    visitor.work(layer, linear, delta, input);
}

/// [`LayerWork::work`] compiled for AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn work_avx2<T: Scalar, W: LayerWork<T>, const I: usize, const O: usize, const B: usize>(
    visitor: &mut W,
    layer: usize,
    linear: &mut Linear<T, I, O>,
    delta: &SMatrix<T, O, B>,
    input: &SMatrix<T, I, B>,
) {
    visitor.work(layer, linear, delta, input);
}

/// One layer's update from its δ and input, each run applied as it is made.
#[inline(always)]
fn apply_layer<N: Network, P: FusedStep<N>, const I: usize, const O: usize, const B: usize>(
    apply: &mut Apply<'_, N, P>,
    layer: usize,
    linear: &mut Linear<N::Scalar, I, O>,
    delta: &SMatrix<N::Scalar, O, B>,
    input: &SMatrix<N::Scalar, I, B>,
) {
    let (weight, bias) = linear.tensors_mut();
    if B == 1 && P::SCALED_COLUMNS && Linear::<N::Scalar, I, O>::PRODUCT_COLUMNS {
        if let Some(delta) = delta.as_slice().first_chunk::<O>() {
            // One sample: weight column j's gradient is δ · x_j, made where it is read.
            apply
                .optimizer
                .update_columns(&apply.rule, 2 * layer, weight, delta, input.as_slice());
            apply
                .optimizer
                .update(&apply.rule, 2 * layer + 1, 0, bias, delta);
            return;
        }
    }
    let runs = UpdateRuns::<N, P> {
        optimizer: &mut *apply.optimizer,
        rule: &apply.rule,
        tensor: 2 * layer,
        weight,
        net: PhantomData,
    };
    Linear::<N::Scalar, I, O>::weight_gradient_runs(delta, input, runs);
    let grads = Linear::<N::Scalar, I, O>::bias_gradient(delta);
    apply
        .optimizer
        .update(&apply.rule, 2 * layer + 1, 0, bias, grads.as_slice());
}

/// One weight tensor's gradient runs, each applied as it is made.
struct UpdateRuns<'a, N: Network, P: FusedStep<N>> {
    /// The optimizer.
    optimizer: &'a mut P,
    /// This step's constants.
    rule: &'a P::Rule,
    /// The weight's index among the parameter tensors.
    tensor: usize,
    /// The weight, column-major.
    weight: &'a mut [N::Scalar],
    /// The network type the optimizer steps.
    net: PhantomData<fn(&N)>,
}

impl<N: Network, P: FusedStep<N>> Runs<N::Scalar> for UpdateRuns<'_, N, P> {
    #[inline(always)]
    fn run(&mut self, offset: usize, grads: &[N::Scalar]) {
        let params = run_of(self.weight, offset, grads.len());
        self.optimizer
            .update(self.rule, self.tensor, offset, params, grads);
    }
}

/// Checks, writing nothing, what the optimizer's update of each visited layer would write.
pub(crate) struct Check<'o, N: Network, P: FusedStep<N>> {
    /// The optimizer.
    optimizer: &'o P,
    /// This step's constants.
    rule: P::Rule,
    /// The first (in tensor order, then entry) update that would not be finite: tensor, entry,
    /// what.
    update: Option<(usize, usize, &'static str)>,
    /// The first tensor with a NaN or infinite gradient entry.
    gradient: Option<usize>,
    /// The network type the optimizer steps.
    net: PhantomData<fn(&N)>,
}

impl<'o, N: Network, P: FusedStep<N>> Check<'o, N, P> {
    /// A check of `optimizer`'s step with constants `rule`, nothing found yet.
    pub(crate) fn new(optimizer: &'o P, rule: P::Rule) -> Self {
        Check {
            optimizer,
            rule,
            update: None,
            gradient: None,
            net: PhantomData,
        }
    }

    /// Records a bad update of `tensor`'s entry `index` (`bad_gradient`: whether the gradient
    /// entries the check read there hold a NaN or an infinity).
    fn found(&mut self, tensor: usize, index: usize, what: &'static str, bad_gradient: bool) {
        if self.update.is_none_or(|(t, i, _)| (tensor, index) < (t, i)) {
            self.update = Some((tensor, index, what));
        }
        // Every update rule turns a non-finite gradient entry into a bad update, so a bad
        // gradient is only looked for where an update failed.
        if bad_gradient && self.gradient.is_none_or(|t| tensor < t) {
            self.gradient = Some(tensor);
        }
    }

    /// The error the check found, naming tensors by their place in `net`.
    pub(crate) fn error(&self, net: &N, loss: f64) -> Option<StepError> {
        let optimizer = self.optimizer.optimizer_name();
        let name = |tensor: usize| net.params().nth(tensor);
        if let Some(param) = self.gradient.and_then(name) {
            return Some(StepError::Gradient {
                parameter: param.name,
                loss,
            });
        }
        let (tensor, index, value) = self.update?;
        let param = name(tensor)?;
        let rows = param.rows.max(1);
        let (row, col) = (index % rows, index / rows);
        Some(StepError::Update(NonFiniteUpdate {
            optimizer,
            parameter: param.name,
            row,
            col,
            value,
        }))
    }
}

impl<N: Network, P: FusedStep<N>> LayerVisitor<N::Scalar> for Check<'_, N, P> {
    #[inline]
    fn visit<const I: usize, const O: usize, const B: usize>(
        &mut self,
        layer: usize,
        linear: &mut Linear<N::Scalar, I, O>,
        delta: &SMatrix<N::Scalar, O, B>,
        input: &SMatrix<N::Scalar, I, B>,
    ) {
        at_vector_width(self, layer, linear, delta, input);
    }
}

impl<N: Network, P: FusedStep<N>> LayerWork<N::Scalar> for Check<'_, N, P> {
    #[inline(always)]
    fn work<const I: usize, const O: usize, const B: usize>(
        &mut self,
        layer: usize,
        linear: &mut Linear<N::Scalar, I, O>,
        delta: &SMatrix<N::Scalar, O, B>,
        input: &SMatrix<N::Scalar, I, B>,
    ) {
        check_layer(self, layer, linear, delta, input);
    }
}

/// One layer's would-be update checked, run by run as its gradient is made.
#[inline(always)]
fn check_layer<N: Network, P: FusedStep<N>, const I: usize, const O: usize, const B: usize>(
    check: &mut Check<'_, N, P>,
    layer: usize,
    linear: &Linear<N::Scalar, I, O>,
    delta: &SMatrix<N::Scalar, O, B>,
    input: &SMatrix<N::Scalar, I, B>,
) {
    let (weight, bias) = linear.tensors();
    let tensor = 2 * layer;
    if B == 1 && P::SCALED_COLUMNS && Linear::<N::Scalar, I, O>::PRODUCT_COLUMNS {
        if let Some(delta) = delta.as_slice().first_chunk::<O>() {
            // One sample, as `apply_layer` updates it: column j's gradient is δ · x_j.
            let input = input.as_slice();
            let found = check
                .optimizer
                .check_columns(&check.rule, tensor, weight, delta, input);
            if let Some((i, what)) = found {
                // Only on a refused step: is any entry of the gradient itself non-finite?
                let bad = input
                    .iter()
                    .any(|&x| delta.iter().any(|&d| !to_f64(d * x).is_finite()));
                check.found(tensor, i, what, bad);
            }
            check_bias(check, tensor + 1, bias, delta.as_slice());
            return;
        }
    }
    let runs = CheckRuns {
        check: &mut *check,
        weight,
        tensor,
    };
    Linear::<N::Scalar, I, O>::weight_gradient_runs(delta, input, runs);
    let grads = Linear::<N::Scalar, I, O>::bias_gradient(delta);
    check_bias(check, tensor + 1, bias, grads.as_slice());
}

/// Checks the bias `tensor`'s update by its gradient `grads`.
#[inline(always)]
fn check_bias<N: Network, P: FusedStep<N>>(
    check: &mut Check<'_, N, P>,
    tensor: usize,
    bias: &[N::Scalar],
    grads: &[N::Scalar],
) {
    let found = check.optimizer.check(&check.rule, tensor, 0, bias, grads);
    if let Some((i, what)) = found {
        check.found(tensor, i, what, non_finite(grads));
    }
}

/// Whether any entry is NaN or infinite.
fn non_finite<T: Scalar>(values: &[T]) -> bool {
    values.iter().any(|v| !to_f64(*v).is_finite())
}

/// One weight tensor's gradient runs, each checked as it is made.
struct CheckRuns<'a, 'o, N: Network, P: FusedStep<N>> {
    /// The check under way.
    check: &'a mut Check<'o, N, P>,
    /// The weight, column-major.
    weight: &'a [N::Scalar],
    /// The weight's index among the parameter tensors.
    tensor: usize,
}

impl<N: Network, P: FusedStep<N>> Runs<N::Scalar> for CheckRuns<'_, '_, N, P> {
    #[inline(always)]
    fn run(&mut self, offset: usize, grads: &[N::Scalar]) {
        let params = run_of_ref(self.weight, offset, grads.len());
        let check = &mut *self.check;
        if let Some((i, what)) =
            check
                .optimizer
                .check(&check.rule, self.tensor, offset, params, grads)
        {
            check.found(self.tensor, offset + i, what, non_finite(grads));
        }
    }
}
