//! Vigil's time-series database: head block, write-ahead log, memory-mapped
//! head chunks, immutable blocks, compaction and retention, all in
//! Prometheus 2.x's on-disk format so a Prometheus data dir and Vigil's are
//! interchangeable.
//!
//! It implements `vigil_model::storage` and knows nothing of PromQL, scraping
//! or HTTP. Invariants: a sample is in the WAL (handed to the kernel) before
//! `commit` returns; a chunk or block, once written, is never modified.

// Head side: in-memory series, WAL, chunks_head/.
pub mod chunkenc;
pub mod head;
pub mod head_chunks;
pub mod wal;

// Block side: persistent blocks, compaction, the DB that ties it together.
pub mod block;
pub mod chunks;
pub mod compact;
pub mod db;
pub mod disk_full;
pub mod index;
pub mod meta;
pub mod tombstones;
pub mod tools;

mod binfmt;

#[doc(hidden)]
pub mod fuzz;
