//! How a save treats what is already at its target, following `torch.save` and the operating
//! system: a read-only file is refused (not replaced), a symbolic link is followed (a dangling
//! one is created through), a directory or FIFO is refused; temporary names stay short whatever
//! the target's name; the temporary files of killed saves are removed by the next save of the
//! same target, and nothing else is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use backprop::io::{self, LoadOptions, WeightsError};
use backprop::prelude::*;

network! {
    /// The seed post's architecture.
    pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 >
}

network! {
    /// Large enough (3.2 million weights, 12.8 MB) that a save takes a while to write.
    pub struct Large < 784 => relu 2048 => 784 >
}

/// A fresh, empty directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("io_save")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The bits of the network saved at `path`.
fn saved_bits(path: &Path) -> Vec<u32> {
    let net: Seed = io::load_new(path, &LoadOptions::new()).unwrap();
    bits(&net)
}

/// Every parameter's bits.
fn bits<N: Network<Scalar = f32>>(net: &N) -> Vec<u32> {
    net.params()
        .flat_map(|p| p.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// FNV-1a, 64 bits (written here independently of the library's).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 14_695_981_039_346_656_037;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(1_099_511_628_211);
    }
    hash
}

/// The temporary-name prefix documented for saves to a file called `name`.
fn prefix(name: &str) -> String {
    assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8, "the reference vector");
    format!(".bp-{:016x}-", fnv1a(name.as_bytes()))
}

#[cfg(unix)]
#[test]
fn a_read_only_target_is_refused_and_left_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("read_only");
    let path = dir.join("w.safetensors");
    io::save(&Seed::<f32>::init(1), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let error = io::save(&Seed::<f32>::init(2), &path).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, WeightsError::Io { action: "replace", source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied),
        "{error:?}"
    );
    assert!(
        message.contains("cannot replace") && message.contains("w.safetensors"),
        "{message}"
    );
    assert!(message.contains("read-only"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file is unchanged"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444, "its permissions are unchanged");
    assert_eq!(
        listing(&dir),
        ["w.safetensors"],
        "no temporary file is left"
    );

    // Made writable again (group-readable only), it is replaced and keeps its mode.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    io::save(&Seed::<f32>::init(2), &path).unwrap();
    assert_eq!(saved_bits(&path), bits(&Seed::<f32>::init(2)));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[cfg(unix)]
#[test]
fn a_dangling_symbolic_link_is_created_through() {
    let dir = scratch("dangling");
    std::fs::create_dir(dir.join("real")).unwrap();
    let link = dir.join("link.safetensors");
    // A relative link, resolved from the link's directory, not the working directory.
    std::os::unix::fs::symlink("real/w.safetensors", &link).unwrap();
    io::save(&Seed::<f32>::init(4), &link).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        saved_bits(&dir.join("real/w.safetensors")),
        bits(&Seed::<f32>::init(4))
    );
    assert_eq!(listing(&dir), ["link.safetensors", "real"]);
    assert_eq!(listing(&dir.join("real")), ["w.safetensors"]);

    // A chain of links: the file at its end is replaced, every link stays.
    let second = dir.join("second");
    std::os::unix::fs::symlink(&link, &second).unwrap();
    io::save(&Seed::<f32>::init(5), &second).unwrap();
    assert_eq!(
        saved_bits(&dir.join("real/w.safetensors")),
        bits(&Seed::<f32>::init(5))
    );
    assert!(std::fs::symlink_metadata(&second)
        .unwrap()
        .file_type()
        .is_symlink());

    // A link into a directory that does not exist: an error, and the link stays dangling.
    let nowhere = dir.join("nowhere.safetensors");
    std::os::unix::fs::symlink("missing/w.safetensors", &nowhere).unwrap();
    let message = io::save(&Seed::<f32>::init(4), &nowhere)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("cannot create a temporary file beside"),
        "{message}"
    );
    assert!(message.contains("missing/w.safetensors"), "{message}");
    assert!(std::fs::symlink_metadata(&nowhere)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!dir.join("missing").exists());

    // A loop of links.
    std::os::unix::fs::symlink("loop_b", dir.join("loop_a")).unwrap();
    std::os::unix::fs::symlink("loop_a", dir.join("loop_b")).unwrap();
    let message = io::save(&Seed::<f32>::init(4), dir.join("loop_a"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("more than 40 symbolic links"), "{message}");
}

#[cfg(unix)]
#[test]
fn a_fifo_at_the_target_is_refused_not_replaced() {
    let dir = scratch("fifo_target");
    let path = dir.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let message = io::save(&Seed::<f32>::init(1), &path)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("cannot replace") && message.contains("not a regular file"),
        "{message}"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(listing(&dir), ["pipe"]);
}

#[test]
fn a_target_name_of_250_bytes_saves_with_a_short_temporary_name() {
    let dir = scratch("long_name");
    let name = format!("{}.safetensors", "w".repeat(250 - ".safetensors".len()));
    assert_eq!(name.len(), 250);
    let path = dir.join(&name);
    io::save(&Seed::<f32>::init(1), &path).unwrap();
    io::save(&Seed::<f32>::init(2), &path).unwrap();
    assert_eq!(saved_bits(&path), bits(&Seed::<f32>::init(2)));
    assert_eq!(listing(&dir), [name]);
}

/// A process id that no process has: a child's, after it has exited and been reaped.
#[cfg(unix)]
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[cfg(unix)]
#[test]
fn abandoned_temporaries_of_the_target_are_removed_and_nothing_else() {
    let dir = scratch("abandoned");
    let path = dir.join("w.safetensors");
    let ours = prefix("w.safetensors");
    let dead = dead_pid();
    let live = std::process::id(); // this process: its saves may be running on other threads
    let removed = [
        format!("{ours}{dead}-0.tmp"),
        format!("{ours}{dead}-17.tmp"),
        format!(".w.safetensors.{dead}-0-123456789.tmp"), // an earlier version's name
    ];
    let kept = [
        format!("{ours}{live}-3.tmp"), // a save still running
        format!("{ours}1-0.tmp"),      // init is alive
        format!("{}{dead}-0.tmp", prefix("other.safetensors")), // another target's
        format!("{ours}{dead}-0.tmp.bak"),
        format!("{ours}{dead}.tmp"),
        format!("{ours}x{dead}-0.tmp"),
        format!("x{ours}{dead}-0.tmp"),
        format!(".w.safetensors.{live}-0-123456789.tmp"),
        format!(".v.safetensors.{dead}-0-123456789.tmp"),
        "notes.txt".to_string(),
    ];
    for name in removed.iter().chain(&kept) {
        std::fs::write(dir.join(name), b"temporary?").unwrap();
    }
    // A directory and a link named like an abandoned temporary are not regular files: kept.
    let dir_like = format!("{ours}{dead}-1.tmp");
    std::fs::create_dir(dir.join(&dir_like)).unwrap();
    let link_like = format!("{ours}{dead}-2.tmp");
    std::os::unix::fs::symlink("notes.txt", dir.join(&link_like)).unwrap();

    io::save(&Seed::<f32>::init(1), &path).unwrap();
    let mut expected: Vec<String> = kept.to_vec();
    expected.extend([dir_like, link_like, "w.safetensors".to_string()]);
    expected.sort();
    assert_eq!(listing(&dir), expected);
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"temporary?");
}

/// Set in a child process of [`killed_saves_leave_temporaries_the_next_save_removes`]: save to
/// this path forever, until killed (6 children, each killed inside a save).
const SAVE_FOREVER: &str = "BACKPROP_TEST_SAVE_FOREVER";

#[cfg(unix)]
#[test]
fn killed_saves_leave_temporaries_the_next_save_removes() {
    if let Ok(path) = std::env::var(SAVE_FOREVER) {
        let net = Large::<f32>::zeros();
        loop {
            io::save(&net, &path).unwrap();
        }
    }
    let dir = scratch("killed");
    let path = dir.join("large.safetensors");
    let exe = std::env::current_exe().unwrap();
    let mut most = 0;
    for kill in 0..6u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "io_save::killed_saves_leave_temporaries_the_next_save_removes",
                "--exact",
            ])
            .env(SAVE_FOREVER, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill it as soon as one of its own saves has created its temporary file (named with its
        // process id; an earlier child's may still be there until this one's first save).
        let own = format!("-{}-", child.id());
        let started = std::time::Instant::now();
        while !listing(&dir)
            .iter()
            .any(|n| n.starts_with(".bp-") && n.contains(&own))
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the child never saved"
            );
            std::thread::sleep(Duration::from_micros(200 * kill));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let left = listing(&dir)
            .iter()
            .filter(|n| n.starts_with(".bp-"))
            .count();
        // Each save removed the temporaries of the saves killed before it: they never pile up.
        assert!(left <= 1, "{left} temporary files after {} kills", kill + 1);
        most = most.max(left);
    }
    assert_eq!(most, 1, "no kill landed inside a save in 6 tries");
    io::save(&Large::<f32>::zeros(), &path).unwrap();
    assert_eq!(
        listing(&dir),
        ["large.safetensors"],
        "the next save removed them"
    );
}
