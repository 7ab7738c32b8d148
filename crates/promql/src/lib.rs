//! PromQL for Vigil: the typed AST, the parser that builds it, the formatter
//! that prints it back, and the evaluator that answers instant and range
//! queries with Prometheus 2.53's exact semantics.
//!
//! This crate reads data only through `vigil_model::storage::Queryable`; it
//! never touches files, HTTP or JSON.

pub mod ast;
pub mod engine;
pub mod parser;
