//! Optimiser steps over the flat parameter buffer in one dispatch: adam_update,
//! sgd_momentum_update, with the uniform words the training step rewrites each step.

use super::u;
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::optim::{AdamParams, SgdParams};
use crate::Result;

uniform! {
    /// adam_update over `n` values, with this step's hyperparameters and bias corrections.
    pub struct AdamUniform {
        n: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        bc1: f32,
        bc2: f32,
    }
}

/// The Adam block of a step over `n` values (the training step rewrites it each step).
pub fn adam_uniform(n: usize, h: &AdamParams) -> AdamUniform {
    AdamUniform {
        n: u(n),
        lr: h.lr,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        weight_decay: h.weight_decay,
        bc1: h.bc1,
        bc2: h.bc2,
    }
}

uniform! {
    /// sgd_momentum_update over `n` values.
    pub struct SgdUniform { n: u32, lr: f32, momentum: f32, weight_decay: f32 }
}

/// The SGD block of a step over `n` values.
pub fn sgd_uniform(n: usize, h: &SgdParams) -> SgdUniform {
    SgdUniform {
        n: u(n),
        lr: h.lr,
        momentum: h.momentum,
        weight_decay: h.weight_decay,
    }
}

pub fn adam_update(
    ctx: &GpuContext,
    params: &GpuTensor,
    m: &GpuTensor,
    v: &GpuTensor,
    grads: &GpuTensor,
    h: &AdamParams,
) -> Result<Dispatch> {
    let n = params.len;
    ctx.dispatch(
        "adam_update",
        &adam_uniform(n, h),
        &[params, m, v, grads],
        n,
    )
}

pub fn sgd_momentum_update(
    ctx: &GpuContext,
    params: &GpuTensor,
    vel: &GpuTensor,
    grads: &GpuTensor,
    h: &SgdParams,
) -> Result<Dispatch> {
    let n = params.len;
    ctx.dispatch(
        "sgd_momentum_update",
        &sgd_uniform(n, h),
        &[params, vel, grads],
        n,
    )
}
