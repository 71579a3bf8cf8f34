//! Training health: the failures Karpathy's "Yes you should understand backprop" warns about,
//! found in a network over a data set and explained with a hint.
//!
//! A [`HealthMonitor`] runs every sample of a data set through the generated passes and reads
//! what the backward pass knows: which ReLU units never fire (dead: their gradient is zero for
//! ever), which sigmoid, tanh, softplus or ELU units sit where their local derivative vanishes
//! (saturated), how each layer's gradient norm compares with the next layer's (vanishing or
//! exploding across depth), how large the last optimizer step was against the weights (cs231n's
//! rule of thumb: an update-to-weight ratio of about 1e-3), and how many samples give the loss a
//! gradient of exactly zero (a clipped error has none outside its range). The result is data, a
//! [`HealthReport`], and text: each [`Finding`] has a one-line hint.
//!
//! The monitor's buffers are made once by [`HealthMonitor::new`]; [`HealthMonitor::observe`] and
//! the step hooks allocate nothing after that.
//!
//! ```
//! use backprop::health::{HealthMonitor, HealthOptions};
//! use backprop::prelude::*;
//!
//! network! { struct Net < 2 => relu 8 => sigmoid 1 > }
//!
//! let net = Net::<f64>::init(3);
//! let inputs = vec![SVector::<f64, 2>::new(0.5, -1.0), SVector::<f64, 2>::new(1.0, 0.25)];
//! let targets = vec![SVector::<f64, 1>::new(1.0), SVector::<f64, 1>::new(0.0)];
//! let mut monitor = HealthMonitor::new(&net);
//! let report = monitor.observe(&net, &Mse, &inputs, &targets, &HealthOptions::default()).unwrap();
//! assert_eq!(report.layers.len(), 2);
//! println!("{report}");
//! ```

use core::fmt;
use std::vec::Vec;

use nalgebra::SMatrix;

use crate::activation_kind::{ActivationKind, Derivative};
use crate::heap::{boxed, zeroed, Boxed, InPlace, Owned};
use crate::loss::{ClassIndexError, Loss, Reduction};
use crate::model::Model;
use crate::network::Network;
use crate::sample::SampleFor;
use crate::scalar::{constant, to_f64};
use crate::target::Target;

/// The local derivative below which a unit counts as saturated for a sample, unless
/// [`HealthOptions::saturation`] says otherwise: also the rule the pictures mark units with.
pub const SATURATION: f64 = 0.01;

/// The thresholds of a health report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthOptions {
    /// A unit's local derivative `|f'(z)|` below this counts as saturated for that sample
    /// (default 0.01: `sigmoid` at |z| > 4.6, `tanh` at |z| > 3.0).
    pub saturation: f64,
    /// A unit is saturated when it is for more than this fraction of the samples (default 0.5).
    pub saturated_samples: f64,
    /// A layer is reported when at least this fraction of its units is dead or saturated
    /// (default 0.1).
    pub unit_fraction: f64,
    /// A layer's gradient norm below this times the last layer's is vanishing (default 1e-2).
    pub vanishing: f64,
    /// A layer's gradient norm above this times the last layer's is exploding (default 1e2).
    pub exploding: f64,
    /// An update-to-weight ratio below this is too small (default 1e-5).
    pub small_update: f64,
    /// An update-to-weight ratio above this is too large (default 1e-1).
    pub large_update: f64,
    /// The loss is reported when more than this fraction of samples has an exactly zero gradient
    /// (default 0.1).
    pub zero_gradient_samples: f64,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            saturation: SATURATION,
            saturated_samples: 0.5,
            unit_fraction: 0.1,
            vanishing: 1e-2,
            exploding: 1e2,
            small_update: 1e-5,
            large_update: 1e-1,
            zero_gradient_samples: 0.1,
        }
    }
}

/// One layer's health over the data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerHealth {
    /// The layer's name (`fc1`).
    pub name: &'static str,
    /// Its activation.
    pub kind: ActivationKind,
    /// Its width.
    pub units: usize,
    /// Units that never fire: `relu`/`leaky_relu` units whose `z ≤ 0` for every sample.
    pub dead: usize,
    /// Units whose local derivative is below [`HealthOptions::saturation`] for most samples.
    pub saturated: usize,
    /// The 2-norm of the weight's gradient over the data set, reduced as the loss reduces a batch.
    pub gradient_norm: f64,
    /// This layer's gradient norm divided by the next layer's (`None` for the last layer).
    pub ratio_to_next: Option<f64>,
    /// `‖Δweight‖ / ‖weight‖` of the last step seen by [`HealthMonitor::after_step`].
    pub update_ratio: Option<f64>,
}

/// A problem a report found, with the numbers that show it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Finding {
    /// Units of a ReLU layer that never fire.
    Dead {
        /// The layer.
        layer: &'static str,
        /// Dead units.
        dead: usize,
        /// The layer's width.
        units: usize,
    },
    /// Units sitting where their activation is flat.
    Saturated {
        /// The layer.
        layer: &'static str,
        /// Its activation.
        kind: ActivationKind,
        /// Saturated units.
        saturated: usize,
        /// The layer's width.
        units: usize,
        /// Whether it is the output layer of a probability output (sigmoid or softmax).
        output: bool,
    },
    /// The first layer whose gradient is much smaller than the last layer's.
    Vanishing {
        /// The layer.
        layer: &'static str,
        /// The last layer.
        last: &'static str,
        /// Its gradient norm over the last layer's.
        ratio: f64,
    },
    /// The first layer whose gradient is much larger than the last layer's.
    Exploding {
        /// The layer.
        layer: &'static str,
        /// The last layer.
        last: &'static str,
        /// Its gradient norm over the last layer's.
        ratio: f64,
    },
    /// The last step changed the layer's weights by much less than 1e-3 of their size.
    SmallUpdates {
        /// The layer.
        layer: &'static str,
        /// `‖Δweight‖ / ‖weight‖`.
        ratio: f64,
    },
    /// The last step changed the layer's weights by much more than 1e-3 of their size.
    LargeUpdates {
        /// The layer.
        layer: &'static str,
        /// `‖Δweight‖ / ‖weight‖`.
        ratio: f64,
    },
    /// Samples whose loss gradient is exactly zero: they teach the network nothing.
    ZeroLossGradient {
        /// Such samples.
        samples: usize,
        /// All samples.
        of: usize,
    },
}

impl Finding {
    /// What to try, in one line.
    pub fn hint(&self) -> &'static str {
        match self {
            Finding::Dead { .. } => {
                "lower the learning rate, use He initialisation (init::kaiming_normal), or leaky_relu"
            }
            Finding::Saturated { output: true, .. } => {
                "drop the output activation and use the logits loss (BceWithLogits, CrossEntropy), \
                 or use Xavier initialisation and rescale the inputs"
            }
            Finding::Saturated { .. } => {
                "rescale the inputs (zero mean, unit variance) and use Xavier initialisation \
                 (init::xavier_uniform) or smaller initial weights"
            }
            Finding::Vanishing { .. } => {
                "gradients vanish across depth: use relu with He initialisation, fewer saturating \
                 layers, or rescale the inputs"
            }
            Finding::Exploding { .. } => {
                "gradients grow across depth: lower the learning rate, clip the gradients, or use \
                 smaller initial weights"
            }
            Finding::SmallUpdates { .. } => "the steps barely move the weights: raise the learning rate",
            Finding::LargeUpdates { .. } => "the steps are large against the weights: lower the learning rate",
            Finding::ZeroLossGradient { .. } => {
                "a clipped error has no gradient outside its range: use Huber instead of clipping \
                 the error, or clip the gradients"
            }
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Finding::Dead { layer, dead, units } => write!(
                f,
                "{layer}: {dead} of {units} ReLU units are dead (z ≤ 0 for every sample)"
            ),
            Finding::Saturated {
                layer,
                kind,
                saturated,
                units,
                ..
            } => write!(
                f,
                "{layer}: {saturated} of {units} {} units are saturated (local derivative near 0 \
                 for most samples)",
                kind.name()
            ),
            Finding::Vanishing { layer, last, ratio } => write!(
                f,
                "{layer}: its gradient is {ratio:.1e} of {last}'s (vanishing across depth)"
            ),
            Finding::Exploding { layer, last, ratio } => write!(
                f,
                "{layer}: its gradient is {ratio:.1e} times {last}'s (exploding across depth)"
            ),
            Finding::SmallUpdates { layer, ratio } => write!(
                f,
                "{layer}: the last step changed the weights by {ratio:.1e} of their norm (about \
                 1e-3 is healthy)"
            ),
            Finding::LargeUpdates { layer, ratio } => write!(
                f,
                "{layer}: the last step changed the weights by {ratio:.1e} of their norm (about \
                 1e-3 is healthy)"
            ),
            Finding::ZeroLossGradient { samples, of } => write!(
                f,
                "loss: {samples} of {of} samples have an exactly zero gradient"
            ),
        }
    }
}

/// What a health check found: per layer, for the loss, and the findings with hints.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthReport {
    /// The samples the report saw.
    pub samples: usize,
    /// Every layer, first to last.
    pub layers: Vec<LayerHealth>,
    /// Samples whose loss gradient (∂loss/∂output) is exactly zero.
    pub zero_loss_gradient: usize,
    /// What is wrong, worst kinds first in layer order; empty when all is well.
    pub findings: Vec<Finding>,
}

impl HealthReport {
    /// No finding.
    pub fn healthy(&self) -> bool {
        self.findings.is_empty()
    }

    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerHealth> {
        self.layers.iter().find(|layer| layer.name == name)
    }
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "health over {} samples: {}",
            self.samples,
            if self.healthy() {
                "no finding".into()
            } else {
                std::format!("{} finding(s)", self.findings.len())
            }
        )?;
        writeln!(
            f,
            "  layer       activation   units  dead  saturated  ‖∇W‖       ÷ next     update/weight"
        )?;
        for layer in &self.layers {
            let ratio = layer
                .ratio_to_next
                .map_or("-".into(), |r| std::format!("{r:.2e}"));
            let update = layer
                .update_ratio
                .map_or("-".into(), |r| std::format!("{r:.2e}"));
            writeln!(
                f,
                "  {:<10}  {:<11}  {:>5}  {:>4}  {:>9}  {:<9.3e}  {:<9}  {}",
                layer.name,
                layer.kind.name(),
                layer.units,
                layer.dead,
                layer.saturated,
                layer.gradient_norm,
                ratio,
                update
            )?;
        }
        writeln!(
            f,
            "  loss: {} of {} samples with a zero gradient",
            self.zero_loss_gradient, self.samples
        )?;
        for finding in &self.findings {
            writeln!(f, "  - {finding}")?;
            writeln!(f, "    hint: {}", finding.hint())?;
        }
        Ok(())
    }
}

/// Why a health check could not run.
#[derive(Clone, Debug, PartialEq)]
pub enum HealthError {
    /// The inputs and targets are not the same length.
    LengthMismatch {
        /// Number of inputs.
        inputs: usize,
        /// Number of targets.
        targets: usize,
    },
    /// There are no samples.
    EmptyDataSet,
    /// A target is not valid for the loss; `sample` is its row in the data set.
    InvalidTarget(ClassIndexError),
}

impl fmt::Display for HealthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthError::LengthMismatch { inputs, targets } => write!(
                f,
                "the data set has {inputs} inputs but {targets} targets; give one target per input"
            ),
            HealthError::EmptyDataSet => {
                write!(f, "the data set is empty: there is nothing to check")
            }
            HealthError::InvalidTarget(error) => write!(f, "invalid target: {error}"),
        }
    }
}

impl std::error::Error for HealthError {}

/// The buffers of a health check, made once: a one-sample workspace and batch, the gradient sum,
/// the weights before a step, and per-unit counters.
pub struct HealthMonitor<N, S, const I: usize, const O: usize>
where
    N: Model<I, O>,
    S: Target<N::Scalar, O>,
{
    ws: N::Workspace<1>,
    x: Owned<SMatrix<N::Scalar, I, 1>>,
    target: Owned<S::Batch<1>>,
    output: Owned<SMatrix<N::Scalar, O, 1>>,
    loss_gradient: Owned<SMatrix<N::Scalar, O, 1>>,
    grad: Boxed<N>,
    sum: Boxed<N>,
    before: Boxed<N>,
    /// Per unit, layer after layer: fired at least once.
    fired: Vec<bool>,
    /// Per unit, layer after layer: samples where it was saturated.
    flat: Vec<usize>,
    report: HealthReport,
}

impl<N, S, const I: usize, const O: usize> HealthMonitor<N, S, I, O>
where
    N: Model<I, O>,
    S: Target<N::Scalar, O>,
{
    /// The buffers for `net`'s architecture (the only allocation of a health check). The target
    /// type comes from the first [`HealthMonitor::observe`], or name it:
    ///
    /// ```
    /// use backprop::health::{HealthMonitor, HealthOptions};
    /// use backprop::prelude::*;
    ///
    /// network! { struct Net < 2 => relu 4 => 3 > }
    /// let net = Net::<f32>::init(1);
    /// // Class indices as targets; the widths are inferred from the network.
    /// let mut monitor: HealthMonitor<Net, usize, 2, 3> = HealthMonitor::new(&net);
    /// let report = monitor
    ///     .observe(&net, &CrossEntropy, &[[0.5, -1.0], [1.0, 0.25]], &[2, 0], &HealthOptions::default())
    ///     .unwrap();
    /// assert_eq!(report.samples, 2);
    /// ```
    pub fn new(net: &N) -> Self {
        let units: usize = N::LAYERS.iter().map(|layer| layer.outputs).sum();
        HealthMonitor {
            ws: net.workspace(),
            x: zeroed(),
            target: zeroed(),
            output: zeroed(),
            loss_gradient: zeroed(),
            grad: boxed(N::zeros),
            sum: boxed(N::zeros),
            before: boxed(N::zeros),
            fired: std::vec![false; units],
            flat: std::vec![0; units],
            report: HealthReport {
                samples: 0,
                layers: N::LAYERS
                    .iter()
                    .map(|info| LayerHealth {
                        name: info.name,
                        kind: info.kind,
                        units: info.outputs,
                        dead: 0,
                        saturated: 0,
                        gradient_norm: 0.0,
                        ratio_to_next: None,
                        update_ratio: None,
                    })
                    .collect(),
                zero_loss_gradient: 0,
                // At most one finding of each kind per layer, and one for the loss.
                findings: Vec::with_capacity(3 * N::LAYERS.len() + 1),
            },
        }
    }

    /// The report of the last [`HealthMonitor::observe`].
    pub fn report(&self) -> &HealthReport {
        &self.report
    }

    /// Checks `net` on every sample of the data set (`inputs[i]` with `targets[i]`) under
    /// `loss`, and returns the report: dead and saturated units, gradient norms across depth,
    /// zero loss gradients, and the update ratios of the last step seen by the step hooks.
    /// Allocates nothing.
    pub fn observe<X, L>(
        &mut self,
        net: &N,
        loss: &L,
        inputs: &[X],
        targets: &[S],
        options: &HealthOptions,
    ) -> Result<&HealthReport, HealthError>
    where
        X: SampleFor<N, N::Scalar, I>,
        L: Loss<N::Scalar, O, 1, S::Batch<1>>,
    {
        if inputs.len() != targets.len() {
            return Err(HealthError::LengthMismatch {
                inputs: inputs.len(),
                targets: targets.len(),
            });
        }
        if inputs.is_empty() {
            return Err(HealthError::EmptyDataSet);
        }
        S::check(targets).map_err(HealthError::InvalidTarget)?;
        self.fired.fill(false);
        self.flat.fill(0);
        for param in self.sum.params_mut() {
            param.values.fill(constant(0.0));
        }
        let mut zero_gradients = 0;
        for (row, sample) in inputs.iter().enumerate() {
            self.x.set_column(0, sample.as_vector());
            S::gather_into(&mut self.target, targets, &[row]).map_err(|mut error| {
                error.sample = row;
                HealthError::InvalidTarget(error)
            })?;
            InPlace::copy_from(&mut *self.output, net.forward_into(&self.x, &mut self.ws));
            loss.gradient(&*self.output, &*self.target, &mut *self.loss_gradient);
            let values = self.loss_gradient.as_slice();
            if values.iter().all(|&g| g == constant(0.0)) {
                zero_gradients += 1;
            }
            net.backward(&*self.x, &*self.target, loss, &mut self.ws, &mut *self.grad);
            self.sum.zip_params_mut(&*self.grad, |sum, grad| {
                for (s, &g) in sum.iter_mut().zip(grad) {
                    *s += g;
                }
            });
            self.count_units(options);
        }
        let scale = match <L as Loss<N::Scalar, O, 1, S::Batch<1>>>::REDUCTION {
            Reduction::Mean => 1.0 / inputs.len() as f64,
            Reduction::Sum => 1.0,
        };
        let samples = inputs.len();
        self.report.samples = samples;
        self.report.zero_loss_gradient = zero_gradients;
        let mut offset = 0;
        for (index, layer) in self.report.layers.iter_mut().enumerate() {
            let units = layer.units;
            let fired = &self.fired[offset..offset + units];
            let flat = &self.flat[offset..offset + units];
            layer.dead = if layer.kind.can_die() {
                fired.iter().filter(|&&f| !f).count()
            } else {
                0
            };
            layer.saturated = if layer.kind.can_saturate() {
                flat.iter()
                    .filter(|&&n| n as f64 > options.saturated_samples * samples as f64)
                    .count()
            } else {
                0
            };
            layer.gradient_norm = weight_norm(&*self.sum, index) * scale;
            offset += units;
        }
        for index in 0..self.report.layers.len() {
            let next = self.report.layers.get(index + 1).map(|l| l.gradient_norm);
            self.report.layers[index].ratio_to_next = next.map(|n| {
                let own = self.report.layers[index].gradient_norm;
                if n == 0.0 && own == 0.0 {
                    1.0
                } else {
                    own / n
                }
            });
        }
        self.find(options);
        Ok(&self.report)
    }

    /// Remembers `net`'s weights before an optimizer step (call [`HealthMonitor::after_step`]
    /// after it). Allocates nothing.
    pub fn before_step(&mut self, net: &N) {
        self.before
            .zip_params_mut(net, |before, now| before.copy_from_slice(now));
    }

    /// Records each layer's update-to-weight ratio `‖w_after − w_before‖ / ‖w_before‖` for the
    /// step since [`HealthMonitor::before_step`]. Allocates nothing.
    pub fn after_step(&mut self, net: &N) {
        for (index, layer) in self.report.layers.iter_mut().enumerate() {
            let (mut change, mut size) = (0.0, 0.0);
            let name = N::LAYERS[index].name;
            let after = net.params().nth(2 * index);
            let before = self.before.params().nth(2 * index);
            if let (Some(after), Some(before)) = (after, before) {
                debug_assert!(after.name.starts_with(name));
                for (&a, &b) in after.values.iter().zip(before.values) {
                    let (a, b) = (to_f64(a), to_f64(b));
                    change += (a - b) * (a - b);
                    size += b * b;
                }
            }
            layer.update_ratio = Some(if size > 0.0 {
                (change / size).sqrt()
            } else {
                f64::INFINITY
            });
        }
    }

    /// Counts, for the sample the workspace holds, the units that fired and those that were flat.
    fn count_units(&mut self, options: &HealthOptions) {
        let mut offset = 0;
        for info in N::LAYERS {
            let Some(view) = N::layer_values(&self.ws, info.name) else {
                continue;
            };
            for unit in 0..info.outputs {
                let (z, a) = (to_f64(view.z[unit]), to_f64(view.a[unit]));
                if info.kind.can_die() && z > 0.0 {
                    self.fired[offset + unit] = true;
                }
                if info.kind.can_saturate() {
                    let slope = info.kind.derivative(z, a).unwrap_or(1.0);
                    if slope.abs() < options.saturation {
                        self.flat[offset + unit] += 1;
                    }
                }
            }
            offset += info.outputs;
        }
    }

    /// The findings the report's numbers show under `options`.
    fn find(&mut self, options: &HealthOptions) {
        let report = &mut self.report;
        report.findings.clear();
        let last = report.layers.len().saturating_sub(1);
        let mut across_depth = false;
        for (index, layer) in report.layers.iter().enumerate() {
            let share = |count: usize| count as f64 >= options.unit_fraction * layer.units as f64;
            if layer.dead > 0 && share(layer.dead) {
                report.findings.push(Finding::Dead {
                    layer: layer.name,
                    dead: layer.dead,
                    units: layer.units,
                });
            }
            if layer.saturated > 0 && share(layer.saturated) {
                report.findings.push(Finding::Saturated {
                    layer: layer.name,
                    kind: layer.kind,
                    saturated: layer.saturated,
                    units: layer.units,
                    output: index == last && layer.kind.gives_probabilities(),
                });
            }
            // Across depth: the first layer whose gradient is out of range against the last
            // layer's (a gradual shrink of 0.1 per layer shows here, not between neighbours).
            let last_layer = &report.layers[last];
            if index < last && !across_depth {
                let ratio = if last_layer.gradient_norm == 0.0 && layer.gradient_norm == 0.0 {
                    1.0
                } else {
                    layer.gradient_norm / last_layer.gradient_norm
                };
                if ratio < options.vanishing {
                    across_depth = true;
                    report.findings.push(Finding::Vanishing {
                        layer: layer.name,
                        last: last_layer.name,
                        ratio,
                    });
                } else if ratio > options.exploding {
                    across_depth = true;
                    report.findings.push(Finding::Exploding {
                        layer: layer.name,
                        last: last_layer.name,
                        ratio,
                    });
                }
            }
            if let Some(ratio) = layer.update_ratio {
                if ratio < options.small_update {
                    report.findings.push(Finding::SmallUpdates {
                        layer: layer.name,
                        ratio,
                    });
                } else if ratio > options.large_update {
                    report.findings.push(Finding::LargeUpdates {
                        layer: layer.name,
                        ratio,
                    });
                }
            }
        }
        if report.zero_loss_gradient > 0
            && report.zero_loss_gradient as f64
                > options.zero_gradient_samples * report.samples as f64
        {
            report.findings.push(Finding::ZeroLossGradient {
                samples: report.zero_loss_gradient,
                of: report.samples,
            });
        }
    }
}

/// The 2-norm of the weight of layer `index` (parameters come weight, bias, layer by layer).
fn weight_norm<N: Network>(net: &N, index: usize) -> f64 {
    net.params().nth(2 * index).map_or(0.0, |weight| {
        weight
            .values
            .iter()
            .map(|&v| to_f64(v) * to_f64(v))
            .sum::<f64>()
            .sqrt()
    })
}

/// A one-off health check of `net` over a data set (makes a [`HealthMonitor`] and observes once).
pub fn health<N, X, S, L, const I: usize, const O: usize>(
    net: &N,
    loss: &L,
    inputs: &[X],
    targets: &[S],
    options: &HealthOptions,
) -> Result<HealthReport, HealthError>
where
    N: Model<I, O>,
    X: SampleFor<N, N::Scalar, I>,
    S: Target<N::Scalar, O>,
    L: Loss<N::Scalar, O, 1, S::Batch<1>>,
{
    let mut monitor = HealthMonitor::<N, S, I, O>::new(net);
    monitor.observe(net, loss, inputs, targets, options)?;
    Ok(monitor.report)
}
