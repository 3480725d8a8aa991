//! 2x2 max pooling (ops/pool): forward, backward and the backward with the ReLU folded in.

use glassnet::cpu::{fast, reference as r};
use glassnet::gpu::ops as k;
use glassnet::gpu::GpuContext;
use glassnet::shapes::{GlobalPoolShape, PoolShape};
use rand_chacha::ChaCha8Rng;

use crate::common::{assert_close, gpu, random, rng};

fn pool_shapes() -> Vec<PoolShape> {
    let p = |batch, c, h, w| PoolShape { batch, c, h, w };
    vec![
        p(3, 5, 7, 7),
        p(2, 17, 13, 13),
        p(1, 3, 8, 6),
        p(3, 1, 1, 5),
    ]
}

#[test]
fn maxpool2d_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(3);
    for s in pool_shapes() {
        maxpool2d_on(&ctx, s, &mut g);
    }
}

/// The fast path's pooling (row pairs, parallel over planes) is the reference's exactly,
/// odd sides (the last row or column dropped) and a plane too small to pool included; it
/// writes nothing beyond its output.
#[test]
fn fast_maxpool2d_forward_matches_reference() {
    let mut g = rng(4);
    for s in pool_shapes().into_iter().chain([PoolShape {
        batch: 4,
        c: 70,
        h: 15,
        w: 30,
    }]) {
        let inp = random(&mut g, s.in_len());
        let mut want = vec![0.0; s.out_len()];
        r::maxpool2d_forward(&mut want, &inp, s);
        let mut got = vec![f32::NAN; s.out_len() + 3];
        got[s.out_len()..].fill(5.0);
        fast::maxpool2d_forward(&mut got, &inp, s);
        assert_eq!(&got[..s.out_len()], &want[..], "{s:?}");
        assert_eq!(
            &got[s.out_len()..],
            &[5.0; 3],
            "{s:?}: wrote past its output"
        );
    }
}

/// The fast path's pooling-and-ReLU backward is the reference's maxpool2d_backward then
/// relu_backward exactly: random inputs of both signs (windows whose maximum is negative
/// route nothing), odd sides, a plane too small to pool, and ties (the first maximum wins).
#[test]
fn fast_maxpool2d_relu_backward_matches_reference() {
    let mut g = rng(5);
    let p = |batch, c, h, w| PoolShape { batch, c, h, w };
    for s in pool_shapes()
        .into_iter()
        .chain([p(3, 40, 9, 12), p(2, 3, 4, 1), p(2, 5, 6, 7)])
    {
        let mut inp = random(&mut g, s.in_len());
        // Rounded to a coarse grid, so some windows hold their maximum twice.
        inp.iter_mut().for_each(|v| *v = (*v * 4.0).round() / 4.0);
        let dout = random(&mut g, s.out_len());
        let mut pooled = vec![0.0; s.in_len()];
        r::maxpool2d_backward(&mut pooled, &dout, &inp, s);
        let mut want = vec![0.0; s.in_len()];
        r::relu_backward(&mut want, &pooled, &inp);
        let mut got = vec![f32::NAN; s.in_len()];
        fast::maxpool2d_relu_backward(&mut got, &dout, &inp, s);
        assert_eq!(got, want, "{s:?}");
        let routed = want.iter().filter(|&&v| v != 0.0).count();
        assert!(
            s.out_len() == 0 || (routed > 0 && routed < s.out_len()),
            "{s:?}: {routed}"
        );
    }
}

pub(crate) fn maxpool2d_on(ctx: &GpuContext, s: PoolShape, g: &mut ChaCha8Rng) {
    let (inp, dout) = (random(g, s.in_len()), random(g, s.out_len().max(1)));
    let ti = ctx.tensor_from(&inp, "i").unwrap();
    if s.out_len() > 0 {
        let mut want = vec![0.0; s.out_len()];
        r::maxpool2d_forward(&mut want, &inp, s);
        let out = ctx.tensor(s.out_len(), "o").unwrap();
        ctx.run(&[&k::maxpool2d_forward(ctx, &out, &ti, s).unwrap()])
            .unwrap();
        assert_close(
            &format!("maxpool2d_forward {s:?}"),
            &ctx.read::<f32>(&out).unwrap(),
            &want,
            0.0,
            0.0,
        );
    }
    let mut want = vec![0.0; s.in_len()];
    r::maxpool2d_backward(&mut want, &dout, &inp, s);
    let (td, din) = (
        ctx.tensor_from(&dout, "d").unwrap(),
        ctx.tensor(s.in_len(), "di").unwrap(),
    );
    // Poison the output so a kernel that skips elements is caught.
    ctx.upload(&din, &vec![7.0f32; s.in_len()]);
    ctx.run(&[&k::maxpool2d_backward(ctx, &din, &td, &ti, s).unwrap()])
        .unwrap();
    let got: Vec<f32> = ctx.read(&din).unwrap();
    if s.out_len() == 0 {
        assert!(
            got.iter().all(|&v| v == 0.0),
            "no window: all-zero gradient"
        );
    } else {
        assert_close(&format!("maxpool2d_backward {s:?}"), &got, &want, 0.0, 0.0);
    }

    // Fused with the ReLU before it: pooling a ReLU output (about half zeros, so some
    // windows are all zero), against the two reference passes in a row.
    let mut a = vec![0.0; s.in_len()];
    r::relu_forward(&mut a, &inp);
    let mut da = vec![0.0; s.in_len()];
    r::maxpool2d_backward(&mut da, &dout, &a, s);
    let mut want = vec![0.0; s.in_len()];
    r::relu_backward(&mut want, &da, &a);
    let ta = ctx.tensor_from(&a, "a").unwrap();
    ctx.upload(&din, &vec![7.0f32; s.in_len()]);
    ctx.run(&[&k::maxpool2d_relu_backward(ctx, &din, &td, &ta, s).unwrap()])
        .unwrap();
    let got: Vec<f32> = ctx.read(&din).unwrap();
    if s.out_len() == 0 {
        assert!(
            got.iter().all(|&v| v == 0.0),
            "no window: all-zero gradient"
        );
    } else {
        let name = format!("maxpool2d_relu_backward {s:?}");
        assert_close(&name, &got, &want, 0.0, 0.0);
    }
}

#[test]
fn maxpool_ties_route_to_the_first_maximum() {
    let Some(ctx) = gpu() else { return };
    let s = PoolShape {
        batch: 1,
        c: 1,
        h: 2,
        w: 2,
    };
    let inp = [0.5f32, 0.5, 0.5, 0.5];
    let mut want = vec![0.0; 4];
    r::maxpool2d_backward(&mut want, &[3.0], &inp, s);
    assert_eq!(want, [3.0, 0.0, 0.0, 0.0]);
    let (ti, td, din) = (
        ctx.tensor_from(&inp, "i").unwrap(),
        ctx.tensor_from(&[3.0f32], "d").unwrap(),
        ctx.tensor(4, "di").unwrap(),
    );
    ctx.run(&[&k::maxpool2d_backward(&ctx, &din, &td, &ti, s).unwrap()])
        .unwrap();
    assert_eq!(ctx.read::<f32>(&din).unwrap(), want);
}

#[test]
fn global_avgmax_pool_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(5);
    let p = |batch, c, h, w| GlobalPoolShape { batch, c, h, w };
    // Odd sides, a 1x1 plane, a plane longer than a workgroup, more planes than a workgroup.
    for s in [
        p(3, 5, 7, 7),
        p(2, 3, 1, 1),
        p(1, 2, 13, 11),
        p(5, 29, 3, 2),
    ] {
        let (inp, dout) = (random(&mut g, s.in_len()), random(&mut g, s.out_len()));
        let ti = ctx.tensor_from(&inp, "i").unwrap();
        let mut want = vec![0.0; s.out_len()];
        r::global_avgmax_pool_forward(&mut want, &inp, s);
        let out = ctx.tensor(s.out_len(), "o").unwrap();
        ctx.upload(&out, &vec![7.0f32; s.out_len()]);
        ctx.run(&[&k::global_avgmax_pool_forward(&ctx, &out, &ti, s).unwrap()])
            .unwrap();
        let got: Vec<f32> = ctx.read(&out).unwrap();
        // Sums in the same order: only the division may round differently.
        assert_close(
            &format!("global_avgmax_pool_forward {s:?}"),
            &got,
            &want,
            1e-6,
            1e-6,
        );
        let mut want = vec![0.0; s.in_len()];
        r::global_avgmax_pool_backward(&mut want, &dout, &inp, s);
        let (td, din) = (
            ctx.tensor_from(&dout, "d").unwrap(),
            ctx.tensor(s.in_len(), "di").unwrap(),
        );
        ctx.upload(&din, &vec![7.0f32; s.in_len()]);
        ctx.run(&[&k::global_avgmax_pool_backward(&ctx, &din, &td, &ti, s).unwrap()])
            .unwrap();
        let got: Vec<f32> = ctx.read(&din).unwrap();
        assert_close(
            &format!("global_avgmax_pool_backward {s:?}"),
            &got,
            &want,
            1e-6,
            1e-6,
        );
    }
}

#[test]
fn global_max_ties_route_to_the_first_maximum() {
    let Some(ctx) = gpu() else { return };
    let s = GlobalPoolShape {
        batch: 1,
        c: 1,
        h: 2,
        w: 2,
    };
    let inp = [0.25f32, 0.5, 0.5, 0.5];
    let dout = [4.0f32, 3.0];
    let mut want = vec![0.0; 4];
    r::global_avgmax_pool_backward(&mut want, &dout, &inp, s);
    assert_eq!(want, [1.0, 4.0, 1.0, 1.0]);
    let (ti, td, din) = (
        ctx.tensor_from(&inp, "i").unwrap(),
        ctx.tensor_from(&dout, "d").unwrap(),
        ctx.tensor(4, "di").unwrap(),
    );
    ctx.run(&[&k::global_avgmax_pool_backward(&ctx, &din, &td, &ti, s).unwrap()])
        .unwrap();
    assert_eq!(ctx.read::<f32>(&din).unwrap(), want);
}
