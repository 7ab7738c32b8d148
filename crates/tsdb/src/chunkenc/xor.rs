//! XOR ("Gorilla") chunks, byte-compatible with Prometheus chunk encoding 1.
//!
//! Layout: a 2-byte big-endian sample count, then a bit stream: the first
//! timestamp as a zig-zag varint and the first value as 64 raw bits; the
//! second timestamp as a uvarint delta; later timestamps as delta-of-delta in
//! 1/16/20/24/68-bit buckets; every later value as the XOR with the previous
//! one with a leading/trailing-zero window.

use super::bstream::{peek_at, read_bits_at, write_bit, write_bits, BitReader};
use super::ChunkError;
use vigil_model::Sample;

/// A growable XOR chunk together with the state needed to append to it.
///
/// 48 bytes plus the encoded bytes: the head keeps one per active series,
/// so the layout is deliberate (buffer capacity is its length, the sample
/// count is mirrored in the struct so checks do not touch the buffer).
#[derive(Clone, Debug)]
pub struct XorChunk {
    /// Header and bit stream; bytes past `bits` are zero (spare capacity).
    buf: Box<[u8]>,
    t: i64,
    v: u64,
    t_delta: u64,
    /// Bits used in `buf`, header included.
    bits: u32,
    num: u16,
    /// Leading zeros of the current value window; 0xff until one is set.
    leading: u8,
    trailing: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

/// The bytes of a chunk without samples.
const EMPTY: [u8; 2] = [0, 0];

impl XorChunk {
    /// An empty chunk; allocates on the first append.
    pub fn new() -> Self {
        XorChunk {
            buf: Box::new([]),
            t: 0,
            v: 0,
            t_delta: 0,
            bits: 0,
            num: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// Reopens encoded bytes for appending, rebuilding the appender state by
    /// decoding every sample (as Prometheus's `XORChunk.Appender` does).
    pub fn from_bytes(buf: Vec<u8>) -> Result<Self, ChunkError> {
        let mut it = XorIter::new(&buf)?;
        while it.next()?.is_some() {}
        let used = it.r.position();
        let avail = (buf.len() - 2) * 8;
        if avail - used >= 8 {
            return Err(ChunkError::Corrupt {
                sample: it.read,
                reason: "trailing bytes after the last sample",
            });
        }
        let (t, v, t_delta, trailing, num) = (it.t, it.v, it.t_delta, it.trailing, it.total);
        let leading = if it.window_set { it.leading } else { 0xff };
        let bits = (16 + used) as u32;
        let mut buf = buf.into_boxed_slice();
        // Padding bits must be zero or later writes would be OR-ed with them.
        let free = (buf.len() * 8 - bits as usize) as u32;
        if let Some(last) = buf.last_mut() {
            if free > 0 {
                *last &= !((1u16 << free) - 1) as u8;
            }
        }
        Ok(XorChunk {
            buf,
            t,
            v,
            t_delta,
            bits,
            num,
            leading,
            trailing,
        })
    }

    /// Number of samples in the chunk.
    #[inline]
    pub fn num_samples(&self) -> usize {
        self.num as usize
    }

    /// The encoded chunk: header and bit stream, as stored on disk.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        if self.bits == 0 {
            return &EMPTY;
        }
        &self.buf[..(self.bits as usize).div_ceil(8)]
    }

    /// Consumes the chunk, returning its encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        if self.bits == 0 {
            return EMPTY.to_vec();
        }
        let n = (self.bits as usize).div_ceil(8);
        let mut v = self.buf.into_vec();
        v.truncate(n);
        v
    }

    /// Timestamp of the first sample (meaningless when empty).
    pub fn first_t(&self) -> i64 {
        let mut r = BitReader::new(self.bytes().get(2..).unwrap_or(&[]));
        r.read_varint().unwrap_or(self.t)
    }

    /// Timestamp of the last appended sample (meaningless when empty).
    #[inline]
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// Value of the last appended sample (meaningless when empty).
    #[inline]
    pub fn last_v(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// Hints the CPU to fetch the bytes the next append writes. Replay and
    /// commit touch thousands of series in turn, each a likely cache miss;
    /// issuing the fetches for a group before appending overlaps them.
    #[inline]
    pub fn prefetch_tail(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let at = (self.bits / 8) as usize;
            if let Some(b) = self.buf.get(at) {
                // SAFETY: a prefetch never faults and has no effect on memory.
                unsafe {
                    core::arch::x86_64::_mm_prefetch(
                        b as *const u8 as *const i8,
                        core::arch::x86_64::_MM_HINT_T0,
                    )
                };
            }
        }
    }

    /// Heap bytes held by the chunk.
    pub fn heap_size(&self) -> usize {
        self.buf.len()
    }

    /// An iterator over the samples.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::from_valid(self.bytes())
    }

    /// Appends a sample. Timestamps are not checked for order (the head does
    /// that); arithmetic wraps exactly as Prometheus's does. Fails only when
    /// the 16-bit sample count is exhausted.
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        if self.num == u16::MAX {
            return Err(ChunkError::Full);
        }
        if self.bits == 0 {
            // Room for the header and a typical first sample.
            self.buf = vec![0u8; 32].into_boxed_slice();
            self.bits = 16;
        }
        let vbits = v.to_bits();
        let mut t_delta = 0;
        let mut tmp = [0u8; 10];
        match self.num {
            0 => {
                let n = varint_into(&mut tmp, t);
                for &b in &tmp[..n] {
                    write_bits(&mut self.buf, &mut self.bits, b as u64, 8);
                }
                write_bits(&mut self.buf, &mut self.bits, vbits, 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let n = uvarint_into(&mut tmp, t_delta);
                for &b in &tmp[..n] {
                    write_bits(&mut self.buf, &mut self.bits, b as u64, 8);
                }
                self.write_value(vbits);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                let (b, bits) = (&mut self.buf, &mut self.bits);
                if dod == 0 {
                    write_bit(b, bits, false);
                } else if bit_range(dod, 14) {
                    write_bits(b, bits, (0b10 << 14) | (dod as u64 & 0x3fff), 16);
                } else if bit_range(dod, 17) {
                    write_bits(b, bits, (0b110 << 17) | (dod as u64 & 0x1_ffff), 20);
                } else if bit_range(dod, 20) {
                    write_bits(b, bits, (0b1110 << 20) | (dod as u64 & 0xf_ffff), 24);
                } else {
                    write_bits(b, bits, 0b1111, 4);
                    write_bits(b, bits, dod as u64, 64);
                }
                self.write_value(vbits);
            }
        }
        self.t = t;
        self.v = vbits;
        self.t_delta = t_delta;
        self.num += 1;
        let n = self.num.to_be_bytes();
        self.buf[0] = n[0];
        self.buf[1] = n[1];
        Ok(())
    }

    fn write_value(&mut self, vbits: u64) {
        let (b, bits) = (&mut self.buf, &mut self.bits);
        let delta = vbits ^ self.v;
        if delta == 0 {
            write_bit(b, bits, false);
            return;
        }
        // Leading zeros are stored in 5 bits.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            write_bits(b, bits, 0b10, 2);
            let sig = 64 - self.leading as u32 - self.trailing as u32;
            write_bits(b, bits, delta >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            // 64 significant bits do not fit in 6 bits; 0 stands for 64
            // (0 itself is impossible since delta != 0).
            let sig = 64 - leading as u32 - trailing as u32;
            write_bits(
                b,
                bits,
                (0b11 << 11) | ((leading as u64) << 6) | (sig as u64 & 0x3f),
                13,
            );
            write_bits(b, bits, delta >> trailing, sig);
        }
    }
}

/// Whether `x` fits Prometheus's `nbits` bucket: `-(2^(n-1)-1) ..= 2^(n-1)`.
#[inline]
fn bit_range(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

fn varint_into(tmp: &mut [u8; 10], v: i64) -> usize {
    uvarint_into(tmp, ((v as u64) << 1) ^ ((v >> 63) as u64))
}

fn uvarint_into(tmp: &mut [u8; 10], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        tmp[i] = v as u8 | 0x80;
        v >>= 7;
        i += 1;
    }
    tmp[i] = v as u8;
    i + 1
}

/// Decodes a bucketed delta-of-delta the way Prometheus does: values above
/// `2^(sz-1)` are negative.
#[inline(always)]
fn signed(bits: u64, sz: u32) -> u64 {
    if bits > (1u64 << (sz - 1)) {
        bits.wrapping_sub(1u64 << sz)
    } else {
        bits
    }
}

/// Iterator over an XOR chunk's samples. Corrupt bytes give an error, never
/// a panic or an endless loop.
#[derive(Clone, Debug)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    window_set: bool,
}

impl<'a> XorIter<'a> {
    /// Starts iterating encoded chunk bytes (header included).
    pub fn new(data: &'a [u8]) -> Result<Self, ChunkError> {
        if data.len() < 2 {
            return Err(ChunkError::TooShort(data.len()));
        }
        Ok(Self::from_valid(data))
    }

    fn from_valid(data: &'a [u8]) -> Self {
        XorIter {
            r: BitReader::new(&data[2..]),
            total: u16::from_be_bytes([data[0], data[1]]),
            read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            window_set: false,
        }
    }

    /// Number of samples the chunk header announces.
    pub fn num_samples(&self) -> usize {
        self.total as usize
    }

    /// The sample last returned by `next`/`seek` (undefined before the first).
    #[inline]
    pub fn at(&self) -> Sample {
        Sample::new(self.t, f64::from_bits(self.v))
    }

    /// The next sample, `None` at the end.
    #[inline]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Sample>, ChunkError> {
        if self.read >= self.total {
            return Ok(None);
        }
        if self.read < 2 {
            return self.next_head();
        }
        let w = self.r.peek();
        // Number of leading one bits selects the delta-of-delta bucket.
        let dod = match (!w).leading_zeros() {
            0 => {
                self.r.skip(1);
                0
            }
            1 => {
                self.r.skip(16);
                signed((w << 2) >> 50, 14)
            }
            2 => {
                self.r.skip(20);
                signed((w << 3) >> 47, 17)
            }
            3 => {
                self.r.skip(24);
                signed((w << 4) >> 44, 20)
            }
            _ => {
                self.r.skip(4);
                self.r.read_bits(64)
            }
        };
        self.t_delta = self.t_delta.wrapping_add(dod);
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value()?;
        self.read += 1;
        Ok(Some(self.at()))
    }

    /// Decodes every remaining sample onto `out`: the bulk path of range
    /// reads. The decoder state, the bit position included, lives in locals
    /// (so nothing is stored back per sample), the samples go into slots
    /// made up front, and one 64-bit load serves both a timestamp and its
    /// value when they fit in it (the common case: a regular interval and a
    /// value that changed a little or not at all).
    pub fn drain_into(&mut self, out: &mut Vec<Sample>) -> Result<(), ChunkError> {
        while self.read < 2 {
            match self.next()? {
                Some(s) => out.push(s),
                None => return Ok(()),
            }
        }
        let base = out.len();
        let remaining = usize::from(self.total.saturating_sub(self.read));
        out.resize(base + remaining, Sample::new(0, 0.0));
        let dst = &mut out[base..];
        let (data, mut pos) = self.r.parts();
        let end_bits = data.len() * 8;
        let (mut t, mut v, mut td) = (self.t, self.v, self.t_delta);
        let (mut leading, mut trailing) = (u32::from(self.leading), u32::from(self.trailing));
        let mut window_set = self.window_set;
        let mut n = 0usize;
        let res = loop {
            if n >= remaining {
                break Ok(());
            }
            let w0 = peek_at(data, pos);
            // The delta of delta; `w` keeps the bits after it, of which
            // `avail` are valid (57 - its width).
            let (dod, mut w, avail) = if w0 >> 63 == 0 {
                pos += 1;
                (0, w0 << 1, 56)
            } else {
                let (k, dod) = match (!w0).leading_zeros() {
                    1 => (16, signed((w0 << 2) >> 50, 14)),
                    2 => (20, signed((w0 << 3) >> 47, 17)),
                    3 => (24, signed((w0 << 4) >> 44, 20)),
                    _ => (0, 0),
                };
                if k == 0 {
                    pos += 4;
                    let d = read_bits_at(data, &mut pos, 64);
                    (d, peek_at(data, pos), 57)
                } else {
                    pos += k as usize;
                    (dod, w0 << k, 57 - k)
                }
            };
            td = td.wrapping_add(dod);
            t = t.wrapping_add(td as i64);
            if w >> 63 == 0 {
                pos += 1;
            } else {
                let ctl: u32 = if (w >> 62) & 1 == 0 {
                    2
                } else {
                    let l = ((w >> 57) & 0x1f) as u32;
                    let mut sig = ((w >> 51) & 0x3f) as u32;
                    if sig == 0 {
                        sig = 64;
                    }
                    if l + sig > 64 {
                        break Err(ChunkError::Corrupt {
                            sample: self.read + n as u16,
                            reason: "value window wider than 64 bits",
                        });
                    }
                    leading = l;
                    trailing = 64 - l - sig;
                    window_set = true;
                    13
                };
                let sig = 64 - leading - trailing;
                let bits = if ctl + sig <= avail {
                    pos += (ctl + sig) as usize;
                    w <<= ctl;
                    w >> (64 - sig)
                } else {
                    pos += ctl as usize;
                    read_bits_at(data, &mut pos, sig)
                };
                v ^= bits << trailing;
            }
            if pos > end_bits {
                break Err(ChunkError::Corrupt {
                    sample: self.read + n as u16,
                    reason: "bit stream ends before the announced sample count",
                });
            }
            dst[n] = Sample::new(t, f64::from_bits(v));
            n += 1;
        };
        out.truncate(base + n);
        self.r.set_position(pos);
        self.t = t;
        self.v = v;
        self.t_delta = td;
        self.leading = leading as u8;
        self.trailing = trailing as u8;
        self.window_set = window_set;
        self.read += n as u16;
        res
    }

    #[cold]
    fn next_head(&mut self) -> Result<Option<Sample>, ChunkError> {
        if self.read == 0 {
            let t = self.r.read_varint().ok_or(ChunkError::Corrupt {
                sample: 0,
                reason: "bad varint timestamp",
            })?;
            self.t = t;
            self.v = self.r.read_bits(64);
            if self.r.overrun() {
                return Err(self.truncated());
            }
        } else {
            let d = self.r.read_uvarint().ok_or(ChunkError::Corrupt {
                sample: 1,
                reason: "bad uvarint timestamp delta",
            })?;
            self.t_delta = d;
            self.t = self.t.wrapping_add(d as i64);
            self.read_value()?;
        }
        self.read += 1;
        Ok(Some(self.at()))
    }

    #[inline(always)]
    fn read_value(&mut self) -> Result<(), ChunkError> {
        let w = self.r.peek();
        if w >> 63 == 0 {
            self.r.skip(1);
        } else {
            let ctl: u32;
            if (w >> 62) & 1 == 0 {
                ctl = 2;
            } else {
                let leading = ((w >> 57) & 0x1f) as u8;
                let mut sig = ((w >> 51) & 0x3f) as u8;
                if sig == 0 {
                    sig = 64;
                }
                if leading as u32 + sig as u32 > 64 {
                    return Err(ChunkError::Corrupt {
                        sample: self.read,
                        reason: "value window wider than 64 bits",
                    });
                }
                self.leading = leading;
                self.trailing = 64 - leading - sig;
                self.window_set = true;
                ctl = 13;
            }
            // sig >= 1: leading + trailing < 64 by construction.
            let sig = 64 - self.leading as u32 - self.trailing as u32;
            // `w` holds at least 57 valid bits: take the value bits from it
            // too when they fit, saving a second load.
            let bits = if ctl + sig <= 57 {
                self.r.skip(ctl + sig);
                (w << ctl) >> (64 - sig)
            } else {
                self.r.skip(ctl);
                self.r.read_bits(sig)
            };
            self.v ^= bits << self.trailing;
        }
        if self.r.overrun() {
            return Err(self.truncated());
        }
        Ok(())
    }

    #[cold]
    fn truncated(&self) -> ChunkError {
        ChunkError::Corrupt {
            sample: self.read,
            reason: "bit stream ends before the announced sample count",
        }
    }

    /// Advances to the first sample with timestamp >= `t` and returns it;
    /// returns the current sample if it already qualifies (never goes back).
    pub fn seek(&mut self, t: i64) -> Result<Option<Sample>, ChunkError> {
        if self.read > 0 && self.t >= t {
            return Ok(Some(self.at()));
        }
        while let Some(s) = self.next()? {
            if s.t >= t {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_model::STALE_NAN;

    fn encode(samples: &[(i64, f64)]) -> XorChunk {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, v).unwrap();
        }
        c
    }

    fn decode(bytes: &[u8]) -> Result<Vec<(i64, u64)>, ChunkError> {
        let mut it = XorIter::new(bytes)?;
        let mut out = Vec::new();
        while let Some(s) = it.next()? {
            out.push((s.t, s.v.to_bits()));
        }
        Ok(out)
    }

    /// Timestamps: mostly regular with jitter, sometimes wild jumps (negative,
    /// huge), so every delta-of-delta bucket and wrap-around is exercised.
    fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        let step = prop_oneof![
            8 => 14_000i64..16_000,
            2 => Just(15_000i64),
            1 => any::<i64>(),
            1 => -100_000i64..100_000,
            1 => -(1i64 << 40)..(1i64 << 40),
        ];
        (any::<i64>(), proptest::collection::vec(step, 0..300)).prop_map(|(start, steps)| {
            let mut t = start;
            let mut out = vec![t];
            for s in steps {
                t = t.wrapping_add(s);
                out.push(t);
            }
            out
        })
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => (0u32..1000).prop_map(|x| x as f64),
            2 => any::<f64>(),
            1 => Just(f64::NAN),
            1 => Just(STALE_NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(-0.0),
            1 => any::<u64>().prop_map(f64::from_bits),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn round_trip(ts in timestamps(), vs in proptest::collection::vec(value(), 301)) {
            let samples: Vec<(i64, f64)> = ts.iter().zip(vs.iter()).map(|(&t, &v)| (t, v)).collect();
            let c = encode(&samples);
            prop_assert_eq!(c.num_samples(), samples.len());
            let got = decode(c.bytes()).unwrap();
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn reopen_then_append_matches_one_pass(ts in timestamps(), vs in proptest::collection::vec(value(), 301), split in 0usize..300) {
            let samples: Vec<(i64, f64)> = ts.iter().zip(vs.iter()).map(|(&t, &v)| (t, v)).collect();
            let split = split.min(samples.len());
            let whole = encode(&samples);
            let mut part = XorChunk::from_bytes(encode(&samples[..split]).into_bytes()).unwrap();
            for &(t, v) in &samples[split..] {
                part.append(t, v).unwrap();
            }
            prop_assert_eq!(part.bytes(), whole.bytes());
        }

        #[test]
        fn corrupt_bytes_never_panic(ts in timestamps(), vs in proptest::collection::vec(value(), 301), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
            let samples: Vec<(i64, f64)> = ts.iter().zip(vs.iter()).map(|(&t, &v)| (t, v)).collect();
            let mut bytes = encode(&samples).into_bytes();
            for (i, x) in flips {
                let n = bytes.len();
                bytes[i % n] ^= x;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            // Any outcome is fine as long as it terminates without panicking.
            let _ = decode(&bytes);
            let _ = XorChunk::from_bytes(bytes);
        }

        /// The bulk decoder agrees with `next` sample for sample, from any
        /// starting point, also on corrupt bytes (same samples, then an
        /// error exactly where `next` fails), and leaves the iterator where
        /// `next` would (a reopened chunk appends with its window).
        #[test]
        fn drain_into_agrees_with_next(ts in timestamps(), vs in proptest::collection::vec(value(), 301), skip in 0usize..310, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4), cut in any::<usize>()) {
            let samples: Vec<(i64, f64)> = ts.iter().zip(vs.iter()).map(|(&t, &v)| (t, v)).collect();
            let mut bytes = encode(&samples).into_bytes();
            for (i, b) in &flips {
                let i = 2 + i % (bytes.len() - 1).max(1);
                if i < bytes.len() {
                    bytes[i] ^= b;
                }
            }
            if !flips.is_empty() {
                bytes.truncate(2 + cut % bytes.len().max(1));
            }
            let Ok(mut a) = XorIter::new(&bytes) else { return Ok(()) };
            let mut b = a.clone();
            let mut want = Vec::new();
            let mut got = Vec::new();
            for _ in 0..skip {
                match a.next() {
                    Ok(Some(_)) => { b.next().unwrap(); }
                    Ok(None) => break,
                    // Where an iterator stands after an error is unspecified.
                    Err(_) => return Ok(()),
                }
            }
            let want_res = loop {
                match a.next() {
                    Ok(Some(s)) => want.push((s.t, s.v.to_bits())),
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let got_res = b.drain_into(&mut got);
            let got: Vec<(i64, u64)> = got.iter().map(|s| (s.t, s.v.to_bits())).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(format!("{got_res:?}"), format!("{want_res:?}"));
            prop_assert_eq!((b.t, b.v, b.read, b.leading, b.trailing, b.window_set), (a.t, a.v, a.read, a.leading, a.trailing, a.window_set));
        }

        #[test]
        fn seek_finds_first_at_or_after(ts in proptest::collection::vec(0i64..1_000_000, 1..200), target in -10i64..1_100_000) {
            let mut ts = ts;
            ts.sort();
            ts.dedup();
            let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
            let c = encode(&samples);
            let mut it = c.iter();
            let got = it.seek(target).unwrap().map(|s| s.t);
            prop_assert_eq!(got, ts.iter().copied().find(|&t| t >= target));
            // A second seek to an earlier time stays put.
            prop_assert_eq!(it.seek(target - 5).unwrap().map(|s| s.t), got);
        }
    }

    #[test]
    fn empty_chunk() {
        let c = XorChunk::new();
        assert_eq!(c.bytes(), &[0, 0]);
        assert_eq!(decode(c.bytes()).unwrap(), vec![]);
        assert!(XorIter::new(&[0]).is_err());
    }

    #[test]
    fn stale_nan_bits_survive() {
        let c = encode(&[(1, 1.0), (2, STALE_NAN), (3, f64::NAN), (4, STALE_NAN)]);
        let got = decode(c.bytes()).unwrap();
        assert_eq!(got[1].1, vigil_model::STALE_NAN_BITS);
        assert_eq!(got[2].1, f64::NAN.to_bits());
        assert_eq!(got[3].1, vigil_model::STALE_NAN_BITS);
    }

    /// Bytes worked out by hand from Prometheus's encoding rules for three
    /// samples (1000, 1.0), (2000, 1.0), (3001, 2.0).
    #[test]
    fn known_bytes() {
        let c = encode(&[(1000, 1.0), (2000, 1.0), (3001, 2.0)]);
        let mut want = vec![0x00, 0x03];
        // varint(1000) zig-zag = 2000 = 0xd0 0x0f
        want.extend_from_slice(&[0xd0, 0x0f]);
        want.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        // uvarint(1000) = 0xe8 0x07
        want.extend_from_slice(&[0xe8, 0x07]);
        // Then bits: value unchanged '0'; dod = 1 -> '10' + 14 bits
        // 00000000000001; value 1.0^2.0 = 0x7ff0000000000000: leading 1,
        // trailing 52, sig 11 -> '1' '1' 00001 001011 11111111111.
        let bits =
            "0".to_string() + "10" + "00000000000001" + "11" + "00001" + "001011" + "11111111111";
        let mut padded = bits.clone();
        while !padded.len().is_multiple_of(8) {
            padded.push('0');
        }
        for chunk in padded.as_bytes().chunks(8) {
            let s = std::str::from_utf8(chunk).unwrap();
            want.push(u8::from_str_radix(s, 2).unwrap());
        }
        assert_eq!(c.bytes(), &want[..]);
    }
}
