//! `glassnet train`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{load_dataset_and_frames, progress::Bar, DataArgs, DeviceArgs};
use crate::checkpoint::{
    identity_diff, read_train_checkpoint, write_model, write_train_checkpoint, Metadata, Model,
    FORMAT, FORMAT_VERSION, TRAIN_CHECKPOINT,
};
use crate::data::augment::{Augment, Jitter};
use crate::data::split::stratified_split;
use crate::device::open_engine;
use crate::fsio::{remove_stale, Staging};
use crate::metric::knn::knn;
use crate::metric::openset::{calibrate, ThresholdSource};
use crate::metric::scores::{Confusion, Scores};
use crate::model::{init_params, Arch, Head, Norm, Objective, ParamLayout, Pooling};
use crate::optim::OptimizerKind;
use crate::train::{train_resumable, Recipe, SamplerKind, TrainConfig, TrainState};

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// Output directory (default: runs/train-<unix time>). Must not exist or be empty.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the interrupted run of this output directory from its last checkpoint
    /// (written after every epoch); give the flags the run was started with.
    #[arg(long, value_name = "DIR", conflicts_with = "restart")]
    resume: Option<PathBuf>,
    /// Discard an interrupted run of --out and start over.
    #[arg(long)]
    restart: bool,
    /// Fraction of each class held out for validation.
    #[arg(long, default_value_t = 0.2)]
    val_fraction: f64,
    /// Fraction of known images `predict` should accept: each class's "unknown" threshold
    /// is the distance this fraction of its validation images stays within.
    #[arg(long, default_value_t = 0.95, value_parser = super::known_recall)]
    known_recall: f64,
    /// The defect-free class: predict then calls a part good only when its nearest good
    /// image is nearer than its nearest defect image by the bias calibrated on the
    /// validation defects for --max-escape (a defect called good is the costly mistake).
    #[arg(long, value_name = "CLASS")]
    good_class: Option<String>,
    /// With --good-class: the fraction of defects that may be called good.
    #[arg(long, default_value_t = 0.01, requires = "good_class")]
    max_escape: f64,
    #[command(flatten)]
    pre: super::PreprocessArgs,
    /// With --crop: train on the whole frame of each training image too, not only its crop,
    /// so a defect the crop misses (and predict then sees whole) has been seen whole.
    #[arg(long)]
    crop_views: bool,
    #[command(flatten)]
    pub recipe: RecipeArgs,
}

/// The training settings, shared by `train` and `evaluate`.
#[derive(Args, Debug, Clone)]
pub struct RecipeArgs {
    /// Starting point for every setting below: robust (default) or the paper's recipe.
    #[arg(long, value_enum, default_value_t = Recipe::Robust)]
    recipe: Recipe,
    /// Embedding head: l2 (unit sphere) or sigmoid (the paper's).
    #[arg(long, value_enum)]
    head: Option<Head>,
    /// Triplet margin on squared distances.
    #[arg(long)]
    margin: Option<f32>,
    /// random (the paper's triplets), batch-hard or semi-hard (mining in class-balanced batches).
    #[arg(long, value_enum)]
    sampler: Option<SamplerKind>,
    /// Images per batch for the mining samplers.
    #[arg(long)]
    batch: Option<usize>,
    /// Triplets per batch for the random sampler.
    #[arg(long)]
    triplets_per_batch: Option<usize>,
    #[arg(long)]
    epochs: Option<usize>,
    /// Steps per epoch (default: one pass over the training images, at least 16; the paper: 15).
    #[arg(long)]
    steps_per_epoch: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f32>,
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Keep the learning rate constant (no warm-up or cosine decay).
    #[arg(long)]
    constant_lr: bool,
    /// none, flip, or dihedral (flips and 90-degree rotations). Use none or flip when a
    /// class's meaning depends on orientation.
    #[arg(long, value_enum)]
    augment: Option<Augment>,
    /// Brightness jitter: adds up to +-this to the grey level in [0, 1] (0: off).
    #[arg(long, default_value_t = 0.0)]
    jitter_brightness: f32,
    /// Contrast jitter: scales the grey level about the image mean by 1 +- up to this (0: off).
    #[arg(long, default_value_t = 0.0)]
    jitter_contrast: f32,
    /// Gamma jitter: raises the grey level to exp(+- up to this) (0: off).
    #[arg(long, default_value_t = 0.0)]
    jitter_gamma: f32,
    /// Shift jitter: moves the image by up to this fraction of its side, edges mirrored
    /// (0: off).
    #[arg(long, default_value_t = 0.0)]
    jitter_shift: f32,
    /// Rotation jitter: turns the image by up to this many degrees either way, bilinear,
    /// edges mirrored (0: off).
    #[arg(long, default_value_t = 0.0)]
    jitter_rotate: f32,
    /// Random resized crop: a square window of 1 - up to this of the side, anywhere in the
    /// image, stretched back to the whole side, bilinear (0: off; at most 0.5).
    #[arg(long, default_value_t = 0.0)]
    jitter_scale: f32,
    /// Epochs without a better validation score before stopping (0: never).
    #[arg(long)]
    patience: Option<usize>,
    /// What the embedding is trained for: triplet (the paper's metric network) or siamese
    /// (its Eq. 1 pair classifier, for comparison).
    #[arg(long, value_enum, default_value_t = Objective::Triplet)]
    objective: Objective,
    /// Seed for initialisation, split, sampling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Conv channels per block, comma-separated (default 16,32,64,128).
    #[arg(long, value_delimiter = ',')]
    channels: Option<Vec<usize>>,
    /// Embedding size (default 64).
    #[arg(long)]
    embed_dim: Option<usize>,
    /// What the dense layer reads: avg-max (each channel's global mean and maximum:
    /// position-free, 25x fewer weights; the robust recipe's default) or flatten (the
    /// paper's whole last map, position-bound; --recipe paper's default).
    #[arg(long, value_enum)]
    pooling: Option<Pooling>,
    /// What follows each convolution: batch (batch normalisation: batch statistics in
    /// training, running statistics folded into the convolution at inference and in the ONNX
    /// export; the robust recipe's default) or none (the paper's; --recipe paper's default).
    #[arg(long, value_enum)]
    norm: Option<Norm>,
    /// Network input side in pixels (default 112).
    #[arg(long, default_value_t = 112)]
    size: usize,
}

impl RecipeArgs {
    /// The recipe's settings with each given flag on top.
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        let mut c = TrainConfig::preset(self.recipe);
        c.seed = self.seed;
        if let Some(v) = self.head {
            c.head = v;
        }
        if let Some(v) = self.margin {
            anyhow::ensure!(
                v.is_finite() && v >= 0.0,
                "--margin {v}: must be a finite number >= 0"
            );
            c.margin = v;
        }
        if let Some(v) = self.sampler {
            c.sampler = v;
        }
        if let Some(v) = self.batch {
            anyhow::ensure!(v >= 4, "--batch {v}: at least 4 images");
            c.batch_images = v;
        }
        if let Some(v) = self.triplets_per_batch {
            anyhow::ensure!(v >= 1, "--triplets-per-batch {v}: at least 1");
            c.triplets_per_batch = v;
        }
        if let Some(v) = self.epochs {
            anyhow::ensure!(v >= 1, "--epochs {v}: at least 1");
            c.epochs = v;
        }
        if let Some(v) = self.steps_per_epoch {
            anyhow::ensure!(v >= 1, "--steps-per-epoch {v}: at least 1");
            c.steps_per_epoch = v;
        }
        if let Some(v) = self.lr {
            anyhow::ensure!(
                v.is_finite() && v > 0.0,
                "--lr {v}: must be a positive number"
            );
            c.optim.lr = v;
        }
        if let Some(v) = self.optimizer {
            c.optim.kind = v;
        }
        if self.constant_lr {
            c.optim.constant = true;
        }
        if let Some(v) = self.augment {
            c.augment = v;
        }
        c.jitter = Jitter {
            brightness: self.jitter_brightness,
            contrast: self.jitter_contrast,
            gamma: self.jitter_gamma,
            shift: self.jitter_shift,
            rotate: self.jitter_rotate,
            scale: self.jitter_scale,
        };
        c.jitter.check().map_err(anyhow::Error::msg)?;
        if let Some(v) = self.patience {
            c.patience = v;
        }
        Ok(c)
    }

    pub fn arch(&self, head: Head) -> anyhow::Result<Arch> {
        let mut a = Arch::reference(head);
        a.side = self.size;
        a.objective = self.objective;
        a.pooling = self.pooling.unwrap_or(self.recipe.pooling());
        a.norm = self.norm.unwrap_or(self.recipe.norm());
        if let Some(ch) = &self.channels {
            a.kernels = (0..ch.len()).map(|i| if i == 0 { 5 } else { 3 }).collect();
            a.channels = ch.clone();
        }
        if let Some(e) = self.embed_dim {
            a.embed_dim = e;
        }
        a.validate()
            .map_err(|e| anyhow::anyhow!("--channels/--embed-dim/--size: {e}"))?;
        Ok(a)
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let cfg = args.recipe.config()?;
    let mut arch = args.recipe.arch(cfg.head)?;
    check_flags(&args)?;
    let pre = args.pre.build(arch.side, &args.data)?;
    arch.in_channels = pre.channels();
    let out = output_dir(&args)?;
    // Refuse a bad --out or a run left unfinished before spending minutes training.
    let pending = pending_run(&args, &out)?;
    let (data, frames, source) = load_dataset_and_frames(&args.data, &pre, args.crop_views)?;
    data.check_trainable(&source, 2)?;
    let good_class = good_class_index(&args, &data, &source)?;
    let input = crate::data::profile::InputProfile::of(&data.paths)?;
    let (train_set, val_set, source) =
        split_sets(&data, frames.as_ref(), source, args.val_fraction, cfg.seed);
    let identity = serde_json::json!({
        "training": cfg,
        "arch": arch,
        "preprocess": pre,
        "val_fraction": args.val_fraction,
        "crop_views": args.crop_views,
        "data": source,
        "classes": data.classes,
        "train_images": fingerprint(&train_set),
        "val_images": fingerprint(&val_set),
    });
    let (stage, resume) = adopt_pending(pending, &out, &identity, cfg.epochs)?;
    let params = init_params(&arch, &ParamLayout::new(&arch), cfg.seed);
    let (engine, note) = open_engine(args.device.choice(), &arch, &params)?;
    let mut engine = crate::engine::fault::FailAt::from_env(engine);
    if let Some(n) = note {
        eprintln!("{n}");
    }
    print_plan(
        &source,
        &data,
        &train_set,
        &val_set,
        &arch,
        &cfg,
        &engine.describe(),
    );

    let (stage, outcome) = train_keeping_checkpoint(
        engine.as_mut(),
        &train_set,
        &val_set,
        &cfg,
        stage,
        &identity,
        resume,
        &out,
    )?;
    engine.set_params(&outcome.params)?;
    let gallery = engine.embed(&train_set.images)?;
    let cal = if val_set.is_empty() {
        Calibration::default()
    } else {
        let val_emb = engine.embed(&val_set.images)?;
        let sets = EmbeddedSplit {
            gallery: &gallery,
            gallery_labels: &train_set.labels,
            val: &val_emb,
            val_labels: &val_set.labels,
            dim: arch.embed_dim,
        };
        validate_and_calibrate(&sets, &args, good_class, &data.classes, outcome.best_epoch)?
    };
    report_rejection(cal.rejection.as_ref(), &data.classes);
    if let Some(msg) = &outcome.collapse {
        eprintln!("warning: {msg}");
    }
    print_rate(&outcome, &engine.describe());

    let model = Model {
        meta: Metadata {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            glassnet_version: env!("CARGO_PKG_VERSION").into(),
            arch: arch.clone(),
            classes: data.classes.clone(),
            preprocess: pre,
            normalisation: "grey in [0, 1] scaled to [-1, 1] (x * 2 - 1)".into(),
            training: cfg.clone(),
            seed: cfg.seed,
            device: engine.describe(),
            data: source,
            best_epoch: outcome.best_epoch,
            validation: cal.validation,
            rejection: cal.rejection,
            good: cal.good,
            input,
            gallery_edits: Vec::new(),
        },
        params: outcome.params.clone(),
        gallery,
        gallery_labels: train_set.labels.clone(),
    };
    finish(stage, &model, &outcome.history)
}

/// Writes the model, its history and curve into the staging folder, drops the checkpoint
/// and renames the folder into place.
fn finish(
    stage: Staging,
    model: &Model,
    history: &[crate::train::EpochRecord],
) -> anyhow::Result<()> {
    write_model(&stage, model)?;
    write_history(&stage, history)?;
    // The model is finished: a plot that cannot be drawn is no reason to lose it.
    if let Err(e) =
        crate::plot::training_curve(&stage.path("training.png"), "glassnet training", history)
    {
        eprintln!("warning: training.png not written: {e:#}");
    }
    let ckpt = stage.path(TRAIN_CHECKPOINT);
    std::fs::remove_file(&ckpt).with_context(|| format!("removing {}", ckpt.display()))?;
    let dir = stage.commit()?;
    println!("model written to {}", dir.display());
    Ok(())
}

/// The stratified training and validation split; with crop views, the training images'
/// whole frames join the training set (and the data's description says so).
fn split_sets(
    data: &crate::data::Dataset,
    frames: Option<&crate::data::Dataset>,
    source: String,
    val_fraction: f64,
    seed: u64,
) -> (crate::data::Dataset, crate::data::Dataset, String) {
    let (train_idx, val_idx) =
        stratified_split(&data.labels, data.classes.len(), val_fraction, seed);
    let (mut train_set, val_set) = (data.subset(&train_idx), data.subset(&val_idx));
    let mut source = source;
    if let Some(frames) = frames {
        train_set = train_set.joined(&frames.subset(&train_idx));
        source += " (training images as crop and whole frame)";
    }
    (train_set, val_set, source)
}

/// The flags no other step checks, refused before any data is read.
fn check_flags(args: &TrainArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..0.9).contains(&args.val_fraction),
        "--val-fraction {}: must be in [0, 0.9)",
        args.val_fraction
    );
    anyhow::ensure!(
        (0.0..0.5).contains(&args.max_escape),
        "--max-escape {}: a fraction in [0, 0.5)",
        args.max_escape
    );
    anyhow::ensure!(
        args.good_class.is_none() || args.val_fraction > 0.0,
        "--good-class: the bias is calibrated on validation images; --val-fraction 0 leaves none"
    );
    anyhow::ensure!(
        !args.crop_views || args.pre.crop,
        "--crop-views: only with --crop"
    );
    Ok(())
}

/// `--good-class` as a class index of `data`.
fn good_class_index(
    args: &TrainArgs,
    data: &crate::data::Dataset,
    source: &str,
) -> anyhow::Result<Option<u32>> {
    let Some(name) = &args.good_class else {
        return Ok(None);
    };
    super::good_class(name, data, source).map(Some)
}

/// The staging folder to write into, and the state to continue from when resuming (refused
/// when the checkpoint was made with other settings or data).
fn adopt_pending(
    pending: Pending,
    out: &Path,
    identity: &serde_json::Value,
    epochs: usize,
) -> anyhow::Result<(Staging, Option<TrainState>)> {
    match pending {
        Pending::Resume(stale, state, saved) => {
            let diff = identity_diff(&saved, identity);
            anyhow::ensure!(
                diff.is_empty(),
                "--resume {}: the checkpoint in {} was made with other settings or data:\n  {}\nrerun with the flags and data it was started with, or start over with --out {} --restart",
                out.display(),
                stale.display(),
                diff.join("\n  "),
                out.display()
            );
            eprintln!(
                "resuming {} after epoch {} of {} (checkpoint in {})",
                out.display(),
                state.cursor.epochs_done,
                epochs,
                stale.display()
            );
            Ok((Staging::adopt(out, &stale)?, Some(*state)))
        }
        Pending::Fresh(stage) => Ok((stage, None)),
    }
}

/// What the run is about to do, on stderr.
fn print_plan(
    source: &str,
    data: &crate::data::Dataset,
    train_set: &crate::data::Dataset,
    val_set: &crate::data::Dataset,
    arch: &Arch,
    cfg: &TrainConfig,
    device: &str,
) {
    eprintln!("data:   {source}: {}", data.summary());
    eprintln!(
        "split:  {} train, {} validation (stratified, seed {})",
        train_set.len(),
        val_set.len(),
        cfg.seed
    );
    eprintln!("model:  {}", arch.describe());
    eprintln!(
        "recipe: {:?}: margin {}, sampler {:?}, {} epochs, lr {} ({}), augment {:?}{}",
        cfg.recipe,
        cfg.margin,
        cfg.sampler,
        cfg.epochs,
        cfg.optim.lr,
        if cfg.optim.constant {
            "constant"
        } else {
            "warm-up + cosine"
        },
        cfg.augment,
        if cfg.jitter.is_off() {
            String::new()
        } else {
            format!(", jitter {}", cfg.jitter.describe())
        }
    );
    eprintln!("device: {device}");
}

/// Trains with a checkpoint after every epoch. A diverged run has nothing worth keeping; any
/// other failure (a lost GPU, a full disk) keeps the last good checkpoint for --resume.
#[allow(clippy::too_many_arguments)]
fn train_keeping_checkpoint(
    engine: &mut dyn crate::engine::Engine,
    train_set: &crate::data::Dataset,
    val_set: &crate::data::Dataset,
    cfg: &TrainConfig,
    stage: Staging,
    identity: &serde_json::Value,
    resume: Option<TrainState>,
    out: &Path,
) -> anyhow::Result<(Staging, crate::train::TrainOutcome)> {
    let mut bar = Bar::new("");
    let val = (!val_set.is_empty()).then_some(val_set);
    let ckpt = stage.path(TRAIN_CHECKPOINT);
    let mut save = |state: &TrainState| write_train_checkpoint(&ckpt, state, identity);
    let outcome = train_resumable(engine, train_set, val, cfg, &mut bar, resume, &mut save);
    bar.finish();
    match outcome {
        Ok(o) => Ok((stage, o)),
        Err(e @ crate::Error::Diverged(_)) => Err(e.into()),
        Err(e) if ckpt.is_file() => {
            let kept = stage.keep();
            Err(anyhow::Error::new(e).context(format!(
                "training stopped; its last checkpoint is kept in {}: continue with `glassnet train --resume {}` and the same flags",
                kept.display(),
                out.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The trained gallery and the embedded validation split.
struct EmbeddedSplit<'a> {
    gallery: &'a [f32],
    gallery_labels: &'a [u32],
    val: &'a [f32],
    val_labels: &'a [u32],
    dim: usize,
}

/// What the validation split gives the model: its scores, the unknown thresholds and the
/// good-part operating point.
#[derive(Default)]
struct Calibration {
    validation: Option<Scores>,
    rejection: Option<crate::metric::openset::Rejection>,
    good: Option<crate::metric::escape::GoodPoint>,
}

/// Scores the validation split at 1-NN and 5-NN (printed) and calibrates on it.
fn validate_and_calibrate(
    s: &EmbeddedSplit,
    args: &TrainArgs,
    good_class: Option<u32>,
    classes: &[String],
    best_epoch: usize,
) -> anyhow::Result<Calibration> {
    let mut cal = Calibration::default();
    if let Some(class) = good_class {
        cal.good = Some(calibrate_good(s, class, args.max_escape, classes)?);
    }
    for k in [1usize, 5] {
        let nn = knn(s.gallery, s.gallery_labels, s.val, s.dim, k, false);
        if k == 1 {
            cal.rejection = calibrate(&nn, classes.len(), args.known_recall);
        }
        let pred: Vec<u32> = nn.iter().map(|n| n.label).collect();
        let sc = Scores::of(&Confusion::from_labels(s.val_labels, &pred, classes.len()));
        println!(
            "validation {k}-NN: accuracy {:.2}%, balanced accuracy {:.2}%, macro-F1 {:.3} ({} images, best epoch {})",
            sc.accuracy * 100.0,
            sc.balanced_accuracy * 100.0,
            sc.macro_f1,
            s.val_labels.len(),
            best_epoch
        );
        if k == 1 {
            cal.validation = Some(sc);
        }
    }
    Ok(cal)
}

/// How long training took and how fast it went.
fn print_rate(outcome: &crate::train::TrainOutcome, device: &str) {
    let total_images: f64 = outcome
        .history
        .iter()
        .map(|r| r.images_per_s * (r.seconds))
        .sum();
    println!(
        "trained in {:.1}s ({} epochs{}), about {:.0} training images/s on {}",
        outcome.seconds,
        outcome.history.len(),
        if outcome.stopped_early {
            ", stopped early"
        } else {
            ""
        },
        total_images / outcome.seconds.max(1e-9),
        device
    );
}

/// history.csv: one row per epoch.
fn write_history(stage: &Staging, history: &[crate::train::EpochRecord]) -> anyhow::Result<()> {
    let mut csv = String::from("epoch,steps,loss,loss_all_valid,active_fraction,lr,spread,val_accuracy,val_balanced_accuracy,val_macro_f1,seconds,images_per_s\n");
    for r in history {
        let v = r.val.unwrap_or_default();
        csv += &format!(
            "{},{},{:.6},{:.6},{:.4},{:.6e},{:.6},{:.4},{:.4},{:.4},{:.2},{:.1}\n",
            r.epoch,
            r.steps,
            r.loss,
            r.loss_all,
            r.active,
            r.lr,
            r.spread,
            v.accuracy,
            v.balanced_accuracy,
            v.macro_f1,
            r.seconds,
            r.images_per_s
        );
    }
    let p = stage.path("history.csv");
    std::fs::write(&p, csv).with_context(|| format!("writing {}", p.display()))
}

/// The good-part bias from the validation defects, with what it does on the validation set.
fn calibrate_good(
    s: &EmbeddedSplit,
    class: u32,
    max_escape: f64,
    classes: &[String],
) -> anyhow::Result<crate::metric::escape::GoodPoint> {
    use crate::metric::escape::{calibrate_bias, decide, good_margins, good_rates, GoodPoint};
    let m = good_margins(s.gallery, s.gallery_labels, s.val, s.dim, class);
    let defects: Vec<f32> = m
        .iter()
        .zip(s.val_labels)
        .filter(|(_, &l)| l != class)
        .map(|(x, _)| x.0)
        .collect();
    let bias = calibrate_bias(&defects, max_escape).with_context(|| {
        format!(
            "--good-class {:?}: the validation split holds no defect image to calibrate on",
            classes[class as usize]
        )
    })?;
    let at = |b: f32| {
        let p: Vec<u32> = m.iter().map(|&(x, l)| decide(x, l, class, b)).collect();
        good_rates(s.val_labels, &p, class)
    };
    let (plain, cal) = (at(0.0), at(bias));
    println!(
        "good class {:?}: bias {bias:.4} calibrated on {} validation defects for at most {:.1}% escapes; validation escapes {:.1}% -> {:.1}%, false alarms {:.1}% -> {:.1}% (plain 1-NN -> calibrated)",
        classes[class as usize],
        defects.len(),
        max_escape * 100.0,
        plain.escape * 100.0,
        cal.escape * 100.0,
        plain.false_alarm * 100.0,
        cal.false_alarm * 100.0
    );
    if (defects.len() as f64 + 1.0) * max_escape < 1.0 {
        eprintln!(
            "note: {} validation defects are too few to resolve {:.1}% escapes: the bias is the smallest defect margin, which bounds escapes only by {:.1}%",
            defects.len(),
            max_escape * 100.0,
            100.0 / (defects.len() as f64 + 1.0)
        );
    }
    Ok(GoodPoint {
        class,
        max_escape,
        bias,
        calibration_defects: defects.len(),
    })
}

/// What the calibration gave, with the classes that fell back to the pooled threshold.
fn report_rejection(r: Option<&crate::metric::openset::Rejection>, classes: &[String]) {
    let Some(r) = r else {
        eprintln!(
            "note: no validation images (--val-fraction 0): no unknown threshold is calibrated, so predict will never answer unknown"
        );
        return;
    };
    println!(
        "unknown thresholds: calibrated to accept {:.0}% of known images ({} validation images)",
        r.known_recall * 100.0,
        r.pooled_images
    );
    for (c, s) in classes.iter().zip(&r.sources) {
        if matches!(s, ThresholdSource::Pooled { .. }) {
            eprintln!("note: class {c:?}: threshold {}", s.describe());
        }
    }
}

/// `--out`, or `--resume`'s folder, or a fresh name under runs/.
fn output_dir(args: &TrainArgs) -> anyhow::Result<PathBuf> {
    match (&args.resume, &args.out) {
        (Some(r), Some(o)) if r != o => anyhow::bail!(
            "--resume {} and --out {}: --resume continues the run of its own folder; give one",
            r.display(),
            o.display()
        ),
        (Some(r), _) => Ok(r.clone()),
        (None, Some(o)) => Ok(o.clone()),
        (None, None) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Ok(PathBuf::from(format!("runs/train-{t}")))
        }
    }
}

/// Where a run writes: a stale staging folder to resume (with its checkpoint and the
/// identity of the run that wrote it), or a fresh one.
enum Pending {
    Resume(PathBuf, Box<TrainState>, serde_json::Value),
    Fresh(Staging),
}

/// Finds what killed runs of `out` left. With --resume: the one checkpoint to continue.
/// Otherwise a stale folder with a checkpoint is an error that says how to resume or
/// discard it (--restart), and one without a checkpoint (killed in its first epoch) is
/// removed with a note.
fn pending_run(args: &TrainArgs, out: &Path) -> anyhow::Result<Pending> {
    let stale = Staging::stale(out)?;
    let (with, without): (Vec<PathBuf>, Vec<PathBuf>) = stale
        .into_iter()
        .partition(|p| p.join(TRAIN_CHECKPOINT).is_file());
    if args.resume.is_some() {
        anyhow::ensure!(
            !out.exists(),
            "--resume {}: the folder exists, so its run finished; nothing to resume",
            out.display()
        );
        return match with.as_slice() {
            [] => anyhow::bail!(
                "--resume {}: no interrupted run to continue (no staging folder .{}.partial-* with a checkpoint beside it)",
                out.display(),
                out.file_name().map_or("".into(), |n| n.to_string_lossy())
            ),
            [one] => {
                let (state, run) = read_train_checkpoint(&one.join(TRAIN_CHECKPOINT))
                    .map_err(|e| anyhow::anyhow!("--resume {}: {e}; start over with --out {} --restart", out.display(), out.display()))?;
                Ok(Pending::Resume(one.clone(), Box::new(state), run))
            }
            many => anyhow::bail!(
                "--resume {}: {} interrupted runs of it: {}; remove all but one",
                out.display(),
                many.len(),
                list(many)
            ),
        };
    }
    if args.restart {
        for p in with.iter().chain(&without) {
            remove_stale(p)?;
            eprintln!("removed the interrupted run in {}", p.display());
        }
        return Ok(Pending::Fresh(Staging::new(out)?));
    }
    if !with.is_empty() {
        anyhow::bail!(
            "--out {}: an interrupted run of it is kept in {}: continue it with `glassnet train --resume {}` and the flags it was started with, or start over with --restart",
            out.display(),
            list(&with),
            out.display()
        );
    }
    for p in &without {
        remove_stale(p)?;
        eprintln!(
            "removed {}, left by a run stopped before its first checkpoint",
            p.display()
        );
    }
    Ok(Pending::Fresh(Staging::new(out)?))
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which images, in which order, with which labels: a resumed run must see the same.
fn fingerprint(d: &crate::data::Dataset) -> String {
    format!(
        "{} images, checksum {:016x}",
        d.len(),
        crate::checkpoint::checksum(&[
            bytemuck::cast_slice(&d.labels),
            bytemuck::cast_slice(&d.images)
        ])
    )
}
