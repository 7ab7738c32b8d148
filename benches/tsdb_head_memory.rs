//! Resident memory per active series, in the shape of the load benchmark
//! (`../shared/bench`): 50 targets x 2,000 node-exporter-like series,
//! scraped every 5 s for 6 minutes (72 samples each), WAL on. Prints RSS
//! growth per series (the figure to compare with Prometheus's 2,835 B).
//! Run: cargo bench --bench tsdb_head_memory

mod common;

use vigil_model::storage::Appender;
use vigil_model::Labels;
use vigil_tsdb::head::{Head, HeadOptions};

const TARGETS: usize = 50;
const PER_TARGET: usize = 2000;
const SCRAPES: i64 = 72;

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn target_labels(t: usize) -> Vec<Labels> {
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    (0..PER_TARGET)
        .map(|i| {
            let inst = format!("127.0.0.1:{}", 19100 + t);
            let mut pairs: Vec<(String, String)> =
                vec![("instance".into(), inst), ("job".into(), "node".into())];
            match i {
                0..=63 => {
                    pairs.push(("__name__".into(), "node_cpu_seconds_total".into()));
                    pairs.push(("cpu".into(), (i / 8).to_string()));
                    pairs.push(("mode".into(), modes[i % 8].into()));
                }
                64..=199 => {
                    pairs.push((
                        "__name__".into(),
                        "http_request_duration_seconds_bucket".into(),
                    ));
                    pairs.push(("handler".into(), format!("/api/h{}", i % 6)));
                    pairs.push(("le".into(), format!("{}", (i % 20) as f64 * 0.05)));
                }
                _ => {
                    pairs.push(("__name__".into(), format!("node_filler_metric_{}", i % 300)));
                    pairs.push(("device".into(), format!("dev{}", i / 300)));
                }
            }
            Labels::from_pairs(&pairs)
        })
        .collect()
}

fn main() {
    // Cargo passes --bench; nothing to parse.
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<Vec<Labels>> = (0..TARGETS).map(target_labels).collect();
    let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let before = rss_bytes();
    let mut refs = vec![vec![0u64; PER_TARGET]; TARGETS];
    let t0 = 1_700_000_000_000i64;
    let mut seed = 7u64;
    for k in 0..SCRAPES {
        for (t, ls) in targets.iter().enumerate() {
            let mut app = head.head_appender();
            for (i, l) in ls.iter().enumerate() {
                let v = common::scrape_value(&mut seed, k, i);
                refs[t][i] = app
                    .append(refs[t][i], l, t0 + k * 5000 + t as i64, v)
                    .unwrap();
            }
            app.commit().unwrap();
        }
    }
    // The label sets the "scrapers" hold were allocated before `before`.
    let after = rss_bytes();
    let n = head.num_series() as usize;
    eprintln!(
        "head memory: {n} series x {SCRAPES} samples, RSS growth {:.0} B/series, head heap estimate {:.0} B/series",
        (after - before) as f64 / n as f64,
        head.heap_bytes() as f64 / n as f64
    );
    drop(targets);
    head.close().unwrap();
    drop(head);
    // Restart: replay chunks_head and the WAL.
    let started = std::time::Instant::now();
    let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let took = started.elapsed();
    let samples = head
        .stats()
        .samples_appended
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "head replay: {} series, {} samples in {:.2?} ({:.1} M samples/s)",
        head.num_series(),
        n as i64 * SCRAPES,
        took,
        (n as f64 * SCRAPES as f64) / took.as_secs_f64() / 1e6
    );
    let _ = samples;
}
