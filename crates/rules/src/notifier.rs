//! The notifier: sends alerts to every configured Alertmanager
//! (`/api/v2/alerts`), as Prometheus's `notifier` package does: external
//! labels added, `alert_relabel_configs` applied, a bounded queue that
//! drops the oldest alerts when full, batches of at most 64, and the
//! `prometheus_notifications_*` metrics as plain atomics.
//!
//! Discovery is static targets plus `file_sd_configs` files re-read on
//! their refresh interval. It knows nothing of rules beyond `NotifyFn`.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use vigil_config::{AlertmanagerApiVersion, AlertmanagerConfig, Config, HttpClientConfig};
use vigil_model::relabel::{self, RelabelConfig};
use vigil_model::Labels;

use crate::group::NotifyFn;
use crate::rule::Alert;
use crate::template::{table_link, timefmt::rfc3339_millis};

/// Alerts per POST, as Prometheus.
pub const MAX_BATCH_SIZE: usize = 64;
/// `--alertmanager.notification-queue-capacity` default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// An alert as sent to Alertmanager. Times are ms since the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifierAlert {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub generator_url: String,
}

/// Why the notifier configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("alertmanager {index}: {message}")]
    Config { index: usize, message: String },
}

/// Per-Alertmanager counters (`alertmanager` label = its URL).
#[derive(Debug, Default)]
pub struct AlertmanagerMetrics {
    /// `prometheus_notifications_sent_total`
    pub sent_total: AtomicU64,
    /// `prometheus_notifications_errors_total`
    pub errors_total: AtomicU64,
    /// `prometheus_notifications_latency_seconds` sum (f64 bits) and count.
    pub latency_seconds_sum: AtomicU64,
    pub latency_seconds_count: AtomicU64,
}

/// The notifier's metrics; the binary registers them.
#[derive(Debug, Default)]
pub struct NotifierMetrics {
    /// `prometheus_notifications_dropped_total`
    pub dropped_total: AtomicU64,
    /// `prometheus_notifications_queue_capacity`
    pub queue_capacity: AtomicU64,
    /// `prometheus_notifications_queue_length`
    pub queue_length: AtomicU64,
    /// `prometheus_notifications_alertmanagers_discovered`
    pub alertmanagers_discovered: AtomicU64,
    per_am: Mutex<BTreeMap<String, Arc<AlertmanagerMetrics>>>,
}

impl NotifierMetrics {
    /// Metrics of every Alertmanager seen, by URL.
    pub fn per_alertmanager(&self) -> Vec<(String, Arc<AlertmanagerMetrics>)> {
        self.per_am
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn am(&self, url: &str) -> Arc<AlertmanagerMetrics> {
        self.per_am
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(url.to_string())
            .or_default()
            .clone()
    }
}

/// One `alertmanagers` entry with its discovered targets.
struct AmSet {
    cfg: AlertmanagerConfig,
    client: reqwest::Client,
    auth: Auth,
    active: Vec<String>,
    dropped: Vec<String>,
    last_refresh: Option<Instant>,
}

#[derive(Clone, Debug, Default)]
enum Auth {
    #[default]
    None,
    Basic(String, String),
    Header(String),
}

struct Settings {
    external_labels: Labels,
    relabel: Vec<RelabelConfig>,
    capacity: usize,
}

/// The notifier. Share it behind an `Arc`; run `run()` on a tokio runtime.
pub struct Notifier {
    queue: Mutex<VecDeque<NotifierAlert>>,
    wake: tokio::sync::Notify,
    stop: tokio::sync::Notify,
    drain_on_stop: std::sync::atomic::AtomicBool,
    sets: RwLock<Vec<AmSet>>,
    settings: RwLock<Settings>,
    pub metrics: NotifierMetrics,
}

impl Notifier {
    /// A notifier with `capacity` queued alerts at most.
    pub fn new(capacity: usize) -> Notifier {
        let metrics = NotifierMetrics::default();
        metrics
            .queue_capacity
            .store(capacity as u64, Ordering::Relaxed);
        Notifier {
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            stop: tokio::sync::Notify::new(),
            drain_on_stop: std::sync::atomic::AtomicBool::new(false),
            sets: RwLock::new(Vec::new()),
            settings: RwLock::new(Settings {
                external_labels: Labels::empty(),
                relabel: Vec::new(),
                capacity,
            }),
            metrics,
        }
    }

    /// Applies the `alerting` section and external labels.
    pub fn apply_config(&self, cfg: &Config) -> Result<(), NotifierError> {
        let mut sets = Vec::new();
        for (index, am) in cfg.alerting.alertmanagers.iter().enumerate() {
            if am.api_version != AlertmanagerApiVersion::V2 {
                return Err(NotifierError::Config {
                    index,
                    message: "only api_version v2 is supported".into(),
                });
            }
            let (client, auth) = build_client(&am.http_client, am.timeout.to_std())
                .map_err(|message| NotifierError::Config { index, message })?;
            sets.push(AmSet {
                cfg: am.clone(),
                client,
                auth,
                active: Vec::new(),
                dropped: Vec::new(),
                last_refresh: None,
            });
        }
        {
            let mut s = self.settings.write().unwrap_or_else(|e| e.into_inner());
            s.external_labels = cfg.global.external_labels();
            s.relabel = cfg.alerting.alert_relabel_configs.clone();
        }
        *self.sets.write().unwrap_or_else(|e| e.into_inner()) = sets;
        self.refresh_discovery(true);
        Ok(())
    }

    /// Re-resolves targets (static now, files when their refresh interval
    /// passed or `force`).
    pub fn refresh_discovery(&self, force: bool) {
        let mut sets = self.sets.write().unwrap_or_else(|e| e.into_inner());
        let mut total = 0;
        for s in sets.iter_mut() {
            let interval = s
                .cfg
                .file_sd_configs
                .iter()
                .map(|f| f.refresh_interval.to_std())
                .min()
                .unwrap_or(Duration::from_secs(300));
            if force || s.last_refresh.is_none_or(|t| t.elapsed() >= interval) {
                let (active, dropped) = resolve_targets(&s.cfg);
                s.active = active;
                s.dropped = dropped;
                s.last_refresh = Some(Instant::now());
            }
            total += s.active.len();
        }
        self.metrics
            .alertmanagers_discovered
            .store(total as u64, Ordering::Relaxed);
    }

    /// Active and dropped Alertmanager URLs (`/api/v1/alertmanagers`).
    pub fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        let sets = self.sets.read().unwrap_or_else(|e| e.into_inner());
        let mut active: Vec<String> = sets.iter().flat_map(|s| s.active.clone()).collect();
        let mut dropped: Vec<String> = sets.iter().flat_map(|s| s.dropped.clone()).collect();
        active.sort();
        active.dedup();
        dropped.sort();
        dropped.dedup();
        (active, dropped)
    }

    /// Queues alerts: external labels added, relabeled, oldest dropped
    /// when the queue is full (Prometheus's `Send`).
    pub fn send(&self, alerts: Vec<NotifierAlert>) {
        let (alerts, capacity) = {
            let s = self.settings.read().unwrap_or_else(|e| e.into_inner());
            (
                relabel_alerts(alerts, &s.external_labels, &s.relabel),
                s.capacity,
            )
        };
        if alerts.is_empty() {
            return;
        }
        let mut alerts = alerts;
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if alerts.len() > capacity {
            let d = alerts.len() - capacity;
            alerts.drain(..d);
            tracing::warn!(
                num_dropped = d,
                "Alert batch larger than queue capacity, dropping alerts"
            );
            self.metrics
                .dropped_total
                .fetch_add(d as u64, Ordering::Relaxed);
        }
        let over = (q.len() + alerts.len()).saturating_sub(capacity);
        if over > 0 {
            q.drain(..over);
            tracing::warn!(
                num_dropped = over,
                "Alert notification queue full, dropping alerts"
            );
            self.metrics
                .dropped_total
                .fetch_add(over as u64, Ordering::Relaxed);
        }
        q.extend(alerts);
        self.metrics
            .queue_length
            .store(q.len() as u64, Ordering::Relaxed);
        drop(q);
        self.wake.notify_one();
    }

    /// Alerts waiting to be sent.
    pub fn queue_len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The rule manager's notify function: converts rule alerts as
    /// Prometheus's `SendAlerts` (startsAt = firing time, endsAt =
    /// resolution time or validity end, generatorURL = table link).
    pub fn notify_fn(self: &Arc<Self>, external_url: &str) -> NotifyFn {
        let n = self.clone();
        let base = external_url.trim_end_matches('/').to_string();
        Arc::new(move |expr: &str, alerts: &[Alert]| {
            n.send(to_notifier_alerts(&base, expr, alerts));
        })
    }

    /// Stops `run`; with `drain` (`--alertmanager.drain-notification-queue-on-shutdown`)
    /// the queued alerts are sent first.
    pub fn stop(&self, drain: bool) {
        self.drain_on_stop.store(drain, Ordering::Relaxed);
        self.stop.notify_one();
    }

    /// Sends queued alerts until `stop`; drains in batches of 64.
    pub async fn run(self: Arc<Self>) {
        loop {
            while self.queue_len() > 0 {
                let batch: Vec<NotifierAlert> = {
                    let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                    let n = q.len().min(MAX_BATCH_SIZE);
                    let b = q.drain(..n).collect();
                    self.metrics
                        .queue_length
                        .store(q.len() as u64, Ordering::Relaxed);
                    b
                };
                let n = batch.len();
                if !self.send_all(batch).await {
                    self.metrics
                        .dropped_total
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            self.refresh_discovery(false);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.stop.notified() => {
                    if self.drain_on_stop.load(Ordering::Relaxed) {
                        self.drain().await;
                    }
                    return;
                }
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

    async fn drain(&self) {
        while self.queue_len() > 0 {
            let batch: Vec<NotifierAlert> = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                let n = q.len().min(MAX_BATCH_SIZE);
                q.drain(..n).collect()
            };
            let n = batch.len();
            if !self.send_all(batch).await {
                self.metrics
                    .dropped_total
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        self.metrics.queue_length.store(0, Ordering::Relaxed);
    }

    /// POSTs a batch to every Alertmanager; true if any accepted it.
    async fn send_all(&self, alerts: Vec<NotifierAlert>) -> bool {
        let jobs: Vec<_> = {
            let sets = self.sets.read().unwrap_or_else(|e| e.into_inner());
            sets.iter()
                .filter(|s| !s.active.is_empty())
                .filter_map(|s| {
                    let relabeled: Vec<NotifierAlert> = if s.cfg.alert_relabel_configs.is_empty() {
                        alerts.clone()
                    } else {
                        relabel_alerts(
                            alerts.clone(),
                            &Labels::empty(),
                            &s.cfg.alert_relabel_configs,
                        )
                    };
                    if relabeled.is_empty() {
                        return None;
                    }
                    let body = encode_v2(&relabeled);
                    Some(
                        s.active
                            .iter()
                            .map(|url| {
                                (
                                    s.client.clone(),
                                    s.auth.clone(),
                                    url.clone(),
                                    body.clone(),
                                    relabeled.len(),
                                )
                            })
                            .collect::<Vec<_>>(),
                    )
                })
                .flatten()
                .collect()
        };
        if jobs.is_empty() {
            return false;
        }
        let mut handles = Vec::new();
        for (client, auth, url, body, count) in jobs {
            let m = self.metrics.am(&url);
            handles.push(tokio::spawn(async move {
                let begin = Instant::now();
                let res = post(&client, &auth, &url, body).await;
                let ok = match res {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(alertmanager = %url, count, err = %e, "Error sending alert");
                        m.errors_total.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                };
                let secs = begin.elapsed().as_secs_f64();
                let _ = m.latency_seconds_sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some((f64::from_bits(b) + secs).to_bits())
                });
                m.latency_seconds_count.fetch_add(1, Ordering::Relaxed);
                m.sent_total.fetch_add(count as u64, Ordering::Relaxed);
                ok
            }));
        }
        let mut any = false;
        for h in handles {
            if let Ok(true) = h.await {
                any = true;
            }
        }
        any
    }
}

async fn post(
    client: &reqwest::Client,
    auth: &Auth,
    url: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("Vigil/", env!("CARGO_PKG_VERSION")))
        .body(body);
    match auth {
        Auth::None => {}
        Auth::Basic(u, p) => req = req.basic_auth(u, Some(p)),
        Auth::Header(h) => req = req.header("Authorization", h.as_str()),
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("bad response status {status}"));
    }
    Ok(())
}

/// Rule alerts as notifier alerts (Prometheus's `SendAlerts`).
pub fn to_notifier_alerts(external_url: &str, expr: &str, alerts: &[Alert]) -> Vec<NotifierAlert> {
    alerts
        .iter()
        .map(|a| NotifierAlert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.fired_at,
            ends_at: a.resolved_at.or(a.valid_until),
            generator_url: format!("{external_url}{}", table_link(expr)),
        })
        .collect()
}

/// External labels (where absent) then `alert_relabel_configs`.
pub fn relabel_alerts(
    alerts: Vec<NotifierAlert>,
    external_labels: &Labels,
    cfgs: &[RelabelConfig],
) -> Vec<NotifierAlert> {
    alerts
        .into_iter()
        .filter_map(|mut a| {
            let mut b = a.labels.builder();
            for l in external_labels {
                if b.get(&l.name).is_none() {
                    b.set(l.name.clone(), l.value.clone());
                }
            }
            let lset = b.build();
            let lset = relabel::process_owned(lset, cfgs)?;
            if lset.is_empty() {
                return None;
            }
            a.labels = lset;
            Some(a)
        })
        .collect()
}

/// The Alertmanager v2 `PostableAlerts` JSON.
pub fn encode_v2(alerts: &[NotifierAlert]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            let labels: serde_json::Map<String, serde_json::Value> = a
                .labels
                .iter()
                .map(|l| (l.name.clone(), serde_json::Value::String(l.value.clone())))
                .collect();
            let mut o = serde_json::Map::new();
            o.insert("labels".into(), serde_json::Value::Object(labels));
            if !a.annotations.is_empty() {
                let ann: serde_json::Map<String, serde_json::Value> = a
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                o.insert("annotations".into(), serde_json::Value::Object(ann));
            }
            if let Some(t) = a.starts_at {
                o.insert("startsAt".into(), rfc3339_millis(t).into());
            }
            if let Some(t) = a.ends_at {
                o.insert("endsAt".into(), rfc3339_millis(t).into());
            }
            if !a.generator_url.is_empty() {
                o.insert("generatorURL".into(), a.generator_url.clone().into());
            }
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::to_vec(&items).unwrap_or_default()
}

fn read_secret_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("unable to read {path}: {e}"))
}

fn build_client(
    h: &HttpClientConfig,
    timeout: Duration,
) -> Result<(reqwest::Client, Auth), String> {
    let mut b = reqwest::Client::builder().timeout(timeout);
    if !h.follow_redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    if h.tls_config.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    let ca = if !h.tls_config.ca_file.is_empty() {
        Some(
            std::fs::read(&h.tls_config.ca_file)
                .map_err(|e| format!("unable to read CA file {}: {e}", h.tls_config.ca_file))?,
        )
    } else if !h.tls_config.ca.is_empty() {
        Some(h.tls_config.ca.as_bytes().to_vec())
    } else {
        None
    };
    if let Some(pem) = ca {
        for c in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())? {
            b = b.add_root_certificate(c);
        }
    }
    let auth = if let Some(ba) = &h.basic_auth {
        let user = if ba.username_file.is_empty() {
            ba.username.clone()
        } else {
            read_secret_file(&ba.username_file)?
        };
        let pass = if ba.password_file.is_empty() {
            ba.password.expose().to_string()
        } else {
            read_secret_file(&ba.password_file)?
        };
        Auth::Basic(user, pass)
    } else if let Some(a) = &h.authorization {
        let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
        let cred = if a.credentials_file.is_empty() {
            a.credentials.expose().to_string()
        } else {
            read_secret_file(&a.credentials_file)?
        };
        Auth::Header(format!("{kind} {cred}"))
    } else if !h.bearer_token.is_empty() {
        Auth::Header(format!("Bearer {}", h.bearer_token.expose()))
    } else if !h.bearer_token_file.is_empty() {
        Auth::Header(format!(
            "Bearer {}",
            read_secret_file(&h.bearer_token_file)?
        ))
    } else {
        Auth::None
    };
    let client = b.build().map_err(|e| e.to_string())?;
    Ok((client, auth))
}

#[derive(Deserialize)]
struct FileTargetGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn read_file_sd(path: &Path) -> Vec<FileTargetGroup> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(file = %path.display(), err = %e, "Error reading file_sd file");
            return Vec::new();
        }
    };
    let is_json = path.extension().is_some_and(|e| e == "json");
    let r = if is_json {
        serde_json::from_str::<Vec<FileTargetGroup>>(&text).map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::from_str::<Vec<FileTargetGroup>>(&text).map_err(|e| e.to_string())
    };
    r.unwrap_or_else(|e| {
        tracing::error!(file = %path.display(), err = %e, "Error parsing file_sd file");
        Vec::new()
    })
}

/// The `__alerts_path__` of an Alertmanager entry.
fn post_path(prefix: &str) -> String {
    format!("{}/api/v2/alerts", prefix.trim_end_matches('/'))
}

/// Active and dropped Alertmanager URLs of one `alertmanagers` entry.
fn resolve_targets(cfg: &AlertmanagerConfig) -> (Vec<String>, Vec<String>) {
    let mut groups: Vec<(Vec<String>, BTreeMap<String, String>)> = cfg
        .static_configs
        .iter()
        .map(|s| (s.targets.clone(), s.labels.clone()))
        .collect();
    for f in &cfg.file_sd_configs {
        for pat in &f.files {
            for p in vigil_config::glob(pat) {
                groups.extend(read_file_sd(&p).into_iter().map(|g| (g.targets, g.labels)));
            }
        }
    }
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for (targets, glabels) in groups {
        for t in targets {
            let mut pairs: Vec<(String, String)> = vec![
                ("__address__".into(), t.clone()),
                ("__scheme__".into(), cfg.scheme.clone()),
                ("__alerts_path__".into(), post_path(&cfg.path_prefix)),
            ];
            for (k, v) in &glabels {
                if k != "__address__" {
                    pairs.push((k.clone(), v.clone()));
                }
            }
            let lset = Labels::from_pairs(&pairs);
            let url_of = |l: &Labels| {
                format!(
                    "{}://{}{}",
                    l.get("__scheme__").unwrap_or("http"),
                    l.get("__address__").unwrap_or(""),
                    l.get("__alerts_path__").unwrap_or("")
                )
            };
            match relabel::process(&lset, &cfg.relabel_configs) {
                Some(l) if l.get("__address__").is_some_and(|a| !a.contains('/')) => {
                    let u = url_of(&l);
                    if !active.contains(&u) {
                        active.push(u);
                    }
                }
                Some(l) => {
                    tracing::error!(
                        address = l.get("__address__").unwrap_or(""),
                        "invalid Alertmanager address"
                    );
                }
                None => dropped.push(url_of(&lset)),
            }
        }
    }
    (active, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(pairs: &[(&str, &str)]) -> NotifierAlert {
        NotifierAlert {
            labels: Labels::from_pairs(pairs),
            annotations: vec![("summary".into(), "s".into())],
            starts_at: Some(1_435_065_584_128),
            ends_at: Some(1_435_065_824_128),
            generator_url: "http://p:9090/graph?g0.expr=up&g0.tab=1".into(),
        }
    }

    #[test]
    fn v2_payload_shape() {
        let body = encode_v2(&[alert(&[("alertname", "A"), ("job", "j")])]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{
                "labels": {"alertname": "A", "job": "j"},
                "annotations": {"summary": "s"},
                "startsAt": "2015-06-23T13:19:44.128Z",
                "endsAt": "2015-06-23T13:23:44.128Z",
                "generatorURL": "http://p:9090/graph?g0.expr=up&g0.tab=1"
            }])
        );
    }

    #[test]
    fn external_labels_fill_only_missing_and_relabel_drops() {
        let ext = Labels::from_pairs(&[("cluster", "eu"), ("job", "ext")]);
        let cfg = RelabelConfig::new(relabel::RelabelSpec {
            source_labels: Some(vec!["severity".into()]),
            regex: Some("info".into()),
            action: Some(relabel::Action::Drop),
            ..Default::default()
        });
        let cfgs = match cfg {
            Ok(c) => vec![c],
            Err(e) => panic!("{e}"),
        };
        let out = relabel_alerts(
            vec![
                alert(&[("alertname", "A"), ("job", "j")]),
                alert(&[("alertname", "B"), ("severity", "info")]),
            ],
            &ext,
            &cfgs,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].labels,
            Labels::from_pairs(&[("alertname", "A"), ("cluster", "eu"), ("job", "j")])
        );
    }

    #[test]
    fn queue_drops_oldest_when_full() {
        let n = Notifier::new(3);
        n.send(
            (0..2)
                .map(|i| alert(&[("alertname", &format!("a{i}"))]))
                .collect(),
        );
        n.send(
            (2..4)
                .map(|i| alert(&[("alertname", &format!("a{i}"))]))
                .collect(),
        );
        assert_eq!(n.queue_len(), 3);
        assert_eq!(n.metrics.dropped_total.load(Ordering::Relaxed), 1);
        let q = n.queue.lock().unwrap();
        assert_eq!(q[0].labels.get("alertname"), Some("a1"));
        drop(q);
        n.send(
            (0..5)
                .map(|i| alert(&[("alertname", &format!("b{i}"))]))
                .collect(),
        );
        assert_eq!(n.queue_len(), 3);
        assert_eq!(n.metrics.dropped_total.load(Ordering::Relaxed), 1 + 2 + 3);
    }

    #[test]
    fn targets_resolved_with_relabeling_and_file_sd() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("am.json");
        std::fs::write(
            &f,
            r#"[{"targets": ["am2:9093", "drop:9093"], "labels": {"dc": "x"}}]"#,
        )
        .unwrap();
        let yaml = format!(
            "alerting:\n  alertmanagers:\n  - scheme: https\n    path_prefix: /am/\n    static_configs:\n    - targets: ['am1:9093']\n    file_sd_configs:\n    - files: ['{}']\n    relabel_configs:\n    - source_labels: [__address__]\n      regex: 'drop:.*'\n      action: drop\n",
            f.display()
        );
        let cfg = Config::from_yaml(&yaml, dir.path().join("p.yml")).unwrap();
        let (active, dropped) = resolve_targets(&cfg.alerting.alertmanagers[0]);
        assert_eq!(
            active,
            vec![
                "https://am1:9093/am/api/v2/alerts",
                "https://am2:9093/am/api/v2/alerts"
            ]
        );
        assert_eq!(dropped, vec!["https://drop:9093/am/api/v2/alerts"]);
    }

    #[test]
    fn rule_alerts_convert_like_send_alerts() {
        let a = Alert {
            state: crate::rule::AlertState::Firing,
            labels: Labels::from_pairs(&[("alertname", "A")]),
            annotations: vec![],
            value: 1.0,
            active_at: 0,
            fired_at: Some(60_000),
            resolved_at: None,
            last_sent_at: Some(120_000),
            valid_until: Some(360_000),
            keep_firing_since: None,
        };
        let mut resolved = a.clone();
        resolved.resolved_at = Some(180_000);
        let out = to_notifier_alerts("http://vigil:9090", "up == 0", &[a, resolved]);
        assert_eq!(out[0].starts_at, Some(60_000));
        assert_eq!(out[0].ends_at, Some(360_000));
        assert_eq!(out[1].ends_at, Some(180_000));
        assert_eq!(
            out[0].generator_url,
            "http://vigil:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
        );
    }
}
