//! The training loop: sample -> one step on the engine -> log; validation by 1-NN each
//! epoch; early stop on a plateau; collapse detection; the best epoch's weights kept.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::augment::{orient, Augment, Jitter};
use crate::data::Dataset;
use crate::engine::{Batch, Engine, Triplets};
use crate::metric::knn::knn;
use crate::metric::sampler::{sample_pairs, BalancedBatches, RandomTriplets};
use crate::metric::scores::{Confusion, Scores};
use crate::model::{Head, Objective};
use crate::optim::OptimConfig;
use crate::shapes::MineMode;
use crate::{Error, Result};

/// How a batch's triplets are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// The paper's: random (anchor, positive, negative) triplets, class-balanced anchors.
    Random,
    /// Class-balanced batch; per anchor the hardest positive and hardest negative.
    BatchHard,
    /// Class-balanced batch; per anchor the hardest positive and the closest negative
    /// farther than it.
    SemiHard,
    /// Class-balanced batch; every valid triplet, loss averaged over the active ones.
    BatchAll,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub recipe: Recipe,
    pub head: Head,
    pub margin: f32,
    pub sampler: SamplerKind,
    /// Triplets per batch (random sampler: a batch holds 3x this many images).
    pub triplets_per_batch: usize,
    /// Images per batch (mining samplers).
    pub batch_images: usize,
    pub epochs: usize,
    /// Steps per epoch; 0 = one pass over the training images, at least `MIN_STEPS_PER_EPOCH`.
    pub steps_per_epoch: usize,
    pub optim: OptimConfig,
    pub augment: Augment,
    /// Brightness, contrast, gamma and shift jitter after the orientation (off by default;
    /// absent from settings saved without it).
    #[serde(default, skip_serializing_if = "Jitter::is_off")]
    pub jitter: Jitter,
    /// Epochs without a better validation score before stopping; 0 = never stop early.
    pub patience: usize,
    pub seed: u64,
}

mod recipe;
pub use recipe::Recipe;

impl TrainConfig {
    /// Images a class needs to train: 2 (an anchor and a positive), or 1 when augmentation
    /// turns one image into different views that serve as anchor and positive.
    pub fn min_class_images(&self) -> usize {
        if self.augment == Augment::None && self.jitter.is_off() {
            2
        } else {
            1
        }
    }

    pub fn preset(recipe: Recipe) -> TrainConfig {
        match recipe {
            Recipe::Robust => TrainConfig {
                recipe,
                head: Head::L2,
                margin: 0.2,
                sampler: SamplerKind::BatchAll,
                triplets_per_batch: 32,
                batch_images: 96,
                epochs: 30,
                steps_per_epoch: 0,
                optim: OptimConfig {
                    constant: false,
                    ..OptimConfig::default()
                },
                augment: Augment::Dihedral,
                jitter: Jitter::default(),
                patience: 8,
                seed: 0,
            },
            Recipe::Paper => TrainConfig {
                recipe,
                head: Head::Sigmoid,
                margin: 1.0,
                sampler: SamplerKind::Random,
                triplets_per_batch: 32,
                batch_images: 96,
                epochs: 30,
                steps_per_epoch: 15, // 450 triplets / 32 per batch
                optim: OptimConfig::default(),
                augment: Augment::None,
                jitter: Jitter::default(),
                patience: 0,
                seed: 0,
            },
        }
    }

    pub fn steps_for(&self, train_len: usize) -> usize {
        if self.steps_per_epoch > 0 {
            return self.steps_per_epoch;
        }
        let per_step = match self.sampler {
            SamplerKind::Random => 3 * self.triplets_per_batch,
            _ => self.batch_images,
        };
        train_len.div_ceil(per_step).max(MIN_STEPS_PER_EPOCH)
    }
}

/// Fewest steps in an automatic epoch. One pass over a small set (a new product generation
/// with a few hundred images) is a handful of steps, and 30 such epochs left the loss still
/// falling: on the line-camera set (640 training images, 7 steps per pass) 16 steps per epoch
/// took 5-fold 1-NN accuracy from 92.25% to 94.50% (cropped) and from 82.50% to 95.12% (whole
/// frame). Sets of 1,536 images or more are unaffected.
pub const MIN_STEPS_PER_EPOCH: usize = 16;

/// One epoch's record (a row of history.csv).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub steps: u64,
    /// Mean of the loss the optimizer sees (batch-all: over active triplets).
    pub loss: f64,
    /// Mean hinge loss over all valid triplets: comparable across samplers, and falls as
    /// triplets become inactive (plotted).
    pub loss_all: f64,
    /// Fraction of valid triplets with non-zero loss.
    pub active: f64,
    pub lr: f32,
    /// Mean squared distance of the training embeddings to their centroid.
    pub spread: f64,
    pub val: Option<Scores>,
    pub seconds: f64,
    pub images_per_s: f64,
}

/// What a run produced.
pub struct TrainOutcome {
    /// Parameters of the best epoch (by validation balanced accuracy; the last without one).
    pub params: Vec<f32>,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    /// Set when training ended collapsed: what happened and what to try.
    pub collapse: Option<String>,
    pub stopped_early: bool,
    pub seconds: f64,
}

/// Receives progress; the CLI draws a bar, tests pass `()`.
pub trait Progress {
    fn start(&mut self, _total_steps: u64) {}
    fn step(&mut self, _epoch: usize, _step: u64, _loss: f32, _active: f64, _images_per_s: f64) {}
    fn epoch(&mut self, _rec: &EpochRecord) {}
    fn warn(&mut self, _msg: &str) {}
}
impl Progress for () {}

/// Assembles the pixels of `idx` into `out`, each in a random orientation when augmenting,
/// then jittered when that is on.
fn gather(
    out: &mut Vec<f32>,
    data: &Dataset,
    idx: &[usize],
    (augment, jitter): (Augment, &Jitter),
    rng: &mut ChaCha8Rng,
) {
    let mut scratch = Vec::new();
    let il = data.image_len();
    out.resize(idx.len() * il, 0.0);
    for (slot, &i) in idx.iter().enumerate() {
        let dst = &mut out[slot * il..(slot + 1) * il];
        let t = if augment == Augment::None {
            0
        } else {
            rng.random_range(0..augment.variants())
        };
        if t == 0 {
            dst.copy_from_slice(data.image(i));
        } else {
            orient(dst, data.image(i), data.side, t);
        }
        if !jitter.is_off() {
            jitter.apply(dst, data.side, &mut scratch, rng);
        }
    }
}

/// Mean squared distance of embeddings `[n, d]` to their centroid.
pub fn spread(emb: &[f32], d: usize) -> f64 {
    let n = emb.len() / d;
    if n == 0 {
        return 0.0;
    }
    let mut c = vec![0.0f64; d];
    for row in emb.chunks(d) {
        for (ci, &v) in c.iter_mut().zip(row) {
            *ci += v as f64 / n as f64;
        }
    }
    emb.chunks(d)
        .map(|row| {
            row.iter()
                .zip(&c)
                .map(|(&v, ci)| (v as f64 - ci).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / n as f64
}

/// 1-NN scores of `val` against a gallery of `train` embeddings.
pub fn knn_scores(
    engine: &mut dyn Engine,
    gallery: &[f32],
    train: &Dataset,
    val: &Dataset,
) -> Result<Scores> {
    let d = engine.arch().embed_dim;
    let q = engine.embed(&val.images)?;
    let pred: Vec<u32> = knn(gallery, &train.labels, &q, d, 1, false)
        .iter()
        .map(|n| n.label)
        .collect();
    Ok(Scores::of(&Confusion::from_labels(
        &val.labels,
        &pred,
        train.classes.len(),
    )))
}

/// Collapse: every embedding in one place, or a loss stuck at the margin with (nearly)
/// every triplet active, which is what equal distances give.
/// For the Siamese objective the stuck loss is ln 2: every pair judged 50/50.
fn collapse_check(rec: &EpochRecord, cfg: &TrainConfig, d: usize, siamese: bool) -> Option<String> {
    let scale = match cfg.head {
        Head::L2 => 1.0,
        Head::Sigmoid => d as f64 * 0.25,
    };
    let stuck = rec.epoch >= 2
        && if siamese {
            (rec.loss - std::f64::consts::LN_2).abs() < 0.01
        } else {
            (rec.loss - cfg.margin as f64).abs() < 0.02 * cfg.margin as f64 && rec.active > 0.95
        };
    let tiny = rec.spread < 1e-4 * scale;
    // Suggest the robust recipe only to a run that does not already use it.
    let robust = cfg.recipe == Recipe::Robust;
    (stuck || tiny).then(|| {
        format!(
            "training has collapsed at epoch {}: loss {:.4} against margin {} with {:.0}% of triplets active, embedding spread {:.2e}. \
All images map to (nearly) the same point, so distances carry no class information. Try: {}a lower --lr, a smaller --margin, \
or more epochs (an early collapse can recover).",
            rec.epoch,
            rec.loss,
            cfg.margin,
            rec.active * 100.0,
            rec.spread,
            if robust {
                ""
            } else {
                "--recipe robust (L2-normalised embedding, margin 0.2, all triplets of class-balanced batches), "
            }
        )
    })
}

/// The RNG's position (ChaCha: seed, stream and word), so a resumed run draws the numbers
/// the interrupted one would have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    /// A u128 in decimal (JSON numbers stop at 64 bits).
    pub word_pos: String,
}

impl RngState {
    pub fn of(rng: &ChaCha8Rng) -> RngState {
        RngState {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    pub fn rng(&self) -> Result<ChaCha8Rng> {
        let pos: u128 = self
            .word_pos
            .parse()
            .map_err(|_| Error::Input(format!("rng.word_pos {:?}: not a number", self.word_pos)))?;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(pos);
        Ok(rng)
    }
}

/// Where a run stands after a finished epoch. With the tensors of `TrainState`, all that a
/// run needs to continue as if it had never stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunCursor {
    pub epochs_done: usize,
    pub step: u64,
    pub rng: RngState,
    /// The class-balanced sampler mid-cycle (None with the paper's random triplets).
    pub sampler: Option<BalancedBatches>,
    pub history: Vec<EpochRecord>,
    pub best_score: f64,
    pub best_epoch: usize,
    pub collapse: Option<String>,
    pub stopped_early: bool,
    /// Training time so far.
    pub seconds: f64,
}

/// What a checkpoint holds: the cursor, the weights and optimizer state the next step reads,
/// and the best epoch's weights (what the run will keep).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub cursor: RunCursor,
    /// `[layout.total]` each
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub best_params: Vec<f32>,
}

impl TrainState {
    /// Refuses a state that cannot belong to a run of `cfg` with `steps_per_epoch` steps
    /// and `total` parameters, naming the first field that disagrees.
    pub fn check(&self, cfg: &TrainConfig, steps_per_epoch: usize, total: usize) -> Result<()> {
        let c = &self.cursor;
        let bad = |what: String| Err(Error::Input(format!("checkpoint {what}")));
        if c.epochs_done == 0 || c.epochs_done > cfg.epochs {
            return bad(format!(
                "epochs_done {}: the run has {} epochs",
                c.epochs_done, cfg.epochs
            ));
        }
        if c.step != (c.epochs_done * steps_per_epoch) as u64 {
            return bad(format!(
                "step {}: {} epochs of {steps_per_epoch} steps make {}",
                c.step,
                c.epochs_done,
                c.epochs_done * steps_per_epoch
            ));
        }
        if c.history.len() != c.epochs_done
            || c.history.iter().enumerate().any(|(i, r)| r.epoch != i + 1)
        {
            return bad(format!(
                "history: {} records for {} epochs",
                c.history.len(),
                c.epochs_done
            ));
        }
        if c.best_epoch == 0 || c.best_epoch > c.epochs_done || !c.best_score.is_finite() {
            return bad(format!(
                "best_epoch {} (score {}) after {} epochs",
                c.best_epoch, c.best_score, c.epochs_done
            ));
        }
        for (name, t) in [
            ("params", &self.params),
            ("m", &self.m),
            ("v", &self.v),
            ("best_params", &self.best_params),
        ] {
            if t.len() != total {
                return bad(format!(
                    "tensor {name}: {} values, the architecture has {total}",
                    t.len()
                ));
            }
            if let Some(i) = t.iter().position(|v| !v.is_finite()) {
                return bad(format!("tensor {name}: value {i} is {}", t[i]));
            }
        }
        c.rng.rng().map(|_| ())
    }
}

/// The batch samplers of a run: the paper's random triplets, or class-balanced batches
/// whose triplets are mined on the engine (or, Siamese, whose pairs are drawn here).
struct Samplers {
    random: Option<RandomTriplets>,
    balanced: Option<BalancedBatches>,
    mode: MineMode,
    siamese: bool,
}

/// One batch as dataset indices, their labels and the given triplets or pairs (None: mine).
type Drawn = (Vec<usize>, Vec<u32>, Option<Vec<[u32; 3]>>);

impl Samplers {
    fn new(train: &Dataset, cfg: &TrainConfig, siamese: bool) -> Result<Samplers> {
        let random = match cfg.sampler {
            SamplerKind::Random if !siamese => Some(RandomTriplets::new(
                &train.labels,
                train.classes.len(),
                cfg.min_class_images(),
            )?),
            _ => None,
        };
        let balanced = match random {
            Some(_) => None,
            None => Some(BalancedBatches::new(
                &train.labels,
                train.classes.len(),
                cfg.batch_images,
                cfg.min_class_images(),
            )?),
        };
        let mode = match cfg.sampler {
            SamplerKind::SemiHard => MineMode::SemiHard,
            SamplerKind::BatchAll => MineMode::BatchAll,
            _ => MineMode::BatchHard,
        };
        Ok(Samplers {
            random,
            balanced,
            mode,
            siamese,
        })
    }

    fn draw(&mut self, train: &Dataset, cfg: &TrainConfig, rng: &mut ChaCha8Rng) -> Drawn {
        if let Some(r) = &self.random {
            let t = r.sample(rng, cfg.triplets_per_batch);
            let idx: Vec<usize> = t.iter().flatten().copied().collect();
            let tri = (0..t.len() as u32)
                .map(|i| [3 * i, 3 * i + 1, 3 * i + 2])
                .collect();
            let labels = idx.iter().map(|&i| train.labels[i]).collect();
            (idx, labels, Some(tri))
        } else {
            let idx = self.balanced.as_mut().expect("a sampler").sample(rng);
            let labels: Vec<u32> = idx.iter().map(|&i| train.labels[i]).collect();
            let pairs = self.siamese.then(|| sample_pairs(&labels, rng));
            (idx, labels, pairs)
        }
    }

    /// Whether the loss the optimizer sees is over active triplets only (batch-all mining).
    fn loss_over_active(&self) -> bool {
        self.mode == MineMode::BatchAll && self.random.is_none() && !self.siamese
    }
}

/// What a run carries from epoch to epoch (the part of `RunCursor` the loop changes).
struct Run {
    rng: ChaCha8Rng,
    samplers: Samplers,
    optim: OptimConfig,
    steps_per_epoch: usize,
    step: u64,
    history: Vec<EpochRecord>,
    best: (f64, usize, Vec<f32>),
    collapse: Option<String>,
    stopped_early: bool,
    /// Training time of earlier processes (a resumed run).
    seconds_before: f64,
}

/// Trains `engine` in place on `train`, scoring on `val` each epoch when given.
pub fn train(
    engine: &mut dyn Engine,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    progress: &mut dyn Progress,
) -> Result<TrainOutcome> {
    train_resumable(engine, train, val, cfg, progress, None, &mut |_| Ok(()))
}

/// `train`, continuing from `resume` when given, and handing the state after each epoch to
/// `save` (a failed save is warned about, and training goes on).
pub fn train_resumable(
    engine: &mut dyn Engine,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    progress: &mut dyn Progress,
    resume: Option<TrainState>,
    save: &mut dyn FnMut(&TrainState) -> Result<()>,
) -> Result<TrainOutcome> {
    train.check_trainable("training set", cfg.min_class_images())?;
    let siamese = engine.arch().objective == Objective::Siamese;
    let steps_per_epoch = cfg.steps_for(train.len());
    let total = (steps_per_epoch * cfg.epochs) as u64;
    let mut optim = cfg.optim.clone();
    optim.total_steps = total;
    if !optim.constant && optim.warmup_steps == 0 {
        optim.warmup_steps = (total / 20).max(1);
    }
    let mut run = Run {
        rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7472_6169_6e00),
        samplers: Samplers::new(train, cfg, siamese)?,
        optim,
        steps_per_epoch,
        step: 0,
        history: Vec::new(),
        best: (f64::NEG_INFINITY, 0, Vec::new()),
        collapse: None,
        stopped_early: false,
        seconds_before: 0.0,
    };
    if let Some(state) = resume {
        run.resume(engine, state, cfg)?;
    }
    progress.start(total);
    let started = Instant::now();
    let mut pixels = Vec::new();
    for epoch in run.history.len() + 1..=cfg.epochs {
        if run.stopped_early {
            break;
        }
        let t0 = Instant::now();
        let sums = run_epoch(engine, train, cfg, &mut run, &mut pixels, epoch, progress)?;
        let rec = end_epoch(engine, train, val, cfg, &mut run, epoch, sums, t0, progress)?;
        progress.epoch(&rec);
        // Best epoch by validation balanced accuracy (ties keep the earlier one); without a
        // validation set, the last epoch.
        let score = rec.val.map_or(epoch as f64, |v| v.balanced_accuracy);
        if score > run.best.0 {
            run.best = (score, epoch, engine.params()?);
        }
        run.history.push(rec);
        let since_best = epoch - run.best.1;
        run.stopped_early = cfg.patience > 0 && val.is_some() && since_best >= cfg.patience;
        let state = run.state(engine, started.elapsed().as_secs_f64())?;
        if let Err(e) = save(&state) {
            progress.warn(&format!(
                "checkpoint of epoch {epoch} not written ({e}); training goes on, but a run stopped now restarts from the last checkpoint"
            ));
        }
    }
    let (_, best_epoch, params) = run.best;
    Ok(TrainOutcome {
        params,
        history: run.history,
        best_epoch,
        collapse: run.collapse,
        stopped_early: run.stopped_early,
        seconds: run.seconds_before + started.elapsed().as_secs_f64(),
    })
}

impl Run {
    /// Continues from a checkpoint: the engine's weights and optimizer state, the RNG, the
    /// sampler's cycle and the record so far.
    fn resume(
        &mut self,
        engine: &mut dyn Engine,
        state: TrainState,
        cfg: &TrainConfig,
    ) -> Result<()> {
        state.check(cfg, self.steps_per_epoch, engine.layout().total)?;
        let c = state.cursor;
        match (&mut self.samplers.balanced, c.sampler) {
            (Some(b), Some(saved)) => b.resume(saved)?,
            (None, None) => {}
            _ => {
                return Err(Error::Input(
                    "checkpoint sampler: made with another --sampler".into(),
                ))
            }
        }
        engine.restore(&state.params, &state.m, &state.v)?;
        self.rng = c.rng.rng()?;
        self.step = c.step;
        self.history = c.history;
        self.best = (c.best_score, c.best_epoch, state.best_params);
        self.collapse = c.collapse;
        self.stopped_early = c.stopped_early;
        self.seconds_before = c.seconds;
        Ok(())
    }

    fn state(&self, engine: &mut dyn Engine, seconds: f64) -> Result<TrainState> {
        let (m, v) = engine.optim_state()?;
        Ok(TrainState {
            cursor: RunCursor {
                epochs_done: self.history.len(),
                step: self.step,
                rng: RngState::of(&self.rng),
                sampler: self.samplers.balanced.clone(),
                history: self.history.clone(),
                best_score: self.best.0,
                best_epoch: self.best.1,
                collapse: self.collapse.clone(),
                stopped_early: self.stopped_early,
                seconds: self.seconds_before + seconds,
            },
            params: engine.params()?,
            m,
            v,
            best_params: self.best.2.clone(),
        })
    }
}

/// Sums over one epoch's steps.
#[derive(Default)]
struct EpochSums {
    loss: f64,
    loss_all: f64,
    active: u64,
    valid: u64,
    images: usize,
}

/// The steps of one epoch. Each step is submitted before the last one's statistics are
/// read: the device runs it while the host reads them and samples and gathers the next batch.
fn run_epoch(
    engine: &mut dyn Engine,
    train: &Dataset,
    cfg: &TrainConfig,
    run: &mut Run,
    pixels: &mut Vec<f32>,
    epoch: usize,
    progress: &mut dyn Progress,
) -> Result<EpochSums> {
    let t0 = Instant::now();
    let mut sums = EpochSums::default();
    let mut unfinished: std::collections::VecDeque<(u64, usize)> = Default::default();
    for i in 0..=run.steps_per_epoch {
        if i < run.steps_per_epoch {
            run.step += 1;
            let (idx, labels, triplets) = run.samplers.draw(train, cfg, &mut run.rng);
            gather(
                pixels,
                train,
                &idx,
                (cfg.augment, &cfg.jitter),
                &mut run.rng,
            );
            let batch = Batch {
                images: pixels,
                labels: &labels,
                triplets: match &triplets {
                    Some(t) if run.samplers.siamese => Triplets::Pairs(t),
                    Some(t) => Triplets::Given(t),
                    None => Triplets::Mine(run.samplers.mode),
                },
                margin: cfg.margin,
            };
            engine.submit_step(&batch, Some(run.optim.at_step(run.step)))?;
            unfinished.push_back((run.step, idx.len()));
        }
        if i == 0 {
            continue;
        }
        let (at, n) = unfinished.pop_front().expect("a submitted step");
        let s = engine.finish_step()?;
        if !s.loss.is_finite() {
            // Leave the engine with no step in flight.
            for _ in 0..unfinished.len() {
                let _ = engine.finish_step();
            }
            return Err(Error::Diverged(format!(
                "training diverged: the loss became {} at epoch {epoch}, step {at}; nothing was written. Try a lower --lr (now {}).",
                s.loss, cfg.optim.lr
            )));
        }
        sums.loss += s.loss as f64;
        sums.loss_all += if run.samplers.loss_over_active() {
            s.loss as f64 * s.active as f64 / s.valid.max(1) as f64
        } else {
            s.loss as f64
        };
        sums.active += s.active as u64;
        sums.valid += s.valid as u64;
        sums.images += n;
        let rate = sums.images as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let active = s.active as f64 / s.valid.max(1) as f64;
        progress.step(epoch, at, s.loss, active, rate);
    }
    Ok(sums)
}

/// An epoch's record: the gallery's spread, validation scores, and the collapse watch.
#[allow(clippy::too_many_arguments)]
fn end_epoch(
    engine: &mut dyn Engine,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    run: &mut Run,
    epoch: usize,
    sums: EpochSums,
    t0: Instant,
    progress: &mut dyn Progress,
) -> Result<EpochRecord> {
    let d = engine.arch().embed_dim;
    let train_secs = t0.elapsed().as_secs_f64();
    let gallery = engine.embed(&train.images)?;
    // A NaN hides behind the hinge (NaN > 0 is false) and a ReLU (f32::max drops it): check
    // the outputs and the weights (a normalised network keeps finite outputs over inf ones).
    let finite = |v: &[f32]| v.iter().all(|v| v.is_finite());
    let bad = (!finite(&gallery)).then_some("embeddings");
    let bad = bad.or((!finite(&engine.params()?)).then_some("parameters"));
    if let Some(what) = bad {
        return Err(Error::Diverged(format!(
            "training diverged: the {what} became NaN or infinite by epoch {epoch}; nothing was written. Try a lower --lr (now {}).",
            cfg.optim.lr
        )));
    }
    let steps = run.steps_per_epoch as f64;
    let mut rec = EpochRecord {
        epoch,
        steps: run.step,
        loss: sums.loss / steps,
        loss_all: sums.loss_all / steps,
        active: sums.active as f64 / sums.valid.max(1) as f64,
        lr: run.optim.lr_at(run.step),
        spread: spread(&gallery, d),
        val: None,
        seconds: 0.0,
        images_per_s: sums.images as f64 / train_secs.max(1e-9),
    };
    if let Some(v) = val.filter(|v| !v.is_empty()) {
        rec.val = Some(knn_scores(engine, &gallery, train, v)?);
    }
    rec.seconds = t0.elapsed().as_secs_f64();
    // Warn when a collapse starts and say when it ends: an early collapse can recover,
    // and only the state the run ends in is reported as its outcome.
    match (
        collapse_check(&rec, cfg, d, run.samplers.siamese),
        &run.collapse,
    ) {
        (Some(msg), None) => {
            progress.warn(&msg);
            run.collapse = Some(msg);
        }
        (None, Some(_)) => {
            progress.warn(&format!(
                "the collapse has recovered by epoch {epoch} (embedding spread {:.3})",
                rec.spread
            ));
            run.collapse = None;
        }
        _ => {}
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loss stuck at the margin with every triplet active is a collapse; the advice names
    /// the robust recipe only to a run that does not use it already.
    #[test]
    fn collapse_advice_fits_the_recipe() {
        for recipe in [Recipe::Robust, Recipe::Paper] {
            let cfg = TrainConfig::preset(recipe);
            let rec = EpochRecord {
                epoch: 3,
                steps: 21,
                loss: cfg.margin as f64,
                loss_all: cfg.margin as f64,
                active: 1.0,
                lr: 1e-3,
                spread: 0.02,
                val: None,
                seconds: 1.0,
                images_per_s: 100.0,
            };
            let msg = collapse_check(&rec, &cfg, 64, false).expect("a stuck loss is a collapse");
            assert_eq!(
                msg.contains("--recipe robust"),
                recipe == Recipe::Paper,
                "{msg}"
            );
            let moving = EpochRecord {
                loss: cfg.margin as f64 * 0.5,
                active: 0.4,
                ..rec
            };
            assert!(collapse_check(&moving, &cfg, 64, false).is_none());
        }
    }
}
