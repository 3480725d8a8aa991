//! Gathers concurrent requests into batches for one engine on its own thread.
//!
//! Each request's images arrive as the bytes its client sent. The worker takes the first
//! waiting job, then keeps gathering while the batch is below `max_batch`, `max_wait` has not
//! passed since that first job, and either some accepted request is still being read
//! (`in_flight` above what is gathered) or the batch is smaller than the load the previous
//! batch saw (the requests in flight when it finished computing): a lone client is answered
//! at once, a crowd fills batches the engine runs at its batch-64 rate. Without the second
//! rule a crowd of 64 split into alternating part batches (the clients just answered are
//! not in flight until they send again, a few hundred microseconds later). The batch's images are then decoded and
//! preprocessed in parallel on the same rayon pool the CPU engine computes on, right before
//! the engine call: decoding on other threads while the engine ran preempted its workers,
//! and a batch waits for its slowest worker (64 clients: 63% of the batch-64 rate, engine
//! busy 95% of the time but 1.2x slower per image).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use rayon::prelude::*;
use tokio::sync::oneshot;

use crate::checkpoint::Model;
use crate::classify::{classify, Prediction};
use crate::data::colour::Colour;
use crate::data::folder::decode_picture_bytes;
use crate::engine::Engine;

/// Why a job got no predictions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
    /// One of its images cannot be decoded (the message names it): the client's fault.
    BadImage(String),
    /// The engine failed: the server's.
    Engine(String),
}

/// The answer to one job: a prediction per image, or why there is none.
pub type Reply = std::result::Result<Vec<Prediction>, JobError>;

/// The images of one request, as (name for errors, encoded bytes).
pub struct Job {
    pub parts: Vec<(String, Bytes)>,
    pub reply: oneshot::Sender<Reply>,
}

impl Job {
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
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
    /// Answer unknown beyond the model's calibrated thresholds.
    pub reject: bool,
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
    /// Time the engine spent embedding and classifying, in microseconds (against wall time:
    /// how busy the engine is).
    pub busy_us: AtomicU64,
    /// Time batches spent gathering after their first job, in microseconds.
    pub gather_us: AtomicU64,
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
        let n = job.len();
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
    // Requests in flight when the last batch finished computing: the load to gather for.
    let mut load = 0;
    while let Ok(first) = rx.recv() {
        let t0 = Instant::now();
        let jobs = gather(first, cfg, rx, c, load);
        c.gather_us
            .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        let n: usize = jobs.iter().map(Job::len).sum();
        c.queued.fetch_sub(n, Ordering::SeqCst);
        let started = Instant::now();
        // Per job: its preprocessed images `[len, channels, side, side]`, or the first bad one.
        let colour = model.meta.preprocess.colour == Colour::Rgb;
        let decoded: Vec<std::result::Result<Vec<f32>, JobError>> = jobs
            .par_iter()
            .map(|job| {
                let images: Vec<Vec<f32>> = job
                    .parts
                    .par_iter()
                    .map(|(name, bytes)| {
                        decode_picture_bytes(bytes, name, colour)
                            .map(|img| model.meta.preprocess.apply_picture(&img))
                            .map_err(|e| JobError::BadImage(e.to_string()))
                    })
                    .collect::<std::result::Result<_, _>>()?;
                Ok(images.concat())
            })
            .collect();
        let images: Vec<f32> = decoded.iter().flatten().flatten().copied().collect();
        let result = if images.is_empty() {
            Ok(Vec::new())
        } else {
            engine
                .embed(&images)
                .map(|emb| classify(model, &emb, cfg.k, cfg.vote, cfg.reject))
                .map_err(|e| JobError::Engine(e.to_string()))
        };
        c.busy_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        load = c.in_flight.load(Ordering::SeqCst);
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.images.fetch_add(n as u64, Ordering::Relaxed);
        let mut at = 0;
        for (job, dec) in jobs.into_iter().zip(decoded) {
            let reply = dec.and_then(|_| {
                let preds = result.as_ref().map_err(Clone::clone)?;
                at += job.len();
                Ok(preds[at - job.len()..at].to_vec())
            });
            // The client may have gone; its answer is then dropped.
            let _ = job.reply.send(reply);
        }
    }
}

/// The batch that starts with `first`, gathering for `load` requests at most `max_wait`
/// (see the module doc for when it stops growing).
fn gather(
    first: Job,
    cfg: &BatchConfig,
    rx: &Receiver<Job>,
    c: &Counters,
    load: usize,
) -> Vec<Job> {
    let deadline = Instant::now() + cfg.max_wait;
    let mut n = first.len();
    let mut jobs = vec![first];
    while n < cfg.max_batch {
        let next = match rx.try_recv() {
            Ok(job) => Some(job),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                let now = Instant::now();
                let reading = c.in_flight.load(Ordering::SeqCst) > jobs.len();
                if now >= deadline || !(reading || jobs.len() < load) {
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
            n += job.len();
            jobs.push(job);
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: usize) -> Job {
        Job {
            parts: vec![("x".into(), Bytes::new()); n],
            reply: oneshot::channel().0,
        }
    }

    fn config(max_batch: usize, wait_ms: u64) -> BatchConfig {
        BatchConfig {
            max_batch,
            max_wait: Duration::from_millis(wait_ms),
            max_queued: 1000,
            k: 1,
            vote: false,
            reject: true,
        }
    }

    fn sizes(jobs: &[Job]) -> Vec<usize> {
        jobs.iter().map(Job::len).collect()
    }

    #[test]
    fn a_lone_request_runs_at_once() {
        let (tx, rx) = sync_channel(8);
        let c = Counters::default();
        c.in_flight.store(1, Ordering::SeqCst);
        let t = Instant::now();
        let jobs = gather(job(1), &config(64, 500), &rx, &c, 1);
        assert_eq!(sizes(&jobs), [1]);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
        drop(tx);
    }

    #[test]
    fn requests_still_being_read_are_waited_for_until_the_deadline() {
        let (tx, rx) = sync_channel(8);
        let c = Counters::default();
        c.in_flight.store(4, Ordering::SeqCst);
        tx.send(job(2)).unwrap();
        let late = tx.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            late.send(job(3)).unwrap();
        });
        let t = Instant::now();
        // Two jobs arrive; the fourth request in flight never does: the deadline ends it.
        let jobs = gather(job(1), &config(64, 300), &rx, &c, 0);
        sender.join().unwrap();
        assert_eq!(sizes(&jobs), [1, 2, 3]);
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(290), "{waited:?}");
        assert!(waited < Duration::from_millis(2000), "{waited:?}");
    }

    #[test]
    fn a_crowd_just_answered_is_waited_for_not_split() {
        let (tx, rx) = sync_channel(8);
        let c = Counters::default();
        // The last batch finished with 3 requests in flight; only this one is now.
        c.in_flight.store(1, Ordering::SeqCst);
        let late = tx.clone();
        let sender = std::thread::spawn(move || {
            for n in [1, 1] {
                std::thread::sleep(Duration::from_millis(5));
                late.send(job(n)).unwrap();
            }
        });
        let t = Instant::now();
        let jobs = gather(job(1), &config(64, 500), &rx, &c, 3);
        sender.join().unwrap();
        assert_eq!(sizes(&jobs), [1, 1, 1]);
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
        // A load that has gone is waited for once, until the deadline, no longer.
        let t = Instant::now();
        let jobs = gather(job(1), &config(64, 50), &rx, &c, 3);
        assert_eq!(sizes(&jobs), [1]);
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(45), "{waited:?}");
        assert!(waited < Duration::from_millis(1000), "{waited:?}");
        drop(tx);
    }

    #[test]
    fn a_full_batch_runs_without_waiting() {
        let (tx, rx) = sync_channel(8);
        let c = Counters::default();
        c.in_flight.store(10, Ordering::SeqCst);
        for n in [3, 3, 3] {
            tx.send(job(n)).unwrap();
        }
        let t = Instant::now();
        let jobs = gather(job(2), &config(8, 500), &rx, &c, 64);
        assert_eq!(sizes(&jobs), [2, 3, 3], "stops once 8 images are reached");
        assert!(t.elapsed() < Duration::from_millis(100));
        assert_eq!(
            rx.try_recv().unwrap().len(),
            3,
            "the rest waits for the next batch"
        );
    }

    #[test]
    fn a_full_queue_is_refused_not_blocked() {
        let cfg = BatchConfig {
            max_queued: 4,
            ..config(64, 1)
        };
        let (tx, _rx) = sync_channel(4);
        let b = Batcher {
            tx,
            counters: Arc::new(Counters::default()),
            config: cfg,
            device: Arc::new("test".into()),
        };
        assert!(b.submit(job(3)).is_ok());
        assert_eq!(b.submit(job(2)).unwrap_err(), Refused::Busy);
        assert_eq!(b.counters.queued.load(Ordering::SeqCst), 3);
    }
}
