//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus's semantics.
//!
//! Regexes are fully anchored (`^(?:re)$`, as in Prometheus 2.x, where `.`
//! does not match a newline). A matcher that compiles here is the same
//! matcher everywhere: PromQL selectors, API `match[]`, relabeling and the
//! TSDB's postings lookups all use this type. Literal alternations and
//! prefixes are detected once at construction so hot paths can skip the
//! regex engine.

use regex::Regex;
use std::fmt;

/// Matching operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error building a matcher.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MatcherError {
    #[error("error parsing regexp: {0}")]
    BadRegex(String),
}

/// What a regex is known to accept, found by inspecting it once.
#[derive(Clone, Debug)]
enum RegexShape {
    /// Exactly one of these literal strings (`a|b|c`, or a plain literal).
    Set(Vec<String>),
    /// Any string starting with this prefix (`foo.*`).
    Prefix(String),
    /// Any string at all (`.*`), including the empty one.
    Any,
    /// Any non-empty string (`.+`).
    NonEmpty,
    /// Only the general regex engine can tell.
    General,
}

/// One label matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
    shape: RegexShape,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.op.hash(state);
        self.value.hash(state);
    }
}

impl Matcher {
    /// Builds a matcher; fails only for an invalid regex.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let (re, shape) = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                let re = Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| MatcherError::BadRegex(regex_error_text(&e)))?;
                (Some(re), analyze_regex(&value))
            }
            _ => (None, RegexShape::General),
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
            shape,
        })
    }

    /// `name="value"`; never fails.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
            shape: RegexShape::General,
        }
    }

    /// Does `value` satisfy this matcher? An absent label is the empty string.
    #[inline]
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex => self.regex_matches(value),
            MatchOp::NotRegex => !self.regex_matches(value),
        }
    }

    fn regex_matches(&self, value: &str) -> bool {
        match &self.shape {
            RegexShape::Set(set) => set.iter().any(|s| s == value),
            // `.` does not match '\n' in Prometheus 2.x regexes.
            RegexShape::Prefix(p) => {
                value.starts_with(p.as_str()) && !value[p.len()..].contains('\n')
            }
            RegexShape::Any => !value.contains('\n'),
            RegexShape::NonEmpty => !value.is_empty() && !value.contains('\n'),
            RegexShape::General => self.re.as_ref().is_some_and(|re| re.is_match(value)),
        }
    }

    /// Whether the empty string (an absent label) matches.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~` with a literal alternation (or `=`), the exact values that
    /// match; lets the TSDB look up postings directly instead of scanning.
    pub fn set_matches(&self) -> Option<Vec<&str>> {
        match (self.op, &self.shape) {
            (MatchOp::Equal, _) => Some(vec![self.value.as_str()]),
            (MatchOp::Regex, RegexShape::Set(set)) => {
                Some(set.iter().map(|s| s.as_str()).collect())
            }
            _ => None,
        }
    }

    /// For `=~prefix.*`, the literal prefix.
    pub fn prefix(&self) -> Option<&str> {
        match &self.shape {
            RegexShape::Prefix(p) => Some(p),
            _ => None,
        }
    }

    /// True for `=~".*"` (matches every value without a newline, and absent labels).
    pub fn is_match_all(&self) -> bool {
        self.op == MatchOp::Regex && matches!(self.shape, RegexShape::Any)
    }

    /// True for `=~".+"` or `!=""` style matchers: "label is present".
    pub fn is_match_non_empty(&self) -> bool {
        (self.op == MatchOp::Regex && matches!(self.shape, RegexShape::NonEmpty))
            || (self.op == MatchOp::NotEqual && self.value.is_empty())
    }
}

/// Formats as PromQL: `name="value"` with Go quoting.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op,
            crate::gofmt::quote(&self.value)
        )
    }
}

fn regex_error_text(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s.lines().last().unwrap_or(s).trim().to_string(),
        other => other.to_string(),
    }
}

fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

/// Recognises the regex forms that have a cheaper exact answer.
fn analyze_regex(re: &str) -> RegexShape {
    match re {
        ".*" => return RegexShape::Any,
        ".+" => return RegexShape::NonEmpty,
        _ => {}
    }
    if let Some(p) = re.strip_suffix(".*") {
        if !p.is_empty() && !p.chars().any(is_meta) {
            return RegexShape::Prefix(p.to_string());
        }
    }
    let inner = re
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .filter(|r| !r.contains('(') && !r.contains(')'))
        .unwrap_or(re);
    let alts: Vec<&str> = inner.split('|').collect();
    if alts.iter().all(|a| !a.chars().any(is_meta)) {
        let mut set: Vec<String> = alts.into_iter().map(str::to_string).collect();
        set.sort();
        set.dedup();
        return RegexShape::Set(set);
    }
    RegexShape::General
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "l", v).unwrap()
    }

    #[test]
    fn regex_is_anchored() {
        let r = m(MatchOp::Regex, "fo[o]");
        assert!(r.matches("foo"));
        assert!(!r.matches("xfoo"));
        assert!(!r.matches("foox"));
        let nr = m(MatchOp::NotRegex, "fo[o]");
        assert!(nr.matches("foox"));
    }

    #[test]
    fn alternation_is_anchored_as_a_whole() {
        let r = m(MatchOp::Regex, "a|b");
        assert!(r.matches("a") && r.matches("b"));
        assert!(!r.matches("ab"));
        assert_eq!(r.set_matches(), Some(vec!["a", "b"]));
    }

    #[test]
    fn fast_paths_agree_with_regex_engine() {
        for pat in [
            ".*", ".+", "foo.*", "a|b|c", "(x|yy)", "abc", "", "a.b", "(a|b).*",
        ] {
            let fast = m(MatchOp::Regex, pat);
            let slow = Regex::new(&format!("^(?:{pat})$")).unwrap();
            for v in [
                "", "a", "b", "ab", "foo", "foobar", "x", "yy", "abc", "a.b", "axb", "a\n",
            ] {
                assert_eq!(
                    fast.matches(v),
                    slow.is_match(v),
                    "pattern {pat:?} value {v:?}"
                );
            }
        }
    }

    #[test]
    fn dot_does_not_match_newline() {
        assert!(!m(MatchOp::Regex, ".*")
            .re
            .as_ref()
            .unwrap()
            .is_match("a\nb"));
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(Matcher::new(MatchOp::Regex, "l", "(").is_err());
    }

    #[test]
    fn empty_value_semantics() {
        assert!(Matcher::equal("l", "").matches_empty());
        assert!(m(MatchOp::NotEqual, "").is_match_non_empty());
        assert!(!m(MatchOp::Regex, ".+").matches_empty());
        assert!(m(MatchOp::Regex, ".*").is_match_all());
    }

    #[test]
    fn display_quotes_value() {
        assert_eq!(m(MatchOp::Regex, "a\"b").to_string(), r#"l=~"a\"b""#);
    }
}
