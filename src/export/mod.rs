//! Export stage: where batches leave the process, over OTLP/gRPC ([`otlp`]) or to files ([`file`]).

pub(crate) mod file;
pub(crate) mod otlp;

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
