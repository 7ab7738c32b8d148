//! Set algebra on postings lists: sorted, duplicate-free series IDs.
//!
//! Intersection gallops through the longer list when sizes differ a lot
//! (a rare label against `__name__`), which is the common selector shape.

/// A sorted list of series IDs without duplicates.
pub type Postings = Vec<u32>;

/// First index `i >= from` with `s[i] >= x`, by exponential then binary search.
#[inline]
fn gallop<T: Ord + Copy>(s: &[T], from: usize, x: T) -> usize {
    let mut step = 1;
    let mut lo = from;
    let mut hi = from;
    while hi < s.len() && s[hi] < x {
        lo = hi + 1;
        hi += step;
        step <<= 1;
    }
    let hi = hi.min(s.len());
    lo + s[lo..hi].partition_point(|v| *v < x)
}

/// Elements in both `a` and `b`.
pub fn intersect<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.is_empty() {
        return out;
    }
    if large.len() / small.len() >= 16 {
        let mut j = 0;
        for &x in small {
            j = gallop(large, j, x);
            if j == large.len() {
                break;
            }
            if large[j] == x {
                out.push(x);
                j += 1;
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Elements in every list; empty for no lists.
pub fn intersect_many<T: Ord + Copy>(mut lists: Vec<Vec<T>>) -> Vec<T> {
    if lists.is_empty() {
        return Vec::new();
    }
    // Smallest first keeps every intermediate result small.
    lists.sort_by_key(|l| l.len());
    let mut it = lists.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for l in it {
        if acc.is_empty() {
            break;
        }
        acc = intersect(&acc, &l);
    }
    acc
}

/// Elements of `a` not in `b`.
pub fn subtract<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    let gallop_b = b.len() / a.len().max(1) >= 16;
    for &x in a {
        if gallop_b {
            j = gallop(b, j, x);
        } else {
            while j < b.len() && b[j] < x {
                j += 1;
            }
        }
        if j < b.len() && b[j] == x {
            j += 1;
        } else {
            out.push(x);
        }
    }
    out
}

/// Union of sorted lists, sorted and deduplicated.
pub fn merge_many<T: Ord + Copy>(mut lists: Vec<Vec<T>>) -> Vec<T> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists.pop().unwrap_or_default(),
        2 => {
            let b = lists.pop().unwrap_or_default();
            let a = lists.pop().unwrap_or_default();
            merge2(&a, &b)
        }
        _ => {
            // Many lists (a regex over many values): concatenating and
            // sorting beats a heap merge for the short lists this sees.
            let total: usize = lists.iter().map(Vec::len).sum();
            let mut out = Vec::with_capacity(total);
            for l in lists {
                out.extend_from_slice(&l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

fn merge2<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn set() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::btree_set(0u32..500, 0..200).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #[test]
        fn algebra_matches_btreeset(a in set(), b in set(), c in set()) {
            let sa: BTreeSet<u32> = a.iter().copied().collect();
            let sb: BTreeSet<u32> = b.iter().copied().collect();
            let sc: BTreeSet<u32> = c.iter().copied().collect();
            prop_assert_eq!(intersect(&a, &b), sa.intersection(&sb).copied().collect::<Vec<_>>());
            prop_assert_eq!(subtract(&a, &b), sa.difference(&sb).copied().collect::<Vec<_>>());
            let u: BTreeSet<u32> = sa.union(&sb).copied().collect();
            let u: Vec<u32> = u.union(&sc).copied().collect();
            prop_assert_eq!(merge_many(vec![a.clone(), b.clone(), c.clone()]), u);
            prop_assert_eq!(merge_many(vec![a.clone(), b.clone()]), sa.union(&sb).copied().collect::<Vec<_>>());
            let i3: Vec<u32> = sa.iter().filter(|x| sb.contains(x) && sc.contains(x)).copied().collect();
            prop_assert_eq!(intersect_many(vec![a, b, c]), i3);
        }
    }

    #[test]
    fn galloping_paths() {
        let large: Vec<u32> = (0..10_000).map(|x| x * 2).collect();
        let small = vec![1, 2, 4000, 19_998, 30_000];
        assert_eq!(intersect(&small, &large), vec![2, 4000, 19_998]);
        assert_eq!(intersect(&large, &small), vec![2, 4000, 19_998]);
        assert_eq!(subtract(&small, &large), vec![1, 30_000]);
    }
}
