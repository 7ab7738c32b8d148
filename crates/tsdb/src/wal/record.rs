//! WAL record payloads, byte-compatible with Prometheus's `tsdb/record`.
//!
//! Every record starts with a type byte. Series: `ref <be64>` then labels
//! (`n <uvarint>`, then `len <uvarint> bytes` for each name and value).
//! Samples: `base ref <be64> base t <be64>`, then per sample `ref - base
//! <varint> t - base <varint> value <be64>`. Tombstones: `ref <be64> mint
//! <varint> maxt <varint>` repeated. Exemplars: like samples, each followed
//! by a label set. Decoders return errors on any malformed input.

use crate::chunkenc::{put_uvarint, put_varint};
use vigil_model::{Label, Labels};

/// Record type bytes (Prometheus's `record.Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    Series = 1,
    Samples = 2,
    Tombstones = 3,
    Exemplars = 4,
    MmapMarkers = 5,
    Metadata = 6,
    HistogramSamples = 7,
    FloatHistogramSamples = 8,
}

impl RecordType {
    /// The type of an encoded record, `None` when empty or unknown.
    pub fn of(rec: &[u8]) -> Option<RecordType> {
        Some(match rec.first()? {
            1 => RecordType::Series,
            2 => RecordType::Samples,
            3 => RecordType::Tombstones,
            4 => RecordType::Exemplars,
            5 => RecordType::MmapMarkers,
            6 => RecordType::Metadata,
            7 => RecordType::HistogramSamples,
            8 => RecordType::FloatHistogramSamples,
            _ => return None,
        })
    }
}

/// A malformed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("invalid record type {0}")]
    InvalidType(u8),
    #[error("empty record")]
    Empty,
    #[error("record truncated: {0}")]
    Truncated(&'static str),
    #[error("invalid varint in record")]
    BadVarint,
    #[error("label {0} is not valid UTF-8")]
    BadUtf8(&'static str),
}

/// A series definition: its ref and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSeries {
    pub series_ref: u64,
    pub labels: Labels,
}

/// One float sample of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefSample {
    pub series_ref: u64,
    pub t: i64,
    pub v: f64,
}

/// A deleted interval of a series (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stone {
    pub series_ref: u64,
    pub mint: i64,
    pub maxt: i64,
}

/// An exemplar attached to a series.
#[derive(Clone, Debug, PartialEq)]
pub struct RefExemplar {
    pub series_ref: u64,
    pub t: i64,
    pub v: f64,
    pub labels: Labels,
}

// ---- encoding ----

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends the label block (`n`, then name/value strings).
pub fn put_labels<'a>(
    buf: &mut Vec<u8>,
    n: usize,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    put_uvarint(buf, n as u64);
    for (name, value) in pairs {
        put_str(buf, name);
        put_str(buf, value);
    }
}

/// Starts a series record in `buf` (cleared first); add series with
/// `put_series_entry`.
pub fn begin_series(buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(RecordType::Series as u8);
}

/// Appends one series to a record begun with `begin_series`.
pub fn put_series_entry<'a>(
    buf: &mut Vec<u8>,
    series_ref: u64,
    n: usize,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    buf.extend_from_slice(&series_ref.to_be_bytes());
    put_labels(buf, n, pairs);
}

/// Encodes a series record into `buf` (cleared first).
pub fn encode_series(series: &[RefSeries], buf: &mut Vec<u8>) {
    begin_series(buf);
    for s in series {
        put_series_entry(
            buf,
            s.series_ref,
            s.labels.len(),
            s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        );
    }
}

/// Encodes a samples record into `buf` (cleared first).
pub fn encode_samples(samples: &[RefSample], buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(RecordType::Samples as u8);
    let Some(first) = samples.first() else {
        return;
    };
    buf.extend_from_slice(&first.series_ref.to_be_bytes());
    buf.extend_from_slice(&(first.t as u64).to_be_bytes());
    for s in samples {
        put_varint(
            buf,
            (s.series_ref as i64).wrapping_sub(first.series_ref as i64),
        );
        put_varint(buf, s.t.wrapping_sub(first.t));
        buf.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

/// Encodes a tombstones record into `buf` (cleared first).
pub fn encode_tombstones(stones: &[Stone], buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(RecordType::Tombstones as u8);
    for s in stones {
        buf.extend_from_slice(&s.series_ref.to_be_bytes());
        put_varint(buf, s.mint);
        put_varint(buf, s.maxt);
    }
}

/// Encodes an exemplars record into `buf` (cleared first).
pub fn encode_exemplars(exemplars: &[RefExemplar], buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(RecordType::Exemplars as u8);
    let Some(first) = exemplars.first() else {
        return;
    };
    buf.extend_from_slice(&first.series_ref.to_be_bytes());
    buf.extend_from_slice(&(first.t as u64).to_be_bytes());
    for e in exemplars {
        put_varint(
            buf,
            (e.series_ref as i64).wrapping_sub(first.series_ref as i64),
        );
        put_varint(buf, e.t.wrapping_sub(first.t));
        buf.extend_from_slice(&e.v.to_bits().to_be_bytes());
        put_labels(
            buf,
            e.labels.len(),
            e.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        );
    }
}

// ---- decoding ----

/// A cursor over record bytes; every read checks bounds.
pub(crate) struct Dec<'a> {
    b: &'a [u8],
}

impl<'a> Dec<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Dec { b }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
    pub(crate) fn byte(&mut self) -> Result<u8, RecordError> {
        let (&x, rest) = self.b.split_first().ok_or(RecordError::Truncated("byte"))?;
        self.b = rest;
        Ok(x)
    }
    pub(crate) fn be64(&mut self) -> Result<u64, RecordError> {
        if self.b.len() < 8 {
            return Err(RecordError::Truncated("be64"));
        }
        let (h, rest) = self.b.split_at(8);
        self.b = rest;
        let mut a = [0u8; 8];
        a.copy_from_slice(h);
        Ok(u64::from_be_bytes(a))
    }
    pub(crate) fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut x: u64 = 0;
        let mut s = 0u32;
        for i in 0..10 {
            let b = self.byte().map_err(|_| RecordError::BadVarint)?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(RecordError::BadVarint);
                }
                return Ok(x | (b as u64) << s);
            }
            x |= ((b & 0x7f) as u64) << s;
            s += 7;
        }
        Err(RecordError::BadVarint)
    }
    pub(crate) fn varint(&mut self) -> Result<i64, RecordError> {
        let ux = self.uvarint()?;
        let x = (ux >> 1) as i64;
        Ok(if ux & 1 != 0 { !x } else { x })
    }
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], RecordError> {
        let n = self.uvarint()?;
        if n > self.b.len() as u64 {
            return Err(RecordError::Truncated(what));
        }
        let (h, rest) = self.b.split_at(n as usize);
        self.b = rest;
        Ok(h)
    }
    pub(crate) fn str(&mut self, what: &'static str) -> Result<&'a str, RecordError> {
        std::str::from_utf8(self.bytes(what)?).map_err(|_| RecordError::BadUtf8(what))
    }
}

fn expect_type(dec: &mut Dec<'_>, want: RecordType) -> Result<(), RecordError> {
    let t = dec.byte().map_err(|_| RecordError::Empty)?;
    if t != want as u8 {
        return Err(RecordError::InvalidType(t));
    }
    Ok(())
}

/// Decodes a series record, calling `f(ref, pairs)` for each series with
/// borrowed label strings (no allocation per label).
pub fn decode_series_with<'a>(
    rec: &'a [u8],
    pairs: &mut Vec<(&'a str, &'a str)>,
    mut f: impl FnMut(u64, &[(&'a str, &'a str)]),
) -> Result<(), RecordError> {
    let mut dec = Dec::new(rec);
    expect_type(&mut dec, RecordType::Series)?;
    while !dec.is_empty() {
        let r = dec.be64()?;
        read_pairs(&mut dec, pairs)?;
        f(r, pairs);
    }
    Ok(())
}

fn read_pairs<'a>(
    dec: &mut Dec<'a>,
    pairs: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), RecordError> {
    pairs.clear();
    let n = dec.uvarint()?;
    // Each label takes at least two bytes: bound the loop by the input.
    if n > dec.b.len() as u64 {
        return Err(RecordError::Truncated("label count"));
    }
    for _ in 0..n {
        let name = dec.str("label name")?;
        let value = dec.str("label value")?;
        pairs.push((name, value));
    }
    Ok(())
}

fn labels_from(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|&(n, v)| Label::new(n, v)).collect())
}

/// Decodes a series record into owned label sets.
pub fn decode_series(rec: &[u8], out: &mut Vec<RefSeries>) -> Result<(), RecordError> {
    let mut pairs = Vec::new();
    decode_series_with(rec, &mut pairs, |r, p| {
        out.push(RefSeries {
            series_ref: r,
            labels: labels_from(p),
        })
    })
}

/// Decodes a samples record, appending to `out`.
pub fn decode_samples(rec: &[u8], out: &mut Vec<RefSample>) -> Result<(), RecordError> {
    let mut dec = Dec::new(rec);
    expect_type(&mut dec, RecordType::Samples)?;
    if dec.is_empty() {
        return Ok(());
    }
    let base_ref = dec.be64()?;
    let base_t = dec.be64()? as i64;
    while !dec.is_empty() {
        let dref = dec.varint()?;
        let dt = dec.varint()?;
        let v = f64::from_bits(dec.be64()?);
        out.push(RefSample {
            series_ref: (base_ref as i64).wrapping_add(dref) as u64,
            t: base_t.wrapping_add(dt),
            v,
        });
    }
    Ok(())
}

/// Decodes a tombstones record, appending to `out`.
pub fn decode_tombstones(rec: &[u8], out: &mut Vec<Stone>) -> Result<(), RecordError> {
    let mut dec = Dec::new(rec);
    expect_type(&mut dec, RecordType::Tombstones)?;
    while !dec.is_empty() {
        out.push(Stone {
            series_ref: dec.be64()?,
            mint: dec.varint()?,
            maxt: dec.varint()?,
        });
    }
    Ok(())
}

/// Decodes an exemplars record, appending to `out`.
pub fn decode_exemplars(rec: &[u8], out: &mut Vec<RefExemplar>) -> Result<(), RecordError> {
    let mut dec = Dec::new(rec);
    expect_type(&mut dec, RecordType::Exemplars)?;
    if dec.is_empty() {
        return Ok(());
    }
    let base_ref = dec.be64()?;
    let base_t = dec.be64()? as i64;
    let mut pairs = Vec::new();
    while !dec.is_empty() {
        let dref = dec.varint()?;
        let dt = dec.varint()?;
        let v = f64::from_bits(dec.be64()?);
        read_pairs(&mut dec, &mut pairs)?;
        out.push(RefExemplar {
            series_ref: base_ref.wrapping_add(dref as u64),
            t: base_t.wrapping_add(dt),
            v,
            labels: labels_from(&pairs),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_labels() -> impl Strategy<Value = Labels> {
        proptest::collection::vec(("[a-z_]{1,8}", "\\PC{1,12}"), 0..6)
            .prop_map(|p| Labels::from_pairs(&p))
    }

    proptest! {
        #[test]
        fn series_round_trip(s in proptest::collection::vec((any::<u64>(), arb_labels()), 0..20)) {
            let series: Vec<RefSeries> = s.into_iter().map(|(r, l)| RefSeries { series_ref: r, labels: l }).collect();
            let mut buf = Vec::new();
            encode_series(&series, &mut buf);
            let mut out = Vec::new();
            decode_series(&buf, &mut out).unwrap();
            prop_assert_eq!(out, series);
        }

        #[test]
        fn samples_round_trip(s in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<u64>()), 0..50)) {
            let samples: Vec<RefSample> = s.iter().map(|&(r, t, v)| RefSample { series_ref: r, t, v: f64::from_bits(v) }).collect();
            let mut buf = Vec::new();
            encode_samples(&samples, &mut buf);
            let mut out = Vec::new();
            decode_samples(&buf, &mut out).unwrap();
            prop_assert_eq!(out.len(), samples.len());
            for (a, b) in out.iter().zip(&samples) {
                prop_assert_eq!((a.series_ref, a.t, a.v.to_bits()), (b.series_ref, b.t, b.v.to_bits()));
            }
        }

        #[test]
        fn tombstones_round_trip(s in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<i64>()), 0..20)) {
            let stones: Vec<Stone> = s.iter().map(|&(r, a, b)| Stone { series_ref: r, mint: a, maxt: b }).collect();
            let mut buf = Vec::new();
            encode_tombstones(&stones, &mut buf);
            let mut out = Vec::new();
            decode_tombstones(&buf, &mut out).unwrap();
            prop_assert_eq!(out, stones);
        }

        #[test]
        fn exemplars_round_trip(s in proptest::collection::vec((1u64..1000, -1000i64..1000, -5.0f64..5.0, arb_labels()), 0..10)) {
            let ex: Vec<RefExemplar> = s.into_iter().map(|(r, t, v, labels)| RefExemplar { series_ref: r, t, v, labels }).collect();
            let mut buf = Vec::new();
            encode_exemplars(&ex, &mut buf);
            let mut out = Vec::new();
            decode_exemplars(&buf, &mut out).unwrap();
            prop_assert_eq!(out, ex);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_series(&b, &mut Vec::new());
            let _ = decode_samples(&b, &mut Vec::new());
            let _ = decode_tombstones(&b, &mut Vec::new());
            let _ = decode_exemplars(&b, &mut Vec::new());
        }
    }

    /// Bytes as Prometheus's encoder lays them out for one sample record.
    #[test]
    fn samples_layout() {
        let mut buf = Vec::new();
        encode_samples(
            &[
                RefSample {
                    series_ref: 5,
                    t: 1000,
                    v: 1.0,
                },
                RefSample {
                    series_ref: 4,
                    t: 1001,
                    v: 2.0,
                },
            ],
            &mut buf,
        );
        let mut want = vec![2u8];
        want.extend_from_slice(&5u64.to_be_bytes());
        want.extend_from_slice(&1000u64.to_be_bytes());
        want.extend_from_slice(&[0, 0]);
        want.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        // ref delta -1 zig-zags to 1, time delta 1 to 2.
        want.extend_from_slice(&[1, 2]);
        want.extend_from_slice(&2.0f64.to_bits().to_be_bytes());
        assert_eq!(buf, want);
    }
}
