//! An in-memory `Queryable` + `Appendable` for rule unit tests and for
//! tests of the rule manager; not for production data.
//!
//! Appends become visible on commit, out-of-order and conflicting samples
//! are rejected with the TSDB's errors, so rule evaluation sees the same
//! outcomes it would against the head.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use vigil_model::storage::{
    Appendable, Appender, Querier, Queryable, SelectHints, Series, SeriesRef, StorageError,
    VecSeries,
};
use vigil_model::{Labels, Matcher, Sample};

type SeriesMap = BTreeMap<Labels, Vec<Sample>>;

/// Shared in-memory series storage.
#[derive(Clone, Default)]
pub struct MemStorage {
    series: Arc<RwLock<SeriesMap>>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples directly (test input), keeping each series sorted.
    pub fn add(&self, labels: Labels, samples: &[Sample]) {
        let mut m = self.series.write().unwrap_or_else(|e| e.into_inner());
        let v = m.entry(labels).or_default();
        v.extend_from_slice(samples);
        v.sort_by_key(|s| s.t);
        v.dedup_by_key(|s| s.t);
    }

    /// Every series and its samples (tests inspect what rules wrote).
    pub fn dump(&self) -> Vec<(Labels, Vec<Sample>)> {
        let m = self.series.read().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(l, s)| (l.clone(), s.clone())).collect()
    }

    /// Samples of the series with exactly `labels`.
    pub fn samples(&self, labels: &Labels) -> Vec<Sample> {
        let m = self.series.read().unwrap_or_else(|e| e.into_inner());
        m.get(labels).cloned().unwrap_or_default()
    }

    /// Drops every sample after `t` (a crash losing recent data).
    pub fn truncate_after(&self, t: i64) {
        let mut m = self.series.write().unwrap_or_else(|e| e.into_inner());
        for v in m.values_mut() {
            v.retain(|s| s.t <= t);
        }
        m.retain(|_, v| !v.is_empty());
    }
}

struct MemAppender {
    store: MemStorage,
    pending: Vec<(Labels, Sample)>,
    /// Latest pending sample per series, for ordering checks.
    last: std::collections::HashMap<Labels, Sample>,
}

impl Appender for MemAppender {
    fn append(
        &mut self,
        _sref: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, StorageError> {
        if labels.is_empty() {
            return Err(StorageError::InvalidLabels("empty label set".into()));
        }
        let m = self.store.series.read().unwrap_or_else(|e| e.into_inner());
        let last = self
            .last
            .get(labels)
            .copied()
            .or_else(|| m.get(labels).and_then(|s| s.last().copied()));
        if let Some(last) = last {
            if t < last.t {
                return Err(StorageError::OutOfOrderSample);
            }
            if t == last.t {
                if last.v.to_bits() == v.to_bits() {
                    return Ok(0);
                }
                return Err(StorageError::DuplicateSampleForTimestamp);
            }
        }
        drop(m);
        self.pending.push((labels.clone(), Sample::new(t, v)));
        self.last.insert(labels.clone(), Sample::new(t, v));
        Ok(0)
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        let mut m = self.store.series.write().unwrap_or_else(|e| e.into_inner());
        self.last.clear();
        for (l, s) in self.pending.drain(..) {
            let v = m.entry(l).or_default();
            if v.last().is_none_or(|x| x.t < s.t) {
                v.push(s);
            }
        }
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StorageError> {
        self.pending.clear();
        self.last.clear();
        Ok(())
    }
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(MemAppender {
            store: self.clone(),
            pending: Vec::new(),
            last: std::collections::HashMap::new(),
        })
    }
}

struct MemQuerier {
    series: Vec<VecSeries>,
}

impl Querier for MemQuerier {
    fn select(
        &self,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Vec<Box<dyn Series>>, StorageError> {
        Ok(self
            .series
            .iter()
            .filter(|s| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .map(|s| Box::new(s.clone()) as Box<dyn Series>)
            .collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = self
            .select(None, matchers)?
            .iter()
            .filter_map(|s| s.labels().get(name).map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = self
            .select(None, matchers)?
            .iter()
            .flat_map(|s| {
                s.labels()
                    .iter()
                    .map(|l| l.name.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        let m = self.series.read().unwrap_or_else(|e| e.into_inner());
        let series = m
            .iter()
            .filter_map(|(l, s)| {
                let lo = s.partition_point(|x| x.t < mint);
                let hi = s.partition_point(|x| x.t <= maxt);
                (lo < hi).then(|| VecSeries {
                    labels: l.clone(),
                    samples: s[lo..hi].to_vec(),
                })
            })
            .collect();
        Ok(Box::new(MemQuerier { series }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_visible_after_commit_and_ordered() {
        let s = MemStorage::new();
        let l = Labels::from_pairs(&[("__name__", "m")]);
        let mut a = s.appender();
        a.append(0, &l, 10, 1.0).unwrap();
        assert!(s.samples(&l).is_empty());
        a.commit().unwrap();
        assert_eq!(s.samples(&l), vec![Sample::new(10, 1.0)]);
        let mut a = s.appender();
        assert_eq!(a.append(0, &l, 5, 1.0), Err(StorageError::OutOfOrderSample));
        assert_eq!(
            a.append(0, &l, 10, 2.0),
            Err(StorageError::DuplicateSampleForTimestamp)
        );
        assert!(a.append(0, &l, 10, 1.0).is_ok());
        let q = s.querier(0, 100).unwrap();
        assert_eq!(
            q.select(None, &[Matcher::equal("__name__", "m")])
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            q.select(None, &[Matcher::equal("__name__", "x")])
                .unwrap()
                .len(),
            0
        );
    }
}
