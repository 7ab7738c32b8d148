//! Writing both text formats, with Go's float formatting (`%g`, shortest),
//! so output looks like a Go client library's. Used by round-trip tests and
//! by anything that re-exposes samples.

use std::fmt::Write as _;

use super::{Format, MetricType};
use vigil_model::gofmt::{FloatFormat, GoFloat};

/// A metric family to write: metadata lines, then its samples.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteFamily {
    pub name: String,
    pub help: Option<String>,
    pub kind: Option<MetricType>,
    /// OpenMetrics only; ignored for the text format.
    pub unit: Option<String>,
    pub samples: Vec<WriteSample>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds.
    pub timestamp: Option<i64>,
}

/// Appends one family in `format`. For OpenMetrics the caller ends the body
/// with `# EOF\n`.
pub fn write_family(out: &mut String, format: Format, fam: &WriteFamily) {
    if let Some(help) = &fam.help {
        let _ = write!(out, "# HELP {} ", fam.name);
        escape(out, help, format == Format::OpenMetrics);
        out.push('\n');
    }
    if let Some(kind) = fam.kind {
        let kind = match (kind, format) {
            (MetricType::Unknown, Format::PrometheusText) => "untyped",
            (k, _) => k.as_str(),
        };
        let _ = writeln!(out, "# TYPE {} {kind}", fam.name);
    }
    if let (Some(unit), Format::OpenMetrics) = (&fam.unit, format) {
        let _ = writeln!(out, "# UNIT {} {unit}", fam.name);
    }
    for s in &fam.samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (n, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(n);
                out.push_str("=\"");
                escape(out, v, true);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        push_go_float(out, s.value);
        if let Some(t) = s.timestamp {
            out.push(' ');
            match format {
                Format::PrometheusText => {
                    let _ = write!(out, "{t}");
                }
                Format::OpenMetrics => {
                    let sign = if t < 0 { "-" } else { "" };
                    let a = t.unsigned_abs();
                    let _ = write!(out, "{sign}{}.{:03}", a / 1000, a % 1000);
                }
            }
        }
        out.push('\n');
    }
}

/// Escapes `\` and newline, and `"` when `quote` is set.
fn escape(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A sample value as the text format writes it: Go's `%g`
/// (`strconv.FormatFloat(v, 'g', -1, 64)`), e.g. `1.048576e+06`.
pub fn push_go_float(out: &mut String, v: f64) {
    let _ = write!(out, "{}", GoFloat(v, FloatFormat::G));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(v: f64) -> String {
        let mut s = String::new();
        push_go_float(&mut s, v);
        s
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(g(1.0), "1");
        assert_eq!(g(-2.5), "-2.5");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(123456.0), "123456");
        assert_eq!(g(1234567.0), "1.234567e+06");
        assert_eq!(g(1048576.0), "1.048576e+06");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(1.5e300), "1.5e+300");
        assert_eq!(g(123.456), "123.456");
        assert_eq!(g(f64::INFINITY), "+Inf");
        assert_eq!(g(f64::NEG_INFINITY), "-Inf");
        assert_eq!(g(f64::NAN), "NaN");
        for v in [0.1, 1.0 / 3.0, 5e-324, f64::MAX, 1e20, 123456789.123] {
            assert_eq!(g(v).parse::<f64>().unwrap(), v);
        }
    }
}
