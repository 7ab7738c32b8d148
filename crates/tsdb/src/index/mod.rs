//! The block `index` file, format v2 of Prometheus 2.x: symbol table, series
//! (16-byte aligned, ID = offset / 16) with label refs and delta-encoded
//! chunk metas, label indices, postings lists, the label and postings offset
//! tables and the TOC, each section with its CRC32-Castagnoli.
//!
//! `IndexWriter` streams a sorted series set to disk; `IndexReader` maps the
//! file, validates header, TOC and table CRCs at open, and checks each series
//! and postings list CRC on read. It never panics on bytes and allocates at
//! most in proportion to the file. Postings set algebra lives in `postings`.

mod postings;
mod reader;
mod writer;

pub use postings::{intersect, intersect_many, merge_many, subtract, Postings};
pub use reader::{IndexReader, SeriesEntry};
pub use writer::IndexWriter;

/// Magic number at the start of an index file.
pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
/// The index format version Vigil writes (and the only one it reads).
pub const INDEX_FORMAT_V2: u8 = 2;
/// Name of the index file in a block directory.
pub const INDEX_FILENAME: &str = "index";
/// Series entries start at multiples of this, so that a 32-bit series ID
/// (offset / 16) addresses 64 GiB.
pub const SERIES_ALIGN: u64 = 16;
/// Size of the TOC at the end of the file: six 8-byte offsets and a CRC.
pub const TOC_LEN: usize = 6 * 8 + 4;

/// Table of contents: where each section starts (0 = absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

#[cfg(test)]
mod tests;
