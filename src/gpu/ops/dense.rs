//! The dense layer, forward beside backward: dense_forward (`_split`: features over a
//! workgroup's lanes, hardware GPUs), dense_backward_input / _weight (autotuned between the
//! plain kernel, matmul / matmul_tn, and the product as a 1x1 convolution through a
//! conv2d_forward variant), dense_backward_bias; and matmul, matmul_tn (register-blocked
//! products, also `glassnet bench`'s ceiling).

use super::conv::{conv2d_flip_weight, forward_variant};
use super::tune::{run_all, variants_for};
use super::u;
use super::variants::variants;
use crate::gpu::context::GpuContext;
use crate::gpu::pipeline::WORKGROUP;
use crate::gpu::tensor::groups_grid;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::{Conv2dShape, DenseShape};
use crate::{Error, Result};

uniform! {
    /// Every dense kernel: `batch` rows of `nin` inputs and `nout` outputs.
    pub struct DenseParams { batch: u32, nin: u32, nout: u32 }
}

uniform! {
    /// matmul / matmul_tn: an `m` x `k` by `k` x (4 `n4`) product.
    pub struct MatmulParams { m: u32, k: u32, n4: u32 }
}

fn dense_params(s: &DenseShape) -> DenseParams {
    DenseParams {
        batch: u(s.batch),
        nin: u(s.nin),
        nout: u(s.nout),
    }
}

/// Images per dense_forward invocation and outputs per workgroup (tools/gen_kernels.py).
const DENSE_IMAGES: usize = 4;
const DENSE_OUTPUTS: usize = 16;

/// out `[B, O]` = inp `[B, I]` . weight `[O, I]`^T + bias `[O]` with a given variant (tests run
/// them all).
pub fn dense_forward_variant(
    ctx: &GpuContext,
    variant: &'static str,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: DenseShape,
) -> Result<Dispatch> {
    let bind = [out, inp, weight, bias];
    match variant {
        // DENSE_IMAGES images per invocation, DENSE_OUTPUTS outputs per workgroup (uniform).
        "dense_forward" => {
            let x = s.batch.div_ceil(DENSE_IMAGES).div_ceil(WORKGROUP as usize);
            let y = s.nout.div_ceil(DENSE_OUTPUTS);
            ctx.dispatch_grid(variant, &dense_params(&s), &bind, (x, y))
        }
        "dense_forward_split" => {
            let groups = groups_grid(s.batch * s.nout.div_ceil(4));
            ctx.dispatch_grid(variant, &dense_params(&s), &bind, groups)
        }
        _ => Err(Error::Gpu(format!("no dense_forward variant {variant}"))),
    }
}

/// out `[B, O]` = inp `[B, I]` . weight `[O, I]`^T + bias `[O]` by the variant autotune
/// measured fastest for this adapter and shape.
pub fn dense_forward(
    ctx: &GpuContext,
    out: &GpuTensor,
    inp: &GpuTensor,
    weight: &GpuTensor,
    bias: &GpuTensor,
    s: DenseShape,
) -> Result<Dispatch> {
    let key = format!("dense_forward b{} i{} o{}", s.batch, s.nin, s.nout);
    ctx.tune.pick(
        &key,
        &variants_for(ctx, &variants("dense_forward")),
        |v| dense_forward_variant(ctx, v, out, inp, weight, bias, s),
        |d| ctx.run(&[d]),
    )
}

/// dinp `[B, I]` = dout `[B, O]` . weight `[O, I]`, by the variant autotune measured fastest:
/// the register-blocked `matmul` (where I allows vec4), or the product as a 1x1 convolution
/// of one image (I pixels in O channels) through a conv2d_forward variant: the tiled ones fill
/// a hardware GPU where matmul's blocks give dense's few rows a handful of workgroups.
pub fn dense_backward_input(
    ctx: &GpuContext,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    weight: &GpuTensor,
    s: DenseShape,
) -> Result<Vec<Dispatch>> {
    let key = format!("dense_backward_input b{} i{} o{}", s.batch, s.nin, s.nout);
    ctx.tune.pick(
        &key,
        &product_variants(ctx, "matmul", "dense_backward_input", s.nin),
        |v| dense_backward_input_variant(ctx, v, dinp, dout, weight, s),
        |d| run_all(ctx, d),
    )
}

/// dense_backward_input with a given variant (tests run them all).
pub fn dense_backward_input_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dinp: &GpuTensor,
    dout: &GpuTensor,
    weight: &GpuTensor,
    s: DenseShape,
) -> Result<Vec<Dispatch>> {
    match variant {
        "matmul" if s.nin.is_multiple_of(4) => Ok(vec![matmul(
            ctx, dinp, dout, weight, s.batch, s.nout, s.nin,
        )?]),
        "dense_backward_input" => Ok(vec![ctx.dispatch(
            "dense_backward_input",
            &dense_params(&s),
            &[dinp, dout, weight],
            s.batch * s.nin,
        )?]),
        v if variants("conv2d_forward").contains(&v) => {
            let c = product_shape(s.batch, s.nout, s.nin);
            forward_variant(ctx, v, dinp, weight, dout, None, false, c)
        }
        _ => Err(Error::Gpu(format!(
            "no dense_backward_input variant {variant}"
        ))),
    }
}

/// dweight `[O, I]` = dout `[B, O]`^T . inp `[B, I]`, by the variant autotune measured fastest:
/// `matmul_tn` (where I allows vec4), or dout transposed (conv2d_flip_weight of a 1x1 kernel)
/// and the product as a 1x1 convolution of one image through a conv2d_forward variant.
pub fn dense_backward_weight(
    ctx: &GpuContext,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: DenseShape,
) -> Result<Vec<Dispatch>> {
    let key = format!("dense_backward_weight b{} i{} o{}", s.batch, s.nin, s.nout);
    ctx.tune.pick(
        &key,
        &product_variants(ctx, "matmul_tn", "dense_backward_weight", s.nin),
        |v| dense_backward_weight_variant(ctx, v, dweight, dout, inp, s),
        |d| run_all(ctx, d),
    )
}

/// dense_backward_weight with a given variant (tests run them all).
pub fn dense_backward_weight_variant(
    ctx: &GpuContext,
    variant: &'static str,
    dweight: &GpuTensor,
    dout: &GpuTensor,
    inp: &GpuTensor,
    s: DenseShape,
) -> Result<Vec<Dispatch>> {
    match variant {
        "matmul_tn" if s.nin.is_multiple_of(4) => Ok(vec![matmul_tn(
            ctx, dweight, dout, inp, s.nout, s.batch, s.nin,
        )?]),
        "dense_backward_weight" => Ok(vec![ctx.dispatch(
            "dense_backward_weight",
            &dense_params(&s),
            &[dweight, dout, inp],
            s.nout * s.nin,
        )?]),
        v if variants("conv2d_forward").contains(&v) => {
            // doutᵀ [O, B] (allocated here, once) as the weights of a 1x1 convolution.
            let dt = ctx.tensor(s.batch * s.nout, "d dense out, transposed")?;
            let mut d = vec![conv2d_flip_weight(ctx, &dt, dout, s.batch, s.nout, 1)?];
            let c = product_shape(s.nout, s.batch, s.nin);
            d.extend(forward_variant(ctx, v, dweight, inp, &dt, None, false, c)?);
            Ok(d)
        }
        _ => Err(Error::Gpu(format!(
            "no dense_backward_weight variant {variant}"
        ))),
    }
}

/// c `[m, n]` = a `[m, k]` . b `[k, n]` as the shape of a 1x1 convolution of one image: b is
/// its input (k channels of n pixels), a its weights, c its output (m channels).
fn product_shape(m: usize, k: usize, n: usize) -> Conv2dShape {
    Conv2dShape {
        batch: 1,
        cin: k,
        cout: m,
        h: 1,
        w: n,
        k: 1,
        pad: 0,
    }
}

/// The dense backward passes' variants: the plain kernel (any shape), the register-blocked
/// product `blocked` (n a multiple of 4), then the conv2d_forward variants worth trying here.
fn product_variants(
    ctx: &GpuContext,
    blocked: &'static str,
    plain: &'static str,
    n: usize,
) -> Vec<&'static str> {
    let mut v = Vec::new();
    if n.is_multiple_of(4) {
        v.push(blocked);
    }
    v.push(plain);
    v.extend(
        variants_for(ctx, &variants("conv2d_forward"))
            .into_iter()
            .filter(|f| !matches!(*f, "conv2d_forward_k5c2" | "conv2d_forward_v4s")),
    );
    v
}

pub fn dense_backward_bias(
    ctx: &GpuContext,
    dbias: &GpuTensor,
    dout: &GpuTensor,
    s: DenseShape,
) -> Result<Dispatch> {
    ctx.dispatch(
        "dense_backward_bias",
        &dense_params(&s),
        &[dbias, dout],
        s.nout,
    )
}

/// Rows x columns of c each matmul invocation computes.
const MATMUL_ROWS: usize = 16;
const MATMUL_COLUMNS: usize = 16;

/// c `[m, n]` = a `[m, k]` . b `[k, n]` (n a multiple of 4): the plain matrix product that
/// `glassnet bench` measures as the device's ceiling.
pub fn matmul(
    ctx: &GpuContext,
    c: &GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Dispatch> {
    product(ctx, "matmul", c, a, b, m, k, n)
}

/// c `[m, n]` = a^T . b with a stored `[k, m]` and b `[k, n]` (n a multiple of 4).
pub fn matmul_tn(
    ctx: &GpuContext,
    c: &GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Dispatch> {
    product(ctx, "matmul_tn", c, a, b, m, k, n)
}

#[allow(clippy::too_many_arguments)]
fn product(
    ctx: &GpuContext,
    name: &'static str,
    c: &GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Dispatch> {
    if !n.is_multiple_of(4) || m == 0 || k == 0 {
        return Err(Error::Gpu(format!(
            "{name} {m}x{k}x{n}: n must be a multiple of 4 and m, k positive"
        )));
    }
    // Rows from the workgroup id, MATMUL_COLUMNS columns per invocation (tools/gen_kernels.py).
    let x = n.div_ceil(MATMUL_COLUMNS).div_ceil(WORKGROUP as usize);
    let y = m.div_ceil(MATMUL_ROWS);
    ctx.dispatch_grid(
        name,
        &MatmulParams {
            m: u(m),
            k: u(k),
            n4: u(n / 4),
        },
        &[c, a, b],
        (x, y),
    )
}
