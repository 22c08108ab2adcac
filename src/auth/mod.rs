//! Who may push, play and manage: ingest credentials, playback tokens, API tokens.
//!
//! Pure decisions over headers, paths and configuration; no sockets, no clock reads (the
//! callers pass `now`). The server layer turns a refusal into its status
//! (`server::http::status_for` via [`crate::error::ErrorKind`]) and owns the HTTP callback.
//!
//! - Ingest: HTTP Basic (RFC 7617), `Authorization: Bearer` (RFC 6750) or a stream key in
//!   the path, each credential allowed a set of path patterns ([`IngestAuth`]).
//! - Playback: Akamai EdgeAuth 2.0 tokens ([`edgeauth`]) from the query, a cookie or a
//!   header ([`PlaybackAuth`]), with a CDN trust header that skips them.
//! - API: bearer tokens with a role, read or admin ([`ApiAuth`]).

pub mod edgeauth;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `[auth]` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `[[auth.ingest]]`: once one exists, every push must match one.
    pub ingest: Vec<IngestCredential>,
    /// `[auth.playback]`: signed playback URLs; off when absent.
    pub playback: Option<PlaybackConfig>,
    /// `[[auth.api]]`: bearer tokens of the API listener; with none the API must listen on
    /// loopback.
    pub api: Vec<ApiToken>,
}

/// One `[[auth.ingest]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestCredential {
    /// The Basic user name.
    pub user: String,
    /// The password in clear (Basic password, or the Bearer token).
    pub password: Option<String>,
    /// The password's SHA-256, hex, instead of `password`.
    pub password_sha256: Option<String>,
    /// A stream key: pushes to `/key/<stream_key>/<path>` are stored at `<path>`.
    pub stream_key: Option<String>,
    /// Object paths this credential may write, without the leading `/`: `*` is any run of
    /// characters (`/` included), `?` one character (`live/cam1/*`).
    pub paths: Vec<String>,
}

/// `[auth.playback]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaybackConfig {
    /// The EdgeAuth key, hex.
    pub key: String,
    /// Name of the query parameter, cookie and header holding the token.
    pub token_name: String,
    /// Name of the CDN trust header (with `cdn_secret`).
    pub cdn_header: String,
    /// When a request carries `cdn_header: <cdn_secret>`, per-viewer checks and URI
    /// rewriting are skipped (a CDN that checks tokens at its edge caches our answers).
    pub cdn_secret: Option<String>,
    /// An HTTP authorization callback: POSTed JSON, any 2xx allows. Asked when no valid
    /// token came with the request.
    pub callback_url: Option<String>,
    /// How long a callback decision is reused for the same credential and stream, seconds.
    pub callback_cache_secs: u64,
}

impl Default for PlaybackConfig {
    fn default() -> Self {
        PlaybackConfig {
            key: String::new(),
            token_name: "hdnts".into(),
            cdn_header: "x-casterpak-cdn".into(),
            cdn_secret: None,
            callback_url: None,
            callback_cache_secs: 10,
        }
    }
}

/// One `[[auth.api]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// The bearer token.
    pub token: String,
    /// `read` (GET only) or `admin` (everything).
    pub role: ApiRole,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// GET and HEAD (listings, metrics, events).
    Read,
    /// Everything.
    Admin,
}

/// Errors in the `[auth]` settings, found at start.
#[derive(Debug, Clone, thiserror::Error)]
#[error("auth.{key}: {reason}")]
pub struct AuthConfigError {
    /// The setting.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A credential checked at start: hashes decoded.
#[derive(Debug, Clone)]
struct Credential {
    user: String,
    user_hash: [u8; 32],
    password_hash: [u8; 32],
    stream_key_hash: Option<[u8; 32]>,
    paths: Vec<String>,
}

/// What ingest decides about a request, before reading its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestDecision {
    /// No `[[auth.ingest]]`: everything is accepted.
    Open,
    /// Accepted; `path` is where the object goes (the stream key stripped), `principal`
    /// the user for logs.
    Allowed { path: String, principal: String },
    /// No credentials: 401 with `WWW-Authenticate: Basic` (for ffmpeg's Expect request).
    Challenge,
    /// Wrong credentials, or a path they do not cover: 403.
    Refused(Refusal),
}

/// Why ingest refused a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No credential has this user and password (or Bearer token).
    WrongCredentials,
    /// The credentials (or stream key) are right but do not cover the path.
    PathNotAllowed,
    /// No credential has this stream key.
    UnknownStreamKey,
    /// `Authorization: Basic` that is not base64 of `user:password`.
    MalformedCredentials,
    /// An `Authorization` scheme other than Basic and Bearer.
    UnsupportedScheme,
    /// A body sent with no credentials and no `Expect: 100-continue` (nothing to
    /// challenge: the status would not be read).
    NoCredentials,
}

impl Refusal {
    /// The metric label and log word.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::WrongCredentials => "wrong_credentials",
            Refusal::PathNotAllowed => "path_not_allowed",
            Refusal::UnknownStreamKey => "unknown_stream_key",
            Refusal::MalformedCredentials => "malformed_credentials",
            Refusal::UnsupportedScheme => "unsupported_scheme",
            Refusal::NoCredentials => "no_credentials",
        }
    }
}

/// Ingest credentials, ready to check.
#[derive(Debug, Clone, Default)]
pub struct IngestAuth {
    creds: Vec<Credential>,
}

impl IngestAuth {
    /// Checks and prepares the `[[auth.ingest]]` entries.
    ///
    /// Errors: an entry without `user` or paths, with neither or both of `password` and
    /// `password_sha256`, or a hash that is not 64 hex digits.
    pub fn new(entries: &[IngestCredential]) -> Result<IngestAuth, AuthConfigError> {
        let err = |reason: String| AuthConfigError {
            key: "ingest",
            reason,
        };
        let mut creds = Vec::new();
        for e in entries {
            if e.user.is_empty() || e.user.contains(':') {
                return Err(err("every entry needs a user without ':'".into()));
            }
            if e.paths.is_empty() {
                return Err(err(format!("user {} has no paths", e.user)));
            }
            let password_hash = match (&e.password, &e.password_sha256) {
                (Some(p), None) => sha256(p.as_bytes()),
                (None, Some(h)) => {
                    let mut out = [0u8; 32];
                    hex::decode_to_slice(h.trim(), &mut out).map_err(|_| {
                        err(format!(
                            "user {}: password_sha256 is not 64 hex digits",
                            e.user
                        ))
                    })?;
                    out
                }
                _ => {
                    return Err(err(format!(
                        "user {}: give exactly one of password and password_sha256",
                        e.user
                    )))
                }
            };
            if let Some(k) = &e.stream_key {
                if k.is_empty() || k.contains('/') {
                    return Err(err(format!(
                        "user {}: stream_key must be non-empty without '/'",
                        e.user
                    )));
                }
            }
            creds.push(Credential {
                user: e.user.clone(),
                user_hash: sha256(e.user.as_bytes()),
                password_hash,
                stream_key_hash: e.stream_key.as_deref().map(|k| sha256(k.as_bytes())),
                paths: e
                    .paths
                    .iter()
                    .map(|p| p.trim_start_matches('/').to_owned())
                    .collect(),
            });
        }
        Ok(IngestAuth { creds })
    }

    /// Whether any credential is configured (else ingest is open).
    pub fn enabled(&self) -> bool {
        !self.creds.is_empty()
    }

    /// Decides on a push to `path` (the URL path as received, `/`-rooted, still
    /// percent-encoded) with the request's `Authorization` header value, if any.
    /// Every secret comparison is constant-time (SHA-256 digests compared with `subtle`).
    pub fn check(&self, path: &str, authorization: Option<&[u8]>) -> IngestDecision {
        if self.creds.is_empty() {
            return IngestDecision::Open;
        }
        // A stream key in the path: /key/<key>/<rest>.
        if let Some(rest) = path.strip_prefix("/key/") {
            let (key, target) = rest.split_once('/').unwrap_or((rest, ""));
            let h = sha256(key.as_bytes());
            let matched = self.matching(target, |c| {
                c.stream_key_hash
                    .as_ref()
                    .is_some_and(|kh| bool::from(kh.ct_eq(&h)))
            });
            return match matched {
                Matched::Covered(c) => IngestDecision::Allowed {
                    path: format!("/{target}"),
                    principal: c.user.clone(),
                },
                Matched::NotCovering => IngestDecision::Refused(Refusal::PathNotAllowed),
                Matched::None => IngestDecision::Refused(Refusal::UnknownStreamKey),
            };
        }
        let Some(value) = authorization else {
            return IngestDecision::Challenge;
        };
        let rel = path.trim_start_matches('/');
        let value = String::from_utf8_lossy(value);
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((&value, ""));
        let rest = rest.trim();
        let matched = if scheme.eq_ignore_ascii_case("basic") {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return IngestDecision::Refused(Refusal::MalformedCredentials);
            };
            let Some(colon) = raw.iter().position(|&b| b == b':') else {
                return IngestDecision::Refused(Refusal::MalformedCredentials);
            };
            let (user, pass) = (sha256(&raw[..colon]), sha256(&raw[colon + 1..]));
            self.matching(rel, |c| {
                bool::from(c.password_hash.ct_eq(&pass) & c.user_hash.ct_eq(&user))
            })
        } else if scheme.eq_ignore_ascii_case("bearer") {
            // The Bearer token is a credential's password.
            let h = sha256(rest.as_bytes());
            self.matching(rel, |c| bool::from(c.password_hash.ct_eq(&h)))
        } else {
            return IngestDecision::Refused(Refusal::UnsupportedScheme);
        };
        match matched {
            Matched::Covered(c) => IngestDecision::Allowed {
                path: path.to_owned(),
                principal: c.user.clone(),
            },
            Matched::NotCovering => IngestDecision::Refused(Refusal::PathNotAllowed),
            Matched::None => IngestDecision::Refused(Refusal::WrongCredentials),
        }
    }

    /// The credential that `is_it` and whose paths cover `rel`; every credential is
    /// compared (no early exit on the secret).
    fn matching(&self, rel: &str, is_it: impl Fn(&Credential) -> bool) -> Matched<'_> {
        let mut out = Matched::None;
        for c in &self.creds {
            if is_it(c) {
                if covers(&c.paths, rel) {
                    if !matches!(out, Matched::Covered(_)) {
                        out = Matched::Covered(c);
                    }
                } else if matches!(out, Matched::None) {
                    out = Matched::NotCovering;
                }
            }
        }
        out
    }
}

enum Matched<'a> {
    None,
    NotCovering,
    Covered(&'a Credential),
}

fn covers(patterns: &[String], rel: &str) -> bool {
    patterns.iter().any(|p| edgeauth::glob_match(p, rel))
}

/// Playback authorization, ready to check.
#[derive(Debug, Clone)]
pub struct PlaybackAuth {
    key: Vec<u8>,
    /// The settings.
    pub cfg: PlaybackConfig,
}

/// Where a playback token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The query string (then every URI a manifest emits carries it).
    Query,
    /// A cookie of the token name.
    Cookie,
    /// A header of the token name, or `Authorization: Bearer`.
    Header,
}

impl PlaybackAuth {
    /// Checks `[auth.playback]`.
    ///
    /// Errors: a key that is empty or not hex, an empty or non-token-character name.
    pub fn new(cfg: &PlaybackConfig) -> Result<PlaybackAuth, AuthConfigError> {
        let key = hex::decode(cfg.key.trim()).map_err(|_| AuthConfigError {
            key: "playback.key",
            reason: "must be hex (the EdgeAuth key)".into(),
        })?;
        if key.is_empty() && cfg.callback_url.is_none() {
            return Err(AuthConfigError {
                key: "playback.key",
                reason: "must be set (or a callback_url)".into(),
            });
        }
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !name_ok(&cfg.token_name) || !name_ok(&cfg.cdn_header) {
            return Err(AuthConfigError {
                key: "playback.token_name",
                reason: "token_name and cdn_header must be letters, digits, '_' or '-'".into(),
            });
        }
        Ok(PlaybackAuth {
            key,
            cfg: cfg.clone(),
        })
    }

    /// Whether the request carries the CDN trust header with the right secret
    /// (constant-time).
    pub fn trusted_cdn(&self, headers: &http::HeaderMap) -> bool {
        let Some(secret) = &self.cfg.cdn_secret else {
            return false;
        };
        headers
            .get(self.cfg.cdn_header.as_str())
            .is_some_and(|v| bool::from(sha256(v.as_bytes()).ct_eq(&sha256(secret.as_bytes()))))
    }

    /// Every token a request carries, percent-decoded, with where it came from, in the
    /// order they are tried: the query parameter, the cookies, the header of the token
    /// name, `Authorization: Bearer`. At most 8; tokens longer than
    /// [`edgeauth::MAX_TOKEN_LEN`] are skipped.
    pub fn find_tokens(
        &self,
        query: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Vec<(String, TokenSource)> {
        let name = self.cfg.token_name.as_str();
        let mut out = Vec::new();
        if let Some(v) = query.and_then(|q| query_param(q, name)) {
            out.push((v, TokenSource::Query));
        }
        for cookies in headers.get_all(http::header::COOKIE) {
            let Ok(text) = cookies.to_str() else { continue };
            for c in text.split(';') {
                if let Some((k, v)) = c.trim().split_once('=') {
                    if k == name {
                        out.push((decode(v), TokenSource::Cookie));
                    }
                }
            }
        }
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            out.push((v.trim().to_owned(), TokenSource::Header));
        }
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        if let Some(v) = bearer {
            out.push((v.trim().to_owned(), TokenSource::Header));
        }
        out.retain(|(t, _)| t.len() <= edgeauth::MAX_TOKEN_LEN);
        out.truncate(8);
        out
    }

    /// Verifies an EdgeAuth token for `path` at `now` (Unix seconds).
    ///
    /// Errors: [`edgeauth::TokenError`].
    pub fn verify(
        &self,
        token: &str,
        path: &str,
        now: u64,
        client_ip: Option<&str>,
    ) -> Result<(), edgeauth::TokenError> {
        if self.key.is_empty() {
            return Err(edgeauth::TokenError::BadSignature);
        }
        edgeauth::Token::parse(token)?.verify(&self.key, path, now, client_ip)
    }
}

/// The value of query parameter `name` (percent-decoded, `+` as space), if present.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| decode(v))
    })
}

/// The raw `name=value` pair of a query (as received, still encoded), for carrying it on.
pub fn query_pair<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find(|kv| kv.split_once('=').map_or(*kv, |(k, _)| k) == name)
}

/// A query string with parameter `name` removed (for logs and cache keys).
pub fn strip_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|kv| kv.split_once('=').map_or(*kv, |(k, _)| k) != name)
        .collect::<Vec<_>>()
        .join("&")
}

fn decode(v: &str) -> String {
    let plus = v.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// API tokens, ready to check.
#[derive(Debug, Clone, Default)]
pub struct ApiAuth {
    tokens: Vec<([u8; 32], ApiRole)>,
}

impl ApiAuth {
    /// Prepares `[[auth.api]]`.
    ///
    /// Errors: a token shorter than 8 characters.
    pub fn new(entries: &[ApiToken]) -> Result<ApiAuth, AuthConfigError> {
        let mut tokens = Vec::new();
        for e in entries {
            if e.token.len() < 8 {
                return Err(AuthConfigError {
                    key: "api",
                    reason: "every token needs at least 8 characters".into(),
                });
            }
            tokens.push((sha256(e.token.as_bytes()), e.role));
        }
        Ok(ApiAuth { tokens })
    }

    /// Whether tokens are configured (else the API is open, on loopback only).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The role of a bearer token (the `Authorization` header value), compared in
    /// constant time; `None` for a missing or unknown token.
    pub fn role(&self, authorization: Option<&[u8]>) -> Option<ApiRole> {
        let value = std::str::from_utf8(authorization?).ok()?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?
            .trim();
        let h = sha256(token.as_bytes());
        let mut role = None;
        for (th, r) in &self.tokens {
            if bool::from(th.ct_eq(&h)) {
                role = role.max(Some(*r));
            }
        }
        role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest() -> IngestAuth {
        IngestAuth::new(&[IngestCredential {
            user: "cam1".into(),
            password: Some("secret".into()),
            stream_key: Some("k3y".into()),
            paths: vec!["live/cam1/*".into()],
            ..Default::default()
        }])
        .unwrap()
    }

    fn basic(u: &str, p: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
        .into_bytes()
    }

    #[test]
    fn ingest_decisions() {
        let a = ingest();
        assert_eq!(a.check("/live/cam1/a.m4s", None), IngestDecision::Challenge);
        assert!(matches!(
            a.check("/live/cam1/a.m4s", Some(&basic("cam1", "secret"))),
            IngestDecision::Allowed { .. }
        ));
        assert!(matches!(
            a.check("/live/cam1/a.m4s", Some(&basic("cam1", "nope"))),
            IngestDecision::Refused(_)
        ));
        assert!(matches!(
            a.check("/live/cam2/a.m4s", Some(&basic("cam1", "secret"))),
            IngestDecision::Refused(_)
        ));
        assert!(matches!(
            a.check("/live/cam1/a.m4s", Some(b"Bearer secret")),
            IngestDecision::Allowed { .. }
        ));
        assert_eq!(
            a.check("/key/k3y/live/cam1/s.mpd", None),
            IngestDecision::Allowed {
                path: "/live/cam1/s.mpd".into(),
                principal: "cam1".into()
            }
        );
        assert!(matches!(
            a.check("/key/bad/live/cam1/s.mpd", None),
            IngestDecision::Refused(_)
        ));
        assert!(matches!(
            a.check("/key/k3y/live/cam2/s.mpd", None),
            IngestDecision::Refused(_)
        ));
        assert_eq!(
            IngestAuth::default().check("/x", None),
            IngestDecision::Open
        );
    }

    #[test]
    fn ingest_config_errors() {
        let both = IngestCredential {
            user: "u".into(),
            password: Some("a".into()),
            password_sha256: Some("00".into()),
            paths: vec!["*".into()],
            ..Default::default()
        };
        assert!(IngestAuth::new(&[both]).is_err());
        let hashed = IngestCredential {
            user: "u".into(),
            password_sha256: Some(hex::encode(sha256(b"pw"))),
            paths: vec!["*".into()],
            ..Default::default()
        };
        let a = IngestAuth::new(&[hashed]).unwrap();
        assert!(matches!(
            a.check("/x/y", Some(&basic("u", "pw"))),
            IngestDecision::Allowed { .. }
        ));
    }

    #[test]
    fn api_roles() {
        let a = ApiAuth::new(&[
            ApiToken {
                token: "reader-token".into(),
                role: ApiRole::Read,
            },
            ApiToken {
                token: "admin-token".into(),
                role: ApiRole::Admin,
            },
        ])
        .unwrap();
        assert_eq!(a.role(Some(b"Bearer reader-token")), Some(ApiRole::Read));
        assert_eq!(a.role(Some(b"Bearer admin-token")), Some(ApiRole::Admin));
        assert_eq!(a.role(Some(b"Bearer nope")), None);
        assert_eq!(a.role(None), None);
    }

    #[test]
    fn queries() {
        assert_eq!(
            query_param("a=1&hdnts=exp%3D1~acl%3D%2F*~hmac%3D00", "hdnts").as_deref(),
            Some("exp=1~acl=/*~hmac=00")
        );
        assert_eq!(query_pair("a=1&hdnts=x%3D&b", "hdnts"), Some("hdnts=x%3D"));
        assert_eq!(strip_param("a=1&hdnts=x&b=2", "hdnts"), "a=1&b=2");
    }
}
