//! Interning of targets, attribute keys and code paths. The same few strings come with almost every
//! record, so each distinct one is stored once for the life of the process and gets a small id: a
//! queued record holds the id (one byte for the first 128 strings), the worker turns it back into
//! the `&'static str` without a lock. A thread looks strings up in a small cache of its own first;
//! the process-wide table is locked only on a miss, and not at all once it is full. The table is
//! bounded ([`MAX_STRINGS`] strings, [`MAX_BYTES`] bytes, [`MAX_LEN`] a string): past it, strings
//! are copied into each record (a `'static` one is written by address instead).
//!
//! A cached entry is confirmed by comparing the text, since the memory of a freed string may hold
//! another one, except for strings that cannot change: `'static` ones the caller says are, and
//! strings inside the executable's read-only segments (string literals: the targets and keys the
//! `log` macros pass, which `log` hands over only as `&str`). Those segments are learnt once when a
//! pipeline is built ([`learn_read_only`]), never on the logging path.

use std::cell::RefCell;
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
/// Most read-only ranges of the executable remembered.
const MAX_RANGES: usize = 4;

/// The address ranges (start, end) of the executable's read-only segments, once learnt.
static READ_ONLY: OnceLock<[(usize, usize); MAX_RANGES]> = OnceLock::new();

/// Learns where the executable's read-only segments are (the program headers the loader mapped, as
/// `dl_iterate_phdr` reports them), so that string literals are recognised without comparing their
/// text. Only the loader's segments count: another read-only mapping of the same file (a backtrace
/// symbolizer's, say) may be unmapped and its addresses reused. Does nothing where that cannot be
/// read: every lookup then compares. Called when a pipeline is built.
pub(crate) fn learn_read_only() {
    READ_ONLY.get_or_init(read_only_segments);
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn read_only_segments() -> [(usize, usize); MAX_RANGES] {
    unsafe extern "C" fn first_object(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for the call, whose `dlpi_phdr` points
        // at `dlpi_phnum` program headers; `data` is the array passed below.
        unsafe {
            let info = &*info;
            let out = &mut *data.cast::<[(usize, usize); MAX_RANGES]>();
            if !info.dlpi_phdr.is_null() {
                let headers =
                    std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum));
                let segments = headers
                    .iter()
                    .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0)
                    .map(|h| {
                        let start = (info.dlpi_addr as usize).wrapping_add(h.p_vaddr as usize);
                        (start, start.saturating_add(h.p_memsz as usize))
                    });
                for (slot, range) in out.iter_mut().zip(segments) {
                    *slot = range;
                }
            }
        }
        // The first object is the program itself: stop there.
        1
    }
    let mut ranges = [(0usize, 0usize); MAX_RANGES];
    // SAFETY: the callback only reads what it is given and writes `ranges`, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(first_object),
            (&mut ranges as *mut [(usize, usize); MAX_RANGES]).cast(),
        );
    }
    ranges
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn read_only_segments() -> [(usize, usize); MAX_RANGES] {
    [(0, 0); MAX_RANGES]
}

/// Whether `s` lies in a read-only segment of the executable: its text never changes.
#[inline]
fn is_read_only(s: &str) -> bool {
    let (start, end) = (s.as_ptr() as usize, s.as_ptr() as usize + s.len());
    READ_ONLY
        .get()
        .is_some_and(|r| r.iter().any(|&(a, b)| a <= start && end <= b))
}

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
    /// freed may hold another one, unless both the entry and the lookup are of strings that cannot
    /// change (`'static`, or in a read-only segment).
    static RECENT: RefCell<[[Entry; 2]; SETS]> = const { RefCell::new([[Entry::EMPTY; 2]; SETS]) };
}

fn global(s: &str) -> Option<u16> {
    if FULL.load(Ordering::Acquire) {
        return FROZEN.get().and_then(|t| t.get(s)).copied();
    }
    let mut guard = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let table = guard.get_or_insert_with(|| Table {
        ids: HashMap::new(),
        bytes: 0,
    });
    if let Some(found) = table.ids.get(s) {
        return Some(*found);
    }
    if table.ids.len() >= MAX_STRINGS || table.bytes + s.len() > MAX_BYTES {
        let _ = FROZEN.set(table.ids.clone());
        FULL.store(true, Ordering::Release);
        return None;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    let id = table.ids.len() as u16;
    let _ = STRINGS[usize::from(id)].set(leaked);
    table.bytes += s.len();
    table.ids.insert(leaked, id);
    Some(id)
}

/// A cached lookup: the string's address and length, its id, and whether the string was known to
/// be `'static` (only such an entry is trusted without comparing the text, and only by a lookup of
/// a `'static` string: a freed string's memory may later hold another one, even a leaked one).
#[derive(Clone, Copy)]
struct Entry {
    addr: usize,
    len: usize,
    id: u16,
    is_static: bool,
}

impl Entry {
    const EMPTY: Entry = Entry {
        addr: 0,
        len: 0,
        id: 0,
        is_static: false,
    };
}

fn set(s: &str) -> usize {
    let h = ((s.as_ptr() as usize as u64) ^ (s.len() as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 58) as usize & (SETS - 1)
}

/// The id of `s`, interning it if there is room; `None` if it is too long or the table is full.
#[inline]
pub(crate) fn id(s: &str) -> Option<u16> {
    lookup(s, false)
}

/// [`id`] for a string known to live as long as the process: a cache entry made by such a lookup
/// for its address is taken without comparing the text (memory of a `'static` string is never
/// reused for another).
#[inline]
pub(crate) fn id_static(s: &'static str) -> Option<u16> {
    lookup(s, true)
}

#[inline]
fn lookup(s: &str, is_static: bool) -> Option<u16> {
    if s.len() > MAX_LEN {
        return None;
    }
    let is_static = is_static || is_read_only(s);
    let i = set(s);
    let addr = s.as_ptr() as usize;
    let cached = RECENT
        .try_with(|r| {
            // Busy only if a `Display` logs in the middle of a lookup: then skip the cache.
            let r = r.try_borrow().ok()?;
            r[i].iter()
                .find(|e| {
                    e.addr == addr
                        && e.len == s.len()
                        && ((is_static && e.is_static) || get(e.id) == Some(s))
                })
                .map(|e| e.id)
        })
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    let id = global(s)?;
    let _ = RECENT.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            let entry = Entry {
                addr,
                len: s.len(),
                id,
                is_static,
            };
            r[i] = [entry, r[i][0]];
        }
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
    fn literals_are_read_only_and_heap_strings_are_not() {
        learn_read_only();
        assert!(is_read_only("payment.service"));
        let heap = String::from("payment.service");
        assert!(!is_read_only(&heap));
        let leaked: &'static str = heap.leak();
        assert!(!is_read_only(leaked));
        let ranges = READ_ONLY.get().unwrap();
        assert!(ranges.iter().any(|&(a, b)| a < b), "{ranges:x?}");
    }
}
