//! The worker thread: drains the queue into batches and sends them to the [`sinks`]; in `failover`
//! mode it also spools what OTLP cannot take and replays the spool when the collector answers
//! again. Its decisions on collector health, probing, replay pacing, poison batches, spilling and
//! shutdown deadlines are made by the pure state machine in [`policy`]; when to export, by
//! [`batch`]. It never logs through `log`, and anything logged on it is discarded by the logger.
//!
//! While any export waits on the network, the queue is spilled to the spool above
//! [`policy::spill_threshold`], so a hanging collector never fills the queue.

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
use crate::export::otlp::{InFlight, OtlpExporter};
use crate::internal::mark_internal_thread;
use crate::record::queued::Checked;
use crate::spool::{MAX_BATCH_BYTES, Spool};
use crate::stats::{DropReason, Output};
use batch::Batcher;
use link::Link;
use policy::{Attempt, Failover, LiveVerdict};
use sinks::Sinks;
use write::{Diagnostics, keep_for_otlp, records, spill, spool_records, take, write_locals};

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
}

/// At least this long is given, at shutdown, to producers that claimed a slot before the close to
/// publish it.
const LAST_GRACE: Duration = Duration::from_millis(200);

/// What the worker does while an export waits; `true` abandons the export.
type Idle<'a> = Box<dyn FnMut() -> bool + 'a>;

/// Most live batches on their way to the collector at once.
const MAX_IN_FLIGHT: usize = 2;

/// A live batch on its way to the collector while the worker goes on with the next one.
struct Flight {
    flight: InFlight,
    records: Vec<Checked>,
    /// Failover rules apply to its outcome (spool on failure, collector health).
    failover: bool,
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
        // The batch is assembled only when it is due, so the worker holds no records while it
        // sleeps, and a producer's "a full batch is queued" test (the queue's length) is exact.
        let now = Instant::now();
        if w.batcher
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
        let wake_at = w
            .policy
            .probe_at(backlog)
            .map_or(now + w.batcher.sleep_for(now), |p| {
                p.min(now + w.batcher.sleep_for(now))
            });
        w.link.sleep_until(wake_at);
    }
}

impl Worker {
    /// Moves queued records into the batch until it is full or the queue is empty.
    fn fill(&mut self) {
        while !self.batch_full() {
            match take(&self.link) {
                Some(q) => self.push_batch(q),
                None => break,
            }
        }
        self.publish_in_flight();
    }

    /// Publishes how many records the worker holds (the batch being filled and those in flight).
    fn publish_in_flight(&self) {
        let flying: usize = self.flights.iter().map(|f| f.records.len()).sum();
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
        self.batch.clear();
        self.batch_bytes = 0;
    }

    /// Exports everything enqueued before the call, in batches, each bounded by `deadline`. Records
    /// pushed after the call are left for the normal schedule, so a busy application cannot make a
    /// flush last forever.
    fn drain(&mut self, deadline: Instant) {
        let target = self.link.queue.pushed();
        loop {
            while !self.batch_full() && self.link.queue.popped() < target {
                match take(&self.link) {
                    Some(q) => self.push_batch(q),
                    // A slot claimed before the call is being written: it is published without any
                    // code of the caller's, so wait for it (bounded by the deadline).
                    None if Instant::now() < deadline => std::thread::yield_now(),
                    None => break,
                }
            }
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
            self.write_locals();
            if self.sinks.otlp.is_some() {
                self.keep_for_otlp();
            }
            let n = self.batch.len() as u64;
            if !self.spool_current() && !self.sinks.has_destination() {
                self.link.counters.add_dropped(DropReason::Shutdown, n);
            }
            self.clear_batch();
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
        self.write_locals();
        if self.sinks.otlp.is_some() {
            self.keep_for_otlp();
            if !self.batch.is_empty() {
                self.send_live(self.sinks.spool.is_some());
            }
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
        }) = self.flights.pop_front()
        else {
            return;
        };
        let outcome = self.wait(flight, failover);
        let n = records.len() as u64;
        self.count_failed_attempt(&outcome, n);
        match outcome {
            ExportOutcome::Delivered { rejected } => {
                if failover {
                    self.policy.live(Instant::now(), Attempt::Delivered);
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
                self.spool(&records);
            }
        }
        records.clear();
        if self.spare.capacity() < records.capacity() {
            self.spare = records;
        }
        self.publish_in_flight();
    }

    /// Waits for `flight`; with `spill_queue`, spools the queue's excess meanwhile.
    fn wait(&mut self, flight: InFlight, spill_queue: bool) -> ExportOutcome {
        match self.exporter(spill_queue) {
            Some((otlp, mut idle)) => otlp.wait(flight, &mut *idle),
            None => ExportOutcome::Failed {
                reason: "no OTLP exporter".into(),
                permanent: true,
            },
        }
    }

    /// The exporter, with what to do while an export waits: with `spill_queue` (and a spool),
    /// spill the queue's excess to it; else only watch for the shutdown's abort.
    fn exporter(&mut self, spill_queue: bool) -> Option<(&mut OtlpExporter, Idle<'_>)> {
        let link = &self.link;
        let batch_size = self.batcher.max_size();
        let Sinks {
            otlp,
            locals,
            spool,
            otlp_filter,
            service_name,
            redactor,
        } = &mut self.sinks;
        let (lines, diag) = (&mut self.lines, &mut self.diag);
        let idle: Idle<'_> = match (spill_queue, spool.as_mut()) {
            (true, Some(spool)) => Box::new(move || {
                let sinks = (
                    &mut locals[..],
                    &mut *spool,
                    service_name.as_str(),
                    &*redactor,
                );
                spill(link, sinks, otlp_filter, batch_size, lines, diag)
            }),
            _ => Box::new(|| link.abort_exports()),
        };
        Some((otlp.as_mut()?, idle))
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

    /// Spools `batch`; `false` when there is no spool (not `failover`).
    fn spool(&mut self, batch: &[Checked]) -> bool {
        let Some(spool) = self.sinks.spool.as_mut() else {
            return false;
        };
        spool_records(
            &self.link,
            spool,
            batch,
            &self.sinks.redactor,
            &mut self.diag,
        );
        true
    }

    /// Spools the current batch; `false` when there is no spool.
    fn spool_current(&mut self) -> bool {
        let batch = std::mem::take(&mut self.batch);
        let spooled = self.spool(&batch);
        self.batch = batch;
        spooled
    }
}
