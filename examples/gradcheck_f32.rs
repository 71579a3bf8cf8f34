//! The seed post's puzzle: its gradients were right, yet cs231n's gradient check called them
//! uncomfortable. This example runs the check the naive way, with finite differences computed in
//! f32 by the f32 network, for several steps h, then the way `backprop::gradcheck` does it, in f64
//! through `net.cast::<f64>()`, and prints the bands both land in and why they differ.
//!
//! Run with `cargo run --example gradcheck_f32`.

use backprop::gradcheck::{self, relative_error, Band, Options, Report};
use backprop::prelude::*;
use serde_json::Value;

network! {
    /// The 4-5-2-1 network of the seed post.
    pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >
}

/// PyTorch's parameters, input and target for the seed network.
const FIXTURE: &str = include_str!("../tests/fixtures/seed_torch.json");

/// Numbers from a JSON list, flattened, as f32.
fn numbers(value: &Value) -> Vec<f32> {
    match value {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        other => vec![other.as_f64().expect("a number") as f32],
    }
}

/// What one naive check found.
struct Naive {
    max_relative: f64,
    worst: String,
    bands: [usize; 4],
}

/// The naive check: for every entry, `(E(θ + h) − E(θ − h)) / 2h` with the f32 network, in f32,
/// against the f32 backward pass.
fn naive_f32(net: &Net<f32>, x: &SVector<f32, 4>, y: &SVector<f32, 1>, h: f32) -> Naive {
    let mut grad = Net::zeros();
    net.backward(x, y, &Mse, &mut net.workspace(), &mut grad);
    let mut found = Naive {
        max_relative: 0.0,
        worst: String::new(),
        bands: [0; 4],
    };
    let shapes: Vec<(&str, usize, usize)> =
        net.params().map(|p| (p.name, p.rows, p.cols)).collect();
    for (name, rows, cols) in shapes {
        for row in 0..rows {
            for col in 0..cols {
                let mut probe = net.clone();
                let theta = probe.param(name).unwrap().get(row, col);
                probe.param_mut(name).unwrap().set(row, col, theta + h);
                let plus = probe.loss(x, y, &Mse);
                probe.param_mut(name).unwrap().set(row, col, theta - h);
                let minus = probe.loss(x, y, &Mse);
                let numeric = (plus - minus) / (2.0 * h);
                let analytic = grad.param(name).unwrap().get(row, col);
                let relative = relative_error(f64::from(analytic), f64::from(numeric));
                found.bands[Band::of(relative) as usize] += 1;
                if relative > found.max_relative {
                    found.max_relative = relative;
                    found.worst = if name.ends_with(".bias") {
                        format!("{name}[{row}]")
                    } else {
                        format!("{name}[{row}][{col}]")
                    };
                }
            }
        }
    }
    found
}

/// Band counts as one line.
fn bands_text(bands: [usize; 4]) -> String {
    format!(
        "{:>4} good  {:>4} kinks only  {:>4} uncomfortable  {:>4} wrong",
        bands[0], bands[1], bands[2], bands[3]
    )
}

/// One line for an f64 report.
fn report_line(what: &str, report: &Report) {
    let worst = report.worst().expect("entries were checked");
    println!(
        "  {what:<36} max rel. error {:>8.1e} {:<15} {}",
        report.max_relative_error(),
        format!("({})", worst.band),
        bands_text(report.band_counts())
    );
}

fn main() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the seed fixture is JSON");
    let mut net = Net::<f32>::zeros();
    for mut param in net.params_mut() {
        let values = numbers(&fixture["params"][param.name]);
        for row in 0..param.rows {
            for col in 0..param.cols {
                param.set(row, col, values[row * param.cols + col]);
            }
        }
    }
    let x = SVector::<f32, 4>::from_vec(numbers(&fixture["input"]));
    let y = SVector::<f32, 1>::from_vec(numbers(&fixture["target"]));
    let loss = net.loss(&x, &y, &Mse);

    println!(
        "The seed network, MSE loss {loss:.4}, {} gradient entries.\n",
        Net::<f32>::PARAMETERS
    );
    println!("Naive check in f32: finite differences of the f32 loss, divided by 2h in f32:");
    let mut naive_worst = Band::Good;
    let mut at_1e_3 = [0; 4];
    for h in [1e-1f32, 1e-2, 1e-3, 1e-4, 1e-5] {
        let found = naive_f32(&net, &x, &y, h);
        if h == 1e-3 {
            at_1e_3 = found.bands;
        }
        let band = Band::of(found.max_relative);
        naive_worst = naive_worst.max(band);
        println!(
            "  h = {h:<7e} max rel. error {:>8.1e} {:<15} {}   worst {}",
            found.max_relative,
            format!("({band})"),
            bands_text(found.bands),
            found.worst
        );
    }

    println!("\nThe same gradients checked in f64 through net.cast::<f64>():");
    let (net64, x64, y64) = (net.cast::<f64>(), x.cast::<f64>(), y.cast::<f64>());
    let checked = gradcheck::assert_gradients(&net64, &x64, &y64, &Mse, &Options::default());
    report_line("gradcheck::check (default options)", &checked);
    let central = gradcheck::assert_gradients(&net64, &x64, &y64, &Mse, &Options::central(1e-6));
    report_line("central differences, h = 1e-6", &central);
    println!(
        "\nWorst band: naive f32 {naive_worst}, f64 {} (flagged near a kink: {}).\n",
        Band::of(checked.max_relative_error()),
        checked.flagged()
    );

    let mut grad = Net::zeros();
    net.backward(&x, &y, &Mse, &mut net.workspace(), &mut grad);
    let zeros = grad
        .params()
        .flat_map(|p| p.values.iter())
        .filter(|v| **v == 0.0)
        .count();
    let rounding = f64::from(loss) * f64::from(f32::EPSILON) / 2.0;
    println!(
        "Why: an f32 number carries about seven significant digits (machine epsilon 1.2e-7), so \
         the loss {loss:.4} is only known to within about {rounding:.0e}, and every evaluation at a \
         nudged weight is rounded by that much (more, after a whole forward pass). A central \
         difference divides the difference of two such losses by 2h, which turns that rounding \
         into an error of about {rounding:.0e}/h in every numeric derivative: {:.0e} at h = 1e-3, \
         against gradient entries of 1e-3 to 1e-1 here. So at h = 1e-3, of the {} nonzero \
         entries {} are good, {} acceptable only near kinks and {} uncomfortable or wrong, \
         although nothing is wrong (the {zeros} exact zeros behind dead ReLUs are zero on both \
         sides, hence good). A smaller h makes it worse; a larger one \
         trades rounding for truncation error and, at h = 1e-1, steps over ReLU kinks. The \
         backward pass was right all along; the measurement was too coarse. Check the same \
         network in f64 (epsilon 2.2e-16), cast with net.cast::<f64>(), and the same formulas \
         agree to {:.0e}: cs231n's good band. That is the seed post's puzzle solved.",
        rounding / 1e-3,
        Net::<f32>::PARAMETERS - zeros,
        at_1e_3[0] - zeros.min(at_1e_3[0]),
        at_1e_3[1],
        at_1e_3[2] + at_1e_3[3],
        checked.max_relative_error(),
    );
}
