//! [`Link`]: what the worker shares with the threads that log and with the guard, and nothing
//! else: the queue and its doorbell, the counters, the last error, and the shutdown's deadline for
//! exports. The threads that log push through it; the worker pops, sleeps and reports through it.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::policy;
use crate::queue::{Doorbell, PushError, Queue, QueueError, Room, Tried};
use crate::record::queued::Queued;
use crate::stats::{Counters, DropReason, Stats};

/// The worker's side of a pipeline, shared with the threads that log and the guard.
pub(crate) struct Link {
    pub queue: Queue<Queued>,
    /// Rung by a push that leaves a full batch queued while the worker sleeps.
    doorbell: Doorbell,
    /// The worker thread, to unpark; set once it is spawned.
    worker: OnceLock<Thread>,
    pub counters: Arc<Counters>,
    last_error: Mutex<Option<String>>,
    /// Set at shutdown: exports still waiting at this instant are abandoned, so what they carry
    /// can still be spooled before the shutdown deadline.
    abort_exports_at: Mutex<Option<Instant>>,
    /// `LOG_QUEUE_FULL=block:<ms>`: how long a caller waits for room in a full queue.
    block: Option<Duration>,
    room: Room,
}

/// A lock whose holder panicked is still usable: what it guards is a plain value.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Link {
    /// A link with a queue of `capacity` records, shedding from `high_watermark`, whose worker is
    /// woken when `batch_size` are queued.
    pub(crate) fn new(
        capacity: usize,
        high_watermark: usize,
        batch_size: usize,
        counters: Arc<Counters>,
        block: Option<Duration>,
    ) -> Result<Self, QueueError> {
        Ok(Link {
            block,
            room: Room::new(),
            queue: Queue::new(capacity, high_watermark)?,
            doorbell: Doorbell::new(batch_size),
            worker: OnceLock::new(),
            counters,
            last_error: Mutex::new(None),
            abort_exports_at: Mutex::new(None),
        })
    }

    /// Names the worker thread to wake.
    pub(crate) fn set_worker(&self, thread: Thread) {
        let _ = self.worker.set(thread);
    }

    /// Pushes a record; a refused one is counted under its reason. It waits only for room in a
    /// full queue, with `LOG_QUEUE_FULL=block:<ms>`, and never on the crate's own threads.
    #[inline]
    pub(crate) fn push(&self, record: Queued, sheddable: bool) -> bool {
        let refused = match self.queue.try_push(record, sheddable) {
            Ok(len) => {
                if self.doorbell.after_push(len, || self.queue.len()) {
                    self.wake();
                }
                return true;
            }
            Err((record, PushError::Full)) => match self.block {
                Some(wait) if !crate::internal::on_internal_thread() => {
                    match self.push_waiting(record, sheddable, wait) {
                        Ok(()) => return true,
                        Err(refused) => refused,
                    }
                }
                _ => PushError::Full,
            },
            Err((_, refused)) => refused,
        };
        let reason = match refused {
            PushError::Full => DropReason::QueueFull,
            PushError::Shed => DropReason::Shed,
            PushError::Closed => DropReason::Shutdown,
        };
        self.counters.add_dropped(reason, 1);
        false
    }

    /// Waits at most `wait` for room in the full queue, woken by the worker ([`Link::room_made`]).
    #[cold]
    fn push_waiting(
        &self,
        record: Queued,
        sheddable: bool,
        wait: Duration,
    ) -> Result<(), PushError> {
        let deadline = policy::deadline_after(Instant::now(), wait);
        let mut refused = PushError::Full;
        let push = |r| match self.queue.try_push(r, sheddable) {
            Ok(_) => Tried::Done,
            Err((r, PushError::Full)) => Tried::Full(r),
            Err((_, other)) => {
                refused = other;
                Tried::Refused
            }
        };
        // A full queue holds a full batch: the worker is awake or about to be.
        match self.room.wait_for(deadline, record, push, || self.wake()) {
            Tried::Done => Ok(()),
            _ => Err(refused),
        }
    }

    /// The worker took records from the queue: wakes the callers waiting for room, if any.
    pub(crate) fn room_made(&self) {
        if self.block.is_some() {
            self.room.made();
        }
    }

    /// Unparks the worker (a control message waits, or a full batch).
    pub(crate) fn wake(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }

    /// The worker sleeps until `at`, a full batch, or a wake.
    pub(crate) fn sleep_until(&self, at: Instant) {
        if self.doorbell.prepare_sleep(|| self.queue.len()) {
            std::thread::park_timeout(at.saturating_duration_since(Instant::now()));
        }
        self.doorbell.awake();
    }

    /// Stops the queue (pushes from now on are refused and counted as `shutdown`) and sets when
    /// exports still waiting are abandoned.
    pub(crate) fn begin_shutdown(&self, timeout: std::time::Duration) {
        self.queue.close();
        // Callers waiting for room now find the queue closed.
        if self.block.is_some() {
            self.room.wake_all();
        }
        *lock(&self.abort_exports_at) = Some(policy::abort_exports_at(Instant::now(), timeout));
    }

    /// Whether an export waiting now should be abandoned (shutdown is near its deadline).
    pub(crate) fn abort_exports(&self) -> bool {
        lock(&self.abort_exports_at).is_some_and(|t| Instant::now() >= t)
    }

    pub(crate) fn set_last_error(&self, message: &str) {
        *lock(&self.last_error) = Some(message.to_owned());
    }

    /// The last export error, if any export failed.
    pub(crate) fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters
            .snapshot(self.queue.pushed() as u64, self.queue.len() as u64)
    }
}
