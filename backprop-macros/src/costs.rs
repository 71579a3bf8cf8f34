//! Costs known at compile time: the associated constants every generated network has (bytes of
//! parameters, of a network value, a gradient, a workspace and each optimizer's state;
//! multiply-adds of a forward pass and a training step) and the `#[budget(...)]` the build
//! enforces.
//!
//! Byte counts depend on the scalar type, on the target's pointer width and on whether the `alloc`
//! feature boxes large layers and workspace buffers, so they are generated as `const` expressions
//! over `core::mem::size_of` (evaluated by the compiler for the user's target and features), not
//! computed here. Multiply-adds depend only on the widths and are plain numbers.
//!
//! # Budget
//!
//! `#[budget(ram = 16384)]` on a declaration (`batch = B`, `scalar = f64`, `train = sgd |
//! sgd_momentum | adam | adamw`, `macs = N` are optional) becomes a `const` item that fails to
//! compile, on the attribute's tokens, when the network is over: RAM for inference is a network
//! value and a workspace for batch `B`; RAM for training adds a gradient and the optimizer's state.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Ident, LitInt};

use crate::expand::{private, respan};
use crate::names::{part_type, workspace as workspace_name};
use crate::valid::Network;

/// The optimizer a training budget counts the state of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Trainer {
    /// Plain SGD: no state.
    Sgd,
    /// SGD with momentum: one network-shaped buffer.
    SgdMomentum,
    /// Adam: two moments.
    Adam,
    /// AdamW: two moments.
    AdamW,
}

impl Trainer {
    /// The spellings `train = ...` accepts, in order.
    pub const NAMES: &'static [&'static str] = &["sgd", "sgd_momentum", "adam", "adamw"];

    /// The trainer spelled `name`.
    pub fn from_name(name: &str) -> Option<Trainer> {
        match name {
            "sgd" => Some(Trainer::Sgd),
            "sgd_momentum" => Some(Trainer::SgdMomentum),
            "adam" => Some(Trainer::Adam),
            "adamw" => Some(Trainer::AdamW),
            _ => None,
        }
    }
}

/// A checked `#[budget(...)]`.
#[derive(Clone)]
pub struct Budget {
    /// The most bytes of RAM, with the literal that said so.
    pub ram: Option<(u64, LitInt)>,
    /// The most multiply-adds of one pass (a forward pass, or a training step with `train`).
    pub macs: Option<(u64, LitInt)>,
    /// The batch size the budget is for (1 unless given).
    pub batch: usize,
    /// The scalar type the budget is for (`f32` unless given).
    pub scalar: Ident,
    /// Training on the device with this optimizer, or inference only.
    pub train: Option<Trainer>,
}

/// Multiply-adds of a forward pass for one sample: `Σ in·out` over the layers (one per weight).
pub fn forward_macs(network: &Network) -> usize {
    network
        .layers
        .iter()
        .map(|layer| layer.inputs * layer.outputs)
        .sum()
}

/// Multiply-adds of a training step for one sample: the forward pass, the weight gradients
/// (`δ·aᵀ`, one per weight) and the propagation `Wᵀ·δ` into every layer but the first (the input
/// needs no δ). Activations, the loss and the optimizer's update are element-wise, not
/// multiply-adds of a matrix product, and are not counted.
pub fn training_macs(network: &Network) -> usize {
    let first = network
        .layers
        .first()
        .map_or(0, |layer| layer.inputs * layer.outputs);
    3 * forward_macs(network) - first
}

/// The cost constants of `impl<T: Scalar> Net<T>`.
///
/// ```text
/// pub const PARAMETER_BYTES: usize = 37 * size_of::<T>();
/// pub const HEAP_BYTES: usize = 0 + owned_heap::<Linear<T, 784, 128>>();
/// pub const NETWORK_BYTES: usize = size_of::<Self>() + Self::HEAP_BYTES;
/// pub const GRADIENT_BYTES: usize = Self::NETWORK_BYTES;
/// pub const SGD_MOMENTUM_BYTES: usize = size_of::<Sgd<Self>>() + boxed_heap::<Self>() + Self::HEAP_BYTES;
/// ...
/// pub const fn workspace_bytes<const B: usize>() -> usize { NetWorkspace::<T, B>::BYTES }
/// ```
pub fn constants(network: &Network, name: &Ident, t: &Ident, b: &Ident) -> TokenStream {
    let bp = private(network);
    let usize_ = quote!(::core::primitive::usize);
    let size_of = quote!(::core::mem::size_of);
    let cost = quote!(#bp::cost);
    let workspace = workspace_name(name);
    let parameters: usize = network
        .layers
        .iter()
        .map(|layer| layer.inputs * layer.outputs + layer.outputs)
        .sum();
    let heap: Vec<TokenStream> = if network.parts.is_empty() {
        network
            .layers
            .iter()
            .filter(|layer| layer.on_heap())
            .map(|layer| {
                let (i, o) = (layer.inputs, layer.outputs);
                quote!(#cost::owned_heap::<#bp::Linear<#t, #i, #o>>())
            })
            .collect()
    } else {
        network
            .parts
            .iter()
            .map(|part| {
                let ty = part_type(name, &part.name);
                quote!(#ty::<#t>::HEAP_BYTES)
            })
            .collect()
    };
    let forward = forward_macs(network);
    let training = training_macs(network);
    quote! {
        /// Bytes of the parameter values alone (`PARAMETERS · size_of::<T>()`): what compiled-in
        /// weights take in flash.
        pub const PARAMETER_BYTES: #usize_ = #parameters * #size_of::<#t>();
        /// Heap bytes behind a network value: its large layers (over 16 384 weights), each a box
        /// with the `alloc` feature; 0 when every layer is inline.
        pub const HEAP_BYTES: #usize_ = 0 #(+ #heap)*;
        /// Bytes of one network value in RAM: the struct (`size_of::<Self>()`) and its heap bytes.
        pub const NETWORK_BYTES: #usize_ = #size_of::<Self>() + Self::HEAP_BYTES;
        /// Bytes of a gradient, a value of the network's own type.
        pub const GRADIENT_BYTES: #usize_ = Self::NETWORK_BYTES;
        /// Bytes of plain SGD (no momentum: no state beyond the struct).
        pub const SGD_BYTES: #usize_ = #size_of::<#bp::Sgd<Self>>();
        /// Bytes of SGD with momentum once its buffer (a network-shaped value) is made.
        pub const SGD_MOMENTUM_BYTES: #usize_ =
            #size_of::<#bp::Sgd<Self>>() + #cost::boxed_heap::<Self>() + Self::HEAP_BYTES;
        /// Bytes of Adam once its two moments (network-shaped values) are made.
        pub const ADAM_BYTES: #usize_ = #size_of::<#bp::Adam<Self>>()
            + #cost::boxed_heap::<#cost::Moments<Self>>()
            + 2 * Self::HEAP_BYTES;
        /// Bytes of AdamW once its two moments are made.
        pub const ADAMW_BYTES: #usize_ = #size_of::<#bp::AdamW<Self>>()
            + #cost::boxed_heap::<#cost::Moments<Self>>()
            + 2 * Self::HEAP_BYTES;
        /// Multiply-adds of a forward pass for one sample (one per weight).
        pub const FORWARD_MACS: #usize_ = #forward;
        /// Multiply-adds of a training step for one sample: forward, weight gradients, and the
        /// propagation of δ into every layer but the first. Element-wise work (activations, loss,
        /// the optimizer's update) is not counted.
        pub const TRAINING_MACS: #usize_ = #training;

        /// Bytes of a workspace for batches of `B` (the struct and its per-layer heap buffers).
        pub const fn workspace_bytes<const #b: #usize_>() -> #usize_ {
            #workspace::<#t, { #b }>::BYTES
        }

        /// Multiply-adds of a forward pass over a batch of `batch` samples.
        pub const fn forward_macs(batch: #usize_) -> #usize_ {
            Self::FORWARD_MACS * batch
        }

        /// Multiply-adds of a training step over a batch of `batch` samples.
        pub const fn training_macs(batch: #usize_) -> #usize_ {
            Self::TRAINING_MACS * batch
        }

        /// RAM for inference with the weights in RAM: a network value and a workspace for `B`.
        pub const fn inference_ram<const #b: #usize_>() -> #usize_ {
            Self::NETWORK_BYTES + #workspace::<#t, { #b }>::BYTES
        }

        /// RAM for inference with the weights compiled into flash (a `static` network): only the
        /// workspace for `B`.
        pub const fn flash_inference_ram<const #b: #usize_>() -> #usize_ {
            #workspace::<#t, { #b }>::BYTES
        }

        /// RAM for training on the device at batch `B`: the network, a gradient, a workspace and
        /// `optimizer_bytes` (one of `SGD_BYTES`, `SGD_MOMENTUM_BYTES`, `ADAM_BYTES`,
        /// `ADAMW_BYTES`).
        pub const fn training_ram<const #b: #usize_>(optimizer_bytes: #usize_) -> #usize_ {
            Self::NETWORK_BYTES + Self::GRADIENT_BYTES + #workspace::<#t, { #b }>::BYTES + optimizer_bytes
        }
    }
}

/// The cost constants of `impl<T: Scalar, const B: usize> NetWorkspace<T, B>`.
///
/// ```text
/// pub const HEAP_BYTES: usize = 0 + owned_heap::<LayerBuffers<T, 5, B>>() + ...;
/// pub const BYTES: usize = size_of::<Self>() + Self::HEAP_BYTES;
/// ```
pub fn workspace_constants(network: &Network, name: &Ident, t: &Ident, b: &Ident) -> TokenStream {
    let bp = private(network);
    let usize_ = quote!(::core::primitive::usize);
    let cost = quote!(#bp::cost);
    let heap: Vec<TokenStream> = if network.parts.is_empty() {
        network
            .layers
            .iter()
            .map(|layer| {
                let o = layer.outputs;
                quote!(#cost::owned_heap::<#bp::LayerBuffers<#t, #o, { #b }>>())
            })
            .collect()
    } else {
        network
            .parts
            .iter()
            .map(|part| {
                let ty = workspace_name(&part_type(name, &part.name));
                quote!(#ty::<#t, { #b }>::HEAP_BYTES)
            })
            .collect()
    };
    quote! {
        /// Heap bytes behind this workspace: each layer's buffers (`z`, `a`, `δ` for the batch),
        /// a box with the `alloc` feature; 0 without it (they are inline then).
        pub const HEAP_BYTES: #usize_ = 0 #(+ #heap)*;
        /// Bytes of this workspace in RAM: the struct and its heap bytes.
        pub const BYTES: #usize_ = ::core::mem::size_of::<Self>() + Self::HEAP_BYTES;
    }
}

/// The checks of a `#[budget(...)]`, each a `const` item spanned on the attribute's value.
///
/// ```text
/// const _: () = cost::ram_budget::<cost::OverBy<{ cost::excess(Net::<f32>::training_ram::<1>(Net::<f32>::ADAM_BYTES), 16384) }>>();
/// ```
pub fn budget_checks(network: &Network, name: &Ident) -> TokenStream {
    let Some(budget) = &network.budget else {
        return TokenStream::new();
    };
    let bp = private(network);
    let cost = quote!(#bp::cost);
    let cfgs = &network.cfgs;
    let scalar = &budget.scalar;
    let batch = budget.batch;
    let net = quote!(#name::<::core::primitive::#scalar>);
    let mut checks = TokenStream::new();
    if let Some((limit, literal)) = &budget.ram {
        let used = match budget.train {
            None if network.weights.is_some() => quote!(#net::flash_inference_ram::<#batch>()),
            None => quote!(#net::inference_ram::<#batch>()),
            Some(trainer) => {
                let optimizer = match trainer {
                    Trainer::Sgd => quote!(#net::SGD_BYTES),
                    Trainer::SgdMomentum => quote!(#net::SGD_MOMENTUM_BYTES),
                    Trainer::Adam => quote!(#net::ADAM_BYTES),
                    Trainer::AdamW => quote!(#net::ADAMW_BYTES),
                };
                quote!(#net::training_ram::<#batch>(#optimizer))
            }
        };
        let limit = *limit as usize;
        let check = respan(
            quote!(#cost::ram_budget::<#cost::OverBy<{ #cost::excess(#used, #limit) }>>()),
            literal.span(),
        );
        checks.extend(quote!(#(#cfgs)* const _: () = #check;));
    }
    if let Some((limit, literal)) = &budget.macs {
        let used = if budget.train.is_some() {
            quote!(#net::training_macs(#batch))
        } else {
            quote!(#net::forward_macs(#batch))
        };
        let limit = *limit as usize;
        let check = respan(
            quote!(#cost::macs_budget::<#cost::OverBy<{ #cost::excess(#used, #limit) }>>()),
            literal.span(),
        );
        checks.extend(quote!(#(#cfgs)* const _: () = #check;));
    }
    checks
}
