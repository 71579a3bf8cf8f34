//! The gradient check of a generated network: every parameter entry (or a seeded sample),
//! through named parameter access.

use nalgebra::SMatrix;
use std::vec::Vec;

use super::kink::Sides;
use super::numeric::{derivative, Probe};
use super::report::{GradcheckError, Report};
use super::{judge, select, Options};
use crate::heap::{zeroed, InPlace};
use crate::loss::Loss;
use crate::model::Model;
use crate::network::Network;
use crate::sample::BatchFor;

/// Checks the gradient `backward` computes for `net` at input `x` (one column per sample),
/// `target` and `loss` against finite differences. An `f32` network is checked through
/// `net.cast::<f64>()` and `x.cast::<f64>()`.
///
/// ```
/// use backprop::gradcheck::{check, Options};
/// use backprop::prelude::*;
///
/// network! { struct Net < 3 => tanh 4 => 2 > }
///
/// let net = Net::<f64>::init(5);
/// // Two samples, one column each, and their classes.
/// let x = SMatrix::<f64, 3, 2>::new(0.5, -1.0, 0.25, 1.5, 0.0, -0.75);
/// let report = check(&net, &x, &[1_usize, 0], &CrossEntropy, &Options::default()).unwrap();
/// assert_eq!(report.checked(), Net::<f64>::PARAMETERS); // every weight and bias
/// assert!(report.max_relative_error() < 1e-7);
/// ```
pub fn check<N, L, Y, const I: usize, const O: usize, const B: usize>(
    net: &N,
    x: &impl BatchFor<N, f64, I, B>,
    target: &Y,
    loss: &L,
    options: &Options,
) -> Result<Report, GradcheckError>
where
    N: Model<I, O, Scalar = f64>,
    L: Loss<f64, O, B, Y>,
{
    let x = x.as_batch();
    let mut ws = net.workspace();
    let mut grad = N::zeros();
    net.backward(x, target, loss, &mut ws, &mut grad);
    check_gradient(net, x, target, loss, &grad, options)
}

/// Checks a gradient the caller computed (`grad`, a value of the network's type whose entries are
/// ∂loss/∂parameter) for `net` at `x`, `target` and `loss` against finite differences.
pub fn check_gradient<N, L, Y, const I: usize, const O: usize, const B: usize>(
    net: &N,
    x: &impl BatchFor<N, f64, I, B>,
    target: &Y,
    loss: &L,
    grad: &N,
    options: &Options,
) -> Result<Report, GradcheckError>
where
    N: Model<I, O, Scalar = f64>,
    L: Loss<f64, O, B, Y>,
{
    let x = x.as_batch();
    options.validate()?;
    let mut ws = net.workspace();
    let mut base_output = zeroed::<SMatrix<f64, O, B>>();
    InPlace::copy_from(&mut *base_output, net.forward_into(x, &mut ws));
    let base_value = loss.value(&*base_output, target);
    if !base_value.is_finite() {
        return Err(GradcheckError::NonFinite { value: base_value });
    }
    let sides = Sides::of::<N, I, O, B>(&ws);

    let shapes: Vec<(&'static str, usize, usize)> =
        net.params().map(|p| (p.name, p.rows, p.cols)).collect();
    let analytic: Vec<&[f64]> = grad.params().map(|p| p.values).collect();
    let mut probe = net.clone();
    let mut entries = Vec::new();
    for (tensor, row, col) in select(&shapes, options.sample) {
        let (name, rows, _) = shapes[tensor];
        let index = row + col * rows;
        let theta = net
            .params()
            .nth(tensor)
            .map_or(f64::NAN, |p| p.values[index]);
        let mut evaluate = |value: f64| {
            set(&mut probe, tensor, index, value);
            let output = probe.forward_into(x, &mut ws);
            let value = loss.value(output, target);
            let loss_kink = loss.crosses_kink(&*base_output, output, target);
            Probe {
                value,
                kink: loss_kink || sides.crossed::<N, I, O, B>(&ws),
            }
        };
        let estimate = derivative(theta, base_value, options.difference, &mut evaluate);
        // Restore the entry exactly: the next entries are perturbed from the original network.
        set(&mut probe, tensor, index, theta);
        let col = (!name.ends_with(".bias")).then_some(col);
        entries.push(judge(
            options,
            name,
            row,
            col,
            analytic[tensor][index],
            estimate,
        ));
    }
    let report = Report::new(entries, N::PARAMETERS, base_value, *options);
    if report.passed() {
        Ok(report)
    } else {
        Err(GradcheckError::Failed(report.into()))
    }
}

/// Sets entry `index` (column-major) of parameter tensor `tensor` of `net` to `value`.
fn set<N: Network<Scalar = f64>>(net: &mut N, tensor: usize, index: usize, value: f64) {
    if let Some(param) = net.params_mut().nth(tensor) {
        param.values[index] = value;
    }
}

/// Runs [`check`] and returns its report, or panics with the report when an entry fails (or
/// with the error when the check cannot run).
#[track_caller]
pub fn assert_gradients<N, L, Y, const I: usize, const O: usize, const B: usize>(
    net: &N,
    x: &impl BatchFor<N, f64, I, B>,
    target: &Y,
    loss: &L,
    options: &Options,
) -> Report
where
    N: Model<I, O, Scalar = f64>,
    L: Loss<f64, O, B, Y>,
{
    let x = x.as_batch();
    match check(net, x, target, loss, options) {
        Ok(report) => report,
        Err(error) => panic!("{error}"),
    }
}
