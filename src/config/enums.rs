//! The settings that are one of a few names: [`Mode`], [`Compression`] and [`Protocol`], parsed with `FromStr`
//! (errors: [`ParseEnumError`]) and printed in their canonical spelling with `Display`.

use std::str::FromStr;

/// A [`Mode`] or [`Compression`] name that is not one of the accepted spellings (from their
/// `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected {expected}")]
pub struct ParseEnumError {
    pub(super) what: &'static str,
    pub(super) value: String,
    pub(super) expected: &'static str,
}

impl ParseEnumError {
    /// The value given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What is accepted, e.g. `one of failover, durable, tee, file-only, otlp-only`.
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// OTLP first; what OTLP cannot deliver goes to the spool in the log directory and is replayed
    /// when the collector answers again (also after a restart).
    #[default]
    Failover,
    /// Every record both to OTLP and to the rotating file; the file is never replayed.
    Tee,
    /// Only the rotating file; no collector.
    FileOnly,
    /// Only OTLP; what cannot be delivered is dropped and counted.
    OtlpOnly,
    /// Write-ahead: every record is appended to the spool before it is exported, and the spool's
    /// cursor moves when the collector acknowledges it, so a crash loses at most what was logged
    /// in the last `LOG_SPOOL_MAX_DELAY`; otherwise as `failover`.
    Durable,
}

impl FromStr for Mode {
    type Err = ParseEnumError;

    /// Parses `failover`, `durable`, `tee`, `file-only` or `otlp-only` (any case, `_` for `-`; also
    /// `file` and `otlp`).
    fn from_str(s: &str) -> Result<Mode, ParseEnumError> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "failover" => Ok(Mode::Failover),
            "tee" => Ok(Mode::Tee),
            "file-only" | "file" => Ok(Mode::FileOnly),
            "otlp-only" | "otlp" => Ok(Mode::OtlpOnly),
            "durable" => Ok(Mode::Durable),
            _ => Err(ParseEnumError {
                what: "mode",
                value: s.to_owned(),
                expected: "one of failover, durable, tee, file-only, otlp-only",
            }),
        }
    }
}

/// The canonical spelling, as [`Mode::as_str`].
impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Mode {
    /// The mode's name as `LOG_MODE` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Failover => "failover",
            Mode::Tee => "tee",
            Mode::FileOnly => "file-only",
            Mode::OtlpOnly => "otlp-only",
            Mode::Durable => "durable",
        }
    }

    /// Whether the mode has a spool (`failover` and `durable`).
    pub(crate) fn spools(self) -> bool {
        matches!(self, Mode::Failover | Mode::Durable)
    }

    /// Whether records are exported over OTLP.
    pub(crate) fn uses_otlp(self) -> bool {
        self != Mode::FileOnly
    }
}

/// Compression of export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
}

impl FromStr for Compression {
    type Err = ParseEnumError;

    /// Parses `gzip` or `none` (any case).
    fn from_str(s: &str) -> Result<Compression, ParseEnumError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gzip" => Ok(Compression::Gzip),
            "none" => Ok(Compression::None),
            _ => Err(ParseEnumError {
                what: "compression",
                value: s.to_owned(),
                expected: "gzip or none",
            }),
        }
    }
}

/// The canonical spelling: `gzip` or `none`.
impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        })
    }
}

/// The OTLP transport and encoding (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC (the default; port 4317).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`application/x-protobuf`; port 4318, path `/v1/logs`).
    HttpProtobuf,
    /// OTLP/HTTP with OTLP JSON bodies (`application/json`; port 4318, path `/v1/logs`).
    HttpJson,
}

impl FromStr for Protocol {
    type Err = ParseEnumError;

    /// Parses `grpc`, `http/protobuf` or `http/json` (any case).
    fn from_str(s: &str) -> Result<Protocol, ParseEnumError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            _ => Err(ParseEnumError {
                what: "protocol",
                value: s.to_owned(),
                expected: "one of grpc, http/protobuf, http/json",
            }),
        }
    }
}

/// The specification's spelling: `grpc`, `http/protobuf` or `http/json`.
impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        })
    }
}

impl Protocol {
    /// Whether this is one of the OTLP/HTTP encodings.
    pub fn is_http(self) -> bool {
        self != Protocol::Grpc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case_and_print_back_canonically() {
        for (text, mode) in [
            ("failover", Mode::Failover),
            ("TEE", Mode::Tee),
            ("File_Only", Mode::FileOnly),
            ("otlp", Mode::OtlpOnly),
        ] {
            assert_eq!(text.parse::<Mode>(), Ok(mode));
            assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
        }
        assert_eq!(Mode::FileOnly.to_string(), "file-only");
        assert_eq!(" GZIP ".parse::<Compression>(), Ok(Compression::Gzip));
        assert_eq!(Compression::None.to_string(), "none");
        assert_eq!(Compression::Gzip.to_string(), "gzip");
        for p in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
            assert_eq!(p.to_string().parse::<Protocol>(), Ok(p));
        }
        assert_eq!(
            "HTTP/Protobuf".parse::<Protocol>(),
            Ok(Protocol::HttpProtobuf)
        );
        assert_eq!(
            "http".parse::<Protocol>().unwrap_err().to_string(),
            "invalid protocol \"http\": expected one of grpc, http/protobuf, http/json"
        );
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_it_and_what_is_accepted() {
        let e = "sometimes".parse::<Mode>().unwrap_err();
        assert_eq!(e.value(), "sometimes");
        assert_eq!(
            e.to_string(),
            "invalid mode \"sometimes\": expected one of failover, durable, tee, file-only, otlp-only"
        );
        let e = "zstd".parse::<Compression>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid compression \"zstd\": expected gzip or none"
        );
        let _: &dyn std::error::Error = &e;
    }
}

/// Where the console copy of each record goes (`LOG_STDOUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Console {
    /// No console copy (the default).
    #[default]
    Off,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl FromStr for Console {
    type Err = ParseEnumError;

    /// Parses `true` (stdout), `false`, `stdout` or `stderr` (any case; also `1`/`0`, `yes`/`no`,
    /// `on`/`off`).
    fn from_str(s: &str) -> Result<Console, ParseEnumError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "stdout" => Ok(Console::Stdout),
            "false" | "0" | "no" | "off" => Ok(Console::Off),
            "stderr" => Ok(Console::Stderr),
            _ => Err(ParseEnumError {
                what: "console output",
                value: s.to_owned(),
                expected: "true (stdout), false, stdout or stderr",
            }),
        }
    }
}

impl std::fmt::Display for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Console::Off => "false",
            Console::Stdout => "stdout",
            Console::Stderr => "stderr",
        })
    }
}

/// How the console copy of each record looks (`LOG_STDOUT_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConsoleFormat {
    /// One JSON line per record, as in the files (the default: for containers and collectors).
    #[default]
    Json,
    /// One line of text per record, for people: time, level, target, message, key-values, trace
    /// id; coloured by level when the stream is a terminal and `NO_COLOR` is unset.
    Text,
}

impl FromStr for ConsoleFormat {
    type Err = ParseEnumError;

    /// Parses `json` or `text` (any case).
    fn from_str(s: &str) -> Result<ConsoleFormat, ParseEnumError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(ConsoleFormat::Json),
            "text" => Ok(ConsoleFormat::Text),
            _ => Err(ParseEnumError {
                what: "console format",
                value: s.to_owned(),
                expected: "json or text",
            }),
        }
    }
}

impl std::fmt::Display for ConsoleFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConsoleFormat::Json => "json",
            ConsoleFormat::Text => "text",
        })
    }
}

/// When the rotating log starts a new file (`LOG_FILE_ROTATE`); `LOG_FILE_MAX_BYTES` caps a file
/// in every policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FileRotation {
    /// At `LOG_FILE_MAX_BYTES` only; rotated files are `app.log.1` (newest) .. `app.log.N`.
    #[default]
    Size,
    /// At each UTC hour, and at the size cap; rotated files are named with their hour,
    /// `app.log.2026-12-03T14` (a second one of the same hour `app.log.2026-12-03T14.1`).
    Hourly,
    /// At each UTC midnight, and at the size cap; rotated files are named with their day,
    /// `app.log.2026-12-03` (a second one of the same day `app.log.2026-12-03.1`).
    Daily,
}

impl FromStr for FileRotation {
    type Err = ParseEnumError;

    /// Parses `size`, `hourly` or `daily` (any case).
    fn from_str(s: &str) -> Result<FileRotation, ParseEnumError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "size" => Ok(FileRotation::Size),
            "hourly" => Ok(FileRotation::Hourly),
            "daily" => Ok(FileRotation::Daily),
            _ => Err(ParseEnumError {
                what: "file rotation",
                value: s.to_owned(),
                expected: "size, hourly or daily",
            }),
        }
    }
}

impl std::fmt::Display for FileRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileRotation::Size => "size",
            FileRotation::Hourly => "hourly",
            FileRotation::Daily => "daily",
        })
    }
}
