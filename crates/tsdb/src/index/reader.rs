//! Memory-mapped reader of a v2 index.
//!
//! At open it checks the header, the TOC and the CRCs of the symbol table and
//! the postings offset table, and keeps in memory only small offset arrays
//! (4 bytes per symbol and per label pair). Series and postings lists are
//! decoded from the map on demand, each checked against its own CRC.

use std::path::{Path, PathBuf};

use vigil_model::storage::StorageError;
use vigil_model::{Label, Labels};

use super::{Postings, Toc, INDEX_FORMAT_V2, MAGIC_INDEX, SERIES_ALIGN, TOC_LEN};
use crate::binfmt::{corruption, crc32, Decbuf, DecodeError, MappedFile};
use crate::chunks::ChunkMeta;

/// A decoded series entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesEntry {
    pub labels: Labels,
    pub chunks: Vec<ChunkMeta>,
}

struct LabelName {
    name: Box<str>,
    /// Offsets (relative to the postings table's first entry) of this name's
    /// entries, in value order.
    entries: Vec<u32>,
}

/// Reader of one index file.
pub struct IndexReader {
    path: PathBuf,
    file: MappedFile,
    toc: Toc,
    /// Absolute offset of the first symbol entry.
    sym_start: usize,
    /// Offsets of each symbol entry relative to `sym_start`.
    sym_offsets: Vec<u32>,
    /// Absolute offset of the first postings offset table entry.
    pot_start: usize,
    pot_end: usize,
    /// Label names in order, with their postings table entries.
    names: Vec<LabelName>,
    /// Offset of the all-series postings list (label pair `"" = ""`).
    all_postings: Option<u64>,
    series_end: u64,
}

/// Reads a `len(4) | body | crc(4)` section at `off`; returns the body.
fn section(b: &[u8], off: u64) -> Result<(usize, usize), DecodeError> {
    let off = usize::try_from(off).map_err(|_| DecodeError::new("offset overflows"))?;
    if off.checked_add(4).is_none_or(|e| e > b.len()) {
        return Err(DecodeError::new(format!(
            "section offset {off} beyond file end {}",
            b.len()
        )));
    }
    let len = u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize;
    let start = off + 4;
    let end = start + len;
    if end.checked_add(4).is_none_or(|e| e > b.len()) {
        return Err(DecodeError::new(format!(
            "section of {len} bytes at {off} runs past the file end"
        )));
    }
    let want = u32::from_be_bytes([b[end], b[end + 1], b[end + 2], b[end + 3]]);
    let got = crc32(&b[start..end]);
    if want != got {
        return Err(DecodeError::new(format!(
            "checksum mismatch: expected {want:08x}, actual {got:08x}"
        )));
    }
    Ok((start, end))
}

impl IndexReader {
    /// Maps and validates `path`.
    pub fn open(path: &Path) -> Result<IndexReader, StorageError> {
        let file = MappedFile::open(path)?;
        Self::from_mapped(path, file)
    }

    /// Validates bytes already in memory (tests, fuzzing); `path` names them.
    pub fn from_mapped(path: &Path, file: MappedFile) -> Result<IndexReader, StorageError> {
        let b = file.bytes();
        let err = |off: u64, e: &dyn std::fmt::Display| corruption(path, off, e);
        if b.len() < 5 + TOC_LEN {
            return Err(err(0, &format!("index of {} bytes is too short", b.len())));
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC_INDEX {
            return Err(err(0, &format!("invalid magic number {magic:x}")));
        }
        if b[4] != INDEX_FORMAT_V2 {
            return Err(err(4, &format!("unsupported index file version {}", b[4])));
        }

        // TOC.
        let toc_at = b.len() - TOC_LEN;
        let tb = &b[toc_at..];
        let want = u32::from_be_bytes([tb[48], tb[49], tb[50], tb[51]]);
        if crc32(&tb[..48]) != want {
            return Err(err(toc_at as u64, &"read TOC: checksum mismatch"));
        }
        let mut d = Decbuf::new(&tb[..48]);
        let mut next = || d.be64().unwrap_or(u64::MAX);
        let toc = Toc {
            symbols: next(),
            series: next(),
            label_indices: next(),
            label_indices_table: next(),
            postings: next(),
            postings_table: next(),
        };
        for (what, off) in [
            ("symbols", toc.symbols),
            ("series", toc.series),
            ("label indices", toc.label_indices),
            ("label offset table", toc.label_indices_table),
            ("postings", toc.postings),
            ("postings offset table", toc.postings_table),
        ] {
            if off > toc_at as u64 || (off != 0 && off < 5) {
                return Err(err(
                    toc_at as u64,
                    &format!("TOC entry {what} = {off} out of range"),
                ));
            }
        }
        if toc.series != 0 && toc.series < toc.symbols {
            return Err(err(
                toc_at as u64,
                &"TOC series offset precedes the symbol table",
            ));
        }

        // Symbols.
        let (sym_start, sym_offsets) = if toc.symbols == 0 {
            (0, Vec::new())
        } else {
            let (start, end) = section(b, toc.symbols)
                .map_err(|e| err(toc.symbols, &format!("read symbols: {e}")))?;
            let mut d = Decbuf::new(&b[start..end]);
            let cnt = d.be32().map_err(|e| err(toc.symbols, &e))? as usize;
            let first = start + d.pos();
            // Each entry takes at least one byte: bound the allocation.
            let mut offs = Vec::with_capacity(cnt.min(end - start));
            let mut prev: Option<&str> = None;
            for i in 0..cnt {
                let rel = d.pos() - 4;
                let at = (first + rel) as u64;
                let rel = rel as u32;
                let s = d
                    .uvarint_str()
                    .map_err(|e| err(at, &format!("read symbol {i}: {e}")))?;
                if prev.is_some_and(|p| p >= s) {
                    return Err(err(at, &format!("symbol {s:?} out of order")));
                }
                prev = Some(s);
                offs.push(rel);
            }
            (first, offs)
        };

        // Postings offset table.
        let mut names: Vec<LabelName> = Vec::new();
        let mut all_postings = None;
        let (mut pot_start, mut pot_end) = (0, 0);
        if toc.postings_table != 0 {
            let (start, end) = section(b, toc.postings_table)
                .map_err(|e| err(toc.postings_table, &format!("read postings table: {e}")))?;
            let mut d = Decbuf::new(&b[start..end]);
            let cnt = d.be32().map_err(|e| err(toc.postings_table, &e))? as usize;
            pot_start = start + 4;
            pot_end = end;
            let mut last: Option<(&str, &str)> = None;
            for i in 0..cnt {
                let rel = d.pos() - 4;
                let at = (pot_start + rel) as u64;
                let entry = (|| -> Result<(&str, &str, u64), DecodeError> {
                    let n = d.uvarint()?;
                    if n != 2 {
                        return Err(DecodeError::new(format!("unexpected key length {n}")));
                    }
                    let name = d.uvarint_str()?;
                    let value = d.uvarint_str()?;
                    let off = d.uvarint()?;
                    Ok((name, value, off))
                })();
                let (name, value, off) =
                    entry.map_err(|e| err(at, &format!("postings table entry {i}: {e}")))?;
                if off >= toc_at as u64 {
                    return Err(err(at, &format!("postings offset {off} out of range")));
                }
                if name.is_empty() && value.is_empty() && i == 0 {
                    all_postings = Some(off);
                    continue;
                }
                if let Some(l) = last {
                    if (name, value) <= l {
                        return Err(err(
                            at,
                            &format!("postings table entry {name}={value:?} out of order"),
                        ));
                    }
                }
                last = Some((name, value));
                let rel = u32::try_from(rel).map_err(|_| err(at, &"postings table too large"))?;
                match names.last_mut() {
                    Some(ln) if &*ln.name == name => ln.entries.push(rel),
                    _ => names.push(LabelName {
                        name: name.into(),
                        entries: vec![rel],
                    }),
                }
            }
            for ln in &mut names {
                ln.entries.shrink_to_fit();
            }
        }

        let series_end = [
            toc.label_indices,
            toc.postings,
            toc.label_indices_table,
            toc.postings_table,
        ]
        .into_iter()
        .filter(|&o| o > toc.series)
        .min()
        .unwrap_or(toc_at as u64);
        Ok(IndexReader {
            path: path.to_path_buf(),
            toc,
            sym_start,
            sym_offsets,
            pot_start,
            pot_end,
            names,
            all_postings,
            series_end,
            file,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn toc(&self) -> Toc {
        self.toc
    }

    /// Size of the index file in bytes.
    pub fn size(&self) -> u64 {
        self.bytes().len() as u64
    }

    fn corrupt(&self, off: u64, e: impl std::fmt::Display) -> StorageError {
        corruption(&self.path, off, e)
    }

    pub fn num_symbols(&self) -> usize {
        self.sym_offsets.len()
    }

    /// Symbol number `i` (symbols are sorted).
    pub fn symbol(&self, i: u32) -> Result<&str, StorageError> {
        let Some(&rel) = self.sym_offsets.get(i as usize) else {
            return Err(self.corrupt(self.toc.symbols, format!("unknown symbol {i}")));
        };
        let at = self.sym_start + rel as usize;
        Decbuf::new(&self.bytes()[at..])
            .uvarint_str()
            .map_err(|e| self.corrupt(at as u64, e))
    }

    /// Sorted label names (excluding the empty all-postings key).
    pub fn label_names(&self) -> Vec<&str> {
        self.names.iter().map(|n| &*n.name).collect()
    }

    fn name_entry(&self, name: &str) -> Option<&LabelName> {
        self.names
            .binary_search_by(|n| (*n.name).cmp(name))
            .ok()
            .map(|i| &self.names[i])
    }

    /// Decodes the postings table entry at `rel`: (value, postings offset).
    fn entry(&self, rel: u32) -> Result<(&str, u64), StorageError> {
        let at = self.pot_start + rel as usize;
        let b = &self.bytes()[at.min(self.pot_end)..self.pot_end];
        let mut d = Decbuf::new(b);
        let r = (|| -> Result<(&str, u64), DecodeError> {
            d.uvarint()?;
            d.uvarint_bytes()?;
            let v = d.uvarint_str()?;
            let off = d.uvarint()?;
            Ok((v, off))
        })();
        r.map_err(|e| self.corrupt(at as u64, e))
    }

    /// Number of distinct values of `name`.
    pub fn num_values(&self, name: &str) -> usize {
        self.name_entry(name).map_or(0, |n| n.entries.len())
    }

    /// Sorted values of label `name`.
    pub fn label_values(&self, name: &str) -> Result<Vec<&str>, StorageError> {
        let Some(n) = self.name_entry(name) else {
            return Ok(Vec::new());
        };
        n.entries
            .iter()
            .map(|&rel| self.entry(rel).map(|e| e.0))
            .collect()
    }

    /// Calls `f(value, postings_offset)` for each value of `name` in order,
    /// starting at the first value >= `from`, until `f` returns false.
    pub fn for_each_value(
        &self,
        name: &str,
        from: &str,
        mut f: impl FnMut(&str, u64) -> bool,
    ) -> Result<(), StorageError> {
        let Some(n) = self.name_entry(name) else {
            return Ok(());
        };
        let start = if from.is_empty() {
            0
        } else {
            self.lower_bound(n, from)?
        };
        for &rel in &n.entries[start..] {
            let (v, off) = self.entry(rel)?;
            if !f(v, off) {
                break;
            }
        }
        Ok(())
    }

    /// Index of the first entry of `n` whose value is >= `value`.
    fn lower_bound(&self, n: &LabelName, value: &str) -> Result<usize, StorageError> {
        let (mut lo, mut hi) = (0, n.entries.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (v, _) = self.entry(n.entries[mid])?;
            if v < value {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Offset of the postings list for `name=value`, if the pair exists.
    pub fn postings_offset(&self, name: &str, value: &str) -> Result<Option<u64>, StorageError> {
        let Some(n) = self.name_entry(name) else {
            return Ok(None);
        };
        let i = self.lower_bound(n, value)?;
        match n.entries.get(i) {
            Some(&rel) => {
                let (v, off) = self.entry(rel)?;
                Ok((v == value).then_some(off))
            }
            None => Ok(None),
        }
    }

    /// Postings for `name=value` (empty if the pair does not exist).
    pub fn postings(&self, name: &str, value: &str) -> Result<Postings, StorageError> {
        match self.postings_offset(name, value)? {
            Some(off) => self.read_postings(off),
            None => Ok(Vec::new()),
        }
    }

    /// Every series in the index.
    pub fn all_postings(&self) -> Result<Postings, StorageError> {
        match self.all_postings {
            Some(off) => self.read_postings(off),
            None => Ok(Vec::new()),
        }
    }

    /// Decodes the postings list at `off`, checking its CRC.
    pub fn read_postings(&self, off: u64) -> Result<Postings, StorageError> {
        let (start, end) =
            section(self.bytes(), off).map_err(|e| self.corrupt(off, format!("postings: {e}")))?;
        let body = &self.bytes()[start..end];
        if body.len() < 4 {
            return Err(self.corrupt(off, "postings list shorter than its count"));
        }
        let n = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        if body.len() != 4 + n * 4 {
            return Err(self.corrupt(
                off,
                format!("postings list of {n} entries has {} bytes", body.len()),
            ));
        }
        Ok(body[4..]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Decodes series `id`: labels (if `labels` is given) and chunk metas.
    pub fn series_into(
        &self,
        id: u32,
        labels: Option<&mut Vec<Label>>,
        chunks: &mut Vec<ChunkMeta>,
    ) -> Result<(), StorageError> {
        let off = u64::from(id) * SERIES_ALIGN;
        if off < self.toc.series || off >= self.series_end {
            return Err(self.corrupt(off, format!("series {id} outside the series section")));
        }
        let b = &self.bytes()[off as usize..self.series_end as usize];
        let mut d = Decbuf::new(b);
        let body = d
            .uvarint_bytes()
            .map_err(|e| self.corrupt(off, format!("series {id}: {e}")))?;
        let crc = d
            .be32()
            .map_err(|e| self.corrupt(off, format!("series {id}: {e}")))?;
        if crc32(body) != crc {
            return Err(self.corrupt(off, format!("series {id}: checksum mismatch")));
        }
        let mut d = Decbuf::new(body);
        let r = self.decode_series(&mut d, labels, chunks);
        r.map_err(|e| self.corrupt(off, format!("series {id}: {e}")))
    }

    fn decode_series(
        &self,
        d: &mut Decbuf<'_>,
        labels: Option<&mut Vec<Label>>,
        chunks: &mut Vec<ChunkMeta>,
    ) -> Result<(), DecodeError> {
        chunks.clear();
        let nl = d.uvarint()?;
        if let Some(out) = labels {
            out.clear();
            for _ in 0..nl {
                let n = d.uvarint32()?;
                let v = d.uvarint32()?;
                let name = self
                    .symbol(n)
                    .map_err(|e| DecodeError::new(e.to_string()))?;
                let value = self
                    .symbol(v)
                    .map_err(|e| DecodeError::new(e.to_string()))?;
                if value.is_empty() {
                    return Err(DecodeError::new(format!("empty value for label {name:?}")));
                }
                if out.last().is_some_and(|l: &Label| l.name.as_str() >= name) {
                    return Err(DecodeError::new(format!("label {name:?} out of order")));
                }
                out.push(Label::new(name, value));
            }
        } else {
            for _ in 0..nl {
                d.uvarint32()?;
                d.uvarint32()?;
            }
        }
        let nc = d.uvarint()?;
        if nc == 0 {
            return Ok(());
        }
        let mint = d.varint()?;
        let maxt = mint.wrapping_add(d.uvarint()? as i64);
        let r = d.uvarint()?;
        chunks.push(ChunkMeta {
            min_time: mint,
            max_time: maxt,
            chunk_ref: r,
        });
        let (mut t0, mut r0) = (maxt, r as i64);
        for _ in 1..nc {
            let mint = t0.wrapping_add(d.uvarint()? as i64);
            let maxt = mint.wrapping_add(d.uvarint()? as i64);
            r0 = r0.wrapping_add(d.varint()?);
            t0 = maxt;
            chunks.push(ChunkMeta {
                min_time: mint,
                max_time: maxt,
                chunk_ref: r0 as u64,
            });
        }
        Ok(())
    }

    /// Decodes series `id` into owned labels and chunk metas.
    pub fn series(&self, id: u32) -> Result<SeriesEntry, StorageError> {
        let mut l = Vec::new();
        let mut chunks = Vec::new();
        self.series_into(id, Some(&mut l), &mut chunks)?;
        Ok(SeriesEntry {
            labels: Labels::from_sorted(l),
            chunks,
        })
    }

    /// Checks the label offset table and every label index section it
    /// points to (readers do not need them; verification does).
    pub fn verify_label_indices(&self) -> Result<usize, StorageError> {
        let t = self.toc.label_indices_table;
        if t == 0 || t == self.toc.postings_table {
            return Ok(0);
        }
        let b = self.bytes();
        let (start, end) =
            section(b, t).map_err(|e| self.corrupt(t, format!("label offset table: {e}")))?;
        let mut d = Decbuf::new(&b[start..end]);
        let cnt = d.be32().map_err(|e| self.corrupt(t, e))?;
        for i in 0..cnt {
            let at = (start + d.pos()) as u64;
            let entry = (|| -> Result<u64, DecodeError> {
                let n = d.uvarint()?;
                if n != 1 {
                    return Err(DecodeError::new(format!("unexpected key length {n}")));
                }
                d.uvarint_str()?;
                d.uvarint()
            })();
            let off = entry
                .map_err(|e| self.corrupt(at, format!("label offset table entry {i}: {e}")))?;
            let (ls, le) =
                section(b, off).map_err(|e| self.corrupt(off, format!("label index: {e}")))?;
            let mut li = Decbuf::new(&b[ls..le]);
            let names = li.be32().map_err(|e| self.corrupt(off, e))?;
            let n = li.be32().map_err(|e| self.corrupt(off, e))? as usize;
            if names == 0 || li.remaining() != n * 4 {
                return Err(self.corrupt(off, "label index length does not match its entries"));
            }
            while li.remaining() >= 4 {
                let sym = li.be32().map_err(|e| self.corrupt(off, e))?;
                self.symbol(sym)?;
            }
        }
        Ok(cnt as usize)
    }

    /// IDs of every series, read by walking the series section (for
    /// verification: independent of the postings).
    pub fn scan_series_ids(&self) -> Result<Vec<u32>, StorageError> {
        let mut out = Vec::new();
        if self.toc.series == 0 {
            return Ok(out);
        }
        let mut off = self.toc.series;
        let b = self.bytes();
        while off < self.series_end {
            let aligned = off.next_multiple_of(SERIES_ALIGN).min(self.series_end);
            if aligned != off {
                if b[off as usize..aligned as usize].iter().any(|&x| x != 0) {
                    return Err(self.corrupt(off, "non-zero padding between series"));
                }
                off = aligned;
                continue;
            }
            if b[off as usize] == 0 {
                // No entry has length zero: only trailing padding can follow.
                if b[off as usize..self.series_end as usize]
                    .iter()
                    .any(|&x| x != 0)
                {
                    return Err(self.corrupt(off, "empty series entry"));
                }
                break;
            }
            let mut d = Decbuf::new(&b[off as usize..self.series_end as usize]);
            let len = d.uvarint().map_err(|e| self.corrupt(off, e))?;
            let total = (d.pos() as u64)
                .checked_add(len)
                .and_then(|x| x.checked_add(4))
                .filter(|&x| off + x <= self.series_end)
                .ok_or_else(|| self.corrupt(off, "series entry runs past the series section"))?;
            let id = u32::try_from(off / SERIES_ALIGN)
                .map_err(|_| self.corrupt(off, "series ID overflows"))?;
            out.push(id);
            off += total;
        }
        Ok(out)
    }
}
