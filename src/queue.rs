//! A bounded, lock-free multi-producer queue between the calling threads and the worker, and the
//! [`Doorbell`] by which a producer wakes the worker when a full batch is queued.
//!
//! # Positions and laps
//!
//! Every push gets a *position*, and the pop that takes its value the same one. A position is a
//! *lap base* (a multiple of the *lap*, a power of two strictly greater than the capacity) plus the
//! *index* of its slot (below the capacity): the positions of one lap are `base + 0` to
//! `base + capacity - 1`, then the next lap starts at `base + lap`. Positions live in the low 63
//! bits of a word (on 64-bit targets), wrapping from the last lap back to 0; the top bit of `tail`
//! is [`CLOSED`]. `tail` is the position of the next push, `head` of the next pop; each only ever
//! advances, by one position per successful CAS.
//!
//! # Stamps
//!
//! Each slot has a stamp: `L` means "free for the push at lap base `L`", `L + 1` means "holds the
//! value pushed at lap base `L`". A lap base is a multiple of the lap, so even, and `L + 1` is
//! never a lap base: "holds lap `L`" and "free for lap `L + lap`" never coincide, whatever the
//! capacity (with one slot and the classic per-position sequence numbers they would, and a producer
//! could overwrite the value the consumer is reading). A new queue's slots are all zero: free for
//! lap 0, so its memory comes from the system untouched and is paged in only as the queue fills.
//!
//! A producer claims the position `tail` by a CAS on `tail` after seeing its slot's stamp equal
//! the position's lap base (free), then moves the value in and stores `L + 1` (release). A consumer
//! claims the position `head` by a CAS on `head` after seeing its slot's stamp `L + 1` (acquire),
//! moves the value out, then stores the next lap's base (release). So one thread at a time touches a
//! slot's value, and each hands it to the next through the stamp. No user code runs between a claim
//! and its publication (the value is moved, not built in place), so a claimed slot is always
//! published soon after; no producer ever waits for another or for the consumer.
//!
//! `try_push` never waits for a lock, never allocates and never performs I/O. (Touching a slot for
//! the first time is a page fault, which the kernel may take time over; see
//! [`advise_huge_pages`].)
//!
//! # Wrapping
//!
//! Positions and stamps are compared for equality, or by their distance modulo 2^63 (less than
//! 2^62 means "after"). A producer or consumer that read `tail` or `head` and stalled acts on it
//! only through a CAS on the full 63-bit word, which fails unless nothing was claimed meanwhile; the
//! stamps it reads are then within one lap of that position. Only a thread stalled for 2^62 pushes
//! could see a position come round again. (On 32-bit targets positions have 31 bits and
//! [`MAX_CAPACITY`] is smaller, so that the space still holds at least 2^16 laps.)

use std::mem::MaybeUninit;

use self::sync::{AtomicBool, AtomicUsize, Ordering, UnsafeCell, fence, spin};

/// The atomics and the cell the queue is built on: loom's when model-checking
/// (`RUSTFLAGS="--cfg olb_loom" cargo test --release --lib loom`), std's otherwise, behind the same
/// API so the queue's code is one version. (loom is a dev-dependency: only test builds have it.)
mod sync {
    #[cfg(all(test, olb_loom))]
    pub(super) use loom::{
        cell::UnsafeCell,
        sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence},
        thread,
    };

    /// In a loop that waits for another thread's store: under loom, lets the other threads run
    /// (a load after a yield sees a newer store if there is one).
    #[cfg(all(test, olb_loom))]
    pub(super) fn spin() {
        loom::thread::yield_now();
    }

    #[cfg(not(all(test, olb_loom)))]
    pub(super) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

    /// In a loop that waits for another thread's store.
    #[cfg(not(all(test, olb_loom)))]
    #[inline]
    pub(super) fn spin() {
        std::hint::spin_loop();
    }

    /// std's `UnsafeCell` with loom's access API. Transparent, so an all-zero one is valid when its
    /// content is.
    #[cfg(not(all(test, olb_loom)))]
    #[repr(transparent)]
    pub(super) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    #[cfg(not(all(test, olb_loom)))]
    impl<T> UnsafeCell<T> {
        /// Runs `f` with a pointer through which the cell's content may be read and written.
        #[inline(always)]
        pub(super) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// Most values a queue holds: the position space (2^63, or 2^31 on 32-bit targets) must hold many
/// laps of at most twice this.
pub(crate) const MAX_CAPACITY: usize = 1 << (usize::BITS / 2 - 2);

/// The top bit of `tail`: set by [`Queue::close`], after which no push can claim a position.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The bits of a position.
const POS_MASK: usize = !CLOSED;

/// Half the position space: position `b` is after `a` when `b - a` (modulo the space) is below it.
const HALF: usize = CLOSED >> 1;

// The position space holds at least 2^16 laps of the largest queue.
const _: () = assert!(2 * MAX_CAPACITY <= CLOSED >> 16);

/// Size of a cache line (x86-64; aarch64's are as large or larger).
const CACHE_LINE: usize = 64;

/// Size of a transparent huge page (x86-64 and aarch64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// Asks the kernel to back a large queue with transparent huge pages where it allows them on
/// request. A queue is paged in as it fills, and with 4 KiB pages the calling threads would take a
/// page fault every 32 to 64 records of the first lap through a large queue (64- to 128-byte slots);
/// with huge pages, one every 16,384 or more. Memory still comes in as the queue fills, 2 MiB at a
/// time. Where the kernel compacts memory for such requests (THP `defrag` set to `madvise`), a
/// first-lap fault may take longer. Advice only: a refusal changes nothing.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    // SAFETY: `ptr..ptr + len` is memory this queue just allocated (`Slots::new`); the advice does
    // not change its contents (zero) or validity.
    let _ = unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _len: usize) {}

/// Pads a value to its own cache line pair so producers and the consumer don't share one.
#[repr(align(128))]
struct CachePadded<T>(T);

/// One value's place: 8 bytes more than the value (a 120-byte record takes 128 bytes).
struct Slot<T> {
    /// `L` (even): free for the push at lap base `L`; `L + 1` (odd): holds the value pushed at lap
    /// base `L`. Stored only by the producer that claimed lap `L` of this slot (`L` to `L + 1`, after
    /// writing `value`) and by the consumer that claimed that value (`L + 1` to the next lap base,
    /// after moving `value` out). All zero in a new queue: free for lap 0.
    stamp: AtomicUsize,
    /// Initialised while `stamp` is odd, except while the consumer that claimed it moves it out;
    /// uninitialised while `stamp` is even, except while the producer that claimed it writes it.
    /// The claiming thread (by CAS on `tail` or `head`) is the only one to touch it then.
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Why a push was refused. The value comes back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue holds its capacity (or the consumer is still moving out the value in the slot
    /// this push needs: the queue is full until it is done).
    Full,
    /// The queue holds at least the high watermark and the value is sheddable.
    Shed,
    /// The queue was closed ([`Queue::close`]).
    Closed,
}

/// Why a queue could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueueError {
    /// The capacity is 0 or above [`MAX_CAPACITY`] (refused, not clamped).
    #[error("queue capacity {capacity} is outside 1 to {max}", max = MAX_CAPACITY)]
    Capacity {
        /// The capacity asked for.
        capacity: usize,
    },
    /// The allocator could not provide the slots' memory.
    #[error("could not allocate {bytes} bytes for a queue of {capacity} records")]
    Alloc {
        /// The capacity asked for.
        capacity: usize,
        /// The bytes asked of the allocator (saturated at `usize::MAX`).
        bytes: usize,
    },
}

/// A bounded multi-producer, multi-consumer queue (the pipeline has one consumer, the worker).
pub(crate) struct Queue<T> {
    /// The position of the next push, with [`CLOSED`] once closed. Its index is below `capacity`.
    /// Changed only by the CAS in [`Queue::try_push`] (to the next position, and only from a value
    /// without `CLOSED`) and by [`Queue::close`] (setting `CLOSED`, never cleared). At most
    /// `capacity` pushes ahead of `head`.
    tail: CachePadded<AtomicUsize>,
    /// The position of the next pop. Its index is below `capacity`. Changed only by the CAS in
    /// [`Queue::pop`] (to the next position, over a published value), so never past `tail`.
    head: CachePadded<AtomicUsize>,
    /// `capacity` slots.
    slots: Slots<T>,
    /// 1 to [`MAX_CAPACITY`].
    capacity: usize,
    /// `log2` of the lap, the smallest power of two strictly greater than `capacity`.
    lap_shift: u32,
    /// At most `capacity`.
    high_watermark: usize,
    /// The lap base `head`, `tail` and the stamps started at, which [`Queue::pushed`] and
    /// [`Queue::popped`] count from: 0 (tests start near the end of the position space).
    origin: usize,
}

// SAFETY: values are moved in by one producer and out by one consumer, handed over through the slot's
// stamp with release/acquire ordering; `T: Send` is all that crossing threads needs (no `&T` is
// ever given out).
unsafe impl<T: Send> Send for Queue<T> {}
// SAFETY: as above; every shared access goes through atomics or a slot claimed exclusively by CAS.
unsafe impl<T: Send> Sync for Queue<T> {}

impl<T> Queue<T> {
    /// A queue holding at most `capacity` values, shedding sheddable values once `high_watermark`
    /// are queued (clamped to `capacity`). A `capacity` of 0 or above [`MAX_CAPACITY`] is refused,
    /// as is one whose memory the allocator refuses.
    pub(crate) fn new(capacity: usize, high_watermark: usize) -> Result<Self, QueueError> {
        Self::with_origin(capacity, high_watermark, 0)
    }

    /// A queue whose positions start `laps_before_wrap` laps before the end of the position space
    /// (0: at 0, as [`Queue::new`]).
    fn with_origin(
        capacity: usize,
        high_watermark: usize,
        laps_before_wrap: usize,
    ) -> Result<Self, QueueError> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(QueueError::Capacity { capacity });
        }
        let lap = (capacity + 1).next_power_of_two();
        let origin = CLOSED.wrapping_sub(laps_before_wrap.wrapping_mul(lap)) & POS_MASK;
        let slots = Slots::new(capacity)?;
        if origin != 0 {
            // Tests only: every slot free for the first lap.
            for slot in slots.iter() {
                slot.stamp.store(origin, Ordering::Relaxed);
            }
        }
        Ok(Queue {
            tail: CachePadded(AtomicUsize::new(origin)),
            head: CachePadded(AtomicUsize::new(origin)),
            slots,
            capacity,
            lap_shift: lap.trailing_zeros(),
            high_watermark: high_watermark.min(capacity),
            origin,
        })
    }

    /// A queue starting `laps_before_wrap` laps before its positions wrap round to 0.
    #[cfg(test)]
    fn near_wrap(capacity: usize, high_watermark: usize, laps_before_wrap: usize) -> Self {
        assert!(laps_before_wrap > 0);
        let q = Self::with_origin(capacity, high_watermark, laps_before_wrap).unwrap();
        assert!(q.origin > POS_MASK - laps_before_wrap * q.lap());
        q
    }

    /// Queue length from which sheddable values are refused.
    pub(crate) fn high_watermark(&self) -> usize {
        self.high_watermark
    }

    /// The capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Values queued now (a snapshot, counting values claimed and not yet written): at most
    /// [`capacity`](Self::capacity). For the consumer, exact at the moment `tail` is read.
    pub(crate) fn len(&self) -> usize {
        let head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Acquire);
        // `None`: `tail` was read after other pushes and pops moved `head` past the `head` read.
        self.distance(head, tail).unwrap_or(0).min(self.capacity)
    }

    /// Values ever pushed: monotonic (exact for the first 2^62 pushes, after which it wraps).
    /// Final once [`close`](Self::close) returned.
    pub(crate) fn pushed(&self) -> usize {
        self.count(self.tail.0.load(Ordering::Acquire))
    }

    /// Values ever popped (as [`pushed`](Self::pushed)).
    pub(crate) fn popped(&self) -> usize {
        self.count(self.head.0.load(Ordering::Acquire))
    }

    /// Closes the queue: once this returns, every push fails with [`PushError::Closed`]. Every
    /// push that succeeded claimed its position before (its CAS on `tail` needs `CLOSED` clear), so
    /// [`pushed`](Self::pushed) is final and [`pop`](Self::pop) returns each of those values once
    /// its producer has moved it in (no user code runs in between): the consumer is done when
    /// `popped() == pushed()`.
    pub(crate) fn close(&self) {
        self.tail.0.fetch_or(CLOSED, Ordering::AcqRel);
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.tail.0.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Pushes `value` unless the queue is closed, full, or at the high watermark while `sheddable`.
    /// Returns the queue length after the push (at least the true length then: it counts values
    /// popped meanwhile); on failure gives the value back.
    #[inline]
    pub(crate) fn try_push(&self, value: T, sheddable: bool) -> Result<usize, (T, PushError)> {
        // Acquire: a `tail` read from a producer's CAS comes after the pop that freed the slot it
        // claimed (it saw the freed stamp), so `head` read next is at most `capacity` behind.
        let mut tail = self.tail.0.load(Ordering::Acquire);
        loop {
            if tail & CLOSED != 0 {
                return Err((value, PushError::Closed));
            }
            let head = self.head.0.load(Ordering::Acquire);
            let Some(len) = self.distance(head, tail) else {
                // `tail` is stale: pops went past it, so pushes did too.
                spin();
                tail = self.tail.0.load(Ordering::Acquire);
                continue;
            };
            if len >= self.capacity {
                return Err((value, PushError::Full));
            }
            if sheddable && len >= self.high_watermark {
                return Err((value, PushError::Shed));
            }
            let (base, index) = self.split(tail);
            // Cannot panic: an index is below `capacity`, the number of slots.
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp != base {
                if is_before(stamp, base) {
                    // The slot still holds the previous lap's value: the consumer has claimed it
                    // (`len` < capacity) but not moved it out yet.
                    return Err((value, PushError::Full));
                }
                // Claimed (or more) at this position already: `tail` is stale.
                spin();
                tail = self.tail.0.load(Ordering::Acquire);
                continue;
            }
            // Release: see the Acquire above. Fails if `tail` moved, or was closed.
            match self.tail.0.compare_exchange(
                tail,
                self.next(tail),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    debug_assert_eq!(base & 1, 0, "a free stamp is even");
                    // SAFETY: the slot's stamp was `base` (free for this lap) and the CAS claimed
                    // position `base + index` for this thread alone: the value is uninitialised
                    // and no other thread touches it until the stamp below says `base + 1`
                    // (`Slot::value`). Writing a `MaybeUninit` over it drops nothing.
                    slot.value
                        .with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
                    slot.stamp.store(base + 1, Ordering::Release);
                    return Ok(len + 1);
                }
                Err(current) => tail = current,
            }
        }
    }

    /// Pops the oldest value, if it is there (not if it is still being moved in by its producer).
    /// Any number of threads may pop (the pipeline has one, the worker).
    pub(crate) fn pop(&self) -> Option<T> {
        let mut head = self.head.0.load(Ordering::Acquire);
        loop {
            let (base, index) = self.split(head);
            // Cannot panic: an index is below `capacity`, the number of slots.
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == base + 1 {
                match self.head.0.compare_exchange(
                    head,
                    self.next(head),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        debug_assert_eq!(stamp & 1, 1, "a full stamp is odd");
                        // SAFETY: the stamp was `base + 1` (acquire: the producer's write is
                        // visible), so the value is initialised, and the CAS claimed it for this
                        // thread alone until the stamp below frees the slot (`Slot::value`). It is
                        // read once, and the stamp then marks it uninitialised.
                        let value = slot.value.with_mut(|p| unsafe { p.read().assume_init() });
                        slot.stamp.store(self.next_lap(base), Ordering::Release);
                        return Some(value);
                    }
                    Err(current) => {
                        head = current;
                        continue;
                    }
                }
            }
            if !is_before(base, stamp) {
                // `stamp` is `base` (nothing pushed here yet, or being written) or the previous
                // lap's (its value still being moved out by another consumer): nothing to take.
                return None;
            }
            // Popped already at this position: `head` is stale.
            spin();
            head = self.head.0.load(Ordering::Acquire);
        }
    }

    /// The lap: a power of two greater than `capacity`.
    #[inline]
    fn lap(&self) -> usize {
        1 << self.lap_shift
    }

    /// A position's lap base and index (ignoring [`CLOSED`]).
    #[inline]
    fn split(&self, pos: usize) -> (usize, usize) {
        let pos = pos & POS_MASK;
        let index = pos & (self.lap() - 1);
        debug_assert!(index < self.capacity, "index {index} of position {pos:#x}");
        (pos - index, index)
    }

    /// The position after `pos` (which has no [`CLOSED`]).
    #[inline]
    fn next(&self, pos: usize) -> usize {
        let (base, index) = self.split(pos);
        if index + 1 < self.capacity {
            pos + 1
        } else {
            self.next_lap(base)
        }
    }

    /// The lap base after `base`, wrapping at the end of the position space.
    #[inline]
    fn next_lap(&self, base: usize) -> usize {
        base.wrapping_add(self.lap()) & POS_MASK
    }

    /// Pushes from position `from` to position `to`; `None` when `from` is after `to`.
    #[inline]
    fn distance(&self, from: usize, to: usize) -> Option<usize> {
        let (from_base, from_index) = self.split(from);
        let (to_base, to_index) = self.split(to);
        let laps = to_base.wrapping_sub(from_base) & POS_MASK;
        if laps >= HALF {
            return None;
        }
        // No overflow: fewer than 2^62 / lap laps of fewer than `lap` pushes, plus an index.
        ((laps >> self.lap_shift) * self.capacity + to_index).checked_sub(from_index)
    }

    /// Pushes from `origin` to position `pos`, modulo the position space's laps.
    fn count(&self, pos: usize) -> usize {
        let (base, index) = self.split(pos);
        // No overflow: fewer than 2^63 / lap laps of fewer than `lap` pushes, plus an index.
        ((base.wrapping_sub(self.origin) & POS_MASK) >> self.lap_shift) * self.capacity + index
    }
}

/// Whether stamp or position `a` comes before `b`, modulo the position space.
#[inline]
fn is_before(a: usize, b: usize) -> bool {
    let d = b.wrapping_sub(a) & POS_MASK;
    d != 0 && d < HALF
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        // No push is in progress (`&mut self`), so every claimed value is published.
        while self.pop().is_some() {}
    }
}

/// The slots' memory: allocated zeroed (all free for lap 0) with room to start the slots on a
/// cache line, or for a large queue on a huge page (asking for huge pages); freed from the pointer
/// and layout the allocator gave.
#[cfg(not(all(test, olb_loom)))]
struct Slots<T> {
    /// `len` slots (each valid: all-zero is a free slot), starting at a multiple of 64 bytes (or
    /// of the huge page size), within the allocation at `base`.
    ptr: std::ptr::NonNull<Slot<T>>,
    len: usize,
    /// What the allocator returned, and with which layout.
    base: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

#[cfg(not(all(test, olb_loom)))]
impl<T> Slots<T> {
    fn new(len: usize) -> Result<Self, QueueError> {
        let align = align_of::<Slot<T>>();
        let bytes = size_of::<Slot<T>>().saturating_mul(len);
        // Not by the layout's alignment: the system allocator zeroes over-aligned memory by hand,
        // which would page all of it in at once. A large queue starts on a huge page.
        let huge = bytes >= 2 * HUGE_PAGE;
        let start = if huge { HUGE_PAGE } else { CACHE_LINE }.max(align);
        let refused = QueueError::Alloc {
            capacity: len,
            bytes: bytes.saturating_add(start),
        };
        let layout = bytes
            .checked_add(start)
            .and_then(|total| std::alloc::Layout::from_size_align(total, align).ok())
            .ok_or(refused)?;
        // SAFETY: the layout's size is at least `start`, not zero.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        let base = std::ptr::NonNull::new(base).ok_or(refused)?;
        // Below `start`, and a multiple of `align` (`base` is aligned to it, `start` is a
        // multiple of it).
        let offset = (start - base.as_ptr().addr() % start) % start;
        debug_assert!(offset < start && offset % align == 0);
        // SAFETY: `offset < start`, and the allocation holds `start + bytes`: in bounds.
        let ptr = unsafe { base.add(offset) };
        if huge {
            advise_huge_pages(ptr.as_ptr(), layout.size() - offset);
        }
        Ok(Slots {
            ptr: ptr.cast(),
            len,
            base,
            layout,
        })
    }
}

#[cfg(not(all(test, olb_loom)))]
impl<T> std::ops::Deref for Slots<T> {
    type Target = [Slot<T>];

    fn deref(&self) -> &[Slot<T>] {
        // SAFETY: `ptr` is aligned for `Slot<T>` and followed by `len` slots' bytes of the
        // allocation (`Slots::new`), zeroed, which is a valid slot (an atomic 0, an `UnsafeCell`
        // of `MaybeUninit`); they live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(not(all(test, olb_loom)))]
impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        // SAFETY: `base` was allocated in `Slots::new` with this layout. The queue has dropped
        // the values still in it (a slot holds `MaybeUninit`, which drops nothing itself).
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) }
    }
}

/// The slots, under loom: its atomics are objects registered with the model, not plain memory,
/// so they are built one by one (free for lap 0, as zeroed memory is) rather than zero-allocated.
#[cfg(all(test, olb_loom))]
struct Slots<T>(Box<[Slot<T>]>);

#[cfg(all(test, olb_loom))]
impl<T> Slots<T> {
    fn new(len: usize) -> Result<Self, QueueError> {
        Ok(Slots(
            (0..len)
                .map(|_| Slot {
                    stamp: AtomicUsize::new(0),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
        ))
    }
}

#[cfg(all(test, olb_loom))]
impl<T> std::ops::Deref for Slots<T> {
    type Target = [Slot<T>];

    fn deref(&self) -> &[Slot<T>] {
        &self.0
    }
}

/// How a producer wakes the consumer when a full batch is queued, without a lost wake-up and
/// without a read-modify-write per push while the consumer is awake.
///
/// The consumer announces its sleep (`sleeping = true`), then looks at the queue's length; a
/// producer pushes (its CAS on `tail`), then looks at `sleeping`. Each side's store and load are
/// separated by a `SeqCst` fence, and the two fences are ordered one way or the other: either the
/// consumer's length (read after its fence) counts the push, and it doesn't sleep, or the
/// producer's load of `sleeping` (after its fence) sees the announcement, and it unparks the
/// consumer. Only a push that leaves at least `threshold` queued looks (level-triggered: every such
/// push, not only the one reaching it), and only the producer that swaps `sleeping` back to `false`
/// unparks. The length a push reports is at least the true one at its CAS, so a push that makes a
/// full batch always looks.
pub(crate) struct Doorbell {
    /// Whether the consumer announced a sleep not yet over or taken back. Set only by
    /// [`Doorbell::prepare_sleep`]; cleared by the consumer ([`Doorbell::awake`], or
    /// `prepare_sleep` taking it back) and by the one producer whose swap rings.
    sleeping: AtomicBool,
    /// The queue length that makes a full batch: at least 1.
    threshold: usize,
}

impl Doorbell {
    /// A doorbell rung when `threshold` (at least 1) values are queued.
    pub(crate) fn new(threshold: usize) -> Self {
        Doorbell {
            sleeping: AtomicBool::new(false),
            threshold: threshold.max(1),
        }
    }

    /// Producer, after a successful push that left `len` queued: true if the caller must unpark the
    /// consumer. Below the threshold it costs a comparison; from it, a fence and a load, and a swap
    /// only when the consumer is asleep.
    #[inline]
    pub(crate) fn after_push(&self, len: usize) -> bool {
        if len < self.threshold {
            return false;
        }
        // Pairs with the fence in `prepare_sleep` (see the type's doc): orders the push's CAS on
        // `tail` before the load of `sleeping`.
        fence(Ordering::SeqCst);
        self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::Relaxed)
    }

    /// Consumer, before parking: announces the sleep; returns false (and takes the announcement
    /// back) if `queue_len_now()` already reaches the threshold. True: the consumer may park, and a
    /// push that makes a full batch unparks it.
    pub(crate) fn prepare_sleep(&self, queue_len_now: impl FnOnce() -> usize) -> bool {
        self.sleeping.store(true, Ordering::Relaxed);
        // Pairs with the fence in `after_push`: orders the announcement before the queue's `tail`
        // is read.
        fence(Ordering::SeqCst);
        if queue_len_now() >= self.threshold {
            self.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Consumer, after waking (or not parking).
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(olb_loom)))]
mod tests {
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
    fn a_large_queue_starts_on_a_huge_page_and_keeps_its_values() {
        let q = Queue::<u64>::new(1 << 18, 1 << 18).unwrap();
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
                        assert_eq!(q.try_push(next, false).ok(), Some(before + 1));
                        next += 1;
                    }
                    for i in 0..n {
                        assert_eq!(q.pop(), Some(next - n + i));
                    }
                    assert_eq!(q.pop(), None);
                    assert_eq!((q.pushed(), q.popped()), (next, next));
                    assert!(!q.is_closed());
                }
                assert!(q.tail.0.load(Ordering::Relaxed) < q.origin, "wrapped");
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
                                    if bell.after_push(len) {
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
        assert!(!bell.after_push(5), "awake: never rings");
        assert!(bell.prepare_sleep(|| 2));
        assert!(!bell.after_push(2));
        assert!(bell.after_push(3));
        assert!(!bell.after_push(4), "only one producer unparks");
        bell.awake();
        assert!(!bell.prepare_sleep(|| 3), "a full batch is already there");
        assert!(!bell.after_push(9), "the sleep was taken back");
        assert!(Doorbell::new(0).prepare_sleep(|| 0));
    }
}

/// Model checks, run with `RUSTFLAGS="--cfg olb_loom" cargo test --release --lib loom`.
#[cfg(all(test, olb_loom))]
mod loom_tests {
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

    /// Pushes `value`, retrying while the queue is full.
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

    /// Pops one value, waiting for it.
    fn pop(q: &Queue<usize>) -> usize {
        loop {
            if let Some(v) = q.pop() {
                return v;
            }
            thread::yield_now();
        }
    }

    /// Two producers push `per_producer` values each (`10 * p + i`) while the consumer pops them
    /// all: each is popped once, each producer's in order.
    fn two_producers(capacity: usize, per_producer: usize, laps_before_wrap: usize) {
        model(2, move || {
            let q = Arc::new(if laps_before_wrap == 0 {
                Queue::new(capacity, capacity).unwrap()
            } else {
                Queue::near_wrap(capacity, capacity, laps_before_wrap)
            });
            let producers: Vec<_> = (0..2)
                .map(|p| {
                    let q = q.clone();
                    thread::spawn(move || {
                        for i in 0..per_producer {
                            push(&q, 10 * p + i);
                        }
                    })
                })
                .collect();
            let mut next = [0; 2];
            for _ in 0..2 * per_producer {
                let v = pop(&q);
                let p = v / 10;
                assert_eq!(v % 10, next[p], "producer {p}'s values in order, once");
                next[p] += 1;
            }
            for p in producers {
                p.join().unwrap();
            }
            assert_eq!(q.pop(), None);
            assert_eq!(
                (q.pushed(), q.popped()),
                (2 * per_producer, 2 * per_producer)
            );
        });
    }

    #[test]
    fn loom_capacity_1_two_producers_and_the_consumer() {
        two_producers(1, 2, 0);
    }

    #[test]
    fn loom_capacity_2_two_producers_and_the_consumer() {
        two_producers(2, 2, 0);
    }

    #[test]
    fn loom_capacity_1_across_the_wrap() {
        two_producers(1, 2, 1);
    }

    #[test]
    fn loom_capacity_2_across_the_wrap() {
        two_producers(2, 2, 1);
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
                                    assert_eq!(
                                        refused(q.try_push(99, false)),
                                        Some(PushError::Closed)
                                    );
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

    /// The worker's sleep: the consumer waits for a full batch, parking when there is none; the
    /// producers ring when `after_push` says so. A lost wake-up leaves the consumer parked with
    /// every other thread finished, which loom reports as a deadlock.
    #[test]
    fn loom_a_full_batch_wakes_the_parked_consumer() {
        model(3, || {
            const BATCH: usize = 2;
            let q = Arc::new(Queue::new(2, 2).unwrap());
            let bell = Arc::new(Doorbell::new(BATCH));
            let consumer = thread::current();
            let producers: Vec<_> = (0..2)
                .map(|p| {
                    let (q, bell, consumer) = (q.clone(), bell.clone(), consumer.clone());
                    thread::spawn(move || {
                        let len = q.try_push(p, false).unwrap_or_else(|e| panic!("{:?}", e.1));
                        if bell.after_push(len) {
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
        });
    }
}
