//! The `serde` feature: every generated network is `Serialize` and `Deserialize` as a map from
//! state_dict names to `{ "shape": [...], "values": [...] }`, values row-major as PyTorch stores
//! them. Round trips are bit for bit (f32, f64, a heap-stored layer on a 512 KiB thread, a chain, a
//! renamed crate path); the JSON layout is pinned against JSON written by hand; every kind of bad
//! input is an error that names the tensor, and leaves the caller's network as it was.
//!
//! Runs with `cargo test --features serde --test serde` (`required-features` in Cargo.toml).

extern crate backprop as renamed_backprop;

use backprop::prelude::*;

network! {
    /// Three inputs, two hidden units, one output: small enough to write its JSON by hand.
    pub struct Tiny < 3 => relu 2 => 1 >
}

network! { pub struct Mnist < 784 => relu 128 => 10 > }

network! {
    /// A chain: its names are `encoder.fc1.weight`, ...
    pub struct AutoEncoder {
        encoder: < 4 => tanh 3 => relu 2 >,
        decoder: < 2 => sigmoid 4 >,
    }
}

network! {
    /// Through a renamed path to the facade, as `checks/renamed` uses it.
    #[backprop(crate = ::renamed_backprop)]
    pub struct Renamed < 2 => relu 3 => 1 >
}

network! {
    /// Named layers and a user type called `T` (the generated scalar parameter is renamed).
    pub struct Named < 2 => hidden: relu 3 => out: 2 >
}

network! {
    /// A network called `T`: the macro names its scalar parameter `T1`, and so must the impls.
    pub struct T < 2 => 1 >
}

/// Every parameter's bits, in params() order, with its name.
fn bits<N: Network>(net: &N) -> Vec<(&'static str, Vec<u64>)> {
    net.params()
        .map(|p| {
            let values = p
                .values
                .iter()
                .map(|&v| backprop::scalar::to_f64(v).to_bits())
                .collect();
            (p.name, values)
        })
        .collect()
}

/// Serializes to JSON and back, and checks every bit.
fn round_trip<N>(net: &N) -> N
where
    N: Network + serde::Serialize + for<'de> serde::Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(net).unwrap();
    let back: N = serde_json::from_str(&json).unwrap();
    assert_eq!(bits(&back), bits(net));
    assert!(back == *net);
    back
}

/// The tiny network with weights written by hand, PyTorch-style: `weight[out][in]`.
fn tiny_by_hand() -> Tiny<f32> {
    let mut net = Tiny::<f32>::zeros();
    // fc1.weight = [[1, 2, 3], [4, 5, 6]]: nalgebra's (row, col) is PyTorch's [out][in].
    for (o, row) in [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].iter().enumerate() {
        for (i, &w) in row.iter().enumerate() {
            net.fc1.weight[(o, i)] = w;
        }
    }
    net.fc1.bias[0] = 0.5;
    net.fc1.bias[1] = -0.25;
    net.fc2.weight[(0, 0)] = 0.1;
    net.fc2.weight[(0, 1)] = -7.0;
    net.fc2.bias[0] = -1.0;
    net
}

/// The JSON of `tiny_by_hand`, written by hand: rows of `fc1.weight` one after the other.
const TINY_JSON: &str = r#"{"fc1.weight":{"shape":[2,3],"values":[1.0,2.0,3.0,4.0,5.0,6.0]},"fc1.bias":{"shape":[2],"values":[0.5,-0.25]},"fc2.weight":{"shape":[1,2],"values":[0.1,-7.0]},"fc2.bias":{"shape":[1],"values":[-1.0]}}"#;

#[test]
fn json_layout_matches_the_hand_written_json() {
    let net = tiny_by_hand();
    assert_eq!(serde_json::to_string(&net).unwrap(), TINY_JSON);

    // The same JSON spaced out, compared as serde_json values (both read from text: a `Value`
    // made from the network directly would hold 0.1f32 widened to f64).
    let value: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&net).unwrap()).unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        r#"{
            "fc1.weight": { "shape": [2, 3], "values": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] },
            "fc1.bias":   { "shape": [2],    "values": [0.5, -0.25] },
            "fc2.weight": { "shape": [1, 2], "values": [0.1, -7.0] },
            "fc2.bias":   { "shape": [1],    "values": [-1.0] }
        }"#,
    )
    .unwrap();
    assert_eq!(value, expected);

    // Reading the hand-written JSON (spaced, integers as numbers, fields in the other order).
    let spaced = r#"{
        "fc2.bias":   { "values": [-1],        "shape": [1] },
        "fc1.weight": { "values": [1, 2, 3, 4, 5, 6], "shape": [2, 3] },
        "fc1.bias":   { "shape": [2], "values": [0.5, -0.25] },
        "fc2.weight": { "shape": [1, 2], "values": [0.1, -7] }
    }"#;
    let read: Tiny = serde_json::from_str(spaced).unwrap();
    assert_eq!(read, net);
    assert_eq!(read.fc1.weight[(1, 0)], 4.0);
    assert_eq!(read.param("fc1.weight").unwrap().get(0, 2), 3.0);
}

#[test]
fn f64_writes_f64_and_f32_writes_f32() {
    let net64: Tiny<f64> = tiny_by_hand().cast();
    let json = serde_json::to_string(&net64).unwrap();
    // 0.1f32 widened is not 0.1: an f64 network shows every digit of its own values.
    assert!(
        json.contains(r#""values":[0.10000000149011612,-7.0]"#),
        "{json}"
    );
    assert!(TINY_JSON.contains(r#""values":[0.1,-7.0]"#));
    assert_eq!(round_trip(&net64), net64);
}

#[test]
fn round_trips_are_bit_for_bit() {
    for seed in 0..20 {
        round_trip(&Tiny::<f32>::init(seed));
        round_trip(&Tiny::<f64>::init(seed));
        round_trip(&AutoEncoder::<f32>::init(seed));
        round_trip(&AutoEncoder::<f64>::init(seed));
        round_trip(&Renamed::<f64>::init(seed));
        round_trip(&Named::<f32>::init(seed));
        round_trip(&T::<f64>::init(seed));
    }
    // Awkward values: signed zeros, subnormals, extremes.
    let mut net = Tiny::<f64>::zeros();
    let awkward = [
        -0.0,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        -1e-300,
        1.0 / 3.0,
    ];
    for (w, &v) in net.fc1.weight.iter_mut().zip(&awkward) {
        *w = v;
    }
    round_trip(&net);
    let mut net = Tiny::<f32>::zeros();
    let awkward = [-0.0, 1e-45, f32::MAX, f32::MIN_POSITIVE, -1e-38, 1.0 / 3.0];
    for (w, &v) in net.fc1.weight.iter_mut().zip(&awkward) {
        *w = v;
    }
    round_trip(&net);
}

#[test]
fn names_of_chains_and_named_layers() {
    let json = serde_json::to_value(AutoEncoder::<f32>::zeros()).unwrap();
    let names: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut expected: Vec<&str> = AutoEncoder::<f32>::zeros()
        .params()
        .map(|p| p.name)
        .collect();
    expected.sort_unstable();
    let mut names = names;
    names.sort_unstable();
    assert_eq!(names, expected);
    assert!(names.contains(&"encoder.fc1.weight"));
    assert_eq!(
        json["decoder.fc1.weight"]["shape"],
        serde_json::json!([4, 2])
    );
    assert_eq!(json["decoder.fc1.bias"]["shape"], serde_json::json!([4]));

    let json = serde_json::to_value(Named::<f32>::zeros()).unwrap();
    assert_eq!(json["hidden.weight"]["shape"], serde_json::json!([3, 2]));
    assert_eq!(json["out.bias"]["shape"], serde_json::json!([2]));
}

#[test]
fn a_heap_stored_layer_round_trips_on_a_512_kib_thread() {
    std::thread::Builder::new()
        .name("serde 784-128-10".into())
        .stack_size(512 << 10)
        .spawn(|| {
            let net = Mnist::<f32>::init(7);
            let json = serde_json::to_string(&net).unwrap();
            let back: Mnist = serde_json::from_str(&json).unwrap();
            assert!(back == net);
            assert_eq!(bits(&back), bits(&net));

            let net = Mnist::<f64>::init(8);
            let json = serde_json::to_vec(&net).unwrap();
            let back: Mnist<f64> = serde_json::from_slice(&json).unwrap();
            assert!(back == net);

            // A failure deep in the big layer leaves nothing behind (and nothing on the stack).
            let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            value["fc1.weight"]["values"][100_000] = serde_json::json!("x");
            let error = serde_json::from_value::<Mnist<f64>>(value).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("entry [127][432] of tensor `fc1.weight`"),
                "{error}"
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn struct_as_a_sequence_is_read_too() {
    // serde_json reads a struct from an array too: the path non-self-describing formats take.
    let json = r#"{"fc1.weight":[[2,3],[1,2,3,4,5,6]],"fc1.bias":[[2],[0.5,-0.25]],
                   "fc2.weight":[[1,2],[0.1,-7]],"fc2.bias":[[1],[-1]]}"#;
    let net: Tiny = serde_json::from_str(json).unwrap();
    assert_eq!(net, tiny_by_hand());
    let short = r#"{"fc1.weight":[[2,3]]}"#;
    let error = serde_json::from_str::<Tiny>(short).unwrap_err().to_string();
    assert!(
        error.contains("tensor `fc1.weight`: missing field `values`"),
        "{error}"
    );
}

/// The error reading `json` into a `Tiny`, as text.
fn error(json: &str) -> String {
    match serde_json::from_str::<Tiny>(json) {
        Ok(net) => panic!("accepted {json}: {net:?}"),
        Err(error) => error.to_string(),
    }
}

/// `TINY_JSON` with `from` replaced by `to` (once, and it must be there).
fn edit(from: &str, to: &str) -> String {
    assert!(TINY_JSON.contains(from), "{from}");
    TINY_JSON.replacen(from, to, 1)
}

/// Asserts that `message` contains every part.
fn says(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}

#[test]
fn hostile_inputs_are_errors_naming_the_tensor() {
    // Missing tensor.
    let json = edit(r#","fc2.bias":{"shape":[1],"values":[-1.0]}"#, "");
    says(
        &error(&json),
        &[
            "missing tensor `fc2.bias`",
            "expected shape [1]",
            "1 values",
        ],
    );
    // Unknown tensor.
    let json = edit(
        r#"{"fc1.weight""#,
        r#"{"fc3.weight":{"shape":[1],"values":[1]},"fc1.weight""#,
    );
    says(
        &error(&json),
        &[
            "unknown tensor `fc3.weight`",
            "`fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`",
        ],
    );
    // Duplicate tensor (serde_json's own maps would keep the last one silently).
    let json = edit(
        r#","fc2.bias""#,
        r#","fc1.bias":{"shape":[2],"values":[9,9]},"fc2.bias""#,
    );
    says(&error(&json), &["tensor `fc1.bias` appears twice"]);
    // Wrong shape: transposed, wrong rank, a bias as a matrix, a huge and a negative dimension.
    says(
        &error(&edit("[2,3]", "[3,2]")),
        &["tensor `fc1.weight`: expected shape [2, 3], found [3, 2]"],
    );
    says(
        &error(&edit("[2,3]", "[6]")),
        &["tensor `fc1.weight`: expected shape [2, 3], found [6]"],
    );
    says(
        &error(&edit(r#""shape":[2],"#, r#""shape":[2,1],"#)),
        &["tensor `fc1.bias`: expected shape [2], found [2, 1]"],
    );
    says(
        &error(&edit("[2,3]", "[2,3,1,1,1,1,1,1,1,1]")),
        &["tensor `fc1.weight`: expected shape [2, 3], found [2, 3, 1, 1, 1, 1, 1, 1, ... (10 dimensions)]"],
    );
    says(
        &error(&edit("[2,3]", "[18446744073709551615,3]")),
        &["expected shape [2, 3], found [18446744073709551615, 3]"],
    );
    says(
        &error(&edit("[2,3]", "[-2,3]")),
        &[
            "-2",
            "a dimension (a non-negative integer) in the shape of tensor `fc1.weight`",
        ],
    );
    says(
        &error(&edit("[2,3]", "[2.0,3]")),
        &["a dimension (a non-negative integer) in the shape of tensor `fc1.weight`"],
    );
    // Wrong number of values: too few, too many, none.
    says(
        &error(&edit("[1.0,2.0,3.0,4.0,5.0,6.0]", "[1.0,2.0,3.0,4.0,5.0]")),
        &["tensor `fc1.weight`: expected 6 values (shape [2, 3]), found 5"],
    );
    says(
        &error(&edit("[1.0,2.0,3.0,4.0,5.0,6.0]", "[1,2,3,4,5,6,7,[8],{}]")),
        &["tensor `fc1.weight`: expected 6 values (shape [2, 3]), found 9"],
    );
    says(
        &error(&edit("[0.5,-0.25]", "[]")),
        &["tensor `fc1.bias`: expected 2 values (shape [2]), found 0"],
    );
    // Not a number: a string, null (serde_json's NaN), a list, a bool.
    says(
        &error(&edit("4.0", r#""4""#)),
        &[
            "invalid type: string \"4\"",
            "a finite number (f32) for entry [1][0] of tensor `fc1.weight`",
        ],
    );
    says(
        &error(&edit("-0.25", "null")),
        &["invalid type: null", "entry [1] of tensor `fc1.bias`"],
    );
    says(
        &error(&edit("0.1", "[0.1]")),
        &[
            "invalid type: sequence",
            "entry [0][0] of tensor `fc2.weight`",
        ],
    );
    says(
        &error(&edit("-1.0", "true")),
        &["invalid type: boolean `true`", "tensor `fc2.bias`"],
    );
    // Not finite in f32: a finite f64 too large for f32.
    says(
        &error(&edit("6.0", "1e300")),
        &[
            "invalid value: floating point",
            "a finite number (f32) for entry [1][2] of tensor `fc1.weight`",
        ],
    );
    // The tensor's fields: unknown, missing, twice, and a tensor that is not a map.
    says(
        &error(&edit(
            r#""shape":[2,3],"#,
            r#""shape":[2,3],"dtype":"F32","#,
        )),
        &["tensor `fc1.weight`: unknown field `dtype`, expected `shape` or `values`"],
    );
    says(
        &error(&edit(r#""shape":[2,3],"#, "")),
        &["tensor `fc1.weight`: missing field `shape`"],
    );
    says(
        &error(&edit(r#","values":[-1.0]"#, "")),
        &["tensor `fc2.bias`: missing field `values`"],
    );
    says(
        &error(&edit(r#""shape":[1],"#, r#""shape":[1],"shape":[1],"#)),
        &["tensor `fc2.bias`: field `shape` appears twice"],
    );
    says(
        &error(&edit(r#"{"shape":[2],"values":[0.5,-0.25]}"#, "5")),
        &[
            "invalid type: integer `5`",
            "tensor `fc1.bias`: a map with `shape` ([2]) and `values` (2 numbers",
        ],
    );
    // Not a map at all, and an empty map.
    says(&error("[]"), &["a map from tensor names"]);
    says(&error("{}"), &["missing tensor `fc1.weight`"]);
}

#[test]
fn a_claimed_length_is_never_trusted() {
    // A length far beyond the input: nothing is reserved for it (the values are read one by one
    // into the network), so this is a plain error.
    let many = format!("[{}]", vec!["1"; 100_000].join(","));
    says(
        &error(&edit("[0.5,-0.25]", &many)),
        &["tensor `fc1.bias`: expected 2 values (shape [2]), found 100000"],
    );
}

#[test]
fn a_failed_read_leaves_the_callers_network_unchanged() {
    let mut net = Tiny::<f32>::init(3);
    let before = net.clone();
    // The error comes after three good tensors: a half-built network existed and is dropped.
    let bad = edit(r#""values":[-1.0]"#, r#""values":["no"]"#);
    match serde_json::from_str::<Tiny>(&bad) {
        Ok(read) => net = read,
        Err(error) => says(&error.to_string(), &["tensor `fc2.bias`"]),
    }
    assert!(net == before);
    assert_eq!(bits(&net), bits(&before));

    // serde's in-place path (the default `deserialize_in_place` builds a new value too).
    let mut deserializer = serde_json::Deserializer::from_str(&bad);
    assert!(serde::Deserialize::deserialize_in_place(&mut deserializer, &mut net).is_err());
    assert_eq!(bits(&net), bits(&before));

    // And a good read replaces it.
    match serde_json::from_str::<Tiny>(TINY_JSON) {
        Ok(read) => net = read,
        Err(error) => panic!("{error}"),
    }
    assert_eq!(net, tiny_by_hand());
}

#[test]
fn non_finite_networks_are_not_written() {
    let mut net = tiny_by_hand();
    net.fc1.weight[(1, 2)] = f32::NAN;
    let mut out = Vec::new();
    let error = serde_json::to_writer(&mut out, &net)
        .unwrap_err()
        .to_string();
    says(
        &error,
        &[
            "tensor `fc1.weight`: entry [1][2] is NaN",
            "only finite values",
        ],
    );
    assert!(out.is_empty(), "wrote {:?}", String::from_utf8_lossy(&out));

    let mut net = Tiny::<f64>::zeros();
    net.fc2.bias[0] = f64::NEG_INFINITY;
    let error = serde_json::to_string(&net).unwrap_err().to_string();
    says(&error, &["tensor `fc2.bias`: entry [0] is -inf"]);
}
