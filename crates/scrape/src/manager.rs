//! The scrape manager: what the binary talks to. It owns one scrape pool per
//! job and the discovery providers feeding them, applies configurations as
//! diffs (unchanged jobs and targets keep running), and answers the targets
//! and metadata questions of the HTTP API.
//!
//! It must be created inside a Tokio runtime; loops and providers run as
//! tasks on it. It never writes staleness markers on shutdown (like
//! Prometheus: the next start continues the series).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_config::{Config, FileSdConfig, ScrapeConfig, StaticConfig};
use vigil_model::storage::Appendable;

use crate::cache::MetricMetadata;
use crate::client::{TargetClient, USER_AGENT};
use crate::discovery::file::FileDiscovery;
use crate::discovery::r#static::static_groups;
use crate::pool::{ActiveTarget, DroppedTarget, PoolEnv, ScrapePool, TargetMetadata};
use crate::settings::{client_options, loop_options};
use crate::target::TargetGroup;

/// Options of the manager itself (not of any job).
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// `User-Agent` of every scrape.
    pub user_agent: String,
    /// Mixed into every target's slot within its interval, so that several
    /// servers scraping the same targets spread differently (Prometheus
    /// seeds it from the external labels and the hostname).
    pub offset_seed: u64,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            user_agent: USER_AGENT.to_string(),
            offset_seed: 0,
        }
    }
}

/// Errors of the manager's public calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagerError {
    #[error("the scrape manager must be created inside a Tokio runtime")]
    NoRuntime,
    /// Jobs that could not be (re)configured; the others were applied.
    #[error("{}", .0.join("; "))]
    Jobs(Vec<String>),
}

/// Active and dropped targets of every pool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetsSnapshot {
    /// Sorted by scrape pool, then labels.
    pub active: Vec<ActiveTarget>,
    /// At most `keep_dropped_targets` per pool (all when 0).
    pub dropped: Vec<DroppedTarget>,
    /// Dropped targets per pool, before `keep_dropped_targets`.
    pub dropped_counts: BTreeMap<String, usize>,
}

/// One entry of `/api/v1/metadata`: a family's metadata as some target
/// exposes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetadataEntry {
    pub kind: String,
    pub help: String,
    pub unit: String,
}

struct JobDiscovery {
    static_configs: Vec<StaticConfig>,
    file_sd_configs: Vec<FileSdConfig>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct State {
    pools: BTreeMap<String, ScrapePool>,
    discovery: HashMap<String, JobDiscovery>,
    generation: u64,
    /// Tasks of stopped pools still writing staleness markers.
    finishing: Vec<JoinHandle<()>>,
}

/// Runs every scrape of the server.
pub struct ScrapeManager {
    env: PoolEnv,
    opts: ManagerOptions,
    state: Arc<Mutex<State>>,
    shutdown: watch::Sender<bool>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScrapeManager {
    /// A manager appending to `storage`. Call from within a Tokio runtime.
    pub fn new(storage: Arc<dyn Appendable>, opts: ManagerOptions) -> Result<Self, ManagerError> {
        let runtime = Handle::try_current().map_err(|_| ManagerError::NoRuntime)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        Ok(ScrapeManager {
            env: PoolEnv {
                storage,
                runtime,
                shutdown: shutdown_rx,
                offset_seed: opts.offset_seed,
            },
            opts,
            state: Arc::new(Mutex::new(State {
                pools: BTreeMap::new(),
                discovery: HashMap::new(),
                generation: 0,
                finishing: Vec::new(),
            })),
            shutdown,
        })
    }

    /// Applies a (re)loaded configuration as a diff: removed jobs stop (their
    /// series get staleness markers), new jobs start, changed jobs keep the
    /// loops of targets whose identity did not change. A job that cannot be
    /// configured (unreadable TLS file, ...) is reported in the error and,
    /// if it already ran, keeps its previous configuration.
    pub fn apply_config(&self, cfg: &Config) -> Result<(), ManagerError> {
        let mut st = lock(&self.state);
        let mut errors = Vec::new();
        let wanted: BTreeMap<&str, &ScrapeConfig> = cfg
            .scrape_configs
            .iter()
            .map(|s| (s.job_name.as_str(), s))
            .collect();
        let gone: Vec<String> = st
            .pools
            .keys()
            .filter(|j| !wanted.contains_key(j.as_str()))
            .cloned()
            .collect();
        for job in gone {
            if let Some(mut p) = st.pools.remove(&job) {
                let joins = p.stop(true);
                st.finishing.extend(joins);
            }
            if let Some(d) = st.discovery.remove(&job) {
                let _ = d.stop.send(true);
            }
        }
        for (job, sc) in wanted {
            let client = client_options(sc, &self.opts.user_agent).and_then(TargetClient::new);
            let client = match client {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("error creating new scrape pool for job {job}: {e}"));
                    continue;
                }
            };
            let opts = Arc::new(loop_options(sc));
            let sc_arc = Arc::new(sc.clone());
            match st.pools.get_mut(job) {
                Some(p) => {
                    if p.config() != sc {
                        p.reload(sc_arc, client, opts);
                    }
                }
                None => {
                    let p = ScrapePool::new(sc_arc, client, opts, self.env.clone());
                    st.pools.insert(job.to_string(), p);
                }
            }
            let sd_same = st.discovery.get(job).is_some_and(|d| {
                d.static_configs == sc.static_configs && d.file_sd_configs == sc.file_sd_configs
            });
            if !sd_same {
                self.start_discovery(&mut st, job, sc);
            }
        }
        st.finishing.retain(|j| !j.is_finished());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ManagerError::Jobs(errors))
        }
    }

    /// (Re)starts a job's providers; the first groups of every provider are
    /// read before returning, so targets never blink out across a reload.
    fn start_discovery(&self, st: &mut State, job: &str, sc: &ScrapeConfig) {
        if let Some(old) = st.discovery.remove(job) {
            let _ = old.stop.send(true);
        }
        st.generation += 1;
        let generation = st.generation;
        let (stop, stop_rx) = watch::channel(false);
        let mut providers: BTreeMap<String, Vec<TargetGroup>> = BTreeMap::new();
        providers.insert(
            format!("static/{generation}"),
            static_groups(&sc.static_configs),
        );
        let mut tasks = Vec::new();
        for (i, fc) in sc.file_sd_configs.iter().enumerate() {
            let name = format!("file/{generation}/{i}");
            let mut fd = FileDiscovery::new(fc);
            providers.insert(name.clone(), fd.refresh().unwrap_or_default());
            let weak: Weak<Mutex<State>> = Arc::downgrade(&self.state);
            let job_name = job.to_string();
            let on_update = move |groups: Vec<TargetGroup>| {
                if let Some(state) = weak.upgrade() {
                    if let Some(p) = lock(&state).pools.get_mut(&job_name) {
                        p.update_groups(&name, groups);
                    }
                }
            };
            tasks.push(self.env.runtime.spawn(fd.run(on_update, stop_rx.clone())));
        }
        if let Some(p) = st.pools.get_mut(job) {
            p.set_providers(providers);
        }
        st.discovery.insert(
            job.to_string(),
            JobDiscovery {
                static_configs: sc.static_configs.clone(),
                file_sd_configs: sc.file_sd_configs.clone(),
                stop,
                tasks,
            },
        );
    }

    /// Active and dropped targets of every pool.
    pub fn targets(&self) -> TargetsSnapshot {
        let st = lock(&self.state);
        let mut out = TargetsSnapshot::default();
        for (job, p) in &st.pools {
            out.active.extend(p.active_targets());
            let (dropped, total) = p.dropped_targets();
            out.dropped.extend(dropped);
            out.dropped_counts.insert(job.clone(), total);
        }
        out
    }

    /// Names of the scrape pools (jobs).
    pub fn scrape_pools(&self) -> Vec<String> {
        lock(&self.state).pools.keys().cloned().collect()
    }

    /// Per-target metric metadata (`/api/v1/targets/metadata`).
    pub fn target_metadata(&self) -> Vec<TargetMetadata> {
        let st = lock(&self.state);
        let mut out: Vec<TargetMetadata> = st.pools.values().flat_map(|p| p.metadata()).collect();
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }

    /// Metadata by metric name across all targets, each distinct
    /// (type, help, unit) once (`/api/v1/metadata`).
    pub fn metadata(&self) -> BTreeMap<String, Vec<MetadataEntry>> {
        let mut out: BTreeMap<String, Vec<MetadataEntry>> = BTreeMap::new();
        for tm in self.target_metadata() {
            for MetricMetadata {
                metric,
                kind,
                help,
                unit,
            } in tm.metadata.iter()
            {
                let e = MetadataEntry {
                    kind: kind.as_str().to_string(),
                    help: help.clone(),
                    unit: unit.clone(),
                };
                let list = out.entry(metric.clone()).or_default();
                if !list.contains(&e) {
                    list.push(e);
                }
            }
        }
        out
    }

    /// Stops every loop and provider without writing staleness markers and
    /// waits for them to finish.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let joins: Vec<JoinHandle<()>> = {
            let mut st = lock(&self.state);
            let mut joins: Vec<JoinHandle<()>> = std::mem::take(&mut st.finishing);
            for p in st.pools.values_mut() {
                joins.extend(p.take_joins());
            }
            for (_, d) in st.discovery.drain() {
                let _ = d.stop.send(true);
                joins.extend(d.tasks);
            }
            st.pools.clear();
            joins
        };
        for j in joins {
            let _ = j.await;
        }
    }
}
