//! Backfill: turning a stream of samples, in any order, into blocks cut by
//! block duration (what `create-blocks-from openmetrics` needs).
//!
//! Samples are XOR-encoded as they arrive, per series and per aligned time
//! window, so memory holds compressed chunks (about 1.5 bytes a sample), not
//! raw samples. Chunks are cut as Prometheus's head cuts them (promtool
//! backfills through a head), so both produce the same chunks. Samples
//! arriving out of order within their window go to a small side buffer
//! that is merged when the window is written. Windows are written as
//! level-1 blocks in time order by `flush` (or early by `flush_before` when
//! the input is known to be time-sorted).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use vigil_model::storage::StorageError;
use vigil_model::{Labels, Sample};

use super::BlockBuilder;
use crate::chunkenc::{ChunkIter, XorChunk, SAMPLES_PER_CHUNK};
use crate::chunks::ENCODING_XOR;
use crate::head::{compute_chunk_end_time, range_for_timestamp};
use crate::meta::{BlockMeta, BlockMetaCompaction, Ulid};

/// Two hours in milliseconds: Prometheus's default (and minimum) block span.
pub const DEFAULT_BLOCK_DURATION: i64 = 2 * 60 * 60 * 1000;

/// Identifies a series within one `BlockWriter`.
pub type BackfillSeriesId = u32;

/// One block written by a backfill.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenBlock {
    pub meta: BlockMeta,
    pub dir: PathBuf,
    /// Bytes on disk.
    pub size: u64,
}

/// Counters of a backfill run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillStats {
    /// Samples accepted.
    pub samples: u64,
    /// Samples dropped because their series already had one at that
    /// timestamp (the first one wins, as in Prometheus's head).
    pub duplicates: u64,
    /// Samples that arrived out of order and were buffered unencoded.
    pub out_of_order: u64,
}

/// The block span promtool uses for a `--max-block-duration`: the largest of
/// 2h, 6h, 18h, ... (x3 steps, at most 10) that does not exceed it; 2h when
/// the request is smaller.
pub fn compatible_block_duration(max_block_duration: i64) -> i64 {
    let mut d = DEFAULT_BLOCK_DURATION;
    if max_block_duration > DEFAULT_BLOCK_DURATION {
        let mut r = DEFAULT_BLOCK_DURATION;
        for _ in 0..10 {
            if r > max_block_duration {
                break;
            }
            d = r;
            r = r.saturating_mul(3);
        }
    }
    d
}

/// A window's final chunks: time ranges, concatenated bytes, byte lengths,
/// and the number of duplicate samples dropped.
type FinishedWindow = (Vec<(i64, i64)>, Vec<u8>, Vec<u32>, u64);

/// Samples of one series inside one window.
struct Window {
    index: i64,
    /// The head's chunk range: promtool's block writer uses twice the
    /// block duration (so appends may span a whole block).
    chunk_range: i64,
    /// When the open chunk will be cut (the head's `nextAt`).
    next_at: i64,
    /// Concatenated bytes of the finished chunks.
    arena: Vec<u8>,
    /// (mint, maxt, byte length) of each finished chunk in `arena`.
    metas: Vec<(i64, i64, u32)>,
    cur: Option<XorChunk>,
    cur_mint: i64,
    last_t: i64,
    spill: Vec<Sample>,
    min_t: i64,
    max_t: i64,
}

impl Window {
    fn new(index: i64, duration: i64) -> Self {
        Window {
            index,
            chunk_range: duration.saturating_mul(2),
            next_at: i64::MAX,
            arena: Vec::new(),
            metas: Vec::new(),
            cur: None,
            cur_mint: 0,
            last_t: i64::MIN,
            spill: Vec::new(),
            min_t: i64::MAX,
            max_t: i64::MIN,
        }
    }

    fn seal(&mut self) {
        if let Some(c) = self.cur.take() {
            let b = c.bytes();
            self.arena.extend_from_slice(b);
            self.metas
                .push((self.cur_mint, self.last_t, b.len() as u32));
        }
    }

    #[inline]
    fn add(&mut self, t: i64, v: f64, stats: &mut BackfillStats) {
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        if t <= self.last_t {
            stats.out_of_order += 1;
            self.spill.push(Sample::new(t, v));
            return;
        }
        // The head's rule: once a chunk holds a quarter of 120 samples,
        // aim for equal chunks up to the range end; cut at that time, or
        // at 240 samples if the rate went up.
        let n = self.cur.as_ref().map_or(0, |c| c.num_samples());
        if n == SAMPLES_PER_CHUNK / 4 {
            self.next_at = compute_chunk_end_time(self.cur_mint, self.last_t, self.next_at);
        }
        if n > 0 && (t >= self.next_at || n >= SAMPLES_PER_CHUNK * 2) {
            self.seal();
        }
        let c = self.cur.get_or_insert_with(XorChunk::new);
        if c.num_samples() == 0 {
            self.cur_mint = t;
            self.next_at = range_for_timestamp(t, self.chunk_range);
        }
        // A chunk never reaches 65535 samples here: it is sealed at 240.
        if c.append(t, v).is_err() {
            self.spill.push(Sample::new(t, v));
            return;
        }
        self.last_t = t;
    }

    /// Final chunks as (mint, maxt, bytes), merging the out-of-order buffer
    /// and dropping duplicate timestamps. Returns the duplicates dropped.
    fn finish(mut self) -> Result<FinishedWindow, StorageError> {
        self.seal();
        if self.spill.is_empty() {
            let (ranges, lens) = self.metas.iter().map(|&(a, b, l)| ((a, b), l)).unzip();
            return Ok((ranges, self.arena, lens, 0));
        }
        // Decode, merge, re-encode: only windows that saw disorder pay this.
        let mut all: Vec<Sample> = Vec::new();
        let mut off = 0usize;
        for &(_, _, len) in &self.metas {
            let data = &self.arena[off..off + len as usize];
            off += len as usize;
            let mut it = ChunkIter::from_raw(ENCODING_XOR, data)
                .map_err(|e| StorageError::Io(format!("backfill re-decode: {e}")))?;
            while let Some(s) = it
                .next()
                .map_err(|e| StorageError::Io(format!("backfill re-decode: {e}")))?
            {
                all.push(s);
            }
        }
        all.append(&mut self.spill);
        // Stable: among equal timestamps the first added stays first.
        all.sort_by_key(|s| s.t);
        let before = all.len();
        all.dedup_by_key(|s| s.t);
        let dups = (before - all.len()) as u64;
        let mut w = Window::new(self.index, self.chunk_range / 2);
        let mut ignore = BackfillStats::default();
        for s in all {
            w.add(s.t, s.v, &mut ignore);
        }
        w.seal();
        let (ranges, lens) = w.metas.iter().map(|&(a, b, l)| ((a, b), l)).unzip();
        Ok((ranges, w.arena, lens, dups))
    }
}

struct SeriesState {
    labels: Labels,
    /// Windows with data, usually appended in increasing order.
    windows: Vec<Window>,
}

/// Streaming block writer for backfills.
///
/// ```no_run
/// # use vigil_tsdb::block::BlockWriter;
/// # use vigil_model::Labels;
/// let mut w = BlockWriter::new("/data".as_ref(), 2 * 3600 * 1000);
/// let id = w.series_id(&Labels::from_pairs(&[("__name__", "up")])).unwrap();
/// w.add(id, 1_700_000_000_000, 1.0).unwrap();
/// let blocks = w.flush().unwrap();
/// ```
pub struct BlockWriter {
    out_dir: PathBuf,
    block_duration: i64,
    ids: HashMap<Labels, BackfillSeriesId>,
    series: Vec<SeriesState>,
    stats: BackfillStats,
    written: Vec<WrittenBlock>,
    /// Windows below this index were already written.
    flushed_below: i64,
}

impl BlockWriter {
    /// A writer producing blocks in `out_dir`, each covering one aligned
    /// `block_duration` window (use `compatible_block_duration` to mirror
    /// promtool's `--max-block-duration`).
    pub fn new(out_dir: &Path, block_duration: i64) -> Self {
        BlockWriter {
            out_dir: out_dir.to_path_buf(),
            block_duration: block_duration.max(1),
            ids: HashMap::new(),
            series: Vec::new(),
            stats: BackfillStats::default(),
            written: Vec::new(),
            flushed_below: i64::MIN,
        }
    }

    /// The ID for a label set, creating the series on first use. Label sets
    /// must be non-empty.
    pub fn series_id(&mut self, labels: &Labels) -> Result<BackfillSeriesId, StorageError> {
        if let Some(&id) = self.ids.get(labels) {
            return Ok(id);
        }
        if labels.is_empty() {
            return Err(StorageError::InvalidLabels("empty label set".into()));
        }
        let id = u32::try_from(self.series.len())
            .map_err(|_| StorageError::InvalidLabels("more than 2^32 series".into()))?;
        self.series.push(SeriesState {
            labels: labels.clone(),
            windows: Vec::new(),
        });
        self.ids.insert(labels.clone(), id);
        Ok(id)
    }

    /// Adds a sample to a series returned by `series_id`.
    #[inline]
    pub fn add(&mut self, id: BackfillSeriesId, t: i64, v: f64) -> Result<(), StorageError> {
        let window = t.div_euclid(self.block_duration);
        if window < self.flushed_below {
            return Err(StorageError::OutOfBounds);
        }
        let Some(s) = self.series.get_mut(id as usize) else {
            return Err(StorageError::InvalidLabels(format!(
                "unknown backfill series id {id}"
            )));
        };
        let w = match s.windows.last() {
            Some(last) if last.index == window => s.windows.len() - 1,
            _ => match s.windows.binary_search_by_key(&window, |w| w.index) {
                Ok(i) => i,
                Err(i) => {
                    s.windows
                        .insert(i, Window::new(window, self.block_duration));
                    i
                }
            },
        };
        s.windows[w].add(t, v, &mut self.stats);
        self.stats.samples += 1;
        Ok(())
    }

    /// `series_id` then `add`.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError> {
        let id = self.series_id(labels)?;
        self.add(id, t, v)
    }

    pub fn stats(&self) -> &BackfillStats {
        &self.stats
    }

    /// Writes every window that ends at or before `t` (all their samples
    /// must have been added: later samples there are rejected as out of
    /// bounds). Lets a time-sorted input keep only a few windows in memory.
    pub fn flush_before(&mut self, t: i64) -> Result<(), StorageError> {
        let limit = t.div_euclid(self.block_duration);
        self.write_windows(limit)?;
        self.flushed_below = self.flushed_below.max(limit);
        Ok(())
    }

    /// Writes all remaining windows and returns every block written, in
    /// time order.
    pub fn flush(mut self) -> Result<Vec<WrittenBlock>, StorageError> {
        self.write_windows(i64::MAX)?;
        let mut out = std::mem::take(&mut self.written);
        out.sort_by_key(|b| b.meta.min_time);
        Ok(out)
    }

    fn write_windows(&mut self, below: i64) -> Result<(), StorageError> {
        std::fs::create_dir_all(&self.out_dir)
            .map_err(|e| crate::binfmt::io_error("create dir", &self.out_dir, e))?;
        let mut indexes: BTreeSet<i64> = BTreeSet::new();
        for s in &self.series {
            for w in &s.windows {
                if w.index < below {
                    indexes.insert(w.index);
                }
            }
        }
        if indexes.is_empty() {
            return Ok(());
        }
        let mut order: Vec<u32> = (0..self.series.len() as u32).collect();
        order.sort_by(|a, b| {
            self.series[*a as usize]
                .labels
                .cmp(&self.series[*b as usize].labels)
        });
        for index in indexes {
            self.write_window(index, &order)?;
        }
        Ok(())
    }

    fn write_window(&mut self, index: i64, order: &[u32]) -> Result<(), StorageError> {
        // Take this window out of every series that has it.
        let mut parts: Vec<(u32, Window)> = Vec::new();
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        for &id in order {
            let s = &mut self.series[id as usize];
            if let Ok(i) = s.windows.binary_search_by_key(&index, |w| w.index) {
                let w = s.windows.remove(i);
                mint = mint.min(w.min_t);
                maxt = maxt.max(w.max_t);
                parts.push((id, w));
            }
        }
        if parts.is_empty() {
            return Ok(());
        }
        let mut symbols: BTreeSet<&str> = BTreeSet::new();
        for (id, _) in &parts {
            for l in &self.series[*id as usize].labels {
                symbols.insert(&l.name);
                symbols.insert(&l.value);
            }
        }
        let ulid = Ulid::new();
        let mut b =
            BlockBuilder::create(&self.out_dir, ulid, mint, maxt.saturating_add(1), &symbols)?;
        for (id, w) in parts {
            let (ranges, arena, lens, dups) = w.finish()?;
            self.stats.duplicates += dups;
            self.stats.samples -= dups;
            let mut off = 0usize;
            let chunks = ranges.iter().zip(&lens).map(|(&(a, z), &len)| {
                let data = &arena[off..off + len as usize];
                off += len as usize;
                (a, z, ENCODING_XOR, data)
            });
            b.add_series_raw(&self.series[id as usize].labels, chunks)?;
        }
        let meta = b.finish(BlockMetaCompaction {
            level: 1,
            sources: vec![ulid],
            ..Default::default()
        })?;
        let dir = self.out_dir.join(ulid.to_string());
        let size = dir_size(&dir);
        self.written.push(WrittenBlock { meta, dir, size });
        Ok(())
    }
}

/// Total size of the regular files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
