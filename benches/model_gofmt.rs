//! Sample-value formatting, the API's hot path: Go's JSON float layout
//! appended into the response buffer, against the former approach (Rust's
//! `{}` into a fresh `String` per value, then copied).
//!
//! Run: `cargo bench --bench model_gofmt`

use std::fmt::Write;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vigil_model::gofmt::{append_float, FloatFormat};

/// Typical query results: counters (integers), rates and ratios.
fn values() -> Vec<(&'static str, Vec<f64>)> {
    let n = 10_000;
    vec![
        (
            "integers",
            (0..n).map(|i| (i * 37 % 100_000) as f64).collect(),
        ),
        (
            "rates",
            (0..n)
                .map(|i| (i as f64 * 0.731).sin().abs() * 123.456)
                .collect(),
        ),
        ("ratios", (0..n).map(|i| 1.0 / (i as f64 + 3.0)).collect()),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sample_value");
    for (name, vals) in values() {
        g.throughput(Throughput::Elements(vals.len() as u64));
        g.bench_with_input(BenchmarkId::new("gofmt_append", name), &vals, |b, vals| {
            let mut buf = Vec::with_capacity(vals.len() * 24);
            b.iter(|| {
                buf.clear();
                for &v in vals {
                    append_float(&mut buf, v, FloatFormat::Json);
                }
                buf.len()
            })
        });
        g.bench_with_input(
            BenchmarkId::new("rust_display_string", name),
            &vals,
            |b, vals| {
                let mut buf = Vec::with_capacity(vals.len() * 24);
                b.iter(|| {
                    buf.clear();
                    for &v in vals {
                        let mut s = String::with_capacity(24);
                        let _ = write!(s, "{v}");
                        buf.extend_from_slice(s.as_bytes());
                    }
                    buf.len()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
