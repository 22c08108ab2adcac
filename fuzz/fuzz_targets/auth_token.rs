//! Credentials and tokens from requests: Akamai EdgeAuth 2.0 playback tokens
//! (`auth::edgeauth::Token::parse`, `verify`, the ACL `glob_match`), ingest `Authorization`
//! headers and stream-key paths (`auth::IngestAuth::check`), API bearer tokens
//! (`auth::ApiAuth::role`), token lookup in the query and cookies
//! (`auth::PlaybackAuth::find_tokens`, `query_param`, `strip_param`), and the token carried
//! into manifests (`hls::with_query`, `live::mpd::with_query`).
//!
//! Input: a few `\n`-separated fields. Beyond not panicking: a token this target signs
//! itself over the fuzzed fields verifies; tampering with its HMAC fails; `*` matches
//! everything; a carried query appears in every rewritten MPD template.
#![no_main]

use casterpak::auth::edgeauth::{glob_match, Token, TokenError};
use casterpak::auth::{
    query_param, strip_param, ApiAuth, ApiRole, ApiToken, IngestAuth, IngestCredential,
    PlaybackAuth, PlaybackConfig,
};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KEY: &[u8] = b"0123456789abcdef";

fn sign(fields: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(fields.as_bytes());
    format!("{fields}~hmac={}", hex::encode(mac.finalize().into_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut f = text.splitn(4, '\n');
    let (a, b, c, d) = (
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
    );

    // Any text as a token, checked against any path.
    if let Ok(t) = Token::parse(a) {
        let _ = t.verify(KEY, b, 1_000, Some(c));
    }
    // A token signed here over a fuzzed ACL verifies for the paths the ACL covers.
    let acl: String = b
        .chars()
        .filter(|ch| *ch != '~' && *ch != '!')
        .take(200)
        .collect();
    if !acl.is_empty() && !acl.contains('=') {
        let tok = sign(&format!("exp=2000~acl={acl}"));
        let t = Token::parse(&tok).expect("own token parses");
        let r = t.verify(KEY, c, 1_000, None);
        if glob_match(&acl, c) {
            assert_eq!(r, Ok(()), "{tok} for {c:?}");
        } else {
            assert_eq!(r, Err(TokenError::WrongPath));
        }
        let mut bad = tok.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            Token::parse(&bad).unwrap().verify(KEY, c, 1_000, None),
            Err(TokenError::BadSignature)
        );
    }
    assert!(glob_match("*", a));
    let _ = glob_match(b, c);

    // Ingest credentials against any path and header.
    let ingest = IngestAuth::new(&[IngestCredential {
        user: "cam1".into(),
        password: Some("secret".into()),
        stream_key: Some("k3y".into()),
        paths: vec!["live/cam1/*".into()],
        ..Default::default()
    }])
    .unwrap();
    let _ = ingest.check(a, Some(b.as_bytes()));
    let _ = ingest.check(a, None);
    let api = ApiAuth::new(&[ApiToken {
        token: "admin-token".into(),
        role: ApiRole::Admin,
    }])
    .unwrap();
    let _ = api.role(Some(c.as_bytes()));

    // Token lookup in query, cookies and headers.
    let p = PlaybackAuth::new(&PlaybackConfig {
        key: hex::encode(KEY),
        ..Default::default()
    })
    .unwrap();
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(c) {
        headers.insert(http::header::COOKIE, v.clone());
        headers.insert(http::header::AUTHORIZATION, v);
    }
    let found = p.find_tokens(Some(a), &headers);
    assert!(found.len() <= 8);
    let _ = query_param(a, b);
    let stripped = strip_param(a, "hdnts");
    assert!(query_param(&stripped, "hdnts").is_none());

    // The carried pair, written into manifests.
    let pair = "hdnts=exp=1~acl=/*~hmac=ab";
    let _ = casterpak::hls::with_query(d, pair);
    let out = casterpak::live::mpd::with_query(d, pair);
    assert!(out.len() >= d.len());
});
