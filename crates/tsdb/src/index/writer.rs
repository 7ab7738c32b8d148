//! Streaming writer of a v2 index: symbols first (sorted), then series in
//! label order, then everything derived from them at `finish`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_model::storage::StorageError;
use vigil_model::Labels;

use super::{Toc, INDEX_FORMAT_V2, MAGIC_INDEX, SERIES_ALIGN};
use crate::binfmt::{crc32, io_error, Encbuf};
use crate::chunks::ChunkMeta;

/// Writes one index file. Call `add_series` in strictly increasing label
/// order, then `finish`; dropping an unfinished writer leaves a file that no
/// reader accepts (no TOC), which is why blocks are built in temp dirs.
pub struct IndexWriter {
    path: PathBuf,
    w: BufWriter<File>,
    pos: u64,
    toc: Toc,
    symbols: Vec<Arc<str>>,
    symbol_ids: HashMap<Arc<str>, u32>,
    last_series: Option<Labels>,
    /// Series IDs per (name symbol << 32 | value symbol), in write order.
    postings: HashMap<u64, Vec<u32>>,
    all: Vec<u32>,
    buf: Encbuf,
    body: Encbuf,
}

fn invalid(path: &Path, msg: impl std::fmt::Display) -> StorageError {
    StorageError::Io(format!("write index {}: {msg}", path.display()))
}

impl IndexWriter {
    /// Creates `path` and writes the header and symbol table. `symbols` must
    /// be strictly increasing and contain every label name and value of the
    /// series that will be added.
    pub fn create<I, S>(path: &Path, symbols: I) -> Result<IndexWriter, StorageError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let f = File::create(path).map_err(|e| io_error("create", path, e))?;
        let mut iw = IndexWriter {
            path: path.to_path_buf(),
            w: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
            toc: Toc::default(),
            symbols: Vec::new(),
            symbol_ids: HashMap::new(),
            last_series: None,
            postings: HashMap::new(),
            all: Vec::new(),
            buf: Encbuf::with_capacity(1 << 12),
            body: Encbuf::with_capacity(1 << 12),
        };
        let mut hdr = Encbuf::default();
        hdr.put_be32(MAGIC_INDEX);
        hdr.put_byte(INDEX_FORMAT_V2);
        iw.write(&hdr.b)?;
        iw.write_symbols(symbols)?;
        iw.toc.series = iw.pos;
        Ok(iw)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), StorageError> {
        self.w
            .write_all(b)
            .map_err(|e| io_error("write", &self.path, e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<(), StorageError> {
        let rem = self.pos % align;
        if rem != 0 {
            let zeros = [0u8; 16];
            self.write(&zeros[..(align - rem) as usize])?;
        }
        Ok(())
    }

    fn write_symbols<I, S>(&mut self, symbols: I) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.toc.symbols = self.pos;
        // Built in memory: the count precedes the entries and is covered by
        // the CRC. Symbol tables are small next to the series section.
        let mut e = Encbuf::with_capacity(1 << 16);
        e.put_be32(0);
        e.put_be32(0);
        for s in symbols {
            let s = s.as_ref();
            if let Some(last) = self.symbols.last() {
                if s <= last.as_ref() {
                    return Err(invalid(&self.path, format!("symbol {s:?} out of order")));
                }
            }
            e.put_uvarint_str(s);
            let id = u32::try_from(self.symbols.len())
                .map_err(|_| invalid(&self.path, "more than 2^32 symbols"))?;
            let s: Arc<str> = Arc::from(s);
            self.symbol_ids.insert(s.clone(), id);
            self.symbols.push(s);
        }
        let len = u32::try_from(e.len() - 4)
            .map_err(|_| invalid(&self.path, "symbol table exceeds 4 GiB"))?;
        e.b[0..4].copy_from_slice(&len.to_be_bytes());
        e.b[4..8].copy_from_slice(&(self.symbols.len() as u32).to_be_bytes());
        e.put_crc_since(4);
        self.write(&e.b)
    }

    fn symbol(&self, s: &str) -> Result<u32, StorageError> {
        self.symbol_ids
            .get(s)
            .copied()
            .ok_or_else(|| invalid(&self.path, format!("symbol entry for {s:?} does not exist")))
    }

    /// Adds a series with its chunk metas (sorted by time, non-overlapping,
    /// refs increasing). Returns the series ID. Series must come in strictly
    /// increasing label order.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[ChunkMeta],
    ) -> Result<u32, StorageError> {
        if let Some(last) = &self.last_series {
            if labels <= last {
                return Err(invalid(
                    &self.path,
                    format!(
                        "out-of-order series added with label set {labels}, last label set {last}"
                    ),
                ));
            }
        }
        for (i, c) in chunks.iter().enumerate() {
            if c.max_time < c.min_time {
                return Err(invalid(
                    &self.path,
                    format!("chunk maxT {} is less than minT {}", c.max_time, c.min_time),
                ));
            }
            if i > 0 {
                let p = &chunks[i - 1];
                if c.min_time <= p.max_time {
                    return Err(invalid(
                        &self.path,
                        format!(
                            "chunk minT {} is not higher than previous chunk maxT {}",
                            c.min_time, p.max_time
                        ),
                    ));
                }
                if c.chunk_ref < p.chunk_ref {
                    return Err(invalid(
                        &self.path,
                        format!("unsorted chunk reference {}", c.chunk_ref),
                    ));
                }
            }
        }
        self.pad(SERIES_ALIGN)?;
        let id = u32::try_from(self.pos / SERIES_ALIGN)
            .map_err(|_| invalid(&self.path, "index exceeds 64 GiB"))?;

        let mut body = std::mem::take(&mut self.body);
        body.reset();
        body.put_uvarint(labels.len() as u64);
        for l in labels {
            let n = self.symbol(&l.name)?;
            let v = self.symbol(&l.value)?;
            body.put_uvarint(u64::from(n));
            body.put_uvarint(u64::from(v));
            self.postings
                .entry((u64::from(n) << 32) | u64::from(v))
                .or_default()
                .push(id);
        }
        body.put_uvarint(chunks.len() as u64);
        if let Some(c0) = chunks.first() {
            body.put_varint(c0.min_time);
            body.put_uvarint(c0.max_time.wrapping_sub(c0.min_time) as u64);
            body.put_uvarint(c0.chunk_ref);
            let mut t0 = c0.max_time;
            let mut r0 = c0.chunk_ref as i64;
            for c in &chunks[1..] {
                body.put_uvarint(c.min_time.wrapping_sub(t0) as u64);
                body.put_uvarint(c.max_time.wrapping_sub(c.min_time) as u64);
                t0 = c.max_time;
                body.put_varint((c.chunk_ref as i64).wrapping_sub(r0));
                r0 = c.chunk_ref as i64;
            }
        }
        self.buf.reset();
        self.buf.put_uvarint(body.len() as u64);
        let crc = crc32(&body.b);
        let head = std::mem::take(&mut self.buf.b);
        self.write(&head)?;
        self.buf.b = head;
        self.write(&body.b)?;
        self.write(&crc.to_be_bytes())?;
        self.body = body;
        self.all.push(id);
        self.last_series = Some(labels.clone());
        Ok(id)
    }

    /// Writes a section `len(4) | body | crc(body)`, where the CRC covers the body.
    fn write_section(&mut self, body: &[u8]) -> Result<(), StorageError> {
        let len =
            u32::try_from(body.len()).map_err(|_| invalid(&self.path, "section exceeds 4 GiB"))?;
        self.write(&len.to_be_bytes())?;
        self.write(body)?;
        self.write(&crc32(body).to_be_bytes())
    }

    /// Writes label indices, postings, both offset tables and the TOC, and
    /// fsyncs the file. Returns the file size.
    pub fn finish(mut self) -> Result<u64, StorageError> {
        // Group postings keys by name, in symbol (= string) order.
        let mut keys: Vec<u64> = self.postings.keys().copied().collect();
        keys.sort_unstable();

        // Label indices: one per label name, listing its values.
        self.pad(4)?;
        self.toc.label_indices = self.pos;
        let mut label_offsets: Vec<(u32, u64)> = Vec::new();
        let mut i = 0;
        let mut e = Encbuf::with_capacity(1 << 12);
        while i < keys.len() {
            let name = (keys[i] >> 32) as u32;
            let mut j = i;
            while j < keys.len() && (keys[j] >> 32) as u32 == name {
                j += 1;
            }
            self.pad(4)?;
            label_offsets.push((name, self.pos));
            e.reset();
            e.put_be32(1);
            e.put_be32((j - i) as u32);
            for k in &keys[i..j] {
                e.put_be32(*k as u32);
            }
            let b = std::mem::take(&mut e.b);
            self.write_section(&b)?;
            e.b = b;
            i = j;
        }

        // Postings: the all-series list under the empty label pair first.
        self.pad(4)?;
        self.toc.postings = self.pos;
        let mut postings_offsets: Vec<(u64, u64)> = Vec::with_capacity(keys.len() + 1);
        let all = std::mem::take(&mut self.all);
        postings_offsets.push((u64::MAX, self.pos));
        self.write_postings(&all, &mut e)?;
        for k in &keys {
            self.pad(4)?;
            postings_offsets.push((*k, self.pos));
            let list = self.postings.remove(k).unwrap_or_default();
            self.write_postings(&list, &mut e)?;
        }

        // Label offset table.
        self.toc.label_indices_table = self.pos;
        e.reset();
        e.put_be32(label_offsets.len() as u32);
        for (name, off) in &label_offsets {
            e.put_uvarint(1);
            e.put_uvarint_str(&self.symbols[*name as usize]);
            e.put_uvarint(*off);
        }
        let b = std::mem::take(&mut e.b);
        self.write_section(&b)?;
        e.b = b;

        // Postings offset table.
        self.toc.postings_table = self.pos;
        e.reset();
        e.put_be32(postings_offsets.len() as u32);
        for (k, off) in &postings_offsets {
            e.put_uvarint(2);
            if *k == u64::MAX {
                e.put_uvarint_str("");
                e.put_uvarint_str("");
            } else {
                e.put_uvarint_str(&self.symbols[(*k >> 32) as usize]);
                e.put_uvarint_str(&self.symbols[*k as u32 as usize]);
            }
            e.put_uvarint(*off);
        }
        let b = std::mem::take(&mut e.b);
        self.write_section(&b)?;

        // TOC.
        let mut t = Encbuf::with_capacity(super::TOC_LEN);
        for x in [
            self.toc.symbols,
            self.toc.series,
            self.toc.label_indices,
            self.toc.label_indices_table,
            self.toc.postings,
            self.toc.postings_table,
        ] {
            t.put_be64(x);
        }
        t.put_crc_since(0);
        self.write(&t.b)?;

        self.w
            .flush()
            .map_err(|e| io_error("flush", &self.path, e))?;
        self.w
            .get_ref()
            .sync_all()
            .map_err(|e| io_error("fsync", &self.path, e))?;
        Ok(self.pos)
    }

    fn write_postings(&mut self, list: &[u32], e: &mut Encbuf) -> Result<(), StorageError> {
        e.reset();
        e.b.reserve(4 + list.len() * 4);
        e.put_be32(list.len() as u32);
        for id in list {
            e.put_be32(*id);
        }
        let b = std::mem::take(&mut e.b);
        let r = self.write_section(&b);
        e.b = b;
        r
    }
}
