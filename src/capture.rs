//! The only place a `log::Record` becomes an owned [`LogEvent`], on the calling thread.
//!
//! - one clock read gives both `time_unix_nano` and `observed_time_unix_nano`;
//! - the body is borrowed, not allocated, when `Arguments::as_str()` returns a static string;
//! - key-values keep their types (i64/u64 -> int, u64 above `i64::MAX` -> string, f64 -> double, bool,
//!   str -> string, anything else -> its `Display`);
//! - the active OpenTelemetry span context is read without cloning the current `Context`;
//! - a `Display` impl that panics while the message is formatted does not unwind out of `log()`:
//!   the body becomes a marker text and the record is still kept.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{SystemTime, UNIX_EPOCH};

use log::kv::{self, VisitSource, VisitValue};
use opentelemetry::trace::TraceContextExt as _;

use crate::event::{Attr, AttrValue, LogEvent, Severity, TraceContext};

/// Body used when formatting the message panicked.
pub(crate) const FORMAT_PANIC_BODY: &str = "<otel-log-bridge: formatting the message panicked>";

/// Nanoseconds since the Unix epoch, 0 if the clock is before it.
pub(crate) fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The span context active on this thread, if a valid one is.
pub(crate) fn current_trace_context() -> Option<TraceContext> {
    // `map_current` panics when OpenTelemetry's thread-local is gone (a record logged from another
    // thread-local's destructor): then there is no context to read.
    catch_unwind(read_trace_context).ok().flatten()
}

fn read_trace_context() -> Option<TraceContext> {
    opentelemetry::Context::map_current(|cx| {
        if !cx.has_active_span() {
            return None;
        }
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| TraceContext {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    })
}

/// Captures `record` into owned data. Never panics on account of the record's contents.
pub(crate) fn capture(record: &log::Record<'_>) -> (LogEvent, bool) {
    let now = now_unix_nanos();
    let (body, format_panicked) = format_body(record.args());
    let target = match record.module_path_static() {
        Some(m) if m == record.target() => Cow::Borrowed(m),
        _ => crate::intern::intern(record.target()),
    };
    let module_path = record
        .module_path_static()
        .map(Cow::Borrowed)
        .or_else(|| record.module_path().map(|m| Cow::Owned(m.to_owned())));
    let file = record
        .file_static()
        .map(Cow::Borrowed)
        .or_else(|| record.file().map(|f| Cow::Owned(f.to_owned())));
    let mut attributes = Vec::new();
    let mut dropped_attributes = 0;
    let source = record.key_values();
    if source.count() > 0 {
        attributes.reserve_exact(source.count().min(MAX_ATTRIBUTES));
        let mut collector = AttrCollector(&mut attributes, 0, 0);
        // A visitor that never fails; an error from a broken `Source` only ends the visit early.
        let _ = catch_unwind(AssertUnwindSafe(|| source.visit(&mut collector)));
        dropped_attributes = collector.1;
    }
    let event = LogEvent {
        time_unix_nano: now,
        observed_time_unix_nano: now,
        severity: Severity::from(record.level()),
        body,
        target,
        module_path,
        file,
        line: record.line(),
        trace: current_trace_context(),
        attributes,
        dropped_attributes,
    };
    (event, format_panicked)
}

thread_local! {
    static FORMAT_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// A scratch buffer grown past this by a huge message is released rather than kept.
const MAX_KEPT_BUFFER: usize = 64 * 1024;
/// Longest message kept, in bytes; a longer one is cut at a character boundary and marked.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest string attribute value kept, in bytes; longer ones are cut and marked.
pub(crate) const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most attributes kept per record; the rest are counted in `dropped_attributes_count`.
pub(crate) const MAX_ATTRIBUTES: usize = 128;
/// Most bytes of string attribute values kept per record; past it, attributes are counted as
/// dropped, so a record stays far below what one export request can carry.
pub(crate) const MAX_ATTRIBUTE_BYTES: usize = 256 * 1024;

/// How much output past the limit is still counted before formatting is stopped: a `Display` that
/// writes in many small pieces costs bounded time, while one huge piece is counted exactly at once.
const MAX_COUNTED_CUT: usize = 16 * 1024 * 1024;

/// Writes at most `limit` bytes (whole characters) into `buf`, counting what it leaves out; stops
/// the formatting (with an error) at the next piece once more than [`MAX_COUNTED_CUT`] bytes were
/// left out.
struct Bounded<'a> {
    buf: &'a mut String,
    limit: usize,
    cut: usize,
    stopped: bool,
}

impl std::fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.cut > MAX_COUNTED_CUT {
            self.stopped = true;
            return Err(std::fmt::Error);
        }
        let room = self.limit.saturating_sub(self.buf.len());
        if s.len() <= room && self.cut == 0 {
            self.buf.push_str(s);
        } else {
            let mut end = room.min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            if self.cut == 0 {
                self.buf.push_str(&s[..end]);
                self.cut += s.len() - end;
            } else {
                self.cut += s.len();
            }
        }
        Ok(())
    }
}

/// Formats `args` into `buf`, at most `limit` bytes, marking a cut.
fn write_bounded(buf: &mut String, args: &std::fmt::Arguments<'_>, limit: usize) {
    let mut w = Bounded {
        buf,
        limit,
        cut: 0,
        stopped: false,
    };
    // A `Display` returning `Err` leaves what was written so far; keep it.
    let _ = w.write_fmt(*args);
    if w.stopped {
        let cut = w.cut;
        let _ = write!(w.buf, "…[truncated over {cut} bytes]");
    } else if w.cut > 0 {
        let cut = w.cut;
        let _ = write!(w.buf, "…[truncated {cut} bytes]");
    }
}

/// `s`, cut to `limit` bytes (whole characters) and marked when longer.
fn bounded_value(s: &str) -> Box<str> {
    if s.len() <= MAX_VALUE_BYTES {
        return s.into();
    }
    let mut out = String::with_capacity(MAX_VALUE_BYTES + 32);
    write_bounded(&mut out, &format_args!("{s}"), MAX_VALUE_BYTES);
    out.into_boxed_str()
}

fn format_body(args: &std::fmt::Arguments<'_>) -> (Cow<'static, str>, bool) {
    if let Some(s) = args.as_str() {
        return (Cow::Borrowed(s), false);
    }
    match catch_unwind(AssertUnwindSafe(|| {
        // Formatted into this thread's scratch buffer, then copied once into an allocation of the
        // exact size: no reallocations while formatting and no slack kept in the queue. A `Display`
        // that logs finds the buffer busy and formats into a fresh one.
        let formatted = FORMAT_BUFFER.try_with(|b| {
            let mut b = b.try_borrow_mut().ok()?;
            b.clear();
            write_bounded(&mut b, args, MAX_BODY_BYTES);
            let s = String::from(b.as_str());
            if b.capacity() > MAX_KEPT_BUFFER {
                *b = String::new();
            }
            Some(s)
        });
        formatted.ok().flatten().unwrap_or_else(|| {
            let mut s = String::new();
            write_bounded(&mut s, args, MAX_BODY_BYTES);
            s
        })
    })) {
        Ok(s) => (Cow::Owned(s), false),
        Err(_) => (Cow::Borrowed(FORMAT_PANIC_BODY), true),
    }
}

/// Collects attributes: the list, how many were left out, and the string bytes kept so far.
struct AttrCollector<'a>(&'a mut Vec<Attr>, u32, usize);

impl<'kvs> VisitSource<'kvs> for AttrCollector<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        if self.0.len() >= MAX_ATTRIBUTES {
            self.1 = self.1.saturating_add(1);
            return Ok(());
        }
        let mut typed = TypedValue(None);
        if value.visit(&mut typed).is_err() || typed.0.is_none() {
            let mut s = String::new();
            write_bounded(&mut s, &format_args!("{value}"), MAX_VALUE_BYTES);
            typed.0 = Some(AttrValue::Str(s.into_boxed_str()));
        }
        // Every string is bounded as it is made (`bounded_value`, `write_bounded`).
        if let Some(value) = typed.0 {
            if let AttrValue::Str(s) = &value {
                let len = s.len();
                if self.2 + len > MAX_ATTRIBUTE_BYTES {
                    self.1 = self.1.saturating_add(1);
                    return Ok(());
                }
                self.2 += len;
            }
            self.0.push(Attr {
                key: crate::intern::intern(key.as_str()),
                value,
            });
        }
        Ok(())
    }
}

struct TypedValue(Option<AttrValue>);

/// An integer that fits `i64` as an int, else as its decimal string.
fn int_or_decimal<T: TryInto<i64> + ToString + Copy>(value: T) -> AttrValue {
    match value.try_into() {
        Ok(v) => AttrValue::Int(v),
        Err(_) => AttrValue::Str(value.to_string().into_boxed_str()),
    }
}

impl<'v> VisitValue<'v> for TypedValue {
    fn visit_any(&mut self, value: kv::Value<'_>) -> Result<(), kv::Error> {
        // Formatted within the value bound: a huge `?value` never takes more memory than that.
        let mut s = String::new();
        write_bounded(&mut s, &format_args!("{value}"), MAX_VALUE_BYTES);
        self.0 = Some(AttrValue::Str(s.into_boxed_str()));
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), kv::Error> {
        self.0 = Some(AttrValue::Str("null".into()));
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        self.0 = Some(int_or_decimal(value));
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        self.0 = Some(AttrValue::Int(value));
        Ok(())
    }
    fn visit_u128(&mut self, value: u128) -> Result<(), kv::Error> {
        self.0 = Some(int_or_decimal(value));
        Ok(())
    }
    fn visit_i128(&mut self, value: i128) -> Result<(), kv::Error> {
        self.0 = Some(int_or_decimal(value));
        Ok(())
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), kv::Error> {
        self.0 = Some(AttrValue::Double(value));
        Ok(())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        self.0 = Some(AttrValue::Bool(value));
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), kv::Error> {
        self.0 = Some(AttrValue::Str(bounded_value(value)));
        Ok(())
    }
    fn visit_char(&mut self, value: char) -> Result<(), kv::Error> {
        let mut buf = [0u8; 4];
        self.0 = Some(AttrValue::Str((&*value.encode_utf8(&mut buf)).into()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture_of(record: &log::Record<'_>) -> LogEvent {
        capture(record).0
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
        assert!(matches!(e.body, Cow::Borrowed("Transaction processed")));
        assert_eq!(e.severity, Severity::Warn);
        assert_eq!(e.severity.number(), 13);
        assert_eq!(e.target, "payment.service");
        assert_eq!(e.module_path.as_deref(), Some("my_app::pay"));
        assert_eq!(e.file.as_deref(), Some("src/pay.rs"));
        assert_eq!(e.line, Some(12));
        assert!(e.time_unix_nano > 1_600_000_000_000_000_000);
        assert_eq!(e.time_unix_nano, e.observed_time_unix_nano);
        assert_eq!(e.trace, None);
        let values: Vec<_> = e
            .attributes
            .iter()
            .map(|a| (&*a.key, a.value.clone()))
            .collect();
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
        let (e, panicked) = capture(
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
}
