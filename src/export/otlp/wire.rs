//! The protobuf encoding of an `ExportLogsServiceRequest`, written straight from [`Record`]s: the
//! bytes prost gives for the message [`convert::request`](super::convert) builds (fields in tag
//! order, proto3 defaults left out, oneof values always written), which the tests check byte for
//! byte. It skips building the messages, measuring them again at every level of nesting and
//! copying every string twice: about half the worker's encoding time (`encode/otlp_request` against
//! `encode/otlp_request_prost` in `benches/hot_path.rs`).
//!
//! Each record is written once into its scope's buffer; the request is then put together from the
//! resource (encoded once per exporter) and the scopes, whose lengths are known by then.

use std::collections::HashMap;

use bytes::{BufMut as _, Bytes, BytesMut};

use super::convert::{CODE_FILE_PATH, CODE_FUNCTION_NAME, CODE_LINE_NUMBER};
use crate::record::{Array, Key, Map, Record, Shape, Value};
use crate::redact::Redactor;

/// Field keys (field number << 3 | wire type) of the messages written here.
mod key {
    /// `ExportLogsServiceRequest.resource_logs`, `ResourceLogs.resource`, `ScopeLogs.scope`,
    /// `InstrumentationScope.name`, `KeyValue.key`, `AnyValue.string_value`: field 1, length.
    pub const FIELD1_LEN: u8 = 1 << 3 | 2;
    /// `ResourceLogs.scope_logs`, `ScopeLogs.log_records`, `KeyValue.value`: field 2, length.
    pub const FIELD2_LEN: u8 = 2 << 3 | 2;
    pub const TIME: u8 = 1 << 3 | 1;
    pub const SEVERITY_NUMBER: u8 = 2 << 3;
    pub const SEVERITY_TEXT: u8 = 3 << 3 | 2;
    pub const BODY: u8 = 5 << 3 | 2;
    pub const ATTRIBUTE: u8 = 6 << 3 | 2;
    pub const DROPPED: u8 = 7 << 3;
    pub const FLAGS: u8 = 8 << 3 | 5;
    pub const TRACE_ID: u8 = 9 << 3 | 2;
    pub const SPAN_ID: u8 = 10 << 3 | 2;
    pub const OBSERVED_TIME: u8 = 11 << 3 | 1;
    pub const EVENT_NAME: u8 = 12 << 3 | 2;
    pub const BOOL: u8 = 2 << 3;
    pub const INT: u8 = 3 << 3;
    pub const DOUBLE: u8 = 4 << 3 | 1;
    pub const ARRAY: u8 = 5 << 3 | 2;
    pub const KVLIST: u8 = 6 << 3 | 2;
    pub const BYTES: u8 = 7 << 3 | 2;
}

/// Writes requests from records, keeping its buffers from batch to batch.
pub(crate) struct RequestWriter {
    /// `ResourceLogs.resource`: the field, encoded once.
    resource: Vec<u8>,
    /// Per scope of this batch, in first-seen order: its `ScopeLogs.scope` field, then its records.
    scopes: Vec<Vec<u8>>,
    /// Scopes used by this batch.
    used: usize,
    /// Scope index by target, for this batch.
    index: HashMap<String, usize>,
    /// One record's fields, before its length is known.
    record: Vec<u8>,
}

impl RequestWriter {
    /// A writer for requests carrying `resource` (the encoded `Resource` message).
    pub(crate) fn new(resource: &[u8]) -> Self {
        let mut field = Vec::with_capacity(resource.len() + 6);
        field.push(key::FIELD1_LEN);
        varint(&mut field, resource.len() as u64);
        field.extend_from_slice(resource);
        RequestWriter {
            resource: field,
            scopes: Vec::new(),
            used: 0,
            index: HashMap::new(),
            record: Vec::new(),
        }
    }

    /// The encoded request for `batch`, values of secret keys masked by `redactor`.
    pub(crate) fn write<'r>(
        &mut self,
        batch: impl IntoIterator<Item = Record<'r>>,
        redactor: &Redactor,
    ) -> Bytes {
        self.index.clear();
        self.used = 0;
        let mut last: Option<(&str, usize)> = None;
        for r in batch {
            let scope = match last {
                Some((t, i)) if t == r.target => i,
                _ => {
                    let i = self.scope(r.target);
                    last = Some((r.target, i));
                    i
                }
            };
            self.record.clear();
            record_fields(&mut self.record, &r, redactor);
            let out = &mut self.scopes[scope];
            out.push(key::FIELD2_LEN);
            varint(out, self.record.len() as u64);
            out.extend_from_slice(&self.record);
        }
        let scopes = &self.scopes[..self.used];
        let resource_logs_len = self.resource.len()
            + scopes
                .iter()
                .map(|s| 1 + varint_len(s.len() as u64) + s.len())
                .sum::<usize>();
        let mut out =
            BytesMut::with_capacity(1 + varint_len(resource_logs_len as u64) + resource_logs_len);
        out.put_u8(key::FIELD1_LEN);
        put_varint(&mut out, resource_logs_len as u64);
        out.put_slice(&self.resource);
        for s in scopes {
            out.put_u8(key::FIELD2_LEN);
            put_varint(&mut out, s.len() as u64);
            out.put_slice(s);
        }
        // A buffer one huge batch grew is not kept for every later one.
        for s in &mut self.scopes {
            if s.capacity() > 4 * 1024 * 1024 {
                *s = Vec::new();
            }
        }
        out.freeze()
    }

    /// The index of `target`'s scope in this batch, started (its `scope` field written) if new.
    fn scope(&mut self, target: &str) -> usize {
        if let Some(i) = self.index.get(target) {
            return *i;
        }
        let i = self.used;
        self.used += 1;
        if self.scopes.len() < self.used {
            self.scopes.push(Vec::new());
        }
        let out = &mut self.scopes[i];
        out.clear();
        // ScopeLogs.scope = InstrumentationScope { name }; an empty name is a default, left out.
        let name_field = if target.is_empty() {
            0
        } else {
            1 + varint_len(target.len() as u64) + target.len()
        };
        out.push(key::FIELD1_LEN);
        varint(out, name_field as u64);
        if !target.is_empty() {
            string(out, key::FIELD1_LEN, target);
        }
        self.index.insert(target.to_owned(), i);
        i
    }
}

/// The fields of the `LogRecord` for `r`, in tag order, as `convert::fill_record` sets them.
fn record_fields(out: &mut Vec<u8>, r: &Record<'_>, redactor: &Redactor) {
    if r.time != 0 {
        out.push(key::TIME);
        out.extend_from_slice(&r.time.to_le_bytes());
    }
    let number = r.severity.number();
    if number != 0 {
        out.push(key::SEVERITY_NUMBER);
        varint(out, number as u64);
    }
    let text = r.severity.text();
    if !text.is_empty() {
        string(out, key::SEVERITY_TEXT, text);
    }
    // body: an AnyValue holding a string, written even when empty (a oneof value is always set),
    // or the record's body of another kind.
    out.push(key::BODY);
    match r.body_value {
        Some(v) => {
            varint(out, any_value_len(v, redactor) as u64);
            any_value(out, v, redactor);
        }
        None => {
            varint(
                out,
                (1 + varint_len(r.body.len() as u64) + r.body.len()) as u64,
            );
            string(out, key::FIELD1_LEN, r.body);
        }
    }
    for (k, v) in r.attributes.iter() {
        attribute(out, k.name, redactor.mask(k, v), redactor);
    }
    if let Some(file) = r.file {
        attribute(out, CODE_FILE_PATH, Value::Str(file), redactor);
    }
    if let Some(line) = r.line {
        attribute(out, CODE_LINE_NUMBER, Value::Int(line.into()), redactor);
    }
    if let Some(module) = r.module {
        attribute(out, CODE_FUNCTION_NAME, Value::Str(module), redactor);
    }
    if r.dropped_attributes != 0 {
        out.push(key::DROPPED);
        varint(out, r.dropped_attributes.into());
    }
    if let Some(t) = &r.trace {
        if t.flags != 0 {
            out.push(key::FLAGS);
            out.extend_from_slice(&u32::from(t.flags).to_le_bytes());
        }
        bytes_field(out, key::TRACE_ID, &t.trace_id);
        bytes_field(out, key::SPAN_ID, &t.span_id);
    }
    if r.observed != 0 {
        out.push(key::OBSERVED_TIME);
        out.extend_from_slice(&r.observed.to_le_bytes());
    }
    if let Some(name) = r.event_name.filter(|n| !n.is_empty()) {
        string(out, key::EVENT_NAME, name);
    }
}

/// One `attributes` entry: `KeyValue { key, value: AnyValue }`. The values of secret keys inside
/// maps are masked by `redactor` (the attribute's own value the caller masked).
fn attribute(out: &mut Vec<u8>, name: &str, value: Value<'_>, redactor: &Redactor) {
    out.push(key::ATTRIBUTE);
    key_value(out, name, value, redactor);
}

/// A `KeyValue` message, its length first.
#[inline]
fn key_value(out: &mut Vec<u8>, name: &str, value: Value<'_>, redactor: &Redactor) {
    let value_len = any_value_len(value, redactor);
    varint(out, (key_len(name) + field_len(value_len)) as u64);
    if !name.is_empty() {
        string(out, key::FIELD1_LEN, name);
    }
    out.push(key::FIELD2_LEN);
    varint(out, value_len as u64);
    any_value(out, value, redactor);
}

/// The fields of an `AnyValue` (a null writes none).
#[inline]
fn any_value(out: &mut Vec<u8>, value: Value<'_>, redactor: &Redactor) {
    match value {
        Value::Str(s) => string(out, key::FIELD1_LEN, s),
        Value::Bool(b) => out.extend_from_slice(&[key::BOOL, u8::from(b)]),
        Value::Int(i) => {
            out.push(key::INT);
            varint(out, i as u64);
        }
        Value::Double(d) => {
            out.push(key::DOUBLE);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Value::Bytes(b) => bytes_field(out, key::BYTES, b),
        Value::Null => {}
        Value::Nested(n) => match n.shape() {
            Shape::Array(a) => array(out, a, redactor),
            Shape::Map(m) => kvlist(out, m, redactor),
        },
    }
}

/// `AnyValue.array_value` (out of line: only structured values have one).
#[inline(never)]
fn array(out: &mut Vec<u8>, a: Array<'_>, redactor: &Redactor) {
    out.push(key::ARRAY);
    varint(out, array_len(a, redactor) as u64);
    for v in a.iter() {
        out.push(key::FIELD1_LEN);
        varint(out, any_value_len(v, redactor) as u64);
        any_value(out, v, redactor);
    }
}

/// `AnyValue.kvlist_value` (out of line: only structured values have one).
#[inline(never)]
fn kvlist(out: &mut Vec<u8>, m: Map<'_>, redactor: &Redactor) {
    out.push(key::KVLIST);
    varint(out, kvlist_len(m, redactor) as u64);
    for (k, v) in m.iter() {
        out.push(key::FIELD1_LEN);
        key_value(out, k, redactor.mask(Key::plain(k), v), redactor);
    }
}

/// The length of a length-delimited field holding `n` bytes, tag included.
fn field_len(n: usize) -> usize {
    1 + varint_len(n as u64) + n
}

/// The length of a `KeyValue.key` field (none for an empty key, a proto3 default).
fn key_len(name: &str) -> usize {
    if name.is_empty() {
        0
    } else {
        field_len(name.len())
    }
}

/// The length of the `AnyValue` message holding `value`.
#[inline]
fn any_value_len(value: Value<'_>, redactor: &Redactor) -> usize {
    match value {
        Value::Str(s) => field_len(s.len()),
        Value::Bool(_) => 2,
        Value::Int(i) => 1 + varint_len(i as u64),
        Value::Double(_) => 9,
        Value::Bytes(b) => field_len(b.len()),
        Value::Null => 0,
        Value::Nested(n) => field_len(match n.shape() {
            Shape::Array(a) => array_len(a, redactor),
            Shape::Map(m) => kvlist_len(m, redactor),
        }),
    }
}

/// The length of the `ArrayValue` message holding `a`.
#[inline(never)]
fn array_len(a: Array<'_>, redactor: &Redactor) -> usize {
    a.iter()
        .map(|v| field_len(any_value_len(v, redactor)))
        .sum()
}

/// The length of the `KeyValueList` message holding `m`.
#[inline(never)]
fn kvlist_len(m: Map<'_>, redactor: &Redactor) -> usize {
    m.iter()
        .map(|(k, v)| {
            let v = redactor.mask(Key::plain(k), v);
            field_len(key_len(k) + field_len(any_value_len(v, redactor)))
        })
        .sum()
}

fn string(out: &mut Vec<u8>, field: u8, s: &str) {
    bytes_field(out, field, s.as_bytes());
}

fn bytes_field(out: &mut Vec<u8>, field: u8, b: &[u8]) {
    out.push(field);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests;
