//! `ReadOnlyDb`: opening a data directory while a writer `Db` appends,
//! compacts and truncates its WAL in another thread; and proof that a
//! read-only open writes nothing, even on a directory a repair would touch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_model::storage::{Appendable, Queryable};
use vigil_model::{Labels, MatchOp, Matcher};
use vigil_tsdb::db::{Db, DbOptions, ReadOnlyDb};

const SERIES: usize = 20;
const STEP: i64 = 1000;

fn series(i: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "ro_metric"), ("i", &i.to_string())])
}

fn value(i: usize, t: i64) -> f64 {
    (t / STEP) as f64 * 10.0 + i as f64
}

/// Small ranges and files, so a short run compacts, checkpoints the WAL and
/// deletes segments and head chunk files while readers open the dir.
fn writer_opts() -> DbOptions {
    let mut o = DbOptions::from_flags(Some(1_000_000 * 3_600_000), None, Some(60_000), None);
    o.head.wal_segment_size = 32 * 1024;
    o.head.head_chunk_file_size = 16 * 1024;
    o
}

/// Every series' samples in `[mint, maxt]`, as (t, v) pairs.
fn read_all(db: &dyn Queryable) -> BTreeMap<Labels, Vec<(i64, f64)>> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let m = [Matcher::new(MatchOp::Equal, "__name__", "ro_metric").unwrap()];
    let mut out = BTreeMap::new();
    for s in q.select(None, &m).unwrap() {
        let mut v = Vec::new();
        let mut it = s.iter();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v));
        }
        assert!(out.insert(s.labels().clone(), v).is_none(), "series twice");
    }
    out
}

/// Asserts each series holds exactly t = 0, STEP, ..., with no gap and no
/// duplicate, through at least `committed`.
fn check_prefix(got: &BTreeMap<Labels, Vec<(i64, f64)>>, committed: i64) {
    if committed < 0 {
        return;
    }
    assert_eq!(got.len(), SERIES, "series seen: {}", got.len());
    for i in 0..SERIES {
        let v = &got[&series(i)];
        for (k, &(t, x)) in v.iter().enumerate() {
            assert_eq!(t, k as i64 * STEP, "series {i}: gap or duplicate at {k}");
            assert_eq!(x, value(i, t), "series {i} at {t}");
        }
        let last = v.last().map_or(-1, |s| s.0);
        assert!(
            last >= committed,
            "series {i}: committed through {committed}, read-only view ends at {last}"
        );
    }
}

#[test]
fn opens_while_a_writer_appends_compacts_and_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), writer_opts()).unwrap();
    let committed = Arc::new(AtomicI64::new(-1));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, committed, stop) = (db.clone(), committed.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut app = db.appender();
            let mut refs = [0u64; SERIES];
            let mut t = 0;
            while !stop.load(Ordering::Relaxed) {
                for (i, r) in refs.iter_mut().enumerate() {
                    *r = app.append(*r, &series(i), t, value(i, t)).unwrap();
                }
                app.commit().unwrap();
                committed.store(t, Ordering::Release);
                if (t / STEP) % 40 == 39 {
                    db.compact().unwrap();
                }
                t += STEP;
            }
            t
        })
    };
    let started = Instant::now();
    let mut opens = 0;
    // Bounded: enough opens to race several compactions and truncations.
    while (opens < 40 || committed.load(Ordering::Relaxed) < 1200 * STEP)
        && started.elapsed() < Duration::from_secs(20)
    {
        let c = committed.load(Ordering::Acquire);
        let ro = ReadOnlyDb::open(dir.path()).unwrap();
        check_prefix(&read_all(&ro), c);
        opens += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let end = writer.join().unwrap();
    assert!(
        !db.blocks().is_empty(),
        "the writer compacted while readers opened"
    );
    assert!(end / STEP >= 1200, "writer made progress: {end}");
    let checkpoints = db
        .head()
        .stats()
        .checkpoint_creations
        .load(Ordering::Relaxed);
    assert!(checkpoints > 2, "the WAL was checkpointed: {checkpoints}");
    let c = committed.load(Ordering::Acquire);
    let ro = ReadOnlyDb::open(dir.path()).unwrap();
    assert!(!ro.blocks().is_empty() && ro.head().num_series() > 0);
    let got = read_all(&ro);
    check_prefix(&got, c);
    // Nothing beyond what was committed.
    assert!(got.values().all(|v| v.last().map(|s| s.0) == Some(c)));
    db.close().unwrap();
}

/// Path, size and content of every file under `dir`, and every directory.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.clone(), None);
                stack.push(p);
            } else {
                out.insert(p.clone(), Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn read_only_open_writes_nothing_even_where_a_server_would_repair() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut last = 0;
    {
        let db = Db::open(d, writer_opts()).unwrap();
        let mut app = db.appender();
        for k in 0..400 {
            let t = k * STEP;
            for i in 0..SERIES {
                app.append(0, &series(i), t, value(i, t)).unwrap();
            }
            app.commit().unwrap();
            // One compaction: a block and a checkpoint, and later full
            // chunks still in head chunk files.
            if k == 199 {
                db.compact().unwrap();
            }
            last = t;
        }
        db.close().unwrap();
    }
    let ro = ReadOnlyDb::open(d).unwrap();
    assert!(!ro.blocks().is_empty());
    let full = read_all(&ro);
    check_prefix(&full, last);
    drop(ro);
    assert!(vigil_tsdb::wal::last_checkpoint(&d.join("wal"))
        .unwrap()
        .is_some());
    // What Db::open would clean up or repair: a leftover temp dir, a
    // corrupt block, a torn WAL tail, a torn head chunk file, no lock file.
    std::fs::remove_file(d.join("lock")).unwrap();
    std::fs::create_dir(d.join("01HZZZZZZZZZZZZZZZZZZZZZZZ.tmp-for-creation")).unwrap();
    let bad = d.join("01HZZZZZZZZZZZZZZZZZZZZZZY");
    std::fs::create_dir_all(bad.join("chunks")).unwrap();
    std::fs::write(bad.join("meta.json"), b"{not json").unwrap();
    std::fs::write(bad.join("index"), b"").unwrap();
    let segs = vigil_tsdb::wal::list_segments(&d.join("wal")).unwrap();
    let seg = &segs.last().unwrap().path;
    let mut b = std::fs::read(seg).unwrap();
    b.extend_from_slice(&[0x01, 0x00, 0x40, 0xde, 0xad]);
    std::fs::write(seg, &b).unwrap();
    let chunk_files: Vec<_> = std::fs::read_dir(d.join("chunks_head"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let last_file = chunk_files.iter().max().unwrap();
    let len = std::fs::metadata(last_file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last_file)
        .unwrap()
        .set_len(len - 7)
        .unwrap();

    let before = snapshot(d);
    let ro = ReadOnlyDb::open(d).unwrap();
    // The torn chunk's samples come from the WAL: nothing is missing.
    assert_eq!(read_all(&ro), full);
    drop(ro);
    let after = snapshot(d);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    assert!(before == after, "a read-only open changed the directory");
    assert!(!d.join("lock").exists());
    assert!(!d.join("quarantine").exists());
}

#[test]
fn read_only_open_does_not_need_the_lock_and_sees_committed_head_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    let mut app = db.appender();
    for k in 0..300 {
        for i in 0..SERIES {
            app.append(0, &series(i), k * STEP, value(i, k * STEP))
                .unwrap();
        }
        app.commit().unwrap();
    }
    // An uncommitted batch is invisible.
    for i in 0..SERIES {
        app.append(0, &series(i), 300 * STEP, 1.0).unwrap();
    }
    let ro = Db::open_read_only(dir.path()).unwrap();
    assert!(ro.blocks().is_empty());
    let got = read_all(&ro);
    check_prefix(&got, 299 * STEP);
    assert!(got.values().all(|v| v.len() == 300));
    assert_eq!(ro.min_time(), Some(0));
    assert_eq!(ro.max_time(), Some(299 * STEP));
    app.rollback().unwrap();
    db.close().unwrap();
    assert!(ReadOnlyDb::open(&dir.path().join("missing")).is_err());
}
