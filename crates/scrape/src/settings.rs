//! From a `scrape_configs` entry to the options the scrape loop and the HTTP
//! client take (reading the TLS and username files it names).

use std::path::PathBuf;

use vigil_config::{ScrapeConfig, ScrapeProtocol, TlsVersion};

use crate::client::{ClientError, ClientOptions, Credentials, TlsOptions};
use crate::scrape_loop::LoopOptions;

pub(crate) fn loop_options(c: &ScrapeConfig) -> LoopOptions {
    LoopOptions {
        honor_labels: c.honor_labels,
        honor_timestamps: c.honor_timestamps,
        track_timestamps_staleness: c.track_timestamps_staleness,
        metric_relabel_configs: c.metric_relabel_configs.clone(),
        sample_limit: c.sample_limit,
        label_limit: c.label_limit,
        label_name_length_limit: c.label_name_length_limit,
        label_value_length_limit: c.label_value_length_limit,
    }
}

fn read_file(what: &str, path: &str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError(format!("unable to read {what} {path}: {e}")))
}

/// Inline value or file contents (the file wins when both are set, which
/// config validation forbids anyway).
fn inline_or_file(what: &str, inline: &str, file: &str) -> Result<Option<Vec<u8>>, ClientError> {
    if !file.is_empty() {
        return read_file(what, file).map(Some);
    }
    Ok((!inline.is_empty()).then(|| inline.as_bytes().to_vec()))
}

pub(crate) fn client_options(
    c: &ScrapeConfig,
    user_agent: &str,
) -> Result<ClientOptions, ClientError> {
    let h = &c.http_client;
    // Vigil parses text formats only: never ask for protobuf.
    let protocols: Vec<ScrapeProtocol> = c
        .scrape_protocols()
        .iter()
        .copied()
        .filter(|p| *p != ScrapeProtocol::PrometheusProto)
        .collect();
    let protocols = if protocols.is_empty() {
        ScrapeProtocol::DEFAULT.to_vec()
    } else {
        protocols
    };
    let credentials = if let Some(b) = &h.basic_auth {
        let username = if b.username_file.is_empty() {
            b.username.clone()
        } else {
            String::from_utf8_lossy(&read_file("username_file", &b.username_file)?)
                .trim()
                .to_string()
        };
        Some(Credentials::Basic {
            username,
            password: b.password.expose().to_string(),
            password_file: (!b.password_file.is_empty()).then(|| PathBuf::from(&b.password_file)),
        })
    } else if let Some(a) = &h.authorization {
        Some(Credentials::Authorization {
            kind: a.kind.clone(),
            credentials: a.credentials.expose().to_string(),
            credentials_file: (!a.credentials_file.is_empty())
                .then(|| PathBuf::from(&a.credentials_file)),
        })
    } else if !h.bearer_token.is_empty() || !h.bearer_token_file.is_empty() {
        Some(Credentials::Authorization {
            kind: "Bearer".to_string(),
            credentials: h.bearer_token.expose().to_string(),
            credentials_file: (!h.bearer_token_file.is_empty())
                .then(|| PathBuf::from(&h.bearer_token_file)),
        })
    } else {
        None
    };
    let t = &h.tls_config;
    let tls = TlsOptions {
        ca_pem: inline_or_file("CA file", &t.ca, &t.ca_file)?,
        cert_pem: inline_or_file("client cert file", &t.cert, &t.cert_file)?,
        key_pem: inline_or_file("client key file", t.key.expose(), &t.key_file)?,
        insecure_skip_verify: t.insecure_skip_verify,
        min_version: t.min_version.map(|v| match v {
            TlsVersion::Tls13 => "TLS13".to_string(),
            _ => "TLS12".to_string(),
        }),
        max_version: match t.max_version {
            None | Some(TlsVersion::Tls13) => None,
            Some(TlsVersion::Tls12) => Some("TLS12".to_string()),
            Some(v) => {
                return Err(ClientError(format!(
                    "tls_config max_version {}: only TLS12 and TLS13 are supported",
                    v.as_str()
                )))
            }
        },
        server_name: (!t.server_name.is_empty()).then(|| t.server_name.clone()),
    };
    Ok(ClientOptions {
        accept: ScrapeProtocol::accept_header(&protocols),
        user_agent: user_agent.to_string(),
        enable_compression: c.enable_compression,
        body_size_limit: c.body_size_limit.0,
        credentials,
        tls,
        proxy_url: h.proxy_url.as_ref().map(|u| u.as_str().to_string()),
        proxy_from_environment: h.proxy_from_environment,
        follow_redirects: h.follow_redirects,
        enable_http2: h.enable_http2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::DEFAULT_ACCEPT;
    use vigil_config::Config;

    fn job(yaml: &str) -> ScrapeConfig {
        Config::from_yaml(&format!("scrape_configs:\n{yaml}"), "t.yml")
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    #[test]
    fn default_accept_header_is_prometheus_253s() {
        let o = client_options(&job("- job_name: j\n"), "ua").unwrap();
        assert_eq!(o.accept, DEFAULT_ACCEPT);
        assert!(o.enable_compression);
        assert!(o.credentials.is_none());
    }

    #[test]
    fn credentials_and_limits() {
        let o = client_options(
            &job("- job_name: j\n  body_size_limit: 1KB\n  basic_auth:\n    username: u\n    password: p\n"),
            "ua",
        )
        .unwrap();
        assert_eq!(o.body_size_limit, 1024);
        assert_eq!(
            o.credentials,
            Some(Credentials::Basic {
                username: "u".into(),
                password: "p".into(),
                password_file: None
            })
        );
        let o = client_options(&job("- job_name: j\n  bearer_token: tok\n"), "ua").unwrap();
        assert!(
            matches!(o.credentials, Some(Credentials::Authorization { ref credentials, .. }) if credentials == "tok")
        );
        let e = client_options(
            &job("- job_name: j\n  tls_config:\n    ca_file: /nonexistent/ca.pem\n"),
            "ua",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("unable to read CA file /nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn loop_options_copy_the_job() {
        let o = loop_options(&job(
            "- job_name: j\n  honor_labels: true\n  honor_timestamps: false\n  sample_limit: 5\n  label_limit: 6\n",
        ));
        assert!(o.honor_labels);
        assert!(!o.honor_timestamps);
        assert_eq!((o.sample_limit, o.label_limit), (5, 6));
    }
}
