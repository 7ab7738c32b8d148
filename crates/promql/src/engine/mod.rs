//! The PromQL evaluator: answers instant and range queries over a typed AST
//! with Prometheus 2.53's semantics.
//!
//! It owns evaluation only: it reads data through
//! `vigil_model::storage::{Queryable, Querier}` and never parses, formats or
//! touches HTTP. Each selector is selected once per query and each series
//! decoded once; range functions slide over a series' samples for all steps,
//! aggregations consume series in batches on all cores, so memory follows the
//! output, not the input. Limits (samples, timeout, cancellation, concurrency)
//! are enforced here with Prometheus's error messages.

mod aggregate;
mod binary;
mod eval;
mod functions;
mod gate;
pub mod gomath;
mod histogram;
mod placement;
mod range_fns;
mod selector;
mod types;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_model::storage::Queryable;
use vigil_model::{Labels, Sample};

use crate::ast::{Expr, ValueType};

pub use eval::AT_MODIFIER_UNSAFE_FUNCTIONS;
pub use gate::{GatePermit, QueryGate};

/// Stack of the thread a query is evaluated on (address space only; pages
/// are used as deep expressions need them).
const EVAL_STACK_BYTES: usize = 64 << 20;

/// Engine configuration; the server maps its `--query.*` flags onto it.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (ms);
    /// `--query.lookback-delta`, default 5m.
    pub lookback_delta: i64,
    /// Most samples a query may hold in memory at once;
    /// `--query.max-samples`, default 50,000,000.
    pub max_samples: usize,
    /// `--query.timeout`, default 2m.
    pub timeout: Duration,
    /// Step (ms) of subqueries written without one (`x[5m:]`); Prometheus
    /// uses the global evaluation interval, default 1m.
    pub default_eval_interval: i64,
    /// `--query.max-concurrency`, default 20; 0 means unbounded.
    pub max_concurrency: usize,
    /// Worker threads per query; 0 means one per available core.
    pub threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_eval_interval: 60 * 1000,
            max_concurrency: 20,
            threads: 0,
        }
    }
}

/// Per-query controls from the caller: cancellation and an optional deadline.
#[derive(Clone, Debug, Default)]
pub struct QueryControl {
    cancel: Arc<AtomicBool>,
    deadline: Option<Instant>,
    lookback_delta: Option<i64>,
}

impl QueryControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Aborts the query at `deadline` (in addition to the engine timeout).
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Overrides the engine's lookback delta for this query (ms), as the
    /// HTTP API's `lookback_delta` parameter does.
    pub fn with_lookback_delta(mut self, ms: i64) -> Self {
        self.lookback_delta = Some(ms);
        self
    }

    /// A handle that cancels the query when set (e.g. on client disconnect).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Why a query failed. `error_type` gives the HTTP API's `errorType`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// Runtime failures of the expression itself (duplicate label sets,
    /// many-to-many matching, bad function arguments, ...).
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The deadline passed; the string says where ("expression evaluation",
    /// "query queue", ...).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// The request itself is unusable (e.g. a range query over a string).
    #[error("{0}")]
    BadData(String),
    /// Storage failed while reading.
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Internal(String),
}

impl EvalError {
    /// Prometheus's API `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            EvalError::Execution(_) | EvalError::TooManySamples => "execution",
            EvalError::Timeout(_) => "timeout",
            EvalError::Canceled(_) => "canceled",
            EvalError::BadData(_) => "bad_data",
            EvalError::Storage(_) | EvalError::Internal(_) => "internal",
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        EvalError::Execution(msg.into())
    }
}

/// One element of an instant-vector result.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    /// Milliseconds; always the evaluation time for instant queries.
    pub t: i64,
    pub v: f64,
}

/// One series of a matrix result.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// A query's result value, shaped as the HTTP API returns it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<InstantSample>),
    Matrix(Vec<Series>),
}

impl Value {
    /// The API's `resultType`.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Sample statistics of one query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Samples read from storage.
    pub total_samples: usize,
    /// Most samples held in memory at once.
    pub peak_samples: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub warnings: Vec<String>,
    pub stats: QueryStats,
}

/// The query engine. Cheap to share (`Arc<Engine>`); every query is
/// independent.
#[derive(Debug)]
pub struct Engine {
    opts: EngineOptions,
    gate: Option<QueryGate>,
    threads: usize,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        let gate = (opts.max_concurrency > 0).then(|| QueryGate::new(opts.max_concurrency));
        let threads = if opts.threads > 0 {
            opts.threads
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        };
        Engine {
            opts,
            gate,
            threads,
        }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Queries currently holding a concurrency slot
    /// (`prometheus_engine_queries`); 0 when concurrency is unbounded.
    pub fn queries_running(&self) -> usize {
        self.gate.as_ref().map_or(0, QueryGate::running)
    }

    /// Evaluates `expr` at `t` (ms).
    pub fn instant_query(
        &self,
        queryable: &dyn Queryable,
        expr: &Expr,
        t: i64,
        ctl: &QueryControl,
    ) -> Result<QueryResult, EvalError> {
        self.exec(queryable, expr, t, t, 0, ctl)
    }

    /// Evaluates `expr` at `start, start+step, ..., <= end` (ms). Only scalar
    /// and instant-vector expressions are allowed, as in Prometheus.
    pub fn range_query(
        &self,
        queryable: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        ctl: &QueryControl,
    ) -> Result<QueryResult, EvalError> {
        if step <= 0 {
            return Err(EvalError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .to_string(),
            ));
        }
        if end < start {
            return Err(EvalError::BadData(
                "end timestamp must not be before start time".to_string(),
            ));
        }
        let vt = expr.value_type();
        if vt != ValueType::Scalar && vt != ValueType::Vector {
            return Err(EvalError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                vt.as_str()
            )));
        }
        self.exec(queryable, expr, start, end, step, ctl)
    }

    fn exec(
        &self,
        queryable: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        ctl: &QueryControl,
    ) -> Result<QueryResult, EvalError> {
        let timeout_at = Instant::now().checked_add(self.opts.timeout);
        let deadline = match (timeout_at, ctl.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let _permit = match &self.gate {
            Some(g) => Some(g.acquire(&ctl.cancel, deadline)?),
            None => None,
        };
        let env = eval::Env {
            lookback: ctl.lookback_delta.unwrap_or(self.opts.lookback_delta),
            max_samples: self.opts.max_samples,
            default_eval_interval: self.opts.default_eval_interval,
            threads: self.threads,
            cancel: ctl.cancel.clone(),
            deadline,
        };
        // Evaluation recurses once per AST level (the parser allows trees
        // 1024 tall), so it runs on its own thread with a stack that does
        // not depend on the caller's (tokio's blocking threads have 2 MiB).
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("promql-eval".into())
                .stack_size(EVAL_STACK_BYTES)
                .spawn_scoped(scope, || eval::run(queryable, expr, start, end, step, env));
            match worker {
                Ok(h) => h.join().unwrap_or_else(|_| {
                    Err(EvalError::Internal("query evaluation panicked".into()))
                }),
                Err(e) => Err(EvalError::Internal(format!(
                    "cannot start evaluation thread: {e}"
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests;
