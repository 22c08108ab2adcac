//! Playback authorization on egress: EdgeAuth tokens from the query, a cookie or a
//! header (`auth::PlaybackAuth`), the optional HTTP callback, and the token carried into
//! every URI a manifest emits.
//!
//! Query tokens are not inherited by relative URIs (RFC 3986 section 5.2.2 replaces the
//! base's query), so when a manifest was asked for with `?<token_name>=...`, every URI in
//! it is rewritten to carry the same pair: HLS URI lines and `URI="..."` attributes
//! (`EXT-X-MAP`, `EXT-X-PART`, `EXT-X-PRELOAD-HINT`, `EXT-X-RENDITION-REPORT`,
//! `EXT-X-MEDIA`), MPD `SegmentTemplate@media/@initialization`, `@sourceURL`, `Location`.
//! Such answers are per viewer: `Cache-Control: private`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use http_body_util::BodyExt;

use super::http::{error_response, Body};
use super::metrics::ReasonLabels;
use super::AppState;
use crate::auth::edgeauth::TokenError;
use crate::auth::{PlaybackAuth, TokenSource};
use crate::error::ErrorKind;

fn reason(e: &TokenError) -> &'static str {
    match e {
        TokenError::Malformed(_) => "malformed",
        TokenError::Expired => "expired",
        TokenError::NotYetValid => "not_yet_valid",
        TokenError::WrongPath => "wrong_path",
        TokenError::BadSignature => "bad_signature",
        TokenError::WrongAddress => "wrong_address",
    }
}

fn refuse(
    state: &AppState,
    peer: std::net::SocketAddr,
    path: &str,
    why: &'static str,
) -> Response<Body> {
    state
        .metrics
        .playback_auth_failures
        .get_or_create(&ReasonLabels { reason: why })
        .inc();
    tracing::info!(%peer, path, reason = why, "playback refused");
    error_response(
        ErrorKind::Forbidden,
        format!("playback not authorized: {}", why.replace('_', " ")),
    )
}

/// Decides on a request. `Ok(Some(pair))`: allowed by a query token, whose raw
/// `name=value` pair (percent-encoded for safe reuse in playlists and MPDs) the manifest
/// rewrite carries on; `Ok(None)`: allowed otherwise; `Err`: the 403 to send. Every token
/// the request carries is tried (query, cookies, header, Bearer), the first valid wins.
pub async fn authorize<B>(
    state: &Arc<AppState>,
    p: &PlaybackAuth,
    req: &Request<B>,
    peer: std::net::SocketAddr,
) -> Result<Option<String>, Response<Body>> {
    let path = req.uri().path();
    let query = req.uri().query();
    let found = p.find_tokens(query, req.headers());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let ip = peer.ip().to_canonical().to_string();
    let carry = |source: TokenSource| -> Option<String> {
        (source == TokenSource::Query)
            .then(|| query.and_then(|q| crate::auth::query_pair(q, &p.cfg.token_name)))
            .flatten()
            .map(safe_pair)
    };
    let mut why = "missing_token";
    for (token, source) in &found {
        match p.verify(token, path, now, Some(&ip)) {
            Ok(()) => return Ok(carry(*source)),
            Err(e) if why == "missing_token" => why = reason(&e),
            Err(_) => {}
        }
    }
    if let Some(url) = &p.cfg.callback_url {
        let (token, source) = found
            .first()
            .map(|(t, s)| (t.clone(), Some(*s)))
            .unwrap_or_default();
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect::<String>();
        let folder = path.rsplit_once('/').map_or(path, |(d, _)| d).to_owned();
        // One decision per (token, client address, user agent, folder): never reused for
        // another client.
        let key: [u8; 32] = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for part in [&token, &ip, &user_agent, &folder] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part.as_bytes());
            }
            h.finalize().into()
        };
        let ask = Callback {
            url,
            path,
            token: &token,
            ip: &ip,
            user_agent: &user_agent,
        };
        // Concurrent misses for one key share one call (moka's get_with).
        let allowed = state
            .auth_cache
            .get_with(key, ask_callback(state, ask))
            .await;
        if allowed {
            return Ok(source.and_then(carry));
        }
        why = "callback_denied";
    }
    Err(refuse(state, peer, path, why))
}

struct Callback<'a> {
    url: &'a str,
    path: &'a str,
    token: &'a str,
    ip: &'a str,
    user_agent: &'a str,
}

/// POSTs `{"action":"read","path","token","ip","user_agent"}` to the callback; any 2xx
/// allows. At most [`CALLBACK_CONCURRENCY`] calls at once, two seconds each; an
/// unreachable callback denies.
async fn ask_callback(state: &AppState, ask: Callback<'_>) -> bool {
    let Ok(_slot) = state.callback_slots.acquire().await else {
        return false;
    };
    let body = serde_json::json!({
        "action": "read",
        "path": ask.path,
        "token": ask.token,
        "ip": ask.ip,
        "user_agent": ask.user_agent,
    });
    match state
        .http_client
        .post(ask.url)
        .timeout(Duration::from_secs(2))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(e) => {
            tracing::warn!(error = %e, "playback authorization callback failed; denied");
            false
        }
    }
}

/// Calls to the authorization callback in flight at most.
pub const CALLBACK_CONCURRENCY: usize = 32;

/// Marks an authorized answer as per-viewer: a shared cache that does not check tokens
/// must not keep it (`public` becomes `private`).
pub fn per_viewer(mut resp: Response<Body>) -> Response<Body> {
    let cc = resp
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replace("public", "private"));
    let value = match cc {
        Some(v) if v.contains("private") || v.contains("no-store") => v,
        Some(v) => format!("private, {v}"),
        None => "private".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// A query pair made safe to write into playlists (inside `URI="..."`) and MPD templates:
/// bytes outside letters, digits and `-._~=%/*!:,+` are percent-encoded (`"`, `$`, `&`,
/// `<`, spaces...); the value decodes to the same token.
fn safe_pair(pair: &str) -> String {
    let mut out = String::with_capacity(pair.len());
    for b in pair.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~=%/*!:,+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Rewrites a `200` HLS playlist or MPD so every URI in it carries `pair`; with `head`,
/// the answer keeps the rewritten `Content-Length` and drops the body.
pub async fn carry_token(resp: Response<Body>, pair: &str, head: bool) -> Response<Body> {
    if resp.status() != http::StatusCode::OK {
        return resp;
    }
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let hls = ct.contains("mpegurl");
    let dash = ct.contains("dash+xml");
    if !hls && !dash {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await else {
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.status = http::StatusCode::INTERNAL_SERVER_ERROR;
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
    let out = if hls {
        crate::hls::with_query(&text, pair)
    } else {
        crate::live::mpd::with_query(&text, pair)
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::ETAG);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=1"),
    );
    let bytes = Bytes::from(out);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    if head {
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::full(bytes))
}

#[cfg(test)]
mod tests {
    use super::safe_pair;

    #[test]
    fn pairs_are_made_safe() {
        assert_eq!(
            safe_pair("hdnts=exp=1~acl=/*~hmac=ab"),
            "hdnts=exp=1~acl=/*~hmac=ab"
        );
        assert_eq!(safe_pair("t=a\"b$c&"), "t=a%22b%24c%26");
    }
}
