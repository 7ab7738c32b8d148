//! Bad-regex messages in Go's words.
//!
//! Prometheus reports a bad `=~` value with Go's `regexp/syntax` error,
//! e.g. ``error parsing regexp: missing closing ): `(foo` ``. The matcher
//! compiles with Rust's regex crate, so the error is re-derived here from
//! `regex_syntax`'s error kind and span and phrased as Go phrases it.

use regex_syntax::ast::ErrorKind as AstKind;
use regex_syntax::hir::ErrorKind as HirKind;
use vigil_model::MatcherError;

/// The Prometheus message for a regex `value` that failed to compile.
pub(crate) fn message(value: &str, fallback: &MatcherError) -> String {
    match go_error(value) {
        Some((code, expr)) => format!("error parsing regexp: {code}: `{expr}`"),
        None => fallback.to_string(),
    }
}

fn go_error(value: &str) -> Option<(&'static str, String)> {
    let span_text = |s: &regex_syntax::ast::Span| {
        value
            .get(s.start.offset..s.end.offset)
            .unwrap_or("")
            .to_string()
    };
    let ast = match regex_syntax::ast::parse::Parser::new().parse(value) {
        Ok(ast) => ast,
        Err(e) => {
            let span = e.span();
            let rest = || value.get(span.start.offset..).unwrap_or("").to_string();
            return Some(match e.kind() {
                AstKind::GroupUnclosed => ("missing closing )", value.to_string()),
                AstKind::GroupUnopened => ("unexpected )", value.to_string()),
                AstKind::ClassUnclosed => ("missing closing ]", rest()),
                AstKind::ClassRangeInvalid
                | AstKind::ClassRangeLiteral
                | AstKind::ClassEscapeInvalid => ("invalid character class range", span_text(span)),
                AstKind::RepetitionMissing => (
                    "missing argument to repetition operator",
                    repetition_op(&rest()),
                ),
                AstKind::RepetitionCountInvalid => ("invalid repeat count", span_text(span)),
                AstKind::NestLimitExceeded(_) => ("expression nests too deeply", value.to_string()),
                AstKind::EscapeUnexpectedEof => {
                    ("trailing backslash at end of expression", String::new())
                }
                AstKind::EscapeUnrecognized
                | AstKind::EscapeHexEmpty
                | AstKind::EscapeHexInvalid
                | AstKind::EscapeHexInvalidDigit
                | AstKind::DecimalInvalid
                | AstKind::UnsupportedBackreference => ("invalid escape sequence", span_text(span)),
                AstKind::GroupNameDuplicate { .. }
                | AstKind::GroupNameEmpty
                | AstKind::GroupNameInvalid
                | AstKind::GroupNameUnexpectedEof => ("invalid named capture", span_text(span)),
                AstKind::UnicodeClassInvalid => ("invalid character class range", span_text(span)),
                _ => ("invalid or unsupported Perl syntax", span_text(span)),
            });
        }
    };
    match regex_syntax::hir::translate::Translator::new().translate(value, &ast) {
        Ok(_) => None,
        Err(e) => {
            let span = e.span();
            let text = value
                .get(span.start.offset..span.end.offset)
                .unwrap_or("")
                .to_string();
            Some(match e.kind() {
                HirKind::UnicodePropertyNotFound
                | HirKind::UnicodePropertyValueNotFound
                | HirKind::UnicodePerlClassNotFound => ("invalid character class range", text),
                _ => ("invalid or unsupported Perl syntax", text),
            })
        }
    }
}

/// The repetition operator at the start of `s`: `*`, `+?`, `{2,3}`, ...
fn repetition_op(s: &str) -> String {
    let len = if s.starts_with('{') {
        s.find('}').map_or(s.len(), |i| i + 1)
    } else {
        s.chars().next().map_or(0, char::len_utf8)
    };
    let lazy = usize::from(s[len..].starts_with('?'));
    s[..len + lazy].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(v: &str) -> String {
        message(v, &MatcherError::BadRegex("fallback".into()))
    }

    #[test]
    fn go_style_messages() {
        assert_eq!(
            msg("(foo"),
            "error parsing regexp: missing closing ): `(foo`"
        );
        assert_eq!(msg("foo)"), "error parsing regexp: unexpected ): `foo)`");
        assert_eq!(msg("a[b"), "error parsing regexp: missing closing ]: `[b`");
        assert_eq!(
            msg("*a"),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert_eq!(
            msg("[b-a]"),
            "error parsing regexp: invalid character class range: `b-a`"
        );
        assert_eq!(
            msg("a\\"),
            "error parsing regexp: trailing backslash at end of expression: ``"
        );
        assert_eq!(
            msg("(?=a)"),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"
        );
    }
}
