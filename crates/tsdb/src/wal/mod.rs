//! The write-ahead log, in Prometheus's format (`wal/` of a data dir).
//!
//! Owns segment files `00000000`, `00000001`, ... of up to 128 MiB written in
//! 32 KiB pages. A record is split into fragments (full/first/middle/last)
//! that never cross a page, each with a 7-byte header: type (with bit 3 set
//! when the record is snappy-compressed), length (be16) and CRC32-Castagnoli
//! (be32) of the fragment. Records never cross segments. `log` returns only
//! after its bytes were written to the segment file (write(2)), so a killed
//! process loses nothing logged; segments are fsynced when closed and on
//! `close`. This module knows record bytes, not series: see `record`.

mod checkpoint;
mod reader;
pub mod record;

pub use checkpoint::{
    checkpoint, checkpoint_name, delete_checkpoints, last_checkpoint, list_checkpoints,
    CheckpointStats,
};
pub use reader::{repair, RecordReader, RepairStats, SegmentRef, WalTailer};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Bytes per page.
pub const PAGE_SIZE: usize = 32 * 1024;
/// Default segment size.
pub const DEFAULT_SEGMENT_SIZE: usize = 128 * 1024 * 1024;
/// Bytes of a fragment header.
pub const RECORD_HEADER_SIZE: usize = 7;
/// Set in the fragment type byte when the record is snappy-compressed.
pub const SNAPPY_MASK: u8 = 1 << 3;

/// Fragment types.
pub(crate) const REC_PAGE_TERM: u8 = 0;
pub(crate) const REC_FULL: u8 = 1;
pub(crate) const REC_FIRST: u8 = 2;
pub(crate) const REC_MIDDLE: u8 = 3;
pub(crate) const REC_LAST: u8 = 4;

/// Errors of the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corruption in WAL segment {segment} of {} at offset {offset}: {reason}", dir.display())]
    Corruption {
        dir: PathBuf,
        segment: u32,
        offset: u64,
        reason: String,
    },
    #[error("WAL segments in {} are not sequential: {prev} is followed by {next}", dir.display())]
    Gap { dir: PathBuf, prev: u32, next: u32 },
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        WalError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Name of segment `i`.
pub fn segment_name(i: u32) -> String {
    format!("{i:08}")
}

/// Segment files in `dir`, sorted by index (no contiguity check).
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentRef>, WalError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(WalError::io("listing", dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| WalError::io("listing", dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(index) = name.parse::<u32>() {
            out.push(SegmentRef {
                index,
                path: e.path(),
            });
        }
    }
    out.sort_by_key(|s| s.index);
    Ok(out)
}

/// WAL write counters (exported by the head's stats).
#[derive(Debug, Default)]
pub struct WalStats {
    /// `prometheus_tsdb_wal_page_flushes_total`
    pub page_flushes: AtomicU64,
    /// `prometheus_tsdb_wal_completed_pages_total`
    pub completed_pages: AtomicU64,
    /// `prometheus_tsdb_wal_writes_failed_total`
    pub writes_failed: AtomicU64,
    /// `prometheus_tsdb_wal_segment_current`
    pub segment_current: AtomicU64,
    /// `prometheus_tsdb_wal_record_bytes_saved_total`: bytes saved by compression.
    pub bytes_saved: AtomicU64,
}

/// Options of a WAL.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Segment size in bytes (a multiple of `PAGE_SIZE`).
    pub segment_size: usize,
    /// Snappy-compress records when that makes them smaller.
    pub compress: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compress: true,
        }
    }
}

struct Page {
    buf: Box<[u8]>,
    alloc: usize,
    flushed: usize,
}

impl Page {
    fn remaining(&self) -> usize {
        PAGE_SIZE - self.alloc
    }
    fn full(&self) -> bool {
        PAGE_SIZE - self.alloc < RECORD_HEADER_SIZE
    }
    fn reset(&mut self) {
        self.buf.fill(0);
        self.alloc = 0;
        self.flushed = 0;
    }
}

/// Writer state at the start of a `log` call, to undo a failed write.
struct Snap {
    segment_index: u32,
    done_pages: usize,
    alloc: usize,
    flushed: usize,
    /// Page bytes `0..alloc` at the start, copied only if the page gets
    /// recycled during the call.
    page: Option<Vec<u8>>,
}

struct Writer {
    /// Set when a write failed: the file may hold a partial write past the
    /// good state, which the next call cuts off before writing.
    broken: Option<Snap>,
    snap: Option<Snap>,
    dir: PathBuf,
    segment: File,
    segment_path: PathBuf,
    segment_index: u32,
    done_pages: usize,
    page: Page,
    pages_per_segment: usize,
}

/// Compression scratch space, kept by each caller so compression happens
/// outside the WAL lock.
#[derive(Default)]
pub struct WalScratch {
    enc: Option<snap::raw::Encoder>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for WalScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalScratch")
    }
}

/// A write-ahead log open for appending.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    w: Mutex<Writer>,
    stats: WalStats,
}

impl Wal {
    /// Opens the WAL in `dir` (creating it) for writing. Like Prometheus, it
    /// never appends to an existing segment: writing starts in a new segment
    /// after the last one, so replay and repair never race with writes.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        fs::create_dir_all(dir).map_err(|e| WalError::io("creating", dir, e))?;
        let next = list_segments(dir)?.last().map_or(0, |s| s.index + 1);
        let (segment, segment_path) = create_segment(dir, next)?;
        let stats = WalStats::default();
        stats.segment_current.store(next as u64, Ordering::Relaxed);
        let pages_per_segment = (opts.segment_size / PAGE_SIZE).max(1);
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            w: Mutex::new(Writer {
                broken: None,
                snap: None,
                dir: dir.to_path_buf(),
                segment,
                segment_path,
                segment_index: next,
                done_pages: 0,
                page: Page {
                    buf: vec![0u8; PAGE_SIZE].into_boxed_slice(),
                    alloc: 0,
                    flushed: 0,
                },
                pages_per_segment,
            }),
            stats,
        })
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write counters.
    pub fn stats(&self) -> &WalStats {
        &self.stats
    }

    /// Index of the segment being written.
    pub fn current_segment(&self) -> u32 {
        self.lock().segment_index
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.w.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes records and hands them to the kernel before returning.
    pub fn log(&self, recs: &[&[u8]], scratch: &mut WalScratch) -> Result<(), WalError> {
        self.log_inner(recs, scratch, true)
    }

    /// Places a record in the current page without a write(2); it reaches
    /// the kernel with the next `log` (or when the page fills). Used for
    /// series records so they precede, in the log, every sample that can
    /// refer to them, without a system call per new series.
    pub fn log_deferred(&self, rec: &[u8], scratch: &mut WalScratch) -> Result<(), WalError> {
        self.log_inner(&[rec], scratch, false)
    }

    fn log_inner(
        &self,
        recs: &[&[u8]],
        scratch: &mut WalScratch,
        flush: bool,
    ) -> Result<(), WalError> {
        // Compress before taking the lock.
        let mut prepared: Vec<(std::ops::Range<usize>, bool, usize)> =
            Vec::with_capacity(recs.len());
        scratch.buf.clear();
        for (i, rec) in recs.iter().enumerate() {
            if self.opts.compress && !rec.is_empty() {
                let enc = scratch.enc.get_or_insert_with(snap::raw::Encoder::new);
                let start = scratch.buf.len();
                scratch
                    .buf
                    .resize(start + snap::raw::max_compress_len(rec.len()), 0);
                match enc.compress(rec, &mut scratch.buf[start..]) {
                    Ok(n) if n < rec.len() => {
                        scratch.buf.truncate(start + n);
                        self.stats
                            .bytes_saved
                            .fetch_add((rec.len() - n) as u64, Ordering::Relaxed);
                        prepared.push((start..start + n, true, i));
                        continue;
                    }
                    _ => scratch.buf.truncate(start),
                }
            }
            prepared.push((0..0, false, i));
        }
        let mut w = self.lock();
        if w.broken.is_some() {
            w.recover()?;
        }
        w.begin();
        let n = prepared.len();
        for (k, (range, compressed, i)) in prepared.into_iter().enumerate() {
            let rec: &[u8] = if compressed {
                &scratch.buf[range]
            } else {
                recs[i]
            };
            let res = w.log_one(rec, compressed, flush && k + 1 == n, &self.stats);
            if let Err(e) = res {
                self.stats.writes_failed.fetch_add(1, Ordering::Relaxed);
                w.broken = w.snap.take();
                // Best effort now; retried by the next call if it fails.
                if let Err(e2) = w.recover() {
                    tracing::warn!("WAL write failed and could not be undone yet: {e2}");
                }
                return Err(e);
            }
        }
        w.snap = None;
        Ok(())
    }

    /// Closes the current segment and starts the next; returns the new
    /// segment's index. The old one is fsynced in the background.
    pub fn next_segment(&self) -> Result<u32, WalError> {
        let mut w = self.lock();
        let i = w.next_segment(&self.stats)?;
        Ok(i)
    }

    /// Hands buffered bytes to the kernel (a deferred record, typically).
    pub fn flush(&self) -> Result<(), WalError> {
        let mut w = self.lock();
        w.flush_pending(&self.stats)
    }

    /// Flushes and fsyncs the current segment (the hook for a periodic
    /// fsync policy).
    pub fn sync(&self) -> Result<(), WalError> {
        let mut w = self.lock();
        w.flush_pending(&self.stats)?;
        w.segment
            .sync_data()
            .map_err(|e| WalError::io("syncing", &w.segment_path, e))
    }

    /// Deletes every segment with an index below `index` (never the one
    /// being written).
    pub fn truncate(&self, index: u32) -> Result<(), WalError> {
        let current = self.current_segment();
        for s in list_segments(&self.dir)? {
            if s.index >= index || s.index >= current {
                continue;
            }
            fs::remove_file(&s.path).map_err(|e| WalError::io("removing", &s.path, e))?;
        }
        Ok(())
    }

    /// Flushes and fsyncs; the WAL stays usable.
    pub fn close(&self) -> Result<(), WalError> {
        self.sync()
    }
}

fn create_segment(dir: &Path, index: u32) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(segment_name(index));
    // Append mode: after a failed write is cut off with set_len, the next
    // write lands at the new end.
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| WalError::io("creating", &path, e))?;
    f.set_len(0)
        .map_err(|e| WalError::io("truncating", &path, e))?;
    sync_dir(dir)?;
    Ok((f, path))
}

/// fsyncs a directory so a created or renamed entry survives a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("syncing directory", dir, e))
}

impl Writer {
    fn flush_pending(&mut self, stats: &WalStats) -> Result<(), WalError> {
        if self.broken.is_some() {
            self.recover()?;
        }
        if self.page.alloc > self.page.flushed {
            self.begin();
            if let Err(e) = self.flush_page(false, stats) {
                stats.writes_failed.fetch_add(1, Ordering::Relaxed);
                self.broken = self.snap.take();
                let _ = self.recover();
                return Err(e);
            }
            self.snap = None;
        }
        Ok(())
    }

    fn begin(&mut self) {
        self.snap = Some(Snap {
            segment_index: self.segment_index,
            done_pages: self.done_pages,
            alloc: self.page.alloc,
            flushed: self.page.flushed,
            page: None,
        });
    }

    /// Undoes a failed call: cuts the segment back to the bytes known good
    /// and restores the page as it was, so the failed records vanish and
    /// nothing is written twice.
    fn recover(&mut self) -> Result<(), WalError> {
        let Some(snap) = self.broken.take() else {
            return Ok(());
        };
        let (len, restore) = if snap.segment_index == self.segment_index {
            ((snap.done_pages * PAGE_SIZE + snap.flushed) as u64, true)
        } else {
            // The failure came after switching segments: the new one is
            // dropped back to empty.
            (0, false)
        };
        if let Err(e) = self.segment.set_len(len) {
            self.broken = Some(snap);
            return Err(WalError::io("truncating", &self.segment_path, e));
        }
        if restore {
            if let Some(copy) = &snap.page {
                self.page.buf.fill(0);
                self.page.buf[..copy.len()].copy_from_slice(copy);
            } else {
                self.page.buf[snap.alloc..].fill(0);
            }
            self.done_pages = snap.done_pages;
            self.page.alloc = snap.alloc;
            self.page.flushed = snap.flushed;
        } else {
            self.done_pages = 0;
            self.page.reset();
        }
        Ok(())
    }

    fn log_one(
        &mut self,
        rec: &[u8],
        compressed: bool,
        flush: bool,
        stats: &WalStats,
    ) -> Result<(), WalError> {
        // Records never cross segments: if it does not fit in what is left
        // of this one, start the next.
        // A segment whose pages are all done has no room at all (the next
        // page would make it larger than the segment size).
        let left = if self.done_pages >= self.pages_per_segment {
            0
        } else {
            self.page.remaining().saturating_sub(RECORD_HEADER_SIZE)
                + (PAGE_SIZE - RECORD_HEADER_SIZE) * (self.pages_per_segment - self.done_pages - 1)
        };
        if rec.len() > left || (left == 0 && self.done_pages >= self.pages_per_segment) {
            self.next_segment(stats)?;
        }
        let mut rest = rec;
        let mut first = true;
        // One pass at least, so empty records are written too.
        while first || !rest.is_empty() {
            let l = rest
                .len()
                .min(PAGE_SIZE - self.page.alloc - RECORD_HEADER_SIZE);
            let (part, tail) = rest.split_at(l);
            let mut typ = match (first, tail.is_empty()) {
                (true, true) => REC_FULL,
                (false, true) => REC_LAST,
                (true, false) => REC_FIRST,
                (false, false) => REC_MIDDLE,
            };
            if compressed {
                typ |= SNAPPY_MASK;
            }
            let a = self.page.alloc;
            let buf = &mut self.page.buf[a..a + RECORD_HEADER_SIZE + l];
            buf[0] = typ;
            buf[1..3].copy_from_slice(&(l as u16).to_be_bytes());
            buf[3..7].copy_from_slice(&crc32c::crc32c(part).to_be_bytes());
            buf[RECORD_HEADER_SIZE..].copy_from_slice(part);
            self.page.alloc += RECORD_HEADER_SIZE + l;
            if self.page.full() {
                self.flush_page(true, stats)?;
            }
            rest = tail;
            first = false;
        }
        if flush && self.page.alloc > self.page.flushed {
            self.flush_page(false, stats)?;
        }
        Ok(())
    }

    /// Writes the unflushed part of the page; `clear` (or a full page) pads
    /// it to the page end with zeros and starts a new page.
    fn flush_page(&mut self, clear: bool, stats: &WalStats) -> Result<(), WalError> {
        stats.page_flushes.fetch_add(1, Ordering::Relaxed);
        let clear = clear || self.page.full();
        if clear {
            self.page.alloc = PAGE_SIZE;
        }
        let (from, to) = (self.page.flushed, self.page.alloc);
        let res = self.segment.write_all(&self.page.buf[from..to]);
        if let Err(e) = res {
            // We cannot know how much reached the file; the next segment
            // starts clean.
            return Err(WalError::io("writing", &self.segment_path, e));
        }
        self.page.flushed = to;
        if clear {
            let want = self
                .snap
                .as_ref()
                .filter(|s| s.page.is_none() && s.segment_index == self.segment_index)
                .map(|s| s.alloc);
            if let Some(alloc) = want {
                let copy = self.page_prefix(alloc);
                if let Some(snap) = self.snap.as_mut() {
                    snap.page = Some(copy);
                }
            }
            self.page.reset();
            self.done_pages += 1;
            stats.completed_pages.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn page_prefix(&self, n: usize) -> Vec<u8> {
        // Only the first recycle in a call matters; later pages are new.
        if self
            .snap
            .as_ref()
            .is_some_and(|s| s.done_pages == self.done_pages)
        {
            self.page.buf[..n].to_vec()
        } else {
            Vec::new()
        }
    }

    fn next_segment(&mut self, stats: &WalStats) -> Result<u32, WalError> {
        if self.page.alloc > 0 {
            self.flush_page(true, stats)?;
        }
        let next = self.segment_index + 1;
        let (f, path) = create_segment(&self.dir, next)?;
        let old = std::mem::replace(&mut self.segment, f);
        let old_path = std::mem::replace(&mut self.segment_path, path);
        self.segment_index = next;
        self.done_pages = 0;
        self.page.reset();
        stats.segment_current.store(next as u64, Ordering::Relaxed);
        // fsync the finished segment off the append path.
        std::thread::spawn(move || {
            if let Err(e) = old.sync_all() {
                tracing::error!(segment = %old_path.display(), "fsync of WAL segment failed: {e}");
            }
        });
        Ok(next)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!("closing WAL: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
