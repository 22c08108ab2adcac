//! On-demand packaging of an MP4 file: finding the top-level `moov` (as `Vod::read_moov`
//! does), the sample index built from it (`vod::index::index_moov`, or with its top-level
//! `moof` boxes `vod::index::index_fragmented` for a fragmented file), the segment plans
//! (`vod::segment::plan`), the MPEG-TS muxing of planned segments from the file's own
//! bytes (`segment::byte_ranges`, `segment::mux`: H.264/HEVC Annex B and AAC ADTS) and the
//! CMAF output of the same segments (`vod::fmp4`: headers, timelines, fragments).
//!
//! Input: a whole MP4 file (the file size the index checks sample ranges against is the
//! input's length, so every indexed sample can be read and muxed).
#![no_main]

use casterpak::vod::csmil::Variant;
use casterpak::vod::fmp4::{self, Media};
use casterpak::vod::index::{self, MAX_MOOV_BYTES};
use casterpak::vod::segment::{self, Clip, SampleData};
use libfuzzer_sys::fuzz_target;

/// Target segment duration: the default 6 s in 90 kHz ticks.
const SEGMENT_90K: i64 = 6 * 90_000;
/// Ranges closer than this are read together (as the server does).
const READ_GAP: u64 = 64 * 1024;

/// The top-level `moov` box, walked like `Vod::read_moov` (header checks, size 0 = to the
/// end, stop at `moof`).
fn find_moov(file: &[u8]) -> Option<&[u8]> {
    let size_all = file.len() as u64;
    let mut pos = 0u64;
    for _ in 0..100_000 {
        if pos >= size_all {
            return None;
        }
        let (kind, hlen, size) = index::box_header(&file[pos as usize..])?;
        let size = size.unwrap_or(size_all - pos);
        if size < hlen || pos.checked_add(size).is_none_or(|e| e > size_all) {
            return None;
        }
        match &kind {
            b"moov" => {
                if size > MAX_MOOV_BYTES {
                    return None;
                }
                return Some(&file[pos as usize..(pos + size) as usize]);
            }
            b"moof" => return None,
            _ => pos += size,
        }
    }
    None
}

/// Every top-level `moof` (as `Vod::read_moofs`: whole boxes only, at most 4 MiB each).
fn moofs(file: &[u8]) -> Vec<index::MoofBox> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some((kind, hlen, size)) = file.get(pos..).and_then(index::box_header) {
        let size = size.unwrap_or((file.len() - pos) as u64);
        let Some(end) = usize::try_from(size)
            .ok()
            .and_then(|s| pos.checked_add(s))
            .filter(|&e| e <= file.len() && size >= hlen)
        else {
            break;
        };
        if &kind == b"moof" && size <= 4 << 20 {
            out.push((pos as u64, bytes::Bytes::copy_from_slice(&file[pos..end])));
        }
        pos = end;
    }
    out
}

fuzz_target!(|file: &[u8]| {
    let Some(moov) = find_moov(file) else { return };
    let index = if index::has_mvex(moov) {
        index::index_fragmented(moov, &moofs(file), file.len() as u64)
    } else {
        index::index_moov(moov, file.len() as u64)
    };
    let Ok(index) = index else {
        return;
    };
    for t in index.tracks() {
        let _ = fmp4::init_segment(t);
    }
    let _ = index.heap_bytes();
    for track in index.tracks() {
        assert!(!track.codec_string.is_empty());
        for (i, s) in track.samples.iter().enumerate() {
            assert!(
                s.offset + u64::from(s.size) <= file.len() as u64,
                "sample {i} of track {} outside the file",
                track.track_id
            );
        }
        if !track.samples.is_empty() {
            let _ = track.pt(0);
            let _ = track.shifted_dts(track.samples.len() - 1);
        }
    }
    let clips = [
        Clip::default(),
        Clip {
            start: Some(0.5),
            end: Some(2.0),
        },
    ];
    for clip in clips {
        for variant in [Variant::Av, Variant::Audio] {
            let Ok(plan) = segment::plan(&index, variant, SEGMENT_90K, clip) else {
                continue;
            };
            let _ = plan.peak_bps();
            let _ = plan.average_bps();
            let _ = plan.durations_ms().count();
            // The first, second and last segments: enough to reach every muxing path
            // without making big inputs slow.
            let n = plan.segments.len();
            let mut picks = vec![0, 1, n.saturating_sub(1)];
            picks.dedup();
            for i in picks.into_iter().filter(|&i| i < n) {
                let seg = &plan.segments[i];
                let ranges = segment::byte_ranges(&index, seg, READ_GAP);
                let data = SampleData {
                    chunks: ranges
                        .iter()
                        .map(|r| (r.start, &file[r.start as usize..r.end as usize]))
                        .collect(),
                };
                if let Ok(ts) = segment::mux(&index, &plan, i as u32 + 1, seg, &data) {
                    assert_eq!(ts.len() % 188, 0, "TS output is not whole packets");
                }
                if variant == Variant::Av {
                    for (media, t) in [(Media::Video, &index.video), (Media::Audio, &index.audio)] {
                        let Some(t) = t else { continue };
                        let _ = fmp4::timeline(t, &plan, media);
                        let samples = fmp4::segment_samples(&plan, media, i);
                        if samples.is_empty() {
                            continue;
                        }
                        let want = fmp4::fragment_len(t, &samples);
                        let mut out = Vec::new();
                        if fmp4::fragment_into(t, samples, i as u32 + 1, plan.origin, &data, &mut out).is_ok() {
                            assert_eq!(out.len() as u64, want, "fragment size");
                        }
                    }
                }
            }
        }
    }
});
