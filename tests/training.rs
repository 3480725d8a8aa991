//! Short training runs through `train::train` on both backends: the loss falls and the
//! held-out images are classified; the checkpoint round-trips exactly.

mod common;
use std::sync::Arc;

use glassnet::checkpoint::{
    load_model, read_train_checkpoint, write_model, write_train_checkpoint, Metadata, Model,
    FORMAT, FORMAT_VERSION,
};
use glassnet::data::Dataset;
use glassnet::engine::cpu::{CpuEngine, CpuKind};
use glassnet::engine::gpu::GpuEngine;
use glassnet::engine::Engine;
use glassnet::fsio::Staging;
use glassnet::model::{init_params, Arch, Head, ParamLayout};
use glassnet::train::{train, train_resumable, Recipe, TrainConfig, TrainState};
use rand::{Rng, SeedableRng};

/// Three classes of 20x20 images with noise: a bright blob, a dark stripe, plain.
fn toy(n_per_class: usize, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let side = 20;
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for c in 0..3u32 {
        for _ in 0..n_per_class {
            let (cx, cy) = (
                rng.random_range(5..15) as f32,
                rng.random_range(5..15) as f32,
            );
            for y in 0..side {
                for x in 0..side {
                    let noise = rng.random_range(-0.3f32..0.3);
                    let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                    let v = match c {
                        0 if dx * dx + dy * dy < 9.0 => 0.8,
                        1 if dx.abs() < 1.5 => -0.9,
                        _ => -0.2,
                    };
                    images.push((v + noise).clamp(-1.0, 1.0));
                }
            }
            labels.push(c);
        }
    }
    Dataset {
        side,
        channels: 1,
        images,
        labels,
        classes: vec!["blob".into(), "stripe".into(), "plain".into()],
        paths: vec![],
    }
}

fn config() -> TrainConfig {
    let mut c = TrainConfig::preset(Recipe::Robust);
    c.epochs = 6;
    c.steps_per_epoch = 6;
    c.batch_images = 24;
    c.patience = 0;
    c.optim.lr = 3e-3;
    c
}

fn arch() -> Arch {
    Arch {
        side: 20,
        channels: vec![6, 12],
        kernels: vec![3, 3],
        embed_dim: 8,
        head: Head::L2,
        objective: Default::default(),
        pooling: Default::default(),
        norm: Default::default(),
        in_channels: 1,
    }
}

/// The best held-out balanced accuracy over the epochs of a run.
fn best_balanced(out: &glassnet::train::TrainOutcome) -> f64 {
    out.history
        .iter()
        .filter_map(|r| r.val)
        .map(|v| v.balanced_accuracy)
        .fold(0.0, f64::max)
}

fn check_run(engine: &mut dyn Engine, name: &str) {
    let (tr, val) = (toy(20, 1), toy(8, 2));
    let out = train(engine, &tr, Some(&val), &config(), &mut ()).unwrap();
    // Batch-all averages over the active triplets, so the loss over all valid triplets
    // (loss x active fraction) is what must fall.
    let over_valid = |r: &glassnet::train::EpochRecord| r.loss * r.active;
    let (first, last) = (
        over_valid(&out.history[0]),
        over_valid(out.history.last().unwrap()),
    );
    assert!(
        last < first * 0.5,
        "{name}: loss over valid triplets did not fall: {first} -> {last}"
    );
    let best = best_balanced(&out);
    assert!(
        best >= 0.9,
        "{name}: best held-out balanced accuracy {best}"
    );
    assert!(out.collapse.is_none(), "{name}: {:?}", out.collapse);
}

#[test]
fn short_run_learns_on_the_cpu() {
    let a = arch();
    let p = init_params(&a, &ParamLayout::new(&a), 1);
    check_run(&mut CpuEngine::new(&a, &p, CpuKind::Fast).unwrap(), "cpu");
}

#[test]
fn short_run_learns_on_the_gpu() {
    let Some(ctx) = common::gpu() else { return };
    let a = arch();
    let p = init_params(&a, &ParamLayout::new(&a), 1);
    check_run(
        &mut GpuEngine::new(Arc::clone(&ctx), &a, &p).unwrap(),
        "gpu",
    );
}

/// The Siamese objective (the paper's comparison) trains through the same loop: its loss
/// (binary cross-entropy, ln 2 for a coin flip) falls and its embedding classifies by 1-NN.
fn check_siamese(engine: &mut dyn Engine, name: &str) {
    let (tr, val) = (toy(20, 1), toy(8, 2));
    let mut cfg = config();
    cfg.epochs = 10;
    let out = train(engine, &tr, Some(&val), &cfg, &mut ()).unwrap();
    let (first, last) = (out.history[0].loss, out.history.last().unwrap().loss);
    assert!(
        last < first * 0.7 && last < 0.5,
        "{name}: Siamese loss did not fall: {first} -> {last}"
    );
    let best = best_balanced(&out);
    assert!(
        best >= 0.9,
        "{name}: Siamese held-out balanced accuracy {best}"
    );
}

#[test]
fn siamese_run_learns_on_both_backends() {
    let a = Arch {
        objective: glassnet::model::Objective::Siamese,
        pooling: Default::default(),
        ..arch()
    };
    let p = init_params(&a, &ParamLayout::new(&a), 1);
    check_siamese(&mut CpuEngine::new(&a, &p, CpuKind::Fast).unwrap(), "cpu");
    let Some(ctx) = common::gpu() else { return };
    check_siamese(
        &mut GpuEngine::new(Arc::clone(&ctx), &a, &p).unwrap(),
        "gpu",
    );
}

#[test]
fn checkpoint_round_trip_is_exact() {
    let a = arch();
    let params = init_params(&a, &ParamLayout::new(&a), 9);
    let model = Model {
        meta: Metadata {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            glassnet_version: "test".into(),
            arch: a.clone(),
            classes: vec!["x".into(), "y".into()],
            preprocess: glassnet::data::preprocess::Preprocess::resize_only(a.side),
            normalisation: "test".into(),
            training: TrainConfig {
                seed: 9,
                ..config()
            },
            seed: 9,
            device: "cpu".into(),
            data: "toy".into(),
            best_epoch: 1,
            validation: None,
            rejection: None,
            good: None,
            input: None,
            gallery_edits: Vec::new(),
        },
        params: params.clone(),
        gallery: (0..24).map(|i| i as f32 * 0.5).collect(),
        gallery_labels: vec![0, 1, 1],
    };
    let dir = std::env::temp_dir().join(format!("glassnet-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let stage = Staging::new(&dir).unwrap();
    write_model(&stage, &model).unwrap();
    assert!(!dir.exists(), "nothing visible before commit");
    stage.commit().unwrap();
    let back = load_model(&dir).unwrap();
    assert_eq!(back.params, params);
    assert_eq!(back.gallery, model.gallery);
    assert_eq!(back.gallery_labels, model.gallery_labels);
    assert_eq!(back.meta.arch, a);
    assert_eq!(back.meta.training, model.meta.training);
    // A staging folder dropped without commit leaves nothing behind.
    let dir2 = dir.with_extension("aborted");
    {
        let s = Staging::new(&dir2).unwrap();
        write_model(&s, &model).unwrap();
    }
    assert!(!dir2.exists());
    let parent = dir2.parent().unwrap();
    assert!(!std::fs::read_dir(parent).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("aborted.partial")));
}

#[test]
fn automatic_epochs_pass_over_the_set_with_a_floor() {
    use glassnet::train::MIN_STEPS_PER_EPOCH;
    let c = TrainConfig::preset(Recipe::Robust);
    assert_eq!(c.steps_per_epoch, 0);
    // A large set: one pass of 96-image batches, the last one partial.
    let big = 96 * (MIN_STEPS_PER_EPOCH + 3) + 1;
    assert_eq!(c.steps_for(big), MIN_STEPS_PER_EPOCH + 4);
    // A small one still gets the floor.
    assert_eq!(c.steps_for(640), MIN_STEPS_PER_EPOCH);
    // The paper's fixed 15 steps (450 triplets) stay as they are.
    assert_eq!(TrainConfig::preset(Recipe::Paper).steps_for(640), 15);
    let mut fixed = c.clone();
    fixed.steps_per_epoch = 3;
    assert_eq!(fixed.steps_for(big), 3);
}

/// Trains `cfg.epochs` straight and again resumed from the checkpoint of epoch 2 (on a fresh
/// engine, as a new process would); returns (straight, resumed) final parameters.
fn straight_and_resumed(
    mut engine: impl FnMut() -> Box<dyn Engine>,
    cfg: &TrainConfig,
) -> (Vec<f32>, Vec<f32>, usize) {
    let (tr, val) = (toy(12, 1), toy(4, 2));
    let mut states = Vec::new();
    let straight = train_resumable(
        engine().as_mut(),
        &tr,
        Some(&val),
        cfg,
        &mut (),
        None,
        &mut |s: &TrainState| {
            states.push(s.clone());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(states.len(), cfg.epochs, "a checkpoint per epoch");
    // Through the file, as --resume reads it.
    let path = std::env::temp_dir().join(format!("glassnet-state-{}", std::process::id()));
    let run = serde_json::json!({"test": 1});
    write_train_checkpoint(&path, &states[1], &run).unwrap();
    let (state, run_back) = read_train_checkpoint(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(state, states[1], "the checkpoint file round-trips exactly");
    assert_eq!(run_back, run);
    let resumed = train_resumable(
        engine().as_mut(),
        &tr,
        Some(&val),
        cfg,
        &mut (),
        Some(state),
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!(resumed.history.len(), straight.history.len());
    assert_eq!(resumed.best_epoch, straight.best_epoch);
    (straight.params, resumed.params, straight.best_epoch)
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let a = arch();
    let p = init_params(&a, &ParamLayout::new(&a), 3);
    // Adam with the schedule, and SGD (its state is one moment).
    let mut sgd = config();
    sgd.optim.kind = glassnet::optim::OptimizerKind::Sgd;
    for cfg in [config(), sgd] {
        let cpu =
            || -> Box<dyn Engine> { Box::new(CpuEngine::new(&a, &p, CpuKind::Fast).unwrap()) };
        let (straight, resumed, _) = straight_and_resumed(cpu, &cfg);
        assert!(
            straight == resumed,
            "{:?}: CPU weights differ after resuming",
            cfg.optim.kind
        );
    }
    let Some(ctx) = common::gpu() else { return };
    let gpu = || -> Box<dyn Engine> { Box::new(GpuEngine::new(Arc::clone(&ctx), &a, &p).unwrap()) };
    let (straight, resumed, _) = straight_and_resumed(gpu, &config());
    let diff = straight
        .iter()
        .zip(&resumed)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-5, "GPU weights differ by {diff} after resuming");
}

#[test]
fn a_state_of_another_run_is_refused() {
    let a = arch();
    let p = init_params(&a, &ParamLayout::new(&a), 3);
    let (tr, cfg) = (toy(12, 1), config());
    let mut states = Vec::new();
    let mut engine = CpuEngine::new(&a, &p, CpuKind::Fast).unwrap();
    train_resumable(
        &mut engine,
        &tr,
        None,
        &cfg,
        &mut (),
        None,
        &mut |s: &TrainState| {
            states.push(s.clone());
            Ok(())
        },
    )
    .unwrap();
    let good = states[2].clone();
    let mut cases: Vec<(TrainState, &str)> = Vec::new();
    let mut s = good.clone();
    s.cursor.step += 1;
    cases.push((s, "step"));
    let mut s = good.clone();
    s.cursor.epochs_done = cfg.epochs + 1;
    cases.push((s, "epochs_done"));
    let mut s = good.clone();
    s.m.pop();
    cases.push((s, "tensor m"));
    let mut s = good.clone();
    s.params[7] = f32::NAN;
    cases.push((s, "tensor params"));
    let mut s = good.clone();
    s.cursor.history.pop();
    cases.push((s, "history"));
    let mut s = good.clone();
    s.cursor.rng.word_pos = "x".into();
    cases.push((s, "word_pos"));
    let mut s = good;
    s.cursor.sampler.as_mut().unwrap().k += 1;
    cases.push((s, "sampler"));
    for (state, field) in cases {
        let mut e = CpuEngine::new(&a, &p, CpuKind::Fast).unwrap();
        let err = train_resumable(&mut e, &tr, None, &cfg, &mut (), Some(state), &mut |_| {
            Ok(())
        })
        .err()
        .unwrap_or_else(|| panic!("a state with a bad {field} was accepted"))
        .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}
