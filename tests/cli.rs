//! The command line end to end on tiny data: success paths and every error a user can cause.
//! Errors must name the file or flag, exit non-zero, print no backtrace, write nothing.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::{fails_with, glassnet, metadata, predict_json, text};

fn tmpdir(name: &str) -> PathBuf {
    common::cli::tmpdir("cli", name)
}

/// Two classes of distinguishable 20x20 images: bright disks vs dark bars, with noise.
fn tiny_dataset(dir: &Path, per_class: usize) {
    for (c, name) in ["disk", "bar"].iter().enumerate() {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..per_class {
            let img = image::GrayImage::from_fn(20, 20, |x, y| {
                let noise = ((x * 7 + y * 13 + i as u32 * 31) % 17) as u8;
                let v = if c == 0 {
                    let (dx, dy) = (x as i32 - 10, y as i32 - 10);
                    if dx * dx + dy * dy < 30 {
                        220
                    } else {
                        90
                    }
                } else if (x as usize + i) % 6 < 2 {
                    30
                } else {
                    120
                };
                image::Luma([v + noise])
            });
            img.save(d.join(format!("{name}_{i}.png"))).unwrap();
        }
    }
}

const TINY: &[&str] = &[
    "--size",
    "20",
    "--channels",
    "4,8",
    "--embed-dim",
    "8",
    "--epochs",
    "2",
    "--steps-per-epoch",
    "3",
    "--batch",
    "8",
    "--cpu",
];

fn train_tiny(data: &Path, out: &Path) -> Output {
    train_tiny_with(data, out, &[])
}

/// `train_tiny` plus `extra` flags.
fn train_tiny_with(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    glassnet(&args)
}

/// `glassnet embed --model M --data D --out OUT --cpu` plus `extra`.
fn embed_cpu(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cpu",
    ];
    args.extend_from_slice(extra);
    glassnet(&args)
}

#[test]
fn info_lists_adapters_or_says_what_to_install() {
    let o = glassnet(&["info"]);
    if o.status.success() {
        assert!(text(&o).contains("adapter"), "{}", text(&o));
    } else {
        assert!(
            !common::in_ci(),
            "CI=true and `glassnet info` found no adapter:\n{}",
            text(&o)
        );
        fails_with(&o, "apt-get install mesa-vulkan-drivers");
    }
}

#[test]
fn a_global_pooling_model_records_it_and_predicts_alike_on_cpu_gpu_and_onnx() {
    // Global pooling alone, and with batch normalisation (running statistics at inference,
    // folded into the convolutions in the ONNX export).
    for (tag, flags, norm) in [
        (
            "avgmax",
            &["--pooling", "avg-max", "--norm", "none"][..],
            "none",
        ),
        (
            "avgmax-bn",
            &["--pooling", "avg-max", "--norm", "batch"][..],
            "batch",
        ),
    ] {
        let root = tmpdir(tag);
        let data = root.join("data");
        tiny_dataset(&data, 8);
        let model = root.join("model");
        let o = train_tiny_with(&data, &model, flags);
        assert!(o.status.success(), "{tag}: {}", text(&o));
        assert_eq!(metadata(&model)["arch"]["pooling"], "avg-max");
        assert_eq!(metadata(&model)["arch"]["norm"], norm);
        let predict = |device: &str| -> Vec<(String, f64)> {
            let m = model.to_str().unwrap();
            let o = glassnet(&[
                "predict",
                "--model",
                m,
                data.to_str().unwrap(),
                "--json",
                device,
            ]);
            assert!(o.status.success(), "{tag}: {}", text(&o));
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                // The nearest class: `class` may flip to unknown for an image whose distance
                // is its class's threshold to the last bit (a calibration image can be).
                .map(|r| {
                    (
                        r["nearest_class"].to_string(),
                        r["distance"].as_f64().unwrap(),
                    )
                })
                .collect()
        };
        let cpu = predict("--cpu");
        assert_eq!(cpu.len(), 16);
        assert!(cpu
            .iter()
            .all(|(c, _)| c.contains("disk") || c.contains("bar")));
        if common::gpu().is_some() || common::in_ci() {
            for ((cc, dc), (gc, dg)) in cpu.iter().zip(&predict("--gpu")) {
                assert_eq!(cc, gc, "{tag}");
                assert!((dc - dg).abs() <= 1e-4, "{tag}: distance {dc} vs {dg}");
            }
        }
        // ONNX export runs its own check against the CPU engine before writing.
        let onnx = root.join("m.onnx");
        let m = model.to_str().unwrap();
        let o = glassnet(&["export", "--model", m, "--onnx", onnx.to_str().unwrap()]);
        assert!(o.status.success(), "{tag}: {}", text(&o));
        assert!(onnx.is_file());
    }
}

#[test]
fn train_predict_embed_round_trip() {
    let root = tmpdir("round");
    let data = root.join("data");
    tiny_dataset(&data, 8);
    let model = root.join("model");
    let o = train_tiny(&data, &model);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "model.safetensors",
        "metadata.json",
        "gallery.safetensors",
        "history.csv",
        "training.png",
    ] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    assert!(!std::fs::read_dir(&root).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("partial")));

    // A copy elsewhere predicts the same on the CPU and the GPU.
    let copy = root.join("elsewhere");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&model).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    // One JSON record per image from `predict` on a device.
    let predict_json = |device: &str| predict_json(&copy, &[&data], &[device]);
    let rows = predict_json("--cpu");
    assert_eq!(rows.len(), 16);
    assert!(rows
        .iter()
        .all(|r| r["path"].is_string() && r["class"].is_string()));
    if common::gpu().is_some() {
        let grows = predict_json("--gpu");
        for (c, g) in rows.iter().zip(&grows) {
            assert_eq!(
                c["class"], g["class"],
                "{} differs between CPU and GPU",
                c["path"]
            );
            let (dc, dg) = (
                c["distance"].as_f64().unwrap(),
                g["distance"].as_f64().unwrap(),
            );
            assert!(
                (dc - dg).abs() <= 1e-4,
                "{}: distance {dc} vs {dg}",
                c["path"]
            );
        }
    }
    let table = glassnet(&[
        "predict",
        "--model",
        copy.to_str().unwrap(),
        data.join("disk").to_str().unwrap(),
    ]);
    assert!(
        table.status.success() && text(&table).contains("distance"),
        "{}",
        text(&table)
    );
    let csv = glassnet(&[
        "predict",
        "--model",
        copy.to_str().unwrap(),
        data.to_str().unwrap(),
        "--csv",
    ]);
    assert!(String::from_utf8_lossy(&csv.stdout)
        .starts_with("path,class,unknown,distance,threshold,nearest_class"));

    let emb_csv = root.join("e.csv");
    let o = embed_cpu(&copy, &data, &emb_csv, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let content = std::fs::read_to_string(&emb_csv).unwrap();
    assert_eq!(content.lines().count(), 17);
    assert!(content.starts_with("path,label,class,e0"));
    let emb_npy = root.join("e.npy");
    let o = embed_cpu(&copy, &data, &emb_npy, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(&emb_npy).unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY"));
    assert!(root.join("e.labels.npy").is_file());

    // Existing outputs are not overwritten without --force, and are left as they were.
    let inputs = root.join("in.npy");
    std::fs::write(&inputs, b"keep").unwrap();
    let before = files(&root);
    fails_with(&embed_cpu(&copy, &data, &emb_csv, &[]), "e.csv exists");
    fails_with(&embed_cpu(&copy, &data, &emb_npy, &[]), "--force");
    std::fs::remove_file(&emb_npy).unwrap();
    fails_with(
        &embed_cpu(&copy, &data, &emb_npy, &[]),
        "e.labels.npy exists",
    );
    let other = root.join("other.csv");
    let o = embed_cpu(
        &copy,
        &data,
        &other,
        &["--inputs", inputs.to_str().unwrap()],
    );
    fails_with(&o, "--inputs");
    assert!(!other.exists());
    let after: Vec<_> = files(&root)
        .into_iter()
        .filter(|(p, _)| p != &emb_npy)
        .collect();
    let before: Vec<_> = before.into_iter().filter(|(p, _)| p != &emb_npy).collect();
    assert_eq!(after, before, "a refused embed changed a file");
    let o = embed_cpu(&copy, &data, &emb_csv, &["--force"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bad_data_is_a_clear_error_with_no_output() {
    let root = tmpdir("bad");
    let out = root.join("out");
    let o = train_tiny(&root.join("missing"), &out);
    fails_with(&o, "missing");
    assert!(!out.exists());

    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(&train_tiny(&empty, &out), "no class folders");

    let one = root.join("one");
    tiny_dataset(&one, 3);
    std::fs::remove_dir_all(one.join("bar")).unwrap();
    fails_with(&train_tiny(&one, &out), "only one class");

    let single = root.join("single");
    tiny_dataset(&single, 3);
    for i in 1..3 {
        std::fs::remove_file(single.join("bar").join(format!("bar_{i}.png"))).unwrap();
    }
    fails_with(&train_tiny(&single, &out), "'bar' has 1 image");

    let corrupt = root.join("corrupt");
    tiny_dataset(&corrupt, 4);
    std::fs::write(corrupt.join("bar").join("broken.png"), b"not a png at all").unwrap();
    fails_with(&train_tiny(&corrupt, &out), "broken.png");
    assert!(!out.exists(), "a failed run left {}", out.display());
    let mut args = vec![
        "train",
        "--data",
        corrupt.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--skip-bad",
    ];
    args.extend_from_slice(TINY);
    let o = glassnet(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("skipped 1"), "{}", text(&o));

    // --out that already holds something.
    fails_with(&train_tiny(&corrupt, &out), "not empty");
}

#[test]
fn bad_flags_and_models_are_named() {
    let root = tmpdir("flags");
    let data = root.join("data");
    tiny_dataset(&data, 4);
    let o = glassnet(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--margin=-1",
        "--out",
        root.join("o").to_str().unwrap(),
    ]);
    fails_with(&o, "--margin");
    // A folder that cannot be created is named as the flag gave it, not by its staging path.
    let o = train_tiny(&data, Path::new("/proc/glassnet-out"));
    fails_with(&o, "--out /proc/glassnet-out");
    let o = glassnet(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--channels",
        "4,8",
        "--size",
        "2",
        "--out",
        root.join("o").to_str().unwrap(),
    ]);
    fails_with(&o, "--size");
    let o = glassnet(&[
        "predict",
        "--model",
        root.join("nope").to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    fails_with(&o, "nope");

    let model = root.join("model");
    assert!(train_tiny(&data, &model).status.success());
    // predict must refuse the model once metadata.json is edited from `from` to `to`.
    let meta_path = model.join("metadata.json");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    let refuses = |from: &str, to: &str, needle: &str| {
        std::fs::write(&meta_path, meta.replace(from, to)).unwrap();
        let o = glassnet(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            data.to_str().unwrap(),
        ]);
        fails_with(&o, needle);
    };
    // A model from a future format version.
    refuses(
        "\"format_version\": 1",
        "\"format_version\": 99",
        "format version 99",
    );
    // Weights of another architecture under this metadata.
    refuses("\"embed_dim\": 8", "\"embed_dim\": 9", "fc.weight");
    std::fs::write(&meta_path, &meta).unwrap();
    let o = glassnet(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        root.join("x.txt").to_str().unwrap(),
    ]);
    fails_with(&o, "--out");
}

#[test]
fn a_diverging_loss_stops_with_no_output() {
    let root = tmpdir("nan");
    let data = root.join("data");
    tiny_dataset(&data, 6);
    let out = root.join("out");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--lr",
        "1e30",
        "--constant-lr",
    ];
    args.extend_from_slice(TINY);
    fails_with(&glassnet(&args), "training diverged");
    assert!(!out.exists());
    // Unnormalised, the loss itself turns NaN; normalised (the default), the outputs can
    // stay finite over infinite weights: both are refused.
    args.extend_from_slice(&["--norm", "none"]);
    fails_with(&glassnet(&args), "training diverged");
    assert!(!out.exists());
}

#[test]
fn without_a_vulkan_driver_gpu_commands_say_what_to_install() {
    // Point the Vulkan loader at no driver at all: what a machine without one sees.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_glassnet"))
            .args(args)
            .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .output()
            .unwrap()
    };
    fails_with(&run(&["info"]), "apt-get install mesa-vulkan-drivers");
    let root = tmpdir("nodriver");
    let data = root.join("data");
    tiny_dataset(&data, 3);
    let out = root.join("out");
    let o = run(&[
        "train",
        "--gpu",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, "apt-get install mesa-vulkan-drivers");
    assert!(!out.exists());
    // The CPU still works there.
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn evaluate_writes_a_report_over_stratified_folds_and_resumes() {
    let root = tmpdir("evaluate");
    let data = root.join("data");
    tiny_dataset(&data, 6);
    let out = root.join("report");
    let args = |out: &Path, extra: &[&str]| {
        let mut a: Vec<String> = [
            "evaluate",
            "--data",
            data.to_str().unwrap(),
            "--folds",
            "3",
            "--epochs",
            "1",
            "--cpu",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| glassnet(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&out, &[]));
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for m in [
        "triplet 1-NN",
        "triplet 5-NN",
        "triplet centroid",
        "siamese 1-NN",
        "pixels SVM (RBF)",
        "pixels 1-NN",
        "pixels 5-NN",
        "pixels Gaussian NB",
        "rule features SVM (RBF)",
        "Confusion matrix",
        "macro average",
        "inference ms / image",
    ] {
        assert!(md.contains(m), "report.md lacks {m}:\n{md}");
    }
    // Every picture the report links decodes as an image.
    for png in [
        "accuracy.png",
        "confusion.png",
        "loss-triplet.png",
        "loss-siamese.png",
    ] {
        assert!(md.contains(png), "report.md does not link {png}");
        let img = image::open(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(img.width() > 300 && img.height() > 200);
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // Every image is tested exactly once: the summed confusion matrix counts all 12.
    let summary = json["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 11);
    for s in summary {
        let total: u64 = s["confusion"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 12);
    }
    assert_eq!(json["per_fold"].as_array().unwrap().len(), 3);

    // An interrupted run (fold 3 and the report missing) resumes from its last fold and
    // reproduces the same results (times aside).
    let confusions = |out: &Path| -> Vec<serde_json::Value> {
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        j["summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["confusion"].clone())
            .collect()
    };
    let before = confusions(&out);
    std::fs::remove_file(out.join("folds/fold-03.json")).unwrap();
    std::fs::remove_file(out.join("report.md")).unwrap();
    let o = run(args(&out, &["--resume"]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 of 3 folds already done"),
        "{}",
        text(&o)
    );
    assert!(
        !text(&o).contains("fold  1/3 done"),
        "fold 1 ran again:\n{}",
        text(&o)
    );
    assert!(out.join("report.md").exists());
    assert_eq!(confusions(&out), before);
    // Without --resume a used directory is refused; with other settings, resume is refused.
    fails_with(&run(args(&out, &[])), "--resume");
    fails_with(
        &run(args(&out, &["--resume", "--svm-c", "3"])),
        "other settings",
    );
    // Fold files that are not the fold they claim, or that count other images, are refused
    // naming the file, and the report folder is left as it was.
    let fold2 = out.join("folds/fold-02.json");
    let good2 = std::fs::read_to_string(&fold2).unwrap();
    let f1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("folds/fold-01.json")).unwrap())
            .unwrap();
    let g2: serde_json::Value = serde_json::from_str(&good2).unwrap();
    let mut fewer = g2.clone();
    fewer["test_labels"].as_array_mut().unwrap().pop();
    let mut counts = g2.clone();
    counts["rows"][0]["confusion"]["counts"][0] = 99.into();
    let mut norows = g2.clone();
    norows["rows"] = serde_json::json!([]);
    for (bad, needle) in [
        (f1.clone(), "not fold 2"),
        (fewer, "test_labels"),
        (counts, "confusion matrix"),
        (norows, "rows"),
    ] {
        std::fs::write(&fold2, bad.to_string()).unwrap();
        std::fs::remove_file(out.join("folds/fold-03.json")).unwrap_or(());
        let before = files(&out);
        let o = run(args(&out, &["--resume"]));
        fails_with(&o, "fold-02.json");
        fails_with(&o, needle);
        assert_eq!(files(&out), before, "{needle}: the report folder changed");
    }
    std::fs::write(&fold2, good2).unwrap();
    // --methods picks the rows.
    let only = root.join("only");
    let o = run(args(&only, &["--methods", "svm,nb"]));
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(only.join("report.md")).unwrap();
    assert!(md.contains("pixels SVM (RBF)") && !md.contains("triplet 1-NN"));
    fails_with(
        &run(args(&root.join("bad"), &["--methods", "svm,forest"])),
        "forest",
    );
    fails_with(
        &glassnet(&[
            "evaluate",
            "--data",
            data.to_str().unwrap(),
            "--folds",
            "7",
            "--out",
            root.join("x").to_str().unwrap(),
        ]),
        "--folds 7",
    );
    assert!(!root.join("x").exists() && !root.join("bad").exists());
}

/// `--tta` adds a network's test-time-augmentation rows beside its plain ones (each counting
/// every test image once), is part of what a resume must match, and is refused where
/// training drew one view only.
#[test]
fn evaluate_tta_adds_rows_from_the_same_network() {
    let root = tmpdir("evaluate-tta");
    let data = root.join("data");
    tiny_dataset(&data, 6);
    let args = |out: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "evaluate",
            "--data",
            data.to_str().unwrap(),
            "--folds",
            "2",
            "--epochs",
            "1",
            "--methods",
            "triplet",
            "--cpu",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(root.join(out).to_str().unwrap().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| glassnet(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("plain", &[]));
    assert!(o.status.success(), "{}", text(&o));
    let o = run(args("tta", &["--tta"]));
    assert!(o.status.success(), "{}", text(&o));
    let json = |out: &str| -> serde_json::Value {
        let body = std::fs::read_to_string(root.join(out).join("report.json")).unwrap();
        serde_json::from_str(&body).unwrap()
    };
    let rows = |j: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        j["summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["row"].as_str().unwrap().to_string(),
                    s["confusion"].clone(),
                )
            })
            .collect()
    };
    let (plain, tta) = (rows(&json("plain")), rows(&json("tta")));
    let names: Vec<&str> = tta.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "triplet 1-NN",
            "triplet 5-NN",
            "triplet centroid",
            "triplet TTA 1-NN",
            "triplet TTA 5-NN",
            "triplet TTA centroid"
        ]
    );
    // The plain rows are the same network's as without --tta: the option only adds.
    assert_eq!(plain, tta[..3].to_vec());
    for (row, c) in &tta {
        let total: u64 = c["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 12, "{row}");
    }
    let md = std::fs::read_to_string(root.join("tta/report.md")).unwrap();
    assert!(md.contains("triplet TTA 1-NN"), "{md}");
    // The paper's network trains on one view: TTA rows would repeat its plain ones.
    let mut a = args("paper", &["--tta"]);
    let m = a.iter().position(|v| v == "--methods").unwrap();
    a[m + 1] = "triplet,paper".into();
    let o = run(a);
    assert!(o.status.success(), "{}", text(&o));
    let names: Vec<String> = rows(&json("paper")).into_iter().map(|(r, _)| r).collect();
    assert!(names.iter().any(|r| r == "paper network 1-NN"), "{names:?}");
    assert!(names.iter().any(|r| r == "triplet TTA 1-NN"), "{names:?}");
    assert!(
        !names.iter().any(|r| r.starts_with("paper network TTA")),
        "{names:?}"
    );
    fails_with(
        &run(args("plain", &["--resume", "--tta"])),
        "other settings",
    );
    fails_with(&run(args("none", &["--tta", "--augment", "none"])), "--tta");
    assert!(!root.join("none").exists());
}

/// `--methods paper` trains the paper's network with its recipe beside the run's own network
/// in one report: its rows are exactly what `--recipe paper` gives on the same folds, and
/// its training loss is plotted with the others.
#[test]
fn evaluate_paper_method_is_the_paper_recipe_on_the_same_folds() {
    let root = tmpdir("evaluate-paper");
    let data = root.join("data");
    tiny_dataset(&data, 6);
    let run = |out: &str, extra: &[&str]| {
        let out = root.join(out);
        let mut a = vec![
            "evaluate",
            "--data",
            data.to_str().unwrap(),
            "--folds",
            "2",
            "--epochs",
            "1",
            "--size",
            "32",
            "--cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        let o = glassnet(&a);
        assert!(o.status.success(), "{}", text(&o));
        let body = std::fs::read_to_string(out.join("report.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let rows = |j: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        j["summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["row"].as_str().unwrap().into(), s["confusion"].clone()))
            .collect()
    };
    // Per fold and network, what training did: (steps, learning rate, loss, spread) per
    // epoch. Accuracy alone could not tell two recipes apart on a set this easy.
    let trained = |j: &serde_json::Value, net: usize| -> Vec<serde_json::Value> {
        j["per_fold"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["networks"][net]["history"].as_array().unwrap().clone())
            .map(|e| serde_json::json!([e["steps"], e["lr"], e["loss"], e["spread"]]))
            .collect()
    };
    let both_json = run("both", &["--methods", "triplet,paper"]);
    let both = rows(&both_json);
    let names: Vec<&str> = both.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "triplet 1-NN",
            "triplet 5-NN",
            "triplet centroid",
            "paper network 1-NN",
            "paper network 5-NN",
            "paper network centroid"
        ]
    );
    let robust_json = run("robust", &["--methods", "triplet"]);
    let paper_json = run("paper", &["--methods", "triplet", "--recipe", "paper"]);
    let (robust, paper) = (rows(&robust_json), rows(&paper_json));
    assert_eq!(trained(&both_json, 0), trained(&robust_json, 0));
    assert_eq!(trained(&both_json, 1), trained(&paper_json, 0));
    assert_ne!(trained(&both_json, 0), trained(&both_json, 1));
    let confusions = |r: &[(String, serde_json::Value)]| -> Vec<serde_json::Value> {
        r.iter().map(|(_, c)| c.clone()).collect()
    };
    assert_eq!(confusions(&both[..3]), confusions(&robust));
    assert_eq!(confusions(&both[3..]), confusions(&paper));
    let md = std::fs::read_to_string(root.join("both/report.md")).unwrap();
    assert!(md.contains("The paper network rows"), "{md}");
    assert!(root.join("both/loss-paper.png").exists());
}

/// Frames of varying size (48..=120 px) with a dark spot ("spot") or a bright bar ("bar")
/// somewhere on a striped surface.
fn frames_dataset(dir: &Path, per_class: usize) {
    for (c, name) in ["spot", "bar"].iter().enumerate() {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..per_class as u32 {
            let (w, h) = (48 + (i * 37) % 73, 48 + (i * 53) % 73);
            let (cx, cy) = (8 + (i * 29) % (w - 16), 8 + (i * 41) % (h - 16));
            let img = image::GrayImage::from_fn(w, h, |x, y| {
                let stripes = if (x + 2 * y) % 7 < 3 { 10 } else { 0 };
                let (dx, dy) = (x as i32 - cx as i32, y as i32 - cy as i32);
                let v = if c == 0 && dx * dx + dy * dy < 30 {
                    60
                } else if c == 1 && dx.abs() < 7 && dy.abs() < 2 {
                    220
                } else {
                    120 + stripes
                };
                image::Luma([v])
            });
            img.save(d.join(format!("{name}_{i}.png"))).unwrap();
        }
    }
}

#[test]
fn preprocessing_is_recorded_and_replayed_by_predict() {
    let root = tmpdir("prep");
    let data = root.join("data");
    frames_dataset(&data, 6);
    let model = root.join("model");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--crop",
        "--denoise",
        "median",
        "--contrast",
        "stretch",
        "--val-fraction",
        "0",
    ];
    args.extend_from_slice(TINY);
    let o = glassnet(&args);
    assert!(o.status.success(), "{}", text(&o));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["preprocess"]["denoise"], "median");
    assert_eq!(meta["preprocess"]["contrast"], "stretch");
    assert!(meta["preprocess"]["crop"]["margin"].is_number());
    // Every training image is in the gallery: replaying the recorded steps puts each one at
    // distance 0 from itself.
    let nearest = |model: &Path| -> Vec<f64> {
        let o = glassnet(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            data.to_str().unwrap(),
            "--json",
            "--cpu",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["distance"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let d = nearest(&model);
    assert_eq!(d.len(), 12);
    assert!(d.iter().all(|&v| v < 1e-6), "replayed steps differ: {d:?}");
    // The check can fail: the same model told to skip the crop no longer matches itself.
    let edited = root.join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    for e in std::fs::read_dir(&model).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), edited.join(e.file_name())).unwrap();
    }
    let mut m = meta.clone();
    m["preprocess"]["crop"] = serde_json::Value::Null;
    std::fs::write(edited.join("metadata.json"), m.to_string()).unwrap();
    assert!(nearest(&edited).iter().any(|&v| v > 1e-4));

    // --fit pad (crops are square, so on the whole frames: 48-120 px, aspect 0.4-2.5): recorded
    // and replayed; the same model told to stretch no longer matches itself.
    let padded = root.join("padded");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        padded.to_str().unwrap(),
        "--fit",
        "pad",
        "--val-fraction",
        "0",
    ];
    args.extend_from_slice(TINY);
    let o = glassnet(&args);
    assert!(o.status.success(), "{}", text(&o));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(padded.join("metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["preprocess"]["fit"], "pad");
    assert!(nearest(&padded).iter().all(|&v| v < 1e-6));
    let mut m = meta.clone();
    m["preprocess"]["fit"] = "stretch".into();
    std::fs::write(padded.join("metadata.json"), m.to_string()).unwrap();
    assert!(nearest(&padded).iter().any(|&v| v > 1e-4));

    // --crop-views: the whole frames join the crops in training; predict still replays the
    // crop, and every image finds its own cropped view.
    let views = root.join("views");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        views.to_str().unwrap(),
        "--crop",
        "--crop-views",
        "--val-fraction",
        "0",
    ];
    args.extend_from_slice(TINY);
    let o = glassnet(&args);
    assert!(o.status.success(), "{}", text(&o));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(views.join("metadata.json")).unwrap())
            .unwrap();
    assert!(
        meta["data"]
            .as_str()
            .unwrap()
            .contains("crop and whole frame"),
        "{}",
        meta["data"]
    );
    let d = nearest(&views);
    assert!(d.iter().all(|&v| v < 1e-6), "replayed steps differ: {d:?}");
    let nocrop = root.join("nocrop");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        nocrop.to_str().unwrap(),
        "--crop-views",
    ];
    args.extend_from_slice(TINY);
    fails_with(&glassnet(&args), "--crop-views");
    assert!(!nocrop.exists());
}

#[test]
fn preprocess_writes_the_processed_set_and_a_contact_sheet() {
    let root = tmpdir("prepcmd");
    let data = root.join("data");
    frames_dataset(&data, 4);
    let out = root.join("out");
    let o = glassnet(&[
        "preprocess",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--crop",
        "--size",
        "32",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // What the crop found, per class.
    assert!(
        text(&o).contains("crop found a region in") && text(&o).contains("spot "),
        "{}",
        text(&o)
    );
    let sheet = image::open(out.join("contact_sheet.png")).unwrap();
    assert!(sheet.width() > 4 * 64 && sheet.height() > 2 * 32);
    for class in ["spot", "bar"] {
        let files: Vec<_> = std::fs::read_dir(out.join(class)).unwrap().collect();
        assert_eq!(files.len(), 4);
        let img = image::open(files[0].as_ref().unwrap().path()).unwrap();
        assert_eq!((img.width(), img.height()), (32, 32));
    }
    fails_with(
        &glassnet(&[
            "preprocess",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        "not empty",
    );
    fails_with(
        &glassnet(&[
            "preprocess",
            "--out",
            root.join("x").to_str().unwrap(),
            "--crop-margin=-1",
        ]),
        "--crop-margin",
    );
    fails_with(
        &glassnet(&[
            "preprocess",
            "--out",
            root.join("x").to_str().unwrap(),
            "--crop-min",
            "0",
        ]),
        "--crop-min",
    );
    fails_with(
        &glassnet(&[
            "preprocess",
            "--out",
            root.join("x").to_str().unwrap(),
            "--crop-fine",
            "1",
        ]),
        "--crop-fine",
    );
    assert!(!root.join("x").exists());

    // The built-in line-camera frames as a folder dataset: sizes vary within 224-640 px.
    let frames = root.join("frames");
    let o = glassnet(&[
        "synth",
        "--line-camera",
        "--counts",
        "3,1,1,1",
        "--out",
        frames.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut sides = std::collections::BTreeSet::new();
    for class in ["control", "dent", "fold", "mold"] {
        for f in std::fs::read_dir(frames.join(class)).unwrap() {
            let img = image::open(f.unwrap().path()).unwrap();
            assert_eq!(img.width(), img.height());
            assert!((224..=640).contains(&img.width()), "{}", img.width());
            sides.insert(img.width());
        }
    }
    assert!(sides.len() > 2, "frame sides {sides:?}");
    fails_with(
        &glassnet(&[
            "synth",
            "--line-camera",
            "--size",
            "64",
            "--out",
            root.join("y").to_str().unwrap(),
        ]),
        "--size",
    );
    assert!(!root.join("y").exists());
}

/// A class named with a comma and a quote, in a folder with a comma: predict --csv and
/// embed's CSV quote them, and a CSV reader gets the names back.
#[test]
fn csv_output_quotes_class_names_and_paths() {
    let root = tmpdir("csvquote");
    let data = root.join("da,ta");
    tiny_dataset(&data, 6);
    std::fs::rename(data.join("disk"), data.join("a,b\"c")).unwrap();
    let model = root.join("model");
    let o = train_tiny(&data, &model);
    assert!(o.status.success(), "{}", text(&o));
    let o = glassnet(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--csv",
        "--cpu",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut r = csv::Reader::from_reader(&o.stdout[..]);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 12);
    // path, class, unknown, distance, threshold, nearest_class, votes, k, good_margin
    assert!(rows.iter().all(|row| row.len() == 9), "{rows:?}");
    assert!(rows.iter().any(|row| &row[1] == "a,b\"c"), "{rows:?}");
    assert!(rows[0][0].contains("da,ta"), "{rows:?}");
    let out = root.join("e.csv");
    let o = embed_cpu(&model, &data, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut r = csv::Reader::from_path(&out).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|row| row.len() == 3 + 8));
    assert_eq!(&rows[0][2], "a,b\"c");
}

/// Writes `value` as f32 at element `index` of tensor `name` in a safetensors file.
fn poke_tensor(path: &Path, name: &str, index: usize, value: f32) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize;
    let at = 8 + n + start + 4 * index;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

/// Every file under `dir` with its bytes, sorted by path.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files(&p));
        } else {
            let b = std::fs::read(&p).unwrap();
            v.push((p, b));
        }
    }
    v.sort();
    v
}

#[test]
fn damaged_or_inconsistent_models_are_refused_naming_the_field() {
    let root = tmpdir("models");
    let data = root.join("data");
    tiny_dataset(&data, 4);
    let good = root.join("good");
    assert!(train_tiny(&data, &good).status.success());
    let predict = |model: &Path| {
        glassnet(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            data.to_str().unwrap(),
        ])
    };
    assert!(predict(&good).status.success());
    let copy = |name: &str| {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (p, b) in files(&good) {
            std::fs::write(d.join(p.file_name().unwrap()), b).unwrap();
        }
        d
    };
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(good.join("metadata.json")).unwrap())
            .unwrap();
    // Metadata fields that disagree with each other.
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit, &str); 7] = [
        (
            "dup",
            |m| m["classes"][1] = m["classes"][0].clone(),
            "named twice",
        ),
        ("blank", |m| m["classes"][0] = " ".into(), "classes[0]"),
        (
            "noclass",
            |m| m["classes"] = serde_json::json!([]),
            "classes: empty",
        ),
        (
            "side",
            |m| m["preprocess"]["side"] = 64.into(),
            "preprocess.side",
        ),
        ("seed", |m| m["seed"] = 77.into(), "training.seed"),
        ("best", |m| m["best_epoch"] = 0.into(), "best_epoch"),
        (
            "score",
            |m| m["validation"]["accuracy"] = 1.5.into(),
            "validation",
        ),
    ];
    for (name, edit, needle) in edits {
        let d = copy(name);
        let mut m = meta.clone();
        edit(&mut m);
        std::fs::write(d.join("metadata.json"), m.to_string()).unwrap();
        let before = files(&d);
        let o = predict(&d);
        fails_with(&o, needle);
        fails_with(&o, "metadata.json");
        assert_eq!(files(&d), before, "{name}: the model folder changed");
    }
    // Weights or gallery values no training produces.
    let pokes: [(&str, &str, &str, f32, &str); 4] = [
        ("nan", "model.safetensors", "fc.weight", f32::NAN, "NaN"),
        ("huge", "model.safetensors", "conv1.weight", 3e38, "beyond"),
        ("inf", "model.safetensors", "fc.bias", f32::INFINITY, "inf"),
        (
            "gallery",
            "gallery.safetensors",
            "embeddings",
            f32::NAN,
            "embeddings",
        ),
    ];
    for (name, file, tensor, value, needle) in pokes {
        let d = copy(name);
        poke_tensor(&d.join(file), tensor, 3, value);
        let before = files(&d);
        let o = predict(&d);
        fails_with(&o, needle);
        fails_with(&o, file);
        assert_eq!(files(&d), before, "{name}: the model folder changed");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn sizes_beyond_memory_are_refused_before_allocating() {
    let root = tmpdir("sizes");
    let out = root.join("out");
    let o_str = out.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["train", "--size", "2048", "--out", o_str], "--size"),
        (
            &["train", "--channels", "100000", "--out", o_str],
            "--channels",
        ),
        (
            &["train", "--embed-dim", "1000000", "--out", o_str],
            "embedding size",
        ),
        (
            &["train", "--channels", "4096,4096,4096", "--out", o_str],
            "parameters",
        ),
        (
            &["synth", "--size", "100000", "--out", o_str],
            "--size 100000",
        ),
        (
            &["preprocess", "--size", "30000", "--out", o_str],
            "--size 30000",
        ),
    ];
    for (args, needle) in cases {
        let o = glassnet(args);
        fails_with(&o, needle);
        assert!(!text(&o).contains("memory allocation"), "{args:?}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// `n` 20x20 images of a third pattern (a bright ring) in `dir`.
fn ring_images(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let img = image::GrayImage::from_fn(20, 20, |x, y| {
            let (dx, dy) = (x as i32 - 10, y as i32 - 10);
            let r2 = dx * dx + dy * dy;
            let noise = ((x * 11 + y * 5 + i as u32 * 29) % 13) as u8;
            image::Luma([if (25..64).contains(&r2) { 200 } else { 60 } + noise])
        });
        img.save(dir.join(format!("ring_{i}.png"))).unwrap();
    }
}

/// `predict --json --cpu` rows for `paths` with `extra` flags.
fn predict_rows(model: &Path, paths: &[&Path], extra: &[&str]) -> Vec<serde_json::Value> {
    predict_json(model, paths, &[&["--cpu"], extra].concat())
}

#[test]
fn thresholds_are_calibrated_and_enrolling_changes_the_model_only_when_valid() {
    let root = tmpdir("enrol");
    let data = root.join("data");
    tiny_dataset(&data, 24);
    let model = root.join("model");
    let o = train_tiny(&data, &model);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("unknown thresholds"), "{}", text(&o));
    let meta = metadata(&model);
    let rej = &meta["rejection"];
    assert_eq!(rej["known_recall"], 0.95);
    let thr = rej["thresholds"].as_array().unwrap();
    assert_eq!(thr.len(), 2);
    assert!(thr.iter().all(|t| t.as_f64().unwrap() > 0.0), "{rej}");
    let g0 = meta["gallery_edits"].as_array().unwrap().len();
    assert_eq!(g0, 0);

    // Every record carries the decision and the threshold it was taken against; `--reject
    // off` never says unknown and always names the nearest class.
    let rows = predict_rows(&model, &[&data], &[]);
    assert_eq!(rows.len(), 48);
    for r in &rows {
        let unknown = r["unknown"].as_bool().unwrap();
        let (d, t) = (
            r["distance"].as_f64().unwrap(),
            r["threshold"].as_f64().unwrap(),
        );
        assert_eq!(unknown, d > t, "{r}");
        assert_eq!(r["class"] == "unknown", unknown, "{r}");
    }
    for r in predict_rows(&model, &[&data], &["--reject", "off"]) {
        assert_eq!(r["unknown"], false);
        assert_eq!(r["class"], r["nearest_class"]);
    }

    // Bad enrolments: clear errors naming what is wrong, the model folder byte for byte
    // unchanged, no staging folder left behind.
    let before = files(&model);
    let ring = root.join("ring");
    ring_images(&ring, 12);
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let junk = root.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::copy(ring.join("ring_0.png"), junk.join("ring_0.png")).unwrap();
    std::fs::write(junk.join("broken.png"), b"not a png at all").unwrap();
    // Images unlike the 20x20 grey training images: colour, and a smaller side over 2x.
    let colour = root.join("colour");
    std::fs::create_dir_all(&colour).unwrap();
    image::RgbImage::from_fn(20, 20, |x, y| {
        image::Rgb([(x * 12) as u8, 90, (y * 12) as u8])
    })
    .save(colour.join("c.png"))
    .unwrap();
    let large = root.join("large");
    std::fs::create_dir_all(&large).unwrap();
    image::GrayImage::from_fn(50, 90, |x, y| image::Luma([((x + y) % 200) as u8]))
        .save(large.join("l.png"))
        .unwrap();
    assert_eq!(metadata(&model)["input"]["min_side"], 20);
    let m = model.to_str().unwrap();
    let missing = root.join("no-model");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--model",
                missing.to_str().unwrap(),
                "--class",
                "ring",
                ring.to_str().unwrap(),
            ],
            "no-model",
        ),
        (
            vec!["--model", m, "--class", "ring", empty.to_str().unwrap()],
            "empty",
        ),
        (
            vec!["--model", m, "--class", "a/b", ring.to_str().unwrap()],
            "a path",
        ),
        (
            vec!["--model", m, "--class", "unknown", ring.to_str().unwrap()],
            "unknown",
        ),
        (
            vec!["--model", m, "--class", " ", ring.to_str().unwrap()],
            "blank",
        ),
        (
            vec!["--model", m, "--class", "ring", junk.to_str().unwrap()],
            "broken.png",
        ),
        (vec!["--model", m, "--class", "ring"], "images"),
        (
            vec!["--model", m, "--class", "ring", colour.to_str().unwrap()],
            "a colour image; the model was trained on grey",
        ),
        (
            vec!["--model", m, "--class", "ring", large.to_str().unwrap()],
            "50x90 pixels",
        ),
        (
            vec!["--model", m, "--remove-class", "ring"],
            "no such class",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["enrol", "--cpu"];
        all.extend(args);
        fails_with(&glassnet(&all), needle);
        assert!(files(&model) == before, "enrol {all:?} changed the model");
        assert!(!missing.exists());
    }

    // A new class from 12 images: the images themselves are now their own nearest (distance
    // 0), the other classes are untouched, and the edit is recorded.
    let o = glassnet(&[
        "enrol",
        "--cpu",
        "--model",
        m,
        "--class",
        "ring",
        ring.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("enrolled 12 image(s) as new class \"ring\""),
        "{}",
        text(&o)
    );
    let meta = metadata(&model);
    assert_eq!(meta["classes"], serde_json::json!(["bar", "disk", "ring"]));
    assert_eq!(meta["rejection"]["thresholds"].as_array().unwrap().len(), 3);
    assert_eq!(
        meta["rejection"]["sources"][2]["from"], "enrolled",
        "{meta}"
    );
    assert_eq!(meta["gallery_edits"][0]["added"], 12);
    for r in predict_rows(&model, &[&ring], &[]) {
        assert_eq!(r["class"], "ring", "{r}");
        assert!(r["distance"].as_f64().unwrap() < 1e-6, "{r}");
    }
    let known_before: Vec<_> = rows.iter().map(|r| r["nearest_class"].clone()).collect();
    let known_after: Vec<_> = predict_rows(&model, &[&data], &["--reject", "off"])
        .iter()
        .map(|r| r["nearest_class"].clone())
        .collect();
    let moved = known_before
        .iter()
        .zip(&known_after)
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        known_after
            .iter()
            .zip(&known_before)
            .all(|(a, b)| a == b || a == "ring"),
        "an enrolment may only take images to the new class"
    );
    assert!(moved < 48, "every known image went to the new class");
    assert!(!std::fs::read_dir(&root).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));

    // Removing the class gives back the model's decisions of before.
    let o = glassnet(&["enrol", "--cpu", "--model", m, "--remove-class", "ring"]);
    assert!(o.status.success(), "{}", text(&o));
    let meta = metadata(&model);
    assert_eq!(meta["classes"], serde_json::json!(["bar", "disk"]));
    assert_eq!(meta["gallery_edits"].as_array().unwrap().len(), 2);
    assert_eq!(predict_rows(&model, &[&data], &[]), rows);
    fails_with(
        &glassnet(&[
            "enrol",
            "--cpu",
            "--model",
            m,
            "--remove-class",
            "bar",
            "--class",
            "x",
        ]),
        "cannot be used with",
    );

    // A model written before thresholds existed still loads and predicts, never unknown.
    let mut old = metadata(&model);
    old.as_object_mut().unwrap().remove("rejection");
    old.as_object_mut().unwrap().remove("gallery_edits");
    std::fs::write(
        model.join("metadata.json"),
        serde_json::to_vec(&old).unwrap(),
    )
    .unwrap();
    let o = glassnet(&[
        "predict",
        "--model",
        m,
        "--json",
        "--cpu",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("no calibrated unknown thresholds"),
        "{}",
        text(&o)
    );
    for r in predict_rows(&model, &[&data], &[]) {
        assert_eq!(r["unknown"], false);
        assert!(r["threshold"].is_null());
    }
}

#[test]
fn a_good_class_operating_point_is_calibrated_recorded_and_applied() {
    let root = tmpdir("good");
    let data = root.join("data");
    tiny_dataset(&data, 24);
    let model = root.join("model");
    let train = |out: &Path, extra: &[&str]| train_tiny_with(&data, out, extra);
    let o = train(&model, &["--good-class", "disk", "--max-escape", "0.2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("good class \"disk\": bias"),
        "{}",
        text(&o)
    );
    let meta = metadata(&model);
    let good = &meta["good"];
    let classes = meta["classes"].as_array().unwrap();
    assert_eq!(classes[good["class"].as_u64().unwrap() as usize], "disk");
    // A fifth of the 24 bars is the validation split's defects.
    assert_eq!(good["calibration_defects"], 5);
    let bias = good["bias"].as_f64().unwrap();
    // Every answer follows the recorded bias: good exactly when the margin is below it.
    let rows = predict_rows(&model, &[&data], &["--reject", "off"]);
    assert_eq!(rows.len(), 48);
    for r in &rows {
        let m = r["good_margin"].as_f64().unwrap();
        assert_eq!(r["class"] == "disk", (m as f32) < bias as f32, "{r}");
    }
    // Without --good-class nothing changes: no margin, the nearest class.
    let plain = root.join("plain");
    assert!(train(&plain, &[]).status.success());
    assert!(metadata(&plain).get("good").is_none());
    for r in predict_rows(&plain, &[&data], &["--reject", "off"]) {
        assert!(r.get("good_margin").is_none());
        assert_eq!(r["class"], r["nearest_class"]);
    }
    // Removing the good class drops the operating point with it.
    let o = glassnet(&[
        "enrol",
        "--model",
        model.to_str().unwrap(),
        "--remove-class",
        "disk",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(metadata(&model).get("good").is_none());
    // A colour image is refused into this grey-trained model unless asked for.
    let colour = root.join("colour");
    std::fs::create_dir_all(&colour).unwrap();
    image::RgbImage::from_fn(24, 24, |x, y| {
        image::Rgb([(x * 9) as u8, 90, (y * 9) as u8])
    })
    .save(colour.join("c.png"))
    .unwrap();
    let enrol = |extra: &[&str]| {
        let mut a = vec!["enrol", "--cpu", "--model", model.to_str().unwrap()];
        a.extend_from_slice(&["--class", "tint", colour.to_str().unwrap()]);
        a.extend_from_slice(extra);
        glassnet(&a)
    };
    fails_with(&enrol(&[]), "--any-input");
    let o = enrol(&["--any-input"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        metadata(&model)["classes"],
        serde_json::json!(["bar", "tint"])
    );
    // Bad flags are named, and nothing is written.
    fails_with(
        &train(&root.join("x"), &["--good-class", "nope"]),
        "--good-class \"nope\"",
    );
    fails_with(
        &train(
            &root.join("x"),
            &["--good-class", "disk", "--val-fraction", "0"],
        ),
        "--val-fraction 0",
    );
    fails_with(
        &train(
            &root.join("x"),
            &["--good-class", "disk", "--max-escape", "1"],
        ),
        "--max-escape",
    );
    assert!(!root.join("x").exists());
}

#[test]
fn jitter_is_recorded_in_the_model_and_bad_values_are_refused() {
    let dir = tmpdir("jitter");
    let data = dir.join("data");
    tiny_dataset(&data, 12);
    let out = dir.join("model");
    let flags = [
        "--jitter-brightness",
        "0.1",
        "--jitter-contrast",
        "0.2",
        "--jitter-gamma",
        "0.3",
        "--jitter-shift",
        "0.125",
    ];
    let o = train_tiny_with(&data, &out, &flags);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("jitter brightness 0.1, contrast 0.2, gamma 0.3, shift 0.125"),
        "{}",
        text(&o)
    );
    let meta = |m: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(m.join("metadata.json")).unwrap()).unwrap()
    };
    let j = &meta(&out)["training"]["jitter"];
    for (part, want) in [
        ("brightness", 0.1),
        ("contrast", 0.2),
        ("gamma", 0.3),
        ("shift", 0.125),
    ] {
        let got = j[part].as_f64().unwrap_or(f64::NAN);
        assert!((got - want).abs() < 1e-6, "{part}: {got} in {j}");
    }
    // Without jitter the settings have no jitter field, as models saved before it.
    let plain = dir.join("plain");
    let o = train_tiny(&data, &plain);
    assert!(o.status.success(), "{}", text(&o));
    assert!(meta(&plain)["training"].get("jitter").is_none());
    for (flag, v) in [
        ("--jitter-gamma", "-0.1"),
        ("--jitter-shift", "0.7"),
        ("--jitter-brightness", "NaN"),
    ] {
        let bad = dir.join("bad");
        let arg = format!("{flag}={v}");
        fails_with(&train_tiny_with(&data, &bad, &[&arg]), flag);
        assert!(!bad.exists(), "{arg} left {}", bad.display());
    }
}

/// `bench` checks every kernel it times against the CPU reference before timing it (a wrong
/// kernel is an error, not a figure); run small so the suite stays quick.
#[test]
fn bench_validates_the_kernels_it_times_and_reports_rates() {
    let mut devices = vec!["--cpu"];
    if common::gpu().is_some() {
        devices.push("--gpu");
    }
    for dev in devices {
        let o = glassnet(&["bench", dev, "--batch", "4", "--reps", "1"]);
        let t = text(&o);
        assert!(o.status.success(), "bench {dev}:\n{t}");
        for want in ["conv2d_forward", "training:", "inference:", "images/s"] {
            assert!(t.contains(want), "bench {dev} printed no {want:?}:\n{t}");
        }
        if dev == "--gpu" {
            for kernel in ["maxpool2d_backward", "dense_backward_weight", "adam_update"] {
                assert!(t.contains(kernel), "bench --gpu timed no {kernel}:\n{t}");
            }
        }
    }
    fails_with(&glassnet(&["bench", "--cpu", "--reps", "0"]), "--reps");
}
