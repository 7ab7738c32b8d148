//! The cost of `--storage.tsdb.wal-fsync-interval`: head appends (1,000
//! existing series per commit, WAL on, as a scrape) while another thread
//! calls `Head::sync_wal` every 0 (never), 1 s or 100 ms, as the binary's
//! timer does. The data dir is `VIGIL_BENCH_DIR` (default: the system temp
//! dir), which should be on the disk whose fsync cost matters.
//!
//! Besides criterion's time per commit, prints for each setting the
//! process CPU time (appender and syncer) per million samples and the
//! number of fsyncs done, over a fixed run of commits.
//!
//! Run: `cargo bench --bench tsdb_wal_fsync`

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process_cpu_secs;
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
        ("idx", i.to_string().as_str()),
    ])
}

/// A head with `TARGETS` x `BATCH` series and a thread syncing its WAL.
struct Setup {
    _dir: tempfile::TempDir,
    head: Head,
    labels: Vec<Vec<Labels>>,
    refs: Vec<Vec<u64>>,
    ts: i64,
    target: usize,
    stop: Arc<AtomicBool>,
    syncs: Arc<AtomicU64>,
    syncer: Option<std::thread::JoinHandle<()>>,
}

impl Setup {
    fn new(every: Option<Duration>) -> Setup {
        let dir = match std::env::var_os("VIGIL_BENCH_DIR") {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .unwrap();
        let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let labels: Vec<Vec<Labels>> = (0..TARGETS)
            .map(|t| (0..BATCH).map(|i| series_labels(t, i)).collect())
            .collect();
        let mut refs = vec![vec![0u64; BATCH]; TARGETS];
        let ts = 1_700_000_000_000i64;
        for (t, ls) in labels.iter().enumerate() {
            let mut app = head.head_appender();
            for (i, l) in ls.iter().enumerate() {
                refs[t][i] = app.append(0, l, ts, 0.0).unwrap();
            }
            app.commit().unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let syncs = Arc::new(AtomicU64::new(0));
        let syncer = every.map(|every| {
            let (h, stop, syncs) = (head.clone(), stop.clone(), syncs.clone());
            std::thread::spawn(move || {
                let mut next = Instant::now() + every;
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep((next - now).min(Duration::from_millis(20)));
                        continue;
                    }
                    h.sync_wal().unwrap();
                    syncs.fetch_add(1, Ordering::Relaxed);
                    next += every;
                }
            })
        });
        Setup {
            _dir: dir,
            head,
            labels,
            refs,
            ts: ts + 15_000,
            target: 0,
            stop,
            syncs,
            syncer,
        }
    }

    fn commit_one(&mut self, k: i64) {
        self.target = (self.target + 1) % TARGETS;
        if self.target == 0 {
            self.ts += 15_000;
        }
        let mut app = self.head.head_appender();
        for (i, &sref) in self.refs[self.target].iter().enumerate() {
            app.append(
                sref,
                &self.labels[self.target][i],
                self.ts,
                (self.ts / 1000 + i as i64 + k) as f64,
            )
            .unwrap();
        }
        app.commit().unwrap();
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
    }
}

fn bench(c: &mut Criterion) {
    let settings: [(&str, Option<Duration>); 3] = [
        ("off", None),
        ("1s", Some(Duration::from_secs(1))),
        ("100ms", Some(Duration::from_millis(100))),
    ];
    let mut g = c.benchmark_group("wal_fsync_interval");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.measurement_time(Duration::from_secs(5));
    for (name, every) in settings {
        let mut s = Setup::new(every);
        let mut k = 0i64;
        g.bench_function(name, |b| {
            b.iter(|| {
                k += 1;
                s.commit_one(k)
            })
        });
    }
    g.finish();

    // A fixed, wall-clock-bounded run per setting for CPU and fsync counts.
    for (name, every) in settings {
        let mut s = Setup::new(every);
        let (cpu0, t0) = (process_cpu_secs(), Instant::now());
        let mut n = 0i64;
        while t0.elapsed() < Duration::from_secs(3) {
            n += 1;
            s.commit_one(n);
        }
        let (cpu, wall) = (process_cpu_secs() - cpu0, t0.elapsed().as_secs_f64());
        let samples = n as f64 * BATCH as f64;
        eprintln!(
            "wal-fsync-interval={name:>5}: {:.2} M samples/s, {:.3} CPU-s per M samples, {} fsyncs in {wall:.1} s",
            samples / wall / 1e6,
            cpu / samples * 1e6,
            s.syncs.load(Ordering::Relaxed)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
