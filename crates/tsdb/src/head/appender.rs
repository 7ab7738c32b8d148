//! Appending to the head: samples are checked when appended (so the caller
//! gets Prometheus's per-sample errors), buffered, written to the WAL as one
//! samples record on commit, and only then applied to the series.

use super::series::{Appendable as Fit, Applied, ApplyCtx};
use super::{lock, shard_of, HeadInner, Shard};
use crate::wal::record::{self, RefSample};
use crate::wal::WalScratch;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use vigil_model::storage::{Appender, SeriesRef, StorageError};
use vigil_model::Labels;

/// A batch of samples for the head; see `vigil_model::storage::Appender`.
pub struct HeadAppender {
    head: Arc<HeadInner>,
    /// Lower bound for this batch, fixed at its first append.
    min_valid_time: Option<i64>,
    head_max_t: i64,
    pending: Vec<RefSample>,
    created_series: bool,
    wal_buf: Vec<u8>,
    scratch: WalScratch,
}

/// Buffers an appender grows to the size of its batch. A scrape makes one
/// appender per scrape, so they are pooled in the head: steady-state
/// appends then neither reallocate them nor rebuild the snappy encoder.
#[derive(Default)]
pub(crate) struct AppenderBufs {
    pending: Vec<RefSample>,
    wal_buf: Vec<u8>,
    scratch: WalScratch,
}

/// Pooled buffer sets at most (about the number of concurrent appenders).
const MAX_POOLED_BUFS: usize = 8;
/// Batches larger than this (remote write, backfill-like bursts) do not
/// pin their buffers in the pool.
const MAX_POOLED_SAMPLES: usize = 1 << 16;

impl HeadAppender {
    pub(crate) fn new(head: Arc<HeadInner>) -> Self {
        let bufs = lock(&head.appender_bufs).pop().unwrap_or_default();
        HeadAppender {
            head,
            min_valid_time: None,
            head_max_t: i64::MIN,
            pending: bufs.pending,
            created_series: false,
            wal_buf: bufs.wal_buf,
            scratch: bufs.scratch,
        }
    }

    /// Checks shared by both append paths: a full disk refuses the whole
    /// batch (not single samples), and without an out-of-order window a
    /// sample older than the head's appendable range is out of bounds.
    /// Returns the oldest valid timestamp.
    fn admit(&mut self, t: i64) -> Result<i64, StorageError> {
        self.head.disk.check()?;
        let min_valid = self.min_valid(t);
        if self.head.opts.ooo_time_window == 0 && t < min_valid {
            self.head
                .stats
                .out_of_bound_samples
                .fetch_add(1, Ordering::Relaxed);
            return Err(StorageError::OutOfBounds);
        }
        Ok(min_valid)
    }

    fn min_valid(&mut self, t: i64) -> i64 {
        if let Some(m) = self.min_valid_time {
            return m;
        }
        let h = &self.head;
        // An empty head starts at the first sample, as Prometheus's
        // initAppender does.
        if h.max_time.load(Ordering::Acquire) == i64::MIN {
            let _ = h
                .max_time
                .compare_exchange(i64::MIN, t, Ordering::AcqRel, Ordering::Acquire);
            let _ = h
                .min_time
                .compare_exchange(i64::MAX, t, Ordering::AcqRel, Ordering::Acquire);
        }
        let m = h.appendable_min_valid_time();
        self.head_max_t = h.max_time.load(Ordering::Acquire);
        self.min_valid_time = Some(m);
        m
    }

    /// Checks `(t, v)` against series `r`; `None` if there is no such series.
    fn check(
        &mut self,
        r: u64,
        t: i64,
        v: f64,
        min_valid: i64,
    ) -> Option<Result<Fit, StorageError>> {
        let window = self.head.opts.ooo_time_window;
        let mut shard = lock(&self.head.shards[shard_of(r)]);
        let s = shard.series.get_mut(&r)?;
        let res = s.appendable(t, v, self.head_max_t, min_valid, window);
        if matches!(res, Ok(Fit::InOrder | Fit::OutOfOrder)) {
            s.pending = true;
        }
        Some(res)
    }

    fn finish(
        &mut self,
        res: Result<Fit, StorageError>,
        r: u64,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, StorageError> {
        let st = &self.head.stats;
        match res {
            Ok(Fit::Duplicate) => Ok(r),
            Ok(_) => {
                self.pending.push(RefSample {
                    series_ref: r,
                    t,
                    v,
                });
                Ok(r)
            }
            Err(e) => {
                let c = match e {
                    StorageError::OutOfOrderSample => &st.out_of_order_samples,
                    StorageError::OutOfBounds => &st.out_of_bound_samples,
                    StorageError::TooOldSample => &st.too_old_samples,
                    _ => &st.duplicate_samples,
                };
                c.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Clears the pending marks of the batch's series.
    fn unmark(&mut self) {
        let mut cur: Option<(usize, MutexGuard<'_, Shard>)> = None;
        for s in &self.pending {
            let si = shard_of(s.series_ref);
            if cur.as_ref().map(|c| c.0) != Some(si) {
                // Release the old shard before taking the next: never two.
                drop(cur.take());
                cur = Some((si, lock(&self.head.shards[si])));
            }
            if let Some((_, g)) = cur.as_mut() {
                if let Some(x) = g.series.get_mut(&s.series_ref) {
                    x.pending = false;
                }
            }
        }
    }

    fn reset(&mut self) {
        self.pending.clear();
        self.min_valid_time = None;
        self.created_series = false;
    }

    /// Series records of series created in this batch sit unflushed in
    /// the WAL page; hand them to the kernel.
    fn flush_created(&mut self) -> Result<(), StorageError> {
        if self.created_series {
            if let Some(w) = &self.head.wal {
                if let Err(e) = w.flush() {
                    self.head.disk.note("writing WAL", &e);
                    return Err(StorageError::Io(format!("writing WAL: {e}")));
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self) {
        let h = &*self.head;
        let head_max_t = self.head_max_t.max(h.max_time.load(Ordering::Acquire));
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        let (mut olo, mut ohi) = (i64::MAX, i64::MIN);
        let (mut appended, mut ooo, mut dropped_ooo, mut too_old, mut created, mut missing) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let mut cur: Option<(usize, MutexGuard<'_, Shard>)> = None;
        for s in &self.pending {
            let si = shard_of(s.series_ref);
            if cur.as_ref().map(|c| c.0) != Some(si) {
                drop(cur.take());
                cur = Some((si, lock(&h.shards[si])));
            }
            let Some((_, g)) = cur.as_mut() else { continue };
            let Some(series) = g.series.get_mut(&s.series_ref) else {
                missing += 1;
                continue;
            };
            series.pending = false;
            let ctx = ApplyCtx {
                series_ref: s.series_ref,
                chunk_range: h.opts.chunk_range,
                ooo_window: h.opts.ooo_time_window,
                head_max_t,
                mapper: &h.chunks,
            };
            match series.apply(s.t, s.v, &ctx) {
                Applied::InOrder { chunk_cut } => {
                    appended += 1;
                    created += chunk_cut as u64;
                    lo = lo.min(s.t);
                    hi = hi.max(s.t);
                }
                Applied::OutOfOrder { chunk_cut } => {
                    ooo += 1;
                    created += chunk_cut as u64;
                    olo = olo.min(s.t);
                    ohi = ohi.max(s.t);
                }
                Applied::Duplicate => {}
                Applied::OutOfOrderDropped => dropped_ooo += 1,
                Applied::TooOldDropped => too_old += 1,
            }
        }
        drop(cur);
        h.update_time_range(lo, hi);
        h.update_ooo_range(olo, ohi);
        let st = &h.stats;
        st.samples_appended.fetch_add(appended, Ordering::Relaxed);
        st.ooo_samples_appended.fetch_add(ooo, Ordering::Relaxed);
        st.out_of_order_samples
            .fetch_add(dropped_ooo, Ordering::Relaxed);
        st.too_old_samples.fetch_add(too_old, Ordering::Relaxed);
        st.chunks_created.fetch_add(created, Ordering::Relaxed);
        st.chunks.fetch_add(created, Ordering::Relaxed);
        st.series_not_found.fetch_add(missing, Ordering::Relaxed);
    }
}

impl Appender for HeadAppender {
    fn append(
        &mut self,
        sref: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, StorageError> {
        let min_valid = self.admit(t)?;
        if sref != 0 {
            if let Some(res) = self.check(sref, t, v, min_valid) {
                return self.finish(res, sref, t, v);
            }
        }
        let before = self.head.stats.series_created.load(Ordering::Relaxed);
        let r = self
            .head
            .get_or_create(labels, &mut self.wal_buf, &mut self.scratch)?;
        if self.head.stats.series_created.load(Ordering::Relaxed) != before {
            self.created_series = true;
        }
        match self.check(r, t, v, min_valid) {
            Some(res) => self.finish(res, r, t, v),
            None => {
                // Removed by a truncation between lookup and check.
                self.head
                    .stats
                    .series_not_found
                    .fetch_add(1, Ordering::Relaxed);
                Err(StorageError::Io(format!(
                    "series {labels} vanished during append"
                )))
            }
        }
    }

    fn append_by_ref(
        &mut self,
        sref: SeriesRef,
        t: i64,
        v: f64,
    ) -> Option<Result<SeriesRef, StorageError>> {
        if sref == 0 {
            return None;
        }
        let min_valid = match self.admit(t) {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        let res = self.check(sref, t, v, min_valid)?;
        Some(self.finish(res, sref, t, v))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            let res = self.flush_created();
            self.reset();
            return res;
        }
        if let Some(wal) = &self.head.wal {
            record::encode_samples(&self.pending, &mut self.wal_buf);
            if let Err(e) = wal.log(&[&self.wal_buf], &mut self.scratch) {
                self.unmark();
                self.reset();
                self.head.disk.note("writing WAL", &e);
                return Err(StorageError::Io(format!("writing WAL: {e}")));
            }
        }
        self.apply();
        if self.head.chunks.take_disk_full() {
            // The samples are in the WAL and their chunks in memory; stop
            // taking more until the chunks can be written again.
            self.head
                .disk
                .enter("writing head chunks", "no space left on device");
        }
        self.reset();
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StorageError> {
        self.unmark();
        // Series are created even when their samples are rolled back; their
        // records must reach the WAL like Prometheus's do.
        let res = self.flush_created();
        self.reset();
        res
    }
}

impl Drop for HeadAppender {
    fn drop(&mut self) {
        if !self.pending.is_empty() || self.created_series {
            let _ = self.rollback();
        }
        if self.pending.capacity() <= MAX_POOLED_SAMPLES {
            let mut pool = lock(&self.head.appender_bufs);
            if pool.len() < MAX_POOLED_BUFS {
                let mut pending = std::mem::take(&mut self.pending);
                pending.clear();
                pool.push(AppenderBufs {
                    pending,
                    wal_buf: std::mem::take(&mut self.wal_buf),
                    scratch: std::mem::take(&mut self.scratch),
                });
            }
        }
    }
}
