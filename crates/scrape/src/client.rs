//! The HTTP side of a scrape: one pooled keep-alive reqwest client per
//! scrape pool (rustls), requests with Prometheus's headers, and the body
//! read into a reused buffer under `body_size_limit` (gzip bodies inflated
//! on the way, see `gunzip`).
//!
//! It knows nothing about parsing or storage; errors are worded as
//! Prometheus words them (`server returned HTTP status 500 Internal Server
//! Error`, `Get "<url>": context deadline exceeded`).

pub mod gunzip;
mod server_name;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE,
    HOST, LOCATION,
};
use reqwest::{RequestBuilder, Response, StatusCode, Url};

use crate::scrape_loop::ScrapeError;
use gunzip::{Gunzip, GunzipError};
use server_name::{BoundTarget, ServerNameTls, ALPN_H2, ALPN_HTTP1};

/// Redirects followed before giving up, as Go's `http.Client`.
const MAX_REDIRECTS: usize = 10;

/// The `Accept` header Prometheus 2.53 sends with its default
/// `scrape_protocols` (OpenMetrics 1.0.0, OpenMetrics 0.0.1, text 0.0.4).
pub const DEFAULT_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The `User-Agent` of scrapes.
pub const USER_AGENT: &str = concat!("Vigil/", env!("CARGO_PKG_VERSION"));

/// Where the `Authorization` header comes from. Files are re-read on every
/// scrape, so rotated credentials are picked up as Prometheus does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `basic_auth`; the password from `password` or, if set, `password_file`.
    Basic {
        username: String,
        password: String,
        password_file: Option<PathBuf>,
    },
    /// `authorization` (and the deprecated `bearer_token[_file]`): `type`
    /// (default `Bearer`) and the credentials or the file holding them.
    Authorization {
        kind: String,
        credentials: String,
        credentials_file: Option<PathBuf>,
    },
}

impl Credentials {
    fn header(&self) -> Result<HeaderValue, String> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("unable to read file {}: {e}", p.display()))
        };
        let value = match self {
            Credentials::Basic {
                username,
                password,
                password_file,
            } => {
                let password = match password_file {
                    Some(p) => read(p)?,
                    None => password.clone(),
                };
                format!(
                    "Basic {}",
                    base64(format!("{username}:{password}").as_bytes())
                )
            }
            Credentials::Authorization {
                kind,
                credentials,
                credentials_file,
            } => {
                let creds = match credentials_file {
                    Some(p) => read(p)?,
                    None => credentials.clone(),
                };
                let kind = if kind.is_empty() { "Bearer" } else { kind };
                format!("{kind} {creds}")
            }
        };
        let mut v = HeaderValue::from_str(&value)
            .map_err(|_| "credentials contain characters not allowed in a header".to_string())?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// TLS options, with PEM contents already loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificates to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key, for mutual TLS.
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    pub insecure_skip_verify: bool,
    /// `min_version`: "TLS12" or "TLS13".
    pub min_version: Option<String>,
    /// `max_version`: "TLS12" or "TLS13" (rustls speaks nothing older).
    pub max_version: Option<String>,
    /// Sent as SNI and verified instead of the target's host (Go's
    /// `tls.Config.ServerName`); the `Host` header stays the target's.
    pub server_name: Option<String>,
}

/// Everything that shapes a pool's HTTP client and requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    pub accept: String,
    pub user_agent: String,
    pub enable_compression: bool,
    /// Bytes of (decompressed) body allowed; 0 for no limit.
    pub body_size_limit: u64,
    pub credentials: Option<Credentials>,
    pub tls: TlsOptions,
    pub proxy_url: Option<String>,
    pub proxy_from_environment: bool,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            accept: DEFAULT_ACCEPT.to_string(),
            user_agent: USER_AGENT.to_string(),
            enable_compression: true,
            body_size_limit: 0,
            credentials: None,
            tls: TlsOptions::default(),
            proxy_url: None,
            proxy_from_environment: false,
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// Building a client failed (bad PEM, bad proxy URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("creating HTTP client: {0}")]
pub struct ClientError(pub String);

/// A pool's HTTP client; [`TargetClient::for_target`] specializes it for
/// one target where `server_name` needs that.
#[derive(Debug, Clone)]
pub struct TargetClient {
    client: reqwest::Client,
    opts: ClientOptions,
    headers: HeaderMap,
    /// `server_name` set and targets requested through it.
    sni: Option<Arc<ServerNameTls>>,
    /// This target's client under `sni`.
    bound: Option<Arc<BoundTarget>>,
}

/// A successful response: its `Content-Type` (the body is in the buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub content_type: String,
}

/// Settings every client of a pool shares. Bodies are inflated here, not
/// by reqwest (see `gunzip`).
fn base_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5 * 60))
        .tcp_nodelay(true)
}

/// reqwest's own TLS settings (no `server_name`).
fn reqwest_tls(
    mut b: reqwest::ClientBuilder,
    tls: &TlsOptions,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let err = |e: reqwest::Error| ClientError(error_chain(&e));
    if let Some(ca) = &tls.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(ca).map_err(err)?;
        if certs.is_empty() {
            return Err(ClientError(
                "unable to use specified CA cert: no certificates found".into(),
            ));
        }
        b = b.tls_certs_only(certs);
    }
    match (&tls.cert_pem, &tls.key_pem) {
        (Some(cert), Some(key)) => {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            b = b.identity(reqwest::Identity::from_pem(&pem).map_err(err)?);
        }
        (None, None) => {}
        _ => {
            return Err(ClientError(
                "client cert and key must both be set".to_string(),
            ))
        }
    }
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    match tls.min_version.as_deref() {
        Some("TLS13") => b = b.tls_version_min(reqwest::tls::Version::TLS_1_3),
        Some("TLS12") => b = b.tls_version_min(reqwest::tls::Version::TLS_1_2),
        _ => {}
    }
    if tls.max_version.as_deref() == Some("TLS12") {
        b = b.tls_version_max(reqwest::tls::Version::TLS_1_2);
    }
    Ok(b)
}

impl TargetClient {
    pub fn new(opts: ClientOptions) -> Result<TargetClient, ClientError> {
        let err = |e: reqwest::Error| ClientError(error_chain(&e));
        let mut b = base_builder().redirect(if opts.follow_redirects {
            reqwest::redirect::Policy::limited(MAX_REDIRECTS)
        } else {
            reqwest::redirect::Policy::none()
        });
        if !opts.enable_http2 {
            b = b.http1_only();
        }
        match (&opts.proxy_url, opts.proxy_from_environment) {
            (Some(url), _) => b = b.proxy(reqwest::Proxy::all(url.as_str()).map_err(err)?),
            (None, false) => b = b.no_proxy(),
            (None, true) => {}
        }
        let mut sni = None;
        match opts.tls.server_name.as_deref().filter(|n| !n.is_empty()) {
            None => b = reqwest_tls(b, &opts.tls)?,
            Some(name) => {
                // The pool's client verifies the name but keeps the URL: it
                // serves `http` targets and the cases the name cannot be
                // requested through (see `server_name`).
                let tls = ServerNameTls::new(&opts.tls, name)?;
                let alpn: &[&[u8]] = if opts.enable_http2 {
                    &[ALPN_H2, ALPN_HTTP1]
                } else {
                    &[ALPN_HTTP1]
                };
                b = b.tls_backend_preconfigured(tls.config(alpn));
                if tls.requestable(&opts) {
                    sni = Some(Arc::new(tls));
                } else {
                    tracing::info!(
                        server_name = name,
                        "Proxy or IP server_name: verifying the name, SNI stays the target's host"
                    );
                }
            }
        }
        let client = b.build().map_err(err)?;
        let mut headers = HeaderMap::new();
        let hv = |s: &str| {
            HeaderValue::from_str(s).map_err(|_| ClientError(format!("invalid header value {s:?}")))
        };
        headers.insert(ACCEPT, hv(&opts.accept)?);
        headers.insert(reqwest::header::USER_AGENT, hv(&opts.user_agent)?);
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static(if opts.enable_compression {
                "gzip"
            } else {
                "identity"
            }),
        );
        Ok(TargetClient {
            client,
            opts,
            headers,
            sni,
            bound: None,
        })
    }

    /// The client for the target at `url`: the pool's own unless
    /// `server_name` needs a client per target (its connections go to that
    /// target only). Call once per target, not per scrape; a client that
    /// cannot be built here is retried, and reported, at every scrape.
    pub fn for_target(&self, url: &str) -> TargetClient {
        let mut c = self.clone();
        c.bound = None;
        if let Some(sni) = &self.sni {
            if url.starts_with("https://") {
                match sni.bind(url) {
                    Ok(b) => c.bound = Some(Arc::new(b)),
                    Err(e) => {
                        tracing::warn!(target = url, err = %e, "Creating the target's TLS client failed")
                    }
                }
            }
        }
        c
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Fetches `url` into `buf` (cleared first) within `timeout`.
    pub async fn fetch(
        &self,
        url: &str,
        timeout: Duration,
        buf: &mut Vec<u8>,
    ) -> Result<Fetched, ScrapeError> {
        buf.clear();
        match tokio::time::timeout(timeout, self.fetch_inner(url, timeout, buf)).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Http(format!(
                "Get {}: context deadline exceeded",
                vigil_model::gofmt::quote(url)
            ))),
        }
    }

    async fn fetch_inner(
        &self,
        url: &str,
        timeout: Duration,
        buf: &mut Vec<u8>,
    ) -> Result<Fetched, ScrapeError> {
        let get_err = |msg: String| {
            ScrapeError::Http(format!("Get {}: {msg}", vigil_model::gofmt::quote(url)))
        };
        let mut resp = match &self.sni {
            Some(sni) if url.starts_with("https://") => {
                let bound = match &self.bound {
                    Some(b) if b.url == url => b.clone(),
                    // Not bound by `for_target` (or binding failed): correct, slow.
                    _ => Arc::new(sni.bind(url).map_err(get_err)?),
                };
                self.send_as_server_name(sni, &bound, timeout)
                    .await
                    .map_err(get_err)?
            }
            _ => self
                .request(&self.client, url, timeout)
                .map_err(get_err)?
                .send()
                .await
                .map_err(|e| get_err(error_chain(&e)))?,
        };
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(ScrapeError::Http(
                format!(
                    "server returned HTTP status {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .trim_end()
                .to_string(),
            ));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let limit = self.opts.body_size_limit;
        // Only what was asked for is inflated; anything else is passed on
        // as it came, as Prometheus does.
        let mut gunzip = resp
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|v| {
                v.as_bytes().eq_ignore_ascii_case(b"gzip") && self.opts.enable_compression
            })
            .then(Gunzip::new);
        let gunzip_err = |e: GunzipError| match e {
            GunzipError::TooLarge => ScrapeError::BodySizeLimit,
            GunzipError::Corrupt(msg) => ScrapeError::Http(msg.to_string()),
        };
        while let Some(chunk) = resp.chunk().await.map_err(|e| get_err(error_chain(&e)))? {
            match gunzip.as_mut() {
                Some(g) => g.feed(&chunk, buf, limit).map_err(gunzip_err)?,
                None => {
                    if limit > 0 && (buf.len() + chunk.len()) as u64 > limit {
                        return Err(ScrapeError::BodySizeLimit);
                    }
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        if let Some(g) = &gunzip {
            g.finish().map_err(gunzip_err)?;
        }
        Ok(Fetched { content_type })
    }

    /// A GET with the scrape's headers.
    fn request(
        &self,
        client: &reqwest::Client,
        url: impl reqwest::IntoUrl,
        timeout: Duration,
    ) -> Result<RequestBuilder, String> {
        let mut req = client.get(url).headers(self.headers.clone()).header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format_seconds(timeout),
        );
        if let Some(c) = &self.opts.credentials {
            req = req.header(AUTHORIZATION, c.header()?);
        }
        Ok(req)
    }

    /// Requests `bound`'s target through the server name with the target's
    /// `Host`, following redirects that stay on the target.
    async fn send_as_server_name(
        &self,
        sni: &ServerNameTls,
        bound: &BoundTarget,
        timeout: Duration,
    ) -> Result<Response, String> {
        let mut request_url = bound.request_url.clone();
        let mut host = bound.host.clone();
        let mut current: Option<Url> = None;
        let mut redirects = 0;
        loop {
            let shown = current.as_ref().unwrap_or(&bound.target);
            let resp = self
                .request(&bound.client, request_url, timeout)?
                .header(HOST, host)
                .send()
                .await
                // Errors name the target's URL, not the one with the name.
                .map_err(|e| error_chain(&e.with_url(shown.clone())))?;
            if !self.opts.follow_redirects || !is_redirect(resp.status()) {
                return Ok(resp);
            }
            let Some(location) = resp.headers().get(LOCATION) else {
                return Ok(resp);
            };
            if redirects == MAX_REDIRECTS {
                return Err(format!("stopped after {MAX_REDIRECTS} redirects"));
            }
            redirects += 1;
            let next = location
                .to_str()
                .ok()
                .and_then(|l| shown.join(l).ok())
                .ok_or_else(|| format!("failed to parse Location header {location:?}"))?;
            if !bound.same_target(&next) {
                return Err(format!(
                    "redirect to {} not followed: it leaves the target and tls_config.server_name is set",
                    vigil_model::gofmt::quote(next.as_str())
                ));
            }
            request_url = sni.request_url(&next)?;
            host = HeaderValue::from_str(&match next.port() {
                Some(p) => format!("{}:{p}", next.host_str().unwrap_or_default()),
                None => next.host_str().unwrap_or_default().to_string(),
            })
            .map_err(|_| format!("invalid host in redirect to {next}"))?;
            current = Some(next);
        }
    }
}

fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Go's `strconv.FormatFloat(seconds, 'f', -1, 64)`: `10`, `0.5`.
fn format_seconds(d: Duration) -> String {
    vigil_model::gofmt::format_float(d.as_secs_f64(), vigil_model::gofmt::FloatFormat::F)
}

/// The error and its causes, innermost last, deduplicated.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn timeout_header_format() {
        assert_eq!(format_seconds(Duration::from_secs(10)), "10");
        assert_eq!(format_seconds(Duration::from_millis(500)), "0.5");
        assert_eq!(format_seconds(Duration::from_millis(1250)), "1.25");
    }

    #[test]
    fn credential_headers() {
        let b = Credentials::Basic {
            username: "user".into(),
            password: "pass".into(),
            password_file: None,
        };
        assert_eq!(b.header().unwrap(), "Basic dXNlcjpwYXNz");
        let a = Credentials::Authorization {
            kind: String::new(),
            credentials: "tok".into(),
            credentials_file: None,
        };
        assert_eq!(a.header().unwrap(), "Bearer tok");
        let dir = std::env::temp_dir().join(format!("vigil-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "secret\n").unwrap();
        let a = Credentials::Authorization {
            kind: "Custom".into(),
            credentials: String::new(),
            credentials_file: Some(f.clone()),
        };
        assert_eq!(a.header().unwrap(), "Custom secret");
        std::fs::remove_file(&f).unwrap();
        assert!(a.header().unwrap_err().starts_with("unable to read file"));
    }
}
