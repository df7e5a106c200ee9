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

use super::{with_scratch, write_bounded};
use crate::record::MAX_DEPTH;
use crate::record::packed::{
    KEY_INLINE, T_ARRAY, T_BYTES, T_DOUBLE, T_FALSE, T_INT, T_MAP, T_NULL, T_STR, T_TRUE,
    put_count, put_text, put_varint, set_count, zigzag,
};

/// Most elements (array items and map entries, at any depth) kept in one structured value.
pub(crate) const MAX_ELEMENTS: usize = 1024;
/// What a value nested deeper than [`MAX_DEPTH`] reads.
const TOO_DEEP: &str = "[nested too deep]";

/// A value that cannot be written as a structure (a map key that is not a scalar, or an error from
/// the value's own `Serialize`): the caller writes its text instead.
#[derive(Debug)]
pub(super) struct Unserializable;

impl std::fmt::Display for Unserializable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the value cannot be written as a structure")
    }
}

impl std::error::Error for Unserializable {}

impl ser::Error for Unserializable {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Unserializable
    }
}

/// What one structured value may still take.
struct Budget {
    elements: usize,
    /// The buffer length past which no element is added.
    end: usize,
    dropped: u32,
}

impl Budget {
    /// Takes one element, if the value has room for it; else counts it as left out.
    fn admit(&mut self, len: usize) -> bool {
        if self.elements == 0 || len >= self.end {
            self.dropped = self.dropped.saturating_add(1);
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
    let mut budget = Budget {
        elements: MAX_ELEMENTS,
        end: buf.len().saturating_add(max_bytes),
        dropped: 0,
    };
    value.serialize(Slot {
        buf: &mut *buf,
        tag_at,
        depth: 0,
        budget: &mut budget,
    })?;
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
        let limit = room.min(super::MAX_VALUE_BYTES).saturating_sub(32);
        let (buf, at) = (self.buf, self.tag_at);
        with_scratch(|text| {
            write_bounded(text, &format_args!("{v}"), limit);
            put_str(buf, at, text);
        });
        Ok(())
    }

    /// Starts an array or a map of `kind` here: its elements follow.
    fn compound(mut self, kind: u8) -> Compound<'b> {
        let count_at = if self.depth >= MAX_DEPTH {
            self.tag(T_STR);
            put_text(self.buf, TOO_DEEP);
            None
        } else {
            self.tag(kind);
            let at = self.buf.len();
            put_count(self.buf, 0);
            Some(at)
        };
        Compound {
            buf: self.buf,
            budget: self.budget,
            depth: self.depth + 1,
            count_at,
            count: 0,
            skipped: 0,
            skip_value: false,
        }
    }

    /// A map of one entry `variant` whose value is the returned slot (serde's externally tagged
    /// enum variants, as serde_json writes them); too deep, the compound that takes nothing.
    fn variant(self, variant: &str) -> Result<Slot<'b>, Compound<'b>> {
        let c = self.compound(T_MAP);
        let Some(at) = c.count_at else {
            return Err(c);
        };
        set_count(c.buf, at, 1);
        put_text(c.buf, variant);
        c.buf.push(0);
        Ok(Slot {
            tag_at: c.buf.len() - 1,
            buf: c.buf,
            depth: c.depth,
            budget: c.budget,
        })
    }

    /// A map of one entry `variant` holding an array or a map of `kind` (tuple and struct
    /// variants).
    fn nested_variant(self, variant: &str, kind: u8) -> Compound<'b> {
        match self.variant(variant) {
            Ok(slot) => slot.compound(kind),
            Err(c) => c,
        }
    }
}

/// An array or a map being written.
struct Compound<'b> {
    buf: &'b mut Vec<u8>,
    budget: &'b mut Budget,
    /// The depth of its elements.
    depth: usize,
    /// Where its count is; `None` when it was too deep to write (its elements are left out).
    count_at: Option<usize>,
    count: u32,
    skipped: u32,
    /// The key of the current entry was left out: so is its value.
    skip_value: bool,
}

impl Compound<'_> {
    /// Admits one more element; if it is, its tag byte is written and its slot returned.
    fn element(&mut self) -> Option<Slot<'_>> {
        if !self.admit() {
            return None;
        }
        self.count += 1;
        self.buf.push(0);
        Some(Slot {
            tag_at: self.buf.len() - 1,
            buf: self.buf,
            depth: self.depth,
            budget: self.budget,
        })
    }

    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        match self.element() {
            Some(slot) => v.serialize(slot),
            None => Ok(()),
        }
    }

    /// Whether one more element is taken; if not, it is counted as left out.
    fn admit(&mut self) -> bool {
        if self.count_at.is_none() {
            // Too deep: nothing is written, everything is counted.
            self.budget.dropped = self.budget.dropped.saturating_add(1);
            return false;
        }
        if !self.budget.admit(self.buf.len()) {
            self.skipped += 1;
            return false;
        }
        true
    }

    /// A map entry's key, if the entry is admitted (else its value is left out too).
    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unserializable> {
        if !self.admit() {
            self.skip_value = true;
            return Ok(());
        }
        key.serialize(KeyWriter(self.buf))
    }

    fn entry_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        if std::mem::take(&mut self.skip_value) {
            return Ok(());
        }
        self.count += 1;
        self.buf.push(0);
        v.serialize(Slot {
            tag_at: self.buf.len() - 1,
            buf: self.buf,
            depth: self.depth,
            budget: self.budget,
        })
    }

    /// Ends the array (`map` false) or map: a cut one gets its marker, then its count is set.
    fn end(mut self, map: bool) -> Result<(), Unserializable> {
        let Some(at) = self.count_at else {
            return Ok(());
        };
        if self.skipped > 0 {
            if map {
                put_text(self.buf, "…");
                self.buf.push(T_STR);
                put_text(self.buf, &format!("[{} more]", self.skipped));
            } else {
                self.buf.push(T_STR);
                put_text(self.buf, &format!("…[{} more]", self.skipped));
            }
            self.count += 1;
        }
        set_count(self.buf, at, self.count);
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
        self.serialize_f64(v.into())
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
        match self.variant(variant) {
            Ok(slot) => v.serialize(slot),
            Err(c) => {
                c.budget.dropped = c.budget.dropped.saturating_add(1);
                Ok(())
            }
        }
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
        Ok(self.nested_variant(variant, T_ARRAY))
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
        Ok(self.nested_variant(variant, T_MAP))
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, v: &T) -> Result<(), Unserializable> {
        self.display(&v)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Unserializable;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        self.value(v)
    }
    fn end(self) -> Result<(), Unserializable> {
        Compound::end(self, false)
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Unserializable;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        self.value(v)
    }
    fn end(self) -> Result<(), Unserializable> {
        Compound::end(self, false)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Unserializable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        self.value(v)
    }
    fn end(self) -> Result<(), Unserializable> {
        Compound::end(self, false)
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Unserializable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unserializable> {
        self.value(v)
    }
    fn end(self) -> Result<(), Unserializable> {
        Compound::end(self, false)
    }
}

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

impl ser::SerializeStruct for Compound<'_> {
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

impl ser::SerializeStructVariant for Compound<'_> {
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

mod key;
#[cfg(test)]
mod tests;
