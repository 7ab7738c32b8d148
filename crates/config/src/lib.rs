//! Vigil's configuration: the `prometheus.yml` schema of Prometheus 2.53 with
//! its defaults, inheritance rules and validation, and nothing else.
//!
//! This is the only crate that knows YAML. Every error names the file and the
//! line it concerns (`file:line: message`). Loading compiles relabel rules to
//! `vigil_model::relabel`, so later stages never re-validate. It does no I/O
//! beyond reading the config file and globbing rule files: no network, no
//! watching, no scraping.

mod alerting;
mod check;
mod de;
mod emit;
mod glob;
mod http;
mod remote;
mod scrape;
mod types;
mod yaml;

pub use alerting::{AlertingConfig, AlertmanagerApiVersion, AlertmanagerConfig};
pub use check::{check_config, CheckSummary};
pub use glob::{glob, glob_match};
pub use http::{Authorization, BasicAuth, HttpClientConfig, TlsConfig, TlsVersion};
pub use remote::{MetadataConfig, QueueConfig, RemoteReadConfig, RemoteWriteConfig};
pub use scrape::{
    FileSdConfig, GlobalConfig, ScrapeConfig, ScrapeProtocol, StaticConfig,
    DEFAULT_EVALUATION_INTERVAL, DEFAULT_FILE_SD_REFRESH, DEFAULT_SCRAPE_INTERVAL,
    DEFAULT_SCRAPE_TIMEOUT,
};
pub use types::{ByteSize, Duration, DurationError, Secret, Url};
pub use vigil_model::relabel::RelabelConfig;

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use vigil_model::relabel::is_valid_label_name;
use yaml::Seg;

/// Why a configuration file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A syntax, type or validation error at `line` (1-based).
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

impl ConfigError {
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Io { file, .. } | ConfigError::Invalid { file, .. } => file,
        }
    }

    /// The line the error concerns, when it concerns one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Invalid { line, .. } => Some(*line),
        }
    }
}

/// Optional sections Vigil accepts but does not act on.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub tsdb: Option<TsdbConfig>,
    pub exemplars: Option<ExemplarsConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    pub out_of_order_time_window: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    pub max_exemplars: i64,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig {
            max_exemplars: 100_000,
        }
    }
}

/// A loaded, validated configuration with every default filled in.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub global: GlobalConfig,
    pub alerting: AlertingConfig,
    /// Patterns as written, joined with the config file's directory.
    pub rule_files: Vec<String>,
    pub scrape_config_files: Vec<String>,
    pub scrape_configs: Vec<ScrapeConfig>,
    pub storage: StorageConfig,
    pub remote_write: Vec<RemoteWriteConfig>,
    pub remote_read: Vec<RemoteReadConfig>,
    /// Accepted for compatibility; Vigil has no tracing exporter.
    #[serde(deserialize_with = "ignore")]
    tracing: (),
    #[serde(skip)]
    source: PathBuf,
}

/// A file named by `scrape_config_files`: only scrape configs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ScrapeConfigsFile {
    scrape_configs: Vec<ScrapeConfig>,
}

fn ignore<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| ())
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text, path)
    }

    /// Parses and validates `text`; `path` names the file in errors, and
    /// relative paths in the config are resolved against its directory.
    pub fn from_yaml(text: &str, path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::parse_with_tree(text, path.as_ref()).map(|(c, _)| c)
    }

    /// Loads `text` and also returns the node tree (for locating later errors).
    fn parse_with_tree(text: &str, path: &Path) -> Result<(Config, yaml::Node), ConfigError> {
        let invalid = |line: usize, message: String| ConfigError::Invalid {
            file: path.to_path_buf(),
            line,
            message,
        };
        let root = yaml::parse(text).map_err(|e| invalid(e.line, e.message))?;
        let mut cfg = Config::deserialize(de::De::new(&root))
            .map_err(|e| invalid(e.line.unwrap_or(1), e.message))?;
        cfg.validate()
            .map_err(|(segs, msg)| invalid(root.line_of(&segs.as_segs()), msg))?;
        cfg.source = path.to_path_buf();
        cfg.set_directory(&base_dir(path));
        cfg.load_scrape_config_files()?;
        Ok((cfg, root))
    }

    /// Reads the files `scrape_config_files` matches (each holding only a
    /// `scrape_configs` list), validates their jobs against the global
    /// section like the main file's, and appends them. Job names must be
    /// unique across all files. Errors name the file and line they are in.
    fn load_scrape_config_files(&mut self) -> Result<(), ConfigError> {
        let mut seen: std::collections::HashSet<String> = self
            .scrape_configs
            .iter()
            .map(|s| s.job_name.clone())
            .collect();
        let mut extra = Vec::new();
        for pat in &self.scrape_config_files {
            for file in glob(pat) {
                let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Io {
                    file: file.clone(),
                    source,
                })?;
                let invalid = |line: usize, message: String| ConfigError::Invalid {
                    file: file.clone(),
                    line,
                    message,
                };
                let root = yaml::parse(&text).map_err(|e| invalid(e.line, e.message))?;
                let part = ScrapeConfigsFile::deserialize(de::De::new(&root))
                    .map_err(|e| invalid(e.line.unwrap_or(1), e.message))?;
                let mut tmp = Config {
                    global: self.global.clone(),
                    scrape_configs: part.scrape_configs,
                    ..Config::default()
                };
                tmp.validate()
                    .map_err(|(segs, msg)| invalid(root.line_of(&segs.as_segs()), msg))?;
                tmp.set_directory(&base_dir(&file));
                for (i, sc) in tmp.scrape_configs.into_iter().enumerate() {
                    if !seen.insert(sc.job_name.clone()) {
                        let at = [
                            Seg::Key("scrape_configs"),
                            Seg::Index(i),
                            Seg::Key("job_name"),
                        ];
                        return Err(invalid(
                            root.line_of(&at),
                            format!(
                                "found multiple scrape configs with job name {:?}",
                                sc.job_name
                            ),
                        ));
                    }
                    extra.push(sc);
                }
            }
        }
        self.scrape_configs.extend(extra);
        Ok(())
    }

    /// The file this configuration was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Rule files named by `rule_files`, glob-expanded (sorted per pattern, in
    /// pattern order, without duplicates). A pattern that matches nothing
    /// contributes nothing, as in Prometheus.
    pub fn rule_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for pat in &self.rule_files {
            for p in glob(pat) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The effective configuration as Prometheus's `/api/v1/status/config`
    /// shows it: defaults filled in, secrets as `<secret>`.
    pub fn to_yaml(&self) -> String {
        emit::to_yaml(self)
    }

    /// The scrape config for `job_name`.
    pub fn scrape_config(&self, job_name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job_name)
    }

    fn set_directory(&mut self, dir: &Path) {
        join_dir(dir, &mut self.global.query_log_file);
        for f in self
            .rule_files
            .iter_mut()
            .chain(self.scrape_config_files.iter_mut())
        {
            join_dir(dir, f);
        }
        for s in &mut self.scrape_configs {
            s.http_client.set_directory(dir);
            for f in s
                .file_sd_configs
                .iter_mut()
                .flat_map(|c| c.files.iter_mut())
            {
                join_dir(dir, f);
            }
        }
        for a in &mut self.alerting.alertmanagers {
            a.http_client.set_directory(dir);
            for f in a
                .file_sd_configs
                .iter_mut()
                .flat_map(|c| c.files.iter_mut())
            {
                join_dir(dir, f);
            }
        }
        for r in &mut self.remote_write {
            r.http_client.set_directory(dir);
        }
        for r in &mut self.remote_read {
            r.http_client.set_directory(dir);
        }
    }

    /// Prometheus's checks and defaults, in Prometheus's order. An error
    /// carries the path of the key it concerns.
    fn validate(&mut self) -> Result<(), (Path_, String)> {
        let g = &mut self.global;
        let gp = Path_::root().key("global");
        for name in g.external_labels.keys() {
            if !is_valid_label_name(name) {
                return Err((
                    gp.key("external_labels").key(name),
                    format!("{name:?} is not a valid label name"),
                ));
            }
        }
        if g.scrape_interval.is_zero() {
            g.scrape_interval = DEFAULT_SCRAPE_INTERVAL;
        }
        if g.scrape_timeout > g.scrape_interval {
            return Err((
                gp.key("scrape_timeout"),
                "global scrape timeout greater than scrape interval".to_string(),
            ));
        }
        if g.scrape_timeout.is_zero() {
            g.scrape_timeout = DEFAULT_SCRAPE_TIMEOUT.min(g.scrape_interval);
        }
        if g.evaluation_interval.is_zero() {
            g.evaluation_interval = DEFAULT_EVALUATION_INTERVAL;
        }
        if g.scrape_protocols.is_none() {
            g.scrape_protocols = Some(ScrapeProtocol::DEFAULT.to_vec());
        }
        scrape::validate_protocols(g.scrape_protocols())
            .map_err(|e| (gp.key("scrape_protocols"), format!("{e} for global config")))?;

        for (i, rf) in self.rule_files.iter().enumerate() {
            check_file_pattern(rf).map_err(|()| {
                (
                    Path_::root().key("rule_files").index(i),
                    format!("invalid rule file path {rf:?}"),
                )
            })?;
        }
        for (i, sf) in self.scrape_config_files.iter().enumerate() {
            check_file_pattern(sf).map_err(|()| {
                (
                    Path_::root().key("scrape_config_files").index(i),
                    format!("invalid scrape config file path {sf:?}"),
                )
            })?;
        }

        let mut jobs: HashMap<String, ()> = HashMap::new();
        let global = self.global.clone();
        for (i, sc) in self.scrape_configs.iter_mut().enumerate() {
            let p = Path_::root().key("scrape_configs").index(i);
            if sc.job_name.is_empty() {
                return Err((p, "job_name is empty".to_string()));
            }
            sc.http_client.validate().map_err(|(f, m)| (p.keys(f), m))?;
            if sc.relabel_configs.is_empty() {
                check_static_targets(&sc.static_configs, &p)?;
            }
            check_target_groups(&sc.static_configs, &sc.file_sd_configs, &p)?;
            sc.inherit(&global).map_err(|(f, m)| (p.key(f), m))?;
            if jobs.insert(sc.job_name.clone(), ()).is_some() {
                return Err((
                    p.key("job_name"),
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        sc.job_name
                    ),
                ));
            }
        }

        for (i, am) in self.alerting.alertmanagers.iter_mut().enumerate() {
            let p = Path_::root().key("alerting").key("alertmanagers").index(i);
            am.http_client.validate().map_err(|(f, m)| (p.keys(f), m))?;
            if am.relabel_configs.is_empty() {
                check_static_targets(&am.static_configs, &p)?;
            }
            check_target_groups(&am.static_configs, &am.file_sd_configs, &p)?;
        }

        let mut names: HashMap<String, ()> = HashMap::new();
        for (i, rw) in self.remote_write.iter_mut().enumerate() {
            let p = Path_::root().key("remote_write").index(i);
            if !rw.name.is_empty() && names.insert(rw.name.clone(), ()).is_some() {
                return Err((
                    p.key("name"),
                    format!(
                        "found multiple remote write configs with job name {:?}",
                        rw.name
                    ),
                ));
            }
            if rw.url.is_none() {
                return Err((p, "url for remote_write is empty".to_string()));
            }
            remote::validate_headers(&rw.headers)
                .map_err(|(h, m)| (p.key("headers").key(&h), m))?;
            rw.http_client.validate().map_err(|(f, m)| (p.keys(f), m))?;
        }
        let mut names: HashMap<String, ()> = HashMap::new();
        for (i, rr) in self.remote_read.iter_mut().enumerate() {
            let p = Path_::root().key("remote_read").index(i);
            if !rr.name.is_empty() && names.insert(rr.name.clone(), ()).is_some() {
                return Err((
                    p.key("name"),
                    format!(
                        "found multiple remote read configs with job name {:?}",
                        rr.name
                    ),
                ));
            }
            if rr.url.is_none() {
                return Err((p, "url for remote_read is empty".to_string()));
            }
            remote::validate_headers(&rr.headers)
                .map_err(|(h, m)| (p.key("headers").key(&h), m))?;
            check_label_names(&rr.required_matchers, &p.key("required_matchers"))?;
            rr.http_client.validate().map_err(|(f, m)| (p.keys(f), m))?;
        }
        Ok(())
    }
}

/// The directory relative paths in `path`'s config are resolved against.
fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Prometheus's `JoinDir`: relative, non-empty paths are joined with `dir`.
pub(crate) fn join_dir(dir: &Path, p: &mut String) {
    if p.is_empty() || Path::new(p.as_str()).is_absolute() || dir.as_os_str().is_empty() {
        return;
    }
    *p = dir.join(p.as_str()).to_string_lossy().into_owned();
}

/// `patRulePath`: at most one `*`, and only in the last path element.
fn check_file_pattern(p: &str) -> Result<(), ()> {
    match p.find('*') {
        None => Ok(()),
        Some(i) => {
            let rest = &p[i + 1..];
            if rest.contains('*') || rest.contains('/') {
                Err(())
            } else {
                Ok(())
            }
        }
    }
}

/// `patFileSDName`: a pattern with an optional `*` in the last element and a
/// JSON or YAML extension.
fn check_file_sd_name(p: &str) -> bool {
    let Some((stem, ext)) = p.rsplit_once('.') else {
        return false;
    };
    matches!(ext, "json" | "yml" | "yaml" | "JSON" | "YML" | "YAML")
        && check_file_pattern(stem).is_ok()
}

fn check_static_targets(groups: &[StaticConfig], p: &Path_) -> Result<(), (Path_, String)> {
    for (j, g) in groups.iter().enumerate() {
        for (k, t) in g.targets.iter().enumerate() {
            if t.contains('/') {
                return Err((
                    p.key("static_configs").index(j).key("targets").index(k),
                    format!("{t:?} is not a valid hostname"),
                ));
            }
        }
    }
    Ok(())
}

fn check_target_groups(
    groups: &[StaticConfig],
    files: &[FileSdConfig],
    p: &Path_,
) -> Result<(), (Path_, String)> {
    for (j, g) in groups.iter().enumerate() {
        check_label_names(&g.labels, &p.key("static_configs").index(j).key("labels"))?;
    }
    for (j, f) in files.iter().enumerate() {
        let fp = p.key("file_sd_configs").index(j);
        if f.files.is_empty() {
            return Err((
                fp,
                "file service discovery config must contain at least one path name".to_string(),
            ));
        }
        for (k, name) in f.files.iter().enumerate() {
            if !check_file_sd_name(name) {
                return Err((
                    fp.key("files").index(k),
                    format!("path name {name:?} is not valid for file discovery"),
                ));
            }
        }
    }
    Ok(())
}

fn check_label_names(labels: &BTreeMap<String, String>, p: &Path_) -> Result<(), (Path_, String)> {
    for name in labels.keys() {
        if !is_valid_label_name(name) {
            return Err((p.key(name), format!("{name:?} is not a valid label name")));
        }
    }
    Ok(())
}

/// An owned path into the document, for locating validation errors.
#[derive(Clone, Debug, Default)]
struct Path_(Vec<OwnedSeg>);

#[derive(Clone, Debug)]
enum OwnedSeg {
    Key(String),
    Index(usize),
}

impl Path_ {
    fn root() -> Self {
        Path_(Vec::new())
    }
    fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(OwnedSeg::Key(k.to_string()));
        p
    }
    fn keys(&self, ks: &[&str]) -> Self {
        ks.iter().fold(self.clone(), |p, k| p.key(k))
    }
    fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(OwnedSeg::Index(i));
        p
    }
    fn as_segs(&self) -> Vec<Seg<'_>> {
        self.0
            .iter()
            .map(|s| match s {
                OwnedSeg::Key(k) => Seg::Key(k),
                OwnedSeg::Index(i) => Seg::Index(*i),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
