//! Replay manifests of an archived time range (a recording or a time-range view), rendered
//! from the segment index, pointing at the archived segment files themselves
//! (`/archive/<session>/<file>`), so a CDN caches each segment once whatever the view.
//!
//! - HLS (RFC 8216bis): a multivariant playlist (§4.4.6; video representations as
//!   variants, audio as an `EXT-X-MEDIA` group) and one media playlist per representation:
//!   `EXT-X-MAP` per encoder session (§4.4.4.5), `EXT-X-DISCONTINUITY` between sessions
//!   (§4.4.4.3), `EXT-X-PROGRAM-DATE-TIME` on every segment (§4.4.4.6), `PLAYLIST-TYPE`
//!   `EVENT` while the range grows and `VOD` + `EXT-X-ENDLIST` once it is closed (§4.4.3.5).
//! - DASH (ISO/IEC 23009-1): one Period per encoder session (§5.3.2), `SegmentTemplate` with
//!   `SegmentTimeline` of the real durations (§5.3.9.6) and `presentationTimeOffset` (or a
//!   `SegmentList` where a session's numbering has a gap); `type="dynamic"` while growing,
//!   `type="static"` with `mediaPresentationDuration` once closed.
//!
//! Pure functions: index rows in, text out. Times: segment `media_time`/`duration` in the
//! representation's timescale ticks; `wall_ms` Unix ms.

use std::fmt::Write as _;

use super::{format_ms, RepRow, SegmentRow};
use crate::hls::{
    AlternativeMedia, MediaPlaylist, MediaSegment, MultivariantPlaylist, PlaylistType,
    VariantStream,
};

/// One encoder session of a view: its representations and its segments in the range
/// (ordered by representation, then number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id (the archive folder name).
    pub id: i64,
    /// Its representations.
    pub reps: Vec<RepRow>,
    /// Its segments in the range.
    pub segments: Vec<SegmentRow>,
}

/// How a view is rendered.
#[derive(Debug, Clone)]
pub struct ViewOptions<'a> {
    /// The range still grows (an open recording): EVENT playlists, dynamic MPD.
    pub growing: bool,
    /// Appended to every URI the manifests emit (`?start=...`), empty for none.
    pub query: &'a str,
    /// Now, Unix ms (MPD `publishTime`).
    pub now_ms: i64,
    /// Absolute URL of the origin's `/time` (MPD `UTCTiming`).
    pub time_url: &'a str,
    /// File name prefix of media playlists (`media_` for recordings: `media_<rep>.m3u8`;
    /// `llhls_` for views of a live stream).
    pub media_prefix: &'a str,
    /// Where the view really starts within its first segment, in ms: written as
    /// `EXT-X-START:TIME-OFFSET=..,PRECISE=YES` (RFC 8216bis §4.4.2.2) and added to the first
    /// Period's `presentationTimeOffset`. 0 for none.
    pub start_offset_ms: i64,
}

/// The representations of a view, one per id (the newest session's facts win).
pub fn representations(sessions: &[Session]) -> Vec<RepRow> {
    let mut out: Vec<RepRow> = Vec::new();
    for s in sessions.iter().rev() {
        for r in &s.reps {
            if !out.iter().any(|o| o.rep == r.rep) && s.segments.iter().any(|g| g.rep == r.rep) {
                out.push(r.clone());
            }
        }
    }
    out.sort_by(|a, b| a.rep.cmp(&b.rep));
    out
}

/// Total duration in ms of `rep` in the view.
pub fn duration_ms(sessions: &[Session], rep: &str) -> i64 {
    sessions
        .iter()
        .flat_map(|s| s.segments.iter().filter(|g| g.rep == rep))
        .map(|g| g.dur_ms)
        .sum()
}

fn media_uri(prefix: &str, rep: &str, query: &str) -> String {
    format!("{prefix}{rep}.m3u8{query}")
}

/// The HLS multivariant playlist of a view. `None` when the view has no segment.
pub fn hls_multivariant(sessions: &[Session], o: &ViewOptions<'_>) -> Option<String> {
    let reps = representations(sessions);
    if reps.is_empty() {
        return None;
    }
    // HLS pushes are muxed (audio inside each variant's segments): variants, no group.
    let video: Vec<&RepRow> = reps
        .iter()
        .filter(|r| r.kind == "video" || r.kind == "muxed")
        .collect();
    let audio: Vec<&RepRow> = reps.iter().filter(|r| r.kind == "audio").collect();
    let mut pl = MultivariantPlaylist {
        iframe_streams: Vec::new(),
        version: 7,
        independent_segments: true,
        media: Vec::new(),
        variants: Vec::new(),
    };
    let audio_group = (!video.is_empty() && !audio.is_empty()).then(|| "audio".to_owned());
    if audio_group.is_some() {
        for (i, a) in audio.iter().enumerate() {
            pl.media.push(AlternativeMedia {
                media_type: "AUDIO",
                group_id: "audio".into(),
                name: format!("audio {}", a.rep),
                language: None,
                default: i == 0,
                uri: Some(media_uri(o.media_prefix, &a.rep, o.query)),
            });
        }
    }
    let audio_bw = audio.first().and_then(|a| a.bandwidth).unwrap_or(0);
    let audio_codecs = audio.first().and_then(|a| a.codecs.clone());
    let variants: Vec<&RepRow> = if video.is_empty() {
        audio.clone()
    } else {
        video
    };
    for v in variants {
        let mut codecs: Vec<String> = v.codecs.iter().cloned().collect();
        let mut bandwidth = v.bandwidth.unwrap_or(0);
        if audio_group.is_some() {
            codecs.extend(audio_codecs.iter().cloned());
            bandwidth += audio_bw;
        }
        pl.variants.push(VariantStream {
            bandwidth: bandwidth.max(1),
            average_bandwidth: None,
            codecs,
            resolution: v.width.zip(v.height),
            frame_rate: v
                .frame_rate
                .as_deref()
                .and_then(crate::live::llhls::parse_frame_rate),
            audio_group: audio_group.clone(),
            subtitles_group: None,
            uri: media_uri(o.media_prefix, &v.rep, o.query),
        });
    }
    let mut out = String::new();
    pl.write_to(&mut out).ok()?;
    Some(out)
}

/// The HLS media playlist of representation `rep` in a view. `None` when it has no
/// segment there.
pub fn hls_media(sessions: &[Session], rep: &str, o: &ViewOptions<'_>) -> Option<String> {
    let mut pl = MediaPlaylist {
        version: 7,
        playlist_type: Some(if o.growing {
            PlaylistType::Event
        } else {
            PlaylistType::Vod
        }),
        independent_segments: true,
        end_list: !o.growing,
        ..Default::default()
    };
    for s in sessions {
        let Some(r) = s.reps.iter().find(|r| r.rep == rep) else {
            continue;
        };
        let mut first = true;
        for g in s.segments.iter().filter(|g| g.rep == rep) {
            pl.segments.push(MediaSegment {
                duration_ms: ticks_to_ms(g.duration, r.timescale),
                uri: format!("/archive/{}/{}{}", s.id, g.file, o.query),
                discontinuity: first && !pl.segments.is_empty(),
                program_date_time: Some(format_ms(g.wall_ms)),
                parts: Vec::new(),
                map_uri: (first && !r.init_file.is_empty())
                    .then(|| format!("/archive/{}/{}{}", s.id, r.init_file, o.query)),
                key: None,
                byte_range: None,
            });
            first = false;
        }
    }
    if pl.segments.is_empty() {
        return None;
    }
    let text = pl.to_string();
    if o.start_offset_ms > 0 {
        let start = format!(
            "#EXTM3U\n#EXT-X-START:TIME-OFFSET={}.{:03},PRECISE=YES\n",
            o.start_offset_ms / 1000,
            o.start_offset_ms % 1000
        );
        return Some(text.replacen("#EXTM3U\n", &start, 1));
    }
    Some(text)
}

fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    (ticks as u128 * 1000 / timescale.max(1) as u128) as u64
}

/// ISO 8601 duration with milliseconds (`PT12.345S`).
fn iso_duration(ms: i64) -> String {
    let ms = ms.max(0);
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The DASH MPD of a view. `None` when the view has no segment.
pub fn dash_mpd(sessions: &[Session], o: &ViewOptions<'_>) -> Option<String> {
    // DASH needs CMAF representations (an init segment and real media times): HLS pushes
    // (`muxed`, TS or fMP4) are replayed as HLS only.
    let dash_ready = |s: &&Session| {
        s.reps.iter().any(|r| {
            matches!(r.kind.as_str(), "video" | "audio" | "text")
                && !r.init_file.is_empty()
                && s.segments.iter().any(|g| g.rep == r.rep)
        })
    };
    let sessions: Vec<&Session> = sessions.iter().filter(dash_ready).collect();
    let t0 = sessions.first()?.segments.iter().map(|g| g.wall_ms).min()?;
    let mut periods = String::new();
    let mut static_start = 0i64;
    let mut total = 0i64;
    let mut max_seg = 0i64;
    for (si, s) in sessions.iter().enumerate() {
        let offset_ms = if si == 0 { o.start_offset_ms.max(0) } else { 0 };
        let first_wall = s.segments.iter().map(|g| g.wall_ms).min().unwrap_or(t0);
        // The period's length: its longest representation.
        let period_ms = s
            .reps
            .iter()
            .map(|r| {
                s.segments
                    .iter()
                    .filter(|g| g.rep == r.rep)
                    .map(|g| g.dur_ms)
                    .sum::<i64>()
            })
            .max()
            .unwrap_or(0);
        let start = if o.growing {
            first_wall - t0
        } else {
            static_start
        };
        let period_ms = (period_ms - offset_ms).max(0);
        static_start += period_ms;
        total = if o.growing {
            (first_wall - t0) + period_ms
        } else {
            static_start
        };
        let _ = write!(
            periods,
            "  <Period id=\"s{}\" start=\"{}\">\n    <BaseURL>/archive/{}/</BaseURL>\n",
            s.id,
            iso_duration(start),
            s.id
        );
        for kind in ["video", "audio", "text"] {
            let reps: Vec<&RepRow> = s
                .reps
                .iter()
                .filter(|r| r.kind == kind && s.segments.iter().any(|g| g.rep == r.rep))
                .collect();
            if reps.is_empty() {
                continue;
            }
            let mime = if kind == "audio" {
                "audio/mp4"
            } else if kind == "text" {
                "application/mp4"
            } else {
                "video/mp4"
            };
            let _ = writeln!(
                periods,
                "    <AdaptationSet contentType=\"{kind}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\">"
            );
            for r in reps {
                let segs: Vec<&SegmentRow> = s.segments.iter().filter(|g| g.rep == r.rep).collect();
                max_seg = max_seg.max(segs.iter().map(|g| g.dur_ms).max().unwrap_or(0));
                let _ = write!(
                    periods,
                    "      <Representation id=\"{}\"",
                    xml_escape(&r.rep)
                );
                if let Some(c) = &r.codecs {
                    let _ = write!(periods, " codecs=\"{}\"", xml_escape(c));
                }
                let _ = write!(
                    periods,
                    " bandwidth=\"{}\"",
                    r.bandwidth.unwrap_or(1).max(1)
                );
                if let (Some(w), Some(h)) = (r.width, r.height) {
                    let _ = write!(periods, " width=\"{w}\" height=\"{h}\"");
                }
                if let Some(f) = &r.frame_rate {
                    let _ = write!(periods, " frameRate=\"{}\"", xml_escape(f));
                }
                periods.push_str(">\n");
                write_segments(&mut periods, r, &segs, o.query, offset_ms);
                periods.push_str("      </Representation>\n");
            }
            periods.push_str("    </AdaptationSet>\n");
        }
        periods.push_str("  </Period>\n");
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"");
    if o.growing {
        let _ = write!(
            out,
            " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"PT2S\" timeShiftBufferDepth=\"{}\" suggestedPresentationDelay=\"{}\"",
            format_ms(t0),
            format_ms(o.now_ms),
            iso_duration(total + 60_000),
            iso_duration(3 * max_seg.max(1000))
        );
    } else {
        let _ = write!(
            out,
            " type=\"static\" mediaPresentationDuration=\"{}\"",
            iso_duration(total)
        );
    }
    let _ = writeln!(
        out,
        " minBufferTime=\"{}\">",
        iso_duration(max_seg.max(1000))
    );
    out.push_str(&periods);
    if o.growing && !o.time_url.is_empty() {
        let _ = writeln!(
            out,
            "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{}\"/>",
            xml_escape(o.time_url)
        );
    }
    out.push_str("</MPD>\n");
    Some(out)
}

/// `SegmentTemplate` + `SegmentTimeline` when the numbers run without a gap and the
/// stream's template is known, else `SegmentList` + `SegmentTimeline` (one `SegmentURL`
/// per segment).
fn write_segments(out: &mut String, r: &RepRow, segs: &[&SegmentRow], query: &str, offset_ms: i64) {
    let Some(first) = segs.first() else { return };
    let pto = first.media_time + (offset_ms.max(0) as u64) * r.timescale as u64 / 1000;
    let contiguous = segs.windows(2).all(|w| w[1].number == w[0].number + 1);
    let template = r
        .media_template
        .as_deref()
        .filter(|t| contiguous && t.contains("$Number"));
    let mut timeline = String::from("          <SegmentTimeline>\n");
    let mut i = 0;
    while i < segs.len() {
        let g = segs[i];
        let mut repeat = 0;
        while i + repeat + 1 < segs.len()
            && segs[i + repeat + 1].duration == g.duration
            && segs[i + repeat + 1].media_time == segs[i + repeat].media_time + g.duration
        {
            repeat += 1;
        }
        let _ = write!(
            timeline,
            "            <S t=\"{}\" d=\"{}\"",
            g.media_time, g.duration
        );
        if repeat > 0 {
            let _ = write!(timeline, " r=\"{repeat}\"");
        }
        timeline.push_str("/>\n");
        i += repeat + 1;
    }
    timeline.push_str("          </SegmentTimeline>\n");
    let init = xml_escape(&format!("{}{query}", r.init_file));
    match template {
        Some(t) => {
            let _ = writeln!(
                out,
                "        <SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{}\" startNumber=\"{}\" initialization=\"{init}\" media=\"{}\">",
                r.timescale,
                pto,
                first.number,
                xml_escape(&format!("{t}{query}"))
            );
            out.push_str(&timeline);
            out.push_str("        </SegmentTemplate>\n");
        }
        None => {
            let _ = writeln!(
                out,
                "        <SegmentList timescale=\"{}\" presentationTimeOffset=\"{}\">\n          <Initialization sourceURL=\"{init}\"/>",
                r.timescale, pto
            );
            out.push_str(&timeline);
            for g in segs {
                let _ = writeln!(
                    out,
                    "          <SegmentURL media=\"{}\"/>",
                    xml_escape(&format!("{}{query}", g.file))
                );
            }
            out.push_str("        </SegmentList>\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(id: &str, kind: &str, ts: u32) -> RepRow {
        RepRow {
            rep: id.into(),
            kind: kind.into(),
            codecs: Some(
                if kind == "video" {
                    "avc1.64001f"
                } else {
                    "mp4a.40.2"
                }
                .into(),
            ),
            bandwidth: Some(if kind == "video" { 1_000_000 } else { 128_000 }),
            width: (kind == "video").then_some(640),
            height: (kind == "video").then_some(360),
            frame_rate: None,
            timescale: ts,
            init_file: format!("init-stream{id}.m4s"),
            media_template: Some(format!("chunk-stream{id}-$Number%05d$.m4s")),
        }
    }

    fn seg(session: i64, rep: &str, n: u64, ts: u64, wall: i64) -> SegmentRow {
        SegmentRow {
            session_id: session,
            rep: rep.into(),
            number: n,
            stream: "live/x".into(),
            media_time: (n - 1) * 2 * ts,
            duration: 2 * ts,
            wall_ms: wall + (n as i64 - 1) * 2000,
            dur_ms: 2000,
            file: format!("chunk-stream{rep}-{n:05}.m4s"),
            bytes: 100,
        }
    }

    fn view() -> Vec<Session> {
        let mk = |id: i64, wall: i64, numbers: std::ops::RangeInclusive<u64>| {
            let mut segments = Vec::new();
            for r in [("0", 15360u64), ("1", 48000)] {
                for n in numbers.clone() {
                    segments.push(seg(id, r.0, n, r.1, wall));
                }
            }
            Session {
                id,
                reps: vec![rep("0", "video", 15360), rep("1", "audio", 48000)],
                segments,
            }
        };
        vec![
            mk(1, 1_700_000_000_000, 3..=5),
            mk(2, 1_700_000_100_000, 1..=2),
        ]
    }

    fn opts(growing: bool) -> ViewOptions<'static> {
        ViewOptions {
            growing,
            query: "",
            now_ms: 1_700_000_200_000,
            time_url: "http://127.0.0.1:5001/time",
            media_prefix: "media_",
            start_offset_ms: 0,
        }
    }

    #[test]
    fn hls_media_has_a_map_per_session_and_a_discontinuity_between() {
        let text = hls_media(&view(), "0", &opts(false)).unwrap();
        let pl = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(pl.segments.len(), 5);
        assert!(pl.end_list);
        assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
        assert!(!pl.segments[0].discontinuity);
        assert!(pl.segments[3].discontinuity);
        assert_eq!(
            pl.segments[0].map.as_ref().unwrap().uri,
            "/archive/1/init-stream0.m4s"
        );
        assert_eq!(
            pl.segments[3].map.as_ref().unwrap().uri,
            "/archive/2/init-stream0.m4s"
        );
        assert!(pl.segments.iter().all(|s| s.program_date_time.is_some()));
        assert_eq!(pl.segments[4].uri, "/archive/2/chunk-stream0-00002.m4s");
        let growing = hls_media(&view(), "0", &opts(true)).unwrap();
        assert!(growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
        assert!(!growing.contains("#EXT-X-ENDLIST"));
        assert!(hls_media(&view(), "9", &opts(false)).is_none());
    }

    #[test]
    fn hls_multivariant_lists_video_with_an_audio_group() {
        let text = hls_multivariant(&view(), &opts(false)).unwrap();
        let pl = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(pl.variants.len(), 1);
        assert_eq!(pl.variants[0].uri, "media_0.m3u8");
        assert_eq!(pl.variants[0].bandwidth, 1_128_000);
        assert_eq!(pl.alternatives.len(), 1);
        assert!(hls_multivariant(&[], &opts(false)).is_none());
    }

    #[test]
    fn dash_has_a_period_per_session_and_a_gap_uses_a_segment_list() {
        let mpd = dash_mpd(&view(), &opts(false)).unwrap();
        assert!(mpd.contains("type=\"static\""));
        assert!(mpd.contains("mediaPresentationDuration=\"PT10.000S\""));
        assert_eq!(mpd.matches("<Period ").count(), 2);
        assert!(mpd.contains("<Period id=\"s2\" start=\"PT6.000S\">"));
        assert!(mpd.contains("startNumber=\"3\""));
        assert!(mpd.contains("presentationTimeOffset=\"61440\""));
        assert!(mpd.contains("<S t=\"61440\" d=\"30720\" r=\"2\"/>"));
        let mut v = view();
        v[0].segments.retain(|g| g.number != 4);
        let mpd = dash_mpd(&v, &opts(true)).unwrap();
        assert!(mpd.contains("type=\"dynamic\""));
        assert!(mpd.contains("<SegmentList"));
        assert!(mpd.contains("<SegmentURL media=\"chunk-stream0-00005.m4s\"/>"));
        assert!(mpd.contains("<Period id=\"s2\" start=\"PT96.000S\">"));
        assert!(mpd.contains("UTCTiming"));
    }
}
