//! HLS playlist writing (RFC 8216bis, "HTTP Live Streaming 2nd Edition").
//!
//! Small typed writers over [`std::fmt::Write`] shared by VOD (`vod`) and, later, live
//! LL-HLS. Two playlist kinds:
//!
//! - [`MediaPlaylist`] (RFC 8216bis section 4.4.3): `#EXTM3U`, `#EXT-X-TARGETDURATION`,
//!   `#EXT-X-PLAYLIST-TYPE`, `#EXT-X-VERSION`, `#EXT-X-MEDIA-SEQUENCE`,
//!   `#EXT-X-INDEPENDENT-SEGMENTS`, then `#EXTINF`/URI pairs and `#EXT-X-ENDLIST`.
//! - [`MultivariantPlaylist`] (section 4.4.6): `#EXT-X-STREAM-INF` lines with BANDWIDTH,
//!   AVERAGE-BANDWIDTH, CODECS, RESOLUTION and FRAME-RATE.
//!
//! EXTINF durations are written with millisecond precision and the target duration is
//! derived from the *written* values (section 4.4.3.1: every EXTINF rounded to the nearest
//! integer must be at most the target duration), so the rule holds by construction.

#![warn(missing_docs)]

use std::fmt::{self, Write};

/// `#EXT-X-PLAYLIST-TYPE` (RFC 8216bis section 4.4.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// The playlist never changes.
    Vod,
    /// Segments are only appended.
    Event,
}

/// One `#EXTINF` entry of a media playlist (RFC 8216bis section 4.4.4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSegment {
    /// Duration in milliseconds (written as decimal seconds with 3 digits).
    pub duration_ms: u64,
    /// Segment URI, relative to the playlist or absolute; written as given.
    pub uri: String,
}

/// A media playlist (RFC 8216bis section 4.4.3).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `#EXT-X-VERSION` (3 or more for decimal EXTINF).
    pub version: u8,
    /// `#EXT-X-PLAYLIST-TYPE`, omitted when `None`.
    pub playlist_type: Option<PlaylistType>,
    /// `#EXT-X-MEDIA-SEQUENCE` of the first segment.
    pub media_sequence: u64,
    /// Whether `#EXT-X-INDEPENDENT-SEGMENTS` is written (every segment starts on a keyframe).
    pub independent_segments: bool,
    /// The segments, in order.
    pub segments: Vec<MediaSegment>,
    /// Whether `#EXT-X-ENDLIST` is written.
    pub end_list: bool,
}

impl MediaPlaylist {
    /// `#EXT-X-TARGETDURATION` in whole seconds: the maximum of every EXTINF rounded to the
    /// nearest integer (half up), at least 1.
    pub fn target_duration(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| (s.duration_ms + 500) / 1000)
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// Writes the playlist text (lines end with `\n`).
    pub fn write_to(&self, w: &mut impl Write) -> fmt::Result {
        w.write_str("#EXTM3U\n")?;
        writeln!(w, "#EXT-X-TARGETDURATION:{}", self.target_duration())?;
        match self.playlist_type {
            Some(PlaylistType::Vod) => w.write_str("#EXT-X-PLAYLIST-TYPE:VOD\n")?,
            Some(PlaylistType::Event) => w.write_str("#EXT-X-PLAYLIST-TYPE:EVENT\n")?,
            None => {}
        }
        writeln!(w, "#EXT-X-VERSION:{}", self.version)?;
        writeln!(w, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence)?;
        if self.independent_segments {
            w.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        for s in &self.segments {
            writeln!(
                w,
                "#EXTINF:{}.{:03},\n{}",
                s.duration_ms / 1000,
                s.duration_ms % 1000,
                s.uri
            )?;
        }
        if self.end_list {
            w.write_str("#EXT-X-ENDLIST\n")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

/// One `#EXT-X-STREAM-INF` variant (RFC 8216bis section 4.4.6.2).
#[derive(Debug, Clone, PartialEq)]
pub struct VariantStream {
    /// BANDWIDTH: peak segment bit rate in bits per second.
    pub bandwidth: u64,
    /// AVERAGE-BANDWIDTH in bits per second, omitted when `None`.
    pub average_bandwidth: Option<u64>,
    /// CODECS: comma-separated RFC 6381 codec strings, omitted when empty.
    pub codecs: Vec<String>,
    /// RESOLUTION as (width, height) in pixels.
    pub resolution: Option<(u32, u32)>,
    /// FRAME-RATE in frames per second (written with 3 decimals).
    pub frame_rate: Option<f64>,
    /// URI of the media playlist, written as given.
    pub uri: String,
}

/// A multivariant ("master") playlist (RFC 8216bis section 4.4.6).
#[derive(Debug, Clone, PartialEq)]
pub struct MultivariantPlaylist {
    /// `#EXT-X-VERSION`.
    pub version: u8,
    /// Whether `#EXT-X-INDEPENDENT-SEGMENTS` is written.
    pub independent_segments: bool,
    /// Variants, in the order they are written.
    pub variants: Vec<VariantStream>,
}

impl MultivariantPlaylist {
    /// Writes the playlist text (lines end with `\n`).
    pub fn write_to(&self, w: &mut impl Write) -> fmt::Result {
        w.write_str("#EXTM3U\n")?;
        writeln!(w, "#EXT-X-VERSION:{}", self.version)?;
        if self.independent_segments {
            w.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        for v in &self.variants {
            write!(w, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth)?;
            if let Some(avg) = v.average_bandwidth {
                write!(w, ",AVERAGE-BANDWIDTH={avg}")?;
            }
            if !v.codecs.is_empty() {
                write!(w, ",CODECS=\"{}\"", v.codecs.join(","))?;
            }
            if let Some((width, height)) = v.resolution {
                write!(w, ",RESOLUTION={width}x{height}")?;
            }
            if let Some(rate) = v.frame_rate {
                write!(w, ",FRAME-RATE={rate:.3}")?;
            }
            writeln!(w, "\n{}", v.uri)?;
        }
        Ok(())
    }
}

impl fmt::Display for MultivariantPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(durations: &[u64]) -> MediaPlaylist {
        MediaPlaylist {
            version: 3,
            playlist_type: Some(PlaylistType::Vod),
            media_sequence: 1,
            independent_segments: true,
            segments: durations
                .iter()
                .enumerate()
                .map(|(i, &d)| MediaSegment {
                    duration_ms: d,
                    uri: format!("segment{}_0_av.ts", i + 1),
                })
                .collect(),
            end_list: true,
        }
    }

    #[test]
    fn target_duration_rounds_written_values() {
        assert_eq!(media(&[6000, 7499]).target_duration(), 7);
        assert_eq!(media(&[6000, 7500]).target_duration(), 8);
        assert_eq!(media(&[400]).target_duration(), 1);
        assert_eq!(media(&[]).target_duration(), 1);
    }

    #[test]
    fn media_playlist_parses_back() {
        let text = media(&[6006, 4004]).to_string();
        assert!(text.starts_with("#EXTM3U\n#EXT-X-TARGETDURATION:6\n"));
        assert!(text.contains("#EXTINF:6.006,\nsegment1_0_av.ts\n"));
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), 2);
        assert!(parsed.end_list);
        assert_eq!(parsed.media_sequence, 1);
        assert!((parsed.segments[1].duration - 4.004).abs() < 1e-6);
    }

    #[test]
    fn multivariant_parses_back() {
        let pl = MultivariantPlaylist {
            version: 3,
            independent_segments: true,
            variants: vec![VariantStream {
                bandwidth: 1_200_000,
                average_bandwidth: Some(900_000),
                codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()],
                resolution: Some((1280, 720)),
                frame_rate: Some(25.0),
                uri: "index_0_av.m3u8".into(),
            }],
        };
        let text = pl.to_string();
        let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
        let v = &parsed.variants[0];
        assert_eq!(v.bandwidth, 1_200_000);
        assert_eq!(v.average_bandwidth, Some(900_000));
        assert_eq!(v.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(v.uri, "index_0_av.m3u8");
    }
}
