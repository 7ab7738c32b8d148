//! Compaction: which blocks to merge (Prometheus's leveled planner) and the
//! merge itself.
//!
//! Planning looks only at metas: overlapping blocks first (vertical
//! compaction, so backfilled blocks can be dropped into a data dir), then
//! adjacent blocks filling the next range of the x3 ladder, then blocks
//! carrying many tombstones. Merging streams series in label order from the
//! sources' indexes, copies chunks byte for byte when nothing overlaps and
//! nothing is deleted, and re-encodes only the series that need it. The
//! output is a new block; sources are deleted by the DB on reload, never
//! here.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;

use vigil_model::storage::StorageError;
use vigil_model::{Label, Labels, Sample};

use crate::block::{Block, BlockBuilder};
use crate::chunkenc::{ChunkIter, EncodedChunk, SAMPLES_PER_CHUNK};
use crate::chunks::ChunkMeta;
use crate::meta::{BlockMeta, BlockMetaCompaction, Ulid};
use crate::tombstones::{is_deleted, Interval};

/// `min`, `min*step`, `min*step^2`, ... (`count` ranges), as Prometheus's
/// `ExponentialBlockRanges`.
pub fn exponential_block_ranges(min: i64, count: usize, step: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(count);
    let mut r = min;
    for _ in 0..count {
        out.push(r);
        r = r.saturating_mul(step);
    }
    out
}

/// The compaction ladder for a DB: 2h, 6h, 18h, ... capped at `max`.
pub fn block_ranges(min_block_duration: i64, max_block_duration: i64) -> Vec<i64> {
    let mut r = exponential_block_ranges(min_block_duration, 10, 3);
    if let Some(i) = r.iter().position(|&x| x > max_block_duration) {
        r.truncate(i.max(1));
    }
    r
}

/// Chooses blocks to compact, from their metas.
#[derive(Debug, Clone)]
pub struct Planner {
    pub ranges: Vec<i64>,
}

impl Planner {
    pub fn new(ranges: Vec<i64>) -> Self {
        Planner { ranges }
    }

    /// ULIDs of the blocks to compact together next (empty: nothing to do).
    pub fn plan(&self, metas: &[BlockMeta]) -> Vec<Ulid> {
        let mut ms: Vec<&BlockMeta> = metas.iter().collect();
        ms.sort_by_key(|m| (m.min_time, m.ulid));
        let overlapping = select_overlapping(&ms);
        if !overlapping.is_empty() {
            return overlapping;
        }
        // The newest block is left alone: the next one out of the head may
        // still join it in a bigger range.
        if ms.is_empty() {
            return Vec::new();
        }
        let older = &ms[..ms.len() - 1];
        let picked = self.select_dirs(older);
        if !picked.is_empty() {
            return picked;
        }
        // Big enough blocks with many tombstones are rewritten alone.
        let half = self
            .ranges
            .get(self.ranges.len() / 2)
            .copied()
            .unwrap_or(i64::MAX);
        for m in older.iter().rev() {
            let s = &m.stats;
            if s.num_tombstones == 0 || m.compaction.failed {
                continue;
            }
            let all_deleted = s.num_series > 0 && s.num_tombstones >= s.num_series;
            let big = m.max_time - m.min_time > half;
            if all_deleted || (big && s.num_tombstones as f64 / s.num_series.max(1) as f64 > 0.05) {
                return vec![m.ulid];
            }
        }
        Vec::new()
    }

    fn select_dirs(&self, ms: &[&BlockMeta]) -> Vec<Ulid> {
        if self.ranges.len() < 2 || ms.is_empty() {
            return Vec::new();
        }
        let high = ms[ms.len() - 1].min_time;
        for &r in &self.ranges[1..] {
            for group in split_by_range(ms, r) {
                if group.iter().any(|m| m.compaction.failed) {
                    continue;
                }
                let mint = group[0].min_time;
                let maxt = group[group.len() - 1].max_time;
                if (maxt - mint == r || maxt <= high) && group.len() > 1 {
                    return group.iter().map(|m| m.ulid).collect();
                }
            }
        }
        Vec::new()
    }
}

/// Groups consecutive blocks (sorted by min time) that fit together in one
/// aligned window of width `r`; blocks spanning a window border are skipped.
fn split_by_range<'a>(ms: &[&'a BlockMeta], r: i64) -> Vec<Vec<&'a BlockMeta>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < ms.len() {
        let t0 = ms[i].min_time.div_euclid(r) * r;
        if ms[i].max_time > t0 + r {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < ms.len() && ms[i].max_time <= t0 + r && ms[i].min_time >= t0 {
            group.push(ms[i]);
            i += 1;
        }
        if group.is_empty() {
            i += 1;
        } else {
            out.push(group);
        }
    }
    out
}

/// The first run of blocks (sorted by min time) whose ranges overlap.
fn select_overlapping(ms: &[&BlockMeta]) -> Vec<Ulid> {
    let mut out = Vec::new();
    let Some(first) = ms.first() else {
        return out;
    };
    let mut global_max = first.max_time;
    for i in 1..ms.len() {
        let m = ms[i];
        if m.min_time < global_max {
            if out.is_empty() {
                out.push(ms[i - 1].ulid);
            }
            out.push(m.ulid);
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(m.max_time);
    }
    out
}

/// One chunk headed for the output: borrowed from a source map, or re-encoded.
struct OutChunk<'a> {
    min_time: i64,
    max_time: i64,
    encoding: u8,
    data: Cow<'a, [u8]>,
}

/// Iterates one source block's series in label order.
struct SourceCursor<'a> {
    block: &'a Block,
    ids: Vec<u32>,
    pos: usize,
    labels: Vec<Label>,
    chunks: Vec<ChunkMeta>,
    id: u32,
    has: bool,
}

impl<'a> SourceCursor<'a> {
    fn new(block: &'a Block) -> Result<Self, StorageError> {
        let ids = block.index().all_postings()?;
        let mut c = SourceCursor {
            block,
            ids,
            pos: 0,
            labels: Vec::new(),
            chunks: Vec::new(),
            id: 0,
            has: false,
        };
        c.advance()?;
        Ok(c)
    }

    fn advance(&mut self) -> Result<(), StorageError> {
        self.has = false;
        if let Some(&id) = self.ids.get(self.pos) {
            self.pos += 1;
            self.block
                .index()
                .series_into(id, Some(&mut self.labels), &mut self.chunks)?;
            self.id = id;
            self.has = true;
        }
        Ok(())
    }
}

fn chunk_err(block: &Block, labels: &[Label], e: impl std::fmt::Display) -> StorageError {
    StorageError::Corruption {
        location: format!(
            "block {} series {}",
            block.meta().ulid,
            Labels::from_sorted(labels.to_vec())
        ),
        reason: e.to_string(),
    }
}

fn decode_into(
    block: &Block,
    labels: &[Label],
    c: &ChunkMeta,
    intervals: &[Interval],
    out: &mut Vec<Sample>,
) -> Result<(), StorageError> {
    let raw = block
        .chunks()
        .chunk(c.chunk_ref)
        .map_err(|e| chunk_err(block, labels, e))?;
    let mut it =
        ChunkIter::from_raw(raw.encoding, raw.data).map_err(|e| chunk_err(block, labels, e))?;
    while let Some(s) = it.next().map_err(|e| chunk_err(block, labels, e))? {
        if intervals.is_empty() || !is_deleted(intervals, s.t) {
            out.push(s);
        }
    }
    Ok(())
}

fn encode_samples(samples: &[Sample], out: &mut Vec<OutChunk<'_>>) {
    for part in samples.chunks(SAMPLES_PER_CHUNK) {
        if let Some(c) = EncodedChunk::from_samples(part) {
            out.push(OutChunk {
                min_time: c.mint,
                max_time: c.maxt,
                encoding: c.encoding.as_u8(),
                data: Cow::Owned(c.data),
            });
        }
    }
}

/// Merges `sources` into one new block in `dir` and returns its meta, or
/// `None` when nothing survived (everything deleted): then no block is
/// written. The sources stay untouched.
pub fn compact_blocks(dir: &Path, sources: &[Block]) -> Result<Option<BlockMeta>, StorageError> {
    let metas: Vec<BlockMeta> = sources.iter().map(Block::meta).collect();
    let (Some(mint), Some(maxt)) = (
        metas.iter().map(|m| m.min_time).min(),
        metas.iter().map(|m| m.max_time).max(),
    ) else {
        return Ok(None);
    };
    let mut symbols: BTreeSet<&str> = BTreeSet::new();
    for b in sources {
        let ix = b.index();
        for i in 0..ix.num_symbols() {
            symbols.insert(ix.symbol(i as u32)?);
        }
    }
    let ulid = Ulid::new();
    let mut builder = BlockBuilder::create(dir, ulid, mint, maxt, &symbols)?;
    let tombstones: Vec<_> = sources.iter().map(Block::tombstones).collect();
    let mut cursors = sources
        .iter()
        .map(SourceCursor::new)
        .collect::<Result<Vec<_>, _>>()?;

    let mut out: Vec<OutChunk<'_>> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    while let Some(min) = cursors
        .iter()
        .filter(|c| c.has)
        .map(|c| c.labels.as_slice())
        .min()
        .map(<[Label]>::to_vec)
    {
        out.clear();
        // Gather every source's chunks for this label set.
        let mut parts: Vec<(usize, Vec<ChunkMeta>, &[Interval])> = Vec::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            if c.has && c.labels == min {
                let iv = tombstones[i].get(u64::from(c.id));
                parts.push((i, std::mem::take(&mut c.chunks), iv));
            }
        }
        let mut all: Vec<(usize, ChunkMeta, bool)> = Vec::new();
        for (i, chunks, iv) in &parts {
            for c in chunks {
                // Drop chunks entirely deleted; mark partly deleted ones.
                if iv.iter().any(|x| x.covers(c.min_time, c.max_time)) {
                    continue;
                }
                let partly = iv
                    .iter()
                    .any(|x| x.mint <= c.max_time && c.min_time <= x.maxt);
                all.push((*i, *c, partly));
            }
        }
        all.sort_by_key(|(_, c, _)| (c.min_time, c.max_time));
        let overlapping = all.windows(2).any(|w| w[1].1.min_time <= w[0].1.max_time);
        if overlapping {
            // Vertical merge: decode everything, dedup by timestamp (first
            // source wins), re-encode.
            samples.clear();
            for (i, c, _) in &all {
                let iv = tombstones[*i].get(u64::from(cursors[*i].id));
                decode_into(&sources[*i], &min, c, iv, &mut samples)?;
            }
            samples.sort_by_key(|s| s.t);
            samples.dedup_by_key(|s| s.t);
            encode_samples(&samples, &mut out);
        } else {
            for (i, c, partly) in &all {
                let b = &sources[*i];
                if *partly {
                    samples.clear();
                    let iv = tombstones[*i].get(u64::from(cursors[*i].id));
                    decode_into(b, &min, c, iv, &mut samples)?;
                    encode_samples(&samples, &mut out);
                } else {
                    let raw = b
                        .chunks()
                        .chunk(c.chunk_ref)
                        .map_err(|e| chunk_err(b, &min, e))?;
                    out.push(OutChunk {
                        min_time: c.min_time,
                        max_time: c.max_time,
                        encoding: raw.encoding,
                        data: Cow::Borrowed(raw.data),
                    });
                }
            }
        }
        if !out.is_empty() {
            let labels = Labels::from_sorted(min.clone());
            builder.add_series_raw(
                &labels,
                out.iter()
                    .map(|c| (c.min_time, c.max_time, c.encoding, c.data.as_ref())),
            )?;
        }
        for (i, _, _) in parts {
            cursors[i].advance()?;
        }
    }
    if builder.stats().num_samples == 0 {
        return Ok(None);
    }
    let mut sources_ulids: BTreeSet<Ulid> = BTreeSet::new();
    for m in &metas {
        sources_ulids.extend(m.compaction.sources.iter().copied());
        if m.compaction.sources.is_empty() {
            sources_ulids.insert(m.ulid);
        }
    }
    let compaction = BlockMetaCompaction {
        level: metas.iter().map(|m| m.compaction.level).max().unwrap_or(0) + 1,
        sources: sources_ulids.into_iter().collect(),
        parents: metas.iter().map(BlockMeta::desc).collect(),
        ..Default::default()
    };
    builder.finish(compaction).map(Some)
}

/// A series for a new block: labels and chunks in time order.
pub type SeriesChunks = (Labels, Vec<EncodedChunk>);

/// Writes a level-1 block `[mint, maxt)` from series given in label order
/// (the head's compaction iterator). `symbols` must be a sorted superset of
/// their label strings. Returns `None` (and writes nothing) when there are
/// no samples.
pub fn write_block_from_series(
    dir: &Path,
    mint: i64,
    maxt: i64,
    symbols: &[String],
    series: impl Iterator<Item = Result<SeriesChunks, StorageError>>,
) -> Result<Option<BlockMeta>, StorageError> {
    let ulid = Ulid::new();
    let mut b = BlockBuilder::create(dir, ulid, mint, maxt, symbols)?;
    for s in series {
        let (labels, chunks) = s?;
        b.add_series(&labels, &chunks)?;
    }
    if b.stats().num_samples == 0 {
        return Ok(None);
    }
    b.finish(BlockMetaCompaction {
        level: 1,
        sources: vec![ulid],
        ..Default::default()
    })
    .map(Some)
}

#[cfg(test)]
mod tests;
