//! Metadata endpoints: series, label names and values (from storage),
//! targets and metric metadata (from scrape), rules, alerts and
//! Alertmanagers (from the rule manager and notifier).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use vigil_model::gofmt::{self, format_float, FloatFormat};
use vigil_model::storage::SelectHints;
use vigil_model::{Labels, Matcher};

use super::{read_params, respond, ApiError, ApiReply, ApiResult, Success};
use crate::json::JsonWriter;
use crate::params::{parse_limit, parse_time_param, Params, MAX_TIME_MS, MIN_TIME_MS};
use crate::sources::{Alert, ErrorKind, Rule};
use crate::Shared;

const TRUNCATED: &str = "results truncated due to limit";

/// Runs a metadata handler on the blocking pool (storage calls block).
async fn blocking(
    s: Arc<Shared>,
    params: Params,
    f: impl FnOnce(&Shared, &Params) -> ApiResult + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || f(&s, &params)).await {
        Ok(r) => respond(r),
        Err(e) => respond(Err(ApiError::new(ErrorKind::Internal, e.to_string()))),
    }
}

/// `parseMatchersParam`: every `match[]` parsed as a series selector, each
/// with at least one matcher that does not match the empty string.
fn parse_matchers(s: &Shared, raw: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::with_capacity(raw.len());
    for m in raw {
        let ms = s.engine.parse_metric_selector(m).map_err(|e| e.message)?;
        if ms.iter().all(|m| m.matches("")) {
            return Err("match[] must contain at least one non-empty matcher".to_string());
        }
        sets.push(ms);
    }
    Ok(sets)
}

fn time_range(params: &Params) -> Result<(i64, i64), ApiError> {
    let start = parse_time_param(params, "start", MIN_TIME_MS)
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time_param(params, "end", MAX_TIME_MS)
        .map_err(|e| ApiError::invalid_param("end", e))?;
    Ok((start, end))
}

fn storage_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorKind::Execution, e.to_string())
}

fn limit_param(params: &Params) -> Result<usize, ApiError> {
    parse_limit(params.get("limit")).map_err(|e| ApiError::invalid_param("limit", e))
}

pub async fn label_names(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = read_params(&uri, &headers, &body);
    blocking(s, params, label_names_impl).await
}

fn label_names_impl(s: &Shared, params: &Params) -> ApiResult {
    let limit = limit_param(params)?;
    let (start, end) = time_range(params)?;
    let sets = parse_matchers(s, &params.all("match[]")).map_err(ApiError::bad_data)?;
    let q = s.storage.querier(start, end).map_err(storage_error)?;
    let mut names: Vec<String> = if sets.len() > 1 {
        let mut all = BTreeSet::new();
        for set in &sets {
            all.extend(q.label_names(set).map_err(storage_error)?);
        }
        all.into_iter().collect()
    } else {
        let set = sets.first().map(|v| v.as_slice()).unwrap_or(&[]);
        q.label_names(set).map_err(storage_error)?
    };
    let mut ok = Success::new();
    if limit > 0 && names.len() > limit {
        names.truncate(limit);
        ok.warnings.push(TRUNCATED.to_string());
    }
    ok.w.string_array(&names);
    Ok(ApiReply::Data(ok))
}

/// Prometheus's legacy label name rule.
fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub async fn label_values(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = read_params(&uri, &headers, &body);
    blocking(s, params, move |s, p| label_values_impl(s, p, &name)).await
}

fn label_values_impl(s: &Shared, params: &Params, name: &str) -> ApiResult {
    if !valid_label_name(name) {
        return Err(ApiError::bad_data(format!(
            "invalid label name: {}",
            gofmt::quote(name)
        )));
    }
    let limit = limit_param(params)?;
    let (start, end) = time_range(params)?;
    let sets = parse_matchers(s, &params.all("match[]")).map_err(ApiError::bad_data)?;
    let q = s.storage.querier(start, end).map_err(storage_error)?;
    let mut vals: Vec<String> = if sets.len() > 1 {
        let mut all = BTreeSet::new();
        for set in &sets {
            all.extend(q.label_values(name, set).map_err(storage_error)?);
        }
        all.into_iter().collect()
    } else {
        let set = sets.first().map(|v| v.as_slice()).unwrap_or(&[]);
        let mut v = q.label_values(name, set).map_err(storage_error)?;
        v.sort();
        v
    };
    let mut ok = Success::new();
    if limit > 0 && vals.len() > limit {
        vals.truncate(limit);
        ok.warnings.push(TRUNCATED.to_string());
    }
    ok.w.string_array(&vals);
    Ok(ApiReply::Data(ok))
}

pub async fn series(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = read_params(&uri, &headers, &body);
    blocking(s, params, series_impl).await
}

fn series_impl(s: &Shared, params: &Params) -> ApiResult {
    let raw = params.all("match[]");
    if raw.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let limit = limit_param(params)?;
    let (start, end) = time_range(params)?;
    let sets = parse_matchers(s, &raw).map_err(|e| ApiError::invalid_param("match[]", e))?;
    let q = s.storage.querier(start, end).map_err(storage_error)?;
    let hints = SelectHints {
        start,
        end,
        func: Some("series".to_string()),
        ..SelectHints::default()
    };
    let mut found: Vec<Labels> = Vec::new();
    for set in &sets {
        for series in q.select(Some(&hints), set).map_err(storage_error)? {
            found.push(series.labels().clone());
        }
    }
    if sets.len() > 1 {
        found.sort();
        found.dedup();
    }
    let mut ok = Success::with_capacity(found.len() * 80);
    if limit > 0 && found.len() > limit {
        found.truncate(limit);
        ok.warnings.push(TRUNCATED.to_string());
    }
    ok.w.byte(b'[');
    for (i, l) in found.iter().enumerate() {
        if i > 0 {
            ok.w.byte(b',');
        }
        ok.w.labels(l);
    }
    ok.w.byte(b']');
    Ok(ApiReply::Data(ok))
}

fn query_params(uri: &Uri) -> Params {
    Params::from_query(uri.query())
}

pub async fn targets(State(s): State<Arc<Shared>>, uri: Uri) -> Response {
    respond(targets_impl(&s, &query_params(&uri)))
}

fn targets_impl(s: &Shared, params: &Params) -> ApiResult {
    let state = params.get("state").to_ascii_lowercase();
    let pool_filter = params.get("scrapePool");
    let show_active = matches!(state.as_str(), "" | "any" | "active");
    let show_dropped = matches!(state.as_str(), "" | "any" | "dropped");
    let (mut active, mut dropped) = match &s.targets {
        Some(t) => (
            if show_active {
                t.active_targets()
            } else {
                Vec::new()
            },
            if show_dropped {
                t.dropped_targets()
            } else {
                Vec::new()
            },
        ),
        None => (Vec::new(), Vec::new()),
    };
    // Pools sorted by name, targets in discovery order within a pool.
    active.sort_by(|a, b| a.scrape_pool.cmp(&b.scrape_pool));
    dropped.sort_by(|a, b| a.scrape_pool.cmp(&b.scrape_pool));
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &dropped {
        *counts.entry(d.scrape_pool.as_str()).or_default() += 1;
    }
    let mut ok = Success::new();
    let w = &mut ok.w;
    w.raw(r#"{"activeTargets":["#);
    let mut first = true;
    for t in active
        .iter()
        .filter(|t| pool_filter.is_empty() || t.scrape_pool == pool_filter)
    {
        if !first {
            w.byte(b',');
        }
        first = false;
        w.raw(r#"{"discoveredLabels":"#);
        w.labels(&t.discovered_labels);
        w.raw(r#","labels":"#);
        w.labels(&t.labels);
        w.raw(r#","scrapePool":"#);
        w.string(&t.scrape_pool);
        w.raw(r#","scrapeUrl":"#);
        w.string(&t.scrape_url);
        w.raw(r#","globalUrl":"#);
        w.string(&t.global_url);
        w.raw(r#","lastError":"#);
        w.string(&t.last_error);
        w.raw(r#","lastScrape":"#);
        w.time(t.last_scrape);
        w.raw(r#","lastScrapeDuration":"#);
        w.f64_number(t.last_scrape_duration);
        w.raw(r#","health":"#);
        w.string(t.health.as_str());
        w.raw(r#","scrapeInterval":"#);
        w.string(&t.scrape_interval);
        w.raw(r#","scrapeTimeout":"#);
        w.string(&t.scrape_timeout);
        w.byte(b'}');
    }
    w.raw(r#"],"droppedTargets":["#);
    let mut first = true;
    for d in dropped
        .iter()
        .filter(|t| pool_filter.is_empty() || t.scrape_pool == pool_filter)
    {
        if !first {
            w.byte(b',');
        }
        first = false;
        w.raw(r#"{"discoveredLabels":"#);
        w.labels(&d.discovered_labels);
        w.raw(r#","scrapePool":"#);
        w.string(&d.scrape_pool);
        w.byte(b'}');
    }
    w.raw(r#"],"droppedTargetCounts":"#);
    if show_dropped {
        w.byte(b'{');
        for (i, (pool, n)) in counts.iter().enumerate() {
            if i > 0 {
                w.byte(b',');
            }
            w.key(pool);
            w.u64(*n);
        }
        w.byte(b'}');
    } else {
        w.raw("null");
    }
    w.byte(b'}');
    Ok(ApiReply::Data(ok))
}

pub async fn scrape_pools(State(s): State<Arc<Shared>>) -> Response {
    let mut pools = BTreeSet::new();
    if let Some(t) = &s.targets {
        pools.extend(t.active_targets().into_iter().map(|t| t.scrape_pool));
        pools.extend(t.dropped_targets().into_iter().map(|t| t.scrape_pool));
    }
    let pools: Vec<String> = pools.into_iter().collect();
    let mut ok = Success::new();
    ok.w.raw(r#"{"scrapePools":"#);
    ok.w.string_array(&pools);
    ok.w.byte(b'}');
    respond(Ok(ApiReply::Data(ok)))
}

fn parse_int_limit(params: &Params, name: &str) -> Result<i64, ApiError> {
    let v = params.get(name);
    if v.is_empty() {
        return Ok(-1);
    }
    v.parse()
        .map_err(|_| ApiError::bad_data(format!("{} must be a number", name)))
}

pub async fn target_metadata(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = read_params(&uri, &headers, &body);
    respond(target_metadata_impl(&s, &params))
}

fn target_metadata_impl(s: &Shared, params: &Params) -> ApiResult {
    let limit = parse_int_limit(params, "limit")?;
    let match_target = params.get("match_target");
    let matchers = if match_target.is_empty() {
        Vec::new()
    } else {
        s.engine
            .parse_metric_selector(match_target)
            .map_err(|e| ApiError::invalid_param("match_target", e.message))?
    };
    let metric = params.get("metric");
    let all = s
        .targets
        .as_ref()
        .map(|t| t.target_metadata())
        .unwrap_or_default();
    let mut ok = Success::new();
    let w = &mut ok.w;
    w.byte(b'[');
    let mut n = 0i64;
    'targets: for (labels, mds) in &all {
        if !matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
        {
            continue;
        }
        for md in mds {
            if limit >= 0 && n >= limit {
                break 'targets;
            }
            if !metric.is_empty() && md.metric != metric {
                continue;
            }
            if n > 0 {
                w.byte(b',');
            }
            n += 1;
            w.raw(r#"{"target":"#);
            w.labels(labels);
            if metric.is_empty() {
                w.raw(r#","metric":"#);
                w.string(&md.metric);
            }
            w.raw(r#","type":"#);
            w.string(&md.kind);
            w.raw(r#","help":"#);
            w.string(&md.help);
            w.raw(r#","unit":"#);
            w.string(&md.unit);
            w.byte(b'}');
        }
    }
    w.byte(b']');
    Ok(ApiReply::Data(ok))
}

pub async fn metric_metadata(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = read_params(&uri, &headers, &body);
    respond(metric_metadata_impl(&s, &params))
}

fn metric_metadata_impl(s: &Shared, params: &Params) -> ApiResult {
    let limit = parse_int_limit(params, "limit")?;
    let per_metric = parse_int_limit(params, "limit_per_metric")?;
    let metric = params.get("metric");
    let mut by_metric: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
    if let Some(t) = &s.targets {
        for (_, mds) in t.target_metadata() {
            for md in mds {
                if !metric.is_empty() && md.metric != metric {
                    continue;
                }
                let set = by_metric.entry(md.metric).or_default();
                if per_metric > 0 && set.len() as i64 >= per_metric {
                    continue;
                }
                set.insert((md.kind, md.help, md.unit));
            }
        }
    }
    let mut ok = Success::new();
    let w = &mut ok.w;
    w.byte(b'{');
    for (i, (name, set)) in by_metric.iter().enumerate() {
        if limit >= 0 && i as i64 >= limit {
            break;
        }
        if i > 0 {
            w.byte(b',');
        }
        w.key(name);
        w.byte(b'[');
        for (j, (kind, help, unit)) in set.iter().enumerate() {
            if j > 0 {
                w.byte(b',');
            }
            w.raw(r#"{"type":"#);
            w.string(kind);
            w.raw(r#","help":"#);
            w.string(help);
            w.raw(r#","unit":"#);
            w.string(unit);
            w.byte(b'}');
        }
        w.byte(b']');
    }
    w.byte(b'}');
    Ok(ApiReply::Data(ok))
}

fn write_alert(w: &mut JsonWriter, a: &Alert) {
    w.raw(r#"{"labels":"#);
    w.labels(&a.labels);
    w.raw(r#","annotations":"#);
    w.labels(&a.annotations);
    w.raw(r#","state":"#);
    w.string(&a.state);
    if a.active_at.is_some() {
        w.raw(r#","activeAt":"#);
        w.time(a.active_at);
    }
    if a.keep_firing_since.is_some() {
        w.raw(r#","keepFiringSince":"#);
        w.time(a.keep_firing_since);
    }
    w.raw(r#","value":"#);
    // Alert values are `strconv.FormatFloat(v, 'e', -1, 64)`.
    w.string(&format_float(a.value, FloatFormat::E));
    w.byte(b'}');
}

fn write_alerts(w: &mut JsonWriter, alerts: &[Alert]) {
    w.byte(b'[');
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            w.byte(b',');
        }
        write_alert(w, a);
    }
    w.byte(b']');
}

pub async fn alerts(State(s): State<Arc<Shared>>) -> Response {
    let groups = s
        .rules
        .as_ref()
        .map(|r| r.rule_groups())
        .unwrap_or_default();
    let mut ok = Success::new();
    let w = &mut ok.w;
    w.raw(r#"{"alerts":["#);
    let mut first = true;
    for g in &groups {
        for r in &g.rules {
            if let Rule::Alerting(ar) = r {
                for a in &ar.alerts {
                    if !first {
                        w.byte(b',');
                    }
                    first = false;
                    write_alert(w, a);
                }
            }
        }
    }
    w.raw("]}");
    respond(Ok(ApiReply::Data(ok)))
}

pub async fn rules(State(s): State<Arc<Shared>>, uri: Uri) -> Response {
    respond(rules_impl(&s, &query_params(&uri)))
}

fn rules_impl(s: &Shared, params: &Params) -> ApiResult {
    let typ = params.get("type").to_ascii_lowercase();
    if !matches!(typ.as_str(), "" | "alert" | "record") {
        return Err(ApiError::invalid_param(
            "type",
            format!("not supported value {}", gofmt::quote(&typ)),
        ));
    }
    let want_alerts = typ != "record";
    let want_records = typ != "alert";
    let exclude_alerts = match params.get("exclude_alerts").to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "f" => false,
        "true" | "1" | "t" => true,
        other => {
            return Err(ApiError::invalid_param(
                "exclude_alerts",
                format!(
                "error converting exclude_alerts: strconv.ParseBool: parsing {}: invalid syntax",
                gofmt::quote(other)
            ),
            ))
        }
    };
    let names = params.all("rule_name[]");
    let groups_f = params.all("rule_group[]");
    let files = params.all("file[]");
    let sets = parse_matchers(s, &params.all("match[]")).map_err(ApiError::bad_data)?;
    let groups = s
        .rules
        .as_ref()
        .map(|r| r.rule_groups())
        .unwrap_or_default();

    let mut ok = Success::new();
    let w = &mut ok.w;
    w.raw(r#"{"groups":["#);
    let mut first_group = true;
    for g in &groups {
        if !groups_f.is_empty() && !groups_f.contains(&g.name.as_str()) {
            continue;
        }
        if !files.is_empty() && !files.contains(&g.file.as_str()) {
            continue;
        }
        let selected: Vec<&Rule> = g
            .rules
            .iter()
            .filter(|r| {
                let (name, labels, is_alert) = match r {
                    Rule::Alerting(a) => (&a.name, &a.labels, true),
                    Rule::Recording(r) => (&r.name, &r.labels, false),
                };
                if (is_alert && !want_alerts) || (!is_alert && !want_records) {
                    return false;
                }
                if !names.is_empty() && !names.contains(&name.as_str()) {
                    return false;
                }
                sets.is_empty()
                    || sets.iter().any(|set| {
                        set.iter().all(|m| {
                            let v = if m.name == vigil_model::METRIC_NAME {
                                Some(name.as_str())
                            } else {
                                labels.get(&m.name)
                            };
                            m.matches(v.unwrap_or(""))
                        })
                    })
            })
            .collect();
        if selected.is_empty() {
            continue;
        }
        if !first_group {
            w.byte(b',');
        }
        first_group = false;
        w.raw(r#"{"name":"#);
        w.string(&g.name);
        w.raw(r#","file":"#);
        w.string(&g.file);
        w.raw(r#","rules":["#);
        for (i, r) in selected.iter().enumerate() {
            if i > 0 {
                w.byte(b',');
            }
            match r {
                Rule::Alerting(a) => {
                    w.raw(r#"{"state":"#);
                    w.string(&a.state);
                    w.raw(r#","name":"#);
                    w.string(&a.name);
                    w.raw(r#","query":"#);
                    w.string(&a.query);
                    w.raw(r#","duration":"#);
                    w.f64_number(a.duration);
                    w.raw(r#","keepFiringFor":"#);
                    w.f64_number(a.keep_firing_for);
                    w.raw(r#","labels":"#);
                    w.labels(&a.labels);
                    w.raw(r#","annotations":"#);
                    w.labels(&a.annotations);
                    w.raw(r#","alerts":"#);
                    if exclude_alerts {
                        w.raw("null");
                    } else {
                        write_alerts(w, &a.alerts);
                    }
                    w.raw(r#","health":"#);
                    w.string(&a.health);
                    if !a.last_error.is_empty() {
                        w.raw(r#","lastError":"#);
                        w.string(&a.last_error);
                    }
                    w.raw(r#","evaluationTime":"#);
                    w.f64_number(a.evaluation_time);
                    w.raw(r#","lastEvaluation":"#);
                    w.time(a.last_evaluation);
                    w.raw(r#","type":"alerting"}"#);
                }
                Rule::Recording(r) => {
                    w.raw(r#"{"name":"#);
                    w.string(&r.name);
                    w.raw(r#","query":"#);
                    w.string(&r.query);
                    if !r.labels.is_empty() {
                        w.raw(r#","labels":"#);
                        w.labels(&r.labels);
                    }
                    w.raw(r#","health":"#);
                    w.string(&r.health);
                    if !r.last_error.is_empty() {
                        w.raw(r#","lastError":"#);
                        w.string(&r.last_error);
                    }
                    w.raw(r#","evaluationTime":"#);
                    w.f64_number(r.evaluation_time);
                    w.raw(r#","lastEvaluation":"#);
                    w.time(r.last_evaluation);
                    w.raw(r#","type":"recording"}"#);
                }
            }
        }
        w.raw(r#"],"interval":"#);
        w.f64_number(g.interval);
        w.raw(r#","limit":"#);
        w.i64(g.limit);
        w.raw(r#","evaluationTime":"#);
        w.f64_number(g.evaluation_time);
        w.raw(r#","lastEvaluation":"#);
        w.time(g.last_evaluation);
        w.byte(b'}');
    }
    w.raw("]}");
    Ok(ApiReply::Data(ok))
}

pub async fn alertmanagers(State(s): State<Arc<Shared>>) -> Response {
    let (active, dropped) = s
        .alertmanagers
        .as_ref()
        .map(|a| a.alertmanagers())
        .unwrap_or_default();
    let mut ok = Success::new();
    let w = &mut ok.w;
    for (i, (key, urls)) in [
        ("activeAlertmanagers", &active),
        ("droppedAlertmanagers", &dropped),
    ]
    .iter()
    .enumerate()
    {
        w.raw(if i == 0 { "{" } else { "," });
        w.key(key);
        w.byte(b'[');
        for (j, u) in urls.iter().enumerate() {
            if j > 0 {
                w.byte(b',');
            }
            w.raw(r#"{"url":"#);
            w.string(u);
            w.byte(b'}');
        }
        w.byte(b']');
    }
    w.byte(b'}');
    respond(Ok(ApiReply::Data(ok)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_values_use_go_e_format() {
        let format_float_e = |v| format_float(v, FloatFormat::E);
        assert_eq!(format_float_e(1.0), "1e+00");
        assert_eq!(format_float_e(0.5), "5e-01");
        assert_eq!(format_float_e(123.25), "1.2325e+02");
        assert_eq!(format_float_e(1e-100), "1e-100");
        assert_eq!(format_float_e(0.0), "0e+00");
        assert_eq!(format_float_e(f64::NAN), "NaN");
    }

    #[test]
    fn label_names_follow_legacy_rule() {
        assert!(valid_label_name("__name__"));
        assert!(valid_label_name("job_2"));
        assert!(!valid_label_name("2job"));
        assert!(!valid_label_name("a-b"));
        assert!(!valid_label_name(""));
    }
}
