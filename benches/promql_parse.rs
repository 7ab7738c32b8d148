//! Parser benchmarks: a typical dashboard query must parse well under 50 µs.
//!
//! Run: `cargo bench --bench promql_parse`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use vigil_promql::parser::{format_expr, parse, prettify};

const DASHBOARD: &str = r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle",job=~"node.*"}[5m])) / on(instance) group_left count by (instance) (node_cpu_seconds_total{mode="idle"})"#;

const ALERT: &str = r#"(node_filesystem_avail_bytes{job="node",fstype!=""} / node_filesystem_size_bytes{job="node",fstype!=""} * 100 < 40 and predict_linear(node_filesystem_avail_bytes{job="node",fstype!=""}[6h], 24*60*60) < 0 and node_filesystem_readonly{job="node",fstype!=""} == 0)"#;

fn bench(c: &mut Criterion) {
    c.bench_function("parse/dashboard", |b| {
        b.iter(|| parse(black_box(DASHBOARD)))
    });
    c.bench_function("parse/alert", |b| b.iter(|| parse(black_box(ALERT))));
    let no_regex = DASHBOARD.replace("=~", "=");
    c.bench_function("parse/dashboard_without_regex", |b| {
        b.iter(|| parse(black_box(&no_regex)))
    });
    c.bench_function("matcher/regex_compile", |b| {
        b.iter(|| {
            vigil_model::Matcher::new(vigil_model::MatchOp::Regex, "job", black_box("node.*"))
        })
    });
    c.bench_function("parse/selector", |b| b.iter(|| parse(black_box("up"))));
    let e = parse(DASHBOARD).expect("valid");
    c.bench_function("format/dashboard", |b| {
        b.iter(|| format_expr(black_box(&e)))
    });
    c.bench_function("prettify/dashboard", |b| b.iter(|| prettify(black_box(&e))));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
