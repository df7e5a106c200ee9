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

mod writer;
pub(crate) use writer::Writer;

#[cfg(test)]
mod tests;
