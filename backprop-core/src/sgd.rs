//! Plain stochastic gradient descent, `p ← p − lr · g`, as `torch.optim.SGD` does without momentum.

use crate::network::Network;
use crate::scalar::constant;

/// SGD with a fixed learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// The learning rate.
    pub lr: f64,
}

impl Sgd {
    /// SGD with learning rate `lr`.
    pub const fn new(lr: f64) -> Self {
        Sgd { lr }
    }

    /// Moves every parameter of `net` against its gradient in `grad`. Allocates nothing.
    pub fn step<N: Network>(&self, net: &mut N, grad: &N) {
        let lr: N::Scalar = constant(self.lr);
        for (param, grad) in net.params_mut().zip(grad.params()) {
            for (p, &g) in param.values.iter_mut().zip(grad.values) {
                *p -= lr * g;
            }
        }
    }
}
