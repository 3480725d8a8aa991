//! Running the glassnet binary from a test: a fresh folder, the command, its output, and
//! the shape every refusal must have.

use std::path::PathBuf;
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
