//! Range-query benchmarks of the evaluator over a synthetic in-memory
//! storage shaped like the `../shared/bench` data set: 10,000 series of one
//! node-exporter-like job (5 instances), 24 h at a 15 s scrape interval
//! (57.6M samples), queried over the full 24 h at a 60 s step.
//!
//! `cargo bench --bench promql_eval [-- <filter>]`; set
//! `VIGIL_BENCH_STORAGE=block` (or `head`) to query the real TSDB, and
//! `VIGIL_BENCH_CPU=<reps>` for a CPU-time table instead of criterion.

mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use vigil_model::storage::{
    Querier, Queryable, SampleIter, SelectHints, Series, SliceIter, StorageError,
};
use vigil_model::{Labels, Matcher, Sample};
use vigil_promql::engine::{Engine, EngineOptions, QueryControl};
use vigil_promql::parser::parse;

const STEP: i64 = 15_000;
const HOURS: i64 = 24;
const POINTS: usize = (HOURS * 3600 * 1000 / STEP) as usize;

struct SeriesData {
    labels: Labels,
    samples: Arc<[Sample]>,
}

struct MemSeries {
    labels: Labels,
    samples: Arc<[Sample]>,
}

impl Series for MemSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn iter(&self) -> Box<dyn SampleIter + '_> {
        Box::new(FastIter {
            inner: SliceIter::new(&self.samples),
            samples: &self.samples,
        })
    }
}

/// A slice iterator whose `collect_range` is a bulk copy, standing in for a
/// storage that decodes whole chunks at once.
struct FastIter<'a> {
    inner: SliceIter<'a>,
    samples: &'a [Sample],
}

impl SampleIter for FastIter<'_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        self.inner.next()
    }
    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        self.inner.seek(t)
    }
    fn collect_range(
        &mut self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        let lo = self.samples.partition_point(|s| s.t < mint);
        let hi = self.samples.partition_point(|s| s.t <= maxt);
        if lo < hi {
            out.extend_from_slice(&self.samples[lo..hi]);
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Db(Arc<Vec<SeriesData>>);

impl Queryable for Db {
    fn querier(&self, _mint: i64, _maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(self.clone()))
    }
}

impl Querier for Db {
    fn select(
        &self,
        _: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Vec<Box<dyn Series>>, StorageError> {
        Ok(self
            .0
            .iter()
            .filter(|s| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .map(|s| {
                Box::new(MemSeries {
                    labels: s.labels.clone(),
                    samples: s.samples.clone(),
                }) as Box<dyn Series>
            })
            .collect())
    }
    fn label_values(&self, _: &str, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
    fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
}

/// Deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn counter(rng: &mut Rng, rate: f64) -> Arc<[Sample]> {
    let mut v = 0.0;
    (0..POINTS)
        .map(|i| {
            v += (rng.next() * 2.0 * rate * 15.0).floor();
            Sample::new(i as i64 * STEP, v)
        })
        .collect()
}

fn gauge(rng: &mut Rng, base: f64) -> Arc<[Sample]> {
    let mut v = base;
    (0..POINTS)
        .map(|i| {
            v = (v + (rng.next() - 0.5) * base * 0.01).max(0.0);
            Sample::new(i as i64 * STEP, v)
        })
        .collect()
}

fn build() -> Db {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out: Vec<SeriesData> = Vec::new();
    let mut push = |pairs: Vec<(&str, String)>, samples: Arc<[Sample]>| {
        let mut l: Vec<(&str, String)> = pairs;
        l.push(("job", "node".to_string()));
        out.push(SeriesData {
            labels: Labels::from_pairs(&l),
            samples,
        });
    };
    let modes = [
        "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
    ];
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    for h in 0..5 {
        let inst = format!("host-{h}:9100");
        for cpu in 0..8 {
            for m in modes {
                let s = counter(&mut rng, 0.1);
                push(
                    vec![
                        ("__name__", "node_cpu_seconds_total".into()),
                        ("instance", inst.clone()),
                        ("cpu", cpu.to_string()),
                        ("mode", m.into()),
                    ],
                    s,
                );
            }
        }
        for handler in 0..6 {
            // Cumulative buckets: bucket i grows with probability mass up to i.
            let mut cum = vec![0.0f64; les.len()];
            let mut series: Vec<Vec<Sample>> = vec![Vec::with_capacity(POINTS); les.len()];
            for p in 0..POINTS {
                let n = (rng.next() * 20.0).floor();
                for _ in 0..n as usize {
                    let x = rng.next();
                    let b = (x * x * les.len() as f64) as usize;
                    for c in cum.iter_mut().skip(b) {
                        *c += 1.0;
                    }
                }
                for (i, s) in series.iter_mut().enumerate() {
                    s.push(Sample::new(p as i64 * STEP, cum[i]));
                }
            }
            for (i, s) in series.into_iter().enumerate() {
                push(
                    vec![
                        ("__name__", "http_request_duration_seconds_bucket".into()),
                        ("instance", inst.clone()),
                        ("handler", format!("/api/v{handler}")),
                        ("le", les[i].into()),
                    ],
                    s.into(),
                );
            }
        }
        for dev in ["eth0", "eth1", "lo", "docker0"] {
            for m in [
                "node_network_receive_bytes_total",
                "node_network_transmit_bytes_total",
            ] {
                let s = counter(&mut rng, 1e5);
                push(
                    vec![
                        ("__name__", m.into()),
                        ("instance", inst.clone()),
                        ("device", dev.into()),
                    ],
                    s,
                );
            }
        }
        for dev in ["sda", "sdb", "nvme0n1", "dm-0", "loop0", "loop1"] {
            let s = counter(&mut rng, 1e6);
            push(
                vec![
                    ("__name__", "node_disk_read_bytes_total".into()),
                    ("instance", inst.clone()),
                    ("device", dev.into()),
                ],
                s,
            );
        }
        push(
            vec![
                ("__name__", "node_load1".into()),
                ("instance", inst.clone()),
            ],
            gauge(&mut rng, 2.0),
        );
        for (dev, fs, mp) in [
            ("sda1", "ext4", "/"),
            ("sdb1", "xfs", "/data"),
            ("tmpfs", "tmpfs", "/run"),
            ("nvme0n1p1", "ext4", "/var"),
        ] {
            push(
                vec![
                    ("__name__", "node_filesystem_avail_bytes".into()),
                    ("instance", inst.clone()),
                    ("device", dev.into()),
                    ("fstype", fs.into()),
                    ("mountpoint", mp.into()),
                ],
                gauge(&mut rng, 1e11),
            );
        }
        let total = 16e9;
        push(
            vec![
                ("__name__", "node_memory_MemTotal_bytes".into()),
                ("instance", inst.clone()),
            ],
            gauge(&mut rng, total),
        );
        push(
            vec![
                ("__name__", "node_memory_MemAvailable_bytes".into()),
                ("instance", inst.clone()),
            ],
            gauge(&mut rng, total / 2.0),
        );
        for irq in 0..100 {
            for cpu in 0..8 {
                let s = counter(&mut rng, 0.5);
                push(
                    vec![
                        ("__name__", "node_interrupts_total".into()),
                        ("instance", inst.clone()),
                        ("devices", format!("dev{}", irq % 20)),
                        ("type", format!("irq{irq}")),
                        ("cpu", cpu.to_string()),
                    ],
                    s,
                );
            }
        }
    }
    // Filler gauges up to 10,000 series.
    let mut i = 0;
    while out.len() < 10_000 {
        let s = gauge(&mut rng, 100.0);
        let inst = format!("host-{}:9100", i % 5);
        out.push(SeriesData {
            labels: Labels::from_pairs(&[
                ("__name__", format!("node_filler_{}", i % 50)),
                ("instance", inst),
                ("job", "node".to_string()),
                ("idx", i.to_string()),
            ]),
            samples: s,
        });
        i += 1;
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Db(Arc::new(out))
}

const QUERIES: &[(&str, &str)] = &[
    ("cpu_busy_by_instance", r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#),
    ("hist_p90", "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
    ("hist_p99_by_handler", "histogram_quantile(0.99, sum by (handler, le) (rate(http_request_duration_seconds_bucket[5m])))"),
    ("topk_net_rx", "topk(5, rate(node_network_receive_bytes_total[5m]))"),
    ("avg_over_time_load", "avg_over_time(node_load1[15m])"),
    ("disk_regex", r#"sum by (instance, device) (rate(node_disk_read_bytes_total{device=~"sd.*|nvme.*"}[5m]))"#),
    ("count_by_job_all", r#"count by (job) ({job="node"})"#),
    ("irq_increase_1h_topk", "topk(10, sum by (devices) (increase(node_interrupts_total[1h])))"),
    ("mem_used_pct_on", "100 * (1 - node_memory_MemAvailable_bytes / on(instance) node_memory_MemTotal_bytes)"),
    ("net_ratio_on", "sum by (instance) (rate(node_network_transmit_bytes_total[5m])) / on(instance) sum by (instance) (rate(node_network_receive_bytes_total[5m]))"),
    ("fs_max_over_time_1h", r#"max by (instance) (max_over_time(node_filesystem_avail_bytes{fstype!="tmpfs"}[1h]))"#),
];

fn bench(c: &mut Criterion) {
    let store = Store::from_env();
    let db = store.queryable();
    let engine = Engine::new(EngineOptions::default());
    let end = HOURS * 3600 * 1000;
    let mut group = c.benchmark_group("range_24h_60s");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for (name, q) in QUERIES {
        let expr = match parse(q) {
            Ok(e) => e,
            Err(e) => panic!("{q}: {e:?}"),
        };
        group.bench_function(*name, |b| {
            b.iter(|| {
                engine
                    .range_query(db, &expr, 0, end, 60_000, &QueryControl::new())
                    .map(|r| r.stats.total_samples)
                    .unwrap_or(0)
            })
        });
    }
    group.finish();
}

/// Process CPU time (user + system) in milliseconds.
fn cpu_ms() -> f64 {
    common::process_cpu_secs() * 1e3
}

/// Copies the synthetic data into a real TSDB head (time-major, as a
/// scraper would append), so queries pay for chunk decoding too.
fn build_head(db: &Db) -> (vigil_tsdb::head::Head, tempfile::TempDir) {
    use vigil_model::storage::Appendable;
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("temp dir: {e}"),
    };
    let opts = vigil_tsdb::head::HeadOptions {
        wal_enabled: false,
        chunk_range: 48 * 3600 * 1000,
        ..Default::default()
    };
    let head = match vigil_tsdb::head::Head::open(dir.path(), opts) {
        Ok(h) => h,
        Err(e) => panic!("head: {e}"),
    };
    let mut refs = vec![0u64; db.0.len()];
    for p in 0..POINTS {
        let mut app = head.appender();
        for (i, s) in db.0.iter().enumerate() {
            let smp = s.samples[p];
            refs[i] = app.append(refs[i], &s.labels, smp.t, smp.v).unwrap_or(0);
        }
        let _ = app.commit();
    }
    (head, dir)
}

/// A persisted block, as `promtool tsdb create-blocks-from` or compaction
/// would leave it: the storage the shared bench's backfilled servers read.
struct BlockStore(vigil_tsdb::block::Block);

impl Queryable for BlockStore {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(self.0.querier(mint, maxt)))
    }
}

fn build_block(db: &Db, dir: &std::path::Path) -> BlockStore {
    use vigil_tsdb::block::{Block, BlockBuilder};
    use vigil_tsdb::chunkenc::{EncodedChunk, SAMPLES_PER_CHUNK};
    use vigil_tsdb::meta::{BlockMetaCompaction, Ulid};
    let mut syms = std::collections::BTreeSet::new();
    for s in db.0.iter() {
        for l in &s.labels {
            syms.insert(l.name.clone());
            syms.insert(l.value.clone());
        }
    }
    let ulid = Ulid::new();
    let maxt = HOURS * 3600 * 1000;
    let mut b = match BlockBuilder::create(dir, ulid, 0, maxt, &syms) {
        Ok(b) => b,
        Err(e) => panic!("block: {e}"),
    };
    for s in db.0.iter() {
        let chunks: Vec<EncodedChunk> = s
            .samples
            .chunks(SAMPLES_PER_CHUNK)
            .filter_map(EncodedChunk::from_samples)
            .collect();
        if let Err(e) = b.add_series(&s.labels, &chunks) {
            panic!("block: {e}");
        }
    }
    let fin = b.finish(BlockMetaCompaction {
        level: 1,
        sources: vec![ulid],
        ..Default::default()
    });
    if let Err(e) = fin {
        panic!("block: {e}");
    }
    match Block::open(&dir.join(ulid.to_string())) {
        Ok(b) => BlockStore(b),
        Err(e) => panic!("block: {e}"),
    }
}

/// The storage under test, chosen by `VIGIL_BENCH_STORAGE`: `slice`
/// (default, in-memory arrays), `head` (a TSDB head) or `block` (a
/// persisted TSDB block).
struct Store {
    mem: Db,
    head: Option<vigil_tsdb::head::Head>,
    block: Option<BlockStore>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Store {
    fn from_env() -> Store {
        let mem = build();
        let kind = std::env::var("VIGIL_BENCH_STORAGE").unwrap_or_default();
        let mut store = Store {
            mem,
            head: None,
            block: None,
            _dirs: Vec::new(),
        };
        let t = std::time::Instant::now();
        match kind.as_str() {
            "head" => {
                let (h, d) = build_head(&store.mem);
                store.head = Some(h);
                store._dirs.push(d);
            }
            "block" => {
                let d = match tempfile::tempdir() {
                    Ok(d) => d,
                    Err(e) => panic!("temp dir: {e}"),
                };
                store.block = Some(build_block(&store.mem, d.path()));
                store._dirs.push(d);
            }
            _ => {}
        }
        if !kind.is_empty() {
            eprintln!("{kind} storage built in {:.1} s", t.elapsed().as_secs_f64());
        }
        store
    }

    fn queryable(&self) -> &dyn Queryable {
        match (&self.head, &self.block) {
            (Some(h), _) => h,
            (None, Some(b)) => b,
            _ => &self.mem,
        }
    }
}

/// `VIGIL_BENCH_CPU=<reps>`: prints CPU and wall time per query instead of
/// running criterion; CPU time is robust on a busy shared machine.
/// `VIGIL_BENCH_STORAGE=head|block` queries a real TSDB head or a
/// persisted block instead of slices.
fn cpu_report(reps: usize) {
    let store = Store::from_env();
    let db = store.queryable();
    let engine = Engine::new(EngineOptions::default());
    let end = HOURS * 3600 * 1000;
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut total_cpu, mut total_wall, mut total_icpu) = (0.0, 0.0, 0.0);
    for (name, q) in QUERIES {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let expr = match parse(q) {
            Ok(e) => e,
            Err(e) => panic!("{q}: {e:?}"),
        };
        let c0 = cpu_ms();
        let t0 = std::time::Instant::now();
        let mut series = 0;
        for _ in 0..reps.min(
            std::env::var("VIGIL_BENCH_RANGE_MAX")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(usize::MAX),
        ) {
            if let Ok(r) = engine.range_query(db, &expr, 0, end, 60_000, &QueryControl::new()) {
                if let vigil_promql::engine::Value::Matrix(m) = r.value {
                    series = m.len();
                }
            }
        }
        let cpu = (cpu_ms() - c0) / reps as f64;
        let wall = t0.elapsed().as_secs_f64() * 1000.0 / reps as f64;
        let (c1, t1) = (cpu_ms(), std::time::Instant::now());
        let ireps = reps
            * std::env::var("VIGIL_BENCH_INSTANT_X")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(20);
        for _ in 0..ireps {
            let _ = engine.instant_query(db, &expr, end, &QueryControl::new());
        }
        let icpu = (cpu_ms() - c1) / ireps as f64;
        let iwall = t1.elapsed().as_secs_f64() * 1000.0 / ireps as f64;
        total_cpu += cpu;
        total_wall += wall;
        total_icpu += icpu;
        println!(
            "{name:<24} range: cpu {cpu:7.1} ms wall {wall:7.1} ms series {series:3} | instant: cpu {icpu:6.2} ms wall {iwall:6.2} ms"
        );
    }
    println!(
        "{:<24} range: cpu {total_cpu:7.1} ms wall {total_wall:7.1} ms            | instant: cpu {total_icpu:6.2} ms",
        "total"
    );
}

criterion_group!(benches, bench);

fn main() {
    if let Some(reps) = std::env::var("VIGIL_BENCH_CPU")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        cpu_report(reps.max(1));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
