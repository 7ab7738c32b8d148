//! `vigil promql`: evaluate an expression and print the result.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use vigil_web::params::{parse_duration, parse_time};
use vigil_web::{QueryEngine, QueryOptions, QueryValue};

use super::chart::{self, ChartSize};
use super::http::{self, encode_form, ServerUrl};
use super::render;
use super::result::{decode_data, decode_error};
use super::{Format, EXIT_CONNECTION_ERROR, EXIT_OK, EXIT_QUERY_ERROR};

/// Opens an engine over a TSDB directory, read-only (provided by the binary).
pub type LocalOpener<'a> = &'a dyn Fn(&Path) -> Result<Arc<dyn QueryEngine>, String>;

/// Arguments of `vigil promql`.
#[derive(clap::Args, Debug, Clone)]
pub struct PromqlArgs {
    /// Server to query over its HTTP API.
    #[arg(long, default_value = "http://localhost:9090")]
    pub server: String,
    /// Query a TSDB directory directly (read-only) instead of a server.
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    pub data: Option<PathBuf>,
    /// Evaluation time of an instant query (RFC 3339, Unix seconds, "now"
    /// or "-1h" relative to now). Default: now.
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["start", "end", "step"])]
    pub time: Option<String>,
    /// Start of a range query (default: end - 1h).
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    /// End of a range query (default: now).
    #[arg(long, allow_hyphen_values = true)]
    pub end: Option<String>,
    /// Step of a range query (e.g. 15s or 15; default: fits the chart).
    #[arg(long)]
    pub step: Option<String>,
    /// Output format (default: table, or chart for range queries).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Never colour the output (default: colour when stdout is a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// The PromQL expression.
    pub expr: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Resolves "now", "-1h"/"now-1h" (relative), or an absolute time to ms.
pub fn resolve_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    let rel = s.strip_prefix("now-").or_else(|| {
        s.strip_prefix('-')
            .filter(|r| vigil_promql::parser::parse_duration(r).is_ok())
    });
    if let Some(rel) = rel {
        let ns = parse_duration(rel)?;
        return Ok(now - ns / 1_000_000);
    }
    parse_time(s)
}

/// The evaluation request after resolving defaults.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    Instant { time: i64 },
    Range { start: i64, end: i64, step: i64 },
}

/// Works out instant vs range and every default.
pub fn evaluation(args: &PromqlArgs, now: i64) -> Result<Evaluation, String> {
    if args.start.is_none() && args.end.is_none() && args.step.is_none() {
        let time = match &args.time {
            Some(t) => resolve_time(t, now).map_err(|e| format!("--time: {}", e))?,
            None => now,
        };
        return Ok(Evaluation::Instant { time });
    }
    let end = match &args.end {
        Some(t) => resolve_time(t, now).map_err(|e| format!("--end: {}", e))?,
        None => now,
    };
    let start = match &args.start {
        Some(t) => resolve_time(t, now).map_err(|e| format!("--start: {}", e))?,
        None => end - 3_600_000,
    };
    if end < start {
        return Err("--end must not be before --start".to_string());
    }
    let step = match &args.step {
        Some(s) => parse_duration(s).map_err(|e| format!("--step: {}", e))? / 1_000_000,
        // About two points per chart column, whole seconds.
        None => (((end - start) / (2 * ChartSize::default().width as i64)) / 1000).max(1) * 1000,
    };
    if step <= 0 {
        return Err("--step must be positive".to_string());
    }
    Ok(Evaluation::Range { start, end, step })
}

fn seconds(t: i64) -> String {
    let mut b = Vec::new();
    vigil_web::json::format_timestamp(t, &mut b);
    String::from_utf8_lossy(&b).into_owned()
}

enum Failure {
    Query {
        message: String,
        position: Option<usize>,
    },
    Connection(String),
}

fn via_server(args: &PromqlArgs, eval: &Evaluation) -> Result<(QueryValue, Vec<String>), Failure> {
    let server = ServerUrl::parse(&args.server).map_err(|e| Failure::Connection(e.to_string()))?;
    let (path, form) = match eval {
        Evaluation::Instant { time } => (
            "/api/v1/query",
            encode_form(&[("query", &args.expr), ("time", &seconds(*time))]),
        ),
        Evaluation::Range { start, end, step } => (
            "/api/v1/query_range",
            encode_form(&[
                ("query", &args.expr),
                ("start", &seconds(*start)),
                ("end", &seconds(*end)),
                ("step", &seconds(*step)),
            ]),
        ),
    };
    let resp =
        http::post_form(&server, path, &form).map_err(|e| Failure::Connection(e.to_string()))?;
    if resp.status != 200 {
        let e = decode_error(resp.status, &resp.body, &args.expr);
        return Err(Failure::Query {
            message: e.message,
            position: e.position,
        });
    }
    let v: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| Failure::Connection(format!("invalid JSON from server: {}", e)))?;
    let data = v
        .get("data")
        .ok_or_else(|| Failure::Connection("response without data".to_string()))?;
    let value = decode_data(data).map_err(Failure::Connection)?;
    let warnings = v
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((value, warnings))
}

fn via_engine(
    engine: &dyn QueryEngine,
    expr: &str,
    eval: &Evaluation,
) -> Result<(QueryValue, Vec<String>), Failure> {
    let opts = QueryOptions::default();
    let r = match eval {
        Evaluation::Instant { time } => engine.instant_query(expr, *time, &opts),
        Evaluation::Range { start, end, step } => {
            engine.range_query(expr, *start, *end, *step, &opts)
        }
    };
    match r {
        Ok(out) => Ok((out.value, out.warnings)),
        Err(e) => Err(Failure::Query {
            message: e.message,
            position: e.position,
        }),
    }
}

/// Runs `vigil promql`; returns the process exit code.
pub fn run_promql(
    args: &PromqlArgs,
    open_local: LocalOpener,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let eval = match evaluation(args, now_ms()) {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(err, "Error: {}", e);
            return EXIT_QUERY_ERROR;
        }
    };
    let result = match &args.data {
        Some(dir) => match open_local(dir) {
            Ok(engine) => via_engine(engine.as_ref(), &args.expr, &eval),
            Err(e) => Err(Failure::Connection(format!(
                "cannot open {}: {}",
                dir.display(),
                e
            ))),
        },
        None => via_server(args, &eval),
    };
    let (value, warnings) = match result {
        Ok(v) => v,
        Err(Failure::Query { message, position }) => {
            let _ = err.write_all(render::error_report(&args.expr, &message, position).as_bytes());
            return EXIT_QUERY_ERROR;
        }
        Err(Failure::Connection(m)) => {
            let _ = writeln!(err, "Error: {}", m);
            return EXIT_CONNECTION_ERROR;
        }
    };
    for w in &warnings {
        let _ = writeln!(err, "Warning: {}", w);
    }
    let colour = !args.no_color && std::io::stdout().is_terminal();
    let format = args.format.unwrap_or(match value {
        QueryValue::Matrix(_) => Format::Chart,
        _ => Format::Table,
    });
    let text = match (format, &value, &eval) {
        (Format::Chart, QueryValue::Matrix(series), Evaluation::Range { start, end, step }) => {
            chart::render(series, *start, *end, *step, ChartSize::default(), colour)
        }
        (Format::Chart, QueryValue::Matrix(series), Evaluation::Instant { .. }) => {
            // A range selector evaluated at one instant: chart its own span.
            let ts = series.iter().flat_map(|s| s.samples.iter().map(|p| p.t));
            let (lo, hi) = ts.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
            chart::render(series, lo, hi.max(lo), 1, ChartSize::default(), colour)
        }
        (Format::Table | Format::Chart, v, _) => render::table(v),
        (Format::Json, v, _) => render::json(v),
        (Format::Csv, v, _) => render::csv(v),
    };
    match out.write_all(text.as_bytes()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            let _ = writeln!(err, "Error: writing output: {}", e);
            EXIT_CONNECTION_ERROR
        }
    }
}
