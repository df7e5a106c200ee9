//! Interning of targets and attribute keys. The same few strings come with almost every record, so
//! each distinct one is stored once for the life of the process (`&'static str`) and a record holds
//! that reference: no allocation on the calling thread, nothing to free on the worker, and no shared
//! reference count for the two threads to fight over. A thread looks strings up in a small cache of
//! its own first; the process-wide table is locked only on a miss. The table is bounded
//! ([`MAX_STRINGS`] strings, [`MAX_BYTES`] bytes): past it, strings are simply allocated per record.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most distinct strings kept for the life of the process.
pub(crate) const MAX_STRINGS: usize = 4096;
/// Most bytes kept for the life of the process.
pub(crate) const MAX_BYTES: usize = 256 * 1024;
/// Longest string interned; longer ones are allocated per record.
const MAX_LEN: usize = 256;
/// Entries in each thread's cache.
const CACHE: usize = 32;

struct Table {
    strings: HashSet<&'static str>,
    bytes: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
/// Set once the table is full: from then on it never changes, and is read without the lock.
static FULL: AtomicBool = AtomicBool::new(false);
/// The table as it was when it filled up.
static FROZEN: std::sync::OnceLock<HashSet<&'static str>> = std::sync::OnceLock::new();

thread_local! {
    static RECENT: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

fn global(s: &str) -> Option<&'static str> {
    if FULL.load(Ordering::Acquire) {
        return FROZEN.get().and_then(|t| t.get(s)).copied();
    }
    let mut guard = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let table = guard.get_or_insert_with(|| Table {
        strings: HashSet::new(),
        bytes: 0,
    });
    if let Some(found) = table.strings.get(s) {
        return Some(found);
    }
    if table.strings.len() >= MAX_STRINGS || table.bytes + s.len() > MAX_BYTES {
        let _ = FROZEN.set(table.strings.clone());
        FULL.store(true, Ordering::Release);
        return None;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    table.bytes += s.len();
    table.strings.insert(leaked);
    Some(leaked)
}

/// `s` as a process-lifetime string when it can be kept, else an owned copy.
pub(crate) fn intern(s: &str) -> Cow<'static, str> {
    if s.len() > MAX_LEN {
        return Cow::Owned(s.to_owned());
    }
    let cached = RECENT
        .try_with(|r| {
            // Busy only if a `Display` logs in the middle of a lookup: then skip the cache.
            let r = r.try_borrow().ok()?;
            r.iter().find(|e| **e == s).copied()
        })
        .ok()
        .flatten();
    if let Some(hit) = cached {
        return Cow::Borrowed(hit);
    }
    match global(s) {
        Some(kept) => {
            let _ = RECENT.try_with(|r| {
                if let Ok(mut r) = r.try_borrow_mut() {
                    if r.len() >= CACHE {
                        r.remove(0);
                    }
                    r.push(kept);
                }
            });
            Cow::Borrowed(kept)
        }
        None => Cow::Owned(s.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_copy_and_long_ones_are_not_kept() {
        let a = intern("user_id");
        let b = intern(&String::from("user_id"));
        match (a, b) {
            (Cow::Borrowed(x), Cow::Borrowed(y)) => assert!(std::ptr::eq(x, y)),
            other => panic!("not interned: {other:?}"),
        }
        assert!(matches!(intern(&"x".repeat(MAX_LEN + 1)), Cow::Owned(_)));
        for i in 0..100 {
            assert_eq!(intern(&format!("k{i}")), format!("k{i}"));
        }
    }
}
