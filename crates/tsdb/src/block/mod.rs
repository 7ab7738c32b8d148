//! (block side; see lib.rs) block
