use backprop::prelude::*;

network! { struct Classifier < 4 => relu 8 => softmax 3 > }

fn main() {
    // CrossEntropy applies log-softmax itself: a softmax output trains silently worse.
    let net = Classifier::<f32>::init(0);
    let mut ws = net.workspace();
    let mut grad = Classifier::zeros();
    net.backward(&[0.5, 1.0, -1.0, 2.0], &2, &CrossEntropy, &mut ws, &mut grad);
}
