//! (block side; see lib.rs) db

pub mod merge;
