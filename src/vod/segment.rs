//! The segmenter and the per-segment packager: from a [`MovieIndex`] to segment plans,
//! media playlist durations and MPEG-TS bytes.
//!
//! Timeline rules (see `vod-packaging.md`, checklist items 3, 9 and 10):
//!
//! - Every time here is in 90 kHz ticks unless named `*_ticks`. Track ticks convert with
//!   exact integer maths, `floor(t * 90000 / timescale)`, from cumulative track time.
//! - Presentation time 0 is the first displayed frame after the edit list; the output PTS
//!   is `presentation - origin + GLOBAL_OFFSET` for every rendition, where `origin` is 0
//!   unless a clip start moves it to the keyframe at or before `start=`.
//! - The first segment starts at presentation time `origin` even when its keyframe is
//!   earlier (an edit list that starts mid-GOP): the pre-roll is carried for decoding but
//!   not counted in EXTINF.
//! - Segment boundaries are at the first keyframe (audio-only: first sample) whose PTS is
//!   at or after `origin + k x D`; a GOP longer than D simply skips a k. A tail shorter than
//!   D/4 merges into the previous segment, so there is never a tiny or empty segment.
//! - Audio joins the segment of the video keyframe it follows in decode order (split at the
//!   keyframe's DTS), which is where `ffmpeg -f hls` splits too.

use std::ops::Range;

use super::codec::Codec;
use super::csmil::Variant;
use super::index::{Media, MovieIndex, Sample, Track, TrackKind};
use super::ts::{self, Es, PesUnit, Program};

/// Added to every output timestamp, in 90 kHz ticks (10 s): room for B-frame decode delay,
/// audio priming and the PCR lead, so no timestamp is ever negative.
pub const GLOBAL_OFFSET: i64 = 900_000;
/// Most AAC frames packed in one audio PES.
pub const AAC_FRAMES_PER_PES: usize = 8;

/// Clip window in seconds of presentation time (`start=`, `end=`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clip {
    /// Clip start in seconds.
    pub start: Option<f64>,
    /// Clip end in seconds.
    pub end: Option<f64>,
}

/// One planned segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Presentation start in 90 kHz ticks (before the output offset).
    pub start: i64,
    /// Duration in 90 kHz ticks (next segment start minus this one's; last: track end).
    pub duration: i64,
    /// Video samples (decode order indexes), empty when there is no video.
    pub video: Range<usize>,
    /// Audio samples, empty when there is no audio.
    pub audio: Range<usize>,
    /// Samples of each other audio track ([`MovieIndex::alternates`]), cut at the same
    /// instants as `audio` (empty for the audio-only variant).
    pub alternates: Vec<Range<usize>>,
    /// Estimated size of the TS segment in bytes (for BANDWIDTH).
    pub est_bytes: u64,
}

/// All segments of one variant of one rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Presentation time that maps to [`GLOBAL_OFFSET`], in 90 kHz ticks.
    pub origin: i64,
    /// Whether the variant carries video.
    pub video: bool,
    /// Whether the variant carries audio.
    pub audio: bool,
    /// Segments in order (segment number = position + 1).
    pub segments: Vec<SegmentPlan>,
}

impl Plan {
    /// Peak segment bit rate in bit/s (BANDWIDTH).
    pub fn peak_bps(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.est_bytes.saturating_mul(8 * 90_000) / s.duration.max(9_000) as u64)
            .max()
            .unwrap_or(0)
    }

    /// Average bit rate in bit/s (AVERAGE-BANDWIDTH).
    pub fn average_bps(&self) -> u64 {
        let bytes = self
            .segments
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.est_bytes));
        let dur = self
            .segments
            .iter()
            .fold(0i64, |a, s| a.saturating_add(s.duration));
        bytes.saturating_mul(8 * 90_000) / dur.max(9_000) as u64
    }

    /// Presentation end of the last segment in 90 kHz ticks (before the output offset).
    pub fn end_90k(&self) -> Option<i64> {
        self.segments
            .last()
            .map(|s| s.start.saturating_add(s.duration))
    }

    /// EXTINF durations in milliseconds, rounded on the cumulative timeline (each is the
    /// rounded end minus the rounded start), so their sum is the plan's duration within a
    /// millisecond however many segments there are (per-segment rounding drifted by 30 ms
    /// over 20 minutes of AAC).
    pub fn durations_ms(&self) -> impl Iterator<Item = u64> + '_ {
        let ms = |t: i64| t.saturating_mul(10).saturating_add(450).div_euclid(900);
        let mut at = self.segments.first().map_or(0, |s| s.start);
        self.segments.iter().map(move |s| {
            let from = ms(at);
            at = at.saturating_add(s.duration.max(0));
            ms(at).saturating_sub(from).max(0) as u64
        })
    }
}

/// Converts track ticks to 90 kHz ticks: `floor(t * 90000 / timescale)`, clamped to
/// +-2^60 so sums of a few such values never overflow (hostile tables).
pub fn to_90k(ticks: i64, timescale: u32) -> i64 {
    const LIMIT: i128 = 1 << 60;
    (i128::from(ticks) * 90_000)
        .div_euclid(i128::from(timescale.max(1)))
        .clamp(-LIMIT, LIMIT) as i64
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The variant needs a track the file does not have (`_a` of a video-only file).
    #[error("no {0} track")]
    MissingTrack(&'static str),
    /// The reference track has no sample (or no keyframe) inside the clip window.
    #[error("nothing to play in the requested window")]
    Empty,
}

/// Plans the segments of `variant` with target duration `d` (90 kHz ticks).
pub fn plan(index: &MovieIndex, variant: Variant, d: i64, clip: Clip) -> Result<Plan, PlanError> {
    let d = d.max(90_000);
    let (reference, other) = match variant {
        Variant::Av => match (&index.video, &index.audio) {
            (Some(v), a) => (v, a.as_ref()),
            (None, Some(a)) => (a, None),
            (None, None) => return Err(PlanError::MissingTrack("audio or video")),
        },
        Variant::Audio => (
            index
                .audio
                .as_ref()
                .ok_or(PlanError::MissingTrack("audio"))?,
            None,
        ),
    };
    let r = reference;
    let ts_r = r.timescale;
    let pt90 = |i: usize| to_90k(r.pt(i), ts_r);
    let is_cand = |i: usize| r.kind == TrackKind::Audio || r.samples[i].sync;
    let n = r.samples.len();
    let clip_start = clip.start.map(|s| (s * 90_000.0).round() as i64);
    let clip_end = clip.end.map(|s| (s * 90_000.0).round() as i64);

    // First boundary and origin.
    let mut first = None;
    for i in (0..n).filter(|&i| is_cand(i)) {
        match clip_start {
            None => {
                first = Some(i);
                break;
            }
            Some(s) => {
                if pt90(i) <= s || first.is_none() {
                    first = Some(i);
                }
                if pt90(i) >= s {
                    break;
                }
            }
        }
    }
    let first = first.ok_or(PlanError::Empty)?;
    if clip_start.is_some_and(|s| s >= to_90k(r.end_pt, ts_r)) {
        return Err(PlanError::Empty);
    }
    let origin = if clip_start.is_some() { pt90(first) } else { 0 };
    if let Some(e) = clip_end {
        if pt90(first) >= e {
            return Err(PlanError::Empty);
        }
    }

    // Boundaries (sample indexes of the reference track) and the end.
    let mut bounds = vec![first];
    let mut end_index = n;
    let mut end_time = to_90k(r.end_pt, ts_r);
    let mut k: i64 = 1;
    for i in (first + 1..n).filter(|&i| is_cand(i)) {
        let t = pt90(i);
        if let Some(e) = clip_end {
            if t >= e {
                end_index = i;
                end_time = t;
                break;
            }
        }
        if t >= origin.saturating_add(k.saturating_mul(d))
            && t > pt90(*bounds.last().unwrap_or(&first))
        {
            bounds.push(i);
            k = (t - origin).div_euclid(d) + 1;
        }
    }
    let start_of = |b: usize| pt90(b);
    // Tail merge.
    if bounds.len() >= 2 {
        let last = *bounds.last().unwrap_or(&first);
        if end_time - start_of(last) < d / 4 {
            bounds.pop();
        }
    }

    // The other track (audio under video): split at the video boundary's DTS.
    let other_cut = |j: usize| -> usize {
        // Audio index of the first sample at or after video boundary j's DTS.
        let Some(a) = other else { return 0 };
        let t = to_90k(r.shifted_dts(bounds[j]), ts_r);
        first_at_or_after(a, t)
    };
    let (a_start, a_end) = match other {
        None => (0, 0),
        Some(a) => {
            let start = if clip_start.is_some() {
                other_cut(0)
            } else {
                0
            };
            let end = if end_index < n {
                first_at_or_after(a, to_90k(r.shifted_dts(end_index), ts_r))
            } else {
                a.samples.len()
            };
            (start, end.max(start))
        }
    };

    let mut segments = Vec::with_capacity(bounds.len());
    for j in 0..bounds.len() {
        let v0 = bounds[j];
        let v1 = bounds.get(j + 1).copied().unwrap_or(end_index);
        // The first segment counts from presentation time 0 (or the clip's origin): the
        // pre-roll an edit list skips (a cut that starts after its keyframe) is decoded
        // but not presented, so it is not in the playlist's duration.
        let start = if j == 0 {
            start_of(v0).max(origin)
        } else {
            start_of(v0)
        };
        let stop = if j + 1 < bounds.len() {
            start_of(v1)
        } else {
            end_time
        };
        let audio = match other {
            None => 0..0,
            Some(_) => {
                let s = if j == 0 {
                    a_start
                } else {
                    other_cut(j).clamp(a_start, a_end)
                };
                let e = if j + 1 < bounds.len() {
                    other_cut(j + 1).clamp(s, a_end)
                } else {
                    a_end
                };
                s..e
            }
        };
        let (video, audio) = if r.kind == TrackKind::Video {
            (v0..v1, audio)
        } else {
            (0..0, v0..v1)
        };
        // Other audio tracks: cut at the reference boundaries' decode times, like `audio`.
        let alternates = match variant {
            Variant::Audio => Vec::new(),
            Variant::Av => index
                .alternates
                .iter()
                .map(|a| {
                    let cut = |b: usize| first_at_or_after(a, to_90k(r.shifted_dts(b), ts_r));
                    let s = if j == 0 && clip_start.is_none() {
                        0
                    } else {
                        cut(bounds[j])
                    };
                    let e = if j + 1 < bounds.len() {
                        cut(bounds[j + 1])
                    } else if end_index < n {
                        cut(end_index)
                    } else {
                        a.samples.len()
                    };
                    s..e.max(s)
                })
                .collect(),
        };
        let est_bytes = estimate_bytes(index, &video, &audio);
        segments.push(SegmentPlan {
            start,
            duration: (stop - start).max(0),
            video,
            audio,
            alternates,
            est_bytes,
        });
    }
    let has_video = r.kind == TrackKind::Video;
    let has_audio = r.kind == TrackKind::Audio || other.is_some();
    Ok(Plan {
        origin,
        video: has_video,
        audio: has_audio,
        segments,
    })
}

/// Index of the first sample of `a` whose presentation time (90 kHz) is at or after `t`.
fn first_at_or_after(a: &Track, t: i64) -> usize {
    a.samples
        .partition_point(|s| to_90k(s.dts as i64 + i64::from(s.cto) + a.pt_shift, a.timescale) < t)
}

/// Size of the TS segment in bytes, computed with the muxer's own packet arithmetic from
/// the sample sizes: exact when samples carry 4-byte NAL lengths and no in-band AUD or
/// parameter sets (then the Annex B form is the sample + AUD + parameter sets on
/// keyframes), an over-estimate otherwise, which is the safe side for BANDWIDTH.
fn estimate_bytes(index: &MovieIndex, video: &Range<usize>, audio: &Range<usize>) -> u64 {
    let mut shapes = Vec::with_capacity(video.len() + audio.len() / 4 + 1);
    let mut program = Program {
        video: None,
        audio: None,
    };
    if let Some(v) = index.video.as_ref().filter(|_| !video.is_empty()) {
        program.video = Some(stream_type(v));
        for s in &v.samples[video.clone()] {
            let len = annexb_len(v, s);
            shapes.push(ts::PesShape {
                es: Es::Video,
                len: ts::pes_header_len(s.cto != 0) + len,
                keyframe: s.sync,
            });
        }
    }
    if let Some(a) = index.audio.as_ref().filter(|_| !audio.is_empty()) {
        program.audio = Some(stream_type(a));
        let mut i = audio.start;
        let mut first = true;
        while i < audio.end {
            let mut len = 0usize;
            let mut n = 0;
            while i < audio.end && n < AAC_FRAMES_PER_PES {
                let size = a.samples[i].size as usize;
                if len > 0 && len + size + 7 > 0xFFFF - 32 {
                    break;
                }
                len += size + 7;
                n += 1;
                i += 1;
            }
            shapes.push(ts::PesShape {
                es: Es::Audio,
                len: ts::pes_header_len(false) + len,
                keyframe: program.video.is_none() && first,
            });
            first = false;
        }
    }
    ts::segment_size(program, &shapes) as u64
}

/// Size in bytes of video sample `i` alone as MPEG-TS (PAT, PMT and its PES, as
/// [`mux_track_into`] writes it for an I-frame resource), from the sample's size like
/// [`SegmentPlan::est_bytes`]: exact for 4-byte NAL lengths without in-band AUD or
/// parameter sets, an over-estimate otherwise (for the I-frame playlist's BANDWIDTH).
pub fn keyframe_bytes(index: &MovieIndex, i: usize) -> u64 {
    estimate_bytes(index, &(i..i + 1), &(0..0))
}

/// Annex B length in bytes of video sample `s` as the muxer writes it (an AUD, parameter
/// sets before a sync sample, start codes for the NAL lengths), from its size alone: exact
/// for 4-byte NAL lengths without in-band AUD or parameter sets, else an over-estimate
/// (one NAL per 64 bytes assumed for shorter lengths).
fn annexb_len(v: &Track, s: &Sample) -> usize {
    let (params, aud, ls): (usize, usize, usize) = match &v.codec {
        Codec::H264 {
            params,
            length_size,
        } => (
            params.iter().map(|p| p.len() + 4).sum(),
            6,
            usize::from(*length_size),
        ),
        Codec::Hevc {
            params,
            length_size,
        } => (
            params.iter().map(|p| p.len() + 4).sum(),
            7,
            usize::from(*length_size),
        ),
        Codec::Aac { .. } => (0, 0, 4),
    };
    let size = s.size as usize;
    let grow = if ls < 4 { size / 64 * (4 - ls) + 4 } else { 0 };
    size + aud + if s.sync { params } else { 0 } + grow
}

/// The sample bytes a segment needs, read by the caller: sorted, coalesced byte ranges.
pub fn byte_ranges(index: &MovieIndex, seg: &SegmentPlan, max_gap: u64) -> Vec<Range<u64>> {
    let mut r: Vec<Range<u64>> = Vec::new();
    let v = index
        .video
        .as_ref()
        .map(|t| &t.samples[seg.video.clone()])
        .unwrap_or(&[]);
    let a = index
        .audio
        .as_ref()
        .map(|t| &t.samples[seg.audio.clone()])
        .unwrap_or(&[]);
    let alt = index
        .alternates
        .iter()
        .zip(&seg.alternates)
        .flat_map(|(t, range)| t.samples.get(range.clone()).unwrap_or(&[]));
    for s in v.iter().chain(a).chain(alt) {
        r.push(s.offset..s.offset + u64::from(s.size));
    }
    r.sort_unstable_by_key(|x| x.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(8);
    for x in r {
        match out.last_mut() {
            Some(last) if x.start <= last.end.saturating_add(max_gap) => {
                last.end = last.end.max(x.end)
            }
            _ => out.push(x),
        }
    }
    out
}

/// Sample data read for one segment: each entry is a file range start and its bytes.
#[derive(Debug, Clone, Default)]
pub struct SampleData<'a> {
    /// (file offset, bytes), sorted by offset, non-overlapping.
    pub chunks: Vec<(u64, &'a [u8])>,
}

impl SampleData<'_> {
    /// The bytes of `[offset, offset + size)`, if they were read.
    pub fn get(&self, offset: u64, size: u32) -> Option<&[u8]> {
        let i = self
            .chunks
            .partition_point(|(o, _)| *o <= offset)
            .checked_sub(1)?;
        let (o, b) = &self.chunks[i];
        let start = usize::try_from(offset - o).ok()?;
        b.get(start..start.checked_add(size as usize)?)
    }
}

/// Why a segment could not be muxed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("track {track_id} sample {sample} at offset {offset}: {reason}")]
pub struct MuxError {
    /// `tkhd.track_id`.
    pub track_id: u32,
    /// Sample index in decode order.
    pub sample: usize,
    /// File offset of the sample.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

fn stream_type(t: &Track) -> u8 {
    match t.codec {
        Codec::H264 { .. } => 0x1B,
        Codec::Hevc { .. } => 0x24,
        Codec::Aac { .. } => 0x0F,
    }
}

fn out_ts(t90: i64, origin: i64) -> u64 {
    t90.saturating_sub(origin)
        .saturating_add(GLOBAL_OFFSET)
        .max(ts::PCR_LEAD as i64) as u64
}

/// Muxes one planned segment (`number` is 1-based) into MPEG-TS bytes.
///
/// Errors: [`MuxError`] naming the sample whose bytes are missing or malformed.
pub fn mux(
    index: &MovieIndex,
    plan: &Plan,
    number: u32,
    seg: &SegmentPlan,
    data: &SampleData<'_>,
) -> Result<Vec<u8>, MuxError> {
    let mut out = Vec::with_capacity(seg.est_bytes as usize);
    mux_into(index, plan, number, seg, data, &mut out)?;
    Ok(out)
}

/// [`mux`] appending to `out` (a recycled buffer).
pub fn mux_into(
    index: &MovieIndex,
    plan: &Plan,
    number: u32,
    seg: &SegmentPlan,
    data: &SampleData<'_>,
    out: &mut Vec<u8>,
) -> Result<(), MuxError> {
    let video = index.video.as_ref().filter(|_| plan.video);
    let audio = index.audio.as_ref().filter(|_| plan.audio);
    mux_tracks(video, audio, plan.origin, number, seg, data, out)
}

/// Segment `number` of one track of an audio + video `plan` alone, as MPEG-TS: the video
/// (`Media::Video`), the first audio track, or the `k`-th other audio track
/// (`MovieIndex::alternates[k - 1]`, its samples cut at the same instants as the first
/// audio track, `SegmentPlan::alternates`).
///
/// Errors: [`MuxError`] for a missing track or sample bytes.
pub fn mux_track_into(
    index: &MovieIndex,
    plan: &Plan,
    number: u32,
    media: Media,
    seg: &SegmentPlan,
    data: &SampleData<'_>,
    out: &mut Vec<u8>,
) -> Result<(), MuxError> {
    let missing = || MuxError {
        track_id: 0,
        sample: 0,
        offset: 0,
        reason: format!("no {} track", media.suffix()),
    };
    let alone = |video: Range<usize>, audio: Range<usize>| SegmentPlan {
        start: seg.start,
        duration: seg.duration,
        video,
        audio,
        alternates: Vec::new(),
        est_bytes: seg.est_bytes,
    };
    match media {
        Media::Video => {
            let v = index.video.as_ref().ok_or_else(missing)?;
            let s = alone(seg.video.clone(), 0..0);
            mux_tracks(Some(v), None, plan.origin, number, &s, data, out)
        }
        Media::Audio => {
            let a = index.audio.as_ref().ok_or_else(missing)?;
            let s = alone(0..0, seg.audio.clone());
            mux_tracks(None, Some(a), plan.origin, number, &s, data, out)
        }
        Media::AltAudio(k) => {
            let slot = usize::from(k).checked_sub(1);
            let (Some(a), Some(range)) = (
                slot.and_then(|j| index.alternates.get(j)),
                slot.and_then(|j| seg.alternates.get(j)),
            ) else {
                return Err(missing());
            };
            let s = alone(0..0, range.clone());
            mux_tracks(None, Some(a), plan.origin, number, &s, data, out)
        }
    }
}

/// Muxes `seg.video` of `video` and `seg.audio` of `audio` (sample index ranges of those
/// tracks) into one MPEG-TS segment; times are shifted by `origin` (90 kHz presentation
/// time) and [`GLOBAL_OFFSET`].
fn mux_tracks(
    video: Option<&Track>,
    audio: Option<&Track>,
    origin: i64,
    number: u32,
    seg: &SegmentPlan,
    data: &SampleData<'_>,
    out: &mut Vec<u8>,
) -> Result<(), MuxError> {
    let program = Program {
        video: video.map(stream_type),
        audio: audio.map(stream_type),
    };
    let fetch = |t: &Track, i: usize| -> Result<&[u8], MuxError> {
        let s = &t.samples[i];
        data.get(s.offset, s.size).ok_or_else(|| MuxError {
            track_id: t.track_id,
            sample: i,
            offset: s.offset,
            reason: "sample bytes were not read".into(),
        })
    };
    let mut vunits = Vec::new();
    if let Some(v) = video {
        vunits.reserve(seg.video.len());
        for i in seg.video.clone() {
            let s = &v.samples[i];
            let mut pieces = Vec::with_capacity(16);
            let len = ts::annexb::to_annexb_pieces(&v.codec, fetch(v, i)?, s.sync, &mut pieces)
                .map_err(|reason| MuxError {
                    track_id: v.track_id,
                    sample: i,
                    offset: s.offset,
                    reason,
                })?;
            vunits.push(PesUnit {
                es: Es::Video,
                pts: out_ts(to_90k(v.pt(i), v.timescale), origin),
                dts: out_ts(to_90k(v.shifted_dts(i), v.timescale), origin),
                keyframe: s.sync,
                pieces,
                len,
            });
        }
    }
    // ADTS headers first (the PES pieces borrow them).
    let mut adts = Vec::new();
    if let Some(a) = audio {
        let Codec::Aac {
            object_type,
            freq_index,
            channels,
        } = a.codec
        else {
            return Err(MuxError {
                track_id: a.track_id,
                sample: seg.audio.start,
                offset: 0,
                reason: "audio codec is not AAC".into(),
            });
        };
        adts.reserve(seg.audio.len());
        for i in seg.audio.clone() {
            let s = &a.samples[i];
            adts.push(
                ts::adts::header(object_type, freq_index, channels, s.size as usize).map_err(
                    |reason| MuxError {
                        track_id: a.track_id,
                        sample: i,
                        offset: s.offset,
                        reason,
                    },
                )?,
            );
        }
    }
    let mut aunits = Vec::new();
    if let Some(a) = audio {
        let mut i = seg.audio.start;
        while i < seg.audio.end {
            let pts = out_ts(to_90k(a.pt(i), a.timescale), origin);
            let mut pieces = Vec::with_capacity(2 * AAC_FRAMES_PER_PES);
            let mut len = 0usize;
            let mut n = 0;
            while i < seg.audio.end && n < AAC_FRAMES_PER_PES {
                let s = &a.samples[i];
                if len > 0 && len + s.size as usize + 7 > 0xFFFF - 32 {
                    break;
                }
                let frame = fetch(a, i)?;
                pieces.push(&adts[i - seg.audio.start][..]);
                pieces.push(frame);
                len += 7 + frame.len();
                n += 1;
                i += 1;
            }
            aunits.push(PesUnit {
                es: Es::Audio,
                pts,
                dts: pts,
                keyframe: video.is_none() && aunits.is_empty(),
                pieces,
                len,
            });
        }
    }
    // Merge by DTS (video first on ties), the segment's first video access unit (its
    // keyframe) before everything, so an I-frame byte range is PAT + PMT + that PES.
    let mut units = Vec::with_capacity(vunits.len() + aunits.len());
    let mut ai = aunits.into_iter().peekable();
    let mut vi = vunits.into_iter();
    units.extend(vi.next());
    for v in vi {
        while let Some(a) = ai.peek() {
            if a.dts < v.dts {
                units.extend(ai.next());
            } else {
                break;
            }
        }
        units.push(v);
    }
    units.extend(ai);
    ts::mux_segment_into(program, &units, number, out);
    Ok(())
}
