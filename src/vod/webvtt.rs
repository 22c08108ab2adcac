//! WebVTT subtitles: sidecar files in, cues out; cues out as a whole file (DASH) or as
//! segmented WebVTT (HLS).
//!
//! ```text
//! sidecar .vtt --parse--> [Cue] (sorted by start)  --segment--> HLS WebVTT segment
//! tx3g sample  --tx3g_cue--> Cue                   --whole----> DASH text file
//! ```
//!
//! Sources: W3C "WebVTT: The Web Video Text Tracks Format" ("WebVTT file structure",
//! "WebVTT file parsing", "Collect a WebVTT block", "Collect WebVTT cue timings and
//! settings", "Collect a WebVTT timestamp"); RFC 8216bis §3.1.4 "WebVTT" for segmented
//! WebVTT and `X-TIMESTAMP-MAP`; 3GPP TS 26.245 §5.17 for the tx3g sample format.
//!
//! Every time in this module is in milliseconds of presentation time (time 0 is the start
//! of the presentation). Nothing here panics on any input; input sizes are capped by
//! [`MAX_VTT_BYTES`] and [`MAX_CUES`].

use std::fmt::Write;

/// One cue: presentation times in milliseconds from the start of the presentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// Start, ms of presentation time (inclusive).
    pub start_ms: i64,
    /// End, ms of presentation time (exclusive).
    pub end_ms: i64,
    /// Cue settings as written after the end time (e.g. "line:90% align:center"), or empty.
    pub settings: String,
    /// Cue payload lines joined by '\n' (never containing a blank line or "-->").
    pub text: String,
}

/// Why a WebVTT file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VttError {
    /// The file does not start with the `WEBVTT` signature (after an optional UTF-8 BOM),
    /// followed by the end of the file, a space, a tab or a line end (W3C WebVTT
    /// "WebVTT file parsing", steps on the signature).
    #[error("not a WebVTT file (no WEBVTT signature)")]
    NotWebVtt,
    /// The file is larger than [`MAX_VTT_BYTES`]; nothing of it was parsed.
    #[error("WebVTT file of {bytes} bytes, at most {max} accepted", max = MAX_VTT_BYTES)]
    TooLarge {
        /// Size of the file, bytes.
        bytes: usize,
    },
    /// The file holds more than [`MAX_CUES`] cues.
    #[error("WebVTT file with more than {max} cues", max = MAX_CUES)]
    TooManyCues,
    /// A cue timing line ("start --> end [settings]") could not be parsed (W3C WebVTT
    /// "Collect WebVTT cue timings and settings", "Collect a WebVTT timestamp").
    #[error("WebVTT line {line}: malformed cue timing line")]
    BadTiming {
        /// 1-based line number in the file (the signature line is line 1; CRLF, LF and CR
        /// each end one line).
        line: usize,
    },
    /// The file is not valid UTF-8 (W3C WebVTT "WebVTT file structure": UTF-8 only).
    #[error("WebVTT file is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
}

/// Largest sidecar file accepted, in bytes (16 MiB).
pub const MAX_VTT_BYTES: usize = 16 * 1024 * 1024;
/// Most cues accepted from one file or track.
pub const MAX_CUES: usize = 200_000;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses a WebVTT file (optional UTF-8 BOM, "WEBVTT" signature line, optional header
/// lines, then blocks separated by blank lines; NOTE, STYLE and REGION blocks skipped; a
/// cue block is an optional identifier line, a timing line "start --> end [settings]" with
/// timestamps "mm:ss.ttt" or "hh:mm:ss.ttt" (hours may have more than 2 digits), then text
/// lines). CRLF and CR line ends accepted. Cues are returned sorted by start (stable).
/// A cue whose end is not after its start is dropped.
///
/// Follows W3C WebVTT "WebVTT file parsing" and "Collect a WebVTT block": a block is
/// a cue when its first line, or its second line after an identifier, contains "-->"; a
/// later line containing "-->" ends the cue and starts a new block; blocks without a
/// timing line (NOTE, STYLE, REGION, stray text) are skipped. A timing line directly after
/// the signature line or inside the header starts a cue, as in the W3C algorithm.
/// Identifiers are dropped; cue text is kept as written (WebVTT cue text, markup and
/// character references included), U+0000 becoming U+FFFD. Settings are the
/// whitespace-separated `name:value` tokens after the end time, joined by one space;
/// other tokens are dropped (the W3C settings parser ignores them too).
///
/// Times: milliseconds of presentation time (`mm:ss.ttt` is minutes, seconds,
/// milliseconds).
///
/// Errors: [`VttError::TooLarge`] (checked before anything else),
/// [`VttError::NotWebVtt`], [`VttError::NotUtf8`], [`VttError::BadTiming`] (a line in
/// timing position whose timestamps are malformed: `00:00:01,000`, `1:2.3`, minutes or
/// seconds over 59, missing `-->`), [`VttError::TooManyCues`].
pub fn parse(bytes: &[u8]) -> Result<Vec<Cue>, VttError> {
    if bytes.len() > MAX_VTT_BYTES {
        return Err(VttError::TooLarge { bytes: bytes.len() });
    }
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let after_sig = body.strip_prefix(b"WEBVTT").ok_or(VttError::NotWebVtt)?;
    match after_sig.first() {
        None | Some(b' ' | b'\t' | b'\n' | b'\r') => {}
        Some(_) => return Err(VttError::NotWebVtt),
    }
    let text = std::str::from_utf8(body).map_err(|e| VttError::NotUtf8 {
        offset: e.valid_up_to() + (bytes.len() - body.len()),
    })?;

    let mut lines = Lines::new(text);
    // The signature line (its remainder is ignored).
    lines.next_line();
    let mut cues = Vec::new();
    // Header: lines up to the first blank line, unless a timing line comes first.
    if !lines.at_end() && !lines.peek_blank() {
        collect_block(&mut lines, true)?;
    }
    lines.skip_blank();
    while !lines.at_end() {
        if let Some(cue) = collect_block(&mut lines, false)? {
            if cue.end_ms > cue.start_ms {
                if cues.len() >= MAX_CUES {
                    return Err(VttError::TooManyCues);
                }
                cues.push(cue);
            }
        }
        lines.skip_blank();
    }
    cues.sort_by_key(|c| c.start_ms);
    Ok(cues)
}

/// The cue of one tx3g (3GPP timed text, ffmpeg's mov_text) sample shown from `start_ms`
/// to `end_ms`: None for an empty sample (text length 0: nothing shown), a sample shorter
/// than its length field, or end <= start. The text is escaped for WebVTT ('&' -> "&amp;",
/// '<' -> "&lt;", '>' -> "&gt;"), CR/CRLF become '\n', blank lines are dropped and "-->" is
/// written "--&gt;". UTF-16 text (a 0xFEFF BOM after the length) is decoded too.
///
/// Sample shape (3GPP TS 26.245 §5.17 "Sample format"): a 16-bit big-endian text length in
/// bytes, the text (UTF-8, or UTF-16 starting with a byte order mark: `FE FF` big-endian,
/// `FF FE` little-endian), then optional modifier boxes (`styl`, `hlit`, ...), which are
/// ignored. Invalid UTF-8 or UTF-16 is decoded with U+FFFD replacements; U+0000 characters
/// are dropped; lines holding only whitespace count as blank. A sample whose text holds
/// only line ends and whitespace is also None.
///
/// Times: milliseconds of presentation time, returned unchanged (a negative start is
/// kept; the writers clamp it to 0).
pub fn tx3g_cue(sample: &[u8], start_ms: i64, end_ms: i64) -> Option<Cue> {
    if end_ms <= start_ms {
        return None;
    }
    let (len, rest) = sample.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if len == 0 {
        return None;
    }
    let raw = rest.get(..len)?;
    let decoded = match raw {
        [0xFE, 0xFF, tail @ ..] => decode_utf16(tail, u16::from_be_bytes),
        [0xFF, 0xFE, tail @ ..] => decode_utf16(tail, u16::from_le_bytes),
        _ => String::from_utf8_lossy(raw.strip_prefix(UTF8_BOM).unwrap_or(raw)).into_owned(),
    };
    let mut text = String::with_capacity(decoded.len());
    for line in decoded.split(['\n', '\r']) {
        if line.chars().all(|c| c == '\0' || c.is_whitespace()) {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        for c in line.chars() {
            match c {
                '&' => text.push_str("&amp;"),
                '<' => text.push_str("&lt;"),
                '>' => text.push_str("&gt;"),
                '\0' => {}
                c => text.push(c),
            }
        }
    }
    if text.is_empty() {
        return None;
    }
    Some(Cue {
        start_ms,
        end_ms,
        settings: String::new(),
        text,
    })
}

/// One segment of segmented WebVTT for HLS (RFC 8216bis §3.1.4): "WEBVTT", an
/// "X-TIMESTAMP-MAP=MPEGTS:<mpegts_90k>,LOCAL:00:00:00.000" header line, a blank line,
/// then every cue that overlaps [from_ms, to_ms) (start < to_ms && end > from_ms) with its
/// own unchanged timestamps (a cue spanning a boundary is repeated in both segments, as
/// players expect). `mpegts_90k` is the 90 kHz MPEG-TS/fMP4 time of presentation time 0.
///
/// `from_ms`, `to_ms` and the cue times are milliseconds of presentation time. Cues are
/// written in the order given; a cue whose end is <= 0 is left out and a negative start
/// is written `00:00:00.000`. `mpegts_90k` is written as given (wrap it to 33 bits first
/// if the media segments are MPEG-TS and their PTS wrapped).
pub fn segment(cues: &[Cue], from_ms: i64, to_ms: i64, mpegts_90k: u64) -> String {
    let mut out = format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts_90k},LOCAL:00:00:00.000\n\n");
    for cue in cues {
        if cue.start_ms < to_ms && cue.end_ms > from_ms {
            write_cue(&mut out, cue);
        }
    }
    out
}

/// The whole file for a DASH text AdaptationSet: "WEBVTT", a blank line, every cue.
///
/// Cue times are milliseconds of presentation time, written `HH:MM:SS.mmm`; cues are
/// written in the order given, a cue whose end is <= 0 is left out and a negative start is
/// written `00:00:00.000` (W3C WebVTT "WebVTT file structure").
pub fn whole(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        write_cue(&mut out, cue);
    }
    out
}

/// Appends "start --> end[ settings]\ntext\n\n"; nothing for a cue ending at or before 0.
/// The text is written line by line without blank lines, "-->" written "--&gt;", so a
/// hand-made cue cannot break the file.
fn write_cue(out: &mut String, cue: &Cue) {
    if cue.end_ms <= 0 {
        return;
    }
    write_timestamp(out, cue.start_ms);
    out.push_str(" --> ");
    write_timestamp(out, cue.end_ms);
    for token in cue.settings.split_ascii_whitespace() {
        out.push(' ');
        out.push_str(token);
    }
    out.push('\n');
    for line in cue.text.split(['\n', '\r']) {
        if line.is_empty() {
            continue;
        }
        out.push_str(&line.replace("-->", "--&gt;"));
        out.push('\n');
    }
    out.push('\n');
}

/// `HH:MM:SS.mmm` (hours at least two digits) of `ms` clamped to 0.
fn write_timestamp(out: &mut String, ms: i64) {
    let ms = ms.max(0);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
}

/// UTF-16 code units of `bytes` read with `unit` (an odd last byte is ignored), decoded
/// with U+FFFD for unpaired surrogates.
fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes
        .chunks_exact(2)
        .filter_map(|p| <[u8; 2]>::try_from(p).ok())
        .map(unit);
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// A line cursor over text: LF, CRLF and CR each end a line (W3C WebVTT "WebVTT file
/// parsing" replaces CRLF and CR with LF first); a line end at the very end of the text
/// does not start an extra empty line.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    /// 1-based number of the line last returned.
    line_no: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            text,
            pos: 0,
            line_no: 0,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// The next line (without its line end), or None at the end.
    fn next_line(&mut self) -> Option<&'a str> {
        let rest = self.text.get(self.pos..).filter(|r| !r.is_empty())?;
        let (line, advance) = match rest.find(['\n', '\r']) {
            Some(i) => {
                let crlf = rest.get(i..i + 2) == Some("\r\n");
                (rest.get(..i).unwrap_or(""), i + if crlf { 2 } else { 1 })
            }
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.line_no += 1;
        Some(line)
    }

    /// Saved position, to step back to with [`Lines::restore`].
    fn mark(&self) -> (usize, usize) {
        (self.pos, self.line_no)
    }

    fn restore(&mut self, (pos, line_no): (usize, usize)) {
        self.pos = pos;
        self.line_no = line_no;
    }

    /// Whether the next line is empty (the cursor is on a line end).
    fn peek_blank(&self) -> bool {
        matches!(
            self.text.as_bytes().get(self.pos),
            Some(b'\n') | Some(b'\r')
        )
    }

    /// Skips empty lines.
    fn skip_blank(&mut self) {
        while self.peek_blank() {
            let _ = self.next_line();
        }
    }
}

/// W3C WebVTT "Collect a WebVTT block": the cue of the block at the cursor, if it is one.
/// In the header (`in_header`) nothing is a cue; a line with "-->" ends the header and is
/// left for the block loop.
fn collect_block(lines: &mut Lines<'_>, in_header: bool) -> Result<Option<Cue>, VttError> {
    let mut line_count = 0usize;
    let mut seen_arrow = false;
    let mut buffer = String::new();
    let mut cue: Option<(i64, i64, String)> = None;
    loop {
        let before = lines.mark();
        let Some(line) = lines.next_line() else { break };
        line_count += 1;
        if line.contains("-->") {
            if !in_header && (line_count == 1 || (line_count == 2 && !seen_arrow)) {
                seen_arrow = true;
                let timing = parse_timing(line).ok_or(VttError::BadTiming {
                    line: lines.line_no,
                })?;
                cue = Some(timing);
                buffer.clear();
            } else {
                lines.restore(before);
                break;
            }
        } else if line.is_empty() {
            break;
        } else {
            if !buffer.is_empty() {
                buffer.push('\n');
            }
            buffer.push_str(line);
        }
    }
    Ok(cue.map(|(start_ms, end_ms, settings)| Cue {
        start_ms,
        end_ms,
        settings,
        text: if buffer.contains('\0') {
            buffer.replace('\0', "\u{FFFD}")
        } else {
            buffer
        },
    }))
}

fn is_vtt_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\x0c' | b'\n' | b'\r')
}

/// W3C WebVTT "Collect WebVTT cue timings and settings": (start ms, end ms, settings).
fn parse_timing(line: &str) -> Option<(i64, i64, String)> {
    let b = line.as_bytes();
    let mut i = 0usize;
    let skip = |i: &mut usize| {
        while b.get(*i).copied().is_some_and(is_vtt_space) {
            *i += 1;
        }
    };
    skip(&mut i);
    let start = parse_timestamp(b, &mut i)?;
    skip(&mut i);
    if b.get(i..i + 3)? != b"-->" {
        return None;
    }
    i += 3;
    skip(&mut i);
    let end = parse_timestamp(b, &mut i)?;
    let rest = line.get(i..)?;
    let settings = rest
        .split(|c: char| c.is_ascii() && is_vtt_space(c as u8))
        .filter(|t| t.find(':').is_some_and(|p| p > 0 && p + 1 < t.len()))
        .collect::<Vec<_>>()
        .join(" ");
    Some((start, end, settings))
}

/// Digits at `*i`, as (value, digit count); None on overflow.
fn digits(b: &[u8], i: &mut usize) -> Option<(i64, usize)> {
    let mut value = 0i64;
    let mut n = 0usize;
    while let Some(&d) = b.get(*i).filter(|d| d.is_ascii_digit()) {
        value = value.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        *i += 1;
        n += 1;
    }
    Some((value, n))
}

/// W3C WebVTT "Collect a WebVTT timestamp": `[h*:]mm:ss.ttt` in ms. The first field is
/// hours when it is not two digits or is over 59, or when three fields follow.
fn parse_timestamp(b: &[u8], i: &mut usize) -> Option<i64> {
    let (v1, n1) = digits(b, i)?;
    if n1 == 0 {
        return None;
    }
    let hours_first = n1 != 2 || v1 > 59;
    if b.get(*i) != Some(&b':') {
        return None;
    }
    *i += 1;
    let (v2, n2) = digits(b, i)?;
    if n2 != 2 {
        return None;
    }
    let (h, m, s) = if hours_first || b.get(*i) == Some(&b':') {
        if b.get(*i) != Some(&b':') {
            return None;
        }
        *i += 1;
        let (v3, n3) = digits(b, i)?;
        if n3 != 2 {
            return None;
        }
        (v1, v2, v3)
    } else {
        (0, v1, v2)
    };
    if b.get(*i) != Some(&b'.') {
        return None;
    }
    *i += 1;
    let (frac, n4) = digits(b, i)?;
    if n4 != 3 || m > 59 || s > 59 {
        return None;
    }
    h.checked_mul(3_600_000)?
        .checked_add(m * 60_000 + s * 1000 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start_ms: i64, end_ms: i64, settings: &str, text: &str) -> Cue {
        Cue {
            start_ms,
            end_ms,
            settings: settings.to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn parses_a_realistic_file() {
        let file = "\u{FEFF}WEBVTT - French subtitles\r\n\
            Kind: captions\r\n\
            Language: fr\r\n\
            \r\n\
            NOTE this is a comment\r\n\
            spanning two lines\r\n\
            \r\n\
            STYLE\r\n\
            ::cue { color: yellow }\r\n\
            \r\n\
            \r\n\
            intro\r\n\
            00:00:01.000 --> 00:00:04.500 line:90%  align:center\r\n\
            <v Bob>Hello</v> &amp; welcome\r\n\
            second line\r\n\
            \r\n\
            00:05.250 --> 00:07.000\r\n\
            short form\r\n\
            \r\n\
            42\r\n\
            100:00:00.000 --> 100:00:01.001 position:10%,line-left\r\n\
            late\r\n\
            \r\n\
            00:00:00.500 --> 00:00:00.900\r\n\
            early, given after the others\r\n\
            \r\n\
            00:00:09.000 --> 00:00:08.000\r\n\
            ends before it starts: dropped\r\n";
        let cues = parse(file.as_bytes()).unwrap();
        assert_eq!(
            cues,
            vec![
                cue(500, 900, "", "early, given after the others"),
                cue(
                    1000,
                    4500,
                    "line:90% align:center",
                    "<v Bob>Hello</v> &amp; welcome\nsecond line"
                ),
                cue(5250, 7000, "", "short form"),
                cue(360_000_000, 360_001_001, "position:10%,line-left", "late"),
            ]
        );
    }

    #[test]
    fn cr_line_ends_timing_after_signature_and_arrow_in_text() {
        // CR-only line ends; a timing line right after the signature starts a cue; a
        // third line with "-->" ends the cue and starts the next block.
        let file = "WEBVTT\r00:01.000 --> 00:02.000\rone\r00:03.000 --> 00:04.000\rtwo";
        assert_eq!(
            parse(file.as_bytes()).unwrap(),
            vec![cue(1000, 2000, "", "one"), cue(3000, 4000, "", "two")]
        );
        // Stable sort: equal starts keep file order. A cue with no text is kept.
        let file = "WEBVTT\n\n00:01.000 --> 00:03.000\nb\n\n00:01.000 --> 00:02.000\na\n\n\
                    00:00.000 --> 00:00.001\n";
        assert_eq!(
            parse(file.as_bytes()).unwrap(),
            vec![
                cue(0, 1, "", ""),
                cue(1000, 3000, "", "b"),
                cue(1000, 2000, "", "a")
            ]
        );
        // Signature alone, signature with tab, with trailing text.
        assert_eq!(parse(b"WEBVTT").unwrap(), vec![]);
        assert_eq!(parse(b"WEBVTT\tx\n\n").unwrap(), vec![]);
        // Junk settings tokens are dropped, NUL in text becomes U+FFFD.
        let file = "WEBVTT\n\n00:01.000 --> 00:02.000 x :a b: align:start\na\0b\n";
        assert_eq!(
            parse(file.as_bytes()).unwrap(),
            vec![cue(1000, 2000, "align:start", "a\u{FFFD}b")]
        );
    }

    #[test]
    fn malformed_files_are_errors_or_dropped_cues() {
        assert_eq!(parse(b""), Err(VttError::NotWebVtt));
        assert_eq!(parse(b"WEBVT"), Err(VttError::NotWebVtt));
        assert_eq!(
            parse(b"1\n00:01.000 --> 00:02.000\nx\n"),
            Err(VttError::NotWebVtt)
        );
        assert_eq!(parse(b"WEBVTTX\n\n"), Err(VttError::NotWebVtt));
        assert_eq!(parse(b"\xEF\xBB\xBFwebvtt\n"), Err(VttError::NotWebVtt));
        assert_eq!(
            parse(b"\xEF\xBB\xBFWEBVTT\n\n\xFF\n"),
            Err(VttError::NotUtf8 { offset: 11 })
        );
        let bad = |timing: &str| format!("WEBVTT\n\nid\n{timing}\ntext\n");
        for timing in [
            "00:00:01,000 --> 00:00:02,000",
            "1:2.3 --> 00:00:02.000",
            "60:00.000 --> 61:00.000",
            "00:60:00.000 --> 00:61:00.000",
            "00:00:60.000 --> 00:00:61.000",
            "00:00:01.00 --> 00:00:02.000",
            "00:00:01.0000 --> 00:00:02.000",
            "00:01.000 -> 00:02.000 -->",
            "00:01.000 --> ",
            "--> 00:02.000",
            "00:01.000x --> 00:02.000",
            "99999999999999999999:00:00.000 --> 99999999999999999999:00:01.000",
            "-00:01.000 --> 00:02.000",
        ] {
            assert_eq!(
                parse(bad(timing).as_bytes()),
                Err(VttError::BadTiming { line: 4 }),
                "{timing}"
            );
        }
        // End not after start: dropped, not an error.
        assert_eq!(
            parse(b"WEBVTT\n\n00:02.000 --> 00:02.000\nx\n").unwrap(),
            vec![]
        );
    }

    #[test]
    fn size_limits() {
        // All zeros: would be NotWebVtt if it were parsed.
        let big = vec![0u8; MAX_VTT_BYTES + 1];
        assert_eq!(
            parse(&big),
            Err(VttError::TooLarge {
                bytes: MAX_VTT_BYTES + 1
            })
        );
        let mut max = b"WEBVTT".to_vec();
        max.resize(MAX_VTT_BYTES, b' ');
        assert_eq!(parse(&max).unwrap(), vec![]);

        let mut many = String::from("WEBVTT\n\n");
        for _ in 0..=MAX_CUES {
            many.push_str("00:01.000 --> 00:02.000\n\n");
        }
        assert_eq!(parse(many.as_bytes()), Err(VttError::TooManyCues));
    }

    #[test]
    fn segment_picks_overlapping_cues() {
        let cues = vec![
            cue(-500, 0, "", "gone: ends at 0"),
            cue(-500, 1000, "", "clamped"),
            cue(3000, 5000, "align:start", "ends at boundary"),
            cue(5500, 6500, "", "inside"),
            cue(9000, 12_345, "", "spans\nboundary"),
            cue(10_000, 11_000, "", "starts at boundary"),
        ];
        assert_eq!(
            segment(&cues, 5000, 10_000, 900_000),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n\
             00:00:05.500 --> 00:00:06.500\ninside\n\n\
             00:00:09.000 --> 00:00:12.345\nspans\nboundary\n\n"
        );
        assert_eq!(
            segment(&cues, 10_000, 20_000, 0),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n\
             00:00:09.000 --> 00:00:12.345\nspans\nboundary\n\n\
             00:00:10.000 --> 00:00:11.000\nstarts at boundary\n\n"
        );
        assert_eq!(
            segment(&cues, -1000, 5000, 1),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1,LOCAL:00:00:00.000\n\n\
             00:00:00.000 --> 00:00:01.000\nclamped\n\n\
             00:00:03.000 --> 00:00:05.000 align:start\nends at boundary\n\n"
        );
        assert_eq!(
            segment(&cues, 20_000, 30_000, 7),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:7,LOCAL:00:00:00.000\n\n"
        );
    }

    #[test]
    fn whole_writes_every_cue_and_sanitises_hand_made_text() {
        let cues = vec![
            cue(0, 0, "", "never shown"),
            cue(1, 3_600_000 * 123 + 61_001, "line:0", "a\n\nb --> c\r\n"),
        ];
        assert_eq!(
            whole(&cues),
            "WEBVTT\n\n00:00:00.001 --> 123:01:01.001 line:0\na\nb --&gt; c\n\n"
        );
        assert_eq!(whole(&[]), "WEBVTT\n\n");
    }

    fn tx3g(text: &[u8], boxes: &[u8]) -> Vec<u8> {
        let mut s = (text.len() as u16).to_be_bytes().to_vec();
        s.extend_from_slice(text);
        s.extend_from_slice(boxes);
        s
    }

    #[test]
    fn tx3g_samples() {
        // styl box: one record, bold, from char 0 to 5.
        let styl = [
            0, 0, 0, 22, b's', b't', b'y', b'l', 0, 1, 0, 0, 0, 5, 0, 1, 1, 18, 255, 255, 255, 255,
        ];
        assert_eq!(
            tx3g_cue(
                &tx3g("Hé there\r\n\r\nline 2\r".as_bytes(), &styl),
                1000,
                2000
            ),
            Some(cue(1000, 2000, "", "Hé there\nline 2"))
        );
        assert_eq!(tx3g_cue(&tx3g(b"", &[]), 0, 1000), None);
        assert_eq!(tx3g_cue(&[0, 0, b'x'], 0, 1000), None);
        assert_eq!(tx3g_cue(&[0, 10, b'a', b'b', b'c'], 0, 1000), None);
        assert_eq!(tx3g_cue(&[0], 0, 1000), None);
        assert_eq!(tx3g_cue(&[], 0, 1000), None);
        assert_eq!(tx3g_cue(&tx3g(b"x", &[]), 1000, 1000), None);
        assert_eq!(tx3g_cue(&tx3g(b"\r\n \n", &[]), 0, 1000), None);
        // UTF-16 big-endian with BOM: "Hi\n€".
        let utf16 = [0xFE, 0xFF, 0, b'H', 0, b'i', 0, b'\n', 0x20, 0xAC];
        assert_eq!(
            tx3g_cue(&tx3g(&utf16, &[]), -40, 960),
            Some(cue(-40, 960, "", "Hi\n€"))
        );
        // Little-endian BOM too.
        let utf16le = [0xFF, 0xFE, b'o', 0, b'k', 0];
        assert_eq!(
            tx3g_cue(&tx3g(&utf16le, &[]), 0, 1),
            Some(cue(0, 1, "", "ok"))
        );
        assert_eq!(
            tx3g_cue(&tx3g(b"<b>& a --> b\0", &[]), 0, 5),
            Some(cue(0, 5, "", "&lt;b&gt;&amp; a --&gt; b"))
        );
    }

    #[test]
    fn round_trip() {
        let file = "WEBVTT\n\nNOTE x\n\nid\n00:01.000 --> 00:02.000  size:50%\tline:0\n\
                    a &lt; b\nc\n\n1:00:00.000 --> 1:00:01.000\nlate\n\n\
                    00:00.000 --> 00:00.010\n\n";
        let cues = parse(file.as_bytes()).unwrap();
        assert_eq!(cues.len(), 3);
        assert_eq!(cues[1].settings, "size:50% line:0");
        assert_eq!(parse(whole(&cues).as_bytes()).unwrap(), cues);
        let seg = segment(&cues, 0, i64::MAX, 123);
        assert_eq!(parse(seg.as_bytes()).unwrap(), cues);
        let tx = tx3g_cue(&tx3g(b"x --> <y>\n\nz", &[]), 10, 20).unwrap();
        assert_eq!(
            parse(whole(std::slice::from_ref(&tx)).as_bytes()).unwrap(),
            vec![tx]
        );
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn random_input_never_panics() {
        // Well-formed pieces, then pieces that break timing lines or the encoding.
        const GOOD: &[&[u8]] = &[
            b"\n00:01.000 --> 00:02.500\n",
            b"\n01:00:00.000 --> 01:00:00.001 line:0 align:end\n",
            b"\n100:00:00.000 --> 00:00:01.000\n",
            b"\n00:03.000 --> 00:02.000\n",
            b"\n",
            b"\n\n",
            b"\r\n",
            b"\r",
            b"text",
            b" ",
            b"NOTE",
            b"STYLE",
            b"42",
            b"<b>&amp;</b>",
            b"\0",
            b"\xC3\xA9",
        ];
        const BAD: &[&[u8]] = &[b"-->", b"\xFF", b"00:0", b":", b".5", b"9", b"-", b"\t"];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..2000 {
            let len = (rng.next() % 300) as usize;
            let mut bytes = Vec::with_capacity(len * 48 + 8);
            if round % 3 == 2 {
                bytes.extend((0..len).map(|_| rng.next() as u8));
            } else {
                bytes.extend_from_slice(b"WEBVTT\n");
                let pieces = if round % 3 == 0 { 0 } else { BAD.len() };
                for _ in 0..len / 4 {
                    let k = (rng.next() % (GOOD.len() + pieces) as u64) as usize;
                    let piece = if k < GOOD.len() {
                        GOOD[k]
                    } else {
                        BAD[k - GOOD.len()]
                    };
                    bytes.extend_from_slice(piece);
                }
            }
            if let Ok(cues) = parse(&bytes) {
                assert!(cues.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
                for c in &cues {
                    assert!(c.end_ms > c.start_ms);
                    assert!(!c.text.contains("-->") && !c.text.contains("\n\n"));
                }
                assert_eq!(parse(whole(&cues).as_bytes()).unwrap(), cues);
            }
            let (a, b) = (rng.next() as i64 % 10_000, rng.next() as i64 % 10_000);
            let mut sample = ((rng.next() % (len as u64 + 4)) as u16)
                .to_be_bytes()
                .to_vec();
            sample.extend_from_slice(&bytes);
            for c in [tx3g_cue(&bytes, a, b), tx3g_cue(&sample, a, b)]
                .into_iter()
                .flatten()
            {
                assert!(b > a);
                assert!(!c.text.contains("-->") && !c.text.contains("\n\n"));
                assert!(!c.text.contains(['<', '>', '\r']));
                assert_eq!(
                    parse(whole(std::slice::from_ref(&c)).as_bytes()).unwrap(),
                    vec![Cue {
                        start_ms: c.start_ms.max(0),
                        ..c.clone()
                    }]
                    .into_iter()
                    .filter(|c| c.end_ms > c.start_ms)
                    .collect::<Vec<_>>()
                );
            }
        }
    }
}
