//! (head side; see lib.rs) head
