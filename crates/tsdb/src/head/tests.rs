use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use vigil_model::{Sample, STALE_NAN, STALE_NAN_BITS};

fn lbl(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

fn m(op: vigil_model::MatchOp, n: &str, v: &str) -> Matcher {
    Matcher::new(op, n, v).unwrap()
}

fn eq(n: &str, v: &str) -> Matcher {
    Matcher::equal(n, v)
}

/// Every series matching `matchers` with its samples in `[mint, maxt]`.
fn query(h: &Head, mint: i64, maxt: i64, matchers: &[Matcher]) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let q = h.querier(mint, maxt).unwrap();
    let mut out = Vec::new();
    for s in q.select(None, matchers).unwrap() {
        let mut it = s.iter();
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v.to_bits()));
        }
        out.push((s.labels().clone(), v));
    }
    out
}

fn all(h: &Head) -> Vec<(Labels, Vec<(i64, u64)>)> {
    query(
        h,
        i64::MIN,
        i64::MAX,
        &[m(vigil_model::MatchOp::Regex, "__name__", ".+")],
    )
}

fn open(dir: &Path) -> Head {
    Head::open(dir, HeadOptions::default()).unwrap()
}

#[test]
fn append_commit_query() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let a_l = lbl(&[("__name__", "up"), ("job", "a")]);
    let b_l = lbl(&[("__name__", "up"), ("job", "b")]);
    let mut app = h.appender();
    let ra = app.append(0, &a_l, 1000, 1.0).unwrap();
    let rb = app.append(0, &b_l, 1000, 0.0).unwrap();
    assert_ne!(ra, rb);
    // Not visible before commit.
    assert!(all(&h).is_empty());
    app.commit().unwrap();
    assert_eq!(app.append(ra, &a_l, 2000, STALE_NAN).unwrap(), ra);
    app.commit().unwrap();
    let got = all(&h);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, a_l);
    assert_eq!(
        got[0].1,
        vec![(1000, 1.0f64.to_bits()), (2000, STALE_NAN_BITS)]
    );
    assert_eq!(got[1].1, vec![(1000, 0.0f64.to_bits())]);
    assert_eq!(h.min_time(), 1000);
    assert_eq!(h.max_time(), 2000);
    assert_eq!(h.stats().samples_appended.load(Ordering::Relaxed), 3);
    // Time range of the querier is honoured.
    assert_eq!(query(&h, 1500, 3000, &[eq("job", "a")])[0].1.len(), 1);
    assert!(query(&h, 3000, 4000, &[eq("job", "a")]).is_empty());
}

#[test]
fn rollback_and_drop_discard() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let l = lbl(&[("__name__", "x")]);
    let mut app = h.appender();
    app.append(0, &l, 1, 1.0).unwrap();
    app.rollback().unwrap();
    app.commit().unwrap();
    {
        let mut app = h.appender();
        app.append(0, &l, 2, 1.0).unwrap();
    }
    assert!(all(&h).is_empty());
    // The series exists (created at append, as in Prometheus) but is empty.
    assert_eq!(h.num_series(), 1);
}

#[test]
fn sample_errors_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let l = lbl(&[("__name__", "x")]);
    let mut app = h.appender();
    let r = app.append(0, &l, 10_000_000, 1.0).unwrap();
    app.commit().unwrap();
    // Same timestamp and value: ignored.
    assert_eq!(app.append(r, &l, 10_000_000, 1.0), Ok(r));
    assert_eq!(
        app.append(r, &l, 10_000_000, 2.0),
        Err(StorageError::DuplicateSampleForTimestamp)
    );
    assert_eq!(
        app.append(r, &l, 9_999_999, 2.0),
        Err(StorageError::OutOfOrderSample)
    );
    // Older than half a chunk range before the head's max time.
    assert_eq!(app.append(r, &l, 1, 2.0), Err(StorageError::OutOfBounds));
    app.commit().unwrap();
    let st = h.stats();
    assert_eq!(st.out_of_order_samples.load(Ordering::Relaxed), 1);
    assert_eq!(st.out_of_bound_samples.load(Ordering::Relaxed), 1);
    assert_eq!(st.duplicate_samples.load(Ordering::Relaxed), 1);
    assert_eq!(all(&h)[0].1.len(), 1);
    assert_eq!(
        app.append(0, &Labels::empty(), 10_000_001, 1.0),
        Err(StorageError::InvalidLabels("empty labelset".into()))
    );
}

#[test]
fn out_of_order_within_batch_is_dropped_at_commit() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let l = lbl(&[("__name__", "x")]);
    let mut app = h.appender();
    app.append(0, &l, 100, 1.0).unwrap();
    app.append(0, &l, 50, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(all(&h)[0].1, vec![(100, 1.0f64.to_bits())]);
    assert_eq!(h.stats().out_of_order_samples.load(Ordering::Relaxed), 1);
}

#[test]
fn matchers_follow_prometheus_semantics() {
    use vigil_model::MatchOp::*;
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let series = [
        lbl(&[("__name__", "m"), ("a", "1"), ("b", "x")]),
        lbl(&[("__name__", "m"), ("a", "2")]),
        lbl(&[("__name__", "m"), ("a", "10"), ("b", "y")]),
        lbl(&[("__name__", "n"), ("b", "x")]),
    ];
    let mut app = h.appender();
    for s in &series {
        app.append(0, s, 5, 1.0).unwrap();
    }
    app.commit().unwrap();
    let names = |ms: &[Matcher]| -> Vec<String> {
        query(&h, 0, 10, ms)
            .iter()
            .map(|(l, _)| l.to_string())
            .collect()
    };
    let idx = |ms: &[Matcher]| -> Vec<usize> {
        let got = names(ms);
        series
            .iter()
            .enumerate()
            .filter(|(_, s)| got.contains(&s.to_string()))
            .map(|(i, _)| i)
            .collect()
    };
    assert_eq!(idx(&[eq("__name__", "m")]), vec![0, 1, 2]);
    assert_eq!(
        idx(&[eq("__name__", "m"), m(NotEqual, "a", "1")]),
        vec![1, 2]
    );
    assert_eq!(idx(&[eq("__name__", "m"), eq("b", "")]), vec![1]);
    assert_eq!(idx(&[m(NotEqual, "b", "")]), vec![0, 2, 3]);
    assert_eq!(idx(&[m(Regex, "a", "1|2")]), vec![0, 1]);
    assert_eq!(idx(&[m(Regex, "a", "1.*")]), vec![0, 2]);
    assert_eq!(idx(&[m(Regex, "a", ".+")]), vec![0, 1, 2]);
    assert_eq!(idx(&[m(Regex, "a", ".*")]), vec![0, 1, 2, 3]);
    assert_eq!(idx(&[m(NotRegex, "a", "1|2")]), vec![2, 3]);
    assert_eq!(idx(&[m(Regex, "b", "x|")]), vec![0, 1, 3]);
    assert_eq!(idx(&[eq("nope", "z")]), Vec::<usize>::new());
    assert_eq!(idx(&[m(NotEqual, "nope", "z")]), vec![0, 1, 2, 3]);
    assert!(names(&[]).is_empty());
    // Select is sorted by labels.
    let got = names(&[m(Regex, "__name__", ".+")]);
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| {
        let la = series.iter().find(|s| s.to_string() == *a).unwrap();
        let lb = series.iter().find(|s| s.to_string() == *b).unwrap();
        la.cmp(lb)
    });
    assert_eq!(got, sorted);

    let q = h.querier(0, 10).unwrap();
    assert_eq!(q.label_values("a", &[]).unwrap(), vec!["1", "10", "2"]);
    assert_eq!(
        q.label_values("b", &[eq("__name__", "m")]).unwrap(),
        vec!["x", "y"]
    );
    assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "a", "b"]);
    assert_eq!(
        q.label_names(&[eq("__name__", "n")]).unwrap(),
        vec!["__name__", "b"]
    );
    assert!(h
        .querier(100, 200)
        .unwrap()
        .label_names(&[])
        .unwrap()
        .is_empty());
}

/// Samples spanning many chunks (so most live in chunks_head/) survive a
/// reopen with WAL replay and read back identically.
#[test]
fn many_chunks_reopen_identical() {
    let dir = tempfile::tempdir().unwrap();
    let want;
    {
        let h = open(dir.path());
        let mut refs = [0u64; 20];
        for i in 0..1000i64 {
            let mut app = h.appender();
            for (s, r) in refs.iter_mut().enumerate() {
                let l = lbl(&[("__name__", "m"), ("s", &s.to_string())]);
                *r = app
                    .append(*r, &l, i * 15_000, (i * s as i64) as f64 + 0.5)
                    .unwrap();
            }
            app.commit().unwrap();
        }
        want = all(&h);
        assert_eq!(want.len(), 20);
        assert_eq!(want[0].1.len(), 1000);
        assert!(h.stats().chunks_created.load(Ordering::Relaxed) >= 20 * 8);
        h.close().unwrap();
    }
    let h = open(dir.path());
    assert_eq!(all(&h), want);
    assert!(h.stats().mmap_chunk_corruptions.load(Ordering::Relaxed) == 0);
    // Appending continues after the replayed data with stable refs.
    let mut app = h.appender();
    let l = lbl(&[("__name__", "m"), ("s", "3")]);
    app.append(0, &l, 1000 * 15_000, 1.0).unwrap();
    app.commit().unwrap();
    drop(h);
    // A killed process (no close) replays too.
    let h = open(dir.path());
    assert_eq!(query(&h, 0, i64::MAX, &[eq("s", "3")])[0].1.len(), 1001);
}

#[test]
fn out_of_order_window_merges_in_queries_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let opts = HeadOptions {
        ooo_time_window: 100_000,
        ..HeadOptions::default()
    };
    let l = lbl(&[("__name__", "x")]);
    let want: Vec<(i64, u64)>;
    {
        let h = Head::open(dir.path(), opts.clone()).unwrap();
        let mut app = h.appender();
        for t in (100_000..200_000).step_by(10_000) {
            app.append(0, &l, t, t as f64).unwrap();
        }
        app.commit().unwrap();
        let mut app = h.appender();
        // 50 out-of-order samples (more than one OOO chunk), one duplicate
        // of an in-order timestamp, one too old.
        for k in 0..50 {
            let t = 150_000 + k * 7;
            app.append(0, &l, t, -(t as f64)).unwrap();
        }
        assert_eq!(app.append(0, &l, 100_000, 5.0), Ok(1));
        assert_eq!(
            app.append(0, &l, 10_000, 5.0),
            Err(StorageError::TooOldSample)
        );
        app.commit().unwrap();
        let got = all(&h);
        let ts: Vec<i64> = got[0].1.iter().map(|x| x.0).collect();
        let mut sorted = ts.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ts, sorted, "merged in time order without duplicates");
        // 150_000 is both in order and out of order: kept once.
        assert_eq!(ts.len(), 10 + 49);
        // In-order data wins a tie.
        assert_eq!(got[0].1[0], (100_000, 100_000f64.to_bits()));
        assert_eq!(h.stats().ooo_samples_appended.load(Ordering::Relaxed), 51);
        assert_eq!(h.stats().too_old_samples.load(Ordering::Relaxed), 1);
        want = got[0].1.clone();
        // Seek lands on out-of-order samples too.
        let q = h.querier(0, i64::MAX).unwrap();
        let s = q.select(None, &[eq("__name__", "x")]).unwrap();
        let mut it = s[0].iter();
        assert_eq!(it.seek(150_001).unwrap().map(|x| x.t), Some(150_007));
        assert_eq!(it.seek(150_001).unwrap().map(|x| x.t), Some(150_007));
        assert_eq!(it.next().unwrap().map(|x| x.t), Some(150_014));
    }
    let h = Head::open(dir.path(), opts).unwrap();
    assert_eq!(all(&h)[0].1, want);
}

#[test]
fn truncate_drops_old_data_series_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let opts = HeadOptions {
        wal_segment_size: 32 * 1024,
        ..HeadOptions::default()
    };
    let h = Head::open(dir.path(), opts.clone()).unwrap();
    let hour = 3_600_000i64;
    let mut app = h.appender();
    // "old" stops at 1h; "live" goes on to 4h.
    for t in (0..4 * hour).step_by(15_000) {
        if t < hour {
            app.append(0, &lbl(&[("__name__", "old")]), t, 1.0).unwrap();
        }
        app.append(0, &lbl(&[("__name__", "live")]), t, t as f64)
            .unwrap();
        // Filler so the WAL spans several segments.
        for k in 0..30 {
            app.append(
                0,
                &lbl(&[("__name__", "filler"), ("k", &k.to_string())]),
                t,
                (t * k) as f64,
            )
            .unwrap();
        }
        app.commit().unwrap();
    }
    let segs_before = crate::wal::list_segments(&dir.path().join("wal"))
        .unwrap()
        .len();
    assert!(segs_before > 3);
    h.truncate(2 * hour).unwrap();
    assert_eq!(h.num_series(), 31);
    assert_eq!(h.min_time(), 2 * hour);
    let live = || query(&h, i64::MIN, i64::MAX, &[eq("__name__", "live")]);
    let got = live();
    assert_eq!(got.len(), 1);
    assert!(query(&h, i64::MIN, i64::MAX, &[eq("__name__", "old")]).is_empty());
    assert!(
        got[0].1.first().unwrap().0 >= hour * 3 / 2,
        "whole chunks before 2h are gone"
    );
    assert!(crate::wal::last_checkpoint(&dir.path().join("wal"))
        .unwrap()
        .is_some());
    assert!(
        crate::wal::list_segments(&dir.path().join("wal"))
            .unwrap()
            .len()
            < segs_before
    );
    // Appending before the truncation point is now out of bounds.
    let mut app = h.appender();
    assert_eq!(
        app.append(0, &lbl(&[("__name__", "live")]), hour, 1.0),
        Err(StorageError::OutOfBounds)
    );
    drop(app);
    let want = live();
    h.close().unwrap();
    drop(h);
    // Replay from checkpoint + segments gives the same data (the DB passes
    // the block max time as min valid time).
    let h = Head::open(
        dir.path(),
        HeadOptions {
            min_valid_time: 2 * hour,
            ..opts
        },
    )
    .unwrap();
    let got = query(&h, i64::MIN, i64::MAX, &[eq("__name__", "live")]);
    assert_eq!(got.len(), 1);
    assert_eq!(h.num_series(), 31);
    // Replay may hold samples the in-memory head had already dropped with
    // their chunk; never fewer.
    let want_ts: Vec<i64> = want[0].1.iter().map(|x| x.0).collect();
    let got_ts: Vec<i64> = got[0]
        .1
        .iter()
        .map(|x| x.0)
        .filter(|t| *t >= want_ts[0])
        .collect();
    assert_eq!(got_ts, want_ts);
}

#[test]
fn compaction_series_sorted_and_recut() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let hour = 3_600_000i64;
    let names = ["b", "a", "c", "a2"];
    let mut app = h.appender();
    for t in (0..3 * hour).step_by(10_000) {
        for n in names {
            app.append(
                0,
                &lbl(&[("__name__", "m"), ("n", n)]),
                t,
                (t / 10_000) as f64,
            )
            .unwrap();
        }
        app.commit().unwrap();
    }
    let out: Vec<CompactionSeries> = h
        .compaction_series(hour / 2, 2 * hour + hour / 2)
        .collect::<Result<_, _>>()
        .unwrap();
    let got_names: Vec<&str> = out.iter().map(|s| s.labels.get("n").unwrap()).collect();
    assert_eq!(got_names, vec!["a", "a2", "b", "c"]);
    for s in &out {
        let mut ts = Vec::new();
        let mut prev_max = i64::MIN;
        for c in &s.chunks {
            assert!(c.mint > prev_max, "chunks do not overlap");
            prev_max = c.maxt;
            let mut it = c.iter().unwrap();
            let mut n = 0;
            while let Some(x) = it.next().unwrap() {
                ts.push(x.t);
                n += 1;
            }
            assert_eq!((c.mint, c.maxt), (ts[ts.len() - n], *ts.last().unwrap()));
        }
        let want: Vec<i64> = (hour / 2..2 * hour + hour / 2).step_by(10_000).collect();
        assert_eq!(ts, want);
    }
}

#[test]
fn delete_tombstones_hide_samples_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let l = lbl(&[("__name__", "x")]);
    {
        let h = open(dir.path());
        let mut app = h.appender();
        for t in 0..10 {
            app.append(0, &l, t * 1000, 1.0).unwrap();
        }
        app.commit().unwrap();
        h.delete(3000, 5000, &[eq("__name__", "x")]).unwrap();
        assert_eq!(all(&h)[0].1.len(), 7);
    }
    let h = open(dir.path());
    let ts: Vec<i64> = all(&h)[0].1.iter().map(|x| x.0).collect();
    assert_eq!(ts, vec![0, 1000, 2000, 6000, 7000, 8000, 9000]);
}

#[test]
fn parallel_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    std::thread::scope(|sc| {
        for w in 0..4 {
            let h = h.clone();
            sc.spawn(move || {
                let mut refs = [0u64; 50];
                for i in 0..200i64 {
                    let mut app = h.appender();
                    for (s, r) in refs.iter_mut().enumerate() {
                        let l = lbl(&[
                            ("__name__", "m"),
                            ("w", &w.to_string()),
                            ("s", &s.to_string()),
                        ]);
                        *r = app.append(*r, &l, i * 1000, i as f64).unwrap();
                    }
                    // Every worker also writes one shared series.
                    let _ = app.append(0, &lbl(&[("__name__", "shared")]), i * 1000 + w, 1.0);
                    app.commit().unwrap();
                }
            });
        }
    });
    let got = all(&h);
    assert_eq!(got.len(), 4 * 50 + 1);
    assert!(got
        .iter()
        .filter(|s| s.0.get("w").is_some())
        .all(|s| s.1.len() == 200));
    assert_eq!(h.num_series(), 201);
}

#[test]
fn series_limit() {
    let dir = tempfile::tempdir().unwrap();
    let h = Head::open(
        dir.path(),
        HeadOptions {
            max_series: 2,
            ..HeadOptions::default()
        },
    )
    .unwrap();
    let mut app = h.appender();
    app.append(0, &lbl(&[("a", "1")]), 1, 1.0).unwrap();
    app.append(0, &lbl(&[("a", "2")]), 1, 1.0).unwrap();
    assert_eq!(
        app.append(0, &lbl(&[("a", "3")]), 1, 1.0),
        Err(StorageError::SeriesLimit { limit: 2 })
    );
    // Existing series keep ingesting.
    app.append(0, &lbl(&[("a", "1")]), 2, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(h.stats().series_limit_rejections.load(Ordering::Relaxed), 1);
}

/// Random operations against a model: appends (in order per series, with
/// occasional rejected ones), commits, rollbacks, reopen (with or without
/// a clean close). The head must always return exactly what was committed.
#[derive(Clone, Debug)]
enum Op {
    Append { series: u8, dt: u16, v: u8 },
    Commit,
    Rollback,
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0u8..6, 0u16..40_000, any::<u8>()).prop_map(|(series, dt, v)| Op::Append { series, dt, v }),
        3 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn model_check(ops in proptest::collection::vec(op(), 1..400)) {
        let dir = tempfile::tempdir().unwrap();
        let mut h = open(dir.path());
        let mut app = h.head_appender();
        let mut committed: BTreeMap<u8, Vec<Sample>> = BTreeMap::new();
        let mut pending: Vec<(u8, Sample)> = Vec::new();
        let mut last_t: BTreeMap<u8, i64> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Append { series, dt, v } => {
                    let l = lbl(&[("__name__", "m"), ("s", &series.to_string())]);
                    let prev = last_t.get(&series).copied().unwrap_or(1_000_000);
                    // dt == 0 re-sends the last timestamp.
                    let t = prev + dt as i64;
                    let v = if v == 255 { STALE_NAN } else { v as f64 };
                    match app.append(0, &l, t, v) {
                        Ok(_) => {
                            let dup = committed.get(&series).and_then(|c| c.last()).is_some_and(|s| s.t == t)
                                || pending.iter().any(|(s, x)| *s == series && x.t == t);
                            if !dup {
                                pending.push((series, Sample::new(t, v)));
                                last_t.insert(series, t);
                            }
                        }
                        Err(StorageError::DuplicateSampleForTimestamp) => {}
                        Err(StorageError::OutOfBounds) => {}
                        Err(e) => prop_assert!(false, "unexpected error {e}"),
                    }
                }
                Op::Commit => {
                    app.commit().unwrap();
                    for (s, x) in pending.drain(..) {
                        committed.entry(s).or_default().push(x);
                    }
                }
                Op::Rollback => {
                    app.rollback().unwrap();
                    pending.clear();
                    last_t = committed.iter().map(|(s, v)| (*s, v.last().map_or(1_000_000, |x| x.t))).collect();
                }
                Op::Reopen { clean } => {
                    drop(app);
                    pending.clear();
                    last_t = committed.iter().map(|(s, v)| (*s, v.last().map_or(1_000_000, |x| x.t))).collect();
                    if clean {
                        h.close().unwrap();
                    }
                    drop(h);
                    h = open(dir.path());
                    app = h.head_appender();
                }
            }
        }
        let got = all(&h);
        let want: Vec<(Labels, Vec<(i64, u64)>)> = committed
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(s, v)| (
                lbl(&[("__name__", "m"), ("s", &s.to_string())]),
                v.iter().map(|x| (x.t, x.v.to_bits())).collect(),
            ))
            .collect();
        let mut want = want;
        want.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(got, want);
    }
}

/// Everything before a corrupt WAL tail is replayed on the first open (not
/// only after the repair), and the repaired WAL keeps new appends in order.
#[test]
fn torn_wal_tail_keeps_every_record_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let l = lbl(&[("__name__", "x")]);
    {
        let h = open(dir.path());
        for t in 0..50 {
            let mut app = h.appender();
            app.append(0, &l, t * 1000, t as f64).unwrap();
            app.commit().unwrap();
        }
    }
    let seg = crate::wal::list_segments(&dir.path().join("wal"))
        .unwrap()
        .pop()
        .unwrap();
    let len = std::fs::metadata(&seg.path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg.path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let h = open(dir.path());
    assert_eq!(h.stats().wal_corruptions.load(Ordering::Relaxed), 1);
    let got = all(&h);
    assert_eq!(got[0].1.len(), 49, "only the torn record is lost");
    let mut app = h.appender();
    app.append(0, &l, 49_000, 1.0).unwrap();
    app.commit().unwrap();
    drop(app);
    drop(h);
    let h = open(dir.path());
    assert_eq!(all(&h)[0].1.len(), 50);
}

/// A corrupt head chunk file is removed (with the files after it), counted,
/// and its data rebuilt from the WAL.
#[test]
fn corrupt_head_chunk_file_is_rebuilt_from_wal() {
    let dir = tempfile::tempdir().unwrap();
    let want;
    {
        let h = open(dir.path());
        let mut refs = [0u64; 10];
        for i in 0..600i64 {
            let mut app = h.appender();
            for (s, r) in refs.iter_mut().enumerate() {
                let l = lbl(&[("__name__", "m"), ("s", &s.to_string())]);
                *r = app
                    .append(*r, &l, i * 15_000, (i + s as i64) as f64)
                    .unwrap();
            }
            app.commit().unwrap();
        }
        want = all(&h);
        h.close().unwrap();
    }
    let files = crate::head_chunks::ChunkDiskMapper::open(&dir.path().join("chunks_head"))
        .unwrap()
        .file_seqs();
    assert!(!files.is_empty());
    let path = dir
        .path()
        .join("chunks_head")
        .join(format!("{:06}", files[0]));
    let mut b = std::fs::read(&path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x5a;
    std::fs::write(&path, &b).unwrap();
    let h = open(dir.path());
    assert_eq!(h.stats().mmap_chunk_corruptions.load(Ordering::Relaxed), 1);
    assert_eq!(all(&h), want);
}

/// Out-of-order samples a Prometheus with an OOO window left in `wbl/` are
/// replayed (whatever Vigil's own window) and merged in queries.
#[test]
fn inherited_wbl_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let l = lbl(&[("__name__", "x")]);
    let r;
    {
        let h = open(dir.path());
        let mut app = h.appender();
        r = app.append(0, &l, 100_000, 1.0).unwrap();
        app.append(r, &l, 200_000, 2.0).unwrap();
        app.commit().unwrap();
        h.close().unwrap();
    }
    {
        let wbl = crate::wal::Wal::open(&dir.path().join("wbl"), crate::wal::WalOptions::default())
            .unwrap();
        let mut buf = Vec::new();
        record::encode_samples(
            &[record::RefSample {
                series_ref: r,
                t: 150_000,
                v: 1.5,
            }],
            &mut buf,
        );
        wbl.log(&[&buf], &mut WalScratch::default()).unwrap();
    }
    let h = open(dir.path());
    let ts: Vec<i64> = all(&h)[0].1.iter().map(|x| x.0).collect();
    assert_eq!(ts, vec![100_000, 150_000, 200_000]);
    assert_eq!(h.ooo_time_range(), Some((150_000, 150_000)));
    // Once a truncation passes it, the WBL goes.
    h.truncate(160_000).unwrap();
    assert!(!dir.path().join("wbl").exists());
}
