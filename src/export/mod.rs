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
    /// The batch was not delivered. `permanent`: the collector refused it for good (retrying or
    /// spooling would not help); otherwise retries were exhausted or the deadline passed.
    Failed { reason: String, permanent: bool },
}

/// A destination for batches. Runs on the worker thread only; may block that thread, never a caller.
pub(crate) trait Exporter: Send {
    /// Exports `batch`, giving up by `deadline`. While it waits on the network it calls `idle` every
    /// few milliseconds, so the worker can keep the queue from overflowing (by spooling); when `idle`
    /// returns `true` the export is abandoned at once (a retryable failure).
    fn export(
        &mut self,
        batch: &[LogEvent],
        deadline: Instant,
        idle: &mut dyn FnMut() -> bool,
    ) -> ExportOutcome;
}
