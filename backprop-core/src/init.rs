//! Seeded, portable random numbers for initialisation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator every seeded constructor uses: ChaCha8, whose stream is the same on every machine
/// and every version of this crate, so a seed always gives the same network.
pub type InitRng = ChaCha8Rng;

/// A generator seeded with `seed`.
#[inline]
pub fn seeded_rng(seed: u64) -> InitRng {
    ChaCha8Rng::seed_from_u64(seed)
}
