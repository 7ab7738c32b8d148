//! Merging queriers: the union of several sources (head and blocks, or
//! overlapping blocks), series sorted and each label set once, samples of a
//! series that appears in several sources merged by timestamp with
//! duplicates dropped (the first source listed wins a tie).

use vigil_model::storage::{Querier, SampleIter, SelectHints, Series, StorageError};
use vigil_model::{Labels, Matcher, Sample};

/// Queries several queriers as one.
pub struct MergeQuerier {
    queriers: Vec<Box<dyn Querier>>,
}

impl MergeQuerier {
    pub fn new(queriers: Vec<Box<dyn Querier>>) -> Self {
        MergeQuerier { queriers }
    }
}

/// Merges lists of series, each sorted by labels, into one sorted list with
/// series of equal labels combined.
pub fn merge_series_sets(mut sets: Vec<Vec<Box<dyn Series>>>) -> Vec<Box<dyn Series>> {
    sets.retain(|s| !s.is_empty());
    match sets.len() {
        0 => return Vec::new(),
        1 => return sets.pop().unwrap_or_default(),
        _ => {}
    }
    let total: usize = sets.iter().map(Vec::len).sum();
    let mut out: Vec<Box<dyn Series>> = Vec::with_capacity(total);
    let mut iters: Vec<std::iter::Peekable<std::vec::IntoIter<Box<dyn Series>>>> =
        sets.into_iter().map(|s| s.into_iter().peekable()).collect();
    loop {
        // The smallest label set among the heads of all lists.
        let mut min: Option<&Labels> = None;
        for it in iters.iter_mut() {
            if let Some(s) = it.peek() {
                if min.is_none_or(|m| s.labels() < m) {
                    min = Some(s.labels());
                }
            }
        }
        let Some(min) = min.cloned() else { break };
        let mut parts: Vec<Box<dyn Series>> = Vec::new();
        for it in iters.iter_mut() {
            if it.peek().is_some_and(|s| *s.labels() == min) {
                if let Some(s) = it.next() {
                    parts.push(s);
                }
            }
        }
        if parts.len() == 1 {
            out.extend(parts);
        } else {
            out.push(Box::new(MergedSeries { labels: min, parts }));
        }
    }
    out
}

fn union_sorted(lists: Vec<Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = lists.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

impl Querier for MergeQuerier {
    fn select(
        &self,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Vec<Box<dyn Series>>, StorageError> {
        let sets = self
            .queriers
            .iter()
            .map(|q| q.select(hints, matchers))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(merge_series_sets(sets))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let lists = self
            .queriers
            .iter()
            .map(|q| q.label_values(name, matchers))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(union_sorted(lists))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let lists = self
            .queriers
            .iter()
            .map(|q| q.label_names(matchers))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(union_sorted(lists))
    }
}

/// One label set found in several sources.
pub struct MergedSeries {
    labels: Labels,
    parts: Vec<Box<dyn Series>>,
}

impl Series for MergedSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIter + '_> {
        Box::new(MergeIter::new(
            self.parts.iter().map(|p| p.iter()).collect(),
        ))
    }
}

/// Merges sample iterators by timestamp; on equal timestamps the earliest
/// iterator's sample is returned and the others are skipped.
pub struct MergeIter<'a> {
    iters: Vec<Box<dyn SampleIter + 'a>>,
    /// The pending sample of each iterator (None once exhausted).
    heads: Vec<Option<Sample>>,
    started: bool,
    last: Option<Sample>,
}

impl<'a> MergeIter<'a> {
    pub fn new(iters: Vec<Box<dyn SampleIter + 'a>>) -> Self {
        let n = iters.len();
        MergeIter {
            iters,
            heads: vec![None; n],
            started: false,
            last: None,
        }
    }

    fn start(&mut self) -> Result<(), StorageError> {
        if !self.started {
            self.started = true;
            for (i, it) in self.iters.iter_mut().enumerate() {
                self.heads[i] = it.next()?;
            }
        }
        Ok(())
    }

    fn pop_min(&mut self) -> Result<Option<Sample>, StorageError> {
        let mut best: Option<(usize, i64)> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(s) = h {
                if best.is_none_or(|(_, t)| s.t < t) {
                    best = Some((i, s.t));
                }
            }
        }
        let Some((bi, bt)) = best else {
            return Ok(None);
        };
        let out = self.heads[bi];
        for i in 0..self.heads.len() {
            if self.heads[i].is_some_and(|s| s.t == bt) {
                self.heads[i] = self.iters[i].next()?;
            }
        }
        Ok(out)
    }
}

impl SampleIter for MergeIter<'_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        self.start()?;
        let s = self.pop_min()?;
        if s.is_some() {
            self.last = s;
        }
        Ok(s)
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        if let Some(l) = self.last {
            if l.t >= t {
                return Ok(Some(l));
            }
        }
        if !self.started {
            self.started = true;
            for (i, it) in self.iters.iter_mut().enumerate() {
                self.heads[i] = it.seek(t)?;
            }
        } else {
            for (i, it) in self.iters.iter_mut().enumerate() {
                if self.heads[i].is_some_and(|s| s.t < t) {
                    self.heads[i] = it.seek(t)?;
                }
            }
        }
        self.next()
    }

    /// Lets every part decode its range in bulk (a block's chunks straight
    /// into `out`) instead of merging sample by sample, which cost a 24 h
    /// query over two blocks three times the decoding itself. Parts that
    /// do not overlap in time (blocks, then the head) are just concatenated.
    fn collect_range(
        &mut self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        if self.started || self.last.is_some() {
            return vigil_model::storage::collect_range_stepwise(self, mint, maxt, out);
        }
        // Every part is read to the end of the range: nothing is pending.
        self.started = true;
        let base = out.len();
        let mut segs: Vec<(usize, usize)> = Vec::with_capacity(self.iters.len());
        for it in &mut self.iters {
            let from = out.len();
            it.collect_range(mint, maxt, out)?;
            if out.len() > from {
                segs.push((from, out.len()));
            }
        }
        let disjoint = segs.windows(2).all(|w| out[w[0].1 - 1].t < out[w[1].0].t);
        if !disjoint {
            let parts: Vec<Sample> = out.drain(base..).collect();
            merge_segments(&parts, &segs, base, out);
        }
        if out.len() > base {
            self.last = out.last().copied();
        }
        Ok(())
    }
}

/// Merges time-sorted segments of `parts` (given as ranges offset by
/// `base`) into `out`; on equal timestamps the earliest segment wins.
fn merge_segments(parts: &[Sample], segs: &[(usize, usize)], base: usize, out: &mut Vec<Sample>) {
    let mut pos: Vec<usize> = segs.iter().map(|&(a, _)| a - base).collect();
    let ends: Vec<usize> = segs.iter().map(|&(_, b)| b - base).collect();
    loop {
        let mut best: Option<(usize, i64)> = None;
        for (k, &p) in pos.iter().enumerate() {
            if p < ends[k] && best.is_none_or(|(_, t)| parts[p].t < t) {
                best = Some((k, parts[p].t));
            }
        }
        let Some((bk, bt)) = best else { return };
        out.push(parts[pos[bk]]);
        for (k, p) in pos.iter_mut().enumerate() {
            if *p < ends[k] && parts[*p].t == bt {
                *p += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_model::storage::VecSeries;

    fn vs(name: &str, ts: &[(i64, f64)]) -> Box<dyn Series> {
        Box::new(VecSeries {
            labels: Labels::from_pairs(&[("__name__", name)]),
            samples: ts.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        })
    }

    #[test]
    fn merges_sets_and_samples() {
        let a = vec![vs("a", &[(1, 1.0), (3, 3.0)]), vs("c", &[(1, 1.0)])];
        let b = vec![
            vs("a", &[(2, 20.0), (3, 30.0), (4, 40.0)]),
            vs("b", &[(5, 5.0)]),
        ];
        let out = merge_series_sets(vec![a, b]);
        let names: Vec<&str> = out
            .iter()
            .map(|s| s.labels().metric_name().unwrap_or(""))
            .collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        let mut it = out[0].iter();
        let mut got = Vec::new();
        while let Some(s) = it.next().unwrap() {
            got.push((s.t, s.v));
        }
        assert_eq!(got, vec![(1, 1.0), (2, 20.0), (3, 3.0), (4, 40.0)]);
    }

    proptest! {
        #[test]
        fn merge_iter_matches_model(
            parts in proptest::collection::vec(proptest::collection::btree_set(0i64..200, 0..40), 1..4),
            seeks in proptest::collection::vec(0i64..220, 0..5),
        ) {
            let series: Vec<VecSeries> = parts.iter().enumerate().map(|(i, ts)| VecSeries {
                labels: Labels::from_pairs(&[("x", "y")]),
                samples: ts.iter().map(|&t| Sample::new(t, i as f64)).collect(),
            }).collect();
            let all: std::collections::BTreeMap<i64, f64> = parts.iter().enumerate().rev()
                .flat_map(|(i, ts)| ts.iter().map(move |&t| (t, i as f64))).collect();
            let mut it = MergeIter::new(series.iter().map(|s| s.iter()).collect());
            let mut cursor: Option<i64> = None;
            let mut ended = false;
            for t in seeks {
                let from = cursor.map_or(t, |c| t.max(c));
                let want = all.range(from..).next().map(|(&t, &v)| Sample::new(t, v));
                let got = it.seek(t).unwrap();
                prop_assert_eq!(got, want);
                match got {
                    Some(s) => cursor = Some(s.t),
                    None => { ended = true; break; }
                }
            }
            let rest: Vec<Sample> = std::iter::from_fn(|| it.next().unwrap()).collect();
            let want: Vec<Sample> = if ended {
                Vec::new()
            } else {
                all.iter()
                    .filter(|(&t, _)| cursor.is_none_or(|c| t > c))
                    .map(|(&t, &v)| Sample::new(t, v))
                    .collect()
            };
            prop_assert_eq!(rest, want);
        }

        /// Bulk collection equals the model, disjoint parts (in or out of
        /// order) and overlapping ones alike.
        #[test]
        fn merge_collect_range_matches_model(
            parts in proptest::collection::vec(proptest::collection::btree_set(0i64..200, 0..40), 1..4),
            disjoint in any::<bool>(),
            mint in 0i64..220,
            len in 0i64..250,
        ) {
            // Disjoint: shift part i into its own time slot.
            let parts: Vec<Vec<i64>> = parts.iter().enumerate()
                .map(|(i, ts)| ts.iter().map(|&t| if disjoint { t / 4 + 60 * i as i64 } else { t }).collect())
                .collect();
            let series: Vec<VecSeries> = parts.iter().enumerate().map(|(i, ts)| VecSeries {
                labels: Labels::from_pairs(&[("x", "y")]),
                samples: {
                    let mut v: Vec<Sample> = ts.iter().map(|&t| Sample::new(t, i as f64)).collect();
                    v.dedup_by_key(|s| s.t);
                    v
                },
            }).collect();
            let all: std::collections::BTreeMap<i64, f64> = parts.iter().enumerate().rev()
                .flat_map(|(i, ts)| ts.iter().map(move |&t| (t, i as f64))).collect();
            let maxt = mint + len;
            let want: Vec<Sample> = all.range(mint..=maxt).map(|(&t, &v)| Sample::new(t, v)).collect();
            let mut it = MergeIter::new(series.iter().map(|s| s.iter()).collect());
            let mut got = vec![Sample::new(-1, 0.0)];
            it.collect_range(mint, maxt, &mut got).unwrap();
            prop_assert_eq!(got[0], Sample::new(-1, 0.0));
            prop_assert_eq!(&got[1..], &want[..]);
        }
    }
}
