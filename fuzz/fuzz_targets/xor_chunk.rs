#![no_main]
//! cargo-fuzz target: see `vigil_tsdb::fuzz` and tests/fuzz_decoders.rs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_tsdb::fuzz::xor_chunk(data);
});
