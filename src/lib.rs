//! casterpak: a streaming origin.
//!
//! Two data flows, visible in the module tree:
//!
//! ```text
//! live:  encoder --PUT--> server::ingest --> store (objects = frames + state) --> server::egress --> player
//!                                \--> cmaf (box scanner: CMAF chunk boundaries, timing)
//!                                \--> live (stream registry, MPD rewrite, live-edge waits)
//!                          store --> store::persist (finished objects to the data dir; recovery)
//!
//! control: server::ingest --events::IngestEvent--> archive (segment index in SQLite,
//!          sessions, retention, recordings) --> archive::replay (HLS/DASH of a time range)
//!          server::api (its own listener: streams, ranges, recordings)
//!
//! library: server::library_api (tus, multipart, assets) --> library (SQLite, ffprobe,
//!          one ffmpeg per asset) --> <media_root>/assets/<id>/ --> served by vod below
//!
//! vod:   GET /i/... --> vod::csmil --> vod::source --> vod::index --> vod::segmenter
//!                   --> vod::ts (mux) --> vod::cache --> server::egress
//! ```
//!
//! The packaging core (`cmaf`, `hls`, `live::mpd`, `vod`) is pure: bytes in, bytes out, no
//! printing, no spawned tasks. The `server` layer owns sockets and tasks.
#![forbid(unsafe_code)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod archive;
pub mod auth;
pub mod cmaf;
pub mod config;
pub mod error;
pub mod events;
pub mod hls;
pub mod library;
pub mod live;
pub mod server;
pub mod store;
pub mod vod;
