//! The activations `network!` knows: their names, their arguments, and how to suggest one.

/// An activation after validation, with its argument filled in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `identity`, also what an omitted activation means.
    Identity,
    /// `relu`.
    Relu,
    /// `leaky_relu` with its negative slope (default 0.01).
    LeakyRelu(f64),
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `softplus` (β 1, threshold 20).
    Softplus,
    /// `elu` with its α (default 1).
    Elu(f64),
    /// `gelu`, erf form.
    Gelu,
    /// `silu`.
    Silu,
    /// `softmax` over each sample's units.
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

/// Names people bring from other libraries, and the name we use for the same function.
const ALIASES: &[(&str, &str)] = &[
    ("linear", "identity"),
    ("none", "identity"),
    ("swish", "silu"),
    ("logistic", "sigmoid"),
    ("lrelu", "leaky_relu"),
];

/// What an activation's parentheses may hold.
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

impl Activation {
    /// The activation called `name`, with its default argument, if there is one.
    pub fn named(name: &str) -> Option<Activation> {
        Some(match name {
            "identity" => Activation::Identity,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu(0.01),
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softplus" => Activation::Softplus,
            "elu" => Activation::Elu(1.0),
            "gelu" => Activation::Gelu,
            "silu" => Activation::Silu,
            "softmax" => Activation::Softmax,
            _ => return None,
        })
    }

    /// What the activation's parentheses may hold.
    pub fn argument(self) -> Argument {
        match self {
            // PyTorch takes any float, but its in-place backward rejects a negative slope, and a
            // slope above 1 turns the function upside down (steeper for negative inputs).
            Activation::LeakyRelu(_) => Argument::Optional {
                meaning: "the negative slope",
                default: 0.01,
                range: (0.0, 1.0),
            },
            // PyTorch's in-place backward rejects a negative alpha; any size that `f32` holds
            // keeps `alpha · (exp(z) − 1)` finite, since `exp(z) − 1` lies in (−1, 0].
            Activation::Elu(_) => Argument::Optional {
                meaning: "alpha",
                default: 1.0,
                range: (0.0, f32::MAX as f64),
            },
            _ => Argument::None,
        }
    }

    /// The same activation with its argument set to `value`.
    pub fn with_argument(self, value: f64) -> Activation {
        match self {
            Activation::LeakyRelu(_) => Activation::LeakyRelu(value),
            Activation::Elu(_) => Activation::Elu(value),
            other => other,
        }
    }

    /// The name as written in a declaration.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Elu(_) => "elu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Softmax => "softmax",
        }
    }

    /// The activation as a declaration would spell it, argument included: `leaky_relu(0.2)`.
    pub fn spelling(self) -> String {
        match self {
            Activation::LeakyRelu(value) | Activation::Elu(value) => {
                format!("{}({value:?})", self.name())
            }
            _ => self.name().to_owned(),
        }
    }
}

/// The known name closest to an unknown one, if any is close enough to be a likely typo.
pub fn suggest(unknown: &str) -> Option<&'static str> {
    let folded = fold(unknown);
    if let Some(name) = NAMES.iter().find(|name| fold(name) == folded) {
        return Some(name);
    }
    if let Some((_, name)) = ALIASES.iter().find(|(alias, _)| fold(alias) == folded) {
        return Some(name);
    }
    NAMES
        .iter()
        .map(|name| (edit_distance(&folded, &fold(name)), *name))
        .filter(|(distance, name)| *distance <= 2.max(name.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Lowercase without underscores, so that `LeakyReLU` and `leaky_relu` compare equal.
fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance: the fewest single-character edits from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name() {
        assert_eq!(suggest("rleu"), Some("relu"));
        assert_eq!(suggest("ReLU"), Some("relu"));
        assert_eq!(suggest("LeakyReLU"), Some("leaky_relu"));
        assert_eq!(suggest("sigmod"), Some("sigmoid"));
        assert_eq!(suggest("swish"), Some("silu"));
        assert_eq!(suggest("convolution"), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("relu", "relu"), 0);
    }
}
