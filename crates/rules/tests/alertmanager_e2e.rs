//! End to end with a real Alertmanager (Debian `prometheus-alertmanager`):
//! an alerting rule fires against the rule manager fed by in-memory
//! storage, the alert arrives with its labels and rendered annotations,
//! survives an Alertmanager restart, then resolves (seen through a webhook
//! receiver). Also: a rule manager restart during `for` restores state
//! without firing early. Skips with a message when the binary is absent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigil_model::storage::{Appendable, Queryable};
use vigil_model::{Labels, Sample};
use vigil_promql::engine::{Engine, EngineOptions};
use vigil_rules::manager::{RuleManager, RuleManagerOptions, RuleSettings};
use vigil_rules::memstore::MemStorage;
use vigil_rules::notifier::Notifier;

const AM_BIN: &str = "prometheus-alertmanager";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct Alertmanager {
    child: Child,
}

impl Alertmanager {
    fn start(port: u16, dir: &Path, webhook_port: u16) -> Alertmanager {
        let cfg = dir.join("am.yml");
        std::fs::write(
            &cfg,
            format!(
                "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{webhook_port}/hook\n    send_resolved: true\n"
            ),
        )
        .expect("write am config");
        let data = dir.join(format!("data-{}", now_ms()));
        std::fs::create_dir_all(&data).expect("data dir");
        let child = Command::new(AM_BIN)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg(format!("--storage.path={}", data.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::blocking::get(format!("http://127.0.0.1:{port}/-/ready")) {
                if r.status().is_success() {
                    return am;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("alertmanager did not become ready");
    }

    fn stop(mut self) {
        // By PID: SIGTERM, then reap.
        kill_pid(self.child.id());
        let _ = self.child.wait();
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill_pid(pid: u32) {
    let _ = Command::new("kill").arg(pid.to_string()).status();
}

/// A webhook receiver collecting request bodies.
fn webhook() -> (u16, Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
    let port = l.local_addr().expect("addr").port();
    l.set_nonblocking(true).expect("nonblocking");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (b, s) = (bodies.clone(), stop.clone());
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((conn, _)) => handle(conn, &b),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, bodies, stop)
}

fn handle(mut c: TcpStream, bodies: &Arc<Mutex<Vec<String>>>) {
    let _ = c.set_nonblocking(false);
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = match c.read(&mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&tmp[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(h) = text.find("\r\n\r\n") {
            let len = text[..h]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= h + 4 + len {
                let body = String::from_utf8_lossy(&buf[h + 4..h + 4 + len]).to_string();
                bodies.lock().expect("lock").push(body);
                break;
            }
        }
    }
    let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

fn am_alerts(port: u16) -> Vec<serde_json::Value> {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/api/v2/alerts"))
        .ok()
        .and_then(|r| r.text().ok())
        .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
        .unwrap_or_default()
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

/// Appends `up{job="e2e",instance="db1"}` at wall-clock time every 200ms
/// with the value in `value` (shared so the test can flip it).
fn feeder(store: MemStorage, value: Arc<Mutex<f64>>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let l = Labels::from_pairs(&[("__name__", "up"), ("job", "e2e"), ("instance", "db1")]);
        while !stop.load(Ordering::Relaxed) {
            let v = *value.lock().expect("lock");
            store.add(l.clone(), &[Sample::new(now_ms(), v)]);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

fn write_rules(dir: &Path, for_: &str) -> PathBuf {
    let f = dir.join("rules.yml");
    std::fs::write(
        &f,
        format!(
            "groups:\n- name: e2e\n  interval: 500ms\n  rules:\n  - alert: InstanceDown\n    expr: up{{job=\"e2e\"}} == 0\n    for: {for_}\n    labels:\n      severity: page\n    annotations:\n      summary: 'Instance {{{{ $labels.instance }}}} of {{{{ $labels.job }}}} is down'\n      value: '{{{{ $value | printf \"%.1f\" }}}}'\n      cluster: '{{{{ $externalLabels.cluster }}}}'\n"
        ),
    )
    .expect("write rules");
    f
}

fn manager(
    store: &MemStorage,
    notify: Option<vigil_rules::group::NotifyFn>,
    resend: Duration,
    grace: Duration,
) -> RuleManager {
    RuleManager::new(RuleManagerOptions {
        engine: Arc::new(Engine::new(EngineOptions::default())),
        queryable: Arc::new(store.clone()) as Arc<dyn Queryable>,
        appendable: Arc::new(store.clone()) as Arc<dyn Appendable>,
        notify,
        external_url: "http://vigil.example:9090".into(),
        resend_delay: resend,
        outage_tolerance: Duration::from_secs(3600),
        for_grace_period: grace,
    })
}

#[test]
fn alert_reaches_real_alertmanager_survives_restart_and_resolves() {
    if Command::new(AM_BIN).arg("--version").output().is_err() {
        println!("skipping: {AM_BIN} not installed (apt-get install prometheus-alertmanager)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook_port, bodies, hook_stop) = webhook();
    let am_port = free_port();
    let am = Alertmanager::start(am_port, dir.path(), hook_port);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let notifier = Arc::new(Notifier::new(100));
    let prom_cfg = vigil_config::Config::from_yaml(
        &format!(
            "global:\n  external_labels:\n    cluster: eu1\nalerting:\n  alertmanagers:\n  - timeout: 2s\n    static_configs:\n    - targets: ['127.0.0.1:{am_port}']\n"
        ),
        dir.path().join("prometheus.yml"),
    )
    .expect("config");
    notifier.apply_config(&prom_cfg).expect("notifier config");
    assert_eq!(
        notifier.alertmanagers().0,
        vec![format!("http://127.0.0.1:{am_port}/api/v2/alerts")]
    );
    rt.spawn(notifier.clone().run());

    let store = MemStorage::new();
    let value = Arc::new(Mutex::new(0.0));
    let feed_stop = Arc::new(AtomicBool::new(false));
    feeder(store.clone(), value.clone(), feed_stop.clone());
    let rules = write_rules(dir.path(), "1s");
    let m = manager(
        &store,
        Some(notifier.notify_fn("http://vigil.example:9090")),
        Duration::from_secs(1),
        Duration::from_secs(600),
    );
    m.update(
        &[rules],
        &RuleSettings {
            evaluation_interval: Duration::from_secs(1),
            query_offset: Duration::ZERO,
            external_labels: Labels::from_pairs(&[("cluster", "eu1")]),
        },
    )
    .expect("rules load");

    let check = |a: &serde_json::Value| {
        assert_eq!(
            a["labels"],
            serde_json::json!({"alertname": "InstanceDown", "instance": "db1", "job": "e2e", "severity": "page", "cluster": "eu1"})
        );
        assert_eq!(a["annotations"]["summary"], "Instance db1 of e2e is down");
        assert_eq!(a["annotations"]["value"], "0.0");
        assert_eq!(a["annotations"]["cluster"], "eu1");
        assert_eq!(
            a["generatorURL"],
            "http://vigil.example:9090/graph?g0.expr=up%7Bjob%3D%22e2e%22%7D+%3D%3D+0&g0.tab=1"
        );
        assert_eq!(a["status"]["state"], "active");
    };
    let first = wait_for("alert in Alertmanager", 30, || {
        am_alerts(am_port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "InstanceDown")
    });
    check(&first);
    let api = m.alerts();
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].state, "firing");

    // Alertmanager goes away and comes back empty: the resend brings the
    // firing alert back.
    am.stop();
    std::thread::sleep(Duration::from_secs(2));
    let am = Alertmanager::start(am_port, dir.path(), hook_port);
    let again = wait_for("alert re-sent after restart", 30, || {
        am_alerts(am_port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "InstanceDown")
    });
    check(&again);
    let errors: u64 = notifier
        .metrics
        .per_alertmanager()
        .iter()
        .map(|(_, m)| m.errors_total.load(Ordering::Relaxed))
        .sum();
    assert!(
        errors >= 1,
        "sends while it was down failed and were counted"
    );

    // Resolve: Alertmanager notifies the receiver with status resolved.
    *value.lock().expect("lock") = 1.0;
    wait_for("resolved notification", 40, || {
        bodies
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            .find(|v| {
                v["status"] == "resolved" && v["alerts"][0]["labels"]["alertname"] == "InstanceDown"
            })
    });
    wait_for("alert gone from the active list", 20, || {
        am_alerts(am_port)
            .iter()
            .all(|a| a["labels"]["alertname"] != "InstanceDown")
            .then_some(())
    });
    assert!(m.alerts().is_empty());
    let sent: u64 = notifier
        .metrics
        .per_alertmanager()
        .iter()
        .map(|(_, m)| m.sent_total.load(Ordering::Relaxed))
        .sum();
    assert!(sent >= 3);

    m.stop();
    notifier.stop(false);
    feed_stop.store(true, Ordering::Relaxed);
    hook_stop.store(true, Ordering::Relaxed);
    am.stop();
}

#[test]
fn restart_during_for_restores_state_without_early_firing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MemStorage::new();
    let value = Arc::new(Mutex::new(0.0));
    let feed_stop = Arc::new(AtomicBool::new(false));
    feeder(store.clone(), value, feed_stop.clone());
    let rules = write_rules(dir.path(), "12s");
    let settings = RuleSettings {
        evaluation_interval: Duration::from_secs(1),
        query_offset: Duration::ZERO,
        external_labels: Labels::empty(),
    };
    let grace = Duration::from_secs(1);
    let m1 = manager(&store, None, Duration::from_secs(1), grace);
    m1.update(std::slice::from_ref(&rules), &settings)
        .expect("load");
    let first = wait_for("pending alert", 20, || {
        m1.alerts().into_iter().find(|a| a.state == "pending")
    });
    let active_at = first.active_at.expect("active_at");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(m1.alerts()[0].state, "pending");
    m1.stop();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let m2 = manager(&store, None, Duration::from_secs(1), grace);
    m2.update(std::slice::from_ref(&rules), &settings)
        .expect("load");
    // Prometheus restores after the group's second evaluation.
    wait_for("restore after the second evaluation", 20, || {
        let m = m2.group_metrics();
        (m.first()?.1.iterations_total.load(Ordering::Relaxed) >= 3).then_some(())
    });
    let downtime = down.elapsed();
    let restored = m2.alerts().into_iter().next().expect("alert");
    let shift = restored
        .active_at
        .expect("active_at")
        .duration_since(active_at)
        .expect("later");
    // Shifted by the outage (second granularity, measured up to the
    // restore), not reset to the restart time (which would be a shift of
    // the 6s pending before the stop plus the outage).
    assert!(
        shift >= Duration::from_millis(1900) && shift <= downtime + Duration::from_secs(2),
        "shift {shift:?}, downtime {downtime:?}"
    );
    let fire_at = active_at + shift + Duration::from_secs(12);
    loop {
        let now = SystemTime::now();
        let a = m2.alerts().into_iter().next().expect("alert");
        if now + Duration::from_millis(1500) < fire_at {
            assert_eq!(
                a.state, "pending",
                "fired before its restored `for` elapsed"
            );
        }
        if a.state == "firing" {
            assert!(now + Duration::from_secs(2) >= fire_at, "fired early");
            break;
        }
        assert!(now < fire_at + Duration::from_secs(10), "never fired");
        std::thread::sleep(Duration::from_millis(200));
    }
    m2.stop();
    feed_stop.store(true, Ordering::Relaxed);
}
