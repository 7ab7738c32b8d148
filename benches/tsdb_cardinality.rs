//! `Head::cardinality` (the `/api/v1/status/tsdb` statistics) on a head of
//! 1M series with realistic label shapes: 1000 metric names, 1000
//! instances, 10 jobs, a high-cardinality `id` label on a tenth of them.
//!
//! Run: `cargo bench --bench tsdb_cardinality`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_model::storage::Appendable;
use vigil_model::Labels;
use vigil_tsdb::head::{Head, HeadOptions};

fn cardinality(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = Head::open(
        dir.path(),
        HeadOptions {
            wal_enabled: false,
            ..HeadOptions::default()
        },
    )
    .expect("open head");
    let mut n = 0u64;
    for m in 0..1000 {
        let mut app = head.appender();
        for i in 0..1000 {
            let name = format!("metric_{m:04}");
            let inst = format!("host-{i:04}:9100");
            let job = format!("job-{}", i % 10);
            let id = format!("{:08x}", m * 1000 + i);
            let mut pairs = vec![
                ("__name__", name.as_str()),
                ("instance", inst.as_str()),
                ("job", job.as_str()),
            ];
            if m % 10 == 0 {
                pairs.push(("id", id.as_str()));
            }
            app.append(0, &Labels::from_pairs(&pairs), 1000, 1.0)
                .expect("append");
            n += 1;
        }
        app.commit().expect("commit");
    }
    let mut g = c.benchmark_group("head_cardinality");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    for limit in [10usize, 1000] {
        g.bench_function(format!("1M series, limit {limit}"), |b| {
            b.iter(|| black_box(head.cardinality(limit)))
        });
    }
    g.finish();
}

criterion_group!(benches, cardinality);
criterion_main!(benches);
