//! Go's floating-point behaviour, where it differs from Rust's.
//!
//! PromQL answers are defined by Prometheus, which is written in Go: `math.Max`
//! propagates NaN (Rust's `f64::max` drops it), `int64(NaN)` is
//! `math.MinInt64` on amd64, `strconv.FormatFloat` spells infinities `+Inf`.
//! Everything here is a pure function of its inputs.

/// Go's `math.Max`: +Inf wins, then NaN, and +0 beats -0.
pub fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        if x.is_sign_negative() {
            return y;
        }
        return x;
    }
    if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf wins, then NaN, and -0 beats +0.
pub fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        if x.is_sign_negative() {
            return x;
        }
        return y;
    }
    if x < y {
        x
    } else {
        y
    }
}

/// Go's `int64(f)` conversion as compiled for amd64: NaN and out-of-range
/// values become `math.MinInt64`.
pub fn go_f64_to_i64(f: f64) -> i64 {
    // 2^63 is exactly representable; every finite f in [-2^63, 2^63) fits.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-TWO_63..TWO_63).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// Neumaier-compensated summation step, as Prometheus's `kahanSumInc`.
#[inline]
pub fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, no
/// exponent.
pub fn format_float_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// Go's `%v` for a float64 (`strconv.FormatFloat(f, 'g', -1, 64)` with the
/// exponent threshold of 21), e.g. `1e+21`, `1.5`, `NaN`, `+Inf`.
pub fn format_float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Shortest digits and decimal exponent via Rust's `{:e}`.
    let e = format!("{f:e}");
    let (mant, exp) = match e.split_once('e') {
        Some(p) => p,
        None => return e,
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        let abs = exp.unsigned_abs();
        if abs < 10 {
            format!("{mant}e{sign}0{abs}")
        } else {
            format!("{mant}e{sign}{abs}")
        }
    } else {
        format!("{f}")
    }
}

/// Parses a float the way Go's `strconv.ParseFloat(s, 64)` does for the
/// inputs PromQL meets (decimal, exponent, Inf/NaN spellings, hex).
pub fn go_parse_float(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = rest.to_ascii_lowercase();
    let hex = lower.strip_prefix("0x")?;
    let (mant, exp) = match hex.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (hex, 0),
    };
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int_part.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

/// Natural-order "less than" of `github.com/facette/natsort`, which
/// `sort_by_label` uses: digit runs compare as integers.
pub fn natural_less(a: &str, b: &str) -> bool {
    let ca = chunks(a);
    let cb = chunks(b);
    for (i, x) in ca.iter().enumerate() {
        let Some(y) = cb.get(i) else {
            return false;
        };
        let last_a = i == ca.len() - 1;
        let last_b = i == cb.len() - 1;
        match (parse_go_atoi(x), parse_go_atoi(y)) {
            (Some(xi), Some(yi)) => {
                if xi == yi {
                    if last_a {
                        return true;
                    } else if last_b {
                        return false;
                    }
                    continue;
                }
                return xi < yi;
            }
            _ => {
                if x == y {
                    if last_a {
                        return true;
                    } else if last_b {
                        return false;
                    }
                    continue;
                }
                return x < y;
            }
        }
    }
    false
}

fn parse_go_atoi(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits into maximal runs of ASCII digits and of non-digits.
fn chunks(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_digit: Option<bool> = None;
    for (i, c) in s.char_indices() {
        let d = c.is_ascii_digit();
        if let Some(p) = prev_digit {
            if p != d {
                out.push(&s[start..i]);
                start = i;
            }
        }
        prev_digit = Some(d);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Civil date parts of a Unix time in UTC, as Go's `time.Unix(sec, 0).UTC()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    /// 0 = Sunday.
    pub weekday: u32,
    /// 1-based day of the year.
    pub yday: u32,
}

pub fn civil_from_unix(sec: i64) -> CivilTime {
    let days = sec.div_euclid(86_400);
    let secs_of_day = sec.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday.
    let yday = (days - days_from_civil(year, 1, 1)) as u32 + 1;
    CivilTime {
        year,
        month,
        day,
        hour: (secs_of_day / 3600) as u32,
        minute: ((secs_of_day % 3600) / 60) as u32,
        weekday,
        yday,
    }
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

// Howard Hinnant's days-from-civil algorithms, in i128-free i64 arithmetic
// (inputs are bounded by what an i64 of seconds can express).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_min_follow_go() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(-0.0, 0.0).is_sign_negative());
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(go_min(3.0, 2.0), 2.0);
    }

    #[test]
    fn kahan_recovers_small_terms() {
        let mut s = (0.0, 0.0);
        for v in [1.0, 1e100, 1.0, -1e100] {
            s = kahan_sum_inc(v, s.0, s.1);
        }
        assert_eq!(s.0 + s.1, 2.0);
    }

    #[test]
    fn float_formats() {
        assert_eq!(format_float_f(1e20), "100000000000000000000");
        assert_eq!(format_float_f(f64::INFINITY), "+Inf");
        assert_eq!(format_float_f(0.1), "0.1");
        assert_eq!(format_float_v(1e21), "1e+21");
        assert_eq!(format_float_v(1.5e-5), "1.5e-05");
        assert_eq!(format_float_v(123.0), "123");
        assert_eq!(format_float_v(f64::NAN), "NaN");
    }

    #[test]
    fn parse_float_like_go() {
        assert_eq!(go_parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(go_parse_float("0.25"), Some(0.25));
        assert_eq!(go_parse_float("0x1p-2"), Some(0.25));
        assert_eq!(go_parse_float("abc"), None);
    }

    #[test]
    fn natural_order() {
        assert!(natural_less("4m5", "4m600"));
        assert!(natural_less("4m600", "4m1000"));
        assert!(natural_less("1.2.3", "1.11.3"));
        assert!(natural_less("2", "10"));
        assert!(!natural_less("10", "2"));
    }

    #[test]
    fn civil_dates() {
        let t = civil_from_unix(1_136_239_445); // 2006-01-02T22:04:05Z, a Monday
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute),
            (2006, 1, 2, 22, 4)
        );
        assert_eq!(t.weekday, 1);
        assert_eq!(t.yday, 2);
        assert_eq!(civil_from_unix(1_483_191_420).yday, 366);
        assert_eq!(civil_from_unix(0).weekday, 4);
        let t = civil_from_unix(-1);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute),
            (1969, 12, 31, 23, 59)
        );
        assert_eq!(days_in_month(2016, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
    }
}
