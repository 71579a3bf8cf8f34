//! A `no_std` crate without an allocator that declares networks and trains them one step, binds
//! torch-written weight files at compile time (one with a layer above 16 384 weights, held inline
//! in flash) and loads weights received as bytes: CI builds it (`cargo build -p
//! backprop-no-std-check`) and checks its dependency tree, so the generated code and
//! `backprop-core` stay usable on embedded targets.
#![no_std]
#![deny(missing_docs)]

use backprop::prelude::*;

network! {
    /// A small controller: three sensor readings in, one actuator command out.
    pub struct Controller < 3 => tanh 8 => leaky_relu(0.1) 4 => sigmoid 1 >
}

network! {
    /// A classifier over four features with a softmax output.
    pub struct Classifier < 4 => relu 6 => softmax 3 >
}

/// One training step of the controller on one sample: forward, MSE, backward, SGD. Returns the loss.
pub fn train_step(
    net: &mut Controller<f32>,
    grad: &mut Controller<f32>,
    ws: &mut ControllerWorkspace<f32>,
    sensors: [f32; 3],
    command: f32,
) -> f32 {
    let x = SVector::<f32, 3>::from(sensors);
    let y = SVector::<f32, 1>::new(command);
    let loss = net.backward(&x, &y, &Mse, ws, grad);
    Sgd::new(0.05).step(net, grad);
    loss
}

/// The class probabilities for four features, computed in `f64`.
pub fn classify(net: &Classifier<f64>, features: [f64; 4]) -> [f64; 3] {
    net.forward(&features).into()
}

/// Replaces the controller's weights with a safetensors file received over a link (state-dict
/// names, F32/F64/F16/BF16), with no allocator: on error the controller is unchanged and the error,
/// which borrows from `received`, names the tensor.
pub fn receive_weights<'a>(
    net: &mut Controller<f32>,
    received: &'a [u8],
) -> Result<(), backprop::io::slice::BytesError<'a>> {
    backprop::io::slice::from_bytes(net, received, backprop::io::slice::Naming::StateDict)
}

network! {
    /// The seed network with weights trained in PyTorch, compiled in.
    #[weights("../../tests/fixtures/weights/seed_f32.safetensors")]
    #[budget(ram = 1024)]
    pub struct Policy < 4 => relu 5 => relu 2 => sigmoid 1 >
}

network! {
    /// A network whose first layer has 20 000 weights: stored inline in the static, no heap.
    #[weights("../../tests/fixtures/weights/large.safetensors", names = sequential)]
    pub struct Perception < 200 => relu 100 => 3 >
}

/// The compiled-in policy, in flash.
pub static POLICY: Policy = Policy::WEIGHTS;

/// The compiled-in perception network, in flash.
pub static PERCEPTION: Perception = Perception::WEIGHTS;

/// The policy's command for four sensor readings.
pub fn act(sensors: [f32; 4]) -> f32 {
    POLICY.forward(&sensors)[0]
}

/// The perception network's three scores for 200 readings.
pub fn perceive(readings: &[f32; 200]) -> [f32; 3] {
    PERCEPTION.forward(readings).into()
}
