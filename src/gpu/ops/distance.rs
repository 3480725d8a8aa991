//! The metric head: pairwise_distance, triplet_mine, the batch-hard triplet loss
//! (triplet_loss_forward, _reduce, _backward), the Siamese head (siamese_forward, _backward,
//! reduced by triplet_loss_reduce) and the batch-all triplet loss in its pairwise form
//! (triplet_all_forward, _reduce, _backward). No variants: these are small next to the convs.

use super::{u, Count};
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::{Dispatch, GpuTensor};
use crate::gpu::uniform::uniform;
use crate::shapes::MineMode;
use crate::Result;

uniform! {
    /// pairwise_distance: `n` x `m` distances of `d`-vectors.
    pub struct PairwiseParams { n: u32, m: u32, d: u32 }
}
uniform! {
    /// triplet_mine: `n` anchors; `mode` a MineMode code.
    pub struct MineParams { n: u32, mode: u32 }
}
uniform! {
    /// triplet_loss_forward: `t` triplets over an `n` x `n` distance matrix.
    pub struct TripletLossParams { t: u32, n: u32, margin: f32 }
}
uniform! {
    /// triplet_loss_reduce: `t` triplets.
    pub struct TripletCount { t: u32 }
}
uniform! {
    /// triplet_loss_backward: `n` embeddings of `d`, `t` triplets.
    pub struct TripletGradParams { n: u32, d: u32, t: u32, margin: f32 }
}
uniform! {
    /// siamese_forward: `t` pairs of `d`-embeddings.
    pub struct SiameseParams { t: u32, d: u32 }
}
uniform! {
    /// siamese_backward: `n` embeddings of `d`, `t` pairs.
    pub struct SiameseGradParams { n: u32, d: u32, t: u32 }
}
uniform! {
    /// triplet_all_forward: every triplet of `n` embeddings.
    pub struct BatchAllParams { n: u32, margin: f32 }
}
uniform! {
    /// triplet_all_backward: `n` embeddings of `d`.
    pub struct BatchAllGradParams { n: u32, d: u32 }
}

/// out `[N, M]` squared distances between rows of x `[N, D]` and y `[M, D]`.
pub fn pairwise_distance(
    ctx: &GpuContext,
    out: &GpuTensor,
    x: &GpuTensor,
    y: &GpuTensor,
    n: usize,
    m: usize,
    d: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "pairwise_distance",
        &PairwiseParams {
            n: u(n),
            m: u(m),
            d: u(d),
        },
        &[out, x, y],
        n * m,
    )
}

/// triplets `[N, 3]` (u32) mined from dist `[N, N]` and labels `[N]` (u32).
pub fn triplet_mine(
    ctx: &GpuContext,
    triplets: &GpuTensor,
    dist: &GpuTensor,
    labels: &GpuTensor,
    n: usize,
    mode: MineMode,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_mine",
        &MineParams {
            n: u(n),
            mode: mode.code(),
        },
        &[triplets, dist, labels],
        n,
    )
}

pub fn triplet_loss_forward(
    ctx: &GpuContext,
    losses: &GpuTensor,
    dist: &GpuTensor,
    triplets: &GpuTensor,
    t: usize,
    n: usize,
    margin: f32,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_loss_forward",
        &TripletLossParams {
            t: u(t),
            n: u(n),
            margin,
        },
        &[losses, dist, triplets],
        t,
    )
}

/// stats `[4]` from losses `[T]`: one workgroup.
pub fn triplet_loss_reduce(
    ctx: &GpuContext,
    stats: &GpuTensor,
    losses: &GpuTensor,
    triplets: &GpuTensor,
    t: usize,
) -> Result<Dispatch> {
    ctx.dispatch_grid(
        "triplet_loss_reduce",
        &TripletCount { t: u(t) },
        &[stats, losses, triplets],
        (1, 1),
    )
}

#[allow(clippy::too_many_arguments)]
pub fn triplet_loss_backward(
    ctx: &GpuContext,
    dx: &GpuTensor,
    x: &GpuTensor,
    dist: &GpuTensor,
    triplets: &GpuTensor,
    n: usize,
    d: usize,
    t: usize,
    margin: f32,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_loss_backward",
        &TripletGradParams {
            n: u(n),
            d: u(d),
            t: u(t),
            margin,
        },
        &[dx, x, dist, triplets],
        n * d,
    )
}

/// losses `[T]` and dlogit `[T]` of the Siamese head on pairs `[T, 3]` of x `[N, D]`.
#[allow(clippy::too_many_arguments)]
pub fn siamese_forward(
    ctx: &GpuContext,
    losses: &GpuTensor,
    dlogit: &GpuTensor,
    x: &GpuTensor,
    pairs: &GpuTensor,
    alpha: &GpuTensor,
    beta: &GpuTensor,
    t: usize,
    d: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "siamese_forward",
        &SiameseParams { t: u(t), d: u(d) },
        &[losses, dlogit, x, pairs, alpha, beta],
        t,
    )
}

/// dx `[N, D]`, dalpha `[D]`, dbeta `[1]` of the mean Siamese loss (count in stats `[4]`).
#[allow(clippy::too_many_arguments)]
pub fn siamese_backward(
    ctx: &GpuContext,
    dx: &GpuTensor,
    dalpha: &GpuTensor,
    dbeta: &GpuTensor,
    x: &GpuTensor,
    pairs: &GpuTensor,
    dlogit: &GpuTensor,
    alpha: &GpuTensor,
    stats: &GpuTensor,
    n: usize,
    d: usize,
    t: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "siamese_backward",
        &SiameseGradParams {
            n: u(n),
            d: u(d),
            t: u(t),
        },
        &[dx, dalpha, dbeta, x, pairs, dlogit, alpha, stats],
        n * d + d + 1,
    )
}

/// Batch-all pass 1: weights, pair_loss, pair_valid `[N, N]` from dist `[N, N]`, labels `[N]`.
#[allow(clippy::too_many_arguments)]
pub fn triplet_all_forward(
    ctx: &GpuContext,
    weights: &GpuTensor,
    pair_loss: &GpuTensor,
    pair_valid: &GpuTensor,
    dist: &GpuTensor,
    labels: &GpuTensor,
    n: usize,
    margin: f32,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_all_forward",
        &BatchAllParams { n: u(n), margin },
        &[weights, pair_loss, pair_valid, dist, labels],
        n * n,
    )
}

/// Batch-all pass 2: stats `[4]` (one workgroup).
pub fn triplet_all_reduce(
    ctx: &GpuContext,
    stats: &GpuTensor,
    weights: &GpuTensor,
    pair_loss: &GpuTensor,
    pair_valid: &GpuTensor,
    n: usize,
) -> Result<Dispatch> {
    ctx.dispatch_grid(
        "triplet_all_reduce",
        &Count { n: u(n) },
        &[stats, weights, pair_loss, pair_valid],
        (1, 1),
    )
}

/// Batch-all pass 3: dx `[N, D]`.
pub fn triplet_all_backward(
    ctx: &GpuContext,
    dx: &GpuTensor,
    x: &GpuTensor,
    weights: &GpuTensor,
    stats: &GpuTensor,
    n: usize,
    d: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        "triplet_all_backward",
        &BatchAllGradParams { n: u(n), d: u(d) },
        &[dx, x, weights, stats],
        n * d,
    )
}
