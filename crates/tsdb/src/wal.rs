//! (head side; see lib.rs) wal
