use super::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool as StdAtomicBool;
use std::time::{Duration, Instant};

/// How long a stress test may run before it counts as wedged.
const WEDGED: Duration = Duration::from_secs(20);

fn refused<T>(r: Result<usize, (T, PushError)>) -> Option<PushError> {
    r.err().map(|e| e.1)
}

#[test]
fn a_large_queue_starts_on_a_cache_line_and_keeps_its_values() {
    let q = Queue::<u64>::new(1 << 18, 1 << 18).unwrap();
    assert_eq!(q.slots.as_ptr() as usize % CACHE_LINE, 0);
    for i in 0..(1u64 << 18) {
        assert!(q.try_push(i, false).is_ok());
    }
    assert_eq!(
        q.try_push(7, false).map_err(|(_, e)| e),
        Err(PushError::Full)
    );
    for i in 0..(1u64 << 18) {
        assert_eq!(q.pop(), Some(i));
    }
    assert_eq!(q.pop(), None);
    // And a small one is as it was, its slots starting on a cache line.
    let q = Queue::<u64>::new(4, 4).unwrap();
    assert!(q.try_push(1, false).is_ok());
    assert_eq!(q.pop(), Some(1));
    let q = Queue::<crate::record::queued::Queued>::new(8192, 8192).unwrap();
    assert_eq!(q.slots.as_ptr() as usize % CACHE_LINE, 0);
}

#[test]
fn a_slot_adds_at_most_8_bytes_to_a_record() {
    assert!(size_of::<Slot<[u8; 120]>>() <= 128);
    assert_eq!(size_of::<Slot<[u8; 120]>>(), 128);
    let q = Queue::<[u8; 120]>::new(3, 3).unwrap();
    assert_eq!(q.slots.as_ptr() as usize % CACHE_LINE, 0);
}

#[test]
fn fifo_and_capacity() {
    let q = Queue::new(3, 3).unwrap();
    assert_eq!(q.try_push(1, false).ok(), Some(1));
    assert_eq!(q.try_push(2, false).ok(), Some(2));
    assert_eq!(q.try_push(3, false).ok(), Some(3));
    assert_eq!(
        q.try_push(4, false).err().map(|e| e.1),
        Some(PushError::Full)
    );
    assert_eq!(q.len(), 3);
    assert_eq!(q.pop(), Some(1));
    assert_eq!(q.try_push(5, false).ok(), Some(3));
    assert_eq!(
        (q.pop(), q.pop(), q.pop(), q.pop()),
        (Some(2), Some(3), Some(5), None)
    );
    assert_eq!(q.pushed(), 4);
}

/// Every capacity, many laps round, one thread: fills to exactly the capacity, refuses one more,
/// gives the values back in order, and counts.
#[test]
fn every_capacity_holds_exactly_its_capacity() {
    let capacities = (1..=17).chain([31, 32, 33, 63, 64, 65, 100, 127, 128, 129]);
    for cap in capacities {
        let q = Queue::new(cap, cap).unwrap();
        assert_eq!(q.capacity(), cap);
        let mut next = 0usize;
        for round in 0..5 {
            // Leave a different number queued each round, so the lap boundary moves.
            for _ in 0..cap {
                assert!(q.try_push(next, false).is_ok(), "cap {cap} round {round}");
                next += 1;
            }
            assert_eq!(q.len(), cap);
            assert_eq!(
                refused(q.try_push(usize::MAX, false)),
                Some(PushError::Full)
            );
            let keep = round % cap;
            for i in 0..cap - keep {
                assert_eq!(q.pop(), Some(next - cap + i), "cap {cap} round {round}");
            }
            assert_eq!(q.len(), keep);
            for i in 0..keep {
                assert_eq!(q.pop(), Some(next - keep + i));
            }
            assert_eq!(q.pop(), None);
            assert_eq!((q.pushed(), q.popped(), q.len()), (next, next, 0));
        }
    }
}

#[test]
fn sheds_only_sheddable_values_above_the_watermark() {
    let q = Queue::new(10, 8).unwrap();
    for i in 0..8 {
        q.try_push(i, true).unwrap();
    }
    assert_eq!(
        q.try_push(8, true).err().map(|e| e.1),
        Some(PushError::Shed)
    );
    assert!(q.try_push(8, false).is_ok());
    assert!(q.try_push(9, false).is_ok());
    assert_eq!(
        q.try_push(10, false).err().map(|e| e.1),
        Some(PushError::Full)
    );
}

#[test]
fn a_stale_tail_is_not_taken_for_a_full_queue() {
    let q = Queue::new(4, 4).unwrap();
    // Drive head past where a preempted producer last saw tail, many laps around.
    for i in 0..1000 {
        q.try_push(i, false).unwrap();
        assert_eq!(q.pop(), Some(i));
    }
    assert!(q.try_push(1, true).is_ok());
}

#[test]
fn drop_releases_queued_values() {
    let value = Arc::new(());
    {
        let q = Queue::new(4, 4).unwrap();
        q.try_push(value.clone(), false).unwrap();
        q.try_push(value.clone(), false).unwrap();
        assert_eq!(Arc::strong_count(&value), 3);
    }
    assert_eq!(Arc::strong_count(&value), 1);
    // And a refused value comes back, not dropped or kept.
    let q = Queue::new(1, 1).unwrap();
    q.try_push(value.clone(), false).unwrap();
    let (back, e) = q.try_push(value.clone(), false).unwrap_err();
    assert_eq!((Arc::strong_count(&back), e), (3, PushError::Full));
}

#[test]
fn refuses_capacities_out_of_range_and_reports_a_refused_allocation() {
    assert_eq!(
        Queue::<u8>::new(0, 0).err(),
        Some(QueueError::Capacity { capacity: 0 })
    );
    assert_eq!(
        Queue::<u8>::new(MAX_CAPACITY + 1, 1).err(),
        Some(QueueError::Capacity {
            capacity: MAX_CAPACITY + 1
        })
    );
    // 2^60 bytes: more than any address space, so the allocator returns null.
    let e = Queue::<[u8; 1 << 30]>::new(MAX_CAPACITY, 1).err();
    let Some(QueueError::Alloc { capacity, bytes }) = e else {
        panic!("{e:?}");
    };
    assert_eq!(capacity, MAX_CAPACITY);
    assert!(bytes > MAX_CAPACITY << 30, "{bytes}");
    let text = e.unwrap().to_string();
    assert!(
        text.contains(&capacity.to_string()) && text.contains(&bytes.to_string()),
        "{text}"
    );
    assert!(Queue::<u8>::new(MAX_CAPACITY, 1).is_ok());
}

/// A push reports at least the length it left and at most the capacity, from a `head` it saw
/// some time ago; a sheddable one near the high watermark looks at the true `head` before
/// refusing, and sees what was popped since.
#[test]
fn a_push_reports_an_upper_bound_and_sheds_on_the_exact_length() {
    let q = Queue::new(8, 4).unwrap();
    for i in 0..4 {
        assert_eq!(q.try_push(i, false).ok(), Some(i + 1));
    }
    for _ in 0..4 {
        q.pop().unwrap();
    }
    assert_eq!(q.len(), 0);
    // Nothing queued, but no push has seen the pops: the bound is still 4 (then 5).
    assert_eq!(q.try_push(4, false).ok(), Some(5));
    assert_eq!(q.len(), 1);
    // A sheddable push at that bound reads `head`: 1 queued, far below the watermark.
    assert_eq!(q.try_push(5, true).ok(), Some(2), "exact from here");
    assert_eq!(q.try_push(6, true).ok(), Some(3));
    assert_eq!(q.try_push(7, true).ok(), Some(4));
    assert_eq!(refused(q.try_push(8, true)), Some(PushError::Shed));
    assert_eq!(q.try_push(8, false).ok(), Some(5), "not sheddable");
}

/// Positions run off the end of their space into lap 0 again, without touching `CLOSED`.
#[test]
fn positions_wrap_round_the_end_of_their_space() {
    for cap in [1, 2, 3, 4, 5, 7, 8] {
        for laps_before_wrap in [1, 2] {
            let q = Queue::near_wrap(cap, cap, laps_before_wrap);
            let mut next = 0usize;
            for round in 0..4 * cap + 3 {
                let n = round % cap + 1;
                for _ in 0..n {
                    let before = q.len();
                    let len = q.try_push(next, false).ok();
                    assert!(
                        len.is_some_and(|len| before < len && len <= cap),
                        "{len:?} after {before} (capacity {cap})"
                    );
                    next += 1;
                }
                for i in 0..n {
                    assert_eq!(q.pop(), Some(next - n + i));
                }
                assert_eq!(q.pop(), None);
                assert_eq!((q.pushed(), q.popped()), (next, next));
                assert!(!q.is_closed());
            }
            assert!(q.tail.0.pos.load(Ordering::Relaxed) < q.origin, "wrapped");
            for i in 0..cap {
                q.try_push(i, false).unwrap();
            }
            assert_eq!(refused(q.try_push(0, false)), Some(PushError::Full));
            q.close();
            assert_eq!(refused(q.try_push(0, false)), Some(PushError::Closed));
            assert_eq!(q.pushed(), next + cap);
        }
    }
}

#[test]
fn close_refuses_every_later_push_and_keeps_the_earlier_ones() {
    let q = Queue::new(4, 2).unwrap();
    q.try_push(1, false).unwrap();
    q.try_push(2, true).unwrap();
    assert!(!q.is_closed());
    q.close();
    assert!(q.is_closed());
    assert_eq!(refused(q.try_push(3, false)), Some(PushError::Closed));
    assert_eq!(refused(q.try_push(3, true)), Some(PushError::Closed));
    assert_eq!((q.pushed(), q.len()), (2, 2));
    assert_eq!((q.pop(), q.pop(), q.pop()), (Some(1), Some(2), None));
    assert_eq!(refused(q.try_push(4, false)), Some(PushError::Closed));
    q.close();
    assert!(q.is_closed());
}

/// A value that knows whether it was torn: its two halves must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked([u64; 4]);

impl Checked {
    fn new(v: u64) -> Self {
        Checked([v, !v, v.rotate_left(17), v ^ 0x5555_5555_5555_5555])
    }
    fn get(self) -> u64 {
        let v = self.0[0];
        assert_eq!(self, Checked::new(v), "torn value");
        v
    }
}

/// Runs `producers` threads each pushing `per_thread` values (`t << 32 | i`, retrying on
/// `Full`) against `consumers` popping threads; checks each value is popped exactly once and
/// each producer's values in order, and that the counts match.
fn stress(capacity: usize, producers: u64, consumers: usize, per_thread: u64) {
    let q = Arc::new(Queue::new(capacity, capacity).unwrap());
    let total = producers * per_thread;
    let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failed = Arc::new(StdAtomicBool::new(false));
    let deadline = Instant::now() + WEDGED;
    let pushers: Vec<_> = (0..producers)
        .map(|t| {
            let (q, failed) = (q.clone(), failed.clone());
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let mut v = Checked::new(t << 32 | i);
                    loop {
                        match q.try_push(v, false) {
                            Ok(len) => {
                                assert!((1..=capacity).contains(&len), "len {len}");
                                break;
                            }
                            Err((back, PushError::Full)) => v = back,
                            Err((_, e)) => panic!("{e:?}"),
                        }
                        if failed.load(Ordering::Relaxed) {
                            return;
                        }
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    let poppers: Vec<_> = (0..consumers)
        .map(|_| {
            let (q, taken, failed) = (q.clone(), taken.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while taken.load(Ordering::Relaxed) < total {
                    if Instant::now() > deadline {
                        failed.store(true, Ordering::Relaxed);
                        panic!("wedged: {} of {total} popped", q.popped());
                    }
                    assert!(q.len() <= capacity);
                    match q.pop() {
                        Some(v) => {
                            got.push(v.get());
                            taken.fetch_add(1, Ordering::Relaxed);
                        }
                        None => std::hint::spin_loop(),
                    }
                }
                got
            })
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    let mut seen = HashSet::new();
    for c in poppers {
        let got = c.join().unwrap();
        // One consumer's values, per producer, in order.
        let mut last = vec![None; producers as usize];
        for v in got {
            assert!(seen.insert(v), "duplicate {v:#x}");
            let (t, i) = ((v >> 32) as usize, v & 0xffff_ffff);
            assert!(last[t].is_none_or(|l| l < i), "order of producer {t}");
            last[t] = Some(i);
        }
    }
    assert_eq!(seen.len() as u64, total);
    assert_eq!((q.pushed() as u64, q.popped() as u64), (total, total));
    assert_eq!(q.pop(), None);
}

/// One slot, two producers and the consumer: with per-position sequence numbers a producer
/// could take the slot the consumer was reading (torn values, duplicates, or a wedged queue).
#[test]
fn capacity_one_with_two_producers_loses_duplicates_and_tears_nothing() {
    stress(1, 2, 1, 100_000);
}

#[test]
fn concurrent_producers_lose_and_duplicate_nothing() {
    for cap in [2, 3, 64] {
        stress(cap, 4, 1, 20_000);
    }
}

#[test]
fn two_consumers_take_each_value_once() {
    for cap in [1, 3] {
        stress(cap, 2, 2, 20_000);
    }
}

/// `len` is a snapshot of two counters: it must still never exceed the capacity, even when
/// `tail` is read after pops and pushes moved it past the `head` read.
#[test]
fn len_never_exceeds_the_capacity() {
    let q = Arc::new(Queue::new(3, 3).unwrap());
    let stop = Arc::new(StdAtomicBool::new(false));
    for i in 0..3 {
        q.try_push(i, false).unwrap();
    }
    let churn = {
        let (q, stop) = (q.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Keeps it full but for a moment.
                if let Some(v) = q.pop() {
                    q.try_push(v, false).unwrap();
                }
            }
        })
    };
    let mut max = 0;
    for _ in 0..2_000_000 {
        max = max.max(q.len());
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert!(max <= 3, "len {max} above capacity 3");
}

/// Producers keep pushing while the consumer closes the queue and drains it: every push that
/// returned `Ok` is popped, every other returned `Full` or `Closed`, and after the first
/// `Closed` every push of that producer does.
#[test]
fn close_racing_producers_loses_nothing_that_was_ok() {
    for round in 0..20u64 {
        let q = Arc::new(Queue::new(8, 8).unwrap());
        let producers: Vec<_> = (0..3u64)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut ok = Vec::new();
                    let mut closed = false;
                    // Bounded: the consumer closes after a bounded number of pops.
                    for i in 0.. {
                        match q.try_push(t << 32 | i, false) {
                            Ok(_) => {
                                assert!(!closed, "a push succeeded after Closed");
                                ok.push(t << 32 | i);
                            }
                            Err((_, PushError::Closed)) if closed => break,
                            Err((_, PushError::Closed)) => closed = true,
                            Err((_, PushError::Full)) => std::hint::spin_loop(),
                            Err((_, PushError::Shed)) => panic!("not sheddable"),
                        }
                    }
                    ok
                })
            })
            .collect();
        let mut popped = Vec::new();
        while popped.len() < 500 + 37 * round as usize {
            if let Some(v) = q.pop() {
                popped.push(v);
            }
        }
        q.close();
        let total = q.pushed();
        let deadline = Instant::now() + WEDGED;
        while q.popped() < total {
            assert!(Instant::now() < deadline, "a claimed value never came");
            if let Some(v) = q.pop() {
                popped.push(v);
            }
        }
        assert_eq!(q.pop(), None);
        let mut ok: Vec<u64> = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        assert_eq!(ok.len(), total);
        ok.sort_unstable();
        popped.sort_unstable();
        assert_eq!(ok, popped);
    }
}

/// The worker's sleep, with real threads: a full batch always wakes it (the park's timeout is
/// only a failsafe, and taking it fails the test).
#[test]
fn a_full_batch_always_wakes_the_sleeping_consumer() {
    const BATCH: usize = 8;
    const PER_THREAD: usize = 4_000;
    const PARK: Duration = Duration::from_secs(10);
    let q = Arc::new(Queue::new(64, 64).unwrap());
    let bell = Arc::new(Doorbell::new(BATCH));
    let consumer = std::thread::current();
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let (q, bell, consumer) = (q.clone(), bell.clone(), consumer.clone());
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let mut v = i;
                    loop {
                        match q.try_push(v, false) {
                            Ok(len) => {
                                if bell.after_push(len, || q.len()) {
                                    consumer.unpark();
                                }
                                break;
                            }
                            Err((back, _)) => v = back,
                        }
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    let mut popped = 0;
    while popped < 2 * PER_THREAD {
        if q.len() >= BATCH {
            for _ in 0..BATCH {
                while q.pop().is_none() {
                    std::hint::spin_loop();
                }
            }
            popped += BATCH;
            continue;
        }
        if bell.prepare_sleep(|| q.len()) {
            let slept = Instant::now();
            std::thread::park_timeout(PARK);
            assert!(slept.elapsed() < PARK, "lost wake-up at {popped} popped");
        }
        bell.awake();
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(q.pop(), None);
}

#[test]
fn doorbell_rings_once_per_sleep_and_only_from_the_threshold() {
    let bell = Doorbell::new(3);
    let exact = |n: usize| move || n;
    assert!(!bell.after_push(5, exact(5)), "awake: never rings");
    assert!(bell.prepare_sleep(|| 2));
    assert!(!bell.after_push(2, exact(2)));
    assert!(
        !bell.after_push(7, exact(2)),
        "a bound from the threshold, but the exact length below it"
    );
    assert!(bell.after_push(3, exact(3)));
    assert!(!bell.after_push(4, exact(4)), "only one producer unparks");
    bell.awake();
    assert!(!bell.prepare_sleep(|| 3), "a full batch is already there");
    assert!(!bell.after_push(9, exact(9)), "the sleep was taken back");
    assert!(Doorbell::new(0).prepare_sleep(|| 0));
}
