//! Writing a block: series in label order with their encoded chunks go to a
//! `<ulid>.tmp-for-creation` directory, which is fsynced and renamed to
//! `<ulid>` only when complete. A dropped, unfinished builder removes its
//! temp dir, so a crash or error never leaves a directory that looks valid.

use std::path::{Path, PathBuf};

use vigil_model::storage::StorageError;
use vigil_model::Labels;

use crate::binfmt::io_error;
use crate::chunkenc::EncodedChunk;
use crate::chunks::{ChunkMeta, ChunkWriter, CHUNKS_DIR};
use crate::index::{IndexWriter, INDEX_FILENAME};
use crate::meta::{
    sync_dir, write_meta, BlockMeta, BlockMetaCompaction, BlockStats, Ulid, META_VERSION,
};
use crate::tombstones::{write_tombstones, Tombstones};

/// Suffix of the temporary directory a block is built in (Prometheus's).
pub const TMP_CREATION_SUFFIX: &str = ".tmp-for-creation";

/// Builds one block. See the module doc for the protocol.
pub struct BlockBuilder {
    parent: PathBuf,
    tmp: PathBuf,
    ulid: Ulid,
    min_time: i64,
    max_time: i64,
    chunks: Option<ChunkWriter>,
    index: Option<IndexWriter>,
    stats: BlockStats,
    metas: Vec<ChunkMeta>,
    done: bool,
}

impl BlockBuilder {
    /// Starts block `ulid` covering `[min_time, max_time)` under `parent`.
    /// `symbols` (sorted, unique) must hold every label name and value of
    /// the series that will be added.
    pub fn create<I, S>(
        parent: &Path,
        ulid: Ulid,
        min_time: i64,
        max_time: i64,
        symbols: I,
    ) -> Result<BlockBuilder, StorageError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let tmp = parent.join(format!("{ulid}{TMP_CREATION_SUFFIX}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io_error("remove", &tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| io_error("create dir", &tmp, e))?;
        let mut b = BlockBuilder {
            parent: parent.to_path_buf(),
            tmp: tmp.clone(),
            ulid,
            min_time,
            max_time,
            chunks: None,
            index: None,
            stats: BlockStats::default(),
            metas: Vec::new(),
            done: false,
        };
        // On error the Drop impl removes the temp dir.
        b.chunks = Some(ChunkWriter::create(&tmp.join(CHUNKS_DIR))?);
        b.index = Some(IndexWriter::create(&tmp.join(INDEX_FILENAME), symbols)?);
        Ok(b)
    }

    pub fn ulid(&self) -> Ulid {
        self.ulid
    }

    /// Samples, series and chunks added so far.
    pub fn stats(&self) -> &BlockStats {
        &self.stats
    }

    /// Adds a series (labels strictly greater than the previous series')
    /// with its chunks in time order. A series without chunks is skipped.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[EncodedChunk],
    ) -> Result<(), StorageError> {
        self.add_series_raw(
            labels,
            chunks
                .iter()
                .map(|c| (c.mint, c.maxt, c.encoding.as_u8(), c.data.as_slice())),
        )
    }

    /// Like `add_series` for chunks given as `(mint, maxt, encoding, data)`;
    /// lets compaction copy chunks straight from a source block's map.
    pub fn add_series_raw<'a>(
        &mut self,
        labels: &Labels,
        chunks: impl IntoIterator<Item = (i64, i64, u8, &'a [u8])>,
    ) -> Result<(), StorageError> {
        let (Some(cw), Some(iw)) = (self.chunks.as_mut(), self.index.as_mut()) else {
            return Err(StorageError::Io("block builder already finished".into()));
        };
        self.metas.clear();
        let mut samples = 0u64;
        for (mint, maxt, enc, data) in chunks {
            let r = cw.write_chunk(enc, data)?;
            samples += data
                .get(..2)
                .map_or(0, |h| u64::from(u16::from_be_bytes([h[0], h[1]])));
            self.metas.push(ChunkMeta {
                min_time: mint,
                max_time: maxt,
                chunk_ref: r,
            });
        }
        if self.metas.is_empty() {
            return Ok(());
        }
        iw.add_series(labels, &self.metas)?;
        self.stats.num_series += 1;
        self.stats.num_chunks += self.metas.len() as u64;
        self.stats.num_samples += samples;
        self.stats.num_float_samples += samples;
        Ok(())
    }

    /// Completes the block: index, empty tombstones, meta.json, fsync, and
    /// the atomic rename into `<parent>/<ulid>`. Returns the final meta.
    pub fn finish(mut self, compaction: BlockMetaCompaction) -> Result<BlockMeta, StorageError> {
        if let Some(cw) = self.chunks.take() {
            cw.finish()?;
        }
        if let Some(iw) = self.index.take() {
            iw.finish()?;
        }
        write_tombstones(&self.tmp, &Tombstones::new())?;
        let mut stats = self.stats.clone();
        // Prometheus does not count float samples separately in 2.42 metas.
        stats.num_float_samples = 0;
        let meta = BlockMeta {
            ulid: self.ulid,
            min_time: self.min_time,
            max_time: self.max_time,
            stats,
            compaction,
            version: META_VERSION,
        };
        write_meta(&self.tmp, &meta)?;
        sync_dir(&self.tmp.join(CHUNKS_DIR))?;
        sync_dir(&self.tmp)?;
        let dst = self.parent.join(self.ulid.to_string());
        if dst.exists() {
            std::fs::remove_dir_all(&dst).map_err(|e| io_error("remove", &dst, e))?;
        }
        std::fs::rename(&self.tmp, &dst).map_err(|e| io_error("rename", &self.tmp, e))?;
        sync_dir(&self.parent)?;
        self.done = true;
        Ok(meta)
    }
}

impl Drop for BlockBuilder {
    fn drop(&mut self) {
        if !self.done {
            // Close files before removing the directory.
            self.chunks = None;
            self.index = None;
            if let Err(e) = std::fs::remove_dir_all(&self.tmp) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %self.tmp.display(), error = %e, "could not remove unfinished block");
                }
            }
        }
    }
}
