//! The only place an OpenTelemetry SDK record is read: it becomes a [`Queued`] record with the same
//! bounds as a `log` record.
//!
//! - body of any kind: a string is the body, another kind the record's body value (structures
//!   bounded as attributes are: depth, elements, bytes);
//! - attributes with their kinds, `event_name`, both timestamps (no timestamp: the observed one),
//!   the trace context the record carries;
//! - severity: the number's range (`INFO2` is INFO, 9); none is INFO;
//! - scope: the record's target, else the instrumentation scope's name (as the SDK's OTLP exporter
//!   names the exported scope).

use std::time::SystemTime;

use opentelemetry::logs::AnyValue;
use opentelemetry_sdk::logs::SdkLogRecord;

use super::{
    Admit, AttrWriter, Baggage, MAX_BODY_BYTES, MAX_VALUE_BYTES, PAYLOAD_BUFFER, with_buffer,
    with_scratch, write_bounded,
};
use crate::record::queued::{Queued, Writer};
use crate::record::{AttrValue, MAX_DEPTH, Severity, TraceContext, Value, names};

/// Most elements (array items and map entries, at every level) kept of one structured value.
const MAX_ELEMENTS: usize = 1024;

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Captures an SDK record whose instrumentation scope is named `scope_name`.
pub(crate) fn capture_record(record: &SdkLogRecord, scope_name: &str, baggage: &Baggage) -> Queued {
    let now = crate::clock::now_unix_nanos();
    let observed = record.observed_timestamp().map_or(now, nanos);
    let time = record.timestamp().map_or(observed, nanos);
    let severity = record
        .severity_number()
        .and_then(|s| Severity::from_number(s as i64))
        .unwrap_or(Severity::Info);
    let trace = record.trace_context().map(|t| TraceContext {
        trace_id: t.trace_id.to_bytes(),
        span_id: t.span_id.to_bytes(),
        flags: t.trace_flags.map_or(0, |f| f.to_u8()),
    });
    with_buffer(&PAYLOAD_BUFFER, |buf| {
        let mut w = Writer::new(buf, severity, time, trace);
        let target = record.target().map_or(scope_name, |t| t.as_ref());
        w.target(names::id(target), target);
        let mut left_out = 0u32;
        match record.body() {
            None => {
                w.body("");
                w.observed(observed);
            }
            Some(AnyValue::String(s)) => {
                with_scratch(|text| {
                    write_bounded(text, &format_args!("{}", s.as_str()), MAX_BODY_BYTES);
                    w.body(text);
                });
                w.observed(observed);
            }
            Some(other) => {
                w.body("");
                w.observed(observed);
                let mut budget = Budget::default();
                let v = owned(other, 0, &mut budget);
                left_out = budget.left_out;
                w.body_value(v.as_value());
            }
        }
        let mut attrs = AttrWriter::new(&mut w);
        attrs.dropped = left_out;
        if let Some(name) = record.event_name() {
            attrs.event_name(&name);
        }
        for (key, value) in record.attributes_iter() {
            let key = key.as_str();
            match attrs.admit(key) {
                Admit::EventName => attrs.event_name(&Text(value)),
                Admit::No => {}
                Admit::Attribute => attribute(&mut attrs, key, value),
            }
        }
        if !matches!(baggage, Baggage::Off) {
            let own = |k: &str| record.attributes_iter().any(|(key, _)| key.as_str() == k);
            super::write_baggage(&mut attrs, &own, baggage);
        }
        let dropped = attrs.dropped;
        w.finish(dropped)
    })
}

/// One attribute with its kind, bounded like a `log` key-value.
fn attribute(attrs: &mut AttrWriter<'_, '_>, key: &str, value: &AnyValue) {
    let scalar = match value {
        AnyValue::String(s) => return attrs.string(key, s.as_str()),
        AnyValue::Int(i) => Value::Int(*i),
        AnyValue::Double(d) => Value::Double(*d),
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::Bytes(b) => return attrs.bytes(key, b),
        other => {
            let mut budget = Budget::default();
            let v = owned(other, 0, &mut budget);
            if !attrs.fits(key.len() + budget.bytes) {
                return attrs.drop_one();
            }
            attrs.kept += 1;
            attrs.dropped = attrs.dropped.saturating_add(budget.left_out);
            attrs.w.attr(key, v.as_value());
            return;
        }
    };
    if !attrs.fits(key.len()) {
        return attrs.drop_one();
    }
    attrs.kept += 1;
    attrs.w.attr(key, scalar);
}

/// What one structured value may still take, and what it left out.
#[derive(Default)]
struct Budget {
    elements: usize,
    bytes: usize,
    left_out: u32,
}

/// `v` as an owned value within the bounds: [`MAX_DEPTH`] levels, [`MAX_ELEMENTS`] elements and
/// about [`MAX_VALUE_BYTES`] bytes of strings, keys and bytes; what does not fit is counted.
fn owned(v: &AnyValue, depth: usize, budget: &mut Budget) -> AttrValue {
    let text = |s: &str, budget: &mut Budget| {
        let room = MAX_VALUE_BYTES.saturating_sub(budget.bytes);
        with_scratch(|buf| {
            write_bounded(buf, &format_args!("{s}"), room);
            budget.bytes += buf.len();
            AttrValue::Str(buf.as_str().into())
        })
    };
    match v {
        AnyValue::Int(i) => AttrValue::Int(*i),
        AnyValue::Double(d) => AttrValue::Double(*d),
        AnyValue::Boolean(b) => AttrValue::Bool(*b),
        AnyValue::String(s) => text(s.as_str(), budget),
        AnyValue::Bytes(b) => {
            let room = MAX_VALUE_BYTES.saturating_sub(budget.bytes);
            let kept = &b[..b.len().min(room)];
            if kept.len() < b.len() {
                budget.left_out = budget.left_out.saturating_add(1);
            }
            budget.bytes += kept.len();
            AttrValue::Bytes(kept.into())
        }
        _ if depth >= MAX_DEPTH => text("[nested too deep]", budget),
        AnyValue::ListAny(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                if budget.elements >= MAX_ELEMENTS || budget.bytes >= MAX_VALUE_BYTES {
                    budget.left_out = budget.left_out.saturating_add(1);
                    continue;
                }
                budget.elements += 1;
                out.push(owned(item, depth + 1, budget));
            }
            AttrValue::Array(out.into())
        }
        AnyValue::Map(entries) => {
            let mut out = Vec::new();
            for (k, item) in entries.iter() {
                let k = k.as_str();
                if budget.elements >= MAX_ELEMENTS || budget.bytes + k.len() > MAX_VALUE_BYTES {
                    budget.left_out = budget.left_out.saturating_add(1);
                    continue;
                }
                budget.elements += 1;
                budget.bytes += k.len();
                out.push((k.into(), owned(item, depth + 1, budget)));
            }
            AttrValue::Map(out.into())
        }
        // A kind this version does not know: its text.
        other => text(&format!("{other:?}"), budget),
    }
}

/// An attribute value naming the event: its text.
struct Text<'a>(&'a AnyValue);

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            AnyValue::String(s) => f.write_str(s.as_str()),
            AnyValue::Int(i) => write!(f, "{i}"),
            AnyValue::Double(d) => write!(f, "{d}"),
            AnyValue::Boolean(b) => write!(f, "{b}"),
            other => write!(f, "{other:?}"),
        }
    }
}
