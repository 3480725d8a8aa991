//! `glassnet synth`: the built-in set on disk, with a contact sheet.

use std::path::PathBuf;

use clap::Args;

use crate::data::synth::{write_synth_dataset, SynthConfig, SYNTH_CLASSES};
use crate::fsio::Staging;

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Output directory (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per class: control, dent, fold, mold (comma-separated).
    #[arg(long, value_delimiter = ',')]
    counts: Option<Vec<usize>>,
    /// Image side in pixels (close-ups; line-camera frames draw their own).
    #[arg(long, default_value_t = 112)]
    size: usize,
    /// Line-camera frames (224-640 px, the defect a small part of the frame, the size drawn
    /// per image) instead of close-ups: a folder dataset of varying image sizes for --crop.
    #[arg(long, conflicts_with = "size")]
    line_camera: bool,
}

/// Largest synthetic image (16 megapixels, well inside what the decoders read back).
const MAX_SYNTH_SIDE: usize = 4096;

pub fn run(a: SynthArgs) -> anyhow::Result<()> {
    let mut cfg = SynthConfig {
        seed: a.seed,
        side: a.size,
        line_camera: a.line_camera,
        ..Default::default()
    };
    anyhow::ensure!(
        (16..=MAX_SYNTH_SIDE).contains(&a.size),
        "--size {}: between 16 and {MAX_SYNTH_SIDE} pixels",
        a.size
    );
    if let Some(c) = &a.counts {
        anyhow::ensure!(
            c.len() == 4,
            "--counts: give 4 comma-separated numbers (control, dent, fold, mold), not {}",
            c.len()
        );
        cfg.counts.copy_from_slice(c);
    }
    let stage = Staging::new(&a.out)?;
    write_synth_dataset(&cfg, &stage.tmp)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", a.out.display()))?;
    let dir = stage.commit()?;
    let parts: Vec<String> = SYNTH_CLASSES
        .iter()
        .zip(cfg.counts)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    println!(
        "wrote {} ({}) and {}/contact_sheet.png",
        dir.display(),
        parts.join(", "),
        dir.display()
    );
    Ok(())
}
