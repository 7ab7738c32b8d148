//! The `vigil promql` and `vigil query` subcommands: PromQL and metadata
//! queries from a terminal, against a running server's HTTP API or (with
//! `--data`) an engine over a TSDB directory opened read-only by the caller.
//!
//! This module only talks HTTP/JSON and renders results; it never opens
//! storage itself (the binary passes an opener for `--data`).
//! Exit codes: 0 ok, 1 query error, 2 connection (or setup) error.

pub mod chart;
pub mod http;
pub mod promql;
pub mod query;
pub mod render;
pub mod result;

// The binary uses these; the stand-alone test target only some.
#[allow(unused_imports)]
pub use promql::{run_promql, LocalOpener, PromqlArgs};
#[allow(unused_imports)]
pub use query::{run_query, MetaRange, QueryArgs, QueryCommand};

/// Success.
pub const EXIT_OK: i32 = 0;
/// The server (or engine) rejected or failed the query.
pub const EXIT_QUERY_ERROR: i32 = 1;
/// Could not reach the server or open the data directory.
pub const EXIT_CONNECTION_ERROR: i32 = 2;

/// Output format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned table (instant results) or chart (range results).
    Table,
    /// Terminal chart (range results).
    Chart,
    /// The API's `data` object as JSON.
    Json,
    /// Comma-separated values: series,timestamp,value.
    Csv,
}
