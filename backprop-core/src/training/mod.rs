//! Training: initialisation, optimizers and schedules, clipping, the training loop, health
//! reports and checkpoints. Re-exported at the crate root (`backprop::optim`, `backprop::train`).

#[cfg(feature = "std")]
pub mod checkpoint;
pub mod clip;
#[cfg(feature = "std")]
pub mod health;
pub mod init;
pub mod optim;
pub mod step;
#[cfg(feature = "std")]
pub mod train;
