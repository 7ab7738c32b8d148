//! (head side; see lib.rs) head_chunks
