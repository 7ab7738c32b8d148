//! `global` and `scrape_configs`: what to scrape, how often, with which
//! limits, plus the static and file service-discovery blocks and the
//! relabel rules (compiled to `vigil_model::relabel` while loading).

use crate::de::field_error;
use crate::http::HttpClientConfig;
use crate::types::{ByteSize, Duration};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use vigil_model::relabel::{is_valid_label_name, Action, RelabelConfig, RelabelError, RelabelSpec};
use vigil_model::{Label, Labels};

/// Prometheus's defaults.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);

/// The `global` section. Zero values mean "not set" until [`crate::Config`]
/// fills in Prometheus's defaults while loading.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    /// `None` until loading fills in the default list.
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    pub evaluation_interval: Duration,
    pub rule_query_offset: Duration,
    pub query_log_file: String,
    pub external_labels: BTreeMap<String, String>,
    pub body_size_limit: ByteSize,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
}

impl GlobalConfig {
    /// External labels as a label set (empty values dropped).
    pub fn external_labels(&self) -> Labels {
        Labels::new(
            self.external_labels
                .iter()
                .map(|(n, v)| Label::new(n, v))
                .collect(),
        )
    }

    /// The negotiated protocols, most preferred first.
    pub fn scrape_protocols(&self) -> &[ScrapeProtocol] {
        self.scrape_protocols
            .as_deref()
            .unwrap_or(&ScrapeProtocol::DEFAULT)
    }
}

/// An exposition format Vigil can ask a target for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    PrometheusProto,
    PrometheusText0_0_4,
    OpenMetricsText0_0_1,
    OpenMetricsText1_0_0,
}

impl ScrapeProtocol {
    /// Prometheus 2.53's default preference order.
    pub const DEFAULT: [ScrapeProtocol; 3] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    const ALL: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
        }
    }

    /// The media type sent in `Accept` for this protocol.
    pub fn header_value(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
        }
    }

    /// The `Accept` header Prometheus sends for this preference list:
    /// weights count down from `q=0.5`, then `*/*`.
    pub fn accept_header(protocols: &[ScrapeProtocol]) -> String {
        let mut weight = Self::ALL.len() + 1;
        let mut parts = Vec::with_capacity(protocols.len() + 1);
        for p in protocols {
            parts.push(format!("{};q=0.{weight}", p.header_value()));
            weight = weight.saturating_sub(1);
        }
        parts.push(format!("*/*;q=0.{weight}"));
        parts.join(",")
    }

    fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown scrape protocol {s}, supported: [{}]",
                    names.join(" ")
                )
            })
    }
}

impl<'de> Deserialize<'de> for ScrapeProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ScrapeProtocol::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("scrape_protocols: {e}")))
    }
}

/// Prometheus's check of a protocol list ("cannot be empty", no duplicates).
pub(crate) fn validate_protocols(ps: &[ScrapeProtocol]) -> Result<(), String> {
    if ps.is_empty() {
        return Err("scrape_protocols cannot be empty".to_string());
    }
    for (i, p) in ps.iter().enumerate() {
        if ps[..i].contains(p) {
            let names: Vec<&str> = ps.iter().map(|p| p.as_str()).collect();
            return Err(format!(
                "duplicated protocol in scrape_protocols, got [{}]",
                names.join(" ")
            ));
        }
    }
    Ok(())
}

fn yes() -> bool {
    true
}

/// One `scrape_configs` entry. After loading, intervals, timeouts, limits and
/// protocols hold the effective values (inherited from `global` if unset).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub honor_labels: bool,
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub params: BTreeMap<String, Vec<String>>,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    pub scrape_classic_histograms: bool,
    pub metrics_path: String,
    pub scheme: String,
    #[serde(default = "yes")]
    pub enable_compression: bool,
    pub body_size_limit: ByteSize,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub native_histogram_bucket_limit: u64,
    pub native_histogram_min_bucket_factor: f64,
    pub keep_dropped_targets: u64,
    #[serde(rename = "$vigil_inline")]
    pub http_client: HttpClientConfig,
    #[serde(deserialize_with = "relabel_configs")]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(deserialize_with = "relabel_configs")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            params: BTreeMap::new(),
            scrape_interval: Duration::ZERO,
            scrape_timeout: Duration::ZERO,
            scrape_protocols: None,
            scrape_classic_histograms: false,
            metrics_path: "/metrics".to_string(),
            scheme: "http".to_string(),
            enable_compression: true,
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            native_histogram_bucket_limit: 0,
            native_histogram_min_bucket_factor: 0.0,
            keep_dropped_targets: 0,
            http_client: HttpClientConfig::default(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
        }
    }
}

impl ScrapeConfig {
    /// The negotiated protocols, most preferred first.
    pub fn scrape_protocols(&self) -> &[ScrapeProtocol] {
        self.scrape_protocols
            .as_deref()
            .unwrap_or(&ScrapeProtocol::DEFAULT)
    }

    /// The `Accept` header for this job's scrapes.
    pub fn accept_header(&self) -> String {
        ScrapeProtocol::accept_header(self.scrape_protocols())
    }

    /// Applies the global defaults the way Prometheus's
    /// `ScrapeConfig.Validate` does; the error names the offending key.
    pub(crate) fn inherit(&mut self, g: &GlobalConfig) -> Result<(), (&'static str, String)> {
        if self.scrape_interval.is_zero() {
            self.scrape_interval = g.scrape_interval;
        }
        if self.scrape_timeout > self.scrape_interval {
            return Err((
                "scrape_timeout",
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                    self.job_name
                ),
            ));
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = g.scrape_timeout.min(self.scrape_interval);
        }
        let inherit = |v: &mut u64, from: u64| {
            if *v == 0 {
                *v = from;
            }
        };
        if self.body_size_limit.0 == 0 {
            self.body_size_limit = g.body_size_limit;
        }
        inherit(&mut self.sample_limit, g.sample_limit);
        inherit(&mut self.target_limit, g.target_limit);
        inherit(&mut self.label_limit, g.label_limit);
        inherit(&mut self.label_name_length_limit, g.label_name_length_limit);
        inherit(
            &mut self.label_value_length_limit,
            g.label_value_length_limit,
        );
        inherit(&mut self.keep_dropped_targets, g.keep_dropped_targets);
        if self.scrape_protocols.is_none() {
            self.scrape_protocols = Some(g.scrape_protocols().to_vec());
        }
        validate_protocols(self.scrape_protocols()).map_err(|e| {
            (
                "scrape_protocols",
                format!("{e} for scrape config with job name {:?}", self.job_name),
            )
        })
    }
}

/// A `static_configs` entry: a target group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: DEFAULT_FILE_SD_REFRESH,
        }
    }
}

/// A relabel rule as written, before Prometheus's defaults and checks.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRelabel {
    source_labels: Option<Vec<String>>,
    separator: Option<String>,
    target_label: Option<String>,
    regex: Option<String>,
    modulus: Option<u64>,
    replacement: Option<String>,
    action: Option<String>,
}

/// A relabel rule compiled while deserialising, so its errors carry the line.
struct CompiledRelabel(RelabelConfig);

impl<'de> Deserialize<'de> for CompiledRelabel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRelabel::deserialize(d)?;
        if let Some(bad) = raw
            .source_labels
            .iter()
            .flatten()
            .find(|n| !is_valid_label_name(n))
        {
            return Err(field_error(
                "source_labels",
                format!("{bad:?} is not a valid label name"),
            ));
        }
        let action = match raw.action.as_deref() {
            Some(a) => Some(Action::parse(a).map_err(|e| field_error::<D::Error>("action", e))?),
            None => None,
        };
        let spec = RelabelSpec {
            source_labels: raw.source_labels,
            separator: raw.separator,
            target_label: raw.target_label,
            regex: raw.regex,
            modulus: raw.modulus,
            replacement: raw.replacement,
            action,
        };
        RelabelConfig::new(spec).map(CompiledRelabel).map_err(|e| {
            let field = match &e {
                RelabelError::UnknownAction(_)
                | RelabelError::OnlySourceAndTarget(_)
                | RelabelError::OnlyRegex(_) => "action",
                RelabelError::BadRegex(_) => "regex",
                RelabelError::ZeroModulus => "modulus",
                RelabelError::MissingTargetLabel(_) | RelabelError::InvalidTargetLabel(..) => {
                    "target_label"
                }
                RelabelError::ReplacementNotAllowed(_) | RelabelError::InvalidReplacement(..) => {
                    "replacement"
                }
            };
            field_error(field, e)
        })
    }
}

/// `deserialize_with` for lists of relabel rules.
pub(crate) fn relabel_configs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<RelabelConfig>, D::Error> {
    let v: Vec<CompiledRelabel> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|c| c.0).collect())
}
