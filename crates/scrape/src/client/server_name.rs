//! `tls_config.server_name`, as Go's `tls.Config.ServerName`: the handshake
//! sends the name as SNI and verifies the certificate against it, while TCP
//! still goes to the target and `Host` stays the target's address.
//!
//! reqwest takes SNI and the verified name from the URL host, so each target
//! gets its own client that requests `https://<server_name>:<port>` and
//! resolves every name to the target's host. Through a proxy (which would
//! be asked for the name) or with an IP `server_name` (which would become
//! the address), the URL is kept and only verification uses the name.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderValue;
use reqwest::Url;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{ClientError, ClientOptions, TlsOptions};

pub(super) const ALPN_H2: &[u8] = b"h2";
pub(super) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A pool's TLS settings for one `server_name`.
#[derive(Debug)]
pub(super) struct ServerNameTls {
    name: String,
    /// The verifier checks `name` whatever host the URL has; ALPN unset.
    config: rustls::ClientConfig,
}

impl ServerNameTls {
    pub(super) fn new(tls: &TlsOptions, name: &str) -> Result<Self, ClientError> {
        let expected = ServerName::try_from(name.to_string())
            .map_err(|e| ClientError(format!("invalid tls_config.server_name {name:?}: {e}")))?;
        // Same provider choice as reqwest, so both ends of a pool agree.
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let versions: &[&'static rustls::SupportedProtocolVersion] =
            match (tls.min_version.as_deref(), tls.max_version.as_deref()) {
                (Some("TLS13"), Some("TLS12")) => {
                    return Err(ClientError(
                        "tls_config: min_version TLS13 is above max_version TLS12".into(),
                    ))
                }
                (Some("TLS13"), _) => &[&rustls::version::TLS13],
                (_, Some("TLS12")) => &[&rustls::version::TLS12],
                _ => &[&rustls::version::TLS12, &rustls::version::TLS13],
            };
        let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
            Arc::new(AcceptAnyCert(provider.clone()))
        } else {
            let inner: Arc<dyn ServerCertVerifier> = match &tls.ca_pem {
                Some(pem) => WebPkiServerVerifier::builder_with_provider(
                    Arc::new(root_store(pem)?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| ClientError(format!("unable to use specified CA cert: {e}")))?,
                None => Arc::new(
                    rustls_platform_verifier::Verifier::new(provider.clone())
                        .map_err(|e| ClientError(format!("loading system CA certs: {e}")))?,
                ),
            };
            Arc::new(VerifyAs { inner, expected })
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| ClientError(format!("TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&tls.cert_pem, &tls.key_pem) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        ClientError(format!("unable to use specified client cert: {e}"))
                    })?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| ClientError(format!("unable to use specified client key: {e}")))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    ClientError(format!("unable to use specified client cert and key: {e}"))
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(ClientError(
                    "client cert and key must both be set".to_string(),
                ))
            }
        };
        Ok(ServerNameTls {
            name: name.to_string(),
            config,
        })
    }

    /// The rustls config offering `alpn`.
    pub(super) fn config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut c = self.config.clone();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        c
    }

    /// Whether targets can be requested through the name (see the module
    /// doc); otherwise the pool's client keeps the URL and verifies the name.
    pub(super) fn requestable(&self, opts: &ClientOptions) -> bool {
        let proxied = opts.proxy_url.is_some()
            || (opts.proxy_from_environment
                && ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
                    .iter()
                    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty())));
        !proxied && self.name.parse::<IpAddr>().is_err()
    }

    /// The client and URLs of one `https` target.
    pub(super) fn bind(&self, url: &str) -> Result<BoundTarget, String> {
        let target = Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        let host = target
            .host_str()
            .ok_or_else(|| "URL has no host".to_string())?;
        let resolver = TargetAddr {
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
        };
        // HTTP/1.1 only: HTTP/2 would put the name in `:authority`, next to a
        // conflicting `Host` (RFC 9113 lets servers reject that).
        let client = super::base_builder()
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .tls_backend_preconfigured(self.config(&[ALPN_HTTP1]))
            .build()
            .map_err(|e| super::error_chain(&e))?;
        Ok(BoundTarget {
            url: url.to_string(),
            request_url: self.request_url(&target)?,
            host: raw_authority(url)
                .and_then(|a| HeaderValue::from_str(a).ok())
                .ok_or_else(|| format!("no valid host:port in {url:?}"))?,
            target,
            client,
        })
    }

    /// `url` with the name as its host.
    pub(super) fn request_url(&self, url: &Url) -> Result<Url, String> {
        let mut u = url.clone();
        u.set_host(Some(&self.name))
            .map_err(|e| format!("invalid tls_config.server_name {:?}: {e}", self.name))?;
        Ok(u)
    }
}

/// One target's client under `server_name`.
#[derive(Debug)]
pub(super) struct BoundTarget {
    /// The target's URL as the pool knows it.
    pub url: String,
    pub target: Url,
    /// `target` with the server name as host.
    pub request_url: Url,
    /// `Host`: the target's address as written in its URL.
    pub host: HeaderValue,
    pub client: reqwest::Client,
}

impl BoundTarget {
    /// Redirects are followed only to the same scheme, host and port: other
    /// hosts would need their own client (and would need the name's SNI).
    pub fn same_target(&self, next: &Url) -> bool {
        next.scheme() == self.target.scheme()
            && next.host_str() == self.target.host_str()
            && next.port_or_known_default() == self.target.port_or_known_default()
    }
}

/// `host[:port]` of an absolute URL as written (Go keeps an explicit default
/// port in `Host`; `Url` would drop it), without user info.
pub(super) fn raw_authority(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let auth = auth.rfind('@').map_or(auth, |i| &auth[i + 1..]);
    (!auth.is_empty()).then_some(auth)
}

/// Resolves every name to the target's host: the client only ever asks for
/// the server name.
#[derive(Debug)]
struct TargetAddr {
    host: Arc<str>,
}

impl Resolve for TargetAddr {
    fn resolve(&self, _name: Name) -> Resolving {
        let host = self.host.clone();
        Box::pin(async move {
            // Port 0 stands for the URL's port.
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Ok(Box::new(std::iter::once(SocketAddr::new(ip, 0))) as Addrs);
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((&*host, 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn root_store(pem: &[u8]) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert =
            cert.map_err(|e| ClientError(format!("unable to use specified CA cert: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ClientError(format!("unable to use specified CA cert: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ClientError(
            "unable to use specified CA cert: no certificates found".into(),
        ));
    }
    Ok(roots)
}

/// Verifies the chain for `expected`, whatever name the connection used.
#[derive(Debug)]
struct VerifyAs {
    inner: Arc<dyn ServerCertVerifier>,
    expected: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            &self.expected,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: any certificate, but the handshake signatures are
/// still checked (they prove the peer holds the certificate's key).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_authority_keeps_the_written_port() {
        assert_eq!(
            raw_authority("https://127.0.0.1:9100/metrics"),
            Some("127.0.0.1:9100")
        );
        assert_eq!(raw_authority("https://h:443/m?x=1"), Some("h:443"));
        assert_eq!(raw_authority("https://[::1]:9100"), Some("[::1]:9100"));
        assert_eq!(raw_authority("https://u:p@h:1/m"), Some("h:1"));
        assert_eq!(raw_authority("https:///m"), None);
        assert_eq!(raw_authority("nonsense"), None);
    }

    #[test]
    fn request_url_swaps_only_the_host() {
        let tls = ServerNameTls::new(
            &TlsOptions {
                insecure_skip_verify: true,
                ..TlsOptions::default()
            },
            "metrics.example.internal",
        )
        .unwrap();
        let u = Url::parse("https://10.0.0.1:9100/metrics?a=b").unwrap();
        assert_eq!(
            tls.request_url(&u).unwrap().as_str(),
            "https://metrics.example.internal:9100/metrics?a=b"
        );
    }

    #[test]
    fn proxies_and_ip_names_keep_the_url() {
        let tls = |name: &str| {
            ServerNameTls::new(
                &TlsOptions {
                    insecure_skip_verify: true,
                    ..TlsOptions::default()
                },
                name,
            )
            .unwrap()
        };
        let direct = ClientOptions::default();
        assert!(tls("metrics.example.internal").requestable(&direct));
        assert!(!tls("10.1.2.3").requestable(&direct));
        let proxied = ClientOptions {
            proxy_url: Some("http://127.0.0.1:3128".into()),
            ..ClientOptions::default()
        };
        assert!(!tls("metrics.example.internal").requestable(&proxied));
        assert!(ServerNameTls::new(&TlsOptions::default(), "bad name!").is_err());
    }
}
