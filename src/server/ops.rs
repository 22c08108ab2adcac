//! Operations on the API listener: `/metrics`, `/livez`, `/readyz`, and the gate every API
//! request passes (bearer tokens with roles, the access log line, request metrics).
//!
//! - `GET /livez`: 200 `{"live":true}` while the process answers.
//! - `GET /readyz`: 200 `{"ready":true,...}`, or 503 naming the failing checks: `draining`
//!   (SIGTERM received), `data_dir_not_writable`, `low_disk` (free bytes under
//!   `limits.min_free_bytes`), `persist_lag` (a data-dir write older than
//!   `limits.max_persist_lag_secs`).
//! - `GET /metrics`: Prometheus metrics (OpenMetrics 1.0 text), see `metrics.rs`.
//!
//! With `[[auth.api]]` tokens, every route but `/livez` and `/readyz` needs
//! `Authorization: Bearer <token>` (RFC 6750): 401 without a known token, 403 when a
//! `read` token asks for anything but GET/HEAD.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::ApiError;
use super::metrics::{RequestKind, Scraped};
use super::observe::{observe, redact_query, Seen};
use super::AppState;
use crate::auth::ApiRole;
use crate::error::ErrorKind;

/// The client address of an API request (put there by the listener).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// Authorizes an API request and observes its answer.
pub async fn gate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<Peer>()
        .map(|p| p.0)
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let path = req.uri().path().to_owned();
    let seen = Seen {
        listener: "api",
        method: req.method().clone(),
        path: path.clone(),
        query: req.uri().query().map(|q| redact_query(q, None)),
        kind: RequestKind::Api,
        started,
        peer,
        principal: None,
    };
    let open = matches!(path.as_str(), "/livez" | "/readyz")
        || super::dashboard::is_dashboard(&path)
        || !state.api_auth.enabled();
    let resp = if open {
        next.run(req).await
    } else {
        let role = state.api_auth.role(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        );
        // OPTIONS only asks what is served (tus discovery): a read token may.
        let reading = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        match role {
            None => {
                let mut r = ApiError::new(
                    ErrorKind::Unauthenticated,
                    "an API token is required: Authorization: Bearer <token>",
                )
                .into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"casterpak-api\""),
                );
                r
            }
            Some(ApiRole::Read) if !reading => ApiError::new(
                ErrorKind::Forbidden,
                "this token may only read (role read); changes need an admin token",
            )
            .into_response(),
            Some(_) => next.run(req).await,
        }
    };
    observe(&state.metrics, seen, resp).map(axum::body::Body::new)
}

/// `GET /livez`.
pub async fn livez() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"live": true})),
    )
        .into_response()
}

/// Free bytes for unprivileged users in the file system holding `dir`.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether a file can be created, written and removed in `dir`.
fn writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(".casterpak-ready-probe");
    let ok = std::fs::write(&probe, b"ok").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let mut failing: Vec<&str> = Vec::new();
    let draining = state.drain.is_cancelled();
    if draining {
        failing.push("draining");
    }
    let lag = state.metrics.persist_lag();
    let mut free = None;
    let mut dir_ok = None;
    if let Some(p) = &state.persister {
        let root = p.root().to_owned();
        let (w, f) = tokio::task::spawn_blocking(move || (writable(&root), free_bytes(&root)))
            .await
            .unwrap_or((false, None));
        dir_ok = Some(w);
        free = f;
        if !w {
            failing.push("data_dir_not_writable");
        }
        if f.is_some_and(|f| f < state.cfg.limits.min_free_bytes) {
            failing.push("low_disk");
        }
        if lag > Duration::from_secs(state.cfg.limits.max_persist_lag_secs) {
            failing.push("persist_lag");
        }
    }
    let ready = failing.is_empty();
    let body = json!({
        "ready": ready,
        "failing": failing,
        "checks": {
            "draining": draining,
            "data_dir_writable": dir_ok,
            "free_bytes": free,
            "min_free_bytes": state.cfg.limits.min_free_bytes,
            "persist_lag_secs": lag.as_secs_f64(),
        }
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// `GET /metrics`: OpenMetrics 1.0 text when the `Accept` header asks for it (Prometheus
/// does), else the classic text format 0.0.4.
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let idle = Duration::from_secs(state.cfg.live.stream_idle_secs);
    let streams = state
        .registry
        .list(idle)
        .into_iter()
        .map(|s| (s.name, s.state == "live"))
        .collect();
    let cached = state
        .archive_bytes
        .lock()
        .ok()
        .and_then(|c| *c)
        .filter(|(at, _)| at.elapsed() < Duration::from_secs(30))
        .map(|(_, b)| b);
    let archive_bytes = match (cached, state.archive.clone()) {
        (Some(b), _) => Some(b),
        (None, Some(a)) => {
            let b = tokio::task::spawn_blocking(move || a.total_bytes().ok())
                .await
                .ok()
                .flatten();
            if let (Some(b), Ok(mut c)) = (b, state.archive_bytes.lock()) {
                *c = Some((Instant::now(), b));
            }
            b
        }
        (None, None) => None,
    };
    let disk_free_bytes = match &state.persister {
        Some(p) => {
            let root = p.root().to_owned();
            tokio::task::spawn_blocking(move || free_bytes(&root))
                .await
                .ok()
                .flatten()
        }
        None => None,
    };
    let library_jobs = match &state.library {
        Ok(l) => {
            let l = Arc::clone(l);
            let running = l.running() as u64;
            tokio::task::spawn_blocking(move || (l.queued(), running))
                .await
                .ok()
        }
        Err(_) => None,
    };
    let scraped = Scraped {
        library_jobs,
        streams,
        archive_bytes,
        disk_free_bytes,
        draining: state.drain.is_cancelled(),
    };
    let (text, content_type) = if openmetrics {
        (
            state.metrics.render(scraped),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            state.metrics.render_classic(scraped),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}
