//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

pub mod cli;

use glassnet::gpu::{AdapterChoice, GpuContext};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform values in [-1, 1): never all zeros, so a kernel that writes nothing fails.
pub fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `python3 tools/<tool> <args>` from the project root. Without python3 the caller skips
/// (None, with a message) on a developer's machine, and fails under CI=true.
pub fn python3_tool(tool: &str, args: &[&str]) -> Option<std::process::Output> {
    let root = env!("CARGO_MANIFEST_DIR");
    match std::process::Command::new("python3")
        .arg(format!("{root}/tools/{tool}"))
        .args(args)
        .output()
    {
        Ok(o) => Some(o),
        Err(e) => {
            assert!(!in_ci(), "CI=true and python3 cannot run: {e}");
            eprintln!("SKIPPED (no python3; set CI=true to make this fail): {e}");
            None
        }
    }
}

/// The shared GPU context. Without an adapter the GPU tests are skipped with a message on
/// a developer's machine, and fail under CI=true.
pub fn gpu() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Result<Arc<GpuContext>, String>> = OnceLock::new();
    match CTX.get_or_init(|| {
        GpuContext::new(AdapterChoice::Any)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }) {
        Ok(c) => Some(c.clone()),
        Err(e) if in_ci() => panic!("CI=true and no GPU adapter: {e}"),
        Err(e) => {
            eprintln!("SKIPPED (no GPU adapter; set CI=true to make this fail): {e}");
            None
        }
    }
}

/// Within tolerance; NaN never is.
fn within(g: f32, w: f32, atol: f32, rtol: f32) -> bool {
    matches!(
        (g - w).abs().partial_cmp(&(atol + rtol * w.abs())),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    )
}

/// Asserts |got - want| <= atol + rtol * |want| elementwise, naming the tensor and the worst
/// element on failure.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: length {} vs reference {}",
        got.len(),
        want.len()
    );
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        let tol = atol + rtol * w.abs();
        if !within(g, w, atol, rtol) {
            let excess = if err.is_nan() {
                f32::INFINITY
            } else {
                err / tol
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        let bad = got
            .iter()
            .zip(want)
            .filter(|(g, w)| !within(**g, **w, atol, rtol))
            .count();
        panic!(
            "{name}: {bad} of {} elements out of tolerance (atol {atol}, rtol {rtol}); worst at {i}: got {}, want {}",
            got.len(),
            got[i],
            want[i]
        );
    }
    assert!(
        want.iter().any(|&w| w != 0.0) || want.is_empty(),
        "{name}: reference is all zeros, the test proves nothing"
    );
}
