//! The head series limit: new series beyond it are refused (counted),
//! existing series keep ingesting, racing appenders never overshoot it, and
//! WAL replay honours it, so a restart cannot rebuild the blow-up.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use vigil_model::storage::{Appendable, Queryable, StorageError};
use vigil_model::{Labels, MatchOp, Matcher};
use vigil_tsdb::head::{Head, HeadOptions};

fn labels(name: &str, i: usize) -> Labels {
    Labels::from_pairs(&[("__name__", name), ("i", &i.to_string())])
}

fn count(h: &Head, name: &str) -> BTreeMap<usize, usize> {
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = BTreeMap::new();
    for s in q
        .select(
            None,
            &[Matcher::new(MatchOp::Equal, "__name__", name).unwrap()],
        )
        .unwrap()
    {
        let i: usize = s.labels().get("i").unwrap().parse().unwrap();
        let mut it = s.iter();
        let mut n = 0;
        while it.next().unwrap().is_some() {
            n += 1;
        }
        out.insert(i, n);
    }
    out
}

#[test]
fn racing_appenders_never_overshoot_and_existing_series_keep_ingesting() {
    let dir = tempfile::tempdir().unwrap();
    const LIMIT: usize = 1000;
    let h = Head::open(
        dir.path(),
        HeadOptions {
            max_series: LIMIT,
            ..HeadOptions::default()
        },
    )
    .unwrap();
    // 100 steady series first.
    let mut app = h.appender();
    for i in 0..100 {
        app.append(0, &labels("steady", i), 0, 1.0).unwrap();
    }
    app.commit().unwrap();
    // Four appenders race to create 4 x 500 new series.
    std::thread::scope(|s| {
        for w in 0..4 {
            let h = h.clone();
            s.spawn(move || {
                let mut app = h.appender();
                for i in 0..500 {
                    match app.append(0, &labels("exploding", w * 500 + i), 0, 1.0) {
                        Ok(_) | Err(StorageError::SeriesLimit { limit: LIMIT }) => {}
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                app.commit().unwrap();
            });
        }
    });
    assert_eq!(h.num_series(), LIMIT as u64);
    assert_eq!(
        h.stats().series_limit_rejections.load(Ordering::Relaxed),
        2000 - 900
    );
    // Existing series (of both kinds) still take samples.
    let mut app = h.appender();
    for i in 0..100 {
        app.append(0, &labels("steady", i), 1000, 2.0).unwrap();
    }
    app.commit().unwrap();
    assert!(count(&h, "steady").values().all(|&n| n == 2));
    assert_eq!(count(&h, "exploding").len(), 900);
}

#[test]
fn wal_replay_honours_a_lower_limit() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = Head::open(dir.path(), HeadOptions::default()).unwrap();
        for t in 0..10 {
            let mut app = h.appender();
            for i in 0..2000 {
                app.append(0, &labels("m", i), t * 1000, t as f64).unwrap();
            }
            app.commit().unwrap();
        }
        h.close().unwrap();
    }
    let h = Head::open(
        dir.path(),
        HeadOptions {
            max_series: 500,
            ..HeadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(h.num_series(), 500);
    assert_eq!(
        h.stats().series_limit_rejections.load(Ordering::Relaxed),
        1500
    );
    // The series kept are the first ones created, with all their samples.
    let got = count(&h, "m");
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (0..500).collect::<Vec<_>>()
    );
    assert!(got.values().all(|&n| n == 10));
    // And the head stays at the limit.
    let mut app = h.appender();
    assert_eq!(
        app.append(0, &labels("m", 1999), 20_000, 1.0),
        Err(StorageError::SeriesLimit { limit: 500 })
    );
    app.append(0, &labels("m", 0), 20_000, 1.0).unwrap();
    app.commit().unwrap();
}
