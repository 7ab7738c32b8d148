//! Reading WAL segments back: replay (`RecordReader`), tailing a live WAL
//! (`WalTailer`, for remote write), and repairing a corrupt tail (`repair`).
//!
//! Every check Prometheus's reader makes is made here (fragment sequence,
//! length, CRC, zero padding); anything wrong is a `Corruption` error that
//! says how many bytes of the segment are intact, never a panic.

use super::{
    list_segments, segment_name, WalError, PAGE_SIZE, RECORD_HEADER_SIZE, REC_FIRST, REC_FULL,
    REC_LAST, REC_MIDDLE, REC_PAGE_TERM, SNAPPY_MASK,
};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// One segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRef {
    pub index: u32,
    pub path: PathBuf,
}

/// Bytes read from a segment per read(2).
const READ_CHUNK: usize = 256 * 1024;

/// Bytes of one segment, read incrementally. Parsing works on a cursor and
/// commits only whole records, so a reader can stop at an incomplete record
/// and retry it later (tailing).
struct SegmentBuf {
    index: u32,
    file: File,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    /// Consumed bytes of `buf` (whole records and padding).
    pos: usize,
}

impl SegmentBuf {
    fn open(seg: &SegmentRef) -> Result<Self, WalError> {
        let file = File::open(&seg.path).map_err(|e| WalError::io("opening", &seg.path, e))?;
        Ok(SegmentBuf {
            index: seg.index,
            file,
            buf: Vec::new(),
            base: 0,
            pos: 0,
        })
    }

    /// Makes at least `need` bytes available from `p`; false at end of file.
    fn fill(&mut self, p: usize, need: usize) -> io::Result<bool> {
        while self.buf.len() < p + need {
            let old = self.buf.len();
            self.buf.resize(old + READ_CHUNK.max(need), 0);
            let n = loop {
                match self.file.read(&mut self.buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(old);
                        return Err(e);
                    }
                }
            };
            self.buf.truncate(old + n);
            if n == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Drops consumed bytes now and then to bound memory; only between
    /// records, when no cursor into `buf` is live.
    fn compact(&mut self) {
        if self.pos >= READ_CHUNK * 4 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
    }

    fn offset(&self, p: usize) -> u64 {
        self.base + p as u64
    }
}

/// Outcome of parsing at the current position.
enum Parsed {
    /// A record is in `rec`.
    Record,
    /// Clean end of the bytes written so far (at a record boundary).
    End,
    /// The bytes end inside a record or its padding.
    Torn(String),
    Corrupt(String),
}

/// Record assembly shared by the replay reader and the tailer.
#[derive(Default)]
struct Assembler {
    rec: Vec<u8>,
    snappy: Vec<u8>,
    dec: Option<snap::raw::Decoder>,
}

impl Assembler {
    /// Parses one record starting at `seg.pos`; commits `seg.pos` only when
    /// it returns `Record` (or skips padding up to a clean `End`).
    fn parse(&mut self, seg: &mut SegmentBuf) -> io::Result<Parsed> {
        self.rec.clear();
        self.snappy.clear();
        seg.compact();
        let mut p = seg.pos;
        let mut i = 0usize;
        loop {
            if !seg.fill(p, 1)? {
                if i == 0 {
                    seg.pos = p;
                    return Ok(Parsed::End);
                }
                return Ok(Parsed::Torn("last record is torn".into()));
            }
            let head = seg.buf[p];
            let typ = head & 0x07;
            let in_page = (seg.offset(p) % PAGE_SIZE as u64) as usize;
            if typ == REC_PAGE_TERM {
                if head != 0 {
                    return Ok(Parsed::Corrupt(format!(
                        "unexpected record type byte {head:#x}"
                    )));
                }
                // The rest of the page must be zeros.
                let k = PAGE_SIZE - in_page;
                if !seg.fill(p, k)? {
                    if seg.buf[p..].iter().any(|&b| b != 0) {
                        return Ok(Parsed::Corrupt(
                            "unexpected non-zero byte in padded page".into(),
                        ));
                    }
                    return Ok(Parsed::Torn(if i == 0 {
                        "segment ends inside page padding".into()
                    } else {
                        "last record is torn".into()
                    }));
                }
                if seg.buf[p..p + k].iter().any(|&b| b != 0) {
                    return Ok(Parsed::Corrupt(
                        "unexpected non-zero byte in padded page".into(),
                    ));
                }
                p += k;
                if i == 0 {
                    seg.pos = p;
                }
                continue;
            }
            if head & !(0x07 | SNAPPY_MASK) != 0 {
                return Ok(Parsed::Corrupt(format!(
                    "unsupported record flags {head:#x} (only snappy compression is supported)"
                )));
            }
            let compressed = head & SNAPPY_MASK != 0;
            if !seg.fill(p, RECORD_HEADER_SIZE)? {
                return Ok(Parsed::Torn("last record is torn".into()));
            }
            let h = &seg.buf[p..p + RECORD_HEADER_SIZE];
            let len = u16::from_be_bytes([h[1], h[2]]) as usize;
            let crc = u32::from_be_bytes([h[3], h[4], h[5], h[6]]);
            if len > PAGE_SIZE - RECORD_HEADER_SIZE
                || in_page + RECORD_HEADER_SIZE + len > PAGE_SIZE
            {
                return Ok(Parsed::Corrupt(format!("invalid record size {len}")));
            }
            if !seg.fill(p, RECORD_HEADER_SIZE + len)? {
                return Ok(Parsed::Torn("last record is torn".into()));
            }
            let data = &seg.buf[p + RECORD_HEADER_SIZE..p + RECORD_HEADER_SIZE + len];
            let got = crc32c::crc32c(data);
            if got != crc {
                return Ok(Parsed::Corrupt(format!(
                    "unexpected checksum {got:x}, expected {crc:x}"
                )));
            }
            let seq_err = match typ {
                REC_FULL if i != 0 => Some("unexpected full record"),
                REC_FIRST if i != 0 => Some("unexpected first record"),
                REC_MIDDLE if i == 0 => Some("unexpected middle record"),
                REC_LAST if i == 0 => Some("unexpected last record"),
                REC_FULL | REC_FIRST | REC_MIDDLE | REC_LAST => None,
                _ => Some("unexpected record type"),
            };
            if let Some(e) = seq_err {
                return Ok(Parsed::Corrupt(e.into()));
            }
            if compressed {
                self.snappy.extend_from_slice(data);
            } else {
                self.rec.extend_from_slice(data);
            }
            p += RECORD_HEADER_SIZE + len;
            if typ == REC_FULL || typ == REC_LAST {
                if !self.snappy.is_empty() {
                    if let Err(reason) = self.decompress() {
                        return Ok(Parsed::Corrupt(reason));
                    }
                }
                seg.pos = p;
                return Ok(Parsed::Record);
            }
            i += 1;
        }
    }

    fn decompress(&mut self) -> Result<(), String> {
        let n = snap::raw::decompress_len(&self.snappy).map_err(|e| format!("snappy: {e}"))?;
        // Bound the allocation by the input: snappy expands at most ~64x.
        if n > self.snappy.len() * 64 + 1024 {
            return Err(format!(
                "snappy length {n} implausible for {} input bytes",
                self.snappy.len()
            ));
        }
        let start = self.rec.len();
        self.rec.resize(start + n, 0);
        let dec = self.dec.get_or_insert_with(snap::raw::Decoder::new);
        match dec.decompress(&self.snappy, &mut self.rec[start..]) {
            Ok(m) if m == n => Ok(()),
            Ok(m) => Err(format!("snappy produced {m} bytes, expected {n}")),
            Err(e) => Err(format!("snappy: {e}")),
        }
    }
}

/// Reads the records of a sequence of segments in order (replay).
///
/// A segment that ends inside a record, or any corrupt byte, gives a
/// `Corruption` error whose `segment`/`offset` is the repair point: the
/// bytes of that segment before `offset` hold only whole, valid records.
pub struct RecordReader {
    dir: PathBuf,
    segments: Vec<SegmentRef>,
    next: usize,
    cur: Option<SegmentBuf>,
    asm: Assembler,
    records: u64,
}

impl RecordReader {
    /// Reads the given segments (e.g. from `list_segments`), which must be
    /// consecutive.
    pub fn new(dir: &Path, segments: Vec<SegmentRef>) -> Result<Self, WalError> {
        for w in segments.windows(2) {
            if w[1].index != w[0].index + 1 {
                return Err(WalError::Gap {
                    dir: dir.to_path_buf(),
                    prev: w[0].index,
                    next: w[1].index,
                });
            }
        }
        Ok(RecordReader {
            dir: dir.to_path_buf(),
            segments,
            next: 0,
            cur: None,
            asm: Assembler::default(),
            records: 0,
        })
    }

    /// All segments of `dir` with index >= `from`.
    pub fn from_dir(dir: &Path, from: u32) -> Result<Self, WalError> {
        let segs = list_segments(dir)?
            .into_iter()
            .filter(|s| s.index >= from)
            .collect();
        Self::new(dir, segs)
    }

    /// Records returned so far.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Index of the segment being read.
    pub fn segment(&self) -> Option<u32> {
        self.cur.as_ref().map(|s| s.index)
    }

    /// The next record, `None` after the last one.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&[u8]>, WalError> {
        Ok(self.next_with_segment()?.map(|(_, r)| r))
    }

    /// The next record and the index of the segment it came from.
    pub fn next_with_segment(&mut self) -> Result<Option<(u32, &[u8])>, WalError> {
        loop {
            if self.cur.is_none() {
                let Some(seg) = self.segments.get(self.next) else {
                    return Ok(None);
                };
                self.next += 1;
                self.cur = Some(SegmentBuf::open(seg)?);
            }
            let Some(seg) = self.cur.as_mut() else {
                continue;
            };
            let parsed = self
                .asm
                .parse(seg)
                .map_err(|e| WalError::io("reading", &self.dir.join(segment_name(seg.index)), e))?;
            match parsed {
                Parsed::Record => {
                    self.records += 1;
                    return Ok(Some((seg.index, &self.asm.rec)));
                }
                Parsed::End => self.cur = None,
                Parsed::Torn(reason) | Parsed::Corrupt(reason) => {
                    return Err(WalError::Corruption {
                        dir: self.dir.clone(),
                        segment: seg.index,
                        offset: seg.offset(seg.pos),
                        reason,
                    })
                }
            }
        }
    }
}

/// What `repair` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepairStats {
    pub bytes_dropped: u64,
    pub segments_removed: u32,
}

/// Repairs after a `Corruption` error: cuts segment `segment` to `offset`
/// bytes and removes every later segment, as Prometheus does.
pub fn repair(dir: &Path, segment: u32, offset: u64) -> Result<RepairStats, WalError> {
    let mut stats = RepairStats::default();
    for s in list_segments(dir)? {
        if s.index < segment {
            continue;
        }
        let len = fs::metadata(&s.path)
            .map_err(|e| WalError::io("stat", &s.path, e))?
            .len();
        if s.index == segment {
            if len > offset {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&s.path)
                    .map_err(|e| WalError::io("opening", &s.path, e))?;
                f.set_len(offset)
                    .map_err(|e| WalError::io("truncating", &s.path, e))?;
                f.sync_all()
                    .map_err(|e| WalError::io("syncing", &s.path, e))?;
                stats.bytes_dropped += len - offset;
            }
        } else {
            fs::remove_file(&s.path).map_err(|e| WalError::io("removing", &s.path, e))?;
            stats.bytes_dropped += len;
            stats.segments_removed += 1;
        }
    }
    super::sync_dir(dir)?;
    Ok(stats)
}

/// Follows a WAL as it is written (for remote write): returns each record
/// once it is complete, moves to the next segment when the writer has, and
/// returns `Ok(None)` when it has caught up (call again later).
pub struct WalTailer {
    dir: PathBuf,
    segment: u32,
    cur: Option<SegmentBuf>,
    asm: Assembler,
}

impl WalTailer {
    /// Starts at the beginning of segment `segment` of the WAL in `dir`.
    pub fn new(dir: &Path, segment: u32) -> Self {
        WalTailer {
            dir: dir.to_path_buf(),
            segment,
            cur: None,
            asm: Assembler::default(),
        }
    }

    /// Segment being read and the offset of the next unread record in it.
    pub fn position(&self) -> (u32, u64) {
        match &self.cur {
            Some(s) => (s.index, s.offset(s.pos)),
            None => (self.segment, 0),
        }
    }

    /// The next complete record, or `None` if there is none yet.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&[u8]>, WalError> {
        loop {
            if self.cur.is_none() {
                let path = self.dir.join(segment_name(self.segment));
                if !path.exists() {
                    // Skip ahead if the segment was truncated away.
                    let later = list_segments(&self.dir)?
                        .into_iter()
                        .find(|s| s.index > self.segment);
                    match later {
                        Some(s) => self.segment = s.index,
                        None => return Ok(None),
                    }
                    continue;
                }
                self.cur = Some(SegmentBuf::open(&SegmentRef {
                    index: self.segment,
                    path,
                })?);
            }
            let Some(seg) = self.cur.as_mut() else {
                continue;
            };
            let parsed = self
                .asm
                .parse(seg)
                .map_err(|e| WalError::io("reading", &self.dir.join(segment_name(seg.index)), e))?;
            match parsed {
                Parsed::Record => return Ok(Some(&self.asm.rec)),
                Parsed::End | Parsed::Torn(_) => {
                    // Caught up. If the writer moved to a later segment, this
                    // one is complete: read once more, then switch.
                    let next = self.dir.join(segment_name(self.segment + 1));
                    if !next.exists() {
                        return Ok(None);
                    }
                    match self.asm.parse(seg).map_err(|e| {
                        WalError::io("reading", &self.dir.join(segment_name(seg.index)), e)
                    })? {
                        Parsed::Record => return Ok(Some(&self.asm.rec)),
                        Parsed::End | Parsed::Torn(_) => {
                            self.segment += 1;
                            self.cur = None;
                        }
                        Parsed::Corrupt(reason) => {
                            return Err(self.corruption(reason));
                        }
                    }
                }
                Parsed::Corrupt(reason) => return Err(self.corruption(reason)),
            }
        }
    }

    fn corruption(&self, reason: String) -> WalError {
        let (segment, offset) = self.position();
        WalError::Corruption {
            dir: self.dir.clone(),
            segment,
            offset,
            reason,
        }
    }
}
