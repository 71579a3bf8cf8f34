//! What every benchmark file shares: the honesty check between generated and hand-written code,
//! the instruction-set cap, and the paired timing.

use backprop::arithmetic::{self, Isa};
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

/// Caps the kernels' instruction set as `BACKPROP_BENCH_ISA` says (`avx2` or `baseline`; unset
/// or `avx512`, the widest this processor has), to measure the narrower kernels on a machine with
/// wider ones, and prints the level the kernels run at.
pub fn isa_from_env() {
    match std::env::var("BACKPROP_BENCH_ISA").as_deref() {
        Ok("avx2") => arithmetic::set_widest(Isa::Avx2),
        Ok("baseline") => arithmetic::set_widest(Isa::Baseline),
        Ok("avx512") | Err(_) => {}
        Ok(other) => panic!("BACKPROP_BENCH_ISA={other}: avx512, avx2 or baseline"),
    }
    eprintln!("kernels: {:?}", arithmetic::level());
}

pub mod paired;
