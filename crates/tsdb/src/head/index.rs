//! In-memory index of the head: interned label strings (`Symbols`) and
//! postings (`Postings`: label name -> value -> sorted series refs).
//!
//! Strings are stored once and referred to by a `Sym` (u32) with a
//! reference count, so a series' label set costs 8 bytes per label.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// An interned string.
pub(crate) type Sym = u32;

/// Multiply-rotate hasher (FxHash style): fast for short strings and u64
/// keys; hashbrown takes bucket bits from the low end and tag bits from the
/// high end, both well mixed by the multiplication.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(26) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut it = bytes.chunks_exact(8);
        for c in &mut it {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        let r = it.remainder();
        let mut a = [0u8; 8];
        a[..r.len()].copy_from_slice(r);
        self.add(u64::from_le_bytes(a) ^ ((r.len() as u64) << 59));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits down so the low (bucket) bits see all input.
        self.0 ^ (self.0 >> 29)
    }
}

pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;
pub(crate) type FastMap<K, V> = HashMap<K, V, FastBuild>;

/// Hash of a label set given as pairs; the key of the series-by-labels map.
pub(crate) fn labels_hash<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = FastHasher(0x5bd1_e995);
    for (n, v) in pairs {
        h.write(n.as_bytes());
        h.add(0xff);
        h.write(v.as_bytes());
        h.add(0xfe);
    }
    // One more mixing round: this hash also selects the shard.
    let x = h.finish();
    (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (x >> 17)
}

/// Reference-counted string interner.
#[derive(Default)]
pub(crate) struct Symbols {
    map: FastMap<Arc<str>, Sym>,
    strs: Vec<Option<Arc<str>>>,
    counts: Vec<u32>,
    free: Vec<Sym>,
}

impl Symbols {
    pub(crate) fn lookup(&self, s: &str) -> Option<Sym> {
        self.map.get(s).copied()
    }

    /// Interns `s` and takes one reference to it.
    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.map.get(s) {
            self.counts[id as usize] += 1;
            return id;
        }
        let a: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                self.strs[id as usize] = Some(a.clone());
                self.counts[id as usize] = 1;
                id
            }
            None => {
                self.strs.push(Some(a.clone()));
                self.counts.push(1);
                (self.strs.len() - 1) as Sym
            }
        };
        self.map.insert(a, id);
        id
    }

    /// Drops one reference; the string is freed with the last one.
    pub(crate) fn release(&mut self, id: Sym) {
        let i = id as usize;
        let Some(c) = self.counts.get_mut(i) else {
            return;
        };
        if *c == 0 {
            return;
        }
        *c -= 1;
        if *c == 0 {
            if let Some(s) = self.strs[i].take() {
                self.map.remove(&*s);
            }
            self.free.push(id);
        }
    }

    /// The string of a live symbol ("" for a dead one, which callers never
    /// hold: a series keeps its symbols alive).
    #[inline]
    pub(crate) fn get(&self, id: Sym) -> &str {
        match self.strs.get(id as usize) {
            Some(Some(s)) => s,
            _ => "",
        }
    }

    /// Bytes used, roughly (for memory accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        let strings: usize = self.map.keys().map(|s| s.len() + 16).sum();
        strings + self.map.capacity() * 24 + self.strs.capacity() * 16 + self.counts.capacity() * 4
    }

    /// For every live symbol, its rank in string order (for sorting label
    /// sets by comparing integers instead of strings).
    pub(crate) fn ranks(&self) -> Vec<u32> {
        let mut live: Vec<(&str, Sym)> = self.map.iter().map(|(s, &id)| (&**s, id)).collect();
        live.sort_unstable();
        let mut ranks = vec![0u32; self.strs.len()];
        for (rank, (_, id)) in live.into_iter().enumerate() {
            ranks[id as usize] = rank as u32;
        }
        ranks
    }
}

/// Adds `r` to a sorted list (refs mostly arrive in increasing order).
fn insert_sorted(v: &mut Vec<u64>, r: u64) {
    match v.last() {
        Some(&last) if last >= r => {
            let i = v.partition_point(|&x| x < r);
            if v.get(i) != Some(&r) {
                v.insert(i, r);
            }
        }
        _ => v.push(r),
    }
}

/// Label name -> value -> sorted series refs, plus the list of all refs.
#[derive(Default)]
pub(crate) struct Postings {
    by_name: FastMap<Sym, FastMap<Sym, Vec<u64>>>,
    all: Vec<u64>,
    /// Bulk loading (WAL replay): lists are appended to unsorted and
    /// sorted once by `end_bulk`. A WAL written by many concurrent
    /// appenders (Prometheus's) holds series refs far out of order, and
    /// inserting each into the middle of lists of up to a million refs
    /// made replay spend half its time moving memory.
    bulk: bool,
}

impl Postings {
    /// Indexes series `r` with label set `lset` (name, value, name, ...).
    pub(crate) fn add(&mut self, r: u64, lset: &[Sym]) {
        let bulk = self.bulk;
        let put = |v: &mut Vec<u64>| {
            if bulk {
                v.push(r);
            } else {
                insert_sorted(v, r);
            }
        };
        for p in lset.chunks_exact(2) {
            put(self
                .by_name
                .entry(p[0])
                .or_default()
                .entry(p[1])
                .or_default());
        }
        put(&mut self.all);
    }

    /// Starts bulk loading: `add` appends without keeping lists sorted,
    /// and nothing may read the postings until `end_bulk`.
    pub(crate) fn begin_bulk(&mut self) {
        self.bulk = true;
    }

    /// Ends bulk loading: sorts (and deduplicates) every list.
    pub(crate) fn end_bulk(&mut self) {
        if !std::mem::replace(&mut self.bulk, false) {
            return;
        }
        let fix = |v: &mut Vec<u64>| {
            if !v.is_sorted() {
                v.sort_unstable();
                v.dedup();
            }
        };
        for values in self.by_name.values_mut() {
            values.values_mut().for_each(fix);
        }
        fix(&mut self.all);
    }

    /// Removes the given series (sorted refs with their label sets).
    pub(crate) fn delete(&mut self, dead: &[(u64, Box<[Sym]>)]) {
        if dead.is_empty() {
            return;
        }
        let is_dead = |r: &u64| dead.binary_search_by_key(r, |d| d.0).is_ok();
        let mut touched: Vec<(Sym, Sym)> = dead
            .iter()
            .flat_map(|(_, l)| l.chunks_exact(2).map(|p| (p[0], p[1])))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for (n, v) in touched {
            let Some(values) = self.by_name.get_mut(&n) else {
                continue;
            };
            if let Some(list) = values.get_mut(&v) {
                list.retain(|r| !is_dead(r));
                if list.is_empty() {
                    values.remove(&v);
                } else if list.capacity() > 2 * list.len() + 4 {
                    list.shrink_to_fit();
                }
            }
            if values.is_empty() {
                self.by_name.remove(&n);
            }
        }
        self.all.retain(|r| !is_dead(r));
    }

    pub(crate) fn get(&self, name: Sym, value: Sym) -> &[u64] {
        self.by_name
            .get(&name)
            .and_then(|v| v.get(&value))
            .map_or(&[], |l| l.as_slice())
    }

    /// Values of a label name and their postings.
    pub(crate) fn values(&self, name: Sym) -> impl Iterator<Item = (Sym, &[u64])> {
        self.by_name
            .get(&name)
            .into_iter()
            .flat_map(|m| m.iter().map(|(&v, l)| (v, l.as_slice())))
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = Sym> + '_ {
        self.by_name.keys().copied()
    }

    pub(crate) fn all(&self) -> &[u64] {
        &self.all
    }

    /// Bytes used, roughly.
    pub(crate) fn heap_bytes(&self) -> usize {
        let mut n = self.all.capacity() * 8 + self.by_name.capacity() * 40;
        for m in self.by_name.values() {
            n += m.capacity() * 32;
            n += m.values().map(|l| l.capacity() * 8).sum::<usize>();
        }
        n
    }
}

/// Intersection of sorted lists.
pub(crate) fn intersect(mut lists: Vec<Vec<u64>>) -> Vec<u64> {
    if lists.is_empty() {
        return Vec::new();
    }
    lists.sort_by_key(|l| l.len());
    let mut acc = lists.swap_remove(0);
    for l in &lists {
        if acc.is_empty() {
            break;
        }
        let mut j = 0;
        acc.retain(|&r| {
            // Gallop-free merge: lists are usually of similar size or the
            // smaller one is tiny.
            while j < l.len() && l[j] < r {
                j += 1;
            }
            j < l.len() && l[j] == r
        });
    }
    acc
}

/// `a` without the refs in sorted `b`.
pub(crate) fn without(a: Vec<u64>, b: &[u64]) -> Vec<u64> {
    if b.is_empty() {
        return a;
    }
    let mut j = 0;
    let mut a = a;
    a.retain(|&r| {
        while j < b.len() && b[j] < r {
            j += 1;
        }
        !(j < b.len() && b[j] == r)
    });
    a
}

/// Union of sorted lists.
pub(crate) fn union(lists: Vec<&[u64]>) -> Vec<u64> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists[0].to_vec(),
        _ => {
            let mut out: Vec<u64> = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
            for l in lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_refcount_and_reuse() {
        let mut s = Symbols::default();
        let a = s.intern("a");
        assert_eq!(s.intern("a"), a);
        let b = s.intern("b");
        s.release(a);
        assert_eq!(s.get(a), "a");
        s.release(a);
        assert_eq!(s.lookup("a"), None);
        let c = s.intern("c");
        assert_eq!(c, a, "freed ids are reused");
        assert_eq!(s.get(c), "c");
        assert_eq!(s.get(b), "b");
        let r = s.ranks();
        assert!(r[b as usize] < r[c as usize]);
    }

    #[test]
    fn postings_add_delete_and_set_ops() {
        let mut p = Postings::default();
        p.add(3, &[1, 2]);
        p.add(1, &[1, 2, 5, 6]);
        p.add(2, &[1, 3]);
        assert_eq!(p.get(1, 2), &[1, 3]);
        assert_eq!(p.all(), &[1, 2, 3]);
        // Bulk loading sorts once at the end, with the same result.
        let mut q = Postings::default();
        q.begin_bulk();
        for r in [9u64, 4, 7, 1, 8] {
            q.add(r, &[1, 2]);
        }
        q.end_bulk();
        assert_eq!(q.all(), &[1, 4, 7, 8, 9]);
        q.add(5, &[1, 2]);
        assert_eq!(q.all(), &[1, 4, 5, 7, 8, 9]);
        p.delete(&[(1, vec![1, 2, 5, 6].into_boxed_slice())]);
        assert_eq!(p.get(1, 2), &[3]);
        assert_eq!(p.get(5, 6), &[] as &[u64]);
        assert_eq!(p.names().count(), 1);
        assert_eq!(
            intersect(vec![vec![1, 2, 3, 5], vec![2, 5, 9], vec![0, 2, 5]]),
            vec![2, 5]
        );
        assert_eq!(without(vec![1, 2, 3, 4], &[2, 4, 7]), vec![1, 3]);
        assert_eq!(union(vec![&[1, 4], &[2, 4], &[]]), vec![1, 2, 4]);
    }
}
