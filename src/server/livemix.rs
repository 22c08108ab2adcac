//! LiveMix compatibility (alwitt/livemix's control and edge node APIs, on casterpak's own
//! listeners), so LiveMix users' scripts keep working:
//!
//! ```text
//! API listener   POST|GET /v1/source                         GET|DELETE /v1/source/{id}
//!                PUT  /v1/source/{id}/streaming?new_state=true|false
//!                POST|GET /v1/source/{id}/recording          {"alias","description","start_time_epoch"}
//!                GET  /v1/recording   GET|DELETE /v1/recording/{id}
//!                POST /v1/recording/{id}/stop                GET /v1/recording/{id}/segment
//! ingest         POST /v1/playlist   (headers Video-Source-Name, MPEG-TS-URI-Prefix: file:///...)
//! egress         GET  /v1/vod/live/{source id}/{name}.m3u8|{segment}.ts
//!                GET  /v1/vod/recording/{recording id}/{name}.m3u8
//! ```
//!
//! Every JSON answer has LiveMix's envelope: `{"success","request_id", ...}`, errors
//! `{"success":false,"request_id","error":{"code","message","detail"}}` with `code` the HTTP
//! status; the request id is the `X-Request-ID` header when given, else a new UUID, and is
//! echoed in that header. Differences on purpose: unknown ids are 404 (LiveMix: 500 or 400),
//! a duplicate source name is 409, and a recording without `start_time_epoch` starts now
//! (LiveMix: 1970 when the body is not empty).
//!
//! A source `NAME` is the casterpak stream `livemix/NAME`: its pushed segments are copied
//! into the data dir, archived like any HLS push, recorded and replayed by the archive.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};

use super::AppState;
use crate::archive::db::{self, SourceRow};
use crate::archive::{self, Archive, ArchiveError, NewRecording, RecordingRow};
use crate::events::{CompletedObject, IngestEvent};
use crate::store::ObjectKey;

type Shared = Arc<AppState>;

/// Go's zero `time.Time` as LiveMix serialises it (an open recording's `end_ts`).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The stream of a source.
pub fn stream_of(name: &str) -> String {
    format!("livemix/{name}")
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn with_id(mut resp: Response, rid: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// `{"success":true,"request_id",...fields}`.
fn ok(rid: &str, fields: Value) -> Response {
    let mut body = json!({"success": true, "request_id": rid});
    if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
        b.extend(f);
    }
    with_id(axum::Json(body).into_response(), rid)
}

fn fail(rid: &str, status: StatusCode, message: &str, detail: impl std::fmt::Display) -> Response {
    let body = json!({
        "success": false,
        "request_id": rid,
        "error": {"code": status.as_u16(), "message": message, "detail": detail.to_string()},
    });
    with_id((status, axum::Json(body)).into_response(), rid)
}

fn from_archive(rid: &str, e: ArchiveError) -> Response {
    let status = super::http::status_for(e.kind());
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "livemix api: archive failure");
        return fail(rid, status, "internal error", "");
    }
    fail(rid, status, "request failed", e)
}

/// Runs `f` (the archive work of one request) on a blocking thread and answers its fields
/// in the envelope, or its error.
async fn respond(
    state: &AppState,
    rid: &str,
    f: impl FnOnce(Arc<Archive>) -> Result<Value, ArchiveError> + Send + 'static,
) -> Response {
    let result = match state.archive_on() {
        Ok(a) => super::archive_blocking(move || f(a)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(fields) => ok(rid, fields),
        Err(e) => from_archive(rid, e),
    }
}

fn source_json(a: &Archive, s: &SourceRow) -> Value {
    let newest = a.bounds(&stream_of(&s.name)).ok().flatten().map(|(_, n)| n);
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "segment_length": s.segment_len,
        "streaming": s.streaming,
        "local_time": newest.map_or(ZERO_TIME.to_owned(), archive::format_ms),
        "created_at": archive::format_ms(s.created_ms),
        "updated_at": archive::format_ms(s.updated_ms),
    });
    if let Some(d) = &s.description {
        v["description"] = json!(d);
    }
    if let Some(p) = &s.playlist {
        v["playlist"] = json!(p);
    }
    v
}

fn recording_json(r: &RecordingRow, source_id: &str) -> Value {
    // LiveMix: a stopped recording is inactive at once (casterpak's state becomes `done`
    // once the segment covering the end is archived).
    let active = r.state.is_active() && r.end_ms.is_none_or(|e| e > archive::now_ms());
    let mut v = json!({
        "id": r.id,
        "source": source_id,
        "start_ts": archive::format_ms(r.start_ms),
        "end_ts": match (active, r.end_ms) {
            (false, Some(e)) => archive::format_ms(e),
            _ => ZERO_TIME.to_owned(),
        },
        "active": if active { 1 } else { -1 },
        "created_at": archive::format_ms(r.created_ms),
        "updated_at": archive::format_ms(r.updated_ms),
    });
    if let Some(t) = &r.title {
        v["alias"] = json!(t);
    }
    if let Some(d) = &r.description {
        v["description"] = json!(d);
    }
    v
}

fn source_by_id(a: &Archive, id: &str) -> Result<SourceRow, ArchiveError> {
    a.with_conn(|c| db::sources(c, Some(id), None))?
        .into_iter()
        .next()
        .ok_or_else(|| ArchiveError::NotFound(format!("unknown video source {id}")))
}

/// A recording made through this API (its stream is a source's) and that source's id.
fn livemix_recording(a: &Archive, id: &str) -> Result<(RecordingRow, String), ArchiveError> {
    let r = a.recording(id)?;
    let source = r
        .stream
        .strip_prefix("livemix/")
        .and_then(|name| a.with_conn(|c| db::sources(c, None, Some(name))).ok())
        .and_then(|v| v.into_iter().next())
        .map(|s| s.id)
        .unwrap_or_default();
    Ok((r, source))
}

/// The LiveMix routes of the API listener.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/source", post(create_source).get(list_sources))
        .route("/v1/source/{id}", get(get_source).delete(delete_source))
        .route("/v1/source/{id}/streaming", put(set_streaming))
        .route(
            "/v1/source/{id}/recording",
            post(start_recording).get(source_recordings),
        )
        .route("/v1/recording", get(list_recordings))
        .route(
            "/v1/recording/{id}",
            get(get_recording).delete(delete_recording),
        )
        .route("/v1/recording/{id}/stop", post(stop_recording))
        .route("/v1/recording/{id}/segment", get(recording_segments))
}

fn parse_object(body: &Bytes, allow_empty: bool) -> Result<serde_json::Map<String, Value>, String> {
    if allow_empty && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

async fn create_source(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let m = match parse_object(&body, false) {
        Ok(m) => m,
        Err(e) => return fail(&rid, StatusCode::BAD_REQUEST, "bad request", e),
    };
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let segment_len = m.get("segment_len").and_then(Value::as_i64).unwrap_or(0);
    let valid_name = !name.is_empty()
        && !name.contains('/')
        && ObjectKey::from_decoded(&stream_of(&name)).is_ok();
    if !valid_name || segment_len < 1 {
        return fail(
            &rid,
            StatusCode::BAD_REQUEST,
            "missing required values to define new video source",
            "name (a plain name) and segment_len (>= 1) are required",
        );
    }
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let now = archive::now_ms();
    let row = SourceRow {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        segment_len,
        description: text("description"),
        playlist: text("playlist"),
        streaming: -1,
        created_ms: now,
        updated_ms: now,
    };
    respond(&state, &rid, move |a| {
        if !a.with_conn(|c| db::insert_source(c, &row))? {
            return Err(ArchiveError::Conflict(format!(
                "a video source named {} exists",
                row.name
            )));
        }
        let v = source_json(&a, &row);
        Ok(json!({ "source": v }))
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
struct SourceQuery {
    source_name: Option<String>,
}

async fn list_sources(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<SourceQuery>,
) -> Response {
    let rid = request_id(&headers);
    respond(&state, &rid, move |a| {
        let rows = a.with_conn(|c| db::sources(c, None, q.source_name.as_deref()))?;
        if q.source_name.is_some() && rows.is_empty() {
            return Err(ArchiveError::NotFound("unknown video source name".into()));
        }
        let v = rows.iter().map(|s| source_json(&a, s)).collect::<Vec<_>>();
        Ok(json!({ "sources": v }))
    })
    .await
}

async fn get_source(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let rid = request_id(&headers);
    respond(&state, &rid, move |a| {
        let v = source_json(&a, &source_by_id(&a, &id)?);
        Ok(json!({ "source": v }))
    })
    .await
}

async fn delete_source(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let rid = request_id(&headers);
    respond(&state, &rid, move |a| {
        if !a.with_conn(|c| db::delete_source(c, &id))? {
            return Err(ArchiveError::NotFound(format!("unknown video source {id}")));
        }
        Ok(json!({}))
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
struct StreamingQuery {
    new_state: Option<String>,
}

async fn set_streaming(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<StreamingQuery>,
) -> Response {
    let rid = request_id(&headers);
    let Some(new_state) = q.new_state else {
        return fail(
            &rid,
            StatusCode::BAD_REQUEST,
            "bad request",
            "new_state is required",
        );
    };
    // LiveMix: "true" streams, any other value stops.
    let streaming = if new_state == "true" { 1 } else { -1 };
    respond(&state, &rid, move |a| {
        if !a.with_conn(|c| db::set_source_streaming(c, &id, streaming, archive::now_ms()))? {
            return Err(ArchiveError::NotFound(format!("unknown video source {id}")));
        }
        Ok(json!({}))
    })
    .await
}

async fn start_recording(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let rid = request_id(&headers);
    let m = match parse_object(&body, true) {
        Ok(m) => m,
        Err(e) => return fail(&rid, StatusCode::BAD_REQUEST, "bad request", e),
    };
    // Missing start_time_epoch = now (LiveMix took 1970 and recorded everything cached).
    let start_ms = match m.get("start_time_epoch") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(secs) if secs > 0 && secs < 1 << 40 => Some(secs * 1000),
            _ => {
                return fail(
                    &rid,
                    StatusCode::BAD_REQUEST,
                    "bad request",
                    "start_time_epoch must be positive Unix seconds",
                )
            }
        },
    };
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let (alias, description) = (text("alias"), text("description"));
    respond(&state, &rid, move |a| {
        let source = source_by_id(&a, &id)?;
        let r = a.create_recording(
            NewRecording {
                stream: stream_of(&source.name),
                start_ms,
                end_ms: None,
                title: alias,
                description,
                max_duration_secs: None,
            },
            archive::now_ms(),
        )?;
        let v = recording_json(&r, &source.id);
        Ok(json!({ "recording": v }))
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
struct ActiveQuery {
    only_active: Option<String>,
}

async fn source_recordings(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ActiveQuery>,
) -> Response {
    let rid = request_id(&headers);
    let only_active = q.only_active.is_some_and(|v| !v.is_empty());
    respond(&state, &rid, move |a| {
        let source = source_by_id(&a, &id)?;
        let v = a
            .recordings(Some(&stream_of(&source.name)), None)?
            .iter()
            .filter(|r| !only_active || r.state.is_active())
            .map(|r| recording_json(r, &source.id))
            .collect::<Vec<_>>();
        Ok(json!({ "recordings": v }))
    })
    .await
}

async fn list_recordings(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let rid = request_id(&headers);
    respond(&state, &rid, move |a| {
        let sources = a.with_conn(|c| db::sources(c, None, None))?;
        let mut out = Vec::new();
        for s in &sources {
            for r in a.recordings(Some(&stream_of(&s.name)), None)? {
                out.push(recording_json(&r, &s.id));
            }
        }
        let v = out;
        Ok(json!({ "recordings": v }))
    })
    .await
}

async fn get_recording(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let rid = request_id(&headers);
    respond(&state, &rid, move |a| {
        let (r, source) = livemix_recording(&a, &id)?;
        let v = recording_json(&r, &source);
        Ok(json!({ "recording": v }))
    })
    .await
}

async fn delete_recording(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let rid = request_id(&headers);
    respond(&state, &rid, move |a| {
        a.delete_recording(&id)?;
        Ok(json!({}))
    })
    .await
}

async fn stop_recording(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let rid = request_id(&headers);
    respond(&state, &rid, move |a| {
        let (r, source) = livemix_recording(&a, &id)?;
        // LiveMix: stopping a stopped recording is a no-op.
        let r = if r.state.is_active() {
            a.stop_recording(&id, None, archive::now_ms())?
        } else {
            r
        };
        let v = recording_json(&r, &source);
        Ok(json!({ "recording": v }))
    })
    .await
}

async fn recording_segments(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let rid = request_id(&headers);
    let base = format!("http://{}", state.egress_addr);
    respond(&state, &rid, move |a| {
        let (r, source) = livemix_recording(&a, &id)?;
        let end = r
            .end_ms
            .unwrap_or(archive::now_ms() + 1)
            .max(r.start_ms + 1);
        let view = a.view(&r.stream, r.start_ms, end)?;
        let mut out = Vec::new();
        for s in &view {
            for g in &s.segments {
                out.push(json!({
                    "id": format!("{}-{}-{}", s.id, g.rep, g.number),
                    "name": g.file,
                    "start": archive::format_ms(g.wall_ms),
                    "end": archive::format_ms(g.wall_ms + g.dur_ms),
                    "length": g.dur_ms as f64 / 1000.0,
                    "uri": format!("{base}/archive/{}/{}", s.id, g.file),
                    "source": source,
                    "uploaded": 1,
                    "created_at": archive::format_ms(g.wall_ms + g.dur_ms),
                    "updated_at": archive::format_ms(g.wall_ms + g.dur_ms),
                }));
            }
        }
        let v = out;
        Ok(json!({ "segments": v }))
    })
    .await
}

// ---- ingest: POST /v1/playlist ----

/// Largest playlist body read.
const MAX_PLAYLIST_BYTES: usize = 1 << 20;

/// A `file:///...` prefix as an absolute path; `None` for other schemes or relative paths.
fn file_prefix(prefix: &str) -> Option<PathBuf> {
    let rest = prefix.trim().strip_prefix("file://")?;
    let decoded = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .ok()?;
    let path = PathBuf::from(decoded.as_ref());
    path.is_absolute().then_some(path)
}

/// Whether `path` (canonical) lies under one of the canonical `roots`.
fn allowed(path: &FsPath, roots: &[PathBuf]) -> bool {
    roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .any(|root| path.starts_with(root))
}

/// `POST /v1/playlist` on the ingest listener: LiveMix's edge input. Reads each listed
/// segment from `MPEG-TS-URI-Prefix` + its file name (only under `livemix.allowed_roots`;
/// anything else, `..` included, is 403), copies the ones not copied yet into the data dir
/// as objects of the stream `livemix/<Video-Source-Name>`, then stores the playlist there
/// (`vid.m3u8`) and publishes it, so the archive takes the segments like any HLS push.
pub async fn playlist(state: &Arc<AppState>, headers: &HeaderMap, body: Bytes) -> Response {
    let rid = request_id(headers);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let Some(name) = header("video-source-name") else {
        return fail(
            &rid,
            StatusCode::BAD_REQUEST,
            "request missing Video-Source-Name",
            "",
        );
    };
    let Some(prefix) = header("mpeg-ts-uri-prefix") else {
        return fail(
            &rid,
            StatusCode::BAD_REQUEST,
            "request missing MPEG-TS-URI-Prefix",
            "",
        );
    };
    let Some(dir) = file_prefix(&prefix) else {
        return fail(
            &rid,
            StatusCode::BAD_REQUEST,
            "unsupported MPEG-TS-URI-Prefix",
            "only file:///absolute/path prefixes are read",
        );
    };
    let (Some(persister), Some(archive)) = (state.persister.clone(), state.archive.clone()) else {
        return fail(&rid, StatusCode::NOT_FOUND, "the archive is off", "");
    };
    let sources = {
        let a = Arc::clone(&archive);
        let n = name.clone();
        super::archive_blocking(move || a.with_conn(|c| db::sources(c, None, Some(&n)))).await
    };
    match sources {
        Ok(s) if !s.is_empty() => {}
        Ok(_) => return fail(&rid, StatusCode::NOT_FOUND, "unknown video source", &name),
        Err(e) => return from_archive(&rid, e),
    }
    if body.len() > MAX_PLAYLIST_BYTES {
        return fail(
            &rid,
            StatusCode::PAYLOAD_TOO_LARGE,
            "playlist too large",
            "",
        );
    }
    let Some(media) = std::str::from_utf8(&body)
        .ok()
        .and_then(crate::hls::parse::parse_media)
        .filter(|m| !m.segments.is_empty())
    else {
        return fail(
            &rid,
            StatusCode::BAD_REQUEST,
            "unable to parse sent playlist",
            "",
        );
    };
    let stream = stream_of(&name);
    let Ok(playlist_key) = ObjectKey::from_decoded(&format!("{stream}/vid.m3u8")) else {
        return fail(
            &rid,
            StatusCode::BAD_REQUEST,
            "bad video source name",
            &name,
        );
    };
    let roots = state.cfg.livemix.allowed_roots.clone();
    if roots.is_empty() {
        return fail(
            &rid,
            StatusCode::FORBIDDEN,
            "file ingest is off",
            "set livemix.allowed_roots to the folders segments may be read from",
        );
    }
    for seg in &media.segments {
        let file = seg.uri.as_str();
        let key = match playlist_key.sibling(file) {
            Ok(k) if !file.contains('/') => k,
            _ => return fail(&rid, StatusCode::FORBIDDEN, "segment name refused", file),
        };
        let src = dir.join(file);
        let Ok(canonical) = tokio::fs::canonicalize(&src).await else {
            return fail(&rid, StatusCode::NOT_FOUND, "segment not found", file);
        };
        if !allowed(&canonical, &roots) {
            tracing::warn!(source = name, path = %canonical.display(), "livemix segment outside the allowed roots");
            return fail(
                &rid,
                StatusCode::FORBIDDEN,
                "segment outside the allowed roots",
                file,
            );
        }
        let dst = key.to_path(persister.root());
        let src_len = tokio::fs::metadata(&canonical)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if src_len > state.cfg.live.max_object_bytes {
            return fail(
                &rid,
                StatusCode::PAYLOAD_TOO_LARGE,
                "segment too large",
                file,
            );
        }
        if tokio::fs::metadata(&dst)
            .await
            .is_ok_and(|m| m.len() == src_len)
        {
            continue;
        }
        let bytes = match tokio::fs::read(&canonical).await {
            Ok(b) => Bytes::from(b),
            Err(e) => return fail(&rid, StatusCode::NOT_FOUND, "segment not readable", e),
        };
        if let Err(e) = persister.write(&key, bytes, SystemTime::now(), 0).await {
            tracing::error!(error = %e, "livemix: storing a segment failed");
            return fail(
                &rid,
                StatusCode::INTERNAL_SERVER_ERROR,
                "storing failed",
                "",
            );
        }
    }
    let now = SystemTime::now();
    if let Err(e) = persister.write(&playlist_key, body.clone(), now, 0).await {
        tracing::error!(error = %e, "livemix: storing the playlist failed");
        return fail(
            &rid,
            StatusCode::INTERNAL_SERVER_ERROR,
            "storing failed",
            "",
        );
    }
    state.registry.learn(&playlist_key, &body, None);
    state
        .events
        .publish(IngestEvent::ObjectComplete(Arc::new(CompletedObject {
            key: playlist_key,
            bytes: body,
            chunks: Vec::new(),
            init: None,
            finished_at: now,
            persisted: true,
        })));
    ok(&rid, json!({}))
}

// ---- egress: /v1/vod/... ----

/// `GET /v1/vod/live/{source id}/{file}` and `/v1/vod/recording/{recording id}/{file}`:
/// any `*.m3u8` is the playlist (live: the source's last pushed playlist, only while its
/// streaming flag is on; recording: its HLS media playlist), `*.ts` a live segment.
pub async fn vod(
    state: &AppState,
    recording: bool,
    id: &str,
    file: &str,
    method: &http::Method,
    headers: &HeaderMap,
) -> http::Response<super::http::Body> {
    use super::http::{error_response, Body};
    use crate::error::ErrorKind;
    let Ok(a) = state.archive_on() else {
        return error_response(ErrorKind::NotFound, "the archive is off");
    };
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let id_owned = id.to_owned();
    if recording {
        if ext.as_deref() != Some("m3u8") {
            return error_response(ErrorKind::BadRequest, "unsupported target filename");
        }
        let a2 = Arc::clone(&a);
        let rec = super::archive_blocking(move || a2.recording(&id_owned)).await;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => return error_response(e.kind(), e),
        };
        let a3 = Arc::clone(&a);
        let (stream, start, end) = (rec.stream.clone(), rec.start_ms, rec.end_ms);
        let view = super::archive_blocking(move || {
            let end = end.unwrap_or(archive::now_ms() + 1).max(start + 1);
            a3.view(&stream, start, end)
        })
        .await;
        let view = match view {
            Ok(v) => v,
            Err(e) => return error_response(e.kind(), e),
        };
        let Some(rep) = archive::replay::representations(&view).into_iter().next() else {
            return error_response(ErrorKind::NotFound, "the recording holds no segment");
        };
        let opts = archive::replay::ViewOptions {
            growing: rec.state.is_active(),
            query: "",
            now_ms: archive::now_ms(),
            time_url: "",
            media_prefix: "media_",
            start_offset_ms: 0,
        };
        let Some(text) = archive::replay::hls_media(&view, &rep.rep, &opts) else {
            return error_response(ErrorKind::NotFound, "the recording holds no segment");
        };
        return playlist_response(Bytes::from(text), method);
    }
    let a2 = Arc::clone(&a);
    let source = super::archive_blocking(move || source_by_id(&a2, &id_owned)).await;
    let source = match source {
        Ok(s) => s,
        Err(e) => return error_response(e.kind(), e),
    };
    if source.streaming != 1 {
        return error_response(
            ErrorKind::NotFound,
            format!(
                "video source {} is not streaming (PUT .../streaming?new_state=true)",
                source.name
            ),
        );
    }
    let stream = stream_of(&source.name);
    match ext.as_deref() {
        Some("m3u8") => {
            let Some(p) = &state.persister else {
                return error_response(ErrorKind::NotFound, "no playlist");
            };
            let Ok(key) = ObjectKey::from_decoded(&format!("{stream}/vid.m3u8")) else {
                return error_response(ErrorKind::NotFound, "no playlist");
            };
            match p.read(&key).await {
                Ok(Some(d)) => playlist_response(d.bytes, method),
                _ => error_response(ErrorKind::NotFound, "no playlist pushed yet"),
            }
        }
        Some("ts") => {
            let Ok(key) = ObjectKey::from_decoded(&format!("{stream}/{file}")) else {
                return error_response(ErrorKind::Forbidden, "not a segment name");
            };
            let disk = match &state.persister {
                Some(p) => p.read(&key).await.ok().flatten(),
                None => None,
            };
            match disk {
                Some(d) => {
                    let mut r = http::Response::new(Body::full(d.bytes));
                    r.headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
                    r.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static(super::http::CACHE_SEGMENT),
                    );
                    r
                }
                None => match super::replay::archived_object(state, &key, method, headers).await {
                    Some(r) => r,
                    None => error_response(ErrorKind::NotFound, "unknown segment name"),
                },
            }
        }
        _ => error_response(ErrorKind::BadRequest, "unsupported target filename"),
    }
}

fn playlist_response(bytes: Bytes, method: &http::Method) -> http::Response<super::http::Body> {
    use super::http::Body;
    let len = bytes.len();
    let mut r = http::Response::new(if method == http::Method::HEAD {
        Body::empty()
    } else {
        Body::full(bytes)
    });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(super::http::CACHE_MANIFEST),
    );
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    r
}
