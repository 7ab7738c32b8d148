//! The two duration layouts Prometheus prints: Go's `time.Duration.String()`
//! (`1h2m3.5s`, `1m0s`, `1.5ms`: evaluation times and block spans in
//! promtool, API messages) and Prometheus's `model.Duration.String()` (`1d`,
//! `5m`, `1h30m`: PromQL ranges and offsets, the configuration).

use std::fmt;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A span displayed as Go's `time.Duration.String()` prints it. Writing it
/// allocates nothing. Spans longer than Go's ±292 years (possible only from
/// milliseconds) keep the same layout with more hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoDuration {
    neg: bool,
    nanos: u128,
}

impl GoDuration {
    /// A Go `time.Duration` (nanoseconds).
    pub fn from_nanos(ns: i64) -> Self {
        GoDuration {
            neg: ns < 0,
            nanos: u128::from(ns.unsigned_abs()),
        }
    }

    /// A span of milliseconds, as Prometheus's timestamps count them.
    pub fn from_millis(ms: i64) -> Self {
        GoDuration {
            neg: ms < 0,
            nanos: u128::from(ms.unsigned_abs()) * 1_000_000,
        }
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = self.nanos;
        if u == 0 {
            return f.write_str("0s");
        }
        if self.neg {
            f.write_str("-")?;
        }
        if u < NANOS_PER_SEC {
            // Below a second: the largest unit that keeps a leading digit.
            let (div, unit) = if u < 1_000 {
                (1, "ns")
            } else if u < 1_000_000 {
                (1_000, "µs")
            } else {
                (1_000_000, "ms")
            };
            write_frac(f, u, div)?;
            return f.write_str(unit);
        }
        let secs = u / NANOS_PER_SEC;
        let (h, m) = (secs / 3600, secs / 60 % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if h > 0 || m > 0 {
            write!(f, "{m}m")?;
        }
        write_frac(f, u % (60 * NANOS_PER_SEC), NANOS_PER_SEC)?;
        f.write_str("s")
    }
}

/// Prometheus's `model.Duration.String()` of a span of milliseconds: units
/// `y`, `w`, `d`, `h`, `m`, `s`, `ms` from the largest, years and weeks
/// only when they divide the rest exactly; `0s` for zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelDuration(pub u64);

impl fmt::Display for ModelDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DAY: u64 = 24 * 3_600_000;
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, mult, exact) in [
            ("y", 365 * DAY, true),
            ("w", 7 * DAY, true),
            ("d", DAY, false),
            ("h", 3_600_000, false),
            ("m", 60_000, false),
            ("s", 1000, false),
            ("ms", 1, false),
        ] {
            if exact && !ms.is_multiple_of(mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

/// `v / div`, then the remainder as decimals without trailing zeros.
fn write_frac(f: &mut fmt::Formatter<'_>, v: u128, div: u128) -> fmt::Result {
    write!(f, "{}", v / div)?;
    let mut frac = v % div;
    if frac == 0 {
        return Ok(());
    }
    let mut width = div.ilog10() as usize;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    write!(f, ".{frac:0width$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: i64) -> String {
        GoDuration::from_millis(v).to_string()
    }

    fn ns(v: i64) -> String {
        GoDuration::from_nanos(v).to_string()
    }

    #[test]
    fn layouts_match_go() {
        assert_eq!(ms(0), "0s");
        assert_eq!(ms(999), "999ms");
        assert_eq!(ms(1_000), "1s");
        assert_eq!(ms(1_500), "1.5s");
        assert_eq!(ms(61_500), "1m1.5s");
        assert_eq!(ms(300_000), "5m0s");
        assert_eq!(ms(3_690_000), "1h1m30s");
        assert_eq!(ms(7_200_000), "2h0m0s");
        assert_eq!(ms(5_970_001), "1h39m30.001s");
        assert_eq!(ms(-1_500), "-1.5s");
        assert_eq!(ms(-20), "-20ms");
        assert_eq!(ns(0), "0s");
        assert_eq!(ns(999), "999ns");
        assert_eq!(ns(1_500), "1.5µs");
        assert_eq!(ns(1_000_001), "1.000001ms");
        assert_eq!(ns(500_000_000), "500ms");
        assert_eq!(ns(1_500_000_000), "1.5s");
        assert_eq!(ns(60_000_000_000), "1m0s");
        assert_eq!(ns(3_723_000_000_000), "1h2m3s");
        assert_eq!(ns(i64::MAX), "2562047h47m16.854775807s");
        assert_eq!(ns(i64::MIN), "-2562047h47m16.854775808s");
    }

    #[test]
    fn model_durations_match_prometheus() {
        const DAY: u64 = 86_400_000;
        for (ms, s) in [
            (0, "0s"),
            (1, "1ms"),
            (100, "100ms"),
            (60_030, "1m30ms"),
            (90_000, "1m30s"),
            (300_000, "5m"),
            (5_400_000, "1h30m"),
            (3_600_001, "1h1ms"),
            (90 * DAY, "90d"),
            (14 * DAY, "2w"),
            (365 * DAY, "1y"),
            (366 * DAY, "366d"),
            (730 * DAY, "2y"),
            (744 * DAY, "744d"),
            (728 * DAY, "104w"),
        ] {
            assert_eq!(ModelDuration(ms).to_string(), s, "{ms}");
        }
    }

    /// Reads the layout back (Go's `time.ParseDuration` units), exactly.
    fn parse_back(s: &str) -> Option<i128> {
        let (neg, mut rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let mut total: i128 = 0;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
            let (num, tail) = rest.split_at(num_len);
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let scale: i128 = match unit {
                "h" => 3_600_000_000_000,
                "m" => 60_000_000_000,
                "s" => 1_000_000_000,
                "ms" => 1_000_000,
                "µs" => 1_000,
                "ns" => 1,
                _ => return None,
            };
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            total += int.parse::<i128>().ok()? * scale;
            let mut place = scale;
            for d in frac.bytes() {
                place /= 10;
                total += i128::from(d - b'0') * place;
            }
            rest = tail;
        }
        Some(if neg { -total } else { total })
    }

    proptest! {
        /// Units come from the largest down, each once, and add up to the
        /// span.
        #[test]
        fn model_duration_parts_add_up(ms in any::<u64>()) {
            let s = ModelDuration(ms).to_string();
            let layout = regex::Regex::new(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$").unwrap();
            prop_assert!(!s.is_empty() && layout.is_match(&s), "{}", s);
            let mut total: u128 = 0;
            for part in regex::Regex::new(r"(\d+)(ms|[ywdhms])").unwrap().captures_iter(&s) {
                let n: u128 = part[1].parse().unwrap();
                let unit: u128 = match &part[2] {
                    "y" => 365 * 86_400_000,
                    "w" => 7 * 86_400_000,
                    "d" => 86_400_000,
                    "h" => 3_600_000,
                    "m" => 60_000,
                    "s" => 1000,
                    _ => 1,
                };
                total += n * unit;
            }
            prop_assert_eq!(total, u128::from(ms));
        }

        /// Every span reads back to itself, and milliseconds are the
        /// nanosecond layout of the same span.
        #[test]
        fn round_trips(v in any::<i64>(), m in -9_000_000_000_000i64..9_000_000_000_000) {
            prop_assert_eq!(parse_back(&ns(v)), Some(i128::from(v)));
            prop_assert_eq!(ms(m), ns(m * 1_000_000));
            let s = ms(m);
            let layout = regex::Regex::new(r"^-?([1-9]\d*h)?(\d{1,2}m)?\d+(\.\d*[1-9])?(s|ms)$").unwrap();
            prop_assert!(layout.is_match(&s), "{}", s);
        }
    }
}
