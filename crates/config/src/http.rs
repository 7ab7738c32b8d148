//! HTTP client options shared by scrape jobs, Alertmanagers and remote
//! storage (Prometheus's `common/config.HTTPClientConfig`, inlined in each).

use crate::types::{Secret, Url};
use serde::Deserialize;

fn yes() -> bool {
    true
}

/// Authentication, TLS and transport options of one HTTP client.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    /// Deprecated spelling; moved into `authorization` by validation.
    pub bearer_token: Secret,
    /// Deprecated spelling; moved into `authorization` by validation.
    pub bearer_token_file: String,
    pub tls_config: TlsConfig,
    pub proxy_url: Option<Url>,
    pub no_proxy: String,
    pub proxy_from_environment: bool,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub enable_http2: bool,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            bearer_token: Secret::default(),
            bearer_token_file: String::new(),
            tls_config: TlsConfig::default(),
            proxy_url: None,
            no_proxy: String::new(),
            proxy_from_environment: false,
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub username_file: String,
    pub password: Secret,
    pub password_file: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// Defaults to `Bearer`.
    #[serde(rename = "type")]
    pub kind: String,
    pub credentials: Secret,
    pub credentials_file: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Inline PEM of the CA certificate(s).
    pub ca: String,
    pub ca_file: String,
    /// Inline PEM of the client certificate.
    pub cert: String,
    pub cert_file: String,
    /// Inline PEM of the client key.
    pub key: Secret,
    pub key_file: String,
    pub server_name: String,
    pub insecure_skip_verify: bool,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
}

/// A TLS protocol version as written in configs (`TLS12`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "TLS10" => TlsVersion::Tls10,
            "TLS11" => TlsVersion::Tls11,
            "TLS12" => TlsVersion::Tls12,
            "TLS13" => TlsVersion::Tls13,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown TLS version: {s}"
                )))
            }
        })
    }
}

/// A validation failure: the key it concerns (relative to the HTTP options)
/// and Prometheus's message.
pub(crate) type FieldError = (&'static [&'static str], String);

impl HttpClientConfig {
    /// Prometheus's `HTTPClientConfig.Validate`, including moving a
    /// `bearer_token(_file)` into `authorization`.
    pub(crate) fn validate(&mut self) -> Result<(), FieldError> {
        let err = |path: &'static [&'static str], m: &str| Err((path, m.to_string()));
        let has_bearer = !self.bearer_token.is_empty() || !self.bearer_token_file.is_empty();
        if !self.bearer_token.is_empty() && !self.bearer_token_file.is_empty() {
            return err(
                &["bearer_token"],
                "at most one of bearer_token & bearer_token_file must be configured",
            );
        }
        if self.basic_auth.is_some() && has_bearer {
            return err(
                &["basic_auth"],
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            );
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && !b.username_file.is_empty() {
                return err(
                    &["basic_auth", "username_file"],
                    "at most one of basic_auth username, username_file & username_ref must be configured",
                );
            }
            if !b.password.is_empty() && !b.password_file.is_empty() {
                return err(
                    &["basic_auth", "password_file"],
                    "at most one of basic_auth password, password_file & password_ref must be configured",
                );
            }
        }
        if let Some(a) = &mut self.authorization {
            if has_bearer {
                return err(
                    &["authorization"],
                    "authorization is not compatible with bearer_token & bearer_token_file",
                );
            }
            if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
                return err(
                    &["authorization", "credentials_file"],
                    "at most one of authorization credentials & credentials_file must be configured",
                );
            }
            a.kind = a.kind.trim().to_string();
            if a.kind.is_empty() {
                a.kind = "Bearer".to_string();
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return err(
                    &["authorization", "type"],
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
                );
            }
            if self.basic_auth.is_some() {
                return err(
                    &["authorization"],
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                );
            }
        } else if !self.bearer_token.is_empty() {
            self.authorization = Some(Authorization {
                kind: "Bearer".to_string(),
                credentials: std::mem::take(&mut self.bearer_token),
                credentials_file: String::new(),
            });
        } else if !self.bearer_token_file.is_empty() {
            self.authorization = Some(Authorization {
                kind: "Bearer".to_string(),
                credentials: Secret::default(),
                credentials_file: std::mem::take(&mut self.bearer_token_file),
            });
        }
        let t = &self.tls_config;
        if !t.ca.is_empty() && !t.ca_file.is_empty() {
            return err(
                &["tls_config", "ca_file"],
                "at most one of ca, ca_file & ca_ref must be configured",
            );
        }
        if !t.cert.is_empty() && !t.cert_file.is_empty() {
            return err(
                &["tls_config", "cert_file"],
                "at most one of cert, cert_file & cert_ref must be configured",
            );
        }
        if !t.key.is_empty() && !t.key_file.is_empty() {
            return err(
                &["tls_config", "key_file"],
                "at most one of key and key_file must be configured",
            );
        }
        let has_cert = !t.cert.is_empty() || !t.cert_file.is_empty();
        let has_key = !t.key.is_empty() || !t.key_file.is_empty();
        if has_cert && !has_key {
            return err(
                &["tls_config"],
                "exactly one of key or key_file must be configured when a client certificate is configured",
            );
        }
        if has_key && !has_cert {
            return err(
                &["tls_config"],
                "exactly one of cert or cert_file must be configured when a client key is configured",
            );
        }
        if self.proxy_url.is_none() && !self.no_proxy.is_empty() {
            return err(
                &["no_proxy"],
                "if no_proxy is configured, proxy_url must also be configured",
            );
        }
        if self.proxy_from_environment && self.proxy_url.is_some() {
            return err(
                &["proxy_from_environment"],
                "if proxy_from_environment is configured, proxy_url must not be configured",
            );
        }
        if self.proxy_from_environment && !self.no_proxy.is_empty() {
            return err(
                &["proxy_from_environment"],
                "if proxy_from_environment is configured, no_proxy must not be configured",
            );
        }
        Ok(())
    }

    /// Joins relative file paths with `dir` (Prometheus's `SetDirectory`).
    pub(crate) fn set_directory(&mut self, dir: &std::path::Path) {
        let join = |p: &mut String| crate::join_dir(dir, p);
        if let Some(b) = &mut self.basic_auth {
            join(&mut b.password_file);
            join(&mut b.username_file);
        }
        if let Some(a) = &mut self.authorization {
            join(&mut a.credentials_file);
        }
        join(&mut self.bearer_token_file);
        join(&mut self.tls_config.ca_file);
        join(&mut self.tls_config.cert_file);
        join(&mut self.tls_config.key_file);
    }

    /// Files this client reads (for `check config`): (option name, path).
    pub fn referenced_files(&self) -> Vec<(&'static str, &str)> {
        let mut out: Vec<(&'static str, &str)> = Vec::new();
        if let Some(b) = &self.basic_auth {
            out.push(("password_file", &b.password_file));
            out.push(("username_file", &b.username_file));
        }
        if let Some(a) = &self.authorization {
            out.push(("credentials_file", &a.credentials_file));
        }
        out.push(("bearer_token_file", &self.bearer_token_file));
        out.push(("ca_file", &self.tls_config.ca_file));
        out.push(("cert_file", &self.tls_config.cert_file));
        out.push(("key_file", &self.tls_config.key_file));
        out.retain(|(_, p)| !p.is_empty());
        out
    }
}
