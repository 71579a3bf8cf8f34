//! Regression: `1 => tanh 16 => tanh 16 => 1` learns sin(x) on [−π, π] from 256 points with MSE
//! and Adam (lr 1e-2) under an exponential decay of the rate (ExponentialLR, γ 0.995 per epoch:
//! 6e-3 at epoch 100, 5e-4 at 600). At the constant rate 1e-2 the loss curve spikes after epoch
//! 100 to over 1000× the lowest loss before it, and ends at an MSE of 6e-5; decayed, the largest
//! such spike is 6× and the final MSE 4e-6 (both printed). Then it draws the fit and the loss
//! curve with plotters (`target/sine.svg`, or the path given after `--out`).
//!
//! Run with `cargo run --release --example sine` (`-- --epochs N` to change the epochs).

use std::f32::consts::PI;
use std::ops::ControlFlow;

use backprop::optim::Adam;
use backprop::prelude::*;
use backprop::train::{train_with, Every, Fit, TrainOptions};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;

network! {
    /// One input, two hidden layers of 16, one output.
    pub struct Sine < 1 => tanh 16 => tanh 16 => 1 >
}

/// The value following `flag` on the command line, if given.
fn argument(flag: &str) -> Option<String> {
    std::env::args().skip_while(|arg| arg != flag).nth(1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = argument("--epochs").map_or(Ok(600), |n| n.parse())?;
    let out = argument("--out")
        .unwrap_or_else(|| format!("{}/target/sine.svg", env!("CARGO_MANIFEST_DIR")));

    let xs: Vec<f32> = (0..256)
        .map(|i| -PI + 2.0 * PI * i as f32 / 255.0)
        .collect();
    let inputs: Vec<SVector<f32, 1>> = xs.iter().map(|&x| SVector::<f32, 1>::new(x)).collect();
    let targets: Vec<SVector<f32, 1>> = xs
        .iter()
        .map(|&x| SVector::<f32, 1>::new(x.sin()))
        .collect();

    let mut net = Sine::<f32>::init(3);
    let mut adam = Adam::new(1e-2);
    let mut schedule = Schedule::exponential_lr(0.995);
    let bar = ProgressBar::new(epochs as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} epochs  loss {msg}",
    )?);
    let history = train_with(
        &mut net,
        &mut adam,
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(epochs, 0).batch::<32>(),
        Fit::new().schedule(&mut schedule, Every::Epoch),
        |epoch| {
            bar.set_message(format!("{:.5}", epoch.loss));
            bar.inc(1);
            ControlFlow::Continue(())
        },
    )?;
    bar.finish();

    let worst = xs
        .iter()
        .map(|&x| (net.forward(&[x])[0] - x.sin()).abs())
        .fold(0.0f32, f32::max);
    println!(
        "sine: final MSE {:.6}, largest error {worst:.4}",
        history.losses[history.losses.len() - 1]
    );
    // The largest spike after epoch 100: an epoch's loss over the lowest loss before it.
    let mut lowest = f64::INFINITY;
    let mut spike = 1.0f64;
    for (epoch, &loss) in history.losses.iter().enumerate() {
        if epoch > 100 {
            spike = spike.max(loss / lowest);
        }
        lowest = lowest.min(loss);
    }
    println!("largest spike after epoch 100: {spike:.1}× the lowest loss before it");

    let root = SVGBackend::new(&out, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let mut fit = ChartBuilder::on(&left)
        .caption("sin(x) and the network's fit", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(-PI..PI, -1.2f32..1.2)?;
    fit.configure_mesh().draw()?;
    fit.draw_series(LineSeries::new(xs.iter().map(|&x| (x, x.sin())), &BLUE))?
        .label("sin(x)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
    fit.draw_series(LineSeries::new(
        xs.iter().map(|&x| (x, net.forward(&[x])[0])),
        &RED,
    ))?
    .label("network")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
    fit.configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()?;

    let top = history
        .losses
        .iter()
        .cloned()
        .fold(f64::MIN_POSITIVE, f64::max);
    let bottom = history
        .losses
        .iter()
        .cloned()
        .fold(f64::MAX, f64::min)
        .max(1e-8);
    let mut curve = ChartBuilder::on(&right)
        .caption("training loss (MSE, log scale)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0..history.losses.len(), (bottom..top).log_scale())?;
    curve.configure_mesh().x_desc("epoch").draw()?;
    curve.draw_series(LineSeries::new(
        history.losses.iter().enumerate().map(|(i, &l)| (i, l)),
        &BLACK,
    ))?;
    root.present()?;
    println!("picture: {out}");
    Ok(())
}
