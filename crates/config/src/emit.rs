//! The effective configuration as YAML, shaped like Prometheus's
//! `/api/v1/status/config`: Go's field order, `omitempty` where Go has it,
//! defaults filled in, secrets as `<secret>`, URL passwords redacted.

use crate::http::HttpClientConfig;
use crate::scrape::ScrapeProtocol;
use crate::types::{ByteSize, Duration, Secret, Url};
use crate::{Config, FileSdConfig, StaticConfig};
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;
use vigil_model::relabel::RelabelConfig;

/// An ordered mapping under construction.
#[derive(Default)]
struct M(Mapping);

impl M {
    fn put(&mut self, k: &str, v: impl Into<Value>) -> &mut Self {
        self.0.insert(Value::String(k.to_string()), v.into());
        self
    }
    fn str_ne(&mut self, k: &str, v: &str) -> &mut Self {
        if !v.is_empty() {
            self.put(k, v);
        }
        self
    }
    fn secret_ne(&mut self, k: &str, v: &Secret) -> &mut Self {
        if !v.is_empty() {
            self.put(k, Secret::REDACTED);
        }
        self
    }
    fn bool_true(&mut self, k: &str, v: bool) -> &mut Self {
        if v {
            self.put(k, true);
        }
        self
    }
    fn dur_nz(&mut self, k: &str, d: Duration) -> &mut Self {
        if !d.is_zero() {
            self.put(k, d.to_string());
        }
        self
    }
    fn num_nz(&mut self, k: &str, n: u64) -> &mut Self {
        if n != 0 {
            self.put(k, n);
        }
        self
    }
    fn bytes_nz(&mut self, k: &str, b: ByteSize) -> &mut Self {
        if b.0 != 0 {
            self.put(k, b.to_string());
        }
        self
    }
    fn map_ne(&mut self, k: &str, m: &BTreeMap<String, String>) -> &mut Self {
        if !m.is_empty() {
            self.put(k, string_map(m));
        }
        self
    }
    fn seq_ne(&mut self, k: &str, items: Vec<Value>) -> &mut Self {
        if !items.is_empty() {
            self.put(k, Value::Sequence(items));
        }
        self
    }
    fn done(self) -> Value {
        Value::Mapping(self.0)
    }
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    let mut out = Mapping::new();
    for (k, v) in m {
        out.insert(Value::String(k.clone()), Value::String(v.clone()));
    }
    Value::Mapping(out)
}

fn strings(v: &[String]) -> Value {
    Value::Sequence(v.iter().map(|s| Value::String(s.clone())).collect())
}

fn protocols(ps: &[ScrapeProtocol]) -> Value {
    Value::Sequence(
        ps.iter()
            .map(|p| Value::String(p.as_str().into()))
            .collect(),
    )
}

pub(crate) fn to_yaml(c: &Config) -> String {
    let mut m = M::default();
    m.put("global", global(c));
    let a = &c.alerting;
    if !a.alert_relabel_configs.is_empty() || !a.alertmanagers.is_empty() {
        let mut am = M::default();
        am.seq_ne("alert_relabel_configs", relabels(&a.alert_relabel_configs));
        am.seq_ne(
            "alertmanagers",
            a.alertmanagers
                .iter()
                .map(|x| {
                    let mut e = M::default();
                    http(&mut e, &x.http_client);
                    e.str_ne("scheme", &x.scheme)
                        .str_ne("path_prefix", &x.path_prefix)
                        .dur_nz("timeout", x.timeout)
                        .put("api_version", x.api_version.as_str());
                    e.seq_ne("relabel_configs", relabels(&x.relabel_configs));
                    e.seq_ne("alert_relabel_configs", relabels(&x.alert_relabel_configs));
                    sd(&mut e, &x.file_sd_configs, &x.static_configs);
                    e.done()
                })
                .collect(),
        );
        m.put("alerting", am.done());
    }
    if !c.rule_files.is_empty() {
        m.put("rule_files", strings(&c.rule_files));
    }
    if !c.scrape_config_files.is_empty() {
        m.put("scrape_config_files", strings(&c.scrape_config_files));
    }
    m.seq_ne(
        "scrape_configs",
        c.scrape_configs.iter().map(scrape).collect(),
    );
    let st = &c.storage;
    if st.tsdb.is_some() || st.exemplars.is_some() {
        let mut s = M::default();
        if let Some(t) = &st.tsdb {
            let mut tm = M::default();
            tm.dur_nz("out_of_order_time_window", t.out_of_order_time_window);
            s.put("tsdb", tm.done());
        }
        if let Some(e) = &st.exemplars {
            let mut em = M::default();
            em.put("max_exemplars", e.max_exemplars);
            s.put("exemplars", em.done());
        }
        m.put("storage", s.done());
    }
    m.seq_ne(
        "remote_write",
        c.remote_write
            .iter()
            .map(|r| {
                let mut e = remote_endpoint(r.url.as_ref(), r.remote_timeout, &r.headers);
                e.seq_ne("write_relabel_configs", relabels(&r.write_relabel_configs));
                e.str_ne("name", &r.name)
                    .bool_true("send_exemplars", r.send_exemplars)
                    .bool_true("send_native_histograms", r.send_native_histograms);
                http(&mut e, &r.http_client);
                let q = &r.queue_config;
                let mut qm = M::default();
                qm.put("capacity", q.capacity)
                    .put("max_shards", q.max_shards)
                    .put("min_shards", q.min_shards)
                    .put("max_samples_per_send", q.max_samples_per_send)
                    .dur_nz("batch_send_deadline", q.batch_send_deadline)
                    .dur_nz("min_backoff", q.min_backoff)
                    .dur_nz("max_backoff", q.max_backoff)
                    .bool_true("retry_on_http_429", q.retry_on_http_429)
                    .dur_nz("sample_age_limit", q.sample_age_limit);
                e.put("queue_config", qm.done());
                let md = &r.metadata_config;
                let mut mm = M::default();
                mm.put("send", md.send)
                    .put("send_interval", md.send_interval.to_string())
                    .put("max_samples_per_send", md.max_samples_per_send);
                e.put("metadata_config", mm.done());
                e.done()
            })
            .collect(),
    );
    m.seq_ne(
        "remote_read",
        c.remote_read
            .iter()
            .map(|r| {
                let mut e = remote_endpoint(r.url.as_ref(), r.remote_timeout, &r.headers);
                e.bool_true("read_recent", r.read_recent)
                    .str_ne("name", &r.name);
                http(&mut e, &r.http_client);
                e.map_ne("required_matchers", &r.required_matchers)
                    .bool_true("filter_external_labels", r.filter_external_labels);
                e.done()
            })
            .collect(),
    );
    serde_yaml_ng::to_string(&m.done())
        .unwrap_or_else(|e| format!("# error rendering config: {e}\n"))
}

/// The members remote write and remote read configurations start with.
fn remote_endpoint(url: Option<&Url>, timeout: Duration, headers: &BTreeMap<String, String>) -> M {
    let mut e = M::default();
    if let Some(u) = url {
        e.put("url", u.redacted());
    }
    e.dur_nz("remote_timeout", timeout)
        .map_ne("headers", headers);
    e
}

fn global(c: &Config) -> Value {
    let g = &c.global;
    let mut m = M::default();
    m.dur_nz("scrape_interval", g.scrape_interval)
        .dur_nz("scrape_timeout", g.scrape_timeout);
    m.put("scrape_protocols", protocols(g.scrape_protocols()));
    m.dur_nz("evaluation_interval", g.evaluation_interval)
        .dur_nz("rule_query_offset", g.rule_query_offset)
        .str_ne("query_log_file", &g.query_log_file)
        .map_ne("external_labels", &g.external_labels)
        .bytes_nz("body_size_limit", g.body_size_limit)
        .num_nz("sample_limit", g.sample_limit)
        .num_nz("target_limit", g.target_limit)
        .num_nz("label_limit", g.label_limit)
        .num_nz("label_name_length_limit", g.label_name_length_limit)
        .num_nz("label_value_length_limit", g.label_value_length_limit)
        .num_nz("keep_dropped_targets", g.keep_dropped_targets);
    m.done()
}

fn scrape(s: &crate::ScrapeConfig) -> Value {
    let mut m = M::default();
    m.put("job_name", s.job_name.as_str())
        .bool_true("honor_labels", s.honor_labels)
        .put("honor_timestamps", s.honor_timestamps)
        .put("track_timestamps_staleness", s.track_timestamps_staleness);
    if !s.params.is_empty() {
        let mut p = Mapping::new();
        for (k, v) in &s.params {
            p.insert(Value::String(k.clone()), strings(v));
        }
        m.put("params", Value::Mapping(p));
    }
    m.dur_nz("scrape_interval", s.scrape_interval)
        .dur_nz("scrape_timeout", s.scrape_timeout)
        .put("scrape_protocols", protocols(s.scrape_protocols()))
        .bool_true("scrape_classic_histograms", s.scrape_classic_histograms)
        .str_ne("metrics_path", &s.metrics_path)
        .str_ne("scheme", &s.scheme)
        .put("enable_compression", s.enable_compression)
        .bytes_nz("body_size_limit", s.body_size_limit)
        .num_nz("sample_limit", s.sample_limit)
        .num_nz("target_limit", s.target_limit)
        .num_nz("label_limit", s.label_limit)
        .num_nz("label_name_length_limit", s.label_name_length_limit)
        .num_nz("label_value_length_limit", s.label_value_length_limit)
        .num_nz(
            "native_histogram_bucket_limit",
            s.native_histogram_bucket_limit,
        );
    if s.native_histogram_min_bucket_factor != 0.0 {
        m.put(
            "native_histogram_min_bucket_factor",
            s.native_histogram_min_bucket_factor,
        );
    }
    m.num_nz("keep_dropped_targets", s.keep_dropped_targets);
    http(&mut m, &s.http_client);
    m.seq_ne("relabel_configs", relabels(&s.relabel_configs));
    m.seq_ne(
        "metric_relabel_configs",
        relabels(&s.metric_relabel_configs),
    );
    sd(&mut m, &s.file_sd_configs, &s.static_configs);
    m.done()
}

/// Service discovery blocks come last, file before static (Go's order).
fn sd(m: &mut M, files: &[FileSdConfig], statics: &[StaticConfig]) {
    m.seq_ne(
        "file_sd_configs",
        files
            .iter()
            .map(|f| {
                let mut e = M::default();
                e.put("files", strings(&f.files))
                    .put("refresh_interval", f.refresh_interval.to_string());
                e.done()
            })
            .collect(),
    );
    m.seq_ne(
        "static_configs",
        statics
            .iter()
            .map(|g| {
                let mut e = M::default();
                e.put("targets", strings(&g.targets))
                    .map_ne("labels", &g.labels);
                e.done()
            })
            .collect(),
    );
}

fn http(m: &mut M, h: &HttpClientConfig) {
    if let Some(b) = &h.basic_auth {
        let mut e = M::default();
        e.str_ne("username", &b.username)
            .str_ne("username_file", &b.username_file)
            .secret_ne("password", &b.password)
            .str_ne("password_file", &b.password_file);
        m.put("basic_auth", e.done());
    }
    if let Some(a) = &h.authorization {
        let mut e = M::default();
        e.str_ne("type", &a.kind)
            .secret_ne("credentials", &a.credentials)
            .str_ne("credentials_file", &a.credentials_file);
        m.put("authorization", e.done());
    }
    m.secret_ne("bearer_token", &h.bearer_token)
        .str_ne("bearer_token_file", &h.bearer_token_file);
    let t = &h.tls_config;
    let mut e = M::default();
    e.str_ne("ca", &t.ca)
        .str_ne("cert", &t.cert)
        .secret_ne("key", &t.key)
        .str_ne("ca_file", &t.ca_file)
        .str_ne("cert_file", &t.cert_file)
        .str_ne("key_file", &t.key_file)
        .str_ne("server_name", &t.server_name);
    if !e.0.is_empty()
        || t.insecure_skip_verify
        || t.min_version.is_some()
        || t.max_version.is_some()
    {
        e.put("insecure_skip_verify", t.insecure_skip_verify);
        if let Some(v) = t.min_version {
            e.put("min_version", v.as_str());
        }
        if let Some(v) = t.max_version {
            e.put("max_version", v.as_str());
        }
        m.put("tls_config", e.done());
    }
    m.put("follow_redirects", h.follow_redirects)
        .put("enable_http2", h.enable_http2);
    if let Some(u) = &h.proxy_url {
        m.put("proxy_url", u.redacted());
    }
    m.str_ne("no_proxy", &h.no_proxy)
        .bool_true("proxy_from_environment", h.proxy_from_environment);
}

fn relabels(rs: &[RelabelConfig]) -> Vec<Value> {
    rs.iter()
        .map(|r| {
            let mut e = M::default();
            if !r.source_labels().is_empty() {
                e.put("source_labels", strings(r.source_labels()));
            }
            e.str_ne("separator", r.separator());
            // Go omits the default regex (`Regexp.IsZero`), which also keeps
            // keepequal/dropequal rules reloadable.
            if r.regex().as_str() != vigil_model::relabel::DEFAULT_REGEX {
                e.put("regex", r.regex().as_str());
            }
            e.num_nz("modulus", r.modulus())
                .str_ne("target_label", r.target_label())
                .str_ne("replacement", r.replacement())
                .put("action", r.action().as_str());
            e.done()
        })
        .collect()
}
