//! A small service handling a payment request inside a trace span, logging through `log` with
//! key-values. Runs with no collector at all: it then says what happened to its records.
//!
//! ```sh
//! cargo run --example quickstart
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 cargo run --example quickstart
//! ```

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};

fn main() -> ExitCode {
    // Configuration comes from the environment (OTEL_*, LOG_LEVEL, ...); code overrides it. A short
    // export timeout keeps the demo quick when no collector answers.
    let guard = match otel_log_bridge::builder()
        .service_name("quickstart")
        .export_timeout(Duration::from_secs(2))
        .try_init()
    {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("quickstart: could not start logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = guard.endpoint().to_owned();
    println!("quickstart: sending records over OTLP/gRPC to {endpoint}");

    for (request_id, user_id, amount) in [(1u64, 42i64, 150.0f64), (2, 7, 99.5)] {
        handle_payment(request_id, user_id, amount);
    }
    log::info!(target: "quickstart", "shutting down");

    let report = guard.shutdown(Duration::from_secs(5));
    let s = report.stats;
    if report.undelivered == 0 {
        println!(
            "quickstart: all {} records were delivered to the collector at {endpoint}",
            s.exported
        );
    } else {
        println!(
            "quickstart: {} of {} records were NOT delivered: no collector accepted them at {endpoint} \
             (export failures: {}, dropped by reason: {:?}).",
            report.undelivered, s.enqueued, s.export_errors, s.dropped
        );
        println!(
            "quickstart: start an OTLP/gRPC collector there, or point OTEL_EXPORTER_OTLP_ENDPOINT at \
             one, and run again. (This version has no local file fallback yet.)"
        );
    }
    ExitCode::SUCCESS
}

/// One request, handled inside a span: every record carries its trace and span ids.
fn handle_payment(request_id: u64, user_id: i64, amount: f64) {
    let _span = opentelemetry::Context::new()
        .with_remote_span_context(new_span_context(request_id))
        .attach();
    log::info!(target: "quickstart.http", method = "POST", path = "/payments", request_id; "request received");
    if user_id == 7 {
        log::warn!(target: "payment.service", user_id, latency_ms = 870; "payment provider slow");
        log::error!(target: "payment.service", user_id, reason = "card_declined"; "payment failed");
    } else {
        log::info!(target: "payment.service", amount, user_id, currency = "EUR"; "Transaction processed");
    }
}

/// Trace and span ids for a demo request (a real service takes them from the incoming request).
fn new_span_context(request_id: u64) -> SpanContext {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(1);
    let trace_id = (now << 16) | u128::from(request_id);
    SpanContext::new(
        TraceId::from_bytes(trace_id.to_be_bytes()),
        SpanId::from_bytes((trace_id as u64 | 1).to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    )
}
