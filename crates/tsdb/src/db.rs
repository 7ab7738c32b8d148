//! (block side; see lib.rs) db
