//! Fixture-driven tests: every file in `fixtures/good` loads; every file in
//! `fixtures/bad` fails with exactly the `file:line: message` its first line
//! (`# expect: LINE: MESSAGE`) names. Optionally compared with the real
//! `promtool check config` for accept/reject agreement.

use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_config::{check_config, Config, ConfigError};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", root.display());
    files
}

/// `(line, message)` from the fixture's `# expect:` header.
fn expectation(path: &Path) -> (usize, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let spec = first.strip_prefix("# expect: ").unwrap_or_else(|| {
        panic!(
            "{}: first line must be '# expect: LINE: MESSAGE'",
            path.display()
        )
    });
    let (line, msg) = spec.split_once(": ").unwrap();
    (line.parse().unwrap(), msg.to_string())
}

#[test]
fn good_fixtures_load() {
    for f in fixtures("good").into_iter().chain(fixtures("good_253")) {
        let cfg = Config::load(&f).unwrap_or_else(|e| panic!("{e}"));
        // The effective config must itself load, to the same effective config
        // (secrets are `<secret>` in both, so compare the rendered forms).
        let out = cfg.to_yaml();
        let again = Config::from_yaml(&out, &f)
            .unwrap_or_else(|e| panic!("to_yaml of {} does not reload: {e}\n{out}", f.display()));
        assert_eq!(again.to_yaml(), out, "{}", f.display());
        assert_eq!(again.global, cfg.global, "{}", f.display());
    }
}

#[test]
fn bad_fixtures_fail_at_the_right_line() {
    let mut failures = Vec::new();
    for f in fixtures("bad") {
        let (line, message) = expectation(&f);
        match Config::load(&f) {
            Ok(_) => failures.push(format!("{}: loaded, expected line {line}", f.display())),
            Err(e @ ConfigError::Io { .. }) => failures.push(e.to_string()),
            Err(ConfigError::Invalid {
                file,
                line: got_line,
                message: got,
            }) => {
                assert_eq!(file, f);
                if (got_line, got.as_str()) != (line, message.as_str()) {
                    failures.push(format!(
                        "{}:\n  want {line}: {message}\n  got  {got_line}: {got}",
                        f.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_display_is_file_colon_line() {
    let f = fixtures("bad")
        .into_iter()
        .find(|p| p.ends_with("duplicate_job.yml"))
        .unwrap();
    let e = Config::load(&f).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:8: found multiple scrape configs with job name \"node\"",
            f.display()
        )
    );
}

#[test]
fn check_config_summarises_and_lists_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    for r in ["b.yml", "a.yml"] {
        std::fs::write(dir.path().join("rules").join(r), "groups: []\n").unwrap();
    }
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "rule_files: ['rules/*.yml', 'missing/*.yml']\nscrape_configs:\n  - job_name: x\n    static_configs: [{targets: ['a:1', 'b:2']}]\n",
    )
    .unwrap();
    let s = check_config(&cfg).unwrap();
    assert_eq!(
        s.rule_files,
        vec![
            dir.path().join("rules/a.yml"),
            dir.path().join("rules/b.yml")
        ]
    );
    assert_eq!((s.scrape_configs, s.static_targets), (1, 2));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    let text = s.to_string();
    assert!(text.contains("  SUCCESS: 2 rule files found"), "{text}");
    assert!(
        text.contains(&format!(
            " SUCCESS: {} is valid prometheus config file syntax",
            cfg.display()
        )),
        "{text}"
    );

    // A credentials file that does not exist is an error naming its line.
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: x\n    tls_config:\n      cert_file: nope.crt\n      key_file: nope.key\n",
    )
    .unwrap();
    let e = check_config(&cfg).unwrap_err();
    assert_eq!(e.line(), Some(4), "{e}");
}

/// Accept/reject agreement with the real promtool, when it is installed.
/// Fixtures marked `# divergence:` document where Vigil is deliberately stricter.
#[test]
fn promtool_agrees_on_accept_and_reject() {
    let Ok(out) = Command::new("promtool").arg("--version").output() else {
        eprintln!("SKIP promtool_agrees_on_accept_and_reject: promtool is not installed");
        return;
    };
    eprintln!(
        "promtool: {}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
    );
    let promtool_accepts = |f: &Path| {
        Command::new("promtool")
            .args(["check", "config", "--syntax-only"])
            .arg(f)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let mut disagreements = Vec::new();
    for f in fixtures("good") {
        if !promtool_accepts(&f) {
            disagreements.push(format!("promtool rejects good fixture {}", f.display()));
        }
    }
    for f in fixtures("bad") {
        let text = std::fs::read_to_string(&f).unwrap();
        if text.lines().any(|l| l.starts_with("# divergence:")) {
            continue;
        }
        if promtool_accepts(&f) {
            disagreements.push(format!("promtool accepts bad fixture {}", f.display()));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
