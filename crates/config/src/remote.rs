//! `remote_write` and `remote_read`: remote storage endpoints.

use crate::http::HttpClientConfig;
use crate::scrape::relabel_configs;
use crate::types::{Duration, Url};
use serde::Deserialize;
use std::collections::BTreeMap;
use vigil_model::relabel::RelabelConfig;

/// Headers Prometheus refuses to let a user override.
const RESERVED_HEADERS: [&str; 16] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Prometheus's `validateHeaders`; returns the header and the message.
pub(crate) fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    for name in headers.keys() {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" {
            return Err((
                name.clone(),
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, or azuread parameter".to_string(),
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err((
                name.clone(),
                format!("{name} is a reserved header. It must not be changed"),
            ));
        }
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// Required; `None` only before validation rejects it.
    pub url: Option<Url>,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    #[serde(deserialize_with = "relabel_configs")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub name: String,
    pub send_exemplars: bool,
    pub send_native_histograms: bool,
    #[serde(rename = "$vigil_inline")]
    pub http_client: HttpClientConfig,
    pub queue_config: QueueConfig,
    pub metadata_config: MetadataConfig,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            url: None,
            remote_timeout: Duration::from_secs(30),
            headers: BTreeMap::new(),
            write_relabel_configs: Vec::new(),
            name: String::new(),
            send_exemplars: false,
            send_native_histograms: false,
            http_client: HttpClientConfig::default(),
            queue_config: QueueConfig::default(),
            metadata_config: MetadataConfig::default(),
        }
    }
}

/// Remote write queue tuning; unset keys keep Prometheus's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub capacity: i64,
    pub max_shards: i64,
    pub min_shards: i64,
    pub max_samples_per_send: i64,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub retry_on_http_429: bool,
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: Duration,
    pub max_samples_per_send: i64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteReadConfig {
    /// Required; `None` only before validation rejects it.
    pub url: Option<Url>,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub read_recent: bool,
    pub name: String,
    #[serde(rename = "$vigil_inline")]
    pub http_client: HttpClientConfig,
    pub required_matchers: BTreeMap<String, String>,
    pub filter_external_labels: bool,
}

impl Default for RemoteReadConfig {
    fn default() -> Self {
        RemoteReadConfig {
            url: None,
            remote_timeout: Duration::from_secs(60),
            headers: BTreeMap::new(),
            read_recent: false,
            name: String::new(),
            http_client: HttpClientConfig::default(),
            required_matchers: BTreeMap::new(),
            filter_external_labels: true,
        }
    }
}
