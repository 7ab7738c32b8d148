//! Recursive-descent parser with precedence climbing for binary operators.
//!
//! It follows Prometheus 2.53's yacc grammar token for token: the same
//! precedence (unary binds like `*`, `^` is right-associative and binds
//! tighter), the same keywords allowed as metric and label names, the same
//! error messages and contexts ("in grouping opts", "in aggregation", ...).
//! Errors found while building the tree (bad durations, offsets, regexes)
//! are recorded and parsing goes on, as in Prometheus; the first error wins.

use super::error::ParseError;
use super::functions::get_function;
use super::lexer::{Lexer, Token, T};
use super::literal;
use super::node::{match_op, name_matcher, Kind, Node, Selector};
use crate::ast::{AggregateOp, AtModifier, BinaryOp, Cardinality, UnaryOp, VectorMatching};
use vigil_model::{Label, Labels, Matcher, METRIC_NAME};

/// Deepest nesting of parentheses, calls, aggregations and unary operators.
const MAX_NESTING: u32 = 256;
/// Tallest tree accepted (binary chains grow it without nesting).
pub(crate) const MAX_HEIGHT: u32 = 1024;

/// Errors are boxed and nodes returned boxed to keep recursive frames
/// small (deep queries recurse once per nesting level).
type PResult<T> = Result<T, Box<ParseError>>;
type PNode = PResult<Box<Node>>;

pub(crate) struct Parser<'a> {
    input: &'a str,
    lex: Lexer<'a>,
    peeked: Option<Token>,
    /// End of the last consumed token (Prometheus's `lastClosing`).
    last_end: usize,
    /// First error recorded while building the tree.
    first_err: Option<ParseError>,
    /// Inside an aggregation's argument list (changes error contexts).
    agg_depth: u32,
    nesting: u32,
    opts: super::ParseOptions,
}

fn binary_op(kind: T) -> Option<(BinaryOp, u8)> {
    Some(match kind {
        T::Lor => (BinaryOp::Or, 1),
        T::Land => (BinaryOp::And, 2),
        T::Lunless => (BinaryOp::Unless, 2),
        T::Eqlc => (BinaryOp::Eql, 3),
        T::Neq => (BinaryOp::Neq, 3),
        T::Gtr => (BinaryOp::Gtr, 3),
        T::Lss => (BinaryOp::Lss, 3),
        T::Gte => (BinaryOp::Gte, 3),
        T::Lte => (BinaryOp::Lte, 3),
        T::Add => (BinaryOp::Add, 4),
        T::Sub => (BinaryOp::Sub, 4),
        T::Mul => (BinaryOp::Mul, 5),
        T::Div => (BinaryOp::Div, 5),
        T::Mod => (BinaryOp::Mod, 5),
        T::Atan2 => (BinaryOp::Atan2, 5),
        T::Pow => (BinaryOp::Pow, 6),
        _ => return None,
    })
}

const POW_PRECEDENCE: u8 = 6;

/// Tokens that may name a metric (Prometheus's `metric_identifier`).
fn is_metric_identifier(kind: T) -> bool {
    matches!(
        kind,
        T::Identifier
            | T::MetricIdentifier
            | T::Agg(_)
            | T::By
            | T::Without
            | T::Offset
            | T::Land
            | T::Lor
            | T::Lunless
            | T::Start
            | T::End
    )
}

/// Tokens accepted as a grouping label (Prometheus's `maybe_label`).
fn is_maybe_label(kind: T) -> bool {
    matches!(
        kind,
        T::Identifier
            | T::MetricIdentifier
            | T::Agg(_)
            | T::Bool
            | T::By
            | T::GroupLeft
            | T::GroupRight
            | T::Ignoring
            | T::Land
            | T::Lor
            | T::Lunless
            | T::Offset
            | T::On
            | T::Start
            | T::End
            | T::Atan2
    )
}

/// Prometheus's `isLabel`: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_label(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[derive(Default)]
struct Modifiers {
    return_bool: bool,
    on: bool,
    labels: Vec<String>,
    card: Option<Cardinality>,
    include: Vec<String>,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a str) -> Self {
        Parser {
            input,
            lex: Lexer::new(input),
            peeked: None,
            last_end: 0,
            first_err: None,
            agg_depth: 0,
            nesting: 0,
            opts: super::ParseOptions::default(),
        }
    }

    pub fn with_options(mut self, opts: super::ParseOptions) -> Self {
        self.opts = opts;
        self
    }

    // ----- token handling -------------------------------------------------

    fn peek(&mut self) -> PResult<Token> {
        if let Some(t) = self.peeked {
            return Ok(t);
        }
        match self.lex.next_token() {
            Ok(t) => {
                self.peeked = Some(t);
                Ok(t)
            }
            Err(e) => Err(Box::new(ParseError::new(
                self.input,
                e.pos,
                self.input.len(),
                e.msg,
            ))),
        }
    }

    fn next(&mut self) -> PResult<Token> {
        let t = self.peek()?;
        self.peeked = None;
        self.last_end = t.end;
        Ok(t)
    }

    fn text(&self, t: Token) -> &'a str {
        &self.input[t.start..t.end]
    }

    /// Records an error found while building the tree; parsing continues.
    fn record(&mut self, start: usize, end: usize, msg: impl Into<String>) {
        if self.first_err.is_none() {
            self.first_err = Some(ParseError::new(self.input, start, end, msg));
        }
    }

    /// Prometheus's `unexpected(context, expected)` for token `t`.
    fn unexpected(&self, t: Token, context: &str, expected: &str) -> Box<ParseError> {
        let mut msg = format!("unexpected {}", t.describe(self.input));
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        Box::new(ParseError::new(self.input, t.start, t.end, msg))
    }

    /// A syntax error outside any specific construct.
    fn unexpected_here(&self, t: Token) -> Box<ParseError> {
        let context = if self.agg_depth > 0 {
            "aggregation"
        } else {
            ""
        };
        self.unexpected(t, context, "")
    }

    fn enter(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            let t = self.peek()?;
            return Err(Box::new(ParseError::new(
                self.input,
                t.start,
                t.end,
                format!("expression nests too deeply (more than {MAX_NESTING} levels)"),
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    fn node(&self, kind: Kind, start: usize, end: usize) -> PNode {
        let n = Box::new(Node::new(kind, start, end));
        if n.height > MAX_HEIGHT {
            return Err(Box::new(ParseError::new(
                self.input,
                start,
                end,
                format!("expression is too deeply nested (more than {MAX_HEIGHT} levels)"),
            )));
        }
        Ok(n)
    }

    /// Finishes a parse: the first recorded error wins over a later fatal one.
    pub fn finish<R>(&mut self, r: PResult<R>) -> Result<R, ParseError> {
        match (self.first_err.take(), r) {
            (Some(e), _) => Err(e),
            (None, r) => r.map_err(|e| *e),
        }
    }

    // ----- entry points ---------------------------------------------------

    /// `START_EXPRESSION expr EOF`.
    pub fn parse_query(&mut self) -> PNode {
        let t = self.peek()?;
        if t.kind == T::Eof {
            return Err(Box::new(ParseError::new(
                self.input,
                0,
                0,
                "no expression found in input",
            )));
        }
        let n = self.parse_binary(0)?;
        self.expect_eof()?;
        Ok(n)
    }

    fn expect_eof(&mut self) -> PResult<()> {
        let t = self.peek()?;
        if t.kind != T::Eof {
            return Err(self.unexpected_here(t));
        }
        Ok(())
    }

    /// `START_METRIC_SELECTOR vector_selector EOF`: the matchers only.
    pub fn parse_selector_only(&mut self) -> PResult<Vec<Matcher>> {
        let t = self.peek()?;
        let vs = if t.kind == T::LBrace {
            self.parse_selector(None)?
        } else if is_metric_identifier(t.kind) {
            self.next()?;
            self.parse_selector(Some(t))?
        } else {
            return Err(self.unexpected_here(t));
        };
        self.expect_eof()?;
        match vs.kind {
            Kind::Vector(s) => Ok(s.matchers),
            _ => Ok(Vec::new()),
        }
    }

    /// `START_METRIC metric`: `name{label="value", ...}` into labels. With
    /// `allow_rest` the parse stops before the first token after the metric
    /// and returns its byte offset.
    pub fn parse_metric(&mut self, allow_rest: bool) -> PResult<(Labels, usize)> {
        let mut labels: Vec<Label> = Vec::new();
        let t = self.peek()?;
        let has_name = is_metric_identifier(t.kind);
        if has_name {
            self.next()?;
            labels.push(Label::new(METRIC_NAME, self.text(t)));
        }
        // In a series description only a `{` right after the name belongs
        // to the metric; the values after it may not even lex as PromQL.
        let brace = if allow_rest && has_name {
            self.input[self.last_end..].starts_with('{')
        } else {
            self.peek()?.kind == T::LBrace
        };
        if brace {
            self.next()?;
            self.parse_label_set(&mut labels)?;
        }
        let rest = if allow_rest {
            // The lexer has not read past the metric, except whitespace.
            self.last_end
        } else {
            self.expect_eof()?;
            self.input.len()
        };
        Ok((Labels::new(labels), rest))
    }

    fn parse_label_set(&mut self, labels: &mut Vec<Label>) -> PResult<()> {
        const CTX: &str = "label set";
        if self.peek()?.kind == T::RBrace {
            self.next()?;
            return Ok(());
        }
        loop {
            let name = self.next()?;
            if name.kind != T::Identifier {
                return Err(self.unexpected(name, CTX, "identifier or \"}\""));
            }
            let eq = self.next()?;
            if eq.kind != T::Eql {
                return Err(self.unexpected(eq, CTX, "\"=\""));
            }
            let val = self.next()?;
            if val.kind != T::Str {
                return Err(self.unexpected(val, CTX, "string"));
            }
            labels.push(Label::new(
                self.text(name),
                literal::unquote(self.text(val)),
            ));
            let t = self.next()?;
            match t.kind {
                T::RBrace => return Ok(()),
                T::Comma if self.peek()?.kind == T::RBrace => {
                    self.next()?;
                    return Ok(());
                }
                T::Comma => {}
                _ => return Err(self.unexpected(t, CTX, "\",\" or \"}\"")),
            }
        }
    }

    // ----- expressions ----------------------------------------------------

    fn parse_binary(&mut self, min_prec: u8) -> PNode {
        self.enter()?;
        let mut lhs = self.parse_unary()?;
        loop {
            let t = self.peek()?;
            let Some((op, prec)) = binary_op(t.kind) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            self.next()?;
            let m = self.parse_bin_modifiers()?;
            let next_min = if op == BinaryOp::Pow { prec } else { prec + 1 };
            let rhs = self.parse_binary(next_min)?;
            let (start, end) = (lhs.start, rhs.end);
            let matching = VectorMatching {
                card: m.card.unwrap_or(Cardinality::OneToOne),
                matching_labels: m.labels,
                on: m.on,
                include: m.include,
            };
            lhs = self.node(
                Kind::Binary {
                    op,
                    lhs,
                    rhs,
                    matching: Some(matching),
                    return_bool: m.return_bool,
                },
                start,
                end,
            )?;
        }
        self.leave();
        Ok(lhs)
    }

    /// `[bool] [on|ignoring (labels) [group_left|group_right [(labels)]]]`.
    fn parse_bin_modifiers(&mut self) -> PResult<Modifiers> {
        let mut m = Modifiers::default();
        if self.peek()?.kind == T::Bool {
            self.next()?;
            m.return_bool = true;
        }
        let t = self.peek()?;
        if matches!(t.kind, T::On | T::Ignoring) {
            self.next()?;
            m.on = t.kind == T::On;
            m.labels = self.parse_grouping_labels()?;
            let t = self.peek()?;
            if matches!(t.kind, T::GroupLeft | T::GroupRight) {
                self.next()?;
                m.card = Some(if t.kind == T::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                });
                // A parenthesis right after group_x is always its label list.
                if self.peek()?.kind == T::LParen {
                    m.include = self.parse_grouping_labels()?;
                }
            }
        }
        Ok(m)
    }

    /// `( label, ... )` of by/without/on/ignoring/group_x.
    fn parse_grouping_labels(&mut self) -> PResult<Vec<String>> {
        const CTX: &str = "grouping opts";
        let t = self.peek()?;
        if t.kind != T::LParen {
            return Err(self.unexpected(t, CTX, "\"(\""));
        }
        self.next()?;
        let mut labels = Vec::new();
        if self.peek()?.kind == T::RParen {
            self.next()?;
            return Ok(labels);
        }
        loop {
            let t = self.peek()?;
            if !is_maybe_label(t.kind) {
                return Err(self.unexpected(t, CTX, "label"));
            }
            self.next()?;
            let name = self.text(t);
            if !is_label(name) {
                let e = self.unexpected(t, CTX, "label");
                if self.first_err.is_none() {
                    self.first_err = Some(*e);
                }
            }
            labels.push(name.to_string());
            let t = self.peek()?;
            match t.kind {
                T::RParen => {
                    self.next()?;
                    return Ok(labels);
                }
                T::Comma => {
                    self.next()?;
                    if self.peek()?.kind == T::RParen {
                        self.next()?;
                        return Ok(labels);
                    }
                }
                _ => return Err(self.unexpected(t, CTX, "\",\" or \")\"")),
            }
        }
    }

    fn parse_unary(&mut self) -> PNode {
        let t = self.peek()?;
        let op = match t.kind {
            T::Add => UnaryOp::Pos,
            T::Sub => UnaryOp::Neg,
            _ => return self.parse_postfix(),
        };
        self.next()?;
        // The operand extends over `^` only: unary binds like `*`.
        let mut operand = self.parse_binary(POW_PRECEDENCE)?;
        if let Kind::Number(v) = &mut operand.kind {
            if op == UnaryOp::Neg {
                *v = -*v;
            }
            operand.start = t.start;
            return Ok(operand);
        }
        let end = operand.end;
        self.node(Kind::Unary(op, operand), t.start, end)
    }

    /// A primary expression followed by `[...]`, `offset` and `@` modifiers.
    fn parse_postfix(&mut self) -> PNode {
        let mut node = self.parse_primary()?;
        loop {
            node = match self.peek()?.kind {
                T::LBracket => self.parse_range_or_subquery(node)?,
                T::Offset => self.parse_offset(node)?,
                T::At => self.parse_at(node)?,
                _ => return Ok(node),
            };
        }
    }

    fn parse_primary(&mut self) -> PNode {
        let t = self.peek()?;
        match t.kind {
            T::Number | T::Str => self.parse_literal(),
            T::LParen => {
                self.next()?;
                let inner = self.parse_binary(0)?;
                let close = self.peek()?;
                if close.kind != T::RParen {
                    return Err(self.unexpected_here(close));
                }
                self.next()?;
                self.node(Kind::Paren(inner), t.start, close.end)
            }
            T::LBrace => self.parse_selector(None),
            T::Identifier => {
                self.next()?;
                if self.peek()?.kind == T::LParen {
                    self.parse_call(t)
                } else {
                    self.parse_selector(Some(t))
                }
            }
            T::Agg(op) => {
                self.next()?;
                if matches!(self.peek()?.kind, T::LParen | T::By | T::Without) {
                    self.parse_aggregate(t, op)
                } else {
                    self.parse_selector(Some(t))
                }
            }
            k if is_metric_identifier(k) => {
                self.next()?;
                self.parse_selector(Some(t))
            }
            _ => Err(self.unexpected_here(t)),
        }
    }

    #[inline(never)]
    fn parse_literal(&mut self) -> PNode {
        let t = self.next()?;
        let kind = if t.kind == T::Number {
            Kind::Number(self.number(t))
        } else {
            Kind::Str(literal::unquote(self.text(t)))
        };
        self.node(kind, t.start, t.end)
    }

    fn number(&mut self, t: Token) -> f64 {
        match literal::parse_number(self.text(t)) {
            Ok(v) => v,
            Err(e) => {
                self.record(t.start, t.end, format!("error parsing number: {e}"));
                0.0
            }
        }
    }

    /// A duration token's value in ms; zero and invalid durations are errors.
    fn duration(&mut self, t: Token) -> i64 {
        match literal::parse_duration(self.text(t)) {
            Ok(0) => {
                self.record(t.start, t.end, "duration must be greater than 0");
                0
            }
            Ok(d) => d,
            Err(e) => {
                self.record(t.start, t.end, e.0);
                0
            }
        }
    }

    /// A vector selector; the name token (if any) was consumed.
    fn parse_selector(&mut self, name: Option<Token>) -> PNode {
        let mut matchers = Vec::new();
        let start = name.map_or(self.peek()?.start, |n| n.start);
        if self.peek()?.kind == T::LBrace {
            self.next()?;
            self.parse_label_matchers(&mut matchers)?;
        }
        let name = name.map(|n| self.text(n).to_string()).unwrap_or_default();
        if !name.is_empty() {
            matchers.push(name_matcher(&name));
        }
        let vs = Selector {
            name,
            matchers,
            offset: 0,
            at: None,
        };
        self.node(Kind::Vector(vs), start, self.last_end)
    }

    /// The inside of `{...}`; the `{` was consumed.
    fn parse_label_matchers(&mut self, out: &mut Vec<Matcher>) -> PResult<()> {
        const CTX: &str = "label matching";
        if self.peek()?.kind == T::RBrace {
            self.next()?;
            return Ok(());
        }
        loop {
            let name = self.next()?;
            if name.kind != T::Identifier {
                return Err(self.unexpected(name, CTX, "identifier or \"}\""));
            }
            let op_tok = self.next()?;
            let Some(op) = match_op(op_tok.kind) else {
                return Err(self.unexpected(op_tok, CTX, "label matching operator"));
            };
            let val = self.next()?;
            if val.kind != T::Str {
                return Err(self.unexpected(val, CTX, "string"));
            }
            let value = literal::unquote(self.text(val));
            match super::matcher_cache::matcher(op, self.text(name), value.as_str()) {
                Ok(m) => out.push(m),
                Err(e) => {
                    let msg = super::regex_error::message(&value, &e);
                    self.record(name.start, val.end, msg);
                }
            }
            let t = self.peek()?;
            match t.kind {
                T::RBrace => {
                    self.next()?;
                    return Ok(());
                }
                T::Comma => {
                    self.next()?;
                    if self.peek()?.kind == T::RBrace {
                        self.next()?;
                        return Ok(());
                    }
                }
                _ => return Err(self.unexpected(t, CTX, "\",\" or \"}\"")),
            }
        }
    }

    /// `( args )` of a call or aggregation; trailing commas are an error.
    fn parse_args(&mut self) -> PResult<Vec<Node>> {
        self.next()?; // (
        let mut args = Vec::new();
        if self.peek()?.kind == T::RParen {
            self.next()?;
            return Ok(args);
        }
        loop {
            args.push(*self.parse_binary(0)?);
            loop {
                let t = self.peek()?;
                match t.kind {
                    T::RParen => {
                        self.next()?;
                        return Ok(args);
                    }
                    T::Comma => {
                        self.next()?;
                        if matches!(self.peek()?.kind, T::RParen | T::Comma) {
                            self.record(
                                t.start,
                                t.end,
                                "trailing commas not allowed in function call args",
                            );
                            continue;
                        }
                        break;
                    }
                    _ => return Err(self.unexpected_here(t)),
                }
            }
        }
    }

    fn parse_call(&mut self, name: Token) -> PNode {
        let args = self.parse_args()?;
        self.build_call(name, args)
    }

    #[inline(never)]
    fn build_call(&mut self, name: Token, args: Vec<Node>) -> PNode {
        let end = self.last_end;
        let fname = self.text(name);
        match get_function(fname) {
            Some(func) => {
                if func.experimental && !self.opts.experimental_functions {
                    let msg = format!(
                        "function {} is not enabled",
                        vigil_model::gofmt::quote(fname)
                    );
                    self.record(name.start, name.end, msg);
                }
                self.node(Kind::Call { func, args }, name.start, end)
            }
            None => {
                let msg = format!(
                    "unknown function with name {}",
                    vigil_model::gofmt::quote(fname)
                );
                self.record(name.start, name.end, msg);
                Ok(Box::new(Node::new(Kind::Invalid, name.start, end)))
            }
        }
    }

    fn parse_aggregate(&mut self, op_tok: Token, op: AggregateOp) -> PNode {
        self.agg_depth += 1;
        let mut grouping: Option<(Vec<String>, bool)> = None;
        let t = self.peek()?;
        if matches!(t.kind, T::By | T::Without) {
            self.next()?;
            grouping = Some((self.parse_grouping_labels()?, t.kind == T::Without));
        }
        let t = self.peek()?;
        if t.kind != T::LParen {
            return Err(self.unexpected(t, "aggregation", ""));
        }
        let args = self.parse_args()?;
        if grouping.is_none() {
            let t = self.peek()?;
            if matches!(t.kind, T::By | T::Without) {
                self.next()?;
                grouping = Some((self.parse_grouping_labels()?, t.kind == T::Without));
            }
        }
        self.agg_depth -= 1;
        self.build_aggregate(op_tok.start, op, args, grouping.unwrap_or_default())
    }

    /// Prometheus's `newAggregateExpr` checks; kept out of the recursive
    /// path to keep its stack frame small.
    #[inline(never)]
    fn build_aggregate(
        &mut self,
        start: usize,
        op: AggregateOp,
        mut args: Vec<Node>,
        (grouping, without): (Vec<String>, bool),
    ) -> PNode {
        let end = self.last_end;
        if args.is_empty() {
            self.record(start, end, "no arguments for aggregate expression provided");
            return Ok(Box::new(Node::new(Kind::Invalid, start, end)));
        }
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            self.record(
                start,
                end,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            );
            return Ok(Box::new(Node::new(Kind::Invalid, start, end)));
        }
        let expr = Box::new(
            args.pop()
                .unwrap_or_else(|| Node::new(Kind::Invalid, start, end)),
        );
        let param = args.pop().map(Box::new);
        self.node(
            Kind::Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
            },
            start,
            end,
        )
    }

    /// `expr[range]` or `expr[range:step]`; the lexer guarantees a duration
    /// (or a lexer error) right after `[`.
    fn parse_range_or_subquery(&mut self, expr: Box<Node>) -> PNode {
        let lb = self.next()?;
        let t = self.peek()?;
        if t.kind != T::Duration {
            return Err(self.unexpected(t, "subquery selector", "duration"));
        }
        self.next()?;
        let range = self.duration(t);
        let t = self.peek()?;
        match t.kind {
            T::RBracket => {
                self.next()?;
                let (start, end) = (expr.start, t.end);
                let msg = match &expr.kind {
                    Kind::Vector(vs) if vs.offset != 0 => {
                        Some("no offset modifiers allowed before range")
                    }
                    Kind::Vector(vs) if matches!(vs.at, Some(AtModifier::Timestamp(_))) => {
                        Some("no @ modifiers allowed before range")
                    }
                    Kind::Vector(_) => None,
                    _ => Some("ranges only allowed for vector selectors"),
                };
                if let Some(msg) = msg {
                    self.record(lb.start, t.end, msg);
                }
                let (vs_start, vs_end) = (expr.start, expr.end);
                match expr.kind {
                    Kind::Vector(vs) => self.node(
                        Kind::Matrix {
                            vs,
                            vs_start,
                            vs_end,
                            range,
                        },
                        start,
                        end,
                    ),
                    _ => Ok(Box::new(Node::new(Kind::Invalid, start, end))),
                }
            }
            T::Colon => {
                self.next()?;
                let t = self.peek()?;
                let step = match t.kind {
                    T::RBracket => None,
                    T::Duration => {
                        self.next()?;
                        let step = self.duration(t);
                        let close = self.peek()?;
                        if close.kind != T::RBracket {
                            return Err(self.unexpected(close, "subquery selector", "\"]\""));
                        }
                        Some(step)
                    }
                    _ => return Err(self.unexpected(t, "subquery selector", "duration or \"]\"")),
                };
                let close = self.next()?;
                let start = expr.start;
                self.node(
                    Kind::Subquery {
                        expr,
                        range,
                        step,
                        offset: 0,
                        at: None,
                    },
                    start,
                    close.end,
                )
            }
            _ => Err(self.unexpected(t, "subquery or range", "\":\" or \"]\"")),
        }
    }

    fn parse_offset(&mut self, mut node: Box<Node>) -> PNode {
        self.next()?; // offset
        let mut t = self.peek()?;
        let negative = t.kind == T::Sub;
        if negative {
            self.next()?;
            t = self.peek()?;
        }
        if t.kind != T::Duration {
            return Err(self.unexpected(t, "offset", "duration"));
        }
        self.next()?;
        let d = self.duration(t);
        let d = if negative { -d } else { d };
        let slot = match &mut node.kind {
            Kind::Vector(vs) | Kind::Matrix { vs, .. } => &mut vs.offset,
            Kind::Subquery { offset, .. } => offset,
            _ => {
                self.record(
                    node.start,
                    node.end,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                );
                return Ok(node);
            }
        };
        if *slot != 0 {
            let (s, e) = (node.start, node.end);
            self.record(s, e, "offset may not be set multiple times");
            return Ok(node);
        }
        *slot = d;
        node.end = self.last_end;
        Ok(node)
    }

    fn parse_at(&mut self, mut node: Box<Node>) -> PNode {
        self.next()?; // @
        let t = self.peek()?;
        let at = match t.kind {
            T::Number | T::Add | T::Sub => {
                self.next()?;
                let num = if t.kind == T::Number {
                    t
                } else {
                    let n = self.peek()?;
                    if n.kind != T::Number {
                        return Err(self.unexpected(n, "@", "timestamp"));
                    }
                    self.next()?
                };
                let mut v = self.number(num);
                if t.kind == T::Sub {
                    v = -v;
                }
                if !v.is_finite() || v >= i64::MAX as f64 || v <= i64::MIN as f64 {
                    self.record(
                        node.start,
                        node.end,
                        format!(
                            "timestamp out of bounds for @ modifier: {}",
                            literal::go_float_f6(v)
                        ),
                    );
                }
                AtModifier::Timestamp((v * 1000.0).round() as i64)
            }
            T::Start | T::End => {
                self.next()?;
                for want in [T::LParen, T::RParen] {
                    let p = self.peek()?;
                    if p.kind != want {
                        return Err(self.unexpected(p, "@", "timestamp"));
                    }
                    self.next()?;
                }
                if t.kind == T::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                }
            }
            _ => return Err(self.unexpected(t, "@", "timestamp")),
        };
        let slot = match &mut node.kind {
            Kind::Vector(vs) | Kind::Matrix { vs, .. } => &mut vs.at,
            Kind::Subquery { at, .. } => at,
            _ => {
                self.record(
                    node.start,
                    node.end,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                );
                return Ok(node);
            }
        };
        if slot.is_some() {
            let (s, e) = (node.start, node.end);
            self.record(s, e, "@ <timestamp> may not be set multiple times");
            return Ok(node);
        }
        *slot = Some(at);
        node.end = self.last_end;
        Ok(node)
    }
}
