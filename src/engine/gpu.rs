//! The network on a GPU: buffers and dispatches are built once per batch shape; a training
//! step is one command encoder and one submission (forward, distances, mining, loss,
//! backward, update), reading back only the 16-byte loss statistics.

use std::sync::Arc;

use crate::engine::{check_batch, flatten_triplets, Batch, Engine, StepStats, Triplets};
use crate::gpu::ops as k;
use crate::gpu::{Dispatch, DispatchTimer, GpuContext, GpuTensor};
use crate::model::{Arch, Head, Norm, ParamLayout};
use crate::optim::StepParams;
use crate::shapes::MineMode;
use crate::{Error, Result};

mod norm;
use norm::norm_block;

/// Images per inference dispatch chain.
const INFER_BATCH: usize = 64;

/// Forward pass buffers for a batch of `n` images.
struct Forward {
    n: usize,
    /// `[n, 1, side, side]`
    images: GpuTensor,
    /// per block: what pooling's backward pass reads and pooled p `[n, C, H/2, W/2]`
    a: Vec<Activation>,
    p: Vec<GpuTensor>,
    /// per block with batch normalisation (training passes only): the conv output z and
    /// the batch's (mean, invstd) `[2, C]`, what batchnorm_backward reads
    norm: Vec<Option<(GpuTensor, GpuTensor)>>,
    /// global average + max pooling of the last p `[n, 2C]`, when the architecture has it
    g: Option<GpuTensor>,
    /// dense output `[n, E]` and embeddings `[n, E]`
    pre: GpuTensor,
    emb: GpuTensor,
    dispatches: Vec<Dispatch>,
    /// Host-readable copy of `emb` (inference reads it back in the same submission).
    readback: wgpu::Buffer,
    /// Inference: the next call's commands, encoded while the GPU ran this one.
    next: Option<wgpu::CommandBuffer>,
}

/// Inference commands: the forward pass, then the embeddings copied to the readback buffer.
fn encode_forward(ctx: &GpuContext, fwd: &Forward) -> wgpu::CommandBuffer {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for d in &fwd.dispatches {
            d.record(&mut pass);
        }
    }
    let (offset, bytes) = ((fwd.emb.offset * 4) as u64, (fwd.emb.len * 4) as u64);
    enc.copy_buffer_to_buffer(&fwd.emb.buffer, offset, &fwd.readback, 0, bytes);
    enc.finish()
}

/// What a conv block keeps for its backward pass.
enum Activation {
    /// The ReLU's output `[n, C, H, W]` (conv2d_forward_relu, then maxpool2d_forward).
    Full(GpuTensor),
    /// Each pooling window's argmax, `[pool_code_words]` u32 (conv2d_forward_relu_maxpool,
    /// where the shape allows: the full-size activation is never written).
    Codes(GpuTensor),
}

/// What a train plan was built for; a different key rebuilds it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct TrainKey {
    n: usize,
    t: usize,
    /// Siamese pairs instead of triplets.
    pairs: bool,
    mine: Option<MineMode>,
    margin: u32,
}

struct TrainPlan {
    key: TrainKey,
    fwd: Forward,
    /// `[n]` u32
    labels: GpuTensor,
    /// `[t, 3]` u32
    triplets: GpuTensor,
    /// `[4]`: mean loss, valid, active, 0
    stats: GpuTensor,
    /// Stats readback, one per slot: two steps can be in flight.
    staging: [wgpu::Buffer; 2],
    /// distances, mining, loss and backward
    dispatches: Vec<Dispatch>,
}

pub struct GpuEngine {
    ctx: Arc<GpuContext>,
    arch: Arch,
    layout: ParamLayout,
    /// `[layout.total]` each: parameters, gradients, Adam m (or SGD velocity), Adam v
    params: GpuTensor,
    grads: GpuTensor,
    m: GpuTensor,
    v: GpuTensor,
    adam: Option<Dispatch>,
    sgd: Option<Dispatch>,
    train: Option<TrainPlan>,
    /// Forward plans by batch size: INFER_BATCH and the remainders seen so far.
    infer: Vec<Forward>,
    /// The next training step's commands, encoded while the GPU ran the last one, with the
    /// optimizer they end in (0 none, 1 Adam, 2 SGD); for the current train plan and
    /// readback slot `slot` only.
    next_step: Option<(u8, wgpu::CommandBuffer)>,
    /// Submitted steps not yet finished, oldest first: (readback slot, submission).
    in_flight: std::collections::VecDeque<(usize, wgpu::SubmissionIndex)>,
    /// The readback slot of the next step.
    slot: usize,
    /// With batch normalisation: the folded network (fold::folded) embed runs, so inference
    /// takes the fused conv + ReLU + pooling kernels and no normalisation pass. Built on
    /// first use from the parameters read back, dropped whenever they change.
    folded: Option<Box<GpuEngine>>,
}

/// One training step's commands: every dispatch in one pass (a timestamp after each when
/// timed), then the loss statistics copied to readback buffer `slot`.
fn encode_step(
    ctx: &GpuContext,
    plan: &TrainPlan,
    all: &[&Dispatch],
    timer: Option<&DispatchTimer>,
    slot: usize,
) -> wgpu::CommandBuffer {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        if let Some(t) = timer {
            t.mark(&mut pass, 0);
        }
        for (i, d) in all.iter().enumerate() {
            d.record(&mut pass);
            if let Some(t) = timer {
                t.mark(&mut pass, i + 1);
            }
        }
    }
    if let Some(t) = timer {
        t.resolve(&mut enc);
    }
    enc.copy_buffer_to_buffer(&plan.stats.buffer, 0, &plan.staging[slot], 0, 16);
    enc.finish()
}

fn tensor_view(t: &GpuTensor, info: &crate::model::TensorInfo) -> GpuTensor {
    t.slice(info.offset, info.len)
}

/// `train`: a training pass; batch normalisations use (and move the running statistics
/// with) the batch's statistics and keep what their backward pass reads. An inference pass
/// is built on the folded network, which has none.
fn build_forward(
    ctx: &GpuContext,
    arch: &Arch,
    layout: &ParamLayout,
    params: &GpuTensor,
    n: usize,
    train: bool,
) -> Result<Forward> {
    let images = ctx.tensor(n * arch.image_len(), "images")?;
    let (mut a, mut p, mut dispatches) = (Vec::new(), Vec::new(), Vec::new());
    let mut norm = Vec::new();
    for l in 0..arch.channels.len() {
        let s = arch.conv(l, n);
        let ps = arch.pool(l, n);
        let pl = ctx.tensor(ps.out_len(), &format!("pool{} out", l + 1))?;
        let (w, b) = layout.conv(l);
        let (w, b) = (tensor_view(params, w), tensor_view(params, b));
        let inp = if l == 0 { &images } else { &p[l - 1] };
        if let (Some(ns), Some(t)) = (arch.norm(l, n), layout.norm(l)) {
            if !train {
                return Err(Error::Gpu(
                    "an inference pass with batch normalisation: fold it first".into(),
                ));
            }
            let (d, al, kept) = norm_block(ctx, params, t, (inp, &w, &b, &pl), s, ns)?;
            dispatches.extend(d);
            a.push(Activation::Full(al));
            norm.push(Some(kept));
            p.push(pl);
            continue;
        }
        norm.push(None);
        if k::relu_maxpool_fits(&s) {
            // Conv, bias, ReLU and pooling in one pass, keeping only each window's argmax.
            let codes = ctx.tensor(k::pool_code_words(&s), &format!("pool{} codes", l + 1))?;
            dispatches.extend(k::conv2d_forward_relu_maxpool(
                ctx, &pl, &codes, inp, &w, &b, s,
            )?);
            a.push(Activation::Codes(codes));
        } else {
            // Conv, bias and ReLU in one pass (the backward pass needs only the ReLU output).
            let al = ctx.tensor(s.out_len(), &format!("relu{} out", l + 1))?;
            dispatches.extend(k::conv2d_forward_relu(ctx, &al, inp, &w, &b, s)?);
            dispatches.push(k::maxpool2d_forward(ctx, &pl, &al, ps)?);
            a.push(Activation::Full(al));
        }
        p.push(pl);
    }
    let g = match arch.global_pool(n) {
        Some(gs) => {
            let g = ctx.tensor(gs.out_len(), "global pool out")?;
            dispatches.push(k::global_avgmax_pool_forward(
                ctx,
                &g,
                p.last().unwrap(),
                gs,
            )?);
            Some(g)
        }
        None => None,
    };
    let ds = arch.dense(n);
    let pre = ctx.tensor(n * ds.nout, "dense out")?;
    let emb = ctx.tensor(n * ds.nout, "embeddings")?;
    let (w, b) = layout.dense();
    dispatches.push(k::dense_forward(
        ctx,
        &pre,
        g.as_ref().unwrap_or_else(|| p.last().unwrap()),
        &tensor_view(params, w),
        &tensor_view(params, b),
        ds,
    )?);
    dispatches.push(match arch.head {
        Head::Sigmoid => k::sigmoid_forward(ctx, &emb, &pre, n * ds.nout)?,
        Head::L2 => k::l2norm_forward(ctx, &emb, &pre, n, ds.nout)?,
    });
    Ok(Forward {
        n,
        images,
        a,
        p,
        norm,
        g,
        readback: ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("embeddings readback"),
            size: (emb.len * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }),
        next: None,
        pre,
        emb,
        dispatches,
    })
}

impl GpuEngine {
    pub fn new(ctx: Arc<GpuContext>, arch: &Arch, params: &[f32]) -> Result<GpuEngine> {
        arch.validate().map_err(Error::Input)?;
        let layout = ParamLayout::new(arch);
        let total = layout.total;
        let mut e = GpuEngine {
            params: ctx.tensor(total, "params")?,
            grads: ctx.tensor(total, "grads")?,
            m: ctx.tensor(total, "optimizer m")?,
            v: ctx.tensor(total, "optimizer v")?,
            ctx,
            arch: arch.clone(),
            layout,
            adam: None,
            sgd: None,
            train: None,
            next_step: None,
            in_flight: Default::default(),
            slot: 0,
            infer: Vec::new(),
            folded: None,
        };
        e.set_params(params)?;
        Ok(e)
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Uploads a step's batch and submits its commands (one submission); `timed` writes a
    /// timestamp after each dispatch and returns the timer with the dispatches' names.
    #[allow(clippy::type_complexity)]
    fn submit(
        &mut self,
        batch: &Batch,
        update: Option<StepParams>,
        timed: bool,
    ) -> Result<Option<(DispatchTimer, Vec<&'static str>)>> {
        check_batch(&self.arch, batch)?;
        // A training pass moves the running statistics (and an update the weights).
        self.folded = None;
        if self.in_flight.len() >= 2 {
            return Err(Error::Gpu(
                "two training steps are already unfinished: finish one first".into(),
            ));
        }
        let key = TrainKey {
            n: batch.len(),
            t: batch.triplet_count(),
            pairs: matches!(batch.triplets, Triplets::Pairs(_)),
            mine: match batch.triplets {
                Triplets::Mine(m) => Some(m),
                Triplets::Given(_) | Triplets::Pairs(_) => None,
            },
            margin: batch.margin.to_bits(),
        };
        if self.train.as_ref().map(|p| p.key) != Some(key) {
            if !self.in_flight.is_empty() {
                return Err(Error::Gpu(
                    "a step of another batch shape is unfinished: finish it first".into(),
                ));
            }
            self.next_step = None;
            self.train = None; // free the old plan's buffers before allocating
            self.train = Some(self.build_train(key)?);
        }
        if let Some(s) = &update {
            self.prepare_update(s)?;
        }
        // Which optimizer dispatch ends the step: part of what a pre-encoded step matches.
        let tag = match update {
            Some(StepParams::Adam(_)) => 1u8,
            Some(StepParams::Sgd(_)) => 2,
            None => 0,
        };
        let update = match tag {
            1 => self.adam.as_ref(),
            2 => self.sgd.as_ref(),
            _ => None,
        };
        let ctx = &*self.ctx;
        let plan = self.train.as_ref().unwrap();
        // Queue writes: ordered after the steps already submitted (which may still be reading
        // these buffers) and before this one.
        ctx.upload(&plan.fwd.images, batch.images);
        ctx.upload(&plan.labels, batch.labels);
        if let Triplets::Given(t) | Triplets::Pairs(t) = batch.triplets {
            ctx.upload(&plan.triplets, &flatten_triplets(t));
        }
        let all: Vec<&Dispatch> = plan
            .fwd
            .dispatches
            .iter()
            .chain(&plan.dispatches)
            .chain(update)
            .collect();
        let timer = if timed {
            Some(DispatchTimer::new(ctx, all.len())?)
        } else {
            None
        };
        let slot = self.slot;
        let cmd = match self.next_step.take() {
            Some((t, cmd)) if !timed && t == tag => cmd,
            _ => encode_step(ctx, plan, &all, timer.as_ref(), slot),
        };
        let index = ctx.queue.submit([cmd]);
        // While the GPU runs this step, encode the next one for the same plan and optimizer
        // (the uploads and uniforms it reads are queue writes, ordered before its submission):
        // the host's encoding leaves the step's critical path.
        let next = (!timed).then(|| encode_step(ctx, plan, &all, None, slot ^ 1));
        let timed = timer.map(|t| (t, all.iter().map(|d| d.name()).collect()));
        self.next_step = next.map(|c| (tag, c));
        self.in_flight.push_back((slot, index));
        self.slot ^= 1;
        Ok(timed)
    }

    fn build_train(&self, key: TrainKey) -> Result<TrainPlan> {
        let ctx = &*self.ctx;
        let (n, t, e) = (key.n, key.t, self.arch.embed_dim);
        let fwd = build_forward(ctx, &self.arch, &self.layout, &self.params, n, true)?;
        let labels = ctx.tensor(n, "labels")?;
        let triplets = ctx.tensor(3 * t, "triplets")?;
        let stats = ctx.tensor(4, "loss stats")?;
        let demb = ctx.tensor(n * e, "d embeddings")?;
        let dpre = ctx.tensor(n * e, "d dense out")?;
        let mut d = self.loss_dispatches(&key, &fwd, &labels, &triplets, &stats, &demb)?;
        d.push(match self.arch.head {
            Head::Sigmoid => k::sigmoid_backward(ctx, &dpre, &demb, &fwd.emb, n * e)?,
            Head::L2 => k::l2norm_backward(ctx, &dpre, &demb, &fwd.emb, &fwd.pre, n, e)?,
        });
        d.extend(self.backward_dispatches(&fwd, &dpre, n)?);
        let staging = [0, 1].map(|_| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("stats readback"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        Ok(TrainPlan {
            key,
            fwd,
            labels,
            triplets,
            stats,
            staging,
            dispatches: d,
        })
    }

    /// The loss's forward and backward passes, from the embeddings `[n, e]` to their gradient
    /// `demb` `[n, e]`; `stats` `[4]` receives the loss statistics.
    fn loss_dispatches(
        &self,
        key: &TrainKey,
        fwd: &Forward,
        labels: &GpuTensor,
        triplets: &GpuTensor,
        stats: &GpuTensor,
        demb: &GpuTensor,
    ) -> Result<Vec<Dispatch>> {
        let ctx = &*self.ctx;
        let (n, t, e) = (key.n, key.t, self.arch.embed_dim);
        let margin = f32::from_bits(key.margin);
        let dist = ctx.tensor(n * n, "distances")?;
        let losses = ctx.tensor(t, "losses")?;
        let mut d = Vec::new();
        if !key.pairs {
            d.push(k::pairwise_distance(
                ctx, &dist, &fwd.emb, &fwd.emb, n, n, e,
            )?);
        }
        if key.pairs {
            let (alpha, beta) = self.layout.siamese().expect("siamese layout");
            let dlogit = ctx.tensor(t, "d logits")?;
            let (pa, pb) = (
                tensor_view(&self.params, alpha),
                tensor_view(&self.params, beta),
            );
            d.push(k::siamese_forward(
                ctx, &losses, &dlogit, &fwd.emb, triplets, &pa, &pb, t, e,
            )?);
            d.push(k::triplet_loss_reduce(ctx, stats, &losses, triplets, t)?);
            d.push(k::siamese_backward(
                ctx,
                demb,
                &tensor_view(&self.grads, alpha),
                &tensor_view(&self.grads, beta),
                &fwd.emb,
                triplets,
                &dlogit,
                &pa,
                stats,
                n,
                e,
                t,
            )?);
        } else if key.mine == Some(MineMode::BatchAll) {
            let (w, pl, pv) = (
                ctx.tensor(n * n, "pair weights")?,
                ctx.tensor(n * n, "pair losses")?,
                ctx.tensor(n * n, "pair valid")?,
            );
            d.push(k::triplet_all_forward(
                ctx, &w, &pl, &pv, &dist, labels, n, margin,
            )?);
            d.push(k::triplet_all_reduce(ctx, stats, &w, &pl, &pv, n)?);
            d.push(k::triplet_all_backward(
                ctx, demb, &fwd.emb, &w, stats, n, e,
            )?);
        } else {
            if let Some(mode) = key.mine {
                d.push(k::triplet_mine(ctx, triplets, &dist, labels, n, mode)?);
            }
            d.push(k::triplet_loss_forward(
                ctx, &losses, &dist, triplets, t, n, margin,
            )?);
            d.push(k::triplet_loss_reduce(ctx, stats, &losses, triplets, t)?);
            d.push(k::triplet_loss_backward(
                ctx, demb, &fwd.emb, &dist, triplets, n, e, t, margin,
            )?);
        }
        Ok(d)
    }

    /// The network's backward passes, from the dense layer's output gradient `dpre` `[n, e]`
    /// to every parameter's gradient.
    fn backward_dispatches(
        &self,
        fwd: &Forward,
        dpre: &GpuTensor,
        n: usize,
    ) -> Result<Vec<Dispatch>> {
        let ctx = &*self.ctx;
        let mut d = Vec::new();
        let ds = self.arch.dense(n);
        let nl = self.arch.channels.len();
        let (w, b) = self.layout.dense();
        let (gw, gb) = (tensor_view(&self.grads, w), tensor_view(&self.grads, b));
        let feat = fwd.g.as_ref().unwrap_or(&fwd.p[nl - 1]);
        d.extend(k::dense_backward_weight(ctx, &gw, dpre, feat, ds)?);
        d.push(k::dense_backward_bias(ctx, &gb, dpre, ds)?);
        let mut dp = ctx.tensor(n * ds.nin, "d dense in")?;
        d.extend(k::dense_backward_input(
            ctx,
            &dp,
            dpre,
            &tensor_view(&self.params, w),
            ds,
        )?);
        if let Some(gs) = self.arch.global_pool(n) {
            let dg = dp;
            dp = ctx.tensor(gs.in_len(), &format!("d pool{nl} out"))?;
            d.push(k::global_avgmax_pool_backward(
                ctx,
                &dp,
                &dg,
                &fwd.p[nl - 1],
                gs,
            )?);
        }
        // Scratch for per-image partial gradients (weights and bias), sized for the largest layer.
        let partial_len = (0..nl)
            .map(|l| self.arch.conv(l, n))
            .map(|s| n * (s.weight_len() + s.cout))
            .max()
            .unwrap();
        let partial = ctx.tensor(partial_len, "partial gradients")?;
        for l in (0..nl).rev() {
            let s = self.arch.conv(l, n);
            let dz = ctx.tensor(s.out_len(), &format!("d conv{} out", l + 1))?;
            // Pooling's and the ReLU's backward passes in one.
            let ps = self.arch.pool(l, n);
            d.push(match &fwd.a[l] {
                Activation::Full(a) => k::maxpool2d_relu_backward(ctx, &dz, &dp, a, ps)?,
                Activation::Codes(c) => k::maxpool2d_relu_backward_argmax(ctx, &dz, &dp, c, ps)?,
            });
            // Through the normalisation: dz becomes the gradient at the conv's output.
            let dz = match (&fwd.norm[l], self.arch.norm(l, n), self.layout.norm(l)) {
                (Some((z, stats)), Some(ns), Some(t)) => {
                    let dn = ctx.tensor(s.out_len(), &format!("d bn{} in", l + 1))?;
                    d.push(k::batchnorm_backward(
                        ctx,
                        &dn,
                        &tensor_view(&self.grads, t.gamma),
                        &tensor_view(&self.grads, t.beta),
                        &dz,
                        z,
                        stats,
                        &tensor_view(&self.params, t.gamma),
                        ns,
                    )?);
                    dn
                }
                _ => dz,
            };
            let inp = if l == 0 { &fwd.images } else { &fwd.p[l - 1] };
            let (w, b) = self.layout.conv(l);
            d.extend(k::conv2d_backward_params(
                ctx,
                &tensor_view(&self.grads, w),
                &tensor_view(&self.grads, b),
                &dz,
                inp,
                &partial,
                s,
            )?);
            if l > 0 {
                dp = ctx.tensor(s.in_len(), &format!("d pool{} out", l))?;
                d.extend(k::conv2d_backward_input(
                    ctx,
                    &dp,
                    &dz,
                    &tensor_view(&self.params, w),
                    s,
                )?);
            }
        }
        Ok(d)
    }

    /// Builds the optimizer dispatch on first use and writes this step's hyper-parameters.
    fn prepare_update(&mut self, step: &StepParams) -> Result<()> {
        let ctx = &*self.ctx;
        // The trained range only: the running statistics after it are not the optimizer's.
        let n = self.layout.trainable;
        let view = |t: &GpuTensor| t.slice(0, n);
        match step {
            StepParams::Adam(h) => {
                if self.adam.is_none() {
                    self.adam = Some(k::adam_update(
                        ctx,
                        &view(&self.params),
                        &view(&self.m),
                        &view(&self.v),
                        &view(&self.grads),
                        h,
                    )?);
                }
                self.adam
                    .as_ref()
                    .unwrap()
                    .set_uniforms(&ctx.queue, &k::adam_uniform(n, h))?;
                Ok(())
            }
            StepParams::Sgd(h) => {
                if self.sgd.is_none() {
                    self.sgd = Some(k::sgd_momentum_update(
                        ctx,
                        &view(&self.params),
                        &view(&self.m),
                        &view(&self.grads),
                        h,
                    )?);
                }
                self.sgd
                    .as_ref()
                    .unwrap()
                    .set_uniforms(&ctx.queue, &k::sgd_uniform(n, h))?;
                Ok(())
            }
        }
    }
}

impl Engine for GpuEngine {
    fn describe(&self) -> String {
        format!("gpu: {}", self.ctx.adapter.summary())
    }

    fn arch(&self) -> &Arch {
        &self.arch
    }

    fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        self.ctx.read(&self.params)
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.layout.total {
            return Err(Error::Input(format!(
                "{} parameters given, the architecture has {}",
                params.len(),
                self.layout.total
            )));
        }
        self.ctx.upload(&self.params, params);
        self.folded = None;
        let zeros = vec![0.0f32; self.layout.total];
        self.ctx.upload(&self.m, &zeros);
        self.ctx.upload(&self.v, &zeros);
        Ok(())
    }

    fn optim_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.ctx.read(&self.m)?, self.ctx.read(&self.v)?))
    }

    fn restore(&mut self, params: &[f32], m: &[f32], v: &[f32]) -> Result<()> {
        self.set_params(params)?;
        super::check_state_len(self.layout.total, m, v)?;
        self.ctx.upload(&self.m, m);
        self.ctx.upload(&self.v, v);
        Ok(())
    }

    fn gradients(&mut self) -> Result<Vec<f32>> {
        self.ctx.read(&self.grads)
    }

    fn embed(&mut self, images: &[f32]) -> Result<Vec<f32>> {
        let il = self.arch.image_len();
        if !images.len().is_multiple_of(il) {
            return Err(Error::Input(format!(
                "{} pixels is not a whole number of images",
                images.len()
            )));
        }
        if self.arch.norm != Norm::None {
            if self.folded.is_none() {
                let params = self.params()?;
                let (arch, params) = crate::fold::folded(&self.arch, &params);
                self.folded = Some(Box::new(GpuEngine::new(self.ctx.clone(), &arch, &params)?));
            }
            return self.folded.as_mut().unwrap().embed(images);
        }
        let e = self.arch.embed_dim;
        let mut out = Vec::with_capacity(images.len() / il * e);
        for chunk in images.chunks(INFER_BATCH * il) {
            let n = chunk.len() / il;
            // Full chunks share one plan; a remainder gets a plan of its own size (kept,
            // so repeated single-image calls allocate nothing).
            if !self.infer.iter().any(|f| f.n == n) {
                let f = build_forward(&self.ctx, &self.arch, &self.layout, &self.params, n, false)?;
                self.infer.push(f);
            }
            let ctx = &*self.ctx;
            let fwd = self.infer.iter_mut().find(|f| f.n == n).unwrap();
            ctx.upload(&fwd.images, chunk);
            // The forward pass and the copy of its embeddings in one submission and one wait;
            // the next call's commands are encoded while the GPU runs this one.
            let cmd = fwd.next.take().unwrap_or_else(|| encode_forward(ctx, fwd));
            ctx.queue.submit([cmd]);
            fwd.next = Some(encode_forward(ctx, fwd));
            let emb: Vec<f32> = ctx.map_read(&fwd.readback)?;
            out.extend_from_slice(&emb);
        }
        Ok(out)
    }

    fn distances(&mut self, x: &[f32], y: &[f32], d: usize) -> Result<Vec<f32>> {
        let (n, m) = (x.len() / d, y.len() / d);
        // Tiles of rows small enough that every buffer fits one binding on this adapter.
        let max_floats = (self.ctx.max_binding() / 4) as usize;
        let rows = (max_floats / d)
            .min((max_floats as f64).sqrt() as usize)
            .clamp(1, 4096);
        let mut out = vec![0.0; n * m];
        for i0 in (0..n).step_by(rows) {
            let ni = rows.min(n - i0);
            let xt = self
                .ctx
                .tensor_from(&x[i0 * d..(i0 + ni) * d], "distance rows")?;
            for j0 in (0..m).step_by(rows) {
                let mj = rows.min(m - j0);
                let yt = self
                    .ctx
                    .tensor_from(&y[j0 * d..(j0 + mj) * d], "distance columns")?;
                let ot = self.ctx.tensor(ni * mj, "distance tile")?;
                let k = k::pairwise_distance(&self.ctx, &ot, &xt, &yt, ni, mj, d)?;
                self.ctx.run(&[&k])?;
                let tile: Vec<f32> = self.ctx.read(&ot)?;
                for (r, row) in tile.chunks(mj).enumerate() {
                    out[(i0 + r) * m + j0..][..mj].copy_from_slice(row);
                }
            }
        }
        Ok(out)
    }

    fn submit_step(&mut self, batch: &Batch, update: Option<StepParams>) -> Result<()> {
        self.submit(batch, update, false).map(|_| ())
    }

    fn finish_step(&mut self) -> Result<StepStats> {
        let (slot, index) = self
            .in_flight
            .pop_front()
            .ok_or_else(|| Error::Gpu("no training step to finish".into()))?;
        let plan = self.train.as_ref().expect("a step in flight has its plan");
        let raw: Vec<f32> = self.ctx.map_read_after(&plan.staging[slot], Some(index))?;
        Ok(StepStats::from_raw(&raw))
    }

    fn train_step(&mut self, batch: &Batch, update: Option<StepParams>) -> Result<StepStats> {
        if !self.in_flight.is_empty() {
            return Err(Error::Gpu(
                "train_step with submitted steps unfinished: finish them first".into(),
            ));
        }
        self.submit_step(batch, update)?;
        self.finish_step()
    }

    fn profile_step(
        &mut self,
        batch: &Batch,
        update: Option<StepParams>,
    ) -> Result<Option<Vec<(String, f64)>>> {
        if !self.ctx.can_time_dispatches() {
            return Ok(None);
        }
        if !self.in_flight.is_empty() {
            return Err(Error::Gpu(
                "profile_step with submitted steps unfinished: finish them first".into(),
            ));
        }
        let (timer, names) = self
            .submit(batch, update, true)?
            .expect("a timed submission");
        self.finish_step()?;
        let ms = timer.read(&self.ctx)?;
        Ok(Some(names.iter().map(|n| n.to_string()).zip(ms).collect()))
    }
}
