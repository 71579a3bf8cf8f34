//! Weight files: any network's parameters as
//! [safetensors](https://github.com/huggingface/safetensors) under PyTorch's `state_dict` names, so
//! weights move between PyTorch and Rust both ways.
//!
//! ```ignore
//! use backprop::io::{self, LoadOptions, Rename};
//!
//! // PyTorch: save_file(model.state_dict(), "model.safetensors"), model.fc1, fc2, fc3 = nn.Linear
//! let mut net = Net::<f32>::zeros();
//! io::load(&mut net, "model.safetensors")?;
//!
//! // PyTorch: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2), ...): 0.weight, 2.weight
//! let options = LoadOptions::new().rename(Rename::Sequential);
//! io::load_with(&mut net, "sequential.safetensors", &options)?;
//!
//! io::save(&net, "trained.safetensors")?;          // safetensors.torch.load_file reads it
//! ```
//!
//! # The file
//!
//! A parameter `fc1.weight` of shape `[out, in]` is the tensor `fc1.weight` with shape `[out, in]`,
//! stored row-major (`weight[o][i]` at position `o * in + i`) as PyTorch stores it; nalgebra keeps
//! matrices column-major, and the transposition happens here. A bias (a parameter whose name ends
//! in `.bias`) is the one-dimensional tensor `[out]`. A [`Rename`] maps our names to other ones
//! (`nn.Sequential`'s `0.weight`, a prefix, any function).
//!
//! Tensors may be `F32`, `F64`, `F16` or `BF16` on disk, whatever the network's scalar type:
//! values are converted (`F64` into an `f32` network rounds to nearest, as `tensor.float()` does;
//! a value too large for `f32` becomes infinite; the 16-bit types widen exactly, as `.to()` does).
//! A save writes the network's own type (`F32` for `f32`, `F64` for `f64`) unless
//! [`SaveOptions::dtype`] says otherwise (`F16` and `BF16` round to nearest, ties to even, from
//! the value as `f32`), so a save then a load gives back the same bits. Other element types
//! (integers, 8-bit floats) are rejected, naming the tensor.
//!
//! # Without `std`
//!
//! [`slice::from_bytes`] loads a whole file held in memory with neither `std` nor an allocator
//! (the same checks, errors that borrow from the slice); [`scan`] is its allocation-free header
//! reader, which the `network!` macro also uses to read weight files at compile time.
//!
//! # Failures
//!
//! Every failure is a [`WeightsError`] whose message names the tensor and says what was expected
//! and what was found: a missing tensor, extra tensors no parameter reads (an error unless
//! [`LoadOptions::allow_extra`]), a wrong shape, an unsupported dtype, a truncated file (naming the
//! tensor it cuts off), a corrupt one (naming the tensor whose entry is wrong), a header or data
//! too large, a path that is not a regular file, a renaming that sends two parameters to one name,
//! or an I/O error with the path.
//!
//! # Loading: the header first, then only what it justifies
//!
//! A load reads the 8-byte length and the JSON header, and checks them completely before it reads
//! any data: the header is at most the file's length and the format's 100 MB; it is parsed strictly
//! (no key twice, at any level: `serde_json` would keep the last; no unknown field; plain integers
//! below 2⁶⁴; at most 64 dimensions; no recursion, so no nesting can overflow the stack); every
//! tensor's `data_offsets` must hold exactly what its shape and dtype need, without overflow, the
//! tensors must follow one another from the end of the header to the end of the file (checked
//! against the file's real length); and every parameter's tensor must be present with its shape and
//! a float dtype. Only then are the parameters' own bytes read, by seeking to each (no whole-file
//! read): memory used is a small multiple of the header's real length (its parsed names and shapes;
//! under 8 times, shown by a counting allocator in `tests/suite/io_fuzz.rs`) plus the parameters' bytes,
//! whatever the file claims. Everything is checked before one value is written, so a failed load
//! leaves the network exactly as it was, bit for bit, and no copy of the network is made.
//!
//! A path that is not a regular file (a FIFO, `/dev/zero`, a directory) is refused before it is
//! opened (opening a FIFO would wait for a writer; a regular file is opened without blocking and
//! checked again, in case it was swapped). [`LoadOptions::allow_non_regular`] reads a FIFO or
//! device as a stream instead, front to back, with hard bounds from the network: a header of at
//! most 64 KiB plus 256 bytes and six per name byte for each parameter, data of at most the
//! parameters in `F64`; [`from_reader`] reads any stream so. [`from_bytes`] reads a slice in memory
//! with the same checks as a file.
//!
//! # Saving
//!
//! A save writes a temporary file in the target's directory, flushes it to disk and renames it over
//! the target: a crash or an error leaves the old file in place, never a half-written one. It
//! follows `torch.save` and the operating system: a symbolic link is followed (the file it points
//! to is replaced, a dangling link's file is created); a read-only target, a directory or a FIFO is
//! refused, not replaced. Temporary names are short (`.bp-<16 hex>-<pid>-<n>.tmp`, under 60 bytes
//! whatever the target's name), and a save removes those that killed earlier saves of the same
//! target left behind (named for it, of processes that no longer exist), nothing else.

pub mod convert;
pub mod scan;
#[cfg(feature = "serde")]
pub mod serde;
pub mod slice;

#[cfg(feature = "std")]
mod atomic;
#[cfg(feature = "std")]
mod error;
#[cfg(feature = "std")]
mod file;
#[cfg(feature = "std")]
mod header;
#[cfg(feature = "std")]
mod layout;
#[cfg(feature = "std")]
mod options;
#[cfg(feature = "std")]
mod plan;
#[cfg(feature = "std")]
mod prefix;
#[cfg(feature = "std")]
mod stream;

#[cfg(feature = "std")]
use std::any::Any;
#[cfg(feature = "std")]
use std::borrow::Cow;
#[cfg(feature = "std")]
use std::collections::{BTreeMap, HashMap};
#[cfg(feature = "std")]
use std::path::Path;

#[cfg(feature = "std")]
use safetensors::tensor::View;

#[cfg(feature = "std")]
use crate::network::{LayerInfo, Network, Param, ParamMut};
#[cfg(feature = "std")]
use crate::scalar::{self, Scalar};

#[cfg(feature = "std")]
pub use error::WeightsError;
#[cfg(feature = "std")]
pub use options::{Dtype, LoadOptions, Rename, SaveOptions};
/// The safetensors crate, whose error [`WeightsError::Encode`] carries.
#[cfg(feature = "std")]
pub use safetensors;

/// What a successful load found besides the parameters.
#[cfg(feature = "std")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded {
    /// Tensors in the file that no parameter read (only with [`LoadOptions::allow_extra`]), sorted.
    pub ignored: Vec<String>,
    /// The file's `__metadata__` entries (`format: pt` for a file PyTorch wrote).
    pub metadata: BTreeMap<String, String>,
}

/// Saves the network's parameters to `path` under its own names, in its own scalar type.
///
/// The file is replaced atomically (a temporary file beside it, then a rename); a read-only or
/// non-regular target is an error, a symbolic link is followed (see the module's "Saving").
///
/// ```
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 2 => tanh 3 => 1 > }
///
/// let name = format!("backprop-doc-save-{}.safetensors", std::process::id());
/// let path = std::env::temp_dir().join(name);
/// let net = Net::<f32>::init(7);
/// backprop::io::save(&net, &path)?; // safetensors.torch.load_file reads it
/// let mut back = Net::<f32>::zeros();
/// let loaded = backprop::io::load(&mut back, &path);
/// std::fs::remove_file(&path)?;
/// loaded?;
/// assert_eq!(back, net); // the same bits: an f32 network is saved as F32
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "std")]
pub fn save<N: Network>(net: &N, path: impl AsRef<Path>) -> Result<(), WeightsError> {
    save_with(net, path, &SaveOptions::default())
}

/// Saves the network's parameters to `path` with a chosen dtype, renaming and metadata.
#[cfg(feature = "std")]
pub fn save_with<N: Network>(
    net: &N,
    path: impl AsRef<Path>,
    options: &SaveOptions<'_>,
) -> Result<(), WeightsError> {
    let bytes = to_bytes(net, options)?;
    atomic::write_atomically(path.as_ref(), &bytes)
}

/// Loads every parameter from the file at `path`, strictly, under the network's own names.
///
/// On error the network is unchanged.
///
/// ```
/// use backprop::io::{self, WeightsError};
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 2 => tanh 3 => 1 > }
/// backprop::network! { struct Wide < 2 => tanh 4 => 1 > }
///
/// let name = format!("backprop-doc-load-{}.safetensors", std::process::id());
/// let path = std::env::temp_dir().join(name);
/// let net = Net::<f32>::init(7);
/// io::save(&net, &path)?;
/// // F32 tensors into an f64 network: widened, exactly.
/// let mut in_f64 = Net::<f64>::zeros();
/// let widened = io::load(&mut in_f64, &path).map(|_| ());
/// // A network of other shapes: refused, and left as it was.
/// let mut wide = Wide::<f32>::init(1);
/// let refused = io::load(&mut wide, &path);
/// std::fs::remove_file(&path)?;
/// widened?;
/// assert_eq!(in_f64, net.cast::<f64>());
/// assert!(matches!(refused, Err(WeightsError::Shape { .. })));
/// assert_eq!(wide, Wide::<f32>::init(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "std")]
pub fn load<N: Network>(net: &mut N, path: impl AsRef<Path>) -> Result<Loaded, WeightsError> {
    load_with(net, path, &LoadOptions::default())
}

/// Loads every parameter from the file at `path` with the renaming and policies of `options`.
///
/// The header is checked against the file's length and the network before any data is read,
/// and only the parameters' bytes are read. A path that is not a regular file is refused unless
/// [`LoadOptions::allow_non_regular`]. On error the network is unchanged.
#[cfg(feature = "std")]
pub fn load_with<N: Network>(
    net: &mut N,
    path: impl AsRef<Path>,
    options: &LoadOptions<'_>,
) -> Result<Loaded, WeightsError> {
    let path = path.as_ref();
    file::load(net, path, options).map_err(|e| e.at(path))
}

/// A new network (starting from [`Network::zeros`]) with every parameter read from `path`.
#[cfg(feature = "std")]
pub fn load_new<N: Network>(
    path: impl AsRef<Path>,
    options: &LoadOptions<'_>,
) -> Result<N, WeightsError> {
    let mut net = N::zeros();
    load_with(&mut net, path, options)?;
    Ok(net)
}

/// The bytes of a safetensors file holding the network's parameters (what [`save_with`] writes).
#[cfg(feature = "std")]
pub fn to_bytes<N: Network>(net: &N, options: &SaveOptions<'_>) -> Result<Vec<u8>, WeightsError> {
    let dtype = options.dtype.unwrap_or_else(native::<N::Scalar>);
    let names = file_names(net.params().map(|p| p.name), N::LAYERS, &options.rename)?;
    let tensors: Vec<(String, Tensor)> = net
        .params()
        .zip(names)
        .map(|(param, name)| (name, Tensor::from_param(&param, dtype)))
        .collect();
    let mut metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    metadata.extend(options.metadata.iter().cloned());
    safetensors::serialize(tensors, Some(metadata))
        .map_err(|source| WeightsError::Encode { source })
}

/// Loads every parameter from the bytes of a safetensors file (what [`load_with`] reads).
///
/// Everything is checked before anything is written: on error the network is unchanged.
#[cfg(feature = "std")]
pub fn from_bytes<N: Network>(
    net: &mut N,
    bytes: &[u8],
    options: &LoadOptions<'_>,
) -> Result<Loaded, WeightsError> {
    let len = bytes.len() as u64;
    let Some((&first, rest)) = bytes.split_first_chunk::<{ prefix::LEN }>() else {
        return Err(WeightsError::Truncated {
            path: None,
            tensor: None,
            expected_len: prefix::LEN,
            found_len: bytes.len(),
        });
    };
    let limit = prefix::MAX_HEADER;
    let n = prefix::header_len(
        first,
        limit,
        "the safetensors format's limit",
        Some(len - 8),
    )?;
    // n ≤ rest.len(), checked above.
    let (text, data) = rest.split_at(n as usize);
    let header = header::parse(text)?;
    let declared = layout::data_len(&header)?;
    layout::check_file_len(&header, 8 + n, declared, data.len() as u64)?;
    let plan = plan::plan(net, &header, options)?;
    let chunks: Option<Vec<&[u8]>> = plan
        .reads
        .iter()
        .map(|read| {
            let start = usize::try_from(read.start).ok()?;
            data.get(start..)?.get(..read.len)
        })
        .collect();
    let chunks =
        chunks.ok_or_else(|| layout::corrupt(None, "a tensor lies outside the data".into()))?;
    Ok(apply(net, plan, header.metadata, &chunks))
}

/// Loads every parameter from a stream holding a safetensors file (a pipe, standard input, a
/// socket), read once from its start to its end.
///
/// A stream has no length to check the header against, so the bounds come from the network: the
/// header may be at most 64 KiB plus 256 bytes and six per byte of name for each parameter, the
/// data at most the parameters in `F64` ([`WeightsError::TooLarge`] beyond), and the stream must
/// end where the data does. On error the network is unchanged.
#[cfg(feature = "std")]
pub fn from_reader<N: Network>(
    net: &mut N,
    reader: impl std::io::Read,
    options: &LoadOptions<'_>,
) -> Result<Loaded, WeightsError> {
    stream::load(net, reader, options)
}

/// Writes each parameter from its checked bytes (`chunks[i]` for parameter `i`): cannot fail.
#[cfg(feature = "std")]
fn apply<N: Network>(
    net: &mut N,
    plan: plan::Plan,
    metadata: BTreeMap<String, String>,
    chunks: &[&[u8]],
) -> Loaded {
    for ((mut param, read), bytes) in net.params_mut().zip(&plan.reads).zip(chunks) {
        copy_into(read.dtype, bytes, &mut param);
    }
    Loaded {
        ignored: plan.ignored,
        metadata,
    }
}

/// The file's name for each parameter, checking that no two parameters share one.
#[cfg(feature = "std")]
fn file_names(
    params: impl Iterator<Item = &'static str>,
    layers: &[LayerInfo],
    rename: &Rename<'_>,
) -> Result<Vec<String>, WeightsError> {
    let mut owner: HashMap<String, &'static str> = HashMap::new();
    let mut names = Vec::new();
    for param in params {
        let name = rename.apply(layers, param);
        if let Some(first) = owner.insert(name.clone(), param) {
            return Err(WeightsError::NameClash {
                tensor: name,
                first,
                second: param,
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// PyTorch's shape of a parameter: `[out]` for a bias, `[out, in]` for a weight.
#[cfg(feature = "std")]
fn torch_shape(name: &str, rows: usize, cols: usize) -> Vec<usize> {
    if name.ends_with(".bias") && cols == 1 {
        vec![rows]
    } else {
        vec![rows, cols]
    }
}

/// The element type a network of scalar `T` saves by default.
#[cfg(feature = "std")]
fn native<T: Scalar>() -> Dtype {
    if (&T::zero() as &dyn Any).is::<f32>() {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// Copies row-major values of `dtype` (exactly `rows · cols` of them) into the column-major
/// parameter, converting to `T`.
#[cfg(feature = "std")]
fn copy_into<T: Scalar>(dtype: Dtype, bytes: &[u8], param: &mut ParamMut<'_, T>) {
    let (rows, cols) = (param.rows, param.cols);
    let name = dtype_name(dtype);
    for (k, chunk) in bytes.chunks_exact(dtype.size()).enumerate() {
        if let Some(slot) = param.values.get_mut(k / cols + (k % cols) * rows) {
            *slot = convert::element(name, chunk);
        }
    }
}

/// The header's name of `dtype`.
#[cfg(feature = "std")]
fn dtype_name(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::F32 => "F32",
        Dtype::F64 => "F64",
        Dtype::F16 => "F16",
        Dtype::BF16 => "BF16",
    }
}

#[cfg(feature = "std")]
/// An owned tensor on its way to the file.
#[cfg(feature = "std")]
struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Row-major, little-endian.
    data: Vec<u8>,
}

#[cfg(feature = "std")]
impl Tensor {
    /// The parameter in PyTorch's layout (row-major `[out, in]`, or `[out]`) as `dtype`.
    fn from_param<T: Scalar>(param: &Param<'_, T>, dtype: Dtype) -> Self {
        let mut data = Vec::with_capacity(param.rows * param.cols * dtype.size());
        for row in 0..param.rows {
            for col in 0..param.cols {
                let value = param.get(row, col);
                match dtype {
                    Dtype::F32 => data.extend_from_slice(&to_f32(value).to_le_bytes()),
                    Dtype::F64 => data.extend_from_slice(&to_f64(value).to_le_bytes()),
                    Dtype::F16 => {
                        data.extend_from_slice(&convert::f32_to_f16(to_f32(value)).to_le_bytes())
                    }
                    Dtype::BF16 => {
                        data.extend_from_slice(&convert::f32_to_bf16(to_f32(value)).to_le_bytes())
                    }
                }
            }
        }
        Self {
            dtype,
            shape: torch_shape(param.name, param.rows, param.cols),
            data,
        }
    }
}

#[cfg(feature = "std")]
impl View for Tensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype.safetensors()
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// `value` as `f32`: the same bits when `T` is `f32`, otherwise rounded to nearest.
#[cfg(feature = "std")]
fn to_f32<T: Scalar>(value: T) -> f32 {
    match (&value as &dyn Any).downcast_ref::<f32>() {
        Some(&same) => same,
        None => to_f64(value) as f32,
    }
}

/// `value` as `f64`: the same bits when `T` is `f64`, otherwise exact (from `f32`).
#[cfg(feature = "std")]
fn to_f64<T: Scalar>(value: T) -> f64 {
    match (&value as &dyn Any).downcast_ref::<f64>() {
        Some(&same) => same,
        None => scalar::to_f64(value),
    }
}
