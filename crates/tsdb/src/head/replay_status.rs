//! Progress of the WAL replay, for `/api/v1/status/walreplay`: the first
//! and last segment to replay and the last one done, numbered as
//! Prometheus numbers them.
//!
//! The handle is created by whoever opens the head (it travels in
//! `HeadOptions`), so it can be read while `Head::open` is still running.
//! Replay only writes it; it never steers the replay.

use std::path::Path;
use std::sync::Mutex;

use crate::wal;

/// A consistent reading of the replay progress (segment numbers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalReplayProgress {
    /// The checkpoint's segment number, or 0 without a checkpoint.
    pub min: i64,
    /// The segment the WAL writes to after replay (one past the last
    /// segment found, as Prometheus opens a new segment before replaying).
    pub max: i64,
    /// The last segment fully replayed (`max` once replay is done).
    pub current: i64,
}

/// Shared, updated replay progress. All zero until replay starts.
#[derive(Debug, Default)]
pub struct WalReplayStatus {
    state: Mutex<WalReplayProgress>,
}

impl WalReplayStatus {
    /// The progress now.
    pub fn get(&self) -> WalReplayProgress {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut WalReplayProgress)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Replay of `wal_dir` begins: fixes min and max from the checkpoint
    /// and segments on disk. Listing errors leave the bounds at 0; replay
    /// itself reports them.
    pub(crate) fn start(&self, wal_dir: &Path) {
        let min = match wal::last_checkpoint(wal_dir) {
            Ok(Some((idx, _))) => i64::from(idx),
            _ => 0,
        };
        let max = wal::list_segments(wal_dir)
            .ok()
            .and_then(|s| s.last().map(|s| i64::from(s.index) + 1))
            .unwrap_or(0)
            .max(min);
        self.update(|p| {
            *p = WalReplayProgress {
                min,
                max,
                current: min,
            }
        });
    }

    /// Reading of `segment` has begun: the ones before it are done.
    pub(crate) fn reading(&self, segment: u32) {
        let done = i64::from(segment) - 1;
        self.update(|p| p.current = p.current.max(done.min(p.max)));
    }

    /// Every segment is replayed.
    pub(crate) fn finish(&self) {
        self.update(|p| p.current = p.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{Head, HeadOptions};
    use std::sync::Arc;
    use vigil_model::storage::Appendable;
    use vigil_model::Labels;

    fn write_wal(dir: &Path, segment_size: usize, samples: i64) {
        let h = Head::open(
            dir,
            HeadOptions {
                wal_segment_size: segment_size,
                wal_compression: false,
                ..HeadOptions::default()
            },
        )
        .unwrap();
        for t in 0..samples {
            let mut app = h.appender();
            for s in 0..50 {
                app.append(
                    0,
                    &Labels::from_pairs(&[("__name__", "m"), ("s", &s.to_string())]),
                    t * 1000,
                    t as f64,
                )
                .unwrap();
            }
            app.commit().unwrap();
        }
        h.close().unwrap();
    }

    #[test]
    fn replay_reports_segments_like_prometheus() {
        let dir = tempfile::tempdir().unwrap();
        write_wal(dir.path(), 32 * 1024, 400);
        let segs = wal::list_segments(&dir.path().join("wal")).unwrap();
        let last = i64::from(segs.last().unwrap().index);
        assert!(last >= 3, "want several segments, got {}", last + 1);

        let status = Arc::new(WalReplayStatus::default());
        assert_eq!(status.get(), WalReplayProgress::default());
        // Watch from another thread: current never goes back and stays
        // within [min, max].
        let seen = std::sync::Mutex::new(Vec::new());
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    seen.lock().unwrap().push(status.get());
                    std::thread::yield_now();
                }
            });
            let h = Head::open(
                dir.path(),
                HeadOptions {
                    replay_status: status.clone(),
                    ..HeadOptions::default()
                },
            )
            .unwrap();
            done.store(true, std::sync::atomic::Ordering::Release);
            h.close().unwrap();
        });
        let end = WalReplayProgress {
            min: 0,
            max: last + 1,
            current: last + 1,
        };
        assert_eq!(status.get(), end);
        let seen = seen.into_inner().unwrap();
        let started: Vec<_> = seen.iter().filter(|p| p.max > 0).collect();
        for w in started.windows(2) {
            assert!(w[0].current <= w[1].current, "{seen:?}");
        }
        for p in started {
            assert_eq!((p.min, p.max), (0, last + 1));
            assert!(p.current <= p.max);
        }
    }

    #[test]
    fn checkpoint_sets_min() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        std::fs::create_dir_all(wal_dir.join("checkpoint.00000004")).unwrap();
        for i in 5..8u32 {
            std::fs::write(wal_dir.join(wal::segment_name(i)), b"").unwrap();
        }
        let s = WalReplayStatus::default();
        s.start(&wal_dir);
        assert_eq!(
            s.get(),
            WalReplayProgress {
                min: 4,
                max: 8,
                current: 4
            }
        );
        s.reading(5);
        assert_eq!(s.get().current, 4);
        s.reading(7);
        assert_eq!(s.get().current, 6);
        s.reading(6);
        assert_eq!(s.get().current, 6, "never goes back");
        s.finish();
        assert_eq!(s.get().current, 8);
    }

    #[test]
    fn fresh_directory_reads_all_zero() {
        let dir = tempfile::tempdir().unwrap();
        let status = Arc::new(WalReplayStatus::default());
        let h = Head::open(
            dir.path(),
            HeadOptions {
                replay_status: status.clone(),
                ..HeadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(status.get(), WalReplayProgress::default());
        let _ = h.appender();
    }
}
