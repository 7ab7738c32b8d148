//! Go's `fmt` number formatting as templates see it: `%v`/`%g` (strconv's
//! shortest or precision-bounded `g`), `%e`, `%f`, and `printf` verbs.
//!
//! Rust's float formatting gives correctly rounded digits; this module only
//! lays those digits out the way Go does (exponent thresholds, `e+06`).

/// Decimal digits of a finite, non-zero |v|: (digits without trailing zeros,
/// decimal point position) so that v = 0.d1d2... x 10^dp.
fn digits(v: f64, prec: Option<usize>) -> (String, i32) {
    let s = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    (d, exp + 1)
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        return Some("NaN".into());
    }
    if v.is_infinite() {
        return Some(if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        });
    }
    None
}

/// `%e` layout of digits `d` (point after the first) with `frac` decimals.
fn lay_e(neg: bool, d: &str, dp: i32, frac: usize, upper: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let mut it = d.chars();
    out.push(it.next().unwrap_or('0'));
    if frac > 0 {
        out.push('.');
        let rest: String = it.collect();
        out.push_str(&rest);
        for _ in rest.len()..frac {
            out.push('0');
        }
    }
    let exp = if d == "0" { 0 } else { dp - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

/// `%f` layout of digits with `frac` decimals (digits already rounded).
fn lay_f(neg: bool, d: &str, dp: i32, frac: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let db = d.as_bytes();
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(*db.get(i).unwrap_or(&b'0') as char);
        }
    } else {
        out.push('0');
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac as i32 {
            let idx = dp + i;
            let c = if idx < 0 {
                '0'
            } else {
                *db.get(idx as usize).unwrap_or(&b'0') as char
            };
            out.push(c);
        }
    }
    out
}

/// strconv.FormatFloat(v, 'g', prec, 64); `None` is the shortest form
/// (what `%v` and `{{ $value }}` print).
pub fn format_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if prec.is_none() {
        // The shortest form is vigil_model::gofmt's (Go's tie rule).
        let s = vigil_model::gofmt::format_float(v, vigil_model::gofmt::FloatFormat::G);
        return if upper { s.replace('e', "E") } else { s };
    }
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        return if neg { "-0".into() } else { "0".into() };
    }
    let (d, dp) = digits(v, prec);
    let nd = d.len() as i32;
    let mut p = prec.map(|p| p.max(1) as i32).unwrap_or(nd);
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if prec.is_none() {
        eprec = 6;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        return lay_e(neg, &d, dp, (p - 1).max(0) as usize, upper);
    }
    if p > dp {
        p = nd;
    }
    lay_f(neg, &d, dp, (p - dp).max(0) as usize)
}

/// `%e` with `prec` decimals (default 6).
pub fn format_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        return lay_e(neg, "0", 1, prec, upper);
    }
    let (d, dp) = digits(v, Some(prec + 1));
    lay_e(neg, &d, dp, prec, upper)
}

/// `%f` with `prec` decimals (default 6).
pub fn format_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let s = format!("{:.*}", prec, v);
    // Rust prints -0.0 as "-0"; Go keeps the sign too ("-0.000000").
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_matches_go_percent_v() {
        assert_eq!(format_g(1.0, None, false), "1");
        assert_eq!(format_g(0.5, None, false), "0.5");
        assert_eq!(format_g(123456.0, None, false), "123456");
        assert_eq!(format_g(1234567.0, None, false), "1.234567e+06");
        assert_eq!(format_g(1e6, None, false), "1e+06");
        assert_eq!(format_g(0.0001, None, false), "0.0001");
        assert_eq!(format_g(0.00001, None, false), "1e-05");
        assert_eq!(format_g(-2.5, None, false), "-2.5");
        assert_eq!(format_g(1e21, None, false), "1e+21");
        assert_eq!(format_g(f64::NAN, None, false), "NaN");
        assert_eq!(format_g(f64::INFINITY, None, false), "+Inf");
        assert_eq!(format_g(f64::NEG_INFINITY, None, false), "-Inf");
        assert_eq!(format_g(0.1 + 0.2, None, false), "0.30000000000000004");
    }

    #[test]
    fn precision_g_matches_go() {
        assert_eq!(format_g(1234567.0, Some(4), false), "1.235e+06");
        assert_eq!(format_g(100.0, Some(4), false), "100");
        assert_eq!(format_g(1000.0, Some(4), false), "1000");
        assert_eq!(format_g(10000.0, Some(4), false), "1e+04");
        assert_eq!(format_g(1.5, Some(4), false), "1.5");
        assert_eq!(format_g(0.000123, Some(4), false), "0.000123");
        assert_eq!(format_g(0.0, Some(4), false), "0");
        assert_eq!(format_g(2.0 / 3.0, Some(4), false), "0.6667");
        assert_eq!(format_g(999.99, Some(4), false), "1000");
    }

    #[test]
    fn e_and_f() {
        assert_eq!(format_e(1234.5678, 2, false), "1.23e+03");
        assert_eq!(format_e(0.0, 6, false), "0.000000e+00");
        assert_eq!(format_f(3.25159, 2), "3.25");
        assert_eq!(format_f(2.5, 0), "2");
        assert_eq!(format_f(1.0, 6), "1.000000");
    }
}
