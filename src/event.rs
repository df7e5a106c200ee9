//! The owned event model: severities, span contexts, and [`LogEvent`], a record with all of its data
//! owned. No I/O happens here.
//!
//! A `log::Record` becomes a compact queued record on the calling thread (see `capture` and
//! `compact`), which the worker reads in place; a `LogEvent` is what the bridge makes itself (audit
//! and panic records), what replay reads back from the spool, and what tests compare.

use std::borrow::Cow;

/// OpenTelemetry severity of a record, per the OpenTelemetry logs data model.
///
/// | `log::Level` | severity_number | severity_text |
/// |---|---|---|
/// | `Trace` | 1 | `TRACE` |
/// | `Debug` | 5 | `DEBUG` |
/// | `Info` | 9 | `INFO` |
/// | `Warn` | 13 | `WARN` |
/// | `Error` | 17 | `ERROR` |
/// | (panic) | 21 | `FATAL` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Severity {
    /// `TRACE`, severity number 1.
    Trace = 1,
    /// `DEBUG`, severity number 5.
    Debug = 5,
    /// `INFO`, severity number 9.
    Info = 9,
    /// `WARN`, severity number 13.
    Warn = 13,
    /// `ERROR`, severity number 17.
    Error = 17,
    /// `FATAL`, severity number 21 (used for panics).
    Fatal = 21,
}

impl Severity {
    /// The OpenTelemetry `severity_number`.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The OpenTelemetry `severity_text`.
    pub fn text(self) -> &'static str {
        match self {
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

impl From<log::Level> for Severity {
    fn from(level: log::Level) -> Self {
        match level {
            log::Level::Error => Severity::Error,
            log::Level::Warn => Severity::Warn,
            log::Level::Info => Severity::Info,
            log::Level::Debug => Severity::Debug,
            log::Level::Trace => Severity::Trace,
        }
    }
}

/// A typed attribute value, as the OpenTelemetry `AnyValue` scalar kinds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue {
    Int(i64),
    Double(f64),
    Bool(bool),
    Str(Box<str>),
}

/// One key-value attribute of a record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attr {
    pub key: Cow<'static, str>,
    pub value: AttrValue,
}

/// The trace context that was active when the record was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

/// A record captured into owned data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogEvent {
    /// When the record was logged, nanoseconds since the Unix epoch (UTC).
    pub time_unix_nano: u64,
    /// When the bridge observed it; for a `log` record the same instant as `time_unix_nano`.
    pub observed_time_unix_nano: u64,
    pub severity: Severity,
    /// The formatted message; borrowed when `Arguments::as_str()` gave a static string.
    pub body: Cow<'static, str>,
    /// The record's target, exported as the instrumentation scope name.
    pub target: Cow<'static, str>,
    pub module_path: Option<Cow<'static, str>>,
    pub file: Option<Cow<'static, str>>,
    pub line: Option<u32>,
    /// `None` when no valid span was active: the fields are left empty, never zero-filled.
    pub trace: Option<TraceContext>,
    pub attributes: Vec<Attr>,
    /// Attributes left out because the record had more than the limit (128).
    pub dropped_attributes: u32,
}

#[cfg(test)]
mod size {
    /// Events are built for the spool's replay and the bridge's own records: kept small.
    #[test]
    fn the_event_stays_within_its_budget() {
        assert!(
            size_of::<super::LogEvent>() <= 176,
            "{}",
            size_of::<super::LogEvent>()
        );
        assert!(size_of::<super::Attr>() <= 48);
    }
}
