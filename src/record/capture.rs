//! The only place a `log::Record` is read, on the calling thread: it becomes a [`Queued`] record.
//!
//! - one clock read gives both `time_unix_nano` and `observed_time_unix_nano`;
//! - nothing is allocated for a typical record: the record's variable part is written into a
//!   per-thread buffer (the message formatted straight into it) and copied into the record, which
//!   keeps it inline up to [`INLINE`](super::queued::INLINE) bytes; targets, paths and keys are
//!   interned ids;
//! - key-values keep their types (i64/u64 -> int, u64 above `i64::MAX` -> string, f64 -> double, bool,
//!   str -> string, errors -> their chain, serde and sval values -> their structure, anything
//!   else -> its `Display`); `event.name` names the record's event;
//! - the active OpenTelemetry span context is read without cloning the current `Context`;
//! - a `Display` impl that panics while the message is formatted does not unwind out of `log()`:
//!   the body becomes a marker text and the record is still kept.

use std::panic::{AssertUnwindSafe, catch_unwind};

use log::kv::{self, VisitSource, VisitValue};
use opentelemetry::trace::TraceContextExt as _;

use super::queued::{Queued, Writer};
use super::{Severity, TraceContext, Value, names};

/// Body used when formatting the message panicked.
pub(crate) const FORMAT_PANIC_BODY: &str = "<otel-log-bridge: formatting the message panicked>";

/// The span context active on this thread, if a valid one is.
pub(crate) fn current_trace_context() -> Option<TraceContext> {
    // `map_current` panics when OpenTelemetry's thread-local is gone (a record logged from another
    // thread-local's destructor): then there is no context to read.
    catch_unwind(read_trace_context).ok().flatten()
}

/// Sets the span context active on this thread, if a valid one is, as `w`'s. The capture's way:
/// written in place from the ids, not returned as a [`TraceContext`], because a value returned out
/// of `catch_unwind` goes through memory and is read back at once in other widths, which stalls
/// the processor until the stores are done (perf: the most expensive instruction of the capture).
#[inline]
pub(crate) fn write_trace_context(w: &mut Writer<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        with_trace_ids(|trace_id, span_id, flags| w.trace_ids(trace_id, span_id, flags))
    }));
}

fn read_trace_context() -> Option<TraceContext> {
    with_trace_ids(|trace_id, span_id, flags| TraceContext {
        trace_id: trace_id.to_bytes(),
        span_id: span_id.to_bytes(),
        flags,
    })
}

/// Calls `f` with the ids and flags of the span context active on this thread, if a valid one
/// is. Panics where `map_current` does.
#[inline(always)]
fn with_trace_ids<R>(
    f: impl FnOnce(opentelemetry::trace::TraceId, opentelemetry::trace::SpanId, u8) -> R,
) -> Option<R> {
    opentelemetry::Context::map_current(|cx| {
        if !cx.has_active_span() {
            return None;
        }
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| f(sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
    })
}

/// Which entries of the active OpenTelemetry Baggage each record copies (`LOG_BAGGAGE_KEYS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Baggage {
    /// None (the default): the Baggage is not read.
    #[default]
    Off,
    /// Every entry (`*`).
    All,
    /// The entries with these keys.
    Keys(Box<[String]>),
}

impl Baggage {
    /// From the configured keys: empty is off, a `*` among them is all.
    pub(crate) fn of(keys: &[String]) -> Baggage {
        if keys.is_empty() {
            Baggage::Off
        } else if keys.iter().any(|k| k == "*") {
            Baggage::All
        } else {
            Baggage::Keys(keys.into())
        }
    }

    fn wants(&self, key: &str) -> bool {
        match self {
            Baggage::Off => false,
            Baggage::All => true,
            Baggage::Keys(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// Copies the wanted entries of the active Baggage as string attributes, after the record's own
/// key-values and never over one of them (`own` says whether the record has a key), within the
/// same bounds.
fn write_baggage(attrs: &mut AttrWriter<'_, '_>, own: &dyn Fn(&str) -> bool, which: &Baggage) {
    use opentelemetry::baggage::BaggageExt as _;
    // `map_current` panics when OpenTelemetry's thread-local is gone: then there is no Baggage.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        opentelemetry::Context::map_current(|cx| {
            for (key, (value, _)) in cx.baggage().iter() {
                let key = key.as_str();
                if !which.wants(key) || own(key) {
                    continue;
                }
                if attrs.kept >= MAX_ATTRIBUTES {
                    attrs.drop_one();
                    continue;
                }
                attrs.baggage_entry(key, value.as_str());
            }
        })
    }));
}

/// [`capture_into`], the record returned (tests and benchmarks).
#[cfg(any(test, feature = "bench-internals"))]
pub(crate) fn capture(
    record: &log::Record<'_>,
    code_location: bool,
    baggage: &Baggage,
) -> (Queued, bool) {
    let mut queued = None;
    let panicked = capture_into(record, code_location, baggage, |q| queued = Some(q));
    (queued.expect("a capture pushes its record"), panicked)
}

/// Captures `record` into its queued form and hands it to `push` straight from where it was made
/// (a record moved through fewer frames is copied fewer times); says whether formatting the
/// message panicked. Never panics on account of the record's contents. Without `code_location`,
/// the file, line and module are left out; `baggage` says which Baggage entries to copy.
pub(crate) fn capture_into(
    record: &log::Record<'_>,
    code_location: bool,
    baggage: &Baggage,
    push: impl FnOnce(Queued),
) -> bool {
    let now = crate::clock::now_unix_nanos();
    let mut push = Some(push);
    with_buffer(&PAYLOAD_BUFFER, |buf| {
        let mut w = Writer::new(buf, Severity::from(record.level()), now, None);
        write_trace_context(&mut w);
        let target = record.target();
        let module_static = record.module_path_static();
        match module_static {
            Some(m) if m == target => w.target(names::id_static(m), m),
            _ => w.target(names::id(target), target),
        }
        if code_location {
            w.module(match (module_static, record.module_path()) {
                (Some(m), _) => Some((names::id_static(m), m)),
                (None, Some(m)) => Some((names::id(m), m)),
                (None, None) => None,
            });
            w.file(match (record.file_static(), record.file()) {
                (Some(f), _) => Some((names::id_static(f), f)),
                (None, Some(f)) => Some((names::id(f), f)),
                (None, None) => None,
            });
            if let Some(l) = record.line() {
                w.line(l);
            }
        }
        let format_panicked = write_body(&mut w, record.args());
        let mut attrs = AttrWriter::new(&mut w);
        // A visitor that never fails; a panicking `Display` or an error from a broken `Source`
        // only ends the visit early (a pair is written whole or not at all), and the pairs it did
        // not reach count as left out.
        let visited = catch_unwind(AssertUnwindSafe(|| record.key_values().visit(&mut attrs)));
        if !matches!(visited, Ok(Ok(()))) {
            let dropped = attrs.dropped;
            // Counted only when the visit ended early: the common record pays nothing for it.
            let seen = attrs.kept + attrs.dropped as usize;
            let total =
                catch_unwind(AssertUnwindSafe(|| record.key_values().count())).unwrap_or(seen);
            let unreached = u32::try_from(total.saturating_sub(seen)).unwrap_or(u32::MAX);
            attrs.dropped = dropped.saturating_add(unreached);
        }
        attrs.exception_message();
        if !matches!(baggage, Baggage::Off) {
            let own = |key: &str| record.key_values().get(kv::Key::from_str(key)).is_some();
            write_baggage(&mut attrs, &own, baggage);
        }
        let dropped = attrs.dropped;
        // Run once: `with_buffer` calls this closure once.
        if let Some(push) = push.take() {
            push(w.finish(dropped));
        }
        format_panicked
    })
}

#[cfg(feature = "sdk")]
pub(crate) mod from_sdk;
#[cfg(feature = "tracing")]
pub(crate) mod from_tracing;
mod scratch;
mod structured;

use scratch::{PAYLOAD_BUFFER, with_buffer, with_scratch, write_bounded, write_bounded_after};

/// [`capture`], read back into an event (tests).
#[cfg(test)]
pub(crate) fn capture_event(record: &log::Record<'_>) -> (super::LogEvent, bool) {
    let (q, panicked) = capture(record, true, &Baggage::Off);
    let e = super::LogEvent::from(&q.record().expect("a captured record reads back"));
    (e, panicked)
}

/// Longest message kept, in bytes; a longer one is cut at a character boundary and marked.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest string attribute value kept, in bytes; longer ones are cut and marked.
pub(crate) const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most attributes kept per record; the rest are counted in `dropped_attributes_count`.
pub(crate) const MAX_ATTRIBUTES: usize = 128;
/// Most bytes of attribute keys and string values kept per record; past it, attributes are counted
/// as dropped, so a record stays far below what one export request can carry.
pub(crate) const MAX_ATTRIBUTE_BYTES: usize = 256 * 1024;

/// Writes the message: a static one as it is, else formatted in place (bounded). Returns whether
/// formatting panicked (the body is then a marker text).
fn write_body(w: &mut Writer<'_>, args: &std::fmt::Arguments<'_>) -> bool {
    if let Some(s) = args.as_str().filter(|s| s.len() <= MAX_BODY_BYTES) {
        w.body(s);
        return false;
    }
    format_body(w, args)
}

/// Formats `args` into the record as its body, at most [`MAX_BODY_BYTES`] of it, with no copy;
/// returns whether formatting panicked (the body is then a marker text, never a part of the text).
fn format_body(w: &mut Writer<'_>, args: &std::fmt::Arguments<'_>) -> bool {
    w.body_with(|buf| {
        let start = buf.len();
        let formatted = catch_unwind(AssertUnwindSafe(|| {
            write_bounded_after(buf, start, args, MAX_BODY_BYTES)
        }));
        if formatted.is_err() {
            buf.truncate(start);
            buf.extend_from_slice(FORMAT_PANIC_BODY.as_bytes());
        }
        formatted.is_err()
    })
}

/// Writes attributes: how many are kept, how many were left out, and the string bytes kept.
struct AttrWriter<'a, 'b> {
    w: &'a mut Writer<'b>,
    kept: usize,
    dropped: u32,
    bytes: usize,
    /// The text of the record's first error, for `exception.message`.
    first_error: Option<String>,
    /// The record has its own `exception.message`.
    own_exception: bool,
    /// The record's first `event.name` was met (later ones are attributes).
    event_named: bool,
}

impl<'a, 'b> AttrWriter<'a, 'b> {
    fn new(w: &'a mut Writer<'b>) -> Self {
        AttrWriter {
            w,
            kept: 0,
            dropped: 0,
            bytes: 0,
            first_error: None,
            own_exception: false,
            event_named: false,
        }
    }

    fn drop_one(&mut self) {
        self.dropped = self.dropped.saturating_add(1);
    }

    /// Takes `n` bytes (key and string value) from the record's budget, if they fit.
    fn fits(&mut self, n: usize) -> bool {
        if self.bytes + n > MAX_ATTRIBUTE_BYTES {
            return false;
        }
        self.bytes += n;
        true
    }

    /// A string value, bounded, if the record's string budget has room for it.
    #[cfg(any(feature = "tracing", feature = "sdk"))]
    fn string(&mut self, key: &str, value: &str) {
        self.string_as(key, value, KeyId::Lookup);
    }

    /// A string value, bounded, its key written as `id` says, if the record's string budget has
    /// room for it.
    fn string_as(&mut self, key: &str, value: &str, id: KeyId) {
        if value.len() > MAX_VALUE_BYTES {
            return with_scratch(|buf| {
                write_bounded(buf, &format_args!("{value}"), MAX_VALUE_BYTES);
                self.keep_as(key, buf, id)
            });
        }
        self.keep_as(key, value, id);
    }

    /// A string value already bounded, if the record's string budget has room for it.
    fn keep(&mut self, key: &str, value: &str) {
        self.keep_as(key, value, KeyId::Lookup);
    }

    /// [`keep`](Self::keep), its key written as `id` says.
    fn keep_as(&mut self, key: &str, value: &str, id: KeyId) {
        if !self.fits(key.len() + value.len()) {
            return self.drop_one();
        }
        self.kept += 1;
        self.w.attr_id(key, id.resolve(key), Value::Str(value));
    }

    /// A byte string, at most [`MAX_VALUE_BYTES`] of it (a cut one is counted as left out, as in a
    /// structure), if the record's budget has room for it.
    #[cfg(any(feature = "tracing", feature = "sdk"))]
    fn bytes(&mut self, key: &str, value: &[u8]) {
        let kept = &value[..value.len().min(MAX_VALUE_BYTES)];
        if !self.fits(key.len() + kept.len()) {
            return self.drop_one();
        }
        if kept.len() < value.len() {
            self.drop_one();
        }
        self.kept += 1;
        self.w.attr(key, Value::Bytes(kept));
    }

    /// A Baggage entry: its key is not interned (Baggage comes from remote callers, who must not
    /// fill the process's table of names), its value bounded like any string.
    fn baggage_entry(&mut self, key: &str, value: &str) {
        self.string_as(key, value, KeyId::Known(None));
    }

    /// The semantic-convention `exception.message` from the record's first error, unless the
    /// record has its own.
    fn exception_message(&mut self) {
        let Some(text) = self.first_error.take() else {
            return;
        };
        if self.own_exception {
            return;
        }
        if self.kept >= MAX_ATTRIBUTES {
            return self.drop_one();
        }
        self.keep(EXCEPTION_MESSAGE, &text);
    }

    /// Whether a pair with `key` is written as an attribute: not when it is the record's first
    /// `event.name` (the caller then gives its value to [`event_name`](Self::event_name)), nor
    /// past the attribute limit (counted as left out).
    fn admit(&mut self, key: &str) -> Admit {
        if key == EVENT_NAME && !self.event_named {
            return Admit::EventName;
        }
        if key == EXCEPTION_MESSAGE {
            self.own_exception = true;
        }
        if self.kept >= MAX_ATTRIBUTES {
            self.drop_one();
            return Admit::No;
        }
        Admit::Attribute
    }

    /// The record's event name (its first `event.name` key-value), as its `Display`, bounded.
    fn event_name(&mut self, value: &dyn std::fmt::Display) {
        self.event_named = true;
        with_scratch(|buf| {
            write_bounded(buf, &format_args!("{value}"), MAX_VALUE_BYTES);
            if self.fits(EVENT_NAME.len() + buf.len()) {
                self.w.event_name(buf);
            } else {
                self.drop_one();
            }
        })
    }

    /// A value that is not a scalar: a structure (`key:serde`, `key:sval`) keeps its shape, a
    /// `Debug` or `Display` one is its text. Written whole or not at all: a value whose
    /// serialization fails is its `Display`; one that panics is rolled back, then the panic goes on.
    fn structured(&mut self, key: &str, value: &kv::Value<'_>) {
        let at = self.w.begin_attr(key);
        let buf = self.w.buf();
        let start = buf.len();
        let written = catch_unwind(AssertUnwindSafe(|| {
            structured::write(buf, at, value, MAX_VALUE_BYTES)
        }));
        match written {
            Ok(Ok(left_out)) => {
                // Like a string: kept whole if the record's budget has room for it, else left out.
                let len = self.w.buf().len() - start;
                if !self.fits(key.len() + len) {
                    self.w.rollback(at);
                    return self.drop_one();
                }
                self.kept += 1;
                self.dropped = self.dropped.saturating_add(left_out);
            }
            Ok(Err(structured::Unserializable::Endless)) => {
                self.w.rollback(at);
                self.drop_one();
            }
            Ok(Err(structured::Unserializable::Shape)) => {
                self.w.rollback(at);
                self.display(key, value);
            }
            Err(panic) => {
                self.w.rollback(at);
                std::panic::resume_unwind(panic);
            }
        }
    }

    /// Any other value as its `Display`, bounded as it is formatted.
    fn display(&mut self, key: &str, value: &dyn std::fmt::Display) {
        // Formatted first: a panic leaves nothing written.
        with_scratch(|buf| {
            write_bounded(buf, &format_args!("{value}"), MAX_VALUE_BYTES);
            self.keep(key, buf)
        })
    }
}

impl<'kvs> VisitSource<'kvs> for AttrWriter<'_, '_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        match self.admit(key.as_str()) {
            Admit::EventName => {
                self.event_name(&value);
                return Ok(());
            }
            Admit::No => return Ok(()),
            Admit::Attribute => {}
        }
        let mut typed = ValueWriter {
            a: self,
            key: key.as_str(),
            id: KeyId::Lookup,
            done: false,
        };
        let visited = value.visit(&mut typed).is_ok() && typed.done;
        if !visited {
            self.structured(key.as_str(), &value);
        }
        Ok(())
    }
}

/// What [`AttrWriter::admit`] decides for a key.
enum Admit {
    EventName,
    Attribute,
    No,
}

/// Writes one key-value pair with the value's own type.
struct ValueWriter<'a, 'b, 'c, 'k> {
    a: &'a mut AttrWriter<'b, 'c>,
    key: &'k str,
    /// How its key is written (scalars and strings; other values look it up).
    id: KeyId,
    done: bool,
}

/// How an attribute's key is written.
#[derive(Clone, Copy)]
enum KeyId {
    /// Interned if it can be (looked up now).
    Lookup,
    /// Looked up already: by this id, or written out (`None`: also a key from outside the
    /// process, which must not fill the process's table of names).
    Known(Option<u16>),
}

impl KeyId {
    fn resolve(self, key: &str) -> Option<u16> {
        match self {
            KeyId::Lookup => names::id(key),
            KeyId::Known(id) => id,
        }
    }
}

impl ValueWriter<'_, '_, '_, '_> {
    #[inline(always)]
    fn scalar(&mut self, value: Value<'_>) {
        self.done = true;
        if !self.a.fits(self.key.len()) {
            return self.a.drop_one();
        }
        self.a.kept += 1;
        self.a.w.attr_id(self.key, self.id.resolve(self.key), value);
    }

    fn string(&mut self, s: &str) {
        self.a.string_as(self.key, s, self.id);
        self.done = true;
    }

    /// An error (`key:err = e`): its message and its `source()` chain joined by ": "; the record's
    /// first error also fills the semantic-convention attribute `exception.message` (after the
    /// record's key-values, unless it has its own).
    fn error(&mut self, err: &(dyn std::error::Error + 'static)) {
        self.done = true;
        with_scratch(|text| {
            write_error_chain(text, err);
            self.a.keep(self.key, text);
            if self.a.first_error.is_none() {
                self.a.first_error = Some(text.clone());
            }
        })
    }

    /// An integer that fits `i64` as an int, else as its decimal string.
    #[inline(always)]
    fn integer<T: TryInto<i64> + std::fmt::Display + Copy>(&mut self, value: T) {
        match value.try_into() {
            Ok(v) => self.scalar(Value::Int(v)),
            Err(_) => {
                self.a.display(self.key, &value);
                self.done = true;
            }
        }
    }
}

impl<'v> VisitValue<'v> for ValueWriter<'_, '_, '_, '_> {
    fn visit_any(&mut self, value: kv::Value<'_>) -> Result<(), kv::Error> {
        self.a.structured(self.key, &value);
        self.done = true;
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), kv::Error> {
        self.scalar(Value::Null);
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        self.integer(value);
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        self.scalar(Value::Int(value));
        Ok(())
    }
    fn visit_u128(&mut self, value: u128) -> Result<(), kv::Error> {
        self.integer(value);
        Ok(())
    }
    fn visit_i128(&mut self, value: i128) -> Result<(), kv::Error> {
        self.integer(value);
        Ok(())
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), kv::Error> {
        self.scalar(Value::Double(value));
        Ok(())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        self.scalar(Value::Bool(value));
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), kv::Error> {
        self.string(value);
        Ok(())
    }
    fn visit_char(&mut self, value: char) -> Result<(), kv::Error> {
        let mut buf = [0u8; 4];
        self.string(value.encode_utf8(&mut buf));
        Ok(())
    }
    fn visit_error(&mut self, err: &(dyn std::error::Error + 'static)) -> Result<(), kv::Error> {
        self.error(err);
        Ok(())
    }
    fn visit_borrowed_error(
        &mut self,
        err: &'v (dyn std::error::Error + 'static),
    ) -> Result<(), kv::Error> {
        self.error(err);
        Ok(())
    }
}

/// The key-value that names a record's event: it fills the LogRecord's `event_name` field.
pub(crate) const EVENT_NAME: &str = "event.name";
/// Semantic-convention attribute the first error of a record fills.
pub(crate) const EXCEPTION_MESSAGE: &str = "exception.message";
/// Most `source()` links followed (a chain that loops ends there).
const MAX_ERROR_SOURCES: usize = 32;

/// Writes an error and its sources into `buf`, as "outer: inner: root": about [`MAX_VALUE_BYTES`]
/// at most (past it, each link adds only its cut mark) and no allocation. A source whose text the
/// error before it already shows (`#[error("charge failed: {0}")]`) is not repeated.
fn write_error_chain(buf: &mut String, err: &(dyn std::error::Error + 'static)) {
    write_bounded(buf, &format_args!("{err}"), MAX_VALUE_BYTES);
    let mut shown = 0..buf.len();
    let mut source = err.source();
    for _ in 0..MAX_ERROR_SOURCES {
        let Some(e) = source else { break };
        let mark = buf.len();
        buf.push_str(": ");
        let start = buf.len();
        write_bounded(buf, &format_args!("{e}"), MAX_VALUE_BYTES);
        if buf[shown.clone()].contains(&buf[start..]) {
            buf.truncate(mark);
        } else {
            shown = start..buf.len();
        }
        source = e.source();
    }
}

#[cfg(test)]
mod tests;
