//! The queued form of a record: what the calling thread writes into a queue slot ([`Queued`]), and
//! the worker reads in place ([`View`] over a [`Compact`]) or, for the spool, back into a
//! [`LogEvent`].
//!
//! A record is a short byte string, kept inline in the queue slot when it fits in
//! [`QUEUED_INLINE`] bytes (a typical record with a formatted message and a few key-values, whose
//! thread logged before in the same span, takes about 56: loadgen's does; with the span context in
//! full, about 80), and allocated whole on the heap (by the calling thread) otherwise. So the
//! calling thread allocates nothing for a typical record, and a queued record costs one 64-byte
//! slot instead of an event plus its strings.
//!
//! Layout (private to this process, never stored):
//!
//! ```text
//! severity u8 | flags u8 | referenced u16 | time (u64, or varint: see below) | [observed u64]
//! | [thread varint] | [trace_id 16, span_id 8, trace_flags u8] | target S | [module S] | [file S]
//! | [line varint] | body B | attribute* | 0xFF | [dropped_attributes varint]
//! ```
//!
//! `referenced` is the length of the strings the record refers to rather than holds (interned and
//! `'static` ones), in 64-byte units rounded up, so the worker knows a record's size without
//! reading it.
//!
//! A span context is usually the same for many records of a thread in a row, and their times are
//! close, so a queued record need not repeat either: a record with [`FLAG_THREAD`] names its
//! thread's number, and the worker remembers, for each number, the span context and time of the
//! last such record. The record either carries its span context, or has [`FLAG_TRACE_SAME`] (the
//! context is the one the thread's previous such record had), or has none; and its time is either
//! whole, or ([`SEV_TIME_DELTA`] in the first byte) a varint of nanoseconds after the thread's
//! previous such record. Records of one thread reach the worker in the order they were pushed,
//! and the thread remembers what it sent only once its record is in the queue (a refused record
//! leaves it remembering the one before, which the worker still has), so the worker always knows
//! what is meant ([`Queued::resolve`], when a record is taken from the queue, puts it back in
//! full).
//! A string `S` is an interned id below 0x80 in one byte, or 0x80 and the id as a varint, or 0x81,
//! a varint length and the bytes, or 0x82, the address and a varint length of a `&'static str`.
//! The body `B` is a varint of its length times two and the bytes, or a varint of its length times
//! two plus one and the address of a `&'static str`.
//!
//! An attribute is one byte `tag << 5 | id` when its key is one of the first 32 interned strings
//! (then the key takes no byte of its own), else `0xC0 | tag` and the key `S`; then the value. Tags: 0 and a zigzag varint (int), 1 and 8 bytes (double), 2 (false), 3 (true), 4, a
//! varint length and the bytes (string), or 5 and a zigzag varint (a double that is exactly that
//! integer). The dropped-attributes count follows the end mark only when [`FLAG_DROPPED`] is set.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use crate::event::{Attr, AttrValue, LogEvent, Severity, TraceContext};
use crate::intern;

/// Bytes of a queued record kept in the queue slot itself (a slot is 64 bytes).
pub(crate) const QUEUED_INLINE: usize = 59;
/// Bytes of a record the worker holds kept inline: a queued one with its span context put back.
pub(crate) const INLINE: usize = 118;
// A queued record put back in full: a delta of one byte becomes 8, a span context is put back.
const _: () = assert!(QUEUED_INLINE + 7 + TRACE_LEN <= INLINE);
/// Bytes of a span context in a record.
const TRACE_LEN: usize = 25;
/// Unit of the `referenced` field.
const REFERENCED_UNIT: u64 = 64;

const FLAG_TRACE: u8 = 1;
const FLAG_OBSERVED: u8 = 2;
const FLAG_MODULE: u8 = 4;
const FLAG_FILE: u8 = 8;
const FLAG_LINE: u8 = 16;
/// Some attributes were left out: the count at the end is not zero.
const FLAG_DROPPED: u8 = 32;
/// The record names its thread (queued records only).
const FLAG_THREAD: u8 = 64;
/// The span context is the thread's previous one (queued records only).
const FLAG_TRACE_SAME: u8 = 128;
/// In the severity byte: the time is a varint of nanoseconds after the thread's previous record
/// (queued records only).
const SEV_TIME_DELTA: u8 = 0x80;

const S_ID: u8 = 0x80;
const S_INLINE: u8 = 0x81;
const S_STATIC: u8 = 0x82;
const END: u8 = 0xFF;

const V_INT: u8 = 0;
const V_DOUBLE: u8 = 1;
const V_FALSE: u8 = 2;
const V_TRUE: u8 = 3;
const V_STR: u8 = 4;
const V_DOUBLE_INT: u8 = 5;
/// Interned keys with an id below this share a byte with their value's tag.
const KEY_IN_TAG: u16 = 32;
/// An attribute whose key is written in full (with the tag in the low bits of this byte).
const A_LONG: u8 = 0xC0;

/// A record as the worker holds it, read by [`View`]. Only this module makes one (from a
/// [`Writer`] or a [`Queued`]): the `S_STATIC` form, read back as a `&'static str`, relies on that.
#[derive(Clone)]
pub(crate) struct Compact(Repr);

/// A record as it sits in a queue slot: a [`Compact`] that may be relative to its thread's previous
/// record. [`Queued::resolve`] makes the `Compact`. Aligned to a byte, so that with the slot's
/// 4-byte sequence number it fills 64 bytes exactly.
pub(crate) struct Queued {
    /// How many of `bytes` are written (the rest are not: a record is copied into its slot byte by
    /// length, not whole), or [`ON_HEAP`]: `bytes` then start with the address and length of the
    /// record, a `Box<[u8]>` this value owns.
    len: u8,
    bytes: [MaybeUninit<u8>; QUEUED_INLINE],
}

/// [`Queued::len`] of a record on the heap.
const ON_HEAP: u8 = u8::MAX;
const WORD: usize = size_of::<usize>();
const _: () = assert!(2 * WORD <= QUEUED_INLINE && QUEUED_INLINE < ON_HEAP as usize);

/// A [`Compact`]'s bytes: inline when they fit in [`INLINE`], else on the heap.
#[derive(Clone)]
enum Repr {
    /// The first `len` bytes are written; the rest are not.
    Inline {
        len: u8,
        bytes: [MaybeUninit<u8>; INLINE],
    },
    Heap(Box<[u8]>),
}

impl Repr {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Repr::Inline { len, bytes } => {
                let len = usize::from(*len).min(INLINE);
                // SAFETY: the first `len` bytes of an inline record are written (`Repr::of`).
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<u8>(), len) }
            }
            Repr::Heap(b) => b,
        }
    }

    /// `parts`, one after the other: inline if they fit, else on the heap.
    #[inline]
    fn of(parts: &[&[u8]]) -> Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > INLINE {
            return Repr::Heap(parts.concat().into_boxed_slice());
        }
        let mut bytes = [MaybeUninit::uninit(); INLINE];
        let mut at = 0;
        for p in parts {
            // SAFETY: the parts total `len <= INLINE` bytes, and do not overlap `bytes`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    p.as_ptr(),
                    bytes.as_mut_ptr().cast::<u8>().add(at),
                    p.len(),
                );
            }
            at += p.len();
        }
        Repr::Inline {
            len: len as u8,
            bytes,
        }
    }
}

/// What the worker knows of each numbered thread: the span context (in its record form) and time
/// of the thread's last record that named its number.
#[derive(Default)]
pub(crate) struct Threads(Vec<ThreadState>);

#[derive(Clone, Copy, Default)]
struct ThreadState {
    trace: Option<[u8; TRACE_LEN]>,
    time: u64,
}

impl Queued {
    /// Whether the record refers to its thread's span context rather than carrying it (tests).
    #[cfg(test)]
    pub(crate) fn refers_to_thread_trace(&self) -> bool {
        self.as_bytes()
            .get(1)
            .is_some_and(|f| f & FLAG_TRACE_SAME != 0)
    }

    /// Whether the record is held in the slot itself (tests).
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        self.len != ON_HEAP
    }

    /// The address and length of a record on the heap.
    fn heap_parts(&self) -> Option<(*mut u8, usize)> {
        (self.len == ON_HEAP).then(|| {
            let at = self.bytes.as_ptr().cast::<u8>();
            // SAFETY: a heap record's first two words hold its address and length
            // (`Writer::finish_into`).
            unsafe {
                (
                    at.cast::<*mut u8>().read_unaligned(),
                    at.add(WORD).cast::<usize>().read_unaligned(),
                )
            }
        })
    }

    fn as_bytes(&self) -> &[u8] {
        match self.heap_parts() {
            // SAFETY: the record's own boxed bytes, alive while `self` is.
            Some((ptr, len)) => unsafe { std::slice::from_raw_parts(ptr, len) },
            // SAFETY: the first `len` bytes of an inline record are written.
            None => unsafe {
                std::slice::from_raw_parts(
                    self.bytes.as_ptr().cast::<u8>(),
                    usize::from(self.len).min(QUEUED_INLINE),
                )
            },
        }
    }

    /// Takes a record on the heap out of `self`, which is left empty.
    fn take_heap(&mut self) -> Option<Box<[u8]>> {
        let (ptr, len) = self.heap_parts()?;
        self.len = 0;
        // SAFETY: made by `Box::into_raw` of a `Box<[u8]>` of `len` bytes that only `self` owned;
        // `self` no longer refers to it.
        Some(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) })
    }

    /// The record in full: a span context it refers to and a time relative to its thread's
    /// previous record are put back from `threads`, which learns what the record says of its
    /// thread. Every record taken from the queue goes through this, in queue order.
    pub(crate) fn resolve(mut self, threads: &mut Threads) -> Compact {
        let flags = self.as_bytes().get(1).copied().unwrap_or(0);
        if flags & FLAG_THREAD == 0 {
            // The same layout as a `Compact` (only numbered records are relative).
            if let Some(h) = self.take_heap() {
                return Compact(Repr::Heap(h));
            }
            return Compact(Repr::of(&[self.as_bytes()]));
        }
        Self::resolve_numbered(self.as_bytes(), flags, threads)
            .unwrap_or_else(|| Compact(Repr::Heap(Box::default())))
    }

    fn resolve_numbered(b: &[u8], flags: u8, threads: &mut Threads) -> Option<Compact> {
        let severity = *b.first()?;
        let mut r = Reader(b.get(4..)?);
        let delta = severity & SEV_TIME_DELTA != 0;
        let time = if delta { r.varint()? } else { r.u64()? };
        let observed = if flags & FLAG_OBSERVED != 0 {
            r.take(8)?
        } else {
            &[]
        };
        let thread = usize::try_from(r.varint()?).ok()?;
        let rest = r.0;
        if threads.0.len() <= thread {
            threads.0.resize(thread + 1, ThreadState::default());
        }
        let known = &mut threads.0[thread];
        known.time = if delta {
            known.time.wrapping_add(time)
        } else {
            time
        };
        // The record without its thread number; a context it refers to goes where it would be.
        let mut flags = flags & !(FLAG_THREAD | FLAG_TRACE_SAME);
        let mut inserted = None;
        if flags & FLAG_TRACE != 0 {
            known.trace = rest.get(..TRACE_LEN).and_then(|t| t.try_into().ok());
        } else if b[1] & FLAG_TRACE_SAME != 0 {
            inserted = known.trace;
            if inserted.is_some() {
                flags |= FLAG_TRACE;
            }
        } else {
            known.trace = None;
        }
        let head = [severity & !SEV_TIME_DELTA, flags, b[2], b[3]];
        let time = known.time.to_le_bytes();
        Some(Compact(Repr::of(&[
            &head,
            &time,
            observed,
            inserted.as_ref().map_or(&[], |t| t),
            rest,
        ])))
    }
}

/// A signed integer as an unsigned one small in magnitude (protobuf's zigzag).
fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

fn trace_from(b: &[u8; TRACE_LEN]) -> TraceContext {
    let mut t = TraceContext {
        trace_id: [0; 16],
        span_id: [0; 8],
        flags: b[24],
    };
    t.trace_id.copy_from_slice(&b[..16]);
    t.span_id.copy_from_slice(&b[16..24]);
    t
}

impl Drop for Queued {
    fn drop(&mut self) {
        drop(self.take_heap());
    }
}

impl Compact {
    /// About the size of the record's content: its bytes plus the strings it refers to.
    pub(crate) fn approx_size(&self) -> usize {
        let b = self.as_bytes();
        let referenced = b.get(2..4).map_or(0, |r| u16::from_le_bytes([r[0], r[1]]));
        b.len() + usize::from(referenced) * REFERENCED_UNIT as usize
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
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
}

/// Writes a record: into the inline buffer while it fits, then into a heap buffer.
pub(crate) struct Writer {
    len: usize,
    /// Bytes of the strings referred to by id or address.
    referenced: u64,
    /// Whether attributes were left out ([`FLAG_DROPPED`]).
    dropped: bool,
    /// The id of a key written with the next value's tag, plus one (0: none).
    key_in_tag: u8,
    /// Where the first byte of a key written in full is (`usize::MAX`: none).
    long_key_at: usize,
    inline: [u8; QUEUED_INLINE],
    heap: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            len: 0,
            referenced: 0,
            dropped: false,
            key_in_tag: 0,
            long_key_at: usize::MAX,
            inline: [0; QUEUED_INLINE],
            heap: Vec::new(),
        }
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
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
    fn byte(&mut self, b: u8) {
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
    fn text(&mut self, s: &str) {
        self.byte(S_INLINE);
        self.varint(s.len() as u64);
        self.put(s.as_bytes());
    }

    /// A string that lives as long as the process: only its address is written.
    #[inline]
    fn static_text(&mut self, s: &'static str) {
        self.referenced += s.len() as u64;
        self.byte(S_STATIC);
        self.put(&(s.as_ptr() as usize as u64).to_le_bytes());
        self.varint(s.len() as u64);
    }

    /// The message, copied.
    #[inline]
    pub(crate) fn body_text(&mut self, s: &str) {
        self.varint((s.len() as u64) << 1);
        self.put(s.as_bytes());
    }

    /// A message that lives as long as the process: only its address is written.
    #[inline]
    pub(crate) fn body_static(&mut self, s: &'static str) {
        self.referenced += s.len() as u64;
        self.varint((s.len() as u64) << 1 | 1);
        self.put(&(s.as_ptr() as usize as u64).to_le_bytes());
    }

    /// An attribute's key (interned if it can be); its value follows.
    #[inline]
    pub(crate) fn key(&mut self, s: &str) {
        match intern::id(s) {
            Some(id) if id < KEY_IN_TAG => {
                self.referenced += s.len() as u64;
                self.key_in_tag = id as u8 + 1;
            }
            Some(id) => {
                self.long_key();
                self.referenced += s.len() as u64;
                self.id(id);
            }
            None => {
                self.long_key();
                self.text(s);
            }
        }
    }

    /// An attribute's key, as is (not interned).
    #[allow(clippy::ptr_arg, reason = "which variant it is decides the encoding")]
    fn key_cow(&mut self, s: &Cow<'static, str>) {
        self.long_key();
        cow(self, s);
    }

    /// The bytes written so far.
    fn written_mut(&mut self) -> &mut [u8] {
        if self.heap.capacity() == 0 {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap[..]
        }
    }

    /// The first byte of an attribute whose key is written in full: the value's tag is added to it
    /// once known.
    fn long_key(&mut self) {
        self.long_key_at = self.written_mut().len();
        self.byte(A_LONG);
    }

    /// A value's tag: with the key before it when that is folded in, or into the long key's first
    /// byte.
    #[inline]
    fn tag(&mut self, tag: u8) {
        if self.key_in_tag != 0 {
            self.byte(tag << 5 | (self.key_in_tag - 1));
            self.key_in_tag = 0;
            return;
        }
        let at = std::mem::replace(&mut self.long_key_at, usize::MAX);
        match self.written_mut().get_mut(at) {
            Some(b) => *b |= tag,
            // A value without a key (tests).
            None => self.byte(tag),
        }
    }

    /// The fixed header, then the optional observed time, thread and span context. Everything else
    /// follows in the order of [`Has`].
    pub(crate) fn header(
        &mut self,
        severity: Severity,
        time: u64,
        observed: u64,
        has: Has,
        stamp: Stamp<'_>,
    ) {
        let trace_flags = match stamp.trace {
            TraceField::None => 0,
            TraceField::Full(_) => FLAG_TRACE,
            TraceField::Same => FLAG_TRACE_SAME,
        };
        let flags = trace_flags
            | if stamp.thread.is_some() {
                FLAG_THREAD
            } else {
                0
            }
            | if observed != time { FLAG_OBSERVED } else { 0 }
            | if has.module { FLAG_MODULE } else { 0 }
            | if has.file { FLAG_FILE } else { 0 }
            | if has.line { FLAG_LINE } else { 0 };
        let delta = stamp.delta.filter(|_| stamp.thread.is_some());
        let time_flag = if delta.is_some() { SEV_TIME_DELTA } else { 0 };
        self.byte(severity.number() as u8 | time_flag);
        self.byte(flags);
        self.put(&[0; 2]);
        match delta {
            Some(d) => self.varint(d),
            None => self.put(&time.to_le_bytes()),
        }
        if observed != time {
            self.put(&observed.to_le_bytes());
        }
        if let Some(n) = stamp.thread {
            self.varint(u64::from(n));
        }
        if let TraceField::Full(t) = stamp.trace {
            self.trace(t);
        }
    }

    fn trace(&mut self, t: &TraceContext) {
        self.put(&t.trace_id);
        self.put(&t.span_id);
        self.byte(t.flags);
    }

    pub(crate) fn int(&mut self, i: i64) {
        self.tag(V_INT);
        self.varint(zigzag(i));
    }

    pub(crate) fn double(&mut self, d: f64) {
        // A double holding a small integer exactly (amounts, counts) takes a varint.
        let i = d as i64;
        if (i as f64).to_bits() == d.to_bits() && i.unsigned_abs() < 1 << 53 {
            self.tag(V_DOUBLE_INT);
            self.varint(zigzag(i));
        } else {
            self.tag(V_DOUBLE);
            self.put(&d.to_le_bytes());
        }
    }

    pub(crate) fn bool(&mut self, b: bool) {
        self.tag(if b { V_TRUE } else { V_FALSE });
    }

    /// A string value.
    pub(crate) fn str_value(&mut self, s: &str) {
        self.tag(V_STR);
        self.varint(s.len() as u64);
        self.put(s.as_bytes());
    }

    /// Ends the attributes.
    pub(crate) fn end(&mut self, dropped_attributes: u32) {
        self.dropped = dropped_attributes > 0;
        self.byte(END);
        if self.dropped {
            self.varint(u64::from(dropped_attributes));
        }
    }

    /// Sets the header fields known only at the end, and sizes a heap record to fit.
    pub(crate) fn seal(&mut self) {
        let units = self.referenced.div_ceil(REFERENCED_UNIT);
        let referenced = u16::try_from(units).unwrap_or(u16::MAX).to_le_bytes();
        let dropped = self.dropped;
        let bytes = self.written_mut();
        if let Some(slot) = bytes.get_mut(2..4) {
            slot.copy_from_slice(&referenced);
        }
        if dropped && let Some(flags) = bytes.get_mut(1) {
            *flags |= FLAG_DROPPED;
        }
        self.heap.shrink_to_fit();
    }

    /// Writes the record into `dst` (a queue slot), copying only the bytes written. The writer is
    /// left without its heap buffer; it is written from in place, not moved, since copying bytes
    /// just written one by one is slow.
    /// Call [`seal`](Self::seal) first: the heap record is made before a slot is claimed, so no
    /// allocation happens while the worker may be waiting for the slot.
    #[inline]
    pub(crate) fn finish_into(&mut self, dst: &mut MaybeUninit<Queued>) {
        let dst = dst.as_mut_ptr();
        // SAFETY: both fields of `dst` are written (`len` last), each within its bounds: two words
        // or at most `QUEUED_INLINE` bytes into `bytes`.
        unsafe {
            let bytes = std::ptr::addr_of_mut!((*dst).bytes).cast::<u8>();
            let len = if self.heap.capacity() != 0 {
                let record = std::mem::take(&mut self.heap).into_boxed_slice();
                let len = record.len();
                let ptr = Box::into_raw(record).cast::<u8>();
                bytes.cast::<*mut u8>().write_unaligned(ptr);
                bytes.add(WORD).cast::<usize>().write_unaligned(len);
                ON_HEAP
            } else {
                let len = self.len.min(QUEUED_INLINE);
                std::ptr::copy_nonoverlapping(self.inline.as_ptr(), bytes, len);
                len as u8
            };
            std::ptr::addr_of_mut!((*dst).len).write(len);
        }
    }

    /// The record as queued.
    pub(crate) fn finish_queued(mut self) -> Queued {
        self.seal();
        let mut q = MaybeUninit::uninit();
        self.finish_into(&mut q);
        // SAFETY: `finish_into` always writes a record.
        unsafe { q.assume_init() }
    }

    /// The record in full, for one that names no thread.
    pub(crate) fn finish(self) -> Compact {
        self.finish_queued().resolve(&mut Threads::default())
    }
}

/// How a record gives its thread, span context and time.
#[derive(Clone, Copy)]
pub(crate) struct Stamp<'a> {
    /// The thread's number: the worker then learns the record's span context and time as the
    /// thread's last ones. `None`: the record names no thread, and may not refer to its last ones.
    pub thread: Option<u32>,
    pub trace: TraceField<'a>,
    /// Nanoseconds after the thread's last record (with `thread` only); else the time is whole.
    pub delta: Option<u64>,
}

impl<'a> Stamp<'a> {
    /// A record that names no thread.
    pub(crate) fn alone(trace: Option<&'a TraceContext>) -> Self {
        Stamp {
            thread: None,
            trace: trace.map_or(TraceField::None, TraceField::Full),
            delta: None,
        }
    }
}

/// How a record gives its span context.
#[derive(Clone, Copy)]
pub(crate) enum TraceField<'a> {
    /// It has none.
    None,
    /// It carries it.
    Full(&'a TraceContext),
    /// It has the one its thread's last record had (with a thread number only).
    Same,
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
pub(crate) fn encode_queued(e: &LogEvent) -> Queued {
    writer_of(e).finish_queued()
}

/// The event as the worker holds records (replayed ones).
pub(crate) fn encode(e: &LogEvent) -> Compact {
    writer_of(e).finish()
}

fn writer_of(e: &LogEvent) -> Writer {
    let mut w = Writer::new();
    w.header(
        e.severity,
        e.time_unix_nano,
        e.observed_time_unix_nano,
        Has {
            module: e.module_path.is_some(),
            file: e.file.is_some(),
            line: e.line.is_some(),
        },
        Stamp::alone(e.trace.as_ref()),
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
    match &e.body {
        Cow::Borrowed(b) => w.body_static(b),
        Cow::Owned(o) => w.body_text(o),
    }
    for a in &e.attributes {
        w.key_cow(&a.key);
        match &a.value {
            AttrValue::Int(i) => w.int(*i),
            AttrValue::Double(d) => w.double(*d),
            AttrValue::Bool(b) => w.bool(*b),
            AttrValue::Str(s) => w.str_value(s),
        }
    }
    w.end(e.dropped_attributes);
    w
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
                let len = self.varint()?;
                Str::Copied(self.text(len)?)
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

    /// `len` bytes written from a `&str` by the writer.
    fn text(&mut self, len: u64) -> Option<&'a str> {
        let bytes = self.take(usize::try_from(len).ok()?)?;
        // SAFETY: only the writer writes these bytes, copying a `&str`'s, and a `Compact` is only
        // ever made by a `Writer`, so they are UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    fn body(&mut self) -> Option<Str<'a>> {
        let v = self.varint()?;
        let len = usize::try_from(v >> 1).ok()?;
        if v & 1 == 0 {
            return Some(Str::Copied(self.text(v >> 1)?));
        }
        let addr = self.u64()? as usize;
        // SAFETY: only `Writer::body_static` writes this form, from a `&'static str` of this
        // process, and these bytes never leave the process.
        Some(Str::Static(unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(addr as *const u8, len))
        }))
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

impl<'a> From<&'a AttrValue> for Value<'a> {
    fn from(v: &'a AttrValue) -> Self {
        match v {
            AttrValue::Int(i) => Value::Int(*i),
            AttrValue::Double(d) => Value::Double(*d),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Str(s) => Value::Str(Str::Copied(s)),
        }
    }
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
        let _referenced = r.take(2)?;
        let time = r.u64()?;
        let observed = if flags & FLAG_OBSERVED != 0 {
            r.u64()?
        } else {
            time
        };
        if flags & (FLAG_THREAD | FLAG_TRACE_SAME) != 0 {
            // Not resolved: not a record the worker holds.
            return None;
        }
        let trace = if flags & FLAG_TRACE != 0 {
            Some(trace_from(r.take(TRACE_LEN)?.try_into().ok()?))
        } else {
            None
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
        let body = r.body()?;
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
        let (key, tag) = match first {
            END => return None,
            long if long & !7 == A_LONG => (self.r.next_string()?, long & 7),
            folded if folded < A_LONG => {
                let id = u16::from(folded & 0x1F);
                (Str::Interned(id, intern::get(id)?), folded >> 5)
            }
            _ => return None,
        };
        let value = match tag {
            V_INT => Value::Int(unzigzag(self.r.varint()?)),
            V_DOUBLE => Value::Double(f64::from_le_bytes(self.r.take(8)?.try_into().ok()?)),
            V_FALSE => Value::Bool(false),
            V_TRUE => Value::Bool(true),
            V_STR => {
                let len = self.r.varint()?;
                Value::Str(Str::Copied(self.r.text(len)?))
            }
            V_DOUBLE_INT => Value::Double(unzigzag(self.r.varint()?) as f64),
            _ => return None,
        };
        Some((key, value))
    }

    /// Attributes left out of the record (its limits); read after the last attribute (`None`: the
    /// record is not one the writer wrote).
    pub(crate) fn dropped(mut self) -> Option<u32> {
        while self.next().is_some() {}
        if self.r.0.is_empty() {
            return Some(0);
        }
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
            (-(1i64 << 54)..(1i64 << 54)).prop_map(|i| AttrValue::Double(i as f64)),
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

    #[test]
    fn doubles_keep_every_bit_and_integral_ones_take_a_varint() {
        let write = |d: f64| {
            let mut w = Writer::new();
            w.double(d);
            w.inline[..w.len].to_vec()
        };
        for d in [
            0.0,
            -0.0,
            150.0,
            -3.0,
            0.5,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            -9_007_199_254_740_993.0,
            i64::MIN as f64,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
        ] {
            let mut w = Writer::new();
            w.key("k");
            w.double(d);
            let bytes = w.inline[..w.len].to_vec();
            let mut a = Attributes {
                r: Reader(&bytes),
                done: false,
            };
            let v = a.read().map(|(_, v)| v);
            let Some(Value::Double(back)) = v else {
                panic!("{d}: {v:?}");
            };
            assert_eq!(back.to_bits(), d.to_bits(), "{d}");
        }
        assert_eq!(write(150.0).len(), 3);
        assert_eq!(write(-0.0).len(), 9);
        assert_eq!(write(0.5).len(), 9);
    }

    #[test]
    fn keys_folded_into_the_tag_or_written_in_full_read_back() {
        // Interned keys with ids on both sides of 32, keys too long to intern, every tag.
        let long = "k".repeat(intern::MAX_LEN + 1);
        let mut keys: Vec<String> = (0..40).map(|i| format!("fold_{i}")).collect();
        keys.push(long);
        let mut w = Writer::new();
        for (i, k) in keys.iter().enumerate() {
            w.key(k);
            match i % 5 {
                0 => w.int(-(i as i64)),
                1 => w.double(i as f64 + 0.5),
                2 => w.bool(i % 2 == 0),
                3 => w.str_value(k),
                _ => w.double(i as f64),
            }
        }
        w.end(0);
        let bytes = if w.heap.capacity() == 0 {
            w.inline[..w.len].to_vec()
        } else {
            w.heap.clone()
        };
        let read: Vec<(String, String)> = Attributes {
            r: Reader(&bytes),
            done: false,
        }
        .map(|(k, v)| (k.as_str().to_owned(), format!("{v:?}")))
        .collect();
        let want: Vec<(String, String)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let v = match i % 5 {
                    0 => Value::Int(-(i as i64)),
                    1 => Value::Double(i as f64 + 0.5),
                    2 => Value::Bool(i % 2 == 0),
                    3 => Value::Str(Str::Copied(k)),
                    _ => Value::Double(i as f64),
                };
                (k.clone(), format!("{v:?}"))
            })
            .collect();
        assert_eq!(read, want);
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
        assert_eq!(size_of::<crate::pipeline::queue::Slot<Queued>>(), 64);
        let span = |n: u8| {
            opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes([1; 16]),
                SpanId::from_bytes([n; 8]),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            ))
        };
        let _cx = span(2).attach();
        let kvs: [(&str, log::kv::Value<'_>); 4] = [
            ("amount", 150.0f64.into()),
            ("user_id", 42i64.into()),
            ("currency", "EUR".into()),
            ("seq", 123_456u64.into()),
        ];
        // As the bridge does: captured for a pipeline, remembered once "pushed".
        let pipeline = Some(u64::MAX - 7);
        let queue = |message: &str, pipeline: Option<u64>| {
            let mut w = Writer::new();
            let (_, carried) = crate::capture::capture_into(
                &log::Record::builder()
                    .args(format_args!("Transaction processed {message}"))
                    .level(log::Level::Info)
                    .target("payment.service")
                    .module_path_static(Some("loadgen"))
                    .file_static(Some("examples/loadgen.rs"))
                    .line(Some(320))
                    .key_values(&kvs)
                    .build(),
                &mut w,
                pipeline,
                true,
            );
            carried.sent();
            w.finish_queued()
        };
        let mut threads = Threads::default();
        // The thread's first record carries its span context; the next ones refer to it and fit
        // in the slot.
        let first = queue("123456", pipeline);
        assert!(first.as_bytes()[1] & FLAG_THREAD != 0);
        let first = first.resolve(&mut threads);
        let before = crate::capture::now_unix_nanos();
        let q = queue("123457", pipeline);
        let after = crate::capture::now_unix_nanos();
        // 56 or 57 bytes (the time delta takes 2 or 3) when its names have the small ids they
        // get in a process that interns them early, as loadgen does; other tests in this
        // process may have interned many strings first.
        let small = |s: &str, below: u16| intern::id(s).is_some_and(|i| i < below);
        if ["payment.service", "loadgen", "examples/loadgen.rs"]
            .iter()
            .all(|s| small(s, u16::from(S_ID)))
            && ["amount", "user_id", "currency", "seq"]
                .iter()
                .all(|s| small(s, KEY_IN_TAG))
        {
            assert!(q.as_bytes().len() <= 58, "{} bytes", q.as_bytes().len());
            assert!(q.is_inline());
        }
        assert!(q.as_bytes()[1] & FLAG_TRACE_SAME != 0);
        assert!(q.as_bytes()[0] & SEV_TIME_DELTA != 0);
        let c = q.resolve(&mut threads);
        assert!(matches!(c.0, Repr::Inline { .. }));
        assert!((before..=after).contains(&decode(&c).time_unix_nano));
        for (c, seq) in [(&first, "123456"), (&c, "123457")] {
            // The referenced names (target, module, file, four keys) count in its size.
            let names = "payment.service".len()
                + "loadgen".len()
                + "examples/loadgen.rs".len()
                + "amount".len()
                + "user_id".len()
                + "currency".len()
                + "seq".len();
            let extra = c.approx_size() - c.as_bytes().len();
            assert!((names..names + 64).contains(&extra), "{extra}");
            let e = decode(c);
            assert_eq!(e.body, format!("Transaction processed {seq}"));
            assert_eq!(e.target, "payment.service");
            assert_eq!(e.file.as_deref(), Some("examples/loadgen.rs"));
            assert_eq!(e.line, Some(320));
            assert_eq!(e.trace.map(|t| t.span_id), Some([2; 8]));
            assert_eq!(e.attributes.len(), 4);
            assert_eq!(e.attributes[0].value, AttrValue::Double(150.0));
        }
        // Another span: carried again. A record for no pipeline carries it, and changes nothing.
        drop(_cx);
        let _cx = span(3).attach();
        let q = queue("1", pipeline);
        assert!(q.as_bytes()[1] & FLAG_TRACE_SAME == 0);
        assert_eq!(
            decode(&q.resolve(&mut threads)).trace.map(|t| t.span_id),
            Some([3; 8])
        );
        let q = queue("2", None);
        assert!(q.as_bytes()[1] & FLAG_THREAD == 0);
        assert_eq!(
            decode(&q.resolve(&mut threads)).trace.map(|t| t.span_id),
            Some([3; 8])
        );
        let q = queue("3", pipeline);
        assert!(q.as_bytes()[1] & FLAG_TRACE_SAME != 0);
        assert_eq!(
            decode(&q.resolve(&mut threads)).trace.map(|t| t.span_id),
            Some([3; 8])
        );
        // A worker that never saw the thread's context (not possible in a pipeline) reads the
        // record without one rather than failing.
        let q = queue("4", pipeline);
        let e = decode(&q.resolve(&mut Threads::default()));
        assert_eq!(
            (e.trace, e.body.as_ref()),
            (None, "Transaction processed 4")
        );
        let capture = |message: &str| {
            crate::capture::capture(
                &log::Record::builder()
                    .args(format_args!("Transaction processed {message}"))
                    .level(log::Level::Info)
                    .target("payment.service")
                    .key_values(&kvs)
                    .build(),
            )
            .0
            .finish()
        };
        let long = "x".repeat(INLINE);
        let c = capture(&long);
        assert!(matches!(c.0, Repr::Heap(_)));
        assert_eq!(decode(&c).body, format!("Transaction processed {long}"));
    }
}
