//! The convolution's gradients, beside forward.rs: conv2d_backward_input (the forward kernels
//! on dout with flipped weights), conv2d_backward_weight (per-image partials, then
//! batch_sum), conv2d_backward_bias, and conv2d_backward_params (weight and bias gradients
//! in one tiled pass where that pays), each with its variants.

use super::super::reduce::{batch_sum, batch_sum_pair};
use super::super::tune::tuned_conv;
use super::super::u;
use super::super::variants::{variant_of, variants};
use super::forward::forward_variant;
use super::{conv2d_flip_weight, pad2d, padded, transposed, unpadded_taps, TILE};
use crate::gpu::context::GpuContext;
use crate::gpu::pipeline::WORKGROUP;
use crate::gpu::tensor::groups_grid;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::Conv2dShape;
use crate::{Error, Result};

uniform! {
    /// conv2d_backward_weight_t*: a padded input of `hp` x `wp`, `imgs` images per invocation.
    pub struct WgradParams {
        batch: u32,
        cin: u32,
        cout: u32,
        hp: u32,
        wp: u32,
        k: u32,
        ho: u32,
        wo: u32,
        imgs: u32,
    }
}
uniform! {
    /// conv2d_backward_weight_v4t*: K shifted copies of rows of `wr4` vec4, `copy` apart.
    pub struct WgradV4Params {
        batch: u32,
        cin: u32,
        cout: u32,
        hp: u32,
        wr4: u32,
        k: u32,
        ho: u32,
        copy: u32,
    }
}
uniform! {
    /// conv2d_backward_weight_split: a padded input of `hp` x `wp`.
    pub struct WgradSplitParams {
        batch: u32,
        cin: u32,
        cout: u32,
        hp: u32,
        wp: u32,
        k: u32,
        ho: u32,
        wo: u32,
    }
}
uniform! {
    /// conv2d_backward_weight_k5c2: rows of `wr4` vec4, outputs in groups of 4.
    pub struct WgradK5c2Params {
        batch: u32,
        cin: u32,
        cout: u32,
        hp: u32,
        wr4: u32,
        ho: u32,
        wo4: u32,
    }
}
uniform! {
    /// conv2d_backward_weight_tiled: the unpadded input, `ws` = Ci K K taps.
    pub struct WgradTiledParams {
        batch: u32,
        cin: u32,
        cout: u32,
        h: u32,
        w: u32,
        ho: u32,
        wo: u32,
        ws: u32,
        pad: u32,
    }
}
uniform! {
    /// conv2d_backward_weight_tiled_split / _tiledMxN: positions in `parts` of `per`.
    pub struct WgradTiledSplitParams {
        batch: u32,
        cin: u32,
        cout: u32,
        h: u32,
        w: u32,
        ho: u32,
        wo: u32,
        ws: u32,
        parts: u32,
        per: u32,
        pad: u32,
    }
}
uniform! {
    /// conv2d_backward_params_tiled*: the same, partial rows of `stride` (weights, then bias).
    pub struct ParamsTiledParams {
        batch: u32,
        cin: u32,
        cout: u32,
        h: u32,
        w: u32,
        ho: u32,
        wo: u32,
        ws: u32,
        parts: u32,
        per: u32,
        pad: u32,
        stride: u32,
    }
}
uniform! {
    /// conv2d_backward_bias: `batch` x `cout` planes of `hw`.
    pub struct BiasParams { batch: u32, cout: u32, hw: u32 }
}

/// A register-blocked weight-gradient variant's block.
enum Wgrad {
    V4(WgradV4Params),
    Images(WgradParams),
}

/// conv2d_backward_input with a given forward variant (tests run them all).
pub fn conv2d_backward_input_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    weight: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    if s.pad >= s.k {
        return Err(Error::Gpu(format!(
            "conv2d_backward_input needs pad < k (got pad {} for k {})",
            s.pad, s.k
        )));
    }
    let flipped = ctx.tensor(s.weight_len(), "flipped conv weight")?;
    let mut d = vec![conv2d_flip_weight(
        ctx, &flipped, weight, s.cout, s.cin, s.k,
    )?];
    d.extend(forward_variant(
        ctx,
        variant,
        dinp,
        dout,
        &flipped,
        None,
        false,
        transposed(&s),
    )?);
    Ok(d)
}

/// dinp `[B, Ci, H, W]` from dout `[B, Co, Ho, Wo]` and weight: the forward convolution of
/// dout, padded by K - 1 - pad, with the flipped weights (conv2d_flip_weight), so it runs on the
/// same tuned kernels. Scratch (flipped weights, padded dout) is allocated here, once.
pub fn conv2d_backward_input(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    weight: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(
        ctx,
        "conv2d_backward_input",
        &s,
        &variants("conv2d_forward"),
        |v| conv2d_backward_input_variant(ctx, v, dinp, dout, weight, s),
    )
}

/// Output channels each conv2d_backward_weight invocation computes.
const WGRAD_CHANNELS: usize = 16;

/// Images the `_t` weight-gradient variants sum per invocation: their partials (written, then
/// read back by batch_sum) shrink by this factor, which pays where an image has few positions.
const WGRAD_IMAGES: usize = 4;

/// (channels, taps) of each split-tiled weight-gradient variant's tile (the `params` ones
/// also sum the bias partials); conv2d_backward_weight_tiled, tiled per image, is not one.
fn wgrad_tile(variant: &str) -> Option<(usize, usize)> {
    let v = variant_of("conv2d_backward_weight", variant)
        .or_else(|| variant_of("conv2d_backward_params", variant))?;
    v.tile.filter(|_| v.name != "conv2d_backward_weight_tiled")
}

/// conv2d_backward_params' variants: "separate" (conv2d_backward_weight and
/// conv2d_backward_bias, each autotuned) first, then the fused split-tiled kernels.
pub fn params_variants() -> Vec<&'static str> {
    let mut v = vec![PARAMS_SEPARATE];
    v.extend(variants("conv2d_backward_params"));
    v
}

/// The conv2d_backward_params variant that runs the two gradients' own tuned passes.
pub const PARAMS_SEPARATE: &str = "separate";

/// The pass of a split-tiled weight-gradient variant on (tm, tn) tiles: per-part partial rows
/// of `stride` values into `partial` (weights, then with `with_bias` the bias partials), each
/// image's positions cut into as many parts as `partial` has room for (64 x 64 tiles: up to
/// WGRAD_PARTS; shaped tiles: enough for WGRAD_GROUPS workgroups). Returns it and the rows.
#[allow(clippy::too_many_arguments)]
fn split_wgrad_pass(
    ctx: &GpuContext,
    variant: &'static str,
    (tm, tn): (usize, usize),
    partial: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: &Conv2dShape,
    with_bias: bool,
) -> Result<(Dispatch, usize)> {
    let (hw, ws) = (s.ho() * s.wo(), s.cin * s.k * s.k);
    let stride = s.weight_len() + if with_bias { s.cout } else { 0 };
    let tiles = ws.div_ceil(tn) * s.cout.div_ceil(tm);
    let room = partial.len / (s.batch * stride).max(1);
    if room == 0 {
        return Err(Error::Gpu(format!(
            "{variant}: partial holds {} values, one row per image needs {stride}",
            partial.len
        )));
    }
    let want = if tm == TILE {
        WGRAD_PARTS
    } else {
        WGRAD_GROUPS.div_ceil(tiles * s.batch).min(4 * WGRAD_PARTS)
    };
    let parts = want.min(room).min(hw.div_ceil(64)).max(1);
    let per = hw.div_ceil(parts);
    let taps = unpadded_taps(ctx, s)?;
    let grid = (ws.div_ceil(tn), s.cout.div_ceil(tm) * s.batch * parts);
    let p = WgradTiledSplitParams {
        batch: u(s.batch),
        cin: u(s.cin),
        cout: u(s.cout),
        h: u(s.h),
        w: u(s.w),
        ho: u(s.ho()),
        wo: u(s.wo()),
        ws: u(ws),
        parts: u(parts),
        per: u(per),
        pad: u(s.pad),
    };
    let bind = [partial, dout, inp, &taps];
    let pass = if with_bias {
        let p = ParamsTiledParams {
            batch: p.batch,
            cin: p.cin,
            cout: p.cout,
            h: p.h,
            w: p.w,
            ho: p.ho,
            wo: p.wo,
            ws: p.ws,
            parts: p.parts,
            per: p.per,
            pad: p.pad,
            stride: u(stride),
        };
        ctx.dispatch_grid(variant, &p, &bind, grid)?
    } else {
        ctx.dispatch_grid(variant, &p, &bind, grid)?
    };
    Ok((pass, s.batch * parts))
}

/// Workgroups the shaped split-tiled variants aim for: a few per compute unit of a large GPU.
const WGRAD_GROUPS: usize = 512;

/// Most parts conv2d_backward_weight_tiled_split cuts an image's positions into (at least 64
/// positions each): batch_sum then adds B x parts rows per weight, one invocation per weight
/// in row order, so more parts make that pass long.
const WGRAD_PARTS: usize = 4;

/// Output channels per invocation of conv2d_backward_weight_k5c2.
const WGRAD_ROW_CHANNELS: usize = 2;

/// dweight `[Co, Ci, K, K]` with a given variant of the partials kernel (tests run them all):
/// the input padded (pad2d; K shifted copies for the `_v4` variants) into scratch allocated
/// here, once, per-image partials into `partial` `[B, Co*Ci*K*K]`, then batch_sum.
pub fn conv2d_backward_weight_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let taps = variant_of("conv2d_backward_weight", variant)
        .ok_or_else(|| Error::Gpu(format!("no conv2d_backward_weight variant {variant}")))?
        .taps;
    let mut d = Vec::new();
    let hp = s.h + 2 * s.pad;
    if variant == "conv2d_backward_weight_k5c2" {
        return backward_weight_k5c2(ctx, variant, dweight, dout, inp, partial, s);
    }
    if variant == "conv2d_backward_weight_split" {
        return backward_weight_split(ctx, variant, dweight, dout, inp, partial, s);
    }
    if let Some(tile) = wgrad_tile(variant) {
        let (pass, rows) = split_wgrad_pass(ctx, variant, tile, partial, dout, inp, &s, false)?;
        d.push(pass);
        d.push(batch_sum(ctx, dweight, partial, rows, s.weight_len())?);
        return Ok(d);
    }
    if variant == "conv2d_backward_weight_tiled" {
        let taps = unpadded_taps(ctx, &s)?;
        let ws = s.cin * s.k * s.k;
        let (x, y) = (ws.div_ceil(TILE), s.cout.div_ceil(TILE) * s.batch);
        let p = WgradTiledParams {
            batch: u(s.batch),
            cin: u(s.cin),
            cout: u(s.cout),
            h: u(s.h),
            w: u(s.w),
            ho: u(s.ho()),
            wo: u(s.wo()),
            ws: u(ws),
            pad: u(s.pad),
        };
        let bind = [partial, dout, inp, &taps];
        d.push(ctx.dispatch_grid(variant, &p, &bind, (x, y))?);
        d.push(batch_sum(ctx, dweight, partial, s.batch, s.weight_len())?);
        return Ok(d);
    }
    // The `_t` variants sum WGRAD_IMAGES images per invocation, the `_v4` ones one.
    let (xp, params, imgs) = if variant.starts_with("conv2d_backward_weight_v4") {
        if !s.wo().is_multiple_of(4) {
            return Err(Error::Gpu(format!(
                "{variant} needs an output width that is a multiple of 4, not {}",
                s.wo()
            )));
        }
        let copy = s.batch * s.cin * hp * s.wo() / 4;
        let xp = ctx.tensor(s.k * copy * 4, "conv input, padded and shifted")?;
        let (planes, wr) = (s.batch * s.cin, s.wo());
        d.push(pad2d(ctx, &xp, inp, planes, s.h, s.w, s.pad, wr, s.k)?);
        let p = WgradV4Params {
            batch: u(s.batch),
            cin: u(s.cin),
            cout: u(s.cout),
            hp: u(hp),
            wr4: u(wr / 4),
            k: u(s.k),
            ho: u(s.ho()),
            copy: u(copy),
        };
        (xp, Wgrad::V4(p), 1)
    } else {
        let dims = (s.batch * s.cin, s.h, s.w, s.pad);
        let xp = padded(ctx, &mut d, inp, dims, "conv input, padded")?;
        let wp = s.w + 2 * s.pad;
        let p = WgradParams {
            batch: u(s.batch),
            cin: u(s.cin),
            cout: u(s.cout),
            hp: u(hp),
            wp: u(wp),
            k: u(s.k),
            ho: u(s.ho()),
            wo: u(s.wo()),
            imgs: u(WGRAD_IMAGES),
        };
        (xp, Wgrad::Images(p), WGRAD_IMAGES)
    };
    let groups = s.batch.div_ceil(imgs);
    let x = (s.cin * s.k * s.k)
        .div_ceil(taps)
        .div_ceil(WORKGROUP as usize);
    let y = groups * s.cout.div_ceil(WGRAD_CHANNELS);
    let bind = [partial, dout, &xp];
    d.push(match &params {
        Wgrad::V4(p) => ctx.dispatch_grid(variant, p, &bind, (x, y))?,
        Wgrad::Images(p) => ctx.dispatch_grid(variant, p, &bind, (x, y))?,
    });
    d.push(batch_sum(ctx, dweight, partial, groups, s.weight_len())?);
    Ok(d)
}

/// conv2d_backward_weight_split (K <= 5): a workgroup per (image, channels, kernel row),
/// positions over its lanes.
fn backward_weight_split(
    ctx: &GpuContext,
    variant: &'static str,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let mut d = Vec::new();
    let hp = s.h + 2 * s.pad;
    if s.k > 5 {
        return Err(Error::Gpu(format!(
            "{variant} keeps one kernel row in registers: K <= 5, not {}",
            s.k
        )));
    }
    let dims = (s.batch * s.cin, s.h, s.w, s.pad);
    let xp = padded(ctx, &mut d, inp, dims, "conv input, padded")?;
    let p = WgradSplitParams {
        batch: u(s.batch),
        cin: u(s.cin),
        cout: u(s.cout),
        hp: u(hp),
        wp: u(s.w + 2 * s.pad),
        k: u(s.k),
        ho: u(s.ho()),
        wo: u(s.wo()),
    };
    let groups = groups_grid(s.batch * s.cout * s.cin * s.k);
    d.push(ctx.dispatch_grid(variant, &p, &[partial, dout, &xp], groups)?);
    d.push(batch_sum(ctx, dweight, partial, s.batch, s.weight_len())?);
    Ok(d)
}

/// conv2d_backward_weight_k5c2: 5x5 kernels, Wo a multiple of 4; channels on the lanes.
fn backward_weight_k5c2(
    ctx: &GpuContext,
    variant: &'static str,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let mut d = Vec::new();
    let hp = s.h + 2 * s.pad;
    // The input is the workgroup's shared operand, channels go to the lanes: its own
    // padding (rows long enough for 2 vec4 past every group of 4 positions) and grid.
    if s.k != 5 || !s.wo().is_multiple_of(4) {
        return Err(Error::Gpu(format!(
            "{variant} needs a 5x5 kernel and an output width that is a multiple of 4, \
             not k {} and width {}",
            s.k,
            s.wo()
        )));
    }
    let wr4 = s.wo() / 4 + 1;
    let xp = ctx.tensor(s.batch * s.cin * hp * wr4 * 4, "conv input, padded")?;
    d.push(pad2d(
        ctx,
        &xp,
        inp,
        s.batch * s.cin,
        s.h,
        s.w,
        s.pad,
        wr4 * 4,
        1,
    )?);
    let x = s
        .cout
        .div_ceil(WGRAD_ROW_CHANNELS)
        .div_ceil(WORKGROUP as usize);
    let y = s.batch * s.cin;
    let p = WgradK5c2Params {
        batch: u(s.batch),
        cin: u(s.cin),
        cout: u(s.cout),
        hp: u(hp),
        wr4: u(wr4),
        ho: u(s.ho()),
        wo4: u(s.wo() / 4),
    };
    d.push(ctx.dispatch_grid(variant, &p, &[partial, dout, &xp], (x, y))?);
    d.push(batch_sum(ctx, dweight, partial, s.batch, s.weight_len())?);
    Ok(d)
}

/// dweight `[Co, Ci, K, K]`: pad2d into a padded copy of the input (allocated here, once),
/// per-image partials into `partial` `[B, Co*Ci*K*K]` by the variant autotune measured fastest
/// for this adapter and shape, then batch_sum.
pub fn conv2d_backward_weight(
    ctx: &GpuContext,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let names = variants("conv2d_backward_weight");
    tuned_conv(ctx, "conv2d_backward_weight", &s, &names, |v| {
        conv2d_backward_weight_variant(ctx, v, dweight, dout, inp, partial, s)
    })
}

/// dbias `[Co]` with a given variant (tests run them all): per-image sums into `partial`
/// `[B, Co]`, then batch_sum.
pub fn conv2d_backward_bias_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    let p = BiasParams {
        batch: u(s.batch),
        cout: u(s.cout),
        hw: u(s.ho() * s.wo()),
    };
    let planes = s.batch * s.cout;
    let sums = match variant {
        "conv2d_backward_bias" => ctx.dispatch(variant, &p, &[partial, dout], planes)?,
        "conv2d_backward_bias_split" => {
            ctx.dispatch_grid(variant, &p, &[partial, dout], groups_grid(planes))?
        }
        _ => {
            return Err(Error::Gpu(format!(
                "no conv2d_backward_bias variant {variant}"
            )))
        }
    };
    Ok(vec![sums, batch_sum(ctx, dbias, partial, s.batch, s.cout)?])
}

/// dbias `[Co]`: per-image sums into `partial` `[B, Co]` by the variant autotune measured
/// fastest for this adapter and shape, then batch_sum.
pub fn conv2d_backward_bias(
    ctx: &GpuContext,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(
        ctx,
        "conv2d_backward_bias",
        &s,
        &variants("conv2d_backward_bias"),
        |v| conv2d_backward_bias_variant(ctx, v, dbias, dout, partial, s),
    )
}

/// dweight `[Co, Ci, K, K]` and dbias `[Co]` of a convolution, by the variant autotune
/// measured fastest for this adapter and shape; `partial` is scratch for per-image partials.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_params(
    ctx: &GpuContext,
    dweight: &GpuTensor,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    tuned_conv(ctx, "conv2d_backward_params", &s, &params_variants(), |v| {
        conv2d_backward_params_variant(ctx, v, dweight, dbias, dout, inp, partial, s)
    })
}

/// conv2d_backward_params with a given variant (tests run them all).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_params_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dweight: &GpuTensor,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    partial: &GpuTensor,
    s: Conv2dShape,
) -> Result<Vec<Dispatch>> {
    if variant == PARAMS_SEPARATE {
        let mut d = conv2d_backward_weight(ctx, dweight, dout, inp, partial, s)?;
        d.extend(conv2d_backward_bias(ctx, dbias, dout, partial, s)?);
        return Ok(d);
    }
    let tile = wgrad_tile(variant)
        .filter(|_| variant.starts_with("conv2d_backward_params"))
        .ok_or_else(|| Error::Gpu(format!("no conv2d_backward_params variant {variant}")))?;
    let (pass, rows) = split_wgrad_pass(ctx, variant, tile, partial, dout, inp, &s, true)?;
    let stride = s.weight_len() + s.cout;
    Ok(vec![
        pass,
        batch_sum_pair(ctx, dweight, dbias, partial, rows, stride)?,
    ])
}
