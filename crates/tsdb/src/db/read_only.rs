//! A data directory opened for reading only (`vigil promql --data`,
//! `vigil tsdb dump`), safe while a server (Vigil or Prometheus) runs on it.
//!
//! Takes no lock and writes nothing: no temp-dir cleanup, no quarantine, no
//! retention, no WAL or head chunk writes. Unreadable blocks are skipped
//! with a warning. What it serves is the directory as it was when opened:
//! blocks, plus the WAL and `chunks_head/` replayed into an in-memory head.

use std::path::{Path, PathBuf};

use vigil_model::storage::{Querier, Queryable, StorageError};

use crate::block::{list_block_dirs, Block};
use crate::head::{Head, HeadOptions};
use crate::meta::Ulid;

use super::merge::MergeQuerier;
use super::Db;

/// A read-only view of a data directory.
#[derive(Clone)]
pub struct ReadOnlyDb {
    dir: PathBuf,
    blocks: Vec<Block>,
    head: Head,
}

impl std::fmt::Debug for ReadOnlyDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyDb")
            .field("dir", &self.dir)
            .field("blocks", &self.blocks.len())
            .field("head", &self.head)
            .finish()
    }
}

/// Opens the block dirs under `dir` not in `skip`; a dir that fails to open
/// is left out with a warning (a server may be deleting it right now).
fn open_blocks(dir: &Path, skip: &[Ulid]) -> Result<Vec<Block>, StorageError> {
    let mut out = Vec::new();
    for (u, p) in list_block_dirs(dir)? {
        if skip.contains(&u) {
            continue;
        }
        match Block::open(&p) {
            Ok(b) => out.push(b),
            Err(e) => {
                // Gone since the listing: a compaction replaced it.
                if p.exists() {
                    tracing::warn!(block = %u, error = %e, "skipping unreadable block");
                }
            }
        }
    }
    Ok(out)
}

impl ReadOnlyDb {
    /// Opens `dir` read-only with default head options.
    pub fn open(dir: &Path) -> Result<ReadOnlyDb, StorageError> {
        Self::open_with(dir, HeadOptions::default())
    }

    /// Opens `dir` read-only; `head` sets the chunk range and the
    /// out-of-order window applied while replaying the WAL.
    pub fn open_with(dir: &Path, head: HeadOptions) -> Result<ReadOnlyDb, StorageError> {
        if !dir.is_dir() {
            return Err(StorageError::Io(format!(
                "open data directory {}: not a directory",
                dir.display()
            )));
        }
        let mut blocks = open_blocks(dir, &[])?;
        // As when a server starts: the head skips what blocks already hold.
        let min_valid = blocks
            .iter()
            .map(|b| b.meta().max_time)
            .max()
            .unwrap_or(i64::MIN);
        let head_opts = HeadOptions {
            min_valid_time: min_valid.max(head.min_valid_time),
            ..head
        };
        let head = Head::open_read_only(dir, head_opts)?;
        // A server may have written a block (and truncated its WAL) while
        // the head replayed: take the new blocks too; overlaps merge.
        let known: Vec<Ulid> = blocks.iter().map(|b| b.meta().ulid).collect();
        blocks.extend(open_blocks(dir, &known)?);
        blocks.sort_by_key(|b| {
            let m = b.meta();
            (m.min_time, m.ulid)
        });
        Ok(ReadOnlyDb {
            dir: dir.to_path_buf(),
            blocks,
            head,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The blocks, ordered by min time.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The replayed head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Oldest timestamp held (blocks or head), `None` when empty.
    pub fn min_time(&self) -> Option<i64> {
        let b = self.blocks.iter().map(|b| b.meta().min_time).min();
        let h = head_min_time(&self.head);
        match (b, h) {
            (Some(b), Some(h)) => Some(b.min(h)),
            (b, h) => b.or(h),
        }
    }

    /// Newest timestamp held (blocks or head), `None` when empty.
    pub fn max_time(&self) -> Option<i64> {
        // A block's max time is exclusive.
        let b = self.blocks.iter().map(|b| b.meta().max_time - 1).max();
        let h = (self.head.max_time() != i64::MIN).then(|| self.head.max_time());
        match (b, h) {
            (Some(b), Some(h)) => Some(b.max(h)),
            (b, h) => b.or(h),
        }
    }
}

fn head_min_time(h: &Head) -> Option<i64> {
    let lo = h
        .ooo_time_range()
        .map_or(h.min_time(), |(a, _)| a.min(h.min_time()));
    (lo != i64::MAX).then_some(lo)
}

/// The querier over blocks and head that `Db` and `ReadOnlyDb` serve.
pub(crate) fn blocks_and_head_querier(
    blocks: &[Block],
    head: &Head,
    mint: i64,
    maxt: i64,
) -> Box<dyn Querier> {
    let mut qs: Vec<Box<dyn Querier>> = Vec::new();
    for b in blocks {
        if b.meta().overlaps_closed(mint, maxt) {
            qs.push(Box::new(b.querier(mint, maxt)));
        }
    }
    if let Some(hmin) = head_min_time(head) {
        if head.max_time() >= mint {
            qs.push(Box::new(head.head_querier(mint.max(hmin), maxt)));
        }
    }
    if qs.len() == 1 {
        if let Some(q) = qs.pop() {
            return q;
        }
    }
    Box::new(MergeQuerier::new(qs))
}

impl Queryable for ReadOnlyDb {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(blocks_and_head_querier(
            &self.blocks,
            &self.head,
            mint,
            maxt,
        ))
    }
}

impl Db {
    /// Opens `dir` for reading only: see `ReadOnlyDb`.
    pub fn open_read_only(dir: &Path) -> Result<ReadOnlyDb, StorageError> {
        ReadOnlyDb::open(dir)
    }
}
