//! The test suite, one binary: PyTorch parity, allocation counts, training, I/O, pictures and
//! the generated API. Run one group with `cargo test --test suite parity` (a module name filters
//! its tests); `tests/ui.rs` pins the compiler's messages separately.
//!
//! The counting allocator counts per thread, so the allocation tests share the binary with the
//! rest and still see only their own allocations.

#[global_allocator]
static GLOBAL: common::counting::Counting = common::counting::Counting;

#[macro_use]
mod common;

mod alloc;
mod alloc_large;
mod alloc_optim;
mod alloc_training;
mod alloc_try_step;
mod browser;
mod chain;
mod checkpoint;
mod classify;
mod costs;
mod declarations;
mod dsl;
mod explain;
mod export_roundtrip;
mod fused;
mod gradcheck;
mod health;
mod init;
mod io;
mod io_files;
mod io_fuzz;
mod io_save;
mod io_slice;
mod jacobian;
mod large;
mod model;
mod no_prelude;
mod optim;
mod parity;
mod pictures;
mod replay;
mod seed;
mod stack;
mod summary;
mod train;
mod train_safety;
mod training_loop;
mod training_optim;
mod weights;
