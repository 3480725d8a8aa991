//! ONNX export: every architecture the model description allows is written, run by an
//! independent runtime (tract) and compared with glassnet's CPU path on real images of the
//! built-in set; the command's files and errors.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use glassnet::checkpoint::{Metadata, Model, FORMAT, FORMAT_VERSION};
use glassnet::data::builtin::builtin;
use glassnet::data::colour::Colour;
use glassnet::data::preprocess::Preprocess;
use glassnet::data::synth::SynthConfig;
use glassnet::engine::cpu::{CpuEngine, CpuKind};
use glassnet::engine::Engine;
use glassnet::export::{max_abs_diff, onnx_bytes, run_tract};
use glassnet::metric::knn::knn;
use glassnet::model::{init_params, Arch, Head, Norm, Objective, ParamLayout, Pooling};
use glassnet::train::{Recipe, TrainConfig};

/// The architectures a model can have: the default (L2 head), the paper's recipe (sigmoid
/// head), the Siamese objective (its pair head is not part of the embedder), and a small one
/// with odd sides (50 -> 25 -> 12 -> 6: floor pooling) and mixed kernel sizes; and global
/// average + max pooling in place of the flatten.
fn presets() -> Vec<(&'static str, Arch)> {
    vec![
        ("robust", Arch::reference(Head::L2)),
        ("paper", Arch::reference(Head::Sigmoid)),
        (
            "siamese",
            Arch {
                objective: Objective::Siamese,
                ..Arch::reference(Head::L2)
            },
        ),
        (
            "global pooling",
            Arch {
                pooling: Pooling::AvgMax,
                ..Arch::reference(Head::L2)
            },
        ),
        (
            "batch norm",
            Arch {
                pooling: Pooling::AvgMax,
                norm: Norm::Batch,
                ..Arch::reference(Head::L2)
            },
        ),
        (
            "odd",
            Arch {
                side: 50,
                channels: vec![8, 12, 16],
                kernels: vec![3, 5, 3],
                embed_dim: 24,
                head: Head::L2,
                objective: Objective::Triplet,
                pooling: Pooling::Flatten,
                norm: Norm::Batch,
                in_channels: 1,
            },
        ),
        (
            "colour",
            Arch {
                pooling: Pooling::AvgMax,
                norm: Norm::Batch,
                in_channels: 3,
                ..Arch::reference(Head::L2)
            },
        ),
    ]
}

/// 96 built-in images at `arch`'s side: the first 64 (16 per class) embed into the gallery,
/// the last 32 are the queries. A colour architecture gets three planes that differ (the
/// grey level, its negative and its square), so a swapped plane would show.
fn images(arch: &Arch) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let side = arch.side;
    let cfg = SynthConfig {
        seed: 3,
        counts: [24, 24, 24, 24],
        side,
        ..Default::default()
    };
    let data = builtin(&cfg, &Preprocess::resize_only(side));
    let il = arch.image_len();
    let (mut gallery, mut labels, mut queries) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..data.len() {
        let g = data.image(i);
        let img: Vec<f32> = match arch.in_channels {
            3 => g
                .iter()
                .copied()
                .chain(g.iter().map(|v| -v))
                .chain(g.iter().map(|v| v * v))
                .collect(),
            _ => g.to_vec(),
        };
        if i % 24 < 16 {
            gallery.extend_from_slice(&img);
            labels.push(data.labels[i]);
        } else {
            queries.extend_from_slice(&img);
        }
    }
    assert_eq!((labels.len(), queries.len() / il), (64, 32));
    (gallery, labels, queries)
}

fn model(arch: &Arch, params: Vec<f32>, gallery: Vec<f32>, labels: Vec<u32>) -> Model {
    Model {
        meta: Metadata {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            glassnet_version: "test".into(),
            arch: arch.clone(),
            classes: ["control", "dent", "mold", "fold"]
                .map(String::from)
                .to_vec(),
            preprocess: Preprocess {
                colour: if arch.in_channels == 3 {
                    Colour::Rgb
                } else {
                    Colour::Grey
                },
                ..Preprocess::resize_only(arch.side)
            },
            normalisation: "test".into(),
            training: TrainConfig::preset(Recipe::Robust),
            seed: 0,
            device: "cpu".into(),
            data: "built-in".into(),
            best_epoch: 1,
            validation: None,
            rejection: None,
            good: None,
            input: None,
            gallery_edits: Vec::new(),
        },
        params,
        gallery,
        gallery_labels: labels,
    }
}

/// Normalisations as training leaves them, not the identity they start as: gamma, beta and
/// running statistics drawn at random (positive variances), so the export's folding shows.
fn with_trained_norms(arch: &Arch, mut params: Vec<f32>) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let layout = ParamLayout::new(arch);
    let mut g = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    for l in 0..arch.channels.len() {
        if let Some(n) = layout.norm(l) {
            for (t, lo, hi) in [
                (n.gamma, 0.5, 1.5),
                (n.beta, -0.5, 0.5),
                (n.running_mean, -0.3, 0.3),
                (n.running_var, 0.2, 2.0),
            ] {
                for v in &mut params[t.range()] {
                    *v = g.random_range(lo..hi);
                }
            }
        }
    }
    params
}

#[test]
fn every_preset_exports_and_tract_matches_the_cpu_path() {
    for (name, arch) in presets() {
        let params = with_trained_norms(&arch, init_params(&arch, &ParamLayout::new(&arch), 5));
        let mut cpu = CpuEngine::new(&arch, &params, CpuKind::Fast).unwrap();
        let (gallery_images, labels, queries) = images(&arch);
        let gallery = cpu.embed(&gallery_images).unwrap();
        let ours = cpu.embed(&queries).unwrap();
        let m = model(&arch, params.clone(), gallery.clone(), labels.clone());
        let bytes = onnx_bytes(&m).unwrap();
        let theirs = run_tract(&bytes, &arch, &queries).unwrap();
        let diff = max_abs_diff(&ours, &theirs.embedding);
        eprintln!("{name}: max |tract - cpu| over 32 images = {diff:.2e}");
        assert!(diff <= 1e-5, "{name}: embeddings differ by {diff}");
        // Embeddings are not degenerate (else agreement would prove little).
        let spread = max_abs_diff(
            &ours[..arch.embed_dim],
            &ours[arch.embed_dim..2 * arch.embed_dim],
        );
        assert!(spread > 1e-3, "{name}: two images embed alike ({spread})");
        // The same nearest class for every image, from the graph's own distances.
        let nn = knn(&gallery, &labels, &ours, arch.embed_dim, 1, false);
        for (q, row) in theirs.distances.chunks(labels.len()).enumerate() {
            let best = (0..row.len())
                .min_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap();
            assert_eq!(labels[best], nn[q].nearest_label, "{name}: image {q}");
            assert!(
                (row[best] - nn[q].distance).abs() <= 1e-4,
                "{name}: image {q} distance"
            );
        }
        // The comparison can fail: the same file against slightly changed weights.
        let mut other = params.clone();
        let fc = ParamLayout::new(&arch).dense().0.range();
        other[fc.start] += 0.05;
        other[fc.start + 1] -= 0.05;
        let moved = CpuEngine::new(&arch, &other, CpuKind::Fast)
            .unwrap()
            .embed(&queries)
            .unwrap();
        assert!(
            max_abs_diff(&moved, &theirs.embedding) > 1e-5,
            "{name}: a changed weight went unnoticed"
        );
    }
}

#[test]
fn a_model_without_a_gallery_is_refused_with_the_reason() {
    let arch = presets().pop().unwrap().1;
    let params = init_params(&arch, &ParamLayout::new(&arch), 1);
    let err = onnx_bytes(&model(&arch, params, vec![], vec![]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("gallery"), "{err}");
}

// ---- the command ----

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("glassnet-export-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn glassnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glassnet"))
        .args(args)
        .output()
        .unwrap()
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
    assert!(
        t.contains(needle),
        "error does not mention {needle:?}:\n{t}"
    );
    assert!(!t.contains("panicked"), "panic:\n{t}");
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A model folder trained for a few steps on the built-in set at 24 px.
fn trained_model(root: &Path) -> PathBuf {
    let m = root.join("model");
    let o = glassnet(&[
        "train",
        "--out",
        m.to_str().unwrap(),
        "--size",
        "24",
        "--channels",
        "4,8",
        "--embed-dim",
        "8",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--batch",
        "16",
        "--cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    m
}

#[test]
fn export_writes_a_checked_file_and_its_sidecar_and_refuses_bad_requests() {
    let root = tmpdir("cmd");
    let m = trained_model(&root);
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let onnx = out.join("glass.onnx");
    let o = glassnet(&[
        "export",
        "--model",
        m.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("checked with tract on 8 random images"),
        "{}",
        text(&o)
    );
    assert_eq!(files(&out), ["glass.json", "glass.onnx"]);
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("glass.json")).unwrap()).unwrap();
    assert_eq!(
        side["input"]["shape"],
        serde_json::json!(["N", "1", "24", "24"])
    );
    assert_eq!(side["classes"].as_array().unwrap().len(), 4);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(side["preprocess"], meta["preprocess"]);
    let before = std::fs::read(&onnx).unwrap();

    // Existing files are kept unless --force.
    let o = glassnet(&[
        "export",
        "--model",
        m.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
    ]);
    fails_with(&o, "--force");
    assert_eq!(std::fs::read(&onnx).unwrap(), before);
    let o = glassnet(&[
        "export",
        "--model",
        m.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
        "--force",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(&onnx).unwrap(),
        before,
        "export is deterministic"
    );

    // Bad requests: named, nothing written.
    let o = glassnet(&[
        "export",
        "--model",
        m.to_str().unwrap(),
        "--onnx",
        out.join("x.bin").to_str().unwrap(),
    ]);
    fails_with(&o, "--onnx");
    let o = glassnet(&[
        "export",
        "--model",
        root.join("nope").to_str().unwrap(),
        "--onnx",
        out.join("y.onnx").to_str().unwrap(),
    ]);
    fails_with(&o, "nope");
    let o = glassnet(&[
        "export",
        "--model",
        m.to_str().unwrap(),
        "--onnx",
        root.join("missing/z.onnx").to_str().unwrap(),
    ]);
    fails_with(&o, "does not exist");
    assert_eq!(files(&out), ["glass.json", "glass.onnx"]);
    let _ = std::fs::remove_dir_all(&root);
}
