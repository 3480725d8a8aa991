//! conv2d_forward, conv2d_forward_relu (the same kernels storing relu(x)) and
//! conv2d_forward_relu_maxpool (conv, ReLU and 2x2 pooling in one pass), each with its
//! variants; the backward passes are in backward.rs beside this file. Which variant wins
//! where is said at each list (measured) and in docs/DESIGN.md's kernel table.

use super::super::tune::tuned_conv;
use super::super::u;
use super::{pad2d, padded, tap_offsets, unpadded_taps, CONV_CHANNELS, CONV_PIXELS, TILE};
use crate::gpu::context::GpuContext;
use crate::gpu::pipeline::WORKGROUP;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::shapes::Conv2dShape;
use crate::{Error, Result};

/// The forward convolution's variants (the default first); autotune picks one per adapter and
/// shape. conv2d_forward reads a padded input with scalar loads; conv2d_forward_v4 reads K
/// shifted copies of it with vec4 loads (K times the memory, fewer loads); conv2d_forward_v4s
/// also stores vec4 (only where Wo is a multiple of 4); conv2d_forward_tiled computes 64 x 64
/// tiles staged through workgroup memory (for hardware GPUs), conv2d_forward_tiled32 and _16
/// 32 or 16 channels x 128 pixels (layers with few output channels), the `_tiled8x8` ones
/// 8 x 8 outputs per invocation read as vec4 (channels x pixels 64 x 128, 64 x 64, 32 x 128,
/// 16 x 256); conv2d_forward_k5c2 is
/// for one input channel and a 5x5 kernel (the first layer where the fused block cannot run),
/// the input shared by the workgroup and 2 channels per lane, Wo a multiple of 4.
pub const FORWARD_VARIANTS: &[&str] = &[
    "conv2d_forward",
    "conv2d_forward_v4",
    "conv2d_forward_v4s",
    "conv2d_forward_k5c2",
    "conv2d_forward_tiled",
    "conv2d_forward_tiled32",
    "conv2d_forward_tiled16",
    "conv2d_forward_tiled8x8_64x128",
    "conv2d_forward_tiled8x8_64x64",
    "conv2d_forward_tiled8x8_32x128",
    "conv2d_forward_tiled8x8_16x256",
];

/// (channels, pixels) of the output tile of a `conv2d_forward_tiled*` variant: 64 x 64, or
/// 32 and 16 channels x 128 pixels for layers with few output channels; the `8x8` ones
/// compute 8 x 8 outputs per invocation (64 x 128, 64 x 64, 32 x 128, 16 x 256).
fn forward_tile(variant: &str) -> Option<(usize, usize)> {
    match variant {
        "conv2d_forward_tiled" => Some((TILE, TILE)),
        "conv2d_forward_tiled32" => Some((32, 128)),
        "conv2d_forward_tiled16" => Some((16, 128)),
        "conv2d_forward_tiled8x8_64x128" => Some((TILE, 128)),
        "conv2d_forward_tiled8x8_64x64" => Some((TILE, TILE)),
        "conv2d_forward_tiled8x8_32x128" => Some((32, 128)),
        "conv2d_forward_tiled8x8_16x256" => Some((16, 256)),
        _ => None,
    }
}

/// What every forward variant is given: the tensors and the shape, the bias as a flag (without
/// one the weights are bound in its place and the shaders never read them) and the ReLU.
#[derive(Clone, Copy)]
struct ForwardArgs<'a> {
    out: &'a GpuTensor,
    inp: &'a GpuTensor,
    weight: &'a GpuTensor,
    bias: &'a GpuTensor,
    has_bias: usize,
    relu: bool,
    s: Conv2dShape,
}

/// The dispatches of one forward variant on the unpadded input `inp` `[B, Ci, H, W]`, with
/// its scratch (padded input, tap table) allocated here, once. Without a bias the sums start
/// at zero.
#[allow(clippy::too_many_arguments)]
pub(in crate::gpu::ops) fn forward_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    relu: bool,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let a = ForwardArgs {
        out,
        inp,
        weight,
        has_bias: bias.is_some() as usize,
        bias: bias.unwrap_or(weight),
        relu,
        s,
    };
    if let Some(tile) = forward_tile(variant) {
        return forward_tiled(ctx, variant, tile, a);
    }
    if variant == "conv2d_forward_k5c2" {
        return forward_k5c2(ctx, variant, a);
    }
    forward_blocked(ctx, variant, a)
}

/// A `_tiled` variant: (tm, tn) tiles staged through workgroup memory, read through the tap
/// table from the unpadded input (no pad2d pass).
fn forward_tiled(
    ctx: &GpuContext,
    variant: &'static str,
    (tm, tn): (usize, usize),
    a: ForwardArgs,
) -> Result<Vec<Dispatch>> {
    let ForwardArgs {
        out,
        inp,
        weight,
        bias,
        has_bias,
        relu,
        s,
    } = a;
    let mut d = Vec::new();
    let taps = unpadded_taps(ctx, &s)?;
    let (x, y) = (
        (s.batch * s.ho() * s.wo()).div_ceil(tn),
        s.cout.div_ceil(tm),
    );
    let words = [
        s.batch,
        s.cin,
        s.cout,
        s.h,
        s.w,
        s.ho(),
        s.wo(),
        has_bias,
        relu as usize,
        s.cin * s.k * s.k,
        s.pad,
    ];
    let bind = [out, inp, weight, bias, &taps];
    d.push(ctx.dispatch_grid(variant, &words.map(u), &bind, (x, y))?);
    Ok(d)
}

/// conv2d_forward_k5c2: one input channel, a 5x5 kernel, Wo a multiple of 4; the padded input
/// is the workgroup's shared operand, 2 channels per lane.
fn forward_k5c2(ctx: &GpuContext, variant: &'static str, a: ForwardArgs) -> Result<Vec<Dispatch>> {
    let ForwardArgs {
        out,
        inp,
        weight,
        bias,
        has_bias,
        relu,
        s,
    } = a;
    let mut d = Vec::new();
    let hp = s.h + 2 * s.pad;
    if s.cin != 1 || s.k != 5 || !s.wo().is_multiple_of(4) {
        return Err(Error::Gpu(format!(
            "{variant} needs one input channel, a 5x5 kernel and an output width that is a \
             multiple of 4, not {}, {}x{} and {}",
            s.cin,
            s.k,
            s.k,
            s.wo()
        )));
    }
    // Rows of the padded input reach 3 vec4 past each group of 8 pixels; with Ho odd the
    // last pair's second row reads one row past the batch (a spare row, never stored).
    let (wo8, ho2) = (s.wo().div_ceil(8), s.ho().div_ceil(2));
    let wr4 = 2 * wo8 + 1;
    let xp = ctx.tensor((s.batch * hp + 1) * wr4 * 4, "conv input, padded")?;
    d.push(pad2d(ctx, &xp, inp, s.batch, s.h, s.w, s.pad, wr4 * 4, 1)?);
    let words = [
        s.batch,
        s.cout,
        s.ho(),
        s.wo() / 4,
        hp,
        wr4,
        ho2,
        wo8,
        has_bias,
        relu as usize,
    ];
    let x = s
        .cout
        .div_ceil(FUSED_ROW_CHANNELS)
        .div_ceil(WORKGROUP as usize);
    d.push(ctx.dispatch_grid(
        variant,
        &words.map(u),
        &[out, &xp, weight, bias],
        (x, s.batch * ho2),
    )?);
    Ok(d)
}

/// The register-blocked variants (conv2d_forward, _v4, _v4s): a zero-padded copy of the input
/// (K shifted copies for _v4*) and a tap-offset table, 16 channels x 16 pixels per lane.
fn forward_blocked(
    ctx: &GpuContext,
    variant: &'static str,
    a: ForwardArgs,
) -> Result<Vec<Dispatch>> {
    let ForwardArgs {
        out,
        inp,
        weight,
        bias,
        has_bias,
        relu,
        s,
    } = a;
    let mut d = Vec::new();
    let hp = s.h + 2 * s.pad;
    let (grid_x, words, xp, taps) = match variant {
        "conv2d_forward" => {
            let wp = s.w + 2 * s.pad;
            let xp = padded(
                ctx,
                &mut d,
                inp,
                (s.batch * s.cin, s.h, s.w, s.pad),
                "conv input, padded",
            )?;
            let words = vec![
                s.batch,
                s.cin,
                s.cout,
                hp,
                wp,
                s.k,
                s.ho(),
                s.wo(),
                has_bias,
                relu as usize,
            ];
            let pixels = s.batch * s.ho() * s.wo();
            let taps = tap_offsets(s.cin, s.k, hp, wp, 0);
            (pixels.div_ceil(CONV_PIXELS), words, xp, taps)
        }
        "conv2d_forward_v4" | "conv2d_forward_v4s" => {
            if variant == "conv2d_forward_v4s" && !s.wo().is_multiple_of(4) {
                return Err(Error::Gpu(format!(
                    "conv2d_forward_v4s needs an output width that is a multiple of 4, not {}",
                    s.wo()
                )));
            }
            let wr4 = s.wo().div_ceil(4);
            let copy = s.batch * s.cin * hp * wr4;
            let xp = ctx.tensor(s.k * copy * 4, "conv input, padded and shifted")?;
            d.push(pad2d(
                ctx,
                &xp,
                inp,
                s.batch * s.cin,
                s.h,
                s.w,
                s.pad,
                wr4 * 4,
                s.k,
            )?);
            let words = vec![
                s.batch,
                s.cin,
                s.cout,
                hp,
                wr4,
                s.ho(),
                s.wo(),
                has_bias,
                s.cin * s.k * s.k,
                relu as usize,
            ];
            let groups = s.batch * s.ho() * wr4;
            let taps = tap_offsets(s.cin, s.k, hp, wr4, copy);
            (groups.div_ceil(CONV_PIXELS / 4), words, xp, taps)
        }
        other => return Err(Error::Gpu(format!("no conv2d_forward variant {other}"))),
    };
    let x = grid_x.div_ceil(WORKGROUP as usize);
    let taps = ctx.tensor_from(&taps, "conv tap offsets")?;
    let words: Vec<u32> = words.into_iter().map(u).collect();
    d.push(ctx.dispatch_grid(
        variant,
        &words,
        &[out, &xp, weight, bias, &taps],
        (x, s.cout.div_ceil(CONV_CHANNELS)),
    )?);
    Ok(d)
}

/// conv2d_forward with a given variant (tests run them all).
pub fn conv2d_forward_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    forward_variant(ctx, variant, out, inp, weight, Some(bias), false, s)
}

/// conv2d_forward_relu with a given variant (tests run them all).
pub fn conv2d_forward_relu_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    forward_variant(ctx, variant, out, inp, weight, Some(bias), true, s)
}

/// out `[B, Co, Ho, Wo]` = conv(inp `[B, Ci, H, W]`, weight `[Co, Ci, K, K]`) + bias `[Co]`:
/// pad2d into a padded copy of the input (allocated here, once), then the variant of the
/// implicit-GEMM kernel that autotune measured fastest for this adapter and shape.
pub fn conv2d_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    conv_forward_tuned(ctx, out, inp, weight, bias, false, s)
}

/// out `[B, Co, Ho, Wo]` = relu(conv2d_forward(...)): the same kernels (and autotune choice)
/// with the ReLU applied as they store, saving relu_forward's pass over the layer's output.
/// GPU only; tested against the reference conv2d_forward followed by relu_forward.
pub fn conv2d_forward_relu(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    conv_forward_tuned(ctx, out, inp, weight, bias, true, s)
}

/// Whether conv2d_forward_relu_maxpool takes a layer of this shape: an even output height and
/// an output width that is a multiple of 8 (4 pooled outputs per code word, never two rows).
pub fn relu_maxpool_fits(s: &Conv2dShape) -> bool {
    s.ho() > 0 && s.ho().is_multiple_of(2) && s.wo() > 0 && s.wo().is_multiple_of(8)
}

/// u32 words of conv2d_forward_relu_maxpool's codes: one per 4 pooled outputs.
pub fn pool_code_words(s: &Conv2dShape) -> usize {
    s.batch * s.cout * (s.ho() / 2) * (s.wo() / 8)
}

/// pooled `[B, Co, Ho/2, Wo/2]` = maxpool2d(relu(conv2d_forward(...))) in one pass, and codes
/// `[pool_code_words]` u32 (each window's argmax, for maxpool2d_relu_backward_argmax): the
/// full-size activation is never written and maxpool2d_forward's pass over it is gone. pad2d
/// writes K shifted padded copies of the input into scratch allocated here, once. Only where
/// relu_maxpool_fits; the engine keeps the unfused passes elsewhere.
pub fn conv2d_forward_relu_maxpool(
    ctx: &GpuContext,
    pooled: &GpuTensor,
    codes: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(
        ctx,
        "conv2d_forward_relu_maxpool",
        &s,
        RELU_MAXPOOL_VARIANTS,
        |v| conv2d_forward_relu_maxpool_variant(ctx, v, pooled, codes, inp, weight, bias, s),
    )
}

/// conv2d_forward_relu_maxpool's variants, the default first: 16 channels from the workgroup
/// x 16 pixels per lane (any input channels and kernel size), and `_k5c2` for one input
/// channel and a 5x5 kernel (the first layer), with the input shared by the workgroup and 2
/// channels per lane; `_tiled32` and `_tiled16` stage 32 or 16 channels x 256 pixels through
/// workgroup memory (hardware GPUs). Same outputs, same sums in the same order.
pub const RELU_MAXPOOL_VARIANTS: &[&str] = &[
    "conv2d_forward_relu_maxpool",
    "conv2d_forward_relu_maxpool_k5c2",
    "conv2d_forward_relu_maxpool_tiled32",
    "conv2d_forward_relu_maxpool_tiled16",
];

/// Output channels per invocation of conv2d_forward_relu_maxpool_k5c2 and conv2d_forward_k5c2.
const FUSED_ROW_CHANNELS: usize = 2;

/// conv2d_forward_relu_maxpool with a given variant (tests run them all).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_relu_maxpool_variant(
    ctx: &GpuContext,
    variant: &'static str,
    pooled: &GpuTensor,
    codes: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    if !relu_maxpool_fits(&s) {
        return Err(Error::Gpu(format!(
            "conv2d_forward_relu_maxpool needs an even output height and an output width that \
             is a multiple of 8, not {}x{}",
            s.ho(),
            s.wo()
        )));
    }
    let hp = s.h + 2 * s.pad;
    if variant == "conv2d_forward_relu_maxpool_k5c2" {
        return relu_maxpool_k5c2(ctx, variant, pooled, codes, inp, weight, bias, s);
    }
    let tiled = match variant {
        "conv2d_forward_relu_maxpool_tiled32" => Some(32),
        "conv2d_forward_relu_maxpool_tiled16" => Some(16),
        _ => None,
    };
    if let Some(tm) = tiled {
        // One workgroup per 16 quads (2 rows x 8 pixels, one code word) and tm channels.
        let taps = unpadded_taps(ctx, &s)?;
        let quads = pool_code_words(&s) / s.cout;
        let words = [
            s.batch,
            s.cin,
            s.cout,
            s.h,
            s.w,
            s.ho() / 2,
            s.wo() / 8,
            s.cin * s.k * s.k,
            s.pad,
        ];
        let bind = [pooled, codes, inp, weight, bias, &taps];
        let grid = (quads.div_ceil(16), s.cout.div_ceil(tm));
        return Ok(vec![ctx.dispatch_grid(
            variant,
            &words.map(u),
            &bind,
            grid,
        )?]);
    }
    if variant != "conv2d_forward_relu_maxpool" {
        return Err(Error::Gpu(format!(
            "no conv2d_forward_relu_maxpool variant {variant}"
        )));
    }
    let wr4 = s.wo() / 4;
    let copy = s.batch * s.cin * hp * wr4;
    let xp = ctx.tensor(s.k * copy * 4, "conv input, padded and shifted")?;
    let mut d = vec![pad2d(
        ctx,
        &xp,
        inp,
        s.batch * s.cin,
        s.h,
        s.w,
        s.pad,
        wr4 * 4,
        s.k,
    )?];
    let groups = pool_code_words(&s) / s.cout;
    let x = groups.div_ceil(WORKGROUP as usize);
    let taps = ctx.tensor_from(&tap_offsets(s.cin, s.k, hp, wr4, copy), "conv tap offsets")?;
    let words = [
        s.batch,
        s.cin,
        s.cout,
        hp,
        wr4,
        s.ho() / 2,
        s.wo() / 8,
        s.cin * s.k * s.k,
    ];
    d.push(ctx.dispatch_grid(
        "conv2d_forward_relu_maxpool",
        &words.map(u),
        &[pooled, codes, &xp, weight, bias, &taps],
        (x, s.cout.div_ceil(CONV_CHANNELS)),
    )?);
    Ok(d)
}

/// conv2d_forward_relu_maxpool_k5c2: one input channel and a 5x5 kernel (the first layer), the
/// padded input shared by the workgroup, 2 channels' 25 weights per lane.
#[allow(clippy::too_many_arguments)]
fn relu_maxpool_k5c2(
    ctx: &GpuContext,
    variant: &'static str,
    pooled: &GpuTensor,
    codes: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let hp = s.h + 2 * s.pad;
    if s.cin != 1 || s.k != 5 {
        return Err(Error::Gpu(format!(
            "{variant} needs one input channel and a 5x5 kernel, not {} and {}x{}",
            s.cin, s.k, s.k
        )));
    }
    // Rows of the padded input reach 3 vec4 past each group of 8 pixels.
    let wr4 = s.wo() / 4 + 1;
    let xp = ctx.tensor(s.batch * hp * wr4 * 4, "conv input, padded")?;
    let mut d = vec![pad2d(ctx, &xp, inp, s.batch, s.h, s.w, s.pad, wr4 * 4, 1)?];
    let x = s
        .cout
        .div_ceil(FUSED_ROW_CHANNELS)
        .div_ceil(WORKGROUP as usize);
    let y = s.batch * s.ho() / 2;
    let words = [s.batch, s.cout, hp, wr4, s.ho() / 2, s.wo() / 8];
    d.push(ctx.dispatch_grid(
        variant,
        &words.map(u),
        &[pooled, codes, &xp, weight, bias],
        (x, y),
    )?);
    Ok(d)
}

/// The forward variant autotune measured fastest for this shape (timed on these very
/// buffers), built.
fn conv_forward_tuned(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    relu: bool,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(ctx, "conv2d_forward", &s, FORWARD_VARIANTS, |v| {
        forward_variant(ctx, v, out, inp, weight, Some(bias), relu, s)
    })
}
