//! Vigil's HTTP face: the Prometheus API v1 (query, metadata, status,
//! admin), the lifecycle endpoints under `/-/`, and `/metrics`.
//!
//! This is the only crate that knows about HTTP and JSON. It reaches the
//! engine, the TSDB, scrape and rules only through the traits in `sources`
//! (implemented by the binary), so it never owns or mutates their state.
//! Response shapes, status codes and error texts follow Prometheus 2.53.

pub mod api;
pub mod gzip;
pub mod json;
pub mod lenient;
pub mod lifecycle;
pub mod metrics;
pub mod params;
pub mod promql;
pub mod sources;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use vigil_model::storage::Queryable;

pub use metrics::WebMetrics;
pub use promql::PromqlEngine;
pub use sources::*;

/// Errors from setting the server up.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("invalid --web.cors.origin regex {regex:?}: {reason}")]
    CorsOrigin { regex: String, reason: String },
    #[error("invalid --web.external-url {url:?}: {reason}")]
    ExternalUrl { url: String, reason: String },
    #[error("HTTP server error: {0}")]
    Serve(#[from] std::io::Error),
}

/// Build information for `/api/v1/status/buildinfo`. `version` should be
/// Prometheus-compatible (e.g. "2.53.0") so Grafana enables its features.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

impl Default for BuildInfo {
    fn default() -> Self {
        BuildInfo {
            version: "2.53.0".to_string(),
            revision: String::new(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: String::new(),
        }
    }
}

/// Options from the `--web.*` flags.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `--web.listen-address`, e.g. "0.0.0.0:9090".
    pub listen_address: String,
    /// `--web.external-url`; the route prefix defaults to its path.
    pub external_url: Option<String>,
    /// `--web.route-prefix`.
    pub route_prefix: Option<String>,
    /// `--web.cors.origin` (default ".*"); anchored as `^(?:...)$`.
    pub cors_origin: String,
    /// `--web.enable-lifecycle`
    pub enable_lifecycle: bool,
    /// `--web.enable-admin-api`
    pub enable_admin_api: bool,
    /// `--storage.tsdb.path`, where snapshots are written.
    pub data_dir: PathBuf,
    /// Every flag and its value, for `/api/v1/status/flags`.
    pub flags: BTreeMap<String, String>,
    pub build_info: BuildInfo,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            listen_address: "0.0.0.0:9090".to_string(),
            external_url: None,
            route_prefix: None,
            cors_origin: ".*".to_string(),
            enable_lifecycle: false,
            enable_admin_api: false,
            data_dir: PathBuf::from("data/"),
            flags: BTreeMap::new(),
            build_info: BuildInfo::default(),
        }
    }
}

impl WebOptions {
    /// The route prefix: `--web.route-prefix`, else the external URL's
    /// path, normalised to start with "/" and have no trailing "/" (except
    /// the root itself).
    pub fn effective_route_prefix(&self) -> Result<String, WebError> {
        let raw = match (&self.route_prefix, &self.external_url) {
            (Some(p), _) => p.clone(),
            (None, Some(u)) => url_path(u)?,
            (None, None) => "/".to_string(),
        };
        let mut p = raw.trim_end_matches('/').to_string();
        if !p.starts_with('/') {
            p.insert(0, '/');
        }
        Ok(p)
    }
}

/// The path of an absolute URL ("http://host:9090/prom/" -> "/prom/").
fn url_path(u: &str) -> Result<String, WebError> {
    let rest = u
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| WebError::ExternalUrl {
            url: u.to_string(),
            reason: "not an absolute URL".to_string(),
        })?;
    Ok(match rest.find('/') {
        Some(i) => rest[i..]
            .split(['?', '#'])
            .next()
            .unwrap_or("/")
            .to_string(),
        None => "/".to_string(),
    })
}

/// Readiness: false until the binary has replayed the WAL and set it.
#[derive(Debug, Clone, Default)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    pub fn new() -> Self {
        ReadyFlag::default()
    }
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// State shared by every handler.
pub struct Shared {
    pub opts: WebOptions,
    pub route_prefix: String,
    pub cors_origin: regex::Regex,
    /// `--web.cors.origin=.*`: answer `*` without matching.
    pub cors_any: bool,
    pub ready: ReadyFlag,
    pub storage: Arc<dyn Queryable>,
    pub engine: Arc<dyn QueryEngine>,
    pub exemplars: Option<Arc<dyn ExemplarSource>>,
    pub targets: Option<Arc<dyn TargetsSource>>,
    pub rules: Option<Arc<dyn RulesSource>>,
    pub alertmanagers: Option<Arc<dyn AlertmanagersSource>>,
    pub tsdb: Option<Arc<dyn TsdbAdmin>>,
    pub config: Option<Arc<dyn ConfigSource>>,
    pub runtime: Option<Arc<dyn RuntimeSource>>,
    pub lifecycle: Option<Arc<dyn Lifecycle>>,
    pub metrics: WebMetrics,
    pub start_time: SystemTime,
}

/// Builder for the HTTP server. Required: options, storage and engine;
/// everything else answers empty results until provided.
pub struct Web {
    shared: Shared,
}

impl Web {
    pub fn new(
        opts: WebOptions,
        storage: Arc<dyn Queryable>,
        engine: Arc<dyn QueryEngine>,
    ) -> Result<Self, WebError> {
        let route_prefix = opts.effective_route_prefix()?;
        let anchored = format!("^(?:{})$", opts.cors_origin);
        let cors_origin = regex::Regex::new(&anchored).map_err(|e| WebError::CorsOrigin {
            regex: opts.cors_origin.clone(),
            reason: e.to_string(),
        })?;
        let cors_any = opts.cors_origin == ".*";
        Ok(Web {
            shared: Shared {
                opts,
                route_prefix,
                cors_origin,
                cors_any,
                ready: ReadyFlag::new(),
                storage,
                engine,
                exemplars: None,
                targets: None,
                rules: None,
                alertmanagers: None,
                tsdb: None,
                config: None,
                runtime: None,
                lifecycle: None,
                metrics: WebMetrics::new(),
                start_time: SystemTime::now(),
            },
        })
    }

    /// The readiness flag; set it once the WAL replay is done.
    pub fn ready_flag(&self) -> ReadyFlag {
        self.shared.ready.clone()
    }

    /// Use an existing readiness flag (e.g. created before the TSDB opened).
    pub fn with_ready_flag(mut self, flag: ReadyFlag) -> Self {
        self.shared.ready = flag;
        self
    }

    /// The self-monitoring registry hook (see `WebMetrics`).
    pub fn metrics(&self) -> WebMetrics {
        self.shared.metrics.clone()
    }

    /// Use a metrics registry created by the binary (shared with other crates).
    pub fn with_metrics(mut self, m: WebMetrics) -> Self {
        self.shared.metrics = m;
        self
    }

    pub fn with_exemplars(mut self, s: Arc<dyn ExemplarSource>) -> Self {
        self.shared.exemplars = Some(s);
        self
    }
    pub fn with_targets(mut self, s: Arc<dyn TargetsSource>) -> Self {
        self.shared.targets = Some(s);
        self
    }
    pub fn with_rules(mut self, s: Arc<dyn RulesSource>) -> Self {
        self.shared.rules = Some(s);
        self
    }
    pub fn with_alertmanagers(mut self, s: Arc<dyn AlertmanagersSource>) -> Self {
        self.shared.alertmanagers = Some(s);
        self
    }
    pub fn with_tsdb_admin(mut self, s: Arc<dyn TsdbAdmin>) -> Self {
        self.shared.tsdb = Some(s);
        self
    }
    pub fn with_config(mut self, s: Arc<dyn ConfigSource>) -> Self {
        self.shared.config = Some(s);
        self
    }
    pub fn with_runtime(mut self, s: Arc<dyn RuntimeSource>) -> Self {
        self.shared.runtime = Some(s);
        self
    }
    pub fn with_lifecycle(mut self, s: Arc<dyn Lifecycle>) -> Self {
        self.shared.lifecycle = Some(s);
        self
    }

    /// The complete application, prefix, compression and metrics included.
    pub fn router(self) -> Router {
        let shared = Arc::new(self.shared);
        let app = Router::new()
            .nest("/api/v1", api::router(shared.clone()))
            .merge(lifecycle::router(shared.clone()))
            .merge(metrics::router(shared.clone()))
            .route_layer(middleware::from_fn_with_state(
                shared.clone(),
                metrics::instrument,
            ));
        let app = if shared.route_prefix == "/" {
            app
        } else {
            let prefix = shared.route_prefix.clone();
            let target = format!("{}/", prefix);
            Router::new().nest(&prefix, app).route(
                "/",
                axum::routing::get(move || async move {
                    axum::response::Redirect::to(&target).into_response()
                }),
            )
        };
        // Level 1 (see `gzip`): API responses are mostly JSON numbers that
        // compress well at any level, and higher levels cost more CPU per
        // query than evaluating most dashboard queries.
        app.layer(middleware::from_fn(gzip::gzip))
    }

    /// Serves until `shutdown` resolves (then drains in-flight requests).
    pub async fn serve<F>(
        self,
        listener: tokio::net::TcpListener,
        shutdown: F,
    ) -> Result<(), WebError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let app = self.router();
        // Go's leniency for unescaped `"`, `<`, `>` in URLs (see `lenient`).
        axum::serve(lenient::LenientListener(listener), app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

/// Prometheus's `testReady`: 503 "Service Unavailable" until ready.
pub(crate) async fn ready_gate(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    if shared.ready.is_ready() {
        next.run(req).await
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_prefix_from_flags() {
        let mut o = WebOptions::default();
        assert_eq!(o.effective_route_prefix().unwrap(), "/");
        o.external_url = Some("http://example.com:9090/prom/".into());
        assert_eq!(o.effective_route_prefix().unwrap(), "/prom");
        o.route_prefix = Some("other/".into());
        assert_eq!(o.effective_route_prefix().unwrap(), "/other");
        o.route_prefix = None;
        o.external_url = Some("http://example.com".into());
        assert_eq!(o.effective_route_prefix().unwrap(), "/");
        o.external_url = Some("example.com/x".into());
        assert!(o.effective_route_prefix().is_err());
    }
}
