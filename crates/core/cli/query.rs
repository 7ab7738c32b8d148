//! `vigil query series|labels|label-values`: the metadata endpoints.

use std::io::Write;

use serde_json::Value;

use super::http::{self, encode_form, ServerUrl};
use super::promql::resolve_time;
use super::render::series_name;
use super::result::{decode_error, labels};
use super::{EXIT_CONNECTION_ERROR, EXIT_OK, EXIT_QUERY_ERROR};

/// Arguments of `vigil query`.
#[derive(clap::Args, Debug, Clone)]
pub struct QueryArgs {
    /// Server to query over its HTTP API.
    #[arg(long, default_value = "http://localhost:9090", global = true)]
    pub server: String,
    /// Print the API's JSON `data` instead of one item per line.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: QueryCommand,
}

/// Time range and selectors shared by the subcommands.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MetaRange {
    /// Series selector (repeatable), e.g. --match 'up{job="node"}'.
    #[arg(long = "match", value_name = "SELECTOR")]
    pub matches: Vec<String>,
    /// Start time (RFC 3339, Unix seconds, "now" or "-1h").
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    /// End time.
    #[arg(long, allow_hyphen_values = true)]
    pub end: Option<String>,
    /// Maximum number of results.
    #[arg(long)]
    pub limit: Option<u64>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum QueryCommand {
    /// Series matching the selectors.
    Series(MetaRange),
    /// Label names.
    Labels(MetaRange),
    /// Values of one label.
    LabelValues {
        /// The label name, e.g. job or __name__.
        name: String,
        #[command(flatten)]
        range: MetaRange,
    },
}

fn form(range: &MetaRange, now: i64) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for m in &range.matches {
        pairs.push(("match[]".to_string(), m.clone()));
    }
    for (name, v) in [("start", &range.start), ("end", &range.end)] {
        if let Some(t) = v {
            let ms = resolve_time(t, now).map_err(|e| format!("--{}: {}", name, e))?;
            let mut b = Vec::new();
            vigil_web::json::format_timestamp(ms, &mut b);
            pairs.push((name.to_string(), String::from_utf8_lossy(&b).into_owned()));
        }
    }
    if let Some(l) = range.limit {
        pairs.push(("limit".to_string(), l.to_string()));
    }
    Ok(pairs)
}

/// Runs `vigil query ...`; returns the process exit code.
pub fn run_query(args: &QueryArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let (path, range) = match &args.command {
        QueryCommand::Series(r) => ("/api/v1/series".to_string(), r),
        QueryCommand::Labels(r) => ("/api/v1/labels".to_string(), r),
        QueryCommand::LabelValues { name, range } => (
            format!(
                "/api/v1/label/{}/values",
                encode_form(&[("", name)]).trim_start_matches('=')
            ),
            range,
        ),
    };
    let pairs = match form(range, now) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "Error: {}", e);
            return EXIT_QUERY_ERROR;
        }
    };
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let query = encode_form(&refs);
    let server = match ServerUrl::parse(&args.server) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "Error: {}", e);
            return EXIT_CONNECTION_ERROR;
        }
    };
    let target = if query.is_empty() {
        path
    } else {
        format!("{}?{}", path, query)
    };
    let resp = match http::get(&server, &target) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "Error: {}", e);
            return EXIT_CONNECTION_ERROR;
        }
    };
    if resp.status != 200 {
        let e = decode_error(resp.status, &resp.body, "");
        let _ = writeln!(err, "Error: {}", e.message);
        return EXIT_QUERY_ERROR;
    }
    let v: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(err, "Error: invalid JSON from server: {}", e);
            return EXIT_CONNECTION_ERROR;
        }
    };
    if let Some(ws) = v.get("warnings").and_then(Value::as_array) {
        for w in ws.iter().filter_map(Value::as_str) {
            let _ = writeln!(err, "Warning: {}", w);
        }
    }
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    let text = if args.json {
        format!("{}\n", data)
    } else {
        let mut lines: Vec<String> = data
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|item| match item {
                        Value::String(s) => s.clone(),
                        other => series_name(&labels(other)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if matches!(args.command, QueryCommand::Series(_)) {
            lines.sort();
        }
        lines.iter().map(|l| format!("{}\n", l)).collect()
    };
    match out.write_all(text.as_bytes()) {
        Ok(()) | Err(_) => EXIT_OK,
    }
}
