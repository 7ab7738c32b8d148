//! Postings intersection: in-memory set algebra on realistic list shapes, and
//! the whole matcher-to-postings path on a block index (a rare label against
//! a big `__name__`, a regex alternation, a negative matcher).
//!
//! Run: `cargo bench --bench tsdb_postings`

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_model::{Labels, MatchOp, Matcher};
use vigil_tsdb::block::postings_for_matchers;
use vigil_tsdb::chunks::ChunkMeta;
use vigil_tsdb::index::{intersect, intersect_many, IndexReader, IndexWriter};

fn every(n: u32, step: u32) -> Vec<u32> {
    (0..n).filter(|x| x % step == 0).collect()
}

fn set_algebra(c: &mut Criterion) {
    let mut g = c.benchmark_group("postings_intersect");
    let big = every(1_000_000, 1);
    let half = every(1_000_000, 2);
    let rare = every(1_000_000, 997);
    g.throughput(Throughput::Elements((big.len() + half.len()) as u64));
    g.bench_function("1M x 500k (linear merge)", |b| {
        b.iter(|| black_box(intersect(&big, &half)))
    });
    g.throughput(Throughput::Elements(rare.len() as u64));
    g.bench_function("1M x 1k (galloping)", |b| {
        b.iter(|| black_box(intersect(&big, &rare)))
    });
    let thirds = every(1_000_000, 3);
    g.throughput(Throughput::Elements(
        (big.len() + half.len() + thirds.len()) as u64,
    ));
    g.bench_function("three lists 1M/500k/333k", |b| {
        b.iter(|| {
            black_box(intersect_many(vec![
                big.clone(),
                half.clone(),
                thirds.clone(),
            ]))
        })
    });
    g.finish();
}

fn block_index(c: &mut Criterion) {
    // 100k series: 100 metric names x 1000 instances, 10 jobs.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index");
    let mut series = Vec::new();
    for m in 0..100 {
        for i in 0..1000 {
            series.push(Labels::from_pairs(&[
                ("__name__", format!("metric_{m:03}").as_str()),
                ("instance", format!("host-{i:04}:9100").as_str()),
                ("job", format!("job-{}", i % 10).as_str()),
            ]));
        }
    }
    series.sort();
    let mut syms = BTreeSet::new();
    for l in &series {
        for x in l {
            syms.insert(x.name.clone());
            syms.insert(x.value.clone());
        }
    }
    let mut w = IndexWriter::create(&path, &syms).expect("create");
    let chunk = [ChunkMeta {
        min_time: 0,
        max_time: 1,
        chunk_ref: 8,
    }];
    for l in &series {
        w.add_series(l, &chunk).expect("add");
    }
    w.finish().expect("finish");
    let ix = IndexReader::open(&path).expect("open");

    let mut g = c.benchmark_group("postings_for_matchers");
    let cases: Vec<(&str, Vec<Matcher>)> = vec![
        (
            "name=, instance=",
            vec![
                Matcher::equal("__name__", "metric_042"),
                Matcher::equal("instance", "host-0042:9100"),
            ],
        ),
        (
            "name=, job=",
            vec![
                Matcher::equal("__name__", "metric_042"),
                Matcher::equal("job", "job-3"),
            ],
        ),
        (
            "name=~a|b|c, job!=",
            vec![
                Matcher::new(
                    MatchOp::Regex,
                    "__name__",
                    "metric_001|metric_050|metric_099",
                )
                .expect("re"),
                Matcher::new(MatchOp::NotEqual, "job", "job-1").expect("ne"),
            ],
        ),
        (
            "name=, instance=~prefix.*",
            vec![
                Matcher::equal("__name__", "metric_007"),
                Matcher::new(MatchOp::Regex, "instance", "host-00.*").expect("re"),
            ],
        ),
        (
            "job=~.+ (all)",
            vec![Matcher::new(MatchOp::Regex, "job", ".+").expect("re")],
        ),
    ];
    for (name, ms) in cases {
        g.bench_function(name, |b| {
            b.iter(|| black_box(postings_for_matchers(&ix, &ms).expect("postings")))
        });
    }
    g.finish();
}

criterion_group!(benches, set_algebra, block_index);
criterion_main!(benches);
