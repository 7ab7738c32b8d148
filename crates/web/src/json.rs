//! A minimal JSON writer that appends straight into a byte buffer.
//!
//! Query results are the API's hot path (Grafana panels ask for thousands of
//! points per series), so they are written without building a `serde_json`
//! tree. Number formatting follows Prometheus byte for byte: sample values
//! as Go's `strconv.FormatFloat` does them, timestamps as seconds with
//! millisecond digits.

use std::time::{SystemTime, UNIX_EPOCH};

use vigil_model::gofmt::{append_float, FloatFormat};
use vigil_model::Labels;

/// Appends JSON tokens to a `Vec<u8>`. The caller is responsible for
/// balancing brackets; commas between elements are explicit (`comma`).
#[derive(Default)]
pub struct JsonWriter {
    pub buf: Vec<u8>,
}

impl JsonWriter {
    pub fn new() -> Self {
        JsonWriter {
            buf: Vec::with_capacity(1024),
        }
    }

    pub fn with_capacity(n: usize) -> Self {
        JsonWriter {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    #[inline]
    pub fn raw(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    /// Writes `"key":`.
    #[inline]
    pub fn key(&mut self, k: &str) {
        self.string(k);
        self.buf.push(b':');
    }

    /// Writes a JSON string with the escaping Go's encoder uses for the
    /// characters that matter (`<`, `>` and `&` are escaped as Go does).
    pub fn string(&mut self, s: &str) {
        self.buf.push(b'"');
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let esc: Option<&[u8]> = match b {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                b'<' | b'>' | b'&' | 0..=0x1f => None,
                _ => continue,
            };
            self.buf.extend_from_slice(&bytes[start..i]);
            match esc {
                Some(e) => self.buf.extend_from_slice(e),
                None => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.buf.extend_from_slice(b"\\u00");
                    self.buf.push(HEX[(b >> 4) as usize]);
                    self.buf.push(HEX[(b & 0xf) as usize]);
                }
            }
            start = i + 1;
        }
        self.buf.extend_from_slice(&bytes[start..]);
        self.buf.push(b'"');
    }

    pub fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    pub fn i64(&mut self, v: i64) {
        let mut b = itoa_buf(v);
        self.buf.append(&mut b);
    }

    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_string());
    }

    /// A float as a bare JSON number, as Go's encoder writes a `float64`
    /// field (durations, evaluation times). Non-finite values become 0 since
    /// JSON cannot carry them.
    pub fn f64_number(&mut self, v: f64) {
        if !v.is_finite() {
            self.raw("0");
            return;
        }
        append_float(&mut self.buf, v, FloatFormat::Json);
    }

    /// A sample value as a quoted string, `"NaN"`, `"+Inf"`, `"1.5"`.
    #[inline]
    pub fn sample_value(&mut self, v: f64) {
        self.buf.push(b'"');
        append_float(&mut self.buf, v, FloatFormat::Json);
        self.buf.push(b'"');
    }

    /// A millisecond timestamp as float seconds (`1435781451.781`).
    #[inline]
    pub fn timestamp(&mut self, t: i64) {
        format_timestamp(t, &mut self.buf);
    }

    /// `[<ts>,"<value>"]`
    #[inline]
    pub fn point(&mut self, t: i64, v: f64) {
        self.buf.push(b'[');
        self.timestamp(t);
        self.buf.push(b',');
        self.sample_value(v);
        self.buf.push(b']');
    }

    /// A label set as a JSON object in label order.
    pub fn labels(&mut self, labels: &Labels) {
        self.buf.push(b'{');
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.key(&l.name);
            self.string(&l.value);
        }
        self.buf.push(b'}');
    }

    /// An array of strings.
    pub fn string_array<S: AsRef<str>>(&mut self, items: &[S]) {
        self.array(items, |w, s| w.string(s.as_ref()));
    }

    /// `[...]` with one element per item, written by `element`.
    pub fn array<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut element: impl FnMut(&mut Self, T),
    ) {
        self.buf.push(b'[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            element(self, item);
        }
        self.buf.push(b']');
    }

    /// `{...}` with one `"key":value` member per entry, the value written
    /// by `value`.
    pub fn object<K: AsRef<str>, T>(
        &mut self,
        entries: impl IntoIterator<Item = (K, T)>,
        mut value: impl FnMut(&mut Self, T),
    ) {
        self.buf.push(b'{');
        for (i, (k, v)) in entries.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.key(k.as_ref());
            value(self, v);
        }
        self.buf.push(b'}');
    }

    /// A wall-clock time the way Go marshals `time.Time` (RFC 3339 with
    /// nanoseconds, trailing zeros trimmed, UTC).
    pub fn time(&mut self, t: Option<SystemTime>) {
        let s = format_rfc3339(t);
        self.string(&s);
    }
}

fn itoa_buf(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Milliseconds as seconds with the fraction written as three digits when
/// non-zero, e.g. 1500 -> `1.500`, 2000 -> `2`, -1 -> `-0.001`.
pub fn format_timestamp(t: i64, out: &mut Vec<u8>) {
    if t < 0 {
        out.push(b'-');
    }
    // `unsigned_abs` covers i64::MIN.
    let a = t.unsigned_abs();
    out.extend_from_slice(itoa::Buffer::new().format(a / 1000).as_bytes());
    let frac = (a % 1000) as u32;
    if frac != 0 {
        out.extend_from_slice(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
    }
}

/// `time.Time` JSON: RFC 3339 in UTC with up to nanosecond digits, trailing
/// zeros trimmed; `None` is Go's zero time.
pub fn format_rfc3339(t: Option<SystemTime>) -> String {
    let (secs, nanos) = match t {
        None => return "0001-01-01T00:00:00Z".to_string(),
        Some(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                let mut s = -(d.as_secs() as i64);
                let mut n = d.subsec_nanos();
                if n > 0 {
                    s -= 1;
                    n = 1_000_000_000 - n;
                }
                (s, n)
            }
        },
    };
    vigil_model::gofmt::rfc3339_nano(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(v: f64) -> String {
        let mut w = JsonWriter::new();
        w.sample_value(v);
        let s = String::from_utf8(w.buf).unwrap();
        s.trim_matches('"').to_string()
    }

    fn ts(t: i64) -> String {
        let mut b = Vec::new();
        format_timestamp(t, &mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn sample_values_match_go() {
        assert_eq!(val(f64::NAN), "NaN");
        assert_eq!(val(f64::INFINITY), "+Inf");
        assert_eq!(val(f64::NEG_INFINITY), "-Inf");
        assert_eq!(val(0.0), "0");
        assert_eq!(val(-0.0), "-0");
        assert_eq!(val(1.0), "1");
        assert_eq!(val(2.5), "2.5");
        assert_eq!(val(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(val(1e20), "100000000000000000000");
        assert_eq!(val(1e21), "1e+21");
        assert_eq!(val(1.5e300), "1.5e+300");
        assert_eq!(val(1e-6), "0.000001");
        assert_eq!(val(1e-7), "1e-07");
        assert_eq!(val(-2.5e-10), "-2.5e-10");
        assert_eq!(val(123456789.125), "123456789.125");
        assert_eq!(val(f64::MAX), "1.7976931348623157e+308");
        // Exact ties between 17-digit neighbours go to the even one (Go).
        assert_eq!(val(205_940_987_179.0 + 1.0 / 64.0), "205940987179.01562");
    }

    #[test]
    fn timestamps_have_millisecond_digits() {
        assert_eq!(ts(0), "0");
        assert_eq!(ts(1500), "1.500");
        assert_eq!(ts(1001), "1.001");
        assert_eq!(ts(1435781451781), "1435781451.781");
        assert_eq!(ts(4000), "4");
        assert_eq!(ts(-1), "-0.001");
        assert_eq!(ts(-1500), "-1.500");
        assert_eq!(ts(i64::MIN), "-9223372036854775.808");
        assert_eq!(ts(i64::MAX), "9223372036854775.807");
        assert_eq!(ts(999), "0.999");
        assert_eq!(ts(-1000), "-1");
    }

    #[test]
    fn strings_are_escaped() {
        let mut w = JsonWriter::new();
        w.string("a\"b\\c\n<&>\u{1}é");
        assert_eq!(
            String::from_utf8(w.buf).unwrap(),
            r#""a\"b\\c\n\u003c\u0026\u003e\u0001é""#
        );
    }

    #[test]
    fn rfc3339_round_values() {
        use std::time::Duration;
        let at = |d: Duration| Some(UNIX_EPOCH + d);
        assert_eq!(format_rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(at(Duration::ZERO)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(at(Duration::new(1_700_000_000, 123_000_000))),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            format_rfc3339(Some(UNIX_EPOCH - Duration::new(0, 500_000_000))),
            "1969-12-31T23:59:59.5Z"
        );
    }
}
