//! tus 1.0 request headers of the media library's uploads (`library::tus`): `Upload-Metadata`
//! (comma-separated `key base64` pairs), `Upload-Length` / `Upload-Offset` and
//! `Tus-Resumable`, and the ffprobe JSON an upload's probe reads (`library::probe::parse`).
//!
//! Input: `\n`-separated fields. Beyond not panicking: a number parses only from 1 to 19
//! ASCII digits and round-trips; metadata this target encodes itself decodes to the same
//! pairs; an accepted metadata header never yields more pairs than it has commas plus one.
#![no_main]

use base64::Engine;
use casterpak::library::{probe, tus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = probe::parse(data, 0);
        return;
    };
    let mut f = text.splitn(3, '\n');
    let (a, b, c) = (
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
    );
    if let Ok(m) = tus::metadata(a) {
        assert!(m.len() <= a.matches(',').count() + 1);
        assert!(a.len() <= tus::MAX_METADATA_BYTES);
    }
    match tus::number("Upload-Length", b) {
        Ok(n) => {
            assert!(!b.is_empty() && b.len() <= 19 && b.bytes().all(|x| x.is_ascii_digit()));
            assert_eq!(n.to_string(), b.trim_start_matches('0').to_owned().max_zero());
        }
        Err(_) => {}
    }
    let _ = tus::check_version(Some(b));
    // Pairs encoded here decode to themselves.
    let key: String = b
        .chars()
        .filter(|ch| ch.is_ascii_graphic() && *ch != ',')
        .take(40)
        .collect();
    if !key.is_empty() {
        let value: String = c.chars().take(500).collect();
        let header = format!(
            "{key} {}",
            base64::engine::general_purpose::STANDARD.encode(&value)
        );
        let m = tus::metadata(&header).expect("own metadata parses");
        assert_eq!(m.get(&key), Some(&value));
    }
    let _ = probe::parse(c.as_bytes(), 10);
});

trait MaxZero {
    fn max_zero(self) -> String;
}

impl MaxZero for String {
    /// `""` (all zeros trimmed) is the number 0.
    fn max_zero(self) -> String {
        if self.is_empty() {
            "0".into()
        } else {
            self
        }
    }
}
