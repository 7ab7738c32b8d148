//! Self-metrics the binary owns: the config reload gauges and the TSDB's
//! counters, exported under Prometheus's names so existing dashboards and
//! alerts (e.g. on `prometheus_config_last_reload_successful`) keep working.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vigil_rules::group::GroupMetrics;
use vigil_rules::manager::RuleManager;
use vigil_rules::notifier::Notifier;
use vigil_tsdb::db::Db;

/// One exported value. Stats of the same name must be adjacent; they form
/// one metric family with different label sets.
pub struct Stat {
    pub name: &'static str,
    pub help: &'static str,
    pub counter: bool,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

fn counter(name: &'static str, help: &'static str, v: &AtomicU64) -> Stat {
    Stat {
        name,
        help,
        counter: true,
        labels: Vec::new(),
        value: v.load(Ordering::Relaxed) as f64,
    }
}

fn gauge(name: &'static str, help: &'static str, value: f64) -> Stat {
    Stat {
        name,
        help,
        counter: false,
        labels: Vec::new(),
        value,
    }
}

impl Stat {
    fn with_label(mut self, name: &str, value: &str) -> Stat {
        self.labels.push((name.to_string(), value.to_string()));
        self
    }
}

fn f64_bits(v: &AtomicU64) -> f64 {
    f64::from_bits(v.load(Ordering::Relaxed))
}

/// Encodes a list of stats produced at scrape time by `f`.
pub struct StatsCollector<F> {
    f: F,
}

impl<F> std::fmt::Debug for StatsCollector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsCollector")
    }
}

impl<F> StatsCollector<F>
where
    F: Fn() -> Vec<Stat> + Send + Sync + 'static,
{
    pub fn new(f: F) -> Self {
        StatsCollector { f }
    }
}

impl<F> Collector for StatsCollector<F>
where
    F: Fn() -> Vec<Stat> + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = (self.f)();
        let mut i = 0;
        while i < stats.len() {
            let first = &stats[i];
            let end = stats[i..]
                .iter()
                .position(|s| s.name != first.name)
                .map_or(stats.len(), |n| i + n);
            // prometheus-client appends `_total` to counter names itself.
            let (name, kind) = if first.counter {
                (
                    first.name.strip_suffix("_total").unwrap_or(first.name),
                    MetricType::Counter,
                )
            } else {
                (first.name, MetricType::Gauge)
            };
            let mut family = encoder.encode_descriptor(name, first.help, None, kind)?;
            for s in &stats[i..end] {
                if s.labels.is_empty() {
                    if s.counter {
                        ConstCounter::new(s.value).encode(family)?;
                    } else {
                        ConstGauge::new(s.value).encode(family)?;
                    }
                    break;
                }
                let me = family.encode_family(&s.labels)?;
                if s.counter {
                    ConstCounter::new(s.value).encode(me)?;
                } else {
                    ConstGauge::new(s.value).encode(me)?;
                }
            }
            i = end;
        }
        Ok(())
    }
}

/// State of the last config reload.
#[derive(Default)]
pub struct ReloadState {
    /// 1 when the last reload succeeded.
    pub successful: AtomicU64,
    /// Unix seconds of the last successful reload (f64 bits).
    pub success_timestamp: AtomicU64,
}

impl ReloadState {
    pub fn record(&self, ok: bool) {
        self.successful.store(u64::from(ok), Ordering::Relaxed);
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.success_timestamp
                .store(now.to_bits(), Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> Vec<Stat> {
        vec![
            gauge(
                "prometheus_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
                self.successful.load(Ordering::Relaxed) as f64,
            ),
            gauge(
                "prometheus_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
                f64::from_bits(self.success_timestamp.load(Ordering::Relaxed)),
            ),
        ]
    }
}

/// The TSDB's counters and gauges under Prometheus's names.
pub fn tsdb_stats(db: &Db) -> Vec<Stat> {
    let h = db.head().stats();
    let d = db.stats();
    let mut out = vec![
        gauge("prometheus_tsdb_head_series", "Total number of series in the head block.", h.series.load(Ordering::Relaxed) as f64),
        counter("prometheus_tsdb_head_samples_appended_total", "Total number of appended samples.", &h.samples_appended),
        counter("prometheus_tsdb_head_out_of_order_samples_appended_total", "Total number of appended out-of-order samples.", &h.ooo_samples_appended),
        counter("prometheus_tsdb_out_of_order_samples_total", "Total number of out of order samples ingestion failed attempts due to out of order being disabled.", &h.out_of_order_samples),
        counter("prometheus_tsdb_out_of_bound_samples_total", "Total number of out of bound samples ingestion failed attempts.", &h.out_of_bound_samples),
        counter("prometheus_tsdb_too_old_samples_total", "Total number of out of order samples ingestion failed attempts with out-of-order support enabled, but sample outside of time window.", &h.too_old_samples),
        counter("prometheus_tsdb_head_series_created_total", "Total number of series created in the head", &h.series_created),
        counter("prometheus_tsdb_head_series_removed_total", "Total number of series removed in the head", &h.series_removed),
        counter("prometheus_tsdb_head_series_not_found_total", "Total number of requests for series that were not found.", &h.series_not_found),
        counter("vigil_tsdb_head_series_limit_rejections_total", "Appends rejected because they would create a series beyond --storage.tsdb.max-head-series.", &h.series_limit_rejections),
        gauge("prometheus_tsdb_head_chunks", "Total number of chunks in the head block.", h.chunks.load(Ordering::Relaxed) as f64),
        counter("prometheus_tsdb_head_chunks_created_total", "Total number of chunks created in the head", &h.chunks_created),
        counter("prometheus_tsdb_head_chunks_removed_total", "Total number of chunks removed in the head", &h.chunks_removed),
        counter("prometheus_tsdb_head_truncations_total", "Total number of head truncations attempted.", &h.truncations),
        counter("prometheus_tsdb_head_truncations_failed_total", "Total number of head truncations that failed.", &h.truncations_failed),
        counter("prometheus_tsdb_wal_corruptions_total", "Total number of WAL corruptions.", &h.wal_corruptions),
        counter("prometheus_tsdb_wal_truncations_total", "Total number of write log truncations attempted.", &h.wal_truncations),
        counter("prometheus_tsdb_wal_truncations_failed_total", "Total number of write log truncations that failed.", &h.wal_truncations_failed),
        counter("prometheus_tsdb_checkpoint_creations_total", "Total number of checkpoint creations attempted.", &h.checkpoint_creations),
        counter("prometheus_tsdb_checkpoint_creations_failed_total", "Total number of checkpoint creations that failed.", &h.checkpoint_creations_failed),
        counter("prometheus_tsdb_checkpoint_deletions_total", "Total number of checkpoint deletions attempted.", &h.checkpoint_deletions),
        counter("prometheus_tsdb_mmap_chunk_corruptions_total", "Total number of memory-mapped chunk corruptions.", &h.mmap_chunk_corruptions),
        gauge("prometheus_tsdb_data_replay_duration_seconds", "Time taken to replay the data on disk.", h.replay_duration_ms.load(Ordering::Relaxed) as f64 / 1000.0),
        counter("prometheus_tsdb_compactions_total", "Total number of compactions that were executed for the partition.", &d.compactions),
        counter("prometheus_tsdb_compactions_failed_total", "Total number of compactions that failed for the partition.", &d.compactions_failed),
        counter("prometheus_tsdb_compactions_triggered_total", "Total number of triggered compactions for the partition.", &d.compactions_triggered),
        counter("prometheus_tsdb_vertical_compactions_total", "Total number of compactions done on overlapping blocks.", &d.vertical_compactions),
        counter("prometheus_tsdb_reloads_total", "Number of times the database reloaded block data from disk.", &d.reloads),
        counter("prometheus_tsdb_reloads_failures_total", "Number of times the database failed to reloadBlocks block data from disk.", &d.reloads_failed),
        counter("prometheus_tsdb_time_retentions_total", "The number of times that blocks were deleted because the maximum time limit was exceeded.", &d.time_retentions),
        counter("prometheus_tsdb_size_retentions_total", "The number of times that blocks were deleted because the maximum number of bytes was exceeded.", &d.size_retentions),
        gauge("vigil_tsdb_read_only", "1 while ingestion is refused because the disk is full; it resumes by itself when space returns.", f64::from(u8::from(db.head().read_only()))),
        gauge("vigil_tsdb_quarantined_blocks", "Blocks moved to quarantine/ because they failed validation.", d.quarantined_blocks.load(Ordering::Relaxed) as f64),
        gauge("prometheus_tsdb_blocks_loaded", "Number of currently loaded data blocks", d.blocks_loaded.load(Ordering::Relaxed) as f64),
        gauge("prometheus_tsdb_storage_blocks_bytes", "The number of bytes that are currently used for local storage by all blocks.", db.size() as f64),
        Stat {
            name: "vigil_tsdb_chunk_corruptions_total",
            help: "Chunks (of blocks or of the head) whose CRC did not match or that did not decode when a query read them.",
            counter: true,
            labels: Vec::new(),
            value: (vigil_tsdb::block::chunk_corruptions_total()
                + h.chunk_corruptions.load(Ordering::Relaxed)) as f64,
        },
        gauge("prometheus_tsdb_lowest_timestamp_seconds", "Lowest timestamp value stored in the database.", db.min_time().map_or(0.0, |t| t as f64 / 1000.0)),
    ];
    if let Some(w) = db.head().wal_stats() {
        out.extend([
            counter(
                "prometheus_tsdb_wal_page_flushes_total",
                "Total number of page flushes.",
                &w.page_flushes,
            ),
            counter(
                "prometheus_tsdb_wal_completed_pages_total",
                "Total number of completed pages.",
                &w.completed_pages,
            ),
            counter(
                "prometheus_tsdb_wal_writes_failed_total",
                "Total number of WAL writes that failed.",
                &w.writes_failed,
            ),
            gauge(
                "prometheus_tsdb_wal_segment_current",
                "WAL segment index that TSDB is currently writing to.",
                w.segment_current.load(Ordering::Relaxed) as f64,
            ),
            counter(
                "prometheus_tsdb_wal_record_bytes_saved_total",
                "Total bytes saved by the optional record compression.",
                &w.bytes_saved,
            ),
        ]);
    }
    out
}

/// The rule manager's per-group metrics (`rule_group="<file>;<name>"`).
pub fn rule_stats(rules: &RuleManager) -> Vec<Stat> {
    let groups = rules.group_metrics();
    type Get = fn(&GroupMetrics) -> (f64, bool);
    let families: [(&'static str, &'static str, Get); 13] = [
        (
            "prometheus_rule_group_iterations_total",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
            |m| (m.iterations_total.load(Ordering::Relaxed) as f64, true),
        ),
        (
            "prometheus_rule_group_iterations_missed_total",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            |m| {
                (
                    m.iterations_missed_total.load(Ordering::Relaxed) as f64,
                    true,
                )
            },
        ),
        (
            "prometheus_rule_evaluations_total",
            "The total number of rule evaluations.",
            |m| (m.evaluations_total.load(Ordering::Relaxed) as f64, true),
        ),
        (
            "prometheus_rule_evaluation_failures_total",
            "The total number of rule evaluation failures.",
            |m| {
                (
                    m.evaluation_failures_total.load(Ordering::Relaxed) as f64,
                    true,
                )
            },
        ),
        (
            "prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
            |m| (f64_bits(&m.last_duration_seconds), false),
        ),
        (
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds.",
            |m| (f64_bits(&m.last_evaluation_timestamp_seconds), false),
        ),
        (
            "prometheus_rule_group_last_evaluation_samples",
            "The number of samples returned during the last rule group evaluation.",
            |m| {
                (
                    m.last_evaluation_samples.load(Ordering::Relaxed) as f64,
                    false,
                )
            },
        ),
        (
            "prometheus_rule_group_interval_seconds",
            "The interval of a rule group.",
            |m| (f64_bits(&m.interval_seconds), false),
        ),
        ("prometheus_rule_group_rules", "The number of rules.", |m| {
            (m.rules.load(Ordering::Relaxed) as f64, false)
        }),
        (
            "prometheus_rule_group_duration_seconds_sum",
            "The duration of rule group evaluations (sum).",
            |m| (f64_bits(&m.group_duration_seconds_sum), false),
        ),
        (
            "prometheus_rule_group_duration_seconds_count",
            "The duration of rule group evaluations (count).",
            |m| {
                (
                    m.group_duration_seconds_count.load(Ordering::Relaxed) as f64,
                    false,
                )
            },
        ),
        (
            "prometheus_rule_evaluation_duration_seconds_sum",
            "The duration for a rule to execute (sum).",
            |m| (f64_bits(&m.rule_duration_seconds_sum), false),
        ),
        (
            "prometheus_rule_evaluation_duration_seconds_count",
            "The duration for a rule to execute (count).",
            |m| {
                (
                    m.rule_duration_seconds_count.load(Ordering::Relaxed) as f64,
                    false,
                )
            },
        ),
    ];
    let mut out = Vec::new();
    for (name, help, get) in families {
        for (key, m) in &groups {
            let (value, counter) = get(m);
            let s = if counter {
                Stat {
                    name,
                    help,
                    counter: true,
                    labels: Vec::new(),
                    value,
                }
            } else {
                gauge(name, help, value)
            };
            out.push(s.with_label("rule_group", key));
        }
    }
    out
}

/// The notifier's metrics (`alertmanager="<url>"` where per target).
pub fn notifier_stats(n: &Notifier) -> Vec<Stat> {
    let m = &n.metrics;
    let mut out = vec![
        counter(
            "prometheus_notifications_dropped_total",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            &m.dropped_total,
        ),
        gauge(
            "prometheus_notifications_queue_capacity",
            "The capacity of the alert notifications queue.",
            m.queue_capacity.load(Ordering::Relaxed) as f64,
        ),
        gauge(
            "prometheus_notifications_queue_length",
            "The number of alert notifications in the queue.",
            m.queue_length.load(Ordering::Relaxed) as f64,
        ),
        gauge(
            "prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active.",
            m.alertmanagers_discovered.load(Ordering::Relaxed) as f64,
        ),
    ];
    let per = m.per_alertmanager();
    for (url, a) in &per {
        out.push(
            counter(
                "prometheus_notifications_sent_total",
                "Total number of alerts sent.",
                &a.sent_total,
            )
            .with_label("alertmanager", url),
        );
    }
    for (url, a) in &per {
        out.push(
            counter(
                "prometheus_notifications_errors_total",
                "Total number of errors sending alert notifications.",
                &a.errors_total,
            )
            .with_label("alertmanager", url),
        );
    }
    out
}

/// Registers the binary's collectors.
pub fn register(
    metrics: &vigil_web::WebMetrics,
    reload: Arc<ReloadState>,
    storage: crate::storage::LateStorage,
    rules: Arc<RuleManager>,
    notifier: Arc<Notifier>,
) {
    let mut reg = metrics.registry();
    reg.register_collector(Box::new(StatsCollector::new(move || {
        let mut out = reload.stats();
        if let Some(db) = storage.get() {
            out.extend(tsdb_stats(db));
        }
        out.extend(rule_stats(&rules));
        out.extend(notifier_stats(&notifier));
        out
    })));
}
