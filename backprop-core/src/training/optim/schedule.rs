//! Learning-rate schedules with `torch.optim.lr_scheduler`'s exact semantics and step order.
//!
//! A [`Schedule`] is built unattached, then [`Schedule::start`]ed on an optimizer, which does what
//! constructing the torch scheduler does (its initial step: LinearLR already scales the rate,
//! OneCycleLR sets it to `max_lr / div_factor`); after that, [`Schedule::step`] is torch's
//! `scheduler.step()`, called after the optimizer's step, once per epoch or once per batch. The
//! rates are computed as torch computes them, in the same order of `f64` operations: the
//! chainable forms (StepLR, ExponentialLR, CosineAnnealingLR and LinearLR multiply the optimizer's
//! current rate) and, where SequentialLR switches to a schedule at a milestone, that schedule's
//! closed form at epoch 0. OneCycleLR cycles the optimizer's momentum or `beta1` only when asked
//! ([`Schedule::cycle_momentum`]; torch's default `cycle_momentum=True` is not ours); SequentialLR
//! holds plain schedules (no nested SequentialLR or
//! OneCycleLR). A step allocates nothing.
//!
//! ```text
//! let mut sgd = Sgd::new(0.1).momentum(0.9);
//! let mut schedule = Schedule::sequential(
//!     vec![Schedule::linear_lr(0.1, 1.0, 3), Schedule::cosine_annealing_lr(10, 0.0)],
//!     &[3],
//! );
//! schedule.start::<Net<f64>, _>(&mut sgd)?;   // lr 0.01
//! for _ in 0..12 {
//!     sgd.step(&mut net, &grad);
//!     schedule.step::<Net<f64>, _>(&mut sgd)?;
//! }
//! ```
//! (run as `schedule_runs_as_documented` in `tests/suite/training_optim.rs`)

use core::fmt;
use std::string::String;
use std::vec::Vec;

use crate::network::Network;
use crate::optim::Optimizer;

/// The kind of a schedule and its hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// `StepLR(step_size, gamma)`.
    Step { step_size: u64, gamma: f64 },
    /// `MultiStepLR(milestones, gamma)`; milestones sorted, repeats counted.
    MultiStep { milestones: Vec<u64>, gamma: f64 },
    /// `ExponentialLR(gamma)`.
    Exponential { gamma: f64 },
    /// `CosineAnnealingLR(T_max, eta_min)`.
    Cosine { t_max: u64, eta_min: f64 },
    /// `LinearLR(start_factor, end_factor, total_iters)`.
    Linear { start: f64, end: f64, total: u64 },
    /// `OneCycleLR(max_lr, total_steps, ...)`, without momentum cycling.
    OneCycle(OneCycle),
    /// `SequentialLR(schedulers, milestones)`.
    Sequential {
        schedules: Vec<Schedule>,
        milestones: Vec<u64>,
    },
}

/// OneCycleLR's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
struct OneCycle {
    /// The peak rate.
    max_lr: f64,
    /// The steps of the whole cycle.
    total_steps: u64,
    /// The fraction of the cycle spent increasing the rate.
    pct_start: f64,
    /// Cosine annealing (torch's default) or linear.
    cos: bool,
    /// `initial_lr = max_lr / div_factor`.
    div_factor: f64,
    /// `min_lr = initial_lr / final_div_factor`.
    final_div_factor: f64,
    /// Three phases instead of two.
    three_phase: bool,
    /// Cycle the optimizer's momentum (or beta1) between these `(base, max)` values.
    momentum: Option<(f64, f64)>,
}

/// A learning-rate schedule: one of torch's schedulers, with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// What it computes.
    kind: Kind,
    /// torch's `last_epoch` (−1 before `start`).
    last_epoch: i64,
    /// torch's `_step_count`.
    step_count: u64,
    /// torch's `base_lrs[0]` (the `initial_lr`).
    base_lr: f64,
    /// The rate after the last step (`get_last_lr()[0]`).
    last_lr: f64,
}

/// A schedule's hyper-parameter out of range, or a step past OneCycleLR's end.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleError {
    /// The scheduler (`StepLR`, ...).
    pub schedule: &'static str,
    /// What is wrong.
    pub problem: &'static str,
    /// The value found.
    pub value: f64,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}, found {}",
            self.schedule, self.problem, self.value
        )
    }
}

impl core::error::Error for ScheduleError {}

/// An error unless `ok`.
fn require(
    ok: bool,
    schedule: &'static str,
    problem: &'static str,
    value: f64,
) -> Result<(), ScheduleError> {
    if ok {
        Ok(())
    } else {
        Err(ScheduleError {
            schedule,
            problem,
            value,
        })
    }
}

/// Python's `bisect_right`: how many of the sorted `values` are ≤ `x`.
fn bisect_right(values: &[u64], x: i64) -> usize {
    values.iter().take_while(|&&v| (v as i64) <= x).count()
}

impl Schedule {
    /// A schedule of `kind`, not started.
    fn of(kind: Kind) -> Self {
        Schedule {
            kind,
            last_epoch: -1,
            step_count: 0,
            base_lr: f64::NAN,
            last_lr: f64::NAN,
        }
    }

    /// `StepLR`: the rate times `gamma` every `step_size` steps.
    pub fn step_lr(step_size: u64, gamma: f64) -> Self {
        Self::of(Kind::Step { step_size, gamma })
    }

    /// `MultiStepLR`: the rate times `gamma` at each milestone (a repeated one counts again).
    pub fn multi_step_lr(milestones: &[u64], gamma: f64) -> Self {
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        Self::of(Kind::MultiStep { milestones, gamma })
    }

    /// `ExponentialLR`: the rate times `gamma` every step.
    pub fn exponential_lr(gamma: f64) -> Self {
        Self::of(Kind::Exponential { gamma })
    }

    /// `CosineAnnealingLR`: from the base rate down to `eta_min` over `t_max` steps, by a cosine
    /// (and back up after, periodically, as torch's recursive form does).
    pub fn cosine_annealing_lr(t_max: u64, eta_min: f64) -> Self {
        Self::of(Kind::Cosine { t_max, eta_min })
    }

    /// `LinearLR`: the base rate scaled from `start_factor` to `end_factor` over `total_iters`
    /// steps (a warm-up when `start_factor < end_factor`).
    pub fn linear_lr(start_factor: f64, end_factor: f64, total_iters: u64) -> Self {
        Self::of(Kind::Linear {
            start: start_factor,
            end: end_factor,
            total: total_iters,
        })
    }

    /// `OneCycleLR(max_lr, total_steps)` with torch's defaults: `pct_start` 0.3, cosine
    /// annealing, `div_factor` 25, `final_div_factor` 1e4, two phases; no momentum cycling
    /// unless [`Schedule::cycle_momentum`] (torch's `cycle_momentum=False`).
    pub fn one_cycle_lr(max_lr: f64, total_steps: u64) -> Self {
        Self::of(Kind::OneCycle(OneCycle {
            max_lr,
            total_steps,
            pct_start: 0.3,
            cos: true,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            momentum: None,
        }))
    }

    /// OneCycleLR with momentum cycling (torch's `cycle_momentum=True`): the optimizer's momentum
    /// (SGD, RMSprop) or beta1 (Adam, AdamW) goes from `max_momentum` down to `base_momentum`
    /// while the rate rises, and back. torch's defaults are 0.85 and 0.95. Other schedules are
    /// returned unchanged.
    pub fn cycle_momentum(self, base_momentum: f64, max_momentum: f64) -> Self {
        match self.kind {
            Kind::OneCycle(one) => Self::of(Kind::OneCycle(OneCycle {
                momentum: Some((base_momentum, max_momentum)),
                ..one
            })),
            _ => self,
        }
    }

    /// OneCycleLR with these options (`cos`: cosine annealing, else linear); other schedules are
    /// returned unchanged.
    pub fn one_cycle_options(
        self,
        pct_start: f64,
        cos: bool,
        div_factor: f64,
        final_div_factor: f64,
        three_phase: bool,
    ) -> Self {
        match self.kind {
            Kind::OneCycle(one) => Self::of(Kind::OneCycle(OneCycle {
                pct_start,
                cos,
                div_factor,
                final_div_factor,
                three_phase,
                ..one
            })),
            _ => self,
        }
    }

    /// `SequentialLR`: `schedules[i]` from `milestones[i − 1]` on (one fewer milestone than
    /// schedules, increasing); at a milestone the next schedule starts from its epoch 0.
    pub fn sequential(schedules: Vec<Schedule>, milestones: &[u64]) -> Self {
        Self::of(Kind::Sequential {
            schedules,
            milestones: milestones.to_vec(),
        })
    }

    /// torch's name for the schedule.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Step { .. } => "StepLR",
            Kind::MultiStep { .. } => "MultiStepLR",
            Kind::Exponential { .. } => "ExponentialLR",
            Kind::Cosine { .. } => "CosineAnnealingLR",
            Kind::Linear { .. } => "LinearLR",
            Kind::OneCycle(_) => "OneCycleLR",
            Kind::Sequential { .. } => "SequentialLR",
        }
    }

    /// The schedule's kind and hyper-parameters as text (no position), such as
    /// `StepLR(step_size=3, gamma=0.5)`: a checkpoint refuses a schedule that describes otherwise.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Step { step_size, gamma } => {
                std::format!("StepLR(step_size={step_size}, gamma={gamma:?})")
            }
            Kind::MultiStep { milestones, gamma } => {
                std::format!("MultiStepLR(milestones={milestones:?}, gamma={gamma:?})")
            }
            Kind::Exponential { gamma } => std::format!("ExponentialLR(gamma={gamma:?})"),
            Kind::Cosine { t_max, eta_min } => {
                std::format!("CosineAnnealingLR(T_max={t_max}, eta_min={eta_min:?})")
            }
            Kind::Linear { start, end, total } => std::format!(
                "LinearLR(start_factor={start:?}, end_factor={end:?}, total_iters={total})"
            ),
            Kind::OneCycle(one) => std::format!(
                "OneCycleLR(max_lr={:?}, total_steps={}, pct_start={:?}, anneal_strategy={}, \
                 div_factor={:?}, final_div_factor={:?}, three_phase={}, momentum={:?})",
                one.max_lr,
                one.total_steps,
                one.pct_start,
                if one.cos { "cos" } else { "linear" },
                one.div_factor,
                one.final_div_factor,
                one.three_phase,
                one.momentum
            ),
            Kind::Sequential {
                schedules,
                milestones,
            } => {
                let inner: Vec<String> = schedules.iter().map(Schedule::describe).collect();
                std::format!(
                    "SequentialLR([{}], milestones={milestones:?})",
                    inner.join(", ")
                )
            }
        }
    }

    /// torch's checks on the hyper-parameters, and more: every float finite, every period ≥ 1
    /// (torch divides by it), SequentialLR's milestones increasing and one fewer than its
    /// schedules, which are not SequentialLR or OneCycleLR.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let name = self.name();
        match &self.kind {
            Kind::Step { step_size, gamma } => {
                require(gamma.is_finite(), name, "gamma must be finite", *gamma)?;
                require(
                    *step_size >= 1,
                    name,
                    "step_size must be at least 1",
                    *step_size as f64,
                )
            }
            Kind::MultiStep { gamma, .. } | Kind::Exponential { gamma } => {
                require(gamma.is_finite(), name, "gamma must be finite", *gamma)
            }
            Kind::Cosine { t_max, eta_min } => {
                require(
                    eta_min.is_finite(),
                    name,
                    "eta_min must be finite",
                    *eta_min,
                )?;
                require(*t_max >= 1, name, "T_max must be at least 1", *t_max as f64)
            }
            Kind::Linear { start, end, total } => {
                require(
                    *start > 0.0 && *start <= 1.0,
                    name,
                    "start_factor must be greater than 0 and at most 1",
                    *start,
                )?;
                require(
                    (0.0..=1.0).contains(end),
                    name,
                    "end_factor must be between 0 and 1",
                    *end,
                )?;
                require(
                    *total >= 1,
                    name,
                    "total_iters must be at least 1",
                    *total as f64,
                )
            }
            Kind::OneCycle(one) => {
                require(
                    one.total_steps >= 1,
                    name,
                    "total_steps must be a positive integer",
                    one.total_steps as f64,
                )?;
                require(
                    (0.0..=1.0).contains(&one.pct_start),
                    name,
                    "pct_start must be between 0 and 1",
                    one.pct_start,
                )?;
                require(
                    one.max_lr.is_finite() && one.max_lr >= 0.0,
                    name,
                    "max_lr must be a finite number ≥ 0",
                    one.max_lr,
                )?;
                if let Some((base, max)) = one.momentum {
                    for value in [base, max] {
                        require(
                            value.is_finite() && value >= 0.0,
                            name,
                            "base_momentum and max_momentum must be finite numbers ≥ 0",
                            value,
                        )?;
                    }
                }
                for (problem, value) in [
                    ("div_factor must be finite and non-zero", one.div_factor),
                    (
                        "final_div_factor must be finite and non-zero",
                        one.final_div_factor,
                    ),
                ] {
                    require(value.is_finite() && value != 0.0, name, problem, value)?;
                }
                Ok(())
            }
            Kind::Sequential {
                schedules,
                milestones,
            } => {
                require(
                    !schedules.is_empty(),
                    name,
                    "expects at least one scheduler",
                    0.0,
                )?;
                require(
                    milestones.len() + 1 == schedules.len(),
                    name,
                    "expects one milestone fewer than schedulers",
                    milestones.len() as f64,
                )?;
                for pair in milestones.windows(2) {
                    require(
                        pair[0] < pair[1],
                        name,
                        "milestones must increase",
                        pair[1] as f64,
                    )?;
                }
                for schedule in schedules {
                    require(
                        !matches!(schedule.kind, Kind::Sequential { .. } | Kind::OneCycle(_)),
                        name,
                        "cannot hold a SequentialLR or OneCycleLR",
                        0.0,
                    )?;
                    schedule.validate()?;
                }
                Ok(())
            }
        }
    }

    /// Attaches the schedule to `optimizer` as constructing the torch scheduler does (its base
    /// rate is the optimizer's rate, or OneCycleLR's `max_lr / div_factor`) and takes the initial
    /// step, which sets the optimizer's rate. Validates first; restarts a started schedule.
    pub fn start<N: Network, O: Optimizer<N> + ?Sized>(
        &mut self,
        optimizer: &mut O,
    ) -> Result<(), ScheduleError> {
        if let Kind::OneCycle(OneCycle {
            momentum: Some(_), ..
        }) = self.kind
        {
            require(
                optimizer.momentum().is_some(),
                "OneCycleLR",
                "optimizer must support momentum or beta1 with `cycle_momentum` option enabled",
                0.0,
            )?;
        }
        let mut lr = optimizer.learning_rate();
        self.start_rate(&mut lr)?;
        optimizer.set_learning_rate(lr);
        self.cycle(optimizer);
        Ok(())
    }

    /// OneCycleLR's momentum at the current step, set on the optimizer (if it cycles).
    fn cycle<N: Network, O: Optimizer<N> + ?Sized>(&self, optimizer: &mut O) {
        if let Kind::OneCycle(one) = &self.kind {
            if let Some((base, max)) = one.momentum {
                optimizer
                    .set_momentum(one.anneal(self.last_epoch, [max, base, base, max, max, max]));
            }
        }
    }

    /// torch's `scheduler.step()`: the next rate, set on `optimizer`. Call it after the
    /// optimizer's step. Fails (changing nothing) only past OneCycleLR's `total_steps`.
    pub fn step<N: Network, O: Optimizer<N> + ?Sized>(
        &mut self,
        optimizer: &mut O,
    ) -> Result<(), ScheduleError> {
        let mut lr = optimizer.learning_rate();
        self.step_rate(&mut lr)?;
        optimizer.set_learning_rate(lr);
        self.cycle(optimizer);
        Ok(())
    }

    /// [`Schedule::start`] on a bare rate, the optimizer's `param_groups[0]["lr"]` (OneCycleLR's
    /// momentum cycling needs the optimizer: [`Schedule::start`]).
    pub fn start_rate(&mut self, lr: &mut f64) -> Result<(), ScheduleError> {
        self.validate()?;
        let initial_lr = match &self.kind {
            Kind::OneCycle(one) => one.max_lr / one.div_factor,
            _ => *lr,
        };
        self.base_lr = initial_lr;
        if let Kind::Sequential { schedules, .. } = &mut self.kind {
            // Each scheduler was constructed on the optimizer (base rate the first `initial_lr`,
            // one initial step each); SequentialLR resets the rate, undoes those steps and takes
            // the first scheduler's initial step again.
            for schedule in schedules.iter_mut() {
                schedule.base_lr = initial_lr;
                schedule.last_epoch = -1;
                schedule.step_count = 1;
            }
            *lr = initial_lr;
            schedules[0].step_count = 0;
            schedules[0].advance(lr, true)?;
            self.last_epoch = 0;
            self.step_count = 1;
            self.last_lr = *lr;
            return Ok(());
        }
        self.last_epoch = -1;
        self.step_count = 0;
        if let Kind::OneCycle(_) = self.kind {
            *lr = initial_lr;
        }
        self.advance(lr, true)
    }

    /// [`Schedule::step`] on a bare rate.
    pub fn step_rate(&mut self, lr: &mut f64) -> Result<(), ScheduleError> {
        if let Kind::Sequential {
            schedules,
            milestones,
        } = &mut self.kind
        {
            let epoch = self.last_epoch + 1;
            let index = bisect_right(milestones, epoch);
            let schedule = &mut schedules[index];
            if index > 0 && milestones[index - 1] as i64 == epoch {
                schedule.last_epoch = 0;
                *lr = schedule.closed_form();
                schedule.last_lr = *lr;
            } else {
                schedule.advance(lr, false)?;
            }
            self.last_epoch = epoch;
            self.step_count += 1;
            self.last_lr = *lr;
            return Ok(());
        }
        self.advance(lr, false)
    }

    /// The rate after the last step, torch's `get_last_lr()[0]`.
    pub fn last_lr(&self) -> f64 {
        self.last_lr
    }

    /// torch's `last_epoch`: the steps taken since `start` (−1 before it).
    pub fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    /// The steps OneCycleLR covers (its last valid `last_epoch`), if this is one.
    pub fn total_steps(&self) -> Option<u64> {
        match &self.kind {
            Kind::OneCycle(one) => Some(one.total_steps),
            _ => None,
        }
    }

    /// The schedule's position, for a checkpoint: `last_epoch`, `_step_count`, the base rate and
    /// the last rate, then each sub-schedule's four (SequentialLR).
    pub fn state(&self, out: &mut Vec<f64>) {
        out.extend([
            self.last_epoch as f64,
            self.step_count as f64,
            self.base_lr,
            self.last_lr,
        ]);
        if let Kind::Sequential { schedules, .. } = &self.kind {
            for schedule in schedules {
                schedule.state(out);
            }
        }
    }

    /// Restores a position [`Schedule::state`] wrote for a schedule of the same kinds; returns
    /// the values it did not read, or `None` if there are too few.
    pub fn set_state<'a>(&mut self, values: &'a [f64]) -> Option<&'a [f64]> {
        let (mine, mut rest) = (values.get(..4)?, values.get(4..)?);
        self.last_epoch = mine[0] as i64;
        self.step_count = mine[1] as u64;
        self.base_lr = mine[2];
        self.last_lr = mine[3];
        if let Kind::Sequential { schedules, .. } = &mut self.kind {
            for schedule in schedules {
                rest = schedule.set_state(rest)?;
            }
        }
        Some(rest)
    }

    /// `_update_lr()`: one more epoch, the chainable rate (`initial`: inside the constructor's
    /// initial step).
    fn advance(&mut self, lr: &mut f64, initial: bool) -> Result<(), ScheduleError> {
        let epoch = self.last_epoch + 1;
        let new = self.chainable(*lr, epoch, self.step_count + 1, initial)?;
        self.step_count += 1;
        self.last_epoch = epoch;
        *lr = new;
        self.last_lr = new;
        Ok(())
    }

    /// `get_lr()` at `epoch` with step count `count`, from the current rate `lr`.
    fn chainable(
        &self,
        lr: f64,
        epoch: i64,
        count: u64,
        initial: bool,
    ) -> Result<f64, ScheduleError> {
        let base = self.base_lr;
        Ok(match &self.kind {
            Kind::Step { step_size, gamma } => {
                if epoch == 0 || epoch % *step_size as i64 != 0 {
                    lr
                } else {
                    lr * gamma
                }
            }
            Kind::MultiStep { milestones, gamma } => {
                let count = milestones.iter().filter(|&&m| m as i64 == epoch).count();
                if count == 0 {
                    lr
                } else {
                    lr * gamma.powf(count as f64)
                }
            }
            Kind::Exponential { gamma } => {
                if initial {
                    lr
                } else {
                    lr * gamma
                }
            }
            Kind::Cosine { t_max, eta_min } => {
                let (t, eta) = (*t_max as f64, *eta_min);
                let pi = core::f64::consts::PI;
                if initial {
                    lr
                } else if count == 1 && epoch > 0 {
                    eta + (base - eta) * (1.0 + (epoch as f64 * pi / t).cos()) / 2.0
                } else if (epoch - 1 - *t_max as i64).rem_euclid(2 * *t_max as i64) == 0 {
                    lr + (base - eta) * (1.0 - (pi / t).cos()) / 2.0
                } else {
                    (1.0 + (pi * epoch as f64 / t).cos())
                        / (1.0 + (pi * (epoch - 1) as f64 / t).cos())
                        * (lr - eta)
                        + eta
                }
            }
            Kind::Linear { start, end, total } => {
                if epoch == 0 {
                    lr * start
                } else if initial || epoch > *total as i64 {
                    lr
                } else {
                    lr * (1.0
                        + (end - start)
                            / (*total as f64 * start + (epoch - 1) as f64 * (end - start)))
                }
            }
            Kind::OneCycle(one) => {
                if epoch > one.total_steps as i64 {
                    return Err(ScheduleError {
                        schedule: "OneCycleLR",
                        problem: "stepped past total_steps",
                        value: epoch as f64,
                    });
                }
                one.rate(base, epoch)
            }
            Kind::Sequential { .. } => lr,
        })
    }

    /// `_get_closed_form_lr()` at the current `last_epoch`.
    fn closed_form(&self) -> f64 {
        let (base, epoch) = (self.base_lr, self.last_epoch);
        match &self.kind {
            Kind::Step { step_size, gamma } => {
                base * gamma.powf(epoch.div_euclid(*step_size as i64) as f64)
            }
            Kind::MultiStep { milestones, gamma } => {
                base * gamma.powf(bisect_right(milestones, epoch) as f64)
            }
            Kind::Exponential { gamma } => base * gamma.powf(epoch as f64),
            Kind::Cosine { t_max, eta_min } => {
                let pi = core::f64::consts::PI;
                eta_min + (base - eta_min) * (1.0 + (pi * epoch as f64 / *t_max as f64).cos()) / 2.0
            }
            Kind::Linear { start, end, total } => {
                base * (start + (end - start) * (*total as i64).min(epoch) as f64 / *total as f64)
            }
            // Not held by a SequentialLR (validate refuses them).
            Kind::OneCycle(one) => one.rate(base, epoch),
            Kind::Sequential { .. } => self.last_lr,
        }
    }
}

impl OneCycle {
    /// The rate at step `step`, from `initial_lr` (`get_lr`).
    fn rate(&self, initial_lr: f64, step: i64) -> f64 {
        let min_lr = initial_lr / self.final_div_factor;
        let max_lr = self.max_lr;
        if self.three_phase {
            self.anneal(
                step,
                [initial_lr, max_lr, max_lr, initial_lr, initial_lr, min_lr],
            )
        } else {
            self.anneal(step, [initial_lr, max_lr, max_lr, min_lr, 0.0, 0.0])
        }
    }

    /// The value at step `step` of a quantity that goes from `ends[2i]` to `ends[2i + 1]` over
    /// phase `i`, annealed as torch's `_anneal_func` does.
    fn anneal(&self, step: i64, ends: [f64; 6]) -> f64 {
        let total = self.total_steps as f64;
        let ends_at: [f64; 3] = if self.three_phase {
            [
                self.pct_start * total - 1.0,
                2.0 * self.pct_start * total - 2.0,
                total - 1.0,
            ]
        } else {
            [self.pct_start * total - 1.0, total - 1.0, f64::NAN]
        };
        let count = if self.three_phase { 3 } else { 2 };
        let step = step as f64;
        let mut start_step = 0.0;
        for (i, &end_step) in ends_at[..count].iter().enumerate() {
            if step <= end_step || i == count - 1 {
                let pct = (step - start_step) / (end_step - start_step);
                let (start, end) = (ends[2 * i], ends[2 * i + 1]);
                return if self.cos {
                    let cos_out = (core::f64::consts::PI * pct).cos() + 1.0;
                    end + (start - end) / 2.0 * cos_out
                } else {
                    (end - start) * pct + start
                };
            }
            start_step = end_step;
        }
        ends[0]
    }
}
