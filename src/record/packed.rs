//! The byte format of a queued record's variable part, value by value: a reading [`Cursor`] that
//! checks every length and every string, and the writers. Values nest (arrays, maps) at most
//! [`MAX_DEPTH`] deep; a reader meeting deeper bytes says so rather than recursing further.
//!
//! ```text
//! value   = tag u8 (kind), then:
//!           zigzag varint (int) | 8 bytes LE (double) | nothing (false, true, null)
//!           | T (string) | length varint, bytes (bytes)
//!           | header, value*count (array) | header, (T key, value)*count (map)
//! header  = count u32 LE, length u32 LE (of the elements' bytes)
//! T       = varint length, UTF-8 bytes
//! ```
//!
//! An array or a map is checked whole once ([`Cursor::value`] with `check`, when the worker takes
//! the record); readers after that step over one by its length and read only what they use.

use super::Value;
use super::value::{Nested, Shape};

/// Why a queued record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("the record ends early")]
    Truncated,
    #[error("a string is not UTF-8")]
    NotUtf8,
    #[error("an interned name id {0} is not known")]
    UnknownName(u64),
    #[error("unknown value tag {0:#x}")]
    BadTag(u8),
    #[error("the record has no target")]
    NoTarget,
    #[error("a value nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("an array or a map is not as long as its header says")]
    BadLength,
}

pub(crate) const T_INT: u8 = 0;
pub(crate) const T_DOUBLE: u8 = 1;
pub(crate) const T_FALSE: u8 = 2;
pub(crate) const T_TRUE: u8 = 3;
pub(crate) const T_STR: u8 = 4;
pub(crate) const T_BYTES: u8 = 5;
pub(crate) const T_NULL: u8 = 6;
pub(crate) const T_ARRAY: u8 = 7;
pub(crate) const T_MAP: u8 = 8;
/// In an attribute's tag: the key is written out, not interned.
pub(crate) const KEY_INLINE: u8 = 0x80;

/// Most levels of arrays and maps inside one value (a top-level map holding a map is 2 deep).
pub(crate) const MAX_DEPTH: usize = 16;

/// A reading position in a record's bytes.
#[derive(Clone)]
pub(crate) struct Cursor<'a>(pub(crate) &'a [u8]);

impl<'a> Cursor<'a> {
    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if n > self.0.len() {
            return Err(ReadError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    #[inline(always)]
    pub(crate) fn byte(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Result<u64, ReadError> {
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

    #[inline]
    pub(crate) fn len(&mut self) -> Result<usize, ReadError> {
        usize::try_from(self.varint()?).map_err(|_| ReadError::Truncated)
    }

    #[inline(always)]
    pub(crate) fn text(&mut self) -> Result<&'a str, ReadError> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| ReadError::NotUtf8)
    }

    #[inline]
    fn u32(&mut self) -> Result<u32, ReadError> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    /// The value of kind `tag` at the cursor, `depth` levels inside arrays and maps. With `check`,
    /// an array or a map is read whole, every element checked; without, it is stepped over by its
    /// length (its bytes were checked before, or its elements are checked as they are read).
    #[inline(always)]
    pub(crate) fn value(
        &mut self,
        tag: u8,
        depth: usize,
        check: bool,
    ) -> Result<Value<'a>, ReadError> {
        Ok(match tag {
            T_INT => Value::Int(unzigzag(self.varint()?)),
            T_DOUBLE => {
                let mut b = [0; 8];
                b.copy_from_slice(self.take(8)?);
                Value::Double(f64::from_le_bytes(b))
            }
            T_FALSE => Value::Bool(false),
            T_TRUE => Value::Bool(true),
            T_STR => Value::Str(self.text()?),
            _ => return self.rare_value(tag, depth, check),
        })
    }

    /// [`value`](Self::value) for the kinds only structured values have (kept out of line).
    #[inline(never)]
    fn rare_value(&mut self, tag: u8, depth: usize, check: bool) -> Result<Value<'a>, ReadError> {
        Ok(match tag {
            T_BYTES => {
                let n = self.len()?;
                Value::Bytes(self.take(n)?)
            }
            T_NULL => Value::Null,
            T_ARRAY | T_MAP => {
                if depth >= MAX_DEPTH {
                    return Err(ReadError::TooDeep);
                }
                let whole = self.0;
                let count = self.u32()?;
                let len = usize::try_from(self.u32()?).map_err(|_| ReadError::Truncated)?;
                let bytes = self.take(len)?;
                if check {
                    let mut inner = Cursor(bytes);
                    for _ in 0..count {
                        if tag == T_MAP {
                            inner.text()?;
                        }
                        let t = inner.byte()?;
                        inner.value(t, depth + 1, true)?;
                    }
                    if !inner.0.is_empty() {
                        return Err(ReadError::BadLength);
                    }
                }
                // The header and the elements: they were just taken, so they are all there.
                let whole = whole.get(..8 + len).unwrap_or(whole);
                Value::Nested(if tag == T_ARRAY {
                    Nested::Array(whole)
                } else {
                    Nested::Map(whole)
                })
            }
            _ => return Err(ReadError::BadTag(tag)),
        })
    }
}

/// The tag of `v`'s kind.
#[inline]
pub(crate) fn kind(v: &Value<'_>) -> u8 {
    match v {
        Value::Int(_) => T_INT,
        Value::Double(_) => T_DOUBLE,
        Value::Bool(false) => T_FALSE,
        Value::Bool(true) => T_TRUE,
        Value::Str(_) => T_STR,
        Value::Bytes(_) => T_BYTES,
        Value::Null => T_NULL,
        Value::Nested(Nested::Array(_) | Nested::OwnedArray(_)) => T_ARRAY,
        Value::Nested(Nested::Map(_) | Nested::OwnedMap(_)) => T_MAP,
    }
}

/// Writes `v`'s bytes after its tag (nested values whole, tags included).
#[inline]
pub(crate) fn put_value(buf: &mut Vec<u8>, v: Value<'_>) {
    gather_value(Gather::new(buf), v);
}

/// Writes `v`'s bytes after what `g` holds (its tag, at least).
#[inline(always)]
pub(crate) fn gather_value(g: Gather<'_>, v: Value<'_>) {
    match v {
        Value::Int(i) => {
            g.varint(zigzag(i)).done();
        }
        Value::Double(d) => {
            g.le8(d.to_le_bytes()).done();
        }
        Value::Bool(_) | Value::Null => {
            g.done();
        }
        Value::Str(s) => {
            g.varint(s.len() as u64)
                .done()
                .extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            g.varint(b.len() as u64).done().extend_from_slice(b);
        }
        Value::Nested(n) => put_nested(g.done(), n),
    }
}

/// Writes an array's or a map's header and elements.
#[inline(never)]
fn put_nested(buf: &mut Vec<u8>, n: Nested<'_>) {
    match n.shape() {
        Shape::Array(a) => {
            let at = put_header(buf);
            let mut n = 0;
            for e in a.iter() {
                buf.push(kind(&e));
                put_value(buf, e);
                n += 1;
            }
            set_header(buf, at, n);
        }
        Shape::Map(m) => {
            let at = put_header(buf);
            let mut n = 0;
            for (k, e) in m.iter() {
                put_text(buf, k);
                buf.push(kind(&e));
                put_value(buf, e);
                n += 1;
            }
            set_header(buf, at, n);
        }
    }
}

/// Writes an array's or a map's header, to be set with [`set_header`] once its elements are
/// written; returns its position.
pub(crate) fn put_header(buf: &mut Vec<u8>) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; 8]);
    at
}

/// Sets the header at `at`: `count` elements, written from after the header to the end of `buf`.
pub(crate) fn set_header(buf: &mut [u8], at: usize, count: u32) {
    let len = buf.len().saturating_sub(at + 8);
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    if let Some(b) = buf.get_mut(at..at + 8) {
        b[..4].copy_from_slice(&count.to_le_bytes());
        b[4..].copy_from_slice(&len.to_le_bytes());
    }
}

/// A signed integer as an unsigned one small in magnitude (protobuf's zigzag).
#[inline]
pub(crate) fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, v: u64) {
    Gather::new(buf).varint(v).done();
}

#[inline]
pub(crate) fn put_text(buf: &mut Vec<u8>, s: &str) {
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// `v` as a varint in the low bytes of the result, and how many bytes it takes (1 to 10).
#[inline]
pub(crate) fn varint_bits(v: u64) -> (u128, u32) {
    if let Some((bits, n)) = varint_word(v) {
        return (u128::from(bits), n);
    }
    let (mut bits, mut n, mut v) = (0u128, 0u32, v);
    while v >= 0x80 {
        // `n` is at most 8 here (a u64 has 64 bits, 7 a byte): the shift stays below 128.
        bits |= u128::from((v & 0x7F) | 0x80) << (8 * n);
        v >>= 7;
        n += 1;
    }
    (bits | (u128::from(v) << (8 * n)), n + 1)
}

/// `v` as a varint in the low bytes of a word when it takes at most 8 bytes (below 2^56), and
/// how many. The one- and two-byte varints (small numbers, every interned id) take no loop.
#[inline(always)]
fn varint_word(v: u64) -> Option<(u64, u32)> {
    if v < 1 << 7 {
        return Some((v, 1));
    }
    if v < 1 << 14 {
        return Some(((v & 0x7F) | 0x80 | ((v >> 7) << 8), 2));
    }
    if v >= 1 << 56 {
        return None;
    }
    let (mut bits, mut n, mut v) = (0u64, 0u32, v);
    while v >= 0x80 {
        // `n` is at most 6 here (`v` has at most 56 bits): the shift stays below 64.
        bits |= ((v & 0x7F) | 0x80) << (8 * n);
        v >>= 7;
        n += 1;
    }
    Some((bits | (v << (8 * n)), n + 1))
}

/// Bytes gathered in a register and appended to a buffer 8 at a time, with one fixed-size copy:
/// a tag, an id and a varint cost one update of the buffer's length rather than one per byte
/// (each `push` reloads and stores it: a chain through memory the record's writers paid for
/// every byte). Whatever is gathered, any number of bytes, ends up appended in order by
/// [`done`](Self::done), which must be called (dropped before it, the bytes gathered are lost).
#[must_use = "the bytes gathered are appended by `done`"]
pub(crate) struct Gather<'a> {
    buf: &'a mut Vec<u8>,
    /// The bytes not yet appended, the first in the low byte.
    bits: u64,
    /// How many: at most 8.
    len: u32,
}

impl<'a> Gather<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Self {
        Gather {
            buf,
            bits: 0,
            len: 0,
        }
    }

    /// Adds `n` bytes (1 to 8) held in the low bytes of `bits`, appending what is gathered first
    /// if they would not fit. Then `len + n <= 8` with `n >= 1`, so the shift is at most 56.
    #[inline(always)]
    fn add(mut self, bits: u64, n: u32) -> Self {
        if self.len + n > 8 {
            self.append();
        }
        self.bits |= bits << (8 * self.len);
        self.len += n;
        self
    }

    #[inline(always)]
    pub(crate) fn byte(self, b: u8) -> Self {
        self.add(u64::from(b), 1)
    }

    #[inline(always)]
    pub(crate) fn varint(mut self, v: u64) -> Self {
        match varint_word(v) {
            Some((bits, n)) => self.add(bits, n),
            None => {
                // Nine or ten bytes: rare (a large or negative number), appended apart.
                self.append();
                let (bits, n) = varint_bits(v);
                self.buf
                    .extend_from_slice(&bits.to_le_bytes()[..n as usize]);
                self
            }
        }
    }

    /// Eight bytes in their order.
    #[inline(always)]
    pub(crate) fn le8(self, b: [u8; 8]) -> Self {
        self.add(u64::from_le_bytes(b), 8)
    }

    #[inline(always)]
    fn append(&mut self) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&self.bits.to_le_bytes());
        self.buf.truncate(at + self.len as usize);
        self.bits = 0;
        self.len = 0;
    }

    /// Appends what is gathered; returns the buffer.
    #[inline(always)]
    pub(crate) fn done(mut self) -> &'a mut Vec<u8> {
        if self.len > 0 {
            self.append();
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What `Gather` is given.
    #[derive(Debug, Clone)]
    enum Op {
        Byte(u8),
        Varint(u64),
        Le8([u8; 8]),
    }

    /// The bytes of a varint, one at a time (the format's definition).
    fn varint_reference(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8 & 0x7F) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Byte),
            // Every length, 1 to 10 bytes, and its edges.
            (0u32..64, any::<u64>()).prop_map(|(bits, v)| Op::Varint(v >> bits)),
            (0u32..10).prop_map(|k| Op::Varint((1u64 << (7 * k)).wrapping_sub(1))),
            (0u32..10).prop_map(|k| Op::Varint(1u64 << (7 * k))),
            any::<[u8; 8]>().prop_map(Op::Le8),
        ]
    }

    proptest! {
        /// Any sequence of bytes, varints and 8-byte values comes out in order, as written byte
        /// by byte, after what the buffer held.
        #[test]
        fn gathered_bytes_are_the_bytes_in_order(
            before in proptest::collection::vec(any::<u8>(), 0..20),
            ops in proptest::collection::vec(op(), 0..40),
        ) {
            let mut expected = before.clone();
            let mut buf = before;
            let mut g = Gather::new(&mut buf);
            for op in &ops {
                g = match *op {
                    Op::Byte(b) => {
                        expected.push(b);
                        g.byte(b)
                    }
                    Op::Varint(v) => {
                        varint_reference(&mut expected, v);
                        g.varint(v)
                    }
                    Op::Le8(b) => {
                        expected.extend_from_slice(&b);
                        g.le8(b)
                    }
                };
            }
            g.done();
            prop_assert_eq!(buf, expected);
        }

        /// `varint_bits` is the varint, for every value.
        #[test]
        fn varint_bits_is_the_varint(bits in 0u32..64, v in any::<u64>()) {
            let v = v >> bits;
            let mut expected = Vec::new();
            varint_reference(&mut expected, v);
            let (word, n) = varint_bits(v);
            prop_assert_eq!(&word.to_le_bytes()[..n as usize], &expected[..]);
        }
    }

    #[test]
    fn the_largest_varint_takes_ten_bytes() {
        let mut buf = Vec::new();
        put_varint(&mut buf, u64::MAX);
        assert_eq!(
            buf,
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
        let mut c = Cursor(&buf);
        assert_eq!(c.varint(), Ok(u64::MAX));
    }
}
