//! Seeded, portable initialisation: the generator, PyTorch's default, Xavier/Glorot uniform and
//! He/Kaiming normal.
//!
//! Every function here draws from [`seeded_rng`] (ChaCha8) in `f64` with portable arithmetic
//! (`libm`, no platform math) and converts to the network's scalar, so a seed gives the same
//! network on every machine, in `f32` as the `f64` draws rounded. Weights are drawn row by row
//! (PyTorch's `[out][in]` order: rows are the fan-out, columns the fan-in), layer by layer.
//! [`torch_default`] is the generated `init(seed)` (through `Linear::torch_default`) for any
//! network; Xavier and He set every bias to zero, as is usual with them (PyTorch's functions only
//! touch the tensor they are given).
//!
//! ```
//! use backprop::init;
//! use backprop::prelude::*;
//!
//! backprop::network! { struct Net < 2 => tanh 3 => 1 > }
//!
//! // `init(seed)` is `torch_default`: the same seed gives the same network, on every machine.
//! let mut net = Net::<f64>::zeros();
//! init::torch_default(&mut net, 42);
//! assert_eq!(net, Net::<f64>::init(42));
//! assert_ne!(net, Net::<f64>::init(43));
//! // fc1's fan-in is 2: its weights and biases are within ±1/√2.
//! let bound = 1.0 / 2f64.sqrt();
//! assert!(net.fc1.weight.iter().chain(net.fc1.bias.iter()).all(|v| v.abs() <= bound));
//!
//! // Xavier: fc1's weights within ±√(6 / (2 + 3)), every bias zero.
//! init::xavier_uniform(&mut net, 42);
//! assert!(net.fc1.weight.iter().all(|w| w.abs() <= (6.0f64 / 5.0).sqrt()));
//! assert!(net.fc1.weight.iter().any(|&w| w != 0.0));
//! assert!(net.fc1.bias.iter().chain(&net.fc2.bias).all(|&b| b == 0.0));
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::network::Network;
use crate::scalar::constant;

/// The generator every seeded constructor uses: ChaCha8, whose stream is the same on every machine,
/// so a seed gives the same network everywhere (for a given `rand` release: a change in how `rand`
/// samples a range would change the draws, and would be a breaking change of this crate).
pub type InitRng = ChaCha8Rng;

/// A generator seeded with `seed`.
#[inline]
pub fn seeded_rng(seed: u64) -> InitRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// PyTorch's default `nn.Linear` initialisation from `seed`, for any network: each layer's weight
/// then bias uniform in ±1/√fan_in, the same draws as the generated `init(seed)`.
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 4 => relu 8 => 1 > }
///
/// let mut net = Net::<f64>::zeros();
/// backprop::init::torch_default(&mut net, 7);
/// assert_eq!(net, Net::<f64>::init(7)); // what the generated `init(seed)` draws
/// // fan-in 4 for fc1, 8 for fc2: bounds 1/2 and 1/√8
/// assert!(net.fc1.weight.iter().chain(&net.fc1.bias).all(|w| w.abs() <= 0.5));
/// assert!(net.fc2.weight.iter().chain(&net.fc2.bias).all(|w| w.abs() <= 8f64.sqrt().recip()));
/// ```
pub fn torch_default<N: Network>(net: &mut N, seed: u64) {
    let mut rng = seeded_rng(seed);
    let mut bound = 0.0;
    for mut param in net.params_mut() {
        // A layer's bias follows its weight and shares its fan-in.
        if param.name.ends_with(".weight") {
            bound = 1.0 / libm::sqrt(param.cols as f64);
        }
        for row in 0..param.rows {
            for col in 0..param.cols {
                let value = if bound > 0.0 {
                    rng.random_range(-bound..bound)
                } else {
                    0.0
                };
                param.set(row, col, constant(value));
            }
        }
    }
}

/// Xavier/Glorot uniform initialisation (gain 1), as `nn.init.xavier_uniform_`: every weight
/// uniform in ±√(6 / (fan_in + fan_out)), drawn row by row, layer by layer, from `seed`; biases 0.
pub fn xavier_uniform<N: Network>(net: &mut N, seed: u64) {
    let mut rng = seeded_rng(seed);
    fill_weights(
        net,
        |fan_in, fan_out| {
            let bound = libm::sqrt(6.0 / (fan_in + fan_out) as f64);
            move |rng: &mut InitRng| rng.random_range(-bound..=bound)
        },
        &mut rng,
    );
}

/// He/Kaiming normal initialisation for ReLU layers, as `nn.init.kaiming_normal_` in `fan_in` mode:
/// every weight normal with mean 0 and standard deviation √2 / √fan_in, drawn row by row, layer by
/// layer, from `seed`; biases 0.
pub fn kaiming_normal<N: Network>(net: &mut N, seed: u64) {
    let mut rng = seeded_rng(seed);
    fill_weights(
        net,
        |fan_in, _| {
            let std = libm::sqrt(2.0) / libm::sqrt(fan_in as f64);
            move |rng: &mut InitRng| std * standard_normal(rng)
        },
        &mut rng,
    );
}

/// A standard normal draw by the Box–Muller transform (portable: the same on every machine).
fn standard_normal(rng: &mut InitRng) -> f64 {
    // 1 − u is in (0, 1], so its logarithm is finite.
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    libm::sqrt(-2.0 * libm::log(u)) * libm::cos(2.0 * core::f64::consts::PI * v)
}

/// Fills every `.weight` tensor (PyTorch's `[out][in]` order) from the distribution `make` gives
/// for its fan-in and fan-out, and zeroes every bias.
fn fill_weights<N: Network, D: FnMut(&mut InitRng) -> f64>(
    net: &mut N,
    make: impl Fn(usize, usize) -> D,
    rng: &mut InitRng,
) {
    for mut param in net.params_mut() {
        if param.name.ends_with(".weight") {
            let mut draw = make(param.cols, param.rows);
            for row in 0..param.rows {
                for col in 0..param.cols {
                    param.set(row, col, constant(draw(rng)));
                }
            }
        } else {
            param.values.fill(constant(0.0));
        }
    }
}
