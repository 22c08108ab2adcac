//! Egress URLs, decoded once into a typed [`Route`].

use crate::live::llhls::LlHlsFile;
use crate::store::{KeyError, ObjectKey};
use crate::vod::csmil::Format;

/// What an egress GET/HEAD asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/time`: the server clock as ISO 8601 text, for MPD `UTCTiming`
    /// (`urn:mpeg:dash:utc:http-xsdate:2014` and `http-iso`).
    Time,
    /// `/streams`: JSON list of live streams.
    Streams,
    /// `/player`, `/player/` (index page) and `/player/<file>`; the key is relative to the
    /// player folder (`index.html` for the page).
    Player(ObjectKey),
    /// `/i/<rest>` (HLS with TS), `/cmaf/<rest>` (HLS with CMAF segments), `/dash/<rest>`
    /// (DASH): on-demand packaging; `rest` is still percent-encoded.
    Vod(Format, String),
    /// `/<dir>/llhls.m3u8`, `/<dir>/llhls_<RepresentationID>.m3u8`,
    /// `/<dir>/llhls-part_<RepresentationID>_<MSN>_<index>.m4s`: the LL-HLS playlists and
    /// parts the origin makes for the stream in `dir` (names no encoder uploads).
    LlHls { dir: String, file: LlHlsFile },
    /// `/recordings/<id>/master.m3u8`, `/recordings/<id>/media_<RepresentationID>.m3u8`,
    /// `/recordings/<id>/manifest.mpd`: the replay manifests of a recording.
    Recording { id: String, file: String },
    /// `/archive/<session>/<file>`: an archived init or media segment of an encoder
    /// session (what replay manifests point at).
    Archive { session: i64, file: String },
    /// `/v1/vod/live/<source id>/<file>`, `/v1/vod/recording/<recording id>/<file>`:
    /// LiveMix's viewer URLs.
    LiveMix {
        recording: bool,
        id: String,
        file: String,
    },
    /// `/assets/<asset id>/poster.jpg`, `.../sprite.jpg`, `.../thumbnails.vtt`: the images
    /// and WebVTT thumbnails track of a library asset (its rungs are served under `/i/`).
    Asset { id: String, file: String },
    /// Anything else: an object pushed to the ingest listener.
    Object(ObjectKey),
}

impl Route {
    /// Decodes a request path (percent-encoded, as received).
    ///
    /// Errors: [`KeyError`] for paths that are not valid object keys (traversal included).
    pub fn decode(path: &str) -> Result<Route, KeyError> {
        match path {
            "/time" => return Ok(Route::Time),
            "/streams" => return Ok(Route::Streams),
            "/player" | "/player/" => {
                return Ok(Route::Player(ObjectKey::from_decoded("index.html")?));
            }
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("/player/") {
            return Ok(Route::Player(ObjectKey::from_uri_path(&format!(
                "/{rest}"
            ))?));
        }
        for (prefix, format) in [
            ("/i/", Format::Ts),
            ("/cmaf/", Format::Cmaf),
            ("/dash/", Format::Dash),
        ] {
            if let Some(rest) = path.strip_prefix(prefix) {
                return Ok(Route::Vod(format, rest.to_owned()));
            }
        }
        let key = ObjectKey::from_uri_path(path)?;
        if let Some(rest) = key.as_str().strip_prefix("v1/vod/") {
            if let Some((kind, id, file)) = split3(rest) {
                if kind == "live" || kind == "recording" {
                    return Ok(Route::LiveMix {
                        recording: kind == "recording",
                        id: id.to_owned(),
                        file: file.to_owned(),
                    });
                }
            }
        }
        if let Some((first, id, file)) = split3(key.as_str()) {
            match first {
                "recordings" => {
                    return Ok(Route::Recording {
                        id: id.to_owned(),
                        file: file.to_owned(),
                    })
                }
                "assets"
                    if crate::library::valid_id(id)
                        && matches!(file, "poster.jpg" | "sprite.jpg" | "thumbnails.vtt") =>
                {
                    return Ok(Route::Asset {
                        id: id.to_owned(),
                        file: file.to_owned(),
                    })
                }
                "archive" => {
                    if let Ok(session) = id.parse::<i64>() {
                        return Ok(Route::Archive {
                            session,
                            file: file.to_owned(),
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(file) = LlHlsFile::from_file_name(key.file_name()) {
            if !key.dir().is_empty() {
                return Ok(Route::LlHls {
                    dir: key.dir().to_owned(),
                    file,
                });
            }
        }
        Ok(Route::Object(key))
    }
}

/// `a/b/c` (exactly three segments) as its parts.
fn split3(key: &str) -> Option<(&str, &str, &str)> {
    let (a, rest) = key.split_once('/')?;
    let (b, c) = rest.split_once('/')?;
    (!c.contains('/')).then_some((a, b, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form() {
        assert_eq!(Route::decode("/time"), Ok(Route::Time));
        assert_eq!(Route::decode("/streams"), Ok(Route::Streams));
        let index = ObjectKey::from_decoded("index.html").unwrap();
        assert_eq!(Route::decode("/player"), Ok(Route::Player(index.clone())));
        assert_eq!(Route::decode("/player/"), Ok(Route::Player(index)));
        assert_eq!(
            Route::decode("/player/node_modules/dashjs/dist/a.js"),
            Ok(Route::Player(
                ObjectKey::from_decoded("node_modules/dashjs/dist/a.js").unwrap()
            ))
        );
        assert_eq!(
            Route::decode("/i/x/a_,1,2,.mp4.csmil/master.m3u8"),
            Ok(Route::Vod(
                Format::Ts,
                "x/a_,1,2,.mp4.csmil/master.m3u8".into()
            ))
        );
        assert_eq!(
            Route::decode("/live/x/stream.mpd"),
            Ok(Route::Object(
                ObjectKey::from_decoded("live/x/stream.mpd").unwrap()
            ))
        );
        let ll = |file| {
            Ok(Route::LlHls {
                dir: "live/x".into(),
                file,
            })
        };
        assert_eq!(
            Route::decode("/live/x/llhls.m3u8"),
            ll(LlHlsFile::Multivariant)
        );
        assert_eq!(
            Route::decode("/live/x/llhls_0.m3u8"),
            ll(LlHlsFile::Media("0".into()))
        );
        assert_eq!(
            Route::decode("/live/x/llhls_v_1.m3u8"),
            ll(LlHlsFile::Media("v_1".into()))
        );
        assert_eq!(
            Route::decode("/live/x/llhls-part_v_1_12_3.m4s"),
            ll(LlHlsFile::Part {
                rep: "v_1".into(),
                msn: 12,
                index: 3
            })
        );
        assert!(matches!(
            Route::decode("/live/x/llhls-part_1_x_3.m4s"),
            Ok(Route::Object(_))
        ));
        assert!(matches!(
            Route::decode("/live/x/master.m3u8"),
            Ok(Route::Object(_))
        ));
        assert!(matches!(Route::decode("/llhls.m3u8"), Ok(Route::Object(_))));
        assert_eq!(
            Route::decode("/recordings/rec_1/media_0.m3u8"),
            Ok(Route::Recording {
                id: "rec_1".into(),
                file: "media_0.m3u8".into()
            })
        );
        assert_eq!(
            Route::decode("/archive/12/chunk-stream0-00001.m4s"),
            Ok(Route::Archive {
                session: 12,
                file: "chunk-stream0-00001.m4s".into()
            })
        );
        assert!(matches!(
            Route::decode("/archive/x/a.m4s"),
            Ok(Route::Object(_))
        ));
        assert!(Route::decode("/archive/1/%2e%2e").is_err());
        assert!(Route::decode("/player/../Cargo.toml").is_err());
        assert!(Route::decode("/player/%2e%2e/x").is_err());
        assert!(Route::decode("/live/../x").is_err());
        assert!(Route::decode("/").is_err());
    }
}
