//! Load test of `glassnet serve` on loopback (not a timed unit test): for each client count,
//! that many concurrent keep-alive clients post images from a folder until a fixed number of
//! requests is answered; prints images/s, p50 / p99 latency and errors.
//!
//!     cargo bench --bench serve_load -- --addr 127.0.0.1:8080 --images DIR \
//!         [--clients 1,8,64] [--requests 10000] [--warmup 200]
//!
//! benches/serve_load.sh starts the server and puts this beside `glassnet bench`'s batch-64
//! inference rate from the same run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

struct Args {
    addr: SocketAddr,
    images: PathBuf,
    clients: Vec<usize>,
    requests: usize,
    warmup: usize,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8080".parse().unwrap(),
        images: PathBuf::new(),
        clients: vec![1, 8, 64],
        requests: 10_000,
        warmup: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // cargo bench passes --bench to every bench binary.
        if flag == "--bench" {
            continue;
        }
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = v.parse().expect("--addr HOST:PORT"),
            "--images" => a.images = v.into(),
            "--clients" => {
                a.clients = v
                    .split(',')
                    .map(|c| c.parse().expect("--clients"))
                    .collect()
            }
            "--requests" => a.requests = v.parse().expect("--requests"),
            "--warmup" => a.warmup = v.parse().expect("--warmup"),
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

/// Every image file under `dir`, read into memory.
fn bodies(dir: &std::path::Path) -> Vec<Bytes> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("--images {}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| {
                ["png", "jpg", "jpeg", "bmp", "tif", "tiff"].contains(&x.to_str().unwrap_or(""))
            }) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "--images {}: no images", dir.display());
    files
        .iter()
        .map(|p| Bytes::from(std::fs::read(p).unwrap()))
        .collect()
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> std::io::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(send)
}

async fn post(send: &mut Sender, addr: SocketAddr, body: Bytes) -> Result<(), String> {
    let req = hyper::Request::post(format!("http://{addr}/v1/predict"))
        .header("host", addr.to_string())
        .header("content-type", "image/png")
        .body(Full::new(body))
        .unwrap();
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status != 200 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    Ok(())
}

struct Round {
    seconds: f64,
    latencies_ms: Vec<f64>,
    errors: Vec<String>,
}

/// `clients` concurrent clients until `total` requests are done.
async fn round(addr: SocketAddr, bodies: Arc<Vec<Bytes>>, clients: usize, total: usize) -> Round {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (next, bodies) = (next.clone(), bodies.clone());
            tokio::spawn(async move {
                let (mut lat, mut errs) = (Vec::new(), Vec::new());
                let mut send = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    if send.is_none() {
                        match connect(addr).await {
                            Ok(s) => send = Some(s),
                            Err(e) => {
                                errs.push(e.to_string());
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        }
                    }
                    let t = Instant::now();
                    match post(
                        send.as_mut().unwrap(),
                        addr,
                        bodies[i % bodies.len()].clone(),
                    )
                    .await
                    {
                        Ok(()) => lat.push(t.elapsed().as_secs_f64() * 1e3),
                        Err(e) => {
                            errs.push(e);
                            send = None;
                        }
                    }
                }
                (lat, errs)
            })
        })
        .collect();
    let (mut latencies_ms, mut errors) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies_ms.extend(l);
        errors.extend(e);
    }
    Round {
        seconds: start.elapsed().as_secs_f64(),
        latencies_ms,
        errors,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let a = args();
    let bodies = Arc::new(bodies(&a.images));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "serve load: {} at {}, {} distinct images, {} requests per round",
        a.images.display(),
        a.addr,
        bodies.len(),
        a.requests
    );
    println!("| clients | requests | errors | images/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for &c in &a.clients {
        rt.block_on(round(a.addr, bodies.clone(), c, a.warmup));
        let mut r = rt.block_on(round(a.addr, bodies.clone(), c, a.requests));
        r.latencies_ms.sort_by(f64::total_cmp);
        println!(
            "| {c} | {} | {} | {:.1} | {:.2} | {:.2} |",
            r.latencies_ms.len(),
            r.errors.len(),
            r.latencies_ms.len() as f64 / r.seconds,
            percentile(&r.latencies_ms, 0.5),
            percentile(&r.latencies_ms, 0.99)
        );
        for e in r.errors.iter().take(5) {
            eprintln!("  error: {e}");
        }
    }
}
