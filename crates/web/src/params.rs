//! Request parameters: form values merged from the URL and a urlencoded
//! body, and Prometheus's parsers for times, durations and limits.
//!
//! Error texts are Prometheus's, since clients (and users) see them verbatim.

use crate::json::format_rfc3339_parts;
use vigil_model::gofmt::{days_in_month, unix_days_from_date};

/// Form values of one request, body values first (Go's `r.Form` order, so
/// `FormValue` prefers the body like Prometheus does).
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses the query string and, when present, a urlencoded body.
    pub fn new(query: Option<&str>, body: Option<&[u8]>) -> Self {
        let mut pairs = Vec::new();
        if let Some(b) = body {
            pairs.extend(form_urlencoded::parse(b).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        if let Some(q) = query {
            pairs.extend(
                form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        }
        Params { pairs }
    }

    /// Only the URL's query string (for parameters Prometheus reads with
    /// `r.URL.Query()`).
    pub fn from_query(query: Option<&str>) -> Self {
        Params::new(query, None)
    }

    /// The first value of `name`, or "" (Go's `FormValue`).
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `name`, body values first.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `MinTime` of Prometheus's API in milliseconds: the default start of
/// optional ranges (a value chosen so that it still formats as RFC 3339).
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// `MaxTime` of Prometheus's API in milliseconds.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// The RFC 3339 spelling of `MIN_TIME_MS`, which Prometheus's Go client
/// sends and which has a year outside 0000-9999.
pub fn min_time_formatted() -> String {
    format_rfc3339_parts(MIN_TIME_MS / 1000, 0)
}

/// The RFC 3339 spelling of `MAX_TIME_MS`.
pub fn max_time_formatted() -> String {
    format_rfc3339_parts(MAX_TIME_MS.div_euclid(1000), 999_999_999)
}

/// Parses a timestamp: Unix seconds with an optional fraction (rounded to
/// milliseconds) or RFC 3339. Returns milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Some(t) = parse_go_float(s) {
        if t.is_finite() && t.abs() < 9.2e15 {
            let int = t.trunc();
            let frac = ((t - int) * 1000.0).round();
            return Ok(int as i64 * 1000 + frac as i64);
        }
        return Err(format!(
            "cannot parse {} to a valid timestamp",
            vigil_model::gofmt::quote(s)
        ));
    }
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    if s == min_time_formatted() {
        return Ok(MIN_TIME_MS);
    }
    if s == max_time_formatted() {
        return Ok(MAX_TIME_MS);
    }
    Err(format!(
        "cannot parse {} to a valid timestamp",
        vigil_model::gofmt::quote(s)
    ))
}

/// `parseTimeParam`: the default when empty, otherwise `parse_time` with
/// Prometheus's wrapping message.
pub fn parse_time_param(params: &Params, name: &str, default: i64) -> Result<i64, String> {
    let v = params.get(name);
    if v.is_empty() {
        return Ok(default);
    }
    parse_time(v).map_err(|e| format!("invalid time value for '{}': {}", name, e))
}

/// Parses a duration given as float seconds or as a Prometheus duration
/// (`1h30m`, `1m0s`, `500ms`). Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Some(d) = parse_go_float(s) {
        let ns = d * 1e9;
        if ns.is_nan() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {} to a valid duration. It overflows int64",
                vigil_model::gofmt::quote(s)
            ));
        }
        return Ok(ns as i64);
    }
    match parse_prometheus_duration(s) {
        Some(ms) => ms.checked_mul(1_000_000).ok_or_else(|| {
            format!(
                "cannot parse {} to a valid duration",
                vigil_model::gofmt::quote(s)
            )
        }),
        None => Err(format!(
            "cannot parse {} to a valid duration",
            vigil_model::gofmt::quote(s)
        )),
    }
}

/// Prometheus's duration syntax (`model.ParseDuration`): units y, w, d, h,
/// m, s, ms, each at most once and in that order; "0" alone is zero.
/// Returns milliseconds.
pub fn parse_prometheus_duration(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(0);
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: i64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let pos = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        next_unit = pos + 1;
        total = total.checked_add(n.checked_mul(UNITS[pos].1)?)?;
    }
    Some(total)
}

/// `parseLimitParam`: empty is 0 (no limit); negative is an error.
pub fn parse_limit(s: &str) -> Result<usize, String> {
    if s.is_empty() {
        return Ok(0);
    }
    let n: i64 = s.parse().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            vigil_model::gofmt::quote(s)
        )
    })?;
    if n < 0 {
        return Err("limit must be non-negative".to_string());
    }
    Ok(n as usize)
}

/// Go's `strconv.ParseFloat(s, 64)` acceptance, close enough for API
/// parameters: decimal and exponent forms, `Inf`/`NaN` spellings, and
/// underscores rejected.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = t.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.to_ascii_lowercase().parse().ok();
    }
    if !t
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

/// RFC 3339 with optional fractional seconds (Go's `time.RFC3339Nano`
/// layout used for parsing). Returns milliseconds (sub-ms digits dropped).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = num(0..4)?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let min = num(14..16)?;
    let sec = num(17..19)?;
    if !(1..=12).contains(&month) || day < 1 || day > i64::from(days_in_month(year, month as u32)) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b[i] == b'.' {
        i += 1;
        let fs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == fs {
            return None;
        }
        let digits = &s[fs..i];
        let mut ms = String::from(&digits[..digits.len().min(3)]);
        while ms.len() < 3 {
            ms.push('0');
        }
        millis = ms.parse().ok()?;
    }
    let offset_secs = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *c == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = unix_days_from_date(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(secs * 1000 + millis)
}

/// Formats nanoseconds the way Go's `time.Duration.String` does (`1m0s`,
/// `1.5s`, `500ms`), used in messages and the CLI.
pub fn go_duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: pick the largest unit that keeps a leading digit.
        let (unit, div) = if u < 1_000 {
            ("ns", 1u64)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac_string(u, div));
        out.push_str(unit);
    } else {
        let total_secs = u / 1_000_000_000;
        let h = total_secs / 3600;
        let m = total_secs / 60 % 60;
        let s_ns = u % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{}h", h));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{}m", m));
        }
        out.push_str(&frac_string(s_ns, 1_000_000_000));
        out.push('s');
    }
    if neg {
        format!("-{}", out)
    } else {
        out
    }
}

fn frac_string(v: u64, div: u64) -> String {
    let int = v / div;
    let frac = v % div;
    if frac == 0 {
        return int.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{:0width$}", frac, width = width);
    format!("{}.{}", int, f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_seconds_and_rfc3339() {
        assert_eq!(parse_time("4"), Ok(4000));
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1.0006"), Ok(1001));
        // As in Go, 1.0005 is 1.000499999... in binary and rounds down.
        assert_eq!(parse_time("1.0005"), Ok(1000));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("1e3"), Ok(1_000_000));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51+02:00"),
            Ok(1_435_781_451_000)
        );
        assert_eq!(
            parse_time("2015-07-01T20:10:51.123456789Z"),
            Ok(1_435_781_451_123)
        );
        assert!(parse_time("").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2015-02-29T00:00:00Z").is_err());
        assert!(parse_time("NaN").is_err());
        assert_eq!(
            parse_time("abc").unwrap_err(),
            "cannot parse \"abc\" to a valid timestamp"
        );
        // Go's %q, not Rust's Debug: `\x01` and `\u00a0`, not `\u{1}`.
        assert_eq!(
            parse_time("\u{1}\u{a0}").unwrap_err(),
            r#"cannot parse "\x01\u00a0" to a valid timestamp"#
        );
        assert!(parse_time("2016-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn min_max_sentinels_round_trip() {
        assert_eq!(min_time_formatted(), "-292273086-05-16T16:47:06Z");
        assert_eq!(max_time_formatted(), "292277025-08-18T07:12:54.999999999Z");
        assert_eq!(parse_time(&min_time_formatted()), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(&max_time_formatted()), Ok(MAX_TIME_MS));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20"), Ok(20_000_000_000));
        assert_eq!(parse_duration("0.5"), Ok(500_000_000));
        assert_eq!(parse_duration("1m0s"), Ok(60_000_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1s1m").is_err());
        assert!(parse_duration("1m1m").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("1e30")
            .unwrap_err()
            .contains("overflows int64"));
        assert_eq!(
            parse_duration("abc").unwrap_err(),
            "cannot parse \"abc\" to a valid duration"
        );
    }

    #[test]
    fn params_merge_body_first() {
        let p = Params::new(
            Some("query=url&match[]=a"),
            Some(b"query=body&match%5B%5D=b"),
        );
        assert_eq!(p.get("query"), "body");
        assert_eq!(p.all("match[]"), vec!["b", "a"]);
        assert_eq!(p.get("missing"), "");
        let p = Params::new(Some("query=1%2B1&time=4"), None);
        assert_eq!(p.get("query"), "1+1");
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(""), Ok(0));
        assert_eq!(parse_limit("40000"), Ok(40000));
        assert!(parse_limit("-1").is_err());
        assert!(parse_limit("x").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_string(60_000_000_000), "1m0s");
        assert_eq!(go_duration_string(1_500_000_000), "1.5s");
        assert_eq!(go_duration_string(500_000_000), "500ms");
        assert_eq!(go_duration_string(3_723_000_000_000), "1h2m3s");
        assert_eq!(go_duration_string(0), "0s");
    }
}
