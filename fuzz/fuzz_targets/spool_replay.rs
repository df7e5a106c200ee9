//! The spool reader: a leftover active file and cursor file of arbitrary bytes never panic and
//! never stop the replay before the end.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the cursor file, the rest the active file.
    let split = data
        .iter()
        .position(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let (cursor, active) = data.split_at(split);
    let dir = tempfile::tempdir().expect("temp dir");
    otel_log_bridge::bench_support::fuzz_spool(dir.path(), active, cursor);
});
