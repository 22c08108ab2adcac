//! Akamai EdgeAuth 2.0 tokens: parsing and validation.
//!
//! A token is `[ip=<addr>~][st=<unix s>~]exp=<unix s>~(acl=<pattern>[!<pattern>...]|)
//! [~id=<text>][~data=<text>]~hmac=<hex>`, fields separated by `~`. The HMAC (SHA-256 here,
//! the EdgeAuth default) is keyed by the hex-decoded key and computed over the fields
//! before `hmac=` joined by `~`; a URL token (no `acl`) adds `~url=<request path>` to that
//! input. Source: Akamai's reference implementation `akamai/EdgeAuth-Token-Python`
//! (`akamai/edgeauth/edgeauth.py`, `_generate_token`), which the tests use to make tokens.
//!
//! Pure: no clock is read here; callers pass `now` as Unix seconds.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longest token accepted, in bytes (refused before any parsing work).
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why a token was refused. Every variant maps to 403 at the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not `name=value` fields separated by `~`, a field twice, no `exp` or no `hmac`, or
    /// longer than [`MAX_TOKEN_LEN`].
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `st` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The path is not covered by the token's `acl` (or `url`).
    #[error("path not covered by the token")]
    WrongPath,
    /// The HMAC does not match: tampered, or made with another key.
    #[error("token signature does not match")]
    BadSignature,
    /// The token is bound to another client address (`ip=`).
    #[error("token bound to another address")]
    WrongAddress,
}

/// A parsed token; borrowed from the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The client address the token is bound to (`ip=`), if any.
    pub ip: Option<&'a str>,
    /// Start of validity, Unix seconds (`st=`).
    pub start: Option<u64>,
    /// End of validity, Unix seconds (`exp=`).
    pub expires: u64,
    /// ACL patterns (`acl=`, `!`-separated); empty for a URL token.
    pub acl: Vec<&'a str>,
    /// Session id (`id=`).
    pub id: Option<&'a str>,
    /// The signed part: everything before `~hmac=`.
    signed: &'a str,
    /// The HMAC, hex (lower or upper case).
    hmac: &'a str,
}

impl<'a> Token<'a> {
    /// Parses a token's text (already percent-decoded).
    ///
    /// Errors: [`TokenError::Malformed`].
    pub fn parse(text: &'a str) -> Result<Token<'a>, TokenError> {
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("too long"));
        }
        let (signed, hmac) = match text.rfind("~hmac=") {
            Some(at) => (&text[..at], &text[at + 6..]),
            None => match text.strip_prefix("hmac=") {
                Some(_) => return Err(TokenError::Malformed("no exp")),
                None => return Err(TokenError::Malformed("no hmac")),
            },
        };
        if hmac.is_empty() || !hmac.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Malformed("hmac is not hex"));
        }
        let mut t = Token {
            ip: None,
            start: None,
            expires: 0,
            acl: Vec::new(),
            id: None,
            signed,
            hmac,
        };
        let mut seen_exp = false;
        let mut seen = [false; 6];
        for field in signed.split('~') {
            let (name, value) = field
                .split_once('=')
                .ok_or(TokenError::Malformed("a field without '='"))?;
            let slot = match name {
                "ip" => 0,
                "st" => 1,
                "exp" => 2,
                "acl" => 3,
                "id" => 4,
                "data" => 5,
                _ => return Err(TokenError::Malformed("unknown field")),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(TokenError::Malformed("a field twice"));
            }
            match name {
                "ip" => t.ip = Some(value),
                "st" => t.start = Some(parse_secs(value)?),
                "exp" => {
                    t.expires = parse_secs(value)?;
                    seen_exp = true;
                }
                "acl" => t.acl = value.split('!').collect(),
                "id" => t.id = Some(value),
                _ => {}
            }
        }
        if !seen_exp {
            return Err(TokenError::Malformed("no exp"));
        }
        Ok(t)
    }

    /// Checks the token for a request of `path` (the URL path as received, starting with
    /// `/`) at `now` (Unix seconds) from `client_ip`, with the EdgeAuth `key` (raw bytes,
    /// already hex-decoded). The signature is checked first and in constant time.
    ///
    /// Errors: [`TokenError::BadSignature`], [`TokenError::Expired`],
    /// [`TokenError::NotYetValid`], [`TokenError::WrongPath`], [`TokenError::WrongAddress`].
    pub fn verify(
        &self,
        key: &[u8],
        path: &str,
        now: u64,
        client_ip: Option<&str>,
    ) -> Result<(), TokenError> {
        let Ok(expected) = hex::decode(self.hmac) else {
            return Err(TokenError::Malformed("hmac is not hex"));
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return Err(TokenError::BadSignature);
        };
        mac.update(self.signed.as_bytes());
        if self.acl.is_empty() {
            mac.update(b"~url=");
            mac.update(path.as_bytes());
        }
        mac.verify_slice(&expected)
            .map_err(|_| TokenError::BadSignature)?;
        if now >= self.expires {
            return Err(TokenError::Expired);
        }
        if self.start.is_some_and(|st| now < st) {
            return Err(TokenError::NotYetValid);
        }
        if let Some(ip) = self.ip {
            if client_ip != Some(ip) {
                return Err(TokenError::WrongAddress);
            }
        }
        if !self.acl.is_empty() && !self.acl.iter().any(|p| glob_match(p, path)) {
            return Err(TokenError::WrongPath);
        }
        Ok(())
    }
}

fn parse_secs(v: &str) -> Result<u64, TokenError> {
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed("a time is not Unix seconds"));
    }
    v.parse()
        .map_err(|_| TokenError::Malformed("a time is not Unix seconds"))
}

/// Matches `text` against an EdgeAuth ACL pattern: `*` is any run of characters (`/`
/// included), `?` is one character, everything else is literal. The two-pointer wildcard
/// match with one backtrack point: no recursion, at most pattern x text steps.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        // A `*` is always a wildcard, even where the text has a `*` too.
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &[u8], fields: &str, url: Option<&str>) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(fields.as_bytes());
        if let Some(u) = url {
            mac.update(format!("~url={u}").as_bytes());
        }
        format!("{fields}~hmac={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn acl_token_round_trip() {
        let key = b"0123456789abcdef";
        let tok = sign(key, "st=100~exp=200~acl=/live/cam1/*", None);
        let t = Token::parse(&tok).unwrap();
        assert_eq!(t.expires, 200);
        assert_eq!(t.verify(key, "/live/cam1/llhls.m3u8", 150, None), Ok(()));
        assert_eq!(
            t.verify(key, "/live/cam2/llhls.m3u8", 150, None),
            Err(TokenError::WrongPath)
        );
        assert_eq!(
            t.verify(key, "/live/cam1/x", 200, None),
            Err(TokenError::Expired)
        );
        assert_eq!(
            t.verify(key, "/live/cam1/x", 99, None),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            t.verify(b"another key.....", "/live/cam1/x", 150, None),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_and_malformed() {
        let key = b"k";
        let tok = sign(key, "exp=200~acl=/a/*", None);
        let tampered = tok.replace("exp=200", "exp=900");
        let t = Token::parse(&tampered).unwrap();
        assert_eq!(
            t.verify(key, "/a/b", 150, None),
            Err(TokenError::BadSignature)
        );
        for bad in [
            "",
            "hmac=00",
            "exp=1",
            "exp=1~hmac=zz",
            "exp=1~exp=2~hmac=00",
            "exp=x~hmac=00",
            "foo~hmac=00",
            "acl=/a~hmac=00",
        ] {
            assert!(Token::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_token_and_ip() {
        let key = b"key";
        let tok = sign(key, "ip=10.0.0.1~exp=200", Some("/i/a.mp4/master.m3u8"));
        let t = Token::parse(&tok).unwrap();
        assert_eq!(
            t.verify(key, "/i/a.mp4/master.m3u8", 100, Some("10.0.0.1")),
            Ok(())
        );
        assert_eq!(
            t.verify(key, "/i/a.mp4/master.m3u8", 100, Some("10.0.0.2")),
            Err(TokenError::WrongAddress)
        );
        assert_eq!(
            t.verify(key, "/i/a.mp4/other.m3u8", 100, Some("10.0.0.1")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("/live/*", "/live/a/b/c.m4s"));
        assert!(glob_match("/live/a/*.m4s", "/live/a/b.m4s"));
        assert!(!glob_match("/live/a/*.m4s", "/live/a/b.mpd"));
        assert!(glob_match("/x/?", "/x/y"));
        assert!(!glob_match("/x/?", "/x/yz"));
        assert!(glob_match("*", ""));
        // Found by fuzzing: a `*` in the text matched the pattern's `*` literally.
        assert!(glob_match("*", "*//"));
        assert!(glob_match("/a/*", "/a/*x/y"));
        assert!(!glob_match("/a", "/ab"));
        // Bounded even on a hostile pattern.
        let p = "*a".repeat(200);
        let t = "a".repeat(4000) + "b";
        assert!(!glob_match(&p, &t));
    }
}
