//! Head chunks of a read-only head: what replay cuts is kept in memory, in
//! the on-disk chunk layout, never written to `chunks_head/`.
//!
//! Chunks go to 1 MiB buffers that stand in for files, with sequence
//! numbers after the last file on disk so references never collide. Sealed
//! buffers are shared (`Arc`), so a read is a reference count, not a copy.

use super::{from_parsed, parse_chunk, Backing, ChunkDiskRef, HeadChunksError, MappedChunk};
use super::{MAX_CHUNK_OVERHEAD, OUT_OF_ORDER_MASK};
use crate::chunkenc::put_uvarint;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Size of one in-memory "file".
const MEM_FILE: usize = 1 << 20;

pub(super) struct MemChunks {
    /// Sequence number of `sealed[0]`.
    first_seq: u32,
    /// For error messages.
    dir: PathBuf,
    inner: Mutex<MemInner>,
}

#[derive(Default)]
struct MemInner {
    sealed: Vec<Arc<[u8]>>,
    active: Vec<u8>,
}

impl MemChunks {
    pub(super) fn new(dir: PathBuf, first_seq: u32) -> Self {
        MemChunks {
            first_seq,
            dir,
            inner: Mutex::new(MemInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `r` points into memory rather than a file.
    pub(super) fn owns(&self, r: ChunkDiskRef) -> bool {
        r.seq() >= self.first_seq
    }

    pub(super) fn write(
        &self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        encoding: u8,
        data: &[u8],
        out_of_order: bool,
    ) -> ChunkDiskRef {
        let mut g = self.lock();
        let need = MAX_CHUNK_OVERHEAD + data.len();
        if !g.active.is_empty() && g.active.len() + need > MEM_FILE {
            seal(&mut g);
        }
        if g.active.capacity() == 0 {
            g.active.reserve(MEM_FILE.max(need));
        }
        let seq = self.first_seq.saturating_add(g.sealed.len() as u32);
        let start = g.active.len();
        let b = &mut g.active;
        b.extend_from_slice(&series_ref.to_be_bytes());
        b.extend_from_slice(&(mint as u64).to_be_bytes());
        b.extend_from_slice(&(maxt as u64).to_be_bytes());
        b.push(if out_of_order {
            encoding | OUT_OF_ORDER_MASK
        } else {
            encoding
        });
        put_uvarint(b, data.len() as u64);
        b.extend_from_slice(data);
        let crc = crc32c::crc32c(&b[start..]);
        b.extend_from_slice(&crc.to_be_bytes());
        ChunkDiskRef::new(seq, start as u32)
    }

    /// Seals the active buffer, so later reads share it instead of copying.
    pub(super) fn freeze(&self) {
        let mut g = self.lock();
        if !g.active.is_empty() {
            seal(&mut g);
        }
    }

    pub(super) fn chunk(&self, r: ChunkDiskRef) -> Result<MappedChunk, HeadChunksError> {
        let off = r.offset() as usize;
        let i = (r.seq() - self.first_seq) as usize;
        let g = self.lock();
        let res = if let Some(buf) = g.sealed.get(i) {
            parse_chunk(buf, off).map(|p| p.map(|p| from_parsed(Backing::Mem(buf.clone()), &p, 0)))
        } else if i == g.sealed.len() {
            parse_chunk(&g.active, off).map(|p| {
                p.map(|p| {
                    let copy: Arc<[u8]> = Arc::from(&g.active[off..p.next]);
                    from_parsed(Backing::Mem(copy), &p, off)
                })
            })
        } else {
            Ok(None)
        };
        match res {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(self.corrupt(r, "reference points past the held chunks".into())),
            Err(reason) => Err(self.corrupt(r, reason)),
        }
    }

    fn corrupt(&self, r: ChunkDiskRef, reason: String) -> HeadChunksError {
        HeadChunksError::Corruption {
            path: self.dir.join(format!("<memory {}>", r.seq())),
            seq: r.seq(),
            offset: r.offset() as u64,
            reason,
        }
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> usize {
        let g = self.lock();
        g.sealed.iter().map(|b| b.len()).sum::<usize>() + g.active.capacity()
    }
}

fn seal(g: &mut MemInner) {
    let full = std::mem::take(&mut g.active);
    g.sealed.push(Arc::from(full));
}
