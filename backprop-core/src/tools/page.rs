//! A self-contained HTML page that explains any gradient of a network on click: the drawing of
//! [`dot`](crate::dot) as inline SVG (layers as columns, neurons in index order with `z`, `a`
//! and `δ`, edges coloured by the sign of their gradient and as wide as its size, dead units
//! marked), and beside it the explanation of the selected entry as the seed post writes it: the
//! product of chain-rule factors, each with its name and value, and the δ sum where paths split.
//!
//! The page is one file with no network access: no external script, style sheet, font or image.
//! Every explanation is computed in Rust by [`explain_all`] and embedded as JSON (a
//! `<script type="application/json" id="backprop-data">` element), so the page's script only
//! shows them. Hovering an edge or a bias shows its value and gradient; clicking it explains it;
//! the selected entry is the URL's fragment (`seed.html#fc2.weight[1][0]` opens on it). A control
//! steps through the forward pass, the loss, then the backward pass layer by layer. For a batch,
//! the neurons show one sample at a time (a selector) and the explanation lists every sample's
//! chain and their sum.
//!
//! ```text
//! use backprop::page::to_html;
//! use backprop::prelude::*;
//!
//! network! { struct Net < 4 => relu 5 => relu 2 => sigmoid 1 > }
//!
//! let net = Net::<f32>::init(13);
//! let (x, y) = (SVector::<f32, 4>::new(0.5, -1.0, 0.25, 2.0), SVector::<f32, 1>::new(1.0));
//! let html = to_html(&net, &x, &y, &Mse, "Net, MSE").unwrap();
//! std::fs::write("net.html", html)?;           // then open net.html#fc2.weight[1][0]
//! ```
//!
//! (`examples/seed.rs` writes it for the seed network with `--html PATH`; `tests/suite/pictures.rs`
//! checks that every embedded explanation equals the backward pass's gradient.)
//!
//! The page embeds one explanation per parameter, so it is meant for the small networks one
//! explains by hand; its size grows with the parameters times the depth.

use std::fmt::Write as _;
use std::string::{String, ToString};
use std::vec::Vec;

use nalgebra::SMatrix;

use crate::activation_kind::{ActivationKind, Derivative};
use crate::dot::{gradient_colour, gradient_width, NEGATIVE, POSITIVE, ZERO};
use crate::explain::{explain_all, is_dead, is_saturated, ExplainError, Explanation, Factor};
use crate::heap::{zeroed, InPlace};
use crate::loss::Loss;
use crate::model::Model;
use crate::sample::BatchFor;
use crate::scalar::{to_f64, Scalar};

/// Horizontal distance between two columns of the drawing, in pixels.
const COLUMN: f64 = 190.0;
/// Vertical distance between two neurons of a column.
const ROW: f64 = 86.0;
/// A neuron's box.
const UNIT_W: f64 = 140.0;
/// A neuron's box.
const UNIT_H: f64 = 72.0;
/// An input's box.
const INPUT_W: f64 = 84.0;
/// An input's box.
const INPUT_H: f64 = 40.0;
/// The space above the first neuron (column titles).
const TOP: f64 = 64.0;
/// The left margin.
const LEFT: f64 = 24.0;
/// The loss's ellipse (half width).
const LOSS_RX: f64 = 48.0;

/// The HTML page for `net` at input `x` (one column per sample of the batch `B`) against
/// `target` under `loss`, titled `title`: the drawing, every entry's explanation, the stepper.
///
/// Fails only when a layer's activation cannot be explained (see [`ExplainError`]).
pub fn to_html<N, L, Y, const I: usize, const O: usize, const B: usize>(
    net: &N,
    x: &impl BatchFor<N, N::Scalar, I, B>,
    target: &Y,
    loss: &L,
    title: &str,
) -> Result<String, ExplainError>
where
    N: Model<I, O>,
    L: Loss<N::Scalar, O, B, Y>,
{
    let x = x.as_batch();
    let explanations = explain_all(net, x, target, loss)?;

    // ∂E/∂a of the outputs, where backward starts, then the backward pass itself.
    let mut ws = net.workspace();
    let mut output = zeroed::<SMatrix<N::Scalar, O, B>>();
    InPlace::copy_from(&mut *output, net.forward_into(x, &mut ws));
    let mut output_gradient = zeroed::<SMatrix<N::Scalar, O, B>>();
    loss.gradient(&*output, target, &mut *output_gradient);
    let upstream = floats(output_gradient.as_slice());
    let mut grad = N::zeros();
    let value = to_f64(net.backward(x, target, loss, &mut ws, &mut grad));

    let inputs = floats(x.as_slice());
    let mut layers = Vec::with_capacity(N::LAYERS.len());
    for info in N::LAYERS {
        let view = N::layer_values::<B>(&ws, info.name).expect("every declared layer has values");
        let weight = |of: &N| matrix(of, &format!("{}.weight", info.name));
        let bias = |of: &N| matrix(of, &format!("{}.bias", info.name));
        layers.push(Layer {
            name: info.name,
            activation: info.activation,
            kind: info.kind,
            inputs: info.inputs,
            outputs: info.outputs,
            z: floats(view.z),
            a: floats(view.a),
            delta: floats(view.delta),
            dead: view.z.iter().map(|z| is_dead(info, *z)).collect(),
            saturated: view
                .z
                .iter()
                .zip(view.a)
                .map(|(z, a)| is_saturated(info, *z, *a))
                .collect(),
            weight: weight(net),
            weight_grad: weight(&grad),
            bias: bias(net),
            bias_grad: bias(&grad),
        });
    }
    let model = Drawing {
        batch: B,
        inputs_width: N::INPUTS,
        inputs,
        layers,
        upstream,
        loss: value,
    };

    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    let _ = writeln!(
        html,
        "<header><h1>{}</h1><p class=\"sub\">loss E = {:.5}{}. Hover an edge (a weight) or a \
bias to see its value and gradient; click it to see its gradient computed by the chain rule. \
The address's fragment names the selected entry, so a link opens on it.</p></header>",
        escape(title),
        value,
        if B > 1 {
            format!(", summed over a batch of {B} samples")
        } else {
            String::new()
        }
    );
    html.push_str(
        "<nav class=\"controls\"><button id=\"first\" type=\"button\">« start</button>\
<button id=\"prev\" type=\"button\">◀ back</button>\
<button id=\"next\" type=\"button\">step ▶</button>\
<button id=\"all\" type=\"button\">show all</button>",
    );
    if B > 1 {
        html.push_str("<label class=\"pick\">neurons of sample <select id=\"sample\">");
        for s in 0..B {
            let _ = write!(html, "<option value=\"{s}\">{s}</option>");
        }
        html.push_str("</select></label>");
    }
    html.push_str("<span id=\"stage\"></span></nav>\n<main>\n<div id=\"drawing\">");
    svg(&model, &mut html);
    html.push_str(
        "</div>\n<aside id=\"explanation\" data-entry=\"\"><p class=\"hint\">Click an edge (a \
weight) or a bias to see how its gradient is computed.</p></aside>\n</main>\n\
<div id=\"tip\" hidden></div>\n<script type=\"application/json\" id=\"backprop-data\">",
    );
    json(&model, &explanations, &mut html);
    let _ = write!(
        html,
        "</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    Ok(html)
}

/// One layer's values (every sample, column-major) and parameters, in f64.
struct Layer {
    /// Field name.
    name: &'static str,
    /// Declared activation, as written (for captions).
    activation: &'static str,
    /// The activation as data (what the page's script branches on).
    kind: ActivationKind,
    /// Input width.
    inputs: usize,
    /// Output width.
    outputs: usize,
    /// Pre-activations, sample by sample.
    z: Vec<f64>,
    /// Outputs, sample by sample.
    a: Vec<f64>,
    /// ∂E/∂z, sample by sample.
    delta: Vec<f64>,
    /// Whether each unit is dead, sample by sample.
    dead: Vec<bool>,
    /// Whether each unit is saturated, sample by sample.
    saturated: Vec<bool>,
    /// weight[row][col], row-major.
    weight: Vec<Vec<f64>>,
    /// Its gradient.
    weight_grad: Vec<Vec<f64>>,
    /// bias[row][0].
    bias: Vec<Vec<f64>>,
    /// Its gradient.
    bias_grad: Vec<Vec<f64>>,
}

/// Everything the page shows.
struct Drawing {
    /// Samples in the batch.
    batch: usize,
    /// The input width.
    inputs_width: usize,
    /// Inputs, sample by sample.
    inputs: Vec<f64>,
    /// The layers.
    layers: Vec<Layer>,
    /// ∂E/∂a of the outputs, sample by sample.
    upstream: Vec<f64>,
    /// The loss.
    loss: f64,
}

/// Scalars as f64.
fn floats<T: Scalar>(values: &[T]) -> Vec<f64> {
    values.iter().map(|v| to_f64(*v)).collect()
}

/// Parameter `name` of `net`, row-major.
fn matrix<N: crate::network::Network>(net: &N, name: &str) -> Vec<Vec<f64>> {
    let param = net
        .param(name)
        .expect("every layer has a weight and a bias");
    (0..param.rows)
        .map(|r| (0..param.cols).map(|c| to_f64(param.get(r, c))).collect())
        .collect()
}

/// Text made safe for HTML and XML content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value with four decimals; an exact zero as `0`.
fn show(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.4}")
    }
}

/// The centre x of column `c` (0: the inputs; the loss is the last).
fn column_x(c: usize) -> f64 {
    LEFT + UNIT_W / 2.0 + c as f64 * COLUMN
}

/// The centre x of the loss, a little further than a column so that ∂E/∂a fits on its edges.
fn loss_x(depth: usize) -> f64 {
    column_x(depth + 1) + 40.0
}

/// The centre y of unit `i` of a column of `n`, when the tallest column has `tallest`.
fn unit_y(i: usize, n: usize, tallest: usize) -> f64 {
    TOP + (tallest - n) as f64 * ROW / 2.0 + i as f64 * ROW + ROW / 2.0
}

/// Writes the drawing for sample 0 (the script redraws the values for other samples).
fn svg(model: &Drawing, out: &mut String) {
    let depth = model.layers.len();
    let tallest = model
        .layers
        .iter()
        .map(|l| l.outputs)
        .chain([model.inputs_width])
        .max()
        .unwrap_or(1);
    let loss_x = loss_x(depth);
    let width = (loss_x + LOSS_RX + 24.0).max(720.0);
    let legend_y = TOP + tallest as f64 * ROW + 16.0;
    let height = legend_y + 76.0;
    let largest = model
        .layers
        .iter()
        .flat_map(|l| l.weight_grad.iter().flatten())
        .filter(|g| g.is_finite())
        .fold(0.0_f64, |m, g| m.max(g.abs()));
    let _ = write!(
        out,
        "<svg id=\"network\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"the network\">"
    );

    // Column backgrounds (highlighted by the stepper) and titles.
    for c in 0..=depth + 1 {
        let title = match c {
            0 => "input x".to_string(),
            c if c <= depth => {
                let layer = &model.layers[c - 1];
                format!("{} · {}", layer.name, layer.activation)
            }
            _ => "loss".to_string(),
        };
        let x = if c <= depth { column_x(c) } else { loss_x };
        let _ = write!(
            out,
            "<rect class=\"column\" id=\"col-{c}\" x=\"{}\" y=\"8\" width=\"{}\" height=\"{}\" rx=\"10\"/>\
<text class=\"title\" x=\"{}\" y=\"32\">{}</text>",
            x - COLUMN / 2.0 + 6.0,
            COLUMN - 12.0,
            legend_y - 14.0,
            x,
            escape(&title)
        );
    }

    // Edges first, under the boxes.
    out.push_str("<g class=\"edges\">");
    let mut previous = (model.inputs_width, INPUT_W);
    for (k, layer) in model.layers.iter().enumerate() {
        let k = k + 1;
        let x1 = column_x(k - 1) + previous.1 / 2.0;
        let x2 = column_x(k) - UNIT_W / 2.0;
        for r in 0..layer.outputs {
            for c in 0..layer.inputs {
                let g = layer.weight_grad[r][c];
                let w = layer.weight[r][c];
                let y1 = unit_y(c, previous.0, tallest);
                let y2 = unit_y(r, layer.outputs, tallest);
                let entry = format!("{}.weight[{r}][{c}]", layer.name);
                let _ = write!(
                    out,
                    "<g class=\"edge{}\" id=\"e-{k}-{r}-{c}\" data-entry=\"{}\" data-bwd=\"{k}\" data-w=\"{w:?}\" data-g=\"{g:?}\">\
<title>{}: w {}, g {}</title>\
<line class=\"halo\" x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\"/>\
<line class=\"vis\" x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"{}\" stroke-width=\"{:.2}\"/>\
<line class=\"hit\" x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\"/></g>",
                    if g == 0.0 { " zero" } else { "" },
                    escape(&entry),
                    escape(&entry),
                    show(w),
                    show(g),
                    gradient_colour(g),
                    gradient_width(g, largest),
                );
            }
        }
        previous = (layer.outputs, UNIT_W);
    }
    // The outputs into the loss, labelled with ∂E/∂a (where backward starts).
    let loss_y = TOP + tallest as f64 * ROW / 2.0;
    if let Some(last) = model.layers.last() {
        for i in 0..last.outputs {
            let x1 = column_x(depth) + UNIT_W / 2.0;
            let y1 = unit_y(i, last.outputs, tallest);
            let _ = write!(
                out,
                "<g class=\"to-loss\" id=\"l-{i}\"><line x1=\"{x1}\" y1=\"{y1}\" x2=\"{}\" y2=\"{loss_y}\"/>\
<text class=\"upstream\" id=\"up-{i}\" data-loss=\"1\" x=\"{}\" y=\"{}\">∂E/∂a{depth}[{i}] {}</text></g>",
                loss_x - LOSS_RX,
                (x1 + loss_x - LOSS_RX) / 2.0,
                (y1 + loss_y) / 2.0 - 6.0,
                show(model.upstream[i])
            );
        }
    }
    out.push_str("</g>");

    // Inputs.
    for i in 0..model.inputs_width {
        let (cx, cy) = (column_x(0), unit_y(i, model.inputs_width, tallest));
        let _ = write!(
            out,
            "<g class=\"unit input\" id=\"u-0-{i}\"><rect x=\"{}\" y=\"{}\" width=\"{INPUT_W}\" height=\"{INPUT_H}\" rx=\"8\"/>\
<text class=\"name\" x=\"{cx}\" y=\"{}\">x[{i}]</text><text id=\"x-{i}\" data-fwd=\"0\" x=\"{cx}\" y=\"{}\">{}</text></g>",
            cx - INPUT_W / 2.0,
            cy - INPUT_H / 2.0,
            cy - 4.0,
            cy + 12.0,
            show(model.inputs[i])
        );
    }

    // Neurons: name, z and a, δ, and the bias with its gradient (clickable).
    for (k, layer) in model.layers.iter().enumerate() {
        let k = k + 1;
        for i in 0..layer.outputs {
            let (cx, cy) = (column_x(k), unit_y(i, layer.outputs, tallest));
            let (left, top) = (cx - UNIT_W / 2.0, cy - UNIT_H / 2.0);
            let dead = layer.dead[i];
            let saturated = !dead && layer.saturated[i];
            let bias_entry = format!("{}.bias[{i}]", layer.name);
            let (b, bg) = (layer.bias[i][0], layer.bias_grad[i][0]);
            let _ = write!(
                out,
                "<g class=\"unit{}\" id=\"u-{k}-{i}\"><title>{}[{i}]</title>\
<rect x=\"{left}\" y=\"{top}\" width=\"{UNIT_W}\" height=\"{UNIT_H}\" rx=\"9\"/>\
<text class=\"name left\" x=\"{}\" y=\"{}\">{}[{i}]</text>\
<text class=\"dead-tag\" x=\"{}\" y=\"{}\">dead: z ≤ 0</text>\
<text class=\"saturated-tag\" x=\"{}\" y=\"{}\">saturated</text>\
<text id=\"za-{k}-{i}\" data-fwd=\"{k}\" x=\"{cx}\" y=\"{}\">z {}\u{a0}\u{a0} a {}</text>\
<text id=\"d-{k}-{i}\" data-bwd=\"{k}\" x=\"{cx}\" y=\"{}\">δ {}</text>\
<g class=\"bias{}\" id=\"b-{k}-{i}\" data-entry=\"{}\" data-w=\"{b:?}\" data-g=\"{bg:?}\"><title>{}: b {}, g {}</title>\
<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" rx=\"5\" stroke=\"{}\"/>\
<text class=\"bias-text\" x=\"{cx}\" y=\"{}\"><tspan>bias {}</tspan>\u{a0}\u{a0} <tspan data-bwd=\"{k}\">g {}</tspan></text></g></g>",
                if dead {
                    " dead"
                } else if saturated {
                    " saturated"
                } else {
                    ""
                },
                escape(layer.name),
                left + 8.0,
                top + 15.0,
                escape(layer.name),
                left + UNIT_W - 6.0,
                top + 15.0,
                left + UNIT_W - 6.0,
                top + 15.0,
                top + 31.0,
                show(layer.z[i]),
                show(layer.a[i]),
                top + 46.0,
                show(layer.delta[i]),
                if bg == 0.0 { " zero" } else { "" },
                escape(&bias_entry),
                escape(&bias_entry),
                show(b),
                show(bg),
                left + 6.0,
                top + 52.0,
                UNIT_W - 12.0,
                gradient_colour(bg),
                top + 64.0,
                show(b),
                show(bg),
            );
        }
    }

    // The loss.
    let _ = write!(
        out,
        "<g class=\"unit loss\" id=\"u-loss\"><ellipse cx=\"{loss_x}\" cy=\"{loss_y}\" rx=\"{LOSS_RX}\" ry=\"26\"/>\
<text class=\"name\" x=\"{loss_x}\" y=\"{}\">loss E</text><text data-loss=\"1\" x=\"{loss_x}\" y=\"{}\">{}</text></g>",
        loss_y - 3.0,
        loss_y + 13.0,
        show(model.loss)
    );

    // The legend, in three rows.
    let y = legend_y;
    let (r1, r2, r3) = (y + 18.0, y + 38.0, y + 58.0);
    let _ = write!(
        out,
        "<g class=\"legend\"><text x=\"{LEFT}\" y=\"{y}\" class=\"strong\">edge = a weight; colour: the sign of its gradient g = ∂E/∂w; width: |g| (widest {largest:.4})</text>\
<line x1=\"{LEFT}\" y1=\"{r1}\" x2=\"{}\" y2=\"{r1}\" stroke=\"{POSITIVE}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">g &gt; 0: a step against g lowers w</text>\
<line x1=\"{}\" y1=\"{r1}\" x2=\"{}\" y2=\"{r1}\" stroke=\"{NEGATIVE}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">g &lt; 0: a step against g raises w</text>\
<line x1=\"{}\" y1=\"{r1}\" x2=\"{}\" y2=\"{r1}\" stroke=\"{ZERO}\" stroke-width=\"1\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{}\">g = 0</text>\
<rect class=\"dead-sample\" x=\"{LEFT}\" y=\"{}\" width=\"26\" height=\"14\" rx=\"4\"/><text x=\"{}\" y=\"{}\">dead ReLU unit (z ≤ 0): no gradient flows back through it</text>\
<text x=\"{LEFT}\" y=\"{}\">δ = ∂E/∂z of a neuron; the bias's gradient is δ. Values with four decimals; the explanation shows five.</text></g>",
        LEFT + 30.0,
        LEFT + 36.0,
        r1 + 4.0,
        LEFT + 250.0,
        LEFT + 280.0,
        LEFT + 286.0,
        r1 + 4.0,
        LEFT + 500.0,
        LEFT + 530.0,
        LEFT + 536.0,
        r1 + 4.0,
        r2 - 7.0,
        LEFT + 34.0,
        r2 + 4.0,
        r3 + 4.0,
    );
    out.push_str("</svg>");
}

/// A JSON string literal, safe inside a `<script>` element.
fn json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number: the shortest text that reads back as the same f64; `null` if not finite.
fn json_number(value: f64, out: &mut String) {
    if value.is_finite() {
        let _ = write!(out, "{value:?}");
    } else {
        out.push_str("null");
    }
}

/// A JSON list of numbers.
fn json_numbers(values: &[f64], out: &mut String) {
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_number(*v, out);
    }
    out.push(']');
}

/// `[[sample 0's units], [sample 1's], ...]` from column-major values.
fn json_samples(values: &[f64], units: usize, out: &mut String) {
    out.push('[');
    for (s, chunk) in values.chunks(units.max(1)).enumerate() {
        if s > 0 {
            out.push(',');
        }
        json_numbers(chunk, out);
    }
    out.push(']');
}

/// A JSON list of rows.
fn json_matrix(rows: &[Vec<f64>], out: &mut String) {
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_numbers(row, out);
    }
    out.push(']');
}

/// One factor and its terms.
fn json_factor<T: Scalar>(factor: &Factor<T>, out: &mut String) {
    out.push_str("{\"label\":");
    json_string(&factor.label, out);
    out.push_str(",\"value\":");
    json_number(to_f64(factor.value), out);
    out.push_str(",\"terms\":[");
    for (i, term) in factor.terms.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_factor(term, out);
    }
    out.push_str("]}");
}

/// The page's data: the layers' values, the parameters and gradients, every explanation.
fn json<T: Scalar>(model: &Drawing, explanations: &[Explanation<T>], out: &mut String) {
    let _ = write!(
        out,
        "{{\"batch\":{},\"inputs\":{},\"x\":",
        model.batch, model.inputs_width
    );
    json_samples(&model.inputs, model.inputs_width, out);
    out.push_str(",\"loss\":");
    json_number(model.loss, out);
    out.push_str(",\"upstream\":");
    let outputs = model.layers.last().map_or(1, |l| l.outputs);
    json_samples(&model.upstream, outputs, out);
    out.push_str(",\"layers\":[");
    for (k, layer) in model.layers.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_string(layer.name, out);
        out.push_str(",\"activation\":");
        json_string(layer.activation, out);
        out.push_str(",\"kind\":");
        json_string(layer.kind.name(), out);
        // The script branches on these facts, never on a spelling.
        let _ = write!(
            out,
            ",\"matrix_derivative\":{},\"can_die\":{}",
            layer.kind.derivative(0.0, 0.0).is_none(),
            layer.kind.can_die()
        );
        let _ = write!(
            out,
            ",\"inputs\":{},\"outputs\":{},\"z\":",
            layer.inputs, layer.outputs
        );
        json_samples(&layer.z, layer.outputs, out);
        out.push_str(",\"a\":");
        json_samples(&layer.a, layer.outputs, out);
        out.push_str(",\"delta\":");
        json_samples(&layer.delta, layer.outputs, out);
        out.push_str(",\"dead\":");
        json_flags(&layer.dead, layer.outputs, out);
        out.push_str(",\"saturated\":");
        json_flags(&layer.saturated, layer.outputs, out);
        out.push_str(",\"weight\":");
        json_matrix(&layer.weight, out);
        out.push_str(",\"weight_grad\":");
        json_matrix(&layer.weight_grad, out);
        out.push_str(",\"bias\":");
        json_matrix(&layer.bias, out);
        out.push_str(",\"bias_grad\":");
        json_matrix(&layer.bias_grad, out);
        out.push('}');
    }
    out.push_str("],\"explanations\":{");
    for (i, explanation) in explanations.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&explanation.entry, out);
        out.push_str(":{\"value\":");
        json_number(to_f64(explanation.value), out);
        out.push_str(",\"samples\":[");
        for (s, chain) in explanation.samples.iter().enumerate() {
            if s > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"sample\":{},\"value\":", chain.sample);
            json_number(to_f64(chain.value), out);
            out.push_str(",\"factors\":[");
            for (f, factor) in chain.factors.iter().enumerate() {
                if f > 0 {
                    out.push(',');
                }
                json_factor(factor, out);
            }
            out.push_str("]}");
        }
        out.push_str("]}");
    }
    out.push_str("}}");
}

/// The page's style sheet.
const STYLE: &str = r#"
:root { --ink: #1d1d1f; --muted: #666; --pos: #c0392b; --neg: #2166ac; --zero: #a0a0a0; --sel: #f0a020; }
* { box-sizing: border-box; }
body { margin: 0; padding: 14px 18px; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); background: #fafaf7; }
header h1 { font-size: 19px; margin: 0 0 2px; }
header .sub { margin: 0 0 8px; color: var(--muted); font-size: 13px; }
.controls { display: flex; gap: 6px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
.controls button { font: inherit; padding: 3px 10px; border: 1px solid #bbb; border-radius: 6px; background: #fff; cursor: pointer; }
.controls button:hover { background: #f1f1ea; }
.controls .pick { margin-left: 8px; color: var(--muted); }
#stage { margin-left: 10px; font-size: 13px; }
#stage b { color: #7a4d00; }
main { display: flex; gap: 14px; align-items: flex-start; }
#drawing { flex: 1 1 auto; min-width: 0; }
#drawing svg { width: 100%; height: auto; max-height: 78vh; display: block; background: #fff; border: 1px solid #e4e4dc; border-radius: 10px; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; text-anchor: middle; fill: var(--ink); }
svg .title { font-size: 13px; font-weight: 600; }
svg .name { font-weight: 600; }
svg .name.left { text-anchor: start; }
svg .column { fill: transparent; }
svg .column.current { fill: #fff3cf; }
svg .unit rect, svg .unit ellipse { fill: #fdfdf8; stroke: #333; stroke-width: 1.2; }
svg .unit.dead > rect { fill: #ececec; stroke: var(--zero); stroke-dasharray: 5 3; }
svg .unit.dead text { fill: #555; }
svg .dead-tag { display: none; font-size: 9px; text-anchor: end; fill: #777 !important; }
svg .unit.dead .dead-tag { display: inline; }
svg .unit.saturated > rect { fill: #fff1cc; stroke: #b7791f; stroke-dasharray: 5 3; }
svg .saturated-tag { display: none; font-size: 9px; text-anchor: end; fill: #9a6412 !important; }
svg .unit.saturated .saturated-tag { display: inline; }
svg .dead-sample { fill: #ececec; stroke: var(--zero); stroke-dasharray: 5 3; }
svg .legend text { text-anchor: start; font-size: 11px; }
svg .legend .strong { font-weight: 600; }
svg .edge .vis { stroke-opacity: .85; stroke-linecap: round; }
svg .edge.zero .vis { stroke-dasharray: 4 3; }
svg .edge .halo { stroke: var(--sel); stroke-width: 0; stroke-opacity: 0; stroke-linecap: round; }
svg .edge .hit { stroke: transparent; stroke-width: 12; cursor: pointer; }
svg .edge:hover .vis { stroke-opacity: 1; }
svg .edge:hover .halo { stroke-width: 7; stroke-opacity: .35; }
svg .edge.onpath .halo { stroke-width: 7; stroke-opacity: .35; }
svg .edge.selected .halo { stroke-width: 10; stroke-opacity: .8; }
svg .edges.focus .edge:not(.onpath):not(.selected) .vis { stroke-opacity: .25; }
svg .bias { cursor: pointer; }
svg .bias-text { font-size: 10px; }
svg .bias rect { fill: #fff; stroke-width: 1.4; }
svg .bias.zero rect { stroke-dasharray: 3 2; }
svg .bias:hover rect { fill: #fff3cf; }
svg .bias.selected rect { fill: #ffe2a8; stroke: var(--sel); stroke-width: 2.5; }
svg .unit.onpath > rect, svg .unit.onpath > ellipse { stroke: var(--sel); stroke-width: 2.5; }
svg .to-loss line { stroke: #444; stroke-width: 1.2; }
svg .upstream { font-size: 10px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .later { opacity: .12; }
svg .edge.later .vis { stroke: #cfcfcf; stroke-width: 1; stroke-dasharray: none; }
svg .edge.later .halo { stroke-opacity: 0; }
#explanation { flex: 0 0 410px; background: #fff; border: 1px solid #e4e4dc; border-radius: 10px; padding: 12px 14px; max-height: 86vh; overflow: auto; }
#explanation h2 { font-size: 16px; margin: 0 0 6px; }
#explanation h2 code { font-size: 15px; }
#explanation .total { color: #7a4d00; }
#explanation .check { margin: 0 0 8px; color: var(--muted); font-size: 12px; }
#explanation .hint { color: var(--muted); }
.chain { border-top: 1px solid #eee; padding-top: 6px; margin-top: 6px; }
.chain .head { font-weight: 600; font-size: 13px; }
.product { display: flex; flex-wrap: wrap; align-items: stretch; gap: 4px; margin: 6px 0; }
.factor { display: inline-flex; flex-direction: column; align-items: center; border: 1px solid #d8d2bf; background: #fffaf0; border-radius: 7px; padding: 3px 7px; }
.factor .label { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
.factor .value { font-weight: 600; font-size: 13px; }
.times { align-self: center; color: var(--muted); font-size: 16px; }
.equals { align-self: center; font-weight: 600; }
table.what { border-collapse: collapse; width: 100%; font-size: 12px; }
table.what td { border-top: 1px solid #f0f0f0; padding: 3px 4px; vertical-align: top; }
table.what td:first-child { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: nowrap; }
table.what td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.sum { margin: 6px 0 0; font-size: 12px; }
.sum .sum-head { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.sum ul { margin: 2px 0 0 18px; padding: 0; }
.sum li span { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
#tip { position: fixed; z-index: 2; pointer-events: none; background: #222; color: #fff; font-size: 12px; padding: 4px 8px; border-radius: 6px; white-space: nowrap; }
"#;

/// The page's script: shows the embedded data; computes nothing but the stepper's visibility.
const SCRIPT: &str = r#"
(function () {
'use strict';
const data = JSON.parse(document.getElementById('backprop-data').textContent);
const L = data.layers.length;
const svg = document.getElementById('network');
const panel = document.getElementById('explanation');
const tip = document.getElementById('tip');
const f4 = v => v === null ? 'NaN' : (v === 0 ? '0' : v.toFixed(4));
const f5 = v => v === null ? 'NaN' : v.toFixed(5);
const byId = id => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
let sample = 0;
// Stages: 0 the input; k = 1..L forward through layer k; L+1 the loss; 2L+2-k backward through
// layer k; 2L+2 everything.
const LAST = 2 * L + 2;
let stage = LAST;

function showSample(s) {
  sample = s;
  for (let i = 0; i < data.inputs; i++) {
    const e = byId('x-' + i);
    if (e) e.textContent = f4(data.x[s][i]);
  }
  data.layers.forEach((layer, k) => {
    for (let i = 0; i < layer.outputs; i++) {
      const za = byId('za-' + (k + 1) + '-' + i);
      if (za) za.textContent = 'z ' + f4(layer.z[s][i]) + '\u00a0\u00a0 a ' + f4(layer.a[s][i]);
      const d = byId('d-' + (k + 1) + '-' + i);
      if (d) d.textContent = 'δ ' + f4(layer.delta[s][i]);
      const u = byId('u-' + (k + 1) + '-' + i);
      if (u) u.classList.toggle('dead', layer.dead[s][i]);
      if (u) u.classList.toggle('saturated', !layer.dead[s][i] && layer.saturated[s][i]);
    }
  });
  const last = data.layers[L - 1];
  for (let i = 0; i < last.outputs; i++) {
    const up = byId('up-' + i);
    if (up) up.textContent = '∂E/∂a' + L + '[' + i + '] ' + f4(data.upstream[s][i]);
  }
  applyStage();
}

function caption() {
  const n = k => data.layers[k - 1];
  const input = k => k === 1 ? 'x' : 'a' + (k - 1);
  const batch = data.batch > 1 ? ' (summed over the ' + data.batch + ' samples)' : '';
  if (stage === 0) return ['input', 'x = [' + data.x[sample].map(f4).join(', ') + ']'];
  if (stage <= L) {
    const layer = n(stage);
    return ['forward ' + stage + '/' + L, 'z' + stage + ' = ' + layer.name + '.weight · ' + input(stage) +
      ' + ' + layer.name + '.bias, a' + stage + ' = ' + layer.activation + '(z' + stage + ')'];
  }
  if (stage === L + 1) return ['loss', 'E = ' + f5(data.loss) + '; backward starts from ∂E/∂a' + L];
  if (stage < LAST) {
    const k = 2 * L + 2 - stage;
    const layer = n(k);
    const act = layer.kind;
    let delta;
    if (layer.matrix_derivative) {
      delta = 'δ' + k + ' = softmax\'(z' + k + ')ᵀ · ' + (k === L ? '∂E/∂a' + k : '(' + n(k + 1).name + '.weightᵀ · δ' + (k + 1) + ')');
    } else {
      delta = 'δ' + k + ' = ' + (k === L ? '∂E/∂a' + k : '(' + n(k + 1).name + '.weightᵀ · δ' + (k + 1) + ')') +
        ' ⊙ ' + act + '\'(z' + k + ')';
    }
    return ['backward ' + (L + 1 - k) + '/' + L, delta + '; ' + layer.name + '.weight.grad = δ' + k + ' · ' +
      input(k) + 'ᵀ, ' + layer.name + '.bias.grad = δ' + k + batch];
  }
  return ['all', 'forward and backward done: click an edge or a bias to explain its gradient'];
}

function applyStage() {
  svg.querySelectorAll('[data-fwd]').forEach(e => e.classList.toggle('later', stage < +e.dataset.fwd));
  svg.querySelectorAll('[data-bwd]').forEach(e =>
    e.classList.toggle('later', stage < 2 * L + 2 - +e.dataset.bwd));
  svg.querySelectorAll('[data-loss]').forEach(e => e.classList.toggle('later', stage < L + 1));
  svg.querySelectorAll('.column').forEach(e => e.classList.remove('current'));
  let col = null;
  if (stage <= L) col = stage;
  else if (stage === L + 1) col = L + 1;
  else if (stage < LAST) col = 2 * L + 2 - stage;
  if (col !== null) byId('col-' + col).classList.add('current');
  const [name, text] = caption();
  const s = byId('stage');
  s.textContent = '';
  s.appendChild(el('b', null, name + ': '));
  s.appendChild(document.createTextNode(text));
  s.dataset.stage = String(stage);
}

function step(to) {
  stage = Math.max(0, Math.min(LAST, to));
  applyStage();
}

// "fc2.weight[1][0]" -> {layer: 2, kind: 'weight', row: 1, col: 0}
function parse(entry) {
  const m = /^(.+)\.(weight|bias)\[(\d+)\](?:\[(\d+)\])?$/.exec(entry);
  if (!m) return null;
  const k = data.layers.findIndex(l => l.name === m[1]);
  if (k < 0) return null;
  return { layer: k + 1, name: m[1], kind: m[2], row: +m[3], col: m[4] === undefined ? 0 : +m[4] };
}

function clearMarks() {
  svg.querySelectorAll('.selected, .onpath').forEach(e => e.classList.remove('selected', 'onpath'));
  svg.querySelector('.edges').classList.remove('focus');
}

// The entry's own edge or bias, the units it joins, and every path from it to the loss.
function markPath(p) {
  const id = p.kind === 'weight' ? 'e-' + p.layer + '-' + p.row + '-' + p.col : 'b-' + p.layer + '-' + p.row;
  const own = byId(id);
  if (own) own.classList.add('selected');
  if (p.kind === 'weight') {
    const from = byId('u-' + (p.layer - 1) + '-' + p.col);
    if (from) from.classList.add('onpath');
  }
  let reached = [p.row];
  byId('u-' + p.layer + '-' + p.row).classList.add('onpath');
  for (let k = p.layer + 1; k <= L; k++) {
    const next = [];
    for (let r = 0; r < data.layers[k - 1].outputs; r++) {
      for (const c of reached) {
        const e = byId('e-' + k + '-' + r + '-' + c);
        if (e) e.classList.add('onpath');
      }
      next.push(r);
      byId('u-' + k + '-' + r).classList.add('onpath');
    }
    reached = next;
  }
  byId('u-loss').classList.add('onpath');
  svg.querySelector('.edges').classList.add('focus');
}

// What each factor is, in words.
function describe(label, s) {
  let m;
  if ((m = /^∂E\/∂a(\d+)\[(\d+)\]$/.exec(label))) {
    return 'the loss\'s derivative with respect to output a' + m[1] + '[' + m[2] + ']: where backward starts';
  }
  if ((m = /^([a-z_]+)'\(z(\d+)\[(\d+)\]\)$/.exec(label))) {
    const layer = data.layers[+m[2] - 1];
    const z = layer.z[s][+m[3]];
    const extra = layer.can_die ? (z > 0 ? ' (live: the gradient passes)' : ' (the unit is dead here: little or no gradient passes)') : '';
    return 'the slope of ' + m[1] + ' at z' + m[2] + '[' + m[3] + '] = ' + f5(z) + extra;
  }
  if ((m = /^(.+)\.weight\[(\d+)\]\[(\d+)\]$/.exec(label))) {
    return 'the weight the error flows back through, from ' + m[1] + '[' + m[2] + '] to its input ' + m[3];
  }
  if ((m = /^(.+)\.input\[(\d+)\]$/.exec(label))) {
    const k = data.layers.findIndex(l => l.name === m[1]);
    const what = k === 0 ? 'x[' + m[2] + ']' : data.layers[k - 1].name + '\'s output a' + k + '[' + m[2] + ']';
    return 'what the weight multiplies: ' + what;
  }
  if (/^Σ/.test(label)) return 'the δ sum: the error reaching this unit from every unit of the next layer';
  if (/^softmax'/.test(label)) return 'softmax mixes its units: δ[i] = a[i] · (∂E/∂a[i] − Σ_j a[j] · ∂E/∂a[j])';
  return '';
}

function factorChip(f) {
  const chip = el('span', 'factor');
  chip.dataset.label = f.label;
  chip.dataset.value = f5(f.value);
  chip.title = String(f.value);
  chip.appendChild(el('span', 'label', f.label));
  chip.appendChild(el('span', 'value', f5(f.value)));
  return chip;
}

function explainEntry(entry) {
  clearMarks();
  panel.textContent = '';
  panel.dataset.entry = entry;
  const e = data.explanations[entry];
  const p = parse(entry);
  if (!e || !p) {
    panel.appendChild(el('p', 'hint', 'No entry ' + entry + ' in this network: click an edge (a weight) or a bias.'));
    return;
  }
  markPath(p);
  const cut = entry.indexOf('[');
  const h = el('h2');
  h.appendChild(el('code', null, entry.slice(0, cut) + '.grad' + entry.slice(cut)));
  h.appendChild(document.createTextNode(' = '));
  h.appendChild(el('span', 'total', f5(e.value)));
  panel.appendChild(h);
  const layer = data.layers[p.layer - 1];
  const g = p.kind === 'weight' ? layer.weight_grad[p.row][p.col] : layer.bias_grad[p.row][0];
  const w = p.kind === 'weight' ? layer.weight[p.row][p.col] : layer.bias[p.row][0];
  panel.appendChild(el('p', 'check', (p.kind === 'weight' ? 'weight ' : 'bias ') + f5(w) +
    '; the backward pass computed its gradient as ' + g + (data.batch > 1 ? ', the sum of the samples\' products' : '')));
  for (const chain of e.samples) {
    const box = el('div', 'chain');
    box.dataset.sample = String(chain.sample);
    if (data.batch > 1) box.appendChild(el('div', 'head', 'sample ' + chain.sample + ': ' + f5(chain.value)));
    const product = el('div', 'product');
    chain.factors.forEach((f, i) => {
      if (i > 0) product.appendChild(el('span', 'times', '·'));
      product.appendChild(factorChip(f));
    });
    product.appendChild(el('span', 'equals', '= ' + f5(chain.value)));
    box.appendChild(product);
    const table = el('table', 'what');
    for (const f of chain.factors) {
      const tr = el('tr');
      tr.appendChild(el('td', null, f.label));
      tr.appendChild(el('td', 'num', f5(f.value)));
      tr.appendChild(el('td', null, describe(f.label, chain.sample)));
      table.appendChild(tr);
    }
    box.appendChild(table);
    for (const f of chain.factors.filter(f => f.terms.length > 0)) {
      const sum = el('div', 'sum');
      sum.dataset.label = f.label;
      const head = el('div');
      head.appendChild(document.createTextNode('where the paths split: '));
      head.appendChild(el('span', 'sum-head', f.label + ' = ' + f5(f.value)));
      sum.appendChild(head);
      const ul = el('ul');
      for (const t of f.terms) {
        const li = el('li');
        li.dataset.label = t.label;
        li.dataset.value = f5(t.value);
        li.appendChild(el('span', null, t.label));
        li.appendChild(document.createTextNode(' = ' + f5(t.value)));
        ul.appendChild(li);
      }
      sum.appendChild(ul);
      box.appendChild(sum);
    }
    panel.appendChild(box);
  }
}

function fromHash() {
  const raw = location.hash.slice(1);
  if (!raw) return;
  let entry = raw;
  try { entry = decodeURIComponent(raw); } catch (_) { /* keep it as written */ }
  explainEntry(entry);
}

svg.addEventListener('click', ev => {
  const target = ev.target.closest('[data-entry]');
  if (!target) return;
  const entry = target.dataset.entry;
  history.replaceState(null, '', '#' + entry);
  explainEntry(entry);
});
svg.addEventListener('mousemove', ev => {
  const target = ev.target.closest('[data-entry]');
  if (!target) { tip.hidden = true; return; }
  tip.textContent = target.dataset.entry + ': ' + (target.classList.contains('bias') ? 'b ' : 'w ') +
    f5(+target.dataset.w) + ', g ' + f5(+target.dataset.g) + ' (click to explain)';
  tip.style.left = (ev.clientX + 14) + 'px';
  tip.style.top = (ev.clientY + 12) + 'px';
  tip.hidden = false;
});
svg.addEventListener('mouseleave', () => { tip.hidden = true; });
byId('first').addEventListener('click', () => step(0));
byId('prev').addEventListener('click', () => step(stage - 1));
byId('next').addEventListener('click', () => step(stage === LAST ? 0 : stage + 1));
byId('all').addEventListener('click', () => step(LAST));
document.addEventListener('keydown', ev => {
  if (ev.key === 'ArrowRight') step(stage + 1);
  if (ev.key === 'ArrowLeft') step(stage - 1);
});
const pick = byId('sample');
if (pick) pick.addEventListener('change', () => { showSample(+pick.value); fromHash(); });
window.addEventListener('hashchange', fromHash);
showSample(0);
fromHash();
document.body.dataset.ready = 'true';
})();
"#;

/// Per-sample flags as JSON, `[[true,false,…],…]`, one list of `units` per sample.
fn json_flags(flags: &[bool], units: usize, out: &mut String) {
    out.push('[');
    for (s, chunk) in flags.chunks(units.max(1)).enumerate() {
        if s > 0 {
            out.push(',');
        }
        let flags: Vec<&str> = chunk
            .iter()
            .map(|d| if *d { "true" } else { "false" })
            .collect();
        let _ = write!(out, "[{}]", flags.join(","));
    }
    out.push(']');
}
