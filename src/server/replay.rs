//! Egress of the archive: recording replay manifests (`/recordings/<id>/...`) and the
//! archived segment files they point at (`/archive/<session>/<file>`).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Response};

use super::http::{self as h, complete_response, error_response, Body, Complete};
use super::AppState;
use crate::archive::{self, replay, Archive};
use crate::error::ErrorKind;

/// Cache-Control of a closed recording's (or past view's) manifests and MP4: they no longer
/// change, but a deleted recording must stop playing, so caches revalidate every use (a
/// cheap 304 by ETag while it exists, a 404 once deleted).
const CACHE_CLOSED: &str = "public, no-cache";

fn archive_of(state: &AppState) -> Option<Arc<Archive>> {
    state.archive.clone()
}

fn archive_off() -> Response<Body> {
    error_response(
        ErrorKind::NotFound,
        "the archive is off (persistence is disabled)",
    )
}

/// `/recordings/<id>/<file>`: `master.m3u8`, `media_<rep>.m3u8` or `manifest.mpd`.
pub async fn recording(
    state: &AppState,
    id: &str,
    file: &str,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    time_url: String,
) -> Response<Body> {
    let Some(archive) = archive_of(state) else {
        return archive_off();
    };
    let now = archive::now_ms();
    let (id_owned, a) = (id.to_owned(), Arc::clone(&archive));
    let rec = match super::archive_blocking(move || a.recording(&id_owned)).await {
        Ok(r) => r,
        Err(e) => return error_response(e.kind(), e),
    };
    let growing = rec.state.is_active();
    // A closed recording's manifests never change until it is deleted: rendered once.
    let cache_key = format!("{}/{}/{}", rec.id, rec.updated_ms, file);
    if !growing && file != "download.mp4" {
        if let Some((bytes, etag, content_type)) = state.replays.get(&cache_key) {
            return manifest_response(bytes, etag, content_type, false, method, headers);
        }
    }
    let only_rep = file
        .strip_prefix("media_")
        .and_then(|f| f.strip_suffix(".m3u8"))
        .map(str::to_owned);
    let (a, r) = (Arc::clone(&archive), rec.clone());
    let loaded = super::archive_blocking(move || {
        let end = r.end_ms.unwrap_or(now + 1).max(r.start_ms + 1);
        match &only_rep {
            Some(rep) => a.view_rep(&r.stream, rep, r.start_ms, end, false),
            None => a.view(&r.stream, r.start_ms, end),
        }
    })
    .await;
    let view = match loaded {
        Ok(x) => x,
        Err(e) => {
            if e.kind() == ErrorKind::Internal {
                tracing::error!(recording = id, error = %e, "recording replay failed");
            }
            return error_response(e.kind(), e);
        }
    };
    if file == "download.mp4" {
        return download(archive, rec, view, query, method, headers).await;
    }
    let opts = replay::ViewOptions {
        growing,
        query: "",
        now_ms: now,
        time_url: &time_url,
        media_prefix: "media_",
        start_offset_ms: 0,
    };
    let (text, content_type) = if file == "master.m3u8" {
        (
            replay::hls_multivariant(&view, &opts),
            "application/vnd.apple.mpegurl",
        )
    } else if file == "manifest.mpd" {
        (replay::dash_mpd(&view, &opts), "application/dash+xml")
    } else if let Some(rep) = file
        .strip_prefix("media_")
        .and_then(|f| f.strip_suffix(".m3u8"))
    {
        (
            replay::hls_media(&view, rep, &opts),
            "application/vnd.apple.mpegurl",
        )
    } else {
        return error_response(
            ErrorKind::NotFound,
            format!("no {file} in a recording (master.m3u8, media_<rep>.m3u8, manifest.mpd, download.mp4)"),
        );
    };
    let Some(text) = text else {
        let why = if growing {
            "the recording has no archived segment yet"
        } else {
            "the recording's range holds no archived segment"
        };
        return error_response(ErrorKind::NotFound, why);
    };
    let bytes = Bytes::from(text);
    // The tag names what the manifest was made from, not its bytes (a day-long playlist
    // is megabytes): the recording's version, or for an open one its newest segment.
    let etag = format!(
        "\"{:x}\"",
        fnv64(format!("{cache_key}/{}/{}", view_tag(&view), opts.growing).as_bytes())
    );
    if !growing {
        state
            .replays
            .put(cache_key, (bytes.clone(), etag.clone(), content_type));
    }
    manifest_response(bytes, etag, content_type, growing, method, headers)
}

fn manifest_response(
    bytes: Bytes,
    etag: String,
    content_type: &'static str,
    growing: bool,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    complete_response(Complete {
        bytes,
        content_type,
        cache_control: if growing {
            h::CACHE_MANIFEST
        } else {
            CACHE_CLOSED
        },
        etag,
        last_modified: SystemTime::now(),
        method,
        request: headers,
    })
}

/// What a view holds, in a few numbers: per session its segment count and last segment.
fn view_tag(view: &[replay::Session]) -> String {
    view.iter()
        .map(|s| {
            let last = s.segments.last().map_or("", |g| g.file.as_str());
            format!("{}:{}:{last}", s.id, s.segments.len())
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Rendered manifests of closed recordings: (bytes, ETag, content type) by
/// `<id>/<updated_ms>/<file>`. At most [`REPLAY_CACHE_ENTRIES`]; cleared when full.
#[derive(Debug, Default)]
pub struct ReplayCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedManifest>>,
}

type CachedManifest = (Bytes, String, &'static str);

/// Entries kept by [`ReplayCache`].
pub const REPLAY_CACHE_ENTRIES: usize = 64;

impl ReplayCache {
    fn get(&self, key: &str) -> Option<CachedManifest> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: String, value: CachedManifest) {
        let mut m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= REPLAY_CACHE_ENTRIES {
            m.clear();
        }
        m.insert(key, value);
    }
}

/// `/recordings/<id>/download.mp4[?session=&video=]`: one fragmented MP4 of a finished
/// recording (Content-Length, Range, ETag).
async fn download(
    archive: Arc<Archive>,
    rec: archive::RecordingRow,
    view: Vec<replay::Session>,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    if rec.state.is_active() {
        return error_response(
            ErrorKind::Conflict,
            "the recording is still open: its MP4 is made once it is done",
        );
    }
    let mut session = None;
    let mut video = None;
    for (k, v) in url_pairs(query.unwrap_or("")) {
        match k.as_str() {
            "session" => match v.parse::<i64>() {
                Ok(n) => session = Some(n),
                Err(_) => return error_response(ErrorKind::BadRequest, "session must be a number"),
            },
            "video" => video = Some(v),
            _ => {}
        }
    }
    let tag = {
        let mut key = format!("{}:{:?}:{:?}", rec.id, session, video);
        for s in &view {
            for g in &s.segments {
                key.push_str(&format!("{}/{}/{};", s.id, g.file, g.bytes));
            }
        }
        format!("\"{:x}\"", fnv64(key.as_bytes()))
    };
    let built =
        super::archive_blocking(move || archive.download_mp4(&view, session, video.as_deref()))
            .await;
    match built {
        Ok(bytes) => complete_response(Complete {
            bytes,
            content_type: "video/mp4",
            cache_control: CACHE_CLOSED,
            etag: tag,
            last_modified: SystemTime::UNIX_EPOCH
                + std::time::Duration::from_millis(rec.updated_ms.max(0) as u64),
            method,
            request: headers,
        }),
        Err(e) => {
            if e.kind() == ErrorKind::Internal {
                tracing::error!(recording = rec.id, error = %e, "recording download failed");
            }
            error_response(e.kind(), e)
        }
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = percent_encoding::percent_decode_str(k).decode_utf8().ok()?;
            let v = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
            Some((k.into_owned(), v.into_owned()))
        })
        .collect()
}

/// Which manifest of a live stream a time-range view renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewFile {
    /// The stream's MPD.
    Mpd,
    /// `llhls.m3u8`.
    Multivariant,
    /// `llhls_<rep>.m3u8`.
    Media(String),
}

/// Whether a live manifest request is a time-range view (`start` or `end` in its query).
pub fn is_view(query: Option<&str>) -> bool {
    url_pairs(query.unwrap_or(""))
        .iter()
        .any(|(k, _)| k == "start" || k == "end")
}

/// A JSON error (`{"error":{"code","message"}}`) with the status of `kind`.
fn json_error(kind: ErrorKind, message: impl std::fmt::Display) -> Response<Body> {
    let code = super::api::code(kind);
    let body = serde_json::json!({"error": {"code": code, "message": message.to_string()}});
    let mut r = Response::new(Body::full(Bytes::from(body.to_string())));
    *r.status_mut() = h::status_for(kind);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static(h::CACHE_NONE),
    );
    r
}

/// A time-range view of the live stream in `dir` (start-over, catch-up, clips), with AWS
/// MediaPackage's rules: `start` and `end` (RFC 3339 or Unix seconds) both in the past give
/// a VOD view (`PLAYLIST-TYPE:VOD` + `EXT-X-ENDLIST`, static MPD); an `end` in the future a
/// growing EVENT view that ends itself at `end`; `start` alone a view growing from `start`.
/// A range outside the archive is 404, one longer than `archive.max_range_secs` 400, both
/// with a JSON reason. Segment-granular, with the exact start in `EXT-X-START` and the
/// first Period's `presentationTimeOffset`. The view's query is carried to every URI.
pub async fn live_view(
    state: &AppState,
    dir: &str,
    file: ViewFile,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    time_url: String,
) -> Response<Body> {
    let Some(archive) = archive_of(state) else {
        return json_error(
            ErrorKind::NotFound,
            "the archive is off: no time-range views",
        );
    };
    let mut start = None;
    let mut end = None;
    let mut carried: Vec<String> = Vec::new();
    for (k, v) in url_pairs(query.unwrap_or("")) {
        let slot = match k.as_str() {
            "start" => &mut start,
            "end" => &mut end,
            _ => continue,
        };
        match archive::parse_time(&v) {
            Ok(t) => *slot = Some(t),
            Err(e) => return json_error(ErrorKind::BadRequest, e),
        }
    }
    for pair in query.unwrap_or("").split('&') {
        if pair.starts_with("start=") || pair.starts_with("end=") {
            carried.push(pair.to_owned());
        }
    }
    let now = archive::now_ms();
    let Some(start) = start else {
        return json_error(
            ErrorKind::BadRequest,
            "a view needs start (end is optional)",
        );
    };
    if let Some(end) = end {
        if end <= start {
            return json_error(ErrorKind::BadRequest, "end is not after start");
        }
    }
    let max = state.cfg.archive.max_range_secs as i64 * 1000;
    if end.unwrap_or(now) - start > max {
        return json_error(
            ErrorKind::BadRequest,
            format!(
                "the range is longer than archive.max_range_secs ({} s)",
                state.cfg.archive.max_range_secs
            ),
        );
    }
    let growing = end.is_none_or(|e| e > now);
    let (d, a) = (dir.to_owned(), Arc::clone(&archive));
    let until = end.unwrap_or(now + 1);
    let only_rep = match &file {
        ViewFile::Media(rep) => Some(rep.clone()),
        _ => None,
    };
    let loaded = super::archive_blocking(move || {
        let view = match &only_rep {
            Some(rep) => a.view_rep(&d, rep, start, until, true)?,
            None => a.view_covering(&d, start, until)?,
        };
        Ok((a.bounds(&d)?, view))
    })
    .await;
    let (bounds, view) = match loaded {
        Ok(x) => x,
        Err(e) => return json_error(e.kind(), e),
    };
    let Some((oldest, newest)) = bounds else {
        return json_error(ErrorKind::NotFound, format!("stream {dir} has no archive"));
    };
    if start < oldest - 1000 || start > newest.max(now) || end.is_some_and(|e| e <= oldest) {
        return json_error(
            ErrorKind::NotFound,
            format!(
                "the range is outside the archive of {dir} ({} to {})",
                archive::format_ms(oldest),
                archive::format_ms(newest)
            ),
        );
    }
    let first_wall = view
        .iter()
        .flat_map(|s| s.segments.iter().map(|g| g.wall_ms))
        .min();
    let query_text = if carried.is_empty() {
        String::new()
    } else {
        format!("?{}", carried.join("&"))
    };
    let opts = replay::ViewOptions {
        growing,
        query: &query_text,
        now_ms: now,
        time_url: &time_url,
        media_prefix: "llhls_",
        start_offset_ms: first_wall.map_or(0, |w| (start - w).max(0)),
    };
    let (text, content_type) = match &file {
        ViewFile::Mpd => (replay::dash_mpd(&view, &opts), "application/dash+xml"),
        ViewFile::Multivariant => (
            replay::hls_multivariant(&view, &opts),
            "application/vnd.apple.mpegurl",
        ),
        ViewFile::Media(rep) => (
            replay::hls_media(&view, rep, &opts),
            "application/vnd.apple.mpegurl",
        ),
    };
    let Some(text) = text else {
        return json_error(
            ErrorKind::NotFound,
            format!("no archived segment of {dir} in the range yet"),
        );
    };
    let bytes = Bytes::from(text);
    complete_response(Complete {
        etag: format!("\"{:x}\"", fnv64(&bytes)),
        bytes,
        content_type,
        cache_control: if growing {
            h::CACHE_MANIFEST
        } else {
            CACHE_CLOSED
        },
        last_modified: SystemTime::now(),
        method,
        request: headers,
    })
}

/// A live object that is gone from the store and the data dir (the encoder DELETEd it) but
/// is archived: served from the archive under its live name. `None` when not archived.
pub async fn archived_object(
    state: &AppState,
    key: &crate::store::ObjectKey,
    method: &Method,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    let archive = archive_of(state)?;
    let (dir, name) = (key.dir().to_owned(), key.file_name().to_owned());
    let path = super::archive_blocking(move || archive.find_live_file(&dir, &name))
        .await
        .ok()??;
    let bytes = Bytes::from(tokio::fs::read(&path).await.ok()?);
    let modified = tokio::fs::metadata(&path)
        .await
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let kind = state.registry.track_kind(key, None);
    Some(complete_response(Complete {
        etag: h::etag(modified, bytes.len() as u64),
        bytes,
        content_type: h::content_type(key, kind),
        cache_control: h::cache_control_finished(key),
        last_modified: modified,
        method,
        request: headers,
    }))
}

/// `/archive/<session>/<file>`: an archived init or media segment.
pub async fn file(
    state: &AppState,
    session: i64,
    file: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let Some(archive) = archive_of(state) else {
        return archive_off();
    };
    let Some(path) = archive.file_path(session, file) else {
        return error_response(ErrorKind::Forbidden, "not a file name");
    };
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => m,
        _ => {
            return error_response(
                ErrorKind::NotFound,
                format!("no archived /archive/{session}/{file}"),
            )
        }
    };
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "reading an archived file failed");
            return error_response(ErrorKind::Internal, "reading the archive failed");
        }
    };
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let content_type = match file.rsplit_once('.').map(|(_, e)| e) {
        Some("ts") => "video/mp2t",
        Some("aac") => "audio/aac",
        _ => "video/mp4",
    };
    complete_response(Complete {
        etag: h::etag(modified, bytes.len() as u64),
        bytes,
        content_type,
        cache_control: h::CACHE_SEGMENT,
        last_modified: modified,
        method,
        request: headers,
    })
}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
