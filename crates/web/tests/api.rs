//! HTTP API behaviour: shapes, status codes, 405s, time parsing, errors.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use common::*;
use vigil_model::{Labels, Matcher};
use vigil_web::*;

fn opts() -> WebOptions {
    WebOptions::default()
}

#[tokio::test]
async fn grafana_health_check_post_query() {
    let app = ready_router(opts());
    let r = post_form(&app, "/api/v1/query", "query=1%2B1&time=4").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );
}

#[tokio::test]
async fn instant_vector_shape() {
    let app = ready_router(opts());
    let r = get(
        &app,
        "/api/v1/query?query=up%7Bjob%3D%22node%22%7D&time=15.5",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","instance":"localhost:9100","job":"node"},"value":[15.5,"101"]},
            {"metric":{"__name__":"up","instance":"localhost:9101","job":"node"},"value":[15.5,"+Inf"]}
        ]}})
    );
    assert!(
        r.text().contains(r#""value":[15.500,"101"]"#),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn params_merge_url_and_body() {
    let app = ready_router(opts());
    // query in the URL, time in the body.
    let r = post_form(
        &app,
        "/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D",
        "time=30",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["data"]["result"][0]["value"], json!([30, "2"]));
}

#[tokio::test]
async fn nan_and_string_results() {
    let app = ready_router(opts());
    let r = get(
        &app,
        "/api/v1/query?query=up%7Binstance%3D%22localhost:9101%22%7D&time=0",
    )
    .await;
    assert_eq!(r.json()["data"]["result"][0]["value"], json!([0, "NaN"]));
    let r = get(&app, "/api/v1/query?query=%22hello%22&time=1").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#
    );
}

#[tokio::test]
async fn time_as_rfc3339_and_default_now() {
    let app = ready_router(opts());
    let r = get(&app, "/api/v1/query?query=1&time=1970-01-01T00:00:30.250Z").await;
    assert_eq!(r.json()["data"]["result"], json!([30.25, "1"]));
    let r = get(&app, "/api/v1/query?query=1").await;
    let t = r.json()["data"]["result"][0].as_f64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - t).abs() < 60.0, "{t} vs {now}");
}

#[tokio::test]
async fn parse_error_is_400_bad_data_with_message() {
    let app = ready_router(opts());
    let r = get(&app, "/api/v1/query?query=up%7Bjob%3D&time=1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let j = r.json();
    assert_eq!(j["status"], "error");
    assert_eq!(j["errorType"], "bad_data");
    assert_eq!(
        j["error"],
        "invalid parameter \"query\": 1:8: parse error: unexpected end of input"
    );
}

#[tokio::test]
async fn bad_time_and_timeout_params() {
    let app = ready_router(opts());
    let r = get(&app, "/api/v1/query?query=1&time=tomorrow").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"time\": invalid time value for 'time': cannot parse \"tomorrow\" to a valid timestamp"
    );
    let r = get(&app, "/api/v1/query?query=1&timeout=soon").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"timeout\": cannot parse \"soon\" to a valid duration"
    );
}

#[tokio::test]
async fn execution_error_is_422() {
    let app = ready_router(opts());
    let r = get(&app, "/api/v1/query?query=fail").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.text(),
        r#"{"status":"error","errorType":"execution","error":"expanding series: boom"}"#
    );
}

#[tokio::test]
async fn timeout_is_503() {
    let app = ready_router(opts());
    let r = get(&app, "/api/v1/query?query=slow&timeout=100ms").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["errorType"], "timeout");
}

#[tokio::test]
async fn warnings_and_stats() {
    let app = ready_router(opts());
    let r = get(
        &app,
        "/api/v1/query?query=up%7Bjob%3D~%22warn%7Cnode%22%7D&time=0&stats=1",
    )
    .await;
    let j = r.json();
    assert_eq!(j["warnings"], json!(["PromQL info: test warning"]));
    assert_eq!(j["data"]["stats"]["samples"]["totalQueryableSamples"], 3);
    assert_eq!(j["data"]["stats"]["samples"]["peakSamples"], 2);
    assert!(j["data"]["stats"]["timings"]["execTotalTime"].is_number());
    // Without stats=, no stats and no warnings key.
    let r = get(&app, "/api/v1/query?query=1&time=0").await;
    assert!(r.json()["data"].get("stats").is_none());
    assert!(r.json().get("warnings").is_none());
}

#[tokio::test]
async fn range_query_matrix_shape() {
    let app = ready_router(opts());
    let r = get(
        &app,
        "/api/v1/query_range?query=up%7Bjob%3D%22prometheus%22%7D&start=0&end=60&step=20",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","instance":"localhost:9090","job":"prometheus"},
             "values":[[0,"0"],[20,"1"],[40,"2"],[60,"4"]]}
        ]}})
    );
}

#[tokio::test]
async fn range_query_step_forms_and_post() {
    let app = ready_router(opts());
    for step in ["15", "15s", "15.0", "15000ms", "1.5e1"] {
        let form = format!("query=1&start=0&end=30&step={step}");
        let r = post_form(&app, "/api/v1/query_range", &form).await;
        assert_eq!(r.status, StatusCode::OK, "step={step}: {}", r.text());
        assert_eq!(
            r.json()["data"]["result"][0]["values"],
            json!([[0, "1"], [15, "1"], [30, "1"]])
        );
    }
}

#[tokio::test]
async fn range_query_errors() {
    let app = ready_router(opts());
    let cases = [
        ("query=1&start=10&end=5&step=1", "invalid parameter \"end\": end timestamp must not be before start time"),
        ("query=1&start=0&end=5&step=0", "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"),
        ("query=1&start=0&end=11001&step=1", "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"),
        ("query=1&end=5&step=1", "invalid parameter \"start\": cannot parse \"\" to a valid timestamp"),
        ("query=1&start=0&end=5&step=x", "invalid parameter \"step\": cannot parse \"x\" to a valid duration"),
    ];
    for (q, msg) in cases {
        let r = get(&app, &format!("/api/v1/query_range?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.json()["errorType"], "bad_data");
        assert_eq!(r.json()["error"], msg, "{q}");
    }
    // Exactly 11,000 steps is still allowed.
    let r = get(&app, "/api/v1/query_range?query=1&start=0&end=11000&step=1").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn format_query_and_exemplars() {
    let app = ready_router(opts());
    let r = get(&app, "/api/v1/format_query?query=1%2B2").await;
    assert_eq!(r.text(), r#"{"status":"success","data":"1 + 2"}"#);
    let r = post_form(&app, "/api/v1/format_query", "query=up%7B").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"query\": "));

    // Grafana's exemplar probe: millisecond start/end, empty success.
    let r = get(
        &app,
        "/api/v1/query_exemplars?query=up&start=1700000000.123&end=1700003600.456",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), r#"{"status":"success","data":[]}"#);
    let r = get(&app, "/api/v1/query_exemplars?query=up&start=10&end=5").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

struct OneExemplar;
impl ExemplarSource for OneExemplar {
    fn select(
        &self,
        start: i64,
        end: i64,
        sel: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, String> {
        assert_eq!((start, end), (1000, 2000));
        assert_eq!(sel.len(), 1);
        Ok(vec![SeriesExemplars {
            series_labels: Labels::from_pairs(&[("__name__", "up")]),
            exemplars: vec![Exemplar {
                labels: Labels::from_pairs(&[("trace_id", "abc")]),
                value: 6.0,
                t: 1500,
            }],
        }])
    }
}

#[tokio::test]
async fn exemplars_shape() {
    let web = web_with(opts()).with_exemplars(Arc::new(OneExemplar));
    web.ready_flag().set_ready();
    let app = web.router();
    let r = get(&app, "/api/v1/query_exemplars?query=up&start=1&end=2").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":[{"seriesLabels":{"__name__":"up"},"exemplars":[{"labels":{"trace_id":"abc"},"value":"6","timestamp":1.500}]}]}"#
    );
}

#[tokio::test]
async fn unsupported_methods_are_405_not_404() {
    let app = ready_router(opts());
    for (method, uri) in [
        ("DELETE", "/api/v1/query"),
        ("PUT", "/api/v1/query_range"),
        ("POST", "/api/v1/label/job/values"),
        ("POST", "/api/v1/targets"),
        ("POST", "/api/v1/status/buildinfo"),
        ("GET", "/api/v1/admin/tsdb/snapshot"),
        ("POST", "/-/healthy"),
        ("GET", "/-/reload"),
        ("GET", "/-/quit"),
    ] {
        let r = call(
            &app,
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
    }
    let r = get(&app, "/api/v1/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn labels_and_values() {
    let app = ready_router(opts());
    let r = get(&app, "/api/v1/labels").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":["__name__","code","instance","job"]}"#
    );
    let r = post_form(&app, "/api/v1/labels", "match%5B%5D=up").await;
    assert_eq!(r.json()["data"], json!(["__name__", "instance", "job"]));
    let r = get(&app, "/api/v1/label/job/values").await;
    assert_eq!(r.json()["data"], json!(["api", "node", "prometheus"]));
    let r = get(&app, "/api/v1/label/__name__/values?limit=40000&match[]=%7Bjob%3D%22api%22%7D&start=1700000040&end=1700003640").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["data"],
        json!([]),
        "outside the data range: empty array, never null"
    );
    let r = get(
        &app,
        "/api/v1/label/__name__/values?match[]=%7Bjob%3D%22api%22%7D&match[]=up",
    )
    .await;
    assert_eq!(r.json()["data"], json!(["http_requests_total", "up"]));
    let r = get(&app, "/api/v1/label/job/values?limit=1").await;
    assert_eq!(r.json()["data"], json!(["api"]));
    assert_eq!(
        r.json()["warnings"],
        json!(["results truncated due to limit"])
    );
    let r = get(&app, "/api/v1/label/1bad/values").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid label name: \"1bad\"");
    let r = get(
        &app,
        "/api/v1/label/job/values?match[]=%7Bjob%3D~%22.*%22%7D",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["error"],
        "match[] must contain at least one non-empty matcher"
    );
    let r = get(&app, "/api/v1/label/job/values?limit=-1").await;
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"limit\": limit must be non-negative"
    );
}

#[tokio::test]
async fn series_endpoint() {
    let app = ready_router(opts());
    let r = get(&app, "/api/v1/series").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "no match[] parameter provided");
    let r = post_form(
        &app,
        "/api/v1/series",
        "match[]=up%7Bjob%3D%22node%22%7D&match[]=up&start=0&end=100",
    )
    .await;
    assert_eq!(
        r.json()["data"],
        json!([
            {"__name__":"up","instance":"localhost:9090","job":"prometheus"},
            {"__name__":"up","instance":"localhost:9100","job":"node"},
            {"__name__":"up","instance":"localhost:9101","job":"node"}
        ])
    );
    let r = get(&app, "/api/v1/series?match[]=up&limit=2").await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.json()["warnings"],
        json!(["results truncated due to limit"])
    );
    let r = get(&app, "/api/v1/series?match[]=nothing_here").await;
    assert_eq!(r.text(), r#"{"status":"success","data":[]}"#);
    let r = get(&app, "/api/v1/series?match[]=up%7B").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"match[]\": "));
}

#[tokio::test]
async fn buildinfo_has_no_features_field() {
    let mut o = opts();
    o.build_info.revision = "abc".into();
    let app = ready_router(o);
    let r = get(&app, "/api/v1/status/buildinfo").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"version":"2.53.0","revision":"abc","branch":"","buildUser":"","buildDate":"","goVersion":""}}"#
    );
}

#[tokio::test]
async fn flags_config_runtime_walreplay() {
    let mut o = opts();
    o.flags
        .insert("web.listen-address".into(), "0.0.0.0:9090".into());
    o.flags
        .insert("config.file".into(), "prometheus.yml".into());
    struct Cfg;
    impl ConfigSource for Cfg {
        fn config_yaml(&self) -> String {
            "global:\n  scrape_interval: 15s\n".into()
        }
    }
    let web = web_with(o).with_config(Arc::new(Cfg));
    web.ready_flag().set_ready();
    let app = web.router();
    let r = get(&app, "/api/v1/status/flags").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"config.file":"prometheus.yml","web.listen-address":"0.0.0.0:9090"}}"#
    );
    let r = get(&app, "/api/v1/status/config").await;
    assert_eq!(
        r.json()["data"]["yaml"],
        "global:\n  scrape_interval: 15s\n"
    );
    let r = get(&app, "/api/v1/status/runtimeinfo").await;
    let d = &r.json()["data"];
    for k in [
        "startTime",
        "CWD",
        "reloadConfigSuccess",
        "lastConfigTime",
        "corruptionCount",
        "goroutineCount",
        "GOMAXPROCS",
        "GOGC",
        "GODEBUG",
        "storageRetention",
    ] {
        assert!(d.get(k).is_some(), "missing {k}: {d}");
    }
    let r = get(&app, "/api/v1/status/walreplay").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"min":0,"max":0,"current":0}}"#
    );
}

#[derive(Default)]
struct FakeTsdb {
    deleted: Mutex<Vec<(i64, i64, usize)>>,
    cleaned: AtomicUsize,
    snapshots: Mutex<Vec<(std::path::PathBuf, bool)>>,
}

impl TsdbAdmin for FakeTsdb {
    fn delete_series(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<(), String> {
        self.deleted
            .lock()
            .unwrap()
            .push((mint, maxt, matchers.len()));
        Ok(())
    }
    fn clean_tombstones(&self) -> Result<(), String> {
        self.cleaned.fetch_add(1, Ordering::SeqCst);
        Err("disk on fire".into())
    }
    fn snapshot(&self, dir: &std::path::Path, with_head: bool) -> Result<(), String> {
        assert!(dir.is_dir());
        self.snapshots
            .lock()
            .unwrap()
            .push((dir.to_path_buf(), with_head));
        Ok(())
    }
    fn stats(&self, limit: usize) -> Result<TsdbStats, String> {
        Ok(TsdbStats {
            num_series: 4,
            num_label_pairs: 9,
            chunk_count: 4,
            min_time: 0,
            max_time: 600_000,
            series_count_by_metric_name: (0..20)
                .map(|i| TsdbStat {
                    name: format!("m{i}"),
                    value: 100 - i,
                })
                .take(limit)
                .collect(),
            ..TsdbStats::default()
        })
    }
    fn wal_replay_status(&self) -> WalReplayStatus {
        WalReplayStatus {
            min: 0,
            max: 3,
            current: 2,
        }
    }
}

#[tokio::test]
async fn tsdb_status_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.enable_admin_api = true;
    o.data_dir = dir.path().to_path_buf();
    let db = Arc::new(FakeTsdb::default());
    let web = web_with(o).with_tsdb_admin(db.clone());
    web.ready_flag().set_ready();
    let app = web.router();

    let r = get(&app, "/api/v1/status/tsdb").await;
    let d = &r.json()["data"];
    assert_eq!(
        d["headStats"],
        json!({"numSeries":4,"numLabelPairs":9,"chunkCount":4,"minTime":0,"maxTime":600000})
    );
    assert_eq!(d["seriesCountByMetricName"].as_array().unwrap().len(), 10);
    assert_eq!(
        d["seriesCountByMetricName"][0],
        json!({"name":"m0","value":100})
    );
    assert_eq!(d["labelValueCountByLabelName"], json!([]));
    let r = get(&app, "/api/v1/status/tsdb?limit=0").await;
    assert_eq!(r.json()["error"], "limit must be a positive number");
    let r = get(&app, "/api/v1/status/walreplay").await;
    assert_eq!(r.json()["data"], json!({"min":0,"max":3,"current":2}));

    let r = post_form(
        &app,
        "/api/v1/admin/tsdb/delete_series",
        "match[]=up&match[]=%7Bjob%3D%22x%22%7D&start=1&end=2",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        *db.deleted.lock().unwrap(),
        vec![(1000, 2000, 1), (1000, 2000, 1)]
    );
    let r = post_form(&app, "/api/v1/admin/tsdb/delete_series", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = call(
        &app,
        Request::put("/api/v1/admin/tsdb/clean_tombstones")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.json()["error"], "disk on fire");
    assert_eq!(db.cleaned.load(Ordering::SeqCst), 1);

    let r = post_form(&app, "/api/v1/admin/tsdb/snapshot", "skip_head=true").await;
    assert_eq!(r.status, StatusCode::OK);
    let name = r.json()["data"]["name"].as_str().unwrap().to_string();
    assert!(
        name.len() == 16 + 1 + 16 && name.as_bytes()[8] == b'T',
        "{name}"
    );
    let snaps = db.snapshots.lock().unwrap().clone();
    assert_eq!(
        snaps,
        vec![(dir.path().join("snapshots").join(&name), false)]
    );
}

#[tokio::test]
async fn admin_api_disabled_by_default() {
    let web = web_with(opts()).with_tsdb_admin(Arc::new(FakeTsdb::default()));
    web.ready_flag().set_ready();
    let app = web.router();
    let r = post_form(&app, "/api/v1/admin/tsdb/delete_series", "match[]=up").await;
    // Prometheus answers `unavailable` with 500: its error switch has no
    // case for that type.
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.json(),
        json!({"status":"error","errorType":"unavailable","error":"admin APIs disabled"})
    );
}
