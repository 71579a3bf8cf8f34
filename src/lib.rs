//! Compile-time neural networks: a one-line declaration becomes a struct with statically sized
//! nalgebra layers and straight-line, allocation-free forward and backward code that computes
//! exactly what PyTorch computes.
//!
//! ```
//! use backprop::prelude::*;
//!
//! network! {
//!     /// The 4-5-2-1 network from the seed post.
//!     pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >
//! }
//!
//! let net = Net::<f64>::init(13);
//! let x = SVector::<f64, 4>::new(0.5, -1.0, 0.25, 2.0);
//! let y = SVector::<f64, 1>::new(1.0);
//! let mut ws = net.workspace();
//! let mut grad = Net::zeros();
//! let loss = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
//! assert!(loss > 0.0);
//! assert_eq!(grad.param("fc3.weight").unwrap().cols, 2);
//! ```
//!
//! # The declaration
//!
//! ```text
//! network! { $(#[attr])* $vis struct $Name < $inputs $( => $layer )+ > }
//! network!( $(#[backprop(crate = $path)])? < $inputs $( => $layer )+ > )  // a value, init(0)
//! $layer      := [$field_name :] [$activation] $width
//! $activation := relu | leaky_relu[(slope)] | sigmoid | tanh | identity | softplus | elu[(alpha)]
//!              | gelu | silu | softmax                  (omitted: identity)
//! ```
//!
//! Attributes go on the struct, and a `#[cfg]` on everything generated. The struct derives
//! `Clone`, `Debug` and `PartialEq` itself (a user's derive of them is dropped); with a renamed
//! dependency, `#[backprop(crate = ::bp)]` says where this crate is. Raw identifiers lose their
//! `r#` in names (`r#type` has `type.weight`). See [`network!`] for the details.
//!
//! # What a declaration generates
//!
//! For `struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >`:
//!
//! - `struct Net<T = f32>` with public fields `fc1`, `fc2`, `fc3` (or the names given), each a
//!   [`Linear`] with `weight: SMatrix<T, OUT, IN>` (PyTorch's `[out][in]`) and `bias: SVector<T, OUT>`;
//! - `struct NetWorkspace<T = f32, const B: usize = 1>`: the caller-owned buffers of a pass;
//! - constants `INPUTS`, `OUTPUTS`, `PARAMETERS` and `DERIVATION` (the delta rule for this network);
//! - `zeros()`, `init(seed)` (PyTorch's default `nn.Linear` initialisation, seeded), `workspace()`;
//! - `forward(&SVector<T, 4>)`, `forward_batch(&SMatrix<T, 4, B>)` (one column per sample),
//!   `forward_into(x, &mut ws)`, `loss(x, target, &loss)`;
//! - `backward(x, target, &loss, &mut ws, &mut grad) -> loss`, writing every gradient into `grad`,
//!   a value of the same type whose fields are the gradients of the same parameters;
//! - `cast::<U>()`, and an implementation of [`Network`]: named parameters (`"fc2.weight"`), layers;
//! - `jacobian(&x)`, `jvp`, `vjp`, `input_gradient` and `input_gradient_of(&ws)`: derivatives with
//!   respect to the input, straight-line and allocation-free.
//!
//! # What the library promises
//!
//! Each promise is pinned by a test in the repository:
//!
//! - PyTorch's numbers: outputs, losses, gradients, optimizer steps and input derivatives to 1e-12
//!   relative in `f64` and 1e-5 in `f32` (`tests/parity.rs`, `tests/optim.rs`, `tests/jacobian.rs`).
//! - Declarations: the macro never panics, every declaration it accepts compiles, every one it
//!   rejects gets a message on the offending token (the macro's fuzz suite, `tests/declarations.rs`,
//!   `tests/ui/`).
//! - Weight files: no file panics [`io::load`](crate::io::load), blocks it or makes it allocate
//!   beyond a small bound over the file's real size; a failed load changes nothing; a save is
//!   atomic (`tests/io_fuzz.rs`, `tests/io_files.rs`, `tests/io_save.rs`).
//! - Training: [`train::train`](crate::train::train) never returns `Ok` with a non-finite weight;
//!   bad hyper-parameters and targets are refused before the first step, and a step that would
//!   write a non-finite value is not applied (`tests/train_safety.rs`, `tests/train.rs`).
//! - The stack: no library operation puts a large network's data on the stack; `784 => relu 128
//!   => 10` trains at batch 1024 on a 512 KiB debug thread (`tests/stack.rs`).
//! - Allocation: forward, backward, optimizer steps and Jacobians allocate nothing once set up
//!   (`tests/alloc*.rs`).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub use backprop_core::*;
pub use backprop_macros::network;
pub use nalgebra;

/// The names most programs need: the macro, the traits, the losses, the optimizers and nalgebra's
/// static matrix types.
pub mod prelude {
    pub use crate::clip::{clip_grad_norm, clip_grad_value, Clip};
    pub use crate::loss::{
        Bce, BceWithLogits, ClassTargets, CrossEntropy, HalfSse, Huber, Mse, Sse, L1,
    };
    #[cfg(feature = "std")]
    pub use crate::optim::Schedule;
    pub use crate::{
        network, Adagrad, Adam, AdamW, Batched, Loss, Network, Objective, Optimizer, RmsProp,
        Scalar, Sgd,
    };
    pub use nalgebra::{SMatrix, SVector};
}

/// What generated code names; not part of the public API.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "alloc")]
    pub use alloc::boxed::Box;
    pub use backprop_core::*;
    pub use nalgebra;

    /// Layers above 16 384 weights: stored on the heap (`Box`) and built there directly. The macro
    /// names their type and constructors only through this module, so that without the `alloc`
    /// feature a declaration with such a layer gets one readable error, on the layer's width,
    /// from [`large::check`]; the rest of the expansion still compiles (the layer inline).
    pub mod large {
        use backprop_core::init::InitRng;
        use backprop_core::{Linear, Scalar, SupersetOf};

        /// How a large layer is stored: a [`Heap`](backprop_core::Heap) box with `alloc`, built and
        /// cloned in place.
        #[cfg(feature = "alloc")]
        pub type Layer<L> = backprop_core::Heap<L>;

        /// How a large layer is stored: without `alloc` there is no heap, and [`check`] fails.
        #[cfg(not(feature = "alloc"))]
        pub type Layer<L> = L;

        /// A zeroed layer, built in its storage.
        #[inline]
        pub fn zeros<T: Scalar, const IN: usize, const OUT: usize>() -> Layer<Linear<T, IN, OUT>> {
            #[cfg(feature = "alloc")]
            return Linear::boxed_zeros();
            #[cfg(not(feature = "alloc"))]
            return Linear::zeros();
        }

        /// PyTorch's default initialisation, built in its storage.
        #[inline]
        pub fn torch_default<T: Scalar, const IN: usize, const OUT: usize>(
            rng: &mut InitRng,
        ) -> Layer<Linear<T, IN, OUT>> {
            #[cfg(feature = "alloc")]
            return Linear::boxed_torch_default(rng);
            #[cfg(not(feature = "alloc"))]
            return Linear::torch_default(rng);
        }

        /// The layer in another scalar type, built in its storage.
        #[inline]
        pub fn cast<T: Scalar, U: Scalar + SupersetOf<T>, const IN: usize, const OUT: usize>(
            layer: &Linear<T, IN, OUT>,
        ) -> Layer<Linear<U, IN, OUT>> {
            #[cfg(feature = "alloc")]
            return layer.boxed_cast();
            #[cfg(not(feature = "alloc"))]
            return layer.cast();
        }

        /// Holds for every layer when the `alloc` feature gives large layers a heap to live on.
        #[diagnostic::on_unimplemented(
            message = "`{Self}` has more than 16 384 weights, so it is stored on the heap, which needs the `alloc` feature of `backprop`",
            label = "this layer needs the `alloc` feature",
            note = "enable `backprop`'s `alloc` feature (`std` includes it), or make the layer smaller: a layer of at most 16 384 weights (inputs × outputs) is stored inline"
        )]
        pub trait Storable {}

        #[cfg(feature = "alloc")]
        impl<T: Scalar, const IN: usize, const OUT: usize> Storable for Linear<T, IN, OUT> {}

        /// Compiles when large layers can be stored; the macro calls it once per large layer.
        pub const fn check<L: Storable>() {}
    }
}

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
