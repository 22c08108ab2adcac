//! One fragmented MP4 from two single-track CMAF tracks, without re-encoding (the pure core
//! of a recording download).
//!
//! ffmpeg's DASH muxer writes every representation as its own CMAF track (ISO/IEC 23000-19
//! §7.3): a CMAF header `ftyp moov` with one `trak` whose `track_ID` is 1, and CMAF segments
//! `styp [sidx] [prft] moof mdat [prft moof mdat ...]` whose `moof/traf/tfhd` names track 1
//! too. A movie fragment refers to its track only through `tfhd.track_ID` (ISO/IEC 14496-12
//! §8.8.7); sample data offsets in `trun` are relative to the `moof` (`default-base-is-moof`,
//! required by CMAF) so fragments may be moved and concatenated freely (§8.8.4, §8.8.8).
//! Giving the audio track ID 2 in the header and in every fragment is therefore enough to
//! play a video track and an audio track from one file:
//!
//! ```text
//! merge_inits(video init, audio init):
//!   ftyp                       the video init's, byte for byte
//!   moov
//!     mvhd                     the video's, next_track_ID = 3
//!     trak  tkhd track_ID 1    the video trak, byte for byte
//!     trak  tkhd track_ID 2    the audio trak, byte for byte but track_ID (was 1)
//!     mvex  trex 1, trex 2
//!     [udta ...]               the video moov's other children
//!
//! the file: merged init | video seg 1 | retrack_segment(audio seg 1, 2) | video seg 2 | ...
//!   styp moof(traf/tfhd track_ID 1) mdat ... styp moof(traf/tfhd track_ID 2) mdat ...
//! ```
//!
//! [`retrack_segment`] rewrites only the four bytes of each track reference: `tfhd.track_ID`,
//! and `sidx.reference_ID` (§8.16.3) and `prft.reference_track_ID` (§8.16.5), which name the
//! track too (same length, so every offset in the segment stays valid); `styp`, `emsg`,
//! `mdat` and the rest of every box are left as uploaded. A `sidx` left naming track 1 is
//! not harmless: ffmpeg then counts the audio subsegments as video time. Segments may be
//! concatenated with their `styp`, `sidx` and `prft` boxes in between: ffmpeg and ffprobe
//! read the result without complaint. [`tfhd_track_id_offsets`] gives the positions of those
//! fields so a server can serve the file as lazy slices of the stored segments and patch only
//! the bytes of a `Range` read with [`patch_track_ids`].
//!
//! The segment walker reads box headers itself (§4.2: 32-bit size, or 1 and a 64-bit
//! largesize) and checks every size against the bytes left in its container before using
//! it; it never allocates from a size read in the input.

use bytes::Bytes;
use mp4_atom::{Decode, Encode, Ftyp, Moov};

use crate::error::ErrorKind;

/// Why two CMAF headers could not be merged or a segment could not be retracked.
///
/// Every message names the box path (`moof/traf/tfhd`, `audio init: moov/trak`) and, where
/// there is one, the byte offset of the box from the start of that input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MuxError {
    /// Fewer bytes are left in the container than a box header needs (8, or 16 when the
    /// 32-bit size is 1 and a 64-bit largesize follows).
    #[error("{parent} at offset {offset}: {available} bytes left, too few for a {needed}-byte box header")]
    TruncatedHeader {
        parent: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// A box declares a size smaller than its own header.
    #[error(
        "{path} at offset {offset}: declared size {size} is below its {header_len}-byte header"
    )]
    BadSize {
        path: String,
        offset: u64,
        size: u64,
        header_len: u64,
    },
    /// A box declares more bytes than are left in its container (the input was cut, or the
    /// size is hostile).
    #[error("{path} at offset {offset}: declared size {size} exceeds the {available} bytes left")]
    Truncated {
        path: String,
        offset: u64,
        size: u64,
        available: u64,
    },
    /// A box has size 0 ("runs to the end of the file"): legal for the last box of a file,
    /// but it would swallow whatever is concatenated after it.
    #[error("{path} at offset {offset}: size 0 (box runs to the end of the file) cannot be concatenated")]
    SizeToEnd { path: String, offset: u64 },
    /// A box body is too short for the fields it must hold.
    #[error("{path} at offset {offset}: body of {len} bytes, {needed} needed")]
    ShortBody {
        path: String,
        offset: u64,
        len: u64,
        needed: u64,
    },
    /// mp4-atom could not decode a box.
    #[error("{path} at offset {offset}: {reason}")]
    Decode {
        path: String,
        offset: u64,
        reason: String,
    },
    /// A required box is missing.
    #[error("{path}: no {missing} box")]
    Missing { path: String, missing: &'static str },
    /// A box that must be unique in its container appears again.
    #[error("{path} at offset {offset}: a second one in the same container")]
    Duplicate { path: String, offset: u64 },
    /// A CMAF header with other than exactly one track.
    #[error("{path}: {count} trak boxes, a CMAF header has exactly one")]
    TrackCount { path: String, count: usize },
    /// The track is not of the expected media kind (arguments swapped, or a text track).
    #[error("{path}: handler '{found}', expected '{expected}'")]
    WrongHandler {
        path: String,
        found: String,
        expected: &'static str,
    },
    /// The track references of a segment (`tfhd`, `sidx`, `prft`) name different tracks; a
    /// CMAF track segment carries one.
    #[error("{path} at offset {offset}: track ID {found}, but an earlier box of this segment names {first}")]
    MixedTracks {
        path: String,
        offset: u64,
        first: u32,
        found: u32,
    },
    /// A duration cannot be moved to the video movie timescale (audio `mvhd.timescale` is 0).
    #[error("{path}: timescale 0, cannot rescale durations")]
    ZeroTimescale { path: String },
    /// `track_ID` 0 was asked for; it is reserved (ISO/IEC 14496-12 §8.3.2.3).
    #[error("track_ID 0 is reserved")]
    ZeroTrackId,
    /// mp4-atom could not encode the merged box (a bug on our side).
    #[error("encoding {path}: {reason}")]
    Encode { path: String, reason: String },
}

impl MuxError {
    /// [`ErrorKind::Unsupported`] for valid input this module cannot use (a header with not
    /// exactly one track, the wrong media kind, several tracks in one segment, a size-0
    /// box), [`ErrorKind::Internal`] for a caller or encoder bug, [`ErrorKind::Corrupt`] for
    /// everything malformed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MuxError::TrackCount { .. }
            | MuxError::WrongHandler { .. }
            | MuxError::MixedTracks { .. }
            | MuxError::SizeToEnd { .. } => ErrorKind::Unsupported,
            MuxError::ZeroTrackId | MuxError::Encode { .. } => ErrorKind::Internal,
            MuxError::TruncatedHeader { .. }
            | MuxError::BadSize { .. }
            | MuxError::Truncated { .. }
            | MuxError::ShortBody { .. }
            | MuxError::Decode { .. }
            | MuxError::Missing { .. }
            | MuxError::Duplicate { .. }
            | MuxError::ZeroTimescale { .. } => ErrorKind::Corrupt,
        }
    }
}

/// Track ID of the video track in the merged file.
pub const VIDEO_TRACK_ID: u32 = 1;
/// Track ID of the audio track in the merged file: pass it to [`retrack_segment`].
pub const AUDIO_TRACK_ID: u32 = 2;

/// Merges the CMAF headers of a video track and an audio track into one `ftyp moov`.
///
/// Each input is a CMAF header (`ftyp moov`; other top-level boxes are ignored) whose `moov`
/// has exactly one `trak` and an `mvex` with that track's `trex`. The output is:
/// - the video `ftyp`, byte for byte;
/// - a `moov` holding the video `mvhd` with `next_track_ID` 3 and the larger duration of
///   both (encoded by mp4-atom), the video `trak` as `track_ID` [`VIDEO_TRACK_ID`] (1) and
///   the audio `trak` as [`AUDIO_TRACK_ID`] (2), each byte for byte but for `tkhd.track_ID`,
///   an `mvex` with both `trex` renumbered the same way (and the larger `mehd`, if the video
///   has one), then the video `moov`'s other children (`udta`, ...) as they were.
///
/// The `trak` boxes are copied rather than re-encoded because mp4-atom drops child boxes it
/// does not know (HDR `mdcv`/`clli` in a sample entry, say) and rewrites others (`esds`
/// descriptor lengths, `tkhd` version). When the two `mvhd.timescale` differ, the audio
/// `tkhd.duration` and `elst` segment durations (movie timescale) are rescaled in place.
///
/// Segments of the video track can then be appended as they are when its `tkhd` said track
/// 1 (ffmpeg's do); segments of the audio track go through [`retrack_segment`] with
/// [`AUDIO_TRACK_ID`].
///
/// Errors: [`MuxError::TrackCount`] and [`MuxError::WrongHandler`] (video handler not
/// `vide`, audio not `soun`) are [`ErrorKind::Unsupported`]; malformed boxes and a missing
/// `ftyp`, `moov`, `mvex` or `trex` are [`ErrorKind::Corrupt`].
pub fn merge_inits(video_init: &[u8], audio_init: &[u8]) -> Result<Bytes, MuxError> {
    let video = read_init(video_init, "video init:", b"vide")?;
    let audio = read_init(audio_init, "audio init:", b"soun")?;

    // tkhd and elst durations are in the movie timescale (mvhd), which may differ.
    let to = video.moov.mvhd.timescale;
    let from = audio.moov.mvhd.timescale;
    let audio_mvhd = || "audio init: moov/mvhd".to_string();

    let mut video_trak = video.trak.to_vec();
    write_be(
        &mut video_trak,
        video.track_id_at,
        4,
        u64::from(VIDEO_TRACK_ID),
    );
    let mut audio_trak = audio.trak.to_vec();
    write_be(
        &mut audio_trak,
        audio.track_id_at,
        4,
        u64::from(AUDIO_TRACK_ID),
    );
    if from != to {
        for &(at, width) in &audio.durations {
            let value = read_be(&audio_trak, at, width);
            let unknown = if width == 4 {
                u64::from(u32::MAX)
            } else {
                u64::MAX
            };
            if value != unknown {
                let scaled = rescale(value, from, to, audio_mvhd)?.min(unknown);
                write_be(&mut audio_trak, at, width, scaled);
            }
        }
    }

    let mut mvhd = video.moov.mvhd.clone();
    let audio_duration = rescale(audio.moov.mvhd.duration, from, to, audio_mvhd)?;
    mvhd.duration = mvhd.duration.max(audio_duration);
    mvhd.next_track_id = AUDIO_TRACK_ID + 1;

    // read_init checked that both have an mvex.
    let mut mvex = video.moov.mvex.clone().unwrap_or_default();
    if let (Some(mehd), Some(audio_mehd)) = (
        mvex.mehd.as_mut(),
        audio.moov.mvex.as_ref().and_then(|m| m.mehd.as_ref()),
    ) {
        let audio_duration = rescale(audio_mehd.fragment_duration, from, to, audio_mvhd)?;
        mehd.fragment_duration = mehd.fragment_duration.max(audio_duration);
    }
    let mut video_trex = video.trex.clone();
    video_trex.track_id = VIDEO_TRACK_ID;
    let mut audio_trex = audio.trex.clone();
    audio_trex.track_id = AUDIO_TRACK_ID;
    mvex.trex = vec![video_trex, audio_trex];

    let encode_err = |path: &str, e: mp4_atom::Error| MuxError::Encode {
        path: path.to_string(),
        reason: e.to_string(),
    };
    let mut body = Vec::new();
    mvhd.encode(&mut body)
        .map_err(|e| encode_err("moov/mvhd", e))?;
    body.extend_from_slice(&video_trak);
    body.extend_from_slice(&audio_trak);
    mvex.encode(&mut body)
        .map_err(|e| encode_err("moov/mvex", e))?;
    for other in &video.others {
        body.extend_from_slice(other);
    }

    let mut out = Vec::with_capacity(video.ftyp.len() + 16 + body.len());
    out.extend_from_slice(video.ftyp);
    write_box_header(&mut out, b"moov", body.len());
    out.extend_from_slice(&body);
    Ok(Bytes::from(out))
}

/// Returns a copy of a CMAF segment (or chunk) with every track reference set to
/// `new_track_id`: `moof/traf/tfhd.track_ID`, and the `sidx.reference_ID` and
/// `prft.reference_track_ID` that name the same track. Same length; every other byte
/// (`styp`, `emsg`, `mdat`, the rest of each box) unchanged.
///
/// `segment` is a whole number of top-level boxes (`styp`, `sidx`, `prft`, `emsg`, `moof`,
/// `mdat`; anything else is skipped by its size).
///
/// Errors: those of [`tfhd_track_id_offsets`], and [`MuxError::ZeroTrackId`]
/// ([`ErrorKind::Internal`]) for `new_track_id` 0.
pub fn retrack_segment(segment: &[u8], new_track_id: u32) -> Result<Bytes, MuxError> {
    if new_track_id == 0 {
        return Err(MuxError::ZeroTrackId);
    }
    let offsets = tfhd_track_id_offsets(segment)?;
    let mut out = segment.to_vec();
    patch_track_ids(&mut out, 0, &offsets, new_track_id);
    Ok(Bytes::from(out))
}

/// Byte offsets, from the start of `segment`, of every 4-byte big-endian track ID field
/// that [`retrack_segment`] rewrites, ascending: `track_ID` of each `moof/traf/tfhd` (ISO/IEC
/// 14496-12 §8.8.7) and, despite the name, also `reference_ID` of each top-level `sidx`
/// (§8.16.3) and `reference_track_ID` of each top-level `prft` (§8.16.5).
///
/// The `sidx` ones matter: ffmpeg's non-low-latency DASH segments start with a `sidx`, and
/// an audio `sidx` still naming track 1 in the merged file makes ffmpeg's demuxer add audio
/// durations to the video track (ffprobe then reports 18.8 s for a 6 s recording).
///
/// Walks every top-level box header, every `moof` child and every `traf` child, checking each
/// size against the bytes left in its container (64-bit largesize included).
///
/// Errors ([`ErrorKind::Corrupt`] unless noted): [`MuxError::TruncatedHeader`],
/// [`MuxError::BadSize`], [`MuxError::Truncated`] (a box running past its container, e.g. a
/// cut segment), [`MuxError::SizeToEnd`] (size 0, [`ErrorKind::Unsupported`]),
/// [`MuxError::ShortBody`] (a `tfhd`, `sidx` or `prft` under 8 body bytes),
/// [`MuxError::Missing`] (a `traf` without `tfhd`), [`MuxError::Duplicate`] (two `tfhd` in one
/// `traf`), [`MuxError::MixedTracks`] (fields naming different tracks,
/// [`ErrorKind::Unsupported`]).
pub fn tfhd_track_id_offsets(segment: &[u8]) -> Result<Vec<u64>, MuxError> {
    let mut refs = TrackRefs {
        segment,
        offsets: Vec::new(),
        first_id: None,
    };
    for top in Children::new(segment, 0, segment.len(), "") {
        let b = top?;
        match &b.kind {
            // FullBox version and flags, then reference_ID / reference_track_ID.
            b"sidx" | b"prft" => refs.record(&b, &b.path(""))?,
            b"moof" => refs.moof(&b)?,
            _ => {}
        }
    }
    Ok(refs.offsets)
}

/// The track ID fields of one segment, collected in file order.
struct TrackRefs<'a> {
    segment: &'a [u8],
    offsets: Vec<u64>,
    /// The track ID of the first field; every other must be equal.
    first_id: Option<u32>,
}

impl TrackRefs<'_> {
    fn moof(&mut self, moof: &BoxRef) -> Result<(), MuxError> {
        let segment = self.segment;
        for child in Children::new(segment, moof.body_start(), moof.end, "moof") {
            let traf = child?;
            if &traf.kind != b"traf" {
                continue;
            }
            let mut tfhd = None;
            for grandchild in Children::new(segment, traf.body_start(), traf.end, "moof/traf") {
                let b = grandchild?;
                if &b.kind != b"tfhd" {
                    continue;
                }
                if tfhd.is_some() {
                    return Err(MuxError::Duplicate {
                        path: "moof/traf/tfhd".to_string(),
                        offset: b.start as u64,
                    });
                }
                tfhd = Some(b);
            }
            let Some(tfhd) = tfhd else {
                return Err(MuxError::Missing {
                    path: format!("moof/traf at offset {}", traf.start),
                    missing: "tfhd",
                });
            };
            // FullBox version and flags, then track_ID.
            self.record(&tfhd, "moof/traf/tfhd")?;
        }
        Ok(())
    }

    /// Records the track ID at body offset 4 of the FullBox `b`.
    fn record(&mut self, b: &BoxRef, path: &str) -> Result<(), MuxError> {
        need_body(b, 8, path)?;
        let at = b.body_start() + 4;
        let id = be_u32(self.segment, at);
        match self.first_id {
            None => self.first_id = Some(id),
            Some(first) if first != id => {
                return Err(MuxError::MixedTracks {
                    path: path.to_string(),
                    offset: b.start as u64,
                    first,
                    found: id,
                })
            }
            Some(_) => {}
        }
        self.offsets.push(at as u64);
        Ok(())
    }
}

/// Subtracts `minus` ticks (the track's timescale) from every `moof/traf/tfdt`
/// `baseMediaDecodeTime` of `segment` (ISO/IEC 14496-12 §8.8.12), in place and saturating
/// at 0, keeping each box's version (so the length is unchanged). Used to start a recording
/// download at time 0 instead of the encoder's running media time.
///
/// Errors ([`ErrorKind::Corrupt`]): [`MuxError::TruncatedHeader`], [`MuxError::BadSize`],
/// [`MuxError::Truncated`], [`MuxError::ShortBody`] (a `tfdt` too short for its version),
/// [`MuxError::Decode`] (an unknown `tfdt` version); `segment` is then unchanged.
pub fn rebase_decode_times(segment: &mut [u8], minus: u64) -> Result<(), MuxError> {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    for top in Children::new(segment, 0, segment.len(), "") {
        let moof = top?;
        if &moof.kind != b"moof" {
            continue;
        }
        for child in Children::new(segment, moof.body_start(), moof.end, "moof") {
            let traf = child?;
            if &traf.kind != b"traf" {
                continue;
            }
            for grandchild in Children::new(segment, traf.body_start(), traf.end, "moof/traf") {
                let b = grandchild?;
                if &b.kind != b"tfdt" {
                    continue;
                }
                need_body(&b, 4, "moof/traf/tfdt")?;
                let width = match segment[b.body_start()] {
                    0 => 4,
                    1 => 8,
                    v => {
                        return Err(MuxError::Decode {
                            path: "moof/traf/tfdt".to_string(),
                            offset: b.start as u64,
                            reason: format!("unknown version {v}"),
                        })
                    }
                };
                need_body(&b, 4 + width, "moof/traf/tfdt")?;
                fields.push((b.body_start() + 4, width));
            }
        }
    }
    for (at, width) in fields {
        let t = read_be(segment, at, width);
        write_be(segment, at, width, t.saturating_sub(minus));
    }
    Ok(())
}

/// Writes `new_track_id` (big-endian) into the part of each 4-byte field at `field_offsets`
/// that falls inside `window`, where `window` holds the segment bytes starting at byte
/// `window_start` of the segment. A window cutting a field patches only its own bytes, so
/// patching every piece of a segment read by ranges gives [`retrack_segment`]'s bytes.
///
/// `field_offsets` is the sorted output of [`tfhd_track_id_offsets`] for that segment.
pub fn patch_track_ids(
    window: &mut [u8],
    window_start: u64,
    field_offsets: &[u64],
    new_track_id: u32,
) {
    let id = new_track_id.to_be_bytes();
    let window_end = window_start.saturating_add(window.len() as u64);
    let first = field_offsets.partition_point(|&f| f.saturating_add(4) <= window_start);
    for &field in &field_offsets[first..] {
        if field >= window_end {
            break;
        }
        let lo = field.max(window_start);
        let hi = field.saturating_add(4).min(window_end);
        for pos in lo..hi {
            // pos - window_start < window.len() and pos - field < 4 by the bounds above.
            window[(pos - window_start) as usize] = id[(pos - field) as usize];
        }
    }
}

/// The parts of one CMAF header that [`merge_inits`] needs.
struct Init<'a> {
    /// The whole `ftyp` box as it came in.
    ftyp: &'a [u8],
    /// The decoded `moov` (for `mvhd` and `mvex`).
    moov: Moov,
    /// The whole `trak` box as it came in.
    trak: &'a [u8],
    /// Offset in `trak` of `tkhd.track_ID` (4 bytes).
    track_id_at: usize,
    /// Offset in `trak` and width (4 or 8 bytes) of every duration in the movie timescale:
    /// `tkhd.duration` and each `elst` `segment_duration`.
    durations: Vec<(usize, usize)>,
    /// The track's `trex`.
    trex: mp4_atom::Trex,
    /// `moov` children other than `mvhd`, `trak` and `mvex`, whole.
    others: Vec<&'a [u8]>,
}

/// Finds `ftyp` and `moov`, decodes them with mp4-atom, checks there is one track with the
/// expected handler and a `trex`, and finds the fields [`merge_inits`] patches.
fn read_init<'a>(
    init: &'a [u8],
    name: &str,
    handler: &'static [u8; 4],
) -> Result<Init<'a>, MuxError> {
    let mut ftyp = None;
    let mut moov = None;
    for top in Children::new(init, 0, init.len(), name) {
        let b = top?;
        let slot = match &b.kind {
            b"ftyp" => &mut ftyp,
            b"moov" => &mut moov,
            _ => continue,
        };
        if slot.is_some() {
            return Err(MuxError::Duplicate {
                path: b.path(name),
                offset: b.start as u64,
            });
        }
        *slot = Some(b);
    }
    let missing = |what| MuxError::Missing {
        path: name.trim_end_matches(':').to_string(),
        missing: what,
    };
    let ftyp_box = ftyp.ok_or_else(|| missing("ftyp"))?;
    let moov_box = moov.ok_or_else(|| missing("moov"))?;
    let decode_err = |b: &BoxRef, e: mp4_atom::Error| MuxError::Decode {
        path: b.path(name),
        offset: b.start as u64,
        reason: e.to_string(),
    };
    Ftyp::decode(&mut ftyp_box.bytes(init)).map_err(|e| decode_err(&ftyp_box, e))?;
    crate::cmaf::guard::check(moov_box.bytes(init)).map_err(|e| MuxError::Decode {
        path: moov_box.path(name),
        offset: moov_box.start as u64,
        reason: e.to_string(),
    })?;
    let moov = Moov::decode(&mut moov_box.bytes(init)).map_err(|e| decode_err(&moov_box, e))?;

    let moov_path = moov_box.path(name);
    let mut traks = Vec::new();
    let mut others = Vec::new();
    for child in Children::new(init, moov_box.body_start(), moov_box.end, &moov_path) {
        let b = child?;
        match &b.kind {
            b"trak" => traks.push(b),
            b"mvhd" | b"mvex" => {}
            _ => others.push(b.bytes(init)),
        }
    }
    if moov.trak.len() != 1 || traks.len() != 1 {
        return Err(MuxError::TrackCount {
            path: moov_path,
            count: moov.trak.len().max(traks.len()),
        });
    }
    let trak = traks[0];
    let trak_path = trak.path(&moov_path);

    let found = moov.trak[0].mdia.hdlr.handler;
    if found.as_ref() != handler.as_slice() {
        return Err(MuxError::WrongHandler {
            path: format!("{trak_path}/mdia/hdlr"),
            found: fourcc_text(found.as_ref()),
            expected: std::str::from_utf8(handler).unwrap_or("?"),
        });
    }

    let track_id = moov.trak[0].tkhd.track_id;
    let mvex = moov.mvex.as_ref().ok_or_else(|| MuxError::Missing {
        path: moov_path.clone(),
        missing: "mvex",
    })?;
    let trex = mvex
        .trex
        .iter()
        .find(|t| t.track_id == track_id)
        .cloned()
        .ok_or_else(|| MuxError::Missing {
            path: format!("{moov_path}/mvex"),
            missing: "trex for the track's track_ID",
        })?;

    let (track_id_at, durations) = trak_fields(init, &trak, &trak_path)?;
    Ok(Init {
        ftyp: ftyp_box.bytes(init),
        trak: trak.bytes(init),
        track_id_at: track_id_at - trak.start,
        durations: durations
            .into_iter()
            .map(|(at, width)| (at - trak.start, width))
            .collect(),
        moov,
        trex,
        others,
    })
}

/// Absolute offsets in `init` of `trak/tkhd.track_ID`, and of the movie-timescale durations
/// (`tkhd.duration`, every `trak/edts/elst` `segment_duration`) with their widths.
///
/// `tkhd` (ISO/IEC 14496-12 §8.3.2): version 1 has 64-bit creation and modification times
/// then `track_ID`, reserved, a 64-bit duration; version 0 the same with 32-bit times and
/// duration. `elst` (§8.6.6): `entry_count`, then entries of 20 (version 1) or 12 bytes whose
/// first field is `segment_duration`.
fn trak_fields(
    init: &[u8],
    trak: &BoxRef,
    trak_path: &str,
) -> Result<(usize, Vec<(usize, usize)>), MuxError> {
    let mut tkhd = None;
    let mut elst = None;
    for child in Children::new(init, trak.body_start(), trak.end, trak_path) {
        let b = child?;
        match &b.kind {
            b"tkhd" => tkhd = Some(b),
            b"edts" => {
                let edts_path = b.path(trak_path);
                for grandchild in Children::new(init, b.body_start(), b.end, &edts_path) {
                    let e = grandchild?;
                    if &e.kind == b"elst" {
                        elst = Some((e, e.path(&edts_path)));
                    }
                }
            }
            _ => {}
        }
    }
    let tkhd = tkhd.ok_or_else(|| MuxError::Missing {
        path: trak_path.to_string(),
        missing: "tkhd",
    })?;
    let tkhd_path = tkhd.path(trak_path);
    let (id_at, duration_at, width) = match full_box_version(init, &tkhd, &tkhd_path)? {
        1 => (20, 28, 8),
        _ => (12, 20, 4),
    };
    need_body(&tkhd, duration_at + width, &tkhd_path)?;
    let body = tkhd.body_start();
    let mut durations = vec![(body + duration_at, width)];

    if let Some((elst, elst_path)) = elst {
        let entry_len = match full_box_version(init, &elst, &elst_path)? {
            1 => 20,
            _ => 12,
        };
        need_body(&elst, 8, &elst_path)?;
        let count = be_u32(init, elst.body_start() + 4) as usize;
        let needed = count
            .checked_mul(entry_len)
            .and_then(|n| n.checked_add(8))
            .unwrap_or(usize::MAX);
        need_body(&elst, needed, &elst_path)?;
        let width = if entry_len == 20 { 8 } else { 4 };
        // count is bounded by the body length checked just above.
        for i in 0..count {
            durations.push((elst.body_start() + 8 + i * entry_len, width));
        }
    }
    Ok((body + id_at, durations))
}

/// The version byte of a FullBox (0 or 1 accepted).
fn full_box_version(data: &[u8], b: &BoxRef, path: &str) -> Result<u8, MuxError> {
    need_body(b, 4, path)?;
    match data[b.body_start()] {
        v @ (0 | 1) => Ok(v),
        v => Err(MuxError::Decode {
            path: path.to_string(),
            offset: b.start as u64,
            reason: format!("unknown version {v}"),
        }),
    }
}

/// [`MuxError::ShortBody`] unless the body of `b` has at least `needed` bytes.
fn need_body(b: &BoxRef, needed: usize, path: &str) -> Result<(), MuxError> {
    let len = b.end - b.body_start();
    if len < needed {
        return Err(MuxError::ShortBody {
            path: path.to_string(),
            offset: b.start as u64,
            len: len as u64,
            needed: needed as u64,
        });
    }
    Ok(())
}

/// Appends a box header for a body of `body_len` bytes (64-bit largesize when needed).
fn write_box_header(out: &mut Vec<u8>, kind: &[u8; 4], body_len: usize) {
    let size = body_len as u64 + 8;
    match u32::try_from(size) {
        Ok(size) => {
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(kind);
        }
        Err(_) => {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(&(size + 8).to_be_bytes());
        }
    }
}

/// Big-endian unsigned integer of `width` (4 or 8) bytes at `at`; bounds checked by the caller.
fn read_be(data: &[u8], at: usize, width: usize) -> u64 {
    data[at..at + width]
        .iter()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Writes the low `width` (4 or 8) bytes of `value` big-endian at `at`; bounds checked by
/// the caller.
fn write_be(data: &mut [u8], at: usize, width: usize, value: u64) {
    data[at..at + width].copy_from_slice(&value.to_be_bytes()[8 - width..]);
}

/// `value` ticks of timescale `from` in timescale `to`, rounded down, saturating at
/// `u64::MAX`. Zero stays zero whatever the timescales.
fn rescale(value: u64, from: u32, to: u32, path: impl Fn() -> String) -> Result<u64, MuxError> {
    if from == to || value == 0 {
        return Ok(value);
    }
    if from == 0 {
        return Err(MuxError::ZeroTimescale { path: path() });
    }
    let scaled = u128::from(value) * u128::from(to) / u128::from(from);
    Ok(u64::try_from(scaled).unwrap_or(u64::MAX))
}

/// A box header read from the input, its sizes checked against its container.
#[derive(Debug, Clone, Copy)]
struct BoxRef {
    kind: [u8; 4],
    /// Offset of the first header byte, from the start of the input.
    start: usize,
    /// 8, or 16 with a 64-bit largesize.
    header_len: usize,
    /// Offset one past the last byte of the box; never past its container.
    end: usize,
}

impl BoxRef {
    fn body_start(&self) -> usize {
        self.start + self.header_len
    }

    /// The whole box, header included.
    fn bytes<'a>(&self, input: &'a [u8]) -> &'a [u8] {
        &input[self.start..self.end]
    }

    fn path(&self, parent: &str) -> String {
        child_path(parent, &self.kind)
    }
}

/// The child boxes of `data[start..end]`, in order. Yields one error and stops at the first
/// malformed header.
struct Children<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
    parent: &'a str,
}

impl<'a> Children<'a> {
    /// `end <= data.len()`; `parent` is the container's path ("" at the top level).
    fn new(data: &'a [u8], start: usize, end: usize, parent: &'a str) -> Self {
        let end = end.min(data.len());
        Children {
            data,
            pos: start.min(end),
            end,
            parent,
        }
    }

    fn header(&self) -> Result<BoxRef, MuxError> {
        let (data, pos) = (self.data, self.pos);
        let available = (self.end - pos) as u64;
        let truncated = |needed| MuxError::TruncatedHeader {
            parent: if self.parent.is_empty() {
                "segment".to_string()
            } else {
                self.parent.trim_end_matches(':').to_string()
            },
            offset: pos as u64,
            needed,
            available,
        };
        if available < 8 {
            return Err(truncated(8));
        }
        let kind = [data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]];
        let path = || child_path(self.parent, &kind);
        let (size, header_len) = match be_u32(data, pos) {
            0 => {
                return Err(MuxError::SizeToEnd {
                    path: path(),
                    offset: pos as u64,
                })
            }
            1 => {
                if available < 16 {
                    return Err(truncated(16));
                }
                (be_u64(data, pos + 8), 16)
            }
            size => (u64::from(size), 8),
        };
        if size < header_len {
            return Err(MuxError::BadSize {
                path: path(),
                offset: pos as u64,
                size,
                header_len,
            });
        }
        if size > available {
            return Err(MuxError::Truncated {
                path: path(),
                offset: pos as u64,
                size,
                available,
            });
        }
        Ok(BoxRef {
            kind,
            start: pos,
            header_len: header_len as usize,
            // size <= available = end - pos, so this neither overflows nor passes end.
            end: pos + size as usize,
        })
    }
}

impl Iterator for Children<'_> {
    type Item = Result<BoxRef, MuxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let header = self.header();
        self.pos = match &header {
            Ok(b) => b.end,
            Err(_) => self.end,
        };
        Some(header)
    }
}

/// `parent/kind`, or `kind` at the top level; a parent ending in ':' names an input
/// ("audio init:") and is followed by a space.
fn child_path(parent: &str, kind: &[u8; 4]) -> String {
    let kind = fourcc_text(kind);
    if parent.is_empty() {
        kind
    } else if parent.ends_with(':') {
        format!("{parent} {kind}")
    } else {
        format!("{parent}/{kind}")
    }
}

/// A four-character code as text, non-printable bytes as `\xNN`.
fn fourcc_text(kind: &[u8]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// Big-endian u32 at `at`; the caller has checked `at + 4 <= data.len()`.
fn be_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Big-endian u64 at `at`; the caller has checked `at + 8 <= data.len()`.
fn be_u64(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[at..at + 8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod rebase_tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn tfdt_v0_and_v1_are_rebased_and_bad_ones_refused() {
        let mut tfdt0 = vec![0, 0, 0, 0];
        tfdt0.extend_from_slice(&9000u32.to_be_bytes());
        let mut tfdt1 = vec![1, 0, 0, 0];
        tfdt1.extend_from_slice(&(5u64 << 33).to_be_bytes());
        let traf = [bx(b"tfhd", &[0; 8]), bx(b"tfdt", &tfdt0)].concat();
        let traf1 = [bx(b"tfhd", &[0; 8]), bx(b"tfdt", &tfdt1)].concat();
        let moof = bx(b"moof", &[bx(b"traf", &traf), bx(b"traf", &traf1)].concat());
        let mut seg = [bx(b"styp", b"cmfs"), moof, bx(b"mdat", &[7; 5])].concat();
        let before = seg.clone();
        rebase_decode_times(&mut seg, 1000).unwrap();
        assert_eq!(seg.len(), before.len());
        let s = &seg[..];
        let find = |needle: &[u8]| s.windows(4).position(|w| w == needle).unwrap();
        let at0 = find(b"tfdt") + 8;
        assert_eq!(read_be(s, at0, 4), 8000);
        let at1 = s[at0..].windows(4).position(|w| w == b"tfdt").unwrap() + at0 + 8;
        assert_eq!(read_be(s, at1, 8), (5u64 << 33) - 1000);
        // Saturating at 0; a cut segment and an unknown version are errors, unchanged.
        let mut again = before.clone();
        rebase_decode_times(&mut again, u64::MAX).unwrap();
        assert_eq!(read_be(&again, at0, 4), 0);
        let mut cut = before[..before.len() - 20].to_vec();
        let copy = cut.clone();
        assert!(rebase_decode_times(&mut cut, 1).is_err());
        assert_eq!(cut, copy);
        let mut bad = before.clone();
        bad[at0 - 4] = 7;
        assert!(rebase_decode_times(&mut bad, 1).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    // ---- synthetic boxes -------------------------------------------------------------

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(payload.len() + 8)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    /// A box with a 64-bit largesize header.
    fn boxed_large(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = 1u32.to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(&(payload.len() as u64 + 16).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn tfhd(track_id: u32) -> Vec<u8> {
        // version 0, flags default-base-is-moof (0x020000), track_ID.
        let mut body = vec![0, 0x02, 0, 0];
        body.extend_from_slice(&track_id.to_be_bytes());
        boxed(b"tfhd", &body)
    }

    fn moof(track_id: u32) -> Vec<u8> {
        let mfhd = boxed(b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 1]);
        let tfdt = boxed(b"tfdt", &[0; 8]);
        let traf = boxed(b"traf", &[tfhd(track_id), tfdt].concat());
        boxed(b"moof", &[mfhd, traf].concat())
    }

    /// A FullBox version 0 body starting with a track ID (`sidx`, `prft`), padded to `len`.
    fn track_ref_body(track_id: u32, len: usize) -> Vec<u8> {
        let mut body = vec![0; len];
        body[4..8].copy_from_slice(&track_id.to_be_bytes());
        body
    }

    /// `styp sidx prft moof mdat prft moof mdat(largesize)`, all naming track 1.
    fn synthetic_segment() -> Vec<u8> {
        [
            boxed(b"styp", b"msdh\0\0\0\0msdhmsix"),
            boxed(b"sidx", &track_ref_body(1, 32)),
            boxed(b"prft", &track_ref_body(1, 20)),
            moof(1),
            boxed(b"mdat", &[0xAA; 32]),
            boxed(b"prft", &track_ref_body(1, 20)),
            moof(1),
            boxed_large(b"mdat", &[0xBB; 24]),
        ]
        .concat()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cmaf")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    // ---- retrack_segment / tfhd_track_id_offsets --------------------------------------

    #[test]
    fn retrack_patches_only_track_id_fields() {
        let seg = synthetic_segment();
        let offsets = tfhd_track_id_offsets(&seg).unwrap();
        // sidx, prft, tfhd, prft, tfhd.
        assert_eq!(offsets, [36, 76, 136, 208, 268]);
        let out = retrack_segment(&seg, 7).unwrap();
        assert_eq!(out.len(), seg.len());
        for (i, (a, b)) in seg.iter().zip(out.iter()).enumerate() {
            let in_field = offsets.iter().any(|&o| (o..o + 4).contains(&(i as u64)));
            if !in_field {
                assert_eq!(a, b, "byte {i} changed");
            }
        }
        for &o in &offsets {
            assert_eq!(be_u32(&seg, o as usize), 1);
            assert_eq!(be_u32(&out, o as usize), 7);
        }
    }

    #[test]
    fn retrack_real_ffmpeg_segment_round_trips_through_mp4_atom() {
        // ffmpeg 5.1 LL-DASH, 4 CMAF chunks per segment (tests/fixtures/cmaf/README.md).
        let seg = fixture("ffmpeg_ldash_640x360_seg2.m4s");
        let offsets = tfhd_track_id_offsets(&seg).unwrap();
        let top: Vec<BoxRef> = Children::new(&seg, 0, seg.len(), "")
            .map(|b| b.unwrap())
            .collect();
        let count = |kind: &[u8; 4]| top.iter().filter(|b| &b.kind == kind).count();
        assert_eq!(count(b"moof"), 4, "one moof per CMAF chunk");
        assert_eq!(
            offsets.len(),
            count(b"moof") + count(b"sidx") + count(b"prft")
        );
        let out = retrack_segment(&seg, AUDIO_TRACK_ID).unwrap();
        let changed: Vec<usize> = (0..seg.len()).filter(|&i| seg[i] != out[i]).collect();
        // 1 -> 2 changes only the last byte of each field.
        let expected: Vec<usize> = offsets.iter().map(|&o| o as usize + 3).collect();
        assert_eq!(changed, expected);
        // An independent decoder sees track 2 in every moof and prft.
        let mut moofs = 0;
        for b in &top {
            let mut bytes = b.bytes(&out);
            match &b.kind {
                b"moof" => {
                    let moof = mp4_atom::Moof::decode(&mut bytes).unwrap();
                    assert!(moof.traf.iter().all(|t| t.tfhd.track_id == AUDIO_TRACK_ID));
                    moofs += 1;
                }
                b"prft" => {
                    let prft = mp4_atom::Prft::decode(&mut bytes).unwrap();
                    assert_eq!(prft.reference_track_id, AUDIO_TRACK_ID);
                }
                _ => {}
            }
        }
        assert_eq!(moofs, 4);
    }

    #[test]
    fn patch_track_ids_by_ranges_equals_retrack() {
        let seg = synthetic_segment();
        let offsets = tfhd_track_id_offsets(&seg).unwrap();
        let whole = retrack_segment(&seg, 0x0102_0304).unwrap();
        // Every split of the segment into two ranges, so windows cut fields anywhere.
        for cut in 0..=seg.len() {
            let mut head = seg[..cut].to_vec();
            let mut tail = seg[cut..].to_vec();
            patch_track_ids(&mut head, 0, &offsets, 0x0102_0304);
            patch_track_ids(&mut tail, cut as u64, &offsets, 0x0102_0304);
            assert_eq!([head, tail].concat(), whole.as_ref(), "cut at {cut}");
        }
        // 3-byte windows everywhere.
        for start in 0..seg.len() {
            let end = (start + 3).min(seg.len());
            let mut w = seg[start..end].to_vec();
            patch_track_ids(&mut w, start as u64, &offsets, 0x0102_0304);
            assert_eq!(w, &whole[start..end], "window at {start}");
        }
    }

    #[test]
    fn zero_track_id_is_refused() {
        let err = retrack_segment(&synthetic_segment(), 0).unwrap_err();
        assert_eq!(err, MuxError::ZeroTrackId);
        assert_eq!(err.kind(), ErrorKind::Internal);
    }

    // ---- hostile segments ---------------------------------------------------------------

    #[test]
    fn every_truncation_is_an_error_or_a_box_boundary() {
        let seg = synthetic_segment();
        let boundaries: Vec<usize> = {
            let mut v = vec![0];
            v.extend(Children::new(&seg, 0, seg.len(), "").map(|b| b.unwrap().end));
            v
        };
        for len in 0..seg.len() {
            let r = retrack_segment(&seg[..len], 2);
            if boundaries.contains(&len) {
                assert_eq!(r.unwrap().len(), len);
            } else {
                let e = r.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
            }
        }
        // The same over a real segment, without copying it each time.
        let real = fixture("ffmpeg_ldash_640x360_seg2.m4s");
        let ends: Vec<usize> = Children::new(&real, 0, real.len(), "")
            .map(|b| b.unwrap().end)
            .collect();
        let cuts = (1..real.len()).step_by(7).filter(|len| !ends.contains(len));
        for len in cuts.chain(ends.iter().map(|e| e - 1)) {
            assert!(tfhd_track_id_offsets(&real[..len]).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn truncated_mdat_names_box_and_offset() {
        let seg = synthetic_segment();
        let err = tfhd_track_id_offsets(&seg[..seg.len() - 1]).unwrap_err();
        let last_mdat = seg.len() - (16 + 24);
        assert_eq!(
            err,
            MuxError::Truncated {
                path: "mdat".into(),
                offset: last_mdat as u64,
                size: 40,
                available: 39,
            }
        );
        assert_eq!(
            err.to_string(),
            format!("mdat at offset {last_mdat}: declared size 40 exceeds the 39 bytes left")
        );
    }

    #[test]
    fn size_larger_than_buffer() {
        let mut seg = synthetic_segment();
        seg.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, b'm', b'd', b'a', b't', 0, 0]);
        let err = tfhd_track_id_offsets(&seg).unwrap_err();
        assert!(
            matches!(
                err,
                MuxError::Truncated {
                    size: 0xFFFF_FFFF,
                    available: 10,
                    ..
                }
            ),
            "{err}"
        );
        // 64-bit largesize near u64::MAX must not overflow.
        let mut big = boxed(b"styp", b"msdh\0\0\0\0");
        big.extend_from_slice(&1u32.to_be_bytes());
        big.extend_from_slice(b"mdat");
        big.extend_from_slice(&u64::MAX.to_be_bytes());
        let err = retrack_segment(&big, 2).unwrap_err();
        assert!(
            matches!(err, MuxError::Truncated { size: u64::MAX, .. }),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }

    #[test]
    fn size_zero_and_one_edge_cases() {
        let styp = boxed(b"styp", b"msdh\0\0\0\0");
        let at = styp.len() as u64;
        let with = |tail: &[u8]| [styp.as_slice(), tail].concat();

        // size 0: "to end of file", refused because it cannot be concatenated.
        let err = tfhd_track_id_offsets(&with(b"\0\0\0\0mdat0123")).unwrap_err();
        assert_eq!(
            err,
            MuxError::SizeToEnd {
                path: "mdat".into(),
                offset: at
            }
        );
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        // size 1 without room for the largesize.
        let err = tfhd_track_id_offsets(&with(b"\0\0\0\x01mdat\0\0\0")).unwrap_err();
        assert!(
            matches!(
                err,
                MuxError::TruncatedHeader {
                    needed: 16,
                    available: 11,
                    ..
                }
            ),
            "{err}"
        );
        // size 1 with a largesize below 16.
        let err = tfhd_track_id_offsets(&with(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x0f")).unwrap_err();
        assert!(
            matches!(
                err,
                MuxError::BadSize {
                    size: 15,
                    header_len: 16,
                    ..
                }
            ),
            "{err}"
        );
        // size 1 with largesize exactly 16: an empty mdat, fine.
        assert_eq!(
            tfhd_track_id_offsets(&with(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x10")).unwrap(),
            Vec::<u64>::new()
        );
        // sizes 2..=7 are below the header.
        for size in 2u8..8 {
            let err =
                tfhd_track_id_offsets(&with(&[0, 0, 0, size, b'f', b'r', b'e', b'e'])).unwrap_err();
            assert!(
                matches!(err, MuxError::BadSize { header_len: 8, .. }),
                "{err}"
            );
        }
        // fewer than 8 bytes left.
        let err = tfhd_track_id_offsets(&with(b"\0\0\0")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("segment at offset {at}: 3 bytes left, too few for a 8-byte box header")
        );
    }

    #[test]
    fn malformed_moof_contents() {
        let mfhd = boxed(b"mfhd", &[0; 8]);
        // tfhd too short for track_ID.
        let traf = boxed(b"traf", &boxed(b"tfhd", &[0, 2, 0, 0]));
        let seg = boxed(b"moof", &[mfhd.clone(), traf].concat());
        let err = retrack_segment(&seg, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "moof/traf/tfhd at offset 32: body of 4 bytes, 8 needed"
        );
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        // traf without tfhd.
        let traf = boxed(b"traf", &boxed(b"tfdt", &[0; 8]));
        let seg = boxed(b"moof", &[mfhd.clone(), traf].concat());
        let err = retrack_segment(&seg, 2).unwrap_err();
        assert_eq!(err.to_string(), "moof/traf at offset 24: no tfhd box");
        // Two tfhd in one traf.
        let traf = boxed(b"traf", &[tfhd(1), tfhd(1)].concat());
        let seg = boxed(b"moof", &[mfhd.clone(), traf].concat());
        assert!(matches!(
            retrack_segment(&seg, 2),
            Err(MuxError::Duplicate { .. })
        ));
        // A traf whose size runs past its moof (the moof size itself is consistent).
        let mut traf = boxed(b"traf", &tfhd(1));
        traf[3] += 4;
        let seg = boxed(b"moof", &[mfhd.clone(), traf].concat());
        let err = retrack_segment(&seg, 2).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("moof/traf at offset 24: declared size"),
            "{err}"
        );
        // Two tracks in one segment.
        let seg = [moof(1), moof(3)].concat();
        let err = retrack_segment(&seg, 2).unwrap_err();
        assert!(
            matches!(
                err,
                MuxError::MixedTracks {
                    first: 1,
                    found: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn sidx_and_prft_are_track_references() {
        // A sidx naming another track than the fragments.
        let seg = [boxed(b"sidx", &track_ref_body(5, 32)), moof(1)].concat();
        let err = retrack_segment(&seg, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "moof/traf/tfhd at offset 72: track ID 1, but an earlier box of this segment names 5"
        );
        // A prft too short to hold its track ID.
        let seg = [boxed(b"prft", &[0, 0, 0, 0, 0, 0]), moof(1)].concat();
        let err = retrack_segment(&seg, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prft at offset 0: body of 6 bytes, 8 needed"
        );
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        // emsg and unknown boxes are left alone.
        let emsg = boxed(b"emsg", &[9; 40]);
        let seg = [emsg.clone(), moof(1)].concat();
        let out = retrack_segment(&seg, 2).unwrap();
        assert_eq!(&out[..emsg.len()], emsg.as_slice());
    }

    /// xorshift64*: deterministic, no dependency.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    #[test]
    fn mutated_segments_never_panic_and_keep_length() {
        let seg = synthetic_segment();
        let mut s = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut m = seg.clone();
            for _ in 0..(rng(&mut s) % 4 + 1) {
                let i = (rng(&mut s) % m.len() as u64) as usize;
                m[i] = match rng(&mut s) % 4 {
                    0 => 0,
                    1 => 1,
                    2 => 0xFF,
                    _ => rng(&mut s) as u8,
                };
            }
            let cut = m.len() - (rng(&mut s) % 8) as usize;
            if let Ok(out) = retrack_segment(&m[..cut], 2) {
                assert_eq!(out.len(), cut);
            }
        }
    }

    // ---- merge_inits ------------------------------------------------------------------

    /// The video fixture init re-labelled as a sound track, its movie timescale doubled, a
    /// tkhd duration and an edit list added (mp4-atom writes tkhd and elst as version 1):
    /// enough for the structural checks without ffmpeg.
    fn fake_audio_init(video_init: &[u8]) -> Vec<u8> {
        let boxes: Vec<BoxRef> = Children::new(video_init, 0, video_init.len(), "")
            .map(|b| b.unwrap())
            .collect();
        let mut out = Vec::new();
        for b in boxes {
            if &b.kind == b"moov" {
                let mut moov = Moov::decode(&mut b.bytes(video_init)).unwrap();
                let trak = &mut moov.trak[0];
                trak.mdia.hdlr.handler = b"soun".into();
                trak.tkhd.duration = 4000;
                trak.edts = Some(mp4_atom::Edts {
                    elst: Some(mp4_atom::Elst {
                        entries: vec![mp4_atom::ElstEntry {
                            segment_duration: 600,
                            media_time: Some(1024),
                            media_rate: 1.into(),
                        }],
                    }),
                });
                moov.mvhd.timescale *= 2;
                moov.encode(&mut out).unwrap();
            } else {
                out.extend_from_slice(b.bytes(video_init));
            }
        }
        out
    }

    /// The children of the `moov` of an init.
    fn moov_children(init: &[u8]) -> Vec<BoxRef> {
        let moov = Children::new(init, 0, init.len(), "")
            .map(|b| b.unwrap())
            .find(|b| &b.kind == b"moov")
            .unwrap();
        Children::new(init, moov.body_start(), moov.end, "moov")
            .map(|b| b.unwrap())
            .collect()
    }

    fn traks(init: &[u8]) -> Vec<&[u8]> {
        moov_children(init)
            .into_iter()
            .filter(|b| &b.kind == b"trak")
            .map(|b| b.bytes(init))
            .collect()
    }

    #[test]
    fn merge_inits_renumbers_the_audio_track() {
        let video = fixture("ffmpeg_ldash_640x360_init.m4s");
        let audio = fake_audio_init(&video);
        let merged = merge_inits(&video, &audio).unwrap();

        let top: Vec<BoxRef> = Children::new(&merged, 0, merged.len(), "")
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(
            top.iter().map(|b| b.kind).collect::<Vec<_>>(),
            [*b"ftyp", *b"moov"]
        );
        // The video ftyp, byte for byte.
        assert_eq!(top[0].bytes(&merged), &video[..top[0].end]);
        let kinds: Vec<[u8; 4]> = moov_children(&merged).iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [*b"mvhd", *b"trak", *b"trak", *b"mvex", *b"udta"]);

        let moov = Moov::decode(&mut top[1].bytes(&merged)).unwrap();
        assert_eq!(moov.mvhd.next_track_id, 3);
        let ids: Vec<u32> = moov.trak.iter().map(|t| t.tkhd.track_id).collect();
        assert_eq!(ids, [1, 2]);
        let handlers: Vec<[u8; 4]> = moov
            .trak
            .iter()
            .map(|t| *t.mdia.hdlr.handler.as_ref())
            .collect();
        assert_eq!(handlers, [*b"vide", *b"soun"]);
        let mvex = moov.mvex.as_ref().unwrap();
        let trex: Vec<u32> = mvex.trex.iter().map(|t| t.track_id).collect();
        assert_eq!(trex, [1, 2]);
        let audio_moov = Moov::decode(&mut &audio[top[0].end..]).unwrap();
        let audio_trex = &audio_moov.mvex.as_ref().unwrap().trex[0];
        assert_eq!(
            mvex.trex[1].default_sample_flags,
            audio_trex.default_sample_flags
        );

        // Movie-timescale durations moved from the doubled timescale to the video's; the
        // media time (media timescale) untouched.
        let audio_trak = &moov.trak[1];
        assert_eq!(audio_trak.tkhd.duration, 2000);
        let elst = audio_trak.edts.as_ref().unwrap().elst.as_ref().unwrap();
        assert_eq!(elst.entries[0].segment_duration, 300);
        assert_eq!(elst.entries[0].media_time, Some(1024));

        // The video trak is the input's byte for byte (it was track 1 already); the audio
        // trak differs only in track_ID and the two rescaled durations.
        let (merged_traks, video_traks, audio_traks) =
            (traks(&merged), traks(&video), traks(&audio));
        assert_eq!(merged_traks[0], video_traks[0]);
        let (a, b) = (audio_traks[0], merged_traks[1]);
        assert_eq!(a.len(), b.len());
        let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
        assert!(
            (1..=4 + 8 + 8).contains(&differing),
            "{differing} bytes differ"
        );

        // The project's own init reader agrees.
        let info = crate::cmaf::InitInfo::from_moov(top[1].bytes(&merged)).unwrap();
        assert_eq!(info.tracks.len(), 2);
        assert_eq!(info.track(2).unwrap().kind, crate::cmaf::TrackKind::Audio);
    }

    #[test]
    fn merge_inits_keeps_boxes_mp4_atom_does_not_know() {
        let video = fixture("ffmpeg_ldash_640x360_init.m4s");
        let unknown = boxed(b"zzzz", b"keep me");
        let audio = insert_into_trak(&fake_audio_init(&video), &unknown);
        let merged = merge_inits(&video, &audio).unwrap();
        let audio_trak = traks(&merged)[1];
        assert!(audio_trak.ends_with(&unknown));
    }

    #[test]
    fn merge_inits_refusals() {
        let video = fixture("ffmpeg_ldash_640x360_init.m4s");
        let audio = fake_audio_init(&video);

        // Swapped arguments.
        let err = merge_inits(&audio, &video).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert_eq!(
            err.to_string(),
            "video init: moov/trak/mdia/hdlr: handler 'soun', expected 'vide'"
        );
        // An init with two tracks (our own output).
        let merged = merge_inits(&video, &audio).unwrap();
        let err = merge_inits(&merged, &audio).unwrap_err();
        assert_eq!(
            err.to_string(),
            "video init: moov: 2 trak boxes, a CMAF header has exactly one"
        );
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        // No moov.
        let ftyp_len = Children::new(&video, 0, video.len(), "")
            .next()
            .unwrap()
            .unwrap()
            .end;
        let err = merge_inits(&video[..ftyp_len], &audio).unwrap_err();
        assert_eq!(err.to_string(), "video init: no moov box");
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        // Cut inside the moov.
        let err = merge_inits(&video, &audio[..audio.len() - 10]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("audio init: moov at offset 28: declared size"),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        // A media segment given as an init.
        let err = merge_inits(&synthetic_segment(), &audio).unwrap_err();
        assert_eq!(err.to_string(), "video init: no ftyp box");
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        // A box that mp4-atom rejects.
        let mut bad = video.clone();
        bad[28 + 8 + 8] = 7; // mvhd version
        let err = merge_inits(&bad, &audio).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("video init: moov at offset 28: "),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }

    /// Appends `child` at the end of the first moov/trak, fixing the sizes of trak and moov.
    fn insert_into_trak(init: &[u8], child: &[u8]) -> Vec<u8> {
        let moov = Children::new(init, 0, init.len(), "")
            .map(|b| b.unwrap())
            .find(|b| &b.kind == b"moov")
            .unwrap();
        let trak = Children::new(init, moov.body_start(), moov.end, "moov")
            .map(|b| b.unwrap())
            .find(|b| &b.kind == b"trak")
            .unwrap();
        let mut out = [&init[..trak.end], child, &init[trak.end..]].concat();
        let grow = |out: &mut Vec<u8>, at: usize| {
            let size = be_u32(out, at) + child.len() as u32;
            out[at..at + 4].copy_from_slice(&size.to_be_bytes());
        };
        grow(&mut out, moov.start);
        grow(&mut out, trak.start);
        out
    }

    #[test]
    fn mutated_inits_never_panic() {
        let video = fixture("ffmpeg_ldash_640x360_init.m4s");
        let audio = fake_audio_init(&video);
        let mut s = 0x0123_4567_89AB_CDEF;
        for _ in 0..3_000 {
            let mut m = audio.clone();
            for _ in 0..(rng(&mut s) % 3 + 1) {
                let i = (rng(&mut s) % m.len() as u64) as usize;
                m[i] = rng(&mut s) as u8;
            }
            let _ = merge_inits(&video, &m);
        }
    }

    // ---- against ffmpeg -----------------------------------------------------------------

    /// One ffmpeg DASH output: init and segments of the video and the audio representation.
    struct Dash {
        _dir: tempfile::TempDir,
        out: PathBuf,
        video_init: Vec<u8>,
        audio_init: Vec<u8>,
        video: Vec<Vec<u8>>,
        audio: Vec<Vec<u8>>,
    }

    /// Seconds of the test stream.
    const SECONDS: f64 = 6.0;
    /// `-seg_duration`.
    const SEGMENT_SECONDS: f64 = 2.0;

    #[allow(clippy::print_stderr)]
    fn have_ffmpeg(test: &str) -> bool {
        let ok = |tool: &str| {
            Command::new(tool)
                .arg("-version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let have = ok("ffmpeg") && ok("ffprobe");
        if !have {
            eprintln!("SKIPPED {test}: ffmpeg/ffprobe not on PATH (scripts/install-deps.sh installs them)");
        }
        have
    }

    /// Runs ffmpeg's DASH muxer (the README's command, 6 s of testsrc2 + sine, 2 s segments)
    /// with `extra` options into a temp dir.
    fn ffmpeg_dash(extra: &[&str]) -> Dash {
        let dir = tempfile::tempdir().unwrap();
        let mpd = dir.path().join("stream.mpd");
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            &SECONDS.to_string(),
            "-c:v",
            "libx264",
            "-g",
            "30",
            "-keyint_min",
            "30",
        ])
        .args([
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-ar",
            "48000",
            "-f",
            "dash",
        ])
        .args([
            "-seg_duration",
            &SEGMENT_SECONDS.to_string(),
            "-use_template",
            "1",
        ])
        .args(["-use_timeline", "0", "-format_options", "movflags=cmaf"])
        .args(["-adaptation_sets", "id=0,streams=v id=1,streams=a"])
        .args(extra)
        .arg(&mpd);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "ffmpeg: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        let segments = |stream: u32| {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("chunk-stream{stream}-")))
                .collect();
            names.sort();
            names.iter().map(|n| read(n)).collect::<Vec<_>>()
        };
        Dash {
            video_init: read("init-stream0.m4s"),
            audio_init: read("init-stream1.m4s"),
            video: segments(0),
            audio: segments(1),
            out: dir.path().join("recording.mp4"),
            _dir: dir,
        }
    }

    /// `init + video 1 + audio 1 + video 2 + audio 2 + ...` (the longer list's tail last).
    fn interleave(init: &[u8], video: &[Vec<u8>], audio: &[Bytes]) -> Vec<u8> {
        let mut file = init.to_vec();
        for i in 0..video.len().max(audio.len()) {
            if let Some(v) = video.get(i) {
                file.extend_from_slice(v);
            }
            if let Some(a) = audio.get(i) {
                file.extend_from_slice(a);
            }
        }
        file
    }

    /// The recording check: ffprobe sees exactly one video and one audio stream, each
    /// lasting [`SECONDS`] within one segment, with nothing on stderr, and ffmpeg decodes
    /// the whole file without an error.
    fn check_recording(path: &Path) -> Result<(), String> {
        let probe = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,duration",
                "-of",
                "json",
            ])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&probe.stderr);
        if !probe.status.success() || !stderr.trim().is_empty() {
            return Err(format!("ffprobe: {stderr}"));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&probe.stdout).map_err(|e| e.to_string())?;
        let streams = json["streams"].as_array().cloned().unwrap_or_default();
        let mut kinds: Vec<&str> = streams
            .iter()
            .filter_map(|s| s["codec_type"].as_str())
            .collect();
        kinds.sort_unstable();
        if kinds != ["audio", "video"] {
            return Err(format!("streams {kinds:?}: {json}"));
        }
        for s in &streams {
            let duration: f64 = s["duration"]
                .as_str()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| format!("no duration: {s}"))?;
            if (duration - SECONDS).abs() > SEGMENT_SECONDS {
                return Err(format!("duration {duration} s, expected {SECONDS} s: {s}"));
            }
        }
        let decode = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(path)
            .args(["-f", "null", "-"])
            .output()
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&decode.stderr);
        if !decode.status.success() || !stderr.trim().is_empty() {
            return Err(format!("ffmpeg decode: {stderr}"));
        }
        Ok(())
    }

    /// How the audio segments go into a recording.
    #[derive(Clone, Copy, PartialEq)]
    enum Audio {
        /// Through [`retrack_segment`].
        Retracked,
        /// Only the `tfhd` fields patched, `sidx` and `prft` left naming track 1.
        TfhdOnly,
        /// As ffmpeg wrote them (track 1, like the video).
        AsUploaded,
    }

    fn recording(dash: &Dash, audio: Audio) -> Vec<u8> {
        let init = merge_inits(&dash.video_init, &dash.audio_init).unwrap();
        let audio: Vec<Bytes> = dash
            .audio
            .iter()
            .map(|seg| match audio {
                Audio::Retracked => retrack_segment(seg, AUDIO_TRACK_ID).unwrap(),
                Audio::TfhdOnly => {
                    let moofs: Vec<BoxRef> = Children::new(seg, 0, seg.len(), "")
                        .map(|b| b.unwrap())
                        .filter(|b| &b.kind == b"moof")
                        .collect();
                    let in_moof: Vec<u64> = tfhd_track_id_offsets(seg)
                        .unwrap()
                        .into_iter()
                        .filter(|&o| {
                            moofs
                                .iter()
                                .any(|m| (m.start..m.end).contains(&(o as usize)))
                        })
                        .collect();
                    let mut out = seg.clone();
                    patch_track_ids(&mut out, 0, &in_moof, AUDIO_TRACK_ID);
                    Bytes::from(out)
                }
                Audio::AsUploaded => Bytes::copy_from_slice(seg),
            })
            .collect();
        interleave(&init, &dash.video, &audio)
    }

    /// Makes a recording from ffmpeg's output with `extra` options, whose audio segments
    /// hold `audio_box` (so the test covers what it says), and checks it.
    fn recording_check(extra: &[&str], audio_box: &[u8; 4], audio: Audio) -> Result<(), String> {
        let dash = ffmpeg_dash(extra);
        assert!(
            dash.video.len() >= 3 && dash.audio.len() >= 3,
            "{} video, {} audio segments",
            dash.video.len(),
            dash.audio.len()
        );
        assert!(
            dash.audio
                .iter()
                .all(|seg| Children::new(seg, 0, seg.len(), "")
                    .any(|b| &b.unwrap().kind == audio_box))
        );
        // ffmpeg's tracks are all track 1; video segments go in as they are.
        for seg in &dash.video {
            let offsets = tfhd_track_id_offsets(seg).unwrap();
            assert!(!offsets.is_empty());
            assert!(offsets.iter().all(|&o| be_u32(seg, o as usize) == 1));
        }
        let file = recording(&dash, audio);
        std::fs::write(&dash.out, &file).unwrap();
        check_recording(&dash.out)
    }

    /// ffmpeg's plain DASH: one fragment per 2 s segment, each segment opening with a sidx.
    const PLAIN_DASH: &[&str] = &[];
    /// The README's LL-DASH push: 0.5 s CMAF chunks, a prft before each moof (ffmpeg writes
    /// prft only with a UTCTiming URL).
    const LL_DASH: &[&str] = &[
        "-ldash",
        "1",
        "-streaming",
        "1",
        "-frag_type",
        "duration",
        "-frag_duration",
        "0.5",
        "-write_prft",
        "1",
        "-utc_timing_url",
        "http://127.0.0.1:5001/time",
    ];

    #[test]
    fn ffmpeg_dash_recording_plays() {
        if !have_ffmpeg("ffmpeg_dash_recording_plays") {
            return;
        }
        if let Err(e) = recording_check(PLAIN_DASH, b"sidx", Audio::Retracked) {
            panic!("merged recording does not play: {e}");
        }
    }

    #[test]
    fn ffmpeg_ldash_recording_plays() {
        if !have_ffmpeg("ffmpeg_ldash_recording_plays") {
            return;
        }
        if let Err(e) = recording_check(LL_DASH, b"prft", Audio::Retracked) {
            panic!("merged recording does not play: {e}");
        }
    }

    /// Must fail: the check above can fail. Audio fragments left on track 1 are read as
    /// video.
    #[test]
    fn ffmpeg_recording_without_retrack_is_broken() {
        if !have_ffmpeg("ffmpeg_recording_without_retrack_is_broken") {
            return;
        }
        for (extra, audio_box) in [(PLAIN_DASH, b"sidx"), (LL_DASH, b"prft")] {
            let verdict = recording_check(extra, audio_box, Audio::AsUploaded);
            assert!(
                verdict.is_err(),
                "audio left on track 1 passed with {extra:?}"
            );
        }
    }

    /// Must fail: patching tfhd alone is not enough when segments carry a sidx.
    #[test]
    fn ffmpeg_recording_with_stale_sidx_is_broken() {
        if !have_ffmpeg("ffmpeg_recording_with_stale_sidx_is_broken") {
            return;
        }
        let verdict = recording_check(PLAIN_DASH, b"sidx", Audio::TfhdOnly);
        let err = verdict.expect_err("audio sidx naming track 1 passed");
        assert!(err.starts_with("duration "), "{err}");
    }
}
