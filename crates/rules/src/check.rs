//! `vigil check rules FILE...`: promtool's `check rules` output and exit
//! codes (0 ok, 1 errors, 3 lint findings with `--lint-fatal`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::rulefmt::{duplicate_rules, parse_rule_file, RuleFileError};

/// promtool's exit codes.
pub const EXIT_SUCCESS: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_LINT: i32 = 3;

/// `--lint` and `--lint-fatal`.
#[derive(Clone, Copy, Debug)]
pub struct CheckRulesOptions {
    /// `--lint=duplicate-rules` (the default) vs `--lint=none`.
    pub lint_duplicates: bool,
    pub lint_fatal: bool,
}

impl Default for CheckRulesOptions {
    fn default() -> Self {
        CheckRulesOptions {
            lint_duplicates: true,
            lint_fatal: false,
        }
    }
}

/// Outcome of checking one file.
#[derive(Debug)]
pub enum FileCheck {
    /// Valid; the number of rules.
    Ok {
        rules: usize,
    },
    /// Valid, but the lint found duplicates (the message to print).
    Lint {
        rules: usize,
        message: String,
    },
    Invalid(Vec<RuleFileError>),
}

/// Checks one rule file's text.
pub fn check_rule_text(text: &str, path: &Path, opts: &CheckRulesOptions) -> FileCheck {
    match parse_rule_file(text, path) {
        Err(errs) => FileCheck::Invalid(errs),
        Ok(f) => {
            let rules = f.groups.iter().map(|g| g.rules.len()).sum();
            if opts.lint_duplicates {
                let dups = duplicate_rules(&f.groups);
                if !dups.is_empty() {
                    let mut m = format!("lint error {} duplicate rule(s) found.\n", dups.len());
                    for (name, labels) in dups {
                        m.push_str(&format!("Metric: {name}\nLabel(s):\n"));
                        for (k, v) in labels {
                            m.push_str(&format!("\t{k}: {v}\n"));
                        }
                    }
                    m.push_str("Might cause inconsistency while recording expressions");
                    return FileCheck::Lint { rules, message: m };
                }
            }
            FileCheck::Ok { rules }
        }
    }
}

/// Runs `check rules` over `paths` (standard input when empty), writing
/// what promtool writes, and returns the exit code.
pub fn check_rules(
    paths: &[PathBuf],
    opts: &CheckRulesOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut failed = false;
    let mut has_errors = false;
    let inputs: Vec<(PathBuf, Result<String, String>)> = if paths.is_empty() {
        let mut s = String::new();
        let r = std::io::stdin()
            .read_to_string(&mut s)
            .map(|_| s)
            .map_err(|e| e.to_string());
        vec![(PathBuf::from("standard input"), r)]
    } else {
        paths
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    std::fs::read_to_string(p).map_err(|e| e.to_string()),
                )
            })
            .collect()
    };
    for (path, text) in inputs {
        let _ = writeln!(out, "Checking {}", path.display());
        let res = match text {
            Ok(t) => check_rule_text(&t, &path, opts),
            Err(e) => FileCheck::Invalid(vec![RuleFileError {
                file: path.clone(),
                pos: None,
                pos_alt: None,
                message: e,
            }]),
        };
        match res {
            FileCheck::Ok { rules } => {
                let _ = writeln!(out, "  SUCCESS: {rules} rules found");
            }
            FileCheck::Lint { message, .. } => {
                failed = true;
                let _ = writeln!(err, "  FAILED:");
                let _ = writeln!(err, "{message}");
            }
            FileCheck::Invalid(errs) => {
                failed = true;
                has_errors = true;
                let _ = writeln!(err, "  FAILED:");
                for e in errs {
                    let _ = writeln!(err, "{e}");
                }
            }
        }
        let _ = writeln!(out);
    }
    if failed && has_errors {
        EXIT_FAILURE
    } else if failed && opts.lint_fatal {
        EXIT_LINT
    } else {
        EXIT_SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(files: &[(&str, &str)], opts: CheckRulesOptions) -> (i32, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(n, t)| {
                let p = dir.path().join(n);
                std::fs::write(&p, t).unwrap();
                p
            })
            .collect();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let code = check_rules(&paths, &opts, &mut o, &mut e);
        let strip = |b: Vec<u8>| {
            String::from_utf8(b)
                .unwrap()
                .replace(&format!("{}/", dir.path().display()), "")
        };
        (code, strip(o), strip(e))
    }

    const GOOD: &str = "groups:\n  - name: a\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: X\n        expr: up == 0\n";
    const DUP: &str = "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up\n        labels: {a: b}\n      - record: x\n        expr: up\n        labels: {a: b}\n";

    #[test]
    fn success_output_and_code() {
        let (code, out, err) = run(&[("good.yml", GOOD)], CheckRulesOptions::default());
        assert_eq!(code, 0);
        assert_eq!(out, "Checking good.yml\n  SUCCESS: 2 rules found\n\n");
        assert_eq!(err, "");
    }

    #[test]
    fn failure_output_and_code() {
        let (code, out, err) = run(
            &[
                ("good.yml", GOOD),
                (
                    "bad.yml",
                    "groups:\n  - name: a\n    rules:\n      - record: \"a b\"\n        expr: up\n",
                ),
            ],
            CheckRulesOptions::default(),
        );
        assert_eq!(code, 1);
        assert_eq!(
            out,
            "Checking good.yml\n  SUCCESS: 2 rules found\n\nChecking bad.yml\n\n"
        );
        assert_eq!(err, "  FAILED:\nbad.yml: 4:17: group \"a\", rule 1, \"a b\": invalid recording rule name: a b\n");
    }

    #[test]
    fn duplicate_lint() {
        let (code, _, err) = run(&[("d.yml", DUP)], CheckRulesOptions::default());
        assert_eq!(code, 0);
        assert_eq!(err, "  FAILED:\nlint error 1 duplicate rule(s) found.\nMetric: x\nLabel(s):\n\ta: b\nMight cause inconsistency while recording expressions\n");
        let fatal = CheckRulesOptions {
            lint_fatal: true,
            ..Default::default()
        };
        assert_eq!(run(&[("d.yml", DUP)], fatal).0, 3);
        let none = CheckRulesOptions {
            lint_duplicates: false,
            lint_fatal: true,
        };
        assert_eq!(run(&[("d.yml", DUP)], none).0, 0);
    }

    #[test]
    fn missing_file_fails() {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let code = check_rules(
            &[PathBuf::from("/nonexistent/x.yml")],
            &CheckRulesOptions::default(),
            &mut o,
            &mut e,
        );
        assert_eq!(code, 1);
        assert!(String::from_utf8(e).unwrap().contains("/nonexistent/x.yml"));
    }
}
