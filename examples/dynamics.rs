//! A learned model of a pendulum's dynamics, and its Jacobian used as a controller would use it.
//!
//! The pendulum (angle θ, angular velocity ω, torque u) steps by semi-implicit Euler with
//! `dt = 0.05`: `ω' = ω + dt·(−(g/l)·sin θ − b·ω + u/(m l²))`, `θ' = θ + dt·ω'`. The network
//! `3 => tanh 32 => tanh 32 => 2` learns the state's rate of change, `(x' − x)/dt`, from 4096
//! random transitions (MSE, Adam). Then, along a simulated trajectory, the network's Jacobian
//! (`net.jacobian(&[θ, ω, u])`, a 2 × 3 `SMatrix`, straight-line and allocation-free) gives the
//! linearisation `x' ≈ x + dt·(f(x, u))` with `∂x'/∂(x, u) = [I 0] + dt·J`, which is compared with
//! the true one; the error is printed and drawn (`target/dynamics.svg`, or `--out PATH`). Last,
//! one linearised control step: the torque that brings the predicted next angular velocity to a
//! target, solved from the learned `∂ω'/∂u`, applied to the true pendulum.
//!
//! Run with `cargo run --release --example dynamics` (`-- --epochs N` to change the epochs).

use std::ops::ControlFlow;

use backprop::prelude::*;
use backprop::train::{train, TrainOptions};
use plotters::prelude::*;
use rand::Rng;

network! {
    /// The pendulum's rate of change `(dθ, dω)` from `(θ, ω, u)`.
    pub struct Dynamics < 3 => tanh 32 => tanh 32 => 2 >
}

/// The time step.
const DT: f64 = 0.05;
/// Gravity over length, g/l.
const G_OVER_L: f64 = 9.81;
/// Damping, b.
const DAMPING: f64 = 0.1;
/// The inverse of the moment of inertia, 1/(m l²).
const INV_INERTIA: f64 = 1.0;

/// One true step: the next `(θ, ω)` from `(θ, ω)` and the torque `u`.
fn step(theta: f64, omega: f64, u: f64) -> (f64, f64) {
    let omega_next = omega + DT * (-G_OVER_L * theta.sin() - DAMPING * omega + INV_INERTIA * u);
    (theta + DT * omega_next, omega_next)
}

/// The true Jacobian of one step, `∂(θ', ω')/∂(θ, ω, u)`, by hand from [`step`].
fn true_jacobian(theta: f64) -> SMatrix<f64, 2, 3> {
    let dw_dtheta = -DT * G_OVER_L * theta.cos();
    let dw_domega = 1.0 - DT * DAMPING;
    let dw_du = DT * INV_INERTIA;
    SMatrix::<f64, 2, 3>::new(
        1.0 + DT * dw_dtheta,
        DT * dw_domega,
        DT * dw_du,
        dw_dtheta,
        dw_domega,
        dw_du,
    )
}

/// The learned Jacobian of one step: `[I 0] + dt·J` where `J` is the network's Jacobian.
fn learned_jacobian(net: &Dynamics<f64>, theta: f64, omega: f64, u: f64) -> SMatrix<f64, 2, 3> {
    let mut jacobian = net.jacobian(&[theta, omega, u]) * DT;
    jacobian[(0, 0)] += 1.0;
    jacobian[(1, 1)] += 1.0;
    jacobian
}

/// The value following `flag` on the command line, if given.
fn argument(flag: &str) -> Option<String> {
    std::env::args().skip_while(|arg| arg != flag).nth(1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = argument("--epochs").map_or(Ok(150), |n| n.parse())?;
    let out = argument("--out")
        .unwrap_or_else(|| format!("{}/target/dynamics.svg", env!("CARGO_MANIFEST_DIR")));

    // Random transitions over the region the trajectory visits.
    let mut rng = backprop::init::seeded_rng(7);
    let mut inputs = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..4096 {
        let (theta, omega, u) = (
            rng.random_range(-1.5..1.5),
            rng.random_range(-4.0..4.0),
            rng.random_range(-2.0..2.0),
        );
        let (theta_next, omega_next) = step(theta, omega, u);
        inputs.push(SVector::<f64, 3>::new(theta, omega, u));
        targets.push(SVector::<f64, 2>::new(
            (theta_next - theta) / DT,
            (omega_next - omega) / DT,
        ));
    }
    let mut net = Dynamics::<f64>::init(1);
    let mut adam = Adam::new(3e-3);
    let history = train(
        &mut net,
        &mut adam,
        &Mse,
        &inputs,
        &targets,
        TrainOptions::new(epochs, 0).batch::<32>(),
        |_| ControlFlow::Continue(()),
    )?;
    println!(
        "dynamics: {epochs} epochs, training MSE {:.2e} (rates of change)",
        history.losses[history.losses.len() - 1]
    );

    // A trajectory under a gentle torque, and both Jacobians along it.
    let (mut theta, mut omega) = (1.2, 0.0);
    let mut rows = Vec::new();
    for k in 0..120 {
        let u = 0.5 * (0.1 * k as f64).sin();
        let truth = true_jacobian(theta);
        let learned = learned_jacobian(&net, theta, omega, u);
        let error = (learned - truth).norm() / truth.norm();
        rows.push((
            k,
            truth[(1, 0)],
            learned[(1, 0)],
            truth[(1, 2)],
            learned[(1, 2)],
            error,
        ));
        (theta, omega) = step(theta, omega, u);
    }
    let mean_error = rows.iter().map(|r| r.5).sum::<f64>() / rows.len() as f64;
    let worst_error = rows.iter().map(|r| r.5).fold(0.0, f64::max);
    println!(
        "Jacobian along a 120-step trajectory: relative error (Frobenius) mean {mean_error:.2e}, \
         worst {worst_error:.2e}"
    );
    println!("  step   ∂ω'/∂θ true   learned    ∂ω'/∂u true   learned");
    for row in rows.iter().step_by(20) {
        println!(
            "  {:>4}   {:>+10.5}   {:>+8.5}    {:>+10.5}   {:>+8.5}",
            row.0, row.1, row.2, row.3, row.4
        );
    }

    // One linearised control step: from (θ, ω) with torque 0, the torque that makes the
    // predicted next ω equal the target, from the learned ∂ω'/∂u (the model is linear in u to
    // first order), applied to the true pendulum.
    let (theta, omega, target_omega) = (0.6, 0.0, 0.0);
    let rate = net.forward(&[theta, omega, 0.0]);
    let predicted_omega = omega + DT * rate[1];
    let b = learned_jacobian(&net, theta, omega, 0.0)[(1, 2)];
    let u = (target_omega - predicted_omega) / b;
    let (_, omega_after) = step(theta, omega, u);
    let (_, omega_free) = step(theta, omega, 0.0);
    let exact_u = (target_omega - omega_free) / (DT * INV_INERTIA);
    println!(
        "control step at θ = {theta}: torque {u:+.4} (exact {exact_u:+.4}); next ω {omega_after:+.5} \
         against {omega_free:+.5} without it (target {target_omega})"
    );

    let values = rows.iter().flat_map(|r| [r.1, r.2]);
    let (lowest, highest) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let root = SVGBackend::new(&out, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let mut chart = ChartBuilder::on(&left)
        .caption("∂ω'/∂θ along the trajectory", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0..rows.len(), lowest - 0.05..highest + 0.05)?;
    chart.configure_mesh().x_desc("step").draw()?;
    chart
        .draw_series(LineSeries::new(rows.iter().map(|r| (r.0, r.1)), &BLUE))?
        .label("true")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
    chart
        .draw_series(LineSeries::new(rows.iter().map(|r| (r.0, r.2)), &RED))?
        .label("network")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()?;
    let top = worst_error.max(1e-6) * 2.0;
    let mut errors = ChartBuilder::on(&right)
        .caption("relative error of the Jacobian", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0..rows.len(), (1e-5..top).log_scale())?;
    errors.configure_mesh().x_desc("step").draw()?;
    errors.draw_series(LineSeries::new(
        rows.iter().map(|r| (r.0, r.5.max(1e-5))),
        &BLACK,
    ))?;
    root.present()?;
    println!("picture: {out}");
    Ok(())
}
