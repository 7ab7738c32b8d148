//! gzip response bodies inflated as their chunks arrive, with zlib-rs.
//!
//! reqwest's own gzip support inflates through miniz_oxide, which was about
//! a tenth of ingestion CPU; zlib-rs inflates several times faster. The
//! gzip wrapper (RFC 1952 header, CRC-32 and length trailer) is read here
//! and only the raw deflate data goes to zlib-rs, so inflate states can be
//! reset and reused: a few pooled states serve every target, instead of
//! one allocated per scrape (which left the allocator holding megabytes).
//! Output goes onto the scrape's reused buffer. Concatenated members are
//! read one after another and errors are worded as Go's `gzip.Reader`
//! words them.

use std::sync::Mutex;

use zlib_rs::{Inflate, InflateFlush, Status};

/// Output inflated per call before it is copied onto the body.
const SCRATCH: usize = 32 * 1024;

/// A gzip header longer than this (it has a file name and a comment of
/// any length) is refused rather than buffered.
const MAX_HEADER: usize = 64 * 1024;

/// Idle inflate states kept for reuse.
const POOL_MAX: usize = 4;

static POOL: Mutex<Vec<Raw>> = Mutex::new(Vec::new());

/// A raw-deflate state and its output scratch, reset between uses.
struct Raw {
    inflate: Inflate,
    scratch: Vec<u8>,
}

/// Why a body could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GunzipError {
    /// The inflated body passed `body_size_limit`.
    TooLarge,
    /// The stream is not valid gzip (the message is Go's wording).
    Corrupt(&'static str),
}

const INVALID_HEADER: GunzipError = GunzipError::Corrupt("gzip: invalid header");
const INVALID_CHECKSUM: GunzipError = GunzipError::Corrupt("gzip: invalid checksum");
const UNEXPECTED_EOF: GunzipError = GunzipError::Corrupt("unexpected EOF");

enum Stage {
    /// Collecting a member's header (the bytes so far in `held`).
    Header,
    /// Inflating a member's deflate data.
    Data,
    /// Collecting a member's 8-byte trailer.
    Trailer,
    /// After a whole member: the stream may end, or another member start.
    Between,
}

/// A gzip stream being inflated.
pub struct Gunzip {
    stage: Stage,
    held: Vec<u8>,
    raw: Option<Raw>,
    crc: u32,
    size: u32,
}

impl Default for Gunzip {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Gunzip {
    fn drop(&mut self) {
        if let Some(mut raw) = self.raw.take() {
            raw.inflate.reset(false);
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOL_MAX {
                pool.push(raw);
            }
        }
    }
}

impl Gunzip {
    pub fn new() -> Self {
        Gunzip {
            stage: Stage::Header,
            held: Vec::new(),
            raw: None,
            crc: 0,
            size: 0,
        }
    }

    /// Inflates `input` (the next bytes of the stream) onto `out`, which may
    /// then hold at most `limit` bytes (0: no limit).
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<(), GunzipError> {
        while !input.is_empty() {
            match self.stage {
                Stage::Between | Stage::Header => {
                    self.stage = Stage::Header;
                    let old = self.held.len();
                    self.held.extend_from_slice(input);
                    match header_len(&self.held)? {
                        None if self.held.len() > MAX_HEADER => return Err(INVALID_HEADER),
                        None => return Ok(()),
                        Some(n) => {
                            input = &input[n - old..];
                            self.held.clear();
                            self.crc = 0;
                            self.size = 0;
                            self.stage = Stage::Data;
                        }
                    }
                }
                Stage::Data => {
                    let raw = self.raw.get_or_insert_with(take_raw);
                    let (in0, out0) = (raw.inflate.total_in(), raw.inflate.total_out());
                    let res =
                        raw.inflate
                            .decompress(input, &mut raw.scratch, InflateFlush::NoFlush);
                    let consumed = (raw.inflate.total_in() - in0) as usize;
                    let produced =
                        ((raw.inflate.total_out() - out0) as usize).min(raw.scratch.len());
                    input = &input[consumed.min(input.len())..];
                    if limit > 0 && (out.len() + produced) as u64 > limit {
                        return Err(GunzipError::TooLarge);
                    }
                    let data = &raw.scratch[..produced];
                    self.crc = zlib_rs::crc32::crc32(self.crc, data);
                    self.size = self.size.wrapping_add(produced as u32);
                    out.extend_from_slice(data);
                    match res {
                        Ok(Status::StreamEnd) => {
                            raw.inflate.reset(false);
                            self.stage = Stage::Trailer;
                        }
                        Ok(_) if consumed > 0 || produced > 0 => {}
                        Ok(_) | Err(_) => {
                            raw.inflate.reset(false);
                            return Err(GunzipError::Corrupt("flate: corrupt input"));
                        }
                    }
                }
                Stage::Trailer => {
                    let n = (8 - self.held.len()).min(input.len());
                    self.held.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.held.len() == 8 {
                        let crc = u32::from_le_bytes([
                            self.held[0],
                            self.held[1],
                            self.held[2],
                            self.held[3],
                        ]);
                        let size = u32::from_le_bytes([
                            self.held[4],
                            self.held[5],
                            self.held[6],
                            self.held[7],
                        ]);
                        if crc != self.crc || size != self.size {
                            return Err(INVALID_CHECKSUM);
                        }
                        self.held.clear();
                        self.stage = Stage::Between;
                    }
                }
            }
        }
        Ok(())
    }

    /// The stream ended: it must end after a whole member.
    pub fn finish(&self) -> Result<(), GunzipError> {
        match self.stage {
            Stage::Between => Ok(()),
            _ => Err(UNEXPECTED_EOF),
        }
    }
}

fn take_raw() -> Raw {
    let pooled = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
    pooled.unwrap_or_else(|| {
        Raw {
            // Raw deflate with a 32 KiB window.
            inflate: Inflate::new(false, 15),
            scratch: vec![0; SCRATCH],
        }
    })
}

/// The length of the gzip member header at the start of `b`, `None` if `b`
/// holds only part of it.
fn header_len(b: &[u8]) -> Result<Option<usize>, GunzipError> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    // ID1 ID2 CM checked as soon as they are there.
    for (i, want) in [0x1f, 0x8b, 8].into_iter().enumerate() {
        match b.get(i) {
            Some(&x) if x != want => return Err(INVALID_HEADER),
            None => return Ok(None),
            _ => {}
        }
    }
    if b.len() < 10 {
        return Ok(None);
    }
    let flags = b[3];
    let mut n = 10;
    if flags & FEXTRA != 0 {
        let Some(len) = b.get(n..n + 2) else {
            return Ok(None);
        };
        n += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
        if b.len() < n {
            return Ok(None);
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            match b[n..].iter().position(|&c| c == 0) {
                Some(end) => n += end + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & FHCRC != 0 {
        let Some(sum) = b.get(n..n + 2) else {
            return Ok(None);
        };
        let want = zlib_rs::crc32::crc32(0, &b[..n]) as u16;
        if u16::from_le_bytes([sum[0], sum[1]]) != want {
            return Err(INVALID_HEADER);
        }
        n += 2;
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Feeds `packed` in pieces cut at `cuts` (offsets taken modulo its
    /// length) and finishes.
    fn inflate(packed: &[u8], cuts: &[usize], limit: u64) -> Result<Vec<u8>, GunzipError> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (packed.len() + 1)).collect();
        points.push(0);
        points.push(packed.len());
        points.sort();
        let mut g = Gunzip::new();
        let mut out = Vec::new();
        for w in points.windows(2) {
            g.feed(&packed[w[0]..w[1]], &mut out, limit)?;
        }
        g.finish()?;
        Ok(out)
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..3000),
            // Exposition-like text: long, very compressible.
            (1usize..4000).prop_map(|n| (0..n)
                .flat_map(|i| format!("metric_{}{{l=\"{}\"}} {}\n", i % 7, i % 13, i).into_bytes())
                .collect()),
        ]
    }

    /// A member with every optional header field, built by hand.
    fn member_with_all_header_fields(data: &[u8]) -> Vec<u8> {
        let plain = gzip(data, 6);
        let mut h = vec![0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 3];
        h.extend_from_slice(&3u16.to_le_bytes());
        h.extend_from_slice(b"xyz");
        h.extend_from_slice(b"name.txt\0");
        h.extend_from_slice(b"a comment\0");
        let sum = zlib_rs::crc32::crc32(0, &h) as u16;
        h.extend_from_slice(&sum.to_le_bytes());
        h.extend_from_slice(&plain[10..]);
        h
    }

    proptest! {
        /// Whatever the chunking, the body comes back whole; concatenated
        /// members (also with every header field) come back concatenated.
        #[test]
        fn round_trip_in_any_chunks(a in body(), b in proptest::option::of(body()), level in 0u32..10, cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let mut packed = gzip(&a, level);
            let mut want = a.clone();
            if let Some(b) = &b {
                packed.extend(member_with_all_header_fields(b));
                want.extend_from_slice(b);
            }
            prop_assert_eq!(inflate(&packed, &cuts, 0), Ok(want));
        }

        /// Damaged or cut streams give an error, never a panic or a hang,
        /// and never another body as if it were whole.
        #[test]
        fn damage_is_an_error(a in body(), flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4), cut in any::<bool>(), cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
            let mut packed = gzip(&a, 6);
            if cut {
                let at = flips[0].0 % packed.len();
                packed.truncate(at);
            } else {
                for (i, x) in &flips {
                    let i = i % packed.len();
                    packed[i] ^= x;
                }
            }
            if let Ok(got) = inflate(&packed, &cuts, 0) {
                // A flip the format cannot see (the header's flags-free
                // bytes: mtime, extra flags, OS) still yields the body.
                prop_assert_eq!(got, a);
            }
        }
    }

    #[test]
    fn limit_applies_to_the_inflated_size() {
        let data = vec![b'x'; 100_000];
        let packed = gzip(&data, 6);
        assert!(packed.len() < 1000);
        assert_eq!(inflate(&packed, &[], 99_999), Err(GunzipError::TooLarge));
        assert_eq!(inflate(&packed, &[], 100_000), Ok(data));
    }

    #[test]
    fn errors_in_go_words() {
        assert_eq!(inflate(b"not gzip at all", &[], 0), Err(INVALID_HEADER));
        assert_eq!(inflate(b"", &[], 0), Err(UNEXPECTED_EOF));
        let mut packed = gzip(b"hello, world", 6);
        packed.truncate(packed.len() - 3);
        assert_eq!(inflate(&packed, &[], 0), Err(UNEXPECTED_EOF));
        let mut packed = gzip(b"hello, world", 6);
        let n = packed.len();
        packed[n - 6] ^= 1; // CRC-32 of the data
        assert_eq!(inflate(&packed, &[], 0), Err(INVALID_CHECKSUM));
        let mut packed = gzip(b"hello, world", 6);
        packed[n - 2] ^= 1; // length
        assert_eq!(inflate(&packed, &[], 0), Err(INVALID_CHECKSUM));
        let mut packed = member_with_all_header_fields(b"hi");
        packed[27] ^= 1; // header CRC-16
        assert_eq!(inflate(&packed, &[], 0), Err(INVALID_HEADER));
        // Garbage after a complete member is a bad second header.
        let mut packed = gzip(b"hello", 6);
        packed.extend_from_slice(b"junk");
        assert_eq!(inflate(&packed, &[], 0), Err(INVALID_HEADER));
        // A corrupt deflate block.
        let mut packed = gzip(b"hello", 6);
        packed[10] = 0xff;
        assert_eq!(
            inflate(&packed, &[], 0),
            Err(GunzipError::Corrupt("flate: corrupt input"))
        );
    }
}
