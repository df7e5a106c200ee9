//! [`Writer`]: how a record is put into its queued form, on the calling thread (see the parent
//! module for the layout it writes).

use super::*;

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
    #[inline(always)]
    pub(crate) fn trace(&mut self, t: TraceContext) {
        let head = &mut self.head;
        head.trace[..16].copy_from_slice(&t.trace_id);
        head.trace[16..24].copy_from_slice(&t.span_id);
        head.trace[24] = t.flags;
        head.flags |= HAS_TRACE;
    }

    /// Sets the record's span context from OpenTelemetry's ids.
    #[inline(always)]
    pub(crate) fn trace_ids(
        &mut self,
        trace_id: opentelemetry::trace::TraceId,
        span_id: opentelemetry::trace::SpanId,
        flags: u8,
    ) {
        self.trace(TraceContext {
            trace_id: trace_id.to_bytes(),
            span_id: span_id.to_bytes(),
            flags,
        });
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
