//! Printing the AST back to PromQL: Prometheus 2.53's `Expr.String()` and
//! `parser.Prettify` (what `/api/v1/format_query` returns), byte for byte.
//!
//! Like Prometheus it prints the tree as it is: it adds no parentheses, so
//! a tree must keep the `Paren` nodes the parser produced to print back to
//! the same query.

use super::literal::format_duration;
use crate::ast::{
    AggregateExpr, AtModifier, BinaryExpr, Cardinality, Expr, SubqueryExpr, VectorSelector,
};
use std::fmt::{self, Write};
use vigil_model::gofmt::{format_float, quote, FloatFormat};
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
        Expr::NumberLiteral(v) => out.push_str(&format_float(*v, FloatFormat::G)),
        Expr::StringLiteral(s) => out.push_str(&quote(s)),
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
        .map(|m| format!("{}{}{}", m.name, m.op.as_str(), quote(&m.value)))
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
    pretty(e, 0, MAX_LINE)
}

fn indent(level: usize) -> String {
    INDENT.repeat(level)
}

fn pretty(e: &Expr, level: usize, max: usize) -> String {
    let flat = format_expr(e);
    let split = flat.len() > max;
    match e {
        Expr::Aggregate(a) if split => {
            let mut s = indent(level);
            write_aggregate_op(&mut s, a);
            s.push_str("(\n");
            if let Some(p) = &a.param {
                s.push_str(&pretty(p, level + 1, max));
                s.push_str(",\n");
            }
            s.push_str(&pretty(&a.expr, level + 1, max));
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
                pretty(&b.lhs, level + 1, max),
                indent(level),
                op,
                pretty(&b.rhs, level + 1, max)
            )
        }
        Expr::Call(c) if split => {
            let args: Vec<String> = c.args.iter().map(|a| pretty(a, level + 1, max)).collect();
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
                pretty(inner, level + 1, max),
                indent(level)
            )
        }
        // Prometheus does not indent a subquery that fits on a line.
        Expr::Subquery(_) if !split => flat,
        Expr::Subquery(sq) => {
            let mut s = pretty(&sq.expr, level, max);
            write_subquery_suffix(&mut s, sq);
            s
        }
        Expr::Unary(u) => {
            let child = pretty(&u.expr, level, max);
            let op = match u.op {
                crate::ast::UnaryOp::Neg => "-",
                crate::ast::UnaryOp::Pos => "+",
            };
            format!("{}{}{}", indent(level), op, child.trim())
        }
        _ => format!("{}{}", indent(level), flat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn fmt(q: &str) -> String {
        format_expr(&parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
    }

    fn pretty10(q: &str) -> String {
        pretty(&parse(q).unwrap_or_else(|e| panic!("{q}: {e}")), 0, 10)
    }

    #[test]
    fn string_form_matches_prometheus() {
        let cases: &[(&str, &str)] = &[
            ("sum(x) by (job)", "sum by (job) (x)"),
            ("sum by(job,zone) (x)", "sum by (job, zone) (x)"),
            ("sum by() (x)", "sum(x)"),
            ("sum without() (x)", "sum without () (x)"),
            ("sum without(a) (x)", "sum without (a) (x)"),
            ("topk by (a) (5, x)", "topk by (a) (5, x)"),
            ("count_values('v', x)", "count_values(\"v\", x)"),
            ("a - on(b) c", "a - on (b) c"),
            ("a - on() c", "a - on () c"),
            ("a - ignoring(b) c", "a - ignoring (b) c"),
            ("a - ignoring() c", "a - c"),
            (
                "a - on(b) group_left(x, y) c",
                "a - on (b) group_left (x, y) c",
            ),
            ("a - on(b) group_left c", "a - on (b) group_left () c"),
            (
                "a - ignoring(b) group_right c",
                "a - ignoring (b) group_right () c",
            ),
            ("a > bool on(b) c", "a > bool on (b) c"),
            ("up == bool 1", "up == bool 1"),
            ("a and b", "a and b"),
            ("a atan2 b", "a atan2 b"),
            ("-a", "-a"),
            ("+a", "+a"),
            ("-(a+b)", "-(a + b)"),
            ("- 1", "-1"),
            ("1e6", "1e+06"),
            ("123456", "123456"),
            ("0.00001", "1e-05"),
            ("0x10", "16"),
            ("Inf", "+Inf"),
            ("-inf", "-Inf"),
            ("nan", "NaN"),
            ("'a\\'b\"c'", "\"a'b\\\"c\""),
            ("`a\\b`", "\"a\\\\b\""),
            (
                "foo{b=\"1\", a=~\"x|y\", c!=''}",
                "foo{a=~\"x|y\",b=\"1\",c!=\"\"}",
            ),
            ("{__name__=\"foo\"}", "{__name__=\"foo\"}"),
            (
                "{__name__=~\"foo\", a=\"b\"}",
                "{__name__=~\"foo\",a=\"b\"}",
            ),
            ("foo:bar{a=\"\\n\"}", "foo:bar{a=\"\\n\"}"),
            ("foo offset 5m", "foo offset 5m"),
            ("foo offset -1h30m", "foo offset -1h30m"),
            ("foo offset 90m", "foo offset 1h30m"),
            ("foo offset 14d", "foo offset 2w"),
            ("foo offset 8d", "foo offset 8d"),
            ("foo @ 10 offset 5m", "foo @ 10.000 offset 5m"),
            ("foo offset 5m @ 1.5", "foo @ 1.500 offset 5m"),
            ("foo @ start()", "foo @ start()"),
            ("foo[5m] offset 1m @ end()", "foo[5m] @ end() offset 1m"),
            ("foo{a=\"b\"}[120s]", "foo{a=\"b\"}[2m]"),
            ("foo[5m:]", "foo[5m:]"),
            (
                "foo[5m:30s] offset 1m @ 100",
                "foo[5m:30s] @ 100.000 offset 1m",
            ),
            (
                "rate(foo[5m])[1h:] offset -5m",
                "rate(foo[5m])[1h:] offset -5m",
            ),
            ("(a)", "(a)"),
            (
                "label_join(x, 'a', ',', 'b')",
                "label_join(x, \"a\", \",\", \"b\")",
            ),
            ("time()", "time()"),
            ("a + b * c", "a + b * c"),
            ("(a + b) * c", "(a + b) * c"),
            ("# comment\nfoo # trailing", "foo"),
        ];
        for &(q, want) in cases {
            assert_eq!(fmt(q), want, "query {q:?}");
        }
    }

    #[test]
    fn prettify_splits_long_nodes() {
        let cases: &[(&str, &str)] = &[
            ("sum(foo)", "sum(foo)"),
            (
                "sum by() (errors:rate5m{a=\"b\"})",
                "sum(\n  errors:rate5m{a=\"b\"}\n)",
            ),
            (
                "sum(errors:rate5m) without(x,y)",
                "sum without (x, y) (\n  errors:rate5m\n)",
            ),
            ("topk(3, errors:rate5m)", "topk(\n  3,\n  errors:rate5m\n)"),
            (
                "max by(a) (min by(a) (errors:rate5m))",
                "max by (a) (\n  min by (a) (\n    errors:rate5m\n  )\n)",
            ),
            ("x+y", "x + y"),
            ("x != bool 1", "  x\n!= bool\n  1"),
            ("x + on(job) y", "  x\n+ on (job)\n  y"),
            (
                "bar_1 + bar_2 + bar_3",
                "    bar_1\n  +\n    bar_2\n+\n  bar_3",
            ),
            ("a + bbbbbb + c_3", "  a + bbbbbb\n+\n  c_3"),
            ("irate(bar[1m])", "irate(\n  bar[1m]\n)"),
            (
                "delta(long_name[10m:1m] @ end() offset 1m)",
                "delta(\n  long_name[10m:1m] @ end() offset 1m\n)",
            ),
            (
                "min_over_time(irate(requests_total[1m])[5m:])",
                "min_over_time(\n  irate(\n    requests_total[1m]\n  )[5m:]\n)",
            ),
            ("(bar)", "(bar)"),
            ("(long_name_)", "(\n  long_name_\n)"),
            ("((long_nm))", "(\n  (long_nm)\n)"),
            ("(1 + 2)", "(1 + 2)"),
            ("(a_long + b_long)", "(\n    a_long\n  +\n    b_long\n)"),
            ("a @ 1", "a @ 1.000"),
            ("-1", "-1"),
            ("-long_name_x", "-long_name_x"),
            ("(-long_name_x)", "(\n  -long_name_x\n)"),
            ("-abs(irate(b[1m]))", "-abs(\n  irate(\n    b[1m]\n  )\n)"),
            ("x_long_name[10m:1m]", "x_long_name[10m:1m]"),
        ];
        for &(q, want) in cases {
            assert_eq!(pretty10(q), want, "query {q:?}");
        }
    }

    #[test]
    fn prettify_uses_100_columns() {
        let short = "sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))";
        assert_eq!(
            prettify(&parse(short).unwrap_or_else(|e| panic!("{e}"))),
            short
        );
        let long = "sum by (instance) (rate(node_cpu_seconds_total{job=~\"node.*\",mode!=\"idle\"}[5m])) / on (instance) group_left () count by (instance) (node_cpu_seconds_total{mode=\"idle\"})";
        let want = "  sum by (instance) (rate(node_cpu_seconds_total{job=~\"node.*\",mode!=\"idle\"}[5m]))\n/ on (instance) group_left ()\n  count by (instance) (node_cpu_seconds_total{mode=\"idle\"})";
        assert_eq!(
            prettify(&parse(long).unwrap_or_else(|e| panic!("{e}"))),
            want
        );
    }
}
