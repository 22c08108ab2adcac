//! Settings of on-demand packaging (the `[vod]` section of the config file).
//!
//! Every key has a flag of the same name (`--media-root`, ...) and an environment variable
//! (`CASTERPAK_MEDIA_ROOT`, ...); flags and variables override the file.
//!
//! ```toml
//! [vod]
//! media_root = "samples"            # folder or http(s):// base URL
//! segment_duration_secs = 6
//! cache_dir = "/var/cache/casterpak/out"
//! cache_ttl_secs = 259200
//! cache_max_bytes = 17179869184
//! input_cache_dir = "/var/cache/casterpak/in"
//! input_cache_ttl_secs = 518400
//! input_cache_max_bytes = 8589934592
//! sweep_interval_secs = 300
//! index_cache_entries = 1024
//! memory_cache_bytes = 67108864
//! remote_revalidate_secs = 10
//! remote_sidecar_languages = ["en", "fr"]   # http(s) roots: probe <name>.<lang>.vtt
//! hls_encryption = "aes-128"        # none (default) | aes-128: /i/ and /cmaf/ segments
//! hls_encryption_secret = "<hex>"   # a key per file derived from this secret, or
//! hls_encryption_key_file = "/etc/casterpak/hls.key"   # one key (16 bytes or 32 hex digits)
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{set, ConfigError};

/// On-demand packaging settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VodConfig {
    /// Folder, or `http://` / `https://` base URL, that `/i/` paths resolve under.
    /// Default `samples`.
    pub media_root: String,
    /// Target segment duration D in seconds (1..=60); segments start at the first keyframe
    /// at or after k x D. Default 6.
    pub segment_duration_secs: f64,
    /// Output cache folder (produced playlists and segments); no disk cache when absent.
    /// Default none.
    pub cache_dir: Option<PathBuf>,
    /// Output cache entries unused for this many seconds are deleted by the sweeper.
    /// Default 259200 (3 days).
    pub cache_ttl_secs: u64,
    /// Output cache size limit in bytes; the sweeper deletes least recently used entries
    /// past it. Default 17179869184 (16 GiB).
    pub cache_max_bytes: u64,
    /// Input cache folder for ranges read from a remote (http) media root; none when absent.
    /// Default none.
    pub input_cache_dir: Option<PathBuf>,
    /// Input cache entries unused for this many seconds are deleted. Default 518400 (6 days).
    pub input_cache_ttl_secs: u64,
    /// Input cache size limit in bytes. Default 8589934592 (8 GiB).
    pub input_cache_max_bytes: u64,
    /// Seconds between two runs of the cache sweeper. Default 300.
    pub sweep_interval_secs: u64,
    /// How many MP4 sample indexes are kept in memory (per path + size + mtime).
    /// Default 1024.
    pub index_cache_entries: u64,
    /// Bytes of produced playlists and segments kept in memory (also the single-flight
    /// table for concurrent cold requests; 0 keeps nothing once served). Default 67108864.
    pub memory_cache_bytes: u64,
    /// Seconds a remote file's size/ETag/Last-Modified is trusted before it is checked
    /// again. Default 10.
    pub remote_revalidate_secs: u64,
    /// Language tags whose WebVTT sidecars `<name>.<lang>.vtt` are looked for beside each
    /// MP4 of an `http(s)://` media root (a remote folder cannot be listed): one probe per
    /// tag and MP4; a found file and a 404/410 are kept for `remote_revalidate_secs`. Tags
    /// as in sidecar names (1 to 35 letters, digits and `-`), distinct, at most 32. Local
    /// roots list their folder instead and ignore this. Default none.
    pub remote_sidecar_languages: Vec<String>,
    /// HLS encryption of the `/i/` (TS) and `/cmaf/` (fMP4) segments: `none` or `aes-128`
    /// (RFC 8216bis §5.2; DASH output stays clear). Default `none`.
    pub hls_encryption: String,
    /// With `aes-128`: a master secret, hex (at least 16 bytes), from which every file gets
    /// its own key. Exactly one of this and `hls_encryption_key_file`.
    pub hls_encryption_secret: Option<String>,
    /// With `aes-128`: a file holding one key (16 raw bytes or 32 hex digits) for every
    /// file. Exactly one of this and `hls_encryption_secret`.
    pub hls_encryption_key_file: Option<PathBuf>,
}

impl Default for VodConfig {
    fn default() -> Self {
        VodConfig {
            media_root: "samples".into(),
            segment_duration_secs: 6.0,
            cache_dir: None,
            cache_ttl_secs: 3 * 86_400,
            cache_max_bytes: 16 << 30,
            input_cache_dir: None,
            input_cache_ttl_secs: 6 * 86_400,
            input_cache_max_bytes: 8 << 30,
            sweep_interval_secs: 300,
            index_cache_entries: 1024,
            memory_cache_bytes: 64 << 20,
            remote_revalidate_secs: 10,
            remote_sidecar_languages: Vec::new(),
            hls_encryption: "none".into(),
            hls_encryption_secret: None,
            hls_encryption_key_file: None,
        }
    }
}

impl VodConfig {
    /// Checks ranges. Errors: [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = self.segment_duration_secs;
        if !(1.0..=60.0).contains(&d) {
            return Err(ConfigError::Invalid {
                key: "vod.segment_duration_secs",
                reason: format!("{d} is not within 1..=60"),
            });
        }
        if self.sweep_interval_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "vod.sweep_interval_secs",
                reason: "must be above 0".into(),
            });
        }
        if self.index_cache_entries == 0 {
            return Err(ConfigError::Invalid {
                key: "vod.index_cache_entries",
                reason: "must be above 0".into(),
            });
        }
        if self.remote_sidecar_languages.len() > super::source::MAX_SIDECARS {
            return Err(ConfigError::Invalid {
                key: "vod.remote_sidecar_languages",
                reason: format!(
                    "{} tags, at most {}",
                    self.remote_sidecar_languages.len(),
                    super::source::MAX_SIDECARS
                ),
            });
        }
        if let Some(bad) = self
            .remote_sidecar_languages
            .iter()
            .find(|t| !super::source::is_sidecar_language(t))
        {
            return Err(ConfigError::Invalid {
                key: "vod.remote_sidecar_languages",
                reason: format!("{bad:?} is not 1 to 35 letters, digits and '-'"),
            });
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = self
            .remote_sidecar_languages
            .iter()
            .find(|t| !seen.insert(t.as_str()))
        {
            return Err(ConfigError::Invalid {
                key: "vod.remote_sidecar_languages",
                reason: format!("{dup:?} is named twice"),
            });
        }
        match self.hls_encryption.as_str() {
            "none" => {}
            "aes-128" => match (&self.hls_encryption_secret, &self.hls_encryption_key_file) {
                (Some(s), None) => {
                    let ok = hex::decode(s.trim()).is_ok_and(|b| b.len() >= 16);
                    if !ok {
                        return Err(ConfigError::Invalid {
                            key: "vod.hls_encryption_secret",
                            reason: "must be at least 16 bytes in hex (32 digits)".into(),
                        });
                    }
                }
                (None, Some(_)) => {}
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "vod.hls_encryption",
                        reason: "aes-128 needs exactly one of hls_encryption_secret and \
                                 hls_encryption_key_file"
                            .into(),
                    })
                }
            },
            other => {
                return Err(ConfigError::Invalid {
                    key: "vod.hls_encryption",
                    reason: format!("{other:?} is not none or aes-128"),
                })
            }
        }
        Ok(())
    }

    /// The key source of `aes-128` (reads the key file). `Ok(None)` when encryption is off.
    ///
    /// Errors: the key file cannot be read or does not hold a key.
    pub fn key_source(&self) -> Result<Option<super::keys::KeySource>, String> {
        if self.hls_encryption != "aes-128" {
            return Ok(None);
        }
        if let Some(s) = &self.hls_encryption_secret {
            let raw = hex::decode(s.trim()).map_err(|e| format!("hls_encryption_secret: {e}"))?;
            return Ok(Some(super::keys::KeySource::Secret(raw)));
        }
        let path = self
            .hls_encryption_key_file
            .as_ref()
            .ok_or("aes-128 without a key source")?;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        super::keys::KeySource::from_key_file(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether the media root is a remote base URL.
    pub fn is_remote(&self) -> bool {
        self.media_root.starts_with("http://") || self.media_root.starts_with("https://")
    }
}

/// VOD flags of `casterpak serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VodArgs {
    /// Media root for /i/ URLs: a folder or an http(s) base URL [default: samples].
    #[arg(long, env = "CASTERPAK_MEDIA_ROOT", value_name = "DIR|URL")]
    pub media_root: Option<String>,
    /// VOD segment duration in seconds, 1..=60 [default: 6].
    #[arg(long, env = "CASTERPAK_SEGMENT_DURATION_SECS", value_name = "SECS")]
    pub segment_duration_secs: Option<f64>,
    /// Output cache folder for produced playlists and segments [default: none].
    #[arg(long, env = "CASTERPAK_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Seconds since last access after which output cache entries are deleted
    /// [default: 259200].
    #[arg(long, env = "CASTERPAK_CACHE_TTL_SECS", value_name = "SECS")]
    pub cache_ttl_secs: Option<u64>,
    /// Output cache size limit in bytes [default: 17179869184].
    #[arg(long, env = "CASTERPAK_CACHE_MAX_BYTES", value_name = "BYTES")]
    pub cache_max_bytes: Option<u64>,
    /// Input cache folder for ranges of remote (http) sources [default: none].
    #[arg(long, env = "CASTERPAK_INPUT_CACHE_DIR", value_name = "DIR")]
    pub input_cache_dir: Option<PathBuf>,
    /// Seconds since last access after which input cache entries are deleted
    /// [default: 518400].
    #[arg(long, env = "CASTERPAK_INPUT_CACHE_TTL_SECS", value_name = "SECS")]
    pub input_cache_ttl_secs: Option<u64>,
    /// Input cache size limit in bytes [default: 8589934592].
    #[arg(long, env = "CASTERPAK_INPUT_CACHE_MAX_BYTES", value_name = "BYTES")]
    pub input_cache_max_bytes: Option<u64>,
    /// Seconds between cache sweeps [default: 300].
    #[arg(long, env = "CASTERPAK_SWEEP_INTERVAL_SECS", value_name = "SECS")]
    pub sweep_interval_secs: Option<u64>,
    /// MP4 sample indexes kept in memory [default: 1024].
    #[arg(long, env = "CASTERPAK_INDEX_CACHE_ENTRIES", value_name = "N")]
    pub index_cache_entries: Option<u64>,
    /// Bytes of produced playlists/segments kept in memory [default: 67108864].
    #[arg(long, env = "CASTERPAK_MEMORY_CACHE_BYTES", value_name = "BYTES")]
    pub memory_cache_bytes: Option<u64>,
    /// Seconds a remote file's size/ETag/Last-Modified is trusted before re-checking
    /// [default: 10].
    #[arg(long, env = "CASTERPAK_REMOTE_REVALIDATE_SECS", value_name = "SECS")]
    pub remote_revalidate_secs: Option<u64>,
    /// Language tags of the WebVTT sidecars (<name>.<lang>.vtt) probed beside each MP4 of
    /// an http(s) media root, comma-separated [default: none].
    #[arg(
        long,
        env = "CASTERPAK_REMOTE_SIDECAR_LANGUAGES",
        value_name = "LANG",
        value_delimiter = ','
    )]
    pub remote_sidecar_languages: Option<Vec<String>>,
    /// HLS segment encryption of /i/ and /cmaf/: none or aes-128 [default: none].
    #[arg(long, env = "CASTERPAK_HLS_ENCRYPTION", value_name = "none|aes-128")]
    pub hls_encryption: Option<String>,
    /// Master secret (hex, at least 16 bytes) deriving a key per file.
    #[arg(long, env = "CASTERPAK_HLS_ENCRYPTION_SECRET", value_name = "HEX")]
    pub hls_encryption_secret: Option<String>,
    /// File with one key (16 bytes or 32 hex digits) for every file.
    #[arg(long, env = "CASTERPAK_HLS_ENCRYPTION_KEY_FILE", value_name = "FILE")]
    pub hls_encryption_key_file: Option<PathBuf>,
}

impl VodArgs {
    /// Overrides `cfg` with every flag that was given.
    pub fn apply(&self, cfg: &mut VodConfig) {
        set(&mut cfg.media_root, self.media_root.clone());
        set(&mut cfg.segment_duration_secs, self.segment_duration_secs);
        if self.cache_dir.is_some() {
            cfg.cache_dir = self.cache_dir.clone();
        }
        set(&mut cfg.cache_ttl_secs, self.cache_ttl_secs);
        set(&mut cfg.cache_max_bytes, self.cache_max_bytes);
        if self.input_cache_dir.is_some() {
            cfg.input_cache_dir = self.input_cache_dir.clone();
        }
        set(&mut cfg.input_cache_ttl_secs, self.input_cache_ttl_secs);
        set(&mut cfg.input_cache_max_bytes, self.input_cache_max_bytes);
        set(&mut cfg.sweep_interval_secs, self.sweep_interval_secs);
        set(&mut cfg.index_cache_entries, self.index_cache_entries);
        set(&mut cfg.memory_cache_bytes, self.memory_cache_bytes);
        set(&mut cfg.remote_revalidate_secs, self.remote_revalidate_secs);
        set(
            &mut cfg.remote_sidecar_languages,
            self.remote_sidecar_languages.clone(),
        );
        set(&mut cfg.hls_encryption, self.hls_encryption.clone());
        if self.hls_encryption_secret.is_some() {
            cfg.hls_encryption_secret = self.hls_encryption_secret.clone();
        }
        if self.hls_encryption_key_file.is_some() {
            cfg.hls_encryption_key_file = self.hls_encryption_key_file.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_section_flags_and_defaults() {
        let cfg: VodConfig = toml::from_str(
            "media_root = \"https://cdn.example/media\"\nsegment_duration_secs = 10\ncache_dir = \"/tmp/c\"\ninput_cache_max_bytes = 5\n",
        )
        .unwrap();
        assert!(cfg.is_remote());
        assert_eq!(cfg.segment_duration_secs, 10.0);
        assert_eq!(cfg.input_cache_max_bytes, 5);
        assert_eq!(cfg.sweep_interval_secs, 300);
        assert_eq!(cfg.index_cache_entries, 1024);
        let mut cfg = cfg;
        VodArgs {
            media_root: Some("samples".into()),
            sweep_interval_secs: Some(60),
            ..Default::default()
        }
        .apply(&mut cfg);
        assert!(!cfg.is_remote());
        assert_eq!(cfg.sweep_interval_secs, 60);
        assert_eq!(
            cfg.cache_dir.as_deref(),
            Some(std::path::Path::new("/tmp/c"))
        );
        assert!(cfg.validate().is_ok());
        cfg.segment_duration_secs = 0.5;
        assert!(cfg.validate().is_err());
        assert!(toml::from_str::<VodConfig>("segment_duration = 6").is_err());
        cfg.segment_duration_secs = 6.0;
        cfg.remote_sidecar_languages = vec!["en".into(), "pt-BR".into()];
        assert!(cfg.validate().is_ok());
        cfg.remote_sidecar_languages.push("en".into());
        assert!(cfg.validate().is_err(), "a tag named twice");
        cfg.remote_sidecar_languages.pop();
        cfg.remote_sidecar_languages.push("../x".into());
        assert!(cfg.validate().is_err(), "a tag with a path in it");
    }
}
