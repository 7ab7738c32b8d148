#![no_main]
//! cargo-fuzz target: see `vigil_tsdb::fuzz` and tests/fuzz_decoders.rs.

use libfuzzer_sys::fuzz_target;
use vigil_scrape::expfmt::{Format, Parser, StreamParser};

fuzz_target!(|data: &[u8]| {
    let mut p = Parser::new(data, Format::OpenMetrics);
    while let Ok(Some(_)) = p.next_entry() {}
    let mut s = StreamParser::new(data, Format::OpenMetrics);
    while let Ok(Some(_)) = s.next_entry() {}
});
