//! `io::slice::from_bytes`, the loader without std or an allocator: it loads what `io::from_bytes`
//! loads, bit for bit (F32, F64, F16, BF16; state-dict and `nn.Sequential` names), refuses what
//! it refuses naming the tensor, and leaves the network unchanged on error.

use backprop::io::slice::{self, BytesError, Naming};
use backprop::io::{self, Dtype, LoadOptions, Rename, SaveOptions};
use backprop::prelude::*;
use proptest::prelude::*;

network! { struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct Plain < 3 => 4 => 2 > }

fn bits<N: Network<Scalar = f32>>(net: &N) -> Vec<u32> {
    net.params()
        .flat_map(|p| p.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

fn file(dtype: Dtype, rename: Rename<'_>) -> Vec<u8> {
    io::to_bytes(
        &Seed::<f32>::init(5),
        &SaveOptions::new().dtype(dtype).rename(rename),
    )
    .unwrap()
}

#[test]
fn loads_what_the_std_loader_loads_in_every_dtype() {
    for dtype in [Dtype::F32, Dtype::F64, Dtype::F16, Dtype::BF16] {
        let bytes = file(dtype, Rename::Identity);
        let mut ours = Seed::<f32>::zeros();
        slice::from_bytes(&mut ours, &bytes, Naming::StateDict).unwrap();
        let mut theirs = Seed::<f32>::zeros();
        io::from_bytes(&mut theirs, &bytes, &LoadOptions::new()).unwrap();
        assert_eq!(bits(&ours), bits(&theirs), "{dtype}");
        if dtype == Dtype::F32 {
            assert_eq!(ours, Seed::<f32>::init(5));
        } else {
            assert_ne!(ours, Seed::<f32>::zeros());
        }
        let mut wide = Seed::<f64>::zeros();
        slice::from_bytes(&mut wide, &bytes, Naming::StateDict).unwrap();
        assert_eq!(wide.cast::<f32>(), ours, "{dtype} into f64");
    }
}

#[test]
fn sequential_names_map_as_the_renaming_does() {
    let bytes = file(Dtype::F32, Rename::Sequential);
    assert!(String::from_utf8_lossy(&bytes).contains("\"4.weight\""));
    let mut net = Seed::<f32>::zeros();
    slice::from_bytes(&mut net, &bytes, Naming::Sequential).unwrap();
    assert_eq!(net, Seed::<f32>::init(5));
    // Identity activations take no module: `3 => 4 => 2` is modules 0 and 1.
    let plain = Plain::<f32>::init(2);
    let bytes = io::to_bytes(&plain, &SaveOptions::new().rename(Rename::Sequential)).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("\"1.bias\""));
    let mut loaded = Plain::<f32>::zeros();
    slice::from_bytes(&mut loaded, &bytes, Naming::Sequential).unwrap();
    assert_eq!(loaded, plain);
    // State-dict names in the file, Sequential asked for: `0.weight` is missing.
    let own_names = file(Dtype::F32, Rename::Identity);
    let error = slice::from_bytes(&mut loaded, &own_names, Naming::Sequential).unwrap_err();
    assert!(matches!(error, BytesError::Missing { .. }));
}

/// The file of `Seed::init(5)` with its header's text edited by `edit` (and the data kept).
fn edited(edit: impl Fn(&str) -> String) -> Vec<u8> {
    let bytes = file(Dtype::F32, Rename::Identity);
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = edit(std::str::from_utf8(&bytes[8..8 + n]).unwrap());
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Fails, names what it should, and changes nothing.
fn fails(bytes: &[u8], words: &[&str]) -> String {
    let mut net = Seed::<f32>::init(9);
    let message = slice::from_bytes(&mut net, bytes, Naming::StateDict)
        .unwrap_err()
        .to_string();
    assert_eq!(
        net,
        Seed::<f32>::init(9),
        "a failed load changed the network"
    );
    for word in words {
        assert!(
            message.contains(word),
            "`{message}` does not mention `{word}`"
        );
    }
    message
}

#[test]
fn each_defect_is_an_error_naming_the_tensor() {
    fails(
        &edited(|h| h.replace("fc2.bias", "fc2.b")),
        &["tensor `fc2.bias` is missing", "expected shape [2]"],
    );
    fails(
        &edited(|h| h.replace("\"shape\":[1,2]", "\"shape\":[2,1]")),
        &["tensor `fc3.weight`", "expected [1, 2], found [2,1]"],
    );
    fails(
        &edited(|h| h.replacen("\"F32\"", "\"I32\"", 1)),
        &["dtype I32", "expected F32, F64, F16 or BF16"],
    );
    let good = file(Dtype::F32, Rename::Identity);
    fails(&good[..good.len() - 1], &["truncated", "expected"]);
    fails(&good[..5], &["shorter than the 8-byte"]);
    let mut longer = good.clone();
    longer.push(0);
    fails(&longer, &["hold", "bytes follow the header"]);
    fails(
        &edited(|h| {
            h.replacen(
                '{',
                "{ \"extra\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},",
                1,
            )
        }),
        &["unexpected tensor `extra`"],
    );
    fails(
        &edited(|h| h.replace("\"dtype\":\"F32\"", "\"dtype\":\"F32\",\"dtype\":\"F32\"")),
        &["twice"],
    );
    fails(
        &edited(|h| format!("{h}x")),
        &["after the header's closing brace"],
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]
    #[test]
    fn never_loads_what_the_std_loader_refuses(
        which in 0..4usize, at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>(),
    ) {
        let dtype = [Dtype::F32, Dtype::F64, Dtype::F16, Dtype::BF16][which];
        let mut bytes = file(dtype, Rename::Identity);
        let at = at.index(bytes.len());
        if cut { bytes.truncate(at) } else { bytes[at] = byte }
        let mut ours = Seed::<f32>::init(1);
        let mut theirs = Seed::<f32>::init(1);
        let a = slice::from_bytes(&mut ours, &bytes, Naming::StateDict);
        let b = io::from_bytes(&mut theirs, &bytes, &LoadOptions::new());
        if a.is_ok() {
            prop_assert!(b.is_ok(), "loaded what the std loader refuses: {:?}", b);
        } else {
            prop_assert_eq!(&ours, &Seed::<f32>::init(1));
        }
        if b.is_ok() && a.is_err() {
            // The one difference allowed: a name with a backslash escape.
            prop_assert!(bytes.contains(&b'\\'), "refused what the std loader loads: {:?}", a);
        }
        prop_assert_eq!(bits(&ours), bits(&theirs));
    }
}

/// torch's outputs for a fixture of `scripts/make_weights_fixtures.py`: inputs, f32, f64 rows.
fn torch_outputs(key: &str) -> [Vec<Vec<f64>>; 3] {
    let all: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/weights/expected.json")).unwrap();
    ["inputs", "f32", "f64"].map(|part| serde_json::from_value(all[key][part].clone()).unwrap())
}

#[test]
fn torch_written_f16_and_bf16_files_load_at_run_time_and_give_torchs_outputs() {
    for key in ["seed_f16", "seed_bf16"] {
        let path = format!("tests/fixtures/weights/{key}.safetensors");
        let bytes = std::fs::read(&path).unwrap();
        let mut single = Seed::<f32>::zeros();
        io::load(&mut single, &path).unwrap();
        let mut from_slice = Seed::<f32>::zeros();
        slice::from_bytes(&mut from_slice, &bytes, Naming::StateDict).unwrap();
        assert_eq!(bits(&single), bits(&from_slice));
        let mut double = Seed::<f64>::zeros();
        io::load(&mut double, &path).unwrap();
        let [inputs, f32_rows, f64_rows] = torch_outputs(key);
        for (k, x) in inputs.iter().enumerate() {
            let y32 = single.forward(&[x[0] as f32, x[1] as f32, x[2] as f32, x[3] as f32])[0];
            let y64 = double.forward(&[x[0], x[1], x[2], x[3]])[0];
            let (t32, t64) = (f32_rows[k][0], f64_rows[k][0]);
            assert!(
                (f64::from(y32) - t32).abs() <= 1e-6 * t32.abs(),
                "{key} f32: {y32} vs {t32}"
            );
            assert!(
                (y64 - t64).abs() <= 1e-12 * t64.abs(),
                "{key} f64: {y64} vs {t64}"
            );
        }
    }
}

#[test]
fn saving_in_f16_and_bf16_rounds_as_torch_and_reloads() {
    // Values whose nearest half and bfloat16 are known by hand: 1 + 2⁻¹¹ ties to 1 in f16;
    // 1 + 3·2⁻¹¹ rounds up to 1 + 2⁻⁹; 1 + 2⁻⁸ ties to 1 in bf16.
    let mut net = Plain::<f32>::zeros();
    net.fc1.weight[(0, 0)] = 1.0 + 2f32.powi(-11);
    net.fc1.weight[(1, 0)] = 1.0 + 3.0 * 2f32.powi(-11);
    net.fc1.weight[(2, 0)] = 1.0 + 2f32.powi(-8);
    for (dtype, expected) in [
        (Dtype::F16, [1.0, 1.0 + 2f32.powi(-9), 1.0 + 2f32.powi(-8)]),
        (Dtype::BF16, [1.0, 1.0, 1.0]),
    ] {
        let bytes = io::to_bytes(&net, &SaveOptions::new().dtype(dtype)).unwrap();
        let mut back = Plain::<f32>::zeros();
        slice::from_bytes(&mut back, &bytes, Naming::StateDict).unwrap();
        let got = [
            back.fc1.weight[(0, 0)],
            back.fc1.weight[(1, 0)],
            back.fc1.weight[(2, 0)],
        ];
        assert_eq!(got, expected, "{dtype}");
    }
}
