//! End-to-end tests of the `vigil` binary's command line, start-up, reload
//! and shutdown (issue: foundation).

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const COMPOSE_CONFIG: &str = "global:
  scrape_interval: 15s
  evaluation_interval: 15s
alerting:
  alertmanagers:
    - static_configs:
        - targets:
          # - alertmanager:9093
rule_files:
  # - \"first_rules.yml\"
scrape_configs:
  - job_name: 'node monitoring'
    static_configs:
      - targets: ['monitoring:9100']
      - targets: ['monitoring:9256']
";

fn vigil(args: &[&str]) -> std::process::Output {
    Command::new(vigil_bin())
        .args(args)
        .output()
        .expect("run vigil")
}

#[test]
fn help_lists_prometheus_flags() {
    let out = vigil(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config.file",
        "--web.listen-address",
        "--web.enable-lifecycle",
        "--web.enable-admin-api",
        "--web.enable-remote-write-receiver",
        "--web.external-url",
        "--web.route-prefix",
        "--web.cors.origin",
        "--storage.tsdb.path",
        "--storage.tsdb.retention.time",
        "--storage.tsdb.retention.size",
        "--storage.tsdb.min-block-duration",
        "--storage.tsdb.max-block-duration",
        "--query.lookback-delta",
        "--query.timeout",
        "--query.max-concurrency",
        "--query.max-samples",
        "--rules.alert.for-outage-tolerance",
        "--rules.alert.for-grace-period",
        "--rules.alert.resend-delay",
        "--alertmanager.notification-queue-capacity",
        "--log.level",
        "--log.format",
    ] {
        assert!(help.contains(flag), "--help does not list {flag}:\n{help}");
    }
}

#[test]
fn version_names_prometheus_compatibility() {
    let out = vigil(&["--version"]);
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with("vigil "), "{v}");
    assert!(v.contains("Prometheus 2.53"), "{v}");
}

#[test]
fn unknown_flag_is_an_error_naming_it() {
    let out = vigil(&["--storage.tsdb.bogus-flag=1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--storage.tsdb.bogus-flag"), "{err}");
}

#[test]
fn compose_command_line_starts_and_serves_health() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, COMPOSE_CONFIG).unwrap();
    let port = free_port();
    let mut cmd = Command::new(vigil_bin());
    cmd.args([
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", cfg.display()),
        &format!(
            "--storage.tsdb.path={}",
            dir.path().join("prometheus").display()
        ),
        "--web.console.libraries=/etc/prometheus/console_libraries",
        "--web.console.templates=/etc/prometheus/consoles",
        "--storage.tsdb.retention.time=168h",
        "--web.enable-lifecycle",
    ]);
    let mut p = Proc::spawn("vigil", cmd, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(
        &format!("{base}/-/ready"),
        Duration::from_secs(60),
        Some(&p),
    );
    let c = http();
    let healthy = c.get(format!("{base}/-/healthy")).send().unwrap();
    assert_eq!(healthy.status().as_u16(), 200);
    // The ignored console flags are reported once, by name.
    let log = p.output();
    assert!(log.contains("web.console.libraries"), "{log}");
    assert!(log.contains("web.console.templates"), "{log}");
    // Flags reach /api/v1/status/flags.
    let flags: serde_json::Value = c
        .get(format!("{base}/api/v1/status/flags"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(flags["data"]["storage.tsdb.retention.time"], "168h");
    // Graceful shutdown on SIGTERM exits 0.
    let st = p.stop(Duration::from_secs(20)).expect("exit status");
    assert!(st.success(), "exit status {st:?}\n{}", p.output());
}

#[test]
fn check_config_accepts_compose_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, COMPOSE_CONFIG).unwrap();
    let out = vigil(&["check", "config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
}

#[test]
fn check_config_rejects_with_file_and_line() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "unknown key",
            "global:\n  scrape_interval: 15s\n  bogus_key: 1\n",
            3,
        ),
        (
            "bad duration",
            "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    scrape_interval: 5x\n",
            5,
        ),
        (
            "timeout > interval",
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
            4,
        ),
        (
            "duplicate job",
            "scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: a\n",
            4,
        ),
        (
            "invalid regex",
            "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [x]\n        regex: '(unclosed'\n        target_label: y\n",
            5,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, text, line) in cases {
        let cfg = dir.path().join("bad.yml");
        std::fs::write(&cfg, text).unwrap();
        let out = vigil(&["check", "config", cfg.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{what}: should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:{line}:", cfg.display());
        assert!(err.contains(&want), "{what}: want {want:?} in:\n{err}");
    }
}

fn metric(base: &str, name: &str) -> Option<f64> {
    let body = http()
        .get(format!("{base}/metrics"))
        .send()
        .ok()?
        .text()
        .ok()?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn config_yaml(base: &str) -> String {
    let v: serde_json::Value = http()
        .get(format!("{base}/api/v1/status/config"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["data"]["yaml"].as_str().unwrap_or_default().to_string()
}

#[test]
fn invalid_reload_keeps_the_running_config() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        "scrape_configs:\n  - job_name: first\n    static_configs: [{targets: ['127.0.0.1:1']}]\n";
    let (p, base) = start_vigil(dir.path(), good, &["--web.enable-lifecycle"]);
    let cfg = dir.path().join("vigil.yml");
    assert!(config_yaml(&base).contains("job_name: first"));
    assert_eq!(
        metric(&base, "prometheus_config_last_reload_successful"),
        Some(1.0)
    );

    // A broken file: /-/reload fails with 500 and the file:line, old config stays.
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: second\n    bogus: 1\n",
    )
    .unwrap();
    let r = http().post(format!("{base}/-/reload")).send().unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let body = r.text().unwrap();
    assert!(body.contains("vigil.yml:3"), "{body}");
    assert_eq!(
        metric(&base, "prometheus_config_last_reload_successful"),
        Some(0.0)
    );
    assert!(config_yaml(&base).contains("job_name: first"));
    let healthy = http().get(format!("{base}/-/healthy")).send().unwrap();
    assert_eq!(healthy.status().as_u16(), 200);

    // A good file again, this time through SIGHUP.
    std::fs::write(&cfg, good.replace("first", "second")).unwrap();
    p.signal(libc::SIGHUP);
    let ok = eventually(Duration::from_secs(10), || {
        (metric(&base, "prometheus_config_last_reload_successful") == Some(1.0)).then_some(())
    });
    assert!(
        ok.is_some(),
        "SIGHUP reload did not succeed:\n{}",
        p.output()
    );
    assert!(config_yaml(&base).contains("job_name: second"));
}

#[test]
fn lifecycle_endpoints_need_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = start_vigil(dir.path(), "global:\n  scrape_interval: 1m\n", &[]);
    let r = http().post(format!("{base}/-/reload")).send().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = http().post(format!("{base}/-/quit")).send().unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[test]
fn quit_endpoint_stops_the_server_and_releases_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, base) = start_vigil(
        dir.path(),
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-lifecycle"],
    );
    let r = http().post(format!("{base}/-/quit")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let st = p
        .wait_exit(Duration::from_secs(20))
        .expect("vigil did not exit after /-/quit");
    assert!(st.success(), "{}", p.output());
    // The same data dir opens again (lock released).
    let (_p2, _base2) = start_vigil(dir.path(), "global:\n  scrape_interval: 1m\n", &[]);
}
