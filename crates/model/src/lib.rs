//! The shared vocabulary of Vigil: label sets, label matchers, samples and the
//! storage traits (`Appender`, `Queryable`) through which every other crate
//! talks to the TSDB.
//!
//! This crate owns no I/O, no threads and no formats: it must stay a leaf that
//! every other crate can depend on. The storage traits live here (as
//! Prometheus's `storage` package does) so that `promql`, `scrape` and `rules`
//! depend on the interface, never on the TSDB's files.

pub mod gofmt;
pub mod labels;
pub mod matcher;
pub mod relabel;
pub mod sample;
pub mod storage;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{is_stale_nan, Sample, STALE_NAN, STALE_NAN_BITS};
