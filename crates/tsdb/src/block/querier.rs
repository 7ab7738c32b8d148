//! Querying one block: matchers to postings (with fast paths for literal
//! alternations, prefixes, `.*` and `.+`), series in label order, and sample
//! iterators that skip chunks outside the range and samples under tombstones.

use std::sync::Arc;

use vigil_model::storage::{Querier, SampleIter, SelectHints, Series, StorageError};
use vigil_model::{Label, Labels, MatchOp, Matcher, Sample};

use super::BlockInner;
use crate::chunkenc::ChunkIter;
use crate::chunks::ChunkMeta;
use crate::index::{intersect_many, merge_many, subtract, IndexReader, Postings};
use crate::tombstones::{is_deleted, Interval, Tombstones};

/// Chunks of persisted blocks found corrupt at query time, process-wide.
static CHUNK_CORRUPTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `vigil_tsdb_chunk_corruptions_total` for block chunks: CRC mismatches and
/// undecodable chunks met by queries (each fails only its query).
pub fn chunk_corruptions_total() -> u64 {
    CHUNK_CORRUPTIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Reads the postings lists at `offsets` and unions them.
fn union_at(ix: &IndexReader, offsets: Vec<u64>) -> Result<Postings, StorageError> {
    let lists = offsets
        .into_iter()
        .map(|o| ix.read_postings(o))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merge_many(lists))
}

/// Offsets of the postings of every value of `name` accepted by `keep`,
/// scanning from the first value >= `from` while `go_on` holds.
fn scan_values(
    ix: &IndexReader,
    name: &str,
    from: &str,
    go_on: impl Fn(&str) -> bool,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<u64>, StorageError> {
    let mut offs = Vec::new();
    ix.for_each_value(name, from, |v, off| {
        if !go_on(v) {
            return false;
        }
        if keep(v) {
            offs.push(off);
        }
        true
    })?;
    Ok(offs)
}

/// Offsets of the postings of each literal value present in the index.
fn lookup_values<'a>(
    ix: &IndexReader,
    name: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<u64>, StorageError> {
    let mut offs = Vec::new();
    for v in values {
        if let Some(o) = ix.postings_offset(name, v)? {
            offs.push(o);
        }
    }
    Ok(offs)
}

/// Series having a value of `m.name` that `m` accepts (`m` must not match
/// the empty string).
fn matching_postings(ix: &IndexReader, m: &Matcher) -> Result<Postings, StorageError> {
    let name = m.name.as_str();
    let offs = if let Some(set) = m.set_matches() {
        lookup_values(ix, name, set)?
    } else if m.is_match_non_empty() {
        scan_values(
            ix,
            name,
            "",
            |_| true,
            |v| !v.contains('\n') || m.op == MatchOp::NotEqual,
        )?
    } else if let (MatchOp::Regex, Some(p)) = (m.op, m.prefix()) {
        scan_values(ix, name, p, |v| v.starts_with(p), |v| m.matches(v))?
    } else {
        scan_values(ix, name, "", |_| true, |v| m.matches(v))?
    };
    union_at(ix, offs)
}

/// Series having a value of `m.name` that `m` rejects (`m` matches the
/// empty string, so series without the label are not among them).
fn rejected_postings(ix: &IndexReader, m: &Matcher) -> Result<Postings, StorageError> {
    let name = m.name.as_str();
    let offs = match m.op {
        MatchOp::NotEqual => lookup_values(ix, name, [m.value.as_str()])?,
        MatchOp::Equal => scan_values(ix, name, "", |_| true, |_| true)?,
        MatchOp::NotRegex => {
            if let Some(p) = m.prefix() {
                scan_values(ix, name, p, |v| v.starts_with(p), |v| !m.matches(v))?
            } else if ix.num_values(name) > 64 {
                // The positive regex may be a literal set: look values up.
                match Matcher::new(MatchOp::Regex, name, m.value.as_str()) {
                    Ok(pos) => match pos.set_matches() {
                        Some(set) => lookup_values(ix, name, set)?,
                        None => scan_values(ix, name, "", |_| true, |v| !m.matches(v))?,
                    },
                    Err(_) => scan_values(ix, name, "", |_| true, |v| !m.matches(v))?,
                }
            } else {
                scan_values(ix, name, "", |_| true, |v| !m.matches(v))?
            }
        }
        MatchOp::Regex => scan_values(ix, name, "", |_| true, |v| !m.matches(v))?,
    };
    union_at(ix, offs)
}

/// IDs of the series matching every matcher, sorted (= label order).
pub fn postings_for_matchers(
    ix: &IndexReader,
    matchers: &[Matcher],
) -> Result<Postings, StorageError> {
    let mut its = Vec::new();
    let mut not_its = Vec::new();
    for m in matchers {
        if m.is_match_all() {
            continue;
        }
        if m.matches_empty() {
            let p = rejected_postings(ix, m)?;
            if !p.is_empty() {
                not_its.push(p);
            }
        } else {
            let p = matching_postings(ix, m)?;
            if p.is_empty() {
                return Ok(Vec::new());
            }
            its.push(p);
        }
    }
    let mut base = if its.is_empty() {
        ix.all_postings()?
    } else {
        intersect_many(its)
    };
    if !not_its.is_empty() && !base.is_empty() {
        base = subtract(&base, &merge_many(not_its));
    }
    Ok(base)
}

/// Querier over one block and a closed time range.
pub struct BlockQuerier {
    block: Arc<BlockInner>,
    mint: i64,
    maxt: i64,
    tombstones: Arc<Tombstones>,
}

impl BlockQuerier {
    pub(crate) fn new(block: Arc<BlockInner>, mint: i64, maxt: i64) -> Self {
        let tombstones = block.tombstones();
        BlockQuerier {
            block,
            mint,
            maxt,
            tombstones,
        }
    }

    /// Selected series as concrete values (compaction and tools use this).
    /// As in Prometheus, selection is chunk-granular: a series is returned
    /// when one of its chunks overlaps the range, even if no sample of that
    /// chunk falls inside it (its iterator is then empty).
    pub fn select_series(&self, matchers: &[Matcher]) -> Result<Vec<BlockSeries>, StorageError> {
        let ix = &self.block.index;
        let ids = postings_for_matchers(ix, matchers)?;
        let mut out = Vec::with_capacity(ids.len());
        let mut lbuf: Vec<Label> = Vec::new();
        let mut chunks: Vec<ChunkMeta> = Vec::new();
        for id in ids {
            ix.series_into(id, Some(&mut lbuf), &mut chunks)?;
            chunks.retain(|c| c.overlaps_closed(self.mint, self.maxt));
            let intervals = self.tombstones.get(u64::from(id));
            if !intervals.is_empty() {
                chunks.retain(|c| !intervals.iter().any(|iv| iv.covers(c.min_time, c.max_time)));
            }
            if chunks.is_empty() {
                continue;
            }
            out.push(BlockSeries {
                block: self.block.clone(),
                labels: Labels::from_sorted(std::mem::take(&mut lbuf)),
                chunks: std::mem::take(&mut chunks),
                mint: self.mint,
                maxt: self.maxt,
                intervals: intervals.to_vec(),
            });
        }
        Ok(out)
    }

    fn matching_labels(
        &self,
        matchers: &[Matcher],
        mut f: impl FnMut(&[Label]),
    ) -> Result<(), StorageError> {
        let ix = &self.block.index;
        let mut lbuf = Vec::new();
        let mut chunks = Vec::new();
        for id in postings_for_matchers(ix, matchers)? {
            ix.series_into(id, Some(&mut lbuf), &mut chunks)?;
            f(&lbuf);
        }
        Ok(())
    }
}

impl Querier for BlockQuerier {
    fn select(
        &self,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Vec<Box<dyn Series>>, StorageError> {
        Ok(self
            .select_series(matchers)?
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn Series>)
            .collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() {
            let vals = self.block.index.label_values(name)?;
            return Ok(vals.into_iter().map(str::to_string).collect());
        }
        let mut out: Vec<String> = Vec::new();
        self.matching_labels(matchers, |ls| {
            if let Some(l) = ls.iter().find(|l| l.name == name) {
                out.push(l.value.clone());
            }
        })?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() {
            return Ok(self
                .block
                .index
                .label_names()
                .into_iter()
                .map(str::to_string)
                .collect());
        }
        let mut out: Vec<String> = Vec::new();
        self.matching_labels(matchers, |ls| {
            out.extend(ls.iter().map(|l| l.name.clone()));
        })?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// A series of a block: labels, the chunks overlapping the query range and
/// the deleted intervals.
pub struct BlockSeries {
    block: Arc<BlockInner>,
    labels: Labels,
    chunks: Vec<ChunkMeta>,
    mint: i64,
    maxt: i64,
    intervals: Vec<Interval>,
}

impl BlockSeries {
    pub fn chunk_metas(&self) -> &[ChunkMeta] {
        &self.chunks
    }

    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// The concrete iterator (avoids the box).
    pub fn sample_iter(&self) -> BlockSeriesIter<'_> {
        BlockSeriesIter {
            series: self,
            next_chunk: 0,
            cur: None,
            cur_maxt: i64::MIN,
            fast: false,
            last: None,
            done: false,
        }
    }

    /// Every sample in range, in order.
    pub fn samples(&self) -> Result<Vec<Sample>, StorageError> {
        let mut it = self.sample_iter();
        let mut out = Vec::new();
        while let Some(s) = it.next()? {
            out.push(s);
        }
        Ok(out)
    }

    fn chunk_error(&self, c: &ChunkMeta, reason: impl std::fmt::Display) -> StorageError {
        CHUNK_CORRUPTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        StorageError::Corruption {
            location: format!(
                "block {} series {} chunk {}",
                self.block.meta().ulid,
                self.labels,
                c.chunk_ref
            ),
            reason: reason.to_string(),
        }
    }
}

impl Series for BlockSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIter + '_> {
        Box::new(self.sample_iter())
    }
}

/// Iterator over a block series' samples in the query range.
pub struct BlockSeriesIter<'a> {
    series: &'a BlockSeries,
    next_chunk: usize,
    cur: Option<ChunkIter<'a>>,
    cur_maxt: i64,
    fast: bool,
    last: Option<Sample>,
    done: bool,
}

impl<'a> BlockSeriesIter<'a> {
    /// Opens the next chunk whose max time is >= `t`; false at the end.
    fn open_next(&mut self, t: i64) -> Result<bool, StorageError> {
        let s = self.series;
        while let Some(c) = s.chunks.get(self.next_chunk) {
            self.next_chunk += 1;
            if c.max_time < t {
                continue;
            }
            if c.min_time > s.maxt {
                break;
            }
            let raw = s
                .block
                .chunks
                .chunk(c.chunk_ref)
                .map_err(|e| s.chunk_error(c, e))?;
            let it =
                ChunkIter::from_raw(raw.encoding, raw.data).map_err(|e| s.chunk_error(c, e))?;
            self.cur = Some(it);
            self.cur_maxt = c.max_time;
            // Inside the range, nothing deleted, after what was returned:
            // every sample of the chunk is returned as decoded.
            self.fast = c.min_time >= s.mint
                && c.max_time <= s.maxt
                && s.intervals.is_empty()
                && self.last.is_none_or(|l| c.min_time > l.t);
            return Ok(true);
        }
        self.done = true;
        self.cur = None;
        Ok(false)
    }

    /// Applies range, tombstones and ordering to a decoded sample: Some(true)
    /// to return it, Some(false) to skip it, None to stop.
    #[inline]
    fn accept(&self, s: Sample) -> Option<bool> {
        if s.t > self.series.maxt {
            return None;
        }
        if s.t < self.series.mint
            || self.last.is_some_and(|l| l.t >= s.t)
            || (!self.series.intervals.is_empty() && is_deleted(&self.series.intervals, s.t))
        {
            return Some(false);
        }
        Some(true)
    }

    fn step(&mut self, mut pending: Option<Sample>) -> Result<Option<Sample>, StorageError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let s = match pending.take() {
                Some(s) => s,
                None => {
                    let Some(it) = self.cur.as_mut() else {
                        if !self.open_next(self.series.mint)? {
                            return Ok(None);
                        }
                        continue;
                    };
                    match it.next() {
                        Ok(Some(s)) if self.fast => {
                            self.last = Some(s);
                            return Ok(Some(s));
                        }
                        Ok(Some(s)) => s,
                        Ok(None) => {
                            self.cur = None;
                            continue;
                        }
                        Err(e) => return Err(self.corrupt_cur(e)),
                    }
                }
            };
            match self.accept(s) {
                None => {
                    self.done = true;
                    self.cur = None;
                    return Ok(None);
                }
                Some(true) => {
                    self.last = Some(s);
                    return Ok(Some(s));
                }
                Some(false) => {}
            }
        }
    }

    fn corrupt_cur(&self, e: impl std::fmt::Display) -> StorageError {
        let i = self.next_chunk.saturating_sub(1);
        match self.series.chunks.get(i) {
            Some(c) => self.series.chunk_error(c, e),
            None => self.series.chunk_error(&ChunkMeta::default(), e),
        }
    }
}

impl SampleIter for BlockSeriesIter<'_> {
    #[inline]
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        self.step(None)
    }

    /// Decodes whole chunks straight into `out` where no per-sample check is
    /// needed (the common case for range queries).
    fn collect_range(
        &mut self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        let mut cur = self.seek(mint)?;
        loop {
            match cur {
                Some(s) if s.t <= maxt => out.push(s),
                _ => return Ok(()),
            }
            if self.fast && self.cur_maxt <= maxt {
                if let Some(it) = self.cur.as_mut() {
                    if let Err(e) = it.drain_into(out) {
                        return Err(self.corrupt_cur(e));
                    }
                    self.last = out.last().copied();
                    self.cur = None;
                }
            }
            cur = self.next()?;
        }
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        if let Some(l) = self.last {
            if l.t >= t {
                return Ok(Some(l));
            }
        }
        if self.done {
            return Ok(None);
        }
        let t = t.max(self.series.mint);
        // Skip whole chunks that end before t without decoding them.
        if self.cur.is_none() || self.cur_maxt < t {
            self.cur = None;
            if !self.open_next(t)? {
                return Ok(None);
            }
        }
        let first = match self.cur.as_mut() {
            Some(it) => it.seek(t).map_err(|e| self.corrupt_cur(e))?,
            None => None,
        };
        match first {
            Some(s) => self.step(Some(s)),
            None => {
                self.cur = None;
                self.step(None)
            }
        }
    }
}
