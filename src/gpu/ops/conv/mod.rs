//! Convolution: the forward pass (forward.rs) and its input, weight and bias gradients
//! (backward.rs), and what both read through: pad2d (a zero border, or K shifted copies for
//! the vec4 variants), conv2d_flip_weight (the input gradient's weights) and the tap tables.
//!
//! Kernels here: pad2d (`pad2d_v4`: one invocation per row, vec4 stores, lavapipe's pick where
//! the row width is a multiple of 4; `pad2d`: scalar rows; `pad2d_elem`: one invocation per
//! element, coalesced stores for hardware GPUs), conv2d_flip_weight.

mod backward;
mod forward;

pub use backward::*;
pub use forward::*;

use super::u;
use super::variants::variants;
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::Conv2dShape;
use crate::{Error, Result};

uniform! {
    /// pad2d: `n` planes of `h` x `w` into rows of `wr` with `pad` zeros, `copies` shifted.
    pub struct PadParams { n: u32, h: u32, w: u32, pad: u32, wr: u32, copies: u32 }
}
uniform! {
    /// conv2d_flip_weight: `cout` x `cin` kernels of `k` x `k`.
    pub struct FlipParams { cout: u32, cin: u32, k: u32 }
}

/// Output channels x consecutive output pixels each conv2d_forward invocation computes
/// (the register block of tools/gen_kernels.py).
const CONV_CHANNELS: usize = 16;
const CONV_PIXELS: usize = 16;

/// out `[copies, N, H + 2 pad, wr]`: copies of inp `[N, H, W]` in a zero border, copy c
/// shifted left by c columns (one copy with `wr = W + 2 pad` is plain padding), by the
/// variant autotune measured fastest for this adapter and shape.
#[allow(clippy::too_many_arguments)]
pub fn pad2d(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    h: usize,
    w: usize,
    pad: usize,
    wr: usize,
    copies: usize,
) -> Result<Dispatch> {
    let variants: Vec<&'static str> = variants("pad2d")
        .into_iter()
        .filter(|v| *v != "pad2d_v4" || wr.is_multiple_of(4))
        .collect();
    let key = format!("pad2d n{n} {h}x{w} pad{pad} wr{wr} copies{copies}");
    ctx.tune.pick(
        &key,
        &variants,
        |v| pad2d_variant(ctx, v, out, inp, n, h, w, pad, wr, copies),
        |d| ctx.run(&[d]),
    )
}

/// pad2d with a given variant (tests run them all); pad2d_v4 needs `wr` a multiple of 4.
#[allow(clippy::too_many_arguments)]
pub fn pad2d_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    n: usize,
    h: usize,
    w: usize,
    pad: usize,
    wr: usize,
    copies: usize,
) -> Result<Dispatch> {
    let rows = copies * n * (h + 2 * pad);
    let threads = match variant {
        "pad2d" => rows,
        "pad2d_v4" if wr.is_multiple_of(4) => rows,
        "pad2d_elem" => rows * wr,
        _ => return Err(Error::Gpu(format!("{variant} cannot pad rows of {wr}"))),
    };
    ctx.dispatch(
        variant,
        &PadParams {
            n: u(n),
            h: u(h),
            w: u(w),
            pad: u(pad),
            wr: u(wr),
            copies: u(copies),
        },
        &[out, inp],
        threads,
    )
}

/// A zero-padded copy of `inp` `[planes, h, w]` (allocated here, once, and filled by a pad2d
/// pushed onto `d`), or `inp` itself when `pad` is 0.
fn padded(
    ctx: &GpuContext,
    d: &mut Vec<Dispatch>,
    inp: &GpuTensor,
    (planes, h, w, pad): (usize, usize, usize, usize),
    label: &str,
) -> Result<GpuTensor> {
    if pad == 0 {
        return Ok(inp.clone());
    }
    let wr = w + 2 * pad;
    let t = ctx.tensor(planes * (h + 2 * pad) * wr, label)?;
    d.push(pad2d(ctx, &t, inp, planes, h, w, pad, wr, 1)?);
    Ok(t)
}

/// flipped `[Ci, Co, K, K]` from weight `[Co, Ci, K, K]` (axes swapped, kernels rotated 180).
pub fn conv2d_flip_weight(
    ctx: &GpuContext,
    flipped: &GpuTensor,
    weight: &GpuTensor,
    cout: usize,
    cin: usize,
    k: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "conv2d_flip_weight",
        &FlipParams {
            cout: u(cout),
            cin: u(cin),
            k: u(k),
        },
        &[flipped, weight],
        cout * cin * k * k,
    )
}

/// Output tile side (channels and pixels, or channels and taps) of the `_tiled` variants,
/// which stage operands through workgroup memory for hardware GPUs.
const TILE: usize = 64;

/// `[Ci K K]` offsets of each tap (ci, ky, kx) from an output pixel's first element: for
/// conv2d_forward in a padded input of `hp` x `wp` planes; for conv2d_forward_v4, in vec4, in
/// the shifted copies (`wp` = Wr / 4, `copy` = one copy's length in vec4).
fn tap_offsets(cin: usize, k: usize, hp: usize, wp: usize, copy: usize) -> Vec<u32> {
    let mut t = Vec::with_capacity(cin * k * k);
    for ci in 0..cin {
        for ky in 0..k {
            for kx in 0..k {
                t.push(u(if copy == 0 {
                    ci * hp * wp + ky * wp + kx
                } else {
                    kx * copy + ci * hp * wp + ky * wp
                }));
            }
        }
    }
    t
}

/// What the `_tiled` variants read the unpadded input through, allocated here, once:
/// `[Ci K K, 2]` u32, per tap (ci, ky, kx) its offset `ci H W + ky W + kx` from a pixel's
/// window corner and `ky << 16 | kx`, from which the shader tells the taps that land in
/// the zero border (they read nothing, so no pad2d pass runs before these kernels).
fn unpadded_taps(ctx: &GpuContext, s: &Conv2dShape) -> Result<GpuTensor> {
    let mut t = Vec::with_capacity(2 * s.cin * s.k * s.k);
    for ci in 0..s.cin {
        for ky in 0..s.k {
            for kx in 0..s.k {
                t.push(u(ci * s.h * s.w + ky * s.w + kx));
                t.push(u(ky << 16 | kx));
            }
        }
    }
    ctx.tensor_from(&t, "conv tap table")
}

/// The input gradient as a forward convolution: shape of dout padded by K - 1 - pad.
fn transposed(s: &Conv2dShape) -> Conv2dShape {
    Conv2dShape {
        batch: s.batch,
        cin: s.cout,
        cout: s.cin,
        h: s.ho(),
        w: s.wo(),
        k: s.k,
        pad: s.k - 1 - s.pad,
    }
}
