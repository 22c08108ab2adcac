//! The static MPD of an on-demand asset (ISO/IEC 23009-1, ISO BMFF live profile §8.4 with
//! `SegmentTemplate` + `SegmentTimeline`; DASH-IF IOP 4.3 §3.2.9 for timelines).
//!
//! ```text
//! MPD type="static" profiles="...isoff-live:2011,...cmaf:2019" mediaPresentationDuration
//!   Period start="PT0S"
//!     AdaptationSet contentType="video" (every rendition with video)
//!       Representation id="v<i>" bandwidth codecs width height frameRate
//!         SegmentTemplate timescale presentationTimeOffset initialization media startNumber
//!           SegmentTimeline  S t d r
//!     AdaptationSet contentType="audio" lang (one per audio track offered)
//!       Role main, AudioChannelConfiguration, Representation id="a<i>" ...
//! ```
//!
//! Times in a timeline are the track's timescale ticks with the fragmenter's offset
//! included; `presentationTimeOffset` removes it, so the Period starts at presentation
//! time 0 of the source (or of the clip window).

use std::fmt::Write;

use quick_xml::escape::escape;

use super::fmp4::TimelineEntry;

/// `Representation` of a video or audio track.
#[derive(Debug, Clone)]
pub struct DashRepresentation {
    /// `@id` (`v0`, `a1`, ...).
    pub id: String,
    /// `@bandwidth`, bit/s (peak segment bit rate).
    pub bandwidth: u64,
    /// `@codecs` (RFC 6381).
    pub codecs: String,
    /// `@width`, `@height` in pixels (video).
    pub size: Option<(u32, u32)>,
    /// `@frameRate` as DASH writes it (`30`, `30000/1001`) (video).
    pub frame_rate: Option<String>,
    /// `@audioSamplingRate` in Hz and the channel configuration (audio).
    pub audio: Option<(u32, u8)>,
    /// `SegmentTemplate@timescale`: ticks per second of the times below.
    pub timescale: u32,
    /// `@presentationTimeOffset` in ticks: the Period's start in this representation's
    /// timeline.
    pub presentation_time_offset: i64,
    /// `SegmentTemplate@initialization` (a relative URL, query included).
    pub initialization: String,
    /// `SegmentTemplate@media` with `$Number$` (a relative URL, query included).
    pub media: String,
    /// The segments.
    pub timeline: Vec<TimelineEntry>,
}

/// An `AdaptationSet`.
#[derive(Debug, Clone)]
pub struct DashAdaptationSet {
    /// `video` or `audio`.
    pub content_type: &'static str,
    /// `@lang` (ISO 639-2/T from `mdhd`; none when undetermined).
    pub lang: Option<String>,
    /// `Label` (the track's `hdlr` name), if any.
    pub label: Option<String>,
    /// Whether this is the default set of its type (`Role value="main"`).
    pub main: bool,
    /// The representations.
    pub representations: Vec<DashRepresentation>,
}

/// A text `AdaptationSet`: one WebVTT file for the whole presentation (`mimeType
/// text/vtt`, DASH-IF IOP 4.3 §6.4.5 "sidecar" subtitles, `Role subtitle`).
#[derive(Debug, Clone)]
pub struct DashTextSet {
    /// `@lang` (as the sidecar names it, or the `mdhd` code).
    pub lang: Option<String>,
    /// `Label`.
    pub label: String,
    /// `BaseURL` of the WebVTT file (relative, query included).
    pub url: String,
}

/// Writes the static MPD. `duration_ms` is `@mediaPresentationDuration` in milliseconds;
/// `texts` follow the audio and video sets.
pub fn write_mpd(duration_ms: u64, sets: &[DashAdaptationSet], texts: &[DashTextSet]) -> String {
    let mut o = String::with_capacity(2048);
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" \
         profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" \
         minBufferTime=\"PT2S\" mediaPresentationDuration=\"{}\">",
        iso_duration(duration_ms)
    );
    o.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    for (k, set) in sets.iter().enumerate() {
        let mime = if set.content_type == "video" {
            "video/mp4"
        } else {
            "audio/mp4"
        };
        let _ = write!(
            o,
            "    <AdaptationSet id=\"{k}\" contentType=\"{}\" mimeType=\"{mime}\" \
             segmentAlignment=\"true\" startWithSAP=\"1\"",
            set.content_type
        );
        if let Some(l) = &set.lang {
            let _ = write!(o, " lang=\"{}\"", escape(l.as_str()));
        }
        if set.content_type == "video" {
            let max_w = set
                .representations
                .iter()
                .filter_map(|r| r.size)
                .map(|s| s.0)
                .max();
            let max_h = set
                .representations
                .iter()
                .filter_map(|r| r.size)
                .map(|s| s.1)
                .max();
            if let (Some(w), Some(h)) = (max_w, max_h) {
                let _ = write!(o, " maxWidth=\"{w}\" maxHeight=\"{h}\"");
            }
        }
        o.push_str(">\n");
        if let Some(label) = set.label.as_deref().filter(|l| !l.is_empty()) {
            let _ = writeln!(o, "      <Label>{}</Label>", escape(label));
        }
        if set.main {
            o.push_str("      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>\n");
        }
        for r in &set.representations {
            let _ = write!(
                o,
                "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\"",
                escape(r.id.as_str()),
                r.bandwidth.max(1),
                escape(r.codecs.as_str())
            );
            if let Some((w, h)) = r.size {
                let _ = write!(o, " width=\"{w}\" height=\"{h}\" sar=\"1:1\"");
            }
            if let Some(f) = &r.frame_rate {
                let _ = write!(o, " frameRate=\"{f}\"");
            }
            if let Some((rate, _)) = r.audio {
                let _ = write!(o, " audioSamplingRate=\"{rate}\"");
            }
            o.push_str(">\n");
            if let Some((_, channels)) = r.audio {
                let _ = writeln!(
                    o,
                    "        <AudioChannelConfiguration \
                     schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" \
                     value=\"{channels}\"/>"
                );
            }
            let start_number = r.timeline.first().map(|e| e.number).unwrap_or(1);
            let _ = writeln!(
                o,
                "        <SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{}\" \
                 initialization=\"{}\" media=\"{}\" startNumber=\"{start_number}\">",
                r.timescale,
                r.presentation_time_offset.max(0),
                escape(r.initialization.as_str()),
                escape(r.media.as_str())
            );
            o.push_str("          <SegmentTimeline>\n");
            write_timeline(&mut o, &r.timeline);
            o.push_str("          </SegmentTimeline>\n");
            o.push_str("        </SegmentTemplate>\n");
            o.push_str("      </Representation>\n");
        }
        o.push_str("    </AdaptationSet>\n");
    }
    for (k, t) in texts.iter().enumerate() {
        let _ = write!(
            o,
            "    <AdaptationSet id=\"{}\" contentType=\"text\" mimeType=\"text/vtt\"",
            sets.len() + k
        );
        if let Some(l) = &t.lang {
            let _ = write!(o, " lang=\"{}\"", escape(l.as_str()));
        }
        o.push_str(">\n");
        let _ = writeln!(o, "      <Label>{}</Label>", escape(t.label.as_str()));
        o.push_str("      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n");
        let _ = writeln!(
            o,
            "      <Representation id=\"s{k}\" bandwidth=\"256\">\n        <BaseURL>{}</BaseURL>\n      </Representation>",
            escape(t.url.as_str())
        );
        o.push_str("    </AdaptationSet>\n");
    }
    o.push_str("  </Period>\n</MPD>\n");
    o
}

/// `S` elements: `@t` on the first and after any gap, equal consecutive durations folded
/// into `@r` (ISO/IEC 23009-1 §5.3.9.6).
fn write_timeline(o: &mut String, timeline: &[TimelineEntry]) {
    let mut k = 0;
    let mut expected: Option<i64> = None;
    while k < timeline.len() {
        let e = timeline[k];
        let mut repeat = 0;
        while k + repeat + 1 < timeline.len() {
            let next = timeline[k + repeat + 1];
            let prev = timeline[k + repeat];
            if next.duration == e.duration && next.start == prev.start.saturating_add(prev.duration)
            {
                repeat += 1;
            } else {
                break;
            }
        }
        o.push_str("            <S");
        if expected != Some(e.start) {
            let _ = write!(o, " t=\"{}\"", e.start.max(0));
        }
        let _ = write!(o, " d=\"{}\"", e.duration);
        if repeat > 0 {
            let _ = write!(o, " r=\"{repeat}\"");
        }
        o.push_str("/>\n");
        let last = timeline[k + repeat];
        expected = Some(last.start.saturating_add(last.duration));
        k += repeat + 1;
    }
}

/// `PT<s>.<ms>S` (xs:duration).
pub fn iso_duration(ms: u64) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

/// A frame rate in frames per second as `@frameRate` (an integer or `N/1001`, else the
/// nearest integer over 1000).
pub fn frame_rate(fps: f64) -> Option<String> {
    if !(fps.is_finite() && fps > 0.0) {
        return None;
    }
    if (fps - fps.round()).abs() < 0.001 {
        return Some(format!("{}", fps.round() as u64));
    }
    let ntsc = fps * 1001.0 / 1000.0;
    if (ntsc - ntsc.round()).abs() < 0.01 {
        return Some(format!("{}/1001", ntsc.round() as u64 * 1000));
    }
    Some(format!("{}/1000", (fps * 1000.0).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(number: u32, start: i64, duration: i64) -> TimelineEntry {
        TimelineEntry {
            number,
            start,
            duration,
            bytes: 0,
        }
    }

    #[test]
    fn timeline_folds_repeats_and_states_gaps() {
        let mut o = String::new();
        write_timeline(
            &mut o,
            &[
                e(1, 100, 10),
                e(2, 110, 10),
                e(3, 120, 10),
                e(4, 130, 7),
                e(5, 150, 7),
            ],
        );
        assert_eq!(
            o,
            "            <S t=\"100\" d=\"10\" r=\"2\"/>\n            <S d=\"7\"/>\n            <S t=\"150\" d=\"7\"/>\n"
        );
    }

    #[test]
    fn frame_rates() {
        assert_eq!(frame_rate(30.0).as_deref(), Some("30"));
        assert_eq!(frame_rate(29.97003).as_deref(), Some("30000/1001"));
        assert_eq!(frame_rate(12.5).as_deref(), Some("12500/1000"));
        assert_eq!(frame_rate(0.0), None);
    }
}
