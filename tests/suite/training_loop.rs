//! The training loop's extras (`train_with` and `Fit`): the validation score after every epoch
//! (against a hand computation), early stopping that restores the best weights, schedules
//! stepped per epoch and per batch, clipping, and the up-front checks of each.

use std::ops::ControlFlow;

use backprop::prelude::*;
use backprop::train::{train, train_with, Every, Fit, Score, TrainError, TrainOptions};

network! { struct Net < 2 => tanh 6 => 3 > }

/// 40 samples of 2 inputs and their class (0, 1 or 2) by angle.
fn classes() -> (Vec<SVector<f64, 2>>, Vec<usize>) {
    let x: Vec<SVector<f64, 2>> = (0..40)
        .map(|i| {
            let a = i as f64 * 0.77;
            SVector::<f64, 2>::new(a.cos() * (1.0 + (i % 3) as f64 * 0.1), a.sin())
        })
        .collect();
    let y = x
        .iter()
        .map(|x| {
            (((x[1].atan2(x[0]) + std::f64::consts::PI) / (2.0 * std::f64::consts::PI) * 3.0)
                as usize)
                .min(2)
        })
        .collect();
    (x, y)
}

#[test]
fn validation_is_scored_as_by_hand_after_every_epoch() {
    let (x, y) = classes();
    let (train_x, val_x) = x.split_at(30);
    let (train_y, val_y) = y.split_at(30);
    let mut net = Net::<f64>::init(3);
    let mut adam = Adam::new(0.05);
    let mut seen: Vec<(Score, Net<f64>)> = Vec::new();
    let history = train_with(
        &mut net,
        &mut adam,
        &CrossEntropy,
        train_x,
        train_y,
        TrainOptions::new(5, 2).batch::<8>(),
        Fit::new().validation(val_x, val_y),
        |epoch| {
            seen.push((epoch.validation.unwrap(), epoch.net.clone()));
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(history.validation.len(), 5);
    for (epoch, (score, net)) in seen.iter().enumerate() {
        let mut loss = 0.0;
        let mut correct = 0;
        for (x, &y) in val_x.iter().zip(val_y) {
            let out = net.forward(x);
            // Cross-entropy of the logits at class y, by hand: log Σ exp − z_y.
            let max = out.max();
            loss += max + out.iter().map(|z| (z - max).exp()).sum::<f64>().ln() - out[y];
            correct += usize::from(out.imax() == y);
        }
        let n = val_x.len() as f64;
        assert!(
            (score.loss - loss / n).abs() < 1e-12,
            "epoch {epoch}: {} vs {}",
            score.loss,
            loss / n
        );
        assert_eq!(score.accuracy, Some(correct as f64 / n));
        assert_eq!(history.validation[epoch], *score);
    }
    // Training lowered the validation loss here: the last epoch is the best.
    assert!(seen[4].0.loss < seen[0].0.loss);
    assert_eq!(history.best_epoch, Some(4));
}

#[test]
fn early_stopping_restores_the_best_weights() {
    let (x, y) = classes();
    // The validation targets are the next class: the better training fits, the worse they score.
    let wrong: Vec<usize> = y.iter().map(|c| (c + 1) % 3).collect();
    let mut net = Net::<f64>::init(4);
    let mut sgd = Sgd::new(0.2).momentum(0.9);
    let mut weights = Vec::new();
    let mut stopping = Vec::new();
    let history = train_with(
        &mut net,
        &mut sgd,
        &CrossEntropy,
        &x,
        &y,
        TrainOptions::new(50, 1).batch::<8>(),
        Fit::new().validation(&x, &wrong).patience(3),
        |epoch| {
            weights.push(epoch.net.clone());
            stopping.push(epoch.stopping);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    let best = history.best_epoch.unwrap();
    let losses: Vec<f64> = history.validation.iter().map(|s| s.loss).collect();
    // Stopped 3 epochs after the best, long before 50; the best has the least validation loss.
    assert_eq!(losses.len(), best + 4, "{losses:?}");
    assert!(losses.len() < 50);
    assert!(losses.iter().all(|&l| l >= losses[best]));
    assert!(losses[best + 1..].iter().all(|&l| l >= losses[best]));
    assert_eq!(stopping.iter().filter(|&&s| s).count(), 1);
    assert!(*stopping.last().unwrap());
    assert_eq!(net, weights[best]);
    assert_ne!(net, *weights.last().unwrap());
}

#[test]
fn a_schedule_steps_per_epoch_or_per_batch_and_clipping_applies() {
    let (x, y) = classes();
    let mut rates = Vec::new();
    let mut sgd = Sgd::new(0.1);
    let mut schedule = Schedule::step_lr(2, 0.5);
    train_with(
        &mut Net::<f64>::init(1),
        &mut sgd,
        &CrossEntropy,
        &x,
        &y,
        TrainOptions::new(5, 0).batch::<8>(),
        Fit::new().schedule(&mut schedule, Every::Epoch),
        |epoch| {
            rates.push(epoch.lr);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.025]);
    assert_eq!(schedule.last_epoch(), 5);
    // Per batch: 40 samples in batches of 8 are 5 steps an epoch; ExponentialLR(0.5) per step.
    let mut rates = Vec::new();
    let mut schedule = Schedule::exponential_lr(0.5);
    train_with(
        &mut Net::<f64>::init(1),
        &mut Sgd::new(1.0),
        &CrossEntropy,
        &x,
        &y,
        TrainOptions::new(2, 0).batch::<8>(),
        Fit::new().schedule(&mut schedule, Every::Batch),
        |epoch| {
            rates.push(epoch.lr);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    // The rate of each epoch's last step: 0.5⁴ and 0.5⁹.
    assert_eq!(rates, [0.0625, 0.001953125]);
    assert_eq!(schedule.last_epoch(), 10);

    // Clipping every gradient entry to 0: SGD never moves.
    let start = Net::<f64>::init(7);
    let mut net = start.clone();
    train_with(
        &mut net,
        &mut Sgd::new(0.5),
        &CrossEntropy,
        &x,
        &y,
        TrainOptions::new(2, 0).batch::<8>(),
        Fit::new().clip(Clip::Value(0.0)),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(net, start);
    // Clipping by norm changes the run; a large threshold does not.
    let run = |clip: Option<Clip>| {
        let mut net = start.clone();
        let fit = match clip {
            Some(clip) => Fit::new().clip(clip),
            None => Fit::new(),
        };
        train_with(
            &mut net,
            &mut Sgd::new(0.5),
            &CrossEntropy,
            &x,
            &y,
            TrainOptions::new(2, 0).batch::<8>(),
            fit,
            |_| ControlFlow::Continue(()),
        )
        .unwrap();
        net
    };
    let plain = run(None);
    assert_eq!(
        run(Some(Clip::Norm {
            max_norm: 1e9,
            error_if_nonfinite: true
        })),
        plain
    );
    assert_ne!(
        run(Some(Clip::Norm {
            max_norm: 0.01,
            error_if_nonfinite: true
        })),
        plain
    );
    // And `train` is `train_with` with nothing extra.
    let mut net = start.clone();
    train(
        &mut net,
        &mut Sgd::new(0.5),
        &CrossEntropy,
        &x,
        &y,
        TrainOptions::new(2, 0).batch::<8>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(net, plain);
}

#[test]
fn extras_are_checked_before_any_step() {
    let (x, y) = classes();
    let start = Net::<f64>::init(2);
    let attempt = |fit: Fit<'_, SVector<f64, 2>, usize>| {
        let mut net = start.clone();
        let result = train_with(
            &mut net,
            &mut Sgd::new(0.1),
            &CrossEntropy,
            &x,
            &y,
            TrainOptions::new(3, 0).batch::<8>(),
            fit,
            |_| ControlFlow::Continue(()),
        );
        assert_eq!(net, start);
        result.unwrap_err()
    };
    // OneCycleLR of 10 steps for 3 epochs of 5 batches.
    let mut one = Schedule::one_cycle_lr(0.1, 10);
    let error = attempt(Fit::new().schedule(&mut one, Every::Batch));
    assert!(matches!(error, TrainError::Schedule(_)), "{error}");
    assert!(error.to_string().contains("total_steps"), "{error}");
    let mut bad = Schedule::step_lr(0, 0.5);
    assert!(matches!(
        attempt(Fit::new().schedule(&mut bad, Every::Epoch)),
        TrainError::Schedule(_)
    ));
    assert!(matches!(
        attempt(Fit::new().clip(Clip::Value(f64::NAN))),
        TrainError::Clip(_)
    ));
    assert!(matches!(
        attempt(Fit::new().patience(2)),
        TrainError::Validation { .. }
    ));
    assert!(matches!(
        attempt(Fit::new().validation(&x[..3], &y[..2])),
        TrainError::Validation {
            inputs: 3,
            targets: 2
        }
    ));
    let out_of_range = vec![5usize; 3];
    assert!(matches!(
        attempt(Fit::new().validation(&x[..3], &out_of_range)),
        TrainError::InvalidTarget(_)
    ));
}

#[test]
fn train_with_runs_as_documented() {
    let (x, y) = classes();
    let (train_x, val_x) = x.split_at(30);
    let (train_y, val_y) = y.split_at(30);
    let mut net = Net::<f64>::init(0);
    let mut adam = Adam::new(0.05);
    let mut schedule = Schedule::cosine_annealing_lr(30, 0.0);
    let fit = Fit::new()
        .schedule(&mut schedule, Every::Epoch)
        .clip(Clip::Norm {
            max_norm: 1.0,
            error_if_nonfinite: true,
        })
        .validation(val_x, val_y)
        .patience(5);
    let history = train_with(
        &mut net,
        &mut adam,
        &CrossEntropy,
        train_x,
        train_y,
        TrainOptions::new(30, 0).batch::<8>(),
        fit,
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert!(history.best_epoch.is_some());
    assert!(
        history.validation[history.best_epoch.unwrap()]
            .accuracy
            .unwrap()
            > 0.5
    );
}
