//! `/api/v1/status/*`: config, flags, runtime and build information, TSDB
//! cardinality statistics and WAL replay progress.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::Response;

use super::{blocking, respond, ApiError, ApiReply, ApiResult, UrlQuery};
use crate::json::JsonWriter;
use crate::params::Params;
use crate::sources::{ErrorKind, TsdbStat, TsdbStats};
use crate::Shared;

pub async fn config(State(s): State<Arc<Shared>>) -> Response {
    let yaml = s
        .config
        .as_ref()
        .map(|c| c.config_yaml())
        .unwrap_or_default();
    respond(Ok(ApiReply::data(|w| {
        w.raw(r#"{"yaml":"#);
        w.string(&yaml);
        w.byte(b'}');
    })))
}

pub async fn flags(State(s): State<Arc<Shared>>) -> Response {
    respond(Ok(ApiReply::data(|w| {
        w.object(&s.opts.flags, |w, v| w.string(v))
    })))
}

pub async fn build_info(State(s): State<Arc<Shared>>) -> Response {
    let b = &s.opts.build_info;
    let fields = [
        ("version", &b.version),
        ("revision", &b.revision),
        ("branch", &b.branch),
        ("buildUser", &b.build_user),
        ("buildDate", &b.build_date),
        ("goVersion", &b.go_version),
    ];
    respond(Ok(ApiReply::data(|w| w.object(fields, |w, v| w.string(v)))))
}

/// Number of threads of this process (Prometheus reports goroutines).
fn thread_count() -> i64 {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count() as i64)
        .unwrap_or(1)
}

pub async fn runtime_info(State(s): State<Arc<Shared>>) -> Response {
    let rt = s
        .runtime
        .as_ref()
        .map(|r| r.runtime_status())
        .unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<error retrieving current working directory: {}>", e));
    let procs = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    respond(Ok(ApiReply::data(|w| {
        w.raw(r#"{"startTime":"#);
        w.time(Some(s.start_time));
        w.raw(r#","CWD":"#);
        w.string(&cwd);
        w.raw(r#","reloadConfigSuccess":"#);
        w.bool(rt.reload_config_success);
        w.raw(r#","lastConfigTime":"#);
        w.time(rt.last_config_time);
        w.raw(r#","corruptionCount":"#);
        w.i64(rt.corruption_count);
        w.raw(r#","goroutineCount":"#);
        w.i64(thread_count());
        w.raw(r#","GOMAXPROCS":"#);
        w.i64(procs);
        w.raw(r#","GOMEMLIMIT":"#);
        w.i64(i64::MAX);
        w.raw(r#","GOGC":"","GODEBUG":"","storageRetention":"#);
        w.string(&rt.storage_retention);
        w.raw(r#","serverTime":"#);
        w.time(Some(SystemTime::now()));
        w.byte(b'}');
    })))
}

pub async fn tsdb(State(s): State<Arc<Shared>>, UrlQuery(params): UrlQuery) -> Response {
    blocking(s, params, tsdb_impl).await
}

fn tsdb_impl(s: &Shared, params: &Params) -> ApiResult {
    let limit = match params.get("limit") {
        "" => 10,
        v => match v.parse::<i64>() {
            Ok(n) if n >= 1 => n as usize,
            _ => return Err(ApiError::bad_data("limit must be a positive number")),
        },
    };
    let st = match &s.tsdb {
        Some(t) => t
            .stats(limit)
            .map_err(|e| ApiError::new(ErrorKind::Internal, e))?,
        None => TsdbStats::default(),
    };
    Ok(ApiReply::data(|w| {
        w.raw(r#"{"headStats":{"numSeries":"#);
        w.u64(st.num_series);
        w.raw(r#","numLabelPairs":"#);
        w.i64(st.num_label_pairs);
        w.raw(r#","chunkCount":"#);
        w.i64(st.chunk_count);
        w.raw(r#","minTime":"#);
        w.i64(st.min_time);
        w.raw(r#","maxTime":"#);
        w.i64(st.max_time);
        w.byte(b'}');
        let lists: [(&str, &Vec<TsdbStat>); 4] = [
            ("seriesCountByMetricName", &st.series_count_by_metric_name),
            (
                "labelValueCountByLabelName",
                &st.label_value_count_by_label_name,
            ),
            (
                "memoryInBytesByLabelName",
                &st.memory_in_bytes_by_label_name,
            ),
            (
                "seriesCountByLabelValuePair",
                &st.series_count_by_label_value_pair,
            ),
        ];
        for (key, list) in lists {
            w.byte(b',');
            w.key(key);
            write_stats(w, list, limit);
        }
        w.byte(b'}');
    }))
}

fn write_stats(w: &mut JsonWriter, list: &[TsdbStat], limit: usize) {
    w.array(list.iter().take(limit), |w, st| {
        w.raw(r#"{"name":"#);
        w.string(&st.name);
        w.raw(r#","value":"#);
        w.u64(st.value);
        w.byte(b'}');
    });
}

pub async fn wal_replay(State(s): State<Arc<Shared>>) -> Response {
    let st = s
        .tsdb
        .as_ref()
        .map(|t| t.wal_replay_status())
        .unwrap_or_default();
    respond(Ok(ApiReply::data(|w| {
        w.raw(r#"{"min":"#);
        w.i64(st.min);
        w.raw(r#","max":"#);
        w.i64(st.max);
        w.raw(r#","current":"#);
        w.i64(st.current);
        w.byte(b'}');
    })))
}
