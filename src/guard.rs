//! [`Guard`]: what keeps a pipeline running, and what reads its counters, flushes it and shuts
//! it down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;
#[cfg(feature = "admin")]
use crate::admin;
use crate::config::Mode;
use crate::level::Levels;
use crate::pipeline::Pipeline;
use crate::stats::Stats;

/// Keeps the pipeline running; dropping it flushes what is queued (bounded by the shutdown timeout,
/// `LOG_SHUTDOWN_TIMEOUT`) and stops the worker.
///
/// After shutdown the logger stays installed but refuses records, counting them as dropped
/// ([`DropReason::Shutdown`]). A process that ends with `std::process::exit` without dropping the
/// guard loses what is still queued.
#[must_use = "dropping the guard shuts the pipeline down"]
pub struct Guard {
    /// `None` when `OTEL_SDK_DISABLED=true` made `try_init` install nothing.
    pub(crate) pipeline: Option<Pipeline>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) endpoint: String,
    pub(crate) mode: Mode,
    pub(crate) local_path: Option<PathBuf>,
    #[cfg(feature = "admin")]
    pub(crate) admin: Option<admin::AdminServerHandle>,
}

/// What [`Guard::shutdown`] could and could not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether the worker finished within the timeout.
    pub completed: bool,
    /// The counters after shutdown.
    pub stats: Stats,
    /// Records not delivered: every drop, by any reason, plus anything still queued or in flight
    /// when the timeout passed.
    pub undelivered: u64,
}

impl Guard {
    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.pipeline
            .as_ref()
            .map_or_else(Stats::default, |p| p.shared.stats())
    }

    /// A `log` logger on this guard's pipeline, for an application that installs it by hand beside
    /// the `tracing` layer built with it (`log::set_boxed_logger(Box::new(logger))`): `log` and
    /// `tracing` records then share the queue, the exporter, the spool and the counters. `None` for
    /// the guard of a disabled pipeline (`OTEL_SDK_DISABLED` with `try_init`).
    pub fn logger(&self) -> Option<crate::Logger> {
        self.pipeline.as_ref().map(|p| crate::Logger {
            shared: p.shared.clone(),
        })
    }

    /// A cloneable handle to read and change the level filter at run time.
    pub fn levels(&self) -> Levels {
        match &self.pipeline {
            Some(p) => Levels::new(p.shared.levels.clone(), p.shared.clone()),
            None => Levels::disabled(),
        }
    }

    /// The collector endpoint records are exported to (empty when `OTEL_SDK_DISABLED=true`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The address the admin gRPC server listens on, if one was started.
    #[cfg(feature = "admin")]
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    /// Where records go.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The local file records are written to: the rotating log (`tee`, `file-only`) or the spool's
    /// active segment (`failover`); `None` in `otlp-only` mode.
    pub fn local_path(&self) -> Option<&Path> {
        self.local_path.as_deref()
    }

    /// The configured shutdown timeout (`LOG_SHUTDOWN_TIMEOUT`), which the guard's drop uses.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// The last export error, if any export failed.
    pub fn last_export_error(&self) -> Option<String> {
        self.pipeline.as_ref()?.shared.link.last_error()
    }

    /// Exports everything logged before the call; waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        match &self.pipeline {
            Some(p) => p.shared.flush(timeout),
            None => Ok(()),
        }
    }

    /// Stops accepting records, exports what is queued within `timeout`, stops the worker and
    /// reports what could not be delivered. Safe to call from inside any async runtime: the wait is
    /// bounded by `timeout` and does not depend on the caller's runtime.
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.shutdown_inner(timeout)
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> ShutdownReport {
        #[cfg(feature = "admin")]
        drop(self.admin.take());
        let completed = self.pipeline.as_mut().is_none_or(|p| p.shutdown(timeout));
        let stats = self.stats();
        ShutdownReport {
            completed,
            stats,
            undelivered: stats.dropped.total() + stats.queue_depth + stats.in_flight,
        }
    }
}

impl Guard {
    /// The guard of a pipeline that was not started (`OTEL_SDK_DISABLED=true`): its counters stay
    /// zero, flushes succeed at once, level changes are refused.
    pub(crate) fn disabled(shutdown_timeout: Duration) -> Guard {
        Guard {
            pipeline: None,
            shutdown_timeout,
            endpoint: String::new(),
            mode: Mode::default(),
            local_path: None,
            #[cfg(feature = "admin")]
            admin: None,
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.pipeline.as_ref().is_some_and(|p| !p.is_shut_down()) {
            self.shutdown_inner(self.shutdown_timeout);
        }
    }
}
