//! `/-/healthy`, `/-/ready`, `/-/reload` and `/-/quit`, with Prometheus's
//! texts and status codes. Reload and quit are delegated to the binary's
//! `Lifecycle` and refused with 403 unless `--web.enable-lifecycle`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::Shared;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", get(only_post).post(reload).put(reload))
        .route("/-/quit", get(only_post).post(quit).put(quit))
        .with_state(shared)
}

async fn healthy() -> Response {
    (StatusCode::OK, "Prometheus Server is Healthy.\n").into_response()
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready.is_ready() {
        (StatusCode::OK, "Prometheus Server is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

async fn only_post() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        "Only POST or PUT requests allowed",
    )
        .into_response()
}

fn lifecycle_disabled() -> Response {
    (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response()
}

async fn reload(State(shared): State<Arc<Shared>>) -> Response {
    let lc = match (&shared.lifecycle, shared.opts.enable_lifecycle) {
        (Some(lc), true) => lc.clone(),
        _ => return lifecycle_disabled(),
    };
    match tokio::task::spawn_blocking(move || lc.reload()).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {}\n", e),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {}\n", e),
        )
            .into_response(),
    }
}

async fn quit(State(shared): State<Arc<Shared>>) -> Response {
    match (&shared.lifecycle, shared.opts.enable_lifecycle) {
        (Some(lc), true) => {
            lc.quit();
            (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
        }
        _ => lifecycle_disabled(),
    }
}
