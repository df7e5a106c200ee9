//! The JSON lines format of the local files: one record is one line, always. Encoder and decoder
//! live here and nowhere else; `decode(encode(r))` keeps every field.
//!
//! Fields, in this order (names from the production-logging guide, numbers from OpenTelemetry):
//!
//! | field | content |
//! |---|---|
//! | `timestamp` | RFC 3339 UTC with nanoseconds, `Z` |
//! | `observed_timestamp` | only when it differs from `timestamp` |
//! | `severity_text`, `severity_number` | `INFO`, 9 (see the severity table) |
//! | `logger` | the target |
//! | `message` | the formatted message |
//! | `event_name` | the record's event name (its `event.name` key-value), when it has one |
//! | `trace_id`, `span_id`, `trace_flags` | lowercase hex, hex, integer; only when a span was active |
//! | `service.name` | the resource's service name |
//! | `code.file.path`, `code.line.number`, `code.function.name` | code location, when known |
//! | (attribute keys) | each attribute at top level, keeping its JSON type |
//! | `attributes` | an object holding the attributes whose key is one of the reserved names above (or a repeat of an earlier key), so they never overwrite a field |
//!
//! One line per record: serde_json escapes every control character (newline, carriage return, NUL,
//! ESC, ...), and the writer here also escapes U+2028 and U+2029, which some line readers split on.
//! Doubles that JSON cannot hold (NaN, infinities) are written as the strings `"NaN"`, `"inf"`,
//! `"-inf"` and read back as strings.

use std::borrow::Cow;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::ser::{CompactFormatter, Formatter};

use crate::record::{
    Attr, AttrValue, Key, LogEvent, MAX_DEPTH, Record, Severity, Shape, TraceContext, Value,
};
use crate::redact::Redactor;

/// Names that are fields of the line; an attribute with one of these keys is nested (the list the
/// tests check [`is_reserved`] against).
#[cfg(test)]
pub(crate) const RESERVED: [&str; 17] = [
    "timestamp",
    "observed_timestamp",
    "severity_text",
    "severity_number",
    "logger",
    "message",
    "event_name",
    "trace_id",
    "span_id",
    "trace_flags",
    "service.name",
    "code.file.path",
    "code.line.number",
    "code.function.name",
    "dropped_attributes_count",
    "attributes",
    "",
];

/// Whether `key` is the name of a field of the line: an attribute with such a key is nested (a
/// `match`, which the compiler turns into length and byte tests).
fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        "timestamp"
            | "observed_timestamp"
            | "severity_text"
            | "severity_number"
            | "logger"
            | "message"
            | "event_name"
            | "trace_id"
            | "span_id"
            | "trace_flags"
            | "service.name"
            | "code.file.path"
            | "code.line.number"
            | "code.function.name"
            | "dropped_attributes_count"
            | "attributes"
            | ""
    )
}

/// Compact JSON that also escapes U+2028 and U+2029.
struct LineFormatter;

impl Formatter for LineFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Both separators begin with the byte 0xE2; most text has none (a fast `memchr`).
        if !fragment.as_bytes().contains(&0xE2) {
            return CompactFormatter.write_string_fragment(writer, fragment);
        }
        let mut rest = fragment;
        while let Some(i) = rest.find(['\u{2028}', '\u{2029}']) {
            writer.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().unwrap_or('\u{2028}');
            writer.write_all(if c == '\u{2028}' {
                b"\\u2028"
            } else {
                b"\\u2029"
            })?;
            rest = &rest[i + c.len_utf8()..];
        }
        CompactFormatter.write_string_fragment(writer, rest)
    }
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(chunk[0])? * 16 + digit(chunk[1])?) as u8;
    }
    Some(out)
}

/// Whether the attribute at `index` (key `key`) goes under `attributes` rather than at the top
/// level: its key names a field, or an earlier attribute has it.
fn nested<'a>(all: impl Iterator<Item = (Key<'a>, Value<'a>)>, index: usize, key: &str) -> bool {
    is_reserved(key) || all.take(index).any(|(k, _)| k.name == key)
}

/// Appends an attribute's value: doubles JSON cannot hold (NaN, infinities) as strings, bytes as
/// base64 strings, arrays and maps as JSON arrays and objects (the values of secret keys inside
/// maps masked by `redactor`).
#[inline]
pub(super) fn attribute_value(out: &mut Vec<u8>, v: Value<'_>, redactor: Option<&Redactor>) {
    match v {
        Value::Int(i) => value(out, &i),
        Value::Double(d) if d.is_finite() => value(out, &d),
        Value::Double(d) => value(
            out,
            if d.is_nan() {
                "NaN"
            } else if d > 0.0 {
                "inf"
            } else {
                "-inf"
            },
        ),
        Value::Bool(b) => value(out, &b),
        Value::Str(s) => value(out, s),
        Value::Null => out.extend_from_slice(b"null"),
        v => structured_value(out, v, redactor),
    }
}

/// [`attribute_value`] for the kinds only structured values have (out of line).
#[inline(never)]
fn structured_value(out: &mut Vec<u8>, v: Value<'_>, redactor: Option<&Redactor>) {
    match v {
        Value::Bytes(b) => {
            use base64::Engine as _;
            value(out, &base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::Nested(n) => match n.shape() {
            Shape::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    attribute_value(out, v, redactor);
                }
                out.push(b']');
            }
            Shape::Map(m) => {
                out.push(b'{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    value(out, k);
                    out.push(b':');
                    let v = match redactor {
                        Some(r) => r.mask(Key::plain(k), v),
                        None => v,
                    };
                    attribute_value(out, v, redactor);
                }
                out.push(b'}');
            }
        },
        // The scalars, written by `attribute_value`.
        v => attribute_value(out, v, redactor),
    }
}

/// Appends `v` as a JSON value: strings escaped by serde_json (and U+2028, U+2029 by
/// [`LineFormatter`]), numbers written by it.
#[inline]
fn value(out: &mut Vec<u8>, v: &(impl serde::Serialize + ?Sized)) {
    // Writing to a Vec cannot fail.
    let _ = v.serialize(&mut serde_json::Serializer::with_formatter(
        &mut *out,
        LineFormatter,
    ));
}

/// Appends `,"key":` for a key that needs no escaping (the field names).
#[inline]
fn field(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends `"<hex of bytes>"` (lowercase hex digits need no escaping).
fn hex_string<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [b'"'; 34];
    for (i, b) in bytes.iter().enumerate().take(16) {
        buf[1 + 2 * i] = DIGITS[usize::from(b >> 4)];
        buf[2 + 2 * i] = DIGITS[usize::from(b & 15)];
    }
    let n = 2 * N.min(16);
    buf[1 + n] = b'"';
    out.extend_from_slice(&buf[..n + 2]);
}

thread_local! {
    /// The last second formatted on this thread and its text up to the fraction
    /// (`"YYYY-MM-DDTHH:MM:SS.`): records come many to a second.
    static LAST_SECOND: std::cell::Cell<(u64, [u8; 21])> = const {
        std::cell::Cell::new((u64::MAX, [0; 21]))
    };
}

/// Appends the RFC 3339 timestamp (UTC, nanoseconds, `Z`) as a string: its characters need no
/// escaping. The date and time of day come from humantime, once per second.
fn timestamp_string(out: &mut Vec<u8>, nanos: u64) {
    let (secs, frac) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    let head = match LAST_SECOND.try_with(std::cell::Cell::get) {
        Ok((s, head)) if s == secs => head,
        _ => {
            use std::io::Write as _;
            let mut full = [0u8; 40];
            let mut w = &mut full[..];
            let _ = write!(
                w,
                "\"{}",
                humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_secs(secs))
            );
            let written = 40 - w.len();
            // `"` + 20 characters up to and including the point, then 9 digits and `Z`.
            if written != 31 {
                out.extend_from_slice(&full[..written]);
                out.push(b'"');
                return;
            }
            let mut head = [0u8; 21];
            head.copy_from_slice(&full[..21]);
            let _ = LAST_SECOND.try_with(|c| c.set((secs, head)));
            head
        }
    };
    let mut digits = [b'0'; 11];
    let mut f = frac;
    for d in digits[..9].iter_mut().rev() {
        *d = b'0' + (f % 10) as u8;
        f /= 10;
    }
    digits[9] = b'Z';
    digits[10] = b'"';
    out.extend_from_slice(&head);
    out.extend_from_slice(&digits);
}

/// Appends `event` as one JSON line, newline included, to `out`, the values of secret keys masked
/// by `redactor` (asked once per attribute, as it is written).
///
/// The object's structure and field names are written here; every string that comes from the
/// record (target, message, keys, values, service name, paths) is escaped by serde_json.
pub(crate) fn encode(
    event: &Record<'_>,
    service_name: &str,
    redactor: Option<&Redactor>,
    out: &mut Vec<u8>,
) {
    fn mask<'v>(redactor: Option<&Redactor>, key: Key<'_>, v: Value<'v>) -> Value<'v> {
        match redactor {
            Some(r) => r.mask(key, v),
            None => v,
        }
    }
    out.extend_from_slice(b"{\"timestamp\":");
    timestamp_string(out, event.time);
    if event.observed != event.time {
        field(out, "observed_timestamp");
        timestamp_string(out, event.observed);
    }
    field(out, "severity_text");
    value(out, event.severity.text());
    field(out, "severity_number");
    value(out, &event.severity.number());
    field(out, "logger");
    value(out, event.target);
    field(out, "message");
    match event.body_value {
        Some(v) => attribute_value(out, v, redactor),
        None => value(out, event.body),
    }
    if let Some(name) = event.event_name {
        field(out, "event_name");
        value(out, name);
    }
    if let Some(t) = &event.trace {
        field(out, "trace_id");
        hex_string(out, &t.trace_id);
        field(out, "span_id");
        hex_string(out, &t.span_id);
        field(out, "trace_flags");
        value(out, &t.flags);
    }
    field(out, "service.name");
    value(out, service_name);
    if let Some(f) = event.file {
        field(out, "code.file.path");
        value(out, f);
    }
    if let Some(l) = event.line {
        field(out, "code.line.number");
        value(out, &l);
    }
    if let Some(m) = event.module {
        field(out, "code.function.name");
        value(out, m);
    }
    let dropped = event.dropped_attributes;
    if dropped > 0 {
        field(out, "dropped_attributes_count");
        value(out, &dropped);
    }
    // One pass; the keys seen so far are kept on the stack (a record rarely has more than
    // `SEEN`; past that, a repeat is looked for by walking the attributes again).
    const SEEN: usize = 16;
    let attributes = event.attributes.iter();
    let mut seen = [""; SEEN];
    let mut nested_mask = 0u128;
    let mut any_nested = false;
    for (i, (name, v)) in attributes.clone().enumerate() {
        let key = name.name;
        let repeated = if i <= SEEN {
            seen[..i].contains(&key)
        } else {
            nested(attributes.clone(), i, key)
        };
        if let Some(slot) = seen.get_mut(i) {
            *slot = key;
        }
        if repeated || is_reserved(key) {
            any_nested = true;
            if let Some(bit) = 1u128.checked_shl(i as u32) {
                nested_mask |= bit;
            }
        } else {
            out.push(b',');
            value(out, key);
            out.push(b':');
            attribute_value(out, mask(redactor, name, v), redactor);
        }
    }
    if any_nested {
        // Those whose bit is set in the mask (the first 128), or, past them, that `nested` says.
        field(out, "attributes");
        out.push(b'{');
        let mut first = true;
        for (i, (name, v)) in attributes.clone().enumerate() {
            let key = name.name;
            let is_nested = match 1u128.checked_shl(i as u32) {
                Some(bit) => nested_mask & bit != 0,
                None => nested(attributes.clone(), i, key),
            };
            if is_nested {
                if !first {
                    out.push(b',');
                }
                first = false;
                value(out, key);
                out.push(b':');
                attribute_value(out, mask(redactor, name, v), redactor);
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

/// Why a line could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("missing or invalid field {0}")]
    Field(&'static str),
}

/// A record read back from a line, with the service name it was written under.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    pub event: LogEvent,
    pub service_name: String,
}

fn parse_time(v: &serde_json::Value, field: &'static str) -> Result<u64, DecodeError> {
    let t = v
        .as_str()
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .ok_or(DecodeError::Field(field))?;
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| DecodeError::Field(field))?;
    u64::try_from(d.as_nanos()).map_err(|_| DecodeError::Field(field))
}

/// A JSON value as an attribute value: arrays and objects as arrays and maps, at most
/// [`MAX_DEPTH`] levels deep (deeper, the JSON text of what is deeper), `null` as null.
fn attr_value(v: serde_json::Value, depth: usize) -> AttrValue {
    match v {
        serde_json::Value::Bool(b) => AttrValue::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => AttrValue::Int(i),
            None => n
                .as_f64()
                .map(AttrValue::Double)
                .unwrap_or_else(|| AttrValue::Str(n.to_string().into())),
        },
        serde_json::Value::String(s) => AttrValue::Str(s.into()),
        serde_json::Value::Null => AttrValue::Null,
        other if depth >= MAX_DEPTH => AttrValue::Str(other.to_string().into()),
        serde_json::Value::Array(a) => {
            AttrValue::Array(a.into_iter().map(|v| attr_value(v, depth + 1)).collect())
        }
        serde_json::Value::Object(m) => AttrValue::Map(
            m.into_iter()
                .map(|(k, v)| (k.into(), attr_value(v, depth + 1)))
                .collect(),
        ),
    }
}

/// A JSON object's entries in order, a repeated key kept every time (a `serde_json::Map` keeps only
/// its last value, and two attributes of one key are nested under `attributes` side by side).
struct Entries(Vec<(String, serde_json::Value)>);

/// A line: its entries, with those of its `attributes` object (kept as `[key, value]` pairs).
struct Object(Vec<(String, serde_json::Value)>);

/// Collects a JSON object's entries; `line`: the line itself, whose `attributes` is read as
/// [`Entries`] too.
struct EntriesVisitor {
    line: bool,
}

impl<'de> serde::de::Visitor<'de> for EntriesVisitor {
    type Value = Vec<(String, serde_json::Value)>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = m.next_key::<String>()? {
            let value = if self.line && key == "attributes" {
                serde_json::Value::Array(
                    m.next_value::<Entries>()?
                        .0
                        .into_iter()
                        .map(|(k, v)| serde_json::Value::Array(vec![k.into(), v]))
                        .collect(),
                )
            } else {
                m.next_value()?
            };
            entries.push((key, value));
        }
        Ok(entries)
    }
}

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntriesVisitor { line: false })
            .map(Entries)
    }
}

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntriesVisitor { line: true }).map(Object)
    }
}

impl Object {
    /// Removes and returns the first entry of `key`.
    fn take(&mut self, key: &str) -> Option<serde_json::Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }
}

/// Reads one line (with or without its newline) back into a record.
pub(crate) fn decode(line: &[u8]) -> Result<Decoded, DecodeError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut map: Object =
        serde_json::from_slice(line).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let mut take = |k: &str| map.take(k);
    let time = parse_time(
        &take("timestamp").ok_or(DecodeError::Field("timestamp"))?,
        "timestamp",
    )?;
    let observed = match take("observed_timestamp") {
        Some(v) => parse_time(&v, "observed_timestamp")?,
        None => time,
    };
    let _ = take("severity_text");
    let severity = take("severity_number")
        .and_then(|v| v.as_i64())
        .and_then(Severity::from_number)
        .ok_or(DecodeError::Field("severity_number"))?;
    let string = |v: Option<serde_json::Value>, f: &'static str| match v {
        Some(serde_json::Value::String(s)) => Ok(s),
        _ => Err(DecodeError::Field(f)),
    };
    let target = string(take("logger"), "logger")?;
    // A body that is not a string was written as its JSON value.
    let (body, body_value) = match take("message") {
        Some(serde_json::Value::String(s)) => (s, None),
        Some(v) => (String::new(), Some(Box::new(attr_value(v, 0)))),
        None => return Err(DecodeError::Field("message")),
    };
    let event_name = take("event_name")
        .map(|v| string(Some(v), "event_name"))
        .transpose()?;
    let trace = match (take("trace_id"), take("span_id"), take("trace_flags")) {
        (None, None, None) => None,
        (Some(t), Some(s), f) => Some(TraceContext {
            trace_id: t
                .as_str()
                .and_then(unhex::<16>)
                .ok_or(DecodeError::Field("trace_id"))?,
            span_id: s
                .as_str()
                .and_then(unhex::<8>)
                .ok_or(DecodeError::Field("span_id"))?,
            flags: match f {
                None => 0,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or(DecodeError::Field("trace_flags"))?,
            },
        }),
        _ => return Err(DecodeError::Field("trace_id")),
    };
    let service_name = string(take("service.name"), "service.name").unwrap_or_default();
    let file = take("code.file.path")
        .map(|v| string(Some(v), "code.file.path"))
        .transpose()?;
    let line_no = take("code.line.number")
        .map(|v| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(DecodeError::Field("code.line.number"))
        })
        .transpose()?;
    let module = take("code.function.name")
        .map(|v| string(Some(v), "code.function.name"))
        .transpose()?;
    let dropped_attributes = match take("dropped_attributes_count") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(DecodeError::Field("dropped_attributes_count"))?,
    };
    let nested = take("attributes");
    let mut attributes: Vec<Attr> = map
        .0
        .into_iter()
        .map(|(k, v)| Attr {
            key: k.into(),
            value: attr_value(v, 0),
        })
        .collect();
    if let Some(serde_json::Value::Array(entries)) = nested {
        for entry in entries {
            // Each is `[key, value]`, as `Object` made it.
            if let serde_json::Value::Array(mut pair) = entry
                && let (Some(v), Some(serde_json::Value::String(k))) = (pair.pop(), pair.pop())
            {
                attributes.push(Attr {
                    key: k.into(),
                    value: attr_value(v, 0),
                });
            }
        }
    }
    Ok(Decoded {
        event: LogEvent {
            time_unix_nano: time,
            observed_time_unix_nano: observed,
            severity,
            body: Cow::Owned(body),
            target: target.into(),
            module_path: module.map(Cow::Owned),
            file: file.map(Cow::Owned),
            line: line_no,
            trace,
            attributes,
            dropped_attributes,
            event_name: event_name.map(Into::into),
            body_value,
        },
        service_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> LogEvent {
        LogEvent {
            time_unix_nano: 1_781_856_862_105_312_123,
            observed_time_unix_nano: 1_781_856_862_105_312_123,
            severity: Severity::Info,
            body: Cow::Borrowed("Transaction processed"),
            target: "payment.service".into(),
            module_path: Some(Cow::Borrowed("app::pay")),
            file: Some(Cow::Borrowed("src/pay.rs")),
            line: Some(12),
            trace: Some(TraceContext {
                trace_id: unhex::<16>("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
                span_id: unhex::<8>("00f067aa0ba902b7").unwrap(),
                flags: 1,
            }),
            attributes: vec![
                Attr {
                    key: "amount".into(),
                    value: AttrValue::Double(150.0),
                },
                Attr {
                    key: "user_id".into(),
                    value: AttrValue::Int(42),
                },
                Attr {
                    key: "ok".into(),
                    value: AttrValue::Bool(true),
                },
                Attr {
                    key: "currency".into(),
                    value: AttrValue::Str("EUR".into()),
                },
            ],
            dropped_attributes: 0,
            event_name: None,
            body_value: None,
        }
    }

    fn line(e: &LogEvent) -> String {
        let mut out = Vec::new();
        encode(&e.record(), "payments", None, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn repeated_keys_are_all_kept_however_many_and_wherever_they_come() {
        let mut e = sample();
        let attr = |k: &str, v: i64| Attr {
            key: Cow::Owned(k.to_owned()),
            value: AttrValue::Int(v),
        };
        e.attributes = vec![attr("x", 1), attr("x", 2), attr("x", 3)];
        e.attributes.push(Attr {
            key: "message".into(),
            value: AttrValue::Str("a".into()),
        });
        e.attributes.push(Attr {
            key: "message".into(),
            value: AttrValue::Str("b".into()),
        });
        e.attributes.push(Attr {
            key: "attributes".into(),
            value: AttrValue::Str("not an object".into()),
        });
        e.attributes
            .extend((0..20).map(|i| attr(&format!("k{i}"), i)));
        e.attributes.push(attr("x", 4));
        e.attributes.push(attr("k3", 33));
        let l = line(&e);
        let d = decode(l.as_bytes()).unwrap().event;
        let sorted = |attrs: &[Attr]| {
            let mut v: Vec<String> = attrs
                .iter()
                .map(|a| format!("{}={:?}", a.key, a.value))
                .collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&d.attributes), sorted(&e.attributes), "{l}");
        assert_eq!(line(&d), l, "a fixed point");
    }

    #[test]
    fn the_line_matches_the_contract() {
        assert_eq!(
            line(&sample()),
            concat!(
                r#"{"timestamp":"2026-06-19T08:14:22.105312123Z","severity_text":"INFO","severity_number":9,"#,
                r#""logger":"payment.service","message":"Transaction processed","#,
                r#""trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":1,"#,
                r#""service.name":"payments","code.file.path":"src/pay.rs","code.line.number":12,"#,
                r#""code.function.name":"app::pay","amount":150.0,"user_id":42,"ok":true,"currency":"EUR"}"#,
                "\n"
            )
        );
        let d = decode(line(&sample()).as_bytes()).unwrap();
        assert_eq!(d.event, sample());
        assert_eq!(d.service_name, "payments");
    }

    #[test]
    fn colliding_and_repeated_keys_are_nested_not_overwriting() {
        let mut e = sample();
        e.trace = None;
        e.attributes = vec![
            Attr {
                key: "message".into(),
                value: AttrValue::Str("fake".into()),
            },
            Attr {
                key: "x".into(),
                value: AttrValue::Int(1),
            },
            Attr {
                key: "x".into(),
                value: AttrValue::Int(2),
            },
        ];
        let l = line(&e);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["message"], "Transaction processed");
        assert_eq!(v["attributes"]["message"], "fake");
        assert_eq!(v["x"], 1);
        assert_eq!(v["attributes"]["x"], 2);
        assert!(v.get("trace_id").is_none(), "no span: no trace fields");
        let d = decode(l.as_bytes()).unwrap();
        assert_eq!(d.event.attributes[0].key.as_ref(), "x");
        assert_eq!(line(&d.event), l);
    }

    #[test]
    fn hostile_text_stays_on_one_line() {
        let mut e = sample();
        e.body = Cow::Owned(format!(
            "a\nb\r\n{{\"timestamp\":\"fake\"}}\u{2028}\u{2029}\0\x1b[31m{}",
            "x".repeat(1 << 20)
        ));
        let l = line(&e);
        assert_eq!(l.matches('\n').count(), 1);
        assert!(l.ends_with('\n'));
        assert!(!l.contains('\u{2028}') && !l.contains('\r') && !l.contains('\0'));
        assert_eq!(decode(l.as_bytes()).unwrap().event.body, e.body);
    }

    #[test]
    fn the_reserved_test_matches_the_list() {
        for k in RESERVED {
            assert!(is_reserved(k), "{k}");
        }
        assert!(!is_reserved("amount") && !is_reserved("attributes2"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"timestamp\":1}",
            b"\xff\xfe",
            b"{\"timestamp\":\"2026-01-01T00:00:00Z\"}",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    /// Values JSON carries exactly: scalars, null, arrays and maps (keys unique, as JSON objects
    /// are read) within the depth a record holds.
    fn attr_value_strategy() -> impl Strategy<Value = AttrValue> {
        let scalar = prop_oneof![
            any::<i64>().prop_map(AttrValue::Int),
            any::<f64>()
                .prop_filter("finite", |d| d.is_finite())
                .prop_map(AttrValue::Double),
            any::<bool>().prop_map(AttrValue::Bool),
            any::<String>().prop_map(|s| AttrValue::Str(s.into())),
            Just(AttrValue::Null),
        ];
        scalar.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(|v| AttrValue::Array(v.into())),
                prop::collection::btree_map(any::<String>(), inner, 0..5).prop_map(|m| {
                    AttrValue::Map(m.into_iter().map(|(k, v)| (k.into(), v)).collect())
                }),
            ]
        })
    }

    #[test]
    fn structures_are_json_bytes_base64_and_secret_keys_inside_masked() {
        let mut e = sample();
        e.attributes = vec![Attr {
            key: "order".into(),
            value: AttrValue::Map(
                vec![
                    ("id".into(), AttrValue::Int(7)),
                    (
                        "items".into(),
                        AttrValue::Array(vec![AttrValue::Str("a".into()), AttrValue::Null].into()),
                    ),
                    (
                        "raw".into(),
                        AttrValue::Bytes(b"\x00\xff".as_slice().into()),
                    ),
                    ("card_token".into(), AttrValue::Str("4111".into())),
                ]
                .into(),
            ),
        }];
        let mut out = Vec::new();
        encode(
            &e.record(),
            "svc",
            Some(&Redactor::new(["token"])),
            &mut out,
        );
        let l = String::from_utf8(out).unwrap();
        assert!(
            l.contains(
                r#""order":{"id":7,"items":["a",null],"raw":"AP8=","card_token":"[REDACTED]"}"#
            ),
            "{l}"
        );
    }

    #[test]
    fn strings_from_the_record_are_escaped_everywhere_the_structure_is_not() {
        let mut e = sample();
        let odd = "q\"b\\s\nn\u{2028}\u{0}\u{1b}";
        e.target = Cow::Owned(odd.into());
        e.body = Cow::Owned(odd.into());
        e.file = Some(Cow::Owned(odd.into()));
        e.module_path = Some(Cow::Owned(odd.into()));
        e.attributes = vec![
            Attr {
                key: odd.into(),
                value: AttrValue::Str(odd.into()),
            },
            Attr {
                key: "message".into(),
                value: AttrValue::Double(f64::NAN),
            },
        ];
        let mut out = Vec::new();
        encode(&e.record(), odd, None, &mut out);
        let l = String::from_utf8(out).unwrap();
        assert_eq!(l.matches('\n').count(), 1, "{l}");
        assert!(!l.contains('\u{2028}'));
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        for k in [
            "logger",
            "message",
            "code.file.path",
            "code.function.name",
            "service.name",
        ] {
            assert_eq!(v[k], odd, "{k}");
        }
        assert_eq!(v[odd], odd);
        assert_eq!(v["attributes"]["message"], "NaN");
        let d = decode(l.as_bytes()).unwrap();
        assert_eq!(d.service_name, odd);
    }

    #[test]
    fn timestamps_are_humantimes_rfc3339_with_nanoseconds() {
        let mut last = 0;
        for nanos in [
            0u64,
            1,
            999_999_999,
            1_000_000_000,
            1_781_856_862_105_312_123,
            1_781_856_862_999_999_999,
            1_781_856_863_000_000_000,
            1_781_856_862_000_000_001,
            4_102_444_799_999_999_999,
            u64::MAX,
        ] {
            // Twice: the second one from the cached second.
            for _ in 0..2 {
                let mut out = Vec::new();
                timestamp_string(&mut out, nanos);
                let want = format!(
                    "\"{}\"",
                    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(nanos))
                );
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    want,
                    "{nanos} after {last}"
                );
            }
            last = nanos;
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoding_json_shaped_garbage_never_panics(s in r#"\{("[a-z_.]{1,12}":("[^"]{0,8}"|-?[0-9]{1,25}|true|null|\[\]|\{\}),?){0,8}\}"#) {
            let _ = decode(s.as_bytes());
        }

        #[test]
        fn round_trip_is_exact_and_one_line(
            body in any::<String>(),
            target in any::<String>(),
            nanos in 0u64..4_000_000_000_000_000_000,
            sev in prop::sample::select(vec![Severity::Trace, Severity::Debug, Severity::Info, Severity::Warn, Severity::Error, Severity::Fatal]),
            attrs in prop::collection::btree_map("[a-z._]{1,12}|timestamp|message", attr_value_strategy(), 0..8),
            traced in any::<bool>(),
        ) {
            let mut e = sample();
            e.body = Cow::Owned(body);
            e.target = target.into();
            e.time_unix_nano = nanos;
            e.observed_time_unix_nano = nanos;
            e.severity = sev;
            if !traced { e.trace = None; }
            // Keys that are not reserved first: that is the order a decoded record has.
            let (plain, reserved): (Vec<_>, Vec<_>) = attrs
                .into_iter()
                .map(|(k, v)| Attr { key: k.into(), value: v })
                .partition(|a| !RESERVED.contains(&&*a.key));
            e.attributes = plain.into_iter().chain(reserved).collect();
            let l = line(&e);
            prop_assert_eq!(l.matches('\n').count(), 1);
            prop_assert!(l.ends_with('\n'));
            let d = decode(l.as_bytes()).unwrap();
            prop_assert_eq!(&d.event, &e);
            prop_assert_eq!(line(&d.event), l);
        }
    }

    #[test]
    fn a_line_read_in_place_is_the_line_of_its_event() {
        let redactor = Redactor::new(crate::redact::DEFAULT_REDACT_KEYS);
        let attr = |k: &'static str, v: AttrValue| Attr {
            key: Cow::Borrowed(k),
            value: v,
        };
        let event = LogEvent {
            time_unix_nano: 1_700_000_000_000_000_123,
            // A queued record's observed time is its time.
            observed_time_unix_nano: 1_700_000_000_000_000_123,
            severity: Severity::Warn,
            body: Cow::Owned("line\n{\"fake\":1}\u{2028}".into()),
            target: Cow::Borrowed("payment.service"),
            module_path: Some(Cow::Borrowed("app::pay")),
            file: Some(Cow::Owned("src/pay.rs".into())),
            line: Some(7),
            trace: Some(TraceContext {
                trace_id: [7; 16],
                span_id: [8; 8],
                flags: 1,
            }),
            attributes: vec![
                attr("amount", AttrValue::Double(150.0)),
                attr("message", AttrValue::Str("a field's name".into())),
                attr("password", AttrValue::Str("hunter2".into())),
                attr("amount", AttrValue::Int(2)),
                attr("nan", AttrValue::Double(f64::NAN)),
                attr("ok", AttrValue::Bool(true)),
            ],
            dropped_attributes: 3,
            event_name: None,
            body_value: None,
        };
        let queued = crate::record::queued::Queued::of(&event.record());
        let mut in_place = Vec::new();
        encode(
            &queued.record().unwrap(),
            "svc",
            Some(&redactor),
            &mut in_place,
        );
        let mut masked = event.clone();
        redactor.apply(&mut masked);
        let mut expected = Vec::new();
        encode(&masked.record(), "svc", None, &mut expected);
        assert_eq!(
            String::from_utf8_lossy(&in_place),
            String::from_utf8_lossy(&expected)
        );
        assert!(!String::from_utf8_lossy(&in_place).contains("hunter2"));
    }
}
