//! Global average + max pooling, the position-free input of the dense layer:
//! global_avgmax_pool_forward and global_avgmax_pool_backward, one invocation per plane.

use super::u;
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::GlobalPoolShape;
use crate::{Error, Result};

uniform! {
    /// global_avgmax_pool: `b` images of `c` planes of `hw` values.
    pub struct GlobalPoolParams { b: u32, c: u32, hw: u32 }
}

fn params(s: &GlobalPoolShape) -> Result<GlobalPoolParams> {
    if s.h * s.w == 0 {
        return Err(Error::Gpu(format!(
            "global_avgmax_pool: an empty {}x{} plane has no mean or maximum",
            s.h, s.w
        )));
    }
    Ok(GlobalPoolParams {
        b: u(s.batch),
        c: u(s.c),
        hw: u(s.h * s.w),
    })
}

/// out `[B, 2C]` from inp `[B, C, H, W]`.
pub fn global_avgmax_pool_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    s: GlobalPoolShape,
) -> Result<Dispatch> {
    ctx.dispatch(
        "global_avgmax_pool_forward",
        &params(&s)?,
        &[out, inp],
        s.batch * s.c,
    )
}

/// dinp `[B, C, H, W]` from dout `[B, 2C]` and the forward pass's input.
pub fn global_avgmax_pool_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: GlobalPoolShape,
) -> Result<Dispatch> {
    ctx.dispatch(
        "global_avgmax_pool_backward",
        &params(&s)?,
        &[dinp, dout, inp],
        s.batch * s.c,
    )
}
