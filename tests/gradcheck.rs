//! The reference's gradients against central finite differences: each backward function,
//! then the whole network with the triplet loss. The loss is L = sum(out * R) for a random R
//! (so dL/dout = R), accumulated in f64 to keep the differences clean.

mod common;
use common::{random, rng};
use glassnet::cpu::reference as r;
use glassnet::engine::cpu::{CpuEngine, CpuKind};
use glassnet::engine::{Batch, Engine, Triplets};
use glassnet::model::{init_params, Arch, Head, Norm, Objective, ParamLayout, Pooling};
use glassnet::shapes::{Conv2dShape, DenseShape, GlobalPoolShape, MineMode, NormShape, PoolShape};

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Compares `analytic` with central differences of `loss` around `x` at every index.
fn check(
    name: &str,
    x: &[f32],
    analytic: &[f32],
    eps: f32,
    tol: f64,
    loss: impl Fn(&[f32]) -> f64,
) {
    assert!(
        analytic.iter().any(|&g| g != 0.0),
        "{name}: analytic gradient is all zeros"
    );
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + eps;
        let lp = loss(&xp);
        xp[i] = x[i] - eps;
        let lm = loss(&xp);
        xp[i] = x[i];
        let fd = (lp - lm) / (2.0 * eps as f64);
        let a = analytic[i] as f64;
        assert!(
            (fd - a).abs() <= tol * (1.0 + a.abs()),
            "{name}[{i}]: analytic {a}, finite difference {fd}"
        );
    }
}

#[test]
fn conv2d_gradients() {
    let mut g = rng(20);
    for s in [
        Conv2dShape {
            batch: 2,
            cin: 3,
            cout: 4,
            h: 5,
            w: 6,
            k: 3,
            pad: 1,
        },
        Conv2dShape {
            batch: 1,
            cin: 2,
            cout: 3,
            h: 7,
            w: 5,
            k: 5,
            pad: 2,
        },
    ] {
        let (x, w, b, rr) = (
            random(&mut g, s.in_len()),
            random(&mut g, s.weight_len()),
            random(&mut g, s.cout),
            random(&mut g, s.out_len()),
        );
        let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
            let mut out = vec![0.0; s.out_len()];
            r::conv2d_forward(&mut out, x, w, b, s);
            dot(&out, &rr)
        };
        let mut dx = vec![0.0; s.in_len()];
        r::conv2d_backward_input(&mut dx, &rr, &w, s);
        check("conv2d dinp", &x, &dx, 1e-2, 1e-3, |xp| fwd(xp, &w, &b));
        let mut dw = vec![0.0; s.weight_len()];
        r::conv2d_backward_weight(&mut dw, &rr, &x, s);
        check("conv2d dweight", &w, &dw, 1e-2, 1e-3, |wp| fwd(&x, wp, &b));
        let mut db = vec![0.0; s.cout];
        r::conv2d_backward_bias(&mut db, &rr, s);
        check("conv2d dbias", &b, &db, 1e-2, 1e-3, |bp| fwd(&x, &w, bp));
    }
}

#[test]
fn maxpool2d_gradient() {
    let mut g = rng(21);
    let s = PoolShape {
        batch: 2,
        c: 3,
        h: 7,
        w: 6,
    };
    let (x, rr) = (random(&mut g, s.in_len()), random(&mut g, s.out_len()));
    let mut dx = vec![0.0; s.in_len()];
    r::maxpool2d_backward(&mut dx, &rr, &x, s);
    check("maxpool2d dinp", &x, &dx, 1e-4, 1e-2, |xp| {
        let mut out = vec![0.0; s.out_len()];
        r::maxpool2d_forward(&mut out, xp, s);
        dot(&out, &rr)
    });
}

#[test]
fn global_avgmax_pool_gradient() {
    let mut g = rng(26);
    // Odd plane sides, and a 1x1 plane (mean and maximum both the value itself).
    for (c, h, w) in [(3, 5, 3), (2, 1, 1)] {
        let s = GlobalPoolShape { batch: 2, c, h, w };
        let (x, rr) = (random(&mut g, s.in_len()), random(&mut g, s.out_len()));
        let mut dx = vec![0.0; s.in_len()];
        r::global_avgmax_pool_backward(&mut dx, &rr, &x, s);
        check("global_avgmax_pool dinp", &x, &dx, 1e-4, 1e-2, |xp| {
            let mut out = vec![0.0; s.out_len()];
            r::global_avgmax_pool_forward(&mut out, xp, s);
            dot(&out, &rr)
        });
    }
}

#[test]
fn batchnorm_gradients() {
    let mut g = rng(27);
    // Odd planes; 1x1 planes over a batch of 4 (statistics over the batch alone).
    for (batch, c, h, w) in [(3, 2, 3, 5), (4, 3, 1, 1)] {
        let s = NormShape { batch, c, h, w };
        let x: Vec<f32> = random(&mut g, s.len())
            .iter()
            .map(|v| 2.0 * v + 0.7)
            .collect();
        let gamma: Vec<f32> = random(&mut g, c).iter().map(|v| 1.0 + 0.5 * v).collect();
        let beta = random(&mut g, c);
        let rr = random(&mut g, s.len());
        // Training mode: the batch statistics are functions of x, so every input moves
        // every output of its channel.
        let forward = |x: &[f32], gamma: &[f32], beta: &[f32]| {
            let (mut out, mut stats) = (vec![0.0; s.len()], vec![0.0; 2 * c]);
            let (mut rm, mut rv) = (vec![0.0; c], vec![1.0; c]);
            r::batchnorm_forward(
                &mut out, &mut stats, &mut rm, &mut rv, x, gamma, beta, 0.0, s,
            );
            (out, stats)
        };
        let (_, stats) = forward(&x, &gamma, &beta);
        let (mut dx, mut dg, mut db) = (vec![0.0; s.len()], vec![0.0; c], vec![0.0; c]);
        r::batchnorm_backward(&mut dx, &mut dg, &mut db, &rr, &x, &stats, &gamma, s);
        check("batchnorm dinp", &x, &dx, 1e-3, 1e-2, |xp| {
            dot(&forward(xp, &gamma, &beta).0, &rr)
        });
        check("batchnorm dgamma", &gamma, &dg, 1e-3, 1e-2, |gp| {
            dot(&forward(&x, gp, &beta).0, &rr)
        });
        check("batchnorm dbeta", &beta, &db, 1e-3, 1e-2, |bp| {
            dot(&forward(&x, &gamma, bp).0, &rr)
        });
    }
}

#[test]
fn dense_gradients() {
    let mut g = rng(22);
    let s = DenseShape {
        batch: 3,
        nin: 7,
        nout: 5,
    };
    let (x, w, b, rr) = (
        random(&mut g, 21),
        random(&mut g, 35),
        random(&mut g, 5),
        random(&mut g, 15),
    );
    let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut out = vec![0.0; 15];
        r::dense_forward(&mut out, x, w, b, s);
        dot(&out, &rr)
    };
    let mut dx = vec![0.0; 21];
    r::dense_backward_input(&mut dx, &rr, &w, s);
    check("dense dinp", &x, &dx, 1e-2, 1e-3, |xp| fwd(xp, &w, &b));
    let mut dw = vec![0.0; 35];
    r::dense_backward_weight(&mut dw, &rr, &x, s);
    check("dense dweight", &w, &dw, 1e-2, 1e-3, |wp| fwd(&x, wp, &b));
    let mut db = vec![0.0; 5];
    r::dense_backward_bias(&mut db, &rr, s);
    check("dense dbias", &b, &db, 1e-2, 1e-3, |bp| fwd(&x, &w, bp));
}

#[test]
fn activation_gradients() {
    let mut g = rng(23);
    // Keep inputs away from ReLU's kink so the difference quotient is defined.
    let x: Vec<f32> = random(&mut g, 40)
        .iter()
        .map(|v| if v.abs() < 0.05 { v + 0.1 } else { v * 4.0 })
        .collect();
    let rr = random(&mut g, 40);
    let mut y = vec![0.0; 40];
    let mut dx = vec![0.0; 40];
    r::relu_forward(&mut y, &x);
    r::relu_backward(&mut dx, &rr, &y);
    check("relu", &x, &dx, 1e-3, 1e-3, |xp| {
        let mut o = vec![0.0; 40];
        r::relu_forward(&mut o, xp);
        dot(&o, &rr)
    });
    r::sigmoid_forward(&mut y, &x);
    r::sigmoid_backward(&mut dx, &rr, &y);
    check("sigmoid", &x, &dx, 1e-3, 1e-3, |xp| {
        let mut o = vec![0.0; 40];
        r::sigmoid_forward(&mut o, xp);
        dot(&o, &rr)
    });
    let (n, d) = (5, 8);
    r::l2norm_forward(&mut y, &x, n, d);
    r::l2norm_backward(&mut dx, &rr, &y, &x, n, d);
    check("l2norm", &x, &dx, 1e-3, 1e-3, |xp| {
        let mut o = vec![0.0; 40];
        r::l2norm_forward(&mut o, xp, n, d);
        dot(&o, &rr)
    });
    // Sigmoid stays finite far out in both directions.
    assert_eq!(r::sigmoid(-200.0), 0.0);
    assert_eq!(r::sigmoid(200.0), 1.0);
}

#[test]
fn triplet_loss_gradient_through_distances() {
    let mut g = rng(24);
    let (n, d, margin) = (8, 5, 1.5f32);
    let x = random(&mut g, n * d);
    let labels = [0u32, 0, 1, 1, 2, 2, 0, 1];
    let mut dist = vec![0.0; n * n];
    r::pairwise_distance(&mut dist, &x, &x, n, n, d);
    for mode in [MineMode::BatchHard, MineMode::SemiHard] {
        let mut trip = vec![0u32; 3 * n];
        r::triplet_mine(&mut trip, &dist, &labels, n, mode);
        let mut dx = vec![0.0; n * d];
        r::triplet_loss_backward(&mut dx, &x, &dist, &trip, n, d, margin);
        // Mined triplets are held fixed: the selection is piecewise constant.
        check(
            &format!("triplet loss {mode:?}"),
            &x,
            &dx,
            1e-3,
            2e-3,
            |xp| {
                let mut dd = vec![0.0; n * n];
                r::pairwise_distance(&mut dd, xp, xp, n, n, d);
                let mut losses = vec![0.0; n];
                r::triplet_loss_forward(&mut losses, &dd, &trip, n, margin);
                let mut stats = [0.0; 4];
                r::triplet_loss_reduce(&mut stats, &losses, &trip);
                stats[0] as f64
            },
        );
    }
}

#[test]
fn batch_all_triplet_gradient() {
    let mut g = rng(26);
    let (n, d, margin) = (9, 4, 0.8f32);
    let x = random(&mut g, n * d);
    let labels = [0u32, 0, 0, 1, 1, 1, 2, 2, 2];
    let loss = |x: &[f32]| {
        let mut dist = vec![0.0; n * n];
        r::pairwise_distance(&mut dist, x, x, n, n, d);
        let (mut w, mut pl, mut pv) = (vec![0.0; n * n], vec![0.0; n * n], vec![0.0; n * n]);
        r::triplet_all_forward(&mut w, &mut pl, &mut pv, &dist, &labels, n, margin);
        let mut stats = [0.0; 4];
        r::triplet_all_reduce(&mut stats, &w, &pl, &pv, n);
        (stats, w)
    };
    let (stats, w) = loss(&x);
    assert!(
        stats[2] > 0.0 && stats[2] < stats[1],
        "some but not all triplets active: {stats:?}"
    );
    let mut dx = vec![0.0; n * d];
    r::triplet_all_backward(&mut dx, &x, &w, &stats, n, d);
    // The active set is piecewise constant; a small step keeps it.
    check("batch-all triplet loss", &x, &dx, 1e-3, 2e-3, |xp| {
        let (s, _) = loss(xp);
        assert_eq!(s[2], stats[2], "the step changed the active set");
        s[0] as f64
    });
}

#[test]
fn siamese_gradients() {
    let mut g = rng(27);
    let (n, d) = (7, 6);
    let pairs: Vec<u32> = vec![
        0,
        1,
        1,
        2,
        3,
        0,
        4,
        5,
        1,
        6,
        0,
        0,
        1,
        4,
        1,
        3,
        6,
        0,
        u32::MAX,
        u32::MAX,
        u32::MAX,
    ];
    let t = pairs.len() / 3;
    // A difference within a step of 0 sits on |u|'s kink, where no finite difference holds:
    // redraw until every paired coordinate is at least 0.01 apart.
    let near_kink = |x: &[f32]| {
        pairs.chunks(3).filter(|p| p[0] != u32::MAX).any(|p| {
            (0..d).any(|j| (x[p[0] as usize * d + j] - x[p[1] as usize * d + j]).abs() < 0.01)
        })
    };
    let mut x = random(&mut g, n * d);
    while near_kink(&x) {
        x = random(&mut g, n * d);
    }
    let alpha = random(&mut g, d);
    let beta = [0.3f32];
    let loss = |x: &[f32], alpha: &[f32], beta: &[f32]| {
        let (mut l, mut gl) = (vec![0.0; t], vec![0.0; t]);
        r::siamese_forward(&mut l, &mut gl, x, &pairs, alpha, beta, d);
        let mut stats = [0.0; 4];
        r::triplet_loss_reduce(&mut stats, &l, &pairs);
        (stats, gl)
    };
    let (stats, dlogit) = loss(&x, &alpha, &beta);
    assert_eq!(stats[1], (t - 1) as f32);
    let (mut dx, mut da, mut db) = (vec![0.0; n * d], vec![0.0; d], [0.0f32]);
    r::siamese_backward(
        &mut dx, &mut da, &mut db, &x, &pairs, &dlogit, &alpha, &stats, n, d,
    );
    check("siamese dx", &x, &dx, 1e-3, 2e-3, |xp| {
        loss(xp, &alpha, &beta).0[0] as f64
    });
    check("siamese dalpha", &alpha, &da, 1e-3, 2e-3, |ap| {
        loss(&x, ap, &beta).0[0] as f64
    });
    check("siamese dbeta", &beta, &db, 1e-3, 2e-3, |bp| {
        loss(&x, &alpha, bp).0[0] as f64
    });
}

#[test]
fn whole_network_gradient() {
    let (triplet, l2) = (Objective::Triplet, Head::L2);
    for (head, objective, pooling, norm, in_channels) in [
        (l2, triplet, Pooling::Flatten, Norm::None, 1),
        (Head::Sigmoid, triplet, Pooling::Flatten, Norm::None, 1),
        (l2, Objective::Siamese, Pooling::Flatten, Norm::None, 1),
        (l2, triplet, Pooling::AvgMax, Norm::None, 1),
        // Batch statistics: each image's gradient also flows through the others'.
        (l2, triplet, Pooling::AvgMax, Norm::Batch, 1),
        // Colour: three input planes.
        (l2, triplet, Pooling::AvgMax, Norm::Batch, 3),
    ] {
        let arch = Arch {
            side: 12,
            channels: vec![3, 4],
            kernels: vec![3, 3],
            embed_dim: 5,
            head,
            objective,
            pooling,
            norm,
            in_channels,
        };
        let layout = ParamLayout::new(&arch);
        let params = init_params(&arch, &layout, 7);
        let mut g = rng(25);
        let images = random(&mut g, 6 * arch.image_len());
        let labels = [0u32, 0, 1, 1, 2, 2];
        let trip = [
            [0u32, 1, 2],
            [2, 3, 4],
            [4, 5, 0],
            [1, 0, 3],
            [3, 2, 5],
            [5, 4, 1],
        ];
        let pairs = [
            [0u32, 1, 1],
            [0, 2, 0],
            [3, 2, 1],
            [4, 1, 0],
            [5, 4, 1],
            [5, 0, 0],
        ];
        // A large margin keeps every triplet active, so the loss is smooth in the parameters.
        let batch = Batch {
            images: &images,
            labels: &labels,
            triplets: match objective {
                Objective::Triplet => Triplets::Given(&trip),
                Objective::Siamese => Triplets::Pairs(&pairs),
            },
            margin: 4.0,
        };
        let mut e = CpuEngine::new(&arch, &params, CpuKind::Reference).unwrap();
        e.train_step(&batch, None).unwrap();
        let grads = e.gradients().unwrap();
        let loss_at = |p: &[f32]| {
            let mut e = CpuEngine::new(&arch, p, CpuKind::Reference).unwrap();
            e.train_step(&batch, None).unwrap().loss as f64
        };
        // Every tensor, a spread of its elements.
        let (mut checked, mut fallbacks) = (0, 0);
        for t in &layout.tensors {
            let idx: Vec<usize> = (0..t.len)
                .step_by((t.len / 6).max(1))
                .map(|i| t.offset + i)
                .collect();
            for &i in &idx {
                // A step can cross a ReLU or max-pool kink on one side of the point, which
                // breaks the central difference there; the one-sided difference on the other
                // side is then still the derivative. Accept central or either one-sided
                // agreement, and count how often a one-sided one was needed.
                let a = grads[i] as f64;
                let eps = 1e-3f32;
                let mut p = params.clone();
                p[i] += eps;
                let lp = loss_at(&p);
                p[i] -= 2.0 * eps;
                let lm = loss_at(&p);
                let l0 = loss_at(&params);
                let ok = |fd: f64| (fd - a).abs() <= 1e-3 + 2e-2 * a.abs();
                let (central, plus, minus) = (
                    (lp - lm) / (2.0 * eps as f64),
                    (lp - l0) / eps as f64,
                    (l0 - lm) / eps as f64,
                );
                if !ok(central) {
                    assert!(
                        ok(plus) || ok(minus),
                        "{head:?} {}[{}]: analytic {a}, finite differences: central {central}, forward {plus}, backward {minus}",
                        t.name,
                        i - t.offset
                    );
                    fallbacks += 1;
                }
                checked += 1;
            }
        }
        assert!(
            fallbacks * 4 <= checked,
            "{head:?}: {fallbacks} of {checked} coordinates needed a one-sided difference"
        );
        assert!(grads.iter().any(|&v| v != 0.0));
    }
}
