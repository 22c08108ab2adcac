//! HLS playlist writing (RFC 8216bis, "HTTP Live Streaming 2nd Edition").
//!
//! Small typed writers over [`std::fmt::Write`] shared by VOD (`vod`) and, later, live
//! LL-HLS. Two playlist kinds:
//!
//! - [`MediaPlaylist`] (RFC 8216bis section 4.4.3): `#EXTM3U`, `#EXT-X-TARGETDURATION`,
//!   `#EXT-X-PLAYLIST-TYPE`, `#EXT-X-VERSION`, `#EXT-X-MEDIA-SEQUENCE`,
//!   `#EXT-X-INDEPENDENT-SEGMENTS`, the LL-HLS header tags (`#EXT-X-SERVER-CONTROL`,
//!   `#EXT-X-PART-INF`), `#EXT-X-MAP`, `#EXT-X-SKIP`, then per segment
//!   `#EXT-X-DISCONTINUITY`, `#EXT-X-PROGRAM-DATE-TIME`, `#EXT-X-PART` lines and the
//!   `#EXTINF`/URI pair, then `#EXT-X-PRELOAD-HINT`, `#EXT-X-RENDITION-REPORT` and
//!   `#EXT-X-ENDLIST`. Unset tags are not written.
//! - [`MultivariantPlaylist`] (section 4.4.6): `#EXT-X-MEDIA` entries, then
//!   `#EXT-X-STREAM-INF` lines with BANDWIDTH, AVERAGE-BANDWIDTH, CODECS, RESOLUTION,
//!   FRAME-RATE and AUDIO.
//!
//! All durations are integer milliseconds, written as decimal seconds with 3 digits.
//!
//! EXTINF durations are written with millisecond precision and the target duration is
//! derived from the *written* values (section 4.4.3.1: every EXTINF rounded to the nearest
//! integer must be at most the target duration), so the rule holds by construction.

#![warn(missing_docs)]

pub mod parse;

use std::fmt::{self, Write};

/// `playlist` with `query` (no `?`) appended to every URI it names: URI lines and
/// `URI="..."` attributes (RFC 8216bis section 4.1: URI lines; section 4.2 quoted-string
/// attributes), joined with `?` or `&` as the URI already has a query or not. Used to carry
/// a view's query (`?dvr=`, `?start=&end=`) to the playlists and segments it lists.
pub fn with_query(playlist: &str, query: &str) -> String {
    let add = |uri: &str| {
        let sep = if uri.contains('?') { '&' } else { '?' };
        format!("{uri}{sep}{query}")
    };
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.lines() {
        if line.is_empty() {
            out.push('\n');
            continue;
        }
        if !line.starts_with('#') {
            out.push_str(&add(line));
        } else if let Some(at) = line.find("URI=\"") {
            let start = at + 5;
            match line[start..].find('"') {
                Some(len) => {
                    out.push_str(&line[..start]);
                    out.push_str(&add(&line[start..start + len]));
                    out.push_str(&line[start + len..]);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `#EXT-X-PLAYLIST-TYPE` (RFC 8216bis section 4.4.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// The playlist never changes.
    Vod,
    /// Segments are only appended.
    Event,
}

/// Writes milliseconds as decimal seconds with 3 digits (`6006` -> `6.006`).
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// One `#EXT-X-PART` (RFC 8216bis section 4.4.4.9) of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// DURATION in milliseconds.
    pub duration_ms: u64,
    /// URI of the part, written as given.
    pub uri: String,
    /// INDEPENDENT=YES: the part starts with a sync sample.
    pub independent: bool,
}

/// One `#EXTINF` entry of a media playlist (RFC 8216bis section 4.4.4.1) with the tags
/// that precede it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaSegment {
    /// Duration in milliseconds (written as decimal seconds with 3 digits).
    pub duration_ms: u64,
    /// Segment URI, relative to the playlist or absolute; written as given.
    pub uri: String,
    /// `#EXT-X-DISCONTINUITY` before this segment (section 4.4.4.3).
    pub discontinuity: bool,
    /// `#EXT-X-PROGRAM-DATE-TIME` (section 4.4.4.6), ISO 8601 / RFC 3339 text as given.
    pub program_date_time: Option<String>,
    /// LL-HLS parts of this segment, written before its EXTINF (empty for VOD).
    pub parts: Vec<Part>,
    /// `#EXT-X-MAP:URI` written before this segment (section 4.4.4.5): a new
    /// initialization section from here on, e.g. after a discontinuity between encoder
    /// sessions. `None` keeps the previous one.
    pub map_uri: Option<String>,
    /// `#EXT-X-KEY:METHOD=AES-128,URI=...,IV=0x...` before this segment (section 4.4.4.4):
    /// the key URI and the 128-bit IV.
    pub key: Option<(String, u128)>,
    /// `#EXT-X-BYTERANGE:<length>@<offset>` (section 4.4.4.2), in bytes: the segment is
    /// that sub-range of the resource at `uri`.
    pub byte_range: Option<(u64, u64)>,
}

/// `#EXT-X-SERVER-CONTROL` (RFC 8216bis section 4.4.3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerControl {
    /// CAN-BLOCK-RELOAD=YES.
    pub can_block_reload: bool,
    /// PART-HOLD-BACK in milliseconds.
    pub part_hold_back_ms: Option<u64>,
    /// HOLD-BACK in milliseconds.
    pub hold_back_ms: Option<u64>,
    /// CAN-SKIP-UNTIL in milliseconds (delta updates).
    pub can_skip_until_ms: Option<u64>,
}

/// `#EXT-X-RENDITION-REPORT` (RFC 8216bis section 4.4.5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// URI of the other rendition's media playlist.
    pub uri: String,
    /// LAST-MSN.
    pub last_msn: u64,
    /// LAST-PART.
    pub last_part: Option<u64>,
}

/// A media playlist (RFC 8216bis section 4.4.3). Tags left `None`/empty are not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlaylist {
    /// `#EXT-X-VERSION` (3 or more for decimal EXTINF; 6+ with EXT-X-MAP; 9 for LL-HLS).
    pub version: u8,
    /// `#EXT-X-TARGETDURATION` in seconds; `None` derives it from the segments (see
    /// [`MediaPlaylist::target_duration`]). Live playlists fix it: it must never change.
    pub target_duration: Option<u64>,
    /// `#EXT-X-PLAYLIST-TYPE`, omitted when `None`.
    pub playlist_type: Option<PlaylistType>,
    /// `#EXT-X-MEDIA-SEQUENCE` of the first segment.
    pub media_sequence: u64,
    /// Whether `#EXT-X-INDEPENDENT-SEGMENTS` is written (every segment starts on a keyframe).
    pub independent_segments: bool,
    /// `#EXT-X-SERVER-CONTROL` (LL-HLS).
    pub server_control: Option<ServerControl>,
    /// `#EXT-X-PART-INF:PART-TARGET` in milliseconds (LL-HLS).
    pub part_target_ms: Option<u64>,
    /// `#EXT-X-MAP:URI` of the fMP4 initialization section (section 4.4.4.5).
    pub map_uri: Option<String>,
    /// `#EXT-X-SKIP:SKIPPED-SEGMENTS` of a delta update (section 4.4.5.2).
    pub skipped_segments: Option<u64>,
    /// The segments, in order.
    pub segments: Vec<MediaSegment>,
    /// `#EXT-X-PRELOAD-HINT:TYPE=PART,URI` of the next part (section 4.4.5.3).
    pub preload_hint_part: Option<String>,
    /// `#EXT-X-RENDITION-REPORT` lines.
    pub rendition_reports: Vec<RenditionReport>,
    /// Whether `#EXT-X-ENDLIST` is written.
    pub end_list: bool,
    /// `#EXT-X-I-FRAMES-ONLY` (section 4.4.3.6): every segment is one I-frame (version 4).
    pub iframes_only: bool,
}

impl Default for MediaPlaylist {
    /// An empty version-3 playlist, media sequence 0, nothing optional.
    fn default() -> Self {
        MediaPlaylist {
            version: 3,
            target_duration: None,
            playlist_type: None,
            media_sequence: 0,
            independent_segments: false,
            server_control: None,
            part_target_ms: None,
            map_uri: None,
            skipped_segments: None,
            segments: Vec::new(),
            preload_hint_part: None,
            rendition_reports: Vec::new(),
            end_list: false,
            iframes_only: false,
        }
    }
}

impl MediaPlaylist {
    /// `#EXT-X-TARGETDURATION` in whole seconds: the fixed value if set, else the maximum of
    /// every EXTINF rounded to the nearest integer (half up), at least 1.
    pub fn target_duration(&self) -> u64 {
        if let Some(t) = self.target_duration {
            return t;
        }
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
        if self.iframes_only {
            w.write_str("#EXT-X-I-FRAMES-ONLY\n")?;
        }
        if let Some(sc) = &self.server_control {
            let mut attrs = Vec::new();
            if sc.can_block_reload {
                attrs.push("CAN-BLOCK-RELOAD=YES".to_string());
            }
            if let Some(v) = sc.can_skip_until_ms {
                attrs.push(format!("CAN-SKIP-UNTIL={}", secs(v)));
            }
            if let Some(v) = sc.hold_back_ms {
                attrs.push(format!("HOLD-BACK={}", secs(v)));
            }
            if let Some(v) = sc.part_hold_back_ms {
                attrs.push(format!("PART-HOLD-BACK={}", secs(v)));
            }
            writeln!(w, "#EXT-X-SERVER-CONTROL:{}", attrs.join(","))?;
        }
        if let Some(t) = self.part_target_ms {
            writeln!(w, "#EXT-X-PART-INF:PART-TARGET={}", secs(t))?;
        }
        if let Some(uri) = &self.map_uri {
            writeln!(w, "#EXT-X-MAP:URI=\"{uri}\"")?;
        }
        if let Some(n) = self.skipped_segments {
            writeln!(w, "#EXT-X-SKIP:SKIPPED-SEGMENTS={n}")?;
        }
        for s in &self.segments {
            if s.discontinuity {
                w.write_str("#EXT-X-DISCONTINUITY\n")?;
            }
            if let Some(uri) = &s.map_uri {
                writeln!(w, "#EXT-X-MAP:URI=\"{uri}\"")?;
            }
            if let Some((uri, iv)) = &s.key {
                writeln!(w, "#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\",IV=0x{iv:032x}")?;
            }
            if let Some(t) = &s.program_date_time {
                writeln!(w, "#EXT-X-PROGRAM-DATE-TIME:{t}")?;
            }
            for p in &s.parts {
                write!(
                    w,
                    "#EXT-X-PART:DURATION={},URI=\"{}\"",
                    secs(p.duration_ms),
                    p.uri
                )?;
                if p.independent {
                    w.write_str(",INDEPENDENT=YES")?;
                }
                w.write_str("\n")?;
            }
            writeln!(w, "#EXTINF:{},", secs(s.duration_ms))?;
            if let Some((len, offset)) = s.byte_range {
                writeln!(w, "#EXT-X-BYTERANGE:{len}@{offset}")?;
            }
            writeln!(w, "{}", s.uri)?;
        }
        if let Some(uri) = &self.preload_hint_part {
            writeln!(w, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{uri}\"")?;
        }
        for r in &self.rendition_reports {
            write!(
                w,
                "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}",
                r.uri, r.last_msn
            )?;
            if let Some(p) = r.last_part {
                write!(w, ",LAST-PART={p}")?;
            }
            w.write_str("\n")?;
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

/// `#EXT-X-MEDIA` (RFC 8216bis section 4.4.6.1): an alternative rendition, e.g. the audio
/// of a group that variants reference with AUDIO="group".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlternativeMedia {
    /// TYPE: `AUDIO`, `VIDEO` or `SUBTITLES`.
    pub media_type: &'static str,
    /// GROUP-ID.
    pub group_id: String,
    /// NAME.
    pub name: String,
    /// LANGUAGE (RFC 5646 tag).
    pub language: Option<String>,
    /// DEFAULT=YES (and AUTOSELECT=YES).
    pub default: bool,
    /// URI of its media playlist.
    pub uri: Option<String>,
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
    /// AUDIO group id of [`AlternativeMedia`] entries.
    pub audio_group: Option<String>,
    /// SUBTITLES group id of [`AlternativeMedia`] entries (`TYPE=SUBTITLES`).
    pub subtitles_group: Option<String>,
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
    /// `#EXT-X-MEDIA` entries, written before the variants.
    pub media: Vec<AlternativeMedia>,
    /// Variants, in the order they are written.
    pub variants: Vec<VariantStream>,
    /// `#EXT-X-I-FRAME-STREAM-INF` entries (section 4.4.6.3), written after the variants.
    pub iframe_streams: Vec<IFrameStream>,
}

/// One `#EXT-X-I-FRAME-STREAM-INF` (RFC 8216bis section 4.4.6.3): an I-frame playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct IFrameStream {
    /// BANDWIDTH, bit/s (peak over the I-frames).
    pub bandwidth: u64,
    /// CODECS.
    pub codecs: Vec<String>,
    /// RESOLUTION.
    pub resolution: Option<(u32, u32)>,
    /// URI of the I-frame playlist.
    pub uri: String,
}

impl MultivariantPlaylist {
    /// Writes the playlist text (lines end with `\n`).
    pub fn write_to(&self, w: &mut impl Write) -> fmt::Result {
        w.write_str("#EXTM3U\n")?;
        writeln!(w, "#EXT-X-VERSION:{}", self.version)?;
        if self.independent_segments {
            w.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        for m in &self.media {
            write!(
                w,
                "#EXT-X-MEDIA:TYPE={},GROUP-ID=\"{}\",NAME=\"{}\"",
                m.media_type, m.group_id, m.name
            )?;
            if let Some(l) = &m.language {
                write!(w, ",LANGUAGE=\"{l}\"")?;
            }
            if m.default {
                w.write_str(",DEFAULT=YES,AUTOSELECT=YES")?;
            } else if m.media_type == "SUBTITLES" {
                // Offered for the player's language match, never shown unasked.
                w.write_str(",DEFAULT=NO,AUTOSELECT=YES")?;
            }
            if let Some(u) = &m.uri {
                write!(w, ",URI=\"{u}\"")?;
            }
            w.write_str("\n")?;
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
            if let Some(g) = &v.audio_group {
                write!(w, ",AUDIO=\"{g}\"")?;
            }
            if let Some(g) = &v.subtitles_group {
                write!(w, ",SUBTITLES=\"{g}\"")?;
            }
            writeln!(w, "\n{}", v.uri)?;
        }
        for f in &self.iframe_streams {
            write!(w, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={}", f.bandwidth)?;
            if !f.codecs.is_empty() {
                write!(w, ",CODECS=\"{}\"", f.codecs.join(","))?;
            }
            if let Some((width, height)) = f.resolution {
                write!(w, ",RESOLUTION={width}x{height}")?;
            }
            writeln!(w, ",URI=\"{}\"", f.uri)?;
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

    #[test]
    fn a_query_carries_to_every_uri() {
        let pl = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\",URI=\"llhls_2.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nllhls_0.m3u8\n#EXT-X-MAP:URI=\"i.m4s?x=1\"\n";
        let out = with_query(pl, "dvr=60");
        assert!(out.contains("URI=\"llhls_2.m3u8?dvr=60\""));
        assert!(out.contains("\nllhls_0.m3u8?dvr=60\n"));
        assert!(out.contains("URI=\"i.m4s?x=1&dvr=60\""));
        assert!(out.starts_with("#EXTM3U\n#EXT-X-MEDIA"));
    }

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
                    ..Default::default()
                })
                .collect(),
            end_list: true,
            ..Default::default()
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
            iframe_streams: Vec::new(),
            version: 3,
            independent_segments: true,
            media: vec![],
            variants: vec![VariantStream {
                bandwidth: 1_200_000,
                average_bandwidth: Some(900_000),
                codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()],
                resolution: Some((1280, 720)),
                frame_rate: Some(25.0),
                audio_group: None,
                subtitles_group: None,
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

    #[test]
    fn low_latency_media_playlist() {
        let pl = MediaPlaylist {
            version: 9,
            target_duration: Some(2),
            media_sequence: 5,
            independent_segments: true,
            server_control: Some(ServerControl {
                can_block_reload: true,
                part_hold_back_ms: Some(1500),
                hold_back_ms: Some(6000),
                can_skip_until_ms: Some(12000),
            }),
            part_target_ms: Some(500),
            map_uri: Some("init.mp4".into()),
            segments: vec![MediaSegment {
                duration_ms: 2000,
                uri: "s5.m4s".into(),
                program_date_time: Some("2026-11-20T21:44:52.000Z".into()),
                parts: vec![
                    Part {
                        duration_ms: 500,
                        uri: "s5.0.m4s".into(),
                        independent: true,
                    },
                    Part {
                        duration_ms: 500,
                        uri: "s5.1.m4s".into(),
                        independent: false,
                    },
                ],
                ..Default::default()
            }],
            preload_hint_part: Some("s6.0.m4s".into()),
            rendition_reports: vec![RenditionReport {
                uri: "../a/p.m3u8".into(),
                last_msn: 5,
                last_part: Some(3),
            }],
            ..Default::default()
        };
        let text = pl.to_string();
        for line in [
            "#EXT-X-TARGETDURATION:2",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,HOLD-BACK=6.000,PART-HOLD-BACK=1.500",
            "#EXT-X-PART-INF:PART-TARGET=0.500",
            "#EXT-X-MAP:URI=\"init.mp4\"",
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-20T21:44:52.000Z",
            "#EXT-X-PART:DURATION=0.500,URI=\"s5.0.m4s\",INDEPENDENT=YES",
            "#EXT-X-PART:DURATION=0.500,URI=\"s5.1.m4s\"",
            "#EXTINF:2.000,",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s6.0.m4s\"",
            "#EXT-X-RENDITION-REPORT:URI=\"../a/p.m3u8\",LAST-MSN=5,LAST-PART=3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("ENDLIST"));
        // m3u8-rs still reads it as a media playlist with one segment.
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), 1);
        assert_eq!(parsed.media_sequence, 5);
    }
}
