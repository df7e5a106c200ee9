use super::sync::thread;
use super::*;
use loom::sync::Arc;

fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(f);
}

fn refused<T>(r: Result<usize, (T, PushError)>) -> Option<PushError> {
    r.err().map(|e| e.1)
}

/// Pushes `value` into a queue with room (or retrying while it is full, when no other thread
/// spins: two threads spinning on each other's progress make loom explore schedules that never
/// run the third thread they wait for).
fn push(q: &Queue<usize>, mut value: usize) {
    loop {
        match q.try_push(value, false) {
            Ok(len) => {
                assert!((1..=q.capacity()).contains(&len));
                return;
            }
            Err((back, PushError::Full)) => value = back,
            Err((_, e)) => panic!("{e:?}"),
        }
        thread::yield_now();
    }
}

/// Pops one value, waiting for it (the only thread spinning).
fn pop(q: &Queue<usize>) -> usize {
    loop {
        if let Some(v) = q.pop() {
            return v;
        }
        thread::yield_now();
    }
}

/// The queue starts full (`capacity` values, `100 + i`); two producers then push two values
/// each (`10 * p + i`, each accepted or refused as `Full`, no retry) while the consumer tries
/// three pops, and drains the queue once the producers are done. Every accepted value is popped
/// exactly once, each producer's in order; no refused value is popped; `len` stays within the
/// capacity. (Nobody spins, so every schedule is finite. Loom's partial-order reduction
/// compares a thread's next operation with only the last access to each atomic, so the races
/// it explores depend on how the model starts: with the consumer, the main thread, first
/// popping a full queue, it finds producers claiming the slot being popped, and with a lap not
/// above the capacity it reports the torn slot at capacity 1; with the queue starting empty,
/// it did not.)
fn two_producers(capacity: usize, laps_before_wrap: usize) {
    // Three preemptions at capacity 2 pass too, but take over a minute per model.
    let preemptions = if capacity == 1 { 3 } else { 2 };
    model(preemptions, move || {
        let q = Arc::new(if laps_before_wrap == 0 {
            Queue::new(capacity, capacity).unwrap()
        } else {
            Queue::near_wrap(capacity, capacity, laps_before_wrap)
        });
        for i in 0..capacity {
            push(&q, 100 + i);
        }
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut accepted = Vec::new();
                    for i in 0..2 {
                        match q.try_push(10 * p + i, false) {
                            Ok(len) => {
                                assert!((1..=capacity).contains(&len), "len {len}");
                                accepted.push(10 * p + i);
                            }
                            Err((_, e)) => assert_eq!(e, PushError::Full),
                        }
                    }
                    accepted
                })
            })
            .collect();
        let mut popped = Vec::new();
        for _ in 0..3 {
            assert!(q.len() <= capacity);
            popped.extend(q.pop());
        }
        let mut accepted: Vec<usize> = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        while let Some(v) = q.pop() {
            popped.push(v);
        }
        assert_eq!(q.len(), 0);
        let first: Vec<usize> = (100..100 + capacity).collect();
        assert_eq!(popped[..capacity], first, "the first values first");
        let popped = popped.split_off(capacity);
        for p in 0..2 {
            let mine: Vec<usize> = popped.iter().copied().filter(|v| v / 10 == p).collect();
            assert!(
                mine.is_sorted(),
                "producer {p}'s values in order: {popped:?}"
            );
        }
        assert_eq!(q.pushed(), capacity + accepted.len());
        assert_eq!(q.popped(), capacity + popped.len());
        let mut popped = popped;
        accepted.sort_unstable();
        popped.sort_unstable();
        assert_eq!(accepted, popped, "each accepted value popped once");
    });
}

#[test]
fn loom_capacity_1_two_producers_and_the_consumer() {
    two_producers(1, 0);
}

#[test]
fn loom_capacity_2_two_producers_and_the_consumer() {
    two_producers(2, 0);
}

#[test]
fn loom_capacity_1_across_the_wrap() {
    two_producers(1, 1);
}

#[test]
fn loom_capacity_2_across_the_wrap() {
    two_producers(2, 1);
}

/// Two consumers (`pop` is safe from any thread) and a producer: the queue starts with two
/// values; the producer pushes two more (no retry) while each consumer tries two pops. Each
/// value is taken once, each consumer's in order.
#[test]
fn loom_two_consumers_take_each_value_once() {
    model(2, || {
        let q = Arc::new(Queue::new(2, 2).unwrap());
        push(&q, 0);
        push(&q, 1);
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                (2..4)
                    .filter(|&v| match q.try_push(v, false) {
                        Ok(_) => true,
                        Err((_, e)) => {
                            assert_eq!(e, PushError::Full);
                            false
                        }
                    })
                    .collect::<Vec<usize>>()
            })
        };
        let other = {
            let q = q.clone();
            thread::spawn(move || (0..2).filter_map(|_| q.pop()).collect::<Vec<usize>>())
        };
        let mine: Vec<usize> = (0..2).filter_map(|_| q.pop()).collect();
        let theirs = other.join().unwrap();
        let accepted = producer.join().unwrap();
        assert!(
            mine.is_sorted() && theirs.is_sorted(),
            "{mine:?} {theirs:?}"
        );
        let mut all: Vec<usize> = mine.into_iter().chain(theirs).collect();
        all.extend(std::iter::from_fn(|| q.pop()));
        all.sort_unstable();
        let expected: Vec<usize> = (0..2).chain(accepted).collect();
        assert_eq!(all, expected);
    });
}

/// A full queue refuses; a pop racing the push either made room (the push got it) or not
/// (`Full`), and nothing is lost or duplicated; `len` never exceeds the capacity.
#[test]
fn loom_a_full_queue_refuses() {
    model(3, || {
        let q = Arc::new(Queue::new(1, 1).unwrap());
        push(&q, 0);
        assert_eq!(refused(q.try_push(9, false)), Some(PushError::Full));
        let producer = {
            let q = q.clone();
            thread::spawn(move || refused(q.try_push(1, false)))
        };
        let watcher = {
            let q = q.clone();
            thread::spawn(move || assert!(q.len() <= 1))
        };
        assert_eq!(q.pop(), Some(0));
        let refusal = producer.join().unwrap();
        watcher.join().unwrap();
        match refusal {
            None => assert_eq!(pop(&q), 1),
            Some(e) => assert_eq!(e, PushError::Full),
        }
        assert_eq!(q.pop(), None);
        push(&q, 2);
        assert_eq!(q.pop(), Some(2));
    });
}

/// Two producers at the watermark: the sheddable push is shed exactly when the other one went
/// first.
#[test]
fn loom_shedding_at_the_watermark() {
    model(3, || {
        let q = Arc::new(Queue::new(2, 1).unwrap());
        let sheddable = {
            let q = q.clone();
            thread::spawn(move || q.try_push(1, true).map_err(|e| e.1))
        };
        let kept = q.try_push(2, false).map_err(|e| e.1);
        match sheddable.join().unwrap() {
            Ok(len) => {
                assert_eq!((len, kept), (1, Ok(2)));
                assert_eq!((q.pop(), q.pop()), (Some(1), Some(2)));
            }
            Err(e) => {
                assert_eq!((e, kept), (PushError::Shed, Ok(1)));
                assert_eq!(q.pop(), Some(2));
            }
        }
        assert_eq!(q.pop(), None);
    });
}

/// Two producers race the close: each push returned `Ok` (and is popped by the drain after the
/// close), or `Full`, or `Closed` (and so does every later push of that producer).
#[test]
fn loom_push_racing_close() {
    model(3, || {
        let q = Arc::new(Queue::new(2, 2).unwrap());
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut ok = Vec::new();
                    for i in 0..2 {
                        match q.try_push(10 * p + i, false) {
                            Ok(_) => ok.push(10 * p + i),
                            Err((_, PushError::Full)) => {}
                            Err((_, PushError::Closed)) => {
                                assert_eq!(refused(q.try_push(99, false)), Some(PushError::Closed));
                                break;
                            }
                            Err((_, e)) => panic!("{e:?}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        q.close();
        assert!(q.is_closed());
        assert_eq!(refused(q.try_push(98, false)), Some(PushError::Closed));
        let total = q.pushed();
        let mut drained = Vec::new();
        while q.popped() < total {
            drained.push(pop(&q));
        }
        let mut ok: Vec<usize> = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        assert_eq!(q.pop(), None);
        ok.sort_unstable();
        drained.sort_unstable();
        assert_eq!(ok, drained);
    });
}

/// Two producers push one value each into `q` (empty), ringing the doorbell as `after_push` says,
/// each push reporting more than `bound_above` queued; the consumer waits for the batch of both,
/// parking when it is not there. A lost wake-up leaves the consumer parked with every other
/// thread finished, which loom reports as a deadlock.
fn a_full_batch_wakes_the_parked_consumer(q: Queue<usize>, bound_above: usize) {
    const BATCH: usize = 2;
    let q = Arc::new(q);
    let bell = Arc::new(Doorbell::new(BATCH));
    let consumer = thread::current();
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let (q, bell, consumer) = (q.clone(), bell.clone(), consumer.clone());
            thread::spawn(move || {
                let len = q.try_push(p, false).unwrap_or_else(|e| panic!("{:?}", e.1));
                assert!(len > bound_above, "{len}");
                if bell.after_push(len, || q.len()) {
                    consumer.unpark();
                }
            })
        })
        .collect();
    while q.len() < BATCH {
        if bell.prepare_sleep(|| q.len()) {
            thread::park();
        }
        bell.awake();
    }
    let (a, b) = (pop(&q), pop(&q));
    assert_eq!(a + b, 1);
    for p in producers {
        p.join().unwrap();
    }
}

/// The worker's sleep: the consumer waits for a full batch, parking when there is none; the
/// producers ring when `after_push` says so.
#[test]
fn loom_a_full_batch_wakes_the_parked_consumer() {
    model(3, || {
        a_full_batch_wakes_the_parked_consumer(Queue::new(2, 2).unwrap(), 0)
    });
}

/// The same with pushes whose length bound is above the true length (the pops before them were
/// not seen by any push): the producers read the exact length before ringing, and the one that
/// makes the batch rings.
#[test]
fn loom_a_full_batch_wakes_the_parked_consumer_after_unseen_pops() {
    model(3, || {
        let q = Queue::new(4, 4).unwrap();
        push(&q, 7);
        push(&q, 7);
        assert_eq!((pop(&q), pop(&q)), (7, 7));
        // Both pushes count the two popped values: a bound from the head before the pops.
        a_full_batch_wakes_the_parked_consumer(q, 2);
    });
}

/// A producer finding the queue full waits in [`Room`] and is woken by the consumer's pop: under
/// loom a timed wait never times out, so a lost wakeup is a deadlock the model reports.
#[test]
fn loom_a_producer_waiting_for_room_is_woken() {
    model(3, || {
        let q = Arc::new(Queue::new(1, 1).unwrap());
        push(&q, 0);
        let room = Arc::new(Room::new());
        let producer = {
            let (q, room) = (q.clone(), room.clone());
            thread::spawn(move || {
                let far = std::time::Instant::now() + std::time::Duration::from_secs(3600);
                let tried = room.wait_for(
                    far,
                    1usize,
                    |v| match q.try_push(v, false) {
                        Ok(_) => Tried::Done,
                        Err((v, PushError::Full)) => Tried::Full(v),
                        Err(_) => Tried::Refused,
                    },
                    || {},
                );
                assert!(matches!(tried, Tried::Done), "{tried:?}");
            })
        };
        assert_eq!(pop(&q), 0);
        room.made();
        producer.join().unwrap();
        assert_eq!(pop(&q), 1);
    });
}
