//! `glassnet evaluate`: stratified k-fold cross-validation with a report.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{load_dataset, DataArgs, DeviceArgs};
use crate::checkpoint::Staging;
use crate::data::preprocess::Preprocess;
use crate::eval::cv::{cross_validate, report_markdown, summarise, METHODS};
use crate::eval::metrics::Scores;
use crate::model::Arch;
use crate::train::{Recipe, TrainConfig};

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// Number of stratified folds.
    #[arg(long, default_value_t = 10)]
    folds: usize,
    /// Seed of the fold assignment and of training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory for report.md and report.json (default: runs/evaluate-<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Training recipe per fold.
    #[arg(long, value_enum, default_value_t = Recipe::Robust)]
    recipe: Recipe,
    /// Epochs per fold (default: the recipe's).
    #[arg(long)]
    epochs: Option<usize>,
}

pub fn run(a: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.folds >= 2, "--folds {}: at least 2", a.folds);
    let mut cfg = TrainConfig::preset(a.recipe);
    cfg.seed = a.seed;
    if let Some(e) = a.epochs {
        anyhow::ensure!(e >= 1, "--epochs {e}: at least 1");
        cfg.epochs = e;
    }
    let arch = Arch::reference(cfg.head);
    let out = a.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("runs/evaluate-{t}"))
    });
    let stage = Staging::new(&out)?;
    let (data, source) = load_dataset(&a.data, &Preprocess { side: arch.side })?;
    data.check_trainable(&source)?;
    let min_class = data.class_counts().into_iter().min().unwrap_or(0);
    anyhow::ensure!(
        min_class >= a.folds,
        "--folds {}: the smallest class has {min_class} images; every fold needs one of each",
        a.folds
    );
    eprintln!("data: {source}: {}", data.summary());
    eprintln!(
        "{}-fold stratified cross-validation, recipe {:?}, {} epochs per fold",
        a.folds, cfg.recipe, cfg.epochs
    );
    let folds = cross_validate(
        &data,
        a.folds,
        a.seed,
        &arch,
        &cfg,
        a.device.choice(),
        &mut (),
        |f| {
            let s = Scores::of(&f.confusions[0]);
            let px = Scores::of(&f.confusions[3]);
            eprintln!(
            "fold {:>2}: {} test images, triplet 1-NN {:.2}% (balanced {:.2}%), pixels 1-NN {:.2}%, trained in {:.0}s",
            f.fold + 1,
            f.test_images,
            s.accuracy * 100.0,
            s.balanced_accuracy * 100.0,
            px.accuracy * 100.0,
            f.train_seconds
        );
        },
    );
    let folds = folds?;
    let summary = summarise(&folds, data.classes.len());
    for s in &summary {
        println!(
            "{:<18} accuracy {:.2} +- {:.2}%  balanced {:.2} +- {:.2}%  macro-F1 {:.3}",
            s.method,
            s.accuracy.0 * 100.0,
            s.accuracy.1 * 100.0,
            s.balanced_accuracy.0 * 100.0,
            s.balanced_accuracy.1 * 100.0,
            s.macro_f1.0
        );
    }
    let md = report_markdown(&source, &data.classes, a.folds, &summary);
    let json = serde_json::json!({
        "data": source,
        "classes": data.classes,
        "folds": a.folds,
        "seed": a.seed,
        "training": cfg,
        "methods": METHODS,
        "summary": summary,
        "per_fold": folds,
    });
    for (name, body) in [
        ("report.md", md),
        ("report.json", serde_json::to_string_pretty(&json)?),
    ] {
        let p = stage.path(name);
        std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))?;
    }
    let dir = stage.commit()?;
    println!("report written to {}/report.md", dir.display());
    Ok(())
}
