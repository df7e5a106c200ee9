//! The `log::Log` implementation: filter, re-entrancy guard, capture, non-blocking push.

use std::cell::Cell;
use std::sync::Arc;

use crate::capture::capture_into;
use crate::compact::Writer;
use crate::pipeline::queue::PushError;
use crate::pipeline::{Shared, in_worker};
use crate::stats::DropReason;

thread_local! {
    /// How many records this thread is capturing right now (a message's `Display` may log).
    static DEPTH: Cell<u8> = const { Cell::new(0) };
}

/// Crates whose records are never queued: the transport and OpenTelemetry stacks (which would turn
/// one exported batch into more records, a feedback loop) and this crate itself.
const INTERNAL_CRATES: [&str; 13] = [
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tonic_prost",
    "tonic_types",
    "tower",
    "tower_http",
    "tokio",
    "mio",
    "otel_log_bridge",
    "prost",
    // `tracing::span` / `tracing::span::active`: span lifecycle records that `tracing`'s "log" feature
    // emits for every span, the transport's own included.
    "tracing",
];

/// Whether this thread is capturing a record right now.
pub(crate) fn capturing() -> bool {
    DEPTH.try_with(Cell::get).unwrap_or(0) > 0
}

/// Whether `target` belongs to a crate whose records must never enter the pipeline.
#[inline]
pub(crate) fn is_internal_target(target: &str) -> bool {
    // Cheap reject: every internal crate name starts with one of these letters.
    if !matches!(
        target.as_bytes().first(),
        Some(b'h' | b't' | b'o' | b'm' | b'p')
    ) {
        return false;
    }
    let krate = match target.find(':') {
        Some(i) => &target[..i],
        None => target,
    };
    krate.starts_with("opentelemetry") || INTERNAL_CRATES.contains(&krate)
}

/// The `log::Log` implementation. Built by [`Builder::build`](crate::Builder::build) or installed by
/// [`try_init`](crate::try_init).
///
/// `log()` filters by itself, captures the record into owned data on the calling thread, and pushes
/// it into the bounded queue without waiting: when the queue refuses it, the record is counted as
/// dropped with its reason. It never blocks on I/O and never panics because of a record's contents.
pub struct Logger {
    pub(crate) shared: Arc<Shared>,
}

impl Logger {
    /// The most verbose level this logger keeps; what `try_init` passes to `log::set_max_level`.
    pub fn max_level(&self) -> log::LevelFilter {
        self.shared.level()
    }
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("level", &self.shared.level())
            .finish_non_exhaustive()
    }
}

struct DepthGuard(u8);

impl Drop for DepthGuard {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(self.0));
    }
}

impl log::Log for Logger {
    #[inline]
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.shared
            .levels
            .enabled(metadata.level(), metadata.target())
            && !is_internal_target(metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) || in_worker() {
            return;
        }
        let depth = DEPTH.try_with(Cell::get).unwrap_or(0);
        if depth >= 2 {
            // A record logged while formatting a record logged while formatting another.
            self.shared.counters.add_dropped(DropReason::Reentrant, 1);
            return;
        }
        let mut queued = Writer::new();
        let (format_panicked, carried) = {
            let _restore = DepthGuard(depth);
            let _ = DEPTH.try_with(|d| d.set(depth + 1));
            // A nested record must not refer to what its thread sent: the outer one, captured
            // before it, is pushed after it.
            let pipeline = (depth == 0).then_some(self.shared.id);
            capture_into(record, &mut queued, pipeline, self.shared.code_location)
        };
        if format_panicked {
            self.shared.counters.add_format_panic();
        }
        if self.shared.is_closed() {
            self.shared.counters.add_dropped(DropReason::Shutdown, 1);
            return;
        }
        let sheddable = record.level() > log::Level::Warn;
        queued.seal();
        let pushed = self
            .shared
            .queue
            .try_push_with(sheddable, |slot| queued.finish_into(slot));
        match pushed {
            Ok(len) => {
                carried.sent();
                self.shared.pushed(len);
            }
            Err(refused) => {
                let reason = match refused {
                    PushError::Full => DropReason::QueueFull,
                    PushError::Shed => DropReason::Shed,
                };
                self.shared.counters.add_dropped(reason, 1);
            }
        }
    }

    /// Exports everything logged so far, waiting at most the shutdown timeout (`LOG_SHUTDOWN_TIMEOUT`).
    /// Does nothing after shutdown or on the worker thread.
    fn flush(&self) {
        let _ = self.shared.flush(self.shared.flush_timeout);
    }
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
        ] {
            assert!(!is_internal_target(t), "{t}");
        }
    }
}
