//! `glassnet serve` end to end on loopback: every endpoint, bad bodies, clients that go
//! away, and SIGTERM with requests in flight. Each case checks the server still answers.

mod common;
#[path = "common/http.rs"]
mod http;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use http::{multipart, request, Server};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("glassnet-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn glassnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glassnet"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A model trained for a few steps on the built-in set at 24 px, and its images as PNGs
/// (`synth`): returns (model, sorted image paths).
fn setup(name: &str) -> (PathBuf, PathBuf, Vec<PathBuf>) {
    let root = tmpdir(name);
    let m = root.join("model");
    let o = glassnet(&[
        "train",
        "--out",
        m.to_str().unwrap(),
        "--size",
        "24",
        "--channels",
        "4,8",
        "--embed-dim",
        "8",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--batch",
        "16",
        "--cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let imgs = root.join("images");
    let o = glassnet(&[
        "synth",
        "--out",
        imgs.to_str().unwrap(),
        "--size",
        "40",
        "--counts",
        "8,8,8,8",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&imgs)
        .unwrap()
        .flat_map(|c| std::fs::read_dir(c.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    assert!(files.len() > 20, "synth wrote {} images", files.len());
    (root, m, files)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

async fn healthy(addr: SocketAddr) {
    let (status, body) = request(addr, "GET", "/healthz", None, vec![])
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["status"], "ok");
}

/// `predict --json --cpu` on `files`: (class, distance) per file.
fn predicted(model: &Path, files: &[&PathBuf]) -> Vec<(String, f64)> {
    let mut args = vec![
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--json",
        "--cpu",
    ];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let o = glassnet(&args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v = json(l);
            (
                v["class"].as_str().unwrap().to_string(),
                v["distance"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn endpoints_answer_as_predict_does() {
    let (root, m, files) = setup("endpoints");
    let server = Server::start(&m, &["--cpu"]);
    let addr = server.addr;
    let meta = json(&std::fs::read_to_string(m.join("metadata.json")).unwrap());
    let picks = [&files[0], &files[files.len() / 2], &files[files.len() - 1]];
    let want = predicted(&m, &picks);
    runtime().block_on(async {
        healthy(addr).await;
        let (status, body) = request(addr, "GET", "/v1/model", None, vec![])
            .await
            .unwrap();
        assert_eq!(status, 200);
        let info = json(&body);
        assert_eq!(info["classes"], meta["classes"]);
        assert_eq!(info["preprocess"], meta["preprocess"]);
        assert_eq!(info["arch"], meta["arch"]);
        assert!(info["commit"].as_str().is_some_and(|c| !c.is_empty()));

        // One image as the body.
        for (file, (class, dist)) in picks.iter().zip(&want) {
            let (status, body) = request(
                addr,
                "POST",
                "/v1/predict",
                Some("image/png"),
                std::fs::read(file).unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(status, 200, "{body}");
            let v = json(&body);
            assert_eq!(v["class"].as_str().unwrap(), class, "{}", file.display());
            assert!(
                (v["distance"].as_f64().unwrap() - dist).abs() < 1e-5,
                "{body} vs {dist}"
            );
            assert_eq!(v["k"], 5);
        }
        // A multipart batch: results in part order, named.
        let parts: Vec<(&str, Vec<u8>)> = picks
            .iter()
            .map(|p| {
                (
                    p.file_name().unwrap().to_str().unwrap(),
                    std::fs::read(p).unwrap(),
                )
            })
            .collect();
        let (ct, body) = multipart(&parts);
        let (status, body) = request(addr, "POST", "/v1/predict", Some(&ct), body)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let results = json(&body)["results"].as_array().unwrap().clone();
        assert_eq!(results.len(), 3);
        for ((r, (class, _)), (name, _)) in results.iter().zip(&want).zip(&parts) {
            assert_eq!(r["class"].as_str().unwrap(), class);
            assert_eq!(r["name"].as_str().unwrap(), *name);
        }
        let (_, body) = request(addr, "GET", "/healthz", None, vec![])
            .await
            .unwrap();
        assert_eq!(json(&body)["images"], 6, "{body}");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_bodies_get_a_4xx_with_the_reason_and_the_server_stays_up() {
    let (root, m, files) = setup("bad");
    let server = Server::start(&m, &["--cpu", "--max-body-mib", "8"]);
    let addr = server.addr;
    let png = std::fs::read(&files[0]).unwrap();
    let jpeg = {
        let img = image::open(&files[0]).unwrap();
        let mut v = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Jpeg)
            .unwrap();
        v
    };
    runtime().block_on(async {
        // (what, content type, body, status, words the error must hold)
        type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
        let cases: Vec<Case> = vec![
            ("empty", Some("image/png"), vec![], 400, "no image"),
            (
                "truncated png",
                Some("image/png"),
                png[..png.len() / 2].to_vec(),
                400,
                "cannot decode",
            ),
            (
                "truncated header",
                Some("image/png"),
                png[..12].to_vec(),
                400,
                "cannot decode",
            ),
            (
                "text",
                Some("text/plain"),
                b"hello, this is not an image".to_vec(),
                400,
                "not a png",
            ),
            (
                "empty multipart",
                Some("multipart/form-data; boundary=x"),
                b"--x--\r\n".to_vec(),
                400,
                "no image",
            ),
            (
                "broken multipart",
                Some("multipart/form-data; boundary=x"),
                b"--x\r\nContent-Disp".to_vec(),
                400,
                "",
            ),
        ];
        for (what, ct, body, want, needle) in cases {
            let (status, text) = request(addr, "POST", "/v1/predict", ct, body)
                .await
                .unwrap();
            assert_eq!(status, want, "{what}: {text}");
            assert!(text.contains(needle), "{what}: {text}");
            healthy(addr).await;
        }
        // Over --max-body-mib: the server answers 413 once it has read one byte past the
        // limit and closes without reading the rest. The client sends exactly that much of
        // a 50 MiB body (one writing all of it races the close and sees a broken pipe
        // instead of the answer).
        let big = vec![7u8; 50 << 20];
        let s = partial_request(addr, &big, (8 << 20) + 1);
        let status = tokio::task::spawn_blocking(move || status_of(s))
            .await
            .unwrap();
        assert_eq!(status, Some(413), "50 MiB body");
        healthy(addr).await;
        let (ct, body) = multipart(&[("good.png", png.clone()), ("bad.png", png[..40].to_vec())]);
        let (status, text) = request(addr, "POST", "/v1/predict", Some(&ct), body)
            .await
            .unwrap();
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("bad.png"), "names the part: {text}");
        let (status, _) = request(addr, "GET", "/v1/predict", None, vec![])
            .await
            .unwrap();
        assert_eq!(status, 405);
        let (status, _) = request(addr, "GET", "/nowhere", None, vec![])
            .await
            .unwrap();
        assert_eq!(status, 404);
        // JPEG is read too, whatever the content type says.
        let (status, text) = request(
            addr,
            "POST",
            "/v1/predict",
            Some("application/octet-stream"),
            jpeg,
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{text}");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

/// Writes a request's head and `sent` of `len` body bytes.
fn partial_request(addr: SocketAddr, body: &[u8], sent: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..sent]).unwrap();
    s.flush().unwrap();
    s
}

/// Reads a whole response (the server closes the connection): its status code.
fn status_of(mut s: TcpStream) -> Option<u16> {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let code = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    // A complete answer: a JSON body after the head.
    text.split("\r\n\r\n")
        .nth(1)
        .filter(|b| b.trim_end().ends_with('}'))?;
    Some(code)
}

#[test]
fn clients_that_disconnect_do_not_harm_the_server() {
    let (root, m, files) = setup("disconnect");
    let server = Server::start(&m, &["--cpu"]);
    let addr = server.addr;
    let png = std::fs::read(&files[1]).unwrap();
    // Mid-upload, with the head only, and right after a whole request (answer unread).
    for sent in [png.len() / 3, 0, png.len()] {
        for _ in 0..5 {
            drop(partial_request(addr, &png, sent));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    runtime().block_on(async {
        healthy(addr).await;
        let (status, text) = request(addr, "POST", "/v1/predict", None, png.clone())
            .await
            .unwrap();
        assert_eq!(status, 200, "{text}");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn sigterm_answers_every_accepted_request_then_exits() {
    let (root, m, files) = setup("sigterm");
    let mut server = Server::start(&m, &["--cpu"]);
    let addr = server.addr;
    let png = std::fs::read(&files[2]).unwrap();
    // Eight uploads half sent when SIGTERM arrives: each must still be answered.
    let streams: Vec<TcpStream> = (0..8)
        .map(|_| partial_request(addr, &png, png.len() / 2))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    server.terminate();
    std::thread::sleep(Duration::from_millis(200));
    let rest = png[png.len() / 2..].to_vec();
    let answers: Vec<Option<u16>> = streams
        .into_iter()
        .map(|mut s| {
            s.write_all(&rest).unwrap();
            status_of(s)
        })
        .collect();
    assert!(answers.iter().all(|a| *a == Some(200)), "{answers:?}");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
    let last: Vec<String> = server.rest.try_iter().collect();
    assert!(
        last.iter()
            .any(|l| l.starts_with("shut down after 8 requests")),
        "{last:?}"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn sigterm_under_load_drops_no_accepted_request() {
    let (root, m, files) = setup("sigterm-load");
    let mut server = Server::start(&m, &["--cpu"]);
    let addr = server.addr;
    let bodies: Vec<Vec<u8>> = files
        .iter()
        .take(16)
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let stop_after = std::time::Instant::now() + Duration::from_secs(20);
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let (mut ok, mut other) = (0usize, Vec::new());
                for i in 0.. {
                    if std::time::Instant::now() > stop_after {
                        break;
                    }
                    let body = &bodies[(c + i) % bodies.len()];
                    let Ok(s) = TcpStream::connect(addr) else { break };
                    let mut s2 = s;
                    let head = format!(
                        "POST /v1/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    if s2.write_all(head.as_bytes()).and_then(|_| s2.write_all(body)).is_err() {
                        continue;
                    }
                    match status_of(s2) {
                        Some(200) => ok += 1,
                        got => other.push(got),
                    }
                }
                (ok, other)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.terminate();
    let results: Vec<(usize, Vec<Option<u16>>)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(server.child.wait().unwrap().success());
    let ok: usize = results.iter().map(|r| r.0).sum();
    let errors: Vec<Option<u16>> = results.into_iter().flat_map(|r| r.1).collect();
    // Only connections the server never read may fail, and without an answer (None).
    assert!(
        errors.iter().all(|e| e.is_none()),
        "answers other than 200: {errors:?}"
    );
    let last: Vec<String> = server.rest.try_iter().collect();
    let line = last
        .iter()
        .find(|l| l.starts_with("shut down after"))
        .expect("shutdown line");
    let served: usize = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(ok > 20, "only {ok} answered in 1.5 s");
    assert_eq!(
        served, ok,
        "the server accepted {served} requests, clients got {ok} answers ({line})"
    );
    let _ = std::fs::remove_dir_all(&root);
}
