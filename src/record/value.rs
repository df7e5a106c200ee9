//! [`Value`]: an attribute's value as every reader sees it, the OpenTelemetry `AnyValue` kinds,
//! borrowed from where the record lives. Arrays and maps are read lazily: from a queued record's
//! checked bytes, or from an event's owned values.

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
    Array(Array<'a>),
    Map(Map<'a>),
}

/// The elements of an array value.
#[derive(Clone, Copy)]
pub(crate) struct Array<'a>(Src<'a, AttrValue>);

/// The entries of a map value (`kvlist_value`), in order; a key may repeat.
#[derive(Clone, Copy)]
pub(crate) struct Map<'a>(Src<'a, (Box<str>, AttrValue)>);

enum Src<'a, T> {
    /// Bytes checked by [`Cursor::value`], and how many elements they hold.
    Packed(&'a [u8], u32),
    Owned(&'a [T]),
}

impl<T> Clone for Src<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Src<'_, T> {}

impl<T> Src<'_, T> {
    fn len(&self) -> usize {
        match self {
            Src::Packed(_, n) => *n as usize,
            Src::Owned(v) => v.len(),
        }
    }
}

impl<'a> Array<'a> {
    /// `bytes` must have been checked by [`Cursor::value`] (else iteration stops early: safe).
    pub(crate) fn packed(bytes: &'a [u8], count: u32) -> Self {
        Array(Src::Packed(bytes, count))
    }

    pub(crate) fn owned(values: &'a [AttrValue]) -> Self {
        Array(Src::Owned(values))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Value<'a>> + Clone + use<'a> {
        let (mut c, n, owned) = parts(self.0);
        let mut owned = owned.iter();
        (0..n).map_while(move |_| match &mut c {
            Some(c) => {
                let tag = c.byte().ok()?;
                c.value(tag, 0).ok()
            }
            None => owned.next().map(AttrValue::as_value),
        })
    }
}

impl<'a> Map<'a> {
    /// `bytes` must have been checked by [`Cursor::value`] (else iteration stops early: safe).
    pub(crate) fn packed(bytes: &'a [u8], count: u32) -> Self {
        Map(Src::Packed(bytes, count))
    }

    pub(crate) fn owned(entries: &'a [(Box<str>, AttrValue)]) -> Self {
        Map(Src::Owned(entries))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + Clone + use<'a> {
        let (mut c, n, owned) = parts(self.0);
        let mut owned = owned.iter();
        (0..n).map_while(move |_| match &mut c {
            Some(c) => {
                let key = c.text().ok()?;
                let tag = c.byte().ok()?;
                Some((key, c.value(tag, 0).ok()?))
            }
            None => owned.next().map(|(k, v)| (&**k, v.as_value())),
        })
    }
}

/// A cursor over packed elements, or the owned ones; and how many there are.
fn parts<T>(src: Src<'_, T>) -> (Option<Cursor<'_>>, usize, &[T]) {
    match src {
        Src::Packed(b, n) => (Some(Cursor(b)), n as usize, &[]),
        Src::Owned(v) => (None, v.len(), v),
    }
}

impl PartialEq for Array<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl PartialEq for Map<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Array<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl std::fmt::Debug for Map<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
