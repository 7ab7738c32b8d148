//! Value types of the configuration file: Prometheus durations, secrets,
//! byte sizes and URLs, each parsing and printing exactly as Prometheus does.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;

/// A Prometheus duration (`model.Duration`): millisecond precision, written
/// as `1y2w3d4h5m6s7ms` with units in descending order, or `0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

const MS: u64 = 1;
const SEC: u64 = 1000 * MS;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
const YEAR: u64 = 365 * DAY;

/// A duration string that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    #[error("duration out of range")]
    OutOfRange,
}

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms)
    }

    pub const fn from_secs(s: u64) -> Self {
        Duration(s * SEC)
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }

    /// Parses Prometheus's syntax (`model.ParseDuration`).
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        if s == "0" {
            return Ok(Duration(0));
        }
        let invalid = || DurationError::Invalid(s.to_string());
        if s.is_empty() {
            return Err(invalid());
        }
        // Units in the only order Prometheus accepts; each at most once.
        const UNITS: [(&str, u64); 7] = [
            ("y", YEAR),
            ("w", WEEK),
            ("d", DAY),
            ("h", HOUR),
            ("m", MIN),
            ("s", SEC),
            ("ms", MS),
        ];
        let mut rest = s;
        let mut next_unit = 0;
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            let (num, tail) = rest.split_at(digits);
            let unit_len = tail.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
            let (unit, tail) = tail.split_at(unit_len);
            let idx = UNITS[next_unit..]
                .iter()
                .position(|(u, _)| *u == unit)
                .map(|i| i + next_unit)
                .ok_or_else(invalid)?;
            next_unit = idx + 1;
            let n: u64 = num.parse().map_err(|_| DurationError::OutOfRange)?;
            let mult = UNITS[idx].1;
            // Prometheus bounds each part, and the sum, by int64 nanoseconds.
            let limit = (i64::MAX as u64) / 1_000_000;
            if n > limit / mult {
                return Err(DurationError::OutOfRange);
            }
            total = total
                .checked_add(n * mult)
                .filter(|t| *t <= limit)
                .ok_or(DurationError::OutOfRange)?;
            rest = tail;
        }
        Ok(Duration(total))
    }
}

/// Formats as `model.Duration.String()`: `90s` is `1m30s`, zero is `0s`;
/// years and weeks only when they divide the rest exactly.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&vigil_model::gofmt::ModelDuration(self.0), f)
    }
}

impl FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.to_std()
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A secret string: never printed, serialised as `<secret>`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub const REDACTED: &'static str = "<secret>";

    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the code that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Secret::REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Secret::REDACTED)
    }
}

/// A byte count written with base-2 units (`units.Base2Bytes`): `10MB` and
/// `10MiB` are both 10 * 2^20; `0` is zero (no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("units: invalid {s}");
        let body = s.strip_prefix('+').unwrap_or(s);
        if body.starts_with('-') {
            return Err("body size limit cannot be negative".to_string());
        }
        if body == "0" {
            return Ok(ByteSize(0));
        }
        if body.is_empty() {
            return Err(bad());
        }
        let mut rest = body;
        let mut total = 0f64;
        while !rest.is_empty() {
            let num_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b'.')
                .count();
            let num = &rest[..num_len];
            if num.is_empty() || num == "." || num.matches('.').count() > 1 {
                return Err(bad());
            }
            let value: f64 = num.parse().map_err(|_| bad())?;
            let unit_len = rest[num_len..]
                .bytes()
                .take_while(|b| !(b.is_ascii_digit() || *b == b'.'))
                .count();
            let unit = &rest[num_len..num_len + unit_len];
            let mult = unit_multiplier(unit)
                .ok_or_else(|| format!("units: unknown unit {unit} in {s}"))?;
            total += value * mult as f64;
            rest = &rest[num_len + unit_len..];
        }
        if total >= 9.223_372_036_854_776e18 {
            return Err("units: overflow parsing unit".to_string());
        }
        Ok(ByteSize(total as u64))
    }
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    if unit == "B" {
        return Some(1);
    }
    let prefix = unit.strip_suffix("iB").or_else(|| unit.strip_suffix('B'))?;
    let power = ["K", "M", "G", "T", "P", "E"]
        .iter()
        .position(|p| *p == prefix)?;
    Some(1u64 << (10 * (power + 1)))
}

/// Formats as `Base2Bytes.String()`: `10MiB`, `1KiB512B`, `0B`.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = self.0;
        if n == 0 {
            return f.write_str("0B");
        }
        let mut parts = Vec::new();
        for unit in ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] {
            if !n.is_multiple_of(1024) {
                parts.push(format!("{}{unit}", n % 1024));
            }
            n /= 1024;
            if n == 0 {
                break;
            }
        }
        parts.reverse();
        f.write_str(&parts.concat())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ByteSize::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An absolute http(s) URL, kept as written.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Url {
    raw: String,
    scheme_len: usize,
    /// Byte range of the `user:password@` part, if any.
    userinfo: Option<(usize, usize)>,
}

impl Url {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid URL {s:?}: {why}");
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        let scheme_lower = scheme.to_ascii_lowercase();
        if scheme_lower != "http" && scheme_lower != "https" {
            return Err(bad("scheme must be http or https"));
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (
                Some((scheme.len() + 3, scheme.len() + 3 + at)),
                &authority[at + 1..],
            ),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| bad("unclosed IPv6 address"))?;
            (&v6[..end], v6[end + 1..].strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("invalid character in host"));
        }
        if let Some(p) = port {
            if !p.is_empty() && (p.parse::<u16>().is_err()) {
                return Err(bad("invalid port"));
            }
        }
        if s.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("invalid character"));
        }
        Ok(Url {
            raw: s.to_string(),
            scheme_len: scheme.len(),
            userinfo,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn scheme(&self) -> &str {
        &self.raw[..self.scheme_len]
    }

    /// The URL with any password replaced by `xxxxx` (Go's `URL.Redacted`).
    pub fn redacted(&self) -> String {
        match self.userinfo {
            Some((start, end)) => {
                let info = &self.raw[start..end];
                match info.split_once(':') {
                    Some((user, _)) => {
                        format!("{}{}:xxxxx{}", &self.raw[..start], user, &self.raw[end..])
                    }
                    None => self.raw.clone(),
                }
            }
            None => self.raw.clone(),
        }
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Url({})", self.redacted())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Url::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_parse() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("100ms", 100),
            ("90s", 90 * SEC),
            ("1h30m", 90 * MIN),
            ("1d", DAY),
            ("1w", WEEK),
            ("1y", YEAR),
            (
                "1y2w3d4h5m6s7ms",
                YEAR + 2 * WEEK + 3 * DAY + 4 * HOUR + 5 * MIN + 6 * SEC + 7,
            ),
        ];
        for (s, ms) in cases {
            assert_eq!(Duration::parse(s), Ok(Duration(ms)), "{s}");
        }
        for bad in [
            "", "1", "15", "1.5s", "-1s", "1m1h", "1s1s", "1x", "s", "1h 30m", "1ms1s",
        ] {
            assert_eq!(
                Duration::parse(bad),
                Err(DurationError::Invalid(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(Duration::parse("300000y"), Err(DurationError::OutOfRange));
    }

    #[test]
    fn durations_format_like_prometheus() {
        for (ms, s) in [
            (0, "0s"),
            (90 * SEC, "1m30s"),
            (100, "100ms"),
            (MIN, "1m"),
            (90 * DAY, "90d"),
            (2 * WEEK, "2w"),
            (YEAR, "1y"),
            (YEAR + DAY, "366d"),
            (HOUR + 1, "1h1ms"),
        ] {
            assert_eq!(Duration(ms).to_string(), s);
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("10MB"), Ok(ByteSize(10 << 20)));
        assert_eq!(ByteSize::parse("10MiB"), Ok(ByteSize(10 << 20)));
        assert_eq!(ByteSize::parse("1.5KB"), Ok(ByteSize(1536)));
        assert_eq!(
            ByteSize::parse("1GB512MB"),
            Ok(ByteSize((1 << 30) + (512 << 20)))
        );
        assert_eq!(ByteSize::parse("0"), Ok(ByteSize(0)));
        assert_eq!(ByteSize::parse("100B"), Ok(ByteSize(100)));
        assert!(ByteSize::parse("1024").is_err());
        assert!(ByteSize::parse("10kB").is_err());
        assert!(ByteSize::parse("").is_err());
        assert_eq!(ByteSize(10 << 20).to_string(), "10MiB");
        assert_eq!(ByteSize(1536).to_string(), "1KiB512B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }

    #[test]
    fn urls() {
        let u = Url::parse("https://user:pw@example.com:9090/api/v1/write?x=1").unwrap();
        assert_eq!(u.scheme(), "https");
        assert_eq!(
            u.redacted(),
            "https://user:xxxxx@example.com:9090/api/v1/write?x=1"
        );
        assert!(Url::parse("http://[::1]:9090/x").is_ok());
        for bad in [
            "example.com",
            "ftp://x",
            "http://",
            "http://h:99999/",
            "http://a b/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_do_not_leak() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        assert_eq!(serde_yaml_ng::to_string(&s).unwrap().trim(), "<secret>");
        assert_eq!(s.expose(), "hunter2");
    }

    proptest! {
        #[test]
        fn duration_format_round_trips(ms in 0u64..(20 * YEAR)) {
            let d = Duration(ms);
            prop_assert_eq!(Duration::parse(&d.to_string()), Ok(d));
        }

        #[test]
        fn duration_parse_never_panics(s in "[0-9ywdhms]{0,12}") {
            let _ = Duration::parse(&s);
        }
    }
}
