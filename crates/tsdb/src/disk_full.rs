//! Running out of disk space (ENOSPC, EDQUOT) without crashing.
//!
//! Owns the head's read-only switch: any write that fails because the
//! file system is full (WAL, head chunks, a block, a checkpoint) turns
//! ingestion read-only, so appends fail fast with a clear error while
//! queries keep working. While read-only, a probe reserves a little space
//! at most once a second; when that succeeds ingestion resumes by itself.
//! It never deletes data to make room: retention does that.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_model::storage::StorageError;

/// Space the probe must be able to reserve before ingestion resumes: a few
/// WAL pages and head chunk buffers, so resuming does not fail at once.
pub const PROBE_BYTES: u64 = 1 << 20;
/// How often, at most, the probe runs while read-only.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Name of the probe file, created and removed in the data directory.
pub const PROBE_FILENAME: &str = ".vigil-space-probe";

/// True for an I/O error meaning the file system (or quota) is full.
pub fn is_disk_full_io(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// True when an error's text carries a disk-full I/O error. Errors cross
/// the crate as text (`StorageError::Io`), and Rust prints an OS error as
/// "<description> (os error N)".
pub fn is_disk_full_text(msg: &str) -> bool {
    let codes = [libc::ENOSPC, libc::EDQUOT];
    codes
        .iter()
        .any(|c| msg.contains(&format!("(os error {c})")))
}

/// The read-only switch of one data directory.
#[derive(Debug)]
pub struct DiskFull {
    dir: PathBuf,
    read_only: AtomicBool,
    /// What failed, for the append error and the log.
    reason: Mutex<String>,
    next_probe: Mutex<Instant>,
    /// Times ingestion turned read-only (for tests and logs).
    entered: AtomicU64,
}

impl DiskFull {
    /// A switch for the data directory `dir` (where the probe writes).
    pub fn new(dir: &Path) -> DiskFull {
        DiskFull {
            dir: dir.to_path_buf(),
            read_only: AtomicBool::new(false),
            reason: Mutex::new(String::new()),
            next_probe: Mutex::new(Instant::now()),
            entered: AtomicU64::new(0),
        }
    }

    /// Whether ingestion is read-only right now (no probing).
    #[inline]
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// Times ingestion turned read-only since start.
    pub fn times_entered(&self) -> u64 {
        self.entered.load(Ordering::Relaxed)
    }

    /// Looks at a failed write's error (`what` failed); if it means the
    /// disk is full, switches to read-only and returns true.
    pub fn note(&self, what: &str, err: &dyn std::fmt::Display) -> bool {
        let msg = err.to_string();
        if !is_disk_full_text(&msg) {
            return false;
        }
        self.enter(what, &msg);
        true
    }

    /// Switches to read-only because `what` failed with `msg`.
    pub fn enter(&self, what: &str, msg: &str) {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = format!("{what}: {msg}");
        *self.next_probe.lock().unwrap_or_else(|e| e.into_inner()) =
            Instant::now() + PROBE_INTERVAL;
        if !self.read_only.swap(true, Ordering::AcqRel) {
            self.entered.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                dir = %self.dir.display(),
                "no space left on device ({what}: {msg}); ingestion is read-only until space is freed, queries keep working"
            );
        }
    }

    /// Ok when appends may proceed. While read-only, probes for space (at
    /// most once per `PROBE_INTERVAL`) and resumes when the probe succeeds;
    /// otherwise returns the read-only error.
    pub fn check(&self) -> Result<(), StorageError> {
        if !self.is_read_only() {
            return Ok(());
        }
        if self.refresh() {
            return Ok(());
        }
        let reason = self
            .reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Err(StorageError::ReadOnly(format!(
            "no space left on device, appends are refused until space is freed ({reason})"
        )))
    }

    /// Runs the probe if it is due; returns true when ingestion is
    /// writable (again).
    pub fn refresh(&self) -> bool {
        if !self.is_read_only() {
            return true;
        }
        {
            let mut next = self.next_probe.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if now < *next {
                return false;
            }
            *next = now + PROBE_INTERVAL;
        }
        match probe_all(&self.dir) {
            Ok(()) => {
                if self.read_only.swap(false, Ordering::AcqRel) {
                    tracing::warn!(dir = %self.dir.display(), "disk space available again; ingestion resumed");
                }
                true
            }
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), "space probe failed: {e}");
                false
            }
        }
    }
}

/// Lets through one log line per interval and counts the rest, so a
/// failure hitting every series (a full disk) logs a line, not millions.
#[derive(Debug, Default)]
pub struct LogLimiter {
    /// Milliseconds since `EPOCH` of the last line let through, plus one.
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub const fn new() -> Self {
        LogLimiter {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be logged now (`n` lines were suppressed
    /// since the last one), `None` to stay quiet.
    pub fn allow(&self, every: Duration) -> Option<u64> {
        let now = epoch_ms() + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < every.as_millis() as u64 {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self
            .last
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

fn epoch_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Probes the data directory and, when they are other file systems (mount
/// points or symlinks), its `wal/` and `chunks_head/`.
fn probe_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut devices = Vec::new();
    for d in [dir.to_path_buf(), dir.join("wal"), dir.join("chunks_head")] {
        let Ok(m) = std::fs::metadata(&d) else {
            continue;
        };
        if !devices.contains(&m.dev()) {
            devices.push(m.dev());
            probe(&d, PROBE_BYTES)?;
        }
    }
    Ok(())
}

/// Reserves `bytes` in a probe file under `dir`, then removes it.
fn probe(dir: &Path, bytes: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let path = dir.join(PROBE_FILENAME);
    let res = (|| {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        // SAFETY: fallocate on a descriptor we own; no memory involved.
        let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, bytes as libc::off_t) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(e);
        }
        // No fallocate here: write the bytes instead.
        use std::io::Write;
        let zeros = vec![0u8; 64 * 1024];
        let mut w = std::io::BufWriter::new(f);
        let mut left = bytes;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            w.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_data()
    })();
    let _ = std::fs::remove_file(&path);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_disk_full_errors_only() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let quota = std::io::Error::from_raw_os_error(libc::EDQUOT);
        let other = std::io::Error::from_raw_os_error(libc::EACCES);
        assert!(is_disk_full_io(&full) && is_disk_full_io(&quota));
        assert!(!is_disk_full_io(&other));
        assert!(is_disk_full_text(&format!("writing WAL: {full}")));
        assert!(is_disk_full_text(&format!("x: {quota}")));
        assert!(!is_disk_full_text(&format!("x: {other}")));
        assert!(!is_disk_full_text("No space left on device"));
    }

    #[test]
    fn read_only_until_the_probe_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let d = DiskFull::new(dir.path());
        assert!(d.check().is_ok());
        assert!(!d.note("writing", &"permission denied (os error 13)"));
        assert!(!d.is_read_only());
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(d.note("writing WAL", &full));
        let err = d.check().unwrap_err();
        assert!(matches!(err, StorageError::ReadOnly(_)));
        assert!(err.to_string().contains("no space left on device"), "{err}");
        assert!(err.to_string().contains("writing WAL"), "{err}");
        // The probe is not due yet; then it is, and this disk has room.
        assert!(!d.refresh());
        std::thread::sleep(PROBE_INTERVAL);
        assert!(d.check().is_ok());
        assert!(!d.is_read_only());
        assert!(!dir.path().join(PROBE_FILENAME).exists());
        assert_eq!(d.times_entered(), 1);
    }

    #[test]
    fn log_limiter_lets_one_line_through_per_interval() {
        let l = LogLimiter::new();
        assert_eq!(l.allow(Duration::from_millis(200)), Some(0));
        assert_eq!(l.allow(Duration::from_millis(200)), None);
        assert_eq!(l.allow(Duration::from_millis(200)), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(l.allow(Duration::from_millis(200)), Some(2));
    }
}
