//! What the worker writes to the spool before it knows an export's outcome: in `durable` mode
//! every batch before it is sent, and in both spooling modes, from the first failed attempt
//! until a delivery, everything it holds. The rules of when are the policy's
//! ([`Failover::spool_promptly`](super::policy::Failover::spool_promptly)); this is the mechanism.

use std::time::{Duration, Instant};

use super::Worker;
use super::Written;
use super::write::{keep_for_otlp, spill, spool_records, take, write_locals};
use crate::export::otlp::Retrying;
use crate::record::queued::Checked;
use crate::spool::{Append, Landed, MAX_BATCH_BYTES, Span};

/// Most records written ahead and held in memory for their export (`durable`), as a multiple of
/// the queue's capacity; past it, the oldest batches are left for replay, so a collector slower
/// than the application costs disk reads, not unbounded memory.
const MAX_WRITTEN_QUEUES: usize = 1;

/// The records of a batch whose export is waited for, where they were written ahead, and whether
/// an attempt of that export failed.
pub(super) struct Held<'a> {
    pub records: &'a [Checked],
    pub span: &'a mut Option<Span>,
    pub retrying: Retrying,
}

/// Most batches one call of the idle work moves from the queue to the spool: the export being
/// waited for is looked at again between calls, whatever the rate of the application.
const MAX_BATCHES_PER_TICK: usize = 16;

impl Worker {
    /// The batch delay now: half the spool delay while records must reach the spool promptly (a
    /// record waits at most that long in the queue, and its batch's writing takes the rest).
    pub(super) fn delay(&self) -> Duration {
        let prompt = self.sinks.spool.is_some() && (self.durable || self.policy.spool_promptly());
        if prompt {
            self.schedule_delay.min(self.spool_max_delay / 2)
        } else {
            self.schedule_delay
        }
    }

    /// Writes the spool's cursor and syncs it when due; returns when it is next due.
    pub(super) fn sync_spool(&mut self, now: Instant) -> Option<Instant> {
        let spool = self.sinks.spool.as_mut()?;
        if spool.due().is_some_and(|at| at <= now) {
            spool.maintain(now, false);
        }
        if let Some(e) = spool.take_sync_error() {
            let msg = format!("could not sync the spool {}: {e}", spool.path().display());
            self.diag.report(&self.link, &msg);
        }
        self.sinks.spool.as_ref()?.due()
    }

    /// Takes the oldest batch written ahead as the current batch, if the current one is empty.
    pub(super) fn take_written(&mut self) -> bool {
        if !self.batch.is_empty() {
            return false;
        }
        let Some(w) = self.written.pop_front() else {
            return false;
        };
        self.written_records -= w.records.len();
        self.batch_bytes = w.records.iter().map(Checked::approx_size).sum();
        self.batch = w.records;
        self.batch_span = w.span;
        self.batch_ready = true;
        self.publish_in_flight();
        true
    }

    /// Writes `records` to the spool ahead of their export; `None` if there is no spool or the
    /// write failed (reported; the records are still in memory).
    pub(super) fn write_ahead(&mut self, records: &[Checked]) -> Option<Span> {
        let spool = self.sinks.spool.as_mut()?;
        let kind = (&self.sinks.redactor, Append::Ahead);
        spool_records(&self.link, spool, records, kind, &mut self.diag)
            .ok()
            .flatten()
    }

    /// Writes the current batch ahead, if it is not written yet; a batch not ready yet is made
    /// ready first (its local outputs written, the exporter's threshold applied: it is then sent
    /// as it is, nothing added).
    pub(super) fn write_ahead_current(&mut self) {
        if !self.batch_ready && !self.batch.is_empty() {
            self.write_locals();
            if self.sinks.otlp.is_some() {
                self.keep_for_otlp();
            }
            self.batch_ready = true;
        }
        if self.batch_span.is_none() && !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.batch_span = self.write_ahead(&batch);
            self.batch = batch;
        }
    }

    /// Leaves `records` for replay: already written ahead at `span`, or appended now. `false`
    /// when there is no spool.
    pub(super) fn leave_for_replay(&mut self, records: &[Checked], span: Option<Span>) -> bool {
        let Some(spool) = self.sinks.spool.as_mut() else {
            return false;
        };
        if let Some(span) = span
            && spool.land(span, false) == Landed::Kept
        {
            return true;
        }
        let kind = (&self.sinks.redactor, Append::Backlog);
        let _ = spool_records(&self.link, spool, records, kind, &mut self.diag);
        true
    }

    /// What the worker does while an export waits (every few milliseconds); `true` abandons the
    /// export (shutdown is near its deadline). With `spool_queue` (the spooling modes):
    /// - from a failed attempt until a delivery, everything the worker holds is written to the
    ///   spool (its exports go on) and the queue is drained to it at least every half spool delay;
    /// - in `durable` mode, the queue is written ahead at least every half spool delay;
    /// - otherwise the queue is spilled above the spill threshold.
    pub(super) fn tick(&mut self, spool_queue: bool, held: Option<&mut Held<'_>>) -> bool {
        if !spool_queue || self.sinks.spool.is_none() {
            return self.link.abort_exports();
        }
        let failing = held.as_ref().is_some_and(|h| h.retrying.get())
            || self.flights.iter().any(|f| f.flight.failed_once());
        if failing {
            self.policy.attempt_failed();
        }
        let now = Instant::now();
        self.sync_spool(now);
        if self.policy.spool_promptly() {
            if let Some(h) = held
                && h.span.is_none()
            {
                *h.span = self.write_ahead(h.records);
            }
            let mut flights = std::mem::take(&mut self.flights);
            for f in flights
                .iter_mut()
                .filter(|f| f.failover && f.span.is_none())
            {
                f.span = self.write_ahead(&f.records);
            }
            self.flights = flights;
            self.write_ahead_current();
            self.drain_to_spool_if_due(now, true);
        } else if self.durable {
            self.drain_to_spool_if_due(now, true);
        } else {
            self.spill_queue(false);
        }
        self.link.abort_exports()
    }

    /// When records must reach the spool promptly (`durable`, or `failover` from a failed
    /// attempt) and half the spool delay passed since the queue was last emptied: moves it to the
    /// spool (written ahead in `durable`, as backlog in `failover`), at most
    /// [`MAX_BATCHES_PER_TICK`] batches a call. Not `waiting` on an export, at a collector's probe
    /// time in `failover`, the queue is left for the probe: a live delivery is what ends an outage
    /// (and a replay paused by a refusal).
    pub(super) fn drain_to_spool_if_due(&mut self, now: Instant, waiting: bool) {
        if self.sinks.spool.is_none()
            || now.saturating_duration_since(self.last_drain) < self.spool_max_delay / 2
        {
            return;
        }
        if self.durable {
            // Written ahead and held: sent live (a probe included), or left for replay while the
            // collector is down.
            self.write_ahead_queue();
        } else if self.policy.spool_promptly() {
            if !waiting && self.policy.probing() && self.policy.may_try(now) {
                return;
            }
            self.spill_queue(true);
        }
    }

    /// Spills the queue to the spool as backlog: all of it, or what is above the spill threshold.
    fn spill_queue(&mut self, all: bool) {
        let Some(spool) = self.sinks.spool.as_mut() else {
            return;
        };
        let sinks = (
            &mut self.sinks.locals[..],
            spool,
            self.sinks.service_name.as_str(),
            &self.sinks.redactor,
        );
        let size = (self.batcher.max_size(), all, MAX_BATCHES_PER_TICK);
        let spilled = spill(
            &self.link,
            sinks,
            &self.sinks.otlp_filter,
            size,
            &mut self.lines,
            &mut self.diag,
        );
        if all && spilled {
            self.last_drain = Instant::now();
        }
    }

    /// `durable`: moves the whole queue into batches written ahead (local outputs written, the
    /// exporter's threshold applied), held for export; past [`MAX_WRITTEN_QUEUES`] queues' worth
    /// the oldest are left for replay.
    fn write_ahead_queue(&mut self) {
        let bound = self.link.queue.capacity() * MAX_WRITTEN_QUEUES;
        let mut emptied = false;
        for _ in 0..MAX_BATCHES_PER_TICK {
            let from = self.link.queue.popped();
            let mut records = Vec::with_capacity(self.batcher.max_size());
            let mut bytes = 0;
            // Cut as a live batch is: by count, and by size under what a collector accepts.
            while records.len() < self.batcher.max_size() && bytes < MAX_BATCH_BYTES {
                match take(&self.link) {
                    Some(q) => {
                        bytes += q.approx_size();
                        records.push(q);
                    }
                    None => {
                        emptied = true;
                        break;
                    }
                }
            }
            self.link.room_made();
            if records.is_empty() {
                break;
            }
            write_locals(
                &self.link,
                &mut self.sinks.locals,
                &records,
                (&self.sinks.service_name, &self.sinks.redactor),
                &mut self.lines,
                &mut self.diag,
            );
            keep_for_otlp(&self.link, &self.sinks.otlp_filter, &mut records);
            if records.is_empty() {
                continue;
            }
            let span = self.write_ahead(&records);
            self.written_records += records.len();
            self.written.push_back(Written {
                records,
                from,
                span,
            });
            while self.written_records > bound {
                if let Some(w) = self.written.pop_front() {
                    self.written_records -= w.records.len();
                    self.leave_for_replay(&w.records, w.span);
                }
            }
            if emptied {
                break;
            }
        }
        if emptied {
            self.last_drain = Instant::now();
        }
        self.publish_in_flight();
    }
}
