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
//! Apart from that choice, [`set_widest`] caps the instruction set the kernels may use, as
//! `ONEDNN_MAX_CPU_ISA` does for oneDNN: AVX2 on a processor that slows its clock for AVX-512,
//! or to measure the AVX2 kernels on an AVX-512 machine. The bits do not change from AVX-512 to
//! AVX2; capping at [`Isa::Baseline`] on x86-64 also gives up fused multiply-adds, so it gives
//! the pinned bits.
//!
//! ```
//! use backprop::arithmetic::{self, Arithmetic, Isa};
//!
//! arithmetic::set(Arithmetic::Pinned);
//! assert_eq!(arithmetic::current(), Arithmetic::Pinned);
//! assert!(!arithmetic::level().fused);
//! arithmetic::set(Arithmetic::Fastest);
//!
//! arithmetic::set_widest(Isa::Avx2);
//! assert_eq!(arithmetic::widest(), Isa::Avx2);
//! assert_ne!(arithmetic::level().isa, Isa::Avx512);
//! arithmetic::set_widest(Isa::Avx512);
//! ```

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

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

impl Isa {
    /// The sets from the narrowest: what [`WIDEST`] stores.
    const ORDER: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// This set's place in [`Isa::ORDER`].
    const fn rank(self) -> u8 {
        match self {
            Isa::Baseline => 0,
            Isa::Avx2 => 1,
            Isa::Avx512 => 2,
        }
    }
}

/// The rank of the widest instruction set [`set_widest`] allows: AVX-512 unless set.
static WIDEST: AtomicU8 = AtomicU8::new(Isa::Avx512.rank());

/// Caps the instruction set of every kernel from now on, for the whole process, at `isa` (or
/// the widest set below it that the processor has): the cap, not the set in use, which
/// [`level`] reports. [`Isa::Avx512`], the default, allows whatever the processor has. Set it
/// once, before training, as [`set`]. From AVX-512 to AVX2 the bits stay the same; capped at
/// [`Isa::Baseline`] on x86-64 the kernels also stop fusing multiply-adds (`level().fused` is
/// false while [`current`] still says [`Arithmetic::Fastest`]), so a run gives the pinned bits.
/// The cap chooses which kernels run; a build with `-C target-cpu=native` may still compile
/// AVX-512 instructions into all of them.
pub fn set_widest(isa: Isa) {
    WIDEST.store(isa.rank(), Ordering::Relaxed);
}

/// The cap [`set_widest`] set ([`Isa::Avx512`], no cap, unless set).
pub fn widest() -> Isa {
    let rank = usize::from(WIDEST.load(Ordering::Relaxed));
    Isa::ORDER[rank.min(Isa::ORDER.len() - 1)]
}

/// What the kernels run with now: the instruction set and whether multiply-adds are fused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// The vector instructions.
    pub isa: Isa,
    /// Whether a multiply and the add after it round once.
    pub fused: bool,
}

/// The kernels' level on this processor under the [`current`] arithmetic and the [`widest`]
/// instruction set allowed.
#[inline]
pub fn level() -> Level {
    let fused = !PINNED.load(Ordering::Relaxed);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        let widest = WIDEST.load(Ordering::Relaxed);
        if widest >= Isa::Avx512.rank()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("fma")
        {
            return Level {
                isa: Isa::Avx512,
                fused,
            };
        }
        if widest >= Isa::Avx2.rank()
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
        {
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
