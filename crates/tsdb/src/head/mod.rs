//! The head block: the most recent samples, in memory and in the WAL.
//!
//! Owns the series (sharded by ref, so appends from many scrape loops run in
//! parallel without a global lock), the label index (interned strings and
//! postings), the WAL and the memory-mapped head chunks. A series keeps only
//! its open chunk in RAM. The head never writes blocks: `compaction_series`
//! hands sorted series and re-cut chunks to the block writer, and
//! `truncate` then drops what the block holds.
//!
//! Lock order (never taken in reverse): hash shard -> ref shard -> postings
//! -> symbols; the WAL and chunk file locks are leaves.

mod appender;
mod compaction;
mod delete;
mod index;
mod querier;
mod read_only;
mod replay;
mod replay_status;
mod series;
mod series_limit;
mod slots;
mod stats;

pub use appender::HeadAppender;
pub use compaction::{CompactionSeries, CompactionSeriesIter};
pub use querier::HeadQuerier;
pub use replay_status::{WalReplayProgress, WalReplayStatus};
pub(crate) use series::{compute_chunk_end_time, range_for_timestamp};
pub use stats::{CardinalityStat, HeadCardinality};

use crate::head_chunks::{ChunkDiskMapper, HeadChunksError};
use crate::wal::{record, Wal, WalError, WalOptions, WalScratch};
use index::{labels_hash, FastMap, Postings, Sym, Symbols};
use series::MemSeries;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use vigil_model::storage::{Appendable, Appender, Querier, Queryable, StorageError};
use vigil_model::{Labels, Matcher};

/// Number of ref shards and hash shards (a power of two).
const SHARDS: usize = 256;

/// Default chunk range: the 2 h block range.
pub const DEFAULT_CHUNK_RANGE: i64 = 2 * 60 * 60 * 1000;

/// Head settings.
#[derive(Clone, Debug)]
pub struct HeadOptions {
    /// Block range in ms: head chunks are cut at its boundaries.
    pub chunk_range: i64,
    /// `storage.tsdb.out_of_order_time_window` in ms; 0 rejects
    /// out-of-order samples.
    pub ooo_time_window: i64,
    /// Write and replay the WAL (off only for tests and read-only tools).
    pub wal_enabled: bool,
    pub wal_segment_size: usize,
    /// `--storage.tsdb.wal-compression` (snappy).
    pub wal_compression: bool,
    /// Samples older than this are dropped on replay and rejected on append
    /// (the DB passes the newest block's max time).
    pub min_valid_time: i64,
    /// Refuse new series beyond this many (0 = no limit).
    pub max_series: usize,
    /// Cap on a `chunks_head/` file's size.
    pub head_chunk_file_size: u64,
    /// Where WAL replay reports its progress (shared with the API).
    pub replay_status: Arc<WalReplayStatus>,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range: DEFAULT_CHUNK_RANGE,
            ooo_time_window: 0,
            wal_enabled: true,
            wal_segment_size: crate::wal::DEFAULT_SEGMENT_SIZE,
            wal_compression: true,
            min_valid_time: i64::MIN,
            max_series: 0,
            head_chunk_file_size: crate::head_chunks::MAX_HEAD_CHUNK_FILE_SIZE,
            replay_status: Arc::default(),
        }
    }
}

/// Head counters and gauges, as plain atomics; the web layer exports them
/// under the Prometheus metric names given on each field.
#[derive(Debug, Default)]
pub struct HeadStats {
    /// `prometheus_tsdb_head_samples_appended_total` (in-order).
    pub samples_appended: AtomicU64,
    /// `prometheus_tsdb_head_out_of_order_samples_appended_total`.
    pub ooo_samples_appended: AtomicU64,
    /// `prometheus_tsdb_out_of_order_samples_total`.
    pub out_of_order_samples: AtomicU64,
    /// `prometheus_tsdb_out_of_bound_samples_total`.
    pub out_of_bound_samples: AtomicU64,
    /// `prometheus_tsdb_too_old_samples_total`.
    pub too_old_samples: AtomicU64,
    /// Samples rejected for a duplicate timestamp with another value (no
    /// Prometheus counterpart in the TSDB).
    pub duplicate_samples: AtomicU64,
    /// `prometheus_tsdb_head_series` (gauge).
    pub series: AtomicU64,
    /// `prometheus_tsdb_head_series_created_total`.
    pub series_created: AtomicU64,
    /// `prometheus_tsdb_head_series_removed_total`.
    pub series_removed: AtomicU64,
    /// `prometheus_tsdb_head_series_not_found_total`.
    pub series_not_found: AtomicU64,
    /// `vigil_tsdb_head_series_limit_rejections_total`.
    pub series_limit_rejections: AtomicU64,
    /// `prometheus_tsdb_head_chunks` (gauge).
    pub chunks: AtomicU64,
    /// `prometheus_tsdb_head_chunks_created_total`.
    pub chunks_created: AtomicU64,
    /// `prometheus_tsdb_head_chunks_removed_total`.
    pub chunks_removed: AtomicU64,
    /// `prometheus_tsdb_head_truncations_total`.
    pub truncations: AtomicU64,
    /// `prometheus_tsdb_head_truncations_failed_total`.
    pub truncations_failed: AtomicU64,
    /// `prometheus_tsdb_wal_corruptions_total`.
    pub wal_corruptions: AtomicU64,
    /// `prometheus_tsdb_wal_truncations_total`.
    pub wal_truncations: AtomicU64,
    /// `prometheus_tsdb_wal_truncations_failed_total`.
    pub wal_truncations_failed: AtomicU64,
    /// `prometheus_tsdb_checkpoint_creations_total`.
    pub checkpoint_creations: AtomicU64,
    /// `prometheus_tsdb_checkpoint_creations_failed_total`.
    pub checkpoint_creations_failed: AtomicU64,
    /// `prometheus_tsdb_checkpoint_deletions_total`.
    pub checkpoint_deletions: AtomicU64,
    /// `prometheus_tsdb_mmap_chunk_corruptions_total`.
    pub mmap_chunk_corruptions: AtomicU64,
    /// `vigil_tsdb_chunk_corruptions_total` (head part): chunks that failed
    /// their CRC or decoding at query time.
    pub chunk_corruptions: AtomicU64,
    /// `prometheus_tsdb_data_replay_duration_seconds` (gauge, in ms).
    pub replay_duration_ms: AtomicU64,
}

/// Errors opening, truncating or closing the head.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Chunks(#[from] HeadChunksError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<HeadError> for StorageError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Chunks(HeadChunksError::Corruption {
                path,
                offset,
                reason,
                ..
            }) => StorageError::Corruption {
                location: format!("{} at offset {offset}", path.display()),
                reason,
            },
            HeadError::Wal(WalError::Corruption {
                dir,
                segment,
                offset,
                reason,
            }) => StorageError::Corruption {
                location: format!(
                    "WAL segment {segment} of {} at offset {offset}",
                    dir.display()
                ),
                reason,
            },
            other => StorageError::Io(other.to_string()),
        }
    }
}

pub(crate) struct Shard {
    pub(crate) series: slots::SeriesSlots,
}

/// Series refs by label hash. Collisions are rare, so the first ref is
/// stored inline and only further ones in `more`.
#[derive(Default)]
pub(crate) struct HashShard {
    refs: FastMap<u64, u64>,
    more: FastMap<u64, Vec<u64>>,
}

impl HashShard {
    fn candidates(&self, h: u64) -> impl Iterator<Item = u64> + '_ {
        self.refs
            .get(&h)
            .copied()
            .into_iter()
            .chain(self.more.get(&h).into_iter().flatten().copied())
    }

    fn insert(&mut self, h: u64, r: u64) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.refs.entry(h) {
            e.insert(r);
        } else {
            self.more.entry(h).or_default().push(r);
        }
    }

    fn remove(&mut self, h: u64, r: u64) {
        if self.refs.get(&h) == Some(&r) {
            let next = self.more.get_mut(&h).and_then(|v| v.pop());
            match next {
                Some(n) => {
                    self.refs.insert(h, n);
                }
                None => {
                    self.refs.remove(&h);
                }
            }
        } else if let Some(v) = self.more.get_mut(&h) {
            v.retain(|x| *x != r);
        }
        if self.more.get(&h).is_some_and(|v| v.is_empty()) {
            self.more.remove(&h);
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

#[inline]
pub(crate) fn shard_of(r: u64) -> usize {
    // Consecutive refs (one target's series) share a shard, so a commit
    // takes few locks; different targets spread over shards.
    ((r >> 6) as usize) & (SHARDS - 1)
}

pub(crate) struct HeadInner {
    pub(crate) opts: HeadOptions,
    pub(crate) dir: PathBuf,
    pub(crate) shards: Box<[Mutex<Shard>]>,
    hashes: Box<[Mutex<HashShard>]>,
    pub(crate) postings: RwLock<Postings>,
    pub(crate) symbols: RwLock<Symbols>,
    next_ref: AtomicU64,
    pub(crate) min_time: AtomicI64,
    pub(crate) max_time: AtomicI64,
    pub(crate) ooo_min_time: AtomicI64,
    pub(crate) ooo_max_time: AtomicI64,
    pub(crate) min_valid_time: AtomicI64,
    /// Newest sample in an inherited Prometheus WBL (`i64::MIN`: none).
    pub(crate) wbl_max_time: AtomicI64,
    pub(crate) wal: Option<Wal>,
    pub(crate) chunks: ChunkDiskMapper,
    pub(crate) stats: HeadStats,
    pub(crate) tombstones: RwLock<FastMap<u64, Vec<(i64, i64)>>>,
    /// Read-only switch for a full disk.
    pub(crate) disk: crate::disk_full::DiskFull,
    pub(crate) limit_log: series_limit::SeriesLimitLog,
    truncate_mtx: Mutex<()>,
    closed: AtomicBool,
    /// Buffers of finished appenders, reused by the next ones.
    pub(crate) appender_bufs: Mutex<Vec<appender::AppenderBufs>>,
}

/// The head block. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Head {
    inner: Arc<HeadInner>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("dir", &self.inner.dir)
            .field("series", &self.num_series())
            .finish()
    }
}

impl Head {
    /// Opens the head of the data directory `dir` (`dir/wal`,
    /// `dir/chunks_head`), replaying memory-mapped chunks, the last WAL
    /// checkpoint and the WAL segments. A corrupt WAL tail or chunk file is
    /// repaired (logged, counted), never a reason to fail.
    pub fn open(dir: &Path, opts: HeadOptions) -> Result<Head, HeadError> {
        std::fs::create_dir_all(dir).map_err(|e| HeadError::Io {
            op: "creating",
            path: dir.to_path_buf(),
            source: e,
        })?;
        let mapper =
            ChunkDiskMapper::open_with_size(&dir.join("chunks_head"), opts.head_chunk_file_size)?;
        let mut inner = HeadInner::new(dir, &opts, mapper);
        let started = std::time::Instant::now();
        replay::replay(&mut inner)?;
        inner
            .stats
            .replay_duration_ms
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        if opts.wal_enabled {
            inner.wal = Some(Wal::open(
                &dir.join("wal"),
                WalOptions {
                    segment_size: opts.wal_segment_size,
                    compress: opts.wal_compression,
                },
            )?);
        }
        Ok(Head {
            inner: Arc::new(inner),
        })
    }

    /// Counters and gauges.
    pub fn stats(&self) -> &HeadStats {
        &self.inner.stats
    }

    /// WAL write counters (`None` without a WAL).
    pub fn wal_stats(&self) -> Option<&crate::wal::WalStats> {
        self.inner.wal.as_ref().map(|w| w.stats())
    }

    /// Oldest in-order sample time (`i64::MAX` when empty);
    /// `prometheus_tsdb_head_min_time`.
    pub fn min_time(&self) -> i64 {
        self.inner.min_time.load(Ordering::Acquire)
    }

    /// Newest sample time (`i64::MIN` when empty);
    /// `prometheus_tsdb_head_max_time`.
    pub fn max_time(&self) -> i64 {
        self.inner.max_time.load(Ordering::Acquire)
    }

    /// Time range of out-of-order samples held, if any. Samples older than
    /// `min_time()` live only here until a compaction writes them.
    pub fn ooo_time_range(&self) -> Option<(i64, i64)> {
        let lo = self.inner.ooo_min_time.load(Ordering::Acquire);
        let hi = self.inner.ooo_max_time.load(Ordering::Acquire);
        (lo <= hi).then_some((lo, hi))
    }

    /// Number of series.
    pub fn num_series(&self) -> u64 {
        self.inner.stats.series.load(Ordering::Relaxed)
    }

    /// Samples older than this are refused (set after a block is written).
    pub fn set_min_valid_time(&self, t: i64) {
        self.inner.min_valid_time.fetch_max(t, Ordering::AcqRel);
    }

    /// An appender (the `Appendable` trait returns it boxed).
    pub fn head_appender(&self) -> HeadAppender {
        HeadAppender::new(self.inner.clone())
    }

    /// A querier over `[mint, maxt]` (inclusive).
    pub fn head_querier(&self, mint: i64, maxt: i64) -> HeadQuerier {
        HeadQuerier::new(self.inner.clone(), mint, maxt)
    }

    /// Series with data in `[mint, maxt)`, sorted by labels, each with its
    /// chunks re-cut to the range: for writing a block.
    pub fn compaction_series(&self, mint: i64, maxt: i64) -> CompactionSeriesIter {
        compaction::series_iter(self.inner.clone(), mint, maxt)
    }

    /// Drops data older than `mint` (now in a block), removes series left
    /// empty, deletes head chunk files no longer referenced and checkpoints
    /// the WAL.
    pub fn truncate(&self, mint: i64) -> Result<(), HeadError> {
        let res = compaction::truncate(&self.inner, mint);
        if let Err(e) = &res {
            self.inner
                .stats
                .truncations_failed
                .fetch_add(1, Ordering::Relaxed);
            self.inner.disk.note("truncating the head", e);
        }
        res
    }

    /// The full-disk switch: ingestion is read-only while it is on.
    pub fn disk_full(&self) -> &crate::disk_full::DiskFull {
        &self.inner.disk
    }

    /// `vigil_tsdb_read_only`: whether appends are refused because the
    /// disk is full. While it is, this probes for space (at most once a
    /// second) and resumes ingestion when there is room again.
    pub fn read_only(&self) -> bool {
        !self.inner.disk.refresh()
    }

    /// Deletes samples in `[mint, maxt]` of the series matching `matchers`
    /// (tombstones: logged to the WAL, honoured by queries and compaction),
    /// clamped to the samples each series holds now (see `delete.rs`).
    pub fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<(), StorageError> {
        let refs = querier::postings_for_matchers(&self.inner, matchers)?;
        if refs.is_empty() {
            return Ok(());
        }
        let stones = delete::clamped_stones(&self.inner, &refs, mint, maxt);
        if stones.is_empty() {
            return Ok(());
        }
        if let Some(wal) = &self.inner.wal {
            let mut buf = Vec::new();
            record::encode_tombstones(&stones, &mut buf);
            if let Err(e) = wal.log(&[&buf], &mut WalScratch::default()) {
                self.inner.disk.note("writing WAL", &e);
                return Err(StorageError::Io(e.to_string()));
            }
        }
        let mut ts = write(&self.inner.tombstones);
        for s in stones {
            ts.entry(s.series_ref).or_default().push((s.mint, s.maxt));
        }
        Ok(())
    }

    /// Flushes and fsyncs the WAL's current segment: the hook for
    /// `--storage.tsdb.wal-fsync-interval` (commit itself only guarantees
    /// the data reached the kernel).
    pub fn sync_wal(&self) -> Result<(), HeadError> {
        if let Some(w) = &self.inner.wal {
            w.sync()?;
        }
        Ok(())
    }

    /// Flushes the WAL and head chunks and fsyncs them.
    pub fn close(&self) -> Result<(), HeadError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.chunks.close()?;
        if let Some(w) = &self.inner.wal {
            w.close()?;
        }
        Ok(())
    }

    /// Approximate heap bytes of the index and series (excluding mapped
    /// files), for memory accounting in tests and benches.
    pub fn heap_bytes(&self) -> usize {
        let mut n = 0;
        for s in self.inner.shards.iter() {
            let s = lock(s);
            n += s.series.table_bytes();
            n += s.series.len() * (std::mem::size_of::<MemSeries>() + 8);
            n += s.series.values().map(|x| x.heap_bytes()).sum::<usize>();
        }
        for h in self.inner.hashes.iter() {
            let h = lock(h);
            n += h.refs.capacity() * 17 + h.more.capacity() * 33;
        }
        n + read(&self.inner.postings).heap_bytes() + read(&self.inner.symbols).heap_bytes()
    }
}

impl Appendable for Head {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(self.head_appender())
    }
}

impl Queryable for Head {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(self.head_querier(mint, maxt)))
    }
}

impl HeadInner {
    /// An empty head over `dir` (replay fills it).
    fn new(dir: &Path, opts: &HeadOptions, mapper: ChunkDiskMapper) -> HeadInner {
        HeadInner {
            opts: opts.clone(),
            dir: dir.to_path_buf(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        series: slots::SeriesSlots::default(),
                    })
                })
                .collect(),
            hashes: (0..SHARDS)
                .map(|_| Mutex::new(HashShard::default()))
                .collect(),
            postings: RwLock::new(Postings::default()),
            symbols: RwLock::new(Symbols::default()),
            next_ref: AtomicU64::new(1),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            ooo_min_time: AtomicI64::new(i64::MAX),
            ooo_max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(opts.min_valid_time),
            wbl_max_time: AtomicI64::new(i64::MIN),
            wal: None,
            chunks: mapper,
            stats: HeadStats::default(),
            tombstones: RwLock::new(FastMap::default()),
            disk: crate::disk_full::DiskFull::new(dir),
            limit_log: series_limit::SeriesLimitLog::default(),
            truncate_mtx: Mutex::new(()),
            closed: AtomicBool::new(false),
            appender_bufs: Mutex::new(Vec::new()),
        }
    }

    /// Looks a series up by labels, creating it (and logging its series
    /// record to the WAL before anyone can append to it) if needed.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
        wal_buf: &mut Vec<u8>,
        scratch: &mut WalScratch,
    ) -> Result<u64, StorageError> {
        if labels.is_empty() {
            return Err(StorageError::InvalidLabels("empty labelset".into()));
        }
        let h = labels_hash(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
        let mut hs = lock(&self.hashes[h as usize & (SHARDS - 1)]);
        for r in hs.candidates(h) {
            if self.series_has_labels(r, labels) {
                return Ok(r);
            }
        }
        let limit = self.opts.max_series;
        // With a limit, the slot is taken before the series exists, so
        // appenders racing for the last slots cannot overshoot it.
        let reserved = limit > 0
            && self
                .stats
                .series
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                    (n < limit as u64).then_some(n + 1)
                })
                .is_ok();
        if limit > 0 && !reserved {
            self.stats
                .series_limit_rejections
                .fetch_add(1, Ordering::Relaxed);
            let name = labels.get(vigil_model::METRIC_NAME).unwrap_or_default();
            self.limit_log.refused(limit, name, false);
            return Err(StorageError::SeriesLimit { limit });
        }
        let r = self.next_ref.fetch_add(1, Ordering::AcqRel);
        if let Some(wal) = &self.wal {
            record::begin_series(wal_buf);
            record::put_series_entry(
                wal_buf,
                r,
                labels.len(),
                labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
            );
            if let Err(e) = wal.log_deferred(wal_buf, scratch) {
                if reserved {
                    self.stats.series.fetch_sub(1, Ordering::Relaxed);
                }
                self.disk.note("writing WAL", &e);
                return Err(StorageError::Io(e.to_string()));
            }
        }
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        self.insert_series(&mut hs, h, r, &pairs, reserved);
        Ok(r)
    }

    /// Creates series `r` (the caller holds its hash shard); `counted`: the
    /// series gauge already includes it (a reserved slot).
    fn insert_series(
        &self,
        hs: &mut HashShard,
        h: u64,
        r: u64,
        pairs: &[(&str, &str)],
        counted: bool,
    ) {
        let lset: Box<[Sym]> = {
            let mut syms = write(&self.symbols);
            pairs
                .iter()
                .flat_map(|&(n, v)| [n, v])
                .map(|s| syms.intern(s))
                .collect()
        };
        lock(&self.shards[shard_of(r)])
            .series
            .insert(r, Box::new(MemSeries::new(lset.clone())));
        hs.insert(h, r);
        write(&self.postings).add(r, &lset);
        if !counted {
            self.stats.series.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.series_created.fetch_add(1, Ordering::Relaxed);
    }

    /// Replay: creates series `r` with these labels unless a series with
    /// the same labels exists, whose ref is returned instead.
    pub(crate) fn create_replayed(&self, r: u64, pairs: &[(&str, &str)]) -> u64 {
        let h = labels_hash(pairs.iter().copied());
        let mut hs = lock(&self.hashes[h as usize & (SHARDS - 1)]);
        for c in hs.candidates(h) {
            if self.series_has_pairs(c, pairs) {
                return c;
            }
        }
        self.insert_series(&mut hs, h, r, pairs, false);
        self.next_ref
            .fetch_max(r.saturating_add(1), Ordering::AcqRel);
        r
    }

    fn series_has_labels(&self, r: u64, labels: &Labels) -> bool {
        let shard = lock(&self.shards[shard_of(r)]);
        let Some(s) = shard.series.get(&r) else {
            return false;
        };
        if s.lset.len() != labels.len() * 2 {
            return false;
        }
        let syms = read(&self.symbols);
        s.lset
            .chunks_exact(2)
            .zip(labels.iter())
            .all(|(p, l)| syms.get(p[0]) == l.name && syms.get(p[1]) == l.value)
    }

    fn series_has_pairs(&self, r: u64, pairs: &[(&str, &str)]) -> bool {
        let shard = lock(&self.shards[shard_of(r)]);
        let Some(s) = shard.series.get(&r) else {
            return false;
        };
        if s.lset.len() != pairs.len() * 2 {
            return false;
        }
        let syms = read(&self.symbols);
        s.lset
            .chunks_exact(2)
            .zip(pairs)
            .all(|(p, &(n, v))| syms.get(p[0]) == n && syms.get(p[1]) == v)
    }

    /// Removes dead series from the hash shards, postings and symbols
    /// (they are already gone from their ref shards).
    pub(crate) fn forget_series(&self, mut dead: Vec<(u64, Box<[Sym]>)>) {
        if dead.is_empty() {
            return;
        }
        dead.sort_unstable_by_key(|d| d.0);
        {
            let syms = read(&self.symbols);
            for (r, lset) in &dead {
                let h = labels_hash(
                    lset.chunks_exact(2)
                        .map(|p| (syms.get(p[0]), syms.get(p[1]))),
                );
                lock(&self.hashes[h as usize & (SHARDS - 1)]).remove(h, *r);
            }
        }
        write(&self.postings).delete(&dead);
        {
            let mut syms = write(&self.symbols);
            for (_, lset) in &dead {
                for &s in lset.iter() {
                    syms.release(s);
                }
            }
        }
        write(&self.tombstones).retain(|r, _| dead.binary_search_by_key(r, |d| d.0).is_err());
        self.stats
            .series
            .fetch_sub(dead.len() as u64, Ordering::Relaxed);
        self.stats
            .series_removed
            .fetch_add(dead.len() as u64, Ordering::Relaxed);
    }

    /// Appendable lower bound for a new appender: no sample may land in
    /// the range compaction may be writing.
    pub(crate) fn appendable_min_valid_time(&self) -> i64 {
        let max = self.max_time.load(Ordering::Acquire);
        let cw_end = if max == i64::MIN {
            i64::MIN
        } else {
            max.saturating_sub(self.opts.chunk_range / 2)
        };
        cw_end.max(self.min_valid_time.load(Ordering::Acquire))
    }

    pub(crate) fn update_time_range(&self, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.min_time.fetch_min(mint, Ordering::AcqRel);
            self.max_time.fetch_max(maxt, Ordering::AcqRel);
        }
    }

    pub(crate) fn update_ooo_range(&self, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.ooo_min_time.fetch_min(mint, Ordering::AcqRel);
            self.ooo_max_time.fetch_max(maxt, Ordering::AcqRel);
        }
    }
}

pub(crate) fn labels_from_syms(syms: &Symbols, lset: &[Sym]) -> Labels {
    Labels::from_sorted(
        lset.chunks_exact(2)
            .map(|p| vigil_model::Label::new(syms.get(p[0]), syms.get(p[1])))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
