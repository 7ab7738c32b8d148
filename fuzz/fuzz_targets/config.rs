#![no_main]
//! cargo-fuzz target: see `vigil_tsdb::fuzz` and tests/fuzz_decoders.rs.

use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = vigil_config::Config::from_yaml(s, "/fuzz/prometheus.yml");
    }
});
