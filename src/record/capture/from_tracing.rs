//! The only place a `tracing` event is read, on the calling thread: it becomes a [`Queued`] record
//! like a `log::Record` does, with the same bounds, types and guarantees.
//!
//! - the `message` field is the body; every other field an attribute of its own type (i64, u64,
//!   i128/u128 as for `log`, f64, bool, str, bytes, errors with their chain, `?debug` and
//!   `%display` as their text, `valuable` values as structures with the `valuable` feature);
//! - the target is the scope, the level the severity, the callsite's module, file and line the
//!   code location; an event that `tracing-log` made of a `log` record keeps that record's target,
//!   module, file and line (its `log.*` fields are not attributes);
//! - an event given a `name:` keeps it as the record's event name; else its first `event.name`
//!   field names it, as for `log`;
//! - the fields of its spans ([`SpanFields`]) follow the event's own, which win.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level, Metadata};
use tracing_log::NormalizeEvent as _;

use super::{
    Admit, AttrWriter, Baggage, FORMAT_PANIC_BODY, KeyId, MAX_ATTRIBUTES, MAX_BODY_BYTES,
    MAX_VALUE_BYTES, PAYLOAD_BUFFER, ValueWriter, with_buffer, with_scratch, write_bounded,
    write_error_chain,
};
use crate::internal::is_internal_target;
use crate::record::queued::{Queued, Writer};
use crate::record::{AttrValue, Severity, Value, names};

mod site;
use site::{Role, Site};

/// The field `tracing`'s macros put the message in.
const MESSAGE: &str = "message";

impl From<&Level> for Severity {
    fn from(level: &Level) -> Self {
        match *level {
            Level::ERROR => Severity::Error,
            Level::WARN => Severity::Warn,
            Level::INFO => Severity::Info,
            Level::DEBUG => Severity::Debug,
            Level::TRACE => Severity::Trace,
        }
    }
}

/// The `log` level of a `tracing` level (the filter is kept in `log`'s terms).
pub(crate) fn log_level(level: &Level) -> log::Level {
    match *level {
        Level::ERROR => log::Level::Error,
        Level::WARN => log::Level::Warn,
        Level::INFO => log::Level::Info,
        Level::DEBUG => log::Level::Debug,
        Level::TRACE => log::Level::Trace,
    }
}

/// What the capture of an event needs of its pipeline.
pub(crate) struct Settings<'a> {
    pub code_location: bool,
    pub baggage: &'a Baggage,
}

/// The fields of the event's spans, innermost span first: called once with a function taking each
/// field (name, value). Names a span repeats from an inner one, or the event has, are skipped.
pub(crate) type Spans<'s> = &'s mut dyn FnMut(&mut dyn FnMut(&'static str, Value<'_>));

/// Captures `event` into its queued form and hands it to `push` (straight from where it was
/// made: a record moved through fewer frames is copied fewer times), unless its target is one of
/// the pipeline's own ([`is_internal_target`]) or `admit` does not keep its metadata (a `log`
/// record's own, for an event `tracing-log` made); says whether formatting its message panicked.
/// Never panics on account of the event's contents.
pub(crate) fn capture_event(
    event: &Event<'_>,
    settings: &Settings<'_>,
    mut spans: Option<Spans<'_>>,
    admit: impl FnOnce(&Metadata<'_>) -> bool,
    push: impl FnOnce(Queued),
) -> bool {
    let meta: &'static Metadata<'static> = event.metadata();
    // An event `tracing-log` made of a `log` record: that record's target, module, file and line.
    // A cached callsite is not one (only the others are cached).
    let cached = Site::cached(meta, settings.code_location);
    let normalized = match cached {
        Some(_) => None,
        None => event.normalized_metadata(),
    };
    let kept = normalized.as_ref().unwrap_or(meta);
    // A cached callsite's target is not internal: only callsites captured from are cached.
    if (cached.is_none() && is_internal_target(kept.target())) || !admit(kept) {
        return false;
    }
    let now = crate::clock::now_unix_nanos();
    let from_log = normalized.is_some();
    let mut push = Some(push);
    with_buffer(&PAYLOAD_BUFFER, |buf| {
        let mut w = Writer::new(buf, Severity::from(meta.level()), now, None);
        super::write_trace_context(&mut w);
        let site = match (&normalized, cached) {
            (Some(n), _) => {
                location(&mut w, settings, n);
                None
            }
            (None, cached) => {
                let site = cached.unwrap_or_else(|| Site::of(meta, settings.code_location));
                site.write(&mut w, settings, meta);
                Some(site)
            }
        };
        let given = site.and_then(|s| s.name(meta));
        let callsite = meta.callsite();
        // One pass over the fields: the attributes are written as they come, the message in place
        // when it comes first.
        let at = w.body_pending();
        let mut attrs = AttrWriter::new(&mut w);
        // The given name follows the body: written once the body is, its room taken now (as if
        // it came first) so that the message can still go in place. One too long to keep whole is
        // cut as any event name is, now.
        let given = given.and_then(|name| {
            if name.len() > MAX_VALUE_BYTES {
                attrs.event_name(&name);
                return None;
            }
            attrs.event_named = true;
            let fits = attrs.fits(super::EVENT_NAME.len() + name.len());
            if !fits {
                attrs.drop_one();
            }
            fits.then_some(name)
        });
        // A message met after an attribute, or a second one, is formatted apart (a rare order:
        // `tracing`'s macros put the message first), then put in its place.
        let mut message = String::new();
        let mut fields = Fields {
            a: &mut attrs,
            from_log,
            seen: 0,
            site: site.as_ref().map(|s| (s, &callsite)),
            body_at: at,
            body_end: None,
            replaced: false,
            message: &mut message,
            message_panicked: false,
        };
        let visited = catch_unwind(AssertUnwindSafe(|| event.record(&mut fields)));
        // The fields after one that panicked were not reached: counted as left out.
        let unreached = match visited {
            Ok(()) => 0,
            Err(_) => meta.fields().len().saturating_sub(fields.seen),
        };
        let (format_panicked, in_place, replaced) =
            (fields.message_panicked, fields.body_end, fields.replaced);
        match in_place {
            None => attrs.w.body_later(at, &message),
            Some(end) if replaced => attrs.w.replace_body(at..end, &message),
            Some(_) => {}
        }
        if let Some(name) = given {
            attrs.w.event_name(name);
        }
        attrs.dropped = attrs
            .dropped
            .saturating_add(u32::try_from(unreached).unwrap_or(u32::MAX));
        let own = |key: &str| meta.fields().field(key).is_some();
        if let Some(spans) = spans.as_mut() {
            span_fields(&mut attrs, &own, spans);
        }
        attrs.exception_message();
        if !matches!(settings.baggage, Baggage::Off) {
            super::write_baggage(&mut attrs, &own, settings.baggage);
        }
        let dropped = attrs.dropped;
        // Run once: `with_buffer` calls this closure once.
        if let Some(push) = push.take() {
            push(w.finish(dropped));
        }
        format_panicked
    })
}

/// Target, module, file and line of metadata borrowed from an event.
fn location(w: &mut Writer<'_>, settings: &Settings<'_>, meta: &Metadata<'_>) {
    let target = meta.target();
    w.target(names::id(target), target);
    if settings.code_location {
        w.module(meta.module_path().map(|m| (names::id(m), m)));
        w.file(meta.file().map(|f| (names::id(f), f)));
        if let Some(l) = meta.line() {
            w.line(l);
        }
    }
}

/// The event's name when its call site gave one (`info!(name: "order.placed", ...)`); not the
/// default `tracing` makes up, `event <file>:<line>`.
fn given_name(meta: &Metadata<'static>) -> Option<&'static str> {
    let name = meta.name();
    let default = || {
        let line = name
            .strip_prefix("event ")?
            .strip_prefix(meta.file()?)?
            .strip_prefix(':')?;
        Some(line.parse::<u32>().ok()? == meta.line()?)
    };
    (!name.is_empty() && default() != Some(true)).then_some(name)
}

/// Visits the fields: the message as the body (in place, or into `message`), every other field
/// an attribute.
struct Fields<'a, 'b, 'c, 'm> {
    a: &'a mut AttrWriter<'b, 'c>,
    /// Leave out `tracing-log`'s `log.*` fields (already the record's location).
    from_log: bool,
    /// Fields met so far, the message included.
    seen: usize,
    /// The callsite, with the ids of its field names, and its identifier (none: looked up).
    site: Option<(&'m Site, &'m tracing_core::callsite::Identifier)>,
    /// Where the body goes in the record's variable part.
    body_at: usize,
    /// Where the body written there in place ends: the message came before anything else was
    /// written (as `tracing`'s macros put it, first).
    body_end: Option<usize>,
    /// A later `message` field replaces the one in place (the last one is the body).
    replaced: bool,
    /// The message, formatted (bounded), when it came after an attribute or a first message;
    /// empty until met.
    message: &'m mut String,
    /// Formatting the message panicked (it is then a marker text).
    message_panicked: bool,
}

impl<'b, 'c> Fields<'_, 'b, 'c, '_> {
    /// What `field` is, as its callsite says: an event built with another callsite's values
    /// (possible with `Event::new`) has its fields found by their names.
    fn role(&self, field: &Field) -> Role {
        match self.site {
            Some((site, callsite)) if field.callsite() == *callsite => site.role(field.index()),
            _ => Role::Unknown,
        }
    }

    /// Whether `field` is the message.
    fn is_message(role: Role, field: &Field) -> bool {
        match role {
            Role::Message => true,
            Role::Attribute(_) => false,
            Role::Unknown => field.name() == MESSAGE,
        }
    }

    /// Writes the field unless it is the message or left out; `f` writes its value.
    #[inline(always)]
    fn field(
        &mut self,
        role: Role,
        field: &Field,
        f: impl FnOnce(&mut ValueWriter<'_, 'b, 'c, '_>),
    ) {
        self.seen += 1;
        let key = field.name();
        let id = match role {
            // A plain attribute: its name needs no comparing.
            Role::Attribute(id) => {
                if self.a.kept >= MAX_ATTRIBUTES {
                    return self.a.drop_one();
                }
                KeyId::Known(id)
            }
            Role::Message => return,
            Role::Unknown => {
                if key == MESSAGE || (self.from_log && key.starts_with("log.")) {
                    return;
                }
                match self.a.admit(key) {
                    Admit::EventName | Admit::No => return,
                    Admit::Attribute => KeyId::Lookup,
                }
            }
        };
        let mut typed = ValueWriter {
            a: self.a,
            key,
            id,
            done: false,
        };
        f(&mut typed);
    }

    /// A field that may name the event (its text then does) or be a message that is not text
    /// (`message = 5`: its text is the body). A plain attribute is neither, known without a call.
    #[inline(always)]
    fn named(&mut self, role: Role, field: &Field, text: &dyn std::fmt::Display) -> bool {
        !matches!(role, Role::Attribute(_)) && self.named_by_role_or_name(role, field, text)
    }

    fn named_by_role_or_name(
        &mut self,
        role: Role,
        field: &Field,
        text: &dyn std::fmt::Display,
    ) -> bool {
        if Self::is_message(role, field) {
            self.message(&format_args!("{text}"));
            return true;
        }
        if field.name() == super::EVENT_NAME && !self.a.event_named {
            self.seen += 1;
            self.a.event_name(text);
            return true;
        }
        false
    }
}

impl Fields<'_, '_, '_, '_> {
    /// The message field, formatted with `Debug` (`tracing`'s macros give it as `format_args!`,
    /// whose `Debug` is its text); a panic leaves the marker text. Written in place when nothing
    /// was written after the body's position yet (the common case), else formatted apart and put
    /// there at the end. The last `message` field is the body (`info!(message = "m", "{x}")`
    /// has two).
    fn message(&mut self, value: &dyn std::fmt::Debug) {
        self.seen += 1;
        if self.body_end.is_none() && self.a.w.buf().len() == self.body_at {
            self.message_panicked = super::format_body(self.a.w, &format_args!("{value:?}"));
            self.body_end = Some(self.a.w.buf().len());
            return;
        }
        self.replaced = self.body_end.is_some();
        let message = &mut *self.message;
        message.clear();
        let formatted = catch_unwind(AssertUnwindSafe(|| {
            write_bounded(message, &format_args!("{value:?}"), MAX_BODY_BYTES)
        }));
        if formatted.is_err() {
            self.message.clear();
            self.message.push_str(FORMAT_PANIC_BODY);
            self.message_panicked = true;
        }
    }
}

impl Visit for Fields<'_, '_, '_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let role = self.role(field);
        if !self.named(role, field, &value) {
            self.field(role, field, |v| v.scalar(Value::Double(value)));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        let role = self.role(field);
        if !self.named(role, field, &value) {
            self.field(role, field, |v| v.scalar(Value::Int(value)));
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let role = self.role(field);
        if !self.named(role, field, &value) {
            self.field(role, field, |v| v.integer(value));
        }
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        let role = self.role(field);
        if !self.named(role, field, &value) {
            self.field(role, field, |v| v.integer(value));
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        let role = self.role(field);
        if !self.named(role, field, &value) {
            self.field(role, field, |v| v.integer(value));
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        let role = self.role(field);
        if !self.named(role, field, &value) {
            self.field(role, field, |v| v.scalar(Value::Bool(value)));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let role = self.role(field);
        if Self::is_message(role, field) {
            return self.message(&format_args!("{value}"));
        }
        if !self.named(role, field, &value) {
            self.field(role, field, |v| v.string(value));
        }
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.field(self.role(field), field, |v| {
            v.a.bytes(v.key, value);
            v.done = true;
        });
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(self.role(field), field, |v| v.error(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let role = self.role(field);
        if Self::is_message(role, field) {
            return self.message(value);
        }
        let text = DebugText(value);
        if !self.named(role, field, &text) {
            self.field(role, field, |v| {
                v.done = true;
                // A panicking `Debug` leaves this field out (counted) and the visit goes on, so a
                // message after it is still the body.
                let key = v.key;
                let shown = catch_unwind(AssertUnwindSafe(|| v.a.display(key, &text)));
                if shown.is_err() {
                    v.a.drop_one();
                }
            });
        }
    }
    #[cfg(all(feature = "valuable", tracing_unstable))]
    fn record_value(&mut self, field: &Field, value: valuable::Value<'_>) {
        let serializable = valuable_serde::Serializable::new(value);
        self.field(self.role(field), field, |v| {
            v.a.structured(v.key, &log::kv::Value::from_serde(&serializable));
            v.done = true;
        });
    }
}

/// A `Debug` value shown through `Display`.
struct DebugText<'a>(&'a dyn std::fmt::Debug);

impl std::fmt::Display for DebugText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Adds the spans' fields the event does not have, the innermost span's first.
fn span_fields(attrs: &mut AttrWriter<'_, '_>, own: &dyn Fn(&str) -> bool, spans: Spans<'_>) {
    let mut written: Vec<&'static str> = Vec::new();
    spans(&mut |key, value| {
        if own(key) || written.contains(&key) {
            return;
        }
        written.push(key);
        if attrs.kept >= MAX_ATTRIBUTES {
            return attrs.drop_one();
        }
        match value {
            Value::Str(s) => attrs.string(key, s),
            v => {
                if !attrs.fits(key.len()) {
                    return attrs.drop_one();
                }
                attrs.kept += 1;
                attrs.w.attr(key, v);
            }
        }
    });
}

/// The fields of one span, kept (owned) for the events inside it when `LOG_SPAN_FIELDS` is on:
/// what the span was created with, updated by `Span::record`. Bounded like a record's attributes.
#[derive(Debug, Default)]
pub(crate) struct SpanFields {
    fields: Vec<(&'static str, AttrValue)>,
    /// Bytes of the string values kept, at most [`super::MAX_ATTRIBUTE_BYTES`].
    bytes: usize,
}

impl SpanFields {
    /// Each field, in the order first recorded.
    pub(crate) fn each(&self, f: &mut dyn FnMut(&'static str, Value<'_>)) {
        for (k, v) in &self.fields {
            f(k, v.as_value());
        }
    }

    /// The values recorded later (`Span::record`) over these.
    pub(crate) fn merge(&mut self, update: SpanFields) {
        for (k, v) in update.fields {
            self.set(k, v);
        }
    }

    fn set(&mut self, key: &'static str, value: AttrValue) {
        let len = |v: &AttrValue| match v {
            AttrValue::Str(s) => s.len(),
            _ => 0,
        };
        let i = self.fields.iter().position(|(k, _)| *k == key);
        let old = i.map_or(0, |i| len(&self.fields[i].1));
        let bytes = self.bytes - old + len(&value);
        if bytes > super::MAX_ATTRIBUTE_BYTES {
            return;
        }
        match i {
            Some(i) => self.fields[i].1 = value,
            None if self.fields.len() < MAX_ATTRIBUTES => self.fields.push((key, value)),
            None => return,
        }
        self.bytes = bytes;
    }

    fn text(&mut self, key: &'static str, value: &dyn std::fmt::Display) {
        // A panicking `Display` leaves the field out.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            with_scratch(|buf| {
                write_bounded(buf, &format_args!("{value}"), MAX_VALUE_BYTES);
                self.set(key, AttrValue::Str(buf.as_str().into()));
            })
        }));
    }
}

impl Visit for SpanFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), AttrValue::Double(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), AttrValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.set(field.name(), AttrValue::Int(v)),
            Err(_) => self.text(field.name(), &value),
        }
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.set(field.name(), AttrValue::Int(v)),
            Err(_) => self.text(field.name(), &value),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match i64::try_from(value) {
            Ok(v) => self.set(field.name(), AttrValue::Int(v)),
            Err(_) => self.text(field.name(), &value),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), AttrValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field.name(), &value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            with_scratch(|buf| {
                write_error_chain(buf, value);
                self.set(field.name(), AttrValue::Str(buf.as_str().into()));
            })
        }));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.text(field.name(), &DebugText(value));
    }
}
