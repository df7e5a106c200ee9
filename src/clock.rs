//! The wall clock, in nanoseconds since the Unix epoch (UTC). A leaf: it imports nothing of the crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, 0 if the clock is before it.
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn now_unix_nanos() -> u64 {
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

/// Nanoseconds since the Unix epoch, 0 if the clock is before it.
#[cfg(not(target_os = "linux"))]
pub(crate) fn now_unix_nanos() -> u64 {
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
    fn the_fast_clock_agrees_with_system_time() {
        let before = super::portable_now_unix_nanos();
        let t = super::now_unix_nanos();
        let after = super::portable_now_unix_nanos();
        assert!(before <= t && t <= after, "{before} {t} {after}");
    }
}
