//! `vigil tsdb verify DIR`: reads everything in a data directory and says
//! which blocks are corrupt.
//!
//! For each block: meta.json, the index (header, TOC, every section CRC,
//! series order, sorted postings that agree with the series), every chunk
//! reference and chunk CRC, every sample's order and range, tombstones. For
//! the head: every WAL and checkpoint record, and every chunk in
//! `chunks_head/`. It only reads, so it is safe next to a running server; a
//! block deleted or a file extended meanwhile is reported, not failed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use vigil_model::storage::StorageError;
use vigil_model::Labels;

use crate::binfmt::{crc32, Decbuf};
use crate::block::list_block_dirs;
use crate::chunkenc::ChunkIter;
use crate::chunks::{ChunkReader, CHUNKS_DIR};
use crate::head_chunks::{FILE_HEADER_SIZE, HEAD_CHUNKS_FORMAT_V1, MAGIC_HEAD_CHUNKS};
use crate::index::{IndexReader, INDEX_FILENAME};
use crate::meta::read_meta;
use crate::tombstones::read_tombstones;
use crate::wal::record::{self, RecordType};
use crate::wal::{list_checkpoints, list_segments, RecordReader};

/// Problems kept per block; the rest are only counted.
const MAX_PROBLEMS: usize = 20;

/// The verdict on one block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockVerdict {
    /// The directory name (the ULID).
    pub name: String,
    pub dir: PathBuf,
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
    /// Corruption found; empty when the block is sound.
    pub problems: Vec<String>,
    /// Problems beyond `problems.len()`.
    pub more_problems: usize,
    /// Inconsistencies that lose no data (e.g. stats in meta.json).
    pub warnings: Vec<String>,
}

impl BlockVerdict {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, p: impl fmt::Display) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p.to_string());
        } else {
            self.more_problems += 1;
        }
    }
}

/// The verdict on the head's files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadVerdict {
    pub wal_segments: usize,
    pub wal_records: u64,
    pub checkpoints: usize,
    pub head_chunk_files: usize,
    pub head_chunks: u64,
    pub problems: Vec<String>,
    /// E.g. a torn record at the very end of the newest segment, which a
    /// server being written to shows and which start-up repairs.
    pub warnings: Vec<String>,
}

/// Everything `verify` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyReport {
    pub blocks: Vec<BlockVerdict>,
    pub head: HeadVerdict,
}

impl VerifyReport {
    /// True when no block and no head file is corrupt.
    pub fn is_ok(&self) -> bool {
        self.blocks.iter().all(BlockVerdict::is_ok) && self.head.problems.is_empty()
    }

    /// Names (ULIDs) of the corrupt blocks.
    pub fn corrupt_blocks(&self) -> Vec<&str> {
        self.blocks
            .iter()
            .filter(|b| !b.is_ok())
            .map(|b| b.name.as_str())
            .collect()
    }
}

/// One verdict line per block, then one for the head.
impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.blocks {
            if b.is_ok() {
                write!(
                    f,
                    "block {} ok: {} series, {} chunks, {} samples",
                    b.name, b.series, b.chunks, b.samples
                )?;
                if !b.warnings.is_empty() {
                    write!(f, " (warning: {})", b.warnings.join("; "))?;
                }
                writeln!(f)?;
            } else {
                let more = b.problems.len() - 1 + b.more_problems;
                write!(f, "block {} CORRUPT: {}", b.name, b.problems[0])?;
                if more > 0 {
                    write!(f, " (and {more} more problems)")?;
                }
                writeln!(f)?;
            }
        }
        let h = &self.head;
        if h.problems.is_empty() {
            write!(
                f,
                "head ok: {} WAL segments, {} records, {} checkpoints, {} head chunk files, {} chunks",
                h.wal_segments, h.wal_records, h.checkpoints, h.head_chunk_files, h.head_chunks
            )?;
            if !h.warnings.is_empty() {
                write!(f, " (warning: {})", h.warnings.join("; "))?;
            }
            writeln!(f)
        } else {
            writeln!(f, "head CORRUPT: {}", h.problems.join("; "))
        }
    }
}

/// Verifies every block and the head files of the data dir `dir`.
pub fn verify(dir: &Path) -> Result<VerifyReport, StorageError> {
    let mut report = VerifyReport::default();
    for (u, p) in list_block_dirs(dir)? {
        let mut v = verify_block(&p);
        v.name = u.to_string();
        // A block removed by a running server's compaction is not corrupt.
        if !v.is_ok() && !p.exists() {
            continue;
        }
        report.blocks.push(v);
    }
    report.head = verify_head(dir);
    Ok(report)
}

/// Verifies one block directory.
pub fn verify_block(dir: &Path) -> BlockVerdict {
    let mut v = BlockVerdict {
        dir: dir.to_path_buf(),
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        ..Default::default()
    };
    let meta = match read_meta(dir) {
        Ok(m) => m,
        Err(e) => {
            v.problem(format!("meta.json: {e}"));
            return v;
        }
    };
    let chunks = match ChunkReader::open(&dir.join(CHUNKS_DIR)) {
        Ok(c) => Some(c),
        Err(e) => {
            v.problem(format!("chunks: {e}"));
            None
        }
    };
    let ix = match IndexReader::open(&dir.join(INDEX_FILENAME)) {
        Ok(ix) => ix,
        Err(e) => {
            v.problem(format!("index: {e}"));
            return v;
        }
    };
    if let Err(e) = ix.verify_label_indices() {
        v.problem(format!("index: {e}"));
    }
    if let Err(e) = read_tombstones(dir) {
        v.problem(format!("tombstones: {e}"));
    }

    let ids = match ix.scan_series_ids() {
        Ok(ids) => ids,
        Err(e) => {
            v.problem(format!("index: {e}"));
            return v;
        }
    };
    match ix.all_postings() {
        Ok(all) if all == ids => {}
        Ok(_) => v.problem("index: the all-series postings list disagrees with the series section"),
        Err(e) => v.problem(format!("index: {e}")),
    }

    // Series: order, chunk metas, chunks, samples; and the label pairs they
    // hold, to check the postings against.
    let mut pairs: HashMap<(String, String), u64> = HashMap::new();
    let mut prev: Option<Labels> = None;
    for &id in &ids {
        let e = match ix.series(id) {
            Ok(e) => e,
            Err(err) => {
                v.problem(format!("index: {err}"));
                continue;
            }
        };
        if let Some(p) = &prev {
            if e.labels <= *p {
                v.problem(format!("index: series {} out of order after {p}", e.labels));
            }
        }
        for l in &e.labels {
            *pairs.entry((l.name.clone(), l.value.clone())).or_default() += 1;
        }
        v.series += 1;
        let mut last_max: Option<i64> = None;
        for c in &e.chunks {
            v.chunks += 1;
            if c.max_time < c.min_time || last_max.is_some_and(|m| c.min_time <= m) {
                v.problem(format!(
                    "series {}: chunk metas overlap or are unordered",
                    e.labels
                ));
            }
            if c.min_time < meta.min_time || c.max_time >= meta.max_time {
                v.problem(format!(
                    "series {}: chunk [{}, {}] outside the block range [{}, {})",
                    e.labels, c.min_time, c.max_time, meta.min_time, meta.max_time
                ));
            }
            last_max = Some(c.max_time);
            let Some(cr) = &chunks else { continue };
            let raw = match cr.chunk(c.chunk_ref) {
                Ok(r) => r,
                Err(err) => {
                    v.problem(format!("series {}: {err}", e.labels));
                    continue;
                }
            };
            match count_chunk(raw.encoding, raw.data, c.min_time, c.max_time) {
                Ok(n) => v.samples += n,
                Err(err) => v.problem(format!("series {} chunk {}: {err}", e.labels, c.chunk_ref)),
            }
        }
        prev = Some(e.labels);
    }

    // Postings: sorted, pointing at real series, as long as the series say.
    for name in ix.label_names() {
        let mut offs = Vec::new();
        if let Err(e) = ix.for_each_value(name, "", |val, off| {
            offs.push((val.to_string(), off));
            true
        }) {
            v.problem(format!("index: {e}"));
            continue;
        }
        for (val, off) in offs {
            match ix.read_postings(off) {
                Ok(list) => {
                    if list.windows(2).any(|w| w[0] >= w[1]) {
                        v.problem(format!("index: postings of {name}={val:?} not sorted"));
                    }
                    if list.iter().any(|id| ids.binary_search(id).is_err()) {
                        v.problem(format!(
                            "index: postings of {name}={val:?} point to no series"
                        ));
                    }
                    let want = pairs.remove(&(name.to_string(), val.clone())).unwrap_or(0);
                    if list.len() as u64 != want {
                        v.problem(format!(
                            "index: postings of {name}={val:?} list {} series, the series hold {want}",
                            list.len()
                        ));
                    }
                }
                Err(e) => v.problem(format!("index: {e}")),
            }
        }
    }
    if let Some(((n, val), _)) = pairs.into_iter().next() {
        v.problem(format!(
            "index: label pair {n}={val:?} of a series has no postings"
        ));
    }

    let s = &meta.stats;
    if (s.num_series, s.num_chunks, s.num_samples) != (v.series, v.chunks, v.samples) {
        v.warnings.push(format!(
            "meta.json stats say {} series, {} chunks, {} samples",
            s.num_series, s.num_chunks, s.num_samples
        ));
    }
    v
}

/// Decodes a chunk fully; returns its sample count.
fn count_chunk(encoding: u8, data: &[u8], mint: i64, maxt: i64) -> Result<u64, String> {
    let mut it = ChunkIter::from_raw(encoding, data).map_err(|e| e.to_string())?;
    let announced = it.num_samples() as u64;
    let mut n = 0u64;
    let mut last: Option<i64> = None;
    while let Some(s) = it.next().map_err(|e| e.to_string())? {
        if last.is_some_and(|l| s.t <= l) {
            return Err(format!("timestamps not increasing at sample {n}"));
        }
        if s.t < mint || s.t > maxt {
            return Err(format!(
                "sample at {} outside the chunk's [{mint}, {maxt}]",
                s.t
            ));
        }
        if n == 0 && s.t != mint {
            return Err(format!("first sample at {} but the index says {mint}", s.t));
        }
        last = Some(s.t);
        n += 1;
    }
    if last.is_some_and(|l| l != maxt) {
        return Err(format!(
            "last sample at {} but the index says {maxt}",
            last.unwrap_or(0)
        ));
    }
    if n != announced {
        return Err(format!("{n} samples decoded, header says {announced}"));
    }
    Ok(n)
}

fn verify_head(dir: &Path) -> HeadVerdict {
    let mut h = HeadVerdict::default();
    let wal = dir.join("wal");
    if wal.exists() {
        match list_checkpoints(&wal) {
            Ok(cps) => {
                h.checkpoints = cps.len();
                for (_, p) in cps {
                    read_records(&p, &mut h, false);
                }
            }
            Err(e) => h.problems.push(format!("WAL checkpoints: {e}")),
        }
        read_records(&wal, &mut h, true);
    }
    let ch = dir.join("chunks_head");
    if ch.exists() {
        verify_head_chunks(&ch, &mut h);
    }
    h
}

/// Reads and decodes every record of the segments in `dir`.
fn read_records(dir: &Path, h: &mut HeadVerdict, live: bool) {
    let segs = match list_segments(dir) {
        Ok(s) => s,
        Err(e) => {
            h.problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    if live {
        h.wal_segments = segs.len();
    }
    let last_seg = segs.last().map(|s| s.index);
    let mut r = match RecordReader::new(dir, segs) {
        Ok(r) => r,
        Err(e) => {
            h.problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    let (mut series, mut samples, mut stones, mut ex) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    loop {
        let rec = match r.next_with_segment() {
            Ok(Some((_, rec))) => rec,
            Ok(None) => break,
            Err(e) => {
                // The newest segment of a live WAL may end in a record still
                // being written.
                if live && r.segment() == last_seg {
                    h.warnings
                        .push(format!("incomplete tail in the newest WAL segment: {e}"));
                } else {
                    h.problems.push(format!("{}: {e}", dir.display()));
                }
                break;
            }
        };
        h.wal_records += 1;
        let res = match RecordType::of(rec) {
            Some(RecordType::Series) => record::decode_series(rec, &mut series),
            Some(RecordType::Samples) => record::decode_samples(rec, &mut samples),
            Some(RecordType::Tombstones) => record::decode_tombstones(rec, &mut stones),
            Some(RecordType::Exemplars) => record::decode_exemplars(rec, &mut ex),
            Some(_) => Ok(()),
            None => Err(record::RecordError::InvalidType(
                rec.first().copied().unwrap_or(0),
            )),
        };
        series.clear();
        samples.clear();
        stones.clear();
        ex.clear();
        if let Err(e) = res {
            h.problems
                .push(format!("{} record {}: {e}", dir.display(), h.wal_records));
        }
    }
}

/// Checks `chunks_head/` files: header, sequence, every chunk's CRC.
fn verify_head_chunks(dir: &Path, h: &mut HeadVerdict) {
    let mut files: Vec<(u32, PathBuf)> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((n, e.path()))
            })
            .collect(),
        Err(e) => {
            h.problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    files.sort();
    h.head_chunk_files = files.len();
    for (i, (seq, path)) in files.iter().enumerate() {
        if i > 0 && *seq != files[i - 1].0 + 1 {
            h.problems.push(format!(
                "{}: out of sequence after {}",
                path.display(),
                files[i - 1].0
            ));
        }
        let b = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                h.problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let newest = i + 1 == files.len();
        if b.len() < FILE_HEADER_SIZE {
            if !newest {
                h.problems
                    .push(format!("{}: shorter than its header", path.display()));
            }
            continue;
        }
        if u32::from_be_bytes([b[0], b[1], b[2], b[3]]) != MAGIC_HEAD_CHUNKS
            || b[4] != HEAD_CHUNKS_FORMAT_V1
        {
            h.problems
                .push(format!("{}: bad magic or version", path.display()));
            continue;
        }
        let mut off = FILE_HEADER_SIZE;
        while off < b.len() {
            if b[off..].iter().all(|&x| x == 0) {
                break;
            }
            match parse_head_chunk(&b, off) {
                Ok(next) => {
                    h.head_chunks += 1;
                    off = next;
                }
                Err(e) => {
                    let msg = format!("{} at offset {off}: {e}", path.display());
                    if newest {
                        h.warnings.push(msg);
                    } else {
                        h.problems.push(msg);
                    }
                    break;
                }
            }
        }
    }
}

/// One head chunk: ref, mint, maxt (8 bytes each), encoding, uvarint length,
/// data, CRC32 of everything before it. Returns the offset after it.
fn parse_head_chunk(b: &[u8], off: usize) -> Result<usize, String> {
    let mut d = Decbuf::new(&b[off..]);
    d.bytes(25).map_err(|e| e.to_string())?;
    let len = d.uvarint().map_err(|e| e.to_string())?;
    let len = usize::try_from(len).map_err(|_| "length overflows".to_string())?;
    d.bytes(len).map_err(|e| e.to_string())?;
    let body_end = off + d.pos();
    let want = d.be32().map_err(|e| e.to_string())?;
    if crc32(&b[off..body_end]) != want {
        return Err("checksum mismatch".into());
    }
    Ok(off + d.pos())
}
