//! Which threads and targets are the pipeline's own, so that nothing they log is fed back into it.
//! A leaf: it imports nothing of the crate.
//!
//! - The worker thread, the exporter's I/O threads and the admin server's threads are marked
//!   internal ([`mark_internal_thread`]): a record logged on them is never queued.
//! - Records whose target belongs to the transport and OpenTelemetry stacks, or to this crate, are
//!   never queued ([`is_internal_target`]): one exported batch must not turn into more records.
//! - A thread capturing a record is at capture depth 1 (2 while a `Display` of that record logs):
//!   the panic hook and the logger read it ([`capture_depth`], [`CaptureScope`]).

use std::cell::Cell;

thread_local! {
    static INTERNAL: Cell<bool> = const { Cell::new(false) };
    /// How many records this thread is capturing right now (a message's `Display` may log).
    static DEPTH: Cell<u8> = const { Cell::new(0) };
}

/// Marks the current thread as internal: nothing logged on it enters a pipeline.
pub(crate) fn mark_internal_thread() {
    let _ = INTERNAL.try_with(|w| w.set(true));
}

/// Whether the current thread is one of the pipeline's own.
#[inline]
pub(crate) fn on_internal_thread() -> bool {
    INTERNAL.try_with(Cell::get).unwrap_or(false)
}

/// How many records this thread is capturing now (0 outside the logger).
#[inline]
pub(crate) fn capture_depth() -> u8 {
    DEPTH.try_with(Cell::get).unwrap_or(0)
}

/// Raises this thread's capture depth by one for as long as it lives.
pub(crate) struct CaptureScope(u8);

impl CaptureScope {
    /// Enters one more level of capture.
    pub(crate) fn enter() -> Self {
        let depth = capture_depth();
        let _ = DEPTH.try_with(|d| d.set(depth.saturating_add(1)));
        CaptureScope(depth)
    }
}

impl Drop for CaptureScope {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(self.0));
    }
}

/// Crates whose records are never queued: the transport and OpenTelemetry stacks (which would turn
/// one exported batch into more records, a feedback loop) and this crate itself.
/// Grouped by first byte, as [`is_internal_target`] slices it.
const INTERNAL_CRATES: [&str; 15] = [
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tonic_prost",
    "tonic_types",
    "tower",
    "tower_http",
    "tokio",
    // `tracing::span` / `tracing::span::active`: span lifecycle records that `tracing`'s "log" feature
    // emits for every span, the transport's own included. Only those: a crate or an example named
    // `tracing` logs under the target `tracing`.
    "tracing::span",
    "mio",
    "otel_log_bridge",
    "prost",
    // The OTLP/HTTP client and the TLS of both transports.
    "reqwest",
    "rustls",
];

/// Whether `target` belongs to a crate whose records must never enter the pipeline: it is the
/// crate's name, or starts with the name and `::` (any `opentelemetry*` crate counts). Runs for
/// every record, so it compares against the few names sharing the target's first byte.
#[inline]
pub(crate) fn is_internal_target(target: &str) -> bool {
    let candidates: &[&str] = match target.as_bytes().first() {
        Some(b'h') => &INTERNAL_CRATES[..3],
        Some(b't') => &INTERNAL_CRATES[3..10],
        Some(b'm') => &INTERNAL_CRATES[10..11],
        Some(b'o') => &INTERNAL_CRATES[11..12],
        Some(b'p') => &INTERNAL_CRATES[12..13],
        Some(b'r') => &INTERNAL_CRATES[13..],
        _ => return false,
    };
    if target.starts_with("opentelemetry") {
        return true;
    }
    candidates.iter().any(|name| {
        target
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_targets_are_recognised() {
        for t in [
            "h2",
            "h2::codec",
            "hyper::proto",
            "hyper_util::client",
            "tonic::transport",
            "tower::buffer",
            "opentelemetry",
            "opentelemetry_sdk::logs",
            "opentelemetry_otlp",
            "otel_log_bridge::pipeline",
            "tokio::runtime",
            "tracing::span",
            "tracing::span::active",
            "tonic_types",
            "tower_http::trace",
            "mio::poll",
            "prost",
            "opentelemetry_proto::x",
            "reqwest::connect",
            "rustls::client::hs",
        ] {
            assert!(is_internal_target(t), "{t}");
        }
        for t in [
            "payment.service",
            "my_app",
            "h2o",
            "hyperion::x",
            "towers",
            "app::tonic",
            "",
            "otel",
            "prosty",
            "tokio_util2x",
            "mio2",
            "reqwests",
            "rust",
            "payment.service::tokio",
            // An application (or example) crate named `tracing`, and `tracing_subscriber` users.
            "tracing",
            "tracing::handlers",
            "tracing_app",
        ] {
            assert!(!is_internal_target(t), "{t}");
        }
    }

    #[test]
    fn capture_scopes_nest_and_restore() {
        assert_eq!(capture_depth(), 0);
        {
            let _a = CaptureScope::enter();
            assert_eq!(capture_depth(), 1);
            {
                let _b = CaptureScope::enter();
                assert_eq!(capture_depth(), 2);
            }
            assert_eq!(capture_depth(), 1);
        }
        assert_eq!(capture_depth(), 0);
        assert!(!on_internal_thread());
        std::thread::spawn(|| {
            mark_internal_thread();
            assert!(on_internal_thread());
        })
        .join()
        .unwrap();
        assert!(!on_internal_thread());
    }
}
