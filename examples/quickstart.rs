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
    // Configuration comes from the environment (OTEL_*, LOG_*); code overrides it. The default mode
    // is failover: OTLP first, and what the collector cannot take goes to ./logs/app.log, to be
    // replayed when it answers. A short export timeout keeps the demo quick without a collector; the
    // JSON lines also go to stdout, as a container would want.
    let guard = match otel_log_bridge::builder()
        .service_name("quickstart")
        .export_timeout(Duration::from_secs(2))
        .stdout(true)
        .try_init()
    {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("quickstart: could not start logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = guard.endpoint().to_owned();
    let file = guard
        .local_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!(
        "quickstart: sending records over OTLP/gRPC to {endpoint} (mode {})",
        guard.mode().as_str()
    );

    for (request_id, user_id, amount) in [(1u64, 42i64, 150.0f64), (2, 7, 99.5)] {
        handle_payment(request_id, user_id, amount);
    }
    log::info!(target: "quickstart", "shutting down");

    let report = guard.shutdown(Duration::from_secs(5));
    let s = report.stats;
    if s.replayed > 0 {
        println!(
            "quickstart: {} records spooled by an earlier run were delivered to {endpoint}",
            s.replayed
        );
    }
    if s.exported > 0 {
        println!(
            "quickstart: {} records were delivered to the collector at {endpoint}",
            s.exported
        );
    }
    if s.written > 0 {
        println!("quickstart: {} records were written to {file}", s.written);
    }
    if s.spooled > 0 {
        println!(
            "quickstart: no collector answered at {endpoint}: {} records were saved to {file} (JSON lines, \
             also printed above); they are sent when a collector answers, on this program's next run",
            s.spooled
        );
    }
    if report.undelivered > 0 {
        println!(
            "quickstart: {} records were lost (dropped by reason: {:?})",
            report.undelivered, s.dropped
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
    let trace_id =
        now.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) ^ u128::from(request_id);
    SpanContext::new(
        TraceId::from_bytes(trace_id.to_be_bytes()),
        SpanId::from_bytes((trace_id as u64 | 1).to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    )
}
