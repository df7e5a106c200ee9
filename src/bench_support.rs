//! Entry points for the benchmarks in `benches/` into stages that are otherwise private: not a
//! public API, hidden from the docs and free to change.

use crate::event::LogEvent;
use crate::export::file::format;
use crate::export::otlp::convert;

/// A record captured into the bridge's event type.
#[derive(Clone)]
pub struct Event(LogEvent);

/// Captures `record` as the logger does on the calling thread.
pub fn capture(record: &log::Record<'_>) -> Event {
    Event(crate::capture::capture(record).0)
}

/// Appends `event` as one JSON line to `out`.
pub fn encode_json(event: &Event, out: &mut Vec<u8>) {
    format::encode(&event.0, "bench", out);
}

/// Builds the OTLP request for `events`; returns the number of records in it.
pub fn otlp_request(events: &[Event]) -> usize {
    let resource = convert::resource("bench", &[]);
    let batch: Vec<LogEvent> = events.iter().map(|e| e.0.clone()).collect();
    let request = convert::request(&resource, &batch);
    request.resource_logs[0]
        .scope_logs
        .iter()
        .map(|s| s.log_records.len())
        .sum()
}
