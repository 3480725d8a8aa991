//! Convolutions (ops/conv): conv2d_forward and its ReLU epilogue, the input, weight and bias
//! gradients (and both in one), pad2d, conv2d_flip_weight, and the fused conv + ReLU + pooling
//! pass with its argmax backward; every variant, the tuned entry points and the fast CPU path.

use glassnet::cpu::{fast, reference as r};
use glassnet::gpu::ops as k;
use glassnet::gpu::GpuContext;
use glassnet::shapes::{Conv2dShape, PoolShape};
use rand_chacha::ChaCha8Rng;

use crate::common::{assert_close, gpu, random, rng};
use crate::{c, ATOL, RTOL};

fn conv_shapes() -> Vec<Conv2dShape> {
    vec![
        c(3, 5, 17, 7, 7, 3, 1),
        c(2, 1, 16, 13, 13, 5, 2),
        // Padding wider than the image: the fast path's im2col underflowed here (found by
        // the property test).
        c(1, 1, 8, 1, 1, 5, 2),
        c(1, 17, 5, 9, 11, 3, 0),
        c(3, 4, 6, 13, 7, 1, 0),
        c(2, 3, 2, 6, 6, 5, 1),
        // Several channel blocks (16 per workgroup) and tap blocks, a partial last block.
        c(2, 18, 33, 10, 9, 3, 1),
        // More output pixels than one workgroup covers (64 invocations x 16 pixels).
        c(3, 2, 3, 25, 23, 3, 1),
        // A 7x7 kernel on a row wider than 16 pixels.
        c(2, 3, 5, 9, 37, 7, 3),
        // Output widths that are multiples of 4 (the vec4-store variant), odd channel counts.
        c(2, 3, 19, 6, 12, 3, 1),
        c(1, 2, 4, 5, 8, 5, 2),
        // 5x5 kernels for the weight gradient's k5c2 variant: a conv1-like layer, and odd
        // channel counts with several input channels.
        c(2, 1, 16, 12, 16, 5, 2),
        c(3, 2, 17, 9, 12, 5, 2),
        // One output channel (the input gradient is a one-channel forward conv); padding 0.
        c(2, 3, 1, 9, 12, 5, 2),
        c(2, 1, 7, 9, 12, 5, 0),
        // One input channel, 5x5, an odd output height and a width of 8 n + 4 (the k5c2
        // forward's half group and missing second row).
        c(3, 1, 5, 11, 20, 5, 2),
        // More than one 64 x 64 tile of channels and of taps (the _tiled variants).
        c(2, 9, 70, 7, 6, 3, 1),
        // More than 65,535 workgroups (the _split weight gradient's second grid dimension).
        c(2, 128, 129, 3, 3, 3, 1),
    ]
}

/// Whether a forward variant takes a conv of `cin` input channels, a `kk` x `kk` kernel and
/// output width `wo`, by the typed variant list (the wrapper must refuse the others).
fn forward_fits(variant: &str, cin: usize, kk: usize, wo: usize) -> bool {
    let v = k::variant(variant).expect("a listed variant");
    v.fits.conv(&c(1, cin, 1, kk, wo + kk - 1, kk, 0))
}

#[test]
fn conv2d_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(1);
    for s in conv_shapes() {
        conv2d_on(&ctx, s, &mut g);
    }
}

pub(crate) fn conv2d_on(ctx: &GpuContext, s: Conv2dShape, g: &mut ChaCha8Rng) {
    let (inp, w, b, dout) = (
        random(g, s.in_len()),
        random(g, s.weight_len()),
        random(g, s.cout),
        random(g, s.out_len()),
    );
    let tag = format!("{s:?}");

    let mut want = vec![0.0; s.out_len()];
    r::conv2d_forward(&mut want, &inp, &w, &b, s);
    let (ti, tw, tb) = (
        ctx.tensor_from(&inp, "i").unwrap(),
        ctx.tensor_from(&w, "w").unwrap(),
        ctx.tensor_from(&b, "b").unwrap(),
    );
    let out = ctx.tensor(s.out_len(), "o").unwrap();
    for &variant in &k::variants("conv2d_forward") {
        if !forward_fits(variant, s.cin, s.k, s.wo()) {
            assert!(k::conv2d_forward_variant(ctx, variant, &out, &ti, &tw, &tb, s).is_err());
            continue;
        }
        let d = k::conv2d_forward_variant(ctx, variant, &out, &ti, &tw, &tb, s).unwrap();
        ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
        assert_close(
            &format!("gpu {variant} {tag}"),
            &ctx.read::<f32>(&out).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    // The autotuned entry point (whichever variant it picks).
    let d = k::conv2d_forward(ctx, &out, &ti, &tw, &tb, s).unwrap();
    ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
    assert_close(
        &format!("gpu conv2d_forward {tag}"),
        &ctx.read::<f32>(&out).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
    // With the ReLU fused in: the reference conv followed by the reference ReLU.
    let mut want_relu = vec![0.0; s.out_len()];
    r::relu_forward(&mut want_relu, &want);
    // The ReLU must both clip and pass some outputs for this to test it: sure on a shape
    // with enough taps, channels and outputs (a random one-tap shape may have one sign).
    if s.cin * s.k * s.k >= 9 && s.cout >= 4 && s.out_len() >= 64 {
        assert!(want_relu.contains(&0.0) && want_relu.iter().any(|&v| v > 0.0));
    }
    let d = k::conv2d_forward_relu(ctx, &out, &ti, &tw, &tb, s).unwrap();
    ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
    assert_close(
        &format!("gpu conv2d_forward_relu {tag}"),
        &ctx.read::<f32>(&out).unwrap(),
        &want_relu,
        ATOL,
        RTOL,
    );
    // Each variant's ReLU epilogue, not only the one autotune picked.
    for &variant in &k::variants("conv2d_forward") {
        if !forward_fits(variant, s.cin, s.k, s.wo()) {
            continue;
        }
        let d = k::conv2d_forward_relu_variant(ctx, variant, &out, &ti, &tw, &tb, s).unwrap();
        ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
        let got = ctx.read::<f32>(&out).unwrap();
        assert_close(
            &format!("gpu relu {variant} {tag}"),
            &got,
            &want_relu,
            ATOL,
            RTOL,
        );
    }
    let mut got = vec![0.0; s.out_len()];
    fast::conv2d_forward(&mut got, &inp, &w, &b, s);
    assert_close(
        &format!("fast conv2d_forward {tag}"),
        &got,
        &want,
        ATOL,
        RTOL,
    );

    let mut want = vec![0.0; s.in_len()];
    r::conv2d_backward_input(&mut want, &dout, &w, s);
    let td = ctx.tensor_from(&dout, "dout").unwrap();
    let din = ctx.tensor(s.in_len(), "dinp").unwrap();
    for &variant in &k::variants("conv2d_forward") {
        // The input gradient is a forward conv with Ci and Co swapped, output width W.
        if !forward_fits(variant, s.cout, s.k, s.w) {
            assert!(k::conv2d_backward_input_variant(ctx, variant, &din, &td, &tw, s).is_err());
            continue;
        }
        let d = k::conv2d_backward_input_variant(ctx, variant, &din, &td, &tw, s).unwrap();
        ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
        assert_close(
            &format!("gpu conv2d_backward_input ({variant}) {tag}"),
            &ctx.read::<f32>(&din).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    let d = k::conv2d_backward_input(ctx, &din, &td, &tw, s).unwrap();
    ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
    assert_close(
        &format!("gpu conv2d_backward_input {tag}"),
        &ctx.read::<f32>(&din).unwrap(),
        &want,
        ATOL,
        RTOL,
    );
    let mut got = vec![0.0; s.in_len()];
    fast::conv2d_backward_input(&mut got, &dout, &w, s);
    assert_close(
        &format!("fast conv2d_backward_input {tag}"),
        &got,
        &want,
        ATOL,
        RTOL,
    );

    let mut want = vec![0.0; s.weight_len()];
    r::conv2d_backward_weight(&mut want, &dout, &inp, s);
    let dw = ctx.tensor(s.weight_len(), "dw").unwrap();
    // Room for 4 partial rows per image: the _tiled_split variant cuts positions into parts.
    let partial_len = 4 * s.batch * s.weight_len();
    let partial = ctx.tensor(partial_len, "partial").unwrap();
    for &variant in &k::variants("conv2d_backward_weight") {
        let fits = k::variant(variant).unwrap().fits.conv(&s);
        if !fits {
            assert!(
                k::conv2d_backward_weight_variant(ctx, variant, &dw, &td, &ti, &partial, s)
                    .is_err()
            );
            continue;
        }
        ctx.upload(&partial, &vec![f32::NAN; partial_len]);
        ctx.upload(&dw, &vec![f32::NAN; s.weight_len()]);
        let d =
            k::conv2d_backward_weight_variant(ctx, variant, &dw, &td, &ti, &partial, s).unwrap();
        ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
        assert_close(
            &format!("gpu {variant} {tag}"),
            &ctx.read::<f32>(&dw).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    let mut got = vec![0.0; s.weight_len()];
    fast::conv2d_backward_weight(&mut got, &dout, &inp, s);
    assert_close(
        &format!("fast conv2d_backward_weight {tag}"),
        &got,
        &want,
        ATOL,
        RTOL,
    );

    let mut want = vec![0.0; s.cout];
    r::conv2d_backward_bias(&mut want, &dout, s);
    let db = ctx.tensor(s.cout, "db").unwrap();
    for &variant in &k::variants("conv2d_backward_bias") {
        ctx.upload(&partial, &vec![f32::NAN; partial_len]);
        ctx.upload(&db, &vec![f32::NAN; s.cout]);
        let d = k::conv2d_backward_bias_variant(ctx, variant, &db, &td, &partial, s).unwrap();
        ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
        assert_close(
            &format!("gpu {variant} {tag}"),
            &ctx.read::<f32>(&db).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    // The autotuned entry point (whichever variant it picks).
    let d = k::conv2d_backward_bias(ctx, &db, &td, &partial, s).unwrap();
    ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
    assert_close(
        &format!("gpu conv2d_backward_bias {tag}"),
        &ctx.read::<f32>(&db).unwrap(),
        &want,
        ATOL,
        RTOL,
    );

    // Both gradients in one: every conv2d_backward_params variant, then the tuned one.
    let mut want_w = vec![0.0; s.weight_len()];
    r::conv2d_backward_weight(&mut want_w, &dout, &inp, s);
    let plen = 4 * s.batch * (s.weight_len() + s.cout);
    let pp = ctx.tensor(plen, "partial").unwrap();
    for &variant in k::params_variants().iter().chain(&["tuned"]) {
        ctx.upload(&pp, &vec![f32::NAN; plen]);
        ctx.upload(&dw, &vec![f32::NAN; s.weight_len()]);
        ctx.upload(&db, &vec![f32::NAN; s.cout]);
        let d = if variant == "tuned" {
            k::conv2d_backward_params(ctx, &dw, &db, &td, &ti, &pp, s)
        } else {
            k::conv2d_backward_params_variant(ctx, variant, &dw, &db, &td, &ti, &pp, s)
        }
        .unwrap();
        ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
        for (what, got, want) in [
            ("weight", ctx.read::<f32>(&dw).unwrap(), &want_w),
            ("bias", ctx.read::<f32>(&db).unwrap(), &want),
        ] {
            assert_close(
                &format!("gpu {variant} {what} {tag}"),
                &got,
                want,
                ATOL,
                RTOL,
            );
        }
    }
}

#[test]
fn conv_helper_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(29);
    for (n, h, w, pad, wr, copies) in [
        (3, 5, 7, 1, 9, 1),
        (2, 13, 4, 2, 8, 1),
        (1, 1, 1, 3, 7, 1),
        (5, 6, 6, 0, 6, 1),
        (2, 7, 9, 1, 12, 3),
        (1, 4, 5, 2, 4, 5),
        // Rows of many quads (pad2d_v4's unchecked middle), shifts of both signs.
        (2, 9, 30, 2, 32, 5),
        (3, 4, 17, 1, 20, 3),
        // Widths that are multiples of 4 (pad2d_v4 reads the middle as vec4), every shift.
        (2, 6, 16, 1, 20, 3),
        (1, 5, 12, 2, 16, 5),
        (2, 3, 8, 3, 16, 7),
    ] {
        pad2d_on(&ctx, (n, h, w, pad, wr, copies), &mut g);
    }
    for (co, ci, kk) in [(17, 5, 3), (1, 16, 5), (4, 3, 1)] {
        conv2d_flip_weight_on(&ctx, (co, ci, kk), &mut g);
    }
}

pub(crate) fn pad2d_on(
    ctx: &GpuContext,
    (n, h, w, pad, wr, copies): (usize, usize, usize, usize, usize, usize),
    g: &mut ChaCha8Rng,
) {
    let inp = random(g, n * h * w);
    let len = copies * n * (h + 2 * pad) * wr;
    let mut want = vec![f32::NAN; len];
    r::pad2d(&mut want, &inp, n, h, w, pad, wr, copies);
    let ti = ctx.tensor_from(&inp, "i").unwrap();
    for &v in &k::variants("pad2d") {
        if v == "pad2d_v4" && !wr.is_multiple_of(4) {
            continue;
        }
        let to = ctx.tensor_from(&vec![f32::NAN; len], "o").unwrap();
        ctx.run(&[&k::pad2d_variant(ctx, v, &to, &ti, n, h, w, pad, wr, copies).unwrap()])
            .unwrap();
        assert_close(
            &format!("{v} {n}x{h}x{w} pad {pad} rows {wr} copies {copies}"),
            &ctx.read::<f32>(&to).unwrap(),
            &want,
            0.0,
            0.0,
        );
    }
}

pub(crate) fn conv2d_flip_weight_on(
    ctx: &GpuContext,
    (co, ci, kk): (usize, usize, usize),
    g: &mut ChaCha8Rng,
) {
    let w = random(g, co * ci * kk * kk);
    let mut want = vec![0.0; w.len()];
    r::conv2d_flip_weight(&mut want, &w, co, ci, kk);
    let (tw, tf) = (
        ctx.tensor_from(&w, "w").unwrap(),
        ctx.tensor(w.len(), "f").unwrap(),
    );
    ctx.run(&[&k::conv2d_flip_weight(ctx, &tf, &tw, co, ci, kk).unwrap()])
        .unwrap();
    assert_close(
        &format!("conv2d_flip_weight {co}x{ci}x{kk}"),
        &ctx.read::<f32>(&tf).unwrap(),
        &want,
        0.0,
        0.0,
    );
}

#[test]
fn conv2d_flip_weight_reference_is_the_input_gradient() {
    // The backward input pass as a forward convolution of the padded output gradient with
    // the flipped weights, all on the reference: the identity the GPU path relies on.
    let mut g = rng(31);
    let s = Conv2dShape {
        batch: 2,
        cin: 3,
        cout: 4,
        h: 7,
        w: 6,
        k: 3,
        pad: 1,
    };
    let (w, dout) = (random(&mut g, s.weight_len()), random(&mut g, s.out_len()));
    let mut want = vec![0.0; s.in_len()];
    r::conv2d_backward_input(&mut want, &dout, &w, s);
    let mut flipped = vec![0.0; w.len()];
    r::conv2d_flip_weight(&mut flipped, &w, s.cout, s.cin, s.k);
    let t = Conv2dShape {
        cin: s.cout,
        cout: s.cin,
        h: s.ho(),
        w: s.wo(),
        pad: s.k - 1 - s.pad,
        ..s
    };
    let mut got = vec![0.0; s.in_len()];
    r::conv2d_forward(&mut got, &dout, &flipped, &vec![0.0; s.cin], t);
    assert_close("flipped forward = backward input", &got, &want, ATOL, RTOL);
}

/// Shapes the fused conv + ReLU + pooling pass takes (Ho even, Wo a multiple of 8).
fn relu_maxpool_shapes() -> Vec<Conv2dShape> {
    vec![
        c(2, 1, 16, 12, 16, 5, 2),
        // Two channel blocks, the second partial; several pooled groups per row.
        c(3, 3, 19, 6, 8, 3, 1),
        c(1, 2, 33, 10, 26, 3, 0),
        c(2, 5, 4, 4, 8, 1, 0),
        // More pooled groups than one workgroup covers.
        c(3, 2, 5, 20, 48, 3, 1),
        // One input channel, 5x5 (the k5c2 variant), an odd channel count.
        c(3, 1, 19, 8, 24, 5, 2),
    ]
}

/// The activation the unfused passes would keep: relu(conv2d_forward(..)).
fn relu_conv(inp: &[f32], w: &[f32], b: &[f32], s: Conv2dShape) -> Vec<f32> {
    let mut z = vec![0.0; s.out_len()];
    r::conv2d_forward(&mut z, inp, w, b, s);
    let mut a = vec![0.0; s.out_len()];
    r::relu_forward(&mut a, &z);
    a
}

#[test]
fn relu_maxpool_reference_matches_the_unfused_passes() {
    let mut g = rng(41);
    for s in relu_maxpool_shapes() {
        let (inp, w, b) = (
            random(&mut g, s.in_len()),
            random(&mut g, s.weight_len()),
            random(&mut g, s.cout),
        );
        let ps = s.pool();
        let dout = random(&mut g, ps.out_len());
        let a = relu_conv(&inp, &w, &b, s);
        let mut want = vec![0.0; ps.out_len()];
        r::maxpool2d_forward(&mut want, &a, ps);
        let mut pooled = vec![0.0; ps.out_len()];
        let mut codes = vec![0u32; k::pool_code_words(&s)];
        r::conv2d_forward_relu_maxpool(&mut pooled, &mut codes, &inp, &w, &b, s);
        assert_eq!(pooled, want, "{s:?}");
        // Some windows must be dead (all ReLUs off) for the test to cover that code.
        let dead = (0..ps.out_len())
            .filter(|o| (codes[o / 4] >> (8 * (o % 4))) & 255 == r::POOL_DEAD)
            .count();
        assert!(
            dead > 0 && dead < ps.out_len(),
            "{s:?}: {dead} dead windows"
        );
        let mut da = vec![0.0; ps.in_len()];
        r::maxpool2d_backward(&mut da, &dout, &a, ps);
        let mut want = vec![0.0; ps.in_len()];
        r::relu_backward(&mut want, &da, &a);
        let mut got = vec![1.0; ps.in_len()];
        r::maxpool2d_relu_backward_argmax(&mut got, &dout, &codes, ps);
        assert_eq!(got, want, "{s:?}");
    }
}

/// The fast path's bias gradient (planes summed in lanes, in parallel) is the reference's
/// sequential sum, to rounding, on every conv shape (odd sides, one channel, planes of one
/// pixel), and writes only its `Co` values.
#[test]
fn fast_conv2d_backward_bias_matches_reference() {
    let mut g = rng(47);
    for s in conv_shapes() {
        let dout = random(&mut g, s.out_len());
        let mut want = vec![0.0; s.cout];
        r::conv2d_backward_bias(&mut want, &dout, s);
        let mut got = vec![7.0; s.cout + 2];
        fast::conv2d_backward_bias(&mut got, &dout, s);
        assert_close(&format!("{s:?}"), &got[..s.cout], &want, ATOL, RTOL);
        assert_eq!(&got[s.cout..], &[7.0; 2], "{s:?}: wrote past its output");
    }
}

/// The fast path's inference block (conv, 2x2 max-pooling, ReLU in one pass per image) is
/// the reference's relu -> maxpool of the convolution, on the fused kernel's shapes and on
/// odd ones (an odd output height and width, which the pooling floors).
#[test]
fn fast_conv_maxpool_relu_matches_the_reference_passes() {
    let mut g = rng(43);
    let odd = [
        c(2, 3, 7, 9, 11, 3, 1),
        c(3, 1, 5, 13, 7, 5, 2),
        c(1, 4, 3, 5, 5, 1, 0),
    ];
    for s in relu_maxpool_shapes().into_iter().chain(odd) {
        let (inp, w, b) = (
            random(&mut g, s.in_len()),
            random(&mut g, s.weight_len()),
            random(&mut g, s.cout),
        );
        let ps = s.pool();
        let mut want = vec![0.0; ps.out_len()];
        r::maxpool2d_forward(&mut want, &relu_conv(&inp, &w, &b, s), ps);
        let mut got = vec![f32::NAN; ps.out_len()];
        fast::conv2d_forward_maxpool_relu(&mut got, &inp, &w, &b, s);
        assert_close(&format!("{s:?}"), &got, &want, ATOL, RTOL);
        // Random weights leave both live and dead windows, so the ReLU is exercised.
        let dead = want.iter().filter(|&&v| v == 0.0).count();
        assert!(dead > 0 && dead < want.len(), "{s:?}: {dead} dead windows");
    }
}

/// The argmax codes may differ from the reference's only where the window's two largest
/// values are within rounding of each other (the GPU's sums may round differently).
fn check_codes(tag: &str, codes: &[u32], want: &[u32], a: &[f32], ps: PoolShape) {
    for o in 0..ps.out_len() {
        let byte = |c: &[u32]| (c[o / 4] >> (8 * (o % 4))) & 255;
        let (got, exp) = (byte(codes), byte(want));
        if got != exp {
            let (bc, oy, ox) = (
                o / (ps.ho() * ps.wo()),
                (o / ps.wo()) % ps.ho(),
                o % ps.wo(),
            );
            let i = (bc * ps.h + 2 * oy) * ps.w + 2 * ox;
            let mut v = [a[i], a[i + 1], a[i + ps.w], a[i + ps.w + 1]];
            v.sort_by(|x, y| y.total_cmp(x));
            assert!(
                v[0] - v[1] <= ATOL + RTOL * v[0].abs(),
                "{tag}: pooled output {o} has code {got}, the reference {exp} ({v:?})"
            );
        }
    }
}

#[test]
fn relu_maxpool_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(42);
    for s in relu_maxpool_shapes() {
        relu_maxpool_on(&ctx, s, &mut g);
    }
    // Shapes it cannot take are refused, not computed wrongly.
    let odd = Conv2dShape {
        batch: 1,
        cin: 1,
        cout: 2,
        h: 6,
        w: 12,
        k: 3,
        pad: 1,
    };
    assert!(!k::relu_maxpool_fits(&odd));
    let t = ctx.tensor(odd.in_len().max(odd.out_len()), "t").unwrap();
    match k::conv2d_forward_relu_maxpool(&ctx, &t, &t, &t, &t, &t, odd) {
        Err(e) => assert!(e.to_string().contains("multiple of 8"), "{e}"),
        Ok(_) => panic!("conv2d_forward_relu_maxpool accepted an output width of 12"),
    }
}

pub(crate) fn relu_maxpool_on(ctx: &GpuContext, s: Conv2dShape, g: &mut ChaCha8Rng) {
    assert!(k::relu_maxpool_fits(&s));
    let (inp, w, b) = (
        random(g, s.in_len()),
        random(g, s.weight_len()),
        random(g, s.cout),
    );
    let ps = s.pool();
    let dout = random(g, ps.out_len());
    let mut want = vec![0.0; ps.out_len()];
    let mut want_codes = vec![0u32; k::pool_code_words(&s)];
    r::conv2d_forward_relu_maxpool(&mut want, &mut want_codes, &inp, &w, &b, s);
    let (ti, tw, tb) = (
        ctx.tensor_from(&inp, "i").unwrap(),
        ctx.tensor_from(&w, "w").unwrap(),
        ctx.tensor_from(&b, "b").unwrap(),
    );
    let (tp, tc) = (
        ctx.tensor(ps.out_len(), "p").unwrap(),
        ctx.tensor(want_codes.len(), "c").unwrap(),
    );
    let a = relu_conv(&inp, &w, &b, s);
    for &variant in &k::variants("conv2d_forward_relu_maxpool") {
        let d = k::conv2d_forward_relu_maxpool_variant(ctx, variant, &tp, &tc, &ti, &tw, &tb, s);
        let fits = k::variant(variant).unwrap().fits.conv(&s);
        let Ok(d) = d else {
            assert!(!fits, "{variant} refused {s:?}");
            continue;
        };
        assert!(fits, "{variant} accepted {s:?}");
        ctx.upload(&tp, &vec![7.0f32; ps.out_len()]);
        ctx.upload(&tc, &vec![0xdead_beefu32; want_codes.len()]);
        ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
        let tag = format!("{variant} {s:?}");
        assert_close(&tag, &ctx.read::<f32>(&tp).unwrap(), &want, ATOL, RTOL);
        check_codes(&tag, &ctx.read::<u32>(&tc).unwrap(), &want_codes, &a, ps);
    }
    // The backward pass on the reference's codes: exact (it only routes values).
    let mut want = vec![0.0; ps.in_len()];
    r::maxpool2d_relu_backward_argmax(&mut want, &dout, &want_codes, ps);
    let (td, tcr, din) = (
        ctx.tensor_from(&dout, "d").unwrap(),
        ctx.tensor_from(&want_codes, "c").unwrap(),
        ctx.tensor(ps.in_len(), "di").unwrap(),
    );
    ctx.upload(&din, &vec![7.0f32; ps.in_len()]);
    let d = k::maxpool2d_relu_backward_argmax(ctx, &din, &td, &tcr, ps).unwrap();
    ctx.run(&[&d]).unwrap();
    let tag = format!("maxpool2d_relu_backward_argmax {ps:?}");
    assert_close(&tag, &ctx.read::<f32>(&din).unwrap(), &want, 0.0, 0.0);
}
