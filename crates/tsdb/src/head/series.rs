//! One in-memory series: its label symbols, the open (appendable) chunk,
//! references to its full chunks in `chunks_head/`, and rarely used state
//! (out-of-order samples, chunks that could not be written) behind a box.
//!
//! Kept small on purpose: the head holds one per active series.

use super::index::Sym;
use crate::chunkenc::{Encoding, XorChunk, SAMPLES_PER_CHUNK};
use crate::head_chunks::{ChunkDiskMapper, ChunkDiskRef};
use vigil_model::storage::StorageError;
use vigil_model::Sample;

/// Out-of-order samples kept in memory before they are cut into a chunk
/// (Prometheus's `OutOfOrderCapMax` default).
pub(crate) const OOO_CHUNK_SAMPLES: usize = 32;

/// A full chunk written to `chunks_head/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub r: ChunkDiskRef,
    pub mint: i64,
    pub maxt: i64,
}

/// A full chunk kept in memory because writing it failed.
#[derive(Clone, Debug)]
pub(crate) struct MemChunk {
    pub mint: i64,
    pub maxt: i64,
    pub data: Box<[u8]>,
}

/// State most series never need.
#[derive(Default, Debug)]
pub(crate) struct SeriesExtra {
    /// Out-of-order samples not yet cut into a chunk, sorted by time.
    pub ooo_buf: Vec<Sample>,
    /// Out-of-order chunks on disk.
    pub ooo_mmapped: Vec<ChunkMeta>,
    /// In-order full chunks that could not be written to disk (kept in RAM
    /// rather than lost); oldest first, all older than `mmapped` chunks
    /// written after them are not: queries merge by time.
    pub unmapped: Vec<MemChunk>,
}

impl SeriesExtra {
    fn is_empty(&self) -> bool {
        self.ooo_buf.is_empty() && self.ooo_mmapped.is_empty() && self.unmapped.is_empty()
    }
}

/// Where an append may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appendable {
    InOrder,
    OutOfOrder,
    /// Same timestamp and value as the last sample: ignored.
    Duplicate,
}

/// What applying a sample did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    InOrder {
        chunk_cut: bool,
    },
    OutOfOrder {
        chunk_cut: bool,
    },
    Duplicate,
    /// Rejected at commit time (another sample of the batch overtook it).
    OutOfOrderDropped,
    TooOldDropped,
}

/// Settings needed to apply samples.
pub(crate) struct ApplyCtx<'a> {
    pub series_ref: u64,
    pub chunk_range: i64,
    pub ooo_window: i64,
    pub head_max_t: i64,
    pub mapper: &'a ChunkDiskMapper,
}

pub(crate) struct MemSeries {
    /// Label symbols: name, value, name, value, ... sorted by name.
    pub lset: Box<[Sym]>,
    /// The open chunk (empty when the series has none).
    pub head: XorChunk,
    /// When the open chunk will be cut.
    pub next_at: i64,
    /// Full in-order chunks on disk, oldest first.
    pub mmapped: Box<[ChunkMeta]>,
    pub extra: Option<Box<SeriesExtra>>,
    /// An appender holds uncommitted samples for this series; truncation
    /// must not drop it.
    pub pending: bool,
}

/// End of the chunk range that `t` falls in.
pub(crate) fn range_for_timestamp(t: i64, width: i64) -> i64 {
    (t.div_euclid(width)) * width + width
}

/// Prometheus's estimate of when to cut the open chunk, once it is a
/// quarter full, so the rest of the range splits into equal chunks.
pub(crate) fn compute_chunk_end_time(start: i64, cur: i64, max: i64) -> i64 {
    let n = (max - start) / ((cur - start + 1) * 4);
    if n <= 1 {
        max
    } else {
        start + (max - start) / n
    }
}

impl MemSeries {
    pub(crate) fn new(lset: Box<[Sym]>) -> Self {
        MemSeries {
            lset,
            head: XorChunk::new(),
            next_at: i64::MIN,
            mmapped: Box::new([]),
            extra: None,
            pending: false,
        }
    }

    /// Timestamp of the newest in-order sample (`i64::MIN` if none).
    #[inline]
    pub(crate) fn max_t(&self) -> i64 {
        if self.head.num_samples() > 0 {
            return self.head.last_t();
        }
        let mut m = self.mmapped.last().map_or(i64::MIN, |c| c.maxt);
        if let Some(c) = self.extra.as_ref().and_then(|x| x.unmapped.last()) {
            m = m.max(c.maxt);
        }
        m
    }

    /// Timestamp of the open chunk's first sample (meaningless when empty).
    pub(crate) fn head_mint(&self) -> i64 {
        self.head.first_t()
    }

    /// Whether `(t, v)` can be appended, with Prometheus's rules and errors.
    pub(crate) fn appendable(
        &self,
        t: i64,
        v: f64,
        head_max_t: i64,
        min_valid_t: i64,
        ooo_window: i64,
    ) -> Result<Appendable, StorageError> {
        if t >= min_valid_t {
            let max_t = self.max_t();
            if max_t == i64::MIN || t > max_t {
                return Ok(Appendable::InOrder);
            }
            if t == max_t && self.head.num_samples() > 0 {
                if v.to_bits() == self.head.last_v().to_bits() {
                    return Ok(Appendable::Duplicate);
                }
                return Err(StorageError::DuplicateSampleForTimestamp);
            }
        }
        if ooo_window > 0 {
            if t >= head_max_t.saturating_sub(ooo_window) {
                return Ok(Appendable::OutOfOrder);
            }
            return Err(StorageError::TooOldSample);
        }
        if t < min_valid_t {
            return Err(StorageError::OutOfBounds);
        }
        Err(StorageError::OutOfOrderSample)
    }

    /// Applies a committed sample: in order into the open chunk (cutting it
    /// as Prometheus does), else into the out-of-order buffer if the window
    /// allows.
    pub(crate) fn apply(&mut self, t: i64, v: f64, ctx: &ApplyCtx<'_>) -> Applied {
        let max_t = self.max_t();
        if max_t != i64::MIN && t <= max_t {
            if t == max_t
                && self.head.num_samples() > 0
                && v.to_bits() == self.head.last_v().to_bits()
            {
                return Applied::Duplicate;
            }
            if ctx.ooo_window > 0 {
                if t >= ctx.head_max_t.saturating_sub(ctx.ooo_window) {
                    return self.insert_ooo(t, v, ctx);
                }
                return Applied::TooOldDropped;
            }
            return Applied::OutOfOrderDropped;
        }
        let mut chunk_cut = false;
        let n = self.head.num_samples();
        if n == 0 {
            self.next_at = range_for_timestamp(t, ctx.chunk_range);
            chunk_cut = true;
        } else {
            if n == SAMPLES_PER_CHUNK / 4 {
                self.next_at =
                    compute_chunk_end_time(self.head_mint(), self.head.last_t(), self.next_at);
            }
            if t >= self.next_at || n >= SAMPLES_PER_CHUNK * 2 {
                self.cut_head(ctx);
                self.next_at = range_for_timestamp(t, ctx.chunk_range);
                chunk_cut = true;
            }
        }
        // Cannot fail: the chunk is cut long before 65535 samples.
        let _ = self.head.append(t, v);
        Applied::InOrder { chunk_cut }
    }

    /// Writes the open chunk to disk and starts an empty one.
    pub(crate) fn cut_head(&mut self, ctx: &ApplyCtx<'_>) {
        let full = std::mem::take(&mut self.head);
        if full.num_samples() == 0 {
            return;
        }
        let (mint, maxt) = (full.first_t(), full.last_t());
        match ctx.mapper.write_chunk(
            ctx.series_ref,
            mint,
            maxt,
            Encoding::Xor.as_u8(),
            full.bytes(),
            false,
        ) {
            Ok(r) => {
                let mut v = std::mem::take(&mut self.mmapped).into_vec();
                v.push(ChunkMeta { r, mint, maxt });
                self.mmapped = v.into_boxed_slice();
            }
            Err(e) => {
                static LOG: crate::disk_full::LogLimiter = crate::disk_full::LogLimiter::new();
                if let Some(more) = LOG.allow(std::time::Duration::from_secs(60)) {
                    tracing::error!(
                        series_ref = ctx.series_ref,
                        similar_failures_not_logged = more,
                        "writing head chunk failed, keeping it in memory: {e}"
                    );
                }
                self.extra_mut().unmapped.push(MemChunk {
                    mint,
                    maxt,
                    data: full.into_bytes().into_boxed_slice(),
                });
            }
        }
    }

    fn extra_mut(&mut self) -> &mut SeriesExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    fn insert_ooo(&mut self, t: i64, v: f64, ctx: &ApplyCtx<'_>) -> Applied {
        let x = self.extra_mut();
        let i = x.ooo_buf.partition_point(|s| s.t < t);
        if x.ooo_buf.get(i).is_some_and(|s| s.t == t) {
            return Applied::Duplicate;
        }
        x.ooo_buf.insert(i, Sample::new(t, v));
        let mut chunk_cut = false;
        if x.ooo_buf.len() >= OOO_CHUNK_SAMPLES {
            let mut c = XorChunk::new();
            for s in &x.ooo_buf {
                let _ = c.append(s.t, s.v);
            }
            let (mint, maxt) = (x.ooo_buf[0].t, x.ooo_buf[x.ooo_buf.len() - 1].t);
            match ctx.mapper.write_chunk(
                ctx.series_ref,
                mint,
                maxt,
                Encoding::Xor.as_u8(),
                c.bytes(),
                true,
            ) {
                Ok(r) => {
                    x.ooo_mmapped.push(ChunkMeta { r, mint, maxt });
                    x.ooo_buf.clear();
                    x.ooo_buf.shrink_to_fit();
                    chunk_cut = true;
                }
                Err(e) => {
                    static LOG: crate::disk_full::LogLimiter = crate::disk_full::LogLimiter::new();
                    if let Some(more) = LOG.allow(std::time::Duration::from_secs(60)) {
                        tracing::error!(
                            series_ref = ctx.series_ref,
                            similar_failures_not_logged = more,
                            "writing out-of-order chunk failed, keeping samples in memory: {e}"
                        );
                    }
                }
            }
        }
        Applied::OutOfOrder { chunk_cut }
    }

    /// Adds chunks found on disk at startup (sorted by time).
    pub(crate) fn set_mmapped(&mut self, chunks: Vec<ChunkMeta>) {
        self.mmapped = chunks.into_boxed_slice();
    }

    /// Drops data older than `mint`. Returns the number of chunks removed.
    pub(crate) fn truncate_before(&mut self, mint: i64) -> usize {
        let before = self.mmapped.len();
        if self.mmapped.iter().any(|c| c.maxt < mint) {
            let kept: Vec<ChunkMeta> = self
                .mmapped
                .iter()
                .copied()
                .filter(|c| c.maxt >= mint)
                .collect();
            self.mmapped = kept.into_boxed_slice();
        }
        let mut removed = before - self.mmapped.len();
        if self.head.num_samples() > 0 && self.head.last_t() < mint {
            self.head = XorChunk::new();
            removed += 1;
        }
        if let Some(x) = self.extra.as_mut() {
            let n = x.ooo_mmapped.len() + x.unmapped.len();
            x.ooo_mmapped.retain(|c| c.maxt >= mint);
            x.unmapped.retain(|c| c.maxt >= mint);
            removed += n - x.ooo_mmapped.len() - x.unmapped.len();
            x.ooo_buf.retain(|s| s.t >= mint);
            if x.is_empty() {
                self.extra = None;
            }
        }
        removed
    }

    /// True when the series holds no data at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.num_samples() == 0 && self.mmapped.is_empty() && self.extra.is_none()
    }

    /// Oldest chunk file still referenced.
    pub(crate) fn min_file_seq(&self) -> Option<u32> {
        let a = self.mmapped.first().map(|c| c.r.seq());
        let b = self
            .extra
            .as_ref()
            .and_then(|x| x.ooo_mmapped.iter().map(|c| c.r.seq()).min());
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Oldest and newest sample time held (in-order and out-of-order).
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        if let Some(c) = self.mmapped.first() {
            lo = lo.min(c.mint);
        }
        if let Some(c) = self.mmapped.last() {
            hi = hi.max(c.maxt);
        }
        if self.head.num_samples() > 0 {
            lo = lo.min(self.head_mint());
            hi = hi.max(self.head.last_t());
        }
        if let Some(x) = &self.extra {
            for c in &x.ooo_mmapped {
                lo = lo.min(c.mint);
                hi = hi.max(c.maxt);
            }
            for c in &x.unmapped {
                lo = lo.min(c.mint);
                hi = hi.max(c.maxt);
            }
            if let (Some(f), Some(l)) = (x.ooo_buf.first(), x.ooo_buf.last()) {
                lo = lo.min(f.t);
                hi = hi.max(l.t);
            }
        }
        (lo <= hi).then_some((lo, hi))
    }

    /// Heap bytes owned by the series (for memory accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        let mut n = self.lset.len() * 4 + self.head.heap_size() + self.mmapped.len() * 24;
        if let Some(x) = &self.extra {
            n += std::mem::size_of::<SeriesExtra>()
                + x.ooo_buf.capacity() * 16
                + x.ooo_mmapped.capacity() * 24
                + x.unmapped.iter().map(|c| c.data.len() + 40).sum::<usize>();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_end_time_matches_prometheus_examples() {
        // 15 s scrapes in a 2 h range: cut every 30 minutes (120 samples).
        let end = compute_chunk_end_time(0, 29 * 15_000, 7_200_000);
        assert_eq!(end, 1_800_000);
        // Sparse data: the range end.
        assert_eq!(compute_chunk_end_time(0, 3_000_000, 7_200_000), 7_200_000);
        assert_eq!(range_for_timestamp(7_199_999, 7_200_000), 7_200_000);
        assert_eq!(range_for_timestamp(7_200_000, 7_200_000), 14_400_000);
        assert_eq!(range_for_timestamp(-1, 7_200_000), 0);
    }

    #[test]
    fn appendable_rules() {
        let mut s = MemSeries::new(Box::new([]));
        let dir = tempfile::tempdir().unwrap();
        let mapper = ChunkDiskMapper::open(dir.path()).unwrap();
        let ctx = ApplyCtx {
            series_ref: 1,
            chunk_range: 7_200_000,
            ooo_window: 0,
            head_max_t: 100,
            mapper: &mapper,
        };
        assert_eq!(s.appendable(100, 1.0, 100, 0, 0), Ok(Appendable::InOrder));
        s.apply(100, 1.0, &ctx);
        assert_eq!(s.appendable(100, 1.0, 100, 0, 0), Ok(Appendable::Duplicate));
        assert_eq!(
            s.appendable(100, 2.0, 100, 0, 0),
            Err(StorageError::DuplicateSampleForTimestamp)
        );
        assert_eq!(
            s.appendable(99, 2.0, 100, 0, 0),
            Err(StorageError::OutOfOrderSample)
        );
        assert_eq!(
            s.appendable(50, 2.0, 100, 60, 0),
            Err(StorageError::OutOfBounds)
        );
        assert_eq!(
            s.appendable(95, 2.0, 100, 60, 10),
            Ok(Appendable::OutOfOrder)
        );
        assert_eq!(
            s.appendable(85, 2.0, 100, 60, 10),
            Err(StorageError::TooOldSample)
        );
        assert_eq!(s.apply(90, 1.0, &ctx), Applied::OutOfOrderDropped);
        // NaN duplicates compare by bits.
        let mut n = MemSeries::new(Box::new([]));
        n.apply(5, f64::NAN, &ctx);
        assert_eq!(
            n.appendable(5, f64::NAN, 5, 0, 0),
            Ok(Appendable::Duplicate)
        );
    }

    #[test]
    fn cuts_every_120_samples_at_15s() {
        let dir = tempfile::tempdir().unwrap();
        let mapper = ChunkDiskMapper::open(dir.path()).unwrap();
        let ctx = ApplyCtx {
            series_ref: 1,
            chunk_range: 7_200_000,
            ooo_window: 0,
            head_max_t: 0,
            mapper: &mapper,
        };
        let mut s = MemSeries::new(Box::new([]));
        for i in 0..480 {
            s.apply(i * 15_000, i as f64, &ctx);
        }
        // Four chunks of 120 in the 2 h range; the 4th is still open.
        assert_eq!(s.mmapped.len(), 3);
        assert_eq!(s.head.num_samples(), 120);
        for c in s.mmapped.iter() {
            let m = mapper.chunk(c.r).unwrap();
            assert_eq!(u16::from_be_bytes([m.data()[0], m.data()[1]]), 120);
        }
        // The range boundary cuts regardless of count.
        s.apply(7_200_000, 1.0, &ctx);
        assert_eq!(s.mmapped.len(), 4);
        assert_eq!(s.head.num_samples(), 1);
    }
}
#[cfg(test)]
#[test]
fn series_stays_small() {
    // The head holds one per active series: growth here is RSS per series.
    assert_eq!(std::mem::size_of::<XorChunk>(), 48);
    assert!(std::mem::size_of::<MemSeries>() <= 104);
}
