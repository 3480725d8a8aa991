//! Fixed-order sums over rows (no float atomics anywhere): batch_sum (`_split`: 16 lanes per
//! column, deep sums over few columns on hardware GPUs) and batch_sum_pair (two column ranges
//! of one partial buffer in one pass, after conv2d_backward_params' fused tiles).

use super::tune::variants_for;
use super::u;
use super::variants::variants;
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::groups_grid;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::{Error, Result};

uniform! {
    /// batch_sum: sums over `rows` of `len` columns.
    pub struct SumParams { rows: u32, len: u32 }
}

uniform! {
    /// batch_sum_pair: the first `len_a` and the next `len_b` columns of rows of `stride`.
    pub struct SumPairParams { rows: u32, len_a: u32, len_b: u32, stride: u32 }
}

/// out_a `[len_a]` and out_b `[len_b]`: the sums over rows of inp `[rows, stride]`'s first
/// len_a columns and the len_b after them (len_a + len_b = stride).
pub fn batch_sum_pair(
    ctx: &GpuContext,
    out_a: &GpuTensor,
    out_b: &GpuTensor,
    inp: &GpuTensor,
    rows: usize,
    stride: usize,
) -> Result<Dispatch> {
    let p = SumPairParams {
        rows: u(rows),
        len_a: u(out_a.len),
        len_b: u(out_b.len),
        stride: u(stride),
    };
    let grid = groups_grid((out_a.len + out_b.len).div_ceil(16));
    ctx.dispatch_grid("batch_sum_pair", &p, &[out_a, out_b, inp], grid)
}

/// out `[len]` = sum over rows of inp `[rows, len]`, by the variant autotune measured fastest.
pub fn batch_sum(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    rows: usize,
    len: usize,
) -> Result<Dispatch> {
    ctx.tune.pick(
        &format!("batch_sum r{rows} n{len}"),
        &variants_for(ctx, &variants("batch_sum")),
        |v| batch_sum_variant(ctx, v, out, inp, rows, len),
        |d| ctx.run(&[d]),
    )
}

/// batch_sum with a given variant (tests run them all).
pub fn batch_sum_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    rows: usize,
    len: usize,
) -> Result<Dispatch> {
    let p = SumParams {
        rows: u(rows),
        len: u(len),
    };
    match variant {
        "batch_sum" => ctx.dispatch(variant, &p, &[out, inp], len),
        "batch_sum_split" => {
            let (x, y) = groups_grid(len.div_ceil(16));
            ctx.dispatch_grid(variant, &p, &[out, inp], (x, y))
        }
        _ => Err(Error::Gpu(format!("no batch_sum variant {variant}"))),
    }
}
