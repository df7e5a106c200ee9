//! The queued-record reader: arbitrary bytes as a queued record's fields and variable part give a
//! record or an error, never a panic or undefined behaviour; a record read is one JSON line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    otel_log_bridge::bench_support::fuzz_queued_record(data);
});
