//! The evaluator core: walks the AST once per query, evaluating each node for
//! all steps of its grid.
//!
//! Selectors (and the range functions and element-wise maps stacked on them)
//! stay lazy: a `Lazy` source produces one output series per storage series,
//! computed in parallel batches, so an aggregation on top never holds the
//! whole input. Anything that needs all series at once materializes a
//! `StepVector`. Step-invariant subtrees (`@`) are evaluated for one step
//! and broadcast, as Prometheus does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vigil_model::storage::{Querier, Queryable, SelectHints, Series as StorageSeries};
use vigil_model::{Labels, MatchOp, Sample, METRIC_NAME};

use crate::ast::{AtModifier, Call, Expr, MatrixSelector, SubqueryExpr, UnaryOp, VectorSelector};

use super::range_fns::{self, RangeFn, Windows};
use super::selector;
use super::types::{
    is_present, Grid, Hold, RangeSeries, SampleBudget, StepSeries, StepVector, Val, ABSENT,
};
use super::{
    aggregate, binary, functions, EvalError, InstantSample, QueryResult, QueryStats, Series, Value,
};

/// Settings of one query run.
pub struct Env {
    pub lookback: i64,
    pub max_samples: usize,
    pub default_eval_interval: i64,
    pub threads: usize,
    pub cancel: Arc<AtomicBool>,
    pub deadline: Option<Instant>,
}

/// Per-worker scratch space reused across series.
#[derive(Default)]
pub struct Scratch {
    pub samples: Vec<Sample>,
    pub range: range_fns::Scratch,
}

pub type Producer<'q> = Box<
    dyn Fn(&dyn StorageSeries, &mut Scratch) -> Result<Option<StepSeries>, EvalError>
        + Send
        + Sync
        + 'q,
>;

/// Which duplicate-label-set check a lazy source still owes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dup {
    /// Output label sets are known to be distinct.
    Unique,
    /// Prometheus's check on whole series (range functions, unary minus):
    /// any two outputs with the same labels are an error.
    WholeSeries,
    /// Prometheus's per-step check (`rangeEval`): outputs with the same labels
    /// merge, and are an error only where both have a point.
    PerStep,
}

/// Where a lazy source's output labels come from. Selectors leave labels
/// in storage until a consumer needs them, so an aggregation can group
/// without copying every input series' labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelsFrom {
    /// `StepSeries::labels` is filled in by the producer.
    Produced,
    /// The storage series' labels.
    Storage,
    /// The storage series' labels without `__name__`.
    StorageWithoutName,
}

impl LabelsFrom {
    /// The output labels of a series produced from `s`.
    pub fn fill(self, s: &dyn StorageSeries, produced: Labels) -> Labels {
        match self {
            LabelsFrom::Produced => produced,
            LabelsFrom::Storage => s.labels().clone(),
            LabelsFrom::StorageWithoutName => s.labels().without_metric_name(),
        }
    }
}

/// An instant vector computed one storage series at a time.
pub struct Lazy<'q> {
    pub series: Vec<Box<dyn StorageSeries>>,
    pub produce: Producer<'q>,
    pub dup: Dup,
    /// Every output series has the same `__name__` (or none).
    pub name_fixed: bool,
    pub labels: LabelsFrom,
}

pub enum Src<'q> {
    Val(Val),
    Lazy(Lazy<'q>),
}

pub struct Evaluator<'q> {
    querier: Option<&'q dyn Querier>,
    pub env: &'q Env,
    pub budget: Arc<SampleBudget>,
    pub query_start: i64,
    pub query_end: i64,
    warnings: Mutex<Vec<String>>,
}

/// Functions whose value depends on the evaluation time even when all their
/// arguments are step-invariant (Prometheus's `AtModifierUnsafeFunctions`;
/// its test harness also reads it to know which queries it may pin with `@`).
pub const AT_MODIFIER_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

pub fn step_invariant(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::VectorSelector(vs) => vs.at.is_some(),
        Expr::MatrixSelector(ms) => ms.selector.at.is_some(),
        Expr::Subquery(sq) => sq.at.is_some(),
        Expr::Paren(x) => step_invariant(x),
        Expr::Unary(u) => step_invariant(&u.expr),
        Expr::Aggregate(a) => step_invariant(&a.expr),
        Expr::Binary(b) => step_invariant(&b.lhs) && step_invariant(&b.rhs),
        Expr::Call(c) => {
            !AT_MODIFIER_UNSAFE_FUNCTIONS.contains(&c.func.name)
                && c.args.iter().all(step_invariant)
        }
    }
}

pub fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(x) = e {
        e = x;
    }
    e
}

fn has_fixed_name(vs: &VectorSelector) -> bool {
    vs.matchers
        .iter()
        .any(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal)
}

/// Grids longer than this (and than `max_samples`) are refused up front:
/// every series on them holds one 8-byte slot per step.
const MAX_DENSE_STEPS: usize = 1 << 24;

/// Go's subquery start alignment: the first multiple of `step` at or after
/// `t` (with Go's truncating division).
fn align_up(t: i64, step: i64) -> i64 {
    let mut s = step * (t / step);
    if s < t {
        s += step;
    }
    s
}

/// Runs one query.
pub fn run(
    queryable: &dyn Queryable,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    env: Env,
) -> Result<QueryResult, EvalError> {
    let grid = if step == 0 {
        Grid::instant(start)
    } else {
        Grid::range(start, end, step)
    };
    if grid.len > env.max_samples.max(MAX_DENSE_STEPS) {
        return Err(EvalError::TooManySamples);
    }
    let mut bounds: Option<(i64, i64)> = None;
    selector_bounds(expr, grid.start, grid.end(), start, end, &env, &mut bounds);
    let querier = match bounds {
        Some((mint, maxt)) => Some(
            queryable
                .querier(mint, maxt)
                .map_err(|e| EvalError::Storage(e.to_string()))?,
        ),
        None => None,
    };
    let ev = Evaluator {
        querier: querier.as_deref(),
        env: &env,
        budget: SampleBudget::new(env.max_samples),
        query_start: start,
        query_end: end,
        warnings: Mutex::new(Vec::new()),
    };
    let val = ev.eval(expr, grid)?;
    let value = if step == 0 {
        match val {
            Val::Scalar(v) => Value::Scalar {
                t: start,
                v: v.first().copied().unwrap_or(f64::NAN),
            },
            Val::String(s) => Value::String { t: start, v: s },
            Val::Vector(v) => Value::Vector(
                v.series
                    .into_iter()
                    .filter(|s| is_present(s.vals[0]))
                    .map(|s| InstantSample {
                        labels: s.labels,
                        t: start,
                        v: s.vals[0],
                    })
                    .collect(),
            ),
            Val::Matrix(m) => {
                let mut out: Vec<Series> = m
                    .into_iter()
                    .map(|s| Series {
                        labels: s.labels,
                        samples: s.samples,
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
        }
    } else {
        match val {
            Val::Scalar(v) => Value::Matrix(vec![Series {
                labels: Labels::empty(),
                samples: v
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| Sample::new(grid.ts(i), x))
                    .collect(),
            }]),
            Val::Vector(v) => {
                let mut out: Vec<Series> = v
                    .series
                    .into_iter()
                    .filter_map(|s| {
                        let samples: Vec<Sample> = s
                            .vals
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| is_present(**v))
                            .map(|(i, &v)| Sample::new(grid.ts(i), v))
                            .collect();
                        (!samples.is_empty()).then_some(Series {
                            labels: s.labels,
                            samples,
                        })
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
            Val::String(_) | Val::Matrix(_) => {
                return Err(EvalError::BadData(
                    "invalid expression type for range query, must be Scalar or instant Vector"
                        .to_string(),
                ))
            }
        }
    };
    let warnings = ev.warnings.lock().map(|w| w.clone()).unwrap_or_default();
    Ok(QueryResult {
        value,
        warnings,
        stats: QueryStats {
            total_samples: ev.budget.total(),
            peak_samples: ev.budget.peak(),
        },
    })
}

fn at_time(at: AtModifier, qs: i64, qe: i64) -> i64 {
    match at {
        AtModifier::Timestamp(t) => t,
        AtModifier::Start => qs,
        AtModifier::End => qe,
    }
}

/// Widens `acc` to the storage time range every selector under `e` needs
/// when `e` is evaluated at times `[s, e_]`.
fn selector_bounds(
    e: &Expr,
    s: i64,
    e_: i64,
    qs: i64,
    qe: i64,
    env: &Env,
    acc: &mut Option<(i64, i64)>,
) {
    let mut widen = |lo: i64, hi: i64| {
        *acc = Some(match *acc {
            Some((a, b)) => (a.min(lo), b.max(hi)),
            None => (lo, hi),
        });
    };
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(vs) => {
            let (a, b) = match vs.at {
                Some(at) => {
                    let t = at_time(at, qs, qe);
                    // `timestamp(x @ t offset o)` reads at `t` itself.
                    widen(t - env.lookback, t);
                    (t, t)
                }
                None => (s, e_),
            };
            widen(a - vs.offset - env.lookback, b - vs.offset);
        }
        Expr::MatrixSelector(ms) => {
            let vs = &ms.selector;
            let (a, b) = match vs.at {
                Some(at) => {
                    let t = at_time(at, qs, qe);
                    (t, t)
                }
                None => (s, e_),
            };
            widen(a - vs.offset - ms.range, b - vs.offset);
        }
        Expr::Subquery(sq) => {
            let (a, b) = match sq.at {
                Some(at) => {
                    let t = at_time(at, qs, qe);
                    (t, t)
                }
                None => (s, e_),
            };
            selector_bounds(
                &sq.expr,
                a - sq.offset - sq.range,
                b - sq.offset,
                qs,
                qe,
                env,
                acc,
            );
        }
        Expr::Paren(x) => selector_bounds(x, s, e_, qs, qe, env, acc),
        Expr::Unary(u) => selector_bounds(&u.expr, s, e_, qs, qe, env, acc),
        Expr::Binary(b) => {
            selector_bounds(&b.lhs, s, e_, qs, qe, env, acc);
            selector_bounds(&b.rhs, s, e_, qs, qe, env, acc);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                selector_bounds(p, s, e_, qs, qe, env, acc);
            }
            selector_bounds(&a.expr, s, e_, qs, qe, env, acc);
        }
        Expr::Call(c) => {
            for a in &c.args {
                selector_bounds(a, s, e_, qs, qe, env, acc);
            }
        }
    }
}

impl<'q> Evaluator<'q> {
    /// Fails when the query was cancelled or ran out of time.
    pub fn check(&self) -> Result<(), EvalError> {
        if self.env.cancel.load(Ordering::Relaxed) {
            return Err(EvalError::Canceled("expression evaluation"));
        }
        if self.env.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(EvalError::Timeout("expression evaluation"));
        }
        Ok(())
    }

    pub fn warn(&self, w: String) {
        if let Ok(mut ws) = self.warnings.lock() {
            if !ws.contains(&w) {
                ws.push(w);
            }
        }
    }

    pub fn at_time(&self, at: AtModifier) -> i64 {
        at_time(at, self.query_start, self.query_end)
    }

    pub fn empty_vector(&self) -> StepVector {
        StepVector {
            series: Vec::new(),
            hold: Hold::none(&self.budget),
        }
    }

    /// Wraps freshly computed series, charging their points to the budget.
    pub fn vector(&self, series: Vec<StepSeries>) -> Result<StepVector, EvalError> {
        let n = series.iter().map(|s| s.points()).sum();
        Ok(StepVector {
            series,
            hold: Hold::new(&self.budget, n)?,
        })
    }

    /// Evaluates `e` for every step of `g`, materializing vectors.
    pub fn eval(&'q self, e: &'q Expr, g: Grid) -> Result<Val, EvalError> {
        match self.eval_src(e, g)? {
            Src::Val(v) => Ok(v),
            Src::Lazy(l) => Ok(Val::Vector(self.materialize(l, g)?)),
        }
    }

    /// Evaluates an expression of scalar type.
    pub fn eval_scalar(&'q self, e: &'q Expr, g: Grid) -> Result<Vec<f64>, EvalError> {
        match self.eval(e, g)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(EvalError::Internal(format!(
                "expected scalar expression, got {:?}",
                e.value_type()
            ))),
        }
    }

    pub fn eval_vector(&'q self, e: &'q Expr, g: Grid) -> Result<StepVector, EvalError> {
        match self.eval(e, g)? {
            Val::Vector(v) => Ok(v),
            _ => Err(EvalError::Internal(format!(
                "expected instant vector expression, got {:?}",
                e.value_type()
            ))),
        }
    }

    pub fn eval_string(&'q self, e: &'q Expr) -> Result<String, EvalError> {
        match unwrap_parens(e) {
            Expr::StringLiteral(s) => Ok(s.clone()),
            _ => Err(EvalError::Internal("expected string literal".into())),
        }
    }

    /// Evaluates `e`, keeping selector-based vectors lazy where possible.
    pub fn eval_src(&'q self, e: &'q Expr, g: Grid) -> Result<Src<'q>, EvalError> {
        self.check()?;
        if g.len > 1
            && !matches!(e, Expr::NumberLiteral(_) | Expr::StringLiteral(_))
            && step_invariant(e)
        {
            let one = self.eval(e, g.first())?;
            return Ok(Src::Val(self.broadcast(one, g)?));
        }
        match e {
            Expr::NumberLiteral(v) => Ok(Src::Val(Val::Scalar(vec![*v; g.len]))),
            Expr::StringLiteral(s) => Ok(Src::Val(Val::String(s.clone()))),
            Expr::Paren(x) => self.eval_src(x, g),
            Expr::VectorSelector(vs) => self.vector_selector(vs, g).map(Src::Lazy),
            Expr::MatrixSelector(ms) => self
                .matrix_selector_raw(ms, g)
                .map(|m| Src::Val(Val::Matrix(m))),
            Expr::Subquery(sq) => self.subquery_raw(sq, g).map(|m| Src::Val(Val::Matrix(m))),
            Expr::Unary(u) => self.unary(u.op, &u.expr, g),
            Expr::Binary(b) => binary::eval_binary(self, b, g),
            Expr::Aggregate(a) => {
                aggregate::eval_aggregate(self, a, g).map(|v| Src::Val(Val::Vector(v)))
            }
            Expr::Call(c) => self.call(c, g),
        }
    }

    fn broadcast(&self, v: Val, g: Grid) -> Result<Val, EvalError> {
        Ok(match v {
            Val::Scalar(s) => Val::Scalar(vec![s.first().copied().unwrap_or(f64::NAN); g.len]),
            Val::Vector(vec) => {
                let series: Vec<StepSeries> = vec
                    .series
                    .into_iter()
                    .filter(|s| is_present(s.vals[0]))
                    .map(|s| StepSeries {
                        vals: vec![s.vals[0]; g.len],
                        labels: s.labels,
                    })
                    .collect();
                Val::Vector(self.vector(series)?)
            }
            other => other,
        })
    }

    pub fn select(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
        step: i64,
        range: i64,
        func: Option<&str>,
    ) -> Result<Vec<Box<dyn StorageSeries>>, EvalError> {
        let Some(q) = self.querier else {
            return Ok(Vec::new());
        };
        let hints = SelectHints {
            start: mint,
            end: maxt,
            step,
            func: func.map(str::to_string),
            range,
        };
        q.select(Some(&hints), &vs.matchers)
            .map_err(selector::select_err)
    }

    /// Reference time of a selector at each step: the step time (or the `@`
    /// time) minus the offset.
    pub fn selector_ends(&self, at: Option<AtModifier>, offset: i64, g: Grid) -> Vec<i64> {
        match at {
            Some(at) => vec![self.at_time(at) - offset; g.len],
            None => (0..g.len).map(|i| g.ts(i) - offset).collect(),
        }
    }

    fn vector_selector(&'q self, vs: &'q VectorSelector, g: Grid) -> Result<Lazy<'q>, EvalError> {
        let ends = self.selector_ends(vs.at, vs.offset, g);
        let lookback = self.env.lookback;
        let (mint, maxt) = match (ends.first(), ends.last()) {
            (Some(a), Some(b)) => (*a - lookback, *b),
            _ => return Ok(self.empty_lazy()),
        };
        let series = self.select(vs, mint, maxt, g.step, 0, None)?;
        let budget = self.budget.clone();
        Ok(Lazy {
            series,
            produce: Box::new(move |s, scratch| {
                Ok(
                    selector::instant_values(s, &ends, lookback, &budget, &mut scratch.samples)?
                        .map(|vals| StepSeries {
                            labels: Labels::empty(),
                            vals,
                        }),
                )
            }),
            dup: Dup::Unique,
            name_fixed: has_fixed_name(vs),
            labels: LabelsFrom::Storage,
        })
    }

    pub fn empty_lazy(&self) -> Lazy<'q> {
        Lazy {
            series: Vec::new(),
            produce: Box::new(|_, _| Ok(None)),
            dup: Dup::Unique,
            name_fixed: true,
            labels: LabelsFrom::Produced,
        }
    }

    /// `selector[range]` at the top of an instant query: the raw samples.
    fn matrix_selector_raw(
        &self,
        ms: &MatrixSelector,
        g: Grid,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let vs = &ms.selector;
        let end = match vs.at {
            Some(at) => self.at_time(at),
            None => g.start,
        } - vs.offset;
        let start = end - ms.range;
        let series = self.select(vs, start, end, g.step, ms.range, None)?;
        let mut out = Vec::new();
        let mut hold = Hold::none(&self.budget);
        for s in &series {
            self.check()?;
            let mut buf = Vec::new();
            selector::range_samples(s.as_ref(), start, end, &mut buf, &self.budget)?;
            if !buf.is_empty() {
                hold.add(buf.len())?;
                out.push(RangeSeries {
                    labels: s.labels().clone(),
                    samples: buf,
                });
            }
        }
        Ok(out)
    }

    /// The inner grid and result of a subquery evaluated for outer grid `g`.
    pub fn subquery_inner(
        &'q self,
        sq: &'q SubqueryExpr,
        g: Grid,
    ) -> Result<(Grid, StepVector, Vec<i64>), EvalError> {
        let step = sq.step.unwrap_or(self.env.default_eval_interval).max(1);
        let ends = self.selector_ends(sq.at, sq.offset, g);
        let (first, last) = match (ends.first(), ends.last()) {
            (Some(a), Some(b)) => (*a, *b),
            _ => return Ok((Grid::range(0, -1, step), self.empty_vector(), ends)),
        };
        let start = align_up(first - sq.range, step);
        let inner = Grid::range(start, last, step);
        // One full series on this grid would exceed the limit and its slots
        // alone would take hundreds of MB: refuse before allocating.
        if inner.len > self.env.max_samples.max(MAX_DENSE_STEPS) {
            return Err(EvalError::TooManySamples);
        }
        let v = if inner.len == 0 {
            self.empty_vector()
        } else {
            self.eval_vector(&sq.expr, inner)?
        };
        Ok((inner, v, ends))
    }

    fn subquery_raw(
        &'q self,
        sq: &'q SubqueryExpr,
        g: Grid,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let (inner, v, ends) = self.subquery_inner(sq, g)?;
        let end = ends.first().copied().unwrap_or(g.start);
        let start = end - sq.range;
        let mut out = Vec::new();
        for s in v.series {
            let mut samples = Vec::new();
            selector::step_points(&s.vals, |i| inner.ts(i), &mut samples);
            samples.retain(|p| p.t >= start && p.t <= end);
            if !samples.is_empty() {
                out.push(RangeSeries {
                    labels: s.labels,
                    samples,
                });
            }
        }
        Ok(out)
    }

    fn unary(&'q self, op: UnaryOp, inner: &'q Expr, g: Grid) -> Result<Src<'q>, EvalError> {
        if op == UnaryOp::Pos {
            return self.eval_src(inner, g);
        }
        match self.eval_src(inner, g)? {
            Src::Val(Val::Scalar(mut v)) => {
                for x in &mut v {
                    *x = -*x;
                }
                Ok(Src::Val(Val::Scalar(v)))
            }
            Src::Val(Val::Vector(mut vec)) => {
                for s in &mut vec.series {
                    s.labels = s.labels.without_metric_name();
                    for x in &mut s.vals {
                        if is_present(*x) {
                            *x = -*x;
                        }
                    }
                }
                check_whole_series_dups(&vec.series)?;
                Ok(Src::Val(Val::Vector(vec)))
            }
            Src::Lazy(l) => {
                let unique = l.dup == Dup::Unique && l.name_fixed;
                let l = self.map_lazy(l, move |mut s| {
                    s.labels = s.labels.without_metric_name();
                    for x in &mut s.vals {
                        if is_present(*x) {
                            *x = -*x;
                        }
                    }
                    Some(s)
                });
                Ok(Src::Lazy(Lazy {
                    dup: if unique {
                        Dup::Unique
                    } else {
                        Dup::WholeSeries
                    },
                    name_fixed: true,
                    ..l
                }))
            }
            Src::Val(other) => Ok(Src::Val(other)),
        }
    }

    /// Stacks a per-series transformation on a lazy source (materializing
    /// first when the source still owes a duplicate check).
    pub fn map_lazy<F>(&'q self, l: Lazy<'q>, f: F) -> Lazy<'q>
    where
        F: Fn(StepSeries) -> Option<StepSeries> + Send + Sync + 'q,
    {
        let prev = l.produce;
        let from = l.labels;
        Lazy {
            series: l.series,
            produce: Box::new(move |s, scratch| {
                Ok(prev(s, scratch)?.and_then(|mut x| {
                    x.labels = from.fill(s, std::mem::take(&mut x.labels));
                    f(x)
                }))
            }),
            dup: l.dup,
            name_fixed: l.name_fixed,
            labels: LabelsFrom::Produced,
        }
    }

    /// Turns a lazy source into a vector, computing series in parallel.
    pub fn materialize(&self, l: Lazy<'q>, g: Grid) -> Result<StepVector, EvalError> {
        let mut out = Vec::new();
        let mut hold = Hold::none(&self.budget);
        let from = l.labels;
        self.for_each_batch(&l, g, |chunk, batch| {
            for (src, s) in chunk.iter().zip(batch) {
                if let Some(mut s) = s {
                    hold.add(s.points())?;
                    s.labels = from.fill(src.as_ref(), std::mem::take(&mut s.labels));
                    out.push(s);
                }
            }
            Ok(())
        })?;
        match l.dup {
            Dup::Unique => {}
            Dup::WholeSeries => check_whole_series_dups(&out)?,
            Dup::PerStep => out = merge_same_labels(out, g.len)?,
        }
        Ok(StepVector { series: out, hold })
    }

    /// Runs a lazy source's producer over all its series, handing the
    /// results to `sink` in batches, in series order. With more than one
    /// thread the workers run ahead of the sink (by at most two batches, so
    /// memory stays bounded): the thread that sinks a batch produces series
    /// of later batches whenever the next batch is not complete yet, so
    /// aggregation does not leave a core idle and no thread waits at a
    /// batch boundary.
    pub fn for_each_batch(
        &self,
        l: &Lazy<'q>,
        g: Grid,
        mut sink: impl FnMut(
            &[Box<dyn StorageSeries>],
            Vec<Option<StepSeries>>,
        ) -> Result<(), EvalError>,
    ) -> Result<(), EvalError> {
        if l.series.is_empty() {
            return Ok(());
        }
        let per_series = g.len.max(1);
        let threads = self.env.threads.max(1);
        // Few series (each a whole day of samples, say) still spread over
        // the threads: a grain of one when there are fewer than four per
        // thread.
        let grain = (l.series.len() / (threads * 4)).clamp(1, MAX_GRAIN);
        let threads = threads.min(l.series.len().div_ceil(grain));
        // A whole number of grains per batch, and at least four batches
        // when there are enough series for every thread, so that folding a
        // batch overlaps producing the next instead of all folding waiting
        // for the last series.
        let batch = (1_000_000 / per_series)
            .clamp(64, 8192)
            .min(l.series.len().div_ceil(4).max(grain * threads))
            .next_multiple_of(grain);
        let produce = &l.produce;
        if threads <= 1 {
            let mut scratch = Scratch::default();
            for chunk in l.series.chunks(batch) {
                self.check()?;
                let results = chunk
                    .iter()
                    .map(|s| produce(s.as_ref(), &mut scratch))
                    .collect::<Result<_, _>>()?;
                sink(chunk, results)?;
            }
            return Ok(());
        }
        let work = Pipeline::new(&l.series, batch, grain);
        let fork = super::placement::Fork::new();
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads)
                .map(|_| {
                    scope.spawn(|| {
                        fork.helper_started();
                        work.help(produce)
                    })
                })
                .collect();
            fork.wait_placed(helpers.len());
            let mut res = self.drive(&work, produce, &mut sink);
            // Releases helpers waiting for room (after an error).
            work.stop();
            for h in helpers {
                if h.join().is_err() && res.is_ok() {
                    res = Err(EvalError::Internal("evaluation worker panicked".into()));
                }
            }
            res
        })
    }

    /// The sinking side of [`Evaluator::for_each_batch`].
    fn drive(
        &self,
        work: &Pipeline<'_>,
        produce: &Producer<'_>,
        sink: &mut impl FnMut(
            &[Box<dyn StorageSeries>],
            Vec<Option<StepSeries>>,
        ) -> Result<(), EvalError>,
    ) -> Result<(), EvalError> {
        let mut scratch = Scratch::default();
        let mut b = 0;
        while b < work.batches {
            self.check()?;
            if let Some(e) = work.error() {
                return Err(e);
            }
            if work.batch_ready(b) {
                let (chunk, results) = work.take_batch(b);
                sink(chunk, results)?;
                b += 1;
                work.sunk(b);
                continue;
            }
            if !work.produce_one(produce, &mut scratch) {
                // The helpers hold the rest of this batch.
                std::thread::yield_now();
            }
        }
        Ok(())
    }

    fn call(&'q self, c: &'q Call, g: Grid) -> Result<Src<'q>, EvalError> {
        let name = c.func.name;
        if let Some(rf) = RangeFn::from_name(name) {
            return self.range_call(rf, c, g);
        }
        if name == "timestamp" {
            if let Some(Expr::VectorSelector(vs)) = c.args.first().map(unwrap_parens) {
                return self.timestamp_of_selector(vs, g).map(Src::Lazy);
            }
        }
        functions::eval_call(self, c, g)
    }

    fn timestamp_of_selector(
        &'q self,
        vs: &'q VectorSelector,
        g: Grid,
    ) -> Result<Lazy<'q>, EvalError> {
        // Prometheus evaluates `timestamp(x @ t)` at exactly `t`, ignoring
        // the selector's offset.
        let ends = match vs.at {
            Some(at) => vec![self.at_time(at); g.len],
            None => (0..g.len).map(|i| g.ts(i) - vs.offset).collect::<Vec<_>>(),
        };
        let lookback = self.env.lookback;
        let (mint, maxt) = match (ends.first(), ends.last()) {
            (Some(a), Some(b)) => (*a - lookback, *b),
            _ => return Ok(self.empty_lazy()),
        };
        let series = self.select(vs, mint, maxt, g.step, 0, Some("timestamp"))?;
        let budget = self.budget.clone();
        let fixed = has_fixed_name(vs);
        Ok(Lazy {
            series,
            produce: Box::new(move |s, _| {
                Ok(
                    selector::instant_timestamps(s, &ends, lookback, &budget)?.map(|vals| {
                        StepSeries {
                            labels: Labels::empty(),
                            vals,
                        }
                    }),
                )
            }),
            dup: if fixed { Dup::Unique } else { Dup::PerStep },
            name_fixed: true,
            labels: LabelsFrom::StorageWithoutName,
        })
    }

    /// Scalar arguments of a function, one vector of values per argument.
    pub fn scalar_args(
        &'q self,
        args: &'q [Expr],
        skip: usize,
        g: Grid,
    ) -> Result<Vec<Vec<f64>>, EvalError> {
        let mut out = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i == skip {
                continue;
            }
            out.push(self.eval_scalar(a, g)?);
        }
        Ok(out)
    }

    fn range_call(&'q self, rf: RangeFn, c: &'q Call, g: Grid) -> Result<Src<'q>, EvalError> {
        let m = rf.matrix_arg();
        let Some(arg) = c.args.get(m) else {
            return Err(EvalError::Internal(format!(
                "{}: missing range argument",
                c.func.name
            )));
        };
        let arg = unwrap_parens(arg);
        let params = self.scalar_args(&c.args, m, g)?;
        let eval_ts: Vec<i64> = (0..g.len).map(|i| g.ts(i)).collect();
        let keep_name = rf.keeps_name();
        match arg {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.selector;
                let ends = self.selector_ends(vs.at, vs.offset, g);
                let (mint, maxt) = match (ends.first(), ends.last()) {
                    (Some(a), Some(b)) => (*a - ms.range, *b),
                    _ => return Ok(Src::Lazy(self.empty_lazy())),
                };
                let series = self.select(vs, mint, maxt, g.step, ms.range, Some(c.func.name))?;
                let budget = self.budget.clone();
                let range = ms.range;
                let len = g.len;
                let lazy = Lazy {
                    series,
                    produce: Box::new(move |s, scratch| {
                        scratch.samples.clear();
                        selector::range_samples(s, mint, maxt, &mut scratch.samples, &budget)?;
                        let mut vals = vec![ABSENT; len];
                        let w = Windows {
                            ends: &ends,
                            eval_ts: &eval_ts,
                            range,
                            params: &params,
                        };
                        let r = range_fns::apply(
                            rf,
                            &scratch.samples,
                            &w,
                            &mut scratch.range,
                            &mut vals,
                        );
                        // Like Prometheus, count the largest window this
                        // series needed in memory at once.
                        let widest = scratch.range.widest_window();
                        budget.reserve(widest)?;
                        budget.release(widest);
                        if !r? {
                            return Ok(None);
                        }
                        Ok(Some(StepSeries {
                            labels: Labels::empty(),
                            vals,
                        }))
                    }),
                    dup: if keep_name || has_fixed_name(vs) {
                        Dup::Unique
                    } else {
                        Dup::WholeSeries
                    },
                    name_fixed: !keep_name || has_fixed_name(vs),
                    labels: if keep_name {
                        LabelsFrom::Storage
                    } else {
                        LabelsFrom::StorageWithoutName
                    },
                };
                if rf == RangeFn::AbsentOverTime {
                    // Only presence matters; Prometheus skips the label check.
                    let lazy = Lazy {
                        dup: Dup::Unique,
                        ..lazy
                    };
                    let v = self.materialize(lazy, g)?;
                    return self
                        .absent_over_time(v, arg, g)
                        .map(|v| Src::Val(Val::Vector(v)));
                }
                Ok(Src::Lazy(lazy))
            }
            Expr::Subquery(sq) => {
                let (inner, v, ends) = self.subquery_inner(sq, g)?;
                let w = Windows {
                    ends: &ends,
                    eval_ts: &eval_ts,
                    range: sq.range,
                    params: &params,
                };
                let mut scratch = Scratch::default();
                let mut out = Vec::new();
                for s in &v.series {
                    self.check()?;
                    scratch.samples.clear();
                    selector::step_points(&s.vals, |i| inner.ts(i), &mut scratch.samples);
                    let mut vals = vec![ABSENT; g.len];
                    if range_fns::apply(rf, &scratch.samples, &w, &mut scratch.range, &mut vals)? {
                        let labels = if keep_name {
                            s.labels.clone()
                        } else {
                            s.labels.without_metric_name()
                        };
                        out.push(StepSeries { labels, vals });
                    }
                }
                drop(v);
                let vec = self.vector(out)?;
                if rf == RangeFn::AbsentOverTime {
                    return self
                        .absent_over_time(vec, arg, g)
                        .map(|v| Src::Val(Val::Vector(v)));
                }
                check_whole_series_dups(&vec.series)?;
                Ok(Src::Val(Val::Vector(vec)))
            }
            _ => Err(EvalError::Internal(format!(
                "{}: expected range vector argument",
                c.func.name
            ))),
        }
    }

    fn absent_over_time(
        &self,
        present: StepVector,
        arg: &Expr,
        g: Grid,
    ) -> Result<StepVector, EvalError> {
        let mut covered = vec![false; g.len];
        for s in &present.series {
            for (i, v) in s.vals.iter().enumerate() {
                if is_present(*v) {
                    covered[i] = true;
                }
            }
        }
        if covered.iter().all(|c| *c) {
            return Ok(self.empty_vector());
        }
        let vals = covered
            .iter()
            .map(|c| if *c { ABSENT } else { 1.0 })
            .collect();
        self.vector(vec![StepSeries {
            labels: absent_labels(arg),
            vals,
        }])
    }
}

/// Labels for `absent(...)`/`absent_over_time(...)`: the equality matchers
/// of the argument selector (a name matched twice is dropped).
pub fn absent_labels(arg: &Expr) -> Labels {
    let matchers = match unwrap_parens(arg) {
        Expr::VectorSelector(vs) => &vs.matchers,
        Expr::MatrixSelector(ms) => &ms.selector.matchers,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().builder();
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name.as_str()) {
            b.set(m.name.clone(), m.value.clone());
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

pub fn dup_error() -> EvalError {
    EvalError::exec("vector cannot contain metrics with the same labelset")
}

/// Prometheus's `Matrix.ContainsSameLabelset`.
pub fn check_whole_series_dups(series: &[StepSeries]) -> Result<(), EvalError> {
    if series.len() < 2 {
        return Ok(());
    }
    let mut seen: HashMap<&Labels, ()> = HashMap::with_capacity(series.len());
    for s in series {
        if seen.insert(&s.labels, ()).is_some() {
            return Err(dup_error());
        }
    }
    Ok(())
}

/// Merges series with equal labels (they came from different inputs at
/// different steps); two points at the same step are Prometheus's
/// duplicate-labelset error. Keeps first-appearance order.
pub fn merge_same_labels(
    series: Vec<StepSeries>,
    len: usize,
) -> Result<Vec<StepSeries>, EvalError> {
    if series.len() < 2 {
        return Ok(series);
    }
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    for s in series {
        match index.get(&s.labels) {
            Some(&i) => {
                let dst = &mut out[i].vals;
                for (d, &v) in dst.iter_mut().zip(&s.vals).take(len) {
                    if is_present(v) {
                        if is_present(*d) {
                            return Err(dup_error());
                        }
                        *d = v;
                    }
                }
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Most series a thread claims at a time: few, so the last claims of a
/// batch finish close together.
const MAX_GRAIN: usize = 16;

/// Shared state of a pipelined [`Evaluator::for_each_batch`]: series are
/// claimed in grains from one counter; each grain's results wait in their
/// slot until the sinking thread takes the whole batch.
struct Pipeline<'a> {
    series: &'a [Box<dyn StorageSeries>],
    batch: usize,
    batches: usize,
    /// Series per claim, and claims in all.
    grain: usize,
    grains: usize,
    next: std::sync::atomic::AtomicUsize,
    /// Batches sunk so far; claims stay within two batches of it.
    sunk: std::sync::atomic::AtomicUsize,
    /// Finished grains per batch.
    done: Vec<std::sync::atomic::AtomicUsize>,
    slots: Vec<Mutex<Vec<Option<StepSeries>>>>,
    failed: AtomicBool,
    err: Mutex<Option<EvalError>>,
    room: (Mutex<()>, std::sync::Condvar),
}

impl<'a> Pipeline<'a> {
    fn new(series: &'a [Box<dyn StorageSeries>], batch: usize, grain: usize) -> Self {
        let grains = series.len().div_ceil(grain);
        let batches = series.len().div_ceil(batch);
        Pipeline {
            series,
            batch,
            batches,
            grain,
            grains,
            next: Default::default(),
            sunk: Default::default(),
            done: (0..batches).map(|_| Default::default()).collect(),
            slots: (0..grains).map(|_| Mutex::new(Vec::new())).collect(),
            failed: AtomicBool::new(false),
            err: Mutex::new(None),
            room: (Mutex::new(()), std::sync::Condvar::new()),
        }
    }

    fn grains_in(&self, b: usize) -> usize {
        let first = b * self.batch / self.grain;
        let end = ((b + 1) * self.batch)
            .min(self.series.len())
            .div_ceil(self.grain);
        end - first
    }

    fn batch_ready(&self, b: usize) -> bool {
        self.done[b].load(Ordering::Acquire) == self.grains_in(b)
    }

    fn take_batch(&self, b: usize) -> (&'a [Box<dyn StorageSeries>], Vec<Option<StepSeries>>) {
        let from = b * self.batch;
        let to = (from + self.batch).min(self.series.len());
        let mut out = Vec::with_capacity(to - from);
        for slot in &self.slots[from / self.grain..to.div_ceil(self.grain)] {
            out.append(&mut slot.lock().unwrap_or_else(|e| e.into_inner()));
        }
        (&self.series[from..to], out)
    }

    fn sunk(&self, b: usize) {
        self.sunk.store(b, Ordering::Release);
        let _g = self.room.0.lock();
        self.room.1.notify_all();
    }

    fn stop(&self) {
        self.failed.store(true, Ordering::Release);
        let _g = self.room.0.lock();
        self.room.1.notify_all();
    }

    /// Grains may be claimed below this: two batches past the last sunk.
    fn claim_limit(&self) -> usize {
        ((self.sunk.load(Ordering::Acquire) + 2) * self.batch).div_ceil(self.grain)
    }

    /// Records the first error and stops every thread.
    fn fail(&self, e: EvalError) {
        self.err
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
        self.stop();
    }

    fn error(&self) -> Option<EvalError> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.err.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Claims and produces one grain if one is left within the run-ahead
    /// bound; false when there is none (now).
    fn produce_one(&self, produce: &Producer<'_>, scratch: &mut Scratch) -> bool {
        let limit = self.claim_limit();
        let next = self.next.load(Ordering::Relaxed);
        if next >= self.grains.min(limit) || self.failed.load(Ordering::Acquire) {
            return false;
        }
        let Ok(gi) =
            self.next
                .compare_exchange(next, next + 1, Ordering::Relaxed, Ordering::Relaxed)
        else {
            return true;
        };
        let from = gi * self.grain;
        let to = (from + self.grain).min(self.series.len());
        let mut out = Vec::with_capacity(to - from);
        for s in &self.series[from..to] {
            match produce(s.as_ref(), scratch) {
                Ok(r) => out.push(r),
                Err(e) => {
                    self.fail(e);
                    return false;
                }
            }
        }
        *self.slots[gi].lock().unwrap_or_else(|e| e.into_inner()) = out;
        self.done[from / self.batch].fetch_add(1, Ordering::Release);
        true
    }

    /// A helper thread: produces grains until none is left or the
    /// evaluation stopped, waiting while it is two batches ahead.
    fn help(&self, produce: &Producer<'_>) {
        // A panicking helper must not leave the sinking thread waiting for
        // its grain.
        struct StopOnPanic<'p, 'a>(&'p Pipeline<'a>);
        impl Drop for StopOnPanic<'_, '_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0
                        .fail(EvalError::Internal("evaluation worker panicked".into()));
                }
            }
        }
        let _guard = StopOnPanic(self);
        let mut scratch = Scratch::default();
        loop {
            if self.produce_one(produce, &mut scratch) {
                continue;
            }
            if self.failed.load(Ordering::Acquire)
                || self.next.load(Ordering::Relaxed) >= self.grains
            {
                return;
            }
            let g = self.room.0.lock().unwrap_or_else(|e| e.into_inner());
            // Re-check under the lock: `sunk` notifies while holding it.
            let limit = self.claim_limit();
            if self.next.load(Ordering::Relaxed) >= limit && !self.failed.load(Ordering::Acquire) {
                drop(self.room.1.wait(g));
            }
        }
    }
}
