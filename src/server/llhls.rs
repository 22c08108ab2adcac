//! Egress of the LL-HLS playlists and parts (RFC 8216bis §6.2.5): blocking reloads and
//! held part requests wait on the stream's version `watch` (no polling) and are answered
//! from one shared rendering per version.
//!
//! Statuses: 400 for bad or too-far-ahead directives, 404 for unknown streams, renditions
//! and parts that will not come, 503 when a blocking reload waited three target durations.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response};
use tokio::time::Instant;

use super::http::{self as h, error_response, Body};
use super::AppState;
use crate::cmaf::TrackKind;
use crate::live::llhls::{Directives, LlHlsError, LlHlsFile};
use crate::live::timeline::{
    LlHlsSettings, PartAnswer, PartLocation, ReloadAnswer, Rendered, StreamTimeline,
};

/// Cache-Control of LL-HLS playlists (MediaPackage: LL-HLS media playlists 1 s).
const CACHE_PLAYLIST: &str = "public, max-age=1";

/// The playlist settings of one request: the window is the DVR window (or the LL-HLS
/// window when longer), or `?dvr=SECONDS` capped by the DVR window (0 = pure live: the
/// shortest window §6.2.2 allows).
fn settings(state: &AppState, query: Option<&str>) -> LlHlsSettings {
    let live = &state.cfg.live;
    let window_secs = match dvr_query(query) {
        Some(d) => d.min(live.dvr_window_secs as f64),
        None => live.dvr_window_secs.max(live.llhls_window_secs) as f64,
    };
    LlHlsSettings {
        part_target: None,
        window_secs,
    }
}

/// `dvr=SECONDS` of a query string (non-negative, finite), if any.
pub fn dvr_query(query: Option<&str>) -> Option<f64> {
    query?
        .split('&')
        .filter_map(|p| p.strip_prefix("dvr="))
        .filter_map(|v| v.parse::<f64>().ok())
        .find(|v| v.is_finite() && *v >= 0.0)
}

/// Answers one LL-HLS request for the stream in `dir`.
pub async fn handle(
    state: &Arc<AppState>,
    dir: &str,
    file: LlHlsFile,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let result = match file {
        LlHlsFile::Multivariant => multivariant(state, dir).await.map(|r| {
            // A DVR window asked on the multivariant playlist carries to its media playlists.
            match query.filter(|q| dvr_query(Some(q)).is_some()) {
                Some(q) => Arc::new(Rendered::new(
                    r.version,
                    crate::hls::with_query(&String::from_utf8_lossy(&r.plain), q),
                )),
                None => r,
            }
        }),
        LlHlsFile::Media(rep) => media(state, dir, &rep, query).await,
        LlHlsFile::Part { rep, msn, index } => {
            return match part(state, dir, &rep, msn, index).await {
                Ok(resp) => head_only(resp, method),
                Err(e) => error_response(e.kind(), e),
            };
        }
    };
    match result {
        Ok(rendered) => head_only(playlist_response(&rendered, headers), method),
        Err(e) => error_response(e.kind(), e),
    }
}

fn head_only(mut resp: Response<Body>, method: &Method) -> Response<Body> {
    if method == Method::HEAD {
        *resp.body_mut() = Body::empty();
    }
    resp
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut it = item.split(';');
            let coding = it.next().unwrap_or("").trim();
            let q_zero = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

fn playlist_response(rendered: &Rendered, headers: &HeaderMap) -> Response<Body> {
    let gzip = accepts_gzip(headers) && !rendered.gzip.is_empty();
    let body: Bytes = if gzip {
        rendered.gzip.clone()
    } else {
        rendered.plain.clone()
    };
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")
        .header(header::CACHE_CONTROL, CACHE_PLAYLIST)
        .header(header::VARY, "Accept-Encoding")
        .header(header::CONTENT_LENGTH, body.len());
    if gzip {
        b = b.header(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    b.body(Body::full(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// How long a request waits for a stream (or its timing) that does not exist yet.
fn startup_wait(state: &AppState) -> Duration {
    Duration::from_secs_f64(state.cfg.live.live_edge_wait_secs)
}

fn block_limit(stream: &StreamTimeline, state: &AppState) -> Duration {
    stream
        .timing()
        .map(|t| Duration::from_secs_f64(t.block_limit_secs()))
        .unwrap_or_else(|| startup_wait(state))
}

fn no_stream(dir: &str) -> LlHlsError {
    LlHlsError::NotFound(format!("no live stream in /{dir}"))
}

async fn multivariant(state: &AppState, dir: &str) -> Result<Arc<Rendered>, LlHlsError> {
    let stream = state.llhls.stream(dir).ok_or_else(|| no_stream(dir))?;
    let mut rx = stream.subscribe();
    let deadline = Instant::now() + startup_wait(state);
    loop {
        rx.borrow_and_update();
        if let Some(r) = stream.multivariant(&state.registry) {
            return Ok(r);
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return Err(LlHlsError::NotFound(format!(
                "/{dir} has no complete segment in every representation yet"
            )));
        }
    }
}

async fn media(
    state: &AppState,
    dir: &str,
    rep: &str,
    query: Option<&str>,
) -> Result<Arc<Rendered>, LlHlsError> {
    let d = Directives::parse(query)?;
    let stream = state.llhls.stream(dir).ok_or_else(|| no_stream(dir))?;
    let settings = settings(state, query);
    let mut rx = stream.subscribe();
    let started = Instant::now();
    // `live.llhls_hold_plain_reload`: a request without `_HLS_msn` (a player's first load,
    // or a plain poll) on a live stream waits for `rep`'s next part, at most 1.5 x
    // PART-TARGET. A player starts PART-HOLD-BACK behind the last part of the playlist it
    // tunes in with; answered at once, that part may be up to one part old. Nothing to wait
    // for (ended, a finished package, no timing or parts yet) or no part in time: the
    // playlist as it is.
    if d.msn.is_none() && state.cfg.live.llhls_hold_plain_reload {
        if let (Some(next), Some(t)) = (stream.next_part(rep), stream.timing()) {
            let next = Directives {
                skip: d.skip,
                ..next
            };
            let until = started + Duration::from_secs_f64(1.5 * t.part_target);
            if let Some(r) = wait_reload(&stream, rep, &next, &settings, &mut rx, |_| until).await?
            {
                return Ok(r);
            }
        }
    }
    let deadline = |s: &StreamTimeline| started + block_limit(s, state);
    match wait_reload(&stream, rep, &d, &settings, &mut rx, deadline).await? {
        Some(r) => Ok(r),
        None => Err(match d.msn {
            Some(msn) => LlHlsError::NotReady {
                msn,
                part: d.part,
                waited_secs: started.elapsed().as_secs_f64(),
            },
            None => LlHlsError::NotFound(format!(
                "/{dir} has no complete segment in every representation yet"
            )),
        }),
    }
}

/// Waits on the stream's version until `stream` can answer directives `d` for `rep`
/// (§6.2.5.2), or until `deadline(stream)` (read again after every change: the timing may
/// appear meanwhile): `Ok(None)` at the deadline.
///
/// Errors: those of [`StreamTimeline::reload`] (unknown rendition, too far ahead).
async fn wait_reload(
    stream: &StreamTimeline,
    rep: &str,
    d: &Directives,
    settings: &LlHlsSettings,
    rx: &mut tokio::sync::watch::Receiver<u64>,
    deadline: impl Fn(&StreamTimeline) -> Instant,
) -> Result<Option<Arc<Rendered>>, LlHlsError> {
    loop {
        rx.borrow_and_update();
        if let ReloadAnswer::Ready(r) = stream.reload(rep, d, settings)? {
            return Ok(Some(r));
        }
        if tokio::time::timeout_at(deadline(stream), rx.changed())
            .await
            .is_err()
        {
            return Ok(None);
        }
    }
}

async fn part(
    state: &AppState,
    dir: &str,
    rep: &str,
    msn: u64,
    index: u64,
) -> Result<Response<Body>, LlHlsError> {
    let stream = state.llhls.stream(dir).ok_or_else(|| no_stream(dir))?;
    let mut rx = stream.subscribe();
    let started = Instant::now();
    let loc = loop {
        rx.borrow_and_update();
        match stream.part(rep, msn, index)? {
            PartAnswer::Ready(loc) => break loc,
            PartAnswer::Wait => {}
        }
        let deadline = started + block_limit(&stream, state);
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return Err(LlHlsError::NotFound(format!(
                "part {msn}.{index} of {rep} did not come"
            )));
        }
    };
    let bytes = part_bytes(state, &loc)
        .await
        .ok_or_else(|| LlHlsError::NotFound(format!("part {msn}.{index} of {rep} is gone")))?;
    let audio = state.registry.track_kind(&loc.key, None) == Some(TrackKind::Audio);
    Ok(Response::builder()
        .header(
            header::CONTENT_TYPE,
            if audio { "audio/mp4" } else { "video/mp4" },
        )
        .header(header::CACHE_CONTROL, h::CACHE_SEGMENT)
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(Body::full(bytes))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// The bytes of a complete part: from the store, else from the persisted segment.
async fn part_bytes(state: &AppState, loc: &PartLocation) -> Option<Bytes> {
    let end = loc.offset.checked_add(loc.size)?;
    if let Some(object) = state.store.get(&loc.key) {
        if let Some(b) = object.slice(loc.offset, end) {
            return Some(b);
        }
    }
    let disk = state.persister.as_ref()?.read(&loc.key).await.ok()??;
    let len = disk.bytes.len() as u64;
    (end <= len).then(|| disk.bytes.slice(loc.offset as usize..end as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        m
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip(&h("gzip")));
        assert!(accepts_gzip(&h("br, gzip;q=0.5")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
        let r = Rendered {
            version: 1,
            plain: Bytes::from_static(b"#EXTM3U\n"),
            gzip: Bytes::from_static(b"\x1f\x8b"),
        };
        let resp = playlist_response(&r, &h("gzip"));
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(resp.headers()[header::VARY], "Accept-Encoding");
        let resp = playlist_response(&r, &HeaderMap::new());
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(resp.headers()[header::VARY], "Accept-Encoding");
        assert_eq!(resp.headers()[header::CONTENT_LENGTH], "8");
    }
}
