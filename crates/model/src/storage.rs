//! The storage interface: how data gets in (`Appender`) and out (`Querier`).
//!
//! The TSDB implements these traits; scrape, rules and the remote-write
//! receiver append through them; PromQL and the HTTP API read through them.
//! Nothing here knows about files. Timestamps are milliseconds since the epoch
//! and every time range is inclusive on both ends, as in Prometheus.

use crate::{Labels, Matcher, Sample};

/// Opaque handle to a series, returned by `Appender::append` so later appends
/// to the same series can skip the label lookup. 0 means "unknown".
pub type SeriesRef = u64;

/// Errors from storage. Append errors use Prometheus's exact messages, since
/// they surface as scrape errors and in the remote-write API.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StorageError {
    #[error("out of order sample")]
    OutOfOrderSample,
    #[error("duplicate sample for timestamp")]
    DuplicateSampleForTimestamp,
    #[error("out of bounds")]
    OutOfBounds,
    #[error("too old sample")]
    TooOldSample,
    #[error("invalid label set: {0}")]
    InvalidLabels(String),
    #[error("series limit of {limit} reached: new series rejected")]
    SeriesLimit { limit: usize },
    #[error("storage is read-only: {0}")]
    ReadOnly(String),
    #[error("data corruption in {location}: {reason}")]
    Corruption { location: String, reason: String },
    #[error("query aborted: {0}")]
    Aborted(String),
    #[error("{0}")]
    Io(String),
}

impl StorageError {
    /// True for per-sample rejections that should not fail a whole batch.
    pub fn is_sample_rejection(&self) -> bool {
        matches!(
            self,
            StorageError::OutOfOrderSample
                | StorageError::DuplicateSampleForTimestamp
                | StorageError::OutOfBounds
                | StorageError::TooOldSample
                | StorageError::SeriesLimit { .. }
        )
    }
}

/// A batch of appends that becomes visible (and durable in the WAL) only on
/// `commit`. Dropping an appender without committing rolls it back.
pub trait Appender: Send {
    /// Adds a sample. `sref` is a hint from an earlier append (or 0); the
    /// returned ref is valid for this series until the head drops it.
    fn append(
        &mut self,
        sref: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, StorageError>;

    /// Adds a sample to the series `sref` (from an earlier append) without
    /// its labels, so callers that cache refs need not keep `Labels` around.
    /// `None` when the appender does not know the ref (or cannot append
    /// without labels): the caller then uses `append`.
    fn append_by_ref(
        &mut self,
        sref: SeriesRef,
        t: i64,
        v: f64,
    ) -> Option<Result<SeriesRef, StorageError>> {
        let _ = (sref, t, v);
        None
    }

    /// Makes every sample appended so far durable and visible.
    fn commit(&mut self) -> Result<(), StorageError>;

    /// Discards every sample appended since the last commit.
    fn rollback(&mut self) -> Result<(), StorageError>;
}

/// Something that hands out appenders.
pub trait Appendable: Send + Sync {
    fn appender(&self) -> Box<dyn Appender>;
}

/// Hints that let storage prepare a select (e.g. which chunks to load).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectHints {
    /// Start and end of the data needed, milliseconds, inclusive.
    pub start: i64,
    pub end: i64,
    /// Query step in milliseconds (0 for instant queries).
    pub step: i64,
    /// The function wrapping the selector, if any (e.g. "rate").
    pub func: Option<String>,
    /// Range of a range selector in milliseconds (0 for instant selectors).
    pub range: i64,
}

/// Iterates a series' samples in ascending timestamp order.
pub trait SampleIter {
    /// The next sample, or `None` at the end.
    fn next(&mut self) -> Result<Option<Sample>, StorageError>;

    /// Moves to the first sample with timestamp >= `t` and returns it. Never
    /// moves backwards: if the current sample is already >= `t`, returns it.
    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        // Correct but linear; implementations override with chunk skipping.
        loop {
            match self.next()? {
                Some(s) if s.t >= t => return Ok(Some(s)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Appends every sample with `mint <= t <= maxt` to `out`.
    fn collect_range(
        &mut self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        collect_range_stepwise(self, mint, maxt, out)
    }
}

/// `collect_range` by seeking to `mint` and stepping: the trait's default,
/// and the fallback of iterators whose bulk path does not apply.
pub fn collect_range_stepwise<I: SampleIter + ?Sized>(
    it: &mut I,
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
) -> Result<(), StorageError> {
    let mut cur = it.seek(mint)?;
    while let Some(s) = cur {
        if s.t > maxt {
            break;
        }
        out.push(s);
        cur = it.next()?;
    }
    Ok(())
}

/// One selected series: its labels and a way to read its samples.
pub trait Series: Send + Sync {
    fn labels(&self) -> &Labels;
    /// A fresh iterator over the samples in the querier's time range.
    fn iter(&self) -> Box<dyn SampleIter + '_>;
}

/// Read access to a fixed time range of storage.
pub trait Querier: Send + Sync {
    /// Series matching every matcher that have samples in the querier's
    /// range, sorted by labels, each label set once.
    fn select(
        &self,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Vec<Box<dyn Series>>, StorageError>;

    /// Sorted distinct values of label `name` among series matching
    /// `matchers` (all series when empty).
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Sorted distinct label names among series matching `matchers`.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// Something that opens queriers over a time range.
pub trait Queryable: Send + Sync {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError>;
}

/// A series held in memory: for tests, subqueries and small results.
#[derive(Debug, Clone, PartialEq)]
pub struct VecSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

impl Series for VecSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIter + '_> {
        Box::new(SliceIter {
            samples: &self.samples,
            pos: 0,
        })
    }
}

/// Iterator over a sorted sample slice, with binary-search seek.
pub struct SliceIter<'a> {
    samples: &'a [Sample],
    pos: usize,
}

impl<'a> SliceIter<'a> {
    pub fn new(samples: &'a [Sample]) -> Self {
        SliceIter { samples, pos: 0 }
    }
}

impl SampleIter for SliceIter<'_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        let s = self.samples.get(self.pos).copied();
        if s.is_some() {
            self.pos += 1;
        }
        Ok(s)
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        // The current sample is the one last returned (pos - 1).
        if self.pos > 0 && self.samples[self.pos - 1].t >= t {
            return Ok(Some(self.samples[self.pos - 1]));
        }
        let rest = &self.samples[self.pos..];
        let idx = rest.partition_point(|s| s.t < t);
        self.pos += idx;
        self.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> VecSeries {
        VecSeries {
            labels: Labels::from_pairs(&[("__name__", "m")]),
            samples: (0..10).map(|i| Sample::new(i * 10, i as f64)).collect(),
        }
    }

    #[test]
    fn slice_iter_seek_never_goes_back() {
        let s = series();
        let mut it = s.iter();
        assert_eq!(it.seek(25).unwrap(), Some(Sample::new(30, 3.0)));
        assert_eq!(it.seek(5).unwrap(), Some(Sample::new(30, 3.0)));
        assert_eq!(it.next().unwrap(), Some(Sample::new(40, 4.0)));
        assert_eq!(it.seek(1000).unwrap(), None);
    }

    #[test]
    fn collect_range_is_inclusive() {
        let s = series();
        let mut out = Vec::new();
        s.iter().collect_range(20, 50, &mut out).unwrap();
        let ts: Vec<i64> = out.iter().map(|s| s.t).collect();
        assert_eq!(ts, vec![20, 30, 40, 50]);
    }
}
