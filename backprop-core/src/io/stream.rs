//! Loading from a stream ([`super::from_reader`], or a FIFO or character device opened with
//! [`LoadOptions::allow_non_regular`]): read once, front to back, with hard bounds derived from
//! the network, so that even `/dev/zero` or a hostile pipe cannot make a load exhaust memory.
//!
//! The header may be at most [`METADATA_ALLOWANCE`] bytes plus [`PER_TENSOR`] bytes and six bytes
//! per byte of name (a name's worst JSON escaping) for each tensor the network reads; the data at
//! most the network's parameters in `F64`. Tensors no parameter reads (with
//! [`LoadOptions::allow_extra`]) are skipped without being stored, within the same bound.

use std::io::{self, Read};

use super::error::WeightsError;
use super::options::LoadOptions;
use super::prefix::{self, MAX_HEADER};
use super::{apply, header, layout, plan, Loaded};
use crate::network::Network;

/// Header bytes a stream may spend on `__metadata__` and formatting, beyond its tensors' entries.
pub(crate) const METADATA_ALLOWANCE: u64 = 64 * 1024;
/// Header bytes a stream may spend on one tensor's entry besides its name: the longest
/// `{"dtype":"F64","shape":[a,b],"data_offsets":[s,e]}` with 20-digit numbers is about 100.
pub(crate) const PER_TENSOR: u64 = 256;

/// An `Io` error reading the stream, named `<stream>` (a caller that knows its path puts it in).
fn read_error(source: io::Error) -> WeightsError {
    WeightsError::Io {
        action: "read",
        path: "<stream>".into(),
        source,
    }
}

/// Reads into `buf` until it is full or the stream ends; returns how much was read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, WeightsError> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    Ok(got)
}

/// Reads and discards `n` bytes; returns how many there were.
fn skip(reader: &mut impl Read, n: u64) -> Result<u64, WeightsError> {
    io::copy(&mut reader.take(n), &mut io::sink()).map_err(read_error)
}

/// Loads `net` from `reader`, read once from the start.
pub(crate) fn load<N: Network>(
    net: &mut N,
    mut reader: impl Read,
    options: &LoadOptions<'_>,
) -> Result<Loaded, WeightsError> {
    let names = plan::names(net, options)?;
    let header_limit = names
        .iter()
        .map(|name| PER_TENSOR + 6 * name.len() as u64)
        .fold(METADATA_ALLOWANCE, u64::saturating_add)
        .min(MAX_HEADER);
    let data_limit = net
        .params()
        .map(|p| (p.rows * p.cols * 8) as u64)
        .fold(0, u64::saturating_add);
    let len = prefix::LEN as u64;

    let mut bytes = [0; prefix::LEN];
    let got = fill(&mut reader, &mut bytes)?;
    if got < prefix::LEN {
        return Err(WeightsError::Truncated {
            path: None,
            tensor: None,
            expected_len: prefix::LEN,
            found_len: got,
        });
    }
    let why = "the most a stream holding this network's tensors can need";
    let n = prefix::header_len(bytes, header_limit, why, None)?;
    // Grown as bytes arrive (at most twice what came, and at most n): a stream that claims a
    // long header and ends costs only what it sent.
    let mut text = Vec::new();
    (&mut reader)
        .take(n)
        .read_to_end(&mut text)
        .map_err(read_error)?;
    let got = text.len();
    if (got as u64) < n {
        return Err(WeightsError::Truncated {
            path: None,
            tensor: None,
            expected_len: usize::try_from(len + n).unwrap_or(usize::MAX),
            found_len: prefix::LEN + got,
        });
    }
    let header = header::parse(&text).map_err(WeightsError::from)?;
    drop(text);
    let header_end = len + n;
    let declared = layout::data_len(&header)?;
    if declared > data_limit {
        return Err(WeightsError::TooLarge {
            path: None,
            part: "data",
            claimed: declared,
            limit: data_limit,
            why,
        });
    }
    let plan = plan::plan(net, &header, options)?;

    // Read the data front to back, keeping only the parameters' bytes.
    let mut order: Vec<usize> = (0..plan.reads.len()).collect();
    order.sort_by_key(|&i| (plan.reads[i].start, plan.reads[i].len));
    let mut staged: Vec<Vec<u8>> = plan.reads.iter().map(|r| vec![0; r.len]).collect();
    let mut at = 0;
    for i in order {
        let read = &plan.reads[i];
        let gap = read.start.saturating_sub(at);
        let skipped = skip(&mut reader, gap)?;
        let got = if skipped == gap {
            fill(&mut reader, &mut staged[i])? as u64
        } else {
            0
        };
        if skipped < gap || got < read.len as u64 {
            return Err(truncated(&header, header_end, declared, at + skipped + got));
        }
        at = read.start + read.len as u64;
    }
    let skipped = skip(&mut reader, declared.saturating_sub(at))?;
    if at + skipped < declared {
        return Err(truncated(&header, header_end, declared, at + skipped));
    }
    if fill(&mut reader, &mut [0; 1])? > 0 {
        return Err(layout::corrupt(
            None,
            format!(
                "the stream goes on after the last tensor's data: expected it to end at byte {}",
                header_end.saturating_add(declared)
            ),
        ));
    }
    let chunks: Vec<&[u8]> = staged.iter().map(Vec::as_slice).collect();
    Ok(apply(net, plan, header.metadata, &chunks))
}

/// The error for a stream that ends after `found` bytes of data.
fn truncated(header: &header::Header, header_end: u64, declared: u64, found: u64) -> WeightsError {
    match layout::check_file_len(header, header_end, declared, found) {
        Err(e) => e,
        Ok(()) => layout::corrupt(None, "the stream ended early".into()),
    }
}
