//! `glassnet export`: the model's embedder and gallery distances as an ONNX file, with a
//! JSON sidecar, checked by an independent runtime (tract) before it is handed over.

use std::path::PathBuf;

use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::load_model;
use crate::engine::cpu::{CpuEngine, CpuKind};
use crate::engine::Engine;
use crate::export::{max_abs_diff, onnx_bytes, run_tract, sidecar};
use crate::fsio::write_atomic;
use crate::metric::knn::knn;

/// Largest embedding difference the check accepts: far below any distance that decides a
/// class (the two runtimes sum the convolutions in different orders).
pub const CHECK_TOLERANCE: f32 = 1e-4;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Model directory written by `glassnet train`.
    #[arg(long)]
    model: PathBuf,
    /// The ONNX file to write; the sidecar (classes, gallery labels, preprocessing) goes
    /// beside it as the same name with .json.
    #[arg(long)]
    onnx: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Random input images the written file is checked on, through tract and glassnet's
    /// CPU path (0: no check).
    #[arg(long, default_value_t = 8)]
    check_images: usize,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.onnx.extension().and_then(|e| e.to_str()) == Some("onnx"),
        "--onnx {}: use a file name ending in .onnx",
        a.onnx.display()
    );
    anyhow::ensure!(
        a.check_images <= 256,
        "--check-images {}: at most 256",
        a.check_images
    );
    let json_path = a.onnx.with_extension("json");
    for p in [&a.onnx, &json_path] {
        anyhow::ensure!(
            a.force || !p.exists(),
            "{} exists; pass --force to overwrite it",
            p.display()
        );
    }
    if let Some(dir) = a.onnx.parent().filter(|p| !p.as_os_str().is_empty()) {
        anyhow::ensure!(
            dir.is_dir(),
            "--onnx {}: folder {} does not exist",
            a.onnx.display(),
            dir.display()
        );
    }
    let model = load_model(&a.model)?;
    let bytes = onnx_bytes(&model)?;
    if a.check_images > 0 {
        let (emb, dist, agree) = check(&model, &bytes, a.check_images)?;
        println!(
            "checked with tract on {} random images: embeddings within {emb:.2e}, gallery distances within {dist:.2e}, nearest class agrees on {agree}/{}",
            a.check_images, a.check_images
        );
        anyhow::ensure!(
            emb <= CHECK_TOLERANCE && agree == a.check_images,
            "the exported file does not compute what the model does (embeddings differ by {emb:.2e}, tolerance {CHECK_TOLERANCE:.0e}); nothing written"
        );
    }
    let json = serde_json::to_string_pretty(&sidecar(&model))?;
    write_atomic(&a.onnx, &bytes)?;
    write_atomic(&json_path, json.as_bytes())?;
    println!(
        "wrote {} ({} KiB, opset {}, input [N, 1, {s}, {s}], outputs embedding and distances) and {}",
        a.onnx.display(),
        bytes.len().div_ceil(1024),
        crate::export::OPSET,
        json_path.display(),
        s = model.meta.arch.side,
    );
    Ok(())
}

/// Runs `n` seeded random images in [-1, 1] through tract and the CPU engine: max abs
/// difference of embeddings, of gallery distances, and how many nearest classes agree.
pub fn check(
    model: &crate::checkpoint::Model,
    onnx: &[u8],
    n: usize,
) -> anyhow::Result<(f32, f32, usize)> {
    let arch = &model.meta.arch;
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let images: Vec<f32> = (0..n * arch.image_len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let ours = CpuEngine::new(arch, &model.params, CpuKind::Fast)?.embed(&images)?;
    let theirs = run_tract(onnx, arch, &images)?;
    let d = arch.embed_dim;
    let nn = knn(&model.gallery, &model.gallery_labels, &ours, d, 1, false);
    let g = model.gallery_labels.len();
    let mut ours_dist = vec![0.0; n * g];
    crate::cpu::reference::pairwise_distance(&mut ours_dist, &ours, &model.gallery, n, g, d);
    let agree = nn
        .iter()
        .zip(theirs.distances.chunks(g))
        .filter(|(o, row)| {
            let best = row
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| model.gallery_labels[i]);
            best == Some(o.nearest_label)
        })
        .count();
    Ok((
        max_abs_diff(&ours, &theirs.embedding),
        max_abs_diff(&ours_dist, &theirs.distances),
        agree,
    ))
}
