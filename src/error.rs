//! Public error type.

use std::time::Duration;

/// What can go wrong when building, installing, flushing or shutting down the pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable holds a value that cannot be used.
    #[error("invalid value {value:?} for environment variable {var}: expected {expected}")]
    InvalidEnv {
        /// The variable's name.
        var: &'static str,
        /// The value found.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The configuration file cannot be read, or a key in it holds a value that cannot be used.
    #[error("config file {}: {key}: {message}", path.display())]
    ConfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// The key (`section.key`), empty when the file as a whole is at fault.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// A setting (from the builder, or a combination of settings) cannot be used.
    #[error("invalid setting {setting}: {reason}")]
    InvalidConfig {
        /// The builder method or variable concerned.
        setting: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
    /// `try_init` found another logger already installed through `log::set_logger`.
    #[error("a logger is already installed in this process (log::set_boxed_logger failed)")]
    AlreadyInitialized,
    /// The local log directory or files cannot be used (unwritable, not a directory, or the spool is
    /// locked by another process); the message names the path.
    #[error("local log files: {0}")]
    Files(#[source] std::io::Error),
    /// The admin server could not be started (its address cannot be bound, or no token was given).
    /// Feature `admin`.
    #[cfg(feature = "admin")]
    #[error("{0}")]
    Admin(#[source] std::io::Error),
    /// The queue's memory could not be allocated (`OTEL_BLRP_MAX_QUEUE_SIZE` records of 128 bytes).
    #[error(
        "could not allocate the queue of {capacity} records ({bytes} bytes): lower OTEL_BLRP_MAX_QUEUE_SIZE"
    )]
    QueueAlloc {
        /// The queue capacity configured, in records.
        capacity: usize,
        /// The bytes asked of the allocator.
        bytes: usize,
    },
    /// The worker thread or its runtime could not be started.
    #[error("could not start the otel-log-bridge worker: {0}")]
    Worker(#[source] std::io::Error),
    /// A flush did not complete within its timeout.
    #[error("flush did not complete within {0:?}")]
    FlushTimeout(Duration),
    /// The pipeline has been shut down.
    #[error("the otel-log-bridge pipeline has shut down")]
    ShutDown,
}
