use backprop::prelude::*;

network! { struct Classifier < 4 => relu 8 => 3 > }

fn main() {
    // The fix the softmax case's message gives: no activation on the last layer.
    let net = Classifier::<f32>::init(0);
    let mut ws = net.workspace();
    let mut grad = Classifier::zeros();
    let loss = net.backward(&[0.5, 1.0, -1.0, 2.0], &2, &CrossEntropy, &mut ws, &mut grad);
    assert!(loss.is_finite());
}
