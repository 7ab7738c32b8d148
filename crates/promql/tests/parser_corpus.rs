//! Differential and round-trip tests of the PromQL parser over a corpus:
//! every `eval` expression of Prometheus's test scripts (read from
//! `VIGIL_PROMQL_TESTS`, default `../../../shared/promql-tests` relative to
//! this crate) plus the queries in `CORPUS` below.
//!
//! The `promql-parser` crate serves as an oracle for accept/reject only; it
//! follows Prometheus 3.x in places, and those known deviations are listed
//! with each case.

use std::path::PathBuf;
use vigil_promql::ast::Expr;
use vigil_promql::parser::{parse_with_options, ParseError, ParseOptions};

/// Experimental functions enabled, as in Prometheus's test scripts (and in
/// the oracle, which has no switch).
fn parse(q: &str) -> Result<Expr, ParseError> {
    parse_with_options(q, ParseOptions::all())
}

fn tests_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIGIL_PROMQL_TESTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/promql-tests"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "note: PromQL test scripts not found at {}; skipping",
            dir.display()
        );
        None
    }
}

/// (file, line number, expression) of every eval command.
fn script_exprs() -> Vec<(String, usize, String)> {
    let Some(dir) = tests_dir() else {
        return Vec::new();
    };
    let instant =
        regex::Regex::new(r"(?i)^eval(?:_fail|_ordered)?\s+instant\s+at\s+\S+\s+(.+)$").unwrap();
    let range = regex::Regex::new(
        r"(?i)^eval(?:_fail|_ordered)?\s+range\s+from\s+\S+\s+to\s+\S+\s+step\s+\S+\s+(.+)$",
    )
    .unwrap();
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        if path.extension().and_then(|e| e.to_str()) != Some("test") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(c) = instant.captures(line).or_else(|| range.captures(line)) {
                out.push((name.clone(), i + 1, c[1].to_string()));
            }
        }
    }
    out
}

/// Why the oracle (Prometheus 3.x semantics) disagrees with 2.53 on `q`.
fn oracle_deviation(q: &str) -> Option<&'static str> {
    if q.contains("holt_winters") {
        return Some("holt_winters was renamed double_exponential_smoothing in 3.0");
    }
    None
}

/// Every float series line of a `load` block must parse as a metric.
#[test]
fn script_series_descriptions_parse() {
    let Some(dir) = tests_dir() else { return };
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("test") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut in_load = false;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                in_load = false;
                continue;
            }
            if line.to_ascii_lowercase().starts_with("load ") {
                in_load = true;
                continue;
            }
            if !in_load || line.contains("{{") {
                continue;
            }
            let (labels, rest) = vigil_promql::parser::parse_metric_prefix(line)
                .unwrap_or_else(|e| panic!("{}:{}: {line}: {e}", path.display(), i + 1));
            assert!(!labels.is_empty(), "{}:{}: {line}", path.display(), i + 1);
            assert!(
                line[rest..].starts_with(char::is_whitespace),
                "{}:{}: values must follow the metric: {:?}",
                path.display(),
                i + 1,
                &line[rest..]
            );
            let (_, values) = vigil_promql::parser::parse_series_desc(line)
                .unwrap_or_else(|e| panic!("{}:{}: {line}: {e}", path.display(), i + 1));
            assert!(!values.is_empty(), "{}:{}: {line}", path.display(), i + 1);
            n += 1;
        }
    }
    println!("{n} series descriptions parsed");
}

#[test]
fn scripts_parse_and_agree_with_oracle() {
    let exprs = script_exprs();
    let mut fails = Vec::new();
    for (file, line, q) in &exprs {
        let ours = parse(q);
        let theirs = promql_parser::parser::parse(q);
        if let Err(e) = &ours {
            fails.push(format!("{file}:{line}: {q}: ours: {e}"));
        }
        if ours.is_ok() != theirs.is_ok() && oracle_deviation(q).is_none() {
            fails.push(format!("{file}:{line}: {q}: oracle: {:?}", theirs.err()));
        }
        if let Ok(e) = &ours {
            let text = vigil_promql::parser::format_expr(e);
            match parse(&text) {
                Ok(back) if normalized(&back) == normalized(e) => {}
                Ok(_) => fails.push(format!("{file}:{line}: {q} does not round-trip via {text}")),
                Err(err) => fails.push(format!("{file}:{line}: {q} printed as {text}: {err}")),
            }
        }
    }
    println!("{} script expressions checked", exprs.len());
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

struct Case {
    line: usize,
    query: String,
    valid: bool,
    oracle_note: Option<String>,
}

fn corpus() -> Vec<Case> {
    let text = include_str!("data/parser_corpus.txt");
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let (valid, rest) = match raw.split_at_checked(2) {
            Some(("+ ", r)) => (true, r),
            Some(("- ", r)) => (false, r),
            _ if raw == "-" || raw == "+" => (raw == "+", ""),
            _ => continue,
        };
        let (query, note) = match rest.split_once("  ## oracle: ") {
            Some((q, n)) => (q, Some(n.to_string())),
            None => (rest, None),
        };
        out.push(Case {
            line: i + 1,
            query: query.replace('⏎', "\n"),
            valid,
            oracle_note: note,
        });
    }
    out
}

/// The AST with every selector's matchers sorted (the printer sorts them,
/// so a reparse may order them differently); NaN compares equal in Debug.
fn normalized(e: &vigil_promql::ast::Expr) -> String {
    let mut e = e.clone();
    sort_matchers(&mut e);
    format!("{e:?}")
}

fn sort_matchers(e: &mut vigil_promql::ast::Expr) {
    use vigil_promql::ast::Expr;
    let key = |m: &vigil_model::Matcher| (m.name.clone(), m.op.as_str(), m.value.clone());
    match e {
        Expr::VectorSelector(vs) => vs.matchers.sort_by_key(key),
        Expr::MatrixSelector(m) => m.selector.matchers.sort_by_key(key),
        Expr::Subquery(s) => sort_matchers(&mut s.expr),
        Expr::Paren(p) => sort_matchers(p),
        Expr::Unary(u) => sort_matchers(&mut u.expr),
        Expr::Binary(b) => {
            sort_matchers(&mut b.lhs);
            sort_matchers(&mut b.rhs);
        }
        Expr::Aggregate(a) => {
            sort_matchers(&mut a.expr);
            if let Some(p) = &mut a.param {
                sort_matchers(p);
            }
        }
        Expr::Call(c) => c.args.iter_mut().for_each(sort_matchers),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

#[test]
fn corpus_matches_prometheus_and_oracle() {
    let cases = corpus();
    assert!(cases.len() > 400, "corpus has {} cases", cases.len());
    let mut fails = Vec::new();
    let mut deviations = 0;
    for c in &cases {
        let ours = parse(&c.query);
        if ours.is_ok() != c.valid {
            fails.push(format!(
                "line {}: {:?}: expected {}, got {:?}",
                c.line,
                c.query,
                if c.valid { "valid" } else { "invalid" },
                ours.as_ref()
                    .map(vigil_promql::parser::format_expr)
                    .map_err(|e| e.to_string())
            ));
        }
        let theirs = promql_parser::parser::parse(&c.query);
        let agree = ours.is_ok() == theirs.is_ok();
        match (&c.oracle_note, agree) {
            (None, false) => fails.push(format!(
                "line {}: {:?}: oracle disagrees: {:?}",
                c.line,
                c.query,
                theirs.map(|e| e.to_string())
            )),
            (Some(note), true) => fails.push(format!(
                "line {}: {:?}: marked as oracle deviation ({note}) but the oracle agrees",
                c.line, c.query
            )),
            (Some(_), false) => deviations += 1,
            (None, true) => {}
        }
        if let Ok(e) = &ours {
            let text = vigil_promql::parser::format_expr(e);
            match parse(&text) {
                Ok(back) => {
                    if normalized(&back) != normalized(e)
                        || vigil_promql::parser::format_expr(&back) != text
                    {
                        fails.push(format!(
                            "line {}: {:?} does not round-trip via {text:?}",
                            c.line, c.query
                        ));
                    }
                }
                Err(err) => fails.push(format!(
                    "line {}: {:?} printed as {text:?}: {err}",
                    c.line, c.query
                )),
            }
        }
    }
    println!(
        "{} corpus cases, {deviations} known oracle deviations",
        cases.len()
    );
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}
