//! Recording and alerting rules for Vigil: rule files, Go templates, rule
//! evaluation, the alert state machine, the Alertmanager notifier and
//! `promtool test rules`-style unit tests.
//!
//! This crate reads series only through `vigil_model::storage::Queryable`
//! (via the PromQL engine) and writes only through `Appender`; it knows
//! nothing of the HTTP API: the status structs it exposes are plain data
//! the binary adapts. (`vigil test rules` alone opens a scratch TSDB head.)
//!
//! Entry points: [`manager::RuleManager`] (run rule groups),
//! [`notifier::Notifier`] (send alerts), [`check::check_rules`]
//! (`vigil check rules`), [`unittest::test_rules`] (`vigil test rules`),
//! [`rulefmt::load_rule_file`] and [`template::Template`].

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
