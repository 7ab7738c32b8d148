//! Backfill block writer throughput: time-ordered input (as the load
//! benchmark's OpenMetrics file is), node_exporter-like values, written as
//! 2h blocks. Parsing is not included: this is the writer's share.
//!
//! Run: `cargo bench --bench tsdb_backfill`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vigil_model::Labels;
use vigil_tsdb::block::{BlockWriter, DEFAULT_BLOCK_DURATION};

/// Defaults: 2k series x 12 h at 15 s. `VIGIL_BACKFILL_FULL=1` runs the load
/// benchmark's shape instead: 10k series x 24 h at 15 s (57.6M samples) in
/// 18 h blocks.
fn shape() -> (usize, i64, i64) {
    if std::env::var_os("VIGIL_BACKFILL_FULL").is_some() {
        (10_000, 5_760, 18 * DEFAULT_BLOCK_DURATION / 2)
    } else {
        (2_000, 2_880, DEFAULT_BLOCK_DURATION)
    }
}

fn run(dir: &std::path::Path, flush_early: bool) -> usize {
    let (series, steps, block) = shape();
    let mut w = BlockWriter::new(dir, block);
    let ids: Vec<u32> = (0..series)
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
    let mut vals = vec![0.0f64; series];
    let start = 1_700_000_000_000i64;
    for step in 0..steps {
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
        if flush_early && step % 240 == 239 {
            w.flush_before(t).expect("flush_before");
        }
    }
    w.flush().expect("flush").len()
}

fn backfill(c: &mut Criterion) {
    let mut g = c.benchmark_group("backfill_writer");
    g.sample_size(10);
    let (series, steps, _) = shape();
    g.throughput(Throughput::Elements(series as u64 * steps as u64));
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
