//! Runs Prometheus's PromQL test scripts (`*.test`) against Vigil's engine.
//!
//! Scripts come from the directory in `VIGIL_PROMQL_TESTS` (default
//! `../shared/promql-tests` next to the workspace) plus our own cases in
//! `tests/promql/` at the repository root. The language and the extra checks
//! (range re-check at T-1m..T+1m, `@`-pinned variants at other times) follow
//! Prometheus 2.53's `promqltest`; see `shared/promql-tests/FORMAT.md`.
//! Only cases touching native histograms may be skipped, each with a reason.
//!
//! Data lives in the real TSDB head (`vigil_tsdb::head::Head`, WAL off, in
//! a temporary directory), so the scripts also exercise the storage read
//! path; `VIGIL_PROMQL_STORAGE=mem` switches to a plain in-memory store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vigil_model::storage::{
    Querier, Queryable, SelectHints, Series as StorageSeries, StorageError, VecSeries,
};
use vigil_model::{Labels, Matcher, Sample, STALE_NAN};
use vigil_promql::ast::{AtModifier, Expr};
use vigil_promql::engine::{Engine, EngineOptions, QueryControl, Value};
use vigil_promql::parser::{parse_duration, parse_metric_prefix, parse_with_options, ParseOptions};

// ---------------------------------------------------------------- storage

/// Where a script's samples are kept.
enum Storage {
    Mem(MemStorage),
    Head {
        head: vigil_tsdb::head::Head,
        _dir: tempfile::TempDir,
        histogram_series: BTreeSet<Labels>,
    },
}

impl Storage {
    fn new() -> Result<Self, String> {
        if std::env::var("VIGIL_PROMQL_STORAGE").is_ok_and(|v| v == "mem") {
            return Ok(Storage::Mem(MemStorage::default()));
        }
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        // Prometheus's test storage uses 24 h blocks, so later loads may go
        // back up to 12 h behind the newest sample.
        let opts = vigil_tsdb::head::HeadOptions {
            wal_enabled: false,
            chunk_range: 24 * 3600 * 1000,
            ..Default::default()
        };
        let head = vigil_tsdb::head::Head::open(dir.path(), opts)
            .map_err(|e| format!("opening head: {e}"))?;
        Ok(Storage::Head {
            head,
            _dir: dir,
            histogram_series: BTreeSet::new(),
        })
    }

    fn queryable(&self) -> &dyn Queryable {
        match self {
            Storage::Mem(m) => m,
            Storage::Head { head, .. } => head,
        }
    }

    fn histogram_series(&self) -> &BTreeSet<Labels> {
        match self {
            Storage::Mem(m) => &m.histogram_series,
            Storage::Head {
                histogram_series, ..
            } => histogram_series,
        }
    }

    /// Appends one `load` block: each series' items at `i * step`.
    fn load(&mut self, series: Vec<(Labels, Vec<Item>)>, step: i64) -> Result<(), String> {
        match self {
            Storage::Mem(m) => {
                for (labels, items) in series {
                    for (i, it) in items.iter().enumerate() {
                        match it {
                            Item::Value(v) => m.add(labels.clone(), i as i64 * step, *v),
                            Item::Omitted => {}
                            Item::Histogram => {
                                m.histogram_series.insert(labels.clone());
                            }
                        }
                    }
                }
                Ok(())
            }
            Storage::Head {
                head,
                histogram_series,
                ..
            } => {
                use vigil_model::storage::Appendable;
                let mut app = head.appender();
                for (labels, items) in series {
                    let mut sref = 0;
                    for (i, it) in items.iter().enumerate() {
                        match it {
                            Item::Value(v) => {
                                sref = app
                                    .append(sref, &labels, i as i64 * step, *v)
                                    .map_err(|e| format!("appending to {labels}: {e}"))?;
                            }
                            Item::Omitted => {}
                            Item::Histogram => {
                                histogram_series.insert(labels.clone());
                            }
                        }
                    }
                }
                app.commit().map_err(|e| format!("commit: {e}"))
            }
        }
    }
}

/// The test storage: series by label set, samples sorted by time.
#[derive(Default)]
struct MemStorage {
    series: BTreeMap<Labels, Vec<Sample>>,
    /// Series that had native-histogram samples in a `load`.
    histogram_series: BTreeSet<Labels>,
}

struct MemQuerier(Vec<VecSeries>);

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        let v = self
            .series
            .iter()
            .map(|(l, s)| VecSeries {
                labels: l.clone(),
                samples: s
                    .iter()
                    .filter(|p| p.t >= mint && p.t <= maxt)
                    .copied()
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        Ok(Box::new(MemQuerier(v)))
    }
}

impl Querier for MemQuerier {
    fn select(
        &self,
        _: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Vec<Box<dyn StorageSeries>>, StorageError> {
        Ok(self
            .0
            .iter()
            .filter(|s| matches_all(&s.labels, matchers))
            .map(|s| Box::new(s.clone()) as Box<dyn StorageSeries>)
            .collect())
    }

    fn label_values(&self, _: &str, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
}

fn matches_all(l: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
}

impl MemStorage {
    fn add(&mut self, labels: Labels, t: i64, v: f64) {
        let s = self.series.entry(labels).or_default();
        match s.binary_search_by(|p| p.t.cmp(&t)) {
            Ok(i) => s[i].v = v,
            Err(i) => s.insert(i, Sample::new(t, v)),
        }
    }
}

// ---------------------------------------------------------------- values

/// One item of a series description.
#[derive(Clone, Copy, Debug)]
enum Item {
    Value(f64),
    Omitted,
    Histogram,
}

fn go_number(s: &str) -> Option<f64> {
    vigil_promql::engine::gomath::go_parse_float(s)
}

/// Splits a values string into tokens, keeping `{{ ... }}` (with any
/// expansion suffix) together.
fn tokenize_values(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            if b[i] == b'{' && b.get(i + 1) == Some(&b'{') {
                match s[i..].find("}}") {
                    Some(off) => i += off + 2,
                    None => return Err(format!("unterminated histogram in {s:?}")),
                }
            } else {
                i += 1;
            }
        }
        out.push(s[start..i].to_string());
    }
    Ok(out)
}

/// Expands one token into items (`a+bxn`, `a-bxn`, `axn`, `_xn`, `_`,
/// `stale`, numbers, histogram literals).
fn expand(tok: &str, out: &mut Vec<Item>) -> Result<(), String> {
    if tok.starts_with("{{") {
        // Native histogram: count how many samples it stands for.
        let n = match tok.rfind("}}x") {
            Some(p) => {
                tok[p + 3..]
                    .parse::<usize>()
                    .map_err(|_| format!("bad histogram expansion {tok:?}"))?
                    + 1
            }
            None => 1,
        };
        out.extend(std::iter::repeat_n(Item::Histogram, n));
        return Ok(());
    }
    match tok {
        "_" => {
            out.push(Item::Omitted);
            return Ok(());
        }
        "stale" => {
            out.push(Item::Value(STALE_NAN));
            return Ok(());
        }
        _ => {}
    }
    if let Some(x) = tok.rfind('x') {
        if let Ok(n) = tok[x + 1..].parse::<usize>() {
            let head = &tok[..x];
            if head == "_" {
                out.extend(std::iter::repeat_n(Item::Omitted, n));
                return Ok(());
            }
            if head == "stale" {
                out.extend(std::iter::repeat_n(Item::Value(STALE_NAN), n + 1));
                return Ok(());
            }
            // Find the operator between a and b: a '+' or '-' not at the
            // start and not part of an exponent.
            let bytes = head.as_bytes();
            let mut op = None;
            for k in (1..bytes.len()).rev() {
                if (bytes[k] == b'+' || bytes[k] == b'-') && !matches!(bytes[k - 1], b'e' | b'E') {
                    op = Some(k);
                    break;
                }
            }
            let (a, b) = match op {
                Some(k) => {
                    let a =
                        go_number(&head[..k]).ok_or_else(|| format!("bad number in {tok:?}"))?;
                    let b = go_number(&head[k + 1..])
                        .ok_or_else(|| format!("bad number in {tok:?}"))?;
                    (a, if bytes[k] == b'-' { -b } else { b })
                }
                None => match go_number(head) {
                    Some(a) => (a, 0.0),
                    None => return Err(format!("bad expansion {tok:?}")),
                },
            };
            let mut cur = a;
            out.push(Item::Value(cur));
            for _ in 0..n {
                cur += b;
                out.push(Item::Value(cur));
            }
            return Ok(());
        }
    }
    let v = go_number(tok).ok_or_else(|| format!("bad value {tok:?}"))?;
    out.push(Item::Value(v));
    Ok(())
}

fn parse_items(s: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for tok in tokenize_values(s)? {
        expand(&tok, &mut items)?;
    }
    Ok(items)
}

fn parse_series_line(line: &str) -> Result<(Labels, Vec<Item>), String> {
    let (labels, off) =
        parse_metric_prefix(line).map_err(|e| format!("bad series {line:?}: {e:?}"))?;
    Ok((labels, parse_items(&line[off..])?))
}

fn duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('-') {
        return duration(rest).map(|d| -d);
    }
    parse_duration(s).map_err(|e| format!("bad duration {s:?}: {e}"))
}

// ---------------------------------------------------------------- script

#[derive(Debug)]
enum Expect {
    Scalar(f64),
    Series(Vec<(Labels, Vec<Item>)>),
}

#[derive(Debug)]
struct EvalCmd {
    line: usize,
    expr_text: String,
    fail: bool,
    ordered: bool,
    /// `None` for instant evals.
    range: Option<(i64, i64, i64)>,
    at: i64,
    expect: Expect,
    has_histogram_expectation: bool,
}

enum Cmd {
    Load(i64, Vec<String>),
    Clear,
    Eval(EvalCmd),
}

fn parse_script(text: &str) -> Result<Vec<(usize, Cmd)>, String> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let lineno = i + 1;
        let mut body = Vec::new();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].is_empty() {
            body.push(lines[j].clone());
            j += 1;
        }
        let word = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let cmd = match word.as_str() {
            "load" => {
                let d = l.split_whitespace().nth(1).ok_or("load without interval")?;
                Cmd::Load(duration(d)?, body)
            }
            "clear" => {
                // `clear` takes no body: the next line is a new command.
                cmds.push((lineno, Cmd::Clear));
                i += 1;
                continue;
            }
            w if w.starts_with("eval") => Cmd::Eval(parse_eval(l, lineno, &body)?),
            _ => return Err(format!("line {lineno}: unknown command {l:?}")),
        };
        cmds.push((lineno, cmd));
        i = j;
    }
    Ok(cmds)
}

fn parse_eval(l: &str, lineno: usize, body: &[String]) -> Result<EvalCmd, String> {
    let (word, rest) = l.split_once(char::is_whitespace).ok_or("bad eval")?;
    let word = word.to_ascii_lowercase();
    let (fail, ordered) = match word.as_str() {
        "eval" => (false, false),
        "eval_fail" => (true, false),
        "eval_ordered" => (false, true),
        _ => return Err(format!("line {lineno}: unknown eval variant {word}")),
    };
    let rest = rest.trim_start();
    let err = || format!("line {lineno}: cannot parse eval {l:?}");
    let (range, at, expr_text) = if let Some(r) = rest.strip_prefix("instant") {
        let r = r
            .trim_start()
            .strip_prefix("at")
            .ok_or_else(err)?
            .trim_start();
        let (t, e) = r.split_once(char::is_whitespace).ok_or_else(err)?;
        (None, duration(t)?, e.trim().to_string())
    } else if let Some(r) = rest.strip_prefix("range") {
        let r = r
            .trim_start()
            .strip_prefix("from")
            .ok_or_else(err)?
            .trim_start();
        let (s, r) = r.split_once(" to ").ok_or_else(err)?;
        let (e, r) = r.split_once(" step ").ok_or_else(err)?;
        let (st, expr) = r
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or_else(err)?;
        let (s, e, st) = (duration(s)?, duration(e)?, duration(st)?);
        (Some((s, e, st)), s, expr.trim().to_string())
    } else {
        return Err(err());
    };
    let mut has_hist = false;
    let expect = match body.first() {
        Some(first) if !first.starts_with('{') && go_number(first.trim()).is_some() => {
            Expect::Scalar(go_number(first.trim()).unwrap_or(f64::NAN))
        }
        _ => {
            let mut v = Vec::new();
            for b in body {
                if b.contains("{{") {
                    has_hist = true;
                }
                v.push(parse_series_line(b).map_err(|e| format!("line {lineno}: {e}"))?);
            }
            Expect::Series(v)
        }
    };
    Ok(EvalCmd {
        line: lineno,
        expr_text,
        fail,
        ordered,
        range,
        at,
        expect,
        has_histogram_expectation: has_hist,
    })
}

// ---------------------------------------------------------------- checks

fn almost_equal(a: f64, b: f64) -> bool {
    const EPS: f64 = 1e-6;
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < EPS * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < EPS
}

/// Compares an instant-query result with the expectation.
fn compare_instant(cmd: &EvalCmd, v: &Value) -> Result<(), String> {
    match (&cmd.expect, v) {
        (Expect::Scalar(want), Value::Scalar { v, .. }) => {
            if almost_equal(*want, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want} but got {v}"))
            }
        }
        (Expect::Scalar(want), other) => Err(format!("expected scalar {want}, got {other:?}")),
        (Expect::Series(exp), Value::Vector(got)) => {
            let mut seen = BTreeSet::new();
            for (pos, s) in got.iter().enumerate() {
                let Some(ei) = exp.iter().position(|(l, _)| *l == s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has value {}",
                        s.labels, s.v
                    ));
                };
                if cmd.ordered && ei != pos {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        s.labels,
                        ei + 1,
                        pos + 1
                    ));
                }
                let want = match exp[ei].1.first() {
                    Some(Item::Value(w)) => *w,
                    other => return Err(format!("bad expectation for {}: {other:?}", s.labels)),
                };
                if !almost_equal(want, s.v) {
                    return Err(format!("expected {want} for {} but got {}", s.labels, s.v));
                }
                seen.insert(ei);
            }
            for (i, (l, vals)) in exp.iter().enumerate() {
                if !seen.contains(&i) {
                    let got: Vec<String> = got
                        .iter()
                        .map(|s| format!("{} {}", s.labels, s.v))
                        .collect();
                    return Err(format!(
                        "expected metric {l} with {vals:?} not found; got [{}]",
                        got.join(", ")
                    ));
                }
            }
            Ok(())
        }
        (Expect::Series(exp), Value::Matrix(m)) if exp.is_empty() && m.is_empty() => Ok(()),
        (Expect::Series(_), other) => Err(format!("unexpected result type {other:?}")),
    }
}

fn compare_range(cmd: &EvalCmd, v: &Value, start: i64, end: i64, step: i64) -> Result<(), String> {
    let Value::Matrix(m) = v else {
        return Err(format!("range query returned {v:?}"));
    };
    let Expect::Series(exp) = &cmd.expect else {
        return Err("scalar expectation for a range eval".into());
    };
    check_sorted(m)?;
    let mut seen = BTreeSet::new();
    for s in m {
        let Some(ei) = exp.iter().position(|(l, _)| *l == s.labels) else {
            return Err(format!("unexpected metric {} in result", s.labels));
        };
        seen.insert(ei);
        let mut want = Vec::new();
        for (i, it) in exp[ei].1.iter().enumerate() {
            let t = start + i as i64 * step;
            if t > end {
                return Err(format!("expected too many points for {}", s.labels));
            }
            match it {
                Item::Value(v) => want.push(Sample::new(t, *v)),
                Item::Omitted => {}
                Item::Histogram => return Err("histogram expectation".into()),
            }
        }
        if want.len() != s.samples.len() {
            return Err(format!(
                "expected {} points for {}, got {:?}",
                want.len(),
                s.labels,
                s.samples
            ));
        }
        for (w, g) in want.iter().zip(&s.samples) {
            if w.t != g.t || !almost_equal(w.v, g.v) {
                return Err(format!("expected {w:?} for {} but got {g:?}", s.labels));
            }
        }
    }
    for (i, (l, _)) in exp.iter().enumerate() {
        if !seen.contains(&i) {
            return Err(format!("expected metric {l} not found"));
        }
    }
    Ok(())
}

fn check_sorted(m: &[vigil_promql::engine::Series]) -> Result<(), String> {
    for w in m.windows(2) {
        if w[0].labels >= w[1].labels {
            return Err(format!(
                "matrix not sorted: {} before {}",
                w[0].labels, w[1].labels
            ));
        }
    }
    Ok(())
}

const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Pins selectors and subqueries (outside `@` subqueries) to `ts`, as the
/// Go harness does; returns false when a time-dependent function is seen.
fn pin_at(e: &mut Expr, ts: i64, in_at: bool) -> bool {
    let pin = |at: &mut Option<AtModifier>| {
        if !matches!(at, Some(AtModifier::Timestamp(_))) {
            *at = Some(AtModifier::Timestamp(ts));
        }
    };
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::VectorSelector(vs) => {
            if !in_at {
                pin(&mut vs.at);
            }
            true
        }
        Expr::MatrixSelector(ms) => {
            if !in_at {
                pin(&mut ms.selector.at);
            }
            true
        }
        Expr::Subquery(sq) => {
            if !in_at {
                pin(&mut sq.at);
            }
            pin_at(&mut sq.expr, ts, true)
        }
        Expr::Paren(x) => pin_at(x, ts, in_at),
        Expr::Unary(u) => pin_at(&mut u.expr, ts, in_at),
        Expr::Binary(b) => {
            let l = pin_at(&mut b.lhs, ts, in_at);
            let r = pin_at(&mut b.rhs, ts, in_at);
            l && r
        }
        Expr::Aggregate(a) => {
            let p = match &mut a.param {
                Some(p) => pin_at(p, ts, in_at),
                None => true,
            };
            pin_at(&mut a.expr, ts, in_at) && p
        }
        Expr::Call(c) => {
            let mut ok = in_at || !AT_UNSAFE.contains(&c.func.name);
            for a in &mut c.args {
                ok &= pin_at(a, ts, in_at);
            }
            ok
        }
    }
}

/// Names of selectors in `e`, to find native-histogram series it touches.
fn selectors<'a>(e: &'a Expr, out: &mut Vec<&'a [Matcher]>) {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(vs) => out.push(&vs.matchers),
        Expr::MatrixSelector(ms) => out.push(&ms.selector.matchers),
        Expr::Subquery(sq) => selectors(&sq.expr, out),
        Expr::Paren(x) => selectors(x, out),
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                selectors(p, out);
            }
            selectors(&a.expr, out);
        }
        Expr::Call(c) => c.args.iter().for_each(|a| selectors(a, out)),
    }
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        lookback_delta: 5 * 60 * 1000,
        max_samples: 10_000,
        timeout: std::time::Duration::from_secs(100),
        default_eval_interval: 60 * 1000,
        max_concurrency: 0,
        threads: 2,
    })
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

fn run_instant_variant(
    eng: &Engine,
    db: &dyn Queryable,
    cmd: &EvalCmd,
    expr: &Expr,
    t: i64,
) -> Result<(), String> {
    let ctl = QueryControl::new();
    let res = eng.instant_query(db, expr, t, &ctl);
    if cmd.fail {
        return match res {
            Err(_) => Ok(()),
            Ok(v) => Err(format!("expected error at {t}ms but got {:?}", v.value)),
        };
    }
    let res = res.map_err(|e| format!("error evaluating at {t}ms: {e}"))?;
    compare_instant(cmd, &res.value).map_err(|e| format!("at {t}ms: {e}"))?;
    // Range mode: the middle step of T-1m..T+1m must give the same answer.
    let r = eng
        .range_query(db, expr, t - 60_000, t + 60_000, 60_000, &ctl)
        .map_err(|e| format!("error in range mode at {t}ms: {e}"))?;
    if cmd.ordered {
        return Ok(());
    }
    let Value::Matrix(m) = &r.value else {
        return Err("range mode returned a non-matrix".into());
    };
    check_sorted(m)?;
    let mid = match res.value {
        Value::Scalar { .. } => {
            let v = m
                .first()
                .and_then(|s| s.samples.iter().find(|p| p.t == t))
                .map(|p| p.v)
                .unwrap_or(f64::NAN);
            Value::Scalar { t, v }
        }
        _ => Value::Vector(
            m.iter()
                .filter_map(|s| {
                    s.samples.iter().find(|p| p.t == t).map(|p| {
                        vigil_promql::engine::InstantSample {
                            labels: s.labels.clone(),
                            t,
                            v: p.v,
                        }
                    })
                })
                .collect(),
        ),
    };
    compare_instant(cmd, &mid).map_err(|e| format!("range mode at {t}ms: {e}"))
}

fn run_eval(eng: &Engine, store: &Storage, cmd: &EvalCmd) -> Outcome {
    let db = store.queryable();
    if cmd.has_histogram_expectation {
        return Outcome::Skip("expects a native histogram value".into());
    }
    // Experimental functions on, as Prometheus's own test harness runs.
    let expr = match parse_with_options(&cmd.expr_text, ParseOptions::all()) {
        Ok(e) => e,
        Err(e) => return Outcome::Fail(format!("parse error: {e:?}")),
    };
    let mut sels = Vec::new();
    selectors(&expr, &mut sels);
    for m in &sels {
        if let Some(l) = store.histogram_series().iter().find(|l| matches_all(l, m)) {
            return Outcome::Skip(format!("selects native histogram series {l}"));
        }
    }
    let r = match cmd.range {
        Some((s, e, st)) => {
            let res = eng.range_query(db, &expr, s, e, st, &QueryControl::new());
            match (cmd.fail, res) {
                (true, Err(_)) => Ok(()),
                (true, Ok(_)) => Err("expected error but got none".to_string()),
                (false, Err(err)) => Err(format!("error evaluating: {err}")),
                (false, Ok(v)) => compare_range(cmd, &v.value, s, e, st),
            }
        }
        None => {
            let mut r = run_instant_variant(eng, db, cmd, &expr, cmd.at);
            if r.is_ok() {
                let mut pinned = expr.clone();
                let ts = cmd.at;
                if pin_at(&mut pinned, ts, false) {
                    let times = if ts == 0 {
                        vec![-1000, 0, 1000]
                    } else {
                        vec![-10 * ts, 0, ts / 5, ts, 10 * ts]
                    };
                    for t in times {
                        r = run_instant_variant(eng, db, cmd, &pinned, t)
                            .map_err(|e| format!("with @ {ts}ms: {e}"));
                        if r.is_err() {
                            break;
                        }
                    }
                }
            }
            r
        }
    };
    match r {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e),
    }
}

struct FileResult {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn run_file(path: &Path, eng: &Engine) -> Result<FileResult, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cmds = parse_script(&text)?;
    let mut db = Storage::new()?;
    let mut res = FileResult {
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    for (line, cmd) in cmds {
        match cmd {
            Cmd::Clear => db = Storage::new()?,
            Cmd::Load(step, body) => {
                let mut series = Vec::new();
                for l in body {
                    series.push(parse_series_line(&l).map_err(|e| format!("{name}:{line}: {e}"))?);
                }
                db.load(series, step)
                    .map_err(|e| format!("{name}:{line}: {e}"))?;
            }
            Cmd::Eval(ev) => match run_eval(eng, &db, &ev) {
                Outcome::Pass => res.passed += 1,
                Outcome::Skip(why) => {
                    println!("  SKIP {name}:{} {}: {why}", ev.line, ev.expr_text);
                    res.skipped += 1;
                }
                Outcome::Fail(why) => {
                    println!("  FAIL {name}:{} {}: {why}", ev.line, ev.expr_text);
                    res.failed += 1;
                }
            },
        }
    }
    Ok(res)
}

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "test"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The single "test" this binary offers to libtest-style runners.
const TEST_NAME: &str = "conformance";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // cargo-nextest lists tests with `--list --format terse` and then runs
    // each by name with `--exact`; answer like a libtest binary would.
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("{TEST_NAME}: test");
        }
        return;
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let upstream = std::env::var_os("VIGIL_PROMQL_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../../shared/promql-tests"));
    let ours = manifest.join("../../tests/promql");
    let mut files = Vec::new();
    if upstream.is_dir() {
        files.extend(test_files(&upstream));
    } else {
        println!(
            "NOTE: PromQL test directory {} not found (set VIGIL_PROMQL_TESTS); upstream scripts NOT run",
            upstream.display()
        );
    }
    files.extend(test_files(&ours));
    // A positional argument filters script files by name; the test's own
    // name (as nextest passes it) selects everything.
    let filter = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .filter(|a| a.as_str() != TEST_NAME)
        .cloned();
    let eng = engine();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if filter
            .as_ref()
            .is_some_and(|flt| !name.contains(flt.as_str()))
        {
            continue;
        }
        match run_file(f, &eng) {
            Ok(r) => {
                println!(
                    "{name}: {} passed, {} failed, {} skipped",
                    r.passed, r.failed, r.skipped
                );
                passed += r.passed;
                failed += r.failed;
                skipped += r.skipped;
            }
            Err(e) => {
                println!("{name}: cannot run: {e}");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
