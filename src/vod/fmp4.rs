//! Our CMAF fragmenter: a CMAF header per track and one CMAF fragment per planned segment,
//! straight from the flat sample index (no re-parsing of the source's boxes per request).
//!
//! ```text
//! init_segment(track)            ftyp (iso6, cmfc) + moov: mvhd, trak (track_ID 1, no
//!                                sample tables, no edit list), mvex/trex
//!                                (ISO/IEC 23000-19 §7.3.2.1, ISO/IEC 14496-12 §8.8.1)
//! fragment_into(track, samples)  styp (msdh, cmfs) + moof: mfhd, traf: tfhd
//!                                (default-base-is-moof), tfdt v1, trun v1 (duration, size,
//!                                flags, signed composition offset) + mdat
//!                                (ISO/IEC 14496-12 §8.8.4-§8.8.12, §8.1.1)
//! ```
//!
//! Times. Every time here is in the track's timescale ticks. The edit list is applied to
//! the decode times instead of being copied (CMAF headers carry no sample tables, and an
//! `elst` is read differently by every player): the output decode time of sample `i` is
//! `dts(i) + pt_shift - origin + TIME_OFFSET_SECS x timescale`, composition offsets are
//! copied, so its presentation time is `pt(i) - origin + offset`. Presentation time 0 of
//! the source (after its edit list) is therefore [`TIME_OFFSET_SECS`] seconds in every
//! track, whatever its timescale: the same instant the TS muxer uses
//! ([`super::segment::GLOBAL_OFFSET`] is 10 s too), which DASH states with
//! `presentationTimeOffset` and HLS players take from the first segment. The offset leaves
//! room for B-frame decode delay and AAC priming (an audio frame at presentation -1024 ticks
//! is written at offset - 1024, never below 0).
//!
//! The segment boundaries are the [`Plan`]'s, so segment N of the TS, the fMP4 HLS and the
//! DASH output of a rendition covers the same samples; the HLS fMP4 and DASH outputs share
//! the very same bytes.

use std::ops::Range;

use mp4_atom::{Encode, FourCC, Ftyp, Moov, Mvex, Mvhd, Stco, Trex};

use super::index::{Track, TrackKind};
use super::segment::{MuxError, Plan, SampleData};

/// Presentation time 0 of the source is this many seconds in every output track.
pub const TIME_OFFSET_SECS: i64 = 10;
/// `sample_flags` of a sync sample: sample_depends_on = 2 (ISO/IEC 14496-12 §8.8.3.1).
const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: sample_depends_on = 1, sample_is_non_sync_sample.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

pub use super::index::Media;

/// Ticks of [`TIME_OFFSET_SECS`] in `timescale`.
pub fn offset_ticks(timescale: u32) -> i64 {
    TIME_OFFSET_SECS * i64::from(timescale)
}

/// A 90 kHz plan origin in `timescale` ticks, rounded up (exact for the reference track's
/// own keyframe when `timescale` <= 90 000, as the origin was floored from it).
pub fn origin_ticks(origin_90k: i64, timescale: u32) -> i64 {
    (i128::from(origin_90k) * i128::from(timescale))
        .div_euclid(90_000)
        .saturating_add(i128::from(
            (i128::from(origin_90k) * i128::from(timescale)).rem_euclid(90_000) != 0,
        ))
        .clamp(-(1 << 60), 1 << 60) as i64
}

/// Duration of sample `i` in ticks: the next sample's decode time minus this one's, the
/// last `stts` delta for the last sample.
pub fn sample_duration(t: &Track, i: usize) -> u32 {
    match t.samples.get(i + 1) {
        Some(next) => u32::try_from(next.dts.saturating_sub(t.samples[i].dts)).unwrap_or(u32::MAX),
        None => t.last_duration,
    }
}

/// Samples of track `media` in segment `j` of `plan`.
pub fn segment_samples(plan: &Plan, media: Media, j: usize) -> Range<usize> {
    plan.segments
        .get(j)
        .and_then(|s| match media {
            Media::Video => Some(s.video.clone()),
            Media::Audio => Some(s.audio.clone()),
            Media::AltAudio(k) => s.alternates.get(usize::from(k).checked_sub(1)?).cloned(),
        })
        .unwrap_or(0..0)
}

/// One segment of a track's timeline, in the track's timescale ticks (output times, the
/// offset included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineEntry {
    /// 1-based segment number (the plan's).
    pub number: u32,
    /// Earliest presentation time of the segment (DASH `S@t`).
    pub start: i64,
    /// Duration (DASH `S@d`; EXTINF after conversion to seconds).
    pub duration: i64,
    /// Size of the fragment in bytes (for bandwidth figures).
    pub bytes: u64,
}

/// The timeline of track `t` under `plan`: one entry per segment that has samples of the
/// track (a track may end before the other). Starts are the earliest presentation time of
/// each segment's samples (the first one is never before presentation time 0 of the
/// window, so AAC priming is not counted); each duration runs to the next start, the last
/// to the track's presentation end (edit list and clip applied).
pub fn timeline(t: &Track, plan: &Plan, media: Media) -> Vec<TimelineEntry> {
    let origin = origin_ticks(plan.origin, t.timescale);
    let offset = offset_ticks(t.timescale);
    let mut out: Vec<TimelineEntry> = Vec::with_capacity(plan.segments.len());
    let mut end = i64::MIN;
    for j in 0..plan.segments.len() {
        let r = segment_samples(plan, media, j);
        if r.is_empty() || r.end > t.samples.len() {
            continue;
        }
        let mut start = i64::MAX;
        let mut bytes = 24 + 8 + 88u64; // styp, mdat header, moof without the samples
        for i in r.clone() {
            let pt = t.pt(i);
            start = start.min(pt);
            end = end.max(pt.saturating_add(i64::from(sample_duration(t, i))));
            bytes += u64::from(t.samples[i].size) + 16;
        }
        if out.is_empty() {
            start = start.max(origin);
        }
        out.push(TimelineEntry {
            number: j as u32 + 1,
            start: start.saturating_sub(origin).saturating_add(offset),
            duration: 0,
            bytes,
        });
    }
    let mut end = end.min(t.end_pt);
    if let Some(plan_end) = plan.end_90k() {
        end = end.min(origin_ticks(plan_end, t.timescale));
    }
    let end = end.saturating_sub(origin).saturating_add(offset);
    for k in 0..out.len() {
        let next = out.get(k + 1).map(|e| e.start).unwrap_or(end);
        out[k].duration = next.saturating_sub(out[k].start).max(1);
    }
    out
}

/// EXTINF durations in milliseconds of a timeline in `timescale` ticks, rounded on the
/// cumulative timeline so they sum to its duration within a millisecond.
pub fn durations_ms(tl: &[TimelineEntry], timescale: u32) -> Vec<u64> {
    let ts = i128::from(timescale.max(1));
    let ms = |t: i64| (i128::from(t) * 1000 + ts / 2).div_euclid(ts);
    tl.iter()
        .map(|e| {
            (ms(e.start.saturating_add(e.duration)) - ms(e.start)).clamp(0, i128::from(u64::MAX))
                as u64
        })
        .collect()
}

/// The CMAF header of track `t` (`ftyp` + `moov`), its track renumbered 1.
///
/// Errors: the message of `mp4-atom` when the source's sample entry cannot be written back
/// (it decoded, so this means an entry mp4-atom reads but cannot write).
pub fn init_segment(t: &Track) -> Result<Vec<u8>, String> {
    let mut trak = t.header.clone();
    trak.tkhd.track_id = 1;
    trak.tkhd.duration = 0;
    trak.mdia.mdhd.duration = 0;
    trak.mdia.minf.stbl.stco = Some(Stco::default());
    let moov = Moov {
        mvhd: Mvhd {
            duration: 0,
            next_track_id: 2,
            ..t.mvhd.clone()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id: 1,
                default_sample_description_index: 1,
                ..Default::default()
            }],
        }),
        trak: vec![trak],
        ..Default::default()
    };
    let ftyp = Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: vec![
            FourCC::new(b"iso6"),
            FourCC::new(b"cmfc"),
            FourCC::new(b"mp41"),
        ],
    };
    let mut out = Vec::with_capacity(1024);
    ftyp.encode(&mut out).map_err(|e| e.to_string())?;
    moov.encode(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Size in bytes of the fragment [`fragment_into`] writes for `samples` of `t`.
pub fn fragment_len(t: &Track, samples: &Range<usize>) -> u64 {
    let data: u64 = t.samples[samples.clone()]
        .iter()
        .map(|s| u64::from(s.size))
        .sum();
    24 + moof_len(samples.len()) as u64 + 8 + data
}

fn moof_len(n: usize) -> usize {
    // moof(8) + mfhd(16) + traf(8) + tfhd(16) + tfdt(20) + trun(20 + 16 n)
    8 + 16 + 8 + 16 + 20 + 20 + 16 * n
}

/// Appends one CMAF fragment of `samples` of track `t` to `out`: `styp`, `moof` with
/// sequence number `sequence`, `mdat` with the sample bytes from `data`. `origin_90k` is
/// the plan's origin (90 kHz ticks).
///
/// Errors: [`MuxError`] naming the sample whose bytes were not read, or a fragment whose
/// `mdat` would not fit a 32-bit box size.
pub fn fragment_into(
    t: &Track,
    samples: Range<usize>,
    sequence: u32,
    origin_90k: i64,
    data: &SampleData<'_>,
    out: &mut Vec<u8>,
) -> Result<(), MuxError> {
    let err = |i: usize, reason: String| MuxError {
        track_id: t.track_id,
        sample: i,
        offset: t.samples.get(i).map(|s| s.offset).unwrap_or(0),
        reason,
    };
    if samples.is_empty() || samples.end > t.samples.len() {
        return Err(err(samples.start, "no samples in this segment".into()));
    }
    let n = samples.len();
    let payload: u64 = t.samples[samples.clone()]
        .iter()
        .map(|s| u64::from(s.size))
        .sum();
    let mdat_size = u32::try_from(payload + 8).map_err(|_| {
        err(
            samples.start,
            format!("{payload} bytes of samples in one fragment"),
        )
    })?;
    let trun_len = 20 + 16 * n;
    let traf_len = 8 + 16 + 20 + trun_len;
    let moof_len = moof_len(n);
    let origin = origin_ticks(origin_90k, t.timescale);
    let base = t
        .shifted_dts(samples.start)
        .saturating_sub(origin)
        .saturating_add(offset_ticks(t.timescale))
        .max(0) as u64;
    out.reserve(24 + moof_len + 8 + payload as usize);

    // styp: ISO/IEC 23000-19 §7.3.3.2 (cmfs), DASH msdh.
    put_box_header(out, 24, b"styp");
    out.extend_from_slice(b"msdh");
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(b"msdh");
    out.extend_from_slice(b"cmfs");

    put_box_header(out, moof_len as u32, b"moof");
    put_box_header(out, 16, b"mfhd");
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    put_box_header(out, traf_len as u32, b"traf");
    // tfhd: version 0, flags 0x020000 default-base-is-moof, track_ID 1.
    put_box_header(out, 16, b"tfhd");
    out.extend_from_slice(&0x0002_0000u32.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    // tfdt: version 1, 64-bit baseMediaDecodeTime.
    put_box_header(out, 20, b"tfdt");
    out.extend_from_slice(&0x0100_0000u32.to_be_bytes());
    out.extend_from_slice(&base.to_be_bytes());
    // trun: version 1 (signed composition offsets), data-offset, duration, size, flags,
    // composition offset present.
    put_box_header(out, trun_len as u32, b"trun");
    out.extend_from_slice(&0x0100_0F01u32.to_be_bytes());
    out.extend_from_slice(&(n as u32).to_be_bytes());
    let data_offset = (moof_len + 8) as i32;
    out.extend_from_slice(&data_offset.to_be_bytes());
    for i in samples.clone() {
        let s = &t.samples[i];
        out.extend_from_slice(&sample_duration(t, i).to_be_bytes());
        out.extend_from_slice(&s.size.to_be_bytes());
        let flags = if t.kind == TrackKind::Audio || s.sync {
            FLAGS_SYNC
        } else {
            FLAGS_NON_SYNC
        };
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&s.cto.to_be_bytes());
    }
    put_box_header(out, mdat_size, b"mdat");
    for i in samples {
        let s = &t.samples[i];
        let bytes = data
            .get(s.offset, s.size)
            .ok_or_else(|| err(i, "sample bytes were not read".into()))?;
        out.extend_from_slice(bytes);
    }
    Ok(())
}

fn put_box_header(out: &mut Vec<u8>, size: u32, kind: &[u8; 4]) {
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
}
