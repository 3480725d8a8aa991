//! One training/inference interface over the backends: the CPU reference (the oracle), the
//! CPU fast path and the GPU (WGSL through wgpu).

pub mod cpu;
pub mod fault;
pub mod gpu;
pub mod tta;

use crate::model::{Arch, ParamLayout};
use crate::optim::StepParams;
use crate::shapes::MineMode;
use crate::Result;

/// Where a batch's triplets come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Triplets<'a> {
    /// Index triples (anchor, positive, negative) into the batch, sampled on the host.
    Given(&'a [[u32; 3]]),
    /// One triplet per anchor mined on the device from the batch's distance matrix.
    Mine(MineMode),
    /// Pairs (a, b, same in {0, 1}) for the Siamese objective, sampled on the host.
    Pairs(&'a [[u32; 3]]),
}

/// One training batch: unique images, their labels and how triplets are formed.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// `[n, 1, side, side]`
    pub images: &'a [f32],
    /// `[n]`
    pub labels: &'a [u32],
    pub triplets: Triplets<'a>,
    pub margin: f32,
}

impl Batch<'_> {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Triplet slots the loss sees: given ones, or one per anchor when mining.
    pub fn triplet_count(&self) -> usize {
        match self.triplets {
            Triplets::Given(t) | Triplets::Pairs(t) => t.len(),
            Triplets::Mine(_) => self.len(),
        }
    }
}

/// What a step reports (the only values read back from a GPU step).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    /// Mean triplet loss over valid triplets.
    pub loss: f32,
    /// Triplets that had an anchor, a positive and a negative.
    pub valid: u32,
    /// Valid triplets with a non-zero loss (the ones that teach anything).
    pub active: u32,
}

impl StepStats {
    pub fn from_raw(stats: &[f32]) -> StepStats {
        StepStats {
            loss: stats[0],
            valid: stats[1] as u32,
            active: stats[2] as u32,
        }
    }
}

/// A backend that can embed images and train the network in place.
pub trait Engine {
    /// Backend and adapter, for reports.
    fn describe(&self) -> String;
    fn arch(&self) -> &Arch;
    fn layout(&self) -> &ParamLayout;
    /// Flat parameters `[layout.total]`.
    fn params(&mut self) -> Result<Vec<f32>>;
    /// Replaces the parameters and resets the optimizer state.
    fn set_params(&mut self, params: &[f32]) -> Result<()>;
    /// Optimizer state `(m, v)`, `[layout.total]` each: Adam's two moments, or SGD's
    /// velocity and an unused `v`. With the parameters, what a checkpoint must hold.
    fn optim_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)>;
    /// Replaces the parameters and the optimizer state, as `params` and `optim_state` gave
    /// them (resuming a run).
    fn restore(&mut self, params: &[f32], m: &[f32], v: &[f32]) -> Result<()>;
    /// Flat gradients `[layout.total]` of the last step.
    fn gradients(&mut self) -> Result<Vec<f32>>;
    /// Embeddings `[n, embed_dim]` of images `[n, 1, side, side]`.
    fn embed(&mut self, images: &[f32]) -> Result<Vec<f32>>;
    /// Forward, loss and backward on a batch, then the update when `update` is given.
    fn train_step(&mut self, batch: &Batch, update: Option<StepParams>) -> Result<StepStats>;
    /// Starts a training step without waiting for it, so that the host prepares the next
    /// batch while the device runs this one; `finish_step` returns the statistics of the
    /// oldest unfinished step. At most two steps may be unfinished; `train_step` needs none.
    /// The CPU engines run the step here.
    fn submit_step(&mut self, batch: &Batch, update: Option<StepParams>) -> Result<()>;
    /// Waits for the oldest submitted step and returns its statistics.
    fn finish_step(&mut self) -> Result<StepStats>;
    /// GPU time of each dispatch of one training step as (kernel, ms) in recording order,
    /// where the device can time passes (timestamp queries); None elsewhere.
    fn profile_step(
        &mut self,
        _batch: &Batch,
        _update: Option<StepParams>,
    ) -> Result<Option<Vec<(String, f64)>>> {
        Ok(None)
    }
    /// Squared distances `[n, m]` between rows of x `[n, d]` and y `[m, d]` (the pixel
    /// baselines' Gram matrix). The CPU computes it with one SGEMM; the GPU overrides it.
    fn distances(&mut self, x: &[f32], y: &[f32], d: usize) -> Result<Vec<f32>> {
        let (n, m) = (x.len() / d, y.len() / d);
        let mut out = vec![0.0; n * m];
        crate::cpu::fast::pairwise_distance(&mut out, x, y, n, m, d);
        Ok(out)
    }
}

/// Checks a batch before any backend touches it, so a bad index is an error, not a panic
/// or an out-of-bounds read on the device.
pub fn check_batch(arch: &Arch, batch: &Batch) -> Result<()> {
    use crate::Error;
    let n = batch.len();
    if batch.images.len() != n * arch.image_len() {
        return Err(Error::Input(format!(
            "batch has {} labels but {} pixels ({} per image expected)",
            n,
            batch.images.len(),
            arch.image_len()
        )));
    }
    if let Triplets::Given(t) = batch.triplets {
        for tri in t {
            let valid = tri[0] != crate::shapes::INVALID;
            if valid && tri.iter().any(|&i| i as usize >= n) {
                return Err(Error::Input(format!(
                    "triplet {tri:?} indexes outside a batch of {n}"
                )));
            }
        }
    }
    let siamese = arch.objective == crate::model::Objective::Siamese;
    if siamese != matches!(batch.triplets, Triplets::Pairs(_)) {
        return Err(Error::Input(format!(
            "a {:?} model trains on {}",
            arch.objective,
            if siamese { "pairs" } else { "triplets" }
        )));
    }
    if let Triplets::Pairs(t) = batch.triplets {
        for pair in t {
            let valid = pair[0] != crate::shapes::INVALID;
            if valid && (pair[..2].iter().any(|&i| i as usize >= n) || pair[2] > 1) {
                return Err(Error::Input(format!(
                    "pair {pair:?} indexes outside a batch of {n} or its same flag is not 0/1"
                )));
            }
        }
    }
    if !batch.margin.is_finite() || batch.margin < 0.0 {
        return Err(Error::Input(format!(
            "margin {} must be finite and >= 0",
            batch.margin
        )));
    }
    Ok(())
}

/// Refuses optimizer state of the wrong length (a checkpoint of another architecture).
pub fn check_state_len(total: usize, m: &[f32], v: &[f32]) -> Result<()> {
    if m.len() != total || v.len() != total {
        return Err(crate::Error::Input(format!(
            "optimizer state of {} and {} values given, the architecture has {total} parameters",
            m.len(),
            v.len()
        )));
    }
    Ok(())
}

/// Flattens triplets into the `[T, 3]` u32 layout the kernels read.
pub fn flatten_triplets(t: &[[u32; 3]]) -> Vec<u32> {
    t.iter().flatten().copied().collect()
}
