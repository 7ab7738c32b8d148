//! A full disk under the head and the DB: commits fail with a clear error
//! instead of crashing or corrupting the WAL, ingestion turns read-only and
//! resumes by itself when space returns, compaction leaves no partial
//! block, retention still frees space, and everything committed survives a
//! restart. Uses small tmpfs mounts made by the test; skips (printing why)
//! where mounting is not allowed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_model::storage::{Appendable, Queryable, StorageError};
use vigil_model::{Labels, Matcher};
use vigil_tsdb::block::{BlockWriter, DEFAULT_BLOCK_DURATION};
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::head::{Head, HeadOptions};

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "skipping: cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

const SERIES: usize = 50;

fn labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "disk_full"), ("s", &s.to_string())])
}

fn commit_batch(head: &Head, t: i64) -> Result<(), StorageError> {
    let mut app = head.appender();
    for s in 0..SERIES {
        app.append(0, &labels(s), t, (t + s as i64) as f64)?;
    }
    app.commit()
}

#[test]
fn full_disk_fails_commits_then_recovers() {
    let root = tempfile::tempdir().unwrap();
    let Some(mnt) = Mount::tmpfs(&root.path().join("mnt"), "4m") else {
        return;
    };
    let data = mnt.0.join("data");
    let opts = HeadOptions {
        wal_segment_size: 256 * 1024,
        chunk_range: 60_000,
        wal_compression: false,
        ..HeadOptions::default()
    };
    let head = Head::open(&data, opts.clone()).unwrap();
    let mut committed = Vec::new();
    let mut t = 1_000_000i64;
    let sref = {
        let mut app = head.appender();
        let r = app
            .append(0, &labels(0), t - 1000, (t - 1000) as f64)
            .unwrap();
        app.commit().unwrap();
        r
    };
    // Leave little room, then write until a commit fails.
    let filler = mnt.0.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 3 * 1024 * 1024]);
    let mut failures = 0;
    for _ in 0..20_000 {
        match commit_batch(&head, t) {
            Ok(()) => committed.push(t),
            Err(e) => {
                assert!(
                    e.to_string().to_lowercase().contains("no space left"),
                    "disk-full error should say so: {e}"
                );
                failures += 1;
                if failures >= 3 {
                    break;
                }
            }
        }
        t += 1000;
    }
    assert!(failures >= 3, "the disk never filled");
    // Read-only now: appends are refused at once, as such.
    assert!(head.disk_full().is_read_only());
    assert!(head.read_only());
    let e = commit_batch(&head, t).unwrap_err();
    assert!(matches!(e, StorageError::ReadOnly(_)), "{e}");
    // So is the by-ref path the scrape cache takes for known series.
    let mut app = head.appender();
    let by_ref = app.append_by_ref(sref, t, 1.0);
    assert!(
        matches!(by_ref, Some(Err(StorageError::ReadOnly(_)))),
        "{by_ref:?}"
    );
    drop(app);
    // Queries keep working while full.
    let q = head.querier(i64::MIN, i64::MAX).unwrap();
    assert_eq!(
        q.select(None, &[Matcher::equal("__name__", "disk_full")])
            .unwrap()
            .len(),
        SERIES
    );
    drop(q);
    // Space returns: ingestion resumes without intervention, within the
    // probe interval.
    std::fs::remove_file(&filler).unwrap();
    let freed = std::time::Instant::now();
    loop {
        match commit_batch(&head, t) {
            Ok(()) => {
                committed.push(t);
                t += 1000;
                break;
            }
            Err(e) => assert!(matches!(e, StorageError::ReadOnly(_)), "{e}"),
        }
        assert!(
            freed.elapsed() < std::time::Duration::from_secs(5),
            "no resumption"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!head.read_only());
    assert_eq!(head.disk_full().times_entered(), 1);
    for _ in 0..50 {
        commit_batch(&head, t).unwrap();
        committed.push(t);
        t += 1000;
    }
    drop(head);
    let head = Head::open(&data, opts).unwrap();
    let q = head.querier(i64::MIN, i64::MAX).unwrap();
    let got = q
        .select(None, &[Matcher::equal("__name__", "disk_full")])
        .unwrap();
    assert_eq!(got.len(), SERIES);
    for s in &got {
        let idx: i64 = s.labels().get("s").unwrap().parse().unwrap();
        let mut it = s.iter();
        let mut have = std::collections::HashSet::new();
        while let Some(x) = it.next().unwrap() {
            assert_eq!(x.v, (x.t + idx) as f64);
            have.insert(x.t);
        }
        for t in &committed {
            assert!(
                have.contains(t),
                "committed sample at {t} of series {idx} lost"
            );
        }
    }
    assert_eq!(
        head.stats()
            .wal_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        head.stats()
            .mmap_chunk_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

const H: i64 = 3_600_000;

fn db_labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "db_full"), ("s", &s.to_string())])
}

/// Every sample of `db_full` series, per series index.
fn read_db(db: &Db) -> BTreeMap<usize, Vec<(i64, u64)>> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = BTreeMap::new();
    for s in q
        .select(None, &[Matcher::equal("__name__", "db_full")])
        .unwrap()
    {
        let idx: usize = s.labels().get("s").unwrap().parse().unwrap();
        let mut it = s.iter();
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v.to_bits()));
        }
        out.insert(idx, v);
    }
    out
}

fn tmp_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

/// Fills the file system of `dir` up to `leave` free bytes.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let filler = dir.join("filler");
    // SAFETY: statvfs fills the struct we pass; the path is NUL-terminated.
    let free = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut st), 0);
        st.f_bavail as u64 * st.f_frsize as u64
    };
    let f = std::fs::File::create(&filler).unwrap();
    f.set_len(0).unwrap();
    let mut w = std::io::BufWriter::new(f);
    let chunk = vec![1u8; 64 * 1024];
    let mut left = free.saturating_sub(leave);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if w.write_all(&chunk[..n]).is_err() {
            break;
        }
        left -= n as u64;
    }
    let _ = w.flush();
    filler
}

/// Compaction on a full disk: the head block cannot be written, its
/// temporary directory is removed, no block is marked failed, the head is
/// read-only, queries answer, and size retention still deletes the oldest
/// block. With space back, the next compaction persists the head and a
/// restart finds every sample.
#[test]
fn compaction_on_a_full_disk_leaves_nothing_half_written() {
    let root = tempfile::tempdir().unwrap();
    let Some(mnt) = Mount::tmpfs(&root.path().join("mnt"), "24m") else {
        return;
    };
    let data = mnt.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Many series in the old blocks, few in the head: the head's growth
    // past the retention limit stays well under the oldest block's size.
    const N: usize = 200;
    const N_HEAD: usize = 10;
    let mut want: BTreeMap<usize, Vec<(i64, u64)>> = BTreeMap::new();
    // Three old blocks, 2h each, for retention to delete.
    {
        let mut w = BlockWriter::new(&data, DEFAULT_BLOCK_DURATION);
        for s in 0..N {
            let id = w.series_id(&db_labels(s)).unwrap();
            let mut t = 0;
            while t < 6 * H {
                let v = (t / 1000 + s as i64) as f64;
                w.add(id, t, v).unwrap();
                want.entry(s).or_default().push((t, v.to_bits()));
                t += 15_000;
            }
        }
        w.flush().unwrap();
    }
    let block_bytes: u64 = vigil_tsdb::block::list_block_dirs(&data)
        .unwrap()
        .iter()
        .map(|(_, p)| vigil_tsdb::block::dir_size(p))
        .sum();
    let (oldest, oldest_dir) = vigil_tsdb::block::list_block_dirs(&data).unwrap()[0].clone();
    let oldest_bytes = vigil_tsdb::block::dir_size(&oldest_dir);
    let head_bytes = |d: &Path| {
        vigil_tsdb::block::dir_size(&d.join("wal"))
            + vigil_tsdb::block::dir_size(&d.join("chunks_head"))
    };
    let append = |db: &Db, from: i64, to: i64, want: &mut BTreeMap<usize, Vec<(i64, u64)>>| {
        let mut refs = [0u64; N_HEAD];
        let mut t = from;
        while t < to {
            let mut app = db.appender();
            for (s, r) in refs.iter_mut().enumerate() {
                let v = (t / 1000 + s as i64) as f64;
                *r = app.append(*r, &db_labels(s), t, v).unwrap();
                want.entry(s).or_default().push((t, v.to_bits()));
            }
            app.commit().unwrap();
            t += 15_000;
        }
    };
    let mut opts = DbOptions::from_flags(None, Some(1 << 40), None, None);
    opts.head.wal_compression = false;
    opts.head.wal_segment_size = 256 * 1024;
    // Size retention that the head's growth below will exceed by far less
    // than the oldest block's size.
    let mut limit_opts = opts.clone();
    {
        let db = Db::open(&data, opts.clone()).unwrap();
        append(&db, 6 * H, 7 * H, &mut want);
        db.close().unwrap();
    }
    limit_opts.retention_size = block_bytes + head_bytes(&data) + 16 * 1024;
    let db = Db::open(&data, limit_opts.clone()).unwrap();
    assert_eq!(db.blocks().len(), 3);
    // The head now spans 6h..10h (more than 1.5 block ranges) and has grown
    // past the retention margin.
    append(&db, 7 * H, 10 * H, &mut want);
    let over = db.size().saturating_sub(limit_opts.retention_size);
    assert!(
        over > 0 && over < oldest_bytes,
        "test setup: the head should exceed the limit by less than a block ({over} vs {oldest_bytes})"
    );
    let before = read_db(&db);
    assert_eq!(before, want);

    let filler = fill(&mnt.0, 16 * 1024);
    let err = db.compact().unwrap_err();
    assert!(
        err.to_string().contains("No space left on device"),
        "compaction should fail for lack of space: {err}"
    );
    assert!(
        tmp_dirs(&data).is_empty(),
        "leftovers: {:?}",
        tmp_dirs(&data)
    );
    assert!(db.head().disk_full().is_read_only());
    assert!(db.blocks().iter().all(|b| !b.meta().compaction.failed));
    // Retention ran anyway and freed the oldest block.
    let ulids: Vec<_> = db.blocks().iter().map(|b| b.meta().ulid).collect();
    assert_eq!(
        ulids.len(),
        2,
        "size retention should delete the oldest block"
    );
    assert!(!ulids.contains(&oldest));
    assert_eq!(
        db.stats()
            .size_retentions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // Queries still answer: everything but the deleted block's 2 hours.
    for v in want.values_mut() {
        v.retain(|x| x.0 >= 2 * H);
    }
    assert_eq!(read_db(&db), want);

    // Space returns: the head is written as blocks, ingestion resumes.
    std::fs::remove_file(&filler).unwrap();
    let freed = std::time::Instant::now();
    while db.head().read_only() {
        assert!(freed.elapsed() < std::time::Duration::from_secs(5));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    append(&db, 10 * H, 10 * H + 60_000, &mut want);
    db.compact().unwrap();
    assert!(
        db.blocks().len() >= 3,
        "head not persisted: {:?}",
        db.blocks()
    );
    assert_eq!(read_db(&db), want);
    db.close().unwrap();
    drop(db);
    let db = Db::open(&data, limit_opts).unwrap();
    assert_eq!(read_db(&db), want);
}

/// Block compaction on a full disk: no partial output, the source blocks
/// are not marked failed (so they compact once space returns), nothing is
/// lost.
#[test]
fn block_compaction_on_a_full_disk_is_retried_when_space_returns() {
    let root = tempfile::tempdir().unwrap();
    let Some(mnt) = Mount::tmpfs(&root.path().join("mnt"), "16m") else {
        return;
    };
    let data = mnt.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut want: BTreeMap<usize, Vec<(i64, u64)>> = BTreeMap::new();
    {
        let mut w = BlockWriter::new(&data, DEFAULT_BLOCK_DURATION);
        for s in 0..100 {
            let id = w.series_id(&db_labels(s)).unwrap();
            let mut t = 0;
            while t < 10 * H {
                let v = ((t / 1000) as f64).sin() * s as f64;
                w.add(id, t, v).unwrap();
                want.entry(s).or_default().push((t, v.to_bits()));
                t += 15_000;
            }
        }
        w.flush().unwrap();
    }
    let db = Db::open(
        &data,
        DbOptions::from_flags(Some(1000 * H), None, None, None),
    )
    .unwrap();
    assert_eq!(db.blocks().len(), 5);
    let filler = fill(&mnt.0, 4 * 1024);
    let err = db.compact().unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert!(
        tmp_dirs(&data).is_empty(),
        "leftovers: {:?}",
        tmp_dirs(&data)
    );
    assert_eq!(db.blocks().len(), 5);
    assert!(db.blocks().iter().all(|b| !b.meta().compaction.failed));
    assert!(db.head().disk_full().is_read_only());
    assert_eq!(read_db(&db), want);

    std::fs::remove_file(&filler).unwrap();
    db.compact().unwrap();
    // The first three merge into one 6h block.
    assert_eq!(db.blocks().len(), 3, "the first three blocks should merge");
    assert_eq!(read_db(&db), want);
    drop(db);
    let db = Db::open(
        &data,
        DbOptions::from_flags(Some(1000 * H), None, None, None),
    )
    .unwrap();
    assert_eq!(read_db(&db), want);
}

/// Head chunk files on a full disk: a chunk whose write failed is reported
/// (so the head keeps it in memory), a file that cannot be sealed stays
/// active with every chunk it was given, and once space returns all chunks
/// that were accepted read back, also after reopening.
#[test]
fn head_chunk_writes_on_a_full_disk_lose_nothing_accepted() {
    use vigil_tsdb::head_chunks::ChunkDiskMapper;
    let root = tempfile::tempdir().unwrap();
    let Some(mnt) = Mount::tmpfs(&root.path().join("mnt"), "8m") else {
        return;
    };
    let dir = mnt.0.join("chunks_head");
    let m = ChunkDiskMapper::open_with_size(&dir, 512 * 1024).unwrap();
    let data = |i: u64| -> Vec<u8> { (0..300).map(|b| (b as u64 * 31 + i) as u8).collect() };
    let mut accepted = Vec::new();
    let mut refused = 0;
    let filler = fill(&mnt.0, 600 * 1024);
    for i in 0..4000u64 {
        match m.write_chunk(i, i as i64, i as i64 + 1, 1, &data(i), false) {
            Ok(r) => accepted.push((i, r)),
            Err(e) => {
                assert!(e.to_string().contains("No space left on device"), "{e}");
                refused += 1;
            }
        }
        if i % 500 == 0 {
            let _ = m.cut_file();
        }
    }
    assert!(refused > 0, "the disk never filled");
    assert!(m.take_disk_full());
    assert!(
        m.cut_file().is_err(),
        "sealing cannot succeed on a full disk"
    );
    // Reads never need space.
    for (i, r) in &accepted {
        assert_eq!(m.chunk(*r).unwrap().data(), &data(*i)[..], "chunk {i}");
    }
    std::fs::remove_file(&filler).unwrap();
    m.cut_file().unwrap();
    m.close().unwrap();
    for (i, r) in &accepted {
        assert_eq!(m.chunk(*r).unwrap().data(), &data(*i)[..], "chunk {i}");
    }
    drop(m);
    let m = ChunkDiskMapper::open_with_size(&dir, 512 * 1024).unwrap();
    let mut found = std::collections::HashMap::new();
    m.iterate_all(|c| {
        found.insert(c.chunk_ref, c.series_ref);
    })
    .unwrap();
    for (i, r) in &accepted {
        assert_eq!(found.get(r), Some(i), "chunk {i} lost");
        assert_eq!(m.chunk(*r).unwrap().data(), &data(*i)[..], "chunk {i}");
    }
}
