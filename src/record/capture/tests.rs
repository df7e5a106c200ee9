//! Capture of `log` records, read back.
use super::*;
use crate::record::{AttrValue, LogEvent};

fn capture_of(record: &log::Record<'_>) -> LogEvent {
    capture_event(record).0
}

/// The attributes of `e`, as (key, value) pairs.
fn pairs(e: &super::super::LogEvent) -> Vec<(&str, AttrValue)> {
    e.attributes
        .iter()
        .map(|a| (&*a.key, a.value.clone()))
        .collect()
}

#[derive(Debug)]
struct Failure(&'static str, Option<&'static Failure>);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.map(|e| e as _)
    }
}

/// Two errors, each the other's source: a chain that never ends.
#[derive(Debug)]
struct Looping(bool);

static PING: Looping = Looping(true);
static PONG: Looping = Looping(false);

impl std::fmt::Display for Looping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0 { "ping" } else { "pong" })
    }
}

impl std::error::Error for Looping {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(if self.0 { &PONG } else { &PING })
    }
}

#[test]
fn errors_keep_their_source_chain_and_the_first_fills_exception_message() {
    static ROOT: Failure = Failure("connection refused", None);
    static MIDDLE: Failure = Failure("charge failed", Some(&ROOT));
    static OUTER: Failure = Failure("payment failed", Some(&MIDDLE));
    static OTHER: Failure = Failure("retry budget spent", None);
    let kvs: [(&str, kv::Value<'_>); 3] = [
        ("err", kv::Value::from_dyn_error(&OUTER)),
        ("user", kv::Value::from("bob")),
        ("also", kv::Value::from_dyn_error(&OTHER)),
    ];
    let record = log::Record::builder()
        .args(format_args!("payment failed"))
        .level(log::Level::Error)
        .target("pay")
        .key_values(&kvs)
        .build();
    let e = capture_of(&record);
    let values = pairs(&e);
    let chain = "payment failed: charge failed: connection refused";
    assert_eq!(
        values,
        vec![
            ("err", AttrValue::Str(chain.into())),
            ("user", AttrValue::Str("bob".into())),
            ("also", AttrValue::Str("retry budget spent".into())),
            (EXCEPTION_MESSAGE, AttrValue::Str(chain.into())),
        ]
    );
    // A chain that loops ends after a bounded number of links.
    let kvs: [(&str, kv::Value<'_>); 1] = [("err", kv::Value::from_dyn_error(&PING))];
    let record = log::Record::builder()
        .args(format_args!("x"))
        .key_values(&kvs)
        .build();
    let e = capture_of(&record);
    let AttrValue::Str(s) = &e.attributes[0].value else {
        panic!("{e:?}")
    };
    assert_eq!(s.split(": ").count(), MAX_ERROR_SOURCES + 1, "{s}");
}

/// An error whose message already shows its source's (`#[error("charge failed: {0}")]`).
#[derive(Debug)]
struct Wrapping(&'static Failure);

impl std::fmt::Display for Wrapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "charge failed: {}", self.0)
    }
}

impl std::error::Error for Wrapping {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0)
    }
}

#[test]
fn a_source_already_in_the_message_is_not_repeated_and_an_own_exception_message_wins() {
    static ROOT: Failure = Failure("connection refused", None);
    static WRAPPING: Wrapping = Wrapping(&ROOT);
    let kvs: [(&str, kv::Value<'_>); 2] = [
        ("err", kv::Value::from_dyn_error(&WRAPPING)),
        (EXCEPTION_MESSAGE, kv::Value::from("mine")),
    ];
    let record = log::Record::builder()
        .args(format_args!("x"))
        .key_values(&kvs)
        .build();
    let e = capture_of(&record);
    let values = pairs(&e);
    assert_eq!(
        values,
        vec![
            (
                "err",
                AttrValue::Str("charge failed: connection refused".into())
            ),
            (EXCEPTION_MESSAGE, AttrValue::Str("mine".into())),
        ]
    );
}

#[test]
fn the_first_event_name_fills_the_field_and_is_not_an_attribute() {
    let kvs: [(&str, kv::Value<'_>); 4] = [
        ("user", kv::Value::from("bob")),
        (EVENT_NAME, kv::Value::from("order.placed")),
        ("n", kv::Value::from(3u64)),
        (EVENT_NAME, kv::Value::from(7u64)),
    ];
    let record = log::Record::builder()
        .args(format_args!("order placed"))
        .key_values(&kvs)
        .build();
    let e = capture_of(&record);
    assert_eq!(e.event_name.as_deref(), Some("order.placed"));
    let keys: Vec<_> = e.attributes.iter().map(|a| &*a.key).collect();
    // A second one stays an attribute: nothing is lost.
    assert_eq!(keys, ["user", "n", EVENT_NAME]);
    assert_eq!(e.attributes[0].value, AttrValue::Str("bob".into()));
    // Any value kind names an event, as its text.
    let kvs: [(&str, kv::Value<'_>); 1] = [(EVENT_NAME, kv::Value::from(42i64))];
    let record = log::Record::builder()
        .args(format_args!("x"))
        .key_values(&kvs)
        .build();
    assert_eq!(capture_of(&record).event_name.as_deref(), Some("42"));
    let record = log::Record::builder().args(format_args!("x")).build();
    assert_eq!(capture_of(&record).event_name, None);
}

#[test]
fn static_message_is_borrowed_and_types_are_kept() {
    let kvs: [(&str, kv::Value<'_>); 6] = [
        ("amount", kv::Value::from(150.0f64)),
        ("user_id", kv::Value::from(42i64)),
        ("big", kv::Value::from(u64::MAX)),
        ("ok", kv::Value::from(true)),
        ("currency", kv::Value::from("EUR")),
        ("small", kv::Value::from(7u64)),
    ];
    let record = log::Record::builder()
        .args(format_args!("Transaction processed"))
        .level(log::Level::Warn)
        .target("payment.service")
        .module_path_static(Some("my_app::pay"))
        .file_static(Some("src/pay.rs"))
        .line(Some(12))
        .key_values(&kvs)
        .build();
    let e = capture_of(&record);
    assert_eq!(e.body, "Transaction processed");
    assert_eq!(e.severity, Severity::Warn);
    assert_eq!(e.severity.number(), 13);
    assert_eq!(e.target, "payment.service");
    assert_eq!(e.module_path.as_deref(), Some("my_app::pay"));
    assert_eq!(e.file.as_deref(), Some("src/pay.rs"));
    assert_eq!(e.line, Some(12));
    assert!(e.time_unix_nano > 1_600_000_000_000_000_000);
    assert_eq!(e.time_unix_nano, e.observed_time_unix_nano);
    assert_eq!(e.trace, None);
    let values = pairs(&e);
    assert_eq!(
        values,
        vec![
            ("amount", AttrValue::Double(150.0)),
            ("user_id", AttrValue::Int(42)),
            ("big", AttrValue::Str(u64::MAX.to_string().into())),
            ("ok", AttrValue::Bool(true)),
            ("currency", AttrValue::Str("EUR".into())),
            ("small", AttrValue::Int(7)),
        ]
    );
}

#[test]
fn severity_mapping_follows_the_data_model() {
    let expected = [
        (log::Level::Trace, 1, "TRACE"),
        (log::Level::Debug, 5, "DEBUG"),
        (log::Level::Info, 9, "INFO"),
        (log::Level::Warn, 13, "WARN"),
        (log::Level::Error, 17, "ERROR"),
    ];
    for (level, number, text) in expected {
        let s = Severity::from(level);
        assert_eq!((s.number(), s.text()), (number, text));
    }
    assert_eq!(
        (Severity::Fatal.number(), Severity::Fatal.text()),
        (21, "FATAL")
    );
}

struct Panics;
impl std::fmt::Display for Panics {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("broken Display")
    }
}

#[test]
fn a_panicking_display_does_not_unwind_out_of_capture() {
    let value = Panics;
    let (e, panicked) = capture_event(
        &log::Record::builder()
            .args(format_args!("value: {value}"))
            .level(log::Level::Info)
            .target("t")
            .build(),
    );
    assert!(panicked);
    assert_eq!(e.body, FORMAT_PANIC_BODY);
}

#[test]
fn pairs_a_panicking_value_keeps_from_being_read_are_counted_as_left_out() {
    let value = Panics;
    let kvs: [(&str, kv::Value<'_>); 4] = [
        ("a", kv::Value::from(1i64)),
        ("b", kv::Value::from_display(&value)),
        ("c", kv::Value::from(3i64)),
        ("d", kv::Value::from(4i64)),
    ];
    let e = capture_of(
        &log::Record::builder()
            .args(format_args!("x"))
            .level(log::Level::Info)
            .target("t")
            .key_values(&kvs)
            .build(),
    );
    assert_eq!(e.attributes.len(), 1, "{e:?}");
    assert_eq!(
        e.dropped_attributes, 3,
        "the panicking pair and the two after it"
    );
}

#[test]
fn attribute_bytes_per_record_are_bounded_and_the_rest_counted() {
    let big = "v".repeat(60 * 1024);
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let kvs: Vec<(&str, kv::Value<'_>)> = keys
        .iter()
        .map(|k| (k.as_str(), kv::Value::from(big.as_str())))
        .collect();
    let e = capture_of(
        &log::Record::builder()
            .args(format_args!("x"))
            .level(log::Level::Info)
            .target("t")
            .key_values(&kvs)
            .build(),
    );
    assert_eq!(e.attributes.len(), 4, "4 x 60 KiB fit in 256 KiB");
    assert_eq!(e.dropped_attributes, 6);
}

#[test]
fn a_display_only_value_becomes_its_string() {
    let kvs: [(&str, kv::Value<'_>); 1] = [("addr", kv::Value::from_display(&"127.0.0.1:80"))];
    let record = log::Record::builder()
        .args(format_args!("x"))
        .level(log::Level::Info)
        .target("t")
        .key_values(&kvs)
        .build();
    let e = capture_of(&record);
    assert_eq!(e.attributes[0].value, AttrValue::Str("127.0.0.1:80".into()));
}
