//! The live stream model: which streams exist, their manifests, representations and init
//! segments, and which missing objects are "the next segment" worth waiting for.
//!
//! A stream is the folder of an uploaded manifest (`live/x` for `live/x/stream.mpd`). The
//! registry learns from finished uploads ([`Registry::on_complete`]) and from the data dir at
//! start ([`Registry::recover`]); it holds parsed facts only, never media bytes.

pub mod llhls;
pub mod mpd;
pub mod timeline;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;

use crate::cmaf::{InitInfo, TrackKind};
use crate::store::{Object, ObjectKey, Store};
use mpd::{Mpd, RepresentationInfo};

/// What the registry knows of one stream.
#[derive(Debug, Default)]
struct StreamInner {
    /// The last uploaded MPD of the stream, parsed, and its key.
    mpd: Option<(ObjectKey, Arc<Mpd>)>,
    /// The store's object id of that MPD upload (0 when recovered from disk): an MPD upload
    /// that began earlier but finished later does not replace it.
    mpd_id: u64,
    /// The MPD's representations, resolved once per upload (looked up on every segment
    /// request and ingest event).
    representations: Vec<RepresentationInfo>,
    /// Uploaded HLS playlists (key -> whether it is a multivariant playlist).
    playlists: BTreeMap<ObjectKey, bool>,
    /// Init segments by file name.
    inits: HashMap<String, Arc<InitInfo>>,
    /// When an upload into the stream last finished.
    last_upload: Option<Instant>,
    /// The encoder published a static MPD or a playlist with EXT-X-ENDLIST.
    ended: bool,
}

/// One stream as listed at `/streams`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StreamListing {
    /// The stream's folder, e.g. `live/x`.
    pub name: String,
    /// `live` while uploads arrive, `ended` after a final manifest or idleness.
    pub state: &'static str,
    /// Manifests a player can open.
    pub manifests: Vec<ManifestListing>,
}

/// A manifest of a listed stream.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ManifestListing {
    /// `dash`, `hls` (an uploaded playlist) or `llhls` (made by the origin).
    pub kind: &'static str,
    /// Absolute path on the egress listener.
    pub url: String,
}

/// The registry of live streams.
#[derive(Debug, Default)]
pub struct Registry {
    streams: DashMap<String, Arc<RwLock<StreamInner>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn stream(&self, dir: &str) -> Arc<RwLock<StreamInner>> {
        Arc::clone(self.streams.entry(dir.to_owned()).or_default().value())
    }

    fn existing(&self, dir: &str) -> Option<Arc<RwLock<StreamInner>>> {
        self.streams.get(dir).map(|s| Arc::clone(s.value()))
    }

    /// Learns from a finished upload: manifests are parsed, init segments remembered.
    pub fn on_complete(&self, object: &Object, body: &[u8]) {
        let key = object.key();
        if key.extension().as_deref() == Some("mpd") {
            let stream = self.stream(key.dir());
            let mut s = stream.write().unwrap_or_else(|e| e.into_inner());
            if object.id() < s.mpd_id {
                // ffmpeg sends its last dynamic MPD and the final static one within a
                // millisecond: the one that began last is the stream's MPD, as in the store.
                tracing::debug!(key = %key, "an older MPD upload finished late; ignored");
                return;
            }
            s.mpd_id = object.id();
        }
        let init = object.init();
        self.learn(key, body, init);
    }

    /// Learns from one object's bytes (an upload or a persisted file).
    pub fn learn(&self, key: &ObjectKey, body: &[u8], init: Option<Arc<InitInfo>>) {
        let stream = self.stream(key.dir());
        let mut s = stream.write().unwrap_or_else(|e| e.into_inner());
        s.last_upload = Some(Instant::now());
        match key.extension().as_deref() {
            Some("mpd") => match Mpd::parse(body) {
                Ok(mpd) => {
                    s.ended = !mpd.is_dynamic();
                    s.representations = mpd.representations();
                    s.mpd = Some((key.clone(), Arc::new(mpd)));
                }
                Err(e) => tracing::warn!(key = %key, error = %e, "uploaded MPD not understood"),
            },
            Some("m3u8") => {
                let text = String::from_utf8_lossy(body);
                let multivariant = text.contains("#EXT-X-STREAM-INF");
                if !multivariant {
                    s.ended = text.contains("#EXT-X-ENDLIST");
                }
                s.playlists.insert(key.clone(), multivariant);
            }
            _ => {}
        }
        if let Some(init) = init {
            s.inits.insert(key.file_name().to_owned(), init);
        }
    }

    /// Rebuilds the registry from persisted manifests and init segments after a restart.
    pub fn recover(&self, keys_and_bodies: impl IntoIterator<Item = (ObjectKey, Vec<u8>)>) {
        for (key, body) in keys_and_bodies {
            let init = match crate::cmaf::scan_init(&body) {
                Some(Ok(info)) => Some(Arc::new(info)),
                _ => None,
            };
            self.learn(&key, &body, init);
            if let Some(stream) = self.existing(key.dir()) {
                // Recovered streams are not live until an upload arrives.
                let mut s = stream.write().unwrap_or_else(|e| e.into_inner());
                s.last_upload = None;
            }
        }
    }

    /// The last MPD uploaded into folder `dir`, parsed.
    pub fn mpd(&self, dir: &str) -> Option<Arc<Mpd>> {
        let stream = self.existing(dir)?;
        let s = stream.read().unwrap_or_else(|e| e.into_inner());
        s.mpd.as_ref().map(|(_, m)| Arc::clone(m))
    }

    /// The facts of the init segment `file_name` in folder `dir`, once uploaded.
    pub fn init_of(&self, dir: &str, file_name: &str) -> Option<Arc<InitInfo>> {
        let stream = self.existing(dir)?;
        let s = stream.read().unwrap_or_else(|e| e.into_inner());
        s.inits.get(file_name).cloned()
    }

    /// The representation (from the stream's MPD) that `key` is a media segment of, and the
    /// segment number.
    pub fn segment_of(&self, key: &ObjectKey) -> Option<(RepresentationInfo, u64)> {
        let stream = self.existing(key.dir())?;
        let s = stream.read().unwrap_or_else(|e| e.into_inner());
        s.representations.iter().find_map(|rep| {
            rep.segment_number(key.file_name())
                .map(|n| (rep.clone(), n))
        })
    }

    /// The media kind of an ISO-BMFF object: its own init facts, else the representation
    /// of the stream's MPD it belongs to.
    pub fn track_kind(&self, key: &ObjectKey, object_init: Option<&InitInfo>) -> Option<TrackKind> {
        if let Some(kind) = object_init.and_then(InitInfo::kind) {
            return Some(kind);
        }
        let stream = self.existing(key.dir())?;
        let s = stream.read().unwrap_or_else(|e| e.into_inner());
        if let Some(init) = s.inits.get(key.file_name()) {
            return init.kind();
        }
        let rep = s.representations.iter().find(|rep| {
            rep.init.as_deref() == Some(key.file_name())
                || rep.segment_number(key.file_name()).is_some()
        })?;
        Some(match rep.content_type.as_str() {
            "audio" => TrackKind::Audio,
            "video" => TrackKind::Video,
            "text" => TrackKind::Text,
            _ => TrackKind::Other,
        })
    }

    /// Whether `key` looks like the next, not yet started segment of a live representation:
    /// its file name ends in a number `n` and one of the three previous numbers (same
    /// name, same digit width) is in memory. Such a request is worth holding
    /// (ExoPlayer #10027: a 404 there starts retry storms).
    pub fn is_expected_next(&self, key: &ObjectKey, store: &Store) -> bool {
        let Some((prefix, number, width, suffix)) = split_number(key.file_name()) else {
            return false;
        };
        (1..=3u64).any(|back| {
            let Some(prev) = number.checked_sub(back) else {
                return false;
            };
            let name = format!("{prefix}{prev:0width$}{suffix}");
            key.sibling(&name).is_ok_and(|k| store.contains(&k))
        })
    }

    /// Every stream, for the player page's list. `idle` is how long without uploads makes a
    /// stream `ended`.
    pub fn list(&self, idle: Duration) -> Vec<StreamListing> {
        let mut out: Vec<StreamListing> = self
            .streams
            .iter()
            .filter_map(|entry| {
                let s = entry.value().read().unwrap_or_else(|e| e.into_inner());
                let mut manifests = Vec::new();
                if let Some((key, _)) = &s.mpd {
                    manifests.push(ManifestListing {
                        kind: "dash",
                        url: format!("/{key}"),
                    });
                    manifests.push(ManifestListing {
                        kind: "llhls",
                        url: format!("/{}/llhls.m3u8", key.dir()),
                    });
                }
                let multivariant: BTreeSet<&ObjectKey> = s
                    .playlists
                    .iter()
                    .filter_map(|(k, &mv)| mv.then_some(k))
                    .collect();
                let listed: Vec<&ObjectKey> = if multivariant.is_empty() {
                    s.playlists.keys().collect()
                } else {
                    multivariant.into_iter().collect()
                };
                for key in listed {
                    manifests.push(ManifestListing {
                        kind: "hls",
                        url: format!("/{key}"),
                    });
                }
                if manifests.is_empty() {
                    return None;
                }
                let live = !s.ended && s.last_upload.is_some_and(|t| t.elapsed() < idle);
                Some(StreamListing {
                    name: entry.key().clone(),
                    state: if live { "live" } else { "ended" },
                    manifests,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Splits `chunk-stream0-00042.m4s` into (`chunk-stream0-`, 42, 5, `.m4s`): the last run of
/// digits before the extension.
fn split_number(name: &str) -> Option<(&str, u64, usize, &str)> {
    let stem_end = name.rfind('.').unwrap_or(name.len());
    let stem = &name[..stem_end];
    let digits_start = stem
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let digits = &stem[digits_start..];
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let number = digits.parse().ok()?;
    Some((
        &name[..digits_start],
        number,
        digits.len(),
        &name[stem_end..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::from_decoded(s).unwrap()
    }

    #[test]
    fn split_number_forms() {
        assert_eq!(
            split_number("chunk-stream0-00042.m4s"),
            Some(("chunk-stream0-", 42, 5, ".m4s"))
        );
        assert_eq!(split_number("stream7.ts"), Some(("stream", 7, 1, ".ts")));
        assert_eq!(split_number("stream.mpd"), None);
        assert_eq!(
            split_number("init-stream0.m4s"),
            Some(("init-stream", 0, 1, ".m4s"))
        );
    }

    #[test]
    fn next_segment_is_expected_only_after_its_predecessor() {
        let store = Store::new();
        let reg = Registry::new();
        assert!(!reg.is_expected_next(&key("live/x/chunk-stream0-00010.m4s"), &store));
        store.begin(key("live/x/chunk-stream0-00009.m4s"));
        assert!(reg.is_expected_next(&key("live/x/chunk-stream0-00010.m4s"), &store));
        assert!(reg.is_expected_next(&key("live/x/chunk-stream0-00012.m4s"), &store));
        assert!(!reg.is_expected_next(&key("live/x/chunk-stream0-00013.m4s"), &store));
        assert!(!reg.is_expected_next(&key("live/x/chunk-stream1-00010.m4s"), &store));
        assert!(!reg.is_expected_next(&key("live/y/chunk-stream0-00010.m4s"), &store));
    }

    #[test]
    fn listing_and_kinds_from_the_mpd() {
        let reg = Registry::new();
        let mpd = include_bytes!("../../tests/fixtures/mpd/ffmpeg_ldash_2rend_steady.mpd");
        reg.learn(&key("live/x/stream.mpd"), mpd, None);
        reg.learn(
            &key("live/x/master.m3u8"),
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nm.m3u8\n",
            None,
        );
        reg.learn(&key("live/x/media_0.m3u8"), b"#EXTM3U\n", None);
        let list = reg.list(Duration::from_secs(10));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "live/x");
        assert_eq!(list[0].state, "live");
        let urls: Vec<_> = list[0].manifests.iter().map(|m| m.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "/live/x/stream.mpd",
                "/live/x/llhls.m3u8",
                "/live/x/master.m3u8"
            ]
        );
        assert_eq!(
            reg.track_kind(&key("live/x/chunk-stream2-00003.m4s"), None),
            Some(TrackKind::Audio)
        );
        assert_eq!(
            reg.track_kind(&key("live/x/init-stream0.m4s"), None),
            Some(TrackKind::Video)
        );
        let (rep, n) = reg
            .segment_of(&key("live/x/chunk-stream1-00007.m4s"))
            .unwrap();
        assert_eq!((rep.id.as_str(), n), ("1", 7));
    }
}
