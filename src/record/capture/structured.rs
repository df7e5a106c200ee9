//! Structured key-values (`key:serde = v`, `key:sval = v`; `log` hands sval values over through
//! serde too) written as nested values straight into the queued record: maps and structs become
//! maps, sequences and tuples arrays, byte strings bytes, scalars keep their types.
//!
//! Bounded as a record must be: at most [`MAX_DEPTH`] levels of nesting (deeper, the value reads
//! `[nested too deep]`), [`MAX_ELEMENTS`] elements in one value and its byte limit; an array or a
//! map that was cut ends with a marker (`…[N more]`, or the entry `"…": "[N more]"`), and what was
//! left out is counted in the record's `dropped_attributes_count`.

use serde::Serialize;
use serde::ser;

use key::KeyWriter;

use super::{MAX_VALUE_BYTES, with_scratch, write_bounded};
use crate::record::MAX_DEPTH;
use crate::record::packed::{
    Cursor, KEY_INLINE, T_ARRAY, T_BYTES, T_DOUBLE, T_FALSE, T_INT, T_MAP, T_NULL, T_STR, T_TRUE,
    put_header, put_text, put_varint, set_header, zigzag,
};

/// Most elements (array items and map entries, at any depth) kept in one structured value.
pub(crate) const MAX_ELEMENTS: usize = 1024;
/// Most elements left out of one value that are still walked (and counted); past it, the value is
/// left out, so a `Serialize` that never ends costs bounded time.
const MAX_WALKED: usize = 1 << 20;
/// What a value nested deeper than [`MAX_DEPTH`] reads.
const TOO_DEEP: &str = "[nested too deep]";

/// A value that cannot be written as a structure.
#[derive(Debug, PartialEq)]
pub(super) enum Unserializable {
    /// A map key that is not a scalar, or an error from the value's own `Serialize`: the caller
    /// writes its text instead.
    Shape,
    /// More than [`MAX_WALKED`] elements past the limits (a `Serialize` that may never end): the
    /// value is left out, and counted.
    Endless,
}

impl std::fmt::Display for Unserializable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unserializable::Shape => "the value cannot be written as a structure",
            Unserializable::Endless => "the value has too many elements",
        })
    }
}

impl std::error::Error for Unserializable {}

impl ser::Error for Unserializable {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Unserializable::Shape
    }
}

/// What one structured value may still take.
struct Budget {
    elements: usize,
    /// The buffer length past which no element is added.
    end: usize,
    dropped: u32,
    /// Elements left out so far.
    walked: usize,
}

impl Budget {
    /// Takes one element, if the value has room for it.
    fn admit(&mut self, len: usize) -> bool {
        if self.elements == 0 || len >= self.end {
            return false;
        }
        self.elements -= 1;
        true
    }
}

/// Writes `value` into `buf` as the value of the slot whose tag byte is at `tag_at` (its kind bits
/// zero), in at most about `max_bytes` more bytes. Returns how many elements were left out. On an
/// error, `buf` holds a partial value: the caller rolls it back.
pub(super) fn write(
    buf: &mut Vec<u8>,
    tag_at: usize,
    value: &(impl Serialize + ?Sized),
    max_bytes: usize,
) -> Result<u32, Unserializable> {
    let start = buf.len();
    let mut budget = Budget {
        elements: MAX_ELEMENTS,
        end: buf.len().saturating_add(max_bytes),
        dropped: 0,
        walked: 0,
    };
    let written = value.serialize(Slot {
        buf: &mut *buf,
        tag_at,
        depth: 0,
        budget: &mut budget,
    });
    // Decided here: an error that went through the value's own code (type-erased in `log`) comes
    // back as a custom one.
    if budget.walked > MAX_WALKED {
        return Err(Unserializable::Endless);
    }
    written?;
    // A `Serialize` that ignored an error of one of its elements may have left a part-written
    // structure behind: read back what was written, as the worker will, and refuse what it would.
    let kind = buf.get(tag_at).map_or(T_NULL, |t| t & !KEY_INLINE);
    if matches!(kind, T_ARRAY | T_MAP) {
        let mut c = Cursor(buf.get(start..).unwrap_or(&[]));
        if c.value(kind, 0, true).is_err() || !c.0.is_empty() {
            return Err(Unserializable::Shape);
        }
    }
    Ok(budget.dropped)
}

/// One value's place: its tag byte at `tag_at`, `depth` levels inside arrays and maps.
struct Slot<'b> {
    buf: &'b mut Vec<u8>,
    tag_at: usize,
    depth: usize,
    budget: &'b mut Budget,
}

/// Sets the kind bits of the tag byte at `at` (keeping an attribute's key bit).
fn set_tag(buf: &mut [u8], at: usize, kind: u8) {
    if let Some(b) = buf.get_mut(at) {
        *b = (*b & KEY_INLINE) | kind;
    }
}

/// Writes `s` as a string value whose tag byte is at `tag_at`.
fn put_str(buf: &mut Vec<u8>, tag_at: usize, s: &str) {
    set_tag(buf, tag_at, T_STR);
    put_text(buf, s);
}

impl<'b> Slot<'b> {
    fn tag(&mut self, kind: u8) {
        set_tag(self.buf, self.tag_at, kind);
    }

    fn int(self, i: i64) -> Result<(), Unserializable> {
        let mut s = self;
        s.tag(T_INT);
        put_varint(s.buf, zigzag(i));
        Ok(())
    }

    /// An integer beyond `i64`, as its decimal text (as for top-level key-values).
    fn wide(self, v: impl Into<i128> + std::fmt::Display + Copy) -> Result<(), Unserializable> {
        match i64::try_from(v.into()) {
            Ok(i) => self.int(i),
            Err(_) => self.text(&v.to_string()),
        }
    }

    /// A string, cut (and marked) at what the value's byte limit still allows.
    fn text(self, s: &str) -> Result<(), Unserializable> {
        self.display(&s)
    }

    /// A value's `Display` as a string, bounded like [`text`](Self::text).
    fn display(self, v: &dyn std::fmt::Display) -> Result<(), Unserializable> {
        let room = self.budget.end.saturating_sub(self.buf.len());
        let limit = room.min(MAX_VALUE_BYTES).saturating_sub(32);
        let (buf, at) = (self.buf, self.tag_at);
        with_scratch(|text| {
            write_bounded(text, &format_args!("{v}"), limit);
            put_str(buf, at, text);
        });
        Ok(())
    }

    /// Starts an array or a map of `kind` here: its elements follow.
    fn compound(mut self, kind: u8) -> Compound<'b> {
        let header = if self.depth >= MAX_DEPTH {
            self.tag(T_STR);
            put_text(self.buf, TOO_DEEP);
            None
        } else {
            self.tag(kind);
            Some(put_header(self.buf))
        };
        Compound {
            buf: self.buf,
            budget: self.budget,
            depth: self.depth + 1,
            header,
            outer: None,
            count: 0,
            skipped: 0,
            key: Key::None,
        }
    }

    /// serde's externally tagged enum variants, as serde_json writes them: a map of one entry
    /// `variant` holding an array or a map of `kind` (tuple and struct variants).
    fn variant(self, variant: &str, kind: u8) -> Compound<'b> {
        let outer = self.compound(T_MAP);
        let Some(at) = outer.header else {
            return outer;
        };
        put_text(outer.buf, variant);
        outer.buf.push(T_NULL);
        let mut inner = Slot {
            tag_at: outer.buf.len() - 1,
            buf: outer.buf,
            depth: outer.depth,
            budget: outer.budget,
        }
        .compound(kind);
        inner.outer = Some(at);
        inner
    }
}

/// Where a map's current entry is.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    /// Between entries.
    None,
    /// Its key is written, its value not yet.
    Written,
    /// It was left out: so is its value.
    Skipped,
}

/// An array or a map being written. Its count and length are set when it ends; an element is
/// counted as it is admitted, its tag byte a null until its value is written, so the count always
/// matches what is there.
struct Compound<'b> {
    buf: &'b mut Vec<u8>,
    budget: &'b mut Budget,
    /// The depth of its elements.
    depth: usize,
    /// Where its header is; `None` when it was too deep to write (its elements are left out).
    header: Option<usize>,
    /// The header of the one-entry map of an enum variant holding this one.
    outer: Option<usize>,
    count: u32,
    skipped: u32,
    key: Key,
}

impl Compound<'_> {
    /// Whether one more element is taken; if not, it is counted as left out. Past
    /// [`MAX_WALKED`] elements left out, the value is given up.
    fn admit(&mut self) -> Result<bool, Unserializable> {
        if self.header.is_some() && self.budget.admit(self.buf.len()) {
            self.count += 1;
            return Ok(true);
        }
        self.budget.dropped = self.budget.dropped.saturating_add(1);
        self.budget.walked += 1;
        if self.budget.walked > MAX_WALKED {
            return Err(Unserializable::Endless);
        }
        if self.header.is_some() {
            self.skipped = self.skipped.saturating_add(1);
        }
        Ok(false)
    }

    /// The slot of an admitted element: a null tag byte its value overwrites.
    fn slot(&mut self) -> Slot<'_> {
        self.buf.push(T_NULL);
        Slot {
            tag_at: self.buf.len() - 1,
            buf: self.buf,
            depth: self.depth,
            budget: self.budget,
        }
    }

    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        if self.admit()? {
            v.serialize(self.slot())?;
        }
        Ok(())
    }

    /// A map entry's key, if the entry is admitted (else its value is left out too).
    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unserializable> {
        self.close_entry();
        if !self.admit()? {
            self.key = Key::Skipped;
            return Ok(());
        }
        self.key = Key::Written;
        key.serialize(KeyWriter::new(self.buf, self.budget.end))
    }

    fn entry_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        match std::mem::replace(&mut self.key, Key::None) {
            Key::Skipped => Ok(()),
            Key::Written => v.serialize(self.slot()),
            // A value without a key (a `Serialize` that does not pair them): an empty key.
            Key::None => {
                if self.admit()? {
                    put_text(self.buf, "");
                    v.serialize(self.slot())?;
                }
                Ok(())
            }
        }
    }

    /// A key left without its value gets a null one.
    fn close_entry(&mut self) {
        if std::mem::replace(&mut self.key, Key::None) == Key::Written {
            self.buf.push(T_NULL);
        }
    }

    /// Ends the array (`map` false) or map: a cut one gets its marker, then its header is set (and
    /// that of the variant holding it).
    fn end(mut self, map: bool) -> Result<(), Unserializable> {
        self.close_entry();
        if let Some(at) = self.header {
            if self.skipped > 0 {
                if map {
                    put_text(self.buf, "…");
                }
                self.buf.push(T_STR);
                let marker = if map { "" } else { "…" };
                put_text(self.buf, &format!("{marker}[{} more]", self.skipped));
                self.count += 1;
            }
            set_header(self.buf, at, self.count);
        }
        if let Some(at) = self.outer {
            set_header(self.buf, at, 1);
        }
        Ok(())
    }
}

impl<'b> ser::Serializer for Slot<'b> {
    type Ok = ();
    type Error = Unserializable;
    type SerializeSeq = Compound<'b>;
    type SerializeTuple = Compound<'b>;
    type SerializeTupleStruct = Compound<'b>;
    type SerializeTupleVariant = Compound<'b>;
    type SerializeMap = Compound<'b>;
    type SerializeStruct = Compound<'b>;
    type SerializeStructVariant = Compound<'b>;

    fn serialize_bool(mut self, v: bool) -> Result<(), Unserializable> {
        self.tag(if v { T_TRUE } else { T_FALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unserializable> {
        self.int(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unserializable> {
        self.int(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unserializable> {
        self.int(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unserializable> {
        self.int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unserializable> {
        self.wide(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unserializable> {
        self.int(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unserializable> {
        self.int(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unserializable> {
        self.int(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unserializable> {
        self.wide(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unserializable> {
        match i64::try_from(v) {
            Ok(i) => self.int(i),
            Err(_) => self.text(&v.to_string()),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unserializable> {
        // The double nearest the `f32`'s shortest decimal (0.1, not 0.10000000149011612).
        let d = v.to_string().parse().unwrap_or(f64::from(v));
        self.serialize_f64(d)
    }
    fn serialize_f64(mut self, v: f64) -> Result<(), Unserializable> {
        self.tag(T_DOUBLE);
        self.buf.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unserializable> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Unserializable> {
        self.text(v)
    }
    fn serialize_bytes(mut self, v: &[u8]) -> Result<(), Unserializable> {
        let room = self
            .budget
            .end
            .saturating_sub(self.buf.len())
            .saturating_sub(10);
        let kept = &v[..v.len().min(room)];
        if kept.len() < v.len() {
            self.budget.dropped = self.budget.dropped.saturating_add(1);
        }
        self.tag(T_BYTES);
        put_varint(self.buf, kept.len() as u64);
        self.buf.extend_from_slice(kept);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unserializable> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unserializable> {
        v.serialize(self)
    }
    fn serialize_unit(mut self) -> Result<(), Unserializable> {
        self.tag(T_NULL);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unserializable> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unserializable> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unserializable> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Unserializable> {
        let mut c = self.compound(T_MAP);
        c.key(variant)?;
        c.entry_value(v)?;
        c.end(true)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'b>, Unserializable> {
        Ok(self.compound(T_ARRAY))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'b>, Unserializable> {
        Ok(self.compound(T_ARRAY))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'b>, Unserializable> {
        Ok(self.compound(T_ARRAY))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'b>, Unserializable> {
        Ok(self.variant(variant, T_ARRAY))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'b>, Unserializable> {
        Ok(self.compound(T_MAP))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'b>, Unserializable> {
        Ok(self.compound(T_MAP))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'b>, Unserializable> {
        Ok(self.variant(variant, T_MAP))
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, v: &T) -> Result<(), Unserializable> {
        self.display(&v)
    }
}

/// The serde traits of an array: each element is a value.
macro_rules! array_like {
    ($($tr:ident :: $method:ident),*) => {$(
        impl ser::$tr for Compound<'_> {
            type Ok = ();
            type Error = Unserializable;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
                self.value(v)
            }
            fn end(self) -> Result<(), Unserializable> {
                Compound::end(self, false)
            }
        }
    )*};
}

array_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The serde traits of a struct: each field is a map entry.
macro_rules! struct_like {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Compound<'_> {
            type Ok = ();
            type Error = Unserializable;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Unserializable> {
                self.key(key)?;
                self.entry_value(v)
            }
            fn end(self) -> Result<(), Unserializable> {
                Compound::end(self, true)
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Unserializable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unserializable> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        self.entry_value(v)
    }
    fn end(self) -> Result<(), Unserializable> {
        Compound::end(self, true)
    }
}

mod key;
#[cfg(test)]
mod tests;
