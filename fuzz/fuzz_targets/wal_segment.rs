#![no_main]
//! cargo-fuzz target: see `vigil_tsdb::fuzz` and tests/fuzz_decoders.rs.

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch dir")).path()
}

fuzz_target!(|data: &[u8]| {
    let _ = vigil_tsdb::fuzz::wal_segment(dir(), data);
});
