//! Low-Latency HLS playlists written from a live stream's CMAF timeline (RFC 8216bis,
//! draft 22; Apple "Enabling Low-Latency HLS").
//!
//! Pure code: a [`Rendition`] (segments = uploaded `.m4s` files, parts = their CMAF chunks as
//! found by the ingest box scanner) and fixed [`Timing`] in, playlist text out; plus the
//! blocking-reload rules ([`check_reload`]) and query parsing ([`Directives::parse`]).
//!
//! ```text
//! segment N   (chunk-stream0-0000N.m4s, one upload)
//!   [styp prft moof mdat][prft moof mdat][prft moof mdat][prft moof mdat]
//!   part N.0             part N.1        part N.2        part N.3
//! MSN = the segment number of the uploaded file name, part index = chunk index in it.
//! ```
//!
//! Parts are addressed by their own URL ([`part_uri`]:
//! `llhls-part_<RepresentationID>_<MSN>_<index>.m4s` beside the playlist), never by byte
//! range: each part URL answers exactly the bytes of one complete CMAF chunk, and a request
//! for the hinted next part is held by the server until the chunk is complete
//! (RFC 8216bis §6.2.5.3, §4.4.5.3 EXT-X-PRELOAD-HINT).

use std::fmt::Write as _;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::ErrorKind;

/// Characters of a representation ID left as they are in URIs.
const URI_ID: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Errors of the LL-HLS layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LlHlsError {
    /// A malformed or contradictory delivery directive (RFC 8216bis §6.2.5.2):
    /// `_HLS_part` without `_HLS_msn`, or a value that is not a decimal integer.
    #[error("bad delivery directive: {0}")]
    BadDirective(String),
    /// `_HLS_msn` more than two past the last segment, or `_HLS_part` beyond the Advance
    /// Part Limit (RFC 8216bis §6.2.5.2).
    #[error("requested MSN {msn} part {part:?} is too far ahead of the playlist (last MSN {last_msn}, last part {last_part:?})")]
    TooFarAhead {
        msn: u64,
        part: Option<u64>,
        last_msn: u64,
        last_part: Option<u64>,
    },
    /// No such stream, rendition or part.
    #[error("{0}")]
    NotFound(String),
    /// The blocking request waited longer than three target durations (RFC 8216bis
    /// §6.2.5.2: "return an error such as 503").
    #[error("the playlist did not reach MSN {msn} part {part:?} within {waited_secs:.1} s")]
    NotReady {
        msn: u64,
        part: Option<u64>,
        waited_secs: f64,
    },
}

impl LlHlsError {
    /// The error class: [`ErrorKind::BadRequest`] (directives, too far ahead),
    /// [`ErrorKind::NotFound`], [`ErrorKind::Unavailable`] (held too long).
    pub fn kind(&self) -> ErrorKind {
        match self {
            LlHlsError::BadDirective(_) | LlHlsError::TooFarAhead { .. } => ErrorKind::BadRequest,
            LlHlsError::NotFound(_) => ErrorKind::NotFound,
            LlHlsError::NotReady { .. } => ErrorKind::Unavailable,
        }
    }
}

/// One complete CMAF chunk (`[styp] [prft] moof mdat`) of a segment, or a part: one or more
/// consecutive chunks grouped by [`group_parts`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Part {
    /// Byte offset of the first chunk in the segment upload.
    pub offset: u64,
    /// Size in bytes, from the first chunk's first byte to the last chunk's last byte.
    pub size: u64,
    /// Duration in seconds (the sample durations over the track timescale).
    pub duration_secs: f64,
    /// The first chunk starts with a sync sample (EXT-X-PART `INDEPENDENT=YES`, §4.4.4.9).
    pub independent: bool,
}

/// The PART-TARGET used when none is configured and the chunks are shorter than this
/// (seconds): parts group chunks up to about this long, so that a player reloads the
/// playlist about five times a second rather than once per frame.
pub const DEFAULT_SHORT_PART_SECS: f64 = 0.2;

/// Seconds a part may exceed PART-TARGET by floating-point rounding of tick durations.
const PART_SLACK_SECS: f64 = 1e-6;

/// Groups consecutive CMAF chunks of one segment into parts of at most `part_target`
/// seconds (RFC 8216bis §4.4.4.9: a part's duration is at most PART-TARGET), never splitting
/// a chunk (a chunk longer than the target is a part of its own).
///
/// A part closes as soon as another chunk as long as its last one would not fit, so a part
/// is listed when its last chunk arrives, not one chunk later. The trailing chunks that do
/// not yet make a closed part are a part only once the segment is `complete` (its upload
/// ended). A part is `independent` when its first chunk is.
pub fn group_parts(chunks: &[Part], part_target: f64, complete: bool) -> Vec<Part> {
    let limit = part_target + PART_SLACK_SECS;
    let mut parts = Vec::new();
    let mut open: Option<Part> = None;
    for c in chunks {
        if let Some(p) = open {
            if p.duration_secs + c.duration_secs > limit {
                parts.push(p);
                open = None;
            }
        }
        let p = match open {
            Some(mut p) => {
                p.size = (c.offset + c.size).saturating_sub(p.offset);
                p.duration_secs += c.duration_secs;
                p
            }
            None => *c,
        };
        if p.duration_secs + c.duration_secs > limit {
            parts.push(p);
            open = None;
        } else {
            open = Some(p);
        }
    }
    if complete {
        parts.extend(open);
    }
    parts
}

/// One media segment of a rendition: an uploaded file, complete or still arriving.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media Sequence Number: the segment number of the uploaded file name.
    pub msn: u64,
    /// The uploaded file name, relative to the playlist (e.g. `chunk-stream0-00005.m4s`).
    pub uri: String,
    /// Media time of the first sample in seconds (`tfdt` of the first chunk over the
    /// timescale); with the MPD's availabilityStartTime this gives PROGRAM-DATE-TIME.
    pub start_secs: f64,
    /// Complete CMAF chunks so far, in order.
    pub chunks: Vec<Part>,
    /// Whole parts so far: the chunks grouped by [`Segment::regroup`]; empty until the
    /// stream's PART-TARGET is fixed.
    pub parts: Vec<Part>,
    /// The upload ended cleanly: the segment may be listed with EXTINF.
    pub complete: bool,
}

impl Segment {
    /// Sum of the chunk durations so far, in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.chunks.iter().map(|p| p.duration_secs).sum()
    }

    /// Recomputes [`Segment::parts`] from the chunks for PART-TARGET `part_target` seconds
    /// (`None` while the timing is not fixed: no parts).
    pub fn regroup(&mut self, part_target: Option<f64>) {
        self.parts =
            part_target.map_or_else(Vec::new, |t| group_parts(&self.chunks, t, self.complete));
    }

    /// Chunks arrived after the last whole part: the next part is in progress.
    fn has_open_part(&self) -> bool {
        let end = |p: &Part| p.offset + p.size;
        self.chunks.last().map(end) != self.parts.last().map(end)
    }
}

/// One rendition (DASH Representation) as a media playlist source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rendition {
    /// The DASH Representation ID.
    pub id: String,
    /// The init segment file name (EXT-X-MAP URI).
    pub init_uri: String,
    /// Segments in ascending MSN order.
    pub segments: Vec<Segment>,
}

/// The last part of a rendition: (MSN, part index).
pub type PartPos = (u64, u64);

impl Rendition {
    /// The MSN of the last complete segment.
    pub fn last_complete_msn(&self) -> Option<u64> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.complete)
            .map(|s| s.msn)
    }

    /// The last part that exists (MSN, index).
    pub fn last_part(&self) -> Option<PartPos> {
        self.segments
            .iter()
            .rev()
            .find(|s| !s.parts.is_empty())
            .map(|s| (s.msn, s.parts.len() as u64 - 1))
    }

    /// The segment with this MSN.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        self.segments
            .binary_search_by_key(&msn, |s| s.msn)
            .ok()
            .map(|i| &self.segments[i])
    }

    /// The largest part count of a complete segment (parts per segment), at least 1.
    fn parts_per_segment(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.complete)
            .map(|s| s.parts.len() as u64)
            .max()
            .unwrap_or(1)
            .max(1)
    }
}

/// `secs` (seconds) rounded up to the millisecond, ignoring float noise under 1 ns.
fn ceil_ms(secs: f64) -> f64 {
    (secs * 1000.0 - 1e-6).ceil() / 1000.0
}

/// Values fixed for the life of a stream: Apple clients fail for good when any of them
/// changes between reloads (MediaMTX #6237).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// EXT-X-TARGETDURATION in whole seconds (§4.4.3.1): every EXTINF rounded to the nearest
    /// integer is at most this.
    pub target_duration: u64,
    /// EXT-X-PART-INF PART-TARGET in seconds (§4.4.3.7), with millisecond precision.
    pub part_target: f64,
    /// The encoder's nominal segment duration in seconds (the MPD's SegmentTemplate
    /// duration): segments end at the first chunk end at or past a multiple of it, which
    /// predicts whether the next part opens a new segment (PRELOAD-HINT).
    pub segment_secs: f64,
    /// EXT-X-SERVER-CONTROL PART-HOLD-BACK in seconds (§4.4.3.8): where a low-latency
    /// client starts behind the last listed part. [`Timing::derive`] gives 3 x PART-TARGET
    /// (Apple's HLS authoring rule); [`Timing::with_part_hold_back`] sets another.
    pub part_hold_back: f64,
}

impl Timing {
    /// Derives the timing from what the ingest has shown so far. PART-TARGET, in seconds
    /// rounded up to the millisecond:
    /// - `part_target_override` when given, but never less than the longest chunk (a chunk
    ///   is never split);
    /// - else, per rendition, the fewest whole chunks that last at least
    ///   [`DEFAULT_SHORT_PART_SECS`] (one chunk when chunks are that long), and the longest of
    ///   these over the renditions: 0.512 s for ffmpeg's AAC chunks beside 0.5 s video ones;
    ///   0.214 s for `-frag_type every_frame` at 30 fps with 48 kHz AAC (ten AAC frames;
    ///   the video parts are six frames, 0.2 s). No part but a segment's last is then shorter
    ///   than 0.2 s, so a player reloads a playlist at most five times a second.
    ///
    /// TARGETDURATION is the longest complete segment rounded to the nearest second, at
    /// least `nominal_segment_secs` rounded up. `None` while no rendition has a complete
    /// segment.
    pub fn derive<'a>(
        renditions: impl IntoIterator<Item = &'a Rendition>,
        nominal_segment_secs: Option<f64>,
        part_target_override: Option<f64>,
    ) -> Option<Timing> {
        let mut longest_chunk = 0.0f64;
        // The longest of the renditions' shortest parts of at least DEFAULT_SHORT_PART_SECS.
        let mut short_part = 0.0f64;
        let mut longest_segment = 0.0f64;
        let mut any_complete = false;
        for r in renditions {
            let mut rendition_chunk = 0.0f64;
            for s in &r.segments {
                for p in &s.chunks {
                    rendition_chunk = rendition_chunk.max(p.duration_secs);
                }
                if s.complete {
                    any_complete = true;
                    longest_segment = longest_segment.max(s.duration_secs());
                }
            }
            if rendition_chunk > 0.0 {
                let n = (DEFAULT_SHORT_PART_SECS / rendition_chunk - 1e-6)
                    .ceil()
                    .max(1.0);
                short_part = short_part.max(n * rendition_chunk);
            }
            longest_chunk = longest_chunk.max(rendition_chunk);
        }
        if !any_complete || longest_chunk <= 0.0 {
            return None;
        }
        let part_target = match part_target_override {
            Some(t) if t > 0.0 => t.max(ceil_ms(longest_chunk)),
            _ => ceil_ms(short_part),
        };
        let nominal = nominal_segment_secs.map_or(1, |n| (n - 1e-6).ceil().max(1.0) as u64);
        let target_duration = (longest_segment.round() as u64).max(nominal).max(1);
        Some(Timing {
            target_duration,
            part_target,
            segment_secs: nominal_segment_secs
                .filter(|n| *n > 0.0)
                .unwrap_or(longest_segment),
            part_hold_back: ceil_ms(3.0 * part_target),
        })
    }

    /// The timing with PART-HOLD-BACK set to `secs` (seconds, rounded up to the
    /// millisecond), but never under 2 x PART-TARGET: RFC 8216bis §4.4.3.8 requires at
    /// least twice the part target (Apple's authoring rules ask for three times, the
    /// default). `None` or a value <= 0 keeps the timing as it is.
    pub fn with_part_hold_back(self, secs: Option<f64>) -> Timing {
        match secs {
            Some(s) if s > 0.0 => Timing {
                part_hold_back: ceil_ms(s.max(2.0 * self.part_target)),
                ..self
            },
            _ => self,
        }
    }

    /// PART-HOLD-BACK in seconds, with millisecond precision.
    pub fn part_hold_back(&self) -> f64 {
        self.part_hold_back
    }

    /// HOLD-BACK: three target durations (§4.4.3.8).
    pub fn hold_back(&self) -> f64 {
        3.0 * self.target_duration as f64
    }

    /// CAN-SKIP-UNTIL: six target durations (§4.4.3.8: at least six).
    pub fn can_skip_until(&self) -> f64 {
        6.0 * self.target_duration as f64
    }

    /// How long a blocking request may be held before 503: three target durations
    /// (§6.2.5.2).
    pub fn block_limit_secs(&self) -> f64 {
        3.0 * self.target_duration as f64
    }

    /// The Advance Part Limit (§6.2.5.2): 3 / PART-TARGET parts when the part target is
    /// under one second, else 3.
    pub fn advance_part_limit(&self) -> f64 {
        if self.part_target < 1.0 {
            3.0 / self.part_target
        } else {
            3.0
        }
    }
}

/// `_HLS_skip` (§6.2.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Skip {
    /// A whole playlist.
    #[default]
    No,
    /// `YES`: skip old segments.
    Yes,
    /// `v2`: skip old segments and EXT-X-DATERANGE tags (there are none here).
    V2,
}

/// The delivery directives of a playlist request (§6.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directives {
    /// `_HLS_msn`.
    pub msn: Option<u64>,
    /// `_HLS_part`.
    pub part: Option<u64>,
    /// `_HLS_skip`.
    pub skip: Skip,
}

impl Directives {
    /// Parses a query string (without `?`). Other parameters are ignored; an `_HLS_skip`
    /// value other than `YES`/`v2` means no skip.
    ///
    /// Errors: [`LlHlsError::BadDirective`] for a non-integer `_HLS_msn`/`_HLS_part` and for
    /// `_HLS_part` without `_HLS_msn` (§6.2.5.2: "Bad Request").
    pub fn parse(query: Option<&str>) -> Result<Directives, LlHlsError> {
        let mut d = Directives::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let num = |v: &str| {
                if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(LlHlsError::BadDirective(format!(
                        "{k}={v} is not an integer"
                    )));
                }
                v.parse::<u64>()
                    .map_err(|_| LlHlsError::BadDirective(format!("{k}={v} is out of range")))
            };
            match k {
                "_HLS_msn" => d.msn = Some(num(v)?),
                "_HLS_part" => d.part = Some(num(v)?),
                "_HLS_skip" => {
                    d.skip = match v {
                        "YES" => Skip::Yes,
                        "v2" => Skip::V2,
                        _ => Skip::No,
                    }
                }
                _ => {}
            }
        }
        if d.part.is_some() && d.msn.is_none() {
            return Err(LlHlsError::BadDirective(
                "_HLS_part without _HLS_msn".into(),
            ));
        }
        Ok(d)
    }
}

/// What to do with a blocking request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Answer with the current playlist.
    Ready,
    /// Hold until the rendition changes.
    Wait,
}

/// Normalises (msn, part) against the rendition: a part index past the last part of a
/// complete segment means part 0 of the next one (§6.2.5.2).
fn normalise(r: &Rendition, msn: u64, part: u64) -> (u64, u64) {
    match r.segment(msn) {
        Some(s) if s.complete && part >= s.parts.len() as u64 => (msn.saturating_add(1), 0),
        _ => (msn, part),
    }
}

/// The blocking-reload rule of RFC 8216bis §6.2.5.2 for one media playlist.
///
/// - no `_HLS_msn`, or the playlist has ended: [`Reload::Ready`];
/// - `_HLS_msn=M`: ready once segment M (or a later one) is complete;
/// - `_HLS_msn=M&_HLS_part=N`: ready once part N of M exists (N past the last part of a
///   complete M means part 0 of M+1), or any later part does;
/// - else [`Reload::Wait`].
///
/// Errors: [`LlHlsError::TooFarAhead`] when M is more than two past the last MSN of the
/// playlist, or the requested part is more than the Advance Part Limit past the last part.
pub fn check_reload(
    r: &Rendition,
    d: &Directives,
    timing: &Timing,
    ended: bool,
) -> Result<Reload, LlHlsError> {
    let Some(msn) = d.msn else {
        return Ok(Reload::Ready);
    };
    if ended {
        return Ok(Reload::Ready);
    }
    let last_part = r.last_part();
    let last_msn = last_part
        .map(|p| p.0)
        .max(r.last_complete_msn())
        .or_else(|| r.segments.first().map(|s| s.msn));
    let Some(last_msn) = last_msn else {
        // Nothing yet: every request waits for the first segment.
        return Ok(Reload::Wait);
    };
    let too_far = || LlHlsError::TooFarAhead {
        msn,
        part: d.part,
        last_msn,
        last_part: last_part.map(|p| p.1),
    };
    if msn > last_msn.saturating_add(2) {
        return Err(too_far());
    }
    match d.part {
        None => Ok(if r.last_complete_msn().is_some_and(|m| m >= msn) {
            Reload::Ready
        } else {
            Reload::Wait
        }),
        Some(part) => {
            let (m, n) = normalise(r, msn, part);
            if let Some((lm, lp)) = last_part {
                if (m, n) <= (lm, lp) {
                    return Ok(Reload::Ready);
                }
            }
            if parts_ahead(r, last_part, (m, n)) > timing.advance_part_limit() {
                return Err(too_far());
            }
            Ok(Reload::Wait)
        }
    }
}

/// How many parts (m, n) is past the last part, counting the unfinished rest of the
/// current segment and `parts_per_segment` for every segment in between.
fn parts_ahead(r: &Rendition, last: Option<PartPos>, (m, n): PartPos) -> f64 {
    let Some((lm, lp)) = last else {
        return n as f64 + 1.0;
    };
    if m == lm {
        return n.saturating_sub(lp) as f64;
    }
    let pps = r.parts_per_segment();
    let rest_of_current = match r.segment(lm) {
        Some(s) if s.complete => 0,
        _ => pps.saturating_sub(lp + 1),
    };
    let between = m.saturating_sub(lm).saturating_sub(1).saturating_mul(pps);
    (rest_of_current
        .saturating_add(between)
        .saturating_add(n)
        .saturating_add(1)) as f64
}

/// Whether a part request for (msn, index) may be held until the part exists: it is the
/// hinted next part, or within the Advance Part Limit of it. `false` for parts that exist
/// already (serve them) and for parts that will never come.
pub fn part_may_come(r: &Rendition, msn: u64, index: u64, timing: &Timing, ended: bool) -> bool {
    if ended {
        return false;
    }
    if let Some(s) = r.segment(msn) {
        if (index as usize) < s.parts.len() || s.complete {
            return false;
        }
    }
    let last = r.last_part();
    if let Some(lp) = last {
        if (msn, index) <= lp {
            return false;
        }
    }
    parts_ahead(r, last, (msn, index)) <= timing.advance_part_limit()
}

/// The URI of part `index` of segment `msn` of rendition `rep`, relative to the playlist.
pub fn part_uri(rep: &str, msn: u64, index: u64) -> String {
    format!(
        "llhls-part_{}_{msn}_{index}.m4s",
        utf8_percent_encode(rep, URI_ID)
    )
}

/// The URI of the media playlist of rendition `rep`, relative to the multivariant playlist.
pub fn media_uri(rep: &str) -> String {
    format!("llhls_{}.m3u8", utf8_percent_encode(rep, URI_ID))
}

/// A file name the LL-HLS egress answers, decoded (after percent-decoding of the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlHlsFile {
    /// `llhls.m3u8`
    Multivariant,
    /// `llhls_<RepresentationID>.m3u8`
    Media(String),
    /// `llhls-part_<RepresentationID>_<MSN>_<index>.m4s`
    Part { rep: String, msn: u64, index: u64 },
}

impl LlHlsFile {
    /// Recognises the origin's own LL-HLS file names; `None` for every other name.
    pub fn from_file_name(name: &str) -> Option<LlHlsFile> {
        if name == "llhls.m3u8" {
            return Some(LlHlsFile::Multivariant);
        }
        if let Some(rest) = name.strip_prefix("llhls-part_") {
            let stem = rest.strip_suffix(".m4s")?;
            let mut it = stem.rsplitn(3, '_');
            let index = it.next()?;
            let msn = it.next()?;
            let rep = it.next()?;
            let digits =
                |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
            if rep.is_empty() || !digits(index) || !digits(msn) {
                return None;
            }
            return Some(LlHlsFile::Part {
                rep: rep.to_owned(),
                msn: msn.parse().ok()?,
                index: index.parse().ok()?,
            });
        }
        let rep = name.strip_prefix("llhls_")?.strip_suffix(".m3u8")?;
        (!rep.is_empty()).then(|| LlHlsFile::Media(rep.to_owned()))
    }
}

/// Everything a media playlist rendering needs besides the rendition itself.
#[derive(Debug, Clone, Copy)]
pub struct MediaOptions<'a> {
    /// The fixed timing of the stream.
    pub timing: Timing,
    /// Wall-clock time of media time 0 in Unix milliseconds (the MPD's
    /// availabilityStartTime), for EXT-X-PROGRAM-DATE-TIME; `None` omits the tag.
    pub epoch_ms: Option<i64>,
    /// The stream ended: EXT-X-ENDLIST, every complete segment, no parts or hints.
    pub ended: bool,
    /// A finished package (a static MPD): a VOD playlist ([`vod_playlist`]) instead.
    pub vod: bool,
    /// A live playlist lists the segments starting within this many seconds of its end
    /// (never less than 3 target durations, §6.2.2).
    pub window_secs: f64,
    /// Delta update requested (ignored when ended).
    pub skip: Skip,
    /// The first MSN every rendition of the stream lists (so that audio and video windows
    /// start at the same segment); `None`: this rendition's own window.
    pub first_msn: Option<u64>,
    /// (RepresentationID, last MSN, last part) of every other rendition, for
    /// EXT-X-RENDITION-REPORT (§4.4.5.4).
    pub reports: &'a [(String, u64, Option<u64>)],
}

fn secs(v: f64) -> String {
    format!("{v:.3}")
}

/// The duration of `[start, start + dur)` (seconds) as the difference of its ends rounded
/// to the millisecond, as PROGRAM-DATE-TIME rounds them: the EXTINF (and part DURATION)
/// of consecutive segments then sum to the PROGRAM-DATE-TIME difference exactly, where
/// rounding each duration drifted (2.005333 s AAC segments: 1 ms every 4 segments), which
/// made Shaka Player place a segment twice and later skip one (a whole-segment hole).
fn span_secs(start: f64, dur: f64) -> String {
    let a = (start * 1000.0).round() as i64;
    let b = ((start + dur) * 1000.0).round() as i64;
    let ms = b.saturating_sub(a).max(0);
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The first MSN a live media playlist lists: the first segment ending within the window
/// (`window_secs`, at least HOLD-BACK + a target duration) of the rendition's end, or the
/// stream-wide `first_msn` when given. `None` (everything) once ended.
fn window_start(r: &Rendition, o: &MediaOptions<'_>) -> Option<u64> {
    if o.ended {
        return None;
    }
    if o.first_msn.is_some() {
        return o.first_msn;
    }
    window_first_msn(r, &o.timing, o.window_secs)
}

/// The first MSN of `r` that ends within `window_secs` (at least HOLD-BACK + a target
/// duration) of its end: the start of `r`'s own live window.
pub fn window_first_msn(r: &Rendition, t: &Timing, window_secs: f64) -> Option<u64> {
    let listed = || r.segments.iter().filter(|s| !s.parts.is_empty());
    let end = listed()
        .next_back()
        .map_or(0.0, |s| s.start_secs + s.duration_secs());
    let window = window_secs.max(t.hold_back() + t.target_duration as f64);
    listed()
        .find(|s| s.start_secs + s.duration_secs() >= end - window)
        .map(|s| s.msn)
}

/// ISO 8601 with milliseconds, UTC (`2026-11-20T21:46:20.332Z`).
pub fn format_pdt(unix_ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
    else {
        return "1970-01-01T00:00:00.000Z".into();
    };
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// Writes a media playlist (§4.4.3, §4.4.4, §4.4.5, delta updates §6.2.5.1).
///
/// Layout: header tags (VERSION 9, TARGETDURATION, SERVER-CONTROL, PART-INF,
/// MEDIA-SEQUENCE, MAP), optional EXT-X-SKIP, then per segment PROGRAM-DATE-TIME, its parts
/// (only for segments starting within three target durations of the end), EXTINF and URI;
/// the unfinished segment's parts; PRELOAD-HINT for the next part; RENDITION-REPORTs;
/// ENDLIST once ended. Incomplete segments of an ended stream are left out.
pub fn media_playlist(r: &Rendition, o: &MediaOptions<'_>) -> String {
    if o.vod {
        return vod_playlist(r, o);
    }
    let t = &o.timing;
    let mut out = String::with_capacity(4096);
    let listed: Vec<&Segment> = {
        let candidates = r
            .segments
            .iter()
            .filter(|s| !s.parts.is_empty() && (s.complete || !o.ended));
        match window_start(r, o) {
            Some(first) => candidates.filter(|s| s.msn >= first).collect(),
            None => candidates.collect(),
        }
    };
    let end = listed
        .last()
        .map_or(0.0, |s| s.start_secs + s.duration_secs());
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:9");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", t.target_duration);
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={},HOLD-BACK={}",
        secs(t.can_skip_until()),
        secs(t.part_hold_back()),
        secs(t.hold_back())
    );
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", secs(t.part_target));
    let first_msn = listed.first().map_or(0, |s| s.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", r.init_uri);
    // Delta update: skip complete segments that start more than CAN-SKIP-UNTIL before the
    // end (§6.2.5.1: never skip segments within CAN-SKIP-UNTIL of the end).
    let skipped = if o.skip != Skip::No && !o.ended {
        listed
            .iter()
            .take_while(|s| {
                s.complete && s.start_secs + s.duration_secs() < end - t.can_skip_until()
            })
            .count()
    } else {
        0
    };
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let parts_from = end - 3.0 * t.target_duration as f64;
    for s in &listed[skipped..] {
        if let Some(epoch) = o.epoch_ms {
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                format_pdt(epoch + (s.start_secs * 1000.0).round() as i64)
            );
        }
        let with_parts = !o.ended && (!s.complete || s.start_secs >= parts_from);
        if with_parts {
            let mut part_start = s.start_secs;
            for (i, p) in s.parts.iter().enumerate() {
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={},URI=\"{}\"",
                    span_secs(part_start, p.duration_secs),
                    part_uri(&r.id, s.msn, i as u64)
                );
                part_start += p.duration_secs;
                if p.independent {
                    out.push_str(",INDEPENDENT=YES");
                }
                out.push('\n');
            }
        }
        if s.complete {
            let _ = writeln!(
                out,
                "#EXTINF:{},",
                span_secs(s.start_secs, s.duration_secs())
            );
            let _ = writeln!(out, "{}", s.uri);
        }
    }
    if !o.ended {
        if let Some(last) = listed.last() {
            let (msn, idx) = if last.complete || looks_full(last, t) {
                (last.msn + 1, 0)
            } else {
                (last.msn, last.parts.len() as u64)
            };
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                part_uri(&r.id, msn, idx)
            );
        }
        for (id, msn, part) in o.reports {
            let _ = write!(
                out,
                "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={msn}",
                media_uri(id)
            );
            if let Some(p) = part {
                let _ = write!(out, ",LAST-PART={p}");
            }
            out.push('\n');
        }
    } else {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    out
}

/// Writes the media playlist of a finished package (a static MPD): `EXT-X-PLAYLIST-TYPE:VOD`
/// (RFC 8216bis §4.4.3.5), every complete segment with its EXTINF, `EXT-X-ENDLIST`, and none
/// of the Low-Latency tags (no PART-INF, SERVER-CONTROL, parts, hints or reports). VERSION 7:
/// fMP4 segments with EXT-X-MAP need 6 (§7).
pub fn vod_playlist(r: &Rendition, o: &MediaOptions<'_>) -> String {
    let mut out = String::with_capacity(1024);
    let segments: Vec<&Segment> = r.segments.iter().filter(|s| s.complete).collect();
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:7");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", o.timing.target_duration);
    let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD");
    let _ = writeln!(
        out,
        "#EXT-X-MEDIA-SEQUENCE:{}",
        segments.first().map_or(0, |s| s.msn)
    );
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", r.init_uri);
    for s in segments {
        if let Some(epoch) = o.epoch_ms {
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                format_pdt(epoch + (s.start_secs * 1000.0).round() as i64)
            );
        }
        let _ = writeln!(
            out,
            "#EXTINF:{},",
            span_secs(s.start_secs, s.duration_secs())
        );
        let _ = writeln!(out, "{}", s.uri);
    }
    let _ = writeln!(out, "#EXT-X-ENDLIST");
    out
}

/// Whether an unfinished segment already reaches its nominal end (the first multiple of
/// [`Timing::segment_secs`] after its start) with its last part whole: the encoder closes it
/// without another chunk, so the next part is part 0 of the next segment.
fn looks_full(s: &Segment, t: &Timing) -> bool {
    if t.segment_secs <= 0.0 || s.parts.is_empty() || s.has_open_part() {
        return false;
    }
    let boundary =
        ((s.start_secs + 1e-3) / t.segment_secs).floor() * t.segment_secs + t.segment_secs;
    s.start_secs + s.duration_secs() >= boundary - 1e-3
}

/// The (LAST-MSN, LAST-PART) a rendition report gives for `r` (§4.4.5.4): the last part's
/// position, or the last complete segment with no part.
pub fn report_of(r: &Rendition) -> Option<(u64, Option<u64>)> {
    match (r.last_part(), r.last_complete_msn()) {
        (Some((m, p)), _) => Some((m, Some(p))),
        (None, Some(m)) => Some((m, None)),
        (None, None) => None,
    }
}

/// Kind of a rendition in the multivariant playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantKind {
    /// A variant stream (EXT-X-STREAM-INF).
    Video,
    /// A member of the `audio` EXT-X-MEDIA group.
    Audio,
}

/// What the multivariant playlist says about one rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantInfo {
    /// DASH Representation ID.
    pub id: String,
    /// Video or audio.
    pub kind: VariantKind,
    /// RFC 6381 codec string (from the MPD `@codecs`).
    pub codecs: Option<String>,
    /// Peak bit rate in bits/s.
    pub bandwidth: Option<u64>,
    /// Picture size in pixels.
    pub resolution: Option<(u32, u32)>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
}

/// Writes the multivariant playlist (§4.4.6): one EXT-X-STREAM-INF per video rendition
/// (BANDWIDTH = video + the largest audio bandwidth, CODECS = video + audio codecs,
/// RESOLUTION, FRAME-RATE, AUDIO group), audio renditions as `EXT-X-MEDIA:TYPE=AUDIO` of group
/// `audio`. A stream with audio only lists its audio renditions as variants.
pub fn multivariant_playlist(variants: &[VariantInfo]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let audio: Vec<&VariantInfo> = variants
        .iter()
        .filter(|v| v.kind == VariantKind::Audio)
        .collect();
    let video: Vec<&VariantInfo> = variants
        .iter()
        .filter(|v| v.kind == VariantKind::Video)
        .collect();
    let audio_bw = audio.iter().filter_map(|a| a.bandwidth).max().unwrap_or(0);
    let audio_codec = audio.iter().find_map(|a| a.codecs.clone());
    if video.is_empty() {
        for a in &audio {
            let _ = write!(
                out,
                "#EXT-X-STREAM-INF:BANDWIDTH={}",
                a.bandwidth.unwrap_or(128_000)
            );
            if let Some(c) = &a.codecs {
                let _ = write!(out, ",CODECS=\"{c}\"");
            }
            let _ = writeln!(out, "\n{}", media_uri(&a.id));
        }
        return out;
    }
    for (i, a) in audio.iter().enumerate() {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio{}\",DEFAULT={},AUTOSELECT=YES,URI=\"{}\"",
            a.id,
            if i == 0 { "YES" } else { "NO" },
            media_uri(&a.id)
        );
    }
    for v in &video {
        let bw = v.bandwidth.unwrap_or(1_000_000).saturating_add(audio_bw);
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={bw}");
        let codecs: Vec<&str> = v
            .codecs
            .as_deref()
            .into_iter()
            .chain(audio_codec.as_deref())
            .collect();
        if v.codecs.is_some() {
            let _ = write!(out, ",CODECS=\"{}\"", codecs.join(","));
        }
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(f) = v.frame_rate {
            let _ = write!(out, ",FRAME-RATE={f:.3}");
        }
        if !audio.is_empty() {
            out.push_str(",AUDIO=\"audio\"");
        }
        let _ = writeln!(out, "\n{}", media_uri(&v.id));
    }
    out
}

/// Parses a DASH `@frameRate` (`30`, `30000/1001`) into frames per second.
pub fn parse_frame_rate(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let n: f64 = n.trim().parse().ok()?;
    let d: f64 = d.trim().parse().ok()?;
    (d > 0.0 && n > 0.0).then(|| n / d)
}

#[cfg(test)]
mod tests;
