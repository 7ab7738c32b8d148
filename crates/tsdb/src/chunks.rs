//! (block side; see lib.rs) chunks
