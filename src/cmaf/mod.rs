//! ISO-BMFF / CMAF handling of live uploads (ISO/IEC 14496-12, ISO/IEC 23000-19).
//!
//! [`scan`] finds CMAF chunk boundaries and timing in a growing upload; [`init`] reads the
//! track facts of an init segment. Pure code: bytes in, facts out.

pub mod guard;
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

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// The wall clock of the first `prft` box of a segment (ISO/IEC 14496-12 §8.16.5,
/// `ProducerReferenceTimeBox`): `(Unix ms of its NTP timestamp, its media_time in
/// timescale ticks)`. `None` without one or when a box header is inconsistent.
pub fn first_prft(segment: &[u8]) -> Option<(i64, u64)> {
    let mut pos = 0usize;
    while pos + 8 <= segment.len() {
        let size32 = u32::from_be_bytes(segment[pos..pos + 4].try_into().ok()?) as u64;
        let kind = &segment[pos + 4..pos + 8];
        let (size, header) = match size32 {
            1 => {
                let b = segment.get(pos + 8..pos + 16)?;
                (u64::from_be_bytes(b.try_into().ok()?), 16u64)
            }
            0 => ((segment.len() - pos) as u64, 8),
            s => (s, 8),
        };
        if size < header || size > (segment.len() - pos) as u64 {
            return None;
        }
        if kind == b"prft" {
            let body = segment.get(pos + header as usize..pos + size as usize)?;
            let version = *body.first()?;
            let ntp = u64::from_be_bytes(body.get(8..16)?.try_into().ok()?);
            let media_time = if version == 0 {
                u32::from_be_bytes(body.get(16..20)?.try_into().ok()?) as u64
            } else {
                u64::from_be_bytes(body.get(16..24)?.try_into().ok()?)
            };
            let secs = (ntp >> 32).checked_sub(NTP_UNIX_OFFSET_SECS)?;
            let ms = secs * 1000 + (((ntp & 0xffff_ffff) * 1000) >> 32);
            return Some((ms as i64, media_time));
        }
        if kind == b"moof" || kind == b"mdat" {
            return None;
        }
        pos += size as usize;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prft_is_read_and_hostile_sizes_are_refused() {
        // styp (16 bytes) then prft v1: ntp = 1970 + 100 s and a half, media_time 9000.
        let mut seg = Vec::new();
        seg.extend_from_slice(&16u32.to_be_bytes());
        seg.extend_from_slice(b"stypcmfs\0\0\0\0");
        seg.extend_from_slice(&32u32.to_be_bytes());
        seg.extend_from_slice(b"prft");
        seg.extend_from_slice(&[1, 0, 0, 0]);
        seg.extend_from_slice(&1u32.to_be_bytes());
        let ntp = ((NTP_UNIX_OFFSET_SECS + 100) << 32) | 0x8000_0000;
        seg.extend_from_slice(&ntp.to_be_bytes());
        seg.extend_from_slice(&9000u64.to_be_bytes());
        assert_eq!(first_prft(&seg), Some((100_500, 9000)));
        // A size beyond the buffer, a size below the header, a truncated prft.
        let mut bad = seg.clone();
        bad[16..20].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(first_prft(&bad), None);
        let mut bad = seg.clone();
        bad[0..4].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(first_prft(&bad), None);
        assert_eq!(first_prft(&seg[..40]), None);
        assert_eq!(first_prft(&[]), None);
    }
}
