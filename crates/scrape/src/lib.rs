//! The pull side of Vigil: exposition parsing, scrape loops and scheduling,
//! service discovery (`static_configs`, `file_sd_configs`), target relabeling
//! and staleness markers.
//!
//! Samples leave this crate only through `vigil_model::storage::Appender`; it
//! never imports the TSDB, never serves HTTP and never reads `prometheus.yml`
//! itself (the binary hands it a parsed `vigil_config::Config`).

pub mod expfmt;

mod cache;
pub mod client;
pub mod discovery;
mod manager;
mod pool;
pub mod scrape_loop;
mod settings;
pub mod target;
pub mod testing;

pub use cache::MetricMetadata;
pub use manager::{ManagerError, ManagerOptions, MetadataEntry, ScrapeManager, TargetsSnapshot};
pub use pool::{ActiveTarget, DroppedTarget, TargetHealth, TargetMetadata};
pub use scrape_loop::{AppendStats, LoopOptions, ScrapeError, ScrapeLoop, ScrapeOutcome};
