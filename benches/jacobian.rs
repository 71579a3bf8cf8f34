//! Input Jacobians, one sample, f32: the generated `jacobian` (reverse mode for these shapes) and
//! `jacobian_forward_mode`, against the same Jacobian from separate passes (one `vjp` per output
//! row, one `jvp` per input column, as a tape-based framework computes it) and from central
//! finite differences (two forward passes per input). For the seed network `4-5-2-1`,
//! `64 => relu 32 => sigmoid 10` and `6 => tanh 32 => 4`.
//!
//! Run with `cargo bench --bench jacobian`.

use std::hint::black_box;
use std::time::Duration;

use backprop::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};

network! { pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { pub struct Mid < 64 => relu 32 => sigmoid 10 > }
network! { pub struct Control < 6 => tanh 32 => 4 > }

/// The Jacobian of `$net` at `$x` from one VJP per output (row by row).
macro_rules! by_vjps {
    ($net:expr, $x:expr, $outputs:literal, $inputs:literal) => {{
        let mut jacobian = SMatrix::<f32, $outputs, $inputs>::zeros();
        for row in 0..$outputs {
            let mut seed = SVector::<f32, $outputs>::zeros();
            seed[row] = 1.0;
            let (_, gradient) = $net.vjp(&$x, &seed);
            jacobian.set_row(row, &gradient.transpose());
        }
        jacobian
    }};
}

/// The Jacobian of `$net` at `$x` from one JVP per input (column by column).
macro_rules! by_jvps {
    ($net:expr, $x:expr, $outputs:literal, $inputs:literal) => {{
        let mut jacobian = SMatrix::<f32, $outputs, $inputs>::zeros();
        for col in 0..$inputs {
            let mut direction = SVector::<f32, $inputs>::zeros();
            direction[col] = 1.0;
            let (_, tangent) = $net.jvp(&$x, &direction);
            jacobian.set_column(col, &tangent);
        }
        jacobian
    }};
}

/// The Jacobian of `$net` at `$x` by central differences with step `h`.
macro_rules! by_differences {
    ($net:expr, $x:expr, $outputs:literal, $inputs:literal) => {{
        let h = 1e-2f32;
        let mut jacobian = SMatrix::<f32, $outputs, $inputs>::zeros();
        for col in 0..$inputs {
            let (mut up, mut down) = ($x, $x);
            up[col] += h;
            down[col] -= h;
            let slope = ($net.forward(&up) - $net.forward(&down)) / (2.0 * h);
            jacobian.set_column(col, &slope);
        }
        jacobian
    }};
}

/// Every way of one network's Jacobian, after checking that they agree.
macro_rules! jacobian_group {
    ($c:expr, $group:literal, $net:expr, $x:expr, $outputs:literal, $inputs:literal) => {{
        let (net, x) = ($net, $x);
        let reference = net.jacobian(&x);
        for (what, other) in [
            ("forward mode", net.jacobian_forward_mode(&x)),
            ("vjps", by_vjps!(net, x, $outputs, $inputs)),
            ("jvps", by_jvps!(net, x, $outputs, $inputs)),
        ] {
            assert!((other - reference).abs().max() <= 1e-5, "{what} disagrees");
        }
        let differences = by_differences!(net, x, $outputs, $inputs);
        assert!(
            (differences - reference).abs().max() <= 1e-2,
            "differences disagree"
        );

        let mut group = $c.benchmark_group($group);
        group.bench_function("jacobian", |b| b.iter(|| net.jacobian(black_box(&x))));
        group.bench_function("forward_mode", |b| {
            b.iter(|| net.jacobian_forward_mode(black_box(&x)))
        });
        group.bench_function("reverse_mode", |b| {
            b.iter(|| net.jacobian_reverse_mode(black_box(&x)))
        });
        group.bench_function("vjp_per_output", |b| {
            b.iter(|| by_vjps!(net, black_box(x), $outputs, $inputs))
        });
        group.bench_function("jvp_per_input", |b| {
            b.iter(|| by_jvps!(net, black_box(x), $outputs, $inputs))
        });
        group.bench_function("finite_differences", |b| {
            b.iter(|| by_differences!(net, black_box(x), $outputs, $inputs))
        });
        group.finish();
    }};
}

fn seed(c: &mut Criterion) {
    let x = SVector::<f32, 4>::new(0.1, -0.7, 1.0, 0.9);
    // Weights with every unit live at this input: the Jacobian is not all zeros.
    let mut net = Seed::<f32>::init(13);
    backprop::init::xavier_uniform(&mut net, 5);
    net.fc1.bias.fill(0.5);
    net.fc2.bias.fill(0.5);
    assert!(net.jacobian(&x).abs().max() > 0.0);
    jacobian_group!(c, "jacobian_seed", net, x, 1, 4);
}

fn mid(c: &mut Criterion) {
    let x = SVector::<f32, 64>::from_fn(|r, _| ((r * 7) % 11) as f32 / 11.0 - 0.4);
    let net = Mid::<f32>::init(3);
    jacobian_group!(c, "jacobian_mid", net, x, 10, 64);
}

fn control(c: &mut Criterion) {
    let x = SVector::<f32, 6>::new(0.3, -0.2, 0.8, 0.1, -0.5, 0.4);
    let net = Control::<f32>::init(2);
    jacobian_group!(c, "jacobian_control", net, x, 4, 6);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = seed, mid, control
}
criterion_main!(benches);
