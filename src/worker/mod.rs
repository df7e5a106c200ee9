//! The worker thread: drains the queue into batches and sends them to the [`sinks`]; in `failover`
//! mode it also spools what OTLP cannot take and replays the spool when the collector answers
//! again. Its decisions on collector health, probing, replay pacing, poison batches, spilling and
//! shutdown deadlines are made by the pure state machine in [`policy`]; when to export, by
//! [`batch`]. It never logs through `log`, and anything logged on it is discarded by the logger.
//!
//! While any export waits on the network, the queue is spilled to the spool above
//! [`policy::spill_threshold`], so a hanging collector never fills the queue. From the first failed
//! attempt until a delivery, everything the worker holds is written to the spool and the queue
//! drained to it within the spool delay; in `durable` mode every batch is written to the spool
//! before it is sent ([`ahead`]).

mod ahead;
pub(crate) mod batch;
pub(crate) mod link;
pub(crate) mod policy;
mod replay;
pub(crate) mod sinks;
mod write;

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::export::ExportOutcome;
use crate::export::otlp::InFlight;
use crate::internal::mark_internal_thread;
use crate::record::queued::Checked;
use crate::spool::{MAX_BATCH_BYTES, Span, Spool};
use crate::stats::{DropReason, Output};
use batch::Batcher;
use link::Link;
use policy::{Attempt, Failover, LiveVerdict};
use sinks::Sinks;
use write::{Diagnostics, keep_for_otlp, records, take, write_locals};

/// What the worker is asked to do besides its batching.
pub(crate) enum Control {
    /// Export everything enqueued before the request, then answer.
    Flush {
        deadline: Instant,
        done: mpsc::SyncSender<()>,
    },
    /// Flush, then stop; records left when the deadline passes go to the local outputs or the
    /// spool, or are counted as dropped.
    Shutdown {
        deadline: Instant,
        done: mpsc::SyncSender<()>,
    },
}

/// The worker's settings.
pub(crate) struct Settings {
    pub batch_size: usize,
    pub schedule_delay: Duration,
    pub export_timeout: Duration,
    /// `durable` mode: every batch is written to the spool before it is sent.
    pub durable: bool,
    /// Longest a record waits before it reaches the spool, when it must.
    pub spool_max_delay: Duration,
}

/// At least this long is given, at shutdown, to producers that claimed a slot before the close to
/// publish it.
const LAST_GRACE: Duration = Duration::from_millis(200);

/// Most live batches on their way to the collector at once.
const MAX_IN_FLIGHT: usize = 2;

/// A live batch on its way to the collector while the worker goes on with the next one.
struct Flight {
    flight: InFlight,
    records: Vec<Checked>,
    /// Failover rules apply to its outcome (spool on failure, collector health).
    failover: bool,
    /// Where it was written to the spool ahead of its outcome, if it was.
    span: Option<Span>,
}

/// A batch written to the spool ahead of its export (its local outputs written, the exporter's
/// threshold applied), waiting to be sent.
struct Written {
    records: Vec<Checked>,
    /// The queue's `popped()` before its first record was taken: a flush takes it if that is
    /// before the flush's target.
    from: usize,
    /// `None` if the spool could not be written.
    span: Option<Span>,
}

struct Worker {
    link: Arc<Link>,
    sinks: Sinks,
    batch: Vec<Checked>,
    /// Approximate encoded size of `batch`.
    batch_bytes: usize,
    /// Batches in flight, oldest first: at most [`MAX_IN_FLIGHT`], so the collector always has the
    /// next batch while it answers one, and the worker's records outside the queue stay bounded.
    flights: VecDeque<Flight>,
    /// An empty batch vector kept for its capacity.
    spare: Vec<Checked>,
    batcher: Batcher,
    export_timeout: Duration,
    policy: Failover,
    diag: Diagnostics,
    lines: Vec<u8>,
    /// The current batch went to the local outputs and through the exporter's threshold already.
    batch_ready: bool,
    /// Where the current batch was written to the spool ahead of its export, if it was.
    batch_span: Option<Span>,
    /// Batches written ahead (`durable`), oldest first: at most a queue's capacity of records.
    written: VecDeque<Written>,
    /// Records in `written`.
    written_records: usize,
    durable: bool,
    schedule_delay: Duration,
    spool_max_delay: Duration,
    /// When records were last taken from the queue.
    last_drain: Instant,
}

pub(crate) fn run(
    link: Arc<Link>,
    sinks: Sinks,
    control: mpsc::Receiver<Control>,
    settings: Settings,
) {
    mark_internal_thread();
    let mut w = Worker {
        batch: Vec::with_capacity(settings.batch_size),
        batch_bytes: 0,
        flights: VecDeque::with_capacity(MAX_IN_FLIGHT),
        spare: Vec::with_capacity(settings.batch_size),
        batcher: Batcher::new(settings.batch_size, settings.schedule_delay, Instant::now()),
        link,
        sinks,
        export_timeout: settings.export_timeout,
        policy: Failover::default(),
        diag: Diagnostics::default(),
        lines: Vec::new(),
        batch_ready: false,
        batch_span: None,
        written: VecDeque::new(),
        written_records: 0,
        durable: settings.durable,
        schedule_delay: settings.schedule_delay,
        spool_max_delay: settings.spool_max_delay,
        last_drain: Instant::now(),
    };
    loop {
        match control.try_recv() {
            Ok(Control::Flush { deadline, done }) => {
                w.drain(deadline);
                let _ = done.send(());
                continue;
            }
            Ok(Control::Shutdown { deadline, done }) => {
                w.drain(deadline);
                // Ship the spool while the collector answers and time remains.
                while !w.link.abort_exports() && w.replay_one(Some(deadline)) {}
                w.last_resort(deadline.max(Instant::now() + LAST_GRACE));
                let _ = done.send(());
                return;
            }
            Err(mpsc::TryRecvError::Disconnected) => {
                w.last_resort(Instant::now() + LAST_GRACE);
                return;
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        // The records' clock keeps its anchor fresh (a new one at most every 100 ms; a call costs
        // a few readings of the clocks).
        crate::clock::calibrate();
        // The batch is assembled only when it is due, so the worker holds no records while it
        // sleeps, and a producer's "a full batch is queued" test (the queue's length) is exact.
        let now = Instant::now();
        w.batcher.set_delay(w.delay());
        let sync_at = w.sync_spool(now);
        // Whatever else the worker is busy with, the queue reaches the spool in time.
        w.drain_to_spool_if_due(now, false);
        if !w.written.is_empty()
            || w.batcher
                .should_export(w.link.queue.len() + w.batch.len(), now)
        {
            w.fill();
            if w.batch.is_empty() {
                // Only slots claimed by producers not done writing them: let them run.
                std::thread::yield_now();
                continue;
            }
            w.export_live();
            w.batcher.restart(Instant::now());
            w.replay_one(None);
            continue;
        }
        if w.replay_one(None) {
            continue;
        }
        // Nothing to send: collect the outcomes of the batches in flight before sleeping.
        if !w.flights.is_empty() {
            w.settle();
            continue;
        }
        w.batcher.idle(w.link.queue.len() + w.batch.len(), now);
        let backlog = w.sinks.spool.as_ref().is_some_and(Spool::has_backlog);
        let wake_at = [w.policy.probe_at(backlog), sync_at]
            .into_iter()
            .flatten()
            .fold(now + w.batcher.sleep_for(now), Instant::min);
        w.link.sleep_until(wake_at);
    }
}

impl Worker {
    /// Takes the oldest batch written ahead as the batch, or moves queued records into it until it
    /// is full or the queue is empty.
    fn fill(&mut self) {
        // A batch written ahead is sent as it was written: nothing is added to it.
        if self.batch_ready || self.take_written() {
            return;
        }
        let mut emptied = false;
        while !self.batch_full() {
            match take(&self.link) {
                Some(q) => self.push_batch(q),
                None => {
                    emptied = true;
                    break;
                }
            }
        }
        if emptied {
            self.last_drain = Instant::now();
        }
        self.link.room_made();
        self.publish_in_flight();
    }

    /// Publishes how many records the worker holds (the batch being filled, those written ahead
    /// and those in flight).
    fn publish_in_flight(&self) {
        let flying: usize =
            self.flights.iter().map(|f| f.records.len()).sum::<usize>() + self.written_records;
        self.link
            .counters
            .set_in_flight((self.batch.len() + flying) as u64);
    }

    /// Whether the batch is full: by count, or by size, so one request stays well under the 4 MiB
    /// a gRPC server accepts by default however large the records are.
    fn batch_full(&self) -> bool {
        self.batch.len() >= self.batcher.max_size() || self.batch_bytes >= MAX_BATCH_BYTES
    }

    fn push_batch(&mut self, q: Checked) {
        self.batch_bytes += q.approx_size();
        self.batch.push(q);
    }

    fn clear_batch(&mut self) {
        if let (Some(span), Some(spool)) = (self.batch_span.take(), self.sinks.spool.as_mut()) {
            // Written ahead and neither sent nor spooled (no path leaves one so): its records are
            // on disk, so they are left for replay rather than held as on their way forever.
            spool.land(span, false);
        }
        self.batch.clear();
        self.batch_bytes = 0;
        self.batch_ready = false;
    }

    /// Exports everything enqueued before the call, in batches, each bounded by `deadline`. Records
    /// pushed after the call are left for the normal schedule, so a busy application cannot make a
    /// flush last forever.
    fn drain(&mut self, deadline: Instant) {
        let target = self.link.queue.pushed();
        loop {
            if self.written.front().is_some_and(|w| w.from < target) {
                self.take_written();
            }
            while !self.batch_ready && !self.batch_full() && self.link.queue.popped() < target {
                match take(&self.link) {
                    Some(q) => self.push_batch(q),
                    // A slot claimed before the call is being written: it is published without any
                    // code of the caller's, so wait for it (bounded by the deadline).
                    None if Instant::now() < deadline => std::thread::yield_now(),
                    None => break,
                }
            }
            self.link.room_made();
            self.publish_in_flight();
            if self.batch.is_empty() || Instant::now() >= deadline || self.link.abort_exports() {
                break;
            }
            // The caller stops waiting at its deadline; a batch already started keeps its own
            // export timeout, so a short flush never turns a slow answer into a drop or a
            // duplicate.
            self.export_live();
        }
        self.settle();
        self.batcher.restart(Instant::now());
    }

    /// At shutdown, after the deadline: what is left goes where it costs no network time (the
    /// local outputs, the spool), else it is counted as dropped. Waits for slots claimed before the
    /// close until `grace` (they are published without any code of the caller's); a record still
    /// unpublished then is counted as dropped (`shutdown`), so none is left uncounted.
    fn last_resort(&mut self, grace: Instant) {
        self.settle();
        if self.sinks.spool.is_some() {
            // Written ahead and not sent: left for the next start's replay.
            while let Some(w) = self.written.pop_front() {
                self.written_records -= w.records.len();
                self.leave_for_replay(&w.records, w.span);
            }
            self.publish_in_flight();
        }
        loop {
            self.fill();
            if self.batch.is_empty() {
                let queue = &self.link.queue;
                if queue.popped() < queue.pushed() && Instant::now() < grace {
                    std::thread::yield_now();
                    continue;
                }
                break;
            }
            if !self.batch_ready {
                self.write_locals();
                if self.sinks.otlp.is_some() {
                    self.keep_for_otlp();
                }
            }
            let n = self.batch.len() as u64;
            if !self.spool_current() && !self.sinks.has_destination() {
                self.link.counters.add_dropped(DropReason::Shutdown, n);
            }
            self.clear_batch();
        }
        if let Some(spool) = self.sinks.spool.as_mut() {
            spool.maintain(Instant::now(), true);
        }
        let queue = &self.link.queue;
        let unpublished = queue.pushed().saturating_sub(queue.popped()) as u64;
        if unpublished > 0 {
            self.link
                .counters
                .add_dropped(DropReason::Shutdown, unpublished);
        }
    }

    /// Leaves out of the current batch what the exporter's own threshold does not take.
    fn keep_for_otlp(&mut self) {
        keep_for_otlp(&self.link, &self.sinks.otlp_filter, &mut self.batch);
    }

    /// Writes the current batch to the local outputs.
    fn write_locals(&mut self) {
        write_locals(
            &self.link,
            &mut self.sinks.locals,
            &self.batch,
            (&self.sinks.service_name, &self.sinks.redactor),
            &mut self.lines,
            &mut self.diag,
        );
    }

    /// Sends the current batch to every output; every record ends counted.
    fn export_live(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.publish_in_flight();
        if !self.batch_ready {
            self.write_locals();
            if self.sinks.otlp.is_some() {
                self.keep_for_otlp();
            }
            self.batch_ready = true;
        }
        if self.sinks.otlp.is_some() && !self.batch.is_empty() {
            self.send_live(self.sinks.spool.is_some());
        }
        self.clear_batch();
        self.publish_in_flight();
    }

    /// Sends the current batch over OTLP, overlapping with the batches before it: this one is
    /// encoded while they are on their way; if [`MAX_IN_FLIGHT`] are, the oldest one's outcome is
    /// collected first; then this one leaves.
    /// `failover`: a collector believed down gets the batch only at probe time, else it is spooled.
    /// The batch gets the whole export timeout from the moment it leaves.
    fn send_live(&mut self, failover: bool) {
        if failover && self.flights.is_empty() && !self.policy.may_try(Instant::now()) {
            self.spool_current();
            return;
        }
        if failover && (self.durable || self.policy.spool_promptly()) {
            // Written before anything can make the worker wait.
            self.write_ahead_current();
        }
        let Some(otlp) = self.sinks.otlp.as_mut() else {
            return;
        };
        let request = otlp.prepare(records(&self.batch));
        // A collector believed down is probed with one batch at a time.
        while self.flights.len() >= MAX_IN_FLIGHT
            || (failover && self.policy.probing() && !self.flights.is_empty())
        {
            self.settle_oldest();
        }
        let now = Instant::now();
        if failover && !self.policy.may_try(now) {
            self.spool_current();
            return;
        }
        let mut deadline = policy::deadline_after(now, self.export_timeout);
        if failover {
            deadline = self.policy.deadline(now, deadline);
        }
        if let Some(otlp) = self.sinks.otlp.as_mut() {
            let flight = otlp.send(request, deadline);
            let records = std::mem::replace(&mut self.batch, std::mem::take(&mut self.spare));
            self.flights.push_back(Flight {
                flight,
                records,
                failover,
                span: self.batch_span.take(),
            });
        }
    }

    /// Waits for every batch in flight and accounts for every record of them.
    fn settle(&mut self) {
        while !self.flights.is_empty() {
            self.settle_oldest();
        }
    }

    /// Waits for the oldest batch in flight, if any, and accounts for every record of it.
    fn settle_oldest(&mut self) {
        let Some(Flight {
            flight,
            mut records,
            failover,
            mut span,
        }) = self.flights.pop_front()
        else {
            return;
        };
        let held = ahead::Held {
            records: &records,
            span: &mut span,
            retrying: flight.retrying(),
        };
        let outcome = self.wait(flight, failover, Some(held));
        let n = records.len() as u64;
        self.count_failed_attempt(&outcome, n);
        match outcome {
            ExportOutcome::Delivered { rejected } => {
                if failover {
                    self.policy.live(Instant::now(), Attempt::Delivered);
                }
                if let (Some(span), Some(spool)) = (span, self.sinks.spool.as_mut()) {
                    spool.land(span, true);
                }
                self.delivered(n, rejected, false);
            }
            ExportOutcome::Failed { reason, .. } if !failover => self.export_failed(n, &reason),
            ExportOutcome::Failed { reason, permanent } => {
                let attempt = if permanent {
                    Attempt::Refused
                } else {
                    Attempt::Failed
                };
                // A failed attempt is never delivered: the verdict is to spool.
                let verdict = self.policy.live(Instant::now(), attempt);
                debug_assert_eq!(verdict, LiveVerdict::Spool);
                let what = if permanent {
                    "refused the batch"
                } else {
                    "unavailable"
                };
                let msg = format!("collector {what} ({reason}); spooling to disk");
                self.diag.report(&self.link, &msg);
                self.leave_for_replay(&records, span);
            }
        }
        records.clear();
        if self.spare.capacity() < records.capacity() {
            self.spare = records;
        }
        self.publish_in_flight();
    }

    /// Waits for `flight`, doing the worker's spooling meanwhile ([`Worker::tick`]); `held` is
    /// the flight's records, written to the spool if a retry starts.
    fn wait(
        &mut self,
        flight: InFlight,
        spool_queue: bool,
        mut held: Option<ahead::Held<'_>>,
    ) -> ExportOutcome {
        // Out of the worker while it waits, so the idle work can borrow the rest.
        let Some(mut otlp) = self.sinks.otlp.take() else {
            return ExportOutcome::Failed {
                reason: "no OTLP exporter".into(),
                permanent: true,
            };
        };
        let outcome = otlp.wait(flight, &mut || self.tick(spool_queue, held.as_mut()));
        self.sinks.otlp = Some(otlp);
        outcome
    }

    /// An export attempt of `n` records that failed counts as the exporter's `failed`.
    fn count_failed_attempt(&self, outcome: &ExportOutcome, n: u64) {
        if matches!(outcome, ExportOutcome::Failed { .. }) {
            self.link.counters.add_output_failed(Output::Otlp, n);
        }
    }

    fn delivered(&mut self, n: u64, rejected: u64, replay: bool) {
        let rejected = rejected.min(n);
        self.link
            .counters
            .add_output_written(Output::Otlp, n - rejected);
        if replay {
            self.link.counters.add_replayed(n - rejected);
        } else {
            self.link.counters.add_exported(n - rejected);
        }
        if rejected > 0 {
            self.link
                .counters
                .add_dropped(DropReason::Rejected, rejected);
        }
    }

    fn export_failed(&mut self, n: u64, reason: &str) {
        self.link.counters.add_dropped(DropReason::ExportFailed, n);
        let msg = format!("export of {n} records failed: {reason}");
        self.diag.report(&self.link, &msg);
    }

    /// Spools the current batch for replay; `false` when there is no spool.
    fn spool_current(&mut self) -> bool {
        let batch = std::mem::take(&mut self.batch);
        let span = self.batch_span.take();
        let spooled = self.leave_for_replay(&batch, span);
        self.batch = batch;
        spooled
    }
}
