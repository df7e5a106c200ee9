//! The worker's decisions in `failover` mode, as a pure state machine: the clock is an argument,
//! nothing here does I/O, and every rule has a row in the tables below.
//!
//! - Collector health: `Up` until a live batch fails (retryable failure, timeout, or a permanent
//!   refusal); then `Down`, probed with one batch at a time, backoff [`PROBE_INITIAL`] doubling
//!   to [`PROBE_MAX`], each probe bounded by [`PROBE_TIMEOUT`]. Any delivery turns it `Up`.
//! - While `Down`, live batches go to the spool at disk speed, except at probe time.
//! - Replay: one spooled batch after each live batch while the collector is `Up` (or at probe
//!   time). A spooled batch refused for good pauses replay until a live batch is accepted, or
//!   [`REPLAY_PAUSE`] passes (an idle application must not keep its spool forever); if the same
//!   batch is refused for good again after live batches were accepted since, it is poison: dropped
//!   (counted) so the spool keeps moving. A spool that cannot be read pauses replay the same way.
//! - Spilling: while an export waits, the queue is moved to the spool above [`spill_threshold`].
//! - Spooling promptly: from the first failed attempt of any export (a retry is under way) until
//!   a delivery, and while `Down`, what the worker holds and what is queued reaches the spool
//!   within the spool delay ([`Failover::spool_promptly`]); the worker holds no outage in memory.
//! - Shutdown: exports still waiting at [`abort_exports_at`] are abandoned, leaving the rest of the
//!   timeout for spooling what they carry.

use std::time::{Duration, Instant};

/// First wait before probing a collector found down.
pub(crate) const PROBE_INITIAL: Duration = Duration::from_millis(250);
/// Longest wait between two probes.
pub(crate) const PROBE_MAX: Duration = Duration::from_secs(5);
/// Bound on one probe of a collector believed down.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long replay waits, at most, after a refusal or a read error before it tries again even with
/// no live success.
pub(crate) const REPLAY_PAUSE: Duration = Duration::from_secs(30);

/// The collector as the worker believes it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Up,
    Down {
        next_probe: Instant,
        backoff: Duration,
    },
}

/// How an export ended, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The collector acknowledged the batch (a partial success counts: it answered).
    Delivered,
    /// Retries ran out, the deadline passed, or the connection failed.
    Failed,
    /// The collector refused the batch for good (a permanent status).
    Refused,
}

/// What to do with a live batch after its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiveVerdict {
    /// Count it as exported (less what a partial success rejected).
    Delivered,
    /// Spool it: the collector is now believed down.
    Spool,
}

/// What to do with a spooled batch after its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplayVerdict {
    /// Delivered: move the cursor past it.
    Ack,
    /// Keep it for a later attempt.
    Keep,
    /// Refused for good twice, with live batches accepted in between: drop it (counted).
    Poison,
}

/// Identifies a spooled batch (segment, offset).
pub(crate) type BatchId = (u64, u64);

/// The failover state: collector health and replay gating.
#[derive(Debug, Clone)]
pub(crate) struct Failover {
    health: Health,
    /// Whether a live batch was delivered since the collector last refused a batch for good.
    live_ok_since_refusal: bool,
    /// Replay waits for a live batch to be accepted (or [`REPLAY_PAUSE`] to pass) from then.
    replay_paused: Option<Instant>,
    /// The spooled batch the collector last refused for good.
    refused_batch: Option<BatchId>,
    /// An export attempt failed since the last delivery: its retries are under way.
    retrying: bool,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            health: Health::Up,
            live_ok_since_refusal: false,
            replay_paused: None,
            refused_batch: None,
            retrying: false,
        }
    }
}

impl Failover {
    #[cfg(test)]
    pub(crate) fn health(&self) -> Health {
        self.health
    }

    /// Whether the collector may be tried at `now` (always while `Up`; at probe time while `Down`).
    pub(crate) fn may_try(&self, now: Instant) -> bool {
        match self.health {
            Health::Up => true,
            Health::Down { next_probe, .. } => now >= next_probe,
        }
    }

    /// Whether only one batch may be in flight: a collector believed down is probed with one.
    pub(crate) fn probing(&self) -> bool {
        self.health != Health::Up
    }

    /// The deadline of an attempt started at `now` that would otherwise have `deadline`: short
    /// while probing.
    pub(crate) fn deadline(&self, now: Instant, deadline: Instant) -> Instant {
        match self.health {
            Health::Up => deadline,
            Health::Down { .. } => deadline.min(now + PROBE_TIMEOUT),
        }
    }

    /// Whether a spooled batch may be replayed at `now`.
    pub(crate) fn may_replay(&self, now: Instant) -> bool {
        let paused = self
            .replay_paused
            .is_some_and(|t| now.saturating_duration_since(t) < REPLAY_PAUSE);
        !paused && self.may_try(now)
    }

    /// When the worker must wake to probe, if it has a spool to ship.
    pub(crate) fn probe_at(&self, backlog: bool) -> Option<Instant> {
        match self.health {
            Health::Down { next_probe, .. } if backlog && self.replay_paused.is_none() => {
                Some(next_probe)
            }
            _ => None,
        }
    }

    /// An attempt of an export still under way failed (it will be retried).
    pub(crate) fn attempt_failed(&mut self) {
        self.retrying = true;
    }

    /// Whether records must reach the spool promptly: an attempt failed since the last delivery,
    /// or the collector is believed down.
    pub(crate) fn spool_promptly(&self) -> bool {
        self.retrying || self.health != Health::Up
    }

    fn failed(&mut self, now: Instant) {
        let backoff = match self.health {
            Health::Up => PROBE_INITIAL,
            Health::Down { backoff, .. } => (backoff * 2).min(PROBE_MAX),
        };
        self.health = Health::Down {
            next_probe: now + backoff,
            backoff,
        };
    }

    /// A live batch's attempt ended at `now`.
    pub(crate) fn live(&mut self, now: Instant, attempt: Attempt) -> LiveVerdict {
        match attempt {
            Attempt::Delivered => {
                self.health = Health::Up;
                self.retrying = false;
                self.live_ok_since_refusal = true;
                self.replay_paused = None;
                LiveVerdict::Delivered
            }
            Attempt::Failed => {
                self.failed(now);
                LiveVerdict::Spool
            }
            // An expired token or a proxy answering 404 would drop every record until someone
            // fixes it: the batch is spooled and the collector treated as down instead.
            Attempt::Refused => {
                self.failed(now);
                self.live_ok_since_refusal = false;
                LiveVerdict::Spool
            }
        }
    }

    /// A spooled batch's attempt ended at `now`.
    pub(crate) fn replay(
        &mut self,
        now: Instant,
        batch: BatchId,
        attempt: Attempt,
    ) -> ReplayVerdict {
        match attempt {
            Attempt::Delivered => {
                self.health = Health::Up;
                self.retrying = false;
                ReplayVerdict::Ack
            }
            Attempt::Failed => {
                self.failed(now);
                ReplayVerdict::Keep
            }
            Attempt::Refused if self.live_ok_since_refusal && self.refused_batch == Some(batch) => {
                self.live_ok_since_refusal = false;
                self.refused_batch = None;
                ReplayVerdict::Poison
            }
            Attempt::Refused => {
                self.replay_paused = Some(now);
                self.live_ok_since_refusal = false;
                self.refused_batch = Some(batch);
                ReplayVerdict::Keep
            }
        }
    }

    /// The spool could not be read at `now`: a local problem, not the collector's; replay waits
    /// for the next live success (or the pause to pass).
    pub(crate) fn unreadable_spool(&mut self, now: Instant) {
        self.replay_paused = Some(now);
    }
}

/// Queue length above which records are moved to the spool while an export waits: half the queue,
/// below the shedding watermark (so spilling starts before any INFO record is refused), and never
/// below one batch.
pub(crate) fn spill_threshold(capacity: usize, high_watermark: usize, batch_size: usize) -> usize {
    (capacity / 2)
        .min(high_watermark.saturating_sub(1))
        .max(batch_size)
}

/// When exports still waiting are abandoned in a shutdown started at `now` with `timeout`: the last
/// quarter of the timeout (at most 500 ms) is left for spooling what they carry.
pub(crate) fn abort_exports_at(now: Instant, timeout: Duration) -> Instant {
    deadline_after(now, timeout - (timeout / 4).min(Duration::from_millis(500)))
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[cfg(test)]
mod tests;
