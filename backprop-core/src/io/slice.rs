//! Loading weights from a byte slice with neither `std` nor an allocator: a firmware receives a
//! safetensors file over a link into a buffer and loads it into a network it holds.
//!
//! ```
//! # use backprop::io::slice::{self, Naming};
//! # fn demo<N: backprop::Network>(net: &mut N, received: &[u8]) {
//! match slice::from_bytes(net, received, Naming::StateDict) {
//!     Ok(()) => {}                    // every parameter replaced
//!     Err(error) => { let _ = error; } // the network is unchanged; `error` names the tensor
//! }
//! # }
//! ```
//!
//! It reads the same files as [`super::from_bytes`] (`F32`, `F64`, `F16` or `BF16` tensors under
//! state-dict or `nn.Sequential` names) and checks them completely before it writes one value:
//! framing, header syntax (the allocation-free `scan`), every tensor inside the
//! data with exactly the bytes its shape and dtype need, the data covered without gap or overlap,
//! each parameter's tensor present once with its shape and a float dtype, and no other tensor.
//! Errors borrow from the slice and name the tensor, the expected and the found shape or dtype.
//! Memory: a few words of stack; time: quadratic in the number of tensors (a network has few;
//! a file with more tensors than the network has parameters is refused after one linear pass).

use core::fmt;

use super::convert;
use super::scan::{self, Entry, ScanError};
use crate::activation_kind::ActivationKind;
use crate::network::{LayerInfo, Network};

/// How the network's parameter names map to the file's tensor names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Naming {
    /// The network's own names, PyTorch's for a module with attributes `fc1`, `fc2`, ...
    #[default]
    StateDict,
    /// `nn.Sequential` names: each layer one module, followed by one activation module unless its
    /// activation is `identity` (`4 => relu 5 => 1`: `0.weight`, `2.weight`), as
    /// [`Rename::Sequential`](super::Rename::Sequential).
    Sequential,
}

/// A tensor's name in the file as the network expects it, made without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileName {
    /// The network's name for the parameter (`fc2.weight`).
    pub param: &'static str,
    /// The module index replacing the layer's name (`nn.Sequential`), if any.
    pub index: Option<usize>,
    /// What follows the layer's name (`.weight`), when `index` replaces it.
    pub suffix: &'static str,
}

impl FileName {
    /// The name of `param` under `naming`.
    pub fn of(param: &'static str, layers: &[LayerInfo], naming: Naming) -> FileName {
        let own = FileName {
            param,
            index: None,
            suffix: "",
        };
        if naming == Naming::StateDict {
            return own;
        }
        let mut index = 0;
        for layer in layers {
            if let Some(rest) = param
                .strip_prefix(layer.name)
                .filter(|rest| rest.starts_with('.'))
            {
                return FileName {
                    param,
                    index: Some(index),
                    suffix: rest,
                };
            }
            index += if layer.kind == ActivationKind::Identity {
                1
            } else {
                2
            };
        }
        own
    }

    /// Whether `name` is this name.
    pub fn matches(&self, name: &str) -> bool {
        match self.index {
            None => name == self.param,
            Some(index) => name.strip_suffix(self.suffix).is_some_and(|digits| {
                !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'))
                    && digits.parse::<usize>() == Ok(index)
            }),
        }
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            None => f.write_str(self.param),
            Some(index) => write!(f, "{index}{}", self.suffix),
        }
    }
}

/// A parameter's PyTorch shape: `[out, in]`, or `[out]` for a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// 1 or 2.
    pub rank: usize,
    /// The dimensions (`dims[1]` unused for a bias).
    pub dims: [usize; 2],
}

impl Shape {
    fn of(name: &str, rows: usize, cols: usize) -> Shape {
        if name.ends_with(".bias") && cols == 1 {
            Shape {
                rank: 1,
                dims: [rows, 0],
            }
        } else {
            Shape {
                rank: 2,
                dims: [rows, cols],
            }
        }
    }

    fn as_slice(&self) -> &[usize] {
        &self.dims[..self.rank]
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_slice() {
            [n] => write!(f, "[{n}]"),
            [rows, cols] => write!(f, "[{rows}, {cols}]"),
            _ => f.write_str("[]"),
        }
    }
}

/// Why a slice could not be loaded; the network is unchanged. Names borrow from the slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BytesError<'a> {
    /// The framing or the header is not a valid safetensors file.
    Format(ScanError<'a>),
    /// A tensor's data lies beyond the end of the slice.
    Truncated {
        /// The tensor cut off.
        tensor: &'a str,
        /// The bytes of data its offsets need.
        expected: u64,
        /// The bytes of data the slice holds.
        found: u64,
    },
    /// The tensors do not cover the data exactly: a gap, an overlap, or bytes after the last.
    Layout {
        /// A tensor concerned (the first overlapping one), if any.
        tensor: Option<&'a str>,
        /// The bytes of data the tensors hold together.
        expected: u64,
        /// The bytes of data the slice holds.
        found: u64,
    },
    /// A parameter's tensor is not in the file.
    Missing {
        /// The name the tensor should have.
        tensor: FileName,
        /// The parameter's shape.
        expected: Shape,
    },
    /// A tensor appears twice.
    Duplicate {
        /// Its name.
        tensor: &'a str,
    },
    /// A tensor no parameter reads.
    Unexpected {
        /// Its name.
        tensor: &'a str,
    },
    /// A tensor has the wrong shape.
    Shape {
        /// Its name.
        tensor: FileName,
        /// The parameter's shape.
        expected: Shape,
        /// The shape in the file, as written (`[4, 5]`).
        found: &'a str,
    },
    /// A tensor's element type is not `F32`, `F64`, `F16` or `BF16`.
    Dtype {
        /// Its name.
        tensor: FileName,
        /// The element type in the file.
        found: &'a str,
    },
}

impl fmt::Display for BytesError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format(error) => match error.tensor {
                Some(tensor) => write!(f, "tensor `{tensor}`: {} (at byte {})", error.reason, error.offset),
                None => write!(f, "{} (at byte {})", error.reason, error.offset),
            },
            Self::Truncated {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "the file is truncated in tensor `{tensor}`: expected {expected} bytes of data, found {found}"
            ),
            Self::Layout {
                tensor: Some(tensor),
                ..
            } => write!(f, "tensor `{tensor}` overlaps another tensor's data"),
            Self::Layout {
                tensor: None,
                expected,
                found,
            } => write!(
                f,
                "the tensors hold {expected} bytes of data, but {found} bytes follow the header"
            ),
            Self::Missing { tensor, expected } => {
                write!(f, "tensor `{tensor}` is missing: expected shape {expected}")?;
                if tensor.index.is_some() {
                    write!(f, " (our `{}`)", tensor.param)?;
                }
                Ok(())
            }
            Self::Duplicate { tensor } => write!(f, "tensor `{tensor}` appears twice in the header"),
            Self::Unexpected { tensor } => write!(
                f,
                "unexpected tensor `{tensor}`: no parameter of the network reads it"
            ),
            Self::Shape {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "tensor `{tensor}` has the wrong shape: expected {expected}, found {found}"
            ),
            Self::Dtype { tensor, found } => write!(
                f,
                "tensor `{tensor}` has dtype {found}: expected F32, F64, F16 or BF16"
            ),
        }
    }
}

impl<'a> From<ScanError<'a>> for BytesError<'a> {
    fn from(error: ScanError<'a>) -> Self {
        Self::Format(error)
    }
}

/// The one entry named `name`, checked for the parameter; errors name it.
fn find<'a>(
    header: &'a [u8],
    name: FileName,
    expected: Shape,
) -> Result<Entry<'a>, BytesError<'a>> {
    let mut found = None;
    for entry in scan::entries(header) {
        let entry = entry?;
        if name.matches(entry.name) {
            if found.is_some() {
                return Err(BytesError::Duplicate { tensor: entry.name });
            }
            found = Some(entry);
        }
    }
    let Some(entry) = found else {
        return Err(BytesError::Missing {
            tensor: name,
            expected,
        });
    };
    if !matches!(entry.dtype, "F32" | "F64" | "F16" | "BF16") {
        return Err(BytesError::Dtype {
            tensor: name,
            found: entry.dtype,
        });
    }
    if !entry.has_shape(expected.as_slice()) {
        return Err(BytesError::Shape {
            tensor: name,
            expected,
            found: entry.shape_text,
        });
    }
    Ok(entry)
}

/// Loads every parameter of `net` from `bytes`, a whole safetensors file, with no allocation.
/// Everything is checked before anything is written: on error `net` is unchanged.
pub fn from_bytes<'a, N: Network>(
    net: &mut N,
    bytes: &'a [u8],
    naming: Naming,
) -> Result<(), BytesError<'a>> {
    let (header, data) = scan::split(bytes)?;
    let available = data.len() as u64;
    // One linear pass: syntax, every tensor inside the data, their total size.
    let (mut count, mut total) = (0usize, 0u64);
    for entry in scan::entries(header) {
        let entry = entry?;
        if entry.end > available {
            return Err(BytesError::Truncated {
                tensor: entry.name,
                expected: entry.end,
                found: available,
            });
        }
        count += 1;
        total = total.saturating_add(entry.end - entry.start);
    }
    // Each parameter's tensor, once, with its dtype and shape.
    let mut params = 0usize;
    for param in net.params() {
        let name = FileName::of(param.name, N::LAYERS, naming);
        find(header, name, Shape::of(param.name, param.rows, param.cols))?;
        params += 1;
    }
    if count != params {
        // Every parameter found its tensor once, so some other tensor is left over.
        for entry in scan::entries(header) {
            let entry = entry?;
            let read = net
                .params()
                .any(|param| FileName::of(param.name, N::LAYERS, naming).matches(entry.name));
            if !read {
                return Err(BytesError::Unexpected { tensor: entry.name });
            }
        }
    }
    // The tensors (exactly the parameters' now) tile the data: no overlap, no gap, no tail.
    for (i, a) in scan::entries(header).enumerate() {
        let a = a?;
        for b in scan::entries(header).skip(i + 1) {
            let b = b?;
            if a.start < b.end && b.start < a.end {
                return Err(BytesError::Layout {
                    tensor: Some(a.name),
                    expected: total,
                    found: available,
                });
            }
        }
    }
    if total != available {
        return Err(BytesError::Layout {
            tensor: None,
            expected: total,
            found: available,
        });
    }
    // Checked: write, converting row-major file values into column-major parameters.
    for param in net.params_mut() {
        let name = FileName::of(param.name, N::LAYERS, naming);
        let entry = find(header, name, Shape::of(param.name, param.rows, param.cols))?;
        let width = (entry.bits / 8) as usize;
        let (rows, cols) = (param.rows, param.cols);
        let chunk = &data[entry.start as usize..entry.end as usize];
        for (k, element) in chunk.chunks_exact(width).enumerate() {
            if let Some(slot) = param.values.get_mut(k / cols + (k % cols) * rows) {
                *slot = convert::element(entry.dtype, element);
            }
        }
    }
    Ok(())
}
