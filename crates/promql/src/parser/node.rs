//! The parser's internal tree: the AST plus byte ranges, type-checked the
//! way Prometheus's `checkAST` does before it becomes an `ast::Expr`.
//!
//! Positions exist only here so the public AST stays lean; the checker
//! reports errors in the same order and at the same positions as
//! Prometheus (children first, aggregation argument before parameter).

use super::error::ParseError;
use crate::ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Cardinality, Expr,
    Function, MatrixSelector, SubqueryExpr, UnaryExpr, UnaryOp, ValueType, VectorMatching,
    VectorSelector,
};
use vigil_model::{MatchOp, Matcher, METRIC_NAME};

/// A vector selector under construction. `name` is empty when not written.
#[derive(Debug)]
pub(crate) struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub offset: i64,
    pub at: Option<AtModifier>,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Number(f64),
    Str(String),
    Vector(Selector),
    /// The selector's own range is kept for error positions.
    Matrix {
        vs: Selector,
        vs_start: usize,
        vs_end: usize,
        range: i64,
    },
    Subquery {
        expr: Box<Node>,
        range: i64,
        step: Option<i64>,
        offset: i64,
        at: Option<AtModifier>,
    },
    Paren(Box<Node>),
    Unary(UnaryOp, Box<Node>),
    Binary {
        op: BinaryOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
        /// Always present until checked, as in Prometheus.
        matching: Option<VectorMatching>,
        return_bool: bool,
    },
    Aggregate {
        op: AggregateOp,
        expr: Box<Node>,
        param: Option<Box<Node>>,
        grouping: Vec<String>,
        without: bool,
    },
    Call {
        func: &'static Function,
        args: Vec<Node>,
    },
    /// Stands in for a construct that already produced an error.
    Invalid,
}

#[derive(Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// Height of the tree below (1 for leaves), to bound recursion.
    pub height: u32,
}

impl Node {
    pub fn new(kind: Kind, start: usize, end: usize) -> Self {
        let child = match &kind {
            Kind::Subquery { expr, .. } | Kind::Paren(expr) | Kind::Unary(_, expr) => expr.height,
            Kind::Binary { lhs, rhs, .. } => lhs.height.max(rhs.height),
            Kind::Aggregate { expr, param, .. } => {
                expr.height.max(param.as_ref().map_or(0, |p| p.height))
            }
            Kind::Call { args, .. } => args.iter().map(|a| a.height).max().unwrap_or(0),
            _ => 0,
        };
        Node {
            kind,
            start,
            end,
            height: child + 1,
        }
    }
}

/// Type-checks a parsed tree like Prometheus's `checkAST`; returns the
/// first error. Also settles vector matching: set operators become
/// many-to-many and matching is dropped unless both sides are vectors.
pub(crate) fn check(input: &str, node: &mut Node) -> Result<ValueType, ParseError> {
    Checker { input }.check(node).map_err(|e| *e)
}

type CResult<T> = Result<T, Box<ParseError>>;

struct Checker<'a> {
    input: &'a str,
}

impl Checker<'_> {
    fn err<T>(&self, start: usize, end: usize, msg: String) -> CResult<T> {
        Err(Box::new(ParseError::new(self.input, start, end, msg)))
    }

    fn expect_type(&self, node: &mut Node, want: ValueType, context: &str) -> CResult<()> {
        let got = self.check(node)?;
        if got != want {
            return self.err(
                node.start,
                node.end,
                format!(
                    "expected type {} in {context}, got {}",
                    want.as_str(),
                    got.as_str()
                ),
            );
        }
        Ok(())
    }

    /// The operator's range: between the operands, trimmed of spaces.
    fn op_range(&self, lhs_end: usize, rhs_start: usize) -> (usize, usize) {
        let b = self.input.as_bytes();
        let mut s = lhs_end;
        while s < rhs_start && b.get(s).is_some_and(|c| c.is_ascii_whitespace()) {
            s += 1;
        }
        let mut e = rhs_start.saturating_sub(1);
        while e > s && b.get(e).is_some_and(|c| c.is_ascii_whitespace()) {
            e -= 1;
        }
        (s, e.max(s))
    }

    /// Checks `node` and its children (children first, as Prometheus) and
    /// returns its type. Kept small: it recurses once per tree level.
    fn check(&self, node: &mut Node) -> CResult<ValueType> {
        let (start, end) = (node.start, node.end);
        match &mut node.kind {
            Kind::Number(_) => Ok(ValueType::Scalar),
            Kind::Str(_) => Ok(ValueType::String),
            Kind::Invalid => Ok(ValueType::Vector),
            Kind::Vector(vs) => self
                .check_selector(vs, start, end)
                .map(|_| ValueType::Vector),
            Kind::Matrix {
                vs,
                vs_start,
                vs_end,
                ..
            } => self
                .check_selector(vs, *vs_start, *vs_end)
                .map(|_| ValueType::Matrix),
            Kind::Paren(e) => self.check(e),
            Kind::Unary(_, e) => self.check_unary(e, start, end),
            Kind::Subquery { expr, .. } => self.check_subquery(expr, start, end),
            Kind::Aggregate {
                op, expr, param, ..
            } => self.check_aggregate(*op, expr, param.as_deref_mut()),
            Kind::Call { func, args } => self.check_call(func, args, start, end),
            Kind::Binary {
                op,
                lhs,
                rhs,
                matching,
                return_bool,
            } => self.check_binary(*op, lhs, rhs, matching, *return_bool, start, end),
        }
    }

    #[inline(never)]
    fn check_unary(&self, e: &mut Node, start: usize, end: usize) -> CResult<ValueType> {
        let t = self.check(e)?;
        if t != ValueType::Scalar && t != ValueType::Vector {
            return self.err(
                start,
                end,
                format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    vigil_model::gofmt::quote(t.as_str())
                ),
            );
        }
        Ok(t)
    }

    #[inline(never)]
    fn check_subquery(&self, e: &mut Node, start: usize, end: usize) -> CResult<ValueType> {
        let t = self.check(e)?;
        if t != ValueType::Vector {
            return self.err(
                start,
                end,
                format!(
                    "subquery is only allowed on instant vector, got {} instead",
                    t.api_name()
                ),
            );
        }
        Ok(ValueType::Matrix)
    }

    #[inline(never)]
    fn check_aggregate(
        &self,
        op: AggregateOp,
        expr: &mut Node,
        param: Option<&mut Node>,
    ) -> CResult<ValueType> {
        self.expect_type(expr, ValueType::Vector, "aggregation expression")?;
        if let Some(p) = param {
            match op {
                AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Quantile => {
                    self.expect_type(p, ValueType::Scalar, "aggregation parameter")?
                }
                AggregateOp::CountValues => {
                    self.expect_type(p, ValueType::String, "aggregation parameter")?
                }
                _ => {}
            }
        }
        Ok(ValueType::Vector)
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn check_binary(
        &self,
        op: BinaryOp,
        lhs: &mut Node,
        rhs: &mut Node,
        matching: &mut Option<VectorMatching>,
        return_bool: bool,
        start: usize,
        end: usize,
    ) -> CResult<ValueType> {
        let lt = self.check(lhs)?;
        let rt = self.check(rhs)?;
        let op_range = || self.op_range(lhs.end, rhs.start);
        if return_bool && !op.is_comparison() {
            let (s, e) = op_range();
            return self.err(
                s,
                e,
                "bool modifier can only be used on comparison operators".into(),
            );
        }
        if op.is_comparison() && !return_bool && lt == ValueType::Scalar && rt == ValueType::Scalar
        {
            let (s, e) = op_range();
            return self.err(
                s,
                e,
                "comparisons between scalars must use BOOL modifier".into(),
            );
        }
        if let Some(m) = matching.as_mut() {
            if op.is_set() && m.card == Cardinality::OneToOne {
                m.card = Cardinality::ManyToMany;
            }
            if m.on {
                if let Some(l) = m.matching_labels.iter().find(|l| m.include.contains(l)) {
                    let (s, e) = op_range();
                    return self.err(
                        s,
                        e,
                        format!(
                            "label {} must not occur in ON and GROUP clause at once",
                            vigil_model::gofmt::quote(l)
                        ),
                    );
                }
            }
        }
        const ONLY: &str = "binary expression must contain only scalar and instant vector types";
        if lt != ValueType::Scalar && lt != ValueType::Vector {
            return self.err(lhs.start, lhs.end, ONLY.into());
        }
        if rt != ValueType::Scalar && rt != ValueType::Vector {
            return self.err(rhs.start, rhs.end, ONLY.into());
        }
        let quoted_op = || vigil_model::gofmt::quote(op.as_str());
        if lt != ValueType::Vector || rt != ValueType::Vector {
            if matching
                .as_ref()
                .is_some_and(|m| !m.matching_labels.is_empty())
            {
                return self.err(
                    start,
                    end,
                    "vector matching only allowed between instant vectors".into(),
                );
            }
            *matching = None;
        } else if op.is_set() {
            if let Some(m) = matching.as_ref() {
                if matches!(m.card, Cardinality::OneToMany | Cardinality::ManyToOne) {
                    return self.err(
                        start,
                        end,
                        format!("no grouping allowed for {} operation", quoted_op()),
                    );
                }
                if m.card != Cardinality::ManyToMany {
                    return self.err(
                        start,
                        end,
                        "set operations must always be many-to-many".into(),
                    );
                }
            }
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && op.is_set() {
            return self.err(
                start,
                end,
                format!(
                    "set operator {} not allowed in binary scalar expression",
                    quoted_op()
                ),
            );
        }
        if lt == ValueType::Scalar && rt == ValueType::Scalar {
            Ok(ValueType::Scalar)
        } else {
            Ok(ValueType::Vector)
        }
    }

    #[inline(never)]
    fn check_call(
        &self,
        func: &Function,
        args: &mut [Node],
        start: usize,
        end: usize,
    ) -> CResult<ValueType> {
        let nargs = func.arg_types.len();
        let name = vigil_model::gofmt::quote(func.name);
        if func.variadic == 0 {
            if nargs != args.len() {
                return self.err(
                    start,
                    end,
                    format!(
                        "expected {nargs} argument(s) in call to {name}, got {}",
                        args.len()
                    ),
                );
            }
        } else {
            let na = nargs.saturating_sub(1);
            if na > args.len() {
                return self.err(
                    start,
                    end,
                    format!(
                        "expected at least {na} argument(s) in call to {name}, got {}",
                        args.len()
                    ),
                );
            }
            let max = na + func.variadic.max(0) as usize;
            if func.variadic > 0 && max < args.len() {
                return self.err(
                    start,
                    end,
                    format!(
                        "expected at most {max} argument(s) in call to {name}, got {}",
                        args.len()
                    ),
                );
            }
        }
        let context = format!("call to function {name}");
        for (i, arg) in args.iter_mut().enumerate() {
            let idx = if i >= nargs {
                if func.variadic == 0 || nargs == 0 {
                    break;
                }
                nargs - 1
            } else {
                i
            };
            self.expect_type(arg, func.arg_types[idx], &context)?;
        }
        Ok(func.return_type)
    }

    #[inline(never)]
    fn check_selector(&self, vs: &Selector, start: usize, end: usize) -> CResult<()> {
        if !vs.name.is_empty() {
            // The last matcher is the one for the name written outside braces.
            let inner = &vs.matchers[..vs.matchers.len().saturating_sub(1)];
            if let Some(m) = inner.iter().find(|m| m.name == METRIC_NAME) {
                return self.err(
                    start,
                    end,
                    format!(
                        "metric name must not be set twice: {} or {}",
                        vigil_model::gofmt::quote(&vs.name),
                        vigil_model::gofmt::quote(&m.value)
                    ),
                );
            }
            return Ok(());
        }
        if !vs.matchers.iter().any(|m| !m.matches("")) {
            return self.err(
                start,
                end,
                "vector selector must contain at least one non-empty matcher".into(),
            );
        }
        Ok(())
    }
}

fn selector_into(vs: Selector) -> VectorSelector {
    VectorSelector {
        name: if vs.name.is_empty() {
            None
        } else {
            Some(vs.name)
        },
        matchers: vs.matchers,
        offset: vs.offset,
        at: vs.at,
    }
}

/// Converts a checked tree into the public AST.
pub(crate) fn into_expr(node: Node) -> Expr {
    let boxed = |n: Box<Node>| Box::new(into_expr(*n));
    match node.kind {
        Kind::Number(v) => Expr::NumberLiteral(v),
        Kind::Str(s) => Expr::StringLiteral(s),
        Kind::Vector(vs) => Expr::VectorSelector(selector_into(vs)),
        Kind::Matrix { vs, range, .. } => Expr::MatrixSelector(MatrixSelector {
            selector: selector_into(vs),
            range,
        }),
        Kind::Subquery {
            expr,
            range,
            step,
            offset,
            at,
        } => Expr::Subquery(SubqueryExpr {
            expr: boxed(expr),
            range,
            step,
            offset,
            at,
        }),
        Kind::Paren(e) => Expr::Paren(boxed(e)),
        Kind::Unary(op, e) => Expr::Unary(UnaryExpr { op, expr: boxed(e) }),
        Kind::Binary {
            op,
            lhs,
            rhs,
            matching,
            return_bool,
        } => Expr::Binary(BinaryExpr {
            op,
            lhs: boxed(lhs),
            rhs: boxed(rhs),
            matching,
            return_bool,
        }),
        Kind::Aggregate {
            op,
            expr,
            param,
            grouping,
            without,
        } => Expr::Aggregate(AggregateExpr {
            op,
            expr: boxed(expr),
            param: param.map(boxed),
            grouping,
            without,
        }),
        Kind::Call { func, args } => Expr::Call(Call {
            func,
            args: args.into_iter().map(into_expr).collect(),
        }),
        // Never reached: a tree with an Invalid node always carries an error.
        Kind::Invalid => Expr::NumberLiteral(f64::NAN),
    }
}

/// The matcher Prometheus adds for a metric name written outside braces.
pub(crate) fn name_matcher(name: &str) -> Matcher {
    Matcher::equal(METRIC_NAME, name)
}

/// Maps a match-operator token to the matcher operator.
pub(crate) fn match_op(kind: super::lexer::T) -> Option<MatchOp> {
    use super::lexer::T;
    match kind {
        T::Eql => Some(MatchOp::Equal),
        T::Neq => Some(MatchOp::NotEqual),
        T::EqlRegex => Some(MatchOp::Regex),
        T::NeqRegex => Some(MatchOp::NotRegex),
        _ => None,
    }
}
