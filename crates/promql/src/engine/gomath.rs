//! Go's floating-point behaviour, where it differs from Rust's.
//!
//! PromQL answers are defined by Prometheus, which is written in Go: `math.Max`
//! propagates NaN (Rust's `f64::max` drops it), `int64(NaN)` is
//! `math.MinInt64` on amd64. Go's printing and dates are in
//! `vigil_model::gofmt`. Everything here is a pure function of its inputs.

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

/// Neumaier-compensated summation step, as Prometheus's `kahanSumInc`
/// after #14362: once the running sum is infinite the compensation is reset,
/// so a sum containing +Inf is +Inf.
///
/// Deliberate deviation from 2.53, whose `kahanSumInc` had no such guard and
/// turned `sum_over_time`, `avg_over_time`, `sum` of a +Inf into NaN; 2.42
/// (no compensation yet) and later versions say +Inf, and so does Vigil.
/// Variances keep 2.53's NaN: see [`kahan_sum_inc_unguarded`].
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

/// Prometheus 2.53's `kahanSumInc` as it was: no guard, so once the sum
/// overflows or takes an infinite term the compensation is NaN or the
/// opposite infinity and the compensated result `sum + c` is NaN.
///
/// Used for variances (`stddev_over_time`, `stdvar_over_time`), where an
/// infinite input or overflowing squared deviations leave the result
/// undefined: NaN, as 2.42 and 2.53 answer.
#[inline]
pub fn kahan_sum_inc_unguarded(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
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
    fn infinities_sum_to_inf_but_unguarded_compensation_is_nan() {
        let (mut g, mut u) = ((0.0, 0.0), (0.0, 0.0));
        for v in [1.0, f64::INFINITY, 2.0] {
            g = kahan_sum_inc(v, g.0, g.1);
            u = kahan_sum_inc_unguarded(v, u.0, u.1);
        }
        assert_eq!(g.0 + g.1, f64::INFINITY);
        assert!((u.0 + u.1).is_nan());
        // Overflow of finite terms: +Inf guarded, NaN unguarded.
        let (mut g, mut u) = ((0.0, 0.0), (0.0, 0.0));
        for v in [1.5e308, 1.5e308] {
            g = kahan_sum_inc(v, g.0, g.1);
            u = kahan_sum_inc_unguarded(v, u.0, u.1);
        }
        assert_eq!(g.0 + g.1, f64::INFINITY);
        assert!((u.0 + u.1).is_nan());
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
}
