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
//! attribute*                          tag u8 (value kind | KEY_INLINE), key, value; to the end
//!
//! T       = varint length, UTF-8 bytes
//! key     = T with KEY_INLINE, else the varint id of an interned string
//! value   = zigzag varint (int) | 8 bytes LE (double) | nothing (false, true) | T (string)
//! ```

use super::{Attributes, Key, Record, Severity, TraceContext, Value, names};

/// Payload bytes kept in the slot itself. With the fixed fields a `Queued` takes 120 bytes, so a
/// queue slot (with its 8-byte stamp) takes 128.
pub(crate) const INLINE: usize = 70;

/// A name field: the id of an interned string, or one of these two.
const NAME_NONE: u16 = u16::MAX;
const NAME_INLINE: u16 = u16::MAX - 1;
const _: () = assert!(names::MAX_STRINGS < NAME_INLINE as usize);

const HAS_TRACE: u8 = 1;
const HAS_LINE: u8 = 2;

/// Most attributes counted as left out (what the 24-bit field holds; more saturate).
const MAX_DROPPED: u32 = (1 << 24) - 1;
const T_INT: u8 = 0;
const T_DOUBLE: u8 = 1;
const T_FALSE: u8 = 2;
const T_TRUE: u8 = 3;
const T_STR: u8 = 4;
/// In a tag: the key is written out, not interned.
const KEY_INLINE: u8 = 8;

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

/// Why a queued record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("the record ends early")]
    Truncated,
    #[error("a string is not UTF-8")]
    NotUtf8,
    #[error("an interned name id {0} is not known")]
    UnknownName(u64),
    #[error("unknown attribute tag {0:#x}")]
    BadTag(u8),
    #[error("the record has no target")]
    NoTarget,
}

/// A reading position in a record's bytes.
#[derive(Clone)]
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if n > self.0.len() {
            return Err(ReadError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, ReadError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ReadError::Truncated)
    }

    fn len(&mut self) -> Result<usize, ReadError> {
        usize::try_from(self.varint()?).map_err(|_| ReadError::Truncated)
    }

    fn text(&mut self) -> Result<&'a str, ReadError> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| ReadError::NotUtf8)
    }

    fn name(&mut self, field: u16) -> Result<Option<&'a str>, ReadError> {
        match field {
            NAME_NONE => Ok(None),
            NAME_INLINE => self.text().map(Some),
            id => names::get(id)
                .map(Some)
                .ok_or(ReadError::UnknownName(id.into())),
        }
    }
}

/// Reads the attribute section of a payload, one attribute at a time.
#[derive(Clone)]
pub(crate) struct AttrReader<'a> {
    c: Cursor<'a>,
    done: bool,
}

impl<'a> AttrReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        AttrReader {
            c: Cursor(bytes),
            done: false,
        }
    }

    /// The next attribute; `None` at the end of the bytes. After an error, `None` for ever.
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

    fn read(&mut self) -> Result<Option<(Key<'a>, Value<'a>)>, ReadError> {
        let tag = match self.c.0.first() {
            None => return Ok(None),
            Some(&tag) => tag,
        };
        self.c.0 = &self.c.0[1..];
        let kind = tag & !KEY_INLINE;
        if kind > T_STR {
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
        let value = match kind {
            T_INT => Value::Int(unzigzag(self.c.varint()?)),
            T_DOUBLE => {
                let mut b = [0; 8];
                b.copy_from_slice(self.c.take(8)?);
                Value::Double(f64::from_le_bytes(b))
            }
            T_FALSE => Value::Bool(false),
            T_TRUE => Value::Bool(true),
            T_STR => Value::Str(self.c.text()?),
            _ => return Err(ReadError::BadTag(tag)),
        };
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
        let target = c.name(self.target)?.ok_or(ReadError::NoTarget)?;
        let module = c.name(self.module)?;
        let file = c.name(self.file)?;
        let body = c.text()?;
        let section = c.0;
        let mut size = 0;
        if check_attributes {
            let names = target.len() + module.map_or(0, str::len) + file.map_or(0, str::len);
            size = payload.len() + names + 96;
            let mut attrs = AttrReader::new(section);
            while let Some((key, _)) = attrs.next_attr()? {
                // The key's text when interned (the payload has the rest), and a field's overhead.
                size += key.id.map_or(0, |_| key.name.len()) + 8;
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
            observed: self.time,
            severity: self.severity,
            target,
            body,
            module,
            file,
            line: (self.flags & HAS_LINE != 0).then_some(self.line),
            trace,
            attributes: Attributes::packed(section),
            dropped_attributes: u32::from_le_bytes([d0, d1, d2, 0]),
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
            },
        }
    }

    /// About the size of the record in an export request.
    pub(crate) fn approx_size(&self) -> usize {
        self.size
    }
}

/// A signed integer as an unsigned one small in magnitude (protobuf's zigzag).
fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_text(buf: &mut Vec<u8>, s: &str) {
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Writes a queued record, in this order: [`target`](Self::target), [`module`](Self::module),
/// [`file`](Self::file), [`line`](Self::line) (any time), [`body`](Self::body), then
/// [`attr`](Self::attr) for each attribute, and [`finish`](Self::finish).
pub(crate) struct Writer<'b> {
    buf: &'b mut Vec<u8>,
    head: Queued,
}

impl<'b> Writer<'b> {
    /// A writer using `buf` (cleared) for the variable part.
    pub(crate) fn new(
        buf: &'b mut Vec<u8>,
        severity: Severity,
        time: u64,
        trace: Option<TraceContext>,
    ) -> Self {
        buf.clear();
        let mut head = Queued {
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
        if let Some(t) = trace {
            head.flags |= HAS_TRACE;
            head.trace[..16].copy_from_slice(&t.trace_id);
            head.trace[16..24].copy_from_slice(&t.span_id);
            head.trace[24] = t.flags;
        }
        Writer { buf, head }
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
    }

    /// One attribute; its key is interned if it can be.
    pub(crate) fn attr(&mut self, key: &str, value: Value<'_>) {
        let kind = match value {
            Value::Int(_) => T_INT,
            Value::Double(_) => T_DOUBLE,
            Value::Bool(false) => T_FALSE,
            Value::Bool(true) => T_TRUE,
            Value::Str(_) => T_STR,
        };
        match names::id(key) {
            Some(id) => {
                self.buf.push(kind);
                put_varint(self.buf, u64::from(id));
            }
            None => {
                self.buf.push(kind | KEY_INLINE);
                put_text(self.buf, key);
            }
        }
        match value {
            Value::Int(i) => put_varint(self.buf, zigzag(i)),
            Value::Double(d) => self.buf.extend_from_slice(&d.to_le_bytes()),
            Value::Bool(_) => {}
            Value::Str(s) => put_text(self.buf, s),
        }
    }

    /// The record, with `dropped_attributes` attributes counted as left out.
    pub(crate) fn finish(mut self, dropped_attributes: u32) -> Queued {
        let [d0, d1, d2, _] = dropped_attributes.min(MAX_DROPPED).to_le_bytes();
        self.head.dropped = [d0, d1, d2];
        self.head.payload = Payload::new(self.buf);
        self.head
    }
}

#[cfg(test)]
mod tests;
