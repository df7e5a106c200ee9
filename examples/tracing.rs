//! A small service logging through `tracing`, with `tracing-opentelemetry` spans and a `log` call
//! site from a dependency, all on one pipeline. Runs with no collector at all: it then says what
//! happened to its records.
//!
//! ```sh
//! cargo run --example tracing --features tracing
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 cargo run --example tracing --features tracing
//! ```

use std::process::ExitCode;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    // The pipeline as a `tracing` layer; configuration from the environment (OTEL_*, LOG_*), code
    // overriding it. Span fields ride along with each event (LOG_SPAN_FIELDS).
    let (layer, guard) = match otel_log_bridge::builder()
        .service_name("tracing-example")
        .export_timeout(Duration::from_secs(2))
        .span_fields(true)
        .build_layer()
    {
        Ok(built) => built,
        Err(e) => {
            eprintln!("tracing example: could not start logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Spans with OpenTelemetry trace and span ids: events inside them carry those ids.
    let traces = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let spans = tracing_opentelemetry::layer().with_tracer(traces.tracer("tracing-example"));
    // `init()` also routes `log` records into `tracing` (tracing-subscriber's `tracing-log`).
    tracing_subscriber::registry()
        .with(spans)
        .with(layer)
        .init();
    let file = guard
        .local_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!(
        "tracing example: sending records over OTLP to {} (mode {})",
        guard.endpoint(),
        guard.mode().as_str()
    );

    for (request_id, user_id, amount) in [(1u64, 42i64, 150.0f64), (2, 7, 99.5)] {
        let span = tracing::info_span!("payment", request_id, user_id);
        let _entered = span.enter();
        tracing::info!(amount, currency = "EUR", "Transaction processed");
        // A dependency still on `log`: the same pipeline, inside the same span.
        log::warn!(target: "ledger", "balance low");
    }

    let report = guard.shutdown(Duration::from_secs(5));
    let s = report.stats;
    println!(
        "tracing example: {} records delivered, {} spooled to {file} (sent when a collector answers, \
         on the next run), {} written to {file}, {} dropped",
        s.exported,
        s.spooled,
        s.written,
        s.dropped.total()
    );
    ExitCode::SUCCESS
}
