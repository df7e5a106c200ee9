//! [`Room`]: where producers wait for room in a full queue (`LOG_QUEUE_FULL=block:<ms>`), woken by
//! the consumer as it takes values, never by polling.
//!
//! No wakeup is lost: a waiter counts itself in `waiters`, then (after a SeqCst fence) tries the
//! queue again, holding `lock` from before its count until `wait` releases it; the consumer frees
//! slots, then (after a SeqCst fence) reads `waiters`, and notifies under `lock`. The two fences
//! order each side's write before its read, so either the waiter's try sees the freed slot, or
//! the consumer sees the waiter, and its notification (under `lock`) comes after the waiter is
//! waiting. A loom model checks it (`loom_a_producer_waiting_for_room_is_woken`), where a timed
//! wait never times out, so a lost wakeup is a deadlock it reports.

use std::time::Instant;

use super::sync::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, fence};

/// What a try to push came to.
#[derive(Debug)]
pub(crate) enum Tried<V> {
    /// Pushed.
    Done,
    /// The queue is full: the value back.
    Full(V),
    /// Refused for another reason (closed, shed): stop waiting.
    Refused,
}

/// Producers waiting for room, and the consumer's doorbell for them.
pub(crate) struct Room {
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

/// A lock whose holder panicked is still usable: it guards nothing.
fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Room {
    pub(crate) fn new() -> Room {
        Room {
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    /// Producer: tries `push` with `value` until it is done or refused, or `deadline` passes,
    /// waiting for [`Room::made`] between tries; `wake` is called before each wait (to make sure
    /// the consumer runs). Returns the last try.
    pub(crate) fn wait_for<V>(
        &self,
        deadline: Instant,
        value: V,
        mut push: impl FnMut(V) -> Tried<V>,
        wake: impl Fn(),
    ) -> Tried<V> {
        let mut guard = lock(&self.lock);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `made`: the count is ordered before the queue is read again.
        fence(Ordering::SeqCst);
        let mut value = value;
        let tried = loop {
            match push(value) {
                Tried::Full(back) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break Tried::Full(back);
                    }
                    value = back;
                    wake();
                    guard = match self.freed.wait_timeout(guard, deadline - now) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                }
                other => break other,
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        tried
    }

    /// Consumer, after taking values: wakes the producers waiting for room, if any. With none, a
    /// fence and a load.
    pub(crate) fn made(&self) {
        // Pairs with the fence in `wait_for`: the freed slots are ordered before `waiters` is read.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            let _g = lock(&self.lock);
            self.freed.notify_all();
        }
    }

    /// Wakes every waiting producer (the queue was closed: their next try is refused).
    pub(crate) fn wake_all(&self) {
        let _g = lock(&self.lock);
        self.freed.notify_all();
    }
}
