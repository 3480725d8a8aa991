//! The network on the CPU: the reference loops (oracle) or the fast im2col + SGEMM path.

use crate::cpu::{fast, reference as r};
use crate::engine::{
    check_batch, check_state_len, flatten_triplets, Batch, Engine, StepStats, Triplets,
};
use crate::model::{Arch, Head, Norm, NormTensors, ParamLayout};
use crate::optim::StepParams;
use rayon::prelude::*;
use std::ops::Range;

use crate::shapes::{Conv2dShape, DenseShape, MineMode, NormShape, PoolShape, BN_MOMENTUM};
use crate::{Error, Result};

type ConvFwd = fn(&mut [f32], &[f32], &[f32], &[f32], Conv2dShape);
type ConvBwd = fn(&mut [f32], &[f32], &[f32], Conv2dShape);
type DenseFwd = fn(&mut [f32], &[f32], &[f32], &[f32], DenseShape);
type DenseBwd = fn(&mut [f32], &[f32], &[f32], DenseShape);
type PoolFwd = fn(&mut [f32], &[f32], PoolShape);
type PoolBwd = fn(&mut [f32], &[f32], &[f32], PoolShape);
#[rustfmt::skip]
type NormFwd = fn(&mut [f32], &mut [f32], &mut [f32], &mut [f32], &[f32], &[f32], &[f32], f32, NormShape);
#[rustfmt::skip]
type NormBwd = fn(&mut [f32], &mut [f32], &mut [f32], &[f32], &[f32], &[f32], &[f32], NormShape);
#[rustfmt::skip]
type NormPoolFwd = fn((&mut [f32], &mut [f32]), &mut [f32], &mut [f32], &mut [f32], &[f32], &[f32], &[f32], f32, NormShape);
#[rustfmt::skip]
type PoolNormBwd = fn(&mut [f32], (&mut [f32], &mut [f32], &mut [f32]), &[f32], &[f32], &[f32], &[f32], &[f32], NormShape);

/// Which implementation of the heavy layers the engine calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKind {
    Reference,
    Fast,
}

struct Kernels {
    conv_fwd: ConvFwd,
    /// Inference's conv + pooling + ReLU in one pass where the kind has it (the reference
    /// runs the passes one by one).
    conv_pool_fwd: Option<ConvFwd>,
    conv_bwd_input: ConvBwd,
    conv_bwd_weight: ConvBwd,
    conv_bwd_bias: fn(&mut [f32], &[f32], Conv2dShape),
    pool_fwd: PoolFwd,
    /// The pooling's and the ReLU's backward in one pass where the kind has it (the
    /// reference runs maxpool2d_backward, then relu_backward).
    pool_relu_bwd: Option<PoolBwd>,
    dense_fwd: DenseFwd,
    dense_bwd_input: DenseBwd,
    dense_bwd_weight: DenseBwd,
    norm_fwd: NormFwd,
    norm_bwd: NormBwd,
    /// A normalised block's normalisation, pooling and ReLU in training, in one kernel where
    /// the kind has it.
    norm_pool_fwd: Option<NormPoolFwd>,
    /// A normalised block's pooling, ReLU, normalisation and conv bias backward in one
    /// kernel where the kind has it (the reference runs the four one by one).
    pool_relu_norm_bwd: Option<PoolNormBwd>,
}

impl Kernels {
    fn of(kind: CpuKind) -> Kernels {
        match kind {
            CpuKind::Reference => Kernels {
                conv_fwd: r::conv2d_forward,
                conv_pool_fwd: None,
                conv_bwd_input: r::conv2d_backward_input,
                conv_bwd_weight: r::conv2d_backward_weight,
                conv_bwd_bias: r::conv2d_backward_bias,
                pool_fwd: r::maxpool2d_forward,
                pool_relu_bwd: None,
                dense_fwd: r::dense_forward,
                dense_bwd_input: r::dense_backward_input,
                dense_bwd_weight: r::dense_backward_weight,
                norm_fwd: r::batchnorm_forward,
                norm_bwd: r::batchnorm_backward,
                norm_pool_fwd: None,
                pool_relu_norm_bwd: None,
            },
            CpuKind::Fast => Kernels {
                conv_fwd: fast::conv2d_forward,
                conv_pool_fwd: Some(fast::conv2d_forward_maxpool_relu),
                conv_bwd_input: fast::conv2d_backward_input,
                conv_bwd_weight: fast::conv2d_backward_weight,
                conv_bwd_bias: fast::conv2d_backward_bias,
                pool_fwd: fast::maxpool2d_forward,
                pool_relu_bwd: Some(fast::maxpool2d_relu_backward),
                dense_fwd: fast::dense_forward,
                dense_bwd_input: fast::dense_backward_input,
                dense_bwd_weight: fast::dense_backward_weight,
                norm_fwd: fast::batchnorm_forward,
                norm_bwd: fast::batchnorm_backward,
                norm_pool_fwd: Some(fast::batchnorm_maxpool_relu_forward),
                pool_relu_norm_bwd: Some(fast::maxpool2d_relu_batchnorm_backward),
            },
        }
    }
}

/// Activations of one forward pass, kept for the backward pass.
#[derive(Default)]
struct Acts {
    /// per block: conv output z `[B, C, H, W]`, ReLU output a (same; with batch
    /// normalisation its output before the ReLU, see forward_into), pooled p
    /// `[B, C, H/2, W/2]`
    z: Vec<Vec<f32>>,
    /// per block with batch normalisation (its output goes straight into a): the batch's
    /// (mean, invstd) `[2, C]` and the running statistics moved by this batch, (mean, var)
    /// `[C]` each, for train_step to commit (training passes only)
    stats: Vec<Vec<f32>>,
    running: Vec<(Vec<f32>, Vec<f32>)>,
    a: Vec<Vec<f32>>,
    p: Vec<Vec<f32>>,
    /// global average + max pooling of the last p `[B, 2C]` (empty without it)
    g: Vec<f32>,
    /// dense output before the head `[B, E]`
    pre: Vec<f32>,
    /// embeddings `[B, E]`
    emb: Vec<f32>,
}

pub struct CpuEngine {
    arch: Arch,
    layout: ParamLayout,
    kind: CpuKind,
    k: Kernels,
    params: Vec<f32>,
    grads: Vec<f32>,
    /// Adam first moment or SGD velocity, and Adam second moment, `[layout.total]` each.
    m: Vec<f32>,
    v: Vec<f32>,
    /// Buffers reused from step to step.
    acts: Acts,
    scratch: Scratch,
    /// Statistics of submitted steps not yet finished (the CPU runs a step on submission).
    pending: std::collections::VecDeque<StepStats>,
    /// Fast kind with batch normalisation: the folded network (fold::folded) embed runs,
    /// built on first use and dropped whenever the parameters change. The reference kind
    /// embeds unfolded (batchnorm_inference): the oracle the fold is checked against.
    folded: Option<Box<CpuEngine>>,
}

/// Backward-pass buffers reused across steps.
#[derive(Default)]
struct Scratch {
    dpre: Vec<f32>,
    /// gradient w.r.t. the global pooling's output `[B, 2C]`
    dg: Vec<f32>,
    /// gradient w.r.t. the current block's pooled output, ReLU output, conv output
    dp: Vec<f32>,
    da: Vec<f32>,
    dz: Vec<f32>,
    /// gradient w.r.t. the conv output under a batch normalisation
    dn: Vec<f32>,
    /// a normalised block's gradients of gamma, beta and the conv bias `[3, C]`
    dchan: Vec<f32>,
}

impl CpuEngine {
    pub fn new(arch: &Arch, params: &[f32], kind: CpuKind) -> Result<CpuEngine> {
        arch.validate().map_err(crate::Error::Input)?;
        let layout = ParamLayout::new(arch);
        let mut e = CpuEngine {
            arch: arch.clone(),
            k: Kernels::of(kind),
            kind,
            grads: vec![0.0; layout.total],
            m: vec![0.0; layout.total],
            v: vec![0.0; layout.total],
            params: Vec::new(),
            acts: Acts::default(),
            scratch: Scratch::default(),
            pending: Default::default(),
            folded: None,
            layout,
        };
        e.set_params(params)?;
        Ok(e)
    }

    /// Block `l`'s batch normalisation of `z` into `a`: with the batch's statistics while
    /// training (kept in `stats`, the running statistics they move in `running`), with the
    /// running ones otherwise.
    /// Then the max pooling of `a` and the ReLU into `p`, in one pass where the kind has it.
    #[allow(clippy::too_many_arguments)]
    fn normalise_and_pool(
        &self,
        (a, p): (&mut [f32], &mut [f32]),
        z: &[f32],
        (stats, (rm, rv)): (&mut Vec<f32>, &mut (Vec<f32>, Vec<f32>)),
        ns: NormShape,
        ps: PoolShape,
        t: crate::model::NormTensors,
        train: bool,
    ) {
        let v = |t: &crate::model::TensorInfo| &self.params[t.range()];
        if train {
            stats.resize(2 * ns.c, 0.0);
            rm.clear();
            rm.extend_from_slice(v(t.running_mean));
            rv.clear();
            rv.extend_from_slice(v(t.running_var));
            let (g, b) = (v(t.gamma), v(t.beta));
            if let Some(fused) = self.k.norm_pool_fwd {
                return fused((a, p), stats, rm, rv, z, g, b, BN_MOMENTUM, ns);
            }
            (self.k.norm_fwd)(a, stats, rm, rv, z, g, b, BN_MOMENTUM, ns);
        } else {
            // Only the reference embeds unfolded (the fast kind runs the folded network):
            // the loops are the oracle, not a hot path.
            let (g, b, m, var) = (v(t.gamma), v(t.beta), v(t.running_mean), v(t.running_var));
            r::batchnorm_inference(a, z, g, b, m, var, ns);
        }
        // Max-pooling commutes with the ReLU (both monotone): pool the normalised map, then
        // the ReLU on the pooled one, a quarter of the size. a keeps the normalised map; its
        // sign is the ReLU's mask, and a window's argmax differs only where its maximum is
        // <= 0, whose gradient the mask zeroes.
        maxpool_then_relu(p, a, ps, self.k.pool_fwd);
    }

    /// Runs the forward pass into `acts`, reusing its buffers (no per-step allocation).
    /// `train`: batch normalisation uses (and records) the batch's statistics, else the
    /// running ones.
    fn forward_into(&self, acts: &mut Acts, images: &[f32], n: usize, train: bool) {
        let nl = self.arch.channels.len();
        acts.z.resize_with(nl, Vec::new);
        acts.a.resize_with(nl, Vec::new);
        acts.p.resize_with(nl, Vec::new);
        acts.stats.resize_with(nl, Vec::new);
        acts.running.resize_with(nl, Default::default);
        for l in 0..nl {
            let s = self.arch.conv(l, n);
            let ps = self.arch.pool(l, n);
            let (w, b) = self.layout.conv(l);
            let (done, rest) = acts.p.split_at_mut(l);
            let x: &[f32] = if l == 0 { images } else { &done[l - 1] };
            let (z, a, p) = (&mut acts.z[l], &mut acts.a[l], &mut rest[0]);
            p.resize(ps.out_len(), 0.0);
            // Inference of an unnormalised block (the fast kind embeds the folded network).
            if let Some(fused) = self.k.conv_pool_fwd.filter(|_| !train) {
                if self.arch.norm(l, n).is_none() {
                    fused(p, x, &self.params[w.range()], &self.params[b.range()], s);
                    continue;
                }
            }
            z.resize(s.out_len(), 0.0);
            a.resize(s.out_len(), 0.0);
            (self.k.conv_fwd)(z, x, &self.params[w.range()], &self.params[b.range()], s);
            let one = PoolShape { batch: 1, ..ps };
            match (self.arch.norm(l, n), self.layout.norm(l)) {
                (Some(ns), Some(t)) => {
                    let (stats, running) = (&mut acts.stats[l], &mut acts.running[l]);
                    self.normalise_and_pool((a, p), z, (stats, running), ns, ps, t, train);
                }
                // Inference keeps no activations for a backward pass: the ReLU on the pooled
                // map (they commute), a quarter of the size, not on the full-size one.
                _ if !train => maxpool_then_relu(p, z, ps, self.k.pool_fwd),
                _ => {
                    per_image(a, (z, one.in_len()), r::relu_forward);
                    (self.k.pool_fwd)(p, a, ps);
                }
            }
        }
        let feat = match self.arch.global_pool(n) {
            Some(gs) => {
                acts.g.resize(gs.out_len(), 0.0);
                r::global_avgmax_pool_forward(&mut acts.g, &acts.p[nl - 1], gs);
                &acts.g
            }
            None => &acts.p[nl - 1],
        };
        let ds = self.arch.dense(n);
        let (w, b) = self.layout.dense();
        acts.pre.resize(n * ds.nout, 0.0);
        (self.k.dense_fwd)(
            &mut acts.pre,
            feat,
            &self.params[w.range()],
            &self.params[b.range()],
            ds,
        );
        acts.emb.resize(n * ds.nout, 0.0);
        match self.arch.head {
            Head::Sigmoid => r::sigmoid_forward(&mut acts.emb, &acts.pre),
            Head::L2 => r::l2norm_forward(&mut acts.emb, &acts.pre, n, ds.nout),
        }
    }

    /// Fills `self.grads` from d(loss)/d(embeddings) `[n, E]`, using `acts` of the forward
    /// pass and the reusable scratch buffers.
    fn backward(&mut self, images: &[f32], acts: &Acts, demb: &[f32], n: usize) {
        let ds = self.arch.dense(n);
        let sc = &mut self.scratch;
        sc.dpre.resize(demb.len(), 0.0);
        match self.arch.head {
            Head::Sigmoid => r::sigmoid_backward(&mut sc.dpre, demb, &acts.emb),
            Head::L2 => r::l2norm_backward(&mut sc.dpre, demb, &acts.emb, &acts.pre, n, ds.nout),
        }
        let nl = self.arch.channels.len();
        let gs = self.arch.global_pool(n);
        let feat = if gs.is_some() {
            &acts.g
        } else {
            &acts.p[nl - 1]
        };
        let (w, b) = self.layout.dense();
        (self.k.dense_bwd_weight)(&mut self.grads[w.range()], &sc.dpre, feat, ds);
        r::dense_backward_bias(&mut self.grads[b.range()], &sc.dpre, ds);
        let dfeat = grow(
            if gs.is_some() { &mut sc.dg } else { &mut sc.dp },
            n * ds.nin,
        );
        (self.k.dense_bwd_input)(dfeat, &sc.dpre, &self.params[w.range()], ds);
        if let Some(gs) = gs {
            let dp = grow(&mut sc.dp, gs.in_len());
            r::global_avgmax_pool_backward(dp, &sc.dg[..n * ds.nin], &acts.p[nl - 1], gs);
        }
        for l in (0..nl).rev() {
            let s = self.arch.conv(l, n);
            let ps = self.arch.pool(l, n);
            let len = s.out_len();
            let norm = self.arch.norm(l, n).zip(self.layout.norm(l));
            let (w, b) = self.layout.conv(l);
            let grads = (&mut self.grads[..], &self.params[..]);
            tail_backward(&self.k, sc, grads, acts, l, (s, ps, norm, b.range()));
            let dz = &sc.dz[..len];
            let inp: &[f32] = if l == 0 { images } else { &acts.p[l - 1] };
            (self.k.conv_bwd_weight)(&mut self.grads[w.range()], dz, inp, s);
            if l > 0 {
                let dp = grow(&mut sc.dp, s.in_len());
                (self.k.conv_bwd_input)(dp, dz, &self.params[w.range()], s);
            }
        }
    }
}

/// A block's backward from the gradient at its pooled output (`sc.dp`) to the one at its
/// conv output (left in `sc.dz`): pooling, ReLU and the normalisation where there is one,
/// with the gradients of gamma, beta and the conv bias (range `b`) written into `grads`.
fn tail_backward(
    k: &Kernels,
    sc: &mut Scratch,
    (grads, params): (&mut [f32], &[f32]),
    acts: &Acts,
    l: usize,
    (s, ps, norm, bias): (
        Conv2dShape,
        PoolShape,
        Option<(NormShape, NormTensors)>,
        Range<usize>,
    ),
) {
    let one = PoolShape { batch: 1, ..ps };
    let len = s.out_len();
    grow(&mut sc.dz, len);
    let (dp, a) = (&sc.dp[..ps.out_len()], &acts.a[l]);
    match (norm, k.pool_relu_norm_bwd) {
        (Some((ns, t)), Some(fused)) => {
            // The gradients of gamma, beta and the conv bias `[3, C]`, then put in place.
            let c = ns.c;
            let dc = grow(&mut sc.dchan, 3 * c);
            let (dg, rest) = dc.split_at_mut(c);
            let (db, dbias) = rest.split_at_mut(c);
            let (z, stats) = (&acts.z[l], &acts.stats[l]);
            let gamma = &params[t.gamma.range()];
            fused(
                &mut sc.dz[..len],
                (dg, db, dbias),
                dp,
                a,
                z,
                stats,
                gamma,
                ns,
            );
            for (range, d) in [t.gamma.range(), t.beta.range(), bias.clone()]
                .into_iter()
                .zip(dc.chunks_exact(c))
            {
                grads[range].copy_from_slice(d);
            }
        }
        (norm, _) => {
            if let Some(fused) = k.pool_relu_bwd {
                fused(&mut sc.dz[..len], dp, a, ps);
            } else {
                let da = grow(&mut sc.da, len);
                let (il, ol) = (one.in_len(), one.out_len());
                da.par_chunks_mut(il)
                    .zip(dp.par_chunks(ol))
                    .zip(a.par_chunks(il))
                    .for_each(|((da, dp), a)| r::maxpool2d_backward(da, dp, a, one));
                let (dz, da) = (&mut sc.dz[..len], &sc.da[..len]);
                per_image_of_two(dz, (da, a), il, r::relu_backward);
            }
            if let Some((ns, t)) = norm {
                // sc.dz is the gradient at the normalisation's output; take it to the
                // conv's.
                grow(&mut sc.dn, ns.len());
                let (g, b) = (t.gamma.range(), t.beta.range());
                // gamma before beta in the layout (tensors aligned, not adjacent): one
                // split at beta gives both gradients' slices without a copy.
                assert!(g.end <= b.start, "bn gamma is laid out before beta");
                let (lo, hi) = grads.split_at_mut(b.start);
                (k.norm_bwd)(
                    &mut sc.dn[..len],
                    &mut lo[g.clone()],
                    &mut hi[..b.len()],
                    &sc.dz[..len],
                    &acts.z[l],
                    &acts.stats[l],
                    &params[g],
                    ns,
                );
                std::mem::swap(&mut sc.dz, &mut sc.dn);
            }
            (k.conv_bwd_bias)(&mut grads[bias], &sc.dz[..len], s);
        }
    }
}

/// The first `len` values of a scratch buffer, grown when shorter and never shrunk: the
/// blocks' gradients shrink and grow again every step, and a `resize` that shrank then
/// zeroed each regrowth (77 MB a step at conv1, single-threaded: 2% of a CPU step).
fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// `f(out_image, in_image)` over the images of a batch in parallel (same-size tensors).
fn per_image(out: &mut [f32], (inp, len): (&[f32], usize), f: impl Fn(&mut [f32], &[f32]) + Sync) {
    out.par_chunks_mut(len)
        .zip(inp.par_chunks(len))
        .for_each(|(o, i)| f(o, i));
}

/// `f(out_image, x_image, y_image)` over the images of a batch in parallel (same-size tensors).
fn per_image_of_two(
    out: &mut [f32],
    (x, y): (&[f32], &[f32]),
    len: usize,
    f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync,
) {
    out.par_chunks_mut(len)
        .zip(x.par_chunks(len).zip(y.par_chunks(len)))
        .for_each(|(o, (x, y))| f(o, x, y));
}

/// pooled `[B, C, H/2, W/2]` = relu(maxpool2d_forward(m)) of `m` `[B, C, H, W]`, the same
/// as pooling the ReLU's output (both are monotone) with a ReLU pass a quarter of the size.
fn maxpool_then_relu(pooled: &mut [f32], m: &[f32], s: PoolShape, pool: PoolFwd) {
    pool(pooled, m, s);
    pooled
        .par_chunks_mut(s.out_len().div_ceil(16).max(1))
        .for_each(|p| p.iter_mut().for_each(|v| *v = v.max(0.0)));
}

impl Engine for CpuEngine {
    fn describe(&self) -> String {
        match self.kind {
            CpuKind::Reference => "cpu-reference".into(),
            CpuKind::Fast => format!(
                "cpu ({} threads, im2col + matrixmultiply SGEMM)",
                rayon::current_num_threads()
            ),
        }
    }

    fn arch(&self) -> &Arch {
        &self.arch
    }

    fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        Ok(self.params.clone())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.layout.total {
            return Err(crate::Error::Input(format!(
                "{} parameters given, the architecture has {}",
                params.len(),
                self.layout.total
            )));
        }
        self.params = params.to_vec();
        self.folded = None;
        self.m.fill(0.0);
        self.v.fill(0.0);
        Ok(())
    }

    fn optim_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.m.clone(), self.v.clone()))
    }

    fn restore(&mut self, params: &[f32], m: &[f32], v: &[f32]) -> Result<()> {
        self.set_params(params)?;
        check_state_len(self.layout.total, m, v)?;
        self.m.copy_from_slice(m);
        self.v.copy_from_slice(v);
        Ok(())
    }

    fn gradients(&mut self) -> Result<Vec<f32>> {
        Ok(self.grads.clone())
    }

    fn embed(&mut self, images: &[f32]) -> Result<Vec<f32>> {
        let il = self.arch.image_len();
        if !images.len().is_multiple_of(il) {
            return Err(crate::Error::Input(format!(
                "{} pixels is not a whole number of images",
                images.len()
            )));
        }
        if self.arch.norm != Norm::None && self.kind == CpuKind::Fast {
            if self.folded.is_none() {
                let (arch, params) = crate::fold::folded(&self.arch, &self.params);
                self.folded = Some(Box::new(CpuEngine::new(&arch, &params, self.kind)?));
            }
            return self.folded.as_mut().unwrap().embed(images);
        }
        let mut out = Vec::with_capacity(images.len() / il * self.arch.embed_dim);
        let mut acts = std::mem::take(&mut self.acts);
        for chunk in images.chunks(64 * il) {
            self.forward_into(&mut acts, chunk, chunk.len() / il, false);
            out.extend_from_slice(&acts.emb);
        }
        self.acts = acts;
        Ok(out)
    }

    fn submit_step(&mut self, batch: &Batch, update: Option<StepParams>) -> Result<()> {
        if self.pending.len() >= 2 {
            return Err(Error::Input(
                "two training steps are already unfinished".into(),
            ));
        }
        let s = self.train_step(batch, update)?;
        self.pending.push_back(s);
        Ok(())
    }

    fn finish_step(&mut self) -> Result<StepStats> {
        self.pending
            .pop_front()
            .ok_or_else(|| Error::Input("no training step to finish".into()))
    }

    fn train_step(&mut self, batch: &Batch, update: Option<StepParams>) -> Result<StepStats> {
        check_batch(&self.arch, batch)?;
        let n = batch.len();
        let e = self.arch.embed_dim;
        let mut acts = std::mem::take(&mut self.acts);
        self.folded = None;
        self.forward_into(&mut acts, batch.images, n, true);
        // Commit the running statistics this batch moved (a training pass, as in PyTorch's
        // train mode, whether or not the step updates the weights).
        for (l, (rm, rv)) in acts.running.iter().enumerate() {
            if let Some(t) = self.layout.norm(l) {
                self.params[t.running_mean.range()].copy_from_slice(rm);
                self.params[t.running_var.range()].copy_from_slice(rv);
            }
        }
        let mut dist = vec![0.0; n * n];
        r::pairwise_distance(&mut dist, &acts.emb, &acts.emb, n, n, e);
        let mut stats = [0.0f32; 4];
        let mut demb = vec![0.0; n * e];
        if let Triplets::Pairs(p) = batch.triplets {
            let pairs = flatten_triplets(p);
            let (mut losses, mut dlogit) = (vec![0.0; p.len()], vec![0.0; p.len()]);
            let (alpha, beta) = self.layout.siamese().expect("siamese layout");
            let (alpha, beta) = (alpha.range(), beta.range());
            r::siamese_forward(
                &mut losses,
                &mut dlogit,
                &acts.emb,
                &pairs,
                &self.params[alpha.clone()],
                &self.params[beta.clone()],
                e,
            );
            r::triplet_loss_reduce(&mut stats, &losses, &pairs);
            let mut dbeta = [0.0f32];
            let mut dalpha = vec![0.0; e];
            r::siamese_backward(
                &mut demb,
                &mut dalpha,
                &mut dbeta,
                &acts.emb,
                &pairs,
                &dlogit,
                &self.params[alpha.clone()],
                &stats,
                n,
                e,
            );
            self.grads[alpha].copy_from_slice(&dalpha);
            self.grads[beta].copy_from_slice(&dbeta);
        } else if batch.triplets == Triplets::Mine(MineMode::BatchAll) {
            let (mut w, mut pl, mut pv) = (vec![0.0; n * n], vec![0.0; n * n], vec![0.0; n * n]);
            r::triplet_all_forward(
                &mut w,
                &mut pl,
                &mut pv,
                &dist,
                batch.labels,
                n,
                batch.margin,
            );
            r::triplet_all_reduce(&mut stats, &w, &pl, &pv, n);
            r::triplet_all_backward(&mut demb, &acts.emb, &w, &stats, n, e);
        } else {
            let triplets = match batch.triplets {
                Triplets::Given(t) | Triplets::Pairs(t) => flatten_triplets(t),
                Triplets::Mine(mode) => {
                    let mut t = vec![0u32; 3 * n];
                    r::triplet_mine(&mut t, &dist, batch.labels, n, mode);
                    t
                }
            };
            let mut losses = vec![0.0; triplets.len() / 3];
            r::triplet_loss_forward(&mut losses, &dist, &triplets, n, batch.margin);
            r::triplet_loss_reduce(&mut stats, &losses, &triplets);
            r::triplet_loss_backward(&mut demb, &acts.emb, &dist, &triplets, n, e, batch.margin);
        }
        self.backward(batch.images, &acts, &demb, n);
        self.acts = acts;
        // The trained range only: the running statistics after it are not the optimizer's.
        let t = self.layout.trainable;
        let (p, g, m, v) = (
            &mut self.params[..t],
            &self.grads[..t],
            &mut self.m[..t],
            &mut self.v[..t],
        );
        match update {
            Some(StepParams::Adam(h)) => r::adam_update(p, g, m, v, &h),
            Some(StepParams::Sgd(h)) => r::sgd_momentum_update(p, g, m, &h),
            None => {}
        }
        Ok(StepStats::from_raw(&stats))
    }
}
