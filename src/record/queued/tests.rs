use std::borrow::Cow;

use proptest::prelude::*;

use super::*;
use crate::record::{Attr, AttrValue, LogEvent, MAX_DEPTH};

fn text() -> impl Strategy<Value = Cow<'static, str>> {
    prop_oneof![
        Just(Cow::Borrowed("payment.service")),
        Just(Cow::Borrowed("")),
        ".{0,40}".prop_map(Cow::Owned),
        ".{200,300}".prop_map(Cow::Owned),
    ]
}

fn value() -> impl Strategy<Value = AttrValue> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(AttrValue::Int),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |d| !d.is_nan())
            .prop_map(AttrValue::Double),
        (-(1i64 << 54)..(1i64 << 54)).prop_map(|i| AttrValue::Double(i as f64)),
        any::<bool>().prop_map(AttrValue::Bool),
        ".{0,300}".prop_map(|s| AttrValue::Str(s.into_boxed_str())),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| AttrValue::Bytes(b.into())),
        Just(AttrValue::Null),
    ];
    // Arrays and maps, nested up to the deepest a record holds.
    scalar.prop_recursive(MAX_DEPTH as u32, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(|v| AttrValue::Array(v.into())),
            proptest::collection::vec((".{0,12}", inner), 0..6)
                .prop_map(|v| AttrValue::Map(v.into_iter().map(|(k, v)| (k.into(), v)).collect())),
        ]
    })
}

/// Any event a queued record can hold (its observed time is its time).
pub(crate) fn event() -> impl Strategy<Value = LogEvent> {
    (
        (any::<u64>(), 0usize..6),
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
        ),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<([u8; 16], [u8; 8], u8)>()),
            text(),
        ),
        (
            proptest::collection::vec((text(), value()), 0..12),
            0..=MAX_DROPPED,
            proptest::option::of(text()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(value()),
        ),
    )
        .prop_map(
            |(
                (time, sev),
                (target, module_path, file),
                (line, trace, body),
                (attrs, dropped, event_name, observed, body_value),
            )| {
                LogEvent {
                    time_unix_nano: time,
                    observed_time_unix_nano: observed.unwrap_or(time),
                    severity: [
                        Severity::Trace,
                        Severity::Debug,
                        Severity::Info,
                        Severity::Warn,
                        Severity::Error,
                        Severity::Fatal,
                    ][sev],
                    body,
                    target,
                    module_path,
                    file,
                    line,
                    trace: trace.map(|(trace_id, span_id, flags)| TraceContext {
                        trace_id,
                        span_id,
                        flags,
                    }),
                    attributes: attrs
                        .into_iter()
                        .map(|(key, value)| Attr { key, value })
                        .collect(),
                    dropped_attributes: dropped,
                    event_name: event_name.map(Into::into),
                    body_value: body_value.map(Box::new),
                }
            },
        )
}

fn read_back(q: &Queued) -> LogEvent {
    LogEvent::from(&q.record().expect("a record this process wrote reads back"))
}

/// A queued record with every field as given: what a reader may meet if a writer and the reader
/// ever disagree.
fn arbitrary_queued(
    fields: (u64, u32, [u16; 3], u8, u8),
    trace: [u8; 25],
    payload: &[u8],
) -> Queued {
    let (time, line, [target, module, file], severity, flags) = fields;
    Queued {
        time,
        line,
        target,
        module,
        file,
        severity: Severity::from_number(i64::from(severity % 25)).unwrap_or(Severity::Info),
        flags,
        trace,
        dropped: [0; 3],
        payload: Payload::new(payload),
    }
}

/// Name fields that are sometimes special, sometimes interned ids, sometimes unknown ids.
fn name_field() -> impl Strategy<Value = u16> {
    prop_oneof![Just(NAME_NONE), Just(NAME_INLINE), 0u16..8, any::<u16>(),]
}

proptest! {
    #[test]
    fn every_event_reads_back_as_it_was_written(e in event()) {
        let q = Queued::of(&e.record());
        prop_assert_eq!(q.severity(), e.severity);
        prop_assert_eq!(read_back(&q), e);
    }

    /// The same through the fuzz target's constructor: any bytes at all.
    #[test]
    fn any_bytes_as_a_queued_record_are_parsed_never_trusted(
        data in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(r) = Queued::from_arbitrary_bytes(&data).record() {
            let _ = LogEvent::from(&r);
        }
    }

    /// Arbitrary bytes and fields give a record or an error: never a panic, never undefined
    /// behaviour (the suite also runs under AddressSanitizer), and whatever is returned can be
    /// walked to its end.
    #[test]
    fn arbitrary_queued_bytes_are_parsed_never_trusted(
        fields in (any::<u64>(), any::<u32>(), [name_field(), name_field(), name_field()], any::<u8>(), any::<u8>()),
        trace in any::<[u8; 25]>(),
        payload in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let q = arbitrary_queued(fields, trace, &payload);
        if let Ok(r) = q.record() {
            let e = LogEvent::from(&r);
            prop_assert!(e.body.len() <= payload.len());
        }
    }

    /// The same, starting from a valid record with bytes flipped or cut: the mistakes a reader
    /// could really meet.
    #[test]
    fn damaged_records_are_errors_or_records(
        e in event(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let q = Queued::of(&e.record());
        let mut bytes = q.payload.as_bytes().to_vec();
        for (at, b) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= b;
            }
        }
        let keep = if bytes.is_empty() { 0 } else { cut.index(bytes.len() + 1) };
        bytes.truncate(keep);
        let damaged = Queued { payload: Payload::new(&bytes), ..q };
        if let Ok(r) = damaged.record() {
            let _ = LogEvent::from(&r);
        }
    }
}

#[test]
fn each_kind_of_damage_is_its_own_error() {
    let e = LogEvent {
        time_unix_nano: 1,
        observed_time_unix_nano: 1,
        severity: Severity::Info,
        body: "hello".into(),
        target: "t".into(),
        module_path: None,
        file: None,
        line: None,
        trace: None,
        attributes: vec![Attr {
            key: "k".into(),
            value: AttrValue::Str("v".into()),
        }],
        dropped_attributes: 0,
        event_name: None,
        body_value: None,
    };
    let q = Queued::of(&e.record());
    assert_eq!(read_back(&q), e);
    let with = |f: &dyn Fn(&mut Queued)| {
        let mut q = Queued::of(&e.record());
        f(&mut q);
        q.record().map(|_| ())
    };
    assert_eq!(with(&|q| q.target = NAME_NONE), Err(ReadError::NoTarget));
    assert_eq!(
        with(&|q| q.module = (names::MAX_STRINGS + 1) as u16),
        Err(ReadError::UnknownName(names::MAX_STRINGS as u64 + 1))
    );
    let mut bytes = q.payload.as_bytes().to_vec();
    bytes.push(0x55);
    assert_eq!(
        with(&|q| q.payload = Payload::new(&bytes)),
        Err(ReadError::BadTag(0x55))
    );
    bytes.pop();
    bytes.truncate(bytes.len() - 1);
    assert_eq!(
        with(&|q| q.payload = Payload::new(&bytes)),
        Err(ReadError::Truncated)
    );
    let mut bad = q.payload.as_bytes().to_vec();
    // The target is interned ("t"), so the body's text starts at byte 1.
    bad[1] = 0xFF;
    assert_eq!(
        with(&|q| q.payload = Payload::new(&bad)),
        Err(ReadError::NotUtf8)
    );
}

#[test]
fn doubles_keep_every_bit() {
    for d in [
        0.0,
        -0.0,
        150.0,
        -3.0,
        0.5,
        9_007_199_254_740_993.0,
        i64::MIN as f64,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MIN_POSITIVE,
    ] {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, Severity::Info, 0, None);
        w.target(None, "t");
        w.body("");
        w.attr("k", Value::Double(d));
        let q = w.finish(0);
        let r = q.record().unwrap();
        let v = r.attributes.iter().next().map(|(_, v)| v);
        let Some(Value::Double(back)) = v else {
            panic!("{d}: {v:?}");
        };
        assert_eq!(back.to_bits(), d.to_bits(), "{d}");
    }
}

#[test]
fn interned_and_written_out_keys_read_back() {
    // Keys too long to intern, and many interned ones, with every tag.
    let long = "k".repeat(names::MAX_LEN + 1);
    let mut keys: Vec<String> = (0..40).map(|i| format!("fold_{i}")).collect();
    keys.push(long);
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf, Severity::Info, 0, None);
    w.target(None, "t");
    w.body("b");
    let want: Vec<(String, String)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let v = match i % 4 {
                0 => Value::Int(-(i as i64)),
                1 => Value::Double(i as f64 + 0.5),
                2 => Value::Bool(i % 2 == 0),
                _ => Value::Str(k),
            };
            w.attr(k, v);
            (k.clone(), format!("{v:?}"))
        })
        .collect();
    let q = w.finish(3);
    let r = q.record().unwrap();
    let read: Vec<(String, String)> = r
        .attributes
        .iter()
        .map(|(k, v)| (k.name.to_owned(), format!("{v:?}")))
        .collect();
    assert_eq!(read, want);
    assert_eq!(r.dropped_attributes, 3);
}

#[test]
fn a_typical_record_stays_inline_and_a_long_one_goes_to_the_heap() {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    assert_eq!(size_of::<Queued>(), 120);
    let _cx = opentelemetry::Context::new()
        .with_remote_span_context(SpanContext::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ))
        .attach();
    let kvs: [(&str, log::kv::Value<'_>); 4] = [
        ("amount", 150.0f64.into()),
        ("user_id", 42i64.into()),
        ("currency", "EUR".into()),
        ("seq", 123_456u64.into()),
    ];
    let capture = |message: &str| {
        let before = crate::clock::now_unix_nanos();
        let q = crate::record::capture::capture(
            &log::Record::builder()
                .args(format_args!("Transaction processed {message}"))
                .level(log::Level::Info)
                .target("payment.service")
                .module_path_static(Some("loadgen"))
                .file_static(Some("examples/loadgen.rs"))
                .line(Some(320))
                .key_values(&kvs)
                .build(),
            true,
            &crate::record::capture::Baggage::Off,
        )
        .0;
        let after = crate::clock::now_unix_nanos();
        (q, before, after)
    };
    let (q, before, after) = capture("123456");
    // Loadgen's record: its payload is the message (29 bytes with its length) and four
    // key-values (24 with interned keys below id 128; other tests may have interned many strings
    // first, so the keys may take a byte more each).
    assert!(
        q.payload.as_bytes().len() <= 57,
        "{}",
        q.payload.as_bytes().len()
    );
    assert!(q.is_inline());
    let e = read_back(&q);
    // Read between the two (give or take a step of the clock between the counter and the
    // system clock, at most 20 us: see `clock`).
    assert!((before - 20_000..=after + 20_000).contains(&e.time_unix_nano));
    assert_eq!(e.body, "Transaction processed 123456");
    assert_eq!(e.target, "payment.service");
    assert_eq!(e.module_path.as_deref(), Some("loadgen"));
    assert_eq!(e.file.as_deref(), Some("examples/loadgen.rs"));
    assert_eq!(e.line, Some(320));
    assert_eq!(e.trace.map(|t| t.span_id), Some([2; 8]));
    assert_eq!(e.attributes.len(), 4);
    assert_eq!(e.attributes[0].value, AttrValue::Double(150.0));
    let long = "x".repeat(INLINE);
    let (q, _, _) = capture(&long);
    assert!(!q.is_inline());
    assert_eq!(read_back(&q).body, format!("Transaction processed {long}"));
}

#[test]
fn a_body_written_in_place_reads_back_at_every_length_of_its_length() {
    for len in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
        let text = "a".repeat(len);
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, Severity::Info, 1, None);
        w.target(None, "t");
        w.body_with(|b| b.extend_from_slice(text.as_bytes()));
        w.attr("k", Value::Int(7));
        let q = w.finish(0);
        let r = q.record().unwrap();
        assert_eq!(r.body, text, "{len}");
        let attrs: Vec<_> = r.attributes.iter().map(|(k, v)| (k.name, v)).collect();
        assert_eq!(attrs, [("k", Value::Int(7))], "{len}");
    }
    // A writer that takes back the length's place leaves an empty body.
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf, Severity::Info, 1, None);
    w.target(None, "t");
    w.body_with(|b| b.truncate(b.len() - 1));
    assert_eq!(w.finish(0).record().unwrap().body, "");
    // One that takes back what was written before it breaks the record: a read error, no panic.
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf, Severity::Info, 1, None);
    w.target(None, "t");
    w.body_with(Vec::clear);
    assert!(w.finish(0).record().is_err());
}
