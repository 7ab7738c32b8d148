//! Parse errors in Prometheus's format: `line:column: parse error: message`.

use std::fmt;

/// A PromQL parse error. `Display` prints exactly what Prometheus prints
/// (Grafana shows it verbatim), e.g. `1:8: parse error: unexpected right
/// bracket ']'`. Only the first error of a query is reported, as in
/// Prometheus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the query where the error starts (for a caret).
    pub start: usize,
    /// Byte offset where the offending range ends.
    pub end: usize,
    /// 1-based line and 1-based byte column of `start`; `None` when the
    /// query is empty (Prometheus prints "unknown position").
    pub line_col: Option<(usize, usize)>,
    /// The message after `parse error: `.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(input: &str, start: usize, end: usize, message: impl Into<String>) -> Self {
        let start = start.min(input.len());
        let end = end.clamp(start, input.len());
        let line_col = if input.is_empty() {
            None
        } else {
            let before = &input.as_bytes()[..start];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            let col = match before.iter().rposition(|&b| b == b'\n') {
                Some(nl) => start - nl,
                None => start + 1,
            };
            Some((line, col))
        };
        ParseError {
            start,
            end,
            line_col,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_col {
            Some((line, col)) => write!(f, "{line}:{col}: parse error: {}", self.message),
            None => write!(f, "unknown position: parse error: {}", self.message),
        }
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_line_and_byte_column() {
        assert_eq!(
            ParseError::new("foo]", 3, 4, "x").to_string(),
            "1:4: parse error: x"
        );
        assert_eq!(
            ParseError::new("a +\n  b ]", 8, 9, "x").to_string(),
            "2:5: parse error: x"
        );
        assert_eq!(
            ParseError::new("", 0, 0, "x").to_string(),
            "unknown position: parse error: x"
        );
        assert_eq!(
            ParseError::new("ab", 2, 2, "x").to_string(),
            "1:3: parse error: x"
        );
    }
}
