//! Gathers concurrent requests into batches for one engine on its own thread.
//!
//! Each request's images arrive decoded and preprocessed. The worker takes the first
//! waiting job, then keeps gathering while the batch is below `max_batch`, `max_wait` has not
//! passed since that first job, and some accepted request is still being read or decoded
//! (`in_flight` above what is gathered): a lone client is answered at once, a crowd fills
//! batches the engine runs at its batch-64 rate.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::checkpoint::Model;
use crate::classify::{classify, Prediction};
use crate::engine::Engine;

/// The answer to one job: a prediction per image, or why the engine failed.
pub type Reply = std::result::Result<Vec<Prediction>, String>;

/// Images of one request, `[n, side * side]` preprocessed.
pub struct Job {
    pub images: Vec<f32>,
    pub n: usize,
    pub reply: oneshot::Sender<Reply>,
}

#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// Most images per engine call (a job larger than this runs alone).
    pub max_batch: usize,
    /// Longest a gathered batch waits for more requests.
    pub max_wait: Duration,
    /// Most images waiting for the engine; a request beyond it is refused (503).
    pub max_queued: usize,
    /// Neighbours consulted per image, and whether they vote.
    pub k: usize,
    pub vote: bool,
}

/// Counters shared by the handlers and the worker.
#[derive(Default, Debug)]
pub struct Counters {
    /// Requests accepted and not yet answered (reading, decoding, queued or computing).
    pub in_flight: AtomicUsize,
    /// Images queued for the engine and not yet taken into a batch.
    pub queued: AtomicUsize,
    pub images: AtomicU64,
    pub batches: AtomicU64,
    pub requests: AtomicU64,
}

/// The handle the HTTP side holds; dropping every clone ends the worker.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<Job>,
    pub counters: Arc<Counters>,
    pub config: BatchConfig,
    /// The engine's description, for /v1/model.
    pub device: Arc<String>,
}

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many images waiting.
    Busy,
    /// The worker has stopped.
    Stopped,
}

impl Batcher {
    /// Starts the worker thread; `open` builds the engine there (GPU engines stay on the
    /// thread that made them). Returns once the engine is ready, or with its error.
    pub fn start(
        model: Arc<Model>,
        config: BatchConfig,
        open: impl FnOnce() -> crate::Result<Box<dyn Engine>> + Send + 'static,
    ) -> crate::Result<(Batcher, std::thread::JoinHandle<()>)> {
        let (tx, rx) = sync_channel::<Job>(config.max_queued.max(1));
        let (ready_tx, ready_rx) = sync_channel::<crate::Result<String>>(1);
        let counters = Arc::new(Counters::default());
        let worker_counters = counters.clone();
        let handle = std::thread::Builder::new()
            .name("glassnet-batcher".into())
            .spawn(move || {
                let mut engine = match open() {
                    Ok(e) => {
                        let _ = ready_tx.send(Ok(e.describe()));
                        e
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                run_worker(&mut *engine, &model, &config, &rx, &worker_counters);
            })
            .map_err(|e| crate::Error::Input(format!("cannot start the batch thread: {e}")))?;
        let device = ready_rx
            .recv()
            .map_err(|_| crate::Error::Input("the batch thread stopped while starting".into()))??;
        Ok((
            Batcher {
                tx,
                counters,
                config,
                device: Arc::new(device),
            },
            handle,
        ))
    }

    /// Queues a job, or refuses it at once when the queue is full.
    pub fn submit(&self, job: Job) -> std::result::Result<(), Refused> {
        let c = &self.counters;
        let n = job.n;
        if c.queued.fetch_add(n, Ordering::SeqCst) + n > self.config.max_queued {
            c.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(Refused::Busy);
        }
        self.tx.try_send(job).map_err(|e| {
            c.queued.fetch_sub(n, Ordering::SeqCst);
            match e {
                std::sync::mpsc::TrySendError::Full(_) => Refused::Busy,
                std::sync::mpsc::TrySendError::Disconnected(_) => Refused::Stopped,
            }
        })
    }
}

/// Takes jobs until every sender is gone, answering each.
fn run_worker(
    engine: &mut dyn Engine,
    model: &Model,
    cfg: &BatchConfig,
    rx: &Receiver<Job>,
    c: &Counters,
) {
    while let Ok(first) = rx.recv() {
        let jobs = gather(first, cfg, rx, c);
        let n: usize = jobs.iter().map(|j| j.n).sum();
        c.queued.fetch_sub(n, Ordering::SeqCst);
        let images: Vec<f32> = jobs.iter().flat_map(|j| j.images.iter().copied()).collect();
        let result = engine
            .embed(&images)
            .map(|emb| classify(model, &emb, cfg.k, cfg.vote))
            .map_err(|e| e.to_string());
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.images.fetch_add(n as u64, Ordering::Relaxed);
        let mut at = 0;
        for job in jobs {
            let reply = match &result {
                Ok(preds) => Ok(preds[at..at + job.n].to_vec()),
                Err(e) => Err(e.clone()),
            };
            at += job.n;
            // The client may have gone; its answer is then dropped.
            let _ = job.reply.send(reply);
        }
    }
}

/// The batch that starts with `first` (see the module doc for when it stops growing).
fn gather(first: Job, cfg: &BatchConfig, rx: &Receiver<Job>, c: &Counters) -> Vec<Job> {
    let deadline = Instant::now() + cfg.max_wait;
    let mut n = first.n;
    let mut jobs = vec![first];
    while n < cfg.max_batch {
        let next = match rx.try_recv() {
            Ok(job) => Some(job),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                let now = Instant::now();
                if now >= deadline || c.in_flight.load(Ordering::SeqCst) <= jobs.len() {
                    break;
                }
                // Short naps, so a request that finishes decoding is seen soon and one that
                // is abandoned (in_flight drops) does not hold the batch to the deadline.
                match rx.recv_timeout((deadline - now).min(Duration::from_micros(250))) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        if let Some(job) = next {
            n += job.n;
            jobs.push(job);
        }
    }
    jobs
}
