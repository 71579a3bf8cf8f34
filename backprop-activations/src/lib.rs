//! The activations `backprop` knows, as data: [`ActivationKind`], with each activation's name,
//! argument, kinks and failure modes. The `network!` macro parses a declaration's activations
//! into this type and writes it into every generated network's layer descriptions; the runtime
//! (explanations, gradient checks, health reports, weight-file naming) reads the same value.
//!
//! ```
//! use backprop_activations::{ActivationKind, Argument};
//!
//! let slope = ActivationKind::named("leaky_relu").unwrap();
//! assert_eq!(slope, ActivationKind::LeakyRelu(0.01)); // PyTorch's default slope
//! assert!(matches!(slope.argument(), Argument::Optional { default, .. } if default == 0.01));
//! assert_eq!(slope.with_argument(0.2).name(), "leaky_relu");
//! assert_eq!(ActivationKind::Relu.kinks(), &[0.0]);
//! assert!(ActivationKind::Softmax.gives_probabilities());
//! ```
#![no_std]
#![deny(missing_docs)]

/// One of the ten activations, with its argument where it takes one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationKind {
    /// `identity`, also what an omitted activation means.
    Identity,
    /// `relu`.
    Relu,
    /// `leaky_relu(slope)`, the negative slope (default 0.01).
    LeakyRelu(f64),
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `softplus` (β 1, threshold 20).
    Softplus,
    /// `elu(alpha)` (default 1).
    Elu(f64),
    /// `gelu` (erf form).
    Gelu,
    /// `silu`.
    Silu,
    /// `softmax` over a sample's units.
    Softmax,
}

/// Every activation name, as written in a declaration.
pub const NAMES: &[&str] = &[
    "identity",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softplus",
    "elu",
    "gelu",
    "silu",
    "softmax",
];

/// Names people bring from other libraries, and the name `backprop` uses for the same function.
pub const ALIASES: &[(&str, &str)] = &[
    ("linear", "identity"),
    ("none", "identity"),
    ("swish", "silu"),
    ("logistic", "sigmoid"),
    ("lrelu", "leaky_relu"),
];

/// What an activation's parentheses may hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Argument {
    /// No parentheses allowed.
    None,
    /// One optional number: what it means, its default and the closed range it must lie in.
    Optional {
        /// What the number is, as a message names it.
        meaning: &'static str,
        /// The value when the parentheses are omitted (PyTorch's default).
        default: f64,
        /// The smallest and largest accepted values; both finite in `f32`.
        range: (f64, f64),
    },
}

impl ActivationKind {
    /// The activation called `name` (as [`NAMES`] spells it), with its default argument.
    pub fn named(name: &str) -> Option<ActivationKind> {
        Some(match name {
            "identity" => ActivationKind::Identity,
            "relu" => ActivationKind::Relu,
            "leaky_relu" => ActivationKind::LeakyRelu(0.01),
            "sigmoid" => ActivationKind::Sigmoid,
            "tanh" => ActivationKind::Tanh,
            "softplus" => ActivationKind::Softplus,
            "elu" => ActivationKind::Elu(1.0),
            "gelu" => ActivationKind::Gelu,
            "silu" => ActivationKind::Silu,
            "softmax" => ActivationKind::Softmax,
            _ => return None,
        })
    }

    /// The activation's name as a declaration spells it, without arguments (`leaky_relu`).
    pub const fn name(self) -> &'static str {
        match self {
            ActivationKind::Identity => "identity",
            ActivationKind::Relu => "relu",
            ActivationKind::LeakyRelu(_) => "leaky_relu",
            ActivationKind::Sigmoid => "sigmoid",
            ActivationKind::Tanh => "tanh",
            ActivationKind::Softplus => "softplus",
            ActivationKind::Elu(_) => "elu",
            ActivationKind::Gelu => "gelu",
            ActivationKind::Silu => "silu",
            ActivationKind::Softmax => "softmax",
        }
    }

    /// What the activation's parentheses may hold.
    pub const fn argument(self) -> Argument {
        match self {
            // PyTorch takes any float, but its in-place backward rejects a negative slope, and a
            // slope above 1 turns the function upside down (steeper for negative inputs).
            ActivationKind::LeakyRelu(_) => Argument::Optional {
                meaning: "the negative slope",
                default: 0.01,
                range: (0.0, 1.0),
            },
            // PyTorch's in-place backward rejects a negative alpha; any size that `f32` holds
            // keeps `alpha · (exp(z) − 1)` finite, since `exp(z) − 1` lies in (−1, 0].
            ActivationKind::Elu(_) => Argument::Optional {
                meaning: "alpha",
                default: 1.0,
                range: (0.0, f32::MAX as f64),
            },
            _ => Argument::None,
        }
    }

    /// The argument, for an activation that takes one (`leaky_relu`'s slope, `elu`'s alpha).
    pub const fn argument_value(self) -> Option<f64> {
        match self {
            ActivationKind::LeakyRelu(value) | ActivationKind::Elu(value) => Some(value),
            _ => None,
        }
    }

    /// The same activation with its argument set to `value` (unchanged if it takes none).
    pub const fn with_argument(self, value: f64) -> ActivationKind {
        match self {
            ActivationKind::LeakyRelu(_) => ActivationKind::LeakyRelu(value),
            ActivationKind::Elu(_) => ActivationKind::Elu(value),
            other => other,
        }
    }

    /// Pre-activation values where the activation is not twice differentiable: 0 for `relu`,
    /// `leaky_relu` and `elu`, PyTorch's threshold 20 for `softplus`; none for smooth ones.
    pub const fn kinks(self) -> &'static [f64] {
        match self {
            ActivationKind::Relu | ActivationKind::LeakyRelu(_) | ActivationKind::Elu(_) => &[0.0],
            ActivationKind::Softplus => &[20.0],
            _ => &[],
        }
    }

    /// Whether a unit can die: `relu` and `leaky_relu` pass no (or only a small slope of)
    /// gradient back wherever `z ≤ 0`.
    pub const fn can_die(self) -> bool {
        matches!(self, ActivationKind::Relu | ActivationKind::LeakyRelu(_))
    }

    /// Whether a unit can saturate: `sigmoid`, `tanh`, `softplus` and `elu` have a local
    /// derivative that vanishes for large |z| (or large negative z).
    pub const fn can_saturate(self) -> bool {
        matches!(
            self,
            ActivationKind::Sigmoid
                | ActivationKind::Tanh
                | ActivationKind::Softplus
                | ActivationKind::Elu(_)
        )
    }

    /// Whether the activation turns logits into probabilities (`sigmoid`, `softmax`).
    pub const fn gives_probabilities(self) -> bool {
        matches!(self, ActivationKind::Sigmoid | ActivationKind::Softmax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_to_the_activation_of_that_name() {
        for name in NAMES {
            assert_eq!(ActivationKind::named(name).unwrap().name(), *name);
        }
        for (_, name) in ALIASES {
            assert!(NAMES.contains(name), "{name}");
        }
        assert_eq!(ActivationKind::named("swish"), None); // an alias, not a name
    }

    #[test]
    fn arguments_default_as_pytorch_and_stay_in_range() {
        for name in NAMES {
            let kind = ActivationKind::named(name).unwrap();
            match kind.argument() {
                Argument::None => assert_eq!(kind.argument_value(), None),
                Argument::Optional { default, range, .. } => {
                    assert_eq!(kind.argument_value(), Some(default));
                    assert!(range.0 <= default && default <= range.1);
                }
            }
        }
    }
}
