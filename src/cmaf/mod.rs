//! ISO-BMFF / CMAF handling of live uploads (ISO/IEC 14496-12, ISO/IEC 23000-19).
//!
//! [`scan`] finds CMAF chunk boundaries and timing in a growing upload; [`init`] reads the
//! track facts of an init segment. Pure code: bytes in, facts out.

pub mod init;
pub mod mux;
pub mod scan;

pub use init::{InitError, InitInfo, TrackInfo, TrackKind};
pub use scan::{BoxScanner, CmafChunk, ScanError, ScanEvent};

/// Scans a whole body for a `moov` box: `None` when it has none (a media segment or a
/// non-ISO-BMFF file), else the init facts or why they could not be read.
pub fn scan_init(body: &[u8]) -> Option<Result<InitInfo, InitError>> {
    if !looks_like_isobmff(body) {
        return None;
    }
    let mut scanner = BoxScanner::new();
    let mut events = Vec::new();
    scanner.feed(body, &mut events).ok()?;
    events.into_iter().find_map(|e| match e {
        ScanEvent::Moov(moov) => Some(InitInfo::from_moov(&moov)),
        ScanEvent::Chunk(_) => None,
    })
}

/// Whether the first 8 bytes are a box header of a type that starts ISO-BMFF files or
/// segments (`ftyp`, `styp`, `moov`, `moof`, `prft`, `emsg`, `sidx`, `free`, `mdat`).
/// Uploads that fail this (MPD, m3u8, TS) are stored as opaque objects.
pub fn looks_like_isobmff(head: &[u8]) -> bool {
    if head.len() < 8 {
        return false;
    }
    matches!(
        &head[4..8],
        b"ftyp" | b"styp" | b"moov" | b"moof" | b"prft" | b"emsg" | b"sidx" | b"free" | b"mdat"
    )
}
