//! Distances and losses (ops/distance): pairwise_distance (GPU and the fast CPU path), triplet
//! mining, the triplet loss on mined or given triplets, the batch-all loss and the Siamese
//! pair loss, forward, reduce and backward.

use glassnet::cpu::{fast, reference as r};
use glassnet::gpu::ops as k;
use glassnet::gpu::GpuContext;
use glassnet::shapes::{MineMode, INVALID};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::common::{assert_close, gpu, random, rng};
use crate::{assert_written, ATOL, RTOL};

#[test]
fn pairwise_distance_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(7);
    for (n, m, d) in [(7, 13, 5), (12, 12, 64), (1, 65, 3), (96, 33, 17)] {
        pairwise_distance_on(&ctx, n, m, d, &mut g);
    }
    // Self-distances are exactly zero (differences, not the expanded form).
    let x = random(&mut g, 5 * 8);
    let mut dd = vec![0.0; 25];
    r::pairwise_distance(&mut dd, &x, &x, 5, 5, 8);
    assert!((0..5).all(|i| dd[i * 5 + i] == 0.0));
}

pub(crate) fn pairwise_distance_on(
    ctx: &GpuContext,
    n: usize,
    m: usize,
    d: usize,
    g: &mut ChaCha8Rng,
) {
    let (x, y) = (random(g, n * d), random(g, m * d));
    let mut want = vec![0.0; n * m];
    r::pairwise_distance(&mut want, &x, &y, n, m, d);
    let (tx, ty, out) = (
        ctx.tensor_from(&x, "x").unwrap(),
        ctx.tensor_from(&y, "y").unwrap(),
        ctx.tensor(n * m, "o").unwrap(),
    );
    ctx.run(&[&k::pairwise_distance(ctx, &out, &tx, &ty, n, m, d).unwrap()])
        .unwrap();
    assert_close(
        &format!("pairwise_distance {n}x{m}x{d}"),
        &ctx.read::<f32>(&out).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
}

/// Random embeddings, labels with `classes` classes, and their distance matrix.
fn triplet_case(
    g: &mut rand_chacha::ChaCha8Rng,
    n: usize,
    d: usize,
    classes: u32,
) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let x = random(g, n * d);
    let labels: Vec<u32> = (0..n).map(|_| g.random_range(0..classes)).collect();
    let mut dist = vec![0.0; n * n];
    r::pairwise_distance(&mut dist, &x, &x, n, n, d);
    (x, labels, dist)
}

#[test]
fn triplet_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(8);
    for (n, d, classes, margin) in [
        (7, 5, 3, 0.5f32),
        (12, 64, 4, 1.0),
        (65, 3, 5, 0.2),
        (5, 4, 1, 1.0),
    ] {
        triplet_on(&ctx, (n, d, classes), margin, &mut g);
    }
}

pub(crate) fn triplet_on(
    ctx: &GpuContext,
    (n, d, classes): (usize, usize, u32),
    margin: f32,
    g: &mut ChaCha8Rng,
) {
    let (x, labels, dist) = triplet_case(g, n, d, classes);
    let (tx, tl, tdist) = (
        ctx.tensor_from(&x, "x").unwrap(),
        ctx.tensor_from(&labels, "l").unwrap(),
        ctx.tensor_from(&dist, "dist").unwrap(),
    );
    for mode in [MineMode::BatchHard, MineMode::SemiHard] {
        let tag = format!("n {n} d {d} classes {classes} {mode:?}");
        let mut trip = vec![0u32; 3 * n];
        r::triplet_mine(&mut trip, &dist, &labels, n, mode);
        if classes == 1 {
            assert!(
                trip.iter().all(|&v| v == INVALID),
                "one class: no negatives, no valid triplet"
            );
        }
        let tt = ctx.tensor(3 * n, "trip").unwrap();
        ctx.run(&[&k::triplet_mine(ctx, &tt, &tdist, &tl, n, mode).unwrap()])
            .unwrap();
        assert_eq!(ctx.read::<u32>(&tt).unwrap(), trip, "triplet_mine {tag}");

        let mut losses = vec![0.0; n];
        r::triplet_loss_forward(&mut losses, &dist, &trip, n, margin);
        let tloss = ctx.tensor(n, "loss").unwrap();
        ctx.upload(&tloss, &vec![7.0f32; n]);
        ctx.run(&[&k::triplet_loss_forward(ctx, &tloss, &tdist, &tt, n, n, margin).unwrap()])
            .unwrap();
        let got: Vec<f32> = ctx.read(&tloss).unwrap();
        let mut stats = [0.0f32; 4];
        r::triplet_loss_reduce(&mut stats, &losses, &trip);
        let tstats = ctx.tensor(4, "stats").unwrap();
        ctx.upload(&tstats, &[7.0f32; 4]);
        ctx.run(&[&k::triplet_loss_reduce(ctx, &tstats, &tloss, &tt, n).unwrap()])
            .unwrap();
        let gstats: Vec<f32> = ctx.read(&tstats).unwrap();
        let mut dx = vec![0.0; n * d];
        r::triplet_loss_backward(&mut dx, &x, &dist, &trip, n, d, margin);
        let tdx = ctx.tensor(n * d, "dx").unwrap();
        ctx.upload(&tdx, &vec![7.0f32; n * d]);
        ctx.run(&[
            &k::triplet_loss_backward(ctx, &tdx, &tx, &tdist, &tt, n, d, n, margin).unwrap(),
        ])
        .unwrap();
        let gdx: Vec<f32> = ctx.read(&tdx).unwrap();
        if classes == 1 {
            assert_eq!(stats, [0.0; 4]);
            assert_eq!(gstats, [0.0; 4]);
            assert!(gdx.iter().all(|&v| v == 0.0) && dx.iter().all(|&v| v == 0.0));
            continue;
        }
        assert_written(
            &format!("triplet_loss_forward {tag}"),
            &got,
            &losses,
            ATOL,
            RTOL,
        );
        assert_written(
            &format!("triplet_loss_reduce {tag}"),
            &gstats,
            &stats,
            ATOL,
            RTOL,
        );
        assert_written(
            &format!("triplet_loss_backward {tag}"),
            &gdx,
            &dx,
            ATOL,
            RTOL,
        );
    }
}

#[test]
fn triplet_loss_on_given_triplets_with_invalid_slots() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(9);
    let (n, d, margin) = (9, 6, 2.0f32);
    let (x, _labels, dist) = triplet_case(&mut g, n, d, 3);
    let trip: Vec<u32> = vec![
        0, 1, 2, 3, 4, 5, INVALID, INVALID, INVALID, 8, 7, 6, 2, 2, 0, 1, 0, 3, 6, 5, 4,
    ];
    let t = trip.len() / 3;
    let mut losses = vec![0.0; t];
    r::triplet_loss_forward(&mut losses, &dist, &trip, n, margin);
    let mut stats = [0.0; 4];
    r::triplet_loss_reduce(&mut stats, &losses, &trip);
    assert_eq!(stats[1], 6.0);
    let mut dx = vec![0.0; n * d];
    r::triplet_loss_backward(&mut dx, &x, &dist, &trip, n, d, margin);
    let (tx, tdist, tt) = (
        ctx.tensor_from(&x, "x").unwrap(),
        ctx.tensor_from(&dist, "dist").unwrap(),
        ctx.tensor_from(&trip, "t").unwrap(),
    );
    let (tl, ts, tdx) = (
        ctx.tensor(t, "l").unwrap(),
        ctx.tensor(4, "s").unwrap(),
        ctx.tensor(n * d, "dx").unwrap(),
    );
    ctx.run(&[
        &k::triplet_loss_forward(&ctx, &tl, &tdist, &tt, t, n, margin).unwrap(),
        &k::triplet_loss_reduce(&ctx, &ts, &tl, &tt, t).unwrap(),
        &k::triplet_loss_backward(&ctx, &tdx, &tx, &tdist, &tt, n, d, t, margin).unwrap(),
    ])
    .unwrap();
    assert_close(
        "given triplet losses",
        &ctx.read::<f32>(&tl).unwrap(),
        &losses,
        ATOL,
        RTOL,
    );
    assert_close(
        "given triplet stats",
        &ctx.read::<f32>(&ts).unwrap(),
        &stats,
        ATOL,
        RTOL,
    );
    assert_close(
        "given triplet dx",
        &ctx.read::<f32>(&tdx).unwrap(),
        &dx,
        ATOL,
        RTOL,
    );
}

#[test]
fn batch_all_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(12);
    for (n, d, classes, margin) in [
        (7, 5, 3, 0.5f32),
        (12, 64, 4, 0.2),
        (65, 3, 5, 1.0),
        (5, 4, 1, 1.0),
    ] {
        batch_all_on(&ctx, (n, d, classes), margin, &mut g);
    }
}

pub(crate) fn batch_all_on(
    ctx: &GpuContext,
    (n, d, classes): (usize, usize, u32),
    margin: f32,
    g: &mut ChaCha8Rng,
) {
    let tag = format!("n {n} d {d} classes {classes}");
    let (x, labels, dist) = triplet_case(g, n, d, classes);
    let (mut w, mut pl, mut pv) = (vec![0.0; n * n], vec![0.0; n * n], vec![0.0; n * n]);
    r::triplet_all_forward(&mut w, &mut pl, &mut pv, &dist, &labels, n, margin);
    let mut stats = [0.0f32; 4];
    r::triplet_all_reduce(&mut stats, &w, &pl, &pv, n);
    let mut dx = vec![0.0; n * d];
    r::triplet_all_backward(&mut dx, &x, &w, &stats, n, d);
    let (tx, tl, tdist) = (
        ctx.tensor_from(&x, "x").unwrap(),
        ctx.tensor_from(&labels, "l").unwrap(),
        ctx.tensor_from(&dist, "dist").unwrap(),
    );
    let (tw, tpl, tpv) = (
        ctx.tensor(n * n, "w").unwrap(),
        ctx.tensor(n * n, "pl").unwrap(),
        ctx.tensor(n * n, "pv").unwrap(),
    );
    let (ts, tdx) = (
        ctx.tensor(4, "s").unwrap(),
        ctx.tensor(n * d, "dx").unwrap(),
    );
    ctx.upload(&tdx, &vec![7.0f32; n * d]);
    ctx.upload(&tpl, &vec![7.0f32; n * n]);
    ctx.upload(&ts, &[7.0f32; 4]);
    ctx.run(&[
        &k::triplet_all_forward(ctx, &tw, &tpl, &tpv, &tdist, &tl, n, margin).unwrap(),
        &k::triplet_all_reduce(ctx, &ts, &tw, &tpl, &tpv, n).unwrap(),
        &k::triplet_all_backward(ctx, &tdx, &tx, &tw, &ts, n, d).unwrap(),
    ])
    .unwrap();
    let (gw, gs, gdx): (Vec<f32>, Vec<f32>, Vec<f32>) = (
        ctx.read(&tw).unwrap(),
        ctx.read(&ts).unwrap(),
        ctx.read(&tdx).unwrap(),
    );
    if classes == 1 {
        assert_eq!(stats, [0.0; 4], "one class: no triplet");
        assert_eq!(gs, [0.0; 4]);
        assert!(gdx.iter().all(|&v| v == 0.0) && gw.iter().all(|&v| v == 0.0));
        return;
    }
    assert_eq!(gw, w, "triplet_all_forward weights (integer counts) {tag}");
    assert_written(
        &format!("triplet_all_forward pair_loss {tag}"),
        &ctx.read::<f32>(&tpl).unwrap(),
        &pl,
        ATOL,
        RTOL,
    );
    assert_eq!(
        ctx.read::<f32>(&tpv).unwrap(),
        pv,
        "triplet_all_forward pair_valid {tag}"
    );
    assert_written(
        &format!("triplet_all_reduce {tag}"),
        &gs,
        &stats,
        ATOL,
        RTOL,
    );
    assert_written(
        &format!("triplet_all_backward {tag}"),
        &gdx,
        &dx,
        ATOL,
        RTOL,
    );
}

#[test]
fn siamese_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(21);
    for (n, d, t) in [(7, 5, 9), (12, 64, 24), (65, 3, 130), (3, 17, 2)] {
        siamese_on(&ctx, n, d, t, &mut g);
    }
}

pub(crate) fn siamese_on(ctx: &GpuContext, n: usize, d: usize, t: usize, g: &mut ChaCha8Rng) {
    let x = random(g, n * d);
    let alpha = random(g, d);
    let beta = random(g, 1);
    let mut pairs: Vec<u32> = (0..t)
        .flat_map(|_| {
            [
                g.random_range(0..n as u32),
                g.random_range(0..n as u32),
                g.random_range(0..2u32),
            ]
        })
        .collect();
    // An unused slot, which must count for nothing.
    pairs[3..6].copy_from_slice(&[INVALID; 3]);
    let tag = format!("n {n} d {d} pairs {t}");
    let (mut losses, mut dlogit) = (vec![0.0; t], vec![0.0; t]);
    r::siamese_forward(&mut losses, &mut dlogit, &x, &pairs, &alpha, &beta, d);
    let mut stats = [0.0f32; 4];
    r::triplet_loss_reduce(&mut stats, &losses, &pairs);
    assert_eq!(stats[1], (t - 1) as f32, "{tag}: valid pairs");
    let (mut dx, mut dalpha, mut dbeta) = (vec![0.0; n * d], vec![0.0; d], [0.0f32]);
    r::siamese_backward(
        &mut dx,
        &mut dalpha,
        &mut dbeta,
        &x,
        &pairs,
        &dlogit,
        &alpha,
        &stats,
        n,
        d,
    );
    let tx = ctx.tensor_from(&x, "x").unwrap();
    let tp = ctx.tensor_from(&pairs, "pairs").unwrap();
    let (ta, tb) = (
        ctx.tensor_from(&alpha, "alpha").unwrap(),
        ctx.tensor_from(&beta, "beta").unwrap(),
    );
    let (tl, tg, ts) = (
        ctx.tensor(t, "losses").unwrap(),
        ctx.tensor(t, "dlogit").unwrap(),
        ctx.tensor(4, "stats").unwrap(),
    );
    let (tdx, tda, tdb) = (
        ctx.tensor(n * d, "dx").unwrap(),
        ctx.tensor(d, "dalpha").unwrap(),
        ctx.tensor(1, "dbeta").unwrap(),
    );
    // Poisoned outputs: a kernel that skips one cannot pass on a zero (n = 1: no difference).
    for (buf, len) in [
        (&tl, t),
        (&tg, t),
        (&ts, 4),
        (&tdx, n * d),
        (&tda, d),
        (&tdb, 1),
    ] {
        ctx.upload(buf, &vec![7.0f32; len]);
    }
    ctx.run(&[
        &k::siamese_forward(ctx, &tl, &tg, &tx, &tp, &ta, &tb, t, d).unwrap(),
        &k::triplet_loss_reduce(ctx, &ts, &tl, &tp, t).unwrap(),
        &k::siamese_backward(ctx, &tdx, &tda, &tdb, &tx, &tp, &tg, &ta, &ts, n, d, t).unwrap(),
    ])
    .unwrap();
    let read = |t: &glassnet::gpu::GpuTensor| ctx.read::<f32>(t).unwrap();
    assert_written(
        &format!("siamese_forward losses {tag}"),
        &read(&tl),
        &losses,
        ATOL,
        RTOL,
    );
    assert_written(
        &format!("siamese_forward dlogit {tag}"),
        &read(&tg),
        &dlogit,
        ATOL,
        RTOL,
    );
    assert_written(
        &format!("siamese stats {tag}"),
        &read(&ts),
        &stats,
        ATOL,
        RTOL,
    );
    assert_written(
        &format!("siamese_backward dx {tag}"),
        &read(&tdx),
        &dx,
        ATOL,
        RTOL,
    );
    assert_written(
        &format!("siamese_backward dalpha {tag}"),
        &read(&tda),
        &dalpha,
        ATOL,
        RTOL,
    );
    assert_written(
        &format!("siamese_backward dbeta {tag}"),
        &read(&tdb),
        &dbeta,
        ATOL,
        RTOL,
    );
}

#[test]
fn fast_pairwise_distance_matches_reference() {
    let mut g = rng(22);
    for (n, m, d) in [(7, 13, 5), (130, 65, 300), (1, 1, 12544)] {
        let (x, y) = (random(&mut g, n * d), random(&mut g, m * d));
        let (mut want, mut got) = (vec![0.0; n * m], vec![0.0; n * m]);
        r::pairwise_distance(&mut want, &x, &y, n, m, d);
        fast::pairwise_distance(&mut got, &x, &y, n, m, d);
        // The expanded form cancels: absolute error scales with the norms (d / 3 each here).
        assert_close(
            &format!("fast pairwise_distance {n}x{m}x{d}"),
            &got,
            &want,
            1e-5 * d as f32,
            1e-4,
        );
    }
}
