//! Backfill block writer throughput: time-ordered input (as the load
//! benchmark's OpenMetrics file is), node_exporter-like values, written as
//! 2h blocks. Parsing is not included: this is the writer's share.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vigil_model::Labels;
use vigil_tsdb::block::{BlockWriter, DEFAULT_BLOCK_DURATION};

const SERIES: usize = 2_000;
const STEPS: i64 = 2_880; // 12 h at 15 s

fn run(dir: &std::path::Path, flush_early: bool) -> usize {
    let mut w = BlockWriter::new(dir, DEFAULT_BLOCK_DURATION);
    let ids: Vec<u32> = (0..SERIES)
        .map(|i| {
            let l = Labels::from_pairs(&[
                ("__name__", format!("node_metric_{}", i % 200).as_str()),
                ("instance", format!("host-{}:9100", i / 200).as_str()),
                ("job", "node"),
            ]);
            w.series_id(&l).expect("series")
        })
        .collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut vals = vec![0.0f64; SERIES];
    let start = 1_700_000_000_000i64;
    for step in 0..STEPS {
        let t = start + step * 15_000;
        for (i, id) in ids.iter().enumerate() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            vals[i] += match i % 4 {
                0 => (seed % 1000) as f64 * 0.01,
                1 => 1.0,
                2 => 0.0,
                _ => ((seed % 64) as f64 - 32.0) * 4096.0,
            };
            w.add(*id, t, vals[i]).expect("add");
        }
        if flush_early && step % 480 == 479 {
            w.flush_before(t).expect("flush_before");
        }
    }
    w.flush().expect("flush").len()
}

fn backfill(c: &mut Criterion) {
    let mut g = c.benchmark_group("backfill_writer");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SERIES as u64 * STEPS as u64));
    for early in [false, true] {
        let name = if early {
            "time-ordered, flush_before"
        } else {
            "all in memory"
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| black_box(run(dir.path(), early)),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, backfill);
criterion_main!(benches);
