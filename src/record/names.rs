//! Interning of targets, attribute keys and code paths. The same few strings come with almost every
//! record, so each distinct one is stored once for the life of the process and gets a small id: a
//! queued record holds the id, and the worker turns it back into the `&'static str` without a lock
//! ([`get`]: an id it does not know is an error of the record, never a guess). A thread looks
//! strings up in a small cache of its own first; the process-wide table is locked only on a miss,
//! and not at all once it is full. The table is bounded ([`MAX_STRINGS`] strings, [`MAX_BYTES`]
//! bytes, [`MAX_LEN`] a string): past it, strings are copied into each record.
//!
//! A cached entry is confirmed by comparing the text, since the memory of a freed string may hold
//! another one; only an entry made by a lookup of a `'static` string (one `log` says is
//! `'static`: `module_path_static`, `file_static`) is taken by a later `'static` lookup on its
//! address and length alone, since a `'static` string's memory never changes or goes away.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// Most distinct strings kept for the life of the process.
pub(crate) const MAX_STRINGS: usize = 4096;
/// Most bytes kept for the life of the process.
pub(crate) const MAX_BYTES: usize = 256 * 1024;
/// Longest string interned; longer ones are copied into each record.
pub(crate) const MAX_LEN: usize = 256;
/// Sets of two entries in each thread's cache (a power of two).
const SETS: usize = 64;

struct Table {
    ids: HashMap<&'static str, u16>,
    bytes: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
/// Set once the table is full: from then on it never changes, and is read without the lock.
static FULL: AtomicBool = AtomicBool::new(false);
/// The table as it was when it filled up.
static FROZEN: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
/// The string of each id, set once before the id is handed out.
static STRINGS: [OnceLock<&'static str>; MAX_STRINGS] = [const { OnceLock::new() }; MAX_STRINGS];

thread_local! {
    /// Recent lookups by the string's address and length, two per set (the last two strings that
    /// fell in it); a hit is confirmed by comparing the text, since the memory of a string that was
    /// freed may hold another one, unless both the entry and the lookup are of `'static` strings.
    static RECENT: [Cell<Entry>; 2 * SETS] = const { [const { Cell::new(Entry::EMPTY) }; 2 * SETS] };
}

/// The id of `s` in the process-wide table, adding it if there is room. A `'static` string is
/// kept as it is; another is copied (and the copy leaked: the table lives as long as the process).
fn global(s: &str, as_static: Option<&'static str>) -> Option<(u16, &'static str)> {
    if FULL.load(Ordering::Acquire) {
        return FROZEN
            .get()
            .and_then(|t| t.get_key_value(s))
            .map(|(k, v)| (*v, *k));
    }
    let mut guard = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    if FULL.load(Ordering::Acquire) {
        // Frozen while this thread waited for the lock: it never changes again.
        return FROZEN
            .get()
            .and_then(|t| t.get_key_value(s))
            .map(|(k, v)| (*v, *k));
    }
    let table = guard.get_or_insert_with(|| Table {
        ids: HashMap::new(),
        bytes: 0,
    });
    if let Some((k, v)) = table.ids.get_key_value(s) {
        return Some((*v, *k));
    }
    if table.ids.len() >= MAX_STRINGS || table.bytes + s.len() > MAX_BYTES {
        let _ = FROZEN.set(table.ids.clone());
        FULL.store(true, Ordering::Release);
        return None;
    }
    let kept: &'static str = as_static.unwrap_or_else(|| Box::leak(s.to_owned().into_boxed_str()));
    let id = table.ids.len() as u16;
    let _ = STRINGS[usize::from(id)].set(kept);
    table.bytes += s.len();
    table.ids.insert(kept, id);
    Some((id, kept))
}

/// A cached lookup: the looked-up string's address, the interned string (same text), its id, and
/// whether the looked-up string was `'static` (only such an entry is trusted without comparing the
/// text, and only by a lookup of a `'static` string: a freed string's memory may later hold
/// another one, even a leaked one).
#[derive(Clone, Copy)]
struct Entry {
    addr: usize,
    name: &'static str,
    id: u16,
    is_static: bool,
}

impl Entry {
    const EMPTY: Entry = Entry {
        addr: 0,
        name: "",
        id: 0,
        is_static: false,
    };
}

fn set(s: &str) -> usize {
    let h = ((s.as_ptr() as usize as u64) ^ (s.len() as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 58) as usize & (SETS - 1)
}

/// Whether two strings of the same length have the same bytes: whole words at a time for the short
/// names this cache holds (a call to `memcmp` costs more than the comparison).
#[inline]
fn same_text(a: &[u8], b: &[u8]) -> bool {
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let half = |s: &[u8], at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_ne_bytes(w)
    };
    match a.len() {
        n if n != b.len() => false,
        n @ 8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        n @ 4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

/// The id of `s`, interning it if there is room; `None` if it is too long or the table is full.
#[inline]
pub(crate) fn id(s: &str) -> Option<u16> {
    lookup(s, None)
}

/// [`id`] for a string known to live as long as the process: a cache entry made by such a lookup
/// for its address is taken without comparing the text (memory of a `'static` string is never
/// reused for another), and the table keeps the string itself rather than a copy.
#[inline]
pub(crate) fn id_static(s: &'static str) -> Option<u16> {
    lookup(s, Some(s))
}

#[inline(always)]
fn lookup(s: &str, as_static: Option<&'static str>) -> Option<u16> {
    if s.len() > MAX_LEN {
        return None;
    }
    let is_static = as_static.is_some();
    let i = set(s);
    let addr = s.as_ptr() as usize;
    let hit = |e: &Entry| {
        e.addr == addr
            && e.name.len() == s.len()
            && ((is_static && e.is_static) || same_text(e.name.as_bytes(), s.as_bytes()))
    };
    let cached = RECENT
        .try_with(|r| {
            let (first, second) = (r[2 * i].get(), r[2 * i + 1].get());
            if hit(&first) {
                Some(first.id)
            } else if hit(&second) {
                Some(second.id)
            } else {
                None
            }
        })
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    miss(s, as_static, i)
}

/// A lookup the thread's cache could not answer: the table's, remembered in the cache.
#[cold]
#[inline(never)]
fn miss(s: &str, as_static: Option<&'static str>, i: usize) -> Option<u16> {
    let is_static = as_static.is_some();
    let addr = s.as_ptr() as usize;
    let (id, name) = global(s, as_static)?;
    let _ = RECENT.try_with(|r| {
        let entry = Entry {
            addr,
            name,
            id,
            is_static,
        };
        r[2 * i + 1].set(r[2 * i].get());
        r[2 * i].set(entry);
    });
    Some(id)
}

/// The string of an id [`id`] returned.
#[inline]
pub(crate) fn get(id: u16) -> Option<&'static str> {
    STRINGS.get(usize::from(id))?.get().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_id_and_long_ones_get_none() {
        let a = id("user_id").unwrap();
        let b = id(&String::from("user_id")).unwrap();
        assert_eq!(a, b);
        assert_eq!(get(a), Some("user_id"));
        assert_eq!(id(&"x".repeat(MAX_LEN + 1)), None);
        for i in 0..100 {
            let s = format!("k{i}");
            let got = id(&s).map(|n| get(n).unwrap());
            assert!(got.is_none_or(|g| g == s), "{s}");
        }
    }

    #[test]
    fn a_reused_address_never_returns_the_old_id() {
        let mut s = String::from("first_key");
        let first = id(&s).unwrap();
        // Same buffer, same length, other text.
        s.replace_range(.., "other_key");
        let other = id(&s).unwrap();
        assert_ne!(first, other);
        assert_eq!(get(other), Some("other_key"));
    }

    #[test]
    fn a_static_lookup_never_trusts_an_entry_a_freed_string_left() {
        // A short-lived key is looked up, then its memory holds another text, which is leaked and
        // looked up as a `'static` string at the same address and length.
        let mut s = String::from("first_kee");
        let first = id(&s).unwrap();
        s.replace_range(.., "other_kee");
        let leaked: &'static str = s.leak();
        let other = id_static(leaked).unwrap();
        assert_ne!(first, other);
        assert_eq!(get(other), Some("other_kee"));
        // And once made by a static lookup, the entry is trusted by the next one.
        assert_eq!(id_static(leaked), Some(other));
    }

    #[test]
    fn the_word_comparison_agrees_with_slice_equality() {
        let texts: Vec<String> = (0..=20)
            .flat_map(|n| {
                let base = "abcdefghijklmnopqrstu"[..n].to_owned();
                let mut variants = vec![base.clone()];
                for i in 0..n {
                    let mut b = base.clone().into_bytes();
                    b[i] = b'Z';
                    variants.push(String::from_utf8(b).unwrap());
                }
                variants
            })
            .collect();
        for a in &texts {
            for b in &texts {
                assert_eq!(same_text(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
        }
    }
}
