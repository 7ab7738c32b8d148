//! `vigil check config`: load a file as Prometheus would, then check what
//! promtool checks beyond the schema (referenced files exist), and report.

use crate::yaml::Seg;
use crate::{Config, ConfigError};
use std::fmt;
use std::path::{Path, PathBuf};

/// What a successful check found; `Display` prints promtool's lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSummary {
    pub file: PathBuf,
    /// Rule files the `rule_files` patterns matched, for the caller to check.
    pub rule_files: Vec<PathBuf>,
    pub scrape_configs: usize,
    pub static_targets: usize,
    pub alertmanagers: usize,
    pub remote_write: usize,
    pub remote_read: usize,
    /// Non-fatal findings (e.g. a file_sd file that does not exist yet).
    pub warnings: Vec<String>,
}

impl fmt::Display for CheckSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Checking {}", self.file.display())?;
        for w in &self.warnings {
            writeln!(f, "  WARNING: {w}")?;
        }
        if !self.rule_files.is_empty() {
            writeln!(f, "  SUCCESS: {} rule files found", self.rule_files.len())?;
        }
        writeln!(
            f,
            " SUCCESS: {} is valid prometheus config file syntax",
            self.file.display()
        )?;
        write!(
            f,
            "  ({} scrape configs, {} static targets, {} alertmanagers, {} remote_write, {} remote_read)",
            self.scrape_configs,
            self.static_targets,
            self.alertmanagers,
            self.remote_write,
            self.remote_read
        )
    }
}

/// Loads `path` and checks it like `promtool check config` (without
/// checking the rule files' contents: see [`CheckSummary::rule_files`]).
pub fn check_config(path: impl AsRef<Path>) -> Result<CheckSummary, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let (cfg, root) = Config::parse_with_tree(&text, path)?;
    let fail = |segs: &[Seg<'_>], message: String| ConfigError::Invalid {
        file: path.to_path_buf(),
        line: root.line_of(segs),
        message,
    };
    let mut warnings = Vec::new();
    for (i, sc) in cfg.scrape_configs.iter().enumerate() {
        let job = [Seg::Key("scrape_configs"), Seg::Index(i)];
        for (what, file) in sc.http_client.referenced_files() {
            if let Err(e) = std::fs::metadata(file) {
                let key = match what {
                    "ca_file" | "cert_file" | "key_file" => {
                        vec![job[0], job[1], Seg::Key("tls_config"), Seg::Key(what)]
                    }
                    "password_file" | "username_file" => {
                        vec![job[0], job[1], Seg::Key("basic_auth"), Seg::Key(what)]
                    }
                    _ => job.to_vec(),
                };
                return Err(fail(&key, format!("error checking {what} {file:?}: {e}")));
            }
        }
        for f in sc.file_sd_configs.iter().flat_map(|c| c.files.iter()) {
            if crate::glob(f).is_empty() {
                warnings.push(format!(
                    "file {f:?} for file_sd in scrape job {:?} does not exist",
                    sc.job_name
                ));
            }
        }
    }
    for pat in &cfg.rule_files {
        if crate::glob(pat).is_empty() {
            warnings.push(format!("rule file pattern {pat:?} matches no file"));
        }
    }
    Ok(CheckSummary {
        file: path.to_path_buf(),
        rule_files: cfg.rule_files(),
        scrape_configs: cfg.scrape_configs.len(),
        static_targets: cfg
            .scrape_configs
            .iter()
            .flat_map(|s| s.static_configs.iter())
            .map(|g| g.targets.len())
            .sum(),
        alertmanagers: cfg.alerting.alertmanagers.len(),
        remote_write: cfg.remote_write.len(),
        remote_read: cfg.remote_read.len(),
        warnings,
    })
}
