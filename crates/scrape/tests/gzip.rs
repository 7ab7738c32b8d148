//! Compressed scrapes over a real socket: what is asked for, what is
//! inflated, and what a bad or oversized body does.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vigil_scrape::client::{ClientOptions, TargetClient};
use vigil_scrape::scrape_loop::ScrapeError;

/// Serves every request with `encoding` (if any) and `body`, sent in small
/// writes so the client sees several chunks; records request heads.
async fn server(
    encoding: Option<&'static str>,
    body: Vec<u8>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let (seen, body) = (seen.clone(), body.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut b).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_lowercase());
                let mut resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\n",
                    body.len()
                );
                if let Some(e) = encoding {
                    resp.push_str(&format!("content-encoding: {e}\r\n"));
                }
                resp.push_str("\r\n");
                let _ = tcp.write_all(resp.as_bytes()).await;
                for piece in body.chunks(700) {
                    let _ = tcp.write_all(piece).await;
                    let _ = tcp.flush().await;
                    tokio::task::yield_now().await;
                }
            });
        }
    });
    (url, heads)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn exposition() -> Vec<u8> {
    (0..3000)
        .flat_map(|i| format!("m{{i=\"{i}\"}} {i}\n").into_bytes())
        .collect()
}

async fn fetch(opts: ClientOptions, url: &str) -> Result<Vec<u8>, ScrapeError> {
    let client = TargetClient::new(opts).unwrap().for_target(url);
    let mut buf = Vec::new();
    client.fetch(url, Duration::from_secs(10), &mut buf).await?;
    Ok(buf)
}

#[tokio::test]
async fn gzip_is_asked_for_and_inflated() {
    let plain = exposition();
    let (url, heads) = server(Some("gzip"), gzip(&plain)).await;
    let got = fetch(ClientOptions::default(), &url).await.unwrap();
    assert_eq!(got, plain);
    assert!(heads.lock().unwrap()[0].contains("accept-encoding: gzip\r\n"));
}

#[tokio::test]
async fn without_compression_identity_is_asked_for_and_bodies_pass_as_they_are() {
    let opts = || ClientOptions {
        enable_compression: false,
        ..ClientOptions::default()
    };
    let (url, heads) = server(None, exposition()).await;
    assert_eq!(fetch(opts(), &url).await.unwrap(), exposition());
    assert!(heads.lock().unwrap()[0].contains("accept-encoding: identity\r\n"));
    // A gzip body nobody asked for is not inflated (Prometheus's rule).
    let packed = gzip(&exposition());
    let (url, _) = server(Some("gzip"), packed.clone()).await;
    assert_eq!(fetch(opts(), &url).await.unwrap(), packed);
}

#[tokio::test]
async fn body_size_limit_counts_inflated_bytes() {
    let plain = exposition();
    let packed = gzip(&plain);
    let (url, _) = server(Some("gzip"), packed.clone()).await;
    let opts = |limit: usize| ClientOptions {
        body_size_limit: limit as u64,
        ..ClientOptions::default()
    };
    // The compressed body is far below the limit; the inflated one is not.
    assert!(packed.len() < plain.len() / 2);
    assert!(matches!(
        fetch(opts(plain.len() - 1), &url).await,
        Err(ScrapeError::BodySizeLimit)
    ));
    assert_eq!(fetch(opts(plain.len()), &url).await.unwrap(), plain);
}

#[tokio::test]
async fn a_corrupt_gzip_body_fails_the_scrape_with_a_reason() {
    let mut packed = gzip(&exposition());
    let n = packed.len();
    packed[n / 2] ^= 0x55;
    packed[n / 2 + 1] ^= 0x55;
    let (url, _) = server(Some("gzip"), packed).await;
    let err = fetch(ClientOptions::default(), &url)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("flate: ") || err.starts_with("gzip: "),
        "{err}"
    );
    let (url, _) = server(Some("gzip"), b"plain text, not gzip".to_vec()).await;
    let err = fetch(ClientOptions::default(), &url)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "gzip: invalid header");
}
