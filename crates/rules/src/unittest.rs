//! `vigil test rules FILE...`: the rule unit-test format of
//! `promtool test rules` (input series in the expanding notation, alert and
//! PromQL expectations), promtool's output and exit codes.
//!
//! Each test group runs on fresh in-memory storage: input samples become
//! visible up to each evaluation time, groups are evaluated every
//! `evaluation_interval` from 0 to the latest `eval_time`, exactly as
//! promtool drives Prometheus's rule groups.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_config::Duration;
use vigil_model::gofmt::quote as go_quote;
use vigil_model::{Labels, Sample, STALE_NAN};
use vigil_promql::engine::{Engine, EngineOptions};

use vigil_model::storage::Appendable;
use vigil_tsdb::head::{Head, HeadOptions};

use crate::group::Group;
use crate::rule::{query_vector, AlertState, EvalEnv, Rule};
use crate::rulefmt::{check_keys, load_rule_file};
use crate::yamlpos::{PNode, Pos};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<Duration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
    /// Compare sample values with a relative tolerance of 1e-6.
    #[serde(default)]
    fuzzy_compare: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<Duration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTestCase>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTestCase>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTestCase {
    #[serde(default)]
    eval_time: Duration,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTestCase {
    expr: String,
    #[serde(default)]
    eval_time: Duration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// Runs the unit-test files, printing what promtool prints; returns the
/// exit code (0 all passed, 1 any failure).
pub fn test_rules(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut failed = false;
    for f in files {
        let _ = writeln!(out, "Unit Testing:  {}", f.display());
        match run_test_file(f, err) {
            Ok(()) => {
                let _ = writeln!(out, "  SUCCESS");
            }
            Err(errs) => {
                let _ = writeln!(err, "  FAILED:");
                for e in errs {
                    let _ = writeln!(err, "{e}");
                    let _ = writeln!(out);
                }
                failed = true;
            }
        }
        let _ = writeln!(out);
    }
    if failed {
        1
    } else {
        0
    }
}

/// Runs one unit-test file; `Err` holds the failure messages.
pub fn run_test_file(path: &Path, warn: &mut dyn Write) -> Result<(), Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    unknown_fields(&text)?;
    let utf: UnitTestFile = serde_yaml_ng::from_str(&text).map_err(|e| vec![e.to_string()])?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = Vec::new();
    for rf in &utf.rule_files {
        let p = Path::new(rf);
        let full = if p.is_absolute() || rf.is_empty() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        let m = vigil_config::glob(&full.to_string_lossy());
        if m.is_empty() {
            let _ = writeln!(warn, "  WARNING: no file match pattern {}", full.display());
        }
        rule_files.extend(m);
    }
    let eval_interval = utf
        .evaluation_interval
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(60));
    let mut order: BTreeMap<String, usize> = BTreeMap::new();
    for (i, g) in utf.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return Err(vec![format!(
                "group name repeated in evaluation order: {g}"
            )]);
        }
    }
    let mut errs = Vec::new();
    for tg in utf.tests {
        if let Err(e) = run_group_test(tg, eval_interval, &order, &rule_files, utf.fuzzy_compare) {
            errs.extend(e);
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Unknown keys, all of them, in promtool's (Go-YAML's) words.
fn unknown_fields(text: &str) -> Result<(), Vec<String>> {
    let Ok(Some(root)) = crate::yamlpos::index(text) else {
        // Syntax errors are reported by the typed parse.
        return Ok(());
    };
    let mut out = Vec::new();
    let keys = |n: &PNode, allowed: &[&str], ty: &str, out: &mut Vec<(Pos, String)>| {
        check_keys(n, allowed, ty, out)
    };
    keys(
        &root,
        &[
            "rule_files",
            "evaluation_interval",
            "group_eval_order",
            "tests",
            "fuzzy_compare",
        ],
        "main.unitTestFile",
        &mut out,
    );
    for tg in root.get("tests").map(PNode::items).unwrap_or_default() {
        keys(
            tg,
            &[
                "interval",
                "input_series",
                "alert_rule_test",
                "promql_expr_test",
                "external_labels",
                "external_url",
                "name",
            ],
            "main.testGroup",
            &mut out,
        );
        for s in tg.get("input_series").map(PNode::items).unwrap_or_default() {
            keys(s, &["series", "values"], "main.series", &mut out);
        }
        for a in tg
            .get("alert_rule_test")
            .map(PNode::items)
            .unwrap_or_default()
        {
            keys(
                a,
                &["eval_time", "alertname", "exp_alerts"],
                "main.alertTestCase",
                &mut out,
            );
            for e in a.get("exp_alerts").map(PNode::items).unwrap_or_default() {
                keys(
                    e,
                    &["exp_labels", "exp_annotations"],
                    "main.alert",
                    &mut out,
                );
            }
        }
        for p in tg
            .get("promql_expr_test")
            .map(PNode::items)
            .unwrap_or_default()
        {
            keys(
                p,
                &["expr", "eval_time", "exp_samples"],
                "main.promqlTestCase",
                &mut out,
            );
            for e in p.get("exp_samples").map(PNode::items).unwrap_or_default() {
                keys(e, &["labels", "value"], "main.sample", &mut out);
            }
        }
    }
    if out.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = out
        .iter()
        .map(|(p, m)| format!("  line {}: {m}", p.line))
        .collect();
    Err(vec![format!(
        "yaml: unmarshal errors:\n{}",
        lines.join("\n")
    )])
}

/// One value of the expanding notation: a number, `stale`, or omitted.
fn parse_series_values(s: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if let Some(rest) = tok.strip_prefix('_') {
            if rest.is_empty() {
                out.push(None);
                continue;
            }
            let n = rest
                .strip_prefix('x')
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| format!("invalid value {tok:?}"))?;
            out.extend((0..n).map(|_| None));
            continue;
        }
        let (a, rest) = scan_number(tok).ok_or_else(|| format!("invalid value {tok:?}"))?;
        if rest.is_empty() {
            out.push(Some(a));
            continue;
        }
        let (step, rest) = if rest.starts_with('+') || rest.starts_with('-') {
            let (b, r) = scan_number(rest).ok_or_else(|| format!("invalid value {tok:?}"))?;
            (Some(b), r)
        } else {
            (None, rest)
        };
        let n = rest
            .strip_prefix('x')
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("invalid value {tok:?}"))?;
        match step {
            None => out.extend((0..=n).map(|_| Some(a))),
            Some(b) => {
                let mut v = a;
                out.push(Some(v));
                for _ in 0..n {
                    v += b;
                    out.push(Some(v));
                }
            }
        }
    }
    Ok(out)
}

/// A number at the start of `s` (with sign, exponent, `Inf`, `NaN`,
/// `stale`) and the rest.
fn scan_number(s: &str) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let neg = s.starts_with('-');
    for (word, v) in [
        ("Inf", f64::INFINITY),
        ("inf", f64::INFINITY),
        ("NaN", f64::NAN),
        ("stale", STALE_NAN),
    ] {
        if s[i..].starts_with(word) {
            let v = if neg { -v } else { v };
            return Some((v, &s[i + word.len()..]));
        }
    }
    let start_digits = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i == start_digits {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let ds = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > ds {
            i = j;
        }
    }
    let v: f64 = s[..i].parse().ok()?;
    Some((v, &s[i..]))
}

/// strconv.FormatFloat(v, 'E', -1, 64).
fn format_float_e(v: f64) -> String {
    vigil_model::gofmt::format_float(v, vigil_model::gofmt::FloatFormat::E).replace('e', "E")
}

fn pairs_string(p: &[(String, String)]) -> String {
    let parts: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn indent_lines(s: &str, indent: &str) -> String {
    s.split('\n')
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

type AlertLA = (Labels, Vec<(String, String)>);

fn alerts_string(la: &[AlertLA]) -> String {
    if la.is_empty() {
        return "[]".into();
    }
    let one = |(l, a): &AlertLA| format!("Labels:{l}\nAnnotations:{}", pairs_string(a));
    let mut s = format!("[\n0:{}", indent_lines(&format!("\n{}", one(&la[0])), "  "));
    for (i, x) in la[1..].iter().enumerate() {
        s.push_str(&format!(
            ",\n{}:{}",
            i + 1,
            indent_lines(&format!("\n{}", one(x)), "  ")
        ));
    }
    s.push_str("\n]");
    s
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{l} {}", format_float_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_group_test(
    tg: TestGroup,
    eval_interval: Duration,
    order: &BTreeMap<String, usize>,
    rule_files: &[PathBuf],
    fuzzy: bool,
) -> Result<(), Vec<String>> {
    let interval = tg
        .interval
        .filter(|d| !d.is_zero())
        .unwrap_or(eval_interval);
    let step = interval.as_millis() as i64;
    // Input samples, to be revealed up to each evaluation time.
    let mut input: Vec<(Labels, Vec<Sample>)> = Vec::new();
    for s in &tg.input_series {
        let labels = vigil_promql::parser::parse_metric(s.series.trim())
            .map_err(|e| vec![format!("{e}")])?;
        let vals = parse_series_values(&s.values).map_err(|e| vec![e])?;
        let samples = vals
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * step, v)))
            .collect();
        input.push((labels, samples));
    }
    // The real TSDB head (without WAL) in a scratch directory.
    let scratch =
        tempfile::tempdir().map_err(|e| vec![format!("creating scratch directory: {e}")])?;
    let store = Head::open(
        scratch.path(),
        HeadOptions {
            wal_enabled: false,
            ..HeadOptions::default()
        },
    )
    .map_err(|e| vec![format!("opening head: {e}")])?;
    let mut defs = Vec::new();
    let mut load_errs = Vec::new();
    for f in rule_files {
        match load_rule_file(f) {
            Ok(rf) => defs.extend(rf.groups),
            Err(es) => load_errs.extend(es.into_iter().map(|e| e.to_string())),
        }
    }
    if !load_errs.is_empty() {
        return Err(load_errs);
    }
    let mut groups: Vec<Group> = defs.iter().map(|d| Group::new(d, step, 0, false)).collect();
    groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(0));
    let engine = Engine::new(EngineOptions {
        default_eval_interval: eval_interval.as_millis() as i64,
        ..EngineOptions::default()
    });
    let external_labels = Labels::from_pairs(
        &tg.external_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    let env = EvalEnv {
        engine: &engine,
        queryable: &store,
        external_url: &tg.external_url,
        external_labels: &external_labels,
    };
    let test_name = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    let mut alert_times: Vec<i64> = Vec::new();
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return Err(vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                a.eval_time
            )]);
        }
        alert_times.push(a.eval_time.as_millis() as i64);
    }
    alert_times.sort();
    alert_times.dedup();
    let max_t = tg
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time)
        .chain(tg.promql_expr_test.iter().map(|p| p.eval_time))
        .max()
        .unwrap_or_default()
        .as_millis() as i64;
    let ei = eval_interval.as_millis() as i64;
    let mut errs = Vec::new();
    let mut revealed = vec![0usize; input.len()];
    let mut curr = 0;
    let mut ts = 0i64;
    while ts <= max_t {
        for (i, (l, s)) in input.iter().enumerate() {
            let upto = s.partition_point(|x| x.t <= ts);
            if upto > revealed[i] {
                let mut app = store.appender();
                for x in &s[revealed[i]..upto] {
                    if let Err(e) = app.append(0, l, x.t, x.v) {
                        return Err(vec![format!("loading {l}: {e}")]);
                    }
                }
                if let Err(e) = app.commit() {
                    return Err(vec![format!("loading {l}: {e}")]);
                }
                revealed[i] = upto;
            }
        }
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(&env, &store, ts, 60_000, None);
            for r in &g.rules {
                if let Some(e) = &r.info().last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name(),
                        go_duration(ts)
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return Err(errs);
        }
        while curr < alert_times.len() && ts <= alert_times[curr] && alert_times[curr] < ts + ei {
            let t = alert_times[curr];
            for tc in tg
                .alert_rule_test
                .iter()
                .filter(|a| a.eval_time.as_millis() as i64 == t)
            {
                let mut got: Vec<AlertLA> = Vec::new();
                for g in &groups {
                    for r in &g.rules {
                        let Rule::Alerting(ar) = r else { continue };
                        if ar.name != tc.alertname {
                            continue;
                        }
                        for a in ar.active.values() {
                            if a.state == AlertState::Firing {
                                got.push((a.labels.clone(), a.annotations.clone()));
                            }
                        }
                    }
                }
                let mut exp: Vec<AlertLA> = tc
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = a.exp_labels.clone();
                        l.insert("alertname".into(), tc.alertname.clone());
                        let labels = Labels::from_pairs(
                            &l.iter()
                                .map(|(k, v)| (k.as_str(), v.as_str()))
                                .collect::<Vec<_>>(),
                        );
                        let ann = a
                            .exp_annotations
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        (labels, ann)
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    errs.push(format!(
                        "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        tc.alertname,
                        tc.eval_time,
                        indent_lines(&alerts_string(&exp), "            "),
                        indent_lines(&alerts_string(&got), "            ")
                    ));
                }
            }
            curr += 1;
        }
        ts += ei;
    }
    'cases: for tc in &tg.promql_expr_test {
        let t = tc.eval_time.as_millis() as i64;
        let res = vigil_promql::parser::parse(&tc.expr)
            .map_err(|e| e.to_string())
            .and_then(|e| query_vector(&env, &e, t));
        let got = match res {
            Ok(v) => v,
            Err(e) => {
                errs.push(format!(
                    "    expr: {}, time: {}, err: {e}",
                    go_quote(&tc.expr),
                    tc.eval_time
                ));
                continue;
            }
        };
        let mut got: Vec<(Labels, f64)> = got.into_iter().map(|s| (s.labels, s.v)).collect();
        let mut exp = Vec::new();
        for s in &tc.exp_samples {
            match vigil_promql::parser::parse_metric(&s.labels) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errs.push(format!(
                        "    expr: {}, time: {}, err: labels {}: {e}",
                        go_quote(&tc.expr),
                        tc.eval_time,
                        go_quote(&s.labels)
                    ));
                    continue 'cases;
                }
            }
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, e)| g.0 == e.0 && (g.1 == e.1 || (fuzzy && almost_equal(g.1, e.1))));
        if !same {
            errs.push(format!(
                "    expr: {}, time: {},\n        exp: {}\n        got: {}",
                go_quote(&tc.expr),
                tc.eval_time,
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Prometheus's `almost.Equal` with its test epsilon (1e-6, relative).
fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 1e-6;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

/// Go's `time.Duration.String()` for whole milliseconds.
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let s = (ms % 60_000) as f64 / 1000.0;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if ms < 1000 {
        return format!("{}{}ms", if neg { "-" } else { "" }, ms);
    }
    out.push_str(&format!("{}s", crate::template::format_g(s, None, false)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(s: &str) -> Vec<Option<f64>> {
        parse_series_values(s).unwrap()
    }

    #[test]
    fn expanding_notation() {
        assert_eq!(
            vals("-2+4x3"),
            vec![Some(-2.0), Some(2.0), Some(6.0), Some(10.0)]
        );
        assert_eq!(
            vals("1-2x4"),
            vec![Some(1.0), Some(-1.0), Some(-3.0), Some(-5.0), Some(-7.0)]
        );
        assert_eq!(vals("1x4"), vec![Some(1.0); 5]);
        let v = vals("1 _x3 stale");
        assert_eq!(v.len(), 5);
        assert_eq!(&v[..4], &[Some(1.0), None, None, None]);
        assert!(vigil_model::is_stale_nan(v[4].unwrap()));
        assert_eq!(
            vals("_ 1e3 0x2"),
            vec![None, Some(1000.0), Some(0.0), Some(0.0), Some(0.0)]
        );
        assert_eq!(vals("1e+2+1x1"), vec![Some(100.0), Some(101.0)]);
        assert!(vals("Inf -Inf NaN")[2].unwrap().is_nan());
        assert!(parse_series_values("abc").is_err());
        assert!(parse_series_values("1+1y3").is_err());
    }

    #[test]
    fn fuzzy_equality() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(0.0, 1e-9));
    }

    #[test]
    fn formats() {
        assert_eq!(format_float_e(1.0), "1E+00");
        assert_eq!(format_float_e(15.5), "1.55E+01");
        assert_eq!(format_float_e(0.001), "1E-03");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(300_000), "5m0s");
        assert_eq!(go_duration(3_690_000), "1h1m30s");
        assert_eq!(go_duration(1_500), "1.5s");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `a+bxN` yields N+1 values, `_xN` N gaps, and parsing never panics.
        #[test]
        fn expansion_counts(a in -1000i32..1000, b in -100i32..100, n in 0u64..50) {
            let v = parse_series_values(&format!("{a}{b:+}x{n}")).unwrap();
            prop_assert_eq!(v.len() as u64, n + 1);
            prop_assert_eq!(v.last().copied().flatten(), Some(a as f64 + n as f64 * b as f64));
            let gaps = parse_series_values(&format!("_x{n}")).unwrap();
            prop_assert_eq!(gaps.len() as u64, n);
        }

        #[test]
        fn never_panics(s in "[0-9x+\\-_. a-zA-Z]{0,40}") {
            let _ = parse_series_values(&s);
        }
    }
}
