//! The inputs the generated passes accept, and that they are the same passes: arrays and
//! matrices, one sample and a batch, class indices as `usize`, `[usize; B]` and `ClassTargets`.
//! Each form is checked against the `SMatrix` form, whose numbers the PyTorch parity tests pin.

use backprop::prelude::*;

network! { struct Net < 3 => tanh 4 => 2 > }

fn batch() -> SMatrix<f64, 3, 2> {
    SMatrix::<f64, 3, 2>::from_column_slice(&[0.5, -1.0, 0.25, 1.5, 0.0, -0.75])
}

#[test]
fn an_array_of_samples_is_a_batch_with_one_column_per_sample() {
    let net = Net::<f64>::init(3);
    let samples = [[0.5, -1.0, 0.25], [1.5, 0.0, -0.75]];
    assert_eq!(net.forward_batch(&samples), net.forward_batch(&batch()));
    assert_eq!(
        net.forward_batch(&samples).column(1),
        net.forward(&samples[1])
    );

    let y = SMatrix::<f64, 2, 2>::from_column_slice(&[1.0, 0.0, 0.0, 1.0]);
    let (mut ws, mut grad, mut expected) = (net.workspace(), Net::zeros(), Net::zeros());
    let loss = net.backward(&samples, &y, &Mse, &mut ws, &mut grad);
    let reference = net.backward(&batch(), &y, &Mse, &mut ws, &mut expected);
    assert_eq!(loss.to_bits(), reference.to_bits());
    assert_eq!(grad, expected);
    assert_eq!(net.loss(&samples, &y, &Mse), net.loss(&batch(), &y, &Mse));
}

#[test]
fn one_array_is_one_sample_for_every_pass() {
    let net = Net::<f32>::init(5);
    let x = [0.5_f32, -1.0, 0.25];
    let v = SVector::<f32, 3>::from(x);
    let y = SVector::<f32, 2>::new(0.0, 1.0);
    assert_eq!(net.forward(&x), net.forward(&v));
    assert_eq!(net.forward_batch(&x), net.forward(&v));
    let (mut ws, mut grad, mut expected) = (net.workspace(), Net::zeros(), Net::zeros());
    let loss = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
    assert_eq!(loss, net.backward(&v, &y, &Mse, &mut ws, &mut expected));
    assert_eq!(grad, expected);
    assert_eq!(net.forward_into(&x, &mut ws), &net.forward(&v));
}

#[test]
fn class_indices_are_targets_wherever_class_targets_are() {
    let net = Net::<f64>::init(8);
    let (mut ws, mut a, mut b, mut c) = (net.workspace(), Net::zeros(), Net::zeros(), Net::zeros());
    let checked = ClassTargets::<2, 2>::new([1, 0]).unwrap();
    let reference = net.backward(&batch(), &checked, &CrossEntropy, &mut ws, &mut a);
    let plain = net.backward(&batch(), &[1_usize, 0], &CrossEntropy, &mut ws, &mut b);
    assert_eq!(reference.to_bits(), plain.to_bits());
    assert_eq!(a, b);
    // One sample, one index.
    let x = [0.5, -1.0, 0.25];
    let one = ClassTargets::<2, 1>::new([1]).unwrap();
    let mut ws1 = net.workspace();
    let reference = net.backward(&x, &one, &CrossEntropy, &mut ws1, &mut a);
    assert_eq!(
        reference,
        net.backward(&x, &1, &CrossEntropy, &mut ws1, &mut c)
    );
    assert_eq!(a, c);
    // Gradient checks take them too.
    backprop::gradcheck::check(
        &net,
        &batch(),
        &[1_usize, 0],
        &CrossEntropy,
        &Default::default(),
    )
    .unwrap();
}

#[test]
fn a_class_index_out_of_range_is_a_nan_loss_not_a_panic() {
    let net = Net::<f64>::init(8);
    let (mut ws, mut grad) = (net.workspace(), Net::zeros());
    let loss = net.backward(&batch(), &[1_usize, 7], &CrossEntropy, &mut ws, &mut grad);
    assert!(loss.is_nan());
    // Sample 1's gradient is NaN; the network's gradient carries it, so a training step refuses it.
    assert!(grad.params().any(|p| p.values.iter().any(|v| v.is_nan())));
}

/// The trait's passes are the inherent ones: generic code sees the same numbers.
#[test]
fn generic_code_through_model_sees_the_generated_passes() {
    fn loss_and_prediction<N: Model<I, O>, const I: usize, const O: usize>(
        net: &N,
        x: &SVector<N::Scalar, I>,
        y: &SVector<N::Scalar, O>,
    ) -> (N::Scalar, usize, N) {
        let (mut ws, mut grad) = (net.workspace::<1>(), N::zeros());
        let loss = net.backward(x, y, &Mse, &mut ws, &mut grad);
        (loss, net.predict(x), grad)
    }
    let net = Net::<f64>::init(2);
    let x = SVector::<f64, 3>::new(0.5, -1.0, 0.25);
    let y = SVector::<f64, 2>::new(1.0, 0.0);
    let (loss, class, grad) = loss_and_prediction(&net, &x, &y);
    let (mut ws, mut expected) = (net.workspace(), Net::zeros());
    assert_eq!(loss, net.backward(&x, &y, &Mse, &mut ws, &mut expected));
    assert_eq!(grad, expected);
    let out = net.forward(&x);
    assert_eq!(class, usize::from(out[1] > out[0]));
}

/// One output is a binary classifier: `predict` thresholds a sigmoid at 0.5 and a logit at 0.
#[test]
fn one_output_predicts_by_threshold() {
    network! { struct Probability < 1 => sigmoid 1 > }
    network! { struct Logit < 1 => 1 > }
    let mut p = Probability::<f64>::zeros();
    p.fc1.weight[(0, 0)] = 1.0; // σ(x): 0.5 at x = 0
    let mut l = Logit::<f64>::zeros();
    l.fc1.weight[(0, 0)] = 1.0; // x itself
    for (x, class) in [(2.0, 1), (-2.0, 0), (0.0, 1), (-1e-9, 0)] {
        assert_eq!(p.predict(&[x]), class, "sigmoid at {x}");
        assert_eq!(l.predict(&[x]), class, "logit at {x}");
    }
    assert_eq!(
        backprop::classify::accuracy(&l, &[[1.0], [-1.0]], &[1, 1]),
        0.5
    );
}

/// The trait's passes take every input form the inherent ones do.
#[test]
fn model_methods_take_arrays_in_generic_code() {
    fn loss_of<N: Model<I, O>, const I: usize, const O: usize, const B: usize>(
        net: &N,
        x: &[[N::Scalar; I]; B],
        y: &SMatrix<N::Scalar, O, B>,
    ) -> N::Scalar {
        let (mut ws, mut grad) = (net.workspace::<B>(), N::zeros());
        let loss = net.backward(x, y, &Mse, &mut ws, &mut grad);
        assert_eq!(net.forward_into(x, &mut ws), &net.forward_batch(x));
        assert_eq!(loss, net.loss(x, y, &Mse));
        loss
    }
    let net = Net::<f64>::init(4);
    let y = SMatrix::<f64, 2, 2>::from_column_slice(&[1.0, 0.0, 0.0, 1.0]);
    let samples = [[0.5, -1.0, 0.25], [1.5, 0.0, -0.75]];
    assert_eq!(loss_of(&net, &samples, &y), net.loss(&batch(), &y, &Mse));
}

/// The tools and the input derivatives take arrays as the passes do, with the matrix form's bits.
#[test]
fn tools_and_derivatives_take_arrays() {
    let net = Net::<f64>::init(6);
    let samples = [[0.5, -1.0, 0.25], [1.5, 0.0, -0.75]];
    let y = SMatrix::<f64, 2, 2>::from_column_slice(&[1.0, 0.0, 0.0, 1.0]);
    let (loss, gradient) = net.input_gradient(&samples, &y, &Mse);
    let (reference, expected) = net.input_gradient(&batch(), &y, &Mse);
    assert_eq!((loss, gradient), (reference, expected));
    let v = SMatrix::<f64, 3, 2>::repeat(0.5);
    assert_eq!(net.jvp(&samples, &v), net.jvp(&batch(), &v));
    let report = backprop::gradcheck::check(&net, &samples, &y, &Mse, &Default::default()).unwrap();
    assert_eq!(report.checked(), Net::<f64>::PARAMETERS);
    let one = SVector::<f64, 2>::new(1.0, 0.0);
    assert_eq!(
        backprop::dot::to_dot(&net, &samples[0], &one, &Mse),
        backprop::dot::to_dot(&net, &SVector::from(samples[0]), &one, &Mse)
    );
    let why = backprop::explain::explain(&net, &samples, &y, &Mse, "fc1.weight", 0, 0).unwrap();
    assert_eq!(why.samples.len(), 2);
}
