//! Checking where a header says its tensors lie, before a byte of data is read.
//!
//! The safetensors format stores the tensors' bytes one after another, without gaps or overlaps,
//! from the end of the header to the end of the file, each exactly as long as its shape and dtype
//! need. All of that can be checked on the header and the file's length alone, so a header that
//! lies (sizes that overflow, offsets past the end, a 3 GB file holding `{}`) is refused before
//! anything is allocated for its data.

use super::error::WeightsError;
use super::header::{Entry, Header};

/// A `Corrupt` error about `tensor` (or the file as a whole).
pub(crate) fn corrupt(tensor: Option<&str>, reason: String) -> WeightsError {
    WeightsError::Corrupt {
        path: None,
        tensor: tensor.map(str::to_string),
        reason,
    }
}

/// `[2, 3]`.
fn dims(shape: &[u64]) -> String {
    let list: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", list.join(", "))
}

/// The number of bytes `entry`'s shape and dtype need, if that is a whole number below 2⁶⁴.
fn needed(entry: &Entry) -> Result<u64, WeightsError> {
    let invalid = |why: String| {
        corrupt(
            Some(&entry.name),
            format!(
                "invalid shape, data type, or offset for tensor `{}`: {why}",
                entry.name
            ),
        )
    };
    let bits = entry
        .shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .and_then(|n| n.checked_mul(entry.bits))
        .ok_or_else(|| {
            invalid(format!(
                "shape {} of {} needs more bytes than fit in 64 bits",
                dims(&entry.shape),
                entry.dtype
            ))
        })?;
    if bits % 8 != 0 {
        return Err(invalid(format!(
            "shape {} of {} is {bits} bits, not a whole number of bytes",
            dims(&entry.shape),
            entry.dtype
        )));
    }
    let bytes = bits / 8;
    if entry.end.checked_sub(entry.start) != Some(bytes) {
        return Err(invalid(format!(
            "shape {} of {} needs {bytes} bytes, data_offsets [{}, {}] hold {}",
            dims(&entry.shape),
            entry.dtype,
            entry.start,
            entry.end,
            entry.end.saturating_sub(entry.start)
        )));
    }
    Ok(bytes)
}

/// The tensors' indices in the order of their data.
pub(crate) fn data_order(header: &Header) -> Vec<usize> {
    let mut order: Vec<usize> = (0..header.tensors.len()).collect();
    order.sort_by_key(|&i| (header.tensors[i].start, header.tensors[i].end));
    order
}

/// Checks that every tensor's byte range is as long as its shape and dtype need and that the
/// ranges follow one another from 0; returns where the last one ends (the data's length).
pub(crate) fn data_len(header: &Header) -> Result<u64, WeightsError> {
    let mut at = 0;
    for i in data_order(header) {
        let entry = &header.tensors[i];
        needed(entry)?;
        if entry.start != at {
            let what = if entry.start > at {
                "a gap"
            } else {
                "an overlap"
            };
            return Err(corrupt(
                Some(&entry.name),
                format!(
                    "invalid shape, data type, or offset for tensor `{}`: data_offsets [{}, {}] \
                     leave {what}: expected the tensor to start at {at}, where the previous one \
                     ends",
                    entry.name, entry.start, entry.end
                ),
            ));
        }
        at = entry.end;
    }
    Ok(at)
}

/// Checks the data's declared length against the `found` bytes that follow a header ending at
/// `header_end`: more is corrupt, less is a truncated file (naming the first tensor cut off).
pub(crate) fn check_file_len(
    header: &Header,
    header_end: u64,
    declared: u64,
    found: u64,
) -> Result<(), WeightsError> {
    let file_len = header_end.saturating_add(found);
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    if declared > found {
        let cut = data_order(header)
            .into_iter()
            .map(|i| &header.tensors[i])
            .find(|entry| entry.end > found);
        return Err(WeightsError::Truncated {
            path: None,
            tensor: cut.map(|entry| entry.name.clone()),
            expected_len: size(header_end.saturating_add(cut.map_or(declared, |e| e.end))),
            found_len: size(file_len),
        });
    }
    if declared < found {
        return Err(corrupt(
            None,
            format!(
                "{} bytes follow the end of the last tensor's data: expected the file to end at \
                 byte {}, found {file_len} bytes",
                found - declared,
                header_end.saturating_add(declared)
            ),
        ));
    }
    Ok(())
}
