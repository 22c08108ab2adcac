//! Control-plane notifications: `stream.started`, `stream.ended`, `recording.started`,
//! `recording.stopped`, `recording.failed`, as server-sent events on the API listener
//! (`GET /api/v1/events`, the W3C EventSource format) and as optional webhooks.
//!
//! Webhooks (`[webhooks] urls = [...]`, `secret = "..."`): each event is POSTed as JSON to
//! every URL, with `X-Casterpak-Event: <type>` and, when a secret is set,
//! `X-Casterpak-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>`; a
//! delivery that fails (transport error or a non-2xx answer) is retried after 1, 2, 4 and 8 s,
//! then dropped with a log line. Deliveries run in their own task, one queue per URL, far
//! from ingest: a slow receiver only delays its own queue (the oldest events are dropped
//! past [`QUEUE`]).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::broadcast;

use crate::archive;

/// Events kept for a slow subscriber (an SSE client, a webhook queue).
pub const QUEUE: usize = 1024;

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// `stream.started`, `stream.ended`, `recording.started`, `recording.stopped`,
    /// `recording.failed`.
    pub kind: &'static str,
    /// The JSON body: `{"type","time","stream",...}`.
    pub body: Value,
}

impl Notice {
    /// A stream event (`time` is now, RFC 3339 UTC).
    pub fn stream(kind: &'static str, stream: &str) -> Notice {
        Notice {
            kind,
            body: json!({
                "type": kind,
                "time": archive::format_ms(archive::now_ms()),
                "stream": stream,
            }),
        }
    }

    /// A recording event.
    pub fn recording(kind: &'static str, r: &archive::RecordingRow) -> Notice {
        Notice {
            kind,
            body: json!({
                "type": kind,
                "time": archive::format_ms(archive::now_ms()),
                "stream": r.stream,
                "recording": {
                    "id": r.id,
                    "state": r.state.as_str(),
                    "start": archive::format_ms(r.start_ms),
                    "end": r.end_ms.map(archive::format_ms),
                    "title": r.title,
                },
            }),
        }
    }
}

/// The notification hub.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Notice>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            tx: broadcast::channel(QUEUE).0,
        }
    }
}

impl Notifier {
    /// Publishes a notice (dropped when nobody listens).
    pub fn publish(&self, n: Notice) {
        tracing::debug!(kind = n.kind, "notice");
        let _ = self.tx.send(n);
    }

    /// A receiver of every notice from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }
}

/// `sha256=<hex>` of `body` with `secret` (the `X-Casterpak-Signature` value).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers every notice to `url` until `shutdown`, retrying with backoff.
pub async fn webhook_worker(
    url: String,
    secret: String,
    mut rx: broadcast::Receiver<Notice>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        let notice = tokio::select! {
            _ = shutdown.cancelled() => return,
            n = rx.recv() => match n {
                Ok(n) => n,
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    tracing::warn!(url, lost, "webhook receiver too slow; events dropped");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let body = Arc::new(notice.body.to_string());
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=5 {
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-casterpak-event", notice.kind)
                .body(body.as_str().to_owned());
            if !secret.is_empty() {
                req = req.header("x-casterpak-signature", signature(&secret, body.as_bytes()));
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => {
                    tracing::warn!(
                        url,
                        attempt,
                        status = r.status().as_u16(),
                        kind = notice.kind,
                        "webhook refused"
                    )
                }
                Err(e) => {
                    tracing::warn!(url, attempt, error = %e, kind = notice.kind, "webhook failed")
                }
            }
            if attempt == 5 {
                tracing::error!(url, kind = notice.kind, "webhook given up after 5 attempts");
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
