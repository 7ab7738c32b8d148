//! Support for the API end-to-end tests (`grafana`, `promtool_query`): a
//! fake exporter served from a thread, a real Prometheus started on a free
//! port, and helpers to compare two servers' JSON answers by shape.
//!
//! Owns no product code: everything here is test scaffolding. It must not
//! hard-code answers; expected values come from the exporter's formulas or
//! from the real Prometheus.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{free_port, http, peer, wait_ok, Proc};

/// Counter increments per second of `fake_requests_total{code="200"}`; the
/// `code="500"` series grows at a third of it.
pub const REQ_200_PER_SEC: f64 = 300.0;
pub const REQ_500_PER_SEC: f64 = 100.0;
/// Bucket weights of `fake_latency_seconds`: cumulative counts are
/// `weight * (BASE + ticks)`, so every bucket's rate is proportional to its
/// weight and `histogram_quantile(0.9, ...)` lands at 0.5 + 0.5 * (9-8)/(10-8).
pub const BUCKETS: [(&str, u64); 6] = [
    ("0.05", 1),
    ("0.1", 3),
    ("0.25", 6),
    ("0.5", 8),
    ("1", 10),
    ("+Inf", 10),
];
pub const EXPECTED_P90: f64 = 0.75;
/// Counters start far from zero so that `rate()` never clamps its
/// extrapolation at the counter's zero point (which would depend on when
/// each server took its first sample).
const BASE: u64 = 1_000_000;

/// A text-format (0.0.4) exporter in a thread: counters advance with wall
/// time in centisecond ticks, gauges are constant.
pub struct FakeExporter {
    pub port: u16,
    pub scrapes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl FakeExporter {
    pub fn start() -> FakeExporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind exporter");
        let port = listener.local_addr().expect("exporter addr").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking exporter listener");
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let (stop2, scrapes2) = (stop.clone(), scrapes.clone());
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let scrapes = scrapes2.clone();
                        std::thread::spawn(move || serve(stream, started, &scrapes));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeExporter {
            port,
            scrapes,
            stop,
            handle: Some(handle),
        }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeExporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut stream: TcpStream, started: Instant, scrapes: &AtomicU64) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&req);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if path == "/metrics" {
        scrapes.fetch_add(1, Ordering::Relaxed);
        ("200 OK", exposition(started.elapsed()))
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes());
}

/// The exposition at `elapsed` since the exporter started.
pub fn exposition(elapsed: Duration) -> String {
    let ticks = elapsed.as_millis() as u64 / 10;
    let c = BASE + ticks;
    let mut s = String::new();
    s.push_str("# HELP fake_requests_total Requests handled, by status code.\n");
    s.push_str("# TYPE fake_requests_total counter\n");
    s.push_str(&format!(
        "fake_requests_total{{code=\"200\",method=\"get\"}} {}\n",
        c * (REQ_200_PER_SEC as u64 / 100)
    ));
    s.push_str(&format!(
        "fake_requests_total{{code=\"500\",method=\"get\"}} {}\n",
        c * (REQ_500_PER_SEC as u64 / 100)
    ));
    s.push_str("# HELP fake_temperature_celsius Room temperature.\n");
    s.push_str("# TYPE fake_temperature_celsius gauge\n");
    s.push_str("fake_temperature_celsius{room=\"a\"} 21.5\n");
    s.push_str("fake_temperature_celsius{room=\"b\"} 19.25\n");
    s.push_str("# HELP fake_special_value Values that need Go's float formatting.\n");
    s.push_str("# TYPE fake_special_value gauge\n");
    s.push_str("fake_special_value{kind=\"tiny\"} 1e-07\n");
    s.push_str("fake_special_value{kind=\"huge\"} 1.5e+22\n");
    s.push_str("fake_special_value{kind=\"nan\"} NaN\n");
    s.push_str("fake_special_value{kind=\"inf\"} +Inf\n");
    s.push_str("fake_special_value{kind=\"third\"} 0.3333333333333333\n");
    s.push_str("# HELP fake_latency_seconds Request latency.\n");
    s.push_str("# TYPE fake_latency_seconds histogram\n");
    for (le, w) in BUCKETS {
        s.push_str(&format!(
            "fake_latency_seconds_bucket{{le=\"{le}\"}} {}\n",
            w * c
        ));
    }
    s.push_str(&format!("fake_latency_seconds_sum {}\n", c * 4));
    s.push_str(&format!("fake_latency_seconds_count {}\n", 10 * c));
    s
}

/// The scrape config both servers use: one job scraping the exporter at 1s.
pub fn scrape_config(target: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: fake\n    static_configs:\n      - targets: ['{target}']\n"
    )
}

/// Spawns the real Prometheus (if installed) with its own data dir; does
/// not wait for readiness (call `wait_prometheus_ready`).
pub fn spawn_prometheus(dir: &Path, config: &str) -> Option<(Proc, String)> {
    let bin = peer("prometheus")?;
    let pdir = dir.join("prometheus");
    std::fs::create_dir_all(&pdir).expect("create prometheus dir");
    let cfg = pdir.join("prometheus.yml");
    std::fs::write(&cfg, config).expect("write prometheus config");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            pdir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(&pdir);
    let p = Proc::spawn("prometheus", cmd, &pdir);
    Some((p, format!("http://127.0.0.1:{port}")))
}

pub fn wait_prometheus_ready(p: &Proc, base: &str) {
    wait_ok(&format!("{base}/-/ready"), Duration::from_secs(60), Some(p));
}

/// One HTTP exchange as Grafana sees it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub body: Value,
}

/// A request: GET with the parameters in the URL, or POST with them as an
/// `application/x-www-form-urlencoded` body (Grafana's default method).
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub name: &'static str,
    pub post: bool,
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl ApiRequest {
    pub fn get(name: &'static str, path: &str, params: &[(&str, String)]) -> Self {
        Self::new(name, false, path, params)
    }
    pub fn post(name: &'static str, path: &str, params: &[(&str, String)]) -> Self {
        Self::new(name, true, path, params)
    }
    fn new(name: &'static str, post: bool, path: &str, params: &[(&str, String)]) -> Self {
        ApiRequest {
            name,
            post,
            path: path.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    pub fn send(&self, base: &str) -> Reply {
        let client = http();
        let url = format!("{base}{}", self.path);
        let rb = if self.post {
            client.post(&url).form(&self.params)
        } else {
            client.get(format!("{url}{}", query_string(&self.params)))
        };
        let resp = rb
            .send()
            .unwrap_or_else(|e| panic!("{} {url}: {e}", self.name));
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            text,
            body,
        }
    }
}

/// `?k=v&...` encoded as Go's `url.Values.Encode` and `URLSearchParams`
/// do it (spaces as `+`, everything else outside the unreserved set as
/// `%XX`).
pub fn query_string(params: &[(String, String)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let enc = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else if b == b' ' {
                out.push('+');
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    let pairs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    format!("?{}", pairs.join("&"))
}

/// The JSON "type skeleton" of a value: scalars become their type name,
/// objects keep their keys, arrays become the set of their elements'
/// skeletons. Two answers with equal skeletons parse the same way.
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(a) => {
            let set: BTreeSet<String> = a.iter().map(|e| shape(e).to_string()).collect();
            let elems: Vec<Value> = set
                .iter()
                .map(|s| serde_json::from_str(s).unwrap_or(Value::Null))
                .collect();
            json!({ "[]": elems })
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// `[<float seconds>, "<value>"]` -> (seconds, value); panics naming `ctx`
/// when the tuple does not have Prometheus's types.
pub fn point(p: &Value, ctx: &str) -> (f64, f64) {
    let arr = p
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: point is not an array: {p}"));
    assert_eq!(arr.len(), 2, "{ctx}: point {p}");
    let t = arr[0]
        .as_f64()
        .unwrap_or_else(|| panic!("{ctx}: timestamp is not a number: {p}"));
    let s = arr[1]
        .as_str()
        .unwrap_or_else(|| panic!("{ctx}: value is not a string: {p}"));
    (t, parse_go_float(s, ctx))
}

/// Parses a sample value string as Go's `ParseFloat` would ("NaN", "+Inf").
pub fn parse_go_float(s: &str, ctx: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s
            .parse()
            .unwrap_or_else(|_| panic!("{ctx}: value {s:?} is not a float")),
    }
}

/// Go's `strconv.FormatFloat(t, 'f', -1, 64)` for a time with millisecond
/// precision, which is how Grafana's backend writes `time`/`start`/`end`.
pub fn grafana_time(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i64;
    let mut s = format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The timestamp (seconds) of the first sample of `up{job="fake"}` in the
/// server, once it has one.
pub fn first_scrape(base: &str) -> Option<f64> {
    let r = ApiRequest::post(
        "first_scrape",
        "/api/v1/query",
        &[("query", "up{job=\"fake\"}[10m]".to_string())],
    )
    .send(base);
    let first = r.body["data"]["result"][0]["values"][0].clone();
    if first.is_null() {
        return None;
    }
    Some(point(&first, "first scrape").0)
}
