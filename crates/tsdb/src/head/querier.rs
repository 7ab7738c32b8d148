//! Reading the head: postings for matchers, consistent snapshots of series
//! (the open chunk is copied, full chunks are pinned by their mapping) and
//! iterators that merge in-order chunks, out-of-order samples and
//! tombstones.

use super::index::{intersect, union, without, Sym};
use super::series::{ChunkMeta, MemSeries};
use super::{labels_from_syms, lock, read, shard_of, HeadInner};
use crate::chunkenc::{ChunkError, ChunkIter, Encoding};
use crate::head_chunks::MappedChunk;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vigil_model::storage::{Querier, SampleIter, SelectHints, Series, StorageError};
use vigil_model::{Labels, MatchOp, Matcher, Sample};

/// Sorted refs of the series matching all `matchers`, with Prometheus's
/// semantics for matchers that match the empty string (an absent label).
pub(crate) fn postings_for_matchers(
    head: &HeadInner,
    matchers: &[Matcher],
) -> Result<Vec<u64>, StorageError> {
    if matchers.is_empty() {
        return Ok(Vec::new());
    }
    let postings = read(&head.postings);
    let syms = read(&head.symbols);
    // Union of the postings of `name`'s values that satisfy `pred`.
    let matching = |name: &str, pred: &dyn Fn(&str) -> bool| -> Vec<u64> {
        let Some(n) = syms.lookup(name) else {
            return Vec::new();
        };
        union(
            postings
                .values(n)
                .filter(|&(v, _)| pred(syms.get(v)))
                .map(|(_, l)| l)
                .collect(),
        )
    };
    // Postings of exact values, skipping the value scan.
    let exact = |name: &str, values: &[&str]| -> Vec<u64> {
        let Some(n) = syms.lookup(name) else {
            return Vec::new();
        };
        union(
            values
                .iter()
                .filter_map(|v| syms.lookup(v))
                .map(|v| postings.get(n, v))
                .collect(),
        )
    };
    let mut its: Vec<Vec<u64>> = Vec::new();
    let mut not_its: Vec<Vec<u64>> = Vec::new();
    for m in matchers {
        if m.is_match_all() {
            // `=~".*"` constrains nothing (values with a newline aside,
            // which label values do not carry in practice).
            continue;
        }
        let is_not = matches!(m.op, MatchOp::NotEqual | MatchOp::NotRegex);
        match (is_not, m.matches_empty()) {
            // l!="foo": drop series whose value equals "foo".
            (true, true) => {
                if m.op == MatchOp::NotEqual {
                    not_its.push(exact(&m.name, &[m.value.as_str()]));
                } else {
                    not_its.push(matching(&m.name, &|v| !m.matches(v)));
                }
            }
            // l!="" and l!~"" alikes: series that have a matching value.
            (true, false) => its.push(matching(&m.name, &|v| m.matches(v))),
            // l="" or l=~"|a": drop series that have a non-matching value.
            (false, true) => not_its.push(matching(&m.name, &|v| !m.matches(v))),
            (false, false) => match m.set_matches() {
                Some(values) => its.push(exact(&m.name, &values)),
                None => its.push(matching(&m.name, &|v| m.matches(v))),
            },
        }
    }
    if its.is_empty() {
        its.push(postings.all().to_vec());
    }
    let mut out = intersect(its);
    for n in &not_its {
        out = without(out, n);
    }
    Ok(out)
}

/// A chunk of a selected series.
pub(crate) enum SeriesChunk {
    Mapped {
        mint: i64,
        maxt: i64,
        chunk: MappedChunk,
    },
    Owned {
        mint: i64,
        maxt: i64,
        data: Box<[u8]>,
    },
}

impl SeriesChunk {
    pub(crate) fn range(&self) -> (i64, i64) {
        match self {
            SeriesChunk::Mapped { mint, maxt, .. } | SeriesChunk::Owned { mint, maxt, .. } => {
                (*mint, *maxt)
            }
        }
    }
    pub(crate) fn iter(&self) -> Result<ChunkIter<'_>, ChunkError> {
        match self {
            SeriesChunk::Mapped { chunk, .. } => {
                ChunkIter::from_raw(chunk.encoding(), chunk.data())
            }
            SeriesChunk::Owned { data, .. } => ChunkIter::new(Encoding::Xor, data),
        }
    }
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            SeriesChunk::Mapped { chunk, .. } => chunk.data(),
            SeriesChunk::Owned { data, .. } => data,
        }
    }
}

/// A series as selected: labels, in-order chunks overlapping the range,
/// out-of-order samples in the range, deleted intervals.
pub(crate) struct HeadSeries {
    pub(crate) labels: Labels,
    pub(crate) chunks: Vec<SeriesChunk>,
    pub(crate) ooo: Vec<Sample>,
    pub(crate) stones: Vec<(i64, i64)>,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
}

/// What is copied out of a series under its shard lock.
struct RawSnap {
    r: u64,
    lset: Box<[Sym]>,
    disk: Vec<ChunkMeta>,
    mem: Vec<(i64, i64, Box<[u8]>)>,
    ooo_disk: Vec<ChunkMeta>,
    ooo_mem: Vec<Sample>,
}

fn overlaps(a: i64, b: i64, mint: i64, maxt: i64) -> bool {
    a <= maxt && mint <= b
}

fn snap_series(r: u64, s: &MemSeries, mint: i64, maxt: i64) -> Option<RawSnap> {
    let mut snap = RawSnap {
        r,
        lset: s.lset.clone(),
        disk: s
            .mmapped
            .iter()
            .copied()
            .filter(|c| overlaps(c.mint, c.maxt, mint, maxt))
            .collect(),
        mem: Vec::new(),
        ooo_disk: Vec::new(),
        ooo_mem: Vec::new(),
    };
    if s.head.num_samples() > 0 {
        let hm = s.head_mint();
        if overlaps(hm, s.head.last_t(), mint, maxt) {
            snap.mem.push((hm, s.head.last_t(), s.head.bytes().into()));
        }
    }
    if let Some(x) = &s.extra {
        for c in &x.unmapped {
            if overlaps(c.mint, c.maxt, mint, maxt) {
                snap.mem.push((c.mint, c.maxt, c.data.clone()));
            }
        }
        snap.ooo_disk = x
            .ooo_mmapped
            .iter()
            .copied()
            .filter(|c| overlaps(c.mint, c.maxt, mint, maxt))
            .collect();
        snap.ooo_mem = x
            .ooo_buf
            .iter()
            .copied()
            .filter(|s| s.t >= mint && s.t <= maxt)
            .collect();
    }
    let empty = snap.disk.is_empty()
        && snap.mem.is_empty()
        && snap.ooo_disk.is_empty()
        && snap.ooo_mem.is_empty();
    (!empty).then_some(snap)
}

/// A head chunk read failed: I/O trouble is reported as such, anything else
/// as corruption (counted).
fn chunk_read_error(
    head: &HeadInner,
    labels: &Labels,
    e: crate::head_chunks::HeadChunksError,
) -> StorageError {
    match e {
        crate::head_chunks::HeadChunksError::Io { .. } => StorageError::Io(e.to_string()),
        e => corruption(head, labels, e),
    }
}

fn corruption(head: &HeadInner, labels: &Labels, e: impl std::fmt::Display) -> StorageError {
    head.stats.chunk_corruptions.fetch_add(1, Ordering::Relaxed);
    tracing::error!(series = %labels, "corrupt head chunk: {e}");
    StorageError::Corruption {
        location: format!(
            "head block ({}) series {labels}",
            head.chunks.dir().display()
        ),
        reason: e.to_string(),
    }
}

/// Snapshots the given series over `[mint, maxt]` (inclusive), skipping
/// those without data there. Head chunk CRCs are checked here.
pub(crate) fn snapshot(
    head: &HeadInner,
    refs: &[u64],
    mint: i64,
    maxt: i64,
) -> Result<Vec<HeadSeries>, StorageError> {
    let mut raw = Vec::with_capacity(refs.len());
    let mut i = 0;
    while i < refs.len() {
        let si = shard_of(refs[i]);
        let shard = lock(&head.shards[si]);
        while i < refs.len() && shard_of(refs[i]) == si {
            if let Some(s) = shard.series.get(&refs[i]) {
                if let Some(snap) = snap_series(refs[i], s, mint, maxt) {
                    raw.push(snap);
                }
            }
            i += 1;
        }
    }
    let stones = read(&head.tombstones);
    let syms = read(&head.symbols);
    let labels: Vec<Labels> = raw
        .iter()
        .map(|s| labels_from_syms(&syms, &s.lset))
        .collect();
    drop(syms);
    let mut out = Vec::with_capacity(raw.len());
    for (snap, labels) in raw.into_iter().zip(labels) {
        let mut chunks = Vec::with_capacity(snap.disk.len() + snap.mem.len());
        for c in &snap.disk {
            let chunk = head
                .chunks
                .chunk(c.r)
                .map_err(|e| chunk_read_error(head, &labels, e))?;
            chunks.push(SeriesChunk::Mapped {
                mint: c.mint,
                maxt: c.maxt,
                chunk,
            });
        }
        for (a, b, data) in snap.mem {
            chunks.push(SeriesChunk::Owned {
                mint: a,
                maxt: b,
                data,
            });
        }
        chunks.sort_by_key(|c| c.range().0);
        let mut ooo = snap.ooo_mem;
        for c in &snap.ooo_disk {
            let chunk = head
                .chunks
                .chunk(c.r)
                .map_err(|e| chunk_read_error(head, &labels, e))?;
            let mut it = ChunkIter::from_raw(chunk.encoding(), chunk.data())
                .map_err(|e| corruption(head, &labels, e))?;
            while let Some(s) = it.next().map_err(|e| corruption(head, &labels, e))? {
                if s.t >= mint && s.t <= maxt {
                    ooo.push(s);
                }
            }
        }
        if !ooo.is_empty() {
            ooo.sort_by_key(|s| s.t);
            ooo.dedup_by_key(|s| s.t);
        }
        out.push(HeadSeries {
            labels,
            chunks,
            ooo,
            stones: stones.get(&snap.r).cloned().unwrap_or_default(),
            mint,
            maxt,
        });
    }
    Ok(out)
}

impl Series for HeadSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn iter(&self) -> Box<dyn SampleIter + '_> {
        Box::new(HeadSeriesIter::new(self))
    }
}

/// Iterates a selected series: in-order chunks merged with out-of-order
/// samples (in-order wins a tie), deleted intervals skipped.
pub(crate) struct HeadSeriesIter<'a> {
    s: &'a HeadSeries,
    next_chunk: usize,
    cur: Option<ChunkIter<'a>>,
    /// Next in-order sample, already read.
    la: Option<Sample>,
    la_done: bool,
    ooo_pos: usize,
    /// Lower bound set by `seek`.
    min_t: i64,
    last: Option<Sample>,
}

impl<'a> HeadSeriesIter<'a> {
    pub(crate) fn new(s: &'a HeadSeries) -> Self {
        HeadSeriesIter {
            s,
            next_chunk: 0,
            cur: None,
            la: None,
            la_done: false,
            ooo_pos: 0,
            min_t: s.mint,
            last: None,
        }
    }

    fn err(&self, e: ChunkError) -> StorageError {
        StorageError::Corruption {
            location: format!("head chunk of series {}", self.s.labels),
            reason: e.to_string(),
        }
    }

    fn inorder_next(&mut self) -> Result<Option<Sample>, StorageError> {
        loop {
            if self.cur.is_none() {
                let chunks = &self.s.chunks;
                while self.next_chunk < chunks.len()
                    && chunks[self.next_chunk].range().1 < self.min_t
                {
                    self.next_chunk += 1;
                }
                let Some(c) = chunks.get(self.next_chunk) else {
                    return Ok(None);
                };
                if c.range().0 > self.s.maxt {
                    return Ok(None);
                }
                self.next_chunk += 1;
                self.cur = Some(c.iter().map_err(|e| self.err(e))?);
            }
            let Some(it) = self.cur.as_mut() else {
                continue;
            };
            match it.next() {
                Ok(Some(x)) if x.t < self.min_t => continue,
                Ok(Some(x)) if x.t > self.s.maxt => {
                    self.cur = None;
                    self.next_chunk = self.s.chunks.len();
                    return Ok(None);
                }
                Ok(Some(x)) => return Ok(Some(x)),
                Ok(None) => self.cur = None,
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    fn deleted(&self, t: i64) -> bool {
        self.s.stones.iter().any(|&(a, b)| t >= a && t <= b)
    }
}

impl SampleIter for HeadSeriesIter<'_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        loop {
            if self.la.is_none() && !self.la_done {
                self.la = self.inorder_next()?;
                self.la_done = self.la.is_none();
            }
            let o = self.s.ooo.get(self.ooo_pos).copied();
            let pick = match (self.la, o) {
                (None, None) => return Ok(None),
                (Some(a), None) => {
                    self.la = None;
                    a
                }
                (None, Some(b)) => {
                    self.ooo_pos += 1;
                    b
                }
                (Some(a), Some(b)) => {
                    if b.t < a.t {
                        self.ooo_pos += 1;
                        b
                    } else {
                        if b.t == a.t {
                            self.ooo_pos += 1;
                        }
                        self.la = None;
                        a
                    }
                }
            };
            if pick.t < self.min_t || pick.t > self.s.maxt || self.deleted(pick.t) {
                continue;
            }
            self.last = Some(pick);
            return Ok(Some(pick));
        }
    }

    /// Without out-of-order samples or tombstones (the common case), decodes
    /// chunks straight into `out`, skipping those outside the range and
    /// checking bounds only in the chunks that straddle them.
    fn collect_range(
        &mut self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        let fresh = self.last.is_none() && self.la.is_none() && self.cur.is_none();
        if !fresh || !self.s.ooo.is_empty() || !self.s.stones.is_empty() {
            return vigil_model::storage::collect_range_stepwise(self, mint, maxt, out);
        }
        let lo = mint.max(self.min_t);
        let hi = maxt.min(self.s.maxt);
        let start = out.len();
        let chunks = &self.s.chunks;
        while let Some(c) = chunks.get(self.next_chunk) {
            let (a, b) = c.range();
            if a > hi {
                break;
            }
            if b < lo {
                self.next_chunk += 1;
                continue;
            }
            let mut it = c.iter().map_err(|e| self.err(e))?;
            if a >= lo && b <= hi {
                it.drain_into(out).map_err(|e| self.err(e))?;
            } else {
                while let Some(x) = it.next().map_err(|e| self.err(e))? {
                    if x.t > hi {
                        break;
                    }
                    if x.t >= lo {
                        out.push(x);
                    }
                }
            }
            if b > hi {
                // Samples after `maxt` remain: `next` reopens this chunk.
                break;
            }
            self.next_chunk += 1;
        }
        // Everything up to `maxt` is consumed.
        self.min_t = self.min_t.max(maxt.saturating_add(1));
        self.last = out[start..].last().copied();
        Ok(())
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        if let Some(l) = self.last {
            if l.t >= t {
                return Ok(Some(l));
            }
        }
        if t > self.min_t {
            self.min_t = t;
        }
        if self.la.is_some_and(|a| a.t < t) {
            self.la = None;
        }
        let rest = &self.s.ooo[self.ooo_pos..];
        self.ooo_pos += rest.partition_point(|s| s.t < t);
        self.next()
    }
}

/// Reads the head over a fixed time range.
pub struct HeadQuerier {
    head: Arc<HeadInner>,
    mint: i64,
    maxt: i64,
}

impl HeadQuerier {
    pub(crate) fn new(head: Arc<HeadInner>, mint: i64, maxt: i64) -> Self {
        HeadQuerier { head, mint, maxt }
    }

    /// False when the head holds nothing in the querier's range.
    fn overlaps_head(&self) -> bool {
        let lo = self.head.min_time.load(Ordering::Acquire);
        let hi = self.head.max_time.load(Ordering::Acquire);
        let olo = self.head.ooo_min_time.load(Ordering::Acquire);
        let ohi = self.head.ooo_max_time.load(Ordering::Acquire);
        (lo <= hi && overlaps(lo, hi, self.mint, self.maxt))
            || (olo <= ohi && overlaps(olo, ohi, self.mint, self.maxt))
    }

    fn label_syms_of(&self, refs: &[u64], mut f: impl FnMut(&[Sym])) {
        let mut i = 0;
        while i < refs.len() {
            let si = shard_of(refs[i]);
            let shard = lock(&self.head.shards[si]);
            while i < refs.len() && shard_of(refs[i]) == si {
                if let Some(s) = shard.series.get(&refs[i]) {
                    f(&s.lset);
                }
                i += 1;
            }
        }
    }
}

impl Querier for HeadQuerier {
    fn select(
        &self,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Vec<Box<dyn Series>>, StorageError> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        let refs = postings_for_matchers(&self.head, matchers)?;
        let mut series = snapshot(&self.head, &refs, self.mint, self.maxt)?;
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(series
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn Series>)
            .collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            let postings = read(&self.head.postings);
            let syms = read(&self.head.symbols);
            let Some(n) = syms.lookup(name) else {
                return Ok(Vec::new());
            };
            let mut out: Vec<String> = postings
                .values(n)
                .filter(|(_, l)| !l.is_empty())
                .map(|(v, _)| syms.get(v).to_string())
                .collect();
            out.sort_unstable();
            return Ok(out);
        }
        let refs = postings_for_matchers(&self.head, matchers)?;
        let Some(n) = read(&self.head.symbols).lookup(name) else {
            return Ok(Vec::new());
        };
        let mut vals: BTreeSet<Sym> = BTreeSet::new();
        self.label_syms_of(&refs, |lset| {
            if let Some(p) = lset.chunks_exact(2).find(|p| p[0] == n) {
                vals.insert(p[1]);
            }
        });
        let syms = read(&self.head.symbols);
        let mut out: Vec<String> = vals.into_iter().map(|v| syms.get(v).to_string()).collect();
        out.sort_unstable();
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        let names: BTreeSet<Sym> = if matchers.is_empty() {
            read(&self.head.postings).names().collect()
        } else {
            let refs = postings_for_matchers(&self.head, matchers)?;
            let mut names = BTreeSet::new();
            self.label_syms_of(&refs, |lset| {
                names.extend(lset.chunks_exact(2).map(|p| p[0]));
            });
            names
        };
        let syms = read(&self.head.symbols);
        let mut out: Vec<String> = names.into_iter().map(|n| syms.get(n).to_string()).collect();
        out.sort_unstable();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorChunk;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Next,
        Seek(i64),
    }

    /// A series of in-order chunks cut every `cut_every` samples (value =
    /// timestamp), out-of-order samples (value = -timestamp) and stones.
    fn model_series(
        inorder: &[i64],
        cut_every: usize,
        ooo: Vec<Sample>,
        stones: Vec<(i64, i64)>,
        (mint, maxt): (i64, i64),
    ) -> HeadSeries {
        let chunks = inorder
            .chunks(cut_every)
            .map(|part| {
                let mut c = XorChunk::new();
                for &t in part {
                    c.append(t, t as f64).unwrap();
                }
                SeriesChunk::Owned {
                    mint: part[0],
                    maxt: part[part.len() - 1],
                    data: c.into_bytes().into_boxed_slice(),
                }
            })
            .collect();
        HeadSeries {
            labels: Labels::from_pairs(&[("a", "b")]),
            chunks,
            ooo,
            stones,
            mint,
            maxt,
        }
    }

    proptest! {
        /// `collect_range` (the bulk path and the general one) returns what
        /// plain iteration returns in its range.
        #[test]
        fn collect_range_matches_iteration(
            inorder in proptest::collection::btree_set(0i64..2000, 0..300),
            ooo in proptest::collection::btree_set(0i64..2000, 0..10),
            with_ooo in any::<bool>(),
            stone in proptest::option::of((0i64..2000, 0i64..100)),
            cut_every in 1usize..130,
            range in (0i64..1000, 1000i64..2100),
            q in (-10i64..2100, 0i64..2100),
            pre_seek in proptest::option::of(0i64..2100),
        ) {
            let inorder: Vec<i64> = inorder.into_iter().collect();
            let (mint, maxt) = range;
            let ooo: Vec<Sample> = if with_ooo {
                ooo.into_iter().filter(|t| *t >= mint && *t <= maxt).map(|t| Sample::new(t, -(t as f64))).collect()
            } else {
                Vec::new()
            };
            let stones: Vec<(i64, i64)> = stone.into_iter().map(|(a, d)| (a, a + d)).collect();
            let s = model_series(&inorder, cut_every, ooo, stones, range);
            let mut all = Vec::new();
            let mut it = HeadSeriesIter::new(&s);
            while let Some(x) = it.next().unwrap() {
                all.push(x);
            }
            let (qlo, qhi) = (q.0, q.0 + q.1);
            let mut it = HeadSeriesIter::new(&s);
            let from = match pre_seek {
                Some(t) => {
                    it.seek(t).unwrap();
                    t
                }
                None => i64::MIN,
            };
            let mut got = vec![Sample::new(-1, 0.0)];
            it.collect_range(qlo, qhi, &mut got).unwrap();
            let want: Vec<Sample> = all.iter().copied().filter(|x| x.t >= qlo.max(from) && x.t <= qhi).collect();
            prop_assert_eq!(&got[1..], &want[..]);
            // The bulk path leaves the iterator right after `maxt` (the
            // general one, like the trait's default, consumes one more).
            if !s.ooo.is_empty() || !s.stones.is_empty() || pre_seek.is_some() {
                return Ok(());
            }
            let mut rest = Vec::new();
            while let Some(x) = it.next().unwrap() {
                rest.push(x);
            }
            let after = got.last().filter(|_| got.len() > 1).map_or(qhi, |l| l.t.max(qhi));
            let want_rest: Vec<Sample> = all.iter().copied().filter(|x| x.t > after && x.t >= from).collect();
            prop_assert_eq!(rest, want_rest);
        }
    }

    proptest! {
        /// The series iterator against a model: in-order chunks merged with
        /// out-of-order samples (in-order wins a tie), the range and deleted
        /// intervals honoured, `seek` never going back.
        #[test]
        fn iterator_matches_model(
            inorder in proptest::collection::btree_set(0i64..2000, 0..200),
            ooo in proptest::collection::btree_set(0i64..2000, 0..40),
            cut_every in 1usize..50,
            stones in proptest::collection::vec((0i64..2000, 0i64..100), 0..3),
            range in (0i64..1000, 1000i64..2100),
            ops in proptest::collection::vec(prop_oneof![3 => Just(Op::Next), 1 => (0i64..2100).prop_map(Op::Seek)], 0..100),
        ) {
            let inorder: Vec<i64> = inorder.into_iter().collect();
            let mut chunks = Vec::new();
            for part in inorder.chunks(cut_every) {
                let mut c = XorChunk::new();
                for &t in part {
                    c.append(t, t as f64).unwrap();
                }
                chunks.push(SeriesChunk::Owned {
                    mint: part[0],
                    maxt: part[part.len() - 1],
                    data: c.into_bytes().into_boxed_slice(),
                });
            }
            let (mint, maxt) = range;
            let ooo: Vec<Sample> = ooo.into_iter().filter(|t| *t >= mint && *t <= maxt).map(|t| Sample::new(t, -(t as f64))).collect();
            let stones: Vec<(i64, i64)> = stones.into_iter().map(|(a, d)| (a, a + d)).collect();
            let s = HeadSeries {
                labels: Labels::from_pairs(&[("a", "b")]),
                chunks,
                ooo: ooo.clone(),
                stones: stones.clone(),
                mint,
                maxt,
            };
            let mut model: BTreeMap<i64, f64> = ooo.iter().map(|x| (x.t, x.v)).collect();
            for &t in &inorder {
                model.insert(t, t as f64);
            }
            let model: Vec<Sample> = model
                .into_iter()
                .filter(|&(t, _)| t >= mint && t <= maxt && !stones.iter().any(|&(a, b)| t >= a && t <= b))
                .map(|(t, v)| Sample::new(t, v))
                .collect();
            let mut it = HeadSeriesIter::new(&s);
            // Position in the model of the current sample (last returned).
            let mut pos: Option<usize> = None;
            for op in ops {
                match op {
                    Op::Next => {
                        let want_i = pos.map_or(0, |p| p + 1);
                        let got = it.next().unwrap();
                        prop_assert_eq!(got, model.get(want_i).copied());
                        if got.is_some() {
                            pos = Some(want_i);
                        } else {
                            break;
                        }
                    }
                    Op::Seek(t) => {
                        let from = pos.unwrap_or(0);
                        let want_i = if pos.is_some_and(|p| model[p].t >= t) {
                            pos
                        } else {
                            (from..model.len()).find(|&i| model[i].t >= t)
                        };
                        let got = it.seek(t).unwrap();
                        prop_assert_eq!(got, want_i.map(|i| model[i]));
                        match want_i {
                            Some(i) => pos = Some(i),
                            None => break,
                        }
                    }
                }
            }
        }
    }
}
