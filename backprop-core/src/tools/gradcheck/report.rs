//! What a gradient check found: every entry compared, the counts, and a readable table.

use core::cmp::Ordering;
use core::fmt;
use std::boxed::Box;
use std::string::String;
use std::vec::Vec;

use super::criteria::Band;
use super::Options;

/// One checked entry: where it is, both derivatives, both criteria and the verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// The tensor: a parameter name such as `fc2.weight`, or `x` for a plain function.
    pub tensor: &'static str,
    /// The row (PyTorch's first index).
    pub row: usize,
    /// The column (PyTorch's second index) of a weight; `None` for a bias or a function's input.
    pub col: Option<usize>,
    /// The derivative being checked (from the backward pass, or given).
    pub analytic: f64,
    /// The derivative found by finite differences.
    pub numeric: f64,
    /// An estimate of the numeric derivative's own absolute error.
    pub uncertainty: f64,
    /// cs231n's relative error `|a − n| / max(|a|, |n|)`.
    pub relative_error: f64,
    /// The relative error's band.
    pub band: Band,
    /// Whether PyTorch's rule `|a − n| ≤ atol + rtol·|n|` holds.
    pub torch_close: bool,
    /// The finite-difference interval crosses a kink: reported apart, never failed (unless the
    /// analytic value is not finite).
    pub near_kink: bool,
    /// The entry fails the pass rule.
    pub failed: bool,
}

impl Entry {
    /// The entry's name as PyTorch indexes it: `fc2.weight[1][0]`, `fc2.bias[1]`, `x[3]`.
    pub fn name(&self) -> String {
        match self.col {
            Some(col) => format!("{}[{}][{}]", self.tensor, self.row, col),
            None => format!("{}[{}]", self.tensor, self.row),
        }
    }

    /// Orders entries worst first: failures, then by relative error (NaN as the largest).
    fn worse_first(a: &&Entry, b: &&Entry) -> Ordering {
        let key = |e: &Entry| {
            if e.relative_error.is_nan() {
                f64::INFINITY
            } else {
                e.relative_error
            }
        };
        b.failed
            .cmp(&a.failed)
            .then(key(b).partial_cmp(&key(a)).unwrap_or(Ordering::Equal))
    }
}

/// The outcome of a gradient check: every entry it compared, in parameter order, and the counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    entries: Vec<Entry>,
    total: usize,
    value: f64,
    options: Options,
}

impl Report {
    /// A report over `entries` (already judged) out of `total` entries, at a point where the
    /// function's value is `value`.
    pub(crate) fn new(entries: Vec<Entry>, total: usize, value: f64, options: Options) -> Self {
        Report {
            entries,
            total,
            value,
            options,
        }
    }

    /// No entry failed.
    pub fn passed(&self) -> bool {
        self.failed() == 0
    }

    /// Every entry compared, in parameter order (row by row within a tensor).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry called `name` (`"fc3.weight[0][1]"`), if it was checked.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name() == name)
    }

    /// The number of entries compared.
    pub fn checked(&self) -> usize {
        self.entries.len()
    }

    /// The number of entries the function or network has (more than `checked` when sampling).
    pub fn total(&self) -> usize {
        self.total
    }

    /// The number of entries flagged near a kink.
    pub fn flagged(&self) -> usize {
        self.entries.iter().filter(|e| e.near_kink).count()
    }

    /// The number of entries that failed.
    pub fn failed(&self) -> usize {
        self.entries.iter().filter(|e| e.failed).count()
    }

    /// The entries that failed, in parameter order.
    pub fn failures(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.failed)
    }

    /// The entries flagged near a kink, in parameter order.
    pub fn near_kinks(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.near_kink)
    }

    /// The entries away from kinks, in parameter order.
    pub fn away_from_kinks(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.near_kink)
    }

    /// The worst entry away from kinks (a failure first, else the largest relative error).
    pub fn worst(&self) -> Option<&Entry> {
        self.away_from_kinks().min_by(Entry::worse_first)
    }

    /// The largest relative error away from kinks (0 if every entry is near one; NaN if any is NaN).
    pub fn max_relative_error(&self) -> f64 {
        max_of(self.away_from_kinks().map(|e| e.relative_error))
    }

    /// The largest relative error among the entries flagged near a kink.
    pub fn max_relative_error_near_kinks(&self) -> f64 {
        max_of(self.near_kinks().map(|e| e.relative_error))
    }

    /// How many entries away from kinks fall in each band: good, kinks only, uncomfortable, wrong.
    pub fn band_counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for entry in self.away_from_kinks() {
            counts[entry.band as usize] += 1;
        }
        counts
    }

    /// The function's value (the loss) at the point checked.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The options the check ran with.
    pub fn options(&self) -> &Options {
        &self.options
    }
}

impl Report {
    /// The tensors checked, in parameter order.
    fn tensors(&self) -> Vec<&'static str> {
        let mut tensors: Vec<&'static str> = Vec::new();
        for entry in &self.entries {
            if tensors.last() != Some(&entry.tensor) {
                tensors.push(entry.tensor);
            }
        }
        tensors
    }
}

/// One line of the per-tensor summary: counts and the worst entry away from kinks.
fn write_tensor(f: &mut fmt::Formatter<'_>, tensor: &str, entries: &[Entry]) -> fmt::Result {
    let of_tensor = || entries.iter().filter(move |e| e.tensor == tensor);
    let checked = of_tensor().count();
    let flagged = of_tensor().filter(|e| e.near_kink).count();
    let failed = of_tensor().filter(|e| e.failed).count();
    write!(
        f,
        "    {tensor:<14} {checked:>5} checked, {flagged:>4} near a kink, {failed:>4} failed"
    )?;
    match of_tensor()
        .filter(|e| !e.near_kink)
        .min_by(Entry::worse_first)
    {
        Some(worst) => writeln!(
            f,
            "; worst {} at {:.2e} ({})",
            worst.name(),
            worst.relative_error,
            worst.band
        ),
        None => writeln!(f),
    }
}

/// The maximum, NaN if any value is NaN, 0 for none.
fn max_of(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, |max, v| if v.is_nan() || v > max { v } else { max })
}

/// The table's header.
const HEADER: &str =
    "entry                       analytic        numeric  rel. error  band           PyTorch";

/// One table row.
fn write_row(f: &mut fmt::Formatter<'_>, entry: &Entry) -> fmt::Result {
    writeln!(
        f,
        "    {:<22} {:>+14.6e} {:>+14.6e} {:>11.2e}  {:<13}  {}{}",
        entry.name(),
        entry.analytic,
        entry.numeric,
        entry.relative_error,
        entry.band,
        if entry.torch_close { "close" } else { "far" },
        if entry.failed { "  FAILED" } else { "" },
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let verdict = if self.passed() { "passed" } else { "FAILED" };
        let scope = if self.checked() == self.total {
            String::from("every entry")
        } else {
            format!("a seeded sample of {} entries", self.total)
        };
        writeln!(
            f,
            "gradcheck {verdict}: {} entries checked ({scope}), {} flagged near a kink, {} failed",
            self.checked(),
            self.flagged(),
            self.failed()
        )?;
        writeln!(
            f,
            "  numeric:  {} at a loss of {:.6e}",
            o.difference, self.value
        )?;
        writeln!(f, "  pass if:  {}", o.rule.describe(o.atol, o.rtol))?;
        let [good, kinks, uncomfortable, wrong] = self.band_counts();
        writeln!(
            f,
            "  bands away from kinks: {good} good (< 1e-7), {kinks} kinks only (1e-7..1e-4), \
             {uncomfortable} uncomfortable (1e-4..1e-2), {wrong} wrong (> 1e-2)"
        )?;
        writeln!(
            f,
            "  by tensor (a backward mistake spreads to earlier layers: look at the last failing one):"
        )?;
        for tensor in self.tensors() {
            write_tensor(f, tensor, &self.entries)?;
        }
        if let Some(worst) = self.worst() {
            writeln!(
                f,
                "  max relative error away from kinks: {:.2e} ({}) at {}",
                worst.relative_error,
                worst.band,
                worst.name()
            )?;
        }
        let mut away: Vec<&Entry> = self.away_from_kinks().collect();
        away.sort_by(Entry::worse_first);
        if !away.is_empty() {
            writeln!(f, "  worst entries:")?;
            writeln!(f, "    {HEADER}")?;
            for entry in away.iter().take(o.show) {
                write_row(f, entry)?;
            }
            if away.len() > o.show {
                writeln!(f, "    ... {} more", away.len() - o.show)?;
            }
        }
        let mut flagged: Vec<&Entry> = self.near_kinks().collect();
        flagged.sort_by(Entry::worse_first);
        if !flagged.is_empty() {
            writeln!(
                f,
                "  near a kink (reported apart, not failed; max relative error {:.2e}):",
                self.max_relative_error_near_kinks()
            )?;
            writeln!(f, "    {HEADER}")?;
            for entry in flagged.iter().take(o.show) {
                write_row(f, entry)?;
            }
            if flagged.len() > o.show {
                writeln!(f, "    ... {} more", flagged.len() - o.show)?;
            }
        }
        Ok(())
    }
}

/// Why a gradient check did not pass.
#[derive(Clone, Debug, PartialEq)]
pub enum GradcheckError {
    /// Some entries failed the pass rule; the report names them.
    Failed(Box<Report>),
    /// The analytic gradient given has the wrong number of entries.
    GradientLength {
        /// What the gradient belongs to (`x`).
        tensor: &'static str,
        /// The number of entries expected (one per input).
        expected: usize,
        /// The number found.
        found: usize,
    },
    /// The loss (or function) is NaN or infinite at the point to check.
    NonFinite {
        /// The value found.
        value: f64,
    },
    /// An option is out of range.
    InvalidOption {
        /// The option (`h`, `atol`, `rtol`, `sample`).
        option: &'static str,
        /// What it must be.
        expected: &'static str,
        /// The value found.
        found: f64,
    },
}

impl GradcheckError {
    /// The report, when the check ran and some entries failed.
    pub fn report(&self) -> Option<&Report> {
        match self {
            GradcheckError::Failed(report) => Some(report),
            _ => None,
        }
    }
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradcheckError::Failed(report) => write!(f, "{report}"),
            GradcheckError::GradientLength {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "the analytic gradient of `{tensor}` has {found} entries; expected {expected}, one per input"
            ),
            GradcheckError::NonFinite { value } => write!(
                f,
                "the loss is {value} at the point to check; expected a finite value"
            ),
            GradcheckError::InvalidOption {
                option,
                expected,
                found,
            } => write!(f, "gradcheck option `{option}` is {found}; expected {expected}"),
        }
    }
}

impl std::error::Error for GradcheckError {}
