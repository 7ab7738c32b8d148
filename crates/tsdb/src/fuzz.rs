//! Entry points for fuzzing the decoders of bytes read from disk: each
//! feeds arbitrary bytes to one decoder and reads everything it exposes.
//!
//! Used by the proptest harness in the repository's `tests/fuzz_decoders.rs`
//! and by the cargo-fuzz targets in `fuzz/`. A call must never panic; it
//! returns `Err` with the decoder's message when the bytes are rejected.
//! Not part of the API: nothing else may depend on it.

use std::path::Path;

use vigil_model::storage::StorageError;

use crate::binfmt::MappedFile;
use crate::chunkenc::{ChunkIter, Encoding, XorChunk};
use crate::chunks::ChunkReader;
use crate::head_chunks::ChunkDiskMapper;
use crate::index::IndexReader;
use crate::wal::record::{self, RecordType};
use crate::wal::{RecordReader, WalTailer};

/// What a decoder made of its input: values read, or its error.
pub type Outcome = Result<usize, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Bytes as an in-memory "file" (anonymous mapping), for readers that
/// take a mapping.
fn anon(b: &[u8]) -> Result<MappedFile, String> {
    if b.is_empty() {
        return Ok(MappedFile::Empty);
    }
    let mut m = memmap2::MmapMut::map_anon(b.len()).map_err(err)?;
    m.copy_from_slice(b);
    m.make_read_only().map(MappedFile::Mapped).map_err(err)
}

/// Decodes every sample of a chunk of any encoding.
fn drain_chunk(encoding: u8, data: &[u8]) -> Outcome {
    let mut it = ChunkIter::from_raw(encoding, data).map_err(err)?;
    let mut n = 0;
    while it.next().map_err(err)?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// A WAL record of any type, decoded as its type byte says.
pub fn wal_record(rec: &[u8]) -> Outcome {
    match RecordType::of(rec) {
        Some(RecordType::Series) => {
            let mut v = Vec::new();
            record::decode_series(rec, &mut v).map_err(err)?;
            Ok(v.len())
        }
        Some(RecordType::Samples) => {
            let mut v = Vec::new();
            record::decode_samples(rec, &mut v).map_err(err)?;
            Ok(v.len())
        }
        Some(RecordType::Tombstones) => {
            let mut v = Vec::new();
            record::decode_tombstones(rec, &mut v).map_err(err)?;
            Ok(v.len())
        }
        Some(RecordType::Exemplars) => {
            let mut v = Vec::new();
            record::decode_exemplars(rec, &mut v).map_err(err)?;
            Ok(v.len())
        }
        _ => Err("unknown record type".into()),
    }
}

/// A WAL segment (pages, fragments, CRCs, snappy) read by the replay reader
/// and by the tailer, each record decoded. `dir` must be an empty scratch
/// directory.
pub fn wal_segment(dir: &Path, bytes: &[u8]) -> Outcome {
    let seg = dir.join(crate::wal::segment_name(0));
    std::fs::write(&seg, bytes).map_err(err)?;
    let mut n = 0;
    let mut r = RecordReader::from_dir(dir, 0).map_err(err)?;
    let res = loop {
        match r.next() {
            Ok(Some(rec)) => {
                n += 1;
                let _ = wal_record(rec);
            }
            Ok(None) => break Ok(n),
            Err(e) => break Err(err(e)),
        }
    };
    let mut t = WalTailer::new(dir, 0);
    while let Ok(Some(_)) = t.next() {}
    let _ = std::fs::remove_file(&seg);
    res
}

/// An index file: TOC, symbols, postings offset table, label indices, every
/// postings list and every series it references.
pub fn index(bytes: &[u8]) -> Outcome {
    let r = IndexReader::from_mapped(Path::new("<fuzz>/index"), anon(bytes)?).map_err(err)?;
    let mut n = 0;
    for id in r.all_postings().map_err(err)? {
        r.series(id).map_err(err)?;
        n += 1;
    }
    for name in r.label_names() {
        for v in r.label_values(name).map_err(err)? {
            n += r.postings(name, v).map_err(err)?.len();
        }
    }
    r.verify_label_indices().map_err(err)?;
    r.scan_series_ids().map_err(err)?;
    Ok(n)
}

/// A block chunk segment (`chunks/000001`): every chunk walked, CRC-checked
/// and decoded. `dir` must be an empty scratch directory.
pub fn chunk_segment(dir: &Path, bytes: &[u8]) -> Outcome {
    let path = dir.join(crate::chunks::segment_file_name(0));
    std::fs::write(&path, bytes).map_err(err)?;
    let res = (|| {
        let r = ChunkReader::open(dir).map_err(err)?;
        let mut n = 0;
        r.for_each_chunk(|_, c| {
            n += drain_chunk(c.encoding, c.data).unwrap_or(0);
            Ok(())
        })
        .map_err(err)?;
        Ok(n)
    })();
    let _ = std::fs::remove_file(&path);
    res
}

/// An XOR chunk's bytes: decoded to the end, and appended to (as the head
/// does with a chunk read back).
pub fn xor_chunk(bytes: &[u8]) -> Outcome {
    let n = drain_chunk(Encoding::Xor.as_u8(), bytes)?;
    if let Ok(mut c) = XorChunk::from_bytes(bytes.to_vec()) {
        let t = if c.num_samples() > 0 { c.last_t() } else { 0 };
        let _ = c.append(t.saturating_add(1), 1.0);
        let mut it = c.iter();
        while let Ok(Some(_)) = it.next() {}
    }
    Ok(n)
}

/// A block's `meta.json`.
pub fn meta_json(bytes: &[u8]) -> Outcome {
    let m = crate::meta::decode_meta(bytes, Path::new("<fuzz>/meta.json")).map_err(err)?;
    Ok(m.compaction.sources.len() + m.compaction.parents.len())
}

/// A block's `tombstones` file.
pub fn tombstones(bytes: &[u8]) -> Outcome {
    let t = crate::tombstones::Tombstones::decode(bytes, Path::new("<fuzz>/tombstones"))
        .map_err(|e: StorageError| err(e))?;
    Ok(t.total() as usize)
}

/// A head chunk file (`chunks_head/000001`), opened read-only (nothing is
/// repaired): every chunk scanned, read back by reference and decoded.
/// `dir` must be an empty scratch directory.
pub fn head_chunk_file(dir: &Path, bytes: &[u8]) -> Outcome {
    let path = dir.join("000001");
    std::fs::write(&path, bytes).map_err(err)?;
    let res = (|| {
        let m = ChunkDiskMapper::open_read_only(dir).map_err(err)?;
        if m.file_seqs().is_empty() && !bytes.is_empty() {
            // What a crash right after creating a file leaves: skipped.
            return Err("file shorter than its header".to_string());
        }
        let mut refs = Vec::new();
        let scan = m.iterate_all(|c| refs.push(c.chunk_ref));
        let mut n = 0;
        for r in refs {
            let c = m.chunk(r).map_err(err)?;
            n += drain_chunk(c.encoding(), c.data()).unwrap_or(0);
        }
        scan.map_err(err)?;
        Ok(n)
    })();
    let _ = std::fs::remove_file(&path);
    res
}
