//! Go time formatting needed by templates and the notifier: `time.Time`'s
//! `String()` in UTC and RFC 3339 with milliseconds.
#![allow(dead_code)] // RFC 3339 helpers are used by the notifier.

/// (year, month, day) of days since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
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

fn parts(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil(days);
    (y, mo, d, sod / 3600, (sod / 60) % 60, sod % 60, milli)
}

/// `time.Time.String()` of a UTC time: `2015-06-23 13:19:44.128 +0000 UTC`
/// (fraction without trailing zeros, omitted when zero).
pub fn go_time_string(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = parts(ms);
    let mut frac = String::new();
    if milli != 0 {
        frac = format!(".{milli:03}");
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{frac} +0000 UTC")
}

/// RFC 3339 with millisecond precision, as Alertmanager's API types print
/// times (`2006-01-02T15:04:05.000Z`).
pub fn rfc3339_millis(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = parts(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses RFC 3339 (`2006-01-02T15:04:05[.frac](Z|±hh:mm)`) to milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut milli = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let padded: String = frac.chars().chain("000".chars()).take(3).collect();
        milli = padded.parse().ok()?;
    }
    let off = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (tz[1..3].parse::<i64>().ok()? * 3600 + tz[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (inverse of `civil`).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - off) * 1000) + milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(1_435_065_584_128),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(go_time_string(1_500), "1970-01-01 00:00:01.5 +0000 UTC");
        assert_eq!(go_time_string(-1), "1969-12-31 23:59:59.999 +0000 UTC");
        assert_eq!(
            rfc3339_millis(1_435_065_584_128),
            "2015-06-23T13:19:44.128Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn parse_round_trips() {
        for ms in [0, 1_435_065_584_128, 951_782_400_000, 4_102_444_800_001] {
            assert_eq!(parse_rfc3339(&rfc3339_millis(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2015-06-23T15:19:44.128+02:00"),
            Some(1_435_065_584_128)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
