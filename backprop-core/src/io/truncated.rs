//! Telling a truncated file from a corrupt one, and naming the tensor the cut falls in.
//!
//! The safetensors parser reports a file cut inside its data only as "incomplete metadata"; a
//! user wants to hear which tensor is cut off and how many bytes are missing. The header says
//! where each tensor ends, so the file is padded to the length its header claims and parsed
//! again: if that parses, the file was truncated, and the first tensor ending past the real end
//! is the one named.

use safetensors::{SafeTensorError, SafeTensors};

use super::error::WeightsError;

/// The safetensors format's limit on the header's length.
const MAX_HEADER: u64 = 100_000_000;
/// The largest cut (in bytes) diagnosed by padding; beyond it the file is reported as corrupt.
const MAX_PAD: usize = 1 << 26;

/// The error for bytes that the safetensors parser rejected with `error`.
pub(crate) fn diagnose(bytes: &[u8], error: SafeTensorError) -> WeightsError {
    let found_len = bytes.len();
    let truncated = |tensor, expected_len| WeightsError::Truncated {
        path: None,
        tensor,
        expected_len,
        found_len,
    };
    let Some(length) = bytes.get(..8) else {
        return truncated(None, 8);
    };
    let mut le = [0; 8];
    le.copy_from_slice(length);
    let n = u64::from_le_bytes(le);
    let header_end = usize::try_from(n).ok().and_then(|n| n.checked_add(8));
    let Some(header_end) = header_end.filter(|_| n <= MAX_HEADER) else {
        return WeightsError::Corrupt {
            path: None,
            source: error,
        };
    };
    if header_end > found_len {
        return truncated(None, header_end);
    }
    if let SafeTensorError::MetadataIncompleteBuffer = error {
        if let Some(cut) = cut_tensor(bytes, header_end) {
            return truncated(Some(cut.0), cut.1);
        }
    }
    WeightsError::Corrupt {
        path: None,
        source: error,
    }
}

/// The first tensor the file cuts off and the file length it needs, if padding the file to the
/// length its header claims makes it valid.
fn cut_tensor(bytes: &[u8], header_end: usize) -> Option<(String, usize)> {
    let claimed = header_end.checked_add(max_data_end(bytes.get(8..header_end)?)?)?;
    if claimed <= bytes.len() || claimed - bytes.len() > MAX_PAD {
        return None;
    }
    let mut padded = bytes.to_vec();
    padded.resize(claimed, 0);
    let (_, header) = SafeTensors::read_metadata(&padded).ok()?;
    let have = bytes.len() - header_end;
    header.offset_keys().into_iter().find_map(|name| {
        let end = header.info(&name)?.data_offsets.1;
        (end > have).then(|| (name, header_end + end))
    })
}

/// The largest end offset among the header's `"data_offsets": [start, end]` entries.
fn max_data_end(header: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"data_offsets\"";
    let mut best = None;
    let mut at = 0;
    while let Some(found) = header.get(at..)?.windows(KEY.len()).position(|w| w == KEY) {
        at += found + KEY.len();
        let mut cursor = Cursor { bytes: header, at };
        let end = cursor
            .byte(b':')
            .and_then(|()| cursor.byte(b'['))
            .and_then(|()| cursor.number())
            .and_then(|_| cursor.byte(b','))
            .and_then(|()| cursor.number());
        if let Some(end) = end {
            best = best.max(Some(end));
        }
    }
    best
}

/// A position in the header text, skipping whitespace before each token.
struct Cursor<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl Cursor<'_> {
    /// Skips whitespace.
    fn skip(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    /// Consumes `expected` (after whitespace).
    fn byte(&mut self, expected: u8) -> Option<()> {
        self.skip();
        (*self.bytes.get(self.at)? == expected).then(|| self.at += 1)
    }

    /// Consumes an unsigned decimal integer (after whitespace).
    fn number(&mut self) -> Option<usize> {
        self.skip();
        let start = self.at;
        let mut value: usize = 0;
        while let Some(digit) = self.bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            value = value
                .checked_mul(10)?
                .checked_add(usize::from(digit - b'0'))?;
            self.at += 1;
        }
        (self.at > start).then_some(value)
    }
}
