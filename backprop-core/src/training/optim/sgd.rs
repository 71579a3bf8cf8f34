//! Stochastic gradient descent as `torch.optim.SGD` computes it.

use crate::heap::{boxed, Boxed};
use crate::network::Network;
use crate::optim::fused::{run_of, run_of_ref, step_by_tensors, try_step_by_tensors, FusedStep};
use crate::optim::{
    finite_test, require, require_finite, NonFiniteUpdate, Optimizer, OptimizerError,
};
use crate::scalar::{constant, Scalar};

/// `torch.optim.SGD`: learning rate, momentum, dampening, Nesterov momentum and weight decay.
///
/// Per parameter `p` with gradient `g`: `g ← g + weight_decay · p`; with momentum, the buffer is
/// `b ← g` on the first step and `b ← momentum · b + (1 − dampening) · g` after, and the step
/// direction is `g + momentum · b` (Nesterov) or `b`; then `p ← p − lr · direction`.
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > } // y = w·x + b
///
/// let mut net = Net::<f64>::zeros();
/// net.fc1.weight[(0, 0)] = 2.0;
/// let (x, y) = (SVector::<f64, 1>::new(3.0), SVector::<f64, 1>::new(5.0));
/// let mut grad = Net::zeros();
/// // Output 2·3 + 0 = 6, MSE (6 − 5)² = 1; ∂/∂w = 2·(6 − 5)·3 = 6, ∂/∂b = 2·(6 − 5) = 2.
/// let loss = net.backward(&x, &y, &Mse, &mut net.workspace(), &mut grad);
/// assert_eq!(loss, 1.0);
///
/// let mut sgd = Sgd::new(0.1);
/// sgd.step(&mut net, &grad);
/// // w ← 2 − 0.1·6 = 1.4, b ← 0 − 0.1·2 = −0.2
/// assert!((net.fc1.weight[(0, 0)] - 1.4).abs() < 1e-12);
/// assert!((net.fc1.bias[0] + 0.2).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd<N> {
    /// The learning rate.
    pub lr: f64,
    /// The momentum factor (0: none).
    pub momentum: f64,
    /// The dampening of the momentum.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// The momentum buffer, shaped like the network; made by `prepare` or the first step with
    /// momentum.
    buffer: Option<Boxed<N>>,
    /// Whether the buffer holds a momentum yet (torch starts it from the first gradient).
    started: bool,
}

impl<N> Sgd<N> {
    /// SGD with learning rate `lr` and PyTorch's other defaults (no momentum, no weight decay).
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            buffer: None,
            started: false,
        }
    }

    /// With momentum: the buffer starts as the first gradient, then `b ← momentum · b + g`.
    ///
    /// ```
    /// use backprop::prelude::*;
    ///
    /// backprop::network! { struct Net < 1 => 1 > }
    ///
    /// let mut net = Net::<f64>::zeros();
    /// let mut grad = Net::zeros();
    /// grad.fc1.weight[(0, 0)] = 1.0; // the same gradient at every step
    /// let mut sgd = Sgd::new(0.5).momentum(0.5);
    /// sgd.step(&mut net, &grad); // b = 1:             w = 0 − 0.5·1    = −0.5
    /// sgd.step(&mut net, &grad); // b = 0.5·1 + 1 = 1.5: w = −0.5 − 0.5·1.5 = −1.25
    /// assert_eq!(net.fc1.weight[(0, 0)], -1.25);
    /// ```
    pub fn momentum(self, momentum: f64) -> Self {
        Sgd { momentum, ..self }
    }

    /// With dampening of the momentum.
    pub fn dampening(self, dampening: f64) -> Self {
        Sgd { dampening, ..self }
    }

    /// With Nesterov momentum.
    pub fn nesterov(self, nesterov: bool) -> Self {
        Sgd { nesterov, ..self }
    }

    /// With weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        Sgd {
            weight_decay,
            ..self
        }
    }
}

/// One step's constants, converted to the scalar once.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    /// The learning rate.
    lr: T,
    /// The L2 penalty.
    decay: T,
    /// The momentum factor.
    momentum: T,
    /// `1 − dampening`.
    keep: T,
}

impl<T: Scalar> Coefficients<T> {
    /// The constants of `sgd`'s step.
    fn of<N>(sgd: &Sgd<N>) -> Self {
        Coefficients {
            lr: constant(sgd.lr),
            decay: constant(sgd.weight_decay),
            momentum: constant(sgd.momentum),
            keep: constant(1.0 - sgd.dampening),
        }
    }
}

/// The new weight of one entry under the plain rule, `p + (−lr) · g`, as torch's
/// `param.add_(grad, alpha=-lr)`.
#[inline(always)]
fn plain_entry<T: Scalar>(alpha: T, p: T, g: T) -> T {
    p + alpha * g
}

/// The new weight of one entry with weight decay and no momentum, `p − lr · (g + decay · p)`.
#[inline(always)]
fn decay_entry<T: Scalar>(k: &Coefficients<T>, p: T, g: T) -> T {
    p - k.lr * (g + k.decay * p)
}

/// The new weight and momentum buffer of one entry with momentum, as torch orders the arithmetic.
#[inline(always)]
fn momentum_entry<T: Scalar>(
    k: &Coefficients<T>,
    decayed: bool,
    nesterov: bool,
    first: bool,
    p: T,
    g: T,
    b: T,
) -> (T, T) {
    let g = if decayed { g + k.decay * p } else { g };
    let b = if first {
        g
    } else {
        b * k.momentum + k.keep * g
    };
    let direction = if nesterov { g + k.momentum * b } else { b };
    (p - k.lr * direction, b)
}

/// What one SGD step does to an entry, chosen once per step.
#[derive(Clone, Copy)]
enum Mode {
    /// `p ← p + (−lr) · g`, as torch's `param.add_(grad, alpha=-lr)`.
    Plain,
    /// `p ← p − lr · (g + weight_decay · p)`.
    Decay,
    /// With a momentum buffer (and weight decay if `decayed`).
    Momentum {
        /// Weight decay is on.
        decayed: bool,
        /// Nesterov momentum.
        nesterov: bool,
        /// The buffer starts as this step's gradient.
        first: bool,
    },
}

/// One SGD step's constants: [`FusedStep::Rule`] for [`Sgd`].
#[derive(Clone, Copy)]
pub struct SgdRule<T> {
    /// The constants, in the scalar.
    k: Coefficients<T>,
    /// `−lr`.
    alpha: T,
    /// What the step does to an entry.
    mode: Mode,
}

impl<N: Network> Sgd<N> {
    /// [`FusedStep::update`] with the gradient entries from `grads`.
    #[inline(always)]
    fn update_with(
        &mut self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        grads: impl Iterator<Item = N::Scalar>,
    ) {
        let k = &rule.k;
        match rule.mode {
            Mode::Plain => {
                for (p, g) in params.iter_mut().zip(grads) {
                    *p = plain_entry(rule.alpha, *p, g);
                }
            }
            Mode::Decay => {
                for (p, g) in params.iter_mut().zip(grads) {
                    *p = decay_entry(k, *p, g);
                }
            }
            Mode::Momentum {
                decayed,
                nesterov,
                first,
            } => {
                let buffer: &mut N = self.buffer.get_or_insert_with(|| boxed(N::zeros));
                let buffer = run_of(buffer.tensor_mut(tensor), offset, params.len());
                for ((p, g), b) in params.iter_mut().zip(grads).zip(buffer) {
                    (*p, *b) = momentum_entry(k, decayed, nesterov, first, *p, g, *b);
                }
            }
        }
    }
}

impl<N: Network> Sgd<N> {
    /// Whether every entry [`FusedStep::update_columns`] would write is finite, for the plain
    /// and decay rules (`None` for momentum): the whole tensor at once, with no early exit and
    /// no branch per column, each column's test unrolled and kept apart as `columns` keeps its
    /// update.
    #[inline(always)]
    fn columns_finite<const O: usize>(
        &self,
        rule: &SgdRule<N::Scalar>,
        weight: &[N::Scalar],
        delta: &[N::Scalar; O],
        input: &[N::Scalar],
    ) -> Option<bool> {
        let k = &rule.k;
        let finite = finite_test::<N::Scalar>();
        let plain = match rule.mode {
            Mode::Plain => true,
            Mode::Decay => false,
            Mode::Momentum { .. } => return None,
        };
        let (columns, _) = weight.as_chunks::<O>();
        // Plain loops, not `fold`: a closure the compiler does not inline would run outside
        // the caller's vector instruction set.
        let mut fine = true;
        for (column, &x) in columns.iter().zip(input) {
            let column = core::hint::black_box(column);
            let mut column_fine = true;
            for (&p, &d) in column.iter().zip(delta) {
                let new = if plain {
                    plain_entry(rule.alpha, p, d * x)
                } else {
                    decay_entry(k, p, d * x)
                };
                column_fine &= finite(new);
            }
            fine &= column_fine;
        }
        Some(fine)
    }

    /// [`FusedStep::check`] with the gradient entries from `grads`: every entry's new value
    /// computed by the rule `update_with` applies, and nothing written.
    #[inline(always)]
    fn check_with(
        &self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        grads: impl Iterator<Item = N::Scalar> + Clone,
    ) -> Option<(usize, &'static str)> {
        let k = &rule.k;
        let finite = finite_test::<N::Scalar>();
        let entries = params.iter().copied().zip(grads);
        match rule.mode {
            Mode::Plain | Mode::Decay => {
                let plain = matches!(rule.mode, Mode::Plain);
                let new = |(p, g): (N::Scalar, N::Scalar)| {
                    if plain {
                        plain_entry(rule.alpha, p, g)
                    } else {
                        decay_entry(k, p, g)
                    }
                };
                if entries.clone().fold(true, |ok, e| ok & finite(new(e))) {
                    return None;
                }
                let index = entries.clone().position(|e| !finite(new(e)));
                Some((index.unwrap_or(0), "weight"))
            }
            Mode::Momentum {
                decayed,
                nesterov,
                first,
            } => {
                // The buffer exists (`begin_step` made it); the first step does not read it
                // (`params` stands in for it before then).
                let buffer = self.buffer.as_ref().map_or(params, |b| {
                    run_of_ref(b.tensor(tensor), offset, params.len())
                });
                let new = |((p, g), &b): ((N::Scalar, N::Scalar), &N::Scalar)| {
                    momentum_entry(k, decayed, nesterov, first, p, g, b)
                };
                let both = |(p, b): (N::Scalar, N::Scalar)| finite(p) & finite(b);
                let entries = entries.zip(buffer);
                if entries.clone().fold(true, |ok, e| ok & both(new(e))) {
                    return None;
                }
                for (i, e) in entries.enumerate() {
                    let (p, b) = new(e);
                    if !finite(b) {
                        return Some((i, "momentum buffer"));
                    }
                    if !finite(p) {
                        return Some((i, "weight"));
                    }
                }
                None
            }
        }
    }
}

impl<N: Network> Sgd<N> {
    /// [`FusedStep::update_columns`]: column `j` of `weight` takes `delta · input[j]`, each
    /// entry through the rule `update` applies.
    #[inline(always)]
    fn columns<const O: usize>(
        &mut self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        weight: &mut [N::Scalar],
        delta: &[N::Scalar; O],
        input: &[N::Scalar],
    ) {
        if O == 0 {
            return;
        }
        let k = &rule.k;
        let (columns, _) = weight.as_chunks_mut::<O>();
        let columns = columns.iter_mut().zip(input);
        match rule.mode {
            Mode::Plain if !O.is_multiple_of(16) && 2 * O <= PAIR_ROWS => {
                // Columns that do not fill vector registers, two at a time: one run of 2·O
                // entries takes δ twice over and each column's input for its half, the same
                // arithmetic per entry (W2's 10-row columns: 16 + 4 lanes for two columns,
                // not 8 + 2 for each).
                let mut twice = [nalgebra::zero::<N::Scalar>(); PAIR_ROWS];
                twice[..O].copy_from_slice(delta);
                twice[O..2 * O].copy_from_slice(delta);
                let (pairs, last) = weight.as_chunks_mut::<O>().0.as_chunks_mut::<2>();
                for (pair, x) in pairs.iter_mut().zip(input.chunks_exact(2)) {
                    let pair = opaque(pair).as_flattened_mut();
                    for (i, (p, &d)) in pair.iter_mut().zip(&twice).enumerate() {
                        let x = if i < O { x[0] } else { x[1] };
                        *p = plain_entry(rule.alpha, *p, d * x);
                    }
                }
                let rest = input.get(2 * pairs.len()..).unwrap_or_default();
                plain_columns(rule.alpha, last.iter_mut().zip(rest), delta);
            }
            Mode::Plain => plain_columns(rule.alpha, columns, delta),
            Mode::Decay => {
                for (column, &x) in columns {
                    let column = opaque(column);
                    for (p, &d) in column.iter_mut().zip(delta) {
                        *p = decay_entry(k, *p, d * x);
                    }
                }
            }
            Mode::Momentum {
                decayed,
                nesterov,
                first,
            } => {
                let buffer: &mut N = self.buffer.get_or_insert_with(|| boxed(N::zeros));
                let buffer = run_of(buffer.tensor_mut(tensor), 0, usize::MAX);
                let (buffers, _) = buffer.as_chunks_mut::<O>();
                for ((column, &x), buffer) in columns.zip(buffers) {
                    let column = opaque(column);
                    for ((p, b), &d) in column.iter_mut().zip(buffer).zip(delta) {
                        (*p, *b) = momentum_entry(k, decayed, nesterov, first, *p, d * x, *b);
                    }
                }
            }
        }
    }
}

/// Plain SGD down each column of `columns`, which takes `delta · x` for its input `x`.
#[inline(always)]
fn plain_columns<'a, T: Scalar, const O: usize>(
    alpha: T,
    columns: impl Iterator<Item = (&'a mut [T; O], &'a T)>,
    delta: &[T; O],
) {
    for (column, &x) in columns {
        // Opaque to the compiler, which unrolls each column's loop (its length is known). Else
        // LLVM vectorises across columns with gathers (measured several times slower), and a
        // loop of unknown length down a column of 10 entries makes masked vectors whose stores
        // stall the next column's loads.
        let column = opaque(column);
        for (p, &d) in column.iter_mut().zip(delta) {
            *p = plain_entry(alpha, *p, d * x);
        }
    }
}

/// `column`, its address hidden from the compiler, so that it cannot see that consecutive
/// columns are adjacent and vectorise across them (see [`Sgd::columns`]). On x86-64 and aarch64
/// an empty `asm!` hides the address in its register; `core::hint::black_box`, the fallback
/// elsewhere, sends it through the stack every column (W2's fused step 3 % slower on a Zen 5).
#[inline(always)]
fn opaque<T, const O: usize>(column: &mut [T; O]) -> &mut [T; O] {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let mut address: *mut [T; O] = column;
        // SAFETY: the empty assembly leaves the register as it found it, so `address` is still
        // `column`'s, exclusively borrowed for the same lifetime.
        unsafe {
            core::arch::asm!(
                "/* {0} */",
                inout(reg) address,
                options(nostack, preserves_flags)
            );
            &mut *address
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    core::hint::black_box(column)
}

/// The largest δ, in bytes, that [`FusedStep::update_columns`] copies into registers (a
/// larger one is read where it lies, never copied through the stack).
const DELTA_COPY_BYTES: usize = 1024;

/// The longest pair of columns [`Sgd::columns`] updates as one run.
const PAIR_ROWS: usize = 32;

impl<N: Network> FusedStep<N> for Sgd<N> {
    type Rule = SgdRule<N::Scalar>;
    const SCALED_COLUMNS: bool = true;

    fn begin_step(&mut self) -> SgdRule<N::Scalar> {
        // The buffer is made by the first update that needs it, not here: a refused step
        // leaves the optimizer exactly as it was.
        let mode = if self.momentum != 0.0 {
            Mode::Momentum {
                decayed: self.weight_decay != 0.0,
                nesterov: self.nesterov,
                first: !self.started,
            }
        } else if self.weight_decay != 0.0 {
            Mode::Decay
        } else {
            Mode::Plain
        };
        SgdRule {
            k: Coefficients::of(self),
            alpha: constant(-self.lr),
            mode,
        }
    }

    #[inline(always)]
    fn update(
        &mut self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        grads: &[N::Scalar],
    ) {
        self.update_with(rule, tensor, offset, params, grads.iter().copied());
    }

    #[inline(always)]
    fn update_scaled(
        &mut self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        delta: &[N::Scalar],
        x: N::Scalar,
    ) {
        let grads = delta.iter().map(|&d| d * x);
        self.update_with(rule, tensor, offset, params, grads);
    }

    #[inline(always)]
    fn update_columns<const O: usize>(
        &mut self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        weight: &mut [N::Scalar],
        delta: &[N::Scalar; O],
        input: &[N::Scalar],
    ) {
        if O * core::mem::size_of::<N::Scalar>() <= DELTA_COPY_BYTES {
            // A copy, which the weights cannot alias: the compiler keeps it in registers.
            let delta = *delta;
            self.columns(rule, tensor, weight, &delta, input);
        } else {
            self.columns(rule, tensor, weight, delta, input);
        }
    }

    #[inline(always)]
    fn check_columns<const O: usize>(
        &self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        weight: &[N::Scalar],
        delta: &[N::Scalar; O],
        input: &[N::Scalar],
    ) -> Option<(usize, &'static str)> {
        let fine = if O * core::mem::size_of::<N::Scalar>() <= DELTA_COPY_BYTES {
            // A copy, kept in registers, as `update_columns` keeps it.
            let delta = *delta;
            self.columns_finite(rule, weight, &delta, input)
        } else {
            self.columns_finite(rule, weight, delta, input)
        };
        if fine == Some(true) {
            return None;
        }
        // Refused (or with momentum): the first failing entry, a column at a time.
        let mut columns = weight.chunks_exact(O.max(1)).zip(input).enumerate();
        columns.find_map(|(j, (column, &x))| {
            let found = self.check_scaled(rule, tensor, j * O, column, delta, x);
            found.map(|(i, what)| (j * O + i, what))
        })
    }

    #[inline(always)]
    fn check(
        &self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        grads: &[N::Scalar],
    ) -> Option<(usize, &'static str)> {
        self.check_with(rule, tensor, offset, params, grads.iter().copied())
    }

    #[inline(always)]
    fn check_scaled(
        &self,
        rule: &SgdRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        delta: &[N::Scalar],
        x: N::Scalar,
    ) -> Option<(usize, &'static str)> {
        self.check_with(rule, tensor, offset, params, delta.iter().map(|&d| d * x))
    }

    fn end_step(&mut self) {
        if self.momentum != 0.0 {
            self.started = true;
        }
    }

    fn optimizer_name(&self) -> &'static str {
        "SGD"
    }
}

impl<N: Network> Optimizer<N> for Sgd<N> {
    fn step(&mut self, net: &mut N, grad: &N) {
        if self.momentum == 0.0 && self.weight_decay == 0.0 {
            // The plain rule as one generated pass over the layers, sizes static: the same
            // `p += (−lr) · g` per entry as `update`'s.
            net.axpy(constant(-self.lr), grad);
            return;
        }
        step_by_tensors(self, net, grad);
    }

    fn try_step(&mut self, net: &mut N, grad: &N) -> Result<(), NonFiniteUpdate> {
        try_step_by_tensors(self, net, grad)
    }

    fn prepare(&mut self) {
        if self.momentum != 0.0 {
            self.buffer.get_or_insert_with(|| boxed(N::zeros));
        }
    }

    fn validate(&self) -> Result<(), OptimizerError> {
        let name = "SGD";
        // Finite first, in f64 and in the scalar; then torch's ranges (and dampening in [0, 1],
        // which torch does not check: `1 − dampening` weighs the gradient).
        for (parameter, value) in [
            ("learning rate", self.lr),
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("weight_decay", self.weight_decay),
        ] {
            require_finite::<N::Scalar>(name, parameter, value)?;
        }
        require(
            self.lr >= 0.0,
            name,
            "learning rate",
            self.lr,
            "a number ≥ 0",
        )?;
        require(
            self.momentum >= 0.0,
            name,
            "momentum",
            self.momentum,
            "a number ≥ 0",
        )?;
        require(
            (0.0..=1.0).contains(&self.dampening),
            name,
            "dampening",
            self.dampening,
            "a number in [0, 1]",
        )?;
        require(
            self.weight_decay >= 0.0,
            name,
            "weight_decay",
            self.weight_decay,
            "a number ≥ 0",
        )?;
        require(
            !self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0),
            name,
            "Nesterov momentum",
            self.momentum,
            "momentum > 0 and dampening 0",
        )
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn momentum(&self) -> Option<f64> {
        Some(self.momentum)
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.momentum = momentum;
    }
}

#[cfg(feature = "std")]
impl<N: Network> crate::optim::OptimizerState<N> for Sgd<N> {
    fn name(&self) -> &'static str {
        "SGD"
    }

    fn counters(&self) -> std::vec::Vec<(&'static str, u64)> {
        std::vec![("started", u64::from(self.started))]
    }

    fn set_counter(&mut self, name: &str, value: u64) -> bool {
        match name {
            "started" => self.started = value != 0,
            _ => return false,
        }
        true
    }

    fn buffers(&self) -> std::vec::Vec<(&'static str, &N)> {
        self.buffer
            .as_deref()
            .filter(|_| self.momentum != 0.0)
            .map(|b| ("momentum_buffer", b))
            .into_iter()
            .collect()
    }

    fn buffers_mut(&mut self) -> std::vec::Vec<(&'static str, &mut N)> {
        self.prepare();
        let momentum = self.momentum;
        self.buffer
            .as_deref_mut()
            .filter(|_| momentum != 0.0)
            .map(|b| ("momentum_buffer", b))
            .into_iter()
            .collect()
    }
}
