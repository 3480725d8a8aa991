//! `glassnet evaluate`: stratified k-fold cross-validation with a report, plots and resume.
//!
//! Layout of `--out`: config.json (what is evaluated, checked on --resume), folds/fold-NN.json
//! (each finished fold, written atomically), and at the end report.md, report.json,
//! report.html (report.rs) and PNGs. `--open-set` runs leave-one-class-out (open_set.rs).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::progress::Bar;
use super::train::RecipeArgs;
use super::{load_dataset_and_frames, DataArgs, DeviceArgs};
use crate::eval::cv::{
    check_fold, cross_validate, report_markdown, summarise, CvConfig, CvObserver, FoldResult,
    Method,
};
use crate::eval::tsne::tsne_2d;
use crate::fsio::write_atomic;
use crate::metric::scores::Scores;
use crate::plot;
use crate::train::Progress;

mod learning_curve;
mod open_set;
mod report;

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// Number of stratified folds.
    #[arg(long, default_value_t = 10)]
    folds: usize,
    /// Seed of the fold assignment.
    #[arg(long, default_value_t = 0)]
    fold_seed: u64,
    /// Which methods run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Method::DEFAULT.to_vec())]
    methods: Vec<Method>,
    /// SVM penalty C (RBF kernel, gamma "scale").
    #[arg(long, default_value_t = 10.0)]
    svm_c: f64,
    /// Output directory (default: runs/evaluate-<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue an interrupted evaluation in --out from its last finished fold (the settings
    /// must match the ones it was started with).
    #[arg(long, requires = "out")]
    resume: bool,
    /// Leave one class out instead of k folds: each class is held out of training in turn
    /// and scored as an unknown (AUROC, FPR@95TPR, known images rejected), then enrolled
    /// from --enrol-sizes images and compared with a retrain.
    #[arg(long)]
    open_set: bool,
    /// With --open-set: how many images of the held-out class are enrolled (ascending).
    #[arg(long, value_delimiter = ',', default_values_t = [5usize, 10, 30], requires = "open_set")]
    enrol_sizes: Vec<usize>,
    /// With --open-set: skip the retrain with the enrolled images (halves the time).
    #[arg(long, requires = "open_set")]
    no_retrain: bool,
    /// With --open-set: the fraction of known images the thresholds are calibrated to accept.
    #[arg(long, default_value_t = 0.95, value_parser = super::known_recall)]
    known_recall: f64,
    /// With --open-set: fraction of each known class kept for testing.
    #[arg(long, default_value_t = 0.2, requires = "open_set")]
    test_fraction: f64,
    /// Learning curve: the cross-validation once per size (e.g. 1,5,10,30,100), every
    /// method fitting on at most that many images of each class of the training folds
    /// (seeded; smaller sizes are subsets of larger ones) and tested on the whole test fold.
    /// Each size's report in per-class-N/; the curve in learning-curve.md, .json and .png.
    #[arg(long, value_name = "SIZES", value_delimiter = ',', conflicts_with_all = ["open_set", "good_class"])]
    train_per_class: Vec<usize>,
    /// Also score every network with test-time augmentation: each gallery and test image
    /// embedded as the mean over the orientations training drew from (--augment), in rows
    /// of their own beside the plain ones, from the same trained network (8x the embedding
    /// time with the default dihedral views). The paper's network (--methods paper), trained
    /// on one view, gets none.
    #[arg(long, conflicts_with = "open_set")]
    tta: bool,
    /// The defect-free class: also report escapes (defects called good) and false alarms
    /// (good parts called a defect), at plain 1-NN and at a bias calibrated for
    /// --max-escape on a fifth of each training fold the networks then do not train on.
    #[arg(long, value_name = "CLASS", conflicts_with = "open_set")]
    good_class: Option<String>,
    /// With --good-class: the escape rate the bias is calibrated for.
    #[arg(long, default_value_t = 0.01, requires = "good_class")]
    max_escape: f64,
    #[command(flatten)]
    pre: super::PreprocessArgs,
    #[command(flatten)]
    recipe: RecipeArgs,
}

/// What a resumed run must match: the settings and the data it was started on.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct RunIdentity {
    source: String,
    classes: Vec<String>,
    images: usize,
    cv: CvConfig,
    arch: crate::model::Arch,
    preprocess: crate::data::preprocess::Preprocess,
}

struct Observer<'a> {
    dir: &'a Path,
    folds: usize,
    started: std::time::Instant,
}

impl CvObserver for Observer<'_> {
    fn training(&mut self, fold: usize, method: Method) -> Box<dyn Progress + '_> {
        Box::new(Bar::new(&format!(
            "fold {}/{} {}: ",
            fold + 1,
            self.folds,
            method.name()
        )))
    }

    fn fold_done(&mut self, f: &FoldResult) -> crate::Result<()> {
        let path = self.dir.join(format!("fold-{:02}.json", f.fold + 1));
        let body = serde_json::to_vec(f).map_err(|e| crate::Error::Input(e.to_string()))?;
        write_atomic(&path, &body)?;
        let parts: Vec<String> = f
            .rows
            .iter()
            .map(|r| {
                let s = Scores::of(&r.confusion);
                format!("{} {:.2}%", r.row, s.accuracy * 100.0)
            })
            .collect();
        eprintln!(
            "fold {:>2}/{} done after {:.0}s: {}",
            f.fold + 1,
            self.folds,
            self.started.elapsed().as_secs_f64(),
            parts.join(", ")
        );
        Ok(())
    }
}

pub fn run(a: EvaluateArgs) -> anyhow::Result<()> {
    if a.open_set {
        return open_set::run_open_set(a);
    }
    cv_config(&a, None)?;
    let (out, non_empty) = out_dir(&a)?;
    if !a.train_per_class.is_empty() {
        return learning_curve::run(&a, &out);
    }
    run_kfold(&a, &out, non_empty, None).map(|_| ())
}

/// One k-fold cross-validation into `out` (`per_class`: a learning-curve point): folds,
/// reports and pictures; returns the report rows' summaries.
fn run_kfold(
    a: &EvaluateArgs,
    out: &Path,
    non_empty: bool,
    per_class: Option<usize>,
) -> anyhow::Result<Vec<crate::eval::cv::RowSummary>> {
    let (mut cv, mut arch) = cv_config(a, per_class)?;
    let pre = a.pre.build(arch.side, &a.data)?;
    arch.in_channels = pre.channels();
    let needs_whole = [Method::TripletWholeFrame, Method::TripletViews]
        .iter()
        .any(|m| cv.methods.contains(m));
    let (data, whole_frame, source) = load_dataset_and_frames(&a.data, &pre, needs_whole)?;
    data.check_trainable(&source, 2)?;
    cv.good = good_config(a, &data, &source)?;
    let min_class = data.class_counts().into_iter().min().unwrap_or(0);
    anyhow::ensure!(
        min_class >= a.folds,
        "--folds {}: the smallest class has {min_class} images; every fold needs one of each",
        a.folds
    );
    let identity = RunIdentity {
        source: source.clone(),
        classes: data.classes.clone(),
        images: data.len(),
        cv: cv.clone(),
        arch: arch.clone(),
        preprocess: pre.clone(),
    };
    let folds_dir = out.join("folds");
    let done = resume_folds(a, out, non_empty, &identity, &data, &cv)?;
    write_split(out, &source, &data, &cv)?;

    eprintln!("data: {source}: {}", data.summary());
    eprintln!("preprocessing: {}", pre.describe());
    eprintln!(
        "{}-fold stratified cross-validation of {}; networks: recipe {:?}, {} epochs per fold{}",
        a.folds,
        cv.methods
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", "),
        cv.train.recipe,
        cv.train.epochs,
        if cv.train.jitter.is_off() {
            String::new()
        } else {
            format!(", jitter {}", cv.train.jitter.describe())
        }
    );
    let mut observer = Observer {
        dir: &folds_dir,
        folds: a.folds,
        started: std::time::Instant::now(),
    };
    let folds = cross_validate(
        &data,
        whole_frame.as_ref(),
        &cv,
        &arch,
        a.device.choice(),
        done,
        &mut observer,
    )
    .with_context(|| {
        format!(
            "evaluation stopped; finished folds are kept in {}: continue with --resume --out {}",
            folds_dir.display(),
            out.display()
        )
    })?;
    let summary = summarise(&folds, data.classes.len());
    print_summary(&summary);
    write_reports(a, out, &source, &pre, &arch, &data, &cv, &folds, &summary)?;
    Ok(summary)
}

/// split.json: each fold's training and test images (indices into `files`, the dataset in
/// load order), so that another tool (benches/pytorch_learning_curve.py) repeats the run on
/// exactly the same images. `files` is null for the generated built-in set.
fn write_split(
    out: &Path,
    source: &str,
    data: &crate::data::Dataset,
    cv: &CvConfig,
) -> anyhow::Result<()> {
    let files = (!data.paths.is_empty()).then(|| {
        data.paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    });
    let folds: Vec<serde_json::Value> = crate::eval::cv::splits(data, cv)
        .into_iter()
        .map(|(train, test)| serde_json::json!({ "train": train, "test": test }))
        .collect();
    let body = serde_json::json!({
        "data": source,
        "classes": data.classes,
        "files": files,
        "labels": data.labels,
        "fold_seed": cv.seed,
        "train_per_class": cv.train_per_class,
        "folds": folds,
    });
    std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
    write_atomic(
        &out.join("split.json"),
        serde_json::to_string(&body)?.as_bytes(),
    )?;
    Ok(())
}

/// The run's settings from the flags, each checked.
fn cv_config(
    a: &EvaluateArgs,
    per_class: Option<usize>,
) -> anyhow::Result<(CvConfig, crate::model::Arch)> {
    anyhow::ensure!(a.folds >= 2, "--folds {}: at least 2", a.folds);
    anyhow::ensure!(
        a.svm_c.is_finite() && a.svm_c > 0.0,
        "--svm-c {}: must be a positive number",
        a.svm_c
    );
    let mut methods = a.methods.clone();
    methods.dedup();
    anyhow::ensure!(!methods.is_empty(), "--methods: name at least one method");
    let train_cfg = a.recipe.config()?;
    anyhow::ensure!(
        !a.tta || train_cfg.augment != crate::data::augment::Augment::None,
        "--tta: test-time augmentation averages the training views, and --augment none has one"
    );
    let arch = a.recipe.arch(train_cfg.head)?;
    anyhow::ensure!(
        (0.0..0.5).contains(&a.max_escape),
        "--max-escape {}: a fraction in [0, 0.5)",
        a.max_escape
    );
    let cv = CvConfig {
        folds: a.folds,
        seed: a.fold_seed,
        methods,
        train: train_cfg,
        svm_c: a.svm_c,
        train_per_class: per_class,
        good: None,
        tta: a.tta,
    };
    Ok((cv, arch))
}

/// `--good-class` as the networks' escape calibration.
fn good_config(
    a: &EvaluateArgs,
    data: &crate::data::Dataset,
    source: &str,
) -> anyhow::Result<Option<crate::eval::cv::GoodConfig>> {
    let Some(name) = &a.good_class else {
        return Ok(None);
    };
    Ok(Some(crate::eval::cv::GoodConfig {
        class: crate::cli::good_class(name, data, source)?,
        max_escape: a.max_escape,
        calibration_fraction: 0.2,
    }))
}

/// One line per report row on stdout.
fn print_summary(summary: &[crate::eval::cv::RowSummary]) {
    for s in summary {
        println!(
            "{:<20} accuracy {:.2} +- {:.2}%  balanced {:.2} +- {:.2}%  macro-F1 {:.3}",
            s.row,
            s.accuracy.0 * 100.0,
            s.accuracy.1 * 100.0,
            s.balanced_accuracy.0 * 100.0,
            s.balanced_accuracy.1 * 100.0,
            s.macro_f1.0
        );
    }
}

/// `--out` (or a fresh default) and whether it already holds something.
fn out_dir(a: &EvaluateArgs) -> anyhow::Result<(PathBuf, bool)> {
    let out = a.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("runs/evaluate-{t}"))
    });
    let non_empty = out.exists()
        && std::fs::read_dir(&out)
            .with_context(|| format!("--out {}", out.display()))?
            .next()
            .is_some();
    anyhow::ensure!(
        a.resume || !non_empty,
        "--out {}: directory exists and is not empty; add --resume to continue it, or choose another",
        out.display()
    );
    Ok((out, non_empty))
}

/// A file-name-safe form of a row name.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The folds a `--resume` run has already finished in `out` (checked against this run's
/// settings and split), or none for a fresh run; then records this run's identity.
fn resume_folds(
    a: &EvaluateArgs,
    out: &Path,
    non_empty: bool,
    identity: &RunIdentity,
    data: &crate::data::Dataset,
    cv: &CvConfig,
) -> anyhow::Result<Vec<FoldResult>> {
    let folds_dir = out.join("folds");
    let mut done: Vec<FoldResult> = Vec::new();
    let config_path = out.join("config.json");
    if a.resume && config_path.exists() {
        let saved: RunIdentity = serde_json::from_slice(
            &std::fs::read(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?,
        )
        .with_context(|| format!("{}: not a glassnet evaluation", config_path.display()))?;
        anyhow::ensure!(
            saved == *identity,
            "--resume: {} was started with other settings or data; rerun with the same flags, or choose another --out",
            out.display()
        );
        for f in 0..a.folds {
            let p = folds_dir.join(format!("fold-{:02}.json", f + 1));
            if p.exists() {
                let r: FoldResult = serde_json::from_slice(&std::fs::read(&p)?)
                    .with_context(|| format!("{}: unreadable fold result", p.display()))?;
                check_fold(&r, f, data, cv).map_err(|e| {
                    anyhow::anyhow!(
                        "--resume: {}: {e}; remove the file to compute the fold again",
                        p.display()
                    )
                })?;
                done.push(r);
            }
        }
        eprintln!(
            "resuming {}: {} of {} folds already done",
            out.display(),
            done.len(),
            a.folds
        );
    } else {
        anyhow::ensure!(
            !non_empty,
            "--resume: {} holds no config.json of an evaluation",
            out.display()
        );
    }
    std::fs::create_dir_all(&folds_dir)
        .with_context(|| format!("creating {}", folds_dir.display()))?;
    write_atomic(&config_path, &serde_json::to_vec_pretty(identity)?)?;
    Ok(done)
}

/// report.md, report.json, report.html and the PNGs of a finished k-fold run.
#[allow(clippy::too_many_arguments)]
fn write_reports(
    a: &EvaluateArgs,
    out: &Path,
    source: &str,
    pre: &crate::data::preprocess::Preprocess,
    arch: &crate::model::Arch,
    data: &crate::data::Dataset,
    cv: &CvConfig,
    folds: &[FoldResult],
    summary: &[crate::eval::cv::RowSummary],
) -> anyhow::Result<()> {
    // Notes: collapsed folds are reported, never hidden.
    let mut notes = Vec::new();
    for f in folds {
        for n in &f.networks {
            if let Some(c) = &n.collapse {
                notes.push(format!("Fold {} ({}): {c}", f.fold + 1, n.method.name()));
            }
        }
    }
    let mut pngs = score_plots(a.folds, out, source, data, summary)?;
    pngs.extend(network_plots(out, data, cv, folds)?);
    let mut md = report_markdown(
        &format!("{source}; preprocessing: {}", pre.describe()),
        &data.classes,
        cv,
        summary,
        &notes,
    );
    let good_md = crate::eval::cv::good_markdown(&data.classes, cv, folds);
    if let Some(g) = &good_md {
        md += g;
    }
    md += "\n## Pictures\n\n";
    for (file, what) in &pngs {
        md += &format!("- [{file}]({file}): {what}\n");
    }
    let mut json = serde_json::json!({
        "data": source,
        "classes": data.classes,
        "config": cv,
        "arch": arch,
        "preprocess": pre,
        "commit": option_env!("GLASSNET_COMMIT").unwrap_or("unknown"),
        "summary": summary,
        "notes": notes,
        "per_fold": folds.iter().map(|f| serde_json::json!({
            "fold": f.fold,
            "train_counts": f.train_counts,
            "rows": f.rows,
            "networks": f.networks.iter().map(|n| serde_json::json!({
                "method": n.method,
                "history": n.history,
                "collapse": n.collapse,
                "good": n.good,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    // The page lists the mistakes of the first network's 1-NN, as report.json does.
    let names = crate::html::image_names(data);
    let method = folds
        .first()
        .and_then(|f| f.networks.first())
        .map(|n| n.method);
    let listed = method.map_or_else(Vec::new, |m| report::listed_mistakes(folds, m, &names));
    if let Some(m) = method {
        json["mistakes"] = mistakes_json(m, &listed, &names, &data.classes);
    }
    let html = report::kfold_html(
        out,
        source,
        data,
        &names,
        summary,
        folds,
        method.unwrap_or(Method::Triplet),
        &listed,
        &notes,
        good_md.as_deref(),
    )?;
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_atomic(
        &out.join("report.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    write_atomic(&out.join("report.html"), html.as_bytes())?;
    println!(
        "report written to {0}/report.md and {0}/report.html",
        out.display()
    );
    Ok(())
}

/// report.json's `mistakes`: every listed mistake with its neighbours, by name and class.
fn mistakes_json(
    method: Method,
    listed: &[crate::html::PageMistake],
    names: &[String],
    classes: &[String],
) -> serde_json::Value {
    serde_json::json!({
        "row": method.rows()[0],
        "images": listed.iter().map(|m| serde_json::json!({
            "fold": m.fold,
            "image": names[m.image],
            "actual": classes[m.actual],
            "predicted": classes[m.predicted],
            "neighbours": m.neighbours.iter().map(|n| serde_json::json!({
                "image": n.name, "class": classes[n.class], "distance": n.distance,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// accuracy.png and a confusion heat map per row; returns (file, what it shows) for each.
fn score_plots(
    k: usize,
    out: &Path,
    source: &str,
    data: &crate::data::Dataset,
    summary: &[crate::eval::cv::RowSummary],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut pngs = vec![(
        "accuracy.png".to_string(),
        "accuracy and balanced accuracy per method".to_string(),
    )];
    let bars: Vec<plot::ScoreBar> = summary
        .iter()
        .map(|s| plot::ScoreBar {
            name: s.row.clone(),
            accuracy: s.accuracy,
            balanced: s.balanced_accuracy,
        })
        .collect();
    plot::accuracy_bars(
        &out.join("accuracy.png"),
        &format!("{k}-fold cross-validation: {source}"),
        &bars,
    )?;
    for (i, s) in summary.iter().enumerate() {
        let name = if i == 0 {
            "confusion.png".to_string()
        } else {
            format!("confusion-{}.png", slug(&s.row))
        };
        plot::confusion_heatmap(
            &out.join(&name),
            &format!("{} (summed over {k} folds)", s.row),
            &data.classes,
            &s.confusion,
        )?;
        pngs.push((name, format!("confusion matrix, {}", s.row)));
    }
    Ok(pngs)
}

/// Per network: t-SNE of fold 1's test embeddings and the training loss of every fold.
fn network_plots(
    out: &Path,
    data: &crate::data::Dataset,
    cv: &CvConfig,
    folds: &[FoldResult],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut pngs = Vec::new();
    if let Some(first) = folds.first() {
        for n in &first.networks {
            let name = format!("tsne-{}.png", n.method.name());
            if let Some(xy) = tsne_2d(&n.test_embeddings, n.embed_dim, cv.seed) {
                plot::embedding_scatter(
                    &out.join(&name),
                    &format!(
                        "t-SNE of fold 1's {} test embeddings ({})",
                        first.test_labels.len(),
                        n.method.name()
                    ),
                    &data.classes,
                    &xy,
                    &first.test_labels,
                    &n.predictions,
                )?;
                pngs.push((
                    name,
                    format!("t-SNE of fold 1's test embeddings, {}", n.method.name()),
                ));
            }
        }
    }
    for m in cv
        .methods
        .iter()
        .filter(|m| matches!(m, Method::Triplet | Method::Siamese | Method::Paper))
    {
        let curves: Vec<Vec<f64>> = folds
            .iter()
            .filter_map(|f| f.networks.iter().find(|n| n.method == *m))
            .map(|n| n.history.iter().map(|r| r.loss_all).collect())
            .collect();
        let name = format!("loss-{}.png", m.name());
        let what = match m {
            Method::Siamese => "mean binary cross-entropy over pairs",
            _ => "mean triplet loss over valid triplets",
        };
        plot::fold_curves(
            &out.join(&name),
            &format!("{} training loss per fold", m.name()),
            what,
            &curves,
        )?;
        pngs.push((name, format!("training loss per fold, {}", m.name())));
    }
    Ok(pngs)
}
