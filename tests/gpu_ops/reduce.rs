//! Fixed-order sums (ops/reduce): batch_sum, every variant.

use glassnet::cpu::reference as r;
use glassnet::gpu::ops as k;
use glassnet::gpu::GpuContext;
use rand_chacha::ChaCha8Rng;

use crate::common::{assert_close, gpu, random, rng};
use crate::{ATOL, RTOL};

#[test]
fn batch_sum_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut g = rng(2);
    // Rows past 16 lanes and not a multiple of them, columns past one workgroup's 16.
    for (rows, len) in [(1, 1), (3, 65), (96, 400), (5, 7), (37, 33), (577, 19)] {
        batch_sum_on(&ctx, rows, len, &mut g);
    }
}

pub(crate) fn batch_sum_on(ctx: &GpuContext, rows: usize, len: usize, g: &mut ChaCha8Rng) {
    let inp = random(g, rows * len);
    let mut want = vec![0.0; len];
    r::batch_sum(&mut want, &inp, rows, len);
    let ti = ctx.tensor_from(&inp, "i").unwrap();
    for &variant in &k::variants("batch_sum") {
        let out = ctx.tensor_from(&vec![f32::NAN; len], "o").unwrap();
        ctx.run(&[&k::batch_sum_variant(ctx, variant, &out, &ti, rows, len).unwrap()])
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
