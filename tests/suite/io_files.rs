//! Loading from paths that are not what they claim: FIFOs, `/dev/zero`, directories, a 3 GB file
//! whose header is `{}`, small files whose headers claim megabytes, duplicate keys. Each is an
//! error that names the file (and the tensor, when there is one), comes back at once, leaves
//! the network's bits as they were, and holds at most a few KiB of heap while it runs (a
//! counting allocator records the peak). A stream is read only when asked for, within bounds.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::counting::peak_bytes;
use backprop::io::{self, LoadOptions, SaveOptions, WeightsError};
use backprop::prelude::*;

network! {
    /// The seed post's architecture.
    pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 >
}

network! {
    /// A network whose first layer (100 352 weights) lives in a `Box`.
    pub struct Wide < 784 => relu 128 => 10 >
}

/// Heap bytes a refused load may hold: its error message and a few names.
const SMALL: usize = 16 * 1024;

/// A fresh, empty directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("io_files")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every parameter's bits.
fn bits<N: Network<Scalar = f32>>(net: &N) -> Vec<u32> {
    net.params()
        .flat_map(|p| p.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// Loads `path` (reading a stream if `allow_non_regular`) into a seeded network on another thread, failing the test if that takes more
/// than 20 seconds (a load that blocks); returns the result, the peak heap and whether the
/// network kept its bits.
fn load_in_time(path: &Path, allow_non_regular: bool) -> (Result<(), WeightsError>, usize, bool) {
    let (send, receive) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut net = Seed::<f32>::init(5);
        let before = bits(&net);
        let options = LoadOptions::new().allow_non_regular(allow_non_regular);
        let (result, peak) = peak_bytes(|| io::load_with(&mut net, &path, &options).map(drop));
        let _ = send.send((result, peak, bits(&net) == before));
    });
    receive
        .recv_timeout(Duration::from_secs(20))
        .expect("the load came back within 20 seconds")
}

/// Makes a FIFO at `path` with mkfifo(1).
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The bytes of a file holding `header` and then `data_len` zero bytes.
fn file_with(header: &str, data_len: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data_len, 0);
    bytes
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_at_once_without_waiting_for_a_writer() {
    let path = scratch("fifo").join("weights.safetensors");
    mkfifo(&path);
    let (result, peak, unchanged) = load_in_time(&path, false);
    let error = result.unwrap_err();
    assert!(matches!(error, WeightsError::NotAFile { .. }), "{error:?}");
    let message = error.to_string();
    for piece in [
        "weights.safetensors",
        "a FIFO (named pipe)",
        "expected a regular file",
        "allow_non_regular",
    ] {
        assert!(message.contains(piece), "{piece}: {message}");
    }
    assert!(unchanged);
    assert!(peak < SMALL, "{peak} bytes");
}

#[cfg(unix)]
#[test]
fn a_fifo_is_read_as_a_stream_when_allowed() {
    let path = scratch("fifo_allowed").join("weights.safetensors");
    mkfifo(&path);
    let saved = Seed::<f32>::init(9);
    let bytes = io::to_bytes(&saved, &SaveOptions::new()).unwrap();
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || std::fs::write(path, bytes).unwrap())
    };
    let mut net = Seed::<f32>::init(5);
    io::load_with(&mut net, &path, &LoadOptions::new().allow_non_regular(true)).unwrap();
    writer.join().unwrap();
    assert_eq!(bits(&net), bits(&saved));
}

#[cfg(target_os = "linux")]
#[test]
fn dev_zero_is_refused_and_even_when_allowed_cannot_exhaust_memory() {
    let (result, peak, unchanged) = load_in_time(Path::new("/dev/zero"), false);
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("`/dev/zero`") && message.contains("a character device"),
        "{message}"
    );
    assert!(unchanged && peak < SMALL, "{peak} bytes");

    // Read as a stream: eight zero bytes say the header is empty, which is not JSON.
    let (result, peak, unchanged) = load_in_time(Path::new("/dev/zero"), true);
    let error = result.unwrap_err();
    assert!(matches!(error, WeightsError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("expected `{`"), "{error}");
    assert!(unchanged && peak < SMALL, "{peak} bytes");
}

#[cfg(unix)]
#[test]
fn a_stream_is_read_within_bounds_derived_from_the_network() {
    // A stream whose header claims a megabyte: the Seed network's names need far less.
    let dir = scratch("stream_bounds");
    let path = dir.join("pipe");
    mkfifo(&path);
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut pipe = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            let _ = pipe.write_all(&(1u64 << 20).to_le_bytes());
            let _ = pipe.write_all(&[b' '; 1 << 16]);
        })
    };
    let (result, peak, unchanged) = load_in_time(&path, true);
    let _ = writer.join();
    let error = result.unwrap_err();
    assert!(
        matches!(error, WeightsError::TooLarge { part: "header", .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("the header claims 1048576 bytes"),
        "{message}"
    );
    assert!(unchanged && peak < SMALL, "{peak} bytes");

    // A stream whose header declares more data than the network's tensors in F64.
    let path = dir.join("pipe2");
    mkfifo(&path);
    let header = r#"{"w":{"dtype":"U8","shape":[1000000],"data_offsets":[0,1000000]}}"#;
    let bytes = file_with(header, 0);
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let _ = std::fs::write(path, bytes);
        })
    };
    let (result, peak, _) = load_in_time(&path, true);
    let _ = writer.join();
    let error = result.unwrap_err();
    let limit = 8 * Seed::<f32>::PARAMETERS;
    assert!(
        error.to_string().contains(&format!(
            "the data claims 1000000 bytes: expected at most {limit}"
        )),
        "{error}"
    );
    assert!(peak < SMALL, "{peak} bytes");
}

#[test]
fn a_directory_is_refused_even_when_streams_are_allowed() {
    let dir = scratch("directory");
    for allow in [false, true] {
        let (result, _, unchanged) = load_in_time(&dir, allow);
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains("it is a directory, expected a regular file"),
            "{message}"
        );
        assert!(unchanged);
    }
}

#[test]
fn a_3_gb_file_whose_header_is_empty_is_refused_without_reading_it() {
    let path = scratch("sparse").join("huge.safetensors");
    let file = std::fs::File::create(&path).unwrap();
    {
        use std::io::Write;
        let mut writer = &file;
        writer.write_all(&2u64.to_le_bytes()).unwrap();
        writer.write_all(b"{}").unwrap();
    }
    let len = 3u64 << 30;
    file.set_len(len).unwrap(); // sparse: no disk space used
    drop(file);
    let started = std::time::Instant::now();
    let (result, peak, unchanged) = load_in_time(&path, false);
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains(&format!(
            "{} bytes follow the end of the last tensor's data",
            len - 10
        )),
        "{message}"
    );
    assert!(unchanged && peak < SMALL, "{peak} bytes");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_small_file_claiming_megabytes_allocates_nothing_for_them() {
    let dir = scratch("claims");
    // A 573-byte file whose one tensor claims 64 MiB of data.
    let header =
        r#"{"fc1.weight":{"dtype":"F32","shape":[4096,4096],"data_offsets":[0,67108864]}}"#;
    let mut bytes = file_with(header, 0);
    bytes.resize(573, 0);
    let path = dir.join("data.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let (result, peak, unchanged) = load_in_time(&path, false);
    let error = result.unwrap_err();
    let expected = 8 + header.len() + 67_108_864;
    let message = error.to_string();
    assert!(
        matches!(&error, WeightsError::Truncated { tensor: Some(t), .. } if t == "fc1.weight"),
        "{error:?}"
    );
    assert!(
        message.contains(&format!(
            "expected at least {expected} bytes (to the end of tensor `fc1.weight`), found 573"
        )),
        "{message}"
    );
    assert!(unchanged && peak < SMALL, "{peak} bytes");

    // A 573-byte file whose length prefix claims a 64 MiB header.
    let mut bytes = (64u64 << 20).to_le_bytes().to_vec();
    bytes.resize(573, b' ');
    let path = dir.join("header.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let (result, peak, unchanged) = load_in_time(&path, false);
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains(&format!(
            "expected at least {} bytes (to the end of the header), found 573",
            8 + (64 << 20)
        )),
        "{message}"
    );
    assert!(unchanged && peak < SMALL, "{peak} bytes");

    // A header longer than the format allows, in a file that long (sparse).
    let path = dir.join("too_long.safetensors");
    let file = std::fs::File::create(&path).unwrap();
    {
        use std::io::Write;
        (&file).write_all(&200_000_000u64.to_le_bytes()).unwrap();
    }
    file.set_len(200_000_100).unwrap();
    drop(file);
    let (result, peak, _) = load_in_time(&path, false);
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("the header claims 200000000 bytes: expected at most 100000000"),
        "{message}"
    );
    assert!(peak < SMALL, "{peak} bytes");
}

#[test]
fn a_tensor_given_twice_is_refused_naming_it() {
    let saved = Seed::<f32>::init(2);
    let bytes = io::to_bytes(&saved, &SaveOptions::new()).unwrap();
    let end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..end]).unwrap().trim_end();
    // The last entry again, pointing at fc1.bias's bytes: serde_json would keep this one.
    let value: serde_json::Value = serde_json::from_str(header).unwrap();
    let bias = serde_json::to_string(&value["fc1.bias"]).unwrap();
    let header = format!("{},\"fc2.bias\":{bias}}}", &header[..header.len() - 1]);
    let mut edited = file_with(&header, 0);
    edited.extend_from_slice(&bytes[end..]);
    let path = scratch("duplicate").join("twice.safetensors");
    std::fs::write(&path, &edited).unwrap();
    let (result, _, unchanged) = load_in_time(&path, false);
    let error = result.unwrap_err();
    assert!(
        matches!(&error, WeightsError::Corrupt { tensor: Some(t), .. } if t == "fc2.bias"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("twice.safetensors` is not a valid safetensors file"),
        "{message}"
    );
    assert!(
        message.contains("tensor `fc2.bias`: the name appears twice"),
        "{message}"
    );
    assert!(unchanged);
}

#[test]
fn an_invalid_shape_dtype_or_offset_names_the_tensor() {
    // fc1.bias claims 5 F32 values in 16 bytes.
    let saved = Seed::<f32>::init(2);
    let bytes = io::to_bytes(&saved, &SaveOptions::new()).unwrap();
    let end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..end]).unwrap();
    let at = header.find("\"fc1.bias\"").unwrap();
    let edited = format!(
        "{}{}",
        &header[..at],
        header[at..].replacen("[5]", "[4]", 1)
    );
    let mut file = (edited.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(edited.as_bytes());
    file.extend_from_slice(&bytes[end..]);
    let error = io::from_bytes(&mut Seed::<f32>::zeros(), &file, &LoadOptions::new()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("invalid shape, data type, or offset for tensor `fc1.bias`: shape [4] of F32 needs 16 bytes"),
        "{message}"
    );
}

#[test]
fn a_network_with_boxed_layers_saves_and_loads_on_a_small_stack() {
    // Its first layer alone is 392 KiB in f32: on a 256 KiB thread any stack copy would overflow.
    let dir = scratch("boxed");
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let path = dir.join("wide.safetensors");
            let saved = Wide::<f32>::init(3);
            io::save(&saved, &path).unwrap();
            let mut net = Wide::<f32>::zeros();
            io::load(&mut net, &path).unwrap();
            assert_eq!(bits(&net), bits(&saved));
            let bytes = io::to_bytes(&saved, &SaveOptions::new()).unwrap();
            let mut from_bytes = Wide::<f32>::zeros();
            io::from_bytes(&mut from_bytes, &bytes, &LoadOptions::new()).unwrap();
            assert_eq!(bits(&from_bytes), bits(&saved));
        })
        .unwrap()
        .join()
        .expect("save and load fit a 256 KiB stack");
}

#[test]
fn endless_streams_are_refused_within_the_networks_bounds() {
    use std::io::Read;
    let valid = io::to_bytes(&Seed::<f32>::init(9), &SaveOptions::new()).unwrap();
    let cases: [(&str, Box<dyn Read>, &str); 4] = [
        ("zeros", Box::new(std::io::repeat(0)), "expected `{`"),
        (
            "braces",
            Box::new(std::io::repeat(b'{')),
            "the header claims",
        ),
        (
            "a valid file, then zeros",
            Box::new(valid.as_slice().chain(std::io::repeat(0))),
            "the stream goes on after the last tensor's data",
        ),
        (
            "a header that never ends",
            Box::new(valid[..8].chain(std::io::repeat(b' '))),
            "invalid JSON header",
        ),
    ];
    for (what, reader, expected) in cases {
        let mut net = Seed::<f32>::init(5);
        let before = bits(&net);
        let (result, peak) = peak_bytes(|| io::from_reader(&mut net, reader, &LoadOptions::new()));
        let message = result.unwrap_err().to_string();
        assert!(message.contains(expected), "{what}: {message}");
        assert_eq!(bits(&net), before, "{what}");
        assert!(peak < SMALL, "{what}: {peak} bytes");
    }
}
