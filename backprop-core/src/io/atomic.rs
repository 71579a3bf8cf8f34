//! Replacing a file atomically: write a temporary file beside it, flush it to disk, rename it over
//! the target. A crash leaves either the old file or the new one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::WeightsError;

/// Distinguishes the temporary files of concurrent saves from one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

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
fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> WeightsError {
    WeightsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates a new file `.{name}.{pid}-{n}-{nanos}.tmp` in `dir` that did not exist before.
fn create_temp(dir: &Path, target: &Path) -> Result<(File, TempFile), WeightsError> {
    let name = target
        .file_name()
        .map_or_else(|| "weights".into(), |n| n.to_string_lossy());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}-{n}-{nanos}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, TempFile { path, armed: true })),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_error("create a temporary file beside", target, e)),
        }
    }
    let e = last.unwrap_or_else(|| ErrorKind::AlreadyExists.into());
    Err(io_error("create a temporary file beside", target, e))
}

/// Writes `bytes` to `target` atomically: through a temporary file in the same directory, synced
/// to disk, then renamed over the target (keeping the target's permissions if it existed). On any
/// error the temporary file is removed and the target is untouched. A symbolic link is followed:
/// the file it points to is replaced, not the link.
pub(crate) fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    let resolved;
    let target = match fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::canonicalize(target) {
            Ok(path) => {
                resolved = path;
                resolved.as_path()
            }
            Err(_) => target,
        },
        _ => target,
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
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
