//! [`Queued`]: the form a record takes in a queue slot, and its reader.
//!
//! The fixed fields are typed (time, severity, line, span context, the ids of interned names); the
//! variable part (names that are not interned, the message, the key-values) is a short byte string,
//! kept inline when it fits in [`INLINE`] bytes (loadgen's record takes 53) and boxed otherwise.
//! A queued record holds no pointer and no length that is trusted: [`Queued::record`] parses the
//! bytes with bounds and UTF-8 checks, resolves name ids through the intern table (an unknown id is
//! an error), and returns a [`ReadError`] for anything it cannot read. So a mismatch between writer
//! and reader is a counted drop, never undefined behaviour.
//!
//! Payload layout:
//!
//! ```text
//! [target T] [module T] [file T]      only those whose field says NAME_INLINE, in this order
//! body T
//! [observed varint]                   only with HAS_OBSERVED: zigzag(observed - time)
//! [kind u8, value]                    only with HAS_BODY_VALUE: a body that is not a string
//! [event_name T]                      only with HAS_EVENT_NAME
//! attribute*                          tag u8 (value kind | KEY_INLINE), key, value; to the end
//!
//! T       = varint length, UTF-8 bytes
//! key     = T with KEY_INLINE, else the varint id of an interned string
//! value   = as `packed` writes it (scalars, bytes, arrays and maps)
//! ```

pub(crate) use super::packed::ReadError;
use super::packed::{
    Cursor, Gather, KEY_INLINE, T_MAP, gather_value, kind, put_text, put_value, put_varint,
    unzigzag, varint_bits, zigzag,
};
use super::{Attributes, Key, Record, Severity, Shape, TraceContext, Value, names};

/// Payload bytes kept in the slot itself. With the fixed fields a `Queued` takes 120 bytes, so a
/// queue slot (with its 8-byte stamp) takes 128.
pub(crate) const INLINE: usize = 70;

/// A name field: the id of an interned string, or one of these two.
const NAME_NONE: u16 = u16::MAX;
const NAME_INLINE: u16 = u16::MAX - 1;
const _: () = assert!(names::MAX_STRINGS < NAME_INLINE as usize);

const HAS_TRACE: u8 = 1;
const HAS_LINE: u8 = 2;
const HAS_EVENT_NAME: u8 = 4;
const HAS_OBSERVED: u8 = 8;
const HAS_BODY_VALUE: u8 = 16;

/// Most attributes counted as left out (what the 24-bit field holds; more saturate).
const MAX_DROPPED: u32 = (1 << 24) - 1;

/// A record as it sits in a queue slot. Made by [`Writer::finish`]; read by [`Queued::record`].
#[derive(Clone)]
pub(crate) struct Queued {
    time: u64,
    /// Valid with [`HAS_LINE`].
    line: u32,
    target: u16,
    module: u16,
    file: u16,
    severity: Severity,
    flags: u8,
    /// trace id, span id, trace flags; valid with [`HAS_TRACE`].
    trace: [u8; 25],
    /// Attributes left out, 24 bits little-endian (saturating).
    dropped: [u8; 3],
    payload: Payload,
}

#[derive(Clone)]
enum Payload {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Payload {
    #[inline]
    fn new(b: &[u8]) -> Self {
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..b.len()].copy_from_slice(b);
                Payload::Inline { len, bytes }
            }
            _ => Payload::Heap(b.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            Payload::Heap(b) => b,
        }
    }
}

/// How many array items and map entries `v` holds, at every level.
fn elements(v: Value<'_>) -> usize {
    match v {
        Value::Nested(n) => match n.shape() {
            Shape::Array(a) => a.iter().map(|e| 1 + elements(e)).sum(),
            Shape::Map(m) => m.iter().map(|(_, e)| 1 + elements(e)).sum(),
        },
        _ => 0,
    }
}

/// A name field's string: none, read from the payload when inline, or interned.
fn read_name<'a>(c: &mut Cursor<'a>, field: u16) -> Result<Option<&'a str>, ReadError> {
    match field {
        NAME_NONE => Ok(None),
        NAME_INLINE => c.text().map(Some),
        id => names::get(id)
            .map(Some)
            .ok_or(ReadError::UnknownName(id.into())),
    }
}

/// Reads the attribute section of a payload, one attribute at a time.
#[derive(Clone)]
pub(crate) struct AttrReader<'a> {
    c: Cursor<'a>,
    done: bool,
    /// Check arrays and maps whole (else step over them by their length).
    check: bool,
}

impl<'a> AttrReader<'a> {
    /// A reader of attribute bytes that were checked (by [`checking`](Self::checking)).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        AttrReader {
            c: Cursor(bytes),
            done: false,
            check: false,
        }
    }

    /// A reader that checks every byte of every value, nested ones included.
    fn checking(bytes: &'a [u8]) -> Self {
        AttrReader {
            check: true,
            ..AttrReader::new(bytes)
        }
    }

    /// The next attribute; `None` at the end of the bytes. After an error, `None` for ever.
    #[inline]
    pub(crate) fn next_attr(&mut self) -> Result<Option<(Key<'a>, Value<'a>)>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let read = self.read();
        if !matches!(read, Ok(Some(_))) {
            self.done = true;
        }
        read
    }

    #[inline]
    fn read(&mut self) -> Result<Option<(Key<'a>, Value<'a>)>, ReadError> {
        let tag = match self.c.0.first() {
            None => return Ok(None),
            Some(&tag) => tag,
        };
        self.c.0 = &self.c.0[1..];
        let kind = tag & !KEY_INLINE;
        if kind > T_MAP {
            return Err(ReadError::BadTag(tag));
        }
        let key = if tag & KEY_INLINE != 0 {
            Key::plain(self.c.text()?)
        } else {
            let id = self.c.varint()?;
            let known = u16::try_from(id)
                .ok()
                .and_then(|i| Some((i, names::get(i)?)));
            let (id, name) = known.ok_or(ReadError::UnknownName(id))?;
            Key { name, id: Some(id) }
        };
        let value = self.c.value(kind, 0, self.check)?;
        Ok(Some((key, value)))
    }
}

impl Queued {
    /// Reads the record: every byte of the variable part is checked, the whole of it (attributes
    /// included) before anything is returned (tests and fuzzing; the worker keeps [`Checked`]
    /// records).
    #[cfg(any(test, feature = "bench-internals"))]
    pub(crate) fn record(&self) -> Result<Record<'_>, ReadError> {
        self.read(true).map(|(r, _)| r)
    }

    /// Reads the record whole (as [`record`](Self::record)), for the worker to keep: the record
    /// with its approximate encoded size, or why it cannot be read.
    pub(crate) fn check(self) -> Result<Checked, ReadError> {
        let size = self.read(true)?.1;
        Ok(Checked { queued: self, size })
    }

    /// Reads the fixed fields, names and body; with `check_attributes`, also every attribute,
    /// adding up the record's approximate encoded size (else the size is 0).
    fn read(&self, check_attributes: bool) -> Result<(Record<'_>, usize), ReadError> {
        let payload = self.payload.as_bytes();
        let mut c = Cursor(payload);
        let target = read_name(&mut c, self.target)?.ok_or(ReadError::NoTarget)?;
        let module = read_name(&mut c, self.module)?;
        let file = read_name(&mut c, self.file)?;
        let body = c.text()?;
        let observed = if self.flags & HAS_OBSERVED != 0 {
            self.time.wrapping_add_signed(unzigzag(c.varint()?))
        } else {
            self.time
        };
        let body_value = if self.flags & HAS_BODY_VALUE != 0 {
            let kind = c.byte()?;
            if kind > T_MAP {
                return Err(ReadError::BadTag(kind));
            }
            Some(c.value(kind, 0, check_attributes)?)
        } else {
            None
        };
        let event_name = if self.flags & HAS_EVENT_NAME != 0 {
            Some(c.text()?)
        } else {
            None
        };
        let section = c.0;
        let mut size = 0;
        if check_attributes {
            let names = target.len() + module.map_or(0, str::len) + file.map_or(0, str::len);
            size = payload.len() + names + 96 + event_name.map_or(0, |_| 2);
            if let Some(v) = body_value {
                size += 8 * elements(v);
            }
            let mut attrs = AttrReader::checking(section);
            while let Some((key, value)) = attrs.next_attr()? {
                // The key's text when interned (the payload has the rest), and a field's overhead;
                // as much again for each element of a structure.
                size += key.id.map_or(0, |_| key.name.len()) + 8;
                if matches!(value, Value::Nested(_)) {
                    size += 8 * elements(value);
                }
            }
        }
        let trace = (self.flags & HAS_TRACE != 0).then(|| {
            let mut t = TraceContext {
                trace_id: [0; 16],
                span_id: [0; 8],
                flags: self.trace[24],
            };
            t.trace_id.copy_from_slice(&self.trace[..16]);
            t.span_id.copy_from_slice(&self.trace[16..24]);
            t
        });
        let [d0, d1, d2] = self.dropped;
        let record = Record {
            time: self.time,
            observed,
            severity: self.severity,
            target,
            body,
            body_value,
            module,
            file,
            line: (self.flags & HAS_LINE != 0).then_some(self.line),
            trace,
            attributes: Attributes::packed(section),
            dropped_attributes: u32::from_le_bytes([d0, d1, d2, 0]),
            event_name,
        };
        Ok((record, size))
    }

    /// The severity, without reading the rest (tests).
    #[cfg(test)]
    pub(crate) fn severity(&self) -> Severity {
        self.severity
    }

    /// Whether the variable part is held in the slot itself (tests).
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.payload, Payload::Inline { .. })
    }

    /// A queued record made of arbitrary bytes, as a reader may meet it if a writer and the
    /// reader ever disagree: the first 45 bytes give the fixed fields (name fields as they are, so
    /// special, interned, unknown), the rest the variable part (property tests and the fuzz target).
    #[cfg(any(test, feature = "bench-internals"))]
    pub(crate) fn from_arbitrary_bytes(data: &[u8]) -> Queued {
        let mut fixed = [0u8; 45];
        let n = data.len().min(45);
        fixed[..n].copy_from_slice(&data[..n]);
        let u16_at = |i: usize| u16::from_le_bytes([fixed[i], fixed[i + 1]]);
        let mut time = [0u8; 8];
        time.copy_from_slice(&fixed[..8]);
        let mut trace = [0u8; 25];
        trace.copy_from_slice(&fixed[20..45]);
        Queued {
            time: u64::from_le_bytes(time),
            line: u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            target: u16_at(12),
            module: u16_at(14),
            file: u16_at(16),
            severity: Severity::from_number(i64::from(fixed[18] % 25)).unwrap_or(Severity::Info),
            flags: fixed[19],
            trace,
            dropped: [fixed[8], fixed[9], fixed[10]],
            payload: Payload::new(data.get(45..).unwrap_or(&[])),
        }
    }

    /// A record no reader can read: its target names an id never handed out (tests).
    #[cfg(test)]
    pub(crate) fn unreadable() -> Queued {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, Severity::Info, 0, None);
        w.target(Some(NAME_INLINE - 1), "");
        w.body("unreadable");
        w.finish(0)
    }

    /// The queued form of a record made by the bridge itself (audit and panic records) or by
    /// tests. Its observed time is its time.
    pub(crate) fn of(r: &Record<'_>) -> Queued {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, r.severity, r.time, r.trace);
        w.target(names::id(r.target), r.target);
        w.module(r.module.map(|m| (names::id(m), m)));
        w.file(r.file.map(|f| (names::id(f), f)));
        if let Some(l) = r.line {
            w.line(l);
        }
        w.body(r.body);
        w.observed(r.observed);
        if let Some(v) = r.body_value {
            w.body_value(v);
        }
        if let Some(name) = r.event_name {
            w.event_name(name);
        }
        for (k, v) in r.attributes.iter() {
            w.attr(k.name, v);
        }
        w.finish(r.dropped_attributes)
    }
}

/// A queued record read whole once ([`Queued::check`]): what the worker keeps in its batches.
#[derive(Clone)]
pub(crate) struct Checked {
    queued: Queued,
    size: usize,
}

impl Checked {
    /// The record. Its bytes were all read once, so this reads its names and body again but not
    /// its attributes (they are read as they are iterated).
    pub(crate) fn record(&self) -> Record<'_> {
        match self.queued.read(false) {
            Ok((r, _)) => r,
            // Unreachable: the same bytes were read before, and they never change. Kept safe and
            // total: a record with nothing in it.
            Err(_) => Record {
                time: self.queued.time,
                observed: self.queued.time,
                severity: self.queued.severity,
                target: "",
                body: "",
                module: None,
                file: None,
                line: None,
                trace: None,
                attributes: Attributes::packed(&[]),
                dropped_attributes: 0,
                event_name: None,
                body_value: None,
            },
        }
    }

    /// About the size of the record in an export request.
    pub(crate) fn approx_size(&self) -> usize {
        self.size
    }
}

/// Writes a queued record, in this order: [`target`](Self::target), [`module`](Self::module),
/// [`file`](Self::file), [`line`](Self::line) (any time), [`body`](Self::body) (or
/// [`body_with`](Self::body_with), or [`body_pending`](Self::body_pending) then
/// [`body_later`](Self::body_later) once the attributes are written), then
/// [`attr`](Self::attr) for each attribute and [`event_name`](Self::event_name) (once, any time
/// after the body), and [`finish`](Self::finish).
pub(crate) struct Writer<'b> {
    buf: &'b mut Vec<u8>,
    head: Queued,
    /// Where the attributes begin (the end of the body).
    attrs_start: usize,
}

impl<'b> Writer<'b> {
    /// A writer using `buf` (cleared) for the variable part.
    #[inline(always)]
    pub(crate) fn new(
        buf: &'b mut Vec<u8>,
        severity: Severity,
        time: u64,
        trace: Option<TraceContext>,
    ) -> Self {
        buf.clear();
        let head = Queued {
            time,
            line: 0,
            target: NAME_NONE,
            module: NAME_NONE,
            file: NAME_NONE,
            severity,
            flags: 0,
            trace: [0; 25],
            dropped: [0; 3],
            payload: Payload::Inline {
                len: 0,
                bytes: [0; INLINE],
            },
        };
        let mut w = Writer {
            buf,
            head,
            attrs_start: 0,
        };
        if let Some(t) = trace {
            w.trace(t);
        }
        w
    }

    /// Sets the record's span context.
    #[inline]
    pub(crate) fn trace(&mut self, t: TraceContext) {
        let head = &mut self.head;
        head.flags |= HAS_TRACE;
        head.trace[..16].copy_from_slice(&t.trace_id);
        head.trace[16..24].copy_from_slice(&t.span_id);
        head.trace[24] = t.flags;
    }

    /// Sets the record's span context from OpenTelemetry's ids.
    #[inline(always)]
    pub(crate) fn trace_ids(
        &mut self,
        trace_id: opentelemetry::trace::TraceId,
        span_id: opentelemetry::trace::SpanId,
        flags: u8,
    ) {
        let head = &mut self.head;
        head.flags |= HAS_TRACE;
        head.trace[..16].copy_from_slice(&trace_id.to_bytes());
        head.trace[16..24].copy_from_slice(&span_id.to_bytes());
        head.trace[24] = flags;
    }

    fn name(&mut self, id: Option<u16>, s: &str) -> u16 {
        match id {
            Some(id) if id < NAME_INLINE => id,
            _ => {
                put_text(self.buf, s);
                NAME_INLINE
            }
        }
    }

    /// The target, by its interned id if it has one.
    pub(crate) fn target(&mut self, id: Option<u16>, s: &str) {
        self.head.target = self.name(id, s);
    }

    /// The module path, by its interned id if it has one.
    pub(crate) fn module(&mut self, module: Option<(Option<u16>, &str)>) {
        if let Some((id, s)) = module {
            self.head.module = self.name(id, s);
        }
    }

    /// The source file, by its interned id if it has one.
    pub(crate) fn file(&mut self, file: Option<(Option<u16>, &str)>) {
        if let Some((id, s)) = file {
            self.head.file = self.name(id, s);
        }
    }

    pub(crate) fn line(&mut self, line: u32) {
        self.head.flags |= HAS_LINE;
        self.head.line = line;
    }

    /// The message.
    pub(crate) fn body(&mut self, s: &str) {
        put_text(self.buf, s);
        self.attrs_start = self.buf.len();
    }

    /// The message, written in place by `write`, which appends its text (UTF-8, as the reader
    /// checks) to the buffer it is given: no copy of the text is made. Its length goes in front of
    /// it afterwards (in one byte for a text under 128 bytes; a longer one is moved by the extra
    /// bytes). A `write` that removes bytes it did not append breaks its contract: the record is
    /// then wrong (a read error, or fields read as zeros), never unsound.
    pub(crate) fn body_with<R>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let at = self.buf.len();
        self.buf.push(0);
        let r = write(self.buf);
        if self.buf.len() <= at {
            // `write` took back more than it wrote: an empty text (safe, if not what was meant).
            self.buf.resize(at + 1, 0);
        }
        let len = self.buf.len() - (at + 1);
        if let Ok(b @ 0..=0x7F) = u8::try_from(len) {
            self.buf[at] = b;
        } else {
            let (bits, n) = varint_bits(len as u64);
            let prefix = bits.to_le_bytes().into_iter().take(n as usize);
            self.buf.splice(at..at + 1, prefix);
        }
        self.attrs_start = self.buf.len();
        r
    }

    /// Starts the attributes before the message is known (a `tracing` event's message is one of
    /// its fields): the body goes where this was called, given by [`body_later`](Self::body_later).
    /// Returns the position to give it.
    #[cfg(feature = "tracing")]
    pub(crate) fn body_pending(&mut self) -> usize {
        self.attrs_start = self.buf.len();
        self.attrs_start
    }

    /// The message of a record whose attributes began with [`body_pending`](Self::body_pending),
    /// which returned `at`: it goes in front of the attributes and of an event name written since
    /// (a record taking this path does not use [`observed`](Self::observed)).
    #[cfg(feature = "tracing")]
    pub(crate) fn body_later(&mut self, at: usize, s: &str) {
        let at = at.min(self.buf.len());
        let end = self.buf.len();
        put_text(self.buf, s);
        let n = self.buf.len() - end;
        // The text written last moves in front of the attributes (no allocation).
        self.buf[at..].rotate_right(n);
        self.attrs_start += n;
    }

    /// Replaces the message written at `body` (a range [`body_with`](Self::body_with) wrote, with
    /// only attributes and an event name written after it) by `s`.
    #[cfg(feature = "tracing")]
    pub(crate) fn replace_body(&mut self, body: std::ops::Range<usize>, s: &str) {
        let mut text = Vec::with_capacity(s.len() + 10);
        put_text(&mut text, s);
        let end = body.end.min(self.buf.len());
        let start = body.start.min(end);
        let (old, new) = (end - start, text.len());
        self.buf.splice(start..end, text);
        self.attrs_start = (self.attrs_start + new).saturating_sub(old);
    }

    /// When the record was observed, if not at its time; right after [`body`](Self::body).
    pub(crate) fn observed(&mut self, observed: u64) {
        if observed == self.head.time {
            return;
        }
        self.head.flags |= HAS_OBSERVED;
        put_varint(
            self.buf,
            zigzag(observed.wrapping_sub(self.head.time) as i64),
        );
        self.attrs_start = self.buf.len();
    }

    /// A body that is not a string (the [`body`](Self::body) written is then empty); right after
    /// the body and [`observed`](Self::observed).
    pub(crate) fn body_value(&mut self, v: Value<'_>) {
        self.head.flags |= HAS_BODY_VALUE;
        self.buf.push(kind(&v));
        put_value(self.buf, v);
        self.attrs_start = self.buf.len();
    }

    /// The event name, placed before the attributes (the record's first one is kept; a record
    /// rarely has one, so moving the attributes written so far costs the others nothing).
    pub(crate) fn event_name(&mut self, s: &str) {
        if self.head.flags & HAS_EVENT_NAME != 0 {
            return;
        }
        self.head.flags |= HAS_EVENT_NAME;
        let mut text = Vec::with_capacity(s.len() + 10);
        put_text(&mut text, s);
        let at = self.attrs_start.min(self.buf.len());
        self.attrs_start = at + text.len();
        self.buf.splice(at..at, text);
    }

    /// One attribute; its key is interned if it can be.
    pub(crate) fn attr(&mut self, key: &str, value: Value<'_>) {
        self.attr_id(key, names::id(key), value);
    }

    /// One attribute whose key was looked up already: by its interned `id`, or written out.
    #[inline(always)]
    pub(crate) fn attr_id(&mut self, key: &str, id: Option<u16>, value: Value<'_>) {
        // Tag, id and a scalar value in one append.
        let g = self.gather_key(kind(&value), key, id);
        gather_value(g, value);
    }

    /// An attribute's tag (`tag`, with [`KEY_INLINE`] for a key written out) and key, the key's
    /// id still gathered: the value goes after it.
    #[inline(always)]
    fn gather_key(&mut self, tag: u8, key: &str, id: Option<u16>) -> Gather<'_> {
        match id {
            Some(id) => Gather::new(self.buf).byte(tag).varint(u64::from(id)),
            None => {
                self.buf.push(tag | KEY_INLINE);
                put_text(self.buf, key);
                Gather::new(self.buf)
            }
        }
    }

    /// Starts an attribute whose value the caller writes next with [`buf`](Self::buf): writes
    /// its key after a tag byte at the returned position, whose kind bits (0 here) the caller
    /// sets. If the value cannot be written, [`rollback`](Self::rollback) to the position.
    pub(crate) fn begin_attr(&mut self, key: &str) -> usize {
        self.begin_attr_id(key, names::id(key))
    }

    fn begin_attr_id(&mut self, key: &str, id: Option<u16>) -> usize {
        let at = self.buf.len();
        self.gather_key(0, key, id).done();
        at
    }

    /// The variable part written so far, for an attribute's value (see
    /// [`begin_attr`](Self::begin_attr)).
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    /// Forgets what was written from `at` on (an attribute begun there).
    pub(crate) fn rollback(&mut self, at: usize) {
        if at >= self.attrs_start {
            self.buf.truncate(at);
        }
    }

    /// The record, with `dropped_attributes` attributes counted as left out.
    #[inline(always)]
    pub(crate) fn finish(mut self, dropped_attributes: u32) -> Queued {
        let [d0, d1, d2, _] = dropped_attributes.min(MAX_DROPPED).to_le_bytes();
        self.head.dropped = [d0, d1, d2];
        // Into the empty inline payload `new` made, in place: no array built apart and copied.
        match (&mut self.head.payload, u8::try_from(self.buf.len())) {
            (Payload::Inline { len, bytes }, Ok(n)) if usize::from(n) <= INLINE => {
                bytes[..usize::from(n)].copy_from_slice(self.buf);
                *len = n;
            }
            (payload, _) => *payload = Payload::new(self.buf),
        }
        self.head
    }
}

#[cfg(test)]
mod tests;
