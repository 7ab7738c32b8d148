//! `vigil check rules` against the fixtures: exit code by name prefix
//! (`good_` 0, `bad_` 1, `lint_` 0 and 3 with --lint-fatal) and, where the
//! real promtool is installed, the same exit code and the same
//! "SUCCESS: N rules found" line.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_rules::check::{check_rules, CheckRulesOptions};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    v
}

fn ours(p: &Path, fatal: bool) -> (i32, String, String) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let opts = CheckRulesOptions {
        lint_fatal: fatal,
        ..Default::default()
    };
    let code = check_rules(&[p.to_path_buf()], &opts, &mut o, &mut e);
    (
        code,
        String::from_utf8_lossy(&o).into_owned(),
        String::from_utf8_lossy(&e).into_owned(),
    )
}

#[test]
fn exit_codes_by_name() {
    for f in fixtures() {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let (code, out, err) = ours(&f, false);
        let want = if name.starts_with("bad_") { 1 } else { 0 };
        assert_eq!(code, want, "{name}\n{out}{err}");
        if name.starts_with("lint_") {
            assert_eq!(ours(&f, true).0, 3, "{name}");
        }
        if name.starts_with("bad_") {
            // Every error names the file and, for YAML-level errors, a line.
            assert!(err.contains(&*f.to_string_lossy()), "{name}: {err}");
        }
    }
}

#[test]
fn agrees_with_promtool() {
    if Command::new("promtool").arg("--version").output().is_err() {
        println!("skipping: promtool not installed");
        return;
    }
    for f in fixtures() {
        for fatal in [false, true] {
            let mut cmd = Command::new("promtool");
            cmd.args(["check", "rules"]);
            if fatal {
                cmd.arg("--lint-fatal");
            }
            let real = cmd.arg(&f).output().expect("promtool");
            let (code, out, err) = ours(&f, fatal);
            assert_eq!(
                Some(code),
                real.status.code(),
                "{} (lint-fatal {fatal})\nvigil:\n{out}{err}\npromtool:\n{}{}",
                f.display(),
                String::from_utf8_lossy(&real.stdout),
                String::from_utf8_lossy(&real.stderr)
            );
            assert_eq!(
                out,
                String::from_utf8_lossy(&real.stdout),
                "{}",
                f.display()
            );
        }
    }
}
