//! Where a network's activations have kinks, and whether a perturbation crossed one.

use std::vec::Vec;

use crate::activation_kind::ActivationKind;
use crate::model::Model;
use crate::network::LayerInfo;

/// Pre-activation values where an activation is not twice differentiable: 0 for `relu`,
/// `leaky_relu` and `elu` (whose second derivative jumps there even when α = 1), and PyTorch's
/// threshold 20 for `softplus` (above it softplus returns its input, a jump of about 2e-9).
/// Smooth activations have none. The same as [`ActivationKind::kinks`].
pub fn activation_kinks(activation: ActivationKind) -> &'static [f64] {
    activation.kinks()
}

/// The side of every kink each pre-activation of a network was on after a forward pass.
pub(crate) struct Sides {
    /// The layers with kinks and their kink points.
    layers: Vec<(&'static str, &'static [f64])>,
    /// For every such layer, unit, sample and kink point in turn: `z > kink`.
    above: Vec<bool>,
}

impl Sides {
    /// The sides after the pass that left `ws`.
    pub fn of<N: Model<I, O>, const I: usize, const O: usize, const B: usize>(
        ws: &N::Workspace<B>,
    ) -> Self {
        let layers: Vec<(&'static str, &'static [f64])> = N::LAYERS
            .iter()
            .map(|info: &LayerInfo| (info.name, info.kind.kinks()))
            .filter(|(_, kinks)| !kinks.is_empty())
            .collect();
        let mut sides = Sides {
            layers,
            above: Vec::new(),
        };
        sides.above = sides.read::<N, I, O, B>(ws).collect();
        sides
    }

    /// `z > kink` for every pre-activation and kink point of `ws`, in the stored order.
    fn read<'a, N: Model<I, O>, const I: usize, const O: usize, const B: usize>(
        &'a self,
        ws: &'a N::Workspace<B>,
    ) -> impl Iterator<Item = bool> + 'a {
        self.layers.iter().flat_map(move |&(name, kinks)| {
            let view = N::layer_values::<B>(ws, name).expect("every declared layer has values");
            view.z.iter().flat_map(move |&z| {
                kinks
                    .iter()
                    .map(move |&kink| crate::scalar::to_f64(z) > kink)
            })
        })
    }

    /// Whether some pre-activation in `ws` is on another side of a kink than it was.
    pub fn crossed<N: Model<I, O>, const I: usize, const O: usize, const B: usize>(
        &self,
        ws: &N::Workspace<B>,
    ) -> bool {
        self.read::<N, I, O, B>(ws)
            .zip(self.above.iter())
            .any(|(now, &before)| now != before)
    }
}
