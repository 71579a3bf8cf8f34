//! Pictures that teach: the seed network's DOT drawing (pinned by a snapshot, neurons in index
//! order, edges encoded by their gradients, dead units marked), and the HTML page whose embedded
//! explanations must equal the backward pass's gradients.
//!
//! Expected values come from PyTorch's fixtures (`tests/fixtures/seed_torch.json`,
//! `tests/fixtures/parity.json`), never from the code under test.

use crate::common;

use crate::common::{fixture, numbers};
use backprop::dot::{gradient_colour, gradient_width, to_dot, NEGATIVE, POSITIVE, ZERO};
use backprop::explain::{explain_all, is_dead};
use backprop::page::to_html;
use backprop::prelude::*;
use backprop::{ActivationKind, LayerInfo};

network! { pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 > }

/// The seed network, input and target with PyTorch's parameters, and the fixture.
fn seed() -> (
    Net<f32>,
    SVector<f32, 4>,
    SVector<f32, 1>,
    serde_json::Value,
) {
    common::seed()
}

/// The attribute list of node or edge `head` (`fc1_0`, `in_0 -> fc1_0`) in `dot`.
fn attributes<'a>(dot: &'a str, head: &str) -> &'a str {
    let start = format!("  {head} [");
    let line = dot
        .lines()
        .find(|line| line.starts_with(&start))
        .unwrap_or_else(|| panic!("no line for `{head}` in\n{dot}"));
    &line[start.len()..]
}

/// The pinned position `(x, y)` of node `name`, in inches.
fn position(dot: &str, name: &str) -> (f64, f64) {
    let attrs = attributes(dot, name);
    let start = attrs.find("pos=\"").expect("a pinned position") + 5;
    let end = attrs[start..].find("!\"").expect("pinned with `!`") + start;
    let (x, y) = attrs[start..end].split_once(',').expect("x,y");
    (x.parse().unwrap(), y.parse().unwrap())
}

/// The value of `key="value"` or `key=value` in an attribute list.
fn attribute<'a>(attrs: &'a str, key: &str) -> Option<&'a str> {
    let start = attrs.find(&format!("{key}="))? + key.len() + 1;
    let rest = &attrs[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next()
    } else {
        rest.split([',', ']']).next()
    }
}

#[test]
fn the_seed_picture_matches_its_snapshot() {
    let (net, x, y, _) = seed();
    let dot = to_dot(&net, &x, &y, &Mse);
    let path = format!("{}/tests/snapshots/seed.dot", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &dot).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path).expect("run with BLESS=1 to write the snapshot");
    assert_eq!(
        dot, snapshot,
        "the DOT output changed; review it and bless with BLESS=1"
    );
    // One edge per weight and one per output into the loss, and no other edge.
    assert_eq!(dot.matches(" -> ").count(), 4 * 5 + 5 * 2 + 2 + 1);
    assert!(dot.contains("label=\"fc3 · sigmoid\""));
}

#[test]
fn neurons_stand_in_index_order_in_layer_columns() {
    let (net, x, y, _) = seed();
    let dot = to_dot(&net, &x, &y, &Mse);
    let columns = [("in", 4), ("fc1", 5), ("fc2", 2), ("fc3", 1)];
    let mut column_x = Vec::new();
    for (layer, units) in columns {
        let positions: Vec<(f64, f64)> = (0..units)
            .map(|unit| position(&dot, &format!("{layer}_{unit}")))
            .collect();
        // One column per layer...
        assert!(
            positions.iter().all(|p| p.0 == positions[0].0),
            "{layer}: {positions:?}"
        );
        // ...and index 0 at the top (Graphviz's y axis points up), in declaration order too.
        for pair in positions.windows(2) {
            assert!(pair[0].1 > pair[1].1, "{layer}: {positions:?}");
        }
        let declared: Vec<usize> = (0..units)
            .map(|unit| dot.find(&format!("  {layer}_{unit} [")).unwrap())
            .collect();
        assert!(declared.windows(2).all(|w| w[0] < w[1]), "{layer}");
        column_x.push(positions[0].0);
    }
    column_x.push(position(&dot, "loss").0);
    assert!(
        column_x.windows(2).all(|w| w[0] < w[1]),
        "columns left to right: {column_x:?}"
    );
    // Graphviz must not move them: every position is pinned.
    assert!(dot.contains("layout=neato;"));
}

#[test]
fn edges_are_coloured_by_the_sign_of_torchs_gradient_and_as_wide_as_its_size() {
    let (net, x, y, fixture) = seed();
    let dot = to_dot(&net, &x, &y, &Mse);
    let layers = [
        ("fc1", "in", 5, 4),
        ("fc2", "fc1", 2, 5),
        ("fc3", "fc2", 1, 2),
    ];
    let largest = layers
        .iter()
        .flat_map(|(name, ..)| numbers(&fixture["grads"][format!("{name}.weight")]))
        .fold(0.0_f64, |m, g| m.max(g.abs()));
    // PyTorch's largest |g| is fc2.weight.grad[1][4] = -0.0600.
    assert!((largest - 0.060_020_919_889).abs() < 1e-9);
    for (name, from, rows, cols) in layers {
        let grads = numbers(&fixture["grads"][format!("{name}.weight")]);
        for row in 0..rows {
            for col in 0..cols {
                let g = grads[row * cols + col];
                let attrs = attributes(&dot, &format!("{from}_{col} -> {name}_{row}"));
                let expected = if g > 0.0 {
                    POSITIVE
                } else if g < 0.0 {
                    NEGATIVE
                } else {
                    ZERO
                };
                assert_eq!(attribute(attrs, "color"), Some(expected), "{attrs}");
                assert_eq!(gradient_colour(g), expected);
                let width: f64 = attribute(attrs, "penwidth").unwrap().parse().unwrap();
                let by_hand = 0.75 + 4.25 * g.abs() / largest;
                assert!((width - by_hand).abs() <= 0.005, "{attrs}: {by_hand}");
                assert_eq!(attrs.contains("style=dashed"), g == 0.0, "{attrs}");
                assert!(
                    attrs.contains(&format!("tooltip=\"{name}.weight[{row}][{col}]: w ")),
                    "{attrs}"
                );
            }
        }
    }
    let widest = attributes(&dot, "fc1_4 -> fc2_1");
    assert_eq!(attribute(widest, "penwidth"), Some("5.00"));
    assert_eq!(gradient_width(largest, largest), 5.0);
    // Every weight with its gradient is in its layer's table: fc2.weight[1][0] = -0.4105, g -0.0369.
    let table = attributes(&dot, "fc2_table");
    assert!(
        table.contains(&format!(
            "<td>-0.4105<br/><font color=\"{NEGATIVE}\">-0.0369</font></td>"
        )),
        "{table}"
    );
    assert!(dot.contains("width grows with |g|; widest |g| = 0.0600"));
}

#[test]
fn dead_relu_units_are_marked() {
    let (net, x, y, fixture) = seed();
    let dot = to_dot(&net, &x, &y, &Mse);
    // PyTorch's ReLU outputs are 0 exactly where z ≤ 0: fc1[1], fc1[2] and fc2[0].
    for (layer, units) in [("fc1", 5), ("fc2", 2)] {
        let a = numbers(&fixture["activations"][layer]);
        for (unit, a) in a.iter().enumerate().take(units) {
            let attrs = attributes(&dot, &format!("{layer}_{unit}"));
            let dead = *a == 0.0;
            assert_eq!(attrs.contains("dead: z ≤ 0"), dead, "{attrs}");
            assert_eq!(attrs.contains("style=\"rounded,filled,dashed\""), dead);
        }
    }
    assert_eq!(dot.matches("dead: z ≤ 0").count(), 3);
    // The sigmoid output is never dead, whatever its z (here -0.4577).
    assert!(!attributes(&dot, "fc3_0").contains("dead"));
}

#[test]
fn the_dead_unit_rule() {
    let relu = LayerInfo {
        name: "fc1",
        inputs: 4,
        outputs: 5,
        activation: "relu",
        kind: ActivationKind::Relu,
    };
    let leaky = LayerInfo {
        activation: "leaky_relu(0.2)",
        kind: ActivationKind::LeakyRelu(0.2),
        ..relu
    };
    let tanh = LayerInfo {
        activation: "tanh",
        kind: ActivationKind::Tanh,
        ..relu
    };
    assert!(is_dead(&relu, -0.0712_f32));
    assert!(is_dead(&relu, 0.0_f64));
    assert!(is_dead(&relu, -0.0_f64));
    assert!(!is_dead(&relu, 1e-30_f64));
    assert!(is_dead(&leaky, -1.0_f64));
    assert!(!is_dead(&leaky, 0.5_f64));
    assert!(!is_dead(&tanh, -1.0_f64));
    assert!(!is_dead(&relu, f64::NAN));
}

#[test]
fn explain_all_lists_every_entry_in_state_dict_order() {
    // The example of `explain_all`'s documentation.
    network! { struct Tiny < 2 => relu 2 => sigmoid 1 > }
    let net = Tiny::<f64>::init(1);
    let (x, y) = (
        SVector::<f64, 2>::new(0.5, -1.0),
        SVector::<f64, 1>::new(1.0),
    );
    let all = explain_all(&net, &x, &y, &Mse).unwrap();
    assert_eq!(all.len(), Tiny::<f64>::PARAMETERS);
    let names: Vec<&str> = all.iter().map(|e| e.entry.as_str()).collect();
    assert_eq!(
        names,
        [
            "fc1.weight[0][0]",
            "fc1.weight[0][1]",
            "fc1.weight[1][0]",
            "fc1.weight[1][1]",
            "fc1.bias[0]",
            "fc1.bias[1]",
            "fc2.weight[0][0]",
            "fc2.weight[0][1]",
            "fc2.bias[0]"
        ]
    );
    let mut ws = net.workspace();
    let mut grad = Tiny::zeros();
    net.backward(&x, &y, &Mse, &mut ws, &mut grad);
    assert!((all[0].value - grad.fc1.weight[(0, 0)]).abs() < 1e-12);
}

#[test]
fn the_seed_posts_entries_are_torchs_gradients() {
    let (net, x, y, fixture) = seed();
    let all = explain_all(&net, &x, &y, &Mse).unwrap();
    let find = |entry: &str| all.iter().find(|e| e.entry == entry).unwrap();
    let fc2 = numbers(&fixture["grads"]["fc2.weight"]);
    let fc3 = numbers(&fixture["grads"]["fc3.weight"]);
    assert!((find("fc2.weight[1][0]").value as f64 - fc2[5]).abs() < 1e-7);
    assert!((find("fc3.weight[0][1]").value as f64 - fc3[1]).abs() < 1e-7);
    assert_eq!(find("fc2.weight[1][0]").samples[0].factors.len(), 5);
}

/// The JSON a page embeds (`<script type="application/json" id="backprop-data">`), parsed.
fn embedded(html: &str) -> serde_json::Value {
    let open = "<script type=\"application/json\" id=\"backprop-data\">";
    let start = html.find(open).expect("the page embeds its data") + open.len();
    let end = html[start..]
        .find("</script>")
        .expect("the data's script ends")
        + start;
    serde_json::from_str(&html[start..end]).expect("the embedded data is JSON")
}

/// Every weight and bias entry's explanation embedded in `html` equals the gradient the backward
/// pass computes (to 1e-12 in f64), each sample's product of factors is that sample's value, and
/// the samples add up to the entry.
fn assert_page_explains_the_backward_pass<N, L, Y, const I: usize, const O: usize, const B: usize>(
    net: &N,
    x: &SMatrix<f64, I, B>,
    target: &Y,
    loss: &L,
    html: &str,
) where
    N: Model<I, O, Scalar = f64>,
    L: Loss<f64, O, B, Y>,
{
    let data = embedded(html);
    let explanations = data["explanations"].as_object().unwrap();
    assert_eq!(explanations.len(), N::PARAMETERS);
    let mut ws = net.workspace();
    let mut grad = N::zeros();
    net.backward(x, target, loss, &mut ws, &mut grad);
    let mut checked = 0;
    for param in grad.params() {
        let bias = param.name.ends_with(".bias");
        for row in 0..param.rows {
            for col in 0..param.cols {
                let entry = if bias {
                    format!("{}[{row}]", param.name)
                } else {
                    format!("{}[{row}][{col}]", param.name)
                };
                let explanation = &explanations[&entry];
                let value = explanation["value"].as_f64().expect(&entry);
                let g = param.get(row, col);
                assert!(
                    (value - g).abs() <= 1e-12,
                    "{entry}: the page explains {value:e}, backward computed {g:e}"
                );
                let samples = explanation["samples"].as_array().unwrap();
                assert_eq!(samples.len(), B, "{entry}");
                let mut sum = 0.0;
                for chain in samples {
                    let product: f64 = chain["factors"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f["value"].as_f64().unwrap())
                        .product();
                    let chain_value = chain["value"].as_f64().unwrap();
                    assert!(
                        (product - chain_value).abs() <= 1e-12 * chain_value.abs().max(1.0),
                        "{entry}: factors {product:e}, sample {chain_value:e}"
                    );
                    sum += chain_value;
                }
                assert!(
                    (sum - value).abs() <= 1e-12,
                    "{entry}: samples add to {sum:e}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, N::PARAMETERS);
    // The page's own copy of the backward pass's gradients is the same (serde_json may read a
    // decimal one ulp off, hence the relative 1e-15).
    for (k, info) in N::LAYERS.iter().enumerate() {
        let layer = &data["layers"][k];
        assert_eq!(layer["name"], info.name);
        let weight = grad.param(&format!("{}.weight", info.name)).unwrap();
        let rows = numbers(&layer["weight_grad"]);
        for r in 0..weight.rows {
            for c in 0..weight.cols {
                let (shown, g) = (rows[r * weight.cols + c], weight.get(r, c));
                assert!((shown - g).abs() <= 1e-15 * g.abs(), "{shown:e} {g:e}");
            }
        }
    }
}

/// A parity case of `tests/fixtures/parity.json`: its parameters loaded into `N`, its input and
/// its target (one column per sample).
fn parity_case<N: Network<Scalar = f64>, const IN: usize, const OUT: usize, const B: usize>(
    name: &str,
) -> (
    N,
    SMatrix<f64, IN, B>,
    SMatrix<f64, OUT, B>,
    serde_json::Value,
) {
    let all = fixture("parity.json");
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .clone();
    assert_eq!(case["dtype"], "float64");
    assert_eq!(case["batch"].as_u64().unwrap() as usize, B);
    let mut net = N::zeros();
    common::load_params(&mut net, &case["params"]);
    let x = common::columns(&SMatrix::zeros(), &case["input"]);
    let y = common::columns(&SMatrix::zeros(), &case["target"]);
    (net, x, y, case)
}

#[test]
fn the_seed_page_explains_every_entry_as_the_backward_pass_computes_it() {
    let (net, x, y, _) = seed();
    let (net, x, y) = (net.cast::<f64>(), x.cast::<f64>(), y.cast::<f64>());
    let html = to_html(&net, &x, &y, &Mse, "seed").unwrap();
    assert_page_explains_the_backward_pass(&net, &x, &y, &Mse, &html);
}

#[test]
fn a_softplus_page_explains_every_entry_as_the_backward_pass_computes_it() {
    network! { struct Softplus < 2 => softplus 4 => softplus 3 => 1 > }
    let (net, x, y, case) = parity_case::<Softplus<f64>, 2, 1, 1>("d3_softplus_sse_f64_b1");
    let html = to_html(&net, &x, &y, &Sse, "softplus").unwrap();
    assert_page_explains_the_backward_pass(&net, &x, &y, &Sse, &html);
    // And the gradients are PyTorch's.
    let data = embedded(&html);
    let torch = numbers(&case["grads"]["fc1.weight"]);
    let value = data["explanations"]["fc1.weight[3][1]"]["value"]
        .as_f64()
        .unwrap();
    assert!((value - torch[3 * 2 + 1]).abs() <= 1e-12 * torch[7].abs().max(1e-3));
}

#[test]
fn a_softmax_page_explains_every_entry_over_a_batch_as_the_backward_pass_computes_it() {
    network! { struct Softmax < 4 => tanh 5 => softmax 3 > }
    let (net, x, y, case) = parity_case::<Softmax<f64>, 4, 3, 3>("d2_softmax_mse_f64_b3");
    let html = to_html(&net, &x, &y, &Mse, "softmax").unwrap();
    assert_page_explains_the_backward_pass(&net, &x, &y, &Mse, &html);
    let data = embedded(&html);
    let torch = numbers(&case["grads"]["fc2.weight"]);
    let value = data["explanations"]["fc2.weight[1][3]"]["value"]
        .as_f64()
        .unwrap();
    assert!((value - torch[5 + 3]).abs() <= 1e-12);
    // The sample picker is there, one option per sample.
    assert_eq!(html.matches("<option value=").count(), 3);
}

#[test]
fn a_gelu_cross_entropy_page_explains_every_entry_as_the_backward_pass_computes_it() {
    network! { struct Gelu < 4 => gelu 6 => silu 5 => 3 > }
    let (net, x, y, _) = parity_case::<Gelu<f64>, 4, 3, 1>("d3_gelu_ce_prob_f64_b1");
    let html = to_html(&net, &x, &y, &CrossEntropy, "gelu").unwrap();
    assert_page_explains_the_backward_pass(&net, &x, &y, &CrossEntropy, &html);
}

#[test]
fn the_page_is_one_file_that_fetches_nothing() {
    let (net, x, y, _) = seed();
    let html = to_html(&net, &x, &y, &Mse, "a <title> & \"quotes\"").unwrap();
    for fetch in [
        "http:", "https:", "//cdn", "<link", " src=", "url(", "@import", "fetch(", "XMLHttp",
    ] {
        assert!(!html.contains(fetch), "the page contains `{fetch}`");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>a &lt;title&gt; &amp; &quot;quotes&quot;</title>"));
    // One drawing: an edge per weight (each clickable, with its entry), a bias per neuron.
    assert_eq!(html.matches(" id=\"e-").count(), 32);
    assert_eq!(html.matches(" id=\"b-").count(), 8);
    assert!(html.contains("data-entry=\"fc2.weight[1][0]\""));
    assert!(html.contains("data-entry=\"fc3.bias[0]\""));
    // Dead units for the sample: PyTorch's zero ReLU outputs, fc1[1], fc1[2], fc2[0].
    assert_eq!(html.matches("<g class=\"unit dead\"").count(), 3);
    for dead in ["u-1-1", "u-1-2", "u-2-0"] {
        assert!(html.contains(&format!("<g class=\"unit dead\" id=\"{dead}\"")));
    }
    // The data is JSON that a `</script>` in a label could not end early.
    let data = embedded(&html);
    assert_eq!(data["layers"].as_array().unwrap().len(), 3);
    assert_eq!(data["dead"], serde_json::Value::Null);
    assert_eq!(data["layers"][0]["dead"][0][1], true);
}
