//! The rule manager: loads groups from the configured rule files, runs
//! each on its own thread at its interval and stable offset, skips and
//! counts overrun iterations, restores `for` state after start, and on
//! reload keeps unchanged groups running and carries state into changed
//! ones.
//!
//! It holds no storage of its own: it reads through the engine and a
//! `Queryable`, writes through an `Appendable`, and hands alerts to a
//! `NotifyFn` (normally the notifier).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigil_model::storage::{Appendable, Queryable};
use vigil_model::Labels;
use vigil_promql::engine::Engine;

use crate::group::{alert_status, now_ms, Group, GroupMetrics, NotifyFn};
use crate::rule::{AlertState, EvalEnv, Rule};
use crate::rulefmt::{load_rule_file, GroupDef, RuleFileError};
use crate::status::{AlertStatus, RuleGroupStatus};

/// Everything the manager needs from the rest of the server.
#[derive(Clone)]
pub struct RuleManagerOptions {
    pub engine: Arc<Engine>,
    pub queryable: Arc<dyn Queryable>,
    pub appendable: Arc<dyn Appendable>,
    /// Receives alerts to send (expression, alerts); `None` sends nothing.
    pub notify: Option<NotifyFn>,
    /// `--web.external-url`.
    pub external_url: String,
    /// `--rules.alert.resend-delay` (default 1m).
    pub resend_delay: Duration,
    /// `--rules.alert.for-outage-tolerance` (default 1h).
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period` (default 10m).
    pub for_grace_period: Duration,
}

/// The configuration-dependent inputs of `update`.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSettings {
    /// `global.evaluation_interval`.
    pub evaluation_interval: Duration,
    /// `global.rule_query_offset`.
    pub query_offset: Duration,
    pub external_labels: Labels,
}

struct GroupHandle {
    key: String,
    def: GroupDef,
    settings: RuleSettings,
    status: Arc<Mutex<Option<GroupSnapshot>>>,
    metrics: Arc<GroupMetrics>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Group>,
}

/// What the API reads: refreshed after every evaluation.
#[derive(Clone)]
struct GroupSnapshot {
    status: RuleGroupStatus,
    alerts: Vec<AlertStatus>,
}

struct Inner {
    groups: Vec<GroupHandle>,
    restored: bool,
}

/// Runs rule groups. Cheap to share behind an `Arc`.
pub struct RuleManager {
    opts: Arc<RuleManagerOptions>,
    inner: Mutex<Inner>,
    /// Set on `stop`: pending stale-marking threads give up.
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl RuleManager {
    pub fn new(opts: RuleManagerOptions) -> Self {
        RuleManager {
            opts: Arc::new(opts),
            inner: Mutex::new(Inner {
                groups: Vec::new(),
                restored: false,
            }),
            done: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Loads `config.rule_files()` with the config's global settings.
    pub fn apply_config(&self, cfg: &vigil_config::Config) -> Result<(), Vec<RuleFileError>> {
        let settings = RuleSettings {
            evaluation_interval: cfg.global.evaluation_interval.to_std(),
            query_offset: cfg.global.rule_query_offset.to_std(),
            external_labels: cfg.global.external_labels(),
        };
        self.update(&cfg.rule_files(), &settings)
    }

    /// Loads `files` and replaces the running groups. On any load error
    /// nothing changes and every error is returned.
    pub fn update(
        &self,
        files: &[PathBuf],
        settings: &RuleSettings,
    ) -> Result<(), Vec<RuleFileError>> {
        let mut defs = Vec::new();
        let mut errors = Vec::new();
        for f in files {
            match load_rule_file(f) {
                Ok(rf) => defs.extend(rf.groups),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let should_restore = !inner.restored;
        let mut old: Vec<GroupHandle> = std::mem::take(&mut inner.groups);
        let mut next = Vec::with_capacity(defs.len());
        for def in defs {
            let key = format!("{};{}", def.file, def.name);
            let prev = old
                .iter()
                .position(|h| h.key == key)
                .map(|i| old.swap_remove(i));
            if let Some(h) = prev {
                if h.def.same_definition(&def) && h.settings == *settings {
                    next.push(h);
                    continue;
                }
                let mut g = self.new_group(&def, settings, should_restore);
                let og = stop_group(h);
                if let Some(og) = og {
                    g.copy_state(&og);
                }
                next.extend(self.start(g, def, settings.clone()));
            } else {
                let g = self.new_group(&def, settings, should_restore);
                next.extend(self.start(g, def, settings.clone()));
            }
        }
        for h in old {
            if let Some(g) = stop_group(h) {
                self.mark_stale_later(g);
            }
        }
        inner.groups = next;
        inner.restored = true;
        Ok(())
    }

    /// Stale markers for a removed group's series at the time it stopped,
    /// written two intervals later so a renamed group can take its series
    /// over first (their newer samples make the markers out of order).
    fn mark_stale_later(&self, mut g: Group) {
        let stopped_at = now_ms();
        let wait = Duration::from_millis((2 * g.interval_ms).max(0) as u64);
        let appendable = self.opts.appendable.clone();
        let done = self.done.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("rules-stale-{}", g.name))
            .spawn(move || {
                let deadline = Instant::now() + wait;
                while Instant::now() < deadline {
                    if done.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50).min(wait));
                }
                g.mark_all_stale(appendable.as_ref(), stopped_at);
            });
        if let Err(e) = spawned {
            tracing::error!(err = %e, "cannot start stale-marking thread");
        }
    }

    fn new_group(&self, def: &GroupDef, s: &RuleSettings, should_restore: bool) -> Group {
        Group::new(
            def,
            s.evaluation_interval.as_millis() as i64,
            s.query_offset.as_millis() as i64,
            should_restore,
        )
    }

    fn start(&self, g: Group, def: GroupDef, settings: RuleSettings) -> Option<GroupHandle> {
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(Some(GroupSnapshot {
            status: g.status(),
            alerts: alerts_of(&g),
        })));
        let metrics = g.metrics.clone();
        let key = g.key();
        let opts = self.opts.clone();
        let st = status.clone();
        let labels = settings.external_labels.clone();
        let thread = std::thread::Builder::new()
            .name(format!("rules-{}", g.name))
            .spawn(move || run_group(g, opts, labels, rx, st));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(group = %key, err = %e, "cannot start rule group thread");
                return None;
            }
        };
        Some(GroupHandle {
            key,
            def,
            settings,
            status,
            metrics,
            stop: tx,
            thread,
        })
    }

    /// Stops every group (no stale markers: the server is shutting down).
    pub fn stop(&self) {
        self.done.store(true, Ordering::Relaxed);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for h in inner.groups.drain(..) {
            stop_group(h);
        }
    }

    /// The groups as `/api/v1/rules` shows them, sorted by file then name.
    pub fn rule_groups(&self) -> Vec<RuleGroupStatus> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<RuleGroupStatus> = inner
            .groups
            .iter()
            .filter_map(|h| {
                h.status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(|s| s.status.clone())
            })
            .collect();
        out.sort_by(|a, b| (&a.file, &a.name).cmp(&(&b.file, &b.name)));
        out
    }

    /// Pending and firing alerts of every rule (`/api/v1/alerts`).
    pub fn alerts(&self) -> Vec<AlertStatus> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .groups
            .iter()
            .flat_map(|h| {
                h.status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(|s| s.alerts.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Per-group metrics keyed by `rule_group` (`<file>;<name>`).
    pub fn group_metrics(&self) -> Vec<(String, Arc<GroupMetrics>)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .groups
            .iter()
            .map(|h| (h.key.clone(), h.metrics.clone()))
            .collect()
    }
}

impl Drop for RuleManager {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stop_group(h: GroupHandle) -> Option<Group> {
    let _ = h.stop.send(());
    match h.thread.join() {
        Ok(g) => Some(g),
        Err(_) => {
            tracing::error!(group = %h.key, "rule group thread panicked");
            None
        }
    }
}

fn alerts_of(g: &Group) -> Vec<AlertStatus> {
    g.rules
        .iter()
        .filter_map(|r| match r {
            Rule::Alerting(a) => Some(a),
            Rule::Recording(_) => None,
        })
        .flat_map(|a| {
            a.active
                .values()
                .filter(|x| x.state != AlertState::Inactive)
                .map(alert_status)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sleeps until wall time `t` (ms); false if told to stop meanwhile.
fn wait_until(stop: &mpsc::Receiver<()>, t: i64) -> bool {
    loop {
        let now = now_ms();
        if now >= t {
            return !matches!(
                stop.try_recv(),
                Ok(()) | Err(mpsc::TryRecvError::Disconnected)
            );
        }
        match stop.recv_timeout(Duration::from_millis((t - now) as u64)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => continue,
        }
    }
}

fn run_group(
    mut g: Group,
    opts: Arc<RuleManagerOptions>,
    external_labels: Labels,
    stop: mpsc::Receiver<()>,
    status: Arc<Mutex<Option<GroupSnapshot>>>,
) -> Group {
    let interval = g.interval_ms.max(1);
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let mut eval_ts = g.eval_timestamp(now_ns) + interval;
    if !wait_until(&stop, eval_ts) {
        return g;
    }
    let env_parts = (opts.engine.clone(), opts.queryable.clone());
    let iter = |g: &mut Group, ts: i64| {
        let env = EvalEnv {
            engine: &env_parts.0,
            queryable: env_parts.1.as_ref(),
            external_url: &opts.external_url,
            external_labels: &external_labels,
        };
        g.metrics.iterations_total.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let wall = SystemTime::now();
        g.eval(
            &env,
            opts.appendable.as_ref(),
            ts,
            opts.resend_delay.as_millis() as i64,
            opts.notify.as_ref(),
        );
        g.last_duration = started.elapsed();
        g.last_evaluation = Some(wall);
        g.last_eval_ts = Some(ts);
        g.metrics
            .last_duration_seconds
            .store(g.last_duration.as_secs_f64().to_bits(), Ordering::Relaxed);
        GroupMetrics::add_f64(
            &g.metrics.group_duration_seconds_sum,
            g.last_duration.as_secs_f64(),
        );
        g.metrics
            .group_duration_seconds_count
            .fetch_add(1, Ordering::Relaxed);
        g.metrics
            .last_evaluation_timestamp_seconds
            .store((ts as f64 / 1000.0).to_bits(), Ordering::Relaxed);
        // Restore after the second evaluation, as Prometheus: the first
        // may run before enough data was scraped and recorded.
        if g.should_restore && g.metrics.iterations_total.load(Ordering::Relaxed) >= 2 {
            g.should_restore = false;
            g.restore_for_state(
                &env,
                now_ms(),
                opts.outage_tolerance.as_millis() as i64,
                opts.for_grace_period.as_millis() as i64,
            );
        }
        *status.lock().unwrap_or_else(|e| e.into_inner()) = Some(GroupSnapshot {
            status: g.status(),
            alerts: alerts_of(g),
        });
    };
    iter(&mut g, eval_ts);
    loop {
        if !wait_until(&stop, eval_ts + interval) {
            return g;
        }
        let missed = (now_ms() - eval_ts) / interval - 1;
        if missed > 0 {
            g.metrics
                .iterations_missed_total
                .fetch_add(missed as u64, Ordering::Relaxed);
            g.metrics
                .iterations_total
                .fetch_add(missed as u64, Ordering::Relaxed);
        }
        eval_ts += (missed.max(0) + 1) * interval;
        iter(&mut g, eval_ts);
    }
}
