//! (block side; see lib.rs) compact
