//! `glassnet serve`: an HTTP inference service (axum on tokio).
//!
//! - `POST /v1/predict`: one image as the body (png, jpeg, bmp or tiff; recognised by its
//!   content) -> one prediction; or `multipart/form-data` with one image per part -> `{"results":
//!   [...]}` in part order, each with the part's file name.
//! - `GET /healthz`: liveness and counters (requests, images, batches).
//! - `GET /v1/model`: classes, architecture, preprocessing, gallery size, device, commit.
//!
//! Request bodies are gathered into batches for one engine (`batcher`), which decodes and
//! preprocesses them right before embedding. Bad input is a 4xx with a JSON `{"error": ...}` naming what
//! was wrong; the process never stops for a request. SIGTERM or Ctrl-C stops accepting,
//! answers every request already accepted, then returns.

pub mod batcher;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::checkpoint::Model;
use crate::classify::Prediction;
use batcher::{Batcher, Job, JobError, Refused};

/// What the HTTP side shares.
#[derive(Clone)]
struct AppState {
    model: Arc<Model>,
    batcher: Batcher,
    /// Most images in one multipart request.
    max_images: usize,
}

/// An error answer: status and a message for the client.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// Counts a request as in flight from its handler's start until it is answered or its
/// client goes (the future is dropped).
struct InFlight(Batcher);

impl InFlight {
    fn new(b: &Batcher) -> InFlight {
        b.counters.in_flight.fetch_add(1, Ordering::SeqCst);
        b.counters.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(b.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The service's routes over a model and a running batcher.
pub fn router(model: Arc<Model>, batcher: Batcher, max_body: usize, max_images: usize) -> Router {
    let state = AppState {
        model,
        batcher,
        max_images,
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/model", get(model_info))
        .route("/v1/predict", post(predict))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn healthz(State(st): State<AppState>) -> Json<serde_json::Value> {
    let c = &st.batcher.counters;
    let (images, batches) = (
        c.images.load(Ordering::Relaxed),
        c.batches.load(Ordering::Relaxed),
    );
    Json(json!({
        "status": "ok",
        "requests": c.requests.load(Ordering::Relaxed),
        "images": images,
        "batches": batches,
        "mean_batch": if batches > 0 { images as f64 / batches as f64 } else { 0.0 },
        "in_flight": c.in_flight.load(Ordering::Relaxed),
        "engine_busy_s": c.busy_us.load(Ordering::Relaxed) as f64 / 1e6,
        "gathering_s": c.gather_us.load(Ordering::Relaxed) as f64 / 1e6,
    }))
}

async fn model_info(State(st): State<AppState>) -> Json<serde_json::Value> {
    let m = &st.model.meta;
    let cfg = &st.batcher.config;
    Json(json!({
        "glassnet_version": env!("CARGO_PKG_VERSION"),
        "commit": env!("GLASSNET_COMMIT"),
        "classes": m.classes,
        "arch": m.arch,
        "arch_description": m.arch.describe(),
        "preprocess": m.preprocess,
        "preprocess_steps": m.preprocess.describe(),
        "gallery_size": st.model.gallery_labels.len(),
        "trained_on": m.data,
        "best_epoch": m.best_epoch,
        "validation": m.validation,
        "device": *st.batcher.device,
        "k": cfg.k,
        "vote": cfg.vote,
        "reject": cfg.reject && m.rejection.is_some(),
        "rejection": m.rejection,
        "good": m.good,
        "gallery_edits": m.gallery_edits,
        "max_batch": cfg.max_batch,
        "max_wait_ms": cfg.max_wait.as_secs_f64() * 1e3,
    }))
}

/// The request's images as (name, bytes).
async fn read_images(st: &AppState, req: Request) -> Result<Vec<(String, Bytes)>, ApiError> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let body = Bytes::from_request(req, st)
            .await
            .map_err(|e| ApiError(e.status(), e.body_text()))?;
        return Ok(vec![("body".into(), body)]);
    }
    let mut form = Multipart::from_request(req, st)
        .await
        .map_err(|e| ApiError(e.status(), e.body_text()))?;
    let mut parts = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError(e.status(), e.body_text()))?
    {
        let name = field
            .file_name()
            .or(field.name())
            .map(str::to_string)
            .unwrap_or_else(|| format!("part {}", parts.len() + 1));
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError(e.status(), format!("{name}: {}", e.body_text())))?;
        parts.push((name, bytes));
        if parts.len() > st.max_images {
            return Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("more than {} images in one request", st.max_images),
            ));
        }
    }
    Ok(parts)
}

async fn predict(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let _guard = InFlight::new(&st.batcher);
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let parts = read_images(&st, req).await?;
    if parts.is_empty() || parts.iter().all(|(_, b)| b.is_empty()) {
        return Err(bad_request(
            "no image: send one image as the body, or multipart/form-data with one per part",
        ));
    }
    let names: Vec<String> = parts.iter().map(|(n, _)| n.clone()).collect();
    let (reply, answer) = tokio::sync::oneshot::channel();
    st.batcher
        .submit(Job { parts, reply })
        .map_err(|r| match r {
            Refused::Busy => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many images waiting; retry shortly".into(),
            ),
            Refused::Stopped => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "the engine has stopped".into(),
            ),
        })?;
    let preds: Vec<Prediction> = answer
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the engine dropped the request".into(),
            )
        })?
        .map_err(|e| match e {
            JobError::BadImage(m) => bad_request(m),
            JobError::Engine(m) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, m),
        })?;
    if !multipart {
        return Ok(Json(&preds[0]).into_response());
    }
    // Typed, not through serde_json::Value (json!), which would widen distance to f64 and
    // print other digits than the single-image answer.
    #[derive(serde::Serialize)]
    struct Named<'a> {
        name: &'a str,
        #[serde(flatten)]
        prediction: &'a Prediction,
    }
    let results: Vec<Named> = names
        .iter()
        .zip(&preds)
        .map(|(name, prediction)| Named { name, prediction })
        .collect();
    #[derive(serde::Serialize)]
    struct Results<'a> {
        results: Vec<Named<'a>>,
    }
    Ok(Json(Results { results }).into_response())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Serves `router` on `addr` until SIGTERM / Ctrl-C; `on_listen` gets the bound address
/// (the port chosen when `addr` asks for port 0).
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    on_listen: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    on_listen(listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
}
