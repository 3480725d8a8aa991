//! Batch normalisation (ops/norm): training forward (output, saved statistics, running
//! statistics), inference and backward, GPU and CPU fast path against the reference; and the
//! inference folding of a normalisation into the convolution before it.

use glassnet::cpu::{fast, reference as r};
use glassnet::fold::fold_batchnorm;
use glassnet::gpu::ops as k;
use glassnet::gpu::GpuContext;
use glassnet::shapes::{Conv2dShape, NormShape};
use rand_chacha::ChaCha8Rng;

use crate::common::{assert_close, gpu, random, rng};

/// The per-case check: random input off zero (a mean the variance pass must remove), random
/// gamma, beta and running statistics, momentum 0.1.
pub fn batchnorm_on(ctx: &GpuContext, s: NormShape, g: &mut ChaCha8Rng) {
    let name = |what: &str| format!("batchnorm {what} {s:?}");
    let inp: Vec<f32> = random(g, s.len()).iter().map(|v| 3.0 * v + 1.5).collect();
    let gamma: Vec<f32> = random(g, s.c).iter().map(|v| 1.0 + 0.5 * v).collect();
    let beta = random(g, s.c);
    let rmean = random(g, s.c);
    let rvar: Vec<f32> = random(g, s.c).iter().map(|v| 1.2 + v).collect();
    let dout = random(g, s.len());
    let t = |v: &[f32]| ctx.tensor_from(v, "t").unwrap();
    let (ti, tg, tb, td) = (t(&inp), t(&gamma), t(&beta), t(&dout));

    // Training forward: reference, fast path, GPU.
    let (mut out, mut stats) = (vec![0.0; s.len()], vec![0.0; 2 * s.c]);
    let (mut rm, mut rv) = (rmean.clone(), rvar.clone());
    r::batchnorm_forward(
        &mut out, &mut stats, &mut rm, &mut rv, &inp, &gamma, &beta, 0.1, s,
    );
    let (mut fout, mut fstats) = (vec![0.0; s.len()], vec![0.0; 2 * s.c]);
    let (mut frm, mut frv) = (rmean.clone(), rvar.clone());
    fast::batchnorm_forward(
        &mut fout,
        &mut fstats,
        &mut frm,
        &mut frv,
        &inp,
        &gamma,
        &beta,
        0.1,
        s,
    );
    assert_close(&name("fast out"), &fout, &out, 1e-5, 1e-5);
    assert_close(&name("fast stats"), &fstats, &stats, 1e-5, 1e-5);
    assert_close(&name("fast running mean"), &frm, &rm, 1e-6, 1e-6);
    assert_close(&name("fast running var"), &frv, &rv, 1e-6, 1e-6);
    let (go, gs) = (
        ctx.tensor(s.len(), "o").unwrap(),
        ctx.tensor(2 * s.c, "s").unwrap(),
    );
    ctx.upload(&go, &vec![7.0f32; s.len()]);
    let (grm, grv) = (t(&rmean), t(&rvar));
    let d = k::batchnorm_forward(ctx, &go, &gs, &grm, &grv, &ti, &tg, &tb, 0.1, s).unwrap();
    ctx.run(&[&d]).unwrap();
    // f32 sums in a tree against f64 ones: a few ulps of each statistic.
    assert_close(
        &name("gpu out"),
        &ctx.read::<f32>(&go).unwrap(),
        &out,
        1e-4,
        1e-4,
    );
    assert_close(
        &name("gpu stats"),
        &ctx.read::<f32>(&gs).unwrap(),
        &stats,
        1e-5,
        1e-4,
    );
    assert_close(
        &name("gpu running mean"),
        &ctx.read::<f32>(&grm).unwrap(),
        &rm,
        1e-5,
        1e-4,
    );
    assert_close(
        &name("gpu running var"),
        &ctx.read::<f32>(&grv).unwrap(),
        &rv,
        1e-5,
        1e-4,
    );

    // Inference with the running statistics.
    let mut want = vec![0.0; s.len()];
    r::batchnorm_inference(&mut want, &inp, &gamma, &beta, &rmean, &rvar, s);
    let (grm, grv) = (t(&rmean), t(&rvar));
    ctx.upload(&go, &vec![7.0f32; s.len()]);
    let d = k::batchnorm_inference(ctx, &go, &ti, &tg, &tb, &grm, &grv, s).unwrap();
    ctx.run(&[&d]).unwrap();
    assert_close(
        &name("gpu inference"),
        &ctx.read::<f32>(&go).unwrap(),
        &want,
        1e-5,
        1e-5,
    );

    // Backward from the forward pass's statistics.
    let (mut din, mut dg, mut db) = (vec![0.0; s.len()], vec![0.0; s.c], vec![0.0; s.c]);
    r::batchnorm_backward(&mut din, &mut dg, &mut db, &dout, &inp, &stats, &gamma, s);
    let (mut fdin, mut fdg, mut fdb) = (vec![0.0; s.len()], vec![0.0; s.c], vec![0.0; s.c]);
    fast::batchnorm_backward(
        &mut fdin, &mut fdg, &mut fdb, &dout, &inp, &stats, &gamma, s,
    );
    assert_close(&name("fast dinp"), &fdin, &din, 1e-5, 1e-5);
    assert_close(&name("fast dgamma"), &fdg, &dg, 1e-5, 1e-5);
    assert_close(&name("fast dbeta"), &fdb, &db, 1e-5, 1e-5);
    let ts = t(&stats);
    let (gdin, gdg, gdb) = (
        ctx.tensor(s.len(), "di").unwrap(),
        ctx.tensor(s.c, "dg").unwrap(),
        ctx.tensor(s.c, "db").unwrap(),
    );
    ctx.upload(&gdin, &vec![7.0f32; s.len()]);
    let d = k::batchnorm_backward(ctx, &gdin, &gdg, &gdb, &td, &ti, &ts, &tg, s).unwrap();
    ctx.run(&[&d]).unwrap();
    // Sums of n products: their rounding grows with sqrt(n), the absolute part with it.
    let atol = 1e-5 * (s.count() as f32).sqrt();
    assert_close(
        &name("gpu dinp"),
        &ctx.read::<f32>(&gdin).unwrap(),
        &din,
        atol,
        1e-4,
    );
    assert_close(
        &name("gpu dgamma"),
        &ctx.read::<f32>(&gdg).unwrap(),
        &dg,
        atol,
        1e-4,
    );
    assert_close(
        &name("gpu dbeta"),
        &ctx.read::<f32>(&gdb).unwrap(),
        &db,
        atol,
        1e-4,
    );
}

#[test]
fn batchnorm_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(31);
    let n = |batch, c, h, w| NormShape { batch, c, h, w };
    // Odd planes; 1x1 planes; a channel of more values than a workgroup's lanes (and not a
    // multiple of them); more channels than lanes; one image (statistics over space alone).
    for s in [
        n(3, 5, 7, 7),
        n(4, 3, 1, 1),
        n(2, 2, 19, 23),
        n(2, 300, 2, 3),
        n(1, 4, 5, 3),
    ] {
        batchnorm_on(&ctx, s, &mut g);
    }
}

#[test]
fn batchnorm_shape_guard_names_the_kernel() {
    let Some(ctx) = gpu() else { return };
    let t = ctx.tensor(4, "t").unwrap();
    let s = NormShape {
        batch: 0,
        c: 4,
        h: 3,
        w: 3,
    };
    let Err(e) = k::batchnorm_backward(&ctx, &t, &t, &t, &t, &t, &t, &t, s) else {
        panic!("an empty batch was accepted");
    };
    assert!(e.to_string().contains("batchnorm_backward"), "{e}");
}

/// A convolution followed by inference-mode normalisation equals the folded convolution.
#[test]
fn folding_a_batchnorm_into_its_convolution_keeps_the_output() {
    let mut g = rng(32);
    let s = Conv2dShape {
        batch: 2,
        cin: 3,
        cout: 5,
        h: 6,
        w: 7,
        k: 3,
        pad: 1,
    };
    let (x, w, b) = (
        random(&mut g, s.in_len()),
        random(&mut g, s.weight_len()),
        random(&mut g, s.cout),
    );
    let gamma = random(&mut g, s.cout);
    let beta = random(&mut g, s.cout);
    let rmean = random(&mut g, s.cout);
    let rvar: Vec<f32> = random(&mut g, s.cout).iter().map(|v| 1.1 + v).collect();
    let ns = NormShape {
        batch: s.batch,
        c: s.cout,
        h: s.ho(),
        w: s.wo(),
    };
    let mut z = vec![0.0; s.out_len()];
    r::conv2d_forward(&mut z, &x, &w, &b, s);
    let mut want = vec![0.0; s.out_len()];
    r::batchnorm_inference(&mut want, &z, &gamma, &beta, &rmean, &rvar, ns);
    let (mut fw, mut fb) = (w.clone(), b.clone());
    fold_batchnorm(&mut fw, &mut fb, &gamma, &beta, &rmean, &rvar);
    let mut got = vec![0.0; s.out_len()];
    r::conv2d_forward(&mut got, &x, &fw, &fb, s);
    assert_close("folded convolution", &got, &want, 1e-5, 1e-4);
}

/// The fast path's fused backward of a normalised block's tail (pooling, ReLU,
/// normalisation and the conv bias's gradient) against the reference's four passes: odd
/// sides (the dropped last row and column still get the normalisation's gradient), a plane
/// too small to pool, gamma of both signs (the mask is the normalised map's sign, not the
/// conv output's), and ties within windows (the input on a coarse grid: the first maximum
/// wins). It overwrites all of its output and nothing past it.
#[test]
fn fast_maxpool2d_relu_batchnorm_backward_matches_reference() {
    let mut g = rng(33);
    let n = |batch, c, h, w| NormShape { batch, c, h, w };
    for s in [
        n(3, 5, 7, 7),
        n(2, 3, 8, 6),
        n(4, 2, 1, 5),
        n(2, 7, 13, 18),
        n(5, 4, 2, 2),
    ] {
        let name = |what: &str| format!("{what} {s:?}");
        let z: Vec<f32> = random(&mut g, s.len())
            .iter()
            .map(|v| (4.0 * v).round() / 4.0 + 0.3)
            .collect();
        let gamma: Vec<f32> = random(&mut g, s.c).iter().map(|v| 1.5 * v).collect();
        let beta = random(&mut g, s.c);
        let (mut a, mut stats) = (vec![0.0; s.len()], vec![0.0; 2 * s.c]);
        let (mut rm, mut rv) = (vec![0.0; s.c], vec![1.0; s.c]);
        r::batchnorm_forward(
            &mut a, &mut stats, &mut rm, &mut rv, &z, &gamma, &beta, 0.1, s,
        );
        let ps = glassnet::shapes::PoolShape {
            batch: s.batch,
            c: s.c,
            h: s.h,
            w: s.w,
        };
        let dp = random(&mut g, ps.out_len());

        let (mut da, mut dz) = (vec![0.0; s.len()], vec![0.0; s.len()]);
        r::maxpool2d_backward(&mut da, &dp, &a, ps);
        r::relu_backward(&mut dz, &da, &a);
        let (mut dn, mut dg, mut db) = (vec![0.0; s.len()], vec![0.0; s.c], vec![0.0; s.c]);
        r::batchnorm_backward(&mut dn, &mut dg, &mut db, &dz, &z, &stats, &gamma, s);
        let cs = Conv2dShape {
            batch: s.batch,
            cin: 1,
            cout: s.c,
            h: s.h,
            w: s.w,
            k: 1,
            pad: 0,
        };
        let mut dbias = vec![0.0; s.c];
        r::conv2d_backward_bias(&mut dbias, &dn, cs);

        let mut got = vec![f32::NAN; s.len() + 3];
        got[s.len()..].fill(5.0);
        let (mut gg, mut gb, mut gbias) = (
            vec![f32::NAN; s.c],
            vec![f32::NAN; s.c],
            vec![f32::NAN; s.c],
        );
        fast::maxpool2d_relu_batchnorm_backward(
            &mut got,
            (&mut gg, &mut gb, &mut gbias),
            &dp,
            &a,
            &z,
            &stats,
            &gamma,
            s,
        );
        assert_eq!(&got[s.len()..], &[5.0; 3], "{s:?}: wrote past its output");
        if s.h < 2 || s.w < 2 {
            // Nothing is pooled, so nothing is routed: the reference's gradients are zeros.
            for (got, want) in [
                (&got[..s.len()], &dn),
                (&gg, &dg),
                (&gb, &db),
                (&gbias, &dbias),
            ] {
                assert!(want.iter().all(|&v| v == 0.0), "{s:?}: reference not zero");
                assert_eq!(got, &want[..], "{s:?}: not zero");
            }
            continue;
        }
        assert!(
            dz.iter().filter(|&&v| v != 0.0).count() < dp.len(),
            "{s:?}: every window routed, the mask is not tested"
        );
        assert_close(&name("dinp"), &got[..s.len()], &dn, 1e-5, 1e-4);
        assert_close(&name("dgamma"), &gg, &dg, 1e-5, 1e-5);
        assert_close(&name("dbeta"), &gb, &db, 1e-5, 1e-5);
        let atol = 1e-6 * (s.count() as f32).sqrt();
        assert_close(&name("dbias"), &gbias, &dbias, atol, 1e-4);
    }
}

/// The fast path's normalisation fused with the pooling and ReLU gives bitwise what
/// fast::batchnorm_forward, fast::maxpool2d_forward and a ReLU give one after the other
/// (statistics and running statistics included), on odd sides and a plane too small to
/// pool; it writes nothing past either output.
#[test]
fn fast_batchnorm_maxpool_relu_forward_is_the_unfused_passes() {
    let mut g = rng(34);
    let n = |batch, c, h, w| NormShape { batch, c, h, w };
    for s in [n(3, 5, 7, 7), n(2, 3, 8, 6), n(4, 2, 1, 5), n(2, 7, 13, 18)] {
        let z: Vec<f32> = random(&mut g, s.len())
            .iter()
            .map(|v| 2.0 * v + 0.4)
            .collect();
        let gamma: Vec<f32> = random(&mut g, s.c).iter().map(|v| 1.5 * v).collect();
        let beta = random(&mut g, s.c);
        let (rmean, rvar) = (random(&mut g, s.c), vec![1.3; s.c]);
        let ps = glassnet::shapes::PoolShape {
            batch: s.batch,
            c: s.c,
            h: s.h,
            w: s.w,
        };
        let (mut a, mut stats) = (vec![0.0; s.len()], vec![0.0; 2 * s.c]);
        let (mut rm, mut rv) = (rmean.clone(), rvar.clone());
        fast::batchnorm_forward(
            &mut a, &mut stats, &mut rm, &mut rv, &z, &gamma, &beta, 0.1, s,
        );
        let mut p = vec![0.0; ps.out_len()];
        fast::maxpool2d_forward(&mut p, &a, ps);
        p.iter_mut().for_each(|v| *v = v.max(0.0));

        let mut ga = vec![f32::NAN; s.len() + 3];
        let mut gp = vec![f32::NAN; ps.out_len() + 3];
        ga[s.len()..].fill(5.0);
        gp[ps.out_len()..].fill(5.0);
        let (mut gs, mut grm, mut grv) = (vec![f32::NAN; 2 * s.c], rmean.clone(), rvar.clone());
        fast::batchnorm_maxpool_relu_forward(
            (&mut ga, &mut gp),
            &mut gs,
            &mut grm,
            &mut grv,
            &z,
            &gamma,
            &beta,
            0.1,
            s,
        );
        assert_eq!(&ga[..s.len()], &a[..], "normalised map {s:?}");
        assert_eq!(&gp[..ps.out_len()], &p[..], "pooled {s:?}");
        assert_eq!((&gs, &grm, &grv), (&stats, &rm, &rv), "statistics {s:?}");
        assert_eq!(&ga[s.len()..], &[5.0; 3], "{s:?}: wrote past the map");
        assert_eq!(
            &gp[ps.out_len()..],
            &[5.0; 3],
            "{s:?}: wrote past the pooled map"
        );
    }
}
