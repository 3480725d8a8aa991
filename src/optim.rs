//! Optimizer configuration and the per-step hyper-parameters the update kernels read.

use serde::{Deserialize, Serialize};

/// Per-step Adam hyper-parameters; the bias corrections are computed on the host so the
/// kernels need no pow(). Laid out as a uniform block (8 x f32).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamParams {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1 - beta1^t
    pub bc1: f32,
    /// 1 - beta2^t
    pub bc2: f32,
    pub _pad: f32,
}

/// Per-step SGD-with-momentum hyper-parameters (uniform block, 4 x f32).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SgdParams {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub _pad: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

/// What the user chose; turned into per-step parameters by `at_step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    pub kind: OptimizerKind,
    pub lr: f32,
    pub weight_decay: f32,
    /// Adam beta1 or SGD momentum.
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Linear warm-up steps, then cosine decay to `lr * final_lr_frac` at `total_steps`.
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub final_lr_frac: f32,
    /// Constant learning rate (the paper's recipe) instead of warm-up + cosine.
    pub constant: bool,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            kind: OptimizerKind::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            warmup_steps: 0,
            total_steps: 1,
            final_lr_frac: 0.05,
            constant: true,
        }
    }
}

/// The update to apply at one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepParams {
    Adam(AdamParams),
    Sgd(SgdParams),
}

impl OptimConfig {
    /// Learning rate at 1-based step `t` under the schedule.
    pub fn lr_at(&self, t: u64) -> f32 {
        if self.constant {
            return self.lr;
        }
        if t <= self.warmup_steps {
            return self.lr * t as f32 / self.warmup_steps.max(1) as f32;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f32;
        let progress = ((t - self.warmup_steps) as f32 / span).min(1.0);
        let cos = 0.5 * (1.0 + (std::f32::consts::PI * progress).cos());
        self.lr * (self.final_lr_frac + (1.0 - self.final_lr_frac) * cos)
    }

    /// Hyper-parameters of 1-based step `t`.
    pub fn at_step(&self, t: u64) -> StepParams {
        let lr = self.lr_at(t);
        match self.kind {
            OptimizerKind::Adam => StepParams::Adam(AdamParams {
                lr,
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
                bc1: 1.0 - self.beta1.powi(t.min(i32::MAX as u64) as i32),
                bc2: 1.0 - self.beta2.powi(t.min(i32::MAX as u64) as i32),
                _pad: 0.0,
            }),
            OptimizerKind::Sgd => StepParams::Sgd(SgdParams {
                lr,
                momentum: self.beta1,
                weight_decay: self.weight_decay,
                _pad: 0.0,
            }),
        }
    }
}
