//! `glassnet predict`: class, nearest-neighbour distance and how many of the k nearest agree,
//! per image.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::DeviceArgs;
use crate::checkpoint::load_model;
use crate::classify::{classify, Prediction};
use crate::data::folder::{collect_images, load_images};
use crate::device::open_engine;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Model directory written by `glassnet train`.
    #[arg(long)]
    model: PathBuf,
    /// Image files or folders (searched recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Neighbours consulted: how many of them agree with the class is printed beside it.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Class by majority of the k nearest (ties to the nearer) instead of the nearest image's
    /// class. The nearest is the default: it is the rule train validates and picks the best
    /// epoch by, and a vote lets a large good class outvote a rare defect's few examples.
    #[arg(long)]
    vote: bool,
    /// `on`: an image farther from its nearest known image than that class's calibrated
    /// threshold (metadata.json `rejection`) is `unknown`; `off`: always the nearest class.
    #[arg(long, value_enum, default_value_t = super::Reject::On)]
    reject: super::Reject,
    /// One JSON record per image.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header row.
    #[arg(long)]
    csv: bool,
    /// Skip unreadable images (and count them) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Serialize)]
struct Record {
    path: String,
    #[serde(flatten)]
    p: Prediction,
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.k >= 1, "--k {}: at least 1", a.k);
    let model = load_model(&a.model)?;
    let mut files = Vec::new();
    for p in &a.paths {
        files.extend(collect_images(p)?);
    }
    anyhow::ensure!(
        !files.is_empty(),
        "no images (png, jpg, bmp, tiff) found in the given paths"
    );
    let (images, kept, skipped) = load_images(&files, &model.meta.preprocess, a.skip_bad)?;
    let reject = a.reject == super::Reject::On;
    if reject && model.meta.rejection.is_none() {
        eprintln!("{}", super::NO_REJECTION);
    }
    let (mut engine, note) = open_engine(a.device.choice(), &model.meta.arch, &model.params)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let emb = engine.embed(&images.concat())?;
    let records: Vec<Record> = kept
        .iter()
        .zip(classify(&model, &emb, a.k, a.vote, reject))
        .map(|(&i, p)| Record {
            path: files[i].display().to_string(),
            p,
        })
        .collect();
    if a.json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    } else if a.csv {
        // csv quotes any field that needs it (a class or path with a comma, quote or newline).
        let mut w = csv::Writer::from_writer(std::io::stdout().lock());
        w.write_record([
            "path",
            "class",
            "unknown",
            "distance",
            "threshold",
            "nearest_class",
            "votes",
            "k",
            "good_margin",
        ])?;
        for r in &records {
            w.write_record([
                r.path.as_str(),
                &r.p.class,
                &r.p.unknown.to_string(),
                &format!("{:.6}", r.p.distance),
                &r.p.threshold.map_or(String::new(), |t| format!("{t:.6}")),
                &r.p.nearest_class,
                &r.p.votes.to_string(),
                &r.p.k.to_string(),
                &r.p.good_margin.map_or(String::new(), |m| format!("{m:.6}")),
            ])?;
        }
        w.flush()?;
    } else {
        let w = records
            .iter()
            .map(|r| r.path.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let cw = model
            .meta
            .classes
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(5)
            .max(crate::classify::UNKNOWN.len());
        println!(
            "{:<w$}  {:<cw$}  {:>10}  {:>9}  {:>5}  nearest",
            "path", "class", "distance", "threshold", "vote"
        );
        for r in &records {
            println!(
                "{:<w$}  {:<cw$}  {:>10.4}  {:>9}  {:>5}  {}",
                r.path,
                r.p.class,
                r.p.distance,
                r.p.threshold.map_or("-".into(), |t| format!("{t:.4}")),
                format!("{}/{}", r.p.votes, r.p.k),
                r.p.nearest_class
            );
        }
        let unknown = records.iter().filter(|r| r.p.unknown).count();
        if unknown > 0 {
            eprintln!(
                "{unknown} of {} image(s) unknown: farther from every known class than its threshold (nearest class shown; --reject off to force a class)",
                records.len()
            );
        }
    }
    if !skipped.is_empty() {
        eprintln!("skipped {} unreadable image(s)", skipped.len());
    }
    Ok(())
}
