//! The wall clock, in nanoseconds since the Unix epoch (UTC). A leaf: it imports nothing of the crate.
//!
//! Every record reads it once, on the calling thread. Where the kernel keeps time with the
//! time-stamp counter (x86-64 Linux with clocksource `tsc`: the kernel found the counter constant
//! in rate and in step across CPUs), a record's time is the counter converted through an
//! [`Anchor`](anchor::Anchor): a counter reading, a time at that reading, and nanoseconds per
//! tick. The pipeline's worker takes a new one on its turns, at most every 100 ms ([`calibrate`];
//! it turns at least once per batch and per schedule delay while records flow). Reading the
//! counter plainly costs less than half of `clock_gettime`, which also serialises it behind every
//! instruction before it.
//!
//! The first anchor is the system clock's time once two measurements of the rate agree; each next
//! one continues the last (no step, back or forward) and makes up its difference from the system
//! clock over the next 2 s, so a record's time stays close to the system clock's (an anchor found
//! more than 20 us off is withdrawn; between anchors it drifts by the rate's error). The
//! system clock is read instead before the first anchor, when that difference exceeds 20 us (a
//! step of the system clock, or of its rate: measuring starts again), when the latest anchor is
//! more than [`tsc::MAX_EXTRAPOLATION_NS`] old (a worker asleep that long), by a read that
//! overlaps the writing of an anchor twice, and everywhere else; where the source changes, a
//! thread's times may step by the counter's difference from the system clock then.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod anchor;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod tsc;

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, 0 if the clock is before it.
#[inline]
pub(crate) fn now_unix_nanos() -> u64 {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if let Some(now) = tsc::now() {
        return now;
    }
    system_now_unix_nanos()
}

/// Takes a new anchor for [`now_unix_nanos`] if the last sample is 100 ms old or more (the
/// pipeline's worker calls this on every turn of its loop; a call costs a lock and, where the
/// counter is used, three samples of it around the system clock). Does nothing elsewhere.
pub(crate) fn calibrate() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    tsc::calibrate();
}

/// The system clock: nanoseconds since the Unix epoch, 0 if it is before it.
#[cfg(target_os = "linux")]
#[inline]
fn system_now_unix_nanos() -> u64 {
    // What `SystemTime::now` reads, without its conversions.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec for the call to fill; the call reads
    // nothing else of ours.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return portable_now_unix_nanos();
    }
    match (u64::try_from(ts.tv_sec), u64::try_from(ts.tv_nsec)) {
        (Ok(secs), Ok(nanos)) => secs.saturating_mul(1_000_000_000).saturating_add(nanos),
        // Before the epoch.
        _ => 0,
    }
}

/// The system clock: nanoseconds since the Unix epoch, 0 if it is before it.
#[cfg(not(target_os = "linux"))]
fn system_now_unix_nanos() -> u64 {
    portable_now_unix_nanos()
}

fn portable_now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_system_clock_agrees_with_system_time() {
        let before = super::portable_now_unix_nanos();
        let t = super::system_now_unix_nanos();
        let after = super::portable_now_unix_nanos();
        assert!(before <= t && t <= after, "{before} {t} {after}");
    }
}
