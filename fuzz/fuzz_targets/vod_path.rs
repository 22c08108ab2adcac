//! The Akamai-style `/i/` request syntax and its `/cmaf/` and `/dash/` forms (subtitle
//! routes included): the csmil set and single-file paths (`vod::csmil::parse_as` for each `Format`) and the clip/bitrate
//! query (`vod::csmil::Options::parse`).
//!
//! Input: what follows `/i/` in a request target, `path[?query]`. Beyond not panicking, a
//! path that is accepted must only name safe relative files: no empty, `.` or `..`
//! component, not absolute, no backslash or NUL (the module's promise that nothing else
//! reaches the file system).
#![no_main]

use casterpak::vod::csmil::{self, Format, Options, Route, MAX_RENDITIONS};
use casterpak::vod::fmp4::Media;
use libfuzzer_sys::fuzz_target;

fn check_file(rel: &str) {
    assert!(!rel.is_empty(), "empty file path");
    assert!(!rel.starts_with('/'), "absolute file path {rel:?}");
    assert!(
        !rel.contains('\\') && !rel.contains('\0'),
        "unsafe character in {rel:?}"
    );
    for comp in rel.split('/') {
        assert!(
            !comp.is_empty() && comp != "." && comp != "..",
            "unsafe component in {rel:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    for format in [Format::Ts, Format::Cmaf, Format::Dash] {
        let Ok(route) = csmil::parse_as(path, format) else {
            continue;
        };
        let set = route.set();
        assert!(!set.files.is_empty());
        assert!(set.files.len() <= MAX_RENDITIONS);
        assert!(set.is_set || set.files.len() == 1);
        for f in &set.files {
            check_file(f);
        }
        if let Some(index) = route.index() {
            assert!(index < set.files.len());
        }
        match &route {
            Route::Master { .. } => assert_ne!(format, Format::Dash),
            Route::Manifest { .. } => assert_eq!(format, Format::Dash),
            Route::Media { variant, .. } => {
                assert_eq!(format, Format::Ts);
                let _ = variant.suffix();
            }
            Route::Segment { number, .. } => {
                assert_eq!(format, Format::Ts);
                assert!(*number >= 1);
            }
            Route::TrackMedia { media, .. } => {
                assert_eq!(format, Format::Cmaf);
                let _ = media.suffix();
            }
            Route::Init { media, .. } => {
                assert_ne!(format, Format::Ts);
                let _ = media.suffix();
            }
            Route::Fragment { number, .. } => {
                assert_ne!(format, Format::Ts);
                assert!(*number >= 1);
            }
            Route::Key { .. } | Route::IFrames { .. } => assert_ne!(format, Format::Dash),
            Route::IFrame { number, .. } => {
                assert_ne!(format, Format::Dash);
                assert!(*number >= 1);
            }
            Route::Subtitles { .. } => assert_ne!(format, Format::Dash),
            Route::SubtitleSegment { number, .. } => {
                assert_ne!(format, Format::Dash);
                assert!(*number >= 1);
            }
            Route::SubtitleFile { .. } => {}
            Route::TsTrackMedia { media, .. } => {
                assert_eq!(format, Format::Ts);
                assert!(*media != Media::Audio, "`_a` is the audio-only variant");
            }
            Route::TsTrackSegment { number, media, .. } => {
                assert_eq!(format, Format::Ts);
                assert!(*number >= 1 && *media != Media::Audio);
            }
        }
    }
    if let Ok(opts) = Options::parse(query) {
        for t in [opts.start, opts.end].into_iter().flatten() {
            assert!(t.is_finite() && t >= 0.0, "clip time {t}");
        }
        if let (Some(s), Some(e)) = (opts.start, opts.end) {
            assert!(e > s);
        }
        // The canonical clip query (put on child URIs and in cache keys) reads back the same.
        if opts.has_clip() {
            let again = Options::parse(Some(&opts.clip_query())).expect("clip_query reparses");
            assert_eq!((again.start, again.end), (opts.start, opts.end));
        }
        for bps in [0u64, 64_000, 1_500_000, u64::MAX] {
            let _ = opts.accepts_bitrate(bps);
        }
    }
});
