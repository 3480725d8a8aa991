//! The dense layer and the products (ops/dense): dense_forward and its backward passes by
//! every route (plain kernels, matmul / matmul_tn, 1x1 convolutions), matmul, matmul_tn.

use glassnet::cpu::{fast, reference as r};
use glassnet::gpu::ops as k;
use glassnet::gpu::GpuContext;
use glassnet::shapes::DenseShape;
use rand_chacha::ChaCha8Rng;

use crate::common::{assert_close, gpu, random, rng};
use crate::{ATOL, RTOL};

fn dense_shapes() -> Vec<DenseShape> {
    let d = |batch, nin, nout| DenseShape { batch, nin, nout };
    // I a multiple of 4 runs on matmul / matmul_tn, otherwise on the dense_* kernels.
    vec![
        d(3, 17, 5),
        d(7, 13, 17),
        d(12, 6272, 64),
        d(1, 1, 1),
        d(70, 20, 33),
        d(5, 8, 3),
        // More than 65,535 workgroups of dense_forward_split (one per image and 4 outputs).
        d(4099, 3, 65),
    ]
}

/// Every way the dense backward passes can run: the register-blocked product, the plain
/// kernel, and each conv2d_forward variant as a 1x1 convolution of one image.
fn dense_backward_variants(blocked: &'static str, plain: &'static str) -> Vec<&'static str> {
    let mut v = vec![blocked, plain];
    v.extend(k::variants("conv2d_forward"));
    v
}

/// The variants a dense backward pass of `nin` inputs may refuse: vec4 products need a
/// multiple of 4, conv2d_forward_k5c2 a 5x5 kernel.
fn may_refuse(variant: &str, nin: usize) -> bool {
    match variant {
        "matmul" | "matmul_tn" | "conv2d_forward_v4s" => !nin.is_multiple_of(4),
        "conv2d_forward_k5c2" => true,
        _ => false,
    }
}

fn run_list(ctx: &glassnet::gpu::GpuContext, d: &[glassnet::gpu::Dispatch]) {
    ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
}

#[test]
fn dense_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(4);
    for s in dense_shapes() {
        dense_on(&ctx, s, &mut g);
    }
}

pub(crate) fn dense_on(ctx: &GpuContext, s: DenseShape, g: &mut ChaCha8Rng) {
    let (inp, w, b, dout) = (
        random(g, s.batch * s.nin),
        random(g, s.nout * s.nin),
        random(g, s.nout),
        random(g, s.batch * s.nout),
    );
    let (ti, tw, tb, td) = (
        ctx.tensor_from(&inp, "i").unwrap(),
        ctx.tensor_from(&w, "w").unwrap(),
        ctx.tensor_from(&b, "b").unwrap(),
        ctx.tensor_from(&dout, "d").unwrap(),
    );
    let tag = format!("{s:?}");

    let mut want = vec![0.0; s.batch * s.nout];
    r::dense_forward(&mut want, &inp, &w, &b, s);
    let out = ctx.tensor(want.len(), "o").unwrap();
    for &variant in &k::variants("dense_forward") {
        // NaN first: a variant that skips an output cannot pass on its predecessor's.
        ctx.upload(&out, &vec![f32::NAN; want.len()]);
        let d = k::dense_forward_variant(ctx, variant, &out, &ti, &tw, &tb, s).unwrap();
        ctx.run(&[&d]).unwrap();
        assert_close(
            &format!("gpu {variant} {tag}"),
            &ctx.read::<f32>(&out).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    // The autotuned entry point (whichever variant it picks).
    ctx.run(&[&k::dense_forward(ctx, &out, &ti, &tw, &tb, s).unwrap()])
        .unwrap();
    assert_close(
        &format!("gpu dense_forward {tag}"),
        &ctx.read::<f32>(&out).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
    let mut got = vec![0.0; want.len()];
    fast::dense_forward(&mut got, &inp, &w, &b, s);
    assert_close(
        &format!("fast dense_forward {tag}"),
        &got,
        &want,
        ATOL,
        RTOL,
    );

    let mut want = vec![0.0; s.batch * s.nin];
    r::dense_backward_input(&mut want, &dout, &w, s);
    let din = ctx.tensor(want.len(), "di").unwrap();
    for variant in dense_backward_variants("matmul", "dense_backward_input") {
        ctx.upload(&din, &vec![f32::NAN; want.len()]);
        match k::dense_backward_input_variant(ctx, variant, &din, &td, &tw, s) {
            Ok(d) => run_list(ctx, &d),
            Err(_) => {
                assert!(may_refuse(variant, s.nin), "{variant} refused {tag}");
                continue;
            }
        }
        assert_close(
            &format!("gpu {variant} as dense_backward_input {tag}"),
            &ctx.read::<f32>(&din).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    run_list(
        ctx,
        &k::dense_backward_input(ctx, &din, &td, &tw, s).unwrap(),
    );
    assert_close(
        &format!("gpu dense_backward_input {tag}"),
        &ctx.read::<f32>(&din).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
    let mut got = vec![0.0; want.len()];
    fast::dense_backward_input(&mut got, &dout, &w, s);
    assert_close(
        &format!("fast dense_backward_input {tag}"),
        &got,
        &want,
        ATOL,
        RTOL,
    );

    let mut want = vec![0.0; s.nout * s.nin];
    r::dense_backward_weight(&mut want, &dout, &inp, s);
    let dw = ctx.tensor(want.len(), "dw").unwrap();
    for variant in dense_backward_variants("matmul_tn", "dense_backward_weight") {
        ctx.upload(&dw, &vec![f32::NAN; want.len()]);
        match k::dense_backward_weight_variant(ctx, variant, &dw, &td, &ti, s) {
            Ok(d) => run_list(ctx, &d),
            Err(_) => {
                assert!(may_refuse(variant, s.nin), "{variant} refused {tag}");
                continue;
            }
        }
        assert_close(
            &format!("gpu {variant} as dense_backward_weight {tag}"),
            &ctx.read::<f32>(&dw).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    run_list(
        ctx,
        &k::dense_backward_weight(ctx, &dw, &td, &ti, s).unwrap(),
    );
    assert_close(
        &format!("gpu dense_backward_weight {tag}"),
        &ctx.read::<f32>(&dw).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
    let mut got = vec![0.0; want.len()];
    fast::dense_backward_weight(&mut got, &dout, &inp, s);
    assert_close(
        &format!("fast dense_backward_weight {tag}"),
        &got,
        &want,
        ATOL,
        RTOL,
    );

    let mut want = vec![0.0; s.nout];
    r::dense_backward_bias(&mut want, &dout, s);
    let db = ctx.tensor(want.len(), "db").unwrap();
    ctx.run(&[&k::dense_backward_bias(ctx, &db, &td, s).unwrap()])
        .unwrap();
    assert_close(
        &format!("gpu dense_backward_bias {tag}"),
        &ctx.read::<f32>(&db).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
}

#[test]
fn matmul_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(23);
    for (m, kk, n) in [
        (1, 1, 4),
        (13, 7, 20),
        (5, 33, 36),
        (64, 96, 128),
        (3, 129, 4),
        (17, 3, 68),
        // Two row blocks and more columns than one workgroup covers (64 x 16).
        (33, 5, 1040),
    ] {
        matmul_on(&ctx, m, kk, n, &mut g);
    }
    let t = ctx.tensor(12, "t").unwrap();
    assert!(
        k::matmul(&ctx, &t, &t, &t, 2, 2, 6).is_err(),
        "n = 6 is not a multiple of 4"
    );
}

pub(crate) fn matmul_on(ctx: &GpuContext, m: usize, kk: usize, n: usize, g: &mut ChaCha8Rng) {
    let (a, b) = (random(g, m * kk), random(g, kk * n));
    let mut want = vec![0.0; m * n];
    r::matmul(&mut want, &a, &b, m, kk, n);
    let (ta, tb, tc) = (
        ctx.tensor_from(&a, "a").unwrap(),
        ctx.tensor_from(&b, "b").unwrap(),
        ctx.tensor(m * n, "c").unwrap(),
    );
    ctx.run(&[&k::matmul(ctx, &tc, &ta, &tb, m, kk, n).unwrap()])
        .unwrap();
    assert_close(
        &format!("matmul {m}x{kk}x{n}"),
        &ctx.read::<f32>(&tc).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
    // matmul_tn on a stored transposed: the same product.
    let at: Vec<f32> = (0..kk * m).map(|i| a[(i % m) * kk + i / m]).collect();
    let mut want_tn = vec![0.0; m * n];
    r::matmul_tn(&mut want_tn, &at, &b, m, kk, n);
    assert_close(
        &format!("reference matmul_tn {m}x{kk}x{n}"),
        &want_tn,
        &want,
        0.0,
        0.0,
    );
    let tat = ctx.tensor_from(&at, "at").unwrap();
    ctx.run(&[&k::matmul_tn(ctx, &tc, &tat, &tb, m, kk, n).unwrap()])
        .unwrap();
    assert_close(
        &format!("matmul_tn {m}x{kk}x{n}"),
        &ctx.read::<f32>(&tc).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
}
