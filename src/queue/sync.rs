//! The atomics, the cell and the lock the queue is built on: loom's when model-checking
//! (`RUSTFLAGS="--cfg olb_loom" cargo test --release --lib loom`), std's otherwise, behind the same
//! API so the queue's code is one version. (loom is a dev-dependency: only test builds have it.)

#[cfg(all(test, olb_loom))]
pub(super) use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence},
    sync::{Condvar, Mutex, MutexGuard},
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
#[cfg(not(all(test, olb_loom)))]
pub(super) use std::sync::{Condvar, Mutex, MutexGuard};

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
