//! Loading hostile weight files: more than 10,000 truncated and mutated versions of valid files
//! (cuts at random points, random byte flips, random edits of the JSON header and of its length,
//! garbage, well-formed files with a tensor renamed, retyped, reshaped, dropped or added, and
//! lying headers: hostile numbers for sizes, offsets and header lengths, shapes whose product
//! overflows, unknown dtypes, non-UTF-8 names, nesting a million levels deep, duplicate keys) go
//! through `backprop::io::from_bytes`, every 4th of them also through `backprop::io::from_reader`
//! (a few bytes per read) and every 16th through a real file and `backprop::io::load`. A load never panics; it allocates at most a small bound over the file's
//! length (a counting allocator records the peak of live bytes); a failed load leaves the network
//! bit for bit as it was; and the outcome agrees with an independent reading of the same bytes by
//! the safetensors crate and serde_json: a load succeeds exactly when the file is valid (and has
//! no key twice, no unknown field, no shape of more than 64 dimensions) and holds every parameter
//! under its name, with its shape, as F32 or F64 (and nothing else), and then every value is the
//! file's.
//!
//! `BACKPROP_FUZZ_CASES=1000000 cargo test --release --test suite io_fuzz` runs a million cases
//! instead of the default 16,000 (in proportion across the tests).

use crate::common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use backprop::io::safetensors::tensor::TensorView;
use backprop::io::safetensors::{self, SafeTensors};
use backprop::io::{self, Dtype, LoadOptions, SaveOptions};
use backprop::prelude::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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
    if !strict_header(bytes) {
        return None;
    }
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

/// Any JSON value, rejecting an object that has a key twice (serde_json would keep the last).
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

/// The visitor behind [`Strict`].
struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value without duplicate keys")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value::<Strict>()?;
        }
        Ok(Strict)
    }
}

/// What the format's reading here adds to the safetensors crate's: no key twice at any level, no
/// field in a tensor's entry besides `dtype`, `shape` and `data_offsets`, at most 64 dimensions.
fn strict_header(bytes: &[u8]) -> bool {
    let text = &bytes[8..header_end(bytes)];
    if serde_json::from_slice::<Strict>(text).is_err() {
        return false;
    }
    let Ok(serde_json::Value::Object(header)) = serde_json::from_slice(text) else {
        return false;
    };
    header
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .all(|(_, entry)| {
            let known = ["dtype", "shape", "data_offsets"];
            let fields = entry
                .as_object()
                .is_some_and(|e| e.keys().all(|k| known.contains(&k.as_str())));
            let rank = entry["shape"].as_array().map_or(0, Vec::len);
            fields && rank <= 64
        })
}

/// The most heap bytes a load of a `len`-byte file may hold at once: a few times the file (the
/// parsed header keeps its names and shapes) and a few KiB for the network's own names.
fn allocation_bound(len: usize) -> usize {
    8 * len + 16 * 1024
}

/// A fresh scratch directory for the real-file part of the fuzzing.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("io_fuzz");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A reader that hands out at most `step` bytes per read, as a pipe may.
struct Trickle<'b> {
    bytes: &'b [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
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
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let mut net = Seed::<f32>::init(3);
    let before = bits(&net);
    let (result, peak) =
        common::counting::peak_bytes(|| io::from_bytes(&mut net, bytes, &LoadOptions::new()));
    prop_assert!(
        peak <= allocation_bound(bytes.len()),
        "a load of {} bytes held {} bytes at once",
        bytes.len(),
        peak
    );
    if case.is_multiple_of(4) {
        // The same bytes as a stream, a few bytes per read: the same outcome and bits, and the
        // stream's own bounds (from the network) on the heap.
        let mut from_stream = Seed::<f32>::init(3);
        let reader = Trickle {
            bytes,
            step: 1 + case % 7,
        };
        let (streamed, peak) = common::counting::peak_bytes(|| {
            io::from_reader(&mut from_stream, reader, &LoadOptions::new())
        });
        prop_assert!(
            peak <= allocation_bound(bytes.len()),
            "stream: held {} bytes",
            peak
        );
        prop_assert_eq!(
            streamed.is_ok(),
            result.is_ok(),
            "stream and bytes disagree"
        );
        prop_assert_eq!(
            bits(&from_stream),
            bits(&net),
            "stream and bytes loaded different bits"
        );
    }
    if case.is_multiple_of(16) {
        // The same bytes through a real file: the same outcome, the same bits, the same bound.
        // Named by the case's unique number: tests run in parallel threads.
        let path = scratch().join(format!("case-{case}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        let mut from_file = Seed::<f32>::init(3);
        let (loaded, peak) = common::counting::peak_bytes(|| io::load(&mut from_file, &path));
        std::fs::remove_file(&path).unwrap();
        prop_assert!(
            peak <= allocation_bound(bytes.len()),
            "file: held {} bytes",
            peak
        );
        prop_assert_eq!(loaded.is_ok(), result.is_ok(), "file and bytes disagree");
        prop_assert_eq!(
            bits(&from_file),
            bits(&net),
            "file and bytes loaded different bits"
        );
    }
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

/// The cases the proptest suites below add up to (besides every cut of the two files).
const DEFAULT_CASES: u64 = 16_000;

/// `cases` scaled by `BACKPROP_FUZZ_CASES` / [`DEFAULT_CASES`] (1 when it is not set).
fn scaled(cases: u32) -> u32 {
    let total = std::env::var("BACKPROP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_CASES);
    u32::try_from(u64::from(cases) * total / DEFAULT_CASES)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// A fixed seed, so that every run (and CI) feeds the same files.
fn config(cases: u32) -> Config {
    Config {
        cases: scaled(cases),
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

// ----------------------------------------------------------------------------------------------
// Lying headers.
// ----------------------------------------------------------------------------------------------

/// A file with `header` as its header (its length prefix correct) and `data` after it.
fn assemble(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(data);
    bytes
}

/// A valid file's header and data.
fn split(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = header_end(bytes);
    (&bytes[8..end], &bytes[end..])
}

/// Numbers a header may lie with: signs, fractions, exponents, leading zeros, values at and past
/// 2³², 2⁶³ and 2⁶⁴, and factors whose products overflow 64 bits.
const HOSTILE_NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "-0",
    "+1",
    "01",
    "1.0",
    "1e2",
    "2E1",
    "4",
    "80",
    "4294967296",
    "4294967297",
    "3037000500",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
];

/// The byte ranges of the runs of digits in `header`.
fn number_runs(header: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < header.len() {
        if header[i].is_ascii_digit() {
            let start = i;
            while i < header.len() && header[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// A hostile number: one of [`HOSTILE_NUMBERS`] or any 64-bit value.
fn hostile_number() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<Index>().prop_map(|i| HOSTILE_NUMBERS[i.index(HOSTILE_NUMBERS.len())].to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (0..64u32).prop_map(|k| (1u64 << k).to_string()),
    ]
}

proptest! {
    #![proptest_config(config(1_200))]
    #[test]
    fn lying_sizes_and_offsets_never_panic(
        which in 0..2usize,
        edits in prop::collection::vec((any::<Index>(), hostile_number()), 1..4),
    ) {
        // Shapes and data_offsets replaced by hostile numbers, the length prefix kept right.
        let (header, data) = split(&bases()[which]);
        let mut header = header.to_vec();
        for (at, number) in edits {
            let runs = number_runs(&header);
            let (start, end) = runs[at.index(runs.len())];
            header.splice(start..end, number.bytes());
        }
        check(&assemble(&header, data))?;
    }
}

proptest! {
    #![proptest_config(config(500))]
    #[test]
    fn lying_header_lengths_never_panic(
        which in 0..2usize,
        length in prop_oneof![
            any::<u64>(),
            (0..64u32).prop_map(|k| 1u64 << k),
            (-600i64..600).prop_map(|d| d as u64),
        ],
        relative in any::<bool>(),
    ) {
        // The prefix claims another length (absolute, or off by a little from the real one).
        let mut bytes = bases()[which].clone();
        let real = header_end(&bytes) as u64 - 8;
        let claimed = if relative { real.wrapping_add(length) } else { length };
        bytes[..8].copy_from_slice(&claimed.to_le_bytes());
        prop_assert!(!check(&bytes)? || claimed == real);
    }
}

/// Dtype names: every safetensors one and a few that are not.
const DTYPES: &[&str] = &[
    "BOOL",
    "F4",
    "F6_E2M3",
    "F6_E3M2",
    "U8",
    "I8",
    "F8_E5M2",
    "F8_E4M3",
    "F8_E8M0",
    "F8_E4M3FNUZ",
    "F8_E5M2FNUZ",
    "I16",
    "U16",
    "F16",
    "BF16",
    "I32",
    "U32",
    "F32",
    "C64",
    "F64",
    "I64",
    "U64",
    "f32",
    "F128",
    "",
    "F32 ",
    "\\u0046\\u0033\\u0032",
];

proptest! {
    #![proptest_config(config(800))]
    #[test]
    fn hostile_dtypes_and_shapes_never_panic(
        which in 0..2usize,
        tensor in any::<Index>(),
        dtype in prop::option::of(any::<Index>()),
        shape in prop::option::of(prop::collection::vec(hostile_number(), 0..70)),
    ) {
        // One tensor's dtype replaced by any name, and/or its shape by up to 69 hostile numbers
        // (products that overflow 64 bits, zeros that hide them, more than 64 dimensions).
        let (header, data) = split(&bases()[which]);
        let mut header = String::from_utf8(header.to_vec()).unwrap();
        let starts: Vec<usize> = header.match_indices("\"dtype\":\"").map(|(i, _)| i).collect();
        let at = starts[tensor.index(starts.len())];
        if let Some(dtype) = dtype {
            let value = at + "\"dtype\":\"".len();
            let close = value + header[value..].find('"').unwrap();
            header.replace_range(value..close, DTYPES[dtype.index(DTYPES.len())]);
        }
        if let Some(shape) = shape {
            let open = at + header[at..].find("\"shape\":[").unwrap() + "\"shape\":[".len();
            let close = open + header[open..].find(']').unwrap();
            header.replace_range(open..close, &shape.join(","));
        }
        check(&assemble(header.as_bytes(), data))?;
    }
}

proptest! {
    #![proptest_config(config(500))]
    #[test]
    fn non_utf8_headers_never_panic(
        which in 0..2usize,
        at in any::<Index>(),
        junk in prop::collection::vec(0x80..=0xffu8, 1..4),
    ) {
        // Bytes that are not UTF-8 (or are, by chance, multi-byte characters) inside the header.
        let (header, data) = split(&bases()[which]);
        let mut header = header.to_vec();
        let at = at.index(header.len());
        header.splice(at..at, junk);
        check(&assemble(&header, data))?;
    }
}

proptest! {
    #![proptest_config(config(300))]
    #[test]
    fn deep_nesting_never_overflows_the_stack(
        which in 0..2usize,
        tensor in any::<Index>(),
        depth in prop_oneof![1..200usize, 100_000..300_000usize],
        brackets in 0..3usize,
    ) {
        // A value replaced by `[[[[...` or `{"a":{"a":...`, up to 300,000 levels deep, unclosed
        // or closed: a recursive parser would overflow its stack.
        let (header, data) = split(&bases()[which]);
        let header = String::from_utf8(header.to_vec()).unwrap();
        let starts: Vec<usize> = header.match_indices("\"shape\":").map(|(i, _)| i).collect();
        let at = starts[tensor.index(starts.len())] + "\"shape\":".len();
        let close = at + header[at..].find(']').unwrap() + 1;
        let (open, shut) = [("[", "]"), ("{\"a\":", "}"), ("[{\"a\":", "}]")][brackets];
        let nested = format!("{}{}", open.repeat(depth), shut.repeat(depth / 2));
        let edited = format!("{}{}{}", &header[..at], nested, &header[close..]);
        prop_assert!(!check(&assemble(edited.as_bytes(), data))?);
    }
}

proptest! {
    #![proptest_config(config(1_200))]
    #[test]
    fn duplicate_keys_are_errors(
        which in 0..2usize,
        tensor in any::<Index>(),
        kind in 0..4usize,
        first in any::<bool>(),
    ) {
        // A tensor's entry given twice (the same, or the second pointing past the data), a field
        // of an entry given twice, or a metadata key given twice: serde_json would keep the last,
        // which here would be a valid file.
        let (header, data) = split(&bases()[which]);
        let header = String::from_utf8(header.to_vec()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&header).unwrap();
        let names: Vec<&String> = value.as_object().unwrap().keys()
            .filter(|k| k.as_str() != "__metadata__").collect();
        let name = names[tensor.index(names.len())];
        let entry = serde_json::to_string(&value[name.as_str()]).unwrap();
        let key = serde_json::to_string(name).unwrap();
        let body = &header[1..header.trim_end().len() - 1];
        let edited = match kind {
            0 => format!("{{{key}:{entry},{body}}}"),
            1 => {
                let lying = entry.replace("\"data_offsets\":[", "\"data_offsets\":[9999");
                let lying = format!("{key}:{lying}");
                if first { format!("{{{lying},{body}}}") } else { format!("{{{body},{lying}}}") }
            }
            2 => {
                let at = header.find(&format!("{key}:{{")).unwrap() + key.len() + 2;
                let field = if first { "\"dtype\":\"F16\"," } else { "\"shape\":[1],"};
                format!("{}{}{}", &header[..at], field, &header[at..])
            }
            _ => format!("{{\"__metadata__\":{{\"k\":\"1\",\"k\":\"2\"}},{body}}}"),
        };
        let bytes = assemble(edited.as_bytes(), data);
        prop_assert!(!check(&bytes)?, "a duplicate key loaded: {}", edited);
        let message = io::from_bytes(&mut Seed::<f32>::zeros(), &bytes, &LoadOptions::new())
            .unwrap_err()
            .to_string();
        prop_assert!(message.contains("twice"), "{}", message);
    }
}

#[test]
fn the_densest_header_stays_within_the_allocation_bound() {
    // As many entries as fit, each with the shortest text for the most memory: a short name and
    // 64 zero dimensions (two bytes of text, eight bytes parsed, each). The file is valid; the
    // load fails because the network's tensors are missing, after listing all 20,000 names.
    let zeros = vec!["0"; 64].join(",");
    let entries: Vec<String> = (0..20_000)
        .map(|i| {
            format!("\"{i:x}\":{{\"dtype\":\"U8\",\"shape\":[{zeros}],\"data_offsets\":[0,0]}}")
        })
        .collect();
    let bytes = assemble(format!("{{{}}}", entries.join(",")).as_bytes(), &[]);
    assert!(SafeTensors::deserialize(&bytes).is_ok(), "a valid file");
    let mut net = Seed::<f32>::init(3);
    let (result, peak) =
        common::counting::peak_bytes(|| io::from_bytes(&mut net, &bytes, &LoadOptions::new()));
    assert!(matches!(result, Err(io::WeightsError::Missing { .. })));
    println!("{peak} bytes for a {}-byte file", bytes.len());
    assert!(
        peak <= allocation_bound(bytes.len()),
        "{peak} bytes for {}",
        bytes.len()
    );
}
