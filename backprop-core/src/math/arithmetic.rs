//! Which arithmetic the vector kernels use: the fastest this processor has, or one order pinned
//! everywhere.
//!
//! Every kernel of [`gemm`](crate::gemm) and `kernels` sums each entry in one
//! order fixed by the shapes alone, never by the vector width, so the AVX-512 and the AVX2/FMA
//! kernels give the same bits (tested). What a processor can change is whether a multiply and the
//! add after it round once (a fused multiply-add) or twice: x86-64 processors without FMA
//! (before Haswell), and every target in [`Arithmetic::Pinned`] mode, round twice.
//!
//! - [`Arithmetic::Fastest`] (the default): fused multiply-adds wherever the processor has them
//!   (AVX2/FMA or AVX-512 on x86-64, detected at run time with `std`; always on aarch64). Runs
//!   replay bit for bit on every processor with FMA, and differ in the last bits on one without.
//! - [`Arithmetic::Pinned`]: a multiply then an add everywhere, still with the widest vectors the
//!   processor has. A run replays bit for bit on any x86-64 (and any IEEE machine), at the cost
//!   BENCHMARKS.md measures.
//!
//! ```
//! use backprop::arithmetic::{self, Arithmetic};
//!
//! arithmetic::set(Arithmetic::Pinned);
//! assert_eq!(arithmetic::current(), Arithmetic::Pinned);
//! assert!(!arithmetic::level().fused);
//! arithmetic::set(Arithmetic::Fastest);
//! ```

use core::sync::atomic::{AtomicBool, Ordering};

/// How the kernels round a multiply followed by an add (see the [module](self) docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Arithmetic {
    /// Fused multiply-adds wherever the processor has them: the fastest, bit for bit the same on
    /// every processor with FMA.
    #[default]
    Fastest,
    /// A multiply then an add everywhere: bit for bit the same on every x86-64 processor.
    Pinned,
}

/// The process-wide choice; `false` is [`Arithmetic::Fastest`].
static PINNED: AtomicBool = AtomicBool::new(false);

/// Chooses the arithmetic of every kernel from now on, for the whole process. Set it once,
/// before training: a run that switches midway replays only if it switches at the same step.
pub fn set(arithmetic: Arithmetic) {
    PINNED.store(arithmetic == Arithmetic::Pinned, Ordering::Relaxed);
}

/// The arithmetic chosen by [`set`] ([`Arithmetic::Fastest`] unless set).
pub fn current() -> Arithmetic {
    if PINNED.load(Ordering::Relaxed) {
        Arithmetic::Pinned
    } else {
        Arithmetic::Fastest
    }
}

/// The vector instructions a kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 (x86-64, detected at run time).
    Avx512,
    /// AVX2 with FMA (x86-64, detected at run time).
    Avx2,
    /// The target's baseline: SSE2 on x86-64, NEON on aarch64, scalar elsewhere.
    Baseline,
}

/// What the kernels run with now: the instruction set and whether multiply-adds are fused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// The vector instructions.
    pub isa: Isa,
    /// Whether a multiply and the add after it round once.
    pub fused: bool,
}

/// The kernels' level on this processor under the [`current`] arithmetic.
#[inline]
pub fn level() -> Level {
    let fused = !PINNED.load(Ordering::Relaxed);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            return Level {
                isa: Isa::Avx512,
                fused,
            };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Level {
                isa: Isa::Avx2,
                fused,
            };
        }
    }
    // Fused multiply-add is an instruction on aarch64; on other targets without the run-time
    // check above it may be a slow library call, so the baseline multiplies and adds.
    Level {
        isa: Isa::Baseline,
        fused: fused && cfg!(target_arch = "aarch64"),
    }
}
