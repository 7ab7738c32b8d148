//! Differential test of relabeling against the real Prometheus server:
//! Prometheus relabels a set of static targets, and `/api/v1/targets` must
//! show exactly the labels (and dropped targets) `vigil_model::relabel`
//! computes from the same discovered labels. Covers `hashmod`'s shard.
//! Skipped, with a printed reason, when the `prometheus` binary is absent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vigil_config::Config;
use vigil_model::relabel::process;
use vigil_model::{Label, Labels};

const CONFIG: &str = r#"
global:
  scrape_interval: 1h
  scrape_timeout: 1s
scrape_configs:
  - job_name: relabel-diff
    static_configs:
      - targets: ['127.0.0.1:1', '127.0.0.2:22', '127.0.0.3:333', '127.0.0.4:4444', '127.0.0.5:5', '127.0.0.6:66', '127.0.0.7:777', '127.0.0.8:8888', '127.0.0.9:9']
        labels: {env: Prod, team: Core, tier: web}
      - targets: ['127.0.0.10:10', '127.0.0.11:11', '127.0.0.12:12']
        labels: {env: dev, team: edge, tier: db}
    relabel_configs:
      - source_labels: [__address__]
        modulus: 7
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        target_label: shard
      - source_labels: [__address__, env]
        modulus: 1000
        target_label: shard1000
        action: hashmod
      - source_labels: [__address__]
        regex: '(?P<ip>[^:]+):(?P<port>\d+)'
        target_label: instance
        replacement: 'host-${ip}-$port'
      - source_labels: [env]
        target_label: env_lower
        action: lowercase
      - source_labels: [team]
        target_label: team_upper
        action: uppercase
      - regex: '(env|tier)'
        replacement: 'copy_$1'
        action: labelmap
      - source_labels: [tier]
        regex: 'db'
        action: drop
      - source_labels: [__address__]
        regex: '127\.0\.0\.(\d+):.*'
        target_label: '${1}_octet'
        replacement: 'x'
      - source_labels: [__address__]
        regex: '127\.0\.0\.(\d+):.*'
        target_label: 'octet_${1}'
        replacement: '$1x'
      - regex: 'team'
        action: labeldrop
      - source_labels: [env_lower]
        target_label: copy_env
        action: dropequal
"#;

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn labels_of(v: &serde_json::Value) -> Labels {
    Labels::new(
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| Label::new(k, v.as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// What Prometheus shows as a target's labels after relabeling.
fn public_labels(l: &Labels) -> Labels {
    let mut out: Vec<Label> = l
        .iter()
        .filter(|l| !l.name.starts_with("__"))
        .cloned()
        .collect();
    if l.get("instance").is_none() {
        if let Some(a) = l.get("__address__") {
            out.push(Label::new("instance", a));
        }
    }
    Labels::new(out)
}

#[test]
fn relabeling_matches_prometheus() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP relabeling_matches_prometheus: prometheus is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = dir.path().join("prometheus.yml");
    std::fs::write(&cfg_path, CONFIG).expect("write config");
    let cfg = Config::load(&cfg_path).expect("our loader accepts the config");
    let rules = &cfg.scrape_configs[0].relabel_configs;

    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _server = Server(child);

    let deadline = Instant::now() + Duration::from_secs(60);
    let targets = loop {
        if let Some(body) = http_get(port, "/api/v1/targets") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                let active = v["data"]["activeTargets"].as_array().map_or(0, |a| a.len());
                let dropped = v["data"]["droppedTargets"]
                    .as_array()
                    .map_or(0, |a| a.len());
                if active + dropped == 12 {
                    break v;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not list the targets in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    let mut checked = 0;
    for t in targets["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let discovered = labels_of(&t["discoveredLabels"]);
        let want = labels_of(&t["labels"]);
        let got = process(&discovered, rules)
            .unwrap_or_else(|| panic!("we dropped a target Prometheus kept: {discovered}"));
        assert_eq!(public_labels(&got), want, "discovered {discovered}");
        checked += 1;
    }
    for t in targets["data"]["droppedTargets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let discovered = labels_of(&t["discoveredLabels"]);
        assert_eq!(
            process(&discovered, rules),
            None,
            "Prometheus dropped {discovered}"
        );
        checked += 1;
    }
    assert_eq!(checked, 12);
}
