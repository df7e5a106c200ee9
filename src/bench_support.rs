//! Entry points for the benchmarks in `benches/` and the fuzz targets in `fuzz/` into stages that are otherwise private: not a
//! public API, hidden from the docs and free to change.

use crate::export::file::format;
use crate::export::otlp::convert;
use crate::record::queued::Queued;

/// A record captured as the logger does on the calling thread: its queued form.
#[derive(Clone)]
pub struct Event {
    queued: Queued,
}

/// Captures `record` as the logger does on the calling thread.
pub fn capture(record: &log::Record<'_>) -> Event {
    Event {
        queued: crate::record::capture::capture(
            record,
            true,
            &crate::record::capture::Baggage::Off,
        )
        .0,
    }
}

/// Appends `event` as one JSON line to `out`, as the worker writes it: read in place from its
/// queued form, secret values masked by the default words.
pub fn encode_json(event: &Event, out: &mut Vec<u8>) {
    static REDACTOR: std::sync::OnceLock<crate::redact::Redactor> = std::sync::OnceLock::new();
    let redactor =
        REDACTOR.get_or_init(|| crate::redact::Redactor::new(crate::redact::DEFAULT_REDACT_KEYS));
    if let Ok(r) = event.queued.record() {
        format::encode(&r, "bench", Some(redactor), out);
    }
}

/// Queued records, as the worker holds a batch.
pub struct Batch(Vec<Queued>);

/// The batch of `events`' queued forms.
pub fn batch(events: &[Event]) -> Batch {
    Batch(events.iter().map(|e| e.queued.clone()).collect())
}

/// The worker's OTLP request encoder, kept from one batch to the next as the worker keeps it.
pub struct OtlpEncoder(convert::RequestEncoder);

impl Default for OtlpEncoder {
    fn default() -> Self {
        OtlpEncoder(convert::RequestEncoder::new(
            convert::resource("bench", &[]),
            crate::redact::Redactor::new(crate::redact::DEFAULT_REDACT_KEYS),
        ))
    }
}

impl OtlpEncoder {
    /// Encodes the request for `batch`; returns its size in bytes.
    pub fn encode(&mut self, batch: &Batch) -> usize {
        self.0
            .encode(batch.0.iter().filter_map(|q| q.record().ok()))
            .len()
    }

    /// The same request through prost's messages (what `encode` replaced): the baseline.
    pub fn encode_prost(&mut self, batch: &Batch) -> usize {
        self.0
            .encode_prost(batch.0.iter().filter_map(|q| q.record().ok()))
            .len()
    }

    /// The same request as OTLP JSON (`http/json`).
    pub fn encode_json(&mut self, batch: &Batch) -> usize {
        self.0
            .encode_json(batch.0.iter().filter_map(|q| q.record().ok()))
            .len()
    }
}

/// Decodes `line` as replay does. A line that decodes is encoded again; that line, our own output,
/// must decode and encode back to the same bytes (the fuzz target's claim, besides never
/// panicking: a foreign line may order its fields differently). Returns whether `line` was a record.
pub fn fuzz_json_line(line: &[u8]) -> bool {
    let Ok(decoded) = format::decode(line) else {
        return false;
    };
    let mut ours = Vec::new();
    format::encode(
        &decoded.event.record(),
        &decoded.service_name,
        None,
        &mut ours,
    );
    let again = format::decode(&ours).expect("our own line decodes");
    let mut twice = Vec::new();
    format::encode(&again.event.record(), &again.service_name, None, &mut twice);
    assert_eq!(
        String::from_utf8_lossy(&twice),
        String::from_utf8_lossy(&ours),
        "our own line survives a round trip"
    );
    true
}

/// Opens a spool in the empty directory `dir` whose leftover files are `active` (the active file)
/// and `cursor` (the cursor file), and replays it to the end; returns the records replayed and the
/// lines skipped as corrupt. Arbitrary bytes must neither panic nor stop the replay early.
pub fn fuzz_spool(dir: &std::path::Path, active: &[u8], cursor: &[u8]) -> (u64, u64) {
    use std::sync::Arc;
    let config = crate::config::FileConfig {
        dir: dir.to_path_buf(),
        name: "app.log".into(),
        max_bytes: 4096,
        backups: 1,
        rotation: crate::config::FileRotation::Size,
        max_age: None,
        compress: crate::config::Compression::None,
        file_mode: 0o600,
        dir_mode: 0o700,
        spool_max_bytes: 1 << 30,
        spool_max_delay: std::time::Duration::from_millis(100),
        spool_fsync: crate::config::SpoolFsync::Off,
    };
    std::fs::write(dir.join("app.log.spool.cursor"), cursor).expect("write cursor");
    std::fs::write(dir.join("app.log"), active).expect("write active file");
    let counters = Arc::new(crate::stats::Counters::default());
    let mut spool =
        crate::spool::Spool::open(&config, "fuzz", counters.clone()).expect("a spool opens");
    let mut replayed = 0u64;
    // Every batch makes progress, so the number of lines bounds the loop.
    for _ in 0..=active.len() + 1 {
        if !spool.has_backlog() {
            break;
        }
        let batch = spool
            .next_batch(64)
            .expect("a readable spool")
            .expect("a backlog gives a batch");
        replayed += batch.events.len() as u64;
        spool.ack(&batch).expect("ack");
    }
    assert!(!spool.has_backlog(), "the replay reached the end");
    (replayed, counters.snapshot(0, 0).corrupt_skipped)
}

/// Reads arbitrary bytes as a queued record (the fixed fields from the first 45 bytes, the variable
/// part from the rest) and, if it reads, walks it and writes it as a JSON line: never a panic, never
/// undefined behaviour. Returns whether it was readable.
pub fn fuzz_queued_record(data: &[u8]) -> bool {
    let q = Queued::from_arbitrary_bytes(data);
    let Ok(r) = q.record() else {
        return false;
    };
    let mut out = Vec::new();
    format::encode(&r, "fuzz", None, &mut out);
    debug_assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
    true
}

/// A `tracing` layer that captures each event as the pipeline's layer does, then drops it: the
/// capture's cost alone, with no queue and no worker running beside it.
#[cfg(feature = "tracing")]
#[derive(Debug, Default)]
pub struct CaptureLayer;

#[cfg(feature = "tracing")]
impl<S: tracing_core::Subscriber> tracing_subscriber::Layer<S> for CaptureLayer {
    fn on_event(
        &self,
        event: &tracing_core::Event<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        use crate::record::capture::{Baggage, from_tracing};
        let settings = from_tracing::Settings {
            code_location: true,
            baggage: &Baggage::Off,
        };
        from_tracing::capture_event(
            event,
            &settings,
            None,
            |_| true,
            |q| {
                std::hint::black_box(q);
            },
        );
    }
}
