//! Settings of on-demand packaging (the `[vod]` section of the config file).

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{set, ConfigError};

/// On-demand packaging settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VodConfig {
    /// Folder, or `http://` / `https://` base URL, that `/i/` paths resolve under.
    pub media_root: String,
    /// Target segment duration D in seconds; segments start at the first keyframe at or
    /// after k x D.
    pub segment_duration_secs: f64,
    /// Output cache folder (produced playlists and segments); none when absent.
    pub cache_dir: Option<PathBuf>,
}

impl Default for VodConfig {
    fn default() -> Self {
        VodConfig {
            media_root: "samples".into(),
            segment_duration_secs: 6.0,
            cache_dir: None,
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
        Ok(())
    }
}

/// VOD flags of `casterpak serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VodArgs {
    /// Media root for /i/ URLs: a folder or an http(s) base URL [default: samples].
    #[arg(long, env = "CASTERPAK_MEDIA_ROOT", value_name = "DIR|URL")]
    pub media_root: Option<String>,
    /// VOD segment duration in seconds [default: 6].
    #[arg(long, env = "CASTERPAK_SEGMENT_DURATION_SECS", value_name = "SECS")]
    pub segment_duration_secs: Option<f64>,
    /// Output cache folder for produced playlists and segments [default: none].
    #[arg(long, env = "CASTERPAK_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl VodArgs {
    /// Overrides `cfg` with every flag that was given.
    pub fn apply(&self, cfg: &mut VodConfig) {
        set(&mut cfg.media_root, self.media_root.clone());
        set(&mut cfg.segment_duration_secs, self.segment_duration_secs);
        if self.cache_dir.is_some() {
            cfg.cache_dir = self.cache_dir.clone();
        }
    }
}
