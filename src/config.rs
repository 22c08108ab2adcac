//! One [`Config`] from a TOML file, `CASTERPAK_*` environment variables and flags.
//!
//! Precedence, highest first: command-line flag, environment variable (clap reads both),
//! the TOML file given with `--config`, the built-in default. Every key of the file has a
//! flag of the same meaning; the README lists them all with their defaults.
//!
//! ```toml
//! ingest_addr = "127.0.0.1:5000"
//! egress_addr = "127.0.0.1:5001"
//! data_dir = "./data"
//!
//! [live]
//! delete_retention_secs = 600
//!
//! [vod]
//! media_root = "samples"
//! segment_duration_secs = 6
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::archive::ArchiveConfig;
use crate::vod::config::{VodArgs, VodConfig};

/// Errors while assembling the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML for [`Config`].
    #[error("parsing config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// A value is out of its allowed range.
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The whole configuration of `casterpak serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the ingest listener (PUT, POST, DELETE from encoders).
    pub ingest_addr: SocketAddr,
    /// Address of the egress listener (GET, HEAD from players and CDNs).
    pub egress_addr: SocketAddr,
    /// Address of the management API listener (JSON, `/api/v1/...`).
    pub api_addr: SocketAddr,
    /// Folder where finished objects are persisted and recovered from at start.
    pub data_dir: PathBuf,
    /// Folder holding the player page and its npm dependencies.
    pub player_dir: PathBuf,
    /// Folder holding the dashboard page (`/dashboard/` on the API listener) and its npm
    /// dependencies.
    pub dashboard_dir: PathBuf,
    /// Live ingest and egress settings.
    pub live: LiveConfig,
    /// On-demand packaging settings.
    pub vod: VodConfig,
    /// The stream archive (retention, size, longest range).
    pub archive: ArchiveConfig,
    /// LiveMix compatibility (its file-based playlist ingest).
    pub livemix: LivemixConfig,
    /// Webhooks of control-plane events.
    pub webhooks: WebhookConfig,
    /// Who may push, play and manage (`[[auth.ingest]]`, `[auth.playback]`,
    /// `[[auth.api]]`). Only in the TOML file: secrets on a command line are visible to
    /// every local user in `ps`.
    pub auth: crate::auth::AuthConfig,
    /// Certificates per listener (`[tls.ingest]`, `[tls.egress]`, `[tls.api]`).
    pub tls: TlsConfig,
    /// Timeouts, connection caps, caps on held requests, drain and readiness thresholds.
    pub limits: LimitsConfig,
    /// The media library (uploads, transcodes).
    pub library: crate::library::LibraryConfig,
}

/// `[tls]`: a certificate and key per listener; a listener without one speaks plain HTTP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// `[tls.ingest]`.
    pub ingest: Option<TlsFiles>,
    /// `[tls.egress]` (HTTP/2 and HTTP/1.1 by ALPN).
    pub egress: Option<TlsFiles>,
    /// `[tls.api]` (HTTP/2 and HTTP/1.1 by ALPN).
    pub api: Option<TlsFiles>,
}

/// A PEM certificate chain and its PEM private key (PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// `[limits]`: no resource is held without a bound.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Seconds a client of egress or the API has to send its request head (also the
    /// keep-alive idle time, and the time to start TLS or send a first byte).
    pub header_read_timeout_secs: u64,
    /// The same on ingest. At least twice the longest segment: ffmpeg's MPD connection
    /// idles a whole segment between uploads, and closing it kills the encoder.
    pub ingest_header_timeout_secs: u64,
    /// Seconds without a body byte after which an upload is cut (marked interrupted, its
    /// readers aborted, the connection closed).
    pub ingest_frame_gap_secs: u64,
    /// Open connections per listener (egress); over it, new ones are closed at once.
    pub egress_max_connections: usize,
    /// Open connections on ingest.
    pub ingest_max_connections: usize,
    /// Open connections on the API listener.
    pub api_max_connections: usize,
    /// Open connections per client address on each listener (0 = no cap). A CDN or a
    /// NAT shows many viewers as one address: keep it off or generous behind one.
    pub max_connections_per_ip: usize,
    /// Blocking playlist reloads and held parts waiting at once; over it, a request gets
    /// 503 with `Retry-After: 1` at once instead of waiting.
    pub max_held_reloads: usize,
    /// Requests held for the next live segment at once; over it, 503 at once.
    pub max_held_edge_requests: usize,
    /// HTTP/2 concurrent streams per connection (egress and API).
    pub h2_max_concurrent_streams: u32,
    /// On SIGTERM: milliseconds `/readyz` says 503 before the listeners stop accepting
    /// (time for a load balancer to notice).
    pub drain_start_wait_ms: u64,
    /// On SIGTERM: seconds encoders get to finish the objects they are uploading, and
    /// responses to end.
    pub drain_timeout_secs: u64,
    /// `/readyz` fails when the data dir's file system has less free space, bytes.
    pub min_free_bytes: u64,
    /// `/readyz` fails when the oldest unfinished persistence write is older, seconds.
    pub max_persist_lag_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout_secs: 15,
            ingest_header_timeout_secs: 60,
            ingest_frame_gap_secs: 10,
            egress_max_connections: 20_000,
            ingest_max_connections: 1_000,
            api_max_connections: 1_000,
            max_connections_per_ip: 0,
            max_held_reloads: 10_000,
            max_held_edge_requests: 10_000,
            h2_max_concurrent_streams: 100,
            drain_start_wait_ms: 2_000,
            drain_timeout_secs: 15,
            min_free_bytes: 256 * 1024 * 1024,
            max_persist_lag_secs: 10,
        }
    }
}

/// `[webhooks]` settings: every control-plane event (`stream.started`, `stream.ended`,
/// `recording.started`, `recording.stopped`, `recording.failed`) is POSTed as JSON to each
/// URL, signed when a secret is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// URLs every event is POSTed to.
    pub urls: Vec<String>,
    /// Key of the `X-Casterpak-Signature: sha256=<hex HMAC-SHA256 of the body>` header;
    /// unsigned when empty.
    pub secret: String,
}

/// `[livemix]` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LivemixConfig {
    /// Folders `POST /v1/playlist` may read segments from (its `MPEG-TS-URI-Prefix:
    /// file:///...`); anything outside them, or with none set, is refused with 403.
    pub allowed_roots: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ingest_addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            egress_addr: SocketAddr::from(([127, 0, 0, 1], 5001)),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 5002)),
            data_dir: PathBuf::from("./data"),
            player_dir: PathBuf::from("player"),
            dashboard_dir: PathBuf::from("dashboard"),
            live: LiveConfig::default(),
            vod: VodConfig::default(),
            archive: ArchiveConfig::default(),
            livemix: LivemixConfig::default(),
            webhooks: WebhookConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            library: crate::library::LibraryConfig::default(),
        }
    }
}

/// Settings of the live path (ingest, store, egress of pushed streams).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Largest accepted upload, in bytes; a larger body is refused with 413 and not stored.
    pub max_object_bytes: u64,
    /// How long a DELETEd object stays served, in seconds (0 honours DELETE at once).
    pub delete_retention_secs: u64,
    /// How long a request for the next segment of a live representation is held, in seconds,
    /// before it gets 404.
    pub live_edge_wait_secs: f64,
    /// How long a finished, persisted object stays in memory after its upload ended, in
    /// seconds; later requests read it from the data dir.
    pub memory_window_secs: u64,
    /// `ServiceDescription/Latency@target` added to MPDs that carry none, in milliseconds
    /// (0 adds nothing).
    pub target_latency_ms: u64,
    /// Whether finished objects are written to the data dir.
    pub persist: bool,
    /// A stream with no upload for this many seconds is listed as ended.
    pub stream_idle_secs: u64,
    /// LL-HLS PART-TARGET in milliseconds: a part groups consecutive CMAF chunks up to it,
    /// never splitting one (so it is never below the longest chunk). 0 derives it from the
    /// ingested chunks: the longest chunk when it is at least 0.2 s, else the whole number of
    /// chunks nearest 0.2 s (six frames at 30 fps). Rounded up to the millisecond; fixed
    /// for a stream's life.
    pub llhls_part_target_ms: u64,
    /// LL-HLS PART-HOLD-BACK in ms (RFC 8216bis §4.4.3.8): how far behind the last part a
    /// low-latency player starts. 0 gives 3 x PART-TARGET (Apple's authoring rule); a
    /// value under 2 x PART-TARGET (the RFC's floor) is raised to it. Sub-second players
    /// want the floor: hls.js starts this far behind plus its start-up time.
    pub llhls_part_hold_back_ms: u64,
    /// Whether a live LL-HLS media playlist request without `_HLS_msn` (a player's first
    /// load, or a plain poll) is held until the rendition's next part is complete, at most
    /// 1.5 x PART-TARGET, so that its last part is at the live edge: a low-latency player
    /// starts PART-HOLD-BACK behind that part, and a playlist answered at once ends on a
    /// part up to one PART-TARGET old. Ended streams and finished packages answer at once.
    /// Off by default: it delays a player's first frame by up to a part per playlist it
    /// loads (Shaka's start-up on 0.5 s parts: 2.5 s instead of 1.5-2.0 s). Sub-second
    /// set-ups want it, with PART-HOLD-BACK at the floor.
    pub llhls_hold_plain_reload: bool,
    /// Seconds of segments a live LL-HLS media playlist lists (at least 4 target durations
    /// are always listed). The DVR window, when longer, wins.
    pub llhls_window_secs: u64,
    /// The live DVR window in seconds: live LL-HLS media playlists list this much (parts
    /// only near the live edge), dynamic MPDs get it as `timeShiftBufferDepth`, and every
    /// segment in it stays fetchable after the encoder's DELETE (from the archive).
    /// `?dvr=SECONDS` on a live manifest narrows or widens it up to this; 0 is pure live.
    pub dvr_window_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            max_object_bytes: 64 * 1024 * 1024,
            delete_retention_secs: 600,
            live_edge_wait_secs: 3.0,
            memory_window_secs: 30,
            target_latency_ms: 1500,
            persist: true,
            stream_idle_secs: 10,
            llhls_part_target_ms: 0,
            llhls_part_hold_back_ms: 0,
            llhls_hold_plain_reload: false,
            llhls_window_secs: 60,
            dvr_window_secs: 120,
        }
    }
}

/// Flags of `casterpak serve`. Every flag can also be given as the environment variable
/// named in its help, and as the key of the same name in the `--config` file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file; flags and environment variables override its keys.
    #[arg(long, env = "CASTERPAK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ingest listener address (encoders PUT/POST/DELETE here) [default: 127.0.0.1:5000].
    #[arg(long, env = "CASTERPAK_INGEST_ADDR", value_name = "ADDR")]
    pub ingest_addr: Option<SocketAddr>,
    /// Egress listener address (players and CDNs GET/HEAD here) [default: 127.0.0.1:5001].
    #[arg(long, env = "CASTERPAK_EGRESS_ADDR", value_name = "ADDR")]
    pub egress_addr: Option<SocketAddr>,
    /// Management API listener address (JSON under /api/v1) [default: 127.0.0.1:5002].
    #[arg(long, env = "CASTERPAK_API_ADDR", value_name = "ADDR")]
    pub api_addr: Option<SocketAddr>,
    /// Seconds every archived live segment is kept (0 = only what the encoder leaves,
    /// plus what recordings pin) [default: 86400].
    #[arg(long, env = "CASTERPAK_ARCHIVE_RETENTION_SECS", value_name = "SECS")]
    pub archive_retention_secs: Option<u64>,
    /// Largest archive size in bytes, oldest unpinned segments removed first (0 = no
    /// limit) [default: 0].
    #[arg(long, env = "CASTERPAK_ARCHIVE_MAX_BYTES", value_name = "BYTES")]
    pub archive_max_bytes: Option<u64>,
    /// Longest time range of a recording or a time-range view, in seconds
    /// [default: 86400].
    #[arg(long, env = "CASTERPAK_ARCHIVE_MAX_RANGE_SECS", value_name = "SECS")]
    pub archive_max_range_secs: Option<u64>,
    /// Folder for persisted objects; recovered at start [default: ./data].
    #[arg(long, env = "CASTERPAK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Folder of the player page served at /player [default: player].
    #[arg(long, env = "CASTERPAK_PLAYER_DIR", value_name = "DIR")]
    pub player_dir: Option<PathBuf>,
    /// Folder of the dashboard served at /dashboard/ on the API listener [default: dashboard].
    #[arg(long, env = "CASTERPAK_DASHBOARD_DIR", value_name = "DIR")]
    pub dashboard_dir: Option<PathBuf>,
    /// Largest accepted upload in bytes; larger bodies get 413 and are not stored
    /// [default: 67108864].
    #[arg(long, env = "CASTERPAK_MAX_OBJECT_BYTES", value_name = "BYTES")]
    pub max_object_bytes: Option<u64>,
    /// Seconds a DELETEd object stays served (0 = delete at once) [default: 600].
    #[arg(long, env = "CASTERPAK_DELETE_RETENTION_SECS", value_name = "SECS")]
    pub delete_retention_secs: Option<u64>,
    /// Seconds a request for a not-yet-started next live segment is held before 404
    /// [default: 3].
    #[arg(long, env = "CASTERPAK_LIVE_EDGE_WAIT_SECS", value_name = "SECS")]
    pub live_edge_wait_secs: Option<f64>,
    /// Seconds a finished, persisted object stays in memory [default: 30].
    #[arg(long, env = "CASTERPAK_MEMORY_WINDOW_SECS", value_name = "SECS")]
    pub memory_window_secs: Option<u64>,
    /// Latency target in ms added to MPDs without ServiceDescription/Latency (0 = none)
    /// [default: 1500].
    #[arg(long, env = "CASTERPAK_TARGET_LATENCY_MS", value_name = "MS")]
    pub target_latency_ms: Option<u64>,
    /// Write finished objects to the data dir [default: true].
    #[arg(long, env = "CASTERPAK_PERSIST", value_name = "BOOL")]
    pub persist: Option<bool>,
    /// Seconds without uploads after which a stream is listed as ended [default: 10].
    #[arg(long, env = "CASTERPAK_STREAM_IDLE_SECS", value_name = "SECS")]
    pub stream_idle_secs: Option<u64>,
    /// LL-HLS PART-TARGET in ms: parts group CMAF chunks up to it; 0 derives it from the
    /// chunks (the chunk duration, or about 0.2 s for shorter chunks) [default: 0].
    #[arg(long, env = "CASTERPAK_LLHLS_PART_TARGET_MS", value_name = "MS")]
    pub llhls_part_target_ms: Option<u64>,
    /// LL-HLS PART-HOLD-BACK in ms: 0 gives 3 x PART-TARGET; never under 2 x PART-TARGET
    /// [default: 0].
    #[arg(long, env = "CASTERPAK_LLHLS_PART_HOLD_BACK_MS", value_name = "MS")]
    pub llhls_part_hold_back_ms: Option<u64>,
    /// Hold a live LL-HLS media playlist request without _HLS_msn until the next part is
    /// complete (at most 1.5 x PART-TARGET) [default: false].
    #[arg(long, env = "CASTERPAK_LLHLS_HOLD_PLAIN_RELOAD", value_name = "BOOL")]
    pub llhls_hold_plain_reload: Option<bool>,
    /// Seconds of segments listed by a live LL-HLS media playlist [default: 60].
    #[arg(long, env = "CASTERPAK_LLHLS_WINDOW_SECS", value_name = "SECS")]
    pub llhls_window_secs: Option<u64>,
    /// A folder LiveMix's `POST /v1/playlist` may read segments from (repeatable; the
    /// TOML key is `livemix.allowed_roots`).
    #[arg(
        long = "livemix-allowed-root",
        env = "CASTERPAK_LIVEMIX_ALLOWED_ROOTS",
        value_name = "DIR",
        value_delimiter = ','
    )]
    pub livemix_allowed_roots: Vec<PathBuf>,
    /// A webhook URL for control-plane events (repeatable; TOML `webhooks.urls`).
    #[arg(
        long = "webhook-url",
        env = "CASTERPAK_WEBHOOK_URLS",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub webhook_urls: Vec<String>,
    /// HMAC-SHA256 key signing webhook bodies (TOML `webhooks.secret`).
    #[arg(long, env = "CASTERPAK_WEBHOOK_SECRET", value_name = "TEXT")]
    pub webhook_secret: Option<String>,
    /// Live DVR window in seconds (LL-HLS playlists, MPD timeShiftBufferDepth)
    /// [default: 120].
    #[arg(long, env = "CASTERPAK_DVR_WINDOW_SECS", value_name = "SECS")]
    pub dvr_window_secs: Option<u64>,
    /// PEM certificate chain of the egress listener (with --egress-tls-key: HTTPS, HTTP/2
    /// by ALPN; TOML `tls.egress.cert`).
    #[arg(
        long,
        env = "CASTERPAK_EGRESS_TLS_CERT",
        value_name = "FILE",
        requires = "egress_tls_key"
    )]
    pub egress_tls_cert: Option<PathBuf>,
    /// PEM private key of the egress listener (TOML `tls.egress.key`).
    #[arg(
        long,
        env = "CASTERPAK_EGRESS_TLS_KEY",
        value_name = "FILE",
        requires = "egress_tls_cert"
    )]
    pub egress_tls_key: Option<PathBuf>,
    /// PEM certificate chain of the API listener (TOML `tls.api.cert`).
    #[arg(
        long,
        env = "CASTERPAK_API_TLS_CERT",
        value_name = "FILE",
        requires = "api_tls_key"
    )]
    pub api_tls_cert: Option<PathBuf>,
    /// PEM private key of the API listener (TOML `tls.api.key`).
    #[arg(
        long,
        env = "CASTERPAK_API_TLS_KEY",
        value_name = "FILE",
        requires = "api_tls_cert"
    )]
    pub api_tls_key: Option<PathBuf>,
    /// PEM certificate chain of the ingest listener (TOML `tls.ingest.cert`).
    #[arg(
        long,
        env = "CASTERPAK_INGEST_TLS_CERT",
        value_name = "FILE",
        requires = "ingest_tls_key"
    )]
    pub ingest_tls_cert: Option<PathBuf>,
    /// PEM private key of the ingest listener (TOML `tls.ingest.key`).
    #[arg(
        long,
        env = "CASTERPAK_INGEST_TLS_KEY",
        value_name = "FILE",
        requires = "ingest_tls_cert"
    )]
    pub ingest_tls_key: Option<PathBuf>,
    /// Seconds to send a request head on egress and the API (also the keep-alive idle
    /// time) [default: 15].
    #[arg(long, env = "CASTERPAK_HEADER_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// The same on ingest; at least twice the longest segment [default: 60].
    #[arg(
        long,
        env = "CASTERPAK_INGEST_HEADER_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    pub ingest_header_timeout_secs: Option<u64>,
    /// Seconds without a body byte before an upload is cut [default: 10].
    #[arg(long, env = "CASTERPAK_INGEST_FRAME_GAP_SECS", value_name = "SECS")]
    pub ingest_frame_gap_secs: Option<u64>,
    /// Open connections on egress [default: 20000].
    #[arg(long, env = "CASTERPAK_EGRESS_MAX_CONNECTIONS", value_name = "N")]
    pub egress_max_connections: Option<usize>,
    /// Open connections on ingest [default: 1000].
    #[arg(long, env = "CASTERPAK_INGEST_MAX_CONNECTIONS", value_name = "N")]
    pub ingest_max_connections: Option<usize>,
    /// Open connections on the API listener [default: 1000].
    #[arg(long, env = "CASTERPAK_API_MAX_CONNECTIONS", value_name = "N")]
    pub api_max_connections: Option<usize>,
    /// Open connections per client address on each listener, 0 = no cap [default: 0].
    #[arg(long, env = "CASTERPAK_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Blocking reloads and held parts waiting at once [default: 10000].
    #[arg(long, env = "CASTERPAK_MAX_HELD_RELOADS", value_name = "N")]
    pub max_held_reloads: Option<usize>,
    /// Requests held for the next live segment at once [default: 10000].
    #[arg(long, env = "CASTERPAK_MAX_HELD_EDGE_REQUESTS", value_name = "N")]
    pub max_held_edge_requests: Option<usize>,
    /// HTTP/2 concurrent streams per connection [default: 100].
    #[arg(long, env = "CASTERPAK_H2_MAX_CONCURRENT_STREAMS", value_name = "N")]
    pub h2_max_concurrent_streams: Option<u32>,
    /// On SIGTERM, ms /readyz says 503 before accepting stops [default: 2000].
    #[arg(long, env = "CASTERPAK_DRAIN_START_WAIT_MS", value_name = "MS")]
    pub drain_start_wait_ms: Option<u64>,
    /// On SIGTERM, seconds for uploads and responses to finish [default: 15].
    #[arg(long, env = "CASTERPAK_DRAIN_TIMEOUT_SECS", value_name = "SECS")]
    pub drain_timeout_secs: Option<u64>,
    /// /readyz fails below this much free space in the data dir, bytes
    /// [default: 268435456].
    #[arg(long, env = "CASTERPAK_MIN_FREE_BYTES", value_name = "BYTES")]
    pub min_free_bytes: Option<u64>,
    /// /readyz fails when a persistence write is older than this, seconds [default: 10].
    #[arg(long, env = "CASTERPAK_MAX_PERSIST_LAG_SECS", value_name = "SECS")]
    pub max_persist_lag_secs: Option<u64>,
    #[command(flatten)]
    pub vod: VodArgs,
    #[command(flatten)]
    pub library: crate::library::config::LibraryArgs,
}

impl Config {
    /// Builds the configuration: defaults, then the file named by `args.config` (if any),
    /// then every flag or environment variable that was given.
    ///
    /// Errors: [`ConfigError::Read`]/[`ConfigError::Parse`] for the file,
    /// [`ConfigError::Invalid`] for out-of-range values.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        let mut cfg = match &args.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        set(&mut cfg.ingest_addr, args.ingest_addr);
        set(&mut cfg.egress_addr, args.egress_addr);
        set(&mut cfg.api_addr, args.api_addr);
        set(&mut cfg.data_dir, args.data_dir.clone());
        set(&mut cfg.archive.retention_secs, args.archive_retention_secs);
        set(&mut cfg.archive.max_bytes, args.archive_max_bytes);
        set(&mut cfg.archive.max_range_secs, args.archive_max_range_secs);
        if !args.webhook_urls.is_empty() {
            cfg.webhooks.urls = args.webhook_urls.clone();
        }
        set(&mut cfg.webhooks.secret, args.webhook_secret.clone());
        if !args.livemix_allowed_roots.is_empty() {
            cfg.livemix.allowed_roots = args.livemix_allowed_roots.clone();
        }
        set(&mut cfg.player_dir, args.player_dir.clone());
        set(&mut cfg.dashboard_dir, args.dashboard_dir.clone());
        let live = &mut cfg.live;
        set(&mut live.max_object_bytes, args.max_object_bytes);
        set(&mut live.delete_retention_secs, args.delete_retention_secs);
        set(&mut live.live_edge_wait_secs, args.live_edge_wait_secs);
        set(&mut live.memory_window_secs, args.memory_window_secs);
        set(&mut live.target_latency_ms, args.target_latency_ms);
        set(&mut live.persist, args.persist);
        set(&mut live.stream_idle_secs, args.stream_idle_secs);
        set(&mut live.llhls_part_target_ms, args.llhls_part_target_ms);
        set(
            &mut live.llhls_part_hold_back_ms,
            args.llhls_part_hold_back_ms,
        );
        set(
            &mut live.llhls_hold_plain_reload,
            args.llhls_hold_plain_reload,
        );
        set(&mut live.llhls_window_secs, args.llhls_window_secs);
        set(&mut live.dvr_window_secs, args.dvr_window_secs);
        args.vod.apply(&mut cfg.vod);
        args.library.apply(&mut cfg.library);
        let tls = |cert: &Option<PathBuf>, key: &Option<PathBuf>| match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        if let Some(t) = tls(&args.egress_tls_cert, &args.egress_tls_key) {
            cfg.tls.egress = Some(t);
        }
        if let Some(t) = tls(&args.api_tls_cert, &args.api_tls_key) {
            cfg.tls.api = Some(t);
        }
        if let Some(t) = tls(&args.ingest_tls_cert, &args.ingest_tls_key) {
            cfg.tls.ingest = Some(t);
        }
        let l = &mut cfg.limits;
        set(
            &mut l.header_read_timeout_secs,
            args.header_read_timeout_secs,
        );
        set(
            &mut l.ingest_header_timeout_secs,
            args.ingest_header_timeout_secs,
        );
        set(&mut l.ingest_frame_gap_secs, args.ingest_frame_gap_secs);
        set(&mut l.egress_max_connections, args.egress_max_connections);
        set(&mut l.ingest_max_connections, args.ingest_max_connections);
        set(&mut l.api_max_connections, args.api_max_connections);
        set(&mut l.max_connections_per_ip, args.max_connections_per_ip);
        set(&mut l.max_held_reloads, args.max_held_reloads);
        set(&mut l.max_held_edge_requests, args.max_held_edge_requests);
        set(
            &mut l.h2_max_concurrent_streams,
            args.h2_max_concurrent_streams,
        );
        set(&mut l.drain_start_wait_ms, args.drain_start_wait_ms);
        set(&mut l.drain_timeout_secs, args.drain_timeout_secs);
        set(&mut l.min_free_bytes, args.min_free_bytes);
        set(&mut l.max_persist_lag_secs, args.max_persist_lag_secs);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a TOML file into a [`Config`] (missing keys keep their defaults).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let wait = self.live.live_edge_wait_secs;
        if !(0.0..=60.0).contains(&wait) {
            return Err(ConfigError::Invalid {
                key: "live_edge_wait_secs",
                reason: format!("{wait} is not within 0..=60"),
            });
        }
        if self.archive.max_range_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "archive.max_range_secs",
                reason: "must be above 0".into(),
            });
        }
        if self.live.max_object_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "max_object_bytes",
                reason: "must be above 0".into(),
            });
        }
        let l = &self.limits;
        for (key, v) in [
            (
                "limits.header_read_timeout_secs",
                l.header_read_timeout_secs,
            ),
            (
                "limits.ingest_header_timeout_secs",
                l.ingest_header_timeout_secs,
            ),
            ("limits.ingest_frame_gap_secs", l.ingest_frame_gap_secs),
            (
                "limits.egress_max_connections",
                l.egress_max_connections as u64,
            ),
            (
                "limits.ingest_max_connections",
                l.ingest_max_connections as u64,
            ),
            ("limits.api_max_connections", l.api_max_connections as u64),
            (
                "limits.h2_max_concurrent_streams",
                u64::from(l.h2_max_concurrent_streams),
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be above 0".into(),
                });
            }
        }
        for (key, v, max) in [
            (
                "limits.egress_max_connections",
                l.egress_max_connections as u64,
                1u64 << 24,
            ),
            (
                "limits.ingest_max_connections",
                l.ingest_max_connections as u64,
                1 << 24,
            ),
            (
                "limits.api_max_connections",
                l.api_max_connections as u64,
                1 << 24,
            ),
            ("limits.drain_timeout_secs", l.drain_timeout_secs, 3600),
            ("limits.drain_start_wait_ms", l.drain_start_wait_ms, 600_000),
            (
                "limits.header_read_timeout_secs",
                l.header_read_timeout_secs,
                3600,
            ),
            (
                "limits.ingest_header_timeout_secs",
                l.ingest_header_timeout_secs,
                3600,
            ),
            (
                "limits.ingest_frame_gap_secs",
                l.ingest_frame_gap_secs,
                3600,
            ),
        ] {
            if v > max {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("{v} is above {max}"),
                });
            }
        }
        self.library.check()?;
        self.vod.validate()
    }
}

/// Overwrites `slot` when a value was given.
pub(crate) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "egress_addr = \"127.0.0.1:7001\"\n[live]\ndelete_retention_secs = 5\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            delete_retention_secs: Some(9),
            ..Default::default()
        };
        let cfg = Config::load(&args).unwrap();
        assert_eq!(cfg.egress_addr.port(), 7001);
        assert_eq!(cfg.ingest_addr.port(), 5000);
        assert_eq!(cfg.live.delete_retention_secs, 9);
    }

    #[test]
    fn unknown_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "ingest_adr = \"x\"\n").unwrap();
        assert!(matches!(
            Config::from_file(&path),
            Err(ConfigError::Parse { .. })
        ));
    }
}
