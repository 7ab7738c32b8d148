//! Scrape pools: one per job, one tokio task per target.
//!
//! A pool turns its discovered target groups into targets (relabeling), diffs
//! them against the running loops by identity hash, starts loops for new
//! targets, stops removed ones (which write staleness markers after two
//! intervals, as Prometheus's `endOfRunStaleness`), and pushes config
//! changes into unchanged loops so their caches and staleness state survive.
//! Each loop scrapes at a stable offset within its interval derived from the
//! target's hash, so a pool's load spreads evenly.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vigil_config::ScrapeConfig;
use vigil_model::storage::Appendable;
use vigil_model::Labels;

use crate::cache::MetricMetadata;
use crate::client::TargetClient;
use crate::expfmt::Format;
use crate::scrape_loop::{LoopOptions, ScrapeError, ScrapeLoop, ScrapeOutcome};
use crate::target::{targets_from_group, Target, TargetGroup};

/// Health of a target's last scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    Unknown,
    Up,
    Down,
}

impl TargetHealth {
    /// `unknown`, `up` or `down`, as the targets API reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// An active target as the targets API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTarget {
    /// Labels before relabeling (including `__meta_*`).
    pub discovered_labels: Labels,
    /// Labels after relabeling, without `__` ones.
    pub labels: Labels,
    pub scrape_pool: String,
    pub scrape_url: String,
    /// Same as `scrape_url` (Prometheus substitutes its hostname for
    /// localhost here; Vigil does not).
    pub global_url: String,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    /// Seconds.
    pub last_scrape_duration: f64,
    pub health: TargetHealth,
    /// Prometheus duration strings (`15s`).
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

/// A target relabeling dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
    pub scrape_pool: String,
}

/// One target's metric metadata (for `/api/v1/targets/metadata`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetMetadata {
    /// The target's labels (no `__` ones).
    pub target: Labels,
    pub metadata: Arc<Vec<MetricMetadata>>,
}

/// What the loop task shares with API readers.
#[derive(Debug, Clone)]
struct Status {
    health: TargetHealth,
    last_error: String,
    last_scrape: Option<SystemTime>,
    last_duration: f64,
    interval: vigil_config::Duration,
    timeout: vigil_config::Duration,
    discovered: Labels,
    metadata: Arc<Vec<MetricMetadata>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder leaves consistent data here; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Control {
    /// Stop scraping; `stale` writes end-of-run staleness markers.
    Stop { stale: bool },
    /// New options, client or schedule (config reload).
    Update {
        opts: Arc<LoopOptions>,
        client: Box<TargetClient>,
        interval: Duration,
        timeout: Duration,
    },
    /// Fail every scrape with this error instead of scraping (or stop).
    Forced(Option<String>),
}

/// Delay to the target's slot: `hash mod interval` past the last multiple
/// of the interval in wall-clock time (Prometheus's `Target.offset`).
pub(crate) fn slot_delay(hash: u64, interval: Duration, now: SystemTime) -> Duration {
    let iv = (interval.as_nanos() as u64).max(1);
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let base = iv - now % iv;
    let mut next = base + hash % iv;
    if next > iv {
        next -= iv;
    }
    Duration::from_nanos(next)
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

enum Wake {
    Scrape,
    Exit,
    StopWithStaleness,
}

struct LoopTask {
    sl: ScrapeLoop,
    url: String,
    client: TargetClient,
    storage: Arc<dyn Appendable>,
    interval: Duration,
    timeout: Duration,
    hash: u64,
    status: Arc<Mutex<Status>>,
    ctl: mpsc::UnboundedReceiver<Control>,
    shutdown: watch::Receiver<bool>,
    forced: Option<String>,
    scraped: bool,
}

/// Body buffers shared by all scrape loops. A loop holds one only while it
/// fetches and ingests, so the process keeps about as many as scrapes run at
/// once, not one exposition-sized buffer per target (50 targets of 2,000
/// series kept ~15 MB that way, 150 B per series).
mod body_buffers {
    use std::sync::Mutex;

    /// Kept at most; more are freed when returned.
    const MAX_POOLED: usize = 8;

    static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    pub(super) fn take() -> Vec<u8> {
        super::lock(&POOL).pop().unwrap_or_default()
    }

    pub(super) fn give_back(mut buf: Vec<u8>) {
        buf.clear();
        let mut pool = super::lock(&POOL);
        if pool.len() < MAX_POOLED {
            pool.push(buf);
        }
    }
}

impl LoopTask {
    async fn run(mut self) {
        let mut next = Instant::now() + slot_delay(self.hash, self.interval, SystemTime::now());
        let mut aligned: Option<SystemTime> = None;
        loop {
            match self.wait(&mut next).await {
                Wake::Scrape => {}
                Wake::Exit => return,
                Wake::StopWithStaleness => return self.end_of_run_staleness(next).await,
            }
            let wall = SystemTime::now();
            let ts = millis(self.align(&mut aligned, wall));
            let started = std::time::Instant::now();
            let mut buf = body_buffers::take();
            let fetched = match &self.forced {
                Some(e) => Err(ScrapeError::Forced(e.clone())),
                None => tokio::select! {
                    r = self.client.fetch(&self.url, self.timeout, &mut buf) => r,
                    _ = self.shutdown.changed() => return,
                },
            };
            let scraped = fetched.map(|f| (&buf[..], Format::from_content_type(&f.content_type)));
            let outcome = self.sl.ingest(self.storage.as_ref(), scraped, ts, started);
            body_buffers::give_back(buf);
            self.record(outcome, wall, started.elapsed().as_secs_f64());
            self.scraped = true;
            next += self.interval;
            let now = Instant::now();
            while next <= now {
                next += self.interval;
            }
        }
    }

    /// Prometheus aligns scrape timestamps to the schedule when within
    /// min(2ms, 1% of the interval), for better compression.
    fn align(&self, aligned: &mut Option<SystemTime>, now: SystemTime) -> SystemTime {
        let Some(a) = aligned else {
            *aligned = Some(now);
            return now;
        };
        let tolerance = (self.interval / 100).min(Duration::from_millis(2));
        while now.duration_since(*a).unwrap_or_default() >= self.interval {
            *a += self.interval;
        }
        if now.duration_since(*a).unwrap_or_default() <= tolerance {
            *a
        } else {
            now
        }
    }

    fn record(&mut self, outcome: ScrapeOutcome, wall: SystemTime, duration: f64) {
        let md = self.sl.take_metadata();
        let mut s = lock(&self.status);
        s.health = if outcome.error.is_none() {
            TargetHealth::Up
        } else {
            TargetHealth::Down
        };
        if let Some(e) = &outcome.error {
            tracing::debug!(target = %self.url, err = %e, "Scrape failed");
        }
        s.last_error = outcome.error.map(|e| e.to_string()).unwrap_or_default();
        s.last_scrape = Some(wall);
        s.last_duration = duration;
        if let Some(md) = md {
            s.metadata = md;
        }
    }

    /// Sleeps until `next`, handling control messages meanwhile.
    async fn wait(&mut self, next: &mut Instant) -> Wake {
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(*next) => return Wake::Scrape,
                c = self.ctl.recv() => match c {
                    None => return Wake::Exit,
                    Some(Control::Stop { stale }) => {
                        return if stale && self.scraped { Wake::StopWithStaleness } else { Wake::Exit };
                    }
                    Some(Control::Update { opts, client, interval, timeout }) => {
                        self.sl.set_options(opts);
                        self.client = *client;
                        self.timeout = timeout;
                        if interval != self.interval {
                            self.interval = interval;
                            *next = Instant::now() + slot_delay(self.hash, interval, SystemTime::now());
                            let mut s = lock(&self.status);
                            s.interval = vigil_config::Duration::from_millis(interval.as_millis() as u64);
                        }
                        let mut s = lock(&self.status);
                        s.timeout = vigil_config::Duration::from_millis(timeout.as_millis() as u64);
                    }
                    Some(Control::Forced(e)) => self.forced = e,
                },
                _ = self.shutdown.changed() => return Wake::Exit,
            }
        }
    }

    /// The target went away: wait until just past where two more scrapes
    /// would have happened (a target that reappears elsewhere has written
    /// newer samples by then, which makes these markers out of order and
    /// harmless), then mark everything stale at the first missed slot.
    async fn end_of_run_staleness(mut self, next: Instant) {
        let stale_at;
        tokio::select! {
            _ = tokio::time::sleep_until(next) => stale_at = SystemTime::now(),
            _ = self.shutdown.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next + self.interval + self.interval / 10) => {}
            _ = self.shutdown.changed() => return,
        }
        let ts = millis(stale_at);
        let mut app = self.storage.appender();
        let res = self
            .sl
            .append_empty(app.as_mut(), ts, false)
            .and_then(|()| self.sl.report_stale(app.as_mut(), ts));
        match res {
            Ok(()) => {
                if let Err(e) = app.commit() {
                    tracing::warn!(target = %self.url, err = %e, "Stale commit failed");
                }
            }
            Err(e) => {
                tracing::warn!(target = %self.url, err = %e, "Stale append failed");
                let _ = app.rollback();
            }
        }
    }
}

struct Active {
    target: Target,
    url: String,
    status: Arc<Mutex<Status>>,
    ctl: mpsc::UnboundedSender<Control>,
    join: JoinHandle<()>,
}

/// Context a pool needs to start loops.
#[derive(Clone)]
pub(crate) struct PoolEnv {
    pub storage: Arc<dyn Appendable>,
    pub runtime: Handle,
    pub shutdown: watch::Receiver<bool>,
    pub offset_seed: u64,
}

pub(crate) struct ScrapePool {
    job: String,
    cfg: Arc<ScrapeConfig>,
    client: TargetClient,
    opts: Arc<LoopOptions>,
    env: PoolEnv,
    /// Current groups by (provider, source).
    groups: BTreeMap<(String, String), TargetGroup>,
    providers: HashSet<String>,
    active: HashMap<u64, Active>,
    dropped: Vec<Target>,
    dropped_total: usize,
    limit_error: Option<String>,
    /// Loops stopped but possibly still writing staleness markers.
    finishing: Vec<JoinHandle<()>>,
}

impl ScrapePool {
    pub fn new(
        cfg: Arc<ScrapeConfig>,
        client: TargetClient,
        opts: Arc<LoopOptions>,
        env: PoolEnv,
    ) -> Self {
        ScrapePool {
            job: cfg.job_name.clone(),
            cfg,
            client,
            opts,
            env,
            groups: BTreeMap::new(),
            providers: HashSet::new(),
            active: HashMap::new(),
            dropped: Vec::new(),
            dropped_total: 0,
            limit_error: None,
            finishing: Vec::new(),
        }
    }

    pub fn config(&self) -> &ScrapeConfig {
        &self.cfg
    }

    /// Replaces every provider's groups at once (discovery (re)started).
    pub fn set_providers(&mut self, groups: BTreeMap<String, Vec<TargetGroup>>) {
        self.groups.clear();
        self.providers = groups.keys().cloned().collect();
        for (provider, gs) in groups {
            for g in gs {
                if !g.targets.is_empty() {
                    self.groups.insert((provider.clone(), g.source.clone()), g);
                }
            }
        }
        self.sync(false);
    }

    /// An update from one provider: groups replace the ones with the same
    /// source; an empty group removes its source.
    pub fn update_groups(&mut self, provider: &str, groups: Vec<TargetGroup>) {
        if !self.providers.contains(provider) {
            // A provider stopped by a reload delivering late.
            return;
        }
        for g in groups {
            let key = (provider.to_string(), g.source.clone());
            if g.targets.is_empty() {
                self.groups.remove(&key);
            } else {
                self.groups.insert(key, g);
            }
        }
        self.sync(false);
    }

    /// A new config for the job: unchanged targets keep their loops (and
    /// caches), which pick up the new options.
    pub fn reload(&mut self, cfg: Arc<ScrapeConfig>, client: TargetClient, opts: Arc<LoopOptions>) {
        self.cfg = cfg;
        self.client = client;
        self.opts = opts;
        self.sync(true);
    }

    fn sync(&mut self, reconfigure: bool) {
        let mut wanted: Vec<(u64, Target)> = Vec::new();
        let mut seen = HashSet::new();
        let mut dropped = Vec::new();
        for g in self.groups.values() {
            let (targets, failures) = targets_from_group(g, &self.cfg);
            for f in failures {
                tracing::error!(scrape_pool = %self.job, err = %f, "Creating target failed");
            }
            for t in targets {
                if t.is_dropped() {
                    dropped.push(t);
                    continue;
                }
                let h = t.hash();
                if seen.insert(h) {
                    wanted.push((h, t));
                }
            }
        }
        let removed: Vec<u64> = self
            .active
            .keys()
            .filter(|h| !seen.contains(h))
            .copied()
            .collect();
        for h in removed {
            if let Some(a) = self.active.remove(&h) {
                let _ = a.ctl.send(Control::Stop { stale: true });
                self.finishing.push(a.join);
            }
        }
        self.finishing.retain(|j| !j.is_finished());
        let limit = self.cfg.target_limit;
        let limit_error = (limit > 0 && wanted.len() as u64 > limit).then(|| {
            format!(
                "target_limit exceeded (number of targets: {}, limit: {limit})",
                wanted.len()
            )
        });
        let forced_changed = limit_error != self.limit_error;
        self.limit_error = limit_error;
        for (h, t) in wanted {
            let (interval, timeout) = self.schedule(&t);
            match self.active.get_mut(&h) {
                Some(a) => {
                    lock(&a.status).discovered = t.discovered_labels().clone();
                    if reconfigure {
                        let _ = a.ctl.send(Control::Update {
                            opts: self.opts.clone(),
                            client: Box::new(self.client.for_target(&a.url)),
                            interval,
                            timeout,
                        });
                    }
                    if forced_changed {
                        let _ = a.ctl.send(Control::Forced(self.limit_error.clone()));
                    }
                    a.target = t;
                }
                None => self.start(h, t),
            }
        }
        self.dropped_total = dropped.len();
        let keep = self.cfg.keep_dropped_targets as usize;
        if keep > 0 {
            dropped.truncate(keep);
        }
        self.dropped = dropped;
    }

    fn schedule(&self, t: &Target) -> (Duration, Duration) {
        let (i, to) = t.interval_and_timeout(self.cfg.scrape_interval, self.cfg.scrape_timeout);
        (i.to_std(), to.to_std())
    }

    fn start(&mut self, hash: u64, t: Target) {
        let (interval, timeout) = self.schedule(&t);
        let url = t.url();
        let status = Arc::new(Mutex::new(Status {
            health: TargetHealth::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_duration: 0.0,
            interval: vigil_config::Duration::from_millis(interval.as_millis() as u64),
            timeout: vigil_config::Duration::from_millis(timeout.as_millis() as u64),
            discovered: t.discovered_labels().clone(),
            metadata: Arc::new(Vec::new()),
        }));
        let (tx, rx) = mpsc::unbounded_channel();
        let task = LoopTask {
            sl: ScrapeLoop::new(t.all_labels(), self.opts.clone(), url.clone()),
            url: url.clone(),
            client: self.client.for_target(&url),
            storage: self.env.storage.clone(),
            interval: interval.max(Duration::from_millis(1)),
            timeout,
            hash: hash ^ self.env.offset_seed,
            status: status.clone(),
            ctl: rx,
            shutdown: self.env.shutdown.clone(),
            forced: self.limit_error.clone(),
            scraped: false,
        };
        let join = self.env.runtime.spawn(task.run());
        self.active.insert(
            hash,
            Active {
                target: t,
                url,
                status,
                ctl: tx,
                join,
            },
        );
    }

    /// Stops every loop; `stale` writes end-of-run staleness markers.
    pub fn stop(&mut self, stale: bool) -> Vec<JoinHandle<()>> {
        let mut joins = std::mem::take(&mut self.finishing);
        for (_, a) in self.active.drain() {
            let _ = a.ctl.send(Control::Stop { stale });
            joins.push(a.join);
        }
        joins
    }

    /// Handles of every loop task, running or finishing.
    pub fn take_joins(&mut self) -> Vec<JoinHandle<()>> {
        let mut joins = std::mem::take(&mut self.finishing);
        for (_, a) in self.active.drain() {
            joins.push(a.join);
        }
        joins
    }

    pub fn active_targets(&self) -> Vec<ActiveTarget> {
        let mut out: Vec<ActiveTarget> = self
            .active
            .values()
            .map(|a| {
                let s = lock(&a.status).clone();
                ActiveTarget {
                    discovered_labels: s.discovered,
                    labels: a.target.labels(),
                    scrape_pool: self.job.clone(),
                    scrape_url: a.url.clone(),
                    global_url: a.url.clone(),
                    last_error: s.last_error,
                    last_scrape: s.last_scrape,
                    last_scrape_duration: s.last_duration,
                    health: s.health,
                    scrape_interval: s.interval.to_string(),
                    scrape_timeout: s.timeout.to_string(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    pub fn dropped_targets(&self) -> (Vec<DroppedTarget>, usize) {
        (
            self.dropped
                .iter()
                .map(|t| DroppedTarget {
                    discovered_labels: t.discovered_labels().clone(),
                    scrape_pool: self.job.clone(),
                })
                .collect(),
            self.dropped_total,
        )
    }

    pub fn metadata(&self) -> Vec<TargetMetadata> {
        self.active
            .values()
            .map(|a| TargetMetadata {
                target: a.target.labels(),
                metadata: lock(&a.status).metadata.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_within_the_interval_and_are_stable() {
        let iv = Duration::from_secs(10);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // The scrape lands on the same phase of the interval whenever asked.
        for h in [0u64, 1, 12345, u64::MAX] {
            let phase = |now: SystemTime| {
                let at = now + slot_delay(h, iv, now);
                at.duration_since(UNIX_EPOCH).unwrap().as_nanos() % iv.as_nanos()
            };
            let p = phase(t0);
            assert_eq!(p, phase(t0 + Duration::from_millis(3_333)));
            assert_eq!(p, phase(t0 + Duration::from_millis(9_999)));
            assert_eq!(p, (h % iv.as_nanos() as u64) as u128);
            assert!(slot_delay(h, iv, t0) <= iv);
        }
    }
}
