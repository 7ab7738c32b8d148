//! Metadata endpoints: series, label names and values (from storage),
//! targets and metric metadata (from scrape), rules, alerts and
//! Alertmanagers (from the rule manager and notifier).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;

use vigil_model::gofmt::{self, format_float, FloatFormat};
use vigil_model::storage::{Querier, SelectHints, StorageError};
use vigil_model::{Labels, Matcher};

use super::{
    blocking, respond, selector_param, time_range, ApiError, ApiReply, ApiResult, Form, Success,
    UrlQuery,
};
use crate::json::JsonWriter;
use crate::params::{parse_bool, parse_limit, Params};
use crate::sources::{Alert, AlertingRule, ErrorKind, Rule, RuleGroup};
use crate::Shared;

const TRUNCATED: &str = "results truncated due to limit";

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

fn storage_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorKind::Execution, e.to_string())
}

fn limit_param(params: &Params) -> Result<usize, ApiError> {
    parse_limit(params.get("limit")).map_err(|e| ApiError::invalid_param("limit", e))
}

/// Cuts `found` to a positive `limit`, with Prometheus's warning.
fn truncate_to_limit<T>(found: &mut Vec<T>, limit: usize, warnings: &mut Vec<String>) {
    if limit > 0 && found.len() > limit {
        found.truncate(limit);
        warnings.push(TRUNCATED.to_string());
    }
}

pub async fn label_names(State(s): State<Arc<Shared>>, Form(params): Form) -> Response {
    blocking(s, params, |s, p| {
        label_strings(s, p, |q, set| q.label_names(set))
    })
    .await
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
    Form(params): Form,
) -> Response {
    blocking(s, params, move |s, p| {
        if !valid_label_name(&name) {
            return Err(ApiError::bad_data(format!(
                "invalid label name: {}",
                gofmt::quote(&name)
            )));
        }
        label_strings(s, p, |q, set| {
            let mut v = q.label_values(&name, set)?;
            v.sort();
            Ok(v)
        })
    })
    .await
}

/// `/labels` and `/label/NAME/values`: the same limit, time range and
/// `match[]`; `ask` is the question put to the querier for one matcher set
/// (no matchers without `match[]`). Several sets give the sorted union.
fn label_strings(
    s: &Shared,
    params: &Params,
    ask: impl Fn(&dyn Querier, &[Matcher]) -> Result<Vec<String>, StorageError>,
) -> ApiResult {
    let limit = limit_param(params)?;
    let (start, end) = time_range(params)?;
    let sets = parse_matchers(s, &params.all("match[]")).map_err(ApiError::bad_data)?;
    let q = s.storage.querier(start, end).map_err(storage_error)?;
    let mut found: Vec<String> = if sets.len() > 1 {
        let mut all = BTreeSet::new();
        for set in &sets {
            all.extend(ask(q.as_ref(), set).map_err(storage_error)?);
        }
        all.into_iter().collect()
    } else {
        let set = sets.first().map_or(&[][..], Vec::as_slice);
        ask(q.as_ref(), set).map_err(storage_error)?
    };
    let mut ok = Success::new();
    truncate_to_limit(&mut found, limit, &mut ok.warnings);
    ok.w.string_array(&found);
    Ok(ApiReply::Data(ok))
}

pub async fn series(State(s): State<Arc<Shared>>, Form(params): Form) -> Response {
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
    truncate_to_limit(&mut found, limit, &mut ok.warnings);
    ok.w.array(&found, JsonWriter::labels);
    Ok(ApiReply::Data(ok))
}

pub async fn targets(State(s): State<Arc<Shared>>, UrlQuery(params): UrlQuery) -> Response {
    respond(targets_impl(&s, &params))
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
    let in_pool = |pool: &str| pool_filter.is_empty() || pool == pool_filter;
    Ok(ApiReply::data(|w| {
        w.raw(r#"{"activeTargets":"#);
        w.array(active.iter().filter(|t| in_pool(&t.scrape_pool)), |w, t| {
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
        });
        w.raw(r#","droppedTargets":"#);
        w.array(
            dropped.iter().filter(|t| in_pool(&t.scrape_pool)),
            |w, d| {
                w.raw(r#"{"discoveredLabels":"#);
                w.labels(&d.discovered_labels);
                w.raw(r#","scrapePool":"#);
                w.string(&d.scrape_pool);
                w.byte(b'}');
            },
        );
        w.raw(r#","droppedTargetCounts":"#);
        if show_dropped {
            w.object(&counts, |w, n| w.u64(*n));
        } else {
            w.raw("null");
        }
        w.byte(b'}');
    }))
}

pub async fn scrape_pools(State(s): State<Arc<Shared>>) -> Response {
    let mut pools = BTreeSet::new();
    if let Some(t) = &s.targets {
        pools.extend(t.active_targets().into_iter().map(|t| t.scrape_pool));
        pools.extend(t.dropped_targets().into_iter().map(|t| t.scrape_pool));
    }
    respond(Ok(ApiReply::data(|w| {
        w.raw(r#"{"scrapePools":"#);
        w.array(&pools, |w, p| w.string(p));
        w.byte(b'}');
    })))
}

/// A metadata limit: -1 (none) when absent.
fn parse_int_limit(params: &Params, name: &str) -> Result<i64, ApiError> {
    let v = params.get(name);
    if v.is_empty() {
        return Ok(-1);
    }
    v.parse()
        .map_err(|_| ApiError::bad_data(format!("{} must be a number", name)))
}

/// `"type":...,"help":...,"unit":...` of one metadata entry.
fn metadata_fields(w: &mut JsonWriter, kind: &str, help: &str, unit: &str) {
    w.raw(r#""type":"#);
    w.string(kind);
    w.raw(r#","help":"#);
    w.string(help);
    w.raw(r#","unit":"#);
    w.string(unit);
}

pub async fn target_metadata(State(s): State<Arc<Shared>>, Form(params): Form) -> Response {
    respond(target_metadata_impl(&s, &params))
}

fn target_metadata_impl(s: &Shared, params: &Params) -> ApiResult {
    let limit = parse_int_limit(params, "limit")?;
    let match_target = params.get("match_target");
    let matchers = if match_target.is_empty() {
        Vec::new()
    } else {
        selector_param(s, "match_target", match_target)?
    };
    let metric = params.get("metric");
    let all = s
        .targets
        .as_ref()
        .map(|t| t.target_metadata())
        .unwrap_or_default();
    let found = all
        .iter()
        .filter(|(labels, _)| {
            matchers
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
        })
        .flat_map(|(labels, mds)| mds.iter().map(move |md| (labels, md)))
        .filter(|(_, md)| metric.is_empty() || md.metric == metric)
        .take(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(ApiReply::data(|w| {
        w.array(found, |w, (labels, md)| {
            w.raw(r#"{"target":"#);
            w.labels(labels);
            if metric.is_empty() {
                w.raw(r#","metric":"#);
                w.string(&md.metric);
            }
            w.byte(b',');
            metadata_fields(w, &md.kind, &md.help, &md.unit);
            w.byte(b'}');
        })
    }))
}

pub async fn metric_metadata(State(s): State<Arc<Shared>>, Form(params): Form) -> Response {
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
    let metrics = by_metric
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(ApiReply::data(|w| {
        w.object(metrics, |w, set| {
            w.array(set, |w, (kind, help, unit)| {
                w.byte(b'{');
                metadata_fields(w, kind, help, unit);
                w.byte(b'}');
            })
        })
    }))
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

fn rule_groups(s: &Shared) -> Vec<RuleGroup> {
    s.rules
        .as_ref()
        .map(|r| r.rule_groups())
        .unwrap_or_default()
}

pub async fn alerts(State(s): State<Arc<Shared>>) -> Response {
    let groups = rule_groups(&s);
    let alerts = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| match r {
            Rule::Alerting(ar) => Some(&ar.alerts),
            Rule::Recording(_) => None,
        })
        .flatten();
    respond(Ok(ApiReply::data(|w| {
        w.raw(r#"{"alerts":"#);
        w.array(alerts, write_alert);
        w.byte(b'}');
    })))
}

/// The parameters of `/rules`.
struct RuleFilter<'a> {
    exclude_alerts: bool,
    alerts: bool,
    records: bool,
    names: Vec<&'a str>,
    groups: Vec<&'a str>,
    files: Vec<&'a str>,
    sets: Vec<Vec<Matcher>>,
}

impl<'a> RuleFilter<'a> {
    fn from_params(s: &Shared, params: &'a Params) -> Result<Self, ApiError> {
        let typ = params.get("type").to_ascii_lowercase();
        if !matches!(typ.as_str(), "" | "alert" | "record") {
            return Err(ApiError::invalid_param(
                "type",
                format!("not supported value {}", gofmt::quote(&typ)),
            ));
        }
        let exclude_alerts = parse_bool(params.get("exclude_alerts")).map_err(|e| {
            ApiError::invalid_param(
                "exclude_alerts",
                format!("error converting exclude_alerts: {e}"),
            )
        })?;
        Ok(RuleFilter {
            exclude_alerts,
            alerts: typ != "record",
            records: typ != "alert",
            names: params.all("rule_name[]"),
            groups: params.all("rule_group[]"),
            files: params.all("file[]"),
            sets: parse_matchers(s, &params.all("match[]")).map_err(ApiError::bad_data)?,
        })
    }

    fn keeps_group(&self, g: &RuleGroup) -> bool {
        (self.groups.is_empty() || self.groups.contains(&g.name.as_str()))
            && (self.files.is_empty() || self.files.contains(&g.file.as_str()))
    }

    fn keeps_rule(&self, r: &Rule) -> bool {
        let (name, labels, wanted) = match r {
            Rule::Alerting(a) => (&a.name, &a.labels, self.alerts),
            Rule::Recording(r) => (&r.name, &r.labels, self.records),
        };
        if !wanted || !(self.names.is_empty() || self.names.contains(&name.as_str())) {
            return false;
        }
        self.sets.is_empty()
            || self.sets.iter().any(|set| {
                set.iter().all(|m| {
                    let v = if m.name == vigil_model::METRIC_NAME {
                        Some(name.as_str())
                    } else {
                        labels.get(&m.name)
                    };
                    m.matches(v.unwrap_or(""))
                })
            })
    }
}

pub async fn rules(State(s): State<Arc<Shared>>, UrlQuery(params): UrlQuery) -> Response {
    respond(rules_impl(&s, &params))
}

fn rules_impl(s: &Shared, params: &Params) -> ApiResult {
    let filter = RuleFilter::from_params(s, params)?;
    let groups = rule_groups(s);
    let selected = groups
        .iter()
        .filter(|g| filter.keeps_group(g))
        .filter_map(|g| {
            let rules: Vec<&Rule> = g.rules.iter().filter(|r| filter.keeps_rule(r)).collect();
            (!rules.is_empty()).then_some((g, rules))
        });
    Ok(ApiReply::data(|w| {
        w.raw(r#"{"groups":"#);
        w.array(selected, |w, (g, rules)| {
            w.raw(r#"{"name":"#);
            w.string(&g.name);
            w.raw(r#","file":"#);
            w.string(&g.file);
            w.raw(r#","rules":"#);
            w.array(rules, |w, r| match r {
                Rule::Alerting(a) => write_alerting_rule(w, a, filter.exclude_alerts),
                Rule::Recording(r) => {
                    w.raw(r#"{"name":"#);
                    w.string(&r.name);
                    w.raw(r#","query":"#);
                    w.string(&r.query);
                    if !r.labels.is_empty() {
                        w.raw(r#","labels":"#);
                        w.labels(&r.labels);
                    }
                    write_rule_health(
                        w,
                        &r.health,
                        &r.last_error,
                        r.evaluation_time,
                        r.last_evaluation,
                    );
                    w.raw(r#","type":"recording"}"#);
                }
            });
            w.raw(r#","interval":"#);
            w.f64_number(g.interval);
            w.raw(r#","limit":"#);
            w.i64(g.limit);
            w.raw(r#","evaluationTime":"#);
            w.f64_number(g.evaluation_time);
            w.raw(r#","lastEvaluation":"#);
            w.time(g.last_evaluation);
            w.byte(b'}');
        });
        w.byte(b'}');
    }))
}

fn write_alerting_rule(w: &mut JsonWriter, a: &AlertingRule, exclude_alerts: bool) {
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
        w.array(&a.alerts, write_alert);
    }
    write_rule_health(
        w,
        &a.health,
        &a.last_error,
        a.evaluation_time,
        a.last_evaluation,
    );
    w.raw(r#","type":"alerting"}"#);
}

/// The members every rule has: `health`, `lastError` when there is one,
/// `evaluationTime`, `lastEvaluation`.
fn write_rule_health(
    w: &mut JsonWriter,
    health: &str,
    last_error: &str,
    evaluation_time: f64,
    last_evaluation: Option<std::time::SystemTime>,
) {
    w.raw(r#","health":"#);
    w.string(health);
    if !last_error.is_empty() {
        w.raw(r#","lastError":"#);
        w.string(last_error);
    }
    w.raw(r#","evaluationTime":"#);
    w.f64_number(evaluation_time);
    w.raw(r#","lastEvaluation":"#);
    w.time(last_evaluation);
}

pub async fn alertmanagers(State(s): State<Arc<Shared>>) -> Response {
    let (active, dropped) = s
        .alertmanagers
        .as_ref()
        .map(|a| a.alertmanagers())
        .unwrap_or_default();
    respond(Ok(ApiReply::data(|w| {
        w.object(
            [
                ("activeAlertmanagers", &active),
                ("droppedAlertmanagers", &dropped),
            ],
            |w, urls| {
                w.array(urls, |w, u| {
                    w.raw(r#"{"url":"#);
                    w.string(u);
                    w.byte(b'}');
                })
            },
        )
    })))
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
