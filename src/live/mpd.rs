//! MPD handling (ISO/IEC 23009-1): the rewrite applied to every uploaded MPD on egress, and a
//! typed read of the parts the origin needs (type, availability start, representations and
//! their segment templates).
//!
//! The rewrite streams XML events through unchanged except:
//! - every `UTCTiming` (MPD-level and inside `ProducerReferenceTime`) points at the origin's
//!   own time endpoint (`urn:mpeg:dash:utc:http-xsdate:2014`; an `http-iso` scheme is kept),
//!   so players sync offline even when the encoder named another server or none; an MPD with
//!   no MPD-level `UTCTiming` gets one (§5.8.4.11 orders it after the Periods);
//! - a dynamic MPD whose `ServiceDescription` has no `Latency` gets
//!   `<Latency target="..."/>` (ISO/IEC 23009-1 Annex K; DASH-IF IOP low-latency §9.X), and
//!   one with no `ServiceDescription` gets one before its first `Period`.
//!
//! ffmpeg's low-latency attributes (`availabilityTimeOffset`, `availabilityTimeComplete`,
//! `ProducerReferenceTime`, `Resync`) are left exactly as uploaded.

use std::borrow::Cow;

use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::{Reader, Writer};
use serde::Deserialize;

use crate::error::ErrorKind;

const XSDATE: &str = "urn:mpeg:dash:utc:http-xsdate:2014";
const ISO: &str = "urn:mpeg:dash:utc:http-iso:2014";

/// An MPD that cannot be read or rewritten.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MpdError {
    /// Not well-formed XML, or not UTF-8.
    #[error("MPD is not well-formed XML: {0}")]
    Xml(String),
    /// Well-formed, but not the shape of an MPD.
    #[error("MPD structure: {0}")]
    Structure(String),
}

impl MpdError {
    /// Always [`ErrorKind::Corrupt`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Corrupt
    }
}

/// What the rewrite sets.
#[derive(Debug, Clone)]
pub struct Rewrite<'a> {
    /// Absolute URL of the origin's time endpoint, e.g. `http://127.0.0.1:5001/time`.
    pub time_url: &'a str,
    /// `Latency@target` in milliseconds for dynamic MPDs that carry none; 0 adds nothing.
    pub target_latency_ms: u64,
    /// `MPD@timeShiftBufferDepth` of dynamic MPDs in seconds (the DVR window, ISO/IEC
    /// 23009-1 §5.3.1.2); `None` keeps the encoder's.
    pub time_shift_buffer_secs: Option<f64>,
}

fn xml_err(e: impl std::fmt::Display) -> MpdError {
    MpdError::Xml(e.to_string())
}

/// Rewrites an uploaded MPD for serving (see the module docs). The XML declaration and
/// everything not named above are written back as they came.
///
/// Errors: [`MpdError::Xml`] when the input is not well-formed UTF-8 XML.
pub fn rewrite(mpd: &[u8], rw: &Rewrite<'_>) -> Result<Vec<u8>, MpdError> {
    let text = std::str::from_utf8(mpd).map_err(xml_err)?;
    let mut reader = Reader::from_str(text);
    let mut out = Writer::new(Vec::with_capacity(mpd.len() + 256));
    let mut path: Vec<String> = Vec::new();
    let mut dynamic = false;
    let mut seen_mpd_utc = false;
    let mut seen_service_description = false;
    let mut sd_has_latency = false;
    loop {
        let event = reader.read_event().map_err(xml_err)?;
        match event {
            Event::Eof => break,
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_owned();
                let parent = path.last().map(String::as_str);
                let mut start = start;
                if name == "MPD" {
                    dynamic = attr(&start, "type").as_deref() == Some("dynamic");
                    if let (true, Some(secs)) = (dynamic, rw.time_shift_buffer_secs) {
                        start = with_attr(&start, "timeShiftBufferDepth", &format!("PT{secs:.3}S"));
                    }
                }
                if name == "Period" && parent == Some("MPD") && !seen_service_description {
                    seen_service_description = true;
                    if dynamic && rw.target_latency_ms > 0 {
                        write_service_description(&mut out, rw.target_latency_ms)?;
                    }
                }
                match name.as_str() {
                    "UTCTiming" => {
                        seen_mpd_utc |= parent == Some("MPD");
                        out.write_event(Event::Start(utc_timing(&start, rw.time_url)))
                            .map_err(xml_err)?;
                    }
                    "ServiceDescription" => {
                        seen_service_description = true;
                        sd_has_latency = false;
                        out.write_event(Event::Start(start)).map_err(xml_err)?;
                    }
                    "Latency" if parent == Some("ServiceDescription") => {
                        sd_has_latency = true;
                        out.write_event(Event::Start(start)).map_err(xml_err)?;
                    }
                    _ => out.write_event(Event::Start(start)).map_err(xml_err)?,
                }
                path.push(name);
            }
            Event::Empty(start) => {
                let name = start.local_name().as_ref().to_owned();
                let parent = path.last().map(String::as_str);
                match name.as_str() {
                    "UTCTiming" => {
                        seen_mpd_utc |= parent == Some("MPD");
                        out.write_event(Event::Empty(utc_timing(&start, rw.time_url)))
                            .map_err(xml_err)?;
                    }
                    "ServiceDescription" if parent == Some("MPD") => {
                        seen_service_description = true;
                        if dynamic && rw.target_latency_ms > 0 {
                            let end = BytesEnd::new(start.name().as_ref().to_owned());
                            out.write_event(Event::Start(start)).map_err(xml_err)?;
                            write_latency(&mut out, rw.target_latency_ms)?;
                            out.write_event(Event::End(end)).map_err(xml_err)?;
                        } else {
                            out.write_event(Event::Empty(start)).map_err(xml_err)?;
                        }
                    }
                    "Latency" if parent == Some("ServiceDescription") => {
                        sd_has_latency = true;
                        out.write_event(Event::Empty(start)).map_err(xml_err)?;
                    }
                    _ => out.write_event(Event::Empty(start)).map_err(xml_err)?,
                }
            }
            Event::End(end) => {
                let name = path.pop().unwrap_or_default();
                if name == "ServiceDescription"
                    && !sd_has_latency
                    && dynamic
                    && rw.target_latency_ms > 0
                {
                    write_latency(&mut out, rw.target_latency_ms)?;
                }
                if name == "MPD" && !seen_mpd_utc {
                    let mut utc = BytesStart::new("UTCTiming");
                    utc.push_attribute(("schemeIdUri", XSDATE));
                    utc.push_attribute(("value", rw.time_url));
                    out.write_event(Event::Empty(utc)).map_err(xml_err)?;
                }
                out.write_event(Event::End(end)).map_err(xml_err)?;
            }
            other => out.write_event(other).map_err(xml_err)?,
        }
    }
    if !path.is_empty() {
        return Err(MpdError::Xml(format!(
            "unclosed element <{}>",
            path.join("/")
        )));
    }
    Ok(out.into_inner())
}

fn attr(start: &BytesStart<'_>, name: &str) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .map(|a| a.value.into_owned())
}

/// `start` with attribute `name` set to `value` (replaced, or added at the end).
fn with_attr(start: &BytesStart<'_>, name: &str, value: &str) -> BytesStart<'static> {
    let mut out = BytesStart::new(start.name().as_ref().to_owned());
    for a in start.attributes().flatten() {
        if a.key.local_name().as_ref() != name {
            out.push_attribute(a);
        }
    }
    out.push_attribute((name, value));
    out
}

fn utc_timing(start: &BytesStart<'_>, time_url: &str) -> BytesStart<'static> {
    let scheme = match attr(start, "schemeIdUri").as_deref() {
        Some(ISO) => ISO,
        _ => XSDATE,
    };
    let mut out = BytesStart::new(start.name().as_ref().to_owned());
    for a in start.attributes().flatten() {
        let key = a.key.local_name().as_ref().to_owned();
        if key != "schemeIdUri" && key != "value" {
            out.push_attribute((a.key.as_ref(), Cow::Owned(a.value.into_owned())));
        }
    }
    out.push_attribute(("schemeIdUri", scheme));
    out.push_attribute(("value", time_url));
    out
}

fn write_latency(out: &mut Writer<Vec<u8>>, target_ms: u64) -> Result<(), MpdError> {
    let mut latency = BytesStart::new("Latency");
    latency.push_attribute(("target", target_ms.to_string().as_str()));
    out.write_event(Event::Empty(latency)).map_err(xml_err)
}

fn write_service_description(out: &mut Writer<Vec<u8>>, target_ms: u64) -> Result<(), MpdError> {
    let mut sd = BytesStart::new("ServiceDescription");
    sd.push_attribute(("id", "0"));
    out.write_event(Event::Start(sd)).map_err(xml_err)?;
    write_latency(out, target_ms)?;
    out.write_event(Event::End(BytesEnd::new("ServiceDescription")))
        .map_err(xml_err)?;
    out.write_event(Event::Text(quick_xml::events::BytesText::new("\n\t")))
        .map_err(xml_err)
}

/// The parts of an MPD the origin reads (ISO/IEC 23009-1 §5.3).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Mpd {
    /// `@type`: `dynamic` (live) or `static`.
    #[serde(rename = "@type", default)]
    pub mpd_type: Option<String>,
    /// `@availabilityStartTime` (xs:dateTime), for dynamic MPDs.
    #[serde(rename = "@availabilityStartTime", default)]
    pub availability_start_time: Option<String>,
    /// `@maxSegmentDuration` (xs:duration).
    #[serde(rename = "@maxSegmentDuration", default)]
    pub max_segment_duration: Option<String>,
    /// `@mediaPresentationDuration` (xs:duration), for static MPDs.
    #[serde(rename = "@mediaPresentationDuration", default)]
    pub media_presentation_duration: Option<String>,
    /// Periods.
    #[serde(rename = "Period", default)]
    pub periods: Vec<Period>,
}

/// `Period`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Period {
    /// Adaptation sets.
    #[serde(rename = "AdaptationSet", default)]
    pub adaptation_sets: Vec<AdaptationSet>,
}

/// `AdaptationSet`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct AdaptationSet {
    /// `@id`.
    #[serde(rename = "@id", default)]
    pub id: Option<String>,
    /// `@contentType` (`video`, `audio`, `text`).
    #[serde(rename = "@contentType", default)]
    pub content_type: Option<String>,
    /// `@mimeType`.
    #[serde(rename = "@mimeType", default)]
    pub mime_type: Option<String>,
    /// `@frameRate` (e.g. `30/1`).
    #[serde(rename = "@frameRate", default)]
    pub frame_rate: Option<String>,
    /// A template shared by the representations.
    #[serde(rename = "SegmentTemplate", default)]
    pub segment_template: Option<SegmentTemplate>,
    /// Representations.
    #[serde(rename = "Representation", default)]
    pub representations: Vec<Representation>,
}

/// `Representation`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Representation {
    /// `@id`, substituted for `$RepresentationID$`.
    #[serde(rename = "@id")]
    pub id: String,
    /// `@mimeType`.
    #[serde(rename = "@mimeType", default)]
    pub mime_type: Option<String>,
    /// `@codecs` (RFC 6381).
    #[serde(rename = "@codecs", default)]
    pub codecs: Option<String>,
    /// `@bandwidth` in bits per second.
    #[serde(rename = "@bandwidth", default)]
    pub bandwidth: Option<u64>,
    /// `@width` in pixels.
    #[serde(rename = "@width", default)]
    pub width: Option<u32>,
    /// `@height` in pixels.
    #[serde(rename = "@height", default)]
    pub height: Option<u32>,
    /// `@frameRate`.
    #[serde(rename = "@frameRate", default)]
    pub frame_rate: Option<String>,
    /// The representation's own template.
    #[serde(rename = "SegmentTemplate", default)]
    pub segment_template: Option<SegmentTemplate>,
}

/// `SegmentTemplate` (§5.3.9.4).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct SegmentTemplate {
    /// `@timescale`, ticks per second of `@duration`.
    #[serde(rename = "@timescale", default)]
    pub timescale: Option<u64>,
    /// `@duration` in `@timescale` ticks.
    #[serde(rename = "@duration", default)]
    pub duration: Option<u64>,
    /// `@initialization` template.
    #[serde(rename = "@initialization", default)]
    pub initialization: Option<String>,
    /// `@media` template.
    #[serde(rename = "@media", default)]
    pub media: Option<String>,
    /// `@startNumber`.
    #[serde(rename = "@startNumber", default)]
    pub start_number: Option<u64>,
    /// `@availabilityTimeOffset` in seconds.
    #[serde(rename = "@availabilityTimeOffset", default)]
    pub availability_time_offset: Option<f64>,
    /// `SegmentTimeline` (§5.3.9.6).
    #[serde(rename = "SegmentTimeline", default)]
    pub segment_timeline: Option<SegmentTimeline>,
}

/// `SegmentTimeline` (ISO/IEC 23009-1 §5.3.9.6).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct SegmentTimeline {
    /// `S` entries in order.
    #[serde(rename = "S", default)]
    pub entries: Vec<TimelineEntry>,
}

/// One `S` element: `1 + @r` segments of `@d` ticks each.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct TimelineEntry {
    /// `@t`: start of the first segment in `@timescale` ticks.
    #[serde(rename = "@t", default)]
    pub t: Option<u64>,
    /// `@d`: duration in `@timescale` ticks.
    #[serde(rename = "@d", default)]
    pub d: u64,
    /// `@r`: repeat count; -1 repeats until the end of the period.
    #[serde(rename = "@r", default)]
    pub r: Option<i64>,
}

/// One representation with its effective template and kind, flattened out of the MPD.
#[derive(Debug, Clone, PartialEq)]
pub struct RepresentationInfo {
    /// `Representation@id`.
    pub id: String,
    /// `video`, `audio`, `text` or `other` (from contentType or mimeType).
    pub content_type: String,
    /// `@mimeType` of the representation or its set.
    pub mime_type: Option<String>,
    /// RFC 6381 codecs string.
    pub codecs: Option<String>,
    /// Declared bandwidth in bits per second.
    pub bandwidth: Option<u64>,
    /// Picture width and height in pixels.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Frame rate as written (e.g. `30/1`).
    pub frame_rate: Option<String>,
    /// The init segment's file name ($RepresentationID$ substituted).
    pub init: Option<String>,
    /// The media template ($RepresentationID$ and $Bandwidth$ substituted).
    pub media: Option<String>,
    /// First segment number.
    pub start_number: u64,
    /// Nominal segment duration in seconds.
    pub segment_duration_secs: Option<f64>,
    /// The number of media segments a `SegmentTimeline` lists (the sum of `1 + @r`);
    /// `None` without a timeline or with an open-ended `@r="-1"`.
    pub timeline_segments: Option<u64>,
}

impl Mpd {
    /// Reads an MPD. Errors: [`MpdError::Structure`].
    pub fn parse(xml: &[u8]) -> Result<Mpd, MpdError> {
        let text = std::str::from_utf8(xml).map_err(xml_err)?;
        quick_xml::de::from_str(text).map_err(|e| MpdError::Structure(e.to_string()))
    }

    /// Whether `@type` is `dynamic`.
    pub fn is_dynamic(&self) -> bool {
        self.mpd_type.as_deref() == Some("dynamic")
    }

    /// `@mediaPresentationDuration` in seconds, when present and well formed.
    pub fn presentation_duration_secs(&self) -> Option<f64> {
        self.media_presentation_duration
            .as_deref()
            .and_then(parse_xs_duration)
    }

    /// Every representation of the first period, with templates resolved.
    pub fn representations(&self) -> Vec<RepresentationInfo> {
        let Some(period) = self.periods.first() else {
            return Vec::new();
        };
        let mut reps = Vec::new();
        for set in &period.adaptation_sets {
            for rep in &set.representations {
                let tpl = rep
                    .segment_template
                    .as_ref()
                    .or(set.segment_template.as_ref());
                let mime = rep.mime_type.clone().or_else(|| set.mime_type.clone());
                let content_type = set
                    .content_type
                    .clone()
                    .or_else(|| {
                        mime.as_deref()
                            .and_then(|m| m.split('/').next())
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "other".into());
                let subst = |t: &str| {
                    t.replace("$RepresentationID$", &rep.id).replace(
                        "$Bandwidth$",
                        &rep.bandwidth.map(|b| b.to_string()).unwrap_or_default(),
                    )
                };
                reps.push(RepresentationInfo {
                    id: rep.id.clone(),
                    content_type,
                    mime_type: mime,
                    codecs: rep.codecs.clone(),
                    bandwidth: rep.bandwidth,
                    width: rep.width,
                    height: rep.height,
                    frame_rate: rep.frame_rate.clone().or_else(|| set.frame_rate.clone()),
                    init: tpl.and_then(|t| t.initialization.as_deref()).map(subst),
                    media: tpl.and_then(|t| t.media.as_deref()).map(subst),
                    start_number: tpl.and_then(|t| t.start_number).unwrap_or(1),
                    segment_duration_secs: tpl.and_then(|t| match (t.duration, t.timescale) {
                        (Some(d), ts) => Some(d as f64 / ts.unwrap_or(1).max(1) as f64),
                        _ => None,
                    }),
                    timeline_segments: tpl.and_then(|t| t.segment_timeline.as_ref()).and_then(
                        |tl| {
                            tl.entries.iter().try_fold(0u64, |n, e| {
                                let r = u64::try_from(e.r.unwrap_or(0)).ok()?;
                                n.checked_add(r)?.checked_add(1)
                            })
                        },
                    ),
                });
            }
        }
        reps
    }
}

impl RepresentationInfo {
    /// The segment number if `file_name` is one of this representation's media segments
    /// (`$Number$`, `$Number%05d$` or `$Time$` matched as decimal digits).
    pub fn segment_number(&self, file_name: &str) -> Option<u64> {
        let media = self.media.as_deref()?;
        let start = media.find("$Number").or_else(|| media.find("$Time$"))?;
        let end = start + 1 + media[start + 1..].find('$')?;
        let (prefix, suffix) = (&media[..start], &media[end + 1..]);
        let digits = file_name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 19 {
            return None;
        }
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEADY: &str = include_str!("../../tests/fixtures/mpd/ffmpeg_ldash_2rend_steady.mpd");
    const FIRST: &str = include_str!("../../tests/fixtures/mpd/ffmpeg_ldash_first_put.mpd");
    const STATIC: &str = include_str!("../../tests/fixtures/mpd/ffmpeg_ldash_final_static.mpd");

    fn rw() -> Rewrite<'static> {
        Rewrite {
            time_url: "http://origin:5001/time",
            target_latency_ms: 1500,
            time_shift_buffer_secs: None,
        }
    }

    #[test]
    fn dvr_window_sets_time_shift_buffer_depth_of_dynamic_mpds_only() {
        let dvr = Rewrite {
            time_shift_buffer_secs: Some(120.0),
            ..rw()
        };
        let out = String::from_utf8(rewrite(STEADY.as_bytes(), &dvr).unwrap()).unwrap();
        assert_eq!(out.matches("timeShiftBufferDepth=").count(), 1, "{out}");
        assert!(out.contains("timeShiftBufferDepth=\"PT120.000S\""), "{out}");
        Mpd::parse(out.as_bytes()).unwrap();
        let out = String::from_utf8(rewrite(STATIC.as_bytes(), &dvr).unwrap()).unwrap();
        assert!(!out.contains("PT120.000S"));
    }

    #[test]
    fn every_utc_timing_points_at_the_origin() {
        let out = String::from_utf8(rewrite(STEADY.as_bytes(), &rw()).unwrap()).unwrap();
        assert!(!out.contains("127.0.0.1:18085"), "{out}");
        // 3 in ProducerReferenceTime + 1 at MPD level.
        assert_eq!(out.matches("value=\"http://origin:5001/time\"").count(), 4);
        // The encoder's Latency is kept, not doubled.
        assert_eq!(out.matches("<Latency").count(), 1);
        assert!(out.contains("target=\"3000\""));
        // Low-latency attributes survive.
        assert!(out.contains("availabilityTimeComplete=\"false\""));
        assert!(out.contains("availabilityTimeOffset=\"1.500\""));
        assert!(out.starts_with("<?xml"));
        Mpd::parse(out.as_bytes()).unwrap();
    }

    #[test]
    fn latency_target_added_when_missing() {
        let out = String::from_utf8(rewrite(FIRST.as_bytes(), &rw()).unwrap()).unwrap();
        assert!(out.contains("<Latency target=\"1500\"/>"), "{out}");
        let sd = out.find("<ServiceDescription").unwrap();
        let lat = out.find("<Latency").unwrap();
        let end = out.find("</ServiceDescription>").unwrap();
        assert!(sd < lat && lat < end);
    }

    #[test]
    fn static_mpd_gets_no_latency_and_missing_utc_timing_is_added() {
        let no_utc = STATIC.replace(
            "<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-xsdate:2014\" value=\"http://127.0.0.1:18081/time\"/>",
            "",
        );
        let out = String::from_utf8(rewrite(no_utc.as_bytes(), &rw()).unwrap()).unwrap();
        assert!(!out.contains("<Latency"));
        let utc = out.find("<UTCTiming").unwrap();
        assert!(utc > out.rfind("</Period>").unwrap());
    }

    #[test]
    fn service_description_inserted_before_period_when_absent() {
        let bare = FIRST.replace("<ServiceDescription id=\"0\">\n\t</ServiceDescription>", "");
        assert!(!bare.contains("ServiceDescription"));
        let out = String::from_utf8(rewrite(bare.as_bytes(), &rw()).unwrap()).unwrap();
        let sd = out.find("<ServiceDescription").unwrap();
        assert!(sd < out.find("<Period").unwrap());
    }

    #[test]
    fn broken_xml_is_an_error() {
        assert!(rewrite(b"<MPD><Period></MPD>", &rw()).is_err());
        assert!(rewrite(b"<MPD", &rw()).is_err());
        assert!(rewrite(&[0xff, 0xfe], &rw()).is_err());
    }

    #[test]
    fn representations_and_segment_numbers() {
        let mpd = Mpd::parse(STEADY.as_bytes()).unwrap();
        assert!(mpd.is_dynamic());
        let reps = mpd.representations();
        assert_eq!(reps.len(), 3);
        assert_eq!(reps[0].id, "0");
        assert_eq!(reps[0].content_type, "video");
        assert_eq!(reps[2].content_type, "audio");
        assert_eq!(reps[1].init.as_deref(), Some("init-stream1.m4s"));
        assert_eq!(reps[1].segment_duration_secs, Some(2.0));
        assert_eq!(reps[1].segment_number("chunk-stream1-00042.m4s"), Some(42));
        assert_eq!(reps[1].segment_number("chunk-stream0-00042.m4s"), None);
        assert_eq!(reps[1].segment_number("chunk-stream1-.m4s"), None);
        assert_eq!(reps[1].segment_number("chunk-stream1-00x42.m4s"), None);
    }
}

/// `mpd` with `query` (one or more `name=value` pairs joined by `&`, no `?`) appended to
/// every URL template and URL attribute a player resolves against the MPD: `@media`,
/// `@initialization`, `@index` (ISO/IEC 23009-1 section 5.3.9.4 `SegmentTemplate`),
/// `@sourceURL` (section 5.3.9.2 `Initialization`/`RepresentationIndex`, section 5.3.9.3
/// `SegmentURL`) and the `Location` element (section 5.3.1.2), joined with `?` or `&` as
/// the URL already has a query or not. `BaseURL` is left alone (it is a prefix). The query
/// is written XML-escaped; it must not contain `$` (a template identifier) or `"`, which
/// callers percent-encode. Used to carry a playback token to every request (the
/// alternative, `UrlQueryInfo` of ISO/IEC 23009-1 Annex I, is not read by every player).
pub fn with_query(mpd: &str, query: &str) -> String {
    const ATTRS: [&str; 4] = ["media", "initialization", "index", "sourceURL"];
    let escaped = query.replace('&', "&amp;");
    let mut out = String::with_capacity(mpd.len() + 256);
    let add = |out: &mut String, url: &str| {
        out.push_str(url);
        if !url.is_empty() {
            out.push_str(if url.contains('?') { "&amp;" } else { "?" });
            out.push_str(&escaped);
        }
    };
    // One pass: every `="` opens an attribute value (its name is the word before it), every
    // `<Location>` an element. Positions are absolute; the next `<Location>` is looked up
    // again only once passed, so each byte is scanned a bounded number of times.
    let find_loc = |from: usize| mpd[from..].find("<Location>").map(|l| from + l);
    let mut pos = 0usize;
    let mut next_loc = find_loc(0);
    loop {
        if next_loc.is_some_and(|l| l < pos) {
            next_loc = find_loc(pos);
        }
        let attr = mpd[pos..].find("=\"").map(|a| pos + a);
        match (attr, next_loc) {
            (Some(a), l) if l.is_none_or(|l| a < l) => {
                let start = a + 2;
                let Some(len) = mpd[start..].find('"') else {
                    break;
                };
                let name = mpd[pos..a]
                    .rsplit(|c: char| c.is_ascii_whitespace())
                    .next()
                    .unwrap_or("");
                out.push_str(&mpd[pos..start]);
                let value = &mpd[start..start + len];
                if ATTRS.contains(&name) {
                    add(&mut out, value);
                } else {
                    out.push_str(value);
                }
                pos = start + len;
            }
            (_, Some(l)) => {
                let start = l + "<Location>".len();
                let Some(len) = mpd[start..].find('<') else {
                    break;
                };
                out.push_str(&mpd[pos..start]);
                add(&mut out, &mpd[start..start + len]);
                pos = start + len;
            }
            (_, None) => break,
        }
    }
    out.push_str(&mpd[pos..]);
    out
}

#[cfg(test)]
mod query_tests {
    use super::with_query;

    #[test]
    fn carries_a_token_to_every_url() {
        let mpd = r#"<MPD><Location>http://h/live/a/stream.mpd</Location><Period><AdaptationSet><SegmentTemplate media="chunk-$RepresentationID$-$Number%05d$.m4s" initialization="init-$RepresentationID$.m4s?x=1" startNumber="1"/><Representation id="0"><BaseURL>a/</BaseURL></Representation></AdaptationSet></Period></MPD>"#;
        let out = with_query(mpd, "hdnts=exp=1~acl=/*~hmac=ab");
        assert!(
            out.contains(
                r#"media="chunk-$RepresentationID$-$Number%05d$.m4s?hdnts=exp=1~acl=/*~hmac=ab""#
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"initialization="init-$RepresentationID$.m4s?x=1&amp;hdnts="#),
            "{out}"
        );
        assert!(
            out.contains("<Location>http://h/live/a/stream.mpd?hdnts="),
            "{out}"
        );
        assert!(out.contains("<BaseURL>a/</BaseURL>"), "{out}");
        assert!(out.contains(r#"startNumber="1""#));
    }

    #[test]
    fn linear_on_a_long_segment_list() {
        let mut mpd = String::from("<MPD><Period><SegmentList>");
        for n in 0..50_000 {
            mpd.push_str(&format!("<SegmentURL media=\"s{n}.m4s\"/>"));
        }
        mpd.push_str("</SegmentList></Period></MPD>");
        let t = std::time::Instant::now();
        let out = with_query(&mpd, "t=1");
        assert_eq!(out.matches("?t=1").count(), 50_000);
        // Quadratic scanning took seconds here; linear takes milliseconds.
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
    }
}

/// Parses an xs:duration of the forms MPDs use (`PT12.0S`, `PT0H0M12.000S`, `P1DT2H`) into
/// seconds. Years and months (no fixed length) and negative durations are `None`.
pub fn parse_xs_duration(v: &str) -> Option<f64> {
    let rest = v.trim().strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut secs = 0.0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let (_, scale) = units.iter().find(|(u, _)| *u == c)?;
            let n: f64 = num.parse().ok()?;
            secs += n * scale;
            any = true;
            num.clear();
        }
        num.is_empty().then_some(())
    };
    take(date, &[('D', 86_400.0)])?;
    take(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    (any && secs.is_finite()).then_some(secs)
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn xs_durations_of_mpds() {
        assert_eq!(parse_xs_duration("PT12.0S"), Some(12.0));
        assert_eq!(parse_xs_duration("PT0H0M12.000S"), Some(12.0));
        assert_eq!(parse_xs_duration("PT1H2M3.5S"), Some(3723.5));
        assert_eq!(parse_xs_duration("P1DT1S"), Some(86_401.0));
        for bad in [
            "", "P", "PT", "12S", "P1Y", "PT1X", "-PT1S", "PT1.2.3S", "PT1",
        ] {
            assert_eq!(parse_xs_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn timeline_segment_counts() {
        let mpd = br#"<MPD type="static" mediaPresentationDuration="PT12.0S"><Period>
<AdaptationSet contentType="video"><Representation id="0">
<SegmentTemplate timescale="15360" initialization="init-$RepresentationID$.m4s" media="chunk-$RepresentationID$-$Number%05d$.m4s" startNumber="1">
<SegmentTimeline><S t="0" d="30720" r="4"/><S d="30720"/></SegmentTimeline></SegmentTemplate>
</Representation></AdaptationSet>
<AdaptationSet contentType="audio"><Representation id="1">
<SegmentTemplate timescale="48000" media="a-$Number$.m4s"><SegmentTimeline><S t="0" d="96000" r="-1"/></SegmentTimeline></SegmentTemplate>
</Representation></AdaptationSet></Period></MPD>"#;
        let m = Mpd::parse(mpd).unwrap();
        assert_eq!(m.presentation_duration_secs(), Some(12.0));
        let reps = m.representations();
        assert_eq!(reps[0].timeline_segments, Some(6));
        assert_eq!(reps[1].timeline_segments, None, "open-ended");
    }
}
