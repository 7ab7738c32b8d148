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
