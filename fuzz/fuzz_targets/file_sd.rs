#![no_main]
//! cargo-fuzz target: see `vigil_tsdb::fuzz` and tests/fuzz_decoders.rs.

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_scrape::discovery::file::parse_file(Path::new("/fuzz/t.json"), data);
    let _ = vigil_scrape::discovery::file::parse_file(Path::new("/fuzz/t.yml"), data);
});
