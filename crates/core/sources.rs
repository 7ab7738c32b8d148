//! Adapters from the components' own types to the web API's source traits.
//! The web crate never depends on scrape, tsdb or rules; these glue them.

use std::sync::Arc;
use vigil_scrape::ScrapeManager;
use vigil_web as web;

/// `/api/v1/targets`, `/api/v1/targets/metadata`, `/api/v1/metadata`.
pub struct ScrapeTargets(pub Arc<ScrapeManager>);

fn health(h: vigil_scrape::TargetHealth) -> web::TargetHealth {
    match h {
        vigil_scrape::TargetHealth::Up => web::TargetHealth::Up,
        vigil_scrape::TargetHealth::Down => web::TargetHealth::Down,
        vigil_scrape::TargetHealth::Unknown => web::TargetHealth::Unknown,
    }
}

impl web::TargetsSource for ScrapeTargets {
    fn active_targets(&self) -> Vec<web::ActiveTarget> {
        self.0
            .targets()
            .active
            .into_iter()
            .map(|t| web::ActiveTarget {
                discovered_labels: t.discovered_labels,
                labels: t.labels,
                scrape_pool: t.scrape_pool,
                scrape_url: t.scrape_url,
                global_url: t.global_url,
                last_error: t.last_error,
                last_scrape: t.last_scrape,
                last_scrape_duration: t.last_scrape_duration,
                health: health(t.health),
                scrape_interval: t.scrape_interval,
                scrape_timeout: t.scrape_timeout,
            })
            .collect()
    }

    fn dropped_targets(&self) -> Vec<web::DroppedTarget> {
        self.0
            .targets()
            .dropped
            .into_iter()
            .map(|t| web::DroppedTarget {
                discovered_labels: t.discovered_labels,
                scrape_pool: t.scrape_pool,
            })
            .collect()
    }

    fn target_metadata(&self) -> Vec<(vigil_model::Labels, Vec<web::MetricMetadata>)> {
        self.0
            .target_metadata()
            .into_iter()
            .map(|tm| {
                let list = tm
                    .metadata
                    .iter()
                    .map(|m| web::MetricMetadata {
                        metric: m.metric.clone(),
                        kind: m.kind.as_str().to_string(),
                        help: m.help.clone(),
                        unit: m.unit.clone(),
                    })
                    .collect();
                (tm.target, list)
            })
            .collect()
    }
}

/// `/api/v1/rules`, `/api/v1/alerts`: the rule manager's status, moved field
/// by field into the web crate's types.
pub struct Rules(pub Arc<vigil_rules::manager::RuleManager>);

fn alert(a: vigil_rules::status::AlertStatus) -> web::Alert {
    web::Alert {
        labels: a.labels,
        annotations: a.annotations,
        state: a.state,
        active_at: a.active_at,
        keep_firing_since: a.keep_firing_since,
        value: a.value,
    }
}

fn rule(r: vigil_rules::status::RuleStatus) -> web::Rule {
    use vigil_rules::status::RuleStatus;
    match r {
        RuleStatus::Alerting(a) => web::Rule::Alerting(web::AlertingRule {
            state: a.state,
            name: a.name,
            query: a.query,
            duration: a.duration,
            keep_firing_for: a.keep_firing_for,
            labels: a.labels,
            annotations: a.annotations,
            alerts: a.alerts.into_iter().map(alert).collect(),
            health: a.health,
            last_error: a.last_error,
            evaluation_time: a.evaluation_time,
            last_evaluation: a.last_evaluation,
        }),
        RuleStatus::Recording(r) => web::Rule::Recording(web::RecordingRule {
            name: r.name,
            query: r.query,
            labels: r.labels,
            health: r.health,
            last_error: r.last_error,
            evaluation_time: r.evaluation_time,
            last_evaluation: r.last_evaluation,
        }),
    }
}

impl web::RulesSource for Rules {
    fn rule_groups(&self) -> Vec<web::RuleGroup> {
        self.0
            .rule_groups()
            .into_iter()
            .map(|g| web::RuleGroup {
                name: g.name,
                file: g.file,
                rules: g.rules.into_iter().map(rule).collect(),
                interval: g.interval,
                limit: g.limit,
                evaluation_time: g.evaluation_time,
                last_evaluation: g.last_evaluation,
            })
            .collect()
    }
}

/// `/api/v1/alertmanagers`.
pub struct Alertmanagers(pub Arc<vigil_rules::notifier::Notifier>);

impl web::AlertmanagersSource for Alertmanagers {
    fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        self.0.alertmanagers()
    }
}

/// `/api/v1/admin/tsdb/*`, `/api/v1/status/tsdb`, `/api/v1/status/walreplay`.
/// Built before the TSDB opens: replay progress answers at once, the rest
/// says "TSDB not ready" until the storage is set.
pub struct TsdbAdmin {
    pub storage: crate::storage::LateStorage,
    pub replay: Arc<vigil_tsdb::head::WalReplayStatus>,
}

impl TsdbAdmin {
    fn db(&self) -> Result<&vigil_tsdb::db::Db, String> {
        self.storage
            .get()
            .ok_or_else(|| "TSDB not ready".to_string())
    }
}

fn stats(list: Vec<vigil_tsdb::head::CardinalityStat>) -> Vec<web::TsdbStat> {
    list.into_iter()
        .map(|s| web::TsdbStat {
            name: s.name,
            value: s.value,
        })
        .collect()
}

impl web::TsdbAdmin for TsdbAdmin {
    fn delete_series(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[vigil_model::Matcher],
    ) -> Result<(), String> {
        self.db()?
            .delete(mint, maxt, matchers)
            .map_err(|e| e.to_string())
    }

    fn clean_tombstones(&self) -> Result<(), String> {
        self.db()?.clean_tombstones().map_err(|e| e.to_string())
    }

    fn snapshot(&self, dir: &std::path::Path, with_head: bool) -> Result<(), String> {
        self.db()?
            .snapshot(dir, with_head)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn stats(&self, limit: usize) -> Result<web::TsdbStats, String> {
        let c = self.db()?.head().cardinality(limit);
        Ok(web::TsdbStats {
            num_series: c.num_series,
            num_label_pairs: c.num_label_pairs as i64,
            chunk_count: c.chunk_count as i64,
            min_time: c.min_time,
            max_time: c.max_time,
            series_count_by_metric_name: stats(c.series_count_by_metric_name),
            label_value_count_by_label_name: stats(c.label_value_count_by_label_name),
            memory_in_bytes_by_label_name: stats(c.memory_in_bytes_by_label_name),
            series_count_by_label_value_pair: stats(c.series_count_by_label_value_pair),
        })
    }

    fn wal_replay_status(&self) -> web::WalReplayStatus {
        let p = self.replay.get();
        web::WalReplayStatus {
            min: p.min,
            max: p.max,
            current: p.current,
        }
    }
}
