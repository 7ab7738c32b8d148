//! `tools::verify`: a sound data dir passes; corrupt meta, index and chunk
//! bytes are each pinned to their block; the head's WAL is read too.

use vigil_model::storage::Appendable;
use vigil_model::Labels;
use vigil_tsdb::block::{list_block_dirs, BlockWriter, DEFAULT_BLOCK_DURATION};
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::tools::verify;

const H: i64 = 3_600_000;

fn make_dir(dir: &std::path::Path) {
    let mut w = BlockWriter::new(dir, DEFAULT_BLOCK_DURATION);
    for i in 0..30 {
        let l = Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())]);
        let id = w.series_id(&l).unwrap();
        for t in (0..8 * H).step_by(30_000) {
            w.add(id, t, (t / 1000 + i) as f64).unwrap();
        }
    }
    w.flush().unwrap();
    let db = Db::open(dir, DbOptions::default()).unwrap();
    let mut app = db.appender();
    for t in (8 * H..9 * H).step_by(15_000) {
        app.append(0, &Labels::from_pairs(&[("__name__", "head")]), t, 1.0)
            .unwrap();
    }
    app.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn sound_dir_passes_and_corruption_is_pinned_to_its_block() {
    let dir = tempfile::tempdir().unwrap();
    make_dir(dir.path());
    let r = verify(dir.path()).unwrap();
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.blocks.len(), 4);
    assert!(
        r.blocks
            .iter()
            .all(|b| b.samples == 30 * 240 && b.warnings.is_empty()),
        "{r}"
    );
    assert!(r.head.wal_records >= 2, "{r}");
    let text = r.to_string();
    assert_eq!(text.lines().count(), 5);
    assert!(text.lines().last().unwrap().starts_with("head ok"));

    let blocks = list_block_dirs(dir.path()).unwrap();
    // Block 0: a data byte of a chunk (CRC catches it).
    let seg = blocks[0].1.join("chunks/000001");
    let mut b = std::fs::read(&seg).unwrap();
    b[100] ^= 0x01;
    std::fs::write(&seg, b).unwrap();
    // Block 1: a byte inside the series section of the index.
    let idx = blocks[1].1.join("index");
    let mut b = std::fs::read(&idx).unwrap();
    let at = b.len() / 3;
    b[at] ^= 0x40;
    std::fs::write(&idx, b).unwrap();
    // Block 2: meta.json garbage.
    std::fs::write(blocks[2].1.join("meta.json"), b"{not json").unwrap();

    let r = verify(dir.path()).unwrap();
    assert!(!r.is_ok());
    let mut bad = r.corrupt_blocks();
    bad.sort();
    let mut want: Vec<String> = blocks[..3].iter().map(|(u, _)| u.to_string()).collect();
    want.sort();
    assert_eq!(bad, want, "{r}");
    let text = r.to_string();
    assert!(
        text.contains(&format!("block {} CORRUPT", blocks[0].0)),
        "{text}"
    );
    assert!(
        text.contains(&format!("block {} ok", blocks[3].0)),
        "{text}"
    );
}

#[test]
fn torn_wal_tail_is_only_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    make_dir(dir.path());
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .map(|e| e.path())
        .collect();
    segs.sort();
    let last = segs.last().unwrap().clone();
    let b = std::fs::read(&last).unwrap();
    let used = b.iter().rposition(|&x| x != 0).unwrap() + 1;
    // Flip a byte inside the last record's payload: a checksum error in the
    // newest segment, as a crash mid-write can leave.
    let mut t = b.clone();
    t[used - 2] ^= 0xff;
    std::fs::write(&last, &t).unwrap();
    let r = verify(dir.path()).unwrap();
    assert!(
        r.head.problems.is_empty() && !r.head.warnings.is_empty(),
        "{r}"
    );
}
