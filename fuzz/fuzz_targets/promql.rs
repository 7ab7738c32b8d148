#![no_main]
//! cargo-fuzz target: see `vigil_tsdb::fuzz` and tests/fuzz_decoders.rs.

use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(e) = vigil_promql::parser::parse(s) {
            // What parses must print and parse again.
            let printed = e.to_string();
            if vigil_promql::parser::parse(&printed).is_err() {
                panic!("{s:?} printed as {printed:?}, which does not parse");
            }
        }
    }
});
