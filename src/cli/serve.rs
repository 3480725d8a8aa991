//! `glassnet serve`: the model behind an HTTP service that batches concurrent requests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::DeviceArgs;
use crate::checkpoint::load_model;
use crate::device::open_engine;
use crate::serve::batcher::{BatchConfig, Batcher};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Model directory written by `glassnet train`.
    #[arg(long)]
    model: PathBuf,
    /// Address to listen on; loopback by default (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Most images per engine call.
    #[arg(long, default_value_t = 64)]
    max_batch: usize,
    /// Longest a batch waits for more requests, in milliseconds.
    #[arg(long, default_value_t = 2.0)]
    max_wait_ms: f64,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = 32)]
    max_body_mib: usize,
    /// Most images in one multipart request.
    #[arg(long, default_value_t = 256)]
    max_images: usize,
    /// Most images waiting for the engine before requests are refused with 503.
    #[arg(long, default_value_t = 4096)]
    max_queued: usize,
    /// Neighbours consulted per image (how many agree is returned).
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Class by majority of the k nearest instead of the nearest image's class.
    #[arg(long)]
    vote: bool,
    /// `off`: never answer unknown, even where the model has calibrated thresholds.
    #[arg(long, value_enum, default_value_t = super::Reject::On)]
    reject: super::Reject,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.k >= 1, "--k {}: at least 1", a.k);
    anyhow::ensure!(
        (1..=4096).contains(&a.max_batch),
        "--max-batch {}: between 1 and 4096",
        a.max_batch
    );
    anyhow::ensure!(
        a.max_wait_ms.is_finite() && (0.0..=1000.0).contains(&a.max_wait_ms),
        "--max-wait-ms {}: between 0 and 1000",
        a.max_wait_ms
    );
    anyhow::ensure!(
        (1..=1024).contains(&a.max_body_mib),
        "--max-body-mib {}: between 1 and 1024",
        a.max_body_mib
    );
    anyhow::ensure!(
        (1..=4096).contains(&a.max_images),
        "--max-images {}: between 1 and 4096",
        a.max_images
    );
    anyhow::ensure!(
        a.max_queued >= a.max_images,
        "--max-queued {}: at least --max-images ({})",
        a.max_queued,
        a.max_images
    );
    let model = Arc::new(load_model(&a.model)?);
    let config = BatchConfig {
        max_batch: a.max_batch,
        max_wait: Duration::from_secs_f64(a.max_wait_ms / 1e3),
        max_queued: a.max_queued,
        k: a.k,
        vote: a.vote,
        reject: a.reject == super::Reject::On,
    };
    if config.reject && model.meta.rejection.is_none() {
        eprintln!("{}", super::NO_REJECTION);
    }
    let (arch, params, choice) = (
        model.meta.arch.clone(),
        model.params.clone(),
        a.device.choice(),
    );
    let (batcher, worker) = Batcher::start(model.clone(), config, move || {
        let (engine, note) = open_engine(choice, &arch, &params)?;
        if let Some(n) = note {
            eprintln!("{n}");
        }
        Ok(engine)
    })?;
    if !a.addr.ip().is_loopback() {
        eprintln!(
            "note: listening on {}, reachable from other machines; there is no authentication",
            a.addr.ip()
        );
    }
    let counters = batcher.counters.clone();
    let device = batcher.device.clone();
    let app = crate::serve::router(model.clone(), batcher, a.max_body_mib << 20, a.max_images);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Decoding is CPU work: more threads than cores only queue it differently.
        .max_blocking_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                * 2,
        )
        .build()?;
    let classes = model.meta.classes.len();
    runtime
        .block_on(crate::serve::serve(a.addr, app, |addr| {
            use std::io::Write;
            println!(
                "listening on http://{addr} ({device}; {classes} classes, {} gallery images; batches of up to {} within {} ms)",
                model.gallery_labels.len(),
                a.max_batch,
                a.max_wait_ms
            );
            let _ = std::io::stdout().flush();
        }))
        .map_err(|e| anyhow::anyhow!("--addr {}: {e}", a.addr))?;
    // Every handler has returned; the router (and so the batcher handle) is gone, so the
    // worker ends once its queue is empty.
    drop(runtime);
    let _ = worker.join();
    println!(
        "shut down after {} requests ({} images in {} batches)",
        counters.requests.load(std::sync::atomic::Ordering::Relaxed),
        counters.images.load(std::sync::atomic::Ordering::Relaxed),
        counters.batches.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}
