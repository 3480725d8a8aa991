//! Every GPU kernel against its CPU reference, on random data and shapes that do not divide
//! the workgroup size; the CPU fast path against the reference too.

mod common;
use common::{assert_close, gpu, random, rng};
use glassnet::cpu::{fast, reference as r};
use glassnet::gpu::ops as k;
use glassnet::optim::{AdamParams, SgdParams};
use glassnet::shapes::{Conv2dShape, DenseShape, MineMode, PoolShape, INVALID};
use rand::Rng;

const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-5;

/// A conv shape: batch, input channels, output channels, height, width, kernel, padding.
fn c(
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    pad: usize,
) -> Conv2dShape {
    Conv2dShape {
        batch,
        cin,
        cout,
        h,
        w,
        k,
        pad,
    }
}

fn conv_shapes() -> Vec<Conv2dShape> {
    vec![
        c(3, 5, 17, 7, 7, 3, 1),
        c(2, 1, 16, 13, 13, 5, 2),
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

fn pool_shapes() -> Vec<PoolShape> {
    let p = |batch, c, h, w| PoolShape { batch, c, h, w };
    vec![
        p(3, 5, 7, 7),
        p(2, 17, 13, 13),
        p(1, 3, 8, 6),
        p(3, 1, 1, 5),
    ]
}

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

/// Whether a forward variant takes a conv of `cin` input channels, a `k` x `k` kernel and
/// output width `wo` (the others must refuse it).
fn forward_fits(variant: &str, cin: usize, k: usize, wo: usize) -> bool {
    match variant {
        "conv2d_forward_v4s" => wo.is_multiple_of(4),
        "conv2d_forward_k5c2" => cin == 1 && k == 5 && wo.is_multiple_of(4),
        _ => true,
    }
}

#[test]
fn conv2d_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(1);
    for s in conv_shapes() {
        let (inp, w, b, dout) = (
            random(&mut g, s.in_len()),
            random(&mut g, s.weight_len()),
            random(&mut g, s.cout),
            random(&mut g, s.out_len()),
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
        for &variant in k::FORWARD_VARIANTS {
            if !forward_fits(variant, s.cin, s.k, s.wo()) {
                assert!(k::conv2d_forward_variant(&ctx, variant, &out, &ti, &tw, &tb, s).is_err());
                continue;
            }
            let d = k::conv2d_forward_variant(&ctx, variant, &out, &ti, &tw, &tb, s).unwrap();
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
        let d = k::conv2d_forward(&ctx, &out, &ti, &tw, &tb, s).unwrap();
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
        assert!(want_relu.contains(&0.0) && want_relu.iter().any(|&v| v > 0.0));
        let d = k::conv2d_forward_relu(&ctx, &out, &ti, &tw, &tb, s).unwrap();
        ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
        assert_close(
            &format!("gpu conv2d_forward_relu {tag}"),
            &ctx.read::<f32>(&out).unwrap(),
            &want_relu,
            ATOL,
            RTOL,
        );
        // Each variant's ReLU epilogue, not only the one autotune picked.
        for &variant in k::FORWARD_VARIANTS {
            if !forward_fits(variant, s.cin, s.k, s.wo()) {
                continue;
            }
            let d = k::conv2d_forward_relu_variant(&ctx, variant, &out, &ti, &tw, &tb, s).unwrap();
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
        for &variant in k::FORWARD_VARIANTS {
            // The input gradient is a forward conv with Ci and Co swapped, output width W.
            if !forward_fits(variant, s.cout, s.k, s.w) {
                assert!(
                    k::conv2d_backward_input_variant(&ctx, variant, &din, &td, &tw, s).is_err()
                );
                continue;
            }
            let d = k::conv2d_backward_input_variant(&ctx, variant, &din, &td, &tw, s).unwrap();
            ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
            assert_close(
                &format!("gpu conv2d_backward_input ({variant}) {tag}"),
                &ctx.read::<f32>(&din).unwrap(),
                &want,
                ATOL,
                RTOL,
            );
        }
        let d = k::conv2d_backward_input(&ctx, &din, &td, &tw, s).unwrap();
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
        for &(variant, _) in k::WGRAD_VARIANTS {
            let fits = match variant {
                "conv2d_backward_weight_k5c2" => s.k == 5 && s.wo().is_multiple_of(4),
                "conv2d_backward_weight_split" => s.k <= 5,
                v if v.starts_with("conv2d_backward_weight_v4") => s.wo().is_multiple_of(4),
                _ => true,
            };
            if !fits {
                assert!(k::conv2d_backward_weight_variant(
                    &ctx, variant, &dw, &td, &ti, &partial, s
                )
                .is_err());
                continue;
            }
            ctx.upload(&partial, &vec![f32::NAN; partial_len]);
            ctx.upload(&dw, &vec![f32::NAN; s.weight_len()]);
            let d = k::conv2d_backward_weight_variant(&ctx, variant, &dw, &td, &ti, &partial, s)
                .unwrap();
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
        for &variant in k::BIAS_VARIANTS {
            ctx.upload(&partial, &vec![f32::NAN; partial_len]);
            ctx.upload(&db, &vec![f32::NAN; s.cout]);
            let d = k::conv2d_backward_bias_variant(&ctx, variant, &db, &td, &partial, s).unwrap();
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
        let d = k::conv2d_backward_bias(&ctx, &db, &td, &partial, s).unwrap();
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
        for &variant in k::PARAMS_VARIANTS.iter().chain(&["tuned"]) {
            ctx.upload(&pp, &vec![f32::NAN; plen]);
            ctx.upload(&dw, &vec![f32::NAN; s.weight_len()]);
            ctx.upload(&db, &vec![f32::NAN; s.cout]);
            let d = if variant == "tuned" {
                k::conv2d_backward_params(&ctx, &dw, &db, &td, &ti, &pp, s)
            } else {
                k::conv2d_backward_params_variant(&ctx, variant, &dw, &db, &td, &ti, &pp, s)
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
        let inp = random(&mut g, n * h * w);
        let len = copies * n * (h + 2 * pad) * wr;
        let mut want = vec![f32::NAN; len];
        r::pad2d(&mut want, &inp, n, h, w, pad, wr, copies);
        let ti = ctx.tensor_from(&inp, "i").unwrap();
        for &v in k::PAD_VARIANTS {
            if v == "pad2d_v4" && !wr.is_multiple_of(4) {
                continue;
            }
            let to = ctx.tensor_from(&vec![f32::NAN; len], "o").unwrap();
            ctx.run(&[&k::pad2d_variant(&ctx, v, &to, &ti, n, h, w, pad, wr, copies).unwrap()])
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
    for (co, ci, kk) in [(17, 5, 3), (1, 16, 5), (4, 3, 1)] {
        let w = random(&mut g, co * ci * kk * kk);
        let mut want = vec![0.0; w.len()];
        r::conv2d_flip_weight(&mut want, &w, co, ci, kk);
        let (tw, tf) = (
            ctx.tensor_from(&w, "w").unwrap(),
            ctx.tensor(w.len(), "f").unwrap(),
        );
        ctx.run(&[&k::conv2d_flip_weight(&ctx, &tf, &tw, co, ci, kk).unwrap()])
            .unwrap();
        assert_close(
            &format!("conv2d_flip_weight {co}x{ci}x{kk}"),
            &ctx.read::<f32>(&tf).unwrap(),
            &want,
            0.0,
            0.0,
        );
    }
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

#[test]
fn batch_sum_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(2);
    // Rows past 16 lanes and not a multiple of them, columns past one workgroup's 16.
    for (rows, len) in [(1, 1), (3, 65), (96, 400), (5, 7), (37, 33), (577, 19)] {
        let inp = random(&mut g, rows * len);
        let mut want = vec![0.0; len];
        r::batch_sum(&mut want, &inp, rows, len);
        let ti = ctx.tensor_from(&inp, "i").unwrap();
        for &variant in k::BATCH_SUM_VARIANTS {
            let out = ctx.tensor_from(&vec![f32::NAN; len], "o").unwrap();
            ctx.run(&[&k::batch_sum_variant(&ctx, variant, &out, &ti, rows, len).unwrap()])
                .unwrap();
            assert_close(
                &format!("{variant} {rows}x{len}"),
                &ctx.read::<f32>(&out).unwrap(),
                &want,
                ATOL,
                RTOL,
            );
        }
    }
}

#[test]
fn maxpool2d_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(3);
    for s in pool_shapes() {
        let (inp, dout) = (
            random(&mut g, s.in_len()),
            random(&mut g, s.out_len().max(1)),
        );
        let ti = ctx.tensor_from(&inp, "i").unwrap();
        if s.out_len() > 0 {
            let mut want = vec![0.0; s.out_len()];
            r::maxpool2d_forward(&mut want, &inp, s);
            let out = ctx.tensor(s.out_len(), "o").unwrap();
            ctx.run(&[&k::maxpool2d_forward(&ctx, &out, &ti, s).unwrap()])
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
        ctx.run(&[&k::maxpool2d_backward(&ctx, &din, &td, &ti, s).unwrap()])
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
        ctx.run(&[&k::maxpool2d_relu_backward(&ctx, &din, &td, &ta, s).unwrap()])
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
        assert!(k::relu_maxpool_fits(&s));
        let (inp, w, b) = (
            random(&mut g, s.in_len()),
            random(&mut g, s.weight_len()),
            random(&mut g, s.cout),
        );
        let ps = s.pool();
        let dout = random(&mut g, ps.out_len());
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
        for &variant in k::RELU_MAXPOOL_VARIANTS {
            let d =
                k::conv2d_forward_relu_maxpool_variant(&ctx, variant, &tp, &tc, &ti, &tw, &tb, s);
            let fits = variant != "conv2d_forward_relu_maxpool_k5c2" || (s.cin == 1 && s.k == 5);
            let Ok(d) = d else {
                assert!(!fits, "{variant} refused {s:?}");
                continue;
            };
            assert!(fits, "{variant} accepted {s:?}");
            ctx.upload(&tp, &vec![7.0f32; ps.out_len()]);
            ctx.upload(&tc, &vec![0xdead_beefu32; want_codes.len()]);
            ctx.run(&d.iter().collect::<Vec<_>>()).unwrap();
            let tag = format!("{variant} {s:?}");
            assert_close(&tag, &ctx.read::<f32>(&tp).unwrap(), &want, RTOL, ATOL);
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
        let d = k::maxpool2d_relu_backward_argmax(&ctx, &din, &td, &tcr, ps).unwrap();
        ctx.run(&[&d]).unwrap();
        let tag = format!("maxpool2d_relu_backward_argmax {ps:?}");
        assert_close(&tag, &ctx.read::<f32>(&din).unwrap(), &want, 0.0, 0.0);
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

/// Every way the dense backward passes can run: the register-blocked product, the plain
/// kernel, and each conv2d_forward variant as a 1x1 convolution of one image.
fn dense_backward_variants(blocked: &'static str, plain: &'static str) -> Vec<&'static str> {
    let mut v = vec![blocked, plain];
    v.extend_from_slice(k::FORWARD_VARIANTS);
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
        let (inp, w, b, dout) = (
            random(&mut g, s.batch * s.nin),
            random(&mut g, s.nout * s.nin),
            random(&mut g, s.nout),
            random(&mut g, s.batch * s.nout),
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
        for &variant in k::DENSE_FORWARD_VARIANTS {
            // NaN first: a variant that skips an output cannot pass on its predecessor's.
            ctx.upload(&out, &vec![f32::NAN; want.len()]);
            let d = k::dense_forward_variant(&ctx, variant, &out, &ti, &tw, &tb, s).unwrap();
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
        ctx.run(&[&k::dense_forward(&ctx, &out, &ti, &tw, &tb, s).unwrap()])
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
            match k::dense_backward_input_variant(&ctx, variant, &din, &td, &tw, s) {
                Ok(d) => run_list(&ctx, &d),
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
            &ctx,
            &k::dense_backward_input(&ctx, &din, &td, &tw, s).unwrap(),
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
            match k::dense_backward_weight_variant(&ctx, variant, &dw, &td, &ti, s) {
                Ok(d) => run_list(&ctx, &d),
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
            &ctx,
            &k::dense_backward_weight(&ctx, &dw, &td, &ti, s).unwrap(),
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
        ctx.run(&[&k::dense_backward_bias(&ctx, &db, &td, s).unwrap()])
            .unwrap();
        assert_close(
            &format!("gpu dense_backward_bias {tag}"),
            &ctx.read::<f32>(&db).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
}

#[test]
fn activation_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(5);
    for n in [2usize, 63, 65, 1000] {
        let mut inp: Vec<f32> = random(&mut g, n).iter().map(|v| v * 30.0).collect();
        inp[0] = 3.0; // at least one positive, so ReLU's reference is not all zeros
        let dout = random(&mut g, n);
        let (ti, td) = (
            ctx.tensor_from(&inp, "i").unwrap(),
            ctx.tensor_from(&dout, "d").unwrap(),
        );
        let (out, din) = (ctx.tensor(n, "o").unwrap(), ctx.tensor(n, "di").unwrap());

        let mut y = vec![0.0; n];
        r::relu_forward(&mut y, &inp);
        ctx.run(&[&k::relu_forward(&ctx, &out, &ti, n).unwrap()])
            .unwrap();
        assert_close(
            &format!("relu_forward {n}"),
            &ctx.read::<f32>(&out).unwrap(),
            &y,
            0.0,
            0.0,
        );
        let mut want = vec![0.0; n];
        r::relu_backward(&mut want, &dout, &y);
        ctx.run(&[&k::relu_backward(&ctx, &din, &td, &out, n).unwrap()])
            .unwrap();
        assert_close(
            &format!("relu_backward {n}"),
            &ctx.read::<f32>(&din).unwrap(),
            &want,
            0.0,
            0.0,
        );

        r::sigmoid_forward(&mut y, &inp);
        ctx.run(&[&k::sigmoid_forward(&ctx, &out, &ti, n).unwrap()])
            .unwrap();
        assert_close(
            &format!("sigmoid_forward {n}"),
            &ctx.read::<f32>(&out).unwrap(),
            &y,
            1e-6,
            RTOL,
        );
        let ty = ctx.tensor_from(&y, "y").unwrap();
        r::sigmoid_backward(&mut want, &dout, &y);
        ctx.run(&[&k::sigmoid_backward(&ctx, &din, &td, &ty, n).unwrap()])
            .unwrap();
        assert_close(
            &format!("sigmoid_backward {n}"),
            &ctx.read::<f32>(&din).unwrap(),
            &want,
            1e-7,
            RTOL,
        );
    }
}

#[test]
fn l2norm_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(6);
    for (n, d) in [(1, 1), (7, 5), (12, 64), (65, 3)] {
        let mut inp = random(&mut g, n * d);
        inp[..d].fill(0.0); // a zero row must stay finite
        let dout = random(&mut g, n * d);
        let mut y = vec![0.0; n * d];
        r::l2norm_forward(&mut y, &inp, n, d);
        let (ti, td, out, din) = (
            ctx.tensor_from(&inp, "i").unwrap(),
            ctx.tensor_from(&dout, "d").unwrap(),
            ctx.tensor(n * d, "o").unwrap(),
            ctx.tensor(n * d, "di").unwrap(),
        );
        ctx.run(&[&k::l2norm_forward(&ctx, &out, &ti, n, d).unwrap()])
            .unwrap();
        let got: Vec<f32> = ctx.read(&out).unwrap();
        if n > 1 {
            assert_close(&format!("l2norm_forward {n}x{d}"), &got, &y, 1e-6, RTOL);
        }
        let mut want = vec![0.0; n * d];
        r::l2norm_backward(&mut want, &dout, &y, &inp, n, d);
        assert!(want.iter().all(|v| v.is_finite()));
        let ty = ctx.tensor_from(&y, "y").unwrap();
        ctx.run(&[&k::l2norm_backward(&ctx, &din, &td, &ty, &ti, n, d).unwrap()])
            .unwrap();
        assert_close(
            &format!("l2norm_backward {n}x{d}"),
            &ctx.read::<f32>(&din).unwrap(),
            &want,
            1e-5,
            RTOL,
        );
    }
}

#[test]
fn pairwise_distance_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(7);
    for (n, m, d) in [(7, 13, 5), (12, 12, 64), (1, 65, 3), (96, 33, 17)] {
        let (x, y) = (random(&mut g, n * d), random(&mut g, m * d));
        let mut want = vec![0.0; n * m];
        r::pairwise_distance(&mut want, &x, &y, n, m, d);
        let (tx, ty, out) = (
            ctx.tensor_from(&x, "x").unwrap(),
            ctx.tensor_from(&y, "y").unwrap(),
            ctx.tensor(n * m, "o").unwrap(),
        );
        ctx.run(&[&k::pairwise_distance(&ctx, &out, &tx, &ty, n, m, d).unwrap()])
            .unwrap();
        assert_close(
            &format!("pairwise_distance {n}x{m}x{d}"),
            &ctx.read::<f32>(&out).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    // Self-distances are exactly zero (differences, not the expanded form).
    let x = random(&mut g, 5 * 8);
    let mut dd = vec![0.0; 25];
    r::pairwise_distance(&mut dd, &x, &x, 5, 5, 8);
    assert!((0..5).all(|i| dd[i * 5 + i] == 0.0));
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
        let (x, labels, dist) = triplet_case(&mut g, n, d, classes);
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
            ctx.run(&[&k::triplet_mine(&ctx, &tt, &tdist, &tl, n, mode).unwrap()])
                .unwrap();
            assert_eq!(ctx.read::<u32>(&tt).unwrap(), trip, "triplet_mine {tag}");

            let mut losses = vec![0.0; n];
            r::triplet_loss_forward(&mut losses, &dist, &trip, n, margin);
            let tloss = ctx.tensor(n, "loss").unwrap();
            ctx.run(&[&k::triplet_loss_forward(&ctx, &tloss, &tdist, &tt, n, n, margin).unwrap()])
                .unwrap();
            let got: Vec<f32> = ctx.read(&tloss).unwrap();
            let mut stats = [0.0f32; 4];
            r::triplet_loss_reduce(&mut stats, &losses, &trip);
            let tstats = ctx.tensor(4, "stats").unwrap();
            ctx.run(&[&k::triplet_loss_reduce(&ctx, &tstats, &tloss, &tt, n).unwrap()])
                .unwrap();
            let gstats: Vec<f32> = ctx.read(&tstats).unwrap();
            let mut dx = vec![0.0; n * d];
            r::triplet_loss_backward(&mut dx, &x, &dist, &trip, n, d, margin);
            let tdx = ctx.tensor(n * d, "dx").unwrap();
            ctx.upload(&tdx, &vec![7.0f32; n * d]);
            ctx.run(&[
                &k::triplet_loss_backward(&ctx, &tdx, &tx, &tdist, &tt, n, d, n, margin).unwrap(),
            ])
            .unwrap();
            let gdx: Vec<f32> = ctx.read(&tdx).unwrap();
            if classes == 1 {
                assert_eq!(stats, [0.0; 4]);
                assert_eq!(gstats, [0.0; 4]);
                assert!(gdx.iter().all(|&v| v == 0.0) && dx.iter().all(|&v| v == 0.0));
                continue;
            }
            assert_close(
                &format!("triplet_loss_forward {tag}"),
                &got,
                &losses,
                ATOL,
                RTOL,
            );
            assert_close(
                &format!("triplet_loss_reduce {tag}"),
                &gstats,
                &stats,
                ATOL,
                RTOL,
            );
            assert_close(
                &format!("triplet_loss_backward {tag}"),
                &gdx,
                &dx,
                ATOL,
                RTOL,
            );
        }
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
fn optimizer_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(10);
    let n = 1037;
    let (p0, grads, m0) = (random(&mut g, n), random(&mut g, n), random(&mut g, n));
    let v0: Vec<f32> = random(&mut g, n).iter().map(|v| v.abs()).collect();
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
    ctx.run(&[&k::adam_update(&ctx, &tp, &tm, &tv, &tg, &h).unwrap()])
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
    ctx.run(&[&k::sgd_momentum_update(&ctx, &tp, &tvel, &tg, &h).unwrap()])
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

#[test]
fn large_dispatch_uses_a_second_grid_dimension() {
    let Some(ctx) = gpu() else { return };
    // 65,535 x 64 threads is the most one grid row holds; go past it.
    let n = 65_535 * 64 + 1000;
    let mut g = rng(11);
    let inp = random(&mut g, n);
    let (ti, out) = (
        ctx.tensor_from(&inp, "i").unwrap(),
        ctx.tensor(n, "o").unwrap(),
    );
    assert!(glassnet::gpu::tensor::grid(n).1 > 1);
    ctx.run(&[&k::relu_forward(&ctx, &out, &ti, n).unwrap()])
        .unwrap();
    let mut want = vec![0.0; n];
    r::relu_forward(&mut want, &inp);
    assert_close(
        "relu over a 2-D grid",
        &ctx.read::<f32>(&out).unwrap(),
        &want,
        0.0,
        0.0,
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
        let tag = format!("n {n} d {d} classes {classes}");
        let (x, labels, dist) = triplet_case(&mut g, n, d, classes);
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
        ctx.run(&[
            &k::triplet_all_forward(&ctx, &tw, &tpl, &tpv, &tdist, &tl, n, margin).unwrap(),
            &k::triplet_all_reduce(&ctx, &ts, &tw, &tpl, &tpv, n).unwrap(),
            &k::triplet_all_backward(&ctx, &tdx, &tx, &tw, &ts, n, d).unwrap(),
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
            continue;
        }
        assert_eq!(gw, w, "triplet_all_forward weights (integer counts) {tag}");
        assert_close(
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
        assert_close(
            &format!("triplet_all_reduce {tag}"),
            &gs,
            &stats,
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("triplet_all_backward {tag}"),
            &gdx,
            &dx,
            ATOL,
            RTOL,
        );
    }
}

#[test]
fn siamese_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(21);
    for (n, d, t) in [(7, 5, 9), (12, 64, 24), (65, 3, 130), (3, 17, 2)] {
        let x = random(&mut g, n * d);
        let alpha = random(&mut g, d);
        let beta = random(&mut g, 1);
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
        ctx.upload(&tdx, &vec![7.0f32; n * d]);
        ctx.run(&[
            &k::siamese_forward(&ctx, &tl, &tg, &tx, &tp, &ta, &tb, t, d).unwrap(),
            &k::triplet_loss_reduce(&ctx, &ts, &tl, &tp, t).unwrap(),
            &k::siamese_backward(&ctx, &tdx, &tda, &tdb, &tx, &tp, &tg, &ta, &ts, n, d, t).unwrap(),
        ])
        .unwrap();
        let read = |t: &glassnet::gpu::GpuTensor| ctx.read::<f32>(t).unwrap();
        assert_close(
            &format!("siamese_forward losses {tag}"),
            &read(&tl),
            &losses,
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("siamese_forward dlogit {tag}"),
            &read(&tg),
            &dlogit,
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("siamese stats {tag}"),
            &read(&ts),
            &stats,
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("siamese_backward dx {tag}"),
            &read(&tdx),
            &dx,
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("siamese_backward dalpha {tag}"),
            &read(&tda),
            &dalpha,
            ATOL,
            RTOL,
        );
        assert_close(
            &format!("siamese_backward dbeta {tag}"),
            &read(&tdb),
            &dbeta,
            ATOL,
            RTOL,
        );
    }
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
        let (a, b) = (random(&mut g, m * kk), random(&mut g, kk * n));
        let mut want = vec![0.0; m * n];
        r::matmul(&mut want, &a, &b, m, kk, n);
        let (ta, tb, tc) = (
            ctx.tensor_from(&a, "a").unwrap(),
            ctx.tensor_from(&b, "b").unwrap(),
            ctx.tensor(m * n, "c").unwrap(),
        );
        ctx.run(&[&k::matmul(&ctx, &tc, &ta, &tb, m, kk, n).unwrap()])
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
        ctx.run(&[&k::matmul_tn(&ctx, &tc, &tat, &tb, m, kk, n).unwrap()])
            .unwrap();
        assert_close(
            &format!("matmul_tn {m}x{kk}x{n}"),
            &ctx.read::<f32>(&tc).unwrap(),
            &want,
            ATOL,
            RTOL,
        );
    }
    let t = ctx.tensor(12, "t").unwrap();
    assert!(
        k::matmul(&ctx, &t, &t, &t, 2, 2, 6).is_err(),
        "n = 6 is not a multiple of 4"
    );
}
