//! Chunk segment files of a block (`<block>/chunks/000001`, ...), in
//! Prometheus's format: an 8-byte header (magic 0x85BD40DD, version 1, three
//! padding bytes), then chunks as `uvarint len | encoding byte | data |
//! CRC32-Castagnoli(encoding, data)`. Segments are cut at 512 MiB; a chunk
//! reference is `segment index << 32 | offset`.
//!
//! This module moves opaque encoded chunk bytes; it does not know what an
//! encoding means (see `chunkenc`). Readers check every header at open and
//! every chunk's bounds and CRC on read, returning corruption errors.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use vigil_model::storage::StorageError;

use crate::binfmt::{
    corruption, corruption_file, crc32, io_error, uvarint_len, Decbuf, DecodeError, MappedFile,
};

/// Magic number at the start of each chunk segment.
pub const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
/// Segment format version.
pub const CHUNKS_FORMAT_V1: u8 = 1;
/// Header: magic (4), version (1), padding (3).
pub const SEGMENT_HEADER_SIZE: usize = 8;
/// Prometheus's default maximum segment size.
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 << 20;
/// Name of the chunk directory inside a block.
pub const CHUNKS_DIR: &str = "chunks";

/// Encoding byte of Prometheus's XOR (Gorilla) float chunks.
pub const ENCODING_XOR: u8 = 1;

/// A reference to a chunk in a block: segment index in the upper 32 bits,
/// byte offset within the segment in the lower 32.
pub type ChunkRef = u64;

pub fn chunk_ref(segment: u32, offset: u32) -> ChunkRef {
    (u64::from(segment) << 32) | u64::from(offset)
}

pub fn split_chunk_ref(r: ChunkRef) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}

/// Time range and location of one chunk, as the index stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkMeta {
    /// Timestamp of the first sample.
    pub min_time: i64,
    /// Timestamp of the last sample.
    pub max_time: i64,
    pub chunk_ref: ChunkRef,
}

impl ChunkMeta {
    pub fn overlaps_closed(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint <= self.max_time
    }
}

/// A chunk's bytes as stored in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawChunk<'a> {
    pub encoding: u8,
    pub data: &'a [u8],
}

/// File name of the segment with 0-based index `i` (`000001` is index 0).
pub fn segment_file_name(i: u32) -> String {
    format!("{:06}", u64::from(i) + 1)
}

/// Writes chunk segments into a directory, cutting a new segment when the
/// next chunk would pass the size limit.
pub struct ChunkWriter {
    dir: PathBuf,
    segment_size: u64,
    /// Index of the current segment; `None` before the first chunk.
    seq: Option<u32>,
    file: Option<BufWriter<File>>,
    pos: u64,
    /// Segments finished and not yet fsynced (synced in `finish`).
    done: Vec<File>,
    hdr: Vec<u8>,
}

impl ChunkWriter {
    /// Creates the directory (if needed) for a new set of segments.
    pub fn create(dir: &Path) -> Result<ChunkWriter, StorageError> {
        Self::with_segment_size(dir, DEFAULT_SEGMENT_SIZE)
    }

    /// Like `create` with a custom segment size limit (tests).
    pub fn with_segment_size(dir: &Path, segment_size: u64) -> Result<ChunkWriter, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create dir", dir, e))?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            segment_size: segment_size.clamp(SEGMENT_HEADER_SIZE as u64 + 16, u32::MAX as u64),
            seq: None,
            file: None,
            pos: 0,
            done: Vec::new(),
            hdr: Vec::with_capacity(16),
        })
    }

    fn cut(&mut self) -> Result<(), StorageError> {
        self.finish_segment()?;
        let seq = self.seq.map_or(0, |s| s + 1);
        let path = self.dir.join(segment_file_name(seq));
        let f = File::create(&path).map_err(|e| io_error("create", &path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut h = [0u8; SEGMENT_HEADER_SIZE];
        h[..4].copy_from_slice(&MAGIC_CHUNKS.to_be_bytes());
        h[4] = CHUNKS_FORMAT_V1;
        w.write_all(&h).map_err(|e| io_error("write", &path, e))?;
        self.file = Some(w);
        self.seq = Some(seq);
        self.pos = SEGMENT_HEADER_SIZE as u64;
        Ok(())
    }

    fn finish_segment(&mut self) -> Result<(), StorageError> {
        if let Some(w) = self.file.take() {
            let f = w
                .into_inner()
                .map_err(|e| io_error("flush", &self.dir, e.into_error()))?;
            self.done.push(f);
        }
        Ok(())
    }

    /// Appends one chunk and returns its reference.
    pub fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> Result<ChunkRef, StorageError> {
        let size = (uvarint_len(data.len() as u64) + 1 + data.len() + 4) as u64;
        if size + SEGMENT_HEADER_SIZE as u64 > u32::MAX as u64 {
            return Err(StorageError::Io(format!(
                "chunk of {} bytes is too large for a segment",
                data.len()
            )));
        }
        if self.file.is_none() || self.pos + size > self.segment_size {
            self.cut()?;
        }
        let seq = self.seq.unwrap_or(0);
        let offset = self.pos as u32;
        self.hdr.clear();
        let mut x = data.len() as u64;
        while x >= 0x80 {
            self.hdr.push((x as u8) | 0x80);
            x >>= 7;
        }
        self.hdr.push(x as u8);
        self.hdr.push(encoding);
        let mut crc = crc32c::crc32c(&[encoding]);
        crc = crc32c::crc32c_append(crc, data);
        let dir = &self.dir;
        let Some(w) = self.file.as_mut() else {
            return Err(StorageError::Io("chunk writer has no open segment".into()));
        };
        w.write_all(&self.hdr)
            .and_then(|_| w.write_all(data))
            .and_then(|_| w.write_all(&crc.to_be_bytes()))
            .map_err(|e| io_error("write chunk segment in", dir, e))?;
        self.pos += size;
        Ok(chunk_ref(seq, offset))
    }

    /// Flushes and fsyncs every segment written.
    pub fn finish(mut self) -> Result<(), StorageError> {
        self.finish_segment()?;
        for f in self.done.drain(..) {
            f.sync_all().map_err(|e| io_error("fsync", &self.dir, e))?;
        }
        Ok(())
    }
}

/// Memory-mapped chunk segments of one block.
pub struct ChunkReader {
    dir: PathBuf,
    segments: Vec<MappedFile>,
    size: u64,
}

impl ChunkReader {
    /// Maps every segment in `dir` and validates its header. Segment files
    /// must be named `000001`, `000002`, ... without gaps.
    pub fn open(dir: &Path) -> Result<ChunkReader, StorageError> {
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| io_error("read dir", dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| io_error("read dir", dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Ok(n) = name.parse::<u64>() {
                names.push((n, entry.path()));
            }
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        let mut size = 0;
        for (i, (n, path)) in names.iter().enumerate() {
            if *n != i as u64 + 1 {
                return Err(corruption_file(
                    dir,
                    format!(
                        "chunk segment files not sequential: expected {:06}, found {}",
                        i + 1,
                        path.display()
                    ),
                ));
            }
            let m = MappedFile::open(path)?;
            let b = m.bytes();
            if b.len() < SEGMENT_HEADER_SIZE {
                return Err(corruption_file(
                    path,
                    format!("segment of {} bytes is shorter than its header", b.len()),
                ));
            }
            let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if magic != MAGIC_CHUNKS {
                return Err(corruption(
                    path,
                    0,
                    format!("invalid magic number {magic:x}"),
                ));
            }
            if b[4] != CHUNKS_FORMAT_V1 {
                return Err(corruption(
                    path,
                    4,
                    format!("invalid chunk format version {}", b[4]),
                ));
            }
            if b.len() as u64 > u64::from(u32::MAX) + 1 {
                return Err(corruption_file(path, "segment larger than 4 GiB"));
            }
            size += b.len() as u64;
            segments.push(m);
        }
        Ok(ChunkReader {
            dir: dir.to_path_buf(),
            segments,
            size,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    fn segment_path(&self, seg: u32) -> PathBuf {
        self.dir.join(segment_file_name(seg))
    }

    /// The chunk at `r`, with its CRC verified.
    pub fn chunk(&self, r: ChunkRef) -> Result<RawChunk<'_>, StorageError> {
        self.locate(r, true).map(|(c, _)| c)
    }

    /// The chunk at `r` with bounds checked but without verifying its CRC.
    pub fn chunk_unchecked(&self, r: ChunkRef) -> Result<RawChunk<'_>, StorageError> {
        self.locate(r, false).map(|(c, _)| c)
    }

    /// Finds the chunk at `r`; also returns the offset just past its CRC.
    fn locate(&self, r: ChunkRef, check_crc: bool) -> Result<(RawChunk<'_>, usize), StorageError> {
        let (seg, off) = split_chunk_ref(r);
        let Some(m) = self.segments.get(seg as usize) else {
            return Err(corruption_file(
                &self.dir,
                format!(
                    "chunk reference {r} points to segment {} of {}",
                    u64::from(seg) + 1,
                    self.segments.len()
                ),
            ));
        };
        let b = m.bytes();
        let start = off as usize;
        if start < SEGMENT_HEADER_SIZE || start >= b.len() {
            return Err(corruption(
                &self.segment_path(seg),
                u64::from(off),
                format!("chunk offset out of range (segment is {} bytes)", b.len()),
            ));
        }
        let mut d = Decbuf::new(&b[start..]);
        let parse = |d: &mut Decbuf<'_>| -> Result<usize, DecodeError> {
            let len = d.uvarint()?;
            let len = usize::try_from(len).map_err(|_| DecodeError::new("length overflows"))?;
            if len.checked_add(5).is_none_or(|n| n > d.remaining()) {
                return Err(DecodeError::new(format!(
                    "chunk of {len} bytes runs past the segment end"
                )));
            }
            Ok(len)
        };
        let len =
            parse(&mut d).map_err(|e| corruption(&self.segment_path(seg), u64::from(off), e))?;
        let enc_at = start + d.pos();
        let crc_at = enc_at + 1 + len;
        let encoding = b[enc_at];
        if check_crc {
            let want = u32::from_be_bytes([b[crc_at], b[crc_at + 1], b[crc_at + 2], b[crc_at + 3]]);
            let got = crc32(&b[enc_at..crc_at]);
            if want != got {
                return Err(corruption(
                    &self.segment_path(seg),
                    u64::from(off),
                    format!("checksum mismatch: expected {want:08x}, actual {got:08x}"),
                ));
            }
        }
        Ok((
            RawChunk {
                encoding,
                data: &b[enc_at + 1..crc_at],
            },
            crc_at + 4,
        ))
    }

    /// Walks every chunk of every segment in file order (for verification),
    /// calling `f` with each reference and its CRC-checked chunk. Stops at the
    /// first corruption.
    pub fn for_each_chunk(
        &self,
        mut f: impl FnMut(ChunkRef, RawChunk<'_>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        for (i, m) in self.segments.iter().enumerate() {
            let len = m.bytes().len();
            let mut off = SEGMENT_HEADER_SIZE;
            while off < len {
                // Prometheus may pad a segment's tail with zeros.
                if m.bytes()[off..].iter().all(|&b| b == 0) {
                    break;
                }
                let r = chunk_ref(i as u32, off as u32);
                let (c, next) = self.locate(r, true)?;
                off = next;
                f(r, c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write_all(dir: &Path, chunks: &[(u8, Vec<u8>)], seg: u64) -> Vec<ChunkRef> {
        let mut w = ChunkWriter::with_segment_size(dir, seg).unwrap();
        let refs = chunks
            .iter()
            .map(|(e, d)| w.write_chunk(*e, d).unwrap())
            .collect();
        w.finish().unwrap();
        refs
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn segments_round_trip(
            chunks in proptest::collection::vec((1u8..4, proptest::collection::vec(any::<u8>(), 0..300)), 0..40),
            seg in 64u64..2048,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let refs = write_all(dir.path(), &chunks, seg);
            let r = ChunkReader::open(dir.path()).unwrap();
            for (rf, (e, d)) in refs.iter().zip(&chunks) {
                let c = r.chunk(*rf).unwrap();
                prop_assert_eq!(c.encoding, *e);
                prop_assert_eq!(c.data, &d[..]);
            }
            let mut seen = Vec::new();
            r.for_each_chunk(|rf, _| { seen.push(rf); Ok(()) }).unwrap();
            prop_assert_eq!(seen, refs);
        }
    }

    #[test]
    fn header_layout_and_refs() {
        let dir = tempfile::tempdir().unwrap();
        let refs = write_all(dir.path(), &[(1, vec![7; 10]), (1, vec![8; 10])], 39);
        // 8 + 1 + 1 + 10 + 4 = 24; the second chunk (16 bytes) would end at 40 > 39.
        assert_eq!(refs, vec![chunk_ref(0, 8), chunk_ref(1, 8)]);
        let b = std::fs::read(dir.path().join("000001")).unwrap();
        assert_eq!(&b[..8], &[0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0]);
        assert_eq!(b[8], 10);
        assert_eq!(b[9], 1);
        let crc = crc32(&b[9..20]);
        assert_eq!(&b[20..24], &crc.to_be_bytes());
        assert!(dir.path().join("000002").exists());
    }

    #[test]
    fn corruption_is_detected_not_panicked() {
        let dir = tempfile::tempdir().unwrap();
        let refs = write_all(
            dir.path(),
            &[(1, vec![1, 2, 3, 4, 5])],
            DEFAULT_SEGMENT_SIZE,
        );
        let path = dir.path().join("000001");
        let good = std::fs::read(&path).unwrap();

        // Flipped data byte: CRC mismatch.
        let mut b = good.clone();
        b[11] ^= 0xff;
        std::fs::write(&path, &b).unwrap();
        let r = ChunkReader::open(dir.path()).unwrap();
        assert!(matches!(
            r.chunk(refs[0]),
            Err(StorageError::Corruption { .. })
        ));
        assert!(r.chunk_unchecked(refs[0]).is_ok());

        // Length running past the end.
        let mut b = good.clone();
        b[8] = 0x7f;
        std::fs::write(&path, &b).unwrap();
        let r = ChunkReader::open(dir.path()).unwrap();
        assert!(matches!(
            r.chunk(refs[0]),
            Err(StorageError::Corruption { .. })
        ));

        // Reference outside the file or the segment list.
        assert!(r.chunk(chunk_ref(0, 5000)).is_err());
        assert!(r.chunk(chunk_ref(3, 8)).is_err());
        assert!(r.chunk(chunk_ref(0, 2)).is_err());

        // Bad magic, bad version, short header: the open fails.
        for (i, v) in [(0usize, 0u8), (4, 2)] {
            let mut b = good.clone();
            b[i] = v;
            std::fs::write(&path, &b).unwrap();
            assert!(matches!(
                ChunkReader::open(dir.path()),
                Err(StorageError::Corruption { .. })
            ));
        }
        std::fs::write(&path, &good[..5]).unwrap();
        assert!(ChunkReader::open(dir.path()).is_err());

        // A gap in segment numbering.
        std::fs::write(&path, &good).unwrap();
        std::fs::write(dir.path().join("000003"), &good).unwrap();
        assert!(ChunkReader::open(dir.path()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200), r in any::<u64>()) {
            let dir = tempfile::tempdir().unwrap();
            let mut b = vec![0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0];
            b.extend_from_slice(&body);
            std::fs::write(dir.path().join("000001"), &b).unwrap();
            let rd = ChunkReader::open(dir.path()).unwrap();
            let _ = rd.chunk(r & 0x1_0000_00ff);
            let _ = rd.for_each_chunk(|_, _| Ok(()));
        }
    }
}
