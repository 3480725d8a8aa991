//! `train` survives kill -9: a checkpoint after every epoch, `--resume` ends with the weights
//! of an uninterrupted run (the CPU is deterministic), and a checkpoint that is damaged, of
//! another run, or missing is refused with a message that says what to do, touching nothing.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use glassnet::checkpoint::{read_train_checkpoint, TRAIN_CHECKPOINT};
use rand::Rng;

/// Small enough to finish in seconds, large enough that an epoch lasts long enough to be
/// killed inside (built-in data: 640 training images, 16 steps of 96 per epoch).
const RUN: &[&str] = &[
    "--epochs",
    "5",
    "--channels",
    "8,16",
    "--embed-dim",
    "16",
    "--size",
    "48",
    "--cpu",
];

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("glassnet-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn command(out_flag: &str, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_glassnet"));
    c.arg("train")
        .arg(out_flag)
        .arg(out)
        .args(RUN)
        .args(extra)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn train(out_flag: &str, out: &Path, extra: &[&str]) -> Output {
    command(out_flag, out, extra).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fails_with(o: &Output, needle: &str) {
    let t = text(o);
    assert!(!o.status.success(), "expected failure:\n{t}");
    assert!(t.contains(needle), "no {needle:?} in:\n{t}");
    assert!(!t.contains("panicked"), "panic:\n{t}");
}

/// The staging folder of a running child, once it exists.
fn staging_of(out: &Path, child: &Child) -> PathBuf {
    let name = out.file_name().unwrap().to_string_lossy();
    out.with_file_name(format!(".{name}.partial-{}", child.id()))
}

/// Epochs the child's checkpoint holds (0 before the first).
fn epochs_done(stage: &Path) -> usize {
    read_train_checkpoint(&stage.join(TRAIN_CHECKPOINT)).map_or(0, |(s, _)| s.cursor.epochs_done)
}

/// Starts a run and kills it with SIGKILL after `epochs` checkpoints plus `extra_ms`;
/// returns the folder it left and how many epochs its checkpoint held just before the kill.
fn kill_after(out: &Path, epochs: usize, extra_ms: u64) -> (PathBuf, usize) {
    let mut child = command("--out", out, &[]).spawn().unwrap();
    let stage = staging_of(out, &child);
    let t = Instant::now();
    while epochs_done(&stage) < epochs {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before epoch {epochs}"
        );
        assert!(t.elapsed() < Duration::from_secs(300), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(extra_ms));
    let seen = epochs_done(&stage);
    child.kill().unwrap();
    child.wait().unwrap();
    (stage, seen)
}

fn hashes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn killed_runs_resume_to_the_weights_of_an_uninterrupted_run() {
    let root = tmpdir("kill");
    let whole = root.join("whole");
    let o = train("--out", &whole, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let want = std::fs::read(whole.join("model.safetensors")).unwrap();
    let want_gallery = std::fs::read(whole.join("gallery.safetensors")).unwrap();
    let mut rng = common::rng(0x6b11);
    for round in 0..5 {
        let epochs = rng.random_range(1..=3);
        let extra_ms = rng.random_range(0..400);
        let out = root.join(format!("killed-{round}"));
        let (stage, seen) = kill_after(&out, epochs, extra_ms);
        assert!(stage.is_dir() && !out.exists(), "round {round}");
        let o = train("--resume", &out, &[]);
        let t = text(&o);
        assert!(o.status.success(), "round {round}: {t}");
        // The checkpoint it resumed from is the last one written before the kill (or later):
        // at most the epoch in progress is computed again.
        let from: usize = t
            .split("after epoch ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("round {round}: no 'resuming ... after epoch N' in {t}"));
        assert!(
            from >= seen,
            "round {round}: resumed after epoch {from}, {seen} were done"
        );
        assert_eq!(
            std::fs::read(out.join("model.safetensors")).unwrap(),
            want,
            "round {round} (killed after {epochs} epochs + {extra_ms} ms): weights differ"
        );
        assert_eq!(
            std::fs::read(out.join("gallery.safetensors")).unwrap(),
            want_gallery
        );
        assert!(!stage.exists() && !out.join(TRAIN_CHECKPOINT).exists());
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// An interrupted run (killed after its first checkpoint) copied to `out`'s staging name.
fn interrupted(root: &Path, template: &Path, name: &str) -> (PathBuf, PathBuf) {
    let out = root.join(name);
    let stage = root.join(format!(".{name}.partial-1"));
    std::fs::create_dir_all(&stage).unwrap();
    for e in std::fs::read_dir(template).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), stage.join(e.file_name())).unwrap();
    }
    (out, stage)
}

#[test]
fn checkpoints_of_other_runs_or_damaged_ones_are_refused_and_kept() {
    let root = tmpdir("refuse");
    let (template, _) = kill_after(&root.join("template"), 1, 0);
    let ckpt = std::fs::read(template.join(TRAIN_CHECKPOINT)).unwrap();

    // Other settings or data: the differing field is named, nothing changes.
    for (i, (flags, field)) in [
        (&["--lr", "0.01"][..], "training.optim.lr"),
        (&["--seed", "3"][..], "training.seed"),
        (&["--margin", "0.3"][..], "training.margin"),
        (&["--augment", "none"][..], "training.augment"),
        (&["--val-fraction", "0.3"][..], "val_fraction"),
    ]
    .iter()
    .enumerate()
    {
        let (out, stage) = interrupted(&root, &template, &format!("other-{i}"));
        let before = hashes(&stage);
        let o = train("--resume", &out, flags);
        fails_with(&o, field);
        fails_with(&o, "other settings or data");
        assert_eq!(hashes(&stage), before, "{flags:?}: the checkpoint changed");
        assert!(!out.exists());
    }

    // Damaged files: truncated, a flipped bit in the weights, not a checkpoint at all.
    let flipped = {
        let mut b = ckpt.clone();
        let n = b.len();
        b[n - 10] ^= 0x10;
        b
    };
    for (i, (bytes, needle)) in [
        (
            ckpt[..ckpt.len() / 2].to_vec(),
            "damaged training checkpoint",
        ),
        (flipped, "checksum does not match"),
        (b"not a checkpoint".to_vec(), "damaged training checkpoint"),
        (Vec::new(), "damaged training checkpoint"),
    ]
    .into_iter()
    .enumerate()
    {
        let (out, stage) = interrupted(&root, &template, &format!("damaged-{i}"));
        std::fs::write(stage.join(TRAIN_CHECKPOINT), &bytes).unwrap();
        let before = hashes(&stage);
        let o = train("--resume", &out, &[]);
        fails_with(&o, needle);
        fails_with(&o, TRAIN_CHECKPOINT);
        assert_eq!(hashes(&stage), before);
        assert!(!out.exists());
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn stale_runs_are_reported_and_resume_needs_one() {
    let root = tmpdir("stale");
    let (template, _) = kill_after(&root.join("template"), 1, 0);

    // A plain --out over an interrupted run says how to resume or discard it.
    let (out, stage) = interrupted(&root, &template, "again");
    let before = hashes(&stage);
    let o = train("--out", &out, &[]);
    fails_with(&o, "--resume");
    fails_with(&o, "--restart");
    assert_eq!(hashes(&stage), before);
    // --restart discards it and trains afresh.
    let o = train("--out", &out, &["--restart"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!stage.exists() && out.join("model.safetensors").is_file());
    // A finished run has nothing to resume, and its model stays as it is.
    let model = hashes(&out);
    fails_with(&train("--resume", &out, &[]), "nothing to resume");
    assert_eq!(hashes(&out), model);

    // Nothing to resume; two interrupted runs are ambiguous; --resume and a different --out.
    fails_with(
        &train("--resume", &root.join("never"), &[]),
        "no interrupted run",
    );
    let (two, _) = interrupted(&root, &template, "two");
    let second = root.join(".two.partial-2");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::copy(
        template.join(TRAIN_CHECKPOINT),
        second.join(TRAIN_CHECKPOINT),
    )
    .unwrap();
    fails_with(&train("--resume", &two, &[]), "2 interrupted runs");
    let mut c = command("--resume", &two, &["--out"]);
    c.arg(root.join("elsewhere"));
    fails_with(&c.output().unwrap(), "give one");

    // A folder left before the first checkpoint holds nothing: it is removed with a note.
    let early = root.join(".early.partial-7");
    std::fs::create_dir_all(&early).unwrap();
    let o = train("--out", &root.join("early"), &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("removed") && !early.exists());
    std::fs::remove_dir_all(&root).unwrap();
}

/// Staging folders of `out` (what a failed run kept).
fn kept(out: &Path) -> Vec<PathBuf> {
    let prefix = format!(".{}.partial-", out.file_name().unwrap().to_string_lossy());
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect();
    v.sort();
    v
}

/// A device lost mid-run (injected: GLASSNET_FAULT_AT_STEP) stops with an error that keeps
/// the last checkpoint and says how to resume; the resumed run ends where an uninterrupted
/// one does. A fault before the first checkpoint leaves nothing.
#[test]
fn a_lost_device_keeps_the_last_checkpoint_and_resumes() {
    let root = tmpdir("fault");
    let whole = root.join("whole");
    assert!(train("--out", &whole, &[]).status.success());
    let want = std::fs::read(whole.join("model.safetensors")).unwrap();
    let faulty = |flag: &str, out: &Path, at: u64| {
        command(flag, out, &[])
            .env("GLASSNET_FAULT_AT_STEP", at.to_string())
            .output()
            .unwrap()
    };
    // 16 steps per epoch: step 40 is in epoch 3, after two checkpoints.
    let out = root.join("lost");
    let o = faulty("--out", &out, 40);
    fails_with(&o, "device lost");
    fails_with(&o, "--resume");
    let stage = kept(&out);
    assert_eq!(stage.len(), 1, "{}", text(&o));
    assert_eq!(epochs_done(&stage[0]), 2);
    assert!(!out.exists());
    // Lost again while resuming (its 10th step, step 42 of the run): the checkpoint stays.
    let o = faulty("--resume", &out, 10);
    fails_with(&o, "device lost");
    let stage = kept(&out);
    assert_eq!(stage.len(), 1);
    assert_eq!(epochs_done(&stage[0]), 2);
    let o = train("--resume", &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), want);
    assert!(kept(&out).is_empty());
    // Before the first checkpoint there is nothing to keep.
    let early = root.join("early");
    fails_with(&faulty("--out", &early, 5), "device lost");
    assert!(kept(&early).is_empty() && !early.exists());
    std::fs::remove_dir_all(&root).unwrap();
}
