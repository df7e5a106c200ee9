//! The spool: in `failover` mode, the records OTLP could not deliver, kept on disk in the log
//! directory and replayed to the collector when it answers again, also after a restart.
//!
//! # On disk (in `LOG_DIR`, with `name` = `LOG_FILE_NAME`, default `app.log`)
//!
//! | file | content |
//! |---|---|
//! | `name` | the active segment: JSON lines (the format of `export::file::format`), appended to |
//! | `name.spool.NNNNNNNNNNNN` | closed segments; a larger number is newer |
//! | `name.spool.cursor` | `SEQ OFFSET`: every record of segments before `SEQ`, and of segment `SEQ` before byte `OFFSET`, was acknowledged by the collector |
//! | `name.lock` | locked (`flock`) by the one process that owns the spool |
//!
//! # Invariants
//! 1. One record is one line ending in `\n`, written as part of one `write` call per batch. A torn
//!    tail (a crash mid-write) is a last line with no `\n` or a line that is not a valid record: it is
//!    skipped and counted (`corrupt_skipped`), and replay goes on.
//! 2. Replay reads closed segments only, oldest first. The active segment is closed (renamed to the
//!    next number) when it reaches the segment size, when replay has nothing older to read, and at
//!    start, so a segment is never read while it is written.
//! 3. The cursor moves only after the collector acknowledged a replayed batch, and is written to a
//!    temporary file then renamed. A closed segment is deleted once the cursor passed its end. A crash
//!    between an acknowledgement and the cursor write replays that one batch again: the duplicate
//!    bound is one batch per restart.
//! 4. The spool's total size stays within `LOG_SPOOL_MAX_BYTES` (plus one batch): before a batch is
//!    appended, the oldest closed segments are deleted until it fits, and their unacknowledged records
//!    counted as dropped (`spool_full`).
//! 5. Only one process uses a spool: a second one pointed at the same directory and name fails at
//!    start with an error naming the lock file.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::FileConfig;
use crate::export::file::format;
use crate::export::file::fs::{create_dir, open_append, with_path};
use crate::record::LogEvent;
use crate::stats::{Counters, DropReason};

const SEGMENT_INFIX: &str = ".spool.";
/// Most bytes of JSON lines read into one replay batch, before its last line (the same bound as a
/// live batch; a record is never larger in protobuf than in JSON).
const MAX_REPLAY_BATCH_BYTES: u64 = MAX_BATCH_BYTES as u64;

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

impl ReplayBatch {
    /// Where the batch lies in the spool: the same records read again give the same id.
    pub(crate) fn id(&self) -> (u64, u64) {
        (self.seq, self.end)
    }
}

/// Records read back from the spool, to be acknowledged with [`Spool::ack`] once delivered.
pub(crate) struct ReplayBatch {
    pub events: Vec<LogEvent>,
    seq: u64,
    end: u64,
    /// Lines that could not be read back (torn or corrupt), skipped.
    corrupt: u64,
    /// Whether `end` is the end of the segment.
    finished: bool,
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
    cursor: (u64, u64),
    buf: Vec<u8>,
    /// Records in the active segment, written by this process.
    active_records: u64,
    dir_mode: u32,
    /// The segment a replay batch was read from and not yet acknowledged or abandoned: never removed
    /// to make room, so its records are not counted both as `spool_full` and as replayed.
    reading: Option<u64>,
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
        let lock_path = dir.join(format!("{}.lock", config.name));
        let lock = open_append(&lock_path, config.file_mode)
            .map_err(|e| with_path(e, "cannot open spool lock", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "the spool in {} is in use by another process (lock {} is held); give each process its own LOG_DIR or LOG_FILE_NAME",
                        dir.display(),
                        lock_path.display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(with_path(e, "cannot lock", &lock_path)),
        }
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
        let cursor = fs::read_to_string(&cursor_path)
            .ok()
            .and_then(|t| {
                let mut it = t.split_whitespace().map(|n| n.parse::<u64>().ok());
                Some((it.next()??, it.next()??))
            })
            .unwrap_or((0, 0));
        let next_seq = closed.last().map_or(1, |s| s.seq + 1).max(cursor.0 + 1);
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
            cursor,
            buf: Vec::new(),
            reading: None,
            active_records: 0,
            dir_mode: config.dir_mode,
        };
        // Segments wholly before the cursor were acknowledged before a crash: remove them.
        while spool.closed.front().is_some_and(|s| s.seq < spool.cursor.0) {
            spool.delete_oldest()?;
        }
        if spool.active_size > 0 {
            spool.close_active()?;
        }
        if !has_cursor {
            spool
                .write_cursor()
                .map_err(|e| with_path(e, "cannot write the spool cursor in", &spool.dir))?;
        }
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

    fn publish_size(&self) {
        self.counters.set_spool_bytes(self.total_size());
    }

    /// Whether records wait to be replayed.
    pub(crate) fn has_backlog(&self) -> bool {
        self.active_size > 0 || !self.closed.is_empty()
    }

    /// Appends `batch` (tests; the worker writes its records in place with [`Spool::append_lines`]).
    #[cfg(test)]
    pub(crate) fn append(&mut self, batch: &[LogEvent]) -> io::Result<()> {
        self.append_lines(batch.len(), |buf, service_name| {
            for e in batch {
                format::encode(&e.record(), service_name, None, buf);
            }
        })
    }

    /// Appends `records` records, which `write` writes as JSON lines into the buffer it is given
    /// (with the spool's service name); makes room first by dropping the oldest segments if the
    /// spool is full.
    pub(crate) fn append_lines(
        &mut self,
        records: usize,
        write: impl FnOnce(&mut Vec<u8>, &str),
    ) -> io::Result<()> {
        if records == 0 {
            return Ok(());
        }
        self.recover_if_removed()?;
        self.buf.clear();
        write(&mut self.buf, &self.service_name);
        let len = self.buf.len() as u64;
        if self.active_size > 0 && self.active_size + len > self.segment_max {
            self.close_active()?;
        }
        while self.total_size() + len > self.total_max {
            let reading = self.reading;
            let Some(i) = self.closed.iter().position(|s| Some(s.seq) != reading) else {
                break;
            };
            let lost = self.unacked_records_of(i);
            self.delete_at(i)?;
            self.counters.add_dropped(DropReason::SpoolFull, lost);
        }
        if let Err(e) = self.active.write_all(&self.buf) {
            // Cut a partial batch off again, so no torn line is left for the next append to be
            // glued onto; the whole batch is reported as not spooled.
            let _ = self.active.set_len(self.active_size);
            self.publish_size();
            return Err(e);
        }
        self.active_size += len;
        self.active_records += records as u64;
        self.publish_size();
        self.counters.add_spooled(records as u64);
        Ok(())
    }

    /// If the active file (or the whole directory) was removed from under the spool, what was
    /// written to it is gone: it is counted as lost (`io_error`), and the directory, the active file,
    /// the lock and the cursor are made again, so spooling goes on.
    fn recover_if_removed(&mut self) -> io::Result<()> {
        if self.active_path().exists() {
            return Ok(());
        }
        if self.active_records > 0 {
            self.counters
                .add_dropped(DropReason::IoError, self.active_records);
        }
        self.active_records = 0;
        self.active_size = 0;
        create_dir(&self.dir, self.dir_mode)
            .map_err(|e| with_path(e, "cannot create log directory", &self.dir))?;
        self.active = open_append(&self.active_path(), self.file_mode)?;
        let lock_path = self.dir.join(format!("{}.lock", self.name));
        if !lock_path.exists() {
            // The lock file went with the directory: take a new one. (Our lock on the old file
            // still holds if only the active file was removed; locking again would block on it.)
            let lock = open_append(&lock_path, self.file_mode)?;
            lock.try_lock().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "the spool lock {} was taken by another process",
                        lock_path.display()
                    ),
                )
            })?;
            self._lock = lock;
        }
        self.write_cursor()?;
        self.publish_size();
        Ok(())
    }

    fn close_active(&mut self) -> io::Result<()> {
        if self.active_size == 0 {
            return Ok(());
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
        self.active = open_append(&self.active_path(), self.file_mode)?;
        Ok(())
    }

    fn delete_oldest(&mut self) -> io::Result<()> {
        self.delete_at(0)
    }

    fn delete_at(&mut self, i: usize) -> io::Result<()> {
        if let Some(s) = self.closed.remove(i) {
            match fs::remove_file(self.segment_path(s.seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.publish_size();
        Ok(())
    }

    fn unacked_records_of(&self, i: usize) -> u64 {
        let Some(s) = self.closed.get(i) else {
            return 0;
        };
        let offset = if self.cursor.0 == s.seq {
            self.cursor.1
        } else if let Some(n) = s.records {
            // Closed by this process and not read from yet: its count is known.
            return n;
        } else {
            0
        };
        let Ok(mut f) = File::open(self.segment_path(s.seq)) else {
            return 0;
        };
        if f.seek(SeekFrom::Start(offset)).is_err() {
            return 0;
        }
        let mut data = Vec::new();
        let _ = f.read_to_end(&mut data);
        data.iter().filter(|b| **b == b'\n').count() as u64
    }

    /// Reads up to `max` records from the oldest unacknowledged position.
    pub(crate) fn next_batch(&mut self, max: usize) -> io::Result<Option<ReplayBatch>> {
        if self.closed.is_empty() {
            self.recover_if_removed()?;
            self.close_active()?;
        }
        let (segment, file) = loop {
            let Some(segment) = self.closed.front().cloned() else {
                return Ok(None);
            };
            match File::open(self.segment_path(segment.seq)) {
                Ok(f) => break (segment, f),
                // Removed by someone else: nothing left to replay from it; what this process had
                // written there is counted as lost.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(s) = self.closed.pop_front() {
                        let lost = if self.cursor.0 == s.seq {
                            0
                        } else {
                            s.records.unwrap_or(0)
                        };
                        if lost > 0 {
                            self.counters.add_dropped(DropReason::IoError, lost);
                        }
                    }
                    self.publish_size();
                }
                Err(e) => return Err(e),
            }
        };
        let offset = if self.cursor.0 == segment.seq {
            self.cursor.1
        } else {
            0
        };
        let mut reader = BufReader::new(file);
        reader.seek(SeekFrom::Start(offset))?;
        let mut batch = ReplayBatch {
            events: Vec::with_capacity(max.min(4096)),
            seq: segment.seq,
            end: offset,
            corrupt: 0,
            finished: false,
        };
        let mut line = Vec::new();
        // Bounded by bytes as well as count, so a replayed request stays under the 4 MiB a gRPC
        // server accepts by default (JSON lines are larger than the same records in protobuf).
        while batch.events.len() < max && batch.end - offset < MAX_REPLAY_BATCH_BYTES {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                batch.finished = true;
                break;
            }
            batch.end += n as u64;
            if line.last() != Some(&b'\n') {
                // A torn tail: the writer died mid-line.
                batch.corrupt += 1;
                batch.finished = true;
                break;
            }
            match format::decode(&line) {
                Ok(d) => batch.events.push(d.event),
                Err(_) => batch.corrupt += 1,
            }
        }
        if !batch.finished && reader.fill_buf()?.is_empty() {
            batch.finished = true;
        }
        self.reading = Some(segment.seq);
        Ok(Some(batch))
    }

    /// Records that `batch` was delivered (or given up): moves the cursor past it, persists it, and
    /// deletes the segment when it is done.
    /// Gives a batch back unacknowledged: it is read again next time.
    pub(crate) fn abandon(&mut self, _batch: &ReplayBatch) {
        self.reading = None;
    }

    pub(crate) fn ack(&mut self, batch: &ReplayBatch) -> io::Result<()> {
        self.reading = None;
        if batch.corrupt > 0 {
            self.counters.add_corrupt(batch.corrupt);
        }
        if batch.finished {
            if self.closed.front().is_some_and(|s| s.seq == batch.seq) {
                self.delete_oldest()?;
            }
            self.cursor = (batch.seq + 1, 0);
        } else {
            self.cursor = (batch.seq, batch.end);
        }
        self.write_cursor()
    }

    fn write_cursor(&self) -> io::Result<()> {
        let path = self.dir.join(format!("{}{SEGMENT_INFIX}cursor", self.name));
        let tmp = self
            .dir
            .join(format!("{}{SEGMENT_INFIX}cursor.tmp", self.name));
        {
            let _ = fs::remove_file(&tmp);
            let mut f = open_append(&tmp, self.file_mode)?;
            writeln!(f, "{} {}", self.cursor.0, self.cursor.1)?;
            // Durable before it replaces the old cursor: a power loss must not leave an empty one.
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        // Make the rename itself durable.
        File::open(&self.dir).and_then(|d| d.sync_all())
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
