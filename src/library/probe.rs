//! What ffprobe says about an upload, and whether it is a video casterpak can transcode.
//!
//! Input: the JSON of `ffprobe -v error -show_format -show_streams -of json FILE`. Pure:
//! the caller runs ffprobe (argv, no shell) and passes its stdout here.

use serde::{Deserialize, Serialize};

/// The facts of a source file the ladder and the asset resource need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// ffprobe's `format_name` (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, ...).
    pub format: String,
    /// Seconds (the container's duration, else the video stream's).
    pub duration_secs: f64,
    /// The first video stream's codec (`h264`, `hevc`, `vp9`, ...).
    pub video_codec: String,
    /// Displayed picture size of the first video stream, pixels.
    pub width: u32,
    pub height: u32,
    /// Frames per second (`avg_frame_rate`, else `r_frame_rate`), when known.
    pub fps: Option<f64>,
    /// The video stream's bitrate, bits per second, when known.
    pub video_bitrate: Option<u64>,
    /// The first audio stream's codec, if any.
    pub audio_codec: Option<String>,
    /// The container's overall bitrate, bits per second, when known.
    pub bitrate: Option<u64>,
}

/// Why an upload is not a usable video (the asset's `error.code` and message).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// ffprobe could not read it (not a media file, truncated, damaged).
    #[error("not a readable media file: {0}")]
    Unreadable(String),
    /// A still image or an image sequence format.
    #[error("an image ({0}), not a video")]
    Image(String),
    /// No video stream (audio only, data).
    #[error("the file has no video stream")]
    NoVideo,
    /// A duration of zero or none.
    #[error("the video has no duration")]
    NoDuration,
    /// Longer than the configured maximum.
    #[error("the video lasts {0:.1} s, over the {1} s limit")]
    TooLong(f64, u64),
}

impl ProbeError {
    /// The stable `error.code` of the asset resource.
    pub fn code(&self) -> &'static str {
        match self {
            ProbeError::Empty => "empty_file",
            ProbeError::Unreadable(_) => "unreadable_input",
            ProbeError::Image(_) => "image_not_video",
            ProbeError::NoVideo => "no_video_stream",
            ProbeError::NoDuration => "zero_duration",
            ProbeError::TooLong(..) => "too_long",
        }
    }
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    bit_rate: Option<String>,
    duration: Option<String>,
    nb_frames: Option<String>,
    #[serde(default)]
    disposition: Disposition,
}

#[derive(Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct Format {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
}

/// Format names of still images and image sequences (ffprobe's `image2`, `*_pipe`, GIF,
/// the MediaCMS refusal list).
fn is_image_format(name: &str) -> bool {
    name == "image2"
        || name.ends_with("_pipe")
        || name == "gif"
        || name == "tty"
        || name == "webp"
        || name == "apng"
}

/// `"30000/1001"` -> 29.97; `None` for `0/0` and junk.
fn rate(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let (n, d): (f64, f64) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
    (n > 0.0 && d > 0.0)
        .then(|| n / d)
        .filter(|f| f.is_finite())
}

fn num<T: std::str::FromStr>(s: &Option<String>) -> Option<T> {
    s.as_deref().and_then(|s| s.trim().parse().ok())
}

/// Reads ffprobe's JSON and decides. `max_duration_secs` 0 means no limit.
///
/// Errors: every [`ProbeError`] but `Empty` (the caller checks the size first) and
/// `Unreadable` when ffprobe failed (the caller passes its stderr instead).
pub fn parse(json: &[u8], max_duration_secs: u64) -> Result<SourceInfo, ProbeError> {
    let p: Probe = serde_json::from_slice(json)
        .map_err(|e| ProbeError::Unreadable(format!("ffprobe output: {e}")))?;
    let format = p
        .format
        .as_ref()
        .and_then(|f| f.format_name.clone())
        .unwrap_or_default();
    if is_image_format(&format) {
        return Err(ProbeError::Image(format));
    }
    let video = p
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0)
        .ok_or(ProbeError::NoVideo)?;
    let codec = video.codec_name.clone().unwrap_or_default();
    if matches!(codec.as_str(), "mjpeg" | "png" | "bmp" | "gif" | "webp")
        && num::<u64>(&video.nb_frames).unwrap_or(1) <= 1
    {
        return Err(ProbeError::Image(codec));
    }
    let (width, height) = match (video.width, video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 && w <= 16384 && h <= 16384 => (w, h),
        _ => {
            return Err(ProbeError::Unreadable(
                "the video stream has no picture size".into(),
            ))
        }
    };
    let duration = p
        .format
        .as_ref()
        .and_then(|f| num::<f64>(&f.duration))
        .or_else(|| num::<f64>(&video.duration))
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or(ProbeError::NoDuration)?;
    if max_duration_secs > 0 && duration > max_duration_secs as f64 {
        return Err(ProbeError::TooLong(duration, max_duration_secs));
    }
    let fps = video
        .avg_frame_rate
        .as_deref()
        .and_then(rate)
        .or_else(|| video.r_frame_rate.as_deref().and_then(rate));
    let audio = p
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"));
    Ok(SourceInfo {
        format,
        duration_secs: duration,
        video_codec: codec,
        width,
        height,
        fps,
        video_bitrate: num(&video.bit_rate),
        audio_codec: audio.and_then(|a| a.codec_name.clone()),
        bitrate: p.format.as_ref().and_then(|f| num(&f.bit_rate)),
    })
}

/// The argv (without the program) of the ffprobe run [`parse`] reads.
pub fn ffprobe_args(path: &str) -> Vec<String> {
    [
        "-v",
        "error",
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        path,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_with_audio() {
        let j = br#"{"streams":[
            {"codec_type":"video","codec_name":"h264","width":1280,"height":720,
             "avg_frame_rate":"30000/1001","r_frame_rate":"30000/1001","bit_rate":"2500000"},
            {"codec_type":"audio","codec_name":"aac"}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"8.000000","bit_rate":"2600000"}}"#;
        let s = parse(j, 0).unwrap();
        assert_eq!((s.width, s.height), (1280, 720));
        assert!((s.fps.unwrap() - 29.97).abs() < 0.01);
        assert_eq!(s.video_bitrate, Some(2_500_000));
        assert_eq!(s.audio_codec.as_deref(), Some("aac"));
        assert_eq!(s.duration_secs, 8.0);
        assert!(matches!(parse(j, 5), Err(ProbeError::TooLong(..))));
    }

    #[test]
    fn refusals() {
        let image =
            br#"{"streams":[{"codec_type":"video","codec_name":"png","width":10,"height":10}],
            "format":{"format_name":"png_pipe"}}"#;
        assert!(matches!(parse(image, 0), Err(ProbeError::Image(_))));
        let audio = br#"{"streams":[{"codec_type":"audio","codec_name":"mp3"}],
            "format":{"format_name":"mp3","duration":"3.0"}}"#;
        assert_eq!(parse(audio, 0), Err(ProbeError::NoVideo));
        let cover = br#"{"streams":[{"codec_type":"audio","codec_name":"mp3"},
            {"codec_type":"video","codec_name":"mjpeg","width":10,"height":10,"disposition":{"attached_pic":1}}],
            "format":{"format_name":"mp3","duration":"3.0"}}"#;
        assert_eq!(
            parse(cover, 0),
            Err(ProbeError::NoVideo),
            "cover art is no video"
        );
        let zero =
            br#"{"streams":[{"codec_type":"video","codec_name":"h264","width":10,"height":10}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"0.000000"}}"#;
        assert_eq!(parse(zero, 0), Err(ProbeError::NoDuration));
        assert!(matches!(
            parse(b"not json", 0),
            Err(ProbeError::Unreadable(_))
        ));
        assert_eq!(rate("0/0"), None);
    }
}
