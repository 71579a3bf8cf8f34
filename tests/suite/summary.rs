//! A network's `Debug` summarises (architecture, a line per tensor), `{:#?}` prints every value,
//! and `Default` is `zeros()`.

use backprop::prelude::*;

network! { struct Net < 4 => relu 5 => 1 > }
network! { struct Mnist < 784 => relu 128 => 10 > }

#[test]
fn debug_is_a_summary_and_the_alternate_form_has_every_value() {
    let mut net = Net::<f32>::zeros();
    net.fc1.weight[(0, 0)] = -0.5;
    net.fc1.weight[(4, 3)] = 2.0;
    let text = format!("{net:?}");
    assert!(
        text.starts_with("Net<4 => relu 5 => 1> { 31 parameters; fc1.weight 5×4"),
        "{text}"
    );
    // The range and the norm, by hand: entries -0.5, 2 and zeros; ‖·‖ = √4.25 = 2.062.
    assert!(
        text.contains("fc1.weight 5×4 in [-0.500, 2.000] ‖·‖ 2.062"),
        "{text}"
    );
    assert!(text.contains("fc2.bias 1 in [0.000, 0.000]"), "{text}");
    let full = format!("{net:#?}");
    assert!(full.matches("0.0").count() >= 29, "{full}");
    assert!(full.contains("-0.5") && full.contains("2.0"));
    // A large network's summary stays short: no 100 000 weights in it.
    let big = format!("{:?}", Mnist::<f32>::zeros());
    assert!(big.len() < 400, "{} characters", big.len());
}

#[test]
fn default_is_zeros() {
    assert_eq!(Net::<f64>::default(), Net::<f64>::zeros());
}

/// The example in `summary::debug_network`'s documentation.
#[test]
fn the_debug_network_doc_example_runs() {
    let text = format!("{:?}", Net::<f32>::zeros());
    assert!(text.starts_with("Net<4 => relu 5 => 1> { 31 parameters; fc1.weight 5×4"));
}
