//! Running the glassnet binary from a test: a fresh folder, the command, its output, and
//! the shape every refusal must have.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An empty folder of its own for test `name` of suite `suite` (a previous run's removed).
pub fn tmpdir(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("glassnet-{suite}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The binary under test, with a backtrace on panic so that a panic cannot pass for an error.
pub fn glassnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glassnet"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts a clean failure that mentions `needle`: non-zero exit, no panic.
pub fn fails_with(o: &Output, needle: &str) {
    let t = text(o);
    assert!(!o.status.success(), "expected failure, got success:\n{t}");
    assert!(
        t.contains(needle),
        "error does not mention {needle:?}:\n{t}"
    );
    assert!(
        !t.contains("panicked") && !t.contains("stack backtrace"),
        "panic instead of an error:\n{t}"
    );
}

/// A model folder's metadata.json.
pub fn metadata(model: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(model.join("metadata.json")).unwrap()).unwrap()
}

/// `predict --json` records for `paths` (files or folders) with `extra` flags.
pub fn predict_json(model: &Path, paths: &[&Path], extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["predict", "--model", model.to_str().unwrap(), "--json"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    args.extend_from_slice(extra);
    let o = glassnet(&args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
