//! The PromQL lexer: turns a query into tokens with byte positions.
//!
//! It is a state machine that mirrors Prometheus 2.53's lexer closely,
//! because the lexer decides several error messages on its own (unclosed
//! parentheses, bad durations, bad escapes) and their text and position are
//! part of the compatibility contract. It knows nothing about the grammar.

use crate::ast::AggregateOp;

/// Token kinds. Keywords are recognised case-insensitively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum T {
    Eof,
    Comma,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Colon,
    /// `=` (label matching).
    Eql,
    EqlRegex,
    NeqRegex,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    /// `==`
    Eqlc,
    Neq,
    Lte,
    Lss,
    Gte,
    Gtr,
    At,
    Land,
    Lor,
    Lunless,
    Atan2,
    Agg(AggregateOp),
    Offset,
    By,
    Without,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Bool,
    Start,
    End,
    Identifier,
    MetricIdentifier,
    Number,
    Str,
    Duration,
}

impl T {
    /// Prometheus's `IsOperator` (the `<op:...>` rendering in messages).
    fn is_operator(self) -> bool {
        matches!(
            self,
            T::Add
                | T::Div
                | T::Eqlc
                | T::EqlRegex
                | T::Gte
                | T::Gtr
                | T::Land
                | T::Lor
                | T::Lss
                | T::Lte
                | T::Lunless
                | T::Mod
                | T::Mul
                | T::Neq
                | T::NeqRegex
                | T::Pow
                | T::Sub
                | T::At
                | T::Atan2
        )
    }

    /// Prometheus's `IsKeyword` (the `<...>` rendering in messages).
    fn is_keyword(self) -> bool {
        matches!(
            self,
            T::Bool
                | T::By
                | T::GroupLeft
                | T::GroupRight
                | T::Ignoring
                | T::Offset
                | T::On
                | T::Without
        )
    }
}

/// A token: kind and byte range in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: T,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// Describes the token as Prometheus does after "unexpected ".
    pub fn describe(&self, input: &str) -> String {
        let val = &input[self.start..self.end];
        match self.kind {
            T::Eof => "end of input".to_string(),
            T::Identifier => format!("identifier {}", vigil_model::gofmt::quote(val)),
            T::MetricIdentifier => format!("metric identifier {}", vigil_model::gofmt::quote(val)),
            T::Str => format!("string {}", short_quote(val)),
            T::Number => format!("number {}", short_quote(val)),
            T::Duration => format!("duration {}", short_quote(val)),
            k if k.is_keyword() => format!("<{val}>"),
            k if k.is_operator() => format!("<op:{val}>"),
            T::Agg(_) => format!("<aggr:{val}>"),
            _ => short_quote(val),
        }
    }
}

/// Go's `%.10q...` for long values, `%q` otherwise.
fn short_quote(val: &str) -> String {
    if val.len() > 10 {
        let cut: String = val.chars().take(10).collect();
        format!("{}...", vigil_model::gofmt::quote(&cut))
    } else {
        vigil_model::gofmt::quote(val)
    }
}

/// A lexer error: the message and the byte offset Prometheus reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LexError {
    pub pos: usize,
    pub msg: String,
}

/// Where the next call to `next_token` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Statements,
    /// Directly after `[`: a duration must follow.
    Duration,
    /// After EOF or an error.
    Done,
}

pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    /// Byte width of the last char read by `next`, for `backup`.
    width: usize,
    state: State,
    paren_depth: i64,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    error: Option<LexError>,
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_alnum(c: char) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

const DIGITS: &str = "0123456789";
const HEX_DIGITS: &str = "0123456789abcdefABCDEF";

/// Keyword lookup, case-insensitive, as Prometheus's `key` map.
fn keyword(word: &str) -> Option<T> {
    const KEYWORDS: &[(&str, T)] = &[
        ("and", T::Land),
        ("or", T::Lor),
        ("unless", T::Lunless),
        ("atan2", T::Atan2),
        ("sum", T::Agg(AggregateOp::Sum)),
        ("avg", T::Agg(AggregateOp::Avg)),
        ("count", T::Agg(AggregateOp::Count)),
        ("min", T::Agg(AggregateOp::Min)),
        ("max", T::Agg(AggregateOp::Max)),
        ("group", T::Agg(AggregateOp::Group)),
        ("stddev", T::Agg(AggregateOp::Stddev)),
        ("stdvar", T::Agg(AggregateOp::Stdvar)),
        ("topk", T::Agg(AggregateOp::Topk)),
        ("bottomk", T::Agg(AggregateOp::Bottomk)),
        ("count_values", T::Agg(AggregateOp::CountValues)),
        ("quantile", T::Agg(AggregateOp::Quantile)),
        ("offset", T::Offset),
        ("by", T::By),
        ("without", T::Without),
        ("on", T::On),
        ("ignoring", T::Ignoring),
        ("group_left", T::GroupLeft),
        ("group_right", T::GroupRight),
        ("bool", T::Bool),
        ("start", T::Start),
        ("end", T::End),
        ("inf", T::Number),
        ("nan", T::Number),
    ];
    if word.len() > 12 {
        return None;
    }
    KEYWORDS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(word))
        .map(|&(_, t)| t)
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Self {
        Lexer {
            input,
            pos: 0,
            start: 0,
            width: 0,
            state: State::Statements,
            paren_depth: 0,
            brace_open: false,
            bracket_open: false,
            got_colon: false,
            error: None,
        }
    }

    fn next(&mut self) -> Option<char> {
        match self.input[self.pos..].chars().next() {
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                Some(c)
            }
            None => {
                self.width = 0;
                None
            }
        }
    }

    fn backup(&mut self) {
        self.pos -= self.width;
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn emit(&mut self, kind: T) -> Token {
        let t = Token {
            kind,
            start: self.start,
            end: self.pos,
        };
        self.start = self.pos;
        t
    }

    fn fail(&mut self, msg: String) -> LexError {
        let e = LexError {
            pos: self.start,
            msg,
        };
        self.state = State::Done;
        self.error = Some(e.clone());
        e
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.next();
        }
        self.start = self.pos;
    }

    /// Skips a `#` comment up to (not including) the line break.
    fn skip_comment(&mut self) {
        let rest = &self.input[self.pos..];
        let len = rest.find(['\n', '\r']).unwrap_or(rest.len());
        self.pos += len;
        self.start = self.pos;
    }

    /// The next token, comments and whitespace skipped. After EOF it keeps
    /// returning EOF; after an error it keeps returning that error.
    pub fn next_token(&mut self) -> Result<Token, LexError> {
        loop {
            let r = match self.state {
                State::Done => {
                    if let Some(e) = &self.error {
                        return Err(e.clone());
                    }
                    let end = self.input.len();
                    return Ok(Token {
                        kind: T::Eof,
                        start: end,
                        end,
                    });
                }
                State::Duration => {
                    self.state = State::Statements;
                    self.lex_duration()
                }
                State::Statements if self.brace_open => self.lex_inside_braces(),
                State::Statements => self.lex_statement(),
            };
            if let Some(t) = r? {
                return Ok(t);
            }
        }
    }

    /// One step of the top-level state; `None` when only skipping.
    fn lex_statement(&mut self) -> Result<Option<Token>, LexError> {
        if self.input[self.pos..].starts_with('#') {
            self.skip_comment();
            return Ok(None);
        }
        let Some(r) = self.next() else {
            if self.paren_depth != 0 {
                return Err(self.fail("unclosed left parenthesis".into()));
            }
            if self.bracket_open {
                return Err(self.fail("unclosed left bracket".into()));
            }
            self.state = State::Done;
            return Ok(Some(self.emit(T::Eof)));
        };
        let kind = match r {
            ',' => T::Comma,
            c if is_space(c) => {
                self.skip_spaces();
                return Ok(None);
            }
            '*' => T::Mul,
            '/' => T::Div,
            '%' => T::Mod,
            '+' => T::Add,
            '-' => T::Sub,
            '^' => T::Pow,
            '=' => match self.peek() {
                Some('=') => {
                    self.next();
                    T::Eqlc
                }
                Some('~') => {
                    return Err(self.fail("unexpected character after '=': '~'".into()));
                }
                _ => T::Eql,
            },
            '!' => match self.next() {
                Some('=') => T::Neq,
                t => {
                    let msg = format!("unexpected character after '!': {}", quote_rune(t));
                    return Err(self.fail(msg));
                }
            },
            '<' => {
                if self.peek() == Some('=') {
                    self.next();
                    T::Lte
                } else {
                    T::Lss
                }
            }
            '>' => {
                if self.peek() == Some('=') {
                    self.next();
                    T::Gte
                } else {
                    T::Gtr
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && self.peek().is_some_and(|p| p.is_ascii_digit())) =>
            {
                self.backup();
                return self.lex_number_or_duration().map(Some);
            }
            '"' | '\'' => return self.lex_string(r).map(Some),
            '`' => return self.lex_raw_string().map(Some),
            c if is_alpha(c) || c == ':' => {
                if !self.bracket_open {
                    self.backup();
                    return Ok(Some(self.lex_keyword_or_identifier()));
                }
                // Inside brackets Prometheus 2.53 treats any letter as the
                // subquery colon; kept for compatibility.
                if self.got_colon {
                    let msg = format!("unexpected colon {}", quote_rune(Some(c)));
                    return Err(self.fail(msg));
                }
                self.got_colon = true;
                T::Colon
            }
            '(' => {
                self.paren_depth += 1;
                T::LParen
            }
            ')' => {
                let t = self.emit(T::RParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return Err(self.fail("unexpected right parenthesis ')'".into()));
                }
                return Ok(Some(t));
            }
            '{' => {
                self.brace_open = true;
                T::LBrace
            }
            '[' => {
                if self.bracket_open {
                    return Err(self.fail("unexpected left bracket '['".into()));
                }
                self.got_colon = false;
                let t = self.emit(T::LBracket);
                self.skip_spaces();
                self.bracket_open = true;
                self.state = State::Duration;
                return Ok(Some(t));
            }
            ']' => {
                if !self.bracket_open {
                    return Err(self.fail("unexpected right bracket ']'".into()));
                }
                self.bracket_open = false;
                T::RBracket
            }
            '@' => T::At,
            c => {
                let msg = format!("unexpected character: {}", quote_rune(Some(c)));
                return Err(self.fail(msg));
            }
        };
        Ok(Some(self.emit(kind)))
    }

    fn lex_inside_braces(&mut self) -> Result<Option<Token>, LexError> {
        if self.input[self.pos..].starts_with('#') {
            self.skip_comment();
            return Ok(None);
        }
        let Some(r) = self.next() else {
            return Err(self.fail("unexpected end of input inside braces".into()));
        };
        let kind = match r {
            c if is_space(c) => {
                self.skip_spaces();
                return Ok(None);
            }
            c if is_alpha(c) => {
                while self.next().is_some_and(is_alnum) {}
                self.backup();
                T::Identifier
            }
            ',' => T::Comma,
            '"' | '\'' => return self.lex_string(r).map(Some),
            '`' => return self.lex_raw_string().map(Some),
            '=' => {
                if self.next() == Some('~') {
                    T::EqlRegex
                } else {
                    self.backup();
                    T::Eql
                }
            }
            '!' => match self.next() {
                Some('~') => T::NeqRegex,
                Some('=') => T::Neq,
                t => {
                    let msg = format!(
                        "unexpected character after '!' inside braces: {}",
                        quote_rune(t)
                    );
                    return Err(self.fail(msg));
                }
            },
            '{' => return Err(self.fail("unexpected left brace '{'".into())),
            '}' => {
                self.brace_open = false;
                T::RBrace
            }
            c => {
                let msg = format!(
                    "unexpected character inside braces: {}",
                    quote_rune(Some(c))
                );
                return Err(self.fail(msg));
            }
        };
        Ok(Some(self.emit(kind)))
    }

    fn lex_keyword_or_identifier(&mut self) -> Token {
        while self.next().is_some_and(|c| is_alnum(c) || c == ':') {}
        self.backup();
        let word = &self.input[self.start..self.pos];
        let kind = match keyword(word) {
            Some(k) => k,
            None if word.contains(':') => T::MetricIdentifier,
            None => T::Identifier,
        };
        self.emit(kind)
    }

    /// Right after `[`: a duration, or one of Prometheus's duration errors.
    fn lex_duration(&mut self) -> Result<Option<Token>, LexError> {
        if self.scan_number() {
            return Err(self.fail("missing unit character in duration".into()));
        }
        if !self.accept_remaining_duration() {
            let msg = format!(
                "bad duration syntax: {}",
                vigil_model::gofmt::quote(&self.input[self.start..self.pos])
            );
            return Err(self.fail(msg));
        }
        self.backup();
        Ok(Some(self.emit(T::Duration)))
    }

    fn lex_number_or_duration(&mut self) -> Result<Token, LexError> {
        if self.scan_number() {
            return Ok(self.emit(T::Number));
        }
        if self.accept_remaining_duration() {
            self.backup();
            return Ok(self.emit(T::Duration));
        }
        let msg = format!(
            "bad number or duration syntax: {}",
            vigil_model::gofmt::quote(&self.input[self.start..self.pos])
        );
        Err(self.fail(msg))
    }

    /// Consumes unit letters (and further number/unit pairs) of a duration
    /// whose leading digits were consumed. Leaves one extra char consumed.
    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept("smhdwy") {
            return false;
        }
        self.accept("s");
        while self.accept(DIGITS) {
            while self.accept(DIGITS) {}
            if !self.accept("smhdw") {
                return false;
            }
            self.accept("s");
        }
        !self.next().is_some_and(is_alnum)
    }

    /// Scans what may be a number; true when it is not followed by an
    /// alphanumeric char (the text itself is validated by the parser).
    fn scan_number(&mut self) -> bool {
        let mut digits = DIGITS;
        if self.accept("0") && self.accept("xX") {
            digits = HEX_DIGITS;
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if self.accept("eE") {
            self.accept("+-");
            self.accept_run(DIGITS);
        }
        !self.peek().is_some_and(is_alnum)
    }

    fn lex_string(&mut self, quote: char) -> Result<Token, LexError> {
        loop {
            match self.next() {
                Some('\\') => self.lex_escape(quote)?,
                None | Some('\n') => return Err(self.fail("unterminated quoted string".into())),
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        Ok(self.emit(T::Str))
    }

    fn lex_raw_string(&mut self) -> Result<Token, LexError> {
        loop {
            match self.next() {
                None => return Err(self.fail("unterminated raw string".into())),
                Some('`') => break,
                Some(_) => {}
            }
        }
        Ok(self.emit(T::Str))
    }

    /// Validates one escape sequence; the backslash was consumed.
    fn lex_escape(&mut self, quote: char) -> Result<(), LexError> {
        let mut ch = self.next();
        let (mut n, base, max): (u32, u32, u32) = match ch {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => return Ok(()),
            Some(c) if c == quote => return Ok(()),
            Some('0'..='7') => (3, 8, 255),
            Some('x') => {
                ch = self.next();
                (2, 16, 255)
            }
            Some('u') => {
                ch = self.next();
                (4, 16, 0x10FFFF)
            }
            Some('U') => {
                ch = self.next();
                (8, 16, 0x10FFFF)
            }
            None => return Err(self.fail("escape sequence not terminated".into())),
            Some(c) => {
                let msg = format!("unknown escape sequence {}", go_rune_u(c));
                return Err(self.fail(msg));
            }
        };
        let mut x: u32 = 0;
        while n > 0 {
            let d = ch.and_then(|c| c.to_digit(16)).unwrap_or(16);
            if d >= base {
                let msg = match ch {
                    None => "escape sequence not terminated".to_string(),
                    Some(c) => format!("illegal character {} in escape sequence", go_rune_u(c)),
                };
                return Err(self.fail(msg));
            }
            x = x.wrapping_mul(base).wrapping_add(d);
            n -= 1;
            if n > 0 {
                ch = self.next();
            }
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            return Err(self.fail("escape sequence is an invalid Unicode code point".into()));
        }
        Ok(())
    }
}

/// Go's `%q` for a rune; EOF prints as the replacement character.
pub(crate) fn quote_rune(r: Option<char>) -> String {
    let c = r.unwrap_or('\u{FFFD}');
    match c {
        '\'' => "'\\''".to_string(),
        '"' => "'\"'".to_string(),
        _ => {
            let q = vigil_model::gofmt::quote(c.encode_utf8(&mut [0; 4]));
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

/// Go's `%#U`: `U+0063 'c'`, without the char when it is not printable.
fn go_rune_u(c: char) -> String {
    if vigil_model::gofmt::is_print(c) {
        format!("U+{:04X} '{}'", c as u32, c)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<T> {
        let mut l = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let t = l.next_token().expect("lexes");
            if t.kind == T::Eof {
                return out;
            }
            out.push(t.kind);
        }
    }

    fn lex_err(input: &str) -> LexError {
        let mut l = Lexer::new(input);
        loop {
            match l.next_token() {
                Ok(t) if t.kind == T::Eof => panic!("{input:?} lexed without error"),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn operators_and_keywords() {
        assert_eq!(
            kinds("a == b != c >= d <= e < f > g + - * / % ^ and OR Unless atan2 @"),
            vec![
                T::Identifier,
                T::Eqlc,
                T::Identifier,
                T::Neq,
                T::Identifier,
                T::Gte,
                T::Identifier,
                T::Lte,
                T::Identifier,
                T::Lss,
                T::Identifier,
                T::Gtr,
                T::Identifier,
                T::Add,
                T::Sub,
                T::Mul,
                T::Div,
                T::Mod,
                T::Pow,
                T::Land,
                T::Lor,
                T::Lunless,
                T::Atan2,
                T::At
            ]
        );
        assert_eq!(kinds("SUM By"), vec![T::Agg(AggregateOp::Sum), T::By]);
        assert_eq!(kinds("foo:bar"), vec![T::MetricIdentifier]);
        assert_eq!(kinds("Inf nan NaN"), vec![T::Number, T::Number, T::Number]);
    }

    #[test]
    fn keywords_inside_braces_are_identifiers() {
        assert_eq!(
            kinds(r#"{by="a", on!~'b', offset=~`c`, x!="d",}"#),
            vec![
                T::LBrace,
                T::Identifier,
                T::Eql,
                T::Str,
                T::Comma,
                T::Identifier,
                T::NeqRegex,
                T::Str,
                T::Comma,
                T::Identifier,
                T::EqlRegex,
                T::Str,
                T::Comma,
                T::Identifier,
                T::Neq,
                T::Str,
                T::Comma,
                T::RBrace
            ]
        );
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(kinds("1 .5 5. 1e3 1.5e-3 0x1F 0755"), vec![T::Number; 7]);
        assert_eq!(kinds("5m 1h30m 100ms 1y"), vec![T::Duration; 4]);
        assert_eq!(
            kinds("x[5m:1m]"),
            vec![
                T::Identifier,
                T::LBracket,
                T::Duration,
                T::Colon,
                T::Duration,
                T::RBracket
            ]
        );
        assert_eq!(
            kinds("x[ 5m : ]"),
            vec![
                T::Identifier,
                T::LBracket,
                T::Duration,
                T::Colon,
                T::RBracket
            ]
        );
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            kinds("# c\nfoo # d\n+ 1 # e"),
            vec![T::Identifier, T::Add, T::Number]
        );
        assert_eq!(
            kinds("{a=\"b\" # c\n}"),
            vec![T::LBrace, T::Identifier, T::Eql, T::Str, T::RBrace]
        );
    }

    #[test]
    fn errors_have_prometheus_text_and_position() {
        let cases: &[(&str, &str, usize)] = &[
            ("(1", "unclosed left parenthesis", 2),
            ("(1))", "unexpected right parenthesis ')'", 4),
            ("foo]", "unexpected right bracket ']'", 3),
            ("foo[5m", "unclosed left bracket", 6),
            ("foo[5m[", "unexpected left bracket '['", 6),
            ("{", "unexpected end of input inside braces", 1),
            ("}", "unexpected character: '}'", 0),
            (
                "foo{a:b=\"b\"}",
                "unexpected character inside braces: ':'",
                5,
            ),
            ("foo{{", "unexpected left brace '{'", 4),
            ("1 =~ 1", "unexpected character after '=': '~'", 2),
            ("1 !~ 1", "unexpected character after '!': '~'", 2),
            ("0deadbeef", "bad number or duration syntax: \"0de\"", 0),
            ("foo[5mm]", "bad duration syntax: \"5mm\"", 4),
            ("foo[5m1]", "bad duration syntax: \"5m1\"", 4),
            ("foo[5m:1m1]", "bad number or duration syntax: \"1m1\"", 7),
            ("foo[1]", "missing unit character in duration", 4),
            ("foo[]", "missing unit character in duration", 4),
            ("\"abc", "unterminated quoted string", 0),
            ("'a\nb'", "unterminated quoted string", 0),
            ("`abc", "unterminated raw string", 0),
            ("x \"\\", "escape sequence not terminated", 2),
            ("\"\\c\"", "unknown escape sequence U+0063 'c'", 0),
            (
                "\"\\x.\"",
                "illegal character U+002E '.' in escape sequence",
                0,
            ),
            (
                "\"\\uD800\"",
                "escape sequence is an invalid Unicode code point",
                0,
            ),
            (
                "\"\\400\"",
                "escape sequence is an invalid Unicode code point",
                0,
            ),
            ("'\\\"'", "unknown escape sequence U+0022 '\"'", 0),
            ("foo $", "unexpected character: '$'", 4),
            ("foo[5m xy]", "unexpected colon 'y'", 8),
            ("a !", "unexpected character after '!': '\u{FFFD}'", 2),
        ];
        for &(input, msg, pos) in cases {
            let e = lex_err(input);
            assert_eq!((e.msg.as_str(), e.pos), (msg, pos), "input {input:?}");
        }
    }

    #[test]
    fn escapes_at_string_end_do_not_eat_the_quote() {
        assert_eq!(kinds(r#""\x41" "\u70ac" '\377'"#), vec![T::Str; 3]);
    }

    #[test]
    fn letter_inside_brackets_is_a_colon() {
        // Prometheus 2.53 quirk: `foo[5m x]` is `foo[5m:]`.
        assert_eq!(
            kinds("foo[5m x]"),
            vec![
                T::Identifier,
                T::LBracket,
                T::Duration,
                T::Colon,
                T::RBracket
            ]
        );
    }

    #[test]
    fn token_descriptions() {
        let d = |input: &str| {
            let mut l = Lexer::new(input);
            let t = l.next_token().expect("lexes");
            t.describe(input)
        };
        assert_eq!(d("foo"), "identifier \"foo\"");
        assert_eq!(d("a:b"), "metric identifier \"a:b\"");
        assert_eq!(d("1"), "number \"1\"");
        assert_eq!(d("5m"), "duration \"5m\"");
        assert_eq!(d("\"abcdefghijkl\""), "string \"\\\"abcdefghi\"...");
        assert_eq!(d("by"), "<by>");
        assert_eq!(d("*"), "<op:*>");
        assert_eq!(d("and"), "<op:and>");
        assert_eq!(d("sum"), "<aggr:sum>");
        assert_eq!(d("="), "\"=\"");
        assert_eq!(d("("), "\"(\"");
        assert_eq!(d("start"), "\"start\"");
        assert_eq!(d(""), "end of input");
    }
}
