//! `/api/v1/admin/tsdb/*`: delete series, clean tombstones, snapshot.
//! Refused unless `--web.enable-admin-api`; the work is the TSDB's.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::{read_params, respond, ApiError, ApiReply, ApiResult, Success};
use crate::json::format_rfc3339;
use crate::params::{parse_time_param, Params, MAX_TIME_MS, MIN_TIME_MS};
use crate::sources::{ErrorKind, TsdbAdmin};
use crate::Shared;

fn admin(s: &Shared) -> Result<Arc<dyn TsdbAdmin>, ApiError> {
    match (&s.tsdb, s.opts.enable_admin_api) {
        (Some(t), true) => Ok(t.clone()),
        _ => Err(ApiError::new(ErrorKind::Unavailable, "admin APIs disabled")),
    }
}

async fn blocking(
    s: Arc<Shared>,
    params: Params,
    f: fn(&Shared, &Params) -> ApiResult,
) -> Response {
    match tokio::task::spawn_blocking(move || f(&s, &params)).await {
        Ok(r) => respond(r),
        Err(e) => respond(Err(ApiError::new(ErrorKind::Internal, e.to_string()))),
    }
}

pub async fn delete_series(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(s, read_params(&uri, &headers, &body), delete_series_impl).await
}

fn delete_series_impl(s: &Shared, params: &Params) -> ApiResult {
    let db = admin(s)?;
    let raw = params.all("match[]");
    if raw.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = parse_time_param(params, "start", MIN_TIME_MS)
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time_param(params, "end", MAX_TIME_MS)
        .map_err(|e| ApiError::invalid_param("end", e))?;
    for m in raw {
        let matchers = s
            .engine
            .parse_metric_selector(m)
            .map_err(|e| ApiError::invalid_param("match[]", e.message))?;
        db.delete_series(start, end, &matchers)
            .map_err(|e| ApiError::new(ErrorKind::Internal, e))?;
    }
    Ok(ApiReply::NoContent)
}

pub async fn clean_tombstones(State(s): State<Arc<Shared>>) -> Response {
    blocking(s, Params::default(), |s, _| {
        admin(s)?
            .clean_tombstones()
            .map_err(|e| ApiError::new(ErrorKind::Internal, e))?;
        Ok(ApiReply::NoContent)
    })
    .await
}

pub async fn snapshot(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(s, read_params(&uri, &headers, &body), snapshot_impl).await
}

/// `20060102T150405Z`-style UTC timestamp for snapshot names.
fn compact_utc(t: SystemTime) -> String {
    // "2024-01-02T03:04:05.123Z" -> "20240102T030405Z"
    let full = format_rfc3339(Some(t));
    let base = full
        .split('.')
        .next()
        .unwrap_or(&full)
        .trim_end_matches('Z');
    format!("{}Z", base.replace(['-', ':'], ""))
}

fn snapshot_impl(s: &Shared, params: &Params) -> ApiResult {
    let db = admin(s)?;
    let skip_head = match params.get("skip_head").to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "f" => false,
        "true" | "1" | "t" => true,
        other => {
            return Err(ApiError::invalid_param(
                "skip_head",
                format!(
                    "unable to parse boolean: strconv.ParseBool: parsing {}: invalid syntax",
                    vigil_model::gofmt::quote(other)
                ),
            ))
        }
    };
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let name = format!(
        "{}-{:016x}",
        compact_utc(SystemTime::now()),
        h.finish() & 0x7fff_ffff_ffff_ffff
    );
    let dir = s.opts.data_dir.join("snapshots").join(&name);
    std::fs::create_dir_all(&dir).map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            format!("create snapshot directory: {}", e),
        )
    })?;
    db.snapshot(&dir, !skip_head)
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("create snapshot: {}", e)))?;
    let mut ok = Success::new();
    ok.w.raw(r#"{"name":"#);
    ok.w.string(&name);
    ok.w.byte(b'}');
    Ok(ApiReply::Data(ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn snapshot_names_use_compact_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(compact_utc(t), "20231114T221320Z");
    }
}
