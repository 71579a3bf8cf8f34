//! The gradient check of an input Jacobian: every entry `∂output[i]/∂input[j]` (or a seeded
//! sample) against central differences in the input, with the kinks of the network's
//! activations flagged as for weights.

use nalgebra::{SMatrix, SVector};
use std::vec::Vec;

use super::kink::Sides;
use super::numeric::{derivative, Probe};
use super::report::{GradcheckError, Report};
use super::{judge, select, Options};
use crate::model::Model;
use crate::sample::SampleFor;

/// Checks `jacobian` (`[OUTPUTS × INPUTS]`, as the generated `net.jacobian(&x)` returns it) for
/// `net` at the sample `x` against finite differences of the outputs in each input. Entries are
/// named `jacobian[i][j]`, for `∂output[i]/∂input[j]`; the report's value is the outputs'
/// Euclidean norm at `x`. An `f32` network is checked through `net.cast::<f64>()`.
///
/// ```
/// use backprop::prelude::*;
/// use backprop::gradcheck;
///
/// network! { struct Net < 4 => tanh 5 => sigmoid 2 > }
/// let net = Net::<f64>::init(3);
/// let x = SVector::<f64, 4>::new(0.3, -0.2, 0.8, 0.1);
/// let report = gradcheck::check_jacobian(&net, &x, &net.jacobian(&x), &Default::default()).unwrap();
/// assert_eq!(report.checked(), 8);
/// ```
pub fn check_jacobian<N, const I: usize, const O: usize>(
    net: &N,
    x: &impl SampleFor<N, f64, I>,
    jacobian: &SMatrix<f64, O, I>,
    options: &Options,
) -> Result<Report, GradcheckError>
where
    N: Model<I, O, Scalar = f64>,
{
    let x = x.as_vector();
    options.validate()?;
    let mut ws = net.workspace();
    let base: SVector<f64, O> = *net.forward_into(x, &mut ws);
    if let Some(bad) = base.iter().find(|v| !v.is_finite()) {
        return Err(GradcheckError::NonFinite { value: *bad });
    }
    let sides = Sides::of::<N, I, O, 1>(&ws);
    let mut probe = *x;
    let mut entries = Vec::new();
    for (_, row, col) in select(&[("jacobian", O, I)], options.sample) {
        let theta = x[col];
        let mut evaluate = |value: f64| {
            probe[col] = value;
            let output = net.forward_into(&probe, &mut ws);
            Probe {
                value: output[row],
                kink: sides.crossed::<N, I, O, 1>(&ws),
            }
        };
        let estimate = derivative(theta, base[row], options.difference, &mut evaluate);
        probe[col] = theta;
        entries.push(judge(
            options,
            "jacobian",
            row,
            Some(col),
            jacobian[(row, col)],
            estimate,
        ));
    }
    let report = Report::new(entries, O * I, base.norm(), *options);
    if report.passed() {
        Ok(report)
    } else {
        Err(GradcheckError::Failed(report.into()))
    }
}
