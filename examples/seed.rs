//! The seed post's network, computed by the generated code: the 4-5-2-1 network with PyTorch's
//! parameters (torch.manual_seed(13)), one input, target 1, MSE loss. Prints the output, the loss,
//! every gradient the post prints, the post's two hand computations as chain-rule factors, a
//! picture of the network (`target/seed_network.dot`, and `.svg` when Graphviz is installed), and
//! the backward derivation the code follows.
//!
//! Run with `cargo run --example seed`. With `--html PATH` it also writes the page that explains
//! any gradient on click (`cargo run --example seed -- --html target/seed.html`, then open
//! `target/seed.html#fc2.weight[1][0]`).

use backprop::dot::{render, to_dot};
use backprop::explain::explain;
use backprop::page::to_html;
use backprop::prelude::*;
use serde_json::Value;

network! {
    /// The 4-5-2-1 network of the seed post.
    pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >
}

/// PyTorch's parameters, input and target for the seed network (inputs only: no expected output
/// is read from this file).
const FIXTURE: &str = include_str!("../tests/fixtures/seed_torch.json");

/// A number as the seed post prints it: four decimals, and zeros as `0` or `-0`.
fn show(value: f32) -> String {
    if value == 0.0 {
        if value.is_sign_negative() { "-0" } else { "0" }.to_owned()
    } else {
        format!("{value:.4}")
    }
}

/// A row of numbers as `[a, b, c]`.
fn show_row(values: impl IntoIterator<Item = f32>) -> String {
    let shown: Vec<String> = values.into_iter().map(show).collect();
    format!("[{}]", shown.join(", "))
}

/// Numbers from a JSON list, flattened.
fn numbers(value: &Value) -> Vec<f32> {
    match value {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        other => vec![other.as_f64().expect("a number") as f32],
    }
}

/// The path after `--html`, if the command line has one.
fn html_path() -> Option<std::path::PathBuf> {
    let mut args = std::env::args_os().skip(1);
    let arg = args.next()?;
    assert!(
        arg == "--html",
        "unknown argument {arg:?}; the only option is --html PATH"
    );
    let path = args.next().expect("--html needs a path");
    assert!(args.next().is_none(), "the only option is --html PATH");
    Some(path.into())
}

fn main() {
    let html = html_path();
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
    let target = SVector::<f32, 1>::new(1.0);

    let mut ws = net.workspace();
    let mut grad = Net::zeros();
    let loss = net.backward(&x, &target, &Mse, &mut ws, &mut grad);

    println!(
        "The seed network: {} inputs, {} parameters\n",
        Net::<f32>::INPUTS,
        Net::<f32>::PARAMETERS
    );
    println!("input            {}", show_row(x.iter().copied()));
    println!("fc1 output       {}", show_row(ws.fc1.a.iter().copied()));
    println!("fc2 output       {}", show_row(ws.fc2.a.iter().copied()));
    println!("output           {}", show(ws.fc3.a[0]));
    println!("loss (MSE)       {}\n", show(loss));
    println!(
        "fc3.weight.grad  {}",
        show_row(grad.fc3.weight.row(0).iter().copied())
    );
    println!(
        "fc3.bias.grad    {}",
        show_row(grad.fc3.bias.iter().copied())
    );
    for row in 0..2 {
        println!(
            "fc2.weight.grad[{row}] {}",
            show_row(grad.fc2.weight.row(row).iter().copied())
        );
    }
    println!(
        "fc2.bias.grad    {}",
        show_row(grad.fc2.bias.iter().copied())
    );
    for row in 0..5 {
        println!(
            "fc1.weight.grad[{row}] {}",
            show_row(grad.fc1.weight.row(row).iter().copied())
        );
    }
    println!(
        "fc1.bias.grad    {}\n",
        show_row(grad.fc1.bias.iter().copied())
    );

    println!("The seed post's two hand computations, factor by factor:\n");
    for (name, row, col) in [("fc3.weight", 0, 1), ("fc2.weight", 1, 0)] {
        let explanation =
            explain(&net, &x, &target, &Mse, name, row, col).expect("a parameter of Net");
        println!("{explanation}");
    }

    let picture = to_dot(&net, &x, &target, &Mse);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).expect("target/ is writable");
    let dot_path = dir.join("seed_network.dot");
    std::fs::write(&dot_path, &picture).expect("target/ is writable");
    match render(&picture, &dir.join("seed_network.svg")) {
        Ok(true) => println!("picture: {} (and .svg)\n", dot_path.display()),
        Ok(false) => println!(
            "picture: {} (install Graphviz's `dot` to render it)\n",
            dot_path.display()
        ),
        Err(error) => println!("picture: {} ({error})\n", dot_path.display()),
    }

    if let Some(path) = html {
        let page = to_html(
            &net,
            &x,
            &target,
            &Mse,
            "The seed network: 4 => relu 5 => relu 2 => sigmoid 1, MSE against target 1",
        )
        .expect("every activation of Net can be explained");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).expect("the page's folder can be made");
        }
        std::fs::write(&path, page).expect("the page can be written");
        println!(
            "page: {} (open it with #fc2.weight[1][0] to start on the post's entry)\n",
            path.display()
        );
    }

    Sgd::new(0.1).step(&mut net, &grad);
    println!(
        "after one SGD step (lr 0.1): output {}\n",
        show(net.forward(&x)[0])
    );
    println!(
        "How the backward pass was derived, layer by layer:\n\n{}",
        Net::<f32>::DERIVATION
    );
}
