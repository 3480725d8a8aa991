//! Batch normalisation: batchnorm_forward (training: batch statistics, one workgroup per
//! channel), batchnorm_backward (the same grid) and batchnorm_inference (running statistics,
//! elementwise; where the convolution before it is not folded).

use super::u;
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::{NormShape, BN_EPS};
use crate::{Error, Result};

uniform! {
    /// batchnorm_forward: `b` images of `c` planes of `hw` values.
    pub struct NormTrainParams { b: u32, c: u32, hw: u32, momentum: f32, eps: f32 }
}

uniform! {
    /// batchnorm_inference.
    pub struct NormInferParams { b: u32, c: u32, hw: u32, eps: f32 }
}

uniform! {
    /// batchnorm_backward.
    pub struct NormShapeParams { b: u32, c: u32, hw: u32 }
}

/// The shape guard every batchnorm kernel shares: statistics need values, and the
/// per-channel kernels run one workgroup per channel.
fn check(name: &str, s: &NormShape) -> Result<()> {
    if s.is_empty() {
        return Err(Error::Gpu(format!(
            "{name}: an empty {}x{}x{}x{} tensor has no statistics",
            s.batch, s.c, s.h, s.w
        )));
    }
    Ok(())
}

/// out `[B, C, H, W]`, stats `[2, C]` (mean, invstd) and the running statistics `[C]`
/// (updated in place; `momentum` 0 keeps them) from inp, gamma `[C]` and beta `[C]`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    stats: &GpuTensor,
    running_mean: &GpuTensor,
    running_var: &GpuTensor,
    inp: &GpuTensor,
    gamma: &GpuTensor,
    beta: &GpuTensor,
    momentum: f32,
    s: NormShape,
) -> Result<Dispatch> {
    check("batchnorm_forward", &s)?;
    let p = NormTrainParams {
        b: u(s.batch),
        c: u(s.c),
        hw: u(s.h * s.w),
        momentum,
        eps: BN_EPS,
    };
    let bindings = [out, stats, running_mean, running_var, inp, gamma, beta];
    ctx.dispatch_grid("batchnorm_forward", &p, &bindings, (s.c, 1))
}

/// out `[B, C, H, W]` from inp with the running statistics `[C]`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_inference(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    gamma: &GpuTensor,
    beta: &GpuTensor,
    running_mean: &GpuTensor,
    running_var: &GpuTensor,
    s: NormShape,
) -> Result<Dispatch> {
    check("batchnorm_inference", &s)?;
    let p = NormInferParams {
        b: u(s.batch),
        c: u(s.c),
        hw: u(s.h * s.w),
        eps: BN_EPS,
    };
    let bindings = [out, inp, gamma, beta, running_mean, running_var];
    ctx.dispatch("batchnorm_inference", &p, &bindings, s.len())
}

/// dinp `[B, C, H, W]`, dgamma `[C]` and dbeta `[C]` from dout, the forward pass's input
/// and stats `[2, C]`, and gamma.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dgamma: &GpuTensor,
    dbeta: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    stats: &GpuTensor,
    gamma: &GpuTensor,
    s: NormShape,
) -> Result<Dispatch> {
    check("batchnorm_backward", &s)?;
    let p = NormShapeParams {
        b: u(s.batch),
        c: u(s.c),
        hw: u(s.h * s.w),
    };
    let bindings = [dinp, dgamma, dbeta, dout, inp, stats, gamma];
    ctx.dispatch_grid("batchnorm_backward", &p, &bindings, (s.c, 1))
}
