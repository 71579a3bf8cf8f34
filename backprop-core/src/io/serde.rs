//! `serde` for every network: a map from PyTorch's `state_dict` names to tensors (the `serde`
//! feature).
//!
//! A network `4 => relu 5 => 1` reads, in JSON:
//!
//! ```text
//! {
//!   "fc1.weight": { "shape": [5, 4], "values": [w00, w01, w02, w03, w10, ..., w43] },
//!   "fc1.bias":   { "shape": [5],    "values": [b0, b1, b2, b3, b4] },
//!   "fc2.weight": { "shape": [1, 5], "values": [...] },
//!   "fc2.bias":   { "shape": [1],    "values": [...] }
//! }
//! ```
//!
//! - **Names** are those of [`Network::params`], in that order (PyTorch's `state_dict` order).
//! - **Shapes** are PyTorch's: a weight is `[out, in]`, a bias (a parameter whose name ends in
//!   `.bias`) is `[out]`.
//! - **Values are row-major**, as PyTorch stores them and as `tensor.tolist()` flattens them:
//!   `weight[o][i]` is at position `o * in + i`, the row of output `o` first. nalgebra keeps
//!   matrices column-major ([`Param::values`]); the transposition happens here, so
//!   [`Param::get`]`(o, i)` is the entry at that position.
//! - **Numbers** are the scalar's own: an `f32` network writes `f32`s (`0.1`, not
//!   `0.10000000149011612`), an `f64` network `f64`s, so a format that writes floats exactly
//!   (JSON through `serde_json` with its `float_roundtrip` feature for reading, bincode, ...)
//!   gives back the same bits.
//!
//! The generated `Serialize` and `Deserialize` impls call [`serialize_network`] and
//! [`deserialize_network`]; the facade's `serde` feature emits them for every network, and the
//! crate documentation of `backprop` has a runnable example.
//!
//! # Finite values only
//!
//! JSON has no NaN or infinity (`serde_json` would write `null`, which no reader takes for a
//! number), and a network that is not finite is broken, not trained. So both directions refuse
//! them: serializing a network with a non-finite parameter fails before anything is written, naming
//! the tensor and entry; deserializing refuses a non-finite number (from formats that have them)
//! and, for an `f32` network, a number too large for `f32` (it would become infinite). Other
//! numbers into an `f32` network are rounded to nearest, as `tensor.float()` does (a text format
//! such as JSON is read as `f64` first, which gives back every `f32` this module writes exactly);
//! integers are numbers too (`0`, `-1`). To keep a non-finite network, use [`crate::io`]'s safetensors files.
//!
//! # Reading hostile input
//!
//! [`deserialize_network`] never panics and allocates nothing that depends on the input (so it
//! needs no allocator): the result is built in a fresh `N::zeros()` (large layers on the heap,
//! nothing large on the stack), and every value is read element by element straight into that
//! network's storage, never by a length the input claims. A failure returns an error and drops the
//! half-built network, so a variable assigned only on success keeps its value. Every error names
//! the tensor, what was expected and what was found: a missing, unknown or duplicate tensor, a
//! wrong shape, a wrong number of values, a value that is not a finite number, a missing,
//! unknown or duplicate field (`shape`, `values`). Errors the format itself raises (broken syntax,
//! a number beyond `f64`) come from the format, with its position (line and column in JSON).
//!
//! Duplicates are tracked in a fixed bit set for the first 256 tensors (128 layers); past that, a
//! network needs the `alloc` feature (the set then grows by the network's size, never the input's).

use core::any::TypeId;
use core::fmt;
use core::marker::PhantomData;

use ::serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use ::serde::ser::{self, SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use ::serde::Serialize;

use crate::network::{Network, Param, ParamMut};
use crate::scalar::{constant, to_f64, Scalar};

/// The fields of a tensor, in the order they are written.
const FIELDS: &[&str] = &["shape", "values"];

/// The tensors the inline bit set of [`Seen`] covers.
const INLINE_TENSORS: usize = 256;

/// Writes `net` as a map from state_dict names to tensors (see the [module](self) for the layout).
///
/// Fails, writing nothing, when a parameter is not finite; the error names the tensor and the
/// entry. What `network!` generates for `Serialize` calls this.
///
/// ```text
/// use backprop::prelude::*;
///
/// network! { struct Net < 2 => 1 > }
///
/// // With backprop's `serde` feature (this example runs in the crate docs of `backprop`):
/// let mut net = Net::<f32>::zeros();
/// net.fc1.weight[(0, 1)] = 0.5;
/// let json = serde_json::to_string(&net).unwrap();
/// assert_eq!(json, r#"{"fc1.weight":{"shape":[1,2],"values":[0.0,0.5]},"fc1.bias":{"shape":[1],"values":[0.0]}}"#);
/// ```
pub fn serialize_network<N: Network, S: Serializer>(
    net: &N,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    for param in net.params() {
        if let Some((index, value)) = param
            .values
            .iter()
            .enumerate()
            .find(|(_, v)| !to_f64(**v).is_finite())
        {
            let (row, col) = (index % param.rows, index / param.rows);
            return Err(ser::Error::custom(format_args!(
                "tensor `{}`: entry {} is {}, and only finite values are serialized \
                 (JSON has no NaN or infinity)",
                param.name,
                Entry::of(&param, row, col),
                to_f64(*value)
            )));
        }
    }
    let mut map = serializer.serialize_map(Some(net.params().count()))?;
    for param in net.params() {
        map.serialize_entry(param.name, &Tensor(param))?;
    }
    map.end()
}

/// Reads a network written by [`serialize_network`] (or by hand, or from PyTorch's
/// `{name: {"shape": list(t.shape), "values": t.flatten().tolist()}}`), building it in a fresh
/// `N::zeros()`.
///
/// Every tensor must be present once, with its exact shape and exactly its number of finite
/// values; nothing else may be. The fields of a tensor may come in either order. See the
/// [module](self) for the layout and the guarantees on hostile input. What `network!` generates for
/// `Deserialize` calls this.
///
/// ```text
/// use backprop::prelude::*;
///
/// network! { struct Net < 2 => 1 > }
///
/// // With backprop's `serde` feature (this example runs in the crate docs of `backprop`):
/// let json = r#"{"fc1.weight": {"shape": [1, 2], "values": [0, 0.5]},
///                "fc1.bias": {"shape": [1], "values": [-1]}}"#;
/// let net: Net = serde_json::from_str(json).unwrap();
/// assert_eq!(net.fc1.weight[(0, 1)], 0.5);
/// ```
pub fn deserialize_network<'de, N: Network, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<N, D::Error> {
    deserializer.deserialize_map(NetworkVisitor(PhantomData))
}

/// Whether the scalar type is `f32` (written and read as `f32`; anything else as `f64`).
fn is_f32<T: Scalar>() -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>()
}

/// Whether a parameter is written as a one-dimensional tensor (`[out]`), as PyTorch's biases are.
fn is_vector(name: &str, cols: usize) -> bool {
    cols == 1 && name.ends_with(".bias")
}

/// A parameter's shape as PyTorch has it: `[rows, cols]`, or `[rows]` for a bias.
#[derive(Clone, Copy)]
struct Shape {
    dims: [usize; 2],
    rank: usize,
}

impl Shape {
    fn of(name: &str, rows: usize, cols: usize) -> Shape {
        Shape {
            dims: [rows, cols],
            rank: if is_vector(name, cols) { 1 } else { 2 },
        }
    }

    fn as_slice(&self) -> &[usize] {
        &self.dims[..self.rank]
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, dim) in self.as_slice().iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{dim}")?;
        }
        write!(f, "]")
    }
}

/// One entry of a tensor, shown as PyTorch indexes it: `[2][3]`, or `[2]` for a bias.
struct Entry {
    row: usize,
    col: usize,
    vector: bool,
}

impl Entry {
    fn of<T>(param: &Param<'_, T>, row: usize, col: usize) -> Entry {
        Entry {
            row,
            col,
            vector: is_vector(param.name, param.cols),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vector {
            write!(f, "[{}]", self.row)
        } else {
            write!(f, "[{}][{}]", self.row, self.col)
        }
    }
}

/// One tensor, written as `{ "shape": [...], "values": [...] }`.
struct Tensor<'a, T>(Param<'a, T>);

impl<T: Scalar> Serialize for Tensor<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let param = &self.0;
        let mut tensor = serializer.serialize_struct("Tensor", 2)?;
        tensor.serialize_field(
            "shape",
            Shape::of(param.name, param.rows, param.cols).as_slice(),
        )?;
        tensor.serialize_field("values", &RowMajor(*param))?;
        tensor.end()
    }
}

/// A tensor's values in PyTorch's row-major order.
struct RowMajor<'a, T>(Param<'a, T>);

impl<T: Scalar> Serialize for RowMajor<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let param = &self.0;
        let mut seq = serializer.serialize_seq(Some(param.values.len()))?;
        for row in 0..param.rows {
            for col in 0..param.cols {
                let value = param.get(row, col);
                if is_f32::<T>() {
                    seq.serialize_element(&(to_f64(value) as f32))?;
                } else {
                    seq.serialize_element(&to_f64(value))?;
                }
            }
        }
        seq.end()
    }
}

/// Which tensors have been read: a bit per tensor, inline for the first [`INLINE_TENSORS`].
struct Seen {
    inline: [u64; INLINE_TENSORS / 64],
    #[cfg(feature = "alloc")]
    rest: alloc::vec::Vec<u64>,
}

impl Seen {
    /// A set for `count` tensors, or `None` when that needs an allocator this build lacks.
    fn new(count: usize) -> Option<Seen> {
        let rest_words = count.saturating_sub(INLINE_TENSORS).div_ceil(64);
        #[cfg(not(feature = "alloc"))]
        if rest_words > 0 {
            return None;
        }
        Some(Seen {
            inline: [0; INLINE_TENSORS / 64],
            #[cfg(feature = "alloc")]
            rest: alloc::vec![0; rest_words],
        })
    }

    /// The word holding tensor `index`'s bit.
    fn word(&mut self, index: usize) -> Option<&mut u64> {
        let word = index / 64;
        if word < self.inline.len() {
            return self.inline.get_mut(word);
        }
        #[cfg(feature = "alloc")]
        return self.rest.get_mut(word - self.inline.len());
        #[cfg(not(feature = "alloc"))]
        None
    }

    /// Marks tensor `index`; false if it was marked already.
    fn insert(&mut self, index: usize) -> bool {
        let bit = 1u64 << (index % 64);
        match self.word(index) {
            Some(word) => {
                let fresh = *word & bit == 0;
                *word |= bit;
                fresh
            }
            None => false,
        }
    }

    /// Whether tensor `index` is marked.
    fn contains(&mut self, index: usize) -> bool {
        let bit = 1u64 << (index % 64);
        self.word(index).is_some_and(|word| *word & bit != 0)
    }
}

/// The names of a network's tensors, for the message about an unknown one.
struct Names<'a, N>(&'a N);

impl<N: Network> fmt::Display for Names<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, param) in self.0.params().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "`{}`", param.name)?;
        }
        Ok(())
    }
}

/// The top level: a map from names to tensors, into a fresh `N::zeros()`.
struct NetworkVisitor<N>(PhantomData<N>);

impl<'de, N: Network> Visitor<'de> for NetworkVisitor<N> {
    type Value = N;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map from tensor names (`fc1.weight`, ...) to tensors")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<N, A::Error> {
        let mut net = N::zeros();
        let count = net.params().count();
        let Some(mut seen) = Seen::new(count) else {
            return Err(de::Error::custom(format_args!(
                "this network has {count} tensors; reading more than {INLINE_TENSORS} needs \
                 backprop's `alloc` feature"
            )));
        };
        while let Some(index) = map.next_key_seed(NameSeed(&net))? {
            let Some(param) = net.params_mut().nth(index) else {
                return Err(de::Error::custom("a tensor vanished while reading"));
            };
            if !seen.insert(index) {
                return Err(de::Error::custom(format_args!(
                    "tensor `{}` appears twice",
                    param.name
                )));
            }
            map.next_value_seed(TensorSeed(param))?;
        }
        if let Some((_, param)) = net.params().enumerate().find(|(i, _)| !seen.contains(*i)) {
            let shape = Shape::of(param.name, param.rows, param.cols);
            return Err(de::Error::custom(format_args!(
                "missing tensor `{}` (expected shape {shape}, {} values)",
                param.name,
                param.values.len()
            )));
        }
        Ok(net)
    }
}

/// A tensor name, looked up in the network: its index in [`Network::params`] order.
struct NameSeed<'a, N>(&'a N);

impl<'de, N: Network> DeserializeSeed<'de> for NameSeed<'_, N> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, N: Network> Visitor<'de> for NameSeed<'_, N> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a tensor name, one of {}", Names(self.0))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        match self.0.params().position(|param| param.name == name) {
            Some(index) => Ok(index),
            None => Err(E::custom(format_args!(
                "unknown tensor `{name}`: this network's tensors are {}",
                Names(self.0)
            ))),
        }
    }

    fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<usize, E> {
        match core::str::from_utf8(name) {
            Ok(name) => self.visit_str(name),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(name), &self)),
        }
    }
}

/// A field of a tensor.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    Shape,
    Values,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Shape => "shape",
            Field::Values => "values",
        }
    }
}

/// A field name of the tensor `tensor`.
struct FieldSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`shape` or `values` (a field of tensor `{}`)", self.0)
    }

    fn visit_str<E: de::Error>(self, field: &str) -> Result<Field, E> {
        match field {
            "shape" => Ok(Field::Shape),
            "values" => Ok(Field::Values),
            _ => Err(E::custom(format_args!(
                "tensor `{}`: unknown field `{field}`, expected `shape` or `values`",
                self.0
            ))),
        }
    }

    fn visit_bytes<E: de::Error>(self, field: &[u8]) -> Result<Field, E> {
        match core::str::from_utf8(field) {
            Ok(field) => self.visit_str(field),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(field), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, index: u64) -> Result<Field, E> {
        match index {
            0 => Ok(Field::Shape),
            1 => Ok(Field::Values),
            _ => Err(E::invalid_value(de::Unexpected::Unsigned(index), &self)),
        }
    }
}

/// One tensor, read into the parameter it names.
struct TensorSeed<'a, T>(ParamMut<'a, T>);

impl<'de, T: Scalar> DeserializeSeed<'de> for TensorSeed<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("Tensor", FIELDS, self)
    }
}

impl<'de, T: Scalar> Visitor<'de> for TensorSeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let param = &self.0;
        write!(
            f,
            "tensor `{}`: a map with `shape` ({}) and `values` ({} numbers, row-major)",
            param.name,
            Shape::of(param.name, param.rows, param.cols),
            param.values.len()
        )
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let name = self.0.name;
        let (mut shape, mut values) = (false, false);
        while let Some(field) = map.next_key_seed(FieldSeed(name))? {
            let seen = match field {
                Field::Shape => &mut shape,
                Field::Values => &mut values,
            };
            if *seen {
                return Err(de::Error::custom(format_args!(
                    "tensor `{name}`: field `{}` appears twice",
                    field.name()
                )));
            }
            *seen = true;
            match field {
                Field::Shape => map.next_value_seed(ShapeSeed::of(&self.0))?,
                Field::Values => map.next_value_seed(ValuesSeed(&mut self.0))?,
            }
        }
        for (present, field) in [(shape, Field::Shape), (values, Field::Values)] {
            if !present {
                return Err(de::Error::custom(format_args!(
                    "tensor `{name}`: missing field `{}`",
                    field.name()
                )));
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let name = self.0.name;
        if seq.next_element_seed(ShapeSeed::of(&self.0))?.is_none() {
            return Err(de::Error::custom(format_args!(
                "tensor `{name}`: missing field `shape`"
            )));
        }
        if seq.next_element_seed(ValuesSeed(&mut self.0))?.is_none() {
            return Err(de::Error::custom(format_args!(
                "tensor `{name}`: missing field `values`"
            )));
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format_args!(
                "tensor `{name}`: more than its two fields (`shape`, `values`)"
            )));
        }
        Ok(())
    }
}

/// The shape of a tensor, checked against the parameter's.
struct ShapeSeed<'a> {
    name: &'a str,
    expected: Shape,
}

impl<'a> ShapeSeed<'a> {
    fn of<T>(param: &ParamMut<'a, T>) -> ShapeSeed<'a> {
        ShapeSeed {
            name: param.name,
            expected: Shape::of(param.name, param.rows, param.cols),
        }
    }
}

/// The dimensions found, as far as they are kept (the first eight), for an error message.
struct Found {
    dims: [u64; 8],
    rank: usize,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, dim) in self.dims.iter().take(self.rank).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{dim}")?;
        }
        if self.rank > self.dims.len() {
            write!(f, ", ... ({} dimensions)", self.rank)?;
        }
        write!(f, "]")
    }
}

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the shape of tensor `{}`, a list: {}",
            self.name, self.expected
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut found = Found {
            dims: [0; 8],
            rank: 0,
        };
        while let Some(dim) = seq.next_element_seed(DimSeed(self.name))? {
            if let Some(slot) = found.dims.get_mut(found.rank) {
                *slot = dim;
            }
            found.rank += 1;
        }
        let expected = self.expected.as_slice();
        let same = found.rank == expected.len()
            && expected
                .iter()
                .zip(&found.dims)
                .all(|(&e, &d)| e as u64 == d);
        if !same {
            return Err(de::Error::custom(format_args!(
                "tensor `{}`: expected shape {}, found {found}",
                self.name, self.expected
            )));
        }
        Ok(())
    }
}

/// One dimension of a shape: a non-negative integer.
struct DimSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for DimSeed<'_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_u64(self)
    }
}

impl<'de> Visitor<'de> for DimSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a dimension (a non-negative integer) in the shape of tensor `{}`",
            self.0
        )
    }

    fn visit_u64<E: de::Error>(self, dim: u64) -> Result<u64, E> {
        Ok(dim)
    }

    fn visit_i64<E: de::Error>(self, dim: i64) -> Result<u64, E> {
        u64::try_from(dim).map_err(|_| E::invalid_value(de::Unexpected::Signed(dim), &self))
    }
}

/// A tensor's values, row-major, written one by one into the parameter (column-major).
struct ValuesSeed<'a, 'p, T>(&'a mut ParamMut<'p, T>);

impl<'de, T: Scalar> DeserializeSeed<'de> for ValuesSeed<'_, '_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Scalar> Visitor<'de> for ValuesSeed<'_, '_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the values of tensor `{}`, a list of {} numbers",
            self.0.name,
            self.0.values.len()
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let param = self.0;
        let (rows, cols) = (param.rows, param.cols);
        let expected = rows * cols;
        let shape = Shape::of(param.name, rows, cols);
        let mut read = 0;
        while read < expected {
            let (row, col) = (read / cols, read % cols);
            let entry = Entry {
                row,
                col,
                vector: shape.rank == 1,
            };
            let seed = NumberSeed {
                name: param.name,
                entry,
                scalar: PhantomData,
            };
            match seq.next_element_seed(seed)? {
                Some(value) => param.set(row, col, value),
                None => {
                    return Err(de::Error::custom(format_args!(
                        "tensor `{}`: expected {expected} values (shape {shape}), found {read}",
                        param.name
                    )))
                }
            }
            read += 1;
        }
        // Count the rest for the message, one at a time, keeping none of them.
        while seq.next_element::<IgnoredAny>()?.is_some() {
            read += 1;
        }
        if read != expected {
            return Err(de::Error::custom(format_args!(
                "tensor `{}`: expected {expected} values (shape {shape}), found {read}",
                param.name
            )));
        }
        Ok(())
    }
}

/// One value: a finite number, converted to the scalar (`f32` rounds to nearest).
struct NumberSeed<'a, T> {
    name: &'a str,
    entry: Entry,
    scalar: PhantomData<T>,
}

impl<T: Scalar> NumberSeed<'_, T> {
    fn finite<E: de::Error>(self, value: f64) -> Result<T, E> {
        let rounded = if is_f32::<T>() {
            f64::from(value as f32)
        } else {
            value
        };
        if rounded.is_finite() {
            Ok(constant(rounded))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(value), &self))
        }
    }
}

impl<'de, T: Scalar> DeserializeSeed<'de> for NumberSeed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        // A text format reads any number as f64 (which this rounds, refusing what overflows f32,
        // with the tensor named; serde_json's f32 reader would refuse 1e300 with no name); a
        // binary one may only have the f32 that was written.
        if is_f32::<T>() && !deserializer.is_human_readable() {
            deserializer.deserialize_f32(self)
        } else {
            deserializer.deserialize_f64(self)
        }
    }
}

impl<'de, T: Scalar> Visitor<'de> for NumberSeed<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if is_f32::<T>() { "f32" } else { "f64" };
        write!(
            f,
            "a finite number ({kind}) for entry {} of tensor `{}`",
            self.entry, self.name
        )
    }

    fn visit_f32<E: de::Error>(self, value: f32) -> Result<T, E> {
        self.finite(f64::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        self.finite(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        self.finite(value as f64)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        self.finite(value as f64)
    }
}
