//! The latest anchor of the counter-based clock, published by one writer at a time and read by
//! every calling thread without a lock: a sequence lock over three words.
//!
//! `seq` is odd while there is no anchor to read (none taken yet, withdrawn, or being written)
//! and even otherwise. The writer makes it odd, then (release fence) writes the words, then makes
//! it even again (release). A reader loads `seq` (acquire), the words, then (acquire fence) `seq`
//! again: if both loads saw the same even value, no write overlapped the reading of the words, so
//! they are one anchor. Else the reader gives up (the caller reads the system clock): it never
//! waits. Every access is atomic, so a torn read is detected, never undefined.

#[cfg(all(test, olb_loom))]
use loom::sync::atomic::{AtomicU64, Ordering, fence};
#[cfg(not(all(test, olb_loom)))]
use std::sync::atomic::{AtomicU64, Ordering, fence};

/// A counter reading, the system clock at it (ns since the epoch), and the rate between them
/// (nanoseconds per tick, 32.32 fixed point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reading {
    pub tsc: u64,
    pub ns: u64,
    pub rate: u64,
}

/// The published anchor (see the module's doc).
pub(super) struct Anchor {
    seq: AtomicU64,
    tsc: AtomicU64,
    ns: AtomicU64,
    rate: AtomicU64,
}

impl Anchor {
    /// No anchor yet.
    #[cfg(not(all(test, olb_loom)))]
    pub(super) const fn new() -> Self {
        Anchor {
            seq: AtomicU64::new(1),
            tsc: AtomicU64::new(0),
            ns: AtomicU64::new(0),
            rate: AtomicU64::new(0),
        }
    }

    /// No anchor yet.
    #[cfg(all(test, olb_loom))]
    pub(super) fn new() -> Self {
        Anchor {
            seq: AtomicU64::new(1),
            tsc: AtomicU64::new(0),
            ns: AtomicU64::new(0),
            rate: AtomicU64::new(0),
        }
    }

    /// The anchor, if there is one and no write overlapped the reading.
    #[inline]
    pub(super) fn read(&self) -> Option<Reading> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq & 1 != 0 {
            return None;
        }
        let reading = Reading {
            tsc: self.tsc.load(Ordering::Relaxed),
            ns: self.ns.load(Ordering::Relaxed),
            rate: self.rate.load(Ordering::Relaxed),
        };
        // Orders the loads of the words before the second load of `seq`: had any of them seen a
        // word of a later write, that load would see that write's odd `seq` or a later one.
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some(reading)
    }

    /// Publishes `reading`. One writer at a time (the caller holds the calibration's lock).
    pub(super) fn write(&self, reading: Reading) {
        let seq = self.withdraw();
        // Orders the odd `seq` before the words (see `read`).
        fence(Ordering::Release);
        self.tsc.store(reading.tsc, Ordering::Relaxed);
        self.ns.store(reading.ns, Ordering::Relaxed);
        self.rate.store(reading.rate, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Release);
    }

    /// Leaves no anchor to read (readers use the system clock) until the next write; returns the
    /// odd `seq` now stored. One writer at a time.
    pub(super) fn withdraw(&self) -> u64 {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 0 {
            // Only when there is an anchor to withdraw: the line every reader reads is left
            // alone otherwise.
            self.seq.store(seq | 1, Ordering::Relaxed);
        }
        seq | 1
    }
}

#[cfg(all(test, olb_loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::thread;

    use super::{Anchor, Reading};

    fn reading(k: u64) -> Reading {
        Reading {
            tsc: k,
            ns: 10 * k,
            rate: 100 * k,
        }
    }

    /// A reader racing two writes sees no anchor or one whole anchor, never words of two.
    #[test]
    fn loom_a_reader_sees_one_whole_anchor_or_none() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let anchor = Arc::new(Anchor::new());
            anchor.write(reading(1));
            let writer = {
                let anchor = anchor.clone();
                thread::spawn(move || {
                    anchor.write(reading(2));
                    anchor.write(reading(3));
                })
            };
            for _ in 0..2 {
                if let Some(r) = anchor.read() {
                    assert!((1..=3).any(|k| r == reading(k)), "a torn anchor: {r:?}");
                }
            }
            writer.join().unwrap();
            assert_eq!(anchor.read(), Some(reading(3)));
        });
    }
}
