//! Weights compiled in: `#[weights("models/policy.safetensors")]` on a declaration reads a
//! safetensors file (as PyTorch's `save_file(model.state_dict(), ...)` writes it) while the macro
//! runs, checks it against the declared architecture, and generates `Net::WEIGHTS` (an `f32` network) and
//! `Net::WEIGHTS_F64`, `const` networks holding its values (for a `static` in flash).
//!
//! The file is read with the same allocation-free header scanner as the run-time loader without
//! std (the `backprop-scan` crate), so both accept the same files. Every
//! problem with the file is a compile error on the path literal naming the tensor with the
//! expected and found shapes (or the file and the reason). Values are converted to each scalar as
//! torch's `.to()` does: `F16`/`BF16` widen exactly, `F64` into `f32` rounds to nearest.
//!
//! The expansion includes the file with `include_bytes!` (by absolute path, unused), so cargo
//! rebuilds the crate when it changes.

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Attribute, Ident, LitStr};

use crate::activation::Activation;
use crate::expand::private;
use crate::names::part_type;
use crate::valid::{CheckedLayer, Network};

#[allow(dead_code, clippy::all)]
use backprop_scan as scan;

/// How layer names map to the file's tensor names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Names {
    /// `fc1.weight`, ...: a module whose layers are attributes named like the fields.
    StateDict,
    /// `0.weight`, `2.weight`, ...: an `nn.Sequential`, one activation module after each layer
    /// whose activation is not `identity` (the run-time `Rename::Sequential`).
    Sequential,
}

/// A parsed `#[weights("path", names = sequential)]`.
#[derive(Clone)]
pub struct WeightsAttr {
    /// The path literal, relative to the crate's manifest directory.
    pub path: LitStr,
    /// The naming.
    pub names: Names,
}

/// A file read and checked: per layer (in declaration order), its weight (row-major `[out][in]`)
/// and bias, as `f64` values that convert exactly or as torch does (see [`Tensor`]).
pub struct Weights {
    /// The file's absolute path, for `include_bytes!`.
    pub absolute: String,
    /// Weight and bias of every layer.
    pub layers: Vec<(Tensor, Tensor)>,
}

/// A tensor's values: kept as `f32` when the file's are `F32`/`F16`/`BF16` (so that an `f32`
/// network gets them exactly), or as `f64` (rounded once into an `f32` network).
pub enum Tensor {
    /// Values that are exact in `f32`.
    Single(Vec<f32>),
    /// `F64` values.
    Double(Vec<f64>),
}

/// Parses the attribute's arguments.
pub fn parse_attr(attr: &Attribute) -> syn::Result<WeightsAttr> {
    attr.parse_args_with(|input: syn::parse::ParseStream| {
        let path: LitStr = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected the weight file's path as a string, as in \
                 `#[weights(\"models/policy.safetensors\")]`",
            )
        })?;
        let mut names = Names::StateDict;
        if input.parse::<Option<syn::Token![,]>>()?.is_some() && !input.is_empty() {
            let key: Ident = input.parse()?;
            if key != "names" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown `weights` option `{key}`; the only option is `names = sequential` (or `names = state_dict`)"),
                ));
            }
            input.parse::<syn::Token![=]>()?;
            let value: Ident = input.parse()?;
            names = match value.to_string().as_str() {
                "sequential" => Names::Sequential,
                "state_dict" => Names::StateDict,
                other => {
                    return Err(syn::Error::new(
                        value.span(),
                        format!("unknown naming `{other}`; expected `sequential` (`0.weight`, `2.weight`, ...) or `state_dict` (`fc1.weight`, ...)"),
                    ))
                }
            };
            input.parse::<Option<syn::Token![,]>>()?;
        }
        Ok(WeightsAttr { path, names })
    })
}

/// A layer's name as parameters use it: `fc1`, or `encoder.fc1` in a chain.
fn layer_name(layer: &CheckedLayer) -> String {
    match &layer.part {
        Some(part) => format!("{}.{}", part.unraw(), layer.field.unraw()),
        None => layer.field.unraw().to_string(),
    }
}

/// The file's name of each layer's weight and bias.
fn tensor_names(layers: &[CheckedLayer], names: Names) -> Vec<(String, String)> {
    let mut index = 0;
    layers
        .iter()
        .map(|layer| {
            let base = match names {
                Names::StateDict => layer_name(layer),
                Names::Sequential => index.to_string(),
            };
            index += if layer.activation == Activation::Identity {
                1
            } else {
                2
            };
            (format!("{base}.weight"), format!("{base}.bias"))
        })
        .collect()
}

/// `[5, 4]`.
fn shown(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Reads and checks the file for `layers`; every error is on the path literal.
pub fn read(
    attr: &WeightsAttr,
    layers: &[CheckedLayer],
    struct_name: &str,
) -> syn::Result<Weights> {
    let span = attr.path.span();
    let relative = attr.path.value();
    let fail = |message: String| syn::Error::new(span, message);
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = manifest.join(&relative);
    let bytes = std::fs::read(&path).map_err(|error| {
        let reason = match error.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            _ => error.to_string().to_lowercase(),
        };
        fail(format!(
            "cannot read weight file `{relative}`: {reason}; \
             hint: the path is relative to the crate's directory, where its Cargo.toml is"
        ))
    })?;
    let corrupt = |error: scan::ScanError<'_>| {
        let tensor = error
            .tensor
            .map_or(String::new(), |t| format!(" in tensor `{t}`"));
        fail(format!(
            "weight file `{relative}` is not a valid safetensors file: {}{tensor} (at byte {}); \
             hint: write it with `safetensors.torch.save_file(model.state_dict(), path)`",
            error.reason, error.offset
        ))
    };
    let (header, data) = scan::split(&bytes).map_err(corrupt)?;
    let mut entries = Vec::new();
    for entry in scan::entries(header) {
        let entry = entry.map_err(corrupt)?;
        if entries
            .iter()
            .any(|e: &scan::Entry<'_>| e.name == entry.name)
        {
            return Err(fail(format!(
                "weight file `{relative}` is corrupt: tensor `{}` appears twice in its header",
                entry.name
            )));
        }
        if entry.end > data.len() as u64 {
            return Err(fail(format!(
                "weight file `{relative}` is truncated: tensor `{}` needs data up to byte {}, \
                 found {} bytes of data",
                entry.name,
                entry.end,
                data.len()
            )));
        }
        entries.push(entry);
    }
    let mut sorted: Vec<(u64, u64)> = entries.iter().map(|e| (e.start, e.end)).collect();
    sorted.sort();
    let mut at = 0;
    for (start, end) in sorted {
        if start != at {
            return Err(fail(format!(
                "weight file `{relative}` is corrupt: its tensors' data has a gap or an overlap at byte {at}"
            )));
        }
        at = end;
    }
    if at != data.len() as u64 {
        return Err(fail(format!(
            "weight file `{relative}` is corrupt: its tensors hold {at} bytes of data, but {} follow the header",
            data.len()
        )));
    }
    let names = tensor_names(layers, attr.names);
    let wanted: Vec<&str> = names
        .iter()
        .flat_map(|(w, b)| [w.as_str(), b.as_str()])
        .collect();
    let available = || {
        let mut list: Vec<String> = entries
            .iter()
            .map(|e| {
                format!(
                    "`{}` {}",
                    e.name,
                    e.shape_text.replace(' ', "").replace(',', ", ")
                )
            })
            .collect();
        list.sort();
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        }
    };
    let hint = || {
        let sequential = entries
            .iter()
            .any(|e| e.name.starts_with(|c: char| c.is_ascii_digit()));
        match attr.names {
            Names::StateDict if sequential => format!(
                "; hint: the file has `nn.Sequential` names: write `#[weights(\"{relative}\", names = sequential)]`"
            ),
            Names::Sequential if !sequential => {
                "; hint: the file has state-dict names: remove `names = sequential`".to_string()
            }
            _ => String::new(),
        }
    };
    let mut layers_out = Vec::new();
    for (layer, (weight, bias)) in layers.iter().zip(&names) {
        let mut pair = Vec::new();
        for (tensor, shape) in [
            (weight, vec![layer.outputs, layer.inputs]),
            (bias, vec![layer.outputs]),
        ] {
            let Some(entry) = entries.iter().find(|e| e.name == tensor.as_str()) else {
                return Err(fail(format!(
                    "weight file `{relative}` has no tensor `{tensor}`: expected shape {} for layer `{}` \
                     ({} → {}) of `{struct_name}`; found {}{}",
                    shown(&shape),
                    layer_name(layer),
                    layer.inputs,
                    layer.outputs,
                    available(),
                    hint()
                )));
            };
            if !entry.has_shape(&shape) {
                return Err(fail(format!(
                    "tensor `{tensor}` in `{relative}` has the wrong shape: expected {}, found {} \
                     (layer `{}` is {} → {}; PyTorch stores a weight as [out, in])",
                    shown(&shape),
                    entry.shape_text.replace(' ', "").replace(',', ", "),
                    layer_name(layer),
                    layer.inputs,
                    layer.outputs
                )));
            }
            let chunk = &data[entry.start as usize..entry.end as usize];
            let values = match entry.dtype {
                "F32" => Tensor::Single(
                    chunk
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                "F16" => Tensor::Single(
                    chunk
                        .chunks_exact(2)
                        .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                        .collect(),
                ),
                "BF16" => Tensor::Single(
                    chunk
                        .chunks_exact(2)
                        .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                        .collect(),
                ),
                "F64" => Tensor::Double(
                    chunk
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                        .collect(),
                ),
                other => {
                    return Err(fail(format!(
                        "tensor `{tensor}` in `{relative}` has an unsupported dtype: expected F32, F64, \
                         F16 or BF16, found {other}; hint: save with `model.float()` first"
                    )))
                }
            };
            pair.push(values);
        }
        let bias = pair.pop().unwrap_or(Tensor::Single(Vec::new()));
        let weight = pair.pop().unwrap_or(Tensor::Single(Vec::new()));
        layers_out.push((weight, bias));
    }
    if let Some(extra) = entries.iter().find(|e| !wanted.contains(&e.name)) {
        return Err(fail(format!(
            "weight file `{relative}` has an unexpected tensor `{}` {} that no layer of `{struct_name}` reads; \
             expected only {}{}",
            extra.name,
            extra.shape_text.replace(' ', "").replace(',', ", "),
            wanted.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
            hint()
        )));
    }
    Ok(Weights {
        absolute: path.display().to_string(),
        layers: layers_out,
    })
}

/// An IEEE half as `f32`: exact.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    match exponent {
        0 => {
            let magnitude = mantissa as f32 * (1.0 / 16_777_216.0);
            if sign != 0 {
                -magnitude
            } else {
                magnitude
            }
        }
        31 => f32::from_bits(sign | 0x7f80_0000 | (mantissa << 13)),
        _ => f32::from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13)),
    }
}

impl Tensor {
    /// Value `k` in `f32` bits (F64 rounded to nearest, as `.float()`).
    fn f32_bits(&self, k: usize) -> u32 {
        match self {
            Tensor::Single(v) => v[k].to_bits(),
            Tensor::Double(v) => (v[k] as f32).to_bits(),
        }
    }

    /// Value `k` in `f64` bits (exact from any dtype).
    fn f64_bits(&self, k: usize) -> u64 {
        match self {
            Tensor::Single(v) => f64::from(v[k]).to_bits(),
            Tensor::Double(v) => v[k].to_bits(),
        }
    }
}

/// `impl Net<f32> { pub const WEIGHTS: Self = ...; }` and the same for `f64`, with the
/// `include_bytes!` that makes cargo rebuild when the file changes.
///
/// ```text
/// impl Net<f32> {
///     pub const WEIGHTS: Self = Net { fc1: Linear { weight: SMatrix::from_array_storage(
///         ArrayStorage([[f32::from_bits(0x3f800000), ...], ...])), bias: ... }, ... };
/// }
/// const _: &[u8] = include_bytes!("/abs/models/policy.safetensors");
/// ```
pub fn expand(
    network: &Network,
    name: &Ident,
    weights: &Weights,
    attr: &WeightsAttr,
) -> TokenStream {
    let bp = private(network);
    let cfgs = &network.cfgs;
    let relative = attr.path.value();
    let absolute = &weights.absolute;
    let scalar = |double: bool| {
        let ty = if double {
            quote!(::core::primitive::f64)
        } else {
            quote!(::core::primitive::f32)
        };
        let layer_value = |layer: &CheckedLayer, (weight, bias): &(Tensor, Tensor)| {
            let (inputs, outputs) = (layer.inputs, layer.outputs);
            let value = |tensor: &Tensor, k: usize| {
                if double {
                    let bits = proc_macro2::Literal::u64_suffixed(tensor.f64_bits(k));
                    quote!(#ty::from_bits(#bits))
                } else {
                    let bits = proc_macro2::Literal::u32_suffixed(tensor.f32_bits(k));
                    quote!(#ty::from_bits(#bits))
                }
            };
            // Column-major: column i holds weight[o][i] (file position o · IN + i) for every o.
            let columns = (0..inputs).map(|i| {
                let column = (0..outputs).map(|o| value(weight, o * inputs + i));
                quote!([#(#column),*])
            });
            let bias_values = (0..outputs).map(|o| value(bias, o));
            quote! {
                #bp::Linear {
                    weight: #bp::nalgebra::SMatrix::from_array_storage(#bp::nalgebra::ArrayStorage([#(#columns),*])),
                    bias: #bp::nalgebra::SVector::from_array_storage(#bp::nalgebra::ArrayStorage([[#(#bias_values),*]])),
                }
            }
        };
        let body = if network.parts.is_empty() {
            let fields = network
                .layers
                .iter()
                .zip(&weights.layers)
                .map(|(layer, values)| {
                    let field = &layer.field;
                    let value = layer_value(layer, values);
                    quote!(#field: #value)
                });
            quote!(#name { #(#fields,)* })
        } else {
            let mut at = 0;
            let parts = network.parts.iter().map(|part| {
                let ty = part_type(name, &part.name);
                let fields =
                    part.layers
                        .iter()
                        .zip(&weights.layers[at..])
                        .map(|(layer, values)| {
                            let field = &layer.field;
                            let value = layer_value(layer, values);
                            quote!(#field: #value)
                        });
                let fields: Vec<TokenStream> = fields.collect();
                at += part.layers.len();
                let field = &part.name;
                quote!(#field: #ty { #(#fields,)* })
            });
            quote!(#name { #(#parts,)* })
        };
        let doc = format!(
            "The weights of `{relative}`, compiled in as `{}` (read when the crate was built; \
             checked against this architecture). Put them in a `static` to keep them in flash.",
            if double { "f64" } else { "f32" }
        );
        // Two names, not one per scalar: `Net::WEIGHTS` must resolve without a type argument.
        let constant = if double {
            quote!(WEIGHTS_F64)
        } else {
            quote!(WEIGHTS)
        };
        quote! {
            #(#cfgs)*
            #[allow(deprecated, clippy::all)]
            impl #name<#ty> {
                #[doc = #doc]
                pub const #constant: Self = #body;
            }
        }
    };
    let single = scalar(false);
    let double = scalar(true);
    quote! {
        #single
        #double
        // Cargo rebuilds when the weight file changes.
        #(#cfgs)*
        const _: &[::core::primitive::u8] = ::core::include_bytes!(#absolute);
    }
}
