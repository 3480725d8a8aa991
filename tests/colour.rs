//! Colour input end to end: `--colour auto` reads a set whose classes differ only in hue as
//! three planes, the model records it, and predict (CPU and GPU), export and a grey image
//! replay it; the same set read as grey cannot be told apart.

mod common;
use std::path::Path;

use common::cli::{fails_with, glassnet, metadata, predict_json, text, tmpdir};
use rand::{Rng, SeedableRng};

/// Two classes of 20x20 images of the same random grey texture, one tinted red (+17 in red),
/// one blue (+50 in blue): the tints have the same luma (0.2126 x 17 = 0.0722 x 50), so only
/// colour tells the classes apart.
fn tinted_set(dir: &Path, per_class: usize, seed: u64) {
    let mut g = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for (name, tint) in [("red", [17u8, 0, 0]), ("blue", [0, 0, 50])] {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..per_class {
            let texture: Vec<u8> = (0..400).map(|_| g.random_range(60u8..180)).collect();
            image::RgbImage::from_fn(20, 20, |x, y| {
                let v = texture[(y * 20 + x) as usize];
                image::Rgb([v + tint[0], v + tint[1], v + tint[2]])
            })
            .save(d.join(format!("{name}_{i}.png")))
            .unwrap();
        }
    }
}

fn train(data: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        "20",
        "--channels",
        "4,8",
        "--embed-dim",
        "8",
        "--epochs",
        "8",
        "--steps-per-epoch",
        "4",
        "--batch",
        "16",
        "--cpu",
    ];
    args.extend_from_slice(extra);
    let o = glassnet(&args);
    assert!(o.status.success(), "{}", text(&o));
}

/// (folder the image is in, nearest class, distance) per image under `data`.
fn predict(model: &Path, data: &Path, device: &str) -> Vec<(String, String, f64)> {
    predict_json(model, &[data], &[device])
        .iter()
        .map(|r| {
            let path = Path::new(r["path"].as_str().unwrap());
            let folder = path.parent().and_then(|p| p.file_name()).unwrap();
            (
                folder.to_string_lossy().into_owned(),
                r["nearest_class"].as_str().unwrap().to_string(),
                r["distance"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn accuracy(rows: &[(String, String, f64)]) -> f64 {
    rows.iter().filter(|(a, p, _)| a == p).count() as f64 / rows.len() as f64
}

#[test]
fn a_set_told_apart_by_colour_trains_in_colour_and_predict_replays_it() {
    let root = tmpdir("colour", "hue");
    let (data, test) = (root.join("data"), root.join("test"));
    tinted_set(&data, 16, 1);
    tinted_set(&test, 20, 2);

    let model = root.join("model");
    train(&data, &model, &[]);
    let m = metadata(&model);
    assert_eq!(m["preprocess"]["colour"], "rgb", "auto found the colour");
    assert_eq!(m["arch"]["in_channels"], 3);
    let cpu = predict(&model, &test, "--cpu");
    assert_eq!(cpu.len(), 40);
    let acc = accuracy(&cpu);
    assert!(
        acc >= 0.9,
        "colour model: 1-NN accuracy {acc} on unseen images"
    );
    if common::gpu().is_some() || common::in_ci() {
        for ((_, cc, dc), (_, gc, dg)) in cpu.iter().zip(&predict(&model, &test, "--gpu")) {
            assert_eq!(cc, gc);
            assert!(
                (dc - dg).abs() <= 1e-4,
                "distance {dc} on the CPU, {dg} on the GPU"
            );
        }
    }
    // The export checks itself against the CPU engine before writing; its sidecar names the
    // three planes.
    let onnx = root.join("m.onnx");
    let o = glassnet(&[
        "export",
        "--model",
        model.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("m.json")).unwrap()).unwrap();
    assert_eq!(sidecar["input"]["shape"][1], "3");

    // A grey file is three equal planes to a colour model: predicted, not refused.
    let grey = root.join("grey.png");
    image::GrayImage::from_fn(20, 20, |x, y| image::Luma([(x * 9 + y * 3) as u8]))
        .save(&grey)
        .unwrap();
    let o = glassnet(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        grey.to_str().unwrap(),
        "--cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o));

    // Read as grey, the same images carry no class: near chance.
    let grey_model = root.join("grey-model");
    train(&data, &grey_model, &["--colour", "grey"]);
    let g = metadata(&grey_model);
    assert_eq!(
        (
            g["preprocess"]["colour"].as_str(),
            g["arch"]["in_channels"].as_u64()
        ),
        (Some("grey"), Some(1))
    );
    let acc = accuracy(&predict(&grey_model, &test, "--cpu"));
    assert!(
        acc <= 0.75,
        "grey model: accuracy {acc}, the set is not colour-only"
    );

    // Metadata whose preprocessing and network disagree on the planes is refused by name.
    let path = model.join("metadata.json");
    let mut bad = metadata(&model);
    bad["preprocess"]["colour"] = "grey".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&bad).unwrap()).unwrap();
    let o = glassnet(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        grey.to_str().unwrap(),
        "--cpu",
    ]);
    fails_with(&o, "preprocess.colour");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_bad_colour_flag_is_named() {
    let o = glassnet(&["train", "--colour", "purple", "--epochs", "1"]);
    fails_with(&o, "--colour");
}
