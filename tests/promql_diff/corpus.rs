//! Reader of `tests/promql/differential_queries.txt`: one PromQL query per
//! line, grouped by `## family` headers, with `#!` directives that apply to
//! the next query. Plain `#` lines are comments.
//!
//! Directives:
//! - `#! known-diff: <reason>`: the answers are expected to differ because
//!   Prometheus 2.53 (the reference) changed behaviour since 2.42 (the
//!   binary the test runs); the difference is printed but does not fail.
//! - `#! error-text-differs: <reason>`: for an error, compare HTTP status and
//!   `errorType` only, because 2.42 and 2.53 word the message differently.
//! - `#! ordered`: the order of an instant vector is part of the answer
//!   (implied for queries whose outermost call is `sort` or `sort_desc`).

use std::path::Path;

#[derive(Debug, Clone)]
pub struct Case {
    /// 1-based line in the corpus file.
    pub line: usize,
    pub family: String,
    pub query: String,
    pub known_diff: Option<String>,
    pub error_text_differs: Option<String>,
    pub ordered: bool,
}

pub fn load(path: &Path) -> Result<Vec<Case>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}:{e}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<Case>, String> {
    let mut out = Vec::new();
    let mut family = String::from("(none)");
    let mut known_diff = None;
    let mut error_text_differs = None;
    let mut ordered = false;
    let mut seen = std::collections::HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("## ") {
            family = rest.trim().to_string();
            continue;
        }
        if let Some(rest) = line.strip_prefix("#!") {
            let rest = rest.trim();
            if let Some(r) = rest.strip_prefix("known-diff:") {
                known_diff = Some(nonempty(r, n)?);
            } else if let Some(r) = rest.strip_prefix("error-text-differs:") {
                error_text_differs = Some(nonempty(r, n)?);
            } else if rest == "ordered" {
                ordered = true;
            } else {
                return Err(format!("{n}: unknown directive `{rest}`"));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some(first) = seen.insert(line.to_string(), n) {
            return Err(format!("{n}: duplicate of the query on line {first}"));
        }
        let implied = ["sort(", "sort_desc("].iter().any(|p| line.starts_with(p));
        out.push(Case {
            line: n,
            family: family.clone(),
            query: line.to_string(),
            known_diff: known_diff.take(),
            error_text_differs: error_text_differs.take(),
            ordered: std::mem::take(&mut ordered) || implied,
        });
    }
    Ok(out)
}

fn nonempty(reason: &str, line: usize) -> Result<String, String> {
    let r = reason.trim();
    if r.is_empty() {
        Err(format!("{line}: a directive needs a reason"))
    } else {
        Ok(r.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_apply_to_the_next_query_only() {
        let cases = parse(
            "## sel\n# comment\n#! known-diff: changed in 2.51\nup\nup offset 1m\n\
             ## sort\nsort(up)\n#! ordered\ntopk(2, up)\n#! error-text-differs: wording\nfoo(\n",
        )
        .unwrap();
        assert_eq!(cases.len(), 5);
        assert_eq!(cases[0].query, "up");
        assert_eq!(cases[0].line, 4);
        assert_eq!(cases[0].known_diff.as_deref(), Some("changed in 2.51"));
        assert_eq!(cases[1].known_diff, None);
        assert_eq!(cases[1].family, "sel");
        assert!(cases[2].ordered && cases[3].ordered);
        assert!(!cases[1].ordered && !cases[4].ordered);
        assert_eq!(cases[4].error_text_differs.as_deref(), Some("wording"));
    }

    #[test]
    fn unknown_directive_and_missing_reason_are_errors() {
        assert!(parse("#! bogus\nup\n").is_err());
        assert!(parse("#! known-diff:\nup\n").is_err());
        assert!(parse("up\n## other\nup\n").is_err());
    }
}
