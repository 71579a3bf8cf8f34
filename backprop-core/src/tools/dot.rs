//! A picture of a network for one input, written as Graphviz DOT and rendered to SVG or PNG when
//! the `dot` program is installed: micrograd's `draw_dot`, laid out the way a network is drawn
//! in a class.
//!
//! Layers are columns from the inputs on the left to the loss on the right, and the neurons of a
//! layer stand in index order from top to bottom (every node's position is pinned, so Graphviz
//! cannot reorder them). Each neuron shows its pre-activation `z`, its output `a`, its error term
//! `δ = ∂E/∂z` and its bias with the bias's gradient; a dead unit (see
//! [`is_dead`]) is grey and dashed. Each weight is an edge whose colour
//! is the sign of its gradient (red for `g > 0`, blue for `g < 0`, grey and dashed for `g = 0`)
//! and whose width grows with `|g|`; a legend says so. The weights' values and gradients are not
//! written on the edges, where their labels would cross, but in one table per layer under the
//! drawing, laid out `[out][in]` as PyTorch indexes `weight[out][in]`; each edge also carries
//! its entry, value and gradient as a tooltip (shown on hover in the SVG).
//!
//! ```
//! use backprop::dot::{render, to_dot};
//! use backprop::prelude::*;
//!
//! network! { struct Net < 4 => relu 5 => relu 2 => sigmoid 1 > }
//!
//! let net = Net::<f32>::init(13);
//! let (x, y) = (SVector::<f32, 4>::new(0.5, -1.0, 0.25, 2.0), SVector::<f32, 1>::new(1.0));
//! let dot = to_dot(&net, &x, &y, &Mse);
//! assert!(dot.contains("fc2_1 [pos="));
//! let path = std::env::temp_dir().join(format!("backprop-doc-dot-{}.svg", std::process::id()));
//! if render(&dot, &path)? {                 // false when Graphviz is not installed
//!     let svg = std::fs::read_to_string(&path)?;
//!     std::fs::remove_file(&path)?;
//!     assert!(svg.contains("<svg"));
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! (`examples/seed.rs` runs this for the seed network; `tests/suite/pictures.rs` pins its output.)

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::string::String;
use std::vec::Vec;

use nalgebra::SVector;

use crate::explain::{is_dead, is_saturated};
use crate::heap::{zeroed, InPlace};
use crate::loss::Loss;
use crate::model::Model;
use crate::sample::SampleFor;
use crate::scalar::to_f64;

/// Horizontal distance between two columns, in points.
const COLUMN: f64 = 230.0;
/// Vertical distance between two neurons of a column, in points.
const ROW: f64 = 78.0;
/// The colour of an edge whose gradient is positive.
pub const POSITIVE: &str = "#c0392b";
/// The colour of an edge whose gradient is negative.
pub const NEGATIVE: &str = "#2166ac";
/// The colour of an edge whose gradient is zero, and of a dead unit's border.
pub const ZERO: &str = "#a0a0a0";

/// The colour of a gradient `g`: [`POSITIVE`], [`NEGATIVE`] or [`ZERO`].
///
/// ```
/// use backprop::dot::{gradient_colour, NEGATIVE, POSITIVE, ZERO};
///
/// assert_eq!(gradient_colour(0.02), POSITIVE);
/// assert_eq!(gradient_colour(-0.0369), NEGATIVE);
/// assert_eq!(gradient_colour(-0.0), ZERO);
/// ```
pub fn gradient_colour(g: f64) -> &'static str {
    if g > 0.0 {
        POSITIVE
    } else if g < 0.0 {
        NEGATIVE
    } else {
        ZERO
    }
}

/// The stroke width of an edge whose gradient is `g`, when the largest `|g|` of the network is
/// `largest`: from 0.75 (zero) to 5 (the largest), in proportion to `|g|`.
///
/// ```
/// use backprop::dot::gradient_width;
///
/// assert_eq!(gradient_width(0.0, 0.06), 0.75);
/// assert_eq!(gradient_width(-0.06, 0.06), 5.0);
/// assert_eq!(gradient_width(0.03, 0.06), 2.875);
/// ```
pub fn gradient_width(g: f64, largest: f64) -> f64 {
    if largest > 0.0 && g.is_finite() {
        0.75 + 4.25 * (g.abs() / largest).min(1.0)
    } else {
        0.75
    }
}

/// A value with four decimals; an exact zero (either sign) as `0`.
fn show(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.4}")
    }
}

/// `pos="x,y!"` for a node centred at (`x`, `y`) in points (Graphviz reads input positions in
/// inches).
fn pos(x: f64, y: f64) -> String {
    format!("pos=\"{:.3},{:.3}!\"", x / 72.0, y / 72.0)
}

/// The vertical position of neuron `index` of a column of `count`, centred on 0: index 0 at the
/// top (Graphviz's y axis points up).
fn row_y(index: usize, count: usize) -> f64 {
    ((count as f64 - 1.0) / 2.0 - index as f64) * ROW
}

/// The network `net` at input `x` (one sample) against `target`, as a Graphviz DOT graph: every
/// neuron with `z`, `a`, `δ = ∂E/∂z` and its bias with the bias's gradient, in index order; every
/// weight as an edge coloured by the sign of its gradient and as wide as its magnitude, with its
/// value and gradient in its layer's table; the loss as the last node; a legend.
///
/// ```
/// use backprop::dot::{to_dot, NEGATIVE, POSITIVE};
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > } // y = w·x + b
///
/// let mut net = Net::<f64>::zeros();
/// net.fc1.weight[(0, 0)] = 2.0;
/// let x = SVector::<f64, 1>::new(3.0);
/// // Output 6 against 5: MSE (6 − 5)² = 1, ∂E/∂w = 2·(6 − 5)·3 = 6 > 0, a red edge.
/// let dot = to_dot(&net, &x, &SVector::<f64, 1>::new(5.0), &Mse);
/// assert!(dot.starts_with("digraph network {"));
/// assert!(dot.contains(&format!("in_0 -> fc1_0 [color=\"{POSITIVE}\"")));
/// assert!(dot.contains("fc1.weight[0][0]: w 2.0000, g 6.0000"));
/// assert!(dot.contains(r"loss E\n1.0000"));
/// // Against 7 the gradient is 2·(6 − 7)·3 = −6: a blue edge.
/// let dot = to_dot(&net, &x, &SVector::<f64, 1>::new(7.0), &Mse);
/// assert!(dot.contains(&format!("in_0 -> fc1_0 [color=\"{NEGATIVE}\"")));
/// ```
pub fn to_dot<N, L, Y, const I: usize, const O: usize>(
    net: &N,
    x: &impl SampleFor<N, N::Scalar, I>,
    target: &Y,
    loss: &L,
) -> String
where
    N: Model<I, O>,
    L: Loss<N::Scalar, O, 1, Y>,
{
    let x = x.as_vector();
    let mut ws = net.workspace();
    // ∂E/∂a of the outputs, where backward starts.
    let mut output = zeroed::<SVector<N::Scalar, O>>();
    InPlace::copy_from(&mut *output, net.forward_into(x, &mut ws));
    let mut output_gradient = zeroed::<SVector<N::Scalar, O>>();
    loss.gradient(&*output, target, &mut *output_gradient);
    let upstream: Vec<f64> = output_gradient.iter().map(|g| to_f64(*g)).collect();
    let mut grad = N::zeros();
    let value = to_f64(net.backward(x, target, loss, &mut ws, &mut grad));

    // The widest edge is the largest |g| of any weight.
    let largest = N::LAYERS
        .iter()
        .filter_map(|info| grad.param(&format!("{}.weight", info.name)))
        .flat_map(|p| p.values.iter().map(|g| to_f64(*g).abs()))
        .filter(|g| g.is_finite())
        .fold(0.0, f64::max);
    let tallest = N::LAYERS
        .iter()
        .map(|info| info.outputs)
        .chain([N::INPUTS])
        .max()
        .unwrap_or(1);
    let top = row_y(0, tallest) + 55.0;
    let bottom = -top;

    let mut dot = String::new();
    let _ = writeln!(dot, "digraph network {{");
    let _ = writeln!(
        dot,
        "  // Positions are pinned (pos=\"x,y!\"): columns are layers, index 0 at the top."
    );
    let _ = writeln!(dot, "  layout=neato;");
    let _ = writeln!(dot, "  outputorder=edgesfirst;");
    let _ = writeln!(dot, "  bgcolor=\"white\";");
    let _ = writeln!(
        dot,
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#fdfdf8\", fontname=\"Helvetica\", fontsize=10, margin=\"0.08,0.04\"];"
    );
    let _ = writeln!(dot, "  edge [arrowhead=none];");

    // Inputs.
    let _ = writeln!(
        dot,
        "  input_title [shape=plaintext, style=\"\", fontsize=12, label=\"input x\", {}];",
        pos(0.0, top)
    );
    let inputs = x.as_slice();
    for (i, v) in inputs.iter().enumerate() {
        let _ = writeln!(
            dot,
            "  in_{i} [{}, label=\"x[{i}]\\n{}\"];",
            pos(0.0, row_y(i, N::INPUTS)),
            show(to_f64(*v))
        );
    }

    let mut previous: Vec<String> = (0..N::INPUTS).map(|i| format!("in_{i}")).collect();
    let mut tables = Vec::new();
    let last = N::LAYERS.len().saturating_sub(1);
    for (depth, info) in N::LAYERS.iter().enumerate() {
        let Some(view) = N::layer_values::<1>(&ws, info.name) else {
            continue;
        };
        let params = (
            net.param(&format!("{}.weight", info.name)),
            grad.param(&format!("{}.weight", info.name)),
            net.param(&format!("{}.bias", info.name)),
            grad.param(&format!("{}.bias", info.name)),
        );
        let (Some(weight), Some(weight_grad), Some(bias), Some(bias_grad)) = params else {
            continue;
        };
        let column = (depth + 1) as f64 * COLUMN;
        let _ = writeln!(
            dot,
            "  {}_title [shape=plaintext, style=\"\", fontsize=12, label=\"{} · {}\", {}];",
            info.name,
            info.name,
            info.activation,
            pos(column, top)
        );
        let mut current = Vec::with_capacity(info.outputs);
        for unit in 0..info.outputs {
            let node = format!("{}_{unit}", info.name);
            let dead = is_dead(info, view.z[unit]);
            let saturated = is_saturated(info, view.z[unit], view.a[unit]);
            let mut label = format!(
                "{}[{unit}]{}\\nz {}   a {}\\nδ {}\\nbias {}   g {}",
                info.name,
                if dead {
                    "  dead: z ≤ 0"
                } else if saturated {
                    "  saturated: f′ ≈ 0"
                } else {
                    ""
                },
                show(to_f64(view.z[unit])),
                show(to_f64(view.a[unit])),
                show(to_f64(view.delta[unit])),
                show(to_f64(bias.get(unit, 0))),
                show(to_f64(bias_grad.get(unit, 0))),
            );
            if depth == last {
                let _ = write!(
                    label,
                    "\\n∂E/∂a {}",
                    show(upstream.get(unit).copied().unwrap_or(f64::NAN))
                );
            }
            let style = if dead {
                format!(
                    ", style=\"rounded,filled,dashed\", fillcolor=\"#ececec\", color=\"{ZERO}\", fontcolor=\"#555555\""
                )
            } else if saturated {
                ", style=\"rounded,filled,dashed\", fillcolor=\"#fff1cc\", color=\"#b7791f\""
                    .to_string()
            } else {
                String::new()
            };
            let _ = writeln!(
                dot,
                "  {node} [{}, label=\"{label}\"{style}];",
                pos(column, row_y(unit, info.outputs))
            );
            current.push(node);
        }
        for (unit, node) in current.iter().enumerate() {
            for (input, from) in previous.iter().enumerate() {
                let g = to_f64(weight_grad.get(unit, input));
                let w = to_f64(weight.get(unit, input));
                let dashed = if g == 0.0 { ", style=dashed" } else { "" };
                let _ = writeln!(
                    dot,
                    "  {from} -> {node} [color=\"{}\", penwidth={:.2}{dashed}, tooltip=\"{}.weight[{unit}][{input}]: w {}, g {}\"];",
                    gradient_colour(g),
                    gradient_width(g, largest),
                    info.name,
                    show(w),
                    show(g),
                );
            }
        }
        tables.push(weight_table(
            info.name,
            info.outputs,
            previous.len(),
            |r, c| (to_f64(weight.get(r, c)), to_f64(weight_grad.get(r, c))),
        ));
        previous = current;
    }

    let loss_x = (N::LAYERS.len() + 1) as f64 * COLUMN;
    let _ = writeln!(
        dot,
        "  loss_title [shape=plaintext, style=\"\", fontsize=12, label=\"loss\", {}];",
        pos(loss_x, top)
    );
    let _ = writeln!(
        dot,
        "  loss [shape=ellipse, {}, label=\"loss E\\n{}\"];",
        pos(loss_x, 0.0),
        show(value)
    );
    for node in &previous {
        let _ = writeln!(
            dot,
            "  {node} -> loss [arrowhead=normal, arrowsize=0.6, color=\"#444444\"];"
        );
    }

    // The tables, left to right under the drawing, their tops on one line (each is as tall as
    // its rows; Graphviz pins a node by its centre).
    let mut left = -60.0;
    for (name, table, rows, cols) in &tables {
        let width = 50.0 + 56.0 * *cols as f64;
        let height = 20.0 + 30.0 * (*rows as f64 + 1.0);
        let _ = writeln!(
            dot,
            "  {name}_table [shape=plaintext, style=\"\", fontsize=9, {}, label=<{table}>];",
            pos(left + width / 2.0, bottom - 10.0 - height / 2.0)
        );
        left += width + 30.0;
    }
    let legend_x = left.max(loss_x) + 120.0;
    let _ = writeln!(
        dot,
        "  legend [shape=plaintext, style=\"\", fontsize=9, {}, label=<{}>];",
        pos(legend_x, bottom - 80.0),
        legend(largest)
    );
    let _ = writeln!(dot, "}}");
    dot
}

/// One layer's weights and gradients as a Graphviz HTML-like table, `[out][in]`: its name, the
/// table, its rows and its columns.
fn weight_table(
    name: &str,
    rows: usize,
    cols: usize,
    entry: impl Fn(usize, usize) -> (f64, f64),
) -> (String, String, usize, usize) {
    let mut table = String::new();
    let _ = write!(
        table,
        "<table border=\"0\" cellborder=\"1\" cellspacing=\"0\" cellpadding=\"3\" color=\"#cccccc\"><tr><td colspan=\"{}\"><b>{name}.weight</b>   w / g   [out][in]</td></tr><tr><td></td>",
        cols + 1
    );
    for c in 0..cols {
        let _ = write!(table, "<td>in {c}</td>");
    }
    let _ = write!(table, "</tr>");
    for r in 0..rows {
        let _ = write!(table, "<tr><td>[{r}]</td>");
        for c in 0..cols {
            let (w, g) = entry(r, c);
            let _ = write!(
                table,
                "<td>{}<br/><font color=\"{}\">{}</font></td>",
                show(w),
                gradient_colour(g),
                show(g)
            );
        }
        let _ = write!(table, "</tr>");
    }
    let _ = write!(table, "</table>");
    (name.into(), table, rows, cols)
}

/// The legend: what colours, widths and grey boxes mean.
fn legend(largest: f64) -> String {
    format!(
        "<table border=\"0\" cellspacing=\"0\" cellpadding=\"2\">\
<tr><td align=\"left\"><b>edges: the weight's gradient g = ∂E/∂w</b></td></tr>\
<tr><td align=\"left\"><font color=\"{POSITIVE}\">━━ red: g &gt; 0</font> (a step against g lowers w)</td></tr>\
<tr><td align=\"left\"><font color=\"{NEGATIVE}\">━━ blue: g &lt; 0</font> (a step against g raises w)</td></tr>\
<tr><td align=\"left\"><font color=\"{ZERO}\">╌╌ grey, dashed: g = 0</font></td></tr>\
<tr><td align=\"left\">width grows with |g|; widest |g| = {largest:.4}</td></tr>\
<tr><td align=\"left\"><font color=\"#555555\">grey dashed box: dead ReLU unit (z ≤ 0), no gradient flows back</font></td></tr><tr><td align=\"left\"><font color=\"#b7791f\">amber dashed box: saturated unit (|f′(z)| &lt; 0.01), almost no gradient flows back</font></td></tr>\
<tr><td align=\"left\">δ = ∂E/∂z; bias g = δ</td></tr>\
</table>"
    )
}

/// Renders DOT text to `path` with Graphviz's `dot`, in the format the extension names (`svg`,
/// `png`, `pdf`). Returns `Ok(false)` when `dot` is not installed, so callers can fall back to the
/// `.dot` text.
pub fn render(dot: &str, path: &Path) -> io::Result<bool> {
    let format = path.extension().and_then(|e| e.to_str()).unwrap_or("svg");
    let child = Command::new("dot")
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if output.status.success() {
        Ok(true)
    } else {
        Err(io::Error::other(format!(
            "dot failed to render {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
