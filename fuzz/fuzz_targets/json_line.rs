//! The JSON-lines decoder used by replay: arbitrary bytes never panic, and a line that decodes
//! survives being encoded and decoded again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    otel_log_bridge::bench_support::fuzz_json_line(line);
});
