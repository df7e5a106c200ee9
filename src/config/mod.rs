//! Typed configuration and the builder. Precedence: builder (code) > environment > file >
//! defaults.
//!
//! Public here: [`Builder`], [`Mode`], [`Compression`], [`Protocol`] and [`ParseEnumError`] (all also at the crate
//! root). The environment variables and the file's keys are documented in the README; their
//! readers are private.

mod builder;
pub(crate) mod directives;
mod durability;
mod enums;
pub(crate) mod env;
pub(crate) mod file;
pub(crate) mod transport;

use std::path::PathBuf;
use std::time::Duration;

use crate::Error;
pub use builder::Builder;
use directives::Directive;
pub use durability::{QueueFull, SpoolFsync};
pub use enums::{
    Compression, Console, ConsoleFormat, FileRotation, Mode, ParseEnumError, Protocol,
};

/// Whether `key` and `value` can be a gRPC metadata entry (ASCII).
pub(crate) fn valid_header(key: &str, value: &str) -> bool {
    !key.is_empty()
        && !key.ends_with("-bin")
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Export headers; their values are secrets, so `Debug` shows only the keys.
#[derive(Clone, PartialEq, Default)]
pub(crate) struct Headers(pub Vec<(String, String)>);

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| format!("{k}: <redacted>")))
            .finish()
    }
}

/// A secret (the admin token): `Debug` never shows it.
#[cfg(feature = "admin")]
#[derive(Clone, PartialEq, Default)]
pub(crate) struct Secret(pub String);

#[cfg(feature = "admin")]
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Settings of the local files.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileConfig {
    pub dir: PathBuf,
    pub name: String,
    pub max_bytes: u64,
    pub backups: usize,
    /// When the rotating log starts a new file.
    pub rotation: FileRotation,
    /// Rotated files older than this (by modification time) are removed.
    pub max_age: Option<Duration>,
    /// Rotated files are compressed (gzip) in the background.
    pub compress: Compression,
    pub file_mode: u32,
    pub dir_mode: u32,
    pub spool_max_bytes: u64,
    /// `failover` and `durable`: records reach the spool at most this long after they were
    /// logged, once the collector failed (`failover`) or always (`durable`).
    pub spool_max_delay: Duration,
    /// When spool writes are synced to disk.
    pub spool_fsync: SpoolFsync,
}

/// The outputs' own thresholds, in `RUST_LOG` syntax (`None`: the output follows the global
/// filter). A spec without a bare level takes the global default level.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SinkDirectives {
    /// `LOG_OTLP_LEVEL`: the exporter (and, in `failover`, the spool, which takes what it would
    /// have sent).
    pub otlp: Option<Vec<Directive>>,
    /// `LOG_FILE_LEVEL`: the rotating log.
    pub file: Option<Vec<Directive>>,
    /// `LOG_STDOUT_LEVEL`: the console.
    pub console: Option<Vec<Directive>>,
}

/// The validated settings of one pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub service_name: String,
    pub resource_attributes: Vec<(String, String)>,
    /// Protocol, endpoint, TLS files and proxies.
    pub transport: transport::Transport,
    pub headers: Headers,
    pub compression: Compression,
    pub request_timeout: Duration,
    pub max_queue_size: usize,
    /// What a thread that logs does when the queue is full.
    pub queue_full: QueueFull,
    pub max_export_batch_size: usize,
    pub schedule_delay: Duration,
    pub export_timeout: Duration,
    pub level: log::LevelFilter,
    pub high_watermark_percent: u8,
    pub shutdown_timeout: Duration,
    pub mode: Mode,
    pub files: FileConfig,
    /// Where the console copy of each record goes.
    pub stdout: Console,
    /// How console lines look.
    pub stdout_format: ConsoleFormat,
    /// `NO_COLOR` is set: console text is never coloured.
    pub no_color: bool,
    /// Per-target directives (the default level is `level`).
    pub directives: Vec<Directive>,
    /// The outputs' own thresholds.
    pub sink_levels: SinkDirectives,
    pub level_cooldown: Duration,
    pub panic_hook: bool,
    /// Whether records keep their code location (file, line, module).
    pub code_location: bool,
    /// Whether `tracing` events carry the fields of their spans.
    pub span_fields: bool,
    /// Words marking attribute keys as secret.
    pub redact_keys: Vec<String>,
    /// Keys of the Baggage entries each record copies (`*`: all; empty: none).
    pub baggage_keys: Vec<String>,
    /// The admin server's address and token (feature `admin`).
    #[cfg(feature = "admin")]
    pub admin: Option<(std::net::SocketAddr, Secret)>,
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        let bad = |setting, reason: String| Err(Error::InvalidConfig { setting, reason });
        if self.max_queue_size == 0 || self.max_queue_size > 1 << 28 {
            return bad(
                "max_queue_size (OTEL_BLRP_MAX_QUEUE_SIZE)",
                format!("{}; expected 1 to 268435456", self.max_queue_size),
            );
        }
        if self.max_export_batch_size == 0 || self.max_export_batch_size > self.max_queue_size {
            return bad(
                "max_export_batch_size (OTEL_BLRP_MAX_EXPORT_BATCH_SIZE)",
                format!(
                    "{} is larger than the queue size; expected 1 to {} (OTEL_BLRP_MAX_QUEUE_SIZE)",
                    self.max_export_batch_size, self.max_queue_size
                ),
            );
        }
        if !(1..=100).contains(&self.high_watermark_percent) {
            return bad(
                "high_watermark_percent (LOG_QUEUE_HIGH_WATERMARK)",
                format!("{}; expected 1 to 100", self.high_watermark_percent),
            );
        }
        for (setting, d) in [
            (
                "schedule_delay (OTEL_BLRP_SCHEDULE_DELAY)",
                self.schedule_delay,
            ),
            (
                "export_timeout (OTEL_BLRP_EXPORT_TIMEOUT)",
                self.export_timeout,
            ),
            (
                "request_timeout (OTEL_EXPORTER_OTLP_TIMEOUT)",
                self.request_timeout,
            ),
            (
                "shutdown_timeout (LOG_SHUTDOWN_TIMEOUT)",
                self.shutdown_timeout,
            ),
            (
                "level_change_cooldown (LOG_LEVEL_COOLDOWN)",
                self.level_cooldown,
            ),
        ] {
            if d > Duration::from_secs(86_400) {
                return bad(setting, format!("{d:?}; expected at most 24 hours"));
            }
        }
        if self.export_timeout.is_zero() || self.request_timeout.is_zero() {
            return bad(
                "export_timeout / request_timeout",
                "zero would fail every export; expected at least 1 ms".to_owned(),
            );
        }
        if !env::valid_file_name(&self.files.name) {
            return bad(
                "file_name (LOG_FILE_NAME)",
                format!("{:?}; expected a plain file name", self.files.name),
            );
        }
        if self.files.max_bytes < 1024 {
            return bad(
                "file_max_bytes (LOG_FILE_MAX_BYTES)",
                format!("{}; expected at least 1024 bytes", self.files.max_bytes),
            );
        }
        // Only failover has a spool; a plain log's size is not held against it.
        if self.mode.spools() && self.files.spool_max_bytes < self.files.max_bytes {
            return bad(
                "spool_max_bytes (LOG_SPOOL_MAX_BYTES)",
                format!(
                    "{} is below the segment size; expected at least LOG_FILE_MAX_BYTES ({})",
                    self.files.spool_max_bytes, self.files.max_bytes
                ),
            );
        }
        let delay = self.files.spool_max_delay;
        if delay.is_zero() || delay > Duration::from_secs(60) {
            return bad(
                "spool_max_delay (LOG_SPOOL_MAX_DELAY)",
                format!("{delay:?}; expected 1 ms to 60 s"),
            );
        }
        for (setting, m) in [
            ("file_mode (LOG_FILE_MODE)", self.files.file_mode),
            ("dir_mode (LOG_DIR_MODE)", self.files.dir_mode),
        ] {
            if m > 0o777 || m & 0o600 != 0o600 {
                return bad(
                    setting,
                    format!("{m:o}; expected octal permissions the owner can read and write"),
                );
            }
        }
        Ok(())
    }

    /// The batch size the worker uses: at most the high watermark, so that a full batch can form
    /// even while INFO records are being shed.
    pub(crate) fn effective_batch_size(&self) -> usize {
        self.max_export_batch_size.min(self.high_watermark()).max(1)
    }

    /// Queue length from which sheddable records are refused.
    pub(crate) fn high_watermark(&self) -> usize {
        let n = self
            .max_queue_size
            .saturating_mul(self.high_watermark_percent as usize)
            / 100;
        n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::env::*;
    use super::*;

    #[test]
    fn defaults() {
        let c = Builder::new().config_with(EnvSettings::default()).unwrap();
        assert!(
            c.service_name.starts_with("unknown_service:"),
            "{}",
            c.service_name
        );
        assert_eq!(c.transport.endpoint, "http://localhost:4317");
        assert_eq!(c.max_queue_size, 16384);
        assert_eq!(c.max_export_batch_size, 512);
        assert_eq!(c.schedule_delay, Duration::from_millis(1000));
        assert_eq!(c.export_timeout, Duration::from_millis(30_000));
        assert_eq!(c.level, log::LevelFilter::Info);
        assert_eq!(c.high_watermark(), 13107);
    }

    #[test]
    fn code_overrides_env_and_env_overrides_defaults() {
        let env = EnvSettings {
            service_name: Some("from-env".into()),
            max_queue_size: Some(100),
            max_export_batch_size: Some(10),
            level: Some(log::LevelFilter::Warn),
            endpoint: Some((OTEL_EXPORTER_OTLP_ENDPOINT, "http://env:4317".into())),
            ..EnvSettings::default()
        };
        let c = Builder::new()
            .service_name("from-code")
            .max_queue_size(50)
            .config_with(env)
            .unwrap();
        assert_eq!(c.service_name, "from-code");
        assert_eq!(c.max_queue_size, 50);
        assert_eq!(c.max_export_batch_size, 10);
        assert_eq!(c.level, log::LevelFilter::Warn);
        assert_eq!(c.transport.endpoint, "http://env:4317");
    }

    #[test]
    fn code_beats_env_beats_file_beats_defaults() {
        let file = super::file::parse(
            std::path::Path::new("f.toml"),
            "service_name = \"from-file\"\nmode = \"tee\"\n[queue]\nmax_size = 300\nbatch_size = 30\nschedule_delay_ms = 7\n[levels]\ndefault = \"warn\"\n",
        )
        .unwrap()
        .settings;
        let env = EnvSettings {
            max_queue_size: Some(200),
            service_name: Some("from-env".into()),
            ..EnvSettings::default()
        };
        let c = Builder::new()
            .service_name("from-code")
            .config_with(env.or(file))
            .unwrap();
        assert_eq!(c.service_name, "from-code");
        assert_eq!(c.max_queue_size, 200, "env over file");
        assert_eq!(c.max_export_batch_size, 30, "file over default");
        assert_eq!(c.schedule_delay, Duration::from_millis(7));
        assert_eq!(c.mode, Mode::Tee);
        assert_eq!(c.level, log::LevelFilter::Warn);
        assert_eq!(c.export_timeout, Duration::from_millis(30_000), "default");
    }

    #[test]
    fn default_level_precedence_counts_bare_levels_in_directives() {
        let file = super::file::parse(
            std::path::Path::new("f.toml"),
            "[levels]\ndefault = \"warn\"\ndirectives = \"error,a=trace\"\n",
        )
        .unwrap()
        .settings;
        let rust_log = EnvSettings {
            directives: Some(directives::parse_directives("debug").unwrap()),
            ..EnvSettings::default()
        };
        let c = Builder::new()
            .config_with(rust_log.or(file.clone()))
            .unwrap();
        assert_eq!(
            c.level,
            log::LevelFilter::Debug,
            "RUST_LOG's bare level beats the file"
        );
        let c = Builder::new()
            .config_with(EnvSettings::default().or(file.clone()))
            .unwrap();
        assert_eq!(
            c.level,
            log::LevelFilter::Warn,
            "the file's default beats its directives' bare level"
        );
        let log_level = EnvSettings {
            level: Some(log::LevelFilter::Trace),
            ..EnvSettings::default()
        };
        let c = Builder::new()
            .directives("info")
            .config_with(log_level.or(file))
            .unwrap();
        assert_eq!(
            c.level,
            log::LevelFilter::Info,
            "code's directives beat LOG_LEVEL and the file"
        );
    }

    #[test]
    fn service_name_wins_over_resource_attribute() {
        let env = EnvSettings {
            resource_attributes: vec![("service.name".into(), "attr".into())],
            ..EnvSettings::default()
        };
        let c = Builder::new().config_with(env.clone()).unwrap();
        assert_eq!(c.service_name, "attr");
        let env = EnvSettings {
            service_name: Some("svc".into()),
            ..env
        };
        assert_eq!(Builder::new().config_with(env).unwrap().service_name, "svc");
    }

    #[test]
    fn invalid_combinations_are_errors() {
        let e = Builder::new()
            .max_queue_size(10)
            .max_export_batch_size(20)
            .config_with(EnvSettings::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE") && e.contains("20"),
            "{e}"
        );
        for bad in ["ftp://x:1", "http://", "http://:4317", "http://a b:1"] {
            let e = Builder::new()
                .endpoint(bad)
                .config_with(EnvSettings::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("expected http://host:port"), "{bad}: {e}");
        }
        let env = EnvSettings {
            endpoint: Some((
                OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
                "ftp://collector:4317".into(),
            )),
            ..EnvSettings::default()
        };
        let e = Builder::new().config_with(env).unwrap_err().to_string();
        assert!(e.contains(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT), "{e}");
    }
}
