//! Block identity and `meta.json`: ULIDs (generated here, no dependency) and
//! the block metadata Prometheus writes (time range, stats, compaction
//! lineage, format version 1).
//!
//! `meta.json` is written atomically (temp file, fsync, rename) and read with
//! validation; a bad file is a `StorageError::Corruption`, never a panic. The
//! block time range is half-open: `[min_time, max_time)`.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigil_model::storage::StorageError;

use crate::binfmt::{corruption_file, io_error};

/// Name of the metadata file in a block directory.
pub const META_FILENAME: &str = "meta.json";
/// The only `meta.json` version Prometheus 2.x writes and reads.
pub const META_VERSION: u32 = 1;
/// Largest `meta.json` we read; real ones are a few KiB even after many compactions.
const MAX_META_BYTES: u64 = 64 << 20;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID: 48-bit millisecond timestamp and 80 random bits; its 26-character
/// Crockford base32 form names a block directory and sorts by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ulid(pub u128);

impl Ulid {
    /// A new ULID for the current time.
    pub fn new() -> Ulid {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ulid::with_time(ms)
    }

    /// A new ULID for the given millisecond timestamp.
    pub fn with_time(ms: u64) -> Ulid {
        let rand = random_80();
        Ulid((u128::from(ms & 0xFFFF_FFFF_FFFF) << 80) | rand)
    }

    /// Milliseconds since the epoch encoded in the ULID.
    pub fn timestamp_ms(&self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl Default for Ulid {
    fn default() -> Self {
        Ulid::new()
    }
}

/// 80 bits of randomness: the kernel's when available; otherwise a mix of
/// time, pid and a counter (unique within a process, which is all a block
/// name needs).
fn random_80() -> u128 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut buf = [0u8; 16];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf[..10]))
        .is_ok();
    if !got {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.write_u128(nanos);
        buf[..8].copy_from_slice(&h.finish().to_le_bytes());
        buf[8..10].copy_from_slice(&(COUNTER.load(Ordering::Relaxed) as u16).to_le_bytes());
    }
    u128::from_le_bytes(buf) & ((1u128 << 80) - 1)
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        let mut v = self.0;
        for i in (0..26).rev() {
            out[i] = CROCKFORD[(v & 31) as usize];
            v >>= 5;
        }
        // Every byte comes from CROCKFORD, so this is ASCII.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error parsing a ULID string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ULID {0:?}")]
pub struct UlidParseError(pub String);

impl FromStr for Ulid {
    type Err = UlidParseError;
    fn from_str(s: &str) -> Result<Ulid, UlidParseError> {
        let err = || UlidParseError(s.to_string());
        if s.len() != 26 {
            return Err(err());
        }
        let mut v: u128 = 0;
        for (i, c) in s.bytes().enumerate() {
            let d = match c.to_ascii_uppercase() {
                c @ b'0'..=b'9' => c - b'0',
                b'O' => 0,
                b'I' | b'L' => 1,
                c => match CROCKFORD.iter().position(|&x| x == c) {
                    Some(p) => p as u8,
                    None => return Err(err()),
                },
            };
            // 26 * 5 = 130 bits: the first character may only carry 3.
            if i == 0 && d > 7 {
                return Err(err());
            }
            v = (v << 5) | u128::from(d);
        }
        Ok(Ulid(v))
    }
}

impl Serialize for Ulid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ulid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ulid, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Counts stored in `meta.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_float_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_histogram_samples: u64,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

/// A short description of a block, used for compaction parents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    pub ulid: Ulid,
    pub min_time: i64,
    pub max_time: i64,
}

/// Compaction lineage of a block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMetaCompaction {
    /// 1 for a block cut from the head; max(parents) + 1 after compaction.
    pub level: u32,
    /// ULIDs of every level-1 block that went into this block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Ulid>,
    /// Compaction produced no samples: delete on the next reload.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletable: bool,
    /// The blocks this one was compacted from directly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    /// Compaction of this block failed once; planners skip it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// Contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: Ulid,
    /// Inclusive lower bound of the samples' timestamps, milliseconds.
    pub min_time: i64,
    /// Exclusive upper bound, milliseconds.
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    pub compaction: BlockMetaCompaction,
    pub version: u32,
}

impl BlockMeta {
    /// Metadata for a fresh level-1 block.
    pub fn new_level1(ulid: Ulid, min_time: i64, max_time: i64) -> BlockMeta {
        BlockMeta {
            ulid,
            min_time,
            max_time,
            stats: BlockStats::default(),
            compaction: BlockMetaCompaction {
                level: 1,
                sources: vec![ulid],
                ..Default::default()
            },
            version: META_VERSION,
        }
    }

    pub fn desc(&self) -> BlockDesc {
        BlockDesc {
            ulid: self.ulid,
            min_time: self.min_time,
            max_time: self.max_time,
        }
    }

    /// Does the half-open block range intersect the closed `[mint, maxt]`?
    pub fn overlaps_closed(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint < self.max_time
    }
}

/// Reads and validates `<dir>/meta.json`.
pub fn read_meta(dir: &Path) -> Result<BlockMeta, StorageError> {
    let path = dir.join(META_FILENAME);
    let f = std::fs::File::open(&path).map_err(|e| io_error("open", &path, e))?;
    let len = f.metadata().map_err(|e| io_error("stat", &path, e))?.len();
    if len > MAX_META_BYTES {
        return Err(corruption_file(&path, format!("meta.json is {len} bytes")));
    }
    let mut buf = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_META_BYTES), &mut buf)
        .map_err(|e| io_error("read", &path, e))?;
    decode_meta(&buf, &path)
}

/// Parses and validates the bytes of a `meta.json` read from `path`.
pub fn decode_meta(buf: &[u8], path: &Path) -> Result<BlockMeta, StorageError> {
    let path = path.to_path_buf();
    if buf.len() as u64 > MAX_META_BYTES {
        return Err(corruption_file(
            &path,
            format!("meta.json is {} bytes", buf.len()),
        ));
    }
    let meta: BlockMeta =
        serde_json::from_slice(buf).map_err(|e| corruption_file(&path, format!("parse: {e}")))?;
    if meta.version != META_VERSION {
        return Err(corruption_file(
            &path,
            format!("unexpected meta file version {}", meta.version),
        ));
    }
    if meta.max_time < meta.min_time {
        return Err(corruption_file(
            &path,
            format!("maxTime {} before minTime {}", meta.max_time, meta.min_time),
        ));
    }
    Ok(meta)
}

/// Writes `<dir>/meta.json` atomically: temp file, fsync, rename, fsync dir.
pub fn write_meta(dir: &Path, meta: &BlockMeta) -> Result<u64, StorageError> {
    let path = dir.join(META_FILENAME);
    let tmp = dir.join(format!("{META_FILENAME}.tmp"));
    let mut json = serde_json::to_vec_pretty(meta)
        .map_err(|e| StorageError::Io(format!("encode meta.json: {e}")))?;
    json.push(b'\n');
    let written = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_error("create", &tmp, e))?;
        f.write_all(&json).map_err(|e| io_error("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_error("fsync", &tmp, e))
    })();
    if let Err(e) = written {
        // Never read, but it holds space (the write may have failed for
        // lack of it).
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path).map_err(|e| io_error("rename", &tmp, e))?;
    sync_dir(dir)?;
    Ok(json.len() as u64)
}

/// fsyncs a directory so renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let d = std::fs::File::open(dir).map_err(|e| io_error("open dir", dir, e))?;
    d.sync_all().map_err(|e| io_error("fsync dir", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ulid_known_vector() {
        // The canonical example from the ULID spec: time 1469918176385.
        let u: Ulid = "01ARYZ6S41TSV4RRFFQ69G5FAV".parse().unwrap();
        assert_eq!(u.timestamp_ms(), 1_469_918_176_385);
        assert_eq!(u.to_string(), "01ARYZ6S41TSV4RRFFQ69G5FAV");
        assert!("81ARYZ6S41TSV4RRFFQ69G5FAV".parse::<Ulid>().is_err());
        assert!("01ARYZ6S41TSV4RRFFQ69G5FA".parse::<Ulid>().is_err());
        assert!("01ARYZ6S41TSV4RRFFQ69G5FAU".parse::<Ulid>().is_err());
    }

    #[test]
    fn new_ulids_are_distinct_and_time_ordered() {
        let a = Ulid::with_time(1000);
        let b = Ulid::with_time(1000);
        let c = Ulid::with_time(1001);
        assert_ne!(a, b);
        assert!(a < c && b < c);
        assert_eq!(c.timestamp_ms(), 1001);
    }

    proptest! {
        #[test]
        fn ulid_round_trip(v in any::<u128>()) {
            let u = Ulid(v >> 2);
            prop_assert_eq!(u.to_string().parse::<Ulid>().unwrap(), u);
        }
    }

    #[test]
    fn meta_round_trip_and_prometheus_shape() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = BlockMeta::new_level1(Ulid::with_time(5), 0, 7_200_000);
        m.stats.num_samples = 10;
        m.stats.num_series = 2;
        write_meta(dir.path(), &m).unwrap();
        assert_eq!(read_meta(dir.path()).unwrap(), m);
        let text = std::fs::read_to_string(dir.path().join(META_FILENAME)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["minTime"], 0);
        assert_eq!(v["maxTime"], 7_200_000);
        assert_eq!(v["stats"]["numSamples"], 10);
        assert!(v["stats"].get("numChunks").is_none());
        assert_eq!(v["compaction"]["level"], 1);
        assert_eq!(v["version"], 1);
    }

    #[test]
    fn reads_prometheus_written_meta() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{
	"ulid": "01GQ8ZPXWV4XJ3V1Y1ZR2Z2K0W",
	"minTime": 1674000000000,
	"maxTime": 1674007200000,
	"stats": {"numSamples": 553, "numSeries": 13, "numChunks": 20},
	"compaction": {"level": 2, "sources": ["01GQ8ZPXWV4XJ3V1Y1ZR2Z2K0W"],
	  "parents": [{"ulid": "01GQ8ZPXWV4XJ3V1Y1ZR2Z2K0W", "minTime": 1, "maxTime": 2}]},
	"version": 1
}"#;
        std::fs::write(dir.path().join(META_FILENAME), text).unwrap();
        let m = read_meta(dir.path()).unwrap();
        assert_eq!(m.compaction.level, 2);
        assert_eq!(m.compaction.parents.len(), 1);
        assert_eq!(m.stats.num_chunks, 20);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_meta_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(META_FILENAME), &b).unwrap();
            let starts_like_json = b.first() == Some(&b'{');
            prop_assert!(read_meta(dir.path()).is_err() || starts_like_json);
        }
    }

    #[test]
    fn bad_meta_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "",
            "{",
            r#"{"ulid":"x","minTime":0,"maxTime":1,"compaction":{"level":1},"version":1}"#,
            r#"{"ulid":"01ARYZ6S41TSV4RRFFQ69G5FAV","minTime":0,"maxTime":1,"compaction":{"level":1},"version":2}"#,
            r#"{"ulid":"01ARYZ6S41TSV4RRFFQ69G5FAV","minTime":5,"maxTime":1,"compaction":{"level":1},"version":1}"#,
        ] {
            std::fs::write(dir.path().join(META_FILENAME), text).unwrap();
            assert!(
                matches!(read_meta(dir.path()), Err(StorageError::Corruption { .. })),
                "{text}"
            );
        }
    }
}
