//! (block side; see lib.rs) tombstones
