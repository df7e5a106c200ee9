//! When to export: a pure state machine with the clock passed in.
//!
//! A batch is exported when it holds `max_size` records, or when it holds any and the schedule delay
//! has passed since the last export (or since start). The worker sleeps until [`Batcher::due`] unless
//! woken by a full batch or a control message.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct Batcher {
    max_size: usize,
    delay: Duration,
    /// When the current period started (the last export, or the start).
    since: Instant,
}

impl Batcher {
    pub(crate) fn new(max_size: usize, delay: Duration, now: Instant) -> Self {
        Batcher {
            max_size: max_size.max(1),
            delay,
            since: now,
        }
    }

    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Sets the delay: shorter while records must reach the spool promptly.
    pub(crate) fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    fn due(&self) -> Instant {
        self.since + self.delay
    }

    /// Whether a batch of `len` records should be exported at `now`.
    pub(crate) fn should_export(&self, len: usize, now: Instant) -> bool {
        len >= self.max_size || (len > 0 && now >= self.due())
    }

    /// Records that a batch was exported (or the delay passed with nothing to export) at `now`.
    pub(crate) fn restart(&mut self, now: Instant) {
        self.since = now;
    }

    /// Moves the schedule on when the delay passed with nothing to export.
    pub(crate) fn idle(&mut self, len: usize, now: Instant) {
        if len == 0 && now >= self.due() {
            self.restart(now);
        }
    }

    /// How long to sleep at `now` before the next scheduled export.
    pub(crate) fn sleep_for(&self, now: Instant) -> Duration {
        self.due().saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_on_size_or_delay() {
        let t0 = Instant::now();
        let d = Duration::from_millis(1000);
        let mut b = Batcher::new(3, d, t0);
        assert!(!b.should_export(0, t0));
        assert!(!b.should_export(2, t0));
        assert!(b.should_export(3, t0), "full batch goes at once");
        assert!(!b.should_export(0, t0 + d), "nothing to export");
        assert!(b.should_export(1, t0 + d), "delay passed");
        assert_eq!(b.sleep_for(t0), d);
        b.restart(t0 + d);
        assert!(!b.should_export(1, t0 + d + Duration::from_millis(999)));
        b.idle(0, t0 + 3 * d);
        assert_eq!(b.sleep_for(t0 + 3 * d), d);
        assert_eq!(b.max_size(), 3);
        let t = t0 + 3 * d;
        b.restart(t);
        b.set_delay(Duration::from_millis(10));
        assert!(
            b.should_export(1, t + Duration::from_millis(10)),
            "a shorter delay applies at once"
        );
        assert_eq!(b.sleep_for(t), Duration::from_millis(10));
    }
}
