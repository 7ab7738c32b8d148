//! Number parsing with Go's `strconv` acceptance rules and error wording, so
//! a body Prometheus rejects is rejected here too (and vice versa).

use super::lexer::quote;

/// Parses a sample value or OpenMetrics timestamp like Prometheus's
/// `parseFloat`: Go syntax minus hex floats and underscores.
pub(crate) fn parse_float(s: &[u8]) -> Result<f64, String> {
    if let Some(v) = fast_decimal(s) {
        return Ok(v);
    }
    if s.iter().any(|&c| matches!(c, b'p' | b'P' | b'_')) {
        return Err("unsupported character in float".to_string());
    }
    let syntax = || format!("strconv.ParseFloat: parsing {}: invalid syntax", quote(s));
    let text = std::str::from_utf8(s).map_err(|_| syntax())?;
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let special = unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity");
    // Go accepts a sign on infinities but not on NaN; Rust accepts both.
    if unsigned.len() != text.len() && unsigned.eq_ignore_ascii_case("nan") {
        return Err(syntax());
    }
    if !special
        && !unsigned.eq_ignore_ascii_case("nan")
        && !unsigned
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(syntax());
    }
    let v: f64 = text.parse().map_err(|_| syntax())?;
    if v.is_infinite() && !special {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            quote(s)
        ));
    }
    Ok(v)
}

/// Exact fast path for the common shapes (`123`, `-0.25`, `1.5e+06` with few
/// digits): mantissa below 2^53 and a power of ten that is itself exact, so
/// one multiply or divide rounds correctly (Clinger's fast path).
#[inline]
fn fast_decimal(s: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let mut i = 0;
    let neg = match s.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut mant: u64 = 0;
    let mut digits = 0usize;
    while i < s.len() && s[i].is_ascii_digit() {
        mant = mant.wrapping_mul(10).wrapping_add((s[i] - b'0') as u64);
        digits += 1;
        i += 1;
    }
    let mut frac = 0i32;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            mant = mant.wrapping_mul(10).wrapping_add((s[i] - b'0') as u64);
            digits += 1;
            frac += 1;
            i += 1;
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    let mut exp: i32 = 0;
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        i += 1;
        let eneg = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() && i - start < 4 {
            exp = exp * 10 + (s[i] - b'0') as i32;
            i += 1;
        }
        if i == start {
            return None;
        }
        if eneg {
            exp = -exp;
        }
    }
    if i != s.len() {
        return None;
    }
    let e = exp - frac;
    let m = mant as f64;
    let v = if e == 0 {
        m
    } else if (1..=22).contains(&e) {
        m * POW10[e as usize]
    } else if (-22..0).contains(&e) {
        m / POW10[(-e) as usize]
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// Parses a text-format timestamp (ASCII digits, already checked) like Go's
/// `strconv.ParseInt(s, 10, 64)`.
pub(crate) fn parse_int(s: &[u8]) -> Result<i64, String> {
    let mut v: i64 = 0;
    for &c in s {
        let d = (c.wrapping_sub(b'0')) as i64;
        if !(0..=9).contains(&d) {
            return Err(format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                quote(s)
            ));
        }
        v = match v.checked_mul(10).and_then(|v| v.checked_add(d)) {
            Some(v) => v,
            None => {
                return Err(format!(
                    "strconv.ParseInt: parsing {}: value out of range",
                    quote(s)
                ))
            }
        };
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_syntax() {
        for (s, v) in [
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+2", 2.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1.5E-3", 0.0015),
            ("1.7976931348623157e308", f64::MAX),
            ("4.9e-324", 5e-324),
            ("1e-400", 0.0),
            ("0.1", 0.1),
            ("123456789012345678901234567890", 1.2345678901234568e29),
        ] {
            assert_eq!(parse_float(s.as_bytes()), Ok(v), "{s}");
        }
        for s in ["+Inf", "-inf", "Inf", "infinity", "+Infinity"] {
            assert!(parse_float(s.as_bytes()).unwrap().is_infinite(), "{s}");
        }
        assert!(parse_float(b"NaN").unwrap().is_nan());
        assert!(parse_float(b"nan").unwrap().is_nan());
    }

    #[test]
    fn rejects_what_go_rejects() {
        for s in [
            "", "+", ".", "1e", "e5", "0x10", "1_000", "0x1p-2", "+NaN", "-nan", "infin", "1.2.3",
            "--1", " 1", "1 ", "abc",
        ] {
            assert!(parse_float(s.as_bytes()).is_err(), "{s:?} accepted");
        }
        assert_eq!(
            parse_float(b"1e400").unwrap_err(),
            r#"strconv.ParseFloat: parsing "1e400": value out of range"#
        );
        assert_eq!(
            parse_float(b"x").unwrap_err(),
            r#"strconv.ParseFloat: parsing "x": invalid syntax"#
        );
        assert_eq!(
            parse_float(b"1_0").unwrap_err(),
            "unsupported character in float"
        );
    }

    #[test]
    fn fast_path_agrees_with_std() {
        for s in [
            "0",
            "-0",
            "1.25",
            "123456789012345",
            "0.000001",
            "1.5e+06",
            "9.99e-20",
            "42e22",
            "3.14159",
            "-7e-22",
        ] {
            let want: f64 = s.parse().unwrap();
            assert_eq!(
                fast_decimal(s.as_bytes()).unwrap().to_bits(),
                want.to_bits(),
                "{s}"
            );
        }
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int(b"1520879607789"), Ok(1520879607789));
        assert!(parse_int(b"99999999999999999999").is_err());
    }
}
