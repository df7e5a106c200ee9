//! What an event's callsite gives every event of it, kept per thread: the interned ids of its
//! target, module, file and first field names, and whether it was given a name. Found by the
//! address of the callsite's `'static` metadata, which is never freed, so no other callsite ever
//! has it; ids once handed out never change meaning. Only copied in and out of the cache (a
//! `Debug` that emits an event while one is captured uses it too).

use std::cell::Cell;

use tracing_core::Metadata;

use super::super::KeyId;
use super::{MESSAGE, Settings, given_name};
use crate::record::names;
use crate::record::queued::Writer;

/// Entries of each thread's cache (a power of two).
const SITES: usize = 64;
/// Fields of a callsite whose names' ids are kept with it; the others' are looked up.
const SITE_KEYS: usize = 8;
/// No id: the string is not interned (too long, or the table is full: for ever), or absent.
const NO_ID: u16 = u16::MAX;
const _: () = assert!(names::MAX_STRINGS < NO_ID as usize);
const TARGET: usize = 0;
const MODULE: usize = 1;
const FILE: usize = 2;
const KEYS: usize = 3;

#[derive(Clone, Copy)]
pub(super) struct Site {
    /// The metadata's address; 0 in an empty entry.
    meta: usize,
    /// Target, module, file, then the names of the first [`SITE_KEYS`] fields by index.
    ids: [u16; KEYS + SITE_KEYS],
    /// The module and file were looked up (only when the code location is kept: they would
    /// otherwise fill the process's table of names for nothing).
    located: bool,
    /// The callsite was given a name (`info!(name: ...)`).
    named: bool,
}

impl Site {
    const EMPTY: Site = Site {
        meta: 0,
        ids: [NO_ID; KEYS + SITE_KEYS],
        located: false,
        named: false,
    };
}

thread_local! {
    static RECENT: [Cell<Site>; SITES] = const { [const { Cell::new(Site::EMPTY) }; SITES] };
}

fn id_of(s: Option<&'static str>) -> u16 {
    s.and_then(names::id_static).unwrap_or(NO_ID)
}

fn known(id: u16) -> Option<u16> {
    (id != NO_ID).then_some(id)
}

impl Site {
    /// The callsite of `meta`, from this thread's cache or looked up (and cached).
    pub(super) fn of(meta: &'static Metadata<'static>, code_location: bool) -> Site {
        let addr = std::ptr::from_ref(meta) as usize;
        let i = ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize & (SITES - 1);
        let hit = |s: &Site| s.meta == addr && (s.located || !code_location);
        if let Ok(site) = RECENT.try_with(|c| c[i].get())
            && hit(&site)
        {
            return site;
        }
        let mut site = Site {
            meta: addr,
            ids: [NO_ID; KEYS + SITE_KEYS],
            located: code_location,
            named: given_name(meta).is_some(),
        };
        site.ids[TARGET] = id_of(Some(meta.target()));
        if code_location {
            site.ids[MODULE] = id_of(meta.module_path());
            site.ids[FILE] = id_of(meta.file());
        }
        // The message is the body, never a key.
        for field in meta.fields().iter().filter(|f| f.name() != MESSAGE) {
            if field.index() < SITE_KEYS {
                site.ids[KEYS + field.index()] = id_of(Some(field.name()));
            }
        }
        let _ = RECENT.try_with(|c| c[i].set(site));
        site
    }

    /// Writes the callsite's target, module, file and line.
    pub(super) fn write(
        &self,
        w: &mut Writer<'_>,
        settings: &Settings<'_>,
        meta: &'static Metadata<'static>,
    ) {
        w.target(known(self.ids[TARGET]), meta.target());
        if settings.code_location {
            w.module(meta.module_path().map(|m| (known(self.ids[MODULE]), m)));
            w.file(meta.file().map(|f| (known(self.ids[FILE]), f)));
            if let Some(l) = meta.line() {
                w.line(l);
            }
        }
    }

    /// The name the callsite was given.
    pub(super) fn name(&self, meta: &'static Metadata<'static>) -> Option<&'static str> {
        self.named.then(|| meta.name())
    }

    /// How the key of the callsite's field at `index` is written.
    pub(super) fn key(&self, index: usize) -> KeyId {
        if index < SITE_KEYS {
            KeyId::Known(known(self.ids[KEYS + index]))
        } else {
            KeyId::Lookup
        }
    }
}
