//! Memory-mapped head chunks: `chunks_head/` in Prometheus's format.
//!
//! Owns the files that hold the head's full (no longer appended) chunks so
//! that a series keeps only its open chunk in RAM. Files `000001`,
//! `000002`, ... start with magic 0x0130BC91, version 1 and 3 bytes of
//! padding; each chunk is `series ref <8> mint <8> maxt <8> encoding <1>
//! len <uvarint> data crc32c <4>` (CRC over everything before it). A chunk
//! reference is `file seq << 32 | offset`. Reads verify the CRC and report
//! corruption as an error, never a panic. This module knows nothing of
//! series or the WAL: losing these files loses no data, the WAL rebuilds it.

use crate::chunkenc::put_uvarint;
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

mod mem;

/// Magic number at the start of every head chunk file.
pub const MAGIC_HEAD_CHUNKS: u32 = 0x0130_BC91;
/// Head chunk file format version.
pub const HEAD_CHUNKS_FORMAT_V1: u8 = 1;
/// Bytes of the file header (magic, version, padding).
pub const FILE_HEADER_SIZE: usize = 8;
/// Prometheus's cap on a head chunk file's size.
pub const MAX_HEAD_CHUNK_FILE_SIZE: u64 = 128 * 1024 * 1024;
/// Set in the encoding byte of out-of-order chunks.
pub const OUT_OF_ORDER_MASK: u8 = 0x80;

/// series ref + mint + maxt + encoding.
const CHUNK_FIXED_HEADER: usize = 8 + 8 + 8 + 1;
/// Largest possible per-chunk overhead: fixed header, 5-byte uvarint, CRC.
const MAX_CHUNK_OVERHEAD: usize = CHUNK_FIXED_HEADER + 5 + 4;
/// Unwritten bytes kept before a write(2); these files are a cache of what
/// the WAL holds, so buffering costs no durability.
const WRITE_BUFFER: usize = 1 << 20;

/// Where a chunk lives: file sequence number (high 32 bits) and byte offset
/// of the chunk's header in that file (low 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ChunkDiskRef(pub u64);

impl ChunkDiskRef {
    pub fn new(seq: u32, offset: u32) -> Self {
        ChunkDiskRef(((seq as u64) << 32) | offset as u64)
    }
    pub fn seq(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// Errors of the head chunk files.
#[derive(Debug, thiserror::Error)]
pub enum HeadChunksError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corruption in head chunk file {} at offset {offset}: {reason}", path.display())]
    Corruption {
        path: PathBuf,
        seq: u32,
        offset: u64,
        reason: String,
    },
}

impl HeadChunksError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        HeadChunksError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What `iterate_all` reports for each chunk found on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskChunkMeta {
    pub series_ref: u64,
    pub chunk_ref: ChunkDiskRef,
    pub mint: i64,
    pub maxt: i64,
    /// Encoding byte without the out-of-order flag.
    pub encoding: u8,
    pub out_of_order: bool,
    pub num_samples: u16,
}

/// A chunk read from a mapped file; keeps the mapping alive while held, so
/// a file deleted by truncation stays readable by queries already running.
#[derive(Clone, Debug)]
pub struct MappedChunk {
    backing: Backing,
    start: usize,
    len: usize,
    encoding: u8,
}

/// Where a read chunk's bytes live: a file mapping, or a copy taken from
/// the write buffer (a chunk not yet handed to the kernel).
#[derive(Clone, Debug)]
enum Backing {
    Map(Arc<Mmap>),
    Mem(Arc<[u8]>),
}

impl MappedChunk {
    /// The chunk's encoded bytes (what `chunkenc` iterates).
    pub fn data(&self) -> &[u8] {
        let all: &[u8] = match &self.backing {
            Backing::Map(m) => m,
            Backing::Mem(b) => b,
        };
        &all[self.start..self.start + self.len]
    }
    /// The encoding byte without the out-of-order flag.
    pub fn encoding(&self) -> u8 {
        self.encoding & !OUT_OF_ORDER_MASK
    }
}

struct ActiveFile {
    seq: u32,
    file: File,
    path: PathBuf,
    /// Bytes handed to the kernel.
    flushed: u64,
    /// Bytes not yet written; they follow `flushed`.
    buf: Vec<u8>,
    /// Chunks in this file so far.
    chunks: usize,
}

impl ActiveFile {
    fn size(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn flush(&mut self) -> Result<(), HeadChunksError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // Cut off a partial write (the file is in append mode), so a
            // retry lands where the chunk references say it is.
            let _ = self.file.set_len(self.flushed);
            return Err(HeadChunksError::io("writing", &self.path, e));
        }
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Readable files: sealed files mapped once; the active file mapped up to
/// what was flushed when it was last needed.
#[derive(Default)]
struct Maps {
    files: BTreeMap<u32, Arc<Mmap>>,
    paths: BTreeMap<u32, PathBuf>,
}

/// Writes, maps and reads the head chunk files of one data directory.
pub struct ChunkDiskMapper {
    dir: PathBuf,
    active: Mutex<Option<ActiveFile>>,
    maps: RwLock<Maps>,
    max_file_size: u64,
    /// Read-only mode: chunks cut by replay are kept here, files are never
    /// written, repaired or removed.
    mem: Option<mem::MemChunks>,
    /// Set when a write failed because the disk is full; the head reads
    /// and clears it to turn ingestion read-only.
    disk_full: AtomicBool,
}

fn file_name(seq: u32) -> String {
    format!("{seq:06}")
}

impl ChunkDiskMapper {
    /// Opens `dir` (creating it), maps the files already there. New chunks
    /// go to a fresh file after the last one, as Prometheus does.
    pub fn open(dir: &Path) -> Result<Self, HeadChunksError> {
        Self::open_with_size(dir, MAX_HEAD_CHUNK_FILE_SIZE)
    }

    /// As `open`, with a smaller file size cap (tests).
    pub fn open_with_size(dir: &Path, max_file_size: u64) -> Result<Self, HeadChunksError> {
        fs::create_dir_all(dir).map_err(|e| HeadChunksError::io("creating", dir, e))?;
        let mut maps = Maps::default();
        for (seq, path) in list_files(dir)? {
            let f = File::open(&path).map_err(|e| HeadChunksError::io("opening", &path, e))?;
            let len = f
                .metadata()
                .map_err(|e| HeadChunksError::io("stat", &path, e))?
                .len();
            if len < FILE_HEADER_SIZE as u64 {
                // A file cut but never written (crash right after creation).
                tracing::warn!(file = %path.display(), "removing head chunk file shorter than its header");
                fs::remove_file(&path).map_err(|e| HeadChunksError::io("removing", &path, e))?;
                continue;
            }
            // SAFETY: the file is only ever appended to by this process and
            // sealed files are never modified; a concurrent truncation by
            // another process is prevented by the data dir lock.
            let map =
                unsafe { Mmap::map(&f) }.map_err(|e| HeadChunksError::io("mapping", &path, e))?;
            maps.files.insert(seq, Arc::new(map));
            maps.paths.insert(seq, path);
        }
        Ok(ChunkDiskMapper {
            dir: dir.to_path_buf(),
            active: Mutex::new(None),
            maps: RwLock::new(maps),
            max_file_size,
            mem: None,
            disk_full: AtomicBool::new(false),
        })
    }

    /// Opens `dir` without writing anything, for a read-only head next to
    /// a running server: files are never created, repaired or removed, and
    /// chunks written later (by replay) are kept in memory. The last file,
    /// which a server may still be appending to (or cutting back after a
    /// failed write), is copied rather than mapped, so it can never vanish
    /// under a reader; a torn chunk at its end is the end of its data.
    pub fn open_read_only(dir: &Path) -> Result<Self, HeadChunksError> {
        let mut maps = Maps::default();
        let files = match list_files(dir) {
            Ok(f) => f,
            Err(HeadChunksError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let last = files.last().map(|f| f.0);
        for (seq, path) in files {
            let f = match File::open(&path) {
                Ok(f) => f,
                // Removed by the server's truncation since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(HeadChunksError::io("opening", &path, e)),
            };
            let len = f
                .metadata()
                .map_err(|e| HeadChunksError::io("stat", &path, e))?
                .len();
            if len < FILE_HEADER_SIZE as u64 {
                continue;
            }
            let map = if Some(seq) == last {
                copy_to_anon(f, len, &path)?
            } else {
                // SAFETY: files other than the last are sealed: a server
                // only ever deletes them whole, which keeps a mapping valid.
                unsafe { Mmap::map(&f) }.map_err(|e| HeadChunksError::io("mapping", &path, e))?
            };
            maps.files.insert(seq, Arc::new(map));
            maps.paths.insert(seq, path);
        }
        let first_mem = last.map_or(1, |s| s.saturating_add(1));
        Ok(ChunkDiskMapper {
            dir: dir.to_path_buf(),
            active: Mutex::new(None),
            maps: RwLock::new(maps),
            max_file_size: MAX_HEAD_CHUNK_FILE_SIZE,
            mem: Some(mem::MemChunks::new(dir.to_path_buf(), first_mem)),
            disk_full: AtomicBool::new(false),
        })
    }

    /// True for a mapper opened with `open_read_only`.
    pub fn is_read_only(&self) -> bool {
        self.mem.is_some()
    }

    /// Read-only mode: seals the in-memory chunks written so far, so reads
    /// share them instead of copying (call when replay is done).
    pub fn freeze(&self) {
        if let Some(m) = &self.mem {
            m.freeze();
        }
    }

    /// Read-only mode: bytes of chunks held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.mem.as_ref().map_or(0, |m| m.bytes())
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Calls `f` for every chunk in every file, oldest first, checking file
    /// headers and CRCs. Stops at the first problem and returns it as
    /// `Corruption` (with the file and offset) so the caller can `repair`.
    pub fn iterate_all(&self, mut f: impl FnMut(DiskChunkMeta)) -> Result<(), HeadChunksError> {
        let files: Vec<(u32, Arc<Mmap>, PathBuf)> = {
            let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
            maps.files
                .iter()
                .map(|(&s, m)| (s, m.clone(), maps.paths[&s].clone()))
                .collect()
        };
        let mut prev_seq: Option<u32> = None;
        for (seq, map, path) in files {
            if let Some(p) = prev_seq {
                if seq != p + 1 {
                    return Err(HeadChunksError::Corruption {
                        path,
                        seq,
                        offset: 0,
                        reason: format!("out of sequence: file {seq} follows {p}"),
                    });
                }
            }
            prev_seq = Some(seq);
            let corrupt = |offset: usize, reason: String| HeadChunksError::Corruption {
                path: path.clone(),
                seq,
                offset: offset as u64,
                reason,
            };
            check_file_header(&map).map_err(|r| corrupt(0, r))?;
            let mut off = FILE_HEADER_SIZE;
            while off < map.len() {
                match parse_chunk(&map, off) {
                    Ok(Some(p)) => {
                        f(DiskChunkMeta {
                            chunk_ref: ChunkDiskRef::new(seq, off as u32),
                            ..p.meta
                        });
                        off = p.next;
                    }
                    // Only zero bytes left: the end of the written part.
                    Ok(None) => break,
                    Err(reason) => return Err(corrupt(off, reason)),
                }
            }
        }
        Ok(())
    }

    /// Repairs after `iterate_all` failed: a torn tail of the last file is
    /// cut off; any other corruption removes the bad file and every file
    /// after it (their data is rebuilt from the WAL). Returns the number of
    /// bytes dropped.
    pub fn repair(&self, err: &HeadChunksError) -> Result<u64, HeadChunksError> {
        let HeadChunksError::Corruption {
            seq,
            offset,
            reason,
            ..
        } = err
        else {
            return Ok(0);
        };
        if self.mem.is_some() {
            return Ok(0);
        }
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        let last = maps.files.keys().next_back().copied();
        let mut dropped = 0u64;
        let torn =
            Some(*seq) == last && *offset >= FILE_HEADER_SIZE as u64 && reason.starts_with("torn");
        if torn {
            let path = maps.paths[seq].clone();
            let map = &maps.files[seq];
            dropped = map.len() as u64 - offset;
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| HeadChunksError::io("opening", &path, e))?;
            f.set_len(*offset)
                .map_err(|e| HeadChunksError::io("truncating", &path, e))?;
            // SAFETY: see `open_with_size`.
            let map =
                unsafe { Mmap::map(&f) }.map_err(|e| HeadChunksError::io("mapping", &path, e))?;
            maps.files.insert(*seq, Arc::new(map));
            tracing::warn!(file = %path.display(), bytes = dropped, "cut torn tail off head chunk file");
            return Ok(dropped);
        }
        let doomed: Vec<u32> = maps.files.range(*seq..).map(|(&s, _)| s).collect();
        for s in doomed {
            if let (Some(map), Some(path)) = (maps.files.remove(&s), maps.paths.remove(&s)) {
                dropped += map.len() as u64;
                fs::remove_file(&path).map_err(|e| HeadChunksError::io("removing", &path, e))?;
                tracing::warn!(file = %path.display(), "removed corrupt head chunk file: {err}");
            }
        }
        Ok(dropped)
    }

    /// Appends a chunk and returns its reference. The bytes reach the kernel
    /// lazily (they are a cache of what the WAL holds).
    pub fn write_chunk(
        &self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        encoding: u8,
        data: &[u8],
        out_of_order: bool,
    ) -> Result<ChunkDiskRef, HeadChunksError> {
        if let Some(m) = &self.mem {
            return Ok(m.write(series_ref, mint, maxt, encoding, data, out_of_order));
        }
        let res = self.write_chunk_inner(series_ref, mint, maxt, encoding, data, out_of_order);
        self.watch(res)
    }

    /// Whether a write failed for lack of space since the last call.
    pub fn take_disk_full(&self) -> bool {
        self.disk_full.swap(false, Ordering::AcqRel)
    }

    fn watch<T>(&self, res: Result<T, HeadChunksError>) -> Result<T, HeadChunksError> {
        if let Err(HeadChunksError::Io { source, .. }) = &res {
            if crate::disk_full::is_disk_full_io(source) {
                self.disk_full.store(true, Ordering::Release);
            }
        }
        res
    }

    fn write_chunk_inner(
        &self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        encoding: u8,
        data: &[u8],
        out_of_order: bool,
    ) -> Result<ChunkDiskRef, HeadChunksError> {
        let mut guard = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let need = (MAX_CHUNK_OVERHEAD + data.len()) as u64;
        let must_cut = match guard.as_ref() {
            None => true,
            Some(a) => a.chunks > 0 && a.size() + need > self.max_file_size,
        };
        if must_cut {
            self.cut_locked(&mut guard)?;
        }
        let Some(a) = guard.as_mut() else {
            return Err(HeadChunksError::io(
                "writing",
                &self.dir,
                io::Error::other("no active head chunk file"),
            ));
        };
        let off = a.size();
        let start = a.buf.len();
        a.buf.extend_from_slice(&series_ref.to_be_bytes());
        a.buf.extend_from_slice(&(mint as u64).to_be_bytes());
        a.buf.extend_from_slice(&(maxt as u64).to_be_bytes());
        a.buf.push(if out_of_order {
            encoding | OUT_OF_ORDER_MASK
        } else {
            encoding
        });
        put_uvarint(&mut a.buf, data.len() as u64);
        a.buf.extend_from_slice(data);
        let crc = crc32c::crc32c(&a.buf[start..]);
        a.buf.extend_from_slice(&crc.to_be_bytes());
        a.chunks += 1;
        let r = ChunkDiskRef::new(a.seq, off as u32);
        if a.buf.len() >= WRITE_BUFFER {
            a.flush()?;
        }
        Ok(r)
    }

    /// Seals the active file (if it holds chunks) and starts a new one on
    /// the next write. Truncation calls this so old files can be deleted.
    pub fn cut_file(&self) -> Result<(), HeadChunksError> {
        let mut guard = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_some_and(|a| a.chunks > 0) {
            let res = self.seal_locked(&mut guard);
            self.watch(res)?;
        }
        Ok(())
    }

    /// Flushes, fsyncs and maps the active file, then lets it go. On error
    /// the file stays active with its buffer, so no written chunk is lost.
    fn seal_locked(&self, guard: &mut Option<ActiveFile>) -> Result<(), HeadChunksError> {
        if let Some(a) = guard.as_mut() {
            a.flush()?;
            a.file
                .sync_data()
                .map_err(|e| HeadChunksError::io("syncing", &a.path, e))?;
            self.remap(a)?;
        }
        *guard = None;
        Ok(())
    }

    fn cut_locked(&self, guard: &mut Option<ActiveFile>) -> Result<(), HeadChunksError> {
        self.seal_locked(guard)?;
        let seq = {
            let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
            maps.files.keys().next_back().map_or(1, |s| s + 1)
        };
        let path = self.dir.join(file_name(seq));
        let mut file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| HeadChunksError::io("creating", &path, e))?;
        let mut header = [0u8; FILE_HEADER_SIZE];
        header[..4].copy_from_slice(&MAGIC_HEAD_CHUNKS.to_be_bytes());
        header[4] = HEAD_CHUNKS_FORMAT_V1;
        if let Err(e) = file.write_all(&header) {
            // A file without its header would be removed at the next start
            // anyway; removing it now lets the next cut reuse the number.
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(HeadChunksError::io("writing", &path, e));
        }
        let a = ActiveFile {
            seq,
            file,
            path,
            flushed: FILE_HEADER_SIZE as u64,
            buf: Vec::with_capacity(WRITE_BUFFER + MAX_CHUNK_OVERHEAD),
            chunks: 0,
        };
        self.remap(&a)?;
        *guard = Some(a);
        Ok(())
    }

    fn remap(&self, a: &ActiveFile) -> Result<(), HeadChunksError> {
        // SAFETY: see `open_with_size`; only the flushed prefix is mapped.
        let map = unsafe { Mmap::map(&a.file) }
            .map_err(|e| HeadChunksError::io("mapping", &a.path, e))?;
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        maps.files.insert(a.seq, Arc::new(map));
        maps.paths.insert(a.seq, a.path.clone());
        Ok(())
    }

    /// Reads a chunk, verifying its CRC. Corrupt or missing data is a
    /// `Corruption` error naming the file and offset. Reads never write: a
    /// chunk still in the write buffer is served from a copy of it (so
    /// queries keep working when the disk is full).
    pub fn chunk(&self, r: ChunkDiskRef) -> Result<MappedChunk, HeadChunksError> {
        if let Some(m) = self.mem.as_ref().filter(|m| m.owns(r)) {
            return m.chunk(r);
        }
        let off = r.offset() as usize;
        let mapped = {
            let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
            maps.files.get(&r.seq()).cloned()
        };
        let mut reason = "no such head chunk file".to_string();
        if let Some(map) = mapped {
            match parse_chunk(&map, off) {
                Ok(Some(p)) => return Ok(from_parsed(Backing::Map(map), &p, 0)),
                Ok(None) => reason = "reference points past the written data".into(),
                Err(e) => reason = e,
            }
        }
        // The chunk may be in the active file, beyond the mapping or still
        // in the write buffer.
        {
            let guard = self.active.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(a) = guard.as_ref().filter(|a| a.seq == r.seq()) {
                if off as u64 >= a.flushed {
                    let rel = off - a.flushed as usize;
                    match parse_chunk(&a.buf, rel) {
                        Ok(Some(p)) => {
                            let copy: Arc<[u8]> = Arc::from(&a.buf[rel..p.next]);
                            return Ok(from_parsed(Backing::Mem(copy), &p, rel));
                        }
                        Ok(None) => reason = "reference points past the written data".into(),
                        Err(e) => reason = e,
                    }
                } else {
                    self.remap(a)?;
                    let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
                    if let Some(map) = maps.files.get(&r.seq()).cloned() {
                        match parse_chunk(&map, off) {
                            Ok(Some(p)) => return Ok(from_parsed(Backing::Map(map), &p, 0)),
                            Ok(None) => reason = "reference points past the written data".into(),
                            Err(e) => reason = e,
                        }
                    }
                }
            }
        }
        Err(HeadChunksError::Corruption {
            path: self.dir.join(file_name(r.seq())),
            seq: r.seq(),
            offset: off as u64,
            reason,
        })
    }

    /// Deletes every file with a sequence number below `seq` (never the
    /// active one).
    pub fn truncate_before(&self, seq: u32) -> Result<(), HeadChunksError> {
        if self.mem.is_some() {
            return Ok(());
        }
        let active = self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|a| a.seq);
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        let doomed: Vec<u32> = maps
            .files
            .range(..seq)
            .map(|(&s, _)| s)
            .filter(|&s| Some(s) != active)
            .collect();
        for s in doomed {
            maps.files.remove(&s);
            if let Some(path) = maps.paths.remove(&s) {
                fs::remove_file(&path).map_err(|e| HeadChunksError::io("removing", &path, e))?;
            }
        }
        Ok(())
    }

    /// Sequence number of the file new chunks currently go to, if any.
    pub fn active_seq(&self) -> Option<u32> {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|a| a.seq)
    }

    /// Sequence numbers of all files on disk.
    pub fn file_seqs(&self) -> Vec<u32> {
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        maps.files.keys().copied().collect()
    }

    /// Hands buffered chunks to the kernel.
    pub fn flush(&self) -> Result<(), HeadChunksError> {
        let mut guard = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = guard.as_mut() {
            let res = a.flush();
            self.watch(res)?;
        }
        Ok(())
    }

    /// Flushes and fsyncs the active file.
    pub fn close(&self) -> Result<(), HeadChunksError> {
        let mut guard = self.active.lock().unwrap_or_else(|e| e.into_inner());
        self.seal_locked(&mut guard)
    }
}

/// Copies the first `len` bytes of `f` (fewer if it shrank meanwhile; the
/// rest stays zero, which reads as the end of the data) into anonymous
/// memory.
fn copy_to_anon(mut f: File, len: u64, path: &Path) -> Result<Mmap, HeadChunksError> {
    use std::io::Read;
    let len = usize::try_from(len)
        .map_err(|_| HeadChunksError::io("mapping", path, io::Error::other("file too large")))?;
    let mut m =
        memmap2::MmapMut::map_anon(len).map_err(|e| HeadChunksError::io("mapping", path, e))?;
    let mut at = 0;
    while at < len {
        match f.read(&mut m[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HeadChunksError::io("reading", path, e)),
        }
    }
    m.make_read_only()
        .map_err(|e| HeadChunksError::io("mapping", path, e))
}

/// A read chunk from a parse of `backing` (`base`: offset of the parsed
/// bytes' start within the backing).
fn from_parsed(backing: Backing, p: &Parsed, base: usize) -> MappedChunk {
    MappedChunk {
        start: p.data_start - base,
        len: p.data_len,
        encoding: p.raw_encoding,
        backing,
    }
}

fn list_files(dir: &Path) -> Result<Vec<(u32, PathBuf)>, HeadChunksError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| HeadChunksError::io("listing", dir, e))? {
        let e = e.map_err(|e| HeadChunksError::io("listing", dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Ok(seq) = name.parse::<u32>() {
            if name.bytes().all(|b| b.is_ascii_digit()) {
                out.push((seq, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn check_file_header(b: &[u8]) -> Result<(), String> {
    if b.len() < FILE_HEADER_SIZE {
        return Err(format!(
            "file of {} bytes is shorter than its header",
            b.len()
        ));
    }
    let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if magic != MAGIC_HEAD_CHUNKS {
        return Err(format!("invalid magic number {magic:#x}"));
    }
    if b[4] != HEAD_CHUNKS_FORMAT_V1 {
        return Err(format!("invalid chunk format version {}", b[4]));
    }
    Ok(())
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// Parses the chunk at `off`. `Ok(None)` when only zero bytes remain (the
/// end of the written part); errors starting with "torn" mean the file ends
/// inside the chunk.
fn parse_chunk(b: &[u8], off: usize) -> Result<Option<Parsed>, String> {
    if off >= b.len() {
        return Ok(None);
    }
    let rest = &b[off..];
    if rest.len() < CHUNK_FIXED_HEADER + 1 {
        if rest.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        return Err(format!("torn chunk header: only {} bytes left", rest.len()));
    }
    let series_ref = be64(rest, 0);
    let mint = be64(rest, 8) as i64;
    let maxt = be64(rest, 16) as i64;
    let enc = rest[24];
    if series_ref == 0 && mint == 0 && maxt == 0 && enc == 0 {
        if rest.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        return Err("zero chunk header followed by data".into());
    }
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut p = CHUNK_FIXED_HEADER;
    loop {
        let Some(&x) = rest.get(p) else {
            return Err("torn chunk: file ends inside the length".into());
        };
        p += 1;
        if shift >= 35 {
            return Err("chunk length varint too long".into());
        }
        len |= ((x & 0x7f) as u64) << shift;
        shift += 7;
        if x < 0x80 {
            break;
        }
    }
    let len = len as usize;
    if len > MAX_HEAD_CHUNK_FILE_SIZE as usize {
        return Err(format!("chunk length {len} larger than a file"));
    }
    let end = p + len + 4;
    if rest.len() < end {
        return Err(format!(
            "torn chunk: needs {end} bytes, file has {} left",
            rest.len()
        ));
    }
    let want = u32::from_be_bytes([
        rest[p + len],
        rest[p + len + 1],
        rest[p + len + 2],
        rest[p + len + 3],
    ]);
    let got = crc32c::crc32c(&rest[..p + len]);
    if want != got {
        return Err(format!(
            "checksum mismatch: expected {want:#010x}, got {got:#010x}"
        ));
    }
    if maxt < mint {
        return Err(format!("chunk maxt {maxt} before mint {mint}"));
    }
    let num_samples = if len >= 2 {
        u16::from_be_bytes([rest[p], rest[p + 1]])
    } else {
        0
    };
    Ok(Some(Parsed {
        meta: DiskChunkMeta {
            series_ref,
            chunk_ref: ChunkDiskRef(0),
            mint,
            maxt,
            encoding: enc & !OUT_OF_ORDER_MASK,
            out_of_order: enc & OUT_OF_ORDER_MASK != 0,
            num_samples,
        },
        data_start: off + p,
        data_len: len,
        raw_encoding: enc,
        next: off + end,
    }))
}

/// A chunk found by `parse_chunk`.
struct Parsed {
    meta: DiskChunkMeta,
    data_start: usize,
    data_len: usize,
    raw_encoding: u8,
    next: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write_some(m: &ChunkDiskMapper, n: usize) -> Vec<(ChunkDiskRef, u64, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let data: Vec<u8> = (0..(i * 7 % 300 + 2)).map(|b| (b * i) as u8).collect();
                let r = m
                    .write_chunk(
                        i as u64 + 1,
                        i as i64 * 10,
                        i as i64 * 10 + 5,
                        1,
                        &data,
                        i % 5 == 0,
                    )
                    .unwrap();
                (r, i as u64 + 1, data)
            })
            .collect()
    }

    #[test]
    fn write_read_reopen_iterate() {
        let dir = tempfile::tempdir().unwrap();
        let m = ChunkDiskMapper::open_with_size(dir.path(), 4096).unwrap();
        let written = write_some(&m, 100);
        assert!(m.file_seqs().len() > 3, "small cap cuts files");
        for (r, _, data) in &written {
            let c = m.chunk(*r).unwrap();
            assert_eq!(c.data(), &data[..]);
            assert_eq!(c.encoding(), 1);
        }
        m.close().unwrap();
        drop(m);
        let m = ChunkDiskMapper::open_with_size(dir.path(), 4096).unwrap();
        let mut seen = Vec::new();
        m.iterate_all(|meta| seen.push(meta)).unwrap();
        assert_eq!(seen.len(), 100);
        for (i, (meta, (r, sref, data))) in seen.iter().zip(&written).enumerate() {
            assert_eq!(meta.chunk_ref, *r);
            assert_eq!(meta.series_ref, *sref);
            assert_eq!((meta.mint, meta.maxt), (i as i64 * 10, i as i64 * 10 + 5));
            assert_eq!(meta.out_of_order, i % 5 == 0);
            assert_eq!(m.chunk(*r).unwrap().data(), &data[..]);
        }
        // New writes go to a new file after the existing ones.
        let last = *m.file_seqs().last().unwrap();
        let r = m.write_chunk(7, 1, 2, 1, &[0, 0], false).unwrap();
        assert_eq!(r.seq(), last + 1);
    }

    #[test]
    fn corrupt_byte_is_an_error_then_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let m = ChunkDiskMapper::open_with_size(dir.path(), 4096).unwrap();
        let written = write_some(&m, 60);
        m.close().unwrap();
        drop(m);
        let victim = written[20].0;
        let path = dir.path().join(file_name(victim.seq()));
        let mut b = fs::read(&path).unwrap();
        b[victim.offset() as usize + 30] ^= 0x40;
        fs::write(&path, &b).unwrap();
        let m = ChunkDiskMapper::open_with_size(dir.path(), 4096).unwrap();
        assert!(matches!(
            m.chunk(victim),
            Err(HeadChunksError::Corruption { .. })
        ));
        let err = m.iterate_all(|_| {}).unwrap_err();
        assert!(m.repair(&err).unwrap() > 0);
        assert!(m.file_seqs().iter().all(|&s| s < victim.seq()));
        let mut n = 0;
        m.iterate_all(|_| n += 1).unwrap();
        assert!(n < 20);
    }

    #[test]
    fn torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let m = ChunkDiskMapper::open(dir.path()).unwrap();
        let written = write_some(&m, 10);
        m.close().unwrap();
        drop(m);
        let path = dir.path().join(file_name(1));
        let len = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        let m = ChunkDiskMapper::open(dir.path()).unwrap();
        let err = m.iterate_all(|_| {}).unwrap_err();
        m.repair(&err).unwrap();
        let mut n = 0;
        m.iterate_all(|_| n += 1).unwrap();
        assert_eq!(n, 9);
        assert_eq!(m.chunk(written[8].0).unwrap().data(), &written[8].2[..]);
    }

    #[test]
    fn truncate_before_keeps_active() {
        let dir = tempfile::tempdir().unwrap();
        let m = ChunkDiskMapper::open_with_size(dir.path(), 2048).unwrap();
        write_some(&m, 50);
        let active = m.active_seq().unwrap();
        m.truncate_before(active + 10).unwrap();
        assert_eq!(m.file_seqs(), vec![active]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Arbitrary bytes after a valid header never panic the scanner.
        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut b = vec![0u8; FILE_HEADER_SIZE];
            b[..4].copy_from_slice(&MAGIC_HEAD_CHUNKS.to_be_bytes());
            b[4] = 1;
            b.extend_from_slice(&body);
            let mut off = FILE_HEADER_SIZE;
            while let Ok(Some(p)) = parse_chunk(&b, off) {
                prop_assert!(p.next > off);
                prop_assert!(p.data_start + p.data_len <= b.len());
                off = p.next;
            }
        }
    }
}
