//! The allocation-free safetensors header scanner, shared with the `network!` macro: the
//! `backprop-scan` crate, re-exported.

pub use backprop_scan::*;
