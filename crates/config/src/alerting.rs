//! The `alerting` section: where alerts are sent and how they are relabeled.

use crate::http::HttpClientConfig;
use crate::scrape::{relabel_configs, FileSdConfig, StaticConfig};
use crate::types::Duration;
use serde::{Deserialize, Deserializer};
use vigil_model::relabel::RelabelConfig;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    #[serde(deserialize_with = "relabel_configs")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// Alertmanager API version to push alerts with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AlertmanagerApiVersion {
    V1,
    #[default]
    V2,
}

impl AlertmanagerApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertmanagerApiVersion::V1 => "v1",
            AlertmanagerApiVersion::V2 => "v2",
        }
    }
}

impl<'de> Deserialize<'de> for AlertmanagerApiVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "v1" => Ok(AlertmanagerApiVersion::V1),
            "v2" => Ok(AlertmanagerApiVersion::V2),
            _ => Err(serde::de::Error::custom(format!(
                "expected Alertmanager api version to be one of [v1 v2] but got {s}"
            ))),
        }
    }
}

/// One `alertmanagers` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    #[serde(rename = "$vigil_inline")]
    pub http_client: HttpClientConfig,
    pub scheme: String,
    pub path_prefix: String,
    pub timeout: Duration,
    pub api_version: AlertmanagerApiVersion,
    #[serde(deserialize_with = "relabel_configs")]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(deserialize_with = "relabel_configs")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            http_client: HttpClientConfig::default(),
            scheme: "http".to_string(),
            path_prefix: String::new(),
            timeout: Duration::from_secs(10),
            api_version: AlertmanagerApiVersion::V2,
            relabel_configs: Vec::new(),
            alert_relabel_configs: Vec::new(),
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
        }
    }
}
