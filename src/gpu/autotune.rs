//! Choosing between a kernel's variants by measuring them once per adapter and shape.
//!
//! Which register block is fastest depends on the adapter (SIMD width, registers, caches) and
//! on the shape (how many lanes a block leaves idle), so instead of guessing, the first plan
//! that needs a choice times every variant on its real buffers and keeps the fastest. Choices
//! are remembered in memory for the context and on disk per adapter (a JSON file in the user's
//! cache directory), so later runs start without measuring. The variants compute the same sums;
//! the register-blocked and tiled ones in the same order, the `_split` ones (hardware GPUs
//! only) in another fixed order, so a choice can move results by rounding, never run to run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use crate::Result;

/// `GLASSNET_AUTOTUNE=off` skips measuring and takes each kernel's default variant;
/// `GLASSNET_AUTOTUNE=verbose` measures as usual and prints every variant's time to stderr.
const ENV_SWITCH: &str = "GLASSNET_AUTOTUNE";

pub struct Autotune {
    /// The per-adapter file, or None where there is no cache directory.
    path: Option<PathBuf>,
    /// "kernel shape" -> variant name.
    table: Mutex<BTreeMap<String, String>>,
    /// Keys this context has asked for (what `choices` reports), as (key, stored key).
    used: Mutex<BTreeSet<(String, String)>>,
    enabled: bool,
    verbose: bool,
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("GLASSNET_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("glassnet"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("glassnet"))
}

/// File name for an adapter: its description with anything but [A-Za-z0-9-] made '_'.
fn file_name(adapter: &str) -> String {
    let clean: String = adapter
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "autotune-{}.json",
        clean.chars().take(120).collect::<String>()
    )
}

/// FNV-1a of the variant names: which set of variants a remembered choice was made among.
fn fingerprint(variants: &[&str]) -> u32 {
    let mut h = 0x811c_9dc5u32;
    for b in variants.join(",").bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h
}

impl Autotune {
    /// The remembered choices for `adapter` (name, backend and driver version: a driver
    /// update re-measures).
    pub fn load(adapter: &str) -> Autotune {
        let switch = std::env::var(ENV_SWITCH);
        let enabled = !matches!(switch.as_deref(), Ok("off") | Ok("0") | Ok("false"));
        let mut tune = Autotune::at(cache_dir().map(|d| d.join(file_name(adapter))), enabled);
        tune.verbose = switch.as_deref() == Ok("verbose");
        tune
    }

    /// Choices remembered in the file `path` (none: in memory only).
    fn at(path: Option<PathBuf>, enabled: bool) -> Autotune {
        let table = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        Autotune {
            path,
            table: Mutex::new(table),
            used: Mutex::default(),
            enabled,
            verbose: false,
        }
    }

    /// The variant remembered for `key`, built, or else each of `variants` built once and
    /// timed by `run` (one warm-up each, then the best of three interleaved rounds; a variant
    /// whose warm-up took 4x the quickest one is not timed) and the fastest kept, built and
    /// remembered; a variant that cannot be built or run here (e.g. its scratch exceeds the
    /// adapter's binding limit) is left out, and only when none can is that an error. Without
    /// measuring (switched off) the first variant is the default.
    pub fn pick<T>(
        &self,
        key: &str,
        variants: &[&'static str],
        mut build: impl FnMut(&'static str) -> Result<T>,
        mut run: impl FnMut(&T) -> Result<()>,
    ) -> Result<T> {
        if !self.enabled || variants.len() == 1 {
            return build(variants[0]);
        }
        // A choice made among other variants (an older or newer glassnet) is measured again.
        let stored = format!("{key} #{:08x}", fingerprint(variants));
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((key.to_string(), stored.clone()));
        let known = self.lock().get(&stored).cloned();
        if let Some(&v) = known.and_then(|k| variants.iter().find(|v| **v == k)) {
            return build(v);
        }
        // Build and warm up every variant, then time them in interleaved rounds, so that a
        // slow spell of a shared machine does not fall on all runs of one variant.
        let mut built: Vec<(&'static str, T, f64)> = Vec::new();
        let mut first_error = None;
        for &v in variants {
            // The first run compiles the pipeline (on some drivers seconds); the second is
            // the warm-up that decides whether the variant is worth timing.
            match build(v).and_then(|b| run(&b).map(|()| b)) {
                Ok(b) => {
                    let warm = Instant::now();
                    match run(&b) {
                        Ok(()) => built.push((v, b, warm.elapsed().as_secs_f64())),
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // A variant whose warm-up run took several times the quickest warm-up cannot win:
        // not worth timing.
        let quickest = built.iter().map(|b| b.2).fold(f64::INFINITY, f64::min);
        let mut report: Vec<String> = Vec::new();
        if self.verbose {
            for b in built.iter().filter(|b| b.2 > 4.0 * quickest) {
                report.push(format!("{} warm-up {:.3} ms, not timed", b.0, b.2 * 1e3));
            }
        }
        built.retain(|b| b.2 <= 4.0 * quickest);
        let mut times = vec![f64::INFINITY; built.len()];
        for _ in 0..3 {
            for ((_, b, _), t) in built.iter().zip(&mut times) {
                let s = Instant::now();
                run(b)?;
                *t = t.min(s.elapsed().as_secs_f64());
            }
        }
        let Some(i) = (0..built.len()).min_by(|&a, &b| times[a].total_cmp(&times[b])) else {
            return Err(first_error.expect("no variants"));
        };
        if self.verbose {
            for ((v, _, _), t) in built.iter().zip(&times) {
                report.push(format!("{v} {:.3} ms", t * 1e3));
            }
            eprintln!("autotune {key}: {} -> {}", report.join(", "), built[i].0);
        }
        let (v, built, _) = built.swap_remove(i);
        self.lock().insert(stored, v.to_string());
        self.save();
        Ok(built)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the table next to its final name and renames it, so a reader never sees half a
    /// file; a cache that cannot be written only costs measuring again next time.
    fn save(&self) {
        let Some(path) = &self.path else { return };
        let Ok(text) = serde_json::to_string_pretty(&*self.lock()) else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// The choices this context has used, as (kernel and shape, variant).
    pub fn choices(&self) -> Vec<(String, String)> {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let table = self.lock();
        used.into_iter()
            .filter_map(|(k, stored)| table.get(&stored).map(|v| (k, v.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// Picks among variants whose "time" is a sleep of the given milliseconds (None: fails).
    fn pick(t: &Autotune, variants: &[&'static str], ms: &[Option<u64>]) -> Result<&'static str> {
        let lookup = |v: &str| ms[variants.iter().position(|x| *x == v).unwrap()];
        t.pick(
            "k shape",
            variants,
            |v| match lookup(v) {
                Some(_) => Ok(v),
                None => Err(Error::Gpu(format!("{v} cannot run here"))),
            },
            |v| {
                std::thread::sleep(std::time::Duration::from_millis(lookup(v).unwrap()));
                Ok(())
            },
        )
    }

    #[test]
    fn picks_the_fastest_remembers_it_and_remeasures_for_new_variants() {
        let dir = std::env::temp_dir().join(format!("glassnet-autotune-{}", std::process::id()));
        let file = dir.join("t.json");
        let _ = std::fs::remove_file(&file);
        let t = Autotune::at(Some(file.clone()), true);
        let got = pick(&t, &["a", "b", "c"], &[Some(20), Some(1), None]).unwrap();
        assert_eq!(got, "b", "the fastest variant that runs");
        assert_eq!(t.choices(), vec![("k shape".to_string(), "b".to_string())]);
        // A fresh context reads the choice back without measuring (b would now lose).
        let t = Autotune::at(Some(file.clone()), true);
        let got = pick(&t, &["a", "b", "c"], &[Some(1), Some(20), None]).unwrap();
        assert_eq!(got, "b", "remembered");
        // Another set of variants is measured again.
        let got = pick(&t, &["a", "b", "d"], &[Some(20), Some(20), Some(1)]).unwrap();
        assert_eq!(got, "d", "new variant set re-measured");
        // Switched off: the first variant, unmeasured; none that runs: the first error.
        let off = Autotune::at(None, false);
        assert_eq!(pick(&off, &["a", "b"], &[Some(9), Some(1)]).unwrap(), "a");
        let t = Autotune::at(None, true);
        let err = pick(&t, &["x", "y"], &[None, None]).unwrap_err();
        assert!(err.to_string().contains("x cannot run here"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
