//! The numeric derivative of one entry: central differences, plain or extrapolated, with kinks.

use super::Difference;

/// One evaluation of the function with the entry moved to a new value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    /// The function's value there.
    pub value: f64,
    /// Whether the way from the unperturbed point to this one crosses a kink.
    pub kink: bool,
}

/// A numeric derivative and how far to trust it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Estimate {
    /// The derivative.
    pub value: f64,
    /// An estimate of its absolute error (rounding and, when extrapolating, truncation).
    pub uncertainty: f64,
    /// Some step of the scheme crossed a kink.
    pub near_kink: bool,
}

/// Each step of the extrapolation is the previous one divided by this (Ridders' choice).
pub(crate) const SHRINK: f64 = 1.4;
/// The most steps the extrapolation takes: from `h` down to `h / 1.4⁹ ≈ h / 21`.
pub(crate) const STEPS: usize = 10;
/// The extrapolation stops once its highest-order estimate is this much worse than the best.
const SAFE: f64 = 2.0;
/// The step of the plain central difference used when every extrapolation step crosses a kink.
pub(crate) const FALLBACK_H: f64 = 1e-6;
/// Ulps of error assumed in one evaluation of the function, for the rounding estimate.
const ULPS: f64 = 8.0;

/// The derivative at `theta` of the function `eval` evaluates (at a given value of the entry),
/// where `f0` is its value at `theta`.
pub(crate) fn derivative(
    theta: f64,
    f0: f64,
    difference: Difference,
    eval: &mut impl FnMut(f64) -> Probe,
) -> Estimate {
    match difference {
        Difference::Central { h } => central(theta, f0, h, eval),
        Difference::Extrapolated { h } => extrapolated(theta, f0, h, eval),
    }
}

/// `(f(θ+h) − f(θ−h)) / (2h)`.
fn central(theta: f64, f0: f64, h: f64, eval: &mut impl FnMut(f64) -> Probe) -> Estimate {
    let (plus, minus, value, h) = difference_quotient(theta, h, eval);
    Estimate {
        value,
        uncertainty: rounding(f0, plus.value, minus.value, h),
        near_kink: plus.kink || minus.kink,
    }
}

/// One central difference quotient at (about) step `h`: the two probes, the quotient, and the
/// step actually taken. The step is rounded so that `θ + h` and `θ − h` are both exact in `f64`
/// (`h = (θ + h) − θ`, Numerical Recipes' trick): otherwise the two points sit unevenly around
/// `θ` and the quotient picks up a first-order error `f''·(δ₊ + δ₋)/2`, large where `f''` is.
fn difference_quotient(
    theta: f64,
    h: f64,
    eval: &mut impl FnMut(f64) -> Probe,
) -> (Probe, Probe, f64, f64) {
    let mut h = (theta + h) - theta;
    if h == 0.0 {
        // A step below half an ulp of θ: take one ulp.
        h = f64::from_bits(theta.abs().to_bits() + 1) - theta.abs();
    }
    let (up, down) = (theta + h, theta - h);
    let plus = eval(up);
    let minus = eval(down);
    (plus, minus, (plus.value - minus.value) / (up - down), h)
}

/// The rounding error of a central difference at step `h`: a few ulps of the larger of the
/// function's values and 1, divided by the step. The 1 stands for the intermediate quantities a
/// loss is computed from (probabilities, sums like `1 + e^-z`), which can be far larger than the
/// loss itself and lose the small changes first.
fn rounding(f0: f64, plus: f64, minus: f64, h: f64) -> f64 {
    let scale = f0.abs().max(plus.abs()).max(minus.abs()).max(1.0);
    ULPS * f64::EPSILON * scale / h
}

/// Ridders' method: central differences at `h, h/1.4, h/1.4², …` combined by Richardson
/// extrapolation in a Neville tableau (each column cancels one more even power of the step),
/// keeping the estimate whose neighbours agree best. Steps whose interval crosses a kink are left
/// out: the tableau starts again after the last one. If every step crosses, the result is the
/// plain central difference at [`FALLBACK_H`].
fn extrapolated(theta: f64, f0: f64, h: f64, eval: &mut impl FnMut(f64) -> Probe) -> Estimate {
    // tableau[j][i]: the i-th usable step extrapolated j times; squares[i]: its step squared.
    let mut tableau = [[0.0f64; STEPS]; STEPS];
    let mut squares = [0.0f64; STEPS];
    let mut usable = 0usize;
    let mut near_kink = false;
    let mut best = f64::NAN;
    let mut error = f64::INFINITY;
    let mut smallest_rounding = 0.0f64;
    let mut step = h;
    for _ in 0..STEPS {
        let (plus, minus, quotient, taken) = difference_quotient(theta, step, eval);
        step /= SHRINK;
        if plus.kink || minus.kink {
            near_kink = true;
            usable = 0;
            best = f64::NAN;
            error = f64::INFINITY;
            continue;
        }
        let i = usable;
        usable += 1;
        smallest_rounding = rounding(f0, plus.value, minus.value, taken);
        tableau[0][i] = quotient;
        squares[i] = taken * taken;
        if i == 0 {
            best = quotient;
            continue;
        }
        for j in 1..=i {
            // Neville's rule for the value at h² = 0 of the polynomial in h² through steps
            // i − j ..= i (with steps exactly 1.4 apart: (1.4^2j · new − old) / (1.4^2j − 1)).
            let (far, near) = (squares[i - j], squares[i]);
            tableau[j][i] = (far * tableau[j - 1][i] - near * tableau[j - 1][i - 1]) / (far - near);
            let change = (tableau[j][i] - tableau[j - 1][i])
                .abs()
                .max((tableau[j][i] - tableau[j - 1][i - 1]).abs());
            if change <= error {
                error = change;
                best = tableau[j][i];
            }
        }
        if (tableau[i][i] - tableau[i - 1][i - 1]).abs() >= SAFE * error {
            break;
        }
    }
    match usable {
        0 => {
            let fallback = central(theta, f0, FALLBACK_H, eval);
            Estimate {
                near_kink: true,
                ..fallback
            }
        }
        _ => Estimate {
            value: best,
            // With a single usable step nothing was extrapolated: only rounding is known.
            uncertainty: if error.is_finite() {
                error.max(smallest_rounding)
            } else {
                smallest_rounding
            },
            near_kink,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe of `f` with a kink at `kink` (crossed when `θ` and the probe are on two sides).
    fn probe(f: impl Fn(f64) -> f64, theta: f64, kink: f64) -> impl FnMut(f64) -> Probe {
        move |v| Probe {
            value: f(v),
            kink: (v > kink) != (theta > kink),
        }
    }

    #[test]
    fn extrapolation_is_accurate_to_rounding_where_plain_differences_are_not() {
        let theta = 0.7f64;
        let exact = theta.exp();
        let mut eval = probe(f64::exp, theta, f64::INFINITY);
        let extrapolated = derivative(
            theta,
            exact,
            Difference::Extrapolated { h: 1e-2 },
            &mut eval,
        );
        assert!((extrapolated.value - exact).abs() < 1e-13 * exact);
        assert!(!extrapolated.near_kink);
        assert!(extrapolated.uncertainty < 1e-11);
        let central = derivative(theta, exact, Difference::Central { h: 1e-6 }, &mut eval);
        let error = (central.value - exact).abs();
        assert!(error < 1e-9 && error > (extrapolated.value - exact).abs());
    }

    #[test]
    fn steps_across_a_kink_are_left_out_and_flagged() {
        // |x − 0.001| at θ = 0.003: the first steps (h ≥ 2e-3) cross the kink, later ones do not.
        let theta = 0.003;
        let f = |x: f64| (x - 0.001).abs() + x * x;
        let mut eval = probe(f, theta, 0.001);
        let estimate = derivative(
            theta,
            f(theta),
            Difference::Extrapolated { h: 1e-2 },
            &mut eval,
        );
        assert!(estimate.near_kink);
        assert!((estimate.value - (1.0 + 2.0 * theta)).abs() < 1e-10);
        // A kink within every step: the plain difference at FALLBACK_H, still flagged.
        let theta = 0.001 + 1e-7;
        let mut eval = probe(f, theta, 0.001);
        let estimate = derivative(
            theta,
            f(theta),
            Difference::Extrapolated { h: 1e-2 },
            &mut eval,
        );
        assert!(estimate.near_kink);
        assert!(estimate.value < 1.0);
    }

    #[test]
    fn steps_are_symmetric_in_floating_point() {
        let theta = 1.0 - 2f64.powi(-40);
        let mut points = std::vec::Vec::new();
        let mut eval = |v: f64| {
            points.push(v);
            Probe {
                value: v,
                kink: false,
            }
        };
        let (_, _, quotient, h) = difference_quotient(theta, 3.3e-13, &mut eval);
        assert_eq!(points, [theta + h, theta - h]);
        assert_eq!((points[0] - theta, theta - points[1]), (h, h));
        assert_eq!(quotient, 1.0);
    }
}
