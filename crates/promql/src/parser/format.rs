//! Printing the AST back to PromQL: Prometheus 2.53's `Expr.String()` and
//! `parser.Prettify` (what `/api/v1/format_query` returns), byte for byte.
//!
//! Like Prometheus it prints the tree as it is: it adds no parentheses, so
//! a tree must keep the `Paren` nodes the parser produced to print back to
//! the same query.

use super::literal::{format_duration, go_float, go_quote};
use crate::ast::{
    AggregateExpr, AtModifier, BinaryExpr, Cardinality, Expr, SubqueryExpr, VectorSelector,
};
use std::fmt::{self, Write};
use vigil_model::{MatchOp, METRIC_NAME};

/// Prometheus's `Expr.String()`.
pub fn format_expr(e: &Expr) -> String {
    let mut s = String::with_capacity(64);
    write_expr(&mut s, e);
    s
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_expr(self))
    }
}

fn write_expr(out: &mut String, e: &Expr) {
    match e {
        Expr::NumberLiteral(v) => out.push_str(&go_float(*v)),
        Expr::StringLiteral(s) => out.push_str(&go_quote(s)),
        Expr::VectorSelector(vs) => {
            write_selector(out, vs);
            write_at_offset(out, vs.at, vs.offset);
        }
        Expr::MatrixSelector(m) => {
            write_selector(out, &m.selector);
            let _ = write!(out, "[{}]", format_duration(m.range));
            write_at_offset(out, m.selector.at, m.selector.offset);
        }
        Expr::Subquery(sq) => {
            write_expr(out, &sq.expr);
            write_subquery_suffix(out, sq);
        }
        Expr::Paren(inner) => {
            out.push('(');
            write_expr(out, inner);
            out.push(')');
        }
        Expr::Unary(u) => {
            out.push_str(match u.op {
                crate::ast::UnaryOp::Neg => "-",
                crate::ast::UnaryOp::Pos => "+",
            });
            write_expr(out, &u.expr);
        }
        Expr::Binary(b) => {
            write_expr(out, &b.lhs);
            out.push(' ');
            write_binary_op(out, b);
            out.push(' ');
            write_expr(out, &b.rhs);
        }
        Expr::Aggregate(a) => {
            write_aggregate_op(out, a);
            out.push('(');
            if let Some(p) = &a.param {
                write_expr(out, p);
                out.push_str(", ");
            }
            write_expr(out, &a.expr);
            out.push(')');
        }
        Expr::Call(c) => {
            out.push_str(c.func.name);
            out.push('(');
            for (i, arg) in c.args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, arg);
            }
            out.push(')');
        }
    }
}

/// `name{matchers}` with matchers sorted by their text and the metric-name
/// matcher folded into the name.
fn write_selector(out: &mut String, vs: &VectorSelector) {
    let name = vs.name.as_deref().unwrap_or("");
    let mut labels: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            !(m.name == METRIC_NAME
                && m.op == MatchOp::Equal
                && m.value == name
                && !m.value.is_empty())
        })
        .map(|m| format!("{}{}{}", m.name, m.op.as_str(), go_quote(&m.value)))
        .collect();
    out.push_str(name);
    if labels.is_empty() {
        return;
    }
    labels.sort();
    out.push('{');
    out.push_str(&labels.join(","));
    out.push('}');
}

fn write_at_offset(out: &mut String, at: Option<AtModifier>, offset: i64) {
    match at {
        Some(AtModifier::Timestamp(ms)) => {
            let _ = write!(out, " @ {:.3}", ms as f64 / 1000.0);
        }
        Some(AtModifier::Start) => out.push_str(" @ start()"),
        Some(AtModifier::End) => out.push_str(" @ end()"),
        None => {}
    }
    if offset > 0 {
        let _ = write!(out, " offset {}", format_duration(offset));
    } else if offset < 0 {
        let _ = write!(out, " offset -{}", format_duration(offset.saturating_neg()));
    }
}

fn write_subquery_suffix(out: &mut String, sq: &SubqueryExpr) {
    let step = match sq.step {
        Some(s) if s != 0 => format_duration(s),
        _ => String::new(),
    };
    let _ = write!(out, "[{}:{}]", format_duration(sq.range), step);
    write_at_offset(out, sq.at, sq.offset);
}

/// `op[ bool][ on|ignoring (...)[ group_x (...)]]`.
fn write_binary_op(out: &mut String, b: &BinaryExpr) {
    out.push_str(b.op.as_str());
    if b.return_bool {
        out.push_str(" bool");
    }
    if let Some(vm) = &b.matching {
        if !vm.matching_labels.is_empty() || vm.on {
            let _ = write!(
                out,
                " {} ({})",
                if vm.on { "on" } else { "ignoring" },
                vm.matching_labels.join(", ")
            );
            match vm.card {
                Cardinality::ManyToOne => {
                    let _ = write!(out, " group_left ({})", vm.include.join(", "));
                }
                Cardinality::OneToMany => {
                    let _ = write!(out, " group_right ({})", vm.include.join(", "));
                }
                _ => {}
            }
        }
    }
}

/// `sum`, `sum by (a) ` or `sum without (a) ` (note the trailing space).
fn write_aggregate_op(out: &mut String, a: &AggregateExpr) {
    out.push_str(a.op.as_str());
    if a.without {
        let _ = write!(out, " without ({}) ", a.grouping.join(", "));
    } else if !a.grouping.is_empty() {
        let _ = write!(out, " by ({}) ", a.grouping.join(", "));
    }
}

const MAX_LINE: usize = 100;
const INDENT: &str = "  ";

/// Prometheus's `parser.Prettify`: splits nodes longer than 100 characters
/// over several lines, indenting two spaces per level.
pub fn prettify(e: &Expr) -> String {
    pretty(e, 0)
}

fn indent(level: usize) -> String {
    INDENT.repeat(level)
}

fn pretty(e: &Expr, level: usize) -> String {
    let flat = format_expr(e);
    let split = flat.len() > MAX_LINE;
    match e {
        Expr::Aggregate(a) if split => {
            let mut s = indent(level);
            write_aggregate_op(&mut s, a);
            s.push_str("(\n");
            if let Some(p) = &a.param {
                s.push_str(&pretty(p, level + 1));
                s.push_str(",\n");
            }
            s.push_str(&pretty(&a.expr, level + 1));
            s.push('\n');
            s.push_str(&indent(level));
            s.push(')');
            s
        }
        Expr::Binary(b) if split => {
            let mut op = String::new();
            write_binary_op(&mut op, b);
            format!(
                "{}\n{}{}\n{}",
                pretty(&b.lhs, level + 1),
                indent(level),
                op,
                pretty(&b.rhs, level + 1)
            )
        }
        Expr::Call(c) if split => {
            let args: Vec<String> = c.args.iter().map(|a| pretty(a, level + 1)).collect();
            format!(
                "{}{}(\n{}\n{})",
                indent(level),
                c.func.name,
                args.join(",\n"),
                indent(level)
            )
        }
        Expr::Paren(inner) if split => {
            format!(
                "{}(\n{}\n{})",
                indent(level),
                pretty(inner, level + 1),
                indent(level)
            )
        }
        // Prometheus does not indent a subquery that fits on a line.
        Expr::Subquery(_) if !split => flat,
        Expr::Subquery(sq) => {
            let mut s = pretty(&sq.expr, level);
            write_subquery_suffix(&mut s, sq);
            s
        }
        Expr::Unary(u) => {
            let child = pretty(&u.expr, level);
            let op = match u.op {
                crate::ast::UnaryOp::Neg => "-",
                crate::ast::UnaryOp::Pos => "+",
            };
            format!("{}{}{}", indent(level), op, child.trim())
        }
        _ => format!("{}{}", indent(level), flat),
    }
}
