//! Prometheus HTTP API v1: the response envelope, errors and routing.
//!
//! Every handler answers `{"status":"success","data":...,"warnings":[...]}`
//! or `{"status":"error","errorType":...,"error":...}` with Prometheus's
//! status codes. Handlers get their form values merged from URL and body.
//! Nothing here evaluates PromQL or reads files itself: it goes through the
//! traits in `crate::sources`.

pub mod admin;
pub mod meta;
pub mod query;
pub mod status;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use vigil_model::gofmt;

use crate::json::JsonWriter;
use crate::params::Params;
use crate::sources::ErrorKind;
use crate::Shared;

/// An API error: class and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::BadData, message)
    }

    /// `invalidParamError`: bad_data with `invalid parameter "name": ...`.
    pub fn invalid_param(name: &str, err: impl std::fmt::Display) -> Self {
        ApiError::bad_data(format!("invalid parameter {}: {}", gofmt::quote(name), err))
    }
}

/// A success body under construction: the envelope prefix is already
/// written, the handler appends the `data` value.
pub struct Success {
    pub w: JsonWriter,
    pub warnings: Vec<String>,
}

impl Success {
    pub fn new() -> Self {
        Success::with_capacity(256)
    }

    pub fn with_capacity(n: usize) -> Self {
        let mut w = JsonWriter::with_capacity(n + 64);
        w.raw(r#"{"status":"success","data":"#);
        Success {
            w,
            warnings: Vec::new(),
        }
    }

    /// Closes the envelope.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.warnings.is_empty() {
            self.w.raw(r#","warnings":"#);
            self.w.string_array(&self.warnings);
        }
        self.w.byte(b'}');
        self.w.into_bytes()
    }
}

impl Default for Success {
    fn default() -> Self {
        Success::new()
    }
}

/// What a handler produces.
pub enum ApiReply {
    Data(Success),
    /// 204, for admin calls that return nothing.
    NoContent,
}

pub type ApiResult = Result<ApiReply, ApiError>;

/// Serialises an error body.
pub fn error_body(err: &ApiError) -> Vec<u8> {
    let mut w = JsonWriter::new();
    w.raw(r#"{"status":"error","errorType":"#);
    w.string(err.kind.as_str());
    w.raw(r#","error":"#);
    w.string(&err.message);
    w.byte(b'}');
    w.into_bytes()
}

/// Turns a handler result into an HTTP response.
pub fn respond(result: ApiResult) -> Response {
    match result {
        Ok(ApiReply::Data(s)) => json_response(StatusCode::OK, s.finish()),
        Ok(ApiReply::NoContent) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            let code =
                StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            json_response(code, error_body(&e))
        }
    }
}

fn json_response(code: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Reads the form: the URL query plus, for urlencoded bodies, the body.
pub fn read_params(uri: &axum::http::Uri, headers: &HeaderMap, body: &Bytes) -> Params {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    let body = if is_form && !body.is_empty() {
        Some(body.as_ref())
    } else {
        None
    };
    Params::new(uri.query(), body)
}

/// The `/api/v1` router (to be nested under the route prefix).
pub fn router(shared: Arc<Shared>) -> Router {
    let gated = Router::new()
        .route("/query", get(query::query).post(query::query))
        .route(
            "/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route(
            "/query_exemplars",
            get(query::query_exemplars).post(query::query_exemplars),
        )
        .route(
            "/format_query",
            get(query::format_query).post(query::format_query),
        )
        .route("/labels", get(meta::label_names).post(meta::label_names))
        .route("/label/{name}/values", get(meta::label_values))
        .route("/series", get(meta::series).post(meta::series))
        .route("/metadata", get(meta::metric_metadata))
        .route("/targets", get(meta::targets))
        .route("/targets/metadata", get(meta::target_metadata))
        .route("/scrape_pools", get(meta::scrape_pools))
        .route("/rules", get(meta::rules))
        .route("/alerts", get(meta::alerts))
        .route("/alertmanagers", get(meta::alertmanagers))
        .route("/status/config", get(status::config))
        .route("/status/flags", get(status::flags))
        .route("/status/runtimeinfo", get(status::runtime_info))
        .route("/status/buildinfo", get(status::build_info))
        .route("/status/tsdb", get(status::tsdb))
        .route(
            "/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
        .route(
            "/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            crate::ready_gate,
        ));
    gated
        .route("/status/walreplay", get(status::wal_replay))
        .layer(middleware::from_fn_with_state(shared.clone(), cors))
        .with_state(shared)
}

/// Prometheus's `SetCORS`: only when the request has an Origin, and only
/// for origins matching the (fully anchored) `--web.cors.origin` regex;
/// `OPTIONS` preflights are answered here with 204.
async fn cors(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
        );
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("Date"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        if shared.cors_any {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        } else if shared.cors_origin.is_match(&origin) {
            if let Ok(v) = HeaderValue::from_str(&origin) {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            }
        }
    }
    resp
}
