//! Cost of `vigil_model::relabel::process` for rules as a config declares them.
//!
//! Run: `cargo bench --bench config_relabel`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use vigil_config::Config;
use vigil_model::relabel::{process, process_owned};
use vigil_model::Labels;

const CONFIG: &str = r#"
scrape_configs:
  - job_name: node
    relabel_configs:
      - source_labels: [__address__]
        modulus: 4
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        regex: '[0-3]'
        action: keep
      - regex: __meta_(.+)
        action: labelmap
      - source_labels: [__address__]
        regex: '([^:]+):\d+'
        target_label: instance
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_gc_.*|scrape_.*'
        action: drop
      - source_labels: [__name__, mode]
        regex: 'node_cpu_seconds_total;(idle|iowait)'
        action: drop
"#;

fn bench(c: &mut Criterion) {
    let cfg = Config::from_yaml(CONFIG, "bench.yml").expect("valid config");
    let job = &cfg.scrape_configs[0];
    let target = Labels::from_pairs(&[
        ("__address__", "node-17.example:9100"),
        ("__meta_dc", "eu1"),
        ("__meta_rack", "r12"),
        ("__metrics_path__", "/metrics"),
        ("__scheme__", "http"),
        ("job", "node"),
    ]);
    let series = Labels::from_pairs(&[
        ("__name__", "node_cpu_seconds_total"),
        ("cpu", "3"),
        ("instance", "node-17"),
        ("job", "node"),
        ("mode", "user"),
    ]);
    c.bench_function("target_relabel_4_rules", |b| {
        b.iter(|| process(black_box(&target), &job.relabel_configs))
    });
    c.bench_function("metric_relabel_2_rules_kept_borrowed", |b| {
        b.iter(|| process(black_box(&series), &job.metric_relabel_configs))
    });
    c.bench_function("metric_relabel_2_rules_kept_owned", |b| {
        b.iter_batched(
            || series.clone(),
            |s| process_owned(s, &job.metric_relabel_configs),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
