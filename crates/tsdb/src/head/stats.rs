//! Cardinality statistics of the head for `/api/v1/status/tsdb`: series,
//! label pairs, chunks, time range and the top-N lists Prometheus reports.
//!
//! Computed in one pass over the postings index under its read lock,
//! keeping only the current top N of each list (a bounded heap of borrowed
//! strings), so nothing proportional to the index is copied. It reads the
//! index and never changes it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering as AtomicOrdering;

use super::{read, Head};

/// The name of the metric name label (`seriesCountByMetricName`).
const METRIC_NAME: &str = "__name__";

/// One entry of a top-N list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardinalityStat {
    pub name: String,
    pub value: u64,
}

/// What `/api/v1/status/tsdb` shows about the head. Each list holds at most
/// the requested number of entries, largest value first; equal values are
/// ordered by name (Prometheus leaves that order undefined).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeadCardinality {
    pub num_series: u64,
    /// Distinct (name, value) pairs in the index.
    pub num_label_pairs: u64,
    /// `prometheus_tsdb_head_chunks`.
    pub chunk_count: u64,
    /// `i64::MAX` when the head is empty, as Prometheus reports it.
    pub min_time: i64,
    /// `i64::MIN` when the head is empty.
    pub max_time: i64,
    /// Series per metric name.
    pub series_count_by_metric_name: Vec<CardinalityStat>,
    /// Distinct values per label name.
    pub label_value_count_by_label_name: Vec<CardinalityStat>,
    /// Summed length in bytes of the distinct values of each label name
    /// (what Prometheus 2.42 reports as `memoryInBytesByLabelName`).
    pub memory_in_bytes_by_label_name: Vec<CardinalityStat>,
    /// Series per `name=value` pair.
    pub series_count_by_label_value_pair: Vec<CardinalityStat>,
}

/// A candidate for a top-N list, borrowing its strings from the symbol
/// table. Ordered so that the *worse* entry is the greater one: the heap's
/// top is then the entry to evict.
#[derive(PartialEq, Eq)]
struct Ranked<'a> {
    value: u64,
    name: &'a str,
    /// The label value of a pair; empty for the per-name lists.
    pair_value: &'a str,
}

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .value
            .cmp(&self.value)
            .then_with(|| self.name.cmp(other.name))
            .then_with(|| self.pair_value.cmp(other.pair_value))
    }
}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The best `limit` entries seen so far.
struct TopN<'a> {
    limit: usize,
    heap: BinaryHeap<Ranked<'a>>,
}

impl<'a> TopN<'a> {
    fn new(limit: usize) -> Self {
        TopN {
            limit,
            heap: BinaryHeap::new(),
        }
    }

    fn push(&mut self, r: Ranked<'a>) {
        if self.heap.len() < self.limit {
            self.heap.push(r);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if r < *worst {
                *worst = r;
            }
        }
    }

    /// Best first. `pairs`: name entries `name=value`, as Prometheus
    /// names label pairs.
    fn into_stats(self, pairs: bool) -> Vec<CardinalityStat> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| CardinalityStat {
                name: if pairs {
                    format!("{}={}", r.name, r.pair_value)
                } else {
                    r.name.to_string()
                },
                value: r.value,
            })
            .collect()
    }
}

impl Head {
    /// Head statistics with the top `limit` entries of each list (the
    /// `/api/v1/status/tsdb` data). Holds the postings read lock for one
    /// pass over the index: series creation waits meanwhile, appends to
    /// existing series do not.
    pub fn cardinality(&self, limit: usize) -> HeadCardinality {
        let inner = &self.inner;
        let mut num_label_pairs = 0u64;
        let num_series;
        // The lists own their strings before the symbol lock is released.
        let (by_metric, values_by_name, bytes_by_name, by_pair) = {
            let mut by_metric = TopN::new(limit);
            let mut values_by_name = TopN::new(limit);
            let mut bytes_by_name = TopN::new(limit);
            let mut by_pair = TopN::new(limit);
            // Lock order: postings, then symbols.
            let postings = read(&inner.postings);
            let syms = read(&inner.symbols);
            num_series = postings.all().len() as u64;
            for name_sym in postings.names() {
                let name = syms.get(name_sym);
                let mut distinct = 0u64;
                let mut bytes = 0u64;
                for (value_sym, refs) in postings.values(name_sym) {
                    let value = syms.get(value_sym);
                    let series = refs.len() as u64;
                    distinct += 1;
                    bytes += value.len() as u64;
                    if name == METRIC_NAME {
                        by_metric.push(Ranked {
                            value: series,
                            name: value,
                            pair_value: "",
                        });
                    }
                    by_pair.push(Ranked {
                        value: series,
                        name,
                        pair_value: value,
                    });
                }
                num_label_pairs += distinct;
                values_by_name.push(Ranked {
                    value: distinct,
                    name,
                    pair_value: "",
                });
                bytes_by_name.push(Ranked {
                    value: bytes,
                    name,
                    pair_value: "",
                });
            }
            (
                by_metric.into_stats(false),
                values_by_name.into_stats(false),
                bytes_by_name.into_stats(false),
                by_pair.into_stats(true),
            )
        };
        HeadCardinality {
            num_series,
            num_label_pairs,
            chunk_count: inner.stats.chunks.load(AtomicOrdering::Relaxed),
            min_time: self.min_time(),
            max_time: self.max_time(),
            series_count_by_metric_name: by_metric,
            label_value_count_by_label_name: values_by_name,
            memory_in_bytes_by_label_name: bytes_by_name,
            series_count_by_label_value_pair: by_pair,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::HeadOptions;
    use vigil_model::storage::Appendable;
    use vigil_model::Labels;

    fn stat(name: &str, value: u64) -> CardinalityStat {
        CardinalityStat {
            name: name.to_string(),
            value,
        }
    }

    fn head_with(series: &[&[(&str, &str)]]) -> (tempfile::TempDir, Head) {
        let dir = tempfile::tempdir().unwrap();
        let h = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let mut app = h.appender();
        for (i, s) in series.iter().enumerate() {
            app.append(0, &Labels::from_pairs(s), 1000 + i as i64, 1.0)
                .unwrap();
        }
        app.commit().unwrap();
        (dir, h)
    }

    #[test]
    fn counts_and_top_lists() {
        let (_d, h) = head_with(&[
            &[("__name__", "up"), ("instance", "a:1"), ("job", "node")],
            &[("__name__", "up"), ("instance", "b:22"), ("job", "node")],
            &[("__name__", "up"), ("instance", "c:333"), ("job", "api")],
            &[("__name__", "http_total"), ("code", "200"), ("job", "api")],
            &[("__name__", "http_total"), ("code", "500"), ("job", "api")],
            &[("__name__", "temp"), ("job", "node")],
        ]);
        let c = h.cardinality(10);
        assert_eq!(c.num_series, 6);
        // __name__: 3 values, instance: 3, job: 2, code: 2.
        assert_eq!(c.num_label_pairs, 10);
        assert_eq!(c.chunk_count, 6);
        assert_eq!((c.min_time, c.max_time), (1000, 1005));
        assert_eq!(
            c.series_count_by_metric_name,
            vec![stat("up", 3), stat("http_total", 2), stat("temp", 1)]
        );
        assert_eq!(
            c.label_value_count_by_label_name,
            vec![
                stat("__name__", 3),
                stat("instance", 3),
                stat("code", 2),
                stat("job", 2)
            ]
        );
        // Distinct value lengths: __name__ 2+10+4, instance 3+4+5,
        // job 4+3, code 3+3.
        assert_eq!(
            c.memory_in_bytes_by_label_name,
            vec![
                stat("__name__", 16),
                stat("instance", 12),
                stat("job", 7),
                stat("code", 6)
            ]
        );
        assert_eq!(
            c.series_count_by_label_value_pair[..4],
            [
                stat("__name__=up", 3),
                stat("job=api", 3),
                stat("job=node", 3),
                stat("__name__=http_total", 2),
            ]
        );
        assert_eq!(c.series_count_by_label_value_pair.len(), 10);
    }

    #[test]
    fn limit_keeps_the_largest_and_orders_ties_by_name() {
        let mut series: Vec<Vec<(String, String)>> = Vec::new();
        // Metric m<i> has i+1 series; m3 and m3b tie.
        for (name, n) in [("m0", 1), ("m1", 2), ("m2", 3), ("m3", 4), ("m3b", 4)] {
            for k in 0..n {
                series.push(vec![
                    ("__name__".to_string(), name.to_string()),
                    ("k".to_string(), k.to_string()),
                ]);
            }
        }
        let refs: Vec<Vec<(&str, &str)>> = series
            .iter()
            .map(|s| s.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect())
            .collect();
        let slices: Vec<&[(&str, &str)]> = refs.iter().map(|s| s.as_slice()).collect();
        let (_d, h) = head_with(&slices);
        let c = h.cardinality(3);
        assert_eq!(
            c.series_count_by_metric_name,
            vec![stat("m3", 4), stat("m3b", 4), stat("m2", 3)]
        );
        assert_eq!(c.label_value_count_by_label_name.len(), 2);
        assert_eq!(
            c.series_count_by_label_value_pair,
            vec![
                stat("k=0", 5),
                stat("__name__=m3", 4),
                stat("__name__=m3b", 4)
            ]
        );
        let none = h.cardinality(0);
        assert!(none.series_count_by_metric_name.is_empty());
        assert_eq!(none.num_series, 14);
    }

    #[test]
    fn empty_head_reports_prometheus_sentinels() {
        let dir = tempfile::tempdir().unwrap();
        let h = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let c = h.cardinality(10);
        assert_eq!(c.num_series, 0);
        assert_eq!((c.min_time, c.max_time), (i64::MAX, i64::MIN));
        assert!(c.series_count_by_label_value_pair.is_empty());
        let _ = h.appender();
    }
}
