//! The management API listener (`--api-addr`, default `127.0.0.1:5002`): JSON over HTTP/1.1
//! (axum on hyper), described by the OpenAPI 3 document served at
//! `GET /api/v1/openapi.json` (`openapi.json` beside this file).
//!
//! Routes (stream names are the folder of their manifests, `live/demo`; in a path the `/`
//! is percent-encoded: `/api/v1/streams/live%2Fdemo`):
//!
//! ```text
//! GET    /api/v1/streams                      {"streams":[Stream]}
//! GET    /api/v1/streams/{name}               Stream
//! GET    /api/v1/streams/{name}/ranges        {"stream","ranges":[{"start","duration","session"}]}
//! POST   /api/v1/streams/{name}/disable       Stream (pushes refused, egress 403)
//! POST   /api/v1/streams/{name}/enable        Stream
//! DELETE /api/v1/streams/{name}/archive       {"deleted_segments","kept_pinned"}
//! POST   /api/v1/recordings                   201 Recording
//! GET    /api/v1/recordings[?stream=&state=]  {"recordings":[Recording]}
//! GET|PATCH|DELETE /api/v1/recordings/{id}
//! POST   /api/v1/recordings/{id}/stop         Recording
//! ```
//!
//! Errors are `{"error":{"code","message"}}` with the status of their [`ErrorKind`] (the one
//! mapping in `server::http`). Every archive call runs on a blocking thread: the API never
//! holds an async worker that ingest needs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::status_for;
use super::AppState;
use crate::archive::{self, Archive, ArchiveError, NewRecording, RecordingRow, RecordingState};
use crate::error::ErrorKind;

/// The OpenAPI 3 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

type Shared = Arc<AppState>;

/// An API error: its class and message.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
}

impl ApiError {
    pub(super) fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }
}

impl From<ArchiveError> for ApiError {
    fn from(e: ArchiveError) -> ApiError {
        if e.kind() == ErrorKind::Internal {
            tracing::error!(error = %e, "api: archive failure");
            return ApiError::new(ErrorKind::Internal, "internal error");
        }
        ApiError::new(e.kind(), e.to_string())
    }
}

/// The `error.code` of a JSON error of class `kind`.
pub(super) fn code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Unprocessable => "unprocessable",
        ErrorKind::Unauthenticated => "unauthorized",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::Unsupported => "unsupported_media_type",
        ErrorKind::PreconditionFailed => "precondition_failed",
        ErrorKind::InsufficientStorage => "insufficient_storage",
        ErrorKind::Unavailable => "unavailable",
        _ => "internal",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The document lists these codes; anything else is reported as internal.
        let kind = match self.kind {
            k @ (ErrorKind::BadRequest
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::Unprocessable
            | ErrorKind::Unauthenticated
            | ErrorKind::Forbidden
            | ErrorKind::TooLarge
            | ErrorKind::Unsupported
            | ErrorKind::PreconditionFailed
            | ErrorKind::InsufficientStorage
            | ErrorKind::Unavailable) => k,
            _ => ErrorKind::Internal,
        };
        let body = json!({"error": {"code": code(kind), "message": self.message}});
        (status_for(kind), axum::Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// A path parameter, with a JSON 400 (not axum's text) when it is not valid UTF-8.
pub(super) struct ApiPath(pub(super) String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<ApiPath, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(p)) => Ok(ApiPath(p)),
            Err(e) => Err(ApiError::new(ErrorKind::BadRequest, e.body_text())),
        }
    }
}

fn archive_of(state: &AppState) -> Result<Arc<Archive>, ApiError> {
    state.archive_on().map_err(ApiError::from)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, ApiError> {
    super::archive_blocking(f).await.map_err(ApiError::from)
}

/// The router of the API listener.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/streams", get(list_streams))
        .route("/api/v1/streams/{name}", get(get_stream))
        .route("/api/v1/streams/{name}/ranges", get(stream_ranges))
        .route("/api/v1/streams/{name}/disable", post(disable_stream))
        .route("/api/v1/streams/{name}/enable", post(enable_stream))
        .route(
            "/api/v1/streams/{name}/archive",
            axum::routing::delete(delete_archive),
        )
        .route(
            "/api/v1/recordings",
            post(create_recording).get(list_recordings),
        )
        .route(
            "/api/v1/recordings/{id}",
            get(get_recording)
                .patch(update_recording)
                .delete(delete_recording),
        )
        .route("/api/v1/recordings/{id}/stop", post(stop_recording))
        .route("/api/v1/events", get(events))
        .merge(super::livemix::routes())
        .merge(super::library_api::routes())
        .merge(super::dashboard::routes())
        .merge(super::nus_api::routes())
        .route("/metrics", get(super::ops::metrics))
        .route("/livez", get(super::ops::livez))
        .route("/readyz", get(super::ops::readyz))
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "no such API route") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            super::ops::gate,
        ))
        .with_state(state)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `http://host:port` of the egress listener as this client can reach it: the host of the
/// API request when egress listens on every address, else the egress address.
pub(super) fn egress_base(state: &AppState, headers: &HeaderMap) -> String {
    let addr = state.egress_addr;
    let scheme = if state.cfg.tls.egress.is_some() {
        "https"
    } else {
        "http"
    };
    if !addr.ip().is_unspecified() {
        return format!("{scheme}://{addr}");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| match h.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => h,
        })
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-[]:_".contains(&b))
        })
        .unwrap_or("127.0.0.1");
    format!("{scheme}://{host}:{}", addr.port())
}

// ---- streams ----

fn stream_json(
    state: &AppState,
    a: &Archive,
    name: &str,
    base: &str,
) -> Result<Value, ArchiveError> {
    let idle = Duration::from_secs(state.cfg.live.stream_idle_secs);
    let listing = state
        .registry
        .list(idle)
        .into_iter()
        .find(|s| s.name == name);
    let (sessions, reps, bounds) = a.with_read(|c| {
        let ids = archive::db::session_ids(c, name)?;
        let reps = match ids.last() {
            Some(&id) => archive::db::reps_of(c, id)?,
            None => Vec::new(),
        };
        Ok((ids.len(), reps, archive::db::stream_bounds(c, name)?))
    })?;
    let url_of = |kind: &str| {
        listing.as_ref().and_then(|l| {
            l.manifests
                .iter()
                .find(|m| m.kind == kind)
                .map(|m| format!("{base}{}", m.url))
        })
    };
    Ok(json!({
        "name": name,
        "state": listing.as_ref().map_or("ended", |l| l.state),
        "disabled": a.is_disabled(name),
        "sessions": sessions,
        "representations": reps.iter().map(|r| json!({
            "id": r.rep,
            "kind": match r.kind.as_str() { k @ ("video" | "audio" | "text") => k, _ => "other" },
            "codecs": r.codecs,
            "bandwidth": r.bandwidth,
            "width": r.width,
            "height": r.height,
        })).collect::<Vec<_>>(),
        "oldest": bounds.map(|(o, _)| archive::format_ms(o)),
        "newest": bounds.map(|(_, n)| archive::format_ms(n)),
        "urls": {"dash": url_of("dash"), "llhls": url_of("llhls")},
    }))
}

fn known_stream(state: &AppState, a: &Archive, name: &str) -> Result<(), ArchiveError> {
    let idle = Duration::from_secs(state.cfg.live.stream_idle_secs);
    if state.registry.list(idle).iter().any(|s| s.name == name)
        || a.is_disabled(name)
        || !a
            .with_conn(|c| archive::db::session_ids(c, name))?
            .is_empty()
    {
        Ok(())
    } else {
        Err(ArchiveError::NotFound(format!("no stream {name}")))
    }
}

async fn list_streams(State(state): State<Shared>, headers: HeaderMap) -> ApiResult {
    let a = archive_of(&state)?;
    let base = egress_base(&state, &headers);
    let s = Arc::clone(&state);
    let streams = blocking(move || {
        let idle = Duration::from_secs(s.cfg.live.stream_idle_secs);
        let mut names: Vec<String> = a.with_conn(archive::db::stream_names)?;
        names.extend(s.registry.list(idle).into_iter().map(|l| l.name));
        names.sort();
        names.dedup();
        names
            .iter()
            .map(|n| stream_json(&s, &a, n, &base))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(axum::Json(json!({ "streams": streams })).into_response())
}

async fn get_stream(
    State(state): State<Shared>,
    ApiPath(name): ApiPath,
    headers: HeaderMap,
) -> ApiResult {
    let a = archive_of(&state)?;
    let base = egress_base(&state, &headers);
    let s = Arc::clone(&state);
    let v = blocking(move || {
        known_stream(&s, &a, &name)?;
        stream_json(&s, &a, &name, &base)
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

#[derive(Debug, Deserialize)]
struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
}

async fn stream_ranges(
    State(state): State<Shared>,
    ApiPath(name): ApiPath,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> ApiResult {
    let a = archive_of(&state)?;
    let Query(q) = query.map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
    let start = q.start.as_deref().map(archive::parse_time).transpose()?;
    let end = q.end.as_deref().map(archive::parse_time).transpose()?;
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                "end is not after start",
            ));
        }
    }
    let s = Arc::clone(&state);
    let v = blocking(move || {
        known_stream(&s, &a, &name)?;
        let ranges = a.ranges(&name, start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX))?;
        Ok(json!({
            "stream": name,
            "ranges": ranges.iter().map(|&(session, from, to)| json!({
                "start": archive::format_ms(from),
                "duration": (to - from) as f64 / 1000.0,
                "session": session,
            })).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

async fn set_disabled(
    state: Shared,
    name: String,
    headers: HeaderMap,
    disabled: bool,
) -> ApiResult {
    let a = archive_of(&state)?;
    let base = egress_base(&state, &headers);
    let s = Arc::clone(&state);
    let v = blocking(move || {
        known_stream(&s, &a, &name)?;
        a.set_disabled(&name, disabled)?;
        stream_json(&s, &a, &name, &base)
    })
    .await?;
    tracing::info!(disabled, "stream flag changed through the API");
    Ok(axum::Json(v).into_response())
}

async fn disable_stream(
    State(state): State<Shared>,
    ApiPath(name): ApiPath,
    headers: HeaderMap,
) -> ApiResult {
    set_disabled(state, name, headers, true).await
}

async fn enable_stream(
    State(state): State<Shared>,
    ApiPath(name): ApiPath,
    headers: HeaderMap,
) -> ApiResult {
    set_disabled(state, name, headers, false).await
}

async fn delete_archive(State(state): State<Shared>, ApiPath(name): ApiPath) -> ApiResult {
    let a = archive_of(&state)?;
    let (deleted, kept) = blocking(move || a.delete_stream_archive(&name)).await?;
    Ok(axum::Json(json!({"deleted_segments": deleted, "kept_pinned": kept})).into_response())
}

// ---- events ----

/// `GET /api/v1/events`: server-sent events (`event: <type>`, `data: <JSON>`), a keep-alive
/// comment every 15 s. A client too slow for [`super::notify::QUEUE`] events misses the
/// oldest.
async fn events(State(state): State<Shared>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;
    let rx = state.notifier.subscribe();
    // The stream ends when draining starts, so a subscriber never holds up shutdown.
    let stream = tokio_stream::wrappers::BroadcastStream::new(rx)
        .filter_map(|n| async move {
            let n = n.ok()?;
            Some(Ok::<_, std::convert::Infallible>(
                Event::default().event(n.kind).data(n.body.to_string()),
            ))
        })
        .take_until(state.drain.clone().cancelled_owned());
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

// ---- recordings ----

fn recording_json(r: &RecordingRow, base: &str) -> Value {
    json!({
        "id": r.id,
        "stream": r.stream,
        "state": r.state.as_str(),
        "start": archive::format_ms(r.start_ms),
        "end": r.end_ms.map(archive::format_ms),
        "title": r.title,
        "description": r.description,
        "max_duration_secs": r.max_duration_secs,
        "duration_secs": 0.0,
        "created_at": archive::format_ms(r.created_ms),
        "updated_at": archive::format_ms(r.updated_ms),
        "urls": {
            "hls": format!("{base}/recordings/{}/master.m3u8", r.id),
            "dash": format!("{base}/recordings/{}/manifest.mpd", r.id),
            "mp4": format!("{base}/recordings/{}/download.mp4", r.id),
        },
    })
}

/// The recording as JSON with `duration_secs` (archived seconds of its range so far).
fn recording_full(
    a: &Archive,
    r: &RecordingRow,
    base: &str,
    now: i64,
) -> Result<Value, ArchiveError> {
    let mut v = recording_json(r, base);
    let end = r.end_ms.unwrap_or(now + 1).max(r.start_ms + 1);
    let ms = a.covered_ms(&r.stream, r.start_ms, end)?;
    v["duration_secs"] = json!(ms as f64 / 1000.0);
    Ok(v)
}

/// A JSON body, or a 400 naming what is wrong with it.
fn parse_body(body: &Bytes, allow_empty: bool) -> Result<serde_json::Map<String, Value>, ApiError> {
    if allow_empty && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(
            ErrorKind::BadRequest,
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            ErrorKind::BadRequest,
            format!("invalid JSON: {e}"),
        )),
    }
}

/// A time field: RFC 3339 text or Unix seconds as a number.
fn time_field(m: &serde_json::Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(secs) if secs.is_finite() && secs.abs() < 1e12 => {
                Ok(Some((secs * 1000.0).round() as i64))
            }
            _ => Err(ApiError::new(
                ErrorKind::BadRequest,
                format!("{key} is out of range"),
            )),
        },
        Some(Value::String(s)) => archive::parse_time(s).map(Some).map_err(ApiError::from),
        Some(_) => Err(ApiError::new(
            ErrorKind::BadRequest,
            format!("{key} must be an RFC 3339 string or Unix seconds"),
        )),
    }
}

fn string_field(
    m: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<Option<String>>, ApiError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.len() <= 4096 => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ApiError::new(
            ErrorKind::BadRequest,
            format!("{key} must be a string of at most 4096 bytes"),
        )),
    }
}

fn only_fields(m: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::new(
            ErrorKind::BadRequest,
            format!("unknown field {k}"),
        )),
        None => Ok(()),
    }
}

async fn create_recording(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let a = archive_of(&state)?;
    let m = parse_body(&body, false)?;
    only_fields(
        &m,
        &[
            "stream",
            "start",
            "end",
            "title",
            "description",
            "max_duration_secs",
        ],
    )?;
    let stream = match m.get("stream") {
        Some(Value::String(s)) if !s.is_empty() => s.trim_matches('/').to_owned(),
        _ => {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                "stream (a string) is required",
            ))
        }
    };
    let max_duration_secs = match m.get("max_duration_secs") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                "max_duration_secs must be a number",
            ))
        }
    };
    let new = NewRecording {
        stream,
        start_ms: time_field(&m, "start")?,
        end_ms: time_field(&m, "end")?,
        title: string_field(&m, "title")?.flatten(),
        description: string_field(&m, "description")?.flatten(),
        max_duration_secs,
    };
    let base = egress_base(&state, &headers);
    let v = blocking(move || {
        let now = archive::now_ms();
        let r = a.create_recording(new, now)?;
        tracing::info!(
            recording = r.id,
            stream = r.stream,
            start = r.start_ms,
            "recording created"
        );
        recording_full(&a, &r, &base, now)
    })
    .await?;
    let location = format!(
        "/api/v1/recordings/{}",
        v["id"].as_str().unwrap_or_default()
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(v),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    stream: Option<String>,
    state: Option<String>,
}

async fn list_recordings(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let a = archive_of(&state)?;
    let Query(q) = query.map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
    let filter = match q.state.as_deref() {
        None => None,
        Some(s) => Some(RecordingState::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorKind::BadRequest,
                format!("state {s:?} is not one of pending, recording, done, failed"),
            )
        })?),
    };
    let base = egress_base(&state, &headers);
    let list = blocking(move || {
        let now = archive::now_ms();
        a.recordings(q.stream.as_deref(), filter)?
            .iter()
            .map(|r| recording_full(&a, r, &base, now))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(axum::Json(json!({ "recordings": list })).into_response())
}

async fn get_recording(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
) -> ApiResult {
    let a = archive_of(&state)?;
    let base = egress_base(&state, &headers);
    let v = blocking(move || {
        let r = a.recording(&id)?;
        recording_full(&a, &r, &base, archive::now_ms())
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

async fn update_recording(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let a = archive_of(&state)?;
    let m = parse_body(&body, false)?;
    only_fields(&m, &["title", "description"])?;
    let title = string_field(&m, "title")?;
    let description = string_field(&m, "description")?;
    let base = egress_base(&state, &headers);
    let v = blocking(move || {
        let now = archive::now_ms();
        let r = a.update_recording(&id, title, description, now)?;
        recording_full(&a, &r, &base, now)
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

async fn delete_recording(State(state): State<Shared>, ApiPath(id): ApiPath) -> ApiResult {
    let a = archive_of(&state)?;
    blocking(move || a.delete_recording(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn stop_recording(
    State(state): State<Shared>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let a = archive_of(&state)?;
    let m = parse_body(&body, true)?;
    only_fields(&m, &["end"])?;
    let end = time_field(&m, "end")?;
    let base = egress_base(&state, &headers);
    let v = blocking(move || {
        let now = archive::now_ms();
        let r = a.stop_recording(&id, end, now)?;
        tracing::info!(recording = r.id, end = ?r.end_ms, "recording stopped");
        recording_full(&a, &r, &base, now)
    })
    .await?;
    Ok(axum::Json(v).into_response())
}
