//! The PromQL parser: lexer, recursive-descent parser, type checker,
//! function table and printers, reproducing Prometheus 2.53.
//!
//! It owns the text <-> AST boundary: what Prometheus accepts is accepted,
//! what it rejects is rejected with Prometheus's message and position, and
//! `format_expr`/`prettify` print what Prometheus prints. It must not
//! evaluate anything nor touch storage; the evaluator consumes `ast::Expr`.
//!
//! Entry points: [`parse`] (and [`parse_with_options`]), [`parse_metric_selector`], [`parse_metric`],
//! [`parse_metric_prefix`], [`parse_series_desc`], [`parse_duration`], [`format_duration`],
//! [`format_expr`], [`prettify`], [`get_function`].
//!
//! Known deviations from Prometheus 2.53 (see also the corpus test):
//! - quoted UTF-8 metric/label names (`{"a.b"}`, `by ("a.b")`) are rejected;
//! - nesting deeper than 256 levels or trees taller than 1024 are errors
//!   (Prometheus has no limit; ours keeps the stack bounded);
//! - `\x`/octal escapes that form invalid UTF-8 become U+FFFD;
//! - bad-regex messages are Go's wording rebuilt from Rust's regex parser,
//!   and which patterns are valid is decided by `vigil_model::Matcher`.

mod error;
mod format;
mod functions;
mod lexer;
mod literal;
mod matcher_cache;
mod node;
mod parse;
mod regex_error;
mod series;

pub use error::ParseError;
pub use format::{format_expr, prettify};
pub use functions::{get_function, FUNCTIONS};
pub use literal::{format_duration, parse_duration, DurationError};
pub use series::{parse_series_desc, SequenceValue};

use crate::ast::Expr;
use parse::Parser;
use vigil_model::{Labels, Matcher};

/// What Prometheus keeps in package globals of its parser, as a value the
/// caller passes: the parser stays a pure function of its input, and one
/// process can parse with and without (tests, rules vs. API).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept the functions Prometheus marks experimental (`sort_by_label`,
    /// `sort_by_label_desc`, `mad_over_time`); otherwise calling one is
    /// the parse error `function "mad_over_time" is not enabled`.
    /// `--enable-feature=promql-experimental-functions`; off by default.
    pub experimental_functions: bool,
}

impl ParseOptions {
    /// Everything enabled, as Prometheus's own test harness runs.
    pub fn all() -> Self {
        ParseOptions {
            experimental_functions: true,
        }
    }
}

/// Parses and type-checks a PromQL expression with the default options
/// (experimental functions disabled), as Prometheus's `parser.ParseExpr`.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parse_with_options(input, ParseOptions::default())
}

/// [`parse`] with explicit options.
pub fn parse_with_options(input: &str, opts: ParseOptions) -> Result<Expr, ParseError> {
    let mut p = Parser::new(input).with_options(opts);
    let r = p.parse_query();
    let mut node = p.finish(r)?;
    node::check(input, &mut node)?;
    Ok(node::into_expr(*node))
}

/// Parses a series selector such as `up{job="api"}` into its matchers, as
/// Prometheus's `parser.ParseMetricSelector` (used for `match[]`). Like
/// Prometheus it does not require a non-empty matcher.
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let mut p = Parser::new(input);
    let r = p.parse_selector_only();
    p.finish(r)
}

/// Parses a metric such as `http_requests{job="api", instance="0"}` into a
/// label set, as Prometheus's `parser.ParseMetric`.
pub fn parse_metric(input: &str) -> Result<Labels, ParseError> {
    let mut p = Parser::new(input);
    let r = p.parse_metric(false);
    p.finish(r).map(|(labels, _)| labels)
}

/// Parses the metric at the start of a series description line (as in the
/// PromQL test scripts: `name{labels} 1 2 3`) and returns the labels and
/// the byte offset where the rest of the line starts. The metric ends where
/// Prometheus's series lexer ends it: after `}`, or after the name when no
/// `{` follows directly.
pub fn parse_metric_prefix(input: &str) -> Result<(Labels, usize), ParseError> {
    let mut p = Parser::new(input);
    let r = p.parse_metric(true);
    p.finish(r)
}

#[cfg(test)]
mod tests;
