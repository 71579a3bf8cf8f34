//! XOR, the classic network that needs a hidden layer: `2 => tanh 4 => sigmoid 1` with binary
//! cross-entropy and Adam, on the four points of the truth table. Prints the table it learned.
//!
//! Run with `cargo run --example xor`.

use std::ops::ControlFlow;

use backprop::optim::Adam;
use backprop::prelude::*;
use backprop::train::{train, TrainOptions};

network! {
    /// Two inputs, four hidden units, one probability.
    pub struct Xor < 2 => tanh 4 => sigmoid 1 >
}

fn main() {
    let inputs = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]].map(SVector::<f32, 2>::from);
    let targets = [0.0, 1.0, 1.0, 0.0].map(SVector::<f32, 1>::new);

    let mut net = Xor::<f32>::init(1);
    let mut adam = Adam::new(0.05);
    let history = train(
        &mut net,
        &mut adam,
        &Bce,
        &inputs,
        &targets,
        TrainOptions::new(500, 0).batch::<4>(),
        |_| ControlFlow::Continue(()),
    )
    .expect("training succeeds");

    println!(
        "XOR after {} epochs (loss {:.4} → {:.5}):\n",
        history.losses.len(),
        history.losses[0],
        history.losses[history.losses.len() - 1]
    );
    println!("  a  b | a XOR b | network");
    println!("  -----+---------+--------");
    let mut correct = 0;
    for (x, t) in inputs.iter().zip(&targets) {
        let p = net.forward(x)[0];
        correct += usize::from((p > 0.5) == (t[0] > 0.5));
        println!("  {}  {} |    {}    | {p:.3}", x[0], x[1], t[0]);
    }
    println!("\n{correct}/4 correct");
    assert_eq!(correct, 4, "the network should learn XOR");
}
