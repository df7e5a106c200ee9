//! The only module that reads the process environment. Variable names are constants with their
//! defaults beside them. An empty value counts as unset (OpenTelemetry convention).

use std::time::Duration;

use crate::Error;
use crate::config::directives::Directive;

mod values;
use crate::config::{Compression, Mode};
use values::{boolean, bytes, count, millis, named, parse_resource_attributes};
pub(crate) use values::{
    directives_of, max_age, max_delay, octal_mode, parse_level, parse_redact_keys, valid_file_name,
};

/// Service name for the resource (`service.name`).
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// Default `service.name` when neither `OTEL_SERVICE_NAME` nor the resource attributes set it.
pub const DEFAULT_SERVICE_NAME: &str = "unknown_service";
/// Extra resource attributes, `key=value,key2=value2` (values percent-decoded).
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// Logs endpoint; wins over [`OTEL_EXPORTER_OTLP_ENDPOINT`].
pub const OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// Endpoint for all signals.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Timeout of one export RPC in milliseconds; wins over [`OTEL_EXPORTER_OTLP_TIMEOUT`].
pub const OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT";
/// Timeout of one export RPC in milliseconds, all signals.
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// Default timeout of one export RPC.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(10_000);
/// Headers sent with every export (`key=value,...`, values percent-decoded); wins over
/// [`OTEL_EXPORTER_OTLP_HEADERS`]. Values are secrets: never written to files or diagnostics.
pub const OTEL_EXPORTER_OTLP_LOGS_HEADERS: &str = "OTEL_EXPORTER_OTLP_LOGS_HEADERS";
/// Headers sent with every export, all signals.
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `gzip` or `none`; wins over [`OTEL_EXPORTER_OTLP_COMPRESSION`].
pub const OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION";
/// `gzip` or `none`, all signals.
pub const OTEL_EXPORTER_OTLP_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
/// Queue capacity in records.
pub const OTEL_BLRP_MAX_QUEUE_SIZE: &str = "OTEL_BLRP_MAX_QUEUE_SIZE";
/// Default queue capacity: 16384 records, 1 MiB of queue slots (64 bytes each), about what the
/// specification's default of 2048 takes in the official SDK (about 480 bytes per record).
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 16384;
/// Records per export batch.
pub const OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE";
/// Default records per export batch.
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;
/// Longest wait before a partial batch is exported, in milliseconds.
pub const OTEL_BLRP_SCHEDULE_DELAY: &str = "OTEL_BLRP_SCHEDULE_DELAY";
/// Default schedule delay.
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_millis(1000);
/// Bound on one batch's export including its retries, in milliseconds.
pub const OTEL_BLRP_EXPORT_TIMEOUT: &str = "OTEL_BLRP_EXPORT_TIMEOUT";
/// Default export timeout.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Default level: off, error, warn, info, debug, trace.
pub const LOG_LEVEL: &str = "LOG_LEVEL";
/// Default for [`LOG_LEVEL`].
pub const DEFAULT_LEVEL: log::LevelFilter = log::LevelFilter::Info;
/// Queue fill, in percent of its capacity, above which DEBUG/INFO/TRACE records are shed.
pub const LOG_QUEUE_HIGH_WATERMARK: &str = "LOG_QUEUE_HIGH_WATERMARK";
/// Default for [`LOG_QUEUE_HIGH_WATERMARK`].
pub const DEFAULT_HIGH_WATERMARK_PERCENT: u8 = 80;
/// Bound on the flush at shutdown (guard drop) and on `log::logger().flush()`, in milliseconds.
pub const LOG_SHUTDOWN_TIMEOUT: &str = "LOG_SHUTDOWN_TIMEOUT";
/// Default for [`LOG_SHUTDOWN_TIMEOUT`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(5000);

/// Per-target directives in `env_logger` syntax, e.g. `info,my_crate::db=debug,hyper=off`.
pub const RUST_LOG: &str = "RUST_LOG";
/// Least time between two runtime level changes, in milliseconds.
pub const LOG_LEVEL_COOLDOWN: &str = "LOG_LEVEL_COOLDOWN";
/// Default for [`LOG_LEVEL_COOLDOWN`].
pub const DEFAULT_LEVEL_COOLDOWN: Duration = Duration::from_millis(5000);
/// Keys of the active OpenTelemetry Baggage copied into each record (comma-separated, or `*`).
pub const LOG_BAGGAGE_KEYS: &str = "LOG_BAGGAGE_KEYS";
/// Words that mark attribute keys as secret (comma-separated; `none` turns redaction off).
pub const LOG_REDACT_KEYS: &str = "LOG_REDACT_KEYS";
/// Record panics as FATAL records: `true` or `false`.
pub const LOG_PANIC_HOOK: &str = "LOG_PANIC_HOOK";
/// Keep each record's code location (file, line, module) as `code.*` attributes: `true` or `false`.
pub const LOG_CODE_LOCATION: &str = "LOG_CODE_LOCATION";
/// Add the fields of the current `tracing` span and its parents to each event: `true` or `false`.
pub const LOG_SPAN_FIELDS: &str = "LOG_SPAN_FIELDS";
/// The exporter's own threshold, in `RUST_LOG` syntax (unset: the global filter).
pub const LOG_OTLP_LEVEL: &str = "LOG_OTLP_LEVEL";
/// The rotating log's own threshold, in `RUST_LOG` syntax (unset: the global filter).
pub const LOG_FILE_LEVEL: &str = "LOG_FILE_LEVEL";
/// The console's own threshold, in `RUST_LOG` syntax (unset: the global filter).
pub const LOG_STDOUT_LEVEL: &str = "LOG_STDOUT_LEVEL";
/// Where records go: `failover`, `tee`, `file-only`, `otlp-only`.
pub const LOG_MODE: &str = "LOG_MODE";
/// Directory of the local files (rotating log or spool).
pub const LOG_DIR: &str = "LOG_DIR";
/// Default for [`LOG_DIR`].
pub const DEFAULT_LOG_DIR: &str = "./logs";
/// Name of the active file in [`LOG_DIR`].
pub const LOG_FILE_NAME: &str = "LOG_FILE_NAME";
/// Default for [`LOG_FILE_NAME`].
pub const DEFAULT_FILE_NAME: &str = "app.log";
/// Size at which a file is rotated (also the spool's segment size), bytes.
pub const LOG_FILE_MAX_BYTES: &str = "LOG_FILE_MAX_BYTES";
/// Default for [`LOG_FILE_MAX_BYTES`].
pub const DEFAULT_FILE_MAX_BYTES: u64 = 10_000_000;
/// Rotated files kept in `tee` and `file-only` modes.
pub const LOG_FILE_BACKUPS: &str = "LOG_FILE_BACKUPS";
/// When the rotating log starts a new file: `size`, `hourly` or `daily`.
pub const LOG_FILE_ROTATE: &str = "LOG_FILE_ROTATE";
/// Rotated files older than this are removed: a duration such as `7d` or `12h`.
pub const LOG_FILE_MAX_AGE: &str = "LOG_FILE_MAX_AGE";
/// Compress rotated files: `gzip` or `none`.
pub const LOG_FILE_COMPRESS: &str = "LOG_FILE_COMPRESS";
/// Default for [`LOG_FILE_BACKUPS`].
pub const DEFAULT_FILE_BACKUPS: usize = 5;
/// Permissions of created files, octal.
pub const LOG_FILE_MODE: &str = "LOG_FILE_MODE";
/// Default for [`LOG_FILE_MODE`].
pub const DEFAULT_FILE_MODE: u32 = 0o600;
/// Permissions of created directories, octal.
pub const LOG_DIR_MODE: &str = "LOG_DIR_MODE";
/// Default for [`LOG_DIR_MODE`].
pub const DEFAULT_DIR_MODE: u32 = 0o700;
/// JSON lines to stdout as well: `true` or `false`.
pub const LOG_STDOUT: &str = "LOG_STDOUT";
/// How console lines look: `json` or `text`.
pub const LOG_STDOUT_FORMAT: &str = "LOG_STDOUT_FORMAT";
/// Present and not empty: console text is never coloured (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// Bound on the spool's total size on disk, bytes.
pub const LOG_SPOOL_MAX_BYTES: &str = "LOG_SPOOL_MAX_BYTES";
/// Default for [`LOG_SPOOL_MAX_BYTES`].
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Longest a record waits before it is written to the spool, ms: in `failover` once an export
/// failed, in `durable` always.
pub const LOG_SPOOL_MAX_DELAY: &str = "LOG_SPOOL_MAX_DELAY";
/// Default for [`LOG_SPOOL_MAX_DELAY`] in `failover`.
pub const DEFAULT_SPOOL_MAX_DELAY: Duration = Duration::from_millis(100);
/// Default for [`LOG_SPOOL_MAX_DELAY`] in `durable`.
pub const DEFAULT_DURABLE_MAX_DELAY: Duration = Duration::from_millis(10);
/// When spool writes are synced to disk: `off`, `always` or an interval in ms.
pub const LOG_SPOOL_FSYNC: &str = "LOG_SPOOL_FSYNC";
/// What a thread that logs does when the queue is full: `drop` or `block:<ms>`.
pub const LOG_QUEUE_FULL: &str = "LOG_QUEUE_FULL";

const LEVELS: &str = "one of off, error, warn, info, debug, trace (any case)";
const MILLIS: &str = "a whole number of milliseconds, 0 to 86400000";
const COUNT: &str = "a whole number from 1 to 268435456";
const PERCENT: &str = "a whole number from 1 to 100";
const BYTES: &str = "a whole number of bytes from 1024 to 1099511627776";
const BACKUPS: &str = "a whole number from 0 to 1000";
const OCTAL_MODE: &str = "octal permissions such as 0600 or 0640 (owner must have read and write)";
const BOOL: &str = "true or false (also 1/0, yes/no, on/off)";

/// Settings as found in the environment; `None` where a variable is unset or empty.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct EnvSettings {
    pub service_name: Option<String>,
    pub resource_attributes: Vec<(String, String)>,
    pub endpoint: Option<(&'static str, String)>,
    pub headers: Option<crate::config::Headers>,
    pub compression: Option<crate::config::Compression>,
    /// Protocol, TLS files, proxies, `OTEL_SDK_DISABLED`.
    pub transport: crate::config::transport::TransportSettings,
    pub request_timeout: Option<Duration>,
    pub max_queue_size: Option<usize>,
    pub max_export_batch_size: Option<usize>,
    pub schedule_delay: Option<Duration>,
    pub export_timeout: Option<Duration>,
    pub level: Option<log::LevelFilter>,
    pub high_watermark_percent: Option<u8>,
    pub shutdown_timeout: Option<Duration>,
    pub mode: Option<Mode>,
    pub log_dir: Option<std::path::PathBuf>,
    pub file_name: Option<String>,
    pub file_max_bytes: Option<u64>,
    pub file_backups: Option<usize>,
    pub file_rotation: Option<super::FileRotation>,
    pub file_max_age: Option<Duration>,
    pub file_compress: Option<super::Compression>,
    pub file_mode: Option<u32>,
    pub dir_mode: Option<u32>,
    pub stdout: Option<super::Console>,
    pub stdout_format: Option<super::ConsoleFormat>,
    pub no_color: Option<bool>,
    pub spool_max_bytes: Option<u64>,
    pub spool_max_delay: Option<Duration>,
    pub spool_fsync: Option<super::SpoolFsync>,
    pub queue_full: Option<super::QueueFull>,
    pub directives: Option<Vec<Directive>>,
    pub sink_levels: super::SinkDirectives,
    pub level_cooldown: Option<Duration>,
    pub panic_hook: Option<bool>,
    pub code_location: Option<bool>,
    pub span_fields: Option<bool>,
    pub redact_keys: Option<Vec<String>>,
    pub baggage_keys: Option<Vec<String>>,
}

/// The level of the last directive without a target, if there is one.
pub(crate) fn bare_level(d: &[Directive]) -> Option<log::LevelFilter> {
    d.iter().rev().find(|x| x.target.is_none()).map(|x| x.level)
}

impl EnvSettings {
    /// These settings, with `lower`'s where these have none (resource attributes: `lower`'s first,
    /// so these win on an equal key).
    pub(crate) fn or(self, lower: EnvSettings) -> EnvSettings {
        let mut resource_attributes = lower.resource_attributes;
        resource_attributes.extend(self.resource_attributes);
        EnvSettings {
            service_name: self.service_name.or(lower.service_name),
            resource_attributes,
            endpoint: self.endpoint.or(lower.endpoint),
            headers: self.headers.or(lower.headers),
            compression: self.compression.or(lower.compression),
            transport: self.transport.or(lower.transport),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            max_queue_size: self.max_queue_size.or(lower.max_queue_size),
            max_export_batch_size: self.max_export_batch_size.or(lower.max_export_batch_size),
            schedule_delay: self.schedule_delay.or(lower.schedule_delay),
            export_timeout: self.export_timeout.or(lower.export_timeout),
            level: self
                .level
                .or(self.directives.as_deref().and_then(bare_level))
                .or(lower.level)
                .or(lower.directives.as_deref().and_then(bare_level)),
            high_watermark_percent: self.high_watermark_percent.or(lower.high_watermark_percent),
            shutdown_timeout: self.shutdown_timeout.or(lower.shutdown_timeout),
            mode: self.mode.or(lower.mode),
            log_dir: self.log_dir.or(lower.log_dir),
            file_name: self.file_name.or(lower.file_name),
            file_max_bytes: self.file_max_bytes.or(lower.file_max_bytes),
            file_backups: self.file_backups.or(lower.file_backups),
            file_rotation: self.file_rotation.or(lower.file_rotation),
            file_max_age: self.file_max_age.or(lower.file_max_age),
            file_compress: self.file_compress.or(lower.file_compress),
            file_mode: self.file_mode.or(lower.file_mode),
            dir_mode: self.dir_mode.or(lower.dir_mode),
            stdout: self.stdout.or(lower.stdout),
            stdout_format: self.stdout_format.or(lower.stdout_format),
            no_color: self.no_color.or(lower.no_color),
            spool_max_bytes: self.spool_max_bytes.or(lower.spool_max_bytes),
            spool_max_delay: self.spool_max_delay.or(lower.spool_max_delay),
            spool_fsync: self.spool_fsync.or(lower.spool_fsync),
            queue_full: self.queue_full.or(lower.queue_full),
            directives: self.directives.or(lower.directives),
            sink_levels: super::SinkDirectives {
                otlp: self.sink_levels.otlp.or(lower.sink_levels.otlp),
                file: self.sink_levels.file.or(lower.sink_levels.file),
                console: self.sink_levels.console.or(lower.sink_levels.console),
            },
            level_cooldown: self.level_cooldown.or(lower.level_cooldown),
            panic_hook: self.panic_hook.or(lower.panic_hook),
            code_location: self.code_location.or(lower.code_location),
            span_fields: self.span_fields.or(lower.span_fields),
            redact_keys: self.redact_keys.or(lower.redact_keys),
            baggage_keys: self.baggage_keys.or(lower.baggage_keys),
        }
    }
}

/// The file name of this process's executable, if it can be read.
pub(crate) fn executable_name() -> Option<String> {
    std::env::current_exe()
        .ok()?
        .file_name()?
        .to_str()
        .map(str::to_owned)
}

/// This machine's host name, if it can be read.
pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
}

/// `service.name` when nothing sets it: the specification's `unknown_service:<executable name>`.
pub(crate) fn default_service_name() -> String {
    match executable_name() {
        Some(exe) => format!("{DEFAULT_SERVICE_NAME}:{exe}"),
        None => DEFAULT_SERVICE_NAME.to_owned(),
    }
}

/// Reads the process environment.
pub(crate) fn from_process() -> Result<EnvSettings, Error> {
    from_lookup(|name| std::env::var(name).ok())
}

/// Reads the settings through `get`, strictly: any value that cannot be used is an error naming the
/// variable, the value and what is accepted.
pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EnvSettings, Error> {
    let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    let endpoint = get(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)
        .map(|v| (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, v))
        .or_else(|| get(OTEL_EXPORTER_OTLP_ENDPOINT).map(|v| (OTEL_EXPORTER_OTLP_ENDPOINT, v)));
    let request_timeout = match get(OTEL_EXPORTER_OTLP_LOGS_TIMEOUT) {
        Some(v) => Some(millis(OTEL_EXPORTER_OTLP_LOGS_TIMEOUT, &v)?),
        None => get(OTEL_EXPORTER_OTLP_TIMEOUT)
            .map(|v| millis(OTEL_EXPORTER_OTLP_TIMEOUT, &v))
            .transpose()?,
    };
    let headers = match get(OTEL_EXPORTER_OTLP_LOGS_HEADERS)
        .map(|v| (OTEL_EXPORTER_OTLP_LOGS_HEADERS, v))
        .or_else(|| get(OTEL_EXPORTER_OTLP_HEADERS).map(|v| (OTEL_EXPORTER_OTLP_HEADERS, v)))
    {
        Some((var, v)) => Some(
            parse_resource_attributes(&v)
                .filter(|h| h.iter().all(|(k, v)| crate::config::valid_header(k, v)))
                .map(crate::config::Headers)
                .ok_or(Error::InvalidEnv {
                    var,
                    // Header values are secrets: never echoed.
                    value: "<redacted>".to_owned(),
                    expected: "comma-separated key=value pairs: keys lowercase ASCII letters, digits, '-', '_', '.'; values printable ASCII (percent-encoded)",
                })?,
        ),
        None => None,
    };
    let compression = match get(OTEL_EXPORTER_OTLP_LOGS_COMPRESSION)
        .map(|v| (OTEL_EXPORTER_OTLP_LOGS_COMPRESSION, v))
        .or_else(|| {
            get(OTEL_EXPORTER_OTLP_COMPRESSION).map(|v| (OTEL_EXPORTER_OTLP_COMPRESSION, v))
        }) {
        Some((var, v)) => Some(named::<Compression>(var, &v)?),
        None => None,
    };
    let transport = crate::config::transport::TransportSettings::from_lookup(&get)?;
    let resource_attributes = match get(OTEL_RESOURCE_ATTRIBUTES) {
        Some(v) => parse_resource_attributes(&v).ok_or_else(|| Error::InvalidEnv {
            var: OTEL_RESOURCE_ATTRIBUTES,
            value: v.clone(),
            expected: "comma-separated key=value pairs with non-empty keys (values percent-encoded)",
        })?,
        None => Vec::new(),
    };
    let baggage_keys = get(LOG_BAGGAGE_KEYS).map(|v| {
        v.split(',')
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .collect::<Vec<_>>()
    });
    Ok(EnvSettings {
        baggage_keys,
        service_name: get(OTEL_SERVICE_NAME).map(|v| v.trim().to_owned()),
        resource_attributes,
        endpoint,
        headers,
        compression,
        transport,
        request_timeout,
        max_queue_size: get(OTEL_BLRP_MAX_QUEUE_SIZE)
            .map(|v| count(OTEL_BLRP_MAX_QUEUE_SIZE, &v))
            .transpose()?,
        max_export_batch_size: get(OTEL_BLRP_MAX_EXPORT_BATCH_SIZE)
            .map(|v| count(OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, &v))
            .transpose()?,
        schedule_delay: get(OTEL_BLRP_SCHEDULE_DELAY)
            .map(|v| millis(OTEL_BLRP_SCHEDULE_DELAY, &v))
            .transpose()?,
        export_timeout: get(OTEL_BLRP_EXPORT_TIMEOUT)
            .map(|v| millis(OTEL_BLRP_EXPORT_TIMEOUT, &v))
            .transpose()?,
        level: get(LOG_LEVEL)
            .map(|v| {
                parse_level(&v).ok_or(Error::InvalidEnv {
                    var: LOG_LEVEL,
                    value: v.clone(),
                    expected: LEVELS,
                })
            })
            .transpose()?,
        high_watermark_percent: get(LOG_QUEUE_HIGH_WATERMARK)
            .map(|v| {
                v.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .ok_or(Error::InvalidEnv {
                        var: LOG_QUEUE_HIGH_WATERMARK,
                        value: v.clone(),
                        expected: PERCENT,
                    })
            })
            .transpose()?,
        shutdown_timeout: get(LOG_SHUTDOWN_TIMEOUT)
            .map(|v| millis(LOG_SHUTDOWN_TIMEOUT, &v))
            .transpose()?,
        mode: get(LOG_MODE)
            .map(|v| named::<Mode>(LOG_MODE, &v))
            .transpose()?,
        log_dir: get(LOG_DIR).map(std::path::PathBuf::from),
        file_name: get(LOG_FILE_NAME)
            .map(|v| {
                valid_file_name(&v)
                    .then(|| v.clone())
                    .ok_or(Error::InvalidEnv {
                        var: LOG_FILE_NAME,
                        value: v,
                        expected: "a plain file name (no '/', not '.' or '..')",
                    })
            })
            .transpose()?,
        file_max_bytes: get(LOG_FILE_MAX_BYTES)
            .map(|v| bytes(LOG_FILE_MAX_BYTES, &v))
            .transpose()?,
        file_backups: get(LOG_FILE_BACKUPS)
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 1000)
                    .ok_or(Error::InvalidEnv {
                        var: LOG_FILE_BACKUPS,
                        value: v.clone(),
                        expected: BACKUPS,
                    })
            })
            .transpose()?,
        file_rotation: get(LOG_FILE_ROTATE)
            .map(|v| named::<super::FileRotation>(LOG_FILE_ROTATE, &v))
            .transpose()?,
        file_max_age: get(LOG_FILE_MAX_AGE)
            .map(|v| max_age(LOG_FILE_MAX_AGE, &v))
            .transpose()?,
        file_compress: get(LOG_FILE_COMPRESS)
            .map(|v| named::<super::Compression>(LOG_FILE_COMPRESS, &v))
            .transpose()?,
        file_mode: get(LOG_FILE_MODE)
            .map(|v| octal_mode(LOG_FILE_MODE, &v))
            .transpose()?,
        dir_mode: get(LOG_DIR_MODE)
            .map(|v| octal_mode(LOG_DIR_MODE, &v))
            .transpose()?,
        stdout: get(LOG_STDOUT)
            .map(|v| named::<super::Console>(LOG_STDOUT, &v))
            .transpose()?,
        stdout_format: get(LOG_STDOUT_FORMAT)
            .map(|v| named::<super::ConsoleFormat>(LOG_STDOUT_FORMAT, &v))
            .transpose()?,
        // Set to anything but nothing (an empty value reads as unset).
        no_color: get(NO_COLOR).map(|_| true),
        spool_max_bytes: get(LOG_SPOOL_MAX_BYTES)
            .map(|v| bytes(LOG_SPOOL_MAX_BYTES, &v))
            .transpose()?,
        spool_max_delay: get(LOG_SPOOL_MAX_DELAY)
            .map(|v| max_delay(LOG_SPOOL_MAX_DELAY, &v))
            .transpose()?,
        spool_fsync: get(LOG_SPOOL_FSYNC)
            .map(|v| named::<super::SpoolFsync>(LOG_SPOOL_FSYNC, &v))
            .transpose()?,
        queue_full: get(LOG_QUEUE_FULL)
            .map(|v| named::<super::QueueFull>(LOG_QUEUE_FULL, &v))
            .transpose()?,
        directives: get(RUST_LOG)
            .map(|v| directives_of(RUST_LOG, &v))
            .transpose()?,
        sink_levels: super::SinkDirectives {
            otlp: get(LOG_OTLP_LEVEL)
                .map(|v| directives_of(LOG_OTLP_LEVEL, &v))
                .transpose()?,
            file: get(LOG_FILE_LEVEL)
                .map(|v| directives_of(LOG_FILE_LEVEL, &v))
                .transpose()?,
            console: get(LOG_STDOUT_LEVEL)
                .map(|v| directives_of(LOG_STDOUT_LEVEL, &v))
                .transpose()?,
        },
        level_cooldown: get(LOG_LEVEL_COOLDOWN)
            .map(|v| millis(LOG_LEVEL_COOLDOWN, &v))
            .transpose()?,
        redact_keys: get(LOG_REDACT_KEYS).map(|v| parse_redact_keys(&v)),
        panic_hook: get(LOG_PANIC_HOOK)
            .map(|v| boolean(LOG_PANIC_HOOK, &v))
            .transpose()?,
        code_location: get(LOG_CODE_LOCATION)
            .map(|v| boolean(LOG_CODE_LOCATION, &v))
            .transpose()?,
        span_fields: get(LOG_SPAN_FIELDS)
            .map(|v| boolean(LOG_SPAN_FIELDS, &v))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<EnvSettings, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_gives_no_overrides() {
        assert_eq!(env(&[]).unwrap(), EnvSettings::default());
    }

    #[test]
    fn valid_values_are_read() {
        let s = env(&[
            (OTEL_SERVICE_NAME, "payments"),
            (
                OTEL_RESOURCE_ATTRIBUTES,
                "deployment.environment=prod, team=a%20b,",
            ),
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://general:4317"),
            (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://logs:4317"),
            (OTEL_EXPORTER_OTLP_TIMEOUT, "2500"),
            (OTEL_BLRP_MAX_QUEUE_SIZE, "4096"),
            (OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, "256"),
            (OTEL_BLRP_SCHEDULE_DELAY, "200"),
            (OTEL_BLRP_EXPORT_TIMEOUT, "1000"),
            (LOG_LEVEL, "DEBUG"),
            (LOG_QUEUE_HIGH_WATERMARK, "90"),
            (LOG_SHUTDOWN_TIMEOUT, "750"),
            (LOG_MODE, "File-Only"),
            (LOG_DIR, "/var/log/app"),
            (LOG_FILE_NAME, "svc.log"),
            (LOG_FILE_MAX_BYTES, "2048"),
            (LOG_FILE_BACKUPS, "0"),
            (LOG_FILE_MODE, "0640"),
            (LOG_DIR_MODE, "750"),
            (LOG_STDOUT, "on"),
            (LOG_CODE_LOCATION, "false"),
            (LOG_SPOOL_MAX_BYTES, "1048576"),
            (RUST_LOG, "warn,my_crate::db=debug,hyper=off"),
            (LOG_LEVEL_COOLDOWN, "0"),
            (
                OTEL_EXPORTER_OTLP_HEADERS,
                "authorization=Bearer%20abc,x-tenant=7",
            ),
            (OTEL_EXPORTER_OTLP_COMPRESSION, "GZIP"),
            (
                crate::config::transport::OTEL_EXPORTER_OTLP_CERTIFICATE,
                "/etc/ca.pem",
            ),
        ])
        .unwrap();
        assert_eq!(s.service_name.as_deref(), Some("payments"));
        assert_eq!(
            s.resource_attributes,
            vec![
                ("deployment.environment".into(), "prod".into()),
                ("team".into(), "a b".into())
            ]
        );
        assert_eq!(
            s.endpoint,
            Some((OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://logs:4317".into()))
        );
        assert_eq!(s.request_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(s.max_queue_size, Some(4096));
        assert_eq!(s.max_export_batch_size, Some(256));
        assert_eq!(s.schedule_delay, Some(Duration::from_millis(200)));
        assert_eq!(s.export_timeout, Some(Duration::from_millis(1000)));
        assert_eq!(s.level, Some(log::LevelFilter::Debug));
        assert_eq!(s.high_watermark_percent, Some(90));
        assert_eq!(s.shutdown_timeout, Some(Duration::from_millis(750)));
        assert_eq!(s.mode, Some(Mode::FileOnly));
        assert_eq!(s.log_dir, Some("/var/log/app".into()));
        assert_eq!(s.file_name.as_deref(), Some("svc.log"));
        assert_eq!(s.file_max_bytes, Some(2048));
        assert_eq!(s.file_backups, Some(0));
        assert_eq!(s.code_location, Some(false));
        assert_eq!(s.file_mode, Some(0o640));
        assert_eq!(s.dir_mode, Some(0o750));
        assert_eq!(s.stdout, Some(super::super::Console::Stdout));
        assert_eq!(s.spool_max_bytes, Some(1 << 20));
        assert_eq!(
            s.directives
                .map(|d| crate::config::directives::format_directives(&d))
                .as_deref(),
            Some("warn,my_crate::db=debug,hyper=off")
        );
        assert_eq!(s.level_cooldown, Some(Duration::ZERO));
        assert_eq!(
            s.headers,
            Some(crate::config::Headers(vec![
                ("authorization".into(), "Bearer abc".into()),
                ("x-tenant".into(), "7".into())
            ]))
        );
        assert_eq!(s.compression, Some(Compression::Gzip));
        assert_eq!(
            s.transport.certificate,
            Some(crate::config::transport::PemFile {
                setting: crate::config::transport::OTEL_EXPORTER_OTLP_CERTIFICATE,
                path: "/etc/ca.pem".into()
            })
        );
    }

    #[test]
    fn general_endpoint_is_used_without_the_logs_one_and_empty_means_unset() {
        let s = env(&[
            (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, ""),
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://general:4317"),
            (LOG_LEVEL, "  "),
        ])
        .unwrap();
        assert_eq!(
            s.endpoint,
            Some((OTEL_EXPORTER_OTLP_ENDPOINT, "http://general:4317".into()))
        );
        assert_eq!(s.level, None);
    }

    #[test]
    fn an_invalid_header_never_echoes_its_value() {
        for v in [
            "Authorization=Bearer secret-token",
            "x=secret-token\u{1}",
            "novalue-secret-token",
        ] {
            let err = env(&[(OTEL_EXPORTER_OTLP_HEADERS, v)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(OTEL_EXPORTER_OTLP_HEADERS), "{err}");
            assert!(!err.contains("secret-token"), "{err}");
        }
    }

    #[test]
    fn invalid_values_name_the_variable_the_value_and_what_is_accepted() {
        let cases = [
            (LOG_LEVEL, "LOUD", "off, error, warn"),
            (OTEL_BLRP_MAX_QUEUE_SIZE, "-1", "whole number"),
            (OTEL_BLRP_MAX_QUEUE_SIZE, "0", "whole number"),
            (OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, "many", "whole number"),
            (OTEL_BLRP_SCHEDULE_DELAY, "1s", "milliseconds"),
            (OTEL_BLRP_EXPORT_TIMEOUT, "-5", "milliseconds"),
            (OTEL_EXPORTER_OTLP_TIMEOUT, "x", "milliseconds"),
            (LOG_QUEUE_HIGH_WATERMARK, "0", "1 to 100"),
            (LOG_QUEUE_HIGH_WATERMARK, "101", "1 to 100"),
            (LOG_SHUTDOWN_TIMEOUT, "soon", "milliseconds"),
            (OTEL_RESOURCE_ATTRIBUTES, "novalue", "key=value"),
            (
                LOG_MODE,
                "sometimes",
                "failover, durable, tee, file-only, otlp-only",
            ),
            (LOG_FILE_NAME, "../escape.log", "plain file name"),
            (LOG_FILE_MAX_BYTES, "10", "bytes"),
            (LOG_FILE_BACKUPS, "-2", "0 to 1000"),
            (LOG_FILE_ROTATE, "weekly", "size, hourly or daily"),
            (LOG_FILE_MAX_AGE, "a week", "7d"),
            (LOG_FILE_MAX_AGE, "5s", "a minute or more"),
            (LOG_FILE_COMPRESS, "zip", "gzip or none"),
            (LOG_OTLP_LEVEL, "my_crate=loud", "env_logger directives"),
            (LOG_FILE_LEVEL, "a=b=c", "env_logger directives"),
            (LOG_STDOUT_LEVEL, "x=noisy", "env_logger directives"),
            (LOG_FILE_MODE, "0400", "octal"),
            (LOG_FILE_MODE, "rw-------", "octal"),
            (LOG_DIR_MODE, "0999", "octal"),
            (LOG_STDOUT, "maybe", "false, stdout or stderr"),
            (LOG_STDOUT_FORMAT, "html", "json or text"),
            (LOG_CODE_LOCATION, "sometimes", "true or false"),
            (LOG_SPOOL_MAX_BYTES, "lots", "bytes"),
            (LOG_SPOOL_MAX_DELAY, "0", "1 to 60000"),
            (LOG_SPOOL_FSYNC, "sometimes", "off, always"),
            (LOG_QUEUE_FULL, "block:0", "block:<ms>"),
            (RUST_LOG, "my_crate=loud", "env_logger directives"),
            (RUST_LOG, "info/foo.*", "no /regex"),
            (LOG_LEVEL_COOLDOWN, "5s", "milliseconds"),
            (OTEL_EXPORTER_OTLP_COMPRESSION, "zstd", "gzip or none"),
        ];
        for (var, value, accepted) in cases {
            let err = env(&[(var, value)]).expect_err(var).to_string();
            assert!(err.contains(var), "{err}");
            assert!(err.contains(value), "{err}");
            assert!(err.contains(accepted), "{err}");
        }
    }
}
