//! The server's command line: Prometheus 2.x's own flag names, so an existing
//! `prometheus` command line starts Vigil unchanged.
//!
//! Flags Vigil acts on are typed fields. Flags Prometheus has but Vigil does
//! not act on are accepted and reported once as ignored. A flag Prometheus
//! does not have is an error naming it (clap does that for us).

use clap::Args;

/// Flags of the server (no subcommand).
#[derive(Args, Debug, Clone)]
pub struct ServerFlags {
    /// Prometheus configuration file path. Without it, ./prometheus.yml is
    /// used if it exists, else Vigil's embedded default config.
    #[arg(long = "config.file", value_name = "PATH")]
    pub config_file: Option<String>,

    /// Address to listen on for UI, API, and telemetry.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: String,

    /// The URL under which Vigil is externally reachable (for links and, if it
    /// has a path, as the route prefix).
    #[arg(long = "web.external-url", value_name = "URL")]
    pub external_url: Option<String>,

    /// Prefix for the internal routes of web endpoints. Defaults to the path
    /// of --web.external-url.
    #[arg(long = "web.route-prefix", value_name = "PATH")]
    pub route_prefix: Option<String>,

    /// Enable shutdown and reload via HTTP request.
    #[arg(long = "web.enable-lifecycle", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub enable_lifecycle: bool,

    /// Enable API endpoints for admin control actions.
    #[arg(long = "web.enable-admin-api", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub enable_admin_api: bool,

    /// Enable API endpoint accepting remote write requests.
    #[arg(long = "web.enable-remote-write-receiver", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub enable_remote_write_receiver: bool,

    /// Regex for CORS origin. It is fully anchored.
    #[arg(long = "web.cors.origin", default_value = ".*")]
    pub cors_origin: String,

    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub tsdb_path: String,

    /// How long to retain samples in storage (default 15d when no retention
    /// flag is set).
    #[arg(long = "storage.tsdb.retention.time", value_name = "DURATION")]
    pub retention_time: Option<String>,

    /// [DEPRECATED] Use --storage.tsdb.retention.time.
    #[arg(long = "storage.tsdb.retention", value_name = "DURATION", hide = true)]
    pub retention_deprecated: Option<String>,

    /// Maximum number of bytes that can be stored for blocks (units B, KB,
    /// MB, GB, TB, PB, EB; powers of 2).
    #[arg(long = "storage.tsdb.retention.size", value_name = "SIZE")]
    pub retention_size: Option<String>,

    /// Minimum duration of a data block before being persisted.
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h")]
    pub min_block_duration: String,

    /// Maximum duration compacted blocks may span (default: 10% of the
    /// retention period, at most 31d).
    #[arg(long = "storage.tsdb.max-block-duration", value_name = "DURATION")]
    pub max_block_duration: Option<String>,

    /// [not supported] TLS/authentication web config. Vigil refuses to start
    /// with it rather than serve without the protection it asks for.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<String>,

    /// Create a lockfile in the data directory.
    #[arg(long = "storage.tsdb.use-lockfile", num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub use_lockfile: bool,

    /// Do not create a lockfile in the data directory.
    #[arg(long = "storage.tsdb.no-lockfile", num_args = 0..=1, default_missing_value = "true", default_value = "false", hide = true)]
    pub no_lockfile: bool,

    /// Vigil: reject appends that would create series beyond this many head
    /// series (0 = no limit).
    #[arg(long = "storage.tsdb.max-head-series", default_value_t = 0)]
    pub max_head_series: usize,

    /// Vigil: also fsync the WAL at most this often, for power-loss
    /// durability (0s = only on segment close and shutdown, Prometheus's
    /// behaviour; see docs/ARCHITECTURE.md).
    #[arg(long = "storage.tsdb.wal-fsync-interval", default_value = "0s")]
    pub wal_fsync_interval: String,

    /// The delta difference allowed for retrieving metrics during expression
    /// evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    pub lookback_delta: String,

    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    pub query_timeout: String,

    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub query_max_concurrency: usize,

    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,

    /// Max time to tolerate a Vigil outage for restoring "for" state of
    /// alerts.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h")]
    pub for_outage_tolerance: String,

    /// Minimum duration between alert and restored "for" state.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m")]
    pub for_grace_period: String,

    /// Minimum amount of time to wait before resending an alert to
    /// Alertmanager.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m")]
    pub resend_delay: String,

    /// The capacity of the queue for pending Alertmanager notifications.
    #[arg(
        long = "alertmanager.notification-queue-capacity",
        default_value_t = 10_000
    )]
    pub notification_queue_capacity: usize,

    /// Timeout for sending alerts to Alertmanager (overridden by the config).
    #[arg(long = "alertmanager.timeout", value_name = "DURATION", hide = true)]
    pub alertmanager_timeout: Option<String>,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,

    /// Output format of log messages.
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,

    /// Comma-separated feature flags to enable. Vigil acts on
    /// `promql-experimental-functions`; other names are accepted and logged.
    #[arg(long = "enable-feature", value_name = "FEATURE")]
    pub enable_feature: Vec<String>,

    #[command(flatten)]
    pub ignored: IgnoredFlags,
}

/// What `--enable-feature` switched on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Features {
    /// `promql-experimental-functions`: `sort_by_label`,
    /// `sort_by_label_desc`, `mad_over_time`.
    pub promql_experimental_functions: bool,
    /// Names Vigil accepts but does not act on, for a log line.
    pub ignored: Vec<String>,
}

impl ServerFlags {
    /// The `--enable-feature` values, split at commas as Prometheus does.
    pub fn features(&self) -> Features {
        let mut f = Features::default();
        for name in self.enable_feature.iter().flat_map(|v| v.split(',')) {
            match name.trim() {
                "" => {}
                "promql-experimental-functions" => f.promql_experimental_functions = true,
                other => f.ignored.push(other.to_string()),
            }
        }
        f
    }
}

/// Prometheus flags that Vigil accepts so command lines keep working, but
/// does not act on. Each one given is logged once at start-up.
#[derive(Args, Debug, Clone, Default)]
pub struct IgnoredFlags {
    #[arg(long = "web.console.templates", hide = true)]
    pub console_templates: Option<String>,
    #[arg(long = "web.console.libraries", hide = true)]
    pub console_libraries: Option<String>,
    #[arg(long = "web.local-assets", hide = true)]
    pub local_assets: Option<String>,
    #[arg(long = "web.user-assets", hide = true)]
    pub user_assets: Option<String>,
    #[arg(long = "web.page-title", hide = true)]
    pub page_title: Option<String>,
    #[arg(long = "web.read-timeout", hide = true)]
    pub read_timeout: Option<String>,
    #[arg(long = "web.max-connections", hide = true)]
    pub max_connections: Option<String>,
    #[arg(long = "storage.tsdb.head-chunks-write-queue-size", hide = true)]
    pub head_chunks_write_queue_size: Option<String>,
    #[arg(long = "storage.tsdb.wal-segment-size", hide = true)]
    pub wal_segment_size: Option<String>,
    #[arg(long = "storage.tsdb.wal-compression", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub wal_compression: Option<String>,
    #[arg(long = "storage.tsdb.wal-compression-type", hide = true)]
    pub wal_compression_type: Option<String>,
    #[arg(long = "storage.tsdb.allow-overlapping-blocks", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub allow_overlapping_blocks: Option<String>,
    #[arg(long = "storage.tsdb.samples-per-chunk", hide = true)]
    pub samples_per_chunk: Option<String>,
    #[arg(long = "storage.tsdb.head-chunks-write-buffer-size-bytes", hide = true)]
    pub head_chunks_write_buffer_size: Option<String>,
    #[arg(long = "storage.tsdb.max-block-chunk-segment-size", hide = true)]
    pub max_block_chunk_segment_size: Option<String>,
    #[arg(long = "storage.agent.path", hide = true)]
    pub agent_path: Option<String>,
    #[arg(long = "storage.agent.wal-compression", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub agent_wal_compression: Option<String>,
    #[arg(long = "storage.agent.retention.min-time", hide = true)]
    pub agent_retention_min_time: Option<String>,
    #[arg(long = "storage.agent.retention.max-time", hide = true)]
    pub agent_retention_max_time: Option<String>,
    #[arg(long = "storage.agent.use-lockfile", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub agent_use_lockfile: Option<String>,
    #[arg(long = "storage.remote.flush-deadline", hide = true)]
    pub remote_flush_deadline: Option<String>,
    #[arg(long = "storage.remote.read-sample-limit", hide = true)]
    pub remote_read_sample_limit: Option<String>,
    #[arg(long = "storage.remote.read-concurrent-limit", hide = true)]
    pub remote_read_concurrent_limit: Option<String>,
    #[arg(long = "storage.remote.read-max-bytes-in-frame", hide = true)]
    pub remote_read_max_bytes_in_frame: Option<String>,
    #[arg(long = "scrape.adjust-timestamps", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub scrape_adjust_timestamps: Option<String>,
    #[arg(long = "scrape.timestamp-tolerance", hide = true)]
    pub scrape_timestamp_tolerance: Option<String>,
    #[arg(long = "scrape.discovery-reload-interval", hide = true)]
    pub scrape_discovery_reload_interval: Option<String>,
    #[arg(long = "rules.max-concurrent-evals", hide = true)]
    pub rules_max_concurrent_evals: Option<String>,
    #[arg(long = "alertmanager.drain-notification-queue-on-shutdown", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub alertmanager_drain_queue: Option<String>,
    #[arg(long = "auto-gomemlimit.ratio", hide = true)]
    pub auto_gomemlimit_ratio: Option<String>,
}

impl IgnoredFlags {
    /// Names of the ignored flags that were given, for a one-time log line.
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut note = |set: bool, name: &'static str| {
            if set {
                out.push(name);
            }
        };
        note(self.console_templates.is_some(), "web.console.templates");
        note(self.console_libraries.is_some(), "web.console.libraries");
        note(self.local_assets.is_some(), "web.local-assets");
        note(self.user_assets.is_some(), "web.user-assets");
        note(self.page_title.is_some(), "web.page-title");
        note(self.read_timeout.is_some(), "web.read-timeout");
        note(self.max_connections.is_some(), "web.max-connections");
        note(
            self.head_chunks_write_queue_size.is_some(),
            "storage.tsdb.head-chunks-write-queue-size",
        );
        note(
            self.wal_segment_size.is_some(),
            "storage.tsdb.wal-segment-size",
        );
        note(
            self.wal_compression.is_some(),
            "storage.tsdb.wal-compression",
        );
        note(
            self.wal_compression_type.is_some(),
            "storage.tsdb.wal-compression-type",
        );
        note(
            self.allow_overlapping_blocks.is_some(),
            "storage.tsdb.allow-overlapping-blocks",
        );
        note(
            self.samples_per_chunk.is_some(),
            "storage.tsdb.samples-per-chunk",
        );
        note(
            self.head_chunks_write_buffer_size.is_some(),
            "storage.tsdb.head-chunks-write-buffer-size-bytes",
        );
        note(
            self.max_block_chunk_segment_size.is_some(),
            "storage.tsdb.max-block-chunk-segment-size",
        );
        note(self.agent_path.is_some(), "storage.agent.path");
        note(
            self.agent_wal_compression.is_some(),
            "storage.agent.wal-compression",
        );
        note(
            self.agent_retention_min_time.is_some(),
            "storage.agent.retention.min-time",
        );
        note(
            self.agent_retention_max_time.is_some(),
            "storage.agent.retention.max-time",
        );
        note(
            self.agent_use_lockfile.is_some(),
            "storage.agent.use-lockfile",
        );
        note(
            self.remote_flush_deadline.is_some(),
            "storage.remote.flush-deadline",
        );
        note(
            self.remote_read_sample_limit.is_some(),
            "storage.remote.read-sample-limit",
        );
        note(
            self.remote_read_concurrent_limit.is_some(),
            "storage.remote.read-concurrent-limit",
        );
        note(
            self.remote_read_max_bytes_in_frame.is_some(),
            "storage.remote.read-max-bytes-in-frame",
        );
        note(
            self.scrape_adjust_timestamps.is_some(),
            "scrape.adjust-timestamps",
        );
        note(
            self.scrape_timestamp_tolerance.is_some(),
            "scrape.timestamp-tolerance",
        );
        note(
            self.scrape_discovery_reload_interval.is_some(),
            "scrape.discovery-reload-interval",
        );
        note(
            self.rules_max_concurrent_evals.is_some(),
            "rules.max-concurrent-evals",
        );
        note(
            self.alertmanager_drain_queue.is_some(),
            "alertmanager.drain-notification-queue-on-shutdown",
        );
        note(
            self.auto_gomemlimit_ratio.is_some(),
            "auto-gomemlimit.ratio",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        flags: ServerFlags,
    }

    fn features(args: &[&str]) -> Features {
        let mut argv = vec!["vigil"];
        argv.extend_from_slice(args);
        Cmd::parse_from(argv).flags.features()
    }

    #[test]
    fn enable_feature_lists_split_at_commas() {
        assert_eq!(features(&[]), Features::default());
        let f = features(&[
            "--enable-feature=exemplar-storage,promql-experimental-functions",
            "--enable-feature=native-histograms",
        ]);
        assert!(f.promql_experimental_functions);
        assert_eq!(f.ignored, ["exemplar-storage", "native-histograms"]);
        assert!(
            !features(&["--enable-feature=promql-per-step-stats"]).promql_experimental_functions
        );
    }
}
