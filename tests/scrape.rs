//! End to end: the `vigil` binary scrapes a real node_exporter and itself;
//! a target that goes down gets `up == 0`, its series go stale, and it
//! recovers.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn query(base: &str, q: &str) -> serde_json::Value {
    http()
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", q)])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn scalar_of(v: &serde_json::Value) -> Option<f64> {
    let r = v["data"]["result"].as_array()?;
    let first = r.first()?;
    first["value"][1].as_str()?.parse().ok()
}

fn result_len(v: &serde_json::Value) -> usize {
    v["data"]["result"].as_array().map_or(0, |a| a.len())
}

fn start_node_exporter(dir: &std::path::Path, port: u16) -> Option<Proc> {
    let bin = peer("prometheus-node-exporter")?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let p = Proc::spawn("node_exporter", cmd, dir);
    wait_ok(
        &format!("http://127.0.0.1:{port}/metrics"),
        Duration::from_secs(20),
        Some(&p),
    );
    Some(p)
}

#[test]
fn scrapes_node_exporter_and_marks_stale_when_it_goes_down() {
    let dir = tempfile::tempdir().unwrap();
    let ne_port = free_port();
    let Some(mut ne) = start_node_exporter(dir.path(), ne_port) else {
        return;
    };
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{ne_port}']}}]\n"
    );
    let (_vigil, base) = start_vigil(dir.path(), &cfg, &[]);

    let up = eventually(Duration::from_secs(20), || {
        (scalar_of(&query(&base, "up{job=\"node\"}")) == Some(1.0)).then_some(())
    });
    assert!(up.is_some(), "node_exporter never came up");
    let cpus = query(&base, "count(node_cpu_seconds_total{job=\"node\"})");
    assert!(scalar_of(&cpus).unwrap_or(0.0) >= 1.0, "{cpus}");
    let meta: serde_json::Value = http()
        .get(format!(
            "{base}/api/v1/metadata?metric=node_cpu_seconds_total"
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        meta["data"]["node_cpu_seconds_total"][0]["type"], "counter",
        "{meta}"
    );

    // Down: up == 0 and the exporter's series are stale (gone from instant
    // queries within an interval or two, not after the 5m lookback).
    ne.kill();
    let down = eventually(Duration::from_secs(20), || {
        let up0 = scalar_of(&query(&base, "up{job=\"node\"}")) == Some(0.0);
        let gone = result_len(&query(&base, "node_cpu_seconds_total")) == 0;
        (up0 && gone).then_some(())
    });
    assert!(down.is_some(), "target did not go down/stale");
    let targets: serde_json::Value = http()
        .get(format!("{base}/api/v1/targets?state=active"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let t = &targets["data"]["activeTargets"][0];
    assert_eq!(t["health"], "down", "{targets}");
    assert!(
        !t["lastError"].as_str().unwrap_or("").is_empty(),
        "{targets}"
    );

    // Back up on the same port: it recovers.
    let Some(_ne2) = start_node_exporter(dir.path(), ne_port) else {
        return;
    };
    let back = eventually(Duration::from_secs(20), || {
        let up1 = scalar_of(&query(&base, "up{job=\"node\"}")) == Some(1.0);
        let series = result_len(&query(&base, "node_cpu_seconds_total")) > 0;
        (up1 && series).then_some(())
    });
    assert!(back.is_some(), "target did not recover");
}

#[test]
fn default_config_scrapes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No --config.file and no ./prometheus.yml in the working dir: the
    // embedded default config is used, its self target on our port.
    let mut cmd = Command::new(vigil_bin());
    cmd.current_dir(dir.path())
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let p = Proc::spawn("vigil", cmd, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(
        &format!("{base}/-/ready"),
        Duration::from_secs(60),
        Some(&p),
    );
    assert!(
        dir.path().join("data").is_dir(),
        "data dir not created in ./data"
    );
    // The default interval is 15s; the first scrape happens within it.
    let up = eventually(Duration::from_secs(40), || {
        (scalar_of(&query(&base, "up{job=\"vigil\"}")) == Some(1.0)).then_some(())
    });
    assert!(up.is_some(), "self-scrape never succeeded:\n{}", p.output());
    let series = query(&base, "prometheus_tsdb_head_series{job=\"vigil\"}");
    assert_eq!(result_len(&series), 1, "{series}");
}
