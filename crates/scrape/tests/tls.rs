//! Scrapes over real TLS: a rustls server on 127.0.0.1 with certificates made
//! at test time, recording what each ClientHello and request carried (SNI,
//! offered ALPN, `Host`, client certificate).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use vigil_config::Config;
use vigil_scrape::client::{ClientOptions, TargetClient, TlsOptions};
use vigil_scrape::testing::RecordingStorage;
use vigil_scrape::{ManagerOptions, ScrapeError, ScrapeManager, TargetHealth};

const NAME: &str = "metrics.example.internal";
const BODY: &str = "# TYPE tls_test_metric gauge\ntls_test_metric 42\n";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A CA and certificates it signs.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate with its key, as PEM and as rustls wants them.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// A leaf for `sans` (DNS names or IP addresses).
    fn leaf(&self, sans: &[&str]) -> Leaf {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            sans.first().copied().unwrap_or("client"),
        );
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    fn der(&self) -> CertificateDer<'static> {
        rustls::pki_types::pem::PemObject::from_pem_slice(self.pem.as_bytes()).unwrap()
    }
}

/// What one connection showed the server.
#[derive(Debug, Clone, Default)]
struct Seen {
    sni: Option<String>,
    /// Protocols the client offered.
    alpn: Vec<String>,
    /// `Host` of the request; `None` when no request arrived (the handshake
    /// failed).
    host: Option<String>,
    path: Option<String>,
    client_cert: bool,
    /// Negotiated protocol version.
    version: Option<String>,
}

/// Serves one certificate for every SNI, noting what each ClientHello said.
#[derive(Debug)]
struct Recorder {
    key: Arc<CertifiedKey>,
    hellos: Arc<Mutex<Vec<Seen>>>,
}

impl ResolvesServerCert for Recorder {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.hellos.lock().unwrap().push(Seen {
            sni: hello.server_name().map(str::to_string),
            alpn: hello
                .alpn()
                .map(|ps| {
                    ps.map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect()
                })
                .unwrap_or_default(),
            ..Seen::default()
        });
        Some(self.key.clone())
    }
}

/// An HTTPS/1.1 server answering `/metrics` with `BODY`, and redirects under
/// `/redirect/...`.
struct TlsServer {
    addr: SocketAddr,
    hellos: Arc<Mutex<Vec<Seen>>>,
    requests: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsServer {
    /// `client_ca`: require a client certificate signed by it.
    async fn start(leaf: &Leaf, client_ca: Option<&Ca>) -> TlsServer {
        let provider = provider();
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                leaf.key_der.clone(),
            )))
            .unwrap();
        let hellos = Arc::new(Mutex::new(Vec::new()));
        let resolver = Recorder {
            key: Arc::new(CertifiedKey::new(vec![leaf.der.clone()], key)),
            hellos: hellos.clone(),
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let config = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.der()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder
                    .with_client_cert_verifier(verifier)
                    .with_cert_resolver(Arc::new(resolver))
            }
            None => builder
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(resolver)),
        };
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let reqs = reqs.clone();
                tokio::spawn(async move {
                    // Handshake failures are the client's to report.
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls, reqs).await;
                    }
                });
            }
        });
        TlsServer {
            addr,
            hellos,
            requests,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn hellos(&self) -> Vec<Seen> {
        self.hellos.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    reqs: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_string();
    let host = lines
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("host").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let (_, conn) = tls.get_ref();
    reqs.lock().unwrap().push(Seen {
        sni: conn.server_name().map(str::to_string),
        alpn: Vec::new(),
        host: Some(host.clone()),
        path: Some(path.clone()),
        client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
        version: conn.protocol_version().map(|v| format!("{v:?}")),
    });
    let response = match path.as_str() {
        "/metrics" => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
            BODY.len()
        ),
        // Absolute, built from `Host` as many servers do.
        "/redirect/absolute" => format!(
            "HTTP/1.1 302 Found\r\nLocation: https://{host}/metrics\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        "/redirect/relative" => {
            "HTTP/1.1 302 Found\r\nLocation: /metrics\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string()
        }
        "/redirect/loop" => {
            "HTTP/1.1 302 Found\r\nLocation: /redirect/loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string()
        }
        "/redirect/away" => {
            "HTTP/1.1 302 Found\r\nLocation: https://elsewhere.invalid:1/metrics\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string()
        }
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_string(),
    };
    let _ = tls.write_all(response.as_bytes()).await;
    let _ = tls.shutdown().await;
}

fn tls_opts(ca: Option<&Ca>) -> TlsOptions {
    TlsOptions {
        ca_pem: ca.map(|c| c.pem.clone().into_bytes()),
        ..TlsOptions::default()
    }
}

/// One scrape of `url` as a scrape loop does it (the pool's client
/// specialized for the target).
async fn scrape(tls: TlsOptions, url: &str) -> Result<String, ScrapeError> {
    let client = TargetClient::new(ClientOptions {
        tls,
        ..ClientOptions::default()
    })
    .unwrap()
    .for_target(url);
    let mut buf = Vec::new();
    client.fetch(url, Duration::from_secs(10), &mut buf).await?;
    Ok(String::from_utf8(buf).unwrap())
}

fn message(r: Result<String, ScrapeError>) -> String {
    match r {
        Ok(body) => panic!("scrape succeeded, expected an error; body {body:?}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn ca_file_trusts_the_server() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&["127.0.0.1"]), None).await;
    let body = scrape(tls_opts(Some(&ca)), &srv.url("/metrics"))
        .await
        .unwrap();
    assert_eq!(body, BODY);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].host.as_deref(), Some(&*srv.addr.to_string()));
    // No SNI for an IP address (RFC 6066), as Go.
    assert_eq!(reqs[0].sni, None);
}

#[tokio::test]
async fn unknown_ca_fails_with_a_verification_error() {
    let ca = Ca::new("test CA");
    let other = Ca::new("other CA");
    let srv = TlsServer::start(&ca.leaf(&["127.0.0.1"]), None).await;
    let url = srv.url("/metrics");
    let err = message(scrape(tls_opts(Some(&other)), &url).await);
    assert!(err.starts_with(&format!("Get \"{url}\": ")), "{err}");
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    assert!(srv.requests().is_empty());
    // The same through server_name's own TLS config.
    let err = message(
        scrape(
            TlsOptions {
                server_name: Some(NAME.into()),
                ..tls_opts(Some(&other))
            },
            &url,
        )
        .await,
    );
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test]
async fn insecure_skip_verify_accepts_any_certificate() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&["not-this-host.example"]), None).await;
    let url = srv.url("/metrics");
    let insecure = TlsOptions {
        insecure_skip_verify: true,
        ..tls_opts(None)
    };
    assert_eq!(scrape(insecure.clone(), &url).await.unwrap(), BODY);
    // server_name is still sent as SNI (Go does too).
    let with_name = TlsOptions {
        server_name: Some("wrong.example.internal".into()),
        ..insecure
    };
    assert_eq!(scrape(with_name, &url).await.unwrap(), BODY);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].sni.as_deref(), Some("wrong.example.internal"));
    // Without it, the untrusted certificate fails.
    let err = message(scrape(tls_opts(None), &url).await);
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn client_certificate_for_mutual_tls() {
    let ca = Ca::new("test CA");
    let clients = Ca::new("client CA");
    let srv = TlsServer::start(&ca.leaf(&["127.0.0.1", NAME]), Some(&clients)).await;
    let url = srv.url("/metrics");
    let client = clients.leaf(&["scraper"]);
    let with_cert = TlsOptions {
        cert_pem: Some(client.cert_pem.clone().into_bytes()),
        key_pem: Some(client.key_pem.clone().into_bytes()),
        ..tls_opts(Some(&ca))
    };
    assert_eq!(scrape(with_cert.clone(), &url).await.unwrap(), BODY);
    // The certificate also goes out on server_name's own TLS config.
    let named = TlsOptions {
        server_name: Some(NAME.into()),
        ..with_cert
    };
    assert_eq!(scrape(named, &url).await.unwrap(), BODY);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.client_cert), "{reqs:?}");
    // Without one the server ends the handshake.
    let err = message(scrape(tls_opts(Some(&ca)), &url).await);
    assert!(err.starts_with(&format!("Get \"{url}\": ")), "{err}");
    assert_eq!(srv.requests().len(), 2);
}

#[tokio::test]
async fn server_name_is_sni_and_verified_name_while_host_stays_the_target() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&[NAME]), None).await;
    let url = srv.url("/metrics");
    let named = TlsOptions {
        server_name: Some(NAME.into()),
        ..tls_opts(Some(&ca))
    };
    assert_eq!(scrape(named.clone(), &url).await.unwrap(), BODY);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].sni.as_deref(), Some(NAME));
    assert_eq!(reqs[0].host.as_deref(), Some(&*srv.addr.to_string()));
    assert_eq!(reqs[0].path.as_deref(), Some("/metrics"));
    // HTTP/1.1 only: under HTTP/2 the name would be the `:authority`.
    assert_eq!(srv.hellos()[0].alpn, ["http/1.1"]);

    // Scrape after scrape on one client (the loop's steady state).
    let client = TargetClient::new(ClientOptions {
        tls: named,
        ..ClientOptions::default()
    })
    .unwrap()
    .for_target(&url);
    let mut buf = Vec::new();
    for _ in 0..3 {
        client
            .fetch(&url, Duration::from_secs(10), &mut buf)
            .await
            .unwrap();
        assert_eq!(buf, BODY.as_bytes());
    }
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs.iter().all(|r| r.sni.as_deref() == Some(NAME)));
}

#[tokio::test]
async fn wrong_server_name_fails_verification_naming_it() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&[NAME]), None).await;
    let url = srv.url("/metrics");
    let wrong = TlsOptions {
        server_name: Some("wrong.example.internal".into()),
        ..tls_opts(Some(&ca))
    };
    let err = message(scrape(wrong, &url).await);
    // The target's URL, never the one rewritten to the name.
    assert!(err.starts_with(&format!("Get \"{url}\": ")), "{err}");
    assert!(!err.contains("https://wrong.example.internal"), "{err}");
    assert!(
        err.contains("certificate not valid for name \"wrong.example.internal\""),
        "{err}"
    );
    assert!(srv.requests().is_empty());
    assert_eq!(
        srv.hellos()[0].sni.as_deref(),
        Some("wrong.example.internal")
    );
}

#[tokio::test]
async fn without_server_name_the_ip_target_does_not_match_a_dns_certificate() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&[NAME]), None).await;
    let err = message(scrape(tls_opts(Some(&ca)), &srv.url("/metrics")).await);
    assert!(
        err.contains("certificate not valid for name \"127.0.0.1\""),
        "{err}"
    );
    assert!(srv.requests().is_empty());
}

#[tokio::test]
async fn server_name_follows_redirects_that_stay_on_the_target() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&[NAME]), None).await;
    let named = TlsOptions {
        server_name: Some(NAME.into()),
        ..tls_opts(Some(&ca))
    };
    for path in ["/redirect/absolute", "/redirect/relative"] {
        let body = scrape(named.clone(), &srv.url(path)).await.unwrap();
        assert_eq!(body, BODY, "{path}");
    }
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        assert_eq!(r.sni.as_deref(), Some(NAME));
        assert_eq!(r.host.as_deref(), Some(&*srv.addr.to_string()));
    }
    assert_eq!(reqs[1].path.as_deref(), Some("/metrics"));
    assert_eq!(reqs[3].path.as_deref(), Some("/metrics"));

    let url = srv.url("/redirect/loop");
    let err = message(scrape(named.clone(), &url).await);
    assert_eq!(err, format!("Get \"{url}\": stopped after 10 redirects"));
    // The first request and ten redirects, as Go's client.
    assert_eq!(srv.requests().len(), 4 + 11);

    let url = srv.url("/redirect/away");
    let err = message(scrape(named, &url).await);
    assert!(
        err.starts_with(&format!(
            "Get \"{url}\": redirect to \"https://elsewhere.invalid:1/metrics\" not followed"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn ip_server_name_verifies_the_ip_san() {
    let ca = Ca::new("test CA");
    // The certificate is for another address than the one connected to.
    let srv = TlsServer::start(&ca.leaf(&["10.1.2.3"]), None).await;
    let url = srv.url("/metrics");
    let named = |name: &str| TlsOptions {
        server_name: Some(name.into()),
        ..tls_opts(Some(&ca))
    };
    assert_eq!(scrape(named("10.1.2.3"), &url).await.unwrap(), BODY);
    assert_eq!(
        srv.requests()[0].host.as_deref(),
        Some(&*srv.addr.to_string())
    );
    let err = message(scrape(named("10.9.9.9"), &url).await);
    assert!(
        err.contains("certificate not valid for name \"10.9.9.9\""),
        "{err}"
    );
}

/// An HTTP CONNECT proxy that notes what it was asked to reach.
async fn connect_proxy() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let noted = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let noted = noted.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if down.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let authority = line.split(' ').nth(1).unwrap_or("").to_string();
                noted.lock().unwrap().push(authority.clone());
                let Ok(mut up) = tokio::net::TcpStream::connect(&authority).await else {
                    let _ = down.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = down.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            });
        }
    });
    (addr, asked)
}

#[tokio::test]
async fn server_name_through_a_proxy_connects_to_the_target() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&[NAME]), None).await;
    let (proxy, asked) = connect_proxy().await;
    let url = srv.url("/metrics");
    let client = TargetClient::new(ClientOptions {
        tls: TlsOptions {
            server_name: Some(NAME.into()),
            ..tls_opts(Some(&ca))
        },
        proxy_url: Some(format!("http://{proxy}")),
        ..ClientOptions::default()
    })
    .unwrap()
    .for_target(&url);
    let mut buf = Vec::new();
    client
        .fetch(&url, Duration::from_secs(10), &mut buf)
        .await
        .unwrap();
    assert_eq!(buf, BODY.as_bytes());
    // The proxy is asked for the target, not for the name.
    assert_eq!(*asked.lock().unwrap(), [srv.addr.to_string()]);
    assert_eq!(
        srv.requests()[0].host.as_deref(),
        Some(&*srv.addr.to_string())
    );
}

#[tokio::test]
async fn scrape_manager_reports_up_and_the_tls_error() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&[NAME]), None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let job = |name: &str, server_name: &str| {
        format!(
            "- job_name: {name}\n  scheme: https\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  tls_config:\n    ca_file: {}\n    server_name: {server_name}\n  static_configs:\n  - targets: ['{}']\n",
            ca_file.display(),
            srv.addr
        )
    };
    let yaml = format!(
        "scrape_configs:\n{}{}",
        job("good", NAME),
        job("bad", "wrong.example.internal")
    );
    let cfg = Config::from_yaml(&yaml, "tls.yml").unwrap();
    let storage = RecordingStorage::new();
    let mgr = ScrapeManager::new(Arc::new(storage.clone()), ManagerOptions::default()).unwrap();
    mgr.apply_config(&cfg).unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let up = |job: &str| storage.last_matching("up", &[("job", job)]).map(|r| r.v);
    while (up("good").is_none() || up("bad").is_none()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(up("good"), Some(1.0));
    assert_eq!(up("bad"), Some(0.0));
    assert_eq!(
        storage
            .last_matching("tls_test_metric", &[("job", "good")])
            .map(|r| r.v),
        Some(42.0)
    );
    let targets = mgr.targets().active;
    let target = |job: &str| {
        targets
            .iter()
            .find(|t| t.scrape_pool == job)
            .unwrap()
            .clone()
    };
    let good = target("good");
    assert_eq!(good.health, TargetHealth::Up);
    assert_eq!(good.scrape_url, srv.url("/metrics"));
    let bad = target("bad");
    assert_eq!(bad.health, TargetHealth::Down);
    assert!(
        bad.last_error
            .contains("certificate not valid for name \"wrong.example.internal\""),
        "{}",
        bad.last_error
    );
    let reqs = srv.requests();
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(
        |r| r.sni.as_deref() == Some(NAME) && r.host.as_deref() == Some(&*srv.addr.to_string())
    ));
    mgr.shutdown().await;
}

#[tokio::test]
async fn min_and_max_version_bound_the_negotiated_protocol() {
    let ca = Ca::new("test CA");
    let srv = TlsServer::start(&ca.leaf(&["127.0.0.1", NAME]), None).await;
    let url = srv.url("/metrics");
    let v = |min: Option<&str>, max: Option<&str>, name: Option<&str>| TlsOptions {
        min_version: min.map(str::to_string),
        max_version: max.map(str::to_string),
        server_name: name.map(str::to_string),
        ..tls_opts(Some(&ca))
    };
    // Pool client and the per-target client of `server_name` alike.
    for name in [None, Some(NAME)] {
        for (min, max, want) in [
            (None, None, "TLSv1_3"),
            (None, Some("TLS12"), "TLSv1_2"),
            (Some("TLS12"), Some("TLS13"), "TLSv1_3"),
            (Some("TLS13"), None, "TLSv1_3"),
        ] {
            assert_eq!(scrape(v(min, max, name), &url).await.unwrap(), BODY);
            let got = srv.requests().last().unwrap().version.clone();
            assert_eq!(got.as_deref(), Some(want), "{min:?}..{max:?} {name:?}");
        }
    }
}
