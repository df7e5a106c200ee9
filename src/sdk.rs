//! The pipeline inside the OpenTelemetry SDK: [`SdkProcessor`], an
//! `opentelemetry_sdk::logs::LogProcessor` feeding the same queue as the `log` logger (cargo
//! feature `sdk`).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};

use crate::internal::{is_internal_target, on_internal_thread};
use crate::pipeline::Shared;
use crate::record::Severity;
use crate::record::capture::from_sdk::capture_record;
use crate::{Builder, Error, Guard};

impl Builder {
    /// Starts the pipeline and returns it as an SDK log processor, with its guard (cargo feature
    /// `sdk`): an application on `SdkLoggerProvider` (with `opentelemetry-appender-tracing` or
    /// `opentelemetry-appender-log`) swaps its batch processor for this one and gets the bounded
    /// queue, failover to the spool, replay and the counters.
    ///
    /// ```no_run
    /// let (processor, guard) = otel_log_bridge::builder().build_sdk_processor()?;
    /// let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
    ///     .with_log_processor(processor)
    ///     .build();
    /// # drop((provider, guard));
    /// # Ok::<(), otel_log_bridge::Error>(())
    /// ```
    ///
    /// The resource exported is the pipeline's own (give the provider's to
    /// [`Builder::resource`]). The pipeline's level directives apply to SDK records too. The
    /// provider's `force_flush` flushes the pipeline; its `shutdown` flushes it too, and the guard
    /// stops it. Like [`build`](Self::build), `OTEL_SDK_DISABLED` does not apply here.
    pub fn build_sdk_processor(self) -> Result<(SdkProcessor, Guard), Error> {
        let (logger, guard) = self.build()?;
        Ok((
            SdkProcessor {
                shared: logger.shared,
            },
            guard,
        ))
    }
}

/// The pipeline as an `opentelemetry_sdk::logs::LogProcessor`; see
/// [`Builder::build_sdk_processor`].
pub struct SdkProcessor {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SdkProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkProcessor")
            .field("level", &self.shared.level())
            .finish_non_exhaustive()
    }
}

impl LogProcessor for SdkProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        let target = record.target().map_or(scope.name(), |t| t.as_ref());
        let severity = record
            .severity_number()
            .and_then(|s| Severity::from_number(s as i64))
            .unwrap_or(Severity::Info);
        if is_internal_target(target)
            || on_internal_thread()
            || !self.shared.levels.enabled(severity.log_level(), target)
        {
            return;
        }
        let queued = capture_record(record, scope.name(), &self.shared.baggage);
        self.shared.link.push(queued, severity < Severity::Warn);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush(self.shared.flush_timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.flush(timeout)
    }
}

impl SdkProcessor {
    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        self.shared.flush(timeout).map_err(|e| match e {
            Error::ShutDown => OTelSdkError::AlreadyShutdown,
            Error::FlushTimeout(t) => OTelSdkError::Timeout(t),
            other => OTelSdkError::InternalFailure(other.to_string()),
        })
    }
}
