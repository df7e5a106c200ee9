//! What an event's callsite gives every event of it, kept per thread: the interned ids of its
//! target, module, file and first field names (with what each field is: the message, a plain
//! attribute, or one whose name means more), and whether it was given a name. Found by the
//! address of the callsite's `'static` metadata, which is never freed, so no other callsite ever
//! has it; ids once handed out never change meaning. Only copied in and out of the cache (a
//! `Debug` that emits an event while one is captured uses it too).

use std::cell::Cell;

use tracing_core::Metadata;

use super::super::{EVENT_NAME, EXCEPTION_MESSAGE};
use super::{MESSAGE, Settings, given_name};
use crate::record::names;
use crate::record::queued::Writer;

/// Entries of each thread's cache (a power of two).
const SITES: usize = 64;
/// Fields of a callsite whose names' ids are kept with it; the others' are looked up.
const SITE_KEYS: usize = 8;
/// No id: the string is not interned (too long, or the table is full: for ever), or absent.
const NO_ID: u16 = u16::MAX;
/// A field's entry: the message.
const IS_MESSAGE: u16 = u16::MAX - 1;
/// A field's entry: a name that means more than a key (`event.name`, `exception.message`).
const IS_SPECIAL: u16 = u16::MAX - 2;
const _: () = assert!(names::MAX_STRINGS < IS_SPECIAL as usize);
const TARGET: usize = 0;
const MODULE: usize = 1;
const FILE: usize = 2;
const KEYS: usize = 3;

#[derive(Clone, Copy)]
pub(super) struct Site {
    /// The metadata's address; 0 in an empty entry.
    meta: usize,
    /// Target, module, file, then the names of the first [`SITE_KEYS`] fields by index (or
    /// [`IS_MESSAGE`], [`IS_SPECIAL`]).
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
    /// Where the callsite of `meta` goes in this thread's cache, and its address.
    fn slot(meta: &'static Metadata<'static>) -> (usize, usize) {
        let addr = std::ptr::from_ref(meta) as usize;
        let i = ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize & (SITES - 1);
        (i, addr)
    }

    /// The callsite of `meta` if this thread's cache has it (only callsites of `tracing`'s own
    /// events are cached: not those of `log` records that `tracing-log` made events of).
    #[inline]
    pub(super) fn cached(meta: &'static Metadata<'static>, code_location: bool) -> Option<Site> {
        let (i, addr) = Site::slot(meta);
        let site = RECENT.try_with(|c| c[i].get()).ok()?;
        (site.meta == addr && (site.located || !code_location)).then_some(site)
    }

    /// The callsite of `meta` (that of an event of `tracing`'s own), looked up and cached.
    pub(super) fn of(meta: &'static Metadata<'static>, code_location: bool) -> Site {
        let (i, addr) = Site::slot(meta);
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
        for field in meta.fields().iter().filter(|f| f.index() < SITE_KEYS) {
            site.ids[KEYS + field.index()] = match field.name() {
                // The message is the body, never a key.
                MESSAGE => IS_MESSAGE,
                EVENT_NAME | EXCEPTION_MESSAGE => IS_SPECIAL,
                name => id_of(Some(name)),
            };
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

    /// What the callsite's field at `index` is.
    pub(super) fn role(&self, index: usize) -> Role {
        match self.ids.get(KEYS + index) {
            Some(&IS_MESSAGE) => Role::Message,
            Some(&IS_SPECIAL) | None => Role::Unknown,
            Some(&id) => Role::Attribute(known(id)),
        }
    }
}

/// What a field of an event is, known from its callsite without comparing its name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Role {
    /// The message.
    Message,
    /// An attribute whose name means nothing more, its key's interned id if it has one.
    Attribute(Option<u16>),
    /// Not known (not a field of the cached callsite, or one whose name means more): found by
    /// its name.
    Unknown,
}
