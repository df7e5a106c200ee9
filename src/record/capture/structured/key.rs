//! Map keys of structured values: written as text.

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::Unserializable;
use crate::record::capture::{MAX_VALUE_BYTES, with_scratch, write_bounded};
use crate::record::packed::put_text;

/// Writes a map key as text: strings as they are, other scalars as their `Display` (as JSON
/// writers do), within the value's byte limit; a key that is a structure cannot be written.
pub(super) struct KeyWriter<'b> {
    buf: &'b mut Vec<u8>,
    limit: usize,
}

impl<'b> KeyWriter<'b> {
    /// A writer of one key into `buf`, which the value lets grow up to `end` bytes.
    pub(super) fn new(buf: &'b mut Vec<u8>, end: usize) -> Self {
        let limit = end.saturating_sub(buf.len()).min(MAX_VALUE_BYTES);
        KeyWriter { buf, limit }
    }

    fn text(self, s: &dyn std::fmt::Display) -> Result<(), Unserializable> {
        with_scratch(|key| {
            write_bounded(key, &format_args!("{s}"), self.limit.saturating_sub(32));
            put_text(self.buf, key);
        });
        Ok(())
    }
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unserializable;
    type SerializeSeq = Impossible<(), Unserializable>;
    type SerializeTuple = Impossible<(), Unserializable>;
    type SerializeTupleStruct = Impossible<(), Unserializable>;
    type SerializeTupleVariant = Impossible<(), Unserializable>;
    type SerializeMap = Impossible<(), Unserializable>;
    type SerializeStruct = Impossible<(), Unserializable>;
    type SerializeStructVariant = Impossible<(), Unserializable>;

    fn serialize_bool(self, v: bool) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_char(self, v: char) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Unserializable> {
        self.text(&v)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_none(self) -> Result<(), Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unserializable> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unserializable> {
        self.text(&variant)
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
        _: &'static str,
        _: &T,
    ) -> Result<(), Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unserializable> {
        Err(Unserializable::Shape)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unserializable> {
        Err(Unserializable::Shape)
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, v: &T) -> Result<(), Unserializable> {
        self.text(&v)
    }
}
