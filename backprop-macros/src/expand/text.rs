//! The texts a network carries: its architecture and its derivation in delta-rule form.

use syn::Ident;

use super::layer_name;
use crate::activation::Activation;
use crate::valid::Network;
use syn::ext::IdentExt;

/// The declaration in its canonical spelling: `4 => relu 5 => relu 2 => sigmoid 1`.
pub(crate) fn architecture_text(network: &Network) -> String {
    let mut text = network.inputs.to_string();
    for layer in &network.layers {
        text.push_str(" => ");
        if layer.activation != Activation::Identity {
            text.push_str(&crate::activation::spelling(layer.activation));
            text.push(' ');
        }
        text.push_str(&layer.outputs.to_string());
    }
    text
}

/// The forward and backward passes of this architecture as text, in delta-rule form.
pub(crate) fn derivation_text(network: &Network, name: &Ident) -> String {
    let count = network.layers.len();
    let mut text = format!("{}: {}\n\n", name.unraw(), architecture_text(network));
    text.push_str("forward (a0 = x; a batch has one column per sample):\n");
    for (index, layer) in network.layers.iter().enumerate() {
        let (k, field) = (index + 1, layer_name(layer));
        text.push_str(&format!(
            "  z{k} = {field}.weight · a{} + {field}.bias    a{k} = {}(z{k})\n",
            k - 1,
            layer.activation.name()
        ));
    }
    text.push_str(&format!("  E = loss(a{count}, target)\n\n"));
    text.push_str("backward (δk = ∂E/∂zk; ⊙ multiplies entry by entry):\n");
    for (index, layer) in network.layers.iter().enumerate().rev() {
        let (k, field) = (index + 1, layer_name(layer));
        let upstream = if k == count {
            format!("∂E/∂a{k}")
        } else {
            format!(
                "({}.weightᵀ · δ{})",
                layer_name(&network.layers[index + 1]),
                k + 1
            )
        };
        let delta = match layer.activation {
            Activation::Identity => upstream,
            Activation::Softmax => format!("a{k} ⊙ ({upstream} − a{k}ᵀ·{upstream})"),
            other => format!("{upstream} ⊙ {}'(z{k})", other.name()),
        };
        text.push_str(&format!("  δ{k} = {delta}\n"));
        text.push_str(&format!(
            "  ∂E/∂{field}.weight = δ{k} · a{}ᵀ    ∂E/∂{field}.bias = δ{k}\n",
            k - 1
        ));
    }
    text.push_str(
        "with a batch, ∂E/∂weight and ∂E/∂bias add these up over the samples (columns).\n",
    );
    text
}
