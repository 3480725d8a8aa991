//! Activations and the embedding's normalisation (ops/activation): relu, sigmoid, l2norm,
//! forward and backward; and a dispatch past one grid row.

use glassnet::cpu::reference as r;
use glassnet::gpu::ops as k;
use glassnet::gpu::GpuContext;
use rand_chacha::ChaCha8Rng;

use crate::common::{assert_close, gpu, random, rng};
use crate::RTOL;

#[test]
fn activation_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(5);
    for n in [2usize, 63, 65, 1000] {
        activation_on(&ctx, n, &mut g);
    }
}

pub(crate) fn activation_on(ctx: &GpuContext, n: usize, g: &mut ChaCha8Rng) {
    let mut inp: Vec<f32> = random(g, n).iter().map(|v| v * 30.0).collect();
    inp[0] = 3.0; // at least one positive, so ReLU's reference is not all zeros
    let dout = random(g, n);
    let (ti, td) = (
        ctx.tensor_from(&inp, "i").unwrap(),
        ctx.tensor_from(&dout, "d").unwrap(),
    );
    let (out, din) = (ctx.tensor(n, "o").unwrap(), ctx.tensor(n, "di").unwrap());

    let mut y = vec![0.0; n];
    r::relu_forward(&mut y, &inp);
    ctx.run(&[&k::relu_forward(ctx, &out, &ti, n).unwrap()])
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
    ctx.run(&[&k::relu_backward(ctx, &din, &td, &out, n).unwrap()])
        .unwrap();
    assert_close(
        &format!("relu_backward {n}"),
        &ctx.read::<f32>(&din).unwrap(),
        &want,
        0.0,
        0.0,
    );

    r::sigmoid_forward(&mut y, &inp);
    ctx.run(&[&k::sigmoid_forward(ctx, &out, &ti, n).unwrap()])
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
    ctx.run(&[&k::sigmoid_backward(ctx, &din, &td, &ty, n).unwrap()])
        .unwrap();
    assert_close(
        &format!("sigmoid_backward {n}"),
        &ctx.read::<f32>(&din).unwrap(),
        &want,
        1e-7,
        RTOL,
    );
}

#[test]
fn l2norm_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(6);
    for (n, d) in [(1, 1), (7, 5), (12, 64), (65, 3)] {
        l2norm_on(&ctx, n, d, &mut g);
    }
}

pub(crate) fn l2norm_on(ctx: &GpuContext, n: usize, d: usize, g: &mut ChaCha8Rng) {
    let mut inp = random(g, n * d);
    inp[..d].fill(0.0); // a zero row must stay finite
    let dout = random(g, n * d);
    let mut y = vec![0.0; n * d];
    r::l2norm_forward(&mut y, &inp, n, d);
    let (ti, td, out, din) = (
        ctx.tensor_from(&inp, "i").unwrap(),
        ctx.tensor_from(&dout, "d").unwrap(),
        ctx.tensor(n * d, "o").unwrap(),
        ctx.tensor(n * d, "di").unwrap(),
    );
    ctx.run(&[&k::l2norm_forward(ctx, &out, &ti, n, d).unwrap()])
        .unwrap();
    let got: Vec<f32> = ctx.read(&out).unwrap();
    if n > 1 {
        assert_close(&format!("l2norm_forward {n}x{d}"), &got, &y, 1e-6, RTOL);
    }
    let mut want = vec![0.0; n * d];
    r::l2norm_backward(&mut want, &dout, &y, &inp, n, d);
    assert!(want.iter().all(|v| v.is_finite()));
    let ty = ctx.tensor_from(&y, "y").unwrap();
    ctx.run(&[&k::l2norm_backward(ctx, &din, &td, &ty, &ti, n, d).unwrap()])
        .unwrap();
    assert_close(
        &format!("l2norm_backward {n}x{d}"),
        &ctx.read::<f32>(&din).unwrap(),
        &want,
        1e-5,
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
