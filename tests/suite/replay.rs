//! Replay across processors: one training run, natively and under `qemu-x86_64` emulating an
//! older processor, gives the same weights bit for bit. Natively this machine may use AVX-512;
//! `-cpu Haswell` has AVX2 and FMA but no AVX-512, so fused runs compare two instruction sets;
//! `-cpu Nehalem` has neither AVX2 nor FMA, so pinned runs (a multiply then an add everywhere)
//! compare the widest vector kernels against the baseline ones. Natively, the same comparisons
//! run with the kernels capped at AVX2 and at the baseline (`arithmetic::set_widest`).
//!
//! The run itself is [`replay_child`], an ignored test that the outer tests start as a child
//! process: the test binary (`current_exe`), natively or under qemu. Debian's `qemu-user`
//! provides `qemu-x86_64` (`.ci/run` installs it); without it the outer test fails under `CI`
//! and is skipped otherwise.

use std::process::Command;

use backprop::arithmetic::{self, Arithmetic, Isa};
use backprop::prelude::*;
use backprop::train::{train, TrainOptions};

network! {
    /// A large layer (64 × 128 = 8192 weights: the register-tiled kernels), a mid-size one
    /// (128 × 24 = 3072) and two small ones; tanh and sigmoid take the platform's `tanhf` and
    /// `expf`, which glibc picks at run time by the processor's features too.
    struct Replay < 64 => relu 128 => tanh 24 => sigmoid 16 => 10 >
}

/// Set (to anything) in the child's environment: train with [`Arithmetic::Pinned`].
const PINNED: &str = "BACKPROP_REPLAY_PINNED";

/// In the child's environment, `avx2` or `baseline`: the widest instruction set it may use
/// ([`arithmetic::set_widest`]).
const WIDEST: &str = "BACKPROP_REPLAY_WIDEST";

/// 128 deterministic samples of 64 inputs in (−1, 1), each with a class out of 10.
fn data() -> (Vec<SVector<f32, 64>>, Vec<usize>) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let inputs: Vec<SVector<f32, 64>> = (0..128).map(|_| SVector::from_fn(|_, _| next())).collect();
    let classes = inputs
        .iter()
        .map(|x| {
            (x.iter().take(10).enumerate())
                .fold(0, |best, (i, v)| if *v > x[best] { i } else { best })
        })
        .collect();
    (inputs, classes)
}

/// FNV-1a over every weight's bits, in parameter order.
fn hash(net: &Replay<f32>) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for param in net.params() {
        for value in param.values {
            for byte in value.to_bits().to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    hash
}

/// The run: 4 epochs of Adam at batch 8 from a fixed seed, then the weights' hash and the
/// kernels' level, printed as `REPLAY-HASH <hex>` and `REPLAY-LEVEL <level>`.
#[test]
#[ignore = "run by the replay tests as a child process"]
fn replay_child() {
    if std::env::var_os(PINNED).is_some() {
        arithmetic::set(Arithmetic::Pinned);
    }
    match std::env::var(WIDEST).as_deref() {
        Ok("avx2") => arithmetic::set_widest(Isa::Avx2),
        Ok("baseline") => arithmetic::set_widest(Isa::Baseline),
        Ok(other) => panic!("{WIDEST}={other}: avx2 or baseline"),
        Err(_) => {}
    }
    let (inputs, classes) = data();
    let mut net = Replay::<f32>::init(7);
    let mut adam = Adam::new(0.01);
    train(
        &mut net,
        &mut adam,
        &CrossEntropy,
        &inputs,
        &classes,
        TrainOptions::new(4, 11).batch::<8>(),
        |_| std::ops::ControlFlow::Continue(()),
    )
    .unwrap();
    println!("REPLAY-LEVEL {:?}", arithmetic::level());
    println!("REPLAY-HASH {:016x}", hash(&net));
}

/// What one child printed: its kernels' level and its weights' hash.
struct Outcome {
    level: String,
    hash: String,
}

/// Runs [`replay_child`] natively (`cpu` is `None`) or under `qemu-x86_64 -cpu <cpu>`.
fn child(cpu: Option<&str>, pinned: bool) -> Outcome {
    child_capped(cpu, pinned, None)
}

/// [`child`] with the child's instruction sets capped at `widest` (`avx2`, `baseline`) if given.
fn child_capped(cpu: Option<&str>, pinned: bool, widest: Option<&str>) -> Outcome {
    let exe = std::env::current_exe().unwrap();
    let mut command = match cpu {
        None => Command::new(&exe),
        Some(cpu) => {
            let mut command = Command::new("qemu-x86_64");
            command.args(["-cpu", cpu]).arg(&exe);
            command
        }
    };
    command.args([
        "replay::replay_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    if pinned {
        command.env(PINNED, "1");
    } else {
        command.env_remove(PINNED);
    }
    match widest {
        Some(widest) => command.env(WIDEST, widest),
        None => command.env_remove(WIDEST),
    };
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child {cpu:?} (pinned {pinned}, widest {widest:?}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |key: &str| {
        stdout
            .lines()
            // The harness prints its own words before the first line of the test's output.
            .find_map(|line| line.split_once(key).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("child {cpu:?} ({widest:?}) printed no {key}:\n{stdout}"))
            .trim()
            .to_string()
    };
    Outcome {
        level: field("REPLAY-LEVEL "),
        hash: field("REPLAY-HASH "),
    }
}

/// Whether `qemu-x86_64` can be started.
fn qemu_present() -> bool {
    Command::new("qemu-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
#[cfg(target_arch = "x86_64")]
fn replay_matches_under_qemu() {
    if !qemu_present() {
        assert!(
            std::env::var_os("CI").is_none(),
            "qemu-x86_64 is missing (CI installs Debian's qemu-user)"
        );
        println!("replay: qemu-x86_64 is missing, skipped");
        return;
    }
    let native = child(None, false);
    let haswell = child(Some("Haswell"), false);
    let native_pinned = child(None, true);
    let nehalem = child(Some("Nehalem"), true);
    println!(
        "replay: native {} {}, Haswell {} {}, native pinned {} {}, Nehalem pinned {} {}",
        native.level,
        native.hash,
        haswell.level,
        haswell.hash,
        native_pinned.level,
        native_pinned.hash,
        nehalem.level,
        nehalem.hash
    );
    // qemu really emulates the processors asked for: AVX2 and FMA, then neither.
    assert!(haswell.level.contains("Avx2"), "{}", haswell.level);
    assert!(haswell.level.contains("fused: true"), "{}", haswell.level);
    assert!(nehalem.level.contains("Baseline"), "{}", nehalem.level);
    assert!(
        native_pinned.level.contains("fused: false"),
        "{}",
        native_pinned.level
    );
    assert_eq!(
        haswell.hash, native.hash,
        "fused: Haswell under qemu against native"
    );
    assert_eq!(
        nehalem.hash, native_pinned.hash,
        "pinned: Nehalem under qemu against native"
    );
    // For the docs: whether fused arithmetic changes this run's bits.
    println!(
        "replay: fused native {} pinned Nehalem",
        if native.hash == nehalem.hash {
            "equals"
        } else {
            "differs from"
        }
    );
}

/// The same run natively with the kernels capped at narrower instruction sets
/// ([`arithmetic::set_widest`]): AVX2 gives the bits of the widest set this processor has, and the
/// baseline pinned gives the pinned bits. No emulator: this runs on every x86-64 machine, and
/// compares AVX-512 with AVX2 on one that has both.
#[test]
#[cfg(target_arch = "x86_64")]
fn replay_matches_with_narrower_instruction_sets() {
    let native = child(None, false);
    let avx2 = child_capped(None, false, Some("avx2"));
    let native_pinned = child(None, true);
    let baseline = child_capped(None, true, Some("baseline"));
    let fused_baseline = child_capped(None, false, Some("baseline"));
    println!(
        "replay: native {} {}, capped at AVX2 {} {}, native pinned {} {}, baseline pinned {} {}, \
         baseline asked to fuse {} {}",
        native.level,
        native.hash,
        avx2.level,
        avx2.hash,
        native_pinned.level,
        native_pinned.hash,
        baseline.level,
        baseline.hash,
        fused_baseline.level,
        fused_baseline.hash
    );
    // The reported level obeys the cap: no AVX-512 under AVX2, nothing but the baseline under
    // it. (Every kernel dispatches on that level; AVX-512 and AVX2 give the same bits, so only
    // the fused baseline below would show a kernel that ignored it.)
    assert!(!avx2.level.contains("Avx512"), "{}", avx2.level);
    if native.level.contains("Avx512") {
        // A processor with AVX-512 has AVX2: the comparison is of two instruction sets.
        assert!(avx2.level.contains("Avx2"), "{}", avx2.level);
    }
    assert!(baseline.level.contains("Baseline"), "{}", baseline.level);
    // On x86-64 the baseline never fuses, asked to or not: the pinned bits.
    assert!(
        fused_baseline.level.contains("Baseline") && fused_baseline.level.contains("fused: false"),
        "{}",
        fused_baseline.level
    );
    assert_eq!(
        avx2.hash, native.hash,
        "fused: capped at AVX2 against native"
    );
    assert_eq!(
        baseline.hash, native_pinned.hash,
        "pinned: the baseline kernels against the widest"
    );
    assert_eq!(
        fused_baseline.hash, native_pinned.hash,
        "the baseline asked to fuse: the pinned bits"
    );
}
