//! (head side; see lib.rs) chunkenc
