//! Reading the spool back: replay batches from the cursor, their acknowledgement, and the count
//! of what a deleted segment held.

use std::fs::File;
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom};

use super::{MAX_BATCH_BYTES, Spool};
use crate::export::file::format;
use crate::record::LogEvent;
use crate::stats::DropReason;

/// Most bytes of JSON lines read into one replay batch, before its last line (the same bound as a
/// live batch; a record is never larger in protobuf than in JSON).
const MAX_REPLAY_BATCH_BYTES: u64 = MAX_BATCH_BYTES as u64;

/// Records read back from the spool, to be acknowledged with [`Spool::ack`] once delivered.
pub(crate) struct ReplayBatch {
    pub events: Vec<LogEvent>,
    seq: u64,
    /// Where it was read from and to, in segment `seq`.
    start: u64,
    end: u64,
    /// Lines that could not be read back (torn or corrupt), skipped.
    corrupt: u64,
    /// Whether `end` is the end of the segment.
    finished: bool,
}

impl ReplayBatch {
    /// Where the batch lies in the spool: the same records read again give the same id.
    pub(crate) fn id(&self) -> (u64, u64) {
        (self.seq, self.end)
    }

    /// Whether acknowledging it moves the cursor (it passed a line, or the end of its segment).
    pub(crate) fn moved(&self) -> bool {
        self.end > self.start || self.finished
    }
}

impl Spool {
    /// Records of closed segment `i` not acknowledged: counted when it is deleted to make room.
    pub(super) fn unacked_records_of(&self, i: usize) -> u64 {
        let Some(s) = self.closed.get(i) else {
            return 0;
        };
        let not_backlog = self.acks.not_backlog_records(s.seq);
        let cursor = self.acks.cursor();
        let offset = if cursor.0 == s.seq {
            cursor.1
        } else if let Some(n) = s.records {
            // Closed by this process and not read from yet: its count is known.
            return n.saturating_sub(not_backlog);
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
        let lines = data.iter().filter(|b| **b == b'\n').count() as u64;
        lines.saturating_sub(not_backlog)
    }

    /// Reads up to `max` records from the oldest unacknowledged position, skipping the spans
    /// delivered live and stopping before one on its way live.
    pub(crate) fn next_batch(&mut self, max: usize) -> io::Result<Option<ReplayBatch>> {
        if self.closed.is_empty() {
            self.recover_if_removed()?;
            self.close_active()?;
        }
        self.settle_cursor()?;
        let (segment, file) = loop {
            let Some(segment) = self.closed.front().cloned() else {
                return Ok(None);
            };
            match File::open(self.segment_path(segment.seq)) {
                Ok(f) => break (segment, f),
                // Removed by someone else: nothing left to replay from it; what this process had
                // written there and not seen acknowledged is counted as lost.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let lost = segment.records.unwrap_or(0).saturating_sub(
                        self.acks.not_backlog_records(segment.seq) + self.acks.behind(segment.seq),
                    );
                    if lost > 0 {
                        self.counters.add_dropped(DropReason::IoError, lost);
                    }
                    self.delete_at(0)?;
                    self.settle_cursor()?;
                }
                Err(e) => return Err(e),
            }
        };
        let cursor = self.acks.cursor();
        let offset = if cursor.0 == segment.seq { cursor.1 } else { 0 };
        let mut reader = BufReader::new(file);
        reader.seek(SeekFrom::Start(offset))?;
        let mut batch = ReplayBatch {
            events: Vec::with_capacity(max.min(4096)),
            seq: segment.seq,
            start: offset,
            end: offset,
            corrupt: 0,
            finished: false,
        };
        let mut line = Vec::new();
        // Bounded by bytes as well as count, so a replayed request stays under the 4 MiB a gRPC
        // server accepts by default (JSON lines are larger than the same records in protobuf).
        while batch.events.len() < max && batch.end - offset < MAX_REPLAY_BATCH_BYTES {
            if self.acks.is_flying(segment.seq, batch.end) {
                // On its way live: its outcome decides; the batch ends before it.
                break;
            }
            if let Some(end) = self.acks.delivered_until(segment.seq, batch.end) {
                // Delivered live already: passed over, not sent again.
                reader.seek_relative((end - batch.end) as i64)?;
                batch.end = end;
                continue;
            }
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

    /// Gives a batch back unacknowledged: it is read again next time.
    pub(crate) fn abandon(&mut self, _batch: &ReplayBatch) {
        self.reading = None;
    }

    /// Records that `batch` was delivered (or given up): moves the cursor past it, persists it
    /// (synced, whatever the fsync policy: replay acknowledgements are few, and a synced cursor
    /// bounds what a power loss sends twice), and deletes the segment when it is done.
    pub(crate) fn ack(&mut self, batch: &ReplayBatch) -> io::Result<()> {
        self.reading = None;
        if batch.corrupt > 0 {
            self.counters.add_corrupt(batch.corrupt);
        }
        let read = batch.events.len() as u64 + batch.corrupt;
        self.acks.advance((batch.seq, batch.end), read);
        if batch.finished {
            self.acks.next_segment(batch.seq + 1);
        }
        self.settle_cursor()?;
        self.publish_size();
        self.write_cursor(true)
    }
}
