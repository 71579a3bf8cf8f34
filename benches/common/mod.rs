//! What every benchmark file shares: the honesty check between generated and hand-written code.

use backprop::Network;

/// Asserts that a generated network and the hand-written baseline's parameters (`slices`, in the
/// generated network's order) agree entry by entry to about 1e-5.
pub fn assert_agree<N: Network<Scalar = f32>>(what: &str, generated: &N, slices: &[&[f32]]) {
    assert_eq!(
        generated.params().count(),
        slices.len(),
        "{what}: tensor count"
    );
    for (param, hand) in generated.params().zip(slices) {
        assert_eq!(param.values.len(), hand.len(), "{what} {}", param.name);
        for (index, (&g, &h)) in param.values.iter().zip(hand.iter()).enumerate() {
            assert!(
                (g - h).abs() <= 1e-5 * (1.0 + h.abs()),
                "{what} {}[{index}]: generated {g}, baseline {h}",
                param.name
            );
        }
    }
}
