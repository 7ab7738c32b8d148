//! Recording and alerting rules for Vigil: rule files, Go templates, rule
//! evaluation, the alert state machine, the Alertmanager notifier and
//! `promtool test rules`-style unit tests.
//!
//! This crate reads series only through `vigil_model::storage::Queryable`
//! (via the PromQL engine) and writes only through `Appender`; it never
//! touches TSDB files, and it knows nothing of the HTTP API: the status
//! structs it exposes are plain data the binary adapts.

pub mod check;
pub mod group;
pub mod manager;
pub mod memstore;
pub mod notifier;
pub mod rule;
pub mod rulefmt;
pub mod status;
pub mod template;
pub mod unittest;
mod xxhash;
mod yamlpos;
