//! Opening a head read-only, next to a server that owns the directory.
//!
//! Replays `chunks_head/`, the last checkpoint and the WAL into memory
//! without writing a byte: no WAL is opened for writing, chunks cut by
//! replay stay in memory, nothing is repaired or removed. A server may
//! truncate its WAL meanwhile (a new checkpoint, older segments deleted):
//! replay then starts over, a bounded number of times.

use super::{Head, HeadError, HeadInner, HeadOptions};
use crate::head_chunks::{ChunkDiskMapper, HeadChunksError};
use crate::wal::{self, WalError};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Replays attempted before settling for a view that raced a truncation.
const ATTEMPTS: usize = 4;

/// Whether replay failed because a file it listed was deleted since.
fn vanished(e: &HeadError) -> bool {
    let source = match e {
        HeadError::Wal(WalError::Io { source, .. }) => source,
        HeadError::Chunks(HeadChunksError::Io { source, .. }) => source,
        HeadError::Io { source, .. } => source,
        _ => return false,
    };
    source.kind() == std::io::ErrorKind::NotFound
}

fn checkpoint_index(dir: &Path) -> Result<Option<u32>, HeadError> {
    Ok(wal::last_checkpoint(&dir.join("wal"))?.map(|(i, _)| i))
}

impl Head {
    /// Opens the head of `dir` for reading only. Writes nothing to `dir`
    /// and takes no lock, so it is safe while a server runs on it; the
    /// result holds what was committed when it was opened. The WAL-related
    /// options (`wal_enabled` aside) are ignored, and appends to the
    /// returned head are never persisted.
    pub fn open_read_only(dir: &Path, opts: HeadOptions) -> Result<Head, HeadError> {
        if !dir.is_dir() {
            return Err(HeadError::Io {
                op: "opening",
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt == ATTEMPTS;
            let before = checkpoint_index(dir)?;
            let started = std::time::Instant::now();
            let mapper = ChunkDiskMapper::open_read_only(&dir.join("chunks_head"))?;
            let mut inner = HeadInner::new(dir, &opts, mapper);
            match super::replay::replay(&mut inner) {
                Ok(()) => {}
                Err(e) if vanished(&e) && !last => {
                    tracing::debug!("WAL truncated during read-only replay, starting over: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            }
            if checkpoint_index(dir)? != before && !last {
                tracing::debug!("WAL checkpointed during read-only replay, starting over");
                continue;
            }
            inner
                .stats
                .replay_duration_ms
                .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            // Closing must not try to seal or sync anything.
            inner.closed.store(true, Ordering::Release);
            return Ok(Head {
                inner: Arc::new(inner),
            });
        }
    }

    /// True for a head opened with `open_read_only`.
    pub fn is_read_only(&self) -> bool {
        self.inner.chunks.is_read_only()
    }

    /// Read-only head: bytes of the chunks replay cut in memory.
    pub fn read_only_chunk_bytes(&self) -> usize {
        self.inner.chunks.memory_bytes()
    }
}
