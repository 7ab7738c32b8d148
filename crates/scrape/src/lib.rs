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
pub mod scrape_loop;
pub mod testing;

pub use cache::MetricMetadata;
pub use scrape_loop::{AppendStats, LoopOptions, ScrapeError, ScrapeLoop, ScrapeOutcome};
