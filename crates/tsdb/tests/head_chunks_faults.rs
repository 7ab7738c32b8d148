//! Damaged `chunks_head/` files: found at start, the bad file and every
//! file after it are removed and their data rebuilt from the WAL (counted in
//! `mmap_chunk_corruptions`); met by a query, only the series whose chunk is
//! bad fails, with an error naming it.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use vigil_model::storage::{Appendable, Queryable, StorageError};
use vigil_model::{Labels, MatchOp, Matcher};
use vigil_tsdb::head::{Head, HeadOptions};

type Data = BTreeMap<Labels, Vec<(i64, u64)>>;

const SERIES: usize = 8;

fn opts() -> HeadOptions {
    HeadOptions {
        // Small files: the data spans many of them.
        head_chunk_file_size: 1024,
        ..HeadOptions::default()
    }
}

fn labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "m"), ("s", &s.to_string())])
}

fn read(h: &Head, matchers: &[Matcher]) -> Result<Data, StorageError> {
    let q = h.querier(i64::MIN, i64::MAX)?;
    let mut out = Data::new();
    for s in q.select(None, matchers)? {
        let mut it = s.iter();
        let mut v = Vec::new();
        while let Some(x) = it.next()? {
            v.push((x.t, x.v.to_bits()));
        }
        out.insert(s.labels().clone(), v);
    }
    Ok(out)
}

fn all() -> Vec<Matcher> {
    vec![Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()]
}

/// Writes 1,200 samples to each series (10 chunks each), closes the head
/// and returns what it held.
fn fill(dir: &Path) -> Data {
    let h = Head::open(dir, opts()).unwrap();
    let mut refs = [0u64; SERIES];
    for i in 0..1200i64 {
        let mut app = h.appender();
        for (s, r) in refs.iter_mut().enumerate() {
            *r = app
                .append(*r, &labels(s), i * 15_000, (i * 7 + s as i64) as f64)
                .unwrap();
        }
        app.commit().unwrap();
    }
    let want = read(&h, &all()).unwrap();
    h.close().unwrap();
    want
}

fn chunk_files(dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut v: Vec<(u32, PathBuf)> = std::fs::read_dir(dir.join("chunks_head"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, at: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, at).unwrap();
}

#[test]
fn corrupt_middle_file_is_removed_with_later_files_and_rebuilt_from_wal() {
    let dir = tempfile::tempdir().unwrap();
    let want = fill(dir.path());
    let files = chunk_files(dir.path());
    assert!(
        files.len() >= 6,
        "want several chunk files, got {}",
        files.len()
    );
    let k = files.len() / 2;
    let len = std::fs::metadata(&files[k].1).unwrap().len();
    flip(&files[k].1, len / 2);
    let damaged = std::fs::read(&files[k].1).unwrap();

    let h = Head::open(dir.path(), opts()).unwrap();
    assert_eq!(h.stats().mmap_chunk_corruptions.load(Ordering::Relaxed), 1);
    assert_eq!(h.stats().wal_corruptions.load(Ordering::Relaxed), 0);
    let left: Vec<u32> = chunk_files(dir.path()).iter().map(|f| f.0).collect();
    // Files before the bad one stay; it and the later ones were removed
    // (replay writes its chunks to new files numbered from the bad one on,
    // so a file of that number may exist again, with other bytes).
    for (seq, _) in &files[..k] {
        assert!(
            left.contains(seq),
            "intact file {seq} was removed: {left:?}"
        );
    }
    if let Ok(now) = std::fs::read(&files[k].1) {
        assert_ne!(now, damaged, "the corrupt file was kept");
    }
    assert_eq!(read(&h, &all()).unwrap(), want, "data rebuilt from the WAL");
    drop(h);
    // And the repaired directory is clean on the next start.
    let h = Head::open(dir.path(), opts()).unwrap();
    assert_eq!(h.stats().mmap_chunk_corruptions.load(Ordering::Relaxed), 0);
    assert_eq!(read(&h, &all()).unwrap(), want);
}

#[test]
fn out_of_sequence_file_is_removed_with_later_files_and_rebuilt_from_wal() {
    let dir = tempfile::tempdir().unwrap();
    let want = fill(dir.path());
    let files = chunk_files(dir.path());
    assert!(files.len() >= 4);
    // A gap: the file after it is out of sequence.
    let k = files.len() / 2;
    std::fs::remove_file(&files[k].1).unwrap();
    let h = Head::open(dir.path(), opts()).unwrap();
    assert_eq!(h.stats().mmap_chunk_corruptions.load(Ordering::Relaxed), 1);
    let left: Vec<u32> = chunk_files(dir.path()).iter().map(|f| f.0).collect();
    for (seq, _) in &files[..k] {
        assert!(
            left.contains(seq),
            "intact file {seq} was removed: {left:?}"
        );
    }
    assert_eq!(read(&h, &all()).unwrap(), want);
}

#[test]
fn corrupt_head_chunk_at_query_time_fails_only_its_series() {
    let dir = tempfile::tempdir().unwrap();
    let h = Head::open(dir.path(), opts()).unwrap();
    let mut refs = [0u64; SERIES];
    for i in 0..300i64 {
        let mut app = h.appender();
        for (s, r) in refs.iter_mut().enumerate() {
            *r = app.append(*r, &labels(s), i * 15_000, i as f64).unwrap();
        }
        app.commit().unwrap();
    }
    h.close().unwrap();
    let want = read(&h, &all()).unwrap();
    // The first file's first chunk belongs to the series that cut first.
    let files = chunk_files(dir.path());
    let first = &files[0].1;
    // File header (8 bytes) + series ref (8) + mint (8) + maxt (8) +
    // encoding (1) + length varint (1-2): flip a data byte.
    let series_ref = {
        let b = std::fs::read(first).unwrap();
        u64::from_be_bytes(b[8..16].try_into().unwrap())
    };
    flip(first, 8 + 8 + 8 + 8 + 1 + 2 + 5);
    let err = read(&h, &all()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StorageError::Corruption { .. }), "{msg}");
    assert!(msg.contains("s=\""), "error should name the series: {msg}");
    assert_eq!(h.stats().chunk_corruptions.load(Ordering::Relaxed), 1);
    // Find which series it was from the message; every other series reads.
    let bad = (0..SERIES)
        .find(|s| msg.contains(&format!("s=\"{s}\"")))
        .expect("series named");
    for s in (0..SERIES).filter(|&s| s != bad) {
        let got = read(&h, &[Matcher::equal("s", s.to_string())]).unwrap();
        assert_eq!(got[&labels(s)], want[&labels(s)]);
    }
    assert!(read(&h, &[Matcher::equal("s", bad.to_string())]).is_err());
    assert!(series_ref > 0);
}
