//! The server: start-up order, reload, and shutdown.
//!
//! Order matters: the HTTP listener comes up first (so `/-/healthy` answers
//! and `/-/ready` says 503 during a long WAL replay), then the TSDB opens,
//! then scraping and rules start, then readiness is set. Shutdown runs the
//! other way round and closes the TSDB last, so the WAL is flushed and
//! fsynced after the last append.

use crate::flags::ServerFlags;
use crate::metrics::ReloadState;
use crate::storage::LateStorage;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
use tokio::sync::mpsc;
use vigil_config::{ByteSize, Config, Duration};
use vigil_promql::engine::{Engine, EngineOptions};
use vigil_rules::manager::{RuleManager, RuleManagerOptions};
use vigil_rules::notifier::Notifier;
use vigil_scrape::{ManagerOptions, ScrapeManager};
use vigil_tsdb::db::{Db, DbOptions};
use vigil_web::{
    ConfigSource, Lifecycle, PromqlEngine, ReadyFlag, RuntimeSource, RuntimeStatus, TargetsSource,
    Web, WebOptions,
};

/// The embedded default configuration (`config/vigil.yml`).
const DEFAULT_CONFIG: &str = include_str!("../../config/vigil.yml");

/// Where the configuration comes from.
#[derive(Clone, Debug)]
pub enum ConfigOrigin {
    File(PathBuf),
    /// The embedded default, with the self-scrape target on `port`.
    Embedded {
        port: u16,
    },
}

impl ConfigOrigin {
    fn resolve(flags: &ServerFlags, port: u16) -> ConfigOrigin {
        match &flags.config_file {
            Some(p) => ConfigOrigin::File(PathBuf::from(p)),
            None if std::path::Path::new("prometheus.yml").exists() => {
                ConfigOrigin::File(PathBuf::from("prometheus.yml"))
            }
            None => ConfigOrigin::Embedded { port },
        }
    }

    pub fn load(&self) -> Result<Config, vigil_config::ConfigError> {
        match self {
            ConfigOrigin::File(p) => Config::load(p),
            ConfigOrigin::Embedded { port } => {
                let text = DEFAULT_CONFIG.replace("localhost:9090", &format!("localhost:{port}"));
                Config::from_yaml(&text, "<embedded config/vigil.yml>")
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            ConfigOrigin::File(p) => p.display().to_string(),
            ConfigOrigin::Embedded { .. } => "embedded default (config/vigil.yml)".to_string(),
        }
    }
}

/// Flag values parsed into their types.
struct Settings {
    listen: String,
    port: u16,
    data_dir: PathBuf,
    db: DbOptions,
    engine: EngineOptions,
    /// `--enable-feature=promql-experimental-functions`.
    parse: vigil_promql::parser::ParseOptions,
    retention_text: String,
    wal_fsync_interval: Option<std::time::Duration>,
    resend_delay: std::time::Duration,
    outage_tolerance: std::time::Duration,
    for_grace_period: std::time::Duration,
    external_url: String,
    drain_notifications: bool,
}

fn parse_duration(flag: &str, v: &str) -> anyhow::Result<i64> {
    let d = Duration::parse(v).with_context(|| format!("invalid --{flag}={v}"))?;
    i64::try_from(d.as_millis()).with_context(|| format!("--{flag}={v} is too large"))
}

impl Settings {
    fn from_flags(f: &ServerFlags) -> anyhow::Result<Settings> {
        if f.web_config_file.as_deref().is_some_and(|s| !s.is_empty()) {
            bail!(
                "--web.config.file (TLS and authentication for the web server) is not supported by Vigil yet; \
                 refusing to start without the protection it asks for (put a TLS-terminating proxy in front instead)"
            );
        }
        let port = f
            .listen_address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .with_context(|| {
                format!(
                    "invalid --web.listen-address={}: want host:port",
                    f.listen_address
                )
            })?;
        let retention_time = match (&f.retention_time, &f.retention_deprecated) {
            (Some(v), _) => Some(parse_duration("storage.tsdb.retention.time", v)?),
            (None, Some(v)) => Some(parse_duration("storage.tsdb.retention", v)?),
            (None, None) => None,
        };
        let retention_size = match &f.retention_size {
            Some(v) => Some(
                ByteSize::parse(v)
                    .map_err(|e| anyhow::anyhow!("invalid --storage.tsdb.retention.size={v}: {e}"))?
                    .0,
            ),
            None => None,
        };
        let min_block = parse_duration("storage.tsdb.min-block-duration", &f.min_block_duration)?;
        let max_block = match &f.max_block_duration {
            Some(v) => Some(parse_duration("storage.tsdb.max-block-duration", v)?),
            None => None,
        };
        let mut db =
            DbOptions::from_flags(retention_time, retention_size, Some(min_block), max_block);
        db.no_lockfile = f.no_lockfile || !f.use_lockfile;
        db.head.max_series = f.max_head_series;
        let mut retention_parts = Vec::new();
        if db.retention_time > 0 {
            retention_parts.push(Duration::from_millis(db.retention_time as u64).to_string());
        }
        if db.retention_size > 0 {
            retention_parts.push(ByteSize(db.retention_size).to_string());
        }
        let engine = EngineOptions {
            lookback_delta: parse_duration("query.lookback-delta", &f.lookback_delta)?,
            max_samples: f.query_max_samples,
            timeout: std::time::Duration::from_millis(parse_duration(
                "query.timeout",
                &f.query_timeout,
            )? as u64),
            max_concurrency: f.query_max_concurrency,
            ..EngineOptions::default()
        };
        let fsync_ms = parse_duration("storage.tsdb.wal-fsync-interval", &f.wal_fsync_interval)?;
        let std_dur = |flag: &str, v: &str| -> anyhow::Result<std::time::Duration> {
            Ok(std::time::Duration::from_millis(
                parse_duration(flag, v)? as u64
            ))
        };
        Ok(Settings {
            resend_delay: std_dur("rules.alert.resend-delay", &f.resend_delay)?,
            outage_tolerance: std_dur("rules.alert.for-outage-tolerance", &f.for_outage_tolerance)?,
            for_grace_period: std_dur("rules.alert.for-grace-period", &f.for_grace_period)?,
            external_url: external_url(f, port),
            drain_notifications: f
                .ignored
                .alertmanager_drain_queue
                .as_deref()
                .is_none_or(|v| v != "false"),
            wal_fsync_interval: (fsync_ms > 0)
                .then(|| std::time::Duration::from_millis(fsync_ms as u64)),
            listen: f.listen_address.clone(),
            port,
            data_dir: PathBuf::from(&f.tsdb_path),
            db,
            engine,
            parse: vigil_promql::parser::ParseOptions {
                experimental_functions: f.features().promql_experimental_functions,
            },
            retention_text: retention_parts.join(" or "),
        })
    }
}

/// `--web.external-url`, or what Prometheus derives: this host's name and
/// the listen port (links in alerts point there).
fn external_url(f: &ServerFlags, port: u16) -> String {
    if let Some(u) = &f.external_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    let prefix = f
        .route_prefix
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    format!("http://{host}:{port}{prefix}")
}

/// Requests from the HTTP lifecycle endpoints to the main loop.
enum Control {
    Reload(std::sync::mpsc::Sender<Result<(), String>>),
    Quit,
}

struct LifecycleHandle {
    tx: mpsc::UnboundedSender<Control>,
}

impl Lifecycle for LifecycleHandle {
    fn reload(&self) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx
            .send(Control::Reload(tx))
            .map_err(|_| "server is shutting down".to_string())?;
        rx.recv()
            .map_err(|_| "server is shutting down".to_string())?
    }

    fn quit(&self) {
        let _ = self.tx.send(Control::Quit);
    }
}

/// The running configuration, shared with the status endpoints.
struct ConfigState {
    current: RwLock<Arc<Config>>,
    reload: Arc<ReloadState>,
    last_success: RwLock<Option<SystemTime>>,
    retention: String,
}

impl ConfigState {
    fn current(&self) -> Arc<Config> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ConfigSource for ConfigState {
    fn config_yaml(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .to_yaml()
    }
}

impl RuntimeSource for ConfigState {
    fn runtime_status(&self) -> RuntimeStatus {
        RuntimeStatus {
            reload_config_success: self
                .reload
                .successful
                .load(std::sync::atomic::Ordering::Relaxed)
                == 1,
            last_config_time: *self.last_success.read().unwrap_or_else(|e| e.into_inner()),
            corruption_count: 0,
            storage_retention: self.retention.clone(),
        }
    }
}

/// Every flag and its value, for `/api/v1/status/flags`.
fn flag_map(f: &ServerFlags) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put(
        "config.file",
        f.config_file
            .clone()
            .unwrap_or_else(|| "prometheus.yml".into()),
    );
    put("web.listen-address", f.listen_address.clone());
    put(
        "web.external-url",
        f.external_url.clone().unwrap_or_default(),
    );
    put(
        "web.route-prefix",
        f.route_prefix.clone().unwrap_or_default(),
    );
    put("web.enable-lifecycle", f.enable_lifecycle.to_string());
    put("web.enable-admin-api", f.enable_admin_api.to_string());
    put(
        "web.enable-remote-write-receiver",
        f.enable_remote_write_receiver.to_string(),
    );
    put("web.cors.origin", f.cors_origin.clone());
    put("storage.tsdb.path", f.tsdb_path.clone());
    put(
        "storage.tsdb.retention.time",
        f.retention_time.clone().unwrap_or_else(|| "0s".into()),
    );
    put(
        "storage.tsdb.retention.size",
        f.retention_size.clone().unwrap_or_else(|| "0B".into()),
    );
    put(
        "storage.tsdb.min-block-duration",
        f.min_block_duration.clone(),
    );
    put(
        "storage.tsdb.max-block-duration",
        f.max_block_duration.clone().unwrap_or_default(),
    );
    put(
        "storage.tsdb.max-head-series",
        f.max_head_series.to_string(),
    );
    put("query.lookback-delta", f.lookback_delta.clone());
    put("query.timeout", f.query_timeout.clone());
    put("query.max-concurrency", f.query_max_concurrency.to_string());
    put("query.max-samples", f.query_max_samples.to_string());
    put(
        "rules.alert.for-outage-tolerance",
        f.for_outage_tolerance.clone(),
    );
    put("rules.alert.for-grace-period", f.for_grace_period.clone());
    put("rules.alert.resend-delay", f.resend_delay.clone());
    put(
        "alertmanager.notification-queue-capacity",
        f.notification_queue_capacity.to_string(),
    );
    put("log.level", f.log_level.clone());
    put("log.format", f.log_format.clone());
    m
}

/// Runs the server until SIGTERM/SIGINT or `/-/quit`.
pub fn run(flags: ServerFlags) -> anyhow::Result<()> {
    let settings = Settings::from_flags(&flags)?;
    for name in flags.ignored.given() {
        tracing::info!(
            flag = name,
            "flag accepted for compatibility but ignored by Vigil"
        );
    }
    let features = flags.features();
    if features.promql_experimental_functions {
        tracing::info!("Experimental PromQL functions enabled.");
    }
    for name in &features.ignored {
        tracing::info!(
            option = %name,
            "--enable-feature option accepted for compatibility but ignored by Vigil"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vigil-worker")
        .build()
        .context("start async runtime")?;
    runtime.block_on(serve(flags, settings))
}

async fn serve(flags: ServerFlags, settings: Settings) -> anyhow::Result<()> {
    tracing::info!(version = crate::version_text(), "Starting Vigil");
    let origin = ConfigOrigin::resolve(&flags, settings.port);
    let config = origin
        .load()
        .with_context(|| format!("error loading config from {}", origin.describe()))?;
    tracing::info!(file = %origin.describe(), "Loaded configuration file");
    warn_unsupported(&config);
    if flags.enable_remote_write_receiver {
        tracing::warn!(
            "--web.enable-remote-write-receiver: the remote-write receiver is not implemented yet; /api/v1/write is not served"
        );
    }

    let mut engine_opts = settings.engine.clone();
    engine_opts.default_eval_interval = config.global.evaluation_interval.as_millis() as i64;
    let mut db_opts = settings.db.clone();
    db_opts.head.ooo_time_window = config
        .storage
        .tsdb
        .as_ref()
        .map_or(0, |t| t.out_of_order_time_window.as_millis() as i64);

    let storage = LateStorage::default();
    let replay = Arc::new(vigil_tsdb::head::WalReplayStatus::default());
    db_opts.head.replay_status = replay.clone();
    let reload_state = Arc::new(ReloadState::default());
    reload_state.record(true);
    let config_state = Arc::new(ConfigState {
        current: RwLock::new(Arc::new(config)),
        reload: reload_state.clone(),
        last_success: RwLock::new(Some(SystemTime::now())),
        retention: settings.retention_text.clone(),
    });

    let targets = Arc::new(LateTargets::default());

    // HTTP first.
    let engine = Arc::new(Engine::new(engine_opts));
    let queryable: Arc<dyn vigil_model::storage::Queryable> = Arc::new(storage.clone());
    let web_opts = WebOptions {
        listen_address: settings.listen.clone(),
        external_url: flags.external_url.clone(),
        route_prefix: flags.route_prefix.clone(),
        cors_origin: flags.cors_origin.clone(),
        enable_lifecycle: flags.enable_lifecycle,
        enable_admin_api: flags.enable_admin_api,
        data_dir: settings.data_dir.clone(),
        flags: flag_map(&flags),
        build_info: vigil_web::BuildInfo {
            version: crate::PROMETHEUS_COMPAT_VERSION.to_string(),
            revision: format!("vigil-{}", env!("CARGO_PKG_VERSION")),
            branch: "main".to_string(),
            build_user: "vigil".to_string(),
            build_date: String::new(),
            go_version: "none (Rust)".to_string(),
        },
    };
    // Alerting: the notifier and the rule manager read and write through the
    // same late-bound storage as everything else; rules start after the TSDB.
    let notifier = Arc::new(Notifier::new(flags.notification_queue_capacity));
    if let Err(e) = notifier.apply_config(&config_state.current()) {
        anyhow::bail!("alerting configuration: {e}");
    }
    let notifier_task = tokio::spawn(notifier.clone().run());
    let appendable: Arc<dyn vigil_model::storage::Appendable> = Arc::new(storage.clone());
    let rules = Arc::new(RuleManager::new(RuleManagerOptions {
        engine: engine.clone(),
        queryable: queryable.clone(),
        appendable: appendable.clone(),
        notify: Some(notifier.notify_fn(&settings.external_url)),
        external_url: settings.external_url.clone(),
        resend_delay: settings.resend_delay,
        outage_tolerance: settings.outage_tolerance,
        for_grace_period: settings.for_grace_period,
    }));

    let (ctrl_tx, mut ctrl_rx) = mpsc::unbounded_channel::<Control>();
    let ready = ReadyFlag::new();
    let web = Web::new(
        web_opts,
        queryable.clone(),
        Arc::new(
            PromqlEngine::new(engine.clone(), queryable.clone()).with_parse_options(settings.parse),
        ),
    )
    .context("set up web server")?
    .with_ready_flag(ready.clone())
    .with_config(config_state.clone())
    .with_runtime(config_state.clone())
    .with_lifecycle(Arc::new(LifecycleHandle {
        tx: ctrl_tx.clone(),
    }))
    .with_targets(targets.clone())
    .with_rules(Arc::new(crate::sources::Rules(rules.clone())))
    .with_alertmanagers(Arc::new(crate::sources::Alertmanagers(notifier.clone())))
    .with_tsdb_admin(Arc::new(crate::sources::TsdbAdmin {
        storage: storage.clone(),
        replay,
    }));
    crate::metrics::register(
        &web.metrics(),
        reload_state.clone(),
        storage.clone(),
        rules.clone(),
        notifier.clone(),
    );

    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("listen on {}", settings.listen))?;
    tracing::info!(address = %settings.listen, "Listening");
    let (stop_web_tx, stop_web_rx) = tokio::sync::oneshot::channel::<()>();
    let web_task = tokio::spawn(web.serve(listener, async move {
        let _ = stop_web_rx.await;
    }));

    // Then the TSDB (WAL replay may take a while).
    let data_dir = settings.data_dir.clone();
    tracing::info!(path = %data_dir.display(), "Opening TSDB");
    let started = std::time::Instant::now();
    let db = tokio::task::spawn_blocking(move || Db::open(&data_dir, db_opts))
        .await
        .context("TSDB open task")?
        .with_context(|| format!("open TSDB at {}", settings.data_dir.display()))?;
    tracing::info!(elapsed = ?started.elapsed(), "TSDB started");
    let compaction = db.start_background_compaction();
    storage.set(db.clone());
    let fsync_task = settings.wal_fsync_interval.map(|every| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let db = db.clone();
                match tokio::task::spawn_blocking(move || db.head().sync_wal()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "periodic WAL fsync failed"),
                    Err(e) => tracing::warn!(error = %e, "periodic WAL fsync task failed"),
                    Ok(Ok(())) => {}
                }
            }
        })
    });

    // Then the scrapers, appending into the TSDB.
    let scrape = Arc::new(
        ScrapeManager::new(
            appendable,
            ManagerOptions {
                offset_seed: offset_seed(&config_state.current()),
                ..ManagerOptions::default()
            },
        )
        .context("start scrape manager")?,
    );
    if let Err(e) = scrape.apply_config(&config_state.current()) {
        tracing::error!(error = %e, "some scrape jobs could not be started");
    }
    targets.set(scrape.clone());
    // Then the rules (restoring `for` state reads the TSDB).
    if let Err(errs) = rules.apply_config(&config_state.current()) {
        for e in &errs {
            tracing::error!(error = %e, "error loading rule file");
        }
        anyhow::bail!("{} rule file error(s); see the log", errs.len());
    }
    let components = Components {
        scrape: scrape.clone(),
        rules: rules.clone(),
        notifier: notifier.clone(),
    };

    ready.set_ready();
    tracing::info!("Server is ready to receive web requests.");

    // Main loop: signals and lifecycle requests.
    let mut sighup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut sigterm = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = sighup.recv() => {
                let _ = reload(&origin, &config_state, &components);
            }
            _ = sigterm.recv() => { tracing::warn!("Received SIGTERM, exiting gracefully..."); break; }
            _ = sigint.recv() => { tracing::warn!("Received SIGINT, exiting gracefully..."); break; }
            c = ctrl_rx.recv() => match c {
                Some(Control::Reload(reply)) => { let _ = reply.send(reload(&origin, &config_state, &components)); }
                Some(Control::Quit) => { tracing::warn!("Received termination request via web service, exiting gracefully..."); break; }
                None => break,
            },
        }
    }

    // Shutdown, in reverse order.
    {
        let rules = rules.clone();
        let _ = tokio::task::spawn_blocking(move || rules.stop()).await;
    }
    scrape.shutdown().await;
    notifier.stop(settings.drain_notifications);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), notifier_task).await;
    if let Some(t) = fsync_task {
        t.abort();
    }
    let _ = stop_web_tx.send(());
    match tokio::time::timeout(std::time::Duration::from_secs(10), web_task).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "web server stopped with an error"),
        Err(_) => tracing::warn!("web server did not drain within 10s"),
        _ => {}
    }
    let closing = db.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .context("TSDB close task")?
        .context("close TSDB")?;
    let _ = tokio::task::spawn_blocking(move || compaction.join()).await;
    tracing::info!("See you next time!");
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).context("install signal handler")
}

/// The running components a reload reconfigures.
struct Components {
    scrape: Arc<ScrapeManager>,
    rules: Arc<RuleManager>,
    notifier: Arc<Notifier>,
}

/// Re-reads the configuration; a file that does not load leaves everything
/// as it was. A valid file is applied to every component; as in
/// Prometheus, one component failing fails the reload (and is logged) while
/// the others keep the new configuration.
fn reload(origin: &ConfigOrigin, state: &ConfigState, c: &Components) -> Result<(), String> {
    tracing::info!(file = %origin.describe(), "Loading configuration file");
    let cfg = match origin.load() {
        Ok(cfg) => Arc::new(cfg),
        Err(e) => {
            state.reload.record(false);
            tracing::error!(error = %e, "Error reloading config; the previous configuration stays in effect");
            return Err(e.to_string());
        }
    };
    *state.current.write().unwrap_or_else(|e| e.into_inner()) = cfg.clone();
    warn_unsupported(&cfg);
    let mut errors = Vec::new();
    if let Err(e) = c.scrape.apply_config(&cfg) {
        errors.push(format!("scrape: {e}"));
    }
    if let Err(e) = c.notifier.apply_config(&cfg) {
        errors.push(format!("notifier: {e}"));
    }
    if let Err(errs) = c.rules.apply_config(&cfg) {
        for e in errs {
            errors.push(format!("rules: {e}"));
        }
    }
    if errors.is_empty() {
        state.reload.record(true);
        *state
            .last_success
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
        tracing::info!(file = %origin.describe(), "Completed loading of configuration file");
        Ok(())
    } else {
        state.reload.record(false);
        let msg = format!(
            "one or more errors occurred while applying the new configuration ({}): {}",
            origin.describe(),
            errors.join("; ")
        );
        tracing::error!(error = %msg, "Error reloading config");
        Err(msg)
    }
}

/// Says which parts of a valid configuration Vigil does not act on yet, so
/// nobody believes their data is shipped somewhere it is not.
fn warn_unsupported(cfg: &Config) {
    if !cfg.remote_write.is_empty() {
        tracing::warn!(
            count = cfg.remote_write.len(),
            "remote_write is not implemented yet: these endpoints receive nothing"
        );
    }
    if !cfg.remote_read.is_empty() {
        tracing::warn!(
            count = cfg.remote_read.len(),
            "remote_read is not implemented yet: queries use local data only"
        );
    }
    if !cfg.global.query_log_file.is_empty() {
        tracing::warn!(
            file = %cfg.global.query_log_file,
            "global.query_log_file is not implemented yet: queries are not logged"
        );
    }
}

/// Seeds the scrape offsets like Prometheus (external labels and hostname),
/// so several servers scraping the same targets spread differently.
fn offset_seed(cfg: &Config) -> u64 {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut labels = cfg.global.external_labels().builder();
    labels.set("__vigil_hostname__", host.trim());
    labels.build().stable_hash()
}

/// Scrape state for the API; empty until the scrape manager has started.
#[derive(Default)]
struct LateTargets(std::sync::OnceLock<Arc<ScrapeManager>>);

impl LateTargets {
    fn set(&self, m: Arc<ScrapeManager>) {
        let _ = self.0.set(m);
    }

    fn with<T: Default>(&self, f: impl FnOnce(&crate::sources::ScrapeTargets) -> T) -> T {
        self.0
            .get()
            .map(|m| f(&crate::sources::ScrapeTargets(m.clone())))
            .unwrap_or_default()
    }
}

impl TargetsSource for LateTargets {
    fn active_targets(&self) -> Vec<vigil_web::ActiveTarget> {
        self.with(|t| t.active_targets())
    }
    fn dropped_targets(&self) -> Vec<vigil_web::DroppedTarget> {
        self.with(|t| t.dropped_targets())
    }
    fn target_metadata(&self) -> Vec<(vigil_model::Labels, Vec<vigil_web::MetricMetadata>)> {
        self.with(|t| t.target_metadata())
    }
}
