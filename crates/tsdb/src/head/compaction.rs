//! What the block writer needs from the head: its series for a time range,
//! sorted by labels, with chunks re-cut at the range boundaries
//! (`CompactionSeriesIter`); and, once the block is safe, `truncate`.

use super::index::Sym;
use super::querier::{snapshot, HeadSeries, HeadSeriesIter};
use super::{lock, read, HeadError, HeadInner};
use crate::chunkenc::{EncodedChunk, Encoding, SAMPLES_PER_CHUNK};
use crate::wal;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vigil_model::storage::{SampleIter, StorageError};
use vigil_model::{Labels, Sample};

/// One series for a block: labels and its chunks within the block range,
/// oldest first, none overlapping.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactionSeries {
    pub labels: Labels,
    pub chunks: Vec<EncodedChunk>,
}

/// Series of the head with data in `[mint, maxt)`, sorted by labels.
pub struct CompactionSeriesIter {
    head: Arc<HeadInner>,
    refs: Vec<u64>,
    pos: usize,
    mint: i64,
    maxt: i64,
    buf: VecDeque<HeadSeries>,
}

/// Series snapshotted per step (bounds memory, amortises locking).
const BATCH: usize = 256;

pub(crate) fn series_iter(head: Arc<HeadInner>, mint: i64, maxt: i64) -> CompactionSeriesIter {
    let refs = {
        let _g = lock(&head.truncate_mtx);
        let mut v: Vec<(u64, Box<[Sym]>)> = Vec::new();
        for (i, shard) in head.shards.iter().enumerate() {
            let g = lock(shard);
            for (r, s) in g.series.iter(i) {
                if let Some((lo, hi)) = s.time_range() {
                    if lo < maxt && hi >= mint {
                        v.push((r, s.lset.clone()));
                    }
                }
            }
        }
        // Compare label sets by symbol rank: integer compares, same order
        // as comparing the strings.
        let ranks = read(&head.symbols).ranks();
        let key = |l: &[Sym]| -> Vec<u32> {
            l.iter()
                .map(|&s| ranks.get(s as usize).copied().unwrap_or(0))
                .collect()
        };
        let mut keyed: Vec<(Vec<u32>, u64)> = v.into_iter().map(|(r, l)| (key(&l), r)).collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, r)| r).collect()
    };
    CompactionSeriesIter {
        head,
        refs,
        pos: 0,
        mint,
        maxt,
        buf: VecDeque::new(),
    }
}

impl CompactionSeriesIter {
    /// Number of candidate series (an upper bound on what is yielded).
    pub fn len_hint(&self) -> usize {
        self.refs.len()
    }

    fn fill(&mut self) -> Result<(), StorageError> {
        while self.buf.is_empty() && self.pos < self.refs.len() {
            let end = (self.pos + BATCH).min(self.refs.len());
            let batch = &self.refs[self.pos..end];
            self.pos = end;
            // `snapshot` keeps the given order.
            let snaps = snapshot(&self.head, batch, self.mint, self.maxt - 1)?;
            self.buf.extend(snaps);
        }
        Ok(())
    }
}

impl Iterator for CompactionSeriesIter {
    type Item = Result<CompactionSeries, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Err(e) = self.fill() {
                return Some(Err(e));
            }
            let s = self.buf.pop_front()?;
            match recut(&s, self.mint, self.maxt) {
                Ok(chunks) if chunks.is_empty() => continue,
                Ok(chunks) => {
                    return Some(Ok(CompactionSeries {
                        labels: s.labels,
                        chunks,
                    }))
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Chunks of `s` within `[mint, maxt)`: whole chunks copied, chunks across
/// a boundary re-encoded; with out-of-order samples or deletions, all
/// samples are merged and re-encoded 120 to a chunk.
fn recut(s: &HeadSeries, mint: i64, maxt: i64) -> Result<Vec<EncodedChunk>, StorageError> {
    let mut out = Vec::new();
    if s.ooo.is_empty() && s.stones.is_empty() {
        for c in &s.chunks {
            let (a, b) = c.range();
            let xor = match c {
                super::querier::SeriesChunk::Mapped { chunk, .. } => {
                    chunk.encoding() == Encoding::Xor.as_u8()
                }
                super::querier::SeriesChunk::Owned { .. } => true,
            };
            if xor && a >= mint && b < maxt {
                out.push(EncodedChunk {
                    mint: a,
                    maxt: b,
                    encoding: Encoding::Xor,
                    data: c.bytes().to_vec(),
                });
                continue;
            }
            let bad = |e: crate::chunkenc::ChunkError| StorageError::Corruption {
                location: format!("head chunk of series {}", s.labels),
                reason: e.to_string(),
            };
            let mut it = c.iter().map_err(bad)?;
            let mut samples = Vec::new();
            while let Some(x) = it.next().map_err(bad)? {
                if x.t >= mint && x.t < maxt {
                    samples.push(x);
                }
            }
            out.extend(EncodedChunk::from_samples(&samples));
        }
        return Ok(out);
    }
    let mut all: Vec<Sample> = Vec::new();
    let mut it = HeadSeriesIter::new(s);
    while let Some(x) = it.next()? {
        all.push(x);
    }
    for part in all.chunks(SAMPLES_PER_CHUNK) {
        out.extend(EncodedChunk::from_samples(part));
    }
    Ok(out)
}

pub(crate) fn truncate(head: &HeadInner, mint: i64) -> Result<(), HeadError> {
    let _g = lock(&head.truncate_mtx);
    head.stats.truncations.fetch_add(1, Ordering::Relaxed);
    head.min_valid_time.fetch_max(mint, Ordering::AcqRel);

    // Files at or after this may receive chunks while we scan.
    let chunk_files_floor = head
        .chunks
        .active_seq()
        .or_else(|| head.chunks.file_seqs().last().map(|s| s + 1))
        .unwrap_or(u32::MAX);
    let mut dead: Vec<(u64, Box<[Sym]>)> = Vec::new();
    let mut removed_chunks = 0usize;
    let mut min_seq = chunk_files_floor;
    for (i, shard) in head.shards.iter().enumerate() {
        let mut g = lock(shard);
        g.series.retain(i, |r, s| {
            removed_chunks += s.truncate_before(mint);
            if s.is_empty() && !s.pending {
                dead.push((r, std::mem::take(&mut s.lset)));
                return false;
            }
            if let Some(seq) = s.min_file_seq() {
                min_seq = min_seq.min(seq);
            }
            true
        });
    }
    head.forget_series(dead);
    let st = &head.stats;
    st.chunks_removed
        .fetch_add(removed_chunks as u64, Ordering::Relaxed);
    let _ = st
        .chunks
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            Some(c.saturating_sub(removed_chunks as u64))
        });
    head.min_time.fetch_max(mint, Ordering::AcqRel);
    let lo = head.ooo_min_time.load(Ordering::Acquire);
    if lo < mint {
        head.ooo_min_time.store(mint, Ordering::Release);
    }
    head.chunks.cut_file()?;
    head.chunks.truncate_before(min_seq)?;
    // An inherited Prometheus WBL is dropped once all of it is older than
    // what the head keeps (it is in blocks by now).
    let wbl_max = head.wbl_max_time.load(Ordering::Acquire);
    if wbl_max != i64::MIN && wbl_max < mint {
        let dir = head.dir.join("wbl");
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("removing {}: {e}", dir.display());
        } else {
            head.wbl_max_time.store(i64::MIN, Ordering::Release);
        }
    }

    let Some(w) = &head.wal else {
        return Ok(());
    };
    let segs = wal::list_segments(w.dir())?;
    let Some(first) = segs.first().map(|s| s.index) else {
        return Ok(());
    };
    let current = w.next_segment()?;
    // Keep the newest third of the segments: they hold mostly live data.
    let last = current.saturating_sub(1);
    let last = first + (last.saturating_sub(first)) * 2 / 3;
    if last <= first {
        return Ok(());
    }
    let keep = |r: u64| {
        lock(&head.shards[super::shard_of(r)])
            .series
            .contains_key(&r)
    };
    match wal::checkpoint(w.dir(), first, last, keep, mint, head.opts.wal_compression) {
        Ok(cs) => {
            st.checkpoint_creations.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                from = first,
                to = last,
                series = cs.series_kept,
                samples = cs.samples_kept,
                "WAL checkpoint created"
            );
        }
        Err(e) => {
            st.checkpoint_creations_failed
                .fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
    }
    if let Err(e) = w.truncate(last + 1) {
        st.wal_truncations_failed.fetch_add(1, Ordering::Relaxed);
        return Err(e.into());
    }
    st.wal_truncations.fetch_add(1, Ordering::Relaxed);
    let before = wal::list_checkpoints(w.dir())?.len();
    wal::delete_checkpoints(w.dir(), last)?;
    let after = wal::list_checkpoints(w.dir())?.len();
    st.checkpoint_deletions
        .fetch_add(before.saturating_sub(after) as u64, Ordering::Relaxed);
    Ok(())
}
