//! Optimiser steps over the flat parameter buffer in one dispatch: adam_update,
//! sgd_momentum_update, with the uniform words the training step rewrites each step.

use super::{f, u};
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::optim::{AdamParams, SgdParams};
use crate::Result;

/// Uniform words of an Adam step over `n` values.
pub fn adam_words(n: usize, h: &AdamParams) -> [u32; 8] {
    [
        u(n),
        f(h.lr),
        f(h.beta1),
        f(h.beta2),
        f(h.eps),
        f(h.weight_decay),
        f(h.bc1),
        f(h.bc2),
    ]
}

pub fn sgd_words(n: usize, h: &SgdParams) -> [u32; 4] {
    [u(n), f(h.lr), f(h.momentum), f(h.weight_decay)]
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
    ctx.dispatch("adam_update", &adam_words(n, h), &[params, m, v, grads], n)
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
        &sgd_words(n, h),
        &[params, vel, grads],
        n,
    )
}
