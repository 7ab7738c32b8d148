//! `Db::snapshot`: a copy of the data directory's blocks that stays valid
//! while the DB keeps running, as Prometheus's admin snapshot makes it.
//!
//! Every block's files are hard-linked into `<dir>/<ulid>/` (blocks are
//! immutable and meta.json/tombstones are replaced by rename, so a link is a
//! frozen copy); where linking fails (another filesystem) the file is
//! copied. With the head, its samples are written as one more block. The
//! snapshot never touches the DB's own files.

use std::path::Path;

use vigil_model::storage::{Querier, StorageError};

use super::Db;
use crate::binfmt::io_error;
use crate::block::Block;
use crate::chunks::CHUNKS_DIR;
use crate::compact::{write_block_from_series, SeriesChunks};
use crate::index::INDEX_FILENAME;
use crate::meta::{sync_dir, BlockMeta, Ulid, META_FILENAME};
use crate::tombstones::{write_tombstones, Tombstones, TOMBSTONES_FILENAME};

/// What a snapshot wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Blocks linked (or copied) into the snapshot.
    pub blocks: usize,
    /// Files that had to be copied because a hard link failed.
    pub copied_files: usize,
    /// The block written from the head, if it had samples.
    pub head_block: Option<Ulid>,
}

impl Db {
    /// Writes a snapshot of every block, and with `with_head` of the head's
    /// samples (deletions applied) as a new block, into `dir` (created if
    /// missing). Compaction and retention wait meanwhile, so no block goes
    /// away half-linked.
    pub fn snapshot(&self, dir: &Path, with_head: bool) -> Result<SnapshotStats, StorageError> {
        if same_dir(dir, self.dir()) {
            return Err(StorageError::Io(
                "cannot snapshot into base directory".to_string(),
            ));
        }
        if dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.parse::<Ulid>().is_ok())
        {
            return Err(StorageError::Io("dir must not be a valid ULID".to_string()));
        }
        std::fs::create_dir_all(dir).map_err(|e| io_error("create dir", dir, e))?;
        let _g = self.lock_cmtx();
        let mut stats = SnapshotStats::default();
        for b in self.blocks().iter() {
            tracing::info!(block = %b.meta().ulid, "Snapshotting block");
            stats.copied_files += link_block(b, dir).map_err(|e| {
                StorageError::Io(format!(
                    "error snapshotting block: {}: {e}",
                    b.dir().display()
                ))
            })?;
            stats.blocks += 1;
        }
        if with_head {
            stats.head_block = self
                .write_head_snapshot(dir)
                .map_err(|e| StorageError::Io(format!("snapshot head block: {e}")))?
                .map(|m| m.ulid);
        }
        sync_dir(dir)?;
        Ok(stats)
    }

    /// The whole head, in-order and out-of-order samples, as one block
    /// `[mint, maxt + 1)`; `None` when the head holds no samples.
    fn write_head_snapshot(&self, dir: &Path) -> Result<Option<BlockMeta>, StorageError> {
        let h = self.head();
        let (lo, hi) = (h.min_time(), h.max_time());
        if lo == i64::MAX || hi == i64::MIN {
            return Ok(None);
        }
        let (mint, maxt) = match h.ooo_time_range() {
            Some((a, b)) => (lo.min(a), hi.max(b)),
            None => (lo, hi),
        };
        let maxt = maxt.saturating_add(1);
        let q = h.head_querier(i64::MIN, i64::MAX);
        let mut symbols: Vec<String> = Vec::new();
        for n in q.label_names(&[])? {
            symbols.extend(q.label_values(&n, &[])?);
            symbols.push(n);
        }
        symbols.sort_unstable();
        symbols.dedup();
        let series = h
            .compaction_series(mint, maxt)
            .map(|r| r.map(|s| -> SeriesChunks { (s.labels, s.chunks) }));
        let meta = write_block_from_series(dir, mint, maxt, &symbols, series)?;
        if let Some(m) = &meta {
            tracing::info!(block = %m.ulid, mint, maxt, samples = m.stats.num_samples, "snapshot: wrote head block");
        }
        Ok(meta)
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Links (or copies) meta.json, index, tombstones and the chunk segments of
/// `b` into `<dir>/<ulid>/`. Returns the number of files copied.
fn link_block(b: &Block, dir: &Path) -> Result<usize, StorageError> {
    let src = b.dir();
    let dst = dir.join(b.meta().ulid.to_string());
    let dst_chunks = dst.join(CHUNKS_DIR);
    std::fs::create_dir_all(&dst_chunks).map_err(|e| io_error("create dir", &dst_chunks, e))?;
    let mut copied = 0;
    for name in [META_FILENAME, INDEX_FILENAME] {
        copied += link_or_copy(&src.join(name), &dst.join(name))?;
    }
    let stones = src.join(TOMBSTONES_FILENAME);
    if stones.exists() {
        copied += link_or_copy(&stones, &dst.join(TOMBSTONES_FILENAME))?;
    } else {
        // Prometheus's tools expect the file; no file means no tombstones.
        write_tombstones(&dst, &Tombstones::new())?;
    }
    let src_chunks = src.join(CHUNKS_DIR);
    let rd = std::fs::read_dir(&src_chunks).map_err(|e| io_error("read dir", &src_chunks, e))?;
    for e in rd {
        let e = e.map_err(|e| io_error("read dir", &src_chunks, e))?;
        if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            copied += link_or_copy(&e.path(), &dst_chunks.join(e.file_name()))?;
        }
    }
    sync_dir(&dst_chunks)?;
    sync_dir(&dst)?;
    Ok(copied)
}

/// Hard-links `src` to `dst`, copying (and fsyncing) when the link fails,
/// e.g. across filesystems. Returns 1 if it copied.
fn link_or_copy(src: &Path, dst: &Path) -> Result<usize, StorageError> {
    match std::fs::hard_link(src, dst) {
        Ok(()) => Ok(0),
        Err(link_err) => {
            tracing::debug!(src = %src.display(), error = %link_err, "hard link failed; copying");
            std::fs::copy(src, dst).map_err(|e| io_error("copy", src, e))?;
            let f = std::fs::File::open(dst).map_err(|e| io_error("open", dst, e))?;
            f.sync_all().map_err(|e| io_error("fsync", dst, e))?;
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbOptions;
    use std::os::unix::fs::MetadataExt;
    use vigil_model::storage::{Appendable, Queryable};
    use vigil_model::{Labels, Matcher};

    const HOUR: i64 = 3_600_000;

    fn dump(q: &dyn Queryable) -> Vec<(String, Vec<(i64, f64)>)> {
        let q = q.querier(i64::MIN, i64::MAX).unwrap();
        let mut out = Vec::new();
        for s in q
            .select(
                None,
                &[Matcher::new(vigil_model::MatchOp::Regex, "__name__", ".+").unwrap()],
            )
            .unwrap()
        {
            let mut it = s.iter();
            let mut v = Vec::new();
            while let Some(x) = it.next().unwrap() {
                v.push((x.t, x.v));
            }
            out.push((s.labels().to_string(), v));
        }
        out
    }

    /// A DB with one persisted block (0..2h) and head samples after it.
    fn db_with_block_and_head(dir: &Path) -> Db {
        let db = Db::open(dir, DbOptions::default()).unwrap();
        for t in (0..5 * HOUR).step_by(60_000) {
            let mut app = db.appender();
            for job in ["a", "b"] {
                app.append(
                    0,
                    &Labels::from_pairs(&[("__name__", "up"), ("job", job)]),
                    t,
                    (t / 60_000) as f64,
                )
                .unwrap();
            }
            app.commit().unwrap();
        }
        db.compact().unwrap();
        assert!(!db.blocks().is_empty(), "compaction wrote a block");
        db
    }

    #[test]
    fn snapshot_links_blocks_and_writes_the_head() {
        let data = tempfile::tempdir().unwrap();
        let db = db_with_block_and_head(data.path());
        // A deletion in a block and in the head must show in the snapshot.
        let m = [Matcher::equal("job", "b")];
        db.delete(HOUR, 4 * HOUR, &m).unwrap();
        let want = dump(&db);
        let b_samples = &want.iter().find(|(l, _)| l.contains("\"b\"")).unwrap().1;
        assert!(b_samples.iter().all(|s| s.0 < HOUR || s.0 > 4 * HOUR));
        assert!(b_samples.len() > 100);

        let snap_parent = tempfile::tempdir().unwrap();
        let snap = snap_parent.path().join("20240101T000000Z-0123456789abcdef");
        let st = db.snapshot(&snap, true).unwrap();
        assert_eq!(st.blocks, db.blocks().len());
        assert_eq!(st.copied_files, 0, "same filesystem: all hard links");
        let head_ulid = st.head_block.expect("head had samples");

        // Block files are the very same inodes.
        for b in db.blocks().iter() {
            let u = b.meta().ulid.to_string();
            for f in [META_FILENAME, INDEX_FILENAME, TOMBSTONES_FILENAME] {
                let a = std::fs::metadata(b.dir().join(f)).unwrap();
                let c = std::fs::metadata(snap.join(&u).join(f)).unwrap();
                assert_eq!(a.ino(), c.ino(), "{u}/{f}");
            }
        }
        assert!(snap
            .join(head_ulid.to_string())
            .join(INDEX_FILENAME)
            .exists());

        // Opened on its own, the snapshot holds exactly what the DB served.
        let opened = Db::open(&snap, DbOptions::default()).unwrap();
        assert_eq!(opened.blocks().len(), st.blocks + 1);
        assert_eq!(dump(&opened), want);

        // Later deletions in the source do not leak into the snapshot.
        db.delete(i64::MIN, i64::MAX, &[Matcher::equal("job", "a")])
            .unwrap();
        drop(opened);
        let again = Db::open(&snap, DbOptions::default()).unwrap();
        assert_eq!(dump(&again), want);
    }

    #[test]
    fn snapshot_without_head_and_refusals() {
        let data = tempfile::tempdir().unwrap();
        let db = db_with_block_and_head(data.path());
        let parent = tempfile::tempdir().unwrap();
        let snap = parent.path().join("s");
        let st = db.snapshot(&snap, false).unwrap();
        assert_eq!(st.head_block, None);
        let opened = Db::open(&snap, DbOptions::default()).unwrap();
        let max_block_t = db.blocks().iter().map(|b| b.meta().max_time).max().unwrap();
        for (_, samples) in dump(&opened) {
            assert!(samples.iter().all(|s| s.0 < max_block_t));
            assert!(!samples.is_empty());
        }

        let e = db.snapshot(data.path(), true).unwrap_err().to_string();
        assert!(e.contains("cannot snapshot into base directory"), "{e}");
        let e = db
            .snapshot(&parent.path().join(Ulid::new().to_string()), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dir must not be a valid ULID"), "{e}");
    }

    #[test]
    fn snapshot_across_filesystems_copies() {
        // /dev/shm is a tmpfs, a different filesystem from the temp dir on
        // most Linux machines; where it is not, linking works and this
        // test has nothing to show.
        let shm = Path::new("/dev/shm");
        let data = tempfile::tempdir().unwrap();
        let other_fs = std::fs::metadata(shm)
            .map(|m| m.dev() != std::fs::metadata(data.path()).unwrap().dev())
            .unwrap_or(false);
        if !other_fs {
            eprintln!("SKIP: /dev/shm is not a separate filesystem here");
            return;
        }
        let db = db_with_block_and_head(data.path());
        let parent = tempfile::tempdir_in(shm).unwrap();
        let snap = parent.path().join("x");
        let st = db.snapshot(&snap, false).unwrap();
        assert!(st.copied_files >= 3 * st.blocks, "{st:?}");
        let opened = Db::open(&snap, DbOptions::default()).unwrap();
        assert_eq!(opened.blocks().len(), db.blocks().len());
    }

    #[test]
    fn copy_fallback_when_linking_fails() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"chunk bytes").unwrap();
        // A link onto an existing path fails; the copy then overwrites it,
        // the path a cross-device link takes.
        let dst = dir.path().join("dst");
        std::fs::write(&dst, b"old").unwrap();
        assert_eq!(link_or_copy(&src, &dst).unwrap(), 1);
        assert_eq!(std::fs::read(&dst).unwrap(), b"chunk bytes");
        let fresh = dir.path().join("fresh");
        assert_eq!(link_or_copy(&src, &fresh).unwrap(), 0);
    }
}
