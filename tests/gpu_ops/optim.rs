//! Optimiser steps (ops/optim): adam_update, sgd_momentum_update.

use glassnet::cpu::reference as r;
use glassnet::gpu::ops as k;
use glassnet::gpu::GpuContext;
use glassnet::optim::{AdamParams, SgdParams};
use rand_chacha::ChaCha8Rng;

use crate::common::{assert_close, gpu, random, rng};
use crate::{ATOL, RTOL};

#[test]
fn optimizer_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    optimizer_on(&ctx, 1037, &mut rng(10));
}

pub(crate) fn optimizer_on(ctx: &GpuContext, n: usize, g: &mut ChaCha8Rng) {
    let (p0, grads, m0) = (random(g, n), random(g, n), random(g, n));
    let v0: Vec<f32> = random(g, n).iter().map(|v| v.abs()).collect();
    let h = AdamParams {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weight_decay: 0.01,
        bc1: 1.0 - 0.9f32.powi(3),
        bc2: 1.0 - 0.99f32.powi(3),
        _pad: 0.0,
    };
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    r::adam_update(&mut p, &grads, &mut m, &mut v, &h);
    let (tp, tm, tv, tg) = (
        ctx.tensor_from(&p0, "p").unwrap(),
        ctx.tensor_from(&m0, "m").unwrap(),
        ctx.tensor_from(&v0, "v").unwrap(),
        ctx.tensor_from(&grads, "g").unwrap(),
    );
    ctx.run(&[&k::adam_update(ctx, &tp, &tm, &tv, &tg, &h).unwrap()])
        .unwrap();
    assert_close(
        "adam params",
        &ctx.read::<f32>(&tp).unwrap(),
        &p,
        ATOL,
        RTOL,
    );
    assert_close("adam m", &ctx.read::<f32>(&tm).unwrap(), &m, ATOL, RTOL);
    assert_close("adam v", &ctx.read::<f32>(&tv).unwrap(), &v, ATOL, RTOL);

    let h = SgdParams {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-3,
        _pad: 0.0,
    };
    let (mut p, mut vel) = (p0.clone(), m0.clone());
    r::sgd_momentum_update(&mut p, &grads, &mut vel, &h);
    let (tp, tvel) = (
        ctx.tensor_from(&p0, "p").unwrap(),
        ctx.tensor_from(&m0, "vel").unwrap(),
    );
    ctx.run(&[&k::sgd_momentum_update(ctx, &tp, &tvel, &tg, &h).unwrap()])
        .unwrap();
    assert_close("sgd params", &ctx.read::<f32>(&tp).unwrap(), &p, ATOL, RTOL);
    assert_close(
        "sgd velocity",
        &ctx.read::<f32>(&tvel).unwrap(),
        &vel,
        ATOL,
        RTOL,
    );
}
