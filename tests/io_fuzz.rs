//! Loading damaged weight files: more than 10,000 truncated and mutated versions of valid files
//! (cuts at random points, random byte flips, random edits of the JSON header and of its length,
//! garbage, and well-formed files with a tensor renamed, retyped, reshaped, dropped or added) go
//! through `backprop::io::from_bytes`. A load never panics; a failed load leaves the
//! network bit for bit as it was; and the outcome agrees with an independent reading of the same
//! bytes by the safetensors crate alone: a load succeeds exactly when the file is valid and holds
//! every parameter under its name, with its shape, as F32 or F64 (and nothing else), and then
//! every value is the file's.

use std::sync::OnceLock;

use backprop::io::safetensors::tensor::TensorView;
use backprop::io::safetensors::{self, SafeTensors};
use backprop::io::{self, Dtype, LoadOptions, SaveOptions};
use backprop::prelude::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

network! {
    /// The seed post's architecture.
    pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 >
}

/// Two valid files of the same network: one in F32, one in F64 (with metadata).
fn bases() -> &'static [Vec<u8>; 2] {
    static BASES: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    BASES.get_or_init(|| {
        let net = Seed::<f32>::init(11);
        let f32_file = io::to_bytes(&net, &SaveOptions::new()).unwrap();
        let f64_options = SaveOptions::new()
            .dtype(Dtype::F64)
            .metadata("note", "fuzz");
        let f64_file = io::to_bytes(&net, &f64_options).unwrap();
        [f32_file, f64_file]
    })
}

/// The length of the header (with its 8-byte length prefix) of a valid file.
fn header_end(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// What the safetensors crate alone says the network should hold after loading `bytes`: the
/// values of every parameter (row-major as f32), or `None` when the load must fail.
fn oracle(bytes: &[u8]) -> Option<Vec<Vec<f32>>> {
    let file = SafeTensors::deserialize(bytes).ok()?;
    let template = Seed::<f32>::zeros();
    if file.len() != template.params().count() {
        return None;
    }
    template
        .params()
        .map(|param| {
            let view = file.tensor(param.name).ok()?;
            let shape: Vec<usize> = if param.name.ends_with(".bias") {
                vec![param.rows]
            } else {
                vec![param.rows, param.cols]
            };
            if view.shape() != shape.as_slice() {
                return None;
            }
            match view.dtype() {
                safetensors::Dtype::F32 => Some(
                    view.data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                ),
                safetensors::Dtype::F64 => Some(
                    view.data()
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
                        .collect(),
                ),
                _ => None,
            }
        })
        .collect()
}

/// Every parameter's bits.
fn bits(net: &Seed<f32>) -> Vec<u32> {
    net.params()
        .flat_map(|p| p.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// Loads `bytes` into a network and checks the outcome against the oracle; returns whether the
/// load succeeded.
fn check(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let mut net = Seed::<f32>::init(3);
    let before = bits(&net);
    let result = io::from_bytes(&mut net, bytes, &LoadOptions::new());
    match (result, oracle(bytes)) {
        (Ok(_), Some(expected)) => {
            for (param, values) in net.params().zip(expected) {
                for r in 0..param.rows {
                    for c in 0..param.cols {
                        let (found, want) = (param.get(r, c), values[r * param.cols + c]);
                        prop_assert_eq!(found.to_bits(), want.to_bits(), "{}", param.name);
                    }
                }
            }
            Ok(true)
        }
        (Ok(_), None) => Err(TestCaseError::fail(
            "loaded a file the safetensors crate rejects or that does not match the network",
        )),
        (Err(e), Some(_)) => Err(TestCaseError::fail(format!(
            "rejected a valid, matching file: {e}"
        ))),
        (Err(e), None) => {
            prop_assert!(!e.to_string().is_empty());
            prop_assert_eq!(
                bits(&net),
                before,
                "a failed load changed the network: {}",
                e
            );
            Ok(false)
        }
    }
}

/// A fixed seed, so that every run (and CI) feeds the same files.
fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5afe_7e45),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Bytes a JSON header is made of, and a few it should not contain.
const HEADER_BYTES: &[u8] = b"{}[]\":, 0123456789-.eEFIU_abcdfghilnoprstwx\\\0\xff";

#[test]
fn every_cut_of_a_valid_file_is_an_error() {
    for base in bases() {
        for len in 0..base.len() {
            assert!(!check(&base[..len]).unwrap(), "a file cut at {len} loaded");
        }
    }
}

proptest! {
    #![proptest_config(config(2_000))]
    #[test]
    fn truncated_files_are_errors(which in 0..2usize, cut in any::<Index>()) {
        let base = &bases()[which];
        let len = cut.index(base.len());
        prop_assert!(!check(&base[..len])?, "a file cut at {} loaded", len);
    }
}

proptest! {
    #![proptest_config(config(2_500))]
    #[test]
    fn flipped_bytes_never_panic(
        which in 0..2usize,
        flips in prop::collection::vec((any::<Index>(), 1..=255u8), 1..6),
    ) {
        let mut bytes = bases()[which].clone();
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        check(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(2_500))]
    #[test]
    fn edited_headers_never_panic(
        which in 0..2usize,
        edits in prop::collection::vec((any::<Index>(), any::<Index>()), 1..4),
    ) {
        let mut bytes = bases()[which].clone();
        let end = header_end(&bytes);
        for (at, byte) in edits {
            bytes[8 + at.index(end - 8)] = HEADER_BYTES[byte.index(HEADER_BYTES.len())];
        }
        check(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(1_500))]
    #[test]
    fn edited_numbers_in_the_header_never_panic(
        which in 0..2usize,
        edits in prop::collection::vec((any::<Index>(), 0..=9u8), 1..3),
    ) {
        // Digits are shapes and offsets: changing one reaches the shape and offset checks.
        let mut bytes = bases()[which].clone();
        let end = header_end(&bytes);
        let digits: Vec<usize> = (8..end).filter(|&i| bytes[i].is_ascii_digit()).collect();
        for (at, digit) in edits {
            bytes[digits[at.index(digits.len())]] = b'0' + digit;
        }
        check(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(1_000))]
    #[test]
    fn spliced_headers_and_lengths_never_panic(
        which in 0..2usize,
        at in any::<Index>(),
        insert in prop::collection::vec(any::<Index>(), 0..4),
        remove in 0..4usize,
        length in prop_oneof![Just(None), (-16i64..16).prop_map(Some)],
    ) {
        // Insert and delete bytes inside the header and fix (or break) its length prefix.
        let base = &bases()[which];
        let end = header_end(base);
        let at = 8 + at.index(end - 8);
        let mut header = base[8..at].to_vec();
        header.extend(insert.iter().map(|b| HEADER_BYTES[b.index(HEADER_BYTES.len())]));
        header.extend_from_slice(&base[(at + remove).min(end)..end]);
        let n = header.len() as i64 + length.unwrap_or(0);
        let mut bytes = (n.max(0) as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&base[end..]);
        check(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(500))]
    #[test]
    fn garbage_never_panics(
        prefix in 0..16usize,
        tail in prop::collection::vec(any::<u8>(), 0..96),
        length in any::<u64>(),
    ) {
        // A random length prefix and random bytes, sometimes after a valid beginning.
        let mut bytes = if prefix < 8 { length.to_le_bytes().to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&bases()[0][..prefix.min(bases()[0].len())]);
        bytes.extend_from_slice(&tail);
        prop_assert!(!check(&bytes)?);
    }
}

/// A tensor of a file: dtype, shape, raw little-endian bytes.
type Entry = (safetensors::Dtype, Vec<usize>, Vec<u8>);

/// A well-formed file with one tensor edited, written by the safetensors crate: a renamed,
/// retyped (same width), reshaped (same count), dropped, added or widened (F32 to F64) tensor.
fn structured_edit(base: &[u8], kind: usize, which: Index, pick: Index) -> Vec<u8> {
    let file = SafeTensors::deserialize(base).unwrap();
    let mut tensors: Vec<(String, Entry)> = file
        .iter()
        .map(|(name, v)| {
            let entry = (v.dtype(), v.shape().to_vec(), v.data().to_vec());
            (name.to_string(), entry)
        })
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let k = which.index(tensors.len());
    let (name, (dtype, shape, data)) = &mut tensors[k];
    match kind {
        0 => {
            // One character of the name replaced: `fc1.weight` becomes `fc1.weighs`, `fc4.weight`.
            let mut chars: Vec<char> = name.chars().collect();
            let i = pick.index(chars.len());
            chars[i] = ['x', '1', '4', '.', '_', 'W'][i % 6];
            *name = chars.into_iter().collect();
        }
        1 => {
            use safetensors::Dtype::*;
            let same_width: &[safetensors::Dtype] = match dtype {
                F32 => &[I32, U32, F32],
                _ => &[I64, U64, F64],
            };
            *dtype = same_width[pick.index(same_width.len())];
        }
        2 => {
            let n: usize = shape.iter().product();
            let (a, b) = (shape[0], shape.get(1).copied().unwrap_or(1));
            let shapes = [
                vec![n],
                vec![b, a],
                vec![a, b],
                vec![1, n],
                vec![a, b, 1],
                vec![n, 1],
            ];
            *shape = shapes[pick.index(shapes.len())].clone();
        }
        3 => {
            tensors.remove(k);
        }
        4 => {
            let extra = ["fc4.weight", "fc1.running_mean", "num_batches_tracked"];
            let entry = (safetensors::Dtype::F32, vec![2], vec![0; 8]);
            tensors.push((extra[pick.index(extra.len())].to_string(), entry));
        }
        _ => {
            if *dtype == safetensors::Dtype::F32 {
                *dtype = safetensors::Dtype::F64;
                *data = data
                    .chunks_exact(4)
                    .flat_map(|b| {
                        f64::from(f32::from_le_bytes(b.try_into().unwrap())).to_le_bytes()
                    })
                    .collect();
            }
        }
    }
    let views = tensors.iter().map(|(name, (dtype, shape, data))| {
        (
            name.clone(),
            TensorView::new(*dtype, shape.clone(), data).unwrap(),
        )
    });
    safetensors::serialize(views, None).unwrap()
}

proptest! {
    #![proptest_config(config(1_500))]
    #[test]
    fn structured_edits_load_exactly_when_they_still_match(
        which_file in 0..2usize,
        kind in 0..6usize,
        which in any::<Index>(),
        pick in any::<Index>(),
    ) {
        let bytes = structured_edit(&bases()[which_file], kind, which, pick);
        check(&bytes)?;
    }
}
