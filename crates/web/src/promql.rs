//! `QueryEngine` over Vigil's PromQL parser and evaluator: the adapter the
//! binary hands to `Web::new` (and to the CLI's `--data` mode).
//!
//! It maps parse errors (with their byte position) and `EvalError` kinds to
//! the API's error classes and converts results; it adds no semantics.

use std::sync::Arc;

use vigil_model::storage::Queryable;
use vigil_model::Matcher;
use vigil_promql::ast::Expr;
use vigil_promql::engine::{Engine, EvalError, QueryControl, QueryResult, Value};
use vigil_promql::parser::{self, ParseError, ParseOptions};

use crate::sources::{
    ErrorKind, MatrixSeries, QueryEngine, QueryError, QueryOptions, QueryOutput, QueryValue,
    SampleStats, VectorElement,
};

/// The real engine over a storage.
pub struct PromqlEngine {
    engine: Arc<Engine>,
    storage: Arc<dyn Queryable>,
    parse: ParseOptions,
}

impl PromqlEngine {
    /// Parses with the default options (experimental functions off).
    pub fn new(engine: Arc<Engine>, storage: Arc<dyn Queryable>) -> Self {
        PromqlEngine {
            engine,
            storage,
            parse: ParseOptions::default(),
        }
    }

    /// Parser options for every query, e.g. experimental functions from
    /// `--enable-feature=promql-experimental-functions`.
    pub fn with_parse_options(mut self, opts: ParseOptions) -> Self {
        self.parse = opts;
        self
    }

    fn parse(&self, query: &str) -> Result<Expr, QueryError> {
        parser::parse_with_options(query, self.parse).map_err(parse_error)
    }
}

fn parse_error(e: ParseError) -> QueryError {
    QueryError {
        kind: ErrorKind::BadData,
        message: e.to_string(),
        position: Some(e.start),
    }
}

fn eval_error(e: EvalError) -> QueryError {
    let kind = match &e {
        EvalError::Execution(_) | EvalError::TooManySamples => ErrorKind::Execution,
        EvalError::Timeout(_) => ErrorKind::Timeout,
        EvalError::Canceled(_) => ErrorKind::Canceled,
        EvalError::BadData(_) => ErrorKind::BadData,
        EvalError::Storage(_) | EvalError::Internal(_) => ErrorKind::Internal,
    };
    QueryError::new(kind, e.to_string())
}

fn control(opts: &QueryOptions) -> QueryControl {
    let mut ctl = QueryControl::new();
    if let Some(d) = opts.deadline {
        ctl = ctl.with_deadline(d);
    }
    if let Some(lb) = opts.lookback_delta {
        ctl = ctl.with_lookback_delta(lb);
    }
    ctl
}

fn output(r: QueryResult) -> QueryOutput {
    let value = match r.value {
        Value::Scalar { t, v } => QueryValue::Scalar { t, v },
        Value::String { t, v } => QueryValue::String { t, s: v },
        Value::Vector(v) => QueryValue::Vector(
            v.into_iter()
                .map(|s| VectorElement {
                    labels: s.labels,
                    t: s.t,
                    v: s.v,
                })
                .collect(),
        ),
        Value::Matrix(m) => QueryValue::Matrix(
            m.into_iter()
                .map(|s| MatrixSeries {
                    labels: s.labels,
                    samples: s.samples,
                })
                .collect(),
        ),
    };
    QueryOutput {
        value,
        warnings: r.warnings,
        stats: SampleStats {
            total_queryable_samples: r.stats.total_samples as i64,
            peak_samples: r.stats.peak_samples as i64,
        },
    }
}

/// Collects the matchers of every vector selector in `e`.
fn collect_selectors(e: &Expr, out: &mut Vec<Vec<Matcher>>) {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(vs) => out.push(vs.matchers.clone()),
        Expr::MatrixSelector(ms) => out.push(ms.selector.matchers.clone()),
        Expr::Subquery(sq) => collect_selectors(&sq.expr, out),
        Expr::Paren(inner) => collect_selectors(inner, out),
        Expr::Unary(u) => collect_selectors(&u.expr, out),
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out);
            collect_selectors(&b.rhs, out);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect_selectors(p, out);
            }
            collect_selectors(&a.expr, out);
        }
        Expr::Call(c) => c.args.iter().for_each(|a| collect_selectors(a, out)),
    }
}

impl QueryEngine for PromqlEngine {
    fn instant_query(
        &self,
        query: &str,
        time: i64,
        opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let expr = self.parse(query)?;
        self.engine
            .instant_query(self.storage.as_ref(), &expr, time, &control(opts))
            .map(output)
            .map_err(eval_error)
    }

    fn range_query(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let expr = self.parse(query)?;
        self.engine
            .range_query(
                self.storage.as_ref(),
                &expr,
                start,
                end,
                step,
                &control(opts),
            )
            .map(output)
            .map_err(eval_error)
    }

    fn format_query(&self, query: &str) -> Result<String, QueryError> {
        let expr = self.parse(query)?;
        Ok(parser::prettify(&expr))
    }

    fn parse_metric_selector(&self, selector: &str) -> Result<Vec<Matcher>, QueryError> {
        parser::parse_metric_selector(selector).map_err(parse_error)
    }

    fn selectors(&self, query: &str) -> Result<Vec<Vec<Matcher>>, QueryError> {
        let expr = self.parse(query)?;
        let mut out = Vec::new();
        collect_selectors(&expr, &mut out);
        Ok(out)
    }
}
