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
//! the first time is a page fault; the pages are the kernel's ordinary 4 KiB ones. Transparent huge
//! pages were tried and dropped: on the virtual machines measured, a first-lap fault then cost the
//! calling thread up to 60-80 ms and the process a second more of system time per million records,
//! against 5-9 ms and none with 4 KiB pages.)
//!
//! # Wrapping
//!
//! Positions and stamps are compared for equality, or by their distance modulo 2^63 (less than
//! 2^62 means "after"). A producer or consumer that read `tail` or `head` and stalled acts on it
//! only through a CAS on the full 63-bit word, which fails unless nothing was claimed meanwhile; the
//! stamps it reads are then within one lap of that position. Only a thread stalled for 2^62 pushes
//! could see a position come round again. (On 32-bit targets positions have 31 bits and
//! [`MAX_CAPACITY`] is smaller, so that the space still holds at least 2^16 laps.) The `head`
//! producers keep for their length bound (`head_seen`, plain stores) may be any age: it only ever
//! makes the bound larger, and one half the space behind reads as no bound at all, so the push
//! reads `head` itself.

use std::mem::MaybeUninit;

use self::sync::{AtomicBool, AtomicUsize, Ordering, UnsafeCell, fence, spin};

mod room;
mod sync;

pub(crate) use room::{Room, Tried};

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
#[cfg_attr(all(test, olb_loom), allow(dead_code))] // Loom's slots are not zero-allocated.
const CACHE_LINE: usize = 64;

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

/// What the producers read and write on every push, on a line of its own.
struct Tail {
    /// The position of the next push, with [`CLOSED`] once closed. Its index is below `capacity`.
    /// Changed only by the CAS in [`Queue::try_push`] (to the next position, and only from a value
    /// without `CLOSED`) and by [`Queue::close`] (setting `CLOSED`, never cleared). At most
    /// `capacity` pushes ahead of `head`.
    pos: AtomicUsize,
    /// A value `head` had: stored by the producers that read `head`, so never after the current
    /// `head` (it only advances). `pos - head_seen` is at least the queue's length, read without
    /// touching `head`'s line, which the consumer writes on every pop.
    head_seen: AtomicUsize,
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
    #[cfg_attr(all(test, olb_loom), allow(dead_code))] // Loom's slots are not zero-allocated.
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
    /// The producers' line: the position of the next push, and a `head` they saw.
    tail: CachePadded<Tail>,
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
            tail: CachePadded(Tail {
                pos: AtomicUsize::new(origin),
                head_seen: AtomicUsize::new(origin),
            }),
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
        let tail = self.tail.0.pos.load(Ordering::Acquire);
        // `None`: `tail` was read after other pushes and pops moved `head` past the `head` read.
        self.distance(head, tail).unwrap_or(0).min(self.capacity)
    }

    /// Values ever pushed: monotonic (exact for the first 2^62 pushes, after which it wraps).
    /// Final once [`close`](Self::close) returned.
    pub(crate) fn pushed(&self) -> usize {
        self.count(self.tail.0.pos.load(Ordering::Acquire))
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
        self.tail.0.pos.fetch_or(CLOSED, Ordering::AcqRel);
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.tail.0.pos.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Pushes `value` unless the queue is closed, full, or at the high watermark while `sheddable`.
    /// Returns at least the queue length after the push, at most the capacity: an upper bound from
    /// a `head` seen lately, exact only where a decision needs it (a sheddable value near the
    /// high watermark), so that a push reads `head`'s line, which every pop writes, once in many.
    /// On failure gives the value back.
    #[inline]
    pub(crate) fn try_push(&self, value: T, sheddable: bool) -> Result<usize, (T, PushError)> {
        // Acquire: a `tail` read from a producer's CAS comes after the pop that freed the slot it
        // claimed (it saw the freed stamp), so a `head` read after it is at most `capacity`
        // behind.
        let mut tail = self.tail.0.pos.load(Ordering::Acquire);
        loop {
            if tail & CLOSED != 0 {
                return Err((value, PushError::Closed));
            }
            let (base, index) = self.split(tail);
            // Cannot panic: an index is below `capacity`, the number of slots.
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp != base {
                if is_before(stamp, base) {
                    // The slot still holds the previous lap's value (`capacity` positions ago),
                    // or the consumer has claimed it but not moved it out yet: full.
                    return Err((value, PushError::Full));
                }
                // Claimed (or more) at this position already: `tail` is stale.
                spin();
                tail = self.tail.0.pos.load(Ordering::Acquire);
                continue;
            }
            // The slot is free: the position `capacity` before was popped, so fewer than
            // `capacity` are queued. The bound from `head_seen` is `None` when `tail` is stale
            // (behind a `head` some push saw).
            let len = match self.distance(self.tail.0.head_seen.load(Ordering::Relaxed), tail) {
                Some(n) if n < self.capacity && !(sheddable && n >= self.high_watermark) => n,
                _ => {
                    let head = self.head.0.load(Ordering::Acquire);
                    let Some(exact) = self.distance(head, tail) else {
                        // `tail` is stale: pops went past it, so pushes did too.
                        spin();
                        tail = self.tail.0.pos.load(Ordering::Acquire);
                        continue;
                    };
                    self.tail.0.head_seen.store(head, Ordering::Relaxed);
                    if sheddable && exact >= self.high_watermark {
                        return Err((value, PushError::Shed));
                    }
                    exact
                }
            };
            // SeqCst: the doorbell's handshake (`Doorbell::after_push`) orders this claim before
            // the load of `sleeping` that follows it. Fails if `tail` moved, or was closed.
            match self.tail.0.pos.compare_exchange(
                tail,
                self.next(tail),
                Ordering::SeqCst,
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
                    return Ok((len + 1).min(self.capacity));
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
/// cache line; freed from the pointer and layout the allocator gave.
#[cfg(not(all(test, olb_loom)))]
struct Slots<T> {
    /// `len` slots (each valid: all-zero is a free slot), starting at a multiple of 64 bytes, within
    /// the allocation at `base`.
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
        // which would page all of it in at once.
        let start = CACHE_LINE.max(align);
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
        debug_assert!(offset < start && offset.is_multiple_of(align));
        // SAFETY: `offset < start`, and the allocation holds `start + bytes`: in bounds.
        let ptr = unsafe { base.add(offset) };
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
        debug_assert!(self.ptr.as_ptr().is_aligned());
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
/// without a fence or a read-modify-write per push while the consumer is awake.
///
/// The consumer announces its sleep (`sleeping = true`), then looks at the queue's length; a
/// producer pushes (its CAS on `tail`), then looks at `sleeping`. The consumer's store and load
/// are separated by a `SeqCst` fence; the producer's CAS and load are both `SeqCst`. So either the
/// consumer's length (read after its fence) counts the push, and it doesn't sleep, or the
/// producer's load of `sleeping` sees the announcement, and it unparks the consumer. (C++20's
/// rules for `SeqCst`, which Rust follows: if the consumer's read of `tail` missed the CAS, its
/// fence precedes the CAS in the single total order S, which puts the producer's load after the
/// fence; had that load missed the announcement, it would precede the fence in S. One or the
/// other.) Only a push that may leave `threshold` queued looks (level-triggered: every such push,
/// not only the one reaching it); the length it has is an upper bound ([`Queue::try_push`]), so
/// before ringing it reads the exact one, and only the producer that swaps `sleeping` back to
/// `false` unparks. `queue_len_now` must read the queue's `tail` ([`Queue::len`] does).
///
/// Cost to a producer: below the threshold, a comparison. From it, a load of `sleeping`, a line
/// the consumer writes only around its sleeps (on x86-64 a `SeqCst` load is a plain one, and the
/// CAS a full barrier already); the exact length and the swap only when the consumer sleeps. Loom,
/// which checks this handshake, models `SeqCst` fences but treats `SeqCst` loads and
/// read-modify-writes as acquire/release only; under loom the producer takes a fence between the
/// two, which S orders as the rules above order them.
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

    /// Producer, after a successful push that reported `len` queued (at least the true length):
    /// true if the caller must unpark the consumer. Below the threshold it costs a comparison;
    /// from it, a load, and `exact_len` and a swap only when the consumer is asleep.
    #[inline]
    pub(crate) fn after_push(&self, len: usize, exact_len: impl FnOnce() -> usize) -> bool {
        if len < self.threshold {
            return false;
        }
        // Loom does not model the `SeqCst` load below (see the type's doc).
        #[cfg(all(test, olb_loom))]
        fence(Ordering::SeqCst);
        // SeqCst, after the push's `SeqCst` CAS on `tail`: pairs with the fence in
        // `prepare_sleep` (see the type's doc).
        if !self.sleeping.load(Ordering::SeqCst) {
            return false;
        }
        // The consumer sleeps (so `head` stays where it was when it looked): ring only for a full
        // batch, not for the upper bound.
        exact_len() >= self.threshold && self.sleeping.swap(false, Ordering::Relaxed)
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
mod tests;

#[cfg(all(test, olb_loom))]
mod loom_tests;
