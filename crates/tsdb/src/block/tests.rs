use std::collections::BTreeSet;

use proptest::prelude::*;
use vigil_model::storage::{Querier, SampleIter, StorageError};
use vigil_model::{Labels, MatchOp, Matcher, Sample, STALE_NAN};

use super::*;
use crate::chunkenc::{EncodedChunk, SAMPLES_PER_CHUNK};
use crate::meta::{BlockMetaCompaction, Ulid};

type Model = Vec<(Labels, Vec<Sample>)>;

/// Writes `series` (any order) as one block and opens it.
pub(crate) fn build_block(parent: &std::path::Path, mut series: Model) -> Block {
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut syms = BTreeSet::new();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    for (l, s) in &series {
        for x in l {
            syms.insert(x.name.clone());
            syms.insert(x.value.clone());
        }
        if let (Some(a), Some(b)) = (s.first(), s.last()) {
            mint = mint.min(a.t);
            maxt = maxt.max(b.t);
        }
    }
    let ulid = Ulid::new();
    let mut b = BlockBuilder::create(parent, ulid, mint, maxt.saturating_add(1), &syms).unwrap();
    for (l, s) in &series {
        let chunks: Vec<EncodedChunk> = s
            .chunks(SAMPLES_PER_CHUNK)
            .filter_map(EncodedChunk::from_samples)
            .collect();
        b.add_series(l, &chunks).unwrap();
    }
    let c = BlockMetaCompaction {
        level: 1,
        sources: vec![ulid],
        ..Default::default()
    };
    b.finish(c).unwrap();
    Block::open(&parent.join(ulid.to_string())).unwrap()
}

fn model() -> Model {
    let mut out = Vec::new();
    for job in ["api", "db", "web"] {
        for i in 0..7 {
            let l = Labels::from_pairs(&[
                (
                    "__name__",
                    if i % 2 == 0 {
                        "http_requests_total"
                    } else {
                        "up"
                    },
                ),
                ("job", job),
                ("instance", &format!("host-{i}:9100")),
                ("env", if i < 3 { "prod" } else { "" }),
            ]);
            let samples = (0..(50 * (i + 1)))
                .map(|k| {
                    let t = 1_000 * k as i64 + i as i64;
                    let v = if k == 17 {
                        STALE_NAN
                    } else {
                        (k * i) as f64 * 0.5
                    };
                    Sample::new(t, v)
                })
                .collect();
            out.push((l, samples));
        }
    }
    out
}

fn naive_select(m: &Model, ms: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<Sample>)> {
    let mut out: Vec<(Labels, Vec<Sample>)> = m
        .iter()
        .filter(|(l, _)| ms.iter().all(|x| x.matches(l.get(&x.name).unwrap_or(""))))
        .map(|(l, s)| {
            (
                l.clone(),
                s.iter()
                    .filter(|x| x.t >= mint && x.t <= maxt)
                    .copied()
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, s)| !s.is_empty())
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn collect(q: &dyn Querier, ms: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
    q.select(None, ms)
        .unwrap()
        .iter()
        .map(|s| {
            let mut it = s.iter();
            let mut v = Vec::new();
            while let Some(x) = it.next().unwrap() {
                v.push(x);
            }
            (s.labels().clone(), v)
        })
        .collect()
}

fn same(a: &[(Labels, Vec<Sample>)], b: &[(Labels, Vec<Sample>)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.0 == y.0
                && x.1.len() == y.1.len()
                && x.1
                    .iter()
                    .zip(&y.1)
                    .all(|(p, q)| p.t == q.t && p.v.to_bits() == q.v.to_bits())
        })
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    let names = prop::sample::select(vec!["__name__", "job", "instance", "env", "missing"]);
    let values = prop::sample::select(vec![
        "",
        "up",
        "api",
        "db|web",
        "host-.*",
        ".*",
        ".+",
        "prod",
        "host-[0-3]:9100",
        "a|",
        "http_.*_total",
        "xyz",
    ]);
    let ops = prop::sample::select(vec![
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::Regex,
        MatchOp::NotRegex,
    ]);
    (names, ops, values).prop_map(|(n, o, v)| Matcher::new(o, n, v).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn select_matches_a_naive_filter(
        ms in proptest::collection::vec(matcher_strategy(), 1..4),
        mint in -1000i64..200_000, len in 0i64..400_000,
    ) {
        static SHARED: std::sync::OnceLock<(tempfile::TempDir, Block)> = std::sync::OnceLock::new();
        let (_, b) = SHARED.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let b = build_block(dir.path(), model());
            (dir, b)
        });
        let m = model();
        let q = b.querier(mint, mint + len);
        // Like Prometheus, a series whose chunk overlaps the range is
        // selected even when no sample falls inside it.
        let mut got = collect(&q, &ms);
        got.retain(|s| !s.1.is_empty());
        let want = naive_select(&m, &ms, mint, mint + len);
        // collect_range over a sub-range agrees with plain iteration.
        let (lo, hi) = (mint + len / 3, mint + len / 2);
        for s in q.select_series(&ms).unwrap() {
            let mut out = Vec::new();
            s.sample_iter().collect_range(lo, hi, &mut out).unwrap();
            let all = s.samples().unwrap();
            let expect: Vec<i64> = all.iter().map(|x| x.t).filter(|t| *t >= lo && *t <= hi).collect();
            prop_assert_eq!(out.iter().map(|x| x.t).collect::<Vec<_>>(), expect);
        }
        prop_assert!(same(&got, &want), "matchers {:?}: got {} series, want {}", ms, got.len(), want.len());
    }
}

#[test]
fn label_names_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let b = build_block(dir.path(), model());
    let q = b.querier(i64::MIN, i64::MAX);
    assert_eq!(
        q.label_names(&[]).unwrap(),
        vec!["__name__", "env", "instance", "job"]
    );
    assert_eq!(
        q.label_values("job", &[]).unwrap(),
        vec!["api", "db", "web"]
    );
    let env = [Matcher::equal("env", "prod")];
    assert_eq!(
        q.label_values("instance", &env).unwrap(),
        vec!["host-0:9100", "host-1:9100", "host-2:9100"]
    );
    let up = [
        Matcher::equal("__name__", "up"),
        Matcher::equal("instance", "host-5:9100"),
    ];
    assert_eq!(
        q.label_names(&up).unwrap(),
        vec!["__name__", "instance", "job"]
    );
    assert_eq!(b.meta().stats.num_series, 21);
    assert_eq!(
        b.meta().stats.num_samples,
        model().iter().map(|s| s.1.len() as u64).sum::<u64>()
    );
}

#[test]
fn seek_skips_and_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let b = build_block(dir.path(), model());
    let q = b.querier(5_000, 300_000);
    let ss = q
        .select_series(&[
            Matcher::equal("instance", "host-6:9100"),
            Matcher::equal("job", "db"),
        ])
        .unwrap();
    assert_eq!(ss.len(), 1);
    let mut it = ss[0].sample_iter();
    assert_eq!(it.seek(0).unwrap().unwrap().t, 5_006);
    assert_eq!(it.seek(200_000).unwrap().unwrap().t, 200_006);
    assert_eq!(it.seek(100).unwrap().unwrap().t, 200_006);
    assert_eq!(it.next().unwrap().unwrap().t, 201_006);
    assert_eq!(it.seek(299_007).unwrap(), None);
    assert_eq!(it.next().unwrap(), None);
    // Stale markers survive bit for bit.
    let mut it = ss[0].sample_iter();
    assert_eq!(
        it.seek(17_000).unwrap().unwrap().v.to_bits(),
        STALE_NAN.to_bits()
    );
}

#[test]
fn tombstones_hide_samples_and_whole_series() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let b = build_block(dir.path(), m.clone());
    let job_db = [Matcher::equal("job", "db")];
    let n = b.delete(10_000, 20_000, &job_db).unwrap();
    assert_eq!(n, 7);
    assert_eq!(
        b.delete(
            0,
            1_000_000,
            &[
                Matcher::equal("instance", "host-0:9100"),
                Matcher::equal("job", "api")
            ]
        )
        .unwrap(),
        1
    );

    let check = |b: &Block| {
        let q = b.querier(i64::MIN, i64::MAX);
        let got = collect(&q, &[Matcher::new(MatchOp::Regex, "job", ".+").unwrap()]);
        let mut want = naive_select(
            &m,
            &[Matcher::new(MatchOp::Regex, "job", ".+").unwrap()],
            i64::MIN,
            i64::MAX,
        );
        want.retain(|(l, _)| {
            !(l.get("instance") == Some("host-0:9100") && l.get("job") == Some("api"))
        });
        for (l, s) in &mut want {
            if l.get("job") == Some("db") {
                s.retain(|x| x.t < 10_000 || x.t > 20_000);
            }
        }
        assert!(same(&got, &want));
    };
    check(&b);
    assert_eq!(b.meta().stats.num_tombstones, 8);
    // Persisted: a fresh open sees the same.
    let again = Block::open(b.dir()).unwrap();
    check(&again);
    again.clear_tombstones().unwrap();
    let q = again.querier(i64::MIN, i64::MAX);
    assert_eq!(
        collect(&q, &[Matcher::new(MatchOp::Regex, "job", ".+").unwrap()]).len(),
        21
    );
}

#[test]
fn corrupt_chunk_fails_only_that_series() {
    let dir = tempfile::tempdir().unwrap();
    let b = build_block(dir.path(), model());
    let seg = b.dir().join("chunks").join("000001");
    let ss = b
        .querier(i64::MIN, i64::MAX)
        .select_series(&[
            Matcher::equal("instance", "host-3:9100"),
            Matcher::equal("job", "web"),
        ])
        .unwrap();
    let r = ss[0].chunk_metas()[0].chunk_ref as usize;
    drop(ss);
    let dir_path = b.dir().to_path_buf();
    drop(b);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[r + 6] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let b = Block::open(&dir_path).unwrap();
    let q = b.querier(i64::MIN, i64::MAX);
    let before = chunk_corruptions_total();
    let bad = q
        .select_series(&[
            Matcher::equal("instance", "host-3:9100"),
            Matcher::equal("job", "web"),
        ])
        .unwrap();
    match bad[0].samples() {
        Err(StorageError::Corruption { location, reason }) => {
            assert!(
                location.contains("host-3:9100") && location.contains(&b.meta().ulid.to_string()),
                "{location}"
            );
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(chunk_corruptions_total() > before);
    let good = q
        .select_series(&[Matcher::equal("instance", "host-4:9100")])
        .unwrap();
    assert_eq!(good.len(), 3);
    for s in good {
        assert!(s.samples().is_ok());
    }
}

#[test]
fn unfinished_builder_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut b = BlockBuilder::create(dir.path(), Ulid::new(), 0, 10, ["a", "b"]).unwrap();
        b.add_series(
            &Labels::from_pairs(&[("a", "b")]),
            &[EncodedChunk::from_samples(&[Sample::new(1, 1.0)]).unwrap()],
        )
        .unwrap();
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

mod backfill {
    use super::*;
    use vigil_model::storage::Series;

    fn read_all(dir: &std::path::Path) -> std::collections::BTreeMap<Labels, Vec<(i64, u64)>> {
        let mut out = std::collections::BTreeMap::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let b = Block::open(&e.unwrap().path()).unwrap();
            let m = b.meta();
            for s in b
                .querier(i64::MIN, i64::MAX)
                .select_series(&[Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()])
                .unwrap()
            {
                let e: &mut Vec<(i64, u64)> = out.entry(s.labels().clone()).or_default();
                for x in s.samples().unwrap() {
                    assert!(x.t >= m.min_time && x.t < m.max_time);
                    e.push((x.t, x.v.to_bits()));
                }
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn any_order_in_all_samples_out(
            samples in proptest::collection::vec((0usize..5, 0i64..30_000_000, any::<f64>()), 1..600),
            sorted in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut samples = samples;
            if sorted {
                samples.sort_by_key(|s| (s.0, s.1));
            }
            let mut w = BlockWriter::new(dir.path(), DEFAULT_BLOCK_DURATION);
            let mut want: std::collections::BTreeMap<Labels, Vec<(i64, u64)>> = Default::default();
            for (s, t, v) in &samples {
                let l = Labels::from_pairs(&[("__name__", "m"), ("s", &s.to_string())]);
                w.append(&l, *t, *v).unwrap();
                let e = want.entry(l).or_default();
                if !e.iter().any(|x| x.0 == *t) {
                    e.push((*t, v.to_bits()));
                }
            }
            let dups = samples.len() as u64 - want.values().map(|v| v.len() as u64).sum::<u64>();
            let st = w.stats().clone();
            let blocks = w.flush().unwrap();
            for v in want.values_mut() { v.sort(); }
            prop_assert_eq!(read_all(dir.path()), want);
            let windows: BTreeSet<i64> = samples.iter().map(|s| s.1 / DEFAULT_BLOCK_DURATION).collect();
            prop_assert_eq!(blocks.len(), windows.len());
            prop_assert_eq!(st.samples, samples.len() as u64);
            let total: u64 = blocks.iter().map(|b| b.meta.stats.num_samples).sum();
            prop_assert_eq!(total + dups, samples.len() as u64);
        }
    }

    #[test]
    fn block_durations_like_promtool() {
        let h = 3_600_000;
        assert_eq!(compatible_block_duration(0), 2 * h);
        assert_eq!(compatible_block_duration(2 * h), 2 * h);
        assert_eq!(compatible_block_duration(5 * h), 2 * h);
        assert_eq!(compatible_block_duration(6 * h), 6 * h);
        assert_eq!(compatible_block_duration(24 * h), 18 * h);
        assert_eq!(compatible_block_duration(100_000 * h), 2 * h * 3i64.pow(9));
    }

    #[test]
    fn flush_before_writes_early_and_rejects_late() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::new(dir.path(), DEFAULT_BLOCK_DURATION);
        let l = Labels::from_pairs(&[("__name__", "m")]);
        let id = w.series_id(&l).unwrap();
        for t in 0..1000 {
            w.add(id, t * 15_000, t as f64).unwrap();
        }
        w.flush_before(DEFAULT_BLOCK_DURATION).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(w.add(id, 5, 1.0), Err(StorageError::OutOfBounds));
        let blocks = w.flush().unwrap();
        // 1000 samples at 15 s span 4h10m: three 2h windows.
        assert_eq!(blocks.len(), 3);
        let first = &blocks[0].meta;
        assert_eq!((first.min_time, first.max_time), (0, 7_185_000 + 1));
        assert_eq!(first.stats.num_samples, 480);
        assert_eq!(first.stats.num_chunks, 4);
    }
}
