//! One target's ingestion logic, without I/O: a scraped body (or a failed
//! scrape) in, samples, staleness markers and the `up`/`scrape_*` report out
//! through one `Appender` per scrape. The async driver that fetches bodies on
//! a schedule lives in `pool`; this part is synchronous so it can be tested
//! and benchmarked on its own.
//!
//! Rules follow Prometheus 2.53's `scrapeLoop.append`/`report`: target labels
//! attached with `exported_` conflict renaming unless `honor_labels`, then
//! `metric_relabel_configs`; limits fail the whole scrape; a failed scrape
//! appends nothing but staleness markers and the report.

use std::sync::Arc;

use vigil_model::relabel::{self, RelabelConfig};
use vigil_model::storage::{Appendable, Appender, SeriesRef, StorageError};
use vigil_model::{Label, Labels, LabelsBuilder, METRIC_NAME, STALE_NAN};

use crate::cache::{MetricMetadata, ScrapeCache, Stale};
use crate::expfmt::{Entry, Format, ParseError, Parser, SeriesLine};

/// Per-job ingestion options (`scrape_configs` entries).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoopOptions {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// 0 means no limit, for all limits.
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
}

impl LoopOptions {
    /// True when switching from `self` to `other` changes the labels a cached
    /// line maps to (so the cache must be rebuilt).
    pub fn labels_differ(&self, other: &LoopOptions) -> bool {
        self.honor_labels != other.honor_labels
            || self.metric_relabel_configs != other.metric_relabel_configs
    }
}

/// Why a scrape failed; the text is what the targets API shows as
/// `lastError`, worded as Prometheus words it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    /// Transport failures, timeouts and non-200 responses.
    #[error("{0}")]
    Http(String),
    #[error("body size limit exceeded")]
    BodySizeLimit,
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("sample limit exceeded")]
    SampleLimit,
    /// `label_limit`, `label_name_length_limit`, `label_value_length_limit`.
    #[error("{0}")]
    LabelLimit(String),
    /// A series that cannot be stored (duplicate or invalid label names,
    /// no metric name).
    #[error("{0}")]
    InvalidSample(String),
    #[error("{0}")]
    Storage(StorageError),
    /// An error the pool imposes without scraping (`target_limit`).
    #[error("{0}")]
    Forced(String),
}

/// Counts of one append, reported as `scrape_samples_scraped`,
/// `scrape_samples_post_metric_relabeling` and `scrape_series_added`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    pub scraped: usize,
    pub post_relabel: usize,
    pub series_added: usize,
}

/// What one scrape did, for the target's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeOutcome {
    pub stats: AppendStats,
    pub error: Option<ScrapeError>,
}

/// Samples the storage rejected one by one (the scrape still succeeds).
#[derive(Debug, Default)]
struct Rejected {
    out_of_order: usize,
    duplicate: usize,
    out_of_bounds: usize,
    too_old: usize,
    series_limit: usize,
}

impl Rejected {
    fn count(&mut self, e: &StorageError) {
        match e {
            StorageError::OutOfOrderSample => self.out_of_order += 1,
            StorageError::DuplicateSampleForTimestamp => self.duplicate += 1,
            StorageError::OutOfBounds => self.out_of_bounds += 1,
            StorageError::TooOldSample => self.too_old += 1,
            _ => self.series_limit += 1,
        }
    }

    fn log(&self, target: &str) {
        for (n, what) in [
            (self.out_of_order, "out-of-order samples"),
            (
                self.duplicate,
                "samples with different value but same timestamp",
            ),
            (
                self.out_of_bounds,
                "samples that are too old or are too far into the future",
            ),
            (self.too_old, "too old samples"),
            (self.series_limit, "samples over the series limit"),
        ] {
            if n > 0 {
                tracing::warn!(
                    target = target,
                    num_dropped = n,
                    "Error on ingesting {what}"
                );
            }
        }
    }
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// The ingestion state of one target: its scrape cache, its target labels
/// and the refs of its report series.
pub struct ScrapeLoop {
    cache: ScrapeCache,
    /// Labels attached to every sample (target labels without `__` ones).
    target_labels: Labels,
    opts: Arc<LoopOptions>,
    report_labels: [Labels; 5],
    report_refs: [SeriesRef; 5],
    /// Name used in logs (the scrape URL).
    name: String,
}

impl ScrapeLoop {
    /// `target_labels` are the target's final labels; the ones starting with
    /// `__` are ignored here.
    pub fn new(target_labels: &Labels, opts: Arc<LoopOptions>, name: impl Into<String>) -> Self {
        let target_labels = Labels::from_sorted(
            target_labels
                .iter()
                .filter(|l| !l.name.starts_with("__"))
                .cloned()
                .collect(),
        );
        let report_labels = REPORT_NAMES.map(|n| {
            let mut b = target_labels.builder();
            b.set(METRIC_NAME, n);
            b.build()
        });
        ScrapeLoop {
            cache: ScrapeCache::default(),
            target_labels,
            opts,
            report_labels,
            report_refs: [0; 5],
            name: name.into(),
        }
    }

    pub fn options(&self) -> &Arc<LoopOptions> {
        &self.opts
    }

    /// Switches options (config reload). The cache survives unless the
    /// change alters which labels a line maps to; staleness state survives
    /// either way.
    pub fn set_options(&mut self, opts: Arc<LoopOptions>) {
        if self.opts.labels_differ(&opts) {
            let ctx = LabelCtx::new(&self.opts, &self.target_labels);
            self.cache.retire_all(|key| ctx.key_labels(key));
        }
        self.opts = opts;
    }

    /// Number of cached exposition lines.
    pub fn cached_series(&self) -> usize {
        self.cache.len()
    }

    /// New metadata snapshot if it changed since the last call.
    pub fn take_metadata(&mut self) -> Option<Arc<Vec<MetricMetadata>>> {
        self.cache.take_metadata_snapshot()
    }

    /// Ingests the result of one scrape started at `ts` (ms) that took
    /// `duration` seconds so far, through fresh appenders from `storage`,
    /// and commits. This is the whole of Prometheus's `scrapeAndReport`
    /// after the HTTP request.
    pub fn ingest(
        &mut self,
        storage: &dyn Appendable,
        scraped: Result<(&[u8], Format), ScrapeError>,
        ts: i64,
        started: std::time::Instant,
    ) -> ScrapeOutcome {
        let mut app = storage.appender();
        let (stats, error) = match scraped {
            Ok((body, format)) => {
                let (stats, res) = self.append(app.as_mut(), body, format, ts);
                match res {
                    Ok(()) => (stats, None),
                    Err(e) => {
                        if let Err(re) = app.rollback() {
                            tracing::warn!(target = %self.name, err = %re, "Rollback failed");
                        }
                        app = storage.appender();
                        if let Err(se) = self.append_empty(app.as_mut(), ts, true) {
                            tracing::warn!(target = %self.name, err = %se, "Append failed");
                            let _ = app.rollback();
                            app = storage.appender();
                        }
                        (stats, Some(e))
                    }
                }
            }
            Err(e) => {
                if let Err(se) = self.append_empty(app.as_mut(), ts, false) {
                    tracing::warn!(target = %self.name, err = %se, "Append failed");
                    let _ = app.rollback();
                    app = storage.appender();
                }
                (AppendStats::default(), Some(e))
            }
        };
        let duration = started.elapsed().as_secs_f64();
        match self.report(app.as_mut(), ts, duration, stats, error.is_none()) {
            Ok(()) => {
                if let Err(e) = app.commit() {
                    tracing::error!(target = %self.name, err = %e, "Scrape commit failed");
                }
            }
            Err(e) => {
                tracing::warn!(target = %self.name, err = %e, "Appending scrape report failed");
                let _ = app.rollback();
            }
        }
        ScrapeOutcome { stats, error }
    }

    /// Appends every sample of `body`. On error the caller must roll back
    /// the appender and call [`ScrapeLoop::append_empty`].
    pub fn append(
        &mut self,
        app: &mut dyn Appender,
        body: &[u8],
        format: Format,
        ts: i64,
    ) -> (AppendStats, Result<(), ScrapeError>) {
        self.cache.begin();
        let mut stats = AppendStats::default();
        let mut rejected = Rejected::default();
        let mut appended = 0u64;
        let mut over_limit = false;
        let sample_limit = self.opts.sample_limit;
        let honor_ts = self.opts.honor_timestamps;
        let track_ts = self.opts.track_timestamps_staleness;
        let om = format == Format::OpenMetrics;
        let mut parser = Parser::new(body, format);
        let labeler = LabelCtx::new(&self.opts, &self.target_labels);
        let mut res: Result<(), ScrapeError> = loop {
            let s = match parser.next_entry() {
                Ok(Some(Entry::Series(s))) => s,
                Ok(Some(Entry::Type { name, kind })) => {
                    self.cache.set_type(name, kind);
                    continue;
                }
                Ok(Some(Entry::Help { name, text })) => {
                    self.cache.set_help(name, text, om);
                    continue;
                }
                Ok(Some(Entry::Unit { name, unit })) => {
                    self.cache.set_unit(name, unit);
                    continue;
                }
                Ok(Some(Entry::Comment(_))) => continue,
                Ok(None) => break Ok(()),
                Err(e) => break Err(ScrapeError::Parse(e)),
            };
            stats.scraped += 1;
            let (t, tracked) = match s.timestamp {
                Some(t) if honor_ts => (t, track_ts),
                _ => (ts, true),
            };
            let (hit, mut counters, stamp) = self.cache.lookup(s.series);
            if let Some(e) = hit {
                // Steady state: no label work, no allocation.
                ScrapeCache::mark(stamp, &mut counters, e, tracked);
                if e.dropped {
                    continue;
                }
                stats.post_relabel += 1;
                if sample_limit > 0 && appended >= sample_limit {
                    over_limit = true;
                    continue;
                }
                let res = match app.append_by_ref(e.sref, t, s.value) {
                    Some(r) => r,
                    // Storage does not know the ref: rebuild the labels.
                    None => match labeler.series_labels(&s) {
                        Ok(Some(labels)) => app.append(e.sref, &labels, t, s.value),
                        Ok(None) => continue,
                        Err(err) => break Err(err),
                    },
                };
                match res {
                    Ok(r) => {
                        e.sref = r;
                        appended += 1;
                    }
                    Err(err) if err.is_sample_rejection() => rejected.count(&err),
                    Err(err) => break Err(ScrapeError::Storage(err)),
                }
                continue;
            }
            let labels = match labeler.series_labels(&s) {
                Ok(l) => l,
                Err(e) => break Err(e),
            };
            let Some(labels) = labels else {
                self.cache.insert_seen(s.series, 0, true, tracked);
                continue;
            };
            stats.post_relabel += 1;
            let mut sref = 0;
            let mut added = false;
            if sample_limit > 0 && appended >= sample_limit {
                over_limit = true;
            } else {
                match app.append(0, &labels, t, s.value) {
                    Ok(r) => {
                        sref = r;
                        appended += 1;
                        added = true;
                    }
                    Err(err) if err.is_sample_rejection() => rejected.count(&err),
                    Err(err) => break Err(ScrapeError::Storage(err)),
                }
            }
            self.cache.insert_seen(s.series, sref, false, tracked);
            if added {
                stats.series_added += 1;
            }
        };
        if res.is_ok() && over_limit {
            res = Err(ScrapeError::SampleLimit);
        }
        if res.is_ok() {
            let mut stale_err = None;
            self.cache.for_each_stale(|sref, what| {
                if stale_err.is_some() {
                    return;
                }
                match labeler.append_stale(app, sref, what, ts) {
                    Ok(_) => {}
                    // Expected when the target went away and came back.
                    Err(StorageError::OutOfOrderSample)
                    | Err(StorageError::DuplicateSampleForTimestamp) => {}
                    Err(e) if e.is_sample_rejection() => {}
                    Err(e) => stale_err = Some(e),
                }
            });
            if let Some(e) = stale_err {
                res = Err(ScrapeError::Storage(e));
            }
        }
        rejected.log(&self.name);
        if res.is_ok() {
            self.cache.finish(true);
        }
        (stats, res)
    }

    /// Appends staleness markers for everything seen in the previous append:
    /// what a failed scrape writes. `after_failed_append` undoes the marks a
    /// failed [`ScrapeLoop::append`] made at this stamp.
    pub fn append_empty(
        &mut self,
        app: &mut dyn Appender,
        ts: i64,
        after_failed_append: bool,
    ) -> Result<(), StorageError> {
        if after_failed_append {
            self.cache.forget_current();
        } else {
            self.cache.begin();
        }
        let mut err = None;
        let labeler = self.labeler();
        self.cache.for_each_stale(|sref, what| {
            if err.is_some() {
                return;
            }
            match labeler.append_stale(app, sref, what, ts) {
                Ok(_) => {}
                Err(e) if e.is_sample_rejection() => {}
                Err(e) => err = Some(e),
            }
        });
        self.cache.finish(false);
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Appends `up` and the `scrape_*` series.
    pub fn report(
        &mut self,
        app: &mut dyn Appender,
        ts: i64,
        duration_seconds: f64,
        stats: AppendStats,
        healthy: bool,
    ) -> Result<(), StorageError> {
        let values = [
            if healthy { 1.0 } else { 0.0 },
            duration_seconds,
            stats.scraped as f64,
            stats.post_relabel as f64,
            stats.series_added as f64,
        ];
        self.append_report(app, ts, values)
    }

    /// Staleness markers for the report series (the target went away).
    pub fn report_stale(&mut self, app: &mut dyn Appender, ts: i64) -> Result<(), StorageError> {
        self.append_report(app, ts, [STALE_NAN; 5])
    }

    fn append_report(
        &mut self,
        app: &mut dyn Appender,
        ts: i64,
        values: [f64; 5],
    ) -> Result<(), StorageError> {
        for (i, v) in values.into_iter().enumerate() {
            match app.append(self.report_refs[i], &self.report_labels[i], ts, v) {
                Ok(r) => self.report_refs[i] = r,
                Err(StorageError::OutOfOrderSample)
                | Err(StorageError::DuplicateSampleForTimestamp) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn labeler(&self) -> LabelCtx<'_> {
        LabelCtx::new(&self.opts, &self.target_labels)
    }
}

/// What turns an exposition line into the labels stored: the target's labels
/// and the options (borrowed apart from the cache, which is mutated alongside).
struct LabelCtx<'a> {
    opts: &'a LoopOptions,
    target: &'a Labels,
}

impl<'a> LabelCtx<'a> {
    /// Borrows the two apart from the loop, so the cache can be mutated
    /// while labels are made.
    fn new(opts: &'a LoopOptions, target: &'a Labels) -> Self {
        LabelCtx { opts, target }
    }

    /// Labels for a cached line's text, as [`LabelCtx::series_labels`] made
    /// them (`None` when dropped or no longer valid).
    fn key_labels(&self, key: &str) -> Option<Labels> {
        let body = format!("{key} 0\n");
        match Parser::new(body.as_bytes(), Format::PrometheusText).next_entry() {
            Ok(Some(Entry::Series(s))) => self.series_labels(&s).ok().flatten(),
            _ => None,
        }
    }

    /// A staleness marker, by ref when storage knows it.
    fn append_stale(
        &self,
        app: &mut dyn Appender,
        sref: SeriesRef,
        what: Stale<'_>,
        ts: i64,
    ) -> Result<SeriesRef, StorageError> {
        if let Some(r) = app.append_by_ref(sref, ts, STALE_NAN) {
            return r;
        }
        match what {
            Stale::Labels(l) => app.append(sref, l, ts, STALE_NAN),
            Stale::Key(k) => match self.key_labels(k) {
                Some(l) => app.append(sref, &l, ts, STALE_NAN),
                None => Ok(sref),
            },
        }
    }

    /// Labels for an uncached line: parsed labels, target labels, metric
    /// relabeling, then Prometheus's validity checks and label limits.
    /// `None` when relabeling dropped the series.
    fn series_labels(&self, s: &SeriesLine<'_>) -> Result<Option<Labels>, ScrapeError> {
        let mut v: Vec<Label> = Vec::with_capacity(8 + self.target.len());
        v.push(Label::new(METRIC_NAME, s.name));
        for (name, value) in s.labels() {
            v.push(Label::new(name, value.decode()));
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(ScrapeError::InvalidSample(format!(
                "label name {} is not unique: invalid sample",
                vigil_model::gofmt::quote(&w[0].name)
            )));
        }
        v.retain(|l| !l.value.is_empty());
        let exposed = Labels::from_sorted(v);
        let mut lset = self.attach_target_labels(exposed);
        if !self.opts.metric_relabel_configs.is_empty() {
            match relabel::process_owned(lset, &self.opts.metric_relabel_configs) {
                Some(l) => lset = l,
                None => return Ok(None),
            }
        }
        if lset.is_empty() {
            return Ok(None);
        }
        let Some(name) = lset.metric_name() else {
            return Err(ScrapeError::InvalidSample(
                "missing metric name (__name__ label)".to_string(),
            ));
        };
        if !is_valid_metric_name(name)
            || !lset.iter().all(|l| relabel::is_valid_label_name(&l.name))
        {
            return Err(ScrapeError::InvalidSample(format!(
                "invalid metric name or label names: {lset}"
            )));
        }
        self.check_label_limits(&lset)?;
        Ok(Some(lset))
    }

    /// Prometheus's `mutateSampleLabels` before metric relabeling.
    fn attach_target_labels(&self, exposed: Labels) -> Labels {
        if self.target.is_empty() {
            return exposed;
        }
        let mut b = LabelsBuilder::new(exposed.clone());
        if self.opts.honor_labels {
            for l in self.target.iter() {
                if !exposed.has(&l.name) {
                    b.set(l.name.as_str(), l.value.as_str());
                }
            }
            return b.build();
        }
        let mut conflicts: Vec<(&str, &str)> = Vec::new();
        for l in self.target.iter() {
            if let Some(v) = exposed.get(&l.name) {
                conflicts.push((&l.name, v));
            }
            b.set(l.name.as_str(), l.value.as_str());
        }
        // Shorter names first, each renamed to the first free `exported_`*
        // prefix.
        conflicts.sort_by_key(|(n, _)| n.len());
        for (name, value) in conflicts {
            let mut new_name = name.to_string();
            loop {
                new_name = format!("exported_{new_name}");
                if b.get(&new_name).is_none() {
                    b.set(new_name, value);
                    break;
                }
            }
        }
        b.build()
    }

    fn check_label_limits(&self, lset: &Labels) -> Result<(), ScrapeError> {
        let o = self.opts;
        let met = truncate_runes(lset.metric_name().unwrap_or_default(), 50);
        if o.label_limit > 0 && lset.len() as u64 > o.label_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "label_limit exceeded (metric: {met}, number of labels: {}, limit: {})",
                lset.len(),
                o.label_limit
            )));
        }
        for l in lset.iter() {
            if o.label_name_length_limit > 0 && l.name.len() as u64 > o.label_name_length_limit {
                return Err(ScrapeError::LabelLimit(format!(
                    "label_name_length_limit exceeded (metric: {met}, label name: {}, length: {}, limit: {})",
                    truncate_runes(&l.name, 50),
                    l.name.len(),
                    o.label_name_length_limit
                )));
            }
            let runes = l.value.chars().count() as u64;
            if o.label_value_length_limit > 0 && runes > o.label_value_length_limit {
                return Err(ScrapeError::LabelLimit(format!(
                    "label_value_length_limit exceeded (metric: {met}, label name: {}, value: {}, length: {runes}, limit: {})",
                    truncate_runes(&l.name, 50),
                    vigil_model::gofmt::quote(truncate_runes(&l.value, 50)),
                    o.label_value_length_limit
                )));
            }
        }
        Ok(())
    }
}

/// Go's `%.Ns`: at most `n` characters.
fn truncate_runes(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

#[cfg(test)]
mod tests;
