//! `glassnet bench`: each kernel at the reference network's shapes, validated against the CPU
//! reference before it is timed, then end-to-end training and inference rates.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::cpu::{fast, reference as r};
use crate::engine::{Batch, Engine, Triplets};
use crate::gpu::ops as k;
use crate::gpu::{Dispatch, GpuContext};
use crate::model::{init_params, Arch, ParamLayout};
use crate::optim::OptimConfig;
use crate::shapes::{Conv2dShape, MineMode};
use crate::{Error, Result};

mod layers;

#[derive(Clone, Debug, Serialize)]
pub struct KernelTime {
    pub name: String,
    pub shape: String,
    /// Median and fastest of the timed runs, in ms.
    pub ms: f64,
    pub best_ms: f64,
    /// Arithmetic rate at the fastest run; 0 for kernels that only move memory. The fastest
    /// run is the one least disturbed by the rest of a shared machine, so kernels and the
    /// ceiling are compared on it (the median is reported beside it).
    pub gflops: f64,
    /// Bytes read and written per second (each buffer once) at the fastest run, in GB/s.
    pub gbs: f64,
}

impl KernelTime {
    /// Rates of a kernel doing `flops` and moving `floats` 4-byte values in (median, best) s.
    fn new(
        name: &str,
        shape: String,
        (median, best): (f64, f64),
        flops: f64,
        floats: usize,
    ) -> Self {
        KernelTime {
            name: name.into(),
            shape,
            ms: median * 1e3,
            best_ms: best * 1e3,
            gflops: flops / best / 1e9,
            gbs: 4.0 * floats as f64 / best / 1e9,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub device: String,
    /// The end-to-end network (Arch::describe).
    pub network: String,
    pub commit: String,
    /// Plain matrix product on the same device (the ceiling the kernels are compared with):
    /// the fastest `matmul` rate on the GPU, one-thread-per-core SGEMM on the CPU.
    pub gemm_gflops: f64,
    /// The matrix-product timings behind `gemm_gflops` (GPU: one per conv layer's GEMM shape).
    pub gemm: Vec<KernelTime>,
    pub kernels: Vec<KernelTime>,
    /// Variants autotune chose for this adapter, as (kernel and shape, variant).
    pub autotune: Vec<(String, String)>,
    /// Steps submitted one ahead, as `glassnet train` runs them.
    pub train_images_per_s: f64,
    /// One step at a time: each step's statistics read back before the next is submitted.
    pub train_sync_images_per_s: f64,
    pub infer_images_per_s: f64,
    pub latency_ms: f64,
    /// A training step's dispatches as (kernel, median GPU ms), in order; empty where the
    /// device has no timestamp queries.
    pub step_profile: Vec<(String, f64)>,
}

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Median and fastest seconds of `reps` calls after one warm-up.
fn time_runs(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    f()?;
    let mut t = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok((t[t.len() / 2], t[0]))
}

/// Median seconds of `reps` calls after one warm-up.
fn time(reps: usize, f: impl FnMut() -> Result<()>) -> Result<f64> {
    Ok(time_runs(reps, f)?.0)
}

fn check(name: &str, got: &[f32], want: &[f32]) -> Result<()> {
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if (g - w).abs() > 1e-4 * scale + 1e-3 * w.abs() {
            return Err(Error::Gpu(format!(
                "{name}: element {i} is {g}, the CPU reference says {w}; not timing a wrong kernel"
            )));
        }
    }
    Ok(())
}

/// One GPU kernel (the dispatches of one wrapper) on buffers of a training step's shape,
/// already validated against the CPU, ready to be timed here or by criterion (benches/).
pub struct GpuCase {
    pub name: String,
    pub shape: String,
    /// Arithmetic per run (0 for kernels that only move memory).
    pub flops: f64,
    /// 4-byte elements read and written per run (each buffer once).
    pub floats: usize,
    pub dispatches: Vec<Dispatch>,
}

impl GpuCase {
    pub fn run(&self, ctx: &GpuContext) -> Result<()> {
        ctx.run(&self.dispatches.iter().collect::<Vec<_>>())
    }
}

/// Each case timed `reps` times, as rates. The runs are interleaved (one run of every case per
/// round, after a warm-up round) so that a slow spell of a shared machine falls on one run of
/// many kernels rather than on all runs of one, and the ceiling's matrix products are timed
/// in the same rounds as the kernels compared with them.
pub fn time_cases(ctx: &GpuContext, cases: &[GpuCase], reps: usize) -> Result<Vec<KernelTime>> {
    let mut t = vec![Vec::with_capacity(reps.max(1)); cases.len()];
    for c in cases {
        c.run(ctx)?;
    }
    for _ in 0..reps.max(1) {
        for (c, ti) in cases.iter().zip(&mut t) {
            let s = Instant::now();
            c.run(ctx)?;
            ti.push(s.elapsed().as_secs_f64());
        }
    }
    Ok(cases
        .iter()
        .zip(&mut t)
        .map(|(c, ti)| {
            ti.sort_by(f64::total_cmp);
            let runs = (ti[ti.len() / 2], ti[0]);
            KernelTime::new(&c.name, c.shape.clone(), runs, c.flops, c.floats)
        })
        .collect())
}

/// Conv layers of the reference network at `batch`.
fn conv_layers(batch: usize) -> Vec<Conv2dShape> {
    let a = Arch::reference(crate::model::Head::L2);
    (0..a.channels.len()).map(|l| a.conv(l, batch)).collect()
}

fn shape_str(s: &Conv2dShape) -> String {
    format!(
        "{}x{}x{}x{} k{} -> {}",
        s.batch, s.cin, s.h, s.w, s.k, s.cout
    )
}

/// The conv kernels of every layer on the GPU, each validated on the full shape against the
/// CPU fast path (itself tested against the reference in tests/gpu_ops/).
pub fn gpu_conv_cases(ctx: &GpuContext, batch: usize) -> Result<Vec<GpuCase>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut out = Vec::new();
    let run = |d: &[Dispatch]| ctx.run(&d.iter().collect::<Vec<_>>());
    // Partial gradients sized as a training step sizes them (for the largest layer), so the
    // weight gradient may cut positions into parts as it does in training.
    let layers = conv_layers(batch);
    let partial_len = layers.iter().map(|s| s.batch * s.weight_len()).max();
    let partial = ctx.tensor(partial_len.unwrap_or(1), "partial")?;
    for (l, s) in layers.into_iter().enumerate() {
        let (inp, w, b, dout) = (
            random(&mut rng, s.in_len()),
            random(&mut rng, s.weight_len()),
            random(&mut rng, s.cout),
            random(&mut rng, s.out_len()),
        );
        let (ti, tw, tb, td) = (
            ctx.tensor_from(&inp, "i")?,
            ctx.tensor_from(&w, "w")?,
            ctx.tensor_from(&b, "b")?,
            ctx.tensor_from(&dout, "d")?,
        );
        let (to, tdi, tdw) = (
            ctx.tensor(s.out_len(), "o")?,
            ctx.tensor(s.in_len(), "di")?,
            ctx.tensor(s.weight_len(), "dw")?,
        );
        let f = k::conv2d_forward(ctx, &to, &ti, &tw, &tb, s)?;
        let bi = k::conv2d_backward_input(ctx, &tdi, &td, &tw, s)?;
        let bw = k::conv2d_backward_weight(ctx, &tdw, &td, &ti, &partial, s)?;
        let mut want = vec![0.0; s.out_len()];
        fast::conv2d_forward(&mut want, &inp, &w, &b, s);
        run(&f)?;
        check("conv2d_forward", &ctx.read::<f32>(&to)?, &want)?;
        let mut want = vec![0.0; s.in_len()];
        fast::conv2d_backward_input(&mut want, &dout, &w, s);
        run(&bi)?;
        check("conv2d_backward_input", &ctx.read::<f32>(&tdi)?, &want)?;
        let mut want = vec![0.0; s.weight_len()];
        fast::conv2d_backward_weight(&mut want, &dout, &inp, s);
        run(&bw)?;
        check("conv2d_backward_weight", &ctx.read::<f32>(&tdw)?, &want)?;
        let tdb = ctx.tensor(s.cout, "db")?;
        let bb = k::conv2d_backward_bias(ctx, &tdb, &td, &partial, s)?;
        let mut want = vec![0.0; s.cout];
        r::conv2d_backward_bias(&mut want, &dout, s);
        run(&bb)?;
        check("conv2d_backward_bias", &ctx.read::<f32>(&tdb)?, &want)?;
        let mut fused = None;
        if k::relu_maxpool_fits(&s) {
            // What training runs for this layer: conv, ReLU and pooling in one pass.
            let ps = s.pool();
            let (tp, tc) = (
                ctx.tensor(ps.out_len(), "pooled")?,
                ctx.tensor(k::pool_code_words(&s), "codes")?,
            );
            let d = k::conv2d_forward_relu_maxpool(ctx, &tp, &tc, &ti, &tw, &tb, s)?;
            run(&d)?;
            let mut z = vec![0.0; s.out_len()];
            fast::conv2d_forward(&mut z, &inp, &w, &b, s);
            let a: Vec<f32> = z.iter().map(|v| v.max(0.0)).collect();
            let mut want = vec![0.0; ps.out_len()];
            r::maxpool2d_forward(&mut want, &a, ps);
            check("conv2d_forward_relu_maxpool", &ctx.read::<f32>(&tp)?, &want)?;
            let floats = s.in_len() + s.weight_len() + ps.out_len() + k::pool_code_words(&s);
            fused = Some(GpuCase {
                name: "conv2d_forward_relu_maxpool".into(),
                shape: shape_str(&s),
                flops: s.flops(),
                floats,
                dispatches: d,
            });
        }
        out.extend(fused);
        for (name, d) in [
            ("conv2d_forward", f),
            ("conv2d_backward_input", bi),
            ("conv2d_backward_weight", bw),
        ] {
            if l == 0 && name == "conv2d_backward_input" {
                continue; // validated above; training never needs the images' gradient
            }
            out.push(GpuCase {
                name: name.into(),
                shape: shape_str(&s),
                flops: s.flops(),
                floats: s.in_len() + s.out_len() + s.weight_len(),
                dispatches: d,
            });
        }
        out.push(GpuCase {
            name: "conv2d_backward_bias".into(),
            shape: shape_str(&s),
            flops: 0.0,
            floats: s.out_len() + s.cout,
            dispatches: bb,
        });
    }
    Ok(out)
}

/// The GEMM a convolution layer's forward pass amounts to (im2col): m = Co, k = Ci K K,
/// n = B Ho Wo (capped at 65,536 columns so the operands fit any adapter's bindings).
fn gemm_shape(s: &Conv2dShape) -> (usize, usize, usize) {
    let n = (s.batch * s.ho() * s.wo()).min(65_536) / 16 * 16;
    (s.cout, s.cin * s.k * s.k, n.max(16))
}

/// The plain `matmul` at each conv layer's GEMM shape (validated against the reference on a
/// slice first): the device's ceiling for the convolutions.
pub fn gpu_gemm_cases(ctx: &GpuContext, batch: usize) -> Result<Vec<GpuCase>> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut out = Vec::new();
    for s in conv_layers(batch) {
        let (m, kk, n) = gemm_shape(&s);
        let (a, b) = (random(&mut rng, m * kk), random(&mut rng, kk * n));
        let (ta, tb, tc) = (
            ctx.tensor_from(&a, "a")?,
            ctx.tensor_from(&b, "b")?,
            ctx.tensor(m * n, "c")?,
        );
        // Validate on the first 64 columns (the reference is a scalar triple loop).
        let nv = 64.min(n);
        let bv: Vec<f32> = (0..kk)
            .flat_map(|r| b[r * n..r * n + nv].to_vec())
            .collect();
        let tbv = ctx.tensor_from(&bv, "b slice")?;
        let tcv = ctx.tensor(m * nv, "c slice")?;
        ctx.run(&[&k::matmul(ctx, &tcv, &ta, &tbv, m, kk, nv)?])?;
        let mut want = vec![0.0; m * nv];
        r::matmul(&mut want, &a, &bv, m, kk, nv);
        check("matmul", &ctx.read::<f32>(&tcv)?, &want)?;
        out.push(GpuCase {
            name: "matmul".into(),
            shape: format!("{m}x{kk}x{n}"),
            flops: 2.0 * (m * kk * n) as f64,
            floats: m * kk + kk * n + m * n,
            dispatches: vec![k::matmul(ctx, &tc, &ta, &tb, m, kk, n)?],
        });
    }
    Ok(out)
}

/// Kernel timings of the CPU fast path (validated against the reference on one image).
pub fn cpu_kernels(batch: usize, reps: usize) -> Result<Vec<KernelTime>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut out = Vec::new();
    for (l, s) in conv_layers(batch).into_iter().enumerate() {
        let (inp, w, b, dout) = (
            random(&mut rng, s.in_len()),
            random(&mut rng, s.weight_len()),
            random(&mut rng, s.cout),
            random(&mut rng, s.out_len()),
        );
        let one = Conv2dShape { batch: 1, ..s };
        let (mut got, mut want) = (vec![0.0; one.out_len()], vec![0.0; one.out_len()]);
        fast::conv2d_forward(&mut got, &inp, &w, &b, one);
        r::conv2d_forward(&mut want, &inp, &w, &b, one);
        check("cpu conv2d_forward", &got, &want)?;
        let (mut o, mut di, mut dw) = (
            vec![0.0; s.out_len()],
            vec![0.0; s.in_len()],
            vec![0.0; s.weight_len()],
        );
        let tf = time_runs(reps, || {
            fast::conv2d_forward(&mut o, &inp, &w, &b, s);
            Ok(())
        })?;
        let ti = if l == 0 {
            (0.0, 0.0)
        } else {
            time_runs(reps, || {
                fast::conv2d_backward_input(&mut di, &dout, &w, s);
                Ok(())
            })?
        };
        let tw = time_runs(reps, || {
            fast::conv2d_backward_weight(&mut dw, &dout, &inp, s);
            Ok(())
        })?;
        for (name, t) in [
            ("conv2d_forward", tf),
            ("conv2d_backward_input", ti),
            ("conv2d_backward_weight", tw),
        ] {
            if l == 0 && name == "conv2d_backward_input" {
                continue; // training never needs the images' gradient
            }
            let floats = s.in_len() + s.out_len() + s.weight_len();
            out.push(KernelTime::new(name, shape_str(&s), t, s.flops(), floats));
        }
    }
    Ok(out)
}

/// The network's other GPU kernels at a training step's shapes (pooling and ReLU after
/// conv1, the dense layer, the distance matrix, the optimizer), each validated against the
/// CPU reference first, with GFLOP/s where they compute and GB/s (each buffer read or
/// written once) for all.
pub fn gpu_layer_cases(ctx: &GpuContext, batch: usize) -> Result<Vec<GpuCase>> {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let arch = Arch::reference(crate::model::Head::L2);
    let mut out = pool_cases(ctx, &mut rng, &arch, batch)?;
    out.extend(dense_cases(ctx, &mut rng, &arch, batch)?);
    out.extend(distance_and_adam_cases(ctx, &mut rng, &arch, batch)?);
    Ok(out)
}

/// The kernel cases of one family, each validated against the reference before it is kept.
struct Cases<'a> {
    ctx: &'a GpuContext,
    out: Vec<GpuCase>,
}

impl Cases<'_> {
    fn push(
        &mut self,
        name: &str,
        shape: String,
        dispatches: Vec<Dispatch>,
        flops: f64,
        floats: usize,
    ) {
        self.out.push(GpuCase {
            name: name.into(),
            shape,
            flops,
            floats,
            dispatches,
        });
    }

    /// Runs one dispatch (to validate it).
    fn one(&self, d: &Dispatch) -> Result<()> {
        self.ctx.run(&[d])
    }

    /// Runs a list of dispatches in order.
    fn all(&self, d: &[Dispatch]) -> Result<()> {
        self.ctx.run(&d.iter().collect::<Vec<_>>())
    }
}

/// Pooling (plain and the fused layers' argmax backward) and ReLU on conv1's output.
fn pool_cases(
    ctx: &GpuContext,
    rng: &mut ChaCha8Rng,
    arch: &Arch,
    batch: usize,
) -> Result<Vec<GpuCase>> {
    let mut c = Cases {
        ctx,
        out: Vec::new(),
    };
    let ps = arch.pool(0, batch);
    let (x, g) = (random(rng, ps.in_len()), random(rng, ps.out_len()));
    let (tx, tg) = (ctx.tensor_from(&x, "x")?, ctx.tensor_from(&g, "g")?);
    let (ty, tdx) = (
        ctx.tensor(ps.out_len(), "y")?,
        ctx.tensor(ps.in_len(), "dx")?,
    );
    let shape = format!("{}x{}x{}x{}", ps.batch, ps.c, ps.h, ps.w);
    let d = k::maxpool2d_forward(ctx, &ty, &tx, ps)?;
    c.one(&d)?;
    let mut want = vec![0.0; ps.out_len()];
    r::maxpool2d_forward(&mut want, &x, ps);
    check("maxpool2d_forward", &ctx.read::<f32>(&ty)?, &want)?;
    c.push(
        "maxpool2d_forward",
        shape.clone(),
        vec![d],
        0.0,
        ps.in_len() + ps.out_len(),
    );
    let d = k::maxpool2d_backward(ctx, &tdx, &tg, &tx, ps)?;
    c.one(&d)?;
    let mut want = vec![0.0; ps.in_len()];
    r::maxpool2d_backward(&mut want, &g, &x, ps);
    check("maxpool2d_backward", &ctx.read::<f32>(&tdx)?, &want)?;
    c.push(
        "maxpool2d_backward",
        shape.clone(),
        vec![d],
        0.0,
        2 * ps.in_len() + ps.out_len(),
    );
    // The fused layers' pooling backward pass, on codes from the reference.
    let conv1 = arch.conv(0, batch);
    if k::relu_maxpool_fits(&conv1) {
        let mut codes = vec![0u32; k::pool_code_words(&conv1)];
        for c in codes.iter_mut() {
            // Every window position and dead windows, at random.
            *c = (0..4).fold(0, |w, j| w | (rng.random_range(0..5u32) << (8 * j)));
        }
        let tc = ctx.tensor_from(&codes, "codes")?;
        let d = k::maxpool2d_relu_backward_argmax(ctx, &tdx, &tg, &tc, ps)?;
        c.one(&d)?;
        let mut want = vec![0.0; ps.in_len()];
        r::maxpool2d_relu_backward_argmax(&mut want, &g, &codes, ps);
        check(
            "maxpool2d_relu_backward_argmax",
            &ctx.read::<f32>(&tdx)?,
            &want,
        )?;
        c.push(
            "maxpool2d_relu_backward_argmax",
            shape.clone(),
            vec![d],
            0.0,
            ps.in_len() + ps.out_len() + codes.len(),
        );
    }
    let d = k::relu_forward(ctx, &tdx, &tx, ps.in_len())?;
    c.one(&d)?;
    let mut want = vec![0.0; ps.in_len()];
    r::relu_forward(&mut want, &x);
    check("relu_forward", &ctx.read::<f32>(&tdx)?, &want)?;
    c.push("relu_forward", shape, vec![d], 0.0, 2 * ps.in_len());
    layers::global_pool_cases(&mut c, rng, arch, batch)?;
    layers::batchnorm_cases(&mut c, rng, arch, batch)?;
    Ok(c.out)
}

/// The dense layer's forward and backward passes.
fn dense_cases(
    ctx: &GpuContext,
    rng: &mut ChaCha8Rng,
    arch: &Arch,
    batch: usize,
) -> Result<Vec<GpuCase>> {
    let mut c = Cases {
        ctx,
        out: Vec::new(),
    };
    let ds = arch.dense(batch);
    let (x, w, b, g) = (
        random(rng, ds.batch * ds.nin),
        random(rng, ds.nout * ds.nin),
        random(rng, ds.nout),
        random(rng, ds.batch * ds.nout),
    );
    let (tx, tw, tb, tg) = (
        ctx.tensor_from(&x, "x")?,
        ctx.tensor_from(&w, "w")?,
        ctx.tensor_from(&b, "b")?,
        ctx.tensor_from(&g, "g")?,
    );
    let (ty, tdx, tdw) = (
        ctx.tensor(ds.batch * ds.nout, "y")?,
        ctx.tensor(ds.batch * ds.nin, "dx")?,
        ctx.tensor(ds.nout * ds.nin, "dw")?,
    );
    let shape = format!("{}x{} -> {}", ds.batch, ds.nin, ds.nout);
    let flops = 2.0 * (ds.batch * ds.nin * ds.nout) as f64;
    let floats = ds.batch * ds.nin + ds.nin * ds.nout + ds.batch * ds.nout;
    let d = k::dense_forward(ctx, &ty, &tx, &tw, &tb, ds)?;
    c.one(&d)?;
    let mut want = vec![0.0; ds.batch * ds.nout];
    r::dense_forward(&mut want, &x, &w, &b, ds);
    check("dense_forward", &ctx.read::<f32>(&ty)?, &want)?;
    c.push("dense_forward", shape.clone(), vec![d], flops, floats);
    let d = k::dense_backward_input(ctx, &tdx, &tg, &tw, ds)?;
    c.all(&d)?;
    let mut want = vec![0.0; ds.batch * ds.nin];
    r::dense_backward_input(&mut want, &g, &w, ds);
    check("dense_backward_input", &ctx.read::<f32>(&tdx)?, &want)?;
    c.push("dense_backward_input", shape.clone(), d, flops, floats);
    let d = k::dense_backward_weight(ctx, &tdw, &tg, &tx, ds)?;
    c.all(&d)?;
    let mut want = vec![0.0; ds.nout * ds.nin];
    r::dense_backward_weight(&mut want, &g, &x, ds);
    check("dense_backward_weight", &ctx.read::<f32>(&tdw)?, &want)?;
    c.push("dense_backward_weight", shape, d, flops, floats);

    Ok(c.out)
}

/// The step's distance matrix between its embeddings, and Adam over every parameter.
fn distance_and_adam_cases(
    ctx: &GpuContext,
    rng: &mut ChaCha8Rng,
    arch: &Arch,
    batch: usize,
) -> Result<Vec<GpuCase>> {
    let mut c = Cases {
        ctx,
        out: Vec::new(),
    };
    let ds = arch.dense(batch);
    // The step's distance matrix between its embeddings.
    let (n, e) = (batch, ds.nout);
    let x = random(rng, n * e);
    let (tx, td) = (ctx.tensor_from(&x, "x")?, ctx.tensor(n * n, "dist")?);
    let d = k::pairwise_distance(ctx, &td, &tx, &tx, n, n, e)?;
    c.one(&d)?;
    let mut want = vec![0.0; n * n];
    r::pairwise_distance(&mut want, &x, &x, n, n, e);
    check("pairwise_distance", &ctx.read::<f32>(&td)?, &want)?;
    c.push(
        "pairwise_distance",
        format!("{n}x{n}x{e}"),
        vec![d],
        3.0 * (n * n * e) as f64,
        2 * n * e + n * n,
    );

    // Adam over every parameter.
    let np = ParamLayout::new(arch).total;
    let (p0, g, m0, v0) = (
        random(rng, np),
        random(rng, np),
        random(rng, np),
        random(rng, np).iter().map(|v| v.abs()).collect::<Vec<_>>(),
    );
    let h = match OptimConfig::default().at_step(3) {
        crate::optim::StepParams::Adam(h) => h,
        _ => return Err(Error::Gpu("the default optimizer is not Adam".into())),
    };
    let (tp, tg, tm, tv) = (
        ctx.tensor_from(&p0, "p")?,
        ctx.tensor_from(&g, "g")?,
        ctx.tensor_from(&m0, "m")?,
        ctx.tensor_from(&v0, "v")?,
    );
    let d = k::adam_update(ctx, &tp, &tm, &tv, &tg, &h)?;
    c.one(&d)?;
    let (mut wp, mut wm, mut wv) = (p0.clone(), m0.clone(), v0.clone());
    r::adam_update(&mut wp, &g, &mut wm, &mut wv, &h);
    check("adam_update", &ctx.read::<f32>(&tp)?, &wp)?;
    c.push(
        "adam_update",
        format!("{np} parameters"),
        vec![d],
        0.0,
        7 * np,
    );
    Ok(c.out)
}

/// Every GPU case (matrix products at each conv layer's GEMM shape, the conv passes, the
/// other layers) validated, then timed in interleaved rounds: (matrix products, kernels).
pub fn gpu_kernels(
    ctx: &GpuContext,
    batch: usize,
    reps: usize,
) -> Result<(Vec<KernelTime>, Vec<KernelTime>)> {
    let gemm = gpu_gemm_cases(ctx, batch)?;
    let n = gemm.len();
    let mut cases = gemm;
    cases.extend(gpu_conv_cases(ctx, batch)?);
    cases.extend(gpu_layer_cases(ctx, batch)?);
    let mut timed = time_cases(ctx, &cases, reps)?;
    let kernels = timed.split_off(n);
    Ok((timed, kernels))
}

/// GFLOP/s of a 1024^3 matrix product with the CPU SGEMM.
pub fn cpu_gemm_gflops() -> f64 {
    let n = 1024;
    let a = vec![0.5f32; n * n];
    let b = vec![0.25f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let s = crate::shapes::DenseShape {
        batch: n,
        nin: n,
        nout: n,
    };
    // The fastest of the runs, as for the kernels it is compared with.
    let t = time_runs(3, || {
        fast::dense_backward_input(&mut c, &a, &b, s);
        Ok(())
    })
    .map_or(f64::INFINITY, |t| t.1);
    2.0 * (n * n * n) as f64 / t / 1e9
}

/// What `end_to_end` measures.
pub struct EndToEnd {
    /// Training images/s (batch-all, 96 images per step), steps submitted one ahead as
    /// `train` runs them.
    pub train: f64,
    /// The same, one step at a time (each step's statistics read before the next starts).
    pub train_sync: f64,
    /// Inference images/s at batch 64.
    pub infer: f64,
    /// Batch-1 latency, ms.
    pub latency_ms: f64,
    /// The training step's dispatches as (kernel, median ms), where the device can time them.
    pub step_profile: Vec<(String, f64)>,
}

/// Training images/s (batch-all, 96 images), inference images/s at 64 and batch-1 latency,
/// and where the device allows, each dispatch's GPU time in a training step.
pub fn end_to_end(engine: &mut dyn Engine, steps: usize) -> Result<EndToEnd> {
    let arch = engine.arch().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let n = 96;
    let images = random(&mut rng, n * arch.image_len());
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 4).collect();
    let batch = Batch {
        images: &images,
        labels: &labels,
        triplets: Triplets::Mine(MineMode::BatchAll),
        margin: 0.2,
    };
    let opt = OptimConfig::default();
    let mut t = 0u64;
    let sync = time(steps, || {
        t += 1;
        engine.train_step(&batch, Some(opt.at_step(t))).map(|_| ())
    })?;
    // As `train` runs them: each step submitted before the last one's statistics are read,
    // so the device never waits for the host between steps.
    t += 1;
    engine.submit_step(&batch, Some(opt.at_step(t)))?;
    let train = time(steps, || {
        t += 1;
        engine.submit_step(&batch, Some(opt.at_step(t)))?;
        engine.finish_step().map(|_| ())
    })?;
    engine.finish_step()?;
    // Timestamps between dispatches: per dispatch, the median over the profiled steps.
    let mut runs: Vec<Vec<(String, f64)>> = Vec::new();
    for _ in 0..steps.max(3) {
        t += 1;
        match engine.profile_step(&batch, Some(opt.at_step(t)))? {
            Some(p) => runs.push(p),
            None => break,
        }
    }
    let step_profile = match runs.first() {
        Some(first) => (0..first.len())
            .map(|i| {
                let mut ms: Vec<f64> = runs.iter().map(|r| r[i].1).collect();
                ms.sort_by(f64::total_cmp);
                (first[i].0.clone(), ms[ms.len() / 2])
            })
            .collect(),
        None => Vec::new(),
    };
    let inf = time(steps, || {
        engine.embed(&images[..64 * arch.image_len()]).map(|_| ())
    })?;
    let one = time(steps * 3, || {
        engine.embed(&images[..arch.image_len()]).map(|_| ())
    })?;
    Ok(EndToEnd {
        train: n as f64 / train,
        train_sync: n as f64 / sync,
        infer: 64.0 / inf,
        latency_ms: one * 1e3,
        step_profile,
    })
}

/// The reference network (L2 head) with `pooling` before its dense layer and `norm` after
/// each convolution, with fresh weights, for end-to-end timing.
pub fn reference_params(
    pooling: crate::model::Pooling,
    norm: crate::model::Norm,
) -> (Arch, Vec<f32>) {
    let arch = Arch {
        pooling,
        norm,
        ..Arch::reference(crate::model::Head::L2)
    };
    let p = init_params(&arch, &ParamLayout::new(&arch), 0);
    (arch, p)
}
