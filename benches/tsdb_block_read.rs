//! Reading a block's chunks: raw decode with and without the CRC check
//! (the cost of checked reads), and the full querier path (select all series,
//! iterate every sample).
//!
//! Run: `cargo bench --bench tsdb_block_read`

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_model::{Labels, MatchOp, Matcher, Sample};
use vigil_tsdb::block::{Block, BlockBuilder};
use vigil_tsdb::chunkenc::{ChunkIter, EncodedChunk, SAMPLES_PER_CHUNK};
use vigil_tsdb::meta::{BlockMetaCompaction, Ulid};

const SERIES: usize = 1000;
const SAMPLES: usize = 1200;

fn build(dir: &std::path::Path) -> Block {
    let mut labels: Vec<Labels> = (0..SERIES)
        .map(|i| Labels::from_pairs(&[("__name__", "m"), ("i", &format!("{i:05}"))]))
        .collect();
    labels.sort();
    let mut syms = BTreeSet::new();
    for l in &labels {
        for x in l {
            syms.insert(x.name.clone());
            syms.insert(x.value.clone());
        }
    }
    let ulid = Ulid::new();
    let mut b = BlockBuilder::create(dir, ulid, 0, 1 << 40, &syms).expect("create");
    let mut seed = 7u64;
    for l in &labels {
        let mut v = 0.0;
        let samples: Vec<Sample> = (0..SAMPLES)
            .map(|k| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v += (seed % 100) as f64;
                Sample::new(1_700_000_000_000 + k as i64 * 15_000, v)
            })
            .collect();
        let chunks: Vec<EncodedChunk> = samples
            .chunks(SAMPLES_PER_CHUNK)
            .filter_map(EncodedChunk::from_samples)
            .collect();
        b.add_series(l, &chunks).expect("add");
    }
    b.finish(BlockMetaCompaction {
        level: 1,
        sources: vec![ulid],
        ..Default::default()
    })
    .expect("finish");
    Block::open(&dir.join(ulid.to_string())).expect("open")
}

fn block_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let block = build(dir.path());
    let q = block.querier(i64::MIN, i64::MAX);
    let all = [Matcher::new(MatchOp::Regex, "__name__", ".+").expect("re")];
    let series = q.select_series(&all).expect("select");
    let refs: Vec<u64> = series
        .iter()
        .flat_map(|s| s.chunk_metas().iter().map(|c| c.chunk_ref))
        .collect();

    let mut g = c.benchmark_group("block_read");
    g.throughput(Throughput::Elements((SERIES * SAMPLES) as u64));
    for checked in [true, false] {
        let name = if checked {
            "chunks, CRC checked"
        } else {
            "chunks, unchecked"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                // Decoded as range reads do it (whole chunks in bulk).
                let mut sum = 0.0;
                let mut out = Vec::with_capacity(SAMPLES_PER_CHUNK);
                for r in &refs {
                    let raw = if checked {
                        block.chunks().chunk(*r)
                    } else {
                        block.chunks().chunk_unchecked(*r)
                    }
                    .expect("chunk");
                    let mut it = ChunkIter::from_raw(raw.encoding, raw.data).expect("iter");
                    out.clear();
                    it.drain_into(&mut out).expect("decode");
                    sum += out.iter().map(|s| s.v).sum::<f64>();
                }
                black_box(sum)
            })
        });
    }
    g.bench_function("querier: select + iterate", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            let q = block.querier(i64::MIN, i64::MAX);
            for s in q.select_series(&all).expect("select") {
                let mut it = s.sample_iter();
                while let Some(x) = vigil_model::storage::SampleIter::next(&mut it).expect("next") {
                    sum += x.v;
                }
            }
            black_box(sum)
        })
    });
    g.bench_function("querier: select + collect_range", |b| {
        let mut buf = Vec::with_capacity(SAMPLES);
        b.iter(|| {
            let mut sum = 0.0;
            let q = block.querier(i64::MIN, i64::MAX);
            for s in q.select_series(&all).expect("select") {
                buf.clear();
                vigil_model::storage::SampleIter::collect_range(
                    &mut s.sample_iter(),
                    i64::MIN,
                    i64::MAX,
                    &mut buf,
                )
                .expect("collect");
                sum += buf.iter().map(|x| x.v).sum::<f64>();
            }
            black_box(sum)
        })
    });
    g.bench_function("querier: select only", |b| {
        b.iter(|| {
            let q = block.querier(i64::MIN, i64::MAX);
            black_box(q.select_series(&all).expect("select").len())
        })
    });
    g.finish();
}

criterion_group!(benches, block_read);
criterion_main!(benches);
