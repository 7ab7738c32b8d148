//! The per-target scrape cache: exposition line text -> series ref and final
//! labels, staleness bookkeeping, and the target's metric metadata.
//!
//! A cache hit costs one comparison of the series text and no allocation:
//! targets expose their series in the same order every time, so the entry
//! after the previous hit is tried before hashing; the label set is neither
//! re-parsed nor re-hashed. Entries keep the head's series ref, not the
//! labels: the labels are rebuilt from the cached text (with the options
//! that made them) only when storage does not know the ref. Staleness follows Prometheus's
//! `seriesPrev`/`seriesCur` rule with per-entry stamps instead of two maps:
//! a series seen (without an explicit timestamp) in the previous append and
//! not in this one gets a staleness marker. The cache knows nothing of HTTP or
//! of the appender; `ScrapeLoop` drives it.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_model::storage::SeriesRef;
use vigil_model::Labels;

use crate::expfmt::{Escaped, Format, MetricType};

pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Counts appends, to mark what each saw. 32 bits keep a cached line small
/// and last 136 years of one-second scrapes.
pub(crate) type Stamp = u32;

/// One cached exposition line.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The storage ref of the final labels (0 until an append succeeded).
    pub sref: SeriesRef,
    /// Stamp of the last append this line appeared in.
    pub last_stamp: Stamp,
    /// Stamp of the last append it appeared in without an explicit
    /// timestamp (what staleness tracks), and the value before that.
    pub seen: Stamp,
    seen_before: Stamp,
    /// Metric relabeling dropped the series.
    pub dropped: bool,
}

/// Cached lines in the order they were first seen, with a hash index over
/// their text. Lookups try the entry after the previous hit first: for an
/// unchanged exposition that is one comparison against memory read in
/// order, instead of a hash, a probe and a comparison against a key
/// somewhere else (a third of the steady-state scrape CPU). Keys are stored
/// once, back to back in `keys` in slot order (so a scrape reads them as
/// one stream the prefetcher follows, and a key costs no allocation of its
/// own); the index holds positions only.
#[derive(Default)]
struct SeriesTable {
    keys: String,
    /// End of each slot's key in `keys` (it starts where the previous ends).
    ends: Vec<usize>,
    entries: Vec<Entry>,
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Position expected for the next lookup.
    next: usize,
}

impl std::fmt::Debug for SeriesTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesTable")
            .field("len", &self.entries.len())
            .finish()
    }
}

/// The key of slot `i` (free function so closures can borrow the parts).
#[inline]
fn slot_key<'a>(keys: &'a str, ends: &[usize], i: usize) -> &'a str {
    let from = if i == 0 { 0 } else { ends[i - 1] };
    &keys[from..ends[i]]
}

impl SeriesTable {
    fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    fn position(&mut self, key: &str) -> Option<usize> {
        let k = self.next;
        if k < self.ends.len() && slot_key(&self.keys, &self.ends, k) == key {
            self.next = k + 1;
            return Some(k);
        }
        let h = std::hash::BuildHasher::hash_one(&self.hasher, key);
        let (keys, ends) = (&self.keys, &self.ends);
        let i = *self
            .index
            .find(h, |&i| slot_key(keys, ends, i as usize) == key)? as usize;
        self.next = i + 1;
        Some(i)
    }

    #[inline]
    fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        let i = self.position(key)?;
        Some(&mut self.entries[i])
    }

    fn get_or_insert(&mut self, key: &str, entry: Entry) -> &mut Entry {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                let i = self.entries.len();
                self.push(key, entry);
                self.next = i + 1;
                i
            }
        };
        &mut self.entries[i]
    }

    fn push(&mut self, key: &str, entry: Entry) {
        let i = self.entries.len();
        // Grow by an eighth, not by doubling: the cache lives as long as its
        // target, at this size, and slack would cost on every series.
        if self.keys.capacity() - self.keys.len() < key.len() {
            self.keys.reserve_exact(key.len().max(self.keys.len() / 8));
        }
        if self.entries.len() == self.entries.capacity() {
            let more = (i / 8).max(16);
            self.entries.reserve_exact(more);
            self.ends.reserve_exact(more);
        }
        self.keys.push_str(key);
        self.ends.push(self.keys.len());
        self.entries.push(entry);
        let (keys, ends, hasher) = (&self.keys, &self.ends, &self.hasher);
        let h = std::hash::BuildHasher::hash_one(hasher, slot_key(keys, ends, i));
        self.index.insert_unique(h, i as u32, |&j| {
            std::hash::BuildHasher::hash_one(hasher, slot_key(keys, ends, j as usize))
        });
    }

    fn values(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut()
    }

    /// Keeps the entries `keep` accepts, in order.
    fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        let kept: Vec<usize> = (0..self.entries.len())
            .filter(|&i| keep(&self.entries[i]))
            .collect();
        if kept.len() == self.entries.len() {
            return;
        }
        let old = std::mem::take(self);
        self.hasher = old.hasher.clone();
        let bytes: usize = kept
            .iter()
            .map(|&i| slot_key(&old.keys, &old.ends, i).len())
            .sum();
        self.keys.reserve_exact(bytes);
        self.ends.reserve_exact(kept.len());
        self.entries.reserve_exact(kept.len());
        let mut entries: Vec<Option<Entry>> = old.entries.into_iter().map(Some).collect();
        for i in kept {
            if let Some(e) = entries[i].take() {
                self.push(slot_key(&old.keys, &old.ends, i), e);
            }
        }
    }

    fn clear(&mut self) {
        self.index.clear();
        self.next = 0;
        self.keys.clear();
        self.ends.clear();
        self.entries.clear();
    }
}

/// Metadata of one metric family as last exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    pub metric: String,
    /// `unknown` when the family had no `# TYPE`.
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

#[derive(Debug)]
struct MetaEntry {
    kind: Option<MetricType>,
    /// Help as written (escaped) and whether OpenMetrics rules decode it.
    help_raw: Option<Box<str>>,
    help_om: bool,
    unit: Option<Box<str>>,
    last_stamp: Stamp,
}

/// Successful scrapes a family's metadata outlives its last appearance
/// (Prometheus keeps it for 10).
const METADATA_KEEP: Stamp = 10;

#[derive(Debug, Default)]
pub(crate) struct ScrapeCache {
    series: SeriesTable,
    /// Incremented at the start of every append (successful or not).
    stamp: Stamp,
    /// Distinct entries seen in the current append.
    seen_now: usize,
    /// Entries marked `seen` in the current and the previous append.
    tracked_now: usize,
    tracked_prev: usize,
    /// Of `tracked_now`, how many were also seen in the previous append.
    carried: usize,
    /// Cache size after the last successful append (flush heuristic).
    last_ok_len: usize,
    last_ok_stamp: Stamp,
    metadata: FastMap<Box<str>, MetaEntry>,
    metadata_changed: bool,
    /// Series retired by a label-affecting config change (labels as the old
    /// options made them), kept one append so the ones that vanish still get
    /// staleness markers.
    retired: Vec<Retired>,
}

/// A series whose cache entry a config change dropped.
#[derive(Debug)]
pub(crate) struct Retired {
    pub sref: SeriesRef,
    pub labels: Labels,
    seen: Stamp,
}

/// What a staleness marker is written for: the ref, and how to rebuild the
/// labels when storage does not know it.
pub(crate) enum Stale<'a> {
    /// A cached line's text.
    Key(&'a str),
    /// A retired series' labels.
    Labels(&'a Labels),
}

impl ScrapeCache {
    /// Starts an append; returns its stamp.
    pub fn begin(&mut self) -> Stamp {
        self.stamp = self.stamp.wrapping_add(1);
        self.series.next = 0;
        self.seen_now = 0;
        self.tracked_prev = self.tracked_now;
        self.tracked_now = 0;
        self.carried = 0;
        self.stamp
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Caches a new line and marks it seen in this append.
    pub fn insert_seen(&mut self, key: &str, sref: SeriesRef, dropped: bool, tracked: bool) {
        let entry = Entry {
            sref,
            last_stamp: 0,
            seen: 0,
            seen_before: 0,
            dropped,
        };
        let stamp = self.stamp;
        let e = self.series.get_or_insert(key, entry);
        let mut c = Counters {
            seen_now: &mut self.seen_now,
            tracked_now: &mut self.tracked_now,
            carried: &mut self.carried,
        };
        Self::mark(stamp, &mut c, e, tracked);
    }

    /// Records that `e` appeared in this append; `tracked` when it carried no
    /// explicit timestamp (or timestamps are tracked too).
    #[inline]
    pub fn mark(stamp: Stamp, counters: &mut Counters<'_>, e: &mut Entry, tracked: bool) {
        if e.last_stamp != stamp {
            e.last_stamp = stamp;
            *counters.seen_now += 1;
        }
        if tracked && e.seen != stamp {
            if e.seen.wrapping_add(1) == stamp {
                *counters.carried += 1;
            }
            e.seen_before = e.seen;
            e.seen = stamp;
            *counters.tracked_now += 1;
        }
    }

    /// Mutable access to the counters alongside an entry lookup.
    #[inline]
    pub fn lookup(&mut self, key: &str) -> (Option<&mut Entry>, Counters<'_>, Stamp) {
        (
            self.series.get_mut(key),
            Counters {
                seen_now: &mut self.seen_now,
                tracked_now: &mut self.tracked_now,
                carried: &mut self.carried,
            },
            self.stamp,
        )
    }

    /// Undoes the staleness marks of a failed append, so it counts as an
    /// empty scrape: everything seen in the previous append goes stale.
    pub fn forget_current(&mut self) {
        let stamp = self.stamp;
        if self.tracked_now > 0 {
            for e in self.series.values_mut() {
                if e.seen == stamp {
                    e.seen = e.seen_before;
                }
            }
        }
        self.tracked_now = 0;
        self.carried = 0;
    }

    /// Calls `f` for every series seen in the previous append but not in
    /// this one.
    pub fn for_each_stale(&self, mut f: impl FnMut(SeriesRef, Stale<'_>)) {
        let prev = self.stamp.wrapping_sub(1);
        if self.carried != self.tracked_prev {
            let t = &self.series;
            for (i, e) in t.entries.iter().enumerate() {
                if e.seen == prev && prev > 0 && !e.dropped {
                    f(e.sref, Stale::Key(slot_key(&t.keys, &t.ends, i)));
                }
            }
        }
        if !self.retired.is_empty() {
            // A retired series the new options still produce has the same
            // storage ref as the live entry that produced it.
            let live: std::collections::HashSet<SeriesRef> = self
                .series
                .values()
                .filter(|e| e.seen == self.stamp && e.sref != 0)
                .map(|e| e.sref)
                .collect();
            for r in &self.retired {
                if r.seen == prev && prev > 0 && (r.sref == 0 || !live.contains(&r.sref)) {
                    f(r.sref, Stale::Labels(&r.labels));
                }
            }
        }
    }

    /// Ends an append. A successful one drops entries and metadata that did
    /// not appear in it (after a grace period for metadata).
    pub fn finish(&mut self, ok: bool) {
        self.retired.clear();
        let stamp = self.stamp;
        let flush = if ok {
            self.last_ok_stamp = stamp;
            true
        } else {
            // Varying series in failing scrapes would grow the cache forever.
            self.series.len() > self.last_ok_len * 2 + 1000
        };
        if flush {
            let keep = if ok { stamp } else { self.last_ok_stamp };
            if self.seen_now != self.series.len() || !ok {
                self.series.retain(|e| e.last_stamp == keep);
            }
            let before = self.metadata.len();
            self.metadata
                .retain(|_, m| keep.saturating_sub(m.last_stamp) <= METADATA_KEEP);
            self.metadata_changed |= before != self.metadata.len();
            self.last_ok_len = self.series.len();
        }
    }

    /// Drops every cached series (their labels would change) but keeps what
    /// staleness needs; `labels` rebuilds a line's labels with the options
    /// that cached it (`None`: dropped or no longer valid).
    pub fn retire_all(&mut self, mut labels: impl FnMut(&str) -> Option<Labels>) {
        let t = &self.series;
        let retired = t
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.dropped)
            .filter_map(|(i, e)| {
                Some(Retired {
                    sref: e.sref,
                    labels: labels(slot_key(&t.keys, &t.ends, i))?,
                    seen: e.seen,
                })
            })
            .collect();
        self.retired = retired;
        self.series.clear();
        self.carried = 0;
        self.tracked_now = 0;
    }

    // ---- metadata ----------------------------------------------------------

    fn meta(&mut self, name: &str) -> &mut MetaEntry {
        if !self.metadata.contains_key(name) {
            self.metadata_changed = true;
            self.metadata.insert(
                name.into(),
                MetaEntry {
                    kind: None,
                    help_raw: None,
                    help_om: false,
                    unit: None,
                    last_stamp: 0,
                },
            );
        }
        let stamp = self.stamp;
        let m = self
            .metadata
            .get_mut(name)
            .expect("metadata entry inserted above");
        m.last_stamp = stamp;
        m
    }

    pub fn set_type(&mut self, name: &str, kind: MetricType) {
        let m = self.meta(name);
        if m.kind != Some(kind) {
            m.kind = Some(kind);
            self.metadata_changed = true;
        }
    }

    pub fn set_help(&mut self, name: &str, text: Escaped<'_>, om: bool) {
        let m = self.meta(name);
        if m.help_raw.as_deref() != Some(text.raw()) || m.help_om != om {
            m.help_raw = Some(text.raw().into());
            m.help_om = om;
            self.metadata_changed = true;
        }
    }

    pub fn set_unit(&mut self, name: &str, unit: &str) {
        let m = self.meta(name);
        if m.unit.as_deref() != Some(unit) {
            m.unit = Some(unit.into());
            self.metadata_changed = true;
        }
    }

    /// A fresh snapshot when metadata changed since the last call.
    pub fn take_metadata_snapshot(&mut self) -> Option<Arc<Vec<MetricMetadata>>> {
        if !self.metadata_changed {
            return None;
        }
        self.metadata_changed = false;
        let mut out: Vec<MetricMetadata> = self
            .metadata
            .iter()
            .map(|(name, m)| MetricMetadata {
                metric: name.to_string(),
                kind: m.kind.unwrap_or(MetricType::Unknown),
                help: m
                    .help_raw
                    .as_deref()
                    .map(|raw| {
                        Escaped::help(
                            raw,
                            if m.help_om {
                                Format::OpenMetrics
                            } else {
                                Format::PrometheusText
                            },
                        )
                        .decode()
                        .into_owned()
                    })
                    .unwrap_or_default(),
                unit: m.unit.as_deref().unwrap_or_default().to_string(),
            })
            .collect();
        out.sort_by(|a, b| a.metric.cmp(&b.metric));
        Some(Arc::new(out))
    }
}

/// The per-append counters, borrowed separately from the series map.
pub(crate) struct Counters<'a> {
    seen_now: &'a mut usize,
    tracked_now: &'a mut usize,
    carried: &'a mut usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sref: SeriesRef) -> Entry {
        Entry {
            sref,
            last_stamp: 0,
            seen: 0,
            seen_before: 0,
            dropped: false,
        }
    }

    #[test]
    fn series_table_finds_in_and_out_of_order_and_after_retain() {
        let mut t = SeriesTable::default();
        let keys: Vec<String> = (0..100).map(|i| format!("m{{i=\"{i}\"}}")).collect();
        for (i, k) in keys.iter().enumerate() {
            t.get_or_insert(k, entry(i as u64 + 1));
        }
        // Same order, then reversed, then a duplicate insert.
        for order in [false, true] {
            t.next = 0;
            let it: Vec<usize> = if order {
                (0..100).rev().collect()
            } else {
                (0..100).collect()
            };
            for i in it {
                assert_eq!(t.get_mut(&keys[i]).map(|e| e.sref), Some(i as u64 + 1));
            }
        }
        assert!(t.get_mut("m{i=\"100\"}").is_none());
        assert_eq!(t.get_or_insert(&keys[7], entry(999)).sref, 8);
        assert_eq!(t.len(), 100);
        t.retain(|e| e.sref % 2 == 0);
        assert_eq!(t.len(), 50);
        for (i, k) in keys.iter().enumerate() {
            let want = (i % 2 == 1).then_some(i as u64 + 1);
            assert_eq!(t.get_mut(k).map(|e| e.sref), want);
        }
        // Keys sit back to back: one that is a prefix of its neighbour, or
        // empty, must not match across the boundary.
        for (j, k) in ["", "m", "m{", "mm"].iter().enumerate() {
            t.get_or_insert(k, entry(1000 + j as u64));
        }
        for (j, k) in ["", "m", "m{", "mm"].iter().enumerate() {
            t.next = 0;
            assert_eq!(t.get_mut(k).map(|e| e.sref), Some(1000 + j as u64));
        }
        assert!(t.get_mut("m{m").is_none());
        assert_eq!(t.get_mut(&keys[99]).map(|e| e.sref), Some(100));
        assert_eq!(t.len(), 54);
        t.clear();
        assert!(t.get_mut(&keys[1]).is_none());
        assert!(t.get_mut("m").is_none());
    }
}
