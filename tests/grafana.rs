//! End to end: replays the requests Grafana's Prometheus data source sends
//! (Save & test, buildinfo heuristics, rules and exemplar probes at init,
//! the metrics browser, three concurrent panel queries, a table query, a
//! panel's exemplar query and a bad query) against Vigil scraping a fake
//! exporter, checks every field Grafana reads, and, when the Debian
//! `prometheus` (2.42) is installed, sends the same requests to a real
//! Prometheus scraping the same exporter and compares the answers.
//!
//! Differences tolerated between the two servers, and why:
//! - `buildinfo` values (version, revision, ...): different products; only
//!   the shape is compared, and both versions must parse as semver >= 2.
//! - range-query points before both servers have two samples in the 1m
//!   window: the servers start scraping up to a second apart, so the one
//!   that started first may have extra leading points.
//! - `rate(...[1m0s])` values: the 1m window is only partly filled within
//!   the test's time budget, and `rate` extrapolates from each server's own
//!   scrape instants, so the values differ by design. Each server must have
//!   the exporter's exact 3:1 ratio between its two series and a plausible
//!   magnitude; counter values are compared with the exporter's through
//!   `rate(...[5s])`, a window both have filled (within 20%, as a scrape
//!   running late under load shortens the extrapolation), and through
//!   `deriv(...[10s])`, which does not extrapolate (within 2%).
//! - parse errors from `/api/v1/query_range`: 2.53 (Vigil's reference)
//!   prefixes them with `invalid parameter "query": `, 2.42 does not; the
//!   messages are compared without it.
//!
//! Request parameters follow Grafana 11/12 (`pkg/promlib/client`,
//! `packages/grafana-prometheus`): POST form bodies for queries, labels and
//! series; GET for label values, rules, buildinfo and metadata; minute-
//! snapped integer start/end for metadata; step-aligned start/end for range
//! queries; `$__rate_interval` as Go's `time.Duration` string (`1m0s`);
//! the init exemplar probe with millisecond start/end.

mod api_peer;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use api_peer::*;
use common::*;
use serde_json::{json, Value};

const STEP: i64 = 20;
const RANGE_SECS: i64 = 6 * 3600;

const PANEL_RATE: &str = "rate(fake_requests_total{job=\"fake\"}[1m0s])";
const PANEL_P90: &str =
    "histogram_quantile(0.9, sum by (le) (rate(fake_latency_seconds_bucket{job=\"fake\"}[1m0s])))";
const PANEL_SUM: &str = "sum by (job) (fake_temperature_celsius)";
const BAD_QUERY: &str = "sum(rate(fake_requests_total[1m0s])";
/// Prometheus 2.53 prefixes range-query parse errors with this; 2.42 did
/// not (it returned the parser's message alone).
const PARAM_PREFIX: &str = "invalid parameter \"query\": ";

/// Every metric name the servers should know: the exporter's plus the
/// series Prometheus synthesises for each scrape.
fn expected_metric_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = exposition(Duration::ZERO)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    for n in [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        names.insert(n.to_string());
    }
    names
}

/// The time parameters one Grafana session uses.
struct Session {
    now: f64,
    /// Metadata calls: start snapped down, end snapped up to the minute.
    meta_start: String,
    meta_end: String,
    /// `/api/v1/series`: unsnapped whole seconds.
    series_start: String,
    series_end: String,
    /// Range queries: start and end floored to the step.
    range_start: i64,
    range_end: i64,
}

impl Session {
    fn at(now: f64) -> Session {
        let from = now - RANGE_SECS as f64;
        let from_s = from.floor() as i64;
        let to_s = now.ceil() as i64;
        Session {
            now,
            meta_start: (from_s.div_euclid(60) * 60).to_string(),
            meta_end: ((to_s + 59).div_euclid(60) * 60).to_string(),
            series_start: from_s.to_string(),
            series_end: to_s.to_string(),
            range_start: (from.floor() as i64).div_euclid(STEP) * STEP,
            range_end: (now.floor() as i64).div_euclid(STEP) * STEP,
        }
    }

    fn meta(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("limit", "40000".to_string()),
            ("start", self.meta_start.clone()),
            ("end", self.meta_end.clone()),
        ];
        p.extend(extra.iter().cloned());
        p
    }

    /// Requests before the panels, in Grafana's order.
    fn before_panels(&self) -> Vec<ApiRequest> {
        let now_ms = (self.now * 1000.0).round() as i64;
        vec![
            // Save & test: an instant `1+1` at time=4 (the health check's
            // range is 1s..4s and instant queries use its end).
            ApiRequest::post(
                "health",
                "/api/v1/query",
                &[("query", "1+1".into()), ("time", "4".into())],
            ),
            // The same with the data source's HTTP method set to GET.
            ApiRequest::get(
                "health_get",
                "/api/v1/query",
                &[("query", "1+1".into()), ("time", "4".into())],
            ),
            ApiRequest::get("buildinfo", "/api/v1/status/buildinfo", &[]),
            // Data source init: recording rules, then the exemplar probe.
            ApiRequest::get("rules", "/api/v1/rules", &[]),
            ApiRequest::get(
                "exemplar_probe",
                "/api/v1/query_exemplars",
                &[
                    ("query", "test".into()),
                    ("start", (now_ms - 30 * 60 * 1000).to_string()),
                    ("end", now_ms.to_string()),
                ],
            ),
            // Language provider start: metric names, metadata, label keys.
            ApiRequest::get(
                "metric_names",
                "/api/v1/label/__name__/values",
                &self.meta(&[]),
            ),
            ApiRequest::get("metadata", "/api/v1/metadata", &[]),
            ApiRequest::post("label_keys", "/api/v1/labels", &self.meta(&[])),
            // Metrics browser: names for a selected label, keys and values
            // for a selected metric.
            ApiRequest::get(
                "metric_names_job",
                "/api/v1/label/__name__/values",
                &self.meta(&[("match[]", "{job=\"fake\"}".into())]),
            ),
            ApiRequest::post(
                "label_keys_match",
                "/api/v1/labels",
                &self.meta(&[("match[]", "fake_requests_total".into())]),
            ),
            ApiRequest::get(
                "label_values_code",
                "/api/v1/label/code/values",
                &self.meta(&[("match[]", "{__name__=\"fake_requests_total\"}".into())]),
            ),
            ApiRequest::post(
                "series",
                "/api/v1/series",
                &[
                    ("start", self.series_start.clone()),
                    ("end", self.series_end.clone()),
                    ("match[]", "{__name__=\"fake_requests_total\"}".into()),
                    ("limit", "40000".into()),
                ],
            ),
        ]
    }

    fn range(&self, name: &'static str, expr: &str) -> ApiRequest {
        ApiRequest::post(
            name,
            "/api/v1/query_range",
            &[
                ("query", expr.to_string()),
                ("start", self.range_start.to_string()),
                ("end", self.range_end.to_string()),
                ("step", STEP.to_string()),
            ],
        )
    }

    fn panels(&self) -> Vec<ApiRequest> {
        vec![
            self.range("panel_rate", PANEL_RATE),
            self.range("panel_p90", PANEL_P90),
            self.range("panel_sum", PANEL_SUM),
        ]
    }

    fn after_panels(&self) -> Vec<ApiRequest> {
        let time = grafana_time(self.now);
        vec![
            // The histogram panel has exemplars on: float-second range.
            ApiRequest::post(
                "panel_exemplars",
                "/api/v1/query_exemplars",
                &[
                    ("query", PANEL_P90.to_string()),
                    ("start", self.range_start.to_string()),
                    ("end", self.range_end.to_string()),
                ],
            ),
            // A table panel (instant query at the range's unaligned end).
            ApiRequest::post(
                "table",
                "/api/v1/query",
                &[
                    ("query", "fake_temperature_celsius".to_string()),
                    ("time", time.clone()),
                ],
            ),
            ApiRequest::post(
                "table_special",
                "/api/v1/query",
                &[("query", "fake_special_value".to_string()), ("time", time)],
            ),
            self.range("bad_query", BAD_QUERY),
        ]
    }
}

/// Sends the whole sequence to one server; the panel queries go out
/// concurrently, as a dashboard refresh does.
fn replay(base: &str, s: &Session) -> BTreeMap<&'static str, Reply> {
    let mut out = BTreeMap::new();
    for r in s.before_panels() {
        out.insert(r.name, r.send(base));
    }
    let handles: Vec<_> = s
        .panels()
        .into_iter()
        .map(|r| {
            let base = base.to_string();
            std::thread::spawn(move || (r.name, r.send(&base)))
        })
        .collect();
    for h in handles {
        let (name, reply) = h.join().expect("panel thread");
        out.insert(name, reply);
    }
    for r in s.after_panels() {
        out.insert(r.name, r.send(base));
    }
    out
}

fn success_data<'a>(who: &str, name: &str, r: &'a Reply) -> &'a Value {
    assert_eq!(r.status, 200, "{who} {name}: {}", r.text);
    assert!(
        r.content_type.starts_with("application/json"),
        "{who} {name}: content-type {:?}",
        r.content_type
    );
    assert_eq!(r.body["status"], "success", "{who} {name}: {}", r.text);
    for key in ["warnings", "infos"] {
        let w = &r.body[key];
        assert!(
            w.is_null() || w.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "{who} {name}: {key} must be absent or an array of strings: {}",
            r.text
        );
    }
    &r.body["data"]
}

fn strings(who: &str, name: &str, v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{who} {name}: data is not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{who} {name}: {s} is not a string"))
                .to_string()
        })
        .collect()
}

fn label_map(who: &str, ctx: &str, v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap_or_else(|| panic!("{who} {ctx}: metric is not an object: {v}"))
        .iter()
        .map(|(k, v)| {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{who} {ctx}: label {k} is not a string"));
            (k.clone(), s.to_string())
        })
        .collect()
}

fn semver_major_minor(v: &str) -> Option<(u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    let _patch: u64 = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((major, minor))
}

/// A matrix as (labels -> [(t, v)]), checking Grafana's types and the grid.
type Matrix = BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>>;

fn matrix(who: &str, name: &str, r: &Reply, s: &Session) -> Matrix {
    let data = success_data(who, name, r);
    assert_eq!(data["resultType"], "matrix", "{who} {name}: {}", r.text);
    let mut out = Matrix::new();
    for series in data["result"].as_array().expect("result array") {
        let labels = label_map(who, name, &series["metric"]);
        let values = series["values"]
            .as_array()
            .unwrap_or_else(|| panic!("{who} {name}: values not an array: {series}"));
        let mut pts = Vec::new();
        for p in values {
            let (t, v) = point(p, &format!("{who} {name}"));
            assert_eq!(t.fract(), 0.0, "{who} {name}: off-grid time {t}");
            let t_i = t as i64;
            assert!(
                (s.range_start..=s.range_end).contains(&t_i) && (t_i - s.range_start) % STEP == 0,
                "{who} {name}: time {t} is not on the {STEP}s grid from {}",
                s.range_start
            );
            if let Some((prev, _)) = pts.last() {
                assert!(t > *prev, "{who} {name}: times not increasing");
            }
            pts.push((t, v));
        }
        assert!(!pts.is_empty(), "{who} {name}: empty series {labels:?}");
        assert!(
            out.insert(labels.clone(), pts).is_none(),
            "{who} {name}: duplicate series {labels:?}"
        );
    }
    out
}

fn instance_job(target: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("instance".to_string(), target.to_string()),
        ("job".to_string(), "fake".to_string()),
    ])
}

/// Checks every field Grafana reads, for one server's replies.
fn check_grafana_fields(who: &str, replies: &BTreeMap<&str, Reply>, s: &Session, target: &str) {
    for name in ["health", "health_get"] {
        let r = &replies[name];
        assert_eq!(
            r.body,
            json!({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}),
            "{who} {name}: {}",
            r.text
        );
    }

    let data = success_data(who, "buildinfo", &replies["buildinfo"]);
    let version = data["version"].as_str().expect("buildinfo version");
    let (major, _) = semver_major_minor(version)
        .unwrap_or_else(|| panic!("{who}: buildinfo version {version:?} is not semver"));
    assert!(major >= 2, "{who}: version {version} < 2");
    // A non-empty `features` map makes Grafana's heuristics call the
    // server Mimir (and enable the ruler API).
    assert!(
        data.get("features")
            .is_none_or(|f| f.as_object().is_some_and(|m| m.is_empty())),
        "{who}: buildinfo has features: {data}"
    );
    for k in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(data[k].is_string(), "{who}: buildinfo {k}: {data}");
    }

    let data = success_data(who, "rules", &replies["rules"]);
    assert!(data["groups"].is_array(), "{who} rules: {data}");

    for name in ["exemplar_probe", "panel_exemplars"] {
        let data = success_data(who, name, &replies[name]);
        // Text-format scrapes carry no exemplars: an empty list.
        assert_eq!(data, &json!([]), "{who} {name}");
    }

    let want_names = expected_metric_names();
    for name in ["metric_names", "metric_names_job"] {
        let got = strings(who, name, success_data(who, name, &replies[name]));
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "{who} {name}: not sorted");
        assert_eq!(
            got.into_iter().collect::<BTreeSet<_>>(),
            want_names,
            "{who} {name}"
        );
    }

    let md = success_data(who, "metadata", &replies["metadata"]);
    for (metric, kind, help) in [
        (
            "fake_requests_total",
            "counter",
            "Requests handled, by status code.",
        ),
        ("fake_temperature_celsius", "gauge", "Room temperature."),
        ("fake_latency_seconds", "histogram", "Request latency."),
    ] {
        let e = &md[metric][0];
        assert_eq!(e["type"], kind, "{who} metadata {metric}: {md}");
        assert_eq!(e["help"], help, "{who} metadata {metric}: {md}");
        assert!(e["unit"].is_string(), "{who} metadata {metric}: {md}");
    }

    let keys = strings(
        who,
        "label_keys",
        success_data(who, "label_keys", &replies["label_keys"]),
    );
    for k in [
        "__name__", "code", "instance", "job", "kind", "le", "method", "room",
    ] {
        assert!(keys.iter().any(|x| x == k), "{who} label_keys: {keys:?}");
    }
    let keys = strings(
        who,
        "label_keys_match",
        success_data(who, "label_keys_match", &replies["label_keys_match"]),
    );
    assert_eq!(
        keys,
        ["__name__", "code", "instance", "job", "method"],
        "{who}"
    );
    let vals = strings(
        who,
        "label_values_code",
        success_data(who, "label_values_code", &replies["label_values_code"]),
    );
    assert_eq!(vals, ["200", "500"], "{who}");

    let data = success_data(who, "series", &replies["series"]);
    let got: Vec<_> = data
        .as_array()
        .expect("series array")
        .iter()
        .map(|l| label_map(who, "series", l))
        .collect();
    let want: Vec<_> = ["200", "500"]
        .iter()
        .map(|code| {
            let mut m = instance_job(target);
            m.insert("__name__".into(), "fake_requests_total".into());
            m.insert("code".into(), code.to_string());
            m.insert("method".into(), "get".into());
            m
        })
        .collect();
    assert_eq!(got, want, "{who} series");

    // Panels.
    let rate = matrix(who, "panel_rate", &replies["panel_rate"], s);
    let mut want_labels = instance_job(target);
    want_labels.insert("method".into(), "get".into());
    let codes: Vec<_> = rate.keys().map(|l| l["code"].clone()).collect();
    assert_eq!(codes, ["200", "500"], "{who} panel_rate");
    for (labels, pts) in &rate {
        assert!(!labels.contains_key("__name__"), "{who}: rate keeps name");
        for (k, v) in &want_labels {
            assert_eq!(labels.get(k), Some(v), "{who} panel_rate {labels:?}");
        }
        let per_sec = if labels["code"] == "200" {
            REQ_200_PER_SEC
        } else {
            REQ_500_PER_SEC
        };
        for (t, v) in pts {
            // Extrapolation can overshoot by at most half an interval per
            // side; a partly filled window can only undershoot.
            assert!(
                *v > 0.0 && *v <= per_sec * 1.05,
                "{who} panel_rate at {t}: {v} (exporter rate {per_sec}/s)"
            );
        }
    }
    let r200 = &rate[rate.keys().next().expect("200 series")];
    let r500 = &rate[rate.keys().nth(1).expect("500 series")];
    assert_eq!(
        r200.iter().map(|p| p.0).collect::<Vec<_>>(),
        r500.iter().map(|p| p.0).collect::<Vec<_>>(),
        "{who}: both series are scraped together"
    );
    for ((t, a), (_, b)) in r200.iter().zip(r500) {
        let ratio = a / b;
        assert!(
            (ratio - 3.0).abs() < 1e-9,
            "{who} panel_rate at {t}: 200/500 ratio {ratio}"
        );
    }

    let p90 = matrix(who, "panel_p90", &replies["panel_p90"], s);
    assert_eq!(p90.len(), 1, "{who} panel_p90: {p90:?}");
    let (labels, pts) = p90.iter().next().expect("p90 series");
    assert!(labels.is_empty(), "{who} panel_p90 labels {labels:?}");
    for (t, v) in pts {
        assert!(
            (v - EXPECTED_P90).abs() < 1e-9,
            "{who} panel_p90 at {t}: {v}"
        );
    }

    let sum = matrix(who, "panel_sum", &replies["panel_sum"], s);
    let want_key = BTreeMap::from([("job".to_string(), "fake".to_string())]);
    assert_eq!(
        sum.keys().collect::<Vec<_>>(),
        [&want_key],
        "{who} panel_sum"
    );
    for (t, v) in &sum[&want_key] {
        assert_eq!(*v, 21.5 + 19.25, "{who} panel_sum at {t}");
    }

    // Table: a vector at the requested (millisecond) time.
    let time = grafana_time(s.now).parse::<f64>().expect("time");
    let data = success_data(who, "table", &replies["table"]);
    assert_eq!(data["resultType"], "vector", "{who} table: {data}");
    let mut rooms = BTreeMap::new();
    for e in data["result"].as_array().expect("table result") {
        let l = label_map(who, "table", &e["metric"]);
        let (t, v) = point(&e["value"], &format!("{who} table"));
        assert_eq!(t, time, "{who} table: sample time");
        assert_eq!(l["__name__"], "fake_temperature_celsius", "{who} {l:?}");
        rooms.insert(l["room"].clone(), v);
    }
    assert_eq!(
        rooms,
        BTreeMap::from([("a".to_string(), 21.5), ("b".to_string(), 19.25)]),
        "{who} table"
    );
    let data = success_data(who, "table_special", &replies["table_special"]);
    let mut special = BTreeMap::new();
    for e in data["result"].as_array().expect("special result") {
        let kind = e["metric"]["kind"].as_str().expect("kind").to_string();
        special.insert(kind, e["value"][1].as_str().expect("value").to_string());
    }
    let want: BTreeMap<String, String> = [
        ("huge", "1.5e+22"),
        ("inf", "+Inf"),
        ("nan", "NaN"),
        ("third", "0.3333333333333333"),
        ("tiny", "1e-07"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(special, want, "{who} table_special");

    let r = &replies["bad_query"];
    assert_eq!(r.status, 400, "{who} bad_query: {}", r.text);
    assert!(r.content_type.starts_with("application/json"), "{who}");
    assert_eq!(r.body["status"], "error", "{who} bad_query: {}", r.text);
    assert_eq!(r.body["errorType"], "bad_data", "{who} bad_query");
    let msg = r.body["error"].as_str().expect("error string");
    assert!(msg.contains("parse error"), "{who} bad_query: {msg}");
    if who == "vigil" {
        assert!(msg.starts_with(PARAM_PREFIX), "{who} bad_query: {msg}");
    }
    assert!(r.body.get("data").is_none(), "{who} bad_query: {}", r.text);
}

/// Drops leading points before `from` (see the module doc).
fn from_time(pts: &[(f64, f64)], from: f64) -> Vec<(f64, f64)> {
    pts.iter().copied().filter(|(t, _)| *t >= from).collect()
}

/// Compares the two servers' matrices: same series, same grid once both
/// have data, values by `same`.
fn compare_matrix(name: &str, v: &Matrix, p: &Matrix, same: impl Fn(f64, f64) -> bool) -> usize {
    assert_eq!(
        v.keys().collect::<Vec<_>>(),
        p.keys().collect::<Vec<_>>(),
        "{name}: series differ"
    );
    let mut compared = 0;
    for (labels, vp) in v {
        let pp = &p[labels];
        let from = vp[0].0.max(pp[0].0);
        let (vc, pc) = (from_time(vp, from), from_time(pp, from));
        let times = |x: &[(f64, f64)]| x.iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(times(&vc), times(&pc), "{name} {labels:?}: grids differ");
        assert!(!vc.is_empty(), "{name} {labels:?}: no common points");
        for ((t, a), (_, b)) in vc.iter().zip(&pc) {
            assert!(
                same(*a, *b),
                "{name} {labels:?} at {t}: vigil {a} vs prometheus {b}"
            );
            compared += 1;
        }
    }
    compared
}

fn compare_with_prometheus(
    vigil: &BTreeMap<&str, Reply>,
    prom: &BTreeMap<&str, Reply>,
    s: &Session,
) {
    for (name, v) in vigil {
        let p = &prom[name];
        assert_eq!(
            v.status, p.status,
            "{name}: status vigil {} vs prometheus {}\n{}\n{}",
            v.status, p.status, v.text, p.text
        );
        assert_eq!(
            shape(&v.body),
            shape(&p.body),
            "{name}: JSON shapes differ\nvigil:      {}\nprometheus: {}",
            v.text,
            p.text
        );
    }
    // Answers that do not depend on when each server scraped: equal.
    for name in [
        "health",
        "health_get",
        "rules",
        "exemplar_probe",
        "metric_names",
        "metadata",
        "label_keys",
        "metric_names_job",
        "label_keys_match",
        "label_values_code",
        "series",
        "panel_exemplars",
        "table",
        "table_special",
    ] {
        assert_eq!(
            vigil[name].body, prom[name].body,
            "{name}: answers differ\nvigil:      {}\nprometheus: {}",
            vigil[name].text, prom[name].text
        );
    }
    // Same error, up to the 2.53 prefix (see PARAM_PREFIX).
    let err = |r: &Reply| {
        let e = r.body["error"].as_str().unwrap_or("").to_string();
        e.strip_prefix(PARAM_PREFIX)
            .map(str::to_string)
            .unwrap_or(e)
    };
    assert_eq!(
        err(&vigil["bad_query"]),
        err(&prom["bad_query"]),
        "bad_query: parse errors differ"
    );
    assert_eq!(
        vigil["bad_query"].body["errorType"],
        prom["bad_query"].body["errorType"]
    );
    let m = |who: &str, r: &BTreeMap<&str, Reply>, name: &str| matrix(who, name, &r[name], s);
    let n = compare_matrix(
        "panel_sum",
        &m("vigil", vigil, "panel_sum"),
        &m("prometheus", prom, "panel_sum"),
        |a, b| a == b,
    );
    assert!(n > 0);
    compare_matrix(
        "panel_p90",
        &m("vigil", vigil, "panel_p90"),
        &m("prometheus", prom, "panel_p90"),
        |a, b| (a - b).abs() < 1e-9,
    );
    // Rates over a partly filled 1m window: only series and grid.
    compare_matrix(
        "panel_rate",
        &m("vigil", vigil, "panel_rate"),
        &m("prometheus", prom, "panel_rate"),
        |_, _| true,
    );
}

/// Counter values agree with the exporter (and hence between the servers):
/// `rate` over a 5s window both have filled, within 20% (a scrape that
/// runs late under load shortens `rate`'s extrapolation), and `deriv`,
/// which fits the samples without extrapolating, within 2%.
fn check_counters(who: &str, base: &str) {
    for (expr, tolerance) in [
        ("rate(fake_requests_total[5s])", 0.2),
        ("deriv(fake_requests_total[10s])", 0.02),
    ] {
        let r = ApiRequest::post("counters", "/api/v1/query", &[("query", expr.to_string())])
            .send(base);
        let data = success_data(who, expr, &r);
        let result = data["result"].as_array().expect("result");
        assert_eq!(result.len(), 2, "{who} {expr}: {}", r.text);
        for e in result {
            let want = if e["metric"]["code"] == "200" {
                REQ_200_PER_SEC
            } else {
                REQ_500_PER_SEC
            };
            let (_, v) = point(&e["value"], expr);
            assert!(
                (v - want).abs() <= want * tolerance,
                "{who} {expr} {}: {v}, exporter {want}/s",
                e["metric"]
            );
        }
    }
}

/// Vigil answers `limit` as Prometheus 2.53 does (2.42 predates it).
fn check_limit_truncates(base: &str, s: &Session) {
    let r = ApiRequest::get(
        "limit",
        "/api/v1/label/__name__/values",
        &[
            ("limit", "3".into()),
            ("start", s.meta_start.clone()),
            ("end", s.meta_end.clone()),
        ],
    )
    .send(base);
    let data = success_data("vigil", "limit", &r);
    assert_eq!(data.as_array().map(Vec::len), Some(3), "{}", r.text);
    assert_eq!(
        r.body["warnings"],
        json!(["results truncated due to limit"]),
        "{}",
        r.text
    );
}

#[test]
fn grafana_datasource_sequence_matches_prometheus() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let exporter = FakeExporter::start();
    let cfg = scrape_config(&exporter.target());
    // Start Prometheus first: it takes longer to come up.
    let prom = spawn_prometheus(dir.path(), &cfg);
    let (_vigil, vbase) = start_vigil(dir.path(), &cfg, &[]);
    if let Some((p, base)) = &prom {
        wait_prometheus_ready(p, base);
    }
    let mut bases = vec![("vigil", vbase.clone())];
    if let Some((_, base)) = &prom {
        bases.push(("prometheus", base.clone()));
    }

    // Both must have scraped; then wait until the last grid point of the
    // range has at least two samples from each, and a 5s window is full.
    let mut latest_first = 0.0f64;
    for (who, base) in &bases {
        let first = eventually(Duration::from_secs(20), || first_scrape(base))
            .unwrap_or_else(|| panic!("{who} never scraped the exporter"));
        latest_first = latest_first.max(first);
    }
    loop {
        let now = now_secs();
        let grid_end = ((now.floor() as i64).div_euclid(STEP) * STEP) as f64;
        if grid_end >= latest_first + 2.5 && now >= latest_first + 7.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let session = Session::at(now_secs());
    let mut replies = BTreeMap::new();
    for (who, base) in &bases {
        replies.insert(*who, replay(base, &session));
    }
    for (who, r) in &replies {
        check_grafana_fields(who, r, &session, &exporter.target());
    }
    for (who, base) in &bases {
        check_counters(who, base);
    }
    check_limit_truncates(&vbase, &session);
    if let Some(prom_replies) = replies.get("prometheus") {
        compare_with_prometheus(&replies["vigil"], prom_replies, &session);
    }
    eprintln!(
        "grafana sequence: {} server(s), {:.1}s",
        bases.len(),
        t0.elapsed().as_secs_f64()
    );
}
