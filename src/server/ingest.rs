//! The ingest listener: PUT/POST bodies become store objects frame by frame, DELETE is
//! advisory.
//!
//! Written for ffmpeg's HTTP muxers as they behave (see `ingest-ffmpeg.md`): every body is
//! chunked with no Content-Type, connections are persistent and pipelined, status codes are
//! ignored, and closing a persistent connection kills the encoder. So every request is
//! answered at once with an empty body after its body ends, even refusals, and refused
//! bodies are read and dropped instead of cutting the connection.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::http::{error_response, Body, Reply};
use super::metrics::{IngestBytesLabels, IngestLabels, ReasonLabels, RequestKind};
use super::observe::{observe, redact_path, redact_query, Counted, Seen};
use super::AppState;
use crate::auth::{IngestDecision, Refusal};
use crate::cmaf::{self, BoxScanner, InitInfo, ScanEvent};
use crate::error::ErrorKind;
use crate::events::{CompletedObject, IngestEvent};
use crate::store::{Object, ObjectKey, StoreError};

/// Handles one ingest request: authentication first (before any body byte is read), then
/// the upload or DELETE; one access log line and the metrics when the answer ends.
///
/// Refusals follow what ffmpeg can read (`ops-security.md` section 2.1): a request with
/// `Expect: 100-continue` (or without a body) and no credentials gets 401 with
/// `WWW-Authenticate: Basic realm="casterpak-ingest"`, so ffmpeg retries with the URL's
/// user and password; wrong credentials, a path they do not cover, or a body sent without
/// credentials and without `Expect` get 403. Every refusal closes the connection and
/// reads nothing of the body, so nothing of it is stored or served.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Result<Response<Counted<Body>>, std::convert::Infallible> {
    let started = std::time::Instant::now();
    let raw_path = req.uri().path().to_owned();
    let mut seen = Seen {
        listener: "ingest",
        method: req.method().clone(),
        path: redact_path(&raw_path),
        query: req.uri().query().map(|q| redact_query(q, None)),
        kind: if matches!(*req.method(), Method::PUT | Method::POST) {
            RequestKind::Upload
        } else {
            RequestKind::Other
        },
        started,
        peer,
        principal: None,
    };
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let resp = match state.ingest_auth.check(&raw_path, authorization.as_deref()) {
        IngestDecision::Open => dispatch(&state, req, raw_path).await,
        IngestDecision::Allowed { path, principal } => {
            seen.principal = Some(principal);
            dispatch(&state, req, path).await
        }
        IngestDecision::Challenge => {
            let expect = req
                .headers()
                .get(http::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            let bodyless = !matches!(*req.method(), Method::PUT | Method::POST);
            if expect || bodyless {
                // ffmpeg's first request per connection: the normal start of an
                // authenticated push, not a failure.
                challenge(&seen)
            } else {
                refuse(&state, &seen, Refusal::NoCredentials)
            }
        }
        IngestDecision::Refused(why) => refuse(&state, &seen, why),
    };
    Ok(observe(
        &state.metrics,
        seen,
        resp.unwrap_or_else(|e| match e {}),
    ))
}

/// 401 with the Basic challenge and `Connection: close`, nothing of the body read.
fn challenge(seen: &Seen) -> Reply {
    tracing::debug!(peer = %seen.peer, path = %seen.path, "ingest challenge (401)");
    let mut r = error_response(ErrorKind::Unauthenticated, "credentials required");
    r.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Basic realm=\"casterpak-ingest\", charset=\"UTF-8\""),
    );
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    Ok(r)
}

/// A refused push: 403, `Connection: close`, nothing of the body read.
fn refuse(state: &AppState, seen: &Seen, why: Refusal) -> Reply {
    let reason = why.label();
    tracing::warn!(
        peer = %seen.peer,
        method = %seen.method,
        path = %seen.path,
        reason,
        "ingest request refused by authentication; connection closed"
    );
    state
        .metrics
        .ingest_auth_failures
        .get_or_create(&ReasonLabels { reason })
        .inc();
    let mut r = error_response(
        ErrorKind::Forbidden,
        format!("refused: {}", reason.replace('_', " ")),
    );
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    Ok(r)
}

/// The request after authentication; `path` is where it writes (a stream key stripped).
async fn dispatch(state: &Arc<AppState>, req: Request<Incoming>, path: String) -> Reply {
    let state = Arc::clone(state);
    let method = req.method().clone();
    let key = match ObjectKey::from_uri_path(&path) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(%method, path, error = %e, "ingest path refused");
            drain(req.into_body(), state.cfg.live.max_object_bytes).await;
            return Ok(error_response(e.kind(), e));
        }
    };
    if method == Method::POST && path == "/v1/playlist" {
        // LiveMix's edge input: the body is the playlist, the segments are read from files.
        let headers = req.headers().clone();
        let body = match http_body_util::Limited::new(req.into_body(), 1 << 20)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => return Ok(error_response(ErrorKind::TooLarge, "playlist too large")),
        };
        let resp = super::livemix::playlist(&state, &headers, body).await;
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Ok(Response::from_parts(parts, Body::full(bytes)));
    }
    match method {
        Method::PUT | Method::POST
            if state
                .archive
                .as_ref()
                .is_some_and(|a| a.is_disabled(key.dir())) =>
        {
            // ffmpeg ignores status codes: only a closed connection stops it storing. The
            // body is not read; hyper closes the connection after this answer.
            tracing::warn!(key = %key, "push to a disabled stream refused; closing the connection");
            let mut r = error_response(ErrorKind::Forbidden, "stream disabled");
            r.headers_mut()
                .insert(http::header::CONNECTION, "close".parse().unwrap());
            Ok(r)
        }
        Method::PUT | Method::POST => Ok(upload(&state, key, req.into_body()).await),
        Method::DELETE => {
            drain(req.into_body(), 1 << 20).await;
            state.events.publish(IngestEvent::Deleted(key.clone()));
            delete(&state, key).await;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => {
            drain(req.into_body(), 1 << 20).await;
            let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut()
                .insert(http::header::ALLOW, "PUT, POST, DELETE".parse().unwrap());
            Ok(r)
        }
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Reads and drops a body (up to `limit` bytes) so the connection stays usable.
async fn drain(mut body: Incoming, limit: u64) {
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            seen += data.len() as u64;
            if seen > limit {
                break;
            }
        }
    }
}

/// Whether the body is ISO-BMFF is known after its first 8 bytes.
enum Scan {
    Undecided,
    Boxes(BoxScanner),
    Opaque,
}

struct Upload<'a> {
    state: &'a AppState,
    object: &'a Object,
    scan: Scan,
    events: Vec<ScanEvent>,
    warned: bool,
}

impl Upload<'_> {
    fn feed(&mut self, data: &[u8]) {
        match &mut self.scan {
            Scan::Opaque => {}
            Scan::Boxes(scanner) => {
                let r = scanner.feed(data, &mut self.events);
                self.after_feed(r);
            }
            // Frames are held back in `upload` until the type is known.
            Scan::Undecided => {}
        }
    }

    fn after_feed(&mut self, result: Result<(), cmaf::ScanError>) {
        if let Err(e) = result {
            if !self.warned {
                self.warned = true;
                tracing::warn!(key = %self.object.key(), error = %e, "box structure broken; stored without chunk index");
            }
        }
        for event in self.events.drain(..) {
            match event {
                ScanEvent::Chunk(chunk) => {
                    self.object.push_chunk(chunk);
                    self.state
                        .llhls
                        .on_chunk(&self.state.registry, self.object.key(), chunk);
                }
                ScanEvent::Moov(moov) => match InitInfo::from_moov(&moov) {
                    Ok(init) => self.object.set_init(init),
                    Err(e) => {
                        tracing::warn!(key = %self.object.key(), error = %e, "init segment not understood")
                    }
                },
            }
        }
    }

    fn finish(&mut self) {
        if let Scan::Boxes(scanner) = &mut self.scan {
            let r = scanner.finish(&mut self.events);
            self.after_feed(r);
        }
    }
}

async fn upload(state: &Arc<AppState>, key: ObjectKey, mut body: Incoming) -> Response<Body> {
    let limit = state.cfg.live.max_object_bytes;
    let (object, old) = state.store.begin(key.clone());
    // hyper drops this future when the connection fails mid-body (the usual way an
    // encoder's upload is cut), so the abort must also happen on drop.
    let guard = AbortOnDrop {
        state: Arc::clone(state),
        object: Arc::clone(&object),
        previous: old.clone(),
    };
    let mut up = Upload {
        state,
        object: &object,
        scan: Scan::Undecided,
        events: Vec::new(),
        warned: false,
    };
    // Frames that arrive before the type is known are kept here so the scanner sees them.
    let mut pending_head: Vec<Bytes> = Vec::new();
    let gap = Duration::from_secs(state.cfg.limits.ingest_frame_gap_secs);
    // Before the first byte the wait may be a whole segment (ffmpeg without `-streaming`
    // opens a segment's PUT when the segment starts and sends it when it ends).
    let first = Duration::from_secs(state.cfg.limits.ingest_header_timeout_secs).max(gap);
    let count = |result: &'static str, object: &Object| {
        ingest_counted(state, &key, object, result);
    };
    loop {
        let wait = if object.is_empty() { first } else { gap };
        let Ok(next) = tokio::time::timeout(wait, body.frame()).await else {
            tracing::warn!(key = %key, gap_secs = wait.as_secs(), received = object.len(), "upload stalled past the frame-gap timeout; cut, readers aborted, connection closed");
            guard.abort();
            count("truncated", &object);
            let mut r = error_response(ErrorKind::TimedOut, "upload stalled; cut");
            r.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            return r;
        };
        match next {
            None => break,
            Some(Err(e)) => {
                tracing::warn!(key = %key, error = %e, received = object.len(), "upload interrupted; readers aborted");
                guard.abort();
                count("truncated", &object);
                return error_response(ErrorKind::BadRequest, "upload interrupted");
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if object.len() + data.len() as u64 > limit {
                    let err = StoreError::TooLarge {
                        key: key.to_string(),
                        limit,
                    };
                    tracing::warn!(key = %key, limit, "upload over the size limit; refused");
                    guard.abort();
                    count("rejected", &object);
                    drain(body, limit.saturating_mul(4)).await;
                    return error_response(err.kind(), err);
                }
                object.append(data.clone());
                if matches!(up.scan, Scan::Undecided) {
                    pending_head.push(data);
                    let total: usize = pending_head.iter().map(Bytes::len).sum();
                    if total >= 8 {
                        up.feed_initial(&std::mem::take(&mut pending_head));
                    }
                } else {
                    up.feed(&data);
                }
            }
        }
    }
    if let Scan::Undecided = up.scan {
        up.feed_initial(&pending_head);
    }
    up.finish();
    let Some(done) = object.complete() else {
        return error_response(ErrorKind::Internal, "object was not uploading");
    };
    state.registry.on_complete(&object, &done.bytes);
    state.llhls.on_complete(&state.registry, &key);
    place_late_segments(state, &key);
    count("ok", &object);
    if let Some((rep, _)) = state.registry.segment_of(&key) {
        state.metrics.edge_advanced(key.dir(), &rep.id);
    }
    tracing::debug!(key = %key, bytes = done.bytes.len(), chunks = object.chunks().len(), "upload complete");
    let completed = move |persisted: bool, object: &Object, bytes: Bytes| {
        IngestEvent::ObjectComplete(Arc::new(CompletedObject {
            key: object.key().clone(),
            bytes,
            chunks: object.chunks(),
            init: object.init(),
            finished_at: done.finished_at,
            persisted,
        }))
    };
    if let Some(persister) = state.persister.clone() {
        let store_state = Arc::clone(state);
        let object = Arc::clone(&object);
        state.tasks.spawn(async move {
            // One writer per key at a time, and never an older upload over a newer one.
            let lock = store_state.store.persist_lock(object.key());
            let mut last_written = lock.lock().await;
            if *last_written < object.id() {
                let write = store_state.metrics.persist_begin();
                let written = persister
                    .write(object.key(), done.bytes.clone(), done.finished_at, object.id())
                    .await;
                store_state.metrics.persist_end(write, written.is_ok());
                match written {
                    Ok(()) => {
                        *last_written = object.id();
                        object.set_persisted();
                        // Published after the write, so the archive can link the file.
                        store_state
                            .events
                            .publish(completed(true, &object, done.bytes));
                    }
                    Err(e) => {
                        tracing::error!(key = %object.key(), error = %e, "persisting failed; kept in memory");
                        store_state
                            .events
                            .publish(completed(false, &object, done.bytes));
                    }
                }
            }
            drop(last_written);
            store_state.store.release_persist_lock(object.key(), lock);
        });
    } else {
        state
            .events
            .publish(completed(false, &object, done.bytes.clone()));
    }
    empty(if old.is_some() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

/// Counts an ended upload: its bytes and its result by stream and object kind.
fn ingest_counted(state: &AppState, key: &ObjectKey, object: &Object, result: &'static str) {
    let stream = state.metrics.stream_label(key.dir());
    let kind = match key.extension().as_deref() {
        _ if object.init().is_some() => "init",
        Some("mpd" | "m3u8") => "manifest",
        Some("m4s" | "ts" | "mp4" | "cmfv" | "cmfa" | "m4a" | "aac") => "segment",
        _ => "other",
    };
    state
        .metrics
        .ingest_bytes
        .get_or_create(&IngestBytesLabels {
            stream: stream.clone(),
            result,
        })
        .inc_by(object.len());
    state
        .metrics
        .ingest_objects
        .get_or_create(&IngestLabels {
            stream,
            kind,
            result,
        })
        .inc();
}

/// Aborts an upload that did not reach its end: readers get their response aborted and the
/// object leaves the store, so it is never served or persisted as complete.
struct AbortOnDrop {
    state: Arc<AppState>,
    object: Arc<Object>,
    /// The object this upload replaced: put back if this one fails, so an interrupted
    /// re-PUT never loses the last good version.
    previous: Option<Arc<Object>>,
}

impl AbortOnDrop {
    fn abort(&self) {
        self.object.abort();
        let previous = self
            .previous
            .clone()
            .filter(|p| p.state() == crate::store::ObjectState::Complete);
        self.state.store.replace_failed(&self.object, previous);
        self.state.llhls.on_gone(self.object.key());
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if self.object.state() == crate::store::ObjectState::Uploading {
            tracing::warn!(key = %self.object.key(), received = self.object.len(), "upload cut before its end; readers aborted");
            self.abort();
        }
    }
}

impl Upload<'_> {
    /// Decides the body type from its first 8 bytes and feeds the frames held so far
    /// (at least 8 bytes in all, or the whole body when shorter).
    fn feed_initial(&mut self, frames: &[Bytes]) {
        let head: Vec<u8> = frames
            .iter()
            .flat_map(|f| f.iter())
            .take(8)
            .copied()
            .collect();
        if cmaf::looks_like_isobmff(&head) {
            self.scan = Scan::Boxes(BoxScanner::new());
            for frame in frames {
                self.feed(frame);
            }
        } else {
            self.scan = Scan::Opaque;
        }
    }
}

/// DELETE: with a retention of 0 the object goes at once; otherwise it stays served for the
/// retention (DVR, recording) and is then removed from memory and disk, unless a new upload
/// took the name meanwhile.
async fn delete(state: &Arc<AppState>, key: ObjectKey) {
    let retention = Duration::from_secs(state.cfg.live.delete_retention_secs);
    let deleted_at = SystemTime::now();
    let object = state.store.get(&key);
    if let Some(o) = &object {
        o.mark_deleted();
    }
    // The timer is kept in the archive index so a restart honours it too.
    if let (Some(a), false) = (state.archive.clone(), retention.is_zero()) {
        let due = deleted_at + retention;
        let k = key.clone();
        let _ = tokio::task::spawn_blocking(move || {
            a.schedule_delete(
                k.as_str(),
                crate::archive::unix_ms(deleted_at),
                crate::archive::unix_ms(due),
            )
        })
        .await;
    }
    schedule_delete(state, key, object.map(|o| o.id()), deleted_at, retention);
}

/// Segments of a package pushed in any order that ended before their MPD or init segment
/// are placed in the LL-HLS timeline once they can be, from their bytes in the store.
fn place_late_segments(state: &AppState, key: &ObjectKey) {
    for late in state.llhls.placeable(&state.registry, key.dir()) {
        match state.store.get(&late).and_then(|o| o.complete_body()) {
            Some(body) => {
                state.llhls.place_late(&state.registry, &late, &body.bytes);
            }
            None => {
                tracing::warn!(key = %late, "segment ended before its MPD but is no longer in memory; left out of LL-HLS")
            }
        }
    }
}

/// Removes `key` from memory and disk after `wait`, unless a newer upload took the name
/// (`object`: the id of the upload the DELETE saw, `None` after a restart). The timer
/// keeps the id, not the object: holding the object kept every DELETEd segment's body in
/// memory for the whole retention, after the sweeper had dropped it (the soak's climb).
pub(super) fn schedule_delete(
    state: &Arc<AppState>,
    key: ObjectKey,
    object: Option<u64>,
    deleted_at: SystemTime,
    wait: Duration,
) {
    let state2 = Arc::clone(state);
    let cancel = state.shutdown.clone();
    state.tasks.spawn(async move {
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => return,
            }
        }
        if let Some(a) = state2.archive.clone() {
            let k = key.as_str().to_owned();
            let _ = tokio::task::spawn_blocking(move || a.done_delete(&k)).await;
        }
        let current = state2.store.get(&key);
        let replaced = match (object, &current) {
            (Some(id), Some(c)) => id != c.id(),
            (None, Some(c)) => c.complete_body().is_none_or(|b| b.finished_at > deleted_at),
            _ => false,
        };
        if replaced {
            return;
        }
        if let Some(o) = &current {
            state2.store.remove_if_current(o);
        }
        // With the archive on, the segment stays listed for the DVR window (the archive
        // serves it; the timeline sweep drops it past the window).
        if state2.archive.is_none() {
            state2.llhls.on_gone(&key);
        }
        if let Some(p) = &state2.persister {
            // Only remove the file if it is not newer than the DELETE.
            let path = key.to_path(p.root());
            let newer = tokio::fs::metadata(&path)
                .await
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > deleted_at);
            if !newer {
                if let Err(e) = p.remove(&key).await {
                    tracing::warn!(key = %key, error = %e, "removing deleted object failed");
                }
            }
        }
        tracing::debug!(key = %key, "deleted");
    });
}
