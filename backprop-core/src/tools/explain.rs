//! One gradient entry explained as the chain-rule factors that produce it, the way the seed post
//! computes `fc2.weight.grad[1][0] = loss' · sigmoid' · fc3.weight[0][1] · relu' · fc2.input[0]`.
//!
//! [`explain`] runs the forward pass, then walks back from the loss to the requested entry with
//! its own scalar arithmetic (a naive control for the generated backward pass). Where the path
//! from the entry to the loss is a single chain, each factor is shown with its value; where the
//! next layer has several units, the paths are summed and the sum is shown as a δ term with its
//! parts. For a batch, the gradient is the sum of the per-sample products.
//!
//! ```
//! # use backprop::explain::{Explanation, Factor};
//! // Explanations are plain data: a list of factors per sample, and their product.
//! let factors = vec![Factor::new("∂E/∂a1[0]", 2.0), Factor::new("fc1.input[0]", 0.5)];
//! assert_eq!(factors.iter().map(|f| f.value).product::<f64>(), 1.0);
//! ```

use std::fmt;
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec::Vec;

use nalgebra::SMatrix;

use crate::activation_kind::{ActivationKind, Derivative};
use crate::heap::{zeroed, InPlace};
use crate::loss::Loss;
use crate::model::Model;
use crate::network::LayerInfo;
use crate::sample::{BatchFor, SampleFor};
use crate::scalar::{constant, Scalar};

/// One factor of a chain-rule product: what it is and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Factor<T> {
    /// What the factor is, as the seed post writes it: `sigmoid'(z3[0])`, `fc3.weight[0][1]`.
    pub label: String,
    /// Its value.
    pub value: T,
    /// When the factor is a sum over several paths (a δ term), its terms; empty otherwise.
    pub terms: Vec<Factor<T>>,
}

impl<T> Factor<T> {
    /// A factor with no terms.
    pub fn new(label: impl Into<String>, value: T) -> Self {
        Factor {
            label: label.into(),
            value,
            terms: Vec::new(),
        }
    }
}

/// The factors of one sample's contribution to the gradient entry.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleChain<T> {
    /// The sample (column) of the batch.
    pub sample: usize,
    /// The factors, from the loss down to the entry's input.
    pub factors: Vec<Factor<T>>,
    /// Their product: this sample's contribution.
    pub value: T,
}

/// A gradient entry explained: the chain for every sample and their sum.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation<T> {
    /// The entry, as `fc2.weight[1][0]` or `fc2.bias[1]`.
    pub entry: String,
    /// One chain per sample.
    pub samples: Vec<SampleChain<T>>,
    /// The sum of the samples' products: the gradient entry.
    pub value: T,
}

/// Why an entry cannot be explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExplainError {
    /// No parameter has that name.
    UnknownParameter {
        /// The name asked for.
        name: String,
        /// The names the network has.
        known: Vec<&'static str>,
    },
    /// The row or column is outside the parameter's shape.
    OutOfRange {
        /// The parameter.
        name: String,
        /// The index asked for.
        index: (usize, usize),
        /// The parameter's shape.
        shape: (usize, usize),
    },
    /// A layer's activation is not one this module knows.
    UnknownActivation {
        /// The layer.
        layer: &'static str,
        /// Its activation as declared.
        activation: &'static str,
    },
}

impl fmt::Display for ExplainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExplainError::UnknownParameter { name, known } => {
                write!(
                    f,
                    "no parameter `{name}`: the network has {}",
                    known.join(", ")
                )
            }
            ExplainError::OutOfRange { name, index, shape } => write!(
                f,
                "`{name}` has shape {}×{}: entry [{}][{}] is outside it",
                shape.0, shape.1, index.0, index.1
            ),
            ExplainError::UnknownActivation { layer, activation } => {
                write!(
                    f,
                    "layer `{layer}` has activation `{activation}`, which cannot be explained"
                )
            }
        }
    }
}

impl std::error::Error for ExplainError {}

/// `f'(z)` of an entry-by-entry activation, given `a = f(z)`.
fn derivative_of(kind: ActivationKind, z: f64, a: f64) -> f64 {
    kind.derivative(z, a).unwrap_or(f64::NAN)
}

/// One layer's values for one sample, in f64.
struct LayerSample {
    /// The layer as declared.
    info: LayerInfo,
    /// Its activation.
    kind: ActivationKind,
    /// Pre-activation z.
    z: Vec<f64>,
    /// Output a.
    a: Vec<f64>,
    /// ∂E/∂a, computed here.
    upstream: Vec<f64>,
    /// ∂E/∂z, computed here.
    delta: Vec<f64>,
    /// weight[row][col], PyTorch indexing: one copy shared by every sample.
    weight: Rc<Vec<Vec<f64>>>,
}

/// Explains `name[row][col]` of the gradient of `loss` at input `x` and `target` (for a bias,
/// `col` is 0): every sample's chain of factors and their sum.
///
/// ```
/// use backprop::explain::{explain, ExplainError};
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > } // y = w·x + b
///
/// let mut net = Net::<f64>::zeros();
/// net.fc1.weight[(0, 0)] = 2.0;
/// // Two samples: x = 3 and 1, outputs 6 and 2, targets 5 and 0. MSE over 2 entries has
/// // ∂E/∂o = o − t = 1 and 2, so ∂E/∂w = 1·3 + 2·1 = 5, one product per sample.
/// let x = SMatrix::<f64, 1, 2>::new(3.0, 1.0);
/// let y = SMatrix::<f64, 1, 2>::new(5.0, 0.0);
/// let why = explain(&net, &x, &y, &Mse, "fc1.weight", 0, 0).unwrap();
/// assert_eq!(why.entry, "fc1.weight[0][0]");
/// assert!((why.value - 5.0).abs() < 1e-12);
/// assert!((why.samples[0].value - 3.0).abs() < 1e-12);
/// assert!((why.samples[1].value - 2.0).abs() < 1e-12);
/// for chain in &why.samples {
///     let product: f64 = chain.factors.iter().map(|f| f.value).product();
///     assert!((product - chain.value).abs() < 1e-12);
/// }
/// let unknown = explain(&net, &x, &y, &Mse, "fc2.weight", 0, 0);
/// assert!(matches!(unknown, Err(ExplainError::UnknownParameter { .. })));
/// ```
pub fn explain<N, L, Y, const I: usize, const O: usize, const B: usize>(
    net: &N,
    x: &impl BatchFor<N, N::Scalar, I, B>,
    target: &Y,
    loss: &L,
    name: &str,
    row: usize,
    col: usize,
) -> Result<Explanation<N::Scalar>, ExplainError>
where
    N: Model<I, O>,
    L: Loss<N::Scalar, O, B, Y>,
{
    let x = x.as_batch();
    let Some(param) = net.param(name) else {
        return Err(ExplainError::UnknownParameter {
            name: name.to_string(),
            known: net.params().map(|p| p.name).collect(),
        });
    };
    if row >= param.rows || col >= param.cols {
        return Err(ExplainError::OutOfRange {
            name: name.to_string(),
            index: (row, col),
            shape: (param.rows, param.cols),
        });
    }
    let by_hand = ByHand::new(net, x, target, loss)?;
    Ok(by_hand.entry(name, row, col))
}

/// Explains every entry of every parameter's gradient, in [`Network::params`] order and row by
/// row within a parameter (`fc1.weight[0][0]`, `fc1.weight[0][1]`, ..., `fc1.bias[0]`, ...), from
/// one forward pass and one scalar backward pass per sample: what a picture that explains any
/// entry on demand embeds.
///
/// ```
/// use backprop::explain::explain_all;
/// use backprop::prelude::*;
///
/// network! { struct Tiny < 2 => relu 2 => sigmoid 1 > }
///
/// let net = Tiny::<f64>::init(1);
/// let (x, y) = (SVector::<f64, 2>::new(0.5, -1.0), SVector::<f64, 1>::new(1.0));
/// let all = explain_all(&net, &x, &y, &Mse).unwrap();
/// assert_eq!(all.len(), Tiny::<f64>::PARAMETERS);
/// assert_eq!(all[0].entry, "fc1.weight[0][0]");
/// let mut ws = net.workspace();
/// let mut grad = Tiny::zeros();
/// net.backward(&x, &y, &Mse, &mut ws, &mut grad);
/// assert!((all[0].value - grad.fc1.weight[(0, 0)]).abs() < 1e-12);
/// ```
///
/// [`Network::params`]: crate::Network::params
pub fn explain_all<N, L, Y, const I: usize, const O: usize, const B: usize>(
    net: &N,
    x: &impl BatchFor<N, N::Scalar, I, B>,
    target: &Y,
    loss: &L,
) -> Result<Vec<Explanation<N::Scalar>>, ExplainError>
where
    N: Model<I, O>,
    L: Loss<N::Scalar, O, B, Y>,
{
    let x = x.as_batch();
    let by_hand = ByHand::new(net, x, target, loss)?;
    let mut all = Vec::with_capacity(N::PARAMETERS);
    for param in net.params() {
        for row in 0..param.rows {
            for col in 0..param.cols {
                all.push(by_hand.entry(param.name, row, col));
            }
        }
    }
    Ok(all)
}

/// Explains one entry of the input Jacobian at one sample, `jacobian[output][input] =
/// ∂output[o]/∂input[i]` (what the generated `net.jacobian(&x)` returns at `(o, i)`), as
/// chain-rule factors: the backward pass by hand seeded with ∂E/∂output = e_o (so `E` stands for
/// `output[o]`), then the sum over the first layer's units, `Σ_k fc1.weight[k][i] · δ1[k]`, where
/// the paths from the input split.
///
/// ```
/// use backprop::explain::explain_jacobian;
/// use backprop::prelude::*;
///
/// network! { struct Net < 2 => tanh 3 => sigmoid 1 > }
///
/// let net = Net::<f64>::init(4);
/// let x = SVector::<f64, 2>::new(0.5, -1.0);
/// let explanation = explain_jacobian(&net, &x, 0, 1).unwrap();
/// assert!((explanation.value - net.jacobian(&x)[(0, 1)]).abs() < 1e-12);
/// ```
pub fn explain_jacobian<N: Model<I, O>, const I: usize, const O: usize>(
    net: &N,
    x: &impl SampleFor<N, N::Scalar, I>,
    output: usize,
    input: usize,
) -> Result<Explanation<N::Scalar>, ExplainError> {
    let x = x.as_vector();
    if output >= N::OUTPUTS || input >= N::INPUTS {
        return Err(ExplainError::OutOfRange {
            name: "jacobian".to_string(),
            index: (output, input),
            shape: (N::OUTPUTS, N::INPUTS),
        });
    }
    let mut ws = net.workspace();
    net.forward_into(x, &mut ws);
    let mut seed = std::vec![0.0; N::OUTPUTS];
    seed[output] = 1.0;
    let by_hand = ByHand::seeded(net, x, &ws, &seed)?;
    let layers = &by_hand.samples[0];
    let first = &layers[0];
    let name = first.info.name;
    let mut factors = Vec::new();
    if first.info.outputs == 1 {
        delta_factors(layers, 0, 0, &mut factors);
        factors.push(Factor::new(
            format!("{name}.weight[0][{input}]"),
            first.weight[0][input],
        ));
    } else {
        let terms: Vec<Factor<f64>> = (0..first.info.outputs)
            .map(|k| {
                Factor::new(
                    format!("{name}.weight[{k}][{input}] · δ1[{k}]"),
                    first.weight[k][input] * first.delta[k],
                )
            })
            .collect();
        factors.push(Factor {
            label: format!("Σ_k {name}.weight[k][{input}] · δ1[k]"),
            value: terms.iter().map(|t| t.value).sum(),
            terms,
        });
    }
    let value: N::Scalar = constant(factors.iter().map(|f| f.value).product::<f64>());
    Ok(Explanation {
        entry: format!("jacobian[{output}][{input}]"),
        samples: std::vec![SampleChain {
            sample: 0,
            factors: factors.into_iter().map(to_scalar).collect(),
            value,
        }],
        value,
    })
}

/// Whether a unit is dead for a sample: a `relu` or `leaky_relu` unit whose pre-activation `z` is
/// at most 0, where ReLU passes no gradient back (and leaky ReLU only its small slope). Pictures
/// mark such units; any other activation is never dead by this rule.
///
/// ```
/// use backprop::explain::is_dead;
/// use backprop::{ActivationKind, LayerInfo};
///
/// let relu = LayerInfo {
///     name: "fc1", inputs: 4, outputs: 5, activation: "relu", kind: ActivationKind::Relu,
/// };
/// assert!(is_dead(&relu, -0.07_f32));
/// assert!(is_dead(&relu, 0.0_f32));
/// assert!(!is_dead(&relu, 0.38_f32));
/// let sigmoid = LayerInfo { activation: "sigmoid", kind: ActivationKind::Sigmoid, ..relu };
/// assert!(!is_dead(&sigmoid, -3.0_f32));
/// ```
pub fn is_dead<T: Scalar>(layer: &LayerInfo, z: T) -> bool {
    layer.kind.can_die() && z <= T::zero()
}

/// Whether a unit is saturated for a sample: a `sigmoid`, `tanh`, `softplus` or `elu` unit whose
/// local derivative `|f'(z)|` is below [`health::SATURATION`](crate::health::SATURATION) (0.01),
/// where almost no gradient flows back. The health report counts units by the same rule;
/// pictures mark them.
///
/// ```
/// use backprop::explain::is_saturated;
/// use backprop::{ActivationKind, LayerInfo};
///
/// let sigmoid = LayerInfo {
///     name: "fc1", inputs: 4, outputs: 5, activation: "sigmoid", kind: ActivationKind::Sigmoid,
/// };
/// let z = 8.0_f64;
/// assert!(is_saturated(&sigmoid, z, 1.0 / (1.0 + (-z).exp())));
/// assert!(!is_saturated(&sigmoid, 0.5_f64, 0.6225));
/// ```
pub fn is_saturated<T: Scalar>(layer: &LayerInfo, z: T, a: T) -> bool {
    layer.kind.can_saturate()
        && layer
            .kind
            .derivative(crate::scalar::to_f64(z), crate::scalar::to_f64(a))
            .is_some_and(|slope| slope.abs() < crate::health::SATURATION)
}

/// The forward pass and, for every sample, the backward pass in scalar f64 arithmetic: what
/// every entry's chain is read from.
struct ByHand {
    /// The layers' values, one list per sample.
    samples: Vec<Vec<LayerSample>>,
    /// The batch's inputs, column-major (sample by sample).
    inputs: Vec<f64>,
    /// The layers as declared.
    layers: &'static [LayerInfo],
}

impl ByHand {
    /// Runs the forward pass of `net` and the scalar backward pass of every sample.
    fn new<N, L, Y, const I: usize, const O: usize, const B: usize>(
        net: &N,
        x: &SMatrix<N::Scalar, I, B>,
        target: &Y,
        loss: &L,
    ) -> Result<Self, ExplainError>
    where
        N: Model<I, O>,
        L: Loss<N::Scalar, O, B, Y>,
    {
        let mut ws = net.workspace();
        let mut output = zeroed::<SMatrix<N::Scalar, O, B>>();
        InPlace::copy_from(&mut *output, net.forward_into(x, &mut ws));
        let mut loss_gradient = zeroed::<SMatrix<N::Scalar, O, B>>();
        loss.gradient(&*output, target, &mut *loss_gradient);
        let loss_gradient: Vec<f64> = loss_gradient
            .as_slice()
            .iter()
            .map(|v| f64_of(*v))
            .collect();
        Self::seeded(net, x, &ws, &loss_gradient)
    }

    /// The scalar backward pass of every sample from the forward pass that left `ws`, seeded
    /// with `seed` as ∂E/∂output (column-major, sample by sample).
    fn seeded<N: Model<I, O>, const I: usize, const O: usize, const B: usize>(
        net: &N,
        x: &SMatrix<N::Scalar, I, B>,
        ws: &N::Workspace<B>,
        seed: &[f64],
    ) -> Result<Self, ExplainError> {
        let loss_gradient = seed;
        let inputs: Vec<f64> = x.iter().map(|v| f64_of(*v)).collect();
        let weights: Vec<Rc<Vec<Vec<f64>>>> = N::LAYERS
            .iter()
            .map(|info| {
                let weight = net
                    .param(&format!("{}.weight", info.name))
                    .expect("every layer has a weight");
                Rc::new(
                    (0..weight.rows)
                        .map(|r| (0..weight.cols).map(|c| f64_of(weight.get(r, c))).collect())
                        .collect(),
                )
            })
            .collect();
        let samples = (0..B)
            .map(|sample| backward_by_hand::<N, I, O, B>(ws, &weights, loss_gradient, sample))
            .collect::<Result<_, _>>()?;
        Ok(ByHand {
            samples,
            inputs,
            layers: N::LAYERS,
        })
    }

    /// The explanation of `name[row][col]`, a parameter the network has.
    fn entry<T: Scalar>(&self, name: &str, row: usize, col: usize) -> Explanation<T> {
        let (layer_name, kind_of_param) = name.rsplit_once('.').unwrap_or((name, ""));
        let depth = self
            .layers
            .iter()
            .position(|l| l.name == layer_name)
            .unwrap_or(0);
        let mut samples = Vec::with_capacity(self.samples.len());
        let mut total: T = constant(0.0);
        for (sample, layers) in self.samples.iter().enumerate() {
            let factors = chain(
                layers,
                depth,
                row,
                col,
                kind_of_param == "weight",
                &self.inputs,
                sample,
            );
            let value: f64 = factors.iter().map(|f| f.value).product();
            let value: T = constant(value);
            total += value;
            samples.push(SampleChain {
                sample,
                factors: factors.into_iter().map(to_scalar).collect(),
                value,
            });
        }
        Explanation {
            entry: format!("{}{}", name, index_text(kind_of_param, row, col)),
            samples,
            value: total,
        }
    }
}

/// `[1][0]` for a weight, `[1]` for a bias.
fn index_text(kind: &str, row: usize, col: usize) -> String {
    if kind == "weight" {
        format!("[{row}][{col}]")
    } else {
        format!("[{row}]")
    }
}

/// A scalar as f64.
fn f64_of<T: Scalar>(value: T) -> f64 {
    crate::scalar::to_f64(value)
}

/// A factor in f64 converted to the network's scalar.
fn to_scalar<T: Scalar>(factor: Factor<f64>) -> Factor<T> {
    Factor {
        label: factor.label,
        value: constant(factor.value),
        terms: factor.terms.into_iter().map(to_scalar).collect(),
    }
}

/// The backward pass for one sample in plain scalar arithmetic: every layer's ∂E/∂a and ∂E/∂z.
fn backward_by_hand<N: Model<I, O>, const I: usize, const O: usize, const B: usize>(
    ws: &N::Workspace<B>,
    weights: &[Rc<Vec<Vec<f64>>>],
    loss_gradient: &[f64],
    sample: usize,
) -> Result<Vec<LayerSample>, ExplainError> {
    let mut layers = Vec::with_capacity(N::LAYERS.len());
    for info in N::LAYERS {
        let view = N::layer_values::<B>(ws, info.name).expect("every declared layer has values");
        let units = view.units;
        let column = |values: &[N::Scalar]| -> Vec<f64> {
            values[sample * units..(sample + 1) * units]
                .iter()
                .map(|v| f64_of(*v))
                .collect()
        };
        layers.push(LayerSample {
            info: *info,
            kind: info.kind,
            z: column(view.z),
            a: column(view.a),
            upstream: Vec::new(),
            delta: Vec::new(),
            weight: Rc::clone(&weights[layers.len()]),
        });
    }
    for k in (0..layers.len()).rev() {
        let upstream: Vec<f64> = if k + 1 == layers.len() {
            let units = layers[k].info.outputs;
            loss_gradient[sample * units..(sample + 1) * units].to_vec()
        } else {
            let next = &layers[k + 1];
            (0..layers[k].info.outputs)
                .map(|i| {
                    (0..next.info.outputs)
                        .map(|m| next.weight[m][i] * next.delta[m])
                        .sum()
                })
                .collect()
        };
        let layer = &layers[k];
        let delta = match layer.kind {
            ActivationKind::Softmax => {
                let dot: f64 = upstream.iter().zip(&layer.a).map(|(g, a)| g * a).sum();
                upstream
                    .iter()
                    .zip(&layer.a)
                    .map(|(g, a)| a * (g - dot))
                    .collect()
            }
            kind => (0..upstream.len())
                .map(|i| upstream[i] * derivative_of(kind, layer.z[i], layer.a[i]))
                .collect(),
        };
        layers[k].upstream = upstream;
        layers[k].delta = delta;
    }
    Ok(layers)
}

/// The factors of ∂E/∂(layer `depth`'s parameter [row][col]) for one sample.
fn chain(
    layers: &[LayerSample],
    depth: usize,
    row: usize,
    col: usize,
    weight: bool,
    inputs: &[f64],
    sample: usize,
) -> Vec<Factor<f64>> {
    let mut factors = Vec::new();
    delta_factors(layers, depth, row, &mut factors);
    if weight {
        let layer = &layers[depth];
        let value = if depth == 0 {
            inputs[sample * layer.info.inputs + col]
        } else {
            layers[depth - 1].a[col]
        };
        factors.push(Factor::new(
            format!("{}.input[{col}]", layer.info.name),
            value,
        ));
    }
    factors
}

/// Pushes the factors of δ_k[i] = ∂E/∂z_k[i], from the loss down.
fn delta_factors(layers: &[LayerSample], k: usize, i: usize, factors: &mut Vec<Factor<f64>>) {
    let layer = &layers[k];
    let number = k + 1;
    if layer.kind == ActivationKind::Softmax {
        // Softmax mixes its units: δ[i] = a[i] · (g[i] − Σ_j a[j] g[j]), one factor.
        factors.push(Factor::new(
            format!("softmax'ᵀ·∂E/∂a{number} [{i}]"),
            layer.delta[i],
        ));
        return;
    }
    if k + 1 == layers.len() {
        factors.push(Factor::new(
            format!("∂E/∂a{number}[{i}]"),
            layer.upstream[i],
        ));
    } else {
        let next = &layers[k + 1];
        if next.info.outputs == 1 {
            delta_factors(layers, k + 1, 0, factors);
            factors.push(Factor::new(
                format!("{}.weight[0][{i}]", next.info.name),
                next.weight[0][i],
            ));
        } else {
            let terms = (0..next.info.outputs)
                .map(|m| {
                    Factor::new(
                        format!("{}.weight[{m}][{i}] · δ{}[{m}]", next.info.name, number + 1),
                        next.weight[m][i] * next.delta[m],
                    )
                })
                .collect();
            factors.push(Factor {
                label: format!("Σ_m {}.weight[m][{i}] · δ{}[m]", next.info.name, number + 1),
                value: layer.upstream[i],
                terms,
            });
        }
    }
    if layer.kind != ActivationKind::Identity {
        let value = derivative_of(layer.kind, layer.z[i], layer.a[i]);
        let name = layer.kind.name();
        factors.push(Factor::new(format!("{name}'(z{number}[{i}])"), value));
    }
}

impl<T: Scalar + fmt::Display> fmt::Display for Explanation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, index) = self
            .entry
            .split_at(self.entry.find('[').unwrap_or(self.entry.len()));
        if name == "jacobian" {
            writeln!(f, "jacobian{index} = ∂output/∂input = {:.5}", self.value)?;
        } else {
            writeln!(f, "{name}.grad{index} = {:.5}", self.value)?;
        }
        for chain in &self.samples {
            if self.samples.len() > 1 {
                writeln!(f, "  sample {}: {:.5}", chain.sample, chain.value)?;
            }
            let labels: Vec<&str> = chain
                .factors
                .iter()
                .map(|factor| factor.label.as_str())
                .collect();
            let values: Vec<String> = chain
                .factors
                .iter()
                .map(|factor| format!("({:.5})", factor.value))
                .collect();
            writeln!(f, "    = {}", labels.join(" · "))?;
            writeln!(f, "    = {}", values.join(" · "))?;
            for factor in chain
                .factors
                .iter()
                .filter(|factor| !factor.terms.is_empty())
            {
                writeln!(f, "    where {} = {:.5}:", factor.label, factor.value)?;
                for term in &factor.terms {
                    writeln!(f, "      {} = {:.5}", term.label, term.value)?;
                }
            }
        }
        Ok(())
    }
}
