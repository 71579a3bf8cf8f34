//! Matching a file's header against the network: which tensor each parameter reads, checked for
//! presence, dtype and shape before any data is read, and which tensors nobody reads.

use std::collections::BTreeMap;

use super::error::WeightsError;
use super::header::Header;
use super::options::{Dtype, LoadOptions};
use super::{file_names, torch_shape};
use crate::network::Network;

/// Where one parameter's values are: their dtype and their bytes in the data (after the header).
#[derive(Debug)]
pub(crate) struct Read {
    /// The element type on disk.
    pub(crate) dtype: Dtype,
    /// The first byte, counted from the end of the header.
    pub(crate) start: u64,
    /// The number of bytes: `rows · cols · dtype.size()`.
    pub(crate) len: usize,
}

/// What a load will do: one [`Read`] per parameter, in parameter order, and the tensors it skips.
#[derive(Debug)]
pub(crate) struct Plan {
    /// One per parameter, in the order of [`Network::params`].
    pub(crate) reads: Vec<Read>,
    /// Tensors no parameter reads (allowed by [`LoadOptions::allow_extra`]), sorted.
    pub(crate) ignored: Vec<String>,
}

/// The tensor names a load of `net` reads, after renaming.
pub(crate) fn names<N: Network>(
    net: &N,
    options: &LoadOptions<'_>,
) -> Result<Vec<String>, WeightsError> {
    file_names(net.params().map(|p| p.name), N::LAYERS, &options.rename)
}

/// Finds every parameter's tensor in `header` (already checked by `layout`) and checks its dtype
/// and shape; rejects tensors nobody reads unless `options` allows them.
pub(crate) fn plan<N: Network>(
    net: &N,
    header: &Header,
    options: &LoadOptions<'_>,
) -> Result<Plan, WeightsError> {
    let names = names(net, options)?;
    let index: BTreeMap<&str, usize> = header
        .tensors
        .iter()
        .enumerate()
        .map(|(i, entry)| (entry.name.as_str(), i))
        .collect();
    let mut reads = Vec::with_capacity(names.len());
    let mut used = vec![false; header.tensors.len()];
    for (param, tensor) in net.params().zip(&names) {
        let expected = torch_shape(param.name, param.rows, param.cols);
        let Some(&i) = index.get(tensor.as_str()) else {
            let mut available: Vec<String> =
                header.tensors.iter().map(|e| e.name.clone()).collect();
            available.sort();
            return Err(WeightsError::Missing {
                tensor: tensor.clone(),
                param: param.name,
                expected_shape: expected,
                available,
            });
        };
        let entry = &header.tensors[i];
        let dtype = match entry.dtype {
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            other => {
                return Err(WeightsError::Dtype {
                    tensor: tensor.clone(),
                    param: param.name,
                    found: other.to_string(),
                })
            }
        };
        let same = entry.shape.len() == expected.len()
            && entry
                .shape
                .iter()
                .zip(&expected)
                .all(|(&d, &e)| u64::try_from(e) == Ok(d));
        if !same {
            return Err(WeightsError::Shape {
                tensor: tensor.clone(),
                param: param.name,
                expected,
                found: entry
                    .shape
                    .iter()
                    .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
                    .collect(),
            });
        }
        let len = param.rows * param.cols * dtype.size();
        if entry.end.checked_sub(entry.start) != u64::try_from(len).ok() {
            return Err(super::layout::corrupt(
                Some(tensor),
                format!(
                    "invalid shape, data type, or offset for tensor `{tensor}`: expected {len} \
                     bytes, data_offsets [{}, {}]",
                    entry.start, entry.end
                ),
            ));
        }
        used[i] = true;
        reads.push(Read {
            dtype,
            start: entry.start,
            len,
        });
    }
    let mut ignored: Vec<String> = header
        .tensors
        .iter()
        .zip(&used)
        .filter(|(_, &used)| !used)
        .map(|(entry, _)| entry.name.clone())
        .collect();
    ignored.sort();
    if !ignored.is_empty() && !options.allow_extra {
        return Err(WeightsError::Unexpected {
            tensors: ignored,
            expected: names,
        });
    }
    Ok(Plan { reads, ignored })
}
