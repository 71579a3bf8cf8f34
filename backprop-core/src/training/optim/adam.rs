//! Adam and AdamW as `torch.optim` computes them (the single-tensor implementation).

use nalgebra::ComplexField;

use crate::heap::{boxed, Boxed};
use crate::network::Network;
use crate::optim::fused::{run_of, run_of_ref, step_by_tensors, try_step_by_tensors, FusedStep};
use crate::optim::{
    finite_test, require, require_finite, NonFiniteUpdate, Optimizer, OptimizerError,
};
use crate::scalar::{constant, same, to_f64, Scalar};

/// `torch.optim.Adam`: learning rate, betas, eps, weight decay (added to the gradient) and AMSGrad.
///
/// Per parameter, at step `t`: `g ← g + weight_decay · p`; `m ← m + (1 − β1)(g − m)` (a lerp);
/// `v ← β2 v + (1 − β2) g²` (AMSGrad keeps `v̂ = max(v̂, v)` and uses it for `v`);
/// `p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)`.
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
/// // Output 6, MSE 1; ∂/∂w = 2·(6 − 5)·3 = 6, ∂/∂b = 2·(6 − 5) = 2.
/// net.backward(&x, &y, &Mse, &mut net.workspace(), &mut grad);
///
/// let mut adam = Adam::new(0.01);
/// Optimizer::<Net<f64>>::validate(&adam).unwrap();
/// adam.step(&mut net, &grad);
/// // First step: m = (1 − β1)·g and v = (1 − β2)·g², so after the bias corrections the
/// // step is lr·g / (|g| + eps): 0.01 against the gradient's sign, whatever its size.
/// assert!((net.fc1.weight[(0, 0)] - (2.0 - 0.01)).abs() < 1e-9);
/// assert!((net.fc1.bias[0] - (0.0 - 0.01)).abs() < 1e-9);
/// assert_eq!(adam.steps(), 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<N> {
    /// The learning rate.
    pub lr: f64,
    /// The decay rates of the first and second moments.
    pub betas: (f64, f64),
    /// Added to the denominator for stability.
    pub eps: f64,
    /// L2 penalty added to the gradient (Adam), or the rate at which AdamW shrinks the weights.
    pub weight_decay: f64,
    /// Keep the largest second moment seen (AMSGrad).
    pub amsgrad: bool,
    /// Shrink the weights directly (AdamW) instead of adding to the gradient.
    decoupled: bool,
    /// Steps taken (`u64`: it cannot wrap in any real run; it saturates rather than wrap).
    steps: u64,
    /// First moment, second moment and AMSGrad's maximum, shaped like the network.
    state: Option<Boxed<Moments<N>>>,
}

/// Adam's per-parameter state.
#[derive(Clone, Debug, PartialEq)]
struct Moments<N> {
    /// The first moment.
    mean: N,
    /// The second moment.
    square: N,
    /// The largest second moment (AMSGrad only).
    max_square: Option<N>,
}

/// `torch.optim.AdamW`: Adam whose weight decay shrinks the weights, `p ← p · (1 − lr · weight_decay)`,
/// before the Adam step (PyTorch's default weight decay 0.01).
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > }
///
/// let mut net = Net::<f64>::zeros();
/// net.fc1.weight[(0, 0)] = 2.0;
/// let mut grad = Net::zeros();
/// grad.fc1.weight[(0, 0)] = 6.0; // the bias's gradient stays 0
///
/// let mut adamw = AdamW::new(0.01).weight_decay(0.1);
/// adamw.step(&mut net, &grad);
/// // Shrink first, w = 2·(1 − 0.01·0.1) = 1.998, then Adam's first step of
/// // lr·g / (|g| + eps) ≈ 0.01: w ≈ 1.988. A zero gradient leaves the bias at 0.
/// assert!((net.fc1.weight[(0, 0)] - 1.988).abs() < 1e-9);
/// assert_eq!(net.fc1.bias[0], 0.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AdamW<N>(Adam<N>);

impl<N> AdamW<N> {
    /// AdamW with learning rate `lr` and PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight
    /// decay 0.01, no AMSGrad.
    pub fn new(lr: f64) -> Self {
        AdamW(Adam {
            weight_decay: 0.01,
            decoupled: true,
            ..Adam::new(lr)
        })
    }

    /// With these betas.
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        AdamW(self.0.betas(beta1, beta2))
    }

    /// With this eps.
    pub fn eps(self, eps: f64) -> Self {
        AdamW(self.0.eps(eps))
    }

    /// With this weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        AdamW(self.0.weight_decay(weight_decay))
    }

    /// With AMSGrad.
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        AdamW(self.0.amsgrad(amsgrad))
    }
}

impl<N> AdamW<N> {
    /// The number of steps taken, `t` of the last step's bias corrections.
    pub fn steps(&self) -> u64 {
        self.0.steps()
    }

    /// Sets the number of steps taken (to resume from a checkpoint): the next step is `steps + 1`.
    pub fn set_steps(&mut self, steps: u64) {
        self.0.set_steps(steps);
    }
}

impl<N: Network> FusedStep<N> for AdamW<N> {
    type Rule = AdamRule<N::Scalar>;

    #[inline(always)]
    fn begin_step(&mut self) -> AdamRule<N::Scalar> {
        self.0.begin_step()
    }

    #[inline(always)]
    fn update(
        &mut self,
        rule: &AdamRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        grads: &[N::Scalar],
    ) {
        self.0.update(rule, tensor, offset, params, grads);
    }

    #[inline(always)]
    fn update_scaled(
        &mut self,
        rule: &AdamRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        delta: &[N::Scalar],
        x: N::Scalar,
    ) {
        self.0.update_scaled(rule, tensor, offset, params, delta, x);
    }

    #[inline(always)]
    fn check(
        &self,
        rule: &AdamRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        grads: &[N::Scalar],
    ) -> Option<(usize, &'static str)> {
        self.0.check(rule, tensor, offset, params, grads)
    }

    fn end_step(&mut self) {
        FusedStep::<N>::end_step(&mut self.0);
    }

    fn optimizer_name(&self) -> &'static str {
        self.0.name()
    }
}

impl<N: Network> Optimizer<N> for AdamW<N> {
    fn step(&mut self, net: &mut N, grad: &N) {
        self.0.step(net, grad);
    }

    fn try_step(&mut self, net: &mut N, grad: &N) -> Result<(), NonFiniteUpdate> {
        self.0.try_step(net, grad)
    }

    fn prepare(&mut self) {
        self.0.prepare();
    }

    fn validate(&self) -> Result<(), OptimizerError> {
        self.0.validate()
    }

    fn learning_rate(&self) -> f64 {
        self.0.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.0.lr = lr;
    }

    fn momentum(&self) -> Option<f64> {
        Some(self.0.betas.0)
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.0.betas.0 = momentum;
    }
}

impl<N> Adam<N> {
    /// Adam with learning rate `lr` and PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight
    /// decay, no AMSGrad.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            steps: 0,
            state: None,
        }
    }

    /// With these betas.
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        Adam {
            betas: (beta1, beta2),
            ..self
        }
    }

    /// With this eps.
    pub fn eps(self, eps: f64) -> Self {
        Adam { eps, ..self }
    }

    /// With this weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        Adam {
            weight_decay,
            ..self
        }
    }

    /// With AMSGrad.
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        Adam { amsgrad, ..self }
    }

    /// The number of steps taken, `t` of the last step's bias corrections.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the number of steps taken (to resume from a checkpoint): the next step is `steps + 1`.
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// The name torch gives this optimizer.
    fn name(&self) -> &'static str {
        if self.decoupled {
            "AdamW"
        } else {
            "Adam"
        }
    }
}

impl<N: Network> Moments<N> {
    /// The moments in `state`, made (zero) the first time they are needed: a branch on the
    /// step path, the making out of line.
    #[inline(always)]
    fn made(state: &mut Option<Boxed<Self>>, amsgrad: bool) -> &mut Self {
        let ready = matches!(state, Some(moments) if !amsgrad || moments.max_square.is_some());
        if !ready {
            Self::make(state, amsgrad);
        }
        state.get_or_insert_with(Self::fresh)
    }

    /// [`Moments::made`]'s making: the moments, and AMSGrad's maximum if it is on.
    #[cold]
    #[inline(never)]
    fn make(state: &mut Option<Boxed<Self>>, amsgrad: bool) {
        let moments = state.get_or_insert_with(Self::fresh);
        if amsgrad && moments.max_square.is_none() {
            moments.max_square = Some(N::zeros());
        }
    }

    /// Zero moments, no AMSGrad maximum.
    #[cold]
    #[inline(never)]
    fn fresh() -> Boxed<Self> {
        boxed(|| Moments {
            mean: N::zeros(),
            square: N::zeros(),
            max_square: None,
        })
    }
}

/// One Adam or AdamW step's constants: [`FusedStep::Rule`] for [`Adam`] and [`AdamW`].
#[derive(Clone, Copy)]
pub struct AdamRule<T> {
    /// The constants, in the scalar.
    k: Coefficients<T>,
    /// `NO_DECAY`, `L2_DECAY` or `DECOUPLED_DECAY`.
    decay: u8,
    /// `exp_avg.lerp_(grad, 1 − β1)`: ATen's lerp takes `m + w (g − m)` for a weight below ½
    /// and `g − (g − m)(1 − w)` otherwise.
    small_weight: bool,
    /// AMSGrad.
    amsgrad: bool,
}

/// Runs `$body` with `$D` and `$S` bound to the rule's weight decay and lerp form as constants,
/// so each combination is its own branch-free loop.
macro_rules! with_kernel {
    ($rule:expr, |$d:ident, $s:ident| $body:expr) => {
        match ($rule.decay, $rule.small_weight) {
            (NO_DECAY, true) => {
                const $d: u8 = NO_DECAY;
                const $s: bool = true;
                $body
            }
            (NO_DECAY, false) => {
                const $d: u8 = NO_DECAY;
                const $s: bool = false;
                $body
            }
            (L2_DECAY, true) => {
                const $d: u8 = L2_DECAY;
                const $s: bool = true;
                $body
            }
            (L2_DECAY, false) => {
                const $d: u8 = L2_DECAY;
                const $s: bool = false;
                $body
            }
            (_, true) => {
                const $d: u8 = DECOUPLED_DECAY;
                const $s: bool = true;
                $body
            }
            (_, false) => {
                const $d: u8 = DECOUPLED_DECAY;
                const $s: bool = false;
                $body
            }
        }
    };
}

impl<N: Network> FusedStep<N> for Adam<N> {
    type Rule = AdamRule<N::Scalar>;

    /// Always inlined: the bias corrections' two `pow` calls and divisions then overlap the
    /// forward pass that follows (W1's unfused Adam step measured 152 → 129 ns on a Zen 5).
    #[inline(always)]
    fn begin_step(&mut self) -> AdamRule<N::Scalar> {
        Moments::<N>::made(&mut self.state, self.amsgrad);
        let decay = match (self.weight_decay == 0.0, self.decoupled) {
            (true, _) => NO_DECAY,
            (false, false) => L2_DECAY,
            (false, true) => DECOUPLED_DECAY,
        };
        AdamRule {
            k: Coefficients::of(self, self.steps.saturating_add(1)),
            decay,
            // ATen compares the weight once rounded to the scalar.
            small_weight: to_f64(constant::<N::Scalar>(1.0 - self.betas.0)).abs() < 0.5,
            amsgrad: self.amsgrad,
        }
    }

    #[inline(always)]
    fn update(
        &mut self,
        rule: &AdamRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &mut [N::Scalar],
        grads: &[N::Scalar],
    ) {
        let state = Moments::made(&mut self.state, rule.amsgrad);
        let len = params.len();
        let means = run_of(state.mean.tensor_mut(tensor), offset, len);
        let squares = run_of(state.square.tensor_mut(tensor), offset, len);
        let max_squares = state
            .max_square
            .as_mut()
            .filter(|_| rule.amsgrad)
            .map(|max| run_of(max.tensor_mut(tensor), offset, len));
        with_kernel!(rule, |D, S| update_tensor::<N::Scalar, D, S>(
            &rule.k,
            params,
            grads,
            means,
            squares,
            max_squares
        ));
    }

    #[inline(always)]
    fn check(
        &self,
        rule: &AdamRule<N::Scalar>,
        tensor: usize,
        offset: usize,
        params: &[N::Scalar],
        grads: &[N::Scalar],
    ) -> Option<(usize, &'static str)> {
        // `begin_step` made the state: without it there is nothing to check against.
        let state = self.state.as_ref()?;
        let len = params.len();
        let means = run_of_ref(state.mean.tensor(tensor), offset, len);
        let squares = run_of_ref(state.square.tensor(tensor), offset, len);
        let max_squares = state
            .max_square
            .as_ref()
            .filter(|_| rule.amsgrad)
            .map(|max| run_of_ref(max.tensor(tensor), offset, len));
        with_kernel!(rule, |D, S| check_tensor::<N::Scalar, D, S>(
            &rule.k,
            params,
            grads,
            means,
            squares,
            max_squares
        ))
    }

    fn end_step(&mut self) {
        self.steps = self.steps.saturating_add(1);
    }

    fn optimizer_name(&self) -> &'static str {
        self.name()
    }
}

impl<N: Network> Optimizer<N> for Adam<N> {
    fn prepare(&mut self) {
        Moments::made(&mut self.state, self.amsgrad);
    }

    fn step(&mut self, net: &mut N, grad: &N) {
        step_by_tensors(self, net, grad);
    }

    fn try_step(&mut self, net: &mut N, grad: &N) -> Result<(), NonFiniteUpdate> {
        try_step_by_tensors(self, net, grad)
    }

    fn validate(&self) -> Result<(), OptimizerError> {
        let name = self.name();
        // Finite first, in f64 and in the scalar; then torch's ranges, except that eps, which
        // divides (0/0 where a gradient entry and its moments are 0), must be above 0, also once
        // converted to the scalar (1e-50 is 0 in f32).
        for (parameter, value) in [
            ("learning rate", self.lr),
            ("eps", self.eps),
            ("beta1", self.betas.0),
            ("beta2", self.betas.1),
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
            self.eps > 0.0 && constant::<N::Scalar>(self.eps) > constant(0.0),
            name,
            "eps",
            self.eps,
            "a number > 0, also in the network's scalar type",
        )?;
        require(
            (0.0..1.0).contains(&self.betas.0),
            name,
            "beta1",
            self.betas.0,
            "a number in [0, 1)",
        )?;
        require(
            (0.0..1.0).contains(&self.betas.1),
            name,
            "beta2",
            self.betas.1,
            "a number in [0, 1)",
        )?;
        require(
            self.weight_decay >= 0.0,
            name,
            "weight_decay",
            self.weight_decay,
            "a number ≥ 0",
        )
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn momentum(&self) -> Option<f64> {
        Some(self.betas.0)
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.betas.0 = momentum;
    }
}

/// One step's constants, converted to the scalar once.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    /// `lr / (1 − β1ᵗ)`.
    step_size: T,
    /// `√(1 − β2ᵗ)`.
    correction2: T,
    /// `1 / correction2` in `f64` where `|correction2| < 2` (always, for a β2 in `(−1, 1)`),
    /// else NaN: see [`Coefficients::unbias`].
    inverse_correction2: f64,
    /// The lerp weight `w = 1 − β1`, and `1 − w` computed in the scalar, as ATen computes it.
    lerp: (T, T),
    /// `β2` and `1 − β2`.
    beta2: (T, T),
    /// Added to the denominator.
    eps: T,
    /// The L2 penalty (Adam's weight decay).
    decay: T,
    /// AdamW's factor `1 − lr · weight_decay`.
    shrink: T,
}

impl<T: Scalar> Coefficients<T> {
    /// The constants of `adam`'s step number `step` (from 1). `step` as an `f64` is exact up to
    /// 2⁵³ and rounded beyond, where `βᵗ` has long been 0 for any β not within 1e-15 of 1; a
    /// huge exponent makes `powf` underflow to 0 (a correction of exactly 1), never overflow.
    fn of<N>(adam: &Adam<N>, step: u64) -> Self {
        let step = step as f64;
        let (beta1, beta2) = adam.betas;
        let weight = 1.0 - beta1;
        let correction2 = constant(libm::sqrt(1.0 - power(beta2, step)));
        Coefficients {
            step_size: constant(adam.lr / (1.0 - power(beta1, step))),
            correction2,
            inverse_correction2: inverse_below_two(to_f64(correction2)),
            // ATen's lerp rounds the weight to the scalar first and takes `1 − w` there.
            lerp: (constant(weight), constant::<T>(1.0) - constant::<T>(weight)),
            beta2: (constant(beta2), constant(1.0 - beta2)),
            eps: constant(adam.eps),
            decay: constant(adam.weight_decay),
            shrink: constant(1.0 - adam.lr * adam.weight_decay),
        }
    }
}

impl<T: Scalar> Coefficients<T> {
    /// `root / correction2` rounded once, as torch divides `√v` by `√(1 − β2ᵗ)`. In `f32` it is
    /// `root · (1 / correction2)` computed in `f64` and rounded to `f32`: the same value, and
    /// it leaves the divider (which bounds Adam's step on Intel cores) two operations an entry
    /// instead of three.
    ///
    /// Why the same, for `f32`s `s` and `c` with `|c| < 2` (every β2 in `(−1, 1)` gives one):
    /// take a midpoint between two `f32`s, `μ = M·2ᵉ` with `M` odd, and `c = C·2ᶠ` with `C`
    /// odd (below 2²⁴; `f ≤ 0`, as `|c| < 2`). Every `f32` is a multiple of `2⁻¹⁴⁹`, and `μc` one of
    /// `2^(e+f)` with `e + f ≤ −150` for a subnormal `μ` (`e = −150`) and below the last place
    /// of any `s` near `μc` for a normal one (`M` has 25 bits): so `s − μc` is a whole multiple
    /// of `2^(e+f)` and never 0, and `|s/c − μ| ≥ 2ᵉ/C`, over `2⁻⁴⁹·μ`. The `f64` product is
    /// within `2⁻⁵²` of `s/c` (two roundings of `2⁻⁵³`), so no midpoint lies between them and
    /// rounding it to `f32` gives `s/c` rounded (overflow to `∞` included: `MAX + ½ulp` is such
    /// a midpoint). `0`, `∞` and NaN come out as the division gives them. Tested for 78
    /// divisors on a sample of floats and the quotients nearest a midpoint (`tests`), and on
    /// every `f32` (`--ignored`). Other scalars divide, and so
    /// does a run without `PRODUCT` ([`update_tensor`] says which).
    #[inline(always)]
    fn unbias<const PRODUCT: bool>(&self, root: T) -> T {
        if PRODUCT {
            divide(root, self.correction2, self.inverse_correction2)
        } else {
            root / self.correction2
        }
    }

    /// Whether [`Coefficients::unbias`]'s product is proven for this step's `correction2`.
    fn product_holds(&self) -> bool {
        !self.inverse_correction2.is_nan()
    }
}

/// `root / c`, through `inverse` ([`inverse_below_two`] of `c`, not NaN) in `f32`: see
/// [`Coefficients::unbias`].
#[inline(always)]
fn divide<T: Scalar>(root: T, c: T, inverse: f64) -> T {
    if let Some(root) = same::<T, f32>(root) {
        let quotient = (f64::from(root) * inverse) as f32;
        if let Some(quotient) = same::<f32, T>(quotient) {
            return quotient;
        }
    }
    root / c
}

/// The shortest run whose blocks of 16 take [`Coefficients::unbias`]'s product: in a few
/// baseline (SSE) registers its `f64` conversions cost more than the division they save (W1's
/// Adam step, whose tensors are 1 to 20 entries, measured 119 → 133 ns with them); in wide
/// vectors they cost less (W2's, 2.17 → 1.56 µs unfused on the Xeon of BENCHMARKS.md).
const PRODUCT_FROM: usize = 64;

/// `1 / c` where [`Coefficients::unbias`]'s product is proven to round as the division does
/// (`|c| < 2`, or `c` infinite or NaN, where IEEE gives the division's `0`, `∞` or NaN); NaN,
/// asking for the division, otherwise (`|c| ≥ 2` needs `β2 ≤ −1`, refused by `validate`).
fn inverse_below_two(c: f64) -> f64 {
    if c.abs() >= 2.0 && c.is_finite() {
        f64::NAN
    } else {
        1.0 / c
    }
}

/// No weight decay.
const NO_DECAY: u8 = 0;
/// Adam's weight decay: `g ← g + weight_decay · p`.
const L2_DECAY: u8 = 1;
/// AdamW's weight decay: `p ← p · (1 − lr · weight_decay)` before the step.
const DECOUPLED_DECAY: u8 = 2;

/// One run of a tensor's Adam update, with the step's choices (weight decay, lerp form) fixed
/// at compile time and AMSGrad chosen once per run, so the loops have no branches: in register
/// blocks without AMSGrad ([`update_blocks`]), entry by entry with it. `max_squares` is
/// AMSGrad's maximum, if it is on.
#[inline(always)]
fn update_tensor<T: Scalar, const DECAY: u8, const SMALL_WEIGHT: bool>(
    k: &Coefficients<T>,
    params: &mut [T],
    grads: &[T],
    means: &mut [T],
    squares: &mut [T],
    max_squares: Option<&mut [T]>,
) {
    // A copy the loops own: through the caller's reference (the fused step's, inlined) LLVM
    // cannot tell that the stores leave the constants alone, and reloads them every block.
    let k = &k.clone();
    let Some(max_squares) = max_squares else {
        let n = params
            .len()
            .min(grads.len())
            .min(means.len())
            .min(squares.len());
        let run = (
            &mut params[..n],
            &grads[..n],
            &mut means[..n],
            &mut squares[..n],
        );
        // Long runs take the bias correction as a product, the rest divides: the same bits.
        let run = if n >= PRODUCT_FROM && k.product_holds() {
            update_blocks::<T, DECAY, SMALL_WEIGHT, 16, true>(k, run)
        } else {
            run
        };
        let run = update_blocks::<T, DECAY, SMALL_WEIGHT, 16, false>(k, run);
        let run = update_blocks::<T, DECAY, SMALL_WEIGHT, 8, false>(k, run);
        let run = update_blocks::<T, DECAY, SMALL_WEIGHT, 4, false>(k, run);
        let run = update_blocks::<T, DECAY, SMALL_WEIGHT, 2, false>(k, run);
        update_blocks::<T, DECAY, SMALL_WEIGHT, 1, false>(k, run);
        return;
    };
    let entries = params
        .iter_mut()
        .zip(grads)
        .zip(means.iter_mut().zip(squares.iter_mut()));
    for (((p, &g), (m, v)), max) in entries.zip(max_squares.iter_mut()) {
        moments::<T, DECAY, SMALL_WEIGHT>(k, p, g, m, v);
        // `torch.maximum`, which propagates a NaN from either side.
        #[allow(clippy::eq_op)]
        if *v > *max || *v != *v {
            *max = *v;
        }
        apply::<T, false>(k, p, *m, *max);
    }
}

/// A run of entries: weights, gradient, first and second moments.
type Run<'a, T> = (&'a mut [T], &'a [T], &'a mut [T], &'a mut [T]);

/// [`update_tensor`] without AMSGrad on the run's whole blocks of `W` entries; returns the
/// rest. Each block is copied into registers and computed lane by lane. A plain loop fares
/// worse on short runs: LLVM unrolls a short one of known length into scalar code, and cannot
/// tell the weights from the moments (both reached through pointers), so it vectorises a longer
/// one only behind overlap checks. The blocks, 16 then 8, 4, 2 and 1, are vectors of any width
/// (for 16 `f32`s, four SSE registers or one AVX-512 register); each lane is the scalar
/// arithmetic, so the bits are the entry-by-entry update's (`PRODUCT` or not: see
/// [`Coefficients::unbias`]).
///
/// Always inlined without debug assertions (release builds): called, the blocks made W1's fused
/// Adam step run 1.6 times the instructions. Not with them (debug builds), whose unoptimised
/// frames would hold every block of the six kernels and five widths, enough to overflow a test
/// thread's stack.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn update_blocks<
    'a,
    T: Scalar,
    const DECAY: u8,
    const SMALL_WEIGHT: bool,
    const W: usize,
    const PRODUCT: bool,
>(
    k: &Coefficients<T>,
    (params, grads, means, squares): Run<'a, T>,
) -> Run<'a, T> {
    let (p, p_rest) = params.as_chunks_mut::<W>();
    let (g, g_rest) = grads.as_chunks::<W>();
    let (m, m_rest) = means.as_chunks_mut::<W>();
    let (v, v_rest) = squares.as_chunks_mut::<W>();
    let blocks = p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut()));
    for ((p, g), (m, v)) in blocks {
        let (mut pv, gv, mut mv, mut vv) = (*p, *g, *m, *v);
        for i in 0..W {
            moments::<T, DECAY, SMALL_WEIGHT>(k, &mut pv[i], gv[i], &mut mv[i], &mut vv[i]);
            apply::<T, PRODUCT>(k, &mut pv[i], mv[i], vv[i]);
        }
        (*p, *m, *v) = (pv, mv, vv);
    }
    (p_rest, g_rest, m_rest, v_rest)
}

/// The check of one tensor's update, nothing written. First a cheap pass with no square root
/// and no division ([`proven_finite`]), a bound that proves every value finite, as it does in
/// ordinary training. Otherwise the exact check: the would-be values computed
/// as [`update_tensor`] computes them (the same inlined arithmetic, so the same bits), in a
/// branch-free pass shaped like the update's loop; the first bad entry, and which of its values,
/// is searched only if one is not finite.
fn check_tensor<T: Scalar, const DECAY: u8, const SMALL_WEIGHT: bool>(
    k: &Coefficients<T>,
    params: &[T],
    grads: &[T],
    means: &[T],
    squares: &[T],
    max_squares: Option<&[T]>,
) -> Option<(usize, &'static str)> {
    if proven_finite::<T, DECAY, SMALL_WEIGHT>(k, params, grads, means, squares, max_squares) {
        return None;
    }
    exact_check::<T, DECAY, SMALL_WEIGHT>(k, params, grads, means, squares, max_squares)
}

/// The cheap pass of [`check_tensor`]: true only if every value the update would write is
/// certainly finite (false says nothing). Per entry, with `p'` the weight after AdamW's shrink
/// and `m'`, `v'` the new moments: `v'` (and AMSGrad's maximum) finite, and
/// `|p'| · eps + |step_size| · |m'| ≤ eps · MAX / 4`, which (the denominator being at least
/// `eps`) bounds the new weight `|p' − step_size · m' / d|` by `MAX / 4` before rounding, a
/// margin no rounding can cross; an infinite or NaN `p'` or `m'` fails the comparison. No square
/// root, no division, one branch-free pass.
fn proven_finite<T: Scalar, const DECAY: u8, const SMALL_WEIGHT: bool>(
    k: &Coefficients<T>,
    params: &[T],
    grads: &[T],
    means: &[T],
    squares: &[T],
    max_squares: Option<&[T]>,
) -> bool {
    let zero: T = constant(0.0);
    let abs = |x: T| if x < zero { -x } else { x };
    let finite = finite_test::<T>();
    let largest = T::max_value().map_or(f64::NAN, to_f64);
    let limit: T = constant(to_f64(k.eps) * largest / 4.0);
    let step_size = abs(k.step_size);
    // The new weight is certainly finite, given the new moments.
    let bounded = |p: T, m: T| abs(p) * k.eps + step_size * abs(m) <= limit;
    let entries = params
        .iter()
        .zip(grads)
        .zip(means.iter().zip(squares.iter()));
    let moments_of = |p: T, g: T, m: T, v: T| {
        let (mut p, mut m, mut v) = (p, m, v);
        moments::<T, DECAY, SMALL_WEIGHT>(k, &mut p, g, &mut m, &mut v);
        (p, m, v)
    };
    match max_squares {
        None => entries.fold(true, |ok, ((&p, &g), (&m, &v))| {
            let (p, m, v) = moments_of(p, g, m, v);
            ok & finite(v) & bounded(p, m)
        }),
        Some(max_squares) => {
            entries
                .zip(max_squares)
                .fold(true, |ok, (((&p, &g), (&m, &v)), &max)| {
                    let (p, m, v) = moments_of(p, g, m, v);
                    // The largest second moment is `max` or `v`.
                    ok & finite(v) & finite(max) & bounded(p, m)
                })
        }
    }
}

/// The exact pass of [`check_tensor`].
fn exact_check<T: Scalar, const DECAY: u8, const SMALL_WEIGHT: bool>(
    k: &Coefficients<T>,
    params: &[T],
    grads: &[T],
    means: &[T],
    squares: &[T],
    max_squares: Option<&[T]>,
) -> Option<(usize, &'static str)> {
    let entries = params
        .iter()
        .zip(grads)
        .zip(means.iter().zip(squares.iter()));
    let finite = finite_test::<T>();
    let all_ok = match max_squares {
        None => entries.fold(true, |ok, ((&p, &g), (&m, &v))| {
            let [p, m, v, _] = would_be::<T, DECAY, SMALL_WEIGHT>(k, p, g, m, v, None);
            ok & finite(p) & finite(m) & finite(v)
        }),
        Some(max_squares) => {
            entries
                .zip(max_squares)
                .fold(true, |ok, (((&p, &g), (&m, &v)), &max)| {
                    let [p, m, v, max] =
                        would_be::<T, DECAY, SMALL_WEIGHT>(k, p, g, m, v, Some(max));
                    ok & finite(p) & finite(m) & finite(v) & finite(max)
                })
        }
    };
    if all_ok {
        return None;
    }
    let what = [
        "weight",
        "first moment",
        "second moment",
        "largest second moment",
    ];
    let n = params
        .len()
        .min(grads.len())
        .min(means.len())
        .min(squares.len());
    (0..n).find_map(|i| {
        let max = max_squares.and_then(|max| max.get(i).copied());
        let values =
            would_be::<T, DECAY, SMALL_WEIGHT>(k, params[i], grads[i], means[i], squares[i], max);
        // The state first: a moment that overflows causes the weight's trouble, not the reverse.
        [1, 2, 3, 0]
            .into_iter()
            .find(|&j| !finite(values[j]))
            .map(|j| (i, what[j]))
    })
}

/// One entry's would-be weight, first moment, second moment and (AMSGrad's) largest second
/// moment (the second moment again without AMSGrad), by the update's own arithmetic.
#[inline(always)]
fn would_be<T: Scalar, const DECAY: u8, const SMALL_WEIGHT: bool>(
    k: &Coefficients<T>,
    mut p: T,
    g: T,
    mut m: T,
    mut v: T,
    max: Option<T>,
) -> [T; 4] {
    moments::<T, DECAY, SMALL_WEIGHT>(k, &mut p, g, &mut m, &mut v);
    let second = match max {
        None => v,
        // `torch.maximum`, as in `update_tensor`.
        #[allow(clippy::eq_op)]
        Some(max) if v > max || v != v => v,
        Some(max) => max,
    };
    apply::<T, false>(k, &mut p, m, second);
    [p, m, v, second]
}

/// Weight decay, then the first and second moments of one entry, as torch orders them.
#[inline(always)]
fn moments<T: Scalar, const DECAY: u8, const SMALL_WEIGHT: bool>(
    k: &Coefficients<T>,
    p: &mut T,
    g: T,
    m: &mut T,
    v: &mut T,
) {
    let g = match DECAY {
        NO_DECAY => g,
        L2_DECAY => g + k.decay * *p,
        _ => {
            *p *= k.shrink;
            g
        }
    };
    *m = if SMALL_WEIGHT {
        *m + k.lerp.0 * (g - *m)
    } else {
        g - (g - *m) * k.lerp.1
    };
    *v = *v * k.beta2.0 + k.beta2.1 * g * g;
}

/// The parameter update of one entry from its first moment and (AMSGrad's) second moment:
/// `addcdiv_(m, denominator, value = −step_size)`, which divides the product `step_size · m`.
#[inline(always)]
fn apply<T: Scalar, const PRODUCT: bool>(k: &Coefficients<T>, p: &mut T, m: T, second: T) {
    let denominator = k.unbias::<PRODUCT>(ComplexField::sqrt(second)) + k.eps;
    *p -= k.step_size * m / denominator;
}

/// `base ** exponent` as Python computes a bias correction: the platform's `pow` (correctly
/// rounded in practice, where `libm::pow` can be one unit off, as for 0.9⁴); `libm` without std.
fn power(base: f64, exponent: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        base.powf(exponent)
    }
    #[cfg(not(feature = "std"))]
    {
        libm::pow(base, exponent)
    }
}

#[cfg(feature = "std")]
impl<N: Network> crate::optim::OptimizerState<N> for Adam<N> {
    fn name(&self) -> &'static str {
        Adam::name(self)
    }

    fn counters(&self) -> std::vec::Vec<(&'static str, u64)> {
        std::vec![("step", self.steps)]
    }

    fn set_counter(&mut self, name: &str, value: u64) -> bool {
        match name {
            "step" => self.steps = value,
            _ => return false,
        }
        true
    }

    fn buffers(&self) -> std::vec::Vec<(&'static str, &N)> {
        let mut out = std::vec::Vec::new();
        if let Some(state) = self.state.as_deref() {
            out.push(("exp_avg", &state.mean));
            out.push(("exp_avg_sq", &state.square));
            if let Some(max) = state.max_square.as_ref().filter(|_| self.amsgrad) {
                out.push(("max_exp_avg_sq", max));
            }
        }
        out
    }

    fn buffers_mut(&mut self) -> std::vec::Vec<(&'static str, &mut N)> {
        let amsgrad = self.amsgrad;
        let state = Moments::made(&mut self.state, amsgrad);
        let mut out = std::vec![
            ("exp_avg", &mut state.mean),
            ("exp_avg_sq", &mut state.square)
        ];
        if let Some(max) = state.max_square.as_mut().filter(|_| amsgrad) {
            out.push(("max_exp_avg_sq", max));
        }
        out
    }
}

#[cfg(feature = "std")]
impl<N: Network> crate::optim::OptimizerState<N> for AdamW<N> {
    fn name(&self) -> &'static str {
        "AdamW"
    }

    fn counters(&self) -> std::vec::Vec<(&'static str, u64)> {
        self.0.counters()
    }

    fn set_counter(&mut self, name: &str, value: u64) -> bool {
        self.0.set_counter(name, value)
    }

    fn buffers(&self) -> std::vec::Vec<(&'static str, &N)> {
        self.0.buffers()
    }

    fn buffers_mut(&mut self) -> std::vec::Vec<(&'static str, &mut N)> {
        self.0.buffers_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::{divide, inverse_below_two};
    use std::vec::Vec;

    /// The divisors: Adam's own (`√(1 − β2ᵗ)` in `f32` for common β2 and steps), the extremes
    /// (1, just under 2, 2⁻²⁷, below the smallest a β2 under 1 gives, subnormal, 0, negative,
    /// ∞, NaN, and 2 and more, which divide), and pseudo-random ones in `(−2, 2)`.
    fn divisors() -> Vec<f32> {
        let mut cs = std::vec![1.0, 1.999_999_9, 2f32.powi(-27), f32::MIN_POSITIVE, 1e-40];
        cs.extend([
            0.0,
            -0.0,
            -0.7,
            -1.999_999_9,
            f32::INFINITY,
            f32::NAN,
            2.0,
            3.0,
            1e30,
        ]);
        for beta2 in [0.999f64, 0.99, 0.9, 0.5, 0.0] {
            for t in [1, 2, 3, 7, 10, 100, 1000, 4321] {
                cs.push((1.0 - beta2.powi(t)).sqrt() as f32);
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..24 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Uniform significand, exponents from 2⁻⁴⁰ up to (not including) 2, either sign.
            let exponent = 87 + (state >> 40) % 41;
            let sign = ((state >> 32) as u32 & 1) << 31;
            cs.push(f32::from_bits(
                sign | ((exponent as u32) << 23) | (state as u32 & 0x7f_ffff),
            ));
        }
        cs
    }

    /// The floats whose quotient by `c` lies next to a midpoint between two floats: `s` the
    /// nearest float to `μ·c` for midpoints `μ` across the range, and its neighbours.
    fn near_midpoints(c: f32) -> impl Iterator<Item = f32> {
        (0..=0xff_u32).step_by(3).flat_map(move |exponent| {
            (0..64u32).flat_map(move |k| {
                let low = f32::from_bits((exponent << 23) | (k * 131_071 % 0x80_0000));
                let mu = (f64::from(low) + f64::from(low.next_up())) / 2.0;
                let s = (mu * f64::from(c)) as f32;
                [s.next_down(), s, s.next_up()]
            })
        })
    }

    /// The floats `s` whose quotient by `c` comes nearest a midpoint `μ = M·2ᵉ` (`M` odd, 25
    /// bits) that any quotient can: with `c = C·2ᶠ` (`C` odd), `M·C ± 1` a multiple of 2²⁵ and
    /// `s = (M·C ± 1)/2²⁵` times powers of two, so that `s/c = (M ± 1/C)·2ᵉ`, `2⁻⁴⁸` or so of
    /// `μ` away (the proof's bound, against the product's error of `2⁻⁵²`).
    fn sharpest(c: f32) -> Vec<f32> {
        if !c.is_finite() || c == 0.0 {
            return Vec::new();
        }
        let (bits, exponent) = (c.to_bits() & 0x7f_ffff, (c.to_bits() >> 23) & 0xff);
        let mut odd = if exponent == 0 {
            bits
        } else {
            bits | 0x80_0000
        };
        while odd.is_multiple_of(2) {
            odd /= 2;
        }
        // `odd`'s inverse modulo 2³² (Newton's iteration doubles the correct low bits).
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u32.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        let modulus = 1u64 << 25;
        let inverse = u64::from(inverse) % modulus;
        // M·C ≡ 1 (then M·C − 1) or M·C ≡ −1 (then M·C + 1): whichever M has 25 bits.
        let (m, plus) = if inverse >= modulus / 2 {
            (inverse, false)
        } else {
            (modulus - inverse, true)
        };
        let product = m * u64::from(odd);
        let whole = if plus { product + 1 } else { product - 1 };
        assert!(whole.is_multiple_of(modulus) && m % 2 == 1, "c = {c:e}");
        let significand = whole / modulus;
        if significand == 0 || significand >= 1 << 24 {
            return Vec::new();
        }
        (-149..=104)
            .map(|scale| (significand as f64 * 2f64.powi(scale)) as f32)
            .filter(|s| s.is_finite() && *s != 0.0)
            .collect()
    }

    /// The product's bits against the division's for each `s` (NaN for NaN, whose bits the
    /// division does not fix either); the first that differs.
    fn first_difference(c: f32, s: impl Iterator<Item = f32>) -> Option<(f32, f32, f32)> {
        let inverse = inverse_below_two(f64::from(c));
        // Where the proof does not hold the update divides (`update_tensor`).
        let proven = c.abs() < 2.0 || !c.is_finite();
        assert_eq!(!inverse.is_nan() || c.is_nan(), proven, "c = {c:e}");
        if inverse.is_nan() {
            return None;
        }
        s.map(|s| {
            let (s, c) = core::hint::black_box((s, c));
            (s, divide(s, c, inverse), s / c)
        })
        .find(|&(_, ours, theirs)| {
            if theirs.is_nan() {
                !ours.is_nan()
            } else {
                ours.to_bits() != theirs.to_bits()
            }
        })
    }

    #[test]
    fn the_bias_correction_as_a_product_rounds_as_the_division_does() {
        for c in divisors() {
            // Every 4099th float (both signs, NaNs included) and the hard cases.
            let sample = (0..=u32::MAX).step_by(4099).map(f32::from_bits);
            let hard = near_midpoints(c).chain(near_midpoints(c).map(|s| -s));
            let hard = hard.chain(sharpest(c));
            assert_eq!(first_difference(c, sample.chain(hard)), None, "c = {c:e}");
        }
    }

    #[test]
    fn the_sharpest_cases_lie_next_to_midpoints() {
        for c in [0.7f32, 0.031_622_775, 1.999_999_9] {
            let nearest = sharpest(c)
                .into_iter()
                .map(|s| {
                    let q = f64::from(s) / f64::from(c);
                    let r = q as f32;
                    let mids =
                        [r.next_down(), r.next_up()].map(|n| (f64::from(r) + f64::from(n)) / 2.0);
                    mids.map(|m| (q - m).abs() / q)
                        .into_iter()
                        .fold(f64::INFINITY, f64::min)
                })
                .fold(f64::INFINITY, f64::min);
            assert!(nearest < 2f64.powi(-46), "c = {c:e}: {nearest:e}");
        }
    }

    #[test]
    fn f64_divides_as_before() {
        assert_eq!(divide(1.0f64, 3.0, 1.0 / 3.0), 1.0 / 3.0);
        assert_eq!(divide(0.1f64, 0.7, 1.0 / 0.7), 0.1 / 0.7);
    }

    /// Every `f32` against each divisor: `cargo test --release -p backprop-core adam --
    /// --ignored` (16 minutes on the Xeon of BENCHMARKS.md).
    #[test]
    #[ignore = "all 2^32 floats for each divisor: 16 minutes in release"]
    fn the_bias_correction_on_every_float() {
        for c in divisors() {
            let every = (0..=u32::MAX).map(f32::from_bits);
            assert_eq!(first_difference(c, every), None, "c = {c:e}");
        }
    }
}
