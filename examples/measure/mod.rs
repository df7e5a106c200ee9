//! Measurements shared by the examples (`loadgen`, `soak`) and `benches/hot_path.rs`: the calling
//! thread's CPU time, percentiles, the process's peak memory. Each user takes the part it needs.
#![allow(dead_code)]

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`; zero where it cannot be
/// read).
pub fn thread_cpu() -> std::time::Duration {
    #[cfg(target_os = "linux")]
    return cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
    #[cfg(not(target_os = "linux"))]
    std::time::Duration::ZERO
}

/// CPU time all the process's threads have used so far (`CLOCK_PROCESS_CPUTIME_ID`; zero where it
/// cannot be read).
pub fn process_cpu() -> std::time::Duration {
    #[cfg(target_os = "linux")]
    return cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID);
    #[cfg(not(target_os = "linux"))]
    std::time::Duration::ZERO
}

/// The CPU-time clock `id`, zero where it cannot be read.
#[cfg(target_os = "linux")]
fn cpu_clock(id: libc::clockid_t) -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec for the call to fill.
    if unsafe { libc::clock_gettime(id, &mut ts) } == 0 {
        return std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    }
    std::time::Duration::ZERO
}

/// The CPU time the calling thread spends running `f`.
pub fn thread_cpu_of(f: impl FnOnce()) -> std::time::Duration {
    let start = thread_cpu();
    f();
    thread_cpu().saturating_sub(start)
}

/// Sorts `samples` and returns the `q` quantile (0 when empty).
pub fn percentile(samples: &mut [u64], q: f64) -> u64 {
    samples.sort_unstable();
    samples
        .get((samples.len() as f64 * q) as usize)
        .or(samples.last())
        .copied()
        .unwrap_or(0)
}

/// The process's peak resident set size (`VmHWM`), 0 where `/proc` does not tell.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}
