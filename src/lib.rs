//! # otel-log-bridge
//!
//! A `log` backend that ships records to OpenTelemetry over OTLP/gRPC, without ever making the
//! calling thread wait.
//!
//! ```text
//! app thread (sync, never blocks, never panics)       | one worker thread (+ the exporter's I/O thread)
//! log::Record -> filter -> capture -> queue.try_push   | -> batch (size | delay) -> OTLP/gRPC export
//!                                     (bounded; sheds  |      retry with backoff       | fail / timeout
//!                                      DEBUG/INFO when |                               v
//!                                      high; counted)  |      spool: JSON lines in LOG_DIR (failover)
//!                                                      |                               | collector back
//!                                                      |      replay -> OTLP (ack) -> cursor, delete
//! ```
//!
//! ```no_run
//! # fn main() -> Result<(), otel_log_bridge::Error> {
//! let guard = otel_log_bridge::try_init()?; // configuration from the environment
//! log::info!(target: "payment.service", amount = 150.0, user_id = 42, currency = "EUR"; "Transaction processed");
//! println!("{:?}", guard.stats());
//! drop(guard); // bounded flush + shutdown
//! # Ok(()) }
//! ```
//!
//! Modes (`LOG_MODE`): `failover` (default: OTLP, spool what it cannot take, replay later), `tee`
//! (OTLP and a rotating JSON log), `file-only`, `otlp-only`; stdout JSON lines on request.
//!
//! Each record is captured on the calling thread with the active OpenTelemetry span context
//! (`opentelemetry::Context::current()`), its key-values as typed attributes, its target (exported
//! as the instrumentation scope name) and its code location (unless `LOG_CODE_LOCATION=false`).
//! See the README for the configuration table, the severity and attribute mappings, and what is
//! dropped when.
#![warn(missing_docs)]

#[cfg(feature = "admin")]
pub mod admin;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_support;
mod clock;
pub mod config;
mod error;
mod export;
mod internal;
mod level;
mod logger;
mod panic;
mod pipeline;
mod queue;
mod record;
mod redact;
mod spool;
mod stats;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use config::directives::{Directive, format_directives};
pub use config::{Builder, Compression, Mode, ParseEnumError};
pub use error::Error;
pub use level::{AUDIT_TARGET, LevelChange, LevelError, Levels};
pub use logger::Logger;
pub use panic::PANIC_TARGET;
pub use record::Severity;
pub use redact::{DEFAULT_REDACT_KEYS, REDACTED};
pub use stats::{DropReason, Dropped, Stats};

use export::file::rotate::RotatingFile;
use export::otlp::OtlpExporter;
use pipeline::Pipeline;
use spool::Spool;
use stats::Counters;
use worker::sinks::Sinks;

/// Whether this crate's logger was installed in this process.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A builder reading the environment for every setting left unset.
pub fn builder() -> Builder {
    Builder::new()
}

/// Configures a pipeline from the environment and installs it as the `log` logger.
///
/// Sets `log::max_level` to the configured level. Returns [`Error::AlreadyInitialized`] (never panics)
/// when a logger is already installed, and an error naming the variable for an invalid setting.
/// Keep the returned guard alive: dropping it flushes (bounded) and stops the pipeline.
pub fn try_init() -> Result<Guard, Error> {
    Builder::new().try_init()
}

impl Builder {
    /// Starts the pipeline and returns its logger, not installed, with its guard: for composing with
    /// other loggers, and for tests.
    pub fn build(self) -> Result<(Logger, Guard), Error> {
        let config = self.config()?;
        let counters = Arc::new(Counters::default());
        let redactor = redact::Redactor::new(&config.redact_keys);
        let otlp = if config.mode.uses_otlp() {
            Some(OtlpExporter::new(
                &config,
                counters.clone(),
                redactor.clone(),
            )?)
        } else {
            None
        };
        let (file, spool, local_path) = match config.mode {
            Mode::Tee | Mode::FileOnly => {
                let file = RotatingFile::open(&config.files).map_err(Error::Files)?;
                let path = file.active_path();
                (Some(file), None, Some(path))
            }
            Mode::Failover => {
                let spool = Spool::open(&config.files, &config.service_name, counters.clone())
                    .map_err(Error::Files)?;
                let path = spool.path();
                (None, Some(spool), Some(path))
            }
            Mode::OtlpOnly => (None, None, None),
        };
        let sinks = Sinks::new(
            config.mode,
            otlp,
            file,
            spool,
            config.stdout,
            config.service_name.clone(),
            redactor,
        );
        let pipeline = Pipeline::start(&config, counters, sinks)?;
        let logger = Logger {
            shared: pipeline.shared.clone(),
        };
        // The guard exists before anything else can fail, so its drop stops the worker (and frees
        // the spool's lock) on every error path below.
        #[cfg_attr(not(feature = "admin"), allow(unused_mut))]
        let mut guard = Guard {
            pipeline,
            shutdown_timeout: config.shutdown_timeout,
            endpoint: config.endpoint,
            mode: config.mode,
            local_path,
            #[cfg(feature = "admin")]
            admin: None,
        };
        #[cfg(feature = "admin")]
        if let Some((addr, token)) = &config.admin {
            guard.admin = Some(
                admin::AdminServerHandle::start(
                    *addr,
                    token.0.trim().to_owned(),
                    guard.levels(),
                    guard.pipeline.shared.clone(),
                )
                .map_err(Error::Admin)?,
            );
        }
        if config.panic_hook {
            panic::install(&guard.pipeline.shared);
        }
        Ok((logger, guard))
    }

    /// Starts the pipeline and installs it as the `log` logger; see [`try_init`].
    pub fn try_init(self) -> Result<Guard, Error> {
        // Checked first so that a second call reports the real problem rather than, say, the spool
        // lock the first pipeline holds.
        if INSTALLED.load(Ordering::SeqCst) {
            return Err(Error::AlreadyInitialized);
        }
        let (logger, guard) = self.build()?;
        let level = logger.max_level();
        let shared = logger.shared.clone();
        log::set_boxed_logger(Box::new(logger)).map_err(|_| Error::AlreadyInitialized)?;
        INSTALLED.store(true, Ordering::SeqCst);
        shared.set_installed();
        log::set_max_level(level);
        Ok(guard)
    }
}

/// Keeps the pipeline running; dropping it flushes what is queued (bounded by the shutdown timeout,
/// `LOG_SHUTDOWN_TIMEOUT`) and stops the worker.
///
/// After shutdown the logger stays installed but refuses records, counting them as dropped
/// ([`DropReason::Shutdown`]). A process that ends with `std::process::exit` without dropping the
/// guard loses what is still queued.
#[must_use = "dropping the guard shuts the pipeline down"]
pub struct Guard {
    pipeline: Pipeline,
    shutdown_timeout: Duration,
    endpoint: String,
    mode: Mode,
    local_path: Option<PathBuf>,
    #[cfg(feature = "admin")]
    admin: Option<admin::AdminServerHandle>,
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
        self.pipeline.shared.stats()
    }

    /// A cloneable handle to read and change the level filter at run time.
    pub fn levels(&self) -> Levels {
        let shared = &self.pipeline.shared;
        Levels::new(shared.levels.clone(), shared.clone())
    }

    /// The collector endpoint records are exported to.
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
        self.pipeline.shared.link.last_error()
    }

    /// Exports everything logged before the call; waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.pipeline.shared.flush(timeout)
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
        let completed = self.pipeline.shutdown(timeout);
        let stats = self.stats();
        ShutdownReport {
            completed,
            stats,
            undelivered: stats.dropped.total() + stats.queue_depth + stats.in_flight,
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
        if !self.pipeline.is_shut_down() {
            self.shutdown_inner(self.shutdown_timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use log::Log as _;

    /// The counters of records logged once the guard is gone, which no public handle reads
    /// (tests/pipeline.rs checks the rest of this against a collector).
    #[test]
    fn records_logged_after_shutdown_are_counted_as_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (logger, guard) = crate::builder()
            .read_env(false)
            .mode(crate::Mode::FileOnly)
            .log_dir(dir.path())
            .build()
            .unwrap();
        let info = |i: u32| {
            logger.log(
                &log::Record::builder()
                    .level(log::Level::Info)
                    .target("app")
                    .args(format_args!("record {i}"))
                    .build(),
            )
        };
        info(0);
        let report = guard.shutdown(Duration::from_secs(20));
        assert!(report.completed);
        let s = report.stats;
        assert_eq!((s.enqueued, s.written, s.dropped.shutdown), (1, 1, 0));
        info(1);
        info(2);
        let s = logger.shared.stats();
        assert_eq!((s.enqueued, s.written, s.dropped.shutdown), (1, 1, 2));
    }
}
