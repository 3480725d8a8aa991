//! The whole reference network (DESIGN.md) with the triplet loss, forward and backward, on
//! the GPU, the CPU fast path and the CPU reference; and bit-identical GPU steps.

mod common;
use common::{assert_close, gpu, random, rng};
use glassnet::engine::cpu::{CpuEngine, CpuKind};
use glassnet::engine::gpu::GpuEngine;
use glassnet::engine::{Batch, Engine, Triplets};
use glassnet::model::{init_params, Arch, Head, Norm, Objective, ParamLayout, Pooling};
use glassnet::optim::OptimConfig;
use glassnet::shapes::MineMode;

fn batch_data(arch: &Arch, n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut g = rng(seed);
    (
        random(&mut g, n * arch.image_len()),
        (0..n as u32).map(|i| i % 3).collect(),
    )
}

/// A small network of two conv blocks (16 x 16 input), for tests of how steps run.
fn two_blocks() -> Arch {
    Arch {
        side: 16,
        channels: vec![4, 8],
        kernels: vec![3, 3],
        embed_dim: 8,
        head: Head::L2,
        objective: Default::default(),
        pooling: Default::default(),
        norm: Default::default(),
        in_channels: 1,
    }
}

/// Compares two engines' outputs of one step: stats, embeddings and every gradient by name.
fn compare(tag: &str, a: &mut dyn Engine, b: &mut dyn Engine, batch: &Batch) {
    let sa = a.train_step(batch, None).unwrap();
    let sb = b.train_step(batch, None).unwrap();
    assert_eq!(
        (sa.valid, sa.active),
        (sb.valid, sb.active),
        "{tag}: triplet counts"
    );
    assert!(
        (sa.loss - sb.loss).abs() <= 1e-4 + 1e-4 * sb.loss.abs(),
        "{tag}: loss {} vs {}",
        sa.loss,
        sb.loss
    );
    assert_close(
        &format!("{tag} embeddings"),
        &a.embed(batch.images).unwrap(),
        &b.embed(batch.images).unwrap(),
        1e-5,
        1e-4,
    );
    // Batch normalisations' running statistics, moved alike by the batch.
    let (pa, pb) = (a.params().unwrap(), b.params().unwrap());
    for t in a
        .layout()
        .tensors
        .clone()
        .iter()
        .filter(|t| t.name.contains("running"))
    {
        assert_close(
            &format!("{tag} {} after the step", t.name),
            &pa[t.range()],
            &pb[t.range()],
            1e-5,
            1e-4,
        );
    }
    let (ga, gb) = (a.gradients().unwrap(), b.gradients().unwrap());
    // The trained tensors: a frozen conv bias under a normalisation has a gradient of pure
    // rounding noise, which nothing reads.
    let trainable = a.layout().trainable;
    for t in a
        .layout()
        .tensors
        .clone()
        .iter()
        .filter(|t| t.offset < trainable)
    {
        let want = &gb[t.range()];
        // Gradients sum over up to 12 x 112 x 112 terms in different orders: tolerance is
        // relative to the tensor's own scale.
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert_close(
            &format!("{tag} d{}", t.name),
            &ga[t.range()],
            want,
            1e-4 * scale,
            1e-3,
        );
    }
}

#[test]
fn reference_network_matches_across_backends() {
    let Some(ctx) = gpu() else { return };
    // The last: colour input, three planes into the first convolution.
    for (head, pooling, norm, in_channels) in [
        (Head::L2, Pooling::Flatten, Norm::None, 1),
        (Head::Sigmoid, Pooling::Flatten, Norm::None, 1),
        (Head::L2, Pooling::AvgMax, Norm::None, 1),
        (Head::L2, Pooling::AvgMax, Norm::Batch, 1),
        (Head::L2, Pooling::AvgMax, Norm::Batch, 3),
    ] {
        let arch = Arch {
            pooling,
            norm,
            in_channels,
            ..Arch::reference(head)
        };
        let params = init_params(&arch, &ParamLayout::new(&arch), 3);
        let (images, labels) = batch_data(&arch, 12, 30);
        let trip = [
            [0u32, 3, 1],
            [1, 4, 2],
            [2, 5, 0],
            [6, 9, 7],
            [7, 10, 8],
            [8, 11, 6],
        ];
        let mut reference = CpuEngine::new(&arch, &params, CpuKind::Reference).unwrap();
        let mut fast = CpuEngine::new(&arch, &params, CpuKind::Fast).unwrap();
        let mut gpu = GpuEngine::new(ctx.clone(), &arch, &params).unwrap();
        // Margin large enough that the given triplets are active under a fresh network.
        let given = Batch {
            images: &images,
            labels: &labels,
            triplets: Triplets::Given(&trip),
            margin: 1.0,
        };
        compare(
            &format!("{head:?} {pooling:?} {norm:?} {in_channels} gpu vs reference"),
            &mut gpu,
            &mut reference,
            &given,
        );
        // A fresh reference: the one above has taken a step, which moved its running
        // statistics once more than fast's.
        let mut reference = CpuEngine::new(&arch, &params, CpuKind::Reference).unwrap();
        compare(
            &format!("{head:?} {pooling:?} {norm:?} {in_channels} fast vs reference"),
            &mut fast,
            &mut reference,
            &given,
        );
        let mined = Batch {
            triplets: Triplets::Mine(MineMode::BatchHard),
            ..given
        };
        compare(
            &format!("{head:?} {pooling:?} {norm:?} {in_channels} mined gpu vs fast"),
            &mut gpu,
            &mut fast,
            &mined,
        );
    }
}

#[test]
fn siamese_network_matches_across_backends() {
    let Some(ctx) = gpu() else { return };
    let arch = Arch {
        objective: Objective::Siamese,
        ..Arch::reference(Head::L2)
    };
    let layout = ParamLayout::new(&arch);
    assert!(layout.siamese().is_some());
    let params = init_params(&arch, &layout, 6);
    let (images, labels) = batch_data(&arch, 12, 33);
    let mut g = rng(34);
    let pairs = glassnet::metric::sampler::sample_pairs(&labels, &mut g);
    assert!(pairs
        .iter()
        .all(|p| (labels[p[0] as usize] == labels[p[1] as usize]) == (p[2] == 1)));
    let batch = Batch {
        images: &images,
        labels: &labels,
        triplets: Triplets::Pairs(&pairs),
        margin: 0.0,
    };
    let mut reference = CpuEngine::new(&arch, &params, CpuKind::Reference).unwrap();
    let mut fast = CpuEngine::new(&arch, &params, CpuKind::Fast).unwrap();
    let mut gpu = GpuEngine::new(ctx, &arch, &params).unwrap();
    compare("siamese gpu vs reference", &mut gpu, &mut reference, &batch);
    compare(
        "siamese fast vs reference",
        &mut fast,
        &mut reference,
        &batch,
    );
    // Triplets are refused by a Siamese model (and pairs by a triplet one).
    let wrong = Batch {
        triplets: Triplets::Mine(MineMode::BatchAll),
        ..batch
    };
    assert!(fast.train_step(&wrong, None).is_err());
}

#[test]
fn gpu_step_is_bit_identical_run_to_run() {
    let Some(ctx) = gpu() else { return };
    // Without normalisation (the fused conv + ReLU + pooling pass) and with it.
    for norm in [Norm::None, Norm::Batch] {
        let arch = Arch {
            side: 28,
            channels: vec![5, 17],
            kernels: vec![5, 3],
            embed_dim: 16,
            head: Head::L2,
            objective: Default::default(),
            pooling: Default::default(),
            norm,
            in_channels: 1,
        };
        let params = init_params(&arch, &ParamLayout::new(&arch), 4);
        let (images, labels) = batch_data(&arch, 9, 31);
        let batch = Batch {
            images: &images,
            labels: &labels,
            triplets: Triplets::Mine(MineMode::SemiHard),
            margin: 0.3,
        };
        let opt = OptimConfig::default();
        let run = || {
            let mut e = GpuEngine::new(ctx.clone(), &arch, &params).unwrap();
            let s1 = e.train_step(&batch, Some(opt.at_step(1))).unwrap();
            let s2 = e.train_step(&batch, Some(opt.at_step(2))).unwrap();
            (s1, s2, e.gradients().unwrap(), e.params().unwrap())
        };
        let (a, b) = (run(), run());
        assert_eq!((a.0, a.1), (b.0, b.1), "{norm:?}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&a.2),
            bits(&b.2),
            "{norm:?}: gradients differ between identical runs"
        );
        assert_eq!(
            bits(&a.3),
            bits(&b.3),
            "{norm:?}: parameters differ between identical runs"
        );
        assert_ne!(
            bits(&a.3),
            bits(&params),
            "{norm:?}: the update changed nothing"
        );
    }
}

#[test]
fn training_steps_agree_between_gpu_and_cpu() {
    let Some(ctx) = gpu() else { return };
    // Without normalisation, blocks 1 and 2 (16x16, 8x8) take the fused conv + ReLU +
    // pooling pass on the GPU, block 3 (4x4) the separate passes; with it, every block takes
    // conv, batchnorm_forward, ReLU and pooling: all against the CPU. The last with colour
    // input (three planes into the first convolution).
    for (norm, in_channels) in [(Norm::None, 1), (Norm::Batch, 1), (Norm::Batch, 3)] {
        let arch = Arch {
            side: 16,
            channels: vec![4, 8, 6],
            kernels: vec![3, 3, 3],
            embed_dim: 8,
            head: Head::L2,
            objective: Default::default(),
            pooling: Default::default(),
            norm,
            in_channels,
        };
        let params = init_params(&arch, &ParamLayout::new(&arch), 5);
        let (images, labels) = batch_data(&arch, 12, 32);
        let batch = Batch {
            images: &images,
            labels: &labels,
            triplets: Triplets::Mine(MineMode::BatchHard),
            margin: 0.5,
        };
        let opt = OptimConfig {
            lr: 1e-2,
            ..Default::default()
        };
        let mut g = GpuEngine::new(ctx.clone(), &arch, &params).unwrap();
        let mut c = CpuEngine::new(&arch, &params, CpuKind::Fast).unwrap();
        let mut losses = Vec::new();
        for t in 1..=5 {
            let sg = g.train_step(&batch, Some(opt.at_step(t))).unwrap();
            let sc = c.train_step(&batch, Some(opt.at_step(t))).unwrap();
            assert!(
                (sg.loss - sc.loss).abs() < 1e-3,
                "{norm:?} {in_channels} step {t}: gpu loss {} cpu loss {}",
                sg.loss,
                sc.loss
            );
            losses.push(sc.loss);
        }
        assert!(
            losses[4] < losses[0],
            "{norm:?} {in_channels}: loss did not fall over 5 steps: {losses:?}"
        );
        assert_close(
            &format!("{norm:?} {in_channels} params after 5 steps"),
            &g.params().unwrap(),
            &c.params().unwrap(),
            1e-4,
            1e-3,
        );
    }
}

#[test]
fn a_profiled_step_times_every_dispatch_and_trains_as_a_plain_one() {
    let Some(ctx) = gpu() else { return };
    let arch = two_blocks();
    let params = init_params(&arch, &ParamLayout::new(&arch), 6);
    let (images, labels) = batch_data(&arch, 10, 33);
    let batch = Batch {
        images: &images,
        labels: &labels,
        triplets: Triplets::Mine(MineMode::BatchAll),
        margin: 0.4,
    };
    let opt = OptimConfig::default();
    // Plain steps (the second one submits commands encoded during the first) against a
    // profiled first step and a plain second one.
    let mut plain = GpuEngine::new(ctx.clone(), &arch, &params).unwrap();
    let mut timed = GpuEngine::new(ctx.clone(), &arch, &params).unwrap();
    let a1 = plain.train_step(&batch, Some(opt.at_step(1))).unwrap();
    let a2 = plain.train_step(&batch, Some(opt.at_step(2))).unwrap();
    let profile = timed.profile_step(&batch, Some(opt.at_step(1))).unwrap();
    let b2 = timed.train_step(&batch, Some(opt.at_step(2))).unwrap();
    assert_eq!(a2, b2, "the step after a profiled one differs");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&plain.params().unwrap()),
        bits(&timed.params().unwrap()),
        "a profiled step trained differently"
    );
    assert_eq!(
        profile.is_some(),
        ctx.can_time_dispatches(),
        "a profile exactly where the adapter has timestamps inside passes"
    );
    if let Some(p) = profile {
        // Forward (2 blocks, dense, head), loss, backward and the update: dozens of passes.
        assert!(p.len() > 20, "only {} dispatches timed", p.len());
        assert!(p.iter().any(|(n, _)| n.starts_with("conv2d_forward")));
        assert_eq!(p.last().unwrap().0, "adam_update");
        assert!(p.iter().all(|(_, ms)| ms.is_finite() && *ms >= 0.0));
        assert!(p.iter().map(|(_, ms)| ms).sum::<f64>() > 0.0);
    }
    assert!(a1.loss.is_finite());
}

#[test]
fn steps_submitted_one_ahead_train_as_steps_run_one_at_a_time() {
    let Some(ctx) = gpu() else { return };
    let arch = two_blocks();
    let params = init_params(&arch, &ParamLayout::new(&arch), 7);
    let opt = OptimConfig::default();
    // Three different batches: each step's upload must not reach the step before it.
    let data: Vec<(Vec<f32>, Vec<u32>)> = (0..3).map(|i| batch_data(&arch, 10, 40 + i)).collect();
    let batch = |i: usize| Batch {
        images: &data[i].0,
        labels: &data[i].1,
        triplets: Triplets::Mine(MineMode::BatchHard),
        margin: 0.3,
    };
    let mut one = GpuEngine::new(ctx.clone(), &arch, &params).unwrap();
    let plain: Vec<_> = (0..3)
        .map(|i| {
            one.train_step(&batch(i), Some(opt.at_step(i as u64 + 1)))
                .unwrap()
        })
        .collect();
    let mut ahead = GpuEngine::new(ctx.clone(), &arch, &params).unwrap();
    assert!(ahead.finish_step().is_err(), "nothing was submitted");
    ahead.submit_step(&batch(0), Some(opt.at_step(1))).unwrap();
    ahead.submit_step(&batch(1), Some(opt.at_step(2))).unwrap();
    assert!(
        ahead.submit_step(&batch(2), Some(opt.at_step(3))).is_err(),
        "a third unfinished step"
    );
    assert!(ahead.train_step(&batch(2), Some(opt.at_step(3))).is_err());
    let s0 = ahead.finish_step().unwrap();
    ahead.submit_step(&batch(2), Some(opt.at_step(3))).unwrap();
    let (s1, s2) = (ahead.finish_step().unwrap(), ahead.finish_step().unwrap());
    assert_eq!(vec![s0, s1, s2], plain, "statistics, oldest first");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&one.params().unwrap()),
        bits(&ahead.params().unwrap()),
        "parameters after three steps"
    );
}
