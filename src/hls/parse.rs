//! Reading the HLS playlists an encoder pushes (RFC 8216bis §4.4): just what the archive
//! needs from a media playlist (media sequence, segments with EXTINF, EXT-X-MAP,
//! EXT-X-PROGRAM-DATE-TIME, EXT-X-DISCONTINUITY, EXT-X-ENDLIST) and from a multivariant
//! playlist (each variant's BANDWIDTH, CODECS, RESOLUTION and URI). Unknown tags are
//! skipped; malformed values make the line count as absent, never a panic.

/// One segment of a media playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSegment {
    /// The URI line as written.
    pub uri: String,
    /// EXTINF in milliseconds (rounded).
    pub duration_ms: u64,
    /// The EXT-X-MAP URI in force for this segment.
    pub map_uri: Option<String>,
    /// EXT-X-PROGRAM-DATE-TIME of this segment, Unix ms.
    pub pdt_ms: Option<i64>,
    /// An EXT-X-DISCONTINUITY precedes it.
    pub discontinuity: bool,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedMedia {
    /// EXT-X-MEDIA-SEQUENCE (0 when absent, §4.4.3.2).
    pub media_sequence: u64,
    /// Segments in order; segment `i` has media sequence number `media_sequence + i`.
    pub segments: Vec<ParsedSegment>,
    /// EXT-X-ENDLIST is present.
    pub end_list: bool,
}

/// One EXT-X-STREAM-INF variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedVariant {
    /// Its media playlist URI as written.
    pub uri: String,
    /// BANDWIDTH in bits per second.
    pub bandwidth: Option<u64>,
    /// CODECS (RFC 6381 list).
    pub codecs: Option<String>,
    /// RESOLUTION in pixels.
    pub resolution: Option<(u32, u32)>,
}

/// Largest number of segments read from one playlist (a hostile playlist cannot make the
/// archive allocate more).
pub const MAX_SEGMENTS: usize = 100_000;

fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    // Attribute lists (§4.2): NAME=value pairs separated by commas outside quotes.
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

fn parse_pdt(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Reads a media playlist; `None` when the text is not one (no `#EXTM3U`, or a
/// multivariant playlist).
pub fn parse_media(text: &str) -> Option<ParsedMedia> {
    if !text.trim_start().starts_with("#EXTM3U") || text.contains("#EXT-X-STREAM-INF") {
        return None;
    }
    let mut out = ParsedMedia::default();
    let mut duration: Option<u64> = None;
    let mut map: Option<String> = None;
    let mut pdt: Option<i64> = None;
    let mut discontinuity = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            out.media_sequence = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let secs = v.split(',').next().unwrap_or("").trim();
            duration = secs
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite() && *d >= 0.0 && *d < 86_400.0)
                .map(|d| (d * 1000.0).round() as u64);
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            map = attr(v, "URI").map(str::to_owned);
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = parse_pdt(v);
        } else if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if line == "#EXT-X-ENDLIST" {
            out.end_list = true;
        } else if !line.starts_with('#') {
            if let Some(d) = duration.take() {
                if out.segments.len() < MAX_SEGMENTS {
                    out.segments.push(ParsedSegment {
                        uri: line.to_owned(),
                        duration_ms: d,
                        map_uri: map.clone(),
                        pdt_ms: pdt.take(),
                        discontinuity: std::mem::take(&mut discontinuity),
                    });
                }
            }
        }
    }
    Some(out)
}

/// Reads the variants of a multivariant playlist (empty for anything else).
pub fn parse_multivariant(text: &str) -> Vec<ParsedVariant> {
    let mut out = Vec::new();
    let mut pending: Option<&str> = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            pending = Some(v);
        } else if !line.is_empty() && !line.starts_with('#') {
            if let Some(a) = pending.take() {
                out.push(ParsedVariant {
                    uri: line.to_owned(),
                    bandwidth: attr(a, "BANDWIDTH").and_then(|b| b.parse().ok()),
                    codecs: attr(a, "CODECS").map(str::to_owned),
                    resolution: attr(a, "RESOLUTION").and_then(|r| {
                        let (w, h) = r.split_once('x')?;
                        Some((w.parse().ok()?, h.parse().ok()?))
                    }),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_media_playlist() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n\
#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-29T18:00:00.500Z\n#EXTINF:2.000000,\nstream_5.m4s\n\
#EXT-X-DISCONTINUITY\n#EXTINF:1.960000,\nstream_6.m4s\n#EXT-X-ENDLIST\n";
        let p = parse_media(text).unwrap();
        assert_eq!(p.media_sequence, 5);
        assert!(p.end_list);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[0].uri, "stream_5.m4s");
        assert_eq!(p.segments[0].duration_ms, 2000);
        assert_eq!(p.segments[0].map_uri.as_deref(), Some("init_0.mp4"));
        assert_eq!(p.segments[0].pdt_ms, Some(1_795_975_200_500));
        assert!(!p.segments[0].discontinuity && p.segments[1].discontinuity);
        assert_eq!(p.segments[1].duration_ms, 1960);
        assert_eq!(p.segments[1].pdt_ms, None);
        assert!(parse_media("not a playlist").is_none());
        assert!(
            parse_media("#EXTM3U\n#EXTINF:x,\nseg.ts\n#EXTINF:-1,\nb.ts\n")
                .unwrap()
                .segments
                .is_empty()
        );
    }

    #[test]
    fn variants() {
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1630000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\nstream_0.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=528000\nstream_1.m3u8\n";
        let v = parse_multivariant(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].bandwidth, Some(1_630_000));
        assert_eq!(v[0].codecs.as_deref(), Some("avc1.64001e,mp4a.40.2"));
        assert_eq!(v[0].resolution, Some((640, 360)));
        assert_eq!(v[1].uri, "stream_1.m3u8");
        assert!(parse_media(text).is_none());
    }
}
