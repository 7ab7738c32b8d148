//! Literal values with Go's exact rules: number and string parsing, Go
//! string quoting, Go float printing, and Prometheus durations.
//!
//! Prometheus prints and parses these through Go's `strconv`/`fmt` and
//! `model.ParseDuration`; queries, errors and `format_query` output must
//! match byte for byte, so the rules live here in one place.

use vigil_model::gofmt::quote;

/// Go's `fmt.Sprintf("%f", v)` (used in the `@` bounds error).
pub(crate) fn go_float_f6(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v:.6}")
    }
}

/// Parses a number token as Prometheus does: `strconv.ParseInt(s, 0, 64)`
/// (so `0x1f` is hex and `0755` octal), falling back to
/// `strconv.ParseFloat`. The error is Go's message.
pub(crate) fn parse_number(s: &str) -> Result<f64, String> {
    if let Some(i) = go_parse_int_base0(s) {
        return Ok(i as f64);
    }
    let lower = s.to_ascii_lowercase();
    let special = matches!(
        lower.trim_start_matches(['+', '-']),
        "inf" | "infinity" | "nan"
    );
    let syntax_ok = special
        || (!lower.starts_with("0x")
            && s.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')));
    match s.parse::<f64>() {
        Ok(v) if syntax_ok => {
            if v.is_infinite() && !special {
                Err(format!(
                    "strconv.ParseFloat: parsing {}: value out of range",
                    quote(s)
                ))
            } else {
                Ok(v)
            }
        }
        _ => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            quote(s)
        )),
    }
}

/// `strconv.ParseInt(s, 0, 64)` for the unsigned forms the lexer produces.
fn go_parse_int_base0(s: &str) -> Option<i64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(digits, radix).ok()
}

/// Unquotes a string token (Prometheus's `strutil.Unquote`). The lexer has
/// validated the escapes. Byte escapes that do not form valid UTF-8 are
/// replaced with U+FFFD (Go would keep the raw bytes).
pub(crate) fn unquote(tok: &str) -> String {
    let Some(quote) = tok.chars().next() else {
        return String::new();
    };
    let inner = tok.get(1..tok.len().saturating_sub(1)).unwrap_or("");
    if quote == '`' || !inner.contains('\\') {
        return inner.to_string();
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    let push_char =
        |out: &mut Vec<u8>, c: char| out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_char(&mut out, c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        let mut take_digits = |n: usize, radix: u32, first: Option<char>| -> u32 {
            let mut v = 0u32;
            let mut count = 0;
            if let Some(f) = first {
                v = f.to_digit(radix).unwrap_or(0);
                count = 1;
            }
            while count < n {
                match chars.next().and_then(|d| d.to_digit(radix)) {
                    Some(d) => v = v.wrapping_mul(radix).wrapping_add(d),
                    None => break,
                }
                count += 1;
            }
            v
        };
        match e {
            'a' => out.push(0x07),
            'b' => out.push(0x08),
            'f' => out.push(0x0c),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(0x0b),
            '0'..='7' => out.push(take_digits(3, 8, Some(e)) as u8),
            'x' => out.push(take_digits(2, 16, None) as u8),
            'u' => push_char(
                &mut out,
                char::from_u32(take_digits(4, 16, None)).unwrap_or('\u{FFFD}'),
            ),
            'U' => push_char(
                &mut out,
                char::from_u32(take_digits(8, 16, None)).unwrap_or('\u{FFFD}'),
            ),
            other => push_char(&mut out, other),
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

const MS_PER_SECOND: u64 = 1000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: u64 = 365 * MS_PER_DAY;

/// Error from [`parse_duration`], with Prometheus's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(pub String);

/// Parses a Prometheus duration (`model.ParseDuration`): `1y2w3d4h5m6s7ms`
/// with units in that order, each at most once, or a bare `0`. Returns
/// milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, DurationError> {
    match s {
        "0" => return Ok(0),
        "" => return Err(DurationError("empty duration string".into())),
        _ => {}
    }
    let invalid = || DurationError(format!("not a valid duration string: {}", quote(s)));
    // Multipliers in nanoseconds, as Go's range check is in nanoseconds.
    const UNITS: &[(&str, u64, u32)] = &[
        ("y", MS_PER_YEAR * 1_000_000, 1),
        ("w", MS_PER_WEEK * 1_000_000, 2),
        ("d", MS_PER_DAY * 1_000_000, 3),
        ("h", MS_PER_HOUR * 1_000_000, 4),
        ("m", MS_PER_MINUTE * 1_000_000, 5),
        ("s", MS_PER_SECOND * 1_000_000, 6),
        ("ms", 1_000_000, 7),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_pos = 0;
    while !rest.is_empty() {
        let ndigits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if ndigits == 0 {
            return Err(invalid());
        }
        let v: u64 = rest[..ndigits].parse().map_err(|_| invalid())?;
        rest = &rest[ndigits..];
        let nunit = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if nunit == 0 {
            return Err(invalid());
        }
        let unit = &rest[..nunit];
        rest = &rest[nunit..];
        let Some(&(_, mult, pos)) = UNITS.iter().find(|(u, _, _)| *u == unit) else {
            return Err(DurationError(format!(
                "unknown unit {} in duration {}",
                quote(unit),
                quote(s)
            )));
        };
        if pos <= last_pos {
            return Err(invalid());
        }
        last_pos = pos;
        let out_of_range = || DurationError("duration out of range".into());
        if v > (1u64 << 63) / mult {
            return Err(out_of_range());
        }
        total = total.checked_add(v * mult).ok_or_else(out_of_range)?;
        if total > i64::MAX as u64 {
            return Err(out_of_range());
        }
    }
    Ok((total / 1_000_000) as i64)
}

/// Formats milliseconds as Prometheus's `model.Duration.String()`: years and
/// weeks only when exact, then `d`, `h`, `m`, `s`, `ms`; `0s` for zero.
/// Negative durations print as the empty string, as in Prometheus.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let Ok(mut rem) = u64::try_from(ms) else {
        return out;
    };
    for (unit, mult, exact) in [
        ("y", MS_PER_YEAR, true),
        ("w", MS_PER_WEEK, true),
        ("d", MS_PER_DAY, false),
        ("h", MS_PER_HOUR, false),
        ("m", MS_PER_MINUTE, false),
        ("s", MS_PER_SECOND, false),
        ("ms", 1, false),
    ] {
        if exact && rem % mult != 0 {
            continue;
        }
        let v = rem / mult;
        if v > 0 {
            out.push_str(&v.to_string());
            out.push_str(unit);
            rem -= v * mult;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_go() {
        assert_eq!(parse_number("0x1F"), Ok(31.0));
        assert_eq!(parse_number("0755"), Ok(493.0));
        assert_eq!(parse_number("08"), Ok(8.0));
        assert_eq!(parse_number("5."), Ok(5.0));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert_eq!(parse_number("5e-3"), Ok(0.005));
        assert_eq!(parse_number("Inf"), Ok(f64::INFINITY));
        assert!(parse_number("NaN").is_ok_and(f64::is_nan));
        assert_eq!(
            parse_number("1e"),
            Err("strconv.ParseFloat: parsing \"1e\": invalid syntax".into())
        );
        assert_eq!(
            parse_number("1e400"),
            Err("strconv.ParseFloat: parsing \"1e400\": value out of range".into())
        );
        assert_eq!(
            parse_number("0x1.8"),
            Err("strconv.ParseFloat: parsing \"0x1.8\": invalid syntax".into())
        );
        assert_eq!(
            parse_number("9223372036854775808"),
            Ok(9223372036854775808.0)
        );
    }

    #[test]
    fn unquote_handles_go_escapes() {
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(unquote(r"'a\'b'"), "a'b");
        assert_eq!(unquote(r"`a\nb`"), r"a\nb");
        assert_eq!(
            unquote(r#""\a\b\f\n\r\t\v\\""#),
            "\u{7}\u{8}\u{c}\n\r\t\u{b}\\"
        );
        assert_eq!(unquote(r#""\u70ac \U0001F600 \x41\101""#), "炬 😀 AA");
        assert_eq!(unquote(r#""\xe2\x98\xba""#), "☺");
        assert_eq!(unquote(r#""\xff""#), "\u{FFFD}");
    }

    #[test]
    fn durations_parse_like_model_parse_duration() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1m30ms"), Ok(60_030));
        assert_eq!(parse_duration("1y"), Ok(365 * 86_400_000));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400_000));
        assert_eq!(
            parse_duration("5m1h").unwrap_err().to_string(),
            "not a valid duration string: \"5m1h\""
        );
        assert_eq!(
            parse_duration("5y1hs").unwrap_err().to_string(),
            "unknown unit \"hs\" in duration \"5y1hs\""
        );
        assert_eq!(
            parse_duration("").unwrap_err().to_string(),
            "empty duration string"
        );
        assert_eq!(
            parse_duration("1.5h").unwrap_err().to_string(),
            "unknown unit \".\" in duration \"1.5h\""
        );
        assert_eq!(
            parse_duration("300y").unwrap_err().to_string(),
            "duration out of range"
        );
        assert_eq!(parse_duration("292y").map(|_| ()), Ok(()));
    }

    #[test]
    fn durations_format_like_model_duration() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(300_000), "5m");
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(90 * 86_400_000), "90d");
        assert_eq!(format_duration(14 * 86_400_000), "2w");
        assert_eq!(format_duration(365 * 86_400_000), "1y");
        assert_eq!(format_duration(60_030), "1m30ms");
        assert_eq!(format_duration(1), "1ms");
    }
}
