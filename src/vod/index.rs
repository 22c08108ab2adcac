//! The MP4 sample index: one flat sample table per track, built from `mp4-atom` boxes
//! (ISO/IEC 14496-12).
//!
//! ```text
//! moov/mvhd                      movie timescale (edit list durations)
//! moov/trak[i]/tkhd              track_id
//! moov/trak[i]/edts/elst         presentation offset (empty edits, media_time)
//! moov/trak[i]/mdia/mdhd         media timescale
//! moov/trak[i]/mdia/hdlr         vide | soun
//! moov/trak[i]/mdia/minf/stbl/
//!     stsd                       avc1/avc3 (avcC), hvc1/hev1 (hvcC), mp4a (esds)
//!     stts, ctts                 decode deltas, composition offsets
//!     stss                       sync samples (absent: every sample is sync)
//!     stsc + stco/co64 + stsz    sample -> file offset and size
//! ```
//!
//! The tables are walked once each with cursors (linear time in the number of samples
//! plus entries). Every count read from the file is checked against [`MAX_SAMPLES`] and
//! against the other tables before it sizes anything; sample ranges are checked against
//! the file size.
//!
//! Times: [`Sample::dts`] and [`Sample::cto`] are in the track's media timescale ticks.
//! The presentation time of a sample is `dts + cto + Track::pt_shift` ticks, where
//! `pt_shift` applies the edit list (empty edits delay, `media_time` advances), so that
//! presentation time 0 is the first displayed frame.

use mp4_atom::{
    Codec as StsdCodec, Decode, Mdia, Minf, Moof, Moov, Mvex, Mvhd, Stbl, StszSamples, Trak,
};

use super::codec::{self, Codec};

/// Most samples accepted in one track (about 40 hours of 60 fps video).
pub const MAX_SAMPLES: u64 = 8_000_000;
/// Largest accepted `moov` box, in bytes.
pub const MAX_MOOV_BYTES: u64 = 256 * 1024 * 1024;

/// One sample (access unit) of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Absolute byte offset of the sample data in the file.
    pub offset: u64,
    /// Decode time in media timescale ticks, from 0 (sum of `stts` deltas).
    pub dts: u64,
    /// Sample size in bytes (`stsz`).
    pub size: u32,
    /// Composition offset in ticks (`ctts`, signed; 0 when absent).
    pub cto: i32,
    /// Sync sample (`stss`; every sample when `stss` is absent).
    pub sync: bool,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// `hdlr` = `vide`.
    Video,
    /// `hdlr` = `soun`.
    Audio,
}

/// Which track of a [`MovieIndex`] a route names (the URL suffixes of the fMP4 and
/// per-track TS outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Media {
    /// The video track (`_v`).
    Video,
    /// The (first) audio track (`_a`).
    Audio,
    /// Another audio track (`_a<k>`, k >= 1): `MovieIndex::alternates[k - 1]`.
    AltAudio(u8),
}

impl Media {
    /// The URL suffix without underscore: `v`, `a`, `a1`, `a2`, ...
    pub fn suffix(self) -> String {
        match self {
            Media::Video => "v".into(),
            Media::Audio => "a".into(),
            Media::AltAudio(k) => format!("a{k}"),
        }
    }

    /// Whether this is an audio track.
    pub fn is_audio(self) -> bool {
        !matches!(self, Media::Video)
    }
}

/// One indexed track.
#[derive(Debug, Clone)]
pub struct Track {
    /// `tkhd.track_id`.
    pub track_id: u32,
    /// Audio or video.
    pub kind: TrackKind,
    /// Codec and its configuration for the TS muxer.
    pub codec: Codec,
    /// RFC 6381 codec string (`avc1.64001f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`).
    pub codec_string: String,
    /// `mdhd.timescale`: ticks per second of this track's times.
    pub timescale: u32,
    /// Picture size in pixels from the sample entry (video), else (0, 0).
    pub width: u16,
    /// See `width`.
    pub height: u16,
    /// Nominal frame rate in frames per second (video; 0 for audio).
    pub frame_rate: f64,
    /// Presentation time of a sample = `dts + cto + pt_shift`, in ticks (edit list).
    pub pt_shift: i64,
    /// Presentation end of the track in ticks (last sample end, capped by the edit).
    pub end_pt: i64,
    /// Duration of the last sample in ticks (its `stts` delta).
    pub last_duration: u32,
    /// `mdhd.language`: ISO 639-2/T code (`und` when unset).
    pub language: String,
    /// `hdlr.name`: the track's human-readable name (may be empty).
    pub name: String,
    /// The source `mvhd` (times and matrix for a CMAF header).
    pub mvhd: Mvhd,
    /// The source `trak` without its sample tables and edit list: `tkhd`, `mdhd`, `hdlr`,
    /// the media header, `dinf` and `stsd` (what a CMAF header of this track needs,
    /// ISO/IEC 23000-19 §7.3.2.1).
    pub header: Trak,
    /// Every sample, in decode order.
    pub samples: Vec<Sample>,
}

impl Track {
    /// Presentation time of sample `i` in ticks.
    pub fn pt(&self, i: usize) -> i64 {
        let s = &self.samples[i];
        s.dts as i64 + i64::from(s.cto) + self.pt_shift
    }

    /// Decode time of sample `i` shifted like presentation times, in ticks.
    pub fn shifted_dts(&self, i: usize) -> i64 {
        self.samples[i].dts as i64 + self.pt_shift
    }
}

/// The indexed movie: the tracks we package (first video, first audio).
#[derive(Debug, Clone)]
pub struct MovieIndex {
    /// First supported video track.
    pub video: Option<Track>,
    /// First supported audio track (several audio tracks: the first one).
    pub audio: Option<Track>,
    /// The other supported audio tracks, in file order (other languages, commentary):
    /// offered by the fMP4 outputs as `_a1`, `_a2`, ...
    pub alternates: Vec<Track>,
    /// The 3GPP timed text tracks (`tx3g`, ffmpeg's `mov_text`), in file order: offered
    /// as WebVTT subtitles.
    pub texts: Vec<TextTrack>,
}

/// A timed text track (3GPP TS 26.245: handler `text`, `sbtl` or `subt`, sample entry
/// `tx3g`): one sample per cue or gap, each a 16-bit text length, the text and optional
/// modifier boxes.
#[derive(Debug, Clone)]
pub struct TextTrack {
    /// `tkhd.track_id`.
    pub track_id: u32,
    /// `mdhd.timescale`: ticks per second of this track's times.
    pub timescale: u32,
    /// Presentation time of a sample = `dts + pt_shift`, in ticks (edit list).
    pub pt_shift: i64,
    /// Duration of the last sample in ticks.
    pub last_duration: u32,
    /// `mdhd.language`: ISO 639-2/T code (`und` when unset).
    pub language: String,
    /// `hdlr.name` (may be empty).
    pub name: String,
    /// Every sample, in decode order (no composition offsets in timed text).
    pub samples: Vec<Sample>,
}

impl TextTrack {
    /// Presentation start and end of sample `i` in ticks: its decode time shifted by the
    /// edit list, and the next sample's (the last one: plus its `stts` delta).
    pub fn span(&self, i: usize) -> Option<(i64, i64)> {
        let s = self.samples.get(i)?;
        let end = match self.samples.get(i + 1) {
            Some(n) => n.dts,
            None => s.dts.saturating_add(u64::from(self.last_duration)),
        };
        let start = (s.dts.min(i64::MAX as u64 / 4) as i64).saturating_add(self.pt_shift);
        let end = (end.min(i64::MAX as u64 / 4) as i64).saturating_add(self.pt_shift);
        Some((start, end))
    }
}

impl MovieIndex {
    /// The packaged tracks, video first.
    pub fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.video
            .iter()
            .chain(self.audio.iter())
            .chain(self.alternates.iter())
    }

    /// Approximate heap size in bytes (for cache weighing).
    pub fn heap_bytes(&self) -> usize {
        self.tracks()
            .map(|t| t.samples.len() * std::mem::size_of::<Sample>())
            .sum::<usize>()
            + 1024
    }
}

/// Why a `moov` cannot be indexed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// `mp4-atom` refused a box.
    #[error("decoding {box_path}: {source}")]
    Decode {
        /// Box path where decoding started (`moov`).
        box_path: &'static str,
        /// The mp4-atom error (names the failing box type).
        source: mp4_atom::Error,
    },
    /// A table is inconsistent, too large or points outside the file.
    #[error("track {track_id}: {box_path}: {reason}{}", sample.map(|s| format!(" (sample {s})")).unwrap_or_default())]
    Corrupt {
        /// `tkhd.track_id` (0 when not inside a track).
        track_id: u32,
        /// Box path below the track, e.g. `stbl/stsz`.
        box_path: &'static str,
        /// 0-based sample index in decode order, when one sample is at fault.
        sample: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A feature or codec we do not package.
    #[error("track {track_id}: unsupported: {reason}")]
    Unsupported {
        /// `tkhd.track_id`.
        track_id: u32,
        /// What is not supported (codec four-character code, encryption, ...).
        reason: String,
    },
    /// Fragmented MP4 (`mvex`/`moof`).
    #[error("fragmented MP4 (moov/mvex) is not supported")]
    Fragmented,
    /// Neither an audio nor a video track.
    #[error("no audio or video track")]
    NoTracks,
}

/// Decodes a complete `moov` box (header included) and indexes its tracks.
///
/// `file_size` is the size of the whole file in bytes; every sample must lie inside it.
/// Errors: see [`IndexError`]; [`IndexError::Fragmented`] for a fragmented file (`mvex`),
/// whose samples are in its `moof` boxes: index it with [`index_fragmented`].
pub fn index_moov(moov: &[u8], file_size: u64) -> Result<MovieIndex, IndexError> {
    index_with(moov, None, file_size)
}

/// A top-level `moof` box of a fragmented file: its file offset (bytes) and the whole box.
pub type MoofBox = (u64, bytes::Bytes);

/// Indexes a fragmented MP4 (ISO/IEC 14496-12 §8.8): the `moov` (with `mvex`) and every
/// top-level `moof` in file order. A track's samples are those of its `stbl` (usually
/// none) followed by those of every `traf` naming its `track_ID`; `trun` values default to
/// `tfhd`, then to `mvex/trex` (§8.8.3, §8.8.7, §8.8.8); decode times follow `tfdt` when
/// present; sample data offsets start at `tfhd.base_data_offset`, else the `moof`
/// (`default-base-is-moof`, or the first `traf`), else the end of the previous `traf`'s
/// data. The index is then the same as a progressive file's.
///
/// Errors: as [`index_moov`] (never [`IndexError::Fragmented`]); a `moof` that does not
/// decode or a run outside the file is [`IndexError::Corrupt`].
pub fn index_fragmented(
    moov: &[u8],
    moofs: &[MoofBox],
    file_size: u64,
) -> Result<MovieIndex, IndexError> {
    let mut decoded = Vec::with_capacity(moofs.len());
    for (offset, bytes) in moofs {
        // The same guard as the moov's: sgpd entry counts checked before mp4-atom reads them.
        crate::cmaf::guard::check(bytes).map_err(|e| IndexError::Corrupt {
            track_id: 0,
            box_path: "moof",
            sample: None,
            reason: format!("at offset {offset}: {e}"),
        })?;
        let moof = Moof::decode(&mut &bytes[..]).map_err(|e| IndexError::Corrupt {
            track_id: 0,
            box_path: "moof",
            sample: None,
            reason: format!("at offset {offset}: {e}"),
        })?;
        decoded.push((*offset, moof));
    }
    index_with(moov, Some(&decoded), file_size)
}

fn index_with(
    moov: &[u8],
    fragments: Option<&[(u64, Moof)]>,
    file_size: u64,
) -> Result<MovieIndex, IndexError> {
    crate::cmaf::guard::check(moov).map_err(|e| IndexError::Corrupt {
        track_id: 0,
        box_path: "sgpd",
        sample: None,
        reason: e.to_string(),
    })?;
    let moov = match Moov::decode(&mut &moov[..]) {
        Ok(m) => m,
        // mp4-atom has no `stz2`: a track using it lacks `stsz`. Rewrite `stz2` as the
        // equivalent `stsz` and decode again (rare, so only on this path).
        Err(mp4_atom::Error::MissingBox(k)) if k == mp4_atom::FourCC::new(b"stsz") => {
            let rewritten = rewrite_boxes(moov, &mut stz2_to_stsz)?;
            Moov::decode(&mut &rewritten[..]).map_err(|source| IndexError::Decode {
                box_path: "moov",
                source,
            })?
        }
        Err(source) => {
            return Err(IndexError::Decode {
                box_path: "moov",
                source,
            })
        }
    };
    let frag = match (&moov.mvex, fragments) {
        (Some(_), None) => return Err(IndexError::Fragmented),
        (Some(mvex), Some(f)) => Some((mvex, f)),
        (None, _) => None,
    };
    let mut video = None;
    let mut audio = None;
    let mut alternates = Vec::new();
    let mut texts = Vec::new();
    let mut audio_err = None;
    for trak in &moov.trak {
        let kind = match &trak.mdia.hdlr.handler.to_string()[..] {
            "vide" => TrackKind::Video,
            "soun" => TrackKind::Audio,
            "text" | "sbtl" | "subt" => {
                match index_text_track(trak, &moov.mvhd, frag, file_size) {
                    Ok(Some(t)) => texts.push(t),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(track_id = trak.tkhd.track_id, error = %e, "text track skipped")
                    }
                }
                continue;
            }
            _ => continue,
        };
        match kind {
            TrackKind::Video if video.is_none() => {
                video = Some(index_track(trak, &moov.mvhd, kind, frag, file_size)?);
            }
            TrackKind::Audio if audio.is_none() => {
                match index_track(trak, &moov.mvhd, kind, frag, file_size) {
                    Ok(t) => audio = Some(t),
                    Err(e @ IndexError::Unsupported { .. }) => {
                        audio_err.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            TrackKind::Audio => match index_track(trak, &moov.mvhd, kind, frag, file_size) {
                Ok(t) => alternates.push(t),
                Err(e) => {
                    tracing::debug!(track_id = trak.tkhd.track_id, error = %e, "other audio track skipped")
                }
            },
            _ => {}
        }
    }
    if audio.is_none() {
        if let Some(e) = audio_err {
            return Err(e);
        }
    }
    if video.is_none() && audio.is_none() {
        return Err(IndexError::NoTracks);
    }
    Ok(MovieIndex {
        video,
        audio,
        alternates,
        texts,
    })
}

fn corrupt(
    track_id: u32,
    box_path: &'static str,
    sample: Option<u64>,
    reason: String,
) -> IndexError {
    IndexError::Corrupt {
        track_id,
        box_path,
        sample,
        reason,
    }
}

fn index_track(
    trak: &Trak,
    mvhd: &Mvhd,
    kind: TrackKind,
    frag: Option<(&Mvex, &[(u64, Moof)])>,
    file_size: u64,
) -> Result<Track, IndexError> {
    let id = trak.tkhd.track_id;
    let stbl = &trak.mdia.minf.stbl;
    let timescale = trak.mdia.mdhd.timescale;
    if timescale == 0 {
        return Err(corrupt(id, "mdia/mdhd", None, "timescale 0".into()));
    }
    let entry = stbl
        .stsd
        .codecs
        .first()
        .ok_or_else(|| corrupt(id, "stbl/stsd", None, "no sample entry".into()))?;
    let (codec, codec_string) =
        codec::from_sample_entry(entry).map_err(|reason| IndexError::Unsupported {
            track_id: id,
            reason,
        })?;
    let (width, height) = match entry {
        StsdCodec::Avc1(v) => (v.visual.width, v.visual.height),
        StsdCodec::Avc3(v) => (v.visual.width, v.visual.height),
        StsdCodec::Hvc1(v) => (v.visual.width, v.visual.height),
        StsdCodec::Hev1(v) => (v.visual.width, v.visual.height),
        _ => (0, 0),
    };
    if stbl
        .stsc
        .entries
        .iter()
        .any(|e| e.sample_description_index != 1)
    {
        return Err(IndexError::Unsupported {
            track_id: id,
            reason: "several sample descriptions (stsd entries) in use".into(),
        });
    }
    let mut samples = build_samples(id, stbl, file_size)?;

    // Durations for the end time and frame rate: walk stts once more (cheap).
    let mut max_end: i64 = 0;
    let mut i = 0usize;
    let mut best = (0u32, 0u32); // (count, delta) of the most common delta
    let mut last_duration = last_delta(stbl);
    for e in &stbl.stts.entries {
        if e.sample_count > best.0 {
            best = (e.sample_count, e.sample_delta);
        }
        let n = e.sample_count as usize;
        let end = (i + n).min(samples.len());
        for s in &samples[i..end] {
            let end_t = s.dts as i64 + i64::from(s.cto) + i64::from(e.sample_delta);
            max_end = max_end.max(end_t);
        }
        i = end;
    }
    if let Some((mvex, moofs)) = frag {
        let start_dts = samples
            .last()
            .map(|s| s.dts.saturating_add(u64::from(last_duration)))
            .unwrap_or(0);
        let f = append_fragments(id, mvex, moofs, &mut samples, start_dts, file_size)?;
        if f.count > 0 {
            max_end = max_end.max(f.max_end);
            last_duration = f.last_duration;
            if best.0 == 0 {
                best = (1, f.first_duration);
            }
        }
    }

    let (pt_shift, end_pt) = edit_shift(trak, mvhd, timescale, max_end);
    let frame_rate = if kind == TrackKind::Video && best.1 > 0 {
        f64::from(timescale) / f64::from(best.1)
    } else {
        0.0
    };
    Ok(Track {
        track_id: id,
        kind,
        codec,
        codec_string,
        timescale,
        width,
        height,
        frame_rate,
        pt_shift,
        end_pt,
        last_duration,
        language: trak.mdia.mdhd.language.clone(),
        name: trak.mdia.hdlr.name.trim_end_matches('\0').to_string(),
        mvhd: mvhd.clone(),
        header: stripped(trak),
        samples,
    })
}

/// Indexes a `tx3g` text track; `None` for other sample entries (WebVTT-in-MP4 `wvtt`,
/// `stpp`, ... are not offered).
fn index_text_track(
    trak: &Trak,
    mvhd: &Mvhd,
    frag: Option<(&Mvex, &[(u64, Moof)])>,
    file_size: u64,
) -> Result<Option<TextTrack>, IndexError> {
    let id = trak.tkhd.track_id;
    let stbl = &trak.mdia.minf.stbl;
    let timescale = trak.mdia.mdhd.timescale;
    if timescale == 0 {
        return Err(corrupt(id, "mdia/mdhd", None, "timescale 0".into()));
    }
    if !matches!(stbl.stsd.codecs.first(), Some(StsdCodec::Tx3g(_))) {
        return Ok(None);
    }
    let mut samples = build_samples(id, stbl, file_size)?;
    let mut last_duration = last_delta(stbl);
    let mut max_end = samples
        .last()
        .map_or(0, |s| s.dts.saturating_add(u64::from(last_duration)))
        .min(i64::MAX as u64 / 4) as i64;
    if let Some((mvex, moofs)) = frag {
        let start_dts = max_end as u64;
        let f = append_fragments(id, mvex, moofs, &mut samples, start_dts, file_size)?;
        if f.count > 0 {
            max_end = max_end.max(f.max_end);
            last_duration = f.last_duration;
        }
    }
    let (pt_shift, _) = edit_shift(trak, mvhd, timescale, max_end);
    Ok(Some(TextTrack {
        track_id: id,
        timescale,
        pt_shift,
        last_duration,
        language: trak.mdia.mdhd.language.clone(),
        name: trak.mdia.hdlr.name.trim_end_matches('\0').to_string(),
        samples,
    }))
}

/// The edit list of `trak` (ISO/IEC 14496-12 §8.6.6) as (`pt_shift`, `end_pt`) in the
/// track's `timescale` ticks: presentation time = decode time + composition offset +
/// `pt_shift`; `end_pt` is `max_end` (the last sample end, unshifted) shifted and capped by
/// the edit's duration.
fn edit_shift(trak: &Trak, mvhd: &Mvhd, timescale: u32, max_end: i64) -> (i64, i64) {
    let movie_ts = mvhd.timescale;
    let id = trak.tkhd.track_id;
    // Edit list (ISO/IEC 14496-12 8.6.6): leading empty edits delay, the first real edit's
    // media_time is where presentation starts. Later edits are ignored.
    let mut delay_movie: u64 = 0;
    let mut media_time: Option<(u64, u64)> = None;
    if let Some(elst) = trak.edts.as_ref().and_then(|e| e.elst.as_ref()) {
        for e in &elst.entries {
            match e.media_time {
                None if media_time.is_none() => {
                    delay_movie = delay_movie.saturating_add(e.segment_duration)
                }
                Some(t) if media_time.is_none() => media_time = Some((t, e.segment_duration)),
                _ => {
                    tracing::debug!(track_id = id, "edit list: later edits ignored");
                    break;
                }
            }
        }
    }
    let to_media = |movie: u64| -> i64 {
        if movie_ts == 0 {
            0
        } else {
            (u128::from(movie) * u128::from(timescale) / u128::from(movie_ts))
                .min(i64::MAX as u128 / 4) as i64
        }
    };
    let delay = to_media(delay_movie);
    let mt = media_time
        .map(|m| m.0)
        .unwrap_or(0)
        .min(i64::MAX as u64 / 4) as i64;
    let pt_shift = delay - mt;
    let mut end_pt = max_end + pt_shift;
    if let Some((_, dur)) = media_time {
        if dur > 0 {
            end_pt = end_pt.min(delay + to_media(dur));
        }
    }
    (pt_shift, end_pt)
}

/// The `stts` delta of the last sample, in ticks (0 without samples).
fn last_delta(stbl: &Stbl) -> u32 {
    stbl.stts
        .entries
        .iter()
        .rev()
        .find(|e| e.sample_count > 0)
        .map(|e| e.sample_delta)
        .unwrap_or(0)
}

/// `trak` without the sample tables (which stay in the flat index) and the edit list
/// (applied to the timestamps instead).
fn stripped(trak: &Trak) -> Trak {
    let m = &trak.mdia.minf;
    Trak {
        tkhd: trak.tkhd.clone(),
        mdia: Mdia {
            mdhd: trak.mdia.mdhd.clone(),
            hdlr: trak.mdia.hdlr.clone(),
            minf: Minf {
                vmhd: m.vmhd.clone(),
                smhd: m.smhd.clone(),
                nmhd: m.nmhd.clone(),
                sthd: m.sthd.clone(),
                hmhd: m.hmhd.clone(),
                dinf: m.dinf.clone(),
                stbl: Stbl {
                    stsd: m.stbl.stsd.clone(),
                    ..Default::default()
                },
            },
        },
        ..Default::default()
    }
}

/// What [`append_fragments`] saw of a track.
struct FragmentTail {
    count: usize,
    max_end: i64,
    last_duration: u32,
    first_duration: u32,
}

/// Appends the samples of every `traf` of track `id` (see [`index_fragmented`]).
fn append_fragments(
    id: u32,
    mvex: &Mvex,
    moofs: &[(u64, Moof)],
    out: &mut Vec<Sample>,
    start_dts: u64,
    file_size: u64,
) -> Result<FragmentTail, IndexError> {
    let trex = mvex.trex.iter().find(|t| t.track_id == id);
    let (trex_dur, trex_size, trex_flags, trex_desc) = trex
        .map(|t| {
            (
                t.default_sample_duration,
                t.default_sample_size,
                t.default_sample_flags,
                t.default_sample_description_index,
            )
        })
        .unwrap_or((0, 0, 0, 1));
    let mut dts = start_dts;
    let mut tail = FragmentTail {
        count: 0,
        max_end: 0,
        last_duration: 0,
        first_duration: 0,
    };
    let first_index = out.len();
    for (moof_start, moof) in moofs {
        let mut prev_end: Option<u64> = None;
        for traf in &moof.traf {
            let tfhd = &traf.tfhd;
            // Data of a traf of another track still moves the implicit base.
            let base = tfhd
                .base_data_offset
                .unwrap_or(if tfhd.default_base_is_moof {
                    *moof_start
                } else {
                    prev_end.unwrap_or(*moof_start)
                });
            let mine = tfhd.track_id == id;
            if mine {
                let desc = tfhd.sample_description_index.unwrap_or(trex_desc);
                if desc != 1 {
                    return Err(IndexError::Unsupported {
                        track_id: id,
                        reason: format!("fragment uses sample description {desc}"),
                    });
                }
                if let Some(t) = &traf.tfdt {
                    dts = t.base_media_decode_time;
                }
            }
            let mut data = base;
            for trun in &traf.trun {
                if let Some(off) = trun.data_offset {
                    data = base.checked_add_signed(i64::from(off)).ok_or_else(|| {
                        corrupt(
                            id,
                            "moof/traf/trun",
                            None,
                            format!("data_offset {off} before the file"),
                        )
                    })?;
                }
                for e in trun.samples.iter() {
                    let size = e.size.or(tfhd.default_sample_size).unwrap_or(trex_size);
                    let end = data
                        .checked_add(u64::from(size))
                        .filter(|&x| x <= file_size)
                        .ok_or_else(|| {
                            corrupt(
                                id,
                                "moof/traf/trun",
                                Some(out.len() as u64),
                                format!("sample at offset {data} size {size} beyond file size {file_size}"),
                            )
                        })?;
                    if mine {
                        if out.len() as u64 >= MAX_SAMPLES {
                            return Err(corrupt(
                                id,
                                "moof/traf/trun",
                                None,
                                format!("more than {MAX_SAMPLES} samples"),
                            ));
                        }
                        let duration = e
                            .duration
                            .or(tfhd.default_sample_duration)
                            .unwrap_or(trex_dur);
                        let flags = e.flags.or(tfhd.default_sample_flags).unwrap_or(trex_flags);
                        let cto = e.cts.unwrap_or(0);
                        let cto = i32::try_from(cto).map_err(|_| {
                            corrupt(
                                id,
                                "moof/traf/trun",
                                Some(out.len() as u64),
                                format!("composition offset {cto} out of range"),
                            )
                        })?;
                        out.push(Sample {
                            offset: data,
                            dts,
                            size,
                            cto,
                            // sample_is_non_sync_sample (§8.8.3.1).
                            sync: flags & 0x0001_0000 == 0,
                        });
                        if tail.count == 0 {
                            tail.first_duration = duration;
                        }
                        tail.count += 1;
                        tail.last_duration = duration;
                        let end_t = dts as i64 + i64::from(cto) + i64::from(duration);
                        tail.max_end = tail.max_end.max(end_t);
                        dts = dts.saturating_add(u64::from(duration));
                    }
                    data = end;
                }
            }
            prev_end = Some(data);
        }
    }
    // Decode times must not go back (a tfdt before the previous fragment's end).
    if out[first_index..].windows(2).any(|w| w[1].dts < w[0].dts) {
        return Err(corrupt(
            id,
            "moof/traf/tfdt",
            None,
            "decode times go backwards between fragments".into(),
        ));
    }
    Ok(tail)
}

/// Flattens stsz + stsc + stco/co64 + stts + ctts + stss into one table (one pass, cursors).
fn build_samples(
    id: u32,
    stbl: &mp4_atom::Stbl,
    file_size: u64,
) -> Result<Vec<Sample>, IndexError> {
    let (n, fixed, sizes): (u64, u32, &[u32]) = match &stbl.stsz.samples {
        StszSamples::Identical { count, size } => (u64::from(*count), *size, &[]),
        StszSamples::Different { sizes } => (sizes.len() as u64, 0, sizes),
    };
    if n > MAX_SAMPLES {
        return Err(corrupt(
            id,
            "stbl/stsz",
            None,
            format!("{n} samples (limit {MAX_SAMPLES})"),
        ));
    }
    let stts_total: u64 = stbl
        .stts
        .entries
        .iter()
        .map(|e| u64::from(e.sample_count))
        .sum();
    if stts_total != n {
        return Err(corrupt(
            id,
            "stbl/stts",
            None,
            format!("{stts_total} samples in stts, {n} in stsz"),
        ));
    }
    let chunks: Vec<u64> = match (&stbl.stco, &stbl.co64) {
        (_, Some(co64)) => co64.entries.clone(),
        (Some(stco), None) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
        (None, None) => return Err(corrupt(id, "stbl/stco", None, "no stco or co64".into())),
    };
    let stsc = &stbl.stsc.entries;
    if n > 0 && (stsc.is_empty() || stsc[0].first_chunk != 1) {
        return Err(corrupt(
            id,
            "stbl/stsc",
            None,
            "first entry does not start at chunk 1".into(),
        ));
    }
    if stsc
        .windows(2)
        .any(|w| w[1].first_chunk <= w[0].first_chunk)
    {
        return Err(corrupt(
            id,
            "stbl/stsc",
            None,
            "first_chunk not increasing".into(),
        ));
    }

    let n_usize = n as usize;
    let mut out: Vec<Sample> = Vec::with_capacity(n_usize.min(1 << 20));
    // Cursors.
    let mut stsc_i = 0usize;
    let mut stts_i = 0usize;
    let mut stts_left = stbl
        .stts
        .entries
        .first()
        .map(|e| e.sample_count)
        .unwrap_or(0);
    let mut dts: u64 = 0;
    let ctts = stbl.ctts.as_ref().map(|c| &c.entries[..]).unwrap_or(&[]);
    let mut ctts_i = 0usize;
    let mut ctts_left = ctts.first().map(|e| e.sample_count).unwrap_or(0);
    let stss = stbl.stss.as_ref().map(|s| &s.entries[..]);
    let mut stss_i = 0usize;

    'chunks: for (ci, &chunk_off) in chunks.iter().enumerate() {
        let chunk_no = ci as u64 + 1;
        while stsc_i + 1 < stsc.len() && u64::from(stsc[stsc_i + 1].first_chunk) <= chunk_no {
            stsc_i += 1;
        }
        let per_chunk = stsc.get(stsc_i).map(|e| e.samples_per_chunk).unwrap_or(0);
        let mut off = chunk_off;
        for _ in 0..per_chunk {
            let idx = out.len();
            if idx >= n_usize {
                break 'chunks;
            }
            let size = if sizes.is_empty() { fixed } else { sizes[idx] };
            let end = off
                .checked_add(u64::from(size))
                .filter(|&e| e <= file_size)
                .ok_or_else(|| {
                    corrupt(
                        id,
                        "stbl/stco",
                        Some(idx as u64),
                        format!("sample at offset {off} size {size} beyond file size {file_size}"),
                    )
                })?;
            // stts
            while stts_left == 0 {
                stts_i += 1;
                stts_left = stbl.stts.entries[stts_i].sample_count;
            }
            let delta = stbl.stts.entries[stts_i].sample_delta;
            stts_left -= 1;
            // ctts
            let mut cto: i64 = 0;
            if !ctts.is_empty() {
                while ctts_left == 0 && ctts_i + 1 < ctts.len() {
                    ctts_i += 1;
                    ctts_left = ctts[ctts_i].sample_count;
                }
                if ctts_left > 0 {
                    cto = ctts[ctts_i].sample_offset;
                    ctts_left -= 1;
                }
            }
            let cto = i32::try_from(cto).map_err(|_| {
                corrupt(
                    id,
                    "stbl/ctts",
                    Some(idx as u64),
                    format!("offset {cto} out of range"),
                )
            })?;
            // stss (1-based sample numbers, ascending)
            let sync = match stss {
                None => true,
                Some(list) => {
                    let num = idx as u64 + 1;
                    while stss_i < list.len() && u64::from(list[stss_i]) < num {
                        stss_i += 1;
                    }
                    stss_i < list.len() && u64::from(list[stss_i]) == num
                }
            };
            out.push(Sample {
                offset: off,
                dts,
                size,
                cto,
                sync,
            });
            dts = dts.saturating_add(u64::from(delta));
            off = end;
        }
    }
    if out.len() != n_usize {
        return Err(corrupt(
            id,
            "stbl/stsc",
            Some(out.len() as u64),
            format!("chunks hold {} samples, stsz has {n}", out.len()),
        ));
    }
    Ok(out)
}

/// Whether a complete `moov` box (header included) has an `mvex` child: the file is
/// fragmented (ISO/IEC 14496-12 §8.8.1). Reads only box headers.
pub fn has_mvex(moov: &[u8]) -> bool {
    let Some((_, hlen, _)) = box_header(moov) else {
        return false;
    };
    let mut pos = hlen as usize;
    while let Some((kind, _, size)) = moov.get(pos..).and_then(box_header) {
        if &kind == b"mvex" {
            return true;
        }
        match size
            .and_then(|s| usize::try_from(s).ok())
            .filter(|&s| s >= 8)
        {
            Some(s) => pos = pos.saturating_add(s),
            None => break,
        }
    }
    false
}

/// A top-level box header: type, header length and total size in bytes (`None`: to the end
/// of the file). Returns `None` when `buf` is too short for the header.
pub fn box_header(buf: &[u8]) -> Option<([u8; 4], u64, Option<u64>)> {
    if buf.len() < 8 {
        return None;
    }
    let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = [buf[4], buf[5], buf[6], buf[7]];
    match size32 {
        0 => Some((kind, 8, None)),
        1 => {
            if buf.len() < 16 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[8..16]);
            Some((kind, 16, Some(u64::from_be_bytes(b))))
        }
        s => Some((kind, 8, Some(u64::from(s)))),
    }
}

/// A box rewriter for [`rewrite_boxes`]: `(kind, body)` to a replacement whole box.
pub type BoxRewriter<'f> = dyn FnMut(&[u8; 4], &[u8]) -> Result<Option<Vec<u8>>, IndexError> + 'f;

/// Container boxes on the path to the sample tables.
const CONTAINERS: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];

/// Re-serialises a sequence of boxes, descending into the containers on the path to `stbl` (moov, trak, mdia, minf, stbl) and letting `f`
/// replace any other box (`f(kind, body)` returns the new *whole* box, or `None` to keep
/// it). Sizes of the ancestors are recomputed. Errors: a box overrunning its parent.
pub fn rewrite_boxes(buf: &[u8], f: &mut BoxRewriter<'_>) -> Result<Vec<u8>, IndexError> {
    let bad = |reason: String| IndexError::Corrupt {
        track_id: 0,
        box_path: "moov",
        sample: None,
        reason,
    };
    let mut out = Vec::with_capacity(buf.len());
    let mut pos = 0usize;
    while pos < buf.len() {
        let (kind, hlen, size) =
            box_header(&buf[pos..]).ok_or_else(|| bad(format!("truncated box header at {pos}")))?;
        let size = size.unwrap_or((buf.len() - pos) as u64);
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| pos.checked_add(s))
            .filter(|&e| e <= buf.len() && size >= hlen)
            .ok_or_else(|| {
                bad(format!(
                    "box {} at {pos} overruns its parent",
                    String::from_utf8_lossy(&kind)
                ))
            })?;
        let body = &buf[pos + hlen as usize..end];
        if CONTAINERS.contains(&&kind) {
            let inner = rewrite_boxes(body, f)?;
            push_box(&mut out, &kind, &inner);
        } else if let Some(new) = f(&kind, body)? {
            out.extend_from_slice(&new);
        } else {
            out.extend_from_slice(&buf[pos..end]);
        }
        pos = end;
    }
    Ok(out)
}

fn push_box(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    let total = body.len() as u64 + 8;
    if let Ok(t) = u32::try_from(total) {
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(kind);
    } else {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(&(total + 8).to_be_bytes());
    }
    out.extend_from_slice(body);
}

/// `stz2` (ISO/IEC 14496-12 8.7.3.3: 4-, 8- or 16-bit sizes) as the equivalent `stsz`.
fn stz2_to_stsz(kind: &[u8; 4], body: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
    if kind != b"stz2" {
        return Ok(None);
    }
    let bad = |reason: String| IndexError::Corrupt {
        track_id: 0,
        box_path: "stbl/stz2",
        sample: None,
        reason,
    };
    if body.len() < 12 {
        return Err(bad("truncated".into()));
    }
    let field = body[7];
    let count = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
    if u64::from(count) > MAX_SAMPLES {
        return Err(bad(format!("{count} samples (limit {MAX_SAMPLES})")));
    }
    let need = match field {
        4 => (count as usize).div_ceil(2),
        8 => count as usize,
        16 => count as usize * 2,
        other => return Err(bad(format!("field_size {other}"))),
    };
    let table = &body[12..];
    if table.len() < need {
        return Err(bad(format!(
            "{count} entries need {need} bytes, {} present",
            table.len()
        )));
    }
    let mut sizes = Vec::with_capacity(count as usize * 4 + 12);
    sizes.extend_from_slice(&[0, 0, 0, 0]); // version, flags
    sizes.extend_from_slice(&0u32.to_be_bytes()); // sample_size 0: a table follows
    sizes.extend_from_slice(&count.to_be_bytes());
    for i in 0..count as usize {
        let v: u32 = match field {
            4 => {
                let b = table[i / 2];
                u32::from(if i % 2 == 0 { b >> 4 } else { b & 0x0F })
            }
            8 => u32::from(table[i]),
            _ => u32::from(u16::from_be_bytes([table[2 * i], table[2 * i + 1]])),
        };
        sizes.extend_from_slice(&v.to_be_bytes());
    }
    let mut out = Vec::with_capacity(sizes.len() + 8);
    push_box(&mut out, b"stsz", &sizes);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moov_of(data: &[u8]) -> &[u8] {
        let mut pos = 0usize;
        loop {
            let (kind, _, size) = box_header(&data[pos..]).unwrap();
            let size = size.unwrap() as usize;
            if &kind == b"moov" {
                return &data[pos..pos + size];
            }
            pos += size;
        }
    }

    /// `stsz` -> `stz2` (16-bit) as a writer would; the index must not change.
    fn stsz_to_stz2(kind: &[u8; 4], body: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        if kind != b"stsz" {
            return Ok(None);
        }
        let count = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
        let mut b = vec![0, 0, 0, 0, 0, 0, 0, 16];
        b.extend_from_slice(&count.to_be_bytes());
        for i in 0..count as usize {
            let s = u32::from_be_bytes(body[12 + 4 * i..16 + 4 * i].try_into().unwrap());
            b.extend_from_slice(&u16::try_from(s).unwrap().to_be_bytes());
        }
        let mut out = Vec::new();
        push_box(&mut out, b"stz2", &b);
        Ok(Some(out))
    }

    #[test]
    fn stz2_gives_the_same_index_as_stsz() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/clip_360p.mp4");
        let data = std::fs::read(path).unwrap();
        let moov = moov_of(&data);
        let with_stz2 = rewrite_boxes(moov, &mut stsz_to_stz2).unwrap();
        assert!(with_stz2.len() < moov.len());
        let a = index_moov(moov, data.len() as u64).unwrap();
        let b = index_moov(&with_stz2, data.len() as u64).unwrap();
        for (x, y) in a.tracks().zip(b.tracks()) {
            assert_eq!(x.samples, y.samples);
        }
        // A short stz2 table is refused, not read past.
        let mut cut = with_stz2.clone();
        let at = cut.windows(4).position(|w| w == b"stz2").unwrap();
        let count = u32::from_be_bytes(cut[at + 12..at + 16].try_into().unwrap());
        cut[at + 12..at + 16].copy_from_slice(&(count + 1000).to_be_bytes());
        assert!(index_moov(&cut, data.len() as u64).is_err());
    }
}
