//! A controller trained in PyTorch (`scripts/make_embedded_model.py`, exported with
//! `python/export.py`), compiled into the binary with `#[weights]`, run in a firmware-style loop
//! that allocates nothing, fine-tuned on the device when the plant changes, with every cost known
//! at compile time printed first. `cargo run --example embedded`
//!
//! The loop below is what a `#![no_std]` firmware without an allocator runs (`checks/no-std`
//! builds the same calls that way); here a counting allocator shows that neither the control loop
//! nor a fine-tuning step touches the heap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use backprop::prelude::*;

network! {
    /// u = controller(angle, velocity, target), trained in PyTorch to imitate a saturated PD law.
    /// Inference must fit 2 KiB of RAM; fine-tuning with SGD at batch 8 must fit 16 KiB.
    #[weights("examples/models/controller.safetensors")]
    #[budget(ram = 2048, macs = 200)]
    pub struct Controller < 3 => tanh 16 => tanh 8 => 1 >
}

// The same architecture, budgeted for on-device training (a RAM copy, a gradient, a workspace).
network! {
    #[budget(ram = 16384, batch = 8, train = sgd)]
    struct TrainingBudget < 3 => tanh 16 => tanh 8 => 1 >
}

/// The weights, in flash: a `static`, no heap, no file system.
static CONTROLLER: Controller = Controller::WEIGHTS;

/// Counts heap allocations, to show the loops make none.
struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

/// A pendulum-like plant: the command accelerates the angle with `gain`, friction slows it.
fn plant(angle: f32, velocity: f32, command: f32, gain: f32) -> (f32, f32) {
    let dt = 0.02;
    let velocity = velocity + dt * (gain * 4.0 * command - 0.8 * velocity);
    (angle + dt * velocity, velocity)
}

/// The law the controller imitates, given the angle its sensor reads (`offset` above the truth).
fn ideal(measured: f32, velocity: f32, target: f32, offset: f32) -> f32 {
    (2.0 * (target - (measured - offset)) - 0.5 * velocity).tanh()
}

/// Runs the closed loop for `steps` from rest toward `target` with an angle sensor that reads
/// `offset` too high; returns the final tracking error.
fn run(net: &Controller, steps: usize, target: f32, offset: f32) -> f32 {
    let (mut angle, mut velocity) = (0.0f32, 0.0f32);
    for _ in 0..steps {
        let command = net.forward(&[angle + offset, velocity, target])[0];
        (angle, velocity) = plant(angle, velocity, command, 1.0);
    }
    (target - angle).abs()
}

fn main() {
    type C = Controller<f32>;
    println!("Controller, costs known at compile time (f32, this target):");
    println!(
        "  parameters       {:>6} ({} bytes in flash)",
        C::PARAMETERS,
        C::PARAMETER_BYTES
    );
    println!(
        "  network in RAM   {:>6} bytes (a copy to fine-tune)",
        C::NETWORK_BYTES
    );
    println!(
        "  workspace B=1    {:>6} bytes, B=8 {} bytes",
        C::workspace_bytes::<1>(),
        C::workspace_bytes::<8>()
    );
    println!("  gradient         {:>6} bytes", C::GRADIENT_BYTES);
    println!(
        "  SGD / momentum   {:>6} / {} bytes; Adam {} bytes",
        C::SGD_BYTES,
        C::SGD_MOMENTUM_BYTES,
        C::ADAM_BYTES
    );
    println!(
        "  forward          {:>6} multiply-adds; training step {} per sample",
        C::FORWARD_MACS,
        C::TRAINING_MACS
    );
    println!(
        "  RAM, inference from flash {} bytes; fine-tuning at B=8 with SGD {} bytes",
        C::flash_inference_ram::<1>(),
        C::training_ram::<8>(C::SGD_BYTES)
    );

    // The control loop, straight from flash: no allocation.
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let error = run(&CONTROLLER, 400, 1.0, 0.0);
    let loop_allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!("\nflash controller, nominal plant: tracking error {error:.4} after 8 s, {loop_allocations} allocations");
    assert_eq!(loop_allocations, 0);

    // The angle sensor is remounted and reads 0.3 rad high: the compiled-in controller settles
    // off target.
    let offset = 0.3;
    let biased = run(&CONTROLLER, 400, 1.0, offset);
    println!("flash controller, sensor reading 0.3 high: tracking error {biased:.4}");

    // Fine-tune on the device: copy into RAM and train with SGD at batch 8 on samples of the law
    // for the new sensor (measured angles in, the commands that would have been right out).
    let mut net = CONTROLLER.clone();
    let mut grad = C::zeros();
    let mut ws = net.workspace::<8>();
    let mut sgd = Sgd::new(0.1);
    let mut state = 12345u32;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as f32 / u32::MAX as f32) * 4.0 - 2.0
    };
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut loss = 0.0;
    for _ in 0..3000 {
        let mut x = SMatrix::<f32, 3, 8>::zeros();
        let mut y = SMatrix::<f32, 1, 8>::zeros();
        for s in 0..8 {
            let (a, v, t) = (uniform(), uniform(), uniform());
            x.set_column(s, &SVector::<f32, 3>::new(a, v, t));
            y[s] = ideal(a, v, t, offset);
        }
        loss = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
        sgd.step(&mut net, &grad);
    }
    let training_allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let tuned = run(&net, 400, 1.0, offset);
    println!(
        "fine-tuned in RAM (3000 SGD steps at batch 8, loss {loss:.2e}): tracking error {tuned:.4}, \
         {training_allocations} allocations"
    );
    assert_eq!(training_allocations, 0);
    assert!(
        tuned < biased / 3.0,
        "fine-tuning did not correct the offset"
    );
    let _ = TrainingBudget::<f32>::zeros();
}
