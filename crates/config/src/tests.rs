use super::*;

const ISSUE_EXAMPLE: &str = "global:
  scrape_interval: 15s
  evaluation_interval: 15s
alerting:
  alertmanagers:
    - static_configs:
        - targets:
          # - alertmanager:9093
rule_files:
  # - \"first_rules.yml\"
scrape_configs:
  - job_name: 'node monitoring'
    static_configs:
      - targets: ['monitoring:9100']
      - targets: ['monitoring:9256']
";

fn load(text: &str) -> Config {
    match Config::from_yaml(text, "prometheus.yml") {
        Ok(c) => c,
        Err(e) => panic!("should load: {e}"),
    }
}

fn fails(text: &str) -> (usize, String) {
    match Config::from_yaml(text, "p.yml") {
        Ok(c) => panic!("should fail: {c:?}"),
        Err(ConfigError::Invalid { line, message, .. }) => (line, message),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn issue_example_loads_with_defaults() {
    let c = load(ISSUE_EXAMPLE);
    assert_eq!(c.global.scrape_interval, Duration::from_secs(15));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(c.global.evaluation_interval, Duration::from_secs(15));
    assert_eq!(c.alerting.alertmanagers.len(), 1);
    let am = &c.alerting.alertmanagers[0];
    assert_eq!(am.static_configs.len(), 1);
    assert!(am.static_configs[0].targets.is_empty());
    assert_eq!(am.timeout, Duration::from_secs(10));
    assert_eq!(am.api_version, AlertmanagerApiVersion::V2);
    assert!(c.rule_files.is_empty());
    let job = &c.scrape_configs[0];
    assert_eq!(job.job_name, "node monitoring");
    assert_eq!(job.scrape_interval, Duration::from_secs(15));
    assert_eq!(job.scrape_timeout, Duration::from_secs(10));
    assert_eq!(job.metrics_path, "/metrics");
    assert_eq!(job.scheme, "http");
    assert!(job.honor_timestamps && !job.honor_labels);
    assert!(job.http_client.follow_redirects && job.http_client.enable_http2);
    let targets: Vec<&str> = job
        .static_configs
        .iter()
        .flat_map(|g| g.targets.iter().map(String::as_str))
        .collect();
    assert_eq!(targets, ["monitoring:9100", "monitoring:9256"]);
}

#[test]
fn minimal_and_empty_files_load() {
    let c = load("scrape_configs: [{job_name: x, static_configs: [{targets: [localhost:9090]}]}]");
    assert_eq!(c.scrape_configs[0].scrape_interval, DEFAULT_SCRAPE_INTERVAL);
    assert_eq!(c.scrape_configs[0].scrape_timeout, DEFAULT_SCRAPE_TIMEOUT);
    let empty = load("");
    assert_eq!(empty.global.scrape_interval, DEFAULT_SCRAPE_INTERVAL);
    assert_eq!(
        empty.global.evaluation_interval,
        DEFAULT_EVALUATION_INTERVAL
    );
    let null_global = load("global:\n");
    assert_eq!(null_global.global.scrape_timeout, DEFAULT_SCRAPE_TIMEOUT);
}

#[test]
fn timeout_inheritance_follows_prometheus() {
    // Global timeout above a job's interval is clipped to the interval.
    let c = load("global: {scrape_timeout: 20s, scrape_interval: 30s}\nscrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n  - job_name: b\n");
    assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(5));
    assert_eq!(c.scrape_configs[1].scrape_interval, Duration::from_secs(30));
    assert_eq!(c.scrape_configs[1].scrape_timeout, Duration::from_secs(20));
    // Only the global interval set: the global timeout defaults to min(10s, it).
    let c = load("global: {scrape_interval: 5s}\n");
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
    // Limits inherit from global when unset.
    let c = load("global: {sample_limit: 100, body_size_limit: 1MB}\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    sample_limit: 5\n");
    assert_eq!(c.scrape_configs[0].sample_limit, 100);
    assert_eq!(c.scrape_configs[0].body_size_limit, ByteSize(1 << 20));
    assert_eq!(c.scrape_configs[1].sample_limit, 5);
}

#[test]
fn semantic_errors_point_at_the_key() {
    assert_eq!(
        fails(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n"
        ),
        (
            4,
            "scrape timeout greater than scrape interval for scrape config with job name \"a\""
                .into()
        )
    );
    assert_eq!(
        fails("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n"),
        (
            3,
            "global scrape timeout greater than scrape interval".into()
        )
    );
    assert_eq!(
        fails("scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: a\n"),
        (
            4,
            "found multiple scrape configs with job name \"a\"".into()
        )
    );
    assert_eq!(
        fails("global:\n  external_labels:\n    ok: 1\n    bad-name: 2\n"),
        (4, "\"bad-name\" is not a valid label name".into())
    );
    assert_eq!(
        fails("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets:\n          - ok:1\n          - http://x:1/metrics\n"),
        (6, "\"http://x:1/metrics\" is not a valid hostname".into())
    );
    assert_eq!(
        fails("scrape_configs:\n  - static_configs: []\n"),
        (2, "job_name is empty".into())
    );
    assert_eq!(
        fails("rule_files:\n  - 'a/*/b.yml'\n"),
        (2, "invalid rule file path \"a/*/b.yml\"".into())
    );
    assert_eq!(
        fails("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [x.txt]\n"),
        (
            4,
            "path name \"x.txt\" is not valid for file discovery".into()
        )
    );
    assert_eq!(
        fails("remote_write:\n  - name: a\n"),
        (2, "url for remote_write is empty".into())
    );
    assert_eq!(
        fails("remote_write:\n  - url: http://x/\n    headers:\n      User-Agent: me\n"),
        (
            4,
            "User-Agent is a reserved header. It must not be changed".into()
        )
    );
    assert_eq!(
        fails("scrape_configs:\n  - job_name: a\n    bearer_token: x\n    basic_auth: {username: u}\n"),
        (4, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into())
    );
}

#[test]
fn relabel_errors_point_at_the_field() {
    let doc = "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [x]\n        regex: '(['\n        target_label: y\n";
    let (line, msg) = fails(doc);
    assert_eq!(line, 5);
    assert!(msg.starts_with("error parsing regexp:"), "{msg}");
    let doc = "scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - source_labels: [x]\n        action: explode\n";
    assert_eq!(fails(doc), (5, "unknown relabel action \"explode\"".into()));
    let doc = "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [x]\n        action: hashmod\n        target_label: t\n";
    assert_eq!(
        fails(doc),
        (
            4,
            "relabel configuration for hashmod requires non-zero modulus".into()
        )
    );
    let doc = "alerting:\n  alert_relabel_configs:\n    - regex: x\n      source_labels: [a]\n";
    assert_eq!(
        fails(doc),
        (
            3,
            "relabel configuration for replace action requires 'target_label' value".into()
        )
    );
}

#[test]
fn syntax_and_type_errors_have_lines() {
    let (line, msg) = fails("global:\n  scrape_interval: 15s\n  scrape_intervall: 1m\n");
    assert_eq!(line, 3);
    assert_eq!(msg, "field scrape_intervall not found in type GlobalConfig");
    let (line, msg) = fails("scrape_configs:\n  - job_name: a\n    scrape_interval: 1x\n");
    assert_eq!(
        (line, msg.as_str()),
        (3, "not a valid duration string: \"1x\"")
    );
    let (line, msg) = fails("scrape_configs:\n  - job_name: a\n    honor_labels: maybe\n");
    assert_eq!(line, 3);
    assert!(msg.contains("bool"), "{msg}");
    // An unknown key among the inlined HTTP options names the job's section.
    let (line, msg) =
        fails("scrape_configs:\n  - job_name: a\n    tls_config:\n      insecure: true\n");
    assert_eq!(
        (line, msg.as_str()),
        (4, "field insecure not found in type TlsConfig")
    );
    let (line, msg) = fails("scrape_configs:\n  - job_name: a\n    not_a_key: 1\n");
    assert_eq!(
        (line, msg.as_str()),
        (3, "field not_a_key not found in type ScrapeConfig")
    );
    let (line, _) = fails("scrape_configs:\n  - job_name: a\n   bad_indent: 1\n");
    assert!(line >= 2);
}

#[test]
fn bearer_token_becomes_authorization() {
    let c = load("scrape_configs:\n  - job_name: a\n    bearer_token: s3cr3t\n");
    let a = c.scrape_configs[0]
        .http_client
        .authorization
        .as_ref()
        .unwrap();
    assert_eq!(a.kind, "Bearer");
    assert_eq!(a.credentials.expose(), "s3cr3t");
    assert!(c.scrape_configs[0].http_client.bearer_token.is_empty());
}

#[test]
fn relative_paths_join_the_config_dir() {
    let c = Config::from_yaml(
        "rule_files: ['rules/*.yml', '/abs/x.yml']\nscrape_configs:\n  - job_name: a\n    tls_config: {ca_file: ca.pem}\n    file_sd_configs: [{files: [sd/*.json]}]\n",
        "/etc/vigil/prometheus.yml",
    )
    .unwrap();
    assert_eq!(c.rule_files, ["/etc/vigil/rules/*.yml", "/abs/x.yml"]);
    let s = &c.scrape_configs[0];
    assert_eq!(s.http_client.tls_config.ca_file, "/etc/vigil/ca.pem");
    assert_eq!(s.file_sd_configs[0].files, ["/etc/vigil/sd/*.json"]);
    assert_eq!(
        s.file_sd_configs[0].refresh_interval,
        DEFAULT_FILE_SD_REFRESH
    );
}

#[test]
fn merge_keys_and_anchors() {
    let c = load("scrape_configs:\n  - job_name: a\n    <<: &common {scrape_interval: 30s, metrics_path: /m}\n  - <<: *common\n    job_name: b\n    metrics_path: /b\n");
    assert_eq!(c.scrape_configs[1].scrape_interval, Duration::from_secs(30));
    assert_eq!(c.scrape_configs[0].metrics_path, "/m");
    assert_eq!(c.scrape_configs[1].metrics_path, "/b");
}

#[test]
fn accept_header_matches_prometheus() {
    let c = load("scrape_configs: [{job_name: x}]");
    assert_eq!(
        c.scrape_configs[0].accept_header(),
        "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    );
}

#[test]
fn to_yaml_matches_prometheus_shape() {
    let c = load(ISSUE_EXAMPLE);
    let want = "global:
  scrape_interval: 15s
  scrape_timeout: 10s
  scrape_protocols:
  - OpenMetricsText1.0.0
  - OpenMetricsText0.0.1
  - PrometheusText0.0.4
  evaluation_interval: 15s
alerting:
  alertmanagers:
  - follow_redirects: true
    enable_http2: true
    scheme: http
    timeout: 10s
    api_version: v2
    static_configs:
    - targets: []
scrape_configs:
- job_name: node monitoring
  honor_timestamps: true
  track_timestamps_staleness: false
  scrape_interval: 15s
  scrape_timeout: 10s
  scrape_protocols:
  - OpenMetricsText1.0.0
  - OpenMetricsText0.0.1
  - PrometheusText0.0.4
  metrics_path: /metrics
  scheme: http
  enable_compression: true
  follow_redirects: true
  enable_http2: true
  static_configs:
  - targets:
    - monitoring:9100
  - targets:
    - monitoring:9256
";
    assert_eq!(c.to_yaml(), want);
}

#[test]
fn to_yaml_hides_secrets_and_round_trips() {
    let text = "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: hunter2}\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: instance\nremote_write:\n  - url: https://u:pw@remote.example/api/v1/write\n    queue_config: {max_shards: 10}\n";
    let c = load(text);
    let out = c.to_yaml();
    assert!(!out.contains("hunter2") && !out.contains(":pw@"), "{out}");
    assert!(out.contains("password: <secret>"), "{out}");
    assert!(
        out.contains("max_shards: 10") && out.contains("capacity: 10000"),
        "{out}"
    );
    // The effective config is itself a valid config describing the same jobs.
    let again = load(&out);
    assert_eq!(
        again.scrape_configs[0].relabel_configs,
        c.scrape_configs[0].relabel_configs
    );
    assert_eq!(
        again.remote_write[0].queue_config,
        c.remote_write[0].queue_config
    );
}

#[test]
fn scrape_config_files_are_read_and_checked() {
    let dir = std::env::temp_dir().join(format!("vigil-scf-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::write(
        dir.join("jobs/a.yml"),
        "scrape_configs:\n  - job_name: extra\n    static_configs: [{targets: ['h:1']}]\n",
    )
    .unwrap();
    let main = dir.join("prometheus.yml");
    std::fs::write(
        &main,
        "global:\n  scrape_interval: 7s\nscrape_config_files: ['jobs/*.yml']\nscrape_configs:\n  - job_name: main\n",
    )
    .unwrap();
    let cfg = Config::load(&main).unwrap();
    let extra = cfg
        .scrape_config("extra")
        .expect("job from scrape_config_files");
    assert_eq!(
        extra.scrape_interval,
        Duration::from_secs(7),
        "inherits global"
    );

    // A duplicate job name in a file is an error naming that file and line.
    std::fs::write(
        dir.join("jobs/b.yml"),
        "scrape_configs:\n  - job_name: x\n  - job_name: main\n",
    )
    .unwrap();
    let err = Config::load(&main).unwrap_err().to_string();
    assert!(err.contains("b.yml:3:"), "{err}");
    assert!(err.contains("found multiple scrape configs"), "{err}");

    // Unknown keys in a file are rejected too.
    std::fs::write(dir.join("jobs/b.yml"), "scrape_configs: []\nbogus: 1\n").unwrap();
    let err = Config::load(&main).unwrap_err().to_string();
    assert!(err.contains("b.yml:2:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
