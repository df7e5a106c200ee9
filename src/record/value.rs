//! [`Value`]: an attribute's value as every reader sees it, the OpenTelemetry `AnyValue` kinds,
//! borrowed from where the record lives. Arrays and maps are read lazily: from a queued record's
//! checked bytes, or from an event's owned values. A `Value` takes 24 bytes, as a string does:
//! the readers pass one per attribute.

use super::AttrValue;
use super::packed::Cursor;

/// A typed attribute value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Int(i64),
    Double(f64),
    Bool(bool),
    Str(&'a str),
    Bytes(&'a [u8]),
    /// An empty `AnyValue` (`None`, `()`).
    Null,
    /// An array or a map: [`Nested::shape`] tells which.
    Nested(Nested<'a>),
}

/// An array or a map, where it lives. One enum (not an array and a map variant of [`Value`]), so
/// that a `Value` stays 24 bytes.
#[derive(Clone, Copy)]
pub(crate) enum Nested<'a> {
    /// A packed array: its header and elements, checked by [`Cursor::value`].
    Array(&'a [u8]),
    /// A packed map: its header and entries, checked by [`Cursor::value`].
    Map(&'a [u8]),
    OwnedArray(&'a [AttrValue]),
    OwnedMap(&'a [(Box<str>, AttrValue)]),
}

/// What a [`Nested`] value is.
pub(crate) enum Shape<'a> {
    Array(Array<'a>),
    Map(Map<'a>),
}

impl<'a> Nested<'a> {
    pub(crate) fn shape(self) -> Shape<'a> {
        match self {
            Nested::Array(b) => Shape::Array(Array(Src::Packed(b))),
            Nested::OwnedArray(v) => Shape::Array(Array(Src::Owned(v))),
            Nested::Map(b) => Shape::Map(Map(Src::Packed(b))),
            Nested::OwnedMap(v) => Shape::Map(Map(Src::Owned(v))),
        }
    }
}

/// The elements of an array value.
#[derive(Clone, Copy)]
pub(crate) struct Array<'a>(Src<'a, AttrValue>);

/// The entries of a map value (`kvlist_value`), in order; a key may repeat.
#[derive(Clone, Copy)]
pub(crate) struct Map<'a>(Src<'a, (Box<str>, AttrValue)>);

enum Src<'a, T> {
    /// The header (count u32, length u32) and the elements.
    Packed(&'a [u8]),
    Owned(&'a [T]),
}

impl<T> Clone for Src<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Src<'_, T> {}

impl<'a, T> Src<'a, T> {
    /// A cursor at the packed elements and their count, or the owned ones.
    fn parts(self) -> (Option<Cursor<'a>>, usize, &'a [T]) {
        match self {
            Src::Packed(b) => {
                let count = b
                    .get(..4)
                    .map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize);
                (Some(Cursor(b.get(8..).unwrap_or(&[]))), count, &[])
            }
            Src::Owned(v) => (None, v.len(), v),
        }
    }

    fn len(self) -> usize {
        self.parts().1
    }
}

impl<'a> Array<'a> {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Value<'a>> + Clone + use<'a> {
        let (mut c, n, owned) = self.0.parts();
        let mut owned = owned.iter();
        (0..n).map_while(move |_| match &mut c {
            Some(c) => {
                let tag = c.byte().ok()?;
                c.value(tag, 0, false).ok()
            }
            None => owned.next().map(AttrValue::as_value),
        })
    }
}

impl<'a> Map<'a> {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + Clone + use<'a> {
        let (mut c, n, owned) = self.0.parts();
        let mut owned = owned.iter();
        (0..n).map_while(move |_| match &mut c {
            Some(c) => {
                let key = c.text().ok()?;
                let tag = c.byte().ok()?;
                Some((key, c.value(tag, 0, false).ok()?))
            }
            None => owned.next().map(|(k, v)| (&**k, v.as_value())),
        })
    }
}

impl PartialEq for Nested<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.shape(), other.shape()) {
            (Shape::Array(a), Shape::Array(b)) => a.len() == b.len() && a.iter().eq(b.iter()),
            (Shape::Map(a), Shape::Map(b)) => a.len() == b.len() && a.iter().eq(b.iter()),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Nested<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shape() {
            Shape::Array(a) => f.debug_list().entries(a.iter()).finish(),
            Shape::Map(m) => f.debug_map().entries(m.iter()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_value_is_as_small_as_a_string() {
        assert_eq!(size_of::<super::Value<'_>>(), 24);
    }
}
