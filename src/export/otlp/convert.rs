//! Records to `opentelemetry-proto` messages, and their encoding: [`RequestEncoder`] reads
//! [`Record`]s (queued ones in place, replayed ones as decoded) into messages it keeps from batch to
//! batch; the conversion from events builds the same messages anew, the reference the encoder is
//! tested against.

use std::collections::HashMap;

use bytes::Bytes;
use prost::Message as _;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

#[cfg(test)]
use crate::record::{AttrValue, LogEvent};
use crate::record::{Key, Record, Shape, Value};
use crate::redact::Redactor;

/// Semantic-convention key for the source file.
pub(crate) const CODE_FILE_PATH: &str = "code.file.path";
/// Semantic-convention key for the line number.
pub(crate) const CODE_LINE_NUMBER: &str = "code.line.number";
/// Semantic-convention key for the function name; we put the module path there.
pub(crate) const CODE_FUNCTION_NAME: &str = "code.function.name";

fn string(s: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

fn kv(key: impl Into<String>, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
        ..Default::default()
    }
}

/// The resource: `service.name`, the SDK attributes, what describes this process (as the SDKs'
/// detectors do), then the configured attributes (a later key replaces an earlier one;
/// `service.name` always comes from `service_name`).
pub(crate) fn resource(service_name: &str, attributes: &[(String, String)]) -> Resource {
    let mut pairs: Vec<(String, Option<AnyValue>)> = vec![
        ("service.name".into(), string(service_name)),
        ("telemetry.sdk.language".into(), string("rust")),
        ("telemetry.sdk.name".into(), string(env!("CARGO_PKG_NAME"))),
        (
            "telemetry.sdk.version".into(),
            string(env!("CARGO_PKG_VERSION")),
        ),
    ];
    pairs.extend(process_attributes());
    for (k, v) in attributes {
        if k == "service.name" {
            continue;
        }
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(p) => p.1 = string(v.as_str()),
            None => pairs.push((k.clone(), string(v.as_str()))),
        }
    }
    Resource {
        attributes: pairs.into_iter().map(|(k, v)| kv(k, v)).collect(),
        ..Default::default()
    }
}

/// What describes this process: `service.instance.id` (a random UUID, one per process),
/// `host.name`, `process.pid`, `process.executable.name`, `process.runtime.name` and `.version`
/// (the compiler's), `os.type`. A fact that cannot be read is left out.
fn process_attributes() -> Vec<(String, Option<AnyValue>)> {
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let instance = INSTANCE.get_or_init(|| uuid::Uuid::new_v4().to_string());
    let mut pairs = vec![
        ("service.instance.id".to_owned(), string(instance.as_str())),
        (
            "process.pid".to_owned(),
            Some(AnyValue {
                value: Some(any_value::Value::IntValue(std::process::id().into())),
            }),
        ),
        ("process.runtime.name".to_owned(), string("rustc")),
        ("os.type".to_owned(), string(os_type())),
    ];
    let version = env!("OLB_RUSTC_VERSION");
    if !version.is_empty() {
        pairs.push(("process.runtime.version".to_owned(), string(version)));
    }
    if let Some(host) = crate::config::env::host_name() {
        pairs.push(("host.name".to_owned(), string(host)));
    }
    if let Some(exe) = crate::config::env::executable_name() {
        pairs.push(("process.executable.name".to_owned(), string(exe)));
    }
    pairs
}

/// The semantic conventions' `os.type` of this build's target.
fn os_type() -> &'static str {
    match std::env::consts::OS {
        "macos" | "ios" => "darwin",
        "illumos" | "solaris" => "solaris",
        other => other,
    }
}

#[cfg(test)]
fn attr_value(v: &AttrValue) -> AnyValue {
    any_value_of(v.as_value(), &Redactor::new::<&str>([]))
}

/// One OTLP log record, built afresh: the reference [`RequestEncoder`] is tested against.
#[cfg(test)]
pub(crate) fn log_record(e: &LogEvent) -> LogRecord {
    let mut attributes = Vec::with_capacity(e.attributes.len() + 3);
    attributes.extend(
        e.attributes
            .iter()
            .map(|a| kv(a.key.to_string(), Some(attr_value(&a.value)))),
    );
    if let Some(file) = &e.file {
        attributes.push(kv(CODE_FILE_PATH, string(file.as_ref())));
    }
    if let Some(line) = e.line {
        attributes.push(kv(
            CODE_LINE_NUMBER,
            Some(AnyValue {
                value: Some(any_value::Value::IntValue(line.into())),
            }),
        ));
    }
    if let Some(module) = &e.module_path {
        attributes.push(kv(CODE_FUNCTION_NAME, string(module.as_ref())));
    }
    let (trace_id, span_id, flags) = match &e.trace {
        Some(t) => (t.trace_id.to_vec(), t.span_id.to_vec(), u32::from(t.flags)),
        None => (Vec::new(), Vec::new(), 0),
    };
    LogRecord {
        time_unix_nano: e.time_unix_nano,
        observed_time_unix_nano: e.observed_time_unix_nano,
        severity_number: e.severity.number(),
        severity_text: e.severity.text().to_owned(),
        body: match &e.body_value {
            Some(v) => Some(attr_value(v)),
            None => string(e.body.as_ref()),
        },
        attributes,
        dropped_attributes_count: e.dropped_attributes,
        flags,
        trace_id,
        span_id,
        event_name: e.event_name.as_deref().unwrap_or_default().to_owned(),
    }
}

/// One request for a batch: one resource, one scope per distinct target, in first-seen order (the
/// reference [`RequestEncoder`] is tested against).
#[cfg(test)]
pub(crate) fn request(resource: &Resource, batch: &[LogEvent]) -> ExportLogsServiceRequest {
    let mut scopes: Vec<ScopeLogs> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for e in batch {
        let i = *index.entry(e.target.as_ref()).or_insert_with(|| {
            scopes.push(ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: e.target.to_string(),
                    ..Default::default()
                }),
                log_records: Vec::new(),
                schema_url: String::new(),
            });
            scopes.len() - 1
        });
        scopes[i].log_records.push(log_record(e));
    }
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource.clone()),
            scope_logs: scopes,
            schema_url: String::new(),
        }],
    }
}

/// Converts and encodes batches into messages it keeps from one batch to the next: once warm, a
/// batch costs no allocation per record (strings are copied into the capacity an earlier record
/// left), and the encoded request can be sent again on a retry without converting anything.
pub(crate) struct RequestEncoder {
    /// Writes the protobuf encoding straight from the records.
    wire: super::wire::RequestWriter,
    request: ExportLogsServiceRequest,
    /// Records of earlier batches, their buffers kept for reuse.
    spare: Vec<LogRecord>,
    /// Scope index by target, for this batch.
    scopes: HashMap<String, usize>,
    /// Size of the last encoded request.
    last_len: usize,
    /// Masks secret values.
    redactor: Redactor,
}

impl RequestEncoder {
    pub(crate) fn new(resource: Resource, redactor: Redactor) -> Self {
        RequestEncoder {
            wire: super::wire::RequestWriter::new(&resource.encode_to_vec()),
            request: ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(resource),
                    scope_logs: Vec::new(),
                    schema_url: String::new(),
                }],
            },
            spare: Vec::new(),
            scopes: HashMap::new(),
            last_len: 0,
            redactor,
        }
    }

    /// The request for `batch`, encoded in protobuf (the same message as `request` builds from the
    /// events the records hold), with the values of secret keys masked by `redactor`.
    pub(crate) fn encode<'r>(&mut self, batch: impl IntoIterator<Item = Record<'r>>) -> Bytes {
        self.wire.write(batch, &self.redactor)
    }

    /// [`encode`](Self::encode) through prost's messages: what `encode` replaced, kept as the
    /// baseline of its benchmark.
    #[cfg(any(test, feature = "bench-internals"))]
    pub(crate) fn encode_prost<'r>(
        &mut self,
        batch: impl IntoIterator<Item = Record<'r>>,
    ) -> Bytes {
        self.fill(batch);
        // Sized from the last request rather than measured (prost measures every nested message
        // again as it encodes it); the buffer grows if this one is larger.
        let mut buf = bytes::BytesMut::with_capacity(self.last_len + self.last_len / 4 + 1024);
        self.request.encode_raw(&mut buf);
        self.last_len = buf.len();
        buf.freeze()
    }

    /// The request for `batch` in the OTLP JSON encoding (lowerCamelCase keys, hex trace and span
    /// ids, enums as integers), by `opentelemetry-proto`'s serde support.
    pub(crate) fn encode_json<'r>(&mut self, batch: impl IntoIterator<Item = Record<'r>>) -> Bytes {
        self.fill(batch);
        // JSON has no NaN or infinity (serde would write null, which a collector may refuse, and a
        // refusal is permanent): such a double is sent as the string proto3 JSON spells it with.
        for record in self.request.resource_logs[0]
            .scope_logs
            .iter_mut()
            .flat_map(|s| &mut s.log_records)
        {
            let values = record.attributes.iter_mut().map(|kv| &mut kv.value);
            for v in values.chain([&mut record.body]).flatten() {
                finite_for_json(v);
            }
        }
        let mut buf = Vec::with_capacity(self.last_len + self.last_len / 4 + 1024);
        // Serializing these messages into a Vec cannot fail: no map has non-string keys.
        if serde_json::to_writer(&mut buf, &self.request).is_err() {
            buf.clear();
        }
        self.last_len = buf.len();
        Bytes::from(buf)
    }

    /// Converts `batch` into the kept request, reusing the records of the last one.
    fn fill<'r>(&mut self, batch: impl IntoIterator<Item = Record<'r>>) {
        let redactor = &self.redactor;
        let rl = &mut self.request.resource_logs[0];
        for scope in rl.scope_logs.drain(..) {
            self.spare.extend(scope.log_records);
        }
        self.scopes.clear();
        let mut last: Option<(&str, usize)> = None;
        let mut count = 0;
        for e in batch {
            count += 1;
            let target = e.target;
            let i = match last {
                Some((t, i)) if t == target => i,
                _ => {
                    let i = match self.scopes.get(target) {
                        Some(i) => *i,
                        None => {
                            rl.scope_logs.push(ScopeLogs {
                                scope: Some(InstrumentationScope {
                                    name: target.to_owned(),
                                    ..Default::default()
                                }),
                                log_records: Vec::new(),
                                schema_url: String::new(),
                            });
                            let i = rl.scope_logs.len() - 1;
                            self.scopes.insert(target.to_owned(), i);
                            i
                        }
                    };
                    last = Some((target, i));
                    i
                }
            };
            let mut record = self.spare.pop().unwrap_or_default();
            fill_record(&mut record, &e, redactor);
            rl.scope_logs[i].log_records.push(record);
        }
        // Records a smaller batch did not need are not kept beyond one batch's worth.
        self.spare.truncate(count);
    }
}

/// Copies `v` into `s`, reusing its buffer unless that is far larger than needed (so one huge value
/// does not pin its size in a reused record: what reused records keep stays within about twice the
/// strings of the last batch, plus 256 bytes a string).
fn set_str(s: &mut String, v: &str) {
    if s.capacity() > 2 * v.len() + 256 {
        *s = v.to_owned();
    } else {
        s.clear();
        s.push_str(v);
    }
}

fn set_any_str(slot: &mut Option<AnyValue>, v: &str) {
    match slot {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        }) => set_str(s, v),
        _ => *slot = string(v),
    }
}

fn set_attr_value(slot: &mut Option<AnyValue>, v: Value<'_>, redactor: &Redactor) {
    match v {
        Value::Str(s) => set_any_str(slot, s),
        v => *slot = Some(any_value_of(v, redactor)),
    }
}

/// `v` as an `AnyValue`, the values of secret keys inside maps masked by `redactor`.
pub(crate) fn any_value_of(v: Value<'_>, redactor: &Redactor) -> AnyValue {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    let value = match v {
        Value::Str(s) => any_value::Value::StringValue(s.to_owned()),
        Value::Int(i) => any_value::Value::IntValue(i),
        Value::Double(d) => any_value::Value::DoubleValue(d),
        Value::Bool(b) => any_value::Value::BoolValue(b),
        Value::Bytes(b) => any_value::Value::BytesValue(b.to_vec()),
        Value::Null => return AnyValue { value: None },
        Value::Nested(n) => match n.shape() {
            Shape::Array(a) => any_value::Value::ArrayValue(ArrayValue {
                values: a.iter().map(|v| any_value_of(v, redactor)).collect(),
            }),
            Shape::Map(m) => any_value::Value::KvlistValue(KeyValueList {
                values: m
                    .iter()
                    .map(|(k, v)| {
                        let v = redactor.mask(Key::plain(k), v);
                        kv(k, Some(any_value_of(v, redactor)))
                    })
                    .collect(),
            }),
        },
    };
    AnyValue { value: Some(value) }
}

/// Replaces the doubles JSON cannot hold (NaN, infinities) in `v`, at any depth, by the strings
/// proto3 JSON spells them with.
fn finite_for_json(v: &mut AnyValue) {
    match &mut v.value {
        Some(any_value::Value::DoubleValue(d)) if !d.is_finite() => {
            let text = if d.is_nan() {
                "NaN"
            } else if *d > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            *v = AnyValue {
                value: Some(any_value::Value::StringValue(text.to_owned())),
            };
        }
        Some(any_value::Value::ArrayValue(a)) => a.values.iter_mut().for_each(finite_for_json),
        Some(any_value::Value::KvlistValue(m)) => {
            for kv in &mut m.values {
                if let Some(v) = &mut kv.value {
                    finite_for_json(v);
                }
            }
        }
        _ => {}
    }
}

/// The `n`th attribute slot of `attributes`, made if missing.
fn slot(attributes: &mut Vec<KeyValue>, n: usize) -> &mut KeyValue {
    if attributes.len() == n {
        attributes.push(KeyValue::default());
    }
    &mut attributes[n]
}

/// Overwrites `r` with the record `e`, as `log_record` would build it from its event, masking the
/// values of secret keys.
fn fill_record(r: &mut LogRecord, e: &Record<'_>, redactor: &Redactor) {
    r.time_unix_nano = e.time;
    r.observed_time_unix_nano = e.observed;
    r.severity_number = e.severity.number();
    set_str(&mut r.severity_text, e.severity.text());
    match e.body_value {
        Some(v) => r.body = Some(any_value_of(v, redactor)),
        None => set_any_str(&mut r.body, e.body),
    }
    let mut n = 0;
    let mut put = |key: &str, value: Value<'_>| {
        let kv = slot(&mut r.attributes, n);
        set_str(&mut kv.key, key);
        set_attr_value(&mut kv.value, value, redactor);
        n += 1;
    };
    for (key, value) in e.attributes.iter() {
        put(key.name, redactor.mask(key, value));
    }
    if let Some(file) = e.file {
        put(CODE_FILE_PATH, Value::Str(file));
    }
    if let Some(line) = e.line {
        put(CODE_LINE_NUMBER, Value::Int(line.into()));
    }
    if let Some(module) = e.module {
        put(CODE_FUNCTION_NAME, Value::Str(module));
    }
    r.attributes.truncate(n);
    r.dropped_attributes_count = e.dropped_attributes;
    set_str(&mut r.event_name, e.event_name.unwrap_or_default());
    r.trace_id.clear();
    r.span_id.clear();
    match &e.trace {
        Some(t) => {
            r.trace_id.extend_from_slice(&t.trace_id);
            r.span_id.extend_from_slice(&t.span_id);
            r.flags = u32::from(t.flags);
        }
        None => r.flags = 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::queued::Queued;
    use crate::record::{Attr, Severity, TraceContext};
    use std::borrow::Cow;

    fn event(target: &'static str, trace: Option<TraceContext>) -> LogEvent {
        LogEvent {
            time_unix_nano: 1_700_000_000_000_000_001,
            observed_time_unix_nano: 1_700_000_000_000_000_001,
            severity: Severity::Info,
            body: Cow::Borrowed("hello"),
            target: target.into(),
            module_path: Some(Cow::Borrowed("app::m")),
            file: Some(Cow::Borrowed("src/m.rs")),
            line: Some(7),
            trace,
            attributes: vec![Attr {
                key: "n".into(),
                value: AttrValue::Int(42),
            }],
            dropped_attributes: 0,
            event_name: None,
            body_value: None,
        }
    }

    #[test]
    fn groups_by_target_and_maps_every_field() {
        let t = TraceContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            flags: 1,
        };
        let batch = [event("a", Some(t)), event("b", None), event("a", None)];
        let r = request(&resource("svc", &[]), &batch);
        let scopes = &r.resource_logs[0].scope_logs;
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes[0].scope.as_ref().unwrap().name, "a");
        assert_eq!(scopes[0].log_records.len(), 2);
        let rec = &scopes[0].log_records[0];
        assert_eq!(rec.severity_number, 9);
        assert_eq!(rec.severity_text, "INFO");
        assert_eq!(rec.time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(rec.observed_time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(rec.trace_id, vec![1; 16]);
        assert_eq!(rec.span_id, vec![2; 8]);
        assert_eq!(rec.flags, 1);
        let keys: Vec<_> = rec.attributes.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(
            keys,
            ["n", CODE_FILE_PATH, CODE_LINE_NUMBER, CODE_FUNCTION_NAME]
        );
        let untraced = &scopes[0].log_records[1];
        assert!(untraced.trace_id.is_empty() && untraced.span_id.is_empty());
        assert_eq!(untraced.flags, 0);
    }

    #[test]
    fn resource_has_service_name_and_attributes() {
        let r = resource(
            "svc",
            &[
                ("service.name".into(), "ignored".into()),
                ("env".into(), "prod".into()),
            ],
        );
        let get = |k: &str| {
            r.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(
            get("service.name"),
            Some(any_value::Value::StringValue("svc".into()))
        );
        assert_eq!(
            get("env"),
            Some(any_value::Value::StringValue("prod".into()))
        );
        // What describes the process, overridable like any attribute.
        assert_eq!(
            get("process.pid"),
            Some(any_value::Value::IntValue(std::process::id().into()))
        );
        let id = get("service.instance.id");
        assert!(
            matches!(&id, Some(any_value::Value::StringValue(s)) if s.len() == 36),
            "{id:?}"
        );
        assert_eq!(get("service.instance.id"), id, "one per process");
        assert_eq!(
            get("os.type"),
            Some(any_value::Value::StringValue(os_type().into()))
        );
        assert!(get("process.runtime.version").is_some() && get("host.name").is_some());
        let r = resource("svc", &[("host.name".into(), "given".into())]);
        let host = r
            .attributes
            .iter()
            .filter(|a| a.key == "host.name")
            .collect::<Vec<_>>();
        assert_eq!(host.len(), 1);
        assert_eq!(
            host[0].value.clone().and_then(|v| v.value),
            Some(any_value::Value::StringValue("given".into()))
        );
    }

    #[test]
    fn json_is_otlp_json_camel_case_keys_hex_ids_and_integer_enums() {
        let t = TraceContext {
            trace_id: [0xab; 16],
            span_id: [0x01; 8],
            flags: 1,
        };
        let mut encoder = RequestEncoder::new(resource("svc", &[]), Redactor::new::<&str>([]));
        let mut e = event("a", Some(t));
        e.event_name = Some("order.placed".into());
        let batch = [e];
        let json = encoder.encode_json(batch.iter().map(LogEvent::record));
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let record = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(record["eventName"], "order.placed", "{v}");
        assert_eq!(v["resourceLogs"][0]["scopeLogs"][0]["scope"]["name"], "a");
        assert_eq!(record["traceId"], "ab".repeat(16));
        assert_eq!(record["spanId"], "01".repeat(8));
        assert_eq!(record["severityNumber"], 9);
        assert_eq!(record["severityText"], "INFO");
        assert_eq!(record["body"]["stringValue"], "hello");
        let time = &record["timeUnixNano"];
        assert_eq!(
            time.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| time.to_string()),
            "1700000000000000001"
        );
        // The same request as the protobuf encoding, read back.
        let decoded: ExportLogsServiceRequest = serde_json::from_slice(&json).unwrap();
        let res = resource("svc", &[]);
        assert_eq!(decoded, request(&res, &batch));
        // Doubles JSON cannot hold are sent as their proto3 JSON spelling, as strings.
        let mut odd = event("a", None);
        odd.attributes = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5]
            .into_iter()
            .map(|d| Attr {
                key: "d".into(),
                value: AttrValue::Double(d),
            })
            .collect();
        let json = encoder.encode_json([odd.record()]);
        let text = std::str::from_utf8(&json).unwrap();
        assert!(!text.contains("null"), "{text}");
        for spelled in [
            r#"{"stringValue":"NaN"}"#,
            r#"{"stringValue":"Infinity"}"#,
            r#"{"stringValue":"-Infinity"}"#,
            r#"{"doubleValue":1.5}"#,
        ] {
            assert!(text.contains(spelled), "{spelled} in {text}");
        }
    }

    #[test]
    fn reused_messages_encode_exactly_what_a_fresh_conversion_does() {
        let t = TraceContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            flags: 1,
        };
        let mut big = event("c", None);
        big.body = Cow::Owned("x".repeat(100_000));
        big.attributes.push(Attr {
            key: "s".into(),
            value: AttrValue::Str("value".into()),
        });
        let mut bare = event("a", Some(t));
        bare.file = None;
        bare.line = None;
        bare.module_path = None;
        bare.attributes.clear();
        let batches: Vec<Vec<LogEvent>> = vec![
            vec![event("a", Some(t)), event("b", None), big.clone()],
            vec![bare.clone(), event("a", None)],
            vec![big, bare, event("b", Some(t)), event("a", None)],
            vec![],
        ];
        let res = resource("svc", &[("env".into(), "prod".into())]);
        let mut encoder = RequestEncoder::new(res.clone(), Redactor::new::<&str>([]));
        for batch in &batches {
            let expected = request(&res, batch).encode_to_vec();
            // Read in place from their queued form, as the worker does, and as replay reads them.
            let queued: Vec<Queued> = batch.iter().map(|e| Queued::of(&e.record())).collect();
            let records = queued.iter().map(|q| q.record().unwrap());
            assert_eq!(encoder.encode(records).as_ref(), expected.as_slice());
            let decoded = batch.iter().map(LogEvent::record);
            assert_eq!(encoder.encode(decoded).as_ref(), expected.as_slice());
            // The messages kept for http/json encode to the same bytes through prost.
            let decoded = batch.iter().map(LogEvent::record);
            assert_eq!(encoder.encode_prost(decoded).as_ref(), expected.as_slice());
        }
    }
}
