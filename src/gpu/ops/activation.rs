//! Elementwise activations and the embedding's normalisation, each forward above its
//! backward: relu, sigmoid, l2norm (one invocation per row, eps from shapes::L2_EPS).

use super::{f, u};
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::shapes::L2_EPS;
use crate::Result;

pub fn relu_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("relu_forward", &[u(n)], &[out, inp], n)
}

pub fn relu_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    out: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("relu_backward", &[u(n)], &[dinp, dout, out], n)
}

pub fn sigmoid_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("sigmoid_forward", &[u(n)], &[out, inp], n)
}

pub fn sigmoid_backward(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    out: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch("sigmoid_backward", &[u(n)], &[dinp, dout, out], n)
}

pub fn l2norm_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    d: usize,
) -> Result<Dispatch> {
    let eps = L2_EPS;
    ctx.dispatch("l2norm_forward", &[u(n), u(d), f(eps)], &[out, inp], n)
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
    let eps = L2_EPS;
    ctx.dispatch(
        "l2norm_backward",
        &[u(n), u(d), f(eps)],
        &[dinp, dout, out, inp],
        n,
    )
}
