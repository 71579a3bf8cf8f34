use backprop::prelude::*;
use backprop::train::{train, TrainOptions};
use std::ops::ControlFlow;

network! { struct Detector < 2 => tanh 4 => sigmoid 1 > }

fn main() {
    // BceWithLogits applies the sigmoid itself; found where train instantiates the backward pass.
    let mut net = Detector::<f32>::init(0);
    let inputs = [[0.0, 1.0], [1.0, 0.0]];
    let targets = [SVector::<f32, 1>::new(1.0), SVector::<f32, 1>::new(0.0)];
    let _ = train(
        &mut net,
        &mut Adam::new(0.01),
        &BceWithLogits,
        &inputs,
        &targets,
        TrainOptions::new(10, 0).batch::<2>(),
        |_| ControlFlow::Continue(()),
    );
}
