//! Targets: from discovered target groups to scrape targets, as Prometheus's
//! `TargetsFromGroup`/`PopulateLabels` do it (job/interval/timeout/path/
//! scheme defaults, `__param_*`, `relabel_configs`, default ports, `__meta_*`
//! removal, `instance` defaulting to `__address__`), plus a target's URL and
//! identity hash.
//!
//! Pure functions over labels and the scrape config: no I/O, no tasks.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use vigil_config::{Duration, ScrapeConfig};
use vigil_model::relabel;
use vigil_model::{Label, Labels};

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const INSTANCE_LABEL: &str = "instance";
pub const JOB_LABEL: &str = "job";

/// A group of targets from one discovery source, as Prometheus's
/// `targetgroup.Group`: per-target labels (each with `__address__`) and
/// labels common to the group. An empty `targets` list removes the source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// Identifies the group within its provider (e.g. `file.yml:0`).
    pub source: String,
    pub targets: Vec<Labels>,
    pub labels: Labels,
}

/// A target after relabeling. Dropped targets have empty `labels` and keep
/// the labels they were discovered with for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Final labels, including the `__`-prefixed ones that shape the scrape
    /// (`__address__`, `__scheme__`, `__metrics_path__`, `__param_*`, ...).
    labels: Labels,
    /// The labels before relabeling (for the API's `discoveredLabels`).
    discovered: Labels,
    /// `params` from the scrape config.
    params: BTreeMap<String, Vec<String>>,
}

impl Target {
    pub fn new(labels: Labels, discovered: Labels, params: BTreeMap<String, Vec<String>>) -> Self {
        Target {
            labels,
            discovered,
            params,
        }
    }

    pub fn is_dropped(&self) -> bool {
        self.labels.is_empty()
    }

    /// All final labels, `__` ones included.
    pub fn all_labels(&self) -> &Labels {
        &self.labels
    }

    /// The labels the API shows and samples carry (no `__` ones).
    pub fn labels(&self) -> Labels {
        Labels::from_sorted(
            self.labels
                .iter()
                .filter(|l| !l.name.starts_with("__"))
                .cloned()
                .collect(),
        )
    }

    pub fn discovered_labels(&self) -> &Labels {
        &self.discovered
    }

    /// The scrape URL: scheme, address, path and query from `params`
    /// overridden by `__param_<name>` labels (first value replaced).
    pub fn url(&self) -> String {
        let mut params = self.params.clone();
        for l in self.labels.iter() {
            if let Some(name) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
                match params.get_mut(name) {
                    Some(v) if !v.is_empty() => v[0] = l.value.clone(),
                    _ => {
                        params.insert(name.to_string(), vec![l.value.clone()]);
                    }
                }
            }
        }
        let mut url = format!(
            "{}://{}{}",
            self.labels.get(SCHEME_LABEL).unwrap_or_default(),
            self.labels.get(ADDRESS_LABEL).unwrap_or_default(),
            escape_path(self.labels.get(METRICS_PATH_LABEL).unwrap_or_default()),
        );
        let mut first = true;
        for (k, vs) in &params {
            for v in vs {
                url.push(if first { '?' } else { '&' });
                first = false;
                query_escape(&mut url, k);
                url.push('=');
                query_escape(&mut url, v);
            }
        }
        url
    }

    /// Scrape interval and timeout from `__scrape_interval__` and
    /// `__scrape_timeout__`, falling back to the given defaults.
    pub fn interval_and_timeout(
        &self,
        default_interval: Duration,
        default_timeout: Duration,
    ) -> (Duration, Duration) {
        let get = |name: &str, default: Duration| {
            self.labels
                .get(name)
                .and_then(|v| Duration::parse(v).ok())
                .unwrap_or(default)
        };
        (
            get(SCRAPE_INTERVAL_LABEL, default_interval),
            get(SCRAPE_TIMEOUT_LABEL, default_timeout),
        )
    }

    /// Identity of the target within its pool: its final labels and URL
    /// (FNV-1a over the label hash and the URL, as Prometheus combines them).
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for &c in b {
                h ^= c as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(format!("{:016}", self.labels.stable_hash()).as_bytes());
        eat(self.url().as_bytes());
        h
    }
}

/// Targets of one group, in order; errors name the target like Prometheus's
/// `instance %d in group %s: %s`.
pub fn targets_from_group(tg: &TargetGroup, cfg: &ScrapeConfig) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::with_capacity(tg.targets.len());
    let mut failures = Vec::new();
    for (i, t) in tg.targets.iter().enumerate() {
        // Target labels win over group labels.
        let mut merged: Vec<Label> = t.iter().cloned().collect();
        for l in tg.labels.iter() {
            if !t.has(&l.name) {
                merged.push(l.clone());
            }
        }
        match populate_labels(Labels::new(merged), cfg) {
            Ok((labels, discovered)) => {
                if !labels.is_empty() || !discovered.is_empty() {
                    targets.push(Target::new(labels, discovered, cfg.params.clone()));
                }
            }
            Err(e) => failures.push(format!("instance {i} in group {}: {e}", tg.source)),
        }
    }
    (targets, failures)
}

/// Prometheus's `PopulateLabels`: the final labels (empty when relabeling
/// dropped the target) and the labels before relabeling.
pub fn populate_labels(lset: Labels, cfg: &ScrapeConfig) -> Result<(Labels, Labels), String> {
    let mut b = lset.builder();
    let defaults = [
        (JOB_LABEL, cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, cfg.scrape_interval.to_string()),
        (SCRAPE_TIMEOUT_LABEL, cfg.scrape_timeout.to_string()),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
    ];
    for (name, value) in defaults {
        if b.get(name).is_none() {
            b.set(name, value);
        }
    }
    for (k, v) in &cfg.params {
        if let Some(first) = v.first() {
            b.set(format!("{PARAM_LABEL_PREFIX}{k}"), first.as_str());
        }
    }
    let pre = b.build();
    let Some(relabeled) = relabel::process(&pre, &cfg.relabel_configs) else {
        return Ok((Labels::empty(), pre));
    };
    let mut b = relabeled.builder();
    let Some(mut addr) = b.get(ADDRESS_LABEL).map(str::to_string) else {
        return Err("no address".to_string());
    };
    if split_host_port(&addr).is_err() && split_host_port(&format!("{addr}:1234")).is_ok() {
        match b.get(SCHEME_LABEL).unwrap_or_default() {
            "http" | "" => addr.push_str(":80"),
            "https" => addr.push_str(":443"),
            _ => {
                return Err(format!(
                    "invalid scheme: {}",
                    vigil_model::gofmt::quote(&cfg.scheme)
                ))
            }
        }
        b.set(ADDRESS_LABEL, addr.as_str());
    }
    if addr.contains('/') {
        return Err(format!(
            "{} is not a valid hostname",
            vigil_model::gofmt::quote(&addr)
        ));
    }
    let interval = b.get(SCRAPE_INTERVAL_LABEL).unwrap_or_default().to_string();
    let iv =
        Duration::parse(&interval).map_err(|e| format!("error parsing scrape interval: {e}"))?;
    if iv.is_zero() {
        return Err("scrape interval cannot be 0".to_string());
    }
    let timeout = b.get(SCRAPE_TIMEOUT_LABEL).unwrap_or_default().to_string();
    let to = Duration::parse(&timeout).map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if to.is_zero() {
        return Err("scrape timeout cannot be 0".to_string());
    }
    if to > iv {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({} > {})",
            vigil_model::gofmt::quote(&timeout),
            vigil_model::gofmt::quote(&interval)
        ));
    }
    // Meta labels go; other internal ones (`__tmp_*` too) stay on the
    // target, which never exposes `__` labels.
    let meta: Vec<String> = relabeled
        .iter()
        .filter(|l| l.name.starts_with(META_LABEL_PREFIX))
        .map(|l| l.name.clone())
        .collect();
    for m in &meta {
        b.del(m);
    }
    if b.get(INSTANCE_LABEL).is_none() {
        b.set(INSTANCE_LABEL, addr.as_str());
    }
    Ok((b.build(), pre))
}

/// Go's `net.SplitHostPort`.
pub fn split_host_port(s: &str) -> Result<(&str, &str), &'static str> {
    let i = s.rfind(':').ok_or("missing port in address")?;
    let (host, j, k) = if s.starts_with('[') {
        let end = s.find(']').ok_or("missing ']' in address")?;
        if end + 1 == s.len() {
            return Err("missing port in address");
        }
        if end + 1 != i {
            return Err(if s.as_bytes()[end + 1] == b':' {
                "too many colons in address"
            } else {
                "missing port in address"
            });
        }
        (&s[1..end], 1, end + 1)
    } else {
        let host = &s[..i];
        if host.contains(':') {
            return Err("too many colons in address");
        }
        (host, 0, 0)
    };
    if s[j..].contains('[') {
        return Err("unexpected '[' in address");
    }
    if s[k..].contains(']') {
        return Err("unexpected ']' in address");
    }
    Ok((host, &s[i + 1..]))
}

/// Go's `url.QueryEscape` (spaces as `+`).
fn query_escape(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// Go's path escaping in `URL.String()`.
fn escape_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for &b in p.as_bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'@' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
