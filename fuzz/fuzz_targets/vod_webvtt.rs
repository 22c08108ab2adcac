//! Subtitles of the on-demand packager (`vod::webvtt`): WebVTT sidecars as read from the
//! media root (`parse`), `tx3g` samples as read from an MP4 (`tx3g_cue`), and what is written
//! from them (`segment`, `whole`).
//!
//! Input: a whole sidecar file, also used as one `tx3g` sample. Beyond not panicking: every
//! parsed cue ends after it starts and has no blank line or `-->` in its text; `whole` of the
//! parsed cues parses back to the same cues; a segment holds only cues that overlap it.
#![no_main]

use casterpak::vod::webvtt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cues) = webvtt::parse(data) {
        for c in &cues {
            assert!(c.end_ms > c.start_ms, "{c:?}");
            assert!(!c.text.contains("\n\n") && !c.text.contains("-->"), "{c:?}");
        }
        let again = webvtt::parse(webvtt::whole(&cues).as_bytes()).expect("whole() reparses");
        assert_eq!(again, cues.iter().filter(|c| c.end_ms > 0).map(|c| webvtt::Cue {
            start_ms: c.start_ms.max(0),
            ..c.clone()
        }).collect::<Vec<_>>());
        let seg = webvtt::segment(&cues, 2_000, 4_000, 900_000);
        for c in webvtt::parse(seg.as_bytes()).expect("segment() reparses") {
            assert!(c.start_ms < 4_000 && c.end_ms > 2_000, "{c:?} outside [2 s, 4 s)");
        }
    }
    if let Some(c) = webvtt::tx3g_cue(data, 1_000, 2_000) {
        assert_eq!((c.start_ms, c.end_ms), (1_000, 2_000));
        assert!(!c.text.contains("-->"), "{c:?}");
    }
});
