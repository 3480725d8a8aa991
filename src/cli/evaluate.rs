//! `glassnet evaluate`: stratified k-fold cross-validation with a report, plots and resume.
//!
//! Layout of `--out`: config.json (what is evaluated, checked on --resume), folds/fold-NN.json
//! (each finished fold, written atomically), and at the end report.md, report.json and PNGs.

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
use crate::eval::openset::{
    check_held_out, leave_one_class_out, HeldOut, OpenSetConfig, OpenSetObserver,
};
use crate::eval::tsne::tsne_2d;
use crate::fsio::write_atomic;
use crate::metric::scores::Scores;
use crate::plot;
use crate::train::Progress;

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
        return run_open_set(a);
    }
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
    let arch = a.recipe.arch(train_cfg.head)?;
    anyhow::ensure!(
        (0.0..0.5).contains(&a.max_escape),
        "--max-escape {}: a fraction in [0, 0.5)",
        a.max_escape
    );
    let mut cv = CvConfig {
        folds: a.folds,
        seed: a.fold_seed,
        methods,
        train: train_cfg,
        svm_c: a.svm_c,
        good: None,
    };
    let (out, non_empty) = out_dir(&a)?;
    let pre = a.pre.build(arch.side)?;
    let needs_whole = [Method::TripletWholeFrame, Method::TripletViews]
        .iter()
        .any(|m| cv.methods.contains(m));
    let (data, whole_frame, source) = load_dataset_and_frames(&a.data, &pre, needs_whole)?;
    data.check_trainable(&source)?;
    if let Some(name) = &a.good_class {
        let class = data
            .classes
            .iter()
            .position(|c| c == name)
            .with_context(|| {
                format!(
                    "--good-class {name:?}: no such class in {source} (classes: {})",
                    data.classes.join(", ")
                )
            })?;
        cv.good = Some(crate::eval::cv::GoodConfig {
            class: class as u32,
            max_escape: a.max_escape,
            calibration_fraction: 0.2,
        });
    }
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
    let mut done: Vec<FoldResult> = Vec::new();
    let config_path = out.join("config.json");
    if a.resume && config_path.exists() {
        let saved: RunIdentity = serde_json::from_slice(
            &std::fs::read(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?,
        )
        .with_context(|| format!("{}: not a glassnet evaluation", config_path.display()))?;
        anyhow::ensure!(
            saved == identity,
            "--resume: {} was started with other settings or data; rerun with the same flags, or choose another --out",
            out.display()
        );
        for f in 0..a.folds {
            let p = folds_dir.join(format!("fold-{:02}.json", f + 1));
            if p.exists() {
                let r: FoldResult = serde_json::from_slice(&std::fs::read(&p)?)
                    .with_context(|| format!("{}: unreadable fold result", p.display()))?;
                check_fold(&r, f, &data, &cv).map_err(|e| {
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
    write_atomic(&config_path, &serde_json::to_vec_pretty(&identity)?)?;

    eprintln!("data: {source}: {}", data.summary());
    eprintln!("preprocessing: {}", pre.describe());
    eprintln!(
        "{}-fold stratified cross-validation of {}; networks: recipe {:?}, {} epochs per fold",
        a.folds,
        cv.methods
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", "),
        cv.train.recipe,
        cv.train.epochs
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
    for s in &summary {
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

    // Notes: collapsed folds are reported, never hidden.
    let mut notes = Vec::new();
    for f in &folds {
        for n in &f.networks {
            if let Some(c) = &n.collapse {
                notes.push(format!("Fold {} ({}): {c}", f.fold + 1, n.method.name()));
            }
        }
    }
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
        &format!("{}-fold cross-validation: {}", a.folds, source),
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
            &format!("{} (summed over {} folds)", s.row, a.folds),
            &data.classes,
            &s.confusion,
        )?;
        pngs.push((name, format!("confusion matrix, {}", s.row)));
    }
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
        .filter(|m| matches!(m, Method::Triplet | Method::Siamese))
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
    let mut md = report_markdown(
        &format!("{source}; preprocessing: {}", pre.describe()),
        &data.classes,
        &cv,
        &summary,
        &notes,
    );
    let good_md = crate::eval::cv::good_markdown(&data.classes, &cv, &folds);
    if let Some(g) = &good_md {
        md += g;
    }
    md += "\n## Pictures\n\n";
    for (file, what) in &pngs {
        md += &format!("- [{file}]({file}): {what}\n");
    }
    let json = serde_json::json!({
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
            "rows": f.rows,
            "networks": f.networks.iter().map(|n| serde_json::json!({
                "method": n.method,
                "history": n.history,
                "collapse": n.collapse,
                "good": n.good,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let mut json = json;
    let names = crate::html::image_names(&data);
    let html = match folds
        .first()
        .and_then(|f| f.networks.first())
        .map(|n| n.method)
    {
        Some(method) => {
            let listed = listed_mistakes(&folds, method, &names);
            json["mistakes"] = serde_json::json!({
                "row": method.rows()[0],
                "images": listed.iter().map(|m| serde_json::json!({
                    "fold": m.fold,
                    "image": names[m.image],
                    "actual": data.classes[m.actual],
                    "predicted": data.classes[m.predicted],
                    "neighbours": m.neighbours.iter().map(|n| serde_json::json!({
                        "image": n.name, "class": data.classes[n.class], "distance": n.distance,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            });
            kfold_html(
                &out,
                &source,
                &data,
                &names,
                &summary,
                &folds,
                method,
                &listed,
                &notes,
                good_md.as_deref(),
            )?
        }
        None => kfold_html(
            &out,
            &source,
            &data,
            &names,
            &summary,
            &folds,
            Method::Triplet,
            &[],
            &notes,
            good_md.as_deref(),
        )?,
    };
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

/// The mistakes of `method`'s 1-NN over all folds, fold by fold.
fn listed_mistakes(
    folds: &[FoldResult],
    method: Method,
    names: &[String],
) -> Vec<crate::html::PageMistake> {
    folds
        .iter()
        .flat_map(|f| {
            f.networks
                .iter()
                .filter(move |n| n.method == method)
                .flat_map(move |n| {
                    n.mistakes.iter().map(move |m| crate::html::PageMistake {
                        image: m.image,
                        fold: Some(f.fold),
                        actual: m.actual as usize,
                        predicted: m.predicted as usize,
                        neighbours: m
                            .neighbours
                            .iter()
                            .map(|x| crate::html::PageNear {
                                image: Some(x.image),
                                name: names[x.image].clone(),
                                class: x.label as usize,
                                distance: x.distance,
                            })
                            .collect(),
                    })
                })
        })
        .collect()
}

/// report.html of a k-fold run: the scores, then for the first network's 1-NN the summed
/// confusion matrix linked to every mistake beside its nearest gallery images, and the plots.
#[allow(clippy::too_many_arguments)]
fn kfold_html(
    out: &Path,
    source: &str,
    data: &crate::data::Dataset,
    names: &[String],
    summary: &[crate::eval::cv::RowSummary],
    folds: &[FoldResult],
    method: Method,
    mistakes: &[crate::html::PageMistake],
    notes: &[String],
    good_md: Option<&str>,
) -> anyhow::Result<String> {
    use crate::html::{Page, Thumbnails};
    let mut page = Page::new(&format!("glassnet evaluate: {source}"));
    page.para(&format!(
        "{} images, {} classes, {}-fold stratified cross-validation; commit {}. Mean +- standard deviation over folds.",
        data.len(),
        data.classes.len(),
        folds.len(),
        option_env!("GLASSNET_COMMIT").unwrap_or("unknown")
    ));
    let pm = |(m, s): (f64, f64)| format!("{:.2} +- {:.2}%", m * 100.0, s * 100.0);
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|s| {
            vec![
                s.row.clone(),
                pm(s.accuracy),
                pm(s.balanced_accuracy),
                format!("{:.3} +- {:.3}", s.macro_f1.0, s.macro_f1.1),
            ]
        })
        .collect();
    page.table(
        &["method", "accuracy", "balanced accuracy", "macro-F1"].map(String::from),
        &rows,
    );
    for n in notes {
        page.para(n);
    }
    if let Some(g) = good_md {
        page.markdown(g);
    }
    let row = method.rows()[0];
    if let Some(s) = summary.iter().find(|s| s.row == row) {
        page.heading(
            &format!("{row}: confusion matrix summed over folds"),
            "confusion",
        );
        page.para("Rows actual, columns predicted. A red cell links to its images below.");
        page.confusion(&data.classes, &s.confusion);
        page.heading(
            &format!("{row}: every misclassified test image"),
            "misclassified",
        );
        page.para(&format!(
            "Each test image (red frame) beside its {} nearest training images in the embedding space, nearest first, with their class and squared distance (green frame: the image's own class). Thumbnails are the preprocessed network inputs.",
            crate::eval::cv::MISTAKE_NEIGHBOURS
        ));
        // Folds saved by an older glassnet hold predictions but no neighbours.
        for f in folds {
            if let Some(n) = f.networks.iter().find(|n| n.method == method) {
                let wrong = (0..n.predictions.len())
                    .filter(|&i| n.predictions[i] != f.test_labels[i])
                    .count();
                if wrong != n.mistakes.len() {
                    page.para(&format!(
                        "Fold {} was saved before mistakes were recorded: its {wrong} mistakes are counted above but not shown.",
                        f.fold + 1
                    ));
                }
            }
        }
        let mut thumbs = Thumbnails::new(data);
        page.mistakes(&data.classes, names, mistakes, &mut thumbs)?;
    } else {
        page.para("No network was evaluated: mistakes are listed for the networks' 1-NN only.");
    }
    page.heading("Pictures", "pictures");
    let tsne = out.join(format!("tsne-{}.png", method.name()));
    if tsne.exists() {
        page.picture(
            &format!("t-SNE of fold 1's test embeddings ({})", method.name()),
            &tsne,
        )?;
    }
    page.picture(
        "accuracy and balanced accuracy per method",
        &out.join("accuracy.png"),
    )?;
    Ok(page.finish())
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
fn run_open_set(a: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.methods == Method::DEFAULT.to_vec(),
        "--methods: --open-set evaluates the triplet network only; leave --methods out"
    );
    let train_cfg = a.recipe.config()?;
    let arch = a.recipe.arch(train_cfg.head)?;
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
    let pre = a.pre.build(arch.side)?;
    let (data, _, source) = load_dataset_and_frames(&a.data, &pre, false)?;
    data.check_trainable(&source)?;
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
            saved == identity,
            "--resume: {} was started with other settings or data; rerun with the same flags, or choose another --out",
            out.display()
        );
        for u in 0..data.classes.len() {
            let p = dir.join(format!("held-out-{:02}.json", u + 1));
            if p.exists() {
                let r: HeldOut = serde_json::from_slice(&std::fs::read(&p)?)
                    .with_context(|| format!("{}: unreadable result", p.display()))?;
                check_held_out(&r, u, &data, &cfg).map_err(|e| {
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
        &cfg,
        &rows,
    );
    md += "
## Pictures

- [roc.png](roc.png): ROC per held-out class
";
    print!("{md}");
    let json = serde_json::json!({
        "data": source,
        "classes": data.classes,
        "open_set": cfg,
        "arch": arch,
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
