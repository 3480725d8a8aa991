//! A conv block with batch normalisation on the GPU (its own file: engine/gpu.rs is at the
//! structure rule's size).

use super::tensor_view;
use crate::gpu::ops as k;
use crate::gpu::{Dispatch, GpuContext, GpuTensor};
use crate::model::NormTensors;
use crate::shapes::{Conv2dShape, NormShape, BN_MOMENTUM};
use crate::Result;

/// A conv block with batch normalisation in a training pass: conv, normalisation (batch
/// statistics, moving the running ones), ReLU and pooling, four passes (the ReLU's output is
/// what pooling's backward pass reads). Inference never comes here: it runs the folded
/// network (fold::folded) through the fused conv + ReLU + pooling kernels. Returns the
/// dispatches, the ReLU's output, and the conv output and batch statistics `[2, C]` that
/// batchnorm_backward reads. `io`: (input, conv weight, conv bias, pooled output).
pub(super) fn norm_block(
    ctx: &GpuContext,
    params: &GpuTensor,
    t: NormTensors,
    io: (&GpuTensor, &GpuTensor, &GpuTensor, &GpuTensor),
    s: Conv2dShape,
    ns: NormShape,
) -> Result<NormBlock> {
    let (inp, w, b, pl) = io;
    // Buffers labelled by channel count (the block index is not passed for a label).
    let ch = ns.c;
    let z = ctx.tensor(s.out_len(), &format!("conv out ({ch} ch)"))?;
    let y = ctx.tensor(s.out_len(), &format!("bn out ({ch} ch)"))?;
    let mut d = k::conv2d_forward(ctx, &z, inp, w, b, s)?;
    let v = |t| tensor_view(params, t);
    let (gamma, beta) = (v(t.gamma), v(t.beta));
    let (rm, rv) = (v(t.running_mean), v(t.running_var));
    let stats = ctx.tensor(2 * ns.c, "bn stats")?;
    d.push(k::batchnorm_forward(
        ctx,
        &y,
        &stats,
        &rm,
        &rv,
        &z,
        &gamma,
        &beta,
        BN_MOMENTUM,
        ns,
    )?);
    let al = ctx.tensor(s.out_len(), &format!("relu out ({ch} ch)"))?;
    d.push(k::relu_forward(ctx, &al, &y, s.out_len())?);
    d.push(k::maxpool2d_forward(ctx, pl, &al, s.pool())?);
    Ok((d, al, (z, stats)))
}

/// What norm_block returns: dispatches, ReLU output, (conv output, batch statistics).
pub(super) type NormBlock = (Vec<Dispatch>, GpuTensor, (GpuTensor, GpuTensor));
