//! Gradient checking: every entry of a gradient compared with a numeric derivative of the loss.
//!
//! A backward pass is only as good as its derivation. [`check`] takes a network, an input batch, a
//! target and a loss, computes the gradient with the network's own `backward`, and compares every
//! entry with the slope of the loss found by nudging that one parameter up and down and running
//! the forward pass again. [`check_gradient`] does the same for a gradient you computed some other
//! way (so a test can feed it hand-written, possibly wrong, code), and [`check_function`] for a
//! plain function `f: &[f64] -> f64` and its gradient, which is how single activations and losses
//! are tested. Each returns a [`Report`], or a [`GradcheckError`] that carries the report when an
//! entry fails; [`assert_gradients`] and [`assert_passes`] panic with the report instead.
//!
//! ```
//! use backprop::gradcheck::{self, Options};
//!
//! // f(x, y) = x²·y + sin y, whose gradient is (2xy, x² + cos y).
//! let f = |v: &[f64]| v[0] * v[0] * v[1] + v[1].sin();
//! let x = [1.5f64, -0.3];
//! let right = [2.0 * x[0] * x[1], x[0] * x[0] + x[1].cos()];
//! let report = gradcheck::check_function(f, &x, &right, &Options::default()).unwrap();
//! assert!(report.max_relative_error() < 1e-7); // cs231n's "good" band
//!
//! // Forget the cosine: the check fails and names the entry.
//! let wrong = [right[0], x[0] * x[0]];
//! let error = gradcheck::check_function(f, &x, &wrong, &Options::default()).unwrap_err();
//! let report = error.report().unwrap();
//! assert_eq!(report.worst().unwrap().name(), "x[1]");
//! println!("{report}");
//! ```
//!
//! For a network declared with `network!` the check is one call; the network must compute in
//! `f64`, so an `f32` network is checked through its cast:
//!
//! ```
//! use backprop::gradcheck::{self, Options};
//! use backprop::prelude::*;
//!
//! network! { pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 > }
//!
//! let net = Net::<f32>::init(13);
//! let x = SVector::<f32, 4>::new(0.1, -0.7, 1.0, 0.9);
//! let y = SVector::<f32, 1>::new(1.0);
//! let report = gradcheck::check(&net.cast::<f64>(), &x.cast::<f64>(), &y.cast::<f64>(), &Mse,
//!                               &Options::default()).unwrap();
//! assert_eq!(report.checked(), Net::<f32>::PARAMETERS);
//! println!("{report}");   // or gradcheck::assert_gradients(...) in a test
//!
//! // A wrong gradient (one entry off by 10 %) fails, naming the entry.
//! let (net, x, y) = (net.cast::<f64>(), x.cast::<f64>(), y.cast::<f64>());
//! let (mut ws, mut grad) = (net.workspace(), Net::zeros());
//! net.backward(&x, &y, &Mse, &mut ws, &mut grad);
//! grad.fc3.bias[0] *= 1.1;
//! let error = gradcheck::check_gradient(&net, &x, &y, &Mse, &grad, &Options::default());
//! assert_eq!(error.unwrap_err().report().unwrap().worst().unwrap().name(), "fc3.bias[0]");
//! ```
//!
//! # The two criteria
//!
//! For an analytic derivative `a` and a numeric one `n`, the report gives both of the usual
//! verdicts:
//!
//! - cs231n's **relative error** `|a − n| / max(|a|, |n|)` (0 when both are zero), read in its
//!   [`Band`]s: above 1e-2 the gradient is probably **wrong**; from 1e-4 to 1e-2 it is
//!   **uncomfortable**; from 1e-7 to 1e-4 it is acceptable **only near a kink**; below 1e-7 it is
//!   **good**. It does not depend on the scale of the loss, but it means nothing for an entry so
//!   small that the numeric derivative is mostly rounding noise.
//! - PyTorch's **`|a − n| ≤ atol + rtol·|n|`** with `atol = 1e-5`, `rtol = 1e-3`
//!   (`torch.autograd.gradcheck`'s defaults). The absolute floor makes tiny entries pass, which is
//!   right for entries at the noise floor but lets through a wrong gradient whose entries are all
//!   below 1e-5.
//!
//! # When a check passes
//!
//! The default [`Rule::Standard`] fails an entry when PyTorch's rule fails, **or** when its
//! relative error is in the wrong band (above 1e-2) and the difference `|a − n|` is more than four
//! times the numeric derivative's own estimated error ([`Entry::uncertainty`]: at least 8 ulps of
//! the larger of the function's values and 1, divided by the step, since a loss is computed from
//! quantities of order 1 such as probabilities). The first part catches every visible mistake;
//! the second catches a mistake in a gradient whose entries are all tiny, without ever failing an
//! entry whose two values differ only by the noise of the numeric derivative (an analytic 8e-16
//! against a numeric 0 are both zero when the loss cannot resolve the change). With the default
//! numeric derivative, a correct `f64` network passes this rule, and its relative errors away from
//! kinks are below 1e-7 (the 25 PyTorch-parity architectures: at most 1.4e-8).
//! [`Rule::Torch`] and [`Rule::Relative`] apply one criterion alone. An entry whose analytic value
//! is NaN or infinite always fails.
//!
//! # The step h
//!
//! A central difference `(f(θ + h) − f(θ − h)) / 2h` is off from the true slope by two errors that
//! pull `h` in opposite directions: truncation, about `h² · f''' / 6`, grows with `h`; rounding,
//! about `ε · |f| / h` with `ε = 2.2e-16` in `f64`, grows as `h` shrinks, because the two losses
//! agree in most of their digits and their difference keeps only the rest. The classic choice
//! `h = 1e-6` (PyTorch's `eps`) balances the two for entries of ordinary size: at a loss near 1
//! the rounding part is about 2e-10. That is too coarse for small entries: a correct entry of 1e-6
//! then shows a relative error of 1e-4, and real networks have such entries (saturated units,
//! deep layers).
//!
//! So the default numeric derivative ([`Difference::Extrapolated`], Ridders' method) starts from
//! a large step, `h = 1e-2`, where rounding costs only about `ε · |f| / 1e-2 ≈ 2e-14 · |f|`, and
//! removes the truncation error instead of shrinking it: it takes central differences at
//! `h, h/1.4, h/1.4², …` (down to `h/21`), and combines them (Richardson extrapolation) so that
//! the `h²`, `h⁴`, `h⁶`, … terms cancel, stopping when further combinations stop agreeing. The
//! agreement between neighbouring combinations is the error estimate reported as
//! [`Entry::uncertainty`]. Each step is rounded so that `θ + h` and `θ − h` are both exact in
//! `f64`, keeping the two points symmetric about `θ`. It costs up to 20 forward passes per entry
//! instead of 2, which is why large networks can check a seeded sample of entries
//! ([`Options::sample`]). Set the first step with [`Options::step`], or use the plain central
//! difference with [`Options::central`] (`Options::central(1e-6)` is PyTorch's scheme).
//!
//! The check runs in `f64`. In `f32` (`ε = 1.2e-7`) the rounding part alone is about
//! `6e-8 · |f| / h`: with `h = 1e-3` and a loss near 1 that is already 6e-5 on every entry, so
//! correct `f32` gradients land in the uncomfortable band (`examples/gradcheck_f32.rs` shows it).
//! Check an `f32` network through `net.cast::<f64>()`: its gradient formulas are the same.
//!
//! # Kinks
//!
//! At a kink the loss has no derivative (or no second derivative), and a finite difference across
//! it measures an average of two slopes. The checker finds the kinks the network declares:
//!
//! - activations: `relu`, `leaky_relu` and `elu` at a pre-activation of 0 (elu's second
//!   derivative jumps there even for α = 1), `softplus` at PyTorch's threshold 20 (see
//!   [`activation_kinks`]);
//! - losses: [`L1`](crate::loss::L1) where a residual `o − t` is 0, [`Huber`](crate::loss::Huber)
//!   where `|o − t| = δ` (see [`Loss::crosses_kink`](crate::Loss::crosses_kink)).
//!
//! For every step it takes, the checker compares the side of each such point that every
//! pre-activation (and every residual) is on at `θ − h`, `θ` and `θ + h`. An entry for which some
//! step crosses a kink is **flagged**: it is reported apart, with its numbers, and never failed.
//! Its numeric value still comes from the steps that do not cross (or, if all do, from a plain
//! central difference at `h = 1e-6`), so a flagged entry usually still agrees closely. A
//! pre-activation that crosses a kink and comes back within one step is not seen (it would have
//! to turn around within `h`). [`Bce`](crate::loss::Bce)'s clamps (its logs floored at -100, its
//! gradient's denominator at 1e-12, PyTorch's choices) are not treated as kinks: they only act
//! within about 1e-12 of 0 or 1. For plain functions, pass the kinks to
//! [`check_function_with_kinks`].
//!
//! # The report
//!
//! [`Report`]'s `Display` prints the counts (checked, flagged near a kink, failed), the scheme,
//! the rule, how many entries away from kinks fall in each band, one line per tensor (its counts
//! and worst entry; a mistake in a backward pass spreads to the layers before it, so the last
//! failing tensor is the place to look first), and the worst entries as PyTorch indexes them
//! (`fc2.weight[1][0]`, `fc2.bias[1]`) with analytic and numeric values, relative error, band and
//! PyTorch's verdict (`close` or `far`); flagged entries follow in their own table.

use core::fmt;
use std::collections::BTreeSet;
use std::string::String;
use std::vec::Vec;

use rand::Rng;

mod criteria;
mod function;
mod jacobian;
mod kink;
mod network;
mod numeric;
mod report;

pub use criteria::{relative_error, tolerance_ok, torch_close, Band};
pub use function::{assert_passes, check_function, check_function_with_kinks};
pub use jacobian::check_jacobian;
pub use kink::activation_kinks;
pub use network::{assert_gradients, check, check_gradient};
pub use report::{Entry, GradcheckError, Report};

use numeric::Estimate;

/// How the numeric derivative is computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Difference {
    /// `(f(θ + h) − f(θ − h)) / 2h`: two evaluations per entry.
    Central {
        /// The step.
        h: f64,
    },
    /// Central differences at `h, h/1.4, …, h/21` combined by Richardson extrapolation
    /// (Ridders' method): up to twenty evaluations per entry, accurate even for tiny entries.
    Extrapolated {
        /// The first (largest) step.
        h: f64,
    },
}

impl Difference {
    /// The step: the only one, or the first of the extrapolation.
    pub fn h(self) -> f64 {
        match self {
            Difference::Central { h } | Difference::Extrapolated { h } => h,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Difference::Central { h } => write!(f, "central differences at h = {}", short(h)),
            Difference::Extrapolated { h } => write!(
                f,
                "central differences from h = {} down to {}, extrapolated (Ridders)",
                short(h),
                short(h / numeric::SHRINK.powi(numeric::STEPS as i32 - 1))
            ),
        }
    }
}

/// A step for reading: `1e-2`, or three significant digits.
fn short(h: f64) -> String {
    let exact = format!("{h:e}");
    if exact.len() <= 6 {
        exact
    } else {
        format!("{h:.2e}")
    }
}

/// When an entry passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// PyTorch's rule holds, and the relative error is not above 1e-2 unless `|a − n|` is within
    /// four times the numeric derivative's estimated error (the default).
    Standard,
    /// PyTorch's rule alone: `|a − n| ≤ atol + rtol·|n|`.
    Torch,
    /// cs231n's relative error alone: below the given bound.
    Relative(f64),
}

/// Multiples of the numeric derivative's estimated error within which a difference is noise.
const NOISE: f64 = 4.0;

impl Rule {
    /// The rule in words, with the tolerances it uses.
    pub fn describe(self, atol: f64, rtol: f64) -> String {
        match self {
            Rule::Standard => format!(
                "|a − n| ≤ {atol:e} + {rtol:e}·|n| (PyTorch), and relative error ≤ 1e-2 \
                 unless |a − n| is within {NOISE}× the numeric error (cs231n's wrong band)"
            ),
            Rule::Torch => format!("|a − n| ≤ {atol:e} + {rtol:e}·|n| (PyTorch)"),
            Rule::Relative(max) => format!("relative error < {max:e} (cs231n)"),
        }
    }
}

/// Check a seeded random sample of entries instead of all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// How many entries (all of them if there are fewer).
    pub count: usize,
    /// The seed of the ChaCha8 stream that picks them: the same seed picks the same entries.
    pub seed: u64,
}

/// How to check: the numeric derivative, the tolerances, the pass rule, which entries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// The numeric derivative (default: extrapolated from h = 1e-2).
    pub difference: Difference,
    /// PyTorch's absolute tolerance (default 1e-5).
    pub atol: f64,
    /// PyTorch's relative tolerance (default 1e-3).
    pub rtol: f64,
    /// When an entry passes (default [`Rule::Standard`]).
    pub rule: Rule,
    /// `None` checks every entry (the default); `Some` a seeded sample.
    pub sample: Option<Sample>,
    /// How many of the worst entries the report prints (default 8).
    pub show: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            difference: Difference::Extrapolated { h: 1e-2 },
            atol: 1e-5,
            rtol: 1e-3,
            rule: Rule::Standard,
            sample: None,
            show: 8,
        }
    }
}

impl Options {
    /// The default options with the plain central difference at step `h` (PyTorch uses 1e-6).
    pub fn central(h: f64) -> Self {
        Options {
            difference: Difference::Central { h },
            ..Options::default()
        }
    }

    /// The same options with step `h` (the first step, when extrapolating).
    pub fn step(self, h: f64) -> Self {
        let difference = match self.difference {
            Difference::Central { .. } => Difference::Central { h },
            Difference::Extrapolated { .. } => Difference::Extrapolated { h },
        };
        Options { difference, ..self }
    }

    /// The same options checking `count` entries picked by a ChaCha8 stream seeded with `seed`.
    pub fn sample(self, count: usize, seed: u64) -> Self {
        Options {
            sample: Some(Sample { count, seed }),
            ..self
        }
    }

    /// The same options with another pass rule.
    pub fn rule(self, rule: Rule) -> Self {
        Options { rule, ..self }
    }

    /// The same options with PyTorch's tolerances set to `atol` and `rtol`.
    pub fn tolerances(self, atol: f64, rtol: f64) -> Self {
        Options { atol, rtol, ..self }
    }

    /// The same options printing the `show` worst entries.
    pub fn show(self, show: usize) -> Self {
        Options { show, ..self }
    }

    /// An error naming the first option out of range.
    fn validate(&self) -> Result<(), GradcheckError> {
        let invalid = |option, expected, found| {
            Err(GradcheckError::InvalidOption {
                option,
                expected,
                found,
            })
        };
        let h = self.difference.h();
        if h.is_nan() || h <= 0.0 || h.is_infinite() {
            return invalid("h", "a finite step above 0", h);
        }
        // A tolerance that is NaN, negative or infinite would pass every entry (or none): each
        // must be a finite number, so that a wrong gradient can fail.
        if !tolerance_ok(self.atol) {
            return invalid("atol", "a finite number ≥ 0", self.atol);
        }
        if !tolerance_ok(self.rtol) {
            return invalid("rtol", "a finite number ≥ 0", self.rtol);
        }
        if let Rule::Relative(max) = self.rule {
            if !tolerance_ok(max) || max == 0.0 {
                return invalid("rule", "a finite relative-error bound above 0", max);
            }
        }
        if let Some(Sample { count: 0, .. }) = self.sample {
            return invalid("sample", "at least 1 entry", 0.0);
        }
        Ok(())
    }
}

/// The entries to check, as (tensor, row, col), tensor by tensor and row by row: all of them, or
/// a seeded sample (Floyd's algorithm over the flat index).
fn select(
    shapes: &[(&'static str, usize, usize)],
    sample: Option<Sample>,
) -> Vec<(usize, usize, usize)> {
    let total: usize = shapes.iter().map(|&(_, rows, cols)| rows * cols).sum();
    let chosen: Option<BTreeSet<usize>> = sample.filter(|s| s.count < total).map(|s| {
        let mut rng = crate::init::seeded_rng(s.seed);
        let mut set = BTreeSet::new();
        for j in total - s.count..total {
            let pick = rng.random_range(0..=j);
            if !set.insert(pick) {
                set.insert(j);
            }
        }
        set
    });
    let mut entries = Vec::new();
    let mut flat = 0;
    for (tensor, &(_, rows, cols)) in shapes.iter().enumerate() {
        for row in 0..rows {
            for col in 0..cols {
                if chosen.as_ref().is_none_or(|set| set.contains(&flat)) {
                    entries.push((tensor, row, col));
                }
                flat += 1;
            }
        }
    }
    entries
}

/// Judges one entry under `options`.
fn judge(
    options: &Options,
    tensor: &'static str,
    row: usize,
    col: Option<usize>,
    analytic: f64,
    estimate: Estimate,
) -> Entry {
    let numeric = estimate.value;
    let relative = relative_error(analytic, numeric);
    let close = torch_close(analytic, numeric, options.atol, options.rtol);
    let breaks_rule = match options.rule {
        Rule::Standard => {
            !close || (relative > 1e-2 && (analytic - numeric).abs() > NOISE * estimate.uncertainty)
        }
        Rule::Torch => !close,
        Rule::Relative(max) => relative.is_nan() || relative >= max,
    };
    let failed = !analytic.is_finite() || (!estimate.near_kink && breaks_rule);
    Entry {
        tensor,
        row,
        col,
        analytic,
        numeric,
        uncertainty: estimate.uncertainty,
        relative_error: relative,
        band: Band::of(relative),
        torch_close: close,
        near_kink: estimate.near_kink,
        failed,
    }
}
