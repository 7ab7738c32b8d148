//! A small in-memory `Appendable` that records committed samples, for tests
//! of this crate and of its users. It follows the TSDB's per-series rules
//! that matter to scraping: an older timestamp is out of order, the same
//! timestamp with a different value is a duplicate, the same sample twice is
//! accepted silently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use vigil_model::storage::{Appendable, Appender, SeriesRef, StorageError};
use vigil_model::{is_stale_nan, Labels};

/// One committed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

impl Recorded {
    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.v)
    }
}

#[derive(Debug, Default)]
struct Inner {
    committed: Vec<Recorded>,
    refs: HashMap<Labels, SeriesRef>,
    last: HashMap<SeriesRef, (i64, u64)>,
    commits: usize,
    rollbacks: usize,
    /// Appends that came with a non-zero ref hint.
    ref_hits: usize,
    /// Whether appenders take `append_by_ref` (as the TSDB head does).
    by_ref: bool,
}

/// The storage: clone it freely, all clones share the data.
#[derive(Debug, Clone, Default)]
pub struct RecordingStorage {
    inner: Arc<Mutex<Inner>>,
}

impl RecordingStorage {
    /// A storage whose appenders need labels on every append.
    pub fn new() -> Self {
        RecordingStorage::default()
    }

    /// A storage that also appends by ref alone, as the TSDB head does.
    pub fn with_append_by_ref() -> Self {
        let s = RecordingStorage::default();
        s.lock().by_ref = true;
        s
    }

    /// Both kinds, for tests that must hold either way.
    pub fn both() -> [RecordingStorage; 2] {
        [
            RecordingStorage::new(),
            RecordingStorage::with_append_by_ref(),
        ]
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another test thread must not hide this test's data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every committed sample, in commit order.
    pub fn samples(&self) -> Vec<Recorded> {
        self.lock().committed.clone()
    }

    /// Committed samples of the series whose `__name__` is `name`.
    pub fn series_named(&self, name: &str) -> Vec<Recorded> {
        self.lock()
            .committed
            .iter()
            .filter(|r| r.labels.metric_name() == Some(name))
            .cloned()
            .collect()
    }

    /// The last committed value of the series with exactly `labels`.
    pub fn last(&self, labels: &Labels) -> Option<Recorded> {
        self.lock()
            .committed
            .iter()
            .rev()
            .find(|r| &r.labels == labels)
            .cloned()
    }

    /// The last committed value of the first series with `__name__ = name`
    /// that has every pair in `having`.
    pub fn last_matching(&self, name: &str, having: &[(&str, &str)]) -> Option<Recorded> {
        self.lock()
            .committed
            .iter()
            .rev()
            .find(|r| {
                r.labels.metric_name() == Some(name)
                    && having.iter().all(|(n, v)| r.labels.get(n) == Some(*v))
            })
            .cloned()
    }

    pub fn commits(&self) -> usize {
        self.lock().commits
    }

    pub fn rollbacks(&self) -> usize {
        self.lock().rollbacks
    }

    /// How many appends passed a non-zero series ref (cache hits).
    pub fn ref_hits(&self) -> usize {
        self.lock().ref_hits
    }

    pub fn clear(&self) {
        let mut g = self.lock();
        g.committed.clear();
    }
}

impl Appendable for RecordingStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(RecordingAppender {
            storage: self.clone(),
            pending: Vec::new(),
        })
    }
}

struct RecordingAppender {
    storage: RecordingStorage,
    pending: Vec<(SeriesRef, Recorded)>,
}

impl Appender for RecordingAppender {
    fn append(
        &mut self,
        sref: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, StorageError> {
        let mut g = self.storage.lock();
        if sref != 0 {
            g.ref_hits += 1;
        }
        let next = g.refs.len() as SeriesRef + 1;
        let r = *g.refs.entry(labels.clone()).or_insert(next);
        if sref != 0 && sref != r {
            return Err(StorageError::InvalidLabels(format!(
                "ref {sref} is not the series {labels}"
            )));
        }
        // Pending samples of this appender count as already there.
        let last = self
            .pending
            .iter()
            .rev()
            .find(|(pr, _)| *pr == r)
            .map(|(_, s)| (s.t, s.v.to_bits()))
            .or_else(|| g.last.get(&r).copied());
        if let Some((lt, lv)) = last {
            if t < lt {
                return Err(StorageError::OutOfOrderSample);
            }
            if t == lt {
                if lv == v.to_bits() {
                    return Ok(r);
                }
                return Err(StorageError::DuplicateSampleForTimestamp);
            }
        }
        drop(g);
        self.pending.push((
            r,
            Recorded {
                labels: labels.clone(),
                t,
                v,
            },
        ));
        Ok(r)
    }

    fn append_by_ref(
        &mut self,
        sref: SeriesRef,
        t: i64,
        v: f64,
    ) -> Option<Result<SeriesRef, StorageError>> {
        let labels = {
            let g = self.storage.lock();
            if !g.by_ref || sref == 0 {
                return None;
            }
            g.refs.iter().find(|(_, &r)| r == sref)?.0.clone()
        };
        Some(self.append(sref, &labels, t, v))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        let mut g = self.storage.lock();
        for (r, s) in self.pending.drain(..) {
            g.last.insert(r, (s.t, s.v.to_bits()));
            g.committed.push(s);
        }
        g.commits += 1;
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StorageError> {
        self.pending.clear();
        self.storage.lock().rollbacks += 1;
        Ok(())
    }
}
