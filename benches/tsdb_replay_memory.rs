//! Peak memory of WAL replay against the steady state of the same head
//! (issue 11: replay peak RSS at most 1.3x steady state). Two processes, so
//! one's peak cannot hide in the other's: the first ingests
//! `VIGIL_REPLAY_SERIES` (default 200,000) series x 240 samples (an hour at
//! 15 s, WAL on, 2,000 series per commit as a scrape) and reports its RSS
//! once the head is built (label sets of the "scrapers" freed); the second
//! opens the same directory and reports its peak RSS (VmHWM) during replay
//! and its RSS after. The data dir goes to `VIGIL_BENCH_DIR` or the system
//! temp dir.
//!
//! Run: cargo bench --bench tsdb_replay_memory

mod common;

use std::path::Path;
use std::process::Command;

use vigil_model::storage::Appender;
use vigil_model::Labels;
use vigil_tsdb::head::{Head, HeadOptions};

const PER_TARGET: usize = 2000;
const SCRAPES: i64 = 240;
const PHASE_ENV: &str = "VIGIL_REPLAY_PHASE";

fn status_kb(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn labels(t: usize, i: usize) -> Labels {
    let inst = format!("10.0.{}.{}:9100", t / 250, t % 250);
    let name = format!("node_metric_{}", i % 150);
    Labels::from_pairs(&[
        ("__name__", name.as_str()),
        ("instance", inst.as_str()),
        ("job", "node"),
        ("idx", (i / 150).to_string().as_str()),
    ])
}

fn ingest(dir: &Path, series: usize) {
    let head = Head::open(dir, HeadOptions::default()).unwrap();
    let targets = series / PER_TARGET;
    let mut all: Vec<Vec<Labels>> = (0..targets)
        .map(|t| (0..PER_TARGET).map(|i| labels(t, i)).collect())
        .collect();
    let mut refs = vec![vec![0u64; PER_TARGET]; targets];
    let t0 = 1_700_000_000_000i64;
    let mut seed = 7u64;
    for k in 0..SCRAPES {
        for (t, ls) in all.iter().enumerate() {
            let mut app = head.head_appender();
            for (i, l) in ls.iter().enumerate() {
                let v = common::scrape_value(&mut seed, k, i);
                refs[t][i] = app.append(refs[t][i], l, t0 + k * 15_000, v).unwrap();
            }
            app.commit().unwrap();
        }
    }
    all.clear();
    all.shrink_to_fit();
    drop(refs);
    println!(
        "steady {} {} {}",
        head.num_series(),
        status_kb("VmRSS"),
        status_kb("RssAnon")
    );
    head.close().unwrap();
}

fn replay(dir: &Path) {
    let started = std::time::Instant::now();
    let head = Head::open(dir, HeadOptions::default()).unwrap();
    let took = started.elapsed();
    println!(
        "replay {} {} {} {} {:.3}",
        head.num_series(),
        status_kb("VmHWM"),
        status_kb("VmRSS"),
        status_kb("RssAnon"),
        took.as_secs_f64()
    );
}

fn run_phase(phase: &str, dir: &Path, series: usize) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .env(PHASE_ENV, phase)
        .env("VIGIL_REPLAY_DIR", dir)
        .env("VIGIL_REPLAY_SERIES", series.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{phase} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(phase))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn main() {
    let series: usize = std::env::var("VIGIL_REPLAY_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    if let Ok(phase) = std::env::var(PHASE_ENV) {
        let dir = std::path::PathBuf::from(std::env::var_os("VIGIL_REPLAY_DIR").unwrap());
        match phase.as_str() {
            "steady" => ingest(&dir, series),
            _ => replay(&dir),
        }
        return;
    }
    let dir = match std::env::var_os("VIGIL_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .unwrap();
    let s = run_phase("steady", dir.path(), series);
    let r = run_phase("replay", dir.path(), series);
    let kb = |v: &[String], i: usize| v.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    let mib = |k: f64| k / 1024.0;
    eprintln!(
        "ingested {} series x {SCRAPES} samples: steady RSS {:.0} MiB (anon {:.0} MiB)",
        s.get(1).map_or("?", |x| x.as_str()),
        mib(kb(&s, 2)),
        mib(kb(&s, 3))
    );
    eprintln!(
        "replayed {} series in {:.2} s: peak RSS {:.0} MiB, RSS after {:.0} MiB (anon {:.0} MiB); peak / steady = {:.2}",
        r.get(1).map_or("?", |x| x.as_str()),
        kb(&r, 5),
        mib(kb(&r, 2)),
        mib(kb(&r, 3)),
        mib(kb(&r, 4)),
        kb(&r, 2) / kb(&s, 2).max(1.0)
    );
}
