//! Elementwise activations and the embedding's normalisation, each forward above its
//! backward: relu, sigmoid, l2norm (one invocation per row, eps from shapes::L2_EPS).

use super::{u, Count};
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::L2_EPS;
use crate::Result;

uniform! {
    /// l2norm: `n` rows of `d`, norms at least `eps`.
    pub struct RowNorm { n: u32, d: u32, eps: f32 }
}

pub fn relu_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("relu_forward", &Count { n: u(n) }, &[out, inp], n)
}

pub fn relu_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    out: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("relu_backward", &Count { n: u(n) }, &[dinp, dout, out], n)
}

pub fn sigmoid_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("sigmoid_forward", &Count { n: u(n) }, &[out, inp], n)
}

pub fn sigmoid_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    out: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "sigmoid_backward",
        &Count { n: u(n) },
        &[dinp, dout, out],
        n,
    )
}

pub fn l2norm_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    d: usize,
) -> Result<Dispatch> {
    let p = RowNorm {
        n: u(n),
        d: u(d),
        eps: L2_EPS,
    };
    ctx.dispatch("l2norm_forward", &p, &[out, inp], n)
}

pub fn l2norm_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    d: usize,
) -> Result<Dispatch> {
    let p = RowNorm {
        n: u(n),
        d: u(d),
        eps: L2_EPS,
    };
    ctx.dispatch("l2norm_backward", &p, &[dinp, dout, out, inp], n)
}
