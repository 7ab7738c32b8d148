//! `file_sd_configs`: target groups from JSON or YAML files named by paths or
//! globs. The directories of the patterns are watched with `notify` (so a
//! rename-replace by an editor or a Kubernetes ConfigMap `..data` symlink swap
//! is seen) and every file is re-read each `refresh_interval` as well.
//!
//! Each group's source is `<path>:<index>` and it carries `__meta_filepath`.
//! A file that fails to read or parse keeps its last good groups (the error
//! is logged); a file that disappears, or a group index that no longer
//! exists, is sent as an empty group so its targets go away.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::Watcher;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use vigil_config::FileSdConfig;
use vigil_model::relabel::is_valid_label_name;
use vigil_model::{Label, Labels};

use super::TargetGroup;
use crate::target::ADDRESS_LABEL;

/// Label holding the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// Why a file_sd file was not used.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("error reading file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("error parsing file {path}: {reason}")]
    Parse { path: String, reason: String },
}

#[derive(Deserialize)]
struct JsonGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Parses one file's contents; YAML unless the name ends in `.json`.
pub fn parse_file(path: &Path, content: &[u8]) -> Result<Vec<TargetGroup>, FileSdError> {
    let name = path.to_string_lossy().into_owned();
    let bad = |reason: String| FileSdError::Parse {
        path: name.clone(),
        reason,
    };
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let raw: Vec<(Vec<String>, BTreeMap<String, String>)> = if is_json {
        let groups: Vec<JsonGroup> =
            serde_json::from_slice(content).map_err(|e| bad(e.to_string()))?;
        groups.into_iter().map(|g| (g.targets, g.labels)).collect()
    } else {
        let text = std::str::from_utf8(content).map_err(|e| bad(e.to_string()))?;
        if text.trim().is_empty() {
            Vec::new()
        } else {
            let groups: Option<Vec<YamlGroup>> =
                serde_yaml_ng::from_str(text).map_err(|e| bad(e.to_string()))?;
            groups
                .unwrap_or_default()
                .into_iter()
                .map(|g| (g.targets, g.labels))
                .collect()
        }
    };
    let mut out = Vec::with_capacity(raw.len());
    for (i, (targets, labels)) in raw.into_iter().enumerate() {
        if let Some(bad_name) = labels.keys().find(|n| !is_valid_label_name(n)) {
            return Err(bad(format!(
                "{} is not a valid label name",
                vigil_model::gofmt::quote(bad_name)
            )));
        }
        let mut labels: Vec<Label> = labels.into_iter().map(|(n, v)| Label::new(n, v)).collect();
        labels.push(Label::new(FILEPATH_LABEL, name.as_str()));
        out.push(TargetGroup {
            source: format!("{name}:{i}"),
            targets: targets
                .iter()
                .map(|t| Labels::from_pairs(&[(ADDRESS_LABEL, t.as_str())]))
                .collect(),
            labels: Labels::new(labels),
        });
    }
    Ok(out)
}

/// One `file_sd_configs` entry's state.
#[derive(Debug)]
pub struct FileDiscovery {
    patterns: Vec<String>,
    refresh: Duration,
    /// Last good groups per file.
    last_good: BTreeMap<PathBuf, Vec<TargetGroup>>,
    /// Non-empty sources sent last time (to empty the ones that vanish).
    sent: BTreeSet<String>,
    last_sent: Vec<TargetGroup>,
}

impl FileDiscovery {
    pub fn new(cfg: &FileSdConfig) -> Self {
        FileDiscovery {
            patterns: cfg.files.clone(),
            refresh: cfg.refresh_interval.to_std().max(Duration::from_millis(10)),
            last_good: BTreeMap::new(),
            sent: BTreeSet::new(),
            last_sent: Vec::new(),
        }
    }

    /// The directories watched for changes.
    pub fn directories(&self) -> BTreeSet<PathBuf> {
        self.patterns
            .iter()
            .map(|p| match Path::new(p).parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect()
    }

    /// Re-reads every matching file. Returns the groups to send when they
    /// changed since the last call: every current group plus an empty group
    /// for each source that disappeared.
    pub fn refresh(&mut self) -> Option<Vec<TargetGroup>> {
        let mut files: Vec<PathBuf> = Vec::new();
        for p in &self.patterns {
            for f in vigil_config::glob(p) {
                if !files.contains(&f) {
                    files.push(f);
                }
            }
        }
        let mut current: BTreeMap<PathBuf, Vec<TargetGroup>> = BTreeMap::new();
        for f in files {
            let read = std::fs::read(&f).map_err(|source| FileSdError::Read {
                path: f.to_string_lossy().into_owned(),
                source,
            });
            match read.and_then(|content| parse_file(&f, &content)) {
                Ok(groups) => {
                    current.insert(f, groups);
                }
                Err(e) => {
                    tracing::error!(err = %e, "Error reading file");
                    if let Some(old) = self.last_good.get(&f) {
                        current.insert(f, old.clone());
                    }
                }
            }
        }
        self.last_good = current;
        let mut groups: Vec<TargetGroup> = self.last_good.values().flatten().cloned().collect();
        let now: BTreeSet<String> = groups.iter().map(|g| g.source.clone()).collect();
        for gone in self.sent.difference(&now) {
            groups.push(TargetGroup {
                source: gone.clone(),
                targets: Vec::new(),
                labels: Labels::empty(),
            });
        }
        self.sent = now;
        if groups == self.last_sent {
            return None;
        }
        self.last_sent = groups.clone();
        Some(groups)
    }

    /// Watches and re-reads until `stop` changes, handing every changed set
    /// of groups to `on_update`. Call [`FileDiscovery::refresh`] once first
    /// for the initial groups.
    pub async fn run(
        mut self,
        mut on_update: impl FnMut(Vec<TargetGroup>) + Send,
        mut stop: watch::Receiver<bool>,
    ) {
        let (tx, mut events) = mpsc::channel::<()>(64);
        let mut watcher = match notify::recommended_watcher(
            move |res: notify::Result<notify::Event>| match res {
                Ok(_) => {
                    let _ = tx.try_send(());
                }
                Err(e) => tracing::warn!(err = %e, "file_sd watcher error"),
            },
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(err = %e, "file_sd: cannot watch files, relying on refresh_interval");
                None
            }
        };
        let dirs = self.directories();
        let watch_all = |w: &mut Option<notify::RecommendedWatcher>| {
            if let Some(w) = w {
                for d in &dirs {
                    if d.is_dir() {
                        if let Err(e) = w.watch(d, notify::RecursiveMode::NonRecursive) {
                            tracing::warn!(dir = %d.display(), err = %e, "file_sd: watch failed");
                        }
                    }
                }
            }
        };
        watch_all(&mut watcher);
        let mut ticker = tokio::time::interval(self.refresh);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                Some(()) = events.recv() => {
                    // Let a burst of events (write, rename, chmod) settle.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while events.try_recv().is_ok() {}
                }
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            if let Some(groups) = self.refresh() {
                on_update(groups);
            }
            // Directories may have appeared or been replaced.
            watch_all(&mut watcher);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    #[test]
    fn parses_json_and_yaml() {
        let json =
            br#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}]"#;
        let g = parse_file(Path::new("/sd/x.json"), json).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "/sd/x.json:0");
        assert_eq!(g[1].source, "/sd/x.json:1");
        assert_eq!(
            g[0].targets,
            vec![lp(&[("__address__", "a:1")]), lp(&[("__address__", "b:2")])]
        );
        assert_eq!(
            g[0].labels,
            lp(&[("__meta_filepath", "/sd/x.json"), ("env", "prod")])
        );
        let yaml = b"- targets: ['a:1']\n  labels:\n    env: dev\n";
        let g = parse_file(Path::new("/sd/y.yml"), yaml).unwrap();
        assert_eq!(g[0].labels.get("env"), Some("dev"));
        assert!(parse_file(Path::new("/sd/e.yml"), b"").unwrap().is_empty());
        assert!(parse_file(Path::new("/sd/e.json"), b"[]")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rejects_bad_files() {
        for (name, body) in [
            ("x.json", &b"[{\"targets\": [\"a:1\"]"[..]),
            ("x.yml", b"- targets: [a:1\n"),
            ("x.yml", b"- targets: ['a:1']\n  lables: {}\n"),
            ("x.yml", b"- targets: ['a:1']\n  labels: {'0bad': x}\n"),
        ] {
            let e = parse_file(Path::new(name), body).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("error parsing file {name}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn refresh_keeps_last_good_and_empties_vanished_sources() {
        let dir = std::env::temp_dir().join(format!("vigil-filesd-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.yml");
        std::fs::write(&f, "- targets: ['a:1']\n- targets: ['b:1']\n").unwrap();
        let mut d = FileDiscovery::new(&FileSdConfig {
            files: vec![format!("{}/*.yml", dir.display())],
            refresh_interval: vigil_config::Duration::from_secs(60),
        });
        let g = d.refresh().unwrap();
        assert_eq!(g.len(), 2);
        // Unchanged: nothing to send.
        assert!(d.refresh().is_none());
        // Broken file: last good kept, nothing sent.
        std::fs::write(&f, "- targets: [oops\n").unwrap();
        assert!(d.refresh().is_none());
        // One group fewer: its source is sent empty.
        std::fs::write(&f, "- targets: ['a:1']\n").unwrap();
        let g = d.refresh().unwrap();
        assert_eq!(g.len(), 2);
        assert!(g[1].targets.is_empty());
        assert!(g[1].source.ends_with("t.yml:1"));
        // File removed: all its sources empty.
        std::fs::remove_file(&f).unwrap();
        let g = d.refresh().unwrap();
        assert!(g.iter().all(|g| g.targets.is_empty()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
