//! What generic code sees of a network: the [`Network`](network::Network) and
//! [`Model`](model::Model) traits, the inputs and targets they accept, the workspace's layer
//! buffers and heap storage. Re-exported at the crate root.

pub mod buffers;
pub mod heap;
pub mod model;
pub mod network;
pub mod sample;
pub mod target;
pub mod visitor;
