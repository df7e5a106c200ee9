use super::*;
use crate::export::otlp::convert::{any_value_of, request, resource};
use crate::record::queued::Queued;
use crate::record::{Attr, AttrValue, LogEvent, Severity, TraceContext};
use proptest::prelude::*;
use prost::Message as _;
use std::borrow::Cow;

/// What prost gives for the message `convert::request` builds from the same events.
fn reference(batch: &[LogEvent], redactor: &Redactor) -> Vec<u8> {
    let res = resource("svc", &[("env".into(), "prod".into())]);
    let mut req = request(&res, batch);
    // `request` does not redact; the writer does, as `fill_record` does.
    for sl in &mut req.resource_logs[0].scope_logs {
        for (r, e) in sl.log_records.iter_mut().zip(
            batch
                .iter()
                .filter(|e| e.target == sl.scope.as_ref().unwrap().name),
        ) {
            for (kv, a) in r.attributes.iter_mut().zip(e.attributes.iter()) {
                let masked = redactor.mask(crate::record::Key::plain(&a.key), a.value.as_value());
                kv.value = Some(any_value_of(masked, redactor));
            }
            // A structured body: secret keys inside it masked, as inside a map attribute.
            if let Some(v) = &e.body_value {
                r.body = Some(any_value_of(v.as_value(), redactor));
            }
        }
    }
    req.encode_to_vec()
}

fn writer() -> RequestWriter {
    RequestWriter::new(&resource("svc", &[("env".into(), "prod".into())]).encode_to_vec())
}

fn value() -> impl Strategy<Value = AttrValue> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(AttrValue::Int),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |d| !d.is_nan())
            .prop_map(AttrValue::Double),
        any::<bool>().prop_map(AttrValue::Bool),
        ".{0,40}".prop_map(|s| AttrValue::Str(s.into())),
        "x{200,300}".prop_map(|s| AttrValue::Str(s.into())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| AttrValue::Bytes(b.into())),
        Just(AttrValue::Null),
    ];
    // Arrays and maps up to 4 deep, map keys sometimes secret or empty.
    scalar.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| AttrValue::Array(v.into())),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["a", "", "api_secret", "nested.key"]),
                    inner
                ),
                0..6
            )
            .prop_map(|v| AttrValue::Map(v.into_iter().map(|(k, v)| (k.into(), v)).collect())),
        ]
    })
}

fn event() -> impl Strategy<Value = LogEvent> {
    (
        (
            any::<u64>(),
            1u8..=24,
            prop::sample::select(vec!["a", "b", "", "payment.service"]),
        ),
        (
            ".{0,60}",
            prop::option::of(".{0,20}"),
            prop::option::of(".{0,20}"),
            prop::option::of(any::<u32>()),
        ),
        prop::option::of((any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u8>())),
        prop::collection::vec(
            (
                prop::sample::select(vec!["user_id", "", "db_secret", "amount", "k"]),
                value(),
            ),
            0..6,
        ),
        // The queued form keeps 24 bits of the count.
        (
            0u32..1 << 24,
            prop::option::of(".{0,20}"),
            prop::option::of(any::<u64>()),
            prop::option::of(value()),
        ),
    )
        .prop_map(
            |(
                (time, sev, target),
                (body, module, file, line),
                trace,
                attrs,
                (dropped, event, observed, body_value),
            )| {
                LogEvent {
                    time_unix_nano: time,
                    // An SDK record's observed time may differ; a `log` record's is its time.
                    observed_time_unix_nano: observed.unwrap_or(time),
                    severity: Severity::from_number(sev.into()).unwrap_or(Severity::Info),
                    body: Cow::Owned(body),
                    target: target.into(),
                    module_path: module.map(Cow::Owned),
                    file: file.map(Cow::Owned),
                    line,
                    trace: trace.map(|(trace_id, span_id, flags)| TraceContext {
                        trace_id,
                        span_id,
                        flags,
                    }),
                    attributes: attrs
                        .into_iter()
                        .map(|(key, value)| Attr {
                            key: key.into(),
                            value,
                        })
                        .collect(),
                    dropped_attributes: dropped,
                    event_name: event.map(Into::into),
                    body_value: body_value.map(Box::new),
                }
            },
        )
}

proptest! {
    #[test]
    fn writes_exactly_the_bytes_prost_writes(
        batches in prop::collection::vec(prop::collection::vec(event(), 0..12), 1..4)
    ) {
        let redactor = Redactor::new(["secret"]);
        let mut w = writer();
        // One writer across batches, as the exporter keeps it.
        for batch in &batches {
            let expected = reference(batch, &redactor);
            let decoded = w.write(batch.iter().map(LogEvent::record), &redactor);
            prop_assert_eq!(decoded.as_ref(), expected.as_slice());
            let queued: Vec<Queued> = batch.iter().map(|e| Queued::of(&e.record())).collect();
            let read = w.write(queued.iter().map(|q| q.record().unwrap()), &redactor);
            prop_assert_eq!(read.as_ref(), expected.as_slice());
        }
    }
}

#[test]
fn secret_values_are_masked_and_varints_cross_their_byte_boundaries() {
    let redactor = Redactor::new(["secret"]);
    let mut e = LogEvent {
        time_unix_nano: 1,
        observed_time_unix_nano: 1,
        severity: Severity::Info,
        body: Cow::Owned("b".repeat(200)),
        target: "t".into(),
        module_path: None,
        file: None,
        line: Some(u32::MAX),
        trace: None,
        attributes: vec![
            Attr {
                key: "db_secret".into(),
                value: AttrValue::Str("hunter2".into()),
            },
            Attr {
                key: "n".into(),
                value: AttrValue::Int(-1),
            },
        ],
        dropped_attributes: 0,
        event_name: None,
        body_value: None,
    };
    for len in [0, 1, 127, 128, 16_383, 16_384, 2_097_152] {
        e.body = Cow::Owned("b".repeat(len));
        let batch = [e.clone()];
        let bytes = writer().write(batch.iter().map(LogEvent::record), &redactor);
        assert_eq!(
            bytes.as_ref(),
            reference(&batch, &redactor).as_slice(),
            "{len}"
        );
        assert!(!bytes.windows(7).any(|w| w == b"hunter2"));
    }
    for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
        let mut out = Vec::new();
        varint(&mut out, v);
        assert_eq!(out.len(), varint_len(v), "{v}");
        assert_eq!(
            prost::encoding::decode_varint(&mut out.as_slice()).unwrap(),
            v
        );
    }
}
