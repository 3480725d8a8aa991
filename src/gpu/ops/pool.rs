//! 2x2 max pooling: maxpool2d_forward, maxpool2d_backward, maxpool2d_relu_backward (the
//! backward shader with the ReLU's mask folded in) and maxpool2d_relu_backward_argmax (the
//! backward of conv2d_forward_relu_maxpool, routing dout by the codes it stored).

use super::u;
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::PoolShape;
use crate::{Error, Result};

uniform! {
    /// maxpool2d_forward: `bc` planes of `h` x `w` pooled to `ho` x `wo`.
    pub struct PoolParams { bc: u32, h: u32, w: u32, ho: u32, wo: u32 }
}

uniform! {
    /// maxpool2d_backward; `relu` (0 or 1): route nothing where the window's maximum is 0.
    pub struct PoolGradParams { bc: u32, h: u32, w: u32, ho: u32, wo: u32, relu: u32 }
}

uniform! {
    /// maxpool2d_relu_backward_argmax: `words` of 4 codes, `w8` groups of 8 input columns.
    pub struct ArgmaxParams { words: u32, w8: u32 }
}

fn pool_params(s: &PoolShape) -> PoolParams {
    PoolParams {
        bc: u(s.batch * s.c),
        h: u(s.h),
        w: u(s.w),
        ho: u(s.ho()),
        wo: u(s.wo()),
    }
}

pub fn maxpool2d_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    s: PoolShape,
) -> Result<Dispatch> {
    ctx.dispatch(
        "maxpool2d_forward",
        &pool_params(&s),
        &[out, inp],
        s.out_len(),
    )
}

pub fn maxpool2d_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: PoolShape,
) -> Result<Dispatch> {
    pool_backward(ctx, dinp, dout, inp, s, false)
}

/// dinp `[B, C, H, W]` = relu_backward(maxpool2d_backward(dout, inp), inp) in one pass, where
/// inp is the ReLU's output: the shader of maxpool2d_backward, routing nothing where the
/// window's maximum is 0. GPU only; tested against the two reference functions in a row.
pub fn maxpool2d_relu_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: PoolShape,
) -> Result<Dispatch> {
    pool_backward(ctx, dinp, dout, inp, s, true)
}

fn pool_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: PoolShape,
    relu: bool,
) -> Result<Dispatch> {
    // One invocation per window, or per input when there is no window.
    let threads = if s.out_len() == 0 {
        s.in_len()
    } else {
        s.out_len()
    };
    let p = pool_params(&s);
    let p = PoolGradParams {
        bc: p.bc,
        h: p.h,
        w: p.w,
        ho: p.ho,
        wo: p.wo,
        relu: relu as u32,
    };
    ctx.dispatch("maxpool2d_backward", &p, &[dinp, dout, inp], threads)
}

/// dinp `[B, C, H, W]` from dout `[B, C, H/2, W/2]` and the codes conv2d_forward_relu_maxpool
/// kept: pooling's and the ReLU's backward passes without reading the activation. H even, W a
/// multiple of 8.
pub fn maxpool2d_relu_backward_argmax(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    codes: &GpuTensor,
    s: PoolShape,
) -> Result<Dispatch> {
    if !s.h.is_multiple_of(2) || !s.w.is_multiple_of(8) {
        return Err(Error::Gpu(format!(
            "maxpool2d_relu_backward_argmax needs an even height and a width that is a \
             multiple of 8, not {}x{}",
            s.h, s.w
        )));
    }
    let words = s.out_len() / 4;
    ctx.dispatch(
        "maxpool2d_relu_backward_argmax",
        &ArgmaxParams {
            words: u(words),
            w8: u(s.w / 8),
        },
        &[dinp, dout, codes],
        words,
    )
}
