//! Classifier helpers: `predict` is the argmax of the forward pass, `accuracy` counts right
//! predictions, and the module's example runs.

use backprop::classify::{accuracy, argmax, predict};
use backprop::prelude::*;

network! { struct Iris < 4 => relu 8 => 3 > }

#[test]
fn predict_is_the_argmax_of_the_output() {
    let net = Iris::<f32>::init(0);
    for k in 0..20 {
        let x = SVector::<f32, 4>::from_fn(|r, _| ((k * 3 + r * 5) % 7) as f32 - 3.0);
        let output = net.forward(&x);
        let by_hand = (0..3)
            .max_by(|&a, &b| output[a].partial_cmp(&output[b]).unwrap().then(b.cmp(&a)))
            .unwrap();
        assert_eq!(predict(&net, &x), by_hand, "{output:?}");
        assert_eq!(argmax(output.as_slice()), Some(by_hand));
    }
}

#[test]
fn accuracy_counts_right_predictions() {
    let net = Iris::<f32>::init(1);
    let inputs: Vec<SVector<f32, 4>> = (0..10)
        .map(|k| SVector::<f32, 4>::from_fn(|r, _| ((k + r) % 5) as f32 - 2.0))
        .collect();
    let right: Vec<usize> = inputs.iter().map(|x| predict(&net, x)).collect();
    assert_eq!(accuracy(&net, &inputs, &right), 1.0);
    // Three labels changed to a class the network did not predict: 7 of 10 right.
    let mut labels = right.clone();
    for label in labels.iter_mut().take(3) {
        *label = (*label + 1) % 3;
    }
    assert!((accuracy(&net, &inputs, &labels) - 0.7).abs() < 1e-12);
    assert_eq!(accuracy(&net, &[] as &[[f32; 4]], &[]), 0.0);
}

/// The example in the `classify` module's documentation.
#[test]
fn the_module_example_runs() {
    let net = Iris::<f32>::init(0);
    let x = SVector::<f32, 4>::new(5.1, 3.5, 1.4, 0.2);
    let class = predict(&net, &x);
    assert!(class < 3);
    assert_eq!(accuracy(&net, &[x], &[class]), 1.0);
}
