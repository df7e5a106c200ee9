//! # otel-log-bridge
//!
//! A `log` backend that ships records to OpenTelemetry over OTLP (gRPC, or HTTP with protobuf or
//! JSON bodies: `OTEL_EXPORTER_OTLP_PROTOCOL`, [`Protocol`]), without ever making the calling
//! thread wait.
//!
//! ```text
//! app thread (sync, never blocks, never panics)       | one worker thread (+ the exporter's I/O thread)
//! log::Record -> filter -> capture -> queue.try_push   | -> batch (size | delay) -> OTLP export (gRPC|HTTP)
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
mod builder;
mod clock;
pub mod config;
mod error;
mod export;
mod guard;
mod internal;
#[cfg(feature = "tracing")]
mod layer;
mod level;
mod logger;
mod panic;
mod pipeline;
mod queue;
mod record;
mod redact;
#[cfg(feature = "sdk")]
mod sdk;
mod spool;
mod stats;
mod worker;

pub use config::directives::{Directive, format_directives};
pub use config::{
    Builder, Compression, Console, ConsoleFormat, FileRotation, Mode, ParseEnumError, Protocol,
    QueueFull, SpoolFsync,
};
pub use error::Error;
#[cfg(feature = "tracing")]
pub use layer::{EventLayer, LevelGate, TracingLayer};
pub use level::{AUDIT_TARGET, LevelChange, LevelError, Levels};
pub use logger::Logger;
pub use panic::PANIC_TARGET;
pub use record::Severity;
pub use redact::{DEFAULT_REDACT_KEYS, REDACTED};
#[cfg(feature = "sdk")]
pub use sdk::SdkProcessor;
pub use stats::{DropReason, Dropped, Output, OutputCounts, PerOutput, Stats};

pub use guard::{Guard, ShutdownReport};

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

#[cfg(test)]
mod tests;
