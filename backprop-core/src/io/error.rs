//! [`WeightsError`]: everything that can go wrong reading or writing a weight file, in words that
//! name the tensor and say what was expected and what was found.

use std::fmt;
use std::path::PathBuf;

use safetensors::SafeTensorError;

use super::header::Defect;

/// At most this many names are listed in a message; the rest are counted.
const LISTED: usize = 8;

/// Why a weight file could not be loaded or saved. A failed load leaves the network unchanged.
#[derive(Debug)]
#[non_exhaustive]
pub enum WeightsError {
    /// A parameter's tensor is not in the file.
    Missing {
        /// The name looked up in the file (after renaming).
        tensor: String,
        /// The network's own name for the parameter (`fc1.weight`).
        param: &'static str,
        /// The shape the tensor should have (`[out, in]` or `[out]`).
        expected_shape: Vec<usize>,
        /// Every tensor name the file has, sorted.
        available: Vec<String>,
    },
    /// The file has tensors that no parameter reads (allowed with `LoadOptions::allow_extra`).
    Unexpected {
        /// The tensors no parameter reads, sorted.
        tensors: Vec<String>,
        /// The names the network reads (after renaming), in parameter order.
        expected: Vec<String>,
    },
    /// A tensor's shape is not the parameter's.
    Shape {
        /// The tensor's name in the file.
        tensor: String,
        /// The network's own name for the parameter.
        param: &'static str,
        /// The parameter's shape (`[out, in]` for a weight, `[out]` for a bias).
        expected: Vec<usize>,
        /// The tensor's shape in the file.
        found: Vec<usize>,
    },
    /// A tensor's element type is not `F32`, `F64`, `F16` or `BF16`.
    Dtype {
        /// The tensor's name in the file.
        tensor: String,
        /// The network's own name for the parameter.
        param: &'static str,
        /// The element type in the file (`I64`, `F8_E4M3`, ...).
        found: String,
    },
    /// Two parameters would read or write the same tensor name (a renaming that is not one to one).
    NameClash {
        /// The tensor name both map to.
        tensor: String,
        /// The first parameter mapped to it.
        first: &'static str,
        /// The second parameter mapped to it.
        second: &'static str,
    },
    /// The file ends before its header or a tensor's data does (a cut-off download or copy).
    Truncated {
        /// The file, when the bytes came from one.
        path: Option<PathBuf>,
        /// The first tensor whose data the file cuts off; `None` when the header itself is cut off.
        tensor: Option<String>,
        /// The length in bytes the file needs (up to the end of that tensor, or of the header).
        expected_len: usize,
        /// The file's length in bytes.
        found_len: usize,
    },
    /// The bytes are not a valid safetensors file (a header that is not the format's JSON, a
    /// key given twice, sizes or offsets that do not add up, bytes after the last tensor).
    Corrupt {
        /// The file, when the bytes came from one.
        path: Option<PathBuf>,
        /// The tensor whose entry is wrong, when one is.
        tensor: Option<String>,
        /// What is wrong, naming the tensor, with what was expected and what was found.
        reason: String,
    },
    /// The header or the data claims more bytes than a load accepts: more than the format's
    /// 100 MB for a header, or (reading a stream) more than the network's tensors can need.
    TooLarge {
        /// The file, when the bytes came from one.
        path: Option<PathBuf>,
        /// `header` or `data`.
        part: &'static str,
        /// The length the file claims.
        claimed: u64,
        /// The most accepted.
        limit: u64,
        /// Where the limit comes from.
        why: &'static str,
    },
    /// The path is a directory, FIFO, device or socket, not a regular file (a stream is read only
    /// with `LoadOptions::allow_non_regular`).
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead (`a FIFO (named pipe)`, `a character device`, ...).
        kind: &'static str,
    },
    /// The safetensors writer refused the tensors (it should not; kept for completeness).
    Encode {
        /// What the safetensors writer reported.
        source: SafeTensorError,
    },
    /// Reading, writing or replacing a file failed.
    Io {
        /// What was being done: `read`, `follow the symbolic link`, `create a temporary file
        /// beside`, `write`, `replace`.
        action: &'static str,
        /// The file it was done to (the target of a save, not its temporary file).
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Writes `[5, 4]`.
fn shape(f: &mut fmt::Formatter<'_>, dims: &[usize]) -> fmt::Result {
    f.write_str("[")?;
    for (i, d) in dims.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{d}")?;
    }
    f.write_str("]")
}

/// Writes "`a`, `b`, `c`" with at most [`LISTED`] names, then "and N more".
fn names(f: &mut fmt::Formatter<'_>, list: &[String]) -> fmt::Result {
    for (i, name) in list.iter().take(LISTED).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "`{name}`")?;
    }
    if list.len() > LISTED {
        write!(f, " and {} more", list.len() - LISTED)?;
    }
    Ok(())
}

/// Writes " (the network's `fc1.weight`)" when the file name differs from ours.
fn ours(f: &mut fmt::Formatter<'_>, tensor: &str, param: &str) -> fmt::Result {
    if tensor != param {
        write!(f, " (the network's `{param}`)")?;
    }
    Ok(())
}

/// `true` when a name looks like an `nn.Sequential` entry (`0.weight`).
fn sequential_name(name: &str) -> bool {
    name.split('.')
        .next()
        .is_some_and(|head| !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing {
                tensor,
                param,
                expected_shape,
                available,
            } => {
                write!(f, "missing tensor `{tensor}`")?;
                ours(f, tensor, param)?;
                f.write_str(": expected a tensor of shape ")?;
                shape(f, expected_shape)?;
                if available.is_empty() {
                    f.write_str(", found a file with no tensors at all")
                } else {
                    write!(f, ", found none among the file's {}: ", available.len())?;
                    names(f, available)?;
                    if !sequential_name(tensor) && available.iter().any(|n| sequential_name(n)) {
                        f.write_str(
                            " (an nn.Sequential state_dict? load with `Rename::Sequential`)",
                        )?;
                    }
                    Ok(())
                }
            }
            Self::Unexpected { tensors, expected } => {
                let s = if tensors.len() == 1 { "" } else { "s" };
                write!(f, "unexpected tensor{s} ")?;
                names(f, tensors)?;
                write!(
                    f,
                    " in the file: expected only the network's {} tensors (",
                    expected.len()
                )?;
                names(f, expected)?;
                f.write_str("); `LoadOptions::allow_extra(true)` ignores extra tensors")
            }
            Self::Shape {
                tensor,
                param,
                expected,
                found,
            } => {
                write!(f, "tensor `{tensor}`")?;
                ours(f, tensor, param)?;
                f.write_str(" has the wrong shape: expected ")?;
                shape(f, expected)?;
                f.write_str(", found ")?;
                shape(f, found)
            }
            Self::Dtype {
                tensor,
                param,
                found,
            } => {
                write!(f, "tensor `{tensor}`")?;
                ours(f, tensor, param)?;
                write!(
                    f,
                    " has an unsupported dtype: expected F32, F64, F16 or BF16, found {found}"
                )
            }
            Self::NameClash {
                tensor,
                first,
                second,
            } => write!(
                f,
                "the renaming maps both `{first}` and `{second}` to tensor `{tensor}`: \
                 expected one tensor name per parameter"
            ),
            Self::Truncated {
                path,
                tensor,
                expected_len,
                found_len,
            } => {
                match path {
                    Some(path) => write!(f, "`{}` is truncated: ", path.display())?,
                    None => f.write_str("truncated safetensors data: ")?,
                }
                write!(f, "expected at least {expected_len} bytes (")?;
                match tensor {
                    Some(tensor) => write!(f, "to the end of tensor `{tensor}`")?,
                    None if *expected_len <= 8 => f.write_str("the header's length")?,
                    None => f.write_str("to the end of the header")?,
                }
                write!(f, "), found {found_len}")
            }
            Self::Corrupt { path, reason, .. } => {
                match path {
                    Some(path) => {
                        write!(f, "`{}` is not a valid safetensors file", path.display())?
                    }
                    None => f.write_str("not a valid safetensors file")?,
                }
                write!(f, ": {reason}")
            }
            Self::TooLarge {
                path,
                part,
                claimed,
                limit,
                why,
            } => {
                match path {
                    Some(path) => write!(f, "`{}`: ", path.display())?,
                    None => f.write_str("safetensors data: ")?,
                }
                write!(
                    f,
                    "the {part} claims {claimed} bytes: expected at most {limit} ({why})"
                )
            }
            Self::NotAFile { path, kind } => write!(
                f,
                "cannot read `{}`: it is {kind}, expected a regular file \
                 (`LoadOptions::allow_non_regular(true)` reads a stream, within a bound)",
                path.display()
            ),
            Self::Encode { source } => {
                write!(f, "cannot encode the weights as safetensors: {source}")
            }
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
        }
    }
}

impl WeightsError {
    /// The same error, naming the file `path` the bytes came from.
    pub(crate) fn at(mut self, path: &std::path::Path) -> Self {
        if let Self::Corrupt { path: p, .. }
        | Self::Truncated { path: p, .. }
        | Self::TooLarge { path: p, .. } = &mut self
        {
            *p = Some(path.to_path_buf());
        }
        self
    }
}

impl From<Defect> for WeightsError {
    fn from(defect: Defect) -> Self {
        Self::Corrupt {
            path: None,
            tensor: defect.tensor,
            reason: defect.reason,
        }
    }
}

impl std::error::Error for WeightsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Encode { source } => Some(source),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
