//! (block side; see lib.rs) meta
