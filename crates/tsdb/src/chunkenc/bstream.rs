//! Bit streams, most significant bit first, as Prometheus's `bstream` lays
//! them out: the first bit written is bit 7 of byte 0, unused low bits of the
//! last byte are zero.

/// Appends bits to a byte vector.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitWriter {
    pub(crate) buf: Vec<u8>,
    /// Unused low bits in the last byte of `buf` (0 when it is full or empty).
    pub(crate) free: u8,
}

impl BitWriter {
    pub(crate) fn with_bytes(buf: Vec<u8>, free: u8) -> Self {
        BitWriter { buf, free }
    }

    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            if let Some(last) = self.buf.last_mut() {
                *last |= 1 << self.free;
            }
        }
    }

    /// Writes the low `n` bits of `v` (n <= 64), most significant first.
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        debug_assert!(n <= 64);
        // Left-align the payload so the next bit to write is always bit 63.
        let mut v = v << (64 - n);
        let mut n = n;
        while n > 0 {
            if self.free == 0 {
                // Whole bytes go straight in.
                while n >= 8 {
                    self.buf.push((v >> 56) as u8);
                    v <<= 8;
                    n -= 8;
                }
                if n == 0 {
                    return;
                }
                self.buf.push(0);
                self.free = 8;
            }
            let take = (self.free as u32).min(n);
            let bits = (v >> (64 - take)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= bits << (self.free as u32 - take);
            }
            self.free -= take as u8;
            v = if take == 64 { 0 } else { v << take };
            n -= take;
        }
    }

    /// Writes a whole byte at the current bit position.
    #[inline]
    pub(crate) fn write_byte(&mut self, b: u8) {
        self.write_bits(b as u64, 8);
    }
}

/// Reads bits from a byte slice. Reads past the end yield zero bits; callers
/// check `overrun()` once per decoded item instead of on every read, which
/// keeps the hot loop free of bounds branches.
#[derive(Clone, Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Next bit to read, counted from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// True when more bits were consumed than the data holds.
    #[inline]
    pub(crate) fn overrun(&self) -> bool {
        self.pos > self.data.len() * 8
    }

    /// Bits consumed so far.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The next 64 bits, left-aligned; at least the top 57 are valid stream
    /// bits (or zero past the end). Does not consume.
    #[inline(always)]
    pub(crate) fn peek(&self) -> u64 {
        let byte = self.pos >> 3;
        let w = match self.data.get(byte..byte + 8) {
            Some(s) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                u64::from_be_bytes(a)
            }
            None => self.load_tail(byte),
        };
        w << (self.pos & 7)
    }

    #[cold]
    fn load_tail(&self, byte: usize) -> u64 {
        let mut a = [0u8; 8];
        if byte < self.data.len() {
            let rest = &self.data[byte..];
            a[..rest.len()].copy_from_slice(rest);
        }
        u64::from_be_bytes(a)
    }

    #[inline(always)]
    pub(crate) fn skip(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// Reads `n` bits (0 <= n <= 64) as the low bits of the result.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, n: u32) -> u64 {
        if n == 0 {
            return 0;
        }
        if n <= 57 {
            let v = self.peek() >> (64 - n);
            self.pos += n as usize;
            v
        } else {
            let hi = self.read_bits(32);
            let lo = self.read_bits(n - 32);
            (hi << (n - 32)) | lo
        }
    }

    #[inline]
    pub(crate) fn read_byte(&mut self) -> u8 {
        self.read_bits(8) as u8
    }

    /// Reads a Go `binary.ReadUvarint` value; `None` if it overflows 64 bits.
    pub(crate) fn read_uvarint(&mut self) -> Option<u64> {
        let mut x: u64 = 0;
        let mut s: u32 = 0;
        for i in 0..10 {
            let b = self.read_byte();
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return None;
                }
                return Some(x | (b as u64) << s);
            }
            x |= ((b & 0x7f) as u64) << s;
            s += 7;
        }
        None
    }

    /// Reads a Go `binary.ReadVarint` (zig-zag) value.
    pub(crate) fn read_varint(&mut self) -> Option<i64> {
        let ux = self.read_uvarint()?;
        let mut x = (ux >> 1) as i64;
        if ux & 1 != 0 {
            x = !x;
        }
        Some(x)
    }
}

/// Appends Go's `binary.PutUvarint` encoding of `v` to `out`.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends Go's `binary.PutVarint` (zig-zag) encoding of `v` to `out`.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let ux = ((v as u64) << 1) ^ ((v >> 63) as u64);
    put_uvarint(out, ux);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(items in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..200)) {
            let mut w = BitWriter::default();
            for &(v, n) in &items {
                w.write_bits(v, n);
            }
            let total: u32 = items.iter().map(|&(_, n)| n).sum();
            prop_assert_eq!(w.buf.len(), total.div_ceil(8) as usize);
            let mut r = BitReader::new(&w.buf);
            for &(v, n) in &items {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.read_bits(n), v & mask);
            }
            prop_assert!(!r.overrun());
        }

        #[test]
        fn varints_round_trip(vals in proptest::collection::vec(any::<i64>(), 0..50)) {
            let mut buf = Vec::new();
            for &v in &vals {
                put_varint(&mut buf, v);
                put_uvarint(&mut buf, v as u64);
            }
            let mut r = BitReader::new(&buf);
            for &v in &vals {
                prop_assert_eq!(r.read_varint(), Some(v));
                prop_assert_eq!(r.read_uvarint(), Some(v as u64));
            }
        }
    }

    #[test]
    fn msb_first_layout() {
        let mut w = BitWriter::default();
        w.write_bit(true);
        w.write_bits(0b01, 2);
        assert_eq!(w.buf, vec![0b1010_0000]);
        assert_eq!(w.free, 5);
    }

    #[test]
    fn reading_past_end_is_detected() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(8), 0xff);
        assert!(!r.overrun());
        assert_eq!(r.read_bits(4), 0);
        assert!(r.overrun());
    }
}
