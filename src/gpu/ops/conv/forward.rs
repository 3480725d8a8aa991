//! conv2d_forward, conv2d_forward_relu (the same kernels storing relu(x)) and
//! conv2d_forward_relu_maxpool (conv, ReLU and 2x2 pooling in one pass), each with its
//! variants; the backward passes are in backward.rs beside this file. Which variant wins
//! where is said at each list (measured) and in docs/DESIGN.md's kernel table.

use super::super::tune::tuned_conv;
use super::super::u;
use super::super::variants::{variant_of, variants};
use super::{pad2d, padded, tap_offsets, unpadded_taps, CONV_CHANNELS, CONV_PIXELS};
use crate::gpu::context::GpuContext;
use crate::gpu::pipeline::WORKGROUP;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::Conv2dShape;
use crate::{Error, Result};

uniform! {
    /// conv2d_forward: a padded input of `hp` x `wp`, `k` x `k` kernels.
    pub struct ConvParams {
        batch: u32,
        cin: u32,
        cout: u32,
        hp: u32,
        wp: u32,
        k: u32,
        ho: u32,
        wo: u32,
        has_bias: u32,
        relu: u32,
    }
}
uniform! {
    /// conv2d_forward_v4 / _v4s: K shifted padded copies of rows of `wr4` vec4; `ws` = Ci K K.
    pub struct ConvV4Params {
        batch: u32,
        cin: u32,
        cout: u32,
        hp: u32,
        wr4: u32,
        ho: u32,
        wo: u32,
        has_bias: u32,
        ws: u32,
        relu: u32,
    }
}
uniform! {
    /// conv2d_forward_tiled*: the unpadded input; `ws` = Ci K K taps.
    pub struct ConvTiledParams {
        batch: u32,
        cin: u32,
        cout: u32,
        h: u32,
        w: u32,
        ho: u32,
        wo: u32,
        has_bias: u32,
        relu: u32,
        ws: u32,
        pad: u32,
    }
}
uniform! {
    /// conv2d_forward_k5c2: rows of `wr4` vec4, output in pairs of rows and groups of 8.
    pub struct ConvK5c2Params {
        batch: u32,
        cout: u32,
        ho: u32,
        wo4: u32,
        hp: u32,
        wr4: u32,
        ho2: u32,
        wo8: u32,
        has_bias: u32,
        relu: u32,
    }
}
uniform! {
    /// conv2d_forward_relu_maxpool: K shifted copies, pooled output `ho2` x (8 `wo8`) / 2.
    pub struct FusedParams {
        batch: u32,
        cin: u32,
        cout: u32,
        hp: u32,
        wr4: u32,
        ho2: u32,
        wo8: u32,
        ws: u32,
    }
}
uniform! {
    /// conv2d_forward_relu_maxpool_k5c2: one input channel, 5x5.
    pub struct FusedK5c2Params { batch: u32, cout: u32, hp: u32, wr4: u32, ho2: u32, wo8: u32 }
}
uniform! {
    /// conv2d_forward_relu_maxpool_tiled*: the unpadded input.
    pub struct FusedTiledParams {
        batch: u32,
        cin: u32,
        cout: u32,
        h: u32,
        w: u32,
        ho2: u32,
        wo8: u32,
        ws: u32,
        pad: u32,
    }
}

/// A register-blocked forward variant's block.
enum Blocked {
    Plain(ConvParams),
    V4(ConvV4Params),
}

/// (channels, pixels) of the output tile of a `conv2d_forward_tiled*` variant.
fn forward_tile(variant: &str) -> Option<(usize, usize)> {
    variant_of("conv2d_forward", variant).and_then(|v| v.tile)
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
    let p = ConvTiledParams {
        batch: u(s.batch),
        cin: u(s.cin),
        cout: u(s.cout),
        h: u(s.h),
        w: u(s.w),
        ho: u(s.ho()),
        wo: u(s.wo()),
        has_bias: u(has_bias),
        relu: u(relu as usize),
        ws: u(s.cin * s.k * s.k),
        pad: u(s.pad),
    };
    let bind = [out, inp, weight, bias, &taps];
    d.push(ctx.dispatch_grid(variant, &p, &bind, (x, y))?);
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
    let p = ConvK5c2Params {
        batch: u(s.batch),
        cout: u(s.cout),
        ho: u(s.ho()),
        wo4: u(s.wo() / 4),
        hp: u(hp),
        wr4: u(wr4),
        ho2: u(ho2),
        wo8: u(wo8),
        has_bias: u(has_bias),
        relu: u(relu as usize),
    };
    let x = s
        .cout
        .div_ceil(FUSED_ROW_CHANNELS)
        .div_ceil(WORKGROUP as usize);
    d.push(ctx.dispatch_grid(variant, &p, &[out, &xp, weight, bias], (x, s.batch * ho2))?);
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
    let (grid_x, params, xp, taps) = match variant {
        "conv2d_forward" => {
            let wp = s.w + 2 * s.pad;
            let xp = padded(
                ctx,
                &mut d,
                inp,
                (s.batch * s.cin, s.h, s.w, s.pad),
                "conv input, padded",
            )?;
            let p = ConvParams {
                batch: u(s.batch),
                cin: u(s.cin),
                cout: u(s.cout),
                hp: u(hp),
                wp: u(wp),
                k: u(s.k),
                ho: u(s.ho()),
                wo: u(s.wo()),
                has_bias: u(has_bias),
                relu: u(relu as usize),
            };
            let pixels = s.batch * s.ho() * s.wo();
            let taps = tap_offsets(s.cin, s.k, hp, wp, 0);
            (pixels.div_ceil(CONV_PIXELS), Blocked::Plain(p), xp, taps)
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
            let p = ConvV4Params {
                batch: u(s.batch),
                cin: u(s.cin),
                cout: u(s.cout),
                hp: u(hp),
                wr4: u(wr4),
                ho: u(s.ho()),
                wo: u(s.wo()),
                has_bias: u(has_bias),
                ws: u(s.cin * s.k * s.k),
                relu: u(relu as usize),
            };
            let groups = s.batch * s.ho() * wr4;
            let taps = tap_offsets(s.cin, s.k, hp, wr4, copy);
            (groups.div_ceil(CONV_PIXELS / 4), Blocked::V4(p), xp, taps)
        }
        other => return Err(Error::Gpu(format!("no conv2d_forward variant {other}"))),
    };
    let x = grid_x.div_ceil(WORKGROUP as usize);
    let taps = ctx.tensor_from(&taps, "conv tap offsets")?;
    let bind = [out, &xp, weight, bias, &taps];
    let grid = (x, s.cout.div_ceil(CONV_CHANNELS));
    d.push(match &params {
        Blocked::Plain(p) => ctx.dispatch_grid(variant, p, &bind, grid)?,
        Blocked::V4(p) => ctx.dispatch_grid(variant, p, &bind, grid)?,
    });
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
        &variants("conv2d_forward_relu_maxpool"),
        |v| conv2d_forward_relu_maxpool_variant(ctx, v, pooled, codes, inp, weight, bias, s),
    )
}

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
    let tiled = variant_of("conv2d_forward_relu_maxpool", variant).and_then(|v| v.tile);
    if let Some((tm, _)) = tiled {
        // One workgroup per 16 quads (2 rows x 8 pixels, one code word) and tm channels.
        let taps = unpadded_taps(ctx, &s)?;
        let quads = pool_code_words(&s) / s.cout;
        let p = FusedTiledParams {
            batch: u(s.batch),
            cin: u(s.cin),
            cout: u(s.cout),
            h: u(s.h),
            w: u(s.w),
            ho2: u(s.ho() / 2),
            wo8: u(s.wo() / 8),
            ws: u(s.cin * s.k * s.k),
            pad: u(s.pad),
        };
        let bind = [pooled, codes, inp, weight, bias, &taps];
        let grid = (quads.div_ceil(16), s.cout.div_ceil(tm));
        return Ok(vec![ctx.dispatch_grid(variant, &p, &bind, grid)?]);
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
    let p = FusedParams {
        batch: u(s.batch),
        cin: u(s.cin),
        cout: u(s.cout),
        hp: u(hp),
        wr4: u(wr4),
        ho2: u(s.ho() / 2),
        wo8: u(s.wo() / 8),
        ws: u(s.cin * s.k * s.k),
    };
    d.push(ctx.dispatch_grid(
        "conv2d_forward_relu_maxpool",
        &p,
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
    let p = FusedK5c2Params {
        batch: u(s.batch),
        cout: u(s.cout),
        hp: u(hp),
        wr4: u(wr4),
        ho2: u(s.ho() / 2),
        wo8: u(s.wo() / 8),
    };
    d.push(ctx.dispatch_grid(variant, &p, &[pooled, codes, &xp, weight, bias], (x, y))?);
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
    tuned_conv(
        ctx,
        "conv2d_forward",
        &s,
        &variants("conv2d_forward"),
        |v| forward_variant(ctx, v, out, inp, weight, Some(bias), relu, s),
    )
}
