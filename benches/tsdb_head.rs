//! Head append throughput with the WAL on: existing series, 1,000 series
//! per commit (a scrape), refs cached as scrape loops do; and the same
//! without refs (label lookup per sample, as remote write does).
//!
//! Run: `cargo bench --bench tsdb_head`

mod common;

use common::thread_cpu_secs;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_model::storage::Appender;
use vigil_model::Labels;
use vigil_tsdb::head::{Head, HeadOptions};

const BATCH: usize = 1000;
const TARGETS: usize = 10;

fn series_labels(target: usize, i: usize) -> Labels {
    Labels::from_pairs(&[
        ("__name__", format!("node_metric_{}", i % 97).as_str()),
        ("instance", format!("host-{target}:9100").as_str()),
        ("job", "node"),
        ("cpu", (i % 8).to_string().as_str()),
        ("idx", i.to_string().as_str()),
    ])
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let labels: Vec<Vec<Labels>> = (0..TARGETS)
        .map(|t| (0..BATCH).map(|i| series_labels(t, i)).collect())
        .collect();
    let mut refs = vec![vec![0u64; BATCH]; TARGETS];
    let mut ts = 1_700_000_000_000i64;
    for (t, ls) in labels.iter().enumerate() {
        let mut app = head.head_appender();
        for (i, l) in ls.iter().enumerate() {
            refs[t][i] = app.append(0, l, ts, 0.0).unwrap();
        }
        app.commit().unwrap();
    }
    ts += 15_000;

    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut target = 0usize;
    g.bench_function("append_commit_1000_cached_refs", |b| {
        b.iter(|| {
            target = (target + 1) % TARGETS;
            if target == 0 {
                ts += 15_000;
            }
            let mut app = head.head_appender();
            let r = &refs[target];
            for (i, &sref) in r.iter().enumerate() {
                app.append(sref, &labels[target][i], ts, (ts / 1000 + i as i64) as f64)
                    .unwrap();
            }
            app.commit().unwrap();
        })
    });
    g.bench_function("append_commit_1000_by_labels", |b| {
        b.iter(|| {
            target = (target + 1) % TARGETS;
            if target == 0 {
                ts += 15_000;
            }
            let mut app = head.head_appender();
            for (i, l) in labels[target].iter().enumerate() {
                app.append(0, l, ts, (ts / 1000 + i as i64) as f64).unwrap();
            }
            app.commit().unwrap();
        })
    });
    g.finish();

    // The machine is shared: also report throughput per second of this
    // thread's CPU time, which other processes do not inflate.
    let n = 2000;
    let cpu0 = thread_cpu_secs();
    for k in 0..n {
        target = (target + 1) % TARGETS;
        if target == 0 {
            ts += 15_000;
        }
        let mut app = head.head_appender();
        for (i, &sref) in refs[target].iter().enumerate() {
            app.append(
                sref,
                &labels[target][i],
                ts,
                (ts / 1000 + i as i64 + k) as f64,
            )
            .unwrap();
        }
        app.commit().unwrap();
    }
    let cpu = thread_cpu_secs() - cpu0;
    eprintln!(
        "head append (cached refs, WAL on): {:.2} M samples per CPU-second",
        (n as usize * BATCH) as f64 / cpu / 1e6
    );
    eprintln!(
        "head: {} series, {} chunks created, heap ~{} B/series",
        head.num_series(),
        head.stats()
            .chunks_created
            .load(std::sync::atomic::Ordering::Relaxed),
        head.heap_bytes() / head.num_series().max(1) as usize
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
