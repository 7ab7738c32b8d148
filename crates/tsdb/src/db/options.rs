//! DB settings, mirroring Prometheus's `--storage.tsdb.*` flags and their
//! defaults.

use std::time::Duration;

use crate::block::DEFAULT_BLOCK_DURATION;
use crate::head::HeadOptions;

/// `--storage.tsdb.retention.time` when neither retention flag is given.
pub const DEFAULT_RETENTION: i64 = 15 * 24 * 3_600_000;
const MAX_BLOCK_CAP: i64 = 31 * 24 * 3_600_000;

/// Options of `Db::open`. Durations are milliseconds.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `--storage.tsdb.retention.time`; 0 disables time retention.
    pub retention_time: i64,
    /// `--storage.tsdb.retention.size` in bytes; 0 disables it.
    pub retention_size: u64,
    /// `--storage.tsdb.min-block-duration` (head block range, default 2h).
    pub min_block_duration: i64,
    /// `--storage.tsdb.max-block-duration` (largest compacted block).
    pub max_block_duration: i64,
    /// `--storage.tsdb.no-lockfile`.
    pub no_lockfile: bool,
    /// How often the background loop checks for compaction (Prometheus: 1m).
    pub compaction_interval: Duration,
    /// Head settings (its chunk range is set from `min_block_duration`).
    pub head: HeadOptions,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions::from_flags(None, None, None, None)
    }
}

impl DbOptions {
    /// Resolves the flags as Prometheus does: 15d retention when neither
    /// retention flag is set; max block duration 10% of the time retention,
    /// at most 31d, never below the min block duration.
    pub fn from_flags(
        retention_time: Option<i64>,
        retention_size: Option<u64>,
        min_block_duration: Option<i64>,
        max_block_duration: Option<i64>,
    ) -> DbOptions {
        let mut rt = retention_time.unwrap_or(0).max(0);
        let rs = retention_size.unwrap_or(0);
        if rt == 0 && rs == 0 {
            rt = DEFAULT_RETENTION;
        }
        let min = min_block_duration
            .filter(|&d| d > 0)
            .unwrap_or(DEFAULT_BLOCK_DURATION);
        let default_max = if rt != 0 && rt / 10 < MAX_BLOCK_CAP {
            rt / 10
        } else {
            MAX_BLOCK_CAP
        };
        let max = max_block_duration.filter(|&d| d > 0).unwrap_or(default_max);
        DbOptions {
            retention_time: rt,
            retention_size: rs,
            min_block_duration: min,
            max_block_duration: max.max(min),
            no_lockfile: false,
            compaction_interval: Duration::from_secs(60),
            head: HeadOptions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn prometheus_defaults() {
        let o = DbOptions::default();
        assert_eq!(o.retention_time, 15 * 24 * H);
        assert_eq!(o.min_block_duration, 2 * H);
        assert_eq!(o.max_block_duration, 36 * H);
        let o = DbOptions::from_flags(None, Some(1 << 30), None, None);
        assert_eq!((o.retention_time, o.max_block_duration), (0, 31 * 24 * H));
        let o = DbOptions::from_flags(Some(365 * 24 * H), None, None, None);
        assert_eq!(o.max_block_duration, 31 * 24 * H);
        let o = DbOptions::from_flags(Some(H), None, None, None);
        assert_eq!(o.max_block_duration, 2 * H);
    }
}
