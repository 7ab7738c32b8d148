//! Comparison of two Prometheus HTTP API query responses: status and error
//! class, result type, series by label set, timestamps, and values within a
//! relative tolerance (NaN equals NaN, infinities must share their sign).
//!
//! It compares answers only; warnings/infos annotations are ignored because
//! Prometheus 2.42 has none and 2.53 adds them.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

/// Relative tolerance for sample values.
pub const REL_TOL: f64 = 1e-9;

/// A parsed API response.
#[derive(Debug, Clone)]
pub enum Answer {
    Success {
        status: u16,
        data: Data,
    },
    Error {
        status: u16,
        error_type: String,
        message: String,
    },
    /// Transport failure or a body that is not the API's JSON envelope.
    Broken(String),
}

#[derive(Debug, Clone)]
pub enum Data {
    Scalar(Point),
    String(i64, String),
    Vector(Vec<(String, Point)>),
    Matrix(Vec<(String, Vec<Point>)>),
}

/// A sample: milliseconds, value, and the value's text as sent.
#[derive(Debug, Clone)]
pub struct Point {
    pub t: i64,
    pub v: f64,
    pub text: String,
}

impl Answer {
    pub fn parse(status: u16, body: &str) -> Answer {
        let Ok(json) = serde_json::from_str::<Value>(body) else {
            return Answer::Broken(format!("status {status}, not JSON: {}", clip(body, 200)));
        };
        match json.get("status").and_then(Value::as_str) {
            Some("success") => match parse_data(json.get("data")) {
                Ok(data) => Answer::Success { status, data },
                Err(e) => Answer::Broken(format!("status {status}: {e}: {}", clip(body, 200))),
            },
            Some("error") => Answer::Error {
                status,
                error_type: str_field(&json, "errorType"),
                message: str_field(&json, "error"),
            },
            _ => Answer::Broken(format!("status {status}: {}", clip(body, 200))),
        }
    }

    /// Whether this is a success carrying at least one sample.
    pub fn has_data(&self) -> bool {
        match self {
            Answer::Success { data, .. } => match data {
                Data::Scalar(_) | Data::String(..) => true,
                Data::Vector(v) => !v.is_empty(),
                Data::Matrix(m) => m.iter().any(|(_, p)| !p.is_empty()),
            },
            _ => false,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Answer::Error { .. })
    }
}

fn str_field(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn parse_data(d: Option<&Value>) -> Result<Data, String> {
    let d = d.ok_or("no data")?;
    let rt = d
        .get("resultType")
        .and_then(Value::as_str)
        .ok_or("no resultType")?;
    let r = d.get("result").ok_or("no result")?;
    match rt {
        "scalar" => Ok(Data::Scalar(parse_point(r)?)),
        "string" => {
            let a = r.as_array().ok_or("string result is not an array")?;
            let t = a.first().and_then(Value::as_f64).ok_or("bad string time")?;
            let s = a.get(1).and_then(Value::as_str).ok_or("bad string value")?;
            Ok(Data::String(secs_to_ms(t), s.to_string()))
        }
        "vector" => {
            let mut out = Vec::new();
            for s in r.as_array().ok_or("vector result is not an array")? {
                let key = labels_key(s.get("metric"))?;
                let p = parse_point(s.get("value").ok_or("vector sample without value")?)?;
                out.push((key, p));
            }
            Ok(Data::Vector(out))
        }
        "matrix" => {
            let mut out = Vec::new();
            for s in r.as_array().ok_or("matrix result is not an array")? {
                let key = labels_key(s.get("metric"))?;
                let mut pts = Vec::new();
                if let Some(vals) = s.get("values") {
                    for p in vals.as_array().ok_or("values is not an array")? {
                        pts.push(parse_point(p)?);
                    }
                }
                if s.get("histograms").is_some() {
                    return Err("native histogram in result".into());
                }
                out.push((key, pts));
            }
            Ok(Data::Matrix(out))
        }
        other => Err(format!("unknown resultType {other}")),
    }
}

fn secs_to_ms(t: f64) -> i64 {
    (t * 1000.0).round() as i64
}

fn parse_point(v: &Value) -> Result<Point, String> {
    let a = v.as_array().ok_or("sample is not an array")?;
    let t = a.first().and_then(Value::as_f64).ok_or("bad sample time")?;
    let text = a.get(1).and_then(Value::as_str).ok_or("bad sample value")?;
    let v = parse_float(text).ok_or_else(|| format!("bad float {text:?}"))?;
    Ok(Point {
        t: secs_to_ms(t),
        v,
        text: text.to_string(),
    })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// `{a="x", b="y"}` with names sorted: a stable identity for a series.
fn labels_key(m: Option<&Value>) -> Result<String, String> {
    let obj = m
        .and_then(Value::as_object)
        .ok_or("series without metric")?;
    let sorted: BTreeMap<&str, &str> = obj
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("<non-string>")))
        .collect();
    let mut s = String::from("{");
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{k}={v:?}");
    }
    s.push('}');
    Ok(s)
}

pub fn values_equal(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    a == b || (a - b).abs() <= REL_TOL * a.abs().max(b.abs())
}

pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let c: String = s.chars().take(n).collect();
        format!("{c}...")
    }
}

/// How to compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Compare error messages too (not only status and errorType).
    pub error_text: bool,
    /// Instant-vector order matters (sort, topk).
    pub ordered: bool,
    /// The request was a `query_range`.
    pub range_query: bool,
}

/// Prometheus 2.53 prefixes errors from creating a range query (parse and
/// type errors) with this, as it always did for instant queries; 2.42's
/// `query_range` returned the bare message. Vigil follows 2.53.
pub const QUERY_PARAM_PREFIX: &str = "invalid parameter \"query\": ";

/// Whether the error texts agree, allowing for the 2.42 `query_range`
/// message lacking `QUERY_PARAM_PREFIX`.
fn error_text_agrees(want: &str, got: &str, range_query: bool) -> bool {
    if want == got {
        return true;
    }
    range_query
        && !want.starts_with(QUERY_PARAM_PREFIX)
        && got.strip_prefix(QUERY_PARAM_PREFIX) == Some(want)
}

/// Differences between `want` (Prometheus) and `got` (Vigil); empty when
/// they agree.
pub fn diff(want: &Answer, got: &Answer, mode: Mode) -> Vec<String> {
    let mut out = Vec::new();
    match (want, got) {
        (Answer::Broken(w), _) => out.push(format!("prometheus answer unusable: {w}")),
        (_, Answer::Broken(g)) => out.push(format!("vigil answer unusable: {g}")),
        (
            Answer::Error {
                status: ws,
                error_type: wt,
                message: wm,
            },
            Answer::Error {
                status: gs,
                error_type: gt,
                message: gm,
            },
        ) => {
            if ws != gs || wt != gt {
                out.push(format!("error class: want {ws} {wt}, got {gs} {gt}"));
            }
            if mode.error_text && !error_text_agrees(wm, gm, mode.range_query) {
                out.push(format!("error text: want {wm:?}, got {gm:?}"));
            }
        }
        (
            Answer::Error {
                status, message, ..
            },
            Answer::Success { data, .. },
        ) => out.push(format!(
            "want error {status} {message:?}, got success {}",
            summarize(data)
        )),
        (
            Answer::Success { data, .. },
            Answer::Error {
                status, message, ..
            },
        ) => out.push(format!(
            "want success {}, got error {status} {message:?}",
            summarize(data)
        )),
        (
            Answer::Success {
                status: ws,
                data: wd,
            },
            Answer::Success {
                status: gs,
                data: gd,
            },
        ) => {
            if ws != gs {
                out.push(format!("status: want {ws}, got {gs}"));
            }
            diff_data(wd, gd, mode, &mut out);
        }
    }
    out
}

fn summarize(d: &Data) -> String {
    match d {
        Data::Scalar(p) => format!("scalar {}", p.text),
        Data::String(_, s) => format!("string {s:?}"),
        Data::Vector(v) => format!("vector of {}", v.len()),
        Data::Matrix(m) => format!("matrix of {}", m.len()),
    }
}

fn kind(d: &Data) -> &'static str {
    match d {
        Data::Scalar(_) => "scalar",
        Data::String(..) => "string",
        Data::Vector(_) => "vector",
        Data::Matrix(_) => "matrix",
    }
}

fn point_diff(what: &str, w: &Point, g: &Point, out: &mut Vec<String>) {
    if w.t != g.t {
        out.push(format!("{what}: timestamp want {} got {}", w.t, g.t));
    } else if !values_equal(w.v, g.v) {
        out.push(format!("{what} @{}: want {} got {}", w.t, w.text, g.text));
    } else if w.v.to_bits() == g.v.to_bits() && w.text != g.text {
        out.push(format!(
            "{what} @{}: same value, formatted {:?} vs {:?}",
            w.t, w.text, g.text
        ));
    }
}

fn diff_data(w: &Data, g: &Data, mode: Mode, out: &mut Vec<String>) {
    match (w, g) {
        (Data::Scalar(a), Data::Scalar(b)) => point_diff("scalar", a, b, out),
        (Data::String(ta, a), Data::String(tb, b)) => {
            if ta != tb || a != b {
                out.push(format!("string: want {a:?}@{ta} got {b:?}@{tb}"));
            }
        }
        (Data::Vector(a), Data::Vector(b)) => {
            diff_series(
                a.iter().map(|(k, p)| (k, std::slice::from_ref(p))),
                b.iter().map(|(k, p)| (k, std::slice::from_ref(p))),
                out,
            );
            if mode.ordered && out.is_empty() {
                diff_order(a, b, out);
            }
        }
        (Data::Matrix(a), Data::Matrix(b)) => diff_series(
            a.iter().map(|(k, p)| (k, p.as_slice())),
            b.iter().map(|(k, p)| (k, p.as_slice())),
            out,
        ),
        _ => out.push(format!("resultType: want {}, got {}", kind(w), kind(g))),
    }
}

fn diff_series<'a>(
    want: impl Iterator<Item = (&'a String, &'a [Point])>,
    got: impl Iterator<Item = (&'a String, &'a [Point])>,
    out: &mut Vec<String>,
) {
    let mut w: BTreeMap<&String, &[Point]> = BTreeMap::new();
    for (k, p) in want {
        if w.insert(k, p).is_some() {
            out.push(format!("prometheus returned {k} twice"));
        }
    }
    let mut g: BTreeMap<&String, &[Point]> = BTreeMap::new();
    for (k, p) in got {
        if g.insert(k, p).is_some() {
            out.push(format!("vigil returned {k} twice"));
        }
    }
    for (k, wp) in &w {
        match g.get(k) {
            None => out.push(format!("missing in vigil: {k} ({} points)", wp.len())),
            Some(gp) => {
                // Align by timestamp so one missing step shows as such.
                let (mut i, mut j) = (0, 0);
                while i < wp.len() || j < gp.len() {
                    match (wp.get(i), gp.get(j)) {
                        (Some(a), Some(b)) if a.t == b.t => {
                            point_diff(k, a, b, out);
                            i += 1;
                            j += 1;
                        }
                        (Some(a), Some(b)) if a.t < b.t => {
                            out.push(format!("{k}: vigil lacks @{} ({})", a.t, a.text));
                            i += 1;
                        }
                        (Some(a), None) => {
                            out.push(format!("{k}: vigil lacks @{} ({})", a.t, a.text));
                            i += 1;
                        }
                        (_, Some(b)) => {
                            out.push(format!("{k}: vigil has extra @{} ({})", b.t, b.text));
                            j += 1;
                        }
                        (None, None) => break,
                    }
                }
            }
        }
    }
    for (k, gp) in &g {
        if !w.contains_key(k) {
            out.push(format!("extra in vigil: {k} ({} points)", gp.len()));
        }
    }
}

/// Same values in the same order; series with equal values may come in
/// any order among themselves (Go's sort is not stable).
fn diff_order(a: &[(String, Point)], b: &[(String, Point)], out: &mut Vec<String>) {
    let mut i = 0;
    while i < a.len() && i < b.len() {
        let v = a[i].1.v;
        let mut j = i;
        while j < a.len() && values_equal(a[j].1.v, v) {
            j += 1;
        }
        let mut wa: Vec<&String> = a[i..j].iter().map(|s| &s.0).collect();
        let mut gb: Vec<&String> = b[i..j.min(b.len())].iter().map(|s| &s.0).collect();
        wa.sort();
        gb.sort();
        if wa != gb {
            let want: Vec<&String> = a.iter().map(|s| &s.0).collect();
            let got: Vec<&String> = b.iter().map(|s| &s.0).collect();
            out.push(format!(
                "order differs at position {i}: want {}, got {}",
                clip(&format!("{want:?}"), 300),
                clip(&format!("{got:?}"), 300)
            ));
            return;
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vec_answer(body: &str) -> Answer {
        Answer::parse(200, body)
    }

    #[test]
    fn tolerance_nan_and_inf() {
        assert!(values_equal(f64::NAN, f64::NAN));
        assert!(!values_equal(f64::NAN, 1.0));
        assert!(values_equal(f64::INFINITY, f64::INFINITY));
        assert!(!values_equal(f64::INFINITY, f64::NEG_INFINITY));
        assert!(values_equal(1.0, 1.0 + 1e-12));
        assert!(!values_equal(1.0, 1.0 + 1e-6));
        assert!(!values_equal(0.0, 1e-300));
    }

    #[test]
    fn vectors_compare_as_sets_with_values() {
        let a = vec_answer(
            r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[10,"1"]},{"metric":{"a":"2"},"value":[10,"NaN"]}]}}"#,
        );
        let b = vec_answer(
            r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"2"},"value":[10,"NaN"]},{"metric":{"a":"1"},"value":[10,"1"]}]}}"#,
        );
        assert!(diff(&a, &b, Mode::default()).is_empty());
        let d = diff(
            &a,
            &b,
            Mode {
                ordered: true,
                ..Mode::default()
            },
        );
        assert_eq!(d.len(), 1, "{d:?}");
        let c = vec_answer(
            r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[10,"1.5"]}]}}"#,
        );
        let d = diff(&a, &c, Mode::default());
        assert_eq!(d.len(), 2, "{d:?}");
    }

    #[test]
    fn errors_compare_class_and_optionally_text() {
        let a = Answer::parse(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: x"}"#,
        );
        let b = Answer::parse(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:6: parse error: x"}"#,
        );
        let c = Answer::parse(
            422,
            r#"{"status":"error","errorType":"execution","error":"1:5: parse error: x"}"#,
        );
        assert!(diff(&a, &b, Mode::default()).is_empty());
        assert_eq!(
            diff(
                &a,
                &b,
                Mode {
                    error_text: true,
                    ..Mode::default()
                }
            )
            .len(),
            1
        );
        assert_eq!(diff(&a, &c, Mode::default()).len(), 1);
    }

    #[test]
    fn range_query_errors_may_gain_the_2_53_prefix() {
        let bare = Answer::parse(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: x"}"#,
        );
        let prefixed = Answer::parse(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: x"}"#,
        );
        let text = Mode {
            error_text: true,
            ..Mode::default()
        };
        let range = Mode {
            range_query: true,
            ..text
        };
        assert!(diff(&bare, &prefixed, range).is_empty());
        assert_eq!(diff(&bare, &prefixed, text).len(), 1);
        // Only Prometheus's bare text may be matched by a prefixed one.
        assert_eq!(diff(&prefixed, &bare, range).len(), 1);
    }

    #[test]
    fn matrix_points_align_by_time() {
        let a = vec_answer(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"1"],[2,"2"],[3,"3"]]}]}}"#,
        );
        let b = vec_answer(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"1"],[3,"3"]]}]}}"#,
        );
        let d = diff(&a, &b, Mode::default());
        assert_eq!(d, vec!["{}: vigil lacks @2000 (2)".to_string()]);
    }
}
