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
    let (mut engine, note) = open_engine(a.device.choice(), &model.meta.arch, &model.params)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let emb = engine.embed(&images.concat())?;
    let records: Vec<Record> = kept
        .iter()
        .zip(classify(&model, &emb, a.k, a.vote))
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
        w.write_record(["path", "class", "distance", "nearest_class", "votes", "k"])?;
        for r in &records {
            w.write_record([
                r.path.as_str(),
                &r.p.class,
                &format!("{:.6}", r.p.distance),
                &r.p.nearest_class,
                &r.p.votes.to_string(),
                &r.p.k.to_string(),
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
            .max(5);
        println!(
            "{:<w$}  {:<cw$}  {:>10}  {:>5}  nearest",
            "path", "class", "distance", "vote"
        );
        for r in &records {
            println!(
                "{:<w$}  {:<cw$}  {:>10.4}  {:>5}  {}",
                r.path,
                r.p.class,
                r.p.distance,
                format!("{}/{}", r.p.votes, r.p.k),
                r.p.nearest_class
            );
        }
    }
    if !skipped.is_empty() {
        eprintln!("skipped {} unreadable image(s)", skipped.len());
    }
    Ok(())
}
