//! HTTP details shared by both listeners: the response body type, content types, cache
//! headers, conditional and range requests (RFC 9110 §13-14), and THE one mapping from
//! [`ErrorKind`] to a status code.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body::{Frame, SizeHint};

use crate::cmaf::TrackKind;
use crate::error::ErrorKind;
use crate::store::{ObjectKey, ObjectReader, ReadStep};

/// Cache-Control of a finished media segment or init segment: it never changes under this
/// name while the stream lives (MediaPackage guidance: segments 14 days; one day here).
pub const CACHE_SEGMENT: &str = "public, max-age=86400, immutable";
/// Cache-Control of a manifest (MPD, playlist): players reload them every segment.
pub const CACHE_MANIFEST: &str = "public, max-age=1";
/// Cache-Control of an object still being uploaded: a CDN must not keep a partial copy.
pub const CACHE_IN_PROGRESS: &str = "no-cache";
/// Cache-Control of per-request answers (time, listings).
pub const CACHE_NONE: &str = "no-store";

/// The one place where an error class becomes an HTTP status.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Corrupt => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::TimedOut => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A plain-text error response for `kind`; the message is for people (curl), players only
/// look at the status.
pub fn error_response(kind: ErrorKind, message: impl std::fmt::Display) -> Response<Body> {
    let status = status_for(kind);
    // Internal failures may name server paths: log them, tell the client less.
    let text = if kind == ErrorKind::Internal {
        "internal error\n".to_owned()
    } else {
        format!("{message}\n")
    };
    let mut resp = Response::new(Body::full(Bytes::from(text)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_NONE));
    resp
}

/// Content-Type for an object by its extension; `kind` tells audio from video for
/// ISO-BMFF names that could be either.
pub fn content_type(key: &ObjectKey, kind: Option<TrackKind>) -> &'static str {
    match key.extension().as_deref() {
        Some("mpd") => "application/dash+xml",
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4a" | "cmfa") => "audio/mp4",
        Some("m4s" | "mp4" | "cmfv" | "m4v" | "cmfi" | "cmf" | "fmp4") => match kind {
            Some(TrackKind::Audio) => "audio/mp4",
            _ => "video/mp4",
        },
        Some("aac") => "audio/aac",
        Some("vtt") => "text/vtt",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// Cache-Control of a finished object by its extension.
pub fn cache_control_finished(key: &ObjectKey) -> &'static str {
    match key.extension().as_deref() {
        Some("m4s" | "mp4" | "cmfv" | "cmfa" | "m4a" | "m4v" | "ts" | "aac" | "cmfi") => {
            CACHE_SEGMENT
        }
        _ => CACHE_MANIFEST,
    }
}

/// A strong ETag from a modification time and a length: the same for an object in memory
/// and its persisted copy (whose mtime is the completion time).
pub fn etag(modified: SystemTime, len: u64) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{nanos:x}-{len:x}\"")
}

/// Everything needed to answer a GET/HEAD for a complete body.
#[derive(Debug, Clone)]
pub struct Complete<'a> {
    /// The whole representation.
    pub bytes: Bytes,
    /// Content-Type.
    pub content_type: &'static str,
    /// Cache-Control.
    pub cache_control: &'static str,
    /// Strong ETag, quoted.
    pub etag: String,
    /// Last-Modified.
    pub last_modified: SystemTime,
    /// The request's method and headers.
    pub method: &'a Method,
    pub request: &'a HeaderMap,
}

/// Answers a small file read whole from disk as [`complete_response`] does (ETag from its
/// mtime and length, ranges, 304); `None` when it cannot be read (the caller's 404).
pub async fn file_response(
    path: &std::path::Path,
    content_type: &'static str,
    cache_control: &'static str,
    method: &Method,
    request: &HeaderMap,
) -> Option<Response<Body>> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    let bytes = tokio::fs::read(path).await.ok()?;
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    Some(complete_response(Complete {
        etag: etag(modified, bytes.len() as u64),
        bytes: Bytes::from(bytes),
        content_type,
        cache_control,
        last_modified: modified,
        method,
        request,
    }))
}

/// Answers a complete body: 304 on a matching `If-None-Match` (or `If-Modified-Since`
/// without it), 206 for one satisfiable byte range, 416 for an unsatisfiable one, else
/// 200; HEAD gets the same headers and no body.
pub fn complete_response(c: Complete<'_>) -> Response<Body> {
    let len = c.bytes.len() as u64;
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, c.content_type)
        .header(header::CACHE_CONTROL, c.cache_control)
        .header(header::ETAG, &c.etag)
        .header(
            header::LAST_MODIFIED,
            httpdate::fmt_http_date(c.last_modified),
        )
        .header(header::ACCEPT_RANGES, "bytes");
    if not_modified(c.request, &c.etag, c.last_modified) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| Response::new(Body::empty()));
    }
    let range = c
        .request
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_matches(c.request, &c.etag));
    let (status, body) = match range.map(|r| parse_single_range(r, len)) {
        None | Some(RangeAnswer::Ignore) => (StatusCode::OK, c.bytes),
        Some(RangeAnswer::Unsatisfiable) => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_else(|_| Response::new(Body::empty()));
        }
        Some(RangeAnswer::Range(start, end)) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (
                StatusCode::PARTIAL_CONTENT,
                c.bytes.slice(start as usize..=end as usize),
            )
        }
    };
    builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, body.len());
    let body = if c.method == Method::HEAD {
        Body::empty()
    } else {
        Body::full(body)
    };
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn not_modified(req: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
    }
    if let Some(ims) = req
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    {
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        return secs(modified) <= secs(ims);
    }
    false
}

fn if_range_matches(req: &HeaderMap, etag: &str) -> bool {
    match req.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => v == etag,
    }
}

enum RangeAnswer {
    Ignore,
    Unsatisfiable,
    /// Inclusive byte positions.
    Range(u64, u64),
}

/// One range is honoured; several (multipart) are answered with the whole body, which
/// RFC 9110 §14.2 allows.
fn parse_single_range(value: &str, len: u64) -> RangeAnswer {
    match http_range_header::parse_range_header(value) {
        Err(_) => RangeAnswer::Ignore,
        Ok(parsed) => match parsed.validate(len) {
            Err(_) => RangeAnswer::Unsatisfiable,
            Ok(ranges) if ranges.len() == 1 => {
                RangeAnswer::Range(*ranges[0].start(), *ranges[0].end())
            }
            Ok(_) => RangeAnswer::Ignore,
        },
    }
}

/// Headers of a response that streams an object still being uploaded.
pub fn live_response(
    content_type: &'static str,
    method: &Method,
    reader: ObjectReader,
) -> Response<Body> {
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::live(reader)
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, CACHE_IN_PROGRESS)
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// The error a streamed body ends with when its upload was cut: the connection is then
/// closed without the terminating chunk, so no CDN or player keeps a short copy.
#[derive(Debug, thiserror::Error)]
#[error("upload of the object was interrupted")]
pub struct UploadAborted;

type NextStep = Pin<Box<dyn Future<Output = (ReadStep, ObjectReader)> + Send>>;

/// The response body of both listeners.
pub struct Body(BodyInner);

enum BodyInner {
    Empty,
    Full(Option<Bytes>),
    Live(NextStep),
    Done,
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body(BodyInner::Empty)
    }

    /// One buffer.
    pub fn full(bytes: Bytes) -> Body {
        Body(BodyInner::Full(Some(bytes)))
    }

    /// Follows an object while it is uploaded: each frame is sent as it arrives; the end
    /// of the upload ends the body, an abort ends it with [`UploadAborted`].
    pub fn live(reader: ObjectReader) -> Body {
        Body(BodyInner::Live(Box::pin(step(reader))))
    }
}

async fn step(mut reader: ObjectReader) -> (ReadStep, ObjectReader) {
    let s = reader.next().await;
    (s, reader)
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body")
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = UploadAborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UploadAborted>>> {
        match &mut self.0 {
            BodyInner::Empty | BodyInner::Done => Poll::Ready(None),
            BodyInner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            BodyInner::Live(fut) => match fut.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready((ReadStep::Data(bytes), reader)) => {
                    self.0 = BodyInner::Live(Box::pin(step(reader)));
                    Poll::Ready(Some(Ok(Frame::data(bytes))))
                }
                Poll::Ready((ReadStep::End, _)) => {
                    self.0 = BodyInner::Done;
                    Poll::Ready(None)
                }
                Poll::Ready((ReadStep::Aborted, _)) => {
                    self.0 = BodyInner::Done;
                    Poll::Ready(Some(Err(UploadAborted)))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(
            self.0,
            BodyInner::Empty | BodyInner::Done | BodyInner::Full(None)
        )
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            BodyInner::Empty | BodyInner::Done | BodyInner::Full(None) => SizeHint::with_exact(0),
            BodyInner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            BodyInner::Live(_) => SizeHint::default(),
        }
    }
}

/// Infallible result for hyper services.
pub type Reply = Result<Response<Body>, Infallible>;

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn answer(method: &Method, headers: &HeaderMap) -> Response<Body> {
        complete_response(Complete {
            bytes: Bytes::from_static(b"0123456789"),
            content_type: "video/mp4",
            cache_control: CACHE_SEGMENT,
            etag: "\"abc\"".into(),
            last_modified: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000),
            method,
            request: headers,
        })
    }

    #[test]
    fn ranges_and_conditionals() {
        let get = Method::GET;
        let r = answer(&get, &req(&[("range", "bytes=2-4")]));
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()["content-range"], "bytes 2-4/10");
        assert_eq!(r.headers()["content-length"], "3");
        let r = answer(&get, &req(&[("range", "bytes=-3")]));
        assert_eq!(r.headers()["content-range"], "bytes 7-9/10");
        let r = answer(&get, &req(&[("range", "bytes=20-30")]));
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        let r = answer(&get, &req(&[("range", "bytes=0-1,4-5")]));
        assert_eq!(r.status(), StatusCode::OK);
        let r = answer(&get, &req(&[("if-none-match", "\"abc\"")]));
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = answer(&get, &req(&[("if-none-match", "\"other\"")]));
        assert_eq!(r.status(), StatusCode::OK);
        let r = answer(
            &get,
            &req(&[("range", "bytes=2-4"), ("if-range", "\"old\"")]),
        );
        assert_eq!(r.status(), StatusCode::OK);
        let r = answer(&Method::HEAD, &req(&[]));
        assert_eq!(r.headers()["content-length"], "10");
        assert_eq!(http_body::Body::size_hint(r.body()).exact(), Some(0));
    }

    #[test]
    fn content_types() {
        let k = |s: &str| ObjectKey::from_decoded(s).unwrap();
        assert_eq!(content_type(&k("a/s.mpd"), None), "application/dash+xml");
        assert_eq!(
            content_type(&k("a/s.m3u8"), None),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type(&k("a/s.ts"), None), "video/mp2t");
        assert_eq!(content_type(&k("a/s.m4s"), None), "video/mp4");
        assert_eq!(
            content_type(&k("a/s.m4s"), Some(TrackKind::Audio)),
            "audio/mp4"
        );
        assert_eq!(cache_control_finished(&k("a/s.m4s")), CACHE_SEGMENT);
        assert_eq!(cache_control_finished(&k("a/s.mpd")), CACHE_MANIFEST);
    }
}
