//! Tools that look at a network: classifier helpers, summaries, gradient checks, chain-rule
//! explanations and pictures. Re-exported at the crate root (`backprop::gradcheck`, ...).

pub mod classify;
#[cfg(feature = "std")]
pub mod dot;
#[cfg(feature = "std")]
pub mod explain;
#[cfg(feature = "std")]
pub mod gradcheck;
#[cfg(feature = "std")]
pub mod page;
pub mod summary;
