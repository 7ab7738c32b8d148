//! End to end: `vigil promql --data DIR` and `vigil tsdb dump` read a data
//! directory read-only, next to a server writing it; `vigil tsdb dump`
//! includes the head (WAL, `chunks_head/`) exactly as `promtool tsdb dump`
//! does.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vigil_model::storage::Appendable;
use vigil_model::Labels;

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run command")
}

fn ok_stdout(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}): {}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A server scraping itself every second, with its data in `dir/data`.
fn self_scraping_vigil(dir: &Path) -> (Proc, String, u16) {
    let port = free_port();
    let cfg = dir.join("vigil.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(vigil_bin());
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let p = Proc::spawn("vigil", cmd, dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(
        &format!("{base}/-/ready"),
        Duration::from_secs(60),
        Some(&p),
    );
    (p, base, port)
}

fn server_query(base: &str, expr: &str, time: &str) -> serde_json::Value {
    let v: serde_json::Value = http()
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", expr), ("time", time)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["status"], "success", "{v}");
    v["data"].clone()
}

fn promql_data(data: &Path, args: &[&str]) -> Output {
    run(Command::new(vigil_bin())
        .arg("promql")
        .arg("--data")
        .arg(data)
        .args(args))
}

#[test]
fn promql_data_queries_a_dir_a_running_server_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (p, base, port) = self_scraping_vigil(dir.path());
    let data = dir.path().join("data");
    // Several scrapes in the WAL.
    let scraped = eventually(Duration::from_secs(30), || {
        let d = server_query(&base, "count_over_time(up[1m])", &format!("{:.3}", now_s()));
        let n: f64 = d["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= 8.0).then_some(())
    });
    assert!(
        scraped.is_some(),
        "server did not scrape itself: {}",
        p.output()
    );

    // Table, at "now": the self target is up.
    let out = promql_data(&data, &["--format", "table", "up"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = format!("up{{instance=\"127.0.0.1:{port}\", job=\"self\"}}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&row) && l.trim_end().ends_with(" 1")),
        "{stdout}"
    );

    // JSON at a time whose samples are all committed: the same answer as
    // the server's own API.
    let t = format!("{:.3}", now_s() - 2.0);
    for expr in [
        "count_over_time(up[1m])",
        "sum by (job) (scrape_samples_scraped)",
        "max_over_time(scrape_duration_seconds[30s]) > 0",
    ] {
        let out = promql_data(&data, &["--format", "json", "--time", &t, expr]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let theirs = server_query(&base, expr, &t);
        assert_eq!(ours, theirs, "{expr} at {t}");
        assert!(
            !ours["result"].as_array().unwrap().is_empty(),
            "{expr}: {ours}"
        );
    }

    // CSV of a range query: one row per step.
    let end = now_s() - 2.0;
    let out = promql_data(
        &data,
        &[
            "--format",
            "csv",
            "--start",
            &format!("{:.3}", end - 3.0),
            "--end",
            &format!("{end:.3}"),
            "--step",
            "1s",
            "up",
        ],
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{csv}");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("series,timestamp,value"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(
        rows.iter().all(|r| r.ends_with(",1") && r.contains("job=")),
        "{csv}"
    );

    // A bad query is a query error (exit 1), a missing dir a connection one.
    let out = promql_data(&data, &["sum(up"]);
    assert_eq!(out.status.code(), Some(1));
    let out = promql_data(&dir.path().join("nope"), &["up"]);
    assert_eq!(out.status.code(), Some(2));

    // The server never noticed: it still ingests and owns its lock.
    let before = server_query(
        &base,
        "count_over_time(up[10m])",
        &format!("{:.3}", now_s()),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let after = server_query(
        &base,
        "count_over_time(up[10m])",
        &format!("{:.3}", now_s()),
    );
    let n = |d: &serde_json::Value| -> f64 {
        d["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(n(&after) > n(&before), "{before} -> {after}");
    assert!(!data.join("quarantine").exists());
}

/// Against a running Prometheus with 10s blocks, so it compacts, truncates
/// its head and checkpoints its WAL while `vigil promql --data` reads: every
/// answer for a time in the past equals Prometheus's own.
#[test]
fn promql_data_queries_a_dir_a_running_prometheus_writes() {
    let Some(prometheus) = peer("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--storage.tsdb.min-block-duration=10s",
            "--storage.tsdb.max-block-duration=10s",
        ]);
    let p = Proc::spawn("prometheus", cmd, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(
        &format!("{base}/-/ready"),
        Duration::from_secs(60),
        Some(&p),
    );
    let started = std::time::Instant::now();
    let mut rounds = 0;
    let mut saw_block = false;
    while started.elapsed() < Duration::from_secs(40) && (rounds < 8 || !saw_block) {
        std::thread::sleep(Duration::from_millis(1500));
        let t = format!("{:.3}", now_s() - 2.0);
        for expr in [
            "count_over_time(up[5m])",
            "sum(prometheus_tsdb_head_series) >= 0",
        ] {
            let out = promql_data(&data, &["--format", "json", "--time", &t, expr]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let theirs = server_query(&base, expr, &t);
            assert_eq!(ours, theirs, "{expr} at {t} (round {rounds})");
        }
        saw_block |= std::fs::read_dir(&data)
            .unwrap()
            .flatten()
            .any(|e| e.path().join("meta.json").exists());
        rounds += 1;
    }
    assert!(
        saw_block,
        "Prometheus compacted while we read: {}",
        p.output()
    );
    assert!(
        !p.output().contains("level=error"),
        "Prometheus logged errors: {}",
        p.output()
    );
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// `vigil tsdb dump` and `promtool tsdb dump` of the same dir (each on its
/// own copy: promtool 2.42 writes to the WAL it opens), sorted.
fn both_dumps(promtool: &Path, data: &Path, tmp: &Path) -> (Vec<String>, Vec<String>) {
    let a = tmp.join("for-vigil");
    let b = tmp.join("for-promtool");
    copy_dir(data, &a);
    copy_dir(data, &b);
    let ours = ok_stdout(Command::new(vigil_bin()).args(["tsdb", "dump"]).arg(&a));
    let theirs = ok_stdout(Command::new(promtool).args(["tsdb", "dump"]).arg(&b));
    (sorted_lines(&ours), sorted_lines(&theirs))
}

#[test]
fn tsdb_dump_includes_the_head_like_promtool() {
    let Some(promtool) = peer("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    const H: i64 = 3_600_000;
    let series = |i: usize| {
        Labels::from_pairs(&[
            ("__name__", "dump_metric"),
            ("i", &i.to_string()),
            ("job", "d"),
        ])
    };
    // 6h at 15s: compaction persists [0, 2h) and [2h, 4h); the head keeps
    // the rest, in full chunks in chunks_head/ plus open chunks in the WAL.
    // The WAL is left as a crash would leave it (no close).
    let mut n = 0;
    {
        let mut o = vigil_tsdb::db::DbOptions::default();
        o.head.wal_segment_size = 256 * 1024;
        let db = vigil_tsdb::db::Db::open(&data, o).unwrap();
        let mut app = db.appender();
        let mut t = 0;
        while t < 6 * H {
            for i in 0..7 {
                let v = if i == 3 {
                    f64::NAN
                } else {
                    (t / 15_000) as f64 * 0.5 - i as f64
                };
                app.append(0, &series(i), t, v).unwrap();
                n += 1;
            }
            app.commit().unwrap();
            t += 15_000;
            if t == 5 * H + H / 2 {
                db.compact().unwrap();
            }
        }
        assert_eq!(db.blocks().len(), 2);
        std::mem::forget(db);
    }
    let chunk_files = std::fs::read_dir(data.join("chunks_head")).unwrap().count();
    assert!(chunk_files > 0, "the head has memory-mapped chunks");
    let (ours, theirs) = both_dumps(&promtool, &data, dir.path());
    assert_eq!(ours.len(), n, "every sample, blocks and head");
    assert!(ours == theirs, "vigil tsdb dump differs from promtool's");
    assert!(ours.iter().any(|l| l.contains(" NaN ")));

    // And a dir written by a running server: the server's own WAL.
    let srv = dir.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    let (mut p, base, _) = self_scraping_vigil(&srv);
    let scraped = eventually(Duration::from_secs(30), || {
        let d = server_query(&base, "count_over_time(up[1m])", &format!("{:.3}", now_s()));
        let n: f64 = d["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= 3.0).then_some(())
    });
    assert!(scraped.is_some());
    // While it runs: `vigil tsdb dump` reads the live dir (read-only).
    let live = ok_stdout(
        Command::new(vigil_bin())
            .args(["tsdb", "dump", "--match", "up"])
            .arg(srv.join("data")),
    );
    assert!(live.lines().count() >= 3, "{live}");
    p.stop(Duration::from_secs(10));
    let tmp = dir.path().join("srv-copies");
    let (ours, theirs) = both_dumps(&promtool, &srv.join("data"), &tmp);
    assert!(ours.len() > 100, "{}", ours.len());
    assert!(
        ours == theirs,
        "vigil tsdb dump differs from promtool's on a server's dir"
    );
}
