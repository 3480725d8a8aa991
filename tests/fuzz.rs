//! Seeded, structure-aware mutation fuzzing of what glassnet reads from outside: images
//! (png, jpeg, bmp, tiff), model folders (metadata.json + two safetensors files) and
//! evaluate's fold files. Every input must give Ok or an error, never a panic, and none may
//! take a second. Seeds come from tests/fuzz-corpus/ (kept in the repository; a saved crash
//! goes there too). cargo-fuzz needs a nightly toolchain, which this project does not use.
//!
//!   cargo test --release --test fuzz                      # CI: 20,000 executions per harness
//!   FUZZ_EXECS=1000000 [FUZZ_SEED=1] cargo test --release --test fuzz long_fuzz_run -- --ignored --nocapture

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glassnet::checkpoint::{parse_model, write_model, Metadata, Model, FORMAT, FORMAT_VERSION};
use glassnet::data::folder::decode_grey_bytes;
use glassnet::data::preprocess::Preprocess;
use glassnet::data::Dataset;
use glassnet::eval::cv::{check_fold, CvConfig, FoldResult, Method, RowResult};
use glassnet::metric::scores::Confusion;
use glassnet::model::{init_params, Arch, Head, ParamLayout};
use glassnet::train::{Recipe, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

/// Values that break parsers: zero, one, the sign bit, the largest, and sizes near limits.
const INTERESTING: [u32; 9] = [
    0,
    1,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 20,
];

/// One to four byte-level edits: bit flips, interesting values, insertions, deletions,
/// truncation, a duplicated range.
fn mutate_bytes(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let n = b.len();
        match rng.random_range(0..7) {
            0 if n > 0 => {
                let i = rng.random_range(0..n);
                b[i] ^= 1 << rng.random_range(0..8);
            }
            1 if n > 0 => {
                let i = rng.random_range(0..n);
                b[i] = INTERESTING[rng.random_range(0..INTERESTING.len())] as u8;
            }
            2 if n >= 4 => {
                let i = rng.random_range(0..n - 3);
                let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let bytes = if rng.random() {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                b[i..i + 4].copy_from_slice(&bytes);
            }
            3 => {
                let i = rng.random_range(0..=n);
                let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                b.splice(i..i, extra);
            }
            4 if n > 1 => {
                let i = rng.random_range(0..n);
                let j = (i + rng.random_range(1..64)).min(n);
                b.drain(i..j);
            }
            5 if n > 0 => b.truncate(rng.random_range(0..n)),
            6 if n > 1 => {
                let i = rng.random_range(0..n);
                let j = (i + rng.random_range(1..256)).min(n);
                let part = b[i..j].to_vec();
                let at = rng.random_range(0..=b.len());
                b.splice(at..at, part);
            }
            _ => {}
        }
    }
    b
}

/// A random JSON value of the kinds a field could wrongly hold.
fn odd_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => (-(rng.random_range(0..1000i64))).into(),
        3 => u64::MAX.into(),
        4 => 1e308.into(),
        5 => rng.random_range(0..8u64).into(),
        6 => "".into(),
        7 => Value::Array(vec![]),
        8 => serde_json::json!({"x": 1}),
        _ => "\u{0}\u{ffff},\"".into(),
    }
}

/// Replaces one node of `v` (chosen by a random walk) with an odd value, or removes it.
fn mutate_node(rng: &mut ChaCha8Rng, v: &mut Value) {
    let deeper = rng.random_range(0..4) != 0;
    match v {
        Value::Object(m) if !m.is_empty() && deeper => {
            let k = m.keys().nth(rng.random_range(0..m.len())).unwrap().clone();
            if rng.random_range(0..6) == 0 {
                m.remove(&k);
            } else {
                mutate_node(rng, m.get_mut(&k).unwrap());
            }
        }
        Value::Array(a) if !a.is_empty() && deeper => {
            let i = rng.random_range(0..a.len());
            match rng.random_range(0..6) {
                0 => {
                    a.remove(i);
                }
                1 => {
                    let dup = a[i].clone();
                    a.push(dup);
                }
                _ => mutate_node(rng, &mut a[i]),
            }
        }
        _ => *v = odd_value(rng),
    }
}

/// JSON mutated by structure (half the time) or as bytes.
fn mutate_json(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    if rng.random() {
        let mut v: Value = serde_json::from_slice(seed).unwrap();
        for _ in 0..rng.random_range(1..=3) {
            mutate_node(rng, &mut v);
        }
        serde_json::to_vec(&v).unwrap()
    } else {
        mutate_bytes(rng, seed)
    }
}

struct Report {
    execs: u64,
    ok: u64,
    slowest: Duration,
}

/// Runs `exec` on `n` inputs from `input`; a panic or an input that takes a second fails the
/// test, with the input saved under target/fuzz-failures/ for the corpus.
fn fuzz(
    name: &str,
    n: u64,
    mut input: impl FnMut(&mut ChaCha8Rng) -> Vec<Vec<u8>>,
    exec: impl Fn(&[Vec<u8>]) -> bool,
) -> Report {
    // FUZZ_SEED picks another stream of inputs for a long run.
    let extra: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(0xf022 ^ name.len() as u64 ^ extra << 8);
    let mut report = Report {
        execs: 0,
        ok: 0,
        slowest: Duration::ZERO,
    };
    let failures = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    for i in 0..n {
        let parts = input(&mut rng);
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| exec(&parts)));
        let took = t.elapsed();
        report.execs += 1;
        report.slowest = report.slowest.max(took);
        let why = match outcome {
            Ok(ok) => {
                report.ok += ok as u64;
                (took > Duration::from_secs(1)).then(|| format!("took {took:?}"))
            }
            Err(_) => Some("panicked".to_string()),
        };
        if let Some(why) = why {
            std::fs::create_dir_all(&failures).unwrap();
            for (k, p) in parts.iter().enumerate() {
                std::fs::write(failures.join(format!("{name}-{i}-{k}")), p).unwrap();
            }
            panic!("{name}: input {i} {why}; saved in {}", failures.display());
        }
    }
    eprintln!(
        "{name}: {} executions, {} accepted, {} refused, slowest {:.1} ms",
        report.execs,
        report.ok,
        report.execs - report.ok,
        report.slowest.as_secs_f64() * 1e3
    );
    report
}

fn read_dir_sorted(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with --ignored regenerate_corpus)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn images(n: u64) -> Report {
    let seeds = read_dir_sorted(&corpus().join("images"));
    assert!(seeds.len() >= 4, "the image corpus holds every format");
    let pre = Preprocess::resize_only(16);
    fuzz(
        "images",
        n,
        |rng| {
            let k = rng.random_range(0..seeds.len());
            vec![mutate_bytes(rng, &seeds[k])]
        },
        |p| {
            decode_grey_bytes(&p[0], "fuzz")
                .map(|img| pre.apply(&img))
                .is_ok()
        },
    )
}

const MODEL_FILES: [&str; 3] = ["metadata.json", "model.safetensors", "gallery.safetensors"];

fn models(n: u64) -> Report {
    let dir = corpus().join("model");
    let seeds: Vec<Vec<u8>> = MODEL_FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    parse_model(&dir, &seeds[0], &seeds[1], &seeds[2]).expect("the seed model loads");
    fuzz(
        "model",
        n,
        |rng| {
            let mut parts = seeds.clone();
            let k = rng.random_range(0..3);
            parts[k] = if k == 0 {
                mutate_json(rng, &seeds[0])
            } else {
                mutate_bytes(rng, &seeds[k])
            };
            parts
        },
        |p| parse_model(Path::new("fuzz"), &p[0], &p[1], &p[2]).is_ok(),
    )
}

/// The dataset and settings the corpus's fold file belongs to: 3 classes of 10 labels.
fn fold_setting() -> (Dataset, CvConfig) {
    let labels: Vec<u32> = (0..30).map(|i| i % 3).collect();
    let data = Dataset {
        side: 4,
        channels: 1,
        images: vec![0.0; 30 * 16],
        labels,
        classes: vec!["a".into(), "b".into(), "c".into()],
        paths: vec![],
    };
    let cfg = CvConfig {
        folds: 3,
        seed: 5,
        methods: vec![Method::Knn],
        train: TrainConfig::preset(Recipe::Robust),
        svm_c: 1.0,
        train_per_class: None,
        good: None,
        tta: false,
    };
    (data, cfg)
}

fn folds(n: u64) -> Report {
    let seed = std::fs::read(corpus().join("folds/fold-01.json")).unwrap();
    let (data, cfg) = fold_setting();
    let check = |b: &[u8]| {
        serde_json::from_slice::<FoldResult>(b)
            .ok()
            .is_some_and(|r| check_fold(&r, 0, &data, &cfg).is_ok())
    };
    assert!(check(&seed), "the seed fold file passes");
    fuzz(
        "folds",
        n,
        |rng| vec![mutate_json(rng, &seed)],
        |p| check(&p[0]),
    )
}

#[test]
fn loaders_survive_mutated_inputs() {
    for run in [images, models, folds] {
        let r = run(20_000);
        // Mutations must reach past the first check: some inputs are still accepted.
        assert!(
            r.ok > 0 && r.ok < r.execs,
            "{} of {} accepted",
            r.ok,
            r.execs
        );
    }
}

/// The documented long run (docs/RELIABILITY.md): FUZZ_EXECS per harness (1,000,000).
#[test]
#[ignore]
fn long_fuzz_run() {
    let n = std::env::var("FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    for run in [images, models, folds] {
        run(n);
    }
    eprintln!(
        "{n} executions per harness in {:.0} s",
        t.elapsed().as_secs_f64()
    );
}

/// Writes the seed corpus (run once; the files are committed).
#[test]
#[ignore]
fn regenerate_corpus() {
    let root = corpus();
    let img_dir = root.join("images");
    std::fs::create_dir_all(&img_dir).unwrap();
    let img = image::GrayImage::from_fn(24, 18, |x, y| {
        image::Luma([((x * 9 + y * 5 + (x * y) % 11) % 256) as u8])
    });
    for (fmt, ext) in [
        (image::ImageFormat::Png, "png"),
        (image::ImageFormat::Jpeg, "jpg"),
        (image::ImageFormat::Bmp, "bmp"),
        (image::ImageFormat::Tiff, "tif"),
    ] {
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(img.clone())
            .write_to(&mut out, fmt)
            .unwrap();
        std::fs::write(img_dir.join(format!("seed.{ext}")), out.into_inner()).unwrap();
    }
    // A tiny model: 16 px, one 3x3x2 block, a 4-d embedding, 6 gallery images.
    let arch = Arch {
        side: 16,
        channels: vec![2],
        kernels: vec![3],
        embed_dim: 4,
        head: Head::L2,
        objective: Default::default(),
        pooling: Default::default(),
        norm: Default::default(),
        in_channels: 1,
    };
    let params = init_params(&arch, &ParamLayout::new(&arch), 1);
    let model = Model {
        meta: Metadata {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            glassnet_version: "fuzz".into(),
            arch: arch.clone(),
            classes: vec!["good".into(), "dent".into()],
            preprocess: Preprocess::resize_only(16),
            normalisation: "x * 2 - 1".into(),
            training: TrainConfig::preset(Recipe::Robust),
            seed: 0,
            device: "cpu".into(),
            data: "fuzz seed".into(),
            best_epoch: 1,
            validation: None,
            rejection: None,
            good: None,
            input: None,
            gallery_edits: Vec::new(),
        },
        params,
        gallery: (0..24).map(|i| (i as f32 * 0.37).sin()).collect(),
        gallery_labels: vec![0, 1, 0, 1, 1, 0],
    };
    let stage = glassnet::fsio::Staging::new(&root.join("model-new")).unwrap();
    write_model(&stage, &model).unwrap();
    let dir = stage.commit().unwrap();
    let _ = std::fs::remove_dir_all(root.join("model"));
    std::fs::rename(dir, root.join("model")).unwrap();
    // A fold file of fold_setting(): fold 1's test labels and one row per method.
    let (data, cfg) = fold_setting();
    let fold_of = glassnet::data::split::stratified_folds(&data.labels, 3, cfg.folds, cfg.seed);
    let test: Vec<u32> = (0..30)
        .filter(|&i| fold_of[i] == 0)
        .map(|i| data.labels[i])
        .collect();
    let pred: Vec<u32> = test.iter().map(|&l| (l + (l == 2) as u32) % 3).collect();
    let fold = FoldResult {
        fold: 0,
        test_labels: test.clone(),
        train_counts: vec![],
        rows: vec![RowResult {
            row: "pixels k-NN".into(),
            confusion: Confusion::from_labels(&test, &pred, 3),
            train_seconds: 0.5,
            infer_seconds: 0.01,
        }],
        networks: vec![],
    };
    std::fs::create_dir_all(root.join("folds")).unwrap();
    std::fs::write(
        root.join("folds/fold-01.json"),
        serde_json::to_vec_pretty(&fold).unwrap(),
    )
    .unwrap();
}
