//! The two criteria that compare an analytic with a numeric derivative, and cs231n's bands.

use core::fmt;

/// cs231n's relative error `|a − n| / max(|a|, |n|)`; 0 when both are zero, NaN if either is NaN.
#[inline]
pub fn relative_error(analytic: f64, numeric: f64) -> f64 {
    let scale = analytic.abs().max(numeric.abs());
    if analytic.is_nan() || numeric.is_nan() {
        f64::NAN
    } else if scale == 0.0 {
        0.0
    } else {
        (analytic - numeric).abs() / scale
    }
}

/// PyTorch's `gradcheck` rule (`torch.allclose(analytic, numeric, rtol, atol)`):
/// `|a − n| ≤ atol + rtol · |n|`; false if either is NaN, and false for a tolerance that is not
/// a finite number ≥ 0 ([`tolerance_ok`]), which would make every entry close.
#[inline]
pub fn torch_close(analytic: f64, numeric: f64, atol: f64, rtol: f64) -> bool {
    tolerance_ok(atol)
        && tolerance_ok(rtol)
        && (analytic - numeric).abs() <= atol + rtol * numeric.abs()
}

/// Whether `tolerance` can be a tolerance: a finite number ≥ 0 (NaN, ∞ and negatives are not).
#[inline]
pub fn tolerance_ok(tolerance: f64) -> bool {
    tolerance.is_finite() && tolerance >= 0.0
}

/// cs231n's reading of a relative error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Band {
    /// Below 1e-7: the gradient is right.
    Good,
    /// From 1e-7 to 1e-4: acceptable only for an entry near a kink; too high anywhere else.
    KinksOnly,
    /// From 1e-4 to 1e-2: uncomfortable; usually a mistake.
    Uncomfortable,
    /// Above 1e-2 (or NaN): the gradient is probably wrong.
    Wrong,
}

impl Band {
    /// The band of a relative error.
    #[inline]
    pub fn of(relative_error: f64) -> Band {
        if relative_error < 1e-7 {
            Band::Good
        } else if relative_error <= 1e-4 {
            Band::KinksOnly
        } else if relative_error <= 1e-2 {
            Band::Uncomfortable
        } else {
            // Also NaN.
            Band::Wrong
        }
    }

    /// The band's range, as cs231n states it.
    pub fn range(self) -> &'static str {
        match self {
            Band::Good => "< 1e-7",
            Band::KinksOnly => "1e-7..1e-4",
            Band::Uncomfortable => "1e-4..1e-2",
            Band::Wrong => "> 1e-2",
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Band::Good => "good",
            Band::KinksOnly => "kinks only",
            Band::Uncomfortable => "uncomfortable",
            Band::Wrong => "wrong",
        };
        f.pad(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_error_follows_cs231n() {
        assert_eq!(relative_error(0.0, 0.0), 0.0);
        assert_eq!(relative_error(-0.0, 0.0), 0.0);
        assert_eq!(relative_error(1.0, 0.0), 1.0);
        assert_eq!(relative_error(2.0, 1.0), 0.5);
        assert!(relative_error(f64::NAN, 1.0).is_nan());
    }

    #[test]
    fn torch_rule_is_allclose() {
        assert!(torch_close(1.0 + 1e-3, 1.0, 1e-5, 1e-3));
        assert!(!torch_close(1.0 + 2e-3, 1.0, 1e-5, 1e-3));
        assert!(torch_close(9e-6, 0.0, 1e-5, 1e-3));
        assert!(!torch_close(f64::NAN, 0.0, 1e-5, 1e-3));
        // A tolerance that would make everything close makes nothing close.
        for bad in [f64::INFINITY, f64::NAN, -1e-5, f64::NEG_INFINITY] {
            assert!(!torch_close(1.0, 1.0, bad, 1e-3), "atol {bad}");
            assert!(!torch_close(1.0, 1.0, 1e-5, bad), "rtol {bad}");
        }
        assert!(torch_close(1.0, 1.0, 0.0, 0.0));
    }

    #[test]
    fn bands_have_cs231n_boundaries() {
        assert_eq!(Band::of(0.0), Band::Good);
        assert_eq!(Band::of(9.9e-8), Band::Good);
        assert_eq!(Band::of(1e-7), Band::KinksOnly);
        assert_eq!(Band::of(1e-4), Band::KinksOnly);
        assert_eq!(Band::of(1.1e-4), Band::Uncomfortable);
        assert_eq!(Band::of(1e-2), Band::Uncomfortable);
        assert_eq!(Band::of(0.5), Band::Wrong);
        assert_eq!(Band::of(f64::NAN), Band::Wrong);
        assert_eq!(std::format!("{:<6}|", Band::Good), "good  |");
    }
}
