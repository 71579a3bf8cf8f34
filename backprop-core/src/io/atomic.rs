//! Replacing a file atomically: write a temporary file beside it, flush it to disk, rename it over
//! the target. A crash leaves either the old file or the new one, never half of one.
//!
//! The conventions are the operating system's and `torch.save`'s (which opens the target for
//! writing):
//!
//! - **A symbolic link is followed**, as `open` follows it: the file it points to is replaced, and
//!   a dangling link's target is created (its directory must exist). The link itself stays.
//! - **A read-only target is refused**, as `open` refuses it (`torch.save` raises
//!   `PermissionError`): a file without any write permission bit, or one this process may not
//!   open for writing, is an error and is left as it is. The bits are checked even for root,
//!   whom `open` would let through, because a rename would silently undo a deliberate
//!   `chmod a-w`. A directory, FIFO or device at the target is refused too.
//! - **Temporary names are short**: `.bp-<hash>-<pid>-<n>.tmp`, at most 58 bytes whatever the
//!   target's name (within `NAME_MAX`, 255), where `<hash>` is 16 hex digits of the FNV-1a hash of
//!   the target's file name. A save killed midway leaves its temporary file behind; the next save
//!   of the same target removes those of its own name pattern whose process is gone (on Unix,
//!   `kill(pid, 0)` fails with `ESRCH`; elsewhere, files older than an hour), and those of earlier
//!   versions' pattern, `.<name>.<pid>-<n>-<nanos>.tmp`. Nothing else is ever removed: only
//!   regular files named exactly so.

use std::fs::{self, File, OpenOptions};
use std::io::{Error, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::WeightsError;

/// Distinguishes the temporary files of concurrent saves from one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The most symbolic links followed in a chain (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Deletes the temporary file unless the rename consumed it.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// An `Io` error about `path`.
fn io_error(action: &'static str, path: &Path, source: Error) -> WeightsError {
    WeightsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The 64-bit FNV-1a hash of `bytes`: stable across runs, platforms and Rust versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `.bp-<hash>-`: the start of every temporary file name of saves to `target`.
fn temp_prefix(target: &Path) -> String {
    let name = target.file_name().map_or(&[][..], |n| n.as_encoded_bytes());
    format!(".bp-{:016x}-", fnv1a(name))
}

/// `true` for a non-empty run of ASCII digits.
fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The process id in a temporary file name `<prefix><pid>-<n>.tmp`, if `name` is one.
fn temp_pid(name: &str, prefix: &str) -> Option<u32> {
    let middle = name.strip_prefix(prefix)?.strip_suffix(".tmp")?;
    let (pid, n) = middle.split_once('-')?;
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

/// The process id in a temporary file name of earlier versions, `.<target's name>.<pid>-<n>-
/// <nanos>.tmp`, if `name` is one for `target`: their killed saves are cleaned up too.
fn legacy_temp_pid(name: &str, target: &Path) -> Option<u32> {
    let target = target.file_name()?.to_str()?;
    let middle = name
        .strip_prefix('.')?
        .strip_prefix(target)?
        .strip_prefix('.')?
        .strip_suffix(".tmp")?;
    let mut parts = middle.split('-');
    let (pid, n, nanos) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || ![pid, n, nanos].into_iter().all(digits) {
        return None;
    }
    pid.parse().ok()
}

/// Whether the temporary file of process `pid`, last modified at `modified`, is abandoned.
fn abandoned(pid: u32, modified: Option<std::time::SystemTime>) -> bool {
    if pid == std::process::id() {
        return false;
    }
    #[cfg(unix)]
    {
        let _ = modified;
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        !alive
    }
    #[cfg(not(unix))]
    {
        let hour = std::time::Duration::from_secs(3600);
        modified
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > hour)
    }
}

/// Removes the temporary files that earlier, killed saves to `target` left in `dir`.
fn remove_abandoned(dir: &Path, target: &Path) {
    let prefix = temp_prefix(target);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| temp_pid(n, &prefix).or_else(|| legacy_temp_pid(n, target)));
        let Some(pid) = pid else {
            continue;
        };
        // `DirEntry::metadata` does not follow links: only a regular file is removed.
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_file() && abandoned(pid, meta.modified().ok()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Creates a new file `.bp-<hash>-<pid>-<n>.tmp` in `dir` that did not exist before.
fn create_temp(dir: &Path, target: &Path) -> Result<(File, TempFile), WeightsError> {
    let prefix = temp_prefix(target);
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{prefix}{}-{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, TempFile { path, armed: true })),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_error("create a temporary file beside", target, e)),
        }
    }
    let e = last.unwrap_or_else(|| ErrorKind::AlreadyExists.into());
    Err(io_error("create a temporary file beside", target, e))
}

/// The file a save to `target` writes: `target` itself, or the end of its chain of symbolic
/// links (which need not exist yet: a dangling link is created through).
fn resolve(target: &Path) -> Result<PathBuf, WeightsError> {
    let mut path = target.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&path)
                    .map_err(|e| io_error("follow the symbolic link", &path, e))?;
                path = match path.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(path),
        }
    }
    let e = Error::other(format!(
        "more than {MAX_LINKS} symbolic links in a chain (a loop?)"
    ));
    Err(io_error("follow the symbolic link", target, e))
}

/// Refuses to replace an existing `path` that is not a regular file or that is read-only.
fn check_replaceable(path: &Path) -> Result<(), WeightsError> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(());
    };
    let refuse = |kind, why: &str| Err(io_error("replace", path, Error::new(kind, why)));
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "it is a directory, not a regular file"
        } else {
            "it is not a regular file (a FIFO, device or socket)"
        };
        return refuse(ErrorKind::InvalidInput, what);
    }
    if meta.permissions().readonly() {
        return refuse(
            ErrorKind::PermissionDenied,
            "the file is read-only: a save never overrides a file's permissions; make it \
             writable to replace it",
        );
    }
    // Opening for writing without truncating changes nothing; it asks the OS for permission.
    OpenOptions::new()
        .write(true)
        .open(path)
        .map(drop)
        .map_err(|e| io_error("replace", path, e))
}

/// Writes `bytes` to `target` atomically: through a temporary file in the same directory, synced
/// to disk, then renamed over the target (keeping the target's permissions if it existed). On any
/// error the temporary file is removed and the target is untouched. See the module's conventions.
pub(crate) fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    let target = resolve(target)?;
    let target = target.as_path();
    check_replaceable(target)?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    remove_abandoned(dir, target);
    let (mut file, mut temp) = create_temp(dir, target)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("write", target, e))?;
    drop(file);
    if let Ok(meta) = fs::metadata(target) {
        // Best effort: a file replaced keeps its mode; failing to copy it is not worth an error.
        let _ = fs::set_permissions(&temp.path, meta.permissions());
    }
    fs::rename(&temp.path, target).map_err(|e| io_error("replace", target, e))?;
    temp.armed = false;
    sync_dir(dir);
    Ok(())
}

/// Flushes the directory entry of the rename to disk (Unix; best effort elsewhere and on error).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_short_and_recognised_only_exactly() {
        let long = "w".repeat(250);
        let prefix = temp_prefix(Path::new(&long));
        let name = format!("{prefix}{}-{}.tmp", u32::MAX, u64::MAX);
        assert_eq!(name.len(), 4 + 16 + 1 + 10 + 1 + 20 + 4);
        assert_eq!(temp_pid(&name, &prefix), Some(u32::MAX));
        for other in [
            format!("{prefix}12-3.tmp.keep"),
            format!("{prefix}12.tmp"),
            format!("{prefix}-3.tmp"),
            format!("{prefix}12-x.tmp"),
            format!("x{prefix}12-3.tmp"),
            format!("{}12-3.tmp", temp_prefix(Path::new("other"))),
        ] {
            assert_eq!(temp_pid(&other, &prefix), None, "{other}");
        }
    }

    #[test]
    fn temporary_names_of_earlier_versions_are_recognised_only_exactly() {
        let target = Path::new("dir/w.safetensors");
        let old = ".w.safetensors.4242-3-123456789.tmp";
        assert_eq!(legacy_temp_pid(old, target), Some(4242));
        for other in [
            ".w.safetensors.4242-3.tmp",
            ".w.safetensors.4242-3-12-1.tmp",
            ".w.safetensors.4242-3-x.tmp",
            ".v.safetensors.4242-3-123456789.tmp",
            "w.safetensors.4242-3-123456789.tmp",
            ".w.safetensors.4242-3-123456789.tmp.keep",
        ] {
            assert_eq!(legacy_temp_pid(other, target), None, "{other}");
        }
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "" and "a" and "foobar".
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
