//! A data directory written by a real Prometheus (Debian `prometheus` 2.42:
//! blocks, `chunks_head/` and WAL, stopped cleanly) opens in Vigil with every
//! sample present: our dump of the DB equals `promtool tsdb dump` line for
//! line. Skips with a message when prometheus or promtool is absent.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_model::storage::Queryable;
use vigil_model::{MatchOp, Matcher};
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::tools::format_dump_line;

fn have(bin: &str) -> bool {
    if Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        return true;
    }
    eprintln!("skipping: {bin} not installed (apt-get install prometheus)");
    false
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn block_dirs(dir: &Path) -> usize {
    vigil_tsdb::block::list_block_dirs(dir)
        .map(|v| v.len())
        .unwrap_or(0)
}

/// Runs Prometheus scraping itself every second with 10s blocks until it
/// has written a few blocks, then stops it with SIGTERM.
fn run_prometheus(data: &Path) {
    let port = free_port();
    let cfg = data.parent().unwrap().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(data.parent().unwrap().join("prometheus.log")).unwrap();
    let mut child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--storage.tsdb.min-block-duration=10s",
            "--storage.tsdb.max-block-duration=10s",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_secs(1));
        if start.elapsed() > Duration::from_secs(28) && block_dirs(data) >= 2 {
            break;
        }
    }
    // SAFETY: signalling the child we started, by its PID.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}

#[test]
fn prometheus_data_dir_opens_with_every_sample() {
    if !have("prometheus") || !have("promtool") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    run_prometheus(&data);
    assert!(block_dirs(&data) >= 2, "Prometheus wrote no blocks");
    assert!(data.join("wal").exists());

    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = String::from_utf8(out.stdout).unwrap();
    assert!(
        theirs.lines().count() > 1000,
        "too few samples: {}",
        theirs.lines().count()
    );

    // Everything Prometheus wrote passes our verifier.
    let report = vigil_tsdb::tools::verify(&data).unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(
        report.blocks.iter().all(|b| b.warnings.is_empty()),
        "{report}"
    );
    assert!(report.head.wal_records > 0, "{report}");

    let db = Db::open(&data, DbOptions::default()).unwrap();
    assert!(db.blocks().len() >= 2);
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut ours = String::new();
    let all = [Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()];
    for s in q.select(None, &all).unwrap() {
        let mut it = s.iter();
        while let Some(x) = it.next().unwrap() {
            ours.push_str(&format_dump_line(s.labels(), x));
            ours.push('\n');
        }
    }
    let (o, t): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    if o != t {
        let first = o
            .iter()
            .zip(&t)
            .position(|(a, b)| a != b)
            .unwrap_or(o.len().min(t.len()));
        panic!(
            "dumps differ ({} vs {} lines) at line {first}:\n ours:   {:?}\n theirs: {:?}",
            o.len(),
            t.len(),
            o.get(first),
            t.get(first)
        );
    }
    db.close().unwrap();
}
