//! Byte-level primitives shared by the block file formats (index, chunk
//! segments, tombstones): Go-compatible varints, big-endian integers, the
//! CRC32-Castagnoli used by every section, and error helpers.
//!
//! Decoding never panics and never allocates more than the input holds: every
//! read is bounds-checked and fails with a `DecodeError` that the caller turns
//! into `StorageError::Corruption` with a file and offset.

use std::path::Path;

use vigil_model::storage::StorageError;

/// Why a decode failed; the caller adds where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    pub fn new(reason: impl Into<String>) -> Self {
        DecodeError(reason.into())
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A corruption error for `path` at byte `offset`.
pub fn corruption(path: &Path, offset: u64, reason: impl std::fmt::Display) -> StorageError {
    StorageError::Corruption {
        location: format!("{} at offset {}", path.display(), offset),
        reason: reason.to_string(),
    }
}

/// A corruption error that is about a whole file.
pub fn corruption_file(path: &Path, reason: impl std::fmt::Display) -> StorageError {
    StorageError::Corruption {
        location: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// An I/O error with the path it concerns.
pub fn io_error(what: &str, path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Io(format!("{what} {}: {e}", path.display()))
}

/// CRC32-Castagnoli, as Prometheus computes every checksum in its files.
#[inline]
pub fn crc32(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

/// Bounds-checked reader over a byte slice.
#[derive(Clone, Debug)]
pub struct Decbuf<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Decbuf<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Decbuf { b, pos: 0 }
    }

    /// Bytes consumed so far.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::new(format!(
                "need {n} bytes, only {} left",
                self.remaining()
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub fn be32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub fn be64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Go's `binary.Uvarint`: at most 10 bytes, no overflow.
    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut x: u64 = 0;
        let mut s: u32 = 0;
        for i in 0..10 {
            let Some(&b) = self.b.get(self.pos + i) else {
                return Err(DecodeError::new("truncated uvarint"));
            };
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(DecodeError::new("uvarint overflows 64 bits"));
                }
                self.pos += i + 1;
                return Ok(x | (u64::from(b) << s));
            }
            x |= u64::from(b & 0x7f) << s;
            s += 7;
        }
        Err(DecodeError::new("uvarint overflows 64 bits"))
    }

    /// Go's `binary.Varint` (zig-zag).
    #[inline]
    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        let ux = self.uvarint()?;
        let x = (ux >> 1) as i64;
        Ok(if ux & 1 != 0 { !x } else { x })
    }

    /// A uvarint that must fit in 32 bits.
    #[inline]
    pub fn uvarint32(&mut self) -> Result<u32, DecodeError> {
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| DecodeError::new(format!("value {v} overflows 32 bits")))
    }

    /// A uvarint length followed by that many bytes.
    #[inline]
    pub fn uvarint_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::new("length overflows"))?;
        self.bytes(n)
    }

    /// A uvarint length followed by that many bytes of UTF-8.
    pub fn uvarint_str(&mut self) -> Result<&'a str, DecodeError> {
        let b = self.uvarint_bytes()?;
        std::str::from_utf8(b).map_err(|_| DecodeError::new("string is not valid UTF-8"))
    }
}

/// Append-only encoder into a byte vector.
#[derive(Default, Debug, Clone)]
pub struct Encbuf {
    pub b: Vec<u8>,
}

impl Encbuf {
    pub fn with_capacity(n: usize) -> Self {
        Encbuf {
            b: Vec::with_capacity(n),
        }
    }

    pub fn reset(&mut self) {
        self.b.clear();
    }

    pub fn len(&self) -> usize {
        self.b.len()
    }

    pub fn put_byte(&mut self, x: u8) {
        self.b.push(x);
    }

    pub fn put_be32(&mut self, x: u32) {
        self.b.extend_from_slice(&x.to_be_bytes());
    }

    pub fn put_be64(&mut self, x: u64) {
        self.b.extend_from_slice(&x.to_be_bytes());
    }

    #[inline]
    pub fn put_uvarint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.b.push((x as u8) | 0x80);
            x >>= 7;
        }
        self.b.push(x as u8);
    }

    #[inline]
    pub fn put_varint(&mut self, x: i64) {
        let ux = ((x as u64) << 1) ^ ((x >> 63) as u64);
        self.put_uvarint(ux);
    }

    pub fn put_uvarint_bytes(&mut self, s: &[u8]) {
        self.put_uvarint(s.len() as u64);
        self.b.extend_from_slice(s);
    }

    pub fn put_uvarint_str(&mut self, s: &str) {
        self.put_uvarint_bytes(s.as_bytes());
    }

    /// Appends the CRC32 of everything from `from` to the end.
    pub fn put_crc_since(&mut self, from: usize) {
        let c = crc32(&self.b[from..]);
        self.put_be32(c);
    }
}

/// Number of bytes `x` takes as a uvarint.
pub fn uvarint_len(mut x: u64) -> usize {
    let mut n = 1;
    while x >= 0x80 {
        x >>= 7;
        n += 1;
    }
    n
}

/// Reads a whole file into memory-mapped bytes; an empty file maps to an
/// empty slice (mmap of length 0 is an error on Linux).
pub enum MappedFile {
    Mapped(memmap2::Mmap),
    Empty,
}

impl MappedFile {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let f = std::fs::File::open(path).map_err(|e| io_error("open", path, e))?;
        let len = f.metadata().map_err(|e| io_error("stat", path, e))?.len();
        if len == 0 {
            return Ok(MappedFile::Empty);
        }
        // SAFETY: block files are immutable once written (the invariant of this
        // crate); nothing truncates them while they are mapped except a
        // deletion, which on Linux keeps the mapping valid.
        let m = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| io_error("mmap", path, e))?;
        Ok(MappedFile::Mapped(m))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            MappedFile::Mapped(m) => m,
            MappedFile::Empty => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut e = Encbuf::default();
            e.put_uvarint(u);
            e.put_varint(i);
            prop_assert_eq!(e.len(), uvarint_len(u) + uvarint_len(((i as u64) << 1) ^ ((i >> 63) as u64)));
            let mut d = Decbuf::new(&e.b);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.varint().unwrap(), i);
            prop_assert!(d.is_empty());
        }

        #[test]
        fn decoding_garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut d = Decbuf::new(&b);
            while !d.is_empty() {
                if d.uvarint().is_err() && d.uvarint_bytes().is_err() && d.be32().is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn overlong_uvarint_is_an_error() {
        let b = [0xffu8; 11];
        assert!(Decbuf::new(&b).uvarint().is_err());
        let b = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Decbuf::new(&b).uvarint().is_err());
        let b = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Decbuf::new(&b).uvarint().unwrap(), u64::MAX);
    }

    #[test]
    fn go_varint_vectors() {
        // From Go's encoding/binary: -1 -> 0x01, 1 -> 0x02, -64 -> 0x7f, 64 -> 0x80 0x01.
        for (v, enc) in [
            (-1i64, vec![0x01u8]),
            (1, vec![0x02]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut e = Encbuf::default();
            e.put_varint(v);
            assert_eq!(e.b, enc, "{v}");
        }
    }
}
