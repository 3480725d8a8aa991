//! `evaluate --open-set`: leave one class out, with resume like the k-fold run.

use std::path::Path;

use anyhow::Context;

use super::{out_dir, EvaluateArgs, Method};
use crate::cli::load_dataset_and_frames;
use crate::cli::progress::Bar;
use crate::eval::openset::{
    check_held_out, leave_one_class_out, HeldOut, OpenSetConfig, OpenSetObserver,
};
use crate::fsio::write_atomic;
use crate::plot;
use crate::train::Progress;

/// What a resumed open-set run must match.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct OpenSetIdentity {
    source: String,
    classes: Vec<String>,
    images: usize,
    open_set: OpenSetConfig,
    arch: crate::model::Arch,
    preprocess: crate::data::preprocess::Preprocess,
}

struct OpenSetProgress<'a> {
    dir: &'a Path,
    classes: &'a [String],
    started: std::time::Instant,
}

impl OpenSetObserver for OpenSetProgress<'_> {
    fn training(&mut self, class: usize, what: &str) -> Box<dyn Progress + '_> {
        Box::new(Bar::new(&format!(
            "held out {}/{} {:?}, {what}: ",
            class + 1,
            self.classes.len(),
            self.classes[class]
        )))
    }

    fn held_out_done(&mut self, r: &HeldOut) -> crate::Result<()> {
        let path = self.dir.join(format!("held-out-{:02}.json", r.class + 1));
        let body = serde_json::to_vec(r).map_err(|e| crate::Error::Input(e.to_string()))?;
        write_atomic(&path, &body)?;
        eprintln!(
            "held out {:?} done after {:.0}s: AUROC {}, known rejected {:.1}%, closed-set {:.2}%",
            r.name,
            self.started.elapsed().as_secs_f64(),
            r.auroc.map_or("-".into(), |v| format!("{v:.3}")),
            r.known_rejected * 100.0,
            r.closed_set.accuracy * 100.0
        );
        Ok(())
    }
}

/// `evaluate --open-set`: leave one class out, with resume like the k-fold run.
pub(super) fn run_open_set(a: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.methods == Method::DEFAULT.to_vec(),
        "--methods: --open-set evaluates the triplet network only; leave --methods out"
    );
    let train_cfg = a.recipe.config()?;
    let mut arch = a.recipe.arch(train_cfg.head)?;
    let cfg = OpenSetConfig {
        seed: a.fold_seed,
        test_fraction: a.test_fraction,
        val_fraction: 0.2,
        known_recall: a.known_recall,
        enrol_sizes: a.enrol_sizes.clone(),
        retrain: !a.no_retrain,
        train: train_cfg,
    };
    let (out, non_empty) = out_dir(&a)?;
    let pre = a.pre.build(arch.side, &a.data)?;
    arch.in_channels = pre.channels();
    let (data, _, source) = load_dataset_and_frames(&a.data, &pre, false)?;
    data.check_trainable(&source, 2)?;
    crate::eval::openset::check(&data, &cfg)?;
    let identity = OpenSetIdentity {
        source: source.clone(),
        classes: data.classes.clone(),
        images: data.len(),
        open_set: cfg.clone(),
        arch: arch.clone(),
        preprocess: pre.clone(),
    };
    let dir = out.join("held-out");
    let config_path = out.join("config.json");
    let done = resume_held_out(&a, &out, non_empty, &identity, &data, &cfg)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(&config_path, &serde_json::to_vec_pretty(&identity)?)?;
    eprintln!("data: {source}: {}", data.summary());
    eprintln!(
        "leave-one-class-out over {} classes; {} epochs per network; enrol {:?}{}",
        data.classes.len(),
        cfg.train.epochs,
        cfg.enrol_sizes,
        if cfg.retrain {
            ", and retrain with the largest"
        } else {
            ""
        }
    );
    let mut observer = OpenSetProgress {
        dir: &dir,
        classes: &data.classes,
        started: std::time::Instant::now(),
    };
    let rows = leave_one_class_out(&data, &cfg, &arch, a.device.choice(), done, &mut observer)
        .with_context(|| {
            format!(
            "evaluation stopped; finished classes are kept in {}: continue with --resume --out {}",
            dir.display(),
            out.display()
        )
        })?;
    write_open_set_reports(&out, &source, &identity, &rows)
}

/// The held-out classes an interrupted run (--resume) already finished, each checked to be
/// the class it claims; refuses a folder started with other settings or data.
fn resume_held_out(
    a: &EvaluateArgs,
    out: &Path,
    non_empty: bool,
    identity: &OpenSetIdentity,
    data: &crate::data::Dataset,
    cfg: &OpenSetConfig,
) -> anyhow::Result<Vec<HeldOut>> {
    let dir = out.join("held-out");
    let config_path = out.join("config.json");
    let mut done = Vec::new();
    if a.resume && config_path.exists() {
        // Typed, not as JSON values: an f32 setting read back equals itself only as an f32.
        let saved: OpenSetIdentity = serde_json::from_slice(
            &std::fs::read(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?,
        )
        .with_context(|| {
            format!(
                "{}: not a glassnet open-set evaluation",
                config_path.display()
            )
        })?;
        anyhow::ensure!(
            saved == *identity,
            "--resume: {} was started with other settings or data; rerun with the same flags, or choose another --out",
            out.display()
        );
        for u in 0..data.classes.len() {
            let p = dir.join(format!("held-out-{:02}.json", u + 1));
            if p.exists() {
                let r: HeldOut = serde_json::from_slice(&std::fs::read(&p)?)
                    .with_context(|| format!("{}: unreadable result", p.display()))?;
                check_held_out(&r, u, data, cfg).map_err(|e| {
                    anyhow::anyhow!(
                        "--resume: {}: {e}; remove the file to compute it again",
                        p.display()
                    )
                })?;
                done.push(r);
            }
        }
        eprintln!(
            "resuming {}: {} of {} held-out classes already done",
            out.display(),
            done.len(),
            data.classes.len()
        );
    } else {
        anyhow::ensure!(
            !non_empty,
            "--resume: {} holds no config.json of an evaluation",
            out.display()
        );
    }
    Ok(done)
}

/// roc.png, report.md (also printed), report.json and report.html.
fn write_open_set_reports(
    out: &Path,
    source: &str,
    identity: &OpenSetIdentity,
    rows: &[HeldOut],
) -> anyhow::Result<()> {
    let (cfg, pre) = (&identity.open_set, &identity.preprocess);
    let title = format!("leave-one-class-out ROC: {source}");
    let curves: Vec<(String, Vec<(f64, f64)>)> = rows
        .iter()
        .map(|r| {
            (
                format!(
                    "{} (AUROC {})",
                    r.name,
                    r.auroc.map_or("-".into(), |v| format!("{v:.3}"))
                ),
                r.roc.clone(),
            )
        })
        .collect();
    plot::roc_curves(&out.join("roc.png"), &title, &curves)?;
    let mut md = crate::eval::openset::report_markdown(
        &format!("{source}; preprocessing: {}", pre.describe()),
        cfg,
        rows,
    );
    md += "
## Pictures

- [roc.png](roc.png): ROC per held-out class
";
    print!("{md}");
    let json = serde_json::json!({
        "data": source,
        "classes": identity.classes,
        "open_set": cfg,
        "arch": identity.arch,
        "preprocess": pre,
        "commit": option_env!("GLASSNET_COMMIT").unwrap_or("unknown"),
        "held_out": rows,
    });
    // report.html: the same tables beside the ROC picture, in one file.
    let mut page = crate::html::Page::new(&format!("glassnet evaluate --open-set: {source}"));
    page.markdown(md.split_once('\n').map_or(md.as_str(), |(_, rest)| rest));
    page.picture("ROC per held-out class", &out.join("roc.png"))?;
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_atomic(
        &out.join("report.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    write_atomic(&out.join("report.html"), page.finish().as_bytes())?;
    println!(
        "report written to {0}/report.md and {0}/report.html",
        out.display()
    );
    Ok(())
}
