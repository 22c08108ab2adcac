//! Egress request decoding: the path of every GET/HEAD (`server::route::Route::decode`,
//! which validates object keys with `store::ObjectKey::from_uri_path` and recognises the
//! LL-HLS file names with `live::llhls::LlHlsFile::from_file_name`), the LL-HLS blocking
//! reload query (`live::llhls::Directives::parse`), object keys made from names inside
//! pushed playlists (`ObjectKey::sibling`) and the API's time parameters
//! (`archive::parse_time`).
//!
//! Input: a request target `path[?query]`. Beyond not panicking, every key accepted must be
//! safe to join to the data dir: relative, no empty, `.` or `..` segment, no hidden name, no
//! backslash or control character, within the length caps, and valid again as it is.
#![no_main]

use casterpak::live::llhls::{Directives, LlHlsFile};
use casterpak::server::route::Route;
use casterpak::store::key::{MAX_KEY_BYTES, MAX_SEGMENT_BYTES};
use casterpak::store::ObjectKey;
use libfuzzer_sys::fuzz_target;

fn check_key(key: &ObjectKey) {
    let s = key.as_str();
    assert!(
        !s.is_empty() && s.len() <= MAX_KEY_BYTES,
        "key length {}",
        s.len()
    );
    assert!(!s.contains('\\'), "backslash in {s:?}");
    assert!(
        !s.chars().any(char::is_control),
        "control character in {s:?}"
    );
    for seg in s.split('/') {
        assert!(!seg.is_empty(), "empty segment in {s:?}");
        assert!(!seg.starts_with('.'), "dot or hidden segment in {s:?}");
        assert!(seg.len() <= MAX_SEGMENT_BYTES);
    }
    assert_eq!(
        ObjectKey::from_decoded(s).as_ref(),
        Ok(key),
        "key not stable"
    );
    let _ = key.extension();
    assert!(key.dir().is_empty() || s.starts_with(key.dir()));
    assert!(s.ends_with(key.file_name()));
    let p = key.to_path(std::path::Path::new("/data"));
    assert!(p.starts_with("/data"));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    match Route::decode(path) {
        Ok(Route::Player(key)) | Ok(Route::Object(key)) => check_key(&key),
        Ok(Route::LlHls { dir, file }) => {
            assert!(!dir.is_empty());
            if let LlHlsFile::Part { rep, .. } | LlHlsFile::Media(rep) = &file {
                assert!(!rep.is_empty());
            }
        }
        Ok(_) | Err(_) => {}
    }
    if let Ok(key) = ObjectKey::from_uri_path(path) {
        check_key(&key);
        let _ = LlHlsFile::from_file_name(key.file_name());
        // A name read from a pushed playlist, resolved next to it (the archive does this
        // for every URI of an HLS push).
        if let Some(q) = query {
            if let Ok(sib) = key.sibling(q) {
                check_key(&sib);
                if !key.dir().is_empty() {
                    let inside = sib.as_str().strip_prefix(key.dir());
                    assert!(
                        inside.is_some_and(|r| r.starts_with('/')),
                        "sibling {sib} left the folder of {key}"
                    );
                }
            }
        }
    }
    if let Ok(d) = Directives::parse(query) {
        assert!(d.part.is_none() || d.msn.is_some());
    }
    if let Some(q) = query {
        for pair in q.split('&') {
            if let Some(v) = pair
                .strip_prefix("from=")
                .or_else(|| pair.strip_prefix("to="))
            {
                let _ = casterpak::archive::parse_time(v);
            }
        }
    }
});
