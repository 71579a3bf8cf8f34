//! The training loop: the partial last batch is a real batch, shuffling is seeded, the loss
//! history is the per-sample mean, a non-finite loss stops training with the last good weights,
//! and an epoch allocates nothing.

use std::ops::ControlFlow;

use backprop::prelude::*;
use backprop::train::{train, TrainError, TrainOptions};

use crate::common::counting::allocations;

network! { struct Net < 3 => tanh 5 => relu 4 => 2 > }

/// Ten samples: inputs and targets from fixed formulas.
fn data() -> (Vec<SVector<f64, 3>>, Vec<SVector<f64, 2>>) {
    let inputs = (0..10)
        .map(|i| {
            SVector::<f64, 3>::new(
                (i as f64 * 0.7).sin(),
                (i as f64 * 0.3).cos(),
                i as f64 / 10.0,
            )
        })
        .collect();
    let targets = (0..10)
        .map(|i| SVector::<f64, 2>::new(i as f64 / 10.0, 1.0 - i as f64 / 20.0))
        .collect();
    (inputs, targets)
}

/// Weights agree to 1e-12 (relative, with a small absolute floor).
fn assert_same(a: &Net<f64>, b: &Net<f64>) {
    for (p, q) in a.params().zip(b.params()) {
        for (x, y) in p.values.iter().zip(q.values) {
            assert!(
                (x - y).abs() <= 1e-14 + 1e-12 * y.abs(),
                "{}: {x} vs {y}",
                p.name
            );
        }
    }
}

#[test]
fn the_last_partial_batch_is_a_real_batch() {
    // Ten samples in batches of four, in order: 4, 4, then 2. The loop must take the same three
    // steps as calling backward on those batches directly, the last one a real batch of two.
    let (inputs, targets) = data();
    let mut trained = Net::<f64>::init(1);
    let mut sgd = Sgd::new(0.1);
    train(
        &mut trained,
        &mut sgd,
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(1, 0).in_order().batch::<4>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();

    let mut by_hand = Net::<f64>::init(1);
    let mut grad = Net::zeros();
    let mut sgd = Sgd::new(0.1);
    for start in [0, 4] {
        let x = SMatrix::<f64, 3, 4>::from_fn(|r, c| inputs[start + c][r]);
        let y = SMatrix::<f64, 2, 4>::from_fn(|r, c| targets[start + c][r]);
        by_hand.backward(&x, &y, &Mse, &mut by_hand.workspace(), &mut grad);
        sgd.step(&mut by_hand, &grad);
    }
    let x = SMatrix::<f64, 3, 2>::from_fn(|r, c| inputs[8 + c][r]);
    let y = SMatrix::<f64, 2, 2>::from_fn(|r, c| targets[8 + c][r]);
    by_hand.backward(&x, &y, &Mse, &mut by_hand.workspace(), &mut grad);
    sgd.step(&mut by_hand, &grad);
    assert_same(&trained, &by_hand);
}

#[test]
fn a_summing_loss_sums_the_partial_batch() {
    let (inputs, targets) = data();
    let mut trained = Net::<f64>::init(2);
    let mut sgd = Sgd::new(0.01);
    let history = train(
        &mut trained,
        &mut sgd,
        &Sse,
        &inputs[..6],
        &targets[..6],
        TrainOptions::new(1, 0).in_order().batch::<4>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    let mut by_hand = Net::<f64>::init(2);
    let mut grad = Net::zeros();
    // The epoch's loss per sample: each sample's squared error, summed over outputs, under the
    // weights its batch saw (the initial ones for 0..4, those after one step for 4..6).
    let squared_error = |net: &Net<f64>, i: usize| -> f64 {
        let out = net.forward(&inputs[i]);
        (0..2).map(|r| (out[r] - targets[i][r]).powi(2)).sum()
    };
    let mut per_sample: f64 = (0..4).map(|i| squared_error(&by_hand, i)).sum();
    let x = SMatrix::<f64, 3, 4>::from_fn(|r, c| inputs[c][r]);
    let y = SMatrix::<f64, 2, 4>::from_fn(|r, c| targets[c][r]);
    by_hand.backward(&x, &y, &Sse, &mut by_hand.workspace(), &mut grad);
    Sgd::new(0.01).step(&mut by_hand, &grad);
    per_sample += (4..6).map(|i| squared_error(&by_hand, i)).sum::<f64>();
    let x = SMatrix::<f64, 3, 2>::from_fn(|r, c| inputs[4 + c][r]);
    let y = SMatrix::<f64, 2, 2>::from_fn(|r, c| targets[4 + c][r]);
    by_hand.backward(&x, &y, &Sse, &mut by_hand.workspace(), &mut grad);
    Sgd::new(0.01).step(&mut by_hand, &grad);
    assert_same(&trained, &by_hand);
    let mean = per_sample / 6.0;
    assert!(
        (history.losses[0] - mean).abs() <= 1e-12 * mean,
        "the epoch's mean loss per sample: {} against {mean}",
        history.losses[0]
    );
}

#[test]
fn shuffling_is_seeded_and_the_history_is_the_mean_loss() {
    let (inputs, targets) = data();
    let run = |seed: u64| {
        let mut net = Net::<f64>::init(3);
        let mut sgd = Sgd::new(0.05);
        let mut seen = Vec::new();
        let history = train(
            &mut net,
            &mut sgd,
            &Mse,
            &inputs,
            &targets,
            TrainOptions::new(5, seed).batch::<3>(),
            |epoch| {
                seen.push(epoch.loss);
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        assert_eq!(history.losses, seen, "the callback sees each epoch's loss");
        (history.losses, net)
    };
    let (first, net_a) = run(9);
    let (again, net_b) = run(9);
    let (other, _) = run(10);
    assert_eq!(first, again);
    assert_eq!(net_a, net_b);
    assert_ne!(first, other, "another seed, another order");
    assert_eq!(first.len(), 5);

    // With one epoch of one full batch and no shuffling, the epoch loss is that batch's loss.
    let mut net = Net::<f64>::init(4);
    let before = net.clone();
    let history = train(
        &mut net,
        &mut Sgd::new(0.0),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(1, 0).in_order().batch::<10>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    let x = SMatrix::<f64, 3, 10>::from_fn(|r, c| inputs[c][r]);
    let y = SMatrix::<f64, 2, 10>::from_fn(|r, c| targets[c][r]);
    assert!((history.losses[0] - before.loss(&x, &y, &Mse)).abs() < 1e-15);
}

#[test]
fn the_callback_can_stop_training() {
    let (inputs, targets) = data();
    let mut net = Net::<f64>::init(5);
    let history = train(
        &mut net,
        &mut Sgd::new(0.1),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(50, 1).batch::<4>(),
        |epoch| {
            if epoch.index == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!(history.losses.len(), 3);
}

#[test]
fn a_nan_in_the_data_stops_training_with_the_last_good_weights() {
    let (mut inputs, targets) = data();
    inputs[6][1] = f64::NAN;
    // In order, batches of 4: samples 0..4 train, the batch 4..8 holds the NaN.
    let mut net = Net::<f64>::init(6);
    let error = train(
        &mut net,
        &mut Sgd::new(0.1),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(3, 0).in_order().batch::<4>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            TrainError::NonFinite {
                epoch: 0,
                batch: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("last good step"), "{error}");

    let mut expected = Net::<f64>::init(6);
    let mut grad = Net::zeros();
    let x = SMatrix::<f64, 3, 4>::from_fn(|r, c| inputs[c][r]);
    let y = SMatrix::<f64, 2, 4>::from_fn(|r, c| targets[c][r]);
    expected.backward(&x, &y, &Mse, &mut expected.workspace(), &mut grad);
    Sgd::new(0.1).step(&mut expected, &grad);
    assert_eq!(
        net, expected,
        "the weights after the last good step, bit for bit"
    );
}

#[test]
fn bad_data_sets_are_errors() {
    let (inputs, targets) = data();
    let mut net = Net::<f64>::init(7);
    let mismatch = train(
        &mut net,
        &mut Sgd::new(0.1),
        &Mse,
        &inputs,
        &targets[..9],
        TrainOptions::new(1, 0).batch::<4>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert_eq!(
        mismatch,
        TrainError::LengthMismatch {
            inputs: 10,
            targets: 9
        }
    );
    let empty = train(
        &mut net,
        &mut Sgd::new(0.1),
        &Mse,
        &inputs[..0],
        &targets[..0],
        TrainOptions::new(1, 0).batch::<4>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert_eq!(empty, TrainError::EmptyDataSet);

    network! { struct Classifier < 3 => 4 > }
    let mut classifier = Classifier::<f64>::init(0);
    let classes = [0, 1, 2, 7, 3, 0, 1, 2, 3, 0];
    let error = train(
        &mut classifier,
        &mut Sgd::new(0.1),
        &CrossEntropy,
        &inputs,
        &classes,
        TrainOptions::new(1, 0).in_order().batch::<5>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert!(error.to_string().contains("target class 7"), "{error}");
}

#[test]
fn an_epoch_allocates_nothing() {
    // The loop allocates its buffers once per call: the count does not grow with the epochs.
    let (inputs, targets) = data();
    let count = |epochs: usize| {
        let mut net = Net::<f64>::init(8);
        let mut sgd = Sgd::new(0.01);
        allocations(|| {
            train(
                &mut net,
                &mut sgd,
                &Mse,
                &inputs,
                &targets,
                TrainOptions::new(epochs, 1).batch::<4>(),
                |_| ControlFlow::Continue(()),
            )
            .unwrap();
        })
    };
    assert_eq!(count(1), count(20));
}

#[test]
fn any_number_of_epochs_is_a_legal_budget() {
    // The history is not reserved for every epoch up front: 2^33 or usize::MAX epochs stopped
    // after one by the callback train one epoch, allocating no more than a one-epoch run.
    let (inputs, targets) = data();
    let run = |epochs: usize| {
        let mut net = Net::<f64>::init(9);
        let mut history = None;
        let count = allocations(|| {
            history = Some(
                train(
                    &mut net,
                    &mut Sgd::new(0.01),
                    &Mse,
                    &inputs,
                    &targets,
                    TrainOptions::new(epochs, 1).batch::<4>(),
                    |_| ControlFlow::Break(()),
                )
                .unwrap(),
            );
        });
        (history.unwrap(), net, count)
    };
    let (one, net_one, count_one) = run(1);
    for epochs in [1 << 33, usize::MAX] {
        let (history, net, count) = run(epochs);
        assert_eq!(history, one, "{epochs} epochs");
        assert_eq!(history.losses.len(), 1);
        assert!(history.losses.capacity() <= 1024, "{epochs} epochs");
        assert_eq!(net, net_one);
        assert_eq!(count, count_one, "{epochs} epochs: the same allocations");
    }
    // Beyond the reserved epochs the history grows as it goes.
    let mut net = Net::<f64>::init(9);
    let history = train(
        &mut net,
        &mut Sgd::new(0.0),
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(1500, 1).batch::<10>(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(history.losses.len(), 1500);
}

#[test]
fn class_indices_are_checked_before_the_first_step_and_named_by_row() {
    use backprop::loss::ClassIndexError;
    use backprop::target::Target;

    network! { struct Classifier < 3 => 4 > }
    let (inputs, _) = data();
    // The bad index is in the last batch, and in the partial one (batches of 3: rows 9..10):
    // no batch may train before it is found, and it is named by its row, not its position.
    for (batch, shuffle) in [(5, None), (3, None), (3, Some(4)), (1, Some(7))] {
        let mut classes = [0, 1, 2, 3, 3, 0, 1, 2, 3, 0];
        classes[9] = 7;
        let mut classifier = Classifier::<f64>::init(0);
        let before = classifier.clone();
        let mut options = TrainOptions::new(3, shuffle.unwrap_or(0));
        if shuffle.is_none() {
            options = options.in_order();
        }
        let mut sgd = Sgd::new(0.1).momentum(0.9);
        let error = match batch {
            5 => train(
                &mut classifier,
                &mut sgd,
                &CrossEntropy,
                &inputs,
                &classes,
                options.batch::<5>(),
                |_| ControlFlow::Continue(()),
            ),
            3 => train(
                &mut classifier,
                &mut sgd,
                &CrossEntropy,
                &inputs,
                &classes,
                options.batch::<3>(),
                |_| ControlFlow::Continue(()),
            ),
            _ => train(
                &mut classifier,
                &mut sgd,
                &CrossEntropy,
                &inputs,
                &classes,
                options,
                |_| ControlFlow::Continue(()),
            ),
        }
        .unwrap_err();
        assert_eq!(
            error,
            TrainError::InvalidTarget(ClassIndexError {
                sample: 9,
                index: 7,
                classes: 4
            }),
            "batch {batch}, shuffle {shuffle:?}"
        );
        assert_eq!(
            error.to_string(),
            "target class 7 in row 9 of the data set is out of range: the network has 4 classes \
             (0..=3); no step was taken"
        );
        assert_eq!(classifier, before, "no step was taken");
        assert_eq!(
            sgd,
            Sgd::new(0.1).momentum(0.9),
            "the optimizer is untouched"
        );
    }
    // The check itself: the first bad row, with the class count of the output.
    assert_eq!(
        <usize as Target<f64, 4>>::check(&[3, 0, 4, 9]),
        Err(ClassIndexError {
            sample: 2,
            index: 4,
            classes: 4
        })
    );
    assert_eq!(<usize as Target<f64, 4>>::check(&[3, 0, 1, 2]), Ok(()));
    assert_eq!(
        <usize as Target<f64, 4>>::check(&[usize::MAX])
            .unwrap_err()
            .sample,
        0
    );
}
