//! Fault injection for the reliability tests: an engine that fails like a lost GPU at a
//! chosen training step, so the error path of `train` (keep the last checkpoint, say how to
//! resume) is exercised without breaking a device. `glassnet train` wraps its engine in it
//! when GLASSNET_FAULT_AT_STEP is set.

use super::{Batch, Engine, StepStats};
use crate::model::{Arch, ParamLayout};
use crate::optim::StepParams;
use crate::{Error, Result};

/// The environment variable naming the (1-based) step that fails.
pub const FAULT_ENV: &str = "GLASSNET_FAULT_AT_STEP";

pub struct FailAt {
    inner: Box<dyn Engine>,
    /// Steps submitted so far in this process.
    steps: u64,
    at: u64,
}

impl FailAt {
    pub fn new(inner: Box<dyn Engine>, at: u64) -> FailAt {
        FailAt {
            inner,
            steps: 0,
            at,
        }
    }

    /// `engine` wrapped when GLASSNET_FAULT_AT_STEP holds a step number, else unchanged.
    pub fn from_env(engine: Box<dyn Engine>) -> Box<dyn Engine> {
        match std::env::var(FAULT_ENV).ok().and_then(|v| v.parse().ok()) {
            Some(at) => Box::new(FailAt::new(engine, at)),
            None => engine,
        }
    }

    fn tick(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps >= self.at {
            return Err(Error::Gpu(format!(
                "device lost (injected by {FAULT_ENV}={} at step {})",
                self.at, self.steps
            )));
        }
        Ok(())
    }
}

impl Engine for FailAt {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn arch(&self) -> &Arch {
        self.inner.arch()
    }
    fn layout(&self) -> &ParamLayout {
        self.inner.layout()
    }
    fn params(&mut self) -> Result<Vec<f32>> {
        self.inner.params()
    }
    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.inner.set_params(params)
    }
    fn optim_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.inner.optim_state()
    }
    fn restore(&mut self, params: &[f32], m: &[f32], v: &[f32]) -> Result<()> {
        self.inner.restore(params, m, v)
    }
    fn gradients(&mut self) -> Result<Vec<f32>> {
        self.inner.gradients()
    }
    fn embed(&mut self, images: &[f32]) -> Result<Vec<f32>> {
        self.inner.embed(images)
    }
    fn train_step(&mut self, batch: &Batch, update: Option<StepParams>) -> Result<StepStats> {
        self.tick()?;
        self.inner.train_step(batch, update)
    }
    fn submit_step(&mut self, batch: &Batch, update: Option<StepParams>) -> Result<()> {
        self.tick()?;
        self.inner.submit_step(batch, update)
    }
    fn finish_step(&mut self) -> Result<StepStats> {
        self.inner.finish_step()
    }
    fn distances(&mut self, x: &[f32], y: &[f32], d: usize) -> Result<Vec<f32>> {
        self.inner.distances(x, y, d)
    }
}
