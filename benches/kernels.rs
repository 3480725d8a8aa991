//! `cargo bench` (criterion): the kernels at the reference network's shapes (a step of 32
//! triplets = 96 images), each validated against the CPU reference before it is timed. On the
//! CPU fast path: the conv passes and the SGEMM they run on. On the GPU (when an adapter
//! exists; with CI=true a missing one fails): the plain matrix product (the ceiling), the conv
//! passes, pooling, ReLU, dense, distances and Adam. Throughput is reported in elements/s
//! where an element is one FLOP (compute kernels) or as bytes/s (memory-only kernels). The
//! device and the commit are printed before each group. `glassnet bench` gives the same
//! measurements as one table beside the end-to-end rates.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glassnet::bench::{gpu_conv_cases, gpu_gemm_cases, gpu_layer_cases, GpuCase};
use glassnet::cpu::{fast, reference as r};
use glassnet::gpu::{AdapterChoice, GpuContext};
use glassnet::model::{Arch, Head};
use glassnet::shapes::Conv2dShape;
use rand::{Rng, SeedableRng};

const BATCH: usize = 96;

fn random(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn close(name: &str, got: &[f32], want: &[f32]) {
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale + 1e-3 * w.abs(),
            "{name}: element {i} is {g}, the reference says {w}; not timing a wrong kernel"
        );
    }
}

fn cpu(c: &mut Criterion) {
    let arch = Arch::reference(Head::L2);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    println!(
        "cpu: the fast path (im2col + SGEMM, rayon), commit {}",
        env!("GLASSNET_COMMIT")
    );
    let mut g = c.benchmark_group("cpu");
    g.sample_size(10);
    for l in 0..arch.channels.len() {
        let s = arch.conv(l, BATCH);
        let (inp, w, b, dout) = (
            random(&mut rng, s.in_len()),
            random(&mut rng, s.weight_len()),
            random(&mut rng, s.cout),
            random(&mut rng, s.out_len()),
        );
        // Validate all three passes on two images against the reference.
        let two = Conv2dShape { batch: 2, ..s };
        let (mut got, mut want) = (vec![0.0; two.out_len()], vec![0.0; two.out_len()]);
        fast::conv2d_forward(&mut got, &inp, &w, &b, two);
        r::conv2d_forward(&mut want, &inp, &w, &b, two);
        close("conv2d_forward", &got, &want);
        let (mut got, mut want) = (vec![0.0; two.in_len()], vec![0.0; two.in_len()]);
        fast::conv2d_backward_input(&mut got, &dout, &w, two);
        r::conv2d_backward_input(&mut want, &dout, &w, two);
        close("conv2d_backward_input", &got, &want);
        let (mut got, mut want) = (vec![0.0; s.weight_len()], vec![0.0; s.weight_len()]);
        fast::conv2d_backward_weight(&mut got, &dout, &inp, two);
        r::conv2d_backward_weight(&mut want, &dout, &inp, two);
        close("conv2d_backward_weight", &got, &want);

        let shape = format!(
            "{}x{}x{}x{} k{} -> {}",
            s.batch, s.cin, s.h, s.w, s.k, s.cout
        );
        g.throughput(Throughput::Elements(s.flops() as u64));
        let mut o = vec![0.0; s.out_len()];
        g.bench_function(format!("conv2d_forward/{shape}"), |bch| {
            bch.iter(|| fast::conv2d_forward(&mut o, &inp, &w, &b, s))
        });
        if l > 0 {
            // Training never needs the images' gradient (layer 1's input).
            let mut di = vec![0.0; s.in_len()];
            g.bench_function(format!("conv2d_backward_input/{shape}"), |bch| {
                bch.iter(|| fast::conv2d_backward_input(&mut di, &dout, &w, s))
            });
        }
        let mut dw = vec![0.0; s.weight_len()];
        g.bench_function(format!("conv2d_backward_weight/{shape}"), |bch| {
            bch.iter(|| fast::conv2d_backward_weight(&mut dw, &dout, &inp, s))
        });
    }
    g.finish();
}

fn gpu(c: &mut Criterion) {
    let ctx = match GpuContext::new(AdapterChoice::Any) {
        Ok(ctx) => ctx,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and no GPU adapter: {e}")
        }
        Err(e) => {
            eprintln!("no GPU adapter, GPU kernels not timed: {e}");
            return;
        }
    };
    let build = || -> glassnet::Result<Vec<GpuCase>> {
        let mut cases = gpu_gemm_cases(&ctx, BATCH)?;
        cases.extend(gpu_conv_cases(&ctx, BATCH)?);
        cases.extend(gpu_layer_cases(&ctx, BATCH)?);
        Ok(cases)
    };
    let cases = build().unwrap_or_else(|e| panic!("gpu kernels: {e}"));
    // Criterion cuts long ids short, so the device is named here once.
    println!(
        "gpu: {}, commit {}",
        ctx.adapter.summary(),
        env!("GLASSNET_COMMIT")
    );
    let mut g = c.benchmark_group("gpu");
    g.sample_size(10);
    for case in &cases {
        g.throughput(if case.flops > 0.0 {
            Throughput::Elements(case.flops as u64)
        } else {
            Throughput::Bytes(4 * case.floats as u64)
        });
        g.bench_function(format!("{}/{}", case.name, case.shape), |b| {
            b.iter(|| case.run(&ctx).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, cpu, gpu);
criterion_main!(benches);
