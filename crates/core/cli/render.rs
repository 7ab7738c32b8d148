//! Text renderings of query results: aligned table, CSV, JSON, and the
//! error report with a caret under the failing position.

use vigil_model::gofmt;
use vigil_model::Labels;
use vigil_web::json::{format_rfc3339_parts, JsonWriter};
use vigil_web::QueryValue;

/// `name{a="b", c="d"}`, or `{}` for an empty set.
pub fn series_name(l: &Labels) -> String {
    let mut out = String::new();
    out.push_str(l.metric_name().unwrap_or(""));
    let rest: Vec<String> = l
        .iter()
        .filter(|x| x.name != vigil_model::METRIC_NAME)
        .map(|x| format!("{}={}", x.name, gofmt::quote(&x.value)))
        .collect();
    if !rest.is_empty() || out.is_empty() {
        out.push('{');
        out.push_str(&rest.join(", "));
        out.push('}');
    }
    out
}

/// A sample value as the HTTP API writes it.
pub fn value_string(v: f64) -> String {
    gofmt::format_float(v, gofmt::FloatFormat::Json)
}

/// Milliseconds as RFC 3339 (UTC, millisecond precision when non-zero).
pub fn time_string(t: i64) -> String {
    format_rfc3339_parts(t.div_euclid(1000), (t.rem_euclid(1000) * 1_000_000) as u32)
}

/// An aligned two-column table (series, value) sorted by series; range
/// results list each series' points under it.
pub fn table(v: &QueryValue) -> String {
    match v {
        QueryValue::Vector(elems) => {
            let mut rows: Vec<(String, String)> = elems
                .iter()
                .map(|e| (series_name(&e.labels), value_string(e.v)))
                .collect();
            rows.sort();
            let w = rows
                .iter()
                .map(|r| r.0.chars().count())
                .max()
                .unwrap_or(0)
                .max(6);
            let mut out = format!("{:<w$}  VALUE\n", "SERIES", w = w);
            for (s, val) in rows {
                out.push_str(&format!("{:<w$}  {}\n", s, val, w = w));
            }
            if elems.is_empty() {
                out.push_str("(no series)\n");
            }
            out
        }
        QueryValue::Matrix(series) => {
            let mut sorted: Vec<_> = series.iter().collect();
            sorted.sort_by_key(|s| series_name(&s.labels));
            let mut out = String::new();
            for s in sorted {
                out.push_str(&series_name(&s.labels));
                out.push('\n');
                for p in &s.samples {
                    out.push_str(&format!("  {}  {}\n", time_string(p.t), value_string(p.v)));
                }
            }
            if series.is_empty() {
                out.push_str("(no series)\n");
            }
            out
        }
        QueryValue::Scalar { v, .. } => format!("{}\n", value_string(*v)),
        QueryValue::String { s, .. } => format!("{}\n", s),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `series,timestamp,value` rows (timestamp in Unix seconds).
pub fn csv(v: &QueryValue) -> String {
    let mut out = String::from("series,timestamp,value\n");
    let ts = |t: i64| {
        let mut b = Vec::new();
        vigil_web::json::format_timestamp(t, &mut b);
        String::from_utf8_lossy(&b).into_owned()
    };
    let mut row = |name: &str, t: i64, val: String| {
        out.push_str(&format!(
            "{},{},{}\n",
            csv_field(name),
            ts(t),
            csv_field(&val)
        ));
    };
    match v {
        QueryValue::Vector(elems) => {
            let mut sorted: Vec<_> = elems.iter().map(|e| (series_name(&e.labels), e)).collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, e) in sorted {
                row(&name, e.t, value_string(e.v));
            }
        }
        QueryValue::Matrix(series) => {
            let mut sorted: Vec<_> = series.iter().map(|s| (series_name(&s.labels), s)).collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, s) in sorted {
                for p in &s.samples {
                    row(&name, p.t, value_string(p.v));
                }
            }
        }
        QueryValue::Scalar { t, v } => row("scalar", *t, value_string(*v)),
        QueryValue::String { t, s } => row("string", *t, s.clone()),
    }
    out
}

/// The API's `data` object for this value.
pub fn json(v: &QueryValue) -> String {
    let mut w = JsonWriter::new();
    w.raw(r#"{"resultType":"#);
    w.string(v.type_name());
    w.raw(r#","result":"#);
    vigil_web::api::query::write_value(&mut w, v);
    w.byte(b'}');
    let mut s = String::from_utf8_lossy(&w.into_bytes()).into_owned();
    s.push('\n');
    s
}

/// `Error: <message>` and, when the position is known, the query with a
/// caret under the offending character.
pub fn error_report(query: &str, message: &str, position: Option<usize>) -> String {
    let mut out = format!("Error: {}\n", message);
    if let Some(pos) = position {
        let pos = pos.min(query.len());
        let line_start = query[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = query[pos..]
            .find('\n')
            .map(|i| pos + i)
            .unwrap_or(query.len());
        let col = query[line_start..pos].chars().count();
        out.push_str(&format!("  {}\n", &query[line_start..line_end]));
        out.push_str(&format!("  {}^\n", " ".repeat(col)));
    }
    out
}
