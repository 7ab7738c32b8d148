//! Exposition formats: Prometheus text 0.0.4 and OpenMetrics 1.0 text.
//!
//! Parsing is zero-copy: entries borrow from the body (or, when streaming,
//! from the read buffer) and label values are unescaped only on request and
//! only when they contain escapes. The parser validates every line fully, so a
//! caller that skips label decoding (scrape cache hit) still rejects malformed
//! bodies. Nothing here allocates per sample, does I/O beyond `Read`, or knows
//! about labels sets, relabeling or storage.

mod float;
mod lexer;
mod stream;
mod writer;

use std::borrow::Cow;

pub use stream::{StreamError, StreamParser};
pub use writer::{push_go_float, write_family, WriteFamily, WriteSample};

use lexer::LineParser;

/// The exposition format of a body, chosen from the response `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4` (also the fallback for unknown types).
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0` (or 0.0.1).
    OpenMetrics,
}

impl Format {
    /// Picks the parser for a `Content-Type` header value the way Prometheus
    /// does: OpenMetrics for `application/openmetrics-text`, the text format
    /// for everything else (including a missing or unparsable header).
    pub fn from_content_type(content_type: &str) -> Format {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }

    /// The `Content-Type` a writer of this format produces.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A metric family's type, as declared by a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `untyped` in the text format, `unknown` in OpenMetrics.
    Unknown,
}

impl MetricType {
    /// The name Prometheus's metadata API reports (`unknown` for untyped).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn parse(s: &[u8], format: Format) -> Option<MetricType> {
        let t = match s {
            b"counter" => MetricType::Counter,
            b"gauge" => MetricType::Gauge,
            b"histogram" => MetricType::Histogram,
            b"summary" => MetricType::Summary,
            b"untyped" if format == Format::PrometheusText => MetricType::Unknown,
            b"gaugehistogram" if format == Format::OpenMetrics => MetricType::GaugeHistogram,
            b"info" if format == Format::OpenMetrics => MetricType::Info,
            b"stateset" if format == Format::OpenMetrics => MetricType::StateSet,
            b"unknown" if format == Format::OpenMetrics => MetricType::Unknown,
            _ => return None,
        };
        Some(t)
    }
}

/// A malformed body: the 1-based line and what was wrong, worded as
/// Prometheus words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text`.
    Help { name: &'a str, text: Escaped<'a> },
    /// `# TYPE name type`.
    Type { name: &'a str, kind: MetricType },
    /// `# UNIT name unit` (OpenMetrics only).
    Unit { name: &'a str, unit: &'a str },
    /// Any other comment (text format only; bytes after `#`).
    Comment(&'a [u8]),
    /// A sample line.
    Series(SeriesLine<'a>),
}

/// A sample line, with its labels left undecoded until asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLine<'a> {
    /// `name{labels}` exactly as written: the scrape cache key. Two lines with
    /// the same text are the same series.
    pub series: &'a str,
    /// The metric name.
    pub name: &'a str,
    /// The text between the braces (empty without braces). Already validated.
    labels: &'a str,
    /// The sample value; a NaN in the body becomes `NORMAL_NAN`, never the
    /// staleness marker.
    pub value: f64,
    /// Explicit timestamp in milliseconds (OpenMetrics seconds are converted).
    pub timestamp: Option<i64>,
    /// The exemplar, if the line carries one (OpenMetrics only).
    pub exemplar: Option<Exemplar<'a>>,
}

impl<'a> SeriesLine<'a> {
    /// The label pairs in the order written (not including the name).
    pub fn labels(&self) -> LabelPairs<'a> {
        LabelPairs {
            rest: self.labels.as_bytes(),
            src: self.labels,
        }
    }
}

/// An OpenMetrics exemplar: `# {labels} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    labels: &'a str,
    pub value: f64,
    /// Milliseconds.
    pub timestamp: Option<i64>,
}

impl<'a> Exemplar<'a> {
    pub fn labels(&self) -> LabelPairs<'a> {
        LabelPairs {
            rest: self.labels.as_bytes(),
            src: self.labels,
        }
    }
}

/// The NaN that parsed NaN values become (Prometheus's `value.NormalNaN`).
/// Distinct from `vigil_model::STALE_NAN`, so a body can never inject
/// staleness markers.
pub const NORMAL_NAN: f64 = f64::from_bits(0x7ff8_0000_0000_0001);

/// Which escapes a quoted string or help text understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EscapeRules {
    /// `\\`, `\"`, `\n` (label values; OpenMetrics help text).
    LabelValue,
    /// `\\`, `\n` (help text in the text format).
    TextHelp,
}

/// A string as written in the body, which may contain escape sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaped<'a> {
    raw: &'a str,
    rules: EscapeRules,
}

impl<'a> Escaped<'a> {
    /// Help text as written in `format` (for text kept undecoded elsewhere).
    pub fn help(raw: &'a str, format: Format) -> Self {
        let rules = match format {
            Format::PrometheusText => EscapeRules::TextHelp,
            Format::OpenMetrics => EscapeRules::LabelValue,
        };
        Escaped { raw, rules }
    }

    /// The text exactly as written (escapes not decoded).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// True when decoding would change the text.
    pub fn has_escapes(&self) -> bool {
        memchr::memchr(b'\\', self.raw.as_bytes()).is_some()
    }

    /// The decoded text, borrowed when there is nothing to decode.
    pub fn decode(&self) -> Cow<'a, str> {
        if !self.has_escapes() {
            return Cow::Borrowed(self.raw);
        }
        let mut out = String::with_capacity(self.raw.len());
        self.decode_into(&mut out);
        Cow::Owned(out)
    }

    /// Decodes into `scratch` (cleared first) and returns it; no allocation
    /// once `scratch` has grown.
    pub fn decode_into<'s>(&self, scratch: &'s mut String) -> &'s str {
        scratch.clear();
        let b = self.raw;
        let mut last = 0;
        let bytes = b.as_bytes();
        let mut i = 0;
        while let Some(off) = memchr::memchr(b'\\', &bytes[i..]) {
            let at = i + off;
            let repl = match (bytes.get(at + 1), self.rules) {
                (Some(b'\\'), _) => Some('\\'),
                (Some(b'n'), _) => Some('\n'),
                (Some(b'"'), EscapeRules::LabelValue) => Some('"'),
                _ => None,
            };
            match repl {
                Some(c) => {
                    scratch.push_str(&b[last..at]);
                    scratch.push(c);
                    i = at + 2;
                    last = i;
                }
                None => i = at + 1,
            }
        }
        scratch.push_str(&b[last..]);
        scratch
    }
}

/// Iterator over validated label pairs `name="value"`.
#[derive(Debug, Clone)]
pub struct LabelPairs<'a> {
    rest: &'a [u8],
    src: &'a str,
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (&'a str, Escaped<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // The input was validated by the line parser; this only re-finds the
        // token boundaries (skipping the text format's optional blanks).
        let b = self.rest;
        let base = self.src.len() - b.len();
        let mut i = 0;
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= b.len() {
            self.rest = &b[b.len()..];
            return None;
        }
        let name_start = i;
        while i < b.len() && lexer::is_label_char(b[i]) {
            i += 1;
        }
        let name = &self.src[base + name_start..base + i];
        while i < b.len() && b[i] != b'"' {
            i += 1;
        }
        let val_start = i + 1;
        i = val_start;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        let val_end = i.min(b.len());
        let raw = &self.src[base + val_start.min(val_end)..base + val_end];
        self.rest = &b[(i + 1).min(b.len())..];
        Some((
            name,
            Escaped {
                raw,
                rules: EscapeRules::LabelValue,
            },
        ))
    }
}

/// Parses a whole body held in memory. Entries borrow from the body.
#[derive(Debug)]
pub struct Parser<'a> {
    body: &'a [u8],
    pos: usize,
    lines: LineParser,
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(body: &'a [u8], format: Format) -> Self {
        Parser {
            body,
            pos: 0,
            lines: LineParser::new(format),
            done: false,
        }
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.lines.format()
    }

    /// Number of the line the last entry (or error) came from, 1-based.
    pub fn line(&self) -> usize {
        self.lines.line()
    }

    /// The next entry, `Ok(None)` at the end of a valid body.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let rest = &self.body[self.pos..];
            if rest.is_empty() {
                self.done = true;
                self.lines.finish()?;
                return Ok(None);
            }
            let (line, terminated) = match memchr::memchr(b'\n', rest) {
                Some(n) => {
                    self.pos += n + 1;
                    (&rest[..n], true)
                }
                None => {
                    self.pos = self.body.len();
                    (rest, false)
                }
            };
            match self.lines.parse_line(line, terminated) {
                Ok(Some(e)) => return Ok(Some(e)),
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

#[cfg(test)]
mod tests;
