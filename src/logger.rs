//! The `log::Log` implementation: filter, re-entrancy guard, capture, non-blocking push.

use std::sync::Arc;

use crate::internal::{CaptureScope, capture_depth, is_internal_target, on_internal_thread};
use crate::pipeline::Shared;
use crate::record::capture::capture_into;
use crate::stats::DropReason;

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

impl log::Log for Logger {
    #[inline]
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.shared
            .levels
            .enabled(metadata.level(), metadata.target())
            && !is_internal_target(metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) || on_internal_thread() {
            return;
        }
        if capture_depth() >= 2 {
            // A record logged while formatting a record logged while formatting another.
            self.shared
                .link
                .counters
                .add_dropped(DropReason::Reentrant, 1);
            return;
        }
        // Pushed where it is made, inside the capture (a push never logs).
        let sheddable = record.level() > log::Level::Warn;
        let format_panicked = {
            let _scope = CaptureScope::enter();
            let (code_location, baggage) = (self.shared.code_location, &self.shared.baggage);
            capture_into(record, code_location, baggage, |queued| {
                self.shared.link.push(queued, sheddable);
            })
        };
        if format_panicked {
            self.shared.link.counters.add_format_panic();
        }
    }

    /// Exports everything logged so far, waiting at most the shutdown timeout (`LOG_SHUTDOWN_TIMEOUT`).
    /// Does nothing after shutdown or on the worker thread.
    fn flush(&self) {
        let _ = self.shared.flush(self.shared.flush_timeout);
    }
}
