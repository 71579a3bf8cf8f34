//! Weight files (`backprop::io`): Rust save then load gives the same bits (f32 and f64); files
//! PyTorch wrote (`tests/fixtures/torch_*.safetensors`, from `scripts/gen_safetensors_fixtures.py`)
//! load under their state_dict names and give PyTorch's outputs; every failure names the tensor,
//! says what was expected and found, and leaves the network exactly as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{assert_close, fixture, numbers, row};
use backprop::io::safetensors::tensor::TensorView;
use backprop::io::safetensors::{self, SafeTensors};
use backprop::io::{self, Dtype, LoadOptions, Rename, SaveOptions, WeightsError};
use backprop::prelude::*;
use backprop::scalar::{constant, to_f64};
use serde_json::Value;

network! {
    /// The seed post's architecture, as PyTorch's module with attributes fc1, fc2, fc3.
    pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 >
}

network! {
    /// `nn.Sequential(Linear(3, 8), ReLU(), Linear(8, 6), Tanh(), Linear(6, 2))`.
    pub struct Seq < 3 => relu 8 => tanh 6 => 2 >
}

network! {
    /// Layers without an activation take one `nn.Sequential` slot, not two.
    pub struct Mixed < 3 => 4 => tanh 2 => 1 >
}

// ----------------------------------------------------------------------------------------------
// Helpers.
// ----------------------------------------------------------------------------------------------

/// A fresh, empty directory for one test under Cargo's temporary directory for tests.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("io").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Every parameter entry's bits (through f64, which keeps an f32's bits), in parameter order.
fn bits<N: Network>(net: &N) -> Vec<(&'static str, Vec<u64>)> {
    net.params()
        .map(|p| {
            (
                p.name,
                p.values.iter().map(|&v| to_f64(v).to_bits()).collect(),
            )
        })
        .collect()
}

/// Asserts two networks hold the same bits in every parameter.
fn assert_same_bits<N: Network>(found: &N, expected: &N, what: &str) {
    for ((name, a), (_, b)) in bits(found).into_iter().zip(bits(expected)) {
        assert!(
            a == b,
            "{what}: {name} differs\n found    {a:x?}\n expected {b:x?}"
        );
    }
}

/// The tensors of a safetensors file by name: dtype, shape, raw bytes.
type Entries = BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>;

/// Parses a file with the safetensors crate alone (an oracle independent of `backprop::io`).
fn entries(bytes: &[u8]) -> Entries {
    let file = SafeTensors::deserialize(bytes).expect("a valid file");
    file.iter()
        .map(|(name, view)| {
            let entry = (view.dtype(), view.shape().to_vec(), view.data().to_vec());
            (name.to_string(), entry)
        })
        .collect()
}

/// Writes tensors as a safetensors file with the safetensors crate alone.
fn encode(entries: &Entries) -> Vec<u8> {
    let views = entries.iter().map(|(name, (dtype, shape, data))| {
        let view = TensorView::new(*dtype, shape.clone(), data).expect("consistent tensor");
        (name.clone(), view)
    });
    safetensors::serialize(views, None).expect("serializable")
}

/// A seed network's file, edited by `edit`.
fn edited(edit: impl FnOnce(&mut Entries)) -> Vec<u8> {
    let source = Seed::<f32>::init(1);
    let mut tensors = entries(&io::to_bytes(&source, &SaveOptions::new()).unwrap());
    edit(&mut tensors);
    encode(&tensors)
}

/// Writes `bytes` to a file, loads it into a seed network, and returns the error, asserting
/// that the load failed and left every parameter bit as it was.
fn load_fails(test: &str, bytes: &[u8], options: &LoadOptions<'_>) -> (WeightsError, String) {
    let path = scratch(test).join("weights.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let mut net = Seed::<f32>::init(2);
    let before = net.clone();
    let error = io::load_with(&mut net, &path, options).expect_err("the load must fail");
    assert_same_bits(
        &net,
        &before,
        &format!("{test}: a failed load changed the network"),
    );
    let message = error.to_string();
    println!("{test}: {message}");
    (error, message)
}

/// Asserts `message` contains every piece.
fn assert_mentions(message: &str, pieces: &[&str]) {
    for piece in pieces {
        assert!(
            message.contains(piece),
            "the message should mention {piece:?}:\n{message}"
        );
    }
}

/// A network whose parameters include the awkward values: signed zeros, subnormals, extremes,
/// infinities and NaN.
fn awkward<T: Scalar>(specials: &[T]) -> Seed<T> {
    let mut net = Seed::<T>::init(7);
    for (param, &value) in net.params_mut().zip(specials.iter().cycle()) {
        param.values[0] = value;
    }
    net
}

// ----------------------------------------------------------------------------------------------
// Round trips.
// ----------------------------------------------------------------------------------------------

#[test]
fn save_then_load_gives_identical_bits_in_f32() {
    let net = awkward::<f32>(&[
        -0.0,
        f32::MIN_POSITIVE / 8.0,
        f32::MAX,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::EPSILON,
    ]);
    let path = scratch("round_trip_f32").join("seed.safetensors");
    io::save(&net, &path).unwrap();
    let mut back = Seed::<f32>::init(99);
    io::load(&mut back, &path).unwrap();
    assert_same_bits(&back, &net, "f32 round trip");
    // The file on disk is the in-memory encoding.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes, io::to_bytes(&net, &SaveOptions::new()).unwrap());
    assert!(entries(&bytes)
        .values()
        .all(|(dtype, _, _)| *dtype == safetensors::Dtype::F32));
}

#[test]
fn save_then_load_gives_identical_bits_in_f64() {
    let net = awkward::<f64>(&[
        -0.0,
        f64::MIN_POSITIVE / 1024.0,
        f64::MAX,
        f64::INFINITY,
        f64::NAN,
        1.0 + f64::EPSILON,
    ]);
    let path = scratch("round_trip_f64").join("seed.safetensors");
    io::save(&net, &path).unwrap();
    let back: Seed<f64> = io::load_new(&path, &LoadOptions::new()).unwrap();
    assert_same_bits(&back, &net, "f64 round trip");
    let tensors = entries(&std::fs::read(&path).unwrap());
    assert!(tensors
        .values()
        .all(|(dtype, _, _)| *dtype == safetensors::Dtype::F64));
}

#[test]
fn the_file_holds_pytorch_names_shapes_and_row_major_values() {
    let net = Seed::<f32>::init(5);
    let tensors = entries(&io::to_bytes(&net, &SaveOptions::new()).unwrap());
    let names: Vec<&str> = tensors.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "fc1.bias",
            "fc1.weight",
            "fc2.bias",
            "fc2.weight",
            "fc3.bias",
            "fc3.weight"
        ]
    );
    let (_, shape, data) = &tensors["fc1.weight"];
    assert_eq!(shape, &[5, 4]);
    // weight[o][i] is the (o * 4 + i)-th float, as torch.Tensor.contiguous() stores it.
    for o in 0..5 {
        for i in 0..4 {
            let k = 4 * (o * 4 + i);
            let stored = f32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            assert_eq!(
                stored.to_bits(),
                net.fc1.weight[(o, i)].to_bits(),
                "[{o}][{i}]"
            );
        }
    }
    assert_eq!(tensors["fc2.bias"].1, [2]);
    assert_eq!(tensors["fc3.weight"].1, [1, 2]);
    let (_, _, data) = &tensors["fc2.bias"];
    assert_eq!(data[4..8], net.fc2.bias[1].to_le_bytes());
}

#[test]
fn dtypes_convert_on_save_and_on_load() {
    // f32 network, F64 file: exact both ways.
    let net = awkward::<f32>(&[-0.0, f32::MIN_POSITIVE / 8.0, f32::MAX, 0.1]);
    let bytes = io::to_bytes(&net, &SaveOptions::new().dtype(Dtype::F64)).unwrap();
    assert!(entries(&bytes)
        .values()
        .all(|(d, _, _)| *d == safetensors::Dtype::F64));
    let mut back = Seed::<f32>::zeros();
    io::from_bytes(&mut back, &bytes, &LoadOptions::new()).unwrap();
    assert_same_bits(&back, &net, "f32 → F64 → f32");
    let mut wide = Seed::<f64>::zeros();
    io::from_bytes(&mut wide, &bytes, &LoadOptions::new()).unwrap();
    assert_same_bits(&wide, &net.cast::<f64>(), "f32 → F64 → f64");

    // f64 network, F32 file: rounded to nearest, as `tensor.float()` rounds.
    let net = Seed::<f64>::init(3);
    let bytes = io::to_bytes(&net, &SaveOptions::new().dtype(Dtype::F32)).unwrap();
    let mut narrow = Seed::<f32>::zeros();
    io::from_bytes(&mut narrow, &bytes, &LoadOptions::new()).unwrap();
    // `cast` converts with `as f32`, which rounds to nearest.
    let rounded = net.cast::<f32>();
    assert_same_bits(&narrow, &rounded, "f64 → F32 → f32");
}

#[test]
fn saving_replaces_the_file_atomically_and_leaves_nothing_behind() {
    let dir = scratch("atomic");
    let path = dir.join("net.safetensors");
    let first = Seed::<f32>::init(1);
    let second = Seed::<f32>::init(2);
    io::save(&first, &path).unwrap();
    io::save(&second, &path).unwrap();
    let loaded: Seed = io::load_new(&path, &LoadOptions::new()).unwrap();
    assert_same_bits(&loaded, &second, "the second save replaced the first");
    let listing: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        listing,
        ["net.safetensors"],
        "no temporary file is left behind"
    );
}

#[test]
fn a_failed_save_reports_the_path_and_removes_its_temporary_file() {
    let dir = scratch("failed_save");
    // The target is a directory: the temporary file is written, the rename over it fails.
    let target = dir.join("occupied");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let error = io::save(&Seed::<f32>::init(1), &target).unwrap_err();
    let message = error.to_string();
    println!("{message}");
    assert!(matches!(
        error,
        WeightsError::Io {
            action: "replace",
            ..
        }
    ));
    assert_mentions(&message, &["cannot replace", "occupied"]);
    let listing: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(listing, ["occupied"], "the temporary file was removed");
    assert!(target.join("keep").exists());

    // The directory does not exist: nothing can be created.
    let missing = dir.join("no_such_dir").join("w.safetensors");
    let error = io::save(&Seed::<f32>::init(1), &missing).unwrap_err();
    assert_mentions(
        &error.to_string(),
        &["cannot create a temporary file beside", "no_such_dir"],
    );
}

// ----------------------------------------------------------------------------------------------
// Files written by PyTorch.
// ----------------------------------------------------------------------------------------------

/// The fixture record called `name` and the bytes of its file.
fn torch_model(name: &str) -> (Value, Vec<u8>) {
    let all = fixture("torch_safetensors.json");
    let record = all["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no model {name}"))
        .clone();
    let path = format!(
        "{}/tests/fixtures/{}",
        env!("CARGO_MANIFEST_DIR"),
        record["file"].as_str().unwrap()
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    (record, bytes)
}

/// Asserts every parameter equals the fixture's tensor (read under `rename`) exactly, after
/// conversion to `T`.
fn assert_params_equal_fixture<N: Network>(net: &N, record: &Value, rename: Rename<'_>) {
    for param in net.params() {
        let tensor = &record["tensors"][rename.apply(N::LAYERS, param.name)];
        let values = numbers(&tensor["values"]);
        assert_eq!(values.len(), param.rows * param.cols, "{}", param.name);
        for r in 0..param.rows {
            for c in 0..param.cols {
                // serde_json (without its float_roundtrip feature) may read a float64 one unit in
                // the last place off; a float32 value survives that exactly.
                let expected: N::Scalar = constant(values[r * param.cols + c]);
                let (found, expected) = (to_f64(param.get(r, c)), to_f64(expected));
                assert!(
                    found.to_bits().abs_diff(expected.to_bits()) <= 1,
                    "{}[{r}][{c}]: found {found:e}, PyTorch has {expected:e}",
                    param.name
                );
            }
        }
    }
}

/// Asserts the network's outputs on the fixture's inputs match PyTorch's.
fn assert_outputs_match<T: Scalar, const IN: usize, const OUT: usize>(
    what: &str,
    forward: impl Fn(&SVector<T, IN>) -> SVector<T, OUT>,
    record: &Value,
    rtol: f64,
    atol: f64,
) {
    let inputs = record["inputs"].as_array().unwrap();
    assert!(inputs.len() >= 4);
    for (s, input) in inputs.iter().enumerate() {
        let x = SVector::<T, IN>::from_iterator(numbers(input).into_iter().map(constant));
        let y = forward(&x);
        let expected = row(&record["outputs"], s);
        assert_eq!(expected.len(), OUT);
        for (k, &e) in expected.iter().enumerate() {
            let found = to_f64(y[k]);
            assert_close(
                &format!("{what} sample {s} output {k}"),
                found,
                e,
                rtol,
                atol,
            );
        }
    }
}

#[test]
fn a_pytorch_module_with_named_layers_loads_and_matches_pytorch() {
    let (record, bytes) = torch_model("seed_f32");
    assert_eq!(record["architecture"], "4 => relu 5 => relu 2 => sigmoid 1");
    let mut net = Seed::<f32>::zeros();
    let loaded = io::from_bytes(&mut net, &bytes, &LoadOptions::new()).unwrap();
    assert!(loaded.metadata.is_empty(), "save_file wrote no metadata");
    assert!(loaded.ignored.is_empty());
    assert_params_equal_fixture(&net, &record, Rename::Identity);
    assert_outputs_match("seed f32", |x| net.forward(x), &record, 1e-6, 1e-9);
}

#[test]
fn an_nn_sequential_file_loads_with_sequential_names_and_matches_pytorch() {
    let (record, bytes) = torch_model("sequential_f32");
    let options = LoadOptions::new().rename(Rename::Sequential);
    let mut net = Seq::<f32>::zeros();
    io::from_bytes(&mut net, &bytes, &options).unwrap();
    assert_params_equal_fixture(&net, &record, Rename::Sequential);
    assert_outputs_match("sequential f32", |x| net.forward(x), &record, 1e-6, 1e-9);

    // The same names, spelled out.
    let mut again = Seq::<f32>::zeros();
    let at = LoadOptions::new().rename(Rename::SequentialAt(&[0, 2, 4]));
    io::from_bytes(&mut again, &bytes, &at).unwrap();
    assert_same_bits(&again, &net, "SequentialAt(&[0, 2, 4])");
}

#[test]
fn a_float64_pytorch_file_loads_into_f64_and_f32_networks() {
    let (record, bytes) = torch_model("sequential_f64");
    let options = LoadOptions::new().rename(Rename::Sequential);
    let mut net = Seq::<f64>::zeros();
    io::from_bytes(&mut net, &bytes, &options).unwrap();
    assert_params_equal_fixture(&net, &record, Rename::Sequential);
    assert_outputs_match("sequential f64", |x| net.forward(x), &record, 1e-12, 1e-15);

    // Rounded to f32 on load: equal to the f64 network cast, and close to PyTorch's outputs.
    let mut narrow = Seq::<f32>::zeros();
    io::from_bytes(&mut narrow, &bytes, &options).unwrap();
    assert_params_equal_fixture(&narrow, &record, Rename::Sequential);
    assert_outputs_match(
        "sequential f64 in f32",
        |x| narrow.forward(x),
        &record,
        1e-5,
        1e-6,
    );
}

// ----------------------------------------------------------------------------------------------
// Renaming.
// ----------------------------------------------------------------------------------------------

#[test]
fn renamings_map_names_both_ways() {
    let layers = Mixed::<f32>::LAYERS;
    // An identity layer has no activation module after it: modules 0 (Linear), 1 (Linear),
    // 2 (Tanh), 3 (Linear).
    let sequential: Vec<String> = ["fc1.weight", "fc2.bias", "fc3.weight"]
        .iter()
        .map(|n| Rename::Sequential.apply(layers, n))
        .collect();
    assert_eq!(sequential, ["0.weight", "1.bias", "3.weight"]);
    assert_eq!(
        Rename::SequentialAt(&[0, 3]).apply(layers, "fc2.weight"),
        "3.weight"
    );
    assert_eq!(
        Rename::SequentialAt(&[0, 3]).apply(layers, "fc3.weight"),
        "fc3.weight"
    );
    assert_eq!(
        Rename::Prefix("model.").apply(layers, "fc1.bias"),
        "model.fc1.bias"
    );

    let pairs = [("fc1.weight", "in.weight"), ("fc1.bias", "in.bias")];
    let upper = |name: &str| name.to_uppercase();
    for (rename, first) in [
        (Rename::Sequential, "0.weight"),
        (Rename::SequentialAt(&[1, 5, 9]), "1.weight"),
        (Rename::Prefix("net."), "net.fc1.weight"),
        (Rename::Map(&pairs), "in.weight"),
        (Rename::With(&upper), "FC1.WEIGHT"),
    ] {
        let net = Mixed::<f64>::init(4);
        let bytes = io::to_bytes(&net, &SaveOptions::new().rename(rename)).unwrap();
        let tensors = entries(&bytes);
        assert!(
            tensors.contains_key(first),
            "{rename:?}: {:?}",
            tensors.keys()
        );
        assert_eq!(tensors.len(), 6);
        let mut back = Mixed::<f64>::zeros();
        io::from_bytes(&mut back, &bytes, &LoadOptions::new().rename(rename)).unwrap();
        assert_same_bits(&back, &net, &format!("{rename:?}"));
    }
}

#[test]
fn metadata_is_written_and_read() {
    let options = SaveOptions::new()
        .metadata(
            "backprop.architecture",
            "4 => relu 5 => relu 2 => sigmoid 1",
        )
        .metadata("format", "pt");
    let bytes = io::to_bytes(&Seed::<f32>::init(1), &options).unwrap();
    let loaded = io::from_bytes(&mut Seed::<f32>::zeros(), &bytes, &LoadOptions::new()).unwrap();
    assert_eq!(loaded.metadata["format"], "pt");
    assert_eq!(
        loaded.metadata["backprop.architecture"],
        "4 => relu 5 => relu 2 => sigmoid 1"
    );
}

// ----------------------------------------------------------------------------------------------
// Every failure: the message names the tensor, expected and found; the network is unchanged.
// ----------------------------------------------------------------------------------------------

#[test]
fn a_missing_tensor_is_named_with_its_expected_shape() {
    let bytes = edited(|t| {
        t.remove("fc3.bias");
    });
    let (error, message) = load_fails("missing", &bytes, &LoadOptions::new());
    assert!(matches!(
        error,
        WeightsError::Missing {
            param: "fc3.bias",
            ..
        }
    ));
    assert_mentions(
        &message,
        &[
            "missing tensor `fc3.bias`",
            "expected a tensor of shape [1]",
            "found none among the file's 5",
            "`fc3.weight`",
        ],
    );
}

#[test]
fn a_sequential_file_without_renaming_says_so() {
    let (_, bytes) = torch_model("sequential_f32");
    let path = scratch("sequential_unrenamed").join("w.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let mut net = Seq::<f32>::init(1);
    let before = net.clone();
    let message = io::load(&mut net, &path).unwrap_err().to_string();
    println!("{message}");
    assert_same_bits(&net, &before, "unchanged");
    assert_mentions(
        &message,
        &[
            "missing tensor `fc1.weight`",
            "expected a tensor of shape [8, 3]",
            "`0.weight`",
            "Rename::Sequential",
        ],
    );

    // Renamed, the message gives both names.
    let options = LoadOptions::new().rename(Rename::Prefix("model."));
    let (_, message) = load_fails("missing_renamed", &edited(|_| {}), &options);
    assert_mentions(
        &message,
        &[
            "missing tensor `model.fc1.weight` (the network's `fc1.weight`)",
            "expected a tensor of shape [5, 4]",
        ],
    );
}

#[test]
fn extra_tensors_are_an_error_unless_allowed() {
    let bytes = edited(|t| {
        t.insert(
            "fc4.weight".into(),
            (safetensors::Dtype::F32, vec![1, 1], vec![0; 4]),
        );
        t.insert(
            "num_batches_tracked".into(),
            (safetensors::Dtype::I64, vec![], vec![0; 8]),
        );
    });
    let (error, message) = load_fails("extra", &bytes, &LoadOptions::new());
    assert!(matches!(error, WeightsError::Unexpected { .. }));
    assert_mentions(
        &message,
        &[
            "unexpected tensors `fc4.weight`, `num_batches_tracked`",
            "expected only the network's 6 tensors",
            "`fc1.weight`",
            "allow_extra(true)",
        ],
    );

    let mut net = Seed::<f32>::zeros();
    let loaded = io::from_bytes(&mut net, &bytes, &LoadOptions::new().allow_extra(true)).unwrap();
    assert_eq!(loaded.ignored, ["fc4.weight", "num_batches_tracked"]);
    assert_same_bits(&net, &Seed::<f32>::init(1), "loaded despite the extras");
}

#[test]
fn a_wrong_shape_is_named_with_expected_and_found() {
    // fc3's weight stored transposed ([in, out]): the last parameter, so a partial load would show.
    let bytes = edited(|t| t.get_mut("fc3.weight").unwrap().1 = vec![2, 1]);
    let (error, message) = load_fails("shape", &bytes, &LoadOptions::new());
    assert!(matches!(
        error,
        WeightsError::Shape {
            param: "fc3.weight",
            ..
        }
    ));
    assert_mentions(
        &message,
        &["tensor `fc3.weight`", "expected [1, 2], found [2, 1]"],
    );

    // A bias saved as a column.
    let bytes = edited(|t| t.get_mut("fc2.bias").unwrap().1 = vec![2, 1]);
    let (_, message) = load_fails("bias_shape", &bytes, &LoadOptions::new());
    assert_mentions(
        &message,
        &["tensor `fc2.bias`", "expected [2], found [2, 1]"],
    );
}

#[test]
fn an_unsupported_dtype_is_named() {
    for (dtype, size, spelled) in [
        (safetensors::Dtype::F8_E4M3, 1, "found F8_E4M3"),
        (safetensors::Dtype::I16, 2, "found I16"),
        (safetensors::Dtype::I64, 8, "found I64"),
    ] {
        let bytes = edited(|t| {
            let entry = t.get_mut("fc3.bias").unwrap();
            *entry = (dtype, vec![1], vec![0; size]);
        });
        let (error, message) = load_fails("dtype", &bytes, &LoadOptions::new());
        assert!(matches!(
            error,
            WeightsError::Dtype {
                param: "fc3.bias",
                ..
            }
        ));
        assert_mentions(
            &message,
            &[
                "tensor `fc3.bias`",
                "expected F32, F64, F16 or BF16",
                spelled,
            ],
        );
    }
}

#[test]
fn a_renaming_that_merges_names_is_an_error_on_load_and_save() {
    let last_dot = |name: &str| name.rsplit('.').next().unwrap().to_string();
    let options = LoadOptions::new().rename(Rename::With(&last_dot));
    let (error, message) = load_fails("clash", &edited(|_| {}), &options);
    assert!(matches!(error, WeightsError::NameClash { .. }));
    assert_mentions(
        &message,
        &[
            "`fc1.weight`",
            "`fc2.weight`",
            "tensor `weight`",
            "expected one tensor name per parameter",
        ],
    );
    let save = SaveOptions::new().rename(Rename::With(&last_dot));
    let error = io::to_bytes(&Seed::<f32>::init(1), &save).unwrap_err();
    assert!(matches!(error, WeightsError::NameClash { .. }));
}

#[test]
fn a_file_cut_inside_a_tensor_names_that_tensor() {
    let full = io::to_bytes(&Seed::<f32>::init(1), &SaveOptions::new()).unwrap();
    // The data is sorted by name: fc3.weight comes last.
    let cut = &full[..full.len() - 3];
    let (error, message) = load_fails("truncated_data", cut, &LoadOptions::new());
    assert!(matches!(error, WeightsError::Truncated { .. }));
    assert_mentions(
        &message,
        &[
            "weights.safetensors` is truncated",
            &format!("expected at least {} bytes", full.len()),
            "to the end of tensor `fc3.weight`",
            &format!("found {}", cut.len()),
        ],
    );

    // Cut inside fc1.weight: the first tensor that does not fit is named.
    let header = 8 + u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    let cut = &full[..header + 30];
    let (_, message) = load_fails("truncated_fc1", cut, &LoadOptions::new());
    assert_mentions(&message, &["to the end of tensor `fc1.weight`"]);
}

#[test]
fn a_file_cut_inside_its_header_says_how_long_it_should_be() {
    let full = io::to_bytes(&Seed::<f32>::init(1), &SaveOptions::new()).unwrap();
    let header = 8 + u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    let (_, message) = load_fails("truncated_header", &full[..40], &LoadOptions::new());
    assert_mentions(
        &message,
        &[
            "is truncated",
            &format!("expected at least {header} bytes (to the end of the header), found 40"),
        ],
    );
    let (_, message) = load_fails("truncated_length", &full[..5], &LoadOptions::new());
    assert_mentions(
        &message,
        &["expected at least 8 bytes (the header's length), found 5"],
    );
}

#[test]
fn a_corrupt_file_is_reported_with_its_path_and_the_tensor_when_known() {
    let full = io::to_bytes(&Seed::<f32>::init(1), &SaveOptions::new()).unwrap();
    let header_end = 8 + u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&full[8..header_end])
        .unwrap()
        .to_string();

    // Offsets that do not follow one another: the tensor is named.
    let start = header.find("\"fc1.weight\"").unwrap();
    let offsets = start + header[start..].find("data_offsets\":[").unwrap() + 15;
    let close = offsets + header[offsets..].find(']').unwrap();
    let (s, e) = header[offsets..close].split_once(',').unwrap();
    let (s, e): (usize, usize) = (s.parse().unwrap(), e.parse().unwrap());
    let bad = format!("{},{}", s + 4, e + 4);
    let new_header = format!("{}{}{}", &header[..offsets], bad, &header[close..]);
    let mut bytes = (new_header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(new_header.as_bytes());
    bytes.extend_from_slice(&full[header_end..]);
    let (error, message) = load_fails("bad_offsets", &bytes, &LoadOptions::new());
    assert!(matches!(error, WeightsError::Corrupt { .. }));
    assert_mentions(
        &message,
        &[
            "weights.safetensors` is not a valid safetensors file",
            "tensor `fc1.weight`",
        ],
    );

    // A header that is not JSON.
    let mut bytes = full.clone();
    bytes[8] = b'[';
    let (_, message) = load_fails("bad_json", &bytes, &LoadOptions::new());
    assert_mentions(&message, &["is not a valid safetensors file", "JSON"]);

    // Bytes after the last tensor.
    let mut bytes = full.clone();
    bytes.extend_from_slice(&[0; 4]);
    let (_, message) = load_fails("trailing", &bytes, &LoadOptions::new());
    assert_mentions(
        &message,
        &[
            "is not a valid safetensors file",
            "4 bytes follow the end of the last tensor's data",
            &format!("expected the file to end at byte {}", full.len()),
        ],
    );
}

#[test]
fn an_unreadable_file_names_its_path() {
    let path = scratch("unreadable").join("absent.safetensors");
    let mut net = Seed::<f32>::init(1);
    let before = net.clone();
    let error = io::load(&mut net, &path).unwrap_err();
    assert_same_bits(&net, &before, "unchanged");
    assert!(matches!(error, WeightsError::Io { action: "read", .. }));
    assert_mentions(&error.to_string(), &["cannot read", "absent.safetensors"]);
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn errors_travel_across_threads_and_box_into_std_errors() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<WeightsError>();
    let boxed: Box<dyn std::error::Error + Send + Sync> =
        io::load(&mut Seed::<f32>::zeros(), "/nonexistent/w.safetensors")
            .unwrap_err()
            .into();
    assert!(boxed.to_string().contains("/nonexistent/w.safetensors"));
}

#[cfg(unix)]
#[test]
fn saving_through_a_symbolic_link_replaces_the_file_it_points_to() {
    let dir = scratch("symlink");
    let real = dir.join("real.safetensors");
    let link = dir.join("link.safetensors");
    io::save(&Seed::<f32>::init(1), &real).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    io::save(&Seed::<f32>::init(2), &link).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let loaded: Seed = io::load_new(&real, &LoadOptions::new()).unwrap();
    assert_same_bits(
        &loaded,
        &Seed::<f32>::init(2),
        "the link's target was replaced",
    );
}
