//! The narrow interfaces through which the HTTP API reaches the rest of
//! Vigil. The binary implements them over the real engine, scrape manager,
//! rule manager and TSDB; tests implement them in a few lines.
//!
//! Everything here is plain data: no HTTP, no JSON. Times are milliseconds
//! since the epoch unless a field says otherwise.

use std::time::{Instant, SystemTime};

use vigil_model::{Labels, Matcher, Sample};

// ---------------------------------------------------------------------------
// PromQL

/// Error classes of the API (`errorType`), which fix the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request is malformed (parse errors, bad parameters).
    BadData,
    /// 422: the query could not be executed.
    Execution,
    /// 503: the query ran past its deadline.
    Timeout,
    /// 503: the query was cancelled.
    Canceled,
    /// 500: a storage or server fault.
    Internal,
    /// 500 (Prometheus has no status of its own for it): e.g. the admin
    /// APIs are disabled.
    Unavailable,
    /// 404
    NotFound,
}

impl ErrorKind {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotFound => "not_found",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadData => 400,
            ErrorKind::Execution => 422,
            ErrorKind::Timeout | ErrorKind::Canceled => 503,
            ErrorKind::Internal | ErrorKind::Unavailable => 500,
            ErrorKind::NotFound => 404,
        }
    }
}

/// A failed parse or evaluation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub kind: ErrorKind,
    /// The message exactly as Prometheus prints it (for parse errors
    /// including the `line:col:` prefix, e.g. `1:5: parse error: ...`).
    pub message: String,
    /// Byte offset of the error in the query, when known (the CLI's caret).
    pub position: Option<usize>,
}

impl QueryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        QueryError {
            kind,
            message: message.into(),
            position: None,
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        QueryError::new(ErrorKind::BadData, message)
    }
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorElement {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// A query result value, one of PromQL's four types.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Vector(Vec<VectorElement>),
    Matrix(Vec<MatrixSeries>),
    Scalar { t: i64, v: f64 },
    String { t: i64, s: String },
}

impl QueryValue {
    /// `resultType` in the API.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
            QueryValue::Scalar { .. } => "scalar",
            QueryValue::String { .. } => "string",
        }
    }
}

/// Sample statistics for `stats=...` (Prometheus's `samples` section).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleStats {
    pub total_queryable_samples: i64,
    pub peak_samples: i64,
}

/// What a query returns.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub value: QueryValue,
    /// Annotations such as "PromQL info: metric might not be a counter".
    pub warnings: Vec<String>,
    pub stats: SampleStats,
}

/// Per-query options.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Abort with `ErrorKind::Timeout` after this instant.
    pub deadline: Option<Instant>,
    /// Override of the lookback delta in milliseconds.
    pub lookback_delta: Option<i64>,
}

/// The PromQL front end the API needs: parse, format, evaluate.
/// Implementations are synchronous; the API calls them off the async
/// runtime.
pub trait QueryEngine: Send + Sync {
    /// Evaluates `query` at `time` (ms).
    fn instant_query(
        &self,
        query: &str,
        time: i64,
        opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError>;

    /// Evaluates `query` from `start` to `end` every `step` (all ms).
    fn range_query(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError>;

    /// Parses `query` and prints it back prettified.
    fn format_query(&self, query: &str) -> Result<String, QueryError>;

    /// Parses a series selector (`match[]`): `up{job="x"}` or `{job="x"}`.
    fn parse_metric_selector(&self, selector: &str) -> Result<Vec<Matcher>, QueryError>;

    /// The matchers of every vector selector in `query` (for exemplars).
    fn selectors(&self, query: &str) -> Result<Vec<Vec<Matcher>>, QueryError>;
}

// ---------------------------------------------------------------------------
// Exemplars

/// One stored exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    pub t: i64,
}

/// The exemplars of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    pub series_labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// Storage of exemplars kept from scrapes.
pub trait ExemplarSource: Send + Sync {
    fn select(
        &self,
        start: i64,
        end: i64,
        selectors: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, String>;
}

// ---------------------------------------------------------------------------
// Targets and metadata

/// Health of a target's last scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    Up,
    Down,
    Unknown,
}

impl TargetHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
            TargetHealth::Unknown => "unknown",
        }
    }
}

/// A target being scraped.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTarget {
    pub discovered_labels: Labels,
    pub labels: Labels,
    pub scrape_pool: String,
    pub scrape_url: String,
    /// The URL as reachable from outside (Prometheus rewrites localhost
    /// targets with the external URL); the scrape URL when unknown.
    pub global_url: String,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    /// Seconds.
    pub last_scrape_duration: f64,
    pub health: TargetHealth,
    /// As configured, e.g. "15s".
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

/// A target dropped by relabelling.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
    pub scrape_pool: String,
}

/// Metadata of one metric family as exposed by a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricMetadata {
    pub metric: String,
    /// "counter", "gauge", "histogram", "summary", "info", "stateset",
    /// "gaugehistogram" or "unknown".
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// Scrape state, from the scrape manager.
pub trait TargetsSource: Send + Sync {
    fn active_targets(&self) -> Vec<ActiveTarget>;
    fn dropped_targets(&self) -> Vec<DroppedTarget>;
    /// Metadata of the metrics the target exposed in its last scrape,
    /// keyed by the target's labels.
    fn target_metadata(&self) -> Vec<(Labels, Vec<MetricMetadata>)>;
}

// ---------------------------------------------------------------------------
// Rules and alerts

/// One alert of an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    /// "pending" or "firing".
    pub state: String,
    pub active_at: Option<SystemTime>,
    pub keep_firing_since: Option<SystemTime>,
    pub value: f64,
}

/// An alerting rule and its alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRule {
    /// "inactive", "pending" or "firing".
    pub state: String,
    pub name: String,
    pub query: String,
    /// `for`, seconds.
    pub duration: f64,
    /// `keep_firing_for`, seconds.
    pub keep_firing_for: f64,
    pub labels: Labels,
    pub annotations: Labels,
    pub alerts: Vec<Alert>,
    /// "ok", "err" or "unknown".
    pub health: String,
    pub last_error: String,
    /// Seconds.
    pub evaluation_time: f64,
    pub last_evaluation: Option<SystemTime>,
}

/// A recording rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    pub name: String,
    pub query: String,
    pub labels: Labels,
    pub health: String,
    pub last_error: String,
    pub evaluation_time: f64,
    pub last_evaluation: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Alerting(AlertingRule),
    Recording(RecordingRule),
}

/// A rule group in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub rules: Vec<Rule>,
    /// Seconds.
    pub interval: f64,
    pub limit: i64,
    pub evaluation_time: f64,
    pub last_evaluation: Option<SystemTime>,
}

/// The rule manager's state.
pub trait RulesSource: Send + Sync {
    fn rule_groups(&self) -> Vec<RuleGroup>;
}

/// The notifier's Alertmanager URLs: (active, dropped).
pub trait AlertmanagersSource: Send + Sync {
    fn alertmanagers(&self) -> (Vec<String>, Vec<String>);
}

// ---------------------------------------------------------------------------
// TSDB status and administration

/// One cardinality statistic.
#[derive(Debug, Clone, PartialEq)]
pub struct TsdbStat {
    pub name: String,
    pub value: u64,
}

/// Head statistics for `/api/v1/status/tsdb`. Each list is the top N
/// (N is passed to `TsdbAdmin::stats`), largest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TsdbStats {
    pub num_series: u64,
    pub num_label_pairs: i64,
    pub chunk_count: i64,
    pub min_time: i64,
    pub max_time: i64,
    pub series_count_by_metric_name: Vec<TsdbStat>,
    pub label_value_count_by_label_name: Vec<TsdbStat>,
    pub memory_in_bytes_by_label_name: Vec<TsdbStat>,
    pub series_count_by_label_value_pair: Vec<TsdbStat>,
}

/// Progress of the WAL replay (segment numbers).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WalReplayStatus {
    pub min: i64,
    pub max: i64,
    pub current: i64,
}

/// What the TSDB offers the API beyond queries.
pub trait TsdbAdmin: Send + Sync {
    /// Tombstones every sample in `[mint, maxt]` of series matching `matchers`.
    fn delete_series(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<(), String>;
    fn clean_tombstones(&self) -> Result<(), String>;
    /// Writes a snapshot of all blocks (and the head when `with_head`) into
    /// `dir`, which exists and is empty.
    fn snapshot(&self, dir: &std::path::Path, with_head: bool) -> Result<(), String>;
    /// Head statistics with the top `limit` entries of each list.
    fn stats(&self, limit: usize) -> Result<TsdbStats, String>;
    fn wal_replay_status(&self) -> WalReplayStatus;
}

// ---------------------------------------------------------------------------
// Config, runtime, lifecycle

/// The loaded configuration, as YAML (`Config::to_yaml`).
pub trait ConfigSource: Send + Sync {
    fn config_yaml(&self) -> String;
}

/// Runtime facts only the binary knows, for `/api/v1/status/runtimeinfo`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeStatus {
    pub reload_config_success: bool,
    pub last_config_time: Option<SystemTime>,
    pub corruption_count: i64,
    /// E.g. "15d" or "15d or 512MiB".
    pub storage_retention: String,
}

pub trait RuntimeSource: Send + Sync {
    fn runtime_status(&self) -> RuntimeStatus;
}

/// Reload and shutdown requests from `/-/reload` and `/-/quit`.
pub trait Lifecycle: Send + Sync {
    /// Reloads the configuration; blocks until done. The error is shown to
    /// the client with status 500.
    fn reload(&self) -> Result<(), String>;
    /// Starts a graceful shutdown and returns at once.
    fn quit(&self);
}
