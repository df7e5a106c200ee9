//! Export stage: where batches leave the process. The worker sees only the [`Exporter`] trait; the
//! OTLP/gRPC exporter implements it today, and the file sink and spool plug in behind the same seam.

pub(crate) mod file;
pub(crate) mod otlp;

use std::time::Instant;

use crate::event::LogEvent;

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExportOutcome {
    /// The collector acknowledged the batch; `rejected` records of it were refused (partial success)
    /// and will not be retried.
    Delivered { rejected: u64 },
    /// The batch was not delivered: retries exhausted, deadline passed, or a permanent error.
    Failed { reason: String },
}

/// A destination for batches. Runs on the worker thread only; may block that thread, never a caller.
pub(crate) trait Exporter: Send {
    /// Exports `batch`, giving up by `deadline`.
    fn export(&mut self, batch: &[LogEvent], deadline: Instant) -> ExportOutcome;
}
