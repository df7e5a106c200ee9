//! A bounded, lock-free multi-producer queue between the calling threads and the worker.
//!
//! Invariants:
//! - `tail` counts successful pushes and `head` successful pops, each only ever increasing; the number
//!   of queued records is `tail - head` and never exceeds the physical capacity (a power of two at least
//!   the configured capacity). The configured capacity is enforced by the length check in
//!   [`Queue::try_push`], which concurrent producers can overshoot by at most their number.
//! - Each slot has a sequence number: `seq == pos` means free for the push at `pos`, `seq == pos + 1`
//!   means it holds the value pushed at `pos`. It is stored less the slot's index, so a new queue is
//!   all zeroes: its memory comes from the system untouched and is paged in only as it fills. It is
//!   32 bits wide (compared modulo 2^32), so that a slot with a record takes 64 bytes. A
//!   producer claims a position with one CAS on `tail`, writes the value, then publishes it with a
//!   release store of `seq`; no producer ever waits for another or for the consumer.
//! - `try_push` never waits for a lock, never allocates and never performs I/O. (Touching a slot
//!   for the first time is a page fault, which the kernel may take time over; see
//!   [`advise_huge_pages`].)
//!
//! The algorithm is the classic bounded array queue with per-slot sequence numbers (Vyukov).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Most values a queue holds: positions compared modulo 2^32 must stay far apart.
pub(crate) const MAX_CAPACITY: usize = 1 << 30;

/// Size of a cache line (x86-64; aarch64's are as large or larger).
const CACHE_LINE: usize = 64;

/// Size of a transparent huge page (x86-64 and aarch64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// Asks the kernel to back a large queue with transparent huge pages where it allows them on
/// request. A queue is paged in as it fills, and with 4 KiB pages the calling threads would take a
/// page fault (two: the slot's sequence is read before it is written) every 64 records (64-byte
/// slots) of the first lap through a large queue; with huge pages, one every 32,768. Memory
/// still comes in as the queue fills, 2 MiB at a time. Where the kernel compacts memory for such
/// requests (THP `defrag` set to `madvise`), a first-lap fault may take longer. Advice only: a
/// refusal changes nothing.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    // SAFETY: `ptr..ptr + len` is memory this queue just allocated; the advice does not change its
    // contents (zero) or validity.
    let _ = unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _len: usize) {}

/// Pads a value to its own cache line so producers and the consumer don't share one.
#[repr(align(128))]
struct CachePadded<T>(T);

pub(crate) struct Slot<T> {
    /// The position this slot is ready for, relative to its index, modulo 2^32 (the positions a
    /// producer or the consumer compares it with are within the capacity of it, at most
    /// [`MAX_CAPACITY`], unless a thread stalls for 2^31 pushes: then it sees a spurious `Full`).
    seq: AtomicU32,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A position claimed by one producer, not yet published.
struct Claim {
    pos: usize,
    index: usize,
    len: usize,
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue holds its capacity.
    Full,
    /// The queue is above the high watermark and the record is below WARN.
    Shed,
}

pub(crate) struct Queue<T> {
    tail: CachePadded<AtomicUsize>,
    head: CachePadded<AtomicUsize>,
    slots: Slots<T>,
    mask: usize,
    capacity: usize,
    high_watermark: usize,
}

// SAFETY: values are moved in by one producer and out by one consumer, handed over through the slot's
// sequence number with release/acquire ordering; `T: Send` is all that crossing threads needs.
unsafe impl<T: Send> Send for Queue<T> {}
// SAFETY: as above; every shared access goes through atomics or a slot claimed exclusively by CAS.
unsafe impl<T: Send> Sync for Queue<T> {}

impl<T> Queue<T> {
    /// A queue holding at most `capacity` values, shedding low-priority values once `high_watermark`
    /// are queued. `capacity` must be at least 1.
    pub(crate) fn new(capacity: usize, high_watermark: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let physical = capacity.next_power_of_two();
        let layout =
            std::alloc::Layout::array::<Slot<T>>(physical).expect("queue size fits memory");
        // The slots get room to start at a cache line boundary (a 64-byte slot then never spans
        // two lines), and a large queue at a huge page boundary, asking for huge pages below.
        // (Not by the layout's alignment: the system allocator zeroes such memory by hand, which
        // would page all of it in at once.)
        let huge = layout.size() >= 2 * HUGE_PAGE;
        let start = if huge { HUGE_PAGE } else { CACHE_LINE };
        let layout = std::alloc::Layout::from_size_align(layout.size() + start, layout.align())
            .expect("queue size fits memory");
        // SAFETY: the layout holds `physical` slots (never zero-sized: a slot holds an atomic) after
        // an offset below `start` (a multiple of the slot's alignment); an all-zero `Slot` is valid (an atomic 0, and an
        // uninitialised value), and 0 is the stored sequence number of every free slot of a new
        // queue. `Slots` frees it with the same pointer and layout.
        let slots = unsafe {
            let base = std::alloc::alloc_zeroed(layout);
            if base.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            let offset = base
                .align_offset(start)
                .min(start - std::mem::align_of::<Slot<T>>());
            let ptr = base.add(offset);
            if huge {
                advise_huge_pages(ptr, layout.size() - offset);
            }
            Slots {
                ptr: std::ptr::NonNull::new_unchecked(ptr.cast::<Slot<T>>()),
                len: physical,
                base,
                layout,
            }
        };
        Queue {
            tail: CachePadded(AtomicUsize::new(0)),
            head: CachePadded(AtomicUsize::new(0)),
            slots,
            mask: physical - 1,
            capacity,
            high_watermark: high_watermark.min(capacity),
        }
    }

    /// Queue length from which sheddable values are refused.
    pub(crate) fn high_watermark(&self) -> usize {
        self.high_watermark
    }

    /// The configured capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Values queued now (a snapshot).
    pub(crate) fn len(&self) -> usize {
        let head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.slots.len())
    }

    /// Values ever pushed.
    pub(crate) fn pushed(&self) -> usize {
        self.tail.0.load(Ordering::Relaxed)
    }

    /// Values ever popped.
    pub(crate) fn popped(&self) -> usize {
        self.head.0.load(Ordering::Relaxed)
    }

    /// Pushes `value` unless the queue is full, or above the high watermark while `sheddable`.
    /// Returns the queue length after the push on success; on failure gives the value back.
    pub(crate) fn try_push(&self, value: T, sheddable: bool) -> Result<usize, (T, PushError)> {
        match self.claim(sheddable) {
            Ok(claim) => Ok(self.publish(claim, |slot| {
                slot.write(value);
            })),
            Err(e) => Err((value, e)),
        }
    }

    /// Claims the next position for a push: the slot's index, its position and the queue length
    /// before the push. Nothing is written yet.
    #[inline]
    fn claim(&self, sheddable: bool) -> Result<Claim, PushError> {
        let mut pos = self.tail.0.load(Ordering::Relaxed);
        loop {
            let signed_len = pos.wrapping_sub(self.head.0.load(Ordering::Relaxed)) as isize;
            if signed_len < 0 {
                // `pos` is stale: other producers pushed and the consumer popped past it.
                pos = self.tail.0.load(Ordering::Relaxed);
                continue;
            }
            let len = signed_len as usize;
            if len >= self.capacity {
                return Err(PushError::Full);
            }
            if sheddable && len >= self.high_watermark {
                return Err(PushError::Shed);
            }
            let index = pos & self.mask;
            let seq = self.slots[index]
                .seq
                .load(Ordering::Acquire)
                .wrapping_add(index as u32);
            let diff = seq.wrapping_sub(pos as u32) as i32;
            if diff == 0 {
                match self.tail.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(Claim { pos, index, len }),
                    Err(current) => pos = current,
                }
            } else if diff < 0 {
                // The slot still holds the value from one lap ago: physically full.
                return Err(PushError::Full);
            } else {
                pos = self.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Writes the claimed slot with `write` and publishes it; returns the queue length after the
    /// push.
    #[inline]
    fn publish(&self, claim: Claim, write: impl FnOnce(&mut MaybeUninit<T>)) -> usize {
        let slot = &self.slots[claim.index];
        // SAFETY: the CAS in `claim` gave this producer exclusive use of the slot at `claim.pos`
        // until it publishes it below; the consumer reads it only after seeing `seq == pos + 1`.
        write(unsafe { &mut *slot.value.get() });
        slot.seq.store(
            claim.pos.wrapping_add(1).wrapping_sub(claim.index) as u32,
            Ordering::Release,
        );
        claim.len + 1
    }

    /// Pops the oldest value, if any.
    pub(crate) fn pop(&self) -> Option<T> {
        let mut pos = self.head.0.load(Ordering::Relaxed);
        loop {
            let index = pos & self.mask;
            let slot = &self.slots[index];
            let seq = slot.seq.load(Ordering::Acquire).wrapping_add(index as u32);
            let diff = seq.wrapping_sub(pos.wrapping_add(1) as u32) as i32;
            if diff == 0 {
                match self.head.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: `seq == pos + 1` means a producer wrote and published this slot, and the
                        // CAS on `head` gave this consumer exclusive use of it until `seq` is advanced.
                        let value = unsafe { (*slot.value.get()).assume_init_read() };
                        slot.seq.store(
                            pos.wrapping_add(self.mask + 1).wrapping_sub(index) as u32,
                            Ordering::Release,
                        );
                        return Some(value);
                    }
                    Err(current) => pos = current,
                }
            } else if diff < 0 {
                return None;
            } else {
                pos = self.head.0.load(Ordering::Relaxed);
            }
        }
    }
}

/// The slots' memory: allocated zeroed, for a large queue with 2 MiB more so that the slots can
/// start at a huge-page boundary; freed by hand from the pointer and layout the allocator gave.
struct Slots<T> {
    ptr: std::ptr::NonNull<Slot<T>>,
    len: usize,
    /// What the allocator returned, and with which layout.
    base: *mut u8,
    layout: std::alloc::Layout,
}

impl<T> std::ops::Deref for Slots<T> {
    type Target = [Slot<T>];

    fn deref(&self) -> &[Slot<T>] {
        // SAFETY: `ptr` holds `len` initialised slots (zeroed is valid) for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `Queue::new` with this layout; the queue has dropped every value
        // still in it (slots hold `MaybeUninit`, which drops nothing itself).
        unsafe { std::alloc::dealloc(self.base, self.layout) }
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_large_queue_starts_on_a_huge_page_and_keeps_its_values() {
        let q = Queue::<u64>::new(1 << 18, 1 << 18);
        assert_eq!(q.slots.as_ptr() as usize % HUGE_PAGE, 0);
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
        // And a small one is as it was, its slots starting on a cache line: a queued record's
        // 64-byte slot spans one.
        let q = Queue::<u64>::new(4, 4);
        assert!(q.try_push(1, false).is_ok());
        assert_eq!(q.pop(), Some(1));
        let q = Queue::<crate::record::queued::Queued>::new(8192, 8192);
        assert_eq!(q.slots.as_ptr() as usize % CACHE_LINE, 0);
        assert_eq!(
            size_of::<Slot<crate::record::queued::Queued>>(),
            2 * CACHE_LINE
        );
    }

    #[test]
    fn fifo_and_capacity() {
        let q = Queue::new(3, 3);
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

    #[test]
    fn sheds_only_sheddable_values_above_the_watermark() {
        let q = Queue::new(10, 8);
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
        let q = Queue::new(4, 4);
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
            let q = Queue::new(4, 4);
            q.try_push(value.clone(), false).unwrap();
            q.try_push(value.clone(), false).unwrap();
            assert_eq!(Arc::strong_count(&value), 3);
        }
        assert_eq!(Arc::strong_count(&value), 1);
    }

    #[test]
    fn concurrent_producers_lose_and_duplicate_nothing() {
        const PER_THREAD: usize = 50_000;
        const THREADS: usize = 4;
        let q = Arc::new(Queue::new(64, 64));
        let producers: Vec<_> = (0..THREADS)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let mut v = t * PER_THREAD + i;
                        loop {
                            match q.try_push(v, false) {
                                Ok(_) => break,
                                Err((back, _)) => {
                                    v = back;
                                    std::hint::spin_loop();
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let mut seen = vec![false; THREADS * PER_THREAD];
        let mut last_per_thread = [None::<usize>; THREADS];
        let mut count = 0;
        while count < THREADS * PER_THREAD {
            if let Some(v) = q.pop() {
                assert!(!seen[v], "duplicate {v}");
                seen[v] = true;
                let t = v / PER_THREAD;
                assert!(
                    last_per_thread[t].is_none_or(|last| last < v),
                    "per-producer order"
                );
                last_per_thread[t] = Some(v);
                count += 1;
            } else {
                std::hint::spin_loop();
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert!(q.pop().is_none());
    }
}
