//! The database: one data directory holding the head (WAL, `chunks_head/`)
//! and the persistent blocks, served as one `Queryable`/`Appendable`.
//!
//! Owns the `lock` file, block loading (parents of compacted blocks and
//! temporary dirs are removed, unreadable blocks quarantined), head
//! compaction into blocks, block compaction, retention by time and size, and
//! deletion through tombstones. Retention never depends on compaction
//! succeeding: it only renames and removes directories.

pub mod merge;
mod options;
mod read_only;
mod snapshot;

pub use options::{DbOptions, DEFAULT_RETENTION};
pub use read_only::ReadOnlyDb;
pub use snapshot::SnapshotStats;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use vigil_model::storage::{Appendable, Appender, Querier, Queryable, StorageError};
use vigil_model::Matcher;

use crate::binfmt::io_error;
use crate::block::{dir_size, list_block_dirs, Block, TMP_CREATION_SUFFIX};
use crate::compact::{
    block_ranges, compact_blocks, write_block_from_series, Planner, SeriesChunks,
};
use crate::head::{Head, HeadOptions};
use crate::meta::{sync_dir, write_meta, Ulid};

/// Name of the lock file, as Prometheus names it.
pub const LOCK_FILENAME: &str = "lock";
/// Where blocks that fail validation are moved (never deleted).
pub const QUARANTINE_DIR: &str = "quarantine";
/// Suffix a block dir gets while it is being deleted.
pub const TMP_DELETION_SUFFIX: &str = ".tmp-for-deletion";

/// Counters and gauges of the block side; the web layer exports them under
/// the Prometheus names given on each field.
#[derive(Debug, Default)]
pub struct DbStats {
    /// `prometheus_tsdb_compactions_total`.
    pub compactions: AtomicU64,
    /// `prometheus_tsdb_compactions_failed_total`.
    pub compactions_failed: AtomicU64,
    /// `prometheus_tsdb_compactions_triggered_total`.
    pub compactions_triggered: AtomicU64,
    /// `prometheus_tsdb_vertical_compactions_total`.
    pub vertical_compactions: AtomicU64,
    /// `prometheus_tsdb_reloads_total`.
    pub reloads: AtomicU64,
    /// `prometheus_tsdb_reloads_failures_total`.
    pub reloads_failed: AtomicU64,
    /// `prometheus_tsdb_time_retentions_total`.
    pub time_retentions: AtomicU64,
    /// `prometheus_tsdb_size_retentions_total`.
    pub size_retentions: AtomicU64,
    /// `vigil_tsdb_quarantined_blocks` (gauge: blocks in `quarantine/`).
    pub quarantined_blocks: AtomicU64,
    /// `prometheus_tsdb_blocks_loaded` (gauge).
    pub blocks_loaded: AtomicU64,
}

/// Exclusive `flock` on `<dir>/lock`, released when dropped.
struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock, StorageError> {
        use std::os::fd::AsRawFd;
        let path = dir.join(LOCK_FILENAME);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(StorageError::Io(format!(
                "lock DB directory: {}: {e} (is another Vigil or Prometheus using it?)",
                path.display()
            )));
        }
        Ok(DirLock { _file: file })
    }
}

struct DbInner {
    dir: PathBuf,
    opts: DbOptions,
    head: Head,
    blocks: RwLock<Arc<Vec<Block>>>,
    planner: Planner,
    stats: DbStats,
    /// Serialises compactions, reloads and deletions.
    cmtx: Mutex<()>,
    stop: Mutex<bool>,
    stop_cv: Condvar,
    closed: AtomicBool,
    _lock: Option<DirLock>,
}

/// An open data directory. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

fn is_tmp_dir(name: &str) -> bool {
    name.ends_with(TMP_CREATION_SUFFIX)
        || name.ends_with(TMP_DELETION_SUFFIX)
        || name.ends_with(".tmp")
}

/// Removes leftovers of interrupted block writes and deletions.
fn remove_tmp_dirs(dir: &Path) -> Result<(), StorageError> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_error("read dir", dir, e))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if is_tmp_dir(&name) && e.path().is_dir() {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => tracing::info!(dir = %e.path().display(), "removed temporary directory"),
                Err(err) => {
                    tracing::warn!(dir = %e.path().display(), error = %err, "could not remove temporary directory")
                }
            }
        }
    }
    Ok(())
}

/// Deletes a block directory: rename first, so a crash leaves a temp dir
/// that the next start removes instead of a half-deleted block.
fn delete_block_dir(dir: &Path) -> Result<(), StorageError> {
    let Some(name) = dir.file_name() else {
        return Ok(());
    };
    let tmp = dir.with_file_name(format!("{}{TMP_DELETION_SUFFIX}", name.to_string_lossy()));
    std::fs::rename(dir, &tmp).map_err(|e| io_error("rename", dir, e))?;
    std::fs::remove_dir_all(&tmp).map_err(|e| io_error("remove", &tmp, e))?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the data directory `dir`: takes the lock,
    /// removes temporary dirs, loads blocks (quarantining unreadable ones,
    /// deleting compacted parents and blocks beyond retention) and opens the
    /// head, replaying its WAL.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create dir", dir, e))?;
        let lock = if opts.no_lockfile {
            None
        } else {
            Some(DirLock::acquire(dir)?)
        };
        remove_tmp_dirs(dir)?;
        // Blocks first: the head must not replay samples a block already holds.
        let mut loaded = load_blocks(dir, &[], &DbStats::default())?;
        loaded.sort_by_key(|b| (b.meta().min_time, b.meta().ulid));
        let min_valid = loaded.last().map_or(i64::MIN, |b| b.meta().max_time);
        let head_opts = HeadOptions {
            chunk_range: opts.min_block_duration,
            min_valid_time: min_valid.max(opts.head.min_valid_time),
            ..opts.head.clone()
        };
        let head = Head::open(dir, head_opts)?;
        let planner = Planner::new(block_ranges(
            opts.min_block_duration,
            opts.max_block_duration,
        ));
        let db = Db {
            inner: Arc::new(DbInner {
                dir: dir.to_path_buf(),
                opts,
                head,
                blocks: RwLock::new(Arc::new(loaded)),
                planner,
                stats: DbStats::default(),
                cmtx: Mutex::new(()),
                stop: Mutex::new(false),
                stop_cv: Condvar::new(),
                closed: AtomicBool::new(false),
                _lock: lock,
            }),
        };
        {
            let _g = db.lock_cmtx();
            db.reload_locked()?;
        }
        Ok(db)
    }

    fn lock_cmtx(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner.cmtx.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &DbOptions {
        &self.inner.opts
    }

    pub fn head(&self) -> &Head {
        &self.inner.head
    }

    pub fn stats(&self) -> &DbStats {
        &self.inner.stats
    }

    /// The loaded blocks, ordered by min time.
    pub fn blocks(&self) -> Arc<Vec<Block>> {
        self.inner
            .blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes of blocks, WAL and head chunks (what size retention bounds).
    pub fn size(&self) -> u64 {
        self.blocks().iter().map(Block::size).sum::<u64>() + self.head_size()
    }

    fn head_size(&self) -> u64 {
        dir_size(&self.inner.dir.join("wal")) + dir_size(&self.inner.dir.join("chunks_head"))
    }

    /// Oldest timestamp held (blocks or head), `None` when empty.
    pub fn min_time(&self) -> Option<i64> {
        let b = self.blocks().first().map(|b| b.meta().min_time);
        let h = self.inner.head.min_time();
        match (b, h) {
            (Some(b), h) if h != i64::MAX => Some(b.min(h)),
            (Some(b), _) => Some(b),
            (None, h) if h != i64::MAX => Some(h),
            _ => None,
        }
    }

    /// Re-reads the block directories and applies retention.
    pub fn reload(&self) -> Result<(), StorageError> {
        let _g = self.lock_cmtx();
        self.reload_locked()
    }

    fn reload_locked(&self) -> Result<(), StorageError> {
        let st = &self.inner.stats;
        st.reloads.fetch_add(1, Ordering::Relaxed);
        let current = self.blocks();
        let mut loaded = match load_blocks(&self.inner.dir, &current, st) {
            Ok(b) => b,
            Err(e) => {
                st.reloads_failed.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };

        // Deletable: marked so, parents of a loaded block, beyond retention.
        let mut deletable: HashSet<Ulid> = HashSet::new();
        for b in &loaded {
            let m = b.meta();
            if m.compaction.deletable {
                deletable.insert(m.ulid);
            }
            for p in &m.compaction.parents {
                deletable.insert(p.ulid);
            }
        }
        loaded.retain(|b| !deletable.contains(&b.meta().ulid));
        // Newest first for retention.
        loaded.sort_by_key(|b| std::cmp::Reverse((b.meta().min_time, b.meta().ulid)));
        let by_time = self.beyond_time_retention(&loaded);
        if !by_time.is_empty() {
            st.time_retentions.fetch_add(1, Ordering::Relaxed);
        }
        let by_size = self.beyond_size_retention(&loaded);
        if !by_size.is_empty() {
            st.size_retentions.fetch_add(1, Ordering::Relaxed);
        }
        deletable.extend(by_time);
        deletable.extend(by_size);
        loaded.retain(|b| !deletable.contains(&b.meta().ulid));
        loaded.sort_by_key(|b| (b.meta().min_time, b.meta().ulid));
        st.blocks_loaded
            .store(loaded.len() as u64, Ordering::Relaxed);

        // Swap in the new set, then remove directories (queriers holding the
        // old set keep their maps).
        *self.inner.blocks.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        let mut first_err = None;
        for (u, p) in list_block_dirs(&self.inner.dir)? {
            if deletable.contains(&u) {
                tracing::info!(block = %u, "deleting block");
                if let Err(e) = delete_block_dir(&p) {
                    tracing::warn!(block = %u, error = %e, "could not delete block");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => {
                st.reloads_failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            None => Ok(()),
        }
    }

    fn beyond_time_retention(&self, newest_first: &[Block]) -> Vec<Ulid> {
        let ret = self.inner.opts.retention_time;
        if ret <= 0 || newest_first.is_empty() {
            return Vec::new();
        }
        let top = newest_first[0].meta().max_time;
        for (i, b) in newest_first.iter().enumerate() {
            if i > 0 && top - b.meta().max_time > ret {
                return newest_first[i..].iter().map(|b| b.meta().ulid).collect();
            }
        }
        Vec::new()
    }

    fn beyond_size_retention(&self, newest_first: &[Block]) -> Vec<Ulid> {
        let max = self.inner.opts.retention_size;
        if max == 0 || newest_first.is_empty() {
            return Vec::new();
        }
        let mut total = self.head_size();
        for (i, b) in newest_first.iter().enumerate() {
            total += b.size();
            if total > max {
                return newest_first[i..].iter().map(|b| b.meta().ulid).collect();
            }
        }
        Vec::new()
    }

    /// One compaction cycle: persist the head while it spans more than 1.5
    /// block ranges, then merge blocks as the planner says, then reload
    /// (which applies retention even when a compaction step failed).
    pub fn compact(&self) -> Result<(), StorageError> {
        let _g = self.lock_cmtx();
        self.inner
            .stats
            .compactions_triggered
            .fetch_add(1, Ordering::Relaxed);
        let head_res = self.compact_head_locked();
        let blocks_res = if head_res.is_ok() {
            self.compact_blocks_locked()
        } else {
            Ok(())
        };
        // Retention runs whatever happened above: it is what frees space.
        let reload_res = self.reload_locked();
        let res = head_res.and(blocks_res).and(reload_res);
        if let Err(e) = &res {
            self.inner.head.disk_full().note("compaction", e);
        }
        res
    }

    fn head_compactable(&self) -> bool {
        let h = &self.inner.head;
        let (lo, hi) = (h.min_time(), h.max_time());
        if lo == i64::MAX || hi == i64::MIN {
            return false;
        }
        let lo = h.ooo_time_range().map_or(lo, |(a, _)| a.min(lo));
        hi.saturating_sub(lo) > self.inner.opts.min_block_duration / 2 * 3
    }

    fn compact_head_locked(&self) -> Result<(), StorageError> {
        let range = self.inner.opts.min_block_duration;
        while self.head_compactable() {
            let h = &self.inner.head;
            let lo = h
                .ooo_time_range()
                .map_or(h.min_time(), |(a, _)| a.min(h.min_time()));
            let maxt = lo.div_euclid(range) * range + range;
            if let Err(e) = self.write_head_block(lo, maxt) {
                self.inner
                    .stats
                    .compactions_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, mint = lo, maxt, "head compaction failed");
                return Err(e);
            }
            self.inner.stats.compactions.fetch_add(1, Ordering::Relaxed);
            // The block must be visible before the head lets go of the data.
            self.reload_locked()?;
            h.truncate(maxt)?;
        }
        Ok(())
    }

    /// Writes the head's `[mint, maxt)` as a level-1 block.
    fn write_head_block(&self, mint: i64, maxt: i64) -> Result<(), StorageError> {
        let h = &self.inner.head;
        // The head's label strings over all time: a superset of the block's.
        let q = h.head_querier(i64::MIN, i64::MAX);
        let mut symbols: Vec<String> = Vec::new();
        for n in q.label_names(&[])? {
            symbols.extend(q.label_values(&n, &[])?);
            symbols.push(n);
        }
        symbols.sort_unstable();
        symbols.dedup();
        let series = h
            .compaction_series(mint, maxt)
            .map(|r| r.map(|s| -> SeriesChunks { (s.labels, s.chunks) }));
        let meta = write_block_from_series(&self.inner.dir, mint, maxt, &symbols, series)?;
        match meta {
            Some(m) => {
                tracing::info!(block = %m.ulid, mint, maxt, samples = m.stats.num_samples, "wrote block from head")
            }
            None => tracing::info!(mint, maxt, "head range had no samples; no block written"),
        }
        Ok(())
    }

    fn compact_blocks_locked(&self) -> Result<(), StorageError> {
        loop {
            let blocks = self.blocks();
            let metas: Vec<_> = blocks.iter().map(Block::meta).collect();
            let plan = self.inner.planner.plan(&metas);
            if plan.is_empty() {
                return Ok(());
            }
            let sources: Vec<Block> = plan
                .iter()
                .filter_map(|u| blocks.iter().find(|b| b.meta().ulid == *u).cloned())
                .collect();
            let overlapping = {
                let mut ms: Vec<_> = sources.iter().map(Block::meta).collect();
                ms.sort_by_key(|m| m.min_time);
                ms.windows(2).any(|w| w[1].min_time < w[0].max_time)
            };
            match compact_blocks(&self.inner.dir, &sources) {
                Ok(Some(m)) => {
                    tracing::info!(block = %m.ulid, sources = sources.len(), level = m.compaction.level, "compacted blocks");
                    self.inner.stats.compactions.fetch_add(1, Ordering::Relaxed);
                    if overlapping {
                        self.inner
                            .stats
                            .vertical_compactions
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(None) => {
                    // Nothing left in them: mark deletable.
                    for b in &sources {
                        let mut m = b.meta();
                        m.compaction.deletable = true;
                        write_meta(b.dir(), &m)?;
                    }
                }
                Err(e) => {
                    self.inner
                        .stats
                        .compactions_failed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "block compaction failed");
                    // A full disk is no fault of the blocks: retry them
                    // when there is room again.
                    if crate::disk_full::is_disk_full_text(&e.to_string()) {
                        return Err(e);
                    }
                    // Planners skip failed blocks, so one bad block cannot
                    // make compaction loop forever.
                    for b in &sources {
                        if let Err(me) = b.set_compaction_failed() {
                            tracing::warn!(block = %b.meta().ulid, error = %me, "could not mark block failed");
                        }
                    }
                    return Err(e);
                }
            }
            self.reload_locked()?;
        }
    }

    /// Marks samples in `[mint, maxt]` of series matching `matchers` deleted
    /// (tombstones in blocks and head; compaction removes them for good).
    pub fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<(), StorageError> {
        let _g = self.lock_cmtx();
        for b in self.blocks().iter() {
            if b.meta().overlaps_closed(mint, maxt) {
                b.delete(mint, maxt, matchers)?;
            }
        }
        self.inner.head.delete(mint, maxt, matchers)
    }

    /// Rewrites every block that has tombstones without the deleted data.
    pub fn clean_tombstones(&self) -> Result<(), StorageError> {
        let _g = self.lock_cmtx();
        for b in self.blocks().iter() {
            if b.tombstones().is_empty() {
                continue;
            }
            match compact_blocks(&self.inner.dir, std::slice::from_ref(b))? {
                Some(m) => {
                    tracing::info!(old = %b.meta().ulid, new = %m.ulid, "rewrote block without tombstones")
                }
                None => {
                    let mut m = b.meta();
                    m.compaction.deletable = true;
                    write_meta(b.dir(), &m)?;
                }
            }
        }
        self.reload_locked()
    }

    /// Runs `compact` every `opts.compaction_interval` on a background
    /// thread until `close`.
    pub fn start_background_compaction(&self) -> std::thread::JoinHandle<()> {
        let db = self.clone();
        std::thread::Builder::new()
            .name("tsdb-compaction".into())
            .spawn(move || loop {
                {
                    let stop = db.inner.stop.lock().unwrap_or_else(|e| e.into_inner());
                    let (stop, _) = db
                        .inner
                        .stop_cv
                        .wait_timeout(stop, db.inner.opts.compaction_interval)
                        .unwrap_or_else(|e| e.into_inner());
                    if *stop {
                        return;
                    }
                }
                if let Err(e) = db.compact() {
                    tracing::warn!(error = %e, "compaction cycle failed");
                }
            })
            .unwrap_or_else(|_| std::thread::spawn(|| {}))
    }

    /// Stops background work and closes the head (flushing and fsyncing the
    /// WAL). The lock is released when the last handle is dropped.
    pub fn close(&self) -> Result<(), StorageError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        *self.inner.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.inner.stop_cv.notify_all();
        let _g = self.lock_cmtx();
        self.inner.head.close().map_err(StorageError::from)
    }
}

/// Opens every block dir under `dir`, reusing already-open blocks and
/// quarantining those that fail validation (unless a loaded block lists
/// them as a parent: then they are deleted as Prometheus does).
fn load_blocks(dir: &Path, current: &[Block], st: &DbStats) -> Result<Vec<Block>, StorageError> {
    let open: HashMap<Ulid, &Block> = current.iter().map(|b| (b.meta().ulid, b)).collect();
    let mut loaded = Vec::new();
    let mut failed: Vec<(Ulid, PathBuf, StorageError)> = Vec::new();
    for (u, p) in list_block_dirs(dir)? {
        if let Some(b) = open.get(&u) {
            loaded.push((*b).clone());
            continue;
        }
        match Block::open(&p) {
            Ok(b) => loaded.push(b),
            Err(e) => failed.push((u, p, e)),
        }
    }
    let parents: HashSet<Ulid> = loaded
        .iter()
        .flat_map(|b| b.meta().compaction.parents.into_iter().map(|p| p.ulid))
        .collect();
    for (u, p, e) in failed {
        if parents.contains(&u) {
            tracing::info!(block = %u, "removing unreadable block already compacted into another");
            delete_block_dir(&p)?;
            continue;
        }
        match e {
            StorageError::Corruption { .. } => quarantine(dir, u, &p, &e)?,
            // I/O trouble (permissions, descriptors) may pass: skip the block
            // this time and retry on the next reload.
            other => {
                tracing::error!(block = %u, error = %other, "could not open block; skipping it")
            }
        }
    }
    st.quarantined_blocks
        .store(count_quarantined(dir), Ordering::Relaxed);
    Ok(loaded)
}

fn quarantine(dir: &Path, u: Ulid, p: &Path, reason: &StorageError) -> Result<(), StorageError> {
    let qdir = dir.join(QUARANTINE_DIR);
    std::fs::create_dir_all(&qdir).map_err(|e| io_error("create dir", &qdir, e))?;
    let mut dst = qdir.join(u.to_string());
    if dst.exists() {
        dst = qdir.join(format!("{u}.{}", Ulid::new()));
    }
    std::fs::rename(p, &dst).map_err(|e| io_error("rename", p, e))?;
    sync_dir(dir)?;
    tracing::error!(block = %u, reason = %reason, moved_to = %dst.display(), "quarantined corrupt block");
    Ok(())
}

fn count_quarantined(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join(QUARANTINE_DIR))
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).count() as u64)
        .unwrap_or(0)
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(read_only::blocks_and_head_querier(
            &self.blocks(),
            &self.inner.head,
            mint,
            maxt,
        ))
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(self.inner.head.head_appender())
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            if let Err(e) = self.head.close() {
                tracing::warn!(error = %e, "closing head on drop");
            }
        }
    }
}
