//! Server conventions: readiness, lifecycle, CORS, gzip, route prefix,
//! self-monitoring, scrape/rule state endpoints, and a real listener.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use common::*;
use vigil_model::Labels;
use vigil_web::*;

#[tokio::test]
async fn not_ready_until_flag_set() {
    let web = web_with(WebOptions::default());
    let flag = web.ready_flag();
    let app = web.router();
    let r = get(&app, "/-/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text(), "Service Unavailable");
    let r = get(&app, "/api/v1/query?query=1").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // Health and WAL replay progress answer while starting.
    assert_eq!(
        get(&app, "/-/healthy").await.text(),
        "Prometheus Server is Healthy.\n"
    );
    assert_eq!(
        get(&app, "/api/v1/status/walreplay").await.status,
        StatusCode::OK
    );
    flag.set_ready();
    let r = get(&app, "/-/ready").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "Prometheus Server is Ready.\n")
    );
    assert_eq!(
        get(&app, "/api/v1/query?query=1").await.status,
        StatusCode::OK
    );
}

#[derive(Default)]
struct FakeLifecycle {
    reloads: AtomicUsize,
    quits: AtomicUsize,
    fail: Mutex<Option<String>>,
}

impl Lifecycle for FakeLifecycle {
    fn reload(&self) -> Result<(), String> {
        self.reloads.fetch_add(1, Ordering::SeqCst);
        match self.fail.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    fn quit(&self) {
        self.quits.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn lifecycle_requires_flag() {
    let lc = Arc::new(FakeLifecycle::default());
    let web = web_with(WebOptions::default()).with_lifecycle(lc.clone());
    web.ready_flag().set_ready();
    let app = web.router();
    let r = call(
        &app,
        Request::post("/-/reload").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.text(), "Lifecycle API is not enabled.");
    let r = call(&app, Request::post("/-/quit").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        lc.reloads.load(Ordering::SeqCst) + lc.quits.load(Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn reload_and_quit() {
    let lc = Arc::new(FakeLifecycle::default());
    let o = WebOptions {
        enable_lifecycle: true,
        ..WebOptions::default()
    };
    let web = web_with(o).with_lifecycle(lc.clone());
    let app = web.router();
    let r = call(
        &app,
        Request::post("/-/reload").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    *lc.fail.lock().unwrap() = Some("parsing YAML file prometheus.yml: bad".into());
    let r = call(&app, Request::put("/-/reload").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.text(),
        "failed to reload config: parsing YAML file prometheus.yml: bad\n"
    );
    assert_eq!(lc.reloads.load(Ordering::SeqCst), 2);
    let r = call(&app, Request::put("/-/quit").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "Requesting termination... Goodbye!");
    assert_eq!(lc.quits.load(Ordering::SeqCst), 1);
}

fn with_origin(uri: &str, origin: &str) -> Request<Body> {
    Request::get(uri)
        .header("origin", origin)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_default_allows_any_origin() {
    let app = ready_router(WebOptions::default());
    let r = call(
        &app,
        with_origin("/api/v1/query?query=1", "https://grafana.example"),
    )
    .await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(r.headers["vary"], "Origin");
    // No Origin header, no CORS headers.
    let r = get(&app, "/api/v1/query?query=1").await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cors_regex_is_fully_anchored() {
    let o = WebOptions {
        cors_origin: r"https?://grafana\.example".into(),
        ..WebOptions::default()
    };
    let app = ready_router(o);
    let r = call(
        &app,
        with_origin("/api/v1/labels", "https://grafana.example"),
    )
    .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://grafana.example"
    );
    let r = call(
        &app,
        with_origin("/api/v1/labels", "https://grafana.example.evil.com"),
    )
    .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let pre = Request::options("/api/v1/query")
        .header("origin", "http://grafana.example")
        .body(Body::empty())
        .unwrap();
    let r = call(&app, pre).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers["access-control-allow-methods"],
        "GET, POST, OPTIONS"
    );
    assert!(WebOptions {
        cors_origin: "(".into(),
        ..WebOptions::default()
    }
    .effective_route_prefix()
    .is_ok());
    let bad = Web::new(
        WebOptions {
            cors_origin: "(".into(),
            ..WebOptions::default()
        },
        fixture(),
        Arc::new(TestEngine { storage: fixture() }),
    );
    assert!(bad.is_err());
}

#[tokio::test]
async fn gzip_when_accepted() {
    let app = ready_router(WebOptions::default());
    let req = Request::get("/api/v1/query_range?query=up&start=0&end=600&step=15")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let r = call(&app, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-encoding"], "gzip");
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut plain)
        .unwrap();
    let j: serde_json::Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(j["data"]["resultType"], "matrix");
    let r = get(&app, "/api/v1/query_range?query=up&start=0&end=600&step=15").await;
    assert!(r.headers.get("content-encoding").is_none());
}

#[tokio::test]
async fn route_prefix_from_external_url() {
    let o = WebOptions {
        external_url: Some("http://example.com/prom/".into()),
        ..WebOptions::default()
    };
    let app = ready_router(o);
    let r = get(&app, "/prom/api/v1/query?query=1&time=1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(get(&app, "/prom/-/healthy").await.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/api/v1/query?query=1").await.status,
        StatusCode::NOT_FOUND
    );
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/prom/");
    // Request metrics are labelled without the prefix.
    let m = get(&app, "/prom/metrics").await.text();
    assert!(
        m.contains(r#"prometheus_http_requests_total{code="200",handler="/api/v1/query"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn metrics_endpoint_counts_requests() {
    let web = web_with(WebOptions::default());
    web.ready_flag().set_ready();
    let metrics = web.metrics();
    // Another component registers its own metric through the hook.
    let head_series = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    metrics.registry().register(
        "prometheus_tsdb_head_series",
        "Total number of series in the head block",
        head_series.clone(),
    );
    head_series.set(42);
    let app = web.router();
    get(&app, "/api/v1/label/job/values").await;
    get(&app, "/api/v1/label/job/values").await;
    get(&app, "/api/v1/query?query=fail").await;
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = r.text();
    assert!(
        m.contains(
            r#"prometheus_http_requests_total{code="200",handler="/api/v1/label/:name/values"} 2"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"prometheus_http_requests_total{code="422",handler="/api/v1/query"} 1"#),
        "{m}"
    );
    assert!(m.contains("prometheus_tsdb_head_series 42"), "{m}");
    assert!(
        m.contains("prometheus_engine_query_duration_seconds{"),
        "{m}"
    );
    assert!(m.contains("process_resident_memory_bytes "), "{m}");
    let r = call(
        &app,
        Request::get("/metrics")
            .header("accept", "application/openmetrics-text;version=1.0.0")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(r.text().ends_with("# EOF\n"));
}

struct Targets;
impl TargetsSource for Targets {
    fn active_targets(&self) -> Vec<ActiveTarget> {
        let t = |pool: &str, inst: &str, health| ActiveTarget {
            discovered_labels: Labels::from_pairs(&[("__address__", inst), ("job", pool)]),
            labels: Labels::from_pairs(&[("instance", inst), ("job", pool)]),
            scrape_pool: pool.into(),
            scrape_url: format!("http://{inst}/metrics"),
            global_url: format!("http://{inst}/metrics"),
            last_error: if health == TargetHealth::Down {
                "connection refused".into()
            } else {
                String::new()
            },
            last_scrape: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)),
            last_scrape_duration: 0.0125,
            health,
            scrape_interval: "15s".into(),
            scrape_timeout: "10s".into(),
        };
        vec![
            t("zeta", "b:1", TargetHealth::Up),
            t("alpha", "a:1", TargetHealth::Down),
        ]
    }
    fn dropped_targets(&self) -> Vec<DroppedTarget> {
        vec![DroppedTarget {
            discovered_labels: Labels::from_pairs(&[("__address__", "c:1")]),
            scrape_pool: "alpha".into(),
        }]
    }
    fn target_metadata(&self) -> Vec<(Labels, Vec<MetricMetadata>)> {
        let md = |m: &str, k: &str| MetricMetadata {
            metric: m.into(),
            kind: k.into(),
            help: format!("{m} help"),
            unit: String::new(),
        };
        vec![
            (
                Labels::from_pairs(&[("instance", "a:1"), ("job", "alpha")]),
                vec![md("up_total", "counter"), md("temp", "gauge")],
            ),
            (
                Labels::from_pairs(&[("instance", "b:1"), ("job", "zeta")]),
                vec![md("temp", "gauge")],
            ),
        ]
    }
}

fn app_with_state() -> axum::Router {
    struct Rules;
    impl RulesSource for Rules {
        fn rule_groups(&self) -> Vec<RuleGroup> {
            let alert = Alert {
                labels: Labels::from_pairs(&[("alertname", "Down"), ("severity", "page")]),
                annotations: Labels::from_pairs(&[("summary", "it is down")]),
                state: "firing".into(),
                active_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                keep_firing_since: None,
                value: 1.0,
            };
            vec![RuleGroup {
                name: "g1".into(),
                file: "/etc/rules.yml".into(),
                rules: vec![
                    Rule::Alerting(AlertingRule {
                        state: "firing".into(),
                        name: "Down".into(),
                        query: "up == 0".into(),
                        duration: 300.0,
                        keep_firing_for: 0.0,
                        labels: Labels::from_pairs(&[("severity", "page")]),
                        annotations: Labels::from_pairs(&[("summary", "it is down")]),
                        alerts: vec![alert],
                        health: "ok".into(),
                        last_error: String::new(),
                        evaluation_time: 0.001,
                        last_evaluation: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                    }),
                    Rule::Recording(RecordingRule {
                        name: "job:up:sum".into(),
                        query: "sum by (job) (up)".into(),
                        labels: Labels::empty(),
                        health: "ok".into(),
                        last_error: String::new(),
                        evaluation_time: 0.0005,
                        last_evaluation: None,
                    }),
                ],
                interval: 60.0,
                limit: 0,
                evaluation_time: 0.002,
                last_evaluation: None,
            }]
        }
    }
    struct Ams;
    impl AlertmanagersSource for Ams {
        fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
            (vec!["http://am:9093/api/v2/alerts".into()], vec![])
        }
    }
    let web = web_with(WebOptions::default())
        .with_targets(Arc::new(Targets))
        .with_rules(Arc::new(Rules))
        .with_alertmanagers(Arc::new(Ams));
    web.ready_flag().set_ready();
    web.router()
}

#[tokio::test]
async fn targets_shape_and_state_filter() {
    let app = app_with_state();
    let d = get(&app, "/api/v1/targets").await.json()["data"].clone();
    let active = d["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 2);
    assert_eq!(active[0]["scrapePool"], "alpha", "pools sorted");
    assert_eq!(
        active[1],
        json!({"discoveredLabels":{"__address__":"b:1","job":"zeta"},"labels":{"instance":"b:1","job":"zeta"},
               "scrapePool":"zeta","scrapeUrl":"http://b:1/metrics","globalUrl":"http://b:1/metrics","lastError":"",
               "lastScrape":"2023-11-14T22:13:20.5Z","lastScrapeDuration":0.0125,"health":"up",
               "scrapeInterval":"15s","scrapeTimeout":"10s"})
    );
    assert_eq!(
        d["droppedTargets"],
        json!([{"discoveredLabels":{"__address__":"c:1"},"scrapePool":"alpha"}])
    );
    assert_eq!(d["droppedTargetCounts"], json!({"alpha":1}));
    let d = get(&app, "/api/v1/targets?state=active").await.json()["data"].clone();
    assert_eq!(d["droppedTargets"], json!([]));
    let d = get(&app, "/api/v1/targets?state=dropped").await.json()["data"].clone();
    assert_eq!(d["activeTargets"], json!([]));
    let d = get(&app, "/api/v1/targets?scrapePool=zeta").await.json()["data"].clone();
    assert_eq!(d["activeTargets"].as_array().unwrap().len(), 1);
    let d = get(&app, "/api/v1/scrape_pools").await.json()["data"].clone();
    assert_eq!(d, json!({"scrapePools":["alpha","zeta"]}));
}

#[tokio::test]
async fn metadata_endpoints() {
    let app = app_with_state();
    let d = get(&app, "/api/v1/metadata").await.json()["data"].clone();
    assert_eq!(
        d,
        json!({"temp":[{"type":"gauge","help":"temp help","unit":""}],"up_total":[{"type":"counter","help":"up_total help","unit":""}]})
    );
    let d = get(&app, "/api/v1/metadata?limit=1").await.json()["data"].clone();
    assert_eq!(d.as_object().unwrap().len(), 1);
    let r = get(&app, "/api/v1/metadata?limit=x").await;
    assert_eq!(r.json()["error"], "limit must be a number");
    let d = get(
        &app,
        "/api/v1/targets/metadata?match_target=%7Bjob%3D%22zeta%22%7D",
    )
    .await
    .json()["data"]
        .clone();
    assert_eq!(
        d,
        json!([{"target":{"instance":"b:1","job":"zeta"},"metric":"temp","type":"gauge","help":"temp help","unit":""}])
    );
    let d = get(&app, "/api/v1/targets/metadata?metric=temp")
        .await
        .json()["data"]
        .clone();
    assert_eq!(d.as_array().unwrap().len(), 2);
    assert!(
        d[0].get("metric").is_none(),
        "metric omitted when asked for one"
    );
    let d = get(&app, "/api/v1/metadata?metric=nope").await.json()["data"].clone();
    assert_eq!(d, json!({}));
}

#[tokio::test]
async fn rules_alerts_alertmanagers() {
    let app = app_with_state();
    let r = get(&app, "/api/v1/rules").await;
    let g = &r.json()["data"]["groups"][0];
    assert_eq!(g["name"], "g1");
    assert_eq!(g["interval"], 60);
    assert_eq!(g["lastEvaluation"], "0001-01-01T00:00:00Z");
    assert_eq!(g["rules"][0]["type"], "alerting");
    assert_eq!(g["rules"][0]["duration"], 300);
    assert_eq!(g["rules"][0]["alerts"][0]["value"], "1e+00");
    assert_eq!(
        g["rules"][0]["alerts"][0]["activeAt"],
        "2023-11-14T22:13:20Z"
    );
    assert!(g["rules"][0].get("lastError").is_none());
    assert_eq!(
        g["rules"][1],
        json!({"name":"job:up:sum","query":"sum by (job) (up)","health":"ok","evaluationTime":0.0005,"lastEvaluation":"0001-01-01T00:00:00Z","type":"recording"})
    );
    let r = get(&app, "/api/v1/rules?type=record").await;
    assert_eq!(
        r.json()["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = get(&app, "/api/v1/rules?type=alert&exclude_alerts=true").await;
    assert_eq!(
        r.json()["data"]["groups"][0]["rules"][0]["alerts"],
        json!(null)
    );
    let r = get(&app, "/api/v1/rules?rule_name[]=nothing").await;
    assert_eq!(r.json()["data"]["groups"], json!([]));
    let r = get(&app, "/api/v1/rules?type=bogus").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"type\": not supported value \"bogus\""
    );
    let r = get(&app, "/api/v1/alerts").await;
    assert_eq!(r.json()["data"]["alerts"][0]["labels"]["alertname"], "Down");
    assert_eq!(r.json()["data"]["alerts"][0]["state"], "firing");
    let r = get(&app, "/api/v1/alertmanagers").await;
    assert_eq!(
        r.json()["data"],
        json!({"activeAlertmanagers":[{"url":"http://am:9093/api/v2/alerts"}],"droppedAlertmanagers":[]})
    );
    // Without sources: empty shapes, never null.
    let app = ready_router(WebOptions::default());
    assert_eq!(
        get(&app, "/api/v1/rules").await.text(),
        r#"{"status":"success","data":{"groups":[]}}"#
    );
    assert_eq!(
        get(&app, "/api/v1/alerts").await.text(),
        r#"{"status":"success","data":{"alerts":[]}}"#
    );
}

#[tokio::test]
async fn serves_on_a_real_listener_and_shuts_down() {
    let form = "query=1%2B1&time=4";
    let body = raw_exchange(format!(
        "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        form.len(),
        form
    ))
    .await;
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(
        body.ends_with(r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#),
        "{body}"
    );
}
