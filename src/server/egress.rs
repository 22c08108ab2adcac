//! The egress listener: GET/HEAD for players and CDNs.
//!
//! Lookup order for a pushed object: the in-memory store (streamed with chunked transfer
//! while uploading, whole once complete), then the data dir, then, when the name is the next
//! segment of a live representation, a bounded wait for its upload to start; else 404.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response};

use super::http::{
    self as h, cache_control_finished, complete_response, content_type, error_response,
    live_response, Body, Complete, Reply,
};
use super::metrics::{HeldLabels, OutcomeLabels, RequestKind};
use super::observe::{observe, redact_query, Counted, Seen};
use super::route::Route;
use super::AppState;
use crate::error::ErrorKind;
use crate::live::llhls::LlHlsFile;
use crate::live::mpd;
use crate::store::{Object, ObjectKey, ObjectState};

/// Handles one egress request: playback authorization (when `[auth.playback]` is set),
/// the caps on held requests, the request itself, the token carried into manifests, and
/// one access log line and the metrics when the answer ends.
pub async fn handle<B>(
    state: Arc<AppState>,
    mut req: Request<B>,
    peer: std::net::SocketAddr,
) -> Result<Response<Counted<Body>>, std::convert::Infallible> {
    let started = std::time::Instant::now();
    let token_name = state.playback.as_ref().map(|p| p.cfg.token_name.clone());
    let kind = RequestKind::of_egress(req.uri().path(), req.uri().query());
    let seen = Seen {
        listener: "egress",
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        query: req
            .uri()
            .query()
            .map(|q| redact_query(q, token_name.as_deref())),
        kind,
        started,
        peer,
        principal: None,
    };
    // HTTP/2 requests name their host in `:authority`, not `Host`: absolute URLs the origin
    // writes (MPD `UTCTiming`) must use what the client asked for either way.
    if !req.headers().contains_key(header::HOST) {
        if let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    // The token a manifest's URIs carry on, when it came in the query.
    let mut carry: Option<String> = None;
    // Whether the answer was authorized for this viewer (not cacheable by a shared cache).
    let mut per_viewer = false;
    let head = req.method() == Method::HEAD;
    if let Some(p) = &state.playback {
        let path = req.uri().path();
        let exempt = path == "/time" || path == "/player" || path.starts_with("/player/");
        if !exempt && !p.trusted_cdn(req.headers()) {
            match super::playback::authorize(&state, p, &req, peer).await {
                Ok(c) => {
                    carry = c;
                    per_viewer = true;
                }
                Err(resp) => return Ok(observe(&state.metrics, seen, resp)),
            }
        }
        // Handlers never see the token: views carry their own query on, and the
        // manifest rewrite below adds the token once.
        if let Some(q) = req.uri().query() {
            if crate::auth::query_pair(q, &p.cfg.token_name).is_some() {
                let stripped = crate::auth::strip_param(q, &p.cfg.token_name);
                let pq = if stripped.is_empty() {
                    req.uri().path().to_owned()
                } else {
                    format!("{}?{stripped}", req.uri().path())
                };
                if let Ok(uri) = pq.parse() {
                    *req.uri_mut() = uri;
                }
            }
        }
        if carry.is_some() {
            // The rewrite needs the plain text, and the whole of it for HEAD's length.
            req.headers_mut().remove(header::ACCEPT_ENCODING);
            if head {
                *req.method_mut() = Method::GET;
            }
        }
    }
    let resp = if matches!(kind, RequestKind::BlockingPlaylist | RequestKind::Part) {
        held_reload(&state, kind, dispatch(Arc::clone(&state), req)).await
    } else {
        dispatch(Arc::clone(&state), req).await
    };
    let resp = match carry {
        Some(pair) => super::playback::carry_token(resp, &pair, head).await,
        None => resp,
    };
    let resp = if per_viewer {
        super::playback::per_viewer(resp)
    } else {
        resp
    };
    Ok(observe(&state.metrics, seen, resp))
}

/// Runs a request that may wait (a blocking reload or a held part) under the cap of
/// `limits.max_held_reloads`, answers it at once with 503 when draining starts, and
/// counts its wait and outcome.
async fn held_reload(
    state: &Arc<AppState>,
    kind: RequestKind,
    fut: impl std::future::Future<Output = Response<Body>>,
) -> Response<Body> {
    let m = &state.metrics;
    let outcome = |result: &'static str| {
        m.blocking_outcome
            .get_or_create(&OutcomeLabels { result })
            .inc();
    };
    let (n, _held) = HeldGuard::new(
        &state.held_reloads,
        m.held.get_or_create(&HeldLabels { kind: "reload" }).clone(),
    );
    if n >= state.cfg.limits.max_held_reloads {
        outcome("over_cap");
        return retry_later("too many held requests; retry");
    }
    if state.drain.is_cancelled() {
        outcome("draining");
        return retry_later("the origin is draining");
    }
    let started = std::time::Instant::now();
    let resp = tokio::select! {
        r = fut => r,
        _ = state.drain.cancelled() => {
            outcome("draining");
            return retry_later("the origin is draining");
        }
    };
    if kind == RequestKind::BlockingPlaylist || resp.status().is_success() {
        m.blocking_wait.observe(started.elapsed().as_secs_f64());
    }
    outcome(match resp.status().as_u16() {
        200..=299 => "ready",
        400 => "bad_request",
        503 => "timeout",
        _ => "other",
    });
    resp
}

/// 503 with `Retry-After: 1` (RFC 9110 section 10.2.3).
pub(super) fn retry_later(why: &str) -> Response<Body> {
    let mut r = error_response(ErrorKind::Unavailable, why);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Decrements a held-request counter and its gauge on drop.
struct HeldGuard<'a> {
    counter: &'a std::sync::atomic::AtomicUsize,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl<'a> HeldGuard<'a> {
    fn new(
        counter: &'a std::sync::atomic::AtomicUsize,
        gauge: prometheus_client::metrics::gauge::Gauge,
    ) -> (usize, HeldGuard<'a>) {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        gauge.inc();
        (n, HeldGuard { counter, gauge })
    }
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.counter
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.gauge.dec();
    }
}

/// The request itself.
async fn dispatch<B>(state: Arc<AppState>, req: Request<B>) -> Response<Body> {
    match route(state, req).await {
        Ok(r) => r,
        Err(e) => match e {},
    }
}

async fn route<B>(state: Arc<AppState>, req: Request<B>) -> Reply {
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD {
        let mut r = error_response(ErrorKind::BadRequest, "only GET and HEAD are served here");
        *r.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        return Ok(r);
    }
    let route = match Route::decode(req.uri().path()) {
        Ok(route) => route,
        Err(e) => {
            tracing::warn!(path = req.uri().path(), error = %e, "egress path refused");
            return Ok(error_response(e.kind(), e));
        }
    };
    let headers = req.headers();
    let resp = match route {
        Route::Time => time_response(),
        Route::Streams => streams_response(&state),
        Route::Player(rel) => player_file(&state, &rel, &method, headers).await,
        Route::Vod(format, rest) => {
            let resp = vod(&state, format, &rest, req.uri().query(), &method, headers).await;
            // An object pushed under `cmaf/` or `dash/` is still served when no MP4 matches.
            match ObjectKey::from_uri_path(req.uri().path()) {
                Ok(key)
                    if format != crate::vod::csmil::Format::Ts
                        && resp.status() == http::StatusCode::NOT_FOUND
                        && pushed(&state, &key).await =>
                {
                    object(&state, key, req.uri().query(), &method, headers).await
                }
                _ => resp,
            }
        }
        Route::LlHls { dir, .. } if disabled(&state, &dir) => disabled_response(&dir),
        Route::LlHls { dir, file } if super::replay::is_view(req.uri().query()) => {
            use super::replay::ViewFile;
            let view = match file {
                LlHlsFile::Multivariant => Some(ViewFile::Multivariant),
                LlHlsFile::Media(rep) => Some(ViewFile::Media(rep)),
                LlHlsFile::Part { .. } => None,
            };
            match view {
                Some(view) => {
                    let time_url = time_url(&state, headers);
                    super::replay::live_view(
                        &state,
                        &dir,
                        view,
                        req.uri().query(),
                        &method,
                        headers,
                        time_url,
                    )
                    .await
                }
                None => error_response(ErrorKind::BadRequest, "parts have no time-range view"),
            }
        }
        Route::LlHls { dir, file } => {
            super::llhls::handle(&state, &dir, file, req.uri().query(), &method, headers).await
        }
        Route::Recording { id, file } => {
            let time_url = time_url(&state, headers);
            super::replay::recording(
                &state,
                &id,
                &file,
                req.uri().query(),
                &method,
                headers,
                time_url,
            )
            .await
        }
        Route::LiveMix {
            recording,
            id,
            file,
        } => super::livemix::vod(&state, recording, &id, &file, &method, headers).await,
        Route::Archive { session, file } => {
            super::replay::file(&state, session, &file, &method, headers).await
        }
        Route::Asset { id, file } => asset_file(&state, &id, &file, &method, headers).await,
        Route::Object(key) if disabled(&state, key.dir()) => disabled_response(key.dir()),
        Route::Object(key)
            if key.extension().as_deref() == Some("mpd")
                && super::replay::is_view(req.uri().query()) =>
        {
            let time_url = time_url(&state, headers);
            super::replay::live_view(
                &state,
                key.dir(),
                super::replay::ViewFile::Mpd,
                req.uri().query(),
                &method,
                headers,
                time_url,
            )
            .await
        }
        Route::Object(key) => object(&state, key, req.uri().query(), &method, headers).await,
    };
    Ok(resp)
}

/// Whether the stream in folder `dir` is disabled through the API.
fn disabled(state: &AppState, dir: &str) -> bool {
    state.archive.as_ref().is_some_and(|a| a.is_disabled(dir))
}

fn disabled_response(dir: &str) -> Response<Body> {
    error_response(ErrorKind::Forbidden, format!("stream {dir} is disabled"))
}

fn time_response() -> Response<Body> {
    let now = time::OffsetDateTime::now_utc();
    let text = now
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, h::CACHE_NONE)
        .body(Body::full(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn streams_response(state: &AppState) -> Response<Body> {
    let idle = Duration::from_secs(state.cfg.live.stream_idle_secs);
    let listing = serde_json::json!({ "streams": state.registry.list(idle) });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, h::CACHE_NONE)
        .body(Body::full(Bytes::from(listing.to_string())))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn player_file(
    state: &AppState,
    rel: &ObjectKey,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let path = rel.to_path(&state.cfg.player_dir);
    let Ok(meta) = tokio::fs::metadata(&path).await else {
        return error_response(ErrorKind::NotFound, format!("no player file {rel}"));
    };
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return error_response(ErrorKind::NotFound, format!("no player file {rel}"));
    };
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    complete_response(Complete {
        etag: h::etag(modified, bytes.len() as u64),
        bytes: Bytes::from(bytes),
        content_type: content_type(rel, None),
        cache_control: "no-cache",
        last_modified: modified,
        method,
        request: headers,
    })
}

/// A library asset's poster, sprite or thumbnails track (the route admits only those
/// names and hex ids).
async fn asset_file(
    state: &AppState,
    id: &str,
    file: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let Ok(library) = &state.library else {
        return error_response(ErrorKind::NotFound, "the media library is off");
    };
    let path = library.asset_dir(id).join(file);
    let content_type = if file.ends_with(".vtt") {
        "text/vtt"
    } else {
        "image/jpeg"
    };
    super::http::file_response(&path, content_type, "public, max-age=60", method, headers)
        .await
        .unwrap_or_else(|| error_response(ErrorKind::NotFound, format!("no {file} for asset {id}")))
}

/// On-demand packaging: `rest` is the path after `/i/`, still percent-encoded (dot segments
/// are judged by the packager, so nothing may normalise them first).
async fn vod(
    state: &AppState,
    format: crate::vod::csmil::Format,
    rest: &str,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let vod = match &state.vod {
        Ok(vod) => vod,
        Err(why) => {
            return error_response(
                ErrorKind::NotFound,
                format!("on-demand packaging is not available: {why}"),
            )
        }
    };
    match vod.respond_as(format, rest, query).await {
        Ok(reply) => complete_response(Complete {
            bytes: reply.body,
            content_type: reply.content_type,
            cache_control: reply.cache_control,
            etag: reply.etag,
            last_modified: reply.last_modified,
            method,
            request: headers,
        }),
        Err(e) => {
            tracing::warn!(path = rest, error = %e, "on-demand request failed");
            error_response(e.kind(), e)
        }
    }
}

/// Whether `key` is (or is about to be) a pushed object: in memory, persisted, or the next
/// segment of a live stream.
async fn pushed(state: &AppState, key: &ObjectKey) -> bool {
    if state.store.get(key).is_some() || state.registry.is_expected_next(key, &state.store) {
        return true;
    }
    match &state.persister {
        Some(p) => p.exists(key).await,
        None => false,
    }
}

/// Serves a pushed object.
async fn object(
    state: &AppState,
    key: ObjectKey,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    if let Some(resp) = from_memory(state, &key, query, method, headers) {
        return resp;
    }
    if let Some(persister) = &state.persister {
        match persister.read(&key).await {
            Ok(Some(disk)) => {
                return finished(
                    state,
                    &key,
                    None,
                    disk.bytes,
                    disk.modified,
                    query,
                    method,
                    headers,
                );
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(key = %key, error = %e, "reading persisted object failed");
                return error_response(e.kind(), "reading the object failed");
            }
        }
    }
    if state.registry.is_expected_next(&key, &state.store) {
        let wait = Duration::from_secs_f64(state.cfg.live.live_edge_wait_secs);
        let (n, _held) = HeldGuard::new(
            &state.held_edge,
            state
                .metrics
                .held
                .get_or_create(&HeldLabels { kind: "edge" })
                .clone(),
        );
        if n >= state.cfg.limits.max_held_edge_requests {
            return retry_later("too many requests held for the next segment; retry");
        }
        let arrived = tokio::select! {
            a = state.store.wait_for(&key, wait) => a.is_some(),
            _ = state.drain.cancelled() => return retry_later("the origin is draining"),
        };
        if arrived {
            if let Some(resp) = from_memory(state, &key, query, method, headers) {
                return resp;
            }
        }
        tracing::debug!(key = %key, "live-edge wait ended without the segment");
    } else if let Some(resp) = super::replay::archived_object(state, &key, method, headers).await {
        // A segment the encoder DELETEd (past the delete retention) stays fetchable under
        // its live name from the archive, for the DVR window and time-shifted players. (The
        // next live segment is never archived yet: no index lookup for it.)
        return resp;
    }
    error_response(ErrorKind::NotFound, format!("no object at /{key}"))
}

fn from_memory(
    state: &AppState,
    key: &ObjectKey,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    let object = state.store.get(key)?;
    if deletion_due(state, &object) {
        return None;
    }
    match object.state() {
        ObjectState::Aborted => None,
        ObjectState::Uploading => {
            let kind = state.registry.track_kind(key, object.init().as_deref());
            Some(live_response(
                content_type(key, kind),
                method,
                object.reader(),
            ))
        }
        ObjectState::Complete => {
            let body = object.complete_body()?;
            Some(finished(
                state,
                key,
                Some(&object),
                body.bytes,
                body.finished_at,
                query,
                method,
                headers,
            ))
        }
    }
}

fn deletion_due(state: &AppState, object: &Object) -> bool {
    let retention = Duration::from_secs(state.cfg.live.delete_retention_secs);
    object
        .deleted_at()
        .is_some_and(|t| t.elapsed() >= retention)
}

#[allow(clippy::too_many_arguments)]
fn finished(
    state: &AppState,
    key: &ObjectKey,
    object: Option<&Arc<Object>>,
    bytes: Bytes,
    modified: SystemTime,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let mut etag = h::etag(modified, bytes.len() as u64);
    let mut bytes = bytes;
    if key.extension().as_deref() == Some("mpd") {
        let time_url = time_url(state, headers);
        // The DVR window: the setting, or ?dvr= capped by it; 0 keeps the encoder's.
        let dvr = match super::llhls::dvr_query(query) {
            Some(d) => d.min(state.cfg.live.dvr_window_secs as f64),
            None => state.cfg.live.dvr_window_secs as f64,
        };
        let rw = mpd::Rewrite {
            time_url: &time_url,
            target_latency_ms: state.cfg.live.target_latency_ms,
            time_shift_buffer_secs: (dvr > 0.0 && state.archive.is_some()).then_some(dvr),
        };
        match mpd::rewrite(&bytes, &rw) {
            Ok(out) => {
                bytes = Bytes::from(out);
                // The served bytes depend on the Host the client used.
                etag = format!(
                    "{}-{:x}\"",
                    etag.trim_end_matches('"'),
                    fnv(format!("{time_url} {dvr}").as_bytes())
                );
            }
            Err(e) => tracing::warn!(key = %key, error = %e, "MPD served as uploaded"),
        }
    }
    let kind = state
        .registry
        .track_kind(key, object.and_then(|o| o.init()).as_deref());
    complete_response(Complete {
        bytes,
        content_type: content_type(key, kind),
        cache_control: cache_control_finished(key),
        etag,
        last_modified: modified,
        method,
        request: headers,
    })
}

/// The absolute URL of `/time` as the client reaches this listener: from `Host` (or the
/// HTTP/2 authority), falling back to the bound address; only host-name characters pass.
pub(super) fn time_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| state.egress_addr.to_string());
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ if state.cfg.tls.egress.is_some() => "https",
        _ => "http",
    };
    format!("{scheme}://{host}/time")
}

/// FNV-1a, for a short tag of the rewrite input.
fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
