//! How names map to a file's tensors ([`Rename`]), and the options of a load or a save.

use crate::activation_kind::ActivationKind;
use std::fmt;

use crate::network::LayerInfo;

/// The element type of the tensors in a file: PyTorch's `torch.float32`, `torch.float64`,
/// `torch.float16` or `torch.bfloat16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 32-bit IEEE floats (`F32`, `torch.float32`).
    F32,
    /// 64-bit IEEE floats (`F64`, `torch.float64`).
    F64,
    /// 16-bit IEEE halves (`F16`, `torch.float16`): saved rounded to nearest (ties to even).
    F16,
    /// bfloat16 (`BF16`, `torch.bfloat16`): saved rounded to nearest (ties to even).
    BF16,
}

impl Dtype {
    /// Bytes per element: 4, 8, or 2 for the 16-bit types.
    pub const fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F64 => 8,
            Self::F16 | Self::BF16 => 2,
        }
    }

    /// The safetensors element type.
    pub(crate) fn safetensors(self) -> safetensors::Dtype {
        match self {
            Self::F32 => safetensors::Dtype::F32,
            Self::F64 => safetensors::Dtype::F64,
            Self::F16 => safetensors::Dtype::F16,
            Self::BF16 => safetensors::Dtype::BF16,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "F32",
            Self::F64 => "F64",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
        })
    }
}

/// How the network's parameter names (`fc1.weight`) map to tensor names in the file.
///
/// The same mapping serves loading (which tensor a parameter reads) and saving (which name it is
/// written under). It must be one to one; a mapping that sends two parameters to the same name is
/// a [`WeightsError::NameClash`](super::WeightsError::NameClash).
///
/// A PyTorch module whose layers are attributes called like the network's fields (`self.fc1 =
/// nn.Linear(...)`) needs no renaming. An `nn.Sequential(Linear, ReLU, Linear, Tanh, Linear)`
/// names its tensors by module index (`0.weight`, `2.weight`, `4.weight`): use
/// [`Rename::Sequential`], or [`Rename::SequentialAt`] when the indices follow another pattern
/// (dropout modules, say). A HashMap or any other rule fits in [`Rename::With`]:
///
/// ```
/// # use backprop::io::Rename;
/// use std::collections::HashMap;
/// let map = HashMap::from([("fc1.weight", "encoder.weight"), ("fc1.bias", "encoder.bias")]);
/// let rule = |name: &str| map.get(name).map_or_else(|| name.to_string(), |n| n.to_string());
/// let rename = Rename::With(&rule);
/// assert_eq!(rename.apply(&[], "fc1.bias"), "encoder.bias");
/// assert_eq!(rename.apply(&[], "fc2.bias"), "fc2.bias");
/// ```
#[derive(Clone, Copy, Default)]
pub enum Rename<'a> {
    /// The network's own names: `fc1.weight`, `fc1.bias`, ... (PyTorch's for attributes `fc1`, ...).
    #[default]
    Identity,
    /// `nn.Sequential` names: each layer is one module, followed by one activation module unless
    /// its activation is `identity`. For `4 => relu 5 => relu 2 => sigmoid 1` the layers are
    /// modules 0, 2 and 4, so `fc2.weight` is `2.weight`; for `3 => 4 => 2`, modules 0 and 1.
    Sequential,
    /// `nn.Sequential` names with the module index of each layer given, first layer first:
    /// `SequentialAt(&[0, 3, 6])` maps `fc2.weight` to `3.weight`. Layers past the end of the
    /// list keep their own names.
    SequentialAt(&'a [usize]),
    /// A prefix before every name, for a network that is a submodule: `Prefix("model.")` maps
    /// `fc1.weight` to `model.fc1.weight`.
    Prefix(&'a str),
    /// Pairs `(ours, file's)`; parameters that are not listed keep their own names.
    Map(&'a [(&'a str, &'a str)]),
    /// Any rule: our name in, the file's name out.
    With(&'a dyn Fn(&str) -> String),
}

impl Rename<'_> {
    /// The file's name for the parameter `name` of a network with these `layers`.
    ///
    /// `layers` is the network's [`Network::LAYERS`](crate::Network::LAYERS); only the
    /// `Sequential` forms read it.
    pub fn apply(&self, layers: &[LayerInfo], name: &str) -> String {
        match self {
            Self::Identity => name.to_string(),
            Self::Sequential => {
                let mut index = 0;
                for layer in layers {
                    if let Some(rest) = field_suffix(name, layer.name) {
                        return format!("{index}{rest}");
                    }
                    index += if layer.kind == ActivationKind::Identity {
                        1
                    } else {
                        2
                    };
                }
                name.to_string()
            }
            Self::SequentialAt(indices) => layers
                .iter()
                .zip(indices.iter())
                .find_map(|(layer, index)| {
                    field_suffix(name, layer.name).map(|rest| format!("{index}{rest}"))
                })
                .unwrap_or_else(|| name.to_string()),
            Self::Prefix(prefix) => format!("{prefix}{name}"),
            Self::Map(pairs) => pairs
                .iter()
                .find(|(ours, _)| *ours == name)
                .map_or_else(|| name.to_string(), |(_, theirs)| theirs.to_string()),
            Self::With(rule) => rule(name),
        }
    }
}

/// `".weight"` when `name` is `"{field}.weight"`.
fn field_suffix<'n>(name: &'n str, field: &str) -> Option<&'n str> {
    name.strip_prefix(field)
        .filter(|rest| rest.starts_with('.'))
}

impl fmt::Debug for Rename<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Identity => f.write_str("Identity"),
            Self::Sequential => f.write_str("Sequential"),
            Self::SequentialAt(indices) => f.debug_tuple("SequentialAt").field(indices).finish(),
            Self::Prefix(prefix) => f.debug_tuple("Prefix").field(prefix).finish(),
            Self::Map(pairs) => f.debug_tuple("Map").field(pairs).finish(),
            Self::With(_) => f.write_str("With(..)"),
        }
    }
}

/// Options of a load: the renaming, and whether tensors no parameter reads are allowed.
///
/// `LoadOptions::default()` is strict: our own names, and every tensor in the file must be read.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions<'a> {
    /// How our names map to the file's.
    pub rename: Rename<'a>,
    /// Ignore tensors that no parameter reads instead of failing with
    /// [`WeightsError::Unexpected`](super::WeightsError::Unexpected).
    pub allow_extra: bool,
    /// Read a path that is not a regular file (a FIFO, a character device) as a stream, within
    /// bounds derived from the network, instead of failing with
    /// [`WeightsError::NotAFile`](super::WeightsError::NotAFile). Directories are always refused.
    pub allow_non_regular: bool,
}

impl<'a> LoadOptions<'a> {
    /// Strict loading under our own names (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the tensors under the names `rename` gives.
    pub fn rename(mut self, rename: Rename<'a>) -> Self {
        self.rename = rename;
        self
    }

    /// Ignores (`true`) or rejects (`false`, the default) tensors that no parameter reads.
    pub fn allow_extra(mut self, allow: bool) -> Self {
        self.allow_extra = allow;
        self
    }

    /// Reads (`true`) or refuses (`false`, the default) a path that is not a regular file.
    pub fn allow_non_regular(mut self, allow: bool) -> Self {
        self.allow_non_regular = allow;
        self
    }
}

/// Options of a save: the element type on disk, the renaming and the file's metadata.
///
/// `SaveOptions::default()` writes the network's own scalar type under its own names, with the
/// metadata `{"format": "pt"}` that Hugging Face's `save_pretrained` writes (and checks on load).
#[derive(Clone, Debug, Default)]
pub struct SaveOptions<'a> {
    /// The element type on disk; `None` is the network's own (`F32` for `f32`, `F64` otherwise).
    pub dtype: Option<Dtype>,
    /// How our names map to the file's.
    pub rename: Rename<'a>,
    /// Extra `__metadata__` entries (string to string), after `format: pt`; a later key wins.
    pub metadata: Vec<(String, String)>,
}

impl<'a> SaveOptions<'a> {
    /// The network's own element type and names (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the tensors as `dtype`, converting (rounding to nearest when narrowing to `F32`).
    pub fn dtype(mut self, dtype: Dtype) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// Writes the tensors under the names `rename` gives.
    pub fn rename(mut self, rename: Rename<'a>) -> Self {
        self.rename = rename;
        self
    }

    /// Adds a `__metadata__` entry (safetensors metadata maps strings to strings).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }
}
