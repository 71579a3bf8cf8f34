//! The numbers: scalars, activations and their description, losses, the layer type and its
//! kernels. Re-exported at the crate root (`backprop::loss`, `backprop::linear`, ...).

pub mod activation;
pub mod activation_kind;
pub mod arithmetic;
pub mod gemm;
pub mod kernels;
pub mod linear;
pub mod logistic;
pub mod loss;
pub mod scalar;
pub mod sizes;
