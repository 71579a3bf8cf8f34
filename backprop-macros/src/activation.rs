//! The activations `network!` knows (the table is `backprop-activations`', shared with the
//! runtime), how a declaration spells one, and how to suggest one for a typo.

pub use backprop_activations::{ActivationKind as Activation, Argument, ALIASES, NAMES};

/// The activation as a declaration would spell it, argument included: `leaky_relu(0.2)`.
pub fn spelling(activation: Activation) -> String {
    match activation.argument_value() {
        Some(value) => format!("{}({value:?})", activation.name()),
        None => activation.name().to_owned(),
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
