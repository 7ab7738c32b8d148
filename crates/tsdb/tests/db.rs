//! The DB end to end on real directories: head compaction into blocks,
//! block compaction (including vertical compaction of backfilled blocks),
//! retention by time and size, the lock file, leftovers cleanup, quarantine,
//! deletion. Every test checks that no sample is lost or duplicated.

use std::collections::BTreeMap;
use std::path::Path;

use vigil_model::storage::{Appendable, Queryable};
use vigil_model::{Labels, MatchOp, Matcher};
use vigil_tsdb::block::{BlockWriter, DEFAULT_BLOCK_DURATION};
use vigil_tsdb::db::{Db, DbOptions};

const H: i64 = 3_600_000;
type Data = BTreeMap<Labels, Vec<(i64, u64)>>;

fn opts() -> DbOptions {
    let mut o = DbOptions::from_flags(Some(1000 * 24 * H), None, None, None);
    o.head.wal_segment_size = 1 << 20;
    o
}

fn all() -> Vec<Matcher> {
    vec![Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()]
}

fn read(db: &dyn Queryable, mint: i64, maxt: i64) -> Data {
    let q = db.querier(mint, maxt).unwrap();
    let mut out = Data::new();
    for s in q.select(None, &all()).unwrap() {
        let mut it = s.iter();
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v.to_bits()));
        }
        if !v.is_empty() {
            assert!(
                out.insert(s.labels().clone(), v).is_none(),
                "series twice: {}",
                s.labels()
            );
        }
    }
    out
}

fn series(i: usize) -> Labels {
    Labels::from_pairs(&[
        ("__name__", "test_metric"),
        ("i", &i.to_string()),
        ("job", "t"),
    ])
}

/// Appends `n` series every 15s over `[from, to)` in batches per timestamp.
fn append(db: &Db, n: usize, from: i64, to: i64, want: &mut Data) {
    let mut app = db.appender();
    let mut refs = vec![0u64; n];
    let mut t = from;
    while t < to {
        for (i, r) in refs.iter_mut().enumerate() {
            let v = (t / 1000) as f64 + i as f64;
            *r = app.append(*r, &series(i), t, v).unwrap();
            want.entry(series(i)).or_default().push((t, v.to_bits()));
        }
        app.commit().unwrap();
        t += 15_000;
    }
}

fn block_count(dir: &Path) -> usize {
    vigil_tsdb::block::list_block_dirs(dir).unwrap().len()
}

#[test]
fn head_compaction_keeps_every_sample_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        append(&db, 20, 0, 9 * H, &mut want);
        assert_eq!(read(&db, i64::MIN, i64::MAX), want);
        db.compact().unwrap();
        // 9h of data: [0,2h), [2h,4h), [4h,6h) persisted; head keeps >= 6h.
        let blocks = db.blocks();
        assert_eq!(blocks.len(), 3, "{blocks:?}");
        assert!(db.head().min_time() >= 6 * H);
        assert_eq!(read(&db, i64::MIN, i64::MAX), want);
        // Narrow ranges across the block/head border.
        let part = read(&db, 5 * H, 7 * H);
        let n: usize = part.values().map(Vec::len).sum();
        assert_eq!(n, 20 * (2 * H / 15_000 + 1) as usize);
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    // More data, then blocks compact into the 6h range.
    append(&db, 20, 9 * H, 20 * H, &mut want);
    db.compact().unwrap();
    let metas: Vec<_> = db.blocks().iter().map(|b| b.meta()).collect();
    assert!(
        metas
            .iter()
            .any(|m| m.compaction.level == 2 && m.max_time - m.min_time == 6 * H),
        "{metas:?}"
    );
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
}

#[test]
fn lock_file_keeps_a_second_process_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(dir.path().join("lock").exists());
    let err = Db::open(dir.path(), opts())
        .err()
        .expect("second open must fail");
    assert!(err.to_string().contains("lock DB directory"), "{err}");
    db.close().unwrap();
    drop(db);
    Db::open(dir.path(), opts()).unwrap();
}

/// Writes blocks with `BlockWriter` (2h windows) for `series` over a range.
fn backfill(dir: &Path, n: usize, from: i64, to: i64, step: i64, value: f64, want: &mut Data) {
    let mut w = BlockWriter::new(dir, DEFAULT_BLOCK_DURATION);
    for i in 0..n {
        let id = w.series_id(&series(i)).unwrap();
        let mut t = from;
        while t < to {
            w.add(id, t, value + i as f64).unwrap();
            want.entry(series(i))
                .or_default()
                .push((t, (value + i as f64).to_bits()));
            t += step;
        }
    }
    w.flush().unwrap();
}

fn normalise(mut d: Data) -> Data {
    for v in d.values_mut() {
        v.sort();
        v.dedup_by_key(|x| x.0);
    }
    d
}

#[test]
fn retention_by_time_deletes_old_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    backfill(dir.path(), 3, 0, 10 * 24 * H, 60_000, 1.0, &mut want);
    let n = block_count(dir.path());
    assert_eq!(n, 120);
    let o = DbOptions::from_flags(Some(2 * 24 * H), None, None, None);
    let db = Db::open(dir.path(), o).unwrap();
    let blocks = db.blocks();
    let newest = blocks.iter().map(|b| b.meta().max_time).max().unwrap();
    for b in blocks.iter() {
        assert!(newest - b.meta().max_time <= 2 * 24 * H);
    }
    assert_eq!(blocks.len(), 25);
    assert_eq!(block_count(dir.path()), 25);
    let got = read(&db, i64::MIN, i64::MAX);
    let oldest = blocks.iter().map(|b| b.meta().min_time).min().unwrap();
    let want: Data = want
        .into_iter()
        .map(|(l, v)| (l, v.into_iter().filter(|x| x.0 >= oldest).collect()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn retention_by_size_holds_the_dir_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    backfill(dir.path(), 50, 0, 3 * 24 * H, 15_000, 2.0, &mut want);
    let total: u64 = vigil_tsdb::tools::list(dir.path())
        .unwrap()
        .iter()
        .map(|b| b.size)
        .sum();
    let limit = total / 3;
    let o = DbOptions::from_flags(None, Some(limit), None, None);
    let db = Db::open(dir.path(), o).unwrap();
    assert!(db.size() <= limit, "{} > {limit}", db.size());
    assert!(db.blocks().len() >= 5);
    // The newest blocks are the ones kept.
    let kept_min = db.blocks().iter().map(|b| b.meta().min_time).min().unwrap();
    assert!(kept_min > 24 * H);
    assert_eq!(
        db.stats()
            .size_retentions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn backfilled_overlapping_blocks_are_compacted_vertically() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    // Two backfills over the same 2h windows, partly the same samples.
    backfill(dir.path(), 5, 0, 6 * H, 30_000, 3.0, &mut want);
    backfill(dir.path(), 5, 3 * H, 12 * H, 60_000, 3.0, &mut want);
    let want = normalise(want);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    db.compact().unwrap();
    let blocks = db.blocks();
    let metas: Vec<_> = blocks.iter().map(|b| b.meta()).collect();
    for w in metas.windows(2) {
        assert!(w[1].min_time >= w[0].max_time, "overlap left: {metas:?}");
    }
    assert!(
        db.stats()
            .vertical_compactions
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    let samples: u64 = metas.iter().map(|m| m.stats.num_samples).sum();
    assert_eq!(samples, want.values().map(|v| v.len() as u64).sum::<u64>());
}

#[test]
fn leftovers_are_cleaned_and_compacted_parents_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    backfill(dir.path(), 4, 0, 6 * H, 60_000, 4.0, &mut want);
    let parents = vigil_tsdb::block::list_block_dirs(dir.path()).unwrap();
    assert_eq!(parents.len(), 3);
    // Compact them by hand, as a crash before the parents' deletion leaves it.
    let blocks: Vec<_> = parents
        .iter()
        .map(|(_, p)| vigil_tsdb::block::Block::open(p).unwrap())
        .collect();
    vigil_tsdb::compact::compact_blocks(dir.path(), &blocks)
        .unwrap()
        .unwrap();
    drop(blocks);
    std::fs::create_dir(
        dir.path()
            .join("01ARYZ6S41TSV4RRFFQ69G5FAV.tmp-for-creation"),
    )
    .unwrap();
    std::fs::create_dir(
        dir.path()
            .join("01ARYZ6S41TSV4RRFFQ69G5FAW.tmp-for-deletion"),
    )
    .unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.blocks().len(), 1);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    for (u, _) in parents {
        assert!(!names.contains(&u.to_string()));
    }
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
}

#[test]
fn corrupt_blocks_are_quarantined_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    backfill(dir.path(), 4, 0, 6 * H, 60_000, 5.0, &mut want);
    let blocks = vigil_tsdb::block::list_block_dirs(dir.path()).unwrap();
    let (bad, bad_dir) = &blocks[1];
    let idx = bad_dir.join("index");
    let mut b = std::fs::read(&idx).unwrap();
    let n = b.len();
    b[n - 10] ^= 0xff; // inside the TOC
    std::fs::write(&idx, b).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.blocks().len(), 2);
    assert!(dir
        .path()
        .join("quarantine")
        .join(bad.to_string())
        .join("index")
        .exists());
    assert_eq!(
        db.stats()
            .quarantined_blocks
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let got = read(&db, i64::MIN, i64::MAX);
    let want: Data = want
        .into_iter()
        .map(|(l, v)| {
            (
                l,
                v.into_iter()
                    .filter(|x| x.0 < 2 * H || x.0 >= 4 * H)
                    .collect(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn delete_and_clean_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    backfill(dir.path(), 4, 0, 4 * H, 60_000, 6.0, &mut want);
    let db = Db::open(dir.path(), opts()).unwrap();
    append(&db, 4, 4 * H, 5 * H, &mut want);
    let m = [Matcher::equal("i", "2")];
    db.delete(H, 4 * H + 600_000, &m).unwrap();
    for (l, v) in want.iter_mut() {
        if l.get("i") == Some("2") {
            v.retain(|x| x.0 < H || x.0 > 4 * H + 600_000);
        }
    }
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    db.clean_tombstones().unwrap();
    assert!(db.blocks().iter().all(|b| b.tombstones().is_empty()));
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
}

#[test]
fn background_compaction_persists_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.compaction_interval = std::time::Duration::from_millis(50);
    let db = Db::open(dir.path(), o).unwrap();
    let mut want = Data::new();
    // 6h of data: [0,2h) and [2h,4h) go to blocks, the head keeps [4h,6h).
    append(&db, 5, 0, 6 * H, &mut want);
    let handle = db.start_background_compaction();
    let start = std::time::Instant::now();
    while db.blocks().len() < 2 && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(db.blocks().len(), 2);
    db.close().unwrap();
    handle.join().unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
}

#[test]
fn block_missing_its_index_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    backfill(dir.path(), 2, 0, 4 * H, 60_000, 7.0, &mut want);
    let blocks = vigil_tsdb::block::list_block_dirs(dir.path()).unwrap();
    std::fs::remove_file(blocks[0].1.join("index")).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert!(dir
        .path()
        .join("quarantine")
        .join(blocks[0].0.to_string())
        .exists());
    // Quarantine survives restarts and is not loaded again.
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(
        db.stats()
            .quarantined_blocks
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
