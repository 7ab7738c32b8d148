//! Series descriptions of the PromQL test scripts and promtool unit tests:
//! `metric{labels} 1 2 _ stale 0+10x5 _x3` (Prometheus's `ParseSeriesDesc`).
//!
//! Only float samples: native histogram literals (`{{...}}`) are rejected
//! with an error naming them, so a harness can skip such lines.

use super::error::ParseError;
use super::parse_metric_prefix;
use vigil_model::{Labels, STALE_NAN};

/// One step of a series description: a value, or `_` (no sample).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SequenceValue {
    Value(f64),
    Omitted,
}

/// Parses `metric values...`. Expansions follow Prometheus: `a+bxN` and
/// `a-bxN` give N+1 values by repeated floating-point addition, `axN` gives
/// N+1 copies, `_xN` gives N omitted steps, `stale` is the stale marker.
pub fn parse_series_desc(input: &str) -> Result<(Labels, Vec<SequenceValue>), ParseError> {
    let (labels, rest) = parse_metric_prefix(input)?;
    let mut values = Vec::new();
    let mut pos = rest;
    for item in input[rest..].split([' ', '\t', '\n', '\r']) {
        let start = pos;
        pos += item.len() + 1;
        if item.is_empty() {
            continue;
        }
        let fail = |msg: String| ParseError::new(input, start, start + item.len(), msg);
        if item.starts_with("{{") {
            return Err(fail(
                "native histogram series values are not supported".into(),
            ));
        }
        parse_item(item, &mut values).map_err(fail)?;
    }
    Ok((labels, values))
}

fn parse_item(item: &str, out: &mut Vec<SequenceValue>) -> Result<(), String> {
    let bad = || {
        format!(
            "unexpected {} in series values",
            vigil_model::gofmt::quote(item)
        )
    };
    if let Some(rest) = item.strip_prefix('_') {
        let n = match rest.strip_prefix('x') {
            Some(n) => repetitions(n)?,
            None if rest.is_empty() => 1,
            None => return Err(bad()),
        };
        out.extend(std::iter::repeat_n(SequenceValue::Omitted, n as usize));
        return Ok(());
    }
    if item == "stale" {
        out.push(SequenceValue::Value(STALE_NAN));
        return Ok(());
    }
    let (first, rest) = number_prefix(item, true).ok_or_else(bad)?;
    if rest.is_empty() {
        out.push(SequenceValue::Value(first));
        return Ok(());
    }
    let (step, times) = if let Some(n) = rest.strip_prefix('x') {
        (0.0, n)
    } else {
        let (step, rest) = number_prefix(rest, false).ok_or_else(bad)?;
        (step, rest.strip_prefix('x').ok_or_else(bad)?)
    };
    let n = repetitions(times)?;
    let mut v = first;
    for _ in 0..=n {
        out.push(SequenceValue::Value(v));
        v += step;
    }
    Ok(())
}

fn repetitions(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|&n| n <= 1 << 24)
        .ok_or_else(|| format!("invalid repetition in series values: {s}"))
}

/// A number at the start of `s` (with a sign, required when `!first`),
/// and the rest. Hex is not allowed, as in Prometheus's series lexer.
fn number_prefix(s: &str, first: bool) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    } else if !first {
        return None;
    }
    let body = &s[i..];
    let word = body.bytes().take_while(|c| c.is_ascii_alphabetic()).count();
    let len = if word > 0 {
        let w = &body[..word];
        if !(w.eq_ignore_ascii_case("inf") || w.eq_ignore_ascii_case("nan")) {
            return None;
        }
        word
    } else {
        let mut j = 0;
        let digits = |j: &mut usize| {
            while body.as_bytes().get(*j).is_some_and(u8::is_ascii_digit) {
                *j += 1;
            }
        };
        digits(&mut j);
        if body.as_bytes().get(j) == Some(&b'.') {
            j += 1;
            digits(&mut j);
        }
        if j > 0 && matches!(body.as_bytes().get(j), Some(b'e' | b'E')) {
            let mut k = j + 1;
            if matches!(body.as_bytes().get(k), Some(b'+' | b'-')) {
                k += 1;
            }
            let before = k;
            digits(&mut k);
            if k > before {
                j = k;
            }
        }
        j
    };
    if len == 0 {
        return None;
    }
    let v = super::literal::parse_number(&s[..i + len]).ok()?;
    Some((v, &s[i + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use SequenceValue::{Omitted, Value};

    fn vals(s: &str) -> Vec<SequenceValue> {
        parse_series_desc(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .1
    }

    #[test]
    fn expansions() {
        assert_eq!(vals("m 1 2 3"), vec![Value(1.0), Value(2.0), Value(3.0)]);
        assert_eq!(
            vals("m 0+10x3"),
            vec![Value(0.0), Value(10.0), Value(20.0), Value(30.0)]
        );
        assert_eq!(vals("m 10-1x2"), vec![Value(10.0), Value(9.0), Value(8.0)]);
        assert_eq!(vals("m -2+4x2"), vec![Value(-2.0), Value(2.0), Value(6.0)]);
        assert_eq!(vals("m 1x2"), vec![Value(1.0); 3]);
        assert_eq!(
            vals("m 1 _x3 2"),
            vec![Value(1.0), Omitted, Omitted, Omitted, Value(2.0)]
        );
        assert_eq!(
            vals("m _ 1 +1 -1"),
            vec![Omitted, Value(1.0), Value(1.0), Value(-1.0)]
        );
        assert_eq!(
            vals("m Inf -Inf 1e3 .5"),
            vec![
                Value(f64::INFINITY),
                Value(f64::NEG_INFINITY),
                Value(1000.0),
                Value(0.5)
            ]
        );
        assert_eq!(vals("m 1.5e1+0.5x1"), vec![Value(15.0), Value(15.5)]);
        let v = vals("m NaN stale");
        assert!(matches!(v[0], Value(x) if x.is_nan()));
        assert!(matches!(v[1], Value(x) if vigil_model::is_stale_nan(x)));
    }

    #[test]
    fn labels_and_errors() {
        let (l, v) = parse_series_desc(r#"http_requests{job="api", instance="0"}    0+10x2   "#)
            .expect("parses");
        assert_eq!(l.get("job"), Some("api"));
        assert_eq!(v.len(), 3);
        assert!(parse_series_desc("m 1 2 _a4").is_err());
        assert!(parse_series_desc("m -3-3 -3").is_err());
        assert!(parse_series_desc("m 3+3x4-4").is_err());
        assert_eq!(vals("m 0x10"), vec![Value(0.0); 11]);
        assert!(parse_series_desc("m stalex3").is_err());
        let e = parse_series_desc("m 1 {{schema:0 sum:1}}").unwrap_err();
        assert!(e.message.contains("native histogram"), "{e}");
    }
}
