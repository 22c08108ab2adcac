//! The ISO-BMFF box scanner every live upload goes through (`cmaf::BoxScanner`), the init
//! facts read from its `moov` (`InitInfo::from_moov`, `cmaf::scan_init`) and the `prft`
//! reader the archive uses (`cmaf::first_prft`).
//!
//! Input: the body of one upload, as an encoder would PUT it. It is fed once whole and once
//! cut into frames of pseudo-random sizes (HTTP chunk boundaries fall anywhere, box headers
//! included); both feeds must report the same events and the same error, which is what the
//! scanner promises.
#![no_main]

use casterpak::cmaf::{self, BoxScanner, InitInfo, ScanError, ScanEvent};
use libfuzzer_sys::fuzz_target;

/// Everything a scan of `body` reports: events, the first error of `feed`, what `finish`
/// said, and the final offset.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<ScanEvent>,
    feed_error: Option<ScanError>,
    finish: Result<(), ScanError>,
    /// `BoxScanner::offset` at the end; only compared without a feed error (a `feed` that
    /// fails stops counting the rest of its frame, so the offset then depends on framing;
    /// nothing reads it after an error).
    offset: Option<u64>,
}

fn scan<'a>(frames: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut scanner = BoxScanner::new();
    let mut events = Vec::new();
    let mut feed_error = None;
    for frame in frames {
        if let Err(e) = scanner.feed(frame, &mut events) {
            feed_error.get_or_insert(e);
        }
    }
    let finish = scanner.finish(&mut events);
    let offset = feed_error.is_none().then(|| scanner.offset());
    Outcome {
        events,
        feed_error,
        finish,
        offset,
    }
}

/// Frame sizes from a small xorshift generator seeded by the input, mostly small (so box
/// headers are split) with an occasional large one.
fn frames(body: &[u8]) -> Vec<&[u8]> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ body.len() as u64;
    for &b in body.iter().rev().take(8) {
        seed = seed.rotate_left(8) ^ u64::from(b);
    }
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = match seed % 8 {
            0 => 1,
            1..=5 => 1 + (seed >> 8) as usize % 24,
            _ => 1 + (seed >> 8) as usize % 4096,
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

fuzz_target!(|body: &[u8]| {
    let whole = scan(std::iter::once(body));
    let split = scan(frames(body).into_iter());
    assert_eq!(whole, split, "scan depends on how the body is framed");
    if let Some(offset) = whole.offset {
        assert_eq!(offset, body.len() as u64);
    }

    for event in &whole.events {
        match event {
            ScanEvent::Moov(moov) => {
                if let Ok(info) = InitInfo::from_moov(moov) {
                    let _ = info.kind();
                    for t in &info.tracks {
                        assert!(info.track(t.track_id).is_some());
                    }
                }
            }
            ScanEvent::Chunk(chunk) => {
                assert!(
                    chunk.end() <= body.len() as u64,
                    "chunk beyond the body: {chunk:?}"
                );
            }
        }
    }
    let _ = cmaf::scan_init(body);
    let _ = cmaf::looks_like_isobmff(body);
    let _ = cmaf::first_prft(body);
});
