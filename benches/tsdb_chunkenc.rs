//! XOR chunk encode/decode throughput on realistic data: 120-sample chunks
//! at a 15 s interval with small jitter, a mix of counters and gauges.
//!
//! Run: `cargo bench --bench tsdb_chunkenc`

mod common;

use common::thread_cpu_secs;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use vigil_tsdb::chunkenc::{ChunkIter, Encoding, XorChunk};

const CHUNKS: usize = 1000;
const PER_CHUNK: usize = 120;

fn samples() -> Vec<Vec<(i64, f64)>> {
    let mut seed: u64 = 42;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..CHUNKS)
        .map(|c| {
            let mut t = 1_700_000_000_000i64;
            let mut counter = 0.0;
            (0..PER_CHUNK)
                .map(|_| {
                    t += 15_000
                        + if rnd() % 8 == 0 {
                            (rnd() % 5) as i64 - 2
                        } else {
                            0
                        };
                    let v = match c % 4 {
                        0 => {
                            counter += (rnd() % 100) as f64;
                            counter
                        }
                        1 => (rnd() % 10_000) as f64 / 100.0,
                        2 => 1.0,
                        _ => {
                            counter += 1.0;
                            counter
                        }
                    };
                    (t, v)
                })
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = samples();
    let chunks: Vec<Vec<u8>> = data
        .iter()
        .map(|s| {
            let mut ch = XorChunk::new();
            for &(t, v) in s {
                ch.append(t, v).unwrap();
            }
            ch.into_bytes()
        })
        .collect();
    let bytes: usize = chunks.iter().map(|c| c.len()).sum();
    eprintln!(
        "chunkenc bench data: {:.3} bytes/sample",
        bytes as f64 / (CHUNKS * PER_CHUNK) as f64
    );

    let mut g = c.benchmark_group("xor");
    g.throughput(Throughput::Elements((CHUNKS * PER_CHUNK) as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            let mut ts = 0i64;
            for ch in &chunks {
                let mut it = ChunkIter::new(Encoding::Xor, ch).unwrap();
                while let Some(s) = it.next().unwrap() {
                    sum += s.v;
                    ts ^= s.t;
                }
            }
            black_box((sum, ts))
        })
    });
    g.bench_function("drain_into", |b| {
        let mut out = Vec::with_capacity(PER_CHUNK);
        b.iter(|| {
            let mut sum = 0.0;
            for ch in &chunks {
                out.clear();
                let mut it = ChunkIter::new(Encoding::Xor, ch).unwrap();
                it.drain_into(&mut out).unwrap();
                sum += out.iter().map(|s| s.v).sum::<f64>();
            }
            black_box(sum)
        })
    });
    g.bench_function("encode", |b| {
        b.iter_batched(
            || (),
            |_| {
                let mut n = 0;
                for s in &data {
                    let mut ch = XorChunk::new();
                    for &(t, v) in s {
                        ch.append(t, v).unwrap();
                    }
                    n += ch.bytes().len();
                }
                black_box(n)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // Per CPU-second of this thread (the machine is shared).
    let rounds = 200;
    let cpu0 = thread_cpu_secs();
    let mut sum = 0.0;
    for _ in 0..rounds {
        for ch in &chunks {
            let mut it = ChunkIter::new(Encoding::Xor, ch).unwrap();
            while let Some(s) = it.next().unwrap() {
                sum += s.v;
            }
        }
    }
    let cpu = thread_cpu_secs() - cpu0;
    black_box(sum);
    eprintln!(
        "xor decode: {:.1} M samples per CPU-second",
        (rounds * CHUNKS * PER_CHUNK) as f64 / cpu / 1e6
    );
    let cpu0 = thread_cpu_secs();
    let mut out = Vec::with_capacity(PER_CHUNK);
    for _ in 0..rounds {
        for ch in &chunks {
            out.clear();
            let mut it = ChunkIter::new(Encoding::Xor, ch).unwrap();
            it.drain_into(&mut out).unwrap();
            sum += out.iter().map(|s| s.v).sum::<f64>();
        }
    }
    let cpu = thread_cpu_secs() - cpu0;
    black_box(sum);
    eprintln!(
        "xor drain_into: {:.1} M samples per CPU-second",
        (rounds * CHUNKS * PER_CHUNK) as f64 / cpu / 1e6
    );
    let rounds = 50;
    let cpu0 = thread_cpu_secs();
    let mut n = 0;
    for _ in 0..rounds {
        for s in &data {
            let mut ch = XorChunk::new();
            for &(t, v) in s {
                ch.append(t, v).unwrap();
            }
            n += ch.bytes().len();
        }
    }
    let cpu = thread_cpu_secs() - cpu0;
    black_box(n);
    eprintln!(
        "xor encode: {:.1} M samples per CPU-second",
        (rounds * CHUNKS * PER_CHUNK) as f64 / cpu / 1e6
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
