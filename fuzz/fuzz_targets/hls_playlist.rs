//! HLS playlists an encoder pushes (`-f hls -method PUT`): the archive's reads of media and
//! multivariant playlists (`hls::parse::parse_media`, `parse_multivariant`), the object keys
//! made from the URIs inside them (`store::ObjectKey::sibling`), what ingest learns from a
//! `.m3u8` upload (`live::Registry::learn`) and the token query appended to playlist URIs
//! (`hls::with_query`).
//!
//! Input: the playlist bytes as uploaded.
#![no_main]

use casterpak::hls::{self, parse};
use casterpak::live::Registry;
use casterpak::store::ObjectKey;
use libfuzzer_sys::fuzz_target;

fn resolve(key: &ObjectKey, uri: &str) {
    if let Ok(k) = key.sibling(uri) {
        // Names from a playlist stay inside its folder.
        assert!(
            k.as_str()
                .strip_prefix(key.dir())
                .is_some_and(|r| r.starts_with('/')),
            "{uri:?} resolved to {k} outside {}",
            key.dir()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let key = ObjectKey::from_decoded("live/x/stream.m3u8").unwrap();
    let registry = Registry::new();
    registry.learn(&key, data, None);

    // The archive reads only UTF-8 playlists.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for v in parse::parse_multivariant(text) {
        assert!(!v.uri.is_empty() && !v.uri.starts_with('#'));
        resolve(&key, &v.uri);
    }
    if let Some(media) = parse::parse_media(text) {
        assert!(media.segments.len() <= parse::MAX_SEGMENTS);
        for s in &media.segments {
            assert!(
                s.duration_ms < 86_400_000 + 1,
                "EXTINF {} ms",
                s.duration_ms
            );
            resolve(&key, &s.uri);
            if let Some(map) = &s.map_uri {
                resolve(&key, map);
            }
        }
        let _ = media
            .media_sequence
            .checked_add(media.segments.len() as u64);
    }
    let _ = hls::with_query(text, "hdnts=exp%3D1~acl%3D%2F*~hmac%3Dab");
});
