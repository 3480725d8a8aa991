//! `glassnet bench`: kernel times and end-to-end rates on the chosen device.

use clap::Args;

use super::DeviceArgs;
use crate::bench::{
    cpu_gemm_gflops, cpu_kernels, end_to_end, gpu_kernels, reference_params, BenchReport,
};
use crate::device::open_engine;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::model::{Norm, Pooling};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Images per kernel call (the training step's 32 triplets = 96 images).
    #[arg(long, default_value_t = 96)]
    batch: usize,
    /// Timed repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Skip the per-kernel table (end-to-end rates only).
    #[arg(long)]
    no_kernels: bool,
    /// The end-to-end network's input to its dense layer: avg-max (train's default) or
    /// flatten (the paper's).
    #[arg(long, value_enum, default_value_t = Pooling::AvgMax)]
    pooling: Pooling,
    /// What follows each convolution in the end-to-end network: batch (batch normalisation,
    /// train's default) or none (the paper's).
    #[arg(long, value_enum, default_value_t = Norm::Batch)]
    norm: Norm,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.batch >= 1 && a.reps >= 1,
        "--batch and --reps must be at least 1"
    );
    let (arch, params) = reference_params(a.pooling, a.norm);
    let (mut engine, note) = open_engine(a.device.choice(), &arch, &params)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let device = engine.describe();
    let on_gpu = device.starts_with("gpu");
    let mut autotune = Vec::new();
    let (kernels, gemm) = if a.no_kernels {
        (Vec::new(), Vec::new())
    } else if on_gpu {
        let choice = if matches!(a.device.choice(), crate::device::DeviceChoice::Gpu) {
            AdapterChoice::Any
        } else {
            AdapterChoice::Hardware
        };
        let ctx = GpuContext::new(choice)?;
        let (gemm, kernels) = gpu_kernels(&ctx, a.batch, a.reps)?;
        autotune = ctx.tune.choices();
        (kernels, gemm)
    } else {
        (cpu_kernels(a.batch, a.reps)?, Vec::new())
    };
    let gemm_gflops = if on_gpu {
        gemm.iter().map(|k| k.gflops).fold(0.0, f64::max)
    } else {
        cpu_gemm_gflops()
    };
    let e2e = end_to_end(engine.as_mut(), a.reps)?;
    let report = BenchReport {
        device,
        network: arch.describe(),
        commit: option_env!("GLASSNET_COMMIT").unwrap_or("unknown").into(),
        gemm_gflops,
        gemm,
        kernels,
        autotune,
        train_images_per_s: e2e.train,
        train_sync_images_per_s: e2e.train_sync,
        infer_images_per_s: e2e.infer,
        latency_ms: e2e.latency_ms,
        step_profile: e2e.step_profile,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("device: {}", report.device);
    println!("network: {}", report.network);
    if !report.kernels.is_empty() {
        println!("rates at each kernel's fastest run (the median is shown beside it)");
        println!(
            "{:<31} {:<26} {:>9} {:>9} {:>8} {:>10} {:>6}",
            "kernel", "shape", "median ms", "best ms", "GFLOP/s", "of ceiling", "GB/s"
        );
        for k in report.gemm.iter().chain(&report.kernels) {
            let (rate, share) = if k.gflops > 0.0 {
                (
                    format!("{:.2}", k.gflops),
                    format!("{:.0}%", 100.0 * k.gflops / report.gemm_gflops.max(1e-9)),
                )
            } else {
                ("-".into(), "-".into())
            };
            println!(
                "{:<31} {:<26} {:>9.2} {:>9.2} {:>8} {:>10} {:>6.2}",
                k.name, k.shape, k.ms, k.best_ms, rate, share, k.gbs
            );
        }
    }
    for (key, variant) in &report.autotune {
        println!("autotune: {key} -> {variant}");
    }
    println!(
        "ceiling (fastest plain matrix product on this device): {:.1} GFLOP/s",
        report.gemm_gflops
    );
    println!(
        "training:  {:.1} images/s (96 images per step, batch-all; each step submitted before \
         the last one's loss is read, as `train` runs them), {:.1} one step at a time",
        report.train_images_per_s, report.train_sync_images_per_s
    );
    println!(
        "inference: {:.1} images/s at batch 64, {:.2} ms at batch 1",
        report.infer_images_per_s, report.latency_ms
    );
    print_profile(&report);
    Ok(())
}

/// The step profile: each dispatch's GPU time, then the totals by kernel.
fn print_profile(report: &BenchReport) {
    let p = &report.step_profile;
    if p.is_empty() {
        return;
    }
    let total: f64 = p.iter().map(|(_, ms)| ms).sum();
    let wall = 96.0 / report.train_images_per_s * 1e3;
    println!(
        "training step by dispatch (GPU timestamps, median): {} dispatches, {total:.3} ms on the GPU of a {wall:.3} ms step",
        p.len()
    );
    for (i, (name, ms)) in p.iter().enumerate() {
        println!("  {:>2} {name:<40} {ms:>8.3} ms", i + 1);
    }
    let mut by: Vec<(String, f64, usize)> = Vec::new();
    for (name, ms) in p {
        match by.iter_mut().find(|(n, _, _)| n == name) {
            Some(e) => {
                e.1 += ms;
                e.2 += 1;
            }
            None => by.push((name.clone(), *ms, 1)),
        }
    }
    by.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("by kernel:");
    for (name, ms, n) in by {
        println!(
            "  {name:<40} {ms:>8.3} ms ({n}x, {:.0}%)",
            100.0 * ms / total.max(1e-12)
        );
    }
}
