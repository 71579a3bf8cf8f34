//! The 8-byte prefix of a safetensors file: the header's length, little-endian, checked against
//! a limit and against the bytes really there before anything is allocated for the header.

use super::error::WeightsError;

/// The longest header a load accepts: the safetensors crate's own limit (100 MB).
pub(crate) const MAX_HEADER: u64 = 100_000_000;

/// Bytes in the prefix.
pub(crate) const LEN: usize = 8;

/// The header's length declared by `prefix`, at most `limit` (`why` says where the limit comes
/// from) and at most the `available` bytes after the prefix, when that is known.
pub(crate) fn header_len(
    prefix: [u8; LEN],
    limit: u64,
    why: &'static str,
    available: Option<u64>,
) -> Result<u64, WeightsError> {
    let n = u64::from_le_bytes(prefix);
    if n > limit {
        return Err(WeightsError::TooLarge {
            path: None,
            part: "header",
            claimed: n,
            limit,
            why,
        });
    }
    match available {
        Some(available) if n > available => Err(WeightsError::Truncated {
            path: None,
            tensor: None,
            expected_len: usize::try_from(n + LEN as u64).unwrap_or(usize::MAX),
            found_len: usize::try_from(available + LEN as u64).unwrap_or(usize::MAX),
        }),
        _ => Ok(n),
    }
}
