//! Akamai Media Services On Demand (MSOD) `/i/` URL syntax, decoded once into a typed
//! [`Route`].
//!
//! Forms (the leading `/i/` is already stripped by the server):
//!
//! ```text
//! <dir>/<prefix>,<a>,<b>,...,<suffix>.csmil/master.m3u8      set master (also manifest.m3u8)
//! <...>.csmil/index_<i>_av.m3u8 | index_<i>_a.m3u8            media playlist of rendition i
//! <...>.csmil/segment<N>_<i>_av.ts | segment<N>_<i>_a.ts      segment N (1-based) of rendition i
//! <...>.csmil/index_<i>_v.m3u8 | segment<N>_<i>_v.ts          video only (files with several
//!                                                             audio tracks: demuxed variants)
//! <...>.csmil/index_<i>_a<k>.m3u8 | segment<N>_<i>_a<k>.ts    the file's k-th other audio track
//! <dir>/<file>.mp4/master.m3u8 | index_0_av.m3u8 | segment<N>_0_av.ts   single file
//! ```
//!
//! The same paths under `/cmaf/` (HLS with CMAF segments) and `/dash/` name these files
//! instead of the TS ones ([`Format`]):
//!
//! ```text
//! /cmaf/<path>/master.m3u8                          multivariant playlist (audio group)
//! /cmaf/<path>/index_<i>_v.m3u8 | index_<i>_a.m3u8  media playlist of the video / audio track
//! /dash/<path>/manifest.mpd                         static MPD
//! both: <path>/init_<i>_v.mp4 | init_<i>_a.mp4      CMAF header of the track
//! both: <path>/segment<N>_<i>_v.m4s | _a.m4s        CMAF fragment N (1-based) of the track
//!       (`_a1`, `_a2`, ... name the file's other audio tracks, in file order)
//! /i/ and /cmaf/: <path>/key_<i>.key                 AES-128 key of rendition i (when on)
//! /i/ and /cmaf/: <path>/iframes_<i>.m3u8            I-frame playlist of rendition i
//! /i/:            <path>/iframe<N>_<i>_<k>.ts        its keyframe k (0-based) of segment N
//! /cmaf/:         <path>/iframe<N>_<i>_<k>.m4s       the same keyframe as a CMAF fragment
//! /i/ and /cmaf/: <path>/subs_<i>_<k>.m3u8           subtitle playlist k of rendition i
//! /i/ and /cmaf/: <path>/subs<N>_<i>_<k>.vtt         its WebVTT segment N (1-based)
//! all three:      <path>/subs_<i>_<k>.vtt            the whole subtitle track as WebVTT
//! ```
//!
//! Subtitle track `k` of a file: its WebVTT sidecars (`<name>.<lang>.vtt`, by language),
//! then its `tx3g` tracks in file order.
//!
//! In a set the *whole* path (directories included) is split at its first and last comma:
//! `music/,128,64,/x/a.mp4.csmil` names `music/128/x/a.mp4` and `music/64/x/a.mp4`. The
//! rendition index `i` is the 0-based position in the comma list, in URL order.
//!
//! The path is percent-decoded once, then every file path is checked: no `..` or `.`
//! component, no empty component, no backslash or NUL, not absolute. Anything else is
//! [`RouteError::Forbidden`] and never reaches the file system.

use percent_encoding::percent_decode_str;

use super::fmp4::Media;

/// Which output family a URL belongs to (its prefix on egress).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `/i/`: HLS with MPEG-TS segments.
    Ts,
    /// `/cmaf/`: HLS with CMAF (fMP4) segments.
    Cmaf,
    /// `/dash/`: DASH with CMAF segments.
    Dash,
}

impl Format {
    /// The egress prefix without slashes (`i`, `cmaf`, `dash`).
    pub fn prefix(self) -> &'static str {
        match self {
            Format::Ts => "i",
            Format::Cmaf => "cmaf",
            Format::Dash => "dash",
        }
    }
}

/// Longest accepted request path (after `/i/`), in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Most renditions in one comma set.
pub const MAX_RENDITIONS: usize = 32;

/// Which elementary streams a media playlist or segment carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Audio and video (`_av`): every track the rendition has (video only when it has no audio).
    Av,
    /// Audio only (`_a`).
    Audio,
}

impl Variant {
    /// The URL suffix without underscore: `av` or `a`.
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Av => "av",
            Variant::Audio => "a",
        }
    }
}

/// The renditions one URL names, in URL order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssetSet {
    /// Relative paths under the media root, `/`-separated, percent-decoded and checked.
    pub files: Vec<String>,
    /// Whether the URL was a `.csmil` set (else a single file).
    pub is_set: bool,
}

/// A decoded `/i/` request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// `master.m3u8` / `manifest.m3u8`: the multivariant playlist.
    Master {
        /// The renditions named by the URL.
        set: AssetSet,
    },
    /// `index_<i>_<v>.m3u8`: the media playlist of rendition `index`.
    Media {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// Audio + video or audio only.
        variant: Variant,
    },
    /// `key_<i>.key` (HLS, with `hls_encryption = "aes-128"`): the AES-128 key of
    /// rendition `index`.
    Key {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
    },
    /// `iframes_<i>.m3u8` (HLS): the I-frame playlist of rendition `index`, every keyframe
    /// of its video, each an [`Route::IFrame`] resource.
    IFrames {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
    },
    /// `iframe<N>_<i>_<k>.ts` (`/i/`) or `.m4s` (`/cmaf/`): keyframe `k` of segment `number`
    /// of rendition `index` alone, as a one-frame media segment of the I-frame playlist:
    /// PAT, PMT and its PES (TS), or a CMAF fragment of that one sample (fMP4, after the
    /// video's CMAF header).
    IFrame {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// Segment number, 1-based.
        number: u32,
        /// 0-based position of the keyframe among the segment's keyframes (decode order).
        k: usize,
    },
    /// `manifest.mpd` (DASH): the static MPD of the set.
    Manifest {
        /// The renditions named by the URL.
        set: AssetSet,
    },
    /// `index_<i>_v.m3u8`, `index_<i>_a.m3u8` (CMAF HLS): the media playlist of one track.
    TrackMedia {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// The video or the audio track.
        media: Media,
    },
    /// `init_<i>_v.mp4`, `init_<i>_a.mp4` (CMAF HLS and DASH): the CMAF header of a track.
    Init {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// The video or the audio track.
        media: Media,
    },
    /// `segment<N>_<i>_v.m4s`, `segment<N>_<i>_a.m4s` (CMAF HLS and DASH): CMAF fragment
    /// `number` (1-based) of a track.
    Fragment {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// Segment number, 1-based (the TS segment of the same number covers the same time).
        number: u32,
        /// The video or the audio track.
        media: Media,
    },
    /// `subs_<i>_<k>.m3u8` (HLS): the segmented WebVTT playlist of subtitle track `track`
    /// of rendition `index`.
    Subtitles {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// 0-based subtitle track of the file (sidecars by language, then tx3g tracks).
        track: usize,
    },
    /// `subs<N>_<i>_<k>.vtt` (HLS): WebVTT segment `number` (1-based) of a subtitle track,
    /// covering the time of media segment `number`.
    SubtitleSegment {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// 0-based subtitle track of the file.
        track: usize,
        /// Segment number, 1-based.
        number: u32,
    },
    /// `subs_<i>_<k>.vtt` (every format; the DASH text AdaptationSet): a whole subtitle
    /// track as one WebVTT file.
    SubtitleFile {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// 0-based subtitle track of the file.
        track: usize,
    },
    /// `index_<i>_v.m3u8`, `index_<i>_a<k>.m3u8` (TS): the media playlist of one track of
    /// rendition `index` alone: its video ([`Media::Video`]) or its `k`-th other audio
    /// track ([`Media::AltAudio`], `MovieIndex::alternates[k - 1]`), cut like `_av`.
    TsTrackMedia {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// The video or another audio track (never [`Media::Audio`]: that is `_a`).
        media: Media,
    },
    /// `segment<N>_<i>_v.ts`, `segment<N>_<i>_a<k>.ts` (TS): segment `number` (1-based) of
    /// that track alone.
    TsTrackSegment {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// Segment number, 1-based (the same time range as segment N of `_av`).
        number: u32,
        /// The video or another audio track.
        media: Media,
    },
    /// `segment<N>_<i>_<v>.ts`: segment `number` (1-based) of rendition `index`.
    Segment {
        /// The renditions named by the URL.
        set: AssetSet,
        /// 0-based position of the rendition in the comma list (URL order).
        index: usize,
        /// Segment number, 1-based (MEDIA-SEQUENCE starts at 1).
        number: u32,
        /// Audio + video or audio only.
        variant: Variant,
    },
}

impl Route {
    /// The asset set the route names.
    pub fn set(&self) -> &AssetSet {
        match self {
            Route::Master { set }
            | Route::Manifest { set }
            | Route::Media { set, .. }
            | Route::Segment { set, .. }
            | Route::TrackMedia { set, .. }
            | Route::Init { set, .. }
            | Route::Key { set, .. }
            | Route::IFrames { set, .. }
            | Route::IFrame { set, .. }
            | Route::Subtitles { set, .. }
            | Route::SubtitleSegment { set, .. }
            | Route::SubtitleFile { set, .. }
            | Route::TsTrackMedia { set, .. }
            | Route::TsTrackSegment { set, .. }
            | Route::Fragment { set, .. } => set,
        }
    }

    /// The rendition a media playlist, header or segment route names.
    pub fn index(&self) -> Option<usize> {
        match self {
            Route::Master { .. } | Route::Manifest { .. } => None,
            Route::Media { index, .. }
            | Route::Segment { index, .. }
            | Route::TrackMedia { index, .. }
            | Route::Init { index, .. }
            | Route::Key { index, .. }
            | Route::IFrames { index, .. }
            | Route::IFrame { index, .. }
            | Route::Subtitles { index, .. }
            | Route::SubtitleSegment { index, .. }
            | Route::SubtitleFile { index, .. }
            | Route::TsTrackMedia { index, .. }
            | Route::TsTrackSegment { index, .. }
            | Route::Fragment { index, .. } => Some(*index),
        }
    }
}

/// Why a path is not a valid route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The path does not have one of the forms above.
    #[error("not a VOD route: {0}")]
    NotFound(String),
    /// The path would leave the media root or is otherwise unsafe.
    #[error("refused path: {0}")]
    Forbidden(String),
    /// The path is syntactically broken (bad encoding, too long, rendition index out of range).
    #[error("bad VOD path: {0}")]
    BadRequest(String),
}

/// Decodes a request path (after `/i/`, still percent-encoded) into a [`Route`].
///
/// Errors: [`RouteError::BadRequest`] for overlong or non-UTF-8 paths and rendition
/// indexes outside the set, [`RouteError::Forbidden`] for traversal attempts,
/// [`RouteError::NotFound`] for unknown file names.
pub fn parse(path: &str) -> Result<Route, RouteError> {
    parse_as(path, Format::Ts)
}

/// [`parse`] for the file names of `format` (see the module docs).
///
/// Errors: as [`parse`].
pub fn parse_as(path: &str, format: Format) -> Result<Route, RouteError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(RouteError::BadRequest("path too long".into()));
    }
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| RouteError::BadRequest("path is not UTF-8".into()))?;
    let decoded: &str = &decoded;
    if decoded.contains('\0') || decoded.contains('\\') {
        return Err(RouteError::Forbidden(decoded.into()));
    }
    let (asset, name) = decoded
        .rsplit_once('/')
        .ok_or_else(|| RouteError::NotFound(decoded.into()))?;
    let (set, max_index) = if let Some(stem) = asset.strip_suffix(".csmil") {
        let files = expand_set(stem)?;
        let n = files.len();
        (
            AssetSet {
                files,
                is_set: true,
            },
            n,
        )
    } else {
        check_rel(asset)?;
        (
            AssetSet {
                files: vec![asset.to_string()],
                is_set: false,
            },
            1,
        )
    };
    let route = match format {
        Format::Ts => ts_name(set, name)?,
        Format::Cmaf | Format::Dash => fmp4_name(set, name, format)?,
    };
    if let Some(index) = route.index() {
        if index >= max_index {
            return Err(RouteError::NotFound(format!(
                "rendition {index} of a set of {max_index}"
            )));
        }
    }
    Ok(route)
}

/// `key_<i>.key`.
fn key_name(name: &str) -> Result<Option<usize>, RouteError> {
    match name
        .strip_prefix("key_")
        .and_then(|r| r.strip_suffix(".key"))
    {
        Some(i) => parse_num(i, name).map(Some),
        None => Ok(None),
    }
}

/// `iframes_<i>.m3u8`.
fn iframes_name(name: &str) -> Result<Option<usize>, RouteError> {
    match name
        .strip_prefix("iframes_")
        .and_then(|r| r.strip_suffix(".m3u8"))
    {
        Some(i) => parse_num(i, name).map(Some),
        None => Ok(None),
    }
}

/// `iframe<N>_<i>_<k>.<ext>`: (N, i, k).
fn iframe_name(name: &str, ext: &str) -> Result<Option<(u32, usize, usize)>, RouteError> {
    let Some(rest) = name
        .strip_prefix("iframe")
        .filter(|r| !r.starts_with('s'))
        .and_then(|r| r.strip_suffix(ext))
    else {
        return Ok(None);
    };
    let (number, rest) = segment_number(rest, name)?;
    let (i, k) = rest
        .split_once('_')
        .ok_or_else(|| RouteError::NotFound(name.into()))?;
    Ok(Some((number, parse_num(i, name)?, parse_num(k, name)?)))
}

/// `subs_<i>_<k>.m3u8`, `subs<N>_<i>_<k>.vtt`, `subs_<i>_<k>.vtt`; `hls`: whether the
/// playlist and segment forms are routes of this format.
fn subtitle_name(
    set: AssetSet,
    name: &str,
    hls: bool,
) -> Result<Result<Route, AssetSet>, RouteError> {
    let Some(rest) = name.strip_prefix("subs") else {
        return Ok(Err(set));
    };
    let pair = |s: &str| -> Result<(usize, usize), RouteError> {
        let (i, k) = s
            .split_once('_')
            .ok_or_else(|| RouteError::NotFound(name.into()))?;
        Ok((parse_num(i, name)?, parse_num(k, name)?))
    };
    if let Some(r) = rest.strip_prefix('_') {
        if let Some(p) = r.strip_suffix(".m3u8").filter(|_| hls) {
            let (index, track) = pair(p)?;
            return Ok(Ok(Route::Subtitles { set, index, track }));
        }
        if let Some(p) = r.strip_suffix(".vtt") {
            let (index, track) = pair(p)?;
            return Ok(Ok(Route::SubtitleFile { set, index, track }));
        }
        return Err(RouteError::NotFound(name.into()));
    }
    match rest.strip_suffix(".vtt").filter(|_| hls) {
        Some(r) => {
            let (number, r) = segment_number(r, name)?;
            let (index, track) = pair(r)?;
            Ok(Ok(Route::SubtitleSegment {
                set,
                index,
                track,
                number,
            }))
        }
        None => Err(RouteError::NotFound(name.into())),
    }
}

/// The file names under `/i/`.
fn ts_name(set: AssetSet, name: &str) -> Result<Route, RouteError> {
    let set = match subtitle_name(set, name, true)? {
        Ok(route) => return Ok(route),
        Err(set) => set,
    };
    if let Some(index) = key_name(name)? {
        return Ok(Route::Key { set, index });
    }
    if let Some(index) = iframes_name(name)? {
        return Ok(Route::IFrames { set, index });
    }
    if let Some((number, index, k)) = iframe_name(name, ".ts")? {
        return Ok(Route::IFrame {
            set,
            index,
            number,
            k,
        });
    }
    Ok(match name {
        "master.m3u8" | "manifest.m3u8" => Route::Master { set },
        _ => {
            if let Some(rest) = name
                .strip_prefix("index_")
                .and_then(|r| r.strip_suffix(".m3u8"))
            {
                if let Some((index, media)) = index_alone(rest) {
                    return Ok(Route::TsTrackMedia { set, index, media });
                }
                let (index, variant) = index_variant(rest, name)?;
                Route::Media {
                    set,
                    index,
                    variant,
                }
            } else if let Some(rest) = name
                .strip_prefix("segment")
                .and_then(|r| r.strip_suffix(".ts"))
            {
                let (number, rest) = segment_number(rest, name)?;
                if let Some((index, media)) = index_alone(rest) {
                    return Ok(Route::TsTrackSegment {
                        set,
                        index,
                        number,
                        media,
                    });
                }
                let (index, variant) = index_variant(rest, name)?;
                Route::Segment {
                    set,
                    index,
                    number,
                    variant,
                }
            } else {
                return Err(RouteError::NotFound(name.into()));
            }
        }
    })
}

/// The file names under `/cmaf/` and `/dash/`.
fn fmp4_name(set: AssetSet, name: &str, format: Format) -> Result<Route, RouteError> {
    let set = match subtitle_name(set, name, format == Format::Cmaf)? {
        Ok(route) => return Ok(route),
        Err(set) => set,
    };
    match (format, name) {
        (Format::Cmaf, "master.m3u8" | "manifest.m3u8") => return Ok(Route::Master { set }),
        (Format::Dash, "manifest.mpd") => return Ok(Route::Manifest { set }),
        _ => {}
    }
    if format == Format::Cmaf {
        if let Some(index) = key_name(name)? {
            return Ok(Route::Key { set, index });
        }
        if let Some(index) = iframes_name(name)? {
            return Ok(Route::IFrames { set, index });
        }
        if let Some((number, index, k)) = iframe_name(name, ".m4s")? {
            return Ok(Route::IFrame {
                set,
                index,
                number,
                k,
            });
        }
        if let Some(rest) = name
            .strip_prefix("index_")
            .and_then(|r| r.strip_suffix(".m3u8"))
        {
            let (index, media) = index_media(rest, name)?;
            return Ok(Route::TrackMedia { set, index, media });
        }
    }
    if let Some(rest) = name
        .strip_prefix("init_")
        .and_then(|r| r.strip_suffix(".mp4"))
    {
        let (index, media) = index_media(rest, name)?;
        return Ok(Route::Init { set, index, media });
    }
    if let Some(rest) = name
        .strip_prefix("segment")
        .and_then(|r| r.strip_suffix(".m4s"))
    {
        let (number, rest) = segment_number(rest, name)?;
        let (index, media) = index_media(rest, name)?;
        return Ok(Route::Fragment {
            set,
            index,
            number,
            media,
        });
    }
    Err(RouteError::NotFound(name.into()))
}

/// `<N>_<rest>` of a segment name: N is 1-based.
fn segment_number<'a>(rest: &'a str, name: &str) -> Result<(u32, &'a str), RouteError> {
    let (number, rest) = rest
        .split_once('_')
        .ok_or_else(|| RouteError::NotFound(name.into()))?;
    let number = parse_num(number, name)?;
    if number == 0 || number > u32::MAX as usize {
        return Err(RouteError::NotFound(name.into()));
    }
    Ok((number as u32, rest))
}

/// `<i>_v` or `<i>_a`.
fn index_media(s: &str, name: &str) -> Result<(usize, Media), RouteError> {
    let (i, m) = s
        .split_once('_')
        .ok_or_else(|| RouteError::NotFound(name.into()))?;
    let media = match m {
        "v" => Media::Video,
        "a" => Media::Audio,
        _ => match m.strip_prefix('a').map(|k| parse_num(k, name)) {
            Some(Ok(k)) if (1..=32).contains(&k) && !m.starts_with("a0") => {
                Media::AltAudio(k as u8)
            }
            _ => return Err(RouteError::NotFound(name.into())),
        },
    };
    Ok((parse_num(i, name)?, media))
}

/// `<i>_v` or `<i>_a<k>` (k from 1 to 32, no leading zero): rendition i's video alone or
/// its k-th other audio track.
fn index_alone(s: &str) -> Option<(usize, Media)> {
    match index_media(s, s) {
        Ok((i, m @ (Media::Video | Media::AltAudio(_)))) => Some((i, m)),
        _ => None,
    }
}

/// `<i>_av` or `<i>_a`.
fn index_variant(s: &str, name: &str) -> Result<(usize, Variant), RouteError> {
    let (i, v) = s
        .split_once('_')
        .ok_or_else(|| RouteError::NotFound(name.into()))?;
    let variant = match v {
        "av" => Variant::Av,
        "a" => Variant::Audio,
        _ => return Err(RouteError::NotFound(name.into())),
    };
    Ok((parse_num(i, name)?, variant))
}

/// A decimal number of at most 9 digits, no sign, no leading `+`.
fn parse_num(s: &str, name: &str) -> Result<usize, RouteError> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RouteError::NotFound(name.into()));
    }
    s.parse().map_err(|_| RouteError::NotFound(name.into()))
}

/// Splits `<prefix>,<a>,...,<suffix>` at the first and last comma and checks every file.
fn expand_set(stem: &str) -> Result<Vec<String>, RouteError> {
    let (prefix, rest) = stem
        .split_once(',')
        .ok_or_else(|| RouteError::NotFound(format!("{stem}.csmil has no comma list")))?;
    let (middle, suffix) = rest
        .rsplit_once(',')
        .ok_or_else(|| RouteError::NotFound(format!("{stem}.csmil has no closing comma")))?;
    let items: Vec<&str> = middle.split(',').collect();
    if items.len() > MAX_RENDITIONS {
        return Err(RouteError::BadRequest(format!(
            "{} renditions (at most {MAX_RENDITIONS})",
            items.len()
        )));
    }
    let mut files = Vec::with_capacity(items.len());
    for item in items {
        let file = format!("{prefix}{item}{suffix}");
        check_rel(&file)?;
        files.push(file);
    }
    Ok(files)
}

/// Refuses any relative path that could leave the root or is not a plain file path.
fn check_rel(rel: &str) -> Result<(), RouteError> {
    if rel.is_empty() {
        return Err(RouteError::NotFound("empty asset path".into()));
    }
    if rel.starts_with('/') {
        return Err(RouteError::Forbidden(rel.into()));
    }
    for comp in rel.split('/') {
        if comp.is_empty() || comp == "." || comp == ".." {
            return Err(RouteError::Forbidden(rel.into()));
        }
    }
    Ok(())
}

/// Clip window and bitrate filter from the query string (MSOD `start=`, `end=`, `b=`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Clip start in seconds of presentation time (`start=`).
    pub start: Option<f64>,
    /// Clip end in seconds of presentation time (`end=`).
    pub end: Option<f64>,
    /// Bitrate filter for the master playlist (`b=`), in kbit/s.
    pub bitrate: Vec<BitrateRange>,
}

/// One item of `b=`: `700` (within 10 % of 700 kbit/s), `300-`, `-900` or `300-900` (kbit/s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BitrateRange {
    /// Lowest accepted average bit rate in kbit/s.
    pub min_kbps: f64,
    /// Highest accepted average bit rate in kbit/s.
    pub max_kbps: f64,
}

impl Options {
    /// Parses a raw query string; unknown keys are ignored.
    ///
    /// Errors: [`RouteError::BadRequest`] for a value that is not a finite non-negative
    /// number, or `end <= start`.
    pub fn parse(query: Option<&str>) -> Result<Options, RouteError> {
        let mut o = Options::default();
        let Some(q) = query else { return Ok(o) };
        if q.len() > 1024 {
            return Err(RouteError::BadRequest("query too long".into()));
        }
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| RouteError::BadRequest(format!("bad {k}=")))?;
            match k {
                "start" => o.start = Some(secs(&v, k)?),
                "end" => o.end = Some(secs(&v, k)?),
                "b" => {
                    for item in v.split(',').filter(|s| !s.is_empty()) {
                        o.bitrate.push(rate_range(item)?);
                    }
                }
                _ => {}
            }
        }
        if let (Some(s), Some(e)) = (o.start, o.end) {
            if e <= s {
                return Err(RouteError::BadRequest(format!(
                    "end={e} is not after start={s}"
                )));
            }
        }
        Ok(o)
    }

    /// Whether the clip window is set (it changes every playlist and segment).
    pub fn has_clip(&self) -> bool {
        self.start.is_some() || self.end.is_some()
    }

    /// The clip part of the query, canonical, for child URIs and cache keys (`""` if none).
    pub fn clip_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.start {
            parts.push(format!("start={s}"));
        }
        if let Some(e) = self.end {
            parts.push(format!("end={e}"));
        }
        parts.join("&")
    }

    /// Whether a rendition of average bit rate `bps` (bit/s) passes the `b=` filter.
    pub fn accepts_bitrate(&self, bps: u64) -> bool {
        if self.bitrate.is_empty() {
            return true;
        }
        let kbps = bps as f64 / 1000.0;
        self.bitrate
            .iter()
            .any(|r| kbps >= r.min_kbps && kbps <= r.max_kbps)
    }
}

fn secs(v: &str, k: &str) -> Result<f64, RouteError> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=1e7).contains(&x) => Ok(x),
        _ => Err(RouteError::BadRequest(format!("{k}={v} is not seconds"))),
    }
}

fn rate_range(item: &str) -> Result<BitrateRange, RouteError> {
    let num = |s: &str| -> Result<f64, RouteError> {
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(RouteError::BadRequest(format!("b={item}"))),
        }
    };
    Ok(match item.split_once('-') {
        None => {
            let x = num(item)?;
            BitrateRange {
                min_kbps: x * 0.9,
                max_kbps: x * 1.1,
            }
        }
        Some((lo, hi)) => BitrateRange {
            min_kbps: if lo.is_empty() { 0.0 } else { num(lo)? },
            max_kbps: if hi.is_empty() {
                f64::INFINITY
            } else {
                num(hi)?
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[&str]) -> AssetSet {
        AssetSet {
            files: files.iter().map(|s| s.to_string()).collect(),
            is_set: true,
        }
    }

    #[test]
    fn csmil_master_and_manifest() {
        let want = Route::Master {
            set: set(&["clip_360p.mp4", "clip_540p.mp4", "clip_720p.mp4"]),
        };
        assert_eq!(
            parse("clip_,360,540,720,p.mp4.csmil/master.m3u8"),
            Ok(want.clone())
        );
        assert_eq!(
            parse("clip_,360,540,720,p.mp4.csmil/manifest.m3u8"),
            Ok(want)
        );
    }

    #[test]
    fn other_audio_tracks_as_ts() {
        let one = || AssetSet {
            files: vec!["m/a.mp4".into()],
            is_set: false,
        };
        assert_eq!(
            parse("m/a.mp4/index_0_a2.m3u8"),
            Ok(Route::TsTrackMedia {
                set: one(),
                index: 0,
                media: Media::AltAudio(2)
            })
        );
        assert_eq!(
            parse("m/a.mp4/segment7_0_a1.ts"),
            Ok(Route::TsTrackSegment {
                set: one(),
                index: 0,
                number: 7,
                media: Media::AltAudio(1)
            })
        );
        assert_eq!(
            parse("m/a.mp4/segment2_0_v.ts"),
            Ok(Route::TsTrackSegment {
                set: one(),
                index: 0,
                number: 2,
                media: Media::Video
            })
        );
        for bad in [
            "m/a.mp4/index_0_a0.m3u8",
            "m/a.mp4/segment1_0_a01.ts",
            "m/a.mp4/index_0_a33.m3u8",
            "m/a.mp4/segment1_1_a1.ts",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subtitle_routes_of_every_format() {
        let one = || AssetSet {
            files: vec!["m/a.mp4".into()],
            is_set: false,
        };
        for format in [Format::Ts, Format::Cmaf] {
            assert_eq!(
                parse_as("m/a.mp4/subs_0_1.m3u8", format),
                Ok(Route::Subtitles {
                    set: one(),
                    index: 0,
                    track: 1
                })
            );
            assert_eq!(
                parse_as("m/a.mp4/subs12_0_0.vtt", format),
                Ok(Route::SubtitleSegment {
                    set: one(),
                    index: 0,
                    track: 0,
                    number: 12
                })
            );
        }
        for format in [Format::Ts, Format::Cmaf, Format::Dash] {
            assert_eq!(
                parse_as("m/a.mp4/subs_0_2.vtt", format),
                Ok(Route::SubtitleFile {
                    set: one(),
                    index: 0,
                    track: 2
                })
            );
        }
        // DASH has no subtitle playlists or segments; bad forms are not routes.
        for (path, format) in [
            ("m/a.mp4/subs_0_0.m3u8", Format::Dash),
            ("m/a.mp4/subs1_0_0.vtt", Format::Dash),
            ("m/a.mp4/subs0_0_0.vtt", Format::Ts),
            ("m/a.mp4/subs_0.vtt", Format::Ts),
            ("m/a.mp4/subs_0_x.m3u8", Format::Cmaf),
            ("m/a.mp4/subs_0_0.srt", Format::Ts),
            ("m/a.mp4/subs_1_0.vtt", Format::Ts),
        ] {
            assert!(
                matches!(parse_as(path, format), Err(RouteError::NotFound(_))),
                "{path} {format:?}: {:?}",
                parse_as(path, format)
            );
        }
    }

    #[test]
    fn akamai_example_with_empty_suffix_parts() {
        let r = parse("d/1_5q8yua9n_1_,q2fzuix0,t2rfozqd,_1.mp4.csmil/index_1_av.m3u8").unwrap();
        assert_eq!(
            r,
            Route::Media {
                set: set(&[
                    "d/1_5q8yua9n_1_q2fzuix0_1.mp4",
                    "d/1_5q8yua9n_1_t2rfozqd_1.mp4"
                ]),
                index: 1,
                variant: Variant::Av
            }
        );
    }

    #[test]
    fn commas_in_a_directory() {
        let r = parse("music/,128,64,32,320,/1548664947/a.mp4.csmil/segment1_0_a.ts").unwrap();
        assert_eq!(
            r,
            Route::Segment {
                set: set(&[
                    "music/128/1548664947/a.mp4",
                    "music/64/1548664947/a.mp4",
                    "music/32/1548664947/a.mp4",
                    "music/320/1548664947/a.mp4"
                ]),
                index: 0,
                number: 1,
                variant: Variant::Audio
            }
        );
    }

    #[test]
    fn single_file_forms() {
        let single = AssetSet {
            files: vec!["dir/f.mp4".into()],
            is_set: false,
        };
        assert_eq!(
            parse("dir/f.mp4/master.m3u8"),
            Ok(Route::Master {
                set: single.clone()
            })
        );
        assert_eq!(
            parse("dir/f.mp4/index_0_av.m3u8"),
            Ok(Route::Media {
                set: single.clone(),
                index: 0,
                variant: Variant::Av
            })
        );
        assert_eq!(
            parse("dir/f.mp4/segment12_0_av.ts"),
            Ok(Route::Segment {
                set: single.clone(),
                index: 0,
                number: 12,
                variant: Variant::Av
            })
        );
        assert_eq!(
            parse("dir/f.mp4/index_0_a.m3u8"),
            Ok(Route::Media {
                set: single,
                index: 0,
                variant: Variant::Audio
            })
        );
        // Percent-encoded names are decoded once.
        assert_eq!(
            parse("my%20dir/f%2C1.mp4/master.m3u8").unwrap().set().files,
            vec!["my dir/f,1.mp4".to_string()]
        );
    }

    #[test]
    fn iframe_resources() {
        let single = AssetSet {
            files: vec!["dir/f.mp4".into()],
            is_set: false,
        };
        let iframe = |number, k| Route::IFrame {
            set: single.clone(),
            index: 0,
            number,
            k,
        };
        assert_eq!(parse("dir/f.mp4/iframe3_0_2.ts"), Ok(iframe(3, 2)));
        assert_eq!(
            parse_as("dir/f.mp4/iframe1_0_0.m4s", Format::Cmaf),
            Ok(iframe(1, 0))
        );
        assert_eq!(
            parse("dir/f.mp4/iframes_0.m3u8"),
            Ok(Route::IFrames {
                set: single.clone(),
                index: 0
            })
        );
        for (p, format) in [
            ("dir/f.mp4/iframe0_0_0.ts", Format::Ts),
            ("dir/f.mp4/iframe1_0.ts", Format::Ts),
            ("dir/f.mp4/iframe1_0_x.ts", Format::Ts),
            ("dir/f.mp4/iframe1_0_0.m4s", Format::Ts),
            ("dir/f.mp4/iframe1_0_0.ts", Format::Cmaf),
            ("dir/f.mp4/iframe1_0_0.m4s", Format::Dash),
        ] {
            assert!(parse_as(p, format).is_err(), "{p} {format:?}");
        }
        assert!(matches!(
            parse("dir/f.mp4/iframe1_1_0.ts"),
            Err(RouteError::NotFound(_))
        ));
    }

    #[test]
    fn hostile_paths_are_refused() {
        for p in [
            "../x.mp4/master.m3u8",
            "a/../../x.mp4/master.m3u8",
            "%2e%2e/x.mp4/master.m3u8",
            "a%2F..%2F..%2Fetc/x.mp4/master.m3u8",
            "/etc/x.mp4/master.m3u8",
            "a//x.mp4/master.m3u8",
            "./x.mp4/master.m3u8",
            "a\\..\\x.mp4/master.m3u8",
            "x%00.mp4/master.m3u8",
            "a/,..,/b.mp4.csmil/master.m3u8",
            "a,/../,b.mp4.csmil/master.m3u8",
            ",..,/x.mp4.csmil/master.m3u8",
        ] {
            assert!(
                matches!(parse(p), Err(RouteError::Forbidden(_))),
                "{p} gave {:?}",
                parse(p)
            );
        }
    }

    #[test]
    fn malformed_paths() {
        for p in [
            "",
            "master.m3u8",
            "x.mp4/index_0_xx.m3u8",
            "x.mp4/index__av.m3u8",
            "x.mp4/index_-1_av.m3u8",
            "x.mp4/index_+1_av.m3u8",
            "x.mp4/segment0_0_av.ts",
            "x.mp4/segment99999999999_0_av.ts",
            "x.mp4/segment1_0_av.mp4",
            "x.mp4/index_1_av.m3u8",
            "a_,1,2,b.mp4.csmil/index_2_av.m3u8",
            "nocomma.mp4.csmil/master.m3u8",
            "one,comma.mp4.csmil/master.m3u8",
            "x.mp4/other.txt",
        ] {
            assert!(
                matches!(parse(p), Err(RouteError::NotFound(_))),
                "{p} gave {:?}",
                parse(p)
            );
        }
        // ".." inside a name is not a component.
        assert!(parse("a_,..,_b.mp4.csmil/master.m3u8").is_ok());
        assert!(matches!(
            parse(&"a".repeat(5000)),
            Err(RouteError::BadRequest(_))
        ));
        assert!(matches!(
            parse("%ff%fe.mp4/master.m3u8"),
            Err(RouteError::BadRequest(_))
        ));
        let many = format!("a_{}_b.mp4.csmil/master.m3u8", ",1".repeat(40) + ",");
        assert!(matches!(parse(&many), Err(RouteError::BadRequest(_))));
    }

    /// Random paths from a hostile alphabet never panic, and anything accepted names only
    /// clean relative files.
    #[test]
    fn random_paths_never_escape() {
        let alphabet: Vec<&str> = vec![
            "a",
            "/",
            ",",
            ".",
            "..",
            "%2e",
            "%2f",
            "%2F",
            "%2c",
            "%00",
            "%ff",
            "\\",
            ".csmil",
            ".mp4",
            "master.m3u8",
            "index_0_av.m3u8",
            "segment1_0_av.ts",
            "_",
            "1",
            "%",
            " ",
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            let mut p = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = 1 + (seed % 12) as usize;
            let mut x = seed;
            for _ in 0..n {
                p.push_str(alphabet[(x % alphabet.len() as u64) as usize]);
                x = x.rotate_left(7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            }
            if let Ok(r) = parse(&p) {
                for f in &r.set().files {
                    assert!(!f.starts_with('/'), "{p} -> {f}");
                    assert!(
                        f.split('/').all(|c| !c.is_empty() && c != "." && c != ".."),
                        "{p} -> {f}"
                    );
                    assert!(!f.contains('\\') && !f.contains('\0'), "{p} -> {f}");
                }
            }
        }
    }

    #[test]
    fn options() {
        let o = Options::parse(Some("start=10&end=20.5&b=300-,700&x=y")).unwrap();
        assert_eq!(o.start, Some(10.0));
        assert_eq!(o.end, Some(20.5));
        assert_eq!(o.clip_query(), "start=10&end=20.5");
        assert!(o.accepts_bitrate(5_000_000));
        assert!(!o.accepts_bitrate(200_000));
        let o = Options::parse(Some("b=700")).unwrap();
        assert!(o.accepts_bitrate(720_000));
        assert!(!o.accepts_bitrate(900_000));
        let o = Options::parse(Some("b=-500")).unwrap();
        assert!(o.accepts_bitrate(100_000));
        assert!(!o.accepts_bitrate(600_000));
        assert_eq!(Options::parse(None).unwrap(), Options::default());
        for bad in ["start=-1", "start=abc", "end=inf", "start=5&end=5", "b=x-"] {
            assert!(Options::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
