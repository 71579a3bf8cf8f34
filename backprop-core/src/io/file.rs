//! Loading from a path: only a regular file (unless a stream is allowed), its length taken from
//! the file system, the header read and checked first, then each parameter's bytes read by
//! seeking to them. Nothing is read that the header has not justified, and nothing is allocated
//! beyond the header (at most the file's length) and the parameters' own bytes.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::error::WeightsError;
use super::options::LoadOptions;
use super::prefix::{self, MAX_HEADER};
use super::{apply, header, layout, plan, stream, Loaded};
use crate::network::Network;

/// An `Io` error reading `path`.
fn read_error(path: &Path) -> impl Fn(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    }
}

/// What kind of file system object `meta` describes, for a message.
fn kind(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Opens the regular file `path` without blocking, even if it was swapped for a FIFO since it
/// was looked at, and checks that what was opened is still a regular file.
fn open_regular(path: &Path) -> Result<File, WeightsError> {
    let mut open = OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NONBLOCK);
    }
    let file = open.open(path).map_err(read_error(path))?;
    let meta = file.metadata().map_err(read_error(path))?;
    if !meta.is_file() {
        return Err(WeightsError::NotAFile {
            path: path.to_path_buf(),
            kind: kind(&meta),
        });
    }
    Ok(file)
}

/// Loads `net` from the file at `path` (see [`super::load_with`]).
pub(crate) fn load<N: Network>(
    net: &mut N,
    path: &Path,
    options: &LoadOptions<'_>,
) -> Result<Loaded, WeightsError> {
    let meta = fs::metadata(path).map_err(read_error(path))?;
    if !meta.is_file() {
        if !options.allow_non_regular || meta.is_dir() {
            return Err(WeightsError::NotAFile {
                path: path.to_path_buf(),
                kind: kind(&meta),
            });
        }
        let file = File::open(path).map_err(read_error(path))?;
        return stream::load(net, file, options).map_err(|e| match e {
            WeightsError::Io { action, source, .. } => WeightsError::Io {
                action,
                path: path.to_path_buf(),
                source,
            },
            other => other,
        });
    }
    let mut file = open_regular(path)?;
    let len = file.metadata().map_err(read_error(path))?.len();
    let Some(after_prefix) = len.checked_sub(prefix::LEN as u64) else {
        return Err(WeightsError::Truncated {
            path: None,
            tensor: None,
            expected_len: prefix::LEN,
            found_len: usize::try_from(len).unwrap_or(usize::MAX),
        });
    };
    let mut bytes = [0; prefix::LEN];
    file.read_exact(&mut bytes).map_err(read_error(path))?;
    let n = prefix::header_len(
        bytes,
        MAX_HEADER,
        "the safetensors format's limit",
        Some(after_prefix),
    )?;
    // n ≤ the file's length and ≤ 100 MB: this allocation is justified by bytes that exist.
    let mut text = vec![0; usize::try_from(n).unwrap_or(usize::MAX)];
    file.read_exact(&mut text).map_err(read_error(path))?;
    let header = header::parse(&text).map_err(WeightsError::from)?;
    drop(text);
    let header_end = prefix::LEN as u64 + n;
    let declared = layout::data_len(&header)?;
    layout::check_file_len(&header, header_end, declared, after_prefix - n)?;
    let plan = plan::plan(net, &header, options)?;

    // Stage the parameters' bytes (heap to heap), then write: nothing after this can fail.
    let total: usize = plan.reads.iter().map(|r| r.len).sum();
    let mut staged = vec![0; total];
    let mut at = 0;
    for read in &plan.reads {
        let slot = &mut staged[at..at + read.len];
        file.seek(SeekFrom::Start(header_end + read.start))
            .and_then(|_| file.read_exact(slot))
            .map_err(read_error(path))?;
        at += read.len;
    }
    let mut chunks = Vec::with_capacity(plan.reads.len());
    let mut rest = staged.as_slice();
    for read in &plan.reads {
        let (chunk, tail) = rest.split_at(read.len);
        chunks.push(chunk);
        rest = tail;
    }
    Ok(apply(net, plan, header.metadata, &chunks))
}
