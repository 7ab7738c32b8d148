//! Self-monitoring: the `/metrics` endpoint and the registry other crates
//! add their metrics to.
//!
//! Names follow Prometheus where the meaning is the same, so the community's
//! Prometheus dashboards and alerts work unchanged. The registry is a
//! `prometheus_client` one: the binary hands it (through `WebMetrics`) to the
//! TSDB, scrape and rules so they register next to the HTTP metrics. Process
//! metrics are read from `/proc` at scrape time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::Shared;

type LabelPairs = Vec<(String, String)>;
type HistogramFamily = Family<LabelPairs, Histogram, fn() -> Histogram>;

fn http_duration_histogram() -> Histogram {
    // Prometheus's buckets for prometheus_http_request_duration_seconds.
    Histogram::new([0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0])
}

fn http_size_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        100.0, 10.0, 8,
    ))
}

/// The process-wide metrics registry plus the metrics the web layer owns.
/// Cheap to clone; all clones share one registry.
#[derive(Clone)]
pub struct WebMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Mutex<Registry>,
    http_requests: Family<LabelPairs, Counter>,
    http_duration: HistogramFamily,
    http_response_size: HistogramFamily,
    query_durations: Arc<QueryDurations>,
}

impl Default for WebMetrics {
    fn default() -> Self {
        WebMetrics::new()
    }
}

impl WebMetrics {
    /// A registry with the HTTP, engine and process metrics registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<LabelPairs, Counter>::default();
        registry.register(
            "prometheus_http_requests",
            "Counter of HTTP requests",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily =
            Family::new_with_constructor(http_duration_histogram as fn() -> Histogram);
        registry.register(
            "prometheus_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests",
            http_duration.clone(),
        );
        let http_response_size: HistogramFamily =
            Family::new_with_constructor(http_size_histogram as fn() -> Histogram);
        registry.register(
            "prometheus_http_response_size_bytes",
            "Histogram of response size for HTTP requests",
            http_response_size.clone(),
        );
        let query_durations = Arc::new(QueryDurations::default());
        registry.register_collector(Box::new(query_durations.clone()));
        registry.register_collector(Box::new(ProcessCollector::new()));
        WebMetrics {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
                http_requests,
                http_duration,
                http_response_size,
                query_durations,
            }),
        }
    }

    /// Locks the registry so another component can register metrics or
    /// collectors (e.g. the TSDB's `prometheus_tsdb_head_series`).
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        match self.inner.registry.lock() {
            Ok(g) => g,
            // A panic while registering leaves the registry usable.
            Err(p) => p.into_inner(),
        }
    }

    /// Records one request.
    pub fn observe_request(&self, handler: &str, code: u16, seconds: f64, size: Option<u64>) {
        let handler = handler.to_string();
        self.inner
            .http_requests
            .get_or_create(&vec![
                ("code".to_string(), code.to_string()),
                ("handler".to_string(), handler.clone()),
            ])
            .inc();
        let h = vec![("handler".to_string(), handler)];
        self.inner.http_duration.get_or_create(&h).observe(seconds);
        if let Some(size) = size {
            self.inner
                .http_response_size
                .get_or_create(&h)
                .observe(size as f64);
        }
    }

    /// Records one query phase for `prometheus_engine_query_duration_seconds`
    /// (`slice` is "inner_eval", "prepare_time", "queue_time" or
    /// "result_sort").
    pub fn observe_query(&self, slice: &'static str, seconds: f64) {
        self.inner.query_durations.observe(slice, seconds);
    }

    /// The registry in the Prometheus text format 0.0.4, or OpenMetrics.
    pub fn encode(&self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        let reg = self.registry();
        let mut out = String::with_capacity(16 * 1024);
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &reg)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &reg)?;
        }
        Ok(out)
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(shared)
}

async fn serve_metrics(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(|a| a.contains("application/openmetrics-text"))
        .unwrap_or(false);
    match shared.metrics.encode(openmetrics) {
        Ok(body) => {
            let ct = if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            };
            let mut resp = body.into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            resp
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error encoding metrics: {}", e),
        )
            .into_response(),
    }
}

/// Middleware counting requests per matched route, the way Prometheus
/// labels them (`/api/v1/label/:name/values`, without the route prefix).
pub(crate) async fn instrument(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| handler_label(p.as_str(), &shared.route_prefix));
    let start = Instant::now();
    let resp = next.run(req).await;
    if let Some(handler) = handler {
        let size = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        shared.metrics.observe_request(
            &handler,
            resp.status().as_u16(),
            start.elapsed().as_secs_f64(),
            size,
        );
    }
    resp
}

/// `/prom/api/v1/label/{name}/values` -> `/api/v1/label/:name/values`.
pub fn handler_label(matched: &str, prefix: &str) -> String {
    let path = if prefix != "/" {
        matched.strip_prefix(prefix).unwrap_or(matched)
    } else {
        matched
    };
    path.replace('{', ":").replace('}', "")
}

/// Sliding-window quantiles for `prometheus_engine_query_duration_seconds`,
/// which Prometheus exposes as a summary with quantiles 0.5, 0.9, 0.99.
#[derive(Debug, Default)]
struct QueryDurations {
    slices: Mutex<Vec<SliceStats>>,
}

#[derive(Debug)]
struct SliceStats {
    slice: &'static str,
    recent: VecDeque<f64>,
    sum: f64,
    count: u64,
}

const QUANTILE_WINDOW: usize = 1024;

impl QueryDurations {
    fn observe(&self, slice: &'static str, v: f64) {
        let mut slices = match self.slices.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let idx = match slices.iter().position(|s| s.slice == slice) {
            Some(i) => i,
            None => {
                slices.push(SliceStats {
                    slice,
                    recent: VecDeque::new(),
                    sum: 0.0,
                    count: 0,
                });
                slices.len() - 1
            }
        };
        let s = &mut slices[idx];
        if s.recent.len() == QUANTILE_WINDOW {
            s.recent.pop_front();
        }
        s.recent.push_back(v);
        s.sum += v;
        s.count += 1;
    }
}

impl Collector for QueryDurations {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let slices = match self.slices.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if slices.is_empty() {
            return Ok(());
        }
        // prometheus-client has no summary type: quantiles are exposed as an
        // untyped family with Prometheus's labels, sum and count beside it.
        {
            let mut me = encoder.encode_descriptor(
                "prometheus_engine_query_duration_seconds",
                "Query timings",
                None,
                MetricType::Unknown,
            )?;
            for s in slices.iter() {
                let mut sorted: Vec<f64> = s.recent.iter().copied().collect();
                sorted.sort_by(|a, b| a.total_cmp(b));
                for q in [0.5, 0.9, 0.99] {
                    let v = if sorted.is_empty() {
                        f64::NAN
                    } else {
                        let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
                        sorted[i - 1]
                    };
                    let labels: LabelPairs = vec![
                        ("slice".to_string(), s.slice.to_string()),
                        ("quantile".to_string(), q.to_string()),
                    ];
                    let fam = me.encode_family(&labels)?;
                    ConstGauge::new(v).encode(fam)?;
                }
            }
        }
        {
            let mut me = encoder.encode_descriptor(
                "prometheus_engine_query_duration_seconds_sum",
                "Query timings (sum)",
                None,
                MetricType::Unknown,
            )?;
            for s in slices.iter() {
                let labels: LabelPairs = vec![("slice".to_string(), s.slice.to_string())];
                ConstGauge::new(s.sum).encode(me.encode_family(&labels)?)?;
            }
        }
        let mut me = encoder.encode_descriptor(
            "prometheus_engine_query_duration_seconds_count",
            "Query timings (count)",
            None,
            MetricType::Unknown,
        )?;
        for s in slices.iter() {
            let labels: LabelPairs = vec![("slice".to_string(), s.slice.to_string())];
            ConstGauge::new(s.count as f64).encode(me.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `process_*` metrics from `/proc/self`, read at scrape time.
#[derive(Debug)]
pub struct ProcessCollector {
    page_size: u64,
    ticks_per_sec: f64,
}

/// A snapshot of what `ProcessCollector` exposes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

impl ProcessCollector {
    pub fn new() -> Self {
        // SAFETY: sysconf only reads system configuration values.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        // SAFETY: as above.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        ProcessCollector {
            page_size: if page > 0 { page as u64 } else { 4096 },
            ticks_per_sec: if ticks > 0 { ticks as f64 } else { 100.0 },
        }
    }

    /// Reads the current values; `None` off Linux or when /proc is missing.
    pub fn read(&self) -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name (which may contain
        // spaces): state is field 3, utime 14, stime 15, starttime 22,
        // vsize 23, rss 24 (1-based in proc(5)).
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
        let utime = field(14)?;
        let stime = field(15)?;
        let start_ticks = field(22)?;
        let vsize = field(23)?;
        let rss = field(24)?;
        let btime = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime ").map(|v| v.trim().parse::<u64>()))
            })
            .and_then(Result::ok)
            .unwrap_or(0);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse().ok())
            });
        Some(ProcessStats {
            cpu_seconds: (utime + stime) as f64 / self.ticks_per_sec,
            resident_bytes: rss * self.page_size,
            virtual_bytes: vsize,
            open_fds,
            max_fds,
            start_time_seconds: btime as f64 + start_ticks as f64 / self.ticks_per_sec,
        })
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        ProcessCollector::new()
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = self.read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 4] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_bytes as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        if let Some(m) = s.max_fds {
            let g = ConstGauge::new(m as f64);
            g.encode(encoder.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Seconds since the epoch, for gauges like `*_start_time_seconds`.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_labels_look_like_prometheus() {
        assert_eq!(
            handler_label("/api/v1/label/{name}/values", "/"),
            "/api/v1/label/:name/values"
        );
        assert_eq!(
            handler_label("/prom/api/v1/query", "/prom"),
            "/api/v1/query"
        );
    }

    #[test]
    fn exposition_contains_http_and_process_metrics() {
        let m = WebMetrics::new();
        m.observe_request("/api/v1/query", 200, 0.05, Some(120));
        m.observe_query("inner_eval", 0.25);
        let text = m.encode(false).unwrap();
        assert!(
            text.contains(
                r#"prometheus_http_requests_total{code="200",handler="/api/v1/query"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"prometheus_http_request_duration_seconds_bucket{le="0.1",handler="/api/v1/query"} 1"#
        ) || text.contains(
            r#"prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="0.1"} 1"#
        ), "{text}");
        assert!(
            text.contains(r#"prometheus_engine_query_duration_seconds{slice="inner_eval",quantile="0.9"} 0.25"#),
            "{text}"
        );
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("process_open_fds "), "{text}");
    }

    #[test]
    fn process_stats_are_plausible() {
        let s = ProcessCollector::new().read().expect("linux /proc");
        assert!(s.resident_bytes > 0);
        assert!(s.open_fds > 0);
        let now = unix_seconds(SystemTime::now());
        assert!(s.start_time_seconds > now - 86_400.0 * 365.0 && s.start_time_seconds <= now + 1.0);
    }
}
