//! The spool: in `failover` mode, the records OTLP could not deliver, kept on disk in the log
//! directory and replayed to the collector when it answers again, also after a restart; in
//! `durable` mode, every record, written before it is sent.
//!
//! # On disk (in `LOG_DIR`, with `name` = `LOG_FILE_NAME`, default `app.log`)
//!
//! | file | content |
//! |---|---|
//! | `name` | the active segment: JSON lines (the format of `export::file::format`), appended to |
//! | `name.spool.NNNNNNNNNNNN` | closed segments; a larger number is newer |
//! | `name.spool.cursor` | `SEQ OFFSET`: every record of segments before `SEQ`, and of segment `SEQ` before byte `OFFSET`, was acknowledged by the collector; then one `SEQ START END RECORDS` line per span acknowledged ahead of it ([`acks`]) |
//! | `name.lock` | locked (`flock`) by the one process that owns the spool |
//!
//! The active segment's number is the one it gets when it is closed (`next_seq`), so a position
//! in it stays valid across its closing.
//!
//! # Invariants
//! 1. One record is one line ending in `\n`, written as part of one `write` call per batch (a
//!    [`Span`]). A torn tail (a crash mid-write) is a last line with no `\n` or a line that is not
//!    a valid record: it is skipped and counted (`corrupt_skipped`), and replay goes on.
//! 2. Replay reads closed segments only, oldest first, skipping spans acknowledged live and
//!    stopping at spans on their way live. The active segment is closed (renamed to the next
//!    number) when it reaches the segment size, when replay has nothing older to read, and at
//!    start, so a segment is never read while it is written.
//! 3. The cursor moves only over what the collector acknowledged (a replayed batch, or spans sent
//!    live), and is written to a temporary file then renamed. A closed segment is deleted once the
//!    cursor passed its end. A crash between an acknowledgement and the cursor write sends that
//!    batch again: the duplicate bound is one replayed batch, or the live batches in flight, per
//!    crash.
//! 4. The spool's total size stays within `LOG_SPOOL_MAX_BYTES` (plus one batch): before a batch is
//!    appended, the oldest closed segments are deleted until it fits (never one being replayed or
//!    holding a span on its way live), and their unacknowledged records counted as dropped
//!    (`spool_full`).
//! 5. Only one process uses a spool: a second one pointed at the same directory and name fails at
//!    start with an error naming the lock file.
//! 6. Syncing follows `LOG_SPOOL_FSYNC` ([`SpoolFsync`]): data after each append or at the
//!    interval, closed segments before they are renamed, the cursor and the directory entries at
//!    the same moments. A replayed batch's cursor is always synced before it replaces the old one.

pub(crate) mod acks;
mod read;
mod sync;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{FileConfig, SpoolFsync};
use crate::export::file::fs::{create_dir, open_append, with_path};
use crate::stats::{Counters, DropReason};
use acks::Acks;
pub(crate) use acks::Span;
use sync::{Unsynced, sync_dir};

const SEGMENT_INFIX: &str = ".spool.";

/// Size at which a batch, live or replayed, is cut whatever its count. The test comes before each
/// record, so a batch can pass it by one record (at most about 1.3 MiB: the message and attribute
/// bounds), and stays under the 4 MiB a gRPC server accepts by default.
pub(crate) const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    size: u64,
    /// Records written into it by this process; `None` for a segment found at start.
    records: Option<u64>,
}

/// What an append is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Append {
    /// Left for replay (counted as `spooled`).
    Backlog,
    /// Written ahead of a live export: settled with [`Spool::land`].
    Ahead,
}

/// What became of a span written ahead, once its export ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Landed {
    /// Its records are counted where the export says (delivered, or left for replay).
    Kept,
    /// Its segment is gone (removed from under the spool): an undelivered batch must be written
    /// again.
    Gone,
}

pub(crate) struct Spool {
    dir: PathBuf,
    name: String,
    file_mode: u32,
    segment_max: u64,
    total_max: u64,
    service_name: String,
    counters: Arc<Counters>,
    _lock: File,
    active: File,
    active_size: u64,
    closed: VecDeque<Segment>,
    next_seq: u64,
    acks: Acks,
    buf: Vec<u8>,
    /// Records in the active segment, written by this process.
    active_records: u64,
    /// Of those, the ones delivered live.
    active_delivered: u64,
    dir_mode: u32,
    /// The segment a replay batch was read from and not yet acknowledged or abandoned: never removed
    /// to make room, so its records are not counted both as `spool_full` and as replayed.
    reading: Option<u64>,
    fsync: SpoolFsync,
    unsynced: Unsynced,
    /// A cursor moved by live deliveries is written at most this long after it moved.
    cursor_delay: Duration,
    /// When the cursor first moved without being written since.
    cursor_pending: Option<Instant>,
    /// The last error of a sync, for the worker to report.
    sync_error: Option<io::Error>,
}

impl Spool {
    /// Opens the spool in `config.dir`, taking its lock; closes a segment left active by an earlier
    /// process so it is replayed. Errors name the path concerned.
    pub(crate) fn open(
        config: &FileConfig,
        service_name: &str,
        counters: Arc<Counters>,
    ) -> io::Result<Spool> {
        let dir = config.dir.clone();
        create_dir(&dir, config.dir_mode)
            .map_err(|e| with_path(e, "cannot create log directory", &dir))?;
        let lock = take_lock(&dir, &config.name, config.file_mode)?;
        let mut closed: Vec<Segment> = Vec::new();
        let prefix = format!("{}{SEGMENT_INFIX}", config.name);
        for entry in
            fs::read_dir(&dir).map_err(|e| with_path(e, "cannot read log directory", &dir))?
        {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(seq) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            closed.push(Segment {
                records: None,
                seq,
                size: entry.metadata()?.len(),
            });
        }
        closed.sort_by_key(|s| s.seq);
        let cursor_path = dir.join(format!("{}{SEGMENT_INFIX}cursor", config.name));
        let (mut acks, named_next) = fs::read_to_string(&cursor_path)
            .map(|t| Acks::decode(&t))
            .unwrap_or_default();
        // The cursor may point into the active segment (write-ahead), whose number the cursor
        // file names; a file of an earlier version never did.
        let next_seq = closed
            .last()
            .map_or(1, |s| s.seq + 1)
            .max(named_next.unwrap_or(acks.cursor().0 + 1))
            .max(1);
        let active_path = dir.join(&config.name);
        let has_cursor = cursor_path.exists();
        if !has_cursor && fs::metadata(&active_path).is_ok_and(|m| m.len() > 0) {
            // Every spool writes its cursor file when it opens, so a non-empty active file without
            // one was written by something else (the plain log of `tee` or `file-only` mode): it
            // is set aside, not replayed as if it were undelivered.
            let aside = dir.join(format!(
                "{}.not-spooled.{}",
                config.name,
                crate::clock::now_unix_nanos() / 1_000_000_000
            ));
            fs::rename(&active_path, &aside)
                .map_err(|e| with_path(e, "cannot set aside", &active_path))?;
            eprintln!(
                "otel-log-bridge: {} was not written by the spool (another LOG_MODE?); moved to {} and not replayed",
                active_path.display(),
                aside.display()
            );
        }
        let active = open_append(&active_path, config.file_mode)
            .map_err(|e| with_path(e, "cannot open spool file", &active_path))?;
        let active_size = active.metadata()?.len();
        if acks.cursor().0 == next_seq && acks.cursor().1 > active_size {
            // Not the file the cursor was written for: every line of it is unacknowledged.
            acks = Acks::new((next_seq, 0));
        }
        // Spans of segments deleted after the cursor was written count for nothing, and so do
        // spans past the end of their file (a file made again since: its lines are not those).
        acks.retain_spans(|seq, end| {
            if seq == next_seq {
                end <= active_size
            } else {
                closed.iter().any(|s| s.seq == seq && end <= s.size)
            }
        });
        let mut spool = Spool {
            dir,
            name: config.name.clone(),
            file_mode: config.file_mode,
            segment_max: config.max_bytes,
            total_max: config.spool_max_bytes,
            service_name: service_name.to_owned(),
            counters,
            _lock: lock,
            active,
            active_size,
            closed: closed.into(),
            next_seq,
            acks,
            buf: Vec::new(),
            reading: None,
            active_records: 0,
            active_delivered: 0,
            dir_mode: config.dir_mode,
            fsync: config.spool_fsync,
            unsynced: Unsynced {
                data: false,
                cursor: false,
                dir: false,
                last_sync: Instant::now(),
            },
            sync_error: None,
            cursor_delay: config.spool_max_delay,
            cursor_pending: None,
        };
        if spool.active_size > 0 {
            spool.close_active()?;
        }
        // Segments the cursor passed were acknowledged before a crash: remove them.
        spool.settle_cursor()?;
        spool
            .write_cursor(true)
            .map_err(|e| with_path(e, "cannot write the spool cursor in", &spool.dir))?;
        spool.publish_size();
        Ok(spool)
    }

    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir
            .join(format!("{}{SEGMENT_INFIX}{seq:012}", self.name))
    }

    fn active_path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// The path of the active segment, for messages.
    pub(crate) fn path(&self) -> PathBuf {
        self.active_path()
    }

    fn total_size(&self) -> u64 {
        self.active_size + self.closed.iter().map(|s| s.size).sum::<u64>()
    }

    /// Publishes the bytes not yet acknowledged (backlog and spans on their way); acknowledged
    /// lines stay on disk until their segment is closed and passed.
    fn publish_size(&self) {
        let unacked = self.past_cursor().saturating_sub(self.acks.ahead_bytes());
        self.counters.set_spool_bytes(unacked);
    }

    /// Bytes from the cursor to the end of the active segment.
    fn past_cursor(&self) -> u64 {
        let (seq, offset) = self.acks.cursor();
        let closed: u64 = self
            .closed
            .iter()
            .filter(|s| s.seq >= seq)
            .map(|s| {
                if s.seq == seq {
                    s.size.saturating_sub(offset)
                } else {
                    s.size
                }
            })
            .sum();
        let active = if seq == self.next_seq {
            self.active_size.saturating_sub(offset)
        } else {
            self.active_size
        };
        closed + active
    }

    /// Whether records wait to be replayed: past the cursor, neither acknowledged ahead of it nor
    /// on their way live.
    pub(crate) fn has_backlog(&self) -> bool {
        self.past_cursor() > self.acks.not_backlog_bytes()
    }

    /// Appends `batch` (tests; the worker writes its records in place with [`Spool::append_lines`]).
    #[cfg(test)]
    pub(crate) fn append(&mut self, batch: &[crate::record::LogEvent]) -> io::Result<()> {
        self.append_lines(batch.len(), Append::Backlog, |buf, service_name| {
            for e in batch {
                crate::export::file::format::encode(&e.record(), service_name, None, buf);
            }
        })
        .map(|_| ())
    }

    /// Appends `records` records, which `write` writes as JSON lines into the buffer it is given
    /// (with the spool's service name); makes room first by dropping the oldest segments if the
    /// spool is full. Returns where they lie (`None` for no records); an [`Append::Ahead`] span is
    /// on its way live until [`Spool::land`].
    pub(crate) fn append_lines(
        &mut self,
        records: usize,
        kind: Append,
        write: impl FnOnce(&mut Vec<u8>, &str),
    ) -> io::Result<Option<Span>> {
        if records == 0 {
            return Ok(None);
        }
        self.recover_if_removed()?;
        self.buf.clear();
        write(&mut self.buf, &self.service_name);
        let len = self.buf.len() as u64;
        if self.active_size > 0 && self.active_size + len > self.segment_max {
            self.close_active()?;
        }
        let mut deleted = false;
        while self.total_size() + len > self.total_max {
            let Some(i) = self
                .closed
                .iter()
                .position(|s| Some(s.seq) != self.reading && !self.acks.flying_in(s.seq))
            else {
                break;
            };
            let lost = self.unacked_records_of(i);
            self.delete_at(i)?;
            self.counters.add_dropped(DropReason::SpoolFull, lost);
            deleted = true;
        }
        if deleted {
            self.settle_cursor()?;
            self.write_cursor_by_policy()?;
        }
        if let Err(e) = self.active.write_all(&self.buf) {
            // Cut a partial batch off again, so no torn line is left for the next append to be
            // glued onto; the whole batch is reported as not spooled.
            let _ = self.active.set_len(self.active_size);
            self.publish_size();
            return Err(e);
        }
        let span = Span {
            seq: self.next_seq,
            start: self.active_size,
            end: self.active_size + len,
            records: records as u64,
        };
        self.active_size += len;
        self.active_records += records as u64;
        self.publish_size();
        match kind {
            Append::Backlog => self.counters.add_spooled(records as u64),
            Append::Ahead => self.acks.fly(span),
        }
        match self.fsync {
            SpoolFsync::Always => {
                if let Err(e) = self.active.sync_data() {
                    self.sync_error = Some(e);
                }
            }
            SpoolFsync::Every(_) => self.unsynced.data = true,
            _ => {}
        }
        Ok(Some(span))
    }

    /// A span written ahead of a live export: its export ended, `delivered` or not. Delivered,
    /// the collector has it (the cursor moves over it, now or once it reaches it); not, it stays
    /// for replay (counted as `spooled`).
    pub(crate) fn land(&mut self, span: Span, delivered: bool) -> Landed {
        if !self.acks.land(span, delivered) {
            return Landed::Gone;
        }
        if !delivered {
            self.counters.add_spooled(span.records);
            self.publish_size();
            return Landed::Kept;
        }
        if span.seq == self.next_seq {
            self.active_delivered += span.records;
        }
        if let Err(e) = self.settle_cursor() {
            self.sync_error = Some(e);
        }
        // Written within the spool delay ([`Spool::maintain`]): a crash sends again at most what
        // was delivered in that time, and a busy pipeline writes its cursor a hundred times a
        // second, not once per batch.
        self.cursor_pending.get_or_insert_with(Instant::now);
        self.publish_size();
        Landed::Kept
    }

    /// Deletes the closed segments the cursor passed, and keeps the cursor on a segment that
    /// exists (or the active one).
    fn settle_cursor(&mut self) -> io::Result<()> {
        loop {
            let (seq, offset) = self.acks.cursor();
            match self.closed.front() {
                Some(front) if front.seq < seq || (front.seq == seq && offset >= front.size) => {
                    let next = front.seq + 1;
                    self.delete_at(0)?;
                    self.acks.next_segment(next);
                }
                Some(front) if front.seq > seq => self.acks.next_segment(front.seq),
                None if seq < self.next_seq => self.acks.next_segment(self.next_seq),
                _ => return Ok(()),
            }
        }
    }

    /// If the active file (or the whole directory) was removed from under the spool, what was
    /// written to it is gone: the records left for replay are counted as lost (`io_error`), spans
    /// on their way live land as [`Landed::Gone`], and the directory, the active file, the lock
    /// and the cursor are made again, so spooling goes on.
    fn recover_if_removed(&mut self) -> io::Result<()> {
        if self.active_path().exists() {
            return Ok(());
        }
        // Neither delivered live nor on its way (the worker still has those): left for replay.
        let lost = self
            .active_records
            .saturating_sub(self.active_delivered)
            .saturating_sub(self.acks.flying_records(self.next_seq));
        if lost > 0 {
            self.counters.add_dropped(DropReason::IoError, lost);
        }
        self.acks.forget(self.next_seq);
        // A new file gets a new number: positions in the old one mean nothing in it. The cursor
        // naming that number is written before the file is made, so a crash in between leaves
        // no cursor that would read the new file with the old one's positions.
        self.next_seq += 1;
        self.active_records = 0;
        self.active_delivered = 0;
        self.active_size = 0;
        create_dir(&self.dir, self.dir_mode)
            .map_err(|e| with_path(e, "cannot create log directory", &self.dir))?;
        let lock_path = self.dir.join(format!("{}.lock", self.name));
        if !lock_path.exists() {
            // The lock file went with the directory: take a new one. (Our lock on the old file
            // still holds if only the active file was removed; locking again would block on it.)
            self._lock = take_lock(&self.dir, &self.name, self.file_mode)?;
        }
        self.settle_cursor()?;
        self.write_cursor(true)?;
        self.active = open_append(&self.active_path(), self.file_mode)?;
        self.publish_size();
        Ok(())
    }

    fn close_active(&mut self) -> io::Result<()> {
        if self.active_size == 0 {
            return Ok(());
        }
        if self.fsync != SpoolFsync::Off {
            self.active.sync_data()?;
            self.unsynced.data = false;
        }
        let seq = self.next_seq;
        fs::rename(self.active_path(), self.segment_path(seq))?;
        self.next_seq += 1;
        self.closed.push_back(Segment {
            seq,
            size: self.active_size,
            records: Some(self.active_records),
        });
        // The records are in the closed segment now, whatever happens to the new active file.
        self.active_size = 0;
        self.active_records = 0;
        self.active_delivered = 0;
        self.active = open_append(&self.active_path(), self.file_mode)?;
        self.dir_changed();
        // The cursor names the active segment's number, which just moved on.
        self.write_cursor_by_policy()
    }

    fn delete_at(&mut self, i: usize) -> io::Result<()> {
        if let Some(s) = self.closed.remove(i) {
            self.acks.forget(s.seq);
            match fs::remove_file(self.segment_path(s.seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.dir_changed();
        }
        self.publish_size();
        Ok(())
    }

    /// Writes the cursor to a temporary file renamed into place; with `sync`, the file is synced
    /// before the rename (a power loss must not leave an empty one) and the directory after it.
    /// Writes the cursor, synced as `LOG_SPOOL_FSYNC` says: now (`always`), at the interval, or by
    /// the kernel (`off`).
    fn write_cursor_by_policy(&mut self) -> io::Result<()> {
        self.write_cursor(self.fsync == SpoolFsync::Always)?;
        if matches!(self.fsync, SpoolFsync::Every(_)) {
            self.unsynced.cursor = true;
        }
        Ok(())
    }

    fn write_cursor(&mut self, sync: bool) -> io::Result<()> {
        let pending = self.cursor_pending.take();
        let written = self.write_cursor_file(sync);
        if written.is_err() {
            // Tried again at the next maintenance.
            self.cursor_pending = pending.or(Some(Instant::now()));
        }
        written
    }

    fn write_cursor_file(&self, sync: bool) -> io::Result<()> {
        let path = self.dir.join(format!("{}{SEGMENT_INFIX}cursor", self.name));
        let tmp = self
            .dir
            .join(format!("{}{SEGMENT_INFIX}cursor.tmp", self.name));
        {
            let _ = fs::remove_file(&tmp);
            let mut f = open_append(&tmp, self.file_mode)?;
            f.write_all(self.acks.encode(self.next_seq).as_bytes())?;
            if sync {
                f.sync_all()?;
            }
        }
        fs::rename(&tmp, &path)?;
        if sync {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// Opens and locks `name.lock` in `dir`; a lock held by another process is an error saying what
/// to do.
fn take_lock(dir: &Path, name: &str, file_mode: u32) -> io::Result<File> {
    let lock_path = dir.join(format!("{name}.lock"));
    let lock = open_append(&lock_path, file_mode)
        .map_err(|e| with_path(e, "cannot open spool lock", &lock_path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "the spool in {} is in use by another process (lock {} is held); give each process its own LOG_DIR or LOG_FILE_NAME",
                dir.display(),
                lock_path.display()
            ),
        )),
        Err(fs::TryLockError::Error(e)) => Err(with_path(e, "cannot lock", &lock_path)),
    }
}

/// The directory's spool segment files, oldest first (for tests and tools).
#[allow(dead_code)]
pub(crate) fn segment_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}{SEGMENT_INFIX}");
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix(&prefix))
                        .is_some_and(|s| s.parse::<u64>().is_ok())
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod write_ahead_tests;
