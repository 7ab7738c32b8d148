//! Decoding the API's JSON into `vigil_web::QueryValue`, and errors with
//! the position the caret points at.

use serde_json::Value;
use vigil_model::{Label, Labels, Sample};
use vigil_web::{MatrixSeries, QueryValue, VectorElement};

/// A query error as the CLI reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CliQueryError {
    pub error_type: String,
    pub message: String,
    /// Byte offset in the query (from `line:col:` in the message, or the
    /// engine's position).
    pub position: Option<usize>,
}

/// Seconds (JSON number) to milliseconds.
fn ts_ms(v: &Value) -> Option<i64> {
    Some((v.as_f64()? * 1000.0).round() as i64)
}

fn sample_value(v: &Value) -> Option<f64> {
    match v.as_str()? {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

fn point(v: &Value) -> Option<Sample> {
    let a = v.as_array()?;
    Some(Sample::new(ts_ms(a.first()?)?, sample_value(a.get(1)?)?))
}

pub fn labels(v: &Value) -> Labels {
    let mut out = Vec::new();
    if let Some(o) = v.as_object() {
        for (k, v) in o {
            out.push(Label::new(k.as_str(), v.as_str().unwrap_or("")));
        }
    }
    Labels::new(out)
}

/// Decodes `{"resultType":..,"result":..}`.
pub fn decode_data(data: &Value) -> Result<QueryValue, String> {
    let bad = || format!("unexpected result shape: {}", data);
    let result = data.get("result").ok_or_else(bad)?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => {
            let mut out = Vec::new();
            for e in result.as_array().ok_or_else(bad)? {
                let p = point(e.get("value").ok_or_else(bad)?).ok_or_else(bad)?;
                out.push(VectorElement {
                    labels: labels(e.get("metric").unwrap_or(&Value::Null)),
                    t: p.t,
                    v: p.v,
                });
            }
            Ok(QueryValue::Vector(out))
        }
        Some("matrix") => {
            let mut out = Vec::new();
            for s in result.as_array().ok_or_else(bad)? {
                let samples = s
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| vs.iter().filter_map(point).collect())
                    .unwrap_or_default();
                out.push(MatrixSeries {
                    labels: labels(s.get("metric").unwrap_or(&Value::Null)),
                    samples,
                });
            }
            Ok(QueryValue::Matrix(out))
        }
        Some("scalar") => {
            let p = point(result).ok_or_else(bad)?;
            Ok(QueryValue::Scalar { t: p.t, v: p.v })
        }
        Some("string") => {
            let a = result.as_array().ok_or_else(bad)?;
            Ok(QueryValue::String {
                t: a.first().and_then(ts_ms).unwrap_or(0),
                s: a.get(1).and_then(Value::as_str).unwrap_or("").to_string(),
            })
        }
        _ => Err(bad()),
    }
}

/// Finds `line:col:` (1-based, column in bytes as Prometheus counts) in an
/// error message and turns it into a byte offset into `query`.
pub fn error_position(message: &str, query: &str) -> Option<usize> {
    let idx = message.find(": parse error")?;
    let head = &message[..idx];
    // The "line:col" is the last whitespace-separated token before it.
    let loc = head.rsplit([' ', '"']).next()?;
    let (l, c) = loc.split_once(':')?;
    let line: usize = l.parse().ok()?;
    let col: usize = c.parse().ok()?;
    let mut offset = 0;
    for (i, text) in query.split('\n').enumerate() {
        if i + 1 == line {
            return Some(offset + col.saturating_sub(1).min(text.len()));
        }
        offset += text.len() + 1;
    }
    None
}

/// Decodes an error body (`{"status":"error",...}`), or describes a body
/// that is not one.
pub fn decode_error(status: u16, body: &[u8], query: &str) -> CliQueryError {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("status").and_then(Value::as_str) == Some("error") => {
            let message = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            CliQueryError {
                error_type: v
                    .get("errorType")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                position: error_position(&message, query),
                message,
            }
        }
        _ => CliQueryError {
            error_type: "http".to_string(),
            message: format!("HTTP {}: {}", status, String::from_utf8_lossy(body).trim()),
            position: None,
        },
    }
}
