//! The gradient check of a plain function `f: &[f64] -> f64` with its analytic gradient.

use std::vec::Vec;

use super::numeric::{derivative, Probe};
use super::report::{GradcheckError, Report};
use super::{judge, select, Options};

/// Checks `analytic`, the gradient of `f` at `x` (one entry per input), against finite
/// differences; entries are named `x[i]`. The function is taken to be smooth: use
/// [`check_function_with_kinks`] for one with kinks.
pub fn check_function(
    f: impl FnMut(&[f64]) -> f64,
    x: &[f64],
    analytic: &[f64],
    options: &Options,
) -> Result<Report, GradcheckError> {
    check_function_with_kinks(f, |_: &[f64], _: &[f64]| false, x, analytic, options)
}

/// [`check_function`] for a function with kinks: `crosses_kink(x, y)` says whether the straight
/// segment from `x` to `y` crosses one; entries whose finite-difference interval does are
/// flagged and reported apart, not failed.
pub fn check_function_with_kinks(
    mut f: impl FnMut(&[f64]) -> f64,
    crosses_kink: impl Fn(&[f64], &[f64]) -> bool,
    x: &[f64],
    analytic: &[f64],
    options: &Options,
) -> Result<Report, GradcheckError> {
    options.validate()?;
    if analytic.len() != x.len() {
        return Err(GradcheckError::GradientLength {
            tensor: "x",
            expected: x.len(),
            found: analytic.len(),
        });
    }
    let base_value = f(x);
    if !base_value.is_finite() {
        return Err(GradcheckError::NonFinite { value: base_value });
    }
    let mut point: Vec<f64> = x.to_vec();
    let mut entries = Vec::new();
    for (_, i, _) in select(&[("x", x.len(), 1)], options.sample) {
        let theta = x[i];
        let mut evaluate = |value: f64| {
            point[i] = value;
            Probe {
                value: f(&point),
                kink: crosses_kink(x, &point),
            }
        };
        let estimate = derivative(theta, base_value, options.difference, &mut evaluate);
        point[i] = theta;
        entries.push(judge(options, "x", i, None, analytic[i], estimate));
    }
    let report = Report::new(entries, x.len(), base_value, *options);
    if report.passed() {
        Ok(report)
    } else {
        Err(GradcheckError::Failed(report.into()))
    }
}

/// Returns the report of a passed check, or panics with the report (or the error) otherwise.
#[track_caller]
pub fn assert_passes(result: Result<Report, GradcheckError>) -> Report {
    match result {
        Ok(report) => report,
        Err(error) => panic!("{error}"),
    }
}
