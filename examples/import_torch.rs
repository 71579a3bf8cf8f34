//! Weights from PyTorch: loads the safetensors files that `scripts/gen_safetensors_fixtures.py`
//! wrote with `safetensors.torch.save_file(model.state_dict(), ...)`, evaluates them, and prints
//! PyTorch's outputs (recorded by the same script) beside ours.
//!
//! Run with `cargo run --example import_torch`.
//!
//! The other direction: `cargo run --example import_torch -- --export DIR` also saves two
//! Rust-initialized networks to `DIR` (one under our names in F32, one under `nn.Sequential` names
//! in F64), with their architecture, a few inputs and our outputs in the files' metadata; then
//! `python3 scripts/gen_safetensors_fixtures.py --check DIR/*.safetensors` loads them in PyTorch
//! and compares PyTorch's outputs with ours.

use std::path::{Path, PathBuf};

use backprop::io::{self, Dtype, LoadOptions, Rename, SaveOptions};
use backprop::prelude::*;
use backprop::scalar::{constant, to_f64};
use backprop::LayerInfo;
use serde_json::Value;

network! {
    /// The seed architecture; PyTorch's module has attributes fc1, fc2, fc3.
    pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 >
}

network! {
    /// `nn.Sequential(Linear(3, 8), ReLU(), Linear(8, 6), Tanh(), Linear(6, 2))`.
    pub struct Seq < 3 => relu 8 => tanh 6 => 2 >
}

/// `tests/fixtures/{name}`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// The fixture script's record of the model called `name`.
fn record<'a>(all: &'a Value, name: &str) -> &'a Value {
    all["models"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no model {name} in torch_safetensors.json"))
}

/// A JSON list of numbers as `f64`s.
fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// Evaluates `forward` on the record's inputs and prints PyTorch's outputs beside ours; returns
/// the largest relative difference.
fn compare<T: Scalar, const IN: usize, const OUT: usize>(
    record: &Value,
    forward: impl Fn(&SVector<T, IN>) -> SVector<T, OUT>,
) -> f64 {
    let mut worst: f64 = 0.0;
    let inputs = record["inputs"].as_array().cloned().unwrap_or_default();
    for (s, input) in inputs.iter().enumerate() {
        let x = SVector::<T, IN>::from_iterator(floats(input).into_iter().map(constant));
        let ours = forward(&x);
        let torch = floats(&record["outputs"][s]);
        let shown: Vec<String> = floats(input).iter().map(|v| format!("{v:+.3}")).collect();
        println!("  x = [{}]", shown.join(", "));
        for (k, &expected) in torch.iter().enumerate() {
            let found = to_f64(ours[k]);
            let relative = (found - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
            worst = worst.max(relative);
            println!("      y[{k}]  PyTorch {expected:+.9}   backprop {found:+.9}   rel. diff {relative:.1e}");
        }
    }
    worst
}

/// The architecture in the `network!` notation with layer names: `4 => fc1: relu 5 => ...`.
fn architecture(inputs: usize, layers: &[LayerInfo]) -> String {
    let mut text = inputs.to_string();
    for layer in layers {
        text += &format!(" => {}: {} {}", layer.name, layer.activation, layer.outputs);
    }
    text
}

/// Saves `net` with its architecture, `inputs` and our outputs for them in the metadata.
fn export<T: Scalar, N: Network<Scalar = T>, const IN: usize, const OUT: usize>(
    net: &N,
    forward: impl Fn(&SVector<T, IN>) -> SVector<T, OUT>,
    inputs: &[[f64; IN]],
    path: &Path,
    options: SaveOptions<'_>,
) -> Result<(), io::WeightsError> {
    let outputs: Vec<Vec<f64>> = inputs
        .iter()
        .map(|x| {
            let x = SVector::<T, IN>::from_iterator(x.iter().map(|&v| constant(v)));
            forward(&x).iter().map(|&v| to_f64(v)).collect()
        })
        .collect();
    let options = options
        .metadata("backprop.architecture", architecture(IN, N::LAYERS))
        .metadata(
            "backprop.inputs",
            serde_json::to_string(&inputs.iter().map(|x| x.to_vec()).collect::<Vec<_>>()).unwrap(),
        )
        .metadata("backprop.outputs", serde_json::to_string(&outputs).unwrap());
    io::save_with(net, path, &options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let json = std::fs::read_to_string(fixture("torch_safetensors.json"))?;
    let all: Value = serde_json::from_str(&json)?;
    println!(
        "Networks PyTorch {} saved with safetensors.torch.save_file:\n",
        all["torch_version"]
    );

    // A module with named layers: the file's names are ours.
    let seed: Seed = io::load_new(fixture("torch_seed_f32.safetensors"), &LoadOptions::new())?;
    println!("torch_seed_f32.safetensors → Seed<f32> (4 => relu 5 => relu 2 => sigmoid 1)");
    let worst_seed = compare(record(&all, "seed_f32"), |x| seed.forward(x));

    // An nn.Sequential: Linear layers at modules 0, 2, 4, activations in between.
    let sequential = LoadOptions::new().rename(Rename::Sequential);
    let seq: Seq = io::load_new(fixture("torch_sequential_f32.safetensors"), &sequential)?;
    println!("\ntorch_sequential_f32.safetensors (0.weight, 2.weight, 4.weight) → Seq<f32>");
    let worst_seq = compare(record(&all, "sequential_f32"), |x| seq.forward(x));

    // A float64 file, in an f64 network.
    let seq64: Seq<f64> = io::load_new(fixture("torch_sequential_f64.safetensors"), &sequential)?;
    println!("\ntorch_sequential_f64.safetensors → Seq<f64>");
    let worst_seq64 = compare(record(&all, "sequential_f64"), |x| seq64.forward(x));

    println!(
        "\nlargest relative difference: {worst_seed:.1e} (seed, f32), {worst_seq:.1e} (sequential, f32), {worst_seq64:.1e} (sequential, f64)"
    );

    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--export") {
        let dir = PathBuf::from(args.get(i + 1).ok_or("--export needs a directory")?);
        std::fs::create_dir_all(&dir)?;
        let seed_path = dir.join("rust_seed_f32.safetensors");
        let seed = Seed::<f32>::init(2024);
        let inputs = [
            [0.5, -1.0, 0.25, 2.0],
            [1.5, 0.3, -0.7, 0.1],
            [-2.0, 1.0, 1.0, -0.5],
        ];
        export(
            &seed,
            |x| seed.forward(x),
            &inputs,
            &seed_path,
            SaveOptions::new(),
        )?;

        let seq_path = dir.join("rust_sequential_f64.safetensors");
        let seq = Seq::<f64>::init(2025);
        let inputs = [[0.5, -1.0, 0.25], [1.5, 0.3, -0.7], [-2.0, 1.0, 1.0]];
        let options = SaveOptions::new()
            .rename(Rename::Sequential)
            .dtype(Dtype::F64);
        export(&seq, |x| seq.forward(x), &inputs, &seq_path, options)?;

        println!("\nsaved {} and {}", seed_path.display(), seq_path.display());
        println!(
            "check them in PyTorch: python3 scripts/gen_safetensors_fixtures.py --check {} {}",
            seed_path.display(),
            seq_path.display()
        );
    }
    Ok(())
}
