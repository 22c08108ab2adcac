//! Facts from a CMAF header / init segment (`ftyp moov`, ISO/IEC 23000-19 §7.3.2.1):
//! per track its ID, media kind, timescale, picture size and `trex` defaults.

use mp4_atom::{Decode, Moov};

use crate::error::ErrorKind;

/// A `moov` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// mp4-atom could not decode the box.
    #[error("moov: {0}")]
    Decode(String),
    /// A track has timescale 0, which makes every duration meaningless.
    #[error("moov/trak[{track_id}]/mdia/mdhd: timescale is 0")]
    ZeroTimescale { track_id: u32 },
}

impl InitError {
    /// Always [`ErrorKind::Corrupt`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Corrupt
    }
}

/// The media kind of a track, from `mdia/hdlr` (ISO/IEC 14496-12 §8.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// `vide`
    Video,
    /// `soun`
    Audio,
    /// `subt`, `text`, `sbtl`
    Text,
    /// Anything else.
    Other,
}

/// One track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// `tkhd.track_ID`.
    pub track_id: u32,
    /// From the handler.
    pub kind: TrackKind,
    /// `mdhd.timescale`: ticks per second of every time of this track.
    pub timescale: u32,
    /// Visual sample entry width and height in pixels (video only).
    pub width: u16,
    pub height: u16,
    /// `trex.default_sample_duration` in timescale ticks (0 when there is no trex).
    pub default_sample_duration: u32,
    /// `trex.default_sample_flags`.
    pub default_sample_flags: u32,
}

/// The tracks of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInfo {
    /// Tracks in `moov` order.
    pub tracks: Vec<TrackInfo>,
}

impl InitInfo {
    /// Reads a complete `moov` box (header included).
    ///
    /// Errors: [`InitError::Decode`] for a malformed box, [`InitError::ZeroTimescale`].
    pub fn from_moov(moov: &[u8]) -> Result<InitInfo, InitError> {
        super::guard::check(moov).map_err(|e| InitError::Decode(e.to_string()))?;
        let moov = Moov::decode(&mut &moov[..]).map_err(|e| InitError::Decode(e.to_string()))?;
        let mut tracks = Vec::with_capacity(moov.trak.len());
        for trak in &moov.trak {
            let track_id = trak.tkhd.track_id;
            let timescale = trak.mdia.mdhd.timescale;
            if timescale == 0 {
                return Err(InitError::ZeroTimescale { track_id });
            }
            let kind = match trak.mdia.hdlr.handler.as_ref() {
                b"vide" => TrackKind::Video,
                b"soun" => TrackKind::Audio,
                b"subt" | b"text" | b"sbtl" => TrackKind::Text,
                _ => TrackKind::Other,
            };
            let trex = moov
                .mvex
                .as_ref()
                .and_then(|m| m.trex.iter().find(|t| t.track_id == track_id));
            let (width, height) = match trak.mdia.minf.stbl.stsd.codecs.first() {
                Some(mp4_atom::Codec::Avc1(c)) => (c.visual.width, c.visual.height),
                Some(mp4_atom::Codec::Hvc1(c)) => (c.visual.width, c.visual.height),
                Some(mp4_atom::Codec::Hev1(c)) => (c.visual.width, c.visual.height),
                _ => (0, 0),
            };
            tracks.push(TrackInfo {
                track_id,
                kind,
                timescale,
                width,
                height,
                default_sample_duration: trex.map_or(0, |t| t.default_sample_duration),
                default_sample_flags: trex.map_or(0, |t| t.default_sample_flags),
            });
        }
        Ok(InitInfo { tracks })
    }

    /// The track with this ID.
    pub fn track(&self, track_id: u32) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }

    /// The kind of the first track (a CMAF header has exactly one).
    pub fn kind(&self) -> Option<TrackKind> {
        self.tracks.first().map(|t| t.kind)
    }
}
