//! One access log line and the request metrics per HTTP request, written when the
//! response body ends (or is dropped: a client gone mid-segment), so the line has the
//! bytes sent and the total time.
//!
//! Log fields (target `casterpak::access`, JSON with `--log-json`): `listener`, `method`,
//! `path` (stream keys redacted), `query` (token values redacted), `kind`, `status`,
//! `bytes`, `ttfb_ms` (request head to response head), `total_ms`, `complete` (whether the
//! body reached its end), `peer`, and `principal` on ingest.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Buf;
use http::Response;
use http_body::{Frame, SizeHint};

use super::metrics::{code_class, KindLabels, Metrics, RequestKind, RequestLabels};

/// Query parameters whose values never reach a log.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "hdnts",
    "hdntl",
    "__token__",
    "signature",
    "policy",
    "key-pair-id",
    "access_token",
];

/// `query` with the values of token-like parameters (and `extra`) replaced by `REDACTED`.
pub fn redact_query(query: &str, extra: Option<&str>) -> String {
    query
        .split('&')
        .map(|kv| {
            let name = kv.split_once('=').map_or(kv, |(k, _)| k);
            let secret = SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
                || extra.is_some_and(|e| e == name);
            if secret && kv.contains('=') {
                format!("{name}=REDACTED")
            } else {
                kv.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `path` with a stream key (`/key/<key>/...`) replaced by `REDACTED`.
pub fn redact_path(path: &str) -> String {
    match path.strip_prefix("/key/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, tail)) => format!("/key/REDACTED/{tail}"),
            None => "/key/REDACTED".to_owned(),
        },
        None => path.to_owned(),
    }
}

/// What is known of a request when its response head is ready.
#[derive(Debug)]
pub struct Seen {
    /// `ingest`, `egress` or `api`.
    pub listener: &'static str,
    /// The method.
    pub method: http::Method,
    /// The path, already redacted.
    pub path: String,
    /// The query, already redacted.
    pub query: Option<String>,
    /// The request kind.
    pub kind: RequestKind,
    /// When the request head was read.
    pub started: Instant,
    /// The client.
    pub peer: std::net::SocketAddr,
    /// The authenticated pusher, on ingest.
    pub principal: Option<String>,
}

struct Pending {
    seen: Seen,
    status: u16,
    ttfb_ms: f64,
    bytes: u64,
    metrics: Arc<Metrics>,
    complete: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let s = &self.seen;
        let total_ms = s.started.elapsed().as_secs_f64() * 1000.0;
        self.metrics
            .http_response_bytes
            .get_or_create(&KindLabels {
                listener: s.listener,
                kind: s.kind.as_str(),
            })
            .inc_by(self.bytes);
        tracing::info!(
            target: "casterpak::access",
            listener = s.listener,
            method = %s.method,
            path = %s.path,
            query = s.query.as_deref().unwrap_or(""),
            kind = s.kind.as_str(),
            status = self.status,
            bytes = self.bytes,
            ttfb_ms = (self.ttfb_ms * 10.0).round() / 10.0,
            total_ms = (total_ms * 10.0).round() / 10.0,
            complete = self.complete,
            peer = %s.peer,
            principal = s.principal.as_deref().unwrap_or(""),
        );
    }
}

/// A response body that counts what it sends and logs the request when it ends.
pub struct Counted<B: http_body::Body> {
    inner: B,
    pending: Option<Box<Pending>>,
}

impl<B: http_body::Body + Default> Default for Counted<B> {
    fn default() -> Self {
        Counted {
            inner: B::default(),
            pending: None,
        }
    }
}

impl<B: http_body::Body> Drop for Counted<B> {
    fn drop(&mut self) {
        // Dropped before its end was polled: complete if nothing was left to send (an
        // empty body, or one hyper did not poll further because it said it ended).
        let ended = self.inner.is_end_stream();
        if let Some(p) = self.pending.as_mut() {
            p.complete = ended;
        }
    }
}

impl<B: http_body::Body> std::fmt::Debug for Counted<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counted")
    }
}

impl<B> http_body::Body for Counted<B>
where
    B: http_body::Body + Unpin,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(p), Some(d)) = (self.pending.as_mut(), frame.data_ref()) {
                    p.bytes += d.remaining() as u64;
                }
                // hyper stops polling a body that says it ended.
                if self.inner.is_end_stream() {
                    if let Some(mut p) = self.pending.take() {
                        p.complete = true;
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(mut p) = self.pending.take() {
                    p.complete = true;
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts the request in the metrics and wraps the body so the access line is written
/// when it ends.
pub fn observe<B: http_body::Body>(
    metrics: &Arc<Metrics>,
    seen: Seen,
    resp: Response<B>,
) -> Response<Counted<B>> {
    let status = resp.status().as_u16();
    let ttfb = seen.started.elapsed().as_secs_f64();
    metrics
        .http_requests
        .get_or_create(&RequestLabels {
            listener: seen.listener,
            kind: seen.kind.as_str(),
            code_class: code_class(status),
        })
        .inc();
    metrics
        .http_ttfb
        .get_or_create(&KindLabels {
            listener: seen.listener,
            kind: seen.kind.as_str(),
        })
        .observe(ttfb);
    let pending = Box::new(Pending {
        seen,
        status,
        ttfb_ms: ttfb * 1000.0,
        bytes: 0,
        metrics: Arc::clone(metrics),
        complete: false,
    });
    resp.map(|inner| Counted {
        inner,
        pending: Some(pending),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_query("a=1&hdnts=exp=1~hmac=ab&token=x&b", None),
            "a=1&hdnts=REDACTED&token=REDACTED&b"
        );
        assert_eq!(redact_query("mytok=1", Some("mytok")), "mytok=REDACTED");
        assert_eq!(
            redact_path("/key/s3cret/live/a.m4s"),
            "/key/REDACTED/live/a.m4s"
        );
        assert_eq!(redact_path("/live/a.m4s"), "/live/a.m4s");
    }
}
