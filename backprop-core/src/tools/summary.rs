//! A network's `Debug`: its architecture and a line per tensor (shape, range, norm), not every
//! weight; the alternate form `{:#?}` prints every value, tensor by tensor.

use core::fmt;

use crate::network::Network;
use crate::scalar::to_f64;

/// Writes `net` for `Debug` under the type name `name`: `Net<4 => relu 5 => 1> { 31 parameters;
/// fc1.weight 5×4 in [-0.48, 0.49] ‖·‖ 1.79; ... }`, or, with `{:#?}`, every tensor's values
/// (column-major, as nalgebra stores them).
///
/// ```
/// use backprop::prelude::*;
///
/// network! { struct Net < 4 => relu 5 => 1 > }
///
/// let text = format!("{:?}", Net::<f32>::zeros());
/// assert!(text.starts_with("Net<4 => relu 5 => 1> { 31 parameters; fc1.weight 5×4"));
/// ```
pub fn debug_network<N: Network>(
    net: &N,
    f: &mut fmt::Formatter<'_>,
    name: &str,
    architecture: &str,
) -> fmt::Result {
    if f.alternate() {
        let mut out = f.debug_struct(name);
        for param in net.params() {
            out.field(param.name, &param.values);
        }
        return out.finish();
    }
    write!(f, "{name}<{architecture}> {{ {} parameters", N::PARAMETERS)?;
    for param in net.params() {
        let (mut low, mut high, mut square) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for &value in param.values {
            let value = to_f64(value);
            low = low.min(value);
            high = high.max(value);
            square += value * value;
        }
        write!(f, "; {} {}", param.name, param.rows)?;
        if param.cols != 1 {
            write!(f, "×{}", param.cols)?;
        }
        write!(f, " in [{low:.3}, {high:.3}] ‖·‖ {:.3}", libm::sqrt(square))?;
    }
    write!(f, " }}")
}
