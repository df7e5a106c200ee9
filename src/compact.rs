//! The queued form of a record: what the calling thread writes into a queue slot, and the worker
//! reads back into a [`LogEvent`].
//!
//! A record is a short byte string, kept inline in the slot when it fits in [`INLINE`] bytes (a
//! typical record with a formatted message, a few key-values and a span context takes about 100),
//! on the heap otherwise. So the calling thread allocates nothing for a typical record, a queued
//! record costs one 128-byte slot instead of an event plus its strings, and every allocation and
//! free of the strings happens on the worker thread.
//!
//! Layout (private to this process, never stored):
//!
//! ```text
//! severity u8 | flags u8 | referenced u32 | time u64 | [observed u64] | target S | [module S] | [file S]
//! | [line varint] | [trace_id 16, span_id 8, trace_flags u8] | body S
//! | (key S, value)* | 0xFF | dropped_attributes varint
//! ```
//!
//! `referenced` is the length of the strings the record refers to rather than holds (interned and
//! `'static` ones), so the worker knows a record's size without reading it.
//! A string `S` is an interned id below 0x80 in one byte, or 0x80 and the id as a varint, or 0x81,
//! a varint length and the bytes, or 0x82, the address and a varint length of a `&'static str`.
//! A value is 0 and a zigzag varint (int), 1 and 8 bytes (double), 2 (false), 3 (true), or 4 and a
//! string `S`.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use crate::event::{Attr, AttrValue, LogEvent, Severity, TraceContext};
use crate::intern;

/// Bytes of a record kept in the queue slot itself.
pub(crate) const INLINE: usize = 118;

const FLAG_TRACE: u8 = 1;
const FLAG_OBSERVED: u8 = 2;
const FLAG_MODULE: u8 = 4;
const FLAG_FILE: u8 = 8;
const FLAG_LINE: u8 = 16;
/// Some attributes were left out: the count at the end is not zero.
const FLAG_DROPPED: u8 = 32;

const S_ID: u8 = 0x80;
const S_INLINE: u8 = 0x81;
const S_STATIC: u8 = 0x82;
const END: u8 = 0xFF;

const V_INT: u8 = 0;
const V_DOUBLE: u8 = 1;
const V_FALSE: u8 = 2;
const V_TRUE: u8 = 3;
const V_STR: u8 = 4;

/// A record as queued. Only this module makes one (from a [`Writer`]): the `S_STATIC` form, read
/// back as a `&'static str`, relies on that.
#[derive(Clone)]
pub(crate) struct Compact(Repr);

#[derive(Clone)]
enum Repr {
    /// The first `len` bytes are written; the rest are not (a record is copied into its queue slot
    /// byte by length, not whole).
    Inline {
        len: u8,
        bytes: [MaybeUninit<u8>; INLINE],
    },
    Heap(Box<[u8]>),
}

impl Compact {
    /// About the size of the record's content: its bytes plus the strings it refers to.
    pub(crate) fn approx_size(&self) -> usize {
        let b = self.as_bytes();
        let referenced = b
            .get(2..6)
            .map_or(0, |r| u32::from_le_bytes([r[0], r[1], r[2], r[3]]));
        b.len() + referenced as usize
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let len = usize::from(*len).min(INLINE);
                // SAFETY: the first `len` bytes of an inline record are written (`finish_into`).
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<u8>(), len) }
            }
            Repr::Heap(b) => b,
        }
    }

    /// The record's severity (its first byte).
    pub(crate) fn severity(&self) -> Severity {
        severity_from(self.as_bytes().first().copied().unwrap_or(0))
    }
}

fn severity_from(n: u8) -> Severity {
    match n {
        1 => Severity::Trace,
        5 => Severity::Debug,
        13 => Severity::Warn,
        17 => Severity::Error,
        21 => Severity::Fatal,
        _ => Severity::Info,
    }
}

/// Which optional parts a record has, written in this order after the target.
pub(crate) struct Has {
    pub module: bool,
    pub file: bool,
    pub line: bool,
    pub trace: bool,
}

/// Writes a record: into the inline buffer while it fits, then into a heap buffer.
pub(crate) struct Writer {
    len: usize,
    /// Bytes of the strings referred to by id or address.
    referenced: u64,
    /// Whether attributes were left out ([`FLAG_DROPPED`]).
    dropped: bool,
    inline: [u8; INLINE],
    heap: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            len: 0,
            referenced: 0,
            dropped: false,
            inline: [0; INLINE],
            heap: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        if self.heap.capacity() == 0 {
            if let Some(room) = self.inline.get_mut(self.len..self.len + bytes.len()) {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
                return;
            }
            self.heap = Vec::with_capacity((self.len + bytes.len()).max(2 * INLINE));
            self.heap.extend_from_slice(&self.inline[..self.len]);
        }
        self.heap.extend_from_slice(bytes);
    }

    #[inline]
    pub(crate) fn byte(&mut self, b: u8) {
        if self.heap.capacity() == 0
            && let Some(slot) = self.inline.get_mut(self.len)
        {
            *slot = b;
            self.len += 1;
        } else {
            self.put(&[b]);
        }
    }

    #[inline]
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// A string that may be interned (targets, keys, paths): its id when it has one.
    #[inline]
    pub(crate) fn name(&mut self, s: &str) {
        match intern::id(s) {
            Some(id) => {
                self.referenced += s.len() as u64;
                self.id(id);
            }
            None => self.text(s),
        }
    }

    fn id(&mut self, id: u16) {
        if id < u16::from(S_ID) {
            self.byte(id as u8);
        } else {
            self.byte(S_ID);
            self.varint(u64::from(id));
        }
    }

    /// [`name`](Self::name) for a string that lives as long as the process (a cheaper lookup).
    #[inline]
    pub(crate) fn name_static(&mut self, s: &'static str) {
        match intern::id_static(s) {
            Some(id) => {
                self.referenced += s.len() as u64;
                self.id(id);
            }
            None => self.static_text(s),
        }
    }

    /// A string copied into the record.
    #[inline]
    pub(crate) fn text(&mut self, s: &str) {
        self.byte(S_INLINE);
        self.varint(s.len() as u64);
        self.put(s.as_bytes());
    }

    /// A string that lives as long as the process: only its address is written.
    #[inline]
    pub(crate) fn static_text(&mut self, s: &'static str) {
        self.referenced += s.len() as u64;
        self.byte(S_STATIC);
        self.put(&(s.as_ptr() as usize as u64).to_le_bytes());
        self.varint(s.len() as u64);
    }

    pub(crate) fn header(&mut self, severity: Severity, time: u64, observed: u64, has: Has) {
        let flags = if has.trace { FLAG_TRACE } else { 0 }
            | if observed != time { FLAG_OBSERVED } else { 0 }
            | if has.module { FLAG_MODULE } else { 0 }
            | if has.file { FLAG_FILE } else { 0 }
            | if has.line { FLAG_LINE } else { 0 };
        self.byte(severity.number() as u8);
        self.byte(flags);
        self.put(&[0; 4]);
        self.put(&time.to_le_bytes());
        if observed != time {
            self.put(&observed.to_le_bytes());
        }
    }

    pub(crate) fn trace(&mut self, t: &TraceContext) {
        self.put(&t.trace_id);
        self.put(&t.span_id);
        self.byte(t.flags);
    }

    pub(crate) fn int(&mut self, i: i64) {
        self.byte(V_INT);
        self.varint(((i << 1) ^ (i >> 63)) as u64);
    }

    pub(crate) fn double(&mut self, d: f64) {
        self.byte(V_DOUBLE);
        self.put(&d.to_le_bytes());
    }

    pub(crate) fn bool(&mut self, b: bool) {
        self.byte(if b { V_TRUE } else { V_FALSE });
    }

    /// A string value.
    pub(crate) fn str_value(&mut self, s: &str) {
        self.byte(V_STR);
        self.text(s);
    }

    /// Ends the attributes.
    pub(crate) fn end(&mut self, dropped_attributes: u32) {
        self.dropped = dropped_attributes > 0;
        self.byte(END);
        self.varint(u64::from(dropped_attributes));
    }

    /// Sets the header fields known only at the end.
    fn seal(&mut self) {
        let referenced = u32::try_from(self.referenced)
            .unwrap_or(u32::MAX)
            .to_le_bytes();
        let bytes = if self.heap.capacity() == 0 {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap[..]
        };
        if let Some(slot) = bytes.get_mut(2..6) {
            slot.copy_from_slice(&referenced);
        }
        if self.dropped
            && let Some(flags) = bytes.get_mut(1)
        {
            *flags |= FLAG_DROPPED;
        }
    }

    /// Writes the record into `dst` (a queue slot), copying only the bytes written.
    #[inline]
    /// The writer is left empty of a heap buffer; it is written in place, not moved, since copying
    /// bytes just written one by one is slow.
    pub(crate) fn finish_into(&mut self, dst: &mut MaybeUninit<Compact>) {
        self.seal();
        if self.heap.capacity() != 0 {
            let heap = std::mem::take(&mut self.heap);
            dst.write(Compact(Repr::Heap(heap.into_boxed_slice())));
            return;
        }
        let len = self.len.min(INLINE);
        let c = dst.write(Compact(Repr::Inline {
            len: len as u8,
            bytes: [MaybeUninit::uninit(); INLINE],
        }));
        if let Repr::Inline { bytes, .. } = &mut c.0 {
            // SAFETY: both are at least `len` bytes (`len <= INLINE`) and distinct buffers.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.inline.as_ptr(),
                    bytes.as_mut_ptr().cast::<u8>(),
                    len,
                );
            }
        }
    }

    pub(crate) fn finish(mut self) -> Compact {
        let mut c = MaybeUninit::uninit();
        self.finish_into(&mut c);
        // SAFETY: `finish_into` always writes a record.
        unsafe { c.assume_init() }
    }
}

/// A string of the event: a `'static` one by address, others copied.
#[allow(clippy::ptr_arg, reason = "which variant it is decides the encoding")]
fn cow(w: &mut Writer, s: &Cow<'static, str>) {
    match s {
        Cow::Borrowed(b) => w.static_text(b),
        Cow::Owned(o) => w.text(o),
    }
}

/// The queued form of an event made by the bridge itself (audit and panic records).
pub(crate) fn encode(e: &LogEvent) -> Compact {
    let mut w = Writer::new();
    w.header(
        e.severity,
        e.time_unix_nano,
        e.observed_time_unix_nano,
        Has {
            module: e.module_path.is_some(),
            file: e.file.is_some(),
            line: e.line.is_some(),
            trace: e.trace.is_some(),
        },
    );
    cow(&mut w, &e.target);
    if let Some(m) = &e.module_path {
        cow(&mut w, m);
    }
    if let Some(f) = &e.file {
        cow(&mut w, f);
    }
    if let Some(l) = e.line {
        w.varint(u64::from(l));
    }
    if let Some(t) = &e.trace {
        w.trace(t);
    }
    cow(&mut w, &e.body);
    for a in &e.attributes {
        cow(&mut w, &a.key);
        match &a.value {
            AttrValue::Int(i) => w.int(*i),
            AttrValue::Double(d) => w.double(*d),
            AttrValue::Bool(b) => w.bool(*b),
            AttrValue::Str(s) => w.str_value(s),
        }
    }
    w.end(e.dropped_attributes);
    w.finish()
}

/// Reads a record back.
#[derive(Clone)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn string(&mut self, first: u8) -> Option<Str<'a>> {
        Some(match first {
            id if id < S_ID => {
                let id = u16::from(id);
                Str::Interned(id, intern::get(id)?)
            }
            S_ID => {
                let id = u16::try_from(self.varint()?).ok()?;
                Str::Interned(id, intern::get(id)?)
            }
            S_INLINE => {
                let len = usize::try_from(self.varint()?).ok()?;
                let bytes = self.take(len)?;
                // SAFETY: only `Writer::text` writes this form, copying a `&str`'s bytes, and a
                // `Compact` is only ever made by a `Writer`, so the bytes are UTF-8.
                Str::Copied(unsafe { std::str::from_utf8_unchecked(bytes) })
            }
            S_STATIC => {
                let addr = self.u64()? as usize;
                let len = usize::try_from(self.varint()?).ok()?;
                // SAFETY: only `Writer::static_text` writes this form, from a `&'static str` of this
                // process, and these bytes never leave the process.
                Str::Static(unsafe {
                    std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                        addr as *const u8,
                        len,
                    ))
                })
            }
            _ => return None,
        })
    }

    fn next_string(&mut self) -> Option<Str<'a>> {
        let first = self.byte()?;
        self.string(first)
    }
}

/// A string of a record read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Str<'a> {
    /// Interned, with its id.
    Interned(u16, &'static str),
    /// Lives as long as the process (a `&'static str` of the caller).
    Static(&'static str),
    /// Copied into the record.
    Copied(&'a str),
}

impl<'a> Str<'a> {
    pub(crate) fn as_str(self) -> &'a str {
        match self {
            Str::Interned(_, s) | Str::Static(s) => s,
            Str::Copied(s) => s,
        }
    }

    fn to_cow(self) -> Cow<'static, str> {
        match self {
            Str::Interned(_, s) | Str::Static(s) => Cow::Borrowed(s),
            Str::Copied(s) => Cow::Owned(s.to_owned()),
        }
    }
}

/// An attribute value read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Int(i64),
    Double(f64),
    Bool(bool),
    Str(Str<'a>),
}

/// A queued record read in place, without copying anything: what the OTLP encoder reads.
pub(crate) struct View<'a> {
    flags: u8,
    pub severity: Severity,
    pub time: u64,
    pub observed: u64,
    pub target: Str<'a>,
    pub module: Option<Str<'a>>,
    pub file: Option<Str<'a>>,
    pub line: Option<u32>,
    pub trace: Option<TraceContext>,
    pub body: Str<'a>,
    /// The attributes, the end mark and the dropped count.
    rest: &'a [u8],
}

impl<'a> View<'a> {
    /// Reads the fixed part of `c`; `None` if it is not a record this module wrote.
    pub(crate) fn of(c: &'a Compact) -> Option<View<'a>> {
        let mut r = Reader(c.as_bytes());
        let severity = severity_from(r.byte()?);
        let flags = r.byte()?;
        let _referenced = r.take(4)?;
        let time = r.u64()?;
        let observed = if flags & FLAG_OBSERVED != 0 {
            r.u64()?
        } else {
            time
        };
        let target = r.next_string()?;
        let module = if flags & FLAG_MODULE != 0 {
            Some(r.next_string()?)
        } else {
            None
        };
        let file = if flags & FLAG_FILE != 0 {
            Some(r.next_string()?)
        } else {
            None
        };
        let line = if flags & FLAG_LINE != 0 {
            Some(u32::try_from(r.varint()?).ok()?)
        } else {
            None
        };
        let trace = if flags & FLAG_TRACE != 0 {
            Some(TraceContext {
                trace_id: r.take(16)?.try_into().ok()?,
                span_id: r.take(8)?.try_into().ok()?,
                flags: r.byte()?,
            })
        } else {
            None
        };
        let body = r.next_string()?;
        Some(View {
            flags,
            severity,
            time,
            observed,
            target,
            module,
            file,
            line,
            trace,
            body,
            rest: r.0,
        })
    }

    /// Attributes left out of the record (its limits).
    pub(crate) fn dropped_attributes(&self) -> u32 {
        if self.flags & FLAG_DROPPED == 0 {
            return 0;
        }
        self.attributes().dropped().unwrap_or(0)
    }

    /// The attributes in order; then [`Attributes::dropped`].
    pub(crate) fn attributes(&self) -> Attributes<'a> {
        Attributes {
            r: Reader(self.rest),
            done: false,
        }
    }
}

/// The attributes of a [`View`].
#[derive(Clone)]
pub(crate) struct Attributes<'a> {
    r: Reader<'a>,
    done: bool,
}

impl<'a> Attributes<'a> {
    fn read(&mut self) -> Option<(Str<'a>, Value<'a>)> {
        let first = self.r.byte()?;
        if first == END {
            return None;
        }
        let key = self.r.string(first)?;
        let value = match self.r.byte()? {
            V_INT => {
                let z = self.r.varint()?;
                Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            V_DOUBLE => Value::Double(f64::from_le_bytes(self.r.take(8)?.try_into().ok()?)),
            V_FALSE => Value::Bool(false),
            V_TRUE => Value::Bool(true),
            V_STR => Value::Str(self.r.next_string()?),
            _ => return None,
        };
        Some((key, value))
    }

    /// Attributes left out of the record (its limits); read after the last attribute.
    pub(crate) fn dropped(mut self) -> Option<u32> {
        while self.next().is_some() {}
        u32::try_from(self.r.varint()?).ok()
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (Str<'a>, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.read();
        self.done = item.is_none();
        item
    }
}

/// The event a queued record holds.
pub(crate) fn decode(c: &Compact) -> LogEvent {
    read(c).unwrap_or_else(|| LogEvent {
        time_unix_nano: 0,
        observed_time_unix_nano: 0,
        severity: c.severity(),
        body: Cow::Borrowed("<otel-log-bridge: unreadable queued record>"),
        target: Cow::Borrowed("otel_log_bridge"),
        module_path: None,
        file: None,
        line: None,
        trace: None,
        attributes: Vec::new(),
        dropped_attributes: 0,
    })
}

fn read(c: &Compact) -> Option<LogEvent> {
    let v = View::of(c)?;
    let mut attrs = v.attributes();
    let attributes = attrs
        .by_ref()
        .map(|(key, value)| Attr {
            key: key.to_cow(),
            value: match value {
                Value::Int(i) => AttrValue::Int(i),
                Value::Double(d) => AttrValue::Double(d),
                Value::Bool(b) => AttrValue::Bool(b),
                Value::Str(s) => AttrValue::Str(s.as_str().into()),
            },
        })
        .collect();
    Some(LogEvent {
        time_unix_nano: v.time,
        observed_time_unix_nano: v.observed,
        severity: v.severity,
        body: v.body.to_cow(),
        target: v.target.to_cow(),
        module_path: v.module.map(Str::to_cow),
        file: v.file.map(Str::to_cow),
        line: v.line,
        trace: v.trace,
        attributes,
        dropped_attributes: attrs.dropped()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = Cow<'static, str>> {
        prop_oneof![
            Just(Cow::Borrowed("payment.service")),
            Just(Cow::Borrowed("")),
            ".{0,40}".prop_map(Cow::Owned),
            ".{200,300}".prop_map(Cow::Owned),
        ]
    }

    fn value() -> impl Strategy<Value = AttrValue> {
        prop_oneof![
            any::<i64>().prop_map(AttrValue::Int),
            any::<f64>()
                .prop_filter("NaN is not equal to itself", |d| !d.is_nan())
                .prop_map(AttrValue::Double),
            any::<bool>().prop_map(AttrValue::Bool),
            ".{0,300}".prop_map(|s| AttrValue::Str(s.into_boxed_str())),
        ]
    }

    fn event() -> impl Strategy<Value = LogEvent> {
        (
            (any::<u64>(), any::<u64>(), any::<bool>(), 0usize..6),
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
                any::<u32>(),
            ),
        )
            .prop_map(
                |(
                    (time, obs, same, sev),
                    (target, module_path, file),
                    (line, trace, body),
                    (attrs, dropped),
                )| {
                    LogEvent {
                        time_unix_nano: time,
                        observed_time_unix_nano: if same { time } else { obs },
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
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn every_event_reads_back_as_it_was_written(e in event()) {
            let c = encode(&e);
            prop_assert_eq!(c.severity(), e.severity);
            prop_assert_eq!(decode(&c), e);
        }
    }

    #[test]
    fn a_typical_record_stays_inline_and_a_long_one_goes_to_the_heap() {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        };
        assert!(size_of::<Compact>() <= 120, "{}", size_of::<Compact>());
        assert!(size_of::<crate::pipeline::queue::Slot<Compact>>() <= 128);
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
            crate::capture::capture(
                &log::Record::builder()
                    .args(format_args!("Transaction processed {message}"))
                    .level(log::Level::Info)
                    .target("payment.service")
                    .module_path_static(Some("loadgen"))
                    .file_static(Some("examples/loadgen.rs"))
                    .line(Some(320))
                    .key_values(&kvs)
                    .build(),
            )
            .0
            .finish()
        };
        let c = capture("123456");
        assert!(
            matches!(c.0, Repr::Inline { .. }),
            "{} bytes",
            c.as_bytes().len()
        );
        // The referenced names (target, module, file, four keys) count in its size.
        let names = "payment.service".len()
            + "loadgen".len()
            + "examples/loadgen.rs".len()
            + "amount".len()
            + "user_id".len()
            + "currency".len()
            + "seq".len();
        assert_eq!(c.approx_size(), c.as_bytes().len() + names);
        let e = decode(&c);
        assert_eq!(e.body, "Transaction processed 123456");
        assert_eq!(e.target, "payment.service");
        assert_eq!(e.file.as_deref(), Some("examples/loadgen.rs"));
        assert_eq!(e.trace.map(|t| t.span_id), Some([2; 8]));
        assert_eq!(e.attributes.len(), 4);
        let long = "x".repeat(INLINE);
        let c = capture(&long);
        assert!(matches!(c.0, Repr::Heap(_)));
        assert_eq!(decode(&c).body, format!("Transaction processed {long}"));
    }
}
