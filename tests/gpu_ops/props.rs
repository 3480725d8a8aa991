//! Property tests: each op family's per-case check (the one its fixed shape list runs) on
//! shapes proptest draws, so a kernel is also tried on shapes nobody picked by hand. The seed
//! is fixed so CI runs the same cases every time; `GLASSNET_PROP_SEED=N` draws other ones and
//! `PROPTEST_CASES=N` runs more (failures are shrunk to the smallest shape and printed).

use glassnet::gpu::GpuContext;
use glassnet::shapes::{Conv2dShape, DenseShape, NormShape, PoolShape};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::common::{gpu, rng};
use crate::{activation, conv, dense, distance, norm, optim, pool, reduce};

fn config() -> Config {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: env("PROPTEST_CASES").map_or(12, |n| n as u32),
        rng_seed: RngSeed::Fixed(env("GLASSNET_PROP_SEED").unwrap_or(0x6c61_7373)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// The shared context, or a skip (a failure under CI=true, as everywhere).
fn with_gpu(f: impl FnOnce(&GpuContext)) {
    if let Some(ctx) = gpu() {
        f(&ctx);
    }
}

/// A convolution of at most 3 images, 6 input and 20 output channels, 1x1 to 5x5 kernels with
/// any padding below the kernel side, on inputs of 1 to 14 pixels a side.
fn conv_shape() -> impl Strategy<Value = Conv2dShape> {
    (
        1usize..=3,
        1usize..=6,
        1usize..=20,
        prop::sample::select(vec![1usize, 3, 5]),
    )
        .prop_flat_map(|(batch, cin, cout, k)| {
            (0..k).prop_flat_map(move |pad| {
                let least = k.saturating_sub(2 * pad).max(1);
                (least..=14usize, least..=14usize).prop_map(move |(h, w)| Conv2dShape {
                    batch,
                    cin,
                    cout,
                    h,
                    w,
                    k,
                    pad,
                })
            })
        })
}

/// Shapes the fused conv + ReLU + pooling pass takes: output height even, width 8 or 16.
fn relu_maxpool_shape() -> impl Strategy<Value = Conv2dShape> {
    (
        1usize..=3,
        1usize..=4,
        1usize..=20,
        prop::sample::select(vec![1usize, 3, 5]),
        1usize..=4,
        1usize..=2,
    )
        .prop_map(|(batch, cin, cout, k, ho2, wo8)| {
            let pad = k / 2;
            // Ho = H + 2 pad - K + 1 = 2 ho2, so H = 2 ho2 + K - 1 - 2 pad (likewise W).
            Conv2dShape {
                batch,
                cin,
                cout,
                h: 2 * ho2 + k - 1 - 2 * pad,
                w: 8 * wo8 + k - 1 - 2 * pad,
                k,
                pad,
            }
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn conv2d_kernels_on_random_shapes(s in conv_shape(), seed: u64) {
        with_gpu(|ctx| conv::conv2d_on(ctx, s, &mut rng(seed)));
    }

    #[test]
    fn conv_relu_maxpool_kernels_on_random_shapes(s in relu_maxpool_shape(), seed: u64) {
        with_gpu(|ctx| conv::relu_maxpool_on(ctx, s, &mut rng(seed)));
    }

    #[test]
    fn pad2d_and_flip_on_random_shapes(
        (n, h, w, pad) in (1usize..=4, 1usize..=12, 1usize..=12, 0usize..=3),
        (extra, copies) in (0usize..=6, 1usize..=5),
        (co, ci, kk) in (1usize..=20, 1usize..=8, prop::sample::select(vec![1usize, 3, 5, 7])),
        seed: u64,
    ) {
        // Rows as long as the padded image or longer, shorter when copies shift it left.
        let wr = (w + 2 * pad + extra).saturating_sub(copies - 1).max(1);
        with_gpu(|ctx| {
            let g = &mut rng(seed);
            conv::pad2d_on(ctx, (n, h, w, pad, wr, copies), g);
            conv::conv2d_flip_weight_on(ctx, (co, ci, kk), g);
        });
    }

    #[test]
    fn batch_sum_on_random_shapes(rows in 1usize..=600, len in 1usize..=300, seed: u64) {
        with_gpu(|ctx| reduce::batch_sum_on(ctx, rows, len, &mut rng(seed)));
    }

    #[test]
    fn maxpool2d_kernels_on_random_shapes(
        (batch, c, h, w) in (1usize..=3, 1usize..=9, 1usize..=17, 1usize..=17),
        seed: u64,
    ) {
        let s = PoolShape { batch, c, h, w };
        with_gpu(|ctx| pool::maxpool2d_on(ctx, s, &mut rng(seed)));
    }

    #[test]
    fn batchnorm_kernels_on_random_shapes(
        (batch, c, h, w) in (1usize..=4, 1usize..=40, 1usize..=17, 1usize..=17),
        seed: u64,
    ) {
        let s = NormShape { batch, c, h, w };
        with_gpu(|ctx| norm::batchnorm_on(ctx, s, &mut rng(seed)));
    }

    #[test]
    fn dense_kernels_on_random_shapes(
        (batch, nin, nout) in (1usize..=80, 1usize..=70, 1usize..=40),
        seed: u64,
    ) {
        let s = DenseShape { batch, nin, nout };
        with_gpu(|ctx| dense::dense_on(ctx, s, &mut rng(seed)));
    }

    #[test]
    fn matmul_on_random_shapes(
        (m, kk, n4) in (1usize..=70, 1usize..=70, 1usize..=40),
        seed: u64,
    ) {
        with_gpu(|ctx| dense::matmul_on(ctx, m, kk, 4 * n4, &mut rng(seed)));
    }

    #[test]
    fn activation_kernels_on_random_lengths(n in 2usize..=3000, seed: u64) {
        with_gpu(|ctx| activation::activation_on(ctx, n, &mut rng(seed)));
    }

    #[test]
    fn l2norm_kernels_on_random_shapes(n in 1usize..=100, d in 1usize..=70, seed: u64) {
        with_gpu(|ctx| activation::l2norm_on(ctx, n, d, &mut rng(seed)));
    }

    #[test]
    fn pairwise_distance_on_random_shapes(
        (n, m, d) in (1usize..=100, 1usize..=100, 1usize..=70),
        seed: u64,
    ) {
        with_gpu(|ctx| distance::pairwise_distance_on(ctx, n, m, d, &mut rng(seed)));
    }

    #[test]
    fn triplet_and_batch_all_kernels_on_random_shapes(
        (n, d, classes) in (2usize..=70, 1usize..=64, 1u32..=6),
        margin in 0.05f32..2.0,
        seed: u64,
    ) {
        with_gpu(|ctx| {
            let g = &mut rng(seed);
            distance::triplet_on(ctx, (n, d, classes), margin, g);
            distance::batch_all_on(ctx, (n, d, classes), margin, g);
        });
    }

    #[test]
    fn siamese_kernels_on_random_shapes(
        (n, d, t) in (1usize..=70, 1usize..=64, 2usize..=140),
        seed: u64,
    ) {
        with_gpu(|ctx| distance::siamese_on(ctx, n, d, t, &mut rng(seed)));
    }

    #[test]
    fn optimizer_kernels_on_random_lengths(n in 1usize..=5000, seed: u64) {
        with_gpu(|ctx| optim::optimizer_on(ctx, n, &mut rng(seed)));
    }
}
