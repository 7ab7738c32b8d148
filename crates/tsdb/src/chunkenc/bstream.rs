//! Bit streams, most significant bit first, as Prometheus's `bstream` lays
//! them out: the first bit written is bit 7 of byte 0, unused low bits of the
//! last byte are zero.

/// Bits written to a boxed buffer whose length is its capacity; `bits`
/// counts the bits used. Growth is in small steps: a head keeps one such
/// buffer per series, so slack costs memory on every series.
#[inline]
fn reserve(buf: &mut Box<[u8]>, bits: u32, n: u32) {
    let need = (bits as usize + n as usize).div_ceil(8);
    if need > buf.len() {
        grow(buf, need);
    }
}

#[cold]
fn grow(buf: &mut Box<[u8]>, need: usize) {
    // About one eighth extra, at least 24 bytes, rounded to 16.
    let cap = (need + (need / 8).max(24) + 15) & !15;
    let mut v = Vec::with_capacity(cap);
    v.extend_from_slice(buf);
    v.resize(cap, 0);
    *buf = v.into_boxed_slice();
}

/// Appends one bit.
#[inline]
pub(crate) fn write_bit(buf: &mut Box<[u8]>, bits: &mut u32, bit: bool) {
    reserve(buf, *bits, 1);
    if bit {
        buf[(*bits / 8) as usize] |= 0x80 >> (*bits % 8);
    }
    *bits += 1;
}

/// Appends the low `n` bits of `v` (n <= 64), most significant first.
/// Bits past `bits` in the buffer must be zero (they are: growth zeroes).
#[inline]
pub(crate) fn write_bits(buf: &mut Box<[u8]>, bits: &mut u32, v: u64, n: u32) {
    if n == 0 {
        return;
    }
    debug_assert!(n <= 64);
    reserve(buf, *bits, n);
    let v = if n < 64 { v & ((1u64 << n) - 1) } else { v };
    let mut byte = (*bits / 8) as usize;
    let used = *bits % 8;
    let mut left = n;
    // Top up the partly filled byte.
    if used > 0 {
        let free = 8 - used;
        if left <= free {
            buf[byte] |= (v << (free - left)) as u8;
            *bits += n;
            return;
        }
        buf[byte] |= (v >> (left - free)) as u8;
        left -= free;
        byte += 1;
    }
    // Byte aligned: the low `left` bits of `v` go in whole bytes.
    let nbytes = left.div_ceil(8) as usize;
    let aligned = v << (64 - left);
    buf[byte..byte + nbytes].copy_from_slice(&aligned.to_be_bytes()[..nbytes]);
    *bits += n;
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
        peek_at(self.data, self.pos)
    }

    /// The stream and the position, for decoders that keep the position in
    /// a local across a hot loop (see [`peek_at`]).
    #[inline]
    pub(crate) fn parts(&self) -> (&'a [u8], usize) {
        (self.data, self.pos)
    }

    #[inline]
    pub(crate) fn set_position(&mut self, pos: usize) {
        self.pos = pos;
    }

    #[inline(always)]
    pub(crate) fn skip(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// Reads `n` bits (0 <= n <= 64) as the low bits of the result.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, n: u32) -> u64 {
        read_bits_at(self.data, &mut self.pos, n)
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

/// The 64 bits of `data` from bit `pos`, left-aligned; at least the top 57
/// are valid stream bits (or zero past the end).
#[inline(always)]
pub(crate) fn peek_at(data: &[u8], pos: usize) -> u64 {
    let byte = pos >> 3;
    let w = match data.get(byte..byte + 8) {
        Some(s) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_be_bytes(a)
        }
        None => load_tail(data, byte),
    };
    w << (pos & 7)
}

/// Reads `n` bits (0 <= n <= 64) from bit `*pos` as the low bits of the
/// result, and advances `*pos`.
#[inline(always)]
pub(crate) fn read_bits_at(data: &[u8], pos: &mut usize, n: u32) -> u64 {
    if n == 0 {
        return 0;
    }
    if n <= 57 {
        let v = peek_at(data, *pos) >> (64 - n);
        *pos += n as usize;
        v
    } else {
        read_bits_wide(data, pos, n)
    }
}

/// `read_bits_at` for 58..=64 bits, out of line so the common case inlines.
#[inline(never)]
fn read_bits_wide(data: &[u8], pos: &mut usize, n: u32) -> u64 {
    let hi = peek_at(data, *pos) >> 32;
    *pos += 32;
    let lo = peek_at(data, *pos) >> (96 - n);
    *pos += (n - 32) as usize;
    (hi << (n - 32)) | lo
}

/// The last few bytes of a stream: small chunks (constant series) spend
/// a good share of their reads here, so the common case is one load.
#[inline]
fn load_tail(data: &[u8], byte: usize) -> u64 {
    let len = data.len();
    if byte >= len {
        return 0;
    }
    if len >= 8 {
        // `byte` is within the last 7 bytes: load the last 8 and shift
        // out the ones before it.
        let mut a = [0u8; 8];
        a.copy_from_slice(&data[len - 8..]);
        return u64::from_be_bytes(a) << ((byte + 8 - len) * 8);
    }
    let mut w = 0u64;
    for (i, &b) in data[byte..].iter().enumerate() {
        w |= (b as u64) << (56 - 8 * i);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(items in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..200)) {
            let mut buf: Box<[u8]> = Box::new([]);
            let mut bits = 0u32;
            for &(v, n) in &items {
                if n == 1 {
                    write_bit(&mut buf, &mut bits, v & 1 == 1);
                } else {
                    write_bits(&mut buf, &mut bits, v, n);
                }
            }
            let total: u32 = items.iter().map(|&(_, n)| n).sum();
            prop_assert_eq!(bits, total);
            let used = &buf[..total.div_ceil(8) as usize];
            prop_assert!(buf[used.len()..].iter().all(|&b| b == 0));
            let mut r = BitReader::new(used);
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
        let mut buf: Box<[u8]> = Box::new([]);
        let mut bits = 0;
        write_bit(&mut buf, &mut bits, true);
        write_bits(&mut buf, &mut bits, 0b01, 2);
        assert_eq!(buf[0], 0b1010_0000);
        assert_eq!(bits, 3);
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
