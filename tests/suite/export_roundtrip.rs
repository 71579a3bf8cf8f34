//! `python/export.py` round trip: three torch models exported, their printed declarations compiled
//! with `#[weights]` in a crate of their own, and their outputs checked against torch's. Runs only
//! when `python3` can import torch and safetensors; otherwise it says so and passes (CI never needs
//! torch).

use std::path::Path;
use std::process::Command;

#[test]
fn exported_models_compile_and_equal_torch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let has_torch = Command::new("python3")
        .args(["-c", "import torch, safetensors"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_torch {
        eprintln!("skipped: python3 with torch and safetensors is not installed");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("export_roundtrip");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("python3")
        .arg(root.join("python/tests/roundtrip.py"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "roundtrip.py failed");
    let manifest = format!(
        "[package]\nname = \"export-roundtrip\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nbackprop = {{ path = {:?} }}\n\n[workspace]\n",
        root.display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--offline"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("3 models equal torch"),
        "the exported crate failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
