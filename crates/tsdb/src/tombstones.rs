//! Deletion markers of a block: the `tombstones` file (magic 0x0130BA30,
//! version 1, then `uvarint series ref | varint mint | varint maxt` per
//! deleted interval, then a CRC32-Castagnoli of those entries).
//!
//! A block is immutable; deleting series only rewrites this small file, and
//! queries skip samples inside a tombstone. Compaction drops tombstoned
//! samples for good. Intervals are closed `[mint, maxt]`, as in Prometheus.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use vigil_model::storage::StorageError;

use crate::binfmt::{corruption, corruption_file, crc32, io_error, Decbuf, Encbuf};
use crate::meta::sync_dir;

pub const TOMBSTONES_FILENAME: &str = "tombstones";
pub const MAGIC_TOMBSTONE: u32 = 0x0130_BA30;
pub const TOMBSTONES_FORMAT_V1: u8 = 1;
const HEADER_SIZE: usize = 5;

/// A closed time interval `[mint, maxt]` in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub mint: i64,
    pub maxt: i64,
}

impl Interval {
    pub fn new(mint: i64, maxt: i64) -> Self {
        Interval { mint, maxt }
    }

    pub fn contains(&self, t: i64) -> bool {
        self.mint <= t && t <= self.maxt
    }

    /// Is `[mint, maxt]` entirely inside this interval?
    pub fn covers(&self, mint: i64, maxt: i64) -> bool {
        self.mint <= mint && maxt <= self.maxt
    }
}

/// Adds `n` to a sorted list of disjoint intervals, merging overlapping and
/// adjacent ones so the list stays sorted and disjoint.
pub fn add_interval(ivs: &mut Vec<Interval>, n: Interval) {
    if n.maxt < n.mint {
        return;
    }
    let mut merged = n;
    let mut out = Vec::with_capacity(ivs.len() + 1);
    let mut placed = false;
    for &iv in ivs.iter() {
        if iv.maxt.saturating_add(1) < merged.mint {
            out.push(iv);
        } else if merged.maxt.saturating_add(1) < iv.mint {
            if !placed {
                out.push(merged);
                placed = true;
            }
            out.push(iv);
        } else {
            merged.mint = merged.mint.min(iv.mint);
            merged.maxt = merged.maxt.max(iv.maxt);
        }
    }
    if !placed {
        out.push(merged);
    }
    *ivs = out;
}

/// Is `t` inside one of the sorted, disjoint intervals?
pub fn is_deleted(ivs: &[Interval], t: i64) -> bool {
    let i = ivs.partition_point(|iv| iv.maxt < t);
    ivs.get(i).is_some_and(|iv| iv.mint <= t)
}

/// Tombstones of a block, keyed by series reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    map: HashMap<u64, Vec<Interval>>,
}

impl Tombstones {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `[iv.mint, iv.maxt]` of series `r` deleted.
    pub fn add(&mut self, r: u64, iv: Interval) {
        add_interval(self.map.entry(r).or_default(), iv);
    }

    /// Deleted intervals of series `r`, sorted and disjoint.
    pub fn get(&self, r: u64) -> &[Interval] {
        self.map.get(&r).map_or(&[], |v| v.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of intervals (what `numTombstones` in meta.json counts).
    pub fn total(&self) -> u64 {
        self.map.values().map(|v| v.len() as u64).sum()
    }

    /// Series refs with their intervals, sorted by ref.
    pub fn iter_sorted(&self) -> Vec<(u64, &[Interval])> {
        let mut v: Vec<(u64, &[Interval])> =
            self.map.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        v.sort_by_key(|e| e.0);
        v
    }

    /// Encodes the whole file.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encbuf::with_capacity(HEADER_SIZE + 4 + self.map.len() * 8);
        e.put_be32(MAGIC_TOMBSTONE);
        e.put_byte(TOMBSTONES_FORMAT_V1);
        for (r, ivs) in self.iter_sorted() {
            for iv in ivs {
                e.put_uvarint(r);
                e.put_varint(iv.mint);
                e.put_varint(iv.maxt);
            }
        }
        e.put_crc_since(HEADER_SIZE);
        e.b
    }

    /// Decodes a whole file; `path` only names it in errors.
    pub fn decode(b: &[u8], path: &Path) -> Result<Tombstones, StorageError> {
        if b.len() < HEADER_SIZE + 4 {
            return Err(corruption_file(
                path,
                format!(
                    "tombstones file of {} bytes is shorter than its header",
                    b.len()
                ),
            ));
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC_TOMBSTONE {
            return Err(corruption(
                path,
                0,
                format!("invalid magic number {magic:x}"),
            ));
        }
        if b[4] != TOMBSTONES_FORMAT_V1 {
            return Err(corruption(
                path,
                4,
                format!("invalid tombstones version {}", b[4]),
            ));
        }
        let body = &b[HEADER_SIZE..b.len() - 4];
        let c = &b[b.len() - 4..];
        let want = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        if crc32(body) != want {
            return Err(corruption_file(path, "tombstones checksum mismatch"));
        }
        let mut t = Tombstones::new();
        let mut d = Decbuf::new(body);
        while !d.is_empty() {
            let at = (HEADER_SIZE + d.pos()) as u64;
            let entry =
                (|| Ok::<_, crate::binfmt::DecodeError>((d.uvarint()?, d.varint()?, d.varint()?)))(
                );
            let (r, mint, maxt) = entry.map_err(|e| corruption(path, at, e))?;
            t.add(r, Interval::new(mint, maxt));
        }
        Ok(t)
    }
}

/// Reads `<dir>/tombstones`; a missing file means no tombstones (as in
/// Prometheus). Returns the tombstones and the file size.
pub fn read_tombstones(dir: &Path) -> Result<(Tombstones, u64), StorageError> {
    let path = dir.join(TOMBSTONES_FILENAME);
    let b = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Tombstones::new(), 0)),
        Err(e) => return Err(io_error("read", &path, e)),
    };
    Ok((Tombstones::decode(&b, &path)?, b.len() as u64))
}

/// Writes `<dir>/tombstones` atomically and returns its size.
pub fn write_tombstones(dir: &Path, t: &Tombstones) -> Result<u64, StorageError> {
    let path = dir.join(TOMBSTONES_FILENAME);
    let tmp = dir.join(format!("{TOMBSTONES_FILENAME}.tmp"));
    let b = t.encode();
    let written = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_error("create", &tmp, e))?;
        f.write_all(&b).map_err(|e| io_error("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_error("fsync", &tmp, e))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path).map_err(|e| io_error("rename", &tmp, e))?;
    sync_dir(dir)?;
    Ok(b.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn intervals_merge() {
        let mut v = Vec::new();
        add_interval(&mut v, Interval::new(10, 20));
        add_interval(&mut v, Interval::new(30, 40));
        add_interval(&mut v, Interval::new(0, 5));
        assert_eq!(
            v,
            vec![
                Interval::new(0, 5),
                Interval::new(10, 20),
                Interval::new(30, 40)
            ]
        );
        add_interval(&mut v, Interval::new(21, 29));
        assert_eq!(v, vec![Interval::new(0, 5), Interval::new(10, 40)]);
        add_interval(&mut v, Interval::new(i64::MIN, i64::MAX));
        assert_eq!(v, vec![Interval::new(i64::MIN, i64::MAX)]);
        assert!(is_deleted(&v, 0));
        let v = vec![Interval::new(0, 5), Interval::new(10, 40)];
        assert!(
            is_deleted(&v, 5) && is_deleted(&v, 10) && !is_deleted(&v, 7) && !is_deleted(&v, 41)
        );
    }

    proptest! {
        #[test]
        fn intervals_match_a_naive_set(ivs in proptest::collection::vec((0i64..100, 0i64..20), 0..10), probe in 0i64..130) {
            let mut v = Vec::new();
            for (a, l) in &ivs { add_interval(&mut v, Interval::new(*a, a + l)); }
            let naive = ivs.iter().any(|(a, l)| *a <= probe && probe <= a + l);
            prop_assert_eq!(is_deleted(&v, probe), naive);
            prop_assert!(v.windows(2).all(|w| w[0].maxt + 1 < w[1].mint));
        }

        #[test]
        fn file_round_trip(entries in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<i64>()), 0..30)) {
            let mut t = Tombstones::new();
            for (r, a, b) in entries { t.add(r, Interval::new(a.min(b), a.max(b))); }
            let dir = tempfile::tempdir().unwrap();
            write_tombstones(dir.path(), &t).unwrap();
            let (back, _) = read_tombstones(dir.path()).unwrap();
            prop_assert_eq!(back, t);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Tombstones::decode(&b, Path::new("t"));
            let mut valid = vec![0x01, 0x30, 0xBA, 0x30, 1];
            valid.extend_from_slice(&b);
            let c = crc32(&valid[5..]);
            valid.extend_from_slice(&c.to_be_bytes());
            let _ = Tombstones::decode(&valid, Path::new("t"));
        }
    }

    #[test]
    fn empty_file_layout_and_corruption() {
        let t = Tombstones::new();
        let b = t.encode();
        assert_eq!(b, vec![0x01, 0x30, 0xBA, 0x30, 1, 0, 0, 0, 0]);
        let mut t = Tombstones::new();
        t.add(16, Interval::new(1, 2));
        let mut b = t.encode();
        b[6] ^= 1;
        assert!(matches!(
            Tombstones::decode(&b, Path::new("t")),
            Err(StorageError::Corruption { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(read_tombstones(dir.path()).unwrap().0.is_empty());
    }
}
