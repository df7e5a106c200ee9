//! The worker thread: drains the queue into batches and hands them to the exporter.
//! It never logs through `log`, and anything logged on it is discarded by the bridge.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::batch::Batcher;
use super::{Control, Shared};
use crate::event::LogEvent;
use crate::export::{ExportOutcome, Exporter};
use crate::stats::DropReason;

thread_local! {
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is a pipeline worker.
#[inline]
pub(crate) fn in_worker() -> bool {
    IN_WORKER.try_with(Cell::get).unwrap_or(false)
}

pub(crate) struct Settings {
    pub batch_size: usize,
    pub schedule_delay: Duration,
    pub export_timeout: Duration,
}

/// Minimum interval between two diagnostics written to stderr.
const DIAGNOSTIC_INTERVAL: Duration = Duration::from_secs(30);

struct Worker {
    shared: Arc<Shared>,
    exporter: Box<dyn Exporter>,
    batch: Vec<LogEvent>,
    batcher: Batcher,
    export_timeout: Duration,
    last_diagnostic: Option<Instant>,
}

pub(crate) fn run(
    shared: Arc<Shared>,
    exporter: Box<dyn Exporter>,
    control: mpsc::Receiver<Control>,
    settings: Settings,
) {
    IN_WORKER.with(|w| w.set(true));
    let mut w = Worker {
        batch: Vec::with_capacity(settings.batch_size),
        batcher: Batcher::new(settings.batch_size, settings.schedule_delay, Instant::now()),
        shared,
        exporter,
        export_timeout: settings.export_timeout,
        last_diagnostic: None,
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
                w.discard_rest();
                let _ = done.send(());
                return;
            }
            Err(mpsc::TryRecvError::Disconnected) => {
                w.discard_rest();
                return;
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        w.fill();
        let now = Instant::now();
        if w.batcher.should_export(w.batch.len(), now) {
            w.export(now + w.export_timeout);
            w.batcher.restart(Instant::now());
            continue;
        }
        w.batcher.idle(w.batch.len(), now);
        // Announce the sleep, then look again, so a producer that filled a batch meanwhile is not
        // missed (it reads `worker_sleeping` after its push).
        w.shared.worker_sleeping.store(true, Ordering::SeqCst);
        if w.shared.queue.len() + w.batch.len() < w.batcher.max_size() {
            std::thread::park_timeout(w.batcher.sleep_for(now));
        }
        w.shared.worker_sleeping.store(false, Ordering::SeqCst);
    }
}

impl Worker {
    /// Moves queued records into the batch until it is full or the queue is empty.
    fn fill(&mut self) {
        while self.batch.len() < self.batcher.max_size() {
            match self.shared.queue.pop() {
                Some(e) => self.batch.push(e),
                None => break,
            }
        }
    }

    /// Exports everything enqueued before the call, in batches, each bounded by `deadline`. Records
    /// pushed after the call are left for the normal schedule, so a busy application cannot make a flush
    /// last forever.
    fn drain(&mut self, deadline: Instant) {
        let target = self.shared.queue.pushed();
        loop {
            while self.batch.len() < self.batcher.max_size() && self.shared.queue.popped() < target
            {
                match self.shared.queue.pop() {
                    Some(e) => self.batch.push(e),
                    None => break,
                }
            }
            if self.batch.is_empty() || Instant::now() >= deadline {
                break;
            }
            self.export(deadline.min(Instant::now() + self.export_timeout));
        }
        self.batcher.restart(Instant::now());
    }

    /// Counts what is left in the batch and the queue as dropped at shutdown.
    fn discard_rest(&mut self) {
        let mut n = self.batch.len() as u64;
        self.batch.clear();
        while self.shared.queue.pop().is_some() {
            n += 1;
        }
        if n > 0 {
            self.shared.counters.add_dropped(DropReason::Shutdown, n);
        }
    }

    fn export(&mut self, deadline: Instant) {
        if self.batch.is_empty() {
            return;
        }
        let n = self.batch.len() as u64;
        self.shared.counters.set_in_flight(n);
        let outcome = self.exporter.export(&self.batch, deadline);
        match outcome {
            ExportOutcome::Delivered { rejected } => {
                let rejected = rejected.min(n);
                self.shared.counters.add_exported(n - rejected);
                if rejected > 0 {
                    self.shared
                        .counters
                        .add_dropped(DropReason::Rejected, rejected);
                }
            }
            ExportOutcome::Failed { reason } => {
                self.shared
                    .counters
                    .add_dropped(DropReason::ExportFailed, n);
                self.diagnose(&format!("export of {n} records failed: {reason}"));
            }
        }
        self.batch.clear();
        self.shared.counters.set_in_flight(0);
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
