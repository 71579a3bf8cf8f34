//! A picture of a network for one input: a node per neuron with its values and gradient, an edge
//! per weight with its value and gradient, written as Graphviz DOT (as micrograd's `draw_dot` does
//! for scalars), and rendered to SVG or PNG when the `dot` program is installed.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::string::String;

use crate::batched::Batched;
use crate::objective::Objective;
use crate::scalar::to_f64;

/// The network `net` at input `x` (one sample) against `target`, as a Graphviz DOT graph: every
/// neuron with `z`, `a`, `δ = ∂E/∂z` and its bias with the bias's gradient; every weight as an
/// edge with its value `w` and gradient `g`; the loss as the last node.
pub fn to_dot<N, L, Y>(net: &N, x: &N::Input, target: &Y, loss: &L) -> String
where
    N: Batched<1>,
    L: Objective<N::Scalar, N::Output, Y>,
{
    let mut ws = net.workspace();
    let mut grad = N::zeros();
    let value = net.backward(x, target, loss, &mut ws, &mut grad);
    let show = |v: N::Scalar| format!("{:.4}", to_f64(v));

    let mut dot = String::new();
    let _ = writeln!(dot, "digraph network {{");
    let _ = writeln!(dot, "  rankdir=LR;");
    let _ = writeln!(dot, "  ranksep=1.8;");
    let _ = writeln!(
        dot,
        "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];"
    );
    let _ = writeln!(dot, "  edge [fontname=\"Helvetica\", fontsize=8];");

    let _ = writeln!(dot, "  subgraph cluster_input {{");
    let _ = writeln!(dot, "    label=\"input\";");
    for (i, value) in N::input_values(x).iter().enumerate() {
        let _ = writeln!(dot, "    in_{i} [label=\"x[{i}]\\n{}\"];", show(*value));
    }
    let _ = writeln!(dot, "  }}");

    let mut previous: Vec<String> = (0..N::INPUTS).map(|i| format!("in_{i}")).collect();
    for info in N::LAYERS {
        let Some(view) = N::layer_values(&ws, info.name) else {
            continue;
        };
        let (Some(weight), Some(weight_grad)) = (
            net.param(&format!("{}.weight", info.name)),
            grad.param(&format!("{}.weight", info.name)),
        ) else {
            continue;
        };
        let (Some(bias), Some(bias_grad)) = (
            net.param(&format!("{}.bias", info.name)),
            grad.param(&format!("{}.bias", info.name)),
        ) else {
            continue;
        };
        let _ = writeln!(dot, "  subgraph cluster_{} {{", info.name);
        let _ = writeln!(dot, "    label=\"{} ({})\";", info.name, info.activation);
        let mut current = std::vec::Vec::with_capacity(info.outputs);
        for unit in 0..info.outputs {
            let node = format!("{}_{unit}", info.name);
            let _ = writeln!(
                dot,
                "    {node} [label=\"{}[{unit}]\\nz {}  a {}\\nδ {}\\nbias {}  g {}\"];",
                info.name,
                show(view.z[unit]),
                show(view.a[unit]),
                show(view.delta[unit]),
                show(bias.get(unit, 0)),
                show(bias_grad.get(unit, 0)),
            );
            current.push(node);
        }
        let _ = writeln!(dot, "  }}");
        for (unit, node) in current.iter().enumerate() {
            for (input, from) in previous.iter().enumerate() {
                let _ = writeln!(
                    dot,
                    "  {from} -> {node} [label=\"w {}\\ng {}\"];",
                    show(weight.get(unit, input)),
                    show(weight_grad.get(unit, input)),
                );
            }
        }
        previous = current;
    }
    let _ = writeln!(
        dot,
        "  loss [shape=ellipse, label=\"loss E\\n{}\"];",
        show(value)
    );
    for node in &previous {
        let _ = writeln!(dot, "  {node} -> loss;");
    }
    let _ = writeln!(dot, "}}");
    dot
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
