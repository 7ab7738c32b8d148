//! Service discovery: turns `static_configs` and `file_sd_configs` into
//! target groups ([`TargetGroup`]). Providers only discover; relabeling,
//! target limits and scraping happen in the scrape pool they feed.
//!
//! `static` yields its groups once; `file` re-reads its files when the
//! watched directories change and every `refresh_interval`, keeping a file's
//! last good groups when it fails to parse.

pub mod file;
pub mod r#static;

pub use crate::target::TargetGroup;
