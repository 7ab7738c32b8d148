//! The line parser both drivers share: one call per line, no allocation on
//! success. It follows the token rules of Prometheus's `promlex.l` and
//! `openmetricslex.l` and words its errors the way `promparse.go` and
//! `openmetricsparse.go` do (`expected label name, got "x" ("INVALID") while
//! parsing: "..."`). One deliberate difference: a raw newline inside a quoted
//! label value always ends the line here (Prometheus's text lexer lets it run
//! on); no client library emits one.

use super::float::{go_f, parse_float, parse_int};
use super::{
    Entry, EscapeRules, Escaped, Exemplar, Format, MetricType, ParseError, SeriesLine, NORMAL_NAN,
};

const M_START: u8 = 1; // [a-zA-Z_:]
const M_CHAR: u8 = 2; // [a-zA-Z0-9_:]
const L_START: u8 = 4; // [a-zA-Z_]
const L_CHAR: u8 = 8; // [a-zA-Z0-9_]

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut v = 0;
        if alpha || b == b':' {
            v |= M_START | M_CHAR;
        }
        if digit {
            v |= M_CHAR | L_CHAR;
        }
        if alpha {
            v |= L_START | L_CHAR;
        }
        t[c] = v;
        c += 1;
    }
    t
};

#[inline]
fn is_name_start(c: u8) -> bool {
    CLASS[c as usize] & M_START != 0
}

#[inline]
fn is_name_char(c: u8) -> bool {
    CLASS[c as usize] & M_CHAR != 0
}

#[inline]
fn is_label_start(c: u8) -> bool {
    CLASS[c as usize] & L_START != 0
}

#[inline]
pub(crate) fn is_label_char(c: u8) -> bool {
    CLASS[c as usize] & L_CHAR != 0
}

#[inline]
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

#[inline]
fn skip_blank(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_blank(b[i]) {
        i += 1;
    }
    i
}

#[inline]
fn scan_name(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    i
}

#[inline]
fn scan_label_name(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_label_char(b[i]) {
        i += 1;
    }
    i
}

/// Scans a quoted string starting at the opening quote; returns the index
/// after the closing quote.
#[inline]
fn scan_quoted(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        let off = memchr::memchr2(b'"', b'\\', &b[i..])?;
        i += off;
        if b[i] == b'"' {
            return Some(i + 1);
        }
        // A backslash escapes whatever follows it (the lexer's `\\.`).
        i += 2;
        if i > b.len() {
            return None;
        }
    }
}

/// Go's `%q` for a byte string: valid UTF-8 quoted as `strconv.Quote`,
/// invalid bytes as `\xNN`.
pub(crate) use vigil_model::gofmt::quote_bytes as quote;

/// Lexer state at an error, to name the offending token as Prometheus does.
#[derive(Debug, Clone, Copy)]
enum Ctx {
    Start,
    MetaName,
    AfterName,
    Labels,
    LValue,
    Timestamp,
    ExemplarValue,
    ExemplarTimestamp,
}

#[derive(Debug)]
pub(crate) struct LineParser {
    format: Format,
    line: usize,
    eof: bool,
}

impl LineParser {
    pub(crate) fn new(format: Format) -> Self {
        LineParser {
            format,
            line: 0,
            eof: false,
        }
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }

    pub(crate) fn line(&self) -> usize {
        self.line
    }

    /// Checks the end of the body.
    pub(crate) fn finish(&self) -> Result<(), ParseError> {
        if self.format == Format::OpenMetrics && !self.eof {
            return Err(ParseError {
                line: self.line.max(1),
                msg: "data does not end with # EOF".to_string(),
            });
        }
        Ok(())
    }

    /// Parses one line (without its `\n`). `terminated` is false only for a
    /// final line that had no newline. `Ok(None)` for lines that carry no
    /// entry (blank lines in the text format, OpenMetrics `# EOF`).
    pub(crate) fn parse_line<'a>(
        &mut self,
        b: &'a [u8],
        terminated: bool,
    ) -> Result<Option<Entry<'a>>, ParseError> {
        self.line += 1;
        match self.format {
            Format::PrometheusText => self.text_line(b),
            Format::OpenMetrics => {
                if self.eof {
                    return Err(self.msg("unexpected data after # EOF".to_string()));
                }
                if !terminated && b != b"# EOF" {
                    return Err(self.msg("data does not end with # EOF".to_string()));
                }
                self.om_line(b)
            }
        }
    }

    fn msg(&self, msg: String) -> ParseError {
        ParseError {
            line: self.line,
            msg,
        }
    }

    /// `{exp}, got "tok" ("KIND") while parsing: "line so far"`.
    fn tok_err(&self, b: &[u8], start: usize, pos: usize, exp: &str, ctx: Ctx) -> ParseError {
        let (kind, end) = self.token_at(b, pos, ctx);
        let got_end = (end + 1).min(b.len());
        let mut got = b[pos.min(b.len())..got_end].to_vec();
        let mut parsing = b[start.min(got_end)..got_end].to_vec();
        if end + 1 > b.len() {
            got.push(b'\n');
            parsing.push(b'\n');
        }
        self.msg(format!(
            "{exp}, got {} ({}) while parsing: {}",
            quote(&got),
            quote(kind.as_bytes()),
            quote(&parsing)
        ))
    }

    /// Which token the lexer would see at `pos`, and where it ends.
    fn token_at(&self, b: &[u8], pos: usize, ctx: Ctx) -> (&'static str, usize) {
        let om = self.format == Format::OpenMetrics;
        let len = b.len();
        let Some(&c) = b.get(pos) else {
            return match ctx {
                Ctx::Timestamp | Ctx::ExemplarTimestamp => ("LINEBREAK", len),
                _ => ("INVALID", len),
            };
        };
        let invalid = ("INVALID", pos);
        let run = |from: usize, stop: &dyn Fn(u8) -> bool| {
            let mut i = from;
            while i < len && !stop(b[i]) {
                i += 1;
            }
            i
        };
        match ctx {
            Ctx::Start | Ctx::MetaName => {
                if is_name_start(c) {
                    ("MNAME", scan_name(b, pos))
                } else {
                    invalid
                }
            }
            Ctx::AfterName => {
                if c == b'{' {
                    ("BOPEN", pos + 1)
                } else if om {
                    if c == b' ' && pos + 1 < len && b[pos + 1] != b' ' {
                        ("VALUE", run(pos + 1, &|x| x == b' '))
                    } else {
                        invalid
                    }
                } else if is_blank(c) {
                    ("WHITESPACE", skip_blank(b, pos))
                } else {
                    ("VALUE", run(pos, &|x| x == b'{' || is_blank(x)))
                }
            }
            Ctx::Labels => match c {
                b'}' => ("BCLOSE", pos + 1),
                b'=' => ("EQUAL", pos + 1),
                b',' => ("COMMA", pos + 1),
                c if is_label_start(c) => ("LNAME", scan_label_name(b, pos)),
                _ => invalid,
            },
            Ctx::LValue => match scan_quoted(b, pos) {
                Some(end) if c == b'"' => ("LVALUE", end),
                _ => invalid,
            },
            Ctx::Timestamp | Ctx::ExemplarTimestamp | Ctx::ExemplarValue => {
                if om {
                    if c == b' ' && pos + 1 < len && b[pos + 1] != b' ' {
                        let kind = match ctx {
                            Ctx::ExemplarValue => "VALUE",
                            _ if b[pos..].starts_with(b" # {") => "COMMENT",
                            _ => "TIMESTAMP",
                        };
                        (kind, run(pos + 1, &|x| x == b' '))
                    } else {
                        invalid
                    }
                } else if c.is_ascii_digit() {
                    ("TIMESTAMP", run(pos, &|x| !x.is_ascii_digit()))
                } else {
                    invalid
                }
            }
        }
    }

    // ---- Prometheus text format 0.0.4 -------------------------------------

    fn text_line<'a>(&mut self, b: &'a [u8]) -> Result<Option<Entry<'a>>, ParseError> {
        let i = skip_blank(b, 0);
        let Some(&c) = b.get(i) else {
            return Ok(None);
        };
        if c == b'#' {
            return self.text_comment(b, i).map(Some);
        }
        if is_name_start(c) {
            return self.text_series(b, i).map(|s| Some(Entry::Series(s)));
        }
        Err(self.tok_err(b, 0, i, "expected a valid start token", Ctx::Start))
    }

    fn text_comment<'a>(&mut self, b: &'a [u8], hash: usize) -> Result<Entry<'a>, ParseError> {
        let comment = Entry::Comment(&b[hash + 1..]);
        let k = skip_blank(b, hash + 1);
        if k == hash + 1 {
            return Ok(comment);
        }
        let rest = &b[k..];
        let (is_help, kw) = if rest.starts_with(b"HELP") {
            (true, "HELP")
        } else if rest.starts_with(b"TYPE") {
            (false, "TYPE")
        } else {
            return Ok(comment);
        };
        let after_kw = k + 4;
        let n = skip_blank(b, after_kw);
        if n == after_kw {
            // `# HELPFUL` is an ordinary comment.
            return Ok(comment);
        }
        if n >= b.len() || !is_name_start(b[n]) {
            return Err(self.tok_err(
                b,
                0,
                n,
                &format!("expected metric name after {kw}"),
                Ctx::MetaName,
            ));
        }
        let name_end = scan_name(b, n);
        let name = ascii(&b[n..name_end]);
        let text: &[u8] = if name_end == b.len() {
            b""
        } else if is_blank(b[name_end]) {
            &b[name_end + 1..]
        } else {
            return Err(self.msg(format!(
                "expected text in {kw}, got {}",
                quote(&b[name_end..])
            )));
        };
        if is_help {
            let Ok(text) = std::str::from_utf8(text) else {
                return Err(self.msg(format!(
                    "help text {} is not a valid utf8 string",
                    quote(text)
                )));
            };
            Ok(Entry::Help {
                name,
                text: Escaped {
                    raw: text,
                    rules: EscapeRules::TextHelp,
                },
            })
        } else {
            match MetricType::parse(text, self.format) {
                Some(kind) => Ok(Entry::Type { name, kind }),
                None => Err(self.msg(format!("invalid metric type {}", quote(text)))),
            }
        }
    }

    fn text_series<'a>(&self, b: &'a [u8], start: usize) -> Result<SeriesLine<'a>, ParseError> {
        let len = b.len();
        let name_end = scan_name(b, start);
        let mut i = skip_blank(b, name_end);
        let (mut lab_from, mut lab_to, mut series_end) = (0, 0, name_end);
        if i < len && b[i] == b'{' {
            lab_from = i + 1;
            i = self.text_labels(b, start, i + 1)?;
            lab_to = i - 1;
            series_end = i;
            i = skip_blank(b, i);
        }
        let v_start = i;
        while i < len && !matches!(b[i], b'{' | b' ' | b'\t') {
            i += 1;
        }
        if i == v_start {
            return Err(self.tok_err(
                b,
                start,
                v_start,
                "expected value after metric",
                Ctx::AfterName,
            ));
        }
        let value = self.value(b, start, v_start, i)?;
        i = skip_blank(b, i);
        let mut timestamp = None;
        if i < len {
            if !b[i].is_ascii_digit() {
                return Err(self.tok_err(
                    b,
                    start,
                    i,
                    "expected timestamp or new record",
                    Ctx::Timestamp,
                ));
            }
            let t_start = i;
            while i < len && b[i].is_ascii_digit() {
                i += 1;
            }
            let t = parse_int(&b[t_start..i])
                .map_err(|e| self.msg(format!("{e} while parsing: {}", quote(&b[start..i]))))?;
            timestamp = Some(t);
            i = skip_blank(b, i);
            if i < len {
                return Err(self.tok_err(
                    b,
                    start,
                    i,
                    "expected next entry after timestamp",
                    Ctx::Timestamp,
                ));
            }
        }
        let series = self.series_str(&b[start..series_end])?;
        Ok(SeriesLine {
            series,
            name: &series[..name_end - start],
            labels: &series[lab_from.saturating_sub(start).min(series.len())
                ..lab_to.saturating_sub(start).min(series.len())],
            value,
            timestamp,
            exemplar: None,
        })
    }

    /// Labels of the text format: blanks allowed between tokens, the comma
    /// after a pair optional, a trailing comma allowed. Returns the index
    /// after `}`.
    fn text_labels(&self, b: &[u8], start: usize, mut i: usize) -> Result<usize, ParseError> {
        let len = b.len();
        loop {
            i = skip_blank(b, i);
            if i < len && b[i] == b'}' {
                return Ok(i + 1);
            }
            if i >= len || !is_label_start(b[i]) {
                return Err(self.tok_err(b, start, i, "expected label name", Ctx::Labels));
            }
            i = skip_blank(b, scan_label_name(b, i));
            if i >= len || b[i] != b'=' {
                return Err(self.tok_err(b, start, i, "expected equal", Ctx::Labels));
            }
            i = skip_blank(b, i + 1);
            if i >= len || b[i] != b'"' {
                return Err(self.tok_err(b, start, i, "expected label value", Ctx::LValue));
            }
            i = match scan_quoted(b, i) {
                Some(end) => end,
                None => return Err(self.tok_err(b, start, i, "expected label value", Ctx::LValue)),
            };
            i = skip_blank(b, i);
            if i < len && b[i] == b',' {
                i += 1;
            }
        }
    }

    /// The series text as `&str`; only label values can hold non-ASCII bytes,
    /// so a failure names the offending value.
    fn series_str<'a>(&self, s: &'a [u8]) -> Result<&'a str, ParseError> {
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s),
            Err(e) => {
                let bad = e.valid_up_to();
                let open = s[..bad].iter().rposition(|&c| c == b'"').unwrap_or(0);
                let close = scan_quoted(s, open).unwrap_or(s.len());
                Err(self.msg(format!(
                    "invalid UTF-8 label value: {}",
                    quote(&s[open..close])
                )))
            }
        }
    }

    fn value(&self, b: &[u8], start: usize, from: usize, to: usize) -> Result<f64, ParseError> {
        match parse_float(&b[from..to]) {
            Ok(v) if v.is_nan() => Ok(NORMAL_NAN),
            Ok(v) => Ok(v),
            Err(e) => Err(self.msg(format!("{e} while parsing: {}", quote(&b[start..to])))),
        }
    }

    // ---- OpenMetrics 1.0 ---------------------------------------------------

    fn om_line<'a>(&mut self, b: &'a [u8]) -> Result<Option<Entry<'a>>, ParseError> {
        match b.first() {
            Some(b'#') => self.om_comment(b),
            Some(&c) if is_name_start(c) => self.om_series(b).map(|s| Some(Entry::Series(s))),
            _ => Err(self.tok_err(b, 0, 0, "expected a valid start token", Ctx::Start)),
        }
    }

    fn om_comment<'a>(&mut self, b: &'a [u8]) -> Result<Option<Entry<'a>>, ParseError> {
        let kw = if b.starts_with(b"# HELP ") {
            "HELP"
        } else if b.starts_with(b"# TYPE ") {
            "TYPE"
        } else if b.starts_with(b"# UNIT ") {
            "UNIT"
        } else if b.starts_with(b"# EOF") {
            if b.len() != 5 {
                return Err(self.msg("unexpected data after # EOF".to_string()));
            }
            self.eof = true;
            return Ok(None);
        } else {
            return Err(self.tok_err(b, 0, 0, "expected a valid start token", Ctx::Start));
        };
        let n = 7;
        if n >= b.len() || !is_name_start(b[n]) {
            return Err(self.tok_err(
                b,
                0,
                n,
                &format!("expected metric name after {kw}"),
                Ctx::MetaName,
            ));
        }
        let name_end = scan_name(b, n);
        if name_end >= b.len() || b[name_end] != b' ' {
            return Err(self.msg(format!("expected text in {kw}")));
        }
        let name = ascii(&b[n..name_end]);
        let text = &b[name_end + 1..];
        match kw {
            "HELP" => {
                let Ok(text) = std::str::from_utf8(text) else {
                    return Err(self.msg(format!(
                        "help text {} is not a valid utf8 string",
                        quote(text)
                    )));
                };
                Ok(Some(Entry::Help {
                    name,
                    text: Escaped {
                        raw: text,
                        rules: EscapeRules::LabelValue,
                    },
                }))
            }
            "TYPE" => match MetricType::parse(text, self.format) {
                Some(kind) => Ok(Some(Entry::Type { name, kind })),
                None => Err(self.msg(format!("invalid metric type {}", quote(text)))),
            },
            _ => {
                let unit = std::str::from_utf8(text).unwrap_or("\u{fffd}");
                let suffix = name.len() > unit.len()
                    && name.ends_with(unit)
                    && name.as_bytes()[name.len() - unit.len() - 1] == b'_';
                if !unit.is_empty() && !suffix {
                    return Err(self.msg(format!(
                        "unit {} not a suffix of metric {}",
                        quote(text),
                        quote(name.as_bytes())
                    )));
                }
                Ok(Some(Entry::Unit { name, unit }))
            }
        }
    }

    fn om_series<'a>(&self, b: &'a [u8]) -> Result<SeriesLine<'a>, ParseError> {
        let len = b.len();
        let name_end = scan_name(b, 0);
        let mut i = name_end;
        let (mut lab_from, mut lab_to) = (0, 0);
        if i < len && b[i] == b'{' {
            lab_from = i + 1;
            i = self.om_labels(b, 0, i + 1)?;
            lab_to = i - 1;
        }
        let series_end = i;
        let (value, next) =
            self.om_number(b, 0, i, "expected value after metric", Ctx::AfterName)?;
        let value = if value.is_nan() { NORMAL_NAN } else { value };
        i = next;
        let mut timestamp = None;
        let mut exemplar = None;
        if i < len {
            if b[i..].starts_with(b" # {") {
                exemplar = Some(self.om_exemplar(b, i + 4)?);
            } else if b[i] == b' ' && i + 1 < len && b[i + 1] != b' ' {
                let (t, next) = self.om_timestamp(b, i, "", Ctx::Timestamp, "invalid timestamp")?;
                timestamp = Some(t);
                i = next;
                if i < len {
                    if b[i..].starts_with(b" # {") {
                        exemplar = Some(self.om_exemplar(b, i + 4)?);
                    } else {
                        return Err(self.tok_err(
                            b,
                            0,
                            i,
                            "expected next entry after timestamp",
                            Ctx::Timestamp,
                        ));
                    }
                }
            } else {
                return Err(self.tok_err(
                    b,
                    0,
                    i,
                    "expected timestamp or # symbol",
                    Ctx::Timestamp,
                ));
            }
        }
        let series = self.series_str(&b[..series_end])?;
        Ok(SeriesLine {
            series,
            name: &series[..name_end],
            labels: &series[lab_from.min(series.len())..lab_to.min(series.len())],
            value,
            timestamp,
            exemplar,
        })
    }

    /// ` <number>` at `i` (exactly one space, then a token up to the next
    /// space); returns the number and the index after the token.
    fn om_number(
        &self,
        b: &[u8],
        start: usize,
        i: usize,
        exp: &str,
        ctx: Ctx,
    ) -> Result<(f64, usize), ParseError> {
        let len = b.len();
        if i >= len || b[i] != b' ' || i + 1 >= len || b[i + 1] == b' ' {
            return Err(self.tok_err(b, start, i, exp, ctx));
        }
        let from = i + 1;
        let to = memchr::memchr(b' ', &b[from..]).map_or(len, |n| from + n);
        let v = parse_float(&b[from..to])
            .map_err(|e| self.msg(format!("{e} while parsing: {}", quote(&b[start..to]))))?;
        Ok((v, to))
    }

    /// ` <seconds>` at `i` as milliseconds. Plain decimals are converted
    /// exactly (Prometheus's `int64(ts*1000)` truncates, so `0.001` could
    /// land on 0 ms through float error); other spellings go through the
    /// float parser with the same truncation.
    fn om_timestamp(
        &self,
        b: &[u8],
        i: usize,
        exp: &str,
        ctx: Ctx,
        invalid: &str,
    ) -> Result<(i64, usize), ParseError> {
        let len = b.len();
        if i < len && b[i] == b' ' {
            let from = i + 1;
            let to = memchr::memchr(b' ', &b[from..]).map_or(len, |n| from + n);
            if let Some(ms) = exact_millis(&b[from..to]) {
                return Ok((ms, to));
            }
        }
        let (t, next) = self.om_number(b, 0, i, exp, ctx)?;
        if !t.is_finite() {
            return Err(self.msg(format!("{invalid} {}", go_f(t))));
        }
        Ok(((t * 1000.0) as i64, next))
    }

    /// OpenMetrics labels: no blanks, a comma or `}` after every pair (a
    /// trailing comma is accepted, as Prometheus does).
    fn om_labels(&self, b: &[u8], start: usize, mut i: usize) -> Result<usize, ParseError> {
        let len = b.len();
        loop {
            if i < len && b[i] == b'}' {
                return Ok(i + 1);
            }
            if i >= len || !is_label_start(b[i]) {
                return Err(self.tok_err(b, start, i, "expected label name", Ctx::Labels));
            }
            i = scan_label_name(b, i);
            if i >= len || b[i] != b'=' {
                return Err(self.tok_err(b, start, i, "expected equal", Ctx::Labels));
            }
            i += 1;
            if i >= len || b[i] != b'"' {
                return Err(self.tok_err(b, start, i, "expected label value", Ctx::LValue));
            }
            i = match scan_quoted(b, i) {
                Some(end) => end,
                None => return Err(self.tok_err(b, start, i, "expected label value", Ctx::LValue)),
            };
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => {
                    return Err(self.tok_err(
                        b,
                        start,
                        i,
                        "expected comma or brace close",
                        Ctx::Labels,
                    ))
                }
            }
        }
    }

    /// The exemplar after ` # {`: labels, value, optional timestamp.
    fn om_exemplar<'a>(&self, b: &'a [u8], from: usize) -> Result<Exemplar<'a>, ParseError> {
        let len = b.len();
        let close = self.om_labels(b, 0, from)?;
        let labels = std::str::from_utf8(&b[from..close - 1]).map_err(|_| {
            self.msg(format!(
                "invalid UTF-8 label value: {}",
                quote(&b[from..close - 1])
            ))
        })?;
        let (value, mut i) = self.om_number(
            b,
            0,
            close,
            "expected value after exemplar labels",
            Ctx::ExemplarValue,
        )?;
        let value = if value.is_nan() { NORMAL_NAN } else { value };
        let mut timestamp = None;
        if i < len {
            let (t, next) = self.om_timestamp(
                b,
                i,
                "expected timestamp or comment",
                Ctx::ExemplarTimestamp,
                "invalid exemplar timestamp",
            )?;
            timestamp = Some(t);
            i = next;
            if i < len {
                return Err(self.tok_err(
                    b,
                    0,
                    i,
                    "expected next entry after exemplar timestamp",
                    Ctx::ExemplarTimestamp,
                ));
            }
        }
        Ok(Exemplar {
            labels,
            value,
            timestamp,
        })
    }
}

/// Names are ASCII by construction (checked by the character classes).
fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// `-?\d{1,15}(\.\d+)?` seconds as exact milliseconds (truncated).
fn exact_millis(s: &[u8]) -> Option<i64> {
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match memchr::memchr(b'.', s) {
        Some(d) => (&s[..d], &s[d + 1..]),
        None => (s, &b""[..]),
    };
    if int.is_empty() || int.len() > 15 || (s.len() > int.len() && frac.is_empty()) {
        return None;
    }
    if !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let mut ms: i64 = 0;
    for &c in int {
        ms = ms * 10 + (c - b'0') as i64;
    }
    for k in 0..3 {
        ms = ms * 10 + frac.get(k).map_or(0, |&c| (c - b'0') as i64);
    }
    Some(if neg { -ms } else { ms })
}
