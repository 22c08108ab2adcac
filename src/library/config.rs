//! Settings of the media library (the `[library]` section of the config file).
//!
//! Every scalar key has a flag of the same name with a `library-` prefix
//! (`--library-max-jobs`, ...) and an environment variable (`CASTERPAK_LIBRARY_MAX_JOBS`);
//! the ladder is set in the file only (or per upload).
//!
//! ```toml
//! [library]
//! tus_max_size = 17179869184        # bytes (Tus-Max-Size)
//! upload_expiry_secs = 86400
//! max_duration_secs = 0             # 0 = no limit
//! threads_per_job = 2               # ffmpeg -threads; jobs = cores / this
//! max_jobs = 0                      # 0 = cores / threads_per_job (at least 1)
//! nice = 15                         # ffmpeg's niceness (0 = not niced)
//! stall_secs = 60                   # no progress for this long = a failed attempt
//! preset = "veryfast"
//! ffmpeg = "ffmpeg"
//! ffprobe = "ffprobe"
//! [[library.ladder]]
//! name = "360p"
//! height = 360
//! bitrate = 730000
//! ```

use serde::Deserialize;

use super::ladder::{check_ladder, default_ladder, RungSpec};
use crate::config::{set, ConfigError};

/// Library settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LibraryConfig {
    /// Largest upload accepted, bytes (`Tus-Max-Size`; also the multipart limit).
    /// Default 17179869184 (16 GiB).
    pub tus_max_size: u64,
    /// Seconds an unfinished upload lives after its creation (`Upload-Expires`); then its
    /// bytes are deleted and the asset ends `errored` (`upload_expired`). Default 86400.
    pub upload_expiry_secs: u64,
    /// Longest source accepted, seconds (0 = no limit). Default 0.
    pub max_duration_secs: u64,
    /// `-threads` of each ffmpeg (decoder and every encoder). Default 2.
    pub threads_per_job: u32,
    /// Transcodes at once (0 = available cores / `threads_per_job`, at least 1). Default 0.
    pub max_jobs: usize,
    /// Niceness of ffmpeg (0..=19; 0 runs it at the origin's priority). Default 15.
    pub nice: u8,
    /// Seconds without a progress block after which ffmpeg is killed (a failed attempt).
    /// Default 60.
    pub stall_secs: u64,
    /// x264 preset. Default `veryfast`.
    pub preset: String,
    /// The ffmpeg program. Default `ffmpeg` (from `PATH`).
    pub ffmpeg: String,
    /// The ffprobe program. Default `ffprobe`.
    pub ffprobe: String,
    /// The default ladder (rungs above a source are skipped). Default 240p 300k, 360p 730k,
    /// 540p 2000k, 720p 3000k, 1080p 6000k.
    pub ladder: Vec<RungSpec>,
}

impl Default for LibraryConfig {
    fn default() -> Self {
        LibraryConfig {
            tus_max_size: 16 << 30,
            upload_expiry_secs: 86_400,
            max_duration_secs: 0,
            threads_per_job: 2,
            max_jobs: 0,
            nice: 15,
            stall_secs: 60,
            preset: "veryfast".into(),
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            ladder: default_ladder(),
        }
    }
}

impl LibraryConfig {
    /// Transcodes allowed at once on this machine.
    pub fn jobs(&self) -> usize {
        if self.max_jobs > 0 {
            return self.max_jobs;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / self.threads_per_job.max(1) as usize).max(1)
    }

    /// Checks ranges.
    ///
    /// Errors: [`ConfigError::Invalid`] naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if self.threads_per_job == 0 || self.threads_per_job > 64 {
            return bad("library.threads_per_job", "must be 1..=64");
        }
        if self.nice > 19 {
            return bad("library.nice", "must be 0..=19");
        }
        if self.stall_secs < 5 {
            return bad("library.stall_secs", "must be at least 5");
        }
        if self.upload_expiry_secs < 60 {
            return bad("library.upload_expiry_secs", "must be at least 60");
        }
        if !self.preset.bytes().all(|b| b.is_ascii_lowercase()) || self.preset.is_empty() {
            return bad("library.preset", "must be an x264 preset name");
        }
        check_ladder(&self.ladder).or_else(|e| bad("library.ladder", &e.0))
    }
}

/// The `--library-*` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LibraryArgs {
    /// Largest upload, bytes [default: 17179869184].
    #[arg(long, env = "CASTERPAK_LIBRARY_TUS_MAX_SIZE", value_name = "BYTES")]
    pub library_tus_max_size: Option<u64>,
    /// Seconds an unfinished upload lives [default: 86400].
    #[arg(
        long,
        env = "CASTERPAK_LIBRARY_UPLOAD_EXPIRY_SECS",
        value_name = "SECS"
    )]
    pub library_upload_expiry_secs: Option<u64>,
    /// Longest source accepted, seconds; 0 = no limit [default: 0].
    #[arg(long, env = "CASTERPAK_LIBRARY_MAX_DURATION_SECS", value_name = "SECS")]
    pub library_max_duration_secs: Option<u64>,
    /// ffmpeg -threads per transcode [default: 2].
    #[arg(long, env = "CASTERPAK_LIBRARY_THREADS_PER_JOB", value_name = "N")]
    pub library_threads_per_job: Option<u32>,
    /// Transcodes at once; 0 = cores / threads per job [default: 0].
    #[arg(long, env = "CASTERPAK_LIBRARY_MAX_JOBS", value_name = "N")]
    pub library_max_jobs: Option<usize>,
    /// ffmpeg's niceness, 0..=19 [default: 15].
    #[arg(long, env = "CASTERPAK_LIBRARY_NICE", value_name = "N")]
    pub library_nice: Option<u8>,
    /// Seconds without ffmpeg progress before it is killed [default: 60].
    #[arg(long, env = "CASTERPAK_LIBRARY_STALL_SECS", value_name = "SECS")]
    pub library_stall_secs: Option<u64>,
    /// x264 preset [default: veryfast].
    #[arg(long, env = "CASTERPAK_LIBRARY_PRESET", value_name = "NAME")]
    pub library_preset: Option<String>,
    /// The ffmpeg program [default: ffmpeg].
    #[arg(long, env = "CASTERPAK_LIBRARY_FFMPEG", value_name = "PATH")]
    pub library_ffmpeg: Option<String>,
    /// The ffprobe program [default: ffprobe].
    #[arg(long, env = "CASTERPAK_LIBRARY_FFPROBE", value_name = "PATH")]
    pub library_ffprobe: Option<String>,
}

impl LibraryArgs {
    /// Overrides `cfg` with every flag given.
    pub fn apply(&self, cfg: &mut LibraryConfig) {
        set(&mut cfg.tus_max_size, self.library_tus_max_size);
        set(&mut cfg.upload_expiry_secs, self.library_upload_expiry_secs);
        set(&mut cfg.max_duration_secs, self.library_max_duration_secs);
        set(&mut cfg.threads_per_job, self.library_threads_per_job);
        set(&mut cfg.max_jobs, self.library_max_jobs);
        set(&mut cfg.nice, self.library_nice);
        set(&mut cfg.stall_secs, self.library_stall_secs);
        set(&mut cfg.preset, self.library_preset.clone());
        set(&mut cfg.ffmpeg, self.library_ffmpeg.clone());
        set(&mut cfg.ffprobe, self.library_ffprobe.clone());
    }
}
