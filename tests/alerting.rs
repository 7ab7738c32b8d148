//! End to end: the `vigil` binary loads rule files from its config, writes
//! recording-rule series, fires an alert that a real Alertmanager receives
//! with rendered annotations, and serves `/api/v1/rules` and `/api/v1/alerts`;
//! `vigil check rules` and `vigil test rules` agree with promtool.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const RULES: &str = r#"groups:
  - name: self
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: VigilIsUp
        expr: up{job="vigil"} == 1
        for: 0s
        labels:
          severity: info
        annotations:
          summary: "Instance {{ $labels.instance }} of {{ $labels.job }} has value {{ $value }}"
"#;

fn get_json(url: &str) -> serde_json::Value {
    http().get(url).send().unwrap().json().unwrap()
}

#[test]
fn alert_reaches_a_real_alertmanager() {
    let Some(am_bin) = peer("prometheus-alertmanager") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let am_port = free_port();
    let am_cfg = dir.path().join("am.yml");
    std::fs::write(
        &am_cfg,
        "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let mut cmd = Command::new(am_bin);
    cmd.arg(format!("--config.file={}", am_cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am").display()
        ));
    let am = Proc::spawn("alertmanager", cmd, dir.path());
    let am_url = format!("http://127.0.0.1:{am_port}");
    wait_ok(
        &format!("{am_url}/-/ready"),
        Duration::from_secs(30),
        Some(&am),
    );

    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    // The self-scrape target is filled in once the port is known.
    let port = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    site: test\n\
         rule_files:\n  - rules.yml\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
         scrape_configs:\n  - job_name: vigil\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    );
    let cfg_path = dir.path().join("vigil.yml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut cmd = Command::new(vigil_bin());
    cmd.arg(format!("--config.file={}", cfg_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--rules.alert.resend-delay=1s");
    let vigil = Proc::spawn("vigil", cmd, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(
        &format!("{base}/-/ready"),
        Duration::from_secs(60),
        Some(&vigil),
    );

    // The alert arrives at Alertmanager, labelled and annotated.
    let got = eventually(Duration::from_secs(30), || {
        let alerts = get_json(&format!("{am_url}/api/v2/alerts"));
        alerts
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "VigilIsUp")
            .cloned()
    });
    let alert = got.unwrap_or_else(|| panic!("no alert in Alertmanager\n{}", vigil.output()));
    assert_eq!(alert["labels"]["severity"], "info");
    assert_eq!(alert["labels"]["site"], "test", "external labels are added");
    assert_eq!(
        alert["annotations"]["summary"],
        format!("Instance 127.0.0.1:{port} of vigil has value 1")
    );
    let gen = alert["generatorURL"].as_str().unwrap_or("");
    assert!(gen.contains("/graph?g0.expr="), "{gen}");

    // The recording rule wrote its series.
    let rec = get_json(&format!("{base}/api/v1/query?query=job:up:sum"));
    assert_eq!(rec["data"]["result"][0]["metric"]["job"], "vigil", "{rec}");
    assert_eq!(rec["data"]["result"][0]["value"][1], "1", "{rec}");

    // The API shows the rules and the firing alert, and ALERTS exists.
    let rules = get_json(&format!("{base}/api/v1/rules"));
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "self", "{rules}");
    assert_eq!(group["rules"].as_array().map(|r| r.len()), Some(2));
    let alerts = get_json(&format!("{base}/api/v1/alerts"));
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing", "{alerts}");
    let ams = get_json(&format!("{base}/api/v1/alertmanagers"));
    let active = ams["data"]["activeAlertmanagers"][0]["url"]
        .as_str()
        .unwrap_or("");
    assert!(active.contains(&am_port.to_string()), "{ams}");
    // As in Prometheus, the notification is queued before the evaluation's
    // samples are committed: ALERTS may show up a moment later.
    let series = eventually(Duration::from_secs(10), || {
        let s = get_json(&format!("{base}/api/v1/query?query=ALERTS"));
        (s["data"]["result"][0]["metric"]["alertstate"] == "firing").then_some(s)
    });
    assert!(series.is_some(), "ALERTS series never appeared");
    // Rule metrics are exported under Prometheus's names.
    let metrics = http()
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("prometheus_rule_evaluations_total{rule_group="),
        "rule metrics missing"
    );
    assert!(
        metrics.contains("prometheus_notifications_sent_total{alertmanager="),
        "notifier metrics missing"
    );
}

#[test]
fn check_rules_and_test_rules_agree_with_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - record: 'not a metric name'\n        expr: up\n",
    )
    .unwrap();
    let tests = dir.path().join("tests.yml");
    std::fs::write(
        &tests,
        r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="vigil", instance="a:1"}'
        values: '1 1 1'
    promql_expr_test:
      - expr: job:up:sum
        eval_time: 2m
        exp_samples:
          - labels: 'job:up:sum{job="vigil"}'
            value: 1
    alert_rule_test:
      - eval_time: 1m
        alertname: VigilIsUp
        exp_alerts:
          - exp_labels: {severity: info, instance: "a:1", job: vigil}
            exp_annotations:
              summary: "Instance a:1 of vigil has value 1"
  - interval: 1m
    input_series:
      - series: 'up{job="vigil", instance="a:1"}'
        values: '1'
    promql_expr_test:
      - expr: job:up:sum
        eval_time: 0m
        exp_samples:
          - labels: 'job:up:sum{job="vigil"}'
            value: 2
"#,
    )
    .unwrap();
    let code = |bin: &std::path::Path, args: &[&str]| {
        Command::new(bin)
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    let vigil = vigil_bin();
    assert_eq!(code(&vigil, &["check", "rules", "rules.yml"]), Some(0));
    assert_eq!(code(&vigil, &["check", "rules", "bad.yml"]), Some(1));
    // The second test case expects 2 where the answer is 1: it fails.
    assert_eq!(code(&vigil, &["test", "rules", "tests.yml"]), Some(1));
    if let Some(promtool) = peer("promtool") {
        assert_eq!(code(&promtool, &["check", "rules", "rules.yml"]), Some(0));
        assert_eq!(code(&promtool, &["check", "rules", "bad.yml"]), Some(1));
        assert_eq!(code(&promtool, &["test", "rules", "tests.yml"]), Some(1));
    }
}
