//! (block side; see lib.rs) index
