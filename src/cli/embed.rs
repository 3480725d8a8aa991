//! `glassnet embed`: embeddings and labels of a dataset, as CSV or .npy.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{load_dataset, DataArgs, DeviceArgs};
use crate::checkpoint::load_model;
use crate::device::open_engine;
use crate::fsio::write_atomic_with;

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Model directory written by `glassnet train`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// FILE.csv (path, label, class, e0..) or FILE.npy (float32 [n, d]; labels go to
    /// FILE.labels.npy as uint32 [n]).
    #[arg(long)]
    out: PathBuf,
    /// Also write the preprocessed input tensor, float32 [n, 1, side, side] in [-1, 1], as
    /// .npy: what an exported ONNX model takes, to check another runtime's preprocessing or
    /// outputs against glassnet's.
    #[arg(long)]
    inputs: Option<PathBuf>,
    /// Overwrite output files that exist.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

fn write_npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    path: &Path,
    data: &[T],
    shape: &[u64],
) -> anyhow::Result<()> {
    write_atomic_with(path, |f| {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(f)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()
    })?;
    Ok(())
}

pub fn run(a: EmbedArgs) -> anyhow::Result<()> {
    let ext = a
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    anyhow::ensure!(
        ext == "csv" || ext == "npy",
        "--out {}: use a .csv or .npy file name",
        a.out.display()
    );
    if let Some(p) = &a.inputs {
        anyhow::ensure!(
            p.extension().and_then(|e| e.to_str()) == Some("npy"),
            "--inputs {}: use a .npy file name",
            p.display()
        );
    }
    // Every file this run would write, checked before any work: nothing is overwritten
    // unless asked.
    let mut outputs = vec![("--out", a.out.clone())];
    if ext == "npy" {
        outputs.push(("--out", a.out.with_extension("labels.npy")));
    }
    if let Some(p) = &a.inputs {
        outputs.push(("--inputs", p.clone()));
    }
    for (flag, p) in &outputs {
        anyhow::ensure!(
            a.force || !p.exists(),
            "{flag}: {} exists; pass --force to overwrite it",
            p.display()
        );
    }
    let model = load_model(&a.model)?;
    let (data, _) = load_dataset(&a.data, &model.meta.preprocess)?;
    anyhow::ensure!(!data.is_empty(), "no images to embed");
    let (mut engine, note) = open_engine(a.device.choice(), &model.meta.arch, &model.params)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let emb = engine.embed(&data.images)?;
    let d = model.meta.arch.embed_dim;
    if ext == "csv" {
        write_atomic_with(&a.out, |f| {
            // csv quotes any field that needs it (a class or path with a comma or quote).
            let mut w = csv::Writer::from_writer(std::io::BufWriter::new(f));
            let mut head = vec!["path".to_string(), "label".into(), "class".into()];
            head.extend((0..d).map(|k| format!("e{k}")));
            w.write_record(&head)?;
            for (i, row) in emb.chunks(d).enumerate() {
                let path = data
                    .paths
                    .get(i)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| format!("builtin:{i}"));
                let mut rec = vec![
                    path,
                    data.labels[i].to_string(),
                    data.classes[data.labels[i] as usize].clone(),
                ];
                rec.extend(row.iter().map(|v| format!("{v:.7}")));
                w.write_record(&rec)?;
            }
            w.flush()
        })?;
    } else {
        write_npy(&a.out, &emb, &[data.len() as u64, d as u64])?;
        let lp = a.out.with_extension("labels.npy");
        write_npy(&lp, &data.labels, &[data.len() as u64])?;
        println!(
            "labels written to {} (classes: {})",
            lp.display(),
            data.classes.join(", ")
        );
    }
    if let Some(p) = &a.inputs {
        let side = data.side as u64;
        write_npy(p, &data.images, &[data.len() as u64, 1, side, side])?;
        println!(
            "input tensor [{}, 1, {side}, {side}] written to {}",
            data.len(),
            p.display()
        );
    }
    println!(
        "{} embeddings of size {d} written to {}",
        data.len(),
        a.out.display()
    );
    Ok(())
}
