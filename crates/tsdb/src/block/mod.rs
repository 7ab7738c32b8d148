//! A persistent block: a ULID directory holding `meta.json`, `chunks/`,
//! `index` and `tombstones`, immutable once written except for tombstones.
//!
//! `Block` opens and validates a directory and serves queries through
//! `BlockQuerier` (the `vigil_model::storage::Querier` of one block);
//! `BlockBuilder` writes a new block into a temp dir and renames it into place
//! atomically. Nothing here knows about the head or the WAL.

mod backfill;
mod querier;
mod writer;

pub use backfill::{
    compatible_block_duration, dir_size, BackfillSeriesId, BackfillStats, BlockWriter,
    WrittenBlock, DEFAULT_BLOCK_DURATION,
};
pub use querier::{
    chunk_corruptions_total, postings_for_matchers, BlockQuerier, BlockSeries, BlockSeriesIter,
};
pub use writer::{BlockBuilder, TMP_CREATION_SUFFIX};

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use vigil_model::storage::StorageError;
use vigil_model::Matcher;

use crate::chunks::{ChunkReader, CHUNKS_DIR};
use crate::index::{IndexReader, INDEX_FILENAME};
use crate::meta::{read_meta, write_meta, BlockMeta, Ulid};
use crate::tombstones::{read_tombstones, write_tombstones, Interval, Tombstones};

/// An open block. Cheap to clone; queriers keep it alive (and its files
/// mapped) even after it is removed from the DB.
#[derive(Clone)]
pub struct Block {
    inner: Arc<BlockInner>,
}

pub(crate) struct BlockInner {
    dir: PathBuf,
    meta: RwLock<BlockMeta>,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: RwLock<Arc<Tombstones>>,
    meta_size: u64,
    tombstones_size: RwLock<u64>,
}

impl Block {
    /// Opens the block in `dir`, validating meta.json, the index (header,
    /// TOC, table CRCs), the chunk segment headers and the tombstones.
    pub fn open(dir: &Path) -> Result<Block, StorageError> {
        // A missing part is corruption of the block, not an I/O failure.
        for part in [crate::meta::META_FILENAME, INDEX_FILENAME, CHUNKS_DIR] {
            if !dir.join(part).exists() && dir.exists() {
                return Err(crate::binfmt::corruption_file(
                    dir,
                    format!("block has no {part}"),
                ));
            }
        }
        let meta = read_meta(dir)?;
        let meta_size = std::fs::metadata(dir.join(crate::meta::META_FILENAME))
            .map(|m| m.len())
            .unwrap_or(0);
        let chunks = ChunkReader::open(&dir.join(CHUNKS_DIR))?;
        let index = IndexReader::open(&dir.join(INDEX_FILENAME))?;
        let (tombstones, tsize) = read_tombstones(dir)?;
        Ok(Block {
            inner: Arc::new(BlockInner {
                dir: dir.to_path_buf(),
                meta: RwLock::new(meta),
                index,
                chunks,
                tombstones: RwLock::new(Arc::new(tombstones)),
                meta_size,
                tombstones_size: RwLock::new(tsize),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// A copy of the block's metadata.
    pub fn meta(&self) -> BlockMeta {
        self.inner.meta()
    }

    pub fn index(&self) -> &IndexReader {
        &self.inner.index
    }

    pub fn chunks(&self) -> &ChunkReader {
        &self.inner.chunks
    }

    /// Current tombstones.
    pub fn tombstones(&self) -> Arc<Tombstones> {
        self.inner.tombstones()
    }

    /// Bytes the block takes on disk.
    pub fn size(&self) -> u64 {
        self.inner.index.size()
            + self.inner.chunks.size()
            + self.inner.meta_size
            + *self
                .inner
                .tombstones_size
                .read()
                .unwrap_or_else(|e| e.into_inner())
    }

    /// A querier over `[mint, maxt]` (inclusive).
    pub fn querier(&self, mint: i64, maxt: i64) -> BlockQuerier {
        BlockQuerier::new(self.inner.clone(), mint, maxt)
    }

    /// Marks samples of series matching `matchers` within `[mint, maxt]` as
    /// deleted: rewrites `tombstones` and the tombstone count in meta.json.
    /// Returns the number of series affected.
    pub fn delete(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<usize, StorageError> {
        let ix = &self.inner.index;
        let refs = postings_for_matchers(ix, matchers)?;
        let old = self.tombstones();
        let mut next = (*old).clone();
        let mut chunks = Vec::new();
        let mut affected = 0;
        for id in refs {
            ix.series_into(id, None, &mut chunks)?;
            if chunks.iter().any(|c| c.overlaps_closed(mint, maxt)) {
                let lo = chunks
                    .iter()
                    .map(|c| c.min_time)
                    .min()
                    .unwrap_or(mint)
                    .max(mint);
                let hi = chunks
                    .iter()
                    .map(|c| c.max_time)
                    .max()
                    .unwrap_or(maxt)
                    .min(maxt);
                next.add(u64::from(id), Interval::new(lo, hi));
                affected += 1;
            }
        }
        if affected == 0 {
            return Ok(0);
        }
        self.store_tombstones(next)?;
        Ok(affected)
    }

    /// Removes every tombstone (after a compaction rewrote the data without
    /// the deleted samples, or to undo deletions).
    pub fn clear_tombstones(&self) -> Result<(), StorageError> {
        self.store_tombstones(Tombstones::new())
    }

    fn store_tombstones(&self, t: Tombstones) -> Result<(), StorageError> {
        let size = write_tombstones(&self.inner.dir, &t)?;
        let mut meta = self.meta();
        meta.stats.num_tombstones = t.total();
        write_meta(&self.inner.dir, &meta)?;
        *self.inner.meta.write().unwrap_or_else(|e| e.into_inner()) = meta;
        *self
            .inner
            .tombstones_size
            .write()
            .unwrap_or_else(|e| e.into_inner()) = size;
        *self
            .inner
            .tombstones
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
        Ok(())
    }

    /// Marks meta.json as failed to compact, so planners skip the block.
    pub fn set_compaction_failed(&self) -> Result<(), StorageError> {
        let mut meta = self.meta();
        meta.compaction.failed = true;
        write_meta(&self.inner.dir, &meta)?;
        *self.inner.meta.write().unwrap_or_else(|e| e.into_inner()) = meta;
        Ok(())
    }
}

/// Block directories directly under `data_dir`: names that parse as a
/// ULID, sorted by ULID. Temporary and other directories are left out.
pub fn list_block_dirs(data_dir: &Path) -> Result<Vec<(Ulid, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(data_dir)
        .map_err(|e| crate::binfmt::io_error("read dir", data_dir, e))?;
    for e in rd {
        let e = e.map_err(|e| crate::binfmt::io_error("read dir", data_dir, e))?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if let Ok(u) = name.parse::<Ulid>() {
            if e.path().is_dir() {
                out.push((u, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl BlockInner {
    fn meta(&self) -> BlockMeta {
        self.meta.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn tombstones(&self) -> Arc<Tombstones> {
        self.tombstones
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.meta();
        write!(f, "Block({} [{}, {}))", m.ulid, m.min_time, m.max_time)
    }
}

#[cfg(test)]
pub(crate) mod tests;
