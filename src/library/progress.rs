//! ffmpeg's `-progress pipe:1` output: blocks of `key=value` lines, each ended by
//! `progress=continue` or `progress=end` (ffmpeg 5.1: the first block has `out_time_us=0`,
//! `speed=   0x` padded, and `N/A` where a value is unknown; `out_time_ms` is also in
//! microseconds, so only `out_time_us` is read).

/// One finished progress block.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Progress {
    /// Output time reached, microseconds (the slowest output's), when known.
    pub out_time_us: Option<u64>,
    /// Encoding speed as a multiple of real time (`1.5x` -> 1.5), when known.
    pub speed: Option<f64>,
    /// `progress=end`: ffmpeg finished writing.
    pub end: bool,
}

impl Progress {
    /// Fraction done in `0..=1` of a source `duration_secs` long.
    pub fn fraction(&self, duration_secs: f64) -> f64 {
        if self.end {
            return 1.0;
        }
        match self.out_time_us {
            Some(us) if duration_secs > 0.0 => (us as f64 / 1e6 / duration_secs).clamp(0.0, 1.0),
            _ => 0.0,
        }
    }

    /// Seconds left at the current speed, when speed and time are known.
    pub fn eta_secs(&self, duration_secs: f64) -> Option<f64> {
        let speed = self.speed.filter(|s| *s > 0.01)?;
        let done = self.out_time_us? as f64 / 1e6;
        Some(((duration_secs - done).max(0.0) / speed).round())
    }
}

/// Collects lines into blocks.
#[derive(Debug, Default)]
pub struct ProgressParser {
    current: Progress,
}

impl ProgressParser {
    /// Feeds one line; returns the block it ends, if it ends one. Unknown keys, `N/A` and
    /// junk are ignored.
    pub fn line(&mut self, line: &str) -> Option<Progress> {
        let (k, v) = line.trim().split_once('=')?;
        let v = v.trim();
        match k {
            "out_time_us" => {
                self.current.out_time_us = v.parse::<i64>().ok().map(|t| t.max(0) as u64)
            }
            "speed" => {
                self.current.speed = v
                    .strip_suffix('x')
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite())
            }
            "progress" => {
                self.current.end = v == "end";
                return Some(self.current);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_from_ffmpeg_5_1() {
        let text = "frame=0\nfps=0.00\nbitrate=N/A\ntotal_size=N/A\nout_time_us=0\nout_time_ms=0\n\
            speed=   0x\nprogress=continue\nframe=120\nout_time_us=4000000\nspeed=2.01x\n\
            progress=continue\nout_time_us=N/A\nspeed=N/A\nprogress=end\n";
        let mut p = ProgressParser::default();
        let blocks: Vec<Progress> = text.lines().filter_map(|l| p.line(l)).collect();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0].out_time_us, Some(0));
        assert_eq!(blocks[1].out_time_us, Some(4_000_000));
        assert_eq!(blocks[1].speed, Some(2.01));
        assert!((blocks[1].fraction(8.0) - 0.5).abs() < 1e-9);
        assert_eq!(blocks[1].eta_secs(8.0), Some(2.0));
        assert!(blocks[2].end);
        assert_eq!(blocks[2].fraction(8.0), 1.0);
    }
}
