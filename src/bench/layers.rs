//! Kernel cases of the layers beyond the paper's network: global average + max pooling and
//! batch normalisation, each validated against the CPU reference before it is timed.

use rand_chacha::ChaCha8Rng;

use super::{check, random, Cases};
use crate::cpu::reference as r;
use crate::gpu::ops as k;
use crate::model::Arch;
use crate::shapes::NormShape;
use crate::Result;

/// Global average + max pooling of the last block's pooled map (the avg-max head's input).
pub(super) fn global_pool_cases(
    c: &mut Cases,
    rng: &mut ChaCha8Rng,
    arch: &Arch,
    batch: usize,
) -> Result<()> {
    let ctx = c.ctx;
    let gs = match arch.global_pool(batch) {
        Some(gs) => gs,
        None => crate::model::Arch {
            pooling: crate::model::Pooling::AvgMax,
            ..arch.clone()
        }
        .global_pool(batch)
        .expect("avg-max pooling has a global pool"),
    };
    let (x, g) = (random(rng, gs.in_len()), random(rng, gs.out_len()));
    let (tx, tg) = (ctx.tensor_from(&x, "x")?, ctx.tensor_from(&g, "g")?);
    let (ty, tdx) = (
        ctx.tensor(gs.out_len(), "y")?,
        ctx.tensor(gs.in_len(), "dx")?,
    );
    let shape = format!("{}x{}x{}x{}", gs.batch, gs.c, gs.h, gs.w);
    let d = k::global_avgmax_pool_forward(ctx, &ty, &tx, gs)?;
    c.one(&d)?;
    let mut want = vec![0.0; gs.out_len()];
    r::global_avgmax_pool_forward(&mut want, &x, gs);
    check("global_avgmax_pool_forward", &ctx.read::<f32>(&ty)?, &want)?;
    let floats = gs.in_len() + gs.out_len();
    c.push(
        "global_avgmax_pool_forward",
        shape.clone(),
        vec![d],
        0.0,
        floats,
    );
    let d = k::global_avgmax_pool_backward(ctx, &tdx, &tg, &tx, gs)?;
    c.one(&d)?;
    let mut want = vec![0.0; gs.in_len()];
    r::global_avgmax_pool_backward(&mut want, &g, &x, gs);
    check(
        "global_avgmax_pool_backward",
        &ctx.read::<f32>(&tdx)?,
        &want,
    )?;
    let floats = 2 * gs.in_len() + gs.out_len();
    c.push("global_avgmax_pool_backward", shape, vec![d], 0.0, floats);
    Ok(())
}

/// Batch normalisation of each conv block's output `[B, Co, Ho, Wo]`: training forward,
/// backward and inference (what an unfolded inference pass runs).
pub(super) fn batchnorm_cases(
    c: &mut Cases,
    rng: &mut ChaCha8Rng,
    arch: &Arch,
    batch: usize,
) -> Result<()> {
    let ctx = c.ctx;
    for l in 0..arch.channels.len() {
        let cs = arch.conv(l, batch);
        let s = NormShape {
            batch,
            c: cs.cout,
            h: cs.ho(),
            w: cs.wo(),
        };
        let shape = format!("{}x{}x{}x{}", s.batch, s.c, s.h, s.w);
        let (x, dy) = (random(rng, s.len()), random(rng, s.len()));
        let gamma: Vec<f32> = random(rng, s.c).iter().map(|v| 1.0 + 0.5 * v).collect();
        let (beta, rmean) = (random(rng, s.c), random(rng, s.c));
        let rvar: Vec<f32> = random(rng, s.c).iter().map(|v| 1.5 + v).collect();
        let (tx, tdy) = (ctx.tensor_from(&x, "x")?, ctx.tensor_from(&dy, "dy")?);
        let (tg, tb) = (
            ctx.tensor_from(&gamma, "gamma")?,
            ctx.tensor_from(&beta, "beta")?,
        );
        let (trm, trv) = (
            ctx.tensor_from(&rmean, "rm")?,
            ctx.tensor_from(&rvar, "rv")?,
        );
        let (ty, tstats) = (ctx.tensor(s.len(), "y")?, ctx.tensor(2 * s.c, "stats")?);
        // Validated with momentum 0 (running statistics kept) so inference below reads the
        // same ones the reference does; timed as training runs it.
        let d = k::batchnorm_forward(ctx, &ty, &tstats, &trm, &trv, &tx, &tg, &tb, 0.0, s)?;
        c.one(&d)?;
        let (mut want, mut stats) = (vec![0.0; s.len()], vec![0.0; 2 * s.c]);
        let (mut rm, mut rv) = (rmean.clone(), rvar.clone());
        r::batchnorm_forward(
            &mut want, &mut stats, &mut rm, &mut rv, &x, &gamma, &beta, 0.0, s,
        );
        check("batchnorm_forward", &ctx.read::<f32>(&ty)?, &want)?;
        let d = k::batchnorm_inference(ctx, &ty, &tx, &tg, &tb, &trm, &trv, s)?;
        c.one(&d)?;
        r::batchnorm_inference(&mut want, &x, &gamma, &beta, &rmean, &rvar, s);
        check("batchnorm_inference", &ctx.read::<f32>(&ty)?, &want)?;
        // Reads inp, writes out: 2 tensors.
        c.push(
            "batchnorm_inference",
            shape.clone(),
            vec![d],
            0.0,
            2 * s.len(),
        );
        let tdx = ctx.tensor(s.len(), "dx")?;
        let mut dx = vec![0.0; s.len()];
        let (mut dg, mut db) = (vec![0.0; s.c], vec![0.0; s.c]);
        r::batchnorm_backward(&mut dx, &mut dg, &mut db, &dy, &x, &stats, &gamma, s);
        let train = k::batchnorm_forward(ctx, &ty, &tstats, &trm, &trv, &tx, &tg, &tb, 0.1, s)?;
        // Reads inp twice for the statistics and once more to write out: 4 tensors.
        c.push(
            "batchnorm_forward",
            shape.clone(),
            vec![train],
            0.0,
            4 * s.len(),
        );
        let (tdg, tdb) = (ctx.tensor(s.c, "dgamma")?, ctx.tensor(s.c, "dbeta")?);
        let d = k::batchnorm_backward(ctx, &tdx, &tdg, &tdb, &tdy, &tx, &tstats, &tg, s)?;
        c.one(&d)?;
        check("batchnorm_backward", &ctx.read::<f32>(&tdx)?, &dx)?;
        // Reads dout and inp twice (sums, then the gradient), writes dinp: 5 tensors.
        c.push("batchnorm_backward", shape, vec![d], 0.0, 5 * s.len());
    }
    Ok(())
}
