//! The series of one head shard, by ref.
//!
//! Refs are handed out in sequence and `shard_of` gives a shard runs of 64,
//! so a shard's refs map to dense local positions: a lookup on the append
//! path is one index into a vector (no hash, no probe, one cache miss fewer
//! per sample than a hash map) and the table costs 8 bytes a series.
//! Refs that do not fit the dense run (below it once old series died, or
//! far beyond it, as a foreign or damaged WAL may hold) live in a small
//! map, so churn and odd refs can never make the vector mostly holes.

use super::index::FastMap;
use super::series::MemSeries;
use super::SHARDS;

/// How far past the dense run a ref may land and still extend it.
const MAX_GAP: usize = 1 << 16;
/// Refs in a row that `shard_of` sends to the same shard.
const RUN: u64 = 64;

#[derive(Default)]
pub(crate) struct SeriesSlots {
    /// Local position of `dense[0]`.
    base: usize,
    dense: Vec<Option<Box<MemSeries>>>,
    dense_live: usize,
    sparse: FastMap<u64, Box<MemSeries>>,
}

/// A ref's position among its shard's refs.
#[inline]
fn local(r: u64) -> usize {
    ((r / (RUN * SHARDS as u64)) * RUN + r % RUN) as usize
}

/// The ref at local position `l` of shard `shard`.
fn ref_at(shard: usize, l: usize) -> u64 {
    let l = l as u64;
    (l / RUN) * RUN * SHARDS as u64 + shard as u64 * RUN + l % RUN
}

impl SeriesSlots {
    pub(crate) fn len(&self) -> usize {
        self.dense_live + self.sparse.len()
    }

    #[inline]
    fn slot(&self, r: u64) -> Option<usize> {
        local(r)
            .checked_sub(self.base)
            .filter(|&i| i < self.dense.len())
    }

    #[inline]
    pub(crate) fn get(&self, r: &u64) -> Option<&MemSeries> {
        if let Some(s) = self.slot(*r).and_then(|i| self.dense[i].as_deref()) {
            return Some(s);
        }
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get(r).map(|b| &**b)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, r: &u64) -> Option<&mut MemSeries> {
        if let Some(i) = self.slot(*r) {
            if self.dense[i].is_some() {
                return self.dense[i].as_deref_mut();
            }
        }
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get_mut(r).map(|b| &mut **b)
    }

    /// Bytes of the table itself (not the series), for memory accounting.
    pub(crate) fn table_bytes(&self) -> usize {
        self.dense.capacity() * 8 + self.sparse.capacity() * 17
    }

    pub(crate) fn contains_key(&self, r: &u64) -> bool {
        self.get(r).is_some()
    }

    /// Adds (or replaces) the series of ref `r`.
    pub(crate) fn insert(&mut self, r: u64, s: Box<MemSeries>) {
        let l = local(r);
        if self.dense.is_empty() {
            self.base = l;
        }
        let Some(i) = l
            .checked_sub(self.base)
            .filter(|&i| i < self.dense.len() + MAX_GAP)
        else {
            self.sparse.insert(r, s);
            return;
        };
        if !self.sparse.is_empty() {
            // A ref first seen far ahead that the run has since reached.
            self.sparse.remove(&r);
        }
        if i >= self.dense.len() {
            if i >= self.dense.capacity() {
                // Grow by an eighth: the table lives as long as the head.
                let want = (i + 1 - self.dense.len()).max(self.dense.len() / 8);
                self.dense.reserve_exact(want);
            }
            self.dense.resize_with(i + 1, || None);
        }
        if self.dense[i].replace(s).is_none() {
            self.dense_live += 1;
        }
    }

    /// Every series with its ref (`shard` is this table's shard).
    pub(crate) fn iter(&self, shard: usize) -> impl Iterator<Item = (u64, &MemSeries)> + '_ {
        let base = self.base;
        self.dense
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| Some((ref_at(shard, base + i), s.as_deref()?)))
            .chain(self.sparse.iter().map(|(&r, s)| (r, &**s)))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &MemSeries> + '_ {
        self.dense
            .iter()
            .filter_map(|s| s.as_deref())
            .chain(self.sparse.values().map(|s| &**s))
    }

    /// Keeps the series `keep` accepts; then gives back room that only
    /// holes would use.
    pub(crate) fn retain(
        &mut self,
        shard: usize,
        mut keep: impl FnMut(u64, &mut MemSeries) -> bool,
    ) {
        let base = self.base;
        for (i, slot) in self.dense.iter_mut().enumerate() {
            if let Some(s) = slot {
                if !keep(ref_at(shard, base + i), s) {
                    *slot = None;
                    self.dense_live -= 1;
                }
            }
        }
        self.sparse.retain(|&r, s| keep(r, s));
        self.compact(shard);
    }

    /// Trims holes at both ends, and moves the live series of a sparse
    /// front into the map, so the vector stays at least half full.
    fn compact(&mut self, shard: usize) {
        let lead = self.dense.iter().take_while(|s| s.is_none()).count();
        self.dense.drain(..lead);
        self.base += lead;
        while self.dense.last().is_some_and(|s| s.is_none()) {
            self.dense.pop();
        }
        if self.dense_live * 2 < self.dense.len() {
            // The shortest front whose removal leaves a half-full rest.
            let mut rest_live = self.dense_live;
            let mut cut = 0;
            while cut < self.dense.len() && rest_live * 2 < self.dense.len() - cut {
                if self.dense[cut].is_some() {
                    rest_live -= 1;
                }
                cut += 1;
            }
            for (i, s) in self.dense.drain(..cut).enumerate() {
                if let Some(s) = s {
                    self.sparse.insert(ref_at(shard, self.base + i), s);
                    self.dense_live -= 1;
                }
            }
            self.base += cut;
        }
        if self.dense.capacity() > self.dense.len() + self.dense.len() / 4 + 64 {
            self.dense.shrink_to_fit();
        }
        if self.sparse.capacity() > 2 * self.sparse.len() + 64 {
            self.sparse.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn series(tag: u32) -> Box<MemSeries> {
        // The symbol list doubles as an identity for the model check.
        Box::new(MemSeries::new(vec![tag].into_boxed_slice()))
    }

    fn tag(s: &MemSeries) -> u32 {
        s.lset[0]
    }

    #[test]
    fn local_positions_round_trip() {
        for shard in [0, 1, 17, SHARDS - 1] {
            for l in [0usize, 1, 63, 64, 65, 1000, 123_456] {
                let r = ref_at(shard, l);
                assert_eq!(super::super::shard_of(r), shard);
                assert_eq!(local(r), l);
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Retain(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u64..4096).prop_map(Op::Insert),
            1 => any::<u64>().prop_map(Op::Insert),
            1 => (2u64..7).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Behaves like a map from ref to series, whatever the refs (in
        /// order, out of order, huge) and however many die.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec(op(), 1..300), shard in 0usize..SHARDS) {
            let mut t = SeriesSlots::default();
            let mut model: BTreeMap<u64, u32> = BTreeMap::new();
            let mut next_tag = 1u32;
            for o in ops {
                match o {
                    Op::Insert(x) => {
                        // A ref of this shard.
                        let r = ref_at(shard, (x % (1 << 40)) as usize);
                        t.insert(r, series(next_tag));
                        model.insert(r, next_tag);
                        next_tag += 1;
                    }
                    Op::Retain(m) => {
                        t.retain(shard, |r, s| (r + u64::from(tag(s))) % m != 0);
                        model.retain(|&r, &mut g| (r + u64::from(g)) % m != 0);
                        prop_assert!(t.dense_live * 2 >= t.dense.len(), "{} live in {}", t.dense_live, t.dense.len());
                    }
                }
                prop_assert_eq!(t.len(), model.len());
            }
            for (&r, &g) in &model {
                prop_assert_eq!(t.get(&r).map(tag), Some(g));
            }
            let mut got: Vec<(u64, u32)> = t.iter(shard).map(|(r, s)| (r, tag(s))).collect();
            got.sort();
            let want: Vec<(u64, u32)> = model.iter().map(|(&r, &g)| (r, g)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
