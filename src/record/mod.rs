//! The one record model. A leaf of the crate: it imports only the clock.
//!
//! ```text
//! log::Record --capture--> Queued (in a queue slot) --Queued::record--> Record<'_> --> OTLP encoder
//!                                                                                  --> JSON line writer
//! JSON line (spool) --decode--> LogEvent --LogEvent::record--> Record<'_> ----------> (the same readers)
//! ```
//!
//! - [`Record`] is what every reader on the worker's side reads: the OTLP encoder, the JSON line
//!   writer (rotating file, stdout, spool) and replay. It borrows its strings from where the record
//!   lives: a [`Queued`](queued::Queued) record taken from the queue, or a [`LogEvent`] read back
//!   from the spool.
//! - [`Queued`](queued::Queued) is the form a record takes in a queue slot: typed fields, plus the
//!   variable part (message, key-values) as bytes. Those bytes are parsed, never trusted: reading
//!   them is safe code, and arbitrary bytes give a [`ReadError`](queued::ReadError).
//! - [`LogEvent`] owns all of its data: what replay reads from a line, what tests compare.

pub(crate) mod capture;
pub(crate) mod names;
mod owned;
mod packed;
pub(crate) mod queued;
mod value;

pub(crate) use owned::{Attr, AttrValue, LogEvent};
pub(crate) use packed::MAX_DEPTH;
pub(crate) use value::{Array, Map, Shape, Value};

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

    /// The `log` level a record of this severity is filtered as (FATAL as ERROR).
    pub(crate) fn log_level(self) -> log::Level {
        match self {
            Severity::Trace => log::Level::Trace,
            Severity::Debug => log::Level::Debug,
            Severity::Info => log::Level::Info,
            Severity::Warn => log::Level::Warn,
            Severity::Error | Severity::Fatal => log::Level::Error,
        }
    }

    /// The severity of a `severity_number` (any number of its range: 9 to 12 are INFO).
    pub(crate) fn from_number(n: i64) -> Option<Severity> {
        Some(match n {
            1..=4 => Severity::Trace,
            5..=8 => Severity::Debug,
            9..=12 => Severity::Info,
            13..=16 => Severity::Warn,
            17..=20 => Severity::Error,
            21..=24 => Severity::Fatal,
            _ => return None,
        })
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

/// The trace context that was active when the record was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

/// An attribute's key, with its interned id when it has one (the redactor decides once per id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key<'a> {
    pub name: &'a str,
    pub id: Option<u16>,
}

impl<'a> Key<'a> {
    /// A key that is not interned.
    pub(crate) fn plain(name: &'a str) -> Self {
        Key { name, id: None }
    }
}

/// A record, read: the one shape every reader on the worker's side takes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    /// When the record was logged, nanoseconds since the Unix epoch (UTC).
    pub time: u64,
    /// When the bridge observed it; for a `log` record the same instant as `time`.
    pub observed: u64,
    pub severity: Severity,
    /// The record's target, exported as the instrumentation scope name.
    pub target: &'a str,
    /// The formatted message.
    pub body: &'a str,
    pub module: Option<&'a str>,
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    /// `None` when no valid span was active: the fields are left empty, never zero-filled.
    pub trace: Option<TraceContext>,
    pub attributes: Attributes<'a>,
    /// Attributes left out because the record had more than the limits allow.
    pub dropped_attributes: u32,
    /// The OpenTelemetry `event_name`: the value of the record's `event.name` key-value.
    pub event_name: Option<&'a str>,
    /// A body that is not a string (an SDK record's map, array, number...): then `body` is empty
    /// and this is the body.
    pub body_value: Option<Value<'a>>,
}

/// A record's attributes, in order. Made only from parts already checked (the queued bytes are
/// parsed whole before a [`Record`] is handed out), so iterating cannot fail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attributes<'a>(AttrSource<'a>);

#[derive(Debug, Clone, Copy)]
enum AttrSource<'a> {
    /// The attribute section of a queued record's bytes, checked by [`queued::Queued::check`].
    Packed(&'a [u8]),
    Owned(&'a [Attr]),
}

impl<'a> Attributes<'a> {
    pub(crate) fn owned(attrs: &'a [Attr]) -> Self {
        Attributes(AttrSource::Owned(attrs))
    }

    /// `bytes` must have passed [`queued::Queued::check`] (else iteration stops at the first
    /// malformed attribute: safe, but the rest is not seen).
    pub(crate) fn packed(bytes: &'a [u8]) -> Self {
        Attributes(AttrSource::Packed(bytes))
    }

    /// The attributes in order.
    pub(crate) fn iter(&self) -> AttrIter<'a> {
        AttrIter(match self.0 {
            AttrSource::Packed(b) => IterSource::Packed(queued::AttrReader::new(b)),
            AttrSource::Owned(a) => IterSource::Owned(a.iter()),
        })
    }
}

/// Iterator over [`Attributes`] (cheap to clone: writers walk the attributes more than once).
#[derive(Clone)]
pub(crate) struct AttrIter<'a>(IterSource<'a>);

#[derive(Clone)]
enum IterSource<'a> {
    Packed(queued::AttrReader<'a>),
    Owned(std::slice::Iter<'a, Attr>),
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = (Key<'a>, Value<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterSource::Packed(r) => r.next_attr().ok().flatten(),
            IterSource::Owned(it) => it.next().map(|a| (Key::plain(&a.key), a.value.as_value())),
        }
    }
}
