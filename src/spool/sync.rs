//! Syncing the spool under `LOG_SPOOL_FSYNC`, and the deferred cursor write: what is unsynced,
//! when the next sync or cursor write is due, and doing it.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Instant;

use super::Spool;
use crate::config::SpoolFsync;

/// What is written and not yet synced, under `LOG_SPOOL_FSYNC`.
#[derive(Debug)]
pub(super) struct Unsynced {
    pub(super) data: bool,
    pub(super) cursor: bool,
    pub(super) dir: bool,
    pub(super) last_sync: Instant,
}

impl Spool {
    /// A file was created, renamed or removed: its directory entry is synced as the policy says.
    pub(super) fn dir_changed(&mut self) {
        match self.fsync {
            SpoolFsync::Always => {
                if let Err(e) = sync_dir(&self.dir) {
                    self.sync_error = Some(e);
                }
            }
            SpoolFsync::Every(_) => self.unsynced.dir = true,
            _ => {}
        }
    }

    /// When [`Spool::maintain`] has work: a cursor to write, or a sync at the interval.
    pub(crate) fn due(&self) -> Option<Instant> {
        let cursor = self.cursor_pending.map(|t| t + self.cursor_delay);
        cursor.into_iter().chain(self.sync_due()).min()
    }

    fn sync_due(&self) -> Option<Instant> {
        let SpoolFsync::Every(interval) = self.fsync else {
            return None;
        };
        let u = &self.unsynced;
        (u.data || u.cursor || u.dir).then(|| u.last_sync + interval)
    }

    /// Writes the cursor moved by live deliveries once the spool delay passed since it moved, and
    /// syncs what is unsynced at the fsync interval; with `all` (shutdown), both now.
    pub(crate) fn maintain(&mut self, now: Instant, all: bool) {
        if let Some(moved) = self.cursor_pending
            && (all || now >= moved + self.cursor_delay)
            && let Err(e) = self.write_cursor_by_policy()
        {
            self.sync_error = Some(e);
        }
        let u = &self.unsynced;
        let unsynced = u.data || u.cursor || u.dir;
        let sync = match self.fsync {
            SpoolFsync::Every(interval) => unsynced && (all || now >= u.last_sync + interval),
            _ => false,
        };
        if sync {
            self.sync(now);
        }
    }

    /// Syncs what is unsynced: data, cursor, directory entries.
    fn sync(&mut self, now: Instant) {
        let result = (|| {
            if self.unsynced.data {
                self.active.sync_data()?;
            }
            if self.unsynced.cursor {
                self.write_cursor(true)
            } else if self.unsynced.dir {
                sync_dir(&self.dir)
            } else {
                Ok(())
            }
        })();
        match result {
            Ok(()) => {
                self.unsynced = Unsynced {
                    data: false,
                    cursor: false,
                    dir: false,
                    last_sync: now,
                };
            }
            Err(e) => {
                self.unsynced.last_sync = now;
                self.sync_error = Some(e);
            }
        }
    }

    /// The last sync error since the last call, for the worker to report.
    pub(crate) fn take_sync_error(&mut self) -> Option<io::Error> {
        self.sync_error.take()
    }
}

/// Makes the directory's entries (created, renamed, removed files) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}
