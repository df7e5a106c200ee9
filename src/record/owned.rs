//! [`LogEvent`]: a record with all of its data owned. What replay reads back from a spool line and
//! what tests compare; read through [`LogEvent::record`] like any other record.

use std::borrow::Cow;

use super::value::Nested;
use super::{Attributes, Record, Severity, Shape, TraceContext, Value};

/// A typed attribute value, owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue {
    Int(i64),
    Double(f64),
    Bool(bool),
    Str(Box<str>),
    Bytes(Box<[u8]>),
    Null,
    Array(Box<[AttrValue]>),
    Map(Box<[(Box<str>, AttrValue)]>),
}

impl AttrValue {
    pub(crate) fn as_value(&self) -> Value<'_> {
        match self {
            AttrValue::Int(i) => Value::Int(*i),
            AttrValue::Double(d) => Value::Double(*d),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Str(s) => Value::Str(s),
            AttrValue::Bytes(b) => Value::Bytes(b),
            AttrValue::Null => Value::Null,
            AttrValue::Array(a) => Value::Nested(Nested::OwnedArray(a)),
            AttrValue::Map(m) => Value::Nested(Nested::OwnedMap(m)),
        }
    }
}

impl From<Value<'_>> for AttrValue {
    fn from(v: Value<'_>) -> Self {
        match v {
            Value::Int(i) => AttrValue::Int(i),
            Value::Double(d) => AttrValue::Double(d),
            Value::Bool(b) => AttrValue::Bool(b),
            Value::Str(s) => AttrValue::Str(s.into()),
            Value::Bytes(b) => AttrValue::Bytes(b.into()),
            Value::Null => AttrValue::Null,
            Value::Nested(n) => match n.shape() {
                Shape::Array(a) => AttrValue::Array(a.iter().map(AttrValue::from).collect()),
                Shape::Map(m) => {
                    AttrValue::Map(m.iter().map(|(k, v)| (k.into(), v.into())).collect())
                }
            },
        }
    }
}

/// One key-value attribute of a record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attr {
    pub key: Cow<'static, str>,
    pub value: AttrValue,
}

/// A record with all of its data owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogEvent {
    /// When the record was logged, nanoseconds since the Unix epoch (UTC).
    pub time_unix_nano: u64,
    /// When the bridge observed it; for a `log` record the same instant as `time_unix_nano`.
    pub observed_time_unix_nano: u64,
    pub severity: Severity,
    pub body: Cow<'static, str>,
    /// The record's target, exported as the instrumentation scope name.
    pub target: Cow<'static, str>,
    pub module_path: Option<Cow<'static, str>>,
    pub file: Option<Cow<'static, str>>,
    pub line: Option<u32>,
    /// `None` when no valid span was active: the fields are left empty, never zero-filled.
    pub trace: Option<TraceContext>,
    pub attributes: Vec<Attr>,
    /// Attributes left out because the record had more than the limits allow.
    pub dropped_attributes: u32,
    /// The OpenTelemetry `event_name`, when the record has one.
    pub event_name: Option<Box<str>>,
    /// A body that is not a string (rare: boxed); then `body` is empty.
    pub body_value: Option<Box<AttrValue>>,
}

impl LogEvent {
    /// The event as a [`Record`], borrowing its data.
    pub(crate) fn record(&self) -> Record<'_> {
        Record {
            time: self.time_unix_nano,
            observed: self.observed_time_unix_nano,
            severity: self.severity,
            target: &self.target,
            body: &self.body,
            module: self.module_path.as_deref(),
            file: self.file.as_deref(),
            line: self.line,
            trace: self.trace,
            attributes: Attributes::owned(&self.attributes),
            dropped_attributes: self.dropped_attributes,
            event_name: self.event_name.as_deref(),
            body_value: self.body_value.as_deref().map(AttrValue::as_value),
        }
    }
}

impl From<&Record<'_>> for LogEvent {
    /// A copy of the record's data.
    fn from(r: &Record<'_>) -> Self {
        let owned = |s: &str| Cow::Owned(s.to_owned());
        LogEvent {
            time_unix_nano: r.time,
            observed_time_unix_nano: r.observed,
            severity: r.severity,
            body: owned(r.body),
            target: owned(r.target),
            module_path: r.module.map(owned),
            file: r.file.map(owned),
            line: r.line,
            trace: r.trace,
            attributes: r
                .attributes
                .iter()
                .map(|(k, v)| Attr {
                    key: owned(k.name),
                    value: v.into(),
                })
                .collect(),
            dropped_attributes: r.dropped_attributes,
            event_name: r.event_name.map(Into::into),
            body_value: r.body_value.map(|v| Box::new(v.into())),
        }
    }
}

#[cfg(test)]
mod size {
    /// Events are built for the spool's replay and the bridge's own records: kept small (the boxed
    /// body value of SDK records took it from 192 to 200 bytes).
    #[test]
    fn the_event_stays_within_its_budget() {
        assert!(
            size_of::<super::LogEvent>() <= 200,
            "{}",
            size_of::<super::LogEvent>()
        );
        assert!(size_of::<super::Attr>() <= 48);
    }
}
