//! `/api/v1/query`, `/query_range`, `/query_exemplars`, `/format_query`.
//!
//! Evaluation and serialisation run on the blocking pool: the engine is
//! synchronous and large matrices take real CPU to write out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::Response;

use super::{respond, time_range, ApiError, ApiReply, ApiResult, Form, Success};
use crate::json::JsonWriter;
use crate::params::{parse_duration, parse_time, parse_time_param, Params};
use crate::sources::{ErrorKind, QueryError, QueryOptions, QueryOutput, QueryValue};
use crate::Shared;

/// Prometheus's cap on points per series in a range query.
pub const MAX_POINTS_PER_SERIES: i128 = 11_000;

pub async fn query(State(s): State<Arc<Shared>>, Form(params): Form) -> Response {
    run_blocking(s, params, instant_query).await
}

pub async fn query_range(State(s): State<Arc<Shared>>, Form(params): Form) -> Response {
    run_blocking(s, params, range_query).await
}

pub async fn query_exemplars(State(s): State<Arc<Shared>>, Form(params): Form) -> Response {
    run_blocking(s, params, exemplars).await
}

pub async fn format_query(State(s): State<Arc<Shared>>, Form(params): Form) -> Response {
    respond(match s.engine.format_query(params.get("query")) {
        Ok(text) => Ok(ApiReply::data(|w| w.string(&text))),
        Err(e) => Err(ApiError::invalid_param("query", &e.message)),
    })
}

/// [`super::blocking`] with the query `timeout` as a backstop for engines
/// that do not watch the deadline.
async fn run_blocking(
    s: Arc<Shared>,
    params: Params,
    f: fn(&Shared, &Params) -> ApiResult,
) -> Response {
    let timeout = match timeout_param(&params) {
        Ok(t) => t,
        Err(e) => return respond(Err(e)),
    };
    let task = tokio::task::spawn_blocking(move || f(&s, &params));
    let joined = match timeout {
        // Answer on time even if the evaluation thread is still busy.
        Some(t) => match tokio::time::timeout(t + Duration::from_millis(50), task).await {
            Ok(j) => j,
            Err(_) => {
                return respond(Err(ApiError::new(
                    ErrorKind::Timeout,
                    "query timed out in expression evaluation",
                )))
            }
        },
        None => task.await,
    };
    match joined {
        Ok(r) => respond(r),
        Err(e) => respond(Err(ApiError::new(
            ErrorKind::Internal,
            format!("query evaluation panicked: {}", e),
        ))),
    }
}

fn timeout_param(params: &Params) -> Result<Option<Duration>, ApiError> {
    let to = params.get("timeout");
    if to.is_empty() {
        return Ok(None);
    }
    let ns = parse_duration(to).map_err(|e| ApiError::invalid_param("timeout", e))?;
    Ok(Some(Duration::from_nanos(ns.max(0) as u64)))
}

fn query_options(params: &Params) -> Result<QueryOptions, ApiError> {
    let mut opts = QueryOptions::default();
    if let Some(t) = timeout_param(params)? {
        opts.deadline = Some(Instant::now() + t);
    }
    let lb = params.get("lookback_delta");
    if !lb.is_empty() {
        let ns = parse_duration(lb).map_err(|e| {
            ApiError::bad_data(format!("error parsing lookback delta duration: {}", e))
        })?;
        opts.lookback_delta = Some(ns / 1_000_000);
    }
    Ok(opts)
}

/// Current time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Maps an engine error: parse errors become `invalid parameter "query"`.
fn engine_error(e: QueryError) -> ApiError {
    match e.kind {
        ErrorKind::BadData => ApiError::invalid_param("query", &e.message),
        k => ApiError::new(k, e.message),
    }
}

fn instant_query(s: &Shared, params: &Params) -> ApiResult {
    let t = parse_time_param(params, "time", now_ms())
        .map_err(|e| ApiError::invalid_param("time", e))?;
    let opts = query_options(params)?;
    evaluate(s, params, || {
        s.engine.instant_query(params.get("query"), t, &opts)
    })
}

fn range_query(s: &Shared, params: &Params) -> ApiResult {
    let start = parse_time(params.get("start")).map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time(params.get("end")).map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step_ns =
        parse_duration(params.get("step")).map_err(|e| ApiError::invalid_param("step", e))?;
    if step_ns <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // Go divides two time.Durations (ns); widen to avoid overflow on huge ranges.
    if (end as i128 - start as i128) * 1_000_000 / step_ns as i128 > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let opts = query_options(params)?;
    let step_ms = (step_ns / 1_000_000).max(1);
    evaluate(s, params, || {
        s.engine
            .range_query(params.get("query"), start, end, step_ms, &opts)
    })
}

/// Runs an evaluation, records its time, and writes the result.
fn evaluate(
    s: &Shared,
    params: &Params,
    eval: impl FnOnce() -> Result<QueryOutput, QueryError>,
) -> ApiResult {
    let started = Instant::now();
    let out = eval();
    let elapsed = started.elapsed().as_secs_f64();
    s.metrics.observe_query("inner_eval", elapsed);
    let out = out.map_err(engine_error)?;
    Ok(ApiReply::Data(write_query_data(out, params, elapsed)))
}

/// Writes `{"resultType":...,"result":...[,"stats":...]}` into a success
/// envelope.
fn write_query_data(out: QueryOutput, params: &Params, elapsed: f64) -> Success {
    let estimate = match &out.value {
        QueryValue::Matrix(m) => m.iter().map(|s| 64 + s.samples.len() * 28).sum(),
        QueryValue::Vector(v) => v.len() * 96,
        _ => 64,
    };
    let mut ok = Success::with_capacity(estimate);
    ok.warnings = out.warnings;
    let w = &mut ok.w;
    w.raw(r#"{"resultType":"#);
    w.string(out.value.type_name());
    w.raw(r#","result":"#);
    write_value(w, &out.value);
    if !params.get("stats").is_empty() {
        w.raw(r#","stats":{"timings":{"evalTotalTime":"#);
        w.f64_number(elapsed);
        w.raw(r#","resultSortTime":0,"queryPreparationTime":0,"innerEvalTime":"#);
        w.f64_number(elapsed);
        w.raw(r#","execQueueTime":0,"execTotalTime":"#);
        w.f64_number(elapsed);
        w.raw(r#"},"samples":{"totalQueryableSamples":"#);
        w.i64(out.stats.total_queryable_samples);
        w.raw(r#","peakSamples":"#);
        w.i64(out.stats.peak_samples);
        w.raw("}}");
    }
    w.byte(b'}');
    ok
}

/// Writes a result value in Prometheus's JSON shape.
pub fn write_value(w: &mut JsonWriter, v: &QueryValue) {
    match v {
        QueryValue::Vector(elems) => {
            w.byte(b'[');
            for (i, e) in elems.iter().enumerate() {
                if i > 0 {
                    w.byte(b',');
                }
                w.raw(r#"{"metric":"#);
                w.labels(&e.labels);
                w.raw(r#","value":"#);
                w.point(e.t, e.v);
                w.byte(b'}');
            }
            w.byte(b']');
        }
        QueryValue::Matrix(series) => {
            w.byte(b'[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    w.byte(b',');
                }
                w.raw(r#"{"metric":"#);
                w.labels(&s.labels);
                w.raw(r#","values":["#);
                for (j, p) in s.samples.iter().enumerate() {
                    if j > 0 {
                        w.byte(b',');
                    }
                    w.point(p.t, p.v);
                }
                w.raw("]}");
            }
            w.byte(b']');
        }
        QueryValue::Scalar { t, v } => w.point(*t, *v),
        QueryValue::String { t, s } => {
            w.byte(b'[');
            w.timestamp(*t);
            w.byte(b',');
            w.string(s);
            w.byte(b']');
        }
    }
}

fn exemplars(s: &Shared, params: &Params) -> ApiResult {
    let (start, end) = time_range(params)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let selectors = s
        .engine
        .selectors(params.get("query"))
        .map_err(|e| ApiError::bad_data(e.message))?;
    if selectors.is_empty() {
        // Prometheus answers a query without selectors with no body.
        return Ok(ApiReply::NoContent);
    }
    let found = match &s.exemplars {
        Some(src) => src
            .select(start, end, &selectors)
            .map_err(|e| ApiError::new(ErrorKind::Execution, e))?,
        None => Vec::new(),
    };
    Ok(ApiReply::data(|w| {
        w.array(&found, |w, se| {
            w.raw(r#"{"seriesLabels":"#);
            w.labels(&se.series_labels);
            w.raw(r#","exemplars":"#);
            w.array(&se.exemplars, |w, ex| {
                w.raw(r#"{"labels":"#);
                w.labels(&ex.labels);
                w.raw(r#","value":"#);
                w.sample_value(ex.value);
                w.raw(r#","timestamp":"#);
                w.timestamp(ex.t);
                w.byte(b'}');
            });
            w.byte(b'}');
        })
    }))
}
