//! Chunk encodings: how a run of samples of one series becomes bytes.
//!
//! Owns the XOR (Gorilla) encoding, byte-compatible with Prometheus chunk
//! encoding 1, and `EncodedChunk`, the unit the head hands to block writing.
//! It knows nothing of files or series: callers store `bytes()` with an
//! encoding byte. A second, denser encoding of Vigil's own will be a new
//! `Encoding` variant and a new `ChunkIter` arm; nothing else changes.

mod bstream;
mod xor;

pub use bstream::{put_uvarint, put_varint};
pub use xor::{XorChunk, XorIter};

use std::fmt;
use vigil_model::Sample;

/// Samples Prometheus puts in a head chunk before cutting a new one.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// The encoding byte stored next to every chunk on disk.
///
/// The values are Prometheus's (`chunkenc.Encoding`). The high bit (0x80) is
/// taken by Prometheus's head chunk files to flag out-of-order chunks, so a
/// future Vigil encoding must use a value below 0x80 that Prometheus does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Gorilla-style float chunks.
    Xor = 1,
    /// Prometheus native histograms: recognised so the bytes can be carried
    /// through, but not decoded.
    Histogram = 2,
    /// Prometheus float native histograms: as `Histogram`.
    FloatHistogram = 3,
}

impl Encoding {
    /// The encoding for a byte read from disk, if it is one we know.
    pub fn from_u8(b: u8) -> Option<Encoding> {
        match b {
            1 => Some(Encoding::Xor),
            2 => Some(Encoding::Histogram),
            3 => Some(Encoding::FloatHistogram),
            _ => None,
        }
    }

    /// The byte written to disk.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Xor => "XOR",
            Encoding::Histogram => "histogram",
            Encoding::FloatHistogram => "floathistogram",
        })
    }
}

/// Why chunk bytes could not be decoded or appended to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk of {0} bytes is shorter than its 2-byte header")]
    TooShort(usize),
    #[error("unknown chunk encoding {0}")]
    UnknownEncoding(u8),
    #[error("chunk encoding {0} is not supported")]
    Unsupported(Encoding),
    #[error("corrupt chunk at sample {sample}: {reason}")]
    Corrupt { sample: u16, reason: &'static str },
    #[error("chunk holds the maximum of 65535 samples")]
    Full,
}

/// One encoded chunk of one series: the unit exchanged between the head and
/// block writing (compaction), and what a block's chunk file stores.
///
/// `mint`/`maxt` are the first and last sample timestamps (inclusive);
/// `data` is exactly what Prometheus stores after the encoding byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedChunk {
    pub mint: i64,
    pub maxt: i64,
    pub encoding: Encoding,
    pub data: Vec<u8>,
}

impl EncodedChunk {
    /// Builds an XOR chunk from samples sorted by timestamp. Returns `None`
    /// for an empty slice.
    pub fn from_samples(samples: &[Sample]) -> Option<EncodedChunk> {
        let first = samples.first()?;
        let last = samples.last()?;
        let mut c = XorChunk::new();
        for s in samples {
            // Cannot fail: callers never put 65535 samples in one chunk.
            c.append(s.t, s.v).ok()?;
        }
        Some(EncodedChunk {
            mint: first.t,
            maxt: last.t,
            encoding: Encoding::Xor,
            data: c.into_bytes(),
        })
    }

    /// An iterator over the samples.
    pub fn iter(&self) -> Result<ChunkIter<'_>, ChunkError> {
        ChunkIter::new(self.encoding, &self.data)
    }

    /// Sample count from the chunk header (0 when the header is missing).
    pub fn num_samples(&self) -> usize {
        match self.data.get(..2) {
            Some(h) => u16::from_be_bytes([h[0], h[1]]) as usize,
            None => 0,
        }
    }
}

/// Iterator over any decodable chunk. An enum rather than a trait object so
/// the per-sample call inlines.
#[derive(Clone, Debug)]
pub enum ChunkIter<'a> {
    Xor(XorIter<'a>),
}

impl<'a> ChunkIter<'a> {
    /// Starts iterating `data` encoded as `encoding`.
    pub fn new(encoding: Encoding, data: &'a [u8]) -> Result<Self, ChunkError> {
        match encoding {
            Encoding::Xor => Ok(ChunkIter::Xor(XorIter::new(data)?)),
            other => Err(ChunkError::Unsupported(other)),
        }
    }

    /// Starts iterating `data` whose encoding byte is `encoding`.
    pub fn from_raw(encoding: u8, data: &'a [u8]) -> Result<Self, ChunkError> {
        let enc = Encoding::from_u8(encoding).ok_or(ChunkError::UnknownEncoding(encoding))?;
        Self::new(enc, data)
    }

    /// The next sample, `None` at the end.
    #[inline]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Sample>, ChunkError> {
        match self {
            ChunkIter::Xor(it) => it.next(),
        }
    }

    /// Decodes every remaining sample onto `out` (the bulk read path).
    #[inline]
    pub fn drain_into(&mut self, out: &mut Vec<Sample>) -> Result<(), ChunkError> {
        match self {
            ChunkIter::Xor(it) => it.drain_into(out),
        }
    }

    /// Advances to the first sample at or after `t` (never backwards).
    #[inline]
    pub fn seek(&mut self, t: i64) -> Result<Option<Sample>, ChunkError> {
        match self {
            ChunkIter::Xor(it) => it.seek(t),
        }
    }

    /// The sample last returned.
    #[inline]
    pub fn at(&self) -> Sample {
        match self {
            ChunkIter::Xor(it) => it.at(),
        }
    }

    /// Number of samples the chunk announces.
    pub fn num_samples(&self) -> usize {
        match self {
            ChunkIter::Xor(it) => it.num_samples(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_chunk_round_trip() {
        let samples: Vec<Sample> = (0..10).map(|i| Sample::new(i * 15_000, i as f64)).collect();
        let c = EncodedChunk::from_samples(&samples).unwrap();
        assert_eq!((c.mint, c.maxt, c.num_samples()), (0, 135_000, 10));
        let mut it = c.iter().unwrap();
        let mut got = Vec::new();
        while let Some(s) = it.next().unwrap() {
            got.push(s);
        }
        assert_eq!(got, samples);
        assert!(EncodedChunk::from_samples(&[]).is_none());
    }

    #[test]
    fn encoding_bytes() {
        for e in [Encoding::Xor, Encoding::Histogram, Encoding::FloatHistogram] {
            assert_eq!(Encoding::from_u8(e.as_u8()), Some(e));
        }
        assert_eq!(Encoding::from_u8(0), None);
        assert!(matches!(
            ChunkIter::from_raw(9, &[0, 0]),
            Err(ChunkError::UnknownEncoding(9))
        ));
        assert!(matches!(
            ChunkIter::from_raw(2, &[0, 0]),
            Err(ChunkError::Unsupported(Encoding::Histogram))
        ));
    }
}
