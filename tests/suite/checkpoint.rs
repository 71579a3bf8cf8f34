//! Checkpoints resume bit for bit: 6 epochs in one run equal 3 epochs, a checkpoint, a fresh
//! process (this test binary run again, on `resume_in_fresh_process_child` only) that loads it and
//! trains 3 more; for SGD with momentum, and for Adam with a per-batch schedule and clipping.
//! Weights, optimizer state, learning rate and schedule position must all have the same bits.
//! And a checkpoint of another architecture, optimizer, optimizer configuration or schedule is
//! refused, changing nothing.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

use backprop::checkpoint::{self, CheckpointError};
use backprop::optim::OptimizerState;
use backprop::prelude::*;
use backprop::train::{train_with, Every, Fit, TrainOptions};

network! { struct Net < 4 => relu 8 => tanh 3 > }
network! { struct Other < 4 => relu 7 => tanh 3 > }

/// The environment variable that makes `resume_in_fresh_process_child` the second half of a run.
const CHILD: &str = "BACKPROP_CHECKPOINT_CHILD";

/// 45 samples (a partial last batch at 8), smooth targets.
fn data() -> (Vec<SVector<f64, 4>>, Vec<SVector<f64, 3>>) {
    let x: Vec<SVector<f64, 4>> = (0..45)
        .map(|i| SVector::from_fn(|r, _| ((i * 7 + r * 3) % 11) as f64 / 11.0 - 0.4))
        .collect();
    let y = x
        .iter()
        .map(|x| SVector::from_fn(|r, _| (x[r] * 2.0 + x[(r + 1) % 4]).sin() * 0.5))
        .collect();
    (x, y)
}

/// One run's optimizer, schedule and clipping, named by `case`.
enum Run {
    /// SGD with momentum, no schedule.
    Sgd(Sgd<Net<f64>>),
    /// Adam with a warm-up then cosine schedule stepped per batch, and clipping by norm.
    Adam(Adam<Net<f64>>, Schedule),
}

impl Run {
    fn new(case: &str) -> Self {
        match case {
            "sgd" => Run::Sgd(Sgd::new(0.05).momentum(0.9).nesterov(true)),
            _ => Run::Adam(
                Adam::new(0.02),
                Schedule::sequential(
                    vec![
                        Schedule::linear_lr(0.2, 1.0, 5),
                        Schedule::cosine_annealing_lr(30, 1e-4),
                    ],
                    &[5],
                ),
            ),
        }
    }

    /// Trains epochs `from..to`.
    fn train(&mut self, net: &mut Net<f64>, from: usize, to: usize) {
        let (x, y) = data();
        let options = TrainOptions::new(to, 11);
        match self {
            Run::Sgd(sgd) => train_with(
                net,
                sgd,
                &Mse,
                &x,
                &y,
                options.batch::<8>(),
                Fit::new().start_epoch(from),
                |_| ControlFlow::Continue(()),
            ),
            Run::Adam(adam, schedule) => train_with(
                net,
                adam,
                &Mse,
                &x,
                &y,
                options.batch::<8>(),
                Fit::new()
                    .schedule(schedule, Every::Batch)
                    .clip(Clip::Norm {
                        max_norm: 0.5,
                        error_if_nonfinite: true,
                    })
                    .start_epoch(from),
                |_| ControlFlow::Continue(()),
            ),
        }
        .unwrap();
    }

    fn save(&self, path: &Path, net: &Net<f64>, epoch: usize) {
        match self {
            Run::Sgd(sgd) => checkpoint::save(path, net, sgd, None, epoch, Some(11)),
            Run::Adam(adam, schedule) => {
                checkpoint::save(path, net, adam, Some(schedule), epoch, Some(11))
            }
        }
        .unwrap();
    }

    fn load(&mut self, path: &Path, net: &mut Net<f64>) -> usize {
        let resume = match self {
            Run::Sgd(sgd) => checkpoint::load(path, net, sgd, None),
            Run::Adam(adam, schedule) => checkpoint::load(path, net, adam, Some(schedule)),
        }
        .unwrap();
        assert_eq!(resume.shuffle_seed, Some(11));
        resume.epoch
    }

    /// Every bit of the state: weights, optimizer buffers and counters, rate, schedule position.
    fn bits(&self, net: &Net<f64>) -> Vec<u64> {
        let mut bits: Vec<u64> = net
            .params()
            .flat_map(|p| p.values.iter().map(|v| v.to_bits()))
            .collect();
        let mut optimizer = |o: &dyn Dump| o.dump(&mut bits);
        match self {
            Run::Sgd(sgd) => optimizer(sgd),
            Run::Adam(adam, schedule) => {
                optimizer(adam);
                let mut state = Vec::new();
                schedule.state(&mut state);
                bits.extend(state.iter().map(|v| v.to_bits()));
            }
        }
        bits
    }
}

/// An optimizer's state as bits.
trait Dump {
    fn dump(&self, out: &mut Vec<u64>);
}

impl<O: OptimizerState<Net<f64>>> Dump for O {
    fn dump(&self, out: &mut Vec<u64>) {
        out.push(self.learning_rate().to_bits());
        out.extend(self.counters().iter().map(|(_, v)| *v));
        for (_, buffer) in self.buffers() {
            out.extend(
                buffer
                    .params()
                    .flat_map(|p| p.values.iter().map(|v| v.to_bits())),
            );
        }
    }
}

/// A path in the target directory for this test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("checkpoint-{}-{name}", std::process::id()))
}

#[test]
fn resume_in_fresh_process_is_bit_for_bit() {
    for case in ["sgd", "adam"] {
        let mut whole_net = Net::<f64>::init(5);
        let mut whole = Run::new(case);
        whole.train(&mut whole_net, 0, 6);

        let mut half_net = Net::<f64>::init(5);
        let mut half = Run::new(case);
        half.train(&mut half_net, 0, 3);
        let path = scratch(&format!("{case}-3.ckpt"));
        half.save(&path, &half_net, 3);
        // Loaded back, the checkpoint holds every bit of the state it was saved from.
        let mut loaded_net = Net::<f64>::zeros();
        let mut loaded = Run::new(case);
        assert_eq!(loaded.load(&path, &mut loaded_net), 3);
        assert_eq!(loaded.bits(&loaded_net), half.bits(&half_net), "{case}");
        let out = scratch(&format!("{case}-6.ckpt"));
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "checkpoint::resume_in_fresh_process_child",
                "--test-threads=1",
            ])
            .env(
                CHILD,
                format!("{case},{},{}", path.display(), out.display()),
            )
            .status()
            .unwrap();
        assert!(status.success(), "{case}: the fresh process failed");

        let mut resumed_net = Net::<f64>::zeros();
        let mut resumed = Run::new(case);
        assert_eq!(resumed.load(&out, &mut resumed_net), 6);
        let (want, found) = (whole.bits(&whole_net), resumed.bits(&resumed_net));
        assert_eq!(want.len(), found.len());
        let differing = want.iter().zip(&found).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing,
            0,
            "{case}: {differing} of {} values differ",
            want.len()
        );
        // And the run really moved: the checkpoint at 3 is not the state at 6.
        let mut at_three = Net::<f64>::zeros();
        let mut three = Run::new(case);
        three.load(&path, &mut at_three);
        assert_ne!(three.bits(&at_three), want);
        for p in [path, out] {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// The second half of `resume_in_fresh_process_is_bit_for_bit`, in a fresh process: builds the
/// run, loads the checkpoint, trains to epoch 6 and saves. Without the variable it does nothing.
#[test]
fn resume_in_fresh_process_child() {
    let Ok(task) = std::env::var(CHILD) else {
        return;
    };
    let mut parts = task.split(',');
    let (case, from, to) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut net = Net::<f64>::zeros();
    let mut run = Run::new(case);
    let epoch = run.load(Path::new(from), &mut net);
    assert_eq!(epoch, 3);
    run.train(&mut net, epoch, 6);
    run.save(Path::new(to), &net, 6);
}

#[test]
fn mismatched_checkpoints_are_refused_and_change_nothing() {
    let path = scratch("mismatch.ckpt");
    let net = Net::<f64>::init(1);
    let mut adam = Adam::<Net<f64>>::new(0.01);
    adam.prepare();
    let mut schedule = Schedule::exponential_lr(0.9);
    schedule.start(&mut adam).unwrap();
    checkpoint::save(&path, &net, &adam, Some(&schedule), 2, None).unwrap();

    // Another architecture.
    let mut other = Other::<f64>::init(2);
    let before = other.clone();
    let mut other_adam = Adam::<Other<f64>>::new(0.01);
    let error = checkpoint::load(
        &path,
        &mut other,
        &mut other_adam,
        Some(&mut schedule.clone()),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            CheckpointError::Mismatch {
                what: "architecture",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("fc1.weight[8x4]"), "{error}");
    assert_eq!(other, before);
    // Another scalar.
    let mut single = Net::<f32>::init(2);
    let error = checkpoint::load(&path, &mut single, &mut Adam::new(0.01), None).unwrap_err();
    assert!(
        matches!(
            error,
            CheckpointError::Mismatch {
                what: "architecture",
                ..
            }
        ),
        "{error}"
    );

    // Another optimizer.
    let mut mine = Net::<f64>::init(3);
    let before = mine.clone();
    let mut sgd = Sgd::<Net<f64>>::new(0.1).momentum(0.9);
    let error =
        checkpoint::load(&path, &mut mine, &mut sgd, Some(&mut schedule.clone())).unwrap_err();
    assert!(
        error.to_string().contains("`Adam`") && error.to_string().contains("`SGD`"),
        "{error}"
    );
    assert_eq!(mine, before);
    assert_eq!(Optimizer::<Net<f64>>::learning_rate(&sgd), 0.1);
    // The same optimizer without the schedule, or another schedule.
    let error = checkpoint::load(&path, &mut mine, &mut adam.clone(), None).unwrap_err();
    assert!(
        matches!(
            error,
            CheckpointError::Mismatch {
                what: "schedule",
                ..
            }
        ),
        "{error}"
    );
    let error = checkpoint::load(
        &path,
        &mut mine,
        &mut adam.clone(),
        Some(&mut Schedule::step_lr(2, 0.5)),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            CheckpointError::Mismatch {
                what: "schedule",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(mine, before);

    // An AMSGrad checkpoint into Adam without AMSGrad: a buffer it has no place for.
    let mut amsgrad = Adam::<Net<f64>>::new(0.01).amsgrad(true);
    amsgrad.prepare();
    checkpoint::save(&path, &net, &amsgrad, None, 0, None).unwrap();
    let error = checkpoint::load(&path, &mut mine, &mut Adam::new(0.01), None).unwrap_err();
    assert!(
        matches!(
            error,
            CheckpointError::Mismatch {
                what: "optimizer state",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("max_exp_avg_sq"), "{error}");
    assert_eq!(mine, before);

    // A weights file is not a checkpoint.
    backprop::io::save(&net, &path).unwrap();
    let error = checkpoint::load(&path, &mut mine, &mut Adam::new(0.01), None).unwrap_err();
    assert!(matches!(error, CheckpointError::Format { .. }), "{error}");
    assert_eq!(mine, before);
    std::fs::remove_file(&path).unwrap();
    // And saving is atomic: no temporary file is left beside the target.
    checkpoint::save(&path, &net, &adam, None, 0, None).unwrap();
    let dir = path.parent().unwrap();
    let stem = path.file_name().unwrap().to_string_lossy().into_owned();
    let leftovers = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .into_owned();
            name.starts_with(&stem) && name != stem
        })
        .count();
    assert_eq!(leftovers, 0);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn rmsprop_and_adagrad_state_round_trips() {
    let (x, y) = data();
    let path = scratch("round-trip.ckpt");
    fn check<O: OptimizerState<Net<f64>> + backprop::FusedStep<Net<f64>> + Dump>(
        mut optimizer: O,
        fresh: O,
        path: &Path,
        x: &[SVector<f64, 4>],
        y: &[SVector<f64, 3>],
    ) {
        let mut net = Net::<f64>::init(9);
        let mut schedule = Schedule::step_lr(1, 0.7);
        train_with(
            &mut net,
            &mut optimizer,
            &Mse,
            x,
            y,
            TrainOptions::new(2, 3).batch::<8>(),
            Fit::new().schedule(&mut schedule, Every::Epoch),
            |_| ControlFlow::Continue(()),
        )
        .unwrap();
        checkpoint::save(path, &net, &optimizer, Some(&schedule), 2, Some(3)).unwrap();
        let (mut loaded_net, mut loaded, mut loaded_schedule) =
            (Net::<f64>::zeros(), fresh, Schedule::step_lr(1, 0.7));
        checkpoint::load(
            path,
            &mut loaded_net,
            &mut loaded,
            Some(&mut loaded_schedule),
        )
        .unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        optimizer.dump(&mut a);
        loaded.dump(&mut b);
        assert_eq!(a, b, "{}", optimizer.name());
        assert!(
            optimizer.counters().iter().any(|&(_, v)| v == 12),
            "{:?}",
            optimizer.counters()
        );
        assert_eq!(loaded_net, net);
        assert_eq!(loaded_schedule, schedule);
    }
    check(
        RmsProp::new(0.01).momentum(0.5).centered(true),
        RmsProp::new(0.01).momentum(0.5).centered(true),
        &path,
        &x,
        &y,
    );
    check(
        Adagrad::new(0.1).initial_accumulator_value(0.2),
        Adagrad::new(0.1).initial_accumulator_value(0.2),
        &path,
        &x,
        &y,
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_cycled_momentum_is_restored() {
    let (x, y) = data();
    let path = scratch("momentum.ckpt");
    let mut net = Net::<f64>::init(2);
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    let mut schedule = Schedule::one_cycle_lr(0.1, 30).cycle_momentum(0.85, 0.95);
    train_with(
        &mut net,
        &mut sgd,
        &Mse,
        &x,
        &y,
        TrainOptions::new(2, 3).batch::<8>(),
        Fit::new().schedule(&mut schedule, Every::Batch),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    // Twelve steps into the cycle, the momentum is neither the built 0.9 nor an end.
    assert!(sgd.momentum != 0.9 && sgd.momentum > 0.85 && sgd.momentum < 0.95);
    checkpoint::save(&path, &net, &sgd, Some(&schedule), 2, Some(3)).unwrap();
    let mut loaded = Sgd::new(0.1).momentum(0.9);
    let mut loaded_schedule = Schedule::one_cycle_lr(0.1, 30).cycle_momentum(0.85, 0.95);
    checkpoint::load(
        &path,
        &mut Net::<f64>::zeros(),
        &mut loaded,
        Some(&mut loaded_schedule),
    )
    .unwrap();
    assert_eq!(loaded.momentum.to_bits(), sgd.momentum.to_bits());
    assert_eq!(loaded.lr.to_bits(), sgd.lr.to_bits());
    assert_eq!(loaded_schedule, schedule);
    std::fs::remove_file(&path).unwrap();
}
