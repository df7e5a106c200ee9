//! The worker thread: drains the queue into batches and sends them where the mode says; in
//! `failover` mode it also spools what OTLP cannot take and replays the spool when the collector
//! answers again. It never logs through `log`, and anything logged on it is discarded by the bridge.
//!
//! Failover state machine:
//! - `Up`: live batches go to OTLP (retries until the export timeout). A retryable failure or a
//!   timeout spools the batch and turns `Down`. Between live batches, one spooled batch is replayed,
//!   so replay never starves live records and vice versa.
//! - `Down`: live batches go straight to the spool at disk speed. At the next probe time (backoff
//!   250 ms doubling to 5 s) one batch, live or spooled, is tried with a short timeout; success turns
//!   `Up`.
//! - While any export waits on the network, the queue is spilled to the spool whenever it holds more
//!   than one batch, so a hanging collector never fills the queue.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::batch::Batcher;
use super::{Control, Shared};
use crate::config::Mode;
use crate::export::ExportOutcome;
use crate::export::file::format;
use crate::export::file::rotate::RotatingFile;
use crate::export::otlp::{InFlight, OtlpExporter};
use crate::internal::mark_internal_thread;
use crate::record::queued::Queued;
use crate::record::{LogEvent, Record, Value};
use crate::spool::{MAX_BATCH_BYTES, Spool};
use crate::stats::DropReason;

pub(crate) struct Settings {
    pub batch_size: usize,
    pub schedule_delay: Duration,
    pub export_timeout: Duration,
}

/// Where batches go.
pub(crate) struct Sinks {
    pub mode: Mode,
    pub otlp: Option<OtlpExporter>,
    pub file: Option<RotatingFile>,
    pub spool: Option<Spool>,
    pub stdout: bool,
    pub service_name: String,
}

/// A record's encoded size, roughly: its strings, its numbers at 8 bytes, and a fixed overhead.
fn approx_size(r: &Record<'_>) -> usize {
    let names = r.target.len() + r.module.map_or(0, str::len) + r.file.map_or(0, str::len);
    let attributes: usize = r
        .attributes
        .iter()
        .map(|(k, v)| {
            k.name.len()
                + match v {
                    Value::Str(s) => s.len(),
                    _ => 8,
                }
                + 8
        })
        .sum();
    r.body.len() + names + attributes + 96
}

/// Takes the oldest queued record that can be read, with its approximate size; one that cannot
/// be read is counted ([`DropReason::Unreadable`]) and dropped.
fn take(shared: &Shared) -> Option<(Queued, usize)> {
    loop {
        let q = shared.queue.pop()?;
        match q.record() {
            Ok(r) => {
                let size = approx_size(&r);
                return Some((q, size));
            }
            Err(_) => shared.counters.add_dropped(DropReason::Unreadable, 1),
        }
    }
}

/// The records of a batch, read (each was read once when it was taken from the queue).
fn records(batch: &[Queued]) -> impl Iterator<Item = Record<'_>> {
    batch.iter().filter_map(|q| q.record().ok())
}

/// Minimum interval between two diagnostics written to stderr.
const DIAGNOSTIC_INTERVAL: Duration = Duration::from_secs(30);
const PROBE_INITIAL: Duration = Duration::from_millis(250);
const PROBE_MAX: Duration = Duration::from_secs(5);
/// How long replay waits, at most, after a refusal or a read error before it tries again even with
/// no live success (an idle application must not keep its spool forever).
const REPLAY_PAUSE: Duration = Duration::from_secs(30);
/// Bound on one probe of a collector believed down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Up,
    Down {
        next_probe: Instant,
        backoff: Duration,
    },
}

impl Health {
    fn should_try(&self, now: Instant) -> bool {
        match self {
            Health::Up => true,
            Health::Down { next_probe, .. } => now >= *next_probe,
        }
    }

    fn failed(&mut self, now: Instant) {
        let backoff = match *self {
            Health::Up => PROBE_INITIAL,
            Health::Down { backoff, .. } => (backoff * 2).min(PROBE_MAX),
        };
        *self = Health::Down {
            next_probe: now + backoff,
            backoff,
        };
    }

    /// The deadline for an attempt at `now`: short while probing.
    fn deadline(&self, now: Instant, deadline: Instant) -> Instant {
        match self {
            Health::Up => deadline,
            Health::Down { .. } => deadline.min(now + PROBE_TIMEOUT),
        }
    }
}

/// Most live batches on their way to the collector at once.
const MAX_IN_FLIGHT: usize = 2;

/// A live batch on its way to the collector while the worker goes on with the next one.
struct Flight {
    flight: InFlight,
    events: Vec<Queued>,
    /// Failover rules apply to its outcome (spool on failure, collector health).
    failover: bool,
}

struct Worker {
    shared: Arc<Shared>,
    sinks: Sinks,
    batch: Vec<Queued>,
    /// Batches in flight, oldest first: at most [`MAX_IN_FLIGHT`], so the collector always has the
    /// next batch while it answers one, and the worker's records outside the queue stay bounded.
    flights: VecDeque<Flight>,
    /// An empty batch vector kept for its capacity.
    spare: Vec<Queued>,
    batcher: Batcher,
    export_timeout: Duration,
    health: Health,
    last_diagnostic: Option<Instant>,
    lines: Vec<u8>,
    /// Approximate encoded size of `batch`.
    batch_bytes: usize,
    /// Whether a live batch was delivered since the collector last refused a batch for good.
    live_ok_since_refusal: bool,
    /// Replay waits for a live batch to be accepted (or [`REPLAY_PAUSE`] to pass) after the collector
    /// refused a spooled batch or the spool could not be read.
    replay_paused: Option<Instant>,
    /// The spooled batch the collector last refused for good.
    refused_batch: Option<(u64, u64)>,
}

pub(crate) fn run(
    shared: Arc<Shared>,
    sinks: Sinks,
    control: mpsc::Receiver<Control>,
    settings: Settings,
) {
    mark_internal_thread();
    let mut w = Worker {
        batch: Vec::with_capacity(settings.batch_size),
        flights: VecDeque::with_capacity(MAX_IN_FLIGHT),
        spare: Vec::with_capacity(settings.batch_size),
        batcher: Batcher::new(settings.batch_size, settings.schedule_delay, Instant::now()),
        shared,
        sinks,
        export_timeout: settings.export_timeout,
        health: Health::Up,
        last_diagnostic: None,
        lines: Vec::new(),
        batch_bytes: 0,
        live_ok_since_refusal: false,
        replay_paused: None,
        refused_batch: None,
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
                while !w.shared.abort_exports() && w.replay_one(Some(deadline)) {}
                w.last_resort();
                let _ = done.send(());
                return;
            }
            Err(mpsc::TryRecvError::Disconnected) => {
                w.last_resort();
                return;
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        // The batch is assembled only when it is due, so the worker holds no records while it
        // sleeps, and a producer's "a full batch is queued" test (the queue's length) is exact.
        let now = Instant::now();
        if w.batcher
            .should_export(w.shared.queue.len() + w.batch.len(), now)
        {
            w.fill();
            if w.batch.is_empty() {
                // Only slots claimed by producers not done writing them: let them run.
                std::thread::park_timeout(Duration::from_micros(200));
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
        w.batcher.idle(w.shared.queue.len() + w.batch.len(), now);
        let mut sleep = w.batcher.sleep_for(now);
        if let Health::Down { next_probe, .. } = w.health
            && w.replay_paused.is_none()
            && w.sinks.spool.as_ref().is_some_and(Spool::has_backlog)
        {
            sleep = sleep.min(next_probe.saturating_duration_since(now));
        }
        // Announce the sleep, then look again, so a producer that filled a batch meanwhile is not
        // missed (it reads `worker_sleeping` after its push, behind a fence that pairs with this one).
        w.shared.worker_sleeping.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        if w.shared.queue.len() < w.batcher.max_size() {
            std::thread::park_timeout(sleep);
        }
        w.shared.worker_sleeping.store(false, Ordering::SeqCst);
    }
}

/// Moves queued records to the spool while an export waits and the queue is more than half full,
/// down to half: memory absorbs bursts while the collector keeps up, the disk takes over when it does
/// not. Returns whether the export should be abandoned (shutdown is near its deadline).
fn spill(
    shared: &Shared,
    spool: &mut Spool,
    batch_size: usize,
    stdout: &mut Option<(&mut Vec<u8>, &str)>,
) -> bool {
    // Below the shedding watermark, so spilling starts before any INFO record is refused.
    let threshold = (shared.queue.capacity() / 2)
        .min(shared.queue.high_watermark().saturating_sub(1))
        .max(batch_size);
    while shared.queue.len() > threshold {
        let mut spilled = Vec::with_capacity(batch_size);
        while spilled.len() < batch_size {
            match take(shared) {
                Some((q, _)) => spilled.push(q),
                None => break,
            }
        }
        if spilled.is_empty() {
            // Claimed by a producer but not filled yet: nothing to move now.
            break;
        }
        if let Some((buf, service)) = stdout {
            write_stdout(shared, &spilled, service, buf);
        }
        if spool
            .append_lines(spilled.len(), |buf, service| {
                encode_lines(shared, &spilled, service, buf);
            })
            .is_err()
        {
            let n = spilled.len() as u64;
            shared.counters.add_dropped(DropReason::IoError, n);
            break;
        }
    }
    shared.abort_exports()
}

/// Appends `records` as JSON lines to `out`, secret values masked.
fn encode_lines(shared: &Shared, records: &[Queued], service_name: &str, out: &mut Vec<u8>) {
    for r in self::records(records) {
        format::encode(&r, service_name, Some(shared.redactor()), out);
    }
}

/// Writes `records` to stdout as JSON lines (the `LOG_STDOUT` sink), formatted into `buf`.
fn write_stdout(shared: &Shared, records: &[Queued], service_name: &str, buf: &mut Vec<u8>) {
    buf.clear();
    encode_lines(shared, records, service_name, buf);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(buf).and_then(|()| out.flush());
}

impl Worker {
    /// Moves queued records into the batch until it is full or the queue is empty.
    fn fill(&mut self) {
        while !self.batch_full() {
            match take(&self.shared) {
                Some((q, size)) => self.push_batch(q, size),
                None => break,
            }
        }
        self.publish_in_flight();
    }

    /// Publishes how many records the worker holds (the batch being filled and those in flight).
    fn publish_in_flight(&self) {
        let flying: usize = self.flights.iter().map(|f| f.events.len()).sum();
        self.shared
            .counters
            .set_in_flight((self.batch.len() + flying) as u64);
    }

    /// Whether the batch is full: by count, or by size, so one request stays well under the 4 MiB
    /// a gRPC server accepts by default however large the records are.
    fn batch_full(&self) -> bool {
        self.batch.len() >= self.batcher.max_size() || self.batch_bytes >= MAX_BATCH_BYTES
    }

    fn push_batch(&mut self, q: Queued, size: usize) {
        self.batch_bytes += size;
        self.batch.push(q);
    }

    /// Exports everything enqueued before the call, in batches, each bounded by `deadline`. Records
    /// pushed after the call are left for the normal schedule, so a busy application cannot make a flush
    /// last forever.
    fn drain(&mut self, deadline: Instant) {
        let target = self.shared.queue.pushed();
        loop {
            while !self.batch_full() && self.shared.queue.popped() < target {
                match take(&self.shared) {
                    Some((q, size)) => self.push_batch(q, size),
                    None => break,
                }
            }
            self.publish_in_flight();
            if self.batch.is_empty() || Instant::now() >= deadline || self.shared.abort_exports() {
                break;
            }
            // The caller stops waiting at its deadline; a batch already started keeps its own export
            // timeout, so a short flush never turns a slow answer into a drop or a duplicate.
            self.export_live();
        }
        self.settle();
        self.batcher.restart(Instant::now());
    }

    /// At shutdown, after the deadline: what is left goes where it costs no network time (the spool or
    /// the file), else it is counted as dropped.
    fn last_resort(&mut self) {
        // A producer may have claimed a slot just before the close and not written it yet: give it
        // a moment, so its record is handled rather than silently freed with the queue.
        self.settle();
        let grace = Instant::now() + Duration::from_millis(50);
        loop {
            self.fill();
            if self.batch.is_empty() {
                if self.shared.queue.len() > 0 && Instant::now() < grace {
                    std::thread::yield_now();
                    continue;
                }
                break;
            }
            let n = self.batch.len() as u64;
            match self.sinks.mode {
                Mode::Failover => self.spool_current(),
                Mode::FileOnly => self.write_file(true, false),
                Mode::Tee => {
                    self.write_file(false, false);
                    self.shared.counters.add_dropped(DropReason::Shutdown, n);
                }
                Mode::OtlpOnly => self.shared.counters.add_dropped(DropReason::Shutdown, n),
            }
            self.batch.clear();
            self.batch_bytes = 0;
        }
    }

    /// Sends the current batch where the mode says; every record ends counted.
    fn export_live(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.publish_in_flight();
        // The batch's lines, when stdout has them, are the file's too.
        let encoded = self.sinks.stdout;
        if encoded {
            write_stdout(
                &self.shared,
                &self.batch,
                &self.sinks.service_name,
                &mut self.lines,
            );
        }
        match self.sinks.mode {
            Mode::FileOnly => self.write_file(true, encoded),
            Mode::Tee => {
                self.write_file(false, encoded);
                self.send_live(false);
            }
            Mode::OtlpOnly => self.send_live(false),
            Mode::Failover => self.send_live(true),
        }
        self.batch.clear();
        self.batch_bytes = 0;
        self.publish_in_flight();
    }

    /// Sends the current batch over OTLP, overlapping with the batches before it: this one is
    /// encoded while they are on their way; if [`MAX_IN_FLIGHT`] are, the oldest one's outcome is
    /// collected first; then this one leaves.
    /// `failover`: a collector believed down gets the batch only at probe time, else it is spooled.
    /// The batch gets the whole export timeout from the moment it leaves.
    fn send_live(&mut self, failover: bool) {
        if failover && self.flights.is_empty() && !self.health.should_try(Instant::now()) {
            self.spool_current();
            return;
        }
        let Some(otlp) = self.sinks.otlp.as_mut() else {
            self.export_failed(self.batch.len() as u64, "no OTLP exporter");
            return;
        };
        let request = otlp.prepare(records(&self.batch));
        // A collector believed down is probed with one batch at a time.
        while self.flights.len() >= MAX_IN_FLIGHT
            || (failover && self.health != Health::Up && !self.flights.is_empty())
        {
            self.settle_oldest();
        }
        let now = Instant::now();
        let deadline = now + self.export_timeout;
        if failover && !self.health.should_try(now) {
            self.spool_current();
            return;
        }
        let deadline = if failover {
            self.health.deadline(now, deadline)
        } else {
            deadline
        };
        let sent = self
            .sinks
            .otlp
            .as_mut()
            .map(|otlp| otlp.send(request, deadline));
        match sent {
            Some(flight) => {
                let events = std::mem::replace(&mut self.batch, std::mem::take(&mut self.spare));
                self.flights.push_back(Flight {
                    flight,
                    events,
                    failover,
                });
            }
            None => self.export_failed(self.batch.len() as u64, "no OTLP exporter"),
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
            mut events,
            failover,
        }) = self.flights.pop_front()
        else {
            return;
        };
        let outcome = self.wait_flight(flight, failover);
        let n = events.len() as u64;
        match outcome {
            ExportOutcome::Delivered { rejected } => {
                if failover {
                    self.health = Health::Up;
                    self.live_ok_since_refusal = true;
                    self.replay_paused = None;
                }
                self.delivered(n, rejected, false);
            }
            ExportOutcome::Failed { reason, .. } if !failover => self.export_failed(n, &reason),
            ExportOutcome::Failed { reason, permanent } => {
                // A permanent refusal (an expired token, a proxy answering 404) would drop every
                // record until someone fixes it: in failover the batch is spooled and the collector
                // treated as down instead. A batch the collector refuses while it accepts others is
                // dropped at replay.
                self.health.failed(Instant::now());
                if permanent {
                    self.live_ok_since_refusal = false;
                }
                let what = if permanent {
                    "refused the batch"
                } else {
                    "unavailable"
                };
                self.diagnose(&format!("collector {what} ({reason}); spooling to disk"));
                self.spool_events(&events);
            }
        }
        events.clear();
        if self.spare.capacity() < events.capacity() {
            self.spare = events;
        }
        self.publish_in_flight();
    }

    /// Waits for `flight`; with `spill_queue`, spools the queue's excess meanwhile.
    fn wait_flight(&mut self, flight: InFlight, spill_queue: bool) -> ExportOutcome {
        let Some(otlp) = self.sinks.otlp.as_mut() else {
            return ExportOutcome::Failed {
                reason: "no OTLP exporter".into(),
                permanent: true,
            };
        };
        let shared = &self.shared;
        let batch_size = self.batcher.max_size();
        let mut stdout = self
            .sinks
            .stdout
            .then_some((&mut self.lines, self.sinks.service_name.as_str()));
        match (spill_queue, self.sinks.spool.as_mut()) {
            (true, Some(spool)) => otlp.wait(flight, &mut || {
                spill(shared, spool, batch_size, &mut stdout)
            }),
            _ => otlp.wait(flight, &mut || shared.abort_exports()),
        }
    }

    fn delivered(&mut self, n: u64, rejected: u64, replay: bool) {
        let rejected = rejected.min(n);
        if replay {
            self.shared.counters.add_replayed(n - rejected);
        } else {
            self.shared.counters.add_exported(n - rejected);
        }
        if rejected > 0 {
            self.shared
                .counters
                .add_dropped(DropReason::Rejected, rejected);
        }
    }

    fn export_failed(&mut self, n: u64, reason: &str) {
        self.shared
            .counters
            .add_dropped(DropReason::ExportFailed, n);
        self.diagnose(&format!("export of {n} records failed: {reason}"));
    }

    /// Spools the current batch.
    fn spool_current(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        self.spool_events(&batch);
        self.batch = batch;
    }

    fn spool_events(&mut self, events: &[Queued]) {
        let Some(spool) = self.sinks.spool.as_mut() else {
            return;
        };
        let shared = &self.shared;
        let written = spool.append_lines(events.len(), |buf, service| {
            encode_lines(shared, events, service, buf);
        });
        if let Err(e) = written {
            let n = events.len() as u64;
            self.shared.counters.add_dropped(DropReason::IoError, n);
            let msg = format!(
                "could not spool {n} records to {}: {e}",
                spool.path().display()
            );
            self.diagnose(&msg);
        }
    }

    /// Writes the batch to the rotating file; `count_loss`: a failed write drops the records;
    /// `encoded`: `self.lines` holds the batch's lines already.
    fn write_file(&mut self, count_loss: bool, encoded: bool) {
        let Some(file) = self.sinks.file.as_mut() else {
            return;
        };
        if !encoded {
            self.lines.clear();
            encode_lines(
                &self.shared,
                &self.batch,
                &self.sinks.service_name,
                &mut self.lines,
            );
        }
        let n = self.batch.len() as u64;
        match file.write_lines(&self.lines) {
            Ok(()) => self.shared.counters.add_written(n),
            Err(e) => {
                let path = file.active_path();
                if count_loss {
                    self.shared.counters.add_dropped(DropReason::IoError, n);
                }
                self.diagnose(&format!(
                    "could not write {n} records to {}: {e}",
                    path.display()
                ));
            }
        }
    }

    /// Replays one batch from the spool if there is a backlog and the collector may be tried, giving
    /// it until `deadline`, or the export timeout from when it leaves. Returns whether it did any
    /// work.
    fn replay_one(&mut self, deadline: Option<Instant>) -> bool {
        let now = Instant::now();
        let batch_size = self.batcher.max_size();
        let Some(spool) = self.sinks.spool.as_mut() else {
            return false;
        };
        if self
            .replay_paused
            .is_some_and(|t| now.duration_since(t) < REPLAY_PAUSE)
            || !spool.has_backlog()
            || !self.health.should_try(now)
        {
            return false;
        }
        if !self.flights.is_empty() {
            // The live batches in flight first: their outcome decides whether the collector is up.
            self.settle();
            if !self.health.should_try(Instant::now()) {
                return false;
            }
        }
        let Some(spool) = self.sinks.spool.as_mut() else {
            return false;
        };
        let rb = match spool.next_batch(batch_size) {
            Ok(Some(rb)) => rb,
            Ok(None) => return false,
            Err(e) => {
                // A local problem, not the collector's: replay waits for the next live success.
                let msg = format!("could not read the spool {}: {e}", spool.path().display());
                self.replay_paused = Some(Instant::now());
                self.diagnose(&msg);
                return false;
            }
        };
        let n = rb.events.len() as u64;
        let outcome = if n == 0 {
            ExportOutcome::Delivered { rejected: 0 }
        } else {
            let now = Instant::now();
            let deadline = self
                .health
                .deadline(now, deadline.unwrap_or(now + self.export_timeout));
            let Some(otlp) = self.sinks.otlp.as_mut() else {
                return false;
            };
            let shared = &self.shared;
            let mut stdout = self
                .sinks
                .stdout
                .then_some((&mut self.lines, self.sinks.service_name.as_str()));
            otlp.export(
                rb.events.iter().map(LogEvent::record),
                deadline,
                &mut || spill(shared, spool, batch_size, &mut stdout),
            )
        };
        match outcome {
            ExportOutcome::Delivered { rejected } => {
                self.health = Health::Up;
                self.delivered(n, rejected, true);
            }
            ExportOutcome::Failed {
                reason,
                permanent: true,
            } if self.live_ok_since_refusal && self.refused_batch == Some(rb.id()) => {
                // The same batch, refused for good again after the collector accepted live
                // batches since its first refusal: a poison batch. Dropped (counted) so the spool
                // keeps moving.
                self.live_ok_since_refusal = false;
                self.refused_batch = None;
                self.export_failed(n, &format!("spooled batch refused for good: {reason}"));
            }
            ExportOutcome::Failed {
                reason,
                permanent: true,
            } => {
                // Keep the batch and pause replay until a live batch gets through: then the
                // collector works and this batch, if refused again, is poison.
                self.replay_paused = Some(Instant::now());
                self.live_ok_since_refusal = false;
                self.refused_batch = Some(rb.id());
                self.diagnose(&format!(
                    "collector refused a spooled batch ({reason}); replay paused until a live batch is accepted"
                ));
                if let Some(spool) = self.sinks.spool.as_mut() {
                    spool.abandon(&rb);
                }
                return true;
            }
            ExportOutcome::Failed { .. } => {
                // Keep the batch; replay resumes when a probe succeeds.
                self.health.failed(Instant::now());
                if let Some(spool) = self.sinks.spool.as_mut() {
                    spool.abandon(&rb);
                }
                return true;
            }
        }
        if let Some(spool) = self.sinks.spool.as_mut()
            && let Err(e) = spool.ack(&rb)
        {
            let msg = format!("could not update the spool cursor: {e}");
            self.diagnose(&msg);
        }
        true
    }

    /// Keeps the last error for the guard and writes it to stderr, at most once per interval.
    fn diagnose(&mut self, message: &str) {
        if let Ok(mut last) = self.shared.last_error.lock() {
            *last = Some(message.to_owned());
        }
        let now = Instant::now();
        if self
            .last_diagnostic
            .is_none_or(|t| now.duration_since(t) >= DIAGNOSTIC_INTERVAL)
        {
            self.last_diagnostic = Some(now);
            eprintln!("otel-log-bridge: {message}");
        }
    }
}
